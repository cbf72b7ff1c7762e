import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TenantConfig } from "../stacks/config-types";
import { clusterSecretArgs } from "./tenant-clusters";

/** Pulumi name of the cluster Secret the hub stack's TenantClusters gave a tenant (`tenants-<tenant>`): a `pulumi state move` puts it at the tenant stack's root under that name. */
export const hubOwnedSecretName = (tenant: string): string => `tenants-${tenant}`;

export interface TenantRegistrationArgs {
    /** The tenant, validated: its entry gives the Secret's labels, server and namespaces. */
    tenant: TenantConfig;
    /** Argo CD's credential for the tenant (secret): from TenantAccess, or the tenant admin's pre-issued token. */
    credential: pulumi.Output<{ bearerToken: string; caData: string }>;
    /** Provider of the hub cluster, where the cluster Secret is registered. */
    hubProvider: k8s.Provider;
    /** Namespace Argo CD runs in on the hub. */
    argocdNamespace: string;
    /** Fleet name, the value of the `agentfleet.io/fleet` label (the hub stack's name). */
    fleet: string;
    /** The fleet's AppProject: the Secret is scoped to it (`project`), the only clusters it admits. */
    project: string;
}

/**
 * One tenant's registration in Argo CD, from the tenant's own stack: its cluster Secret on the
 * hub, whose labels drive the rollout. The same object the hub stack's TenantClusters declares
 * (clusterSecretData, rolloutLabels), so moving it from the hub stack changes nothing on the hub;
 * the alias adopts the Secret `pulumi state move` brought over.
 */
export class TenantRegistration extends pulumi.ComponentResource {
    public readonly clusterSecret: k8s.core.v1.Secret;

    constructor(name: string, args: TenantRegistrationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("agentfleet:index:TenantRegistration", name, {}, opts);
        this.clusterSecret = new k8s.core.v1.Secret(`${name}-cluster`, clusterSecretArgs(args.tenant, args, args.credential), {
            parent: this,
            provider: args.hubProvider,
            // The Secret as `pulumi state move` brings it from the hub stack: same type, at the stack's root.
            aliases: [pulumi.createUrn(hubOwnedSecretName(args.tenant.name), "kubernetes:core/v1:Secret")],
        });
        this.registerOutputs({ clusterSecret: this.clusterSecret.metadata.name });
    }
}
