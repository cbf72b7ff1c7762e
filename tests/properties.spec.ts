/**
 * Property-based tests (fast-check) over stack configurations built in memory:
 *  - random valid fleets always evaluate to objects that validate strictly, with every active
 *    tenant in exactly one RollingSync step of the declared ApplicationSet (the step its ring's
 *    group was given);
 *  - one random mutation of a valid configuration either still evaluates to such objects, or is
 *    refused with a ConfigError whose every problem names an `agentfleet:` key path; never any
 *    other exception.
 *
 * Runs are seeded: a failure prints the seed (and fast-check's replay path). Override with
 * AGENTFLEET_FC_SEED=<n>, scale the number of runs with AGENTFLEET_FC_RUNS=<factor>, and skip
 * shrinking with AGENTFLEET_FC_NO_SHRINK=1.
 */
import * as assert from "assert";
import fc from "fast-check";
import { chartEnvironments } from "../stacks/chart-environments";
import { ConfigError, type MatchExpression, stepMatches } from "../stacks/config";
import type { Evaluation } from "../evaluator/evaluate";
import { validateObjects } from "./doubles/k8s-schema";
import { generateApplications } from "../evaluator/render";
import { fleetObjects } from "../evaluator/registrations";
import { type Obj, evaluateConfig, inventoryFiles } from "./helpers";

const SEED = process.env.AGENTFLEET_FC_SEED ? Number(process.env.AGENTFLEET_FC_SEED) : 20260522;
const RUNS = process.env.AGENTFLEET_FC_RUNS ? Number(process.env.AGENTFLEET_FC_RUNS) : 1;
const runs = (n: number) => Math.max(1, Math.round(n * RUNS));
/** The environments the agent chart has a values-<env>.yaml for. */
const CHART_ENVIRONMENTS = chartEnvironments("charts/voice-agent") ?? [];

type Config = Record<string, unknown>;
type Gen = fc.GeneratorValue;

/** A generated valid fleet: the stack configuration and what the rollout must look like. */
interface Fleet {
    config: Config;
    /** Active (not decommissioned) tenant -> index of the RollingSync step it must land in. */
    expectedStep: Map<string, number>;
    stepCount: number;
}

const secure = (tag: string) => ({ secure: `v1:${Buffer.from(tag).toString("base64")}:Y2lwaGVydGV4dA==` });

const dnsLabel = (max: number) => fc.stringMatching(new RegExp(`^[a-z]([a-z0-9-]{0,${max - 2}}[a-z0-9])?$`));
const labelValue = fc.stringMatching(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,14}[A-Za-z0-9])?$/);
const RESERVED_LABELS = ["env", "ring", "region", "tenant"];
const labelKey = fc
    .oneof(fc.constantFrom("tier", "team", "cost-center", "agentfleet.io/owner", "example.com/plan", "Customer_ID", "zone.v2"), fc.stringMatching(/^([a-z]{1,6}\.[a-z]{2,4}\/)?[A-Za-z][-A-Za-z0-9_.]{0,10}[A-Za-z0-9]$/))
    .filter((k) => !RESERVED_LABELS.includes(k));

/** Draws a valid fleet of `minTenants` to `maxTenants` tenants. */
function drawFleet(g: Gen, minTenants: number, maxTenants: number): Fleet {
    const size = minTenants === maxTenants ? minTenants : g(() => fc.oneof({ weight: 4, arbitrary: fc.integer({ min: minTenants, max: Math.min(maxTenants, 12) }) }, { weight: 1, arbitrary: fc.integer({ min: minTenants, max: maxTenants }) }));
    const environment = g(fc.constantFrom, ...CHART_ENVIRONMENTS);
    const rings = g(() => fc.uniqueArray(labelValue, { minLength: 1, maxLength: Math.min(4, size) }));
    const regions = g(() => fc.uniqueArray(labelValue, { minLength: 1, maxLength: 3 }));
    // A tenant env selects the chart's values-<env>.yaml, so it is one the chart has (the loader refuses others).
    const envs = g(() => fc.uniqueArray(fc.constantFrom(...CHART_ENVIRONMENTS), { minLength: 1, maxLength: 2 }));
    const freeformKeys = g(() => fc.uniqueArray(labelKey, { maxLength: 2 }));
    const prefix = g(dnsLabel, 12);
    const zone = g(fc.constantFrom, "k3s.agentfleet.example.net", "clusters.example.org", "edge.example.io");

    const tenants: Obj[] = [];
    for (let i = 0; i < size; i++) {
        const name = `${prefix}-${i}`;
        const serverKind = g(fc.constantFrom, "host", "ip", "proxy");
        const t: Obj = {
            name,
            server:
                serverKind === "host"
                    ? `https://${name}.${zone}:${g(fc.integer, { min: 443, max: 65535 })}`
                    : serverKind === "ip"
                      ? `https://10.${(i >> 8) & 255}.${i & 255}.${g(fc.integer, { min: 1, max: 254 })}:6443`
                      : // Behind a proxy, as Rancher does: one host, a path per cluster.
                        `https://rancher.${zone}/k8s/clusters/c-${i}`,
            // The first tenants cover every ring, so every step has a tenant.
            ring: i < rings.length ? rings[i] : g(fc.constantFrom, ...rings),
            region: g(fc.constantFrom, ...regions),
            credentials: g(fc.constantFrom, "bootstrap", "token"),
        };
        if (g(fc.boolean)) t.env = g(fc.constantFrom, ...envs);
        const labels = Object.fromEntries(freeformKeys.filter(() => g(fc.integer, { min: 0, max: 3 }) > 0).map((k) => [k, g(() => labelValue)]));
        if (Object.keys(labels).length > 0) t.labels = labels;
        if (g(fc.integer, { min: 0, max: 4 }) === 0) t.namespaces = g(fc.uniqueArray, dnsLabel(20), { minLength: 1, maxLength: 3 });
        if (g(fc.integer, { min: 0, max: 5 }) === 0) t.paused = g(fc.boolean);
        if (i >= rings.length && g(fc.integer, { min: 0, max: 9 }) === 0) t.decommissioned = true;
        tenants.push(t);
        // Both modes hand the hub a token and CA (bootstrap: from the tenant's onboarding stack); a
        // decommissioned tenant needs none, so its credential may already be gone.
    }

    // Steps: the rings in random order, cut into consecutive groups; each group one step.
    const order = g(() => fc.shuffledSubarray(rings, { minLength: rings.length, maxLength: rings.length }));
    const groups: string[][] = [];
    for (const ring of order) {
        if (groups.length === 0 || g(fc.boolean)) groups.push([ring]);
        else groups[groups.length - 1].push(ring);
    }
    const steps = groups.map((group, j) => {
        const others = rings.filter((r) => !group.includes(r));
        const byRing: MatchExpression = others.length > 0 && g(fc.boolean) ? { key: "ring", operator: "NotIn", values: others } : { key: "ring", operator: "In", values: group };
        const matchExpressions: MatchExpression[] = [byRing];
        // An extra, always-true matcher: expressions are ANDed.
        if (g(fc.integer, { min: 0, max: 3 }) === 0) matchExpressions.push({ key: "region", operator: "In", values: [...regions] });
        const step: Obj = { name: g(fc.constantFrom, `step-${j + 1}`, group.join("+"), `Ring ${j + 1}`), matchExpressions };
        const maxUpdate = g(fc.constantFrom, "none", "count", "percent");
        if (maxUpdate === "count") step.maxUpdate = g(fc.integer, { min: 0, max: 25 });
        if (maxUpdate === "percent") step.maxUpdate = `${g(fc.integer, { min: 0, max: 100 })}%`;
        return step;
    });
    const rollout: Obj = { steps };
    const windows = g(fc.integer, { min: 0, max: 2 });
    if (windows > 0) {
        rollout.syncWindows = Array.from({ length: windows }, () => {
            const w: Obj = {
                kind: g(fc.constantFrom, "allow", "deny"),
                schedule: `${g(fc.integer, { min: 0, max: 59 })} ${g(fc.integer, { min: 0, max: 23 })} * * ${g(fc.constantFrom, "*", "1-5", "0,6")}`,
                duration: g(fc.constantFrom, "1h", "30m", "5h", "1h30m", "45s"),
            };
            if (g(fc.boolean)) w.manualSync = g(fc.boolean);
            if (g(fc.boolean)) w.timeZone = g(fc.constantFrom, "Europe/Berlin", "UTC", "America/New_York", "America/Argentina/Buenos_Aires");
            return w;
        });
    }

    const hub: Obj = { server: `https://hub.${environment}.${zone}:6443`, domain: `argocd.${environment}.${zone}` };
    if (g(fc.boolean)) hub.argocdVersion = g(fc.constantFrom, "v3.4.7", "v3.4.12", "v3.5.1", "v3.6.0", "v3.6.4", "v4.0.0");
    if (g(fc.boolean)) hub.chartVersion = g(fc.constantFrom, "10.1.1", "10.2.0");
    if (g(fc.integer, { min: 0, max: 3 }) === 0) hub.namespace = g(dnsLabel, 15);
    if (g(fc.integer, { min: 0, max: 3 }) === 0) hub.ha = g(fc.boolean);
    // An HA hub needs 3 schedulable nodes (redis-ha); a valid fleet declares them.
    if (hub.ha === true || (hub.ha === undefined && environment === "prod")) hub.nodes = g(fc.integer, { min: 3, max: 9 });
    if (g(fc.integer, { min: 0, max: 3 }) === 0) hub.controllerShards = g(fc.integer, { min: 1, max: 50 });

    const deploy: Obj = {
        repoURL: g(fc.constantFrom, "https://github.com/example-org/agentfleet.git", "ssh://git@github.com/example-org/agentfleet.git", "git@github.com:example-org/agentfleet.git"),
        targetRevision: g(fc.constantFrom, "main", "v1.4.2", "3f9c2a1d0b7e4c5a8f6e2d1c0b9a8f7e6d5c4b3a"),
    };
    if (g(fc.boolean)) deploy.prune = g(fc.boolean);
    if (g(fc.boolean)) deploy.applicationsSync = g(fc.constantFrom, "create-update", "sync");

    const notifications: Obj = {};
    const notificationSecrets: Obj = {};
    if (g(fc.boolean)) notifications.argocdUrl = `https://argocd-ui.${zone}`;
    if (g(fc.boolean)) {
        notifications.slack = { channels: g(fc.uniqueArray, fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,20}$/), { minLength: 1, maxLength: 2 }) };
        notificationSecrets.slackToken = secure("slack-token");
    }
    if (g(fc.boolean)) {
        notifications.webhook = { url: `https://hooks.${zone}/argocd/${environment}` };
        notificationSecrets.webhookToken = secure("webhook-token");
    }

    const config: Config = {
        "agentfleet:environment": environment,
        "agentfleet:hub": hub,
        "agentfleet:deploy": deploy,
        "agentfleet:tenants": tenants,
        "agentfleet:rollout": rollout,
        "agentfleet:notifications": notifications,
    };
    if (Object.keys(notificationSecrets).length > 0 || g(fc.boolean)) config["agentfleet:notificationSecrets"] = notificationSecrets;
    const emergency = g(fc.integer, { min: 0, max: 7 }) === 0;
    if (emergency || g(fc.boolean)) config["agentfleet:emergencyRollout"] = emergency;

    const stepOfRing = new Map(groups.flatMap((group, j) => group.map((r) => [r, j] as const)));
    const expectedStep = new Map(tenants.filter((t) => !t.decommissioned).map((t) => [t.name as string, emergency ? 0 : stepOfRing.get(t.ring)!]));
    return { config, expectedStep, stepCount: emergency ? 1 : steps.length };
}

const brief = (value: unknown) => {
    const text = JSON.stringify(value);
    return text.length > 4000 ? `${text.slice(0, 4000)}... (${text.length} characters)` : text;
};

/**
 * What every successful evaluation must satisfy: strictly valid objects (generated Applications
 * included), one Application per active tenant, each matched by exactly one RollingSync step.
 * Returns the problems, empty when it holds.
 */
async function rolloutProblems(ev: Evaluation, expected?: Fleet): Promise<string[]> {
    const objects = await fleetObjects(ev);
    const problems = await validateObjects(objects.map((o) => o.object));
    const appSet = objects.find((o) => o.cluster === "hub" && o.object.kind === "ApplicationSet")?.object as Obj | undefined;
    if (!appSet) return [...problems, "no ApplicationSet declared"];
    const steps: Array<{ matchExpressions: MatchExpression[] }> = appSet.spec.strategy.rollingSync.steps;
    const apps = generateApplications(objects);
    problems.push(...(await validateObjects(apps.map((a) => a.application))));
    for (const app of apps) {
        const matching = steps.map((s, i) => (stepMatches(s, app.application.metadata.labels ?? {}) ? i : -1)).filter((i) => i >= 0);
        if (matching.length !== 1) problems.push(`tenant ${app.tenant} matches ${matching.length} steps (${matching.join(", ")})`);
    }
    if (expected) {
        if (steps.length !== expected.stepCount) problems.push(`${steps.length} steps declared, expected ${expected.stepCount}`);
        const got = new Map(apps.map((a) => [a.tenant, a.step]));
        if (got.size !== apps.length) problems.push("a tenant has two Applications");
        for (const [tenant, step] of expected.expectedStep) if (got.get(tenant) !== step) problems.push(`tenant ${tenant} is in step ${got.get(tenant)}, expected ${step}`);
        for (const tenant of got.keys()) if (!expected.expectedStep.has(tenant)) problems.push(`an Application for ${tenant}, which is decommissioned or unknown`);
    } else {
        // Without a model: every registered (active) tenant gets exactly one Application.
        const secrets = objects.filter((o) => o.cluster === "hub" && (o.object.metadata as Obj)?.labels?.["argocd.argoproj.io/secret-type"] === "cluster");
        if (secrets.length !== apps.length) problems.push(`${secrets.length} cluster Secrets but ${apps.length} Applications`);
    }
    return problems;
}

/** fast-check's report (seed, replay path) with the failing run's own error, which it keeps as `cause`. */
const seedNote = (err: unknown) => {
    const cause = (err as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? `\n${cause.message}` : "";
    return `${(err as Error).message}${detail}\n(fast-check seed ${SEED}; rerun with AGENTFLEET_FC_SEED=${SEED})`;
};

async function check(property: fc.IAsyncPropertyWithHooks<[Gen]>, numRuns: number): Promise<void> {
    try {
        // Shrinking re-evaluates at every step: bound the whole run. A failure found before the
        // bound is still reported (with the counterexample shrunk so far).
        await fc.assert(property, { seed: SEED, numRuns, interruptAfterTimeLimit: 120000, endOnFailure: !!process.env.AGENTFLEET_FC_NO_SHRINK });
    } catch (err) {
        throw new Error(seedNote(err));
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

type Path = Array<string | number>;

const MUTATIONS = ["delete", "retype", "duplicate", "perturb", "rename"] as const;
const ODD_VALUES: unknown[] = [null, true, false, 0, 7, -3, 2.5, "", "text", "127.0.0.1", [], {}, ["x"], { k: "v" }, { secure: "v1:AAAA:BBBB" }];
const ODD_STRINGS = ["", " ", "https://127.0.0.1:6443", "http://example.net", "100%", "101%", "v3.4.4", "In", "Exists", "true", "null", "0", "-1", "__proto__", "constructor", "a".repeat(70), "{{.name}}", "{{ .nope }}", "ring", "é"];

/** Every path of the configuration tree below its top-level keys, with the top-level keys. */
function paths(value: unknown, prefix: Path = []): Path[] {
    if (Array.isArray(value)) return value.flatMap((v, i) => [[...prefix, i], ...paths(v, [...prefix, i])]);
    if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => [[...prefix, k], ...paths(v, [...prefix, k])]);
    return [];
}

const parentOf = (root: Config, path: Path): any => path.slice(0, -1).reduce((node: any, k) => node[k], root);
const showPath = (path: Path) => path.map((k, i) => (typeof k === "number" ? `[${k}]` : i === 0 ? k : `.${k}`)).join("");

/** Applies one random mutation at a random path; returns what it did. */
function mutate(g: Gen, config: Config): string {
    const all = paths(config);
    const path = all[g(fc.integer, { min: 0, max: all.length - 1 })];
    const parent = parentOf(config, path);
    const key = path[path.length - 1];
    const value = parent[key];
    const kind = g(fc.constantFrom, ...MUTATIONS);
    const at = showPath(path);
    switch (kind) {
        case "delete":
            if (Array.isArray(parent)) parent.splice(key as number, 1);
            else delete parent[key];
            return `delete ${at}`;
        case "retype": {
            const replacement = g(fc.constantFrom, ...ODD_VALUES);
            parent[key] = structuredClone(replacement);
            return `set ${at} to ${JSON.stringify(replacement)} (was ${brief(value)})`;
        }
        case "duplicate":
            if (Array.isArray(parent)) {
                parent.splice((key as number) + 1, 0, structuredClone(value));
                return `duplicate ${at}`;
            }
            parent[`${key}${g(fc.constantFrom, "s", "2", "_")}`] = structuredClone(value);
            return `duplicate ${at} under a near-miss key`;
        case "rename": {
            if (Array.isArray(parent)) {
                const other = g(fc.integer, { min: 0, max: parent.length - 1 });
                [parent[key as number], parent[other]] = [parent[other], parent[key as number]];
                return `swap ${at} with [${other}]`;
            }
            const k = String(key);
            const i = g(fc.integer, { min: 0, max: Math.max(0, k.length - 2) });
            const renamed = k.length > 1 ? k.slice(0, i) + k[i + 1] + k[i] + k.slice(i + 2) : `${k}${k}`;
            delete parent[key];
            parent[renamed] = value;
            return `rename ${at} to ${renamed}`;
        }
        case "perturb": {
            if (typeof value === "number") {
                const next = g(fc.constantFrom, value + 1, -value - 1, value * 1000, value + 0.5, String(value));
                parent[key] = next;
                return `change ${at} from ${value} to ${JSON.stringify(next)}`;
            }
            if (typeof value !== "string") {
                parent[key] = g(fc.constantFrom, ...ODD_STRINGS);
                return `set ${at} to ${JSON.stringify(parent[key])} (was ${brief(value)})`;
            }
            const how = g(fc.constantFrom, "insert", "drop", "upper", "odd", "double", "space");
            const i = g(fc.integer, { min: 0, max: value.length });
            const next =
                how === "insert"
                    ? value.slice(0, i) + g(fc.constantFrom, " ", "-", "_", "A", "é", "/", ".", ":", "%", "0", "\n", "{") + value.slice(i)
                    : how === "drop"
                      ? value.slice(0, i) + value.slice(i + 1)
                      : how === "upper"
                        ? value.toUpperCase()
                        : how === "double"
                          ? value + value
                          : how === "space"
                            ? ` ${value} `
                            : g(fc.constantFrom, ...ODD_STRINGS);
            parent[key] = next;
            return `change ${at} from ${JSON.stringify(value)} to ${JSON.stringify(next)}`;
        }
    }
    throw new Error(`unknown mutation ${kind}`);
}

describe("properties (fast-check)", function () {
    this.timeout(600000);

    const validFleets = (min: number, max: number, sizes: number[] = []) =>
        fc.asyncProperty(fc.gen(), async (g) => {
            const fleet = drawFleet(g, min, max);
            sizes.push((fleet.config["agentfleet:tenants"] as unknown[]).length);
            let ev: Evaluation;
            try {
                ev = await evaluateConfig("prop", fleet.config);
            } catch (err) {
                throw new Error(`a valid fleet did not evaluate: ${err instanceof ConfigError ? err.problems.join("; ") : (err as Error).stack}\nconfig: ${brief(fleet.config)}`);
            }
            const problems = await rolloutProblems(ev, fleet);
            assert.deepStrictEqual(problems, [], `config: ${brief(fleet.config)}`);
        });

    it("random valid fleets (1 to 200 tenants) evaluate to strictly valid objects, every tenant in exactly its one rollout step", async () => {
        const sizes: number[] = [];
        await check(validFleets(1, 200, sizes), runs(24));
        if (process.env.AGENTFLEET_FC_VERBOSE) console.log(`      fleets of ${[...sizes].sort((a, b) => a - b).join(", ")} tenants`);
    });

    it("the largest generated fleet (200 tenants) does too", async () => {
        await check(validFleets(200, 200), 1);
    });

    it("a single random mutation of a valid configuration evaluates to valid objects or fails with a ConfigError naming agentfleet: key paths, never anything else", async () => {
        const outcomes = { refused: 0, evaluated: 0 };
        await check(
            fc.asyncProperty(fc.gen(), async (g) => {
                const fleet = drawFleet(g, 1, 5);
                const config = structuredClone(fleet.config);
                const mutation = mutate(g, config);
                // The tenants are files named by the tenant: a mutant no files can hold (a nameless or a twice-named entry) is not a configuration.
                if (!inventoryFiles(config["agentfleet:tenants"])) return;
                const context = `mutation: ${mutation}\nconfig: ${brief(config)}`;
                let ev: Evaluation;
                try {
                    ev = await evaluateConfig("mutant", config);
                } catch (err) {
                    if (!(err instanceof ConfigError)) throw new Error(`not a ConfigError: ${(err as Error)?.stack ?? err}\n${context}`);
                    assert.ok(err.problems.length > 0, `a ConfigError without problems\n${context}`);
                    for (const p of err.problems) assert.match(p, /^(agentfleet:\S*(\s\S+)*?|fleet\/mutant(\/[^\n]*?\.yaml)?(: \S+)?): \S/, `a problem without an agentfleet: key path or tenant file: ${p}\n${context}`);
                    outcomes.refused++;
                    return;
                }
                let problems: string[];
                try {
                    problems = await rolloutProblems(ev);
                } catch (err) {
                    throw new Error(`the configuration evaluated, but its rollout could not be generated: ${(err as Error).stack}\n${context}`);
                }
                assert.deepStrictEqual(problems, [], context);
                outcomes.evaluated++;
            }),
            runs(200),
        );
        if (process.env.AGENTFLEET_FC_VERBOSE) console.log(`      mutants: ${outcomes.refused} refused, ${outcomes.evaluated} still evaluated`);
        // Not vacuous: both outcomes occur (the counts are fixed for a fixed seed).
        assert.ok(outcomes.refused >= runs(200) / 10 && outcomes.evaluated >= runs(200) / 10, `mutants: ${outcomes.refused} refused, ${outcomes.evaluated} evaluated`);
    });
});
