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
import { forEachTenant } from "../tenants/parallel";
import { main } from "../commands/tenant";
import { FakeOnboardingEngine, type SeenKubeconfig, hubFileOf } from "./doubles/fake-onboarding-engine";
import { ConfigError } from "../stacks/config";
import { checkStack, readView } from "../tenants/stack-file";
import { ONBOARDING_CONTEXT, withTenantKubeconfig } from "../tenants/kubeconfig";
import { git, projectCopy } from "./helpers";

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
/** What deploy.yml applies: the stack file committed at origin/main (as a clone that fetched sees it). */
const publishMain = () => git(root, "update-ref", "refs/remotes/origin/main", "HEAD");
/** Merges the local stack file's change to main, and fetches. */
const mergeToMain = (file: string) => {
    git(root, "commit", "-qm", "merge the stack file change", "--", file);
    publishMain();
};
before(() => {
    root = projectCopy();
    kubeDir = fs.mkdtempSync(path.join(root, "kube-"));
    publishMain();
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Adds pending bootstrap tenants (tenant files without credentials) to a fresh copy of the prod stack file and its inventory. */
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

/** A prod tenant's file in the project copy. */
const tenantFileOf = (name: string) => path.join(root, "fleet", "prod", `${name}.yaml`);
/** A prod tenant's entry as its file holds it. */
const tenantOf = (name: string) => YAML.parse(fs.readFileSync(tenantFileOf(name), "utf8"));

async function run(engine: FakeOnboardingEngine, args: string[]) {
    let stdout = "";
    let stderr = "";
    const code = await main(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: process.env, cwd: root, engine: () => engine });
    return { code, stdout, stderr };
}

/**
 * Each tenant's run got its own KUBECONFIG: a 0600 file, alone in its folder, whose one context is
 * ONBOARDING_CONTEXT and whose server is the tenant's; every file and folder is gone afterwards.
 */
function assertPrivateKubeconfigs(kubeconfigs: SeenKubeconfig[], tenants: string[]): void {
    const seen = tenants.map((t) => kubeconfigs.find((k) => k.stack === `prod-tenant-${t}`)!);
    assert.ok(seen.every(Boolean), `a tenant's run had no KUBECONFIG: ${JSON.stringify(kubeconfigs.map((k) => k.stack))}`);
    assert.strictEqual(new Set(seen.map((k) => path.dirname(k.file))).size, tenants.length, "two tenants' runs shared a kubeconfig folder");
    seen.forEach((k, i) => {
        assert.strictEqual(k.mode, 0o600, `${k.file} has mode ${k.mode.toString(8)}`);
        const doc = YAML.parse(k.text);
        assert.deepStrictEqual([doc["current-context"], doc.contexts.map((c: { name: string }) => c.name)], [ONBOARDING_CONTEXT, [ONBOARDING_CONTEXT]]);
        assert.strictEqual(doc.clusters[0].cluster.server, `https://${tenants[i]}.k3s.example.net:6443`);
        assert.ok(!fs.existsSync(path.dirname(k.file)), `${k.file} is left behind`);
    });
}

const stored = (file: string, tenant: string) => Object.keys(YAML.parse(fs.readFileSync(file, "utf8")).config["agentfleet:tenantCredentials"][tenant] ?? {}).sort();

describe("npm run tenant -- bootstrap (fake Automation API)", function () {
    this.timeout(120000);

    it("--all-pending onboards every pending tenant with at most --parallel at once, and stores only token and CA in the hub", async () => {
        const names = ["t-a", "t-b", "t-c", "t-d", "t-e"];
        const file = prodWithPending(names);
        const engine = new FakeOnboardingEngine(file, { upMs: 50 });
        const { code, stderr } = await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--all-pending", "--kubeconfig-dir", kubeDir, "--parallel", "2"]);
        assert.strictEqual(code, 0, stderr);
        assert.strictEqual(engine.maxRunning, 2);
        for (const n of names) {
            assert.deepStrictEqual(stored(file, n), ["bearerToken", "caData"]);
            assert.ok(engine.stacks.has(`prod-tenant-${n}`));
            assert.match(stderr, new RegExp(`\\[ *[0-9.]+s\\] ${n}: done in [0-9.]+s`));
        }
        // The kubeconfig reached each onboarding stack's run only (its loopback server replaced), never the hub file.
        assert.ok(!/kubeconfig:/.test(fs.readFileSync(file, "utf8")), "a kubeconfig key in the hub stack file");
        assertPrivateKubeconfigs(engine.kubeconfigs, names);
    });

    it("one failing tenant never blocks the others: the rest finish, the summary names it, exit 1; a re-run finishes it", async () => {
        const file = prodWithPending(["t-ok1", "t-bad", "t-ok2"]);
        const engine = new FakeOnboardingEngine(file, { failing: new Map([["t-bad", "dial tcp: connection refused"]]) });
        const first = await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--all-pending", "--kubeconfig-dir", kubeDir, "--parallel", "1"]);
        assert.strictEqual(first.code, 1);
        assert.deepStrictEqual(stored(file, "t-ok1"), ["bearerToken", "caData"]);
        assert.deepStrictEqual(stored(file, "t-ok2"), ["bearerToken", "caData"]);
        assert.deepStrictEqual(stored(file, "t-bad"), []);
        assert.match(first.stderr, /t-bad: FAILED after [0-9.]+s: dial tcp: connection refused/);
        assert.match(first.stderr, /2 of 3 done; failed: t-bad/);
        // The failed run's kubeconfig file is removed too.
        assertPrivateKubeconfigs(engine.kubeconfigs, ["t-ok1", "t-bad", "t-ok2"]);

        engine.options.failing!.clear();
        const again = await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--all-pending", "--kubeconfig-dir", kubeDir]);
        assert.strictEqual(again.code, 0, again.stderr);
        assert.deepStrictEqual(stored(file, "t-bad"), ["bearerToken", "caData"]);
        assert.strictEqual(engine.stacks.get("prod-tenant-t-ok1")!.ups, 1, "a finished tenant is not pending any more: the re-run leaves it alone");
    });

    it("adds a new tenant's entry together with its credential, after its onboarding stack is up", async () => {
        const file = prodWithPending([]);
        fs.writeFileSync(path.join(kubeDir, "acme.yaml"), kubeconfig());
        const engine = new FakeOnboardingEngine(file);
        const { code, stderr } = await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--name", "newco", "--kubeconfig", path.join(kubeDir, "acme.yaml"), "--server", "https://newco.k3s.example.net:6443", "--ring", "main", "--region", "eu-west"]);
        assert.strictEqual(code, 0, stderr);
        assert.deepStrictEqual(tenantOf("newco"), { server: "https://newco.k3s.example.net:6443", ring: "main", region: "eu-west", credentials: "bootstrap", grantedNamespaces: ["voice-agent"] });
        assert.deepStrictEqual(stored(file, "newco"), ["bearerToken", "caData"]);
    });

    it("a namespace added to the hub entry: the hub refuses it until a bootstrap grants it, which records grantedNamespaces", async () => {
        const file = prodWithPending(["t-ns"]);
        const engine = new FakeOnboardingEngine(file);
        const args = ["bootstrap", "--stack", "prod", "--project-root", root, "--name", "t-ns", "--kubeconfig", path.join(kubeDir, "t-ns.yaml")];
        assert.strictEqual((await run(engine, args)).code, 0);
        assert.deepStrictEqual(tenantOf("t-ns").grantedNamespaces, ["voice-agent"]);
        fs.writeFileSync(tenantFileOf("t-ns"), YAML.stringify({ ...tenantOf("t-ns"), namespaces: ["voice-agent", "voice-agent-eu"] }));
        assert.throws(() => checkStack("prod", readView(root, "prod"), root), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.includes("voice-agent-eu") && p.includes("has not granted")));

        const again = await run(engine, args);
        assert.strictEqual(again.code, 0, again.stderr);
        assert.deepStrictEqual(tenantOf("t-ns").grantedNamespaces, ["voice-agent", "voice-agent-eu"]);
        checkStack("prod", readView(root, "prod"), root);
    });

    it("refuses a new tenant the hub stack would not accept before touching any cluster", async () => {
        const file = prodWithPending([]);
        const before = fs.readFileSync(file, "utf8");
        const engine = new FakeOnboardingEngine(file);
        const { code, stderr } = await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--name", "newco", "--kubeconfig", path.join(kubeDir, "acme.yaml"), "--server", "https://newco.k3s.example.net:6443", "--ring", "nosuchring", "--region", "eu-west"]);
        assert.strictEqual(code, 1);
        assert.match(stderr, /newco: FAILED after [0-9.]+s: Pulumi\.prod\.yaml would not be a valid configuration:\n.*tenant newco matches no rollout step/);
        assert.deepStrictEqual(engine.calls, []);
        assert.strictEqual(fs.readFileSync(file, "utf8"), before);
        assert.ok(!fs.existsSync(tenantFileOf("newco")), "a refused tenant got a file");
    });

    it("rotate adds a token generation and stores the new token while the old stays valid; --finish revokes the old one only after the hub's pulumi up registered the new and main's stack file holds it", async () => {
        const file = prodWithPending(["t-rot"]);
        const engine = new FakeOnboardingEngine(file);
        const args = (...extra: string[]) => ["--stack", "prod", "--project-root", root, "--name", "t-rot", "--kubeconfig-dir", kubeDir, ...extra];
        assert.strictEqual((await run(engine, ["bootstrap", ...args()])).code, 0);
        mergeToMain(file);
        engine.hubUp(["t-rot"]);
        const rotated = await run(engine, ["rotate", ...args()]);
        assert.strictEqual(rotated.code, 0, rotated.stderr);
        assert.match(rotated.stdout, /The old token stays valid[^\n]*\n {2}npm run tenant -- rotate --finish --stack prod --name t-rot --kubeconfig-dir /);
        assert.deepStrictEqual(engine.calls.filter((c) => c.startsWith("up") || c.startsWith("store")), ["up prod-tenant-t-rot generations 0", "store t-rot", "up prod-tenant-t-rot generations 0,1", "store t-rot"]);

        // Before the hub's pulumi up: refused, both tokens kept; rotating again carries on the same rotation (re-runnable).
        const early = await run(engine, ["rotate", ...args("--finish")]);
        assert.strictEqual(early.code, 1);
        assert.match(early.stderr, /t-rot: FAILED after [0-9.]+s: tenant t-rot: the hub's last pulumi up did not register token 1 yet, so Argo CD still uses token 0; run `pulumi up --stack prod` first/);
        assert.strictEqual((await run(engine, ["rotate", ...args()])).code, 0);
        assert.deepStrictEqual(engine.stacks.get("prod-tenant-t-rot")!.settings.tokenGenerations, [0, 1]);

        // The local pulumi up registered token 1, but main's stack file holds token 0: deploy.yml would re-apply it on the next merge.
        engine.hubUp(["t-rot"]);
        const unmerged = await run(engine, ["rotate", ...args("--finish")]);
        assert.strictEqual(unmerged.code, 1);
        assert.match(unmerged.stderr, /t-rot: FAILED after [0-9.]+s: tenant t-rot: Pulumi\.prod\.yaml at origin\/main does not hold token 1 \(tenantCredentials\.t-rot\.bearerToken\), so deploy\.yml would re-apply token 0 on its next run; merge the rotation's change of Pulumi\.prod\.yaml to origin\/main and let deploy\.yml apply it/);
        assert.deepStrictEqual(engine.stacks.get("prod-tenant-t-rot")!.settings.tokenGenerations, [0, 1]);

        mergeToMain(file);
        const finished = await run(engine, ["rotate", ...args("--finish")]);
        assert.strictEqual(finished.code, 0, finished.stderr);
        assert.match(finished.stdout, /Revoked the previous token of t-rot/);
        assert.deepStrictEqual(engine.stacks.get("prod-tenant-t-rot")!.settings.tokenGenerations, [1]);
        assert.strictEqual(engine.calls.filter((c) => c.startsWith("store")).length, 3, "finishing stores nothing in the hub stack");
        // Bootstrap, rotate (twice) and --finish: each run had the tenant's kubeconfig in a file of its own.
        assert.deepStrictEqual(engine.kubeconfigs.map((k) => k.stack), Array(4).fill("prod-tenant-t-rot"));
        for (const seen of engine.kubeconfigs) assertPrivateKubeconfigs([seen], ["t-rot"]);
    });

    it("rotate --finish refuses, before any tenant, when the deploying ref is missing or the project is not in git, naming --deployed-ref; --deployed-ref none skips the check", async () => {
        const file = prodWithPending(["t-ref"]);
        const engine = new FakeOnboardingEngine(file);
        const args = (...extra: string[]) => ["--stack", "prod", "--project-root", root, "--name", "t-ref", "--kubeconfig-dir", kubeDir, ...extra];
        assert.strictEqual((await run(engine, ["bootstrap", ...args()])).code, 0);
        assert.strictEqual((await run(engine, ["rotate", ...args()])).code, 0);
        engine.hubUp(["t-ref"]);
        const ups = engine.calls.length;

        const missing = await run(engine, ["rotate", ...args("--finish", "--deployed-ref", "origin/release")]);
        assert.strictEqual(missing.code, 1);
        assert.match(missing.stderr, /^tenant rotate: git has no ref origin\/release in .* \(run git fetch\?\), so the Pulumi\.prod\.yaml deploy\.yml applies cannot be read: pass --deployed-ref REF .*, or --deployed-ref none to skip this check knowingly\n$/);

        const elsewhere = fs.mkdtempSync(path.join(require("os").tmpdir(), "agentfleet-nogit-"));
        try {
            for (const f of ["Pulumi.yaml", "Pulumi.prod.yaml"]) fs.copyFileSync(path.join(root, f), path.join(elsewhere, f));
            const notGit = await run(new FakeOnboardingEngine(hubFileOf(elsewhere, "prod")), ["rotate", "--stack", "prod", "--project-root", elsewhere, "--name", "t-ref", "--kubeconfig-dir", kubeDir, "--finish"]);
            assert.strictEqual(notGit.code, 1);
            assert.match(notGit.stderr, /is not in a git repository, so the Pulumi\.prod\.yaml deploy\.yml applies cannot be read: pass --deployed-ref REF/);
        } finally {
            fs.rmSync(elsewhere, { recursive: true, force: true });
        }
        assert.strictEqual(engine.calls.length, ups, "nothing ran on any tenant");
        assert.deepStrictEqual(engine.stacks.get("prod-tenant-t-ref")!.settings.tokenGenerations, [0, 1]);

        const skipped = await run(engine, ["rotate", ...args("--finish", "--deployed-ref", "none")]);
        assert.strictEqual(skipped.code, 0, skipped.stderr);
        assert.deepStrictEqual(engine.stacks.get("prod-tenant-t-ref")!.settings.tokenGenerations, [1]);
    });

    it("reads the token the hub registered from its exported state (as the provider stores it: data, base64, in a secret envelope), and nothing for another tenant", () => {
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

    it("remove destroys a bootstrap tenant's onboarding stack, then removes it from the hub stack", async () => {
        const file = prodWithPending(["t-gone"]);
        const engine = new FakeOnboardingEngine(file);
        await run(engine, ["bootstrap", "--stack", "prod", "--project-root", root, "--name", "t-gone", "--kubeconfig-dir", kubeDir]);
        const { code, stderr } = await run(engine, ["remove", "--stack", "prod", "--project-root", root, "--name", "t-gone", "--kubeconfig-dir", kubeDir]);
        assert.strictEqual(code, 0, stderr);
        assert.ok(engine.calls.includes("destroy prod-tenant-t-gone"));
        assert.strictEqual(engine.kubeconfigs.length, 2);
        assertPrivateKubeconfigs(engine.kubeconfigs.slice(1), ["t-gone"]);
        assert.ok(!engine.stacks.has("prod-tenant-t-gone"));
        assert.ok(!fs.readFileSync(file, "utf8").includes("t-gone"));
        assert.ok(!fs.existsSync(tenantFileOf("t-gone")), "remove left the tenant's file");
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

    it("moves, adopts, then swaps the hub's kubeconfig for token and CA; a second run moves nothing and still succeeds", async () => {
        const file = prodWithPending(["t-old"]);
        const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"));
        doc.setIn(["config", "agentfleet:tenantCredentials", "t-old", "kubeconfig"], doc.createNode({ secure: "v1:fake:kubeconfig" }));
        fs.writeFileSync(file, doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
        const engine = new FakeOnboardingEngine(file, { hubState: state });
        const args = ["migrate", "--stack", "prod", "--project-root", root, "--name", "t-old", "--kubeconfig", path.join(kubeDir, "t-old.yaml")];
        const first = await run(engine, args);
        assert.strictEqual(first.code, 0, first.stderr);
        assert.deepStrictEqual(engine.calls, ["move prod-tenant-t-old 2", "up prod-tenant-t-old generations 0", "store t-old remove tenantCredentials.t-old.kubeconfig"]);
        assertPrivateKubeconfigs(engine.kubeconfigs, ["t-old"]);
        assert.deepStrictEqual(stored(file, "t-old"), ["bearerToken", "caData"]);
        const second = await run(engine, args);
        assert.strictEqual(second.code, 0, second.stderr);
        assert.deepStrictEqual(engine.calls.slice(3), ["up prod-tenant-t-old generations 0", "store t-old"]);
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
