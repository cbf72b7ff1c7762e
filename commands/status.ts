/**
 * `npm run status -- --stack <name> [--json] [--watch]`: where the stack's rollout stands, read
 * live from the hub: the fleet's ApplicationSet and the Applications it owns (commands/rollout-status
 * turns them into steps, tenants and what the active step waits for). `--watch` polls until every
 * Application is Synced and Healthy at the target revision (exit 0) or the rollout fails.
 *
 * The hub kubeconfig is --kubeconfig's file, else $KUBECONFIG's, and must point at the stack's
 * hub.server; it is kept in memory only.
 */
import { type CommandSpec, requireStack, runAsProgram, runCommand } from "./cli";
import { UserError, progress } from "../evaluator/report";
import { type HubConnection, fleetApplications, hubConnection, kubeconfigFile, stackHub } from "./hub-client";
import { type RolloutStatus, formatRolloutStatus, rolloutStatus } from "./rollout-status";

/** Exit codes beyond the usual 0 (complete / printed), 1 (error) and 2 (bad flags or config). */
export const EXIT_ROLLOUT_FAILED = 3;
export const EXIT_WATCH_TIMEOUT = 4;

export const STATUS: CommandSpec = {
    name: "status",
    summary: [
        "Shows where the stack's rollout stands, read live from the hub: the target revision, each RollingSync step with its tenants",
        "(sync, health, revision, health message), the active step, what it waits for and for how long.",
        `Exit codes: 0 printed (with --watch: rollout complete), 1 error (hub unreachable, no ApplicationSet), 2 bad flags or config,`,
        `${EXIT_ROLLOUT_FAILED} rollout failed (--watch: an Application Degraded or its sync failed), ${EXIT_WATCH_TIMEOUT} --watch timed out.`,
        "The hub kubeconfig: --kubeconfig, else $KUBECONFIG; its context must point at the stack's agentfleet:hub.server.",
    ].join("\n"),
    options: {
        stack: { type: "string", value: "STACK", required: true, description: "stack whose rollout to show (a Pulumi.<STACK>.yaml in the project root)" },
        json: { type: "boolean", description: "print the status as JSON (with --watch: one JSON object per line, on each change)" },
        watch: { type: "boolean", description: "refresh until the rollout completes or fails" },
        interval: { type: "string", value: "SECONDS", default: "5", number: {}, description: "seconds between refreshes with --watch" },
        timeout: { type: "string", value: "SECONDS", default: "3600", number: {}, description: "give up watching after this many seconds" },
        kubeconfig: { type: "string", value: "FILE", description: "the hub's kubeconfig (default: $KUBECONFIG)" },
    },
    examples: ["npm run status -- --stack prod", "npm run status -- --stack prod --watch --timeout 1800", "npm run status -- --stack staging --json --kubeconfig hub.yaml"],
};

async function readStatus(hub: HubConnection, namespace: string, stack: string): Promise<RolloutStatus> {
    const { appSet, applications } = await fleetApplications(hub, namespace, stack);
    return rolloutStatus(appSet, applications);
}

const print = (status: RolloutStatus, json: boolean, watching: boolean) =>
    process.stdout.write(json ? JSON.stringify(status, null, watching ? undefined : 2) + "\n" : formatRolloutStatus(status));

/** What changes between two polls, ignoring the clock. */
const fingerprint = (s: RolloutStatus) => JSON.stringify({ ...s, observedAt: undefined, activeForSeconds: undefined });

async function watch(hub: HubConnection, namespace: string, stack: string, first: RolloutStatus, json: boolean, intervalS: number, timeoutS: number): Promise<number> {
    const began = Date.now();
    const report = progress("status", 10_000);
    let status = first;
    let shown = "";
    for (;;) {
        if (fingerprint(status) !== shown) {
            if (shown !== "" && !json) process.stdout.write(`\n--- ${new Date().toISOString()}\n`);
            print(status, json, true);
            shown = fingerprint(status);
        }
        if (status.state === "complete") {
            report.done(`rollout complete at ${status.targetRevision}`);
            return 0;
        }
        if (status.state === "failed") {
            process.stderr.write(`status: rollout FAILED: ${status.failures.join("; ")}\n`);
            return EXIT_ROLLOUT_FAILED;
        }
        if (Date.now() - began >= timeoutS * 1000) {
            process.stderr.write(`status: gave up after ${timeoutS}s (--timeout): ${status.activeStep !== null ? `step ${status.activeStep} still waiting for ${status.waitingFor.join("; ")}` : "the rollout has not completed"}\n`);
            return EXIT_WATCH_TIMEOUT;
        }
        report.step(status.activeStep !== null ? `step ${status.activeStep} of ${status.steps.length} active, waiting for ${status.waitingFor.length} tenant(s)` : "waiting");
        await new Promise((r) => setTimeout(r, Math.min(intervalS * 1000, Math.max(0, timeoutS * 1000 - (Date.now() - began)))));
        try {
            status = await readStatus(hub, namespace, stack);
        } catch (err) {
            // A restarting API server should not end a long watch; the timeout still bounds it.
            if (!(err instanceof UserError)) throw err;
            process.stderr.write(`status: ${err.message}; retrying\n`);
        }
    }
}

export function main(argv: string[]): Promise<number> {
    return runCommand(STATUS, argv, async (values) => {
        const kubeconfig = kubeconfigFile(values.kubeconfig as string | undefined);
        const stack = requireStack(String(values.stack));
        const intervalS = values.interval as number;
        const timeoutS = values.timeout as number;
        const namespace = stackHub(stack).namespace;
        const hub = await hubConnection(stack, kubeconfig);
        const status = await readStatus(hub, namespace, stack);
        if (!values.watch) {
            print(status, values.json === true, false);
            return 0;
        }
        return watch(hub, namespace, stack, status, values.json === true, intervalS, timeoutS);
    });
}

if (require.main === module) runAsProgram(main);
