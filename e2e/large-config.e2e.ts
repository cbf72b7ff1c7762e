/**
 * A prod-shaped hub stack whose fleet has 1,000 tenant files, on a loopback hub, run the way
 * pulumi/actions runs it (the Automation API driving the Pulumi CLI, whose Node.js language host
 * passes the whole configuration in one environment variable: pulumi/pulumi#8680 refused one over
 * 128 KiB when the hub stack carried every tenant's token). The hub stack's configuration no longer
 * depends on the fleet: its tenants are files, and each registers from its own stack.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { ensureEngines } from "../engines/toolchain";
import { projectCopy } from "../tests/helpers";
import { writeHubStack } from "./engine-bench";
import { LoopbackFleet } from "./harness/fleet";
import { request } from "./harness/kube";
import { stopAll } from "./harness/processes";
import { withArgoCdCrds } from "./harness/project";
import { type PulumiRun, installProvider, pulumiStack } from "./harness/pulumi";

const TENANTS = 1000;
const STACK = "large";
const log = (line: string) => process.stderr.write(`e2e large-config: ${line}\n`);

describe(`real engines: a prod-shaped hub stack whose fleet has ${TENANTS} tenant files, through the Pulumi CLI`, function () {
    let runDir: string;
    let project: string | undefined;
    let fleet: LoopbackFleet | undefined;
    let crdsSource: string;
    let run: PulumiRun;

    /** Writes the stack (stack file and `n` tenant files) as prod: protected rollout objects (a one-node hub, so not HA). */
    const writeFleet = (n: number) => {
        writeHubStack(project!, STACK, n, { server: fleet!.hub.server }, undefined, crdsSource);
        const file = path.join(project!, `Pulumi.${STACK}.yaml`);
        const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"));
        doc.setIn(["config", "agentfleet:environment"], "prod");
        // The loopback hub has one node: prod's HA Argo CD needs three (the loader refuses it otherwise).
        doc.setIn(["config", "agentfleet:hub", "ha"], false);
        fs.writeFileSync(file, doc.toString({ lineWidth: 0 }));
    };
    /** What the language host would pass the program: every key's decrypted value. */
    const programConfig = async () => Object.fromEntries(Object.entries(await run.stack.getAllConfig()).map(([k, v]) => [k, v.value]));

    before(async function () {
        const engines = await ensureEngines({ log });
        runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-e2e-large-"));
        fleet = new LoopbackFleet({ clusters: ["hub"], dir: path.join(runDir, "fleet"), bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin }, log });
        await fleet.start();
        project = projectCopy();
        crdsSource = withArgoCdCrds(project, engines);
        writeFleet(10);
        const bins = { pulumi: engines.pulumi.bin, kubernetesProvider: engines["pulumi-kubernetes"].bin };
        run = await pulumiStack(project, STACK, runDir, bins, fleet.hub.kubeconfigPath);
        installProvider(run.env, bins, project);
    });

    after(async function () {
        await fleet?.stop();
        await stopAll();
        for (const dir of [project, runDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    let tenPreview: Record<string, number>;

    it("the hub stack's configuration is the same with 10 tenants and with 10,000: only the tenant files differ", async () => {
        const ten = await programConfig();
        tenPreview = (await run.stack.preview()).changeSummary as Record<string, number>;
        writeFleet(10_000);
        assert.strictEqual(fs.readdirSync(path.join(project!, "fleet", STACK)).length, 10_000);
        assert.deepStrictEqual(await programConfig(), ten);
        log(`configuration: ${JSON.stringify(ten).length} bytes with 10 tenants and with 10,000`);
    });

    it(`pulumi preview and pulumi up succeed with ${TENANTS} tenant files, declaring exactly what the hub of 10 declares; a second preview --refresh finds no changes`, async () => {
        writeFleet(TENANTS);
        const preview = await run.stack.preview();
        assert.deepStrictEqual(preview.changeSummary, tenPreview, "the hub's resources depend on the fleet's size");
        const up = await run.stack.up();
        assert.strictEqual(up.summary.result, "succeeded");
        assert.deepStrictEqual(up.summary.resourceChanges, tenPreview);
        // No tenant is registered by the hub: each tenant's own stack does that.
        const secrets = await request(fleet!.hub.admin, "GET", `/api/v1/namespaces/argocd/secrets?labelSelector=${encodeURIComponent("argocd.argoproj.io/secret-type=cluster")}`);
        assert.strictEqual(secrets.items.length, 0);
        const again = await run.stack.preview({ refresh: true, expectNoChanges: true });
        assert.deepStrictEqual(Object.keys(again.changeSummary), ["same"]);
    });
});
