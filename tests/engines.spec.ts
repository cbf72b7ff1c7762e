/**
 * The Node.js versions agentfleet declares (package.json engines.node) are ones every installed
 * package declares it supports: otherwise `npm ci` warns EBADENGINE on a version we claim, and
 * the claim is untrue.
 */
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import * as semver from "semver";

const ROOT = path.resolve(__dirname, "..");
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, "utf8"));

describe("the Node.js requirement", () => {
    const ours: string = readJson(path.join(ROOT, "package.json")).engines?.node;
    // Every package npm ci installs, nested ones included, read from its installed package.json.
    const installed = Object.keys(readJson(path.join(ROOT, "package-lock.json")).packages).filter((p) => p.startsWith("node_modules/"));

    it("is a valid semver range, and the lock file declares the same", () => {
        assert.ok(semver.validRange(ours), `package.json engines.node ${JSON.stringify(ours)} is not a semver range`);
        assert.equal(readJson(path.join(ROOT, "package-lock.json")).packages[""].engines?.node, ours, "package-lock.json is out of date: run npm install");
    });

    it("lies within what every installed package declares in its engines.node", () => {
        assert.ok(installed.length > 100, `only ${installed.length} packages in package-lock.json`);
        const refusing: string[] = [];
        for (const dir of installed) {
            const file = path.join(ROOT, dir, "package.json");
            if (!fs.existsSync(file)) continue; // an optional package for another platform
            const { name, version, engines } = readJson(file);
            const theirs = engines?.node;
            if (typeof theirs !== "string") continue;
            if (!semver.validRange(theirs) || !semver.subset(ours, theirs)) refusing.push(`${name}@${version} (${dir}) declares node ${theirs}`);
        }
        assert.deepEqual(refusing, [], `engines.node ${ours} includes versions these packages do not support:\n  ${refusing.join("\n  ")}`);
    });
});
