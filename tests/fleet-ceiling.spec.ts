/**
 * A hub stack rolls out at most APPLICATIONSET_CEILING active tenants: its one RollingSync
 * ApplicationSet's status lists each one's Application and must fit one etcd request (measured by
 * e2e/applicationset-ceiling.e2e.ts). Past it, plan and the Pulumi program refuse the stack before
 * any resource is declared, and say what to do.
 */
import * as assert from "assert";
import { benchFleet } from "../commands/bench";
import { APPLICATIONSET_CEILING, CONFIG_KEYS, ConfigError, type RawConfig, validateConfig } from "../stacks/config";
import { assertProblem, configProblems, inventoryOf } from "./helpers";

type Tenant = { name: string; decommissioned?: boolean };

/**
 * The problems validateConfig finds in a generated fleet of `count` tenants (npm run bench's), its
 * secrets present; `edit` changes the tenant list first. Validation alone: evaluating thousands of
 * tenants would take minutes, and the ceiling is decided before anything is evaluated.
 */
function problemsOfFleet(count: number, edit: (tenants: Tenant[]) => void = () => undefined): string[] {
    const { config, inventory } = benchFleet(count);
    const raw = Object.fromEntries(
        Object.entries(config)
            .map(([k, v]) => [k.replace(/^agentfleet:/, ""), v] as const)
            .filter(([k]) => !CONFIG_KEYS[k as keyof typeof CONFIG_KEYS]?.secret),
    ) as RawConfig;
    const tenants = inventory as Tenant[];
    edit(tenants);
    try {
        validateConfig("bench", raw, { notificationSecrets: ["slackToken"] }, [], inventoryOf("fleet/bench", tenants));
        return [];
    } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err.problems;
    }
}

describe(`a hub stack rolls out at most ${APPLICATIONSET_CEILING} active tenants (the ApplicationSet status ceiling)`, () => {
    it(`accepts exactly ${APPLICATIONSET_CEILING} active tenants`, () => {
        assert.deepStrictEqual(problemsOfFleet(APPLICATIONSET_CEILING), []);
    });

    it(`refuses ${APPLICATIONSET_CEILING + 1}, naming agentfleet:tenants, the count, the ceiling, why, and what to do`, () => {
        const problems = problemsOfFleet(APPLICATIONSET_CEILING + 1);
        assert.strictEqual(problems.length, 1, problems.join("\n"));
        assertProblem(
            problems,
            "fleet/bench",
            `lists ${APPLICATIONSET_CEILING + 1} active tenants, more than the ${APPLICATIONSET_CEILING} one hub stack can roll out`,
            "RollingSync ApplicationSet, whose status lists every Application and must fit one etcd request",
            "RollingSync stops recording progress",
            `Split the fleet across hub stacks of at most ${APPLICATIONSET_CEILING} active tenants each`,
            "sharding one hub into several ApplicationSets is not built yet",
        );
    });

    it("counts only active tenants: a decommissioned tenant has no Application", () => {
        assert.deepStrictEqual(problemsOfFleet(APPLICATIONSET_CEILING + 1, (tenants) => (tenants[tenants.length - 1].decommissioned = true)), []);
    });

    it("the Pulumi program (and plan, render, diff through the same evaluator) refuses a 10,000-tenant stack before declaring anything", async function () {
        this.timeout(120_000);
        const problems = await configProblems("bench", undefined, benchFleet(10_000));
        assertProblem(problems, "fleet/bench", `lists 10000 active tenants, more than the ${APPLICATIONSET_CEILING}`, "Split the fleet across hub stacks");
    });
});
