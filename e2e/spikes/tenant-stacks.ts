/**
 * SPIKE (throwaway, not part of any suite): issue 19's tenant stacks, measured on the real engines.
 * A tenant stack owns its identity on the tenant (TenantAccess) AND its Argo CD cluster Secret on
 * the hub; both providers take only a context of the run's KUBECONFIG. Answers the questions of
 * docs/design/tenant-stacks.md (q1 hub-only relabel, q2 one-up rotation, q3 state move migration,
 * q4 throughput, q5 provider upgrade hub-only, q6 the CLI path, q7 the real Argo CD during a one-up
 * rotation; see tenant-stacks-q7.ts) and prints every measurement as a
 * `RESULT` line.
 *
 * Run (random loopback ports outside 36400-36499, so it never blocks the e2e suite):
 *   npx ts-node --transpile-only e2e/spikes/tenant-stacks.ts [q1] [q2] [q3] [q4] [q5] [q6] [q7]   (default: all)
 * Env: SPIKE_N (default 20) tenant stacks per throughput batch, SPIKE_CLI_N (default 5) for q6;
 * SPIKE_KEEP=1 keeps the run folder (state backend included).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, PulumiCommand, Stack, type EngineEvent } from "@pulumi/pulumi/automation";
import * as fs from "fs";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { ensureEngines } from "../../engines/toolchain";
import { ROOT } from "../../evaluator/evaluate";
import { clusterSecretData, rolloutLabels } from "../../components/tenant-clusters";
import { ARGOCD_NS, HUB_CONTEXT, TENANT_CONTEXT, type TenantStackSettings, benchProgram, tenantConfig, tenantStackProgram } from "./tenant-stack-program";
import type { TenantConfig } from "../../stacks/config";
import { automationEngine } from "../../tenants/engine";
import { onboardingStackName } from "../../tenants/onboarding-program";
import { LoopbackFleet, type Cluster } from "../harness/fleet";
import { type Credentials, request } from "../harness/kube";
import { stopAll, waitFor } from "../harness/processes";
import { installArgoCdCrds, startArgoCd } from "../harness/argocd";
import { authCounters, controllerMetrics, logTally, createApplication, manifestRepo, observe, prepareHub, summarise, troubleLines } from "./tenant-stacks-q7";
import { type PulumiBins, installProvider, pulumiEnv } from "../harness/pulumi";
import { exportWithSecrets, kubeconfigFindings } from "../harness/state";

const began = Date.now();
const secs = (ms: number) => (ms / 1000).toFixed(2);
const log = (line: string) => process.stderr.write(`[${secs(Date.now() - began)}s] ${line}\n`);
const result = (q: string, what: string, value: unknown) => process.stdout.write(`RESULT ${q} ${what}: ${typeof value === "string" ? value : JSON.stringify(value)}\n`);

const TENANT_PROJECT = "agentfleet-tenant";

// ---------------------------------------------------------------------------------------------
// Kubeconfigs of the run's environment: one private file, one context per cluster.

function kubeconfigWith(contexts: Array<[string, Cluster]>): string {
    const docs = contexts.map(([name, c]) => [name, YAML.parse(c.kubeconfig)] as const);
    return YAML.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: docs.map(([name, d]) => ({ name, cluster: d.clusters[0].cluster })),
        users: docs.map(([name, d]) => ({ name, user: d.users[0].user })),
        contexts: docs.map(([name]) => ({ name, context: { cluster: name, user: name } })),
        "current-context": docs[0][0],
    });
}

function writePrivate(dir: string, name: string, text: string): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text, { mode: 0o600 });
    return file;
}

// ---------------------------------------------------------------------------------------------
// Engines, fleet, Pulumi runs

interface Spike {
    runDir: string;
    fleet: LoopbackFleet;
    bins: PulumiBins;
    env: Record<string, string>;
    /** The Pulumi CLI behind a wrapper that appends `elapsed user sys argv` of every CLI run (with its plugins) to timeLog. */
    pulumiCommand: PulumiCommand;
    timeLog: string;
    kubeconfigs: Record<"both" | "bothT2" | "bothT3" | "bothBench" | "bothT7" | "hubOnly" | "tenantOnly", string>;
    /** The argocd engine's folder (q7). */
    argocdDir: string;
}

async function workspace(sp: Spike, program: () => Promise<Record<string, unknown>>, kubeconfig: string, extra: Record<string, string> = {}): Promise<LocalWorkspace> {
    return LocalWorkspace.create({
        program,
        projectSettings: { name: TENANT_PROJECT, runtime: "nodejs" },
        envVars: { ...sp.env, KUBECONFIG: kubeconfig, ...extra },
        pulumiCommand: sp.pulumiCommand,
    });
}

async function tenantStack(sp: Spike, stack: string, program: () => Promise<Record<string, unknown>>, kubeconfig: string): Promise<Stack> {
    return Stack.createOrSelect(stack, await workspace(sp, program, kubeconfig));
}

const interesting = (text: string) =>
    text
        .split("\n")
        .filter((l) => /warning|error|unreachable|context|kubeconfig|Resources:|changes|~|\+|-\s|same|update|replace|delete|create/i.test(l))
        .slice(0, 40)
        .join("\n");

/** Watches `path` on an API server, recording each event with its arrival time; `stop()` ends it. */
function watch(creds: Credentials, apiPath: string): { events: Array<{ at: number; type: string; name: string; uid: string; rv: string }>; stop: () => void } {
    const events: Array<{ at: number; type: string; name: string; uid: string; rv: string }> = [];
    const url = new URL(`${apiPath}?watch=1`, creds.server);
    const req = https.request(url, { method: "GET", ca: creds.ca, cert: creds.cert, key: creds.key }, (res) => {
        let buf = "";
        res.on("data", (d) => {
            buf += d;
            let i;
            while ((i = buf.indexOf("\n")) >= 0) {
                const line = buf.slice(0, i);
                buf = buf.slice(i + 1);
                if (!line.trim()) continue;
                const e = JSON.parse(line);
                events.push({ at: Date.now(), type: e.type, name: e.object?.metadata?.name, uid: e.object?.metadata?.uid, rv: e.object?.metadata?.resourceVersion });
            }
        });
        res.on("error", () => undefined);
    });
    req.on("error", () => undefined);
    req.end();
    return { events, stop: () => req.destroy() };
}

async function tokenReview(admin: Credentials, token: string): Promise<{ authenticated: boolean; user?: string; error?: string }> {
    const r = await request(admin, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } });
    return { authenticated: Boolean(r.status?.authenticated), user: r.status?.user?.username, error: r.status?.error };
}

const getSecret = (c: Credentials, ns: string, name: string) => request(c, "GET", `/api/v1/namespaces/${ns}/secrets/${name}`).catch(() => undefined);
const clusterToken = (secret: any): string => JSON.parse(Buffer.from(secret.data.config, "base64").toString()).bearerToken;
const changes = (summary: { resourceChanges?: Record<string, number> } | undefined) => summary?.resourceChanges ?? {};

/** Records onEvent arrivals: op and URN tail of each step's end, and the prelude and summary. */
function eventRecorder() {
    const steps: Array<{ at: number; kind: string; op?: string; urn?: string; provider?: string }> = [];
    const onEvent = (e: EngineEvent) => {
        const at = Date.now();
        if (e.preludeEvent) steps.push({ at, kind: "prelude" });
        if (e.resourcePreEvent) steps.push({ at, kind: "pre", op: e.resourcePreEvent.metadata.op, urn: e.resourcePreEvent.metadata.urn.split("::").pop(), provider: e.resourcePreEvent.metadata.provider?.split("::").slice(-2, -1)[0] });
        if (e.resOutputsEvent) steps.push({ at, kind: "done", op: e.resOutputsEvent.metadata.op, urn: e.resOutputsEvent.metadata.urn.split("::").pop() });
        if (e.diagnosticEvent && /warning|error/.test(e.diagnosticEvent.severity)) steps.push({ at, kind: `diag-${e.diagnosticEvent.severity}`, urn: e.diagnosticEvent.message.trim().slice(0, 300) });
        if (e.summaryEvent) steps.push({ at, kind: "summary" });
    };
    return { steps, onEvent };
}

// ---------------------------------------------------------------------------------------------
// Q1: a fleet-wide relabel with only the hub's context in KUBECONFIG

async function q1(sp: Spike): Promise<void> {
    const t = sp.fleet.cluster("t1");
    const stackName = "spike-tenant-t1";
    const settings = (ring: string): TenantStackSettings => ({ tenant: tenantConfig("t1", t.server, ring), tokenGenerations: [0], fleet: "spike" });
    const created = await (await tenantStack(sp, stackName, tenantStackProgram(settings("canary")), sp.kubeconfigs.both)).up();
    result("q1", "first up (both contexts)", changes(created.summary));
    const tenantBefore = await Promise.all(["serviceaccounts/argocd-manager", "secrets/argocd-manager-long-lived-token"].map((p) => request(t.admin, "GET", `/api/v1/namespaces/kube-system/${p}`)));
    const hubBefore = await getSecret(sp.fleet.hub.admin, ARGOCD_NS, "cluster-t1");

    const relabelled = await tenantStack(sp, stackName, tenantStackProgram(settings("ring-2")), sp.kubeconfigs.hubOnly);
    const rec = eventRecorder();
    try {
        const preview = await relabelled.preview({ diff: true, onEvent: rec.onEvent });
        result("q1", "preview, hub context only: changeSummary", preview.changeSummary);
        result("q1", "preview, hub context only: warnings/errors", rec.steps.filter((s) => s.kind.startsWith("diag")));
        log(`q1 preview stdout:\n${interesting(preview.stdout)}`);
    } catch (err) {
        result("q1", "preview, hub context only: FAILED", String((err as Error).message).slice(-1500));
    }
    const rec2 = eventRecorder();
    try {
        const up = await relabelled.up({ onEvent: rec2.onEvent });
        result("q1", "up, hub context only: resourceChanges", changes(up.summary));
        result("q1", "up, hub context only: warnings/errors", rec2.steps.filter((s) => s.kind.startsWith("diag")));
        result("q1", "up, hub context only: steps", rec2.steps.filter((s) => s.kind === "done").map((s) => `${s.op} ${s.urn}`));
    } catch (err) {
        result("q1", "up, hub context only: FAILED", String((err as Error).message).slice(-1500));
    }
    const hubAfter = await getSecret(sp.fleet.hub.admin, ARGOCD_NS, "cluster-t1");
    result("q1", "hub cluster Secret after: ring label, same UID, token unchanged", { ring: hubAfter.metadata.labels.ring, sameUid: hubAfter.metadata.uid === hubBefore.metadata.uid, sameToken: clusterToken(hubAfter) === clusterToken(hubBefore) });
    const tenantAfter = await Promise.all(["serviceaccounts/argocd-manager", "secrets/argocd-manager-long-lived-token"].map((p) => request(t.admin, "GET", `/api/v1/namespaces/kube-system/${p}`)));
    result("q1", "tenant objects untouched (resourceVersion before -> after)", tenantAfter.map((o, i) => `${o.kind} ${o.metadata.name}: ${tenantBefore[i].metadata.resourceVersion} -> ${o.metadata.resourceVersion}`));

    // Refresh needs to read every resource, the tenant's included.
    const secretUrn = `urn:pulumi:${stackName}::${TENANT_PROJECT}::kubernetes:core/v1:Secret::t1-cluster`;
    const rec3 = eventRecorder();
    const fullDiag = eventRecorder();
    try {
        await relabelled.preview({ refresh: true, onEvent: fullDiag.onEvent });
    } catch {
        result("q1", "preview --refresh, hub context only: first warning and first error, in full", [fullDiag.steps.find((x) => x.kind === "diag-warning")?.urn, fullDiag.steps.find((x) => x.kind === "diag-error")?.urn]);
    }
    try {
        const p = await relabelled.preview({ refresh: true });
        result("q1", "Automation preview({refresh:true}), hub context only", p.changeSummary);
    } catch (err) {
        result("q1", "Automation preview({refresh:true}), hub context only: FAILED", String((err as Error).message).split("\n").filter((l) => /error|warning/i.test(l)).slice(0, 12).join("\n"));
    }
    try {
        const p = await relabelled.preview({ refresh: true, target: [secretUrn] });
        result("q1", "Automation preview({refresh:true, target:[cluster Secret]}), hub context only", p.changeSummary);
    } catch (err) {
        result("q1", "Automation preview({refresh:true, target:[cluster Secret]}), hub context only: FAILED", String((err as Error).message).split("\n").filter((l) => /error|warning/i.test(l)).slice(0, 12).join("\n"));
    }
    // A tenant-side change (a second token generation) with the tenant's context absent.
    const tenantSide = await tenantStack(sp, stackName, tenantStackProgram({ ...settings("ring-2"), tokenGenerations: [0, 1] }), sp.kubeconfigs.hubOnly);
    for (const [label, run] of [
        ["preview of a tenant-side change, hub context only", () => tenantSide.preview({ onEvent: rec3.onEvent })],
        ["up of a tenant-side change, hub context only", () => tenantSide.up({ onEvent: rec3.onEvent })],
    ] as Array<[string, () => Promise<{ changeSummary?: unknown; summary?: { resourceChanges?: unknown } }>]>) {
        rec3.steps.length = 0;
        try {
            const r = await run();
            result("q1", label, r.changeSummary ?? r.summary?.resourceChanges);
            // What a CI guard reads from the preview's events: each planned step's provider (URN name, then `::<id>`).
            result("q1", `${label}: steps other than same, with their provider`, rec3.steps.filter((x) => x.kind === "pre" && x.op !== "same").map((x) => `${x.op} ${x.urn} via ${x.provider}`));
        } catch (err) {
            result("q1", `${label}: FAILED`, rec3.steps.filter((x) => x.kind.startsWith("diag")).map((x) => `${x.kind}: ${x.urn}`).slice(0, 6));
        }
    }
    result("q1", "tenant token Secrets after the failed tenant-side up", (await request(t.admin, "GET", "/api/v1/namespaces/kube-system/secrets")).items.map((x: any) => x.metadata.name).filter((n: string) => n.startsWith("argocd-manager")));
    // The trap: the provider's advice (PULUMI_K8S_DELETE_UNREACHABLE=true) with the tenant's context absent.
    const trap = await Stack.select(stackName, await workspace(sp, tenantStackProgram(settings("ring-2")), sp.kubeconfigs.hubOnly, { PULUMI_K8S_DELETE_UNREACHABLE: "true" }));
    try {
        const p = await trap.preview({ refresh: true, diff: true });
        result("q1", "preview --refresh, hub context only, PULUMI_K8S_DELETE_UNREACHABLE=true (TenantAccess sets deleteUnreachable: false)", p.changeSummary);
        log(`q1 trap preview:\n${interesting(p.stdout)}`);
    } catch (err) {
        result("q1", "preview --refresh, hub context only, PULUMI_K8S_DELETE_UNREACHABLE=true: FAILED", String((err as Error).message).split("\n").filter((l) => /error/i.test(l)).slice(0, 4).join("\n"));
    }
    try {
        const r = await relabelled.refresh({ target: [secretUrn] });
        result("q1", "Automation refresh({target:[cluster Secret]}), hub context only", r.summary.resourceChanges);
    } catch (err) {
        result("q1", "Automation refresh({target:[cluster Secret]}), hub context only: FAILED", String((err as Error).message).split("\n").filter((l) => /error|warning/i.test(l)).slice(0, 12).join("\n"));
    }
}

// ---------------------------------------------------------------------------------------------
// Q2: rotation as one up

async function q2(sp: Spike): Promise<void> {
    const t = sp.fleet.cluster("t1");
    const hubAdmin = sp.fleet.hub.admin;
    const stackName = "spike-tenant-t1";
    const settings = (gens: number[]): TenantStackSettings => ({ tenant: tenantConfig("t1", t.server, "ring-2"), tokenGenerations: gens, fleet: "spike" });
    // Make sure the stack exists at generation 0 (q1 may not have run).
    await (await tenantStack(sp, stackName, tenantStackProgram(settings([0])), sp.kubeconfigs.both)).up();
    const hubBefore = await getSecret(hubAdmin, ARGOCD_NS, "cluster-t1");
    const oldToken = clusterToken(hubBefore);
    result("q2", "old token before rotation: TokenReview", await tokenReview(t.admin, oldToken));

    const tenantWatch = watch(t.admin, "/api/v1/namespaces/kube-system/secrets");
    const hubWatch = watch(hubAdmin, `/api/v1/namespaces/${ARGOCD_NS}/secrets`);
    await new Promise((r) => setTimeout(r, 1000)); // the initial ADDED events of existing objects
    const t0 = Date.now();
    const rec = eventRecorder();
    const rotation = await (await tenantStack(sp, stackName, tenantStackProgram(settings([1])), sp.kubeconfigs.both)).up({ onEvent: rec.onEvent });
    await new Promise((r) => setTimeout(r, 1000));
    tenantWatch.stop();
    hubWatch.stop();
    result("q2", "rotation up: resourceChanges", changes(rotation.summary));
    result("q2", "engine events (ms after up() call)", rec.steps.filter((s) => s.kind !== "pre" || /Secret/.test(s.urn ?? "")).map((s) => `${s.at - t0} ${s.kind} ${s.op ?? ""} ${s.urn ?? ""}`.trim()));
    const apiEvents = [...tenantWatch.events.filter((e) => /argocd-manager/.test(e.name)).map((e) => ({ ...e, cluster: "tenant" })), ...hubWatch.events.filter((e) => e.name === "cluster-t1").map((e) => ({ ...e, cluster: "hub" }))]
        .filter((e) => e.at >= t0)
        .sort((a, b) => a.at - b.at);
    result("q2", "API server watch events (ms after up() call)", apiEvents.map((e) => `${e.at - t0} ${e.cluster} ${e.type} ${e.name} uid=${e.uid.slice(0, 8)} rv=${e.rv}`));
    const hubAfter = await getSecret(hubAdmin, ARGOCD_NS, "cluster-t1");
    const newToken = clusterToken(hubAfter);
    result("q2", "hub cluster Secret: same UID, token changed", { sameUid: hubAfter.metadata.uid === hubBefore.metadata.uid, tokenChanged: newToken !== oldToken });
    const hubUpdate = apiEvents.filter((e) => e.cluster === "hub" && e.type === "MODIFIED").pop();
    const oldDeleted = apiEvents.find((e) => e.cluster === "tenant" && e.type === "DELETED" && e.name === "argocd-manager-long-lived-token");
    const newFilled = apiEvents.filter((e) => e.cluster === "tenant" && e.type === "MODIFIED" && e.name === "argocd-manager-long-lived-token-1").pop();
    result("q2", "order (ms): new token filled -> hub updated -> old token deleted", { newFilled: newFilled && newFilled.at - t0, hubUpdated: hubUpdate && hubUpdate.at - t0, oldDeleted: oldDeleted && oldDeleted.at - t0, windowHubUpdateToOldDeletedMs: hubUpdate && oldDeleted ? oldDeleted.at - hubUpdate.at : undefined });
    // The API server caches a successful token authentication (10 s by default): poll until the old token fails.
    const deletedAt = oldDeleted?.at ?? Date.now();
    const polls: string[] = [];
    for (let i = 0; i < 120; i++) {
        const review = await tokenReview(t.admin, oldToken);
        const real = await request({ server: t.server, ca: t.ca, token: oldToken }, "GET", "/api/v1/namespaces/voice-agent/configmaps").then(() => "200", (e) => String(e.message).slice(0, 80));
        polls.push(`${Date.now() - deletedAt}ms after deletion: TokenReview ${review.authenticated}, request ${real}`);
        if (!review.authenticated && real !== "200") break;
        await new Promise((r) => setTimeout(r, 250));
    }
    result("q2", "old token after its Secret's deletion (first and last polls)", [polls[0], polls[polls.length - 2], polls[polls.length - 1]]);
    result("q2", "old token after: TokenReview", await tokenReview(t.admin, oldToken));
    result("q2", "new token after: TokenReview", await tokenReview(t.admin, newToken));
    const asNew: Credentials = { server: t.server, ca: t.ca, token: newToken };
    const asOld: Credentials = { server: t.server, ca: t.ca, token: oldToken };
    result("q2", "new token: real request GET /api/v1/namespaces/voice-agent/configmaps", await request(asNew, "GET", "/api/v1/namespaces/voice-agent/configmaps").then(() => "200", (e) => String(e.message).slice(0, 200)));
    result("q2", "old token: real request GET /api/v1/namespaces/voice-agent/configmaps", await request(asOld, "GET", "/api/v1/namespaces/voice-agent/configmaps").then(() => "200", (e) => String(e.message).slice(0, 200)));
    const again = await (await tenantStack(sp, stackName, tenantStackProgram(settings([1])), sp.kubeconfigs.both)).up();
    result("q2", "second up after rotation: resourceChanges", changes(again.summary));
}

// ---------------------------------------------------------------------------------------------
// Q3: moving a hub-owned cluster Secret into the tenant stack

/** Today's hub stack, reduced to what matters: provider `hub` (kubeconfig input) and TenantClusters `tenants` with the tenant's Secret. */
function hubProgram(hubKubeconfig: string, tenants: Array<{ t: TenantConfig; bearerToken: string; caData: string }>): () => Promise<Record<string, unknown>> {
    return async () => {
        const hub = new k8s.Provider("hub", { kubeconfig: pulumi.secret(hubKubeconfig), clusterIdentifier: "hub", enableSecretMutable: true });
        const component = new (class extends pulumi.ComponentResource {
            constructor() {
                super("agentfleet:index:TenantClusters", "tenants", {}, {});
                for (const { t, bearerToken, caData } of tenants) {
                    new k8s.core.v1.Secret(
                        `tenants-${t.name}`,
                        { metadata: { name: `cluster-${t.name}`, namespace: ARGOCD_NS, labels: rolloutLabels(t, "spike"), annotations: { "agentfleet.io/namespace": t.namespaces[0] } }, type: "Opaque", stringData: pulumi.secret(clusterSecretData(t, "voice-agent-spike", bearerToken, caData)) },
                        { parent: this, provider: hub },
                    );
                }
                this.registerOutputs({});
            }
        })();
        return { tenants: component.urn.apply(() => tenants.map((x) => x.t.name)) };
    };
}

async function q3(sp: Spike): Promise<void> {
    const t = sp.fleet.cluster("t2");
    const hubAdmin = sp.fleet.hub.admin;
    const hubStackName = "spikehub";
    const tenant = tenantConfig("t2", t.server);
    const hubKubeconfig = sp.fleet.hub.kubeconfig;
    const hubWs = await LocalWorkspace.create({ program: hubProgram(hubKubeconfig, []), projectSettings: { name: "agentfleet", runtime: "nodejs" }, envVars: sp.env, pulumiCommand: sp.pulumiCommand });
    const hub = await Stack.createOrSelect(hubStackName, hubWs);
    // Today's onboarding stack, by agentfleet's own engine and program (TenantAccess only).
    const engine = automationEngine({ hubStack: hubStackName, root: hubWs.workDir, env: sp.env, pulumiBin: sp.bins.pulumi });
    const onboarding = onboardingStackName(hubStackName, "t2");
    const credential = await engine.up(onboarding, { tenant: "t2", namespaces: ["voice-agent"], tokenGenerations: [0] }, { KUBECONFIG: sp.kubeconfigs.tenantOnly });
    hubWs.program = hubProgram(hubKubeconfig, [{ t: tenant, ...credential }]);
    result("q3", "hub stack up (today's layout)", changes((await hub.up()).summary));
    const before = await getSecret(hubAdmin, ARGOCD_NS, "cluster-t2");
    const hubUrn = (await engine.hubResources()).find((r) => r.type === "kubernetes:core/v1:Secret")!.urn;
    result("q3", "hub cluster Secret URN", hubUrn);

    const hubWatch = watch(hubAdmin, `/api/v1/namespaces/${ARGOCD_NS}/secrets`);
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    await engine.moveFromHub(onboarding, [hubUrn]);
    const moved = JSON.parse(exportWithSecrets(sp.env, sp.bins, TENANT_PROJECT, onboarding)).deployment.resources as Array<{ urn: string; type: string; inputs?: any; id?: string }>;
    result("q3", "tenant stack after state move: resources", moved.map((r) => r.urn.split("::").slice(2).join("::")));
    const clusters = [sp.fleet.hub, t];
    result("q3", "kubeconfig findings in the tenant stack right after the move", kubeconfigFindings(exportWithSecrets(sp.env, sp.bins, TENANT_PROJECT, onboarding), clusters));
    const movedSecretName = moved.find((r) => r.type === "kubernetes:core/v1:Secret" && r.urn.endsWith("tenants-t2"))!.urn.split("::").pop()!;
    const movedProviderName = moved.find((r) => r.type === "pulumi:providers:kubernetes" && !r.urn.endsWith("t2-kubernetes"))?.urn.split("::").pop();
    result("q3", "moved provider and Secret names (aliased by the tenant program)", { movedProviderName, movedSecretName });

    // The tenant program now declares the Secret (with the same data) and a context-only hub provider.
    const program = tenantStackProgram({ tenant, tokenGenerations: [0], fleet: "spike", movedFrom: { provider: movedProviderName ?? "hub", secret: movedSecretName } });
    const stack = await tenantStack(sp, onboarding, program, sp.kubeconfigs.bothT2);
    const preview = await stack.preview({ diff: true });
    result("q3", "tenant stack preview after the move", preview.changeSummary);
    log(`q3 preview:\n${interesting(preview.stdout)}`);
    const rec = eventRecorder();
    const first = await stack.up({ onEvent: rec.onEvent });
    result("q3", "tenant stack first up after the move: resourceChanges", changes(first.summary));
    result("q3", "tenant stack first up: steps", rec.steps.filter((s) => s.kind === "done" && s.op !== "same").map((s) => `${s.op} ${s.urn}`));
    const second = await stack.up();
    result("q3", "tenant stack second up: resourceChanges", changes(second.summary));
    hubWatch.stop();
    const after = await getSecret(hubAdmin, ARGOCD_NS, "cluster-t2");
    result("q3", "cluster Secret: same UID, same token, watch events on it since the move", { sameUid: after.metadata.uid === before.metadata.uid, sameToken: clusterToken(after) === clusterToken(before), events: hubWatch.events.filter((e) => e.name === "cluster-t2" && e.at >= t0).map((e) => `${e.at - t0}ms ${e.type} rv=${e.rv}`) });

    result("q3", "kubeconfig findings: tenant stack after its first up", kubeconfigFindings(exportWithSecrets(sp.env, sp.bins, TENANT_PROJECT, onboarding), clusters));
    result("q3", "kubeconfig findings: hub stack (its own provider still has the kubeconfig input)", kubeconfigFindings(exportWithSecrets(sp.env, sp.bins, "agentfleet", hubStackName), clusters));
    const tenantState = JSON.parse(exportWithSecrets(sp.env, sp.bins, TENANT_PROJECT, onboarding)).deployment.resources as Array<{ urn: string; type: string; inputs?: any }>;
    result("q3", "tenant stack providers' inputs after its first up", tenantState.filter((r) => r.type === "pulumi:providers:kubernetes").map((r) => ({ urn: r.urn.split("::").pop(), inputs: Object.keys(r.inputs ?? {}) })));

    // A wrong tenant context (another cluster's, t3) under the same clusterIdentifier: preview --refresh only.
    try {
        const wrong = await Stack.select(onboarding, await workspace(sp, program, sp.kubeconfigs.bothT3));
        const p = await wrong.preview({ refresh: true, diff: true });
        result("q3", "preview --refresh with the tenant context naming ANOTHER cluster (t3)", p.changeSummary);
        log(`q3 wrong-context preview:\n${interesting(p.stdout)}`);
    } catch (err) {
        result("q3", "preview --refresh with the tenant context naming ANOTHER cluster (t3): FAILED", String((err as Error).message).split("\n").filter((l) => /error/i.test(l)).slice(0, 4).join("\n"));
    }

    // The file backend's checkpoint history of the tenant stack: which checkpoints keep a provider with a kubeconfig input (encrypted).
    const historyDir = path.join(sp.env.PULUMI_BACKEND_URL.replace("file://", ""), ".pulumi", "history", TENANT_PROJECT, onboarding);
    const checkpoints = fs.existsSync(historyDir) ? fs.readdirSync(historyDir).filter((f) => f.endsWith(".checkpoint.json")) : [];
    result("q3", "tenant stack history checkpoints holding a provider with a kubeconfig input", `${checkpoints.filter((f) => ((JSON.parse(fs.readFileSync(path.join(historyDir, f), "utf8")).checkpoint?.latest?.resources ?? []) as Array<{ type: string; inputs?: any }>).some((r) => r.type === "pulumi:providers:kubernetes" && r.inputs?.kubeconfig !== undefined)).length} of ${checkpoints.length}`);

    // The hub stack, whose program still declares the Secret: what would it do? (preview only)
    const stillDeclares = await hub.preview({ diff: true });
    result("q3", "hub preview with the Secret STILL declared after the move", stillDeclares.changeSummary);
    log(`q3 hub preview (still declared):\n${interesting(stillDeclares.stdout)}`);
    // The hub stack, whose program no longer declares it.
    hubWs.program = hubProgram(hubKubeconfig, []);
    const hubUp = await hub.up();
    result("q3", "hub up with the Secret no longer declared: resourceChanges", changes(hubUp.summary));
    const last = await getSecret(hubAdmin, ARGOCD_NS, "cluster-t2");
    result("q3", "cluster Secret after the hub's up: exists, same UID", { exists: Boolean(last), sameUid: last?.metadata.uid === before.metadata.uid });
    // The hub stack's own provider made context-only (agentfleet:hubKubeconfig leaving): KUBECONFIG with the hub's context only.
    const contextOnlyHub = async () => {
        const provider = new k8s.Provider("hub", { context: HUB_CONTEXT, clusterIdentifier: "hub", enableSecretMutable: true });
        new k8s.core.v1.ConfigMap("hub-probe", { metadata: { name: "spike-probe", namespace: ARGOCD_NS } }, { provider });
        return {};
    };
    const hubWs2 = await LocalWorkspace.create({ program: hubProgram(hubKubeconfig, []), projectSettings: { name: "agentfleet", runtime: "nodejs" }, envVars: { ...sp.env, KUBECONFIG: sp.kubeconfigs.hubOnly }, pulumiCommand: sp.pulumiCommand });
    const hubProbe = await Stack.createOrSelect("spikehub-probe", hubWs2);
    // First with the kubeconfig provider and a resource, then the same provider context-only.
    hubWs2.program = async () => {
        const provider = new k8s.Provider("hub", { kubeconfig: pulumi.secret(hubKubeconfig), clusterIdentifier: "hub", enableSecretMutable: true });
        new k8s.core.v1.ConfigMap("hub-probe", { metadata: { name: "spike-probe", namespace: ARGOCD_NS } }, { provider });
        return {};
    };
    await hubProbe.up();
    const probeMid = await request(hubAdmin, "GET", `/api/v1/namespaces/${ARGOCD_NS}/configmaps/spike-probe`);
    hubWs2.program = contextOnlyHub;
    const switched = await hubProbe.up();
    const probeAfter = await request(hubAdmin, "GET", `/api/v1/namespaces/${ARGOCD_NS}/configmaps/spike-probe`);
    result("q3", "hub stack provider kubeconfig -> context (clusterIdentifier hub): resourceChanges, ConfigMap same UID", { changes: changes(switched.summary), sameUid: probeAfter.metadata.uid === probeMid.metadata.uid, findingsAfter: kubeconfigFindings(exportWithSecrets(sp.env, sp.bins, "agentfleet", "spikehub-probe"), clusters).length });

    // What must never happen: the hub's program still declaring the moved Secret, applied.
    const danger = watch(hubAdmin, `/api/v1/namespaces/${ARGOCD_NS}/secrets`);
    await new Promise((r) => setTimeout(r, 1000));
    const d0 = Date.now();
    hubWs.program = hubProgram(hubKubeconfig, [{ t: tenant, ...credential }]);
    try {
        result("q3", "WRONG ORDER: hub up with the moved Secret still declared", changes((await hub.up()).summary));
    } catch (err) {
        result("q3", "WRONG ORDER: hub up with the moved Secret still declared: FAILED", String((err as Error).message).split("\n").filter((l) => /error/i.test(l)).slice(0, 4).join("\n"));
    }
    hubWs.program = hubProgram(hubKubeconfig, []);
    try {
        result("q3", "WRONG ORDER, then: hub up no longer declaring it", changes((await hub.up()).summary));
    } catch (err) {
        result("q3", "WRONG ORDER, then: hub up no longer declaring it: FAILED", String((err as Error).message).slice(-600));
    }
    const gone = await getSecret(hubAdmin, ARGOCD_NS, "cluster-t2");
    result("q3", "WRONG ORDER: cluster Secret afterwards", { exists: Boolean(gone), sameUid: gone?.metadata.uid === before.metadata.uid });
    try {
        const r = await (await tenantStack(sp, onboarding, program, sp.kubeconfigs.bothT2)).up();
        result("q3", "WRONG ORDER: tenant stack up afterwards", changes(r.summary));
    } catch (err) {
        result("q3", "WRONG ORDER: tenant stack up afterwards: FAILED", String((err as Error).message).split("\n").filter((l) => /error/i.test(l)).slice(0, 4).join("\n"));
    }
    result("q3", "WRONG ORDER: cluster Secret after the tenant's up (no refresh)", { exists: Boolean(await getSecret(hubAdmin, ARGOCD_NS, "cluster-t2")) });
    try {
        const recR = eventRecorder();
        const r = await (await tenantStack(sp, onboarding, program, sp.kubeconfigs.bothT2)).up({ refresh: true, onEvent: recR.onEvent });
        result("q3", "WRONG ORDER: tenant stack up --refresh afterwards", changes(r.summary));
        result("q3", "WRONG ORDER: tenant stack up --refresh afterwards: steps other than same/refresh", recR.steps.filter((x) => x.kind === "done" && !["same", "refresh"].includes(x.op ?? "")).map((x) => `${x.op} ${x.urn}`));
    } catch (err) {
        result("q3", "WRONG ORDER: tenant stack up --refresh afterwards: FAILED", String((err as Error).message).split("\n").filter((l) => /error/i.test(l)).slice(0, 4).join("\n"));
    }
    result("q3", "WRONG ORDER: cluster Secret after the tenant's up --refresh", { exists: Boolean(await getSecret(hubAdmin, ARGOCD_NS, "cluster-t2")) });
    await new Promise((r) => setTimeout(r, 500));
    danger.stop();
    result("q3", "WRONG ORDER: watch events on cluster-t2", danger.events.filter((e) => e.name === "cluster-t2" && e.at >= d0).map((e) => `${e.at - d0}ms ${e.type} uid=${e.uid.slice(0, 8)} rv=${e.rv}`));
}

// ---------------------------------------------------------------------------------------------
// Q5: a pulumi-kubernetes upgrade (every provider's `version` changes) applied with the hub's context only

async function q5(sp: Spike): Promise<void> {
    const t = sp.fleet.cluster("t1");
    const stackName = "spike-tenant-t1";
    const bumped = "4.25.1";
    // The same provider binary installed as the next version: what a dependency bump asks the engine for.
    require("child_process").execFileSync(path.join(sp.bins.pulumi, "pulumi"), ["plugin", "install", "resource", "kubernetes", bumped, "--file", path.join(sp.bins.kubernetesProvider, "pulumi-resource-kubernetes")], { env: { ...process.env, ...sp.env }, stdio: "ignore" });
    const settings: TenantStackSettings = { tenant: tenantConfig("t1", t.server, "ring-2"), tokenGenerations: [0], fleet: "spike" };
    await (await tenantStack(sp, stackName, tenantStackProgram(settings), sp.kubeconfigs.both)).up();
    const inner = tenantStackProgram(settings);
    const program = async () => {
        pulumi.runtime.registerStackTransformation((args) => (args.type.startsWith("kubernetes:") || args.type === "pulumi:providers:kubernetes" ? { props: args.props, opts: { ...args.opts, version: bumped } } : undefined));
        return inner();
    };
    const tenantBefore = await Promise.all(["serviceaccounts/argocd-manager", "secrets/argocd-manager-long-lived-token"].map((x) => request(t.admin, "GET", `/api/v1/namespaces/kube-system/${x}`)));
    const stack = await tenantStack(sp, stackName, program, sp.kubeconfigs.hubOnly);
    for (const [label, run] of [
        ["preview, provider version 4.25.0 -> 4.25.1, hub context only", () => stack.preview({ diff: true })],
        ["up, provider version 4.25.0 -> 4.25.1, hub context only", () => stack.up({ diff: true })],
    ] as Array<[string, () => Promise<{ stdout: string; changeSummary?: unknown; summary?: { resourceChanges?: unknown } }>]>) {
        try {
            const r = await run();
            result("q5", label, r.changeSummary ?? r.summary?.resourceChanges);
            log(`q5 ${label}:\n${interesting(r.stdout)}`);
        } catch (err) {
            result("q5", `${label}: FAILED`, String((err as Error).message).split("\n").filter((l) => /error|warning/i.test(l)).slice(0, 6).join("\n"));
        }
    }
    const state = JSON.parse(exportWithSecrets(sp.env, sp.bins, TENANT_PROJECT, stackName)).deployment.resources as Array<{ urn: string; type: string; inputs?: any }>;
    result("q5", "providers' version input in state afterwards", state.filter((r) => r.type === "pulumi:providers:kubernetes").map((r) => `${r.urn.split("::").pop()}: ${r.inputs?.version}`));
    const tenantAfter = await Promise.all(["serviceaccounts/argocd-manager", "secrets/argocd-manager-long-lived-token"].map((x) => request(t.admin, "GET", `/api/v1/namespaces/kube-system/${x}`)));
    result("q5", "tenant objects (resourceVersion before -> after)", tenantAfter.map((o, i) => `${o.kind} ${o.metadata.name}: ${tenantBefore[i].metadata.resourceVersion} -> ${o.metadata.resourceVersion}`));
    try {
        const again = await (await tenantStack(sp, stackName, program, sp.kubeconfigs.both)).preview({ refresh: true });
        result("q5", "preview --refresh afterwards, both contexts", again.changeSummary);
    } catch (err) {
        result("q5", "preview --refresh afterwards, both contexts: FAILED", String((err as Error).message).split("\n").filter((l) => /error/i.test(l)).slice(0, 4).join("\n"));
    }
}

// ---------------------------------------------------------------------------------------------
// Q4: throughput

function cpuOf(pid: number | undefined): number {
    if (!pid) return 0;
    try {
        const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
        return (Number(f[11]) + Number(f[12])) / 100; // utime+stime, in seconds (USER_HZ 100)
    } catch {
        return 0;
    }
}

function machineIdle(): number {
    const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    return (f[3] + f[4]) / 100;
}

async function runBatch(sp: Spike, label: string, names: string[], parallel: number, ring: string, kubeconfig: string, refresh = false): Promise<void> {
    const t3 = sp.fleet.cluster("t3");
    const pids = { hubApiserver: sp.fleet.hub.processes[0].child.pid, tenantApiserver: t3.processes[0].child.pid };
    const cpu0 = { hub: cpuOf(pids.hubApiserver), tenant: cpuOf(pids.tenantApiserver), node: process.cpuUsage(), idle: machineIdle() };
    const timeLines0 = fs.existsSync(sp.timeLog) ? fs.readFileSync(sp.timeLog, "utf8").split("\n").filter(Boolean).length : 0;
    const t0 = Date.now();
    const per: Array<{ name: string; total: number; select: number; toPrelude: number; preludeToFirstStep: number; steps: number; tail: number; ok: boolean; err?: string }> = [];
    let next = 0;
    let done = 0;
    const worker = async () => {
        while (next < names.length) {
            const name = names[next++];
            const a = Date.now();
            const rec = eventRecorder();
            try {
                const stack = await tenantStack(sp, name, benchProgram(name, t3.server, ring), kubeconfig);
                const b = Date.now();
                const up = await stack.up({ onEvent: rec.onEvent, refresh });
                const z = Date.now();
                const prelude = rec.steps.find((s) => s.kind === "prelude")?.at ?? b;
                const firstStep = rec.steps.find((s) => s.kind === "pre")?.at ?? prelude;
                const lastStep = [...rec.steps].reverse().find((s) => s.kind === "done")?.at ?? z;
                per.push({ name, total: z - a, select: b - a, toPrelude: prelude - b, preludeToFirstStep: firstStep - prelude, steps: lastStep - firstStep, tail: z - lastStep, ok: up.summary.result === "succeeded" });
            } catch (err) {
                per.push({ name, total: Date.now() - a, select: 0, toPrelude: 0, preludeToFirstStep: 0, steps: 0, tail: 0, ok: false, err: String((err as Error).message).slice(-400) });
            }
            done++;
            log(`q4 ${label}: ${done}/${names.length} (${secs(Date.now() - t0)}s)`);
        }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    const wall = (Date.now() - t0) / 1000;
    const node = process.cpuUsage(cpu0.node);
    const timeLines = fs.readFileSync(sp.timeLog, "utf8").split("\n").filter(Boolean).slice(timeLines0).filter((l) => /^[0-9.]+ [0-9.]+ [0-9.]+ /.test(l));
    const cliRuns = timeLines.map((l) => l.split(" ")).map(([e, u, s, ...argv]) => ({ elapsed: Number(e), cpu: Number(u) + Number(s), cmd: argv.slice(1, 3).join(" ") }));
    const byCmd: Record<string, { runs: number; cpu: number; elapsed: number }> = {};
    for (const r of cliRuns) {
        const k = r.cmd.replace(/--.*$/, "").trim() || r.cmd;
        byCmd[k] ??= { runs: 0, cpu: 0, elapsed: 0 };
        byCmd[k].runs++;
        byCmd[k].cpu += r.cpu;
        byCmd[k].elapsed += r.elapsed;
    }
    const avg = (f: (p: (typeof per)[number]) => number) => Math.round(per.filter((p) => p.ok).reduce((a, p) => a + f(p), 0) / Math.max(1, per.filter((p) => p.ok).length));
    const cpuSeconds = {
        pulumiCliWithPlugins: Number(cliRuns.reduce((a, r) => a + r.cpu, 0).toFixed(1)),
        inlineProgramsNodeProcess: Number(((node.user + node.system) / 1e6).toFixed(1)),
        hubApiserver: Number((cpuOf(pids.hubApiserver) - cpu0.hub).toFixed(1)),
        tenantApiserver: Number((cpuOf(pids.tenantApiserver) - cpu0.tenant).toFixed(1)),
        machineBusy: Number((2 * wall - (machineIdle() - cpu0.idle)).toFixed(1)),
        machineAvailable: Number((2 * wall).toFixed(1)),
    };
    result("q4", `${label}: N=${names.length} parallel=${parallel}`, {
        wallSeconds: Number(wall.toFixed(1)),
        tenantsPerMinute: Number(((per.filter((p) => p.ok).length / wall) * 60).toFixed(1)),
        failed: per.filter((p) => !p.ok).map((p) => `${p.name}: ${p.err}`),
        perStackAvgMs: { total: avg((p) => p.total), workspaceAndSelect: avg((p) => p.select), upCallToPrelude: avg((p) => p.toPrelude), preludeToFirstStep: avg((p) => p.preludeToFirstStep), steps: avg((p) => p.steps), afterLastStep: avg((p) => p.tail) },
        cpuSeconds,
        cliRunsByCommand: byCmd,
    });
}

async function q4(sp: Spike): Promise<void> {
    const n = Number(process.env.SPIKE_N ?? 20);
    const names = (from: number, count: number) => Array.from({ length: count }, (_, i) => `bench-${String(from + i).padStart(4, "0")}`);
    await runBatch(sp, "create, one alone", names(900, 1), 1, "canary", sp.kubeconfigs.bothBench);
    await runBatch(sp, "no-op up, one alone", names(900, 1), 1, "canary", sp.kubeconfigs.bothBench);
    // The Kubernetes provider plugin's start: time until it prints its gRPC port (what the engine waits for).
    const starts: number[] = [];
    for (let i = 0; i < 5; i++) {
        const a = Date.now();
        const child = require("child_process").spawn(path.join(sp.bins.kubernetesProvider, "pulumi-resource-kubernetes"), ["127.0.0.1:1"], { stdio: ["ignore", "pipe", "ignore"] });
        await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 20_000);
            child.stdout.once("data", () => (clearTimeout(timer), resolve()));
        });
        starts.push(Date.now() - a);
        child.kill("SIGKILL");
    }
    result("q4", "pulumi-resource-kubernetes start to its port (ms, 5 runs)", starts);
    const versions: number[] = [];
    for (let i = 0; i < 3; i++) {
        const a = Date.now();
        require("child_process").execFileSync(path.join(sp.bins.pulumi, "pulumi"), ["version"]);
        versions.push(Date.now() - a);
    }
    result("q4", "pulumi version (CLI start, ms, 3 runs)", versions);
    await runBatch(sp, "create", names(200, n), 1, "canary", sp.kubeconfigs.bothBench);
    await runBatch(sp, "create", names(0, n), 4, "canary", sp.kubeconfigs.bothBench);
    await runBatch(sp, "create", names(100, n), 8, "canary", sp.kubeconfigs.bothBench);
    await runBatch(sp, "relabel up, hub context only", names(200, n), 1, "ring-2", sp.kubeconfigs.hubOnly);
    await runBatch(sp, "relabel up, hub context only", names(0, n), 4, "ring-2", sp.kubeconfigs.hubOnly);
    await runBatch(sp, "relabel up, hub context only", names(100, n), 8, "ring-2", sp.kubeconfigs.hubOnly);
    await runBatch(sp, "no-op up --refresh (drift check), both contexts", names(0, n), 8, "ring-2", sp.kubeconfigs.bothBench, true);
}

// ---------------------------------------------------------------------------------------------
// Q6: the same tenant stacks through the CLI's Node.js language host (what pulumi/actions runs), one `pulumi up` each

async function q6(sp: Spike): Promise<void> {
    const t3 = sp.fleet.cluster("t3");
    const n = Number(process.env.SPIKE_CLI_N ?? 5);
    const dir = path.join(sp.runDir, "cli-tenant");
    fs.mkdirSync(dir, { recursive: true });
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
    // As the hub's project loads its program: transpile only (tsconfig noCheck), no stack traces.
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${TENANT_PROJECT}\nruntime:\n  name: nodejs\n  options:\n    tsconfig: tsconfig.json\n    nodeargs: "--stack-trace-limit=0"\nmain: index.ts\n`);
    fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({ extends: path.join(ROOT, "tsconfig.json"), compilerOptions: { noCheck: true }, include: [], files: ["index.ts"] }));
    fs.writeFileSync(path.join(dir, "index.ts"), `import * as pulumi from "@pulumi/pulumi";\nimport { benchProgram } from ${JSON.stringify(path.join(ROOT, "e2e", "spikes", "tenant-stack-program"))};\nconst c = new pulumi.Config();\nexport = benchProgram(c.require("name"), c.require("server"), c.require("ring"));\n`);
    const names = Array.from({ length: n }, (_, i) => `clibench-${i}`);
    const wrapped = path.join(path.dirname(sp.pulumiCommand.command), "pulumi");
    const run = (args: string[], kubeconfig: string) => {
        const a = Date.now();
        const r = require("child_process").spawnSync(wrapped, [...args, "--non-interactive"], { cwd: dir, env: { ...process.env, ...sp.env, KUBECONFIG: kubeconfig }, encoding: "utf8", timeout: 5 * 60_000 });
        if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")}: ${String(r.stdout + r.stderr).slice(-800)}`);
        return Date.now() - a;
    };
    const lastTime = () => fs.readFileSync(sp.timeLog, "utf8").trim().split("\n").filter((l) => /^[0-9.]+ [0-9.]+ [0-9.]+ /.test(l)).pop()!.split(" ");
    const batch = (label: string, ring: string, kubeconfig: string) => {
        const rows = names.map((name) => {
            fs.writeFileSync(path.join(dir, `Pulumi.${name}.yaml`), YAML.stringify({ config: { [`${TENANT_PROJECT}:name`]: name, [`${TENANT_PROJECT}:server`]: t3.server, [`${TENANT_PROJECT}:ring`]: ring } }));
            const ms = run(["up", "--yes", "--skip-preview", "--stack", name], kubeconfig);
            const [, u, s2] = lastTime();
            return { ms, cpu: Number(u) + Number(s2) };
        });
        const avg = (f: (r: (typeof rows)[number]) => number) => Number((rows.reduce((x, r) => x + f(r), 0) / rows.length).toFixed(2));
        result("q6", `CLI pulumi up (Node.js language host, ts), ${label}, ${n} sequential`, { avgSeconds: avg((r) => r.ms / 1000), avgCpuSeconds: avg((r) => r.cpu), tenantsPerMinuteSequential: Number((60 / avg((r) => r.ms / 1000)).toFixed(1)) });
    };
    for (const name of names) run(["stack", "init", name], sp.kubeconfigs.bothBench);
    batch("create", "canary", sp.kubeconfigs.bothBench);
    batch("no-op", "canary", sp.kubeconfigs.bothBench);
    batch("relabel, hub context only", "ring-2", sp.kubeconfigs.hubOnly);
    // The language host inherits KUBECONFIG: what the SDK gives a provider without a kubeconfig input (the file's path).
    const state = JSON.parse(exportWithSecrets(sp.env, sp.bins, TENANT_PROJECT, names[0])).deployment.resources as Array<{ urn: string; type: string; inputs?: any }>;
    result("q6", "CLI path: the providers' kubeconfig input in state", state.filter((r) => r.type === "pulumi:providers:kubernetes").map((r) => `${r.urn.split("::").pop()}: ${JSON.stringify(r.inputs?.kubeconfig)}`));
}

// ---------------------------------------------------------------------------------------------
// Q7: the real Argo CD (as e2e/harness/argocd.ts starts it) while one up rotates the token

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function q7(sp: Spike): Promise<void> {
    const t = sp.fleet.cluster("t7");
    const hub = sp.fleet.hub;
    const windowMs = Number(process.env.SPIKE_Q7_WINDOW_S ?? 60) * 1000;
    const repo = manifestRepo(path.join(sp.runDir, "q7-repo"));
    await prepareHub(hub.admin, repo.url);
    const stackName = "spike-q7-t7";
    const program = (g: number[]) => tenantStackProgram({ tenant: tenantConfig("t7", t.server), tokenGenerations: g, fleet: "spike" });
    const first = await (await tenantStack(sp, stackName, program([0]), sp.kubeconfigs.bothT7)).up();
    result("q7", "first up [0]", changes(first.summary));
    const argocd = await startArgoCd({ engineDir: sp.argocdDir, hub, caFile: sp.fleet.tls.caFile, dir: path.join(sp.runDir, "argocd"), log });
    const controllerLog = argocd.logOf("argocd-application-controller");
    let obs: ReturnType<typeof observe> | undefined;
    try {
        await createApplication(hub.admin, repo.url, t.server);
        await waitFor("probe-t1 Synced and Healthy", async () => {
            const s = (await request(hub.admin, "GET", "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/probe-t1")).status;
            return s?.sync?.status === "Synced" && s?.health?.status === "Healthy";
        }, { attempts: 120, intervalMs: 1000 });
        log("q7: probe-t1 Synced and Healthy");
        obs = observe(hub.admin, repo.bump);
        let windowStart = Date.now();
        let logFrom = fs.statSync(controllerLog).size;
        let counters = await authCounters(t.admin);
        await sleep(windowMs);
        result("q7", "baseline window: Application", summarise(obs.samples, windowStart, Date.now()));
        result("q7", "baseline window: controller log trouble lines", troubleLines(controllerLog, logFrom).slice(0, 20));
        result("q7", "baseline window: controller log", logTally(controllerLog, logFrom));
        const rotate = async (label: string, steps: number[][]) => {
            const oldToken = clusterToken(await getSecret(hub.admin, ARGOCD_NS, "cluster-t7"));
            logFrom = fs.statSync(controllerLog).size;
            counters = await authCounters(t.admin);
            const upAt = Date.now();
            windowStart = upAt;
            const timings: string[] = [];
            for (const g of steps) {
                const rec = eventRecorder();
                const a = Date.now();
                const up = await (await tenantStack(sp, stackName, program(g), sp.kubeconfigs.bothT7)).up({ onEvent: rec.onEvent });
                timings.push(`up ${JSON.stringify(g)} at +${a - upAt} ms: ${JSON.stringify(changes(up.summary))}; ` + rec.steps.filter((x) => x.kind === "done" && x.op !== "same").map((x) => `${x.at - upAt} (${new Date(x.at).toISOString()}) ${x.op} ${x.urn}`).join(" · "));
                if (steps.length > 1) await sleep(windowMs / 2); // the two-up variant: Argo CD works with both tokens valid in between
            }
            const doneAt = Date.now();
            await sleep(windowMs);
            const after = await authCounters(t.admin);
            const newToken = clusterToken(await getSecret(hub.admin, ARGOCD_NS, "cluster-t7"));
            result("q7", `${label}: steps (ms after the first up call)`, timings);
            result("q7", `${label}: Application from the up until ${secs(windowMs)}s after it`, summarise(obs!.samples, windowStart, Date.now()));
            result("q7", `${label}: Application samples not Synced/Healthy or with conditions`, obs!.samples.filter((x) => x.at >= windowStart && (x.sync !== "Synced" || x.health !== "Healthy" || x.conditions.length > 0 || (x.op && x.op !== "Succeeded" && x.op !== "Running"))).map((x) => `+${x.at - upAt} ${x.sync}/${x.health} ${x.op ?? ""} ${x.conditions.join(" | ")}`).slice(0, 20));
            const trouble = troubleLines(controllerLog, logFrom);
            result("q7", `${label}: controller log trouble lines (${trouble.length}; 401/Unauthorized/credentials among them: ${trouble.filter((l) => /401|unauthori|credentials|invalid bearer|asked/i.test(l)).length})`, trouble.slice(0, 20));
            result("q7", `${label}: controller log (cluster cache times in UTC, up began ${new Date(upAt).toISOString()})`, logTally(controllerLog, logFrom));
            result("q7", `${label}: tenant API server authentication counters, change over the window`, Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (counters[k] ?? 0)]).filter(([, v]) => v !== 0)));
            result("q7", `${label}: old token still authenticates ${secs(Date.now() - doneAt)}s after the up; the cluster Secret's token changed`, { old: await tokenReview(t.admin, oldToken), changed: newToken !== oldToken });
            result("q7", `${label}: controller metrics`, await controllerMetrics(argocd));
        };
        await rotate("one up #1 [0] -> [1]", [[1]]);
        await rotate("one up #2 [1] -> [2]", [[2]]);
        await rotate("one up #3 [2] -> [3]", [[3]]);
        await rotate("two ups [3] -> [3,4] -> [4]", [[3, 4], [4]]);
        // Control: a request with a deleted token does move the failure counter (so zero above means zero).
        const deleted = clusterToken(await getSecret(hub.admin, ARGOCD_NS, "cluster-t7")); // generation 4 is live; rotate it away first
        await (await tenantStack(sp, stackName, program([5]), sp.kubeconfigs.bothT7)).up();
        const before = await authCounters(t.admin);
        await sleep(11_000); // past the API server's 10 s cache of successful authentications
        const answer = await request({ server: t.admin.server, ca: t.admin.ca, token: deleted }, "GET", "/api").then(() => "accepted", (e) => String((e as Error).message).slice(0, 120));
        const afterControl = await authCounters(t.admin);
        result("q7", "control: GET /api with the deleted generation-4 token", { answer, counters: Object.fromEntries(Object.entries(afterControl).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v !== 0)) });
    } finally {
        await obs?.stop();
        await argocd.stop();
    }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
    const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["q1", "q2", "q3", "q4", "q5", "q6", "q7"];
    // q7 has a tenant of its own (t7); the others share t1-t3. Only the clusters the run needs start.
    const clusters = ["hub", ...(wanted.some((q) => q !== "q7") ? ["t1", "t2", "t3"] : []), ...(wanted.includes("q7") ? ["t7"] : [])];
    const engines = await ensureEngines({ log });
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-spike-"));
    const bins: PulumiBins = { pulumi: engines.pulumi.bin, kubernetesProvider: engines["pulumi-kubernetes"].bin };
    const fleet = new LoopbackFleet({ clusters, dir: path.join(runDir, "fleet"), bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin }, log });
    const cleanup = async () => {
        await fleet.stop();
        await stopAll();
        if (!process.env.SPIKE_KEEP) fs.rmSync(runDir, { recursive: true, force: true });
        else log(`kept ${runDir}`);
    };
    try {
        await fleet.start();
        // q7's Argo CD needs its CRDs; installArgoCdCrds creates the namespace too.
        if (wanted.includes("q7")) await installArgoCdCrds(fleet.hub.admin, engines.argocd.dir, ARGOCD_NS);
        else await request(fleet.hub.admin, "POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: ARGOCD_NS } });
        const env = pulumiEnv(runDir, bins);
        installProvider(env, bins, ROOT);
        // The CLI behind /usr/bin/time: elapsed, CPU (its plugins included: it waits for them) and argv of every run.
        const timeLog = path.join(runDir, "pulumi-times.log");
        const wrapRoot = path.join(runDir, "pulumi-wrapped");
        fs.mkdirSync(path.join(wrapRoot, "bin"), { recursive: true });
        fs.writeFileSync(path.join(wrapRoot, "bin", "pulumi"), `#!/bin/sh\nexec /usr/bin/time -a -o ${timeLog} -f '%e %U %S %C' ${path.join(bins.pulumi, "pulumi")} "$@"\n`, { mode: 0o755 });
        const pulumiCommand = await PulumiCommand.get({ root: wrapRoot });
        const dir = fs.mkdtempSync(path.join(runDir, "kubeconfigs-"));
        // A tenant this run did not start stands in as the hub (so that no file names a missing cluster).
        const tenant = (name: string) => (clusters.includes(name) ? fleet.cluster(name) : fleet.hub);
        const kubeconfigs = {
            both: writePrivate(dir, "both", kubeconfigWith([[TENANT_CONTEXT, tenant("t1")], [HUB_CONTEXT, fleet.hub]])),
            bothT2: writePrivate(dir, "both-t2", kubeconfigWith([[TENANT_CONTEXT, tenant("t2")], [HUB_CONTEXT, fleet.hub]])),
            bothT3: writePrivate(dir, "both-t3", kubeconfigWith([[TENANT_CONTEXT, tenant("t3")], [HUB_CONTEXT, fleet.hub]])),
            bothBench: writePrivate(dir, "both-bench", kubeconfigWith([[TENANT_CONTEXT, tenant("t3")], [HUB_CONTEXT, fleet.hub]])),
            bothT7: writePrivate(dir, "both-t7", kubeconfigWith([[TENANT_CONTEXT, tenant("t7")], [HUB_CONTEXT, fleet.hub]])),
            hubOnly: writePrivate(dir, "hub-only", kubeconfigWith([[HUB_CONTEXT, fleet.hub]])),
            tenantOnly: writePrivate(dir, "t2-only", kubeconfigWith([[TENANT_CONTEXT, tenant("t2")]])),
        };
        const sp: Spike = { runDir, fleet, bins, env, pulumiCommand, timeLog, kubeconfigs, argocdDir: engines.argocd.dir };
        for (const [q, run] of Object.entries({ q1, q2, q3, q4, q5, q6, q7 })) {
            if (!wanted.includes(q)) continue;
            log(`${q} begins`);
            try {
                await run(sp);
            } catch (err) {
                result(q, "ABORTED", String((err as Error).stack ?? err).slice(0, 3000));
            }
            log(`${q} ends`);
        }
    } finally {
        await cleanup();
    }
}

main().then(
    () => process.exit(0),
    (err) => {
        process.stderr.write(`${(err as Error).stack ?? err}\n`);
        process.exit(1);
    },
);
