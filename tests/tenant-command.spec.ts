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

/** Runs the command in-process on the temporary project; fails on any credential content in the output. */
async function tenant(argv: string[], options: { pulumi?: boolean; cwd?: string } = {}): Promise<Result> {
    let stdout = "";
    let stderr = "";
    const io: CommandIO = {
        stdout: (t) => void (stdout += t),
        stderr: (t) => void (stderr += t),
        env: { ...process.env, PATH: options.pulumi === false ? project.withoutPulumi : project.withPulumi },
        cwd: options.cwd ?? project.root,
        engine: (hub) => engineOf(hub.stack),
    };
    const code = await main([...argv, "--project-root", project.root], io);
    for (const [what, value] of Object.entries(FAKE)) {
        assert.ok(!stdout.includes(value) && !stderr.includes(value), `the output contains the kubeconfig's ${what}:\n${stdout}\n${stderr}`);
    }
    return { code, stdout, stderr };
}

const ADD_ACME = ["add", "--stack", "dev", "--name", "acme", "--kubeconfig", "./acme.k3s.yaml", "--server", ACME_SERVER, "--ring", "canary", "--region", "eu-west"];
/** A tenant with a pre-issued token: its kubeconfig's token and CA are stored with `pulumi config set`. */
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

const commentLines = (text: string) => text.split("\n").filter((l) => l.trimStart().startsWith("#"));
const configOf = (text: string) => YAML.parse(text).config;
const tenantsOf = (text: string): Array<Record<string, unknown>> => configOf(text)["agentfleet:tenants"];

beforeEach(() => {
    project = makeProject();
    engines = new Map();
    project.writeKubeconfig("acme.k3s.yaml", kubeconfigText());
});
const storedFields = (stack: string, tenant: string) => Object.keys(configOf(project.stackText(stack))["agentfleet:tenantCredentials"][tenant] ?? {}).sort();
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
        assert.deepEqual(engineOf("dev").calls, ["up dev-tenant-acme generations 0", "store acme"]);
        assert.deepEqual(engineOf("dev").stacks.get("dev-tenant-acme")!.settings.namespaces, ["voice-agent", "voice-agent-eu"]);
        assert.deepEqual(storedFields("dev", "acme"), ["bearerToken", "caData"]);
        assert.match(result.stdout, /Bootstrapped acme: Pulumi\.dev\.yaml holds its token and CA \(secret\)/);
    });

    it("hands the kubeconfig (its loopback server replaced, its context renamed) to the onboarding stack's run only, in a 0600 file removed afterwards: the hub stack never gets it", async () => {
        const result = await tenant(ADD_ACME);
        assert.equal(result.code, 0, result.stderr);
        const [seen] = engineOf("dev").kubeconfigs;
        assert.equal(seen.mode, 0o600);
        assert.ok(!fs.existsSync(seen.file), `${seen.file} is left behind`);
        const handed = YAML.parse(seen.text);
        assert.equal(handed["current-context"], "agentfleet-tenant");
        assert.deepEqual(handed.contexts, [{ name: "agentfleet-tenant", context: { cluster: "default", user: "default" } }]);
        assert.deepEqual(handed.clusters, [{ name: "default", cluster: { server: ACME_SERVER, "certificate-authority-data": FAKE.caData } }]);
        assert.deepEqual(handed.users, [{ name: "default", user: { "client-certificate-data": FAKE.clientCertificate, "client-key-data": FAKE.clientKey } }]);
        assert.deepEqual(project.calls(), [], "no `pulumi config set` of a kubeconfig");
        const after = project.stackText("dev");
        assert.ok(!/kubeconfig:/.test(after) && !Object.values(FAKE).some((v) => after.includes(v)), after);
    });

    it("--credentials token writes only the new tenant's file, fleet/dev/acme.yaml: the stack file and the other tenant files stay byte for byte", async () => {
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        const stackFile = path.join(project.root, "Pulumi.dev.yaml");
        const before = { stack: fs.readFileSync(stackFile, "utf8"), acme: project.tenantFile("dev", "dev-acme"), globex: project.tenantFile("dev", "dev-globex") };
        assert.equal(project.tenantFile("dev", "acme"), undefined);
        const result = await tenant(ADD_TOKEN);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(project.tenantFile("dev", "acme"), `server: ${ACME_SERVER}\nring: canary\nregion: eu-west\ncredentials: token\n`);
        // The fake pulumi stores no credential in the file: everything else is as it was.
        assert.deepEqual({ stack: fs.readFileSync(stackFile, "utf8"), acme: project.tenantFile("dev", "dev-acme"), globex: project.tenantFile("dev", "dev-globex") }, before);
        assert.match(result.stdout, /Added tenant acme to Pulumi\.dev\.yaml: ring canary, rollout step 1 \(canary\)/);
        assert.deepEqual(engineOf("dev").calls, [], "a token tenant has no onboarding stack");
    });

    it("--credentials token says the loopback server was replaced and that the k3s serving certificate needs the host as a SAN", async () => {
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        const { stdout } = await tenant(ADD_TOKEN);
        assert.match(stdout, /server https:\/\/127\.0\.0\.1:6443 is a loopback address \(the k3s default\); the stored credential uses https:\/\/acme\.k3s\.example\.net:6443 instead/);
        assert.match(stdout, /--tls-san acme\.k3s\.example\.net/);
    });

    const TOKEN_COMMANDS = (kubeconfig: string, context = "default") => {
        const minified = `kubectl config view --raw --minify --flatten --kubeconfig ${kubeconfig} --context ${context}`;
        return [
            `${minified} -o jsonpath='{.users[0].user.token}' | pulumi config set --stack dev --secret --path 'tenantCredentials.acme.bearerToken'`,
            `${minified} -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | pulumi config set --stack dev --secret --path 'tenantCredentials.acme.caData'`,
        ];
    };

    it("--credentials token without the Pulumi CLI writes nothing and prints the exact commands that store the token and CA", async () => {
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        const before = project.stackText("dev");
        const result = await tenant(ADD_TOKEN, { pulumi: false });
        assert.equal(result.code, 1, result.stdout);
        for (const command of TOKEN_COMMANDS("./acme.k3s.yaml")) assert.ok(result.stderr.includes(`\n  ${command}\n`), result.stderr);
        assert.match(result.stderr, /Nothing was written\./);
        assert.match(result.stderr, /and then run this command again: it adds the entry and keeps the stored credential/);
        assert.match(result.stderr, /To undo a stored credential instead: pulumi config rm --stack dev --path 'tenantCredentials\.acme'/);
        assert.equal(project.stackText("dev"), before, "the stack file is unchanged, so every command still accepts it");
    });

    it("--credentials token: once the token and CA are stored, adds the entry without the Pulumi CLI and keeps them", async () => {
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        const doc = YAML.parseDocument(project.stackText("dev"));
        for (const field of ["bearerToken", "caData"]) doc.setIn(["config", "agentfleet:tenantCredentials", "acme", field], doc.createNode({ secure: `v1:AAAAAAAAAAAAAAAA:stored-${field}` }));
        project.writeStack("dev", doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
        const { code, stdout, stderr } = await tenant(ADD_TOKEN, { pulumi: false });
        assert.equal(code, 0, stderr);
        assert.match(stdout, /Added tenant acme/);
        assert.match(stdout, /Kept the credential already stored in agentfleet:tenantCredentials\.acme\.bearerToken and agentfleet:tenantCredentials\.acme\.caData/);
        assert.deepEqual(tenantsOf(project.stackText("dev")).map((t) => t.name), ["acme", "dev-acme", "dev-globex"]);
        assert.equal(configOf(project.stackText("dev"))["agentfleet:tenantCredentials"].acme.bearerToken.secure, "v1:AAAAAAAAAAAAAAAA:stored-bearerToken");
    });

    it("--credentials token without the Pulumi CLI extracts --context from a kubeconfig with several contexts", async () => {
        project.writeKubeconfig("fleet.k3s.yaml", kubeconfigText({ contexts: ["globex", "acme"], user: "token" }));
        const { code, stderr } = await tenant([...withOption(ADD_TOKEN, "--kubeconfig", "./fleet.k3s.yaml"), "--context", "acme"], { pulumi: false });
        assert.equal(code, 1);
        for (const command of TOKEN_COMMANDS("./fleet.k3s.yaml", "acme")) assert.ok(stderr.includes(`\n  ${command}\n`), stderr);
    });

    it("--credentials token without the Pulumi CLI, run from another directory: the commands change into the project root", async () => {
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-cwd-"));
        try {
            const kubeconfig = path.join(project.root, "acme.k3s.yaml");
            const { code, stderr } = await tenant(withOption(ADD_TOKEN, "--kubeconfig", path.relative(elsewhere, kubeconfig)), { pulumi: false, cwd: elsewhere });
            assert.equal(code, 1);
            for (const command of TOKEN_COMMANDS(kubeconfig)) assert.ok(stderr.includes(`\n  cd ${project.root} && ${command}\n`), stderr);
        } finally {
            fs.rmSync(elsewhere, { recursive: true, force: true });
        }
    });

    it("--credentials token as a program without the Pulumi CLI on PATH, exits 1 and prints the commands", () => {
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        const env: NodeJS.ProcessEnv = { ...process.env, PATH: [project.withoutPulumi, path.dirname(process.execPath)].join(path.delimiter), TS_NODE_PROJECT: path.join(ROOT, "tsconfig.json") };
        delete env.INIT_CWD;
        const run = spawnSync(process.execPath, ["-r", require.resolve("ts-node/register/transpile-only"), path.join(ROOT, "commands/tenant.ts"), ...ADD_TOKEN, "--project-root", project.root], { cwd: project.root, env, encoding: "utf8" });
        assert.equal(run.status, 1, run.stdout);
        assert.ok(run.stderr.includes("| pulumi config set --stack dev --secret --path 'tenantCredentials.acme.bearerToken'\n"), run.stderr);
        for (const value of Object.values(FAKE)) assert.ok(!run.stdout.includes(value) && !run.stderr.includes(value));
    });

    it("--credentials token stores the user's token and the cluster CA as bearerToken and caData", async () => {
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        const result = await tenant([...ADD_ACME, "--credentials", "token"]);
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(
            project.calls().map((c) => [c.args[c.args.length - 1], c.stdin]),
            [
                ["tenantCredentials.acme.bearerToken", FAKE.token],
                ["tenantCredentials.acme.caData", FAKE.caData],
            ],
        );
        assert.equal(tenantsOf(project.stackText("dev"))[2].credentials, "token");
    });

    it("--credentials token restores the stack file byte for byte when `pulumi config set` fails", async () => {
        fs.rmSync(project.root, { recursive: true, force: true });
        project = makeProject({ pulumiExitCode: 1 });
        project.writeKubeconfig("acme.k3s.yaml", kubeconfigText({ user: "token" }));
        const before = project.stackText("dev");
        const { code, stderr } = await tenant(ADD_TOKEN);
        assert.equal(code, 1);
        assert.match(stderr, /failed, so Pulumi\.dev\.yaml is restored as it was/);
        assert.match(stderr, /PULUMI_CONFIG_PASSPHRASE/);
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
            fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("  agentfleet:tenantCredentials:\n", "  agentfleet:tenantCredentials: # every credential\n"));
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

    const tenantProcess = (args: string[]) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
            const env: NodeJS.ProcessEnv = { ...process.env, PATH: [project.withPulumi, path.dirname(process.execPath)].join(path.delimiter), TS_NODE_PROJECT: path.join(ROOT, "tsconfig.json") };
            delete env.INIT_CWD;
            const child = spawn(process.execPath, ["-r", require.resolve("ts-node/register/transpile-only"), path.join(ROOT, "commands/tenant.ts"), ...args, "--project-root", project.root], { cwd: project.root, env });
            let [stdout, stderr] = ["", ""];
            child.stdout.on("data", (d) => (stdout += d));
            child.stderr.on("data", (d) => (stderr += d));
            child.on("close", (code) => resolve({ code, stdout, stderr }));
        });
    // Token tenants: a process of its own has no fake onboarding engine, and the lock is the same.
    const addArgs = (name: string) => ["add", "--stack", "dev", "--name", name, "--kubeconfig", `./${name}.k3s.yaml`, "--server", `https://${name}.k3s.example.net:6443`, "--ring", "canary", "--region", "eu-west", "--credentials", "token"];

    /** A fake `pulumi config set --path` that writes a secure value into the stack file, as the real CLI does. */
    const storingPulumi = () =>
        fs.writeFileSync(
            path.join(project.withPulumi, "pulumi"),
            `#!${process.execPath}
const fs = require("fs");
const YAML = require(${JSON.stringify(require.resolve("yaml"))});
const args = process.argv.slice(2);
fs.readFileSync(0, "utf8");
const file = "Pulumi." + args[args.indexOf("--stack") + 1] + ".yaml";
const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"));
const [, name, field] = args[args.indexOf("--path") + 1].split(".");
doc.setIn(["config", "agentfleet:tenantCredentials", name, field], doc.createNode({ secure: "v1:AAAAAAAAAAAAAAAA:fake" }));
fs.writeFileSync(file, doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
`,
            { mode: 0o755 },
        );

    it("four parallel `tenant add` processes lose no tenant", async () => {
        storingPulumi();
        for (const round of [1]) {
            const names = Array.from({ length: 4 }, (_, i) => `r${round}-t${i}`);
            for (const name of names) project.writeKubeconfig(`${name}.k3s.yaml`, kubeconfigText({ user: "token" }));
            const results = await Promise.all(names.map((name) => tenantProcess(addArgs(name))));
            results.forEach((r, i) => assert.equal(r.code, 0, `${names[i]}: ${r.stdout}${r.stderr}`));
            const present = tenantsOf(project.stackText("dev")).map((t) => t.name);
            for (const name of names) assert.ok(present.includes(name), `round ${round}: tenant ${name} was lost; file has ${present.join(", ")}`);
        }
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

    it("refuses an invalid stack with the loader's problems, saying how to finish or undo a tenant without its credential", async () => {
        project.writeStack("dev", addTenant(project.stackText("dev"), { name: "acme", server: ACME_SERVER, ring: "canary", region: "eu-west", credentials: "bootstrap" }));
        const { code, stderr } = await tenant(["list", "--stack", "dev"]);
        assert.equal(code, 1);
        assert.match(stderr, /Pulumi\.dev\.yaml is not a valid configuration:\n {2}- agentfleet:tenantCredentials\.acme\.bearerToken: is required/);
        assert.ok(stderr.includes("bootstrap it with `npm run tenant -- bootstrap --stack dev --name acme --kubeconfig <admin kubeconfig>`, which stores bearerToken and caData (secret), or undo the tenant with `npm run tenant -- remove --stack dev --name acme`"), stderr);
    });
});

describe("npm run tenant -- remove", () => {
    it("of a bootstrap tenant main's stack file lists: removes its entry and its token and CA, keeping every comment, keeps its onboarding stack, and says what the next pulumi up does and to merge", async () => {
        engineOf("prod").stacks.set("prod-tenant-prod-hooli-us", { settings: { tenant: "prod-hooli-us", namespaces: ["voice-agent"], tokenGenerations: [0] }, ups: 1 });
        const stackFile = path.join(project.root, "Pulumi.prod.yaml");
        const before = fs.readFileSync(stackFile, "utf8");
        assert.ok(project.tenantFile("prod", "prod-hooli-us"));
        const { code, stdout, stderr } = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--kubeconfig", "acme.k3s.yaml"]);
        assert.equal(code, 0, stderr);
        assert.equal(project.tenantFile("prod", "prod-hooli-us"), undefined, "its tenant file is deleted");
        const after = fs.readFileSync(stackFile, "utf8");
        const { removed, added } = lineChanges(before, after);
        assert.deepEqual(added, []);
        assert.deepEqual([removed[0], removed[1], removed[3]], ["    prod-hooli-us:", "      bearerToken:", "      caData:"]);
        for (const i of [2, 4]) assert.match(removed[i], /^ {8}secure: v1:/);
        assert.equal(removed.length, 5);
        assert.deepEqual(commentLines(after), commentLines(before));

        assert.match(stdout, /cluster Secret cluster-prod-hooli-us is deleted/);
        assert.match(stdout, /its onboarding stack \(argocd-manager on the tenant\) is kept, and its token stays valid, because Pulumi\.prod\.yaml at origin\/main still lists the tenant/);
        assert.deepEqual(engineOf("prod").calls, [], "its token is not revoked while deploy.yml would register the tenant again");
        assert.match(stdout, /agent namespaces \(voice-agent\) are retained and the workloads in them keep running/);
        assert.match(stdout, /applicationsSync create-update keeps the tenant's generated Application/);
        assert.match(stdout, /Next: merge this change of Pulumi\.prod\.yaml to origin\/main and let deploy\.yml apply it; then run the same command again: npm run tenant -- remove --stack prod --name prod-hooli-us/);
    });

    it("run again after the removal: refuses while main's stack file still lists the tenant; once merged, destroys the onboarding stack", async () => {
        const engine = engineOf("prod");
        engine.stacks.set("prod-tenant-prod-hooli-us", { settings: { tenant: "prod-hooli-us", namespaces: ["voice-agent"], tokenGenerations: [0] }, ups: 1 });
        const args = ["remove", "--stack", "prod", "--name", "prod-hooli-us"];
        assert.equal((await tenant(args)).code, 0);
        const removed = project.stackText("prod");

        const early = await tenant(args);
        assert.equal(early.code, 1);
        assert.equal(early.stderr, "tenant remove: Pulumi.prod.yaml at origin/main still lists tenant prod-hooli-us, so deploy.yml would register it again; merge the removal's change of Pulumi.prod.yaml to origin/main and let deploy.yml apply it, then run this again to destroy onboarding stack prod-tenant-prod-hooli-us (its token stays valid until then)\n");
        assert.deepEqual(engine.calls, []);
        assert.equal(project.stackText("prod"), removed);

        git(project.root, "commit", "-qam", "remove prod-hooli-us");
        git(project.root, "update-ref", "refs/remotes/origin/main", "HEAD");
        const noKubeconfig = await tenant(args);
        assert.equal(noKubeconfig.code, 2);
        assert.match(noKubeconfig.stderr, /missing --kubeconfig FILE \(or --kubeconfig-dir DIR holding prod-hooli-us\.yaml\)/);
        // Checked against the server the stack file listed the tenant with, from the ref's history.
        project.writeKubeconfig("other.yaml", kubeconfigText({ server: ACME_SERVER }));
        const otherCluster = await tenant([...args, "--kubeconfig", "other.yaml"]);
        assert.equal(otherCluster.code, 1);
        assert.match(otherCluster.stderr, /server https:\/\/acme\.k3s\.example\.net:6443 differs from --server https:\/\/prod-hooli-us\.k3s\.agentfleet\.example\.net:6443/);
        assert.deepEqual(engine.calls, []);
        const done = await tenant([...args, "--kubeconfig", "acme.k3s.yaml"]);
        assert.equal(done.code, 0, done.stderr);
        assert.deepEqual(engine.calls, ["destroy prod-tenant-prod-hooli-us"]);
        assert.match(done.stdout, /Destroyed onboarding stack prod-tenant-prod-hooli-us of removed tenant prod-hooli-us: its token is revoked/);
        assert.equal(project.stackText("prod"), removed);

        const again = await tenant(args);
        assert.equal(again.code, 1, "with neither an entry nor an onboarding stack, the tenant is unknown");
        assert.match(again.stderr, /no tenant is named "prod-hooli-us"/);
    });

    it("of a bootstrap tenant refuses, touching nothing, when the deploying ref is missing; --deployed-ref none destroys at once", async () => {
        const before = project.stackText("prod");
        const missing = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--deployed-ref", "origin/nosuch"]);
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /git has no ref origin\/nosuch in .*: pass --deployed-ref REF .*, or --deployed-ref none to skip this check knowingly/);
        assert.equal(project.stackText("prod"), before);
        assert.deepEqual(engineOf("prod").calls, []);

        engineOf("prod").stacks.set("prod-tenant-prod-hooli-us", { settings: { tenant: "prod-hooli-us", namespaces: ["voice-agent"], tokenGenerations: [0] }, ups: 1 });
        const skipped = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--deployed-ref", "none", "--kubeconfig", "acme.k3s.yaml"]);
        assert.equal(skipped.code, 0, skipped.stderr);
        assert.deepEqual(engineOf("prod").calls, ["destroy prod-tenant-prod-hooli-us"]);
        assert.match(skipped.stdout, /were already deleted with its onboarding stack/);
    });

    it("undoes an add byte for byte", async () => {
        const before = project.stackText("dev");
        assert.equal((await tenant(ADD_ACME)).code, 0);
        assert.equal((await tenant(["remove", "--stack", "dev", "--name", "acme", "--kubeconfig", "acme.k3s.yaml"])).code, 0);
        assert.equal(project.stackText("dev"), before);
    });

    it("refuses to remove a bootstrap tenant without its admin kubeconfig, naming what to give, before anything is touched", async () => {
        // Its onboarding stack exists (bootstrapped before).
        engineOf("prod").stacks.set("prod-tenant-prod-hooli-us", { settings: { tenant: "prod-hooli-us", namespaces: ["voice-agent"], tokenGenerations: [0] }, ups: 1 });
        const before = project.stackText("prod");
        // --deployed-ref none: no merge to wait for, so this run destroys.
        const { code, stderr } = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--deployed-ref", "none"]);
        assert.equal(code, 2);
        assert.match(stderr, /^tenant remove: missing --kubeconfig FILE \(or --kubeconfig-dir DIR holding prod-hooli-us\.yaml\): removing bootstrap tenant prod-hooli-us destroys its onboarding stack prod-tenant-prod-hooli-us on the tenant with its admin kubeconfig; if the cluster is gone for good, use --decommission instead\n/);
        assert.deepEqual(engineOf("prod").calls, []);
        assert.equal(project.stackText("prod"), before);
        const missing = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--deployed-ref", "none", "--kubeconfig", "nosuch.yaml"]);
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /nosuch\.yaml: no such kubeconfig file/);
        assert.deepEqual(engineOf("prod").calls, []);
        assert.equal(project.stackText("prod"), before);
    });

    it("removes a bootstrap tenant never bootstrapped (no onboarding stack) without a kubeconfig: there is nothing on it to destroy", async () => {
        project.writeStack("dev", addTenant(project.stackText("dev"), { name: "acme", server: ACME_SERVER, ring: "canary", region: "eu-west", credentials: "bootstrap" }));
        const { code, stderr } = await tenant(["remove", "--stack", "dev", "--name", "acme"]);
        assert.equal(code, 0, stderr);
        assert.deepEqual(engineOf("dev").calls, []);
        assert.ok(!project.stackText("dev").includes("name: acme"));
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

    it("--decommission drops the onboarding stack without contacting the cluster, sets decommissioned: true, keeps its credentials, and says to remove the entry after pulumi up", async () => {
        const before = project.stackText("prod");
        const { code, stdout } = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--decommission"]);
        assert.equal(code, 0);
        const after = project.stackText("prod");
        assert.deepEqual(lineChanges(before, after), { removed: [], added: ["      decommissioned: true"] });
        assert.equal(project.tenantFile("prod", "prod-hooli-us"), "server: https://prod-hooli-us.k3s.agentfleet.example.net:6443\nring: main\nregion: us-east\ncredentials: bootstrap\ndecommissioned: true\n");
        assert.deepEqual(engineOf("prod").calls, ["destroy prod-tenant-prod-hooli-us forget"]);
        assert.match(stdout, /its onboarding stack was dropped \(its state forgotten, the cluster not contacted\)/);
        assert.match(stdout, /After that pulumi up --stack prod succeeds, remove the entry: npm run tenant -- remove --stack prod --name prod-hooli-us/);

        assert.equal((await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us", "--decommission"])).code, 1, "decommissioning twice is refused");
        const removal = await tenant(["remove", "--stack", "prod", "--name", "prod-hooli-us"]);
        assert.equal(removal.code, 0);
        assert.match(removal.stdout, /Removed decommissioned tenant prod-hooli-us/);
        assert.equal(configOf(project.stackText("prod"))["agentfleet:tenantCredentials"]["prod-hooli-us"], undefined);
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

    it("bootstrap, rotate, migrate and remove of a bootstrap tenant say in one line that the CLI is needed and how to get it, and touch nothing", async () => {
        const before = project.stackText("prod");
        const commands: Array<[string, string[]]> = [
            ["bootstrap", ["bootstrap", "--stack", "prod", "--name", "acme", "--kubeconfig", "acme.k3s.yaml", "--server", ACME_SERVER, "--ring", "main", "--region", "eu-west"]],
            ["rotate", ["rotate", "--stack", "prod", "--all", "--kubeconfig-dir", "."]],
            ["migrate", ["migrate", "--stack", "prod", "--name", "prod-acme-eu", "--kubeconfig", "acme.k3s.yaml"]],
            ["remove of bootstrap tenant prod-hooli-us", ["remove", "--stack", "prod", "--name", "prod-hooli-us"]],
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

    it("remove of a token tenant needs no CLI", async () => {
        const r = await withoutPulumi(["remove", "--stack", "prod", "--name", "prod-initech-eu"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Removed tenant prod-initech-eu/);
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
