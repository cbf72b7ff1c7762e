/**
 * `npm run hub -- preview|up --stack <s> [--refresh] [--diff] [--expect-no-changes]`: `pulumi
 * preview` / `pulumi up` of a hub stack with its program run inside this process through the
 * Automation API, instead of by the `pulumi` CLI's Node.js language host.
 *
 * Why: the language host hands the program the whole decrypted stack configuration in one
 * environment variable (PULUMI_CONFIG), and Linux refuses to start a process with a single
 * variable over 128 KiB ("fork/exec node: argument list too long", pulumi/pulumi#8680). Every
 * tenant's entry and its token and CA are in that configuration: about 2 KB a tenant, so a hub of
 * some 50 tenants or more cannot run under `pulumi up`. An inline program receives the
 * configuration over gRPC, with no such limit. Same engine, state, backend and secrets provider.
 */
import * as path from "path";
import { LocalWorkspace, type PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { ROOT } from "../evaluator/evaluate";
import { UserError } from "../evaluator/report";
import { type CommandSpec, UsageError, requirePulumiCli, requireStack, runAsProgram, runCommand } from "./cli";

const ACTIONS = ["preview", "up"] as const;
type Action = (typeof ACTIONS)[number];

export const HUB: CommandSpec = {
    name: "hub -- preview|up",
    summary:
        "pulumi preview or pulumi up of the hub stack, its program run by the Automation API in this process: for hub stacks whose configuration is too large for the pulumi CLI to hand to node (about 50 tenants or more; docs/operations.md, \"Large fleets\"). The engine's output streams to stdout.",
    options: {
        stack: { type: "string", value: "STACK", required: true, description: "hub stack (a Pulumi.<STACK>.yaml in the project root), with the same pulumi login and passphrase as the CLI" },
        refresh: { type: "boolean", description: "refresh the state from the hub first (the drift check)" },
        diff: { type: "boolean", description: "show the detailed diff" },
        "expect-no-changes": { type: "boolean", description: "fail (exit 1) if there are changes" },
    },
    examples: ["npm run hub -- preview --stack prod --refresh --diff", "npm run hub -- up --stack prod"],
};

/** The hub stack `stack` of the project at `root`, its program (root/index.ts) run inline. */
export async function inlineHubStack(stack: string, root: string = ROOT, engine: { envVars?: Record<string, string>; pulumiCommand?: PulumiCommand } = {}): Promise<Stack> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const run = require(path.join(root, "index.ts")) as () => Promise<Record<string, unknown>>;
    // The program reads the tenant inventory relative to its working directory, the project root
    // under the CLI: the same here (the caller may run elsewhere, e.g. a test in another checkout).
    const program = async () => {
        const cwd = process.cwd();
        process.chdir(root);
        try {
            return await run();
        } finally {
            process.chdir(cwd);
        }
    };
    const workspace = await LocalWorkspace.create({ workDir: root, program, ...engine });
    return Stack.select(stack, workspace);
}

export function main(argv: string[]): Promise<number> {
    const action = argv[0]?.startsWith("-") === false ? argv[0] : undefined;
    return runCommand(HUB, action === undefined ? argv : argv.slice(1), async (values) => {
        if (!ACTIONS.includes(action as Action)) throw new UsageError(action === undefined ? "give preview or up first" : `expected preview or up first, not ${JSON.stringify(action)}`);
        requirePulumiCli(`npm run hub -- ${action}`);
        const stack = requireStack(String(values.stack));
        // What Pulumi.yaml's runtime.options.nodeargs does for `pulumi up` (commands/bench.ts measures why).
        Error.stackTraceLimit = 0;
        const hub = await inlineHubStack(stack);
        const options = { refresh: values.refresh === true, diff: values.diff === true, expectNoChanges: values["expect-no-changes"] === true, onOutput: (out: string) => process.stdout.write(out) };
        try {
            if (action === "preview") await hub.preview(options);
            else await hub.up(options);
        } catch (err) {
            // The engine's own account of the failure has streamed above.
            throw new UserError(`pulumi ${action} of ${stack} failed${/expect-no-changes|no changes were expected/i.test(String((err as Error).message)) ? ": there are changes, and --expect-no-changes was given" : " (the engine's output above says why)"}`);
        }
        return 0;
    });
}

if (require.main === module) runAsProgram(main);
