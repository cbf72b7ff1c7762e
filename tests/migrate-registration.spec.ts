/**
 * `npm run tenant -- migrate-registration` on a throwaway copy of the project, against the
 * test-only fake of the Automation API (tests/doubles/fake-onboarding-engine.ts): a hub stack of the
 * previous layout (its state holds TenantClusters' `tenants-<tenant>`, its stack file
 * `tenantCredentials`) moved to tenant stacks, per tenant and resumable.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { main } from "../commands/tenant";
import type { HubCredential, StateResource } from "../tenants/engine";
import { HUB_CONTEXT } from "../tenants/kubeconfig";
import { FakeOnboardingEngine, hubFileOf } from "./doubles/fake-onboarding-engine";
import { projectWithHubKubeconfig } from "./helpers";

const HUB_SERVER = "https://hub.prod.agentfleet.example.net:6443";
const TOKEN_TENANT = "prod-initech-eu";
const BOOTSTRAP = ["prod-acme-eu", "prod-acme-us", "prod-canary-eu", "prod-globex-eu", "prod-hooli-us", "prod-umbrella-us"];
const ALL = [...BOOTSTRAP, TOKEN_TENANT].sort();

let root: string;
let hubKubeconfig: string;
before(() => ({ root, hubKubeconfig } = projectWithHubKubeconfig(HUB_SERVER)));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const COMPONENT = "urn:pulumi:prod::agentfleet::agentfleet:index:TenantClusters::tenants";
const heldUrn = (t: string) => `urn:pulumi:prod::agentfleet::agentfleet:index:TenantClusters$kubernetes:core/v1:Secret::tenants-${t}`;
/** The token the previous layout's hub stack file held for each tenant (a bootstrap tenant's is its tenant stack's current one). */
const storedToken = (t: string) => (t === TOKEN_TENANT ? "pre-issued-token-of-initech" : `fake-token-${t}-0`);

/**
 * The previous layout: every tenant's cluster Secret in the hub state (with its UID) and its token
 * in tenantCredentials (secure placeholders); bootstrap tenants have their onboarding stacks.
 */
function previousLayout(options: { secondPreview?: Map<string, Record<string, number>> } = {}): { file: string; engine: FakeOnboardingEngine } {
    const file = hubFileOf(root, "prod");
    const doc = YAML.parseDocument(fs.readFileSync(path.join(__dirname, "..", "Pulumi.prod.yaml"), "utf8"));
    for (const t of ALL) for (const field of ["bearerToken", "caData"]) doc.setIn(["config", "agentfleet:tenantCredentials", t, field], doc.createNode({ secure: `v1:fake:${t}:${field}` }));
    fs.writeFileSync(file, doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
    const hubState: StateResource[] = [{ urn: COMPONENT, type: "agentfleet:index:TenantClusters" }, ...ALL.map((t) => ({ urn: heldUrn(t), type: "kubernetes:core/v1:Secret", parent: COMPONENT, uid: `uid-${t}` }))];
    const hubCredentials: Record<string, HubCredential> = Object.fromEntries(ALL.map((t) => [t, { bearerToken: storedToken(t), caData: `ca-of-${t}` }]));
    const engine = new FakeOnboardingEngine(file, { hubState, hubCredentials, ...options });
    for (const t of BOOTSTRAP) engine.stacks.set(`prod-tenant-${t}`, { settings: { tenant: t, namespaces: ["voice-agent"], tokenGenerations: [0] }, ups: 0 });
    for (const t of ALL) engine.hubUids.set(t, `uid-${t}`);
    return { file, engine };
}

const credentialsIn = (file: string): string[] => Object.keys(YAML.parse(fs.readFileSync(file, "utf8")).config["agentfleet:tenantCredentials"] ?? {});

async function run(engine: FakeOnboardingEngine, args: string[]) {
    let stdout = "";
    let stderr = "";
    const code = await main(["migrate-registration", "--stack", "prod", "--project-root", root, ...args], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: { ...process.env, KUBECONFIG: hubKubeconfig }, cwd: root, engine: () => engine });
    return { code, stdout, stderr };
}

describe("npm run tenant -- migrate-registration (fake Automation API): the hub's registrations move into the tenant stacks", function () {
    this.timeout(120000);

    it("--all: per tenant, moves tenants-<t>, runs its tenant stack at once (hub context only, no refresh), checks the UID and a second preview, then drops tenantCredentials", async () => {
        const { file, engine } = previousLayout();
        const { code, stdout, stderr } = await run(engine, ["--all", "--parallel", "2"]);
        assert.strictEqual(code, 0, stderr);
        for (const t of ALL) {
            const stack = `prod-tenant-${t}`;
            const mine = engine.calls.filter((c) => c.includes(` ${stack} `) || c.endsWith(` ${stack}`));
            assert.deepStrictEqual(mine, [`move ${stack} 1`, `up ${stack} generations 0 no-refresh`, `check ${stack}`], `${t}'s steps`);
            assert.strictEqual(engine.hubRegistered.get(t), storedToken(t), `${t}'s registered token changed`);
            assert.strictEqual(engine.hubUids.get(t), `uid-${t}`);
            assert.match(stderr, new RegExp(`\\[ *[0-9.]+s\\] ${t}: done in [0-9.]+s`));
        }
        assert.deepStrictEqual(engine.stacks.get(`prod-tenant-${TOKEN_TENANT}`)!.settings.registration!.preIssued, { bearerToken: storedToken(TOKEN_TENANT), caData: `ca-of-${TOKEN_TENANT}` });
        // The emptied component goes too (state only), so the hub's next up deletes nothing.
        assert.deepStrictEqual(engine.hubState, [], "the hub state still holds a registration or its component");
        assert.strictEqual(engine.calls.at(-1), "drop tenants");
        assert.strictEqual(engine.maxMovesRunning, 1, "two moves rewrote the hub state at once");
        assert.ok(!("agentfleet:tenantCredentials" in YAML.parse(fs.readFileSync(file, "utf8")).config), "the retired key is left in the stack file");
        // Only the hub's context: nothing on a tenant is reachable, so nothing there can change (Q1).
        for (const k of engine.kubeconfigs) assert.deepStrictEqual(YAML.parse(k.text).contexts.map((c: { name: string }) => c.name), [HUB_CONTEXT]);
        assert.ok(engine.maxRunning <= 2);
        assert.strictEqual(engine.calls.filter((c) => c === "hubCredentials").length, 1, "the credentials were decrypted more than once");
        for (const t of ALL) assert.ok(!`${stdout}${stderr}`.includes(storedToken(t)), `${t}'s token was printed`);
        assert.match(stdout, /Next: commit Pulumi\.prod\.yaml, then the hub's pulumi up/);
    });

    it("running it again does nothing for migrated tenants: no move, no up, exit 0", async () => {
        const { engine } = previousLayout();
        assert.strictEqual((await run(engine, ["--all"])).code, 0);
        const before = engine.calls.length;
        // Without --name, every tenant: the command the hub's refusal names.
        const again = await run(engine, []);
        assert.strictEqual(again.code, 0, again.stderr);
        assert.deepStrictEqual(engine.calls.slice(before), []);
        assert.match(again.stderr, /prod-acme-eu: migrated before/);
        assert.match(again.stdout, /Every tenant was migrated before: nothing to do/);
    });

    it("a tenant whose second preview would change something keeps its tenantCredentials and fails alone; the others finish", async () => {
        const { file, engine } = previousLayout({ secondPreview: new Map([["prod-hooli-us", { same: 2, update: 1 }]]) });
        const { code, stderr } = await run(engine, ["--all"]);
        assert.strictEqual(code, 1);
        assert.match(stderr, /prod-hooli-us: FAILED after [0-9.]+s: a second preview of prod-tenant-prod-hooli-us plans \{"same":2,"update":1\}, not only same; tenantCredentials\.prod-hooli-us is kept/);
        assert.deepStrictEqual(credentialsIn(file), ["prod-hooli-us"]);
    });

    it("a cluster Secret whose live UID is not the one the hub state held fails the tenant and keeps its tenantCredentials", async () => {
        const { file, engine } = previousLayout();
        engine.hubUids.set("prod-acme-us", "uid-recreated");
        const { code, stderr } = await run(engine, ["--name", "prod-acme-us"]);
        assert.strictEqual(code, 1);
        assert.match(stderr, /UID on the hub is uid-recreated, not uid-prod-acme-us as the hub state held: it was replaced/);
        assert.ok(credentialsIn(file).includes("prod-acme-us"));
    });

    it("resumes after a failed up: the Secret already moved is not moved again; the up and the checks run, then tenantCredentials goes", async () => {
        const { file, engine } = previousLayout();
        engine.options.failing = new Map([["prod-globex-eu", "dial tcp 127.0.0.1:6443: connection refused"]]);
        const first = await run(engine, ["--name", "prod-globex-eu"]);
        assert.strictEqual(first.code, 1);
        assert.match(first.stderr, /The cluster Secret is in prod-tenant-prod-globex-eu now/);
        assert.ok(credentialsIn(file).includes("prod-globex-eu"));
        engine.options.failing = undefined;
        const before = engine.calls.length;
        const second = await run(engine, ["--name", "prod-globex-eu"]);
        assert.strictEqual(second.code, 0, second.stderr);
        assert.deepStrictEqual(engine.calls.slice(before).filter((c) => c !== "hubCredentials"), ["up prod-tenant-prod-globex-eu generations 0 no-refresh", "check prod-tenant-prod-globex-eu"]);
        assert.ok(!credentialsIn(file).includes("prod-globex-eu"));
    });

    it("refuses, before moving anything, a bootstrap tenant whose stored token is not its tenant stack's current one (an unfinished rotation)", async () => {
        const { file, engine } = previousLayout();
        engine.options.hubCredentials!["prod-canary-eu"] = { bearerToken: "an-older-token", caData: "ca" };
        const { code, stderr } = await run(engine, ["--name", "prod-canary-eu"]);
        assert.strictEqual(code, 1);
        assert.match(stderr, /a rotation of the previous agentfleet is unfinished/);
        assert.ok(!stderr.includes("an-older-token"));
        assert.deepStrictEqual(engine.calls.filter((c) => c !== "hubCredentials"), []);
        assert.ok(credentialsIn(file).includes("prod-canary-eu"));
        assert.ok(engine.hubState.some((r) => r.urn === COMPONENT), "the component left the state while it still holds registrations");
    });

    it("refuses bad input before touching anything: --name with --all, an unknown tenant, a hub kubeconfig of another server", async () => {
        const { engine } = previousLayout();
        assert.strictEqual((await run(engine, ["--all", "--name", "prod-acme-eu"])).code, 2);
        const unknown = await run(engine, ["--name", "nope"]);
        assert.strictEqual(unknown.code, 1);
        assert.match(unknown.stderr, /has no tenant nope in its inventory\. Nothing was touched/);
        const other = path.join(root, "other.kubeconfig");
        fs.writeFileSync(other, fs.readFileSync(hubKubeconfig, "utf8").replace(HUB_SERVER, "https://staging-hub.example.net:6443"));
        const wrongHub = await run(engine, ["--all", "--hub-kubeconfig", other]);
        assert.strictEqual(wrongHub.code, 1);
        assert.match(wrongHub.stderr, /hub\.server/);
        // A stack file the last step (removing tenantCredentials) could not edit without reformatting it: refused before any tenant.
        const file = hubFileOf(root, "prod");
        fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("config:\n", "config:   \n"));
        const unformatted = await run(engine, ["--all"]);
        assert.strictEqual(unformatted.code, 1);
        assert.match(unformatted.stderr, /Pulumi\.prod\.yaml: cannot be edited without reformatting it \(line 5 would change\)/);
        assert.deepStrictEqual(engine.calls, []);
    });
});
