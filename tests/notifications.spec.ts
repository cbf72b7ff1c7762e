import * as assert from "assert";
import * as YAML from "yaml";
import { NOTIFICATIONS_SECRET } from "../components/argocd-hub";
import { healthCheckCmValues, loadHealthChecks } from "../stacks/health-checks";
import { SECRET_KEYS, TRIGGERS, WEBHOOK_SERVICE } from "../stacks/notifications";
import { GENERATED_PREFIX, SECRET_PREFIX, secretPaths } from "../evaluator/evaluate";
import { STACKS, type Obj, evaluateExpressions, evaluated, objectsOf, releaseOf } from "./helpers";

/** The catalog's trigger names, plus the one agentfleet adds for rollout progress. */
const CATALOG_TRIGGERS = ["on-created", "on-deleted", "on-deployed", "on-health-degraded", "on-sync-failed", "on-sync-running", "on-sync-status-unknown", "on-sync-succeeded"];

for (const stack of STACKS) {
    describe(`health checks and notifications in stack ${stack}`, () => {
        let values: Obj;
        let subscriptions: Record<string, string>;
        before(async () => {
            values = releaseOf(await evaluated(stack)).inputs.values as Obj;
            const [appSet] = await objectsOf(stack, { cluster: "hub", kind: "ApplicationSet" });
            subscriptions = ((appSet.object.spec as Obj).template.metadata.annotations ?? {}) as Record<string, string>;
        });

        it("delivers each Lua health check to argocd-cm verbatim, under its split key", () => {
            const cm = values.configs.cm as Record<string, string>;
            const checks = loadHealthChecks();
            assert.ok(checks.some((c) => c.key === "apps_Deployment"));
            for (const check of checks) assert.strictEqual(cm[`resource.customizations.health.${check.key}`], check.script);
            const delivered = Object.keys(cm).filter((k) => k.startsWith("resource.customizations."));
            assert.deepStrictEqual(delivered.sort(), Object.keys(healthCheckCmValues(checks)).sort());
        });

        it("uses Argo CD's catalog trigger names, each with conditions that send existing templates", () => {
            const triggers = values.notifications.triggers as Record<string, string>;
            const templates = values.notifications.templates as Record<string, string>;
            assert.ok(Object.keys(triggers).length > 0);
            for (const [key, text] of Object.entries(triggers)) {
                const conditions = YAML.parse(text) as Array<{ when: string; send: string[]; oncePer?: string }>;
                assert.ok(Array.isArray(conditions) && conditions.length > 0, `${key} is not a list of conditions`);
                for (const c of conditions) {
                    assert.ok(c.when, `${key} has a condition without 'when'`);
                    for (const t of c.send) assert.ok(`template.${t}` in templates, `${key} sends template ${t}, which does not exist`);
                }
            }
            for (const name of ["on-deployed", "on-health-degraded", "on-sync-failed"]) assert.ok(`trigger.${name}` in triggers && CATALOG_TRIGGERS.includes(name));
            assert.ok(!("trigger.on-degraded" in triggers), "there is no on-degraded in Argo CD");
            // One key per rollout for each outcome of it (behaviour: the v3.6.2 rollout specs below).
            const oncePer = ["on-deployed", "on-sync-failed", "on-rollout-step-started"].map((name) => YAML.parse(triggers[`trigger.${name}`])[0].oncePer);
            assert.ok(oncePer[0] && oncePer.every((o) => o === oncePer[0]), JSON.stringify(oncePer));
        });

        it("subscribes only to triggers that exist, through configured services", () => {
            const triggers = values.notifications.triggers as Record<string, string>;
            const notifiers = values.notifications.notifiers as Record<string, string>;
            assert.ok(Object.keys(subscriptions).length > 0);
            for (const annotation of Object.keys(subscriptions)) {
                const m = /^notifications\.argoproj\.io\/subscribe\.([^.]+)\.(.+)$/.exec(annotation);
                assert.ok(m, `malformed subscription ${annotation}`);
                assert.ok(`trigger.${m[1]}` in triggers, `subscription to ${m[1]}, which is not defined`);
                const service = m[2] === "slack" ? "service.slack" : `service.webhook.${m[2]}`;
                assert.ok(service in notifiers, `subscription through ${m[2]}, which is not configured`);
            }
        });

        // That every field parses as a Go template and yields JSON where JSON is due: argocd-templates.spec.ts.
        it("renders templates that name the tenant by labels and server, and never by destination.name", () => {
            const templates = values.notifications.templates as Record<string, string>;
            for (const [key, text] of Object.entries(templates)) {
                assert.ok(!text.includes("destination.name"), `${key} uses .app.spec.destination.name, empty for server destinations`);
                const parsed = YAML.parse(text);
                assert.ok(parsed.message.includes('index .app.metadata.labels "tenant"') && parsed.message.includes(".app.spec.destination.server"), `${key} does not identify the tenant`);
                assert.ok(parsed.slack.attachments.includes('index .app.metadata.labels "tenant"'), `${key}: the Slack attachment does not name the tenant`);
                assert.ok(parsed.webhook[WEBHOOK_SERVICE].body.includes(".app.spec.destination.server"));
            }
            assert.strictEqual(values.notifications.argocdUrl, values.notifications.context.argocdUrl);
            assert.match(values.notifications.argocdUrl, /^https:\/\/argocd\./);
        });

        it("keeps notifier tokens in a Pulumi-owned, secret argocd-notifications-secret, never in the Helm values", async () => {
            assert.strictEqual(values.notifications.secret.create, false);
            const notifiers = values.notifications.notifiers as Record<string, string>;
            if ("service.slack" in notifiers) assert.match(notifiers["service.slack"], new RegExp(`token: \\$${SECRET_KEYS.slackToken}`));
            const text = JSON.stringify(values);
            assert.ok(!text.includes(SECRET_PREFIX) && !text.includes(GENERATED_PREFIX) && !text.includes("xoxb-"), "a token reached the Helm values");
            const [secret] = (await objectsOf(stack, { cluster: "hub", kind: "Secret" })).filter((o) => (o.object.metadata as Obj).name === NOTIFICATIONS_SECRET);
            assert.ok(secret, "no argocd-notifications-secret");
            assert.deepStrictEqual(secretPaths(secret.resource.inputs), ["stringData"]);
            const data = secret.object.stringData as Record<string, string>;
            for (const ref of Object.values(notifiers).flatMap((n) => [...n.matchAll(/\$([a-z-]+)/g)].map((m) => m[1]))) {
                assert.ok(ref in data, `a notifier references $${ref}, which argocd-notifications-secret lacks`);
                assert.ok(data[ref].startsWith(SECRET_PREFIX), `$${ref} does not come from secret config`);
            }
        });
    });
}

// ---------------------------------------------------------------------------------------------
// The triggers over a rollout as Argo CD v3.6.2 records it, evaluated by expr-lang/expr

const REV_A = "3f9c2a1d0b7e4c5a8f6e2d1c0b9a8f7e6d5c4b3a";
const REV_B = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d";
const source = { repoURL: "https://github.com/example-org/agentfleet.git", targetRevision: "main", path: "charts/voice-agent" };
const BLOCKED = "Sync operation blocked by sync window";
const applied = [{ group: "", version: "v1", kind: "ConfigMap", namespace: "voice-agent", name: "voice-agent", status: "Synced", message: "configmap/voice-agent created", syncPhase: "Sync" }];

interface Observed {
    /** What happened, for failure messages. */
    what: string;
    app: Obj;
}

/**
 * One tenant's Application through RollingSync rollouts, each state as the notifications
 * controller may observe it, following Argo CD v3.6.2:
 * - applicationset/progressivesync/progressive_sync.go syncApplication: the operation is
 *   initiatedBy applicationset-controller with SyncOperation{Revision: <the step's pinned revision>};
 * - controller/appcontroller.go: NewOperationState (Running, startedAt, nothing else) is written
 *   before the sync runs; a failed attempt it will retry stays Running with finishedAt, retryCount and
 *   "<why>. Retrying attempt #N at <when>.", the retry itself clears finishedAt and syncResult
 *   ("Retrying operation. Attempt #N"), and only the last failed attempt ends Failed;
 * - controller/sync.go SyncAppState: syncResult {revision, source} is set, then a deny window
 *   leaves the operation Running with "Sync operation blocked by sync window" and applies nothing;
 * - once tasks run, syncResult.resources lists them; success appends status.history (ids count up);
 * - a RollingSync step may sync an Application twice at the same revision (measured: history ids 0 and 1).
 */
class RolloutRecorder {
    readonly observed: Observed[] = [];
    private history: Array<{ id: number; revision: string; source: Obj; deployedAt: string }> = [];
    private clock = 0;

    private at(): string {
        return new Date(Date.UTC(2026, 11, 4, 12, 0, this.clock++)).toISOString().replace(".000Z", "Z");
    }

    private record(what: string, revision: string, health: string, operationState: Obj | undefined): void {
        const synced = operationState?.phase === "Succeeded";
        this.observed.push({
            what,
            app: {
                apiVersion: "argoproj.io/v1alpha1",
                kind: "Application",
                metadata: { name: "voice-agent-prod-acme-eu", namespace: "argocd", labels: { env: "prod", ring: "early", region: "eu-west", tenant: "prod-acme-eu" } },
                spec: { project: "voice-agent-prod", source, destination: { server: "https://127.0.0.1:36444", namespace: "voice-agent" } },
                status: {
                    sync: { status: synced ? "Synced" : "OutOfSync", revision },
                    health: { status: health, message: health === "Degraded" ? "Agent prober failed revision 3" : "" },
                    history: this.history.map((h) => ({ ...h })),
                    ...(operationState ? { operationState } : {}),
                },
            },
        });
    }

    /** One sync RollingSync starts; `window` first holds it with a deny window. */
    sync(revision: string, opts: { window?: boolean; fail?: boolean; health?: string } = {}): this {
        const operation = {
            initiatedBy: { username: "applicationset-controller", automated: true },
            info: [{ name: "Reason", value: "ApplicationSet RollingSync triggered a sync of this Application resource" }],
            sync: { revision, prune: true, syncOptions: ["PruneLast=true"] },
            retry: { limit: 5 },
        };
        const startedAt = this.at();
        const before = this.observed.length > 0 ? (this.observed[this.observed.length - 1].app.status.health.status as string) : "Missing";
        const running = (message: string | undefined, syncResult: Obj | undefined) => ({ operation, phase: "Running", startedAt, ...(message ? { message } : {}), ...(syncResult ? { syncResult } : {}) });
        this.record(`sync to ${revision.slice(0, 4)}: operation initialised`, revision, before, running(undefined, undefined));
        if (opts.window) {
            this.record(`sync to ${revision.slice(0, 4)}: blocked by a deny window`, revision, before, running(BLOCKED, { revision, source }));
            this.record(`sync to ${revision.slice(0, 4)}: still blocked`, revision, before, running(BLOCKED, { revision, source }));
        }
        this.record(`sync to ${revision.slice(0, 4)}: first wave applied`, revision, "Progressing", running("waiting for healthy state of apps/Deployment/voice-agent", { revision, source, resources: applied }));
        const finishedAt = this.at();
        if (opts.fail) {
            const failed = "one or more objects failed to apply";
            for (let attempt = 1; attempt <= operation.retry.limit; attempt++) {
                const retryAt = this.at();
                this.record(`sync to ${revision.slice(0, 4)}: attempt ${attempt} failed, retried at ${retryAt}`, revision, "Degraded", { operation, phase: "Running", message: `${failed}. Retrying attempt #${attempt} at ${retryAt}.`, startedAt, finishedAt, retryCount: attempt, syncResult: { revision, source, resources: applied } });
                this.record(`sync to ${revision.slice(0, 4)}: retry ${attempt} running`, revision, "Degraded", { operation, phase: "Running", message: `Retrying operation. Attempt #${attempt}`, startedAt, retryCount: attempt });
            }
            this.record(`sync to ${revision.slice(0, 4)}: failed`, revision, "Degraded", { operation, phase: "Failed", message: failed, startedAt, finishedAt: this.at(), retryCount: operation.retry.limit, syncResult: { revision, source, resources: applied } });
            return this;
        }
        this.history.push({ id: this.history.length, revision, source, deployedAt: finishedAt });
        const done = { operation, phase: "Succeeded", message: "successfully synced (all tasks run)", startedAt, finishedAt, syncResult: { revision, source, resources: applied } };
        this.record(`sync to ${revision.slice(0, 4)}: succeeded`, revision, opts.health ?? "Healthy", done);
        this.record(`sync to ${revision.slice(0, 4)}: succeeded, observed again`, revision, opts.health ?? "Healthy", done);
        return this;
    }

    /** The last operation stays; only health changes (the probe gate turning a verdict). */
    health(status: string): this {
        const last = this.observed[this.observed.length - 1];
        this.record(`health turns ${status}`, last.app.status.sync.revision, status, last.app.status.operationState);
        return this;
    }
}

/**
 * What notifications-engine sends for a sequence of observed states (pkg/triggers/service.go and
 * pkg/controller/state.go): a condition whose `when` is true sends unless its state key is
 * recorded, the key being `<oncePer value>:<trigger>...` with oncePer, else `<trigger>...`, which a
 * false `when` deletes again. An expression error counts as false (the engine logs it).
 */
function sentNotifications(observed: Observed[]): { sent: string[]; errors: string[] } {
    const conditions = Object.entries(TRIGGERS).flatMap(([trigger, list]) => list.map((c, i) => ({ trigger, key: `${trigger}[${i}]`, ...c })));
    const requests = observed.flatMap((o, s) =>
        conditions.flatMap((c) => [{ id: `${s} ${c.key} when`, expression: c.when, app: o.app }, ...(c.oncePer ? [{ id: `${s} ${c.key} oncePer`, expression: c.oncePer, app: o.app }] : [])]),
    );
    const results = new Map(evaluateExpressions(requests).map((r) => [r.id, r]));
    const notified = new Set<string>();
    const sent: string[] = [];
    const errors = [...results.values()].filter((r) => r.error).map((r) => `${observed[Number(r.id.split(" ")[0])].what}: ${r.id}: ${r.error}`);
    observed.forEach((o, s) => {
        for (const c of conditions) {
            const when = results.get(`${s} ${c.key} when`)!;
            if (when.value !== true) {
                notified.delete(c.key);
                continue;
            }
            const oncePer = c.oncePer ? results.get(`${s} ${c.key} oncePer`)! : undefined;
            const key = oncePer && !oncePer.error && oncePer.text !== "" ? `${oncePer.text}:${c.key}` : c.key;
            if (!notified.has(key)) {
                notified.add(key);
                sent.push(`${c.trigger} (${o.what})`);
            }
        }
    });
    return { sent, errors };
}

describe("notification triggers over RollingSync rollouts as Argo CD v3.6.2 records them (expr-lang evaluates them)", function () {
    this.timeout(180_000);
    const only = (sent: string[], trigger: string) => sent.filter((s) => s.startsWith(`${trigger} (`));

    it("reads every state without an expression error (an error silently counts as false)", () => {
        const rollout = new RolloutRecorder().sync(REV_A).sync(REV_A).sync(REV_B, { window: true }).sync(REV_A, { fail: true });
        assert.deepStrictEqual(sentNotifications(rollout.observed).errors, []);
    });

    it("step-started: once per tenant per rollout, although RollingSync syncs the Application twice at the same revision", () => {
        const rollout = new RolloutRecorder().sync(REV_A).sync(REV_A);
        assert.deepStrictEqual(only(sentNotifications(rollout.observed).sent, "on-rollout-step-started"), [`on-rollout-step-started (sync to ${REV_A.slice(0, 4)}: first wave applied)`]);
    });

    it("step-started: nothing while a deny window blocks the sync, once when the window closes and the sync applies", () => {
        const rollout = new RolloutRecorder().sync(REV_B, { window: true });
        assert.deepStrictEqual(only(sentNotifications(rollout.observed).sent, "on-rollout-step-started"), [`on-rollout-step-started (sync to ${REV_B.slice(0, 4)}: first wave applied)`]);
    });

    it("step-started and deployed: again for a rollback to a revision this tenant ran before", () => {
        const rollout = new RolloutRecorder().sync(REV_A).sync(REV_A).sync(REV_B).sync(REV_B).sync(REV_A).sync(REV_A);
        const { sent } = sentNotifications(rollout.observed);
        const starts = [REV_A, REV_B, REV_A].map((r) => `on-rollout-step-started (sync to ${r.slice(0, 4)}: first wave applied)`);
        assert.deepStrictEqual(only(sent, "on-rollout-step-started"), starts);
        assert.deepStrictEqual(only(sent, "on-deployed"), [REV_A, REV_B, REV_A].map((r) => `on-deployed (sync to ${r.slice(0, 4)}: succeeded)`));
    });

    it("deployed: only once the synced revision is Healthy (the probe gate passed), once per rollout", () => {
        const rollout = new RolloutRecorder().sync(REV_A, { health: "Progressing" }).health("Progressing").health("Healthy").health("Healthy").sync(REV_A);
        assert.deepStrictEqual(only(sentNotifications(rollout.observed).sent, "on-deployed"), ["on-deployed (health turns Healthy)"]);
    });

    it("sync-failed: once, at the first failed attempt (not after Argo CD spent its retries), nothing while it runs or is blocked", () => {
        const rollout = new RolloutRecorder().sync(REV_A).sync(REV_B, { window: true, fail: true });
        const { sent } = sentNotifications(rollout.observed);
        assert.deepStrictEqual(only(sent, "on-sync-failed"), [`on-sync-failed (sync to ${REV_B.slice(0, 4)}: attempt 1 failed, retried at ${rollout.observed.find((o) => o.what.includes("attempt 1 failed"))!.what.split("retried at ")[1]})`]);
        assert.deepStrictEqual(only(sent, "on-deployed"), [`on-deployed (sync to ${REV_A.slice(0, 4)}: succeeded)`]);
    });

    it("degraded: once each time health turns Degraded, not on every state it stays Degraded", () => {
        const rollout = new RolloutRecorder().sync(REV_A).health("Degraded").health("Degraded").health("Healthy").health("Degraded");
        assert.deepStrictEqual(only(sentNotifications(rollout.observed).sent, "on-health-degraded"), ["on-health-degraded (health turns Degraded)", "on-health-degraded (health turns Degraded)"]);
    });
});
