import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { ConfigError, controllerShardsFor, hasRollingSyncFix, isLoopbackHost, hubKubeconfigProblem, parseMaxUpdate, stepMatches, validateConfig } from "../stacks/config";
import { evaluate } from "../evaluator/evaluate";
import { assertProblem, configProblems, inventoryOf, key } from "./helpers";

type Config = Record<string, unknown>;
const tenants = (c: Config) => key(c, "tenants") as Array<Record<string, unknown>>;
const steps = (c: Config) => key(c, "rollout").steps as Array<Record<string, unknown>>;

describe("configuration validation", () => {
    describe("rejects, before declaring anything, with the stack-file key path", () => {
        it("a missing required key", async () => {
            const problems = await configProblems("dev", (c) => delete c["agentfleet:deploy"]);
            assertProblem(problems, "agentfleet:deploy", "is required");
        });

        // Argo CD lists in every namespace of the cluster Secret; where argocd-manager has no Role, the
        // 403 stops its cache of the whole tenant (gitops-engine pkg/cache/cluster.go).
        it("a tenant namespace its onboarding stack has not granted argocd-manager (grantedNamespaces)", async () => {
            const problems = await configProblems("dev", (c) => Object.assign(tenants(c)[0], { namespaces: ["voice-agent", "voice-agent-eu"], grantedNamespaces: ["voice-agent"] }));
            assertProblem(problems, "fleet/dev/dev-acme.yaml: namespaces", '"voice-agent-eu"', "has not granted", "403", "`npm run tenant -- bootstrap --stack dev --name dev-acme --kubeconfig <admin kubeconfig>`");
        });

        it("a value of the wrong type", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[0].paused = "sometimes"));
            assertProblem(problems, "fleet/dev/dev-acme.yaml: paused", "expected true or false");
        });

        it("an unknown key that is likely a typo, with a suggestion", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[1].regoin = "eu-west"));
            assertProblem(problems, "fleet/dev/dev-globex.yaml: regoin", "unknown key", "did you mean 'region'");
        });

        it("an unknown top-level configuration key", async () => {
            const problems = await configProblems("dev", (c) => (c["agentfleet:rolout"] = {}));
            assertProblem(problems, "agentfleet:rolout", "unknown configuration key", "did you mean 'rollout'");
        });

        it("a non-https tenant server", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[0].server = "http://dev-acme.k3s.example.net:6443"));
            assertProblem(problems, "fleet/dev/dev-acme.yaml: server", "must use https");
        });

        for (const host of ["127.0.0.1", "localhost", "[::1]"]) {
            it(`a loopback tenant server (${host}, the k3s kubeconfig default)`, async () => {
                const problems = await configProblems("dev", (c) => (tenants(c)[0].server = `https://${host}:6443`));
                assertProblem(problems, "fleet/dev/dev-acme.yaml: server", "loopback", "address the hub reaches", "--tls-san");
            });
        }

        it("a server URL carrying credentials, without repeating them", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[0].server = "http://admin:hunter2@127.0.0.1:6443"));
            assertProblem(problems, "fleet/dev/dev-acme.yaml: server", "must not carry credentials");
            assertProblem(problems, "fleet/dev/dev-acme.yaml: server", "//***@127.0.0.1", "must use https");
            assert.ok(!problems.join("\n").includes("hunter2"), "the error repeats the password");
        });

        it("a deploy revision with a Go template expression", async () => {
            const problems = await configProblems("dev", (c) => (key(c, "deploy").targetRevision = "{{.name}}"));
            assertProblem(problems, "agentfleet:deploy.targetRevision", "Go template");
        });

        it("a duplicate server, which Argo CD would resolve to an arbitrary cluster", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[1].server = `${tenants(c)[0].server}/`));
            assertProblem(problems, "fleet/dev/dev-globex.yaml: server", "duplicate server", "keys clusters by server URL");
        });

        it("an invalid namespace", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[0].namespaces = ["Voice_Agent"]));
            assertProblem(problems, "fleet/dev/dev-acme.yaml: namespaces[0]", "DNS label");
        });

        it("an invalid label key and value", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[0].labels = { "bad_key!": "ok", tier: "-gold" }));
            assertProblem(problems, "fleet/dev/dev-acme.yaml: labels.bad_key!", "not a valid Kubernetes label key");
            assertProblem(problems, "fleet/dev/dev-acme.yaml: labels.tier", "label value");
        });

        it("a free-form label that shadows a rollout label", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[0].labels = { ring: "main" }));
            assertProblem(problems, "fleet/dev/dev-acme.yaml: labels.ring", "set by agentfleet");
        });

        it("tenantCredentials, retired: tenant stacks register their tenants; it names the migration and says not to run the hub first", async () => {
            const problems = await configProblems("dev", (c) => (c["agentfleet:tenantCredentials"] = { "dev-acme": { bearerToken: { secure: "v1:AAAA:BBBB" }, caData: { secure: "v1:AAAA:CCCC" } } }));
            assertProblem(problems, "agentfleet:tenantCredentials", "is no longer configuration", "each tenant's own stack registers it", "Do not run the hub stack until", "`npm run tenant -- migrate-registration --stack dev`", "removes the tenant's entry of this key");
            assert.strictEqual(problems.length, 1, problems.join("\n"));
            assert.ok(!problems.join("\n").includes("BBBB"), "the error repeats the secret");
        });

        it("a tenant that no rollout step matches (it would never be synced)", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[1].ring = "mian"));
            assertProblem(problems, "fleet/dev/dev-globex.yaml", "dev-globex matches no rollout step", "did you mean 'main'");
        });

        it("a tenant that two steps match", async () => {
            const problems = await configProblems("dev", (c) => steps(c).push({ name: "all", matchExpressions: [{ key: "env", operator: "In", values: ["dev"] }] }));
            assertProblem(problems, "fleet/dev/dev-acme.yaml", "matches rollout steps 1 (canary) and 3 (all)");
        });

        it("a step that matches no tenant", async () => {
            const problems = await configProblems("dev", (c) => steps(c).push({ name: "ghost", matchExpressions: [{ key: "ring", operator: "In", values: ["ghost"] }] }));
            assertProblem(problems, "agentfleet:rollout.steps[2]", "matches no tenant");
        });

        it("an operator RollingSync does not support", async () => {
            const problems = await configProblems("dev", (c) => ((steps(c)[0].matchExpressions as Config[])[0].operator = "Exists"));
            assertProblem(problems, "agentfleet:rollout.steps[0].matchExpressions[0].operator", "use In or NotIn");
        });

        it("a step matching a label the Applications do not carry", async () => {
            const problems = await configProblems("dev", (c) => ((steps(c)[0].matchExpressions as Config[])[0].key = "tier"));
            assertProblem(problems, "agentfleet:rollout.steps[0].matchExpressions[0].key", "not a label the generated Applications carry");
        });

        for (const bad of ["150%", "-1", 1.5, "ten", -2, "%"]) {
            it(`a malformed maxUpdate (${JSON.stringify(bad)})`, async () => {
                const problems = await configProblems("dev", (c) => (steps(c)[0].maxUpdate = bad));
                assertProblem(problems, "agentfleet:rollout.steps[0].maxUpdate", "expected a whole number of apps");
            });
        }

        it("an Argo CD version with the RollingSync tight loop", async () => {
            const problems = await configProblems("dev", (c) => (key(c, "hub").argocdVersion = "v3.4.4"));
            assertProblem(problems, "agentfleet:hub.argocdVersion", "#27577", "v3.4.7");
        });

        it("a Slack notifier without its token", async () => {
            const problems = await configProblems("dev", (c) => delete key(c, "notificationSecrets").slackToken);
            assertProblem(problems, "agentfleet:notificationSecrets.slackToken", "is required when notifications.slack is set");
        });

        it("a malformed sync window", async () => {
            const problems = await configProblems("prod", (c) => (key(c, "rollout").syncWindows[0].duration = "five hours"));
            assertProblem(problems, "agentfleet:rollout.syncWindows[0].duration", "duration");
        });
    });

    it("reports every problem at once", async () => {
        const problems = await configProblems("dev", (c) => {
            tenants(c)[0].server = "http://127.0.0.1:6443";
            tenants(c)[1].name = "Not A Label";
            key(c, "deploy").applicationsSync = "delete-everything";
        });
        assertProblem(problems, "fleet/dev/dev-acme.yaml: server", "https");
        assertProblem(problems, "fleet/dev/dev-acme.yaml: server", "loopback");
        assertProblem(problems, "fleet/dev/Not A Label.yaml", "the file name is the tenant's name and must be a DNS label");
        assertProblem(problems, "agentfleet:deploy.applicationsSync", "create-update");
    });
});

describe("configuration rules", () => {
    it("knows which Argo CD versions carry the RollingSync fix", () => {
        assert.deepStrictEqual(["v3.3.9", "v3.4.4", "v3.4.6", "v3.4.7", "v3.4.12", "v3.5.0", "v3.5.1", "v3.6.0", "v2.14.0", "v4.0.0"].map(hasRollingSyncFix), [false, false, false, true, true, false, true, true, false, true]);
    });

    it("recognises loopback hosts", () => {
        assert.deepStrictEqual(["127.0.0.1", "127.1.2.3", "localhost", "[::1]", "::1", "k3s.example.net", "10.0.0.1"].map(isLoopbackHost), [true, true, true, true, true, false, false]);
    });

    it("parses maxUpdate as Argo CD's int-or-string", () => {
        assert.deepStrictEqual([0, 3, "0%", "20%", "100%"].map((v) => parseMaxUpdate(v).ok), [true, true, true, true, true]);
        assert.deepStrictEqual(["101%", "3", -1, 2.5, null].map((v) => parseMaxUpdate(v).ok), [false, false, false, false, false]);
    });

    it("matches steps the way RollingSync does: In needs the key, NotIn passes without it", () => {
        const step = (operator: "In" | "NotIn") => ({ matchExpressions: [{ key: "ring", operator, values: ["canary"] }] });
        assert.strictEqual(stepMatches(step("In"), { ring: "canary" }), true);
        assert.strictEqual(stepMatches(step("In"), {}), false);
        assert.strictEqual(stepMatches(step("NotIn"), {}), true);
        assert.strictEqual(stepMatches(step("NotIn"), { ring: "canary" }), false);
        const both = { matchExpressions: [...step("In").matchExpressions, { key: "region", operator: "In" as const, values: ["eu-west"] }] };
        assert.strictEqual(stepMatches(both, { ring: "canary", region: "us-east" }), false, "expressions are ANDed");
    });

    it("sizes application controller shards from the fleet: 1 without HA, else one per 25 tenants, 2 to 10", () => {
        assert.deepStrictEqual([1, 7, 50, 51, 1000].map((n) => controllerShardsFor(n, true)), [2, 2, 2, 3, 10]);
        assert.strictEqual(controllerShardsFor(1000, false), 1);
    });
});

describe("the hub's kubeconfig: the run's KUBECONFIG, checked against hub.server", () => {
    const HUB = "https://hub.example.net:6443";
    const TOKEN = "hub-admin-token-not-for-errors";
    let dir: string;
    before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-hub-kubeconfig-"))));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    /** A kubeconfig file with one context per server, the first current. */
    const kubeconfig = (name: string, contexts: Record<string, string>): string => {
        const file = path.join(dir, name);
        const entries = Object.entries(contexts);
        fs.writeFileSync(
            file,
            YAML.stringify({
                apiVersion: "v1",
                kind: "Config",
                clusters: entries.map(([c, server]) => ({ name: c, cluster: { server } })),
                contexts: entries.map(([c]) => ({ name: c, context: { cluster: c, user: "admin" } })),
                users: [{ name: "admin", user: { token: TOKEN } }],
                "current-context": entries[0][0],
            }),
        );
        return file;
    };

    it("passes when the current context (or hub.context) points at hub.server, a trailing slash aside", () => {
        assert.strictEqual(hubKubeconfigProblem("prod", { server: HUB }, { KUBECONFIG: kubeconfig("hub", { hub: `${HUB}/` }) }), undefined);
        const two = kubeconfig("two", { staging: "https://hub.staging.example.net:6443", prod: HUB });
        assert.strictEqual(hubKubeconfigProblem("prod", { server: HUB, context: "prod" }, { KUBECONFIG: two }), undefined);
    });

    it("refuses another cluster's context, naming both servers and the keys, never a credential", () => {
        const two = kubeconfig("staging-first", { staging: "https://hub.staging.example.net:6443", prod: HUB });
        const problem = hubKubeconfigProblem("prod", { server: HUB }, { KUBECONFIG: two }) ?? "";
        assert.match(problem, /^agentfleet:hub\.server: the kubeconfig in KUBECONFIG \(.*staging-first\) points context "staging" at https:\/\/hub\.staging\.example\.net:6443, not at Pulumi\.prod\.yaml's hub https:\/\/hub\.example\.net:6443; nothing was touched/);
        assert.match(problem, /agentfleet:hub\.context/);
        assert.ok(!problem.includes(TOKEN), problem);
    });

    it("merges the files KUBECONFIG lists as client-go does: the first file defining a name, and the first current-context, win", () => {
        const first = kubeconfig("first", { hub: HUB });
        const second = kubeconfig("second", { hub: "https://elsewhere.example.net:6443", other: "https://other.example.net:6443" });
        assert.strictEqual(hubKubeconfigProblem("prod", { server: HUB }, { KUBECONFIG: [first, second].join(path.delimiter) }), undefined);
        assert.match(hubKubeconfigProblem("prod", { server: HUB }, { KUBECONFIG: [second, first].join(path.delimiter) }) ?? "", /points context "hub" at https:\/\/elsewhere/);
    });

    it("refuses a missing kubeconfig, and a hub.context the kubeconfig lacks, saying what to do", () => {
        assert.match(hubKubeconfigProblem("prod", { server: HUB }, { KUBECONFIG: path.join(dir, "absent") }) ?? "", /^agentfleet:hub\.server: no kubeconfig to reach the hub https:\/\/hub\.example\.net:6443: KUBECONFIG \(.*absent\) does not exist; run with KUBECONFIG naming the hub's kubeconfig file/);
        assert.match(hubKubeconfigProblem("prod", { server: HUB }, { HOME: dir }) ?? "", /\.kube\/config \(KUBECONFIG is not set\) does not exist/);
        assert.match(hubKubeconfigProblem("prod", { server: HUB, context: "prod-hub" }, { KUBECONFIG: kubeconfig("one", { hub: HUB }) }) ?? "", /^agentfleet:hub\.context: the kubeconfig in KUBECONFIG .* has no context "prod-hub" \(contexts: hub\)/);
    });

    it("a stack file still holding hubKubeconfig is refused, saying how to move it out", () => {
        let problems: string[] = [];
        try {
            validateConfig("prod", {}, {}, ["hubKubeconfig"], inventoryOf("fleet/prod", []));
        } catch (err) {
            assert.ok(err instanceof ConfigError, String(err));
            problems = err.problems;
        }
        assertProblem(problems, "agentfleet:hubKubeconfig", "is no longer configuration", "pulumi config get hubKubeconfig --stack prod > hub-prod.kubeconfig", "pulumi config rm hubKubeconfig --stack prod", "KUBECONFIG=hub-prod.kubeconfig");
    });
});

describe("a tenant's namespaces and what its onboarding stack granted", () => {
    it("accepts granted namespaces, and dropping one from the hub alone (Argo CD just stops listing there)", async () => {
        const ev = await evaluate("dev", { edit: (c) => Object.assign(tenants(c)[0], { namespaces: ["voice-agent"], grantedNamespaces: ["voice-agent", "voice-agent-old"] }) });
        assert.ok(ev.resources.length > 0);
    });
});
