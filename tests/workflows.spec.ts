/**
 * Specifications of the GitHub Actions workflows in .github/workflows.
 *
 * Each workflow is linted against the SchemaStore workflow schema by @action-validator/core (a WASM
 * build of action-validator; offline, no binary download), then checked against this project's
 * rules: pinned actions, least permissions, only existing npm scripts and stacks, the deploy order,
 * and the hub's kubeconfig (no longer stack configuration): every step that reaches a hub gets it
 * through KUBECONFIG, from a private file its job wrote from the stack's secret and removes at the end.
 * The shell steps and github-script scripts that carry logic (exit codes of `npm run diff`, drift
 * classification, the PR comment and the drift issue) are run here against fake `npm`, `pulumi`
 * and GitHub API objects.
 */
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { validateWorkflow, type ValidationError } from "@action-validator/core";
import * as semver from "semver";
import * as YAML from "yaml";
import { DEFAULT_DEPLOYED_REF } from "../tenants/deployed-ref";

type Obj = Record<string, any>;

interface Step {
    id?: string;
    name?: string;
    uses?: string;
    run?: string;
    if?: string;
    with?: Record<string, unknown>;
    env?: Record<string, unknown>;
    [key: string]: unknown;
}

interface Job {
    name?: string;
    needs?: string | string[];
    if?: string;
    environment?: string | { name: string };
    permissions?: string | Record<string, string>;
    strategy?: { matrix?: Obj; "fail-fast"?: boolean };
    env?: Record<string, unknown>;
    steps?: Step[];
    [key: string]: unknown;
}

interface Workflow {
    file: string;
    source: string;
    doc: Obj;
    jobs: Record<string, Job>;
}

const ROOT = path.resolve(__dirname, "..");
const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { engines: { node: string } };
/** Node.js LTS lines up to the newest (even majors); ci.yml tests those engines.node accepts. */
const NODE_LTS_LINES = [18, 20, 22, 24];
const WORKFLOW_DIR = path.join(ROOT, ".github", "workflows");
const EXPECTED_WORKFLOWS = ["ci.yml", "deploy.yml", "drift.yml", "offline-diff.yml", "preview.yml"];
const DEPLOYED_STACKS = ["dev", "staging", "prod"];
/** Which workflow may hold which write permission (everything else is read-only). */
const ALLOWED_WRITES: Record<string, string[]> = {
    "preview.yml": ["pull-requests"],
    "offline-diff.yml": ["pull-requests"],
    "drift.yml": ["issues"],
};
/** `--expect-no-changes` exits 7 on changes since CLI 3.227.0 (reference pulumi.md §4.7). */
const MIN_PULUMI_CLI = [3, 227, 0];

// ---------------------------------------------------------------------------------------------
// Reading workflows

function loadWorkflows(): Workflow[] {
    if (!fs.existsSync(WORKFLOW_DIR)) return [];
    return fs
        .readdirSync(WORKFLOW_DIR)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((file) => {
            const source = fs.readFileSync(path.join(WORKFLOW_DIR, file), "utf8");
            const parsed = YAML.parseDocument(source);
            if (parsed.errors.length) throw new Error(`${file} is not valid YAML: ${parsed.errors.map((e) => e.message).join("; ")}`);
            const doc = (parsed.toJS() ?? {}) as Obj;
            return { file, source, doc, jobs: (doc.jobs ?? {}) as Record<string, Job> };
        });
}

const WORKFLOWS = loadWorkflows();

function workflow(file: string): Workflow {
    const wf = WORKFLOWS.find((w) => w.file === file);
    assert.ok(wf, `.github/workflows/${file} is missing`);
    return wf;
}

/**
 * The stacks of this repository that run against real clusters: every Pulumi.<stack>.yaml in its
 * root but a loopback fleet's (hub.loopbackTenants: the real-engine suite's e2e stack, which only
 * `npm run e2e` can reach).
 */
function repoStacks(): string[] {
    return fs
        .readdirSync(ROOT)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .filter((s) => YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${s}.yaml`), "utf8")).config?.["agentfleet:hub"]?.loopbackTenants !== true)
        .sort();
}

function* stepsOf(wf: Workflow): Generator<{ jobId: string; job: Job; step: Step; where: string }> {
    for (const [jobId, job] of Object.entries(wf.jobs)) {
        for (const [i, step] of (job.steps ?? []).entries()) {
            yield { jobId, job, step, where: `${wf.file} jobs.${jobId}.steps[${i}]${step.name ? ` (${step.name})` : step.id ? ` (${step.id})` : ""}` };
        }
    }
}

const needsOf = (job: Job): string[] => (job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs]);
const environmentOf = (job: Job): string | undefined => (typeof job.environment === "string" ? job.environment : job.environment?.name);
const actionOf = (step: Step): string | undefined => step.uses?.split("@")[0];

function stepUsing(wf: Workflow, jobId: string, action: string): Step {
    const step = (wf.jobs[jobId]?.steps ?? []).find((s) => actionOf(s) === action);
    assert.ok(step, `${wf.file} jobs.${jobId} has no ${action} step`);
    return step;
}

function stepById(wf: Workflow, jobId: string, id: string): Step {
    const step = (wf.jobs[jobId]?.steps ?? []).find((s) => s.id === id);
    assert.ok(step, `${wf.file} jobs.${jobId} has no step with id ${id}`);
    return step;
}

function stepNamed(wf: Workflow, jobId: string, pattern: RegExp): Step {
    const step = (wf.jobs[jobId]?.steps ?? []).find((s) => pattern.test(s.name ?? ""));
    assert.ok(step, `${wf.file} jobs.${jobId} has no step named like ${pattern}`);
    return step;
}

/** How the workflows name a matrix job's stack. */
const MATRIX_STACK = "${{ matrix.stack }}";

/** The stack `npm run promote -- --to <stack>` reads the hub of: its agentfleet:promotion's `from`. */
function promotionSource(to: string): string {
    const from = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${to}.yaml`), "utf8")).config?.["agentfleet:promotion"]?.from;
    assert.ok(typeof from === "string", `Pulumi.${to}.yaml has no agentfleet:promotion.from`);
    return from;
}

/**
 * The stack whose hub a step reaches, as the workflow names it (a stack, or MATRIX_STACK), or
 * undefined when it reaches none: pulumi/actions with a command, `pulumi preview|up|refresh|destroy`,
 * `npm run status` (its --stack) and `npm run promote` (the stack --to's promotion comes from).
 */
function hubStackOf(step: Step): string | undefined {
    if (actionOf(step) === "pulumi/actions") return step.with?.command === undefined ? undefined : String(step.with?.["stack-name"]);
    const run = step.run ?? "";
    const promote = /\bnpm\s+run\b[^\n]*\bpromote\b[^\n]*--to[ =]+([\w.-]+)/.exec(run);
    if (promote) return promotionSource(promote[1]);
    const direct = /(?:\bnpm\s+run\b[^\n]*\bstatus\b|\bnpm\s+run\b[^\n]*\btenant\s+--\s+up\b|(?:^|[\s;|&(])pulumi\s+(?:preview|up|refresh|destroy)\b)[^\n]*--stack[ =]+(?:"?\$\{?(\w+)\}?"?|([\w.-]+))/m.exec(run);
    if (direct) return direct[1] ? String(step.env?.[direct[1]]) : direct[2];
    return undefined;
}

/** The secret holding a stack's hub kubeconfig, as an expression: HUB_KUBECONFIG_<STACK> (names are case-insensitive). */
const hubSecret = (stack: string): string => (stack === MATRIX_STACK ? "secrets[format('HUB_KUBECONFIG_{0}', matrix.stack)]" : `secrets.HUB_KUBECONFIG_${stack.toUpperCase()}`);

/** The step id a `${{ steps.<id>.outputs.path }}` value names. */
const pathOutputOf = (value: unknown): string | undefined => /^\$\{\{ steps\.([\w-]+)\.outputs\.path \}\}$/.exec(String(value ?? ""))?.[1];

/** Every step of a workflow that reaches a hub, with its job, index and stack. */
function hubSteps(wf: Workflow): { jobId: string; job: Job; step: Step; index: number; stack: string; where: string }[] {
    return Object.entries(wf.jobs).flatMap(([jobId, job]) =>
        (job.steps ?? []).flatMap((step, index) => {
            const stack = hubStackOf(step);
            return stack === undefined ? [] : [{ jobId, job, step, index, stack, where: `${wf.file} jobs.${jobId}.steps[${index}] (${step.name ?? step.id ?? step.uses ?? "run"})` }];
        }),
    );
}

/** Every string in a value, with its path. */
function* stringsIn(value: unknown, at: string): Generator<{ text: string; at: string }> {
    if (typeof value === "string") yield { text: value, at };
    else if (Array.isArray(value)) for (const [i, v] of value.entries()) yield* stringsIn(v, `${at}[${i}]`);
    else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) yield* stringsIn(v, `${at}.${k}`);
}

/** The expressions in a job: every `${{ … }}`, plus the bare expressions of `if:` conditions. */
function* expressionsIn(job: Job, jobAt: string): Generator<{ expr: string; at: string; step?: Step }> {
    const fromValue = function* (value: unknown, at: string, step?: Step) {
        for (const { text, at: where } of stringsIn(value, at)) {
            for (const m of text.matchAll(/\$\{\{([\s\S]*?)\}\}/g)) yield { expr: m[1], at: where, step };
        }
    };
    const { steps, ...rest } = job;
    if (typeof rest.if === "string" && !rest.if.includes("${{")) yield { expr: rest.if, at: `${jobAt}.if` };
    yield* fromValue(rest, jobAt);
    for (const [i, step] of (steps ?? []).entries()) {
        if (typeof step.if === "string" && !step.if.includes("${{")) yield { expr: step.if, at: `${jobAt}.steps[${i}].if`, step };
        yield* fromValue(step, `${jobAt}.steps[${i}]`, step);
    }
}

/** `npm test` / `npm run <script>` in shell steps, with their flags skipped. */
function npmScriptsIn(script: string): string[] {
    const found: string[] = [];
    for (const m of script.matchAll(/\bnpm\s+(?:run|run-script)((?:\s+-{1,2}[\w-]+)*)\s+([\w:.-]+)/g)) found.push(m[2]);
    for (const m of script.matchAll(/\bnpm\s+(test|t|start|stop|restart)\b/g)) found.push(m[1] === "t" ? "test" : m[1]);
    return found;
}

/** `1.2.3` is at least `min`. */
function atLeast(version: string, min: number[]): boolean {
    const parts = version.split(".").map(Number);
    for (let i = 0; i < 3; i++) if (parts[i] !== min[i]) return parts[i] > min[i];
    return true;
}

/**
 * The action-validator errors, flattened to their causes. A `oneOf` failure (a job is either a
 * normal job or a reusable-workflow call) nests one error list per alternative: the alternative
 * with the fewest errors is the one that was meant, so only its errors are reported.
 */
function leafErrors(errors: ValidationError[] | undefined): string[] {
    const leaves = (errors ?? []).flatMap((e): string[] => {
        const alternatives = ("states" in e ? e.states ?? [] : []).map((s) => leafErrors(s.errors)).filter((l) => l.length > 0);
        if (alternatives.length) return alternatives.reduce((best, l) => (l.length < best.length ? l : best));
        const where = "path" in e ? e.path || "/" : "location" in e && e.location ? `line ${e.location.line}, column ${e.location.column}` : "/";
        return [`${where}: ${e.title}${e.detail ? ` (${e.detail})` : ""}`];
    });
    return [...new Set(leaves)];
}

// ---------------------------------------------------------------------------------------------
// Running shell steps and github-script scripts

interface ScriptRun {
    status: number | null;
    stdout: string;
    stderr: string;
    outputs: Record<string, string>;
    summary: string;
    tmp: string;
}

/** Parses a $GITHUB_OUTPUT file: `name=value` lines and `name<<DELIMITER` blocks. */
function parseOutputs(text: string): Record<string, string> {
    const outputs: Record<string, string> = {};
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
        const heredoc = /^([\w-]+)<<(.+)$/.exec(lines[i]);
        if (heredoc) {
            const end = lines.indexOf(heredoc[2], i + 1);
            assert.ok(end > i, `unterminated ${heredoc[1]} output`);
            outputs[heredoc[1]] = lines.slice(i + 1, end).join("\n");
            i = end;
        } else if (lines[i].includes("=")) {
            const at = lines[i].indexOf("=");
            outputs[lines[i].slice(0, at)] = lines[i].slice(at + 1);
        }
    }
    return outputs;
}

/** Writes an executable that logs its arguments to `<name>.log` and then runs `body` (Node). */
function fakeCommand(bin: string, name: string, body: string): void {
    const file = path.join(bin, name);
    fs.writeFileSync(
        file,
        `#!${process.execPath}\nconst fs = require("fs");\nconst args = process.argv.slice(2);\nfs.appendFileSync(${JSON.stringify(path.join(bin, `${name}.log`))}, JSON.stringify(args) + "\\n");\n${body}\n`,
    );
    fs.chmodSync(file, 0o755);
}

/** A fake `npm`: `npm run --silent diff -- --stack <s> --base <ref>` behaves as FAKE_DIFF says. */
const FAKE_NPM = `
const stack = args[args.indexOf("--stack") + 1];
const plan = JSON.parse(process.env.FAKE_DIFF)[stack] ?? { code: 0, stdout: "" };
if (args[0] !== "run" || !args.includes("diff")) { console.error("unexpected npm " + args.join(" ")); process.exit(99); }
process.stdout.write(plan.stdout ?? "");
process.stderr.write(plan.stderr ?? "");
process.exit(plan.code);`;

/** A fake `npm` for `npm run --silent tenant -- up ...`: prints FAKE_TENANT_STDOUT and exits FAKE_TENANT_CODE. */
const FAKE_TENANT_NPM = `
if (args[0] !== "run" || !args.includes("tenant")) { console.error("unexpected npm " + args.join(" ")); process.exit(99); }
process.stdout.write(process.env.FAKE_TENANT_STDOUT ?? "");
process.exit(Number(process.env.FAKE_TENANT_CODE ?? 0));`;

/** A fake `pulumi`: prints FAKE_PULUMI_STDOUT and exits FAKE_PULUMI_CODE. */
const FAKE_PULUMI = `
process.stdout.write(process.env.FAKE_PULUMI_STDOUT ?? "");
process.stderr.write(process.env.FAKE_PULUMI_STDERR ?? "");
process.exit(Number(process.env.FAKE_PULUMI_CODE));`;

/**
 * Runs a `run:` script the way `shell: bash` does (`bash --noprofile --norc -eo pipefail`), in a
 * scratch repository root holding `files`, with fake commands first on PATH.
 */
/** One scratch folder for the whole spec, removed when it ends. */
const SCRATCH = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-workflows-"));
after(() => fs.rmSync(SCRATCH, { recursive: true, force: true }));

function runStep(script: string, opts: { env?: Record<string, string>; files?: Record<string, string>; fakes?: Record<string, string> } = {}): ScriptRun {
    const tmp = fs.mkdtempSync(path.join(SCRATCH, "step-"));
    const repo = path.join(tmp, "repo");
    const bin = path.join(tmp, "bin");
    const runnerTemp = path.join(tmp, "runner-temp");
    for (const dir of [repo, bin, runnerTemp]) fs.mkdirSync(dir);
    for (const [name, content] of Object.entries(opts.files ?? {})) fs.writeFileSync(path.join(repo, name), content);
    for (const [name, body] of Object.entries(opts.fakes ?? {})) fakeCommand(bin, name, body);
    const outputFile = path.join(tmp, "github-output");
    const summaryFile = path.join(tmp, "step-summary");
    fs.writeFileSync(outputFile, "");
    fs.writeFileSync(summaryFile, "");
    const scriptFile = path.join(tmp, "step.sh");
    fs.writeFileSync(scriptFile, script);
    const result = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", scriptFile], {
        cwd: repo,
        encoding: "utf8",
        env: {
            PATH: `${bin}${path.delimiter}${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`,
            HOME: tmp,
            RUNNER_TEMP: runnerTemp,
            GITHUB_OUTPUT: outputFile,
            GITHUB_STEP_SUMMARY: summaryFile,
            GITHUB_SERVER_URL: "https://github.com",
            GITHUB_REPOSITORY: "example-org/agentfleet",
            GITHUB_RUN_ID: "4242",
            ...opts.env,
        },
    });
    assert.ok(!result.error, `could not run bash: ${result.error?.message}`);
    return {
        status: result.status,
        stdout: result.stdout,
        stderr: result.stderr,
        outputs: parseOutputs(fs.readFileSync(outputFile, "utf8")),
        summary: fs.readFileSync(summaryFile, "utf8"),
        tmp,
    };
}

function fakeLog(run: ScriptRun, name: string): string[][] {
    const file = path.join(run.tmp, "bin", `${name}.log`);
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]) : [];
}

/** Every argument list any fake of the run was called with. */
function allFakeLogs(run: ScriptRun): string[][] {
    const bin = path.join(run.tmp, "bin");
    return fs.readdirSync(bin).filter((f) => f.endsWith(".log")).flatMap((f) => fakeLog(run, f.slice(0, -".log".length)));
}

let recorders: Record<string, string> | undefined;
/**
 * A fake for every command on PATH that logs its arguments and then runs the real command: what a
 * step puts in a process's argv, where `ps` shows it to every user of the machine. (Shell builtins
 * start no process, so they are not listed, and cannot leak that way.)
 */
function argvRecorders(): Record<string, string> {
    if (recorders) return recorders;
    recorders = {};
    for (const dir of [path.dirname(process.execPath), ...(process.env.PATH ?? "").split(path.delimiter)]) {
        if (!dir || !fs.existsSync(dir)) continue;
        for (const name of fs.readdirSync(dir)) {
            const file = path.join(dir, name);
            if (name in recorders || !/^[\w.+-]+$/.test(name)) continue;
            try {
                fs.accessSync(file, fs.constants.X_OK);
                if (!fs.statSync(file).isFile()) continue;
            } catch {
                continue;
            }
            recorders[name] = `const r = require("child_process").spawnSync(${JSON.stringify(file)}, args, { stdio: "inherit" });\nprocess.exit(r.status ?? 1);`;
        }
    }
    return recorders;
}

const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<unknown>;

/** The parameters actions/github-script v7 gives a script, in its order. */
const GITHUB_SCRIPT_PARAMS = ["require", "__original_require__", "github", "context", "core", "exec", "glob", "io"];

interface ApiCall {
    method: string;
    params: Obj;
}

class HttpError extends Error {
    constructor(readonly status: number) {
        super(`HTTP ${status}`);
    }
}

/** A fake Octokit (`github`) over an in-memory repository: comments, issues and labels. */
function fakeGithub(state: { comments?: Obj[]; issues?: Obj[]; labels?: string[] }) {
    const calls: ApiCall[] = [];
    const api = (method: string, respond: (params: Obj) => unknown) => async (params: Obj) => {
        calls.push({ method, params });
        return { data: respond(params) };
    };
    const github = {
        paginate: async (fn: (params: Obj) => Promise<{ data: unknown }>, params: Obj) => (await fn(params)).data,
        rest: {
            issues: {
                listComments: api("listComments", () => state.comments ?? []),
                createComment: api("createComment", () => ({ id: 1000, html_url: "https://github.com/c/1000" })),
                updateComment: api("updateComment", (p) => ({ id: p.comment_id, html_url: `https://github.com/c/${p.comment_id}` })),
                listForRepo: api("listForRepo", (p) => (state.issues ?? []).filter((i) => i.state === p.state && (i.labels ?? []).includes(p.labels))),
                create: api("create", () => ({ number: 77 })),
                update: api("update", () => ({})),
                getLabel: async (params: Obj) => {
                    calls.push({ method: "getLabel", params });
                    if (!(state.labels ?? []).includes(params.name)) throw new HttpError(404);
                    return { data: { name: params.name } };
                },
                createLabel: api("createLabel", (p) => ({ name: p.name })),
            },
        },
    };
    return { github, calls };
}

function fakeCore() {
    const summary: string[] = [];
    const core = {
        info: () => undefined,
        warning: () => undefined,
        summary: {
            addRaw(text: string) {
                summary.push(text);
                return core.summary;
            },
            write: async () => core.summary,
        },
    };
    return { core, summary };
}

const CONTEXT = {
    repo: { owner: "example-org", repo: "agentfleet" },
    issue: { owner: "example-org", repo: "agentfleet", number: 12 },
    serverUrl: "https://github.com",
    runId: 4242,
    sha: "0123456789abcdef0123456789abcdef01234567",
};

/** Runs an actions/github-script step's script with fake `github`/`core` and the step's env. */
async function runGithubScript(step: Step, env: Record<string, string>, github: unknown, core: unknown): Promise<void> {
    const script = String(step.with?.script ?? "");
    const fn = new AsyncFunction(...GITHUB_SCRIPT_PARAMS, script);
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
        await fn(require, require, github, CONTEXT, core, undefined, undefined, undefined);
    } finally {
        for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
        Object.assign(process.env, saved);
    }
}

const PASSING: { code: number; stdout?: string; stderr?: string } = { code: 0, stdout: "No changes.\n" };

// ---------------------------------------------------------------------------------------------

describe("GitHub workflows", () => {
    it("are exactly ci, preview, offline-diff, drift and deploy", () => {
        assert.deepStrictEqual(
            WORKFLOWS.map((w) => w.file),
            EXPECTED_WORKFLOWS,
        );
    });

    it("the linter is live: it rejects a job without runs-on and a step with both uses and run", () => {
        const broken = "on: push\npermissions: {contents: read}\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4.2.2\n        run: echo\n";
        assert.notDeepStrictEqual(leafErrors(validateWorkflow(broken).errors), []);
    });

    for (const wf of WORKFLOWS) {
        describe(wf.file, () => {
            it("validates against the GitHub workflow schema (SchemaStore, via action-validator)", () => {
                const errors = leafErrors(validateWorkflow(wf.source).errors);
                assert.ok(errors.length === 0, `${wf.file} does not validate:\n  ${errors.join("\n  ")}`);
            });

            it("has a name, triggers and at least one job; every job has runs-on and steps", () => {
                assert.ok(wf.doc.name, `${wf.file} has no name`);
                assert.ok(wf.doc.on, `${wf.file} has no on:`);
                assert.ok(Object.keys(wf.jobs).length > 0, `${wf.file} has no jobs`);
                for (const [jobId, job] of Object.entries(wf.jobs)) {
                    assert.ok(job["runs-on"], `${wf.file} jobs.${jobId} has no runs-on`);
                    assert.ok(Array.isArray(job.steps) && job.steps.length > 0, `${wf.file} jobs.${jobId} has no steps`);
                    assert.ok(typeof job["timeout-minutes"] === "number", `${wf.file} jobs.${jobId} has no timeout-minutes (the default is 6 hours)`);
                }
            });

            it("every step has exactly one of uses and run", () => {
                for (const { step, where } of stepsOf(wf)) {
                    assert.ok((step.uses === undefined) !== (step.run === undefined), `${where} must have exactly one of uses/run`);
                }
            });

            it("needs names jobs of this workflow, without cycles", () => {
                const visiting = new Set<string>();
                const done = new Set<string>();
                const visit = (jobId: string, trail: string[]): void => {
                    assert.ok(!visiting.has(jobId), `${wf.file}: needs cycle ${[...trail, jobId].join(" -> ")}`);
                    if (done.has(jobId)) return;
                    visiting.add(jobId);
                    for (const dep of needsOf(wf.jobs[jobId])) {
                        assert.ok(dep in wf.jobs, `${wf.file} jobs.${jobId} needs unknown job ${dep}`);
                        visit(dep, [...trail, jobId]);
                    }
                    visiting.delete(jobId);
                    done.add(jobId);
                };
                for (const jobId of Object.keys(wf.jobs)) visit(jobId, []);
            });

            it("expressions refer only to steps, needs, matrix values, inputs and env that exist", () => {
                const inputs = Object.keys(wf.doc.on?.workflow_dispatch?.inputs ?? {});
                for (const [jobId, job] of Object.entries(wf.jobs)) {
                    const stepIds = (job.steps ?? []).map((s) => s.id).filter(Boolean);
                    const matrixKeys = Object.keys(job.strategy?.matrix ?? {}).filter((k) => k !== "include" && k !== "exclude");
                    for (const { expr, at, step } of expressionsIn(job, `${wf.file} jobs.${jobId}`)) {
                        for (const m of expr.matchAll(/\bsteps\.([\w-]+)/g)) assert.ok(stepIds.includes(m[1]), `${at}: no step with id ${m[1]} in job ${jobId}`);
                        for (const m of expr.matchAll(/\bneeds\.([\w-]+)/g)) assert.ok(needsOf(job).includes(m[1]), `${at}: job ${jobId} does not need ${m[1]}`);
                        for (const m of expr.matchAll(/\bmatrix\.([\w-]+)/g)) assert.ok(matrixKeys.includes(m[1]), `${at}: job ${jobId} has no matrix value ${m[1]}`);
                        for (const m of expr.matchAll(/\binputs\.([\w-]+)/g)) assert.ok(inputs.includes(m[1]), `${at}: no workflow_dispatch input ${m[1]}`);
                        for (const m of expr.matchAll(/\benv\.([\w-]+)/g)) {
                            const defined = { ...wf.doc.env, ...job.env, ...step?.env };
                            assert.ok(m[1] in defined, `${at}: env.${m[1]} is not defined`);
                        }
                    }
                }
            });

            it("pins every action to an exact version tag or a full commit SHA", () => {
                for (const { step, where } of stepsOf(wf)) {
                    if (step.uses === undefined || step.uses.startsWith("./")) continue;
                    if (step.uses.startsWith("docker://")) {
                        assert.match(step.uses, /@sha256:[0-9a-f]{64}$/, `${where}: docker image ${step.uses} is not pinned by digest`);
                        continue;
                    }
                    const m = /^[\w.-]+\/[\w.-]+(?:\/[\w./-]+)?@(.+)$/.exec(step.uses);
                    assert.ok(m, `${where}: ${step.uses} has no @ref`);
                    assert.match(m[1], /^(?:v?\d+\.\d+\.\d+|[0-9a-f]{40})$/, `${where}: ${step.uses} is not pinned (use an exact tag like v4.2.2 or a 40-hex commit SHA, not a moving major or a branch)`);
                    if (/^[0-9a-f]{40}$/.test(m[1])) {
                        const line = wf.source.split("\n").find((l) => l.includes(step.uses as string));
                        assert.match(line ?? "", /#\s*v?\d+\.\d+\.\d+\s*$/, `${where}: a SHA-pinned action names its version in a trailing comment (# v4.2.2)`);
                    }
                }
            });

            it("declares permissions, never write-all, and writes only what it needs", () => {
                assert.ok(wf.doc.permissions !== undefined, `${wf.file} declares no top-level permissions`);
                const allowed = ALLOWED_WRITES[wf.file] ?? [];
                const blocks: [string, unknown][] = [["permissions", wf.doc.permissions], ...Object.entries(wf.jobs).map(([id, j]): [string, unknown] => [`jobs.${id}.permissions`, j.permissions])];
                for (const [at, perms] of blocks) {
                    if (perms === undefined) continue;
                    assert.ok(typeof perms === "object" && perms !== null, `${wf.file} ${at} must be a map of scopes (not ${JSON.stringify(perms)})`);
                    for (const [scope, level] of Object.entries(perms)) {
                        if (level === "write") assert.ok(allowed.includes(scope), `${wf.file} ${at} must not write ${scope}`);
                    }
                }
                assert.notEqual((wf.doc.permissions as Obj)["pull-requests"], "write", `${wf.file}: grant pull-requests: write to the commenting job only`);
                assert.notEqual((wf.doc.permissions as Obj).issues, "write", `${wf.file}: grant issues: write to the job that files issues only`);
            });

            it("runs only npm scripts that exist in package.json", () => {
                const scripts = Object.keys(JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts ?? {});
                for (const { step, where } of stepsOf(wf)) {
                    for (const name of npmScriptsIn(step.run ?? "")) assert.ok(scripts.includes(name), `${where} runs \`npm run ${name}\`, but package.json has no script ${name} (it has: ${scripts.join(", ")})`);
                }
            });

            it("names only stacks that have a Pulumi.<stack>.yaml", () => {
                const stacks = repoStacks();
                const named: { stack: string; at: string }[] = [];
                for (const [jobId, job] of Object.entries(wf.jobs)) {
                    for (const stack of [job.strategy?.matrix?.stack ?? []].flat()) named.push({ stack: String(stack), at: `jobs.${jobId}.strategy.matrix.stack` });
                    const env = environmentOf(job);
                    if (env) named.push({ stack: env, at: `jobs.${jobId}.environment` });
                    for (const [i, step] of (job.steps ?? []).entries()) {
                        for (const m of (step.run ?? "").matchAll(/--stack[ =]+([\w.-]+)/g)) named.push({ stack: m[1], at: `jobs.${jobId}.steps[${i}].run` });
                        const stackName = step.with?.["stack-name"];
                        if (typeof stackName === "string" && !stackName.includes("${{")) named.push({ stack: stackName, at: `jobs.${jobId}.steps[${i}].with.stack-name` });
                    }
                }
                for (const { stack, at } of named) assert.ok(stacks.includes(stack), `${wf.file} ${at} names stack ${stack}, but there is no Pulumi.${stack}.yaml`);
            });

            it("shell steps take ${{ }} values through env, never inline (no script injection), and parse as bash", () => {
                for (const { step, where } of stepsOf(wf)) {
                    if (step.run === undefined) continue;
                    assert.ok(!step.run.includes("${{"), `${where}: pass \${{ }} values to run: through env`);
                    const check = spawnSync("bash", ["-n"], { input: step.run, encoding: "utf8" });
                    assert.equal(check.status, 0, `${where} is not valid bash: ${check.stderr}`);
                }
            });

            it("github-script scripts compile", () => {
                for (const { step, where } of stepsOf(wf)) {
                    if (actionOf(step) !== "actions/github-script") continue;
                    assert.equal(typeof step.with?.script, "string", `${where} has no script`);
                    assert.doesNotThrow(() => new AsyncFunction(...GITHUB_SCRIPT_PARAMS, String(step.with?.script)), `${where}: script does not compile`);
                }
            });

            it("sets up Node with the npm cache: ci.yml tests every LTS line package.json's engines.node accepts, the others use one of those", () => {
                const lines = NODE_LTS_LINES.filter((major) => semver.intersects(`${major}.x`, String(PACKAGE.engines.node)));
                for (const { job, step, where } of stepsOf(wf)) {
                    if (actionOf(step) !== "actions/setup-node") continue;
                    assert.equal(step.with?.cache, "npm", `${where}: cache: npm`);
                    const version = step.with?.["node-version"];
                    if (wf.file === "ci.yml") assert.deepStrictEqual(job.strategy?.matrix?.node, lines, `${where}: matrix.node`);
                    else assert.ok(lines.includes(Number(version)), `${where}: node-version ${version} is not a line ci.yml tests (${lines.join(", ")})`);
                }
            });

            it("every pulumi/actions step pins a CLI with exit code 7 and gets state credentials from secrets", () => {
                for (const { step, where } of stepsOf(wf)) {
                    if (actionOf(step) !== "pulumi/actions") continue;
                    const version = String(step.with?.["pulumi-version"] ?? "");
                    assert.match(version, /^\d+\.\d+\.\d+$/, `${where}: pin pulumi-version to an exact CLI version`);
                    assert.ok(atLeast(version, MIN_PULUMI_CLI), `${where}: pulumi-version ${version} is older than ${MIN_PULUMI_CLI.join(".")}`);
                    // Without a command pulumi/actions only installs the CLI (for a command that runs it, e.g. npm run promote).
                    if (step.with?.command === undefined) {
                        assert.deepStrictEqual(Object.keys(step.with ?? {}), ["pulumi-version"], `${where}: an install-only step takes only pulumi-version`);
                        continue;
                    }
                    assert.match(String(step.with?.["stack-name"]), /^(?:[\w-]+|\$\{\{ matrix\.stack \}\})$/, `${where}: stack-name`);
                    for (const secret of ["PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"]) {
                        assert.equal(step.env?.[secret], `\${{ secrets.${secret} }}`, `${where}: env ${secret} from secrets`);
                    }
                    assert.equal(step.env?.PULUMI_NODEJS_TRANSPILE_ONLY, "true", `${where}: PULUMI_NODEJS_TRANSPILE_ONLY must be the string "true"`);
                }
            });
        });
    }

    // -----------------------------------------------------------------------------------------

    describe("the hub's kubeconfig: a private file from the stack's secret, named by KUBECONFIG", () => {
        /** A kubeconfig as a secret holds it; the token is what must never leak. */
        const TOKEN = "hub-token-5f1c0e9a7b";
        const KUBECONFIG_TEXT = [
            "apiVersion: v1",
            "kind: Config",
            "clusters: [{name: hub, cluster: {server: 'https://hub.prod.agentfleet.example.net:6443'}}]",
            `users: [{name: ci, user: {token: ${TOKEN}}}]`,
            "contexts: [{name: hub, context: {cluster: hub, user: ci}}]",
            "current-context: hub",
        ].join("\n");
        const writers = () => WORKFLOWS.flatMap((wf) => [...stepsOf(wf)].filter(({ step }) => step.env?.HUB_KUBECONFIG !== undefined).map((s) => ({ ...s, wf })));
        /** The step of a job whose output a step's KUBECONFIG names. */
        const writerOf = (job: Job, value: unknown) => (job.steps ?? []).findIndex((s) => s.id !== undefined && s.id === pathOutputOf(value));
        /** Runs a write step as the runner would, with every command on PATH recording its arguments. */
        const runWriter = (step: Step) =>
            runStep(step.run ?? "", { env: { STACK: String(step.env?.STACK ?? "").includes("${{") ? "dev" : String(step.env?.STACK), HUB_KUBECONFIG: KUBECONFIG_TEXT }, fakes: argvRecorders() });

        it("finds every step that reaches a hub: pulumi/actions with a command, pulumi preview, npm run promote, npm run tenant -- up", () => {
            const found = WORKFLOWS.flatMap((wf) => hubSteps(wf).map(({ jobId, step, stack }) => `${wf.file} ${jobId}: ${step.name} -> ${stack}`));
            assert.deepStrictEqual(found, [
                "deploy.yml dev: pulumi up -> dev",
                "deploy.yml dev: npm run tenant -- up -> dev",
                "deploy.yml staging: pulumi up -> staging",
                "deploy.yml staging: npm run tenant -- up -> staging",
                "deploy.yml prod-soak-gate: Soak gate -> staging",
                "deploy.yml prod: pulumi up -> prod",
                "deploy.yml prod: npm run tenant -- up -> prod",
                `drift.yml drift: pulumi preview --refresh --expect-no-changes -> ${MATRIX_STACK}`,
                `drift.yml drift: Classify the failure (drift or error) -> ${MATRIX_STACK}`,
                `drift.yml drift: npm run tenant -- up --all --preview --refresh -> ${MATRIX_STACK}`,
                `preview.yml preview: pulumi preview --refresh --diff -> ${MATRIX_STACK}`,
                `preview.yml preview: npm run tenant -- up --changed --preview -> ${MATRIX_STACK}`,
            ]);
        });

        it("every step that reaches a hub has KUBECONFIG naming the file an earlier step of its job wrote from that stack's secret HUB_KUBECONFIG_<STACK>", () => {
            for (const wf of WORKFLOWS) {
                for (const { job, step, index, stack, where } of hubSteps(wf)) {
                    const at = writerOf(job, step.env?.KUBECONFIG);
                    assert.ok(at >= 0, `${where}: env KUBECONFIG must be \${{ steps.<id>.outputs.path }} of the step that writes the hub kubeconfig, is ${step.env?.KUBECONFIG}`);
                    const writer = job.steps![at];
                    assert.ok(at < index, `${where}: the kubeconfig is written after it is used (steps[${at}])`);
                    assert.equal(writer.env?.HUB_KUBECONFIG, `\${{ ${hubSecret(stack)} }}`, `${where} reaches ${stack}'s hub: its kubeconfig must come from ${hubSecret(stack)}`);
                    assert.ok(writer.if === undefined || writer.if === step.if, `${where}: the kubeconfig is written whenever it is used (if: ${writer.if})`);
                }
            }
        });

        it("the argument recorder is live: it catches a kubeconfig handed to a command as an argument", () => {
            const leaky = runStep(`printf '%s' "$HUB_KUBECONFIG" | xargs -0 printf '%s' > "$RUNNER_TEMP/hub.kubeconfig"`, { env: { HUB_KUBECONFIG: KUBECONFIG_TEXT }, fakes: argvRecorders() });
            assert.equal(leaky.status, 0, leaky.stderr);
            assert.ok(allFakeLogs(leaky).some((args) => args.some((a) => a.includes(TOKEN))), "xargs handed the kubeconfig to printf as an argument");
        });

        it("writes the secret, as it is, to a file under $RUNNER_TEMP only its user can read, never echoing it or passing it as an argument", () => {
            assert.ok(writers().length >= 6, "a write step per job that reaches a hub");
            for (const { step, where } of writers()) {
                const run = runWriter(step);
                assert.equal(run.status, 0, `${where}: ${run.stderr}`);
                const file = run.outputs.path;
                assert.ok(file && path.dirname(file) === path.join(run.tmp, "runner-temp"), `${where}: the file must be directly under $RUNNER_TEMP, is ${file}`);
                assert.equal(fs.readFileSync(file, "utf8").trimEnd(), KUBECONFIG_TEXT, `${where}: the file holds the secret as it is`);
                assert.equal((fs.statSync(file).mode & 0o777).toString(8), "600", `${where}: the file is private (mode 600)`);
                for (const [what, text] of [["stdout", run.stdout], ["stderr", run.stderr], ["the job summary", run.summary], ["an output", JSON.stringify(run.outputs)]]) {
                    assert.ok(!text.includes(TOKEN), `${where}: the kubeconfig reaches ${what}`);
                }
                const leaked = allFakeLogs(run).filter((args) => args.some((a) => a.includes(TOKEN)));
                assert.deepStrictEqual(leaked, [], `${where}: the kubeconfig is in a command's arguments, which ps shows`);
            }
        });

        it("only the write step gets the secret's value; other steps learn only whether it is set", () => {
            for (const wf of WORKFLOWS) {
                assert.ok(!JSON.stringify(wf.doc.env ?? {}).includes("HUB_KUBECONFIG"), `${wf.file}: no workflow-level env with the hub kubeconfig`);
                for (const [jobId, job] of Object.entries(wf.jobs)) {
                    for (const { expr, at, step } of expressionsIn(job, `${wf.file} jobs.${jobId}`)) {
                        if (!/HUB_KUBECONFIG/.test(expr)) continue;
                        const isSet = /^\s*secrets(?:\.HUB_KUBECONFIG_\w+|\[format\('HUB_KUBECONFIG_\{0\}', matrix\.stack\)\]) != ''\s*$/.test(expr);
                        const writes = step?.run !== undefined && hubStackOf(step) === undefined && at.endsWith(".env.HUB_KUBECONFIG");
                        assert.ok(isSet || writes, `${at}: \${{${expr}}} hands the hub kubeconfig to a step that does not write it`);
                    }
                }
            }
        });

        it("removes the file in a step with if: always(), after every step that uses it, even when one failed", () => {
            for (const { wf, jobId, job, step: writer, where } of writers()) {
                const users = hubSteps(wf).filter((h) => h.jobId === jobId);
                const removers = (job.steps ?? []).map((s, i) => ({ s, i })).filter(({ s }) => s.run !== undefined && hubStackOf(s) === undefined && Object.values(s.env ?? {}).some((v) => pathOutputOf(v) === writer.id));
                assert.equal(removers.length, 1, `${where}: one step removes the file`);
                const [{ s: remover, i }] = removers;
                assert.ok(remover.if === "always()" || remover.if === "${{ always() }}", `${wf.file} jobs.${jobId}.steps[${i}]: runs with if: always(), not ${remover.if}`);
                assert.ok(users.every((u) => u.index < i), `${wf.file} jobs.${jobId}: the file is removed before a step uses it`);
                const name = Object.keys(remover.env!).find((k) => pathOutputOf(remover.env![k]) === writer.id)!;
                const written = runWriter(writer).outputs.path;
                assert.ok(fs.existsSync(written));
                const removed = runStep(remover.run ?? "", { env: { [name]: written } });
                assert.equal(removed.status, 0, removed.stderr);
                assert.ok(!fs.existsSync(written), `${wf.file} jobs.${jobId}.steps[${i}] leaves ${written} behind`);
                const neverWritten = runStep(remover.run ?? "", { env: { [name]: "" } });
                assert.equal(neverWritten.status, 0, `${wf.file} jobs.${jobId}.steps[${i}]: fails when the write step never ran: ${neverWritten.stderr}`);
            }
        });

        it("a missing HUB_KUBECONFIG_<STACK> is caught before the write, as a missing Pulumi secret is: preview falls back to the offline diff, the others fail naming it", () => {
            for (const { wf, job, step: writer, where } of writers()) {
                const stack = String(writer.env?.STACK).includes("${{") ? "dev" : String(writer.env?.STACK);
                const secret = String(writer.env?.HUB_KUBECONFIG).replace(/^\$\{\{ | \}\}$/g, "");
                const check = (job.steps ?? []).slice(0, (job.steps ?? []).indexOf(writer)).find((s) => s.env?.HAS_HUB_KUBECONFIG !== undefined);
                assert.ok(check, `${where}: no earlier step checks HAS_HUB_KUBECONFIG`);
                assert.equal(check.env?.HAS_HUB_KUBECONFIG, `\${{ ${secret} != '' }}`, `${where}: the check looks at the secret the write step reads`);
                const env = (hub: string) => ({ STACK: stack, FROM_FORK: "false", HAS_BACKEND: "true", HAS_PASSPHRASE: "true", HAS_HUB_KUBECONFIG: hub });
                const missing = runStep(check.run ?? "", { env: env("false") });
                const named = `HUB_KUBECONFIG_${stack.toUpperCase()}`;
                if (wf.file === "preview.yml") {
                    assert.equal(missing.status, 0, missing.stderr);
                    assert.equal(missing.outputs.available, "false");
                    assert.match(missing.stdout, new RegExp(`::notice title=No live preview for ${stack}::.*${named}`));
                } else {
                    assert.equal(missing.status, 1, `${where}: a missing secret fails the job`);
                    assert.match(missing.stdout, new RegExp(`::error::Set the secret ${named}\\b`));
                }
                const present = runStep(check.run ?? "", { env: env("true") });
                assert.equal(present.status, 0, present.stderr);
                if (wf.file === "preview.yml") assert.equal(present.outputs.available, "true");
            }
        });

        it("no workflow mentions hubKubeconfig, the stack configuration key it replaces, except in a comment", () => {
            for (const wf of WORKFLOWS) {
                const lines = wf.source.split("\n").filter((l) => /hubKubeconfig/.test(l) && !/^\s*#/.test(l));
                assert.deepStrictEqual(lines, [], `${wf.file} still uses hubKubeconfig`);
            }
        });
    });

    // -----------------------------------------------------------------------------------------

    describe("ci.yml", () => {
        it("runs npm ci and npm test on pull requests and on pushes to main", () => {
            const wf = workflow("ci.yml");
            assert.ok("pull_request" in wf.doc.on);
            assert.deepStrictEqual(wf.doc.on.push?.branches, ["main"]);
            const runs = (wf.jobs.test?.steps ?? []).map((s) => s.run).filter(Boolean);
            assert.deepStrictEqual(runs, ["npm ci", "npm test"]);
        });
    });

    // -----------------------------------------------------------------------------------------

    describe("preview.yml", () => {
        const wf = WORKFLOWS.find((w) => w.file === "preview.yml");
        const creds = () => stepById(workflow("preview.yml"), "preview", "creds");
        const fallback = () => stepNamed(workflow("preview.yml"), "preview", /offline diff/i);

        it("runs on pull requests, one job per stack, for every Pulumi.<stack>.yaml", () => {
            assert.ok(wf && "pull_request" in wf.doc.on);
            assert.deepStrictEqual([...(wf?.jobs.preview?.strategy?.matrix?.stack ?? [])].sort(), repoStacks());
            assert.equal(wf?.jobs.preview?.strategy?.["fail-fast"], false);
        });

        it("previews with pulumi/actions: command preview, refresh, diff, comment-on-pr, only when credentials are available", () => {
            const step = stepUsing(workflow("preview.yml"), "preview", "pulumi/actions");
            assert.deepStrictEqual(
                { command: step.with?.command, "stack-name": step.with?.["stack-name"], refresh: step.with?.refresh, diff: step.with?.diff, "comment-on-pr": step.with?.["comment-on-pr"] },
                { command: "preview", "stack-name": "${{ matrix.stack }}", refresh: true, diff: true, "comment-on-pr": true },
            );
            assert.equal(step.if, "steps.creds.outputs.available == 'true'");
            assert.equal(fallback().if, "steps.creds.outputs.available != 'true'");
        });

        it("detects forks and missing secrets without reading secret values", () => {
            const env = creds().env ?? {};
            assert.equal(env.FROM_FORK, "${{ github.event.pull_request.head.repo.full_name != github.repository }}");
            assert.equal(env.HAS_BACKEND, "${{ secrets.PULUMI_ACCESS_TOKEN != '' || secrets.PULUMI_BACKEND_URL != '' }}");
            assert.equal(env.HAS_PASSPHRASE, "${{ secrets.PULUMI_CONFIG_PASSPHRASE != '' }}");
            assert.equal(env.HAS_HUB_KUBECONFIG, "${{ secrets[format('HUB_KUBECONFIG_{0}', matrix.stack)] != '' }}");
        });

        const passphraseStack = { "Pulumi.dev.yaml": "encryptionsalt: v1:abc\nconfig: {}\n" };
        const cases: [string, Record<string, string>, string][] = [
            ["a fork", { FROM_FORK: "true", HAS_BACKEND: "true", HAS_PASSPHRASE: "true", HAS_HUB_KUBECONFIG: "true" }, "false"],
            ["no backend secret", { FROM_FORK: "false", HAS_BACKEND: "false", HAS_PASSPHRASE: "true", HAS_HUB_KUBECONFIG: "true" }, "false"],
            ["no passphrase for a passphrase-encrypted stack", { FROM_FORK: "false", HAS_BACKEND: "true", HAS_PASSPHRASE: "false", HAS_HUB_KUBECONFIG: "true" }, "false"],
            ["no hub kubeconfig secret", { FROM_FORK: "false", HAS_BACKEND: "true", HAS_PASSPHRASE: "true", HAS_HUB_KUBECONFIG: "false" }, "false"],
            ["a same-repo PR with every secret", { FROM_FORK: "false", HAS_BACKEND: "true", HAS_PASSPHRASE: "true", HAS_HUB_KUBECONFIG: "true" }, "true"],
        ];
        for (const [what, env, available] of cases) {
            it(`credentials are ${available === "true" ? "available" : "unavailable"} for ${what}`, () => {
                const run = runStep(creds().run ?? "", { env: { STACK: "dev", ...env }, files: passphraseStack });
                assert.equal(run.status, 0, run.stderr);
                assert.equal(run.outputs.available, available);
                if (available === "false") assert.ok(run.outputs.reason, "says why");
            });
        }

        it("without credentials, writes the offline diff to the job summary and treats exit 3 as changes, not failure", () => {
            const run = runStep(fallback().run ?? "", {
                env: { STACK: "prod", BASE_REF: "main", REASON: "forks get no secrets", FAKE_DIFF: JSON.stringify({ prod: { code: 3, stdout: "#### prod\n- ApplicationSet voice-agent changed\n" } }) },
                fakes: { npm: FAKE_NPM },
            });
            assert.equal(run.status, 0, run.stderr);
            assert.match(run.summary, /forks get no secrets/);
            assert.match(run.summary, /ApplicationSet voice-agent changed/);
            assert.deepStrictEqual(fakeLog(run, "npm"), [["run", "--silent", "diff", "--", "--stack", "prod", "--base", "origin/main"]]);
        });

        it("without credentials, fails when npm run diff fails (exit 1)", () => {
            const run = runStep(fallback().run ?? "", {
                env: { STACK: "dev", BASE_REF: "main", REASON: "r", FAKE_DIFF: JSON.stringify({ dev: { code: 1, stderr: "cannot render dev" } }) },
                fakes: { npm: FAKE_NPM },
            });
            assert.notEqual(run.status, 0);
            assert.match(run.stderr, /cannot render dev/);
        });
    });

    // -----------------------------------------------------------------------------------------

    describe("offline-diff.yml", () => {
        const render = () => stepById(workflow("offline-diff.yml"), "diff", "render");
        const comment = () => stepUsing(workflow("offline-diff.yml"), "comment", "actions/github-script");
        const stackFiles = { "Pulumi.yaml": "name: agentfleet\n", "Pulumi.dev.yaml": "", "Pulumi.staging.yaml": "", "Pulumi.prod.yaml": "" };
        const renderEnv = (diffs: Obj) => ({ BASE_REF: "main", HEAD_SHA: "abc123", FAKE_DIFF: JSON.stringify(diffs) });

        it("runs on pull requests with the full history and no credentials", () => {
            const wf = workflow("offline-diff.yml");
            assert.ok("pull_request" in wf.doc.on);
            assert.equal(stepUsing(wf, "diff", "actions/checkout").with?.["fetch-depth"], 0);
            assert.ok(!wf.source.includes("secrets."), "offline-diff.yml must not use secrets");
        });

        it("keeps the job that runs PR code read-only; only the comment job (no checkout) writes pull requests", () => {
            const wf = workflow("offline-diff.yml");
            assert.deepStrictEqual(wf.doc.permissions, { contents: "read" });
            assert.equal(wf.jobs.diff.permissions, undefined);
            assert.deepStrictEqual(wf.jobs.comment.permissions, { "pull-requests": "write" });
            assert.ok(!(wf.jobs.comment.steps ?? []).some((s) => actionOf(s) === "actions/checkout"));
            assert.deepStrictEqual(needsOf(wf.jobs.comment), ["diff"]);
            assert.match(String(wf.jobs.comment.if), /!cancelled\(\)/, "comments also after a failed diff");
            assert.match(String(wf.jobs.comment.if), /head\.repo\.full_name == github\.repository/, "skips forks (read-only token)");
        });

        it("diffs every stack against origin/<base>; exit 3 is changes, exit 1 is an error, all in one comment body", () => {
            const run = runStep(render().run ?? "", {
                env: renderEnv({ dev: PASSING, staging: { code: 3, stdout: "#### staging\n- tenant stg-acme: image 1.4.0 -> 1.5.0\n" }, prod: { code: 1, stderr: "error: prod hub config invalid" } }),
                files: stackFiles,
                fakes: { npm: FAKE_NPM },
            });
            assert.equal(run.status, 0, `the render step itself succeeds so the comment is posted: ${run.stderr}`);
            assert.deepStrictEqual(
                fakeLog(run, "npm").map((a) => [a[a.indexOf("--stack") + 1], a[a.indexOf("--base") + 1]]),
                [["dev", "origin/main"], ["prod", "origin/main"], ["staging", "origin/main"]],
            );
            const body = run.outputs.body;
            assert.ok(body.startsWith("<!-- agentfleet-offline-diff -->\n"), "the body starts with the hidden marker");
            assert.match(body, /\| `dev` \| no changes \|/);
            assert.match(body, /\| `staging` \| changes \|/);
            assert.match(body, /\| `prod` \| error \(exit 1\) \|/);
            assert.match(body, /image 1\.4\.0 -> 1\.5\.0/);
            assert.match(body, /error: prod hub config invalid/);
            assert.equal(run.outputs.failed, "1");
            assert.match(run.summary, /image 1\.4\.0 -> 1\.5\.0/);
        });

        it("succeeds when stacks only have changes (exit 3)", () => {
            const run = runStep(render().run ?? "", { env: renderEnv({ dev: { code: 3, stdout: "x\n" }, staging: { code: 3, stdout: "y\n" }, prod: PASSING }), files: stackFiles, fakes: { npm: FAKE_NPM } });
            assert.equal(run.status, 0, run.stderr);
            assert.equal(run.outputs.failed, "0");
        });

        it("fails the workflow when a stack could not be diffed", () => {
            const wf = workflow("offline-diff.yml");
            const fail = (wf.jobs.diff.steps ?? []).find((s) => s.if === "steps.render.outputs.failed != '0'");
            assert.ok(fail, "a step fails the job when failed != 0");
            assert.notEqual(runStep(fail.run ?? "", { env: { FAILED: "1" } }).status, 0);
        });

        it("keeps the comment under GitHub's 65536-character limit; the job summary has everything", () => {
            const huge = `${"- changed line\n".repeat(5000)}`;
            const run = runStep(render().run ?? "", { env: renderEnv({ dev: { code: 3, stdout: huge }, staging: PASSING, prod: PASSING }), files: stackFiles, fakes: { npm: FAKE_NPM } });
            assert.equal(run.status, 0, run.stderr);
            assert.ok(run.outputs.body.length < 65536, `comment body is ${run.outputs.body.length} characters`);
            assert.match(run.outputs.body, /too long for a comment: see the job summary/);
            assert.ok(run.summary.includes(huge));
        });

        it("updates its own previous comment in place, found by the marker", async () => {
            const { github, calls } = fakeGithub({
                comments: [
                    { id: 1, user: { login: "a-reviewer" }, body: "quoting <!-- agentfleet-offline-diff --> here" },
                    { id: 2, user: { login: "github-actions[bot]" }, body: "<!-- agentfleet-offline-diff -->\nold" },
                ],
            });
            await runGithubScript(comment(), { BODY: "<!-- agentfleet-offline-diff -->\nnew" }, github, fakeCore().core);
            const writes = calls.filter((c) => c.method !== "listComments");
            assert.deepStrictEqual(writes, [{ method: "updateComment", params: { owner: "example-org", repo: "agentfleet", comment_id: 2, body: "<!-- agentfleet-offline-diff -->\nnew" } }]);
        });

        it("creates the comment when there is none yet (never overwriting a person's comment)", async () => {
            const { github, calls } = fakeGithub({ comments: [{ id: 1, user: { login: "a-reviewer" }, body: "<!-- agentfleet-offline-diff -->" }] });
            await runGithubScript(comment(), { BODY: "<!-- agentfleet-offline-diff -->\nnew" }, github, fakeCore().core);
            const writes = calls.filter((c) => c.method !== "listComments");
            assert.deepStrictEqual(writes, [{ method: "createComment", params: { owner: "example-org", repo: "agentfleet", issue_number: 12, body: "<!-- agentfleet-offline-diff -->\nnew" } }]);
        });
    });

    // -----------------------------------------------------------------------------------------

    describe("drift.yml", () => {
        const preview = () => stepById(workflow("drift.yml"), "drift", "preview");
        const classify = () => stepById(workflow("drift.yml"), "drift", "classify");
        const report = () => stepUsing(workflow("drift.yml"), "drift", "actions/github-script");
        const TITLE = "Drift detected in stack prod";
        const PREVIEW_JSON = {
            steps: [
                { op: "same", urn: "urn:pulumi:prod::agentfleet::pulumi:pulumi:Stack::agentfleet-prod" },
                { op: "update", urn: "urn:pulumi:prod::agentfleet::kubernetes:core/v1:ConfigMap::argocd-cm", diffReasons: ["data"], newState: { inputs: { data: { "url": "https://leaked.example" } } } },
                { op: "replace", urn: "urn:pulumi:prod::agentfleet::kubernetes:core/v1:Secret::cluster-prod-acme", replaceReasons: ["type"], diffReasons: ["type"] },
            ],
            changeSummary: { same: 1, update: 1, replace: 1 },
        };

        function reportDrift(state: Parameters<typeof fakeGithub>[0], drifted: boolean, previewJson: unknown = PREVIEW_JSON) {
            const file = path.join(fs.mkdtempSync(path.join(SCRATCH, "drift-")), "drift-preview.json");
            fs.writeFileSync(file, JSON.stringify(previewJson));
            const { github, calls } = fakeGithub(state);
            const { core, summary } = fakeCore();
            return runGithubScript(report(), { STACK: "prod", DRIFTED: String(drifted), PREVIEW_JSON: file }, github, core).then(() => ({ calls, summary }));
        }

        it("runs on a schedule and on workflow_dispatch, for dev, staging and prod", () => {
            const wf = workflow("drift.yml");
            assert.ok(Array.isArray(wf.doc.on.schedule) && wf.doc.on.schedule[0]?.cron, "a cron schedule");
            assert.ok("workflow_dispatch" in wf.doc.on);
            assert.deepStrictEqual(wf.jobs.drift.strategy?.matrix?.stack, DEPLOYED_STACKS);
        });

        it("previews with pulumi/actions: command preview, refresh, expect-no-changes; a failure is classified, not fatal", () => {
            const step = preview();
            assert.equal(actionOf(step), "pulumi/actions");
            assert.deepStrictEqual(
                { command: step.with?.command, refresh: step.with?.refresh, "expect-no-changes": step.with?.["expect-no-changes"], "continue-on-error": step["continue-on-error"] },
                { command: "preview", refresh: true, "expect-no-changes": true, "continue-on-error": true },
            );
            assert.equal(classify().if, "steps.preview.outcome == 'failure'");
            const fail = stepNamed(workflow("drift.yml"), "drift", /^Fail/);
            assert.equal(fail.if, "steps.preview.outcome == 'failure'");
            assert.notEqual(runStep(fail.run ?? "", { env: { STACK: "prod", RESULT: "drift", EXIT_CODE: "7" } }).status, 0, "the run is red on drift");
        });

        for (const [code, result] of [[7, "drift"], [0, "clean"], [1, "error"], [255, "error"]] as const) {
            it(`classifies pulumi preview exit ${code} as ${result}`, () => {
                const run = runStep(classify().run ?? "", { env: { STACK: "prod", FAKE_PULUMI_CODE: String(code), FAKE_PULUMI_STDOUT: "{}" }, fakes: { pulumi: FAKE_PULUMI } });
                assert.equal(run.status, 0, run.stderr);
                assert.equal(run.outputs.result, result);
                const [args] = fakeLog(run, "pulumi");
                for (const flag of ["preview", "--refresh", "--expect-no-changes", "--json"]) assert.ok(args.includes(flag), `runs pulumi with ${flag}: ${args.join(" ")}`);
                assert.equal(args[args.indexOf("--stack") + 1], "prod");
            });
        }

        it("reports only on drift or on a clean preview, never on an error", () => {
            assert.equal(report().if, "steps.preview.outcome == 'success' || steps.classify.outputs.result == 'drift'");
            assert.equal(report().env?.DRIFTED, "${{ steps.classify.outputs.result == 'drift' }}");
        });

        it("on drift, opens one issue per stack, labelled drift, listing drifted resources by URN and property name, never values", async () => {
            const { calls, summary } = await reportDrift({ issues: [], labels: [] }, true);
            const created = calls.find((c) => c.method === "create");
            assert.ok(created, "opens an issue");
            assert.equal(created.params.title, TITLE);
            assert.deepStrictEqual(created.params.labels, ["drift"]);
            const body = String(created.params.body);
            assert.match(body, /\*\*prod\*\*/);
            assert.match(body, /\| update \| `urn:pulumi:prod::agentfleet::kubernetes:core\/v1:ConfigMap::argocd-cm` \| `data` \|/);
            assert.match(body, /\| replace \| `urn:pulumi:prod::agentfleet::kubernetes:core\/v1:Secret::cluster-prod-acme` \| `type` \|/);
            assert.ok(!body.includes("pulumi:pulumi:Stack"), "unchanged resources are not listed");
            assert.ok(!body.includes("leaked.example"), "property values never reach the issue");
            assert.ok(calls.some((c) => c.method === "createLabel" && c.params.name === "drift"), "creates the drift label when missing");
            assert.equal(summary.join(""), body);
        });

        it("on drift with the issue already open, updates it instead of opening another; comments only when the drifted set changed", async () => {
            const first = await reportDrift({ issues: [], labels: ["drift"] }, true);
            const body = String(first.calls.find((c) => c.method === "create")?.params.body);
            const existing = { number: 5, title: TITLE, state: "open", labels: ["drift"], body };

            const same = await reportDrift({ issues: [existing], labels: ["drift"] }, true);
            assert.deepStrictEqual(same.calls.filter((c) => c.method !== "listForRepo").map((c) => `${c.method} #${c.params.issue_number}`), ["update #5"]);

            const fewer = { ...PREVIEW_JSON, steps: PREVIEW_JSON.steps.slice(0, 2) };
            const changed = await reportDrift({ issues: [existing], labels: ["drift"] }, true, fewer);
            assert.deepStrictEqual(changed.calls.filter((c) => c.method !== "listForRepo").map((c) => `${c.method} #${c.params.issue_number}`), ["update #5", "createComment #5"]);
        });

        it("keeps stacks apart: another stack's open drift issue is not touched", async () => {
            const other = { number: 9, title: "Drift detected in stack staging", state: "open", labels: ["drift"], body: "" };
            const { calls } = await reportDrift({ issues: [other], labels: ["drift"] }, true);
            assert.ok(calls.some((c) => c.method === "create"));
            assert.ok(!calls.some((c) => c.params.issue_number === 9));
        });

        it("when the stack no longer drifts, comments on its open issue and closes it", async () => {
            const existing = { number: 5, title: TITLE, state: "open", labels: ["drift"], body: "" };
            const { calls } = await reportDrift({ issues: [existing], labels: ["drift"] }, false);
            assert.deepStrictEqual(calls.filter((c) => c.method !== "listForRepo").map((c) => c.method), ["createComment", "update"]);
            assert.equal(calls.find((c) => c.method === "update")?.params.state, "closed");
        });

        it("with no drift and no open issue, writes nothing", async () => {
            const { calls } = await reportDrift({ issues: [], labels: ["drift"] }, false);
            assert.deepStrictEqual(calls.map((c) => c.method), ["listForRepo"]);
        });

        it("only the drift job can write issues", () => {
            const wf = workflow("drift.yml");
            assert.deepStrictEqual(wf.jobs.drift.permissions, { contents: "read", issues: "write" });
        });
    });

    // -----------------------------------------------------------------------------------------

    describe("deploy.yml", () => {
        const upJobs = () =>
            Object.entries(workflow("deploy.yml").jobs).filter(([, job]) => (job.steps ?? []).some((s) => actionOf(s) === "pulumi/actions" && s.with?.command === "up"));

        it("deploys on pushes to main and on workflow_dispatch", () => {
            const wf = workflow("deploy.yml");
            assert.deepStrictEqual(wf.doc.on.push?.branches, ["main"]);
            assert.ok("workflow_dispatch" in wf.doc.on);
        });

        it("deploys the branch whose stack file tenant rotate --finish and remove check before revoking a token (--deployed-ref's default)", () => {
            assert.deepStrictEqual(workflow("deploy.yml").doc.on.push?.branches.map((b: string) => `origin/${b}`), [DEFAULT_DEPLOYED_REF]);
        });

        it("runs pulumi up for dev, staging and prod, never for the example stack fleet", () => {
            const stacks = upJobs().map(([, job]) => (job.steps ?? []).find((s) => actionOf(s) === "pulumi/actions")?.with?.["stack-name"]);
            assert.deepStrictEqual([...stacks].sort(), [...DEPLOYED_STACKS].sort());
        });

        it("each up job runs in the GitHub environment named after its stack", () => {
            for (const [jobId, job] of upJobs()) {
                const stack = (job.steps ?? []).find((s) => actionOf(s) === "pulumi/actions")?.with?.["stack-name"];
                assert.equal(environmentOf(job), stack, `jobs.${jobId} deploys ${stack} but runs in environment ${environmentOf(job)}`);
            }
        });

        it("orders dev -> staging -> prod through needs", () => {
            const wf = workflow("deploy.yml");
            const jobFor = (stack: string) => upJobs().find(([, job]) => environmentOf(job) === stack)?.[0];
            const [dev, staging, prod] = DEPLOYED_STACKS.map(jobFor);
            assert.ok(dev && staging && prod);
            assert.ok(needsOf(wf.jobs[staging]).includes(dev), "staging needs dev");
            assert.ok(needsOf(wf.jobs[prod]).includes(staging), "prod needs staging");
            /** Everything a job waits for, transitively. */
            const upstream = (jobId: string): string[] => needsOf(wf.jobs[jobId]).flatMap((d) => [d, ...upstream(d)]);
            assert.ok(!upstream(dev).includes(staging) && !upstream(dev).includes(prod), "dev waits for neither staging nor prod");
            assert.ok(!upstream(staging).includes(prod), "staging does not wait for prod");
        });

        it("never runs two deploys at once, and never cancels one mid-up", () => {
            const concurrency = workflow("deploy.yml").doc.concurrency;
            assert.ok(concurrency && typeof concurrency === "object" && concurrency.group, "a workflow-level concurrency group");
            assert.ok(!String(concurrency.group).includes("${{"), "one fixed group for every run");
            assert.equal(concurrency["cancel-in-progress"], false);
        });

        it("has the boolean input emergency, defaulting to false", () => {
            const input = workflow("deploy.yml").doc.on.workflow_dispatch?.inputs?.emergency;
            assert.ok(input, "workflow_dispatch input emergency");
            assert.equal(input.type, "boolean");
            assert.equal(input.default, false);
        });

        it("maps emergency to agentfleet:emergencyRollout=true through config-map on every up, and to nothing otherwise", () => {
            const wf = workflow("deploy.yml");
            for (const [jobId, job] of upJobs()) {
                const configMap = String((job.steps ?? []).find((s) => actionOf(s) === "pulumi/actions")?.with?.["config-map"]);
                const m = /^\$\{\{ inputs\.emergency && env\.([\w]+) \|\| '' \}\}$/.exec(configMap);
                assert.ok(m, `jobs.${jobId}: config-map must be \${{ inputs.emergency && env.<NAME> || '' }}, is ${configMap}`);
                const value = YAML.parse(String({ ...wf.doc.env, ...job.env }[m[1]]));
                assert.deepStrictEqual(value, { "agentfleet:emergencyRollout": { value: "true", secret: false } });
            }
        });

        it("documents the emergency rollback path", () => {
            assert.match(workflow("deploy.yml").source, /EMERGENCY ROLLBACK PATH/);
        });

        describe("the soak gate before prod", () => {
            const gateJob = () => {
                const wf = workflow("deploy.yml");
                const [prodJob] = upJobs().find(([, job]) => environmentOf(job) === "prod") ?? [];
                const gate = needsOf(wf.jobs[prodJob!]).find((j) => (wf.jobs[j].steps ?? []).some((s) => /npm run --silent promote -- --to prod --check/.test(s.run ?? "")));
                assert.ok(gate, "prod needs a job that runs npm run promote -- --to prod --check");
                return { id: gate, job: wf.jobs[gate] };
            };
            const step = (name: string) => (gateJob().job.steps ?? []).find((s) => s.name === name)!;
            const FAKE_PROMOTE = `
if (args.join(" ") !== "run --silent promote -- --to prod --check") { console.error("unexpected npm " + args.join(" ")); process.exit(99); }
process.stdout.write(process.env.FAKE_GATE_STDOUT);
process.exit(Number(process.env.FAKE_GATE_CODE));`;

            it("runs after staging's up and before prod's (so before prod's approval), with staging's credentials", () => {
                const { job } = gateJob();
                assert.ok(needsOf(job).includes(upJobs().find(([, j]) => environmentOf(j) === "staging")![0]), "the gate needs staging's up");
                assert.equal(environmentOf(job), "staging");
                assert.equal(step("Soak gate").if, "${{ !inputs.emergency && !inputs.skip_soak_gate }}");
            });

            it("reads staging's hub (Pulumi.prod.yaml's promotion.from): KUBECONFIG from HUB_KUBECONFIG_STAGING, never prod's", () => {
                const { job } = gateJob();
                assert.equal(promotionSource("prod"), "staging");
                const writer = (job.steps ?? []).find((s) => s.id !== undefined && s.id === pathOutputOf(step("Soak gate").env?.KUBECONFIG));
                assert.equal(writer?.env?.HUB_KUBECONFIG, "${{ secrets.HUB_KUBECONFIG_STAGING }}");
                assert.ok(!JSON.stringify(job).includes("HUB_KUBECONFIG_PROD"), "the gate job never gets prod's hub kubeconfig");
            });

            it("fails the run with the gate's refusal, shown in the run summary", () => {
                const refused = "v1.4.2: staging -> prod, soak 2h on staging's 3 tenant(s): REFUSED, 1 of 3 tenant(s) not ready:\n  - stg-acme: is Degraded: probe failed, since 2026-05-01T11:48:00Z\n";
                const run = runStep(step("Soak gate").run ?? "", { env: { FAKE_GATE_STDOUT: refused, FAKE_GATE_CODE: "3" }, fakes: { npm: FAKE_PROMOTE } });
                assert.equal(run.status, 3);
                assert.match(run.summary, /## Soak gate staging -> prod\n```\n.*REFUSED/s);
                assert.match(run.summary, /stg-acme: is Degraded/);
                const passed = runStep(step("Soak gate").run ?? "", { env: { FAKE_GATE_STDOUT: "ok\n", FAKE_GATE_CODE: "0" }, fakes: { npm: FAKE_PROMOTE } });
                assert.equal(passed.status, 0);
            });

            it("can be skipped only with a reason, and the override names who and why in the summary", () => {
                const override = step("Soak gate overridden");
                assert.equal(override.if, "${{ inputs.emergency || inputs.skip_soak_gate }}");
                const inputs = workflow("deploy.yml").doc.on.workflow_dispatch.inputs;
                assert.deepStrictEqual([inputs.skip_soak_gate.type, inputs.skip_soak_gate.default, inputs.skip_soak_gate_reason.type], ["boolean", false, "string"]);
                const noReason = runStep(override.run ?? "", { env: { EMERGENCY: "false", REASON: "", ACTOR: "octocat" } });
                assert.equal(noReason.status, 1);
                assert.match(noReason.stdout, /skip_soak_gate needs skip_soak_gate_reason/);
                const skipped = runStep(override.run ?? "", { env: { EMERGENCY: "false", REASON: "CVE fix, staging down", ACTOR: "octocat" } });
                assert.equal(skipped.status, 0);
                assert.match(skipped.stdout, /::warning::soak gate staging -> prod SKIPPED by octocat: CVE fix, staging down/);
                assert.match(skipped.summary, /SKIPPED\nby @octocat: CVE fix, staging down/);
                const emergency = runStep(override.run ?? "", { env: { EMERGENCY: "true", REASON: "", ACTOR: "octocat" } });
                assert.match(emergency.summary, /by @octocat: emergency rollout/);
            });
        });

        it("tests before the first up, and deploys only main", () => {
            const wf = workflow("deploy.yml");
            const [devJob] = upJobs().find(([, job]) => environmentOf(job) === "dev") ?? [];
            assert.ok(devJob);
            const gates = needsOf(wf.jobs[devJob]);
            assert.ok(gates.some((g) => (wf.jobs[g].steps ?? []).some((s) => s.run === "npm test")), "dev needs a job that runs npm test");
            assert.ok(gates.every((g) => wf.jobs[g].if === "github.ref == 'refs/heads/main'"), "the gate only lets main through");
        });
    });

    describe("tenant stacks: npm run tenant -- up with the hub's kubeconfig only", () => {
        const tenantStep = (file: string, jobId: string) => stepNamed(workflow(file), jobId, /npm run tenant -- up/);
        const npmArgs = (run: ScriptRun) => fakeLog(run, "npm")[0] ?? [];
        const SUMMARY = "prod: 2 tenant stack(s) previewed with the hub's context in 3.1s: 1 would change (acme), 1 unchanged, 0 failed.\n";

        it("preview.yml previews the tenant stacks the pull request changes, after the hub's preview; exit 0 and 3 pass, 1 and 2 fail the job", () => {
            const step = tenantStep("preview.yml", "preview");
            assert.equal(step.if, "steps.creds.outputs.available == 'true'");
            const steps = workflow("preview.yml").jobs.preview.steps!;
            assert.ok(steps.indexOf(step) > steps.indexOf(stepUsing(workflow("preview.yml"), "preview", "pulumi/actions")));
            for (const [code, ok] of [[0, true], [3, true], [1, false], [2, false]] as const) {
                const run = runStep(step.run ?? "", { env: { STACK: "prod", BASE_REF: "main", FAKE_TENANT_CODE: String(code), FAKE_TENANT_STDOUT: SUMMARY }, fakes: { npm: FAKE_TENANT_NPM } });
                assert.deepStrictEqual(npmArgs(run), ["run", "--silent", "tenant", "--", "up", "--stack", "prod", "--changed", "origin/main", "--preview"]);
                assert.equal(run.status === 0, ok, `exit ${code}: ${run.stderr}`);
                assert.ok(run.summary.includes(SUMMARY), "the tenant stacks' summary is in the job summary");
                if (!ok) assert.match(run.stdout, /::error title=Tenant stacks of prod::/);
            }
        });

        it("drift.yml checks every tenant stack's registration (refreshed, previewed); exit 3 is drift, 1 and 2 errors, both fail the run after the hub's issue step", () => {
            const step = tenantStep("drift.yml", "drift");
            assert.equal(step["continue-on-error"], true);
            const cases = [[0, "clean", true], [3, "drift", false], [1, "error", false], [2, "error", false]] as const;
            for (const [code, result, ok] of cases) {
                const run = runStep(step.run ?? "", { env: { STACK: "prod", FAKE_TENANT_CODE: String(code), FAKE_TENANT_STDOUT: SUMMARY }, fakes: { npm: FAKE_TENANT_NPM } });
                assert.deepStrictEqual(npmArgs(run), ["run", "--silent", "tenant", "--", "up", "--stack", "prod", "--all", "--preview", "--refresh", "--parallel", "4"]);
                assert.equal(run.outputs.result, result);
                assert.equal(run.status === 0, ok, `exit ${code}`);
            }
            const fail = stepNamed(workflow("drift.yml"), "drift", /^Tenant stacks' drift/);
            assert.equal(fail.if, "steps.tenants.outcome == 'failure'");
            const red = runStep(fail.run ?? "", { env: { STACK: "prod", RESULT: "drift" } });
            assert.notEqual(red.status, 0);
            assert.match(red.stdout, /::error title=Tenant stacks drifted in prod::/);
        });

        for (const stack of DEPLOYED_STACKS) {
            it(`deploy.yml runs ${stack}'s tenant stacks after its hub's up: --changed <last successful push deploy>, --all when that commit is unknown; an emergency run skips them`, () => {
                const wf = workflow("deploy.yml");
                const [jobId, job] = Object.entries(wf.jobs).find(([, j]) => environmentOf(j) === stack)!;
                const steps = job.steps!;
                const step = tenantStep("deploy.yml", jobId);
                const deployed = stepById(wf, jobId, "deployed");
                assert.ok(steps.indexOf(step) > steps.indexOf(stepUsing(wf, jobId, "pulumi/actions")), "after the hub's up");
                assert.equal(step.if, "${{ !inputs.emergency }}");
                assert.equal(deployed.if, "${{ !inputs.emergency }}");
                assert.equal(step.env?.STACK, stack);
                assert.equal((job.permissions as Record<string, string> | undefined)?.actions, "read");
                assert.equal(steps.find((s) => actionOf(s) === "actions/checkout")?.with?.["fetch-depth"], 0, "the history --changed diffs against");

                const gh = runStep(deployed.run ?? "", { fakes: { gh: `process.stdout.write("0123abc\\n");` } });
                assert.equal(gh.status, 0, gh.stderr);
                assert.equal(gh.outputs.sha, "0123abc");
                const ghArgs = fakeLog(gh, "gh")[0];
                for (const flag of ["--workflow", "deploy.yml", "--branch", "main", "--event", "push", "--status", "success"]) assert.ok(ghArgs.includes(flag), `gh run list ${flag}`);

                const git = (known: boolean) => `process.exit(${known ? 0 : 1});`;
                const known = runStep(step.run ?? "", { env: { STACK: stack, DEPLOYED: "0123abc" }, fakes: { npm: FAKE_TENANT_NPM, git: git(true) } });
                assert.equal(known.status, 0, known.stderr);
                assert.deepStrictEqual(npmArgs(known), ["run", "--silent", "tenant", "--", "up", "--stack", stack, "--changed", "0123abc", "--parallel", "4"]);
                for (const [deployedSha, gitKnows] of [["", true], ["0123abc", false]] as const) {
                    const all = runStep(step.run ?? "", { env: { STACK: stack, DEPLOYED: deployedSha }, fakes: { npm: FAKE_TENANT_NPM, git: git(gitKnows) } });
                    assert.equal(all.status, 0, all.stderr);
                    assert.deepStrictEqual(npmArgs(all), ["run", "--silent", "tenant", "--", "up", "--stack", stack, "--all", "--parallel", "4"]);
                    assert.match(all.stdout, /::notice title=Every tenant stack of/);
                }
                const failed = runStep(step.run ?? "", { env: { STACK: stack, DEPLOYED: "0123abc", FAKE_TENANT_CODE: "1" }, fakes: { npm: FAKE_TENANT_NPM, git: git(true) } });
                assert.notEqual(failed.status, 0, "a failed tenant stack fails the job");
            });
        }
    });
});
