import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AGENT_NAMESPACE_ANNOTATION, FLEET_LABEL } from "../components/tenant-clusters";
import { benchFleet } from "../commands/bench";
import { heldRegistrations, readHubState } from "../stacks/config";
import { GENERATED_PREFIX, declaredObjects, declaredResources, evaluate, secretPaths } from "../evaluator/evaluate";
import { evaluateRegistrations, preIssuedPlaceholder } from "../evaluator/registrations";
import { generateApplications } from "../evaluator/render";
import { type Obj, configProblems, evaluated, key, registrationOf } from "./helpers";

const isClusterSecret = (o: { object: Record<string, unknown> }) => (o.object.metadata as Obj | undefined)?.labels?.["argocd.argoproj.io/secret-type"] === "cluster";
const hubStateUrn = (stack: string, tenant: string) => `urn:pulumi:${stack}::agentfleet::agentfleet:index:TenantClusters$kubernetes:core/v1:Secret::tenants-${tenant}`;

describe("tenant clusters", () => {
    describe("the hub stack never reaches a tenant, and registers none: each tenant's own stack does", () => {
        for (const stack of ["dev", "staging", "prod", "fleet"]) {
            it(`${stack}: declares one Kubernetes provider (the hub's), every object on the hub, and no cluster Secret`, async () => {
                const ev = await evaluated(stack);
                const providers = ev.resources.filter((r) => r.type === "pulumi:providers:kubernetes");
                assert.deepStrictEqual(providers.map((r) => r.name), ["hub"]);
                const elsewhere = declaredObjects(ev).filter((o) => o.cluster !== "hub");
                assert.deepStrictEqual(elsewhere.map((o) => `${o.cluster}/${o.object.kind}`), []);
                assert.deepStrictEqual(declaredObjects(ev).filter(isClusterSecret).map((o) => (o.object.metadata as Obj).name), []);
                assert.ok(!ev.resources.some((r) => r.type === "agentfleet:index:TenantClusters"), "the hub still declares TenantClusters");
            });
        }

        it("dev-acme (bootstrap): its stack registers the token of its own argocd-manager", async () => {
            const config = JSON.parse(((await registrationOf("dev", "dev-acme")).object.stringData as Obj).config);
            assert.ok(String(config.bearerToken).startsWith(GENERATED_PREFIX), config.bearerToken);
            // ca.crt of the token Secret's data, base64 as Argo CD's caData takes it.
            assert.ok(Buffer.from(String(config.tlsClientConfig.caData), "base64").toString().startsWith(GENERATED_PREFIX), config.tlsClientConfig.caData);
            assert.strictEqual(config.tlsClientConfig.insecure, false);
        });

        it("dev-globex (token): its stack registers the pre-issued token and CA, as they are", async () => {
            const config = JSON.parse(((await registrationOf("dev", "dev-globex")).object.stringData as Obj).config);
            assert.strictEqual(config.bearerToken, preIssuedPlaceholder("dev-tenant-dev-globex", "bearerToken"));
            assert.strictEqual(config.tlsClientConfig.caData, preIssuedPlaceholder("dev-tenant-dev-globex", "caData"));
        });
    });

    describe("registration in the hub, by the tenant stack", () => {
        for (const tenant of ["dev-acme", "dev-globex"]) {
            it(`${tenant}: one cluster Secret, entirely secret, labelled for the rollout`, async () => {
                const { object, resource } = await registrationOf("dev", tenant);
                assert.deepStrictEqual(secretPaths(resource.inputs), ["stringData"]);
                const meta = object.metadata as Obj;
                assert.strictEqual(meta.namespace, "argocd");
                assert.strictEqual(meta.labels["argocd.argoproj.io/secret-type"], "cluster");
                assert.strictEqual(meta.labels[FLEET_LABEL], "dev");
                assert.strictEqual(meta.labels.tenant, tenant);
                assert.strictEqual(meta.labels.env, "dev");
                assert.ok(meta.labels.ring && meta.labels.region);
                assert.strictEqual(meta.annotations[AGENT_NAMESPACE_ANNOTATION], "voice-agent");
                const data = object.stringData as Obj;
                assert.deepStrictEqual(Object.keys(data).sort(), ["clusterResources", "config", "name", "namespaces", "project", "server"]);
                assert.strictEqual(data.name, tenant);
                // Scoped to the fleet's AppProject: the only clusters that project admits.
                assert.strictEqual(data.project, "voice-agent-dev");
                assert.strictEqual(data.namespaces, "voice-agent");
                assert.strictEqual(data.clusterResources, "false");
            });
        }

        it("carries free-form labels onto the cluster Secret", async () => {
            const { object } = await registrationOf("prod", "prod-globex-eu");
            assert.strictEqual((object.metadata as Obj).labels.tier, "enterprise");
        });

        it("pauses a tenant with argocd.argoproj.io/skip-reconcile", async () => {
            const objects = (await evaluateRegistrations(await evaluate("dev", { edit: (c) => (key(c, "tenants")[0].paused = true) }))).flatMap(declaredObjects);
            const secret = objects.find((o) => (o.object.metadata as Obj).name === "cluster-dev-acme")!;
            assert.strictEqual((secret.object.metadata as Obj).annotations["argocd.argoproj.io/skip-reconcile"], "true");
            const other = objects.find((o) => (o.object.metadata as Obj).name === "cluster-dev-globex")!;
            assert.strictEqual((other.object.metadata as Obj).annotations["argocd.argoproj.io/skip-reconcile"], undefined);
        });
    });

    describe("the hub's cost per tenant", () => {
        it("is nothing: the hub stack declares the same resources for 4 and for 1,007 tenants", async () => {
            const [small, large] = [await evaluate("bench", benchFleet(4)), await evaluate("bench", benchFleet(1007))];
            assert.deepStrictEqual(declaredResources(large).map((r) => r.urn), declaredResources(small).map((r) => r.urn));
        });

        it("adds nothing to the AppProject: its spec is the same, byte for byte, for 10 and for 1,000 tenants, and every tenant stack's cluster Secret is scoped to it", async () => {
            const projects: string[] = [];
            for (const size of [10, 1000]) {
                const objects = declaredObjects(await evaluate("bench", benchFleet(size)));
                const project = objects.find((o) => o.object.kind === "AppProject")!.object as Obj;
                projects.push(JSON.stringify(project.spec));
                if (size === 10) {
                    const secrets = (await evaluateRegistrations(await evaluate("bench", benchFleet(size)))).flatMap(declaredObjects).filter(isClusterSecret);
                    assert.strictEqual(secrets.length, size);
                    assert.deepStrictEqual([...new Set(secrets.map((o) => (o.object.stringData as Obj).project))], [project.metadata.name], `${size} tenants`);
                }
            }
            assert.strictEqual(projects[1], projects[0]);
        });
    });

    describe("a hub state that still holds the cluster Secrets its earlier program declared (not migrated)", () => {
        it("is refused before anything is declared: this program would delete them, so it names the migration", async () => {
            const hubState = [
                { urn: "urn:pulumi:dev::agentfleet::pulumi:providers:kubernetes::hub", type: "pulumi:providers:kubernetes" },
                { urn: "urn:pulumi:dev::agentfleet::agentfleet:index:TenantClusters::tenants", type: "agentfleet:index:TenantClusters" },
                { urn: hubStateUrn("dev", "dev-acme"), type: "kubernetes:core/v1:Secret" },
            ];
            const problems = await configProblems("dev", undefined, { hubState });
            assert.strictEqual(problems.length, 1, problems.join("\n"));
            for (const part of ["the state of hub stack dev still holds the cluster Secret of 1 tenant (dev-acme)", "would DELETE that registration", "Nothing was touched", "`npm run tenant -- migrate-registration --stack dev`"]) assert.ok(problems[0].includes(part), `${part}: ${problems[0]}`);
        });

        it("refuses a Secret of the per-tenant TenantCluster component of older agentfleets too", async () => {
            const hubState = [{ urn: "urn:pulumi:dev::agentfleet::agentfleet:index:TenantCluster$kubernetes:core/v1:Secret::dev-globex-cluster-secret", type: "kubernetes:core/v1:Secret" }];
            const [problem] = await configProblems("dev", undefined, { hubState });
            assert.ok(problem.includes("the state of hub stack dev still holds the cluster Secret of 1 tenant (dev-globex)") && problem.includes("migrate-registration"), problem);
        });

        it("is read with `pulumi stack export --stack <stack>` of the run's own CLI and login, and a state that cannot be read is a refusal, never taken for empty", () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-hub-state-"));
            try {
                const fake = (body: string) => fs.writeFileSync(path.join(dir, "pulumi"), `#!${process.execPath}\n${body}\n`, { mode: 0o755 });
                const env = { PATH: `${dir}${path.delimiter}${process.env.PATH}`, PULUMI_CONFIG: '{"agentfleet:hub":"x"}', HOME: dir };
                fake(`require("fs").writeFileSync(${JSON.stringify(path.join(dir, "args"))}, JSON.stringify({ args: process.argv.slice(2), config: process.env.PULUMI_CONFIG ?? null })); process.stdout.write(JSON.stringify({ deployment: { resources: [{ urn: ${JSON.stringify(hubStateUrn("prod", "prod-acme-eu"))}, type: "kubernetes:core/v1:Secret" }] } }));`);
                const state = readHubState("prod", env, dir);
                assert.ok(!("problem" in state), JSON.stringify(state));
                assert.deepStrictEqual(heldRegistrations(state), ["prod-acme-eu"]);
                assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(dir, "args"), "utf8")), { args: ["stack", "export", "--stack", "prod", "--non-interactive"], config: null });
                fake(`process.stderr.write("error: no stack named 'prod' found\\n"); process.exit(255);`);
                const unread = readHubState("prod", env, dir);
                assert.ok("problem" in unread && unread.problem.includes("cannot read the state of hub stack prod") && unread.problem.includes("no stack named 'prod' found"), JSON.stringify(unread));
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });

        it("runs once the state holds none (every Secret moved out; the hub's own objects stay)", async () => {
            const hubState = [
                { urn: "urn:pulumi:dev::agentfleet::pulumi:providers:kubernetes::hub", type: "pulumi:providers:kubernetes" },
                { urn: "urn:pulumi:dev::agentfleet::agentfleet:index:TenantClusters::tenants", type: "agentfleet:index:TenantClusters" },
                { urn: "urn:pulumi:dev::agentfleet::agentfleet:index:ArgoCdHub$kubernetes:core/v1:Secret::argocd-notifications", type: "kubernetes:core/v1:Secret" },
            ];
            assert.ok(declaredResources(await evaluate("dev", { hubState })).length > 0);
        });
    });

    describe("removal and decommissioning", () => {
        it("removing a tenant drops its tenant stack's registration, and the hub declares nothing of it", async () => {
            const ev = await evaluate("dev", {
                edit: (c) => {
                    key(c, "tenants").splice(0, 1);
                    key(c, "rollout").steps.splice(0, 1);
                },
            });
            assert.deepStrictEqual(ev.resources.filter((r) => r.name.includes("dev-acme")), []);
            assert.deepStrictEqual((await evaluateRegistrations(ev)).map((r) => r.stack), ["dev-tenant-dev-globex"]);
        });

        it("a decommissioned tenant has no registration and leaves the rollout", async () => {
            const ev = await evaluate("dev", {
                edit: (c) => {
                    key(c, "tenants")[0].decommissioned = true;
                    // dev-acme was the only canary: an empty step is refused, so the canary step goes too.
                    key(c, "rollout").steps.splice(0, 1);
                },
            });
            const objects = [ev, ...(await evaluateRegistrations(ev))].flatMap(declaredObjects);
            assert.deepStrictEqual(objects.filter((o) => JSON.stringify(o.object.metadata).includes("dev-acme")).map((o) => o.object.kind), []);
            assert.ok(!generateApplications(objects).some((a) => a.tenant === "dev-acme"), "dev-acme still gets an Application");
            assert.ok(generateApplications(objects).some((a) => a.tenant === "dev-globex"), "dev-globex lost its Application");
        });
    });
});
