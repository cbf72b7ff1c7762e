/**
 * `npm run plan -- --stack <name> [--json]`: a readable summary of what the stack declares,
 * evaluated offline with no credentials: the hub, tenants by ring (and decommissioned ones), the
 * rollout steps, sync windows, the in-tenant wave order, health checks, notification triggers,
 * and resources by kind. Large fleets are summarised; `--json` prints everything.
 */
import { PROGRESSIVE_SYNCS_PARAM } from "../components/argocd-hub";
import { type CredentialMode, DEFAULT_ARGOCD_VERSION, HA_MIN_HUB_NODES, PROJECT } from "../stacks/config";
import { type CommandSpec, requireStack, runAsProgram, runCommand } from "./cli";
import { ROOT, reveal } from "../evaluator/evaluate";
import { type RenderResult, renderStack } from "../evaluator/render";
import { formatTable } from "./table";

type Obj = Record<string, any>;

const matcherText = (exprs: Array<{ key: string; operator: string; values: string[] }>) => exprs.map((e) => `${e.key} ${e.operator} (${e.values.join(", ")})`).join(" and ");

/** A note when the stack runs an Argo CD other than the one the real-engine suite runs the rollout with. */
export function argocdVersionNote(version: string | undefined): string[] {
    if (!version || version === DEFAULT_ARGOCD_VERSION) return [];
    return [`hub.argocdVersion ${version} is not the Argo CD the real-engine suite proves the rollout with (${DEFAULT_ARGOCD_VERSION}, docs/real-argocd.md): RollingSync, the sync waves and the health checks were run by ${DEFAULT_ARGOCD_VERSION}'s controllers, not ${version}'s`];
}

/** Above this many tenants the text plan summarises per ring; `--json` lists every tenant. */
export const TENANT_ROWS_SHOWN = 50;
/** Tenant names shown in one rollout row before "and N more". */
export const TENANTS_PER_STEP_SHOWN = 8;

export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * Each tenant's credential mode, from its tenant file's credentials, the field
 * `tenant list` shows (the program's loader validated it). Nothing declared on the hub tells the
 * modes apart: every tenant's cluster Secret holds a token and CA.
 */
export function credentialModes(inventory: Array<Record<string, unknown>>): Map<string, CredentialMode> {
    return new Map(inventory.map((t) => [String(t.name), t.credentials as CredentialMode]));
}

/** The stack's soak gate (agentfleet:promotion, validated by the program's loader), or null without one. */
function promotionRule(config: Record<string, string>): { from: string; soak: string } | null {
    const rule = JSON.parse(config[`${PROJECT}:promotion`] ?? "{}") as { from?: string; soak?: string };
    return rule.from && rule.soak ? { from: rule.from, soak: rule.soak } : null;
}

/** Everything the plan shows, as data (`--json`). Reads only what the program declared. */
export function planSummary(stack: string, result: RenderResult) {
    const { evaluation, objects, apps, plan } = result;
    const release = evaluation.resources.find((r) => r.type === "kubernetes:helm.sh/v3:Release");
    const values = (release?.inputs.values ?? {}) as Obj;
    const hubObjects = objects.filter((o) => o.cluster === "hub").map((o) => o.object as Obj);
    const appSet = hubObjects.find((o) => o.kind === "ApplicationSet");
    const project = hubObjects.find((o) => o.kind === "AppProject");
    const clusterSecrets = hubObjects.filter((o) => o.kind === "Secret" && o.metadata?.labels?.["argocd.argoproj.io/secret-type"] === "cluster");
    const cm = (values.configs?.cm ?? {}) as Record<string, string>;
    const notifications = (values.notifications ?? {}) as Obj;
    const source = appSet?.spec.template.spec.source ?? {};
    const modes = credentialModes(evaluation.inventory);
    const counts = new Map<string, number>();
    for (const r of evaluation.resources) counts.set(r.type, (counts.get(r.type) ?? 0) + 1);
    return {
        stack,
        hub: {
            argocd: `${values.global?.image?.tag} (argo-helm chart argo-cd ${release?.inputs.version}), namespace ${release?.inputs.namespace}`,
            url: `${notifications.argocdUrl ?? ""}`,
            progressiveSyncs: values.configs?.params?.[PROGRESSIVE_SYNCS_PARAM] === "true",
            // The HA requirement is stated with the plan: the chart cannot schedule redis-ha on fewer nodes.
            highAvailability: values["redis-ha"]?.enabled ? `yes: redis-ha, ${values.server?.replicas} server / ${values.repoServer?.replicas} repo-server replicas; needs ${HA_MIN_HUB_NODES} schedulable hub nodes (redis-ha and HAProxy: ${HA_MIN_HUB_NODES} replicas each, required pod anti-affinity)` : "no",
            controllerShards: Number(values.controller?.replicas ?? 1),
            healthChecks: Object.keys(cm).filter((k) => k.startsWith("resource.customizations.health.")).map((k) => k.slice("resource.customizations.health.".length)),
            notificationTriggers: Object.keys(notifications.triggers ?? {}).map((k) => k.replace(/^trigger\./, "")),
            notifiers: Object.keys(notifications.notifiers ?? {}).map((k) => k.replace(/^service\./, "")),
        },
        tenants: clusterSecrets
            .map((s) => {
                const l = s.metadata.labels;
                return {
                    ring: String(l.ring),
                    tenant: String(l.tenant),
                    env: String(l.env),
                    region: String(l.region),
                    credentials: modes.get(String(l.tenant)) ?? "unknown",
                    paused: s.metadata.annotations?.["argocd.argoproj.io/skip-reconcile"] === "true",
                };
            })
            .sort((a, b) => a.ring.localeCompare(b.ring) || a.tenant.localeCompare(b.tenant)),
        // A decommissioned tenant keeps only its provider, with deleteUnreachable.
        decommissioned: evaluation.resources
            .filter((r) => r.type === "pulumi:providers:kubernetes" && reveal(r.inputs.deleteUnreachable) === true)
            .map((r) => String(reveal(r.inputs.clusterIdentifier) ?? r.name))
            .sort(),
        rollout: {
            applicationSet: appSet?.metadata.name,
            strategy: appSet?.spec.strategy.type,
            chartPath: source.path,
            targetRevision: source.targetRevision,
            commit: result.chart?.commit,
            steps: plan.steps.map((s) => ({ step: s.index + 1, matcher: matcherText(s.matchExpressions), maxUpdate: s.maxUpdate, tenants: s.tenants })),
            neverSynced: apps.filter((a) => a.step === -1).map((a) => a.tenant),
            syncWindows: ((project?.spec.syncWindows ?? []) as Obj[]).map((w) => ({ kind: w.kind, schedule: w.schedule, duration: w.duration, timeZone: w.timeZone ?? "UTC", manualSync: w.manualSync })),
            promotion: promotionRule(evaluation.config),
        },
        waves: { tenant: apps[0]?.tenant, order: plan.waves },
        resources: { byType: Object.fromEntries([...counts.entries()].sort((a, b) => a[0].localeCompare(b[0]))), total: evaluation.resources.length },
        notes: [...argocdVersionNote(values.global?.image?.tag), ...result.notes],
    };
}

const indent = (text: string) => text.replace(/^/gm, "  ");

/** The plan as text. */
export function formatPlan(stack: string, result: RenderResult): string {
    const p = planSummary(stack, result);
    const out: string[] = [];
    out.push(`agentfleet plan: stack ${stack}`, "");
    out.push("Hub");
    const hubRows: Array<[string, string]> = [
        ["Argo CD", p.hub.argocd],
        ["URL", p.hub.url],
        ["progressive syncs", p.hub.progressiveSyncs ? "enabled (configs.params)" : "DISABLED"],
        ["high availability", p.hub.highAvailability],
        ["controller shards", String(p.hub.controllerShards)],
        ["health checks", p.hub.healthChecks.join(", ") || "none"],
        ["notification triggers", p.hub.notificationTriggers.join(", ") || "none"],
        ["notifiers", p.hub.notifiers.join(", ") || "none"],
    ];
    out.push(...hubRows.map(([k, v]) => `  ${(k + ":").padEnd(22)} ${v}`), "");

    if (p.tenants.length <= TENANT_ROWS_SHOWN) {
        out.push("Tenants by ring");
        out.push(indent(formatTable(["ring", "tenant", "env", "region", "credentials", ""], p.tenants.map((t) => [t.ring, t.tenant, t.env, t.region, t.credentials, t.paused ? "paused" : ""]))));
    } else {
        out.push(`Tenants by ring (${p.tenants.length} tenants, summarised; --json lists each)`);
        const rings = [...new Set(p.tenants.map((t) => t.ring))];
        const rows = rings.map((ring) => {
            const inRing = p.tenants.filter((t) => t.ring === ring);
            return [ring, inRing.length, [...new Set(inRing.map((t) => t.region))].sort().join(", "), inRing.filter((t) => t.credentials === "bootstrap").length, inRing.filter((t) => t.paused).length];
        });
        out.push(indent(formatTable(["ring", "tenants", "regions", "bootstrap", "paused"], rows)));
    }
    if (p.decommissioned.length > 0) out.push(`  Decommissioned (leave the state on the next pulumi up, not in the rollout): ${p.decommissioned.join(", ")}`, "");

    const r = p.rollout;
    out.push(`Rollout: ApplicationSet ${r.applicationSet}, ${r.strategy}, chart ${r.chartPath} at ${r.targetRevision}${r.commit ? ` (commit ${r.commit.slice(0, 12)})` : ""}`);
    const tenantList = (tenants: string[]) => (tenants.length === 0 ? "(none)" : tenants.length <= TENANTS_PER_STEP_SHOWN ? tenants.join(", ") : `${plural(tenants.length, "tenant")}: ${tenants.slice(0, 5).join(", ")}, ... and ${tenants.length - 5} more`);
    out.push(indent(formatTable(["step", "matcher", "maxUpdate", "tenants"], r.steps.map((s) => [s.step, s.matcher, s.maxUpdate === null ? "100% (unset)" : String(s.maxUpdate), tenantList(s.tenants)]))));
    if (r.neverSynced.length > 0) out.push(`  WARNING: never synced (no step matches): ${r.neverSynced.join(", ")}`, "");
    out.push(
        r.promotion
            ? `  Promotion: a revision reaches ${stack} only after every ${r.promotion.from} tenant ran it Synced and Healthy for ${r.promotion.soak} (npm run promote -- --to ${stack})`
            : "  Promotion: no soak gate (agentfleet:promotion unset): deploy.targetRevision moves by any reviewed change",
    );
    if (r.syncWindows.length === 0) out.push("  Sync windows: none (Argo CD may sync at any time)", "");
    else {
        out.push("  Sync windows (AppProject, every application)");
        out.push(indent(indent(formatTable(["kind", "schedule", "duration", "time zone", "manual sync"], r.syncWindows.map((w) => [w.kind, w.schedule, w.duration, w.timeZone, w.manualSync ? "allowed" : "blocked"])))));
    }

    out.push(`Waves in each tenant (${p.waves.tenant ?? "no tenant"}; Argo CD applies phase, then wave, then kind, then name)`);
    out.push(indent(formatTable(["phase", "wave", "kind", "name"], p.waves.order.map((w) => [w.phase, w.wave, w.kind, w.name]))));

    out.push("Resources by kind");
    out.push(indent(formatTable(["type", "count"], Object.entries(p.resources.byType))));
    out.push(`  ${plural(p.resources.total, "resource")} in all.`);
    for (const note of p.notes) out.push(`  Note: ${note}`);
    return out.join("\n").replace(/[ \t]+$/gm, "") + "\n";
}

export const PLAN: CommandSpec = {
    name: "plan",
    summary: "Prints what the stack declares, evaluated offline with no credentials: hub, tenants by ring, rollout steps, sync windows, waves, resources.",
    options: {
        stack: { type: "string", value: "STACK", required: true, description: "stack to plan (a Pulumi.<STACK>.yaml in the project root)" },
        json: { type: "boolean", description: "print the whole plan as JSON (every tenant, even in large fleets)" },
    },
    examples: ["npm run plan -- --stack dev", "npm run plan -- --stack prod --json > plan-prod.json"],
};

export function main(argv: string[]): Promise<number> {
    return runCommand(PLAN, argv, async (values) => {
        const stack = requireStack(String(values.stack));
        const result = await renderStack(stack, ROOT, { progress: true });
        process.stdout.write(values.json ? JSON.stringify(planSummary(stack, result), null, 2) + "\n" : formatPlan(stack, result));
        return 0;
    });
}

if (require.main === module) runAsProgram(main);
