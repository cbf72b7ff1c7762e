/**
 * Per-environment composition: the Argo CD hub, every tenant cluster, and the fleet rollout, all
 * from one validated configuration.
 */
import * as k8s from "@pulumi/kubernetes";
import { ArgoCdHub } from "../components/argocd-hub";
import { FleetRollout } from "../components/fleet-rollout";
import { TenantCluster } from "../components/tenant-cluster";
import type { FleetConfig } from "./config";
import { healthCheckCmValues, loadHealthChecks } from "./health-checks";
import { subscriptionAnnotations } from "./notifications";

export interface FleetOutputs {
    argocdUrl: string;
    argocdVersion: string;
    tenants: string[];
    rolloutSteps: string[];
}

/** Declares the whole stack. Call only with a configuration that `loadConfig` validated. */
export function deployFleet(cfg: FleetConfig): FleetOutputs {
    const hubProvider = new k8s.Provider("hub", {
        kubeconfig: cfg.hubKubeconfig,
        // A rotated hub kubeconfig must not replace Argo CD and every registration.
        clusterIdentifier: "hub",
    });

    const hub = new ArgoCdHub("argocd", {
        hub: cfg.hub,
        notifications: cfg.notifications,
        notificationSecrets: cfg.notificationSecrets,
        healthChecks: healthCheckCmValues(loadHealthChecks()),
        provider: hubProvider,
    });

    for (const tenant of cfg.tenants) {
        new TenantCluster(tenant.name, {
            tenant,
            credential: cfg.tenantCredentials.apply((all) => all[tenant.name] ?? {}),
            hubProvider,
            argocdNamespace: hub.namespace,
            fleet: cfg.stack,
        });
    }

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
        argocd: hub.release,
    });

    return {
        argocdUrl: hub.argocdUrl,
        argocdVersion: cfg.hub.argocdVersion,
        tenants: cfg.tenants.map((t) => t.name),
        rolloutSteps: cfg.steps.map((s) => s.name),
    };
}
