/**
 * Renders a stack offline: evaluates the program (evaluate.ts), renders the agent chart at the
 * stack's deploy.targetRevision for each tenant as Argo CD will (helm.ts, chart-source.ts), and
 * orders each tenant's objects into sync waves (waves.ts). `npm run render`, `plan` and `diff`
 * (commands/) print or write what this returns.
 */
import * as YAML from "yaml";
import { stepMatches } from "../stacks/config";
import type { MatchExpression } from "../stacks/config";
import { type DeclaredObject, type Evaluation, ROOT, declaredObjects, evaluate, resourcesJson } from "./evaluate";
import { destinationRefusal, registeredClusters } from "./app-project";
import { evaluateRegistrations } from "./registrations";
import { chartAtRevision, uncommittedChartChanges } from "./chart-source";
import { progress } from "./report";
import { renderChart } from "./helm";
import { type WaveEntry, applyOrder } from "./waves";

type Obj = Record<string, any>;

export interface StepPlan {
    index: number;
    matchExpressions: MatchExpression[];
    maxUpdate: number | string | null;
    tenants: string[];
}

export interface Plan {
    steps: StepPlan[];
    waves: WaveEntry[];
}

/** One tenant's Application as the ApplicationSet's cluster generator produces it. */
export interface GeneratedApp {
    tenant: string;
    step: number;
    application: Obj;
    /** Why Argo CD would refuse its destination (not permitted in its AppProject); absent when admitted. */
    refusal?: string;
    /** The agent chart rendered with the Application's Helm source. */
    objects: Obj[];
    waves: WaveEntry[];
}

export interface RenderResult {
    /** The hub stack's evaluation. */
    evaluation: Evaluation;
    /** Each active tenant's stack, which registers it on the hub (evaluator/registrations.ts). */
    registrations: Evaluation[];
    /** What the hub stack and the tenant stacks declare, by cluster. */
    objects: DeclaredObject[];
    apps: GeneratedApp[];
    plan: Plan;
    /** The chart the tenants render: the stack's targetRevision and the commit it resolved to. */
    chart?: { revision: string; commit: string };
    /** Things the reader should know (e.g. uncommitted chart changes that are not rendered). */
    notes: string[];
    /** Output files, relative path -> content. */
    files: Record<string, string>;
}

/** Where the chart comes from: the git repository (default: the project root) and what HEAD means there. */
export interface RenderOptions {
    repo?: string;
    head?: string;
    /** Reports progress on stderr (commands; tests stay quiet). */
    progress?: boolean;
    /** The stack's `config:` map in memory instead of its stack file (generated fleets). */
    config?: Record<string, unknown>;
    /** Its tenant inventory in memory (entries with names) instead of its folder. */
    inventory?: Array<Record<string, unknown>>;
}

/** Cluster generator parameters of one cluster Secret (Generators-Cluster.md). */
export interface ClusterParams {
    name: string;
    nameNormalized: string;
    server: string;
    metadata: { labels: Record<string, string>; annotations: Record<string, string> };
}

/**
 * Expands the Go-template expressions agentfleet's ApplicationSet template uses, with
 * `missingkey=error` semantics: an unknown expression or a missing key is an error, as it would
 * abort the controller's reconcile.
 */
export function expandTemplate(value: unknown, params: ClusterParams): unknown {
    if (typeof value === "string") {
        return value.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (_, expr: string) => {
            const simple = /^\.(name|nameNormalized|server)$/.exec(expr);
            if (simple) return params[simple[1] as "name" | "nameNormalized" | "server"];
            const indexed = /^index \.metadata\.(labels|annotations) "([^"]+)"$/.exec(expr);
            if (indexed) {
                const v = params.metadata[indexed[1] as "labels" | "annotations"][indexed[2]];
                if (v === undefined) throw new Error(`template expression {{${expr}}}: cluster ${params.name} has no ${indexed[1].slice(0, -1)} ${JSON.stringify(indexed[2])}`);
                return v;
            }
            throw new Error(`template expression {{${expr}}} is not one agentfleet knows how to expand`);
        });
    }
    if (Array.isArray(value)) return value.map((v) => expandTemplate(v, params));
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [expandTemplate(k, params), expandTemplate(v, params)]));
    return value;
}

const matchesSelector = (labels: Record<string, string>, selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/**
 * The Applications the fleet's ApplicationSet generates, in rollout order, with their step, and
 * why Argo CD would refuse one's destination (its AppProject's verdict, see app-project.ts).
 */
export function generateApplications(objects: DeclaredObject[]): Array<{ tenant: string; step: number; application: Obj; refusal?: string }> {
    const hub = objects.filter((o) => o.cluster === "hub").map((o) => o.object as Obj);
    const appSet = hub.find((o) => o.kind === "ApplicationSet");
    if (!appSet) return [];
    const clusters = registeredClusters(hub);
    const refusal = (application: Obj): string | undefined => {
        const project = hub.find((o) => o.kind === "AppProject" && o.metadata?.name === application.spec.project);
        return project ? destinationRefusal(project, clusters, application.spec.destination) : `application references project ${application.spec.project} which does not exist`;
    };
    const selector: Record<string, string> = appSet.spec.generators[0].clusters.selector.matchLabels;
    const steps: Array<{ matchExpressions: MatchExpression[] }> = appSet.spec.strategy.rollingSync.steps;
    const apps = hub
        .filter((o) => o.kind === "Secret" && matchesSelector(o.metadata?.labels ?? {}, selector))
        .map((secret) => {
            const name = String(secret.stringData.name);
            const params: ClusterParams = {
                name,
                nameNormalized: name.toLowerCase().replace(/[^a-z0-9-.]/g, "-"),
                server: String(secret.stringData.server),
                metadata: { labels: secret.metadata.labels ?? {}, annotations: secret.metadata.annotations ?? {} },
            };
            const application: Obj = { apiVersion: "argoproj.io/v1alpha1", kind: "Application", ...(expandTemplate(appSet.spec.template, params) as Obj) };
            // First matching step wins; -1 means Argo CD would never sync it.
            const step = steps.findIndex((s) => stepMatches(s, application.metadata.labels ?? {}));
            const refused = refusal(application);
            return { tenant: name, step, application, ...(refused ? { refusal: refused } : {}) };
        });
    return apps.sort((a, b) => (a.step === -1 ? Infinity : a.step) - (b.step === -1 ? Infinity : b.step) || a.tenant.localeCompare(b.tenant));
}

/**
 * Renders the agent chart for one generated Application, as Argo CD's repo-server would: the
 * chart at the Application's targetRevision, from git.
 */
export async function renderApplication(application: Obj, context: { repo: string; head?: string }): Promise<Obj[]> {
    const source = application.spec.source;
    return renderChart({
        chartDir: chartAtRevision(source.targetRevision, source.path, context).chartDir,
        releaseName: source.helm.releaseName,
        namespace: application.spec.destination.namespace,
        valueFiles: source.helm.valueFiles,
        values: source.helm.valuesObject,
        ignoreMissingValueFiles: source.helm.ignoreMissingValueFiles,
    });
}

const toYamlDocs = (objs: Obj[]) => objs.map((o) => YAML.stringify(o, { lineWidth: 0 })).join("---\n");
const sortKey = (o: Obj) => `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;

/** Evaluates and renders a stack in memory; nothing is written. */
export async function renderStack(stack: string, root: string = ROOT, options: RenderOptions = {}): Promise<RenderResult> {
    const report = options.progress ? progress(`${stack}`) : undefined;
    report?.step("evaluating the program");
    const evaluation = await evaluate(stack, { root, ...(options.config ? { config: options.config } : {}), ...(options.inventory ? { inventory: options.inventory } : {}) });
    const registrations = await evaluateRegistrations(evaluation, (tenant, i, count) => report?.step(`evaluating the tenant stack of ${tenant} (${i + 1} of ${count}): its registration on the hub`), root);
    const objects = [evaluation, ...registrations].flatMap(declaredObjects);
    const generated = generateApplications(objects);
    const apps: GeneratedApp[] = [];
    const context = { repo: options.repo ?? root, head: options.head };
    for (const [i, app] of generated.entries()) {
        report?.step(`rendering the agent chart for tenant ${i + 1} of ${generated.length}`);
        const rendered = await renderApplication(app.application, context);
        apps.push({ ...app, objects: rendered, waves: applyOrder(rendered) });
    }
    const notes: string[] = apps.filter((a) => a.refusal).map((a) => `Argo CD would refuse tenant ${a.tenant}'s Application and never sync it: ${a.refusal}.`);
    const source = generated[0]?.application.spec.source;
    const chart = source ? { revision: String(source.targetRevision), commit: chartAtRevision(source.targetRevision, source.path, context).commit } : undefined;
    if (source && !options.head && uncommittedChartChanges(context.repo, source.path)) {
        notes.push(`${source.path} has uncommitted changes; they are not rendered: Argo CD renders the chart as committed at ${source.targetRevision}.`);
    }
    const appSet = objects.find((o) => o.cluster === "hub" && o.object.kind === "ApplicationSet")?.object as Obj | undefined;
    const steps: StepPlan[] = (appSet?.spec.strategy.rollingSync.steps ?? []).map((s: Obj, index: number) => ({
        index,
        matchExpressions: s.matchExpressions,
        maxUpdate: s.maxUpdate ?? null,
        tenants: apps.filter((a) => a.step === index).map((a) => a.tenant),
    }));
    const plan: Plan = { steps, waves: apps[0]?.waves ?? [] };

    const files: Record<string, string> = {};
    files["resources.json"] = JSON.stringify(resourcesJson(evaluation), null, 2) + "\n";
    for (const registration of registrations) files[`tenant-stacks/${registration.stack}.json`] = JSON.stringify(resourcesJson(registration), null, 2) + "\n";
    const clusters = [...new Set(objects.map((o) => o.cluster))].sort();
    for (const cluster of clusters) {
        const docs = objects.filter((o) => o.cluster === cluster).map((o) => o.redacted as Obj).sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
        files[`manifests/${cluster}.yaml`] = toYamlDocs(docs);
    }
    for (const app of apps) files[`apps/${app.tenant}.yaml`] = toYamlDocs(app.objects);
    files["plan.json"] = JSON.stringify(plan, null, 2) + "\n";
    report?.done(`evaluated ${evaluation.resources.length} resources, rendered ${apps.length} tenant${apps.length === 1 ? "" : "s"}`);
    return { evaluation, registrations, objects, apps, plan, ...(chart ? { chart } : {}), notes, files };
}
