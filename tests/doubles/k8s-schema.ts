/**
 * Strict validation of Kubernetes objects against the official OpenAPI / CRD schemas shipped by
 * `kubernetes-models` and `@kubernetes-models/argo-cd`, with unknown fields reported as errors
 * (like `kubectl apply --validate=strict`).
 *
 * The packages compile their schemas to validator functions that check only the properties they
 * know. We run those validators over a recording proxy of the object: every field the validator
 * never looked at is unknown to the schema. Objects the validator only enumerates (maps such as
 * labels or ConfigMap data) or never opens (x-kubernetes-preserve-unknown-fields, such as Helm
 * `valuesObject`) are not checked for unknown keys, exactly as the API server treats them.
 */

/** A model class from kubernetes-models: its prototype carries the compiled schema validator. */
interface ModelClass {
    prototype: { validate(): void };
}

/** apiVersion/kind -> [module specifier, export name]. ESM-only packages, so loaded with import(). */
const MODELS: Record<string, [string, string]> = {
    "v1/Namespace": ["kubernetes-models/v1", "Namespace"],
    "v1/Secret": ["kubernetes-models/v1", "Secret"],
    "v1/ConfigMap": ["kubernetes-models/v1", "ConfigMap"],
    "v1/Service": ["kubernetes-models/v1", "Service"],
    "v1/ServiceAccount": ["kubernetes-models/v1", "ServiceAccount"],
    "v1/Pod": ["kubernetes-models/v1", "Pod"],
    "apps/v1/Deployment": ["kubernetes-models/apps/v1", "Deployment"],
    "apps/v1/StatefulSet": ["kubernetes-models/apps/v1", "StatefulSet"],
    "batch/v1/Job": ["kubernetes-models/batch/v1", "Job"],
    "batch/v1/CronJob": ["kubernetes-models/batch/v1", "CronJob"],
    "policy/v1/PodDisruptionBudget": ["kubernetes-models/policy/v1", "PodDisruptionBudget"],
    "networking.k8s.io/v1/Ingress": ["kubernetes-models/networking.k8s.io/v1", "Ingress"],
    "networking.k8s.io/v1/NetworkPolicy": ["kubernetes-models/networking.k8s.io/v1", "NetworkPolicy"],
    "rbac.authorization.k8s.io/v1/Role": ["kubernetes-models/rbac.authorization.k8s.io/v1", "Role"],
    "rbac.authorization.k8s.io/v1/RoleBinding": ["kubernetes-models/rbac.authorization.k8s.io/v1", "RoleBinding"],
    "rbac.authorization.k8s.io/v1/ClusterRole": ["kubernetes-models/rbac.authorization.k8s.io/v1", "ClusterRole"],
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": ["kubernetes-models/rbac.authorization.k8s.io/v1", "ClusterRoleBinding"],
    "autoscaling/v2/HorizontalPodAutoscaler": ["kubernetes-models/autoscaling/v2", "HorizontalPodAutoscaler"],
    "argoproj.io/v1alpha1/ApplicationSet": ["@kubernetes-models/argo-cd/argoproj.io/v1alpha1", "ApplicationSet"],
    "argoproj.io/v1alpha1/Application": ["@kubernetes-models/argo-cd/argoproj.io/v1alpha1", "Application"],
    "argoproj.io/v1alpha1/AppProject": ["@kubernetes-models/argo-cd/argoproj.io/v1alpha1", "AppProject"],
};

// TypeScript (module node16, CommonJS output) keeps a real import() here, which the ESM-only
// model packages need.
const loaded = new Map<string, Promise<ModelClass>>();
function loadModel(apiVersion: string, kind: string): Promise<ModelClass> | undefined {
    const key = `${apiVersion}/${kind}`;
    const entry = MODELS[key];
    if (!entry) return undefined;
    if (!loaded.has(key)) {
        loaded.set(key, import(entry[0]).then((mod: Record<string, ModelClass>) => mod[entry[1]]));
    }
    return loaded.get(key);
}

interface Visit {
    target: object;
    path: string;
    read: Set<string>;
    enumerated: boolean;
}

/** Runs `validate` over a proxy of `data` and returns the fields it never read. */
function unknownFields(validate: (data: unknown) => void, data: unknown): { schemaError?: string; unknown: string[] } {
    const visits: Visit[] = [];
    const wrap = (value: unknown, path: string): unknown => {
        if (value === null || typeof value !== "object") return value;
        const visit: Visit = { target: value, path, read: new Set(), enumerated: false };
        visits.push(visit);
        const children = new Map<string, unknown>();
        return new Proxy(value, {
            get(target, key, receiver) {
                const child = Reflect.get(target, key, receiver);
                if (typeof key !== "string" || !Object.prototype.hasOwnProperty.call(target, key)) return child;
                visit.read.add(key);
                if (!children.has(key)) children.set(key, wrap(child, `${path}/${key}`));
                return children.get(key);
            },
            has(target, key) {
                if (typeof key === "string") visit.read.add(key);
                return Reflect.has(target, key);
            },
            ownKeys(target) {
                visit.enumerated = true;
                return Reflect.ownKeys(target);
            },
        });
    };
    let schemaError: string | undefined;
    try {
        validate(wrap(data, ""));
    } catch (err) {
        schemaError = (err as Error).message;
    }
    const unknown: string[] = [];
    for (const visit of visits) {
        if (Array.isArray(visit.target) || visit.enumerated || visit.read.size === 0) continue;
        for (const key of Object.keys(visit.target)) {
            if (!visit.read.has(key)) unknown.push(`${visit.path}/${key}`);
        }
    }
    return { schemaError, unknown };
}

/**
 * Validates one Kubernetes object strictly. Returns a list of problems (empty when valid). An
 * object whose apiVersion/kind has no schema here is itself a problem: nothing goes unchecked.
 */
export async function validateObject(obj: { apiVersion?: string; kind?: string; [k: string]: unknown }): Promise<string[]> {
    const id = `${obj.apiVersion}/${obj.kind} ${(obj.metadata as { name?: string } | undefined)?.name ?? "<no name>"}`;
    const model = obj.apiVersion && obj.kind ? loadModel(obj.apiVersion, obj.kind) : undefined;
    if (!model) return [`${id}: no schema known for ${obj.apiVersion}/${obj.kind}`];
    const Model = await model;
    const plain = JSON.parse(JSON.stringify(obj));
    const { schemaError, unknown } = unknownFields((data) => Model.prototype.validate.call(data), plain);
    const problems: string[] = [];
    if (schemaError) problems.push(`${id}: ${schemaError}`);
    for (const path of unknown) problems.push(`${id}: unknown field ${path}`);
    return problems;
}

/** Validates many objects; returns every problem found. */
export async function validateObjects(objs: Array<{ apiVersion?: string; kind?: string }>): Promise<string[]> {
    const all = await Promise.all(objs.map((o) => validateObject(o as never)));
    return all.flat();
}
