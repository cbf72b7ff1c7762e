/**
 * `npm run render -- --stack <name> --out <dir>`: evaluates a stack offline and writes
 *   <dir>/resources.json         every registered resource with its options, secrets redacted
 *   <dir>/manifests/<cluster>.yaml  every Kubernetes object the program declares, per cluster
 *   <dir>/apps/<tenant>.yaml     the agent chart at the stack's deploy.targetRevision, as Argo CD
 *                                will render it for each tenant
 *   <dir>/plan.json              the rollout steps with their tenants, and the in-tenant wave order
 * The output is written to a temporary folder next to <dir> and then moved into place, so <dir>
 * never mixes files of two runs and an error part-way leaves the previous output as it was.
 * Exit 0 on success; on invalid configuration, the problems on stderr, exit 2, nothing written.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { stepMatches } from "../stacks/config";
import type { MatchExpression } from "../stacks/config";
import { type DeclaredObject, type Evaluation, ROOT, declaredObjects, evaluate, resourcesJson } from "./evaluate";
import { chartAtRevision, uncommittedChartChanges } from "./chart-source";
import { type CommandSpec, UserError, progress, requireStack, runAsProgram, runCommand } from "./cli";
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
    const evaluation = await evaluate(stack, { root, ...(options.config ? { config: options.config } : {}) });
    const objects = declaredObjects(evaluation);
    const generated = generateApplications(objects);
    const apps: GeneratedApp[] = [];
    const context = { repo: options.repo ?? root, head: options.head };
    for (const [i, app] of generated.entries()) {
        report?.step(`rendering the agent chart for tenant ${i + 1} of ${generated.length}`);
        const rendered = await renderApplication(app.application, context);
        apps.push({ ...app, objects: rendered, waves: applyOrder(rendered) });
    }
    const notes: string[] = [];
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
    const clusters = [...new Set(objects.map((o) => o.cluster))].sort();
    for (const cluster of clusters) {
        const docs = objects.filter((o) => o.cluster === cluster).map((o) => o.redacted as Obj).sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
        files[`manifests/${cluster}.yaml`] = toYamlDocs(docs);
    }
    for (const app of apps) files[`apps/${app.tenant}.yaml`] = toYamlDocs(app.objects);
    files["plan.json"] = JSON.stringify(plan, null, 2) + "\n";
    report?.done(`evaluated ${evaluation.resources.length} resources, rendered ${apps.length} tenant${apps.length === 1 ? "" : "s"}`);
    return { evaluation, objects, apps, plan, ...(chart ? { chart } : {}), notes, files };
}

/**
 * Writes `files` as the whole content of `outDir`: into a fresh folder next to it, then swapped
 * into place, so no file of an earlier run stays and a failure leaves the earlier output intact.
 */
export function writeFiles(outDir: string, files: Record<string, string>): void {
    const target = path.resolve(outDir);
    const parent = path.dirname(target);
    try {
        fs.mkdirSync(parent, { recursive: true });
    } catch (err) {
        throw new UserError(`cannot create the output folder's parent ${parent} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (fs.existsSync(target) && !fs.statSync(target).isDirectory()) throw new UserError(`--out ${outDir} is a file, not a folder`);
    let staging: string;
    try {
        staging = fs.mkdtempSync(path.join(parent, `.${path.basename(target)}.render-`));
    } catch (err) {
        throw new UserError(`--out ${outDir}: cannot write in ${parent} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const previous = `${staging}.previous`;
    try {
        for (const [rel, content] of Object.entries(files)) {
            const file = path.join(staging, rel);
            fs.mkdirSync(path.dirname(file), { recursive: true });
            fs.writeFileSync(file, content);
        }
        const hadPrevious = fs.existsSync(target);
        if (hadPrevious) fs.renameSync(target, previous);
        try {
            fs.renameSync(staging, target);
        } catch (err) {
            if (hadPrevious) fs.renameSync(previous, target);
            throw err;
        }
        fs.rmSync(previous, { recursive: true, force: true });
    } catch (err) {
        fs.rmSync(staging, { recursive: true, force: true });
        throw new UserError(`--out ${outDir}: could not write the output (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the previous content is unchanged`);
    }
}

export const RENDER: CommandSpec = {
    name: "render",
    summary: "Evaluates the stack offline and writes resources.json, manifests/<cluster>.yaml, apps/<tenant>.yaml (the agent chart at the stack's deploy.targetRevision) and plan.json. The folder is replaced as a whole.",
    options: {
        stack: { type: "string", value: "STACK", required: true, description: "stack to render (a Pulumi.<STACK>.yaml in the project root)" },
        out: { type: "string", value: "DIR", required: true, description: "output folder; its previous content is replaced" },
    },
    examples: ["npm run render -- --stack prod --out out/prod"],
};

export function main(argv: string[]): Promise<number> {
    return runCommand(RENDER, argv, async (values) => {
        const stack = requireStack(String(values.stack));
        const out = String(values.out);
        const result = await renderStack(stack, ROOT, { progress: true });
        for (const note of result.notes) process.stderr.write(`note: ${note}\n`);
        writeFiles(out, result.files);
        const count = (prefix: string) => Object.keys(result.files).filter((f) => f.startsWith(prefix)).length;
        const chart = result.chart ? ` (agent chart at ${result.chart.revision}, commit ${result.chart.commit.slice(0, 12)})` : "";
        process.stdout.write(
            `Wrote ${Object.keys(result.files).length} files for stack ${stack} to ${out}, replacing its previous content${chart}:\n` +
                `  resources.json, plan.json, manifests/ (${count("manifests/")} cluster${count("manifests/") === 1 ? "" : "s"}), apps/ (${count("apps/")} tenant${count("apps/") === 1 ? "" : "s"})\n`,
        );
        return 0;
    });
}

if (require.main === module) runAsProgram(main);
