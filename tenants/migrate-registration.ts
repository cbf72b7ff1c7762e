/**
 * `npm run tenant -- migrate-registration`: moves each tenant's registration from the hub stack of
 * the previous layout (the hub program's TenantClusters declared `tenants-<tenant>`, and
 * `agentfleet:tenantCredentials` held the tokens) into the tenant's own stack, without a single
 * write to the cluster Secret (docs/design/tenant-stacks.md, Q3). Per tenant, resumable:
 *
 * 1. if the hub state holds `…TenantClusters$kubernetes:core/v1:Secret::tenants-<tenant>`, `pulumi
 *    state move` it into the tenant stack (created for a token tenant);
 * 2. at once, the tenant stack's up with its registration (the alias adopts the Secret; the move left
 *    the hub's admin kubeconfig in the tenant stack, and this up replaces it by the context). The
 *    hub context only, no refresh: nothing on the tenant changes (Q1);
 * 3. the Secret refreshed from the hub: same UID as the hub state held; a preview plans only `same`;
 * 4. then, under the stack file's lock, `tenantCredentials.<tenant>` leaves the hub stack file.
 *
 * A tenant with neither a held Secret nor a `tenantCredentials` entry is migrated: nothing is run.
 */
import * as fs from "fs";
import { TENANT_CLUSTERS_TYPE } from "../components/tenant-clusters";
import { heldRegistrations } from "../stacks/hub-state";
import type { HubCredential, OnboardingEngine, StateResource } from "./engine";
import { withRunKubeconfig } from "./kubeconfig";
import { type HubStack, checkHub, hubFile } from "./onboard";
import { onboardingStackName, tenantStackSettings } from "./onboarding-program";
import { type TenantOutcome, forEachTenant } from "./parallel";
import { CommandError, credentialTenants, dropTenantCredentials, readView, tenantEntries } from "./stack-file";
import { withStackLock, writeFileAtomic } from "./stack-lock";

export interface MigrateRegistrationOptions {
    hub: HubStack;
    engine: OnboardingEngine;
    /** Tenants to migrate (names of the inventory). */
    tenants: string[];
    /** The hub's kubeconfig (one context, checked against agentfleet:hub.server). */
    hubKubeconfig: string;
    parallel: number;
    log: (line: string) => void;
    heartbeatMs?: number;
}

export interface MigratedRegistration {
    stack: string;
    /** False when the tenant was migrated before: nothing was run. */
    ran: boolean;
    /** Whether this run moved its Secret out of the hub state. */
    moved: boolean;
}

/** The hub state's cluster Secret of `tenant` that a tenant stack adopts (TenantClusters' `tenants-<tenant>`), if held. */
export function heldSecretOf(resources: StateResource[], tenant: string): StateResource | undefined {
    return resources.find((r) => r.type === "kubernetes:core/v1:Secret" && r.urn.endsWith(`::tenants-${tenant}`) && heldRegistrations([r]).includes(tenant));
}

/** Whether a preview's change summary plans nothing but `same`. */
export const onlySame = (changes: Record<string, number>): boolean => Object.entries(changes).every(([op, n]) => op === "same" || n === 0);

const summary = (changes: Record<string, number>) => JSON.stringify(changes);

/** Migrates the tenants, at most `parallel` at a time; each tenant's outcome is its own. */
export async function migrateRegistrations(options: MigrateRegistrationOptions): Promise<Array<TenantOutcome<MigratedRegistration>>> {
    const { hub, engine } = options;
    const view = readView(hub.root, hub.stack);
    // Checked as the hub stack will be once migrated: without the retired key.
    const cfg = checkHub(hub, dropTenantCredentials(view));
    const entries = new Map(tenantEntries(view).map((e) => [String(e.name), e]));
    const unknown = options.tenants.filter((t) => !entries.has(t));
    if (unknown.length > 0) throw new CommandError([`Pulumi.${hub.stack}.yaml has no tenant ${unknown.join(", ")} in its inventory. Nothing was touched.`]);
    const hubState = await engine.hubResources();
    // readView edits the stack file's text as the last step does: one it could not edit was refused there.
    const stored = credentialTenants(fs.readFileSync(hubFile(hub), "utf8"));
    // Decrypted once, in this process, only when a tenant still has one.
    let credentials: Promise<Record<string, HubCredential>> | undefined;
    const credentialOf = async (tenant: string) => (stored.includes(tenant) ? (await (credentials ??= engine.hubCredentials()))[tenant] : undefined);

    let hubStateEdits: Promise<unknown> = Promise.resolve();
    const migrate = async (name: string): Promise<MigratedRegistration> => {
        const stack = onboardingStackName(hub.stack, name);
        const held = heldSecretOf(hubState, name);
        if (!held && heldRegistrations(hubState).includes(name)) {
            throw new CommandError([`the hub state holds ${name}'s cluster Secret under the layout before TenantClusters (a per-tenant TenantCluster): migrate it with the agentfleet that made TenantClusters first, then run this again`]);
        }
        if (!held && !stored.includes(name)) {
            options.log(`${name}: migrated before (the hub state holds no tenants-${name}, the stack file no tenantCredentials.${name}): nothing to do`);
            return { stack, ran: false, moved: false };
        }
        const entry = entries.get(name)!;
        const tenant = cfg.tenants.find((t) => t.name === name)!;
        const stored_ = await credentialOf(name);
        let settings;
        if (entry.credentials === "token") {
            if (!stored_) throw new CommandError([`Pulumi.${hub.stack}.yaml holds no tenantCredentials.${name}.bearerToken and caData: token tenant ${name}'s tenant stack has nothing to register. Nothing was touched.`]);
            settings = tenantStackSettings(cfg, tenant, { tokenGenerations: [0] }, stored_);
        } else {
            const tokens = await engine.tokenState(stack);
            if (!tokens) throw new CommandError([`bootstrap tenant ${name} has no tenant stack ${stack}: move it out of the hub stack with the previous agentfleet's \`npm run tenant -- migrate\` first. Nothing was touched.`]);
            // Compared, never printed: a different token means the previous agentfleet's rotation is unfinished, and the up would write the Secret.
            if (stored_ && stored_.bearerToken !== tokens.bearerToken) {
                throw new CommandError([`the hub stack's tenantCredentials.${name} holds another token than tenant stack ${stack}'s current one: a rotation of the previous agentfleet is unfinished. Finish it with that agentfleet (\`rotate --finish\`), then run this again. Nothing was touched.`]);
            }
            settings = tenantStackSettings(cfg, tenant, { tokenGenerations: tokens.generations, ...(tokens.legacyGeneration !== undefined ? { legacyTokenGeneration: tokens.legacyGeneration } : {}) });
        }
        if (held) {
            options.log(`${name}: moving tenants-${name} from ${hub.stack}'s state into ${stack} (pulumi state move)`);
            // One at a time: each move rewrites the hub stack's whole state, and overlapping ones would lose a removal.
            const move = hubStateEdits.then(() => engine.moveFromHub(stack, [held.urn]));
            hubStateEdits = move.catch(() => undefined);
            await move;
        }
        // At once: until this up, the moved hub provider (with the hub's admin kubeconfig) is in the tenant stack.
        options.log(`${name}: adopting its cluster Secret in ${stack} (pulumi up, hub context only)`);
        await withRunKubeconfig({ hub: options.hubKubeconfig }, async (env) => {
            try {
                await engine.up(stack, settings, env, { refresh: false });
            } catch (err) {
                throw new CommandError([
                    `${(err as Error).message}`,
                    `The cluster Secret is in ${stack} now (the hub state no longer holds it). If the up needs the tenant (a change on its side), run \`npm run tenant -- bootstrap --stack ${hub.stack} --name ${name} --kubeconfig FILE\`, then this again.`,
                ]);
            }
            const check = await engine.checkRegistration(stack, settings, env);
            if (held?.uid && check.uid !== held.uid) throw new CommandError([`the cluster Secret's UID on the hub is ${check.uid ?? "(none)"}, not ${held.uid} as the hub state held: it was replaced; tenantCredentials.${name} is kept`]);
            if (!onlySame(check.changes)) throw new CommandError([`a second preview of ${stack} plans ${summary(check.changes)}, not only same; tenantCredentials.${name} is kept. Run \`pulumi preview --stack ${stack}\` to see what differs`]);
            options.log(`${name}: ${stack} owns cluster-${name} (UID ${check.uid ?? "unknown"} unchanged); a second preview plans ${summary(check.changes)}`);
        });
        await withStackLock(hubFile(hub), async () => {
            const text = fs.readFileSync(hubFile(hub), "utf8");
            const after = dropTenantCredentials(text, name);
            if (after !== text) writeFileAtomic(hubFile(hub), after);
        });
        return { stack, ran: true, moved: held !== undefined };
    };

    const outcomes = await forEachTenant(options.tenants, migrate, { parallel: options.parallel, log: options.log, action: "migrate-registration", heartbeatMs: options.heartbeatMs });
    // The emptied TenantClusters component (nothing on any cluster) leaves too, so the hub's next up deletes nothing.
    const after = await engine.hubResources();
    for (const component of after.filter((r) => r.type === TENANT_CLUSTERS_TYPE && !after.some((c) => c.parent === r.urn))) {
        options.log(`${component.urn.split("::").pop()}: the hub state's TenantClusters component holds no registration now: removed from the state (pulumi state delete; it declared nothing on a cluster)`);
        await engine.dropFromHub(component.urn);
    }
    return outcomes;
}
