/**
 * `npm run tenant -- bootstrap|rotate|remove|migrate` orchestration, on a throwaway copy of the
 * project, against the test-only fake of the Automation API (tests/doubles/fake-onboarding-engine.ts).
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { failureReason, registeredTokenIn } from "../tenants/engine";
import { inTenantResources } from "../tenants/migrate";
import { forEachTenant, seconds } from "../tenants/parallel";
import { main } from "../commands/tenant";
import { FakeOnboardingEngine, type SeenKubeconfig, hubFileOf } from "./doubles/fake-onboarding-engine";
import { ConfigError } from "../stacks/config";
import { checkStack, readView } from "../tenants/stack-file";
import { HUB_CONTEXT, ONBOARDING_CONTEXT, withTenantKubeconfig } from "../tenants/kubeconfig";
import { projectCopy } from "./helpers";

const CA = Buffer.from("-----BEGIN CERTIFICATE-----\nFAKE-CA-FOR-TESTS-ONLY\n-----END CERTIFICATE-----\n").toString("base64");
const kubeconfig = (server = "https://127.0.0.1:6443") =>
    YAML.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "default", cluster: { server, "certificate-authority-data": CA } }],
        contexts: [{ name: "default", context: { cluster: "default", user: "default" } }],
        "current-context": "default",
        users: [{ name: "default", user: { "client-certificate-data": "RkFLRQ==", "client-key-data": "RkFLRQ==" } }],
    });

let root: string;
let kubeDir: string;
/** The prod hub's kubeconfig (agentfleet:hub.server), and another cluster's. */
let hubKubeconfig: string;
let otherKubeconfig: string;
const HUB_SERVER = "https://hub.prod.agentfleet.example.net:6443";
before(() => {
    root = projectCopy();
    kubeDir = fs.mkdtempSync(path.join(root, "kube-"));
    hubKubeconfig = path.join(kubeDir, "hub.kubeconfig");
    fs.writeFileSync(hubKubeconfig, YAML.stringify({ ...YAML.parse(kubeconfig(HUB_SERVER)), users: [{ name: "default", user: { token: "hub-admin-token-for-tests" } }] }));
    otherKubeconfig = path.join(kubeDir, "other.kubeconfig");
    fs.writeFileSync(otherKubeconfig, kubeconfig("https://staging-hub.example.net:6443"));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Adds pending bootstrap tenants (tenant files whose tenant stack does not exist yet) to a fresh copy of the prod stack file and its inventory. */
function prodWithPending(names: string[]): string {
    const file = hubFileOf(root, "prod");
    fs.copyFileSync(path.join(__dirname, "..", "Pulumi.prod.yaml"), file);
    fs.rmSync(path.join(root, "fleet", "prod"), { recursive: true, force: true });
    fs.cpSync(path.join(__dirname, "..", "fleet", "prod"), path.join(root, "fleet", "prod"), { recursive: true });
    for (const name of names) {
        fs.writeFileSync(tenantFileOf(name), YAML.stringify({ server: `https://${name}.k3s.example.net:6443`, ring: "main", region: "eu-west", credentials: "bootstrap" }));
        fs.writeFileSync(path.join(kubeDir, `${name}.yaml`), kubeconfig());
    }
    return file;
}

/** A fake engine in which prod's committed tenants already have their tenant stacks (they are not pending). */
function prodEngine(file: string, options: ConstructorParameters<typeof FakeOnboardingEngine>[1] = {}): FakeOnboardingEngine {
    const engine = new FakeOnboardingEngine(file, options);
    for (const f of fs.readdirSync(path.join(__dirname, "..", "fleet", "prod"))) {
        const tenant = f.replace(/\.yaml$/, "");
        engine.stacks.set(`prod-tenant-${tenant}`, { settings: { tenant, namespaces: ["voice-agent"], tokenGenerations: [0] }, ups: 0 });
    }
    return engine;
}

/** A prod tenant's file in the project copy. */
const tenantFileOf = (name: string) => path.join(root, "fleet", "prod", `${name}.yaml`);
/** A prod tenant's entry as its file holds it. */
const tenantOf = (name: string) => YAML.parse(fs.readFileSync(tenantFileOf(name), "utf8"));

/** Runs the command with KUBECONFIG naming the hub's kubeconfig (`kube`: another). */
async function run(engine: FakeOnboardingEngine, args: string[], kube = hubKubeconfig) {
    let stdout = "";
    let stderr = "";
    const code = await main(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: { ...process.env, KUBECONFIG: kube }, cwd: root, engine: () => engine });
    return { code, stdout, stderr };
}

/**
 * Each tenant's run got its own KUBECONFIG: a 0600 file, alone in its folder, holding the tenant's
 * context (ONBOARDING_CONTEXT, the tenant's server) and the hub's (HUB_CONTEXT, hub.server) and
 * nothing else; every file and folder is gone afterwards.
 */
function assertPrivateKubeconfigs(kubeconfigs: SeenKubeconfig[], tenants: string[]): void {
    const seen = tenants.map((t) => kubeconfigs.find((k) => k.stack === `prod-tenant-${t}`)!);
    assert.ok(seen.every(Boolean), `a tenant's run had no KUBECONFIG: ${JSON.stringify(kubeconfigs.map((k) => k.stack))}`);
    assert.strictEqual(new Set(seen.map((k) => path.dirname(k.file))).size, tenants.length, "two tenants' runs shared a kubeconfig folder");
    seen.forEach((k, i) => {
        assert.strictEqual(k.mode, 0o600, `${k.file} has mode ${k.mode.toString(8)}`);
        const doc = YAML.parse(k.text);
        assert.deepStrictEqual(doc.contexts.map((c: { name: string }) => c.name), [ONBOARDING_CONTEXT, HUB_CONTEXT]);
        assert.deepStrictEqual(doc.clusters.map((c: { cluster: { server: string } }) => c.cluster.server), [`https://${tenants[i]}.k3s.example.net:6443`, HUB_SERVER]);
        assert.ok(!fs.existsSync(path.dirname(k.file)), `${k.file} is left behind`);
    });
}

describe("npm run tenant -- bootstrap (fake Automation API): each tenant's own stack registers it on the hub", function () {
    this.timeout(120000);

    it("--all-pending runs every tenant without a tenant stack, at most --parallel at once; each stack registers its tenant, and the hub stack file is untouched", async () => {
        const names = ["t-a", "t-b", "t-c", "t-d", "t-e"];
        const file = prodWithPending(names);
        const before = fs.readFileSync(file, "utf8");
        const engine = prodEngine(file, { upMs: 50 });
        const { code, stderr } = await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--all-pending", "--kubeconfig-dir", kubeDir, "--parallel", "2"]);
        assert.strictEqual(code, 0, stderr);
        assert.strictEqual(engine.maxRunning, 2);
        for (const n of names) {
            const registration = engine.stacks.get(`prod-tenant-${n}`)!.settings.registration!;
            assert.deepStrictEqual([registration.entry.name, registration.fleet, registration.project, registration.argocdNamespace, registration.preIssued], [n, "prod", "voice-agent-prod", "argocd", undefined]);
            assert.strictEqual(engine.hubRegistered.get(n), `fake-token-${n}-0`);
            assert.match(stderr, new RegExp(`\\[ *[0-9.]+s\\] ${n}: done in [0-9.]+s`));
        }
        assert.deepStrictEqual(engine.calls.filter((c) => c.startsWith("up")).length, names.length, "a committed tenant (with a tenant stack) ran too");
        assert.strictEqual(fs.readFileSync(file, "utf8"), before, "the hub stack file changed");
        assertPrivateKubeconfigs(engine.kubeconfigs, names);
        assert.ok(!engine.kubeconfigs.some((k) => k.text.includes("client-certificate-data") && !k.text.includes("hub-admin-token-for-tests")), "a run lacked the hub's credential");
    });

    it("one failing tenant never blocks the others: the rest finish, the summary names it, exit 1; a re-run finishes it", async () => {
        const file = prodWithPending(["t-ok1", "t-bad", "t-ok2"]);
        const engine = prodEngine(file, { failing: new Map([["t-bad", "dial tcp: connection refused"]]) });
        const first = await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--all-pending", "--kubeconfig-dir", kubeDir, "--parallel", "1"]);
        assert.strictEqual(first.code, 1);
        assert.deepStrictEqual(["t-ok1", "t-bad", "t-ok2"].map((t) => engine.hubRegistered.has(t)), [true, false, true]);
        assert.match(first.stderr, /t-bad: FAILED after [0-9.]+s: dial tcp: connection refused/);
        assert.match(first.stderr, /2 of 3 done; failed: t-bad/);
        // The failed run's kubeconfig file is removed too.
        assertPrivateKubeconfigs(engine.kubeconfigs, ["t-ok1", "t-bad", "t-ok2"]);

        engine.options.failing!.clear();
        const again = await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--all-pending", "--kubeconfig-dir", kubeDir]);
        assert.strictEqual(again.code, 0, again.stderr);
        assert.ok(engine.hubRegistered.has("t-bad"));
        assert.strictEqual(engine.stacks.get("prod-tenant-t-ok1")!.ups, 1, "a finished tenant is not pending any more: the re-run leaves it alone");
    });

    it("adds a new tenant's file after its tenant stack registered it", async () => {
        const file = prodWithPending([]);
        fs.writeFileSync(path.join(kubeDir, "acme.yaml"), kubeconfig());
        const engine = prodEngine(file);
        const { code, stderr, stdout } = await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--name", "newco", "--kubeconfig", path.join(kubeDir, "acme.yaml"), "--server", "https://newco.k3s.example.net:6443", "--ring", "main", "--region", "eu-west"]);
        assert.strictEqual(code, 0, stderr);
        assert.deepStrictEqual(tenantOf("newco"), { server: "https://newco.k3s.example.net:6443", ring: "main", region: "eu-west", credentials: "bootstrap", grantedNamespaces: ["voice-agent"] });
        assert.strictEqual(engine.hubRegistered.get("newco"), "fake-token-newco-0");
        assert.match(stdout, /Bootstrapped newco: its tenant stack registered it on the hub/);
    });

    it("a namespace added to the tenant file: the hub refuses it until a bootstrap grants it, which records grantedNamespaces", async () => {
        prodWithPending(["t-ns"]);
        const engine = prodEngine(hubFileOf(root, "prod"));
        const args = ["bootstrap", "--stack", "prod", "--project-root", root, "--name", "t-ns", "--kubeconfig", path.join(kubeDir, "t-ns.yaml")];
        assert.strictEqual((await run(engine, args)).code, 0);
        assert.deepStrictEqual(tenantOf("t-ns").grantedNamespaces, ["voice-agent"]);
        fs.writeFileSync(tenantFileOf("t-ns"), YAML.stringify({ ...tenantOf("t-ns"), namespaces: ["voice-agent", "voice-agent-eu"] }));
        assert.throws(() => checkStack("prod", readView(root, "prod"), root), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.includes("voice-agent-eu") && p.includes("has not granted")));

        const again = await run(engine, args);
        assert.strictEqual(again.code, 0, again.stderr);
        assert.deepStrictEqual(tenantOf("t-ns").grantedNamespaces, ["voice-agent", "voice-agent-eu"]);
        assert.deepStrictEqual(engine.stacks.get("prod-tenant-t-ns")!.settings.registration!.entry.namespaces, ["voice-agent", "voice-agent-eu"]);
        checkStack("prod", readView(root, "prod"), root);
    });

    it("refuses a new tenant the hub stack would not accept before touching any cluster", async () => {
        const file = prodWithPending([]);
        const before = fs.readFileSync(file, "utf8");
        const engine = prodEngine(file);
        const { code, stderr } = await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--name", "newco", "--kubeconfig", path.join(kubeDir, "acme.yaml"), "--server", "https://newco.k3s.example.net:6443", "--ring", "nosuchring", "--region", "eu-west"]);
        assert.strictEqual(code, 1);
        assert.match(stderr, /newco: FAILED after [0-9.]+s: Pulumi\.prod\.yaml would not be a valid configuration:\n.*tenant newco matches no rollout step/);
        assert.deepStrictEqual(engine.calls, []);
        assert.strictEqual(fs.readFileSync(file, "utf8"), before);
        assert.ok(!fs.existsSync(tenantFileOf("newco")), "a refused tenant got a file");
    });

    it("refuses, before any tenant runs, a hub kubeconfig that does not reach agentfleet:hub.server, naming the key and --hub-kubeconfig; --hub-kubeconfig FILE is used instead of KUBECONFIG", async () => {
        prodWithPending(["t-hub"]);
        const engine = prodEngine(hubFileOf(root, "prod"));
        const args = ["bootstrap", "--stack", "prod", "--project-root", root, "--name", "t-hub", "--kubeconfig-dir", kubeDir];
        const wrong = await run(engine, args, otherKubeconfig);
        assert.strictEqual(wrong.code, 1);
        assert.match(wrong.stderr, /agentfleet:hub\.server: the kubeconfig in KUBECONFIG \([^)]*other\.kubeconfig\) points context "default" at https:\/\/staging-hub\.example\.net:6443, not at Pulumi\.prod\.yaml's hub https:\/\/hub\.prod\.agentfleet\.example\.net:6443; nothing was touched\..*--hub-kubeconfig FILE/);
        assert.deepStrictEqual(engine.calls, []);

        const given = await run(engine, [...args, "--hub-kubeconfig", hubKubeconfig], otherKubeconfig);
        assert.strictEqual(given.code, 0, given.stderr);
        assertPrivateKubeconfigs(engine.kubeconfigs, ["t-hub"]);
    });

    it("refuses to register a tenant whose cluster Secret the hub stack's state still holds (two stacks would own it), naming migrate-registration", async () => {
        prodWithPending(["t-held"]);
        const hubState = [{ urn: "urn:pulumi:prod::agentfleet::agentfleet:index:TenantClusters$kubernetes:core/v1:Secret::tenants-t-held", type: "kubernetes:core/v1:Secret" }];
        const engine = prodEngine(hubFileOf(root, "prod"), { hubState });
        const r = await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--name", "t-held", "--kubeconfig-dir", kubeDir]);
        assert.strictEqual(r.code, 1);
        assert.match(r.stderr, /the state of hub stack prod still holds the cluster Secret of t-held: .*npm run tenant -- migrate-registration --stack prod\. Nothing was touched\./);
        assert.deepStrictEqual(engine.calls, []);
    });

    it("rotate is one up of the tenant stack: the next generation alone, registered on the hub in the same run, the old token dropped after it (the engine's order)", async () => {
        prodWithPending(["t-rot"]);
        const engine = prodEngine(hubFileOf(root, "prod"));
        const args = (...extra: string[]) => ["--stack", "prod", "--project-root", root, "--name", "t-rot", "--kubeconfig-dir", kubeDir, ...extra];
        assert.strictEqual((await run(engine, ["bootstrap", ...args()])).code, 0);
        const rotated = await run(engine, ["rotate", ...args()]);
        assert.strictEqual(rotated.code, 0, rotated.stderr);
        assert.match(rotated.stdout, /Rotated the token of t-rot, each in one up of its tenant stack: the hub's cluster Secret holds the new token, and the previous one is revoked\./);
        assert.deepStrictEqual(engine.calls.filter((c) => c.startsWith("up")), ["up prod-tenant-t-rot generations 0", "up prod-tenant-t-rot generations 1"]);
        assert.strictEqual(engine.hubRegistered.get("t-rot"), "fake-token-t-rot-1");
        assert.strictEqual((await run(engine, ["rotate", ...args()])).code, 0);
        assert.deepStrictEqual(engine.stacks.get("prod-tenant-t-rot")!.settings.tokenGenerations, [2]);
        for (const seen of engine.kubeconfigs) assertPrivateKubeconfigs([seen], ["t-rot"]);
    });

    it("rotate --finish is gone (rotation is one up): a usage error saying so, nothing run", async () => {
        prodWithPending(["t-fin"]);
        const engine = prodEngine(hubFileOf(root, "prod"));
        const r = await run(engine, ["rotate", "--stack", "prod", "--project-root", root, "--name", "t-fin", "--kubeconfig-dir", kubeDir, "--finish"]);
        assert.strictEqual(r.code, 2);
        assert.match(r.stderr, /rotate --finish \(and --deployed-ref\) are gone: rotate is one up of each tenant stack/);
        assert.deepStrictEqual(engine.calls, []);
    });

    it("reads the token the hub registered from an exported state (as the provider stores it: data, base64, in a secret envelope), and nothing for another tenant", () => {
        // The shape `pulumi stack export --show-secrets` gave for a cluster Secret on the real engines.
        const b64 = (text: string) => Buffer.from(text).toString("base64");
        const clusterSecret = (tenant: string, config: string) => ({
            type: "kubernetes:core/v1:Secret",
            inputs: { metadata: { name: `cluster-${tenant}`, labels: { "argocd.argoproj.io/secret-type": "cluster" } }, data: { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", plaintext: JSON.stringify({ config: b64(config), name: b64(tenant) }) } },
        });
        const resources = [clusterSecret("t-a", JSON.stringify({ bearerToken: "token-a", tlsClientConfig: {} })), clusterSecret("t-b", "not json")];
        assert.strictEqual(registeredTokenIn(resources, "t-a"), "token-a");
        assert.strictEqual(registeredTokenIn(resources, "t-b"), undefined);
        assert.strictEqual(registeredTokenIn(resources, "t-c"), undefined);
    });

    it("remove destroys a bootstrap tenant's stack with both contexts (its registration leaves the hub, its token is revoked), then removes its file", async () => {
        prodWithPending(["t-gone"]);
        const engine = prodEngine(hubFileOf(root, "prod"));
        await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--name", "t-gone", "--kubeconfig-dir", kubeDir]);
        const { code, stderr, stdout } = await run(engine, ["remove", "--stack", "prod", "--project-root", root, "--name", "t-gone", "--kubeconfig-dir", kubeDir]);
        assert.strictEqual(code, 0, stderr);
        assert.ok(engine.calls.includes("destroy prod-tenant-t-gone"));
        assert.strictEqual(engine.kubeconfigs.length, 2);
        assertPrivateKubeconfigs(engine.kubeconfigs.slice(1), ["t-gone"]);
        assert.ok(!engine.stacks.has("prod-tenant-t-gone"));
        assert.ok(!engine.hubRegistered.has("t-gone"), "the registration stayed on the hub");
        assert.ok(!fs.existsSync(tenantFileOf("t-gone")), "remove left the tenant's file");
        assert.match(stdout, /Removed tenant t-gone: its tenant stack prod-tenant-t-gone is destroyed/);
    });
});

describe("npm run tenant -- migrate (fake Automation API)", function () {
    this.timeout(60000);
    const hubUrn = (type: string, name: string, parent?: string) => `urn:pulumi:prod::agentfleet::${parent ? `agentfleet:index:TenantCluster$` : ""}${type}::${name}`;
    const component = hubUrn("agentfleet:index:TenantCluster", "t-old");
    const state = [
        { urn: component, type: "agentfleet:index:TenantCluster" },
        { urn: hubUrn("pulumi:providers:kubernetes", "t-old-kubernetes", "p"), type: "pulumi:providers:kubernetes", parent: component },
        { urn: hubUrn("kubernetes:core/v1:ServiceAccount", "t-old-manager", "p"), type: "kubernetes:core/v1:ServiceAccount", parent: component },
        { urn: hubUrn("kubernetes:core/v1:Secret", "t-old-manager-token", "p"), type: "kubernetes:core/v1:Secret", parent: component },
        { urn: hubUrn("kubernetes:core/v1:Secret", "t-old-cluster-secret", "p"), type: "kubernetes:core/v1:Secret", parent: component },
    ];

    it("moves only the in-tenant resources: not the provider, not the hub's cluster Secret", () => {
        assert.deepStrictEqual(inTenantResources(state, "t-old"), [state[2].urn, state[3].urn]);
        assert.deepStrictEqual(inTenantResources(state, "t-other"), []);
    });

    it("is refused now that the hub stack holds no tenant credential (it stored the token there), naming the way through, and touches nothing", async () => {
        prodWithPending(["t-old"]);
        const engine = new FakeOnboardingEngine(hubFileOf(root, "prod"), { hubState: state });
        const r = await run(engine, ["migrate", "--stack", "prod", "--project-root", root, "--name", "t-old", "--kubeconfig", path.join(kubeDir, "t-old.yaml")]);
        assert.strictEqual(r.code, 1);
        assert.match(r.stderr, /agentfleet before tenant stacks/);
        assert.match(r.stderr, /npm run tenant -- migrate-registration --stack prod/);
        assert.deepStrictEqual(engine.calls, []);
    });
});

describe("forEachTenant", () => {
    it("never runs more than the bound, and reports outcomes in the order given", async () => {
        let running = 0;
        let max = 0;
        const lines: string[] = [];
        const outcomes = await forEachTenant(
            ["a", "b", "c", "d"],
            async (t) => {
                max = Math.max(max, ++running);
                await new Promise((r) => setTimeout(r, t === "a" ? 40 : 10));
                running--;
                if (t === "c") throw new Error("boom");
                return t.toUpperCase();
            },
            { parallel: 3, log: (l) => lines.push(l), action: "test" },
        );
        assert.strictEqual(max, 3);
        assert.deepStrictEqual(outcomes.map((o) => [o.tenant, o.ok, o.value ?? o.error]), [["a", true, "A"], ["b", true, "B"], ["c", false, "boom"], ["d", true, "D"]]);
        assert.match(lines[lines.length - 1], /3 of 4 done; failed: c/);
    });

    it("shows elapsed time as seconds under a minute, then minutes and whole seconds, never 60 seconds (the 1,000-tenant bench printed 26m60s)", () => {
        assert.deepStrictEqual([12_340, 59_949, 59_960, 60_000, 1_619_600, 1_619_400, 3_600_000].map(seconds), ["12.3s", "59.9s", "1m00s", "1m00s", "27m00s", "26m59s", "60m00s"]);
    });
});

describe("a killed onboarding run's private kubeconfig", () => {
    it("is removed by the next run: a folder named after a pid that is gone goes, one of a live process stays", async () => {
        const { spawnSync } = await import("child_process");
        const dead = spawnSync(process.execPath, ["-e", "process.exit(0)"]).pid!;
        const tmp = os.tmpdir();
        const orphan = fs.mkdtempSync(path.join(tmp, `agentfleet-kubeconfig-${dead}-`));
        const live = fs.mkdtempSync(path.join(tmp, `agentfleet-kubeconfig-${process.pid}-`));
        fs.writeFileSync(path.join(orphan, "kubeconfig"), "a killed run's admin kubeconfig", { mode: 0o600 });
        try {
            await withTenantKubeconfig(kubeconfig(), async (env) => assert.ok(fs.existsSync(env.KUBECONFIG)));
            assert.ok(!fs.existsSync(orphan), `${orphan} is left behind`);
            assert.ok(fs.existsSync(live), "a live process's kubeconfig folder was removed");
        } finally {
            for (const dir of [orphan, live]) fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe("a failed onboarding run's message", () => {
    it("gives the engine's error diagnostics (the provider's reasons), each once, not the summary lines that follow them", () => {
        const output = [
            "Updating (prod-tenant-acme):",
            "  kubernetes:core/v1:ServiceAccount acme-manager creating (0s) error: serviceaccounts is forbidden: User \"ops\" cannot create resource",
            "Diagnostics:",
            "  kubernetes:core/v1:ServiceAccount (acme-manager):",
            "    error: serviceaccounts is forbidden: User \"ops\" cannot create resource \"serviceaccounts\" in API group \"\" in the namespace \"kube-system\"",
            "  pulumi:pulumi:Stack (agentfleet-tenant-prod-tenant-acme):",
            "    error: update failed",
            "    error: update failed",
            "Resources:",
            "    8 errored",
            "Duration: 3s",
        ].join("\n");
        assert.strictEqual(failureReason(output), 'error: serviceaccounts is forbidden: User "ops" cannot create resource "serviceaccounts" in API group "" in the namespace "kube-system"\nerror: update failed');
        assert.strictEqual(failureReason("exit code 1\nno stack named prod-tenant-acme"), "exit code 1\nno stack named prod-tenant-acme");
    });

    it("puts the provider's reason first when the engine prints its verdict before it (as a CI run did)", () => {
        const output = [
            "error: update failed",
            "error: failed to read resource state due to unreachable cluster. If the cluster was deleted, ...",
        ].join("\n");
        assert.strictEqual(failureReason(output), "error: failed to read resource state due to unreachable cluster. If the cluster was deleted, ...\nerror: update failed");
    });
});
