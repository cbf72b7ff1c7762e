/**
 * Argo CD v3.6's decision whether an AppProject admits an Application's destination, offline:
 * util/argo GetAppProjectByName (every cluster scoped to the project, by its cluster Secret's
 * `project`, becomes a destination in its Secret's `namespaces`, or in any namespace without them)
 * and AppProject.IsDestinationPermitted (glob match of the destinations, then, with
 * `permitOnlyProjectScopedClusters`, the cluster must be one scoped to the project).
 * Globs: `*` and `?` and `!` deny patterns; no character classes or alternatives (agentfleet uses none).
 */
type Obj = Record<string, any>;

/** The hub's own cluster: Argo CD knows it without a cluster Secret, scoped to no project. */
export const IN_CLUSTER = "https://kubernetes.default.svc";

/** A cluster as Argo CD reads it from its cluster Secret (util/db SecretToCluster). */
export interface RegisteredCluster {
    name: string;
    server: string;
    namespaces: string[];
    project: string;
}

interface Destination {
    server?: string;
    name?: string;
    namespace: string;
}

/** The clusters the hub's cluster Secrets register (their `stringData`, as agentfleet declares them). */
export function registeredClusters(hubObjects: Obj[]): RegisteredCluster[] {
    return hubObjects
        .filter((o) => o.kind === "Secret" && o.metadata?.labels?.["argocd.argoproj.io/secret-type"] === "cluster")
        .map((o) => ({
            name: String(o.stringData?.name ?? ""),
            server: String(o.stringData?.server ?? "").replace(/\/+$/, ""),
            namespaces: String(o.stringData?.namespaces ?? "").split(",").map((ns) => ns.trim()).filter((ns) => ns !== ""),
            project: String(o.stringData?.project ?? ""),
        }));
}

const globMatch = (pattern: string | undefined, value: string): boolean => {
    if (pattern === undefined) return false;
    if (pattern.startsWith("!")) return !globMatch(pattern.slice(1), value);
    const source = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp(`^${source}$`).test(value);
};
const isDeny = (pattern: string | undefined) => pattern?.startsWith("!") ?? false;

/** AppProject.isDestinationMatched, entry by entry as Argo CD evaluates it. */
function destinationMatched(destinations: Destination[], dst: Required<Destination>): boolean {
    let matched = false;
    for (const item of destinations) {
        const nameMatched = dst.name !== "" && globMatch(item.name ?? "", dst.name);
        const serverMatched = dst.server !== "" && globMatch(item.server ?? "", dst.server);
        const namespaceMatched = globMatch(item.namespace, dst.namespace);
        if (namespaceMatched) {
            if (isDeny(item.name) && dst.name !== "" && globMatch(item.name!.slice(1), dst.name)) return false;
            if (isDeny(item.server) && dst.server !== "" && globMatch(item.server!.slice(1), dst.server)) return false;
        }
        if ((serverMatched || nameMatched) && namespaceMatched) matched = true;
        else if (((!nameMatched && isDeny(item.name)) || (!serverMatched && isDeny(item.server))) && namespaceMatched) return false;
        else if (!namespaceMatched && isDeny(item.namespace) && serverMatched) return false;
    }
    return matched;
}

/**
 * Why Argo CD refuses an Application's destination in `project` (its InvalidSpecError condition's
 * message), or undefined when the project admits it.
 */
export function destinationRefusal(project: Obj, clusters: RegisteredCluster[], destination: { server: string; namespace: string }): string | undefined {
    const server = destination.server.replace(/\/+$/, "");
    const cluster = clusters.find((c) => c.server === server) ?? (server === IN_CLUSTER ? { name: "in-cluster", server, namespaces: [], project: "" } : undefined);
    if (!cluster) return `error getting cluster by server ${JSON.stringify(destination.server)}: cluster ${JSON.stringify(server)} not found`;
    const name = String(project.metadata?.name);
    const scoped = clusters.filter((c) => c.project === name);
    const destinations: Destination[] = [
        ...((project.spec?.destinations ?? []) as Destination[]),
        ...scoped.flatMap((c) => (c.namespaces.length > 0 ? c.namespaces : ["*"]).map((namespace) => ({ server: c.server, namespace }))),
    ];
    const dst = { server: cluster.server, name: cluster.name, namespace: destination.namespace };
    let permitted = destinationMatched(destinations, dst);
    if (permitted && project.spec?.permitOnlyProjectScopedClusters) permitted = scoped.some((c) => c.name === dst.name || c.server === dst.server);
    return permitted ? undefined : `application destination server '${cluster.server}' and namespace '${destination.namespace}' do not match any of the allowed destinations in project '${name}'`;
}
