import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TenantConfig } from "../stacks/config";
import { OWNED_ANNOTATIONS } from "./ownership";

/** Label on every fleet cluster Secret; the ApplicationSet's cluster generator selects on it. */
export const FLEET_LABEL = "agentfleet.io/fleet";
/** Cluster Secret annotation naming the namespace the agent Application deploys into. */
export const AGENT_NAMESPACE_ANNOTATION = "agentfleet.io/namespace";

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
export function clusterSecretData(tenant: TenantConfig, project: string, bearerToken: string, caData: string): Record<string, string> {
    return {
        name: tenant.name,
        server: tenant.server,
        // Scopes the cluster to the fleet's AppProject, which admits only its scoped clusters (see appProjectSpec).
        project,
        config: stableJson({ bearerToken, tlsClientConfig: { caData, insecure: false } }),
        namespaces: tenant.namespaces.join(","),
        // The agent chart renders no cluster-scoped objects.
        clusterResources: "false",
    };
}

/** The Argo CD cluster Secret of a tenant, as the hub stack and the tenant's own stack declare it alike. */
export function clusterSecretArgs(tenant: TenantConfig, args: { fleet: string; project: string; argocdNamespace: pulumi.Input<string> }, credential: pulumi.Output<{ bearerToken?: string; caData?: string }>): k8s.core.v1.SecretArgs {
    return {
        metadata: {
            name: `cluster-${tenant.name}`,
            namespace: args.argocdNamespace,
            labels: rolloutLabels(tenant, args.fleet),
            annotations: {
                ...OWNED_ANNOTATIONS,
                [AGENT_NAMESPACE_ANNOTATION]: tenant.namespaces[0],
                ...(tenant.paused ? { "argocd.argoproj.io/skip-reconcile": "true" } : {}),
            },
        },
        type: "Opaque",
        stringData: pulumi.secret(credential.apply((c) => clusterSecretData(tenant, args.project, c.bearerToken ?? "", c.caData ?? ""))),
    };
}

/** Type token of the per-tenant component that held each cluster Secret up to commit ce80472 (one component per tenant). */
export const PREVIOUS_PARENT_TYPE = "agentfleet:index:TenantCluster";

/**
 * Type token of the hub stack's component that held every tenant's cluster Secret (named
 * `tenants-<tenant>`) until tenant stacks registered their tenants themselves: a hub state still
 * holding one has not been migrated (stacks/hub-state.ts).
 */
export const TENANT_CLUSTERS_TYPE = "agentfleet:index:TenantClusters";
