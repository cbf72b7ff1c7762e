import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { REDACTED, SECRET_PREFIX } from "../evaluator/evaluate";
import { argocdVersionNote, formatPlan, planSummary } from "../commands/plan";
import { DEFAULT_ARGOCD_VERSION } from "../stacks/config";
import { RENDER_MARKER } from "../commands/render";
import { type Obj, STACKS, copyInventory, evaluated, git, projectCopy, registrationsOf, rendered, runTool } from "./helpers";

/** Every file under `dir` (relative paths, sorted) with its content; .git's too. */
const snapshot = (dir: string): Map<string, string> => {
    const files = new Map<string, string>();
    const walk = (d: string): void => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const full = path.join(d, e.name);
            if (e.isDirectory()) walk(full);
            else if (e.isFile()) files.set(path.relative(dir, full), fs.readFileSync(full, "latin1"));
        }
    };
    walk(dir);
    return files;
};

const docs = (text: string): Obj[] => YAML.parseAllDocuments(text).map((d) => d.toJSON()).filter(Boolean);

describe("npm run render and npm run plan", function () {
    this.timeout(120000);
    let root: string;
    let out: string;

    before(() => {
        root = projectCopy();
        out = path.join(root, "out-prod");
        const r = runTool(root, "render", ["--stack", "prod", "--out", out]);
        assert.strictEqual(r.status, 0, r.stderr);
    });
    after(() => fs.rmSync(root, { recursive: true, force: true }));

    it("writes resources.json: one object per resource with type, name, custom, parent, provider, options and inputs", async () => {
        const resources = JSON.parse(fs.readFileSync(path.join(out, "resources.json"), "utf8")) as Obj[];
        assert.deepStrictEqual(resources.map((r) => `${r.type}::${r.name}`), (await evaluated("prod")).resources.map((r) => `${r.type}::${r.name}`));
        for (const r of resources) assert.deepStrictEqual(Object.keys(r), ["type", "name", "custom", "parent", "provider", "protect", "retainOnDelete", "inputs"]);
        // prod protects the ApplicationSet: deleting it would delete every generated Application.
        const appSet = resources.find((r) => r.type === "kubernetes:argoproj.io/v1alpha1:ApplicationSet")!;
        assert.deepStrictEqual([appSet.protect, appSet.retainOnDelete], [true, true]);
        // The hub stack's only provider is the hub's, and it registers no tenant; its provider holds no
        // kubeconfig: every run reads the hub's from KUBECONFIG.
        const providers = resources.filter((r) => r.type === "pulumi:providers:kubernetes");
        assert.deepStrictEqual(providers.map((r) => [r.name, r.inputs.kubeconfig]), [["hub", ""]]);
        assert.deepStrictEqual(resources.filter((r) => r.inputs.metadata?.labels?.["argocd.argoproj.io/secret-type"] === "cluster"), []);
    });

    it("writes each tenant stack's resources, tenant-stacks/<stack>.json: its cluster Secret on the hub (only the credentials secret), argocd-manager on the tenant, no kubeconfig", async () => {
        assert.deepStrictEqual(fs.readdirSync(path.join(out, "tenant-stacks")).sort(), (await registrationsOf("prod")).map((r) => `${r.stack}.json`).sort());
        const resources = JSON.parse(fs.readFileSync(path.join(out, "tenant-stacks", "prod-tenant-prod-acme-eu.json"), "utf8")) as Obj[];
        const cluster = resources.find((r) => r.name === "prod-acme-eu-cluster")!;
        // Only the credentials (config) are secret; the cluster's name, server and project are shown.
        assert.deepStrictEqual(cluster.inputs.stringData, { clusterResources: "false", config: REDACTED, name: "prod-acme-eu", namespaces: "voice-agent", project: "voice-agent-prod", server: "https://prod-acme-eu.k3s.agentfleet.example.net:6443" });
        assert.deepStrictEqual([cluster.provider, cluster.parent], ["hub", "prod-acme-eu"]);
        const providers = resources.filter((r) => r.type === "pulumi:providers:kubernetes");
        assert.deepStrictEqual(providers.map((r) => [r.name, r.inputs.kubeconfig, r.inputs.context]).sort(), [["hub", "", "agentfleet-hub"], ["prod-acme-eu-kubernetes", "", "agentfleet-tenant"]]);
    });

    it("writes manifests for the hub, with every tenant stack's cluster Secret, and for each bootstrap tenant only its tenant stack's argocd-manager: nothing of the hub stack lands on a tenant", async () => {
        const files = fs.readdirSync(path.join(out, "manifests")).sort();
        const bootstrap = (await evaluated("prod")).inventory.filter((t) => t.credentials === "bootstrap").map((t) => `${String(t.name)}.yaml`);
        assert.deepStrictEqual(files, ["hub.yaml", ...bootstrap].sort());
        const hub = docs(fs.readFileSync(path.join(out, "manifests", "hub.yaml"), "utf8"));
        const clusterSecrets = hub.filter((o) => o.metadata?.labels?.["argocd.argoproj.io/secret-type"] === "cluster").map((o) => o.metadata.name);
        assert.strictEqual(clusterSecrets.length, 7, "one cluster Secret per tenant, token tenants included");
        assert.ok(hub.some((o) => o.kind === "ApplicationSet") && hub.some((o) => o.kind === "AppProject"));
        const onTenant = docs(fs.readFileSync(path.join(out, "manifests", "prod-acme-eu.yaml"), "utf8"));
        assert.ok(onTenant.length > 0 && onTenant.every((o) => JSON.stringify(o).includes("argocd-manager") || o.kind === "Namespace"), JSON.stringify(onTenant.map((o) => `${o.kind}/${o.metadata?.name}`)));
    });

    it("writes the chart rendered for each tenant, and plan.json with steps and waves", () => {
        assert.strictEqual(fs.readdirSync(path.join(out, "apps")).length, 7);
        const app = docs(fs.readFileSync(path.join(out, "apps", "prod-canary-eu.yaml"), "utf8"));
        assert.ok(app.some((o) => o.kind === "Deployment"));
        const plan = JSON.parse(fs.readFileSync(path.join(out, "plan.json"), "utf8"));
        assert.deepStrictEqual(Object.keys(plan), ["steps", "waves"]);
        assert.deepStrictEqual(Object.keys(plan.steps[0]), ["index", "matchExpressions", "maxUpdate", "tenants"]);
        assert.deepStrictEqual(plan.steps.map((s: Obj) => s.tenants.length), [1, 2, 4]);
        assert.deepStrictEqual(Object.keys(plan.waves[0]), ["phase", "wave", "kind", "name"]);
    });

    it("never writes a secret placeholder into any file", () => {
        const walk = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
        for (const file of walk(out)) assert.ok(!fs.readFileSync(file, "utf8").includes(SECRET_PREFIX), `${file} holds a secret placeholder`);
    });

    it("refuses an invalid configuration: non-zero exit, the problems on stderr, nothing written", () => {
        fs.copyFileSync(path.join(root, "Pulumi.dev.yaml"), path.join(root, "Pulumi.broken.yaml"));
        copyInventory(root, "dev", "broken", (text) => text.replace("https://dev-acme.k3s.agentfleet.example.net:6443", "https://127.0.0.1:6443"));
        const target = path.join(root, "out-broken");
        const r = runTool(root, "render", ["--stack", "broken", "--out", target]);
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /fleet\/broken\/dev-acme\.yaml: server: .*loopback/);
        assert.ok(!fs.existsSync(target), "render wrote output for an invalid configuration");
        const plan = runTool(root, "plan", ["--stack", "broken"]);
        assert.notStrictEqual(plan.status, 0);
        assert.match(plan.stderr, /fleet\/broken\/dev-acme\.yaml: server: /);
    });

    it("exit codes are as documented: a configuration problem is 2 for plan, render, status and promote, 1 for diff and tenant; bad flags 2", () => {
        const dev = fs.readFileSync(path.join(root, "Pulumi.dev.yaml"), "utf8");
        fs.writeFileSync(path.join(root, "Pulumi.codes.yaml"), dev);
        copyInventory(root, "dev", "codes", (text) => text.replace("https://dev-acme.k3s.agentfleet.example.net:6443", "https://127.0.0.1:6443"));
        fs.writeFileSync(path.join(root, "Pulumi.codes-yaml.yaml"), `${dev}\n  agentfleet:hub: [unclosed\n`);
        const runs: Array<[tool: string, args: string[], code: number]> = [
            ["plan", ["--stack", "codes"], 2],
            ["render", ["--stack", "codes", "--out", path.join(root, "out-codes")], 2],
            ["diff", ["--stack", "codes", "--base", "HEAD"], 1],
            ["tenant", ["list", "--stack", "codes"], 1],
            // With a kubeconfig named, status needs no Pulumi CLI, so the stack file's problem is what it reports.
            ["status", ["--stack", "codes-yaml", "--kubeconfig", path.join(root, "no-hub.yaml")], 2],
            ["promote", ["--to", "codes-yaml", "--kubeconfig", path.join(root, "no-hub.yaml")], 2],
            ["status", ["--stack", "codes", "--interval", "0"], 2],
            ["plan", ["--stack", "codes", "--jsn"], 2],
            ["tenant", ["list"], 2],
        ];
        for (const [tool, args, code] of runs) {
            const r = runTool(root, tool, args);
            assert.strictEqual(r.status, code, `${tool} ${args.join(" ")}: ${r.stderr}`);
            assert.doesNotMatch(r.stderr, /\n\s+at /, `${tool} printed a stack trace`);
        }
    });

    it("accepts any stack with a Pulumi.<name>.yaml; an unknown one is named, with a did-you-mean and no stack trace, by every command", () => {
        const r = runTool(root, "render", ["--stack", "nope", "--out", path.join(root, "out-nope")]);
        assert.strictEqual(r.status, 1);
        assert.ok(r.stderr.includes(`unknown stack "nope": no Pulumi.nope.yaml`) && r.stderr.includes([...STACKS].sort().join(", ")), r.stderr);
        for (const [tool, args] of [["plan", []], ["render", ["--out", path.join(root, "out-prdo")]], ["diff", []], ["tenant", []]] as const) {
            const typo = runTool(root, tool, tool === "tenant" ? ["list", "--stack", "prdo"] : ["--stack", "prdo", ...args]);
            assert.strictEqual(typo.status, 1, `${tool}: ${typo.stderr}`);
            assert.match(typo.stderr, /unknown stack "prdo" \(did you mean 'prod'\?\)/, tool);
            assert.doesNotMatch(typo.stderr, /\n\s+at /, `${tool} printed a stack trace`);
        }
    });

    it("plan shows each tenant's credential mode as the stack file declares it (tenant list's source), in the table and in --json", async () => {
        const declared = fs.readdirSync(path.join(root, "fleet/prod")).map((f) => [f.slice(0, -".yaml".length), YAML.parse(fs.readFileSync(path.join(root, "fleet/prod", f), "utf8")).credentials]).sort();
        assert.ok(declared.some(([, c]) => c === "bootstrap") && declared.some(([, c]) => c === "token"), "prod declares both modes");
        const summary = planSummary("prod", await rendered("prod"));
        assert.deepStrictEqual(summary.tenants.map((t) => [t.tenant, t.credentials]).sort(), declared);
        const json = runTool(root, "plan", ["--stack", "prod", "--json"]);
        assert.strictEqual(json.status, 0, json.stderr);
        assert.deepStrictEqual((JSON.parse(json.stdout).tenants as Obj[]).map((t) => [t.tenant, t.credentials]).sort(), declared);
        const text = formatPlan("prod", await rendered("prod"));
        for (const [tenant, mode] of declared) assert.match(text, new RegExp(`^  \\S+\\s+${tenant}\\s+\\S+\\s+\\S+\\s+${mode}\\b`, "m"), `${tenant} is not shown as ${mode}:\n${text}`);
    });

    it("plan lists the hub, health checks, notification triggers, tenants by ring, the rollout table and the waves", async () => {
        const text = formatPlan("prod", await rendered("prod"));
        for (const expected of ["Argo CD:               v3.6.2", "progressive syncs:     enabled", "health checks:         apps_Deployment, networking.k8s.io_Ingress", "on-health-degraded", "canary  prod-canary-eu", "ring In (main)    25%", "Sync      -1    Job                  voice-agent-migrate", "PostSync  0     Job                  voice-agent-warmup"]) {
            assert.ok(text.includes(expected), `plan lacks ${JSON.stringify(expected)}:\n${text}`);
        }
        assert.ok(!text.includes("is not the Argo CD the real-engine suite proves"), text);
    });

    it("plan notes a stack whose Argo CD is not the version the real-engine suite proves", () => {
        assert.deepStrictEqual(argocdVersionNote(DEFAULT_ARGOCD_VERSION), []);
        const [note] = argocdVersionNote("v3.5.1");
        assert.match(note, /^hub\.argocdVersion v3\.5\.1 is not the Argo CD the real-engine suite proves the rollout with \(v3\.6\.2, docs\/real-argocd\.md\)/);
    });
});

describe("npm run render replaces only a folder it wrote itself", function () {
    this.timeout(300000);
    // The project copy sits in a folder of its own, so "a folder above the project" is a scratch folder too.
    let outer: string;
    let root: string;

    before(() => {
        const copy = projectCopy();
        outer = fs.mkdtempSync(path.join(path.dirname(copy), "agentfleet-outer-"));
        root = path.join(outer, "project");
        fs.renameSync(copy, root);
        fs.writeFileSync(path.join(outer, "keep.txt"), "a file beside the project\n");
    });
    after(() => fs.rmSync(outer, { recursive: true, force: true }));

    const refused = (out: string, what: RegExp) => {
        const before = snapshot(outer);
        const r = runTool(root, "render", ["--stack", "dev", "--out", out]);
        assert.notStrictEqual(r.status, 0, `render into ${out} succeeded:\n${r.stdout}`);
        assert.match(r.stderr, what);
        assert.doesNotMatch(r.stderr, /\n\s+at /, "a stack trace");
        const after = snapshot(outer);
        assert.deepStrictEqual([...before.keys()].filter((f) => !after.has(f)), [], "files were deleted");
        assert.deepStrictEqual([...after.keys()].filter((f) => !before.has(f)), [], "files were written");
        for (const [f, content] of before) assert.strictEqual(after.get(f), content, `${f} changed`);
    };

    it("refuses the project folder itself: every file, .git included, survives", () => {
        refused(root, /--out .*project is the project folder/);
    });

    it("refuses a folder above the project", () => {
        refused(outer, /--out .* is a folder above the project folder/);
    });

    it("refuses a folder holding a file render did not write", () => {
        fs.mkdirSync(path.join(outer, "notes"));
        fs.writeFileSync(path.join(outer, "notes", "todo.txt"), "buy milk\n");
        refused(path.join(outer, "notes"), /holds files render did not write \(no \.agentfleet-render in it: todo\.txt\)/);
    });

    it("refuses a folder holding a git repository, even one with a marker", () => {
        const repo = path.join(outer, "repo");
        fs.mkdirSync(repo);
        git(repo, "init", "-q");
        fs.writeFileSync(path.join(repo, RENDER_MARKER), "");
        refused(repo, /holds a git repository/);
    });

    it("writes into a missing or empty folder, marks it, and replaces its own output on the next render", () => {
        const out = path.join(outer, "out", "dev");
        fs.mkdirSync(out, { recursive: true });
        const first = runTool(root, "render", ["--stack", "dev", "--out", out]);
        assert.strictEqual(first.status, 0, first.stderr);
        assert.ok(fs.existsSync(path.join(out, RENDER_MARKER)));
        assert.doesNotMatch(first.stdout, /replacing/);
        fs.writeFileSync(path.join(out, "apps", "stale.yaml"), "kind: Stale\n");
        const second = runTool(root, "render", ["--stack", "dev", "--out", out]);
        assert.strictEqual(second.status, 0, second.stderr);
        assert.ok(second.stdout.includes(`to ${out}, replacing its previous output`), second.stdout);
        assert.ok(!fs.existsSync(path.join(out, "apps", "stale.yaml")), "the folder is replaced as a whole");
        assert.ok(fs.existsSync(path.join(out, RENDER_MARKER)) && fs.existsSync(path.join(out, "resources.json")));
    });
});
