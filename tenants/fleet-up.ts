/**
 * `npm run tenant -- up`: a change to a tenant file (ring, region, labels, env, server) reaches the
 * hub only when that tenant's stack runs, since the tenant stack owns its registration. This runs
 * the chosen tenant stacks with the HUB'S CONTEXT ONLY (docs/design/tenant-stacks.md Q1: a
 * relabel needs nothing else), in a bounded pool (Q4: CPU of the Pulumi CLI is the bottleneck,
 * about 4 at a time per 2 cores), each refused from its own preview when a step would touch the
 * tenant: such a change previews fine with the hub's context and then fails half way at `up`.
 */
import { spawnSync } from "child_process";
import * as YAML from "yaml";
import { PROJECT, fleetFolder } from "../stacks/config";
import { committedStackFile } from "./deployed-ref";
import type { HubOnlyRun, OnboardingEngine } from "./engine";
import { withRunKubeconfig } from "./kubeconfig";
import { type HubStack, checkHub, refuseHeldRegistrations } from "./onboard";
import { onboardingStackName, registrationSettings, tenantStackSettings } from "./onboarding-program";
import { type TenantOutcome, forEachTenant, seconds } from "./parallel";
import { CommandError, checkStack, readView, tenantEntries } from "./stack-file";

/** Which tenants to run: named ones, every active one, or those whose tenant file differs from a git ref. */
export type Selection = { names: string[] } | { all: true } | { changed: string };

export interface FleetUpOptions {
    hub: HubStack;
    engine: OnboardingEngine;
    selection: Selection;
    /** The hub's checked kubeconfig (hubKubeconfigOf): the only context of every run. */
    hubKubeconfig: string;
    /** Preview only: nothing is applied. */
    preview: boolean;
    /** With `preview`: refresh the registration (the hub-side resources) first and preview only them: the drift check. */
    refreshHub?: boolean;
    parallel: number;
    /** Progress and summary lines (stderr). */
    log: (line: string) => void;
    /** Results (stdout). */
    out: (line: string) => void;
    heartbeatMs?: number;
}

/** Exit codes: 0 done (with --preview: nothing would change), 1 a tenant failed or was refused, 3 (--preview only) some stack would change, as npm run diff (2 is a usage error). */
export const EXIT = { done: 0, failed: 1, changes: 3 } as const;

/**
 * Names of the tenant files under `folder` (relative to `root`) that were added or changed since
 * `ref` (the working tree against the commit, untracked files too), and those removed (`tenant
 * remove` destroys their stacks; `up` does not).
 */
export function changedTenantFiles(root: string, folder: string, ref: string): { changed: string[]; removed: string[] } {
    const git = (...args: string[]) => spawnSync("git", args, { cwd: root, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (git("rev-parse", "--verify", "--quiet", `${ref}^{commit}`).status !== 0) {
        throw new CommandError([`--changed ${ref}: git knows no such commit in ${root} (fetch it first, e.g. git fetch origin; in CI check out with fetch-depth: 0)`]);
    }
    const diff = git("diff", "--name-status", "--no-renames", "--relative", ref, "--", folder);
    const untracked = git("ls-files", "--others", "--exclude-standard", "--", folder);
    if (diff.status !== 0 || untracked.status !== 0) throw new CommandError([`--changed ${ref}: git diff failed in ${root}: ${(diff.stderr || untracked.stderr).trim()}`]);
    const nameOf = (file: string) => (file.startsWith(`${folder}/`) && file.endsWith(".yaml") && !file.slice(folder.length + 1).includes("/") ? file.slice(folder.length + 1, -".yaml".length) : undefined);
    const changed = new Set<string>();
    const removed = new Set<string>();
    for (const line of diff.stdout.split("\n").filter(Boolean)) {
        const [status, file] = line.split("\t");
        const name = nameOf(file);
        if (name) (status === "D" ? removed : changed).add(name);
    }
    for (const file of untracked.stdout.split("\n").filter(Boolean)) {
        const name = nameOf(file);
        if (name) changed.add(name);
    }
    return { changed: [...changed].sort(), removed: [...removed].sort() };
}

/**
 * The tenant stack's program and what it is built from (paths from the project root, which is this
 * repository): a change to any of them can change every tenant stack, so `--changed` runs them all.
 */
export const TENANT_PROGRAM_PATHS = ["tenants/onboarding-program.ts", "components/tenant-access.ts", "components/tenant-registration.ts", "components/tenant-clusters.ts", "components/hub-provider.ts", "components/fleet-rollout.ts", "package-lock.json"];

/** What each tenant's stack registers and grants, per tenant, as comparable text (the hub-wide settings included). */
function registrationsOf(stack: string, view: string, root: string): Map<string, string> {
    const cfg = checkStack(stack, view, root);
    return new Map(cfg.tenants.map((t) => [t.name, JSON.stringify({ registration: registrationSettings(cfg, t), namespaces: t.namespaces })]));
}

/**
 * Tenants whose stack `ref` -> now changes: those whose tenant file was added or changed, those whose
 * registration changed through a hub-wide setting (agentfleet:hub.namespace, the stack's defaults),
 * and every tenant when the tenant program changed or the stack at `ref` cannot be read.
 */
function changedSince(hub: HubStack, text: string, ref: string, active: string[]): { names: string[]; notes: string[] } {
    const folder = fleetFolder(hub.stack, YAML.parse(text)?.config?.[`${PROJECT}:fleet`]);
    const { changed, removed } = changedTenantFiles(hub.root, folder, ref);
    const notes = removed.length > 0 ? [`not run: ${removed.join(", ")} (tenant file removed since ${ref}; npm run tenant -- remove destroys a tenant's stack)`] : [];
    const program = spawnSync("git", ["diff", "--quiet", ref, "--", ...TENANT_PROGRAM_PATHS], { cwd: hub.root });
    if (program.status !== 0) return { names: active, notes: [...notes, `every tenant: the tenant stack's program (${TENANT_PROGRAM_PATHS.join(", ")}) changed since ${ref}`] };
    const now = registrationsOf(hub.stack, text, hub.root);
    let before: Map<string, string>;
    try {
        before = registrationsOf(hub.stack, committedStackFile(hub.root, `Pulumi.${hub.stack}.yaml`, ref) ?? "config: {}\n", hub.root);
    } catch (err) {
        return { names: active, notes: [...notes, `every tenant: Pulumi.${hub.stack}.yaml at ${ref} cannot be compared (${String((err as Error).message).split("\n")[0]})`] };
    }
    const names = active.filter((n) => changed.includes(n) || before.get(n) !== now.get(n));
    const decommissioned = changed.filter((n) => !active.includes(n));
    return { names, notes: [...notes, ...(decommissioned.length > 0 ? [`not run: ${decommissioned.join(", ")} (decommissioned)`] : [])] };
}

/** The tenants a selection names, after checking each is in the inventory and not decommissioned; `notes` say why others were left out. */
export function selectTenants(hub: HubStack, text: string, selection: Selection): { names: string[]; notes: string[] } {
    const entries = tenantEntries(text);
    const active = entries.filter((e) => e.decommissioned !== true).map((e) => String(e.name));
    if ("all" in selection) return { names: active, notes: [] };
    if ("names" in selection) {
        const problems = selection.names.flatMap((n) => {
            const entry = entries.find((e) => e.name === n);
            if (!entry) return [`Pulumi.${hub.stack}.yaml has no tenant ${n} (no tenant file); add it with npm run tenant -- bootstrap or add`];
            if (entry.decommissioned === true) return [`tenant ${n} is decommissioned: its tenant stack is dropped; remove it with npm run tenant -- remove --stack ${hub.stack} --name ${n}`];
            return [];
        });
        if (problems.length > 0) throw new CommandError(problems);
        return { names: [...new Set(selection.names)], notes: [] };
    }
    return changedSince(hub, text, selection.changed, active);
}

/** One line of a run's planned changes: "update 1, same 11". */
export const changeLine = (changes: Record<string, number>): string =>
    Object.entries(changes)
        .sort(([a], [b]) => (a === "same" ? 1 : b === "same" ? -1 : a.localeCompare(b)))
        .map(([op, n]) => `${op} ${n}`)
        .join(", ") || "no steps";

/** The planned changes other than `same`. */
const changing = (run: HubOnlyRun): boolean => Object.entries(run.changes).some(([op, n]) => op !== "same" && n > 0);

/** Runs (or previews) the selected tenant stacks; returns the exit code (EXIT). */
export async function fleetUp(options: FleetUpOptions): Promise<number> {
    const { hub, engine } = options;
    const started = Date.now();
    const text = readView(hub.root, hub.stack);
    // The whole stack is checked once, before any tenant: a bad tenant file refuses the run.
    const cfg = checkHub(hub, text);
    const { names, notes } = selectTenants(hub, text, options.selection);
    for (const note of notes) options.log(note);
    if (names.length === 0) {
        options.out(`No tenant stacks to ${options.preview ? "preview" : "run"} in ${hub.stack}${"changed" in options.selection ? ` (no tenant file added or changed since ${options.selection.changed})` : ""}.\n`);
        return EXIT.done;
    }
    await refuseHeldRegistrations(hub, engine, names);
    const action = options.preview ? (options.refreshHub ? "preview --refresh (hub side)" : "preview") : "up";
    const named = "names" in options.selection;
    const outcomes: Array<TenantOutcome<HubOnlyRun | "pending">> = await forEachTenant(
        names,
        async (name) => {
            const tenant = cfg.tenants.find((t) => t.name === name)!;
            const stack = onboardingStackName(hub.stack, name);
            const tokens = await engine.tokenState(stack);
            if (!tokens) {
                // Not registered yet (docs/operations.md: entries are merged, then bootstrapped): nothing of it to update.
                const how =
                    tenant.credentials === "token"
                        ? `register its token with npm run tenant -- add --credentials token (after removing its file)`
                        : `npm run tenant -- bootstrap --stack ${hub.stack} --name ${name} --kubeconfig <its admin kubeconfig>`;
                if (named) throw new Error(`it has no tenant stack ${stack} (not registered yet): ${how}`);
                options.log(`  ${name}: pending, not registered yet (no tenant stack ${stack}): ${how}`);
                return "pending";
            }
            // A token tenant's stack re-registers the token it holds; it declares nothing on the tenant.
            const preIssued = tenant.credentials === "token" ? { bearerToken: tokens.bearerToken, caData: tokens.caData } : undefined;
            const settings = tenantStackSettings(cfg, tenant, { tokenGenerations: tokens.generations, legacyTokenGeneration: tokens.legacyGeneration }, preIssued);
            const run = await withRunKubeconfig({ hub: options.hubKubeconfig }, (env) => engine.hubOnly(stack, settings, env, { apply: !options.preview, refreshHub: options.refreshHub }));
            if (run.tenantSide.length > 0) {
                throw new Error(
                    `its change reaches the tenant's cluster (${run.tenantSide.join(", ")}), which a run with the hub's context alone cannot apply; ${options.preview ? "" : "nothing was changed; "}run it with the tenant's admin kubeconfig: npm run tenant -- bootstrap --stack ${hub.stack} --name ${name} --kubeconfig <its admin kubeconfig>`,
                );
            }
            options.log(`  ${name}: ${changeLine(run.changes)}${run.applied ? " (applied)" : changing(run) ? " (would change)" : ""}`);
            return run;
        },
        { parallel: options.parallel, log: options.log, action, heartbeatMs: options.heartbeatMs },
    );
    const failed = outcomes.filter((o) => !o.ok);
    const pending = outcomes.filter((o) => o.ok && o.value === "pending");
    const changed = outcomes.filter((o) => o.ok && o.value !== "pending" && changing(o.value!));
    const unchanged = outcomes.length - failed.length - pending.length - changed.length;
    const elapsed = seconds(Date.now() - started);
    const verb = options.preview ? "would change" : "changed";
    options.out(
        [
            `${hub.stack}: ${outcomes.length} tenant stack(s) ${options.preview ? "previewed" : "run"} with the hub's context in ${elapsed}: ${changed.length} ${verb}${changed.length ? ` (${changed.map((o) => o.tenant).join(", ")})` : ""}, ${unchanged} unchanged, ${failed.length} failed${pending.length ? `; ${pending.length} pending, not registered yet (${pending.map((o) => o.tenant).join(", ")})` : ""}.`,
            ...failed.map((o) => `  FAILED ${o.tenant}: ${o.error}`),
        ].join("\n") + "\n",
    );
    if (failed.length > 0) return EXIT.failed;
    return options.preview && changed.length > 0 ? EXIT.changes : EXIT.done;
}
