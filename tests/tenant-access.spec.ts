/**
 * The tenant onboarding program (tenants/onboarding-program.ts) under the mock runtime: what one
 * tenant's onboarding stack declares on the tenant, and what it hands the hub.
 */
import * as pulumi from "@pulumi/pulumi";
import * as assert from "assert";
import { MANAGER_TOKEN_SECRET, managerClusterRules, tokenSecretName } from "../components/tenant-access";
import { tokenStateOf } from "../tenants/engine";
import { ONBOARDING_CONTEXT } from "../tenants/kubeconfig";
import { ONBOARDING_PROJECT, onboardingProgram } from "../tenants/onboarding-program";
import { type Evaluation, GENERATED_PREFIX, declaredObjects, evaluate, secretPaths } from "../evaluator/evaluate";
import type { Obj } from "./helpers";

const onboard = (tokenGenerations = [0], namespaces = ["voice-agent"], legacyTokenGeneration?: number): Promise<Evaluation> =>
    evaluate("prod-tenant-acme", { config: {}, program: { project: ONBOARDING_PROJECT, run: onboardingProgram({ tenant: "acme", namespaces, tokenGenerations, legacyTokenGeneration }) } });

describe("a tenant's onboarding stack (TenantAccess)", () => {
    it("reaches the tenant through its own provider: no kubeconfig input (the run's KUBECONFIG), its fixed context, clusterIdentifier the tenant name", async () => {
        const ev = await onboard();
        const providers = ev.resources.filter((r) => r.type === "pulumi:providers:kubernetes");
        assert.deepStrictEqual(providers.map((p) => p.name), ["acme-kubernetes"]);
        // Provider inputs are stored in the stack's state: the admin kubeconfig must not be one.
        assert.deepStrictEqual(Object.keys(providers[0].inputs).sort(), ["clusterIdentifier", "context", "deleteUnreachable", "kubeconfig"]);
        // Empty: the provider loads the run's KUBECONFIG (unset, the SDK would store that temporary file's path).
        assert.strictEqual(providers[0].inputs.kubeconfig, "");
        assert.deepStrictEqual(secretPaths(providers[0].inputs), []);
        assert.strictEqual(providers[0].inputs.context, ONBOARDING_CONTEXT);
        assert.strictEqual(providers[0].inputs.clusterIdentifier, "acme");
        assert.ok(declaredObjects(ev).every((o) => o.cluster === "acme"), "every object goes to the tenant");
    });

    it("creates argocd-manager with full rights in its agent namespaces only", async () => {
        const objs = declaredObjects(await onboard([0], ["voice-agent", "voice-agent-2"]));
        const kinds = objs.map((o) => `${o.object.kind}/${(o.object.metadata as Obj).namespace ?? ""}/${(o.object.metadata as Obj).name}`).sort();
        assert.deepStrictEqual(kinds, [
            "ClusterRole//argocd-manager-cluster-role",
            "ClusterRoleBinding//argocd-manager-cluster-role-binding",
            "Namespace//voice-agent",
            "Namespace//voice-agent-2",
            "Role/voice-agent-2/argocd-manager-role",
            "Role/voice-agent/argocd-manager-role",
            "RoleBinding/voice-agent-2/argocd-manager-role-binding",
            "RoleBinding/voice-agent/argocd-manager-role-binding",
            "Secret/kube-system/argocd-manager-long-lived-token",
            "ServiceAccount/kube-system/argocd-manager",
        ]);
        const binding = objs.find((o) => o.object.kind === "RoleBinding")!.object as Obj;
        assert.deepStrictEqual(binding.subjects, [{ kind: "ServiceAccount", name: "argocd-manager", namespace: "kube-system" }]);
    });

    it("grants nothing cluster-wide but reads: API discovery and its own namespaces by name", async () => {
        const role = declaredObjects(await onboard()).find((o) => o.object.kind === "ClusterRole")!.object as Obj;
        assert.deepStrictEqual(role.rules, managerClusterRules(["voice-agent"]));
        for (const rule of role.rules as Obj[]) {
            assert.ok((rule.verbs as string[]).every((v) => v === "get"));
            assert.ok(!(rule.resources ?? []).includes("*") && !(rule.apiGroups ?? []).includes("*"));
        }
        assert.deepStrictEqual(managerClusterRules(["a"])[1].resourceNames, ["a"]);
    });

    // gitops-engine v3.6.2 pkg/cache/cluster.go sync(): GetServerVersion, discovery, then
    // LoadOpenAPISchema (GET /openapi/v2), and an error there fails the whole cluster cache. kubectl's
    // apply validator (Argo CD syncs with validation) reads /openapi/v3. A hardened cluster does not
    // grant these to every authenticated user (k3s and kubeadm do, through system:discovery).
    it("grants exactly the non-resource URLs Argo CD reads: version, discovery and the OpenAPI documents", () => {
        const urls = managerClusterRules(["a"]).flatMap((rule) => (rule.nonResourceURLs ?? []) as string[]);
        assert.deepStrictEqual([...urls].sort(), ["/api", "/api/*", "/apis", "/apis/*", "/openapi/v2", "/openapi/v3", "/openapi/v3/*", "/version"]);
    });

    it("keeps the agent namespaces when the stack is destroyed (retainOnDelete)", async () => {
        const ns = declaredObjects(await onboard()).filter((o) => o.object.kind === "Namespace");
        assert.ok(ns.length === 1 && ns.every((o) => o.resource.retainOnDelete));
    });

    it("exports the raw token (base64-decoded once) and the CA as it is, both secret", async () => {
        let returned: Record<string, unknown> = {};
        const program = onboardingProgram({ tenant: "acme", namespaces: ["voice-agent"], tokenGenerations: [0] });
        const ev = await evaluate("prod-tenant-acme", { config: {}, program: { project: ONBOARDING_PROJECT, run: async () => (returned = await program()) } });
        const secret = await Promise.all(Object.entries(returned).map(async ([k, v]) => [k, pulumi.Output.isInstance(v) && (await pulumi.isSecret(v))]));
        assert.deepStrictEqual(Object.fromEntries(secret), { tenant: false, tokenGeneration: false, tokenGenerations: false, bearerToken: true, caData: true });
        const outputs = ev.outputs as Obj;
        assert.strictEqual(outputs.bearerToken, `${GENERATED_PREFIX}acme-manager-token-token__`);
        assert.strictEqual(outputs.caData, Buffer.from(`${GENERATED_PREFIX}acme-manager-token-ca__`).toString("base64"));
        assert.strictEqual(outputs.tokenGeneration, 0);
    });

    describe("token rotation: the old token stays valid until the rotation is finished", () => {
        const tokens = (ev: Evaluation) => declaredObjects(ev).filter((o) => o.object.type === "kubernetes.io/service-account-token");
        const names = (ev: Evaluation) => tokens(ev).map((o) => `${o.resource.name} -> ${(o.object.metadata as Obj).name}`);

        it("while rotating from 0 to 1, both token Secrets exist, each its own resource, and the stack exports the new one", async () => {
            const ev = await onboard([0, 1]);
            assert.deepStrictEqual(names(ev), [`acme-manager-token -> ${MANAGER_TOKEN_SECRET}`, `acme-manager-token-1 -> ${tokenSecretName(1)}`]);
            assert.notStrictEqual(tokenSecretName(1), MANAGER_TOKEN_SECRET);
            assert.strictEqual((ev.outputs as Obj).bearerToken, `${GENERATED_PREFIX}acme-manager-token-1-token__`);
            assert.deepStrictEqual([(ev.outputs as Obj).tokenGeneration, (ev.outputs as Obj).tokenGenerations], [1, [0, 1]]);
        });

        it("finishing keeps the new token's resource as it was and drops the old one", async () => {
            const [rotating, finished] = [await onboard([0, 1]), await onboard([1])];
            assert.deepStrictEqual(names(finished), [names(rotating)[1]]);
        });

        it("a stack an earlier agentfleet rotated (generation 2 under the name of generation 0) keeps that Secret: its resource is aliased to that name", async () => {
            const state = tokenStateOf({ tokenGeneration: 2, bearerToken: "t" });
            assert.deepStrictEqual(state, { generations: [2], legacyGeneration: 2, bearerToken: "t", caData: "" });
            const ev = await onboard([2, 3], ["voice-agent"], state.legacyGeneration);
            const byName = (name: string) => tokens(ev).find((o) => o.resource.name === name)!.resource;
            const [old, current] = [byName("acme-manager-token-2"), byName("acme-manager-token-3")];
            // An alias spec: same type and parent (the TenantAccess), the name generation 0 has.
            const renamedFrom = (aliases: string[]) => aliases.filter((a) => a.startsWith("{")).map((a) => JSON.parse(a).name);
            assert.deepStrictEqual(renamedFrom(old.aliases), ["acme-manager-token"], JSON.stringify(old.aliases));
            assert.deepStrictEqual(renamedFrom(current.aliases), []);
            assert.deepStrictEqual(tokenStateOf({ tokenGeneration: 3, tokenGenerations: [2, 3], bearerToken: "t" }), { generations: [2, 3], bearerToken: "t", caData: "" });
        });
    });

    it("every child is aliased to the URN `pulumi state move` gives it when it comes from the hub stack", async () => {
        const ev = await onboard();
        const children = ev.resources.filter((r) => r.parent === "acme");
        assert.strictEqual(children.length, 8, "provider, namespace, account, role, binding, cluster role and binding, token");
        for (const child of children) {
            const { aliases } = child;
            assert.ok(aliases.includes(`urn:pulumi:prod-tenant-acme::${ONBOARDING_PROJECT}::${child.type}::${child.name}`), `${child.name}: aliases ${JSON.stringify(aliases)}`);
        }
    });
});
