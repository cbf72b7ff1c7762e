import * as assert from "assert";
import * as YAML from "yaml";
import { NOTIFICATIONS_SECRET } from "../components/argocd-hub";
import { healthCheckCmValues, loadHealthChecks } from "../stacks/health-checks";
import { SECRET_KEYS, TRIGGERS, WEBHOOK_SERVICE } from "../stacks/notifications";
import { GENERATED_PREFIX, SECRET_PREFIX, secretPaths } from "../evaluator/evaluate";
import { STACKS, type Obj, evaluated, objectsOf, releaseOf } from "./helpers";

/** The catalog's trigger names, plus the one agentfleet adds for rollout progress. */
const CATALOG_TRIGGERS = ["on-created", "on-deleted", "on-deployed", "on-health-degraded", "on-sync-failed", "on-sync-running", "on-sync-status-unknown", "on-sync-succeeded"];

for (const stack of STACKS) {
    describe(`health checks and notifications in stack ${stack}`, () => {
        let values: Obj;
        let subscriptions: Record<string, string>;
        before(async () => {
            values = releaseOf(await evaluated(stack)).inputs.values as Obj;
            const [appSet] = await objectsOf(stack, { cluster: "hub", kind: "ApplicationSet" });
            subscriptions = ((appSet.object.spec as Obj).template.metadata.annotations ?? {}) as Record<string, string>;
        });

        it("delivers each Lua health check to argocd-cm verbatim, under its split key", () => {
            const cm = values.configs.cm as Record<string, string>;
            const checks = loadHealthChecks();
            assert.ok(checks.some((c) => c.key === "apps_Deployment"));
            for (const check of checks) assert.strictEqual(cm[`resource.customizations.health.${check.key}`], check.script);
            const delivered = Object.keys(cm).filter((k) => k.startsWith("resource.customizations."));
            assert.deepStrictEqual(delivered.sort(), Object.keys(healthCheckCmValues(checks)).sort());
        });

        it("uses Argo CD's catalog trigger names, each with conditions that send existing templates", () => {
            const triggers = values.notifications.triggers as Record<string, string>;
            const templates = values.notifications.templates as Record<string, string>;
            assert.ok(Object.keys(triggers).length > 0);
            for (const [key, text] of Object.entries(triggers)) {
                const conditions = YAML.parse(text) as Array<{ when: string; send: string[]; oncePer?: string }>;
                assert.ok(Array.isArray(conditions) && conditions.length > 0, `${key} is not a list of conditions`);
                for (const c of conditions) {
                    assert.ok(c.when, `${key} has a condition without 'when'`);
                    for (const t of c.send) assert.ok(`template.${t}` in templates, `${key} sends template ${t}, which does not exist`);
                }
            }
            for (const name of ["on-deployed", "on-health-degraded", "on-sync-failed"]) assert.ok(`trigger.${name}` in triggers && CATALOG_TRIGGERS.includes(name));
            assert.ok(!("trigger.on-degraded" in triggers), "there is no on-degraded in Argo CD");
            const deployed = YAML.parse(triggers["trigger.on-deployed"])[0];
            assert.strictEqual(deployed.oncePer, "app.status.operationState?.syncResult?.revision");
        });

        it("subscribes only to triggers that exist, through configured services", () => {
            const triggers = values.notifications.triggers as Record<string, string>;
            const notifiers = values.notifications.notifiers as Record<string, string>;
            assert.ok(Object.keys(subscriptions).length > 0);
            for (const annotation of Object.keys(subscriptions)) {
                const m = /^notifications\.argoproj\.io\/subscribe\.([^.]+)\.(.+)$/.exec(annotation);
                assert.ok(m, `malformed subscription ${annotation}`);
                assert.ok(`trigger.${m[1]}` in triggers, `subscription to ${m[1]}, which is not defined`);
                const service = m[2] === "slack" ? "service.slack" : `service.webhook.${m[2]}`;
                assert.ok(service in notifiers, `subscription through ${m[2]}, which is not configured`);
            }
        });

        // That every field parses as a Go template and yields JSON where JSON is due: argocd-templates.spec.ts.
        it("renders templates that name the tenant by labels and server, and never by destination.name", () => {
            const templates = values.notifications.templates as Record<string, string>;
            for (const [key, text] of Object.entries(templates)) {
                assert.ok(!text.includes("destination.name"), `${key} uses .app.spec.destination.name, empty for server destinations`);
                const parsed = YAML.parse(text);
                assert.ok(parsed.message.includes('index .app.metadata.labels "tenant"') && parsed.message.includes(".app.spec.destination.server"), `${key} does not identify the tenant`);
                assert.ok(parsed.slack.attachments.includes('index .app.metadata.labels "tenant"'), `${key}: the Slack attachment does not name the tenant`);
                assert.ok(parsed.webhook[WEBHOOK_SERVICE].body.includes(".app.spec.destination.server"));
            }
            assert.strictEqual(values.notifications.argocdUrl, values.notifications.context.argocdUrl);
            assert.match(values.notifications.argocdUrl, /^https:\/\/argocd\./);
        });

        it("keeps notifier tokens in a Pulumi-owned, secret argocd-notifications-secret, never in the Helm values", async () => {
            assert.strictEqual(values.notifications.secret.create, false);
            const notifiers = values.notifications.notifiers as Record<string, string>;
            if ("service.slack" in notifiers) assert.match(notifiers["service.slack"], new RegExp(`token: \\$${SECRET_KEYS.slackToken}`));
            const text = JSON.stringify(values);
            assert.ok(!text.includes(SECRET_PREFIX) && !text.includes(GENERATED_PREFIX) && !text.includes("xoxb-"), "a token reached the Helm values");
            const [secret] = (await objectsOf(stack, { cluster: "hub", kind: "Secret" })).filter((o) => (o.object.metadata as Obj).name === NOTIFICATIONS_SECRET);
            assert.ok(secret, "no argocd-notifications-secret");
            assert.deepStrictEqual(secretPaths(secret.resource.inputs), ["stringData"]);
            const data = secret.object.stringData as Record<string, string>;
            for (const ref of Object.values(notifiers).flatMap((n) => [...n.matchAll(/\$([a-z-]+)/g)].map((m) => m[1]))) {
                assert.ok(ref in data, `a notifier references $${ref}, which argocd-notifications-secret lacks`);
                assert.ok(data[ref].startsWith(SECRET_PREFIX), `$${ref} does not come from secret config`);
            }
        });
    });
}

describe("agentfleet's own rollout trigger", () => {
    it("reports a tenant reached by the RollingSync controller, once per operation", () => {
        const [c] = TRIGGERS["on-rollout-step-started"];
        assert.match(c.when, /initiatedBy\?\.username == 'applicationset-controller'/);
        // Why startedAt and not a revision: argocd-templates.spec.ts, against a RollingSync-started operation.
        assert.ok(c.oncePer);
    });
});
