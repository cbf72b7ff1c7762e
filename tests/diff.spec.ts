import * as assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { EXIT_CHANGES, EXIT_NO_CHANGES, diffStack } from "../tools/diff";
import { ROOT, SECRET_PREFIX } from "../tools/evaluate";

const git = (cwd: string, ...args: string[]) => execFileSync("git", ["-c", "user.name=test", "-c", "user.email=test@example.net", ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] }).toString();

/** A throwaway git repository holding this project as committed, sharing node_modules. */
function throwawayRepo(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-diff-test-"));
    const files = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT }).toString().split("\0").filter(Boolean);
    for (const f of files) {
        if (!fs.existsSync(path.join(ROOT, f))) continue;
        fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
    fs.writeFileSync(path.join(dir, ".gitignore"), "node_modules\n");
    git(dir, "init", "-q");
    git(dir, "add", "-A");
    git(dir, "commit", "-qm", "base");
    return dir;
}

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
        repo = throwawayRepo();
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
        const run = (base: string) => spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(repo, "tools", "diff.ts"), "--stack", "dev", "--base", base], { cwd: repo, encoding: "utf8" });
        const same = run("HEAD");
        assert.strictEqual(same.status, EXIT_NO_CHANGES, same.stderr);
        const changed = run("HEAD~1");
        assert.strictEqual(changed.status, EXIT_CHANGES, changed.stderr);
        assert.match(changed.stdout, /^## agentfleet offline diff: stack `dev`/);
    });

    it("exits 1 on an unknown ref", () => {
        const r = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(repo, "tools", "diff.ts"), "--stack", "dev", "--base", "no-such-ref"], { cwd: repo, encoding: "utf8" });
        assert.strictEqual(r.status, 1);
    });
});
