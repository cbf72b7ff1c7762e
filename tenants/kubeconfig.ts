/**
 * Checks a tenant's (and the hub's) kubeconfig and extracts what a tenant stack's run uses from it.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { type CredentialMode, hubKubeconfigProblem, isLoopbackHost, kubeconfigTexts, sameServer, singleContextKubeconfig, suggestion } from "../stacks/config";
import { CommandError, isObject, yamlErrorAt } from "./stack-file";

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
    if (doc.errors.length > 0) throw new CommandError([`is not a valid kubeconfig: ${yamlErrorAt(doc.errors[0])}`]);
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
            // A --server that is not a URL is the loader's to report.
            else if (url && URL.canParse(options.server) && !sameServer(server, options.server)) {
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

// ---------------------------------------------------------------------------------------------
// The kubeconfig of an onboarding stack's run

/**
 * The one context of the kubeconfig file an onboarding stack's run gets, and the context its
 * provider asks for: a run whose KUBECONFIG is some other file fails on the missing context
 * instead of reaching whatever cluster that file's current context names.
 */
export const ONBOARDING_CONTEXT = "agentfleet-tenant";

/** The context naming the hub in a tenant stack's run (its cluster Secret is registered there). */
export const HUB_CONTEXT = "agentfleet-hub";

/** The environment of an onboarding stack's Pulumi run: KUBECONFIG, the tenant's admin kubeconfig file. */
export interface TenantKubeconfigEnv {
    KUBECONFIG: string;
}

/**
 * The hub's kubeconfig for a tenant stack's run: `file` (--hub-kubeconfig) or else the files of
 * KUBECONFIG in `env`, checked exactly as the hub stack checks its own run (hubKubeconfigProblem:
 * its context names agentfleet:hub.server), reduced to that one context. Only read; never stored.
 */
export function readHubKubeconfig(stack: string, hub: { server: string; context?: string }, file: string | undefined, env: NodeJS.ProcessEnv): string {
    const runEnv = file !== undefined ? { KUBECONFIG: file } : { KUBECONFIG: env.KUBECONFIG, HOME: env.HOME };
    const problem = hubKubeconfigProblem(stack, hub, runEnv);
    if (problem) throw new CommandError([`${problem} (a tenant stack registers its tenant on the hub: give the hub's kubeconfig with --hub-kubeconfig FILE, or in KUBECONFIG)`]);
    return singleContextKubeconfig(kubeconfigTexts(runEnv), hub.context);
}

/** Reads and checks a bootstrap tenant's admin kubeconfig file (the user's; only read), its problems naming the file. */
export function readTenantKubeconfig(file: string, options: { server: string; context?: string }): string {
    if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new CommandError([`${file}: no such kubeconfig file`]);
    try {
        return parseKubeconfig(fs.readFileSync(file, "utf8"), { ...options, credentials: "bootstrap" }).secrets.kubeconfig;
    } catch (err) {
        if (err instanceof CommandError) throw new CommandError(err.problems.map((p) => `${file}: ${p}`));
        throw err;
    }
}

type KubeconfigDoc = { clusters: Array<{ name: string; cluster: unknown }>; contexts: Array<{ name: string; context: { cluster: string; user: string } }>; users: Array<{ name: string; user: unknown }>; "current-context"?: string };

/**
 * The kubeconfig of one tenant stack's run: each given single-context kubeconfig (checked: the
 * tenant's admin one, the hub's) as one context named after its role, ONBOARDING_CONTEXT and
 * HUB_CONTEXT, its cluster and user renamed alike so two files' "default"s cannot collide. A
 * provider asking for a context the run was not given finds none, and reaches nothing.
 */
export function runKubeconfig(parts: { tenant?: string; hub?: string }): string {
    const merged: KubeconfigDoc = { clusters: [], contexts: [], users: [] };
    for (const [name, text] of [[ONBOARDING_CONTEXT, parts.tenant], [HUB_CONTEXT, parts.hub]] as const) {
        if (text === undefined) continue;
        const doc = YAML.parse(text) as KubeconfigDoc;
        if (doc.contexts.length !== 1) throw new Error(`runKubeconfig: expected one context, got ${doc.contexts.length}`);
        const context = doc.contexts[0].context;
        merged.clusters.push({ name, cluster: doc.clusters.find((c) => c.name === context.cluster)!.cluster });
        merged.users.push({ name, user: doc.users.find((u) => u.name === context.user)!.user });
        merged.contexts.push({ name, context: { cluster: name, user: name } });
        merged["current-context"] ??= name;
    }
    return YAML.stringify({ apiVersion: "v1", kind: "Config", ...merged }, { lineWidth: 0 });
}

/** A checked single-context kubeconfig (CheckedKubeconfig.secrets.kubeconfig) with its context renamed ONBOARDING_CONTEXT. */
export const onboardingKubeconfig = (kubeconfig: string): string => runKubeconfig({ tenant: kubeconfig });

const KUBECONFIG_FOLDER = /^agentfleet-kubeconfig-(\d+)-/;

/**
 * Removes the private kubeconfig folders (this user's) of runs that ended without removing them,
 * killed: the pid in the folder's name is gone. A folder whose pid lives (its run, or a process that
 * reused the pid) is kept. Returns the folders removed.
 */
export function sweepOrphanedKubeconfigs(tmp: string = os.tmpdir()): string[] {
    const removed: string[] = [];
    for (const entry of fs.readdirSync(tmp)) {
        const pid = Number(KUBECONFIG_FOLDER.exec(entry)?.[1]);
        if (!pid) continue;
        const dir = path.join(tmp, entry);
        try {
            if (fs.statSync(dir).uid !== process.getuid?.()) continue;
            process.kill(pid, 0);
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "ESRCH") continue;
            fs.rmSync(dir, { recursive: true, force: true });
            removed.push(dir);
        }
    }
    return removed;
}

/**
 * Runs `run` with the environment of an onboarding stack's Pulumi run: the kubeconfig (renamed to
 * ONBOARDING_CONTEXT) in a file of its own (mode 0600, in a fresh private folder named after this
 * process), removed when `run` ends, failed or not, and by the next run if this process is killed
 * first. The Kubernetes provider reads it from KUBECONFIG, so it is never a provider input, and
 * never in the stack's state. Each call has its own file: tenants run in parallel.
 */
export async function withTenantKubeconfig<T>(kubeconfig: string, run: (env: TenantKubeconfigEnv) => Promise<T>): Promise<T> {
    return withRunKubeconfig({ tenant: kubeconfig }, run);
}

/** withTenantKubeconfig for a tenant stack's run with any of its contexts (runKubeconfig): the tenant's admin one, the hub's, or both. */
export async function withRunKubeconfig<T>(parts: { tenant?: string; hub?: string }, run: (env: TenantKubeconfigEnv) => Promise<T>): Promise<T> {
    sweepOrphanedKubeconfigs();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `agentfleet-kubeconfig-${process.pid}-`));
    try {
        const file = path.join(dir, "kubeconfig");
        fs.writeFileSync(file, runKubeconfig(parts), { mode: 0o600, flag: "wx" });
        return await run({ KUBECONFIG: file });
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

// ---------------------------------------------------------------------------------------------
// Shell

/** Quotes for a POSIX shell, only when needed. */
export const shellQuote = (s: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
