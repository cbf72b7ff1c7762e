/**
 * `npm run tenant -- <add|list|remove>`: registers, lists and removes the tenant clusters of a
 * stack. Edits keep the stack file's comments and formatting byte for byte, and the resulting
 * configuration is checked with the project's own loader (`validateConfig`) before anything is
 * written. Credentials go to `pulumi config set --secret` on standard input, never to the terminal.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import * as YAML from "yaml";
import { type CredentialMode, type RawConfig, type SecretShapes, CONFIG_KEYS, ConfigError, DEFAULT_AGENT_NAMESPACE, PROJECT, credentialShape, isLoopbackHost, notificationSecretsShape, parseConfigValue, stepIndexes, suggestion, unknownConfigKeys, validateConfig } from "../stacks/config";
import { UserError, requireStack } from "./cli";
import { ROOT, SECRET_PREFIX, readStackConfig } from "./evaluate";
import { withStackLock, writeFileAtomic } from "./stack-lock";
import { formatTable } from "./table";

export const USAGE = `Usage: npm run tenant -- <command> [options]

  add     --stack STACK --name NAME --kubeconfig FILE --server URL --ring RING --region REGION
          [--env ENV] [--namespace NS ...] [--label KEY=VALUE ...]
          [--credentials bootstrap|token] [--context NAME]
  list    --stack STACK
  remove  --stack STACK --name NAME [--decommission]

Every command takes --project-root DIR (default: this repository). Edits lock the stack file
(Pulumi.<stack>.yaml.lock) and replace it atomically, so commands can run at the same time.
add needs the Pulumi CLI: it writes the entry only together with the stored credential.

Examples:
  npm run tenant -- add --stack prod --name acme --kubeconfig ./acme.yaml \
      --server https://acme.k3s.example.net:6443 --ring canary --region eu-west
  npm run tenant -- list --stack prod
  npm run tenant -- remove --stack prod --name acme --decommission
`;

/** A refusal with a message for the user (never containing credential content). */
export class CommandError extends Error {
    constructor(readonly problems: string[]) {
        super(problems.join("\n"));
        this.name = "CommandError";
    }
}

class UsageError extends Error {}

const TENANTS_KEY = `${PROJECT}:tenants`;
const CREDENTIALS_KEY = `${PROJECT}:tenantCredentials`;

/** The credential fields each mode stores in `tenantCredentials.<tenant>`. */
const CREDENTIAL_FIELDS: Record<CredentialMode, string[]> = { bootstrap: ["kubeconfig"], token: ["bearerToken", "caData"] };

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** Where a YAML error is, without the parser's excerpt or message (both can quote the file's content). */
const yamlErrorAt = (err: YAML.YAMLError): string => `${err.code}${err.linePos ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : ""}`;

// ---------------------------------------------------------------------------------------------
// Stack file edits

/** The layout of the stack files; every edit first checks these options reproduce the file exactly. */
const STACK_FILE_FORMAT: YAML.ToStringOptions = { lineWidth: 0, flowCollectionPadding: false };

/** A tenant entry as written under `agentfleet:tenants` (optional fields only when given). */
export interface TenantEntry {
    name: string;
    server: string;
    env?: string;
    ring: string;
    region: string;
    credentials: CredentialMode;
    labels?: Record<string, string>;
    namespaces?: string[];
}

function parseYaml(text: string): YAML.Document {
    const doc = YAML.parseDocument(text);
    if (doc.errors.length > 0) throw new CommandError([`is not valid YAML (${yamlErrorAt(doc.errors[0])})`]);
    return doc;
}

/** Applies `edit` to the stack file's document and returns the new text, or refuses to reformat. */
function editStackText(text: string, edit: (config: YAML.YAMLMap, doc: YAML.Document) => void): string {
    const doc = parseYaml(text);
    const rendered = doc.toString(STACK_FILE_FORMAT);
    if (rendered !== text) {
        const [before, after] = [text.split("\n"), rendered.split("\n")];
        const line = before.findIndex((l, i) => l !== after[i]) + 1;
        throw new CommandError([`cannot be edited without reformatting it (line ${line} would change); make this change by hand`]);
    }
    const config = doc.get("config", true);
    if (!YAML.isMap(config)) throw new CommandError(["has no config: map"]);
    edit(config, doc);
    return doc.toString(STACK_FILE_FORMAT);
}

function tenantsOf(config: YAML.YAMLMap): YAML.YAMLSeq {
    const tenants = config.get(TENANTS_KEY, true);
    if (!YAML.isSeq(tenants)) throw new CommandError([`${TENANTS_KEY}: is not a list of tenants`]);
    return tenants;
}

function tenantIndex(tenants: YAML.YAMLSeq, name: string): number {
    const names = tenants.items.map((item) => (YAML.isMap(item) ? String(item.get("name")) : ""));
    const index = names.indexOf(name);
    if (index < 0) throw new CommandError([`${TENANTS_KEY}: no tenant is named ${JSON.stringify(name)}${suggestion(name, names)} (tenants: ${names.join(", ")})`]);
    return index;
}

/** Appends `entry` to `agentfleet:tenants`; everything else stays byte-identical. */
export function addTenant(stackText: string, entry: TenantEntry): string {
    return editStackText(stackText, (config, doc) => {
        if (config.has(TENANTS_KEY)) tenantsOf(config).add(doc.createNode(entry));
        else config.set(TENANTS_KEY, doc.createNode([entry]));
    });
}

/** Removes the tenant's entry and its `tenantCredentials` entry. */
export function removeTenant(stackText: string, name: string): string {
    return editStackText(stackText, (config) => {
        const tenants = tenantsOf(config);
        tenants.delete(tenantIndex(tenants, name));
        const credentials = config.get(CREDENTIALS_KEY, true);
        if (YAML.isMap(credentials)) credentials.delete(name);
    });
}

/** Marks the tenant `decommissioned: true` (its credentials stay: the provider still needs them). */
export function decommissionTenant(stackText: string, name: string): string {
    return editStackText(stackText, (config) => {
        const tenants = tenantsOf(config);
        const entry = tenants.items[tenantIndex(tenants, name)];
        if (!YAML.isMap(entry)) return; // tenantIndex finds maps only
        const current = entry.get("decommissioned");
        if (current === true || current === "true") throw new CommandError([`tenant ${name} is already decommissioned; after its pulumi up, remove the entry with \`remove\` (without --decommission)`]);
        entry.set("decommissioned", true);
    });
}

// ---------------------------------------------------------------------------------------------
// Validation with the project's loader

/**
 * Checks `stackText` as the stack's configuration with `validateConfig`, the way `loadConfig`
 * sees it under `pulumi up`: project defaults from Pulumi.yaml, structures as JSON, and secure
 * values by shape only. `pendingSecrets` (e.g. `tenantCredentials.acme.kubeconfig`) count as set:
 * they are stored right after the file is written.
 */
export function checkStack(stack: string, stackText: string, root: string, pendingSecrets: string[] = []): ReturnType<typeof validateConfig> {
    const parsed: unknown = parseYaml(stackText).toJS();
    const fileConfig: Record<string, unknown> = isObject(parsed) && isObject(parsed.config) ? parsed.config : {};
    const isSecureValue = (v: unknown) => isObject(v) && Object.keys(v).length === 1 && "secure" in v;
    for (const secretPath of pendingSecrets) {
        const keys = `${PROJECT}:${secretPath}`.split(".");
        let node: Record<string, unknown> | undefined = fileConfig;
        for (const key of keys.slice(0, -1)) {
            // Inside a whole-key secret nothing can be added; `structured` below reports it.
            if (isSecureValue(node[key])) node = undefined;
            if (!node) break;
            node = node[key] = isObject(node[key]) ? node[key] : {};
        }
        if (node) node[keys[keys.length - 1]] = { secure: "pending" };
    }
    const { config } = readStackConfig(stack, { root, config: fileConfig });

    // From here on as in loadConfig, which gets the same strings from the Pulumi CLI.
    const problems: string[] = [];
    const secretObject = (key: string): unknown => {
        const text = config[`${PROJECT}:${key}`];
        if (text === undefined) return undefined;
        if (text.startsWith(SECRET_PREFIX)) {
            problems.push(`${PROJECT}:${key}: is encrypted as one value, so its entries cannot be checked; store each with \`pulumi config set --secret --path '${key}.<entry>'\``);
            return undefined;
        }
        return parseConfigValue(key, text, problems, true);
    };
    const raw: RawConfig = {};
    for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
        const text = config[`${PROJECT}:${key}`];
        if (!spec.secret && text !== undefined) (raw as Record<string, unknown>)[key] = parseConfigValue(key, text, problems);
    }
    // Secure values are placeholder strings here: only which fields are set matters.
    const credentials = secretObject("tenantCredentials");
    const notificationSecrets = secretObject("notificationSecrets");
    const secrets: SecretShapes = {
        hubKubeconfig: (config[`${PROJECT}:hubKubeconfig`] ?? "").startsWith(SECRET_PREFIX),
        tenantCredentials: credentials === undefined ? undefined : credentialShape(credentials),
        notificationSecrets: notificationSecrets === undefined ? undefined : notificationSecretsShape(notificationSecrets),
    };
    if (problems.length > 0) throw new ConfigError(problems);
    return validateConfig(stack, raw, secrets, unknownConfigKeys(Object.keys(config)));
}

// ---------------------------------------------------------------------------------------------
// Kubeconfig

export interface CheckedKubeconfig {
    /** The context the tenant is registered from. */
    context: string;
    /** The file holds only this context (and its cluster and user), as its current context: it can be stored as it is. */
    singleContext: boolean;
    /** The kubeconfig's own server, when it was a loopback address replaced by `--server`. */
    loopbackServer?: string;
    /** Values to store under `tenantCredentials.<tenant>.<field>`. Secret: never print them. */
    secrets: Record<string, string>;
}

const FILE_REFERENCES = ["client-certificate", "client-key", "tokenFile"];

/**
 * Checks a kubeconfig for registering a tenant and returns what to store. The chosen context
 * (default: current-context) must name a cluster with a server and embedded CA data, and a user
 * whose credentials are embedded too (CI cannot read file paths). A loopback server, the k3s
 * default, is replaced by `server`; any other server must equal it.
 */
export function parseKubeconfig(text: string, options: { server: string; credentials: CredentialMode; context?: string }): CheckedKubeconfig {
    const doc = YAML.parseDocument(text);
    if (doc.errors.length > 0) throw new CommandError([`is not valid YAML (${yamlErrorAt(doc.errors[0])})`]);
    let kubeconfig: unknown;
    try {
        kubeconfig = doc.toJS();
    } catch {
        throw new CommandError(["is not valid YAML (it uses an alias it does not define)"]);
    }
    if (!isObject(kubeconfig)) throw new CommandError(["is not a kubeconfig (expected a map with clusters, contexts and users)"]);
    const named = (list: unknown, field: string) => new Map<string, unknown>(Array.isArray(list) ? list.filter((e) => isObject(e) && typeof e.name === "string").map((e) => [e.name, e[field]]) : []);
    const [contexts, clusters, users] = [named(kubeconfig.contexts, "context"), named(kubeconfig.clusters, "cluster"), named(kubeconfig.users, "user")];
    const contextNames = [...contexts.keys()];

    const current = typeof kubeconfig["current-context"] === "string" ? kubeconfig["current-context"] : undefined;
    const contextName = options.context ?? current;
    if (!contextName) throw new CommandError([`has no current-context; choose one with --context (contexts: ${contextNames.join(", ") || "none"})`]);
    const context = contexts.get(contextName);
    if (!isObject(context)) throw new CommandError([`has no context ${JSON.stringify(contextName)}${suggestion(contextName, contextNames)} (contexts: ${contextNames.join(", ") || "none"})`]);

    const problems: string[] = [];
    const clusterName = String(context.cluster ?? "");
    const userName = String(context.user ?? "");
    const cluster = clusters.get(clusterName);
    const user = users.get(userName);
    if (!isObject(cluster)) problems.push(`context ${JSON.stringify(contextName)} uses cluster ${JSON.stringify(clusterName)}, which the kubeconfig does not define`);
    if (!isObject(user)) problems.push(`context ${JSON.stringify(contextName)} uses user ${JSON.stringify(userName)}, which the kubeconfig does not define`);

    let server: string | undefined;
    let loopbackServer: string | undefined;
    const caData = isObject(cluster) ? cluster["certificate-authority-data"] : undefined;
    if (isObject(cluster)) {
        const embed = "embed it with `kubectl config view --raw --flatten --minify`";
        if (typeof cluster.server !== "string" || cluster.server === "") problems.push(`cluster ${JSON.stringify(clusterName)} has no server`);
        else server = cluster.server;
        if (typeof caData !== "string" || caData === "") {
            problems.push(
                cluster["certificate-authority"]
                    ? `cluster ${JSON.stringify(clusterName)} names its CA by file path (certificate-authority), which CI cannot read; ${embed}`
                    : `cluster ${JSON.stringify(clusterName)} has no CA (certificate-authority-data): the hub needs it to verify the tenant's API server`,
            );
        } else if (!Buffer.from(caData, "base64").toString("utf8").includes("-----BEGIN CERTIFICATE-----")) {
            problems.push(`cluster ${JSON.stringify(clusterName)}: certificate-authority-data is not a base64-encoded PEM certificate`);
        }
        if (server) {
            let url: URL | undefined;
            try {
                url = new URL(server);
            } catch {
                problems.push(`cluster ${JSON.stringify(clusterName)}: server ${JSON.stringify(server)} is not a URL`);
            }
            if (url && isLoopbackHost(url.hostname)) loopbackServer = server;
            else if (url && sameServer(server, options.server) === false) {
                problems.push(`server ${server} differs from --server ${options.server}; the kubeconfig must be the registered cluster's (only a loopback server, the k3s default, is replaced)`);
            }
        }
    }
    if (isObject(user)) {
        for (const field of FILE_REFERENCES) {
            if (user[field]) problems.push(`user ${JSON.stringify(userName)} reads ${field} from a file, which CI cannot read; embed it with \`kubectl config view --raw --flatten --minify\``);
        }
        if (options.credentials === "token" && (typeof user.token !== "string" || user.token === "")) {
            problems.push(`user ${JSON.stringify(userName)} has no token, which --credentials token stores as bearerToken; the k3s admin kubeconfig authenticates with a client certificate: use --credentials bootstrap`);
        }
    }
    if (problems.length > 0 || !isObject(cluster) || !isObject(user)) throw new CommandError(problems);

    const singleContext = contexts.size === 1 && clusters.size === 1 && users.size === 1 && current === contextName;
    const secrets: Record<string, string> =
        options.credentials === "token"
            ? { bearerToken: String(user.token), caData: String(caData) }
            : {
                  kubeconfig: YAML.stringify(
                      {
                          apiVersion: "v1",
                          kind: "Config",
                          clusters: [{ name: clusterName, cluster: { ...cluster, server: loopbackServer ? options.server : server } }],
                          contexts: [{ name: contextName, context }],
                          users: [{ name: userName, user }],
                          "current-context": contextName,
                      },
                      { lineWidth: 0 },
                  ),
              };
    return { context: contextName, singleContext, ...(loopbackServer ? { loopbackServer } : {}), secrets };
}

/** Whether two server URLs name the same endpoint; undefined when one is not a URL (the loader reports that). */
function sameServer(a: string, b: string): boolean | undefined {
    try {
        const norm = (s: string) => new URL(s).href.replace(/\/$/, "");
        return norm(a) === norm(b);
    } catch {
        return undefined;
    }
}

// ---------------------------------------------------------------------------------------------
// Storing credentials

/** Quotes for a POSIX shell, only when needed. */
export const shellQuote = (s: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

const credentialKey = (name: string, field: string) => `tenantCredentials.${name}.${field}`;
const pulumiSetArgs = (stack: string, name: string, field: string) => ["config", "set", "--stack", stack, "--secret", "--path", credentialKey(name, field)];
const pulumiSetCommand = (stack: string, name: string, field: string) => `pulumi config set --stack ${shellQuote(stack)} --secret --path '${credentialKey(name, field)}'`;

/** `sed` substitution replacing one server URL by another, literally. */
const sedReplace = (from: string, to: string) => `sed ${shellQuote(`s#${from.replace(/[\\.[\]*^$#]/g, "\\$&")}#${to.replace(/[\\&#]/g, "\\$&")}#`)}`;

/**
 * Shell commands that store the same credential values from the kubeconfig file itself, for a
 * user without the Pulumi CLI here (they read the file; they never contain credential content).
 */
export function credentialCommands(args: { stack: string; name: string; credentials: CredentialMode; kubeconfigPath: string; server: string; checked: CheckedKubeconfig }): string[] {
    const { stack, name, checked } = args;
    const file = shellQuote(args.kubeconfigPath);
    const minified = `kubectl config view --raw --minify --flatten --kubeconfig ${file} --context ${shellQuote(checked.context)}`;
    if (args.credentials === "token") {
        return [
            [`${minified} -o jsonpath='{.users[0].user.token}'`, pulumiSetCommand(stack, name, "bearerToken")].join(" | "),
            [`${minified} -o jsonpath='{.clusters[0].cluster.certificate-authority-data}'`, pulumiSetCommand(stack, name, "caData")].join(" | "),
        ];
    }
    const rewrite = checked.loopbackServer ? sedReplace(checked.loopbackServer, args.server) : undefined;
    if (checked.singleContext && !rewrite) return [`${pulumiSetCommand(stack, name, "kubeconfig")} < ${file}`];
    const source = checked.singleContext ? [`${rewrite} ${file}`] : [minified, ...(rewrite ? [rewrite] : [])];
    return [[...source, pulumiSetCommand(stack, name, "kubeconfig")].join(" | ")];
}

type PulumiResult = { status: "stored" } | { status: "missing" } | { status: "failed"; detail: string };

/** Runs `pulumi` with `input` on standard input; "missing" when the CLI is not on PATH. */
function runPulumi(args: string[], input: string, cwd: string, env: NodeJS.ProcessEnv): Promise<PulumiResult> {
    return new Promise((resolve) => {
        const child = spawn("pulumi", args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ENOENT" ? { status: "missing" } : { status: "failed", detail: err.message }));
        child.on("close", (code) => resolve(code === 0 ? { status: "stored" } : { status: "failed", detail: output.trim() || `exit code ${code}` }));
        // A CLI that exits without reading its input closes the pipe; its exit status reports why.
        child.stdin.on("error", () => undefined);
        child.stdin.end(input);
    });
}

// ---------------------------------------------------------------------------------------------
// Commands

export interface CommandIO {
    stdout(text: string): void;
    stderr(text: string): void;
    /** Environment of the Pulumi CLI; its PATH decides whether the CLI is found. */
    env: NodeJS.ProcessEnv;
    /** Directory relative paths are given from (`npm run` itself runs in the project root). */
    cwd: string;
}

const defaultIO = (): CommandIO => ({
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    cwd: process.env.INIT_CWD ?? process.cwd(),
});

const common = { stack: { type: "string" }, "project-root": { type: "string" } } as const;
const OPTIONS = {
    add: {
        ...common,
        name: { type: "string" },
        kubeconfig: { type: "string" },
        server: { type: "string" },
        ring: { type: "string" },
        region: { type: "string" },
        env: { type: "string" },
        namespace: { type: "string", multiple: true },
        label: { type: "string", multiple: true },
        credentials: { type: "string" },
        context: { type: "string" },
    },
    list: { ...common },
    remove: { ...common, name: { type: "string" }, decommission: { type: "boolean" } },
} as const;

function required(values: Record<string, unknown>, ...names: string[]): void {
    const missing = names.filter((n) => values[n] === undefined || values[n] === "");
    if (missing.length > 0) throw new UsageError(`missing ${missing.map((n) => `--${n}`).join(", ")}`);
}

interface StackFile {
    stack: string;
    root: string;
    file: string;
    fileName: string;
    text: string;
}

function openStack(stack: string, projectRoot: string | undefined, cwd: string): StackFile {
    const root = projectRoot ? path.resolve(cwd, projectRoot) : ROOT;
    requireStack(stack, root);
    const fileName = `Pulumi.${stack}.yaml`;
    const file = path.join(root, fileName);
    return { stack, root, file, fileName, text: fs.readFileSync(file, "utf8") };
}

/** Whether an executable `pulumi` is on the PATH of `env`. */
function pulumiOnPath(env: NodeJS.ProcessEnv): boolean {
    return (env.PATH ?? "").split(path.delimiter).some((dir) => {
        if (!dir) return false;
        try {
            fs.accessSync(path.join(dir, "pulumi"), fs.constants.X_OK);
            return true;
        } catch {
            return false;
        }
    });
}

/** The credential fields already stored (as secure values) for the tenant in the stack file. */
function storedCredentialFields(stackText: string, name: string): string[] {
    const entry = YAML.parse(stackText)?.config?.[CREDENTIALS_KEY]?.[name];
    return isObject(entry) ? Object.keys(entry).filter((f) => isObject(entry[f]) && "secure" in (entry[f] as object)) : [];
}

/** Runs a stack-file step, naming the file in its problems. */
function inFile<T>(fileName: string, step: () => T): T {
    try {
        return step();
    } catch (err) {
        if (err instanceof CommandError) throw new CommandError(err.problems.map((p) => `${fileName}: ${p}`));
        throw err;
    }
}

/** Validates the stack file's text (`edited`: a result not written yet); ConfigError becomes a refusal listing the loader's problems. */
function checkText(target: StackFile, text: string, edited: boolean, pendingSecrets: string[] = []): ReturnType<typeof checkStack> {
    try {
        return inFile(target.fileName, () => checkStack(target.stack, text, target.root, pendingSecrets));
    } catch (err) {
        if (err instanceof ConfigError) throw new CommandError([`${target.fileName} ${edited ? "would not be" : "is not"} a valid configuration:`, ...err.problems.map((p) => `  - ${p}`)]);
        throw err;
    }
}

const stepLabel = (cfg: ReturnType<typeof checkStack>, index: number): string => {
    const matches = stepIndexes(cfg.tenants, cfg.steps)[index];
    return matches.map((s) => `${s + 1} (${cfg.steps[s].name})`).join(", ");
};

type AddValues = ReturnType<typeof parseAdd>;
const parseAdd = (argv: string[]) => parseArgs({ args: argv, options: OPTIONS.add, strict: true }).values;

async function add(argv: string[], io: CommandIO): Promise<number> {
    const values = parseAdd(argv);
    required(values, "stack", "name", "kubeconfig", "server", "ring", "region");
    const credentials = (values.credentials ?? "bootstrap") as CredentialMode;
    if (!(credentials in CREDENTIAL_FIELDS)) throw new UsageError(`--credentials must be bootstrap or token, not ${JSON.stringify(values.credentials)}`);
    const labels: Record<string, string> = {};
    for (const label of values.label ?? []) {
        const eq = label.indexOf("=");
        if (eq <= 0) throw new UsageError(`--label ${JSON.stringify(label)} is not KEY=VALUE`);
        if (label.slice(0, eq) in labels) throw new UsageError(`--label ${label.slice(0, eq)} is given twice`);
        labels[label.slice(0, eq)] = label.slice(eq + 1);
    }
    const name = values.name!;
    const server = values.server!;
    const root = values["project-root"] ? path.resolve(io.cwd, values["project-root"]) : ROOT;
    requireStack(values.stack!, root);
    return withStackLock(path.join(root, `Pulumi.${values.stack}.yaml`), () => addLocked(values, { name, server, credentials, labels }, io));
}

async function addLocked(values: AddValues, given: { name: string; server: string; credentials: CredentialMode; labels: Record<string, string> }, io: CommandIO): Promise<number> {
    const { name, server, credentials, labels } = given;
    const target = openStack(values.stack!, values["project-root"], io.cwd);
    const entry: TenantEntry = {
        name,
        server,
        ...(values.env !== undefined ? { env: values.env } : {}),
        ring: values.ring!,
        region: values.region!,
        credentials,
        ...(Object.keys(labels).length > 0 ? { labels } : {}),
        ...(values.namespace ? { namespaces: values.namespace } : {}),
    };

    // Both checks run before anything is written, and their problems are reported together.
    const problems: string[] = [];
    const attempt = <T>(step: () => T): T | undefined => {
        try {
            return step();
        } catch (err) {
            if (!(err instanceof CommandError)) throw err;
            problems.push(...err.problems);
            return undefined;
        }
    };
    const newText = attempt(() => inFile(target.fileName, () => addTenant(target.text, entry)));
    const cfg = newText === undefined ? undefined : attempt(() => checkText(target, newText, true, CREDENTIAL_FIELDS[credentials].map((f) => credentialKey(name, f))));
    const kubeconfigPath = path.resolve(io.cwd, values.kubeconfig!);
    const checked = attempt(() => {
        if (!fs.existsSync(kubeconfigPath) || !fs.statSync(kubeconfigPath).isFile()) throw new CommandError([`${values.kubeconfig}: no such kubeconfig file`]);
        return inFile(values.kubeconfig!, () => parseKubeconfig(fs.readFileSync(kubeconfigPath, "utf8"), { server, credentials, context: values.context }));
    });
    if (problems.length > 0 || !newText || !cfg || !checked) throw new CommandError([`not adding tenant ${name}:`, ...problems]);

    const fields = CREDENTIAL_FIELDS[credentials];
    const alreadyStored = fields.every((f) => storedCredentialFields(target.text, name).includes(f));
    const notes: string[] = [];
    if (checked.loopbackServer) {
        const host = new URL(server).hostname.replace(/^\[|\]$/g, "");
        notes.push(
            `The kubeconfig's server ${checked.loopbackServer} is a loopback address (the k3s default); the stored credential uses ${server} instead.`,
            `The k3s serving certificate must carry ${host} as a SAN, or the hub fails TLS verification: start k3s with --tls-san ${host} (tls-san in /etc/rancher/k3s/config.yaml) and restart it.`,
        );
    }

    // The entry is written only together with its credential: an entry without one makes every
    // command refuse the stack until someone stores it.
    if (!alreadyStored && !pulumiOnPath(io.env)) {
        // Show the path as typed when the command is run from where it was typed.
        const shownPath = path.isAbsolute(values.kubeconfig!) || io.cwd === target.root ? values.kubeconfig! : kubeconfigPath;
        const commands = credentialCommands({ stack: target.stack, name, credentials, kubeconfigPath: shownPath, server, checked });
        const inRoot = io.cwd === target.root ? "" : `cd ${shellQuote(target.root)} && `;
        throw new CommandError([
            `not adding tenant ${name}: the Pulumi CLI is not on PATH, so its credential cannot be stored, and ${target.fileName} gets the entry only together with the credential. Nothing was written.`,
            "Install the Pulumi CLI (https://www.pulumi.com/docs/install/) and run this command again, or store the credential where the CLI is:",
            ...commands.map((c) => `  ${inRoot}${c}`),
            "and then run this command again: it adds the entry and keeps the stored credential.",
            `To undo a stored credential instead: pulumi config rm --stack ${shellQuote(target.stack)} --path '${`tenantCredentials.${name}`}'`,
            ...notes,
        ]);
    }
    writeFileAtomic(target.file, newText);
    notes.unshift(`Added tenant ${name} to ${target.fileName}: ring ${entry.ring}, rollout step ${stepLabel(cfg, cfg.tenants.length - 1)}.`);
    if (alreadyStored) {
        notes.push(`Kept the credential already stored in ${fields.map((f) => `${PROJECT}:${credentialKey(name, f)}`).join(" and ")}; to replace it, run this command where the Pulumi CLI is after removing the tenant.`);
    } else {
        for (const [field, value] of Object.entries(checked.secrets)) {
            const result = await runPulumi(pulumiSetArgs(target.stack, name, field), value, target.root, io.env);
            if (result.status !== "stored") {
                writeFileAtomic(target.file, target.text);
                throw new CommandError([`\`${pulumiSetCommand(target.stack, name, field)}\` failed, so ${target.fileName} is restored as it was:`, result.status === "missing" ? "the Pulumi CLI is not on PATH" : result.detail]);
            }
            notes.push(`Stored the credential: ${pulumiSetCommand(target.stack, name, field)}`);
        }
    }
    io.stdout([...notes, `Next: pulumi preview --stack ${shellQuote(target.stack)}`].join("\n") + "\n");
    return 0;
}

function list(argv: string[], io: CommandIO): number {
    const { values } = parseArgs({ args: argv, options: OPTIONS.list, strict: true });
    required(values, "stack");
    const target = openStack(values.stack!, values["project-root"], io.cwd);
    const cfg = checkText(target, target.text, false);
    const steps = stepIndexes(cfg.tenants, cfg.steps);
    const rows = cfg.tenants.map((t, i) => [
        t.name,
        t.env,
        t.ring,
        t.region,
        t.credentials,
        t.decommissioned ? "decommissioned" : t.paused ? "paused" : "active",
        // Decommissioned tenants are not in the ApplicationSet.
        t.decommissioned ? "-" : steps[i].map((s) => `${s + 1} ${cfg.steps[s].name}`).join(", "),
    ]);
    io.stdout(formatTable(["TENANT", "ENV", "RING", "REGION", "CREDENTIALS", "STATE", "STEP"], rows));
    if (cfg.emergencyRollout) io.stdout(`emergencyRollout is on: Argo CD runs one step over every active tenant at 100% instead of these steps.\n`);
    return 0;
}

async function remove(argv: string[], io: CommandIO): Promise<number> {
    const { values } = parseArgs({ args: argv, options: OPTIONS.remove, strict: true });
    required(values, "stack", "name");
    const root = values["project-root"] ? path.resolve(io.cwd, values["project-root"]) : ROOT;
    requireStack(values.stack!, root);
    return withStackLock(path.join(root, `Pulumi.${values.stack}.yaml`), () => removeLocked(values, io));
}

function removeLocked(values: { stack?: string; name?: string; decommission?: boolean; "project-root"?: string }, io: CommandIO): number {
    const name = values.name!;
    const target = openStack(values.stack!, values["project-root"], io.cwd);
    const newText = inFile(target.fileName, () => (values.decommission ? decommissionTenant(target.text, name) : removeTenant(target.text, name)));
    const after = checkText(target, newText, true);
    writeFileAtomic(target.file, newText);

    // The entry as it was (the file parsed: the edit above succeeded), for what happens next.
    const entries: unknown[] = YAML.parse(target.text).config[TENANTS_KEY];
    const tenant = entries.find((e): e is Record<string, unknown> => isObject(e) && e.name === name)!;
    const bootstrap = tenant.credentials === "bootstrap";

    const up = `pulumi up --stack ${shellQuote(target.stack)}`;
    const lines: string[] = [];
    if (values.decommission) {
        lines.push(
            `Marked tenant ${name} decommissioned in ${target.fileName}: the cluster is gone for good. On the next ${up}:`,
            `  - the hub's Argo CD cluster Secret cluster-${name} is deleted and the tenant leaves the rollout;`,
            bootstrap
                ? `  - its provider gets deleteUnreachable, so its resources on the tenant leave the Pulumi state without contacting the cluster.`
                : `  - Pulumi manages nothing on the tenant (credentials: token), so nothing else changes.`,
            `After that ${up} succeeds, remove the entry: npm run tenant -- remove --stack ${target.stack} --name ${name}`,
        );
    } else if (tenant.decommissioned === true || tenant.decommissioned === "true") {
        lines.push(`Removed decommissioned tenant ${name} and its credentials from ${target.fileName}. Run ${up} only after the decommissioning pulumi up has run; before it, Pulumi would still try to reach the cluster.`);
    } else {
        const namespaces = Array.isArray(tenant.namespaces) ? tenant.namespaces.join(", ") : DEFAULT_AGENT_NAMESPACE;
        const keepsApplication = ["create-only", "create-update"].includes(after.deploy.applicationsSync);
        lines.push(
            `Removed tenant ${name} and its credentials from ${target.fileName}. On the next ${up}:`,
            `  - the hub's Argo CD cluster Secret cluster-${name} is deleted: Argo CD stops deploying to ${tenant.server};`,
            bootstrap
                ? `  - on the tenant, the argocd-manager ServiceAccount, its token Secret, Roles, RoleBindings, ClusterRole and ClusterRoleBinding are deleted (Pulumi reaches the cluster with the credential kept in its state);`
                : `  - Pulumi manages nothing on the tenant (credentials: token); revoke the pre-issued token there if it is no longer needed;`,
            `  - the agent namespaces (${namespaces}) are retained and the workloads in them keep running;`,
            keepsApplication
                ? `  - applicationsSync ${after.deploy.applicationsSync} keeps the tenant's generated Application on the hub; delete it by hand (preserveResourcesOnDeletion keeps the workloads).`
                : `  - the ApplicationSet deletes the tenant's generated Application (preserveResourcesOnDeletion keeps the workloads).`,
            `If the cluster is already gone, restore the entry and use --decommission instead: Pulumi cannot delete objects on an unreachable cluster.`,
        );
    }
    io.stdout(lines.join("\n") + "\n");
    return 0;
}

const COMMANDS: Record<string, (argv: string[], io: CommandIO) => number | Promise<number>> = { add, list, remove };

/** Runs the CLI; returns the exit code (0 done, 1 refused or failed, 2 usage error). */
export async function main(argv: string[], io: CommandIO = defaultIO()): Promise<number> {
    const [command, ...rest] = argv;
    if (command === undefined || command === "--help" || command === "-h" || rest.includes("--help")) {
        (command === undefined ? io.stderr : io.stdout)(USAGE);
        return command === undefined ? 2 : 0;
    }
    try {
        const run = COMMANDS[command];
        if (!run) throw new UsageError(`unknown command ${JSON.stringify(command)}${suggestion(command, Object.keys(COMMANDS))}`);
        return await run(rest, io);
    } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? "";
        if (err instanceof UsageError || code.startsWith("ERR_PARSE_ARGS")) {
            io.stderr(`tenant ${command}: ${(err as Error).message}\n\n${USAGE}`);
            return 2;
        }
        if (err instanceof CommandError) {
            io.stderr(`tenant ${command}: ${err.problems.join("\n")}\n`);
            return 1;
        }
        if (err instanceof UserError) {
            io.stderr(`tenant ${command}: ${err.message}\n`);
            return 1;
        }
        throw err;
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => (process.exitCode = code),
        (err) => {
            process.stderr.write(`${(err as Error).stack ?? err}\n`);
            process.exitCode = 1;
        },
    );
}
