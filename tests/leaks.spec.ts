/**
 * Secret-leak scan. For every committed stack, no secret placeholder (`__SECRET__<key path>__`, a
 * stand-in for a `secure:` value), no generated credential (`__GENERATED__...__`: the git
 * webhook's shared secret, the argocd-manager token and CA), no base64 form of either and no ciphertext of the
 * stack file may appear in anything a person or CI log sees: the render files, the plan and diff
 * commands' stdout and stderr, the stack outputs (but secret ones, which show as [secret]), and the error messages of broken
 * configurations. And every captured input that carries a credential is marked secret, so the
 * engine encrypts it in state.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { NOTIFICATIONS_SECRET } from "../components/argocd-hub";
import { ConfigError } from "../stacks/config";
import { EMPTY_SNAPSHOT, type Snapshot, formatDiff, snapshotOf } from "../commands/diff";
import { type Evaluation, GENERATED_PREFIX, REDACTED, ROOT, SECRET_PREFIX, declaredObjects, secretPaths } from "../evaluator/evaluate";
import { main as planMain } from "../commands/plan";
import { STACKS, type Obj, brokenFixtures, configProblems, evaluated, projectCopy, registrationsOf, rendered, runTool, secretMaterial } from "./helpers";

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** The service-account tokens and CAs the mocks make up for this evaluation (see evaluator/evaluate.ts mockState). */
function tokenValues(ev: Evaluation): string[] {
    return ev.resources.flatMap((r) => (r.type === "kubernetes:core/v1:Secret" && r.inputs.type === "kubernetes.io/service-account-token" ? [`${GENERATED_PREFIX}${r.name}-token__`, `${GENERATED_PREFIX}${r.name}-ca__`] : []));
}

/** The passwords the mocks make up for RandomPasswords (the git webhook's shared secret). */
function passwordValues(ev: Evaluation): string[] {
    return ev.resources.filter((r) => r.type === "random:index/randomPassword:RandomPassword").map((r) => `${GENERATED_PREFIX}${r.name}__`);
}

const generatedValues = (ev: Evaluation): string[] => [...tokenValues(ev), ...passwordValues(ev)];

/** The stack outputs as `pulumi stack output` shows them: secret ones as [secret]. */
const shownOutputs = (ev: Evaluation) => Object.fromEntries(Object.entries(ev.outputs).map(([k, v]) => [k, ev.secretOutputs.includes(k) ? REDACTED : v]));

/** Everything that must never be shown, as it is and base64-encoded: of the hub stack and of its tenant stacks (their registrations). */
function needlesOf(stack: string, ev: Evaluation, registrations: Evaluation[]): string[] {
    const raw = [ev, ...registrations].flatMap((e) => [...e.placeholders, ...generatedValues(e)]);
    const { ciphertexts } = secretMaterial(path.join(ROOT, `Pulumi.${stack}.yaml`));
    return [SECRET_PREFIX, GENERATED_PREFIX, ...raw, ...raw.map(b64), ...ciphertexts];
}

/** The needles found in `text`, for an assertion message. */
const found = (text: string, needles: string[]) => needles.filter((n) => text.includes(n));

function assertClean(where: string, text: string, needles: string[]): void {
    const hits = found(text, needles);
    assert.deepStrictEqual(hits, [], `${where} shows secret material: ${hits.join(", ")}`);
}

/** Paths of string leaves that carry a needle but are not inside a value marked secret. */
function unmarkedSecrets(value: unknown, needles: string[], inSecret = false, at = ""): string[] {
    if (pulumi.runtime.isRpcSecret(value)) return unmarkedSecrets(pulumi.runtime.unwrapRpcSecret(value), needles, true, at);
    if (Array.isArray(value)) return value.flatMap((v, i) => unmarkedSecrets(v, needles, inSecret, `${at}[${i}]`));
    if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => unmarkedSecrets(v, needles, inSecret, at ? `${at}.${k}` : k));
    return typeof value === "string" && !inSecret && needles.some((n) => value.includes(n)) ? [at] : [];
}

/** Runs a command's `main` in process and captures what it writes. */
async function captured(run: () => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const write = { stdout: process.stdout.write, stderr: process.stderr.write };
    process.stdout.write = ((chunk: unknown) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: unknown) => (err.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
        const code = await run();
        return { code, stdout: out.join(""), stderr: err.join("") };
    } finally {
        process.stdout.write = write.stdout;
        process.stderr.write = write.stderr;
    }
}

/** The snapshot with every leaf changed, so a diff against it prints every value of `s`. */
function everythingChanged(s: Snapshot): Snapshot {
    const change = (v: unknown): unknown =>
        typeof v === "string" ? `${v}~` : typeof v === "number" ? v + 1 : typeof v === "boolean" ? !v : Array.isArray(v) ? v.map(change) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, change(x)])) : "~";
    return {
        resources: new Map([...s.resources].map(([k, v]) => [k, change(v) as Obj])),
        apps: new Map([...s.apps].map(([t, objs]) => [t, new Map([...objs].map(([k, v]) => [k, change(v) as Obj]))])),
        steps: new Map([...s.steps].map(([t, step]) => [t, step + 1])),
        order: s.order,
        urns: s.urns,
        aliases: s.aliases,
    };
}

describe("secret-leak scan", function () {
    this.timeout(180000);

    for (const stack of STACKS) {
        describe(`stack ${stack}`, () => {
            let needles: string[];
            before(async () => {
                needles = needlesOf(stack, await evaluated(stack), await registrationsOf(stack));
            });

            it("has secrets to look for: a placeholder per secure value; the hub stack generates no tenant credential", async () => {
                const ev = await evaluated(stack);
                assert.strictEqual(ev.placeholders.length, secretMaterial(path.join(ROOT, `Pulumi.${stack}.yaml`)).ciphertexts.length);
                assert.ok(ev.placeholders.length >= 1);
                // Tenant tokens are generated in the onboarding stacks (tests/tenant-access.spec.ts), never in the hub's.
                assert.deepStrictEqual(tokenValues(ev), []);
            });

            it("marks every captured input that carries a credential secret, in the hub stack and in its tenant stacks", async () => {
                const ev = await evaluated(stack);
                const all = [ev, ...(await registrationsOf(stack))];
                const unmarked = all.flatMap((e) => e.resources.flatMap((r) => unmarkedSecrets(r.inputs, needles).map((p) => `${e.stack} ${r.type}::${r.name} ${p}`)));
                assert.deepStrictEqual(unmarked, [], "credential material outside a secret");
                const providers = all.flatMap((e) => e.resources.filter((r) => r.type === "pulumi:providers:kubernetes"));
                assert.ok(providers.length >= 2);
                // No provider holds a kubeconfig: each run reads the hub's (and a tenant's) from KUBECONFIG.
                for (const p of providers) assert.strictEqual(p.inputs.kubeconfig, "", `provider ${p.name} has a kubeconfig input, which state would store`);
                const hubSecrets = all.flatMap(declaredObjects).filter((o) => o.cluster === "hub" && o.object.kind === "Secret");
                const clusterSecrets = hubSecrets.filter((o) => (o.object.metadata as Obj).labels?.["argocd.argoproj.io/secret-type"] === "cluster");
                assert.ok(clusterSecrets.length >= 1);
                for (const o of clusterSecrets) assert.deepStrictEqual(secretPaths(o.resource.inputs), ["stringData"], `${o.resource.name}: stringData is not (only and entirely) secret`);
                for (const name of [NOTIFICATIONS_SECRET]) {
                    const secret = hubSecrets.find((o) => (o.object.metadata as Obj).name === name);
                    assert.ok(secret, `no ${name}`);
                    assert.deepStrictEqual(secretPaths(secret.resource.inputs), ["stringData"], `${name}: stringData is not secret`);
                }
            });

            it("keeps them out of resources.json, the manifests, apps/* and plan.json", async () => {
                const { files } = await rendered(stack);
                assert.ok(Object.keys(files).some((f) => f.startsWith("apps/")) && files["plan.json"]);
                for (const [file, content] of Object.entries(files)) assertClean(file, content, needles);
            });

            it("keeps them out of the stack outputs", async () => {
                assertClean("the stack outputs as pulumi stack output shows them", JSON.stringify(shownOutputs(await evaluated(stack))), needles);
            });

            it("keeps them out of `npm run plan` (stdout and stderr)", async () => {
                const r = await captured(() => planMain(["--stack", stack]));
                assert.strictEqual(r.code, 0, r.stderr);
                assert.match(r.stdout, /agentfleet plan: stack/);
                assertClean("plan stdout", r.stdout, needles);
                assertClean("plan stderr", r.stderr, needles);
            });

            it("keeps them out of `npm run diff`, even when every value changed", async () => {
                const head = snapshotOf(await rendered(stack));
                for (const [base, label] of [
                    [everythingChanged(head), "every value changed"],
                    [EMPTY_SNAPSHOT, "a new stack"],
                ] as const) {
                    const { markdown, changes } = formatDiff(stack, "base", base, head);
                    assert.ok(changes > 0);
                    assertClean(`diff (${label})`, markdown, needles);
                }
            });
        });
    }

    describe("the commands as processes", function () {
        this.timeout(240000);
        let root: string;
        before(() => {
            root = projectCopy();
        });
        after(() => fs.rmSync(root, { recursive: true, force: true }));

        it("npm run plan -- --stack prod prints no secret on stdout or stderr", async () => {
            const needles = needlesOf("prod", await evaluated("prod"), await registrationsOf("prod"));
            const r = runTool(root, "plan", ["--stack", "prod"]);
            assert.strictEqual(r.status, 0, r.stderr);
            assertClean("plan stdout", r.stdout, needles);
            assertClean("plan stderr", r.stderr, needles);
        });

        it("npm run diff -- --stack prod prints no secret, with tenants and notifiers changed", async () => {
            const needles = needlesOf("prod", await evaluated("prod"), await registrationsOf("prod"));
            const file = path.join(root, "Pulumi.prod.yaml");
            const text = fs.readFileSync(file, "utf8");
            // A new server for a token tenant (its registration holds its pre-issued token), a new webhook: secrets move.
            // The server is in the tenant's file.
            const tenantFile = path.join(root, "fleet", "prod", "prod-initech-eu.yaml");
            fs.writeFileSync(tenantFile, fs.readFileSync(tenantFile, "utf8").replace("https://prod-initech-eu.k3s.agentfleet.example.net:6443", "https://prod-initech-eu-2.k3s.agentfleet.example.net:6443"));
            const changed = text
                .replace("https://hooks.agentfleet.example.net/argocd/prod", "https://hooks.agentfleet.example.net/argocd/prod-2");
            assert.notStrictEqual(changed, text);
            fs.writeFileSync(file, changed);
            const r = runTool(root, "diff", ["--stack", "prod", "--base", "HEAD"]);
            assert.strictEqual(r.status, 3, `exit ${r.status}\n${r.stderr}`);
            assert.match(r.stdout, /prod-initech-eu-2/);
            assertClean("diff stdout", r.stdout, needles);
            assertClean("diff stderr", r.stderr, needles);
        });
    });

    describe("error messages of broken configurations", () => {
        const fixtures = brokenFixtures();

        it("the corpus includes plaintext secrets to look for", () => {
            // notificationSecrets is the hub stack's one secret key (tenant tokens live in the tenant stacks' state): its two tokens.
            assert.ok(fixtures.filter((f) => secretMaterial(f.file).plaintexts.length > 0).length >= 2);
        });

        for (const f of fixtures) {
            it(`${f.name}: echoes no placeholder, ciphertext or plaintext secret`, async () => {
                const { ciphertexts, plaintexts } = secretMaterial(f.file);
                const problems = await configProblems(f.name, undefined, { stackFile: f.file });
                const message = new ConfigError(problems).message;
                assertClean("the error message", message, [SECRET_PREFIX, GENERATED_PREFIX, ...ciphertexts, ...plaintexts]);
            });
        }
    });
});
