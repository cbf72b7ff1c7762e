/**
 * `npm run tenant -- up`: the tenant stacks run with the hub's context only, on a throwaway copy of
 * the project (a git repository), against the test-only fake of the Automation API
 * (tests/doubles/fake-onboarding-engine.ts), whose hub-only runs plan a registration change on the
 * hub and a new namespace or token on the tenant.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { main } from "../commands/tenant";
import { tenantSideSteps } from "../tenants/engine";
import { HUB_CONTEXT } from "../tenants/kubeconfig";
import { tenantStackSettings } from "../tenants/onboarding-program";
import { checkStack, readView } from "../tenants/stack-file";
import { FakeOnboardingEngine, hubFileOf } from "./doubles/fake-onboarding-engine";
import { git, projectWithHubKubeconfig } from "./helpers";

const HUB_SERVER = "https://hub.prod.agentfleet.example.net:6443";
const INITECH_TOKEN = { bearerToken: "pre-issued-token-of-initech-for-tests", caData: "pre-issued-ca-of-initech" };

let root: string;
let hubKubeconfig: string;
before(() => ({ root, hubKubeconfig } = projectWithHubKubeconfig(HUB_SERVER)));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const tenantFile = (name: string) => path.join(root, "fleet", "prod", `${name}.yaml`);
const editTenant = (name: string, edit: (entry: Record<string, unknown>) => void) => {
    const entry = YAML.parse(fs.readFileSync(tenantFile(name), "utf8"));
    edit(entry);
    fs.writeFileSync(tenantFile(name), YAML.stringify(entry));
};

/** Restores prod's committed tenant files, and an engine whose tenant stacks registered them as committed (the token tenant with its pre-issued token). */
function committedFleet(options: ConstructorParameters<typeof FakeOnboardingEngine>[1] = {}): FakeOnboardingEngine {
    git(root, "checkout", "-q", "--", "fleet/prod");
    git(root, "clean", "-qfd", "--", "fleet/prod");
    const cfg = checkStack("prod", readView(root, "prod"), root);
    const engine = new FakeOnboardingEngine(hubFileOf(root, "prod"), options);
    for (const tenant of cfg.tenants) {
        const settings = tenantStackSettings(cfg, tenant, { tokenGenerations: [0] }, tenant.credentials === "token" ? INITECH_TOKEN : undefined);
        engine.stacks.set(`prod-tenant-${tenant.name}`, { settings, ups: 1 });
    }
    return engine;
}

async function run(engine: FakeOnboardingEngine, args: string[]) {
    let stdout = "";
    let stderr = "";
    const code = await main(["up", "--stack", "prod", "--project-root", root, ...args], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: { ...process.env, KUBECONFIG: hubKubeconfig }, cwd: root, engine: () => engine });
    return { code, stdout, stderr };
}

const registeredRing = (engine: FakeOnboardingEngine, tenant: string) => engine.stacks.get(`prod-tenant-${tenant}`)!.settings.registration?.entry.ring;

describe("npm run tenant -- up: tenant stacks with the hub's context only", () => {
    it("a relabel in one tenant file reaches that tenant's registration; every run's KUBECONFIG holds only the hub's context", async () => {
        const engine = committedFleet();
        editTenant("prod-hooli-us", (e) => (e.ring = "early"));
        const result = await run(engine, ["--all"]);
        assert.strictEqual(result.code, 0, result.stderr);
        assert.strictEqual(registeredRing(engine, "prod-hooli-us"), "early");
        assert.strictEqual(engine.stacks.get("prod-tenant-prod-hooli-us")!.ups, 2, "the changed stack ran its up");
        assert.strictEqual(engine.stacks.get("prod-tenant-prod-acme-eu")!.ups, 1, "an unchanged stack is previewed, not updated");
        assert.strictEqual(engine.kubeconfigs.length, 7);
        for (const seen of engine.kubeconfigs) assert.deepStrictEqual(YAML.parse(seen.text).contexts.map((c: { name: string }) => c.name), [HUB_CONTEXT], seen.stack);
        assert.match(result.stdout, /prod: 7 tenant stack\(s\) run with the hub's context in [\d.]+s: 1 changed \(prod-hooli-us\), 6 unchanged, 0 failed\./);
        assert.match(result.stderr, /\[\s*[\d.]+s\] prod-hooli-us: done in [\d.]+s/);
        assert.match(result.stderr, /prod-hooli-us: update 1, same 11 \(applied\)/);
    });

    it("refuses a tenant whose change reaches its cluster (a new namespace), naming it and bootstrap; the others still run; exit 1", async () => {
        const engine = committedFleet();
        editTenant("prod-acme-us", (e) => (e.namespaces = ["voice-agent", "voice-agent-b"]));
        editTenant("prod-hooli-us", (e) => (e.region = "us-west"));
        const result = await run(engine, ["--all", "--parallel", "2"]);
        assert.strictEqual(result.code, 1);
        assert.match(result.stdout, /FAILED prod-acme-us: its change reaches the tenant's cluster \(create prod-acme-us-deployer-voice-agent-b\).*nothing was changed; run it with the tenant's admin kubeconfig: npm run tenant -- bootstrap --stack prod --name prod-acme-us --kubeconfig/);
        assert.deepStrictEqual(engine.stacks.get("prod-tenant-prod-acme-us")!.settings.namespaces, ["voice-agent"], "nothing applied to the refused stack");
        assert.strictEqual(engine.stacks.get("prod-tenant-prod-hooli-us")!.settings.registration?.entry.region, "us-west");
        assert.ok(engine.maxRunning <= 2, `at most 2 at a time, saw ${engine.maxRunning}`);
        assert.match(result.stderr, /up: 6 of 7 done; failed: prod-acme-us/);
    });

    it("--preview applies nothing and exits 3 when a stack would change, 0 when none would", async () => {
        const engine = committedFleet();
        const clean = await run(engine, ["--all", "--preview"]);
        assert.strictEqual(clean.code, 0, clean.stderr);
        assert.match(clean.stdout, /7 tenant stack\(s\) previewed .*: 0 would change, 7 unchanged, 0 failed/);
        editTenant("prod-globex-eu", (e) => (e.labels = { tier: "standard" }));
        const changed = await run(engine, ["--all", "--preview"]);
        assert.strictEqual(changed.code, 3, changed.stderr);
        assert.match(changed.stdout, /1 would change \(prod-globex-eu\)/);
        assert.match(changed.stderr, /prod-globex-eu: update 1, same 11 \(would change\)/);
        assert.deepStrictEqual(YAML.parse(JSON.stringify(engine.stacks.get("prod-tenant-prod-globex-eu")!.settings.registration?.entry.labels)), { tier: "enterprise" });
        assert.ok(engine.calls.every((c) => c.endsWith(" preview")), engine.calls.join("\n"));
    });

    it("--preview --refresh previews each registration after refreshing it: a hand-edited cluster Secret is drift (exit 3)", async () => {
        const engine = committedFleet({ hubDrift: new Set(["prod-umbrella-us"]) });
        const result = await run(engine, ["--all", "--preview", "--refresh"]);
        assert.strictEqual(result.code, 3, result.stderr);
        assert.match(result.stdout, /1 would change \(prod-umbrella-us\)/);
        assert.ok(engine.calls.every((c) => c.endsWith(" preview refresh-hub")), engine.calls.join("\n"));
        const refused = await run(engine, ["--all", "--refresh"]);
        assert.strictEqual(refused.code, 2);
        assert.match(refused.stderr, /--refresh is for --preview/);
    });

    it("--changed REF runs the tenants whose file was added or changed since REF, and names removed ones as tenant remove's", async () => {
        const engine = committedFleet();
        const base = git(root, "rev-parse", "HEAD").trim();
        editTenant("prod-canary-eu", (e) => (e.region = "eu-central"));
        fs.rmSync(tenantFile("prod-umbrella-us"));
        const result = await run(engine, ["--changed", base]);
        assert.strictEqual(result.code, 0, result.stderr);
        assert.deepStrictEqual(engine.calls, ["hubOnly prod-tenant-prod-canary-eu apply"], result.stderr);
        assert.match(result.stderr, /not run: prod-umbrella-us \(tenant file removed since [0-9a-f]+; npm run tenant -- remove destroys a tenant's stack\)/);
        git(root, "checkout", "-q", "--", "fleet/prod");
        const none = await run(engine, ["--changed", base]);
        assert.strictEqual(none.code, 0, none.stderr);
        assert.match(none.stdout, /No tenant stacks to run in prod \(no tenant file added or changed since [0-9a-f]+\)/);
        const unknown = await run(engine, ["--changed", "no-such-ref"]);
        assert.strictEqual(unknown.code, 1);
        assert.match(unknown.stderr, /--changed no-such-ref: git knows no such commit/);
    });

    it("--changed REF runs every tenant when a hub-wide setting their registrations carry, or the tenant stack's program, changed since REF", async () => {
        const base = git(root, "rev-parse", "HEAD").trim();
        const stackFile = hubFileOf(root, "prod");
        const committed = fs.readFileSync(stackFile, "utf8");
        try {
            const engine = committedFleet();
            fs.writeFileSync(stackFile, committed.replace(/^  agentfleet:hub:\n/m, "  agentfleet:hub:\n    namespace: argo\n"));
            const hubWide = await run(engine, ["--changed", base, "--preview"]);
            assert.strictEqual(hubWide.code, 3, hubWide.stderr);
            assert.match(hubWide.stdout, /7 tenant stack\(s\) previewed .*: 7 would change/);
        } finally {
            fs.writeFileSync(stackFile, committed);
        }
        const program = path.join(root, "components", "tenant-registration.ts");
        const source = fs.readFileSync(program, "utf8");
        try {
            const engine = committedFleet();
            fs.appendFileSync(program, "\n// changed\n");
            const result = await run(engine, ["--changed", base, "--preview"]);
            assert.strictEqual(result.code, 0, result.stderr);
            assert.strictEqual(engine.calls.length, 7);
            assert.match(result.stderr, /every tenant: the tenant stack's program \(.*components\/tenant-registration\.ts.*\) changed since [0-9a-f]+/);
        } finally {
            fs.writeFileSync(program, source);
        }
    });

    it("a token tenant's stack re-registers the token it holds, with no context but the hub's", async () => {
        const engine = committedFleet();
        editTenant("prod-initech-eu", (e) => (e.ring = "early"));
        const result = await run(engine, ["--name", "prod-initech-eu"]);
        assert.strictEqual(result.code, 0, result.stderr);
        assert.strictEqual(registeredRing(engine, "prod-initech-eu"), "early");
        assert.deepStrictEqual(engine.stacks.get("prod-tenant-prod-initech-eu")!.settings.registration?.preIssued, INITECH_TOKEN);
        assert.strictEqual(engine.hubRegistered.get("prod-initech-eu"), INITECH_TOKEN.bearerToken);
        assert.ok(!result.stdout.includes(INITECH_TOKEN.bearerToken) && !result.stderr.includes(INITECH_TOKEN.bearerToken), "the token is never printed");
    });

    it("a tenant without a tenant stack is pending (bootstrap registers it): noted, not failed, unless named; a failing run is named and the others finish", async () => {
        const engine = committedFleet({ failing: new Map([["prod-hooli-us", "pulumi preview of prod-tenant-prod-hooli-us failed: error: hub unreachable"]]) });
        engine.stacks.delete("prod-tenant-prod-acme-eu");
        const result = await run(engine, ["--all"]);
        assert.strictEqual(result.code, 1);
        assert.match(result.stderr, /prod-acme-eu: pending, not registered yet \(no tenant stack prod-tenant-prod-acme-eu\): npm run tenant -- bootstrap --stack prod --name prod-acme-eu/);
        assert.match(result.stdout, /FAILED prod-hooli-us: pulumi preview of prod-tenant-prod-hooli-us failed: error: hub unreachable/);
        assert.match(result.stdout, /7 tenant stack\(s\) run .*: 0 changed, 5 unchanged, 1 failed; 1 pending, not registered yet \(prod-acme-eu\)\./);
        assert.doesNotMatch(result.stdout, /FAILED prod-acme-eu/);
        const named = await run(engine, ["--name", "prod-acme-eu"]);
        assert.strictEqual(named.code, 1);
        assert.match(named.stdout, /FAILED prod-acme-eu: it has no tenant stack prod-tenant-prod-acme-eu \(not registered yet\): npm run tenant -- bootstrap/);
    });

    it("usage: exactly one of --name, --all, --changed; an unknown tenant is refused before any run", async () => {
        const engine = committedFleet();
        assert.strictEqual((await run(engine, [])).code, 2);
        assert.strictEqual((await run(engine, ["--all", "--changed", "HEAD"])).code, 2);
        const unknown = await run(engine, ["--name", "nobody"]);
        assert.strictEqual(unknown.code, 1);
        assert.match(unknown.stderr, /has no tenant nobody/);
        assert.deepStrictEqual(engine.calls, []);
    });
});

describe("tenantSideSteps: what a hub-only up would fail at (Q1)", () => {
    const provider = (name: string) => `urn:pulumi:prod-tenant-t1::agentfleet-tenant::pulumi:providers:kubernetes::${name}::0f1e`;
    const urn = (type: string, name: string) => `urn:pulumi:prod-tenant-t1::agentfleet-tenant::${type}::${name}`;
    it("names non-same steps of any provider but `hub`; provider updates, components and same steps are not", () => {
        const steps = [
            { op: "update", urn: urn("kubernetes:core/v1:Secret", "t1-cluster"), type: "kubernetes:core/v1:Secret", provider: provider("hub") },
            { op: "create", urn: urn("kubernetes:core/v1:Secret", "t1-manager-token-1"), type: "kubernetes:core/v1:Secret", provider: provider("t1-kubernetes") },
            { op: "same", urn: urn("kubernetes:core/v1:ServiceAccount", "t1-manager"), type: "kubernetes:core/v1:ServiceAccount", provider: provider("t1-kubernetes") },
            { op: "update", urn: urn("pulumi:providers:kubernetes", "t1-kubernetes"), type: "pulumi:providers:kubernetes", provider: "" },
            { op: "same", urn: urn("agentfleet:index:TenantAccess", "t1"), type: "agentfleet:index:TenantAccess" },
        ];
        assert.deepStrictEqual(tenantSideSteps(steps), ["create t1-manager-token-1"]);
    });
});
