/**
 * The Node.js versions agentfleet declares (package.json engines.node) are true: the Node running
 * the specs is one of them (CI runs them on each line it names), and every installed package
 * declares it supports them, except the schema models the specs validate against, which are named
 * here with what their declaration means.
 */
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import * as semver from "semver";

const ROOT = path.resolve(__dirname, "..");
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, "utf8"));

/**
 * Declare node >=22 and so make `npm ci` warn EBADENGINE on Node 20, yet work there: the specs
 * (tests/doubles/k8s-schema.ts) load these ESM-only packages with import(), which Node 20 has, and
 * every spec passes on Node 20. Their releases that still declared Node 20 lack the Argo CD 3
 * fields the specs check. Only the specs use them (devDependencies): `npm ci --omit=dev` is silent.
 */
const SPEC_ONLY_NODE_22 = ["kubernetes-models", "@kubernetes-models/apimachinery", "@kubernetes-models/argo-cd", "@kubernetes-models/base", "@kubernetes-models/validate"];
/** The Node line engines.node accepts that those packages do not declare. */
const NODE_20 = "^20.19.0";

describe("the Node.js requirement", () => {
    const ours: string = readJson(path.join(ROOT, "package.json")).engines?.node;
    const lock = readJson(path.join(ROOT, "package-lock.json"));
    // Every package npm ci installs, nested ones included, read from its installed package.json.
    const installed = Object.keys(lock.packages).filter((p) => p.startsWith("node_modules/"));

    it("is a valid semver range, and the lock file declares the same", () => {
        assert.ok(semver.validRange(ours), `package.json engines.node ${JSON.stringify(ours)} is not a semver range`);
        assert.equal(lock.packages[""].engines?.node, ours, "package-lock.json is out of date: run npm install");
    });

    it("includes the Node running the specs (CI runs them on each line engines.node names)", () => {
        assert.ok(semver.satisfies(process.versions.node, ours), `this Node ${process.version} is outside engines.node ${ours}`);
    });

    it("lies within what every installed package declares in its engines.node, but for the spec-only schema models on Node 20", () => {
        assert.ok(installed.length > 100, `only ${installed.length} packages in package-lock.json`);
        const refusing: string[] = [];
        const specOnly: string[] = [];
        for (const dir of installed) {
            const file = path.join(ROOT, dir, "package.json");
            if (!fs.existsSync(file)) continue; // an optional package for another platform
            const { name, version, engines } = readJson(file);
            const theirs = engines?.node;
            if (typeof theirs !== "string") continue;
            if (semver.validRange(theirs) && semver.subset(ours, theirs)) continue;
            const exempt = SPEC_ONLY_NODE_22.includes(name) && lock.packages[dir].dev === true && semver.subset(ours, `${theirs} || ${NODE_20}`);
            if (exempt) specOnly.push(name);
            else refusing.push(`${name}@${version} (${dir}) declares node ${theirs}`);
        }
        assert.deepEqual(refusing, [], `engines.node ${ours} includes versions these packages do not support:\n  ${refusing.join("\n  ")}`);
        // The exemption stays exact: while engines.node names Node 20, each named package still refuses it.
        assert.deepEqual(specOnly.sort(), semver.intersects(ours, NODE_20) ? [...SPEC_ONLY_NODE_22].sort() : [], "SPEC_ONLY_NODE_22 no longer matches the installed packages");
    });

    it("the spec-only schema models are loaded by the specs alone", () => {
        const sources = (dir: string): string[] =>
            fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? (e.name === "node_modules" ? [] : sources(path.join(dir, e.name))) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []));
        const loading = ["index.ts", ...["components", "stacks", "tenants", "commands", "evaluator", "engines", "e2e"].flatMap(sources)].filter((f) => /kubernetes-models/.test(fs.readFileSync(path.join(ROOT, f), "utf8")));
        assert.deepEqual(loading, [], "the program or a command loads a package that declares Node 22 or later");
    });
});
