/**
 * The real engines are pinned in one place: the npm packages' versions (Pulumi, its Kubernetes
 * provider) and engines/toolchain.ts (Kubernetes, etcd, kwok). Each wrapper module's go.mod must
 * require exactly those versions, so `npm run e2e` proves the engines `pulumi up` really uses.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { ENGINE_VERSIONS, engines, pinMismatches } from "../engines/toolchain";

describe("real-engine pins", () => {
    it("every wrapper module's go.mod requires the pinned version of its engine", () => {
        assert.deepStrictEqual(pinMismatches(), []);
    });

    it("pins Pulumi and the Kubernetes provider to the npm packages the program runs with", () => {
        const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "package.json"), "utf8"));
        const byName = Object.fromEntries(engines().map((e) => [e.name, e.version]));
        assert.strictEqual(byName.pulumi, `v${pkg.dependencies["@pulumi/pulumi"]}`);
        assert.strictEqual(byName["pulumi-kubernetes"], `v${pkg.dependencies["@pulumi/kubernetes"]}`);
        assert.strictEqual(byName.kubernetes, ENGINE_VERSIONS.kubernetes);
    });

    it("reports a go.mod that disagrees with the pin", () => {
        const etcd = engines().find((e) => e.name === "etcd")!;
        const problems = pinMismatches([{ ...etcd, pins: [["go.etcd.io/etcd/server/v3", "v3.5.0"]] }]);
        assert.strictEqual(problems.length, 1);
        assert.match(problems[0], /engines\/modules\/etcd\/go\.mod requires go\.etcd\.io\/etcd\/server\/v3 v3\.6\.4, but etcd is pinned to v3\.5\.0/);
    });

    it("keeps Kubernetes and etcd in step: etcd is the version Kubernetes' own go.mod pins", () => {
        const goSum = fs.readFileSync(path.join(__dirname, "..", "engines", "modules", "kubernetes", "go.sum"), "utf8");
        assert.ok(goSum.includes(`go.etcd.io/etcd/client/v3 ${ENGINE_VERSIONS.etcd} `), `Kubernetes ${ENGINE_VERSIONS.kubernetes} does not use etcd client ${ENGINE_VERSIONS.etcd}`);
    });
});
