/**
 * `npm run plan -- --stack <name>`: a readable summary of what the stack declares, evaluated
 * offline with no credentials: the hub, tenants by ring, the rollout steps, the in-tenant wave
 * order, health checks, notification triggers, and resources by kind.
 */
import { parseArgs } from "util";
import { PROGRESSIVE_SYNCS_PARAM } from "../components/argocd-hub";
import { type RenderResult, renderStack, reportFailure } from "./render";
import { formatTable } from "./table";

type Obj = Record<string, any>;

const matcherText = (exprs: Array<{ key: string; operator: string; values: string[] }>) => exprs.map((e) => `${e.key} ${e.operator} (${e.values.join(", ")})`).join(" and ");

/** The plan as text. Reads only what the program declared, never the configuration directly. */
export function formatPlan(stack: string, result: RenderResult): string {
    const { evaluation, objects, apps, plan } = result;
    const release = evaluation.resources.find((r) => r.type === "kubernetes:helm.sh/v3:Release");
    const values = (release?.inputs.values ?? {}) as Obj;
    const hubObjects = objects.filter((o) => o.cluster === "hub").map((o) => o.object as Obj);
    const appSet = hubObjects.find((o) => o.kind === "ApplicationSet");
    const clusterSecrets = hubObjects.filter((o) => o.kind === "Secret" && o.metadata?.labels?.["argocd.argoproj.io/secret-type"] === "cluster");
    const out: string[] = [];

    out.push(`agentfleet plan: stack ${stack}`, "");
    out.push("Hub");
    const cm = (values.configs?.cm ?? {}) as Record<string, string>;
    const notifications = (values.notifications ?? {}) as Obj;
    const hubRows: Array<[string, string]> = [
        ["Argo CD", `${values.global?.image?.tag} (argo-helm chart argo-cd ${release?.inputs.version}), namespace ${release?.inputs.namespace}`],
        ["URL", `${notifications.argocdUrl ?? ""}`],
        ["progressive syncs", values.configs?.params?.[PROGRESSIVE_SYNCS_PARAM] === "true" ? "enabled (configs.params)" : "DISABLED"],
        ["high availability", values["redis-ha"]?.enabled ? `yes: redis-ha, ${values.server?.replicas} server / ${values.repoServer?.replicas} repo-server replicas` : "no"],
        ["controller shards", String(values.controller?.replicas ?? 1)],
        ["health checks", Object.keys(cm).filter((k) => k.startsWith("resource.customizations.health.")).map((k) => k.slice("resource.customizations.health.".length)).join(", ") || "none"],
        ["notification triggers", Object.keys(notifications.triggers ?? {}).map((k) => k.replace(/^trigger\./, "")).join(", ") || "none"],
        ["notifiers", Object.keys(notifications.notifiers ?? {}).map((k) => k.replace(/^service\./, "")).join(", ") || "none"],
    ];
    out.push(...hubRows.map(([k, v]) => `  ${(k + ":").padEnd(22)} ${v}`), "");

    out.push("Tenants by ring");
    const tenantRows = clusterSecrets
        .map((s) => {
            const l = s.metadata.labels;
            const mode = objects.some((o) => o.cluster === l.tenant) ? "bootstrap" : "token";
            const paused = s.metadata.annotations?.["argocd.argoproj.io/skip-reconcile"] === "true" ? "paused" : "";
            return [l.ring, l.tenant, l.env, l.region, mode, paused];
        })
        .sort((a, b) => a[0].localeCompare(b[0]) || a[1].localeCompare(b[1]));
    out.push(formatTable(["ring", "tenant", "env", "region", "credentials", ""], tenantRows).replace(/^/gm, "  "));

    const source = appSet?.spec.template.spec.source ?? {};
    out.push(`Rollout: ApplicationSet ${appSet?.metadata.name}, ${appSet?.spec.strategy.type}, chart ${source.path} at ${source.targetRevision}`);
    out.push(formatTable(["step", "matcher", "maxUpdate", "tenants"], plan.steps.map((s) => [s.index + 1, matcherText(s.matchExpressions), s.maxUpdate === null ? "100% (unset)" : String(s.maxUpdate), s.tenants.join(", ") || "(none)"])).replace(/^/gm, "  "));
    const unmatched = apps.filter((a) => a.step === -1).map((a) => a.tenant);
    if (unmatched.length > 0) out.push(`  WARNING: never synced (no step matches): ${unmatched.join(", ")}`, "");

    out.push(`Waves in each tenant (${apps[0]?.tenant ?? "no tenant"}; Argo CD applies phase, then wave, then kind, then name)`);
    out.push(formatTable(["phase", "wave", "kind", "name"], plan.waves.map((w) => [w.phase, w.wave, w.kind, w.name])).replace(/^/gm, "  "));

    out.push("Resources by kind");
    const counts = new Map<string, number>();
    for (const r of evaluation.resources) counts.set(r.type, (counts.get(r.type) ?? 0) + 1);
    out.push(formatTable(["type", "count"], [...counts.entries()].sort((a, b) => a[0].localeCompare(b[0]))).replace(/^/gm, "  "));
    out.push(`  ${evaluation.resources.length} resources in all.`);
    return out.join("\n").replace(/[ \t]+$/gm, "") + "\n";
}

export async function main(argv: string[]): Promise<number> {
    let stack: string;
    try {
        stack = parseArgs({ args: argv, options: { stack: { type: "string", default: "dev" } }, strict: true }).values.stack!;
    } catch (err) {
        process.stderr.write(`${(err as Error).message}\nusage: npm run plan -- --stack <name>\n`);
        return 1;
    }
    try {
        process.stdout.write(formatPlan(stack, await renderStack(stack)));
        return 0;
    } catch (err) {
        return reportFailure(err);
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).then((code) => process.exit(code));
}
