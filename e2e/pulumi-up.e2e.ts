/**
 * The real engines: agentfleet's own program, run by the real Pulumi CLI and Kubernetes provider
 * against real kube-apiservers (a loopback fleet with controller-managers and kwok). Each scenario
 * asserts what the engines did, read back from the API servers, not what the program asked for.
 * The scenarios build on each other, in order, on one fleet.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { declaredObjects, evaluate } from "../tools/evaluate";
import { type E2eWorld, HUB, E2E_STACK, startWorld, stopWorld } from "./harness/project";
import { type Credentials, canI, getOrUndefined, objectPath, request } from "./harness/kube";
import { stopAll } from "./harness/processes";

type Obj = Record<string, any>;

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

    it("pulumi preview on a fresh fleet plans exactly the resources the offline evaluation declares", async () => {
        const preview = await w.pulumi.stack.preview();
        const expected = (await offline()).resources.length;
        assert.strictEqual(preview.changeSummary.create, expected, JSON.stringify(preview.changeSummary));
    });

    it("pulumi up creates them, and every object the offline evaluation declares exists on its cluster, field for field", async () => {
        const up = await w.pulumi.stack.up({ onOutput: () => undefined });
        assert.strictEqual(up.summary.result, "succeeded");
        const objects = declaredObjects(await offline());
        assert.ok(objects.some((o) => o.cluster !== HUB), "the e2e stack declares nothing on a tenant");
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
        assert.ok(cm.data["resource.customizations.health.apps_Deployment"]?.includes("hs.status"), "no Deployment health check in argocd-cm");
        const notifications = await request(hub, "GET", "/api/v1/namespaces/argocd/configmaps/argocd-notifications-cm");
        assert.ok(Object.keys(notifications.data).some((k) => k === "trigger.on-rollout-step-started"), Object.keys(notifications.data).join(", "));
        const crds = await request(hub, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions");
        for (const name of ["applications.argoproj.io", "applicationsets.argoproj.io", "appprojects.argoproj.io"]) assert.ok(crds.items.some((c: Obj) => c.metadata.name === name), `no CRD ${name}`);
    });

    it("a second pulumi up changes nothing, and preview --refresh --expect-no-changes passes", async () => {
        const up = await w.pulumi.stack.up({ onOutput: () => undefined });
        const changed = Object.entries(up.summary.resourceChanges ?? {}).filter(([op]) => op !== "same");
        assert.deepStrictEqual(changed, []);
        await w.pulumi.stack.preview({ refresh: true, expectNoChanges: true });
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
        const may = (verb: string, resource: string, namespace?: string, group = "") => canI(admin, { user, verb, resource, namespace, group });
        assert.ok(await may("create", "deployments", "voice-agent", "apps"));
        assert.ok(await may("delete", "jobs", "voice-agent", "batch"));
        assert.ok(await may("get", "namespaces"), "argocd-manager cannot read its namespace");
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

    it("an out-of-band edit of a cluster Secret on the hub and of an argocd-manager Role on a tenant shows as drift in preview --refresh, and up repairs it", async () => {
        const tenant = w.tenants.find((t) => t.credentials === "bootstrap")!;
        const hub = clusterOf(HUB);
        const merge = "application/merge-patch+json";
        await request(hub, "PATCH", `/api/v1/namespaces/argocd/secrets/cluster-${tenant.name}`, { metadata: { labels: { ring: "hand-edited" } } }, merge);
        await request(clusterOf(tenant.name), "PATCH", "/apis/rbac.authorization.k8s.io/v1/namespaces/voice-agent/roles/argocd-manager-role", { rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }] }, merge);
        const preview = await w.pulumi.stack.preview({ refresh: true, diff: true });
        assert.strictEqual(preview.changeSummary.update, 2, JSON.stringify(preview.changeSummary));
        assert.match(preview.stdout, new RegExp(`${tenant.name}-cluster-secret`));
        assert.match(preview.stdout, new RegExp(`${tenant.name}-manager-role-voice-agent`));
        await w.pulumi.stack.up({ refresh: true, onOutput: () => undefined });
        const repaired = await request(hub, "GET", `/api/v1/namespaces/argocd/secrets/cluster-${tenant.name}`);
        assert.strictEqual(repaired.metadata.labels.ring, "canary");
        await w.pulumi.stack.preview({ refresh: true, expectNoChanges: true });
    });
});
