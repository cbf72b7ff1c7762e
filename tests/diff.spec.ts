import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { EMPTY_SNAPSHOT, EXIT_CHANGES, EXIT_ERROR, EXIT_NO_CHANGES, type Snapshot, diffStack, fieldChanges, formatDiff } from "../commands/diff";
import { SECRET_PREFIX } from "../evaluator/evaluate";
import { git, projectCopy, runTool } from "./helpers";

/** Edits the dev stack file in `dir` as a YAML document (comments kept) and commits it. */
/** Commits an edit of dev's stack file and of its tenant files (fleet/dev/<tenant>.yaml: written, or deleted when set to undefined). */
function commitStackEdit(dir: string, edit: (config: YAML.YAMLMap) => void, tenantFiles: Record<string, object | undefined> = {}): void {
    const file = path.join(dir, "Pulumi.dev.yaml");
    const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"));
    edit(doc.get("config") as YAML.YAMLMap);
    fs.writeFileSync(file, doc.toString());
    for (const [name, entry] of Object.entries(tenantFiles)) {
        const tenantFile = path.join(dir, "fleet", "dev", `${name}.yaml`);
        if (entry === undefined) fs.rmSync(tenantFile);
        else fs.writeFileSync(tenantFile, YAML.stringify(entry));
    }
    git(dir, "add", "-A", "fleet");
    git(dir, "commit", "-qam", "change dev");
}

describe("npm run diff (offline drift preview)", function () {
    this.timeout(120000);
    let repo: string;

    before(() => {
        repo = projectCopy();
        // dev-globex moves ring; dev-acme leaves; dev-initech arrives (token mode): tenant files, read at the base ref too.
        const tenantFiles = {
            "dev-globex": { ...YAML.parse(fs.readFileSync(path.join(repo, "fleet/dev/dev-globex.yaml"), "utf8")), ring: "canary" },
            "dev-acme": undefined,
            "dev-initech": { server: "https://dev-initech.k3s.agentfleet.example.net:6443", ring: "canary", region: "us-east", credentials: "token" },
        };
        commitStackEdit(repo, (config) => {
            const steps = (config.get("agentfleet:rollout") as YAML.YAMLMap).get("steps") as YAML.YAMLSeq;
            steps.items.splice(1, 1);
        }, tenantFiles);
    });

    after(() => fs.rmSync(repo, { recursive: true, force: true }));

    it("reports no change, and exit 0, for identical inputs", async () => {
        const { markdown, changes } = await diffStack("dev", "HEAD", repo);
        assert.strictEqual(changes, 0);
        assert.match(markdown, /No changes/);
    });

    it("shows added, changed and removed objects of both layers, and the moved tenant's new step", async () => {
        const { markdown, changes } = await diffStack("dev", "HEAD~1", repo);
        assert.ok(changes > 0);
        // Pulumi layer
        // A token tenant's stack holds only its registration on the hub.
        assert.match(markdown, /\+ added: `dev-tenant-dev-initech: kubernetes:core\/v1:Secret::dev-initech-cluster`/);
        // The hub stack holds nothing of a tenant: what leaves with it is its own stack's (its registration, argocd-manager).
        assert.deepStrictEqual((markdown.match(/- removed: `[^`]*dev-acme[^`]*`/g) ?? []).filter((l) => !l.includes("dev-tenant-dev-acme: ")), []);
        assert.match(markdown, /- removed: `dev-tenant-dev-acme: kubernetes:core\/v1:Secret::dev-acme-cluster`/);
        assert.match(markdown, /~ changed: `dev-tenant-dev-globex: kubernetes:core\/v1:Secret::dev-globex-cluster`\n- `inputs.metadata.labels.ring`: "main" → "canary"/);
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

    it("a removed and an added tenant show as their cluster Secrets removed and added, and the AppProject does not change (nothing in it is per tenant)", async () => {
        const { markdown } = await diffStack("dev", "HEAD~1", repo);
        assert.match(markdown, /^#### - removed: `dev-tenant-dev-acme: kubernetes:core\/v1:Secret::dev-acme-cluster`$/m, `dev-acme's cluster Secret is not shown removed:\n${markdown}`);
        assert.match(markdown, /^#### \+ added: `dev-tenant-dev-initech: kubernetes:core\/v1:Secret::dev-initech-cluster`$/m, `dev-initech's cluster Secret is not shown added:\n${markdown}`);
        assert.doesNotMatch(markdown, /AppProject/, "the AppProject changed with the tenants");
    });

    it("keys entries by name (containers, env), by server and namespace (destinations), by label key (matchExpressions); steps by index", () => {
        const paths = (before: unknown, after: unknown) => fieldChanges(before, after).map((c) => `${c.path}: ${JSON.stringify(c.before)} → ${JSON.stringify(c.after)}`);
        const env = (...names: string[]) => ({ env: names.map((name) => ({ name, value: name.toLowerCase() })) });
        assert.deepStrictEqual(paths(env("A", "B", "C"), env("A", "C")), ['env[name=B]: {"name":"B","value":"b"} → undefined']);
        const steps = (...rings: string[][]) => ({ steps: rings.map((values) => ({ matchExpressions: [{ key: "ring", operator: "In", values }] })) });
        assert.deepStrictEqual(paths(steps(["canary"], ["main"]), steps(["canary"], ["main", "early"])), ['steps[1].matchExpressions[key=ring].values[1]: undefined → "early"']);
        // Entries without one identity (or with duplicates) are compared by position, as before.
        assert.deepStrictEqual(paths({ args: ["--a", "--b"] }, { args: ["--b", "--a"] }), ['args[0]: "--a" → "--b"', 'args[1]: "--b" → "--a"']);
        assert.deepStrictEqual(paths([{ name: "x", v: 1 }, { name: "x", v: 2 }], [{ name: "x", v: 1 }, { name: "x", v: 3 }]), ["[1].v: 2 → 3"]);
    });

    it("a resource renamed with an alias to its old URN is one changed resource, not removed and added (Pulumi keeps it)", () => {
        const previousUrn = "urn:pulumi:dev::agentfleet::agentfleet:index:TenantCluster$kubernetes:core/v1:Secret::dev-acme-cluster-secret";
        const secret = (name: string, parent: string) => ({ type: "kubernetes:core/v1:Secret", name, parent, inputs: { metadata: { name: "cluster-dev-acme" } } });
        const snapshot = (key: string, resource: object, urn: string, aliases: string[]): Snapshot => ({
            ...EMPTY_SNAPSHOT,
            resources: new Map([[key, resource]]),
            urns: new Map([[urn, key]]),
            aliases: new Map(aliases.length ? [[key, aliases]] : []),
        });
        const base = snapshot("kubernetes:core/v1:Secret::dev-acme-cluster-secret", secret("dev-acme-cluster-secret", "dev-acme"), previousUrn, []);
        const head = snapshot("kubernetes:core/v1:Secret::tenants-dev-acme", secret("tenants-dev-acme", "tenants"), "urn:pulumi:dev::agentfleet::agentfleet:index:TenantClusters$kubernetes:core/v1:Secret::tenants-dev-acme", [previousUrn]);
        const { markdown, changes } = formatDiff("dev", "HEAD~1", base, head);
        assert.strictEqual(changes, 1, markdown);
        assert.match(markdown, /~ changed: `kubernetes:core\/v1:Secret::tenants-dev-acme`\n- `name`: "dev-acme-cluster-secret" → "tenants-dev-acme"\n- `parent`: "dev-acme" → "tenants"/);
        assert.doesNotMatch(markdown, /removed|added/);
    });
});

describe("npm run diff and render read the agent chart at the stack's deploy.targetRevision", function () {
    this.timeout(180000);
    let repo: string;
    const valuesDev = (dir: string) => path.join(dir, "charts", "voice-agent", "values-dev.yaml");
    const setRevision = (dir: string, revision: string) => {
        const file = path.join(dir, "Pulumi.dev.yaml");
        fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(/targetRevision: \S+/, `targetRevision: ${revision}`));
    };

    before(() => {
        // v1: the chart as copied; v2: one more dev replica; dev pinned to v1 and committed.
        repo = projectCopy();
        git(repo, "tag", "v1");
        fs.writeFileSync(valuesDev(repo), fs.readFileSync(valuesDev(repo), "utf8").replace("replicas: 1", "replicas: 3"));
        git(repo, "commit", "-qam", "chart: three dev replicas");
        git(repo, "tag", "v2");
        setRevision(repo, "v1");
        git(repo, "commit", "-qam", "dev pinned to v1");
    });
    after(() => fs.rmSync(repo, { recursive: true, force: true }));

    it("a promotion (v1 → v2) shows exactly the chart changes between the two revisions, for every tenant", async () => {
        setRevision(repo, "v2");
        try {
            const { markdown } = await diffStack("dev", "HEAD", repo);
            // The chart change between v1 and v2 (replicas, which the warm-up Job also reads), per tenant.
            for (const [tenant, step] of [["dev-acme", 1], ["dev-globex", 2]]) {
                const section = [
                    `#### ${tenant} (rollout step ${step})`,
                    "- ~ changed: `Deployment/voice-agent`",
                    "  - `spec.replicas`: 1 → 3",
                    "- ~ changed: `Job/voice-agent-warmup`",
                    '  - `spec.template.spec.containers[name=warmup].env[name=WARMUP_REQUESTS].value`: "1" → "3"',
                    "",
                ].join("\n");
                assert.ok(markdown.includes(section), `no ${tenant} section:\n${markdown}`);
            }
            // The Pulumi-owned ApplicationSet changes its targetRevision; nothing else changes.
            assert.match(markdown, /\*\*5 changes\*\*: 0 rollout steps, 1 Pulumi-owned, 4 in tenants/);
            assert.match(markdown, /`inputs.spec.template.spec.source.targetRevision`: "v1" → "v2"/);
        } finally {
            setRevision(repo, "v1");
        }
    });

    it("a chart edit in the working tree does not change a stack pinned to another revision", async () => {
        const before = fs.readFileSync(valuesDev(repo), "utf8");
        fs.writeFileSync(valuesDev(repo), before.replace(/replicas: \d+/, "replicas: 7"));
        try {
            const { markdown, changes } = await diffStack("dev", "HEAD", repo);
            assert.strictEqual(changes, 0, markdown);
        } finally {
            fs.writeFileSync(valuesDev(repo), before);
        }
    });

    it("render's apps/<tenant>.yaml is the chart at the stack's revision", () => {
        const out = path.join(repo, "out-dev");
        const r = runTool(repo, "render", ["--stack", "dev", "--out", out]);
        assert.strictEqual(r.status, 0, r.stderr);
        const deployment = YAML.parseAllDocuments(fs.readFileSync(path.join(out, "apps", "dev-acme.yaml"), "utf8")).map((d) => d.toJSON()).find((o) => o?.kind === "Deployment");
        assert.strictEqual(deployment.spec.replicas, 1, "dev is pinned to v1, which has one replica; the working tree has three");
        assert.match(r.stdout, /agent chart at v1, commit [0-9a-f]{12}/);
    });

    it("a revision that is not in the repository is a configuration problem naming deploy.targetRevision: exit 2 for render and plan, 1 for diff (as documented)", () => {
        setRevision(repo, "v9.9.9");
        try {
            for (const [tool, args, code] of [["render", ["--out", path.join(repo, "out-missing")], 2], ["plan", [], 2], ["diff", ["--base", "HEAD"], EXIT_ERROR]] as const) {
                const r = runTool(repo, tool, ["--stack", "dev", ...args]);
                assert.strictEqual(r.status, code, `${tool}: ${r.stdout}${r.stderr}`);
                assert.match(r.stderr, /agentfleet:deploy\.targetRevision: "v9\.9\.9" is not a tag, branch or commit .*tags: v1, v2/);
                assert.match(r.stderr, /git tag v9\.9\.9 <commit>/);
                assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
            }
            assert.ok(!fs.existsSync(path.join(repo, "out-missing")));
        } finally {
            setRevision(repo, "v1");
        }
    });

    it("HEAD is the checked-out commit, and on the base side of a diff the base commit", async () => {
        setRevision(repo, "HEAD");
        git(repo, "commit", "-qam", "dev tracks HEAD");
        fs.writeFileSync(valuesDev(repo), fs.readFileSync(valuesDev(repo), "utf8").replace(/replicas: \d+/, "replicas: 5"));
        git(repo, "commit", "-qam", "chart: five dev replicas");
        try {
            const { markdown } = await diffStack("dev", "HEAD~1", repo);
            assert.match(markdown, /`spec.replicas`: 3 → 5/);
        } finally {
            git(repo, "reset", "-q", "--hard", "HEAD~2");
        }
    });
});
