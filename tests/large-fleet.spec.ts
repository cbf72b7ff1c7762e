/**
 * A 300-tenant stack, generated in memory: the plan shows progress with the elapsed time on
 * stderr while it works, and its text stays readable (no line over 200 characters), while
 * `--json` holds every tenant.
 */
import { strict as assert } from "assert";
import { benchFleet } from "../commands/bench";
import { ROOT } from "../evaluator/evaluate";
import { formatPlan, planSummary } from "../commands/plan";
import { type RenderResult, renderStack } from "../evaluator/render";

const TENANTS = 300;
const MAX_LINE = 200;

describe(`a ${TENANTS}-tenant stack`, function () {
    this.timeout(900000);
    let result: RenderResult;
    let stderr = "";

    before(async () => {
        const write = process.stderr.write.bind(process.stderr);
        process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
        try {
            result = await renderStack("large", ROOT, { progress: true, ...benchFleet(TENANTS) });
        } finally {
            process.stderr.write = write;
        }
    });

    it("plan reports its progress on stderr with the elapsed time while it renders each tenant, and when it is done", () => {
        const lines = stderr.trim().split("\n");
        const rendering = lines.filter((l) => /^large: \[\d+\.\ds\] rendering the agent chart for tenant \d+ of 300$/.test(l));
        assert.ok(rendering.length >= 2, `expected progress lines while rendering, got:\n${stderr}`);
        const seconds = lines.map((l) => Number(/^large: \[(\d+\.\d)s\]/.exec(l)?.[1] ?? NaN));
        assert.ok(seconds.every((s, i) => !Number.isNaN(s) && (i === 0 || s >= seconds[i - 1])), `every line starts with the elapsed time, never decreasing:\n${stderr}`);
        assert.match(lines.at(-1)!, /^large: \[\d+\.\ds\] evaluated \d+ resources, rendered 300 tenants$/);
    });

    it(`the text plan has no line over ${MAX_LINE} characters, and --json lists every tenant in its step`, () => {
        const text = formatPlan("large", result);
        const long = text.split("\n").filter((l) => l.length > MAX_LINE);
        assert.deepEqual(long.map((l) => `${l.length}: ${l.slice(0, 80)}...`), []);
        assert.match(text, /Tenants by ring \(300 tenants, summarised; --json lists each\)/);
        const summary = planSummary("large", result);
        assert.equal(summary.tenants.length, TENANTS);
        const names = benchFleet(TENANTS).inventory.map((t) => t.name).sort();
        assert.deepEqual(summary.rollout.steps.flatMap((s) => s.tenants).sort(), names);
    });
});
