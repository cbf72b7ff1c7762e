import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { OWNED_ANNOTATIONS } from "./ownership";
import { PREVIOUS_PARENT_TYPE } from "./tenant-clusters";

export const MANAGER_ACCOUNT = "argocd-manager";
export const MANAGER_NAMESPACE = "kube-system";
export const MANAGER_TOKEN_SECRET = "argocd-manager-long-lived-token";
/** The type the in-tenant objects had as children of the hub's TenantCluster (before onboarding stacks). */
export const LEGACY_PARENT_TYPE = PREVIOUS_PARENT_TYPE;

type PolicyRule = k8s.types.input.rbac.v1.PolicyRule;

/** Full rights inside an agent namespace: Argo CD applies whatever the agent chart renders there. */
export const NAMESPACE_RULES: PolicyRule[] = [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }];

/**
 * The only rights Argo CD gets outside the agent namespaces. With `namespaces` set on the cluster
 * Secret, Argo CD lists and watches inside those namespaces only, so it needs:
 * - API discovery (`/api`, `/apis` and their sub-paths) and `/version`, to learn which kinds exist
 *   and how to reach them;
 * - the OpenAPI documents: `/openapi/v2`, which gitops-engine's cluster cache loads on every sync
 *   (an error fails the cache for the whole tenant), and `/openapi/v3` with its per-group paths,
 *   which kubectl's apply validator reads when Argo CD syncs. k3s and kubeadm grant all of these
 *   to every authenticated user through `system:discovery`; a hardened cluster does not, so the
 *   grant is explicit;
 * - `get` on its own agent Namespaces (by name), to check the sync destination exists.
 * Nothing else: no cluster-scoped writes, no reads of other namespaces or of Secrets elsewhere.
 */
export function managerClusterRules(namespaces: string[]): PolicyRule[] {
    return [
        { nonResourceURLs: ["/api", "/api/*", "/apis", "/apis/*", "/version", "/openapi/v2", "/openapi/v3", "/openapi/v3/*"], verbs: ["get"] },
        { apiGroups: [""], resources: ["namespaces"], resourceNames: [...namespaces], verbs: ["get"] },
    ];
}

/**
 * Name of the long-lived token Secret of a token generation. Generation 0 keeps the name the hub
 * stack used, so a migrated tenant keeps its token; each rotation adds a generation.
 */
export const tokenSecretName = (generation: number): string => (generation === 0 ? MANAGER_TOKEN_SECRET : `${MANAGER_TOKEN_SECRET}-${generation}`);

/**
 * Pulumi name of a token generation's Secret under TenantAccess `name`: one resource per
 * generation, so a rotation adds the new token while the old one stays valid until it is retired.
 * Generation 0 keeps the name it always had.
 */
export const tokenResourceName = (name: string, generation: number): string => (generation === 0 ? `${name}-manager-token` : `${name}-manager-token-${generation}`);

/** The credential Argo CD needs, from the token Secret's `data`: the raw token and the base64 PEM CA as they are. */
export function credentialFromTokenData(data: Record<string, string> | undefined): { bearerToken: string; caData: string } {
    return { bearerToken: Buffer.from(data?.token ?? "", "base64").toString("utf8"), caData: data?.["ca.crt"] ?? "" };
}

export interface TenantAccessArgs {
    /** Tenant name: the provider's clusterIdentifier and the prefix of every resource name. */
    tenant: string;
    /**
     * Context of the tenant's admin kubeconfig, which the provider reads from the run's KUBECONFIG:
     * the kubeconfig is never an input, so it is never in state.
     */
    context: string;
    /** Agent namespaces: full rights inside, kept when the tenant is removed. */
    namespaces: string[];
    /**
     * The token generations kept valid, oldest first: the last one is the current token (0 at
     * bootstrap, +1 per rotation); during a rotation the one before it stays until it is retired.
     */
    tokenGenerations: number[];
    /**
     * The generation an earlier agentfleet kept under generation 0's resource name (it renamed
     * one Secret per rotation): its resource carries an alias to that name, so it is kept, not replaced.
     */
    legacyTokenGeneration?: number;
    /** The cluster is gone: resources leave the state without contacting it. */
    deleteUnreachable?: boolean;
}

/**
 * The least-privilege identity Argo CD uses inside one tenant: ServiceAccount
 * `kube-system/argocd-manager`, full rights in each agent namespace only, the smallest
 * ClusterRole it needs, and a long-lived token read back as `credential` (secret).
 *
 * Every child carries an alias to the URN `pulumi state move` gives it when it comes from the hub
 * stack (reparented to the stack root), so a migrated tenant is adopted without replacement.
 */
export class TenantAccess extends pulumi.ComponentResource {
    public readonly provider: k8s.Provider;
    public readonly credential: pulumi.Output<{ bearerToken: string; caData: string }>;

    constructor(name: string, args: TenantAccessArgs, opts?: pulumi.ComponentResourceOptions) {
        super("agentfleet:index:TenantAccess", name, {}, opts);
        // The URN a resource moved out of the hub stack has: same type and name, at the stack root.
        const moved = (type: string, child: string) => ({ parent: this, aliases: [pulumi.createUrn(child, type)] });

        this.provider = new k8s.Provider(
            `${name}-kubernetes`,
            {
                context: args.context,
                // "": the provider loads the run's KUBECONFIG. Unset, the SDK would store that file's
                // path, a fresh temporary one each run, as a change of the provider at every run.
                kubeconfig: "",
                // Without it, a changed kubeconfig (or the kubeconfig input an earlier agentfleet gave
                // it leaving) would replace the provider and every resource on the tenant.
                clusterIdentifier: args.tenant,
                deleteUnreachable: args.deleteUnreachable ?? false,
            },
            moved("pulumi:providers:kubernetes", `${name}-kubernetes`),
        );
        const on = (type: string, child: string) => ({ ...moved(type, child), provider: this.provider });

        // Removing a tenant must never delete the agent workloads living in these.
        const namespaces = args.namespaces.map(
            (ns) =>
                new k8s.core.v1.Namespace(`${name}-ns-${ns}`, { metadata: { name: ns, labels: { "app.kubernetes.io/managed-by": "agentfleet" } } }, { ...on("kubernetes:core/v1:Namespace", `${name}-ns-${ns}`), retainOnDelete: true }),
        );
        const account = new k8s.core.v1.ServiceAccount(`${name}-manager`, { metadata: { name: MANAGER_ACCOUNT, namespace: MANAGER_NAMESPACE, annotations: { ...OWNED_ANNOTATIONS } } }, on("kubernetes:core/v1:ServiceAccount", `${name}-manager`));
        const subject = { kind: "ServiceAccount", name: MANAGER_ACCOUNT, namespace: MANAGER_NAMESPACE };
        args.namespaces.forEach((ns, i) => {
            const roleName = `${name}-manager-role-${ns}`;
            const role = new k8s.rbac.v1.Role(roleName, { metadata: { name: "argocd-manager-role", namespace: ns, annotations: { ...OWNED_ANNOTATIONS } }, rules: NAMESPACE_RULES }, { ...on("kubernetes:rbac.authorization.k8s.io/v1:Role", roleName), dependsOn: [namespaces[i]] });
            const bindingName = `${name}-manager-binding-${ns}`;
            new k8s.rbac.v1.RoleBinding(
                bindingName,
                { metadata: { name: "argocd-manager-role-binding", namespace: ns, annotations: { ...OWNED_ANNOTATIONS } }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "argocd-manager-role" }, subjects: [subject] },
                { ...on("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", bindingName), dependsOn: [namespaces[i], role] },
            );
        });
        const clusterRole = new k8s.rbac.v1.ClusterRole(
            `${name}-manager-cluster-role`,
            { metadata: { name: "argocd-manager-cluster-role", annotations: { ...OWNED_ANNOTATIONS } }, rules: managerClusterRules(args.namespaces) },
            on("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", `${name}-manager-cluster-role`),
        );
        new k8s.rbac.v1.ClusterRoleBinding(
            `${name}-manager-cluster-binding`,
            { metadata: { name: "argocd-manager-cluster-role-binding", annotations: { ...OWNED_ANNOTATIONS } }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "argocd-manager-cluster-role" }, subjects: [subject] },
            { ...on("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", `${name}-manager-cluster-binding`), dependsOn: [clusterRole] },
        );
        if (args.tokenGenerations.length === 0) throw new Error(`TenantAccess ${name}: tokenGenerations is empty; at least the current generation is needed`);
        const tokens = args.tokenGenerations.map((generation) => {
            const child = tokenResourceName(name, generation);
            const options = on("kubernetes:core/v1:Secret", child);
            // Same type and parent, the name generation 0 has: where an earlier agentfleet kept this generation.
            const legacy = generation === args.legacyTokenGeneration && generation !== 0 ? [{ name: tokenResourceName(name, 0) }] : [];
            return new k8s.core.v1.Secret(
                child,
                {
                    metadata: { name: tokenSecretName(generation), namespace: MANAGER_NAMESPACE, annotations: { ...OWNED_ANNOTATIONS, "kubernetes.io/service-account.name": MANAGER_ACCOUNT } },
                    type: "kubernetes.io/service-account-token",
                },
                { ...options, aliases: [...options.aliases, ...legacy], dependsOn: [account] },
            );
        });
        // The token controller fills data.token and data["ca.crt"]; the provider waits for it.
        this.credential = pulumi.secret(tokens[tokens.length - 1].data.apply(credentialFromTokenData));
        this.registerOutputs({ credential: this.credential });
    }
}
