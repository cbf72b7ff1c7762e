/**
 * The rollout, run by Argo CD v3.6's own controllers (the argocd engine) on the loopback fleet:
 * agentfleet's `pulumi up` configures the hub (argocd-cm with the health Lua, argocd-cmd-params-cm
 * with progressive syncs, the notifications, the AppProject and the RollingSync ApplicationSet),
 * each tenant's own stack registers it (its cluster Secret on the hub), the agent chart comes from
 * a local git repository the test commits to, and each scenario asserts what Argo CD did, read from the hub's and the tenants' API servers.
 *
 * Four tenants in three steps: canary (e2e-edge-a), early (e2e-edge-b), main (e2e-edge-c, e2e-edge-d)
 * with maxUpdate 1 everywhere, so the main step must sync its two tenants one at a time. e2e-edge-c
 * is hardened: discovery and OpenAPI are not granted to every authenticated user (k3s grants them),
 * so Argo CD reaches it with argocd-manager's own rights only.
 * The scenarios build on each other, in order, on one fleet: release 1; promotion; the health gate
 * holding release 2; a deny window holding release 3; a rollback to release 2; the emergency path
 * back to release 1; a failing migration (release 4); the notifications all that sent; a removed
 * tenant; the ApplicationSet deleted.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { healthMessage } from "../commands/rollout-status";
import { projectName } from "../components/fleet-rollout";
import { runTool, startTool, stopTools } from "../tests/helpers";
import { type ArgoCd, startArgoCd } from "./harness/argocd";
import { type AgentRepo, createAgentRepo } from "./harness/agent-repo";
import { type Credentials, canI, getOrUndefined, request } from "./harness/kube";
import { stopAll, waitFor } from "./harness/processes";
import { E2E_STACK, type E2eWorld, editStackFile, registerTenants, startWorld, stopWorld, tenantCommand } from "./harness/project";
import { RolloutRecorder, TenantObjectRecorder, getApplicationSet, listApplications, ringByRingProblems, syncIntervals, waitForRollout, waveOrderProblems } from "./harness/rollout";
import { PROBE_MESSAGE, PROBE_RESULT, PROBE_REVISION, REVISION, type StandIns, startTenantStandIns } from "./harness/tenant-standins";
import { type WebhookReceiver, startWebhookReceiver } from "./harness/webhook";

const APPSET = "voice-agent";
const AGENT_NS = "voice-agent";
/** Tenant -> ring, and the steps in order; every step has maxUpdate 1. */
const RINGS: Record<string, string> = { "e2e-edge-a": "canary", "e2e-edge-b": "early", "e2e-edge-c": "main", "e2e-edge-d": "main" };
const STEPS = ["canary", "early", "main"];
const CANARY = "e2e-edge-a";
/** Reached by Argo CD with argocd-manager's rights only: no discovery or OpenAPI for every authenticated user. */
const HARDENED = "e2e-edge-c";
/** Removed from the stack near the end: its Application is left behind. */
const REMOVED = "e2e-edge-d";
const MAX_UPDATE = 1;
const MERGE = "application/merge-patch+json";
const PASS = { result: "pass" as const, message: "stand-in prober: pass" };
const ROLLOUT_TIMEOUT = 10 * 60_000;
/** The hub's own cluster, which Argo CD always knows and which no cluster Secret scopes to the fleet's project. */
const IN_CLUSTER = "https://kubernetes.default.svc";

const log = (line: string) => process.stderr.write(`e2e argocd: ${line}\n`);

describe("real Argo CD v3.6: the rollout on a loopback fleet", function () {
    const world: Partial<E2eWorld> = {};
    let w: E2eWorld;
    let argocd: ArgoCd | undefined;
    let standIns: StandIns | undefined;
    let receiver: WebhookReceiver | undefined;
    let repo: AgentRepo;
    let recorder: RolloutRecorder;
    /** Every object the canary tenant's agent namespace ever held (hook Jobs included). */
    let canaryObjects: TenantObjectRecorder;
    let release1 = "";
    const began = Date.now();
    const step = (what: string) => log(`${what} (${((Date.now() - began) / 1000).toFixed(0)}s)`);

    before(async function () {
        const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-e2e-argocd-"));
        world.runDir = runDir;
        Object.assign(
            world,
            await startWorld(runDir, {
                editTenants: (tenants) => [
                    ...tenants.map((t) => ({ ...t, ring: RINGS[t.name as string] })),
                    { name: "e2e-edge-d", server: "https://127.0.0.1:36446", ring: "main", region: "loopback", credentials: "token" },
                ],
                editStack: (doc) => {
                    doc.setIn(["config", "agentfleet:rollout", "steps"], doc.createNode(STEPS.map((ring) => ({ name: ring, matchExpressions: [{ key: "ring", operator: "In", values: [ring] }], maxUpdate: MAX_UPDATE }))));
                },
            }),
        );
        w = world as E2eWorld;
        step("fleet and stack ready");

        // Hardened as rollout-gates.e2e.ts hardens its tenant; the annotation keeps the API server from restoring it.
        const hardened = w.fleet.cluster(HARDENED).admin;
        await request(hardened, "PATCH", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:discovery", { metadata: { annotations: { "rbac.authorization.kubernetes.io/autoupdate": "false" } }, subjects: null }, MERGE);
        assert.strictEqual(await canI(hardened, { user: "system:serviceaccount:default:default", verb: "get", path: "/openapi/v2" }), false, `${HARDENED} is not hardened`);
        // A tenant admin provides the agent namespace on a token tenant (bootstrap tenants get it from onboarding).
        for (const t of w.tenants.filter((t) => t.credentials === "token")) {
            await request(w.fleet.cluster(t.name).admin, "POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: AGENT_NS } });
        }
        repo = createAgentRepo(path.join(runDir, "agent-repo"), w.project);
        release1 = repo.head();
        receiver = await startWebhookReceiver(w.fleet.tls);
        const set = (key: string, value: string) => w.pulumi.stack.setConfig(key, { value }, true);
        await set("agentfleet:deploy.repoURL", repo.url);
        await set("agentfleet:deploy.targetRevision", release1);
        await set("agentfleet:notifications.webhook.url", `${receiver.url}/argocd`);
        const up = await w.pulumi.stack.up({ onOutput: () => undefined });
        assert.strictEqual(up.summary.result, "succeeded");
        step("pulumi up configured the hub");
        await registerTenants(w);
        step("the tenant stacks registered the tenants");

        standIns = startTenantStandIns({ tenants: Object.fromEntries(w.tenants.map((t) => [t.name, w.fleet.cluster(t.name).admin])), log });
        recorder = new RolloutRecorder(hub(), APPSET).start();
        canaryObjects = new TenantObjectRecorder(w.fleet.cluster(CANARY).admin, AGENT_NS).start();
        argocd = await startArgoCd({ engineDir: w.engines.argocd.dir, hub: w.fleet.hub, caFile: w.fleet.tls.caFile, dir: path.join(runDir, "argocd"), log });
        step("Argo CD started");
    });

    // The scenarios build on each other: after a failure, say why at once (the summary comes only
    // at the end of the run) and skip the rest, whose starting point is gone, instead of letting
    // each wait out its timeout. The run still fails, on the first failure. E2E_CONTINUE=1 runs
    // them all anyway (to see several checks fail in one run, each broken in its own scenario).
    let failed: string | undefined;
    beforeEach(function () {
        if (failed && !process.env.E2E_CONTINUE) this.skip();
    });
    afterEach(function () {
        if (this.currentTest?.state !== "failed") return;
        failed = this.currentTest.title;
        log(`FAILED: ${failed}: ${String(this.currentTest.err?.stack ?? this.currentTest.err).split("\n").slice(0, 12).join("\n")}`);
    });

    after(async function () {
        stopTools(); // a status --watch the failed scenario never awaited
        await recorder?.stop();
        await canaryObjects?.stop();
        await standIns?.stop();
        await argocd?.stop();
        await receiver?.stop();
        await stopWorld(world);
        await stopAll();
    });

    const hub = (): Credentials => w.fleet.hub.admin;
    const tenantOf = (app: any): string => app.metadata.labels.tenant;

    const stepsOf = (apps: any[]) => STEPS.map((ring) => apps.filter((a) => a.metadata.labels.ring === ring).map((a) => a.metadata.name as string));
    const appPath = (tenant: string) => `/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/voice-agent-${tenant}`;
    const deploymentPath = `/apis/apps/v1/namespaces/${AGENT_NS}/deployments/voice-agent`;
    const imageOf = async (tenant: string): Promise<string> => (await request(w.fleet.cluster(tenant).admin, "GET", deploymentPath)).spec.template.spec.containers[0].image;
    /** A release: the agent image's tag (the first `tag:` of values.yaml) set to `tag`, plus `files` of the chart folder. */
    const release = (message: string, tag: string, files: Record<string, string | null> = {}): string => {
        const values = fs.readFileSync(path.join(repo.dir, "charts", "voice-agent", "values.yaml"), "utf8");
        assert.match(values, /tag: "[^"]+"/);
        return repo.commit(message, { "values.yaml": values.replace(/tag: "[^"]+"/, `tag: "${tag}"`), ...files });
    };
    /** The operator's deploy: `edit` the stack file, set deploy.targetRevision, `pulumi up`. */
    const deploy = async (revision: string, edit?: (doc: YAML.Document) => void) => {
        if (edit) editStackFile(w.project, edit);
        await w.pulumi.stack.setConfig("agentfleet:deploy.targetRevision", { value: revision }, true);
        const up = await w.pulumi.stack.up({ onOutput: () => undefined });
        assert.strictEqual(up.summary.result, "succeeded");
    };
    /** `npm run status` of the e2e stack, as a process, against this fleet's Argo CD. */
    const statusArgs = () => ["--stack", E2E_STACK, "--kubeconfig", w.fleet.hub.kubeconfigPath, "--json"];
    const status = () => {
        const r = runTool(w.project, "status", statusArgs(), { timeoutMs: 60_000 });
        assert.strictEqual(r.status, 0, `status exit ${r.status}: ${r.stderr}`);
        return JSON.parse(r.stdout);
    };
    /** `npm run status -- --watch`, running while the rollout moves; resolves with its exit. */
    const watchStatus = () => startTool(w.project, "status", [...statusArgs(), "--watch", "--interval", "2", "--timeout", "900"], { timeoutMs: 960_000 });
    /** Waits for `revision` on every tenant, and checks it went ring by ring since `since`. */
    const assertRingByRing = async (revision: string, since: Date) => {
        const apps = await waitForRollout(hub(), { applicationSet: APPSET, revision, count: w.tenants.length, timeoutMs: ROLLOUT_TIMEOUT, log: step });
        assert.deepStrictEqual(ringByRingProblems(apps, recorder, { revision, since, steps: stepsOf(apps), maxUpdate: MAX_UPDATE }), []);
        return apps;
    };
    const release2Tag = "1.1.0";
    let release2 = "";
    let release3 = "";
    /** When the deny window of release 3 closed. */
    let windowEnd = new Date(0);

    it("RollingSync installs release 1 step by step: canary, early, then main one tenant at a time, each step only once the previous one is Healthy; the hardened tenant too", async () => {
        const apps = await waitForRollout(hub(), { applicationSet: APPSET, revision: release1, count: 4, timeoutMs: ROLLOUT_TIMEOUT, log: step });
        step("release 1 rolled out");
        assert.deepStrictEqual(apps.map((a) => [tenantOf(a), a.metadata.labels.ring]).sort(), Object.entries(RINGS).sort());
        assert.deepStrictEqual(ringByRingProblems(apps, recorder, { revision: release1, since: new Date(0), steps: stepsOf(apps), maxUpdate: MAX_UPDATE }), []);
        // And the agent really runs on every tenant.
        for (const t of w.tenants) {
            const d = await request(w.fleet.cluster(t.name).admin, "GET", `/apis/apps/v1/namespaces/${AGENT_NS}/deployments/voice-agent`);
            assert.strictEqual(d.status?.availableReplicas, d.spec.replicas, `${t.name}: agent not available`);
        }
    });

    it("sync waves on a tenant: its config, then the migration Job, then the Deployment, then Service and Ingress, then the PostSync warm-up", async () => {
        // The first of each: a later sync deletes and recreates the hook Jobs, never the others.
        const order: Array<[string, string]> = [
            ["ConfigMap", "voice-agent-config"], // wave -2
            ["Job", "voice-agent-migrate"], // Sync hook, wave -1
            ["Deployment", "voice-agent"], // wave 0
            ["Service", "voice-agent"], // wave 1
            ["Job", "voice-agent-warmup"], // PostSync hook
        ];
        assert.deepStrictEqual(waveOrderProblems(canaryObjects, order), []);
        const first = (kind: string, name: string) => canaryObjects.objects(kind, name)[0];
        // The Ingress is in the Service's wave: applied in the same batch, after the Deployment and before the warm-up.
        const ingress = first("Ingress", "voice-agent");
        assert.ok(ingress && +ingress.created >= +first("Service", "voice-agent").created && +ingress.created < +first("Job", "voice-agent-warmup").created, `Ingress created at ${ingress?.created.toISOString()}, not in the Service's wave`);
    });

    /** `npm run promote` into a next stage whose rule soaks on this fleet (the e2e stack): its stack file, written here. */
    const NEXT = "e2e-next";
    const nextStage = (soak: string): string => {
        const doc = YAML.parseDocument(fs.readFileSync(path.join(w.project, `Pulumi.${E2E_STACK}.yaml`), "utf8"));
        doc.setIn(["config", "agentfleet:promotion"], doc.createNode({ from: E2E_STACK, soak }));
        doc.setIn(["config", "agentfleet:deploy", "targetRevision"], "HEAD");
        // Its fleet is this one's: the tenant files of the e2e stack, not a folder of its own.
        doc.setIn(["config", "agentfleet:fleet"], `fleet/${E2E_STACK}`);
        const file = path.join(w.project, `Pulumi.${NEXT}.yaml`);
        // The stack files' own layout, so promote edits it in place (it refuses to reformat a file).
        fs.writeFileSync(file, doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
        return file;
    };
    const promote = (...args: string[]) => {
        const r = runTool(w.project, "promote", ["--to", NEXT, "--kubeconfig", w.fleet.hub.kubeconfigPath, "--json", ...args], { timeoutMs: 120_000 });
        return { status: r.status, stderr: r.stderr, verdict: r.stdout ? JSON.parse(r.stdout) : undefined };
    };
    /** When Argo CD says each Application began running its commit Synced and Healthy (the later of the two records). */
    const soakStarts = async () =>
        Object.fromEntries(
            (await listApplications(hub())).map((a) => {
                const deployed = (a.status.history ?? []).filter((h: any) => h.revision === a.status.sync.revision).map((h: any) => Date.parse(h.deployedAt));
                return [tenantOf(a), Math.max(Date.parse(a.status.health.lastTransitionTime), Math.min(...deployed))];
            }),
        );

    it("npm run promote against this fleet's Argo CD: refuses release 1 until it soaked, naming the time left; refuses a revision the tenants do not run; then changes only the next stage's deploy.targetRevision", async () => {
        // A soak that the last tenant to turn Healthy has not finished yet, but soon will.
        const starts = await soakStarts();
        const soakSeconds = Math.ceil((Date.now() - Math.max(...Object.values(starts))) / 1000) + 45;
        const file = nextStage(`${soakSeconds}s`);
        const before = fs.readFileSync(file, "utf8");

        const early = promote();
        assert.strictEqual(early.status, 3, `exit ${early.status}: ${early.stderr}`);
        const refused = early.verdict;
        assert.deepStrictEqual([refused.promotable, refused.revision, refused.from, refused.to], [false, release1, E2E_STACK, NEXT]);
        assert.deepStrictEqual(refused.tenants.map((t: any) => t.tenant).sort(), Object.keys(RINGS).sort());
        for (const t of refused.tenants) {
            // `since` is Argo CD's own record, to the second it wrote.
            assert.strictEqual(Date.parse(t.since), starts[t.tenant], `${t.tenant}: since ${t.since}`);
            if (!t.ready) assert.match(t.reason, new RegExp(`^Synced and Healthy at ${release1} since .*: \\S+ of the ${soakSeconds}s soak left$`));
        }
        assert.ok(refused.remainingSeconds > 0 && refused.remainingSeconds <= 45 + 2, `time left ${refused.remainingSeconds}s`);
        assert.strictEqual(fs.readFileSync(file, "utf8"), before, "a refusal changes no file");

        const unknown = "0123456789abcdef0123456789abcdef01234567";
        const other = promote("--revision", unknown);
        assert.strictEqual(other.status, 3);
        for (const t of other.verdict.tenants) assert.match(t.reason, new RegExp(`^runs ${release1} \\(${release1.slice(0, 12)}\\), not ${unknown}$`));

        await new Promise((r) => setTimeout(r, (refused.remainingSeconds + 2) * 1000));
        const done = promote();
        assert.strictEqual(done.status, 0, `exit ${done.status}: ${done.stderr} ${JSON.stringify(done.verdict)}`);
        assert.deepStrictEqual(done.verdict.promoted, { file: `Pulumi.${NEXT}.yaml`, key: "agentfleet:deploy.targetRevision", from: "HEAD", to: release1 });
        const [was, now] = [before.split("\n"), fs.readFileSync(file, "utf8").split("\n")];
        assert.deepStrictEqual(was.map((line, i) => [line, now[i]]).filter(([a, b]) => a !== b), [["    targetRevision: HEAD", `    targetRevision: ${release1}`]]);
        assert.strictEqual(now.length, was.length);
    });

    it("npm run promote refuses while a tenant of the stage is Degraded, naming it with its Deployment's health message and since when; it passes again once the tenant is Healthy", async () => {
        const tenant = "e2e-edge-b";
        const admin = w.fleet.cluster(tenant).admin;
        const appOf = () => request(hub(), "GET", appPath(tenant));
        const healthOf = async () => (await appOf()).status?.health ?? {};
        // The prober's own write (files/prober.sh): a fail for the revision it probed; the stand-in keeps failing it.
        standIns!.setVerdict((t) => (t === tenant ? { result: "fail", message: "stand-in prober: warm-up call timed out" } : PASS));
        const d = await request(admin, "GET", deploymentPath);
        await request(admin, "PATCH", deploymentPath, { metadata: { annotations: { [PROBE_REVISION]: d.metadata.annotations[REVISION], [PROBE_RESULT]: "fail", [PROBE_MESSAGE]: "stand-in prober: warm-up call timed out" } } }, "application/merge-patch+json");
        await waitFor(`${tenant}: Argo CD reporting it Degraded`, async () => (await healthOf()).status === "Degraded", { attempts: 120, intervalMs: 1000 });
        const app = await appOf();
        const refused = promote("--check");
        assert.strictEqual(refused.status, 3, refused.stderr);
        const named = refused.verdict.tenants.filter((t: any) => !t.ready);
        assert.deepStrictEqual(named.map((t: any) => t.tenant), [tenant]);
        // Why, in the resource's own words (the Application itself says only "Caused by apps/Deployment:…").
        assert.match(healthMessage(app), /^Deployment voice-agent: Agent prober failed revision \d+: stand-in prober: warm-up call timed out$/);
        assert.strictEqual(named[0].reason, `is Degraded: ${healthMessage(app)}, since ${app.status.health.lastTransitionTime}`);

        standIns!.setVerdict(() => PASS);
        await waitFor(`${tenant}: Healthy again after a pass`, async () => (await healthOf()).status === "Healthy", { attempts: 120, intervalMs: 1000 });
        // Healthy again, but its soak starts over at the health transition Argo CD recorded.
        const again = promote("--check");
        const t = again.verdict.tenants.find((x: any) => x.tenant === tenant);
        assert.strictEqual(t.since, (await healthOf()).lastTransitionTime);
    });

    it("the health gate holds the ring: Argo CD runs our Lua on the prober's fail for release 2, the canary turns Degraded, the early step never starts and status --watch exits 3 naming it; a pass releases the ring", async () => {
        const failing = { result: "fail" as const, message: "stand-in prober: the agent did not answer the test call" };
        standIns!.setVerdict((t) => (t === CANARY ? failing : PASS));
        release2 = release("release 2: agent 1.1.0", release2Tag);
        const since = new Date();
        await deploy(release2);
        const watch = watchStatus();
        let app: any;
        await waitFor(`${CANARY}: Degraded by the prober's fail of release 2`, async () => {
            app = await request(hub(), "GET", appPath(CANARY));
            return app.status?.sync?.revision === release2 && app.status?.health?.status === "Degraded";
        }, { attempts: 300, intervalMs: 1000 });
        assert.match(await imageOf(CANARY), new RegExp(`:${release2Tag}$`), "the canary is Degraded before its Deployment changed");
        const why = healthMessage(app);
        assert.match(why, /^Deployment voice-agent: Agent prober failed revision \d+: stand-in prober: the agent did not answer the test call$/);
        const watched = await watch;
        assert.strictEqual(watched.status, 3, `status --watch exit ${watched.status}: ${watched.stderr}`);
        assert.ok(watched.stderr.includes(`rollout FAILED: ${CANARY} is Degraded: ${why}`), watched.stderr);
        step("canary Degraded; holding");
        // Held: give RollingSync time it would need to move on (a step hands over within a second).
        await new Promise((r) => setTimeout(r, 30_000));
        const held = status();
        assert.deepStrictEqual([held.state, held.activeStep, held.targetRevision], ["failed", 1, release2]);
        assert.deepStrictEqual(held.waitingFor, [`${CANARY}: FAILED (${CANARY} is Degraded: ${why})`]);
        for (const a of (await listApplications(hub())).filter((a) => tenantOf(a) !== CANARY)) {
            assert.strictEqual(recorder.firstAt(a.metadata.name, "Pending", since), undefined, `${a.metadata.name} went Pending while the canary was Degraded`);
            assert.deepStrictEqual(syncIntervals([a], release2), [], `${a.metadata.name} synced release 2 while the canary was Degraded`);
        }
        assert.match(await imageOf("e2e-edge-b"), /:1\.0\.0$/);

        const watchAgain = watchStatus();
        standIns!.setVerdict(() => PASS);
        await assertRingByRing(release2, since);
        for (const t of w.tenants) assert.match(await imageOf(t.name), new RegExp(`:${release2Tag}$`), t.name);
        const done = await watchAgain;
        assert.strictEqual(done.status, 0, `status --watch exit ${done.status}: ${done.stderr}`);
    });

    it("a deny sync window holds the ring: release 3's canary sync waits, blocked, with nothing applied and status saying so; when the window closes the rollout goes on ring by ring", async () => {
        // A window active from the start of this minute (its cron schedule) until 80 s from now
        // (Argo CD: a deny window is active from each scheduled start for its duration).
        const now = new Date();
        const start = new Date(Math.floor(+now / 60_000) * 60_000);
        const seconds = Math.ceil((+now + 80_000 - +start) / 1000);
        windowEnd = new Date(+start + seconds * 1000);
        const window = { kind: "deny", schedule: `${start.getUTCMinutes()} ${start.getUTCHours()} * * *`, duration: `${seconds}s`, timeZone: "UTC" };
        release3 = release("release 3: agent 1.2.0", "1.2.0");
        const since = new Date();
        await deploy(release3, (doc) => doc.setIn(["config", "agentfleet:rollout", "syncWindows"], doc.createNode([window])));
        let op: any;
        await waitFor(`${CANARY}: its release 3 sync blocked by the window`, async () => {
            op = (await request(hub(), "GET", appPath(CANARY))).status?.operationState;
            return op?.phase === "Running" && String(op.message ?? "").startsWith("Sync operation blocked by sync window");
        }, { attempts: 120, intervalMs: 1000 });
        assert.ok(Date.now() < +windowEnd - 5_000, "the window closed before the test could see the sync blocked");
        step(`canary blocked by the window until ${windowEnd.toISOString()}`);
        const blocked = status();
        assert.deepStrictEqual([blocked.state, blocked.activeStep], ["progressing", 1]);
        assert.deepStrictEqual(blocked.waitingFor, [`${CANARY}: a sync window to allow its sync (Argo CD started it; a deny window blocks it)`]);
        assert.match(await imageOf(CANARY), new RegExp(`:${release2Tag}$`), "the canary changed while the window denied its sync");

        await assertRingByRing(release3, since);
        // Nothing of release 3 reached the canary before the window closed: its new ReplicaSet is younger.
        const sets = (await request(w.fleet.cluster(CANARY).admin, "GET", `/apis/apps/v1/namespaces/${AGENT_NS}/replicasets`)).items;
        const created = sets.filter((r: any) => r.spec.template.spec.containers[0].image.endsWith(":1.2.0")).map((r: any) => Date.parse(r.metadata.creationTimestamp));
        assert.strictEqual(created.length, 1);
        assert.ok(created[0] >= +windowEnd - 1000, `release 3's ReplicaSet was created at ${new Date(created[0]).toISOString()}, before the window closed at ${windowEnd.toISOString()}`);
        await deploy(release3, (doc) => doc.deleteIn(["config", "agentfleet:rollout", "syncWindows"]));
    });

    it("a rollback: deploy.targetRevision back to release 2 goes through the rings again, and status --watch follows it to exit 0", async () => {
        const since = new Date();
        await deploy(release2);
        const watch = watchStatus();
        await assertRingByRing(release2, since);
        for (const t of w.tenants) assert.match(await imageOf(t.name), new RegExp(`:${release2Tag}$`), t.name);
        const watched = await watch;
        assert.strictEqual(watched.status, 0, `status --watch exit ${watched.status}: ${watched.stderr}`);
        assert.strictEqual(JSON.parse(watched.stdout.trim().split("\n").pop()!).state, "complete");
    });

    it("the emergency path (agentfleet:emergencyRollout) takes release 1 to every tenant at once, in one step", async () => {
        const since = new Date();
        await w.pulumi.stack.setConfig("agentfleet:emergencyRollout", { value: "true" });
        await deploy(release1);
        const apps = await waitForRollout(hub(), { applicationSet: APPSET, revision: release1, count: w.tenants.length, timeoutMs: ROLLOUT_TIMEOUT, log: step });
        const appset = await getApplicationSet(hub(), APPSET);
        assert.deepStrictEqual(appset.status.applicationStatus.map((s: any) => s.step), w.tenants.map(() => "1"));
        // Every tenant's sync began before any of them ended (each runs its waves for seconds).
        const firsts = apps.map((a) => syncIntervals([a], release1).filter((i) => +i.start >= +since - 1000).sort((x, y) => +x.start - +y.start)[0]);
        assert.ok(firsts.every((f) => f !== undefined), "a tenant did not sync release 1");
        const lastStart = Math.max(...firsts.map((f) => +f.start));
        const firstEnd = Math.min(...firsts.map((f) => +f.end));
        assert.ok(lastStart < firstEnd, `not at once: the last sync began at ${new Date(lastStart).toISOString()}, after one had ended at ${new Date(firstEnd).toISOString()}`);
        for (const t of w.tenants) assert.match(await imageOf(t.name), /:1\.0\.0$/, t.name);
        // The next ordinary deploy restores the rings.
        await w.pulumi.stack.removeConfig("agentfleet:emergencyRollout");
        await deploy(release1);
    });

    it("a failing migration Job stops its tenant before the Deployment changes, and the next step never starts", async () => {
        // The canary's migration asks for more CPU than kwok's node has: never scheduled, its deadline fails the Job.
        const release4 = release("release 4: agent 1.3.0; the canary's migration cannot run", "1.3.0", {
            [`tenants/${CANARY}.yaml`]: 'migration:\n  activeDeadlineSeconds: 15\n  resources:\n    requests:\n      cpu: "2k"\n    limits:\n      cpu: "2k"\n',
        });
        const since = new Date();
        await deploy(release4);
        let op: any;
        await waitFor(`${CANARY}: its release 4 sync failing on the migration`, async () => {
            op = (await request(hub(), "GET", appPath(CANARY))).status?.operationState;
            return op?.syncResult?.revision === release4 && (["Failed", "Error"].includes(op.phase) || (op.retryCount ?? 0) >= 1);
        }, { attempts: 300, intervalMs: 1000 });
        step(`release 4 failed on ${CANARY}: ${op.message}`);
        const canary = w.fleet.cluster(CANARY).admin;
        const migrate = await request(canary, "GET", `/apis/batch/v1/namespaces/${AGENT_NS}/jobs/voice-agent-migrate`);
        assert.ok(migrate.status?.conditions?.some((c: any) => c.type === "Failed" && c.status === "True"), JSON.stringify(migrate.status));
        assert.match(await imageOf(CANARY), /:1\.0\.0$/, `${CANARY}: the Deployment changed although its migration failed`);
        for (const a of (await listApplications(hub())).filter((a) => a.metadata.labels.ring !== "canary")) {
            // It compares against release 4 (OutOfSync) but never synced it.
            assert.deepStrictEqual(syncIntervals([a], release4), [], `${a.metadata.name} synced release 4 while the canary failed`);
            assert.notStrictEqual(a.status?.operationState?.syncResult?.revision, release4, `${a.metadata.name} is syncing release 4 while the canary failed`);
            assert.strictEqual(recorder.firstAt(a.metadata.name, "Pending", since), undefined, `${a.metadata.name} went Pending while the canary failed`);
        }
    });

    it("npm run promote refuses release 4 while the stage has not run it: the failed canary and every tenant still on release 1, each named", async () => {
        const release4 = repo.head();
        const refused = promote("--revision", release4);
        assert.strictEqual(refused.status, 3, refused.stderr);
        const reasons = Object.fromEntries(refused.verdict.tenants.map((t: any) => [t.tenant, t.reason]));
        assert.deepStrictEqual(Object.keys(reasons).sort(), Object.keys(RINGS).sort());
        assert.match(reasons[CANARY], new RegExp(`^is (OutOfSync|Unknown) at ${release4}, still runs ${release1.slice(0, 12)} \\(last sync (Failed|Error|Running)`));
        for (const t of Object.keys(RINGS).filter((t) => t !== CANARY)) assert.match(reasons[t], new RegExp(`^is (OutOfSync|Unknown) at ${release4}, still runs ${release1.slice(0, 12)}`), t);
    });

    it("notifications: the loopback receiver got, per tenant and rollout, step-started and deployed once; degraded when the prober failed; sync-failed at the first failed attempt of the gated and the failed-migration syncs; nothing of release 3 while the window held it; each with the fields the templates promise", async () => {
        const release4 = repo.head();
        const events = () => receiver!.received.filter((r) => r.path === "/argocd");
        // By the commit each event is about (the sync's own record): a notification can go out after
        // the next deploy already moved the Application's targetRevision on.
        const of = (event: string, tenant: string) => events().filter((r) => r.json?.event === event && r.json.tenant === tenant).map((r) => r.json.revision as string);
        await waitFor(`the ${CANARY} sync-failed notification of release 4`, async () => of("app-sync-failed", CANARY).length > 0, { attempts: 60, intervalMs: 1000 });
        const token = (await w.pulumi.stack.getConfig("agentfleet:notificationSecrets.webhookToken", true)).value;
        const servers = Object.fromEntries(w.tenants.map((t) => [t.name, t.server]));
        for (const r of events()) {
            assert.ok(r.json, `not JSON: ${r.body}`);
            const e = r.json;
            assert.strictEqual(r.headers.authorization, `Bearer ${token}`, "the webhook token from argocd-notifications-secret");
            assert.deepStrictEqual([e.ring, e.region, e.env, e.server, e.application], [RINGS[e.tenant], "loopback", "dev", servers[e.tenant], `voice-agent-${e.tenant}`], r.body);
            assert.ok(String(e.link).endsWith(`/applications/argocd/voice-agent-${e.tenant}`), r.body);
            if (e.event === "app-deployed") assert.strictEqual(e.health, "Healthy", r.body);
            // Why, in the Deployment's own words: the prober's verdict through our Lua.
            if (e.event === "app-health-degraded") assert.deepStrictEqual([e.health, /health is Degraded: Deployment voice-agent: Agent prober failed revision \d+: stand-in prober: /.test(e.message)], ["Degraded", true], r.body);
        }
        log(`received: ${events().map((r) => `${r.json?.event} ${r.json?.tenant} ${String(r.json?.revision).slice(0, 8)} (target ${String(r.json?.targetRevision).slice(0, 8)})`).join(", ")}`);
        // Releases 1, 2 (held by the gate, then released), 3 (after the window), the rollback to 2, the emergency back to 1.
        const rollouts = [release1, release2, release3, release2, release1];
        for (const tenant of Object.keys(RINGS)) {
            assert.deepStrictEqual(of("app-rollout-step-started", tenant), tenant === CANARY ? [...rollouts, release4] : rollouts, `${tenant}: step-started`);
            assert.deepStrictEqual(of("app-deployed", tenant), rollouts, `${tenant}: deployed`);
            // The canary's sync of release 2 failed too: Argo CD fails a sync whose Deployment turns Degraded (the gate).
            assert.deepStrictEqual(of("app-sync-failed", tenant), tenant === CANARY ? [release2, release4] : [], `${tenant}: sync-failed`);
        }
        assert.deepStrictEqual(of("app-health-degraded", "e2e-edge-b"), [release1], "the Degraded tenant of the promotion scenario");
        assert.deepStrictEqual(of("app-health-degraded", CANARY).filter((r) => r !== release4), [release2], "the canary the gate held");
        for (const tenant of [HARDENED, REMOVED]) assert.deepStrictEqual(of("app-health-degraded", tenant), [], tenant);
        for (const r of events().filter((r) => r.json?.revision === release3 && r.json.event === "app-rollout-step-started")) {
            assert.ok(+r.at >= +windowEnd - 1000, `${r.json.tenant}: release 3's step-started at ${r.at.toISOString()}, while the window (until ${windowEnd.toISOString()}) held it`);
        }
    });

    it("the fleet's AppProject admits only clusters scoped to it: an Application in it aimed at the hub's in-cluster is refused as not permitted, while every tenant's Application is admitted", async () => {
        const name = "not-project-scoped";
        const url = `/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/${name}`;
        await request(hub(), "POST", "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications", {
            apiVersion: "argoproj.io/v1alpha1",
            kind: "Application",
            metadata: { name, namespace: "argocd" },
            spec: { project: projectName(E2E_STACK), source: { repoURL: repo.url, targetRevision: release1, path: "charts/voice-agent" }, destination: { server: IN_CLUSTER, namespace: AGENT_NS } },
        });
        try {
            const refusal = `application destination server '${IN_CLUSTER}' and namespace '${AGENT_NS}' do not match any of the allowed destinations in project '${projectName(E2E_STACK)}'`;
            let conditions: any[] = [];
            await waitFor(`Argo CD to refuse ${name}`, async () => {
                conditions = (await request(hub(), "GET", url)).status?.conditions ?? [];
                return conditions.some((c) => c.type === "InvalidSpecError");
            }, { attempts: 60, intervalMs: 1000 });
            assert.deepStrictEqual(conditions.filter((c) => c.type === "InvalidSpecError").map((c) => c.message), [refusal]);
            for (const app of (await listApplications(hub())).filter((a) => a.metadata.name !== name)) {
                assert.deepStrictEqual((app.status?.conditions ?? []).filter((c: any) => c.type === "InvalidSpecError"), [], `${app.metadata.name} refused`);
            }
            // ...and the project lists no destination: Argo CD admits each tenant through its cluster Secret's `project`.
            const project = await request(hub(), "GET", `/apis/argoproj.io/v1alpha1/namespaces/argocd/appprojects/${projectName(E2E_STACK)}`);
            assert.deepStrictEqual([project.spec.destinations ?? [], project.spec.permitOnlyProjectScopedClusters], [[], true]);
        } finally {
            await request(hub(), "DELETE", url);
            await waitFor(`${name} to be gone`, async () => (await getOrUndefined(hub(), url)) === undefined, { attempts: 60, intervalMs: 1000 });
        }
    });

    it("a tenant removed with `npm run tenant -- remove` (one run): its Application is left behind, status names it so, and its workloads stay", async () => {
        const uid = (await request(w.fleet.cluster(REMOVED).admin, "GET", deploymentPath)).metadata.uid;
        const removed = tenantCommand(w, "remove", "--name", REMOVED);
        assert.strictEqual(removed.status, 0, removed.stderr);
        assert.strictEqual(await getOrUndefined(hub(), `/api/v1/namespaces/argocd/secrets/cluster-${REMOVED}`), undefined, `${REMOVED} is still registered`);
        const application = `voice-agent-${REMOVED}`;
        // Argo CD keeps its RollingSync entry, at step -1: no step holds an Application it no longer generates.
        await waitFor(`the ApplicationSet to stop generating ${application}`, async () => !(await getApplicationSet(hub(), APPSET)).status?.applicationStatus?.some((s: any) => s.application === application && s.step !== "-1"), { attempts: 120, intervalMs: 1000 });
        const st = status();
        assert.ok(st.notes.some((n: string) => n.startsWith(`${REMOVED}: Application ${application} is left behind: the ApplicationSet no longer generates it`)), st.notes.join("\n"));
        assert.ok(!JSON.stringify([st.steps, st.waitingFor, st.failures, st.unmatched]).includes(REMOVED), `${REMOVED} still counted in the rollout: ${JSON.stringify(st)}`);
        await request(hub(), "GET", appPath(REMOVED));
        assert.strictEqual((await request(w.fleet.cluster(REMOVED).admin, "GET", deploymentPath)).metadata.uid, uid);
    });

    it("deleting the ApplicationSet leaves every tenant's workloads (preserveResourcesOnDeletion); its Applications stay, orphaned", async () => {
        const uid = async (tenant: string) => (await request(w.fleet.cluster(tenant).admin, "GET", `/apis/apps/v1/namespaces/${AGENT_NS}/deployments/voice-agent`)).metadata.uid as string;
        const before = Object.fromEntries(await Promise.all(w.tenants.map(async (t) => [t.name, await uid(t.name)])));
        const appsetPath = `/apis/argoproj.io/v1alpha1/namespaces/argocd/applicationsets/${APPSET}`;
        await request(hub(), "DELETE", appsetPath);
        await waitFor("the ApplicationSet to be deleted (its finalizer released)", async () => (await getOrUndefined(hub(), appsetPath)) === undefined, { attempts: 180, intervalMs: 1000 });
        step("ApplicationSet deleted");
        // Give a cascading delete time to reach the tenants, had there been one.
        await new Promise((r) => setTimeout(r, 15_000));
        for (const t of w.tenants) {
            assert.strictEqual(await uid(t.name), before[t.name], `${t.name}: the agent Deployment was deleted or recreated`);
            await request(w.fleet.cluster(t.name).admin, "GET", `/api/v1/namespaces/${AGENT_NS}/services/voice-agent`);
        }
        // Argo CD v3.6 orphans them (owner references removed), so no garbage collection takes them.
        const apps = await listApplications(hub());
        assert.strictEqual(apps.length, w.tenants.length);
        for (const a of apps) assert.deepStrictEqual(a.metadata.ownerReferences ?? [], [], `${a.metadata.name} still has an owner`);
    });
});
