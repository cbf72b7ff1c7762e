/**
 * Migration to onboarding stacks, on the real engines: a hub stack deployed by the layout before
 * onboarding stacks (the program at LEGACY_COMMIT, which bootstrapped tenants inside the hub stack
 * with a provider each) moves to the current layout with `migrateTenant` (`npm run tenant --
 * migrate`), and nothing on any cluster is deleted or recreated: the tenant's argocd-manager
 * objects keep their UIDs, and the hub keeps the same token; afterwards neither stack's state holds
 * the tenant's admin kubeconfig, nor the hub's (which leaves the configuration in the same move).
 */
import * as assert from "assert";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ensureEngines } from "../engines/toolchain";
import { migrateTenant } from "../tenants/migrate";
import { ARGOCD_CRD_FILES } from "../stacks/config";
import { LoopbackFleet } from "./harness/fleet";
import { request } from "./harness/kube";
import { stopAll } from "./harness/processes";
import { E2E_HUB_PORT, E2E_STACK, HUB, checkoutAt, e2eTenants, onboardingEngine, splitInventory, withArgoCdCrds } from "./harness/project";
import { type PulumiRun, installProvider, pulumiStack } from "./harness/pulumi";
import { exportWithSecrets, kubeconfigFindings } from "./harness/state";
import { ONBOARDING_PROJECT } from "../tenants/onboarding-program";

/** The last commit whose program bootstrapped tenants inside the hub stack. */
const LEGACY_COMMIT = "9b521c2~1";

const log = (line: string) => process.stderr.write(`e2e migration: ${line}\n`);

describe("real engines: migrating a hub stack with in-hub bootstrap tenants to onboarding stacks", function () {
    let runDir = "";
    let fleet: LoopbackFleet | undefined;

    after(async function () {
        await fleet?.stop();
        await stopAll();
        if (runDir && !process.env.E2E_KEEP) fs.rmSync(runDir, { recursive: true, force: true });
    });

    it("moves the tenant's argocd-manager out of the hub stack without deleting or recreating anything", async () => {
        runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-e2e-migration-"));
        const engines = await ensureEngines({ log });
        const legacy = checkoutAt(LEGACY_COMMIT, path.join(runDir, "legacy"));
        const tenants = e2eTenants(legacy);
        const bootstrap = tenants.find((t) => t.credentials === "bootstrap")!;
        fleet = new LoopbackFleet({
            clusters: [HUB, ...tenants.map((t) => t.name)],
            ports: { [HUB]: E2E_HUB_PORT, ...Object.fromEntries(tenants.map((t) => [t.name, Number(new URL(t.server).port)])) },
            dir: path.join(runDir, "fleet"),
            bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin },
            log,
        });
        await fleet.start();
        const bins = { pulumi: engines.pulumi.bin, kubernetesProvider: engines["pulumi-kubernetes"].bin };
        withArgoCdCrds(legacy, engines);

        // The legacy layout, deployed: the bootstrap tenant's kubeconfig in the hub stack.
        const old: PulumiRun = await pulumiStack(legacy, E2E_STACK, runDir, bins);
        installProvider(old.env, bins, legacy);
        const secret = (value: string) => ({ value, secret: true });
        await old.stack.setConfig("agentfleet:hubKubeconfig", secret(fleet.hub.kubeconfig));
        await old.stack.setConfig(`agentfleet:tenantCredentials.${bootstrap.name}.kubeconfig`, secret(fleet.cluster(bootstrap.name).kubeconfig), true);
        for (const t of tenants.filter((t) => t.credentials === "token")) {
            await old.stack.setConfig(`agentfleet:tenantCredentials.${t.name}.bearerToken`, secret("example-only-token"), true);
            await old.stack.setConfig(`agentfleet:tenantCredentials.${t.name}.caData`, secret(Buffer.from(fleet.cluster(t.name).ca).toString("base64")), true);
        }
        await old.stack.up({ onOutput: () => undefined });
        const tenantAdmin = fleet.cluster(bootstrap.name).admin;
        const uids = async () =>
            Object.fromEntries(
                await Promise.all(
                    ["/api/v1/namespaces/kube-system/serviceaccounts/argocd-manager", "/apis/rbac.authorization.k8s.io/v1/namespaces/voice-agent/roles/argocd-manager-role", "/api/v1/namespaces/voice-agent"].map(
                        async (p) => [p, (await request(tenantAdmin, "GET", p)).metadata.uid],
                    ),
                ),
            );
        const before = await uids();
        const hubSecret = `/api/v1/namespaces/argocd/secrets/cluster-${bootstrap.name}`;
        const tokenBefore = (await request(fleet.hub.admin, "GET", hubSecret)).data.config;
        const hubAdmin = fleet.hub.admin;
        const clusterSecretUids = async () => Object.fromEntries(await Promise.all(tenants.map(async (t) => [t.name, (await request(hubAdmin, "GET", `/api/v1/namespaces/argocd/secrets/cluster-${t.name}`)).metadata.uid])));
        const hubUidsBefore = await clusterSecretUids();

        // The current program, on the same state and the same stack file.
        const current = checkoutAt("HEAD", path.join(runDir, "current"));
        const crdsSource = withArgoCdCrds(current, engines);
        fs.copyFileSync(path.join(legacy, `Pulumi.${E2E_STACK}.yaml`), path.join(current, `Pulumi.${E2E_STACK}.yaml`));
        // The documented migration: the stack file's tenants move to the inventory first.
        splitInventory(current, E2E_STACK);
        const now = await pulumiStack(current, E2E_STACK, runDir, bins, fleet.hub.kubeconfigPath);
        await now.stack.setConfig("agentfleet:hub.crdsSource", { value: crdsSource }, true);
        // The hub's kubeconfig leaves the configuration as docs/operations.md says: the runs' KUBECONFIG names it.
        await now.stack.removeConfig("agentfleet:hubKubeconfig");
        await now.stack.setConfig("agentfleet:hub.server", { value: fleet.hub.server }, true);
        const kubeconfigFile = fleet.cluster(bootstrap.name).kubeconfigPath;
        const result = await migrateTenant({
            hub: { stack: E2E_STACK, root: current },
            engine: onboardingEngine({ project: current, pulumi: now, bins }),
            tenant: bootstrap.name,
            kubeconfigFile,
            log,
        });
        assert.ok(result.moved.length >= 5, `moved only ${result.moved.length} resources`);

        const events: EngineEvent[] = [];
        const up = await now.stack.up({ onOutput: () => undefined, onEvent: (e) => events.push(e) });
        const changes = up.summary.resourceChanges ?? {};
        // The cluster Secrets gain `project` and the AppProject drops its per-tenant destinations for
        // permitOnlyProjectScopedClusters: the engine begins the AppProject's update only once every
        // Secret's update ended, so Argo CD never sees the new project with unscoped Secrets.
        const secretsUpdated = events.filter((e) => e.resOutputsEvent?.metadata.op === "update" && /\$kubernetes:core\/v1:Secret::tenants-/.test(e.resOutputsEvent.metadata.urn));
        const projectUpdate = events.find((e) => e.resourcePreEvent?.metadata.op === "update" && e.resourcePreEvent.metadata.type === "kubernetes:argoproj.io/v1alpha1:AppProject");
        const steps = events.flatMap((e) => (e.resOutputsEvent ? [`${e.sequence} ${e.resOutputsEvent.metadata.op} ${e.resOutputsEvent.metadata.urn.split("::").pop()}`] : []));
        assert.strictEqual(secretsUpdated.length, tenants.length, `cluster Secrets updated: ${secretsUpdated.length}; ${events.length} events, the steps: ${steps.join(", ")}`);
        assert.ok(projectUpdate && secretsUpdated.every((e) => e.sequence < projectUpdate.sequence), "the AppProject's update began before a cluster Secret's ended (or was not an update)");
        // The creates: the TenantClusters component that now parents every cluster Secret, and the hub's
        // own CRDs (their ConfigGroup and its CRDs, taking over the chart's in place: e2e/crd-upgrade.e2e.ts).
        assert.ok(!changes.replace && changes.create === 2 + ARGOCD_CRD_FILES.length, `the hub's up after migration created or replaced: ${JSON.stringify(changes)}`);
        assert.deepStrictEqual(await clusterSecretUids(), hubUidsBefore, "a cluster Secret on the hub was recreated");
        assert.deepStrictEqual(await uids(), before, "an argocd-manager object on the tenant was recreated");
        assert.strictEqual((await request(fleet.hub.admin, "GET", hubSecret)).data.config, tokenBefore, "the hub's credential for the tenant changed");
        await now.stack.preview({ refresh: true, expectNoChanges: true });
        // The tenant's admin kubeconfig left the hub stack (its old provider, with the hub's up), and so did the
        // hub's own (its provider updated in place, not replaced: the kubeconfig input is now empty); neither
        // reached the onboarding stack (the provider moved with its resources is updated, its kubeconfig input gone).
        const clusters = [...tenants.map((t) => fleet!.cluster(t.name)), fleet.hub];
        assert.deepStrictEqual(kubeconfigFindings(exportWithSecrets(now.env, bins, "agentfleet", E2E_STACK), clusters), [], "the hub stack's state");
        assert.deepStrictEqual(kubeconfigFindings(exportWithSecrets(now.env, bins, ONBOARDING_PROJECT, result.stack), clusters), [], `${result.stack}'s state`);

        // Running the migration again finds nothing left to do.
        const again = await migrateTenant({ hub: { stack: E2E_STACK, root: current }, engine: onboardingEngine({ project: current, pulumi: now, bins }), tenant: bootstrap.name, kubeconfigFile, log });
        assert.deepStrictEqual(again.moved, []);
        assert.deepStrictEqual(await uids(), before);
    });
});
