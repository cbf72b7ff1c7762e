/**
 * The rules a rollout follows, as pure functions: label keys, step matching, which step each
 * tenant is in, controller shards, maxUpdate and durations. The loader checks with them; the
 * components and commands compute with them.
 */
import type { RolloutStep, TenantConfig } from "./config-types";
import { DURATION, PERCENT, SEMVER, describeValue } from "./reader";


/** Whether an Argo CD version carries the RollingSync tight-loop fix (#27577). */
export function hasRollingSyncFix(version: string): boolean {
    const m = SEMVER.exec(version);
    if (!m) return false;
    const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (major !== 3) return major > 3;
    if (minor === 4) return patch >= 7;
    if (minor === 5) return patch >= 1;
    return minor > 5;
}

/** Seconds of a duration such as 1h30m (already matched against DURATION). */
export function durationSeconds(duration: string): number {
    const m = DURATION.exec(duration);
    if (!m) return 0;
    return (parseInt(m[1] ?? "0") || 0) * 3600 + (parseInt(m[2] ?? "0") || 0) * 60 + (parseInt(m[3] ?? "0") || 0);
}

/** Loopback hosts: the k3s kubeconfig default, never reachable from the hub. */
export function isLoopbackHost(host: string): boolean {
    const h = host.replace(/^\[|\]$/g, "").toLowerCase();
    return h === "localhost" || h.endsWith(".localhost") || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "0.0.0.0";
}


/**
 * The most active tenants one hub stack may have. Each is an Application of the fleet's one
 * RollingSync ApplicationSet, whose status lists every Application and is written in one update
 * that must fit one etcd request; past it the update is refused and RollingSync stops recording
 * progress. Measured on the real API server, with the hub's status.resources cap, by
 * e2e/applicationset-ceiling.e2e.ts, which fails if this is raised past the measurement less its
 * margin (docs/performance.md, "The ApplicationSet ceiling").
 */
export const APPLICATIONSET_CEILING = 4000;

/** Application controller shards: one per 25 tenants, 2 to 10 in HA, 1 otherwise. */
export function controllerShardsFor(tenantCount: number, ha: boolean): number {
    if (!ha) return 1;
    return Math.min(10, Math.max(2, Math.ceil(tenantCount / 25)));
}

/** maxUpdate as given: a whole number >= 0, or a percentage "0%".."100%". */
export function parseMaxUpdate(value: unknown): { ok: true; value: number | string } | { ok: false; reason: string } {
    if (typeof value === "number") {
        return Number.isInteger(value) && value >= 0 ? { ok: true, value } : { ok: false, reason: `${value} is not a whole number >= 0` };
    }
    if (typeof value === "string") {
        const m = PERCENT.exec(value);
        if (m && Number(m[1]) <= 100) return { ok: true, value };
        return { ok: false, reason: `${JSON.stringify(value)} is not a percentage from "0%" to "100%"` };
    }
    return { ok: false, reason: `${describeValue(value)} is neither a whole number nor a percentage` };
}

/** Argo CD RollingSync step matching: expressions are ANDed; NotIn passes on a missing key. */
export function stepMatches(step: Pick<RolloutStep, "matchExpressions">, labels: Record<string, string>): boolean {
    return step.matchExpressions.every((e) => {
        const v = labels[e.key];
        return e.operator === "In" ? v !== undefined && e.values.includes(v) : v === undefined || !e.values.includes(v);
    });
}

/** The labels a tenant's generated Application carries (the ApplicationSet template sets them). */
export function applicationLabels(t: Pick<TenantConfig, "name" | "env" | "ring" | "region" | "labels">, templateLabelKeys: readonly string[]): Record<string, string> {
    const labels: Record<string, string> = { env: t.env, ring: t.ring, region: t.region, tenant: t.name };
    for (const key of templateLabelKeys) if (!(key in labels) && key in t.labels) labels[key] = t.labels[key];
    return labels;
}

/** Free-form label keys carried by every tenant: only those can go on the template safely. */
export function sharedFreeformLabelKeys(tenants: Array<Pick<TenantConfig, "labels">>): string[] {
    if (tenants.length === 0) return [];
    return Object.keys(tenants[0].labels)
        .filter((k) => tenants.every((t) => k in t.labels))
        .sort();
}

/** Index of the step each tenant falls into (first match wins, as in Argo CD); -1 for none. */
export function stepIndexes(tenants: TenantConfig[], steps: RolloutStep[]): number[][] {
    // The template carries the free-form labels every active tenant has (see FleetRollout).
    const keys = sharedFreeformLabelKeys(tenants.filter((t) => !t.decommissioned));
    return tenants.map((t) => {
        const labels = applicationLabels(t, keys);
        return steps.map((s, i) => (stepMatches(s, labels) ? i : -1)).filter((i) => i >= 0);
    });
}
