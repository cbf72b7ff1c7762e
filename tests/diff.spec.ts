import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { EXIT_CHANGES, EXIT_NO_CHANGES, diffStack } from "../tools/diff";
import { SECRET_PREFIX } from "../tools/evaluate";
import { git, projectCopy, runTool } from "./helpers";

/** Edits the dev stack file in `dir` as a YAML document (comments kept) and commits it. */
function commitStackEdit(dir: string, edit: (config: YAML.YAMLMap) => void): void {
    const file = path.join(dir, "Pulumi.dev.yaml");
    const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"));
    edit(doc.get("config") as YAML.YAMLMap);
    fs.writeFileSync(file, doc.toString());
    git(dir, "commit", "-qam", "change dev");
}

describe("npm run diff (offline drift preview)", function () {
    this.timeout(120000);
    let repo: string;

    before(() => {
        repo = projectCopy({ git: true });
        commitStackEdit(repo, (config) => {
            const tenants = config.get("agentfleet:tenants") as YAML.YAMLSeq;
            // dev-globex moves ring; dev-acme leaves; dev-initech arrives (token mode).
            (tenants.items[1] as YAML.YAMLMap).set("ring", "canary");
            tenants.items.splice(0, 1);
            tenants.add(doc({ name: "dev-initech", server: "https://dev-initech.k3s.agentfleet.example.net:6443", ring: "canary", region: "us-east", credentials: "token" }));
            const creds = config.get("agentfleet:tenantCredentials") as YAML.YAMLMap;
            creds.delete("dev-acme");
            creds.set("dev-initech", doc({ bearerToken: { secure: "v1:AAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBBBBBBBBBB" }, caData: { secure: "v1:AAAAAAAAAAAAAAAA:CCCCCCCCCCCCCCCCCCCCCCCC" } }));
            const steps = (config.get("agentfleet:rollout") as YAML.YAMLMap).get("steps") as YAML.YAMLSeq;
            steps.items.splice(1, 1);
        });
    });

    after(() => fs.rmSync(repo, { recursive: true, force: true }));

    const doc = (value: unknown) => new YAML.Document(value).contents as YAML.Node;

    it("reports no change, and exit 0, for identical inputs", async () => {
        const { markdown, changes } = await diffStack("dev", "HEAD", repo);
        assert.strictEqual(changes, 0);
        assert.match(markdown, /No changes/);
    });

    it("shows added, changed and removed objects of both layers, and the moved tenant's new step", async () => {
        const { markdown, changes } = await diffStack("dev", "HEAD~1", repo);
        assert.ok(changes > 0);
        // Pulumi layer
        assert.match(markdown, /\+ added: `kubernetes:core\/v1:Secret::dev-initech-cluster-secret`/);
        assert.match(markdown, /- removed: `kubernetes:core\/v1:Secret::dev-acme-cluster-secret`/);
        assert.match(markdown, /- removed: `pulumi:providers:kubernetes::dev-acme-kubernetes`/);
        assert.match(markdown, /~ changed: `kubernetes:core\/v1:Secret::dev-globex-cluster-secret`\n- `inputs.metadata.labels.ring`: "main" → "canary"/);
        // Rollout layer: dev-globex now syncs in step 1; the removed tenant had step 1 and now none.
        assert.match(markdown, /\| dev-globex +\| 2 +\| 1 +\|/);
        assert.match(markdown, /\| dev-acme +\| 1 +\| — +\|/);
        // Tenant layer, grouped by tenant
        assert.match(markdown, /#### dev-initech \(rollout step 1\)\n(- \+ added: .*\n)*- \+ added: `Deployment\/voice-agent`/);
        assert.match(markdown, /#### dev-acme \(rollout step 1\)\n- - removed:/);
    });

    it("keeps secrets redacted", async () => {
        const { markdown } = await diffStack("dev", "HEAD~1", repo);
        assert.ok(!markdown.includes(SECRET_PREFIX), "a secret placeholder reached the diff");
        assert.ok(!markdown.includes("BBBBBBBB") && !markdown.includes("CCCCCCCC"));
    });

    it("exits 0 without changes and 3 with changes, printing markdown", () => {
        const run = (base: string) => runTool(repo, "diff", ["--stack", "dev", "--base", base]);
        const same = run("HEAD");
        assert.strictEqual(same.status, EXIT_NO_CHANGES, same.stderr);
        const changed = run("HEAD~1");
        assert.strictEqual(changed.status, EXIT_CHANGES, changed.stderr);
        assert.match(changed.stdout, /^## agentfleet offline diff: stack `dev`/);
    });

    it("exits 1 on an unknown ref", () => {
        const r = runTool(repo, "diff", ["--stack", "dev", "--base", "no-such-ref"]);
        assert.strictEqual(r.status, 1);
    });
});
