/**
 * Per-environment composition: the Argo CD hub and the fleet rollout, from one validated
 * configuration. Only the hub cluster is reached, and no tenant is registered here: each tenant's
 * own stack (tenants/onboarding-program.ts) declares its cluster Secret on the hub, so this stack
 * holds no token and stays the same size at any fleet size.
 */
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { ArgoCdHub, WEBHOOK_PATH } from "../components/argocd-hub";
import { hubProviderArgs } from "../components/hub-provider";
import { FleetRollout } from "../components/fleet-rollout";
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
    });
    return {
        argocdUrl: hub.argocdUrl,
        argocdVersion: cfg.hub.argocdVersion,
        tenants: cfg.tenants.map((t) => t.name),
        rolloutSteps: cfg.steps.map((s) => s.name),
        ...(hub.gitWebhookSecret ? { gitWebhookUrl: `https://${cfg.hub.domain}${WEBHOOK_PATH}`, gitWebhookSecret: hub.gitWebhookSecret } : {}),
    };
}
