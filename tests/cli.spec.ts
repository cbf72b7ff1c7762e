/**
 * What every command does with its command line (commands/cli.ts): unknown flags refused with a
 * "did you mean" before any work, flags npm took for itself (the `--` forgotten) named, numeric
 * flags with a plain message, paths from the folder the user ran npm in (INIT_CWD), and one line,
 * before any work, when a command needs the Pulumi CLI and there is none on PATH.
 */
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parseFlags } from "../commands/cli";
import { BENCH } from "../commands/bench";
import { APPLICATIONSET_CEILING } from "../stacks/config";
import { projectCopy, runTool } from "./helpers";

const STATUS_FLAGS = { stack: { type: "string" }, interval: { type: "string", default: "5", number: {} }, json: { type: "boolean" } } as const;

describe("command-line flags (commands/cli.ts)", () => {
    it("refuses an unknown flag, suggesting the likely one", () => {
        assert.throws(() => parseFlags(STATUS_FLAGS, ["--stak", "prod"], "npm run status -- --stack prod", {}), { name: "UsageError", message: "unknown option --stak (did you mean '--stack'?)" });
    });

    it("takes a negative number as a numeric flag's value and says plainly what the flag must be", () => {
        for (const args of [["--interval", "-5"], ["--interval=-5"], ["--interval", "-.5"]]) {
            assert.throws(() => parseFlags(STATUS_FLAGS, args, "", {}), (err: Error) => /^--interval must be a number greater than 0, not "-\.?5"$/.test(err.message) && !/ambiguous/.test(err.message));
        }
        assert.strictEqual(parseFlags(STATUS_FLAGS, ["--interval", "2.5"], "", {}).interval, 2.5);
        assert.strictEqual(parseFlags(STATUS_FLAGS, [], "", {}).interval, 5);
        assert.throws(() => parseFlags({ n: { type: "string", number: { integer: true, min: 2 } } }, ["--n", "1"], "", {}), { message: '--n must be a whole number of at least 2, not "1"' });
    });

    it("under npm run, names the flags npm took for itself when the -- was forgotten", () => {
        // `npm run status --stack prod --json`: npm keeps --stack and --json (npm_config_*) and passes "prod" on.
        const env = { npm_lifecycle_event: "status", npm_config_stack: "true", npm_config_json: "true" };
        assert.throws(() => parseFlags(STATUS_FLAGS, ["prod"], "npm run status -- --stack prod", env), {
            message: "npm took --stack, --json for itself: put -- between the command and its flags, as in: npm run status -- --stack prod",
        });
        // The same variables outside npm run, or with the flags given after --, are not npm's doing.
        assert.strictEqual(parseFlags(STATUS_FLAGS, ["--stack", "prod", "--json"], "", env).stack, "prod");
        assert.strictEqual(parseFlags(STATUS_FLAGS, ["--stack", "prod"], "", { npm_config_json: "true" }).json, undefined);
    });

    it("bench: internal options are not flags, and are not in its help", () => {
        for (const internal of ["child", "size", "floor-root"]) assert.ok(!(internal in BENCH.options), internal);
    });
});

describe("the commands, run as npm runs them", function () {
    this.timeout(300000);
    let root: string;
    before(() => (root = projectCopy()));
    after(() => fs.rmSync(root, { recursive: true, force: true }));

    it("bench refuses --size (meant --sizes) at once instead of starting the default run", () => {
        const started = Date.now();
        const r = runTool(root, "bench", ["--size", "10"], { timeoutMs: 120000 });
        assert.strictEqual(r.status, 2, r.stderr);
        assert.match(r.stderr, /^bench: unknown option --size \(did you mean '--sizes'\?\)/);
        assert.doesNotMatch(r.stderr, /\[\d+\.\ds\]/, "bench started measuring");
        assert.ok(Date.now() - started < 60000);
        const help = runTool(root, "bench", ["--help"]);
        assert.doesNotMatch(help.stdout, /internal|--child|--size |--floor-root/);
    });

    it(`bench measures at most the ceiling (default sizes 1000 and ${APPLICATIONSET_CEILING}), and refuses a larger size at once: the program refuses such a stack`, () => {
        const r = runTool(root, "bench", ["--sizes", `1000,${APPLICATIONSET_CEILING + 1}`, "--real-engines", "10"], { timeoutMs: 120000 });
        assert.strictEqual(r.status, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`^bench: --sizes "1000,${APPLICATIONSET_CEILING + 1}": ${APPLICATIONSET_CEILING + 1} is more than the ${APPLICATIONSET_CEILING} active tenants one hub stack can roll out .*; measure at most ${APPLICATIONSET_CEILING}\n`));
        assert.doesNotMatch(r.stderr, /\[\d+\.\ds\]/, "bench started measuring");
        assert.strictEqual(BENCH.options.sizes.default, `1000,${APPLICATIONSET_CEILING}`);
    });

    it("status --interval -5 says what --interval must be, not that the argument is ambiguous", () => {
        const r = runTool(root, "status", ["--stack", "dev", "--kubeconfig", "hub.yaml", "--interval", "-5"]);
        assert.strictEqual(r.status, 2, r.stderr);
        assert.match(r.stderr, /^status: --interval must be a number greater than 0, not "-5"\n/);
        assert.doesNotMatch(r.stderr, /ambiguous/);
    });

    it("npm run plan --stack prod (no --) gets a hint to put -- before the flags", () => {
        const r = spawnSync("npm", ["run", "--silent", "plan", "--stack", "prod"], { cwd: root, encoding: "utf8", timeout: 120000 });
        assert.strictEqual(r.status, 2, r.stderr);
        assert.match(r.stderr, /^plan: npm took --stack for itself: put -- between the command and its flags, as in: npm run plan -- --stack dev\n/);
    });

    it("resolves --out and --kubeconfig against the folder npm was run in (INIT_CWD), and prints absolute paths", () => {
        const sub = path.join(root, "charts", "voice-agent");
        const r = runTool(root, "render", ["--stack", "dev", "--out", "out-dev"], { from: sub });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.ok(fs.existsSync(path.join(sub, "out-dev", "resources.json")), "not written in the user's folder");
        assert.ok(!fs.existsSync(path.join(root, "out-dev")), "written in the project root");
        assert.ok(r.stdout.includes(` to ${path.join(sub, "out-dev")}`), r.stdout);

        const status = runTool(root, "status", ["--stack", "dev", "--kubeconfig", "./hub.yaml"], { from: sub });
        assert.strictEqual(status.status, 1, status.stderr);
        assert.ok(status.stderr.includes(`cannot read the kubeconfig ${path.join(sub, "hub.yaml")} (ENOENT)`), status.stderr);
    });

    it("without the Pulumi CLI on PATH, hub says so in one line, before any work", () => {
        const noPulumi = { PATH: path.dirname(process.execPath), KUBECONFIG: undefined };
        for (const [tool, args, prefix] of [["hub", ["preview", "--stack", "dev"], "hub -- preview\\|up: npm run hub -- preview"]] as const) {
            const r = runTool(root, tool, [...args], { env: noPulumi });
            assert.strictEqual(r.status, 1, `${tool}: ${r.stderr}`);
            const lines = r.stderr.trimEnd().split("\n");
            assert.strictEqual(lines.length, 1, `${tool}: more than one line:\n${r.stderr}`);
            assert.match(lines[0], new RegExp(`^${prefix}.* needs the Pulumi CLI, and there is no pulumi on PATH: install it \\(https://www\\.pulumi\\.com/docs/install/\\), or build it with \`npm run engines\`, which puts it in /.*/engines/pulumi-v\\d.*/bin .*export PATH="/`));
            assert.doesNotMatch(r.stderr, /unexpected|ENOENT|run the same command again/);
        }
    });

    it("status without --kubeconfig or KUBECONFIG needs no Pulumi CLI: one line naming both (the hub's kubeconfig is never in the stack file), exit 2", () => {
        const r = runTool(root, "status", ["--stack", "dev"], { env: { PATH: path.dirname(process.execPath), KUBECONFIG: undefined } });
        assert.strictEqual(r.status, 2, r.stderr);
        assert.strictEqual(r.stderr, `status: no hub kubeconfig: pass --kubeconfig FILE or set KUBECONFIG to the kubeconfig of dev's hub (it is never in the stack file; docs/operations.md, "The hub's kubeconfig")\n`);
    });
});
