/**
 * `npm run fleet -- [--tenants N] [--dir DIR]`: starts a loopback fleet (a hub and N tenant
 * kube-apiservers on one etcd, each with a controller-manager and kwok), prints where each
 * cluster's kubeconfig is, and keeps it running until Ctrl-C; then stops everything it started.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ensureEngines } from "../engines/toolchain";
import { type CommandSpec, UsageError, runAsProgram, runCommand, userPath } from "../commands/cli";
import { LoopbackFleet } from "./harness/fleet";
import { stopAll } from "./harness/processes";

export const FLEET_COMMAND: CommandSpec = {
    name: "fleet",
    summary: "Starts a loopback fleet of real Kubernetes API servers (127.0.0.1 only) and keeps it running until Ctrl-C.",
    options: {
        tenants: { type: "string", value: "N", default: "2", description: "number of tenant clusters besides the hub" },
        dir: { type: "string", value: "DIR", description: "folder (relative to where you run npm) for certificates, kubeconfigs, etcd data and logs (default: a new temporary folder)" },
    },
    examples: ["npm run fleet -- --tenants 3", "KUBECONFIG=<dir>/hub/admin.kubeconfig kubectl get nodes"],
};

export function main(argv: string[]): Promise<number> {
    return runCommand(FLEET_COMMAND, argv, async (values) => {
        const count = Number(values.tenants);
        if (!Number.isInteger(count) || count < 0 || count > 20) throw new UsageError("--tenants takes a whole number from 0 to 20");
        const dir = values.dir ? userPath(String(values.dir)) : fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-fleet-"));
        const engines = await ensureEngines({ only: ["etcd", "kubernetes", "kwok"] });
        const names = ["hub", ...Array.from({ length: count }, (_, i) => `tenant-${i + 1}`)];
        const fleet = new LoopbackFleet({ clusters: names, dir, bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin } });
        await fleet.start();
        for (const c of fleet.clusters.values()) process.stdout.write(`${c.name.padEnd(10)} ${c.server}  KUBECONFIG=${c.kubeconfigPath}\n`);
        process.stdout.write("Running; Ctrl-C stops every process.\n");
        await new Promise<void>((resolve) => process.once("SIGINT", resolve));
        await fleet.stop();
        await stopAll();
        return 0;
    });
}

if (require.main === module) runAsProgram(main);
