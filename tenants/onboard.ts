/**
 * `npm run tenant -- bootstrap|rotate`: runs each tenant's onboarding stack (its argocd-manager
 * identity, on the tenant) and registers the result in the hub stack: the entry, and the token
 * and CA as secrets. Many tenants run in parallel with a bound; one failing never stops the
 * others, and running the same command again finishes what failed.
 *
 * A rotation has two steps, so Argo CD never holds a revoked token: `rotate` adds a new token
 * generation and stores it in the hub stack file while the old token stays valid; after the
 * hub's `pulumi up` registered the new token, `rotate --finish` revokes the old one (it checks
 * the hub's state first, and that the stack file committed at the ref deploy.yml deploys from
 * holds the new token: deploy.yml would otherwise re-apply the old one on the next merge).
 */
import * as path from "path";
import { ConfigError } from "../stacks/config";
import { withStackLock } from "./stack-lock";
import { committedStackFile } from "./deployed-ref";
import type { HubCredential, OnboardingEngine, TokenState } from "./engine";
import { readTenantKubeconfig, withTenantKubeconfig } from "./kubeconfig";
import { onboardingStackName } from "./onboarding-program";
import { type TenantOutcome, forEachTenant } from "./parallel";
import { type TenantEntry, CommandError, addTenant, checkStack, entryNamespaces, readView, recordGrantedNamespaces, storedCredentialFields, tenantEntries, writeView } from "./stack-file";

export interface HubStack {
    stack: string;
    /** Project root holding Pulumi.<stack>.yaml. */
    root: string;
}

export const hubFile = (hub: HubStack) => path.join(hub.root, `Pulumi.${hub.stack}.yaml`);
export const credentialPaths = (tenant: string) => [`tenantCredentials.${tenant}.bearerToken`, `tenantCredentials.${tenant}.caData`];

export interface OnboardTarget {
    name: string;
    /** The tenant's admin kubeconfig file. */
    kubeconfigFile: string;
    context?: string;
    /** The entry to add, for a tenant not in the hub stack file yet. */
    entry?: TenantEntry;
}

export interface OnboardOptions {
    hub: HubStack;
    engine: OnboardingEngine;
    targets: OnboardTarget[];
    parallel: number;
    /** Progress lines (stderr). */
    log: (line: string) => void;
    /** What to do with each tenant's onboarding stack (default: bootstrap). */
    mode?: OnboardMode;
    heartbeatMs?: number;
    /** finish-rotation: the ref deploy.yml deploys from, whose hub stack file must hold the new token first; undefined: not checked (`--deployed-ref none`). */
    deployedRef?: string;
}

/** bootstrap: create or repair; rotate: add a token generation; finish-rotation: retire the previous one. */
export type OnboardMode = "bootstrap" | "rotate" | "finish-rotation";

/** The token generations an onboarding stack keeps after `mode`, oldest first; a CommandError when there is no stack to rotate. */
export function nextTokenGenerations(mode: OnboardMode, tenant: string, stack: string, tokens: TokenState | undefined): number[] {
    if (mode === "bootstrap") return tokens?.generations ?? [0];
    if (!tokens) throw new CommandError([`tenant ${tenant} has no onboarding stack ${stack}; bootstrap it first`]);
    const current = tokens.generations[tokens.generations.length - 1];
    const unfinished = tokens.generations.length > 1;
    // A rotation not finished yet is carried on (a re-run stores its token again), never stacked on.
    if (mode === "rotate") return unfinished ? tokens.generations : [current, current + 1];
    return [current];
}

/** Checks the hub stack file's text as the stack's configuration, its problems as one error. */
export function checkHub(hub: HubStack, text: string, pendingSecrets: string[] = []): ReturnType<typeof checkStack> {
    try {
        return checkStack(hub.stack, text, hub.root, pendingSecrets);
    } catch (err) {
        if (err instanceof ConfigError) throw new CommandError([`Pulumi.${hub.stack}.yaml would not be a valid configuration:`, ...err.problems.map((p) => `  - ${p}`)]);
        throw err;
    }
}

/**
 * Credentials counted as stored while checking the hub stack: this tenant's (stored right after)
 * and those of other bootstrap tenants still pending (entries written by hand, or a batch under
 * way), which are their own bootstrap's business.
 */
const othersPending = (hub: HubStack, tenant: string): string[] => [tenant, ...pendingTenants(hub)].flatMap(credentialPaths);

/** Runs a stack-file edit, naming the hub stack file in its refusal. */
function inHubFile<T>(hub: HubStack, edit: () => T): T {
    try {
        return edit();
    } catch (err) {
        if (err instanceof CommandError) throw new CommandError(err.problems.map((p) => `Pulumi.${hub.stack}.yaml: ${p}`));
        throw err;
    }
}

/** The tenant's entry (existing, or the one to add) after checking the hub stack would be valid with it and its credential. */
function plannedEntry(hub: HubStack, target: OnboardTarget, mode: OnboardMode): { entry: Record<string, unknown>; isNew: boolean } {
    const rotate = mode !== "bootstrap";
    const text = readView(hub.root, hub.stack);
    const existing = tenantEntries(text).find((e) => e.name === target.name);
    if (!existing && !target.entry) throw new CommandError([`Pulumi.${hub.stack}.yaml has no tenant ${target.name}; to add it, give --server, --ring and --region`]);
    if (!existing && rotate) throw new CommandError([`Pulumi.${hub.stack}.yaml has no tenant ${target.name}: nothing to rotate`]);
    // A new entry under a name already taken must not re-run (and re-point) the existing tenant; the
    // same entry again is a re-run of a bootstrap whose registration already finished.
    if (existing && target.entry && (["server", "ring", "region"] as const).some((f) => String(existing[f]) !== target.entry![f])) {
        throw new CommandError([`Pulumi.${hub.stack}.yaml: duplicate tenant name ${JSON.stringify(target.name)}: it is already registered (server ${String(existing.server)}, ring ${String(existing.ring)}); choose another --name, or bootstrap it again without --server, --ring and --region`]);
    }
    const entry = existing ?? (target.entry as unknown as Record<string, unknown>);
    if (entry.credentials !== "bootstrap") throw new CommandError([`tenant ${target.name} uses credentials: ${String(entry.credentials)} (a pre-issued token); only credentials: bootstrap tenants have an onboarding stack`]);
    if (entry.decommissioned === true) throw new CommandError([`tenant ${target.name} is decommissioned; remove it with \`npm run tenant -- remove --stack ${hub.stack} --name ${target.name}\``]);
    // Checked as it will be once this run has granted the entry's namespaces and recorded them.
    const planned = inHubFile(hub, () => recordGrantedNamespaces(existing ? text : addTenant(text, target.entry!), target.name, entryNamespaces(entry)));
    checkHub(hub, planned, othersPending(hub, target.name));
    return { entry, isNew: !existing };
}

/**
 * Writes the entry (when new) with the namespaces its onboarding stack granted, and stores the
 * credential, holding the stack file's lock; the file is restored when storing fails.
 */
async function register(hub: HubStack, engine: OnboardingEngine, name: string, entry: TenantEntry | undefined, granted: string[], credential: HubCredential): Promise<void> {
    const file = hubFile(hub);
    await withStackLock(file, async () => {
        const before = readView(hub.root, hub.stack);
        const present = tenantEntries(before).some((e) => e.name === name);
        const after = recordGrantedNamespaces(present || !entry ? before : addTenant(before, entry), name, granted);
        checkHub(hub, after, othersPending(hub, name));
        if (after !== before) writeView(hub.root, hub.stack, after);
        try {
            await engine.storeHubCredential(name, credential);
        } catch (err) {
            if (after !== before) writeView(hub.root, hub.stack, before);
            throw err;
        }
    });
}

/** Bootstraps (or rotates) every target; returns each tenant's outcome. */
export async function onboardTenants(options: OnboardOptions): Promise<Array<TenantOutcome<{ stack: string; tokenGeneration: number; retired?: number }>>> {
    const { hub, engine, mode = "bootstrap" } = options;
    const byName = new Map(options.targets.map((t) => [t.name, t]));
    const fileName = `Pulumi.${hub.stack}.yaml`;
    // Read once, before any tenant: a missing ref refuses the whole run.
    const deployed = mode === "finish-rotation" && options.deployedRef !== undefined ? { ref: options.deployedRef, text: committedStackFile(hub.root, fileName, options.deployedRef) ?? "" } : undefined;
    return forEachTenant(
        options.targets.map((t) => t.name),
        async (name) => {
            const target = byName.get(name)!;
            const { entry, isNew } = plannedEntry(hub, target, mode);
            const kubeconfig = readTenantKubeconfig(target.kubeconfigFile, { server: String(entry.server), context: target.context });
            const stack = onboardingStackName(hub.stack, name);
            const tokens = await engine.tokenState(stack);
            const tokenGenerations = nextTokenGenerations(mode, name, stack, tokens);
            const tokenGeneration = tokenGenerations[tokenGenerations.length - 1];
            const retired = tokens?.generations.find((g) => !tokenGenerations.includes(g));
            if (mode === "finish-rotation" && retired !== undefined && (await engine.hubRegisteredToken(name)) !== tokens!.bearerToken) {
                throw new CommandError([`tenant ${name}: the hub's last pulumi up did not register token ${tokenGeneration} yet, so Argo CD still uses token ${retired}; run \`pulumi up --stack ${hub.stack}\` first (both tokens stay valid until then)`]);
            }
            if (mode === "finish-rotation" && retired !== undefined && deployed && (await engine.committedToken(name, deployed.text)) !== tokens!.bearerToken) {
                throw new CommandError([
                    `tenant ${name}: ${fileName} at ${deployed.ref} does not hold token ${tokenGeneration} (tenantCredentials.${name}.bearerToken), so deploy.yml would re-apply token ${retired} on its next run; merge the rotation's change of ${fileName} to ${deployed.ref} and let deploy.yml apply it, then finish (both tokens stay valid until then)`,
                ]);
            }
            const namespaces = entryNamespaces(entry);
            const credential = await withTenantKubeconfig(kubeconfig, (env) => engine.up(stack, { tenant: name, namespaces, tokenGenerations, legacyTokenGeneration: tokens?.legacyGeneration }, env));
            // Finishing a rotation changes no token the hub holds.
            if (mode !== "finish-rotation") await register(hub, engine, name, isNew ? target.entry : undefined, namespaces, credential);
            return { stack, tokenGeneration, ...(retired !== undefined ? { retired } : {}) };
        },
        { parallel: options.parallel, log: options.log, action: mode === "bootstrap" ? "bootstrap" : mode === "rotate" ? "rotate" : "finish rotation", heartbeatMs: options.heartbeatMs },
    );
}

/** Bootstrap tenants of the hub stack file that have no stored token and CA yet. */
export function pendingTenants(hub: HubStack): string[] {
    const text = readView(hub.root, hub.stack);
    return tenantEntries(text)
        .filter((e) => e.credentials === "bootstrap" && e.decommissioned !== true)
        .map((e) => String(e.name))
        .filter((name) => {
            const stored = storedCredentialFields(text, name);
            // A tenant whose kubeconfig is still in the hub stack needs `migrate`, not a fresh bootstrap.
            return !stored.includes("kubeconfig") && !(stored.includes("bearerToken") && stored.includes("caData"));
        });
}
