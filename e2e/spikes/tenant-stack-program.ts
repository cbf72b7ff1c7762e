/**
 * SPIKE (throwaway): the prototype tenant-stack programs of e2e/spikes/tenant-stacks.ts, in a module
 * of their own so the CLI's Node.js language host can run them too (the pulumi/actions path).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { TenantAccess } from "../../components/tenant-access";
import { clusterSecretData, rolloutLabels } from "../../components/tenant-clusters";
import type { TenantConfig } from "../../stacks/config";

export const TENANT_CONTEXT = "agentfleet-tenant";
export const HUB_CONTEXT = "agentfleet-hub";
export const ARGOCD_NS = "argocd";

// The redesigned tenant stack's program (the prototype of issue 19's design).

export interface TenantStackSettings {
    tenant: TenantConfig;
    tokenGenerations: number[];
    /** Fleet and AppProject of the hub (labels and `project`). */
    fleet: string;
    /** Aliases to the URNs `pulumi state move` gave the hub's provider and cluster Secret in this stack. */
    movedFrom?: { provider: string; secret: string };
}

export function tenantConfig(name: string, server: string, ring = "canary"): TenantConfig {
    return { name, server, env: "dev", ring, region: "eu", labels: {}, namespaces: ["voice-agent"], credentials: "bootstrap" } as unknown as TenantConfig;
}

export function tenantStackProgram(s: TenantStackSettings): () => Promise<Record<string, unknown>> {
    return async () => {
        const t = s.tenant;
        const access = new TenantAccess(t.name, { tenant: t.name, context: TENANT_CONTEXT, namespaces: t.namespaces, tokenGenerations: s.tokenGenerations });
        const hub = new k8s.Provider(
            `${t.name}-hub`,
            { context: HUB_CONTEXT, clusterIdentifier: "hub", enableSecretMutable: true },
            s.movedFrom ? { aliases: [pulumi.createUrn(s.movedFrom.provider, "pulumi:providers:kubernetes")] } : {},
        );
        const secret = new k8s.core.v1.Secret(
            `${t.name}-cluster`,
            {
                metadata: { name: `cluster-${t.name}`, namespace: ARGOCD_NS, labels: rolloutLabels(t, s.fleet), annotations: { "agentfleet.io/namespace": t.namespaces[0] } },
                type: "Opaque",
                stringData: pulumi.secret(access.credential.apply((c) => clusterSecretData(t, `voice-agent-${s.fleet}`, c.bearerToken, c.caData))),
            },
            { provider: hub, ...(s.movedFrom ? { aliases: [pulumi.createUrn(s.movedFrom.secret, "kubernetes:core/v1:Secret")] } : {}) },
        );
        return { clusterSecret: secret.metadata.name };
    };
}

/**
 * The same resources as tenantStackProgram (one agent namespace: Namespace, ServiceAccount, Role,
 * RoleBinding, ClusterRole, ClusterRoleBinding, token Secret, the hub's cluster Secret, two
 * providers), named per tenant so that many tenant stacks share one tenant API server (TenantAccess
 * fixes argocd-manager's names: one tenant per cluster). For the throughput measurement only.
 */
export function benchProgram(name: string, server: string, ring: string): () => Promise<Record<string, unknown>> {
    return async () => {
        const tenant = new k8s.Provider(`${name}-kubernetes`, { context: TENANT_CONTEXT, clusterIdentifier: name });
        const on = { provider: tenant };
        const ns = new k8s.core.v1.Namespace(`${name}-ns`, { metadata: { name } }, { ...on, retainOnDelete: true });
        const sa = new k8s.core.v1.ServiceAccount(`${name}-manager`, { metadata: { name: `argocd-manager-${name}`, namespace: "kube-system" } }, on);
        const subject = { kind: "ServiceAccount", name: `argocd-manager-${name}`, namespace: "kube-system" };
        const role = new k8s.rbac.v1.Role(`${name}-role`, { metadata: { name: "argocd-manager-role", namespace: name }, rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }] }, { ...on, dependsOn: [ns] });
        new k8s.rbac.v1.RoleBinding(`${name}-binding`, { metadata: { name: "argocd-manager-role-binding", namespace: name }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "argocd-manager-role" }, subjects: [subject] }, { ...on, dependsOn: [role] });
        const cr = new k8s.rbac.v1.ClusterRole(`${name}-cluster-role`, { metadata: { name: `argocd-manager-${name}` }, rules: [{ nonResourceURLs: ["/api", "/api/*", "/apis", "/apis/*", "/version"], verbs: ["get"] }] }, on);
        new k8s.rbac.v1.ClusterRoleBinding(`${name}-cluster-binding`, { metadata: { name: `argocd-manager-${name}` }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: `argocd-manager-${name}` }, subjects: [subject] }, { ...on, dependsOn: [cr] });
        const token = new k8s.core.v1.Secret(`${name}-token`, { metadata: { name: `argocd-manager-${name}-token`, namespace: "kube-system", annotations: { "kubernetes.io/service-account.name": `argocd-manager-${name}` } }, type: "kubernetes.io/service-account-token" }, { ...on, dependsOn: [sa] });
        const hub = new k8s.Provider(`${name}-hub`, { context: HUB_CONTEXT, clusterIdentifier: "hub", enableSecretMutable: true });
        const t = tenantConfig(name, server, ring);
        new k8s.core.v1.Secret(
            `${name}-cluster`,
            {
                metadata: { name: `cluster-${name}`, namespace: ARGOCD_NS, labels: rolloutLabels(t, "spike") },
                type: "Opaque",
                stringData: pulumi.secret(token.data.apply((d) => clusterSecretData(t, "voice-agent-spike", Buffer.from(d?.token ?? "", "base64").toString(), d?.["ca.crt"] ?? ""))),
            },
            { provider: hub },
        );
        return {};
    };
}

