/**
 * The tenant onboarding program (tenants/onboarding-program.ts) under the mock runtime: what one
 * tenant's onboarding stack declares on the tenant, and what it hands the hub.
 */
import * as pulumi from "@pulumi/pulumi";
import * as assert from "assert";
import { MANAGER_TOKEN_SECRET, managerClusterRules, tokenSecretName } from "../components/tenant-access";
import { ONBOARDING_PROJECT, onboardingProgram } from "../tenants/onboarding-program";
import { type Evaluation, GENERATED_PREFIX, declaredObjects, evaluate, reveal, secretPaths } from "../evaluator/evaluate";
import type { Obj } from "./helpers";

const KUBECONFIG = "apiVersion: v1\nkind: Config\n# fake admin kubeconfig for tests only\n";

const onboard = (tokenGeneration = 0, namespaces = ["voice-agent"]): Promise<Evaluation> =>
    evaluate("prod-tenant-acme", { config: {}, program: { project: ONBOARDING_PROJECT, run: onboardingProgram({ tenant: "acme", namespaces, tokenGeneration, kubeconfig: KUBECONFIG }) } });

describe("a tenant's onboarding stack (TenantAccess)", () => {
    it("reaches the tenant through its own provider: kubeconfig secret, clusterIdentifier the tenant name", async () => {
        const ev = await onboard();
        const providers = ev.resources.filter((r) => r.type === "pulumi:providers:kubernetes");
        assert.deepStrictEqual(providers.map((p) => p.name), ["acme-kubernetes"]);
        assert.deepStrictEqual(secretPaths(providers[0].inputs), ["kubeconfig"]);
        assert.strictEqual(reveal(providers[0].inputs.kubeconfig), KUBECONFIG);
        assert.strictEqual(providers[0].inputs.clusterIdentifier, "acme");
        assert.ok(declaredObjects(ev).every((o) => o.cluster === "acme"), "every object goes to the tenant");
    });

    it("creates argocd-manager with full rights in its agent namespaces only", async () => {
        const objs = declaredObjects(await onboard(0, ["voice-agent", "voice-agent-2"]));
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

    it("keeps the agent namespaces when the stack is destroyed (retainOnDelete)", async () => {
        const ns = declaredObjects(await onboard()).filter((o) => o.object.kind === "Namespace");
        assert.ok(ns.length === 1 && ns.every((o) => o.resource.retainOnDelete));
    });

    it("exports the raw token (base64-decoded once) and the CA as it is, both secret", async () => {
        let returned: Record<string, unknown> = {};
        const program = onboardingProgram({ tenant: "acme", namespaces: ["voice-agent"], tokenGeneration: 0, kubeconfig: KUBECONFIG });
        const ev = await evaluate("prod-tenant-acme", { config: {}, program: { project: ONBOARDING_PROJECT, run: async () => (returned = await program()) } });
        const secret = await Promise.all(Object.entries(returned).map(async ([k, v]) => [k, pulumi.Output.isInstance(v) && (await pulumi.isSecret(v))]));
        assert.deepStrictEqual(Object.fromEntries(secret), { tenant: false, tokenGeneration: false, bearerToken: true, caData: true });
        const outputs = ev.outputs as Obj;
        assert.strictEqual(outputs.bearerToken, `${GENERATED_PREFIX}acme-manager-token-token__`);
        assert.strictEqual(outputs.caData, Buffer.from(`${GENERATED_PREFIX}acme-manager-token-ca__`).toString("base64"));
        assert.strictEqual(outputs.tokenGeneration, 0);
    });

    it("rotation renames the token Secret (a new token) under the same resource name", async () => {
        const token = (ev: Evaluation) => declaredObjects(ev).find((o) => o.object.type === "kubernetes.io/service-account-token")!;
        const [first, second] = [token(await onboard(0)), token(await onboard(1))];
        assert.strictEqual((first.object.metadata as Obj).name, MANAGER_TOKEN_SECRET);
        assert.strictEqual((second.object.metadata as Obj).name, tokenSecretName(1));
        assert.notStrictEqual(tokenSecretName(1), MANAGER_TOKEN_SECRET);
        assert.strictEqual(first.resource.name, second.resource.name);
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
