import * as assert from "assert";
import { AGENT_NAMESPACE_ANNOTATION, FLEET_LABEL, REGISTRATION_BATCH } from "../components/tenant-clusters";
import { benchFleet } from "../commands/bench";
import { SECRET_PREFIX, declaredObjects, declaredResources, evaluate, secretPaths } from "../evaluator/evaluate";
import { generateApplications } from "../evaluator/render";
import { type Obj, evaluated, key, objectsOf } from "./helpers";

const clusterSecret = async (stack: string, tenant: string) => {
    const found = (await objectsOf(stack, { cluster: "hub", kind: "Secret" })).find((o) => (o.object.metadata as Obj).name === `cluster-${tenant}`);
    assert.ok(found, `no cluster Secret for ${tenant}`);
    return found;
};

describe("tenant clusters", () => {
    describe("the hub stack never reaches a tenant", () => {
        for (const stack of ["dev", "staging", "prod", "fleet"]) {
            it(`${stack}: declares one Kubernetes provider (the hub's) and every object on the hub`, async () => {
                const ev = await evaluated(stack);
                const providers = ev.resources.filter((r) => r.type === "pulumi:providers:kubernetes");
                assert.deepStrictEqual(providers.map((r) => r.name), ["hub"]);
                const elsewhere = (await objectsOf(stack)).filter((o) => o.cluster !== "hub");
                assert.deepStrictEqual(elsewhere.map((o) => `${o.cluster}/${o.object.kind}`), []);
            });
        }

        for (const [tenant, mode] of [["dev-acme", "bootstrap"], ["dev-globex", "token"]]) {
            it(`${tenant} (${mode}): registers the stored token and CA from tenantCredentials, as they are`, async () => {
                const { object } = await clusterSecret("dev", tenant);
                const config = JSON.parse((object.stringData as Obj).config);
                assert.strictEqual(config.bearerToken, `${SECRET_PREFIX}agentfleet:tenantCredentials.${tenant}.bearerToken__`);
                assert.strictEqual(config.tlsClientConfig.caData, `${SECRET_PREFIX}agentfleet:tenantCredentials.${tenant}.caData__`);
                assert.strictEqual(config.tlsClientConfig.insecure, false);
            });
        }
    });

    describe("registration in the hub", () => {
        for (const tenant of ["dev-acme", "dev-globex"]) {
            it(`${tenant}: one cluster Secret, entirely secret, labelled for the rollout`, async () => {
                const { object, resource } = await clusterSecret("dev", tenant);
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
            const { object } = await clusterSecret("prod", "prod-globex-eu");
            assert.strictEqual((object.metadata as Obj).labels.tier, "enterprise");
        });

        it("pauses a tenant with argocd.argoproj.io/skip-reconcile", async () => {
            const ev = await evaluate("dev", { edit: (c) => (key(c, "tenants")[0].paused = true) });
            const secret = declaredObjects(ev).find((o) => (o.object.metadata as Obj).name === "cluster-dev-acme")!;
            assert.strictEqual((secret.object.metadata as Obj).annotations["argocd.argoproj.io/skip-reconcile"], "true");
            const other = declaredObjects(ev).find((o) => (o.object.metadata as Obj).name === "cluster-dev-globex")!;
            assert.strictEqual((other.object.metadata as Obj).annotations["argocd.argoproj.io/skip-reconcile"], undefined);
        });
    });

    describe("the hub's cost per tenant", () => {
        const tenantNames = (n: number) => benchFleet(n).inventory.map((t) => t.name);

        it(`is one resource, the tenant's cluster Secret under the one TenantClusters component, for a fleet larger than one registration batch (${REGISTRATION_BATCH})`, async () => {
            const size = REGISTRATION_BATCH + 7;
            const [small, large] = [await evaluate("bench", benchFleet(4)), await evaluate("bench", benchFleet(size))];
            assert.strictEqual(declaredResources(large).length - declaredResources(small).length, size - 4);
            const components = large.resources.filter((r) => r.type.startsWith("agentfleet:index:Tenant"));
            assert.deepStrictEqual(components.map((r) => `${r.type} ${r.name}`), ["agentfleet:index:TenantClusters tenants"]);
            const secrets = large.resources.filter((r) => r.parent === "tenants");
            assert.deepStrictEqual(secrets.map((r) => r.name).sort(), tenantNames(size).map((t) => `tenants-${t}`).sort());
            assert.ok(secrets.every((r) => r.type === "kubernetes:core/v1:Secret"));
        });

        it("adds nothing to the AppProject: its spec is the same, byte for byte, for 10 and for 1,000 tenants, and every cluster Secret is scoped to it", async () => {
            const projects: string[] = [];
            for (const size of [10, 1000]) {
                const objects = declaredObjects(await evaluate("bench", benchFleet(size)));
                const project = objects.find((o) => o.object.kind === "AppProject")!.object as Obj;
                projects.push(JSON.stringify(project.spec));
                const secrets = objects.filter((o) => (o.object.metadata as Obj).labels?.["argocd.argoproj.io/secret-type"] === "cluster");
                assert.strictEqual(secrets.length, size);
                assert.deepStrictEqual([...new Set(secrets.map((o) => (o.object.stringData as Obj).project))], [project.metadata.name], `${size} tenants`);
            }
            assert.strictEqual(projects[1], projects[0]);
        });

        it("updates the AppProject only after every cluster Secret (it depends on each), so an existing hub's Secrets carry `project` before the project admits only scoped clusters", async () => {
            const ev = await evaluate("bench", benchFleet(REGISTRATION_BATCH + 7));
            const project = ev.resources.find((r) => r.type === "kubernetes:argoproj.io/v1alpha1:AppProject")!;
            const secrets = ev.resources.filter((r) => r.parent === "tenants").map((r) => r.name);
            assert.deepStrictEqual(secrets.filter((s) => !project.dependsOn.includes(s)), [], "cluster Secrets the AppProject does not wait for");
            assert.strictEqual(secrets.length, REGISTRATION_BATCH + 7);
        });

        it("keeps each cluster Secret's URN from when every tenant was its own TenantCluster component (an alias), so upgrading replaces no Secret", async () => {
            const ev = await evaluated("dev");
            for (const tenant of ["dev-acme", "dev-globex"]) {
                const secret = ev.resources.find((r) => r.name === `tenants-${tenant}`)!;
                assert.deepStrictEqual(secret.aliases, [`urn:pulumi:dev::agentfleet::agentfleet:index:TenantCluster$kubernetes:core/v1:Secret::${tenant}-cluster-secret`]);
            }
        });
    });

    describe("removal and decommissioning", () => {
        it("removing a tenant drops its registration, and the hub declares nothing else of it", async () => {
            const ev = await evaluate("dev", {
                edit: (c) => {
                    key(c, "tenants").splice(0, 1);
                    delete key(c, "tenantCredentials")["dev-acme"];
                    key(c, "rollout").steps.splice(0, 1);
                },
            });
            assert.deepStrictEqual(ev.resources.filter((r) => r.name.includes("dev-acme")), []);
        });

        it("a decommissioned tenant leaves the hub and the rollout, and needs no credential", async () => {
            const ev = await evaluate("dev", {
                edit: (c) => {
                    key(c, "tenants")[0].decommissioned = true;
                    delete key(c, "tenantCredentials")["dev-acme"];
                    // dev-acme was the only canary: an empty step is refused, so the canary step goes too.
                    key(c, "rollout").steps.splice(0, 1);
                },
            });
            assert.deepStrictEqual(ev.resources.filter((r) => r.name.includes("dev-acme")), []);
            assert.ok(!generateApplications(declaredObjects(ev)).some((a) => a.tenant === "dev-acme"), "dev-acme still gets an Application");
        });
    });
});
