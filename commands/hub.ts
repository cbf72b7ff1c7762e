/**
 * `npm run hub -- preview|up --stack <s> [--refresh] [--diff] [--expect-no-changes]`: `pulumi
 * preview` / `pulumi up` of a hub stack with its program run inside this process through the
 * Automation API, instead of by the `pulumi` CLI's Node.js language host.
 *
 * A convenience. It was needed while the hub stack's configuration carried every tenant's token:
 * the language host hands the program the whole configuration in one environment variable, which
 * Linux refuses over 128 KiB (pulumi/pulumi#8680). The tenants are files now and register from
 * their own stacks, so the configuration is the same at any fleet size and `pulumi up` runs any
 * hub. Same engine, state, backend and secrets provider as the CLI.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { LocalWorkspace, type PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { ROOT } from "../evaluator/evaluate";
import { HUB_STATE_ENV } from "../stacks/hub-state";
import { UserError } from "../evaluator/report";
import { type CommandSpec, UsageError, requirePulumiCli, requireStack, runAsProgram, runCommand } from "./cli";

const ACTIONS = ["preview", "up"] as const;
type Action = (typeof ACTIONS)[number];

export const HUB: CommandSpec = {
    name: "hub -- preview|up",
    summary:
        "pulumi preview or pulumi up of the hub stack, its program run by the Automation API in this process: a convenience, since pulumi up runs a hub of any size (docs/operations.md, \"Large fleets\"). The engine's output streams to stdout.",
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
        // The program checks its own state holds no tenant's cluster Secret (stacks/hub-state.ts). This
        // process's environment may lack the workspace's backend and passphrase: export it here, through the workspace.
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-hub-state-"));
        const saved = process.env[HUB_STATE_ENV];
        process.chdir(root);
        try {
            fs.writeFileSync(path.join(dir, "state.json"), JSON.stringify(await workspace.exportStack(stack)), { mode: 0o600 });
            process.env[HUB_STATE_ENV] = path.join(dir, "state.json");
            return await run();
        } finally {
            process.chdir(cwd);
            if (saved === undefined) delete process.env[HUB_STATE_ENV];
            else process.env[HUB_STATE_ENV] = saved;
            fs.rmSync(dir, { recursive: true, force: true });
        }
    };
    const workspace: LocalWorkspace = await LocalWorkspace.create({ workDir: root, program, ...engine });
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
