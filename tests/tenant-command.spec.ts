/**
 * `npm run tenant -- <add|list|remove>`, run on a temporary copy of the project (Pulumi.yaml and
 * the committed dev and prod stack files) with generated kubeconfigs holding fake credentials.
 * A fake `pulumi` on PATH records each call (arguments, directory, standard input); an empty PATH
 * stands for a machine without the Pulumi CLI. A bootstrap tenant's onboarding stack runs on the
 * test-only fake of the Automation API (tests/doubles/fake-onboarding-engine.ts; its orchestration is
 * specified in tests/onboarding.spec.ts).
 */
import { strict as assert } from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { ROOT } from "../evaluator/evaluate";
import { withStackLock } from "../tenants/stack-lock";
import { type CommandIO, addTenant, main, parseKubeconfig } from "../commands/tenant";
import { readView, writeView } from "../tenants/stack-file";
import { FakeOnboardingEngine, hubFileOf } from "./doubles/fake-onboarding-engine";
import { git } from "./helpers";

const base64 = (s: string) => Buffer.from(s).toString("base64");

/** Fake credential material: recognisable, and checked never to reach the terminal. */
const FAKE = {
    caData: base64("-----BEGIN CERTIFICATE-----\nFAKE-CA-FOR-TESTS-ONLY\n-----END CERTIFICATE-----\n"),
    clientCertificate: base64("FAKE-CLIENT-CERTIFICATE-FOR-TESTS-ONLY"),
    clientKey: base64("FAKE-CLIENT-KEY-FOR-TESTS-ONLY"),
    token: "fake-token-for-tests-only-0123456789",
};

const ACME_SERVER = "https://acme.k3s.example.net:6443";
const K3S_DEFAULT_SERVER = "https://127.0.0.1:6443";

interface KubeconfigSpec {
    /** Context names; each has a cluster and a user of the same name. */
    contexts?: string[];
    current?: string | null;
    server?: string;
    ca?: "data" | "file" | "none";
    user?: "client-certificate" | "token";
}

/** A kubeconfig shaped like the k3s admin kubeconfig (/etc/rancher/k3s/k3s.yaml), with fake data. */
function kubeconfigText(spec: KubeconfigSpec = {}): string {
    const contexts = spec.contexts ?? ["default"];
    const ca = spec.ca ?? "data";
    return YAML.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: contexts.map((name) => ({
            name,
            cluster: {
                server: spec.server ?? K3S_DEFAULT_SERVER,
                ...(ca === "data" ? { "certificate-authority-data": FAKE.caData } : ca === "file" ? { "certificate-authority": "/var/lib/rancher/k3s/server/tls/server-ca.crt" } : {}),
            },
        })),
        contexts: contexts.map((name) => ({ name, context: { cluster: name, user: name } })),
        ...(spec.current === null ? {} : { "current-context": spec.current ?? contexts[0] }),
        users: contexts.map((name) => ({
            name,
            user: spec.user === "token" ? { token: FAKE.token } : { "client-certificate-data": FAKE.clientCertificate, "client-key-data": FAKE.clientKey },
        })),
    });
}

interface PulumiCall {
    args: string[];
    cwd: string;
    stdin: string;
}

interface Project {
    root: string;
    /** PATH with a fake `pulumi` that records its calls. */
    withPulumi: string;
    /** PATH without any `pulumi`. */
    withoutPulumi: string;
    calls(): PulumiCall[];
    /** The stack's view as the tenant commands edit it: its stack file with its tenant files listed (tenants/stack-file.ts). */
    stackText(stack: string): string;
    /** Writes a view back: the stack file and the tenant files. */
    writeStack(stack: string, view: string): void;
    /** A tenant file's text, or undefined when there is none. */
    tenantFile(stack: string, name: string): string | undefined;
    writeKubeconfig(name: string, text: string): string;
}

let project: Project;
/** The fake onboarding engine of each hub stack of the current test. */
let engines: Map<string, FakeOnboardingEngine>;
const engineOf = (stack: string): FakeOnboardingEngine => {
    if (!engines.has(stack)) engines.set(stack, new FakeOnboardingEngine(hubFileOf(project.root, stack)));
    return engines.get(stack)!;
};

function makeProject(options: { pulumiExitCode?: number } = {}): Project {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-tenant-"));
    for (const file of ["Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"]) fs.copyFileSync(path.join(ROOT, file), path.join(root, file));
    for (const stack of ["dev", "prod"]) fs.cpSync(path.join(ROOT, "fleet", stack), path.join(root, "fleet", stack), { recursive: true });
    const bin = path.join(root, ".bin");
    const empty = path.join(root, ".empty-bin");
    const calls = path.join(root, ".pulumi-calls");
    for (const dir of [bin, empty, calls]) fs.mkdirSync(dir);
    // A clone whose origin/main (what deploy.yml applies) holds the committed stack files.
    fs.writeFileSync(path.join(root, ".gitignore"), ".*\n");
    git(root, "init", "-q", "-b", "main");
    git(root, "add", "-A");
    git(root, "commit", "-qm", "base");
    git(root, "update-ref", "refs/remotes/origin/main", "HEAD");
    fs.writeFileSync(
        path.join(bin, "pulumi"),
        `#!${process.execPath}
const fs = require("fs");
const n = fs.readdirSync(${JSON.stringify(calls)}).length;
fs.writeFileSync(${JSON.stringify(calls)} + "/" + n + ".json", JSON.stringify({ args: process.argv.slice(2), cwd: process.cwd(), stdin: fs.readFileSync(0, "utf8") }));
if (${options.pulumiExitCode ?? 0}) process.stderr.write("error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE\\n");
process.exit(${options.pulumiExitCode ?? 0});
`,
        { mode: 0o755 },
    );
    return {
        root,
        withPulumi: bin,
        withoutPulumi: empty,
        calls: () =>
            fs
                .readdirSync(calls)
                .sort((a, b) => parseInt(a) - parseInt(b))
                .map((f) => JSON.parse(fs.readFileSync(path.join(calls, f), "utf8"))),
        stackText: (stack) => readView(root, stack),
        writeStack: (stack, view) => writeView(root, stack, view),
        tenantFile: (stack, name) => (fs.existsSync(path.join(root, "fleet", stack, `${name}.yaml`)) ? fs.readFileSync(path.join(root, "fleet", stack, `${name}.yaml`), "utf8") : undefined),
        writeKubeconfig: (name, text) => {
            fs.writeFileSync(path.join(root, name), text);
            return `./${name}`;
        },
    };
}

interface Result {
    code: number;
    stdout: string;
    stderr: string;
}

/** The hub servers of the committed stacks (agentfleet:hub.server). */
const HUB_SERVERS: Record<string, string> = { dev: "https://hub.dev.agentfleet.example.net:6443", prod: "https://hub.prod.agentfleet.example.net:6443" };
const HUB_TOKEN = "fake-hub-admin-token-for-tests";
/** The stack's hub kubeconfig file in the project (what KUBECONFIG names in these specs). */
const hubKubeconfigOf = (stack: string): string => {
    const file = path.join(project.root, `.hub-${stack}.kubeconfig`);
    if (!fs.existsSync(file)) fs.writeFileSync(file, YAML.stringify({ ...YAML.parse(kubeconfigText({ server: HUB_SERVERS[stack] ?? HUB_SERVERS.dev })), users: [{ name: "default", user: { token: HUB_TOKEN } }] }));
    return file;
};

/** Runs the command in-process on the temporary project, KUBECONFIG naming the stack's hub; fails on any credential content in the output. */
async function tenant(argv: string[], options: { pulumi?: boolean; cwd?: string } = {}): Promise<Result> {
    let stdout = "";
    let stderr = "";
    const stack = argv[argv.indexOf("--stack") + 1] ?? "dev";
    const io: CommandIO = {
        stdout: (t) => void (stdout += t),
        stderr: (t) => void (stderr += t),
        env: { ...process.env, KUBECONFIG: hubKubeconfigOf(stack), PATH: options.pulumi === false ? project.withoutPulumi : project.withPulumi },
        cwd: options.cwd ?? project.root,
        engine: (hub) => engineOf(hub.stack),
    };
    const code = await main([...argv, "--project-root", project.root], io);
    for (const [what, value] of Object.entries({ ...FAKE, hubToken: HUB_TOKEN })) {
        assert.ok(!stdout.includes(value) && !stderr.includes(value), `the output contains the kubeconfig's ${what}:\n${stdout}\n${stderr}`);
    }
    return { code, stdout, stderr };
}

const ADD_ACME = ["add", "--stack", "dev", "--name", "acme", "--kubeconfig", "./acme.k3s.yaml", "--server", ACME_SERVER, "--ring", "canary", "--region", "eu-west"];
/** A tenant with a pre-issued token: its kubeconfig's token and CA are registered by a tenant stack of its own. */
const ADD_TOKEN = [...ADD_ACME, "--credentials", "token"];

/** `args` with `--flag value` replaced (or appended). */
function withOption(args: string[], flag: string, value: string): string[] {
    const i = args.indexOf(flag);
    return i < 0 ? [...args, flag, value] : [...args.slice(0, i + 1), value, ...args.slice(i + 2)];
}

/** Lines removed from and added to `before` (longest common subsequence of lines). */
function lineChanges(before: string, after: string): { removed: string[]; added: string[] } {
    const [a, b] = [before.split("\n"), after.split("\n")];
    const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
    for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    const removed: string[] = [];
    const added: string[] = [];
    let [i, j] = [0, 0];
    while (i < a.length || j < b.length) {
        if (i < a.length && j < b.length && a[i] === b[j]) [i, j] = [i + 1, j + 1];
        else if (j < b.length && (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])) added.push(b[j++]);
        else removed.push(a[i++]);
    }
    return { removed, added };
}

const configOf = (text: string) => YAML.parse(text).config;
const tenantsOf = (text: string): Array<Record<string, unknown>> => configOf(text)["agentfleet:tenants"];

beforeEach(() => {
    project = makeProject();
    engines = new Map();
    project.writeKubeconfig("acme.k3s.yaml", kubeconfigText());
});
/** Marks the committed tenants of `stack` as having their tenant stacks (bootstrapped or registered before). */
const withTenantStacks = (stack: string, ...tenants: string[]) => {
    for (const tenant of tenants) engineOf(stack).stacks.set(`${stack}-tenant-${tenant}`, { settings: { tenant, namespaces: ["voice-agent"], tokenGenerations: [0] }, ups: 1 });
};
afterEach(() => fs.rmSync(project.root, { recursive: true, force: true }));

describe("npm run tenant -- add", () => {
    it("bootstraps a credentials: bootstrap tenant through its onboarding stack and appends it with the given fields", async () => {
        const args = [...ADD_ACME, "--env", "dev", "--namespace", "voice-agent", "--namespace", "voice-agent-eu", "--label", "tier=gold"];
        const result = await tenant(args);
        assert.equal(result.code, 0, result.stderr);
        const tenants = tenantsOf(project.stackText("dev"));
        assert.deepEqual(tenants.find((t) => t.name === "acme"), {
            name: "acme",
            server: ACME_SERVER,
            env: "dev",
            ring: "canary",
            region: "eu-west",
            credentials: "bootstrap",
            labels: { tier: "gold" },
            namespaces: ["voice-agent", "voice-agent-eu"],
            grantedNamespaces: ["voice-agent", "voice-agent-eu"],
        });
        assert.deepEqual(engineOf("dev").calls, ["up dev-tenant-acme generations 0"]);
        assert.deepEqual(engineOf("dev").stacks.get("dev-tenant-acme")!.settings.namespaces, ["voice-agent", "voice-agent-eu"]);
        assert.deepEqual(engineOf("dev").stacks.get("dev-tenant-acme")!.settings.registration!.entry.labels, { tier: "gold" });
        assert.equal(engineOf("dev").hubRegistered.get("acme"), "fake-token-acme-0");
        assert.equal(configOf(project.stackText("dev"))["agentfleet:tenantCredentials"], undefined);
        assert.match(result.stdout, /Bootstrapped acme: its tenant stack registered it on the hub/);
    });

    it("hands the kubeconfig (its loopback server replaced, its context renamed) and the hub's to the tenant stack's run only, in a 0600 file removed afterwards: the hub stack never gets it", async () => {
        const result = await tenant(ADD_ACME);
        assert.equal(result.code, 0, result.stderr);
        const [seen] = engineOf("dev").kubeconfigs;
        assert.equal(seen.mode, 0o600);
        assert.ok(!fs.existsSync(seen.file), `${seen.file} is left behind`);
        const handed = YAML.parse(seen.text);
        assert.equal(handed["current-context"], "agentfleet-tenant");
        assert.deepEqual(handed.contexts, ["agentfleet-tenant", "agentfleet-hub"].map((name) => ({ name, context: { cluster: name, user: name } })));
        assert.deepEqual(handed.clusters, [
            { name: "agentfleet-tenant", cluster: { server: ACME_SERVER, "certificate-authority-data": FAKE.caData } },
            { name: "agentfleet-hub", cluster: { server: HUB_SERVERS.dev, "certificate-authority-data": FAKE.caData } },
        ]);
        assert.deepEqual(handed.users, [
            { name: "agentfleet-tenant", user: { "client-certificate-data": FAKE.clientCertificate, "client-key-data": FAKE.clientKey } },
            { name: "agentfleet-hub", user: { token: HUB_TOKEN } },
        ]);
        assert.deepEqual(project.calls(), [], "no `pulumi config set` of a kubeconfig");
        const after = project.stackText("dev");
        assert.ok(!/kubeconfig:/.test(after) && !Object.values(FAKE).some((v) => after.includes(v)), after);
    });

    it("--credentials token registers the tenant from a tenant stack of its own (the token and CA read from the kubeconfig file, the hub's context only, nothing on the tenant), then writes only the new tenant's file", async () => {
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        const stackFile = path.join(project.root, "Pulumi.dev.yaml");
        const before = { stack: fs.readFileSync(stackFile, "utf8"), acme: project.tenantFile("dev", "dev-acme"), globex: project.tenantFile("dev", "dev-globex") };
        assert.equal(project.tenantFile("dev", "acme"), undefined);
        const result = await tenant(ADD_TOKEN);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(project.tenantFile("dev", "acme"), `server: ${ACME_SERVER}\nring: canary\nregion: eu-west\ncredentials: token\n`);
        assert.deepEqual({ stack: fs.readFileSync(stackFile, "utf8"), acme: project.tenantFile("dev", "dev-acme"), globex: project.tenantFile("dev", "dev-globex") }, before);
        assert.match(result.stdout, /Added tenant acme \(credentials: token\) to fleet\/dev\/acme\.yaml: ring canary, rollout step 1 \(canary\), registered on the hub by its tenant stack dev-tenant-acme/);
        const engine = engineOf("dev");
        assert.deepEqual(engine.calls, ["up dev-tenant-acme generations 0"]);
        assert.deepEqual(engine.stacks.get("dev-tenant-acme")!.settings.registration!.preIssued, { bearerToken: FAKE.token, caData: FAKE.caData });
        assert.equal(engine.hubRegistered.get("acme"), FAKE.token);
        const handed = YAML.parse(engine.kubeconfigs[0].text);
        assert.deepEqual(handed.contexts.map((c: { name: string }) => c.name), ["agentfleet-hub"], "a token tenant's run holds only the hub's context");
        assert.equal(engine.kubeconfigs[0].mode, 0o600);
        assert.ok(!fs.existsSync(engine.kubeconfigs[0].file));
        assert.deepEqual(project.calls(), [], "no `pulumi config set`: the token is in no file");
    });

    it("--credentials token says the loopback server was replaced and that the k3s serving certificate needs the host as a SAN", async () => {
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        const { stdout } = await tenant(ADD_TOKEN);
        assert.match(stdout, /server https:\/\/127\.0\.0\.1:6443 is a loopback address \(the k3s default\); the registration uses https:\/\/acme\.k3s\.example\.net:6443 instead/);
        assert.match(stdout, /--tls-san acme\.k3s\.example\.net/);
    });

    it("--credentials token writes nothing when its tenant stack fails, and says to run it again", async () => {
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        engines.set("dev", new FakeOnboardingEngine(hubFileOf(project.root, "dev"), { failing: new Map([["acme", "dial tcp 10.0.0.1:6443: connection refused"]]) }));
        const before = project.stackText("dev");
        const { code, stderr } = await tenant(ADD_TOKEN);
        assert.equal(code, 1);
        assert.match(stderr, /dial tcp 10\.0\.0\.1:6443: connection refused\nNothing was written to Pulumi\.dev\.yaml or the inventory: run the same command again once that is fixed\./);
        assert.equal(project.stackText("dev"), before);
        assert.equal(project.tenantFile("dev", "acme"), undefined);
    });

    it("--credentials token refuses a hub kubeconfig that is not agentfleet:hub.server's before anything runs, and takes --hub-kubeconfig", async () => {
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        const prodHub = hubKubeconfigOf("prod");
        const wrong = await tenant([...ADD_TOKEN, "--hub-kubeconfig", prodHub]);
        assert.equal(wrong.code, 1);
        assert.match(wrong.stderr, /agentfleet:hub\.server: the kubeconfig in KUBECONFIG \(.*\.hub-prod\.kubeconfig\) points context "default" at https:\/\/hub\.prod\.agentfleet\.example\.net:6443, not at Pulumi\.dev\.yaml's hub/);
        assert.deepEqual(engineOf("dev").calls, []);
        assert.equal(project.tenantFile("dev", "acme"), undefined);
    });

    it("--credentials token as a program without the Pulumi CLI on PATH exits 1 saying the CLI is needed, and writes nothing", () => {
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        const before = project.stackText("dev");
        const env: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: hubKubeconfigOf("dev"), PATH: [project.withoutPulumi, path.dirname(process.execPath)].join(path.delimiter), TS_NODE_PROJECT: path.join(ROOT, "tsconfig.json") };
        delete env.INIT_CWD;
        const run = spawnSync(process.execPath, ["-r", require.resolve("ts-node/register/transpile-only"), path.join(ROOT, "commands/tenant.ts"), ...ADD_TOKEN, "--project-root", project.root], { cwd: project.root, env, encoding: "utf8" });
        assert.equal(run.status, 1, run.stdout);
        assert.match(run.stderr, /npm run tenant -- add --credentials token .* needs the Pulumi CLI, and there is no pulumi on PATH/);
        for (const value of [...Object.values(FAKE), HUB_TOKEN]) assert.ok(!run.stdout.includes(value) && !run.stderr.includes(value));
        assert.equal(project.stackText("dev"), before);
    });

    describe("refuses bad input with a message naming the problem, touches no cluster, calls no pulumi, and leaves the stack file byte-identical", () => {
        const cases: Array<{ title: string; kubeconfig?: string; args?: (args: string[]) => string[]; expect: RegExp[]; exitCode?: number }> = [
            { title: "a missing kubeconfig file", args: (a) => withOption(a, "--kubeconfig", "./missing.yaml"), expect: [/\/missing\.yaml: no such kubeconfig file/] },
            { title: "a kubeconfig that is not YAML", kubeconfig: `clusters: [\n  token: ${FAKE.token}: x\n`, expect: [/acme\.k3s\.yaml: is not a valid kubeconfig: Block collections are not allowed within flow collections at line 2, column \d+$/m] },
            { title: "a CA given as a file path", kubeconfig: kubeconfigText({ ca: "file" }), expect: [/cluster "default" names its CA by file path \(certificate-authority\), which CI cannot read/] },
            { title: "no CA at all", kubeconfig: kubeconfigText({ ca: "none" }), expect: [/cluster "default" has no CA \(certificate-authority-data\)/] },
            { title: "no such context", args: (a) => [...a, "--context", "acme"], expect: [/has no context "acme" \(contexts: default\)/] },
            { title: "no current-context and no --context", kubeconfig: kubeconfigText({ current: null }), expect: [/has no current-context; choose one with --context \(contexts: default\)/] },
            { title: "a kubeconfig for another server", kubeconfig: kubeconfigText({ server: "https://globex.k3s.example.net:6443" }), expect: [/server https:\/\/globex\.k3s\.example\.net:6443 differs from --server https:\/\/acme\.k3s\.example\.net:6443/] },
            { title: "--credentials token with a client-certificate user", args: (a) => [...a, "--credentials", "token"], expect: [/user "default" has no token/] },
            { title: "a duplicate name", args: (a) => withOption(a, "--name", "dev-acme"), expect: [/Pulumi\.dev\.yaml: duplicate tenant name "dev-acme": it is already registered/] },
            { title: "a duplicate name (--credentials token)", args: (a) => withOption([...a, "--credentials", "token"], "--name", "dev-acme"), kubeconfig: kubeconfigText({ user: "token" }), expect: [/fleet\/dev\/dev-acme\.yaml: duplicate tenant name "dev-acme": the file already exists/] },
            { title: "a duplicate server", args: (a) => withOption(a, "--server", "https://dev-acme.k3s.agentfleet.example.net:6443"), expect: [/fleet\/dev\/acme\.yaml: server: duplicate server .* \(also fleet\/dev\/dev-acme\.yaml\)/] },
            { title: "a ring no rollout step matches", args: (a) => withOption(a, "--ring", "beta"), expect: [/tenant acme matches no rollout step.*ring "beta" is not one the steps use \(canary, main\)/] },
            { title: "an invalid name", args: (a) => withOption(a, "--name", "Acme_1"), expect: [/fleet\/dev\/Acme_1\.yaml: the file name is the tenant's name and must be a DNS label/] },
            { title: "an invalid label", args: (a) => [...a, "--label", "tier=not ok"], expect: [/fleet\/dev\/acme\.yaml: labels\.tier: "not ok" is not a Kubernetes label value/] },
            { title: "a loopback --server", args: (a) => withOption(a, "--server", K3S_DEFAULT_SERVER), expect: [/fleet\/dev\/acme\.yaml: server: "https:\/\/127\.0\.0\.1:6443" is a loopback address/] },
            { title: "an unknown stack", args: (a) => withOption(a, "--stack", "prd"), expect: [/unknown stack "prd" \(did you mean 'prod'\?\)/] },
            { title: "a missing option", args: (a) => a.filter((x, i) => x !== "--server" && a[i - 1] !== "--server"), expect: [/missing --server/, /Usage:/], exitCode: 2 },
            { title: "an unknown option", args: (a) => [...a, "--zone", "x"], expect: [/unknown option --zone/], exitCode: 2 },
            { title: "a mistyped option", args: (a) => [...a.filter((x, i) => x !== "--name" && a[i - 1] !== "--name"), "--nam", "acme"], expect: [/unknown option --nam \(did you mean '--name'\?\)/, /Usage:/], exitCode: 2 },
        ];
        for (const c of cases) {
            it(c.title, async () => {
                if (c.kubeconfig !== undefined) project.writeKubeconfig("acme.k3s.yaml", c.kubeconfig);
                const before = { dev: project.stackText("dev"), prod: project.stackText("prod") };
                const { code, stdout, stderr } = await tenant(c.args ? c.args(ADD_ACME) : ADD_ACME);
                assert.equal(code, c.exitCode ?? 1, stderr);
                for (const pattern of c.expect) assert.match(stderr, pattern);
                assert.equal(stdout, "");
                assert.deepEqual(project.calls(), []);
                assert.deepEqual([...engines.values()].flatMap((e) => e.calls), [], "an onboarding stack ran");
                assert.deepEqual({ dev: project.stackText("dev"), prod: project.stackText("prod") }, before);
            });
        }

        it("--credentials token reports the kubeconfig's and the configuration's problems together", async () => {
            project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ ca: "none", user: "token" }));
            const { code, stderr } = await tenant(withOption(ADD_TOKEN, "--name", "dev-acme"));
            assert.equal(code, 1);
            assert.match(stderr, /duplicate tenant name "dev-acme"/);
            assert.match(stderr, /has no CA/);
        });

        it("a stack file the edit would reformat", async () => {
            const file = path.join(project.root, "Pulumi.dev.yaml");
            fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("  agentfleet:rollout:\n", "  agentfleet:rollout: # the rings\n"));
            const before = fs.readFileSync(file, "utf8");
            const { code, stderr } = await tenant(ADD_ACME);
            assert.equal(code, 1);
            assert.match(stderr, /Pulumi\.dev\.yaml: cannot be edited without reformatting it \(line \d+ would change\)/);
            assert.equal(fs.readFileSync(file, "utf8"), before);
            assert.equal(project.tenantFile("dev", "acme"), undefined);
        });
    });
});

describe("npm run tenant: concurrent edits of one stack file", function () {
    this.timeout(120000);

    it("four parallel `tenant add` runs (token tenants, each running its tenant stack) lose no tenant", async () => {
        engines.set("dev", new FakeOnboardingEngine(hubFileOf(project.root, "dev"), { upMs: 30 }));
        const names = Array.from({ length: 4 }, (_, i) => `r1-t${i}`);
        for (const name of names) project.writeKubeconfig(`${name}.k3s.yaml`, kubeconfigText({ user: "token" }));
        const args = (name: string) => ["add", "--stack", "dev", "--name", name, "--kubeconfig", `./${name}.k3s.yaml`, "--server", `https://${name}.k3s.example.net:6443`, "--ring", "canary", "--region", "eu-west", "--credentials", "token"];
        const results = await Promise.all(names.map((name) => tenant(args(name))));
        results.forEach((r, i) => assert.equal(r.code, 0, `${names[i]}: ${r.stdout}${r.stderr}`));
        assert.ok(engineOf("dev").maxRunning > 1, "the tenant stacks did not run at the same time");
        const present = tenantsOf(project.stackText("dev")).map((t) => t.name);
        for (const name of names) assert.ok(present.includes(name), `tenant ${name} was lost; the inventory has ${present.join(", ")}`);
        assert.ok(!fs.existsSync(path.join(project.root, "Pulumi.dev.yaml.lock")), "the lock is released");
        assert.deepEqual(fs.readdirSync(project.root).filter((f) => f.includes(".tmp")), [], "no temporary file is left");
    });

    it("takes over a stale lock left by a process that died", async () => {
        const lock = path.join(project.root, "Pulumi.dev.yaml.lock");
        fs.writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 12345, since: "2020-01-01T00:00:00Z" }));
        const old = new Date(Date.now() - 60000);
        fs.utimesSync(lock, old, old);
        const { code, stderr } = await tenant(ADD_ACME);
        assert.equal(code, 0, stderr);
        assert.ok(!fs.existsSync(lock));
    });

    it("gives up on a lock a live process holds, after a bounded wait, naming the lock file", async () => {
        const file = path.join(project.root, "Pulumi.dev.yaml");
        fs.writeFileSync(`${file}.lock`, JSON.stringify({ pid: process.pid }));
        const started = Date.now();
        await assert.rejects(withStackLock(file, () => assert.fail("ran without the lock"), { timeoutMs: 300, retryMs: 20 }), /Pulumi\.dev\.yaml is locked by another agentfleet command \(.*Pulumi\.dev\.yaml\.lock, \d+ attempts/);
        assert.ok(Date.now() - started < 5000);
    });
});

describe("npm run tenant -- split-inventory (moving a stack file's tenants to one file each)", () => {
    /** A stack "legacy" as stack files were before the inventory: dev's, its tenants listed in it (one entry explained by a comment). */
    const legacyStack = (): { file: string; stackOnly: string } => {
        const file = path.join(project.root, "Pulumi.legacy.yaml");
        const stackOnly = fs.readFileSync(path.join(project.root, "Pulumi.dev.yaml"), "utf8");
        const legacy = project.stackText("dev").replace("    - name: dev-globex\n", "    # Pre-issued token: its cluster is not ours to administer.\n    - name: dev-globex\n");
        fs.writeFileSync(file, legacy);
        return { file, stackOnly };
    };

    it("writes one file per tenant with its entry's keys and comments, removes agentfleet:tenants leaving every other byte, and shows progress", async () => {
        const { file, stackOnly } = legacyStack();
        const refused = await tenant(["list", "--stack", "legacy"]);
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /agentfleet:tenants: is no longer configuration.*npm run tenant -- split-inventory --stack legacy/);

        const { code, stdout, stderr } = await tenant(["split-inventory", "--stack", "legacy"]);
        assert.equal(code, 0, stderr);
        assert.match(stdout, /^\[1\/2, [0-9.]+ s\] dev-acme: written to fleet\/legacy\/dev-acme\.yaml\n\[2\/2, [0-9.]+ s\] dev-globex: written to fleet\/legacy\/dev-globex\.yaml\n/);
        assert.equal(fs.readFileSync(file, "utf8"), stackOnly, "the stack file is dev's again, byte for byte");
        assert.equal(project.tenantFile("legacy", "dev-acme"), project.tenantFile("dev", "dev-acme"));
        assert.equal(project.tenantFile("legacy", "dev-globex"), "# Pre-issued token: its cluster is not ours to administer.\nserver: https://dev-globex.k3s.agentfleet.example.net:6443\nring: main\nregion: eu-west\ncredentials: token\n");
        const list = await tenant(["list", "--stack", "legacy"]);
        assert.equal(list.code, 0, list.stderr);
        assert.match(list.stdout, /dev-acme .*\n.*dev-globex /);
    });

    it("runs again: keeps files with the same content (a run stopped half way finishes), and says when there is nothing to move", async () => {
        const { file, stackOnly } = legacyStack();
        const legacy = fs.readFileSync(file, "utf8");
        assert.equal((await tenant(["split-inventory", "--stack", "legacy"])).code, 0);
        fs.writeFileSync(file, legacy);
        const again = await tenant(["split-inventory", "--stack", "legacy"]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /dev-acme: already in fleet\/legacy\/dev-acme\.yaml/);
        assert.equal(fs.readFileSync(file, "utf8"), stackOnly);
        const nothing = await tenant(["split-inventory", "--stack", "legacy"]);
        assert.equal(nothing.code, 0);
        assert.match(nothing.stdout, /lists no agentfleet:tenants: nothing to move/);
    });

    it("refuses to overwrite a tenant file with other content, and then writes nothing", async () => {
        const { file } = legacyStack();
        const legacy = fs.readFileSync(file, "utf8");
        fs.mkdirSync(path.join(project.root, "fleet", "legacy"), { recursive: true });
        const mine = "server: https://dev-globex.k3s.agentfleet.example.net:6443\nring: canary\nregion: eu-west\ncredentials: token\n";
        fs.writeFileSync(path.join(project.root, "fleet", "legacy", "dev-globex.yaml"), mine);
        const { code, stderr } = await tenant(["split-inventory", "--stack", "legacy"]);
        assert.equal(code, 1);
        assert.match(stderr, /fleet\/legacy\/dev-globex\.yaml already exists with other content, and a file this command did not write is never overwritten.*Nothing was written\./);
        assert.equal(fs.readFileSync(file, "utf8"), legacy);
        assert.equal(project.tenantFile("legacy", "dev-globex"), mine);
        assert.equal(project.tenantFile("legacy", "dev-acme"), undefined);
    });
});

describe("npm run tenant -- list", () => {
    it("shows each tenant with its env, ring, region, credentials, state and rollout step", async () => {
        const { code, stdout } = await tenant(["list", "--stack", "prod"]);
        assert.equal(code, 0);
        const rows = stdout.trimEnd().split("\n").map((l) => l.split(/\s{2,}/));
        assert.deepEqual(rows[0], ["TENANT", "ENV", "RING", "REGION", "CREDENTIALS", "STATE", "STEP"]);
        // In the inventory's order: by file name.
        assert.deepEqual(rows.slice(2), [
            ["prod-acme-eu", "prod", "early", "eu-west", "bootstrap", "active", "2 early"],
            ["prod-acme-us", "prod", "early", "us-east", "bootstrap", "active", "2 early"],
            ["prod-canary-eu", "prod", "canary", "eu-west", "bootstrap", "active", "1 canary"],
            ["prod-globex-eu", "prod", "main", "eu-west", "bootstrap", "active", "3 main"],
            ["prod-hooli-us", "prod", "main", "us-east", "bootstrap", "active", "3 main"],
            ["prod-initech-eu", "prod", "main", "eu-west", "token", "active", "3 main"],
            ["prod-umbrella-us", "prod", "main", "us-east", "bootstrap", "active", "3 main"],
        ]);
    });

    it("shows paused and decommissioned tenants; decommissioned ones are in no step", async () => {
        project.writeStack("prod", project.stackText("prod").replace("      ring: canary\n", "      ring: canary\n      paused: true\n"));
        assert.equal((await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--decommission"])).code, 0);
        const { stdout } = await tenant(["list", "--stack", "prod"]);
        assert.match(stdout, /prod-canary-eu +prod +canary +eu-west +bootstrap +paused +1 canary\n/);
        assert.match(stdout, /prod-hooli-us +prod +main +us-east +bootstrap +decommissioned +-\n/);
    });

    it("refuses an invalid stack with the loader's problems", async () => {
        project.writeStack("dev", addTenant(project.stackText("dev"), { name: "acme", server: ACME_SERVER, ring: "beta", region: "eu-west", credentials: "bootstrap" }));
        const { code, stderr } = await tenant(["list", "--stack", "dev"]);
        assert.equal(code, 1);
        assert.match(stderr, /Pulumi\.dev\.yaml is not a valid configuration:\n {2}- fleet\/dev\/acme\.yaml: tenant acme matches no rollout step/);
    });

    it("accepts a bootstrap tenant not bootstrapped yet: the hub stack holds no credential to miss (its tenant stack registers it)", async () => {
        project.writeStack("dev", addTenant(project.stackText("dev"), { name: "acme", server: ACME_SERVER, ring: "canary", region: "eu-west", credentials: "bootstrap" }));
        const { code, stdout, stderr } = await tenant(["list", "--stack", "dev"]);
        assert.equal(code, 0, stderr);
        assert.match(stdout, /^acme +dev +canary +eu-west +bootstrap +active/m);
    });
});

describe("npm run tenant -- remove", () => {
    const seenContexts = (stack: string) => engineOf(stack).kubeconfigs.map((k) => YAML.parse(k.text).contexts.map((c: { name: string }) => c.name));

    it("of a bootstrap tenant: destroys its tenant stack with its admin and the hub's contexts (its cluster Secret leaves the hub, argocd-manager and its token the tenant), then deletes its tenant file; the stack file stays byte for byte", async () => {
        withTenantStacks("prod", "prod-hooli-us");
        engineOf("prod").hubRegistered.set("prod-hooli-us", "fake-token-prod-hooli-us-0");
        const stackFile = path.join(project.root, "Pulumi.prod.yaml");
        const before = fs.readFileSync(stackFile, "utf8");
        const { code, stdout, stderr } = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--kubeconfig", "acme.k3s.yaml"]);
        assert.equal(code, 0, stderr);
        assert.deepEqual(engineOf("prod").calls, ["destroy prod-tenant-prod-hooli-us"]);
        assert.deepEqual(seenContexts("prod"), [["agentfleet-tenant", "agentfleet-hub"]]);
        assert.ok(!engineOf("prod").hubRegistered.has("prod-hooli-us"), "its registration stayed on the hub");
        assert.equal(project.tenantFile("prod", "prod-hooli-us"), undefined, "its tenant file is deleted");
        assert.equal(fs.readFileSync(stackFile, "utf8"), before);
        assert.match(stderr, /Destroying tenant stack prod-tenant-prod-hooli-us .*\nTenant stack prod-tenant-prod-hooli-us destroyed in [0-9.]+s\./);
        assert.match(stdout, /Removed tenant prod-hooli-us: its tenant stack prod-tenant-prod-hooli-us is destroyed, and its tenant file removed \(commit that\)\./);
        assert.match(stdout, /cluster Secret cluster-prod-hooli-us is deleted: Argo CD stops deploying to https:\/\/prod-hooli-us/);
        assert.match(stdout, /argocd-manager ServiceAccount, its token Secret, Roles, RoleBindings, ClusterRole and ClusterRoleBinding are deleted: its token is revoked/);
        assert.match(stdout, /agent namespaces \(voice-agent\) are retained and the workloads in them keep running/);
        assert.match(stdout, /applicationsSync create-update keeps the tenant's generated Application/);
    });

    it("of a token tenant: destroys its tenant stack with the hub's context only; no tenant kubeconfig is needed", async () => {
        withTenantStacks("prod", "prod-initech-eu");
        const { code, stdout, stderr } = await tenant(["remove", "--stack", "prod", "--name", "prod-initech-eu"]);
        assert.equal(code, 0, stderr);
        assert.deepEqual(engineOf("prod").calls, ["destroy prod-tenant-prod-initech-eu"]);
        assert.deepEqual(seenContexts("prod"), [["agentfleet-hub"]]);
        assert.match(stdout, /nothing of Pulumi's was on the tenant \(credentials: token\); revoke the pre-issued token there/);
        assert.equal(project.tenantFile("prod", "prod-initech-eu"), undefined);
    });

    it("refuses, touching nothing, a hub kubeconfig that is not agentfleet:hub.server's", async () => {
        withTenantStacks("prod", "prod-initech-eu");
        const before = project.stackText("prod");
        const { code, stderr } = await tenant(["remove", "--stack", "prod", "--name", "prod-initech-eu", "--hub-kubeconfig", hubKubeconfigOf("dev")]);
        assert.equal(code, 1);
        assert.match(stderr, /agentfleet:hub\.server: the kubeconfig in KUBECONFIG \(.*\.hub-dev\.kubeconfig\) points context "default" at https:\/\/hub\.dev\.agentfleet\.example\.net:6443/);
        assert.deepEqual(engineOf("prod").calls, []);
        assert.equal(project.stackText("prod"), before);
    });

    it("refuses a tenant whose file is gone but whose tenant stack is left (a removal an earlier agentfleet began in two steps), naming how to finish it", async () => {
        withTenantStacks("prod", "prod-hooli-us");
        fs.rmSync(path.join(project.root, "fleet", "prod", "prod-hooli-us.yaml"));
        const { code, stderr } = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--kubeconfig", "acme.k3s.yaml"]);
        assert.equal(code, 1);
        assert.match(stderr, /tenant prod-hooli-us has no tenant file, but its tenant stack prod-tenant-prod-hooli-us exists .*restore the file/);
        assert.deepEqual(engineOf("prod").calls, []);
    });

    it("undoes an add byte for byte", async () => {
        const before = project.stackText("dev");
        assert.equal((await tenant(ADD_ACME)).code, 0);
        assert.equal((await tenant(["remove", "--stack", "dev", "--name", "acme", "--kubeconfig", "acme.k3s.yaml"])).code, 0);
        assert.equal(project.stackText("dev"), before);
        assert.ok(!engineOf("dev").hubRegistered.has("acme"));
    });

    it("refuses to remove a bootstrap tenant without its admin kubeconfig, naming what to give, before anything is touched", async () => {
        withTenantStacks("prod", "prod-hooli-us");
        const before = project.stackText("prod");
        const { code, stderr } = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us"]);
        assert.equal(code, 2);
        assert.match(stderr, /^tenant remove: missing --kubeconfig FILE \(or --kubeconfig-dir DIR holding prod-hooli-us\.yaml\): removing bootstrap tenant prod-hooli-us destroys its tenant stack prod-tenant-prod-hooli-us, argocd-manager on the tenant, with its admin kubeconfig; if the cluster is gone for good, use --decommission instead\n/);
        assert.deepEqual(engineOf("prod").calls, []);
        assert.equal(project.stackText("prod"), before);
        const missing = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--kubeconfig", "nosuch.yaml"]);
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /nosuch\.yaml: no such kubeconfig file/);
        project.writeKubeconfig("other.yaml", kubeconfigText({ server: ACME_SERVER }));
        const otherCluster = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--kubeconfig", "other.yaml"]);
        assert.equal(otherCluster.code, 1);
        assert.match(otherCluster.stderr, /server https:\/\/acme\.k3s\.example\.net:6443 differs from --server https:\/\/prod-hooli-us\.k3s\.agentfleet\.example\.net:6443/);
        assert.deepEqual(engineOf("prod").calls, []);
        assert.equal(project.stackText("prod"), before);
    });

    it("removes a tenant never bootstrapped (no tenant stack) without a kubeconfig: there is nothing of it to destroy", async () => {
        project.writeStack("dev", addTenant(project.stackText("dev"), { name: "acme", server: ACME_SERVER, ring: "canary", region: "eu-west", credentials: "bootstrap" }));
        const { code, stdout, stderr } = await tenant(["remove", "--stack", "dev", "--name", "acme"]);
        assert.equal(code, 0, stderr);
        assert.deepEqual(engineOf("dev").calls, []);
        assert.ok(!project.stackText("dev").includes("name: acme"));
        assert.match(stdout, /it had no tenant stack, so nothing was registered on the hub/);
    });

    it("refuses a removal that leaves a rollout step without tenants, leaving the file byte-identical", async () => {
        const before = project.stackText("dev");
        const { code, stderr } = await tenant(["remove", "--stack", "dev", "--name", "dev-acme"]);
        assert.equal(code, 1);
        assert.match(stderr, /agentfleet:rollout\.steps\[0\]: step "canary" matches no tenant/);
        assert.equal(project.stackText("dev"), before);
    });

    it("refuses an unknown tenant, suggesting the likely one", async () => {
        const before = project.stackText("prod");
        const { code, stderr } = await tenant(["remove", "--stack", "prod", "--name", "prod-holi-us"]);
        assert.equal(code, 1);
        assert.match(stderr, /no tenant is named "prod-holi-us" \(did you mean 'prod-hooli-us'\?\)/);
        assert.equal(project.stackText("prod"), before);
    });

    it("--decommission deletes the registration from the hub (the hub's context only) and drops the tenant stack without contacting the cluster, sets decommissioned: true; remove then deletes the file", async () => {
        withTenantStacks("prod", "prod-hooli-us");
        engineOf("prod").hubRegistered.set("prod-hooli-us", "fake-token-prod-hooli-us-0");
        const before = project.stackText("prod");
        const { code, stdout, stderr } = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--decommission"]);
        assert.equal(code, 0, stderr);
        const after = project.stackText("prod");
        assert.deepEqual(lineChanges(before, after), { removed: [], added: ["      decommissioned: true"] });
        assert.equal(project.tenantFile("prod", "prod-hooli-us"), "server: https://prod-hooli-us.k3s.agentfleet.example.net:6443\nring: main\nregion: us-east\ncredentials: bootstrap\ndecommissioned: true\n");
        assert.deepEqual(engineOf("prod").calls, ["destroy prod-tenant-prod-hooli-us forget"]);
        assert.deepEqual(seenContexts("prod"), [["agentfleet-hub"]]);
        assert.ok(!engineOf("prod").hubRegistered.has("prod-hooli-us"), "its registration stayed on the hub");
        assert.match(stdout, /its cluster Secret cluster-prod-hooli-us was deleted from the hub by its tenant stack prod-tenant-prod-hooli-us, which was then dropped \(the tenant was not contacted\)/);
        assert.match(stdout, /then remove the entry: npm run tenant -- remove --stack prod --name prod-hooli-us/);

        assert.equal((await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--decommission"])).code, 1, "decommissioning twice is refused");
        const removal = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us"]);
        assert.equal(removal.code, 0);
        assert.match(removal.stdout, /Removed the tenant file of decommissioned tenant prod-hooli-us/);
        assert.equal(project.tenantFile("prod", "prod-hooli-us"), undefined);
        assert.deepEqual(engineOf("prod").calls, ["destroy prod-tenant-prod-hooli-us forget"]);
    });
});

describe("npm run tenant: flags", () => {
    it("refuses a mistyped flag of every command with a did-you-mean, before reading anything", async () => {
        for (const [args, expected] of [
            [["remove", "--stack", "prod", "--name", "prod-hooli-us", "--decomission"], "unknown option --decomission (did you mean '--decommission'?)"],
            [["list", "--stak", "prod"], "unknown option --stak (did you mean '--stack'?)"],
            [["rotate", "--stack", "prod", "--al"], "unknown option --al (did you mean '--all'?)"],
            [["bootstrap", "--stack", "prod", "--name", "x", "--kubeconfig-dri", "k"], "unknown option --kubeconfig-dri (did you mean '--kubeconfig-dir'?)"],
        ] as Array<[string[], string]>) {
            const before = project.stackText("prod");
            const { code, stdout, stderr } = await tenant(args);
            assert.equal(code, 2, stderr);
            assert.ok(stderr.includes(expected), stderr);
            assert.equal(stdout, "");
            assert.deepEqual([...engines.values()].flatMap((e) => e.calls), []);
            assert.equal(project.stackText("prod"), before);
        }
    });

    it("--parallel takes a whole number, negative ones included, with a plain message", async () => {
        for (const value of ["-5", "0", "1.5", "x"]) {
            const { code, stderr } = await tenant(["bootstrap", "--stack", "prod", "--all-pending", "--kubeconfig-dir", ".", "--parallel", value]);
            assert.equal(code, 2, stderr);
            assert.ok(stderr.includes(`--parallel must be a whole number from 1 to 64, not "${value}"`), stderr);
        }
    });

    it("resolves --kubeconfig against the folder the user ran npm in, and names it by its absolute path", async () => {
        const sub = path.join(project.root, "kube");
        fs.mkdirSync(sub);
        const { code, stderr } = await tenant(withOption(ADD_TOKEN, "--kubeconfig", "./missing.yaml"), { cwd: sub });
        assert.equal(code, 1);
        assert.ok(stderr.includes(`${path.join(sub, "missing.yaml")}: no such kubeconfig file`), stderr);
        fs.renameSync(path.join(project.root, "acme.k3s.yaml"), path.join(sub, "acme.k3s.yaml"));
        const added = await tenant(ADD_ACME, { cwd: sub });
        assert.equal(added.code, 0, added.stderr);
    });
});

describe("npm run tenant without the Pulumi CLI on PATH", function () {
    this.timeout(120000);

    /** The command as a program (the real onboarding engine), on a PATH with node and no pulumi. */
    const withoutPulumi = (args: string[]) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
            const env: NodeJS.ProcessEnv = { ...process.env, PATH: [project.withoutPulumi, path.dirname(process.execPath)].join(path.delimiter), TS_NODE_PROJECT: path.join(ROOT, "tsconfig.json"), INIT_CWD: project.root };
            const child = spawn(process.execPath, ["-r", require.resolve("ts-node/register/transpile-only"), path.join(ROOT, "commands/tenant.ts"), ...args, "--project-root", project.root], { cwd: ROOT, env });
            let [stdout, stderr] = ["", ""];
            child.stdout.on("data", (d) => (stdout += d));
            child.stderr.on("data", (d) => (stderr += d));
            child.on("close", (code) => resolve({ code, stdout, stderr }));
        });

    it("bootstrap, rotate and remove (of a bootstrap or a token tenant: both have a tenant stack) say in one line that the CLI is needed and how to get it, and touch nothing", async () => {
        const before = project.stackText("prod");
        const commands: Array<[string, string[]]> = [
            ["bootstrap", ["bootstrap", "--stack", "prod", "--name", "acme", "--kubeconfig", "acme.k3s.yaml", "--server", ACME_SERVER, "--ring", "main", "--region", "eu-west"]],
            ["rotate", ["rotate", "--stack", "prod", "--all", "--kubeconfig-dir", "."]],
            ["remove of tenant prod-hooli-us", ["remove", "--stack", "prod", "--name", "prod-hooli-us"]],
            ["remove of tenant prod-initech-eu", ["remove", "--stack", "prod", "--name", "prod-initech-eu"]],
        ];
        const results = await Promise.all(commands.map(([, args]) => withoutPulumi(args)));
        results.forEach((r, i) => {
            const [what] = commands[i];
            assert.equal(r.code, 1, `${what}: ${r.stderr}`);
            assert.equal(r.stdout, "", what);
            const lines = r.stderr.trimEnd().split("\n");
            assert.equal(lines.length, 1, `${what}: more than one line:\n${r.stderr}`);
            assert.match(lines[0], new RegExp(`^tenant \\w+: npm run tenant -- ${what}.* needs the Pulumi CLI, and there is no pulumi on PATH: install it \\(https://www\\.pulumi\\.com/docs/install/\\), or build it with \`npm run engines\`, which puts it in .*/engines/pulumi-v.*bin .*export PATH=`));
            assert.doesNotMatch(r.stderr, /unexpected|ENOENT|run the same command again/, what);
        });
        assert.equal(project.stackText("prod"), before);
    });

});

describe("parseKubeconfig", () => {
    it("keeps only the chosen context, its cluster and its user in the credential", () => {
        const checked = parseKubeconfig(kubeconfigText({ contexts: ["globex", "acme"], current: "globex" }), { server: ACME_SERVER, credentials: "bootstrap", context: "acme" });
        const stored = YAML.parse(checked.secrets.kubeconfig);
        assert.equal(stored["current-context"], "acme");
        assert.deepEqual(
            [stored.contexts, stored.clusters, stored.users].map((list: Array<{ name: string }>) => list.map((e) => e.name)),
            [["acme"], ["acme"], ["acme"]],
        );
        assert.equal(checked.singleContext, false);
    });

    it("treats localhost and ::1 as the k3s loopback default too", () => {
        for (const server of ["https://localhost:6443", "https://[::1]:6443"]) {
            const checked = parseKubeconfig(kubeconfigText({ server }), { server: ACME_SERVER, credentials: "bootstrap" });
            assert.equal(checked.loopbackServer, server);
            assert.equal(YAML.parse(checked.secrets.kubeconfig).clusters[0].cluster.server, ACME_SERVER);
        }
    });
});
