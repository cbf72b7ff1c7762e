/**
 * A hub stack whose configuration is over 128 KiB (80 tenants with credentials of real size), on
 * a loopback hub: the pulumi CLI's Node.js language host cannot start the program (it passes the
 * whole configuration in one environment variable; pulumi/pulumi#8680), and `npm run hub` runs
 * the same stack through the Automation API (commands/hub.ts).
 */
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ensureEngines } from "../engines/toolchain";
import { projectCopy } from "../tests/helpers";
import { writeHubStack } from "./engine-bench";
import { LoopbackFleet } from "./harness/fleet";
import { request } from "./harness/kube";
import { stopAll } from "./harness/processes";
import { withArgoCdCrds } from "./harness/project";
import { type PulumiRun, installProvider, pulumiStack } from "./harness/pulumi";

const TENANTS = 80;
const STACK = "large";
const log = (line: string) => process.stderr.write(`e2e large-config: ${line}\n`);

describe(`real engines: a hub stack of ${TENANTS} tenants, its configuration over 128 KiB`, function () {
    let runDir: string;
    let project: string | undefined;
    let fleet: LoopbackFleet | undefined;
    let run: PulumiRun;

    before(async function () {
        const engines = await ensureEngines({ log });
        runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-e2e-large-"));
        fleet = new LoopbackFleet({ clusters: ["hub"], dir: path.join(runDir, "fleet"), bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin }, log });
        await fleet.start();
        project = projectCopy();
        const crdsSource = withArgoCdCrds(project, engines);
        writeHubStack(project, STACK, TENANTS, { server: fleet.hub.server }, undefined, crdsSource);
        const bins = { pulumi: engines.pulumi.bin, kubernetesProvider: engines["pulumi-kubernetes"].bin };
        run = await pulumiStack(project, STACK, runDir, bins, fleet.hub.kubeconfigPath);
        installProvider(run.env, bins, project);
    });

    after(async function () {
        await fleet?.stop();
        await stopAll();
        for (const dir of [project, runDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    const hubCommand = (...args: string[]) =>
        spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "commands/hub.ts", ...args, "--stack", STACK], { cwd: project, env: { ...process.env, ...run.env }, encoding: "utf8", timeout: 15 * 60_000 });

    it("pulumi preview cannot even start the program: the language host's fork/exec of node fails with argument list too long", async () => {
        // What the language host puts in PULUMI_CONFIG: every key's decrypted value, as JSON.
        const config = Object.fromEntries(Object.entries(await run.stack.getAllConfig()).map(([k, v]) => [k, v.value]));
        assert.ok(JSON.stringify(config).length > 128 * 1024, `the configuration is only ${JSON.stringify(config).length} bytes`);
        await assert.rejects(run.stack.preview(), /argument list too long/);
    });

    it("npm run hub -- preview plans every tenant's cluster Secret; up creates them on the hub; preview --refresh --expect-no-changes then passes", async () => {
        const preview = hubCommand("preview");
        assert.strictEqual(preview.status, 0, preview.stderr + preview.stdout.slice(-2000));
        for (const i of [0, TENANTS - 1]) assert.match(preview.stdout, new RegExp(`tenants-bench-${String(i).padStart(5, "0")}\\b`));

        const up = hubCommand("up");
        assert.strictEqual(up.status, 0, up.stderr + up.stdout.slice(-2000));
        const secrets = await request(fleet!.hub.admin, "GET", `/api/v1/namespaces/argocd/secrets?labelSelector=${encodeURIComponent(`agentfleet.io/fleet=${STACK}`)}`);
        assert.strictEqual(secrets.items.length, TENANTS);

        const again = hubCommand("preview", "--refresh", "--expect-no-changes");
        assert.strictEqual(again.status, 0, again.stderr + again.stdout.slice(-2000));
    });
});
