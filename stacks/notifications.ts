/**
 * Argo CD notifications for the fleet: notifiers, triggers and templates for the chart's
 * `notifications` values, and the default subscriptions every generated Application carries.
 *
 * Trigger names are Argo CD's catalog names (there is no `on-degraded`), and templates name the
 * tenant by its Application labels and `.app.spec.destination.server`: `destination.name` is empty
 * when the destination is a server URL.
 */
import * as YAML from "yaml";
import type { NotificationsConfig } from "./config";

/** Name of the generic webhook notifier (`service.webhook.<name>`). */
export const WEBHOOK_SERVICE = "agentfleet";
/** Keys of argocd-notifications-secret that notifier configs reference as `$key`. */
export const SECRET_KEYS = { slackToken: "slack-token", webhookToken: "webhook-token" } as const;

export interface TriggerCondition {
    description: string;
    when: string;
    send: string[];
    oncePer?: string;
}


/**
 * One key per rollout of a revision to an Application: the revision, plus the id of the newest
 * history entry of another revision (-1 when none). RollingSync may sync an Application twice at
 * the same revision (history ids 0 and 1, measured with v3.6.2): both syncs share the key. A later
 * rollout back to the same revision (a rollback) follows another revision's history entry, so it
 * gets a new key and is reported again; keying on the revision alone would stay silent for it.
 */
/*
 * The revision is the operation's syncResult.revision: RollingSync pins it (v3.6.2) and sync.go
 * resolves it to a commit. Written with `let`: expr v1.17.8 evaluates a closure builtin (filter,
 * findLast) inside a `+` chain wrongly ("invalid operation: bool + string"), and the engine would
 * only log that and drop the key.
 */
const rolloutKey =
    "let revision = app.status.operationState?.syncResult?.revision ?? ''; " +
    "let before = findLast(app.status.history ?? [], {.revision != revision}); " +
    "revision + ':' + string(before?.id ?? -1)";

/** Triggers, by catalog name where the catalog has one. */
export const TRIGGERS: Record<string, TriggerCondition[]> = {
    "on-deployed": [
        {
            description: "The agent was synced and is healthy on this tenant",
            when: "app.status.operationState != nil and app.status.operationState.phase in ['Succeeded'] and app.status.health.status == 'Healthy'",
            send: ["app-deployed"],
            oncePer: rolloutKey,
        },
    ],
    "on-health-degraded": [
        {
            description: "The agent is degraded on this tenant (a failed probe stops the rollout)",
            when: "app.status.health.status == 'Degraded'",
            send: ["app-health-degraded"],
        },
    ],
    "on-sync-failed": [
        {
            description: "Syncing the agent failed on this tenant (its first failed attempt: Argo CD retries it)",
            // Argo CD keeps a failed sync that it will retry Running, with finishedAt and retryCount
            // set (controller/appcontroller.go), for up to ~15 min of backoff before it says Failed:
            // the phase alone would report a failed canary only once every retry is spent.
            when: "app.status.operationState != nil and (app.status.operationState.phase in ['Error', 'Failed'] or (app.status.operationState.phase == 'Running' and app.status.operationState.finishedAt != nil and (app.status.operationState.retryCount ?? 0) > 0))",
            send: ["app-sync-failed"],
            oncePer: rolloutKey,
        },
    ],
    "on-rollout-step-started": [
        {
            description: "The RollingSync rollout reached this tenant: Argo CD applied its first objects",
            // Not "phase Running": Argo CD writes a Running operation state before it checks sync
            // windows, and a deny window then keeps it Running ("Sync operation blocked by sync
            // window") with nothing applied. syncResult.resources lists only tasks that ran.
            when: "app.status.operationState?.operation?.initiatedBy?.username == 'applicationset-controller' and len(app.status.operationState?.syncResult?.resources ?? []) > 0",
            send: ["app-rollout-step-started"],
            oncePer: rolloutKey,
        },
    ],
};

/** A Go template pipeline, e.g. `.app.metadata.name`. */
class GoPipeline {
    constructor(readonly pipeline: string) {}
}

/** Text mixing literal strings and Go template pipelines, built with the `text` tag. */
class GoText {
    constructor(readonly parts: Array<string | GoPipeline>) {}

    /** As plain template text: `literal {{pipeline}} literal`. */
    get template(): string {
        return this.parts.map((p) => (p instanceof GoPipeline ? `{{${p.pipeline}}}` : p)).join("");
    }

    /**
     * As one JSON value: a literal JSON string, or a Go action that prints the text JSON-encoded
     * (`toJson`), so quotes or newlines in a value (a health message) cannot break the JSON, and
     * the Go actions stay literal template code (never JSON-escaped, which Go cannot parse).
     */
    get jsonValue(): string {
        // Adjacent literals merged, so `print` sees a string between any two pipelines.
        const parts = this.parts.reduce<Array<string | GoPipeline>>((out, p) => {
            if (typeof p === "string" && typeof out[out.length - 1] === "string") out[out.length - 1] += p;
            else if (p !== "") out.push(p);
            return out;
        }, []);
        if (parts.every((p) => typeof p === "string")) return JSON.stringify(parts.join(""));
        if (parts.length === 1) return `{{ ${(parts[0] as GoPipeline).pipeline} | toJson }}`;
        // A JSON string literal is also a valid Go string literal.
        return `{{ print ${parts.map((p) => (p instanceof GoPipeline ? `(${p.pipeline})` : JSON.stringify(p))).join(" ")} | toJson }}`;
    }
}

/** A Go template variable that a field's text sets up first (`prelude`, printing nothing). */
class GoVariable extends GoPipeline {
    constructor(
        name: string,
        readonly prelude: string,
    ) {
        super(name);
    }
}

const go = (pipeline: string) => new GoPipeline(pipeline);
function text(literals: TemplateStringsArray, ...pipelines: GoPipeline[]): GoText {
    return new GoText(literals.flatMap((l, i) => (i < pipelines.length ? [l, pipelines[i]] : [l])));
}
const label = (key: string) => go(`index .app.metadata.labels ${JSON.stringify(key)}`);

/** A JSON document whose leaves may be GoText: JSON after Go template execution. */
function jsonTemplate(value: unknown): string {
    if (value instanceof GoText) return value.jsonValue;
    if (Array.isArray(value)) return `[${value.map(jsonTemplate).join(", ")}]`;
    if (value !== null && typeof value === "object") return `{ ${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${jsonTemplate(v)}`).join(", ")} }`;
    return JSON.stringify(value);
}

const server = go(".app.spec.destination.server");
/**
 * The commit the Application's last sync operation applied (RollingSync pins it), else the one Argo
 * CD compares against. Templates render when the notification is sent, which can be after the next
 * deploy moved spec.source.targetRevision and status.sync.revision on (seen on real Argo CD: a
 * "deployed" naming the next release): the operation's own record stays until the next sync.
 */
const syncedRevision = go(`dig "operationState" "syncResult" "revision" (print .app.status.sync.revision) .app.status`);
/**
 * Why the Application has its health (`$why`): each resource of that health with its own message
 * ("Deployment voice-agent: Agent prober failed revision 3: …", in status.resources because the hub
 * sets controller.resource.health.persist), else Argo CD v3's own summary ("Caused by
 * apps/Deployment:voice-agent/voice-agent", which says nothing of why). The rule `npm run status`
 * follows too (commands/rollout-status.ts, healthMessage).
 */
const healthWhy = new GoVariable(
    "$why",
    [
        '{{- $why := "" -}}',
        "{{- $health := print .app.status.health.status -}}",
        "{{- range (default list .app.status.resources) -}}",
        "{{- if and .health (eq (print .health.status) $health) .health.message -}}",
        '{{- $why = print $why (ternary "" "; " (eq $why "")) .kind " " .name ": " .health.message -}}',
        "{{- end -}}",
        "{{- end -}}",
        '{{- if eq $why "" }}{{ $why = print (default "" .app.status.health.message) }}{{ end -}}',
    ].join(""),
);
/** The preludes of the variables `texts` use, each once: what a field's template text starts with. */
const preludes = (...texts: GoText[]): string => [...new Set(texts.flatMap((t) => t.parts.filter((p): p is GoVariable => p instanceof GoVariable).map((v) => v.prelude)))].join("");
const tenantLine = text`Tenant ${label("tenant")} (ring ${label("ring")}, region ${label("region")}, env ${label("env")}) at ${server}`;
const appLink = text`${go(".context.argocdUrl")}/applications/${go(".app.metadata.namespace")}/${go(".app.metadata.name")}`;
const concat = (...texts: GoText[]) => new GoText(texts.flatMap((t) => t.parts));

interface TemplateText {
    title: string;
    color: string;
    body: GoText;
}

const TEMPLATE_TEXT: Record<string, TemplateText> = {
    "app-deployed": { title: "Agent deployed", color: "#18be52", body: text`revision ${syncedRevision} is synced and healthy.` },
    "app-health-degraded": { title: "Agent degraded", color: "#f4c030", body: text`health is ${go(".app.status.health.status")}: ${healthWhy}. The rollout stops at this step.` },
    // While Argo CD retries, the phase is Running and the message says which attempt comes when.
    "app-sync-failed": { title: "Agent sync failed", color: "#e96d76", body: text`sync failed: ${go(".app.status.operationState.message")}` },
    // targetRevision is what people wrote (a tag or branch); syncResult.revision is the commit RollingSync pinned.
    "app-rollout-step-started": { title: "Rollout reached tenant", color: "#0dadea", body: text`RollingSync started syncing ${go(".app.spec.source.targetRevision")} (${syncedRevision}).` },
};

/** The fields of one notification template, as notifications-engine reads them. */
export interface NotificationTemplate {
    message: string;
    slack: { attachments: string };
    webhook: Record<string, { method: string; body: string }>;
}

export function templateFields(name: string): NotificationTemplate {
    const t = TEMPLATE_TEXT[name];
    const body = concat(tenantLine, text`: `, t.body);
    const pre = preludes(body);
    return {
        message: pre + concat(new GoText([`${t.title}: `]), body, text`\n`, appLink).template,
        slack: { attachments: pre + jsonTemplate([{ title: concat(new GoText([`${t.title}: `]), new GoText([label("tenant")])), title_link: appLink, color: t.color, text: body }]) },
        webhook: {
            [WEBHOOK_SERVICE]: {
                method: "POST",
                body: pre + jsonTemplate({
                    event: name,
                    tenant: new GoText([label("tenant")]),
                    ring: new GoText([label("ring")]),
                    region: new GoText([label("region")]),
                    env: new GoText([label("env")]),
                    server: new GoText([server]),
                    application: new GoText([go(".app.metadata.name")]),
                    targetRevision: new GoText([go(".app.spec.source.targetRevision")]),
                    revision: new GoText([syncedRevision]),
                    health: new GoText([go(".app.status.health.status")]),
                    // The human summary, as Slack gets it (for a Degraded tenant: why).
                    message: body,
                    link: appLink,
                }),
            },
        },
    };
}

/** Template bodies as notifications-engine reads them (YAML strings keyed `template.<name>`). */
export function templates(): Record<string, string> {
    return Object.fromEntries(Object.keys(TEMPLATE_TEXT).map((name) => [`template.${name}`, YAML.stringify(templateFields(name), { lineWidth: 0 })]));
}

/** Trigger definitions keyed `trigger.<name>` (YAML lists, as the ConfigMap holds them). */
export function triggers(): Record<string, string> {
    return Object.fromEntries(Object.entries(TRIGGERS).map(([name, conditions]) => [`trigger.${name}`, YAML.stringify(conditions, { lineWidth: 0 })]));
}

/** Notifier services; tokens are `$key` references into argocd-notifications-secret. */
export function notifiers(cfg: NotificationsConfig): Record<string, string> {
    const out: Record<string, string> = {};
    if (cfg.slackChannels.length > 0) out["service.slack"] = `token: $${SECRET_KEYS.slackToken}\n`;
    if (cfg.webhookUrl) {
        out[`service.webhook.${WEBHOOK_SERVICE}`] = [`url: ${cfg.webhookUrl}`, "headers:", "  - name: Content-Type", "    value: application/json", "  - name: Authorization", `    value: Bearer $${SECRET_KEYS.webhookToken}`, ""].join("\n");
    }
    return out;
}

/** Values for the argo-cd chart's `notifications` block. */
export function notificationValues(cfg: NotificationsConfig): Record<string, unknown> {
    return {
        enabled: true,
        argocdUrl: cfg.argocdUrl,
        // Pulumi owns argocd-notifications-secret (from secret config); tokens never enter Helm values.
        secret: { create: false },
        cm: { create: true },
        notifiers: notifiers(cfg),
        templates: templates(),
        triggers: triggers(),
        context: { argocdUrl: cfg.argocdUrl },
    };
}

/** Default subscriptions of the stack, as annotations on every generated Application. */
export function subscriptionAnnotations(cfg: NotificationsConfig): Record<string, string> {
    const out: Record<string, string> = {};
    for (const trigger of Object.keys(TRIGGERS)) {
        if (cfg.slackChannels.length > 0) out[`notifications.argoproj.io/subscribe.${trigger}.slack`] = cfg.slackChannels.join(";");
        if (cfg.webhookUrl) out[`notifications.argoproj.io/subscribe.${trigger}.${WEBHOOK_SERVICE}`] = "";
    }
    return out;
}
