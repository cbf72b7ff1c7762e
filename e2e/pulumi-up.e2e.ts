/**
 * The real engines: agentfleet's own program, run by the real Pulumi CLI and Kubernetes provider
 * against real kube-apiservers (a loopback fleet with controller-managers and kwok). Each scenario
 * asserts what the engines did, read back from the API servers, not what the program asked for.
 * The scenarios build on each other, in order, on one fleet.
 */
import * as assert from "assert";
import type { LocalWorkspace } from "@pulumi/pulumi/automation";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { healthCheckCmValues, loadHealthChecks } from "../stacks/health-checks";
import { declaredObjects, evaluate } from "../evaluator/evaluate";
import { parse, parseDocument } from "yaml";
import { ARGOCD_CRD_FILES } from "../stacks/config";
import { fleetObjects } from "../evaluator/registrations";
import { onboardTenants } from "../tenants/onboard";
import { ONBOARDING_PROJECT, onboardingStackName } from "../tenants/onboarding-program";
import { type E2eWorld, HUB, E2E_STACK, V3_6_CRD_FIELDS, crdHasField, onboardingEngine, registerTenants, startWorld, stopWorld, tenantCommand, withTenantStack } from "./harness/project";
import { exportWithSecrets, kubeconfigFindings } from "./harness/state";
import { type Credentials, KubeError, canI, getOrUndefined, objectPath, request, tokenUser } from "./harness/kube";
import { stopAll, waitFor } from "./harness/processes";

type Obj = Record<string, any>;
const MERGE = "application/merge-patch+json";

/** Fields of `declared` that `live` lacks or holds differently (declared is a subset of live). */
function differences(declared: unknown, live: unknown, at = ""): string[] {
    if (declared && typeof declared === "object" && !Array.isArray(declared)) {
        if (!live || typeof live !== "object") return [`${at}: missing`];
        return Object.entries(declared).flatMap(([k, v]) => differences(v, (live as Obj)[k], `${at}.${k}`));
    }
    if (Array.isArray(declared)) {
        if (!Array.isArray(live) || live.length !== declared.length) return [`${at}: ${JSON.stringify(live)} instead of ${JSON.stringify(declared)}`];
        return declared.flatMap((v, i) => differences(v, live[i], `${at}[${i}]`));
    }
    return declared === live ? [] : [`${at}: ${JSON.stringify(live)} instead of ${JSON.stringify(declared)}`];
}

describe("real engines: the e2e stack on a loopback fleet", function () {
    const world: Partial<E2eWorld> = {};
    let w: E2eWorld;

    before(async function () {
        const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-e2e-"));
        world.runDir = runDir;
        Object.assign(world, await startWorld(runDir));
        w = world as E2eWorld;
    });

    after(async function () {
        await stopWorld(world);
        await stopAll();
    });

    const clusterOf = (name: string): Credentials => w.fleet.cluster(name).admin;
    const offline = () => evaluate(E2E_STACK, { root: w.project });

    /** The tenant's cluster Secret on the hub: its registration, which its tenant stack owns. */
    const clusterSecretPath = (tenant: string) => `/api/v1/namespaces/argocd/secrets/cluster-${tenant}`;

    it("pulumi preview on a fresh fleet plans exactly the resources the offline evaluation declares", async () => {
        const preview = await w.pulumi.stack.preview();
        // And the CRDs the provider reads into the hub's CRD ConfigGroup (offline, the program only names their files).
        const expected = (await offline()).resources.length + ARGOCD_CRD_FILES.length;
        assert.strictEqual(preview.changeSummary.create, expected, JSON.stringify(preview.changeSummary));
    });

    it("pulumi up creates them, the tenant stacks then register the tenants, and every object the offline evaluation of the hub and its tenant stacks declares exists, field for field", async () => {
        const up = await w.pulumi.stack.up({ onOutput: () => undefined });
        assert.strictEqual(up.summary.result, "succeeded");
        const hub = await offline();
        assert.deepStrictEqual([...new Set(declaredObjects(hub).map((o) => o.cluster))], [HUB], "the hub stack declares something on a tenant");
        await registerTenants(w);
        const objects = await fleetObjects(hub, w.project);
        // Each tenant's registration on the hub, and argocd-manager on each bootstrap tenant.
        for (const t of w.tenants) assert.ok(objects.some((o) => o.cluster === HUB && (o.object as Obj).metadata?.name === `cluster-${t.name}`), `the offline evaluation registers no ${t.name}`);
        for (const t of w.tenants) assert.strictEqual(objects.some((o) => o.cluster === t.name), t.credentials === "bootstrap", `${t.name} (${t.credentials}): objects on the tenant`);
        for (const o of objects) {
            const obj = o.object as Obj;
            if (obj.kind === "Secret") {
                // Values are secret (and the offline ones placeholders): compare everything else, and the keys.
                const live = await request(clusterOf(o.cluster), "GET", objectPath(obj.apiVersion, obj.kind, obj.metadata.name, obj.metadata.namespace));
                assert.deepStrictEqual(differences({ metadata: obj.metadata, type: obj.type }, live), [], `${o.cluster}: Secret ${obj.metadata.name}`);
                if (obj.stringData) assert.deepStrictEqual(Object.keys(live.data ?? {}).sort(), Object.keys(obj.stringData).sort(), `${o.cluster}: Secret ${obj.metadata.name} keys`);
                continue;
            }
            if (obj.kind === undefined) continue; // the helm Release: checked through what it installed, below
            const live = await request(clusterOf(o.cluster), "GET", objectPath(obj.apiVersion, obj.kind, obj.metadata.name, obj.metadata.namespace ?? undefined));
            assert.deepStrictEqual(differences(obj, live), [], `${o.cluster}: ${obj.kind} ${obj.metadata.name}`);
        }
    });

    it("the argo-cd chart received agentfleet's configuration: progressive syncs on, the Lua health checks, the notification triggers", async () => {
        const hub = clusterOf(HUB);
        const params = await request(hub, "GET", "/api/v1/namespaces/argocd/configmaps/argocd-cmd-params-cm");
        assert.strictEqual(params.data["applicationsetcontroller.enable.progressive.syncs"], "true");
        const cm = await request(hub, "GET", "/api/v1/namespaces/argocd/configmaps/argocd-cm");
        const checks = healthCheckCmValues(loadHealthChecks());
        assert.ok(Object.keys(checks).length >= 2);
        for (const [key, script] of Object.entries(checks)) assert.strictEqual(cm.data[key], script, `argocd-cm ${key} is not the Lua agentfleet ships`);
        const notifications = await request(hub, "GET", "/api/v1/namespaces/argocd/configmaps/argocd-notifications-cm");
        assert.ok(Object.keys(notifications.data).some((k) => k === "trigger.on-rollout-step-started"), Object.keys(notifications.data).join(", "));
        const crds = await request(hub, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions");
        for (const name of ["applications.argoproj.io", "applicationsets.argoproj.io", "appprojects.argoproj.io"]) assert.ok(crds.items.some((c: Obj) => c.metadata.name === name), `no CRD ${name}`);
    });

    it("the hub's CRDs are the argocd engine's (v3.6.2), from hub.crdsSource, applied server-side by Pulumi, not the chart's", async () => {
        const hub = clusterOf(HUB);
        const source = path.join(w.engines.argocd.dir, "crds");
        for (const file of ARGOCD_CRD_FILES) {
            const expected = parse(fs.readFileSync(path.join(source, file), "utf8"));
            const live = await request(hub, "GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${expected.metadata.name}`);
            assert.deepStrictEqual(differences(expected.spec, live.spec), [], `CRD ${expected.metadata.name} is not the engine's ${file}`);
            assert.ok(crdHasField(live, V3_6_CRD_FIELDS[file]), `CRD ${expected.metadata.name} lacks ${V3_6_CRD_FIELDS[file].join(".")}`);
            const managers = live.metadata.managedFields.map((m: Obj) => `${m.manager}/${m.operation}`);
            assert.ok(managers.some((m: string) => /^pulumi-kubernetes-.*\/Apply$/.test(m)), `CRD ${expected.metadata.name} not applied server-side by Pulumi: ${managers.join(", ")}`);
            assert.ok(!live.metadata.labels?.["app.kubernetes.io/managed-by"], `CRD ${expected.metadata.name} was installed by Helm`);
        }
    });

    it("a second pulumi up changes nothing, and preview --refresh --expect-no-changes passes", async () => {
        const up = await w.pulumi.stack.up({ onOutput: () => undefined });
        const changed = Object.entries(up.summary.resourceChanges ?? {}).filter(([op]) => op !== "same");
        assert.deepStrictEqual(changed, []);
        await w.pulumi.stack.preview({ refresh: true, expectNoChanges: true });
    });

    it("bootstrap tenants: their onboarding stacks made argocd-manager on each tenant, and nothing else of agentfleet is there", async () => {
        for (const tenant of w.tenants.filter((t) => t.credentials === "bootstrap")) {
            const admin = clusterOf(tenant.name);
            for (const path of [
                "/api/v1/namespaces/voice-agent",
                "/api/v1/namespaces/kube-system/serviceaccounts/argocd-manager",
                "/apis/rbac.authorization.k8s.io/v1/namespaces/voice-agent/roles/argocd-manager-role",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/argocd-manager-cluster-role",
            ]) assert.ok(await getOrUndefined(admin, path), `${tenant.name}: no ${path}`);
        }
    });

    it("bootstrap tenant: the real token controller's argocd-manager token reaches the hub and authenticates with exactly the promised rights", async () => {
        const tenant = w.tenants.find((t) => t.credentials === "bootstrap")!;
        const secret = await request(clusterOf(HUB), "GET", `/api/v1/namespaces/argocd/secrets/cluster-${tenant.name}`);
        const config = JSON.parse(Buffer.from(secret.data.config, "base64").toString("utf8"));
        assert.strictEqual(Buffer.from(secret.data.server, "base64").toString("utf8"), tenant.server);
        const asManager: Credentials = { server: tenant.server, ca: Buffer.from(config.tlsClientConfig.caData, "base64").toString("utf8"), token: config.bearerToken };
        const review = await request(asManager, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" });
        assert.strictEqual(review.status.userInfo.username, "system:serviceaccount:kube-system:argocd-manager");
        // What Argo CD needs, and nothing more: everything in the agent's namespace, read-only discovery elsewhere.
        await request(asManager, "GET", "/api/v1/namespaces/voice-agent/configmaps");
        const admin = clusterOf(tenant.name);
        const user = "system:serviceaccount:kube-system:argocd-manager";
        const may = (verb: string, resource: string, namespace?: string, group = "", name?: string) => canI(admin, { user, verb, resource, namespace, group, name });
        assert.ok(await may("create", "deployments", "voice-agent", "apps"));
        assert.ok(await may("delete", "jobs", "voice-agent", "batch"));
        assert.ok(await may("get", "namespaces", undefined, "", "voice-agent"), "argocd-manager cannot read its namespace");
        assert.ok(!(await may("get", "namespaces", undefined, "", "kube-system")), "argocd-manager can read other namespaces");
        assert.ok(!(await may("get", "secrets", "kube-system")), "argocd-manager can read kube-system secrets");
        assert.ok(!(await may("create", "deployments", "default", "apps")), "argocd-manager can deploy outside its namespaces");
        assert.ok(!(await may("create", "namespaces")), "argocd-manager can create namespaces");
        assert.ok(!(await may("create", "clusterrolebindings", undefined, "rbac.authorization.k8s.io")), "argocd-manager can grant itself more");
        await assert.rejects(request(asManager, "GET", "/api/v1/namespaces/kube-system/secrets"), /HTTP 403/);
    });

    it("token tenant: its pre-issued token and CA reach the hub cluster Secret unchanged, and nothing is created on it", async () => {
        const tenant = w.tenants.find((t) => t.credentials === "token")!;
        const secret = await request(clusterOf(HUB), "GET", `/api/v1/namespaces/argocd/secrets/cluster-${tenant.name}`);
        const config = JSON.parse(Buffer.from(secret.data.config, "base64").toString("utf8"));
        const asArgo: Credentials = { server: tenant.server, ca: Buffer.from(config.tlsClientConfig.caData, "base64").toString("utf8"), token: config.bearerToken };
        const review = await request(asArgo, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" });
        assert.strictEqual(review.status.userInfo.username, "system:serviceaccount:kube-system:preissued-argocd");
        assert.strictEqual(await getOrUndefined(clusterOf(tenant.name), "/api/v1/namespaces/kube-system/serviceaccounts/argocd-manager"), undefined);
    });

    it("an out-of-band edit of a cluster Secret is its tenant stack's drift: exactly that in the tenant stack's preview --refresh, none in the hub's, and the tenant stack's up repairs it", async () => {
        const tenant = w.tenants.find((t) => t.credentials === "bootstrap")!;
        const hub = clusterOf(HUB);
        await request(hub, "PATCH", clusterSecretPath(tenant.name), { metadata: { labels: { ring: "hand-edited" } } }, MERGE);
        await w.pulumi.stack.preview({ refresh: true, expectNoChanges: true });
        await withTenantStack(w, tenant.name, async (stack) => {
            const preview = await stack.preview({ refresh: true, diff: true });
            assert.strictEqual(preview.changeSummary.update, 1, JSON.stringify(preview.changeSummary));
            assert.match(preview.stdout, new RegExp(`TenantRegistration\\$kubernetes:core/v1:Secret::${tenant.name}-cluster\\b`));
            assert.match(preview.stdout, /ring\s*:\s*"hand-edited"\s*=>\s*"canary"/);
            await stack.up({ refresh: true, onOutput: () => undefined });
            await stack.preview({ refresh: true, expectNoChanges: true });
        });
        const repaired = await request(hub, "GET", clusterSecretPath(tenant.name));
        assert.strictEqual(repaired.metadata.labels.ring, "canary");
    });

    it("an out-of-band edit of argocd-manager's Role on a tenant is repaired by running the tenant's bootstrap again, and the hub keeps its token", async () => {
        const tenant = w.tenants.find((t) => t.credentials === "bootstrap")!;
        const role = "/apis/rbac.authorization.k8s.io/v1/namespaces/voice-agent/roles/argocd-manager-role";
        await request(clusterOf(tenant.name), "PATCH", role, { rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }] }, MERGE);
        const before = await request(clusterOf(HUB), "GET", `/api/v1/namespaces/argocd/secrets/cluster-${tenant.name}`);
        const outcomes = await onboardTenants({
            hub: { stack: E2E_STACK, root: w.project },
            engine: onboardingEngine(w),
            targets: [{ name: tenant.name, kubeconfigFile: w.fleet.cluster(tenant.name).kubeconfigPath }],
            hubKubeconfig: fs.readFileSync(w.fleet.hub.kubeconfigPath, "utf8"),
            parallel: 1,
            log: () => undefined,
        });
        assert.deepStrictEqual(outcomes.map((o) => [o.tenant, o.ok, o.error]), [[tenant.name, true, undefined]]);
        const repaired = await request(clusterOf(tenant.name), "GET", role);
        assert.deepStrictEqual(repaired.rules.map((r: Obj) => r.verbs), [["*"]]);
        await w.pulumi.stack.preview({ refresh: true, expectNoChanges: true });
        const after = await request(clusterOf(HUB), "GET", `/api/v1/namespaces/argocd/secrets/cluster-${tenant.name}`);
        assert.strictEqual(after.data.config, before.data.config, "re-running bootstrap changed the hub's credential");
    });

    it("a broken tenant file fails the real CLI with the offline loader's message, naming the file and key, before any resource is touched", async () => {
        // The CLI runs the program in the project root: it reads the inventory from fleet/e2e/ there.
        const file = path.join(w.project, "fleet", E2E_STACK, `${w.tenants[1].name}.yaml`);
        const saved = fs.readFileSync(file, "utf8");
        fs.writeFileSync(file, saved.replace(/^ring: .*$/m, 'ring: "Not A Ring!"'));
        try {
            const problems = await offline().then(() => [] as string[], (err) => (err as { problems?: string[] }).problems ?? [String(err)]);
            assert.ok(problems.some((p) => p.startsWith(`fleet/${E2E_STACK}/${w.tenants[1].name}.yaml: ring: `)), JSON.stringify(problems));
            assert.ok(problems.every((p) => p.startsWith("agentfleet:") || p.startsWith(`fleet/${E2E_STACK}/`)), JSON.stringify(problems));
            const before = (await w.pulumi.stack.exportStack()).deployment.resources.length;
            const failed = await w.pulumi.stack.up({ onOutput: () => undefined }).then(() => undefined, (err: Error) => err.message);
            assert.ok(failed, "pulumi up accepted a broken stack file");
            for (const problem of problems) assert.ok(failed.includes(problem), `the CLI did not report: ${problem}`);
            assert.strictEqual((await w.pulumi.stack.exportStack()).deployment.resources.length, before);
        } finally {
            fs.writeFileSync(file, saved);
        }
        await w.pulumi.stack.preview({ expectNoChanges: true });
    });

    it("a run whose KUBECONFIG names another cluster than hub.server (a tenant's) is refused, naming both, before any resource is touched", async () => {
        const workspace = w.pulumi.stack.workspace as LocalWorkspace;
        const tenant = w.tenants[0];
        const before = (await w.pulumi.stack.exportStack()).deployment.resources.length;
        workspace.envVars.KUBECONFIG = w.fleet.cluster(tenant.name).kubeconfigPath;
        try {
            const failed = await w.pulumi.stack.up({ onOutput: () => undefined }).then(() => undefined, (err: Error) => err.message);
            assert.ok(failed, "pulumi up ran against another cluster's kubeconfig");
            assert.ok(failed.includes(`agentfleet:hub.server: the kubeconfig in KUBECONFIG (${w.fleet.cluster(tenant.name).kubeconfigPath}) points context "${tenant.name}" at ${tenant.server}, not at Pulumi.${E2E_STACK}.yaml's hub ${w.fleet.hub.server}; nothing was touched`), failed.slice(-2000));
            assert.strictEqual((await w.pulumi.stack.exportStack()).deployment.resources.length, before);
            const onTenant = await request(clusterOf(tenant.name), "GET", "/api/v1/namespaces/argocd").then(() => true, () => false);
            assert.ok(!onTenant, "something created Argo CD's namespace on the tenant");
        } finally {
            workspace.envVars.KUBECONFIG = w.fleet.hub.kubeconfigPath;
        }
        await w.pulumi.stack.preview({ expectNoChanges: true });
    });

    it("an unreachable tenant changes nothing for the hub stack: preview --refresh still finds no changes", async () => {
        const tenant = w.tenants.find((t) => t.credentials === "token")!;
        await w.fleet.stopCluster(tenant.name);
        await assert.rejects(request(clusterOf(tenant.name), "GET", "/readyz"));
        await w.pulumi.stack.preview({ refresh: true, expectNoChanges: true });
    });

    it("tenant rotate is one run: the hub's cluster Secret then holds a new token, which the tenant's API server authenticates as argocd-manager, and the old token no longer authenticates; the hub stack has nothing to do", async () => {
        const tenant = w.tenants.find((t) => t.credentials === "bootstrap")!;
        const admin = clusterOf(tenant.name);
        const registered = async (): Promise<Obj> => JSON.parse(Buffer.from((await request(clusterOf(HUB), "GET", clusterSecretPath(tenant.name))).data.config, "base64").toString("utf8"));
        /** A real request with the token: its HTTP status. */
        const requestWith = (token: string): Promise<number> =>
            request({ server: tenant.server, ca: w.fleet.cluster(tenant.name).ca, token }, "GET", "/api/v1/namespaces/voice-agent/configmaps").then(
                () => 200,
                (err) => (err instanceof KubeError ? err.status : Promise.reject(err)),
            );
        const MANAGER = "system:serviceaccount:kube-system:argocd-manager";
        const old = String((await registered()).bearerToken);
        assert.strictEqual(await tokenUser(admin, old), MANAGER);

        const rotated = tenantCommand(w, "rotate", "--name", tenant.name, "--kubeconfig", w.fleet.cluster(tenant.name).kubeconfigPath);
        assert.strictEqual(rotated.status, 0, rotated.stderr);
        const current = String((await registered()).bearerToken);
        assert.notStrictEqual(current, old, "the hub's cluster Secret still holds the old token");
        assert.ok(![old, current].some((token) => rotated.stdout.includes(token) || rotated.stderr.includes(token)), "a token reached the terminal");
        assert.deepStrictEqual([await tokenUser(admin, current), await requestWith(current)], [MANAGER, 200], "the registered token does not work");
        // The API server caches a token's successful authentication for 10 s (pkg/kubeapiserver/authenticator), so the revoked token is refused within that.
        await waitFor("the old token to be refused", async () => (await tokenUser(admin, old)) === undefined && (await requestWith(old)) === 401, { attempts: 30, intervalMs: 1000 });
        assert.deepStrictEqual([await tokenUser(admin, old), await requestWith(old)], [undefined, 401], "the old token still authenticates");
        await w.pulumi.stack.preview({ refresh: true, expectNoChanges: true });
    });

    it("no stack's state holds a kubeconfig, the hub's or a tenant's: the hub stack and every tenant stack (its `hub` provider included), exported with --show-secrets", async () => {
        const clusters = [...w.tenants.map((t) => w.fleet.cluster(t.name)), w.fleet.hub];
        const findings = kubeconfigFindings(exportWithSecrets(w.pulumi.env, w.bins, "agentfleet", E2E_STACK), clusters).map((f) => `${E2E_STACK}: ${f}`);
        for (const t of w.tenants) {
            const stack = onboardingStackName(E2E_STACK, t.name);
            const exported = exportWithSecrets(w.pulumi.env, w.bins, ONBOARDING_PROJECT, stack);
            // The provider that reaches the hub is in every tenant stack's state, and loads the run's KUBECONFIG.
            const hubProvider = (JSON.parse(exported).deployment.resources as Obj[]).find((r) => r.type === "pulumi:providers:kubernetes" && r.urn.endsWith("::hub"));
            assert.ok(hubProvider, `${stack}: no hub provider in its state`);
            assert.strictEqual(hubProvider.inputs.kubeconfig, "", `${stack}: its hub provider's kubeconfig input is not empty`);
            findings.push(...kubeconfigFindings(exported, clusters).map((f) => `${stack}: ${f}`));
        }
        assert.deepStrictEqual(findings, []);
    });

    it("tenant remove is one run: the tenant is deregistered from the hub, its argocd-manager is gone from the tenant, its agent namespace stays, and its tenant stack and file are gone", async () => {
        const tenant = w.tenants.filter((t) => t.credentials === "bootstrap").at(-1)!;
        const manager = "/api/v1/namespaces/kube-system/serviceaccounts/argocd-manager";
        const onTenant = (p: string) => getOrUndefined(clusterOf(tenant.name), p);
        const file = path.join(w.project, "fleet", E2E_STACK, `${tenant.name}.yaml`);
        assert.ok((await getOrUndefined(clusterOf(HUB), clusterSecretPath(tenant.name))) && (await onTenant(manager)) && fs.existsSync(file), `${tenant.name} is not registered and bootstrapped`);

        const removed = tenantCommand(w, "remove", "--name", tenant.name, "--kubeconfig", w.fleet.cluster(tenant.name).kubeconfigPath);
        assert.strictEqual(removed.status, 0, removed.stderr);
        assert.strictEqual(await getOrUndefined(clusterOf(HUB), clusterSecretPath(tenant.name)), undefined, "the tenant is still registered on the hub");
        assert.strictEqual(await onTenant(manager), undefined, "argocd-manager is still on the tenant");
        assert.strictEqual(await onTenant("/apis/rbac.authorization.k8s.io/v1/clusterroles/argocd-manager-cluster-role"), undefined, "argocd-manager's ClusterRole is still on the tenant");
        assert.ok(await onTenant("/api/v1/namespaces/voice-agent"), "the agent namespace was deleted");
        assert.strictEqual(await onboardingEngine(w).tokenState(onboardingStackName(E2E_STACK, tenant.name)), undefined, "its tenant stack is left");
        assert.ok(!fs.existsSync(file), "its tenant file is left");
    });

    it("as a prod stack, pulumi destroy is refused for the protected rollout objects, and they stay", async () => {
        // Edited as YAML, so hub.nodes stays a number.
        const file = path.join(w.project, `Pulumi.${E2E_STACK}.yaml`);
        const doc = parseDocument(fs.readFileSync(file, "utf8"));
        doc.setIn(["config", "agentfleet:environment"], "prod");
        doc.setIn(["config", "agentfleet:hub", "nodes"], 3);
        fs.writeFileSync(file, doc.toString());
        await w.pulumi.stack.up({ onOutput: () => undefined });
        const failed = await w.pulumi.stack.destroy({ onOutput: () => undefined }).then(() => undefined, (err: Error) => err.message);
        assert.ok(failed, "pulumi destroy of a prod stack went through");
        assert.match(failed, /protected/);
        const hub = clusterOf(HUB);
        assert.ok(await getOrUndefined(hub, "/apis/argoproj.io/v1alpha1/namespaces/argocd/applicationsets/voice-agent"), "the ApplicationSet is gone");
        const projects = await request(hub, "GET", "/apis/argoproj.io/v1alpha1/namespaces/argocd/appprojects");
        assert.strictEqual(projects.items.length, 1, "the AppProject is gone");
    });
});
