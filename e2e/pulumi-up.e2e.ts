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
import { execFileSync, spawnSync } from "child_process";
import { parse, parseDocument } from "yaml";
import { ARGOCD_CRD_FILES } from "../stacks/config";
import { onboardTenants } from "../tenants/onboard";
import type { OnboardingEngine } from "../tenants/engine";
import { ONBOARDING_CONTEXT, readTenantKubeconfig, withTenantKubeconfig } from "../tenants/kubeconfig";
import { ONBOARDING_PROJECT, onboardingStackName } from "../tenants/onboarding-program";
import { type E2eWorld, HUB, E2E_STACK, V3_6_CRD_FIELDS, checkoutAt, crdHasField, onboardingEngine, startWorld, stopWorld } from "./harness/project";
import { exportWithSecrets, kubeconfigFindings } from "./harness/state";
import { type Credentials, KubeError, canI, getOrUndefined, objectPath, request } from "./harness/kube";
import { stopAll, waitFor } from "./harness/processes";
import { git } from "../tests/helpers";
import { readView } from "../tenants/stack-file";

type Obj = Record<string, any>;
const MERGE = "application/merge-patch+json";
/** The last commit whose onboarding program gave the tenant's provider the admin kubeconfig as an input. */
const KUBECONFIG_INPUT_COMMIT = "6da46baa2fdbbaee0343b6c9422ddfe1d75530ee";

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
    /** Merges the project copy's e2e stack file to main, and fetches: what deploy.yml applies (--deployed-ref's default, origin/main). */
    const mergeStackFile = () => {
        // The stack file and the tenant files: what deploy.yml applies.
        git(w.project, "add", "-A", "--", `fleet/${E2E_STACK}`);
        git(w.project, "commit", "-q", "--allow-empty", "-m", "merge the stack file and the tenant files", "--", `Pulumi.${E2E_STACK}.yaml`, `fleet/${E2E_STACK}`);
        git(w.project, "update-ref", "refs/remotes/origin/main", "HEAD");
    };
    const offline = () => evaluate(E2E_STACK, { root: w.project });

    /**
     * Admin kubeconfig material in the state of every stack of the run, exported with --show-secrets:
     * any piece of any cluster's admin credential (the hub's included) or any kubeconfig marker,
     * anywhere in each onboarding stack and in the hub stack.
     */
    const kubeconfigsInState = (): string[] => {
        const clusters = [...w.tenants.map((t) => w.fleet.cluster(t.name)), w.fleet.hub];
        const onboarding = w.tenants.filter((t) => t.credentials === "bootstrap").map((t) => onboardingStackName(E2E_STACK, t.name));
        return [
            ...kubeconfigFindings(exportWithSecrets(w.pulumi.env, w.bins, "agentfleet", E2E_STACK), clusters).map((f) => `${E2E_STACK}: ${f}`),
            ...onboarding.flatMap((stack) => kubeconfigFindings(exportWithSecrets(w.pulumi.env, w.bins, ONBOARDING_PROJECT, stack), clusters).map((f) => `${stack}: ${f}`)),
        ];
    };

    it("pulumi preview on a fresh fleet plans exactly the resources the offline evaluation declares", async () => {
        const preview = await w.pulumi.stack.preview();
        // And the CRDs the provider reads into the hub's CRD ConfigGroup (offline, the program only names their files).
        const expected = (await offline()).resources.length + ARGOCD_CRD_FILES.length;
        assert.strictEqual(preview.changeSummary.create, expected, JSON.stringify(preview.changeSummary));
    });

    it("pulumi up creates them, and every object the offline evaluation declares exists on the hub, field for field", async () => {
        const up = await w.pulumi.stack.up({ onOutput: () => undefined });
        assert.strictEqual(up.summary.result, "succeeded");
        const objects = declaredObjects(await offline());
        assert.deepStrictEqual([...new Set(objects.map((o) => o.cluster))], [HUB], "the hub stack declares something on a tenant");
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

    it("an out-of-band edit of a cluster Secret shows as exactly that drift in the hub's preview --refresh, and up --refresh repairs it", async () => {
        const tenant = w.tenants.find((t) => t.credentials === "bootstrap")!;
        const hub = clusterOf(HUB);
        await request(hub, "PATCH", `/api/v1/namespaces/argocd/secrets/cluster-${tenant.name}`, { metadata: { labels: { ring: "hand-edited" } } }, MERGE);
        const preview = await w.pulumi.stack.preview({ refresh: true, diff: true });
        assert.strictEqual(preview.changeSummary.update, 1, JSON.stringify(preview.changeSummary));
        assert.match(preview.stdout, new RegExp(`tenants-${tenant.name}\\b`));
        await w.pulumi.stack.up({ refresh: true, onOutput: () => undefined });
        const repaired = await request(hub, "GET", `/api/v1/namespaces/argocd/secrets/cluster-${tenant.name}`);
        assert.strictEqual(repaired.metadata.labels.ring, "canary");
        await w.pulumi.stack.preview({ refresh: true, expectNoChanges: true });
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

    it("tenant rotate: a new token while the old one keeps working; rotate --finish refuses until the hub's pulumi up registered it and main's stack file holds it, then revokes the old token", async () => {
        const tenant = w.tenants.find((t) => t.credentials === "bootstrap")!;
        const hubConfig = async (): Promise<Obj> => JSON.parse(Buffer.from((await request(clusterOf(HUB), "GET", `/api/v1/namespaces/argocd/secrets/cluster-${tenant.name}`)).data.config, "base64").toString("utf8"));
        const asToken = (config: Obj): Credentials => ({ server: tenant.server, ca: Buffer.from(config.tlsClientConfig.caData, "base64").toString("utf8"), token: config.bearerToken });
        // Who the tenant's API server says a token is; 401 when it no longer authenticates.
        const whoami = (config: Obj): Promise<string | number> =>
            request(asToken(config), "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }).then(
                (r) => r.status.userInfo.username,
                (err) => (err instanceof KubeError ? err.status : Promise.reject(err)),
            );
        const tenantCommand = (...args: string[]) =>
            spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "commands/tenant.ts", ...args, "--stack", E2E_STACK, "--name", tenant.name, "--kubeconfig", w.fleet.cluster(tenant.name).kubeconfigPath], {
                cwd: w.project,
                env: { ...process.env, ...w.pulumi.env },
                encoding: "utf8",
                timeout: 10 * 60_000,
            });
        const MANAGER = "system:serviceaccount:kube-system:argocd-manager";
        const old = await hubConfig();
        assert.strictEqual(await whoami(old), MANAGER);
        mergeStackFile();

        const rotated = tenantCommand("rotate");
        assert.strictEqual(rotated.status, 0, rotated.stderr);
        const early = tenantCommand("rotate", "--finish");
        assert.strictEqual(early.status, 1, early.stdout);
        assert.match(early.stderr, /the hub's last pulumi up did not register token 1 yet, so Argo CD still uses token 0/);
        assert.strictEqual(await whoami(old), MANAGER, "the token Argo CD uses stopped working before the hub's pulumi up");

        await w.pulumi.stack.up({ onOutput: () => undefined });
        const current = await hubConfig();
        assert.notStrictEqual(current.bearerToken, old.bearerToken, "the hub still registers the old token");
        assert.deepStrictEqual([await whoami(old), await whoami(current)], [MANAGER, MANAGER]);

        // main's stack file (decrypted by the real CLI from a temporary copy) still holds the old token.
        const unmerged = tenantCommand("rotate", "--finish");
        assert.strictEqual(unmerged.status, 1, unmerged.stdout);
        assert.match(unmerged.stderr, /Pulumi\.e2e\.yaml at origin\/main does not hold token 1 \(tenantCredentials\.[^.]+\.bearerToken\), so deploy\.yml would re-apply token 0/);
        assert.ok(!unmerged.stderr.includes(old.bearerToken) && !unmerged.stderr.includes(current.bearerToken), "a token reached the terminal");
        assert.strictEqual(await whoami(old), MANAGER);

        mergeStackFile();
        const finished = tenantCommand("rotate", "--finish");
        assert.strictEqual(finished.status, 0, finished.stderr);
        // The API server caches a token's successful authentication for 10 s (pkg/kubeapiserver/authenticator), so the revoked token is refused within that.
        await waitFor("the revoked token to be refused (401)", async () => (await whoami(old)) === 401, { attempts: 30, intervalMs: 1000 });
        assert.deepStrictEqual([await whoami(old), await whoami(current)], [401, MANAGER], "after --finish only the registered token authenticates");
        await w.pulumi.stack.preview({ refresh: true, expectNoChanges: true });
    });

    it("no stack's state holds a kubeconfig, the hub's or a tenant's: every onboarding stack and the hub stack, exported with --show-secrets", async () => {
        assert.deepStrictEqual(kubeconfigsInState(), []);
    });

    it("an onboarding stack the previous agentfleet made (the admin kubeconfig a provider input) loses it at the next bootstrap, nothing replaced; a run with another cluster's KUBECONFIG (no agentfleet-tenant context) is refused and touches nothing", async () => {
        const tenant = w.tenants.filter((t) => t.credentials === "bootstrap").at(-1)!;
        const cluster = w.fleet.cluster(tenant.name);
        const stack = onboardingStackName(E2E_STACK, tenant.name);
        const hubSecret = `/api/v1/namespaces/argocd/secrets/cluster-${tenant.name}`;
        const onTenant = [
            "/api/v1/namespaces/voice-agent",
            "/api/v1/namespaces/kube-system/serviceaccounts/argocd-manager",
            "/api/v1/namespaces/kube-system/secrets/argocd-manager-long-lived-token",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/voice-agent/roles/argocd-manager-role",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/voice-agent/rolebindings/argocd-manager-role-binding",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/argocd-manager-cluster-role",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/argocd-manager-cluster-role-binding",
        ];
        const uids = async () => Promise.all(onTenant.map(async (p) => `${p} ${(await request(cluster.admin, "GET", p)).metadata.uid}`));
        const state = () => JSON.parse(exportWithSecrets(w.pulumi.env, w.bins, ONBOARDING_PROJECT, stack)).deployment.resources as Obj[];
        const contents = (resources: Obj[]) => resources.map((r) => JSON.stringify([r.urn, r.id, r.inputs, r.outputs]));
        const providerOf = (resources: Obj[]) => resources.find((r) => r.type === "pulumi:providers:kubernetes")!;
        const bootstrap = async (onboard: typeof onboardTenants, engine: OnboardingEngine, root = w.project) => {
            const outcomes = await onboard({ hub: { stack: E2E_STACK, root }, engine, targets: [{ name: tenant.name, kubeconfigFile: cluster.kubeconfigPath }], parallel: 1, log: () => undefined });
            assert.ok(outcomes.every((o) => o.ok), JSON.stringify(outcomes));
        };

        // The previous agentfleet's bootstrap, its own code, turns the stack back into the shape it made. Its refresh
        // runs the provider as the state has it (no kubeconfig input), so that run alone gets KUBECONFIG.
        const previous = checkoutAt(KUBECONFIG_INPUT_COMMIT, path.join(w.runDir, "kubeconfig-input"));
        const old = { ...require(path.join(previous, "tenants/onboard.ts")), ...require(path.join(previous, "tenants/engine.ts")) };
        // It checks the hub stack file of its own layout: the tenants and the hub's kubeconfig (a secret) in it, no hub.server.
        const oldLayout = parseDocument(readView(w.project, E2E_STACK));
        oldLayout.deleteIn(["config", "agentfleet:hub", "server"]);
        fs.writeFileSync(path.join(previous, `Pulumi.${E2E_STACK}.yaml`), oldLayout.toString());
        execFileSync(path.join(w.bins.pulumi, "pulumi"), ["config", "set", "--secret", "hubKubeconfig", "--stack", E2E_STACK, "--non-interactive"], { cwd: previous, env: { ...process.env, ...w.pulumi.env }, input: w.fleet.hub.kubeconfig, stdio: ["pipe", "ignore", "pipe"] });
        const checked = readTenantKubeconfig(cluster.kubeconfigPath, { server: tenant.server });
        await withTenantKubeconfig(checked, (env) => bootstrap(old.onboardTenants, old.automationEngine({ hubStack: E2E_STACK, root: previous, env: { ...w.pulumi.env, ...env }, pulumiBin: w.bins.pulumi }), previous));
        const before = state();
        assert.ok(providerOf(before).inputs.kubeconfig, "the previous agentfleet's provider has no kubeconfig input");
        const found = kubeconfigFindings(exportWithSecrets(w.pulumi.env, w.bins, ONBOARDING_PROJECT, stack), [cluster]);
        assert.ok(found.some((f) => f.startsWith(`${tenant.name}'s client-key-data in `)) && found.some((f) => f.startsWith("kind: Config in ")), `the search misses the previous shape's kubeconfig: ${found}`);
        const uidsBefore = await uids();
        const tokenBefore = (await request(w.fleet.hub.admin, "GET", hubSecret)).data.config;

        await bootstrap(onboardTenants, onboardingEngine(w));
        const after = state();
        assert.deepStrictEqual(kubeconfigFindings(exportWithSecrets(w.pulumi.env, w.bins, ONBOARDING_PROJECT, stack), [cluster, w.fleet.hub]), []);
        // Empty: the provider loads the run's KUBECONFIG (no kubeconfig, and no temporary file's path, in state).
        assert.strictEqual(providerOf(after).inputs.kubeconfig, "");
        assert.strictEqual(providerOf(after).inputs.context, ONBOARDING_CONTEXT);
        // Updated in place: a replaced provider gets a new id, and replaces every resource it manages.
        assert.strictEqual(providerOf(after).id, providerOf(before).id, "the provider was replaced");
        const ids = (resources: Obj[]) => resources.map((r) => `${r.urn} ${r.id ?? ""}`).sort();
        assert.deepStrictEqual(ids(after), ids(before));
        assert.deepStrictEqual(await uids(), uidsBefore, "an argocd-manager object on the tenant was recreated");
        assert.strictEqual((await request(w.fleet.hub.admin, "GET", hubSecret)).data.config, tokenBefore, "the hub's credential for the tenant changed");

        // Another cluster's kubeconfig (the hub's: its one context is "hub") as KUBECONFIG: refused, nothing touched anywhere.
        const engine = onboardingEngine(w);
        const tokens = (await engine.tokenState(stack))!;
        const hubManager = "/api/v1/namespaces/kube-system/serviceaccounts/argocd-manager";
        assert.strictEqual(await getOrUndefined(w.fleet.hub.admin, hubManager), undefined);
        const wrong = await engine.up(stack, { tenant: tenant.name, namespaces: ["voice-agent"], tokenGenerations: tokens.generations }, { KUBECONFIG: w.fleet.hub.kubeconfigPath }).then(
            () => "",
            (err: Error) => err.message,
        );
        process.stderr.write(`e2e: a run with the hub's kubeconfig as KUBECONFIG failed: ${wrong}\n`);
        // The provider finds no such context, counts the cluster unreachable, and every resource's refresh errors
        // (deleteUnreachable is off); the message gives the provider's reason, not only the engine's summary.
        assert.match(wrong, /^pulumi up of .* failed: error: failed to read resource state due to unreachable cluster/);
        assert.strictEqual(await getOrUndefined(w.fleet.hub.admin, hubManager), undefined, "the run reached the hub");
        assert.deepStrictEqual(await uids(), uidsBefore);
        assert.deepStrictEqual(contents(state()), contents(after), "the failed run changed the stack's state");

        assert.deepStrictEqual(kubeconfigsInState(), []);
    });

    it("tenant remove (with the tenant's kubeconfig), then pulumi up, merge, remove again: the tenant is deregistered, then its argocd-manager is gone and its agent namespace stays", async () => {
        const tenant = w.tenants.filter((t) => t.credentials === "bootstrap").at(-1)!;
        const remove = () =>
            spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "commands/tenant.ts", "remove", "--stack", E2E_STACK, "--name", tenant.name, "--kubeconfig", w.fleet.cluster(tenant.name).kubeconfigPath], {
                cwd: w.project,
                env: { ...process.env, ...w.pulumi.env },
                encoding: "utf8",
                timeout: 10 * 60_000,
            });
        const manager = () => getOrUndefined(clusterOf(tenant.name), "/api/v1/namespaces/kube-system/serviceaccounts/argocd-manager");
        mergeStackFile();
        const removed = remove();
        assert.strictEqual(removed.status, 0, removed.stderr);
        const up = await w.pulumi.stack.up({ onOutput: () => undefined });
        // Its cluster Secret, nothing else.
        assert.deepStrictEqual(up.summary.resourceChanges?.delete, 1, JSON.stringify(up.summary.resourceChanges));
        assert.strictEqual(await getOrUndefined(clusterOf(HUB), `/api/v1/namespaces/argocd/secrets/cluster-${tenant.name}`), undefined);
        assert.ok(await manager(), "argocd-manager was deleted while main's stack file still lists the tenant");
        const early = remove();
        assert.strictEqual(early.status, 1, early.stdout);
        assert.match(early.stderr, /Pulumi\.e2e\.yaml at origin\/main still lists tenant/);

        mergeStackFile();
        const destroyed = remove();
        assert.strictEqual(destroyed.status, 0, destroyed.stderr);
        assert.strictEqual(await manager(), undefined);
        assert.ok(await getOrUndefined(clusterOf(tenant.name), "/api/v1/namespaces/voice-agent"), "the agent namespace was deleted");
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
