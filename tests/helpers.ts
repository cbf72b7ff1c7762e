/**
 * The one shared evaluation helper of the test suite: evaluates (and renders) stacks through the
 * same evaluator the commands use, caching per stack because evaluations are deterministic.
 */
import * as assert from "assert";
import { type ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { CONFIG_KEYS, ConfigError, type Inventory } from "../stacks/config";
import { type CapturedResource, type DeclaredObject, type EvaluateOptions, type Evaluation, ROOT, declaredObjects, evaluate, registeredBeforeFailure, stackNames } from "../evaluator/evaluate";
import { type RenderResult, renderStack } from "../evaluator/render";
import { evaluateRegistrations } from "../evaluator/registrations";

export type Obj = Record<string, any>;

/** Every committed stack (a `Pulumi.<stack>.yaml` in the project root). */
export const STACKS = stackNames();

const evaluations = new Map<string, Promise<Evaluation>>();
const renders = new Map<string, Promise<RenderResult>>();

export function evaluated(stack: string): Promise<Evaluation> {
    if (!evaluations.has(stack)) evaluations.set(stack, evaluate(stack));
    return evaluations.get(stack)!;
}

export function rendered(stack: string): Promise<RenderResult> {
    if (!renders.has(stack)) renders.set(stack, renderStack(stack));
    return renders.get(stack)!;
}

const registrations = new Map<string, Promise<Evaluation[]>>();

/** The stack's tenant stacks, each registering its tenant on the hub (evaluator/registrations.ts). */
export function registrationsOf(stack: string): Promise<Evaluation[]> {
    if (!registrations.has(stack)) registrations.set(stack, evaluated(stack).then((ev) => evaluateRegistrations(ev)));
    return registrations.get(stack)!;
}

/** The cluster Secret on the hub that `tenant`'s own stack declares (secrets revealed). */
export async function registrationOf(stack: string, tenant: string): Promise<DeclaredObject> {
    const found = (await registrationsOf(stack)).flatMap(declaredObjects).find((o) => o.cluster === "hub" && (o.object.metadata as Obj).name === `cluster-${tenant}`);
    assert.ok(found, `no tenant stack registers ${tenant} on the hub`);
    return found;
}

/**
 * Kubernetes objects the stack's hub stack declares, and its tenant stacks' registrations on the hub
 * (what Argo CD sees there), optionally of one cluster and kind (secrets revealed).
 */
export async function objectsOf(stack: string, filter: { cluster?: string; kind?: string } = {}): Promise<DeclaredObject[]> {
    const registered = (await registrationsOf(stack)).flatMap(declaredObjects).filter((o) => o.cluster === "hub");
    return [...declaredObjects(await evaluated(stack)), ...registered].filter((o) => (!filter.cluster || o.cluster === filter.cluster) && (!filter.kind || o.object.kind === filter.kind));
}

export const resourceOf = (ev: Evaluation, type: string, name?: string): CapturedResource => {
    const found = ev.resources.find((r) => r.type === type && (name === undefined || r.name === name));
    assert.ok(found, `no ${type}${name ? ` named ${name}` : ""} registered`);
    return found;
};

export const releaseOf = (ev: Evaluation) => resourceOf(ev, "kubernetes:helm.sh/v3:Release");

/**
 * Evaluates `stack` with its configuration edited by `edit`, expects a ConfigError, checks that
 * nothing was declared before it, and returns the problems.
 */
export async function configProblems(stack: string, edit: EvaluateOptions["edit"], options: Omit<EvaluateOptions, "edit"> = {}): Promise<string[]> {
    try {
        await evaluate(stack, { ...options, edit });
    } catch (err) {
        assert.ok(err instanceof ConfigError, `expected a ConfigError, got: ${(err as Error)?.stack ?? err}`);
        const registered = registeredBeforeFailure(err) ?? [];
        assert.deepStrictEqual(registered.map((r) => `${r.type}::${r.name}`), [], "resources were declared before the configuration error");
        return err.problems;
    }
    assert.fail("expected the configuration to be rejected, but it evaluated");
}

/**
 * The key path a problem line starts with, without the name of the entry it lies in: a stack file
 * key (`agentfleet:hub.server: ...`), or a tenant file and its key (`fleet/dev/acme.yaml: server: ...`,
 * path `fleet/dev/acme.yaml: server`), or a tenant file alone (`fleet/dev/acme.yaml: ...`).
 */
export const problemPath = (problem: string): string => /^([^\s:]+\.yaml: [A-Za-z][\w.[\]/!-]*)(?=: )/.exec(problem)?.[1] ?? /^(.*?)(?: \((?:tenant) [^)]+\))?: /.exec(problem)?.[1] ?? problem;

/** An inventory in memory: `entries` (with names) as the files of `folder` (validateConfig's input). */
export const inventoryOf = (folder: string, entries: Array<{ name: string }>): Inventory => ({ folder, problems: [], entries: entries.map(({ name, ...value }) => ({ file: `${folder}/${name}.yaml`, name, value })) });

/** Asserts some problem names `path` and contains every fragment. */
export function assertProblem(problems: string[], path: string, ...fragments: string[]): void {
    // A tenant file's key may hold a space (a label key): its problem starts with the path and ": " all the same.
    const at = (p: string) => problemPath(p) === path || (path.includes(".yaml: ") && p.startsWith(`${path}: `));
    const hit = problems.find((p) => at(p) && fragments.every((f) => p.includes(f)));
    assert.ok(hit, `no problem at ${path} mentioning ${fragments.map((f) => JSON.stringify(f)).join(", ")}; got:\n  ${problems.join("\n  ")}`);
}

/** Mutable access to a parsed stack config value (`agentfleet:tenants` etc.). */
export const key = (config: Record<string, unknown>, name: string): any => config[`agentfleet:${name}`];

/** Copies stack `from`'s tenant inventory in project `root` to stack `to`'s (fleet/<to>/), each file's text through `edit`. */
export function copyInventory(root: string, from: string, to: string, edit: (text: string, file: string) => string = (t) => t): void {
    fs.mkdirSync(path.join(root, "fleet", to), { recursive: true });
    for (const f of fs.readdirSync(path.join(root, "fleet", from))) fs.writeFileSync(path.join(root, "fleet", to, f), edit(fs.readFileSync(path.join(root, "fleet", from, f), "utf8"), f));
}

/** A kubeconfig of one cluster at `server` whose user is a fake bearer token: what KUBECONFIG names for the hub in the command specs. */
export function tokenKubeconfig(server: string, token = "hub-admin-token-for-tests"): string {
    const ca = Buffer.from("-----BEGIN CERTIFICATE-----\nFAKE-CA-FOR-TESTS-ONLY\n-----END CERTIFICATE-----\n").toString("base64");
    return YAML.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "default", cluster: { server, "certificate-authority-data": ca } }],
        contexts: [{ name: "default", context: { cluster: "default", user: "default" } }],
        "current-context": "default",
        users: [{ name: "default", user: { token } }],
    });
}

/** A projectCopy holding a kubeconfig (`hub.kubeconfig`) of a token user on `server`: the hub context a tenant command is given. */
export function projectWithHubKubeconfig(server: string): { root: string; hubKubeconfig: string } {
    const root = projectCopy();
    const hubKubeconfig = path.join(root, "hub.kubeconfig");
    fs.writeFileSync(hubKubeconfig, tokenKubeconfig(server));
    return { root, hubKubeconfig };
}

/**
 * A throwaway copy of the project's tracked files (sharing node_modules) as a git repository with
 * one commit on main: the commands read the agent chart from git at the stack's targetRevision.
 */
export function projectCopy(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-test-"));
    const files = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT }).toString().split("\0").filter(Boolean);
    for (const f of files) {
        if (!fs.existsSync(path.join(ROOT, f))) continue;
        fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
    fs.writeFileSync(path.join(dir, ".gitignore"), "node_modules\n");
    git(dir, "init", "-q", "-b", "main");
    git(dir, "add", "-A");
    git(dir, "commit", "-qm", "base");
    return dir;
}

export const git = (cwd: string, ...args: string[]) => execFileSync("git", ["-c", "user.name=test", "-c", "user.email=test@example.net", ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] }).toString();

/**
 * Runs one of the project's commands (commands/<name>.ts) in `root` the way npm runs it: in the
 * project root, with the user's folder as INIT_CWD (`from`; default: none, as when run directly),
 * and `env` added to this process's environment (a key set to undefined is removed).
 */
export function runTool(root: string, tool: string, args: string[], options: ToolOptions = {}) {
    const [command, argv, spawnOptions] = toolCommand(root, tool, args, options);
    return spawnSync(command, argv, { ...spawnOptions, encoding: "utf8", timeout: options.timeoutMs ?? 300_000 });
}

export interface ToolOptions {
    from?: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
}

/** The startTool children still running: a scenario that fails before awaiting one leaves it behind. */
const runningTools = new Set<ChildProcess>();

/** Stops every startTool child still running (a suite's `after`, and this process's exit). */
export function stopTools(): void {
    for (const child of runningTools) child.kill("SIGTERM");
    runningTools.clear();
}
process.on("exit", stopTools);

/** runTool, running alongside the caller (e.g. `status --watch` while a rollout moves); killed after `timeoutMs`, or by stopTools. */
export function startTool(root: string, tool: string, args: string[], options: ToolOptions = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const [command, argv, spawnOptions] = toolCommand(root, tool, args, options);
    return new Promise((resolve, reject) => {
        const child = spawn(command, argv, { ...spawnOptions, timeout: options.timeoutMs ?? 300_000 });
        runningTools.add(child);
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (status) => {
            runningTools.delete(child);
            resolve({ status, stdout, stderr });
        });
    });
}

function toolCommand(root: string, tool: string, args: string[], options: ToolOptions): [string, string[], { cwd: string; env: NodeJS.ProcessEnv }] {
    // `npm test` sets INIT_CWD (the checkout the specs run from) and npm_lifecycle_event: not the command's own npm run.
    const { INIT_CWD: _initCwd, npm_lifecycle_event: _event, ...inherited } = process.env;
    const env: NodeJS.ProcessEnv = { ...inherited, ...(options.from !== undefined ? { INIT_CWD: options.from } : {}), ...options.env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    return [process.execPath, ["-r", "ts-node/register/transpile-only", path.join(root, "commands", `${tool}.ts`), ...args], { cwd: root, env }];
}

// ---------------------------------------------------------------------------------------------
// Broken configurations and in-memory stack configurations

export const BROKEN_FIXTURES = path.join(__dirname, "fixtures", "broken");

/** What a broken stack file must be rejected with: a problem at `path` containing every fragment. */
export interface Expectation {
    path: string;
    fragments: string[];
}

export interface BrokenFixture {
    /** File name without `.yaml`; also the stack name it is evaluated as. */
    name: string;
    file: string;
    /** The leading `# Broken stack: ...` line. */
    description: string;
    /** From the leading `# expect: <key path> | <fragment> | ...` lines. */
    expectations: Expectation[];
}

/** Every stack file under tests/fixtures/broken, with the expectations from its leading comment. */
export function brokenFixtures(): BrokenFixture[] {
    return fs
        .readdirSync(BROKEN_FIXTURES)
        .filter((f) => f.endsWith(".yaml"))
        .sort()
        .map((f) => {
            const file = path.join(BROKEN_FIXTURES, f);
            const header: string[] = [];
            for (const line of fs.readFileSync(file, "utf8").split("\n")) {
                if (!line.startsWith("#")) break;
                header.push(line);
            }
            const expectations = header
                .map((l) => /^# expect: (.*)$/.exec(l)?.[1])
                .filter((e): e is string => e !== undefined)
                .map((e) => {
                    const [keyPath, ...fragments] = e.split(" | ").map((s) => s.trim());
                    return { path: keyPath, fragments };
                });
            const description = header.map((l) => /^# Broken stack: (.*)$/.exec(l)?.[1]).find((d) => d !== undefined) ?? "";
            return { name: f.slice(0, -".yaml".length), file, description, expectations };
        });
}

/**
 * Evaluates `stack` with exactly `config` (keys `agentfleet:<key>`, values as in a stack file,
 * `{secure: ...}` for secrets) as its configuration, built in memory: property tests and fuzzing.
 * Its `agentfleet:tenants` list, if any, is the tenant inventory: one file per entry, named by its
 * name (`inventoryFiles` says whether a list can be written so).
 */
export const evaluateConfig = (stack: string, config: Record<string, unknown>): Promise<Evaluation> => {
    const { "agentfleet:tenants": tenants, ...rest } = config;
    return evaluate(stack, { config: rest, ...(tenants === undefined ? {} : { inventory: tenants as Array<Record<string, unknown>> }) });
};

/** Whether a tenant list can be the inventory's files: objects with distinct names that can be file names. */
export const inventoryFiles = (tenants: unknown): boolean => {
    if (!Array.isArray(tenants)) return false;
    const names = tenants.map((t) => (t !== null && typeof t === "object" && !Array.isArray(t) ? (t as Record<string, unknown>).name : undefined));
    return names.every((n) => typeof n === "string" && n !== "" && n.length <= 200 && !/[/\0]/.test(n) && !n.startsWith(".")) && new Set(names).size === names.length;
};

/**
 * The secret material a stack file holds: its `secure:` ciphertexts, and any plaintext values
 * under keys declared secret (the mistake a broken configuration may make). Neither may ever be
 * echoed back by a command.
 */
export function secretMaterial(file: string): { ciphertexts: string[]; plaintexts: string[] } {
    const text = fs.readFileSync(file, "utf8");
    const ciphertexts = [...text.matchAll(/\bsecure:\s*(v1:\S+)/g)].map((m) => m[1]);
    const plaintexts: string[] = [];
    let config: Record<string, unknown> = {};
    try {
        config = YAML.parse(text)?.config ?? {};
    } catch {
        // Not YAML: only the ciphertexts can be told apart.
    }
    const walk = (v: unknown): void => {
        if (Array.isArray(v)) return v.forEach(walk);
        if (v && typeof v === "object") {
            const entries = Object.entries(v);
            if (entries.length === 1 && entries[0][0] === "secure") return;
            return entries.forEach(([, x]) => walk(x));
        }
        if (typeof v === "string" && v !== "") plaintexts.push(v);
    };
    for (const [key, spec] of Object.entries(CONFIG_KEYS)) if (spec.secret) walk(config[`agentfleet:${key}`]);
    return { ciphertexts, plaintexts };
}

// ---------------------------------------------------------------------------------------------
// Go templates, parsed by Go's own text/template (tests/gotemplate)

/** Which engine will parse the template: its function map decides which functions exist. */
export type GoTemplateEngine = "notifications" | "applicationset";
export interface GoTemplateRequest {
    id: string;
    text: string;
    funcs: GoTemplateEngine;
}
export interface GoTemplateResult {
    id: string;
    /** text/template's parse error, if any. */
    error?: string;
    /** Field chains read from the top-level data, e.g. ["app", "metadata", "name"]. */
    fields: string[][];
}

const goToolBinaries = new Map<string, string>();

/**
 * Builds the small Go program under tests/<name> once per test run into a temporary folder removed
 * at exit; Go's build cache makes later builds fast. GOTOOLCHAIN=local: never download a toolchain.
 * `offline` (standard library only) adds GOPROXY=off; otherwise a module missing from the module
 * cache comes from the Go module proxy, pinned by the tool's go.sum.
 */
function goTool(name: string, offline: boolean): string {
    let binary = goToolBinaries.get(name);
    if (!binary) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), `agentfleet-${name}-`));
        process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
        const started = Date.now();
        binary = path.join(dir, name);
        const env = { ...process.env, GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod", ...(offline ? { GOPROXY: "off" } : {}) };
        execFileSync("go", ["build", "-o", binary, "."], { cwd: path.join(__dirname, name), stdio: ["ignore", "ignore", "inherit"], env });
        process.stderr.write(`      (built tests/${name} in ${((Date.now() - started) / 1000).toFixed(1)}s)\n`);
        goToolBinaries.set(name, binary);
    }
    return binary;
}

/** Parses every template with Go's text/template (tests/gotemplate, standard library only) in one batch. */
export function parseGoTemplates(requests: GoTemplateRequest[]): GoTemplateResult[] {
    const out = execFileSync(goTool("gotemplate", true), [], { input: JSON.stringify(requests), maxBuffer: 64 * 1024 * 1024 }).toString();
    return JSON.parse(out) as GoTemplateResult[];
}

// ---------------------------------------------------------------------------------------------
// Trigger expressions, evaluated by expr-lang/expr (tests/exprtrigger)

export interface ExprRequest {
    id: string;
    expression: string;
    app: unknown;
}
export interface ExprResult {
    id: string;
    /** The expression's value (JSON). */
    value: unknown;
    /** fmt.Sprintf("%v", value): what notifications-engine keys a oncePer state with. */
    text: string;
    /** Compile or run error: the engine logs it and counts the condition as false. */
    error?: string;
}

/**
 * Evaluates trigger expressions with expr-lang/expr at the version Argo CD v3.6.2 builds its
 * notifications controller with, as notifications-engine does (`app` is the Application).
 */
export function evaluateExpressions(requests: ExprRequest[]): ExprResult[] {
    const out = execFileSync(goTool("exprtrigger", false), [], { input: JSON.stringify(requests), maxBuffer: 64 * 1024 * 1024 }).toString();
    return JSON.parse(out) as ExprResult[];
}

// ---------------------------------------------------------------------------------------------
// Argo CD's side of a rollout: the objects its controllers write (npm run status reads them)

/** One cluster Secret's generator parameters: what the cluster generator hands the template. */
export interface ClusterParams {
    name: string;
    server: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
}

/** The generator parameters of a stack's cluster Secrets, as declared. */
export async function clusterParams(stack: string): Promise<ClusterParams[]> {
    return (await objectsOf(stack, { kind: "Secret" }))
        .map((o) => o.object as Obj)
        .filter((s) => s.metadata.labels?.["argocd.argoproj.io/secret-type"] === "cluster")
        .map((s) => ({ name: s.stringData.name, server: s.stringData.server, labels: s.metadata.labels, annotations: s.metadata.annotations ?? {} }));
}

/**
 * The Application Argo CD's ApplicationSet controller generates from `appSet` for one cluster:
 * the template with the cluster generator's parameters (the ones agentfleet's template uses;
 * anything else left is an error, like missingkey=error), owned by the ApplicationSet, autosync
 * off as RollingSync forces it.
 */
export function generatedApplication(appSet: Obj, cluster: ClusterParams): Obj {
    const text = JSON.stringify(appSet.spec.template)
        .replace(/\{\{\.name\}\}/g, cluster.name)
        .replace(/\{\{\.server\}\}/g, cluster.server)
        .replace(/\{\{index \.metadata\.(labels|annotations) \\"([^"\\]+)\\"\}\}/g, (_, map: "labels" | "annotations", key: string) => {
            const value = cluster[map][key];
            if (value === undefined) throw new Error(`cluster ${cluster.name} has no ${map} ${key}`);
            return value;
        });
    if (text.includes("{{")) throw new Error(`template parameters this helper does not know: ${/\{\{[^}]*\}\}/.exec(text)![0]}`);
    const template = JSON.parse(text);
    return {
        apiVersion: "argoproj.io/v1alpha1",
        kind: "Application",
        metadata: {
            ...template.metadata,
            namespace: appSet.metadata.namespace,
            ownerReferences: [{ apiVersion: "argoproj.io/v1alpha1", kind: "ApplicationSet", name: appSet.metadata.name, uid: appSet.metadata.uid ?? "00000000-0000-0000-0000-000000000000", controller: true, blockOwnerDeletion: true }],
        },
        spec: { ...template.spec, syncPolicy: { ...template.spec.syncPolicy, automated: { ...template.spec.syncPolicy?.automated, enabled: false } } },
    };
}

/** The agent chart's Deployment (charts/voice-agent), whose health the probe gate decides. */
const AGENT_DEPLOYMENT = "voice-agent";

/** What Argo CD's application controller reports for an Application (its status subresource). */
export interface AppState {
    sync: "Synced" | "OutOfSync" | "Unknown";
    health: "Healthy" | "Progressing" | "Degraded" | "Missing" | "Suspended" | "Unknown";
    /** What the agent Deployment's health check says (status.resources; the Application itself says "Caused by …"). */
    healthMessage?: string;
    /** The commit synced to (status.sync.revision). */
    revision: string;
    /** The last sync operation. */
    operation?: { phase: "Running" | "Succeeded" | "Failed" | "Error"; message: string; startedAt: string };
    at: string;
}

/** An Application's status as the application controller writes it. */
export function applicationStatus(app: Obj, s: AppState): Obj {
    return {
        sync: { status: s.sync, revision: s.revision, comparedTo: { source: app.spec.source, destination: app.spec.destination } },
        // Argo CD v3 (controller/health.go): the Application names the resources that cause its
        // health; their own messages are in status.resources, with controller.resource.health.persist.
        health: { status: s.health, ...(s.health !== "Healthy" ? { message: `Caused by apps/Deployment:${app.spec.destination.namespace}/${AGENT_DEPLOYMENT}` } : {}), lastTransitionTime: s.at },
        resources: [{ group: "apps", version: "v1", kind: "Deployment", namespace: app.spec.destination.namespace, name: AGENT_DEPLOYMENT, status: s.sync, health: { status: s.health, ...(s.healthMessage ? { message: s.healthMessage } : {}) } }],
        reconciledAt: s.at,
        sourceType: "Helm",
        ...(s.operation
            ? {
                  operationState: {
                      operation: { sync: { revision: s.revision, prune: true }, initiatedBy: { username: "applicationset-controller", automated: true }, retry: { limit: 5 } },
                      phase: s.operation.phase,
                      message: s.operation.message,
                      startedAt: s.operation.startedAt,
                      ...(s.operation.phase === "Running" ? {} : { finishedAt: s.at }),
                  },
              }
            : {}),
    };
}

/** One status.applicationStatus entry, as the ApplicationSet controller writes it (v3.4.7 field names). */
export function rollingSyncEntry(app: Obj, step: number, status: "Waiting" | "Pending" | "Progressing" | "Healthy", message: string, at: string, revision: string): Obj {
    return { application: app.metadata.name, status, step: String(step), message, lastTransitionTime: at, targetRevisions: [revision] };
}
