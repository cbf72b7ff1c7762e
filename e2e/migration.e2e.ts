/**
 * Migration to tenant stacks, on the real engines: a hub deployed by the PREVIOUS agentfleet
 * (PREVIOUS_COMMIT: the hub program's TenantClusters declares every `cluster-<tenant>` Secret, the
 * hub stack file's tenantCredentials holds the tokens, bootstrap tenants have onboarding stacks),
 * set up and run by that agentfleet's own e2e harness, moves to tenant stacks with this agentfleet's
 * `npm run tenant -- migrate-registration --all`. Nothing is written to any cluster Secret: same
 * UIDs, same tokens, and a watch of the hub's Argo CD Secrets sees no event on them from before the
 * migration to after the hub's next up, which changes nothing on the hub. A second run does nothing.
 *
 * Also the previous agentfleet's onboarding stack of an older shape (its provider held the tenant's
 * admin kubeconfig, made before i-kubeconfig-env): after the migration, bootstrap takes it out,
 * replacing nothing; a run with another cluster's KUBECONFIG is refused and touches nothing.
 */
import * as assert from "assert";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import { parseDocument } from "yaml";
import { main as tenantMain } from "../commands/tenant";
import { heldRegistrations, stateResourcesOf } from "../stacks/hub-state";
import type { OnboardingEngine } from "../tenants/engine";
import { ONBOARDING_CONTEXT, readTenantKubeconfig, withTenantKubeconfig } from "../tenants/kubeconfig";
import { onboardTenants } from "../tenants/onboard";
import { ONBOARDING_PROJECT, onboardingStackName } from "../tenants/onboarding-program";
import { readView } from "../tenants/stack-file";
import { type Credentials, getOrUndefined, request } from "./harness/kube";
import { stopAll } from "./harness/processes";
import { E2E_STACK, type E2eWorld, checkoutAt, onboardingEngine } from "./harness/project";
import { pulumiStack } from "./harness/pulumi";
import { exportWithSecrets, kubeconfigFindings } from "./harness/state";

/** The previous agentfleet: main before tenant stacks (its hub declares the cluster Secrets; tenantCredentials holds the tokens). */
const PREVIOUS_COMMIT = "3b92e4e";
/** The last commit whose onboarding program gave the tenant's provider the admin kubeconfig as an input. */
const KUBECONFIG_INPUT_COMMIT = "6da46baa2fdbbaee0343b6c9422ddfe1d75530ee";

type Obj = Record<string, any>;
const log = (line: string) => process.stderr.write(`e2e migration: ${line}\n`);

/** Every watch event on the hub's Argo CD cluster Secrets while it runs (bounded: stopped by `stop`). */
function watchClusterSecrets(hub: Credentials, namespace: string, resourceVersion: string): { events: string[]; stop: () => void } {
    const events: string[] = [];
    const url = new URL(`/api/v1/namespaces/${namespace}/secrets?watch=1&labelSelector=argocd.argoproj.io%2Fsecret-type%3Dcluster&resourceVersion=${resourceVersion}&timeoutSeconds=1800`, hub.server);
    let buffer = "";
    const req = https.get(url, { ca: hub.ca, cert: hub.cert, key: hub.key, headers: hub.token ? { Authorization: `Bearer ${hub.token}` } : {} }, (res) => {
        res.on("data", (d) => {
            buffer += d;
            for (let i = buffer.indexOf("\n"); i >= 0; i = buffer.indexOf("\n")) {
                const line = buffer.slice(0, i);
                buffer = buffer.slice(i + 1);
                if (!line.trim()) continue;
                const e = JSON.parse(line);
                events.push(`${e.type} ${e.object?.metadata?.name} ${e.object?.metadata?.uid}`);
            }
        });
    });
    req.on("error", (err) => events.push(`watch error: ${err.message}`));
    return { events, stop: () => req.destroy() };
}

describe("real engines: a hub of the previous agentfleet migrates its registrations to tenant stacks", function () {
    let runDir = "";
    let previous = "";
    /** The previous agentfleet's own e2e harness (its startWorld built the world). */
    let old: { startWorld: (runDir: string) => Promise<E2eWorld>; stopWorld: (w: Partial<E2eWorld>) => Promise<void> };
    let oldProcesses: { stopAll: () => Promise<void> } | undefined;
    let w: E2eWorld | undefined;
    let current = "";
    let engine: OnboardingEngine;
    const clusterSecret = (t: string) => `/api/v1/namespaces/argocd/secrets/cluster-${t}`;
    const registrations = async (): Promise<Record<string, Obj>> => Object.fromEntries(await Promise.all(w!.tenants.map(async (t) => [t.name, await request(w!.fleet.hub.admin, "GET", clusterSecret(t.name))])));
    const uidsAndTokens = async () => Object.fromEntries(Object.entries(await registrations()).map(([t, s]) => [t, `${s.metadata.uid} ${s.data.config}`]));
    let registered: Record<string, string>;
    let watch: ReturnType<typeof watchClusterSecrets> | undefined;
    /** The bootstrap tenant whose onboarding stack gets the older shape. */
    const olderShapeTenant = () => w!.tenants.filter((t) => t.credentials === "bootstrap").at(-1)!;
    const hubState = () => stateResourcesOf(JSON.parse(exportWithSecrets(w!.pulumi.env, w!.bins, "agentfleet", E2E_STACK)));

    /** `npm run tenant -- <args>` of this agentfleet, in-process, on the run's backend (KUBECONFIG: the hub's). */
    const tenant = async (...args: string[]) => {
        let stdout = "";
        let stderr = "";
        const started = Date.now();
        const code = await tenantMain([...args, "--stack", E2E_STACK, "--project-root", current], {
            stdout: (t) => (stdout += t),
            stderr: (t) => ((stderr += t), process.stderr.write(`  | ${t}`)),
            env: { ...process.env, ...w!.pulumi.env, KUBECONFIG: w!.fleet.hub.kubeconfigPath },
            cwd: current,
            engine: () => engine,
        });
        log(`tenant ${args[0]}: exit ${code} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
        return { code, stdout, stderr };
    };

    before(async function () {
        runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-e2e-migration-"));
        previous = checkoutAt(PREVIOUS_COMMIT, path.join(runDir, "previous"));
        old = require(path.join(previous, "e2e/harness/project.ts"));
        oldProcesses = require(path.join(previous, "e2e/harness/processes.ts"));
        w = await old.startWorld(runDir);
    });

    after(async function () {
        watch?.stop();
        if (w) await old.stopWorld(w);
        await oldProcesses?.stopAll();
        await stopAll();
        if (!process.env.E2E_KEEP) for (const dir of [runDir, current]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("the previous agentfleet's hub: its pulumi up registers every tenant from the hub stack (TenantClusters' tenants-<t>, tokens in tenantCredentials)", async () => {
        const up = await w!.pulumi.stack.up({ onOutput: () => undefined });
        assert.strictEqual(up.summary.result, "succeeded");
        assert.deepStrictEqual(heldRegistrations(hubState()), w!.tenants.map((t) => t.name).sort());
        registered = await uidsAndTokens();
        assert.strictEqual(Object.keys(registered).length, w!.tenants.length);
    });

    it("an onboarding stack of an older shape (the admin kubeconfig a provider input), made by that agentfleet's bootstrap, is what one tenant has", async () => {
        const t = olderShapeTenant();
        const cluster = w!.fleet.cluster(t.name);
        const olderShape = checkoutAt(KUBECONFIG_INPUT_COMMIT, path.join(runDir, "kubeconfig-input"));
        const older = { ...require(path.join(olderShape, "tenants/onboard.ts")), ...require(path.join(olderShape, "tenants/engine.ts")) };
        // It checks the hub stack file of its own layout: the tenants and the hub's kubeconfig (a secret) in it, no hub.server.
        const layout = parseDocument(readView(w!.project, E2E_STACK));
        layout.deleteIn(["config", "agentfleet:hub", "server"]);
        fs.writeFileSync(path.join(olderShape, `Pulumi.${E2E_STACK}.yaml`), layout.toString());
        execFileSync(path.join(w!.bins.pulumi, "pulumi"), ["config", "set", "--secret", "hubKubeconfig", "--stack", E2E_STACK, "--non-interactive"], { cwd: olderShape, env: { ...process.env, ...w!.pulumi.env }, input: w!.fleet.hub.kubeconfig, stdio: ["pipe", "ignore", "pipe"] });
        const checked = readTenantKubeconfig(cluster.kubeconfigPath, { server: t.server });
        await withTenantKubeconfig(checked, async (env) => {
            const outcomes = await older.onboardTenants({ hub: { stack: E2E_STACK, root: olderShape }, engine: older.automationEngine({ hubStack: E2E_STACK, root: olderShape, env: { ...w!.pulumi.env, ...env }, pulumiBin: w!.bins.pulumi }), targets: [{ name: t.name, kubeconfigFile: cluster.kubeconfigPath }], parallel: 1, log: () => undefined });
            assert.ok(outcomes.every((o: { ok: boolean }) => o.ok), JSON.stringify(outcomes));
        });
        const found = kubeconfigFindings(exportWithSecrets(w!.pulumi.env, w!.bins, ONBOARDING_PROJECT, onboardingStackName(E2E_STACK, t.name)), [cluster]);
        assert.ok(found.some((f) => f.startsWith(`${t.name}'s client-key-data in `)), `the older shape's kubeconfig is not in the stack: ${found}`);
        assert.deepStrictEqual(await uidsAndTokens(), registered, "the older agentfleet's bootstrap changed a registration");
    });

    it("migrate-registration --all moves every registration into its tenant stack: no UID or token changes, no watch event, hub state holds none, tenantCredentials gone", async () => {
        // This agentfleet, on the same backend, the previous hub stack file and tenant files.
        current = checkoutAt("HEAD", path.join(runDir, "current"));
        fs.copyFileSync(path.join(w!.project, `Pulumi.${E2E_STACK}.yaml`), path.join(current, `Pulumi.${E2E_STACK}.yaml`));
        fs.rmSync(path.join(current, "fleet", E2E_STACK), { recursive: true, force: true });
        fs.cpSync(path.join(w!.project, "fleet", E2E_STACK), path.join(current, "fleet", E2E_STACK), { recursive: true });
        engine = onboardingEngine({ project: current, pulumi: w!.pulumi, bins: w!.bins });
        const list = (await request(w!.fleet.hub.admin, "GET", "/api/v1/namespaces/argocd/secrets")).metadata.resourceVersion;
        watch = watchClusterSecrets(w!.fleet.hub.admin, "argocd", list);

        const started = Date.now();
        const run = await tenant("migrate-registration", "--all", "--parallel", "4");
        log(`migrate-registration --all of ${w!.tenants.length} tenants: ${((Date.now() - started) / 1000).toFixed(1)}s`);
        assert.strictEqual(run.code, 0, run.stderr);
        assert.match(run.stdout, /^Migrated /);
        assert.deepStrictEqual(heldRegistrations(hubState()), [], "the hub state still holds a registration");
        assert.ok(!fs.readFileSync(path.join(current, `Pulumi.${E2E_STACK}.yaml`), "utf8").includes("tenantCredentials"), "tenantCredentials is left in the stack file");
        assert.deepStrictEqual(await uidsAndTokens(), registered, "a cluster Secret was recreated or its token changed");
        const live = await registrations();
        for (const t of w!.tenants) assert.ok(!`${run.stdout}${run.stderr}`.includes(JSON.parse(Buffer.from(live[t.name].data.config, "base64").toString()).bearerToken), `${t.name}'s token reached the terminal`);
        // The move brought the hub's provider (with the hub's admin kubeconfig) into each tenant stack; the up made it
        // context-only. (The older-shape tenant's own provider may still hold its kubeconfig: the last scenario.)
        const clusters = [...w!.tenants.map((t) => w!.fleet.cluster(t.name)), w!.fleet.hub];
        for (const t of w!.tenants.filter((t) => t.name !== olderShapeTenant().name)) {
            const stack = onboardingStackName(E2E_STACK, t.name);
            assert.deepStrictEqual(kubeconfigFindings(exportWithSecrets(w!.pulumi.env, w!.bins, ONBOARDING_PROJECT, stack), clusters), [], `${stack}'s state`);
        }
        assert.deepStrictEqual(watch.events, [], "the hub saw a cluster Secret change during the migration");
    });

    it("the hub's pulumi up with this agentfleet's program afterwards deletes or replaces nothing on the hub, and a second migrate-registration does nothing", async () => {
        const hub = await pulumiStack(current, E2E_STACK, runDir, w!.bins, w!.fleet.hub.kubeconfigPath);
        const events: EngineEvent[] = [];
        const up = await hub.stack.up({ onOutput: () => undefined, onEvent: (e) => events.push(e) });
        const steps = events.flatMap((e) => (e.resOutputsEvent && e.resOutputsEvent.metadata.op !== "same" ? [`${e.resOutputsEvent.metadata.op} ${e.resOutputsEvent.metadata.type} ${e.resOutputsEvent.metadata.urn.split("::").pop()}`] : []));
        log(`the hub's up after the migration: ${JSON.stringify(up.summary.resourceChanges)}: ${steps.join(", ")}`);
        // Only the TenantClusters component (no object on any cluster) leaves the state.
        const onCluster = steps.filter((s) => /^(delete|replace|create-replacement|delete-replaced) kubernetes:/.test(s));
        assert.deepStrictEqual(onCluster, [], `the hub's up deleted or replaced: ${steps.join(", ")}`);
        assert.deepStrictEqual(await uidsAndTokens(), registered);
        await hub.stack.preview({ expectNoChanges: true });
        assert.deepStrictEqual(watch!.events, [], "the hub saw a cluster Secret change");

        const again = await tenant("migrate-registration", "--all");
        assert.strictEqual(again.code, 0, again.stderr);
        assert.match(again.stdout, /Every tenant was migrated before: nothing to do/);
        assert.deepStrictEqual(await uidsAndTokens(), registered);
        assert.deepStrictEqual(watch!.events, []);
    });

    it("the older-shape tenant stack loses the admin kubeconfig at the next bootstrap, nothing replaced; a run with another cluster's KUBECONFIG is refused and touches nothing", async () => {
        const t = olderShapeTenant();
        const cluster = w!.fleet.cluster(t.name);
        const stack = onboardingStackName(E2E_STACK, t.name);
        const onTenant = ["/api/v1/namespaces/voice-agent", "/api/v1/namespaces/kube-system/serviceaccounts/argocd-manager", "/api/v1/namespaces/kube-system/secrets/argocd-manager-long-lived-token", "/apis/rbac.authorization.k8s.io/v1/clusterroles/argocd-manager-cluster-role"];
        const uids = async () => Promise.all(onTenant.map(async (p) => `${p} ${(await request(cluster.admin, "GET", p)).metadata.uid}`));
        const state = () => JSON.parse(exportWithSecrets(w!.pulumi.env, w!.bins, ONBOARDING_PROJECT, stack)).deployment.resources as Obj[];
        const tenantProvider = (resources: Obj[]) => resources.find((r) => r.type === "pulumi:providers:kubernetes" && !r.urn.endsWith("::hub"))!;
        const beforeState = state();
        const uidsBefore = await uids();
        log(`${stack}'s tenant provider before bootstrap: kubeconfig input ${tenantProvider(beforeState).inputs.kubeconfig ? "still set (the hub-context-only migration left it)" : "gone (the migration's up updated it)"}`);

        const outcomes = await onboardTenants({ hub: { stack: E2E_STACK, root: current }, engine, targets: [{ name: t.name, kubeconfigFile: cluster.kubeconfigPath }], hubKubeconfig: w!.fleet.hub.kubeconfig, parallel: 1, log });
        assert.ok(outcomes.every((o) => o.ok), JSON.stringify(outcomes));
        const after = state();
        assert.deepStrictEqual(kubeconfigFindings(exportWithSecrets(w!.pulumi.env, w!.bins, ONBOARDING_PROJECT, stack), [cluster, w!.fleet.hub]), []);
        assert.strictEqual(tenantProvider(after).inputs.context, ONBOARDING_CONTEXT);
        assert.strictEqual(tenantProvider(after).id, tenantProvider(beforeState).id, "the provider was replaced");
        assert.deepStrictEqual(await uids(), uidsBefore, "an argocd-manager object on the tenant was recreated");
        assert.deepStrictEqual(await uidsAndTokens(), registered, "the registration changed");

        // Another cluster's kubeconfig (the hub's: no agentfleet-tenant context) as the whole KUBECONFIG: refused, nothing touched.
        const hubManager = "/api/v1/namespaces/kube-system/serviceaccounts/argocd-manager";
        const tokens = (await engine.tokenState(stack))!;
        const wrong = await engine.up(stack, { tenant: t.name, namespaces: ["voice-agent"], tokenGenerations: tokens.generations }, { KUBECONFIG: w!.fleet.hub.kubeconfigPath }).then(
            () => "",
            (err: Error) => err.message,
        );
        assert.match(wrong, /^pulumi up of .* failed: error: /);
        assert.strictEqual(await getOrUndefined(w!.fleet.hub.admin, hubManager), undefined, "the run reached the hub");
        assert.deepStrictEqual(await uids(), uidsBefore);
        assert.deepStrictEqual(await uidsAndTokens(), registered);
    });
});
