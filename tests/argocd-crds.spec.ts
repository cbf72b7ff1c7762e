import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type * as pulumi from "@pulumi/pulumi";
import { forceCrdApply } from "../components/argocd-hub";
import { OWNED_ANNOTATIONS } from "../components/ownership";
import { ARGOCD_CRD_FILES, DEFAULT_ARGOCD_VERSION } from "../stacks/config";
import { type Evaluation, evaluate } from "../evaluator/evaluate";
import { STACKS, type Obj, assertProblem, configProblems, evaluated, releaseOf, resourceOf } from "./helpers";

const CRDS = "kubernetes:yaml/v2:ConfigGroup";
const crdsOf = (ev: Evaluation) => resourceOf(ev, CRDS, "argocd-crds");
const withHub = (settings: Obj) => ({ edit: (c: Record<string, unknown>) => Object.assign(c["agentfleet:hub"] as Obj, settings) });

describe("Argo CD's CRDs on the hub: the controller's version, not the chart's", () => {
    for (const stack of STACKS) {
        it(`stack ${stack}: the chart installs none (crds.install false) but keeps the ones an older layout installed (crds.keep)`, async () => {
            const values = releaseOf(await evaluated(stack)).inputs.values as Obj;
            assert.deepStrictEqual(values.crds, { install: false, keep: true });
        });

        it(`stack ${stack}: the hub applies the three CRDs of its argocdVersion, retained on delete, before the release and the custom resources`, async () => {
            const ev = await evaluated(stack);
            const crds = crdsOf(ev);
            const version = JSON.parse(ev.config["agentfleet:hub"]).argocdVersion ?? DEFAULT_ARGOCD_VERSION;
            const files = crds.inputs.files as string[];
            assert.deepStrictEqual(files.map((f) => path.basename(f)), [...ARGOCD_CRD_FILES]);
            if (files[0].startsWith("https://")) assert.ok(files.every((f) => f.includes(`/argo-cd/${version}/manifests/crds/`)), `not the CRDs of ${version}: ${files.join(", ")}`);
            assert.strictEqual(crds.retainOnDelete, true, "deleting a CRD deletes every Application");
            assert.ok(releaseOf(ev).dependsOn.includes(crds.name), "the release must wait for the CRDs");
            for (const r of ev.resources.filter((x) => x.type.startsWith("kubernetes:argoproj.io/"))) {
                for (const needed of [crds.name, releaseOf(ev).name]) assert.ok(r.dependsOn.includes(needed), `${r.type} ${r.name} does not depend on ${needed}`);
            }
        });
    }

    it("reads them by default from the tag of hub.argocdVersion on GitHub", async () => {
        const crds = crdsOf(await evaluate("dev", withHub({ argocdVersion: "v3.5.1" })));
        assert.deepStrictEqual(crds.inputs.files, ARGOCD_CRD_FILES.map((f) => `https://raw.githubusercontent.com/argoproj/argo-cd/v3.5.1/manifests/crds/${f}`));
    });

    it("reads them from hub.crdsSource: an https URL prefix (a mirror), or a local folder resolved from the project root", async () => {
        const mirror = crdsOf(await evaluate("dev", withHub({ crdsSource: "https://mirror.example.net/argo-cd/v3.6.2/crds/" })));
        assert.deepStrictEqual(mirror.inputs.files, ARGOCD_CRD_FILES.map((f) => `https://mirror.example.net/argo-cd/v3.6.2/crds/${f}`));
        const folder = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-crds-"));
        try {
            for (const f of ARGOCD_CRD_FILES) fs.writeFileSync(path.join(folder, f), "");
            const local = crdsOf(await evaluate("dev", withHub({ crdsSource: path.relative(path.resolve(__dirname, ".."), folder) })));
            assert.deepStrictEqual(local.inputs.files, ARGOCD_CRD_FILES.map((f) => path.join(folder, f)));
        } finally {
            fs.rmSync(folder, { recursive: true, force: true });
        }
    });

    it("refuses, naming hub.crdsSource, a folder lacking one of the files, another URL scheme, and a non-string", async () => {
        const folder = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-crds-"));
        try {
            fs.writeFileSync(path.join(folder, "application-crd.yaml"), "");
            const missing = await configProblems("dev", withHub({ crdsSource: folder }).edit);
            assertProblem(missing, "agentfleet:hub.crdsSource", "lacks applicationset-crd.yaml, appproject-crd.yaml", `manifests/crds/ at tag ${DEFAULT_ARGOCD_VERSION}`);
        } finally {
            fs.rmSync(folder, { recursive: true, force: true });
        }
        assertProblem(await configProblems("dev", withHub({ crdsSource: "http://mirror.example.net/crds" }).edit), "agentfleet:hub.crdsSource", "only https:// URL prefixes and local folders");
        assertProblem(await configProblems("dev", withHub({ crdsSource: 3 }).edit), "agentfleet:hub.crdsSource", "expected an https URL prefix or a local folder");
    });

    it("applies each CRD with patchForce, so it takes over the fields Helm owns on a hub whose chart installed them; nothing else is touched", () => {
        const opts = { retainOnDelete: true };
        const crd = { type: "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", name: "argocd-crds:appprojects.argoproj.io", custom: true, props: { metadata: { name: "appprojects.argoproj.io", annotations: { a: "b" } }, spec: { group: "argoproj.io" } }, opts } as unknown as pulumi.ResourceTransformArgs;
        assert.deepStrictEqual(forceCrdApply(crd), { props: { metadata: { name: "appprojects.argoproj.io", annotations: { a: "b", ...OWNED_ANNOTATIONS } }, spec: { group: "argoproj.io" } }, opts });
        assert.strictEqual(forceCrdApply({ ...crd, type: "kubernetes:yaml/v2:ConfigGroup", props: { files: [] } } as pulumi.ResourceTransformArgs), undefined);
    });
});
