import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { CONFIG_KEYS, PROJECT } from "../stacks/config";
import { STACK_TRACE_LIMIT_0 } from "../commands/bench";
import { ROOT } from "../evaluator/evaluate";

const project = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));

describe("the Pulumi project", () => {
    it("is named agentfleet and runs on Node.js through npm", () => {
        assert.strictEqual(project.name, PROJECT);
        assert.strictEqual(project.runtime.name, "nodejs");
        assert.strictEqual(project.runtime.options.packagemanager, "npm");
    });

    it("declares every key the loader reads, secret exactly where the loader reads a secret", () => {
        const declared = Object.keys(project.config).map((k) => k.replace(`${PROJECT}:`, ""));
        assert.deepStrictEqual(declared.sort(), Object.keys(CONFIG_KEYS).sort());
        for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
            const decl = project.config[`${PROJECT}:${key}`];
            assert.strictEqual(decl.secret === true, spec.secret, `${key}: secret`);
            // A typed key without a default is required by the CLI on every stack.
            assert.strictEqual(decl.default === undefined, spec.required, `${key}: required`);
        }
    });

    it("loads the program at `pulumi up` without type-checking, which npm test does instead", () => {
        // Read the options the way the Node.js language host does (@pulumi/pulumi cmd/run).
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { loadTypeScriptCompilerOptions } = require("@pulumi/pulumi/tsutils") as { loadTypeScriptCompilerOptions(p: string): { noCheck?: boolean } };
        const runtimeTsconfig = path.join(ROOT, project.runtime.options.tsconfig);
        assert.strictEqual(loadTypeScriptCompilerOptions(runtimeTsconfig).noCheck, true);
        assert.strictEqual(loadTypeScriptCompilerOptions(path.join(ROOT, "tsconfig.json")).noCheck, undefined, "npm test's tsc must type-check");
        assert.match(JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts.test, /^tsc --noEmit && /);
    });

    it("runs the program with --stack-trace-limit=0 (node args), and a configuration error still reads whole under it", () => {
        assert.strictEqual(project.runtime.options.nodeargs, STACK_TRACE_LIMIT_0);
        // What the language host prints for an error the program throws: its stack, here without frames.
        const script = `require("./evaluator/evaluate").evaluate("dev", { edit: (c) => { delete c["agentfleet:deploy"]; c["agentfleet:hub"].domian = "x"; } })
            .then(() => process.exit(3), (err) => process.stdout.write(String(err.stack)));`;
        const r = spawnSync(process.execPath, [project.runtime.options.nodeargs, "-r", "ts-node/register/transpile-only", "-e", script], { cwd: ROOT, encoding: "utf8" });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, /^ConfigError: Invalid agentfleet stack configuration \(2 problems\):\n {2}- /);
        assert.match(r.stdout, /agentfleet:deploy: is required/);
        assert.match(r.stdout, /agentfleet:hub\.domian: unknown key.*did you mean 'domain'/);
        assert.doesNotMatch(r.stdout, /\n\s+at /, "no stack frames");
    });

    it("loads index.ts the way the language host registers ts-node, and exports the program function", () => {
        const script = `
            const tsnode = require("ts-node");
            tsnode.register({ transpileOnly: true, project: ${JSON.stringify(project.runtime.options.tsconfig)}, compilerOptions: {} });
            const program = require("./index.ts");
            if (typeof program !== "function") throw new Error("index.ts does not export a function");
            console.log("ok");`;
        const r = spawnSync(process.execPath, ["-e", script], { cwd: ROOT, encoding: "utf8" });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, /ok/);
    });
});
