import * as assert from "assert";
import { AGENT_NAMESPACE_ANNOTATION, FLEET_LABEL, MANAGER_TOKEN_SECRET, managerClusterRules } from "../components/tenant-cluster";
import { GENERATED_PREFIX, SECRET_PREFIX, declaredObjects, evaluate, secretPaths } from "../tools/evaluate";
import { type Obj, evaluated, key, objectsOf, resourceOf } from "./helpers";

const clusterSecret = async (stack: string, tenant: string) => {
    const found = (await objectsOf(stack, { cluster: "hub", kind: "Secret" })).find((o) => (o.object.metadata as Obj).name === `cluster-${tenant}`);
    assert.ok(found, `no cluster Secret for ${tenant}`);
    return found;
};

describe("tenant clusters", () => {
    describe("in bootstrap mode (dev-acme)", () => {
        it("gets its own provider: kubeconfig read as a secret, clusterIdentifier pinned to the tenant name", async () => {
            const provider = resourceOf(await evaluated("dev"), "pulumi:providers:kubernetes", "dev-acme-kubernetes");
            assert.deepStrictEqual(secretPaths(provider.inputs), ["kubeconfig"]);
            assert.strictEqual(provider.inputs.clusterIdentifier, "dev-acme");
            assert.strictEqual(String(provider.inputs.deleteUnreachable), "false");
        });

        it("creates argocd-manager with full rights in its agent namespaces only", async () => {
            const objs = await objectsOf("dev", { cluster: "dev-acme" });
            const kinds = objs.map((o) => `${o.object.kind}/${(o.object.metadata as Obj).namespace ?? ""}/${(o.object.metadata as Obj).name}`).sort();
            assert.deepStrictEqual(kinds, [
                "ClusterRole//argocd-manager-cluster-role",
                "ClusterRoleBinding//argocd-manager-cluster-role-binding",
                "Namespace//voice-agent",
                "Role/voice-agent/argocd-manager-role",
                "RoleBinding/voice-agent/argocd-manager-role-binding",
                "Secret/kube-system/argocd-manager-long-lived-token",
                "ServiceAccount/kube-system/argocd-manager",
            ]);
            const binding = objs.find((o) => o.object.kind === "RoleBinding")!.object as Obj;
            assert.deepStrictEqual(binding.subjects, [{ kind: "ServiceAccount", name: "argocd-manager", namespace: "kube-system" }]);
        });

        it("grants no cluster-wide rule with '*' verbs or '*' resources", async () => {
            for (const stack of ["dev", "staging", "prod", "fleet"]) {
                for (const o of await objectsOf(stack, { kind: "ClusterRole" })) {
                    for (const rule of (o.object as Obj).rules as Obj[]) {
                        assert.ok(!(rule.verbs ?? []).includes("*"), `${stack}/${o.cluster}: a ClusterRole grants '*' verbs`);
                        assert.ok(!(rule.resources ?? []).includes("*"), `${stack}/${o.cluster}: a ClusterRole grants '*' resources`);
                        assert.ok(!(rule.apiGroups ?? []).includes("*"), `${stack}/${o.cluster}: a ClusterRole spans every API group`);
                        assert.ok((rule.verbs as string[]).every((v) => v === "get"), `${stack}/${o.cluster}: a ClusterRole does more than read`);
                    }
                }
            }
            assert.deepStrictEqual(managerClusterRules(["a"])[1].resourceNames, ["a"], "namespace reads are limited by name");
        });

        it("reads the long-lived token back and registers it, undecoded, with the Secret's CA", async () => {
            const { object } = await clusterSecret("dev", "dev-acme");
            const data = object.stringData as Obj;
            const config = JSON.parse(data.config);
            assert.strictEqual(config.bearerToken, `${GENERATED_PREFIX}dev-acme-manager-token-token__`, "bearerToken must be the raw token (base64-decoded once)");
            assert.strictEqual(config.tlsClientConfig.caData, Buffer.from(`${GENERATED_PREFIX}dev-acme-manager-token-ca__`).toString("base64"), "caData must stay base64 PEM, not encoded twice");
            assert.strictEqual(config.tlsClientConfig.insecure, false);
            const token = (await objectsOf("dev", { cluster: "dev-acme", kind: "Secret" }))[0];
            assert.strictEqual((token.object.metadata as Obj).name, MANAGER_TOKEN_SECRET);
            assert.strictEqual(token.object.type, "kubernetes.io/service-account-token");
        });

        it("keeps the agent namespaces when the tenant is removed (retainOnDelete)", async () => {
            const ns = (await objectsOf("dev", { cluster: "dev-acme", kind: "Namespace" }))[0];
            assert.strictEqual(ns.resource.retainOnDelete, true);
        });
    });

    describe("in token mode (dev-globex)", () => {
        it("creates nothing inside the tenant and registers the pre-issued token and CA", async () => {
            assert.deepStrictEqual(await objectsOf("dev", { cluster: "dev-globex" }), []);
            const { object } = await clusterSecret("dev", "dev-globex");
            const config = JSON.parse((object.stringData as Obj).config);
            assert.strictEqual(config.bearerToken, `${SECRET_PREFIX}agentfleet:tenantCredentials.dev-globex.bearerToken__`);
            assert.strictEqual(config.tlsClientConfig.caData, `${SECRET_PREFIX}agentfleet:tenantCredentials.dev-globex.caData__`);
        });
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
                assert.deepStrictEqual(Object.keys(data).sort(), ["clusterResources", "config", "name", "namespaces", "server"]);
                assert.strictEqual(data.name, tenant);
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

    describe("removal and decommissioning", () => {
        it("removing a tenant drops its registration and argocd-manager objects, but never declares a deletion of its namespaces", async () => {
            const ev = await evaluate("dev", {
                edit: (c) => {
                    key(c, "tenants").splice(0, 1);
                    delete key(c, "tenantCredentials")["dev-acme"];
                    key(c, "rollout").steps.splice(0, 1);
                },
            });
            const names = ev.resources.map((r) => r.name);
            assert.ok(!names.some((n) => n.startsWith("dev-acme")), "nothing of dev-acme is declared any more");
            // What Pulumi deletes is what the previous run declared; the namespaces were retainOnDelete.
            const before = await evaluated("dev");
            const removed = before.resources.filter((r) => r.name.startsWith("dev-acme") && !names.includes(r.name));
            const deletable = removed.filter((r) => r.type === "kubernetes:core/v1:Namespace" && !r.retainOnDelete);
            assert.deepStrictEqual(deletable, []);
            const ns = removed.filter((r) => r.type === "kubernetes:core/v1:Namespace");
            assert.ok(ns.length > 0 && ns.every((r) => r.retainOnDelete));
        });

        it("a decommissioned tenant keeps only its provider, set to deleteUnreachable, and leaves the rollout", async () => {
            const ev = await evaluate("dev", {
                edit: (c) => {
                    key(c, "tenants")[0].decommissioned = true;
                    // dev-acme was the only canary: an empty step is refused, so the canary step goes too.
                    key(c, "rollout").steps.splice(0, 1);
                },
            });
            const mine = ev.resources.filter((r) => r.name.startsWith("dev-acme"));
            assert.deepStrictEqual(mine.map((r) => r.type).sort(), ["agentfleet:index:TenantCluster", "pulumi:providers:kubernetes"]);
            const provider = mine.find((r) => r.type === "pulumi:providers:kubernetes")!;
            // Provider configuration travels as strings.
            assert.strictEqual(String(provider.inputs.deleteUnreachable), "true");
            assert.deepStrictEqual(secretPaths(provider.inputs), ["kubeconfig"]);
            const project = declaredObjects(ev).find((o) => o.object.kind === "AppProject")!.object as Obj;
            assert.ok(!JSON.stringify(project.spec.destinations).includes("dev-acme"));
        });
    });
});
