/**
 * The probe gate and argocd-manager's rights on a real kube-apiserver v1.34.4 (loopback fleet:
 * kube-controller-manager runs the Deployment controller, kwok the pods).
 *
 * Probe gate: the chart's own prober script, with its own kubectl go-templates, run as its CronJob
 * would run it (the CronJob's env, the chart's prober ServiceAccount and Role) against the chart's
 * own Deployment, probing a stand-in agent on loopback. What is proven: the prober's write bumps
 * metadata.generation on a real API server, the verdict it records stays current anyway, the health
 * Lua (in the restricted VM double; Argo CD itself runs it in the i-argocd suite) says Healthy and
 * keeps saying it, a new pod template needs a new pass, and a failing agent turns it Degraded.
 * The pods run hostNetwork on kwok's node, whose IP is 127.0.0.1, so every probe stays on loopback.
 *
 * Tenant rights: on a hardened tenant (system:discovery no longer granted to all authenticated
 * users), argocd-manager with exactly the rules TenantAccess declares can make the requests
 * gitops-engine's cluster cache makes for a namespace-scoped cluster: version, discovery, the
 * OpenAPI document, and list of every namespaced kind in the agent namespace.
 */
import * as assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { parseAllDocuments, stringify } from "yaml";
import { MANAGER_ACCOUNT, MANAGER_NAMESPACE, NAMESPACE_RULES, managerClusterRules } from "../components/tenant-access";
import { ensureEngines } from "../engines/toolchain";
import { helmBinary } from "../evaluator/helm";
import { runHealthScript } from "../tests/doubles/lua-vm";
import { loadHealthChecks } from "../stacks/health-checks";
import { type Cluster, LoopbackFleet } from "./harness/fleet";
import { type Credentials, KubeError, canI, kubectlBinary, objectPath, request } from "./harness/kube";
import { freePort, stopAll, waitFor } from "./harness/processes";

const CHART = path.resolve(__dirname, "..", "charts", "voice-agent");
const NS = "voice-agent";
const MERGE = "application/merge-patch+json";
const log = (line: string) => process.stderr.write(`e2e rollout-gates: ${line}\n`);
const deploymentLua = loadHealthChecks().find((c) => c.key === "apps_Deployment")!.script;
type Obj = Record<string, any>;

/** The chart rendered for one tenant, as the ApplicationSet's valuesObject would set it. */
function renderChart(values: Record<string, string>): Obj[] {
    const sets = Object.entries({ "fleet.tenant": "t1", "ingress.baseDomain": "agents.example.test", ...values }).flatMap(([k, v]) => ["--set", `${k}=${v}`]);
    const out = spawnSync(helmBinary(), ["template", "voice-agent", CHART, "-n", NS, ...sets], { encoding: "utf8" });
    assert.strictEqual(out.status, 0, out.stderr);
    return parseAllDocuments(out.stdout).map((d) => d.toJSON()).filter((o) => o);
}

/** A kubeconfig file for a ServiceAccount token (the way a pod's in-cluster config authenticates). */
function tokenKubeconfig(dir: string, cluster: Cluster, token: string): string {
    const file = path.join(dir, `token-${Date.now()}.kubeconfig`);
    fs.writeFileSync(file, stringify({
        apiVersion: "v1", kind: "Config", "current-context": "sa",
        clusters: [{ name: "c", cluster: { server: cluster.server, "certificate-authority-data": Buffer.from(cluster.ca).toString("base64") } }],
        users: [{ name: "sa", user: { token } }],
        contexts: [{ name: "sa", context: { cluster: "c", user: "sa" } }],
    }), { mode: 0o600 });
    return file;
}

/** A long-lived token of a ServiceAccount, once the token controller has filled it. */
async function serviceAccountToken(admin: Credentials, namespace: string, account: string): Promise<string> {
    const name = `${account}-e2e-token`;
    await request(admin, "POST", `/api/v1/namespaces/${namespace}/secrets`, { apiVersion: "v1", kind: "Secret", type: "kubernetes.io/service-account-token", metadata: { name, annotations: { "kubernetes.io/service-account.name": account } } });
    let token = "";
    await waitFor(`token of ${namespace}/${account}`, async () => {
        const data = (await request(admin, "GET", `/api/v1/namespaces/${namespace}/secrets/${name}`)).data;
        token = data?.token ? Buffer.from(data.token, "base64").toString("utf8") : "";
        return token !== "";
    }, { attempts: 60, intervalMs: 500 });
    return token;
}

/** A stand-in agent on 127.0.0.1: answers the probe path with `status`, counting requests. */
class StandInAgent {
    status = 200;
    probes = 0;
    private server?: http.Server;
    constructor(readonly port: number, readonly probePath: string) {}
    start(): Promise<void> {
        this.server = http.createServer((req, res) => {
            if (req.url === this.probePath) this.probes++;
            res.writeHead(req.url === this.probePath ? this.status : 404).end();
        });
        return new Promise((resolve) => this.server!.listen(this.port, "127.0.0.1", () => resolve()));
    }
    stop(): Promise<void> {
        return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    }
}

describe("rollout gates on a real kube-apiserver (probe gate, argocd-manager's rights)", function () {
    let runDir: string;
    let fleet: LoopbackFleet;
    let tenant: Cluster;
    let admin: Credentials;
    /** The argocd engine's `argocd` (its `admin settings resource-overrides health` runs our Lua as Argo CD does). */
    let argocdBinary: string;

    before(async function () {
        runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-e2e-gates-"));
        const engines = await ensureEngines({ only: ["etcd", "kubernetes", "kwok", "argocd"], log });
        argocdBinary = path.join(engines.argocd.bin, "argocd");
        fleet = new LoopbackFleet({ clusters: ["tenant"], dir: path.join(runDir, "fleet"), bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin }, log });
        await fleet.start();
        tenant = fleet.hub;
        admin = tenant.admin;
        await request(admin, "POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    });

    after(async function () {
        await fleet?.stop();
        await stopAll();
        if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
    });

    describe("the probe gate: the chart's prober through the real API server", function () {
        let agent: StandInAgent;
        let proberEnv: Record<string, string>;
        let scriptDir: string;
        const deploymentPath = objectPath("apps/v1", "Deployment", "voice-agent", NS);
        const live = () => request(admin, "GET", deploymentPath);
        /**
         * The gate's verdict on the live Deployment: Argo CD's own evaluation (`argocd admin settings
         * resource-overrides health`, the argocd engine), which the Lua VM double must agree with.
         */
        const health = async () => {
            const deployment = await live();
            const verdict = argoCdHealth(argocdBinary, deployment);
            assert.deepStrictEqual(runHealthScript(deploymentLua, deployment), verdict, "the Lua VM double disagrees with Argo CD's own Lua evaluation");
            return verdict;
        };
        function argoCdHealth(argocd: string, deployment: Obj): { status: string; message: string } {
            const dir = fs.mkdtempSync(path.join(runDir, "argocd-health-"));
            fs.writeFileSync(path.join(dir, "argocd-cm.yaml"), stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "argocd-cm", namespace: "argocd" }, data: { "resource.customizations.health.apps_Deployment": deploymentLua } }));
            fs.writeFileSync(path.join(dir, "deployment.yaml"), stringify(deployment));
            const out = spawnSync(argocd, ["admin", "settings", "resource-overrides", "health", path.join(dir, "deployment.yaml"), "--argocd-cm-path", path.join(dir, "argocd-cm.yaml")], { encoding: "utf8", timeout: 60_000 });
            assert.strictEqual(out.status, 0, out.stderr);
            const field = (name: string) => (out.stdout.split("\n").find((l) => l.startsWith(`${name}:`)) ?? "").slice(name.length + 1).trim();
            return { status: field("STATUS"), message: field("MESSAGE") };
        }

        /**
         * One run of files/prober.sh, as one CronJob run: the CronJob's env, the prober's token.
         * Asynchronous: the stand-in agent answers from this process's event loop.
         */
        function runProber(): Promise<{ status: number | null; output: string }> {
            return new Promise((resolve, reject) => {
                const child = spawn("sh", [path.join(scriptDir, "prober.sh")], { env: proberEnv, stdio: ["ignore", "pipe", "pipe"] });
                let output = "";
                child.stdout.on("data", (d) => (output += d));
                child.stderr.on("data", (d) => (output += d));
                const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
                child.on("error", reject);
                child.on("close", (status) => {
                    clearTimeout(timer);
                    log(`prober: ${output.trim().split("\n").join(" | ")}`);
                    resolve({ status, output: output.trim() });
                });
            });
        }

        /** Rolled out, and the Deployment controller has observed the latest generation (the prober's own write included). */
        const settled = () => waitFor("Deployment rolled out and observed", async () => {
            const d = await live();
            const want = d.spec.replicas;
            return d.status?.observedGeneration === d.metadata.generation && d.status?.updatedReplicas === want && d.status?.availableReplicas === want && d.status?.replicas === want;
        }, { attempts: 240, intervalMs: 500 });

        before(async function () {
            agent = new StandInAgent(await freePort(), "/healthz");
            await agent.start();
            const objects = renderChart({ containerPort: String(agent.port), "prober.path": agent.probePath });
            // The agent's own objects and the prober's identity; the CronJob is run by this test instead.
            for (const o of objects.filter((o) => ["ServiceAccount", "ConfigMap", "Role", "RoleBinding", "Deployment"].includes(o.kind))) {
                if (o.kind === "Deployment") {
                    // kwok gives a hostNetwork pod its node's IP, 127.0.0.1; no scheduler here, so name the node.
                    Object.assign(o.spec.template.spec, { hostNetwork: true, nodeName: "kwok-node-0" });
                }
                await request(admin, "POST", objectPath(o.apiVersion, o.kind, "", NS).replace(/\/$/, ""), o);
            }
            const cronJob = objects.find((o) => o.kind === "CronJob" && o.metadata.name === "voice-agent-prober")!;
            const container = cronJob.spec.jobTemplate.spec.template.spec.containers[0];
            scriptDir = path.join(runDir, "prober");
            fs.mkdirSync(scriptDir);
            // The ConfigMap mounted at /opt/prober: the script and its go-templates.
            const configMap = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === cronJob.spec.jobTemplate.spec.template.spec.volumes.find((v: Obj) => v.name === "script").configMap.name)!;
            for (const [file, text] of Object.entries(configMap.data as Record<string, string>)) fs.writeFileSync(path.join(scriptDir, file), text);
            const kubectlDir = path.join(runDir, "bin");
            fs.mkdirSync(kubectlDir);
            fs.symlinkSync(kubectlBinary(), path.join(kubectlDir, "kubectl"));
            const token = await serviceAccountToken(admin, NS, cronJob.spec.jobTemplate.spec.template.spec.serviceAccountName);
            proberEnv = {
                ...Object.fromEntries((container.env as Obj[]).filter((e) => e.value !== undefined).map((e) => [e.name, String(e.value)])),
                NAMESPACE: NS, // fieldRef metadata.namespace
                HOME: path.join(runDir, "home"),
                KUBECONFIG: tokenKubeconfig(runDir, tenant, token),
                PATH: `${kubectlDir}:/usr/bin:/bin`,
            };
            await settled();
            const pods = (await request(admin, "GET", `/api/v1/namespaces/${NS}/pods`)).items as Obj[];
            const ips = pods.map((p) => p.status?.podIP);
            // Never probe anything off this machine's loopback.
            assert.ok(ips.length > 0 && ips.every((ip) => typeof ip === "string" && ip.startsWith("127.")), `agent pod IPs are not on loopback: ${ips.join(", ")}`);
        });

        after(async () => agent?.stop());

        it("passes once, and stays passed although its own write bumped metadata.generation", async () => {
            const before = await live();
            const revision = before.metadata.annotations["deployment.kubernetes.io/revision"];
            assert.ok(revision, "the Deployment controller recorded no revision");
            assert.strictEqual((await health()).status, "Progressing", "Healthy before any probe");

            const first = await runProber();
            assert.strictEqual(first.status, 0, first.output);
            await settled();
            // The gate's verdict once the Deployment controller has observed the prober's own write.
            assert.deepStrictEqual(await health(), { status: "Healthy", message: `Agent prober passed revision ${revision}` });
            const written = await live();
            assert.strictEqual(written.metadata.annotations["agentfleet.io/probe-result"], "pass", first.output);
            assert.strictEqual(written.metadata.annotations["agentfleet.io/probe-revision"], revision);
            assert.ok(written.metadata.generation > before.metadata.generation, `the annotation write did not bump the generation (${before.metadata.generation} -> ${written.metadata.generation}): the premise of this test is gone`);
            assert.strictEqual(written.metadata.annotations["deployment.kubernetes.io/revision"], revision, "the prober's write changed the revision");

            // The next CronJob runs: nothing probed, nothing written, still Healthy.
            const probes = agent.probes;
            const resourceVersion = (await live()).metadata.resourceVersion;
            for (let run = 0; run < 3; run++) {
                const again = await runProber();
                assert.strictEqual(again.status, 0, again.output);
                assert.match(again.output, new RegExp(`revision ${revision} already passed`));
            }
            assert.strictEqual(agent.probes, probes, "a passed revision was probed again");
            assert.strictEqual((await live()).metadata.resourceVersion, resourceVersion, "a passed revision was written again");
            assert.deepStrictEqual(await health(), { status: "Healthy", message: `Agent prober passed revision ${revision}` });
        });

        it("holds a new pod template until the prober passes it, and a failing agent turns it Degraded", async () => {
            const previous = (await live()).metadata.annotations["deployment.kubernetes.io/revision"];
            await request(admin, "PATCH", deploymentPath, { spec: { template: { metadata: { annotations: { "agentfleet.io/e2e-rollout": "2" } } } } }, MERGE);
            await settled();
            const revision = (await live()).metadata.annotations["deployment.kubernetes.io/revision"];
            assert.notStrictEqual(revision, previous);
            assert.deepStrictEqual(await health(), { status: "Progressing", message: `Waiting for the agent prober to pass revision ${revision} (last probe: revision ${previous})` });

            agent.status = 503;
            assert.strictEqual((await runProber()).status, 0);
            await settled();
            const failed = await health();
            assert.strictEqual(failed.status, "Degraded", failed.message);
            assert.match(failed.message, new RegExp(`^Agent prober failed revision ${revision}: 2/2 pods failed GET /healthz`));

            agent.status = 200;
            assert.strictEqual((await runProber()).status, 0);
            await settled();
            assert.deepStrictEqual(await health(), { status: "Healthy", message: `Agent prober passed revision ${revision}` });
        });
    });

    describe("argocd-manager on a hardened tenant (no system:discovery for all authenticated users)", function () {
        const user = `system:serviceaccount:${MANAGER_NAMESPACE}:${MANAGER_ACCOUNT}`;
        let manager: Credentials;

        before(async function () {
            // Hardened: discovery and OpenAPI no longer granted to every authenticated user. The
            // annotation keeps the API server from restoring the binding when it restarts.
            await request(admin, "PATCH", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:discovery", { metadata: { annotations: { "rbac.authorization.kubernetes.io/autoupdate": "false" } }, subjects: null }, MERGE);
            assert.strictEqual(await canI(admin, { user: "system:serviceaccount:default:default", verb: "get", path: "/openapi/v2" }), false, "the tenant is not hardened: any service account may GET /openapi/v2");

            // Exactly what TenantAccess declares (components/tenant-access.ts), for one agent namespace.
            const subject = { kind: "ServiceAccount", name: MANAGER_ACCOUNT, namespace: MANAGER_NAMESPACE };
            const rbac = "/apis/rbac.authorization.k8s.io/v1";
            await request(admin, "POST", `/api/v1/namespaces/${MANAGER_NAMESPACE}/serviceaccounts`, { metadata: { name: MANAGER_ACCOUNT } });
            await request(admin, "POST", `${rbac}/clusterroles`, { metadata: { name: "argocd-manager-cluster-role" }, rules: managerClusterRules([NS]) });
            await request(admin, "POST", `${rbac}/clusterrolebindings`, { metadata: { name: "argocd-manager-cluster-role-binding" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "argocd-manager-cluster-role" }, subjects: [subject] });
            await request(admin, "POST", `${rbac}/namespaces/${NS}/roles`, { metadata: { name: "argocd-manager-role" }, rules: NAMESPACE_RULES });
            await request(admin, "POST", `${rbac}/namespaces/${NS}/rolebindings`, { metadata: { name: "argocd-manager-role-binding" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "argocd-manager-role" }, subjects: [subject] });
            manager = { server: tenant.server, ca: tenant.ca, token: await serviceAccountToken(admin, MANAGER_NAMESPACE, MANAGER_ACCOUNT) };
        });

        it("may GET version, discovery and the OpenAPI documents (SubjectAccessReview, then with its token)", async () => {
            for (const p of ["/version", "/api", "/apis", "/api/v1", "/apis/apps/v1", "/openapi/v2", "/openapi/v3", "/openapi/v3/apis/apps/v1"]) {
                assert.strictEqual(await canI(admin, { user, verb: "get", path: p }), true, `argocd-manager may not GET ${p}`);
            }
            // gitops-engine LoadOpenAPISchema: discovery's OpenAPISchema() is GET /openapi/v2 (protobuf; JSON here).
            const v2 = await request(manager, "GET", "/openapi/v2");
            assert.ok(v2.definitions?.["io.k8s.api.apps.v1.Deployment"], "no Deployment in the OpenAPI v2 document");
            const v3 = await request(manager, "GET", "/openapi/v3");
            assert.ok(v3.paths?.["apis/apps/v1"], "no apps/v1 in the OpenAPI v3 index");
        });

        it("may list every namespaced kind in its agent namespace, as the cluster cache does, and nothing elsewhere", async () => {
            const groups = [{ gv: "v1", base: "/api/v1" }, ...((await request(manager, "GET", "/apis")).groups as Obj[]).map((g) => ({ gv: g.preferredVersion.groupVersion as string, base: `/apis/${g.preferredVersion.groupVersion}` }))];
            const listed: string[] = [];
            for (const { gv, base } of groups) {
                for (const r of (await request(manager, "GET", base)).resources as Obj[]) {
                    if (!r.namespaced || r.name.includes("/") || !r.verbs.includes("list") || !r.verbs.includes("watch")) continue;
                    await request(manager, "GET", `${base}/namespaces/${NS}/${r.name}?limit=1`).catch((err: unknown) => assert.fail(`argocd-manager cannot list ${gv} ${r.name} in ${NS}: ${(err as Error).message}`));
                    listed.push(`${gv}/${r.name}`);
                }
            }
            assert.ok(listed.includes("apps/v1/deployments") && listed.includes("v1/configmaps"), listed.join(", "));
            log(`argocd-manager listed ${listed.length} namespaced kinds in ${NS}`);
            // A namespace onboarding did not grant: the 403 that aborts the whole cluster cache.
            await assert.rejects(request(manager, "GET", `/apis/apps/v1/namespaces/default/deployments?limit=1`), (err: unknown) => err instanceof KubeError && err.status === 403);
        });
    });
});
