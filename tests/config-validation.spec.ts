import * as assert from "assert";
import { ConfigError, controllerShardsFor, hasRollingSyncFix, isLoopbackHost, kubeconfigProblem, parseMaxUpdate, stepMatches, validateConfig } from "../stacks/config";
import { evaluate } from "../evaluator/evaluate";
import { assertProblem, configProblems, key } from "./helpers";

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
            assertProblem(problems, "agentfleet:tenants[0].namespaces", '"voice-agent-eu"', "has not granted", "403", "`npm run tenant -- bootstrap --stack dev --name dev-acme --kubeconfig <admin kubeconfig>`");
        });

        it("a value of the wrong type", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[0].paused = "sometimes"));
            assertProblem(problems, "agentfleet:tenants[0].paused", "expected true or false");
        });

        it("an unknown key that is likely a typo, with a suggestion", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[1].regoin = "eu-west"));
            assertProblem(problems, "agentfleet:tenants[1].regoin", "unknown key", "did you mean 'region'");
        });

        it("an unknown top-level configuration key", async () => {
            const problems = await configProblems("dev", (c) => (c["agentfleet:tenant"] = []));
            assertProblem(problems, "agentfleet:tenant", "unknown configuration key", "did you mean 'tenants'");
        });

        it("a non-https tenant server", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[0].server = "http://dev-acme.k3s.example.net:6443"));
            assertProblem(problems, "agentfleet:tenants[0].server", "must use https");
        });

        for (const host of ["127.0.0.1", "localhost", "[::1]"]) {
            it(`a loopback tenant server (${host}, the k3s kubeconfig default)`, async () => {
                const problems = await configProblems("dev", (c) => (tenants(c)[0].server = `https://${host}:6443`));
                assertProblem(problems, "agentfleet:tenants[0].server", "loopback", "address the hub reaches", "--tls-san");
            });
        }

        it("a server URL carrying credentials, without repeating them", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[0].server = "http://admin:hunter2@127.0.0.1:6443"));
            assertProblem(problems, "agentfleet:tenants[0].server", "must not carry credentials");
            assertProblem(problems, "agentfleet:tenants[0].server", "//***@127.0.0.1", "must use https");
            assert.ok(!problems.join("\n").includes("hunter2"), "the error repeats the password");
        });

        it("a deploy revision with a Go template expression", async () => {
            const problems = await configProblems("dev", (c) => (key(c, "deploy").targetRevision = "{{.name}}"));
            assertProblem(problems, "agentfleet:deploy.targetRevision", "Go template");
        });

        it("a duplicate tenant name", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[1].name = tenants(c)[0].name));
            assertProblem(problems, "agentfleet:tenants[1].name", "duplicate tenant name", "agentfleet:tenants[0].name");
        });

        it("a duplicate server, which Argo CD would resolve to an arbitrary cluster", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[1].server = `${tenants(c)[0].server}/`));
            assertProblem(problems, "agentfleet:tenants[1].server", "duplicate server", "keys clusters by server URL");
        });

        it("an invalid namespace", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[0].namespaces = ["Voice_Agent"]));
            assertProblem(problems, "agentfleet:tenants[0].namespaces[0]", "DNS label");
        });

        it("an invalid label key and value", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[0].labels = { "bad key!": "ok", tier: "-gold" }));
            assertProblem(problems, "agentfleet:tenants[0].labels.bad key!", "not a valid Kubernetes label key");
            assertProblem(problems, "agentfleet:tenants[0].labels.tier", "label value");
        });

        it("a free-form label that shadows a rollout label", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[0].labels = { ring: "main" }));
            assertProblem(problems, "agentfleet:tenants[0].labels.ring", "set by agentfleet");
        });

        it("a bootstrap tenant not bootstrapped yet: no token and CA, naming the bootstrap command", async () => {
            const problems = await configProblems("dev", (c) => delete key(c, "tenantCredentials")["dev-acme"]);
            for (const field of ["bearerToken", "caData"]) {
                assertProblem(problems, `agentfleet:tenantCredentials.dev-acme.${field}`, "is required", "credentials: bootstrap", "`npm run tenant -- bootstrap --stack dev --name dev-acme --kubeconfig <admin kubeconfig>`");
            }
        });

        it("a tenant kubeconfig left in the hub stack (the layout before onboarding stacks), naming the migrate command", async () => {
            const problems = await configProblems("dev", (c) => (key(c, "tenantCredentials")["dev-acme"] = { kubeconfig: { secure: "v1:AAAA:BBBB" } }));
            assertProblem(problems, "agentfleet:tenantCredentials.dev-acme.kubeconfig", "no longer holds a tenant kubeconfig", "`npm run tenant -- migrate --stack dev --name dev-acme --kubeconfig <file>`");
            // The migration stores the token and CA: asking for them as well would send the user to bootstrap.
            assert.deepStrictEqual(problems.filter((p) => p.includes("dev-acme")).length, 1, problems.join("\n"));
        });

        it("a kubeconfig given to a token tenant: never the migrate command (nothing of it was in the hub state)", async () => {
            const problems = await configProblems("dev", (c) => (key(c, "tenantCredentials")["dev-globex"] = { kubeconfig: { secure: "v1:AAAA:BBBB" } }));
            assertProblem(problems, "agentfleet:tenantCredentials.dev-globex.kubeconfig", "uses credentials: token", "pulumi config rm --stack dev --path 'tenantCredentials.dev-globex.kubeconfig'");
            assertProblem(problems, "agentfleet:tenantCredentials.dev-globex.bearerToken", "is required", "credentials: token");
            assert.ok(!problems.join("\n").includes("migrate"), problems.join("\n"));
        });

        it("a token tenant without its CA", async () => {
            const problems = await configProblems("dev", (c) => delete key(c, "tenantCredentials")["dev-globex"].caData);
            assertProblem(problems, "agentfleet:tenantCredentials.dev-globex.caData", "is required", "token");
        });

        it("credentials for a tenant that does not exist", async () => {
            const problems = await configProblems("dev", (c) => (key(c, "tenantCredentials")["dev-acne"] = { bearerToken: { secure: "v1:AAAA:BBBB" }, caData: { secure: "v1:AAAA:CCCC" } }));
            assertProblem(problems, "agentfleet:tenantCredentials.dev-acne", "no tenant is named", "did you mean 'dev-acme'");
        });

        it("a secret given as plaintext", async () => {
            const problems = await configProblems("dev", (c) => (key(c, "tenantCredentials")["dev-globex"].bearerToken = "plaintext-token"));
            assertProblem(problems, "agentfleet:tenantCredentials.dev-globex.bearerToken", "plaintext", "--secret");
            assert.ok(!problems.join("\n").includes("plaintext-token"), "the error repeats the secret");
        });

        it("credentials encrypted as one opaque value instead of per entry", async () => {
            const problems = await configProblems("dev", (c) => (c["agentfleet:tenantCredentials"] = { secure: "v1:AAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBB" }));
            assertProblem(problems, "agentfleet:tenantCredentials", "is not a structured secret", "--path");
        });

        it("a tenant that no rollout step matches (it would never be synced)", async () => {
            const problems = await configProblems("dev", (c) => (tenants(c)[1].ring = "mian"));
            assertProblem(problems, "agentfleet:tenants[1]", "dev-globex matches no rollout step", "did you mean 'main'");
        });

        it("a tenant that two steps match", async () => {
            const problems = await configProblems("dev", (c) => steps(c).push({ name: "all", matchExpressions: [{ key: "env", operator: "In", values: ["dev"] }] }));
            assertProblem(problems, "agentfleet:tenants[0]", "matches rollout steps 1 (canary) and 3 (all)");
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
        assertProblem(problems, "agentfleet:tenants[0].server", "https");
        assertProblem(problems, "agentfleet:tenants[0].server", "loopback");
        assertProblem(problems, "agentfleet:tenants[1].name", "DNS label");
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

describe("the hub kubeconfig", () => {
    // Line 7 is indented one column short of its siblings (BAD_INDENT in the yaml library).
    const TOKEN = "hub-admin-token-not-for-errors";
    const BAD_INDENT = ["apiVersion: v1", "kind: Config", "clusters:", "  - name: hub", "    cluster:", "      server: https://hub.example.net:6443", "     certificate-authority-data: Q0EK", "users:", `  - {name: admin, user: {token: ${TOKEN}}}`].join("\n");

    it("that is not valid YAML is named by its key, with the YAML message and line, not the library's code or the text", () => {
        const problem = kubeconfigProblem(BAD_INDENT);
        assert.strictEqual(problem, "All mapping items must start at the same column at line 7, column 1");
        let problems: string[] = [];
        try {
            validateConfig("dev", {}, { hubKubeconfig: true, hubKubeconfigProblem: problem });
        } catch (err) {
            assert.ok(err instanceof ConfigError, String(err));
            problems = err.problems;
        }
        assertProblem(problems, "agentfleet:hubKubeconfig", "is not a valid kubeconfig: All mapping items must start at the same column at line 7", "pulumi config set --secret hubKubeconfig");
        const reported = problems.filter((p) => p.startsWith("agentfleet:hubKubeconfig:")).join("\n");
        assert.ok(!reported.includes("BAD_INDENT") && !reported.includes("Q0EK") && !reported.includes(TOKEN) && !/:\s*$/.test(reported), reported);
    });

    it("must list clusters, contexts and users when it is a map; a single string is a path the provider reads", () => {
        assert.strictEqual(kubeconfigProblem("apiVersion: v1\nkind: Config\nclusters: []\n"), "it has no clusters, no contexts, no users (a kubeconfig lists clusters, contexts and users)");
        assert.strictEqual(kubeconfigProblem("- a\n- b\n"), "it is not a map with clusters, contexts and users");
        assert.strictEqual(kubeconfigProblem("/home/ops/.kube/hub.yaml"), undefined);
        assert.strictEqual(kubeconfigProblem(BAD_INDENT.replace("     certificate", "      certificate").replace("users:", "contexts: [{name: hub, context: {cluster: hub, user: admin}}]\nusers:")), undefined);
    });
});

describe("a tenant's namespaces and what its onboarding stack granted", () => {
    it("accepts granted namespaces, and dropping one from the hub alone (Argo CD just stops listing there)", async () => {
        const ev = await evaluate("dev", { edit: (c) => Object.assign(tenants(c)[0], { namespaces: ["voice-agent"], grantedNamespaces: ["voice-agent", "voice-agent-old"] }) });
        assert.ok(ev.resources.length > 0);
    });
});
