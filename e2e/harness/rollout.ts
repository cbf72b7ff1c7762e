/**
 * Reading what Argo CD did, from the hub's API server: the Applications (their sync history is
 * Argo CD's own record of each sync's start and end), and the ApplicationSet's RollingSync status
 * (each Application's Waiting -> Pending -> Progressing -> Healthy, with transition times), sampled
 * by a recorder while a rollout runs.
 */
import { type Credentials, request } from "./kube";
import { ARGOCD_NAMESPACE } from "./argocd";

const ARGO = "/apis/argoproj.io/v1alpha1";

export async function listApplications(hub: Credentials, namespace = ARGOCD_NAMESPACE): Promise<any[]> {
    return (await request(hub, "GET", `${ARGO}/namespaces/${namespace}/applications`)).items;
}

export async function getApplicationSet(hub: Credentials, name: string, namespace = ARGOCD_NAMESPACE): Promise<any> {
    return request(hub, "GET", `${ARGO}/namespaces/${namespace}/applicationsets/${name}`);
}

/** One RollingSync status an Application was seen in: `at` is Argo CD's lastTransitionTime. */
export interface StepTransition {
    application: string;
    status: string;
    step: string;
    at: Date;
    message?: string;
}

/**
 * Runs `sample()` every `intervalMs` from `start()` until `stop()`; a sample that fails (the object
 * not there yet, or gone, or its API server restarting) is skipped, and the next one runs.
 */
abstract class Sampler {
    private stopped = false;
    private loop?: Promise<void>;

    constructor(private readonly intervalMs: number) {}

    protected abstract sample(): Promise<void>;

    start(): this {
        this.loop = (async () => {
            while (!this.stopped) {
                await this.sample().catch(() => undefined);
                await new Promise((r) => setTimeout(r, this.intervalMs));
            }
        })();
        return this;
    }

    async stop(): Promise<void> {
        this.stopped = true;
        await this.loop;
    }
}

/** Samples the ApplicationSet's status.applicationStatus until stopped; keeps each distinct transition once. */
export class RolloutRecorder extends Sampler {
    readonly transitions: StepTransition[] = [];
    /** The most Applications ever seen Pending or Progressing at once, by step. */
    readonly maxInFlight = new Map<string, number>();
    private readonly seen = new Set<string>();

    constructor(
        private readonly hub: Credentials,
        private readonly applicationSet: string,
        intervalMs = 250,
    ) {
        super(intervalMs);
    }

    protected async sample(): Promise<void> {
        const appset = await getApplicationSet(this.hub, this.applicationSet);
        const statuses: any[] = appset.status?.applicationStatus ?? [];
        const inFlight = new Map<string, number>();
        for (const s of statuses) {
            const key = `${s.application}|${s.status}|${s.lastTransitionTime}`;
            if (["Pending", "Progressing"].includes(s.status)) inFlight.set(s.step, (inFlight.get(s.step) ?? 0) + 1);
            if (this.seen.has(key)) continue;
            this.seen.add(key);
            this.transitions.push({ application: s.application, status: s.status, step: s.step, at: new Date(s.lastTransitionTime), message: s.message });
        }
        for (const [step, n] of inFlight) this.maxInFlight.set(step, Math.max(n, this.maxInFlight.get(step) ?? 0));
    }

    /** When `application` was first seen in `status` after `since` (Argo CD's transition time). */
    firstAt(application: string, status: string, since = new Date(0)): Date | undefined {
        return this.transitions.filter((t) => t.application === application && t.status === status && t.at >= since).sort((a, b) => +a.at - +b.at)[0]?.at;
    }
}

/** A completed sync of one Application, from its status.history (Argo CD's own record; whole seconds). */
export interface SyncInterval {
    application: string;
    revision: string;
    start: Date;
    end: Date;
    initiatedBy?: string;
}

export function syncIntervals(apps: any[], revision?: string): SyncInterval[] {
    return apps.flatMap((app) =>
        (app.status?.history ?? [])
            .filter((h: any) => !revision || h.revision === revision)
            .map((h: any) => ({ application: app.metadata.name, revision: h.revision, start: new Date(h.deployStartedAt), end: new Date(h.deployedAt), initiatedBy: h.initiatedBy?.username })),
    );
}

/** The most intervals running at one instant (an interval that ends when another starts does not overlap it). */
export function maxOverlap(intervals: Array<{ start: Date; end: Date }>): number {
    const events = intervals.flatMap((i) => [{ t: +i.start, d: 1 }, { t: +i.end, d: -1 }]).sort((a, b) => a.t - b.t || a.d - b.d);
    let now = 0;
    let max = 0;
    for (const e of events) max = Math.max(max, (now += e.d));
    return max;
}

const summary = (apps: any[]) => apps.map((a) => `${a.metadata.name}=${a.status?.sync?.status ?? "?"}/${a.status?.health?.status ?? "?"}${a.status?.operationState ? `/${a.status.operationState.phase}` : ""}`).join(" ");

/**
 * Waits until `count` Applications are Synced at `revision` and Healthy, and the ApplicationSet
 * says every one of them is Healthy; logs progress every 15 s; throws with the last state after
 * `timeoutMs`.
 */
export async function waitForRollout(hub: Credentials, o: { applicationSet: string; revision: string; count: number; timeoutMs: number; log?: (line: string) => void }): Promise<any[]> {
    const began = Date.now();
    let lastLog = 0;
    let apps: any[] = [];
    let appsetStatus = "";
    while (Date.now() - began < o.timeoutMs) {
        apps = await listApplications(hub).catch(() => apps);
        const appset = await getApplicationSet(hub, o.applicationSet).catch(() => undefined);
        const statuses: any[] = appset?.status?.applicationStatus ?? [];
        appsetStatus = statuses.map((s) => `${s.application}:${s.step}:${s.status}`).join(" ");
        const done =
            apps.length === o.count &&
            apps.every((a) => a.status?.sync?.status === "Synced" && a.status?.sync?.revision === o.revision && a.status?.health?.status === "Healthy") &&
            statuses.length === o.count &&
            statuses.every((s) => s.status === "Healthy");
        if (done) return apps;
        if (Date.now() - lastLog > 15_000) {
            lastLog = Date.now();
            o.log?.(`rollout of ${o.revision.slice(0, 8)} (${((Date.now() - began) / 1000).toFixed(0)}s): ${summary(apps)} | ${appsetStatus}`);
        }
        await new Promise((r) => setTimeout(r, 1000));
    }
    throw new Error(`rollout of ${o.revision} not done after ${o.timeoutMs / 1000}s: ${summary(apps)} | ApplicationSet: ${appsetStatus}`);
}

/** One object seen on a tenant: its creation time is the API server's (whole seconds). */
export interface SeenObject {
    kind: string;
    name: string;
    uid: string;
    created: Date;
    annotations: Record<string, string>;
}

const KIND_PATHS: Record<string, string> = {
    ConfigMap: "/api/v1/namespaces/{ns}/configmaps",
    Job: "/apis/batch/v1/namespaces/{ns}/jobs",
    Deployment: "/apis/apps/v1/namespaces/{ns}/deployments",
    Service: "/api/v1/namespaces/{ns}/services",
    Ingress: "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
};

/**
 * Samples a tenant namespace's objects until stopped and keeps every object ever seen (by UID), so
 * a hook Job that Argo CD deletes before creating the next one is still on record.
 */
export class TenantObjectRecorder extends Sampler {
    readonly seen = new Map<string, SeenObject>();

    constructor(
        private readonly tenant: Credentials,
        private readonly namespace: string,
        intervalMs = 250,
    ) {
        super(intervalMs);
    }

    protected async sample(): Promise<void> {
        for (const [kind, p] of Object.entries(KIND_PATHS)) {
            const list = await request(this.tenant, "GET", p.replace("{ns}", this.namespace)).catch(() => ({ items: [] }));
            for (const o of list.items) {
                if (this.seen.has(o.metadata.uid)) continue;
                this.seen.set(o.metadata.uid, { kind, name: o.metadata.name, uid: o.metadata.uid, created: new Date(o.metadata.creationTimestamp), annotations: o.metadata.annotations ?? {} });
            }
        }
    }

    /** The objects of `kind` (optionally named `name`), oldest first. */
    objects(kind: string, name?: string): SeenObject[] {
        return [...this.seen.values()].filter((o) => o.kind === kind && (!name || o.name === name)).sort((a, b) => +a.created - +b.created);
    }
}

/**
 * The update maxUpdate limits, of one Application: from the start of its first sync of the revision
 * until RollingSync turned it Healthy. RollingSync counts an Application done once it is Synced and
 * Healthy, while its PostSync hooks may still run (v3.6.2 progressive_sync.go: Progressing ->
 * Healthy looks at health and sync status only; hooks do not feed health), so the sync's end in
 * the history may come after the next Application's start. RollingSync may also sync an
 * Application once more at the same revision right after (measured: history ids n and n+1); that
 * sync changes no object but reruns the hooks. Neither is an update of two at once.
 */
function updateOf(app: string, syncs: SyncInterval[], recorder: RolloutRecorder): Array<SyncInterval & { healthy?: Date }> {
    const first = syncs.filter((s) => s.application === app).sort((a, b) => +a.start - +b.start)[0];
    if (!first) return [];
    const healthy = recorder.firstAt(app, "Healthy", first.start);
    return [{ ...first, end: healthy && healthy < first.end ? healthy : first.end, healthy }];
}

const describeUpdate = (u: SyncInterval & { healthy?: Date }) => `${u.application} synced from ${u.start.toISOString()} (until ${u.end.toISOString()}; Healthy ${u.healthy?.toISOString() ?? "never seen"})`;

/**
 * What breaks "ring by ring" in the rollout of `revision` that started at `since` (empty: none):
 * every sync is RollingSync's, a step's first sync (history) and its Pending (ApplicationSet status)
 * come only once every Application of the step before is Healthy, and no step updates more
 * Applications at once than `maxUpdate` (each one's first sync in its history until it turned
 * Healthy, and what the recorder sampled).
 * `steps` are lists of Application names, in order.
 */
export function ringByRingProblems(apps: any[], recorder: RolloutRecorder, o: { revision: string; since: Date; steps: string[][]; maxUpdate: number }): string[] {
    const problems: string[] = [];
    const syncs = syncIntervals(apps, o.revision).filter((s) => +s.start >= +o.since - 1000);
    const by = [...new Set(syncs.map((s) => s.initiatedBy))];
    if (by.length !== 1 || by[0] !== "applicationset-controller") problems.push(`syncs initiated by ${by.join(", ")}, not only applicationset-controller`);
    const firstStart = (app: string) => Math.min(...syncs.filter((s) => s.application === app).map((s) => +s.start));
    for (let i = 1; i < o.steps.length; i++) {
        const previousHealthy = Math.max(...o.steps[i - 1].map((app) => +(recorder.firstAt(app, "Healthy", o.since) ?? new Date(8.64e15))));
        for (const app of o.steps[i]) {
            if (!(firstStart(app) >= previousHealthy)) problems.push(`${app} (step ${i + 1}) started syncing at ${new Date(firstStart(app)).toISOString()}, before step ${i} was Healthy (${new Date(previousHealthy).toISOString()})`);
            const pending = recorder.firstAt(app, "Pending", o.since);
            if (!pending || +pending < previousHealthy) problems.push(`${app} (step ${i + 1}) went Pending at ${pending?.toISOString()}, before step ${i} was Healthy`);
        }
    }
    for (const [i, step] of o.steps.entries()) {
        const updates = step.flatMap((app) => updateOf(app, syncs, recorder));
        if (maxOverlap(updates) > o.maxUpdate) problems.push(`step ${i + 1} updated ${maxOverlap(updates)} Applications at once (maxUpdate ${o.maxUpdate}): ${updates.map(describeUpdate).join(", ")}`);
    }
    for (const [step, n] of recorder.maxInFlight) if (n > o.maxUpdate) problems.push(`step ${step} had ${n} Applications Pending/Progressing at once (maxUpdate ${o.maxUpdate})`);
    return problems;
}

/**
 * What breaks the wave order on a tenant (empty: none): each of `order` (kind, name), the first
 * one the recorder saw of each, created strictly after the one before. Waves are at least 2 s
 * apart (Argo CD's wave delay), so whole-second creation times still order them.
 */
export function waveOrderProblems(objects: TenantObjectRecorder, order: Array<[string, string]>): string[] {
    const firsts = order.map(([kind, name]) => ({ what: `${kind} ${name}`, o: objects.objects(kind, name)[0] }));
    const missing = firsts.filter((f) => !f.o).map((f) => `${f.what} was never created`);
    if (missing.length > 0) return missing;
    const problems: string[] = [];
    for (let i = 1; i < firsts.length; i++) {
        if (!(+firsts[i].o!.created > +firsts[i - 1].o!.created)) problems.push(`${firsts[i].what} created at ${firsts[i].o!.created.toISOString()}, not after ${firsts[i - 1].what} (${firsts[i - 1].o!.created.toISOString()})`);
    }
    return problems;
}
