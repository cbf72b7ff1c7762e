/**
 * Every template string Argo CD parses, parsed here by Go's own text/template (tests/gotemplate),
 * and every field path it or a trigger expression reads, checked against the Application schema
 * of @kubernetes-models/argo-cd. A string check of our own output could not catch a template the
 * notifications engine refuses: one unparsable field and no notification is sent at all.
 */
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { WEBHOOK_SERVICE, templates } from "../stacks/notifications";
import { helmBinary } from "../evaluator/helm";
import { validateObject } from "./doubles/k8s-schema";
import { type GoTemplateEngine, type GoTemplateResult, type Obj, STACKS, objectsOf, evaluated, parseGoTemplates, releaseOf } from "./helpers";

// ---------------------------------------------------------------------------------------------
// What Argo CD parses

interface TemplateString {
    /** Where the string is: `template.app-deployed slack.attachments`, `ApplicationSet spec.template...`. */
    id: string;
    text: string;
    funcs: GoTemplateEngine;
}

/** Every string leaf of a value, with its dotted path. */
function stringLeaves(value: unknown, at: string): Array<[string, string]> {
    if (typeof value === "string") return [[at, value]];
    if (Array.isArray(value)) return value.flatMap((v, i) => stringLeaves(v, `${at}[${i}]`));
    if (value !== null && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => stringLeaves(v, at ? `${at}.${k}` : k));
    return [];
}

/**
 * notifications-engine parses every string field of a template (message, slack attachments and
 * blocks, email subject and body, webhook body and path...) with text/template; parsing the
 * other strings too (a webhook method) costs nothing and misses nothing.
 */
const notificationStrings = (templates: Record<string, string>): TemplateString[] =>
    Object.entries(templates).flatMap(([key, yaml]) => stringLeaves(YAML.parse(yaml), "").map(([at, text]) => ({ id: `${key} ${at}`, text, funcs: "notifications" as const })));

/** The ApplicationSet controller renders every string of spec.template with goTemplate. */
const applicationSetStrings = (spec: Obj): TemplateString[] =>
    stringLeaves(spec.template, "spec.template")
        .filter(([, text]) => text.includes("{{"))
        .map(([at, text]) => ({ id: `ApplicationSet ${at}`, text, funcs: "applicationset" as const }));

function parseAll(strings: TemplateString[]): Map<string, GoTemplateResult> {
    const results = parseGoTemplates(strings);
    assert.strictEqual(results.length, strings.length);
    return new Map(results.map((r) => [r.id, r]));
}

// ---------------------------------------------------------------------------------------------
// Trigger expressions (expr-lang): member chains rooted at `app`

/**
 * The `app.a?.b.c` member chains of an expr-lang expression. A lexer, not a parser: no npm package
 * parses expr-lang, so the expression's syntax is not checked here, only the fields it reads. It
 * knows expr's string literals ('...', "...", `...`), so text inside them is never read as a field.
 */
function exprAppChains(expression: string): string[][] {
    type Token = { kind: "name" | "dot" | "other"; text: string };
    const tokens: Token[] = [];
    let i = 0;
    while (i < expression.length) {
        const rest = expression.slice(i);
        const quote = rest[0];
        if (/\s/.test(quote)) i++;
        else if (quote === "'" || quote === '"' || quote === "`") {
            let j = 1;
            while (j < rest.length && rest[j] !== quote) j += rest[j] === "\\" && quote !== "`" ? 2 : 1;
            assert.ok(j < rest.length, `unterminated string literal in ${JSON.stringify(expression)}`);
            tokens.push({ kind: "other", text: rest.slice(0, j + 1) });
            i += j + 1;
        } else {
            const m = /^(\?\.|\.(?![0-9]))|^([A-Za-z_$][A-Za-z0-9_$]*)|^([0-9][0-9_]*(\.[0-9]+)?([eE][-+]?[0-9]+)?)/.exec(rest);
            if (m?.[1]) tokens.push({ kind: "dot", text: m[1] });
            else if (m?.[2]) tokens.push({ kind: "name", text: m[2] });
            else tokens.push({ kind: "other", text: m?.[3] ?? rest[0] });
            i += m ? m[0].length : 1;
        }
    }
    const chains: string[][] = [];
    tokens.forEach((t, k) => {
        if (t.kind !== "name" || t.text !== "app" || tokens[k - 1]?.kind === "dot") return;
        const chain = ["app"];
        for (let j = k + 1; tokens[j]?.kind === "dot" && tokens[j + 1]?.kind === "name"; j += 2) chain.push(tokens[j + 1].text);
        chains.push(chain);
    });
    return chains;
}

// ---------------------------------------------------------------------------------------------
// An Application as Argo CD v3.6.2 holds it while a deny window blocks a RollingSync-started sync

const REVISION = "3f9c2a1d0b7e4c5a8f6e2d1c0b9a8f7e6d5c4b3a";

/**
 * applicationset/progressivesync/progressive_sync.go (syncApplication) writes `operation` with
 * initiatedBy applicationset-controller, an info line, retry, and a SyncOperation holding the
 * step's pinned revision, prune and syncOptions. controller/appcontroller.go (NewOperationState)
 * starts the operation state Running with startedAt; controller/sync.go sets syncResult {revision,
 * source} and, while a sync window blocks the sync, leaves it Running with that message and no
 * resources. Which notifications such states send: notifications.spec.ts, evaluated by expr-lang.
 */
function rollingSyncRunningApp(startedAt: string): Obj {
    const source = { repoURL: "https://github.com/example-org/agentfleet.git", targetRevision: "v1.4.2", path: "charts/voice-agent" };
    const destination = { server: "https://prod-acme-eu.k3s.agentfleet.example.net:6443", namespace: "voice-agent" };
    const syncOptions = ["PruneLast=true", "FailOnSharedResource=true", "CreateNamespace=false"];
    const retry = { limit: 5, backoff: { duration: "30s", factor: 2, maxDuration: "10m" } };
    return {
        apiVersion: "argoproj.io/v1alpha1",
        kind: "Application",
        metadata: { name: "voice-agent-prod-acme-eu", namespace: "argocd", labels: { env: "prod", ring: "early", region: "eu-west", tenant: "prod-acme-eu" } },
        spec: { project: "voice-agent-prod", source, destination, syncPolicy: { automated: { prune: true, selfHeal: false, enabled: false }, retry, syncOptions } },
        status: {
            sync: { status: "OutOfSync", revision: REVISION, comparedTo: { source, destination } },
            health: { status: "Healthy", message: "" },
            operationState: {
                operation: {
                    initiatedBy: { username: "applicationset-controller", automated: true },
                    info: [{ name: "Reason", value: "ApplicationSet RollingSync triggered a sync of this Application resource" }],
                    sync: { revision: REVISION, prune: true, syncOptions },
                    retry,
                },
                phase: "Running",
                message: "Sync operation blocked by sync window",
                startedAt,
                syncResult: { revision: REVISION, source },
            },
        },
    };
}

/** Why `app.<chain>` is not a field of the Application schema, or undefined when it is. */
async function unknownApplicationField(chain: string[]): Promise<string | undefined> {
    const fields = chain.slice(1);
    if (fields.length === 0) return undefined;
    // Overlaid on a complete Application, so the schema validator opens every object on the path.
    const app = rollingSyncRunningApp("2026-05-04T16:59:00Z");
    let parent: Obj = app;
    for (const f of fields.slice(0, -1)) parent = parent[f] = parent[f] !== null && typeof parent[f] === "object" ? parent[f] : {};
    parent[fields[fields.length - 1]] = parent[fields[fields.length - 1]] ?? "probe";
    const problems = await validateObject(app as never);
    const unknown = problems.find((p) => p.includes("unknown field"));
    if (unknown) return `app.${fields.join(".")}: ${unknown}`;
    const elsewhere = problems.filter((p) => !p.includes(`data/${fields.join("/")} must`));
    return elsewhere.length > 0 ? `app.${fields.join(".")} could not be checked: ${elsewhere.join("; ")}` : undefined;
}

/** Variables notifications-engine and Argo CD hand to every template (api.go, settings.go, expression/expr.go). */
const NOTIFICATION_VARIABLES = ["app", "appProject", "context", "secrets", "serviceType", "recipient", "repo", "time", "strings"];
/** Parameters of the cluster generator with goTemplate (applicationset/generators/cluster.go). */
const CLUSTER_PARAMETERS = ["name", "nameNormalized", "server", "project", "metadata"];

// ---------------------------------------------------------------------------------------------
// Executing the templates: helm runs Go text/template with the real sprig

/**
 * Renders each notification template field for each sample `vars` ({app, context}) with helm,
 * whose template engine is Go's text/template with sprig (toJson is json.Marshal in both).
 */
function executeWithHelm(fields: TemplateString[], samples: Record<string, Obj>): Record<string, Record<string, string>> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-notification-templates-"));
    try {
        fs.mkdirSync(path.join(dir, "templates"));
        fs.writeFileSync(path.join(dir, "Chart.yaml"), "apiVersion: v2\nname: notification-templates\nversion: 0.1.0\n");
        fs.writeFileSync(path.join(dir, "values.yaml"), JSON.stringify({ samples }));
        fs.writeFileSync(path.join(dir, "templates", "_fields.tpl"), fields.map((f, i) => `{{ define "field${i}" }}${f.text}{{ end }}`).join("\n"));
        const data = fields.map((_, i) => `  field${i}: {{ include "field${i}" $vars | toJson }}`).join("\n");
        fs.writeFileSync(path.join(dir, "templates", "out.yaml"), `{{- range $sample, $vars := .Values.samples }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ $sample }}\ndata:\n${data}\n{{- end }}\n`);
        const out = execFileSync(helmBinary(), ["template", "t", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        const docs = YAML.parseAllDocuments(out).map((d) => d.toJS() as Obj).filter(Boolean);
        return Object.fromEntries(docs.map((d) => [d.metadata.name, Object.fromEntries(fields.map((f, i) => [f.id, d.data[`field${i}`] as string]))]));
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

// ---------------------------------------------------------------------------------------------

for (const stack of STACKS) {
    describe(`templates Argo CD parses, in stack ${stack}`, () => {
        let notifications: Obj;
        let appSetSpec: Obj;
        let notificationParse: Map<string, GoTemplateResult>;
        let strings: TemplateString[];
        before(async () => {
            notifications = (releaseOf(await evaluated(stack)).inputs.values as Obj).notifications as Obj;
            const [appSet] = await objectsOf(stack, { cluster: "hub", kind: "ApplicationSet" });
            appSetSpec = appSet.object.spec as Obj;
            strings = notificationStrings(notifications.templates);
            notificationParse = parseAll(strings);
        });

        it("every notification template field parses as a Go template with the engine's functions", () => {
            assert.ok(strings.some((s) => s.id.endsWith(" slack.attachments")) && strings.some((s) => /webhook\.\S+\.body$/.test(s.id)), "no Slack attachments or webhook body to check");
            const failed = [...notificationParse.values()].filter((r) => r.error).map((r) => `${r.id}: ${r.error}`);
            assert.deepStrictEqual(failed, [], "notifications-engine refuses the whole configuration (and sends nothing) when one field does not parse");
        });

        it("notification templates read only engine variables, Application fields in its schema and context keys that are set", async () => {
            const problems: string[] = [];
            for (const r of notificationParse.values()) {
                for (const chain of r.fields) {
                    if (!NOTIFICATION_VARIABLES.includes(chain[0])) problems.push(`${r.id}: .${chain.join(".")} is not a template variable`);
                    if (chain[0] === "context" && chain[1] !== undefined && !(chain[1] in notifications.context)) problems.push(`${r.id}: .${chain.join(".")} is not in notifications.context`);
                    if (chain[0] === "app") {
                        const why = await unknownApplicationField(chain);
                        if (why) problems.push(`${r.id}: ${why}`);
                    }
                }
            }
            assert.deepStrictEqual(problems, []);
        });

        it("JSON fields (Slack attachments, webhook bodies) are JSON after execution, whatever the values hold", () => {
            const jsonFields = strings.filter((s) => /slack\.(attachments|blocks)$|webhook\.\S+\.body$/.test(s.id));
            const hostile = rollingSyncRunningApp("2026-05-04T16:59:00Z");
            hostile.status.health = { status: "Degraded", message: 'probe "voice" failed:\n\tC:\\agent says {{ no }} </script>' };
            hostile.status.operationState.phase = "Failed";
            hostile.status.operationState.message = 'one or more objects failed to apply: "Job/migrate" {"reason": "BackoffLimitExceeded"}';
            const context = { argocdUrl: notifications.argocdUrl };
            // helm executes with missingkey=zero, where a field of an absent map is an error; the engine
            // prints <no value> there. So the samples hold every map the templates open.
            const rendered = executeWithHelm(jsonFields, { running: { app: rollingSyncRunningApp("2026-05-04T16:59:00Z"), context }, hostile: { app: hostile, context } });
            for (const [sample, fields] of Object.entries(rendered)) {
                for (const [id, out] of Object.entries(fields)) {
                    let value: unknown;
                    assert.doesNotThrow(() => (value = JSON.parse(out)), `${id} with the ${sample} Application is not JSON: ${out}`);
                    if (id.includes("webhook")) assert.strictEqual((value as Obj).tenant, "prod-acme-eu", `${id}: ${out}`);
                    if (sample !== "hostile" || id.includes("webhook")) continue;
                    if (id.startsWith("template.app-health-degraded ")) assert.ok(JSON.stringify(value).includes(JSON.stringify(hostile.status.health.message).slice(1, -1)), `${id} lost the health message: ${out}`);
                    if (id.startsWith("template.app-sync-failed ")) assert.ok(JSON.stringify(value).includes(JSON.stringify(hostile.status.operationState.message).slice(1, -1)), `${id} lost the sync message: ${out}`);
                }
            }
            assert.strictEqual(Object.keys(rendered).length, 2);
        });

        it("webhook bodies name the commit the last sync applied, also when sent after the next deploy moved the Application on, and the compared commit before any sync", () => {
            const bodies = strings.filter((s) => /webhook\.\S+\.body$/.test(s.id));
            const context = { argocdUrl: notifications.argocdUrl };
            const NEXT = "9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6";
            // Deployed, then (before the notification went out) the next release's targetRevision and compared commit.
            const movedOn = rollingSyncRunningApp("2026-05-04T16:59:00Z");
            Object.assign(movedOn.status.operationState, { phase: "Succeeded", message: "successfully synced (all tasks run)", finishedAt: "2026-05-04T17:00:00Z" });
            movedOn.spec.source = { ...movedOn.spec.source, targetRevision: "v1.4.3" };
            movedOn.status.sync = { ...movedOn.status.sync, revision: NEXT };
            const neverSynced = rollingSyncRunningApp("2026-05-04T16:59:00Z");
            delete neverSynced.status.operationState;
            const rendered = executeWithHelm(bodies, { movedOn: { app: movedOn, context } });
            for (const out of Object.values(rendered.movedOn)) assert.deepStrictEqual(((v) => [v.revision, v.targetRevision])(JSON.parse(out)), [REVISION, "v1.4.3"], out);
            assert.strictEqual(Object.keys(rendered.movedOn).length, bodies.length);
            // Only a health change can notify an Application that never synced.
            const degraded = bodies.filter((s) => s.id.startsWith("template.app-health-degraded "));
            for (const out of Object.values(executeWithHelm(degraded, { neverSynced: { app: neverSynced, context } }).neverSynced)) assert.strictEqual(JSON.parse(out).revision, REVISION, out);
        });

        it("a degraded notification says why in the resource's own words (the probe gate's verdict), not only Argo CD's 'Caused by …'", () => {
            const fields = strings.filter((s) => s.id.startsWith("template.app-health-degraded ") && !s.id.endsWith(".method"));
            const why = 'Agent prober failed revision 3: "no audio" within 5 s';
            const app = rollingSyncRunningApp("2026-05-04T16:59:00Z");
            app.status.health = { status: "Degraded", message: "Caused by apps/Deployment:voice-agent/voice-agent" };
            app.status.resources = [
                { group: "apps", version: "v1", kind: "Deployment", namespace: "voice-agent", name: "voice-agent", status: "Synced", health: { status: "Degraded", message: why } },
                { version: "v1", kind: "Service", namespace: "voice-agent", name: "voice-agent", status: "Synced", health: { status: "Healthy" } },
            ];
            const rendered = executeWithHelm(fields, { degraded: { app, context: { argocdUrl: notifications.argocdUrl } } }).degraded;
            assert.deepStrictEqual(Object.keys(rendered).map((id) => id.split(" ")[1]).sort(), ["message", "slack.attachments", `webhook.${WEBHOOK_SERVICE}.body`].sort());
            for (const [id, out] of Object.entries(rendered)) {
                const text = id.endsWith(" message") ? out : id.includes("slack") ? JSON.parse(out)[0].text : JSON.parse(out).message;
                assert.ok(text.includes(`health is Degraded: Deployment voice-agent: ${why}. The rollout stops`), `${id}: ${out}`);
            }
        });

        it("every ApplicationSet goTemplate string parses with the controller's functions and reads only cluster generator parameters", () => {
            const appSetStrings = applicationSetStrings(appSetSpec);
            assert.ok(appSetStrings.length > 5 && appSetSpec.goTemplate === true);
            const problems: string[] = [];
            for (const r of parseAll(appSetStrings).values()) {
                if (r.error) problems.push(`${r.id}: ${r.error}`);
                for (const chain of r.fields) {
                    const known = CLUSTER_PARAMETERS.includes(chain[0]) && (chain[0] !== "metadata" || ["labels", "annotations"].includes(chain[1]));
                    if (!known) problems.push(`${r.id}: .${chain.join(".")} is not a cluster generator parameter (missingkey=error fails the whole ApplicationSet)`);
                }
            }
            assert.deepStrictEqual(problems, []);
        });

        it("trigger conditions read only Application fields in its schema", async () => {
            const problems: string[] = [];
            for (const [key, yaml] of Object.entries(notifications.triggers as Record<string, string>)) {
                for (const c of YAML.parse(yaml) as Array<{ when: string; oncePer?: string }>) {
                    for (const expression of [c.when, c.oncePer].filter((e): e is string => e !== undefined)) {
                        const chains = exprAppChains(expression);
                        assert.ok(chains.length > 0, `${key}: ${expression} reads no field of app`);
                        for (const chain of chains) {
                            const why = await unknownApplicationField(chain);
                            if (why) problems.push(`${key}: ${why}`);
                        }
                    }
                }
            }
            assert.deepStrictEqual(problems, []);
        });
    });
}

describe("the rollout trigger and its template, against an Application as a RollingSync-started sync leaves it", () => {
    it("the fixture is a valid Application", async () => {
        assert.deepStrictEqual(await validateObject(rollingSyncRunningApp("2026-05-04T16:59:00Z") as never), []);
    });

    it("its template prints only fields such an Application has", () => {
        const fields = parseGoTemplates(notificationStrings(Object.fromEntries([["template.app-rollout-step-started", templates()["template.app-rollout-step-started"]]])));
        const app = rollingSyncRunningApp("2026-05-04T16:59:00Z");
        const missing = fields.flatMap((r) => r.fields.filter((c) => c[0] === "app").filter((c) => c.slice(1).reduce<unknown>((v, f) => (v as Obj)?.[f], app) === undefined).map((c) => `${r.id}: .${c.join(".")} prints <no value>`));
        assert.deepStrictEqual(missing, []);
    });
});
