/**
 * `npm run promote -- --to <stack> [--revision R] [--check] [--json]`: moves a revision to the next
 * stage only after it soaked on the previous one. The target stack's `agentfleet:promotion`
 * ({from, soak}) names the stage; the command reads that stage's live Argo CD (its hub kubeconfig,
 * as `npm run status` finds it) and checks that every active tenant there runs R Synced and Healthy
 * since at least the soak, by the times Argo CD recorded (commands/promotion-gate.ts). Then it sets
 * the target's `deploy.targetRevision` to R in Pulumi.<to>.yaml, a reviewable change, and nothing
 * else. `--check` only checks the revision the target already names (deploy.yml's gate).
 */
import * as path from "path";
import { PROJECT } from "../stacks/config";
import { type CommandSpec, requireStack, runAsProgram, runCommand } from "./cli";
import { UserError } from "../evaluator/report";
import { ROOT } from "../evaluator/evaluate";
import { fleetApplications, hubConnection, kubeconfigFile, stackHub } from "./hub-client";
import { ownedApplications } from "./rollout-status";
import { formatSoakVerdict, soakVerdict } from "./promotion-gate";
import { CommandError, checkStack, readView, setTargetRevision, writeView } from "../tenants/stack-file";
import { withStackLock } from "../tenants/stack-lock";

/** Exit codes beyond 0 (promoted, or --check passed), 1 (error) and 2 (bad flags or config). */
export const EXIT_NOT_SOAKED = 3;

export const PROMOTE: CommandSpec = {
    name: "promote",
    summary: [
        "Promotes a revision to a stack only after it soaked on the stack its agentfleet:promotion names (from, soak):",
        "every active tenant there must run it Synced and Healthy since at least the soak, by the times Argo CD recorded.",
        "Then it sets agentfleet:deploy.targetRevision in Pulumi.<to>.yaml (review and commit it); --check only checks.",
        `Exit codes: 0 promoted (or --check passed, or already there), 1 error (hub unreachable, no ApplicationSet), 2 bad flags or config,`,
        `${EXIT_NOT_SOAKED} refused: a tenant is not at the revision, not Synced and Healthy, or has not soaked long enough (each named, with the time left).`,
        "The from stack's hub kubeconfig: --kubeconfig, else $KUBECONFIG; its context must point at that stack's agentfleet:hub.server.",
    ].join("\n"),
    options: {
        to: { type: "string", value: "STACK", required: true, description: "the stack to promote to (its Pulumi.<STACK>.yaml has agentfleet:promotion)" },
        revision: { type: "string", value: "REV", description: "the revision to promote (default: the from stack's deploy.targetRevision; with --check: the to stack's)" },
        check: { type: "boolean", description: "only check that the revision has soaked; change no file (deploy.yml's gate)" },
        json: { type: "boolean", description: "print the verdict as JSON" },
        kubeconfig: { type: "string", value: "FILE", description: "the from stack's hub kubeconfig (default: $KUBECONFIG)" },
    },
    examples: ["npm run promote -- --to prod", "npm run promote -- --to prod --revision v1.4.2 --json", "npm run promote -- --to prod --check"],
};

const stackFile = (stack: string) => path.join(ROOT, `Pulumi.${stack}.yaml`);

/** The stack's validated configuration, as `pulumi up` would load it (secrets by shape only). */
function loadStack(stack: string) {
    try {
        return checkStack(stack, readView(ROOT, stack), ROOT);
    } catch (err) {
        if (err instanceof CommandError) throw new UserError(`Pulumi.${stack}.yaml ${err.message}`, 2);
        throw err;
    }
}

export function main(argv: string[]): Promise<number> {
    return runCommand(PROMOTE, argv, async (values) => {
        const kubeconfig = kubeconfigFile(values.kubeconfig as string | undefined);
        const to = requireStack(String(values.to));
        const target = loadStack(to);
        const rule = target.promotion;
        if (!rule) {
            throw new UserError(`Pulumi.${to}.yaml has no ${PROJECT}:promotion, so nothing says where a revision must soak first; add e.g.\n  ${PROJECT}:promotion:\n    from: staging\n    soak: 2h`, 2);
        }
        const source = loadStack(rule.from);
        const revision = String(values.revision ?? (values.check ? target.deploy.targetRevision : source.deploy.targetRevision));
        const active = source.tenants.filter((t) => !t.decommissioned);
        const paused = active.filter((t) => t.paused).map((t) => t.name);
        if (paused.length > 0) process.stderr.write(`promote: ${rule.from}'s paused tenants are not part of the gate (Argo CD does not reconcile them): ${paused.join(", ")}\n`);
        const tenants = active.filter((t) => !t.paused).map((t) => t.name);
        if (tenants.length === 0) throw new UserError(`${rule.from} has no active tenant to soak ${revision} on; a promotion from it proves nothing`, EXIT_NOT_SOAKED);

        const namespace = stackHub(rule.from).namespace;
        const hub = await hubConnection(rule.from, kubeconfig);
        const { appSet, applications } = await fleetApplications(hub, namespace, rule.from);
        const verdict = soakVerdict({ from: rule.from, to, revision, soak: rule.soak, soakSeconds: rule.soakSeconds, tenants, applications: ownedApplications(appSet, applications), now: new Date() });

        const promotion = verdict.promotable && !values.check && target.deploy.targetRevision !== revision ? { file: `Pulumi.${to}.yaml`, key: `${PROJECT}:deploy.targetRevision`, from: target.deploy.targetRevision, to: revision } : undefined;
        if (promotion) {
            await withStackLock(stackFile(to), () => {
                const text = readView(ROOT, to);
                let edited: string;
                try {
                    edited = setTargetRevision(text, revision);
                } catch (err) {
                    if (err instanceof CommandError) throw new UserError(`Pulumi.${to}.yaml ${err.message}`, 2);
                    throw err;
                }
                checkStack(to, edited, ROOT);
                writeView(ROOT, to, edited);
            });
        }
        if (values.json) process.stdout.write(JSON.stringify({ ...verdict, ...(promotion ? { promoted: promotion } : {}) }, null, 2) + "\n");
        else {
            process.stdout.write(formatSoakVerdict(verdict));
            if (promotion) process.stdout.write(`${promotion.file}: ${promotion.key} ${promotion.from} -> ${promotion.to}. Review and commit it (git diff ${promotion.file}); npm run diff -- --stack ${to} shows what it changes.\n`);
            else if (verdict.promotable && !values.check) process.stdout.write(`${to} already runs ${revision}: nothing to change.\n`);
        }
        return verdict.promotable ? 0 : EXIT_NOT_SOAKED;
    });
}

if (require.main === module) runAsProgram(main);
