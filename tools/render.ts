/**
 * `npm run render -- --stack <name> --out <dir>`: evaluates a stack offline and writes
 *   <dir>/resources.json         every registered resource, secrets redacted
 *   <dir>/manifests/<cluster>.yaml  every Kubernetes object the program declares, per cluster
 *   <dir>/apps/<tenant>.yaml     the agent chart as Argo CD will render it for each tenant
 *   <dir>/plan.json              the rollout steps with their tenants, and the in-tenant wave order
 * Exit 0 on success; on invalid configuration, the problems on stderr, exit 2, nothing written.
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import * as YAML from "yaml";
import { ConfigError, stepMatches } from "../stacks/config";
import type { MatchExpression } from "../stacks/config";
import { type DeclaredObject, type Evaluation, ROOT, declaredObjects, evaluate, resourcesJson } from "./evaluate";
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
    /** The agent chart rendered with the Application's Helm source. */
    objects: Obj[];
    waves: WaveEntry[];
}

export interface RenderResult {
    evaluation: Evaluation;
    objects: DeclaredObject[];
    apps: GeneratedApp[];
    plan: Plan;
    /** Output files, relative path -> content. */
    files: Record<string, string>;
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

/** The Applications the fleet's ApplicationSet generates, in rollout order, with their step. */
export function generateApplications(objects: DeclaredObject[]): Array<{ tenant: string; step: number; application: Obj }> {
    const hub = objects.filter((o) => o.cluster === "hub").map((o) => o.object as Obj);
    const appSet = hub.find((o) => o.kind === "ApplicationSet");
    if (!appSet) return [];
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
            return { tenant: name, step, application };
        });
    return apps.sort((a, b) => (a.step === -1 ? Infinity : a.step) - (b.step === -1 ? Infinity : b.step) || a.tenant.localeCompare(b.tenant));
}

/** Renders the agent chart for one generated Application, as Argo CD's repo-server would. */
export async function renderApplication(application: Obj, root: string): Promise<Obj[]> {
    const source = application.spec.source;
    return renderChart({
        chartDir: path.join(root, source.path),
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
export async function renderStack(stack: string, root: string = ROOT): Promise<RenderResult> {
    const evaluation = await evaluate(stack, { root });
    const objects = declaredObjects(evaluation);
    const generated = generateApplications(objects);
    const apps: GeneratedApp[] = [];
    for (const app of generated) {
        const rendered = await renderApplication(app.application, root);
        apps.push({ ...app, objects: rendered, waves: applyOrder(rendered) });
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
    const clusters = [...new Set(objects.map((o) => o.cluster))].sort();
    for (const cluster of clusters) {
        const docs = objects.filter((o) => o.cluster === cluster).map((o) => o.redacted as Obj).sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
        files[`manifests/${cluster}.yaml`] = toYamlDocs(docs);
    }
    for (const app of apps) files[`apps/${app.tenant}.yaml`] = toYamlDocs(app.objects);
    files["plan.json"] = JSON.stringify(plan, null, 2) + "\n";
    return { evaluation, objects, apps, plan, files };
}

export function writeFiles(outDir: string, files: Record<string, string>): void {
    for (const [rel, content] of Object.entries(files)) {
        const file = path.join(outDir, rel);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, content);
    }
}

/** Prints configuration problems the same way for every command. Returns the exit code. */
export function reportFailure(err: unknown): number {
    if (err instanceof ConfigError) {
        process.stderr.write(`${err.message}\n`);
        return 2;
    }
    process.stderr.write(`error: ${(err as Error)?.stack ?? err}\n`);
    return 1;
}

export async function main(argv: string[]): Promise<number> {
    let values: { stack?: string; out?: string };
    try {
        ({ values } = parseArgs({ args: argv, options: { stack: { type: "string", default: "dev" }, out: { type: "string" } }, strict: true }));
    } catch (err) {
        process.stderr.write(`${(err as Error).message}\nusage: npm run render -- --stack <name> --out <dir>\n`);
        return 1;
    }
    if (!values.out) {
        process.stderr.write("usage: npm run render -- --stack <name> --out <dir>\n");
        return 1;
    }
    try {
        const result = await renderStack(values.stack!);
        writeFiles(values.out, result.files);
        process.stdout.write(`wrote ${Object.keys(result.files).length} files for stack ${values.stack} to ${values.out}\n`);
        return 0;
    } catch (err) {
        return reportFailure(err);
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).then((code) => process.exit(code));
}
