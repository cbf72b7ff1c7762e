import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PROGRESSIVE_SYNCS_PARAM, REDIS_SECRET, chartSource } from "../components/argocd-hub";
import { hasRollingSyncFix } from "../stacks/config";
import { GENERATED_PREFIX, ROOT, SECRET_PREFIX, declaredObjects, evaluate, secretPaths } from "../evaluator/evaluate";
import { validateObjects } from "./doubles/k8s-schema";
import { STACKS, type Obj, assertProblem, configProblems, evaluated, registrationsOf, releaseOf, resourceOf } from "./helpers";

/** Every path in `value` whose last key contains `needle`. */
function keysContaining(value: unknown, needle: string, prefix = ""): string[] {
    if (!value || typeof value !== "object") return [];
    return Object.entries(value).flatMap(([k, v]) => [...(k.includes(needle) ? [`${prefix}${k}`] : []), ...keysContaining(v, needle, `${prefix}${k}.`)]);
}

describe("every committed stack", () => {
    it("includes dev, staging, prod and the single-hub example", () => {
        // Other committed stacks (the real-engine suite's e2e) come on top of the examples.
        for (const stack of ["dev", "fleet", "prod", "staging"]) assert.ok(STACKS.includes(stack), `no Pulumi.${stack}.yaml: ${STACKS.join(", ")}`);
    });

    for (const stack of STACKS) {
        describe(`stack ${stack}`, () => {
            it("evaluates offline and declares the hub and the rollout; each active tenant's own stack registers it", async () => {
                const ev = await evaluated(stack);
                const types = new Set(ev.resources.map((r) => r.type));
                for (const t of ["agentfleet:index:ArgoCdHub", "agentfleet:index:FleetRollout", "kubernetes:helm.sh/v3:Release", "kubernetes:argoproj.io/v1alpha1:ApplicationSet", "kubernetes:argoproj.io/v1alpha1:AppProject"]) {
                    assert.ok(types.has(t), `${stack} declares no ${t}`);
                }
                const registering = (await registrationsOf(stack)).filter((r) => r.resources.some((x) => x.type === "agentfleet:index:TenantRegistration")).map((r) => r.stack);
                assert.deepStrictEqual(registering.sort(), ev.inventory.filter((t) => t.decommissioned !== true).map((t) => `${stack}-tenant-${String(t.name)}`).sort());
            });

            it("declares only Kubernetes objects that validate strictly against the official schemas", async () => {
                const objects = [await evaluated(stack), ...(await registrationsOf(stack))].flatMap(declaredObjects);
                assert.ok(objects.length > 0);
                assert.deepStrictEqual(await validateObjects(objects.map((o) => o.object)), []);
            });

            it("enables progressive syncs through configs.params, and through no other key", async () => {
                const values = releaseOf(await evaluated(stack)).inputs.values as Obj;
                assert.strictEqual(values.configs.params[PROGRESSIVE_SYNCS_PARAM], "true");
                assert.deepStrictEqual(keysContaining(values, "progressive"), [`configs.params.${PROGRESSIVE_SYNCS_PARAM}`]);
            });

            it("pins the chart version and an Argo CD image with the RollingSync tight-loop fix", async () => {
                const release = releaseOf(await evaluated(stack));
                assert.match(String(release.inputs.version), /^\d+\.\d+\.\d+$/);
                // The argo-cd chart from argo-helm, or a local copy of it (hub.chartRepository: a folder, e.g. e2e's stand-in).
                const chart = String(release.inputs.chart);
                if (release.inputs.repositoryOpts) assert.strictEqual(chart, "argo-cd");
                else assert.ok(path.isAbsolute(chart) && fs.existsSync(path.join(chart, "Chart.yaml")), `chart ${chart} is neither argo-cd from a repository nor a chart folder`);
                const tag = (release.inputs.values as Obj).global.image.tag;
                assert.ok(hasRollingSyncFix(tag), `image tag ${tag} lacks the #27577 fix`);
            });

            it("lets per-ApplicationSet applicationsSync policies take effect", async () => {
                const params = (releaseOf(await evaluated(stack)).inputs.values as Obj).configs.params;
                assert.strictEqual(params["applicationsetcontroller.enable.policy.override"], "true");
                assert.strictEqual(params["applicationsetcontroller.policy"], undefined);
            });

            it("keeps each resource's health message in its Application, where status and promote read why a tenant is Degraded", async () => {
                const params = (releaseOf(await evaluated(stack)).inputs.values as Obj).configs.params;
                assert.strictEqual(params["controller.resource.health.persist"], "true");
            });

            it("caps the ApplicationSet's status.resources at 100, so its status holds the ceiling's Applications (e2e/applicationset-ceiling.e2e.ts)", async () => {
                const params = (releaseOf(await evaluated(stack)).inputs.values as Obj).configs.params;
                assert.strictEqual(params["applicationsetcontroller.status.max.resources.count"], "100");
            });

            it("keeps every secret out of the Helm values", async () => {
                const ev = await evaluated(stack);
                const release = releaseOf(ev);
                assert.deepStrictEqual(secretPaths(release.inputs), [], "Release inputs carry secret values");
                const text = JSON.stringify(release.inputs);
                assert.ok(!text.includes(SECRET_PREFIX) && !text.includes(GENERATED_PREFIX), "a secret or generated credential reached the Helm values");
            });

            it("leaves the Redis password to the chart's own generator, so it never enters Pulumi's state", async () => {
                const ev = await evaluated(stack);
                const values = releaseOf(ev).inputs.values as Obj;
                assert.strictEqual(values.redisSecretInit.enabled, true, "the chart's redis-secret-init hook must create argocd-redis");
                const declared = declaredObjects(ev).find((o) => o.cluster === "hub" && o.object.kind === "Secret" && (o.object.metadata as Obj).name === REDIS_SECRET);
                assert.strictEqual(declared, undefined, "Pulumi must not own argocd-redis (its password would sit in the state)");
                if (values["redis-ha"].enabled) assert.strictEqual(values["redis-ha"].existingSecret, REDIS_SECRET);
                // @pulumi/random is only for the opt-in git webhook secret (tests/git-webhook.spec.ts).
                assert.ok(ev.resources.filter((r) => r.type.startsWith("random:")).every((r) => r.name === "argocd-git-webhook"), "a @pulumi/random resource besides the git webhook's");
            });

            it("leaves argocd-cm and argocd-notifications-cm to the chart", async () => {
                const ev = await evaluated(stack);
                const values = releaseOf(ev).inputs.values as Obj;
                assert.strictEqual(values.configs.cm.create, true);
                assert.strictEqual(values.notifications.cm.create, true);
                const names = declaredObjects(ev).map((o) => (o.object.metadata as Obj).name);
                assert.ok(!names.includes("argocd-cm") && !names.includes("argocd-notifications-cm"));
            });

            // Found by real Argo CD v3.6.2: a pre-issued token bound to the `admin` ClusterRole may not list
            // PodTemplates, and without respectRBAC that one 403 stopped the tenant's whole cluster cache.
            it("makes Argo CD watch only what each tenant's credential may list (argocd-cm resource.respectRBAC: normal)", async () => {
                const values = releaseOf(await evaluated(stack)).inputs.values as Obj;
                assert.strictEqual(values.configs.cm["resource.respectRBAC"], "normal");
            });

            // That they also wait for Argo CD's CRDs, which the hub applies itself: tests/argocd-crds.spec.ts.
            it("gives the hub's provider no kubeconfig (the run's KUBECONFIG, never state) and pins its cluster identity", async () => {
                const hub = resourceOf(await evaluated(stack), "pulumi:providers:kubernetes", "hub");
                assert.strictEqual(hub.inputs.kubeconfig, "", "the provider's kubeconfig input is stored in state: it must be empty (the run's KUBECONFIG)");
                assert.strictEqual(hub.inputs.clusterIdentifier, "hub");
                // Set, so the provider's PULUMI_K8S_DELETE_UNREACHABLE variable cannot drop the hub's resources from state.
                assert.strictEqual(String(hub.inputs.deleteUnreachable), "false");
            });

            it("registers every child under its component, with names prefixed by the component's", async () => {
                const ev = await evaluated(stack);
                const components = new Map(ev.resources.filter((r) => r.type.startsWith("agentfleet:index:")).map((r) => [r.name, r]));
                for (const r of ev.resources) {
                    const parent = r.parent && components.get(r.parent);
                    if (parent) assert.ok(r.name.startsWith(`${parent.name}-`), `${r.name} is not prefixed with ${parent.name}-`);
                }
            });
        });
    }
});

describe("the prod hub", () => {
    it("is highly available, with application controller shards sized from the fleet", async () => {
        const values = releaseOf(await evaluated("prod")).inputs.values as Obj;
        assert.strictEqual(values["redis-ha"].enabled, true);
        assert.strictEqual(values["redis-ha"].existingSecret, REDIS_SECRET);
        assert.strictEqual(values.redis.enabled, false);
        assert.strictEqual(values.server.replicas, 2);
        assert.strictEqual(values.repoServer.replicas, 2);
        assert.strictEqual(values.applicationSet.replicas, 2);
        // 7 tenants: one shard per 25 tenants, at least 2 in HA.
        assert.strictEqual(values.controller.replicas, 2);
        assert.strictEqual(values.configs.params["controller.sharding.algorithm"], "round-robin");
    });

    it("is a single, unsharded install in dev", async () => {
        const values = releaseOf(await evaluated("dev")).inputs.values as Obj;
        assert.strictEqual(values["redis-ha"].enabled, false);
        assert.strictEqual(values.controller.replicas, 1);
        assert.strictEqual(values.configs.params["controller.sharding.algorithm"], undefined);
    });
});

describe("where the argo-cd chart comes from (hub.chartRepository)", () => {
    it("is argo-helm by default, an oci:// registry's argo-cd, or a local chart folder", () => {
        assert.deepStrictEqual(chartSource("https://argoproj.github.io/argo-helm"), { chart: "argo-cd", repositoryOpts: { repo: "https://argoproj.github.io/argo-helm" } });
        assert.deepStrictEqual(chartSource("oci://registry.example.net/charts/"), { chart: "oci://registry.example.net/charts/argo-cd" });
        assert.deepStrictEqual(chartSource("/srv/charts/argo-cd"), { chart: "/srv/charts/argo-cd" });
    });

    it("reads a relative chart folder from the project root, whatever the working directory (npm run hub runs the program in its own process)", async () => {
        const cwd = process.cwd();
        process.chdir(os.tmpdir());
        try {
            const ev = await evaluate("e2e");
            const release = ev.resources.find((r) => r.type === "kubernetes:helm.sh/v3:Release")!;
            assert.strictEqual(release.inputs.chart, path.join(ROOT, "e2e", "argo-cd-standin"));
        } finally {
            process.chdir(cwd);
        }
    });

    it("refuses a folder without a Chart.yaml and other URL schemes, naming the key", async () => {
        for (const [value, fragment] of [["charts/no-such-chart", "is not a chart folder"], ["git://example.net/charts", "only https:// Helm repositories"]]) {
            const problems = await configProblems("dev", (c) => ((c["agentfleet:hub"] as Obj).chartRepository = value));
            assertProblem(problems, "agentfleet:hub.chartRepository", fragment);
        }
    });
});
