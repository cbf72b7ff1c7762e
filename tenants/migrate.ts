/**
 * Moves a tenant bootstrapped by the old layout (its argocd-manager objects and provider inside the
 * hub stack) to its own onboarding stack, without deleting or recreating anything on any cluster:
 * `pulumi state move` of its in-tenant resources from the hub stack to the onboarding stack, where
 * TenantAccess adopts them through aliases; then the hub gets the token and CA and loses the
 * kubeconfig. Each step can be run again: a finished step is skipped.
 */
import { LEGACY_PARENT_TYPE } from "../components/tenant-access";
import { withStackLock } from "./stack-lock";
import type { OnboardingEngine, StateResource } from "./engine";
import { readTenantKubeconfig, withTenantKubeconfig } from "./kubeconfig";
import { type HubStack, checkHub, hubFile } from "./onboard";
import { onboardingStackName } from "./onboarding-program";
import { CommandError, entryNamespaces, readView, recordGrantedNamespaces, storedCredentialFields, tenantEntries, writeView } from "./stack-file";

/** The hub state's resources of the tenant that belong on the tenant: every child of its TenantCluster but the providers and the cluster Secret. */
export function inTenantResources(resources: StateResource[], tenant: string): string[] {
    const component = resources.find((r) => r.type === LEGACY_PARENT_TYPE && r.urn.endsWith(`::${tenant}`));
    if (!component) return [];
    return resources
        .filter((r) => r.parent === component.urn && !r.type.startsWith("pulumi:providers:") && !r.urn.endsWith(`::${tenant}-cluster-secret`))
        .map((r) => r.urn);
}

export interface MigrateOptions {
    hub: HubStack;
    engine: OnboardingEngine;
    tenant: string;
    /** The tenant's admin kubeconfig file (the one the hub stack held). */
    kubeconfigFile: string;
    context?: string;
    log?: (line: string) => void;
}

export interface MigrateResult {
    stack: string;
    /** URNs moved out of the hub stack (empty when an earlier run moved them). */
    moved: string[];
}

/** Migrates one tenant; for the real-engine suite: `migrateTenant({hub: {stack, root}, engine: automationEngine({...}), tenant, kubeconfigFile})`. */
export async function migrateTenant(options: MigrateOptions): Promise<MigrateResult> {
    const { hub, engine, tenant } = options;
    const log = options.log ?? (() => undefined);
    const text = readView(hub.root, hub.stack);
    const entry = tenantEntries(text).find((e) => e.name === tenant);
    if (!entry) throw new CommandError([`Pulumi.${hub.stack}.yaml has no tenant ${tenant}`]);
    if (entry.credentials !== "bootstrap") throw new CommandError([`tenant ${tenant} uses credentials: ${String(entry.credentials)}: the hub stack never held anything on it, so there is nothing to migrate`]);
    const kubeconfig = readTenantKubeconfig(options.kubeconfigFile, { server: String(entry.server), context: options.context });
    const stack = onboardingStackName(hub.stack, tenant);

    const moved = inTenantResources(await engine.hubResources(), tenant);
    if (moved.length > 0) {
        log(`${tenant}: moving ${moved.length} resources from ${hub.stack} to ${stack} (pulumi state move)`);
        await engine.moveFromHub(stack, moved);
    } else {
        log(`${tenant}: nothing of it left in ${hub.stack}'s state (moved before, or never deployed)`);
    }
    const tokens = await engine.tokenState(stack);
    log(`${tenant}: adopting them in ${stack} (pulumi up: aliases, no replacement)`);
    const namespaces = entryNamespaces(entry);
    const credential = await withTenantKubeconfig(kubeconfig, (env) => engine.up(stack, { tenant, namespaces, tokenGenerations: tokens?.generations ?? [0], legacyTokenGeneration: tokens?.legacyGeneration }, env));

    await withStackLock(hubFile(hub), async () => {
        const current = readView(hub.root, hub.stack);
        const legacy = storedCredentialFields(current, tenant).includes("kubeconfig") ? [`tenantCredentials.${tenant}.kubeconfig`] : [];
        await engine.storeHubCredential(tenant, credential, legacy);
        writeView(hub.root, hub.stack, recordGrantedNamespaces(readView(hub.root, hub.stack), tenant, namespaces));
    });
    log(`${tenant}: the hub stack holds its token and CA, and no kubeconfig`);
    // Says whether the hub stack is ready for pulumi up (other tenants may still need migrating).
    checkHub(hub, readView(hub.root, hub.stack));
    return { stack, moved };
}
