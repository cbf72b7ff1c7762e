/**
 * The order in which Argo CD applies a set of manifests during a sync, as computed by gitops-engine
 * (`pkg/sync/sync_tasks.go`, `sync_phase.go`, `hook/hook.go`, `hook/helm/type.go`,
 * `syncwaves/waves.go`; reference: /work/shared/reference/argocd.md §7):
 *
 *   phase (PreSync, Sync, PostSync, SyncFail) -> wave -> kind (Helm install order) -> name,
 *   then Namespaces are pulled in front of the first object in them, and CRDs in front of the
 *   first of their custom resources, taking over that object's phase and wave.
 *
 * Pure: no cluster, no I/O. Objects that a sync does not apply (Skip, PreDelete/PostDelete-only
 * hooks, Helm hooks Argo CD does not map, such as `test`) produce no entry.
 */

export interface WaveEntry {
    phase: string;
    wave: number;
    kind: string;
    name: string;
}

/** Sync phases in execution order. */
export const SYNC_PHASES = ["PreSync", "Sync", "PostSync", "SyncFail"] as const;

/**
 * Helm's install order as vendored by gitops-engine (`kindOrder` in sync_tasks.go). Kinds not in the
 * list, custom resources included, sort after all of these.
 */
export const KIND_ORDER: readonly string[] = [
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

export const HOOK_ANNOTATION = "argocd.argoproj.io/hook";
export const SYNC_WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave";
export const HELM_HOOK_ANNOTATION = "helm.sh/hook";
export const HELM_HOOK_WEIGHT_ANNOTATION = "helm.sh/hook-weight";

const ARGO_HOOK_TYPES = new Set(["PreSync", "Sync", "PostSync", "SyncFail", "PreDelete", "PostDelete", "Skip"]);

/** Helm hooks Argo CD honours; every other Helm hook value is ignored (`hook/helm/type.go`). */
export const HELM_HOOK_PHASES: Readonly<Record<string, string>> = {
    "pre-install": "PreSync",
    "pre-upgrade": "PreSync",
    "post-install": "PostSync",
    "post-upgrade": "PostSync",
};

type KubeObject = Record<string, any>;

function annotationsOf(obj: KubeObject): Record<string, unknown> {
    const annotations = obj?.metadata?.annotations;
    return annotations && typeof annotations === "object" ? annotations : {};
}

/** Comma-separated annotation values, trimmed, de-duplicated, empty ones dropped. */
function annotationList(obj: KubeObject, key: string): string[] {
    const value = annotationsOf(obj)[key];
    if (typeof value !== "string") return [];
    return [...new Set(value.split(",").map((part) => part.trim()).filter((part) => part !== ""))];
}

/** Go's strconv.Atoi: optional sign and decimal digits only; anything else is not a number. */
function parseGoInt(value: unknown): number | undefined {
    if (typeof value !== "string" || !/^[+-]?\d+$/.test(value)) return undefined;
    const parsed = Number(value);
    return Number.isSafeInteger(parsed) ? parsed : undefined;
}

/** Hook types of an object: Argo CD's annotation wins; Helm hooks count only without it. */
function hookTypes(obj: KubeObject): string[] {
    const argoTypes = annotationList(obj, HOOK_ANNOTATION).filter((type) => ARGO_HOOK_TYPES.has(type));
    if (argoTypes.length > 0) return argoTypes;
    return annotationList(obj, HELM_HOOK_ANNOTATION)
        .filter((type) => type in HELM_HOOK_PHASES)
        .map((type) => HELM_HOOK_PHASES[type]);
}

function isHook(obj: KubeObject): boolean {
    const annotations = annotationsOf(obj);
    if (HOOK_ANNOTATION in annotations) return !isSkipped(obj);
    // Helm calls crd-install a hook, but Argo CD applies such CRDs as ordinary resources.
    return HELM_HOOK_ANNOTATION in annotations && annotations[HELM_HOOK_ANNOTATION] !== "crd-install";
}

function isSkipped(obj: KubeObject): boolean {
    const types = hookTypes(obj);
    return types.includes("Skip") && types.length === 1;
}

/** The sync phases an object is applied in: none, one, or several for a multi-phase hook. */
export function syncPhasesOf(obj: KubeObject): string[] {
    if (isSkipped(obj)) return [];
    if (!isHook(obj)) return ["Sync"];
    const types = new Set(hookTypes(obj));
    return SYNC_PHASES.filter((phase) => types.has(phase));
}

/** `argocd.argoproj.io/sync-wave`, else `helm.sh/hook-weight`, else 0; non-integers fall through. */
export function waveOf(obj: KubeObject): number {
    const annotations = annotationsOf(obj);
    return parseGoInt(annotations[SYNC_WAVE_ANNOTATION]) ?? parseGoInt(annotations[HELM_HOOK_WEIGHT_ANNOTATION]) ?? 0;
}

const kindRank = new Map(KIND_ORDER.map((kind, index) => [kind, index - KIND_ORDER.length]));
/** Known kinds rank below zero; unknown kinds rank 0, i.e. last. */
const rankOfKind = (kind: string): number => kindRank.get(kind) ?? 0;
const rankOfPhase = (phase: string): number => SYNC_PHASES.indexOf(phase as (typeof SYNC_PHASES)[number]);

interface Task {
    phase: string;
    wave: number;
    obj: KubeObject;
}

const kindOf = (obj: KubeObject): string => String(obj?.kind ?? "");
/** Hooks with only generateName are named at sync time from that prefix. */
const nameOf = (obj: KubeObject): string => String(obj?.metadata?.name ?? obj?.metadata?.generateName ?? "");
const groupOf = (obj: KubeObject): string => {
    const apiVersion = String(obj?.apiVersion ?? "");
    return apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
};

function compareTasks(a: Task, b: Task): number {
    return (
        rankOfPhase(a.phase) - rankOfPhase(b.phase) ||
        a.wave - b.wave ||
        rankOfKind(kindOf(a.obj)) - rankOfKind(kindOf(b.obj)) ||
        (nameOf(a.obj) < nameOf(b.obj) ? -1 : nameOf(a.obj) > nameOf(b.obj) ? 1 : 0)
    );
}

/**
 * Moves each dependency (a Namespace, a CRD) in front of the first task that needs it, adopting that
 * task's phase and wave, as gitops-engine's `adjustDeps` does.
 */
function pullDependenciesForward(
    tasks: Task[],
    dependencyKey: (obj: KubeObject) => string | undefined,
    neededKey: (obj: KubeObject) => string | undefined,
): void {
    const firstUserIndex = new Map<string, number>();
    for (let i = 0; i < tasks.length; i++) {
        const task = tasks[i];
        const provides = dependencyKey(task.obj);
        if (provides !== undefined) {
            const index = firstUserIndex.get(provides);
            if (index === undefined) continue;
            task.wave = tasks[index].wave;
            task.phase = tasks[index].phase;
            tasks.splice(i, 1);
            tasks.splice(index, 0, task);
            for (const [key, first] of firstUserIndex) if (first >= index) firstUserIndex.set(key, first + 1);
        } else {
            const needs = neededKey(task.obj);
            if (needs !== undefined && !firstUserIndex.has(needs)) firstUserIndex.set(needs, i);
        }
    }
}

/** Argo CD's apply order for the given manifests. */
export function applyOrder(objects: Array<Record<string, any>>): WaveEntry[] {
    const tasks: Task[] = objects.flatMap((obj) =>
        syncPhasesOf(obj).map((phase) => ({ phase, wave: waveOf(obj), obj })),
    );
    tasks.sort(compareTasks);
    pullDependenciesForward(
        tasks,
        (obj) => (kindOf(obj) === "Namespace" && groupOf(obj) === "" ? nameOf(obj) : undefined),
        (obj) => (obj?.metadata?.namespace ? String(obj.metadata.namespace) : undefined),
    );
    pullDependenciesForward(
        tasks,
        (obj) => {
            if (kindOf(obj) !== "CustomResourceDefinition" || groupOf(obj) !== "apiextensions.k8s.io") return undefined;
            const group = obj?.spec?.group;
            const kind = obj?.spec?.names?.kind;
            return typeof group === "string" && typeof kind === "string" ? `${group}/${kind}` : undefined;
        },
        (obj) => `${groupOf(obj)}/${kindOf(obj)}`,
    );
    return tasks.map((task) => ({ phase: task.phase, wave: task.wave, kind: kindOf(task.obj), name: nameOf(task.obj) }));
}
