/**
 * Argo CD notifications for the fleet: notifiers, triggers and templates for the chart's
 * `notifications` values, and the default subscriptions every generated Application carries.
 *
 * Trigger names are Argo CD's catalog names (there is no `on-degraded`), and templates name the
 * tenant by its Application labels and `.app.spec.destination.server`: `destination.name` is empty
 * when the destination is a server URL.
 */
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

const syncedRevision = "app.status.operationState?.syncResult?.revision";

/** Triggers, by catalog name where the catalog has one. */
export const TRIGGERS: Record<string, TriggerCondition[]> = {
    "on-deployed": [
        {
            description: "The agent was synced and is healthy on this tenant",
            when: "app.status.operationState != nil and app.status.operationState.phase in ['Succeeded'] and app.status.health.status == 'Healthy'",
            send: ["app-deployed"],
            oncePer: syncedRevision,
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
            description: "Syncing the agent failed on this tenant",
            when: "app.status.operationState != nil and app.status.operationState.phase in ['Error', 'Failed']",
            send: ["app-sync-failed"],
            oncePer: syncedRevision,
        },
    ],
    "on-rollout-step-started": [
        {
            description: "The RollingSync rollout reached this tenant",
            when: "app.status.operationState != nil and app.status.operationState.phase in ['Running'] and app.status.operationState.operation?.initiatedBy?.username == 'applicationset-controller'",
            send: ["app-rollout-step-started"],
            oncePer: "app.status.operationState.operation?.sync?.revision",
        },
    ],
};

const tenantLine = `Tenant {{index .app.metadata.labels "tenant"}} (ring {{index .app.metadata.labels "ring"}}, region {{index .app.metadata.labels "region"}}, env {{index .app.metadata.labels "env"}}) at {{.app.spec.destination.server}}`;
const appLink = "{{.context.argocdUrl}}/applications/{{.app.metadata.namespace}}/{{.app.metadata.name}}";

interface TemplateText {
    title: string;
    color: string;
    body: string;
}

const TEMPLATE_TEXT: Record<string, TemplateText> = {
    "app-deployed": { title: "Agent deployed", color: "#18be52", body: "revision {{.app.status.sync.revision}} is synced and healthy." },
    "app-health-degraded": { title: "Agent degraded", color: "#f4c030", body: "health is {{.app.status.health.status}}: {{.app.status.health.message}}. The rollout stops at this step." },
    "app-sync-failed": { title: "Agent sync failed", color: "#e96d76", body: "sync {{.app.status.operationState.phase}}: {{.app.status.operationState.message}}" },
    "app-rollout-step-started": { title: "Rollout reached tenant", color: "#0dadea", body: "RollingSync started syncing revision {{.app.status.operationState.operation.sync.revision}}." },
};

/** Template bodies as notifications-engine reads them (YAML strings keyed `template.<name>`). */
export function templates(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, t] of Object.entries(TEMPLATE_TEXT)) {
        const message = `${t.title}: ${tenantLine}: ${t.body}\n${appLink}`;
        const slackAttachment = JSON.stringify([{ title: `${t.title}: {{index .app.metadata.labels "tenant"}}`, title_link: appLink, color: t.color, text: `${tenantLine}: ${t.body}` }]);
        const webhookBody = JSON.stringify({
            event: name,
            tenant: '{{index .app.metadata.labels "tenant"}}',
            ring: '{{index .app.metadata.labels "ring"}}',
            region: '{{index .app.metadata.labels "region"}}',
            env: '{{index .app.metadata.labels "env"}}',
            server: "{{.app.spec.destination.server}}",
            application: "{{.app.metadata.name}}",
            revision: "{{.app.status.sync.revision}}",
            health: "{{.app.status.health.status}}",
            link: appLink,
        });
        out[`template.${name}`] = [
            `message: ${JSON.stringify(message)}`,
            "slack:",
            `  attachments: ${JSON.stringify(slackAttachment)}`,
            "webhook:",
            `  ${WEBHOOK_SERVICE}:`,
            "    method: POST",
            `    body: ${JSON.stringify(webhookBody)}`,
            "",
        ].join("\n");
    }
    return out;
}

/** Trigger definitions keyed `trigger.<name>` (YAML lists, as the ConfigMap holds them). */
export function triggers(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, conditions] of Object.entries(TRIGGERS)) {
        out[`trigger.${name}`] = conditions
            .map((c) => [`- description: ${JSON.stringify(c.description)}`, `  when: ${JSON.stringify(c.when)}`, `  send: [${c.send.join(", ")}]`, ...(c.oncePer ? [`  oncePer: ${JSON.stringify(c.oncePer)}`] : [])].join("\n"))
            .join("\n")
            .concat("\n");
    }
    return out;
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
