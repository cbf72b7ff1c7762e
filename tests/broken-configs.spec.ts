/**
 * A corpus of broken stack files (tests/fixtures/broken), each broken in one realistic way and
 * carrying its expected problem in a leading `# expect: <key path> | <fragment> | ...` comment.
 * Each goes through the evaluator the commands use: it must be refused with a ConfigError that
 * names the key path and says what is wrong, before any resource is declared. A few go through
 * the real `npm run render` / `npm run plan` commands too.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { type BrokenFixture, assertProblem, brokenFixtures, configProblems, projectCopy, runTool, secretMaterial } from "./helpers";

const FIXTURES = brokenFixtures();
const fixture = (name: string): BrokenFixture => {
    const found = FIXTURES.find((f) => f.name === name);
    assert.ok(found, `no fixture ${name}`);
    return found;
};

describe("broken stack configurations", () => {
    it("the corpus has at least 40 fixtures, each with a description and at least one expectation", () => {
        assert.ok(FIXTURES.length >= 40, `only ${FIXTURES.length} fixtures`);
        for (const f of FIXTURES) {
            assert.ok(f.description, `${f.name}: no '# Broken stack: ...' line`);
            assert.ok(f.expectations.length > 0, `${f.name}: no '# expect: ...' line`);
            for (const e of f.expectations) assert.ok(e.fragments.length > 0, `${f.name}: expectation for ${e.path} checks no message fragment`);
        }
    });

    for (const f of FIXTURES) {
        it(`${f.name}: ${f.description}`, async () => {
            // configProblems asserts a ConfigError and that nothing was registered before it.
            const problems = await configProblems(f.name, undefined, { stackFile: f.file });
            for (const e of f.expectations) assertProblem(problems, e.path, ...e.fragments);
            const inventory = YAML.parseDocument(fs.readFileSync(f.file, "utf8")).toJS()?.config?.["agentfleet:fleet"];
            for (const p of problems) {
                // A stack file key, the stack file itself, or the fixture's tenant inventory (its folder or one of its files).
                const inInventory = typeof inventory === "string" && (p.startsWith(`${inventory}/`) || p.startsWith(`${inventory}: `));
                assert.ok(p.startsWith("agentfleet:") || p.startsWith(`${f.name}.yaml: `) || inInventory, `${f.name}: a problem that names no key path or tenant file: ${p}`);
                assert.ok(!/:\s*$/.test(p), `${f.name}: a problem that ends in a dangling colon: ${p}`);
            }
        });
    }
});

describe("broken stack configurations through the commands", function () {
    this.timeout(180000);
    let root: string;

    before(() => {
        root = projectCopy();
    });
    after(() => fs.rmSync(root, { recursive: true, force: true }));

    /** Installs a fixture as `Pulumi.<stack>.yaml` in the project copy. */
    const install = (name: string, stack: string): BrokenFixture => {
        const f = fixture(name);
        fs.copyFileSync(f.file, path.join(root, `Pulumi.${stack}.yaml`));
        return f;
    };

    const expectInStderr = (stderr: string, f: BrokenFixture, fileName: string) => {
        for (const e of f.expectations) {
            const keyPath = e.path === `${f.name}.yaml` ? fileName : e.path;
            const line = stderr.split("\n").find((l) => (l.includes(`${keyPath}: `) || l.includes(`${keyPath} (tenant `)) && e.fragments.every((fr) => l.includes(fr)));
            assert.ok(line, `stderr names no problem at ${keyPath} with ${e.fragments.join(", ")}:\n${stderr}`);
        }
    };

    for (const [name, stack] of [
        ["tenant-name-key-differs", "broken-dup"],
        ["plaintext-slack-token", "broken-plain"],
        ["invalid-yaml", "broken-yaml"],
    ] as const) {
        it(`npm run render refuses ${name}: exit 2, the problems on stderr, no output directory`, () => {
            const f = install(name, stack);
            const out = path.join(root, `out-${stack}`);
            const r = runTool(root, "render", ["--stack", stack, "--out", out]);
            assert.strictEqual(r.status, 2, `exit ${r.status}\n${r.stderr}`);
            assert.strictEqual(r.stdout, "");
            assert.match(r.stderr, /^Invalid agentfleet stack configuration \(\d+ problems?\):/);
            expectInStderr(r.stderr, f, `Pulumi.${stack}.yaml`);
            assert.ok(!fs.existsSync(out), "render created its output directory for an invalid configuration");
            const { ciphertexts, plaintexts } = secretMaterial(f.file);
            for (const secret of [...ciphertexts, ...plaintexts, "__SECRET__"]) assert.ok(!r.stderr.includes(secret), `stderr echoes secret material ${secret}`);
        });
    }

    it("npm run plan refuses a loopback tenant server the same way", () => {
        const f = install("tenant-server-loopback-ipv4", "broken-plan");
        const r = runTool(root, "plan", ["--stack", "broken-plan"]);
        assert.strictEqual(r.status, 2, `exit ${r.status}\n${r.stderr}`);
        assert.strictEqual(r.stdout, "");
        expectInStderr(r.stderr, f, "Pulumi.broken-plan.yaml");
    });
});
