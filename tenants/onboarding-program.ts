/**
 * The tenant onboarding program: one small Pulumi stack per tenant (`<hub stack>-tenant-<tenant>`
 * in project `agentfleet-tenant`) holding the tenant's `argocd-manager` identity. Its outputs are
 * exactly what the hub stack needs to register the tenant: the token and CA, as secrets. The
 * tenant's admin kubeconfig is not an input: the run's KUBECONFIG names it (withTenantKubeconfig).
 *
 * With `registration` (issue 19, docs/design/tenant-stacks.md; what the commands run) the stack
 * registers its tenant itself: the cluster Secret on the hub, through the run's HUB_CONTEXT, so no
 * token passes through the hub stack; a token tenant's stack holds only that.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { projectName } from "../components/fleet-rollout";
import { hubProviderArgs } from "../components/hub-provider";
import { TenantAccess } from "../components/tenant-access";
import { TenantRegistration } from "../components/tenant-registration";
import type { TenantConfig } from "../stacks/config-types";
import { HUB_CONTEXT, ONBOARDING_CONTEXT } from "./kubeconfig";

export const ONBOARDING_PROJECT = "agentfleet-tenant";

/** The onboarding stack of a tenant of a hub stack. */
export const onboardingStackName = (hubStack: string, tenant: string): string => `${hubStack}-tenant-${tenant}`;

export interface OnboardingSettings {
    tenant: string;
    /** The tenant's agent namespaces, as in its hub stack entry. */
    namespaces: string[];
    /** Token generations kept valid, oldest first; the last is the current one (TenantAccessArgs.tokenGenerations). */
    tokenGenerations: number[];
    /** The generation an earlier agentfleet kept under generation 0's resource name (TenantAccessArgs.legacyTokenGeneration). */
    legacyTokenGeneration?: number;
    /** The tenant's registration on the hub, owned by this stack (its cluster Secret); unset: the hub stack registers it. */
    registration?: RegistrationSettings;
}

/** What a tenant stack needs to register its tenant in Argo CD on the hub (reached through the run's HUB_CONTEXT). */
export interface RegistrationSettings {
    /** The tenant's validated entry. */
    entry: TenantConfig;
    /** The hub stack's name: the fleet label. */
    fleet: string;
    /** The fleet's AppProject. */
    project: string;
    /** Argo CD's namespace on the hub. */
    argocdNamespace: string;
    /**
     * A token tenant's pre-issued credential (made secret by the program): this stack's state is its
     * only home, and nothing is declared on the tenant. Unset: the token of the stack's own argocd-manager.
     */
    preIssued?: { bearerToken: string; caData: string };
}

/** The registration of `tenant` (validated) by its tenant stack, for the hub stack whose validated configuration is `hub`. */
export function registrationSettings(hub: { stack: string; hub: { namespace: string } }, tenant: TenantConfig, preIssued?: RegistrationSettings["preIssued"]): RegistrationSettings {
    return { entry: tenant, fleet: hub.stack, project: projectName(hub.stack), argocdNamespace: hub.hub.namespace, ...(preIssued ? { preIssued } : {}) };
}

/** The settings of `tenant`'s stack with its registration: its namespaces from its entry, nothing on the tenant for a token tenant. */
export function tenantStackSettings(hub: { stack: string; hub: { namespace: string } }, tenant: TenantConfig, tokens: { tokenGenerations: number[]; legacyTokenGeneration?: number }, preIssued?: RegistrationSettings["preIssued"]): OnboardingSettings {
    return { tenant: tenant.name, namespaces: tenant.namespaces, ...tokens, registration: registrationSettings(hub, tenant, preIssued) };
}

/** What an onboarding stack exports. */
export interface OnboardingOutputs {
    tenant: string;
    /** The current generation: its token is `bearerToken`. */
    tokenGeneration: number;
    /** Every generation whose token is valid, oldest first (two while a rotation is not finished). */
    tokenGenerations: number[];
    /** Secret. */
    bearerToken: string;
    /** Secret: base64 PEM, as Argo CD's `tlsClientConfig.caData` takes it. */
    caData: string;
}

/** The program of one tenant's onboarding stack (an inline program for the Automation API). */
export function onboardingProgram(settings: OnboardingSettings): () => Promise<Record<string, unknown>> {
    return async () => {
        const preIssued = settings.registration?.preIssued;
        const credential = preIssued
            ? pulumi.secret(pulumi.output(preIssued))
            : new TenantAccess(settings.tenant, {
                  tenant: settings.tenant,
                  context: ONBOARDING_CONTEXT,
                  namespaces: settings.namespaces,
                  tokenGenerations: settings.tokenGenerations,
                  legacyTokenGeneration: settings.legacyTokenGeneration,
              }).credential;
        if (settings.registration) {
            const { entry, fleet, project, argocdNamespace } = settings.registration;
            // Named `hub` at the root, as the hub stack's provider is: `pulumi state move` of a cluster Secret brings that one along.
            const hubProvider = new k8s.Provider("hub", hubProviderArgs(HUB_CONTEXT));
            new TenantRegistration(settings.tenant, { tenant: entry, credential, hubProvider, argocdNamespace, fleet, project });
        }
        return {
            tenant: settings.tenant,
            ...(preIssued ? {} : { tokenGeneration: settings.tokenGenerations[settings.tokenGenerations.length - 1], tokenGenerations: settings.tokenGenerations }),
            bearerToken: pulumi.secret(credential.bearerToken),
            caData: pulumi.secret(credential.caData),
        };
    };
}
