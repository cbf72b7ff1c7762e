/**
 * `npm run tenant -- bootstrap|rotate` and `add --credentials token`: run each tenant's own stack
 * (`<hub>-tenant-<tenant>`), which registers the tenant on the hub itself: its argocd-manager
 * identity on the tenant (bootstrap tenants) and its Argo CD cluster Secret on the hub, through the
 * run kubeconfig's two contexts (tenants/kubeconfig.ts). No token passes through the hub stack or
 * any file: it lives in the tenant stack's state (docs/design/tenant-stacks.md).
 *
 * A rotation is one `up` of the tenant stack: the next token generation replaces the current one,
 * and the engine orders it safely by construction (Q2, Q7): the new token is created and filled,
 * then the hub's cluster Secret is updated to it, then the old token is deleted.
 *
 * Many tenants run in parallel with a bound; one failing never stops the others, and running the
 * same command again finishes what failed.
 */
import * as path from "path";
import { ConfigError, type TenantConfig, heldRegistrations } from "../stacks/config";
import { withStackLock } from "./stack-lock";
import type { HubCredential, OnboardingEngine, TokenState } from "./engine";
import { readTenantKubeconfig, withRunKubeconfig } from "./kubeconfig";
import { onboardingStackName, tenantStackSettings } from "./onboarding-program";
import { type TenantOutcome, forEachTenant } from "./parallel";
import { type TenantEntry, CommandError, addTenant, checkStack, entryNamespaces, readView, recordGrantedNamespaces, tenantEntries, writeView } from "./stack-file";

export interface HubStack {
    stack: string;
    /** Project root holding Pulumi.<stack>.yaml. */
    root: string;
}

export const hubFile = (hub: HubStack) => path.join(hub.root, `Pulumi.${hub.stack}.yaml`);

export interface OnboardTarget {
    name: string;
    /** The tenant's admin kubeconfig file. */
    kubeconfigFile: string;
    context?: string;
    /** The entry to add, for a tenant not in the inventory yet. */
    entry?: TenantEntry;
}

export interface OnboardOptions {
    hub: HubStack;
    engine: OnboardingEngine;
    targets: OnboardTarget[];
    /** The hub's kubeconfig (one context, checked against agentfleet:hub.server: readHubKubeconfig). */
    hubKubeconfig: string;
    parallel: number;
    /** Progress lines (stderr). */
    log: (line: string) => void;
    /** What to do with each tenant's stack (default: bootstrap). */
    mode?: OnboardMode;
    heartbeatMs?: number;
}

/** bootstrap: create or repair; rotate: replace the token by the next generation, in one up. */
export type OnboardMode = "bootstrap" | "rotate";

/** The token generations a tenant stack keeps after `mode`, oldest first; a CommandError when there is no stack to rotate. */
export function nextTokenGenerations(mode: OnboardMode, tenant: string, stack: string, tokens: TokenState | undefined): number[] {
    if (mode === "bootstrap") return tokens?.generations ?? [0];
    if (!tokens) throw new CommandError([`tenant ${tenant} has no tenant stack ${stack}; bootstrap it first`]);
    // One up: the new generation is registered on the hub before the engine deletes every older one.
    return [tokens.generations[tokens.generations.length - 1] + 1];
}

/** Checks the hub stack's view (its file and inventory) as the stack's configuration, its problems as one error. */
export function checkHub(hub: HubStack, text: string): ReturnType<typeof checkStack> {
    try {
        return checkStack(hub.stack, text, hub.root);
    } catch (err) {
        if (err instanceof ConfigError) throw new CommandError([`Pulumi.${hub.stack}.yaml would not be a valid configuration:`, ...err.problems.map((p) => `  - ${p}`)]);
        throw err;
    }
}

/** Runs a view edit, naming the hub stack file in its refusal. */
function inHubFile<T>(hub: HubStack, edit: () => T): T {
    try {
        return edit();
    } catch (err) {
        if (err instanceof CommandError) throw new CommandError(err.problems.map((p) => `Pulumi.${hub.stack}.yaml: ${p}`));
        throw err;
    }
}

/**
 * Refuses to register tenants whose cluster Secret the hub stack's state still holds: both stacks
 * would own it, and the hub's next up (which no longer declares it) would delete it (Q3).
 */
export async function refuseHeldRegistrations(hub: HubStack, engine: OnboardingEngine, tenants: string[]): Promise<void> {
    const held = new Set(heldRegistrations(await engine.hubResources()));
    const refused = tenants.filter((t) => held.has(t));
    if (refused.length > 0) {
        throw new CommandError([
            `the state of hub stack ${hub.stack} still holds the cluster Secret of ${refused.join(", ")}: registering ${refused.length === 1 ? "it" : "them"} from ${refused.length === 1 ? "its" : "their"} tenant stack would make two stacks own one Secret, and the hub's next pulumi up would delete it. Move ${refused.length === 1 ? "it" : "them"} first: npm run tenant -- migrate-registration --stack ${hub.stack}. Nothing was touched.`,
        ]);
    }
}

/** The tenant's entry (existing, or the one to add), validated, after checking the hub stack would be valid with it. */
function plannedEntry(hub: HubStack, target: OnboardTarget, mode: OnboardMode): { cfg: ReturnType<typeof checkStack>; tenant: TenantConfig; isNew: boolean } {
    const text = readView(hub.root, hub.stack);
    const existing = tenantEntries(text).find((e) => e.name === target.name);
    if (!existing && !target.entry) throw new CommandError([`Pulumi.${hub.stack}.yaml has no tenant ${target.name}; to add it, give --server, --ring and --region`]);
    if (!existing && mode === "rotate") throw new CommandError([`Pulumi.${hub.stack}.yaml has no tenant ${target.name}: nothing to rotate`]);
    // A new entry under a name already taken must not re-run (and re-point) the existing tenant; the
    // same entry again is a re-run of a bootstrap whose registration already finished.
    if (existing && target.entry && (["server", "ring", "region"] as const).some((f) => String(existing[f]) !== target.entry![f])) {
        throw new CommandError([`Pulumi.${hub.stack}.yaml: duplicate tenant name ${JSON.stringify(target.name)}: it is already registered (server ${String(existing.server)}, ring ${String(existing.ring)}); choose another --name, or bootstrap it again without --server, --ring and --region`]);
    }
    const entry = existing ?? (target.entry as unknown as Record<string, unknown>);
    if (entry.credentials !== "bootstrap") throw new CommandError([`tenant ${target.name} uses credentials: ${String(entry.credentials)} (a pre-issued token); its tenant stack holds only its registration: replace the token with \`npm run tenant -- add --credentials token\` after removing it`]);
    if (entry.decommissioned === true) throw new CommandError([`tenant ${target.name} is decommissioned; remove it with \`npm run tenant -- remove --stack ${hub.stack} --name ${target.name}\``]);
    // Checked as it will be once this run has granted the entry's namespaces and recorded them.
    const planned = inHubFile(hub, () => recordGrantedNamespaces(existing ? text : addTenant(text, target.entry!), target.name, entryNamespaces(entry)));
    const cfg = checkHub(hub, planned);
    return { cfg, tenant: cfg.tenants.find((t) => t.name === target.name)!, isNew: !existing };
}

/** Writes the entry (when new) with the namespaces its tenant stack granted, holding the stack file's lock. */
async function recordEntry(hub: HubStack, name: string, entry: TenantEntry | undefined, granted: string[]): Promise<void> {
    await withStackLock(hubFile(hub), async () => {
        const before = readView(hub.root, hub.stack);
        const present = tenantEntries(before).some((e) => e.name === name);
        const after = recordGrantedNamespaces(present || !entry ? before : addTenant(before, entry), name, granted);
        checkHub(hub, after);
        if (after !== before) writeView(hub.root, hub.stack, after);
    });
}

/** Bootstraps (or rotates) every target, each registering itself on the hub; returns each tenant's outcome. */
export async function onboardTenants(options: OnboardOptions): Promise<Array<TenantOutcome<{ stack: string; tokenGeneration: number; retired: number[] }>>> {
    const { hub, engine, mode = "bootstrap" } = options;
    const byName = new Map(options.targets.map((t) => [t.name, t]));
    // Read once, before any tenant: the hub state's registrations refuse the whole run.
    await refuseHeldRegistrations(hub, engine, options.targets.map((t) => t.name));
    return forEachTenant(
        options.targets.map((t) => t.name),
        async (name) => {
            const target = byName.get(name)!;
            const { cfg, tenant, isNew } = plannedEntry(hub, target, mode);
            const kubeconfig = readTenantKubeconfig(target.kubeconfigFile, { server: tenant.server, context: target.context });
            const stack = onboardingStackName(hub.stack, name);
            const tokens = await engine.tokenState(stack);
            const tokenGenerations = nextTokenGenerations(mode, name, stack, tokens);
            const settings = tenantStackSettings(cfg, tenant, { tokenGenerations, legacyTokenGeneration: tokens?.legacyGeneration });
            await withRunKubeconfig({ tenant: kubeconfig, hub: options.hubKubeconfig }, (env) => engine.up(stack, settings, env));
            await recordEntry(hub, name, isNew ? target.entry : undefined, tenant.namespaces);
            return { stack, tokenGeneration: tokenGenerations[tokenGenerations.length - 1], retired: (tokens?.generations ?? []).filter((g) => !tokenGenerations.includes(g)) };
        },
        { parallel: options.parallel, log: options.log, action: mode, heartbeatMs: options.heartbeatMs },
    );
}

/**
 * Registers a token tenant (credentials: token) from a tenant stack of its own that holds only its
 * cluster Secret on the hub, with the tenant admin's pre-issued token and CA (kept secret in that
 * stack's state; nothing is declared on the tenant), run with the hub's context only; then writes its
 * entry. The entry is checked first, and written only once the tenant is registered.
 */
export async function registerTokenTenant(options: { hub: HubStack; engine: OnboardingEngine; entry: TenantEntry; credential: HubCredential; hubKubeconfig: string }): Promise<{ stack: string; cfg: ReturnType<typeof checkStack> }> {
    const { hub, engine, entry } = options;
    const text = readView(hub.root, hub.stack);
    const cfg = checkHub(hub, inHubFile(hub, () => addTenant(text, entry)));
    await refuseHeldRegistrations(hub, engine, [entry.name]);
    const tenant = cfg.tenants.find((t) => t.name === entry.name)!;
    const stack = onboardingStackName(hub.stack, entry.name);
    const settings = tenantStackSettings(cfg, tenant, { tokenGenerations: [0] }, options.credential);
    await withRunKubeconfig({ hub: options.hubKubeconfig }, (env) => engine.up(stack, settings, env));
    await withStackLock(hubFile(hub), async () => writeView(hub.root, hub.stack, addTenant(readView(hub.root, hub.stack), entry)));
    return { stack, cfg };
}

/** Bootstrap tenants of the inventory that have no tenant stack yet. */
export async function pendingTenants(hub: HubStack, engine: OnboardingEngine): Promise<string[]> {
    const names = tenantEntries(readView(hub.root, hub.stack))
        .filter((e) => e.credentials === "bootstrap" && e.decommissioned !== true)
        .map((e) => String(e.name));
    const pending: string[] = [];
    for (const name of names) if ((await engine.tokenState(onboardingStackName(hub.stack, name))) === undefined) pending.push(name);
    return pending;
}
