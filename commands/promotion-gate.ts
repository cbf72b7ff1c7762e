/**
 * The soak gate of `npm run promote`, pure: from the Applications Argo CD runs for the stage a
 * revision comes from, whether every tenant there has run that revision Synced and Healthy for at
 * least the soak, and since when. "Since when" is only ever what Argo CD recorded:
 *   - status.health.lastTransitionTime, which the application controller sets exactly when the
 *     health status changes (v3.6.2 controller/appcontroller.go, persistAppStatus), so a tenant that
 *     went Degraded and back starts its soak again;
 *   - status.history[].deployedAt of the deployments of the commit it runs now (the trailing run of
 *     history entries at status.sync.revision: RollingSync may sync the same revision twice).
 * A soak starts at the later of the two.
 */
import { formatDuration, healthMessage } from "./rollout-status";

type Obj = Record<string, any>;

export interface TenantSoak {
    tenant: string;
    application?: string;
    /** Ran the revision Synced and Healthy for the whole soak. */
    ready: boolean;
    /** Why not, when not ready. */
    reason?: string;
    /** Since when it runs the revision Synced and Healthy, as Argo CD recorded it. */
    since?: string;
    soakedSeconds?: number;
    /** Soak left, when it is only the time that is missing. */
    remainingSeconds?: number;
}

export interface SoakVerdict {
    from: string;
    to: string;
    revision: string;
    soak: string;
    soakSeconds: number;
    /** Every tenant of `from` is ready. */
    promotable: boolean;
    tenants: TenantSoak[];
    /** The longest soak left among tenants that only need time (null when another reason blocks). */
    remainingSeconds: number | null;
    observedAt: string;
}

export interface SoakInput {
    from: string;
    to: string;
    /** The revision to promote: a targetRevision as the stacks write it (tag, branch, HEAD) or a commit. */
    revision: string;
    soak: string;
    soakSeconds: number;
    /** The active tenants of `from` (decommissioned and paused ones left out by the caller). */
    tenants: string[];
    /** The Applications of `from`'s ApplicationSet, as the hub returns them. */
    applications: Obj[];
    now: Date;
}

const sourceOf = (spec: Obj | undefined): Obj => spec?.source ?? spec?.sources?.[0] ?? {};
const time = (s: unknown): number | undefined => (typeof s === "string" && !Number.isNaN(Date.parse(s)) ? Date.parse(s) : undefined);

/** When the commit the Application runs now was first deployed in its latest run of deployments. */
function deployedSince(status: Obj, commit: string): string | undefined {
    const history: Obj[] = [...(status.history ?? [])].sort((a, b) => Number(a.id) - Number(b.id));
    let since: string | undefined;
    for (let i = history.length - 1; i >= 0 && (history[i].revision ?? history[i].revisions?.[0]) === commit; i--) since = history[i].deployedAt;
    return since;
}

function tenantSoak(tenant: string, app: Obj | undefined, input: SoakInput): TenantSoak {
    if (!app) return { tenant, ready: false, reason: `has no Application on the ${input.from} hub (not registered yet, or the ApplicationSet has not generated it)` };
    const application = String(app.metadata?.name);
    const status: Obj = app.status ?? {};
    const target = String(sourceOf(app.spec).targetRevision ?? "");
    const commit = String(status.sync?.revision ?? status.sync?.revisions?.[0] ?? "");
    const not = (reason: string, since?: string): TenantSoak => ({ tenant, application, ready: false, reason, ...(since ? { since } : {}) });
    if (target !== input.revision && commit !== input.revision) return not(`runs ${target || "no revision"}${commit ? ` (${commit.slice(0, 12)})` : ""}, not ${input.revision}`);
    const sync = String(status.sync?.status ?? "Unknown");
    if (sync !== "Synced") {
        const op = status.operationState;
        const history: Obj[] = [...(status.history ?? [])].sort((a, b) => Number(a.id) - Number(b.id));
        const running = history[history.length - 1]?.revision;
        const still = running && running !== commit ? `, still runs ${String(running).slice(0, 12)}` : "";
        return not(`is ${sync} at ${input.revision}${still}${op?.phase ? ` (last sync ${op.phase}${op.message ? `: ${op.message}` : ""})` : ""}`);
    }
    const health = String(status.health?.status ?? "Unknown");
    const healthSince: string | undefined = status.health?.lastTransitionTime;
    const why = healthMessage(app);
    if (health !== "Healthy") return not(`is ${health}${why ? `: ${why}` : ""}${healthSince ? `, since ${healthSince}` : ""}`, healthSince);
    const deployed = deployedSince(status, commit);
    if (time(healthSince) === undefined) return not("is Healthy, but Argo CD recorded no time it became Healthy (status.health.lastTransitionTime): wait for its next reconcile");
    if (time(deployed) === undefined) return not(`is Synced, but its history records no deployment of ${commit.slice(0, 12) || input.revision}: wait for Argo CD to record the sync`);
    const since = time(healthSince)! >= time(deployed)! ? healthSince! : deployed!;
    const soakedSeconds = Math.max(0, Math.floor((input.now.getTime() - time(since)!) / 1000));
    if (soakedSeconds < input.soakSeconds) {
        const remainingSeconds = input.soakSeconds - soakedSeconds;
        return { tenant, application, ready: false, since, soakedSeconds, remainingSeconds, reason: `Synced and Healthy at ${input.revision} since ${since} (${formatDuration(soakedSeconds)}): ${formatDuration(remainingSeconds)} of the ${input.soak} soak left` };
    }
    return { tenant, application, ready: true, since, soakedSeconds };
}

export function soakVerdict(input: SoakInput): SoakVerdict {
    const byTenant = new Map<string, Obj>();
    for (const app of input.applications) {
        const tenant = app.metadata?.labels?.tenant;
        if (typeof tenant === "string") byTenant.set(tenant, app);
    }
    const tenants = input.tenants.map((t) => tenantSoak(t, byTenant.get(t), input));
    const blocked = tenants.filter((t) => !t.ready);
    const onlyTime = blocked.every((t) => t.remainingSeconds !== undefined);
    return {
        from: input.from,
        to: input.to,
        revision: input.revision,
        soak: input.soak,
        soakSeconds: input.soakSeconds,
        promotable: tenants.length > 0 && blocked.length === 0,
        tenants,
        remainingSeconds: blocked.length > 0 && onlyTime ? Math.max(...blocked.map((t) => t.remainingSeconds!)) : null,
        observedAt: input.now.toISOString(),
    };
}

/** The verdict for people: one line per tenant that blocks, or the promotion's go-ahead. */
export function formatSoakVerdict(v: SoakVerdict): string {
    const head = `${v.revision}: ${v.from} -> ${v.to}, soak ${v.soak} on ${v.from}'s ${v.tenants.length} tenant(s)`;
    if (v.promotable) return `${head}: every tenant ran it Synced and Healthy for the soak\n`;
    const lines = v.tenants.filter((t) => !t.ready).map((t) => `  - ${t.tenant}: ${t.reason}`);
    const left = v.remainingSeconds !== null ? `\nTime left to soak: ${formatDuration(v.remainingSeconds)} (run the same command again then).` : "";
    return `${head}: REFUSED, ${lines.length} of ${v.tenants.length} tenant(s) not ready:\n${lines.join("\n")}${left}\n`;
}
