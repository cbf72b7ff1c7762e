/**
 * Configurations under which Argo CD would silently stop rolling out, refused at configuration
 * time with the key to change; and the hub values that keep a blocked rollout alive.
 */
import * as assert from "assert";
import { type EvaluateOptions, evaluate } from "../evaluator/evaluate";
import { planSummary } from "../commands/plan";
import { type Obj, STACKS, assertProblem, configProblems, evaluated, key, objectsOf, releaseOf, rendered } from "./helpers";

const TIMEOUT_PARAM = "controller.sync.timeout.seconds";
const paramsOf = async (stack: string, edit?: EvaluateOptions["edit"]) => (releaseOf(edit ? await evaluate(stack, { edit }) : await evaluated(stack)).inputs.values as Obj).configs.params as Record<string, string>;
const hubValuesOf = async (stack: string, edit: EvaluateOptions["edit"]) => releaseOf(await evaluate(stack, { edit })).inputs.values as Obj;

describe("sync windows and the controller's sync timeout", () => {
    it("a stack with a deny window (prod) sets no sync timeout, so a sync the window blocks waits for it instead of being terminated for good", async () => {
        assert.ok((await paramsOf("prod"))[TIMEOUT_PARAM] === undefined, "prod has a deny window: a blocked RollingSync sync would be terminated after the timeout and never retried");
    });

    for (const stack of STACKS) {
        it(`stack ${stack}: a controller sync timeout is set only when the stack has no sync windows`, async () => {
            const [project] = await objectsOf(stack, { cluster: "hub", kind: "AppProject" });
            const windows = ((project.object.spec as Obj).syncWindows ?? []) as unknown[];
            const timeout = (await paramsOf(stack))[TIMEOUT_PARAM];
            if (windows.length > 0) assert.strictEqual(timeout, undefined);
            else assert.strictEqual(timeout, "3600");
        });
    }

    it("an allow window also removes the timeout (outside it, syncs are blocked just the same)", async () => {
        const params = await paramsOf("dev", (c) => (key(c, "rollout").syncWindows = [{ kind: "allow", schedule: "0 6 * * 1-5", duration: "10h" }]));
        assert.strictEqual(params[TIMEOUT_PARAM], undefined);
    });

    it("hub.syncTimeout sets the timeout of a stack without windows", async () => {
        const params = await paramsOf("dev", (c) => (key(c, "hub").syncTimeout = "1h30m"));
        assert.strictEqual(params[TIMEOUT_PARAM], "5400");
    });

    it("refuses hub.syncTimeout together with sync windows, naming both keys and the fix", async () => {
        const problems = await configProblems("prod", (c) => (key(c, "hub").syncTimeout = "8h"));
        assertProblem(problems, "agentfleet:hub.syncTimeout", "cannot be combined with agentfleet:rollout.syncWindows", "never retried", "Remove hub.syncTimeout");
    });
});

describe("applicationsSync policies that drop updates", () => {
    for (const policy of ["create-only", "create-delete"]) {
        it(`refuses ${policy}: RollingSync's syncs, a new targetRevision and the emergency rollout are Application updates`, async () => {
            const problems = await configProblems("dev", (c) => (key(c, "deploy").applicationsSync = policy));
            assertProblem(problems, "agentfleet:deploy.applicationsSync", `${policy} stops the rollout`, "never updates an existing Application", "create-update");
        });
    }

    for (const policy of ["create-update", "sync"]) {
        it(`accepts ${policy} and hands it to the ApplicationSet`, async () => {
            const ev = await evaluate("dev", { edit: (c) => (key(c, "deploy").applicationsSync = policy) });
            const appSet = ev.resources.find((r) => (r.inputs as Obj).kind === "ApplicationSet");
            assert.strictEqual((appSet?.inputs as Obj).spec.syncPolicy.applicationsSync, policy);
        });
    }
});

describe("the HA hub and the hub's node count", () => {
    it("refuses prod's default HA on a hub that declares fewer than 3 schedulable nodes, naming hub.nodes and both fixes", async () => {
        const problems = await configProblems("prod", (c) => delete key(c, "hub").nodes);
        assertProblem(problems, "agentfleet:hub.nodes", "is 1 (the default)", "hub.ha defaults to true in prod", "at least 3 schedulable nodes", "anti-affinity", "hub.ha: false");
    });

    it("refuses an explicit HA hub of two nodes", async () => {
        const problems = await configProblems("dev", (c) => Object.assign(key(c, "hub"), { ha: true, nodes: 2 }));
        assertProblem(problems, "agentfleet:hub.nodes", "is 2", "at least 3 schedulable nodes");
    });

    it("accepts a non-HA prod hub on one node: a single Redis, no redis-ha", async () => {
        const values = await hubValuesOf("prod", (c) => Object.assign(key(c, "hub"), { ha: false, nodes: 1 }));
        assert.strictEqual(values["redis-ha"].enabled, false);
        assert.strictEqual(values.redis.enabled, true);
    });

    it("npm run plan states the requirement for an HA hub", async () => {
        assert.match(planSummary("prod", await rendered("prod")).hub.highAvailability, /^yes: .*needs 3 schedulable hub nodes/);
        assert.strictEqual(planSummary("dev", await rendered("dev")).hub.highAvailability, "no");
    });

    it("accepts HA on three nodes", async () => {
        const values = await hubValuesOf("dev", (c) => Object.assign(key(c, "hub"), { ha: true, nodes: 3 }));
        assert.strictEqual(values["redis-ha"].enabled, true);
    });
});
