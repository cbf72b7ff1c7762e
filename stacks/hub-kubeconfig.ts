/**
 * The hub's kubeconfig is the run's, never configuration: a provider input is stored in the
 * stack's state, where anyone with the backend and the secrets provider reads it. The hub's
 * Kubernetes provider reads KUBECONFIG as client-go does; this module reads the same files to
 * check, before any resource is declared, that the context the provider will use is the hub's
 * (agentfleet:hub.server), so a run with another cluster's kubeconfig touches nothing.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";

type Named = { name?: unknown; [field: string]: unknown };

/** The kubeconfig files a run reads, as client-go does: the list in KUBECONFIG, else ~/.kube/config. */
export function kubeconfigFiles(env: NodeJS.ProcessEnv): string[] {
    const listed = (env.KUBECONFIG ?? "").split(path.delimiter).filter((f) => f !== "");
    return listed.length > 0 ? listed : [path.join(env.HOME ?? os.homedir(), ".kube", "config")];
}

/** Several kubeconfig files merged as client-go merges them (the first file defining a name wins); or why one does not parse. */
function mergeKubeconfigs(texts: Array<{ file: string; text: string }>): { contexts: Map<string, Named>; clusters: Map<string, Named>; users: Map<string, Named>; current?: string } | { problem: string } {
    const [contexts, clusters, users] = [new Map<string, Named>(), new Map<string, Named>(), new Map<string, Named>()];
    let current: string | undefined;
    for (const { file, text } of texts) {
        let doc: Record<string, unknown>;
        try {
            doc = (YAML.parse(text) ?? {}) as Record<string, unknown>;
        } catch {
            return { problem: `${file} is not valid YAML` };
        }
        const add = (map: Map<string, Named>, list: unknown) => {
            for (const e of Array.isArray(list) ? (list as Named[]) : []) if (typeof e?.name === "string" && !map.has(e.name)) map.set(e.name, e);
        };
        add(contexts, doc.contexts);
        add(clusters, doc.clusters);
        add(users, doc.users);
        if (current === undefined && typeof doc["current-context"] === "string" && doc["current-context"] !== "") current = doc["current-context"];
    }
    return { contexts, clusters, users, current };
}

/** The server the context (default: the current context) names, merging the files as client-go does (the first file defining a name wins); or why there is none. */
export function contextServer(texts: Array<{ file: string; text: string }>, context?: string): { context: string; server: string } | { problem: string } {
    const merged = mergeKubeconfigs(texts);
    if ("problem" in merged) return merged;
    const { contexts, clusters, current } = merged;
    const name = context ?? current;
    if (name === undefined) return { problem: `has no current-context (contexts: ${[...contexts.keys()].join(", ") || "none"})` };
    const clusterName = (contexts.get(name)?.context as Named | undefined)?.cluster;
    if (clusterName === undefined) return { problem: `has no context ${JSON.stringify(name)} (contexts: ${[...contexts.keys()].join(", ") || "none"})` };
    const server = (clusters.get(String(clusterName))?.cluster as Named | undefined)?.server;
    if (typeof server !== "string" || server === "") return { problem: `has no server for context ${JSON.stringify(name)}'s cluster ${JSON.stringify(clusterName)}` };
    return { context: name, server };
}

/**
 * The one context of a run's kubeconfig files (checked by hubKubeconfigProblem) as a kubeconfig of
 * its own: that context, its cluster and its user, the current context. Secret: it holds the credential.
 */
export function singleContextKubeconfig(texts: Array<{ file: string; text: string }>, context?: string): string {
    const merged = mergeKubeconfigs(texts);
    if ("problem" in merged) throw new Error(merged.problem);
    const name = (context ?? merged.current)!;
    const ctx = merged.contexts.get(name)!.context as Named;
    const [cluster, user] = [merged.clusters.get(String(ctx.cluster)), merged.users.get(String(ctx.user))];
    return YAML.stringify(
        { apiVersion: "v1", kind: "Config", clusters: [cluster], contexts: [{ name, context: ctx }], users: user ? [user] : [{ name: String(ctx.user), user: {} }], "current-context": name },
        { lineWidth: 0 },
    );
}

/** The kubeconfig files of `env` that exist, with their text. */
export const kubeconfigTexts = (env: NodeJS.ProcessEnv): Array<{ file: string; text: string }> => kubeconfigFiles(env).filter((f) => fs.existsSync(f)).map((file) => ({ file, text: fs.readFileSync(file, "utf8") }));

/** Whether two API server URLs name the same endpoint (scheme, host, port, path; a trailing slash aside). */
export function sameServer(a: string, b: string): boolean {
    const norm = (s: string) => {
        try {
            return new URL(s).href.replace(/\/+$/, "");
        } catch {
            return s.replace(/\/+$/, "");
        }
    };
    return norm(a) === norm(b);
}

/**
 * Why this run's kubeconfig does not reach the hub (`server`, through `context` or the current
 * context), as one line naming the files and the stack file keys; undefined when it does.
 * Never quotes a credential: only file names, context names and server URLs.
 */
export function hubKubeconfigProblem(stack: string, hub: { server: string; context?: string }, env: NodeJS.ProcessEnv): string | undefined {
    const files = kubeconfigFiles(env);
    const source = env.KUBECONFIG ? `KUBECONFIG (${files.join(path.delimiter)})` : `${files[0]} (KUBECONFIG is not set)`;
    const fix = `run with KUBECONFIG naming the hub's kubeconfig file (docs/operations.md, "The hub's kubeconfig")`;
    const texts = kubeconfigTexts(env);
    if (texts.length === 0) return `agentfleet:hub.server: no kubeconfig to reach the hub ${hub.server}: ${source} does not exist; ${fix}`;
    const found = contextServer(texts, hub.context);
    const key = hub.context !== undefined ? "agentfleet:hub.context" : "agentfleet:hub.server";
    if ("problem" in found) return `${key}: the kubeconfig in ${source} ${found.problem}; ${fix}${hub.context === undefined ? ", or set agentfleet:hub.context to the hub's context" : ""}`;
    if (!sameServer(found.server, hub.server)) {
        return `agentfleet:hub.server: the kubeconfig in ${source} points context ${JSON.stringify(found.context)} at ${found.server}, not at Pulumi.${stack}.yaml's hub ${hub.server}; nothing was touched. ${fix}${hub.context === undefined ? ", or set agentfleet:hub.context to the hub's context" : ""}`;
    }
    return undefined;
}
