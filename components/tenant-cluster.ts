import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TenantConfig, TenantCredential } from "../stacks/config";
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
    /** Its credential (secret): the token and CA, from `npm run tenant -- bootstrap` or pre-issued. */
    credential: pulumi.Output<TenantCredential>;
    /** Provider of the hub cluster, where the cluster Secret is registered. */
    hubProvider: k8s.Provider;
    /** Namespace Argo CD runs in on the hub. */
    argocdNamespace: pulumi.Input<string>;
    /** Fleet name, the value of the `agentfleet.io/fleet` label. */
    fleet: string;
}

/**
 * One tenant cluster's registration in the hub: an Argo CD cluster Secret, and nothing on the
 * tenant. What runs inside a bootstrap tenant (components/tenant-access.ts) belongs to the
 * tenant's own onboarding stack, so the hub stack never reaches a tenant.
 */
export class TenantCluster extends pulumi.ComponentResource {
    public readonly clusterSecret: k8s.core.v1.Secret;

    constructor(name: string, args: TenantClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("agentfleet:index:TenantCluster", name, {}, opts);
        const { tenant } = args;
        this.clusterSecret = new k8s.core.v1.Secret(
            `${name}-cluster-secret`,
            {
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
                stringData: pulumi.secret(args.credential.apply((c) => clusterSecretData(tenant, c.bearerToken ?? "", c.caData ?? ""))),
            },
            { parent: this, provider: args.hubProvider },
        );
        this.registerOutputs({ clusterSecret: this.clusterSecret.metadata.name });
    }
}
