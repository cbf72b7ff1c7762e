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
 * The URN a tenant's cluster Secret had while each tenant was its own component, given as an
 * alias so that moving every Secret under one component changes no Secret on the hub.
 */
export function previousClusterSecretUrn(stack: string, project: string, tenant: string): string {
    return `urn:pulumi:${stack}::${project}::${PREVIOUS_PARENT_TYPE}$kubernetes:core/v1:Secret::${tenant}-cluster-secret`;
}

export interface TenantClustersArgs {
    /** The active tenants, validated: each gets one cluster Secret. */
    tenants: TenantConfig[];
    /** Every tenant's credential (secret): token and CA, from `npm run tenant -- bootstrap` or pre-issued. */
    credentials: pulumi.Output<Record<string, TenantCredential>>;
    /** Provider of the hub cluster, where the cluster Secrets are registered. */
    hubProvider: k8s.Provider;
    /** Namespace Argo CD runs in on the hub. */
    argocdNamespace: pulumi.Input<string>;
    /** Fleet name, the value of the `agentfleet.io/fleet` label. */
    fleet: string;
    /** The fleet's AppProject: every cluster Secret is scoped to it (`project`), the only clusters it admits. */
    project: string;
}

/** Tenants whose cluster Secrets are declared together; the next batch waits for their registration. */
export const REGISTRATION_BATCH = 1000;

/** Settles once the engine has answered the resource's registration (successfully or not). */
const registration = (resource: pulumi.Resource): Promise<unknown> =>
    // Output's promise() is not in the typed surface; it settles on failure too, where apply() would never run.
    (resource.urn as unknown as { promise(): Promise<string> }).promise();

/**
 * The tenant clusters' registration in the hub: one Argo CD cluster Secret per tenant, and nothing
 * on any tenant. What runs inside a bootstrap tenant (components/tenant-access.ts) belongs to the
 * tenant's own onboarding stack, so the hub stack never reaches a tenant. One component for the
 * whole fleet keeps the hub's cost per tenant at exactly one resource.
 *
 * The Secrets are declared in batches of REGISTRATION_BATCH, each after the previous batch's
 * registrations settled: a registration in flight holds about 100 KB of SDK promises, so
 * declaring 10,000 at once would hold a gigabyte. Await `registered` before the program returns.
 */
export class TenantClusters extends pulumi.ComponentResource {
    /** Each tenant's cluster Secret, by tenant name, once `registered` resolved. */
    public readonly clusterSecrets: Record<string, k8s.core.v1.Secret> = {};
    /** Resolves once every cluster Secret is declared and the component's outputs registered. */
    public readonly registered: Promise<void>;

    constructor(name: string, args: TenantClustersArgs, opts?: pulumi.ComponentResourceOptions) {
        super("agentfleet:index:TenantClusters", name, {}, opts);
        this.registered = this.declareInBatches(name, args);
    }

    private async declareInBatches(name: string, args: TenantClustersArgs): Promise<void> {
        const [stack, project] = [pulumi.getStack(), pulumi.getProject()];
        for (let start = 0; start < args.tenants.length; start += REGISTRATION_BATCH) {
            if (start > 0) await Promise.allSettled(args.tenants.slice(start - REGISTRATION_BATCH, start).map((t) => registration(this.clusterSecrets[t.name])));
            for (const tenant of args.tenants.slice(start, start + REGISTRATION_BATCH)) {
                this.clusterSecrets[tenant.name] = new k8s.core.v1.Secret(
                    `${name}-${tenant.name}`,
                    clusterSecretArgs(tenant, args, args.credentials.apply((all) => all[tenant.name] ?? {})),
                    { parent: this, provider: args.hubProvider, aliases: [previousClusterSecretUrn(stack, project, tenant.name)] },
                );
            }
        }
        this.registerOutputs({ clusterSecrets: Object.keys(this.clusterSecrets) });
    }
}
