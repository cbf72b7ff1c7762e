/**
 * `npm run bench [-- --sizes 1000,4000 --runs 1 --startup-runs 5]`: how the hub stack's offline
 * evaluation scales with the fleet, and how long the program takes to load. Prints two tables on
 * stdout, progress with the elapsed time on stderr.
 *
 * 1. Evaluation. For each fleet size, a stack configuration generated in memory (tenants in three
 *    rings where the fleet is big enough, three in four in bootstrap mode, one in four in token
 *    mode; each tenant is a cluster Secret in the hub stack) is evaluated by the same evaluator `npm run render` uses (evaluator/evaluate.ts, Pulumi's
 *    mock runtime, under ts-node --transpile-only), in a fresh process: one warm-up evaluation of
 *    a small fleet, then `--runs` timed evaluations, median reported. The floor is measured the
 *    same way in the same run: a program that registers the same number of bare
 *    `pulumi.CustomResource`s (one input each) through the same evaluator. Memory is the peak RSS
 *    growth of the first timed evaluation over the process's RSS just before it, and the peak RSS
 *    of the whole evaluating process (getrusage maxRSS). The program is measured twice: as
 *    `pulumi up` ran it before (node's default stack traces), and with `--stack-trace-limit=0`,
 *    the node option Pulumi.yaml now sets (the SDK captures a stack trace for every promise it
 *    creates; runtime/debuggable.js).
 *
 * 2. Start-up. The time to `require` the program module (index.ts and everything it imports) in
 *    a fresh node process, the way `pulumi up` loads it: (a) ts-node with type-checking (the
 *    language host's default), (b) ts-node transpile-only (PULUMI_NODEJS_TRANSPILE_ONLY=true),
 *    (c) JavaScript precompiled by tsc into a temporary directory, and (b) and (c) again with
 *    `--stack-trace-limit=0`. Median of `--startup-runs`.
 */
import * as pulumi from "@pulumi/pulumi";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { type CommandSpec, UsageError, runAsProgram, runCommand } from "./cli";
import { progress } from "../evaluator/report";
import { type Evaluation, ROOT, declaredResources, evaluate } from "../evaluator/evaluate";
import { evaluateRegistrations } from "../evaluator/registrations";
import { APPLICATIONSET_CEILING } from "../stacks/config";
import { formatTable } from "./table";

type Config = Record<string, unknown>;

/** A fleet of `tenants` tenants: a stack configuration (keys `agentfleet:<key>`) and its tenant inventory (entries with names). */
export function benchFleet(tenants: number): { config: Config; inventory: Array<Record<string, unknown>> } {
    const secure = (tag: string) => ({ secure: `v1:AAAAAAAAAAAAAAAA:${Buffer.from(tag).toString("base64")}` });
    const ringOf = (i: number) => (i === 0 ? "canary" : i < Math.max(2, Math.ceil(tenants / 10)) ? "early" : "main");
    const list = Array.from({ length: tenants }, (_, i) => {
        const name = `bench-${String(i).padStart(4, "0")}`;
        return { name, server: `https://${name}.k3s.bench.example.net:6443`, ring: ringOf(i), region: ["eu-west", "us-east", "ap-south"][i % 3], credentials: i % 4 === 3 ? "token" : "bootstrap" };
    });
    const rings = [...new Set(list.map((t) => t.ring))];
    const config = {
        "agentfleet:environment": "prod",
        "agentfleet:hub": { server: "https://hub.bench.example.net:6443", domain: "argocd.bench.example.net", nodes: 3 },
        "agentfleet:deploy": { repoURL: "https://github.com/example-org/agentfleet.git", targetRevision: "HEAD" },
        "agentfleet:rollout": { steps: rings.map((ring) => ({ name: ring, matchExpressions: [{ key: "ring", operator: "In", values: [ring] }], maxUpdate: ring === "main" ? "25%" : 1 })) },
        "agentfleet:notifications": { slack: { channels: ["agentfleet-bench"] } },
        "agentfleet:notificationSecrets": { slackToken: secure("slack-token") },
    };
    return { config, inventory: list };
}

/**
 * The floor program: registers bare custom resources, nothing else. `agentfleet:bareShape` lists
 * how many inputs each gets (all 1 for the plain floor). Plain CommonJS, loaded as index.ts.
 */
const FLOOR_PROGRAM = `const pulumi = require("@pulumi/pulumi");
module.exports = async () => {
    const shape = JSON.parse(new pulumi.Config("agentfleet").require("bareShape"));
    shape.forEach((inputs, i) => {
        const props = {};
        for (let p = 0; p < inputs; p++) props["p" + p] = i;
        new pulumi.CustomResource("test:index:Bare", "bare-" + i, props);
    });
    return {};
};
`;

class BareResource extends pulumi.CustomResource {}

/** The floor of a tenant stack: a program (evaluated as a tenant stack's is) registering `n` bare one-input resources. */
const bareResources = (n: number) => async () => {
    for (let i = 0; i < n; i++) new BareResource("test:index:Bare", `bare-${i}`, { p0: i });
    return {};
};

const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const fmt = (x: number, digits = 0) => x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** A throwaway directory with this checkout's node_modules linked in. */
function scratchDir(prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
    return dir;
}

// ---------------------------------------------------------------------------------------------
// Evaluation (each measurement in a fresh child process)

/** program: the hub; floor: bare resources in one stack; tenant-stacks: each tenant's stack, as plan evaluates them; stacks-floor: as many one-resource stacks. */
type Kind = "program" | "floor" | "tenant-stacks" | "stacks-floor";

interface EvalResult {
    resources: number;
    times: number[];
    peakRssDelta: number;
    /** Peak RSS of the whole evaluating process (bytes). */
    peakRss: number;
}

interface ChildArgs {
    kind: Kind;
    /** Tenants (program) or resources (floors). */
    size: number;
    runs: number;
    floorRoot: string;
    /** stacks-floor: bare resources in each stack (a tenant stack's average). */
    perStack?: number;
    /** Extra node options of the child, e.g. --stack-trace-limit=0. */
    nodeArgs?: string[];
}

/** Child process: warm up, then time `runs` evaluations of the program or a floor. */
async function childMain(args: ChildArgs): Promise<void> {
    const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
    const shape = new Array<number>(args.size).fill(1);
    const bare = (n: number) => evaluate("bench", { root: args.floorRoot, config: { "agentfleet:bareShape": shape.slice(0, n) } });
    const once = async (n: number): Promise<Pick<Evaluation, "resources">> => {
        if (args.kind === "program") return evaluate("bench", benchFleet(n));
        if (args.kind === "floor") return bare(n);
        // The floor of a stack per tenant: the same evaluator's fixed cost per stack, one bare resource each.
        const stacks: Evaluation[] = [];
        if (args.kind === "stacks-floor") for (let i = 0; i < n; i++) stacks.push(await evaluate(`bench-${i}`, { root: args.floorRoot, config: {}, program: { project: "bench-floor", run: bareResources(args.perStack ?? 1) } }));
        else {
            const hub = hubs.get(n) ?? (await evaluate("bench", benchFleet(n)));
            hubs.set(n, hub);
            stacks.push(...(await evaluateRegistrations(hub)));
        }
        return { resources: stacks.flatMap((ev) => ev.resources) };
    };
    // The hub evaluation a tenant-stacks measurement starts from (evaluated once, untimed).
    const hubs = new Map<number, Evaluation>();
    if (args.kind === "tenant-stacks") hubs.set(args.size, await evaluate("bench", benchFleet(args.size)));
    // Warm-up: load every module and JIT the hot paths on a small input.
    await once(Math.min(args.size, args.kind === "program" || args.kind === "tenant-stacks" ? 10 : 80));
    const result: EvalResult = { resources: 0, times: [], peakRssDelta: 0, peakRss: 0 };
    for (let i = 0; i < args.runs; i++) {
        gc();
        const rssBefore = process.memoryUsage().rss;
        const start = process.hrtime.bigint();
        const ev = await once(args.size);
        result.times.push(ms(start));
        if (i === 0) {
            result.peakRssDelta = Math.max(0, process.resourceUsage().maxRSS * 1024 - rssBefore);
            result.resources = declaredResources(ev).length;
        }
        result.peakRss = process.resourceUsage().maxRSS * 1024;
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Set in a measuring child's environment: what it measures (ChildArgs as JSON). Not a user flag. */
export const BENCH_CHILD_ENV = "AGENTFLEET_BENCH_CHILD";

function runChild(args: ChildArgs): EvalResult {
    const env = { ...process.env, [BENCH_CHILD_ENV]: JSON.stringify({ kind: args.kind, size: args.size, runs: args.runs, floorRoot: args.floorRoot, perStack: args.perStack }) };
    const r = spawnSync(process.execPath, ["--expose-gc", ...(args.nodeArgs ?? []), "-r", "ts-node/register/transpile-only", __filename], { cwd: ROOT, env, encoding: "utf8", maxBuffer: 1 << 26 });
    const line = r.stdout.trim().split("\n").pop() ?? "";
    if (r.status !== 0 || !line.startsWith("{")) throw new Error(`bench child ${args.kind} ${args.size} failed (exit ${r.status}):\n${r.stderr}`);
    return JSON.parse(line);
}

/** Largest fleet the program is also measured at with node's default stack traces. */
export const DEFAULT_TRACES_MAX_TENANTS = 1000;

/** The node option Pulumi.yaml sets for `pulumi up` (runtime.options.nodeargs). */
export const STACK_TRACE_LIMIT_0 = "--stack-trace-limit=0";

function evaluationTable(sizes: number[], runs: number, report: ReturnType<typeof progress>): string {
    const floorRoot = scratchDir("agentfleet-floor-");
    fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(floorRoot, "Pulumi.yaml"));
    fs.writeFileSync(path.join(floorRoot, "index.ts"), FLOOR_PROGRAM);
    const rows: Array<Array<string | number>> = [];
    const mb = (bytes: number) => fmt(bytes / 2 ** 20);
    const s = (msTaken: number) => fmt(msTaken / 1000, 1);
    let previous: { size: number; ms: number; rss: number } | undefined;
    try {
        for (const [i, size] of sizes.entries()) {
            const step = (what: string) => report.step(`evaluation ${i + 1}/${sizes.length}: ${fmt(size)} tenants, ${what}`);
            // Node's default stack traces grow superlinearly (1,094 s at 10,000 tenants once, before the ceiling): measured only up to DEFAULT_TRACES_MAX_TENANTS.
            const withDefaultTraces = size <= DEFAULT_TRACES_MAX_TENANTS;
            if (withDefaultTraces) step("the program (default stack traces)");
            const program = withDefaultTraces ? runChild({ kind: "program", size, runs, floorRoot }) : undefined;
            step(`the program with ${STACK_TRACE_LIMIT_0}`);
            const fast = runChild({ kind: "program", size, runs, floorRoot, nodeArgs: [STACK_TRACE_LIMIT_0] });
            step(`the floor (${fmt(fast.resources)} bare resources) with ${STACK_TRACE_LIMIT_0}`);
            const floor = runChild({ kind: "floor", size: fast.resources, runs, floorRoot, nodeArgs: [STACK_TRACE_LIMIT_0] });
            const [q, f] = [median(fast.times), median(floor.times)];
            // Growth per tenant between two sizes: constant when evaluation is linear.
            const growth = previous ? `${fmt((q - previous.ms) / (size - previous.size), 2)} ms, ${fmt((fast.peakRss - previous.rss) / (size - previous.size) / 1024)} KB` : "";
            rows.push([fmt(size), fmt(fast.resources), program ? s(median(program.times)) : "—", program ? mb(program.peakRss) : "—", s(q), mb(fast.peakRss), fmt(q / size, 2), growth, s(f), mb(floor.peakRss), fmt(q / f, 2)]);
            previous = { size, ms: q, rss: fast.peakRss };
        }
    } finally {
        fs.rmSync(floorRoot, { recursive: true, force: true });
    }
    return formatTable(["tenants", "resources", "default s", "default peak RSS MB", "s (limit 0)", "peak RSS MB", "ms/tenant", "growth per tenant", "floor s", "floor peak RSS MB", "eval/floor"], rows);
}

/** The tenant stacks a plan evaluates (one per tenant), beside as many stacks of as many bare resources through the same evaluator. */
function tenantStacksTable(sizes: number[], runs: number, report: ReturnType<typeof progress>): string {
    const floorRoot = scratchDir("agentfleet-floor-");
    fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(floorRoot, "Pulumi.yaml"));
    fs.writeFileSync(path.join(floorRoot, "index.ts"), FLOOR_PROGRAM);
    const rows: Array<Array<string | number>> = [];
    try {
        for (const [i, size] of sizes.entries()) {
            report.step(`tenant stacks ${i + 1}/${sizes.length}: ${fmt(size)} tenants`);
            const stacks = runChild({ kind: "tenant-stacks", size, runs, floorRoot });
            const perStack = Math.max(1, Math.round(stacks.resources / size));
            report.step(`tenant stacks ${i + 1}/${sizes.length}: the floor, ${fmt(size)} stacks of ${perStack} bare resources`);
            const floor = runChild({ kind: "stacks-floor", size, runs, floorRoot, perStack });
            const [q, f] = [median(stacks.times), median(floor.times)];
            rows.push([fmt(size), fmt(stacks.resources), fmt(q / 1000, 1), fmt(stacks.peakRss / 2 ** 20), fmt(q / size, 2), fmt(f / 1000, 1), fmt(floor.peakRss / 2 ** 20), fmt(q / f, 2)]);
        }
    } finally {
        fs.rmSync(floorRoot, { recursive: true, force: true });
    }
    return formatTable(["tenants", "resources", "s", "peak RSS MB", "ms/tenant", "floor s", "floor peak RSS MB", "stacks/floor"], rows);
}

// ---------------------------------------------------------------------------------------------
// Start-up (each run a fresh node process)

interface StartupMode {
    name: string;
    nodeArgs?: string[];
    /** Script for `node -e`, run in the project root; prints the require time in ms. */
    script: string;
}

const requireTimed = (setup: string, entry: string) =>
    `${setup}; const t = process.hrtime.bigint(); require(${JSON.stringify(entry)}); process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e6));`;

/** Compiles index.ts and what it imports (only those) with the project's compiler options. */
function precompile(): { dir: string; ms: number } {
    const dir = scratchDir("agentfleet-js-");
    const tsconfig = path.join(dir, "tsconfig.json");
    fs.writeFileSync(tsconfig, JSON.stringify({ extends: path.join(ROOT, "tsconfig.json"), compilerOptions: { noEmit: false, outDir: path.join(dir, "out"), rootDir: ROOT, types: ["node"] }, files: [path.join(ROOT, "index.ts")], include: [] }));
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", tsconfig], { cwd: ROOT, encoding: "utf8" });
    const took = ms(start);
    if (!fs.existsSync(path.join(dir, "out", "index.js"))) throw new Error(`tsc produced no index.js (exit ${r.status}):\n${r.stdout}${r.stderr}`);
    // The compiled program resolves its dependencies from here.
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "out", "node_modules"), "dir");
    return { dir, ms: took };
}

function startupTable(runs: number, report: ReturnType<typeof progress>): string {
    report.step("start-up: compiling index.ts with tsc");
    const compiled = precompile();
    const index = path.join(ROOT, "index.ts");
    const modes: StartupMode[] = [
        { name: "(a) ts-node, type-checking", script: requireTimed(`require("ts-node").register({ transpileOnly: false })`, index) },
        { name: "(b) ts-node, transpile-only", script: requireTimed(`require("ts-node").register({ transpileOnly: true })`, index) },
        { name: "(c) precompiled JavaScript", script: requireTimed("", path.join(compiled.dir, "out", "index.js")) },
        { name: `(b) with ${STACK_TRACE_LIMIT_0}`, nodeArgs: [STACK_TRACE_LIMIT_0], script: requireTimed(`require("ts-node").register({ transpileOnly: true })`, index) },
        { name: `(c) with ${STACK_TRACE_LIMIT_0}`, nodeArgs: [STACK_TRACE_LIMIT_0], script: requireTimed("", path.join(compiled.dir, "out", "index.js")) },
    ];
    const rows: Array<Array<string | number>> = [];
    try {
        for (const mode of modes) {
            report.step(`start-up: ${mode.name}, ${runs} runs`);
            const requireMs: number[] = [];
            const processMs: number[] = [];
            for (let i = 0; i < runs; i++) {
                const start = process.hrtime.bigint();
                const r = spawnSync(process.execPath, [...(mode.nodeArgs ?? []), "-e", mode.script], { cwd: ROOT, encoding: "utf8" });
                processMs.push(ms(start));
                if (r.status !== 0) throw new Error(`${mode.name}: exit ${r.status}\n${r.stderr}`);
                requireMs.push(Number(r.stdout));
            }
            rows.push([mode.name, fmt(median(requireMs)), fmt(median(processMs)), fmt(Math.min(...requireMs)), fmt(Math.max(...requireMs))]);
        }
    } finally {
        fs.rmSync(compiled.dir, { recursive: true, force: true });
    }
    return formatTable(["mode", "require ms", "process ms", "min", "max"], rows) + `(c) needs a build step first: tsc of index.ts and its imports took ${fmt(compiled.ms)} ms.\n`;
}

export const BENCH: CommandSpec = {
    name: "bench",
    summary: "Measures how the hub stack's evaluation scales with the fleet (against a floor of bare resources, peak RSS per process) and how long the program takes to load; prints two tables on stdout, progress on stderr. About 10 minutes on 2 cores with the defaults.",
    options: {
        sizes: { type: "string", value: "N,N,...", default: `1000,${APPLICATIONSET_CEILING}`, description: `fleet sizes (tenants) to evaluate, at most ${APPLICATIONSET_CEILING} (a hub stack's ceiling)` },
        runs: { type: "string", value: "N", default: "1", number: { integer: true }, description: "timed evaluations per cell (median reported)" },
        "startup-runs": { type: "string", value: "N", default: "5", number: { integer: true }, description: "start-up measurements per mode" },
        "real-engines": { type: "string", value: "N,N,...", description: "also run pulumi preview and up of an N-tenant hub stack on a loopback hub, beside a plain program declaring the same objects (needs npm run engines)" },
        "real-engines-runs": { type: "string", value: "N", default: "3", number: { integer: true }, description: "rounds of preview, up and destroy per program and size for --real-engines (median reported)" },
        onboarding: { type: "string", value: "N", number: { integer: true, min: 2 }, description: "also bootstrap N loopback tenants (at least 2) with npm run tenant's code and report tenants per minute (needs npm run engines)" },
        "onboarding-parallel": { type: "string", value: "P", default: "4", number: { integer: true }, description: "onboarding stacks run at a time for --onboarding (npm run tenant's default)" },
        registration: { type: "string", value: "N", number: { integer: true, min: 1 }, description: "also measure fleet registration throughput: register N token tenants on a loopback hub, relabel them all, and time npm run tenant -- up --all's code (tenants per minute, CPU per tenant; needs npm run engines)" },
        "registration-parallel": { type: "string", value: "P", default: "4", number: { integer: true }, description: "tenant stacks run at a time for --registration (npm run tenant -- up's default)" },
    },
    examples: ["npm run bench", "npm run bench -- --sizes 10,100 --runs 1 --startup-runs 2", "npm run bench -- --sizes 100 --real-engines 100,1000", "npm run bench -- --sizes 10 --onboarding 4 --onboarding-parallel 2", "npm run bench -- --sizes 10 --registration 20"],
};

const positiveIntegers = (flag: string, text: string): number[] => {
    const numbers = text.split(",").map((n) => Number(n.trim()));
    if (text.trim() === "" || numbers.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`--${flag} ${JSON.stringify(text)}: expected whole numbers of at least 1, separated by commas`);
    return numbers;
};

/** Fleet sizes of hub stacks: the program refuses more active tenants than APPLICATIONSET_CEILING, so they cannot be measured. */
const fleetSizes = (flag: string, text: string): number[] => {
    const sizes = positiveIntegers(flag, text);
    const over = sizes.filter((n) => n > APPLICATIONSET_CEILING);
    if (over.length > 0) throw new UsageError(`--${flag} ${JSON.stringify(text)}: ${over.join(", ")} is more than the ${APPLICATIONSET_CEILING} active tenants one hub stack can roll out (its ApplicationSet's status must fit one etcd request; docs/performance.md), and the program refuses such a stack; measure at most ${APPLICATIONSET_CEILING}`);
    return sizes;
};

export function main(argv: string[]): Promise<number> {
    return runCommand(BENCH, argv, async (values) => {
        // Every flag is checked before the first measurement.
        const sizes = fleetSizes("sizes", String(values.sizes));
        const realEngineSizes = values["real-engines"] ? fleetSizes("real-engines", String(values["real-engines"])) : undefined;
        const runs = values.runs as number;
        const startupRuns = values["startup-runs"] as number;
        const report = progress("bench", 0);
        const out = (s: string) => process.stdout.write(s);
        out(`agentfleet bench: node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}\n\n`);
        const evaluation = evaluationTable(sizes, runs, report);
        out(`Evaluation of the hub stack (ts-node --transpile-only, mock runtime; median of ${runs} after a warm-up; one fresh process per cell)\n`);
        out(evaluation);
        out(`default: node's default stack traces (up to ${fmt(DEFAULT_TRACES_MAX_TENANTS)} tenants; "—" above); limit 0: ${STACK_TRACE_LIMIT_0}, as Pulumi.yaml runs pulumi up. peak RSS: getrusage maxRSS of the\n`);
        out("evaluating process (modules, warm-up and the evaluation). growth per tenant: time and peak RSS added per tenant since the previous size\n");
        out(`(constant when linear). floor: as many bare pulumi.CustomResource (one input each) through the same evaluator, ${STACK_TRACE_LIMIT_0}.\n\n`);
        const tenantStacks = tenantStacksTable(sizes, runs, report);
        out(`Evaluation of the tenant stacks, which plan, render, diff and status add to the hub's (each tenant's stack registers it; median of ${runs} after a warm-up)\n`);
        out(tenantStacks);
        out(`floor: as many stacks, each of as many bare pulumi.CustomResource (one input each) as a tenant stack has on average, through the same\nevaluator. Both without stack traces, as ${STACK_TRACE_LIMIT_0} runs them.\n\n`);
        const startup = startupTable(startupRuns, report);
        out(`Start-up: time to require index.ts and its imports in a fresh node process (median of ${startupRuns})\n`);
        out(startup);
        if (realEngineSizes) {
            // Loaded only here: the real-engine harness is not needed by the offline bench.
            const { benchRealEngines, BENCH_PROGRAMS } = require("../e2e/engine-bench") as typeof import("../e2e/engine-bench");
            const rows = await benchRealEngines(realEngineSizes, values["real-engines-runs"] as number, (line) => report.step(line));
            out(`\nReal engines: pulumi preview and pulumi up on a loopback hub (seconds, median of ${values["real-engines-runs"]} rounds; floor: a plain JavaScript program declaring the hub's own objects with the same inputs, same engine, same run; PULUMI_SKIP_CHECKPOINTS=true for all)\n`);
            const floorOf = (n: number) => rows.find((r) => r.tenants === n && r.program === BENCH_PROGRAMS[0])!;
            const rounds = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(" ");
            out(
                formatTable(
                    ["tenants", "program", "resources", "preview", "up", "preview / floor", "up / floor", "each round: preview; up"],
                    rows.map((r) => {
                        if (r.failure) return [r.tenants, r.program, "—", `failed: ${r.failure}`, "", "", "", ""];
                        const [preview, up, floor] = [median(r.previewSeconds), median(r.upSeconds), floorOf(r.tenants)];
                        return [r.tenants, r.program, r.resources, preview.toFixed(1), up.toFixed(1), (preview / median(floor.previewSeconds)).toFixed(2), (up / median(floor.upSeconds)).toFixed(2), `${rounds(r.previewSeconds)}; ${rounds(r.upSeconds)}`];
                    }),
                ),
            );
            out("pulumi CLI: the program run by the CLI's Node.js language host, as `pulumi up` runs it; npm run hub: run inline by the Automation API (commands/hub.ts).\n");
        }
        if (values.onboarding) {
            // At least 2 (NumberSpec): the bench fleet has a canary and a main ring.
            const tenants = values.onboarding as number;
            const parallel = values["onboarding-parallel"] as number;
            const { benchOnboarding } = require("../e2e/engine-bench") as typeof import("../e2e/engine-bench");
            const r = await benchOnboarding(tenants, parallel, (line) => report.step(line));
            out(`\nOnboarding on the real engines: ${r.tenants} loopback tenants bootstrapped by npm run tenant's code (one onboarding stack each, Automation API), ${r.parallel} at a time\n`);
            out(formatTable(["tenants", "parallel", "seconds", "tenants per minute"], [[r.tenants, r.parallel, r.seconds.toFixed(1), r.perMinute.toFixed(1)]]));
        }
        if (values.registration) {
            const { benchRegistration } = require("../e2e/engine-bench") as typeof import("../e2e/engine-bench");
            const r = await benchRegistration(values.registration as number, values["registration-parallel"] as number, (line) => report.step(line));
            out(`\nFleet registration throughput on the real engines: ${r.tenants} token tenants, ${r.parallel} at a time, hub context only: each first registered by its own tenant stack (tenant add --credentials token's), then all relabelled by npm run tenant -- up --all's code (the CPU columns: the relabel)\n`);
            out(
                formatTable(
                    ["tenants", "parallel", "first registration s", "per minute", "relabel s", "per minute", "CLI CPU-s / tenant", "Node CPU-s / tenant", "cores busy"],
                    [[r.tenants, r.parallel, r.registerSeconds.toFixed(1), (r.tenants / (r.registerSeconds / 60)).toFixed(1), r.seconds.toFixed(1), r.perMinute.toFixed(1), r.cliCpuPerTenant.toFixed(2), r.nodeCpuPerTenant.toFixed(2), `${(r.coreShare * 100).toFixed(0)}% of ${r.cores}`]],
                ),
            );
            const cliBound = r.cliCpuPerTenant > r.nodeCpuPerTenant;
            out(
                `Bottleneck: ${cliBound ? "CPU of the Pulumi CLI processes (each tenant stack's preview and up, with their provider plugins)" : "this Node.js process (the inline programs and the Automation API)"}: ` +
                    `${(r.cliCpuPerTenant + r.nodeCpuPerTenant).toFixed(2)} CPU-s per tenant, ${(Math.max(r.cliCpuPerTenant, r.nodeCpuPerTenant) / (r.cliCpuPerTenant + r.nodeCpuPerTenant) * 100).toFixed(0)}% of it there. ` +
                    `At that CPU, 1,000 tenants take about ${(((r.cliCpuPerTenant + r.nodeCpuPerTenant) * 1000) / r.cores / 60).toFixed(0)} min on ${r.cores} dedicated cores (docs/design/tenant-stacks.md Q4).\n`,
            );
        }
        report.done();
        return 0;
    });
}

if (require.main === module) {
    const child = process.env[BENCH_CHILD_ENV];
    if (child !== undefined) {
        childMain(JSON.parse(child) as ChildArgs).catch((err) => {
            process.stderr.write(`${(err as Error)?.stack ?? err}\n`);
            process.exitCode = 1;
        });
    } else runAsProgram(main);
}
