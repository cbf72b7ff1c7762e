/**
 * The tenant onboarding program: one small Pulumi stack per tenant (`<hub stack>-tenant-<tenant>`
 * in project `agentfleet-tenant`) holding the tenant's `argocd-manager` identity. Its outputs are
 * exactly what the hub stack needs to register the tenant: the token and CA, as secrets. The
 * tenant's admin kubeconfig is not an input: the run's KUBECONFIG names it (withTenantKubeconfig).
 */
import * as pulumi from "@pulumi/pulumi";
import { TenantAccess } from "../components/tenant-access";
import { ONBOARDING_CONTEXT } from "./kubeconfig";

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
        const access = new TenantAccess(settings.tenant, {
            tenant: settings.tenant,
            context: ONBOARDING_CONTEXT,
            namespaces: settings.namespaces,
            tokenGenerations: settings.tokenGenerations,
            legacyTokenGeneration: settings.legacyTokenGeneration,
        });
        return {
            tenant: settings.tenant,
            tokenGeneration: settings.tokenGenerations[settings.tokenGenerations.length - 1],
            tokenGenerations: settings.tokenGenerations,
            bearerToken: pulumi.secret(access.credential.bearerToken),
            caData: pulumi.secret(access.credential.caData),
        };
    };
}
