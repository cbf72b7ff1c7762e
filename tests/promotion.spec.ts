/**
 * Promotion with a soak gate: a stack's agentfleet:promotion rule, checked by the loader, and the
 * gate `npm run promote` applies to the Applications Argo CD runs for the stage a revision comes
 * from (staging's own ApplicationSet, schema-valid Applications with the status and history Argo
 * CD's application controller writes). The command against real Argo CD: e2e/promote.e2e.ts.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { validateObjects } from "./doubles/k8s-schema";
import { formatSoakVerdict, soakVerdict } from "../commands/promotion-gate";
import { setTargetRevision } from "../tenants/stack-file";
import { formatPlan, planSummary } from "../commands/plan";
import { ROOT } from "../evaluator/evaluate";
import { type AppState, type Obj, applicationStatus, assertProblem, clusterParams, configProblems, generatedApplication, key, objectsOf, rendered, runTool } from "./helpers";

const R = "v1.4.2";
const COMMIT = "4f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39";
const OLD_COMMIT = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
const NOW = new Date("2026-05-01T12:00:00Z");
const ago = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000).toISOString().replace(/\.000Z$/, "Z");
const TWO_HOURS = 2 * 3600;

interface TenantMoment {
    app?: Partial<AppState>;
    /** Target revision of the Application (default R). */
    target?: string;
    /** history: [commit, deployed minutes ago] in id order. */
    history?: Array<[string, number]>;
    /** Minutes since the health status last changed. */
    healthyFor?: number;
}

/** Staging's Applications at one moment, as Argo CD reports them: tenant -> its state. */
async function stagingAt(moment: Record<string, TenantMoment>): Promise<Obj[]> {
    const declared = structuredClone((await objectsOf("staging", { kind: "ApplicationSet" }))[0].object) as Obj;
    const appSet = { ...declared, metadata: { ...declared.metadata, uid: "5b0e6f0a-7c1d-4e43-9a51-3f0d2b7c8e11" } };
    const apps = (await clusterParams("staging"))
        .filter((c) => moment[c.name])
        .map((c) => {
            const m = moment[c.name];
            const app = generatedApplication(appSet, c);
            app.spec.source.targetRevision = m.target ?? R;
            app.status = applicationStatus(app, { sync: "Synced", health: "Healthy", revision: COMMIT, at: ago(m.healthyFor ?? 180), ...m.app });
            app.status.history = (m.history ?? [[COMMIT, 180]]).map(([revision, minutes], id) => ({ id, revision, deployedAt: ago(minutes), source: app.spec.source, initiatedBy: { username: "applicationset-controller", automated: true } }));
            return app;
        });
    assert.deepStrictEqual(await validateObjects(apps), [], "the test's Argo CD objects are not schema-valid");
    return apps;
}

const gate = async (moment: Record<string, TenantMoment>, tenants = Object.keys(moment)) =>
    soakVerdict({ from: "staging", to: "prod", revision: R, soak: "2h", soakSeconds: TWO_HOURS, tenants, applications: await stagingAt(moment), now: NOW });

const healthy: TenantMoment = {};

describe("promotion: the soak gate on the stage a revision comes from", () => {
    it("promotes when every tenant ran the revision Synced and Healthy for the soak, since the times Argo CD recorded", async () => {
        const v = await gate({ "stg-canary": healthy, "stg-acme": { healthyFor: 130, history: [[COMMIT, 125]] }, "stg-initech": healthy });
        assert.strictEqual(v.promotable, true);
        assert.deepStrictEqual(v.tenants.map((t) => [t.tenant, t.ready, t.since]), [
            ["stg-canary", true, ago(180)],
            ["stg-acme", true, ago(125)],
            ["stg-initech", true, ago(180)],
        ]);
        assert.match(formatSoakVerdict(v), /every tenant ran it Synced and Healthy for the soak/);
    });

    it("refuses a revision healthy for less than the soak, with the time left", async () => {
        const v = await gate({ "stg-canary": healthy, "stg-acme": { history: [[OLD_COMMIT, 600], [COMMIT, 45]] }, "stg-initech": healthy });
        assert.strictEqual(v.promotable, false);
        const acme = v.tenants.find((t) => t.tenant === "stg-acme")!;
        assert.deepStrictEqual([acme.ready, acme.since, acme.remainingSeconds], [false, ago(45), 75 * 60]);
        assert.strictEqual(v.remainingSeconds, 75 * 60);
        const text = formatSoakVerdict(v);
        assert.match(text, /REFUSED, 1 of 3 tenant\(s\) not ready/);
        assert.match(text, /stg-acme: Synced and Healthy at v1\.4\.2 since .* \(45m00s\): 1h15m of the 2h soak left/);
        assert.match(text, /Time left to soak: 1h15m/);
    });

    it("starts the soak again when the tenant's health changed since the deployment", async () => {
        const v = await gate({ "stg-canary": healthy, "stg-acme": { healthyFor: 20, history: [[COMMIT, 300]] } });
        const acme = v.tenants.find((t) => t.tenant === "stg-acme")!;
        assert.deepStrictEqual([v.promotable, acme.since, acme.remainingSeconds], [false, ago(20), 100 * 60]);
    });

    it("counts the soak from the first of RollingSync's repeated syncs of the same commit", async () => {
        const v = await gate({ "stg-canary": { history: [[OLD_COMMIT, 900], [COMMIT, 150], [COMMIT, 149]] } });
        assert.deepStrictEqual([v.promotable, v.tenants[0].since], [true, ago(150)]);
    });

    it("refuses a Degraded tenant, named with its health message and since when", async () => {
        const v = await gate({ "stg-canary": healthy, "stg-acme": { app: { health: "Degraded", healthMessage: "Agent prober failed revision 3: warm-up call timed out", at: ago(12) } } });
        assert.strictEqual(v.promotable, false);
        assert.strictEqual(v.remainingSeconds, null, "no time left to wait for: something else blocks");
        assert.match(formatSoakVerdict(v), new RegExp(`stg-acme: is Degraded: Deployment voice-agent: Agent prober failed revision 3: warm-up call timed out, since ${ago(12)}`));
        assert.doesNotMatch(formatSoakVerdict(v), /Time left/);
    });

    it("refuses a tenant still on another revision, and one that is OutOfSync", async () => {
        const v = await gate({ "stg-canary": { target: "v1.4.1", app: { revision: OLD_COMMIT } }, "stg-acme": { app: { sync: "OutOfSync" }, history: [[OLD_COMMIT, 300]] } });
        assert.deepStrictEqual(
            v.tenants.map((t) => t.reason),
            ["runs v1.4.1 (0a1b2c3d4e5f), not v1.4.2", "is OutOfSync at v1.4.2, still runs 0a1b2c3d4e5f"],
        );
    });

    it("accepts a commit as the revision when the tenant runs exactly that commit", async () => {
        const apps = await stagingAt({ "stg-canary": { target: "main" } });
        const v = soakVerdict({ from: "staging", to: "prod", revision: COMMIT, soak: "2h", soakSeconds: TWO_HOURS, tenants: ["stg-canary"], applications: apps, now: NOW });
        assert.strictEqual(v.promotable, true);
    });

    it("refuses a tenant of the stage that has no Application (the gate covers the whole fleet, not what happens to exist)", async () => {
        const v = await gate({ "stg-canary": healthy }, ["stg-canary", "stg-initech"]);
        assert.strictEqual(v.promotable, false);
        assert.match(v.tenants[1].reason!, /has no Application on the staging hub/);
    });
});

describe("promotion: the rule in the stack file", () => {
    it("plan prints the rule: prod promotes from staging after a 2h soak; dev has no gate", async () => {
        const prod = await rendered("prod");
        assert.deepStrictEqual(planSummary("prod", prod).rollout.promotion, { from: "staging", soak: "2h" });
        assert.match(formatPlan("prod", prod), /^ {2}Promotion: a revision reaches prod only after every staging tenant ran it Synced and Healthy for 2h \(npm run promote -- --to prod\)$/m);
        assert.strictEqual(planSummary("dev", await rendered("dev")).rollout.promotion, null);
        assert.match(formatPlan("dev", await rendered("dev")), /Promotion: no soak gate/);
    });

    it("refuses a from stack that does not exist, with a suggestion", async () => {
        assertProblem(await configProblems("prod", (c) => (key(c, "promotion").from = "stagin")), "agentfleet:promotion.from", 'no stack "stagin"', "did you mean 'staging'");
    });

    it("refuses promoting a stack from itself", async () => {
        assertProblem(await configProblems("prod", (c) => (key(c, "promotion").from = "prod")), "agentfleet:promotion.from", "is this stack itself");
    });

    it("refuses a soak that is not a duration, or zero, and an unknown key", async () => {
        assertProblem(await configProblems("prod", (c) => (key(c, "promotion").soak = "two hours")), "agentfleet:promotion.soak", "is not a duration such as 2h");
        assertProblem(await configProblems("prod", (c) => (key(c, "promotion").soak = "0s")), "agentfleet:promotion.soak", "must be longer than 0s");
        assertProblem(await configProblems("prod", (c) => (key(c, "promotion").sok = "2h")), "agentfleet:promotion.sok", "did you mean 'soak'");
    });

    it("setting the target revision changes that one line and nothing else", () => {
        const text = fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8");
        const edited = setTargetRevision(text, R);
        const [before, after] = [text.split("\n"), edited.split("\n")];
        const changed = before.map((line, i) => [line, after[i]]).filter(([a, b]) => a !== b);
        assert.deepStrictEqual(changed, [["    targetRevision: HEAD", `    targetRevision: ${R}`]]);
        assert.strictEqual(after.length, before.length);
    });

    it("npm run promote refuses a stack without a promotion rule before reaching any hub (exit 2)", () => {
        const r = runTool(ROOT, "promote", ["--to", "dev", "--kubeconfig", "/nonexistent/hub.yaml"]);
        assert.strictEqual(r.status, 2, r.stderr);
        assert.match(r.stderr, /Pulumi\.dev\.yaml has no agentfleet:promotion/);
        assert.match(r.stderr, /from: staging\n {4}soak: 2h/);
    });
});
