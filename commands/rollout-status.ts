/**
 * Where a RollingSync rollout stands, from the live objects only: the fleet's ApplicationSet (its
 * steps and Argo CD's per-Application progressive-sync status, status.applicationStatus) and the
 * Applications it owns (sync, health, revision). Pure: `npm run status` fetches, this decides.
 *
 * Follows Argo CD v3.4.7 (applicationset_controller.go): steps are 1-based strings in
 * applicationStatus, -1 for an Application no step matches; a step is complete when each of its
 * Applications is Healthy there; the RolloutProgressing condition names the active step and its
 * lastTransitionTime changes exactly when the step does. And v3.6.2
 * (applicationset/progressivesync/progressive_sync.go): steps are assigned to the Applications the
 * generator still produces, so one it no longer produces (its tenant removed) has step -1 although
 * its labels match a step; controller/sync.go keeps a sync a deny window blocks Running with
 * "Sync operation blocked by sync window".
 */
import { stepMatches } from "../stacks/config";
import { formatTable } from "./table";

type Obj = Record<string, any>;

export interface TenantStatus {
    application: string;
    tenant: string;
    /** 1-based RollingSync step; -1 when no step matches (Argo CD never syncs it). */
    step: number;
    /** Argo CD's progressive-sync status (Waiting, Pending, Progressing, Healthy); "none" without an entry. */
    rollout: string;
    rolloutMessage: string;
    /** When the progressive-sync status last changed. */
    rolloutSince?: string;
    sync: string;
    health: string;
    healthMessage: string;
    /** The commit the Application is synced to (status.sync.revision). */
    revision: string;
    /** Whether the Application targets, and was compared at, the ApplicationSet's target revision. */
    atTarget: boolean;
    /** The last sync operation, when there is one. */
    operation?: { phase: string; message: string };
    /** Synced, Healthy, at the target revision, and no longer moving in the rollout. */
    done: boolean;
    /** Why this Application stops the rollout, when it does. */
    failure?: string;
    /** The ApplicationSet no longer generates it (its tenant was removed): Argo CD keeps it and never syncs it. */
    leftBehind?: boolean;
}

export interface StepStatus {
    step: number;
    matcher: string;
    maxUpdate: string;
    state: "complete" | "active" | "queued" | "empty";
    tenants: TenantStatus[];
}

export interface RolloutStatus {
    applicationSet: string;
    namespace: string;
    targetRevision: string;
    state: "complete" | "progressing" | "failed";
    activeStep: number | null;
    /** What the active step waits for, one line per unfinished tenant. */
    waitingFor: string[];
    activeSince: string | null;
    activeForSeconds: number | null;
    steps: StepStatus[];
    /** Applications no step matches. */
    unmatched: TenantStatus[];
    failures: string[];
    notes: string[];
    observedAt: string;
}

const MOVING = new Set(["Waiting", "Pending", "Progressing"]);
const FAILED_PHASES = new Set(["Failed", "Error"]);
const SHA = /^[0-9a-f]{40}$/;
const BLOCKED_BY_WINDOW = "Sync operation blocked by sync window";

const matcherText = (exprs: Obj[] = []) => exprs.map((e) => `${e.key} ${e.operator} (${(e.values ?? []).join(", ")})`).join(" and ") || "(everything)";
const sourceOf = (spec: Obj | undefined): Obj => spec?.source ?? spec?.sources?.[0] ?? {};

/** Applications the ApplicationSet generated (it owns them). */
export function ownedApplications(appSet: Obj, applications: Obj[]): Obj[] {
    return applications.filter((a) =>
        (a.metadata?.ownerReferences ?? []).some((o: Obj) => o.kind === "ApplicationSet" && o.name === appSet.metadata.name && (!appSet.metadata.uid || !o.uid || o.uid === appSet.metadata.uid)),
    );
}

/**
 * Why an Application has its health. Argo CD v3 sums an unhealthy Application up as "Caused by
 * <group/kind>:<namespace>/<name>" (controller/health.go); what each of those resources' health
 * check said (e.g. the probe gate's "Agent prober failed revision 3: …") is in status.resources,
 * which the hub keeps there (controller.resource.health.persist). Falls back to Argo CD's summary.
 */
export function healthMessage(app: Obj): string {
    const health: Obj = app.status?.health ?? {};
    const causes = ((app.status?.resources ?? []) as Obj[]).filter((r) => r.health?.status === health.status && r.health?.message);
    if (health.status === "Healthy" || causes.length === 0) return String(health.message ?? "");
    return causes.map((r) => `${r.kind} ${r.name}: ${r.health.message}`).join("; ");
}

/** "4m12s", "2h03m", "35s". */
export function formatDuration(seconds: number): string {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
    return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, "0")}h`;
}

function tenantStatus(app: Obj, entry: Obj | undefined, steps: Obj[], target: string): TenantStatus {
    const status = app.status ?? {};
    const labels = app.metadata?.labels ?? {};
    const name = String(app.metadata.name);
    // Argo CD's own step assignment when it has one; otherwise the same first-match rule it uses.
    const labelStep = steps.findIndex((s) => stepMatches({ matchExpressions: s.matchExpressions ?? [] }, labels)) + 1 || -1;
    const step = entry?.step !== undefined ? Number(entry.step) : labelStep;
    const leftBehind = step === -1 && labelStep !== -1;
    const revision = String(status.sync?.revision ?? status.sync?.revisions?.[0] ?? "");
    const compared = sourceOf(status.sync?.comparedTo).targetRevision;
    const atTarget = sourceOf(app.spec).targetRevision === target && (compared === undefined || compared === target) && (!SHA.test(target) || revision === target);
    const sync = String(status.sync?.status ?? "Unknown");
    const health = String(status.health?.status ?? "Unknown");
    const rollout = entry ? String(entry.status) : "none";
    const op = status.operationState;
    const operation = op ? { phase: String(op.phase ?? ""), message: String(op.message ?? "") } : undefined;
    const done = sync === "Synced" && health === "Healthy" && atTarget && !MOVING.has(rollout);
    let failure: string | undefined;
    const why = healthMessage(app);
    if (health === "Degraded") failure = `${labels.tenant ?? name} is Degraded${why ? `: ${why}` : ""}`;
    else if (!done && operation && FAILED_PHASES.has(operation.phase) && rollout !== "Waiting") failure = `${labels.tenant ?? name}: sync ${operation.phase}${operation.message ? `: ${operation.message}` : ""}`;
    else if (!done && step === -1 && !leftBehind) failure = `${labels.tenant ?? name} matches no rollout step: Argo CD never syncs it (check its labels against the steps)`;
    return {
        application: name,
        tenant: String(labels.tenant ?? name),
        step,
        rollout,
        rolloutMessage: String(entry?.message ?? ""),
        ...(entry?.lastTransitionTime ? { rolloutSince: String(entry.lastTransitionTime) } : {}),
        sync,
        health,
        healthMessage: why,
        revision,
        atTarget,
        ...(operation ? { operation } : {}),
        done,
        ...(failure ? { failure } : {}),
        ...(leftBehind ? { leftBehind } : {}),
    };
}

/** What an unfinished tenant of the active step waits for. */
function waitsFor(t: TenantStatus, maxUpdate: string, target: string): string {
    const now = `${t.sync}, ${t.health}${t.healthMessage ? `: ${t.healthMessage}` : ""}`;
    if (t.failure) return `${t.tenant}: FAILED (${t.failure})`;
    if (t.operation?.phase === "Running" && t.operation.message.startsWith(BLOCKED_BY_WINDOW)) return `${t.tenant}: a sync window to allow its sync (Argo CD started it; a deny window blocks it)`;
    switch (t.rollout) {
        case "Waiting":
            return maxUpdate === "0" || maxUpdate === "0%" ? `${t.tenant}: a manual sync (maxUpdate ${maxUpdate}: Argo CD does not sync this step itself)` : `${t.tenant}: its turn to sync (maxUpdate ${maxUpdate})`;
        case "Pending":
            return `${t.tenant}: Argo CD to start its sync`;
        case "Progressing":
            return `${t.tenant}: Synced and Healthy (now ${now})`;
        default:
            return t.atTarget ? `${t.tenant}: Synced and Healthy (now ${now})` : `${t.tenant}: a sync to ${target} (now ${now}${t.revision ? ` at ${t.revision.slice(0, 12)}` : ""})`;
    }
}

/** The rollout's state from the live ApplicationSet and Applications, as of `now`. */
export function rolloutStatus(appSet: Obj, applications: Obj[], now: Date = new Date()): RolloutStatus {
    const steps: Obj[] = appSet.spec?.strategy?.rollingSync?.steps ?? [];
    const target = String(sourceOf(appSet.spec?.template?.spec).targetRevision ?? "HEAD");
    const entries = new Map<string, Obj>(((appSet.status?.applicationStatus ?? []) as Obj[]).map((e) => [e.application, e]));
    const owned = ownedApplications(appSet, applications)
        .map((a) => tenantStatus(a, entries.get(a.metadata.name), steps, target))
        .sort((a, b) => a.tenant.localeCompare(b.tenant));
    const leftBehind = owned.filter((t) => t.leftBehind);
    const tenants = owned.filter((t) => !t.leftBehind);

    let activeStep: number | null = null;
    const stepStatuses: StepStatus[] = steps.map((s, i) => {
        const inStep = tenants.filter((t) => t.step === i + 1);
        let state: StepStatus["state"] = "empty";
        if (inStep.length > 0 && inStep.every((t) => t.done)) state = "complete";
        else if (inStep.length > 0 && activeStep === null) {
            state = "active";
            activeStep = i + 1;
        } else if (inStep.length > 0) state = "queued";
        return { step: i + 1, matcher: matcherText(s.matchExpressions), maxUpdate: s.maxUpdate === undefined || s.maxUpdate === null ? "100%" : String(s.maxUpdate), state, tenants: inStep };
    });
    const unmatched = tenants.filter((t) => t.step === -1 || t.step > steps.length);

    const conditions: Obj[] = appSet.status?.conditions ?? [];
    const failures = [
        ...conditions.filter((c) => c.type === "ErrorOccurred" && c.status === "True").map((c) => `ApplicationSet error: ${c.message}`),
        ...tenants.flatMap((t) => (t.failure ? [t.failure] : [])),
    ];
    const notes: string[] = [];
    if (tenants.length === 0) notes.push("the ApplicationSet owns no Applications yet (does any cluster Secret match its generator?)");
    if (tenants.length > 0 && entries.size === 0) notes.push("the ApplicationSet has no RollingSync status: are progressive syncs enabled (applicationsetcontroller.enable.progressive.syncs)?");
    if (steps.length === 0) notes.push("the ApplicationSet has no RollingSync steps: every Application syncs at once");
    for (const t of leftBehind) {
        notes.push(`${t.tenant}: Application ${t.application} is left behind: the ApplicationSet no longer generates it (its tenant was removed from the stack, or its cluster Secret no longer matches the generator), so Argo CD never syncs it again; once its workloads are dealt with, delete it with \`kubectl -n ${String(appSet.metadata.namespace)} delete application ${t.application}\` (preserveResourcesOnDeletion leaves the workloads on the tenant)`);
    }

    const active = stepStatuses.find((s) => s.step === activeStep);
    const waitingFor = active ? active.tenants.filter((t) => !t.done).map((t) => waitsFor(t, active.maxUpdate, target)) : unmatched.filter((t) => !t.done).map((t) => waitsFor(t, "100%", target));
    // The condition's time moves exactly when the step does; failing that, the step's first transition out of Waiting.
    const progressing = conditions.find((c) => c.type === "RolloutProgressing" && c.status === "True" && c.message?.endsWith(`step ${activeStep}`));
    const moved = (active?.tenants ?? []).filter((t) => t.rollout !== "Waiting" && t.rolloutSince).map((t) => t.rolloutSince!).sort();
    const activeSince = active ? (progressing?.lastTransitionTime ?? moved[0] ?? null) : null;
    const state = failures.length > 0 ? "failed" : tenants.length > 0 && tenants.every((t) => t.done) ? "complete" : "progressing";
    return {
        applicationSet: String(appSet.metadata.name),
        namespace: String(appSet.metadata.namespace),
        targetRevision: target,
        state,
        activeStep,
        waitingFor,
        activeSince,
        activeForSeconds: activeSince ? Math.max(0, Math.round((now.getTime() - Date.parse(activeSince)) / 1000)) : null,
        steps: stepStatuses,
        unmatched,
        failures,
        notes,
        observedAt: now.toISOString(),
    };
}

const shortRevision = (r: string) => (SHA.test(r) ? r.slice(0, 12) : r);

/** The rollout as text for a person. */
export function formatRolloutStatus(s: RolloutStatus): string {
    const since = (iso: string | undefined) => (iso ? formatDuration((Date.parse(s.observedAt) - Date.parse(iso)) / 1000) : "");
    const out: string[] = [`ApplicationSet ${s.namespace}/${s.applicationSet}: target revision ${s.targetRevision}`];
    const total = s.steps.length;
    if (s.state === "complete") out.push(`Rollout: COMPLETE: every Application is Synced and Healthy at ${s.targetRevision}`);
    else if (s.activeStep !== null) out.push(`Rollout: step ${s.activeStep} of ${total} active${s.activeForSeconds !== null ? ` for ${formatDuration(s.activeForSeconds)}` : ""}`);
    else out.push("Rollout: no step active");
    if (s.waitingFor.length > 0) out.push("  waiting for:", ...s.waitingFor.map((w) => `    ${w}`));
    if (s.state === "failed") out.push("FAILED:", ...s.failures.map((f) => `  ${f}`));
    for (const n of s.notes) out.push(`Note: ${n}`);
    const rows = (tenants: TenantStatus[]) =>
        formatTable(["tenant", "rollout", "since", "sync", "health", "revision", "message"], tenants.map((t) => [t.tenant, t.rollout, since(t.rolloutSince), t.sync, t.health, shortRevision(t.revision), t.healthMessage || (t.failure && t.operation?.message) || ""]))
            .replace(/^/gm, "    ")
            .trimEnd();
    for (const step of s.steps) {
        const state = step.state === "active" ? `ACTIVE${s.activeForSeconds !== null ? ` for ${formatDuration(s.activeForSeconds)}` : ""}` : step.state;
        out.push("", `  Step ${step.step} of ${total}: ${step.matcher}; maxUpdate ${step.maxUpdate}: ${state}`);
        if (step.tenants.length > 0) out.push(rows(step.tenants));
    }
    if (s.unmatched.length > 0) out.push("", "  No step (Argo CD never syncs these):", rows(s.unmatched));
    return out.join("\n").replace(/[ \t]+$/gm, "") + "\n";
}
