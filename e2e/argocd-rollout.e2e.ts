/**
 * The rollout, run by Argo CD v3.6's own controllers (the argocd engine) on the loopback fleet:
 * agentfleet's `pulumi up` configures the hub (argocd-cm with the health Lua, argocd-cmd-params-cm
 * with progressive syncs, the notifications, the cluster Secrets, the AppProject and the RollingSync
 * ApplicationSet), the agent chart comes from a local git repository the test commits to, and each
 * scenario asserts what Argo CD did, read from the hub's and the tenants' API servers.
 *
 * Four tenants in three steps: canary (e2e-edge-a), early (e2e-edge-b), main (e2e-edge-c, e2e-edge-d)
 * with maxUpdate 1 everywhere, so the main step must sync its two tenants one at a time.
 * The scenarios build on each other, in order, on one fleet.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { runTool } from "../tests/helpers";
import { type ArgoCd, startArgoCd } from "./harness/argocd";
import { type AgentRepo, createAgentRepo } from "./harness/agent-repo";
import { type Credentials, getOrUndefined, request } from "./harness/kube";
import { stopAll, waitFor } from "./harness/processes";
import { E2E_STACK, type E2eWorld, startWorld, stopWorld } from "./harness/project";
import { RolloutRecorder, TenantObjectRecorder, listApplications, ringByRingProblems, syncIntervals, waitForRollout, waveOrderProblems } from "./harness/rollout";
import { PROBE_MESSAGE, PROBE_RESULT, PROBE_REVISION, REVISION, type StandIns, startTenantStandIns } from "./harness/tenant-standins";
import { type WebhookReceiver, startWebhookReceiver } from "./harness/webhook";

const APPSET = "voice-agent";
const AGENT_NS = "voice-agent";
/** Tenant -> ring, and the steps in order; every step has maxUpdate 1. */
const RINGS: Record<string, string> = { "e2e-edge-a": "canary", "e2e-edge-b": "early", "e2e-edge-c": "main", "e2e-edge-d": "main" };
const STEPS = ["canary", "early", "main"];
const CANARY = "e2e-edge-a";
const MAX_UPDATE = 1;
const ROLLOUT_TIMEOUT = 10 * 60_000;

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
                editStack: (doc) => {
                    const tenants = doc.getIn(["config", "agentfleet:tenants"]) as any;
                    for (const t of tenants.items) t.set("ring", RINGS[t.get("name")]);
                    tenants.add(doc.createNode({ name: "e2e-edge-d", server: "https://127.0.0.1:36446", ring: "main", region: "loopback", credentials: "token" }));
                    doc.setIn(["config", "agentfleet:rollout", "steps"], doc.createNode(STEPS.map((ring) => ({ name: ring, matchExpressions: [{ key: "ring", operator: "In", values: [ring] }], maxUpdate: MAX_UPDATE }))));
                },
            }),
        );
        w = world as E2eWorld;
        step("fleet and stack ready");

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

        standIns = startTenantStandIns({ tenants: Object.fromEntries(w.tenants.map((t) => [t.name, w.fleet.cluster(t.name).admin])), log });
        recorder = new RolloutRecorder(hub(), APPSET).start();
        canaryObjects = new TenantObjectRecorder(w.fleet.cluster(CANARY).admin, AGENT_NS).start();
        argocd = await startArgoCd({ engineDir: w.engines.argocd.dir, hub: w.fleet.hub, caFile: w.fleet.tls.caFile, dir: path.join(runDir, "argocd"), log });
        step("Argo CD started");
    });

    after(async function () {
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

    it("RollingSync installs release 1 step by step: canary, early, then main one tenant at a time, each step only once the previous one is Healthy", async () => {
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

    it("npm run promote refuses while a tenant of the stage is Degraded, naming it with Argo CD's health message and since when; it passes again once the tenant is Healthy", async () => {
        const tenant = "e2e-edge-b";
        const deploymentPath = `/apis/apps/v1/namespaces/${AGENT_NS}/deployments/voice-agent`;
        const admin = w.fleet.cluster(tenant).admin;
        const appPath = `/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/voice-agent-${tenant}`;
        const healthOf = async () => (await request(hub(), "GET", appPath)).status?.health ?? {};
        // The prober's own write (files/prober.sh): a fail for the revision it probed; the stand-in keeps failing it.
        standIns!.setVerdict((t) => (t === tenant ? { result: "fail", message: "stand-in prober: warm-up call timed out" } : { result: "pass", message: "stand-in prober: pass" }));
        const d = await request(admin, "GET", deploymentPath);
        await request(admin, "PATCH", deploymentPath, { metadata: { annotations: { [PROBE_REVISION]: d.metadata.annotations[REVISION], [PROBE_RESULT]: "fail", [PROBE_MESSAGE]: "stand-in prober: warm-up call timed out" } } }, "application/merge-patch+json");
        await waitFor(`${tenant}: Argo CD reporting it Degraded`, async () => (await healthOf()).status === "Degraded", { attempts: 120, intervalMs: 1000 });
        const degraded = await healthOf();
        const refused = promote("--check");
        assert.strictEqual(refused.status, 3, refused.stderr);
        const named = refused.verdict.tenants.filter((t: any) => !t.ready);
        assert.deepStrictEqual(named.map((t: any) => t.tenant), [tenant]);
        assert.strictEqual(named[0].reason, `is Degraded${degraded.message ? `: ${degraded.message}` : ""}, since ${degraded.lastTransitionTime}`);

        standIns!.setVerdict(() => ({ result: "pass", message: "stand-in prober: pass" }));
        await waitFor(`${tenant}: Healthy again after a pass`, async () => (await healthOf()).status === "Healthy", { attempts: 120, intervalMs: 1000 });
        // Healthy again, but its soak starts over at the health transition Argo CD recorded.
        const again = promote("--check");
        const t = again.verdict.tenants.find((x: any) => x.tenant === tenant);
        assert.strictEqual(t.since, (await healthOf()).lastTransitionTime);
    });

    it("a failing migration Job stops its tenant before the Deployment changes, and the next step never starts", async () => {
        const values = fs.readFileSync(path.join(repo.dir, "charts", "voice-agent", "values.yaml"), "utf8");
        assert.match(values, /tag: "1\.0\.0"/);
        // The canary's migration asks for more CPU than kwok's node has: never scheduled, its deadline fails the Job.
        const release2 = repo.commit("release 2: agent 1.1.0; the canary's migration cannot run", {
            "values.yaml": values.replace('tag: "1.0.0"', 'tag: "1.1.0"'),
            [`tenants/${CANARY}.yaml`]: 'migration:\n  activeDeadlineSeconds: 15\n  resources:\n    requests:\n      cpu: "2k"\n    limits:\n      cpu: "2k"\n',
        });
        const since = new Date();
        await w.pulumi.stack.setConfig("agentfleet:deploy.targetRevision", { value: release2 }, true);
        await w.pulumi.stack.up({ onOutput: () => undefined });
        const appPath = `/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/voice-agent-${CANARY}`;
        let op: any;
        await waitFor(`${CANARY}: its release 2 sync failing on the migration`, async () => {
            op = (await request(hub(), "GET", appPath)).status?.operationState;
            return op?.syncResult?.revision === release2 && (["Failed", "Error"].includes(op.phase) || (op.retryCount ?? 0) >= 1);
        }, { attempts: 300, intervalMs: 1000 });
        step(`release 2 failed on ${CANARY}: ${op.message}`);
        const canary = w.fleet.cluster(CANARY).admin;
        const migrate = await request(canary, "GET", `/apis/batch/v1/namespaces/${AGENT_NS}/jobs/voice-agent-migrate`);
        assert.ok(migrate.status?.conditions?.some((c: any) => c.type === "Failed" && c.status === "True"), JSON.stringify(migrate.status));
        const deployment = await request(canary, "GET", `/apis/apps/v1/namespaces/${AGENT_NS}/deployments/voice-agent`);
        assert.match(deployment.spec.template.spec.containers[0].image, /:1\.0\.0$/, `${CANARY}: the Deployment changed although its migration failed`);
        for (const a of (await listApplications(hub())).filter((a) => a.metadata.labels.ring !== "canary")) {
            // It compares against release 2 (OutOfSync) but never synced it.
            assert.deepStrictEqual(syncIntervals([a], release2), [], `${a.metadata.name} synced release 2 while the canary failed`);
            assert.notStrictEqual(a.status?.operationState?.syncResult?.revision, release2, `${a.metadata.name} is syncing release 2 while the canary failed`);
            assert.strictEqual(recorder.firstAt(a.metadata.name, "Pending", since), undefined, `${a.metadata.name} went Pending while the canary failed`);
        }
    });

    it("npm run promote refuses release 2 while the stage has not run it: the failed canary and every tenant still on release 1, each named", async () => {
        const release2 = repo.head();
        const refused = promote("--revision", release2);
        assert.strictEqual(refused.status, 3, refused.stderr);
        const reasons = Object.fromEntries(refused.verdict.tenants.map((t: any) => [t.tenant, t.reason]));
        assert.deepStrictEqual(Object.keys(reasons).sort(), Object.keys(RINGS).sort());
        assert.match(reasons[CANARY], new RegExp(`^is (OutOfSync|Unknown) at ${release2}, still runs ${release1.slice(0, 12)} \\(last sync (Failed|Error|Running)`));
        for (const t of Object.keys(RINGS).filter((t) => t !== CANARY)) assert.match(reasons[t], new RegExp(`^is (OutOfSync|Unknown) at ${release2}, still runs ${release1.slice(0, 12)}`), t);
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
