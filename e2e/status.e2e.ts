/**
 * `npm run status`, the real command as a process, against a real kube-apiserver on loopback with
 * Argo CD's own CRDs (v3.4.7): the e2e stack's ApplicationSet and its Applications live on the hub.
 *
 * THE TEST PLAYS ARGO CD'S PART: Argo CD's controllers cannot be built on this machine (their
 * gitops-engine module is not served by the module proxy; docs/real-engines.md),
 * so this suite writes the status the ApplicationSet controller (status.applicationStatus,
 * RolloutProgressing) and the application controller (sync, health, operationState) would
 * write, with Argo CD v3.4.7's field names and messages. What is proven: the command reads the
 * live objects through a kubeconfig, with a client certificate or a read-only token, reports them
 * correctly, follows them with --watch, fails clearly, and never prints a credential. What is
 * not: that Argo CD writes exactly these statuses at these moments.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { stringify } from "yaml";
import { ensureEngines } from "../engines/toolchain";
import { type Obj, applicationStatus, clusterParams, generatedApplication, objectsOf, rollingSyncEntry } from "../tests/helpers";
import { installArgoCdCrds } from "./harness/argocd";
import { LoopbackFleet } from "./harness/fleet";
import { E2E_HUB_PORT } from "./harness/project";
import { type Credentials, request } from "./harness/kube";
import { type Started, freePort, start, stopAll, waitFor } from "./harness/processes";

const STACK = "e2e";
const NS = "argocd";
const ARGO = `/apis/argoproj.io/v1alpha1/namespaces/${NS}`;
const MERGE = "application/merge-patch+json";
const NEW = "4f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39";
const OLD = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
const PROGRESSING_MSG = "Waiting for rollout to finish: 0 of 1 updated replicas are available...";
const DEGRADED_MSG = "Agent prober failed revision 3: warm-up call timed out";
/** Bound on one `npm run status` run (ts-node start-up included, on a loaded 2-core machine). */
const RUN_TIMEOUT_MS = 120_000;

const log = (line: string) => process.stderr.write(`e2e status: ${line}\n`);
const rfc3339 = (msAgo: number) => new Date(Date.now() - msAgo).toISOString().replace(/\.\d{3}Z$/, "Z");

type Rollout = "Waiting" | "Pending" | "Progressing" | "Healthy";
interface TenantMoment {
    sync: "Synced" | "OutOfSync";
    health: "Healthy" | "Progressing" | "Degraded";
    healthMessage?: string;
    revision: string;
    rollout: Rollout;
}

describe("npm run status against a real API server (the test plays Argo CD's controllers)", function () {
    let runDir: string;
    let fleet: LoopbackFleet;
    let hub: Credentials;
    let adminKubeconfig: string;
    let tokenKubeconfig: string;
    let token: string;
    let appSet: Obj;
    let apps: Obj[];
    const outputs: string[] = [];

    before(async function () {
        runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-e2e-status-"));
        const engines = await ensureEngines({ only: ["etcd", "kubernetes", "kwok", "argocd"], log });
        // The hub at the port Pulumi.e2e.yaml's hub.server names: npm run status refuses a kubeconfig of another server.
        fleet = new LoopbackFleet({ clusters: ["hub"], ports: { hub: E2E_HUB_PORT }, dir: path.join(runDir, "fleet"), bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin }, log });
        await fleet.start();
        hub = fleet.hub.admin;
        adminKubeconfig = fleet.hub.kubeconfigPath;
        await installArgoCdCrds(hub, engines.argocd.dir, NS);

        // A read-only identity, as a platform engineer's kubeconfig could be: get/list on the two kinds.
        await request(hub, "POST", `/api/v1/namespaces/${NS}/serviceaccounts`, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "rollout-reader" } });
        await request(hub, "POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`, { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "rollout-reader" }, rules: [{ apiGroups: ["argoproj.io"], resources: ["applicationsets", "applications"], verbs: ["get", "list"] }] });
        await request(hub, "POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`, { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "rollout-reader" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "rollout-reader" }, subjects: [{ kind: "ServiceAccount", name: "rollout-reader", namespace: NS }] });
        token = (await request(hub, "POST", `/api/v1/namespaces/${NS}/serviceaccounts/rollout-reader/token`, { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } })).status.token;
        tokenKubeconfig = path.join(runDir, "reader.kubeconfig");
        fs.writeFileSync(tokenKubeconfig, stringify({ apiVersion: "v1", kind: "Config", clusters: [{ name: "hub", cluster: { server: hub.server, "certificate-authority-data": Buffer.from(hub.ca).toString("base64") } }], users: [{ name: "reader", user: { token } }], contexts: [{ name: "hub", context: { cluster: "hub", user: "reader" } }], "current-context": "hub" }), { mode: 0o600 });
    });

    after(async function () {
        await fleet?.stop();
        await stopAll();
        if (runDir && !process.env.E2E_KEEP) fs.rmSync(runDir, { recursive: true, force: true });
    });

    let runs = 0;
    /** Starts `npm run status` with these flags; its stdout and stderr go to one log. */
    function startStatus(...flags: string[]): Started {
        const env = { ...process.env };
        delete env.KUBECONFIG;
        return start(`npm run status #${++runs}`, "npm", ["run", "-s", "status", "--", "--stack", STACK, ...flags], path.join(runDir, `status-${runs}.log`), env);
    }

    /** Waits (bounded) for the process to end; its exit code and output. */
    async function finished(p: Started, timeoutMs = RUN_TIMEOUT_MS): Promise<{ code: number | null; output: string }> {
        if (p.child.exitCode === null && p.child.signalCode === null) {
            await new Promise<void>((resolve, reject) => {
                const timer = setTimeout(() => reject(new Error(`${p.name} did not end within ${timeoutMs / 1000}s; its log: ${fs.readFileSync(p.log, "utf8")}`)), timeoutMs);
                p.child.once("exit", () => (clearTimeout(timer), resolve()));
            });
        }
        const output = fs.readFileSync(p.log, "utf8");
        outputs.push(output);
        return { code: p.child.exitCode, output };
    }

    const status = async (...flags: string[]) => finished(startStatus(...flags));

    /** Writes what Argo CD's controllers would: each Application's status, then the ApplicationSet's rollout status. */
    async function argoReports(moments: Record<string, TenantMoment>, stepStartedMsAgo: number): Promise<void> {
        const steps: Obj[] = appSet.spec.strategy.rollingSync.steps;
        const entries: Obj[] = [];
        for (const app of apps) {
            const tenant = app.metadata.labels.tenant;
            const m = moments[tenant];
            const status = applicationStatus(app, { sync: m.sync, health: m.health, healthMessage: m.healthMessage, revision: m.revision, at: rfc3339(0), ...(m.rollout === "Progressing" ? { operation: { phase: "Succeeded" as const, message: "successfully synced (all tasks run)", startedAt: rfc3339(60_000) } } : {}) });
            await request(hub, "PATCH", `${ARGO}/applications/${app.metadata.name}`, { status }, MERGE);
            const step = steps.findIndex((s) => s.matchExpressions.every((e: Obj) => e.values.includes(app.metadata.labels[e.key]))) + 1;
            entries.push(rollingSyncEntry(app, step, m.rollout, `test (playing the ApplicationSet controller): ${m.rollout}`, rfc3339(30_000), m.revision));
        }
        const active = steps.findIndex((_, i) => entries.some((e) => e.step === String(i + 1) && e.status !== "Healthy")) + 1;
        const condition = active > 0
            ? { type: "RolloutProgressing", status: "True", reason: "ApplicationSetModified", message: `ApplicationSet is performing rollout of step ${active}`, lastTransitionTime: rfc3339(stepStartedMsAgo) }
            : { type: "RolloutProgressing", status: "False", reason: "ApplicationSetRolloutComplete", message: "ApplicationSet Rollout has completed", lastTransitionTime: rfc3339(0) };
        await request(hub, "PATCH", `${ARGO}/applicationsets/${appSet.metadata.name}/status`, { status: { conditions: [condition], applicationStatus: entries } }, MERGE);
    }

    const midRollout: Record<string, TenantMoment> = {
        "e2e-edge-a": { sync: "Synced", health: "Healthy", revision: NEW, rollout: "Healthy" },
        "e2e-edge-b": { sync: "Synced", health: "Progressing", healthMessage: PROGRESSING_MSG, revision: NEW, rollout: "Progressing" },
        "e2e-edge-c": { sync: "OutOfSync", health: "Healthy", revision: OLD, rollout: "Pending" },
    };
    const allHealthy: Record<string, TenantMoment> = Object.fromEntries(Object.keys(midRollout).map((t) => [t, { sync: "Synced", health: "Healthy", revision: NEW, rollout: "Healthy" }]));

    it("before pulumi up: no ApplicationSet is one clear error saying pulumi up creates it", async () => {
        const { code, output } = await status("--kubeconfig", adminKubeconfig);
        assert.strictEqual(code, 1, output);
        assert.strictEqual(output, `status: no ApplicationSet ${NS}/voice-agent on the hub ${hub.server}: \`pulumi up --stack ${STACK}\` creates it (npm run plan -- --stack ${STACK} shows what it declares)\n`);
    });

    it("mid-rollout: the target revision, step 2 active since the step started, each tenant's sync, health, revision and message (read-only token)", async () => {
        const declared = (await objectsOf(STACK, { kind: "ApplicationSet" }))[0].object as Obj;
        appSet = await request(hub, "POST", `${ARGO}/applicationsets`, declared);
        // Generated as the ApplicationSet controller would, owned by the live ApplicationSet.
        apps = [];
        for (const cluster of await clusterParams(STACK)) apps.push(await request(hub, "POST", `${ARGO}/applications`, generatedApplication(appSet, cluster)));
        assert.strictEqual(apps.length, 3);
        const began = Date.now();
        await argoReports(midRollout, 95_000);

        const { code, output } = await status("--kubeconfig", tokenKubeconfig);
        assert.strictEqual(code, 0, output);
        assert.match(output, /^ApplicationSet argocd\/voice-agent: target revision HEAD$/m);
        // Since the step started (95s before the run) until the command read the hub.
        const [, min, sec] = /^Rollout: step 2 of 2 active for (\d+)m(\d\d)s$/m.exec(output) ?? assert.fail(output);
        const activeFor = Number(min) * 60 + Number(sec);
        // (+2: the condition's time is written in whole seconds, truncated, and the command rounds the duration.)
        assert.ok(activeFor >= 95 && activeFor <= 95 + (Date.now() - began) / 1000 + 2, `active for ${activeFor}s`);
        assert.match(output, /^ {4}e2e-edge-b: Synced and Healthy \(now Synced, Progressing: Deployment voice-agent: Waiting for rollout to finish: 0 of 1 updated replicas are available\.\.\.\)$/m, output);
        assert.match(output, /^ {4}e2e-edge-c: Argo CD to start its sync$/m, output);
        assert.match(output, /^ {2}Step 1 of 2: ring In \(canary\); maxUpdate 1: complete\n {4}tenant .*\n.*\n {4}e2e-edge-a +Healthy +\d+s +Synced +Healthy +4f1c2a9e8b7d *$/m, output);
        assert.match(output, /^ {2}Step 2 of 2: ring In \(main\); maxUpdate 100%: ACTIVE for \d+m\d\ds$/m, output);
        assert.match(output, /^ {4}e2e-edge-b +Progressing +\d+s +Synced +Progressing +4f1c2a9e8b7d +Deployment voice-agent: Waiting for rollout to finish/m, output);
        assert.match(output, /^ {4}e2e-edge-c +Pending +\d+s +OutOfSync +Healthy +0a1b2c3d4e5f *$/m, output);
    });

    it("--json gives the same status for machines", async () => {
        const { code, output } = await status("--kubeconfig", adminKubeconfig, "--json");
        assert.strictEqual(code, 0, output);
        const s = JSON.parse(output);
        assert.deepStrictEqual([s.state, s.targetRevision, s.activeStep], ["progressing", "HEAD", 2]);
        assert.deepStrictEqual(s.steps.map((step: Obj) => [step.state, step.tenants.map((t: Obj) => `${t.tenant} ${t.sync} ${t.health} ${t.revision.slice(0, 7)}`)]), [
            ["complete", ["e2e-edge-a Synced Healthy 4f1c2a9"]],
            ["active", ["e2e-edge-b Synced Progressing 4f1c2a9", "e2e-edge-c OutOfSync Healthy 0a1b2c3"]],
        ]);
        assert.ok(s.activeForSeconds >= 95 && s.activeForSeconds < 95 + RUN_TIMEOUT_MS / 1000, String(s.activeForSeconds));
    });

    /** Starts a watch and waits until it has printed the rollout in progress. */
    async function watching(): Promise<Started> {
        const p = startStatus("--kubeconfig", adminKubeconfig, "--watch", "--interval", "1", "--timeout", "120");
        const ended = () => p.child.exitCode !== null || p.child.signalCode !== null;
        await waitFor(`${p.name} printing the rollout in progress`, async () => ended() || fs.readFileSync(p.log, "utf8").includes("Rollout: step 2 of 2 active"), { attempts: 120, intervalMs: 1000 });
        assert.ok(!ended(), `the watch ended while the rollout was in progress (exit ${p.child.exitCode}):\n${fs.readFileSync(p.log, "utf8")}`);
        return p;
    }

    it("--watch follows the rollout and exits 0 once every Application is Synced and Healthy at the target revision", async () => {
        await argoReports(midRollout, 95_000);
        const p = await watching();
        await argoReports(allHealthy, 0);
        const { code, output } = await finished(p);
        assert.strictEqual(code, 0, output);
        assert.match(output, /^Rollout: COMPLETE: every Application is Synced and Healthy at HEAD$/m);
    });

    it("--watch exits non-zero, naming the tenant and its health message, when an Application goes Degraded", async () => {
        await argoReports(midRollout, 95_000);
        const p = await watching();
        await argoReports({ ...midRollout, "e2e-edge-b": { sync: "Synced", health: "Degraded", healthMessage: DEGRADED_MSG, revision: NEW, rollout: "Progressing" } }, 95_000);
        const { code, output } = await finished(p);
        assert.strictEqual(code, 3, output);
        assert.ok(output.includes(`status: rollout FAILED: e2e-edge-b is Degraded: Deployment voice-agent: ${DEGRADED_MSG}\n`), output);
    });

    it("a kubeconfig of another server than the stack's hub.server (a closed loopback port): refused naming both, exit 2, nothing contacted", async () => {
        const port = await freePort();
        const file = path.join(runDir, "closed.kubeconfig");
        fs.writeFileSync(file, fs.readFileSync(adminKubeconfig, "utf8").replace(hub.server, `https://127.0.0.1:${port}`), { mode: 0o600 });
        const { code, output } = await status("--kubeconfig", file);
        assert.strictEqual(code, 2, output);
        assert.strictEqual(output, `status: the kubeconfig from ${file} points at https://127.0.0.1:${port}, not at ${STACK}'s hub ${hub.server} (agentfleet:hub.server); pass the kubeconfig of ${STACK}'s hub\n`);
    });

    it("the hub's API server stopped: one line naming the server, exit 1", async () => {
        await fleet.stopCluster("hub");
        const { code, output } = await status("--kubeconfig", tokenKubeconfig);
        assert.strictEqual(code, 1, output);
        assert.strictEqual(output, `status: the hub API server ${hub.server} is unreachable (ECONNREFUSED); kubeconfig from ${tokenKubeconfig}\n`);
    });

    it("no output of any run contains the kubeconfigs' private key, client certificate or token", () => {
        assert.ok(outputs.length >= 7, `only ${outputs.length} runs recorded`);
        const body = (pem: string) => pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
        const secrets = { token, key: body(hub.key!), keyBase64: Buffer.from(hub.key!).toString("base64"), cert: body(hub.cert!).slice(0, 64) };
        for (const [what, value] of Object.entries(secrets)) {
            assert.ok(value.length > 20, `${what} too short to check`);
            for (const output of outputs) assert.ok(!output.replace(/\s+/g, "").includes(value), `a run printed the ${what}:\n${output}`);
        }
    });
});
