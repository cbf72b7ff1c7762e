/**
 * The engine-free evaluator: runs the agentfleet program for one stack under Pulumi's mock
 * runtime, with the stack's committed `Pulumi.<stack>.yaml` plus the project defaults from
 * `Pulumi.yaml` (the mock runtime does not apply them), and captures every registered resource.
 *
 * `secure:` values are never decrypted: each becomes a recognisable placeholder
 * (`__SECRET__<key path>__`) and its key stays marked secret, so secret-ness flows through the
 * program exactly as under `pulumi up`, and a leak is a plain string search away.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { CONFIG_KEYS, ConfigError, HUB_STATE_ENV, type Inventory, PROJECT, type Plain, type RawConfig, type SecretShapes, fleetFolder, inventoryList, notificationSecretsShape, parseConfigValue, readInventory, tenantFileText, unknownConfigKeys, validateConfig, yamlErrorText } from "../stacks/config";

export const ROOT = path.resolve(__dirname, "..");
export const SECRET_PREFIX = "__SECRET__";
/** Prefix of values the mocks make up for generated credentials (passwords, SA tokens). */
export const GENERATED_PREFIX = "__GENERATED__";
export const REDACTED = "[secret]";
export const STACK_RESOURCE_TYPE = "pulumi:pulumi:Stack";

/** The stack names that have a committed `Pulumi.<stack>.yaml` under `root`. */
export function stackNames(root: string = ROOT): string[] {
    return fs
        .readdirSync(root)
        .map((f) => /^Pulumi\.([A-Za-z0-9_.-]+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
}

export interface StackConfig {
    /** The inventory folder as configured (default fleet/<stack>), as problems name it. */
    fleetFolder: string;
    /** The inventory given in memory or edited (`StackSource`), to be written for the program; undefined: its folder as it is. */
    inventory?: Array<Record<string, unknown>>;
    /** `<project>:<key>` -> value as the Pulumi CLI hands it to a program (JSON for structures). */
    config: Record<string, string>;
    /** Keys holding at least one secure value. */
    secretKeys: string[];
    /** Every placeholder that stands for a secure value. */
    placeholders: string[];
}

type ProjectConfigDecl = { type?: string; default?: unknown; secret?: boolean };

/** Parsed Pulumi.yaml declarations by file, kept while the file is unchanged: a plan evaluates a tenant stack per tenant. */
const declarationsCache = new Map<string, { text: string; declarations: Record<string, ProjectConfigDecl> }>();

function projectDeclarations(root: string): Record<string, ProjectConfigDecl> {
    const file = path.join(root, "Pulumi.yaml");
    const text = fs.readFileSync(file, "utf8");
    const cached = declarationsCache.get(file);
    if (cached?.text === text) return structuredClone(cached.declarations);
    const declarations = (YAML.parse(text) ?? {}).config ?? {};
    declarationsCache.set(file, { text, declarations });
    return structuredClone(declarations);
}

/** The project's declared configuration keys, qualified (`agentfleet:fleet`). */
const projectDeclarationsOf = (root: string) => Object.fromEntries(Object.entries(projectDeclarations(root)).map(([k, d]) => [qualify(k), d]));

const qualify = (key: string) => (key.includes(":") ? key : `${PROJECT}:${key}`);

/**
 * Reads a stack file the way the Pulumi CLI would hand it to the program. Fails with a
 * ConfigError when a key declared `secret: true` holds plaintext anywhere (the CLI refuses that
 * for whole keys; for nested values only this check catches it).
 */
/** Where a stack's configuration comes from. */
export interface StackSource {
    /** Project root holding index.ts, Pulumi.yaml and the stack files (default: this checkout). */
    root?: string;
    /** Reads the stack's configuration from this file instead of `<root>/Pulumi.<stack>.yaml`. */
    stackFile?: string;
    /** The stack file's `config:` map itself, instead of reading any file (in-memory stacks). */
    config?: Record<string, unknown>;
    /**
     * Edits the stack file's `config:` map before it is read (tests, fuzzing). Unless the stack
     * file itself still lists `agentfleet:tenants` (refused), the map holds the tenant inventory
     * there as a list of entries with names, as stack files did: edit it like that.
     */
    edit?: (config: Record<string, unknown>) => void;
    /** The tenant inventory itself, entries with names, instead of reading its folder (in-memory fleets). */
    inventory?: Array<Record<string, unknown>>;
}

const TENANTS_KEY = `${PROJECT}:tenants`;
const FLEET_KEY = `${PROJECT}:fleet`;

function stackFileConfig(stack: string, root: string, stackFile?: string): { file: string; values: Record<string, unknown> } {
    const file = stackFile ?? path.join(root, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(file)) {
        throw new Error(`no stack file Pulumi.${stack}.yaml in ${root} (stacks here: ${stackNames(root).join(", ") || "none"})`);
    }
    let parsed: { config?: Record<string, unknown> } | null;
    try {
        parsed = YAML.parse(fs.readFileSync(file, "utf8"));
    } catch (err) {
        throw new ConfigError([`${path.basename(file)}: is not valid YAML: ${yamlErrorText(err as Error)}`]);
    }
    return { file, values: { ...(parsed?.config ?? {}) } };
}

export function readStackConfig(stack: string, source: StackSource = {}): StackConfig {
    const root = source.root ?? ROOT;
    const { file, values: stackValues } = source.config ? { file: `Pulumi.${stack}.yaml`, values: structuredClone(source.config) } : stackFileConfig(stack, root, source.stackFile);
    const folder = fleetFolder(stack, stackValues[FLEET_KEY]);
    let inventory = source.inventory && structuredClone(source.inventory);
    if (source.edit && !(TENANTS_KEY in stackValues)) {
        if (!inventory) {
            const read = readInventory(root, folder);
            if (read.problems.length > 0) throw new ConfigError(read.problems);
            inventory = inventoryList(read);
        }
        stackValues[TENANTS_KEY] = inventory;
        source.edit(stackValues);
        inventory = stackValues[TENANTS_KEY] as Array<Record<string, unknown>>;
        delete stackValues[TENANTS_KEY];
    } else source.edit?.(stackValues);
    const declarations = projectDeclarations(root);
    const values: Record<string, unknown> = {};
    for (const [key, decl] of Object.entries(declarations)) {
        if (decl.default !== undefined) values[qualify(key)] = decl.default;
    }
    // A key set to nothing (`key:` or `key: null`) is unset, as for the Pulumi CLI.
    for (const [key, value] of Object.entries(stackValues)) if (value !== null && value !== undefined) values[qualify(key)] = value;

    const problems: string[] = [];
    const secretKeys = new Set<string>();
    const placeholders: string[] = [];
    const declaredSecret = new Set(Object.entries(declarations).filter(([, d]) => d.secret).map(([k]) => qualify(k)));
    const walk = (value: unknown, keyPath: string, key: string): unknown => {
        if (value && typeof value === "object" && !Array.isArray(value)) {
            const entries = Object.entries(value);
            if (entries.length === 1 && entries[0][0] === "secure") {
                const placeholder = `${SECRET_PREFIX}${keyPath}__`;
                placeholders.push(placeholder);
                secretKeys.add(key);
                return placeholder;
            }
            return Object.fromEntries(entries.map(([k, v]) => [k, walk(v, `${keyPath}.${k}`, key)]));
        }
        if (Array.isArray(value)) return value.map((v, i) => walk(v, `${keyPath}[${i}]`, key));
        if (declaredSecret.has(key) && value !== null && value !== undefined && value !== "") {
            problems.push(`${keyPath}: holds a plaintext value, but ${key} is secret; set it with \`pulumi config set --secret${keyPath === key ? "" : " --path"} '${keyPath.slice(PROJECT.length + 1)}' ...\` and remove the plaintext from ${path.basename(file)}`);
        }
        return value;
    };
    const config: Record<string, string> = {};
    for (const [key, value] of Object.entries(values)) {
        const v = walk(value, key, key);
        config[key] = typeof v === "string" ? v : JSON.stringify(v);
    }
    if (problems.length > 0) throw new ConfigError(problems);
    return { fleetFolder: folder, ...(inventory ? { inventory } : {}), config, secretKeys: [...secretKeys].sort(), placeholders };
}

/**
 * Validates a stack's configuration as the Pulumi CLI hands it to the program (`readStackConfig`'s
 * strings, secure values as placeholders: only which fields are set matters) with its inventory,
 * the way `loadConfig` sees it under `pulumi up`; a ConfigError lists every problem.
 */
export function validateStackConfig(stack: string, config: Record<string, string>, inventory: Inventory): Plain {
    const problems: string[] = [];
    const raw: RawConfig = {};
    for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
        const text = config[`${PROJECT}:${key}`];
        if (!spec.secret && text !== undefined) (raw as Record<string, unknown>)[key] = parseConfigValue(key, text, problems);
    }
    const notifications = config[`${PROJECT}:notificationSecrets`];
    let notificationSecrets: unknown;
    if (notifications?.startsWith(SECRET_PREFIX)) {
        problems.push(`${PROJECT}:notificationSecrets: is encrypted as one value, so its entries cannot be checked; store each with \`pulumi config set --secret --path 'notificationSecrets.<entry>'\``);
    } else if (notifications !== undefined) notificationSecrets = parseConfigValue("notificationSecrets", notifications, problems, true);
    if (problems.length > 0) throw new ConfigError(problems);
    const secrets: SecretShapes = { notificationSecrets: notificationSecrets === undefined ? undefined : notificationSecretsShape(notificationSecrets) };
    return validateConfig(stack, raw, secrets, unknownConfigKeys(Object.keys(config)), inventory);
}

/** One registered resource, as the mock monitor saw it. */
export interface CapturedResource {
    urn: string;
    type: string;
    name: string;
    custom: boolean;
    /** Name of the parent resource (the stack for top-level resources). */
    parent?: string;
    /** Name of the explicit provider resource, if any. */
    provider?: string;
    /** Inputs as sent to the engine: secret values are still wrapped (see `redact`, `secretPaths`). */
    inputs: Record<string, unknown>;
    /** Names of the resources this one explicitly depends on. */
    dependsOn: string[];
    protect: boolean;
    retainOnDelete: boolean;
    /** URNs the resource was known by before (its `aliases`); an alias given as a spec is its fields as JSON. */
    aliases: string[];
}

export interface Evaluation {
    stack: string;
    resources: CapturedResource[];
    /** Placeholders standing for the stack's secure values. */
    placeholders: string[];
    /** The configuration the program read (`<project>:<key>` -> value; secure values as placeholders). */
    config: Record<string, string>;
    /** The tenant inventory the program read: its entries with their names (file names). */
    inventory: Array<Record<string, unknown>>;
    /** Stack outputs the program returned. */
    outputs: Record<string, unknown>;
    /** Names of the stack outputs marked secret (`pulumi stack output` shows them as [secret]). */
    secretOutputs: string[];
}

const isSecret = (v: unknown) => pulumi.runtime.isRpcSecret(v);
const unwrap = (v: unknown) => pulumi.runtime.unwrapRpcSecret(v);

/** Replaces every secret value's leaves with "[secret]", keeping the structure around them. */
export function redact(value: unknown, inSecret = false): unknown {
    if (isSecret(value)) return redact(unwrap(value), true);
    if (Array.isArray(value)) return value.map((v) => redact(v, inSecret));
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, inSecret)]));
    return inSecret && value !== null && value !== undefined ? REDACTED : value;
}

/** The value with secret wrappers removed (placeholders and generated values stay as they are). */
export function reveal(value: unknown): unknown {
    if (isSecret(value)) return reveal(unwrap(value));
    if (Array.isArray(value)) return value.map(reveal);
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
    return value;
}

/** Dotted paths of the values marked secret, e.g. ["stringData", "values.a"]. */
export function secretPaths(value: unknown, prefix = ""): string[] {
    if (isSecret(value)) return [prefix || "."];
    if (Array.isArray(value)) return value.flatMap((v, i) => secretPaths(v, `${prefix}[${i}]`));
    if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => secretPaths(v, prefix ? `${prefix}.${k}` : k));
    return [];
}

const nameOfUrn = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

/** What the mocks return as a resource's state: its inputs, plus what a real controller would fill in. */
function mockState(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
    if (type === "kubernetes:core/v1:Secret" && inputs.type === "kubernetes.io/service-account-token") {
        const b64 = (s: string) => Buffer.from(s).toString("base64");
        return { ...inputs, data: { token: b64(`${GENERATED_PREFIX}${name}-token__`), "ca.crt": b64(`${GENERATED_PREFIX}${name}-ca__`), namespace: b64("kube-system") } };
    }
    if (type === "random:index/randomPassword:RandomPassword") return { ...inputs, result: `${GENERATED_PREFIX}${name}__` };
    return inputs;
}

// The Pulumi runtime is process-global state: evaluations run one at a time.
let queue: Promise<unknown> = Promise.resolve();

export type EvaluateOptions = StackSource & {
    /** Another Pulumi program than the project's index.ts (the tenant onboarding program), and its project name. */
    program?: { run: () => Promise<unknown>; project: string };
    /** The stack's state as the program's own check reads it (stacks/hub-state.ts), resources of a `pulumi stack export`; default: none (a new stack). */
    hubState?: Array<{ urn: string; type: string }>;
};

/**
 * Runs the program for `stack` under the mock runtime and returns what it registered. A
 * configuration error rejects with ConfigError, before the program registers any resource.
 */
export function evaluate(stack: string, options: EvaluateOptions = {}): Promise<Evaluation> {
    const run = queue.then(() => (options.program ? withoutStackTraces(() => evaluateNow(stack, options)) : evaluateNow(stack, options)));
    queue = run.catch(() => undefined);
    return run;
}

/**
 * Runs `work` with no stack traces captured, as `pulumi up` runs a program (Pulumi.yaml's
 * `--stack-trace-limit=0`): the SDK captures one per resource and per promise, which costs more
 * than a tenant stack's evaluation itself (a plan evaluates one per tenant). Errors keep their
 * messages. The hub's evaluation runs as node was started (`npm run bench` measures both ways).
 */
async function withoutStackTraces<T>(work: () => Promise<T>): Promise<T> {
    const saved = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
        return await work();
    } finally {
        Error.stackTraceLimit = saved;
    }
}

async function evaluateNow(stack: string, options: EvaluateOptions): Promise<Evaluation> {
    const root = options.root ?? ROOT;
    const stackConfig = readStackConfig(stack, options);
    const captured: CapturedResource[] = [];
    let pending: Pick<CapturedResource, "urn" | "dependsOn" | "protect" | "retainOnDelete" | "aliases"> & { parentUrn: string } = { urn: "", dependsOn: [], protect: false, retainOnDelete: false, aliases: [], parentUrn: "" };

    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                captured.push({
                    urn: pending.urn,
                    type: args.type,
                    name: args.name,
                    custom: args.custom ?? false,
                    parent: pending.parentUrn ? nameOfUrn(pending.parentUrn) : undefined,
                    provider: args.provider ? nameOfUrn(args.provider.split("::").slice(0, -1).join("::")) : undefined,
                    inputs: args.inputs,
                    dependsOn: pending.dependsOn,
                    protect: pending.protect,
                    retainOnDelete: pending.retainOnDelete,
                    aliases: pending.aliases,
                });
                return { id: `${args.name}-id`, state: mockState(args.type, args.name, args.inputs) };
            },
            call: (args) => args.inputs,
        },
        options.program?.project ?? PROJECT,
        stack,
        false,
    );
    // The mock monitor does not pass parent, dependencies or options to `newResource`; read them
    // off the registration request, which reaches `newResource` synchronously.
    const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource: (req: RegisterRequest, cb: unknown) => unknown; newUrn(parent: string, type: string, name: string): string };
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, cb) => {
        pending = {
            urn: monitor.newUrn(req.getParent(), req.getType(), req.getName()),
            parentUrn: req.getParent(),
            dependsOn: req.getDependenciesList().map(nameOfUrn),
            protect: req.getProtect() ?? false,
            retainOnDelete: req.getRetainondelete() ?? false,
            aliases: [...req.getAliasurnsList(), ...req.getAliasesList().map(aliasText)],
        };
        return register(req, cb);
    };
    // The program reads the inventory folder the configuration names: the stack's own, or the
    // in-memory (or edited) inventory written to a temporary folder; problems name the configured one.
    // A program from before the inventory (diff's base) reads its tenants from the stack file: no folder to name.
    const inventoryProgram = !options.program && FLEET_KEY in projectDeclarationsOf(root);
    const fleet = stackConfig.inventory ? writeInventory(stackConfig.inventory) : path.resolve(root, stackConfig.fleetFolder);
    if (inventoryProgram) stackConfig.config[FLEET_KEY] = fleet;
    pulumi.runtime.setAllConfig(stackConfig.config, stackConfig.secretKeys);

    const program = options.program?.run ?? loadProgram(root);
    let failure: unknown;
    const secretOutputs: string[] = [];
    const outputs = await pulumi.runtime.runInPulumiStack(async () => {
        try {
            // Only the hub program reads the run's KUBECONFIG and its own state; a tenant stack's program, evaluated once per tenant, reads neither.
            const result = options.program ? await program() : await withOfflineHubKubeconfig(stackConfig.config, () => withOfflineHubState(options.hubState ?? [], program));
            for (const [name, value] of Object.entries((result ?? {}) as Record<string, unknown>)) {
                if (pulumi.Output.isInstance(value) && (await pulumi.isSecret(value))) secretOutputs.push(name);
            }
            return result;
        } catch (err) {
            failure = err;
            return {};
        }
    });
    await waitForRegistrations();
    if (stackConfig.inventory) fs.rmSync(fleet, { recursive: true, force: true });
    if (inventoryProgram) stackConfig.config[FLEET_KEY] = stackConfig.fleetFolder;
    // By name: a program of another checkout (diff's base, e2e's copy) throws its own copy of the class.
    if ((failure as Error | undefined)?.name === "ConfigError") failure = namedAsConfigured(failure as ConfigError, fleet, stackConfig.fleetFolder);
    if (failure) {
        // Lets callers check that a failing configuration declared nothing.
        if (failure instanceof Error) Object.defineProperty(failure, "registered", { value: declaredResources({ resources: captured }), enumerable: false });
        throw failure;
    }
    const inventory = stackConfig.inventory ?? inventoryList(readInventory(root, stackConfig.fleetFolder));
    return { stack, resources: captured, placeholders: stackConfig.placeholders, config: stackConfig.config, inventory, outputs: (outputs ?? {}) as Record<string, unknown>, secretOutputs };
}

/** Writes an inventory given as entries with names to a new temporary folder, one `<name>.yaml` each. */
function writeInventory(entries: Array<Record<string, unknown>>): string {
    if (!Array.isArray(entries)) throw new Error(`${TENANTS_KEY}: the inventory given to the evaluator must stay a list of entries with names`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-inventory-"));
    for (const entry of entries) {
        const name = entry?.name;
        if (typeof name !== "string" || !/^[^/\\\0]+$/.test(name) || name.startsWith(".")) throw new Error(`an inventory entry given to the evaluator has no usable name (${JSON.stringify(name)}): its file is <name>.yaml`);
        const file = path.join(dir, `${name}.yaml`);
        if (fs.existsSync(file)) throw new Error(`two inventory entries given to the evaluator are named ${name}: one file per tenant`);
        fs.writeFileSync(file, tenantFileText(entry));
    }
    return dir;
}

/** The error with the folder the program read (`actual`) named as configured (`configured`). */
function namedAsConfigured(err: ConfigError, actual: string, configured: string): ConfigError {
    const named = new (err.constructor as typeof ConfigError)(err.problems.map((p) => p.split(`${actual}/`).join(`${configured}/`).split(actual).join(configured)));
    named.stack = err.stack;
    return named;
}

interface RegisterRequest {
    getParent(): string;
    getType(): string;
    getName(): string;
    getDependenciesList(): string[];
    getProtect(): boolean | undefined;
    getRetainondelete(): boolean | undefined;
    getAliasurnsList(): string[];
    getAliasesList(): AliasMessage[];
}

interface AliasMessage {
    getUrn(): string;
    getSpec(): { getName(): string; getType(): string; getStack(): string; getProject(): string; getParenturn(): string; getNoparent(): boolean } | undefined;
}

/** An alias as captured: its URN, or a spec's set fields as JSON (e.g. {"name":"old-name"}: same type and parent, another name). */
function aliasText(alias: AliasMessage): string {
    const spec = alias.getSpec();
    if (alias.getUrn() || !spec) return alias.getUrn();
    const fields = { name: spec.getName(), type: spec.getType(), stack: spec.getStack(), project: spec.getProject(), parentUrn: spec.getParenturn(), noParent: spec.getNoparent() };
    return JSON.stringify(Object.fromEntries(Object.entries(fields).filter(([, v]) => v)));
}

/**
 * Runs `program` with KUBECONFIG naming a stand-in kubeconfig of the stack's hub (hub.server,
 * through hub.context if set), as a real run's KUBECONFIG names the hub's: offline, no cluster is
 * contacted, and the program's check that the run reaches hub.server has its environment.
 */
async function withOfflineHubKubeconfig<T>(config: Record<string, string>, program: () => Promise<T>): Promise<T> {
    let hub: { server?: unknown; context?: unknown } = {};
    try {
        hub = JSON.parse(config[`${PROJECT}:hub`] ?? "{}") ?? {};
    } catch {
        // An unparsable hub is the configuration's problem to report.
    }
    const context = typeof hub.context === "string" ? hub.context : "offline-hub";
    const kubeconfig = { apiVersion: "v1", kind: "Config", clusters: [{ name: "hub", cluster: { server: String(hub.server ?? "") } }], contexts: [{ name: context, context: { cluster: "hub", user: "offline" } }], users: [{ name: "offline", user: {} }], "current-context": context };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-offline-hub-"));
    const saved = process.env.KUBECONFIG;
    try {
        fs.writeFileSync(path.join(dir, "kubeconfig"), YAML.stringify(kubeconfig), { mode: 0o600 });
        process.env.KUBECONFIG = path.join(dir, "kubeconfig");
        return await program();
    } finally {
        if (saved === undefined) delete process.env.KUBECONFIG;
        else process.env.KUBECONFIG = saved;
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/**
 * Runs `program` with AGENTFLEET_HUB_STATE naming a file holding `resources` as the stack's state:
 * offline there is no backend, and the program's check that its state holds no tenant's cluster
 * Secret (stacks/hub-state.ts) reads this instead of running `pulumi stack export`.
 */
async function withOfflineHubState<T>(resources: Array<{ urn: string; type: string }>, program: () => Promise<T>): Promise<T> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-offline-state-"));
    const saved = process.env[HUB_STATE_ENV];
    try {
        fs.writeFileSync(path.join(dir, "state.json"), JSON.stringify({ deployment: { resources } }), { mode: 0o600 });
        process.env[HUB_STATE_ENV] = path.join(dir, "state.json");
        return await program();
    } finally {
        if (saved === undefined) delete process.env[HUB_STATE_ENV];
        else process.env[HUB_STATE_ENV] = saved;
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

function loadProgram(root: string): () => Promise<unknown> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path.join(root, "index.ts"));
    const program = mod.default ?? mod;
    if (typeof program !== "function") throw new Error(`${root}/index.ts does not export the program function`);
    return program;
}

/** Resolves once every outstanding registration has reached the mocks. */
async function waitForRegistrations(): Promise<void> {
    // Not part of @pulumi/pulumi's typed surface, but exported by the runtime since 3.x: the same
    // wait the language host performs before it disconnects.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const settings = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> };
    await settings.waitForRPCs();
}

// ---------------------------------------------------------------------------------------------
// Views of an evaluation

/** A Kubernetes object the program declares, with the cluster it goes to. */
export interface DeclaredObject {
    /** `hub`, or the tenant's name. */
    cluster: string;
    resource: CapturedResource;
    /** The object with secrets revealed (placeholders and generated values in place). */
    object: Record<string, unknown>;
    /** The object with every secret value replaced by "[secret]". */
    redacted: Record<string, unknown>;
}

const isKubernetesObject = (r: CapturedResource) => r.custom && r.type.startsWith("kubernetes:") && !r.type.startsWith("kubernetes:helm.sh/");

/** Every Kubernetes object the evaluation declares, by cluster (the provider's clusterIdentifier). */
export function declaredObjects(evaluation: Evaluation): DeclaredObject[] {
    const clusterOf = new Map<string, string>();
    for (const r of evaluation.resources) {
        if (r.type === "pulumi:providers:kubernetes") clusterOf.set(r.name, String(reveal(r.inputs.clusterIdentifier) ?? r.name));
    }
    return evaluation.resources.filter(isKubernetesObject).map((resource) => {
        const cluster = (resource.provider && clusterOf.get(resource.provider)) ?? "default";
        const toObject = (inputs: Record<string, unknown>) => {
            const obj = { ...inputs };
            // Pulumi-only input, not part of the Kubernetes object.
            delete obj.compat;
            return obj;
        };
        return { cluster, resource, object: toObject(reveal(resource.inputs) as Record<string, unknown>), redacted: toObject(redactedInputs(resource)) };
    });
}

/** The resources a failed evaluation had registered before it failed (see `evaluate`). */
export const registeredBeforeFailure = (err: unknown): CapturedResource[] | undefined => (err as { registered?: CapturedResource[] })?.registered;

/** Resources other than the root stack: what "no resource was declared" is about. */
export const declaredResources = (evaluation: Pick<Evaluation, "resources">) => evaluation.resources.filter((r) => r.type !== STACK_RESOURCE_TYPE);

/** Fields of an Argo CD cluster Secret that are not secret: the credentials are only in `config`. */
const CLUSTER_SECRET_PUBLIC_FIELDS = ["name", "server", "namespaces", "clusterResources", "project"];

/**
 * Redacted inputs; an Argo CD cluster Secret's stringData is secret as a whole (it carries the
 * credentials in `config`), but its name and server are not, and a review needs to see them.
 */
function redactedInputs(r: CapturedResource): Record<string, unknown> {
    const redacted = redact(r.inputs) as Record<string, any>;
    const labels = (reveal(r.inputs.metadata) as Record<string, any> | undefined)?.labels;
    if (r.type === "kubernetes:core/v1:Secret" && labels?.["argocd.argoproj.io/secret-type"] === "cluster" && redacted.stringData) {
        const revealed = reveal(r.inputs.stringData) as Record<string, unknown>;
        for (const field of CLUSTER_SECRET_PUBLIC_FIELDS) if (field in revealed) redacted.stringData[field] = revealed[field];
    }
    return redacted;
}

/** The resources.json view: one object per resource with its options, secrets redacted. */
export function resourcesJson(evaluation: Evaluation): Array<Record<string, unknown>> {
    return evaluation.resources.map((r) => ({ type: r.type, name: r.name, custom: r.custom, parent: r.parent ?? null, provider: r.provider ?? null, protect: r.protect, retainOnDelete: r.retainOnDelete, inputs: redactedInputs(r) }));
}
