/**
 * Upgrading a hub whose CRDs the argo-cd chart installed, on the real engines: a hub stack deployed by
 * the layout before the hub applied Argo CD's CRDs itself (the program at OLD_LAYOUT_COMMIT: chart
 * 10.1.1 with crds.install, i.e. v3.4.4's CRDs owned by Helm) is updated by the current program, which
 * applies v3.6.2's CRDs from hub.crdsSource over them. The CRDs are taken over in place (same UIDs),
 * an Application living on them is kept, and Helm does not delete them when it drops them (keep).
 * The old hub registered its tenants itself: `migrate-registration` moves them into tenant stacks first.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ensureEngines } from "../engines/toolchain";
import { ARGOCD_CRD_FILES } from "../stacks/config";
import { projectCopy } from "../tests/helpers";
import { writeHubStack } from "./engine-bench";
import { LoopbackFleet } from "./harness/fleet";
import { type Credentials, request } from "./harness/kube";
import { stopAll } from "./harness/processes";
import { V3_6_CRD_FIELDS, checkoutAt, crdHasField, splitInventory, withArgoCdCrds } from "./harness/project";
import { type PulumiRun, installProvider, pulumiStack } from "./harness/pulumi";
import { automationEngine } from "../tenants/engine";
import { migrateRegistrations } from "../tenants/migrate-registration";
import { readView, tenantEntries } from "../tenants/stack-file";

/** The last commit whose argo-cd chart installed Argo CD's CRDs (crds.install: true). */
const OLD_LAYOUT_COMMIT = "3d78cbc~1";
const STACK = "upgrade";
/** The CRD a file of argo-cd's manifests/crds defines (application-crd.yaml: applications.argoproj.io). */
const crdName = (file: string) => `${file.replace(/-crd\.yaml$/, "")}s.argoproj.io`;
const APPLICATION = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/kept-across-the-upgrade";

const log = (line: string) => process.stderr.write(`e2e crd-upgrade: ${line}\n`);

describe("real engines: a hub whose CRDs the chart installed moves to the CRDs of its Argo CD", function () {
    let runDir = "";
    let fleet: LoopbackFleet | undefined;
    let hub: Credentials;
    let engines: Awaited<ReturnType<typeof ensureEngines>>;
    let bins: { pulumi: string; kubernetesProvider: string };
    let legacy = "";
    let current: string | undefined;
    const crd = (name: string) => request(hub, "GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
    const uids = async () => Object.fromEntries(await Promise.all([...ARGOCD_CRD_FILES.map(async (f) => [crdName(f), (await crd(crdName(f))).metadata.uid]), ["application", (await request(hub, "GET", APPLICATION)).metadata.uid]]));
    let uidsBefore: Record<string, string>;

    before(async function () {
        engines = await ensureEngines({ log });
        runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-e2e-crd-upgrade-"));
        fleet = new LoopbackFleet({ clusters: ["hub"], dir: path.join(runDir, "fleet"), bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin }, log });
        await fleet.start();
        hub = fleet.hub.admin;
        bins = { pulumi: engines.pulumi.bin, kubernetesProvider: engines["pulumi-kubernetes"].bin };
        legacy = checkoutAt(OLD_LAYOUT_COMMIT, path.join(runDir, "legacy"));
        withArgoCdCrds(legacy, engines);
        // Ten token tenants (a canary and nine main) on loopback servers nobody contacts: the hub stack declares only their cluster Secrets.
        writeHubStack(legacy, STACK, 10, { kubeconfig: fleet.hub.kubeconfig });
    });

    after(async function () {
        await fleet?.stop();
        await stopAll();
        if (!process.env.E2E_KEEP) for (const dir of [runDir, current]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("the old layout: the chart installs its own (v3.4.4) CRDs, Helm owns them, and an Application lives on them", async () => {
        const old: PulumiRun = await pulumiStack(legacy, STACK, runDir, bins);
        installProvider(old.env, bins, legacy);
        const up = await old.stack.up({ onOutput: () => undefined });
        assert.strictEqual(up.summary.result, "succeeded");
        for (const file of ARGOCD_CRD_FILES) {
            const name = crdName(file);
            const live = await crd(name);
            assert.strictEqual(live.metadata.labels?.["app.kubernetes.io/managed-by"], "Helm", `CRD ${name} was not installed by the chart`);
            assert.ok(!crdHasField(live, V3_6_CRD_FIELDS[file]), `the chart's CRD ${name} already has ${V3_6_CRD_FIELDS[file].join(".")}: not chart 10.1.1's`);
        }
        await request(hub, "POST", path.dirname(APPLICATION), {
            apiVersion: "argoproj.io/v1alpha1",
            kind: "Application",
            metadata: { name: path.basename(APPLICATION) },
            spec: { project: "default", source: { repoURL: "https://github.com/example-org/agentfleet.git", path: "charts/voice-agent" }, destination: { server: "https://kubernetes.default.svc", namespace: "voice-agent" } },
        });
        uidsBefore = await uids();
    });

    it("pulumi up of the current program takes the CRDs over in place with v3.6.2's: same UIDs, the Application kept, nothing replaced or deleted", async () => {
        current = projectCopy();
        const crdsSource = withArgoCdCrds(current, engines);
        fs.copyFileSync(path.join(legacy, `Pulumi.${STACK}.yaml`), path.join(current, `Pulumi.${STACK}.yaml`));
        // The documented migration: the stack file's tenants move to the inventory first.
        splitInventory(current, STACK);
        const now = await pulumiStack(current, STACK, runDir, bins, fleet!.hub.kubeconfigPath);
        await now.stack.setConfig("agentfleet:hub.crdsSource", { value: crdsSource }, true);
        // The hub's kubeconfig leaves the configuration (docs/operations.md): the run's KUBECONFIG names it.
        await now.stack.removeConfig("agentfleet:hubKubeconfig");
        await now.stack.setConfig("agentfleet:hub.server", { value: fleet!.hub.server }, true);
        // The old layout's hub registered its tenants: they move into their tenant stacks before this program runs (it refuses until then).
        const started = Date.now();
        const outcomes = await migrateRegistrations({
            hub: { stack: STACK, root: current },
            engine: automationEngine({ hubStack: STACK, root: current, env: now.env, pulumiBin: bins.pulumi }),
            tenants: tenantEntries(readView(current, STACK)).map((t) => String(t.name)),
            hubKubeconfig: fs.readFileSync(fleet!.hub.kubeconfigPath, "utf8"),
            parallel: 4,
            log,
        });
        assert.ok(outcomes.every((o) => o.ok), JSON.stringify(outcomes.filter((o) => !o.ok)));
        log(`migrate-registration of ${outcomes.length} tenants: ${((Date.now() - started) / 1000).toFixed(1)}s`);
        const up = await now.stack.up({ onOutput: () => undefined });
        const changes = up.summary.resourceChanges ?? {};
        assert.ok(!changes.replace && !changes.delete, `the upgrade replaced or deleted: ${JSON.stringify(changes)}`);
        assert.deepStrictEqual(await uids(), uidsBefore, "a CRD or the Application was recreated");
        for (const file of ARGOCD_CRD_FILES) {
            const name = crdName(file);
            assert.ok(crdHasField(await crd(name), V3_6_CRD_FIELDS[file]), `CRD ${name} lacks ${V3_6_CRD_FIELDS[file].join(".")} after the upgrade`);
        }
        // The CRDs outlived the release upgrade that dropped them from the chart (crds.keep), and the state agrees with the hub.
        await now.stack.preview({ refresh: true, expectNoChanges: true });
    });
});
