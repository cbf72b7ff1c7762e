/**
 * The real-engine suite's judge of a RollingSync rollout (e2e/harness/rollout.ts), on records
 * shaped like Argo CD's: Applications' sync history (whole seconds) and the ApplicationSet's
 * status transitions. It must flag what maxUpdate forbids and nothing Argo CD does by design.
 */
import * as assert from "assert";
import { RolloutRecorder, ringByRingProblems } from "../e2e/harness/rollout";

const REVISION = "2f873731";
const at = (second: number) => new Date(Date.UTC(2026, 11, 5, 12, 0, second));

/** An Application with its syncs of REVISION, each [start, end] in seconds. */
const app = (name: string, ring: string, ...syncs: Array<[number, number]>) => ({
    metadata: { name, labels: { ring } },
    status: { history: syncs.map(([start, end]) => ({ revision: REVISION, deployStartedAt: at(start).toISOString(), deployedAt: at(end).toISOString(), initiatedBy: { username: "applicationset-controller" } })) },
});

/** A recorder that saw each Application go Pending, then Healthy, at these seconds (never started: no hub). */
const recorded = (transitions: Record<string, { pending: number; healthy: number; step: string }>) => {
    const recorder = new RolloutRecorder({} as never, "voice-agent");
    for (const [application, t] of Object.entries(transitions)) {
        recorder.transitions.push({ application, status: "Pending", step: t.step, at: at(t.pending) }, { application, status: "Healthy", step: t.step, at: at(t.healthy) });
    }
    return recorder;
};

const judge = (apps: any[], recorder: RolloutRecorder) => ringByRingProblems(apps, recorder, { revision: REVISION, since: at(0), steps: [["canary"], ["main-a", "main-b"]], maxUpdate: 1 });

describe("the real-engine suite's ring-by-ring judge", () => {
    it("accepts the next tenant of a maxUpdate-1 step starting once the one before turned Healthy, while that one's PostSync hook still ran (Argo CD moves on at Synced and Healthy)", () => {
        // The cold run's record: main-a Healthy at 20, its sync (the warm-up hook) ended at 23; main-b began at 20.
        const apps = [app("canary", "canary", [1, 8]), app("main-a", "main", [9, 23], [23, 25]), app("main-b", "main", [20, 30])];
        const recorder = recorded({ canary: { pending: 1, healthy: 8, step: "1" }, "main-a": { pending: 9, healthy: 20, step: "2" }, "main-b": { pending: 20, healthy: 30, step: "2" } });
        assert.deepStrictEqual(judge(apps, recorder), []);
    });

    it("flags two tenants of a maxUpdate-1 step syncing while neither was Healthy yet, naming both updates", () => {
        const apps = [app("canary", "canary", [1, 8]), app("main-a", "main", [9, 23]), app("main-b", "main", [15, 30])];
        const recorder = recorded({ canary: { pending: 1, healthy: 8, step: "1" }, "main-a": { pending: 9, healthy: 20, step: "2" }, "main-b": { pending: 15, healthy: 30, step: "2" } });
        const problems = judge(apps, recorder);
        assert.strictEqual(problems.length, 1, problems.join("\n"));
        assert.match(problems[0], /^step 2 updated 2 Applications at once \(maxUpdate 1\): main-a synced from .*:09\.000Z .*Healthy .*:20\.000Z.*, main-b synced from .*:15\.000Z/);
    });

    it("flags a step that starts before the step before it is Healthy", () => {
        const apps = [app("canary", "canary", [1, 8]), app("main-a", "main", [5, 12]), app("main-b", "main", [12, 16])];
        const recorder = recorded({ canary: { pending: 1, healthy: 8, step: "1" }, "main-a": { pending: 5, healthy: 12, step: "2" }, "main-b": { pending: 12, healthy: 16, step: "2" } });
        assert.deepStrictEqual(judge(apps, recorder), [
            `main-a (step 2) started syncing at ${at(5).toISOString()}, before step 1 was Healthy (${at(8).toISOString()})`,
            "main-a (step 2) went Pending at " + at(5).toISOString() + ", before step 1 was Healthy",
        ]);
    });
});
