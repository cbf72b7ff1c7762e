import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TenantConfig, TenantCredential } from "../stacks/config";

export const MANAGER_ACCOUNT = "argocd-manager";
export const MANAGER_NAMESPACE = "kube-system";
export const MANAGER_TOKEN_SECRET = "argocd-manager-long-lived-token";
/** Label on every fleet cluster Secret; the ApplicationSet's cluster generator selects on it. */
export const FLEET_LABEL = "agentfleet.io/fleet";
/** Cluster Secret annotation naming the namespace the agent Application deploys into. */
export const AGENT_NAMESPACE_ANNOTATION = "agentfleet.io/namespace";

type PolicyRule = k8s.types.input.rbac.v1.PolicyRule;

/** Full rights inside an agent namespace: Argo CD applies whatever the agent chart renders there. */
export const NAMESPACE_RULES: PolicyRule[] = [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }];

/**
 * The only rights Argo CD gets outside the agent namespaces. With `namespaces` set on the cluster
 * Secret, Argo CD lists and watches inside those namespaces only, so it needs:
 * - API discovery (`/api`, `/apis` and their sub-paths) and `/version`, to learn which kinds exist
 *   and how to reach them (k3s grants these to authenticated users too; listed so the grant is
 *   explicit and survives a hardened cluster);
 * - `get` on its own agent Namespaces (by name), to check the sync destination exists.
 * Nothing else: no cluster-scoped writes, no reads of other namespaces or of Secrets elsewhere.
 */
export function managerClusterRules(namespaces: string[]): PolicyRule[] {
    return [
        { nonResourceURLs: ["/api", "/api/*", "/apis", "/apis/*", "/version"], verbs: ["get"] },
        { apiGroups: [""], resources: ["namespaces"], resourceNames: [...namespaces], verbs: ["get"] },
    ];
}

/** Labels on the cluster Secret that drive the rollout (the ApplicationSet copies them onto Applications). */
export function rolloutLabels(tenant: TenantConfig, fleet: string): Record<string, string> {
    return {
        ...tenant.labels,
        "argocd.argoproj.io/secret-type": "cluster",
        [FLEET_LABEL]: fleet,
        env: tenant.env,
        ring: tenant.ring,
        region: tenant.region,
        tenant: tenant.name,
    };
}

/** Serializes with sorted keys, so the cluster Secret does not diff on key order. */
export function stableJson(value: unknown): string {
    const sort = (v: unknown): unknown =>
        Array.isArray(v) ? v.map(sort) : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])])) : v;
    return JSON.stringify(sort(value));
}

/**
 * `stringData` of the Argo CD cluster Secret. `caData` is already base64 PEM (kubeconfig
 * `certificate-authority-data`, or `ca.crt` of a token Secret's `data`) and `bearerToken` is the
 * raw token: both pass through without another encoding.
 */
export function clusterSecretData(tenant: TenantConfig, bearerToken: string, caData: string): Record<string, string> {
    return {
        name: tenant.name,
        server: tenant.server,
        config: stableJson({ bearerToken, tlsClientConfig: { caData, insecure: false } }),
        namespaces: tenant.namespaces.join(","),
        // The agent chart renders no cluster-scoped objects.
        clusterResources: "false",
    };
}

export interface TenantClusterArgs {
    /** The tenant, validated. */
    tenant: TenantConfig;
    /** Its credential (secret): a kubeconfig for bootstrap, a token and CA for token mode. */
    credential: pulumi.Output<TenantCredential>;
    /** Provider of the hub cluster, where the cluster Secret is registered. */
    hubProvider: k8s.Provider;
    /** Namespace Argo CD runs in on the hub. */
    argocdNamespace: pulumi.Input<string>;
    /** Fleet name, the value of the `agentfleet.io/fleet` label. */
    fleet: string;
}

/**
 * One tenant cluster: in bootstrap mode, a least-privilege `argocd-manager` identity inside the
 * tenant; in both modes, its registration in the hub as an Argo CD cluster Secret.
 * A decommissioned tenant keeps only its provider, with `deleteUnreachable`, so its resources
 * leave the state even though the cluster is gone.
 */
export class TenantCluster extends pulumi.ComponentResource {
    public readonly provider?: k8s.Provider;
    public readonly clusterSecret?: k8s.core.v1.Secret;

    constructor(name: string, args: TenantClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("agentfleet:index:TenantCluster", name, {}, opts);
        const { tenant } = args;

        if (tenant.credentials === "bootstrap") {
            this.provider = new k8s.Provider(
                `${name}-kubernetes`,
                {
                    kubeconfig: args.credential.apply((c) => c.kubeconfig ?? ""),
                    // A rotated kubeconfig must not replace every resource on the tenant.
                    clusterIdentifier: tenant.name,
                    deleteUnreachable: tenant.decommissioned,
                },
                { parent: this },
            );
        }
        if (tenant.decommissioned) {
            this.registerOutputs({});
            return;
        }

        // The token and CA, secret: from the argocd-manager token Secret, or pre-issued.
        let credentials: pulumi.Output<{ bearerToken: string; caData: string }>;
        if (this.provider) {
            const onTenant = { parent: this, provider: this.provider };
            // Removing a tenant from the stack must never delete the agent workloads living in these.
            const namespaces = tenant.namespaces.map(
                (ns) => new k8s.core.v1.Namespace(`${name}-ns-${ns}`, { metadata: { name: ns, labels: { "app.kubernetes.io/managed-by": "agentfleet" } } }, { ...onTenant, retainOnDelete: true }),
            );
            const account = new k8s.core.v1.ServiceAccount(`${name}-manager`, { metadata: { name: MANAGER_ACCOUNT, namespace: MANAGER_NAMESPACE } }, onTenant);
            const subject = { kind: "ServiceAccount", name: MANAGER_ACCOUNT, namespace: MANAGER_NAMESPACE };
            tenant.namespaces.forEach((ns, i) => {
                const inNamespace = { ...onTenant, dependsOn: [namespaces[i]] };
                const role = new k8s.rbac.v1.Role(`${name}-manager-role-${ns}`, { metadata: { name: "argocd-manager-role", namespace: ns }, rules: NAMESPACE_RULES }, inNamespace);
                new k8s.rbac.v1.RoleBinding(
                    `${name}-manager-binding-${ns}`,
                    { metadata: { name: "argocd-manager-role-binding", namespace: ns }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "argocd-manager-role" }, subjects: [subject] },
                    { ...inNamespace, dependsOn: [namespaces[i], role] },
                );
            });
            const clusterRole = new k8s.rbac.v1.ClusterRole(`${name}-manager-cluster-role`, { metadata: { name: "argocd-manager-cluster-role" }, rules: managerClusterRules(tenant.namespaces) }, onTenant);
            new k8s.rbac.v1.ClusterRoleBinding(
                `${name}-manager-cluster-binding`,
                { metadata: { name: "argocd-manager-cluster-role-binding" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "argocd-manager-cluster-role" }, subjects: [subject] },
                { ...onTenant, dependsOn: [clusterRole] },
            );
            const token = new k8s.core.v1.Secret(
                `${name}-manager-token`,
                {
                    metadata: { name: MANAGER_TOKEN_SECRET, namespace: MANAGER_NAMESPACE, annotations: { "kubernetes.io/service-account.name": MANAGER_ACCOUNT } },
                    type: "kubernetes.io/service-account-token",
                },
                { ...onTenant, dependsOn: [account] },
            );
            // The token controller fills data.token and data["ca.crt"]; the provider waits for it.
            credentials = token.data.apply((d) => ({ bearerToken: Buffer.from(d?.token ?? "", "base64").toString("utf8"), caData: d?.["ca.crt"] ?? "" }));
        } else {
            credentials = args.credential.apply((c) => ({ bearerToken: c.bearerToken ?? "", caData: c.caData ?? "" }));
        }

        this.clusterSecret = new k8s.core.v1.Secret(
            `${name}-cluster-secret`,
            {
                metadata: {
                    name: `cluster-${tenant.name}`,
                    namespace: args.argocdNamespace,
                    labels: rolloutLabels(tenant, args.fleet),
                    annotations: {
                        [AGENT_NAMESPACE_ANNOTATION]: tenant.namespaces[0],
                        ...(tenant.paused ? { "argocd.argoproj.io/skip-reconcile": "true" } : {}),
                    },
                },
                type: "Opaque",
                stringData: pulumi.secret(credentials.apply((c) => clusterSecretData(tenant, c.bearerToken, c.caData))),
            },
            { parent: this, provider: args.hubProvider },
        );

        this.registerOutputs({ clusterSecret: this.clusterSecret.metadata.name });
    }
}
