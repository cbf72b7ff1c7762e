/**
 * A tenant stack that registers its own tenant (issue 19, docs/design/tenant-stacks.md): the
 * onboarding program with `registration`, under the mock runtime. What it declares on the hub is
 * the cluster Secret the hub stack declares today, so moving it changes nothing on the hub.
 */
import * as pulumi from "@pulumi/pulumi";
import * as assert from "assert";
import { clusterSecretArgs } from "../components/tenant-clusters";
import { hubOwnedSecretName } from "../components/tenant-registration";
import * as YAML from "yaml";
import { HUB_CONTEXT, ONBOARDING_CONTEXT, runKubeconfig } from "../tenants/kubeconfig";
import { ONBOARDING_PROJECT, type RegistrationSettings, onboardingProgram } from "../tenants/onboarding-program";
import { type Evaluation, GENERATED_PREFIX, REDACTED, STACK_RESOURCE_TYPE, declaredObjects, evaluate, secretPaths } from "../evaluator/evaluate";
import type { TenantConfig } from "../stacks/config-types";

const ACME: TenantConfig = {
    name: "prod-acme-eu",
    server: "https://prod-acme-eu.k3s.agentfleet.example.net:6443",
    env: "prod",
    ring: "early",
    region: "eu-west",
    labels: {},
    namespaces: ["voice-agent"],
    paused: false,
    credentials: "bootstrap",
    decommissioned: false,
};
const registration = (extra: Partial<RegistrationSettings> = {}): RegistrationSettings => ({ entry: ACME, fleet: "prod", project: "voice-agent-prod", argocdNamespace: "argocd", ...extra });

const tenantStack = (settings: { registration?: RegistrationSettings; tokenGenerations?: number[] }): Promise<Evaluation> =>
    evaluate("prod-tenant-prod-acme-eu", {
        config: {},
        program: { project: ONBOARDING_PROJECT, run: onboardingProgram({ tenant: ACME.name, namespaces: ACME.namespaces, tokenGenerations: settings.tokenGenerations ?? [0], registration: settings.registration }) },
    });

describe("a tenant stack that registers its tenant", () => {
    it("declares, on the hub, exactly one object: the cluster Secret the hub stack's TenantClusters declared for that tenant (clusterSecretArgs, shared), so what Argo CD sees does not change when it moves", async () => {
        const onHub = declaredObjects(await tenantStack({ registration: registration() })).filter((o) => o.cluster === "hub");
        assert.deepStrictEqual(onHub.map((o) => `${o.object.kind}/${(o.object.metadata as { name: string }).name}`), [`Secret/cluster-${ACME.name}`]);
        const tenantClustersArgs = clusterSecretArgs(ACME, { fleet: "prod", project: "voice-agent-prod", argocdNamespace: "argocd" }, pulumi.output({}));
        assert.deepStrictEqual(onHub[0].object.metadata, tenantClustersArgs.metadata);
        assert.deepStrictEqual(onHub[0].object.type, "Opaque");
        const { config: _config, ...publicFields } = onHub[0].redacted.stringData as Record<string, string>;
        assert.deepStrictEqual(publicFields, { name: ACME.name, server: ACME.server, project: "voice-agent-prod", namespaces: "voice-agent", clusterResources: "false" });
    });

    it("registers the token of its own argocd-manager (secret), and reaches the hub only through the run's KUBECONFIG, context agentfleet-hub", async () => {
        const ev = await tenantStack({ registration: registration() });
        const providers = Object.fromEntries(ev.resources.filter((r) => r.type === "pulumi:providers:kubernetes").map((r) => [r.name, r.inputs]));
        assert.deepStrictEqual(Object.keys(providers).sort(), ["hub", `${ACME.name}-kubernetes`]);
        assert.deepStrictEqual([providers.hub.kubeconfig, providers.hub.context, providers.hub.clusterIdentifier, String(providers.hub.deleteUnreachable), String(providers.hub.enableSecretMutable)], ["", HUB_CONTEXT, "hub", "false", "true"]);
        assert.strictEqual(providers[`${ACME.name}-kubernetes`].context, ONBOARDING_CONTEXT);
        const [secret] = declaredObjects(ev).filter((o) => o.cluster === "hub");
        assert.deepStrictEqual(secretPaths(secret.resource.inputs), ["stringData"]);
        const config = JSON.parse((secret.object.stringData as { config: string }).config);
        assert.ok(String(config.bearerToken).startsWith(GENERATED_PREFIX), `the registered token is not the generated argocd-manager token: ${config.bearerToken}`);
    });

    it("adopts the cluster Secret and provider that `pulumi state move` brings from the hub stack: an alias to tenants-<tenant> at the root, the provider named hub", async () => {
        const ev = await tenantStack({ registration: registration() });
        const [{ resource: secret }] = declaredObjects(ev).filter((o) => o.cluster === "hub");
        assert.deepStrictEqual(secret.aliases, [`urn:pulumi:prod-tenant-prod-acme-eu::${ONBOARDING_PROJECT}::kubernetes:core/v1:Secret::${hubOwnedSecretName(ACME.name)}`]);
        assert.strictEqual(secret.provider, "hub");
        const root = ev.resources.find((r) => r.type === STACK_RESOURCE_TYPE)!.name;
        assert.ok(ev.resources.some((r) => r.type === "pulumi:providers:kubernetes" && r.name === "hub" && r.parent === root), "no provider named hub at the stack's root");
    });

    it("a token tenant's stack declares nothing on the tenant and registers its pre-issued token, which its state then keeps (the stack output, secret)", async () => {
        const preIssued = { bearerToken: "pre-issued-token-for-tests", caData: "Q0EtZm9yLXRlc3Rz" };
        const ev = await tenantStack({ registration: registration({ entry: { ...ACME, credentials: "token" }, preIssued }) });
        const objects = declaredObjects(ev);
        assert.deepStrictEqual(objects.map((o) => `${o.cluster} ${o.object.kind}`), ["hub Secret"]);
        assert.ok(!ev.resources.some((r) => r.type === "agentfleet:index:TenantAccess"));
        const config = JSON.parse((objects[0].object.stringData as { config: string }).config);
        assert.strictEqual(config.bearerToken, "pre-issued-token-for-tests");
        assert.strictEqual((objects[0].redacted.stringData as { config: string }).config, REDACTED);
        assert.deepStrictEqual(ev.secretOutputs.sort(), ["bearerToken", "caData"]);
    });

    it("is evaluated without stack traces, as pulumi up runs it (a plan evaluates one per tenant), and the caller's limit is restored after", async () => {
        const saved = Error.stackTraceLimit;
        Error.stackTraceLimit = 17;
        try {
            let inside: number | undefined;
            const program = onboardingProgram({ tenant: ACME.name, namespaces: ACME.namespaces, tokenGenerations: [0], registration: registration() });
            await evaluate("prod-tenant-prod-acme-eu", { config: {}, program: { project: ONBOARDING_PROJECT, run: async () => ((inside = Error.stackTraceLimit), program()) } });
            assert.strictEqual(inside, 0);
            assert.strictEqual(Error.stackTraceLimit, 17);
        } finally {
            Error.stackTraceLimit = saved;
        }
    });

    it("without registration it is today's onboarding stack: nothing on the hub", async () => {
        const ev = await tenantStack({});
        assert.ok(declaredObjects(ev).every((o) => o.cluster === ACME.name));
    });
});

describe("a tenant stack's run kubeconfig", () => {
    const single = (server: string, user: Record<string, string>) =>
        YAML.stringify({ apiVersion: "v1", kind: "Config", clusters: [{ name: "default", cluster: { server } }], contexts: [{ name: "default", context: { cluster: "default", user: "default" } }], users: [{ name: "default", user }], "current-context": "default" });

    it("holds each given cluster as its role's context, so the two k3s 'default's cannot collide, and nothing else", () => {
        const tenant = single("https://acme.example.net:6443", { "client-key-data": "VEVOQU5U" });
        const hub = single("https://hub.example.net:6443", { token: "hub-token-for-tests" });
        const both = YAML.parse(runKubeconfig({ tenant, hub }));
        assert.deepStrictEqual(both.contexts.map((c: { name: string; context: object }) => [c.name, c.context]), [[ONBOARDING_CONTEXT, { cluster: ONBOARDING_CONTEXT, user: ONBOARDING_CONTEXT }], [HUB_CONTEXT, { cluster: HUB_CONTEXT, user: HUB_CONTEXT }]]);
        assert.deepStrictEqual(both.clusters.map((c: { cluster: { server: string } }) => c.cluster.server), ["https://acme.example.net:6443", "https://hub.example.net:6443"]);
        assert.deepStrictEqual(both.users.map((u: { user: object }) => u.user), [{ "client-key-data": "VEVOQU5U" }, { token: "hub-token-for-tests" }]);
        // A relabel in CI: the hub's context only; the tenant's provider then finds no context and reaches nothing.
        assert.deepStrictEqual(YAML.parse(runKubeconfig({ hub })).contexts.map((c: { name: string }) => c.name), [HUB_CONTEXT]);
    });
});
