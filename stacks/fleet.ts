/**
 * Per-environment composition: the Argo CD hub, every tenant's registration, and the fleet rollout,
 * all from one validated configuration. Only the hub cluster is reached: tenants are bootstrapped by
 * their own onboarding stacks (onboarding/), which hand the hub a token and CA.
 */
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { ArgoCdHub, WEBHOOK_PATH } from "../components/argocd-hub";
import { hubProviderArgs } from "../components/hub-provider";
import { FleetRollout, projectName } from "../components/fleet-rollout";
import { TenantClusters } from "../components/tenant-clusters";
import type { FleetConfig } from "./config";
import { healthCheckCmValues, loadHealthChecks } from "./health-checks";
import { subscriptionAnnotations } from "./notifications";

export interface FleetOutputs {
    argocdUrl: string;
    argocdVersion: string;
    tenants: string[];
    rolloutSteps: string[];
    /** With hub.gitWebhook: the URL and shared secret (a stack secret) the repository's push webhook takes. */
    gitWebhookUrl?: string;
    gitWebhookSecret?: pulumi.Output<string>;
}

/** Declares the whole stack. Call only with a configuration that `loadConfig` validated. */
export async function deployFleet(cfg: FleetConfig): Promise<FleetOutputs> {
    // The hub's kubeconfig is the run's KUBECONFIG, which loadConfig checked points at hub.server.
    const hubProvider = new k8s.Provider("hub", hubProviderArgs(cfg.hub.context));

    const hub = new ArgoCdHub("argocd", {
        hub: cfg.hub,
        notifications: cfg.notifications,
        notificationSecrets: cfg.notificationSecrets,
        healthChecks: healthCheckCmValues(loadHealthChecks()),
        provider: hubProvider,
    });

    const active = cfg.tenants.filter((t) => !t.decommissioned);
    const clusters = new TenantClusters("tenants", {
        tenants: active,
        credentials: cfg.tenantCredentials,
        hubProvider,
        argocdNamespace: hub.namespace,
        fleet: cfg.stack,
        project: projectName(cfg.stack),
    });
    // The AppProject depends on every cluster Secret (see FleetRolloutArgs.clusterSecrets): declare them all first.
    await clusters.registered;

    new FleetRollout("fleet", {
        fleet: cfg.stack,
        deploy: cfg.deploy,
        tenants: active,
        steps: cfg.steps,
        syncWindows: cfg.syncWindows,
        emergencyRollout: cfg.emergencyRollout,
        subscriptions: subscriptionAnnotations(cfg.notifications),
        argocdNamespace: hub.namespace,
        protect: cfg.protectRollout,
        provider: hubProvider,
        argocd: [hub.crds, hub.release],
        clusterSecrets: [clusters],
    });
    return {
        argocdUrl: hub.argocdUrl,
        argocdVersion: cfg.hub.argocdVersion,
        tenants: cfg.tenants.map((t) => t.name),
        rolloutSteps: cfg.steps.map((s) => s.name),
        ...(hub.gitWebhookSecret ? { gitWebhookUrl: `https://${cfg.hub.domain}${WEBHOOK_PATH}`, gitWebhookSecret: hub.gitWebhookSecret } : {}),
    };
}
