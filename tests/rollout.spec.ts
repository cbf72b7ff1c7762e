import * as assert from "assert";
import { AGENT_CHART_KINDS, applicationSetSpec, effectiveSteps } from "../components/fleet-rollout";
import { ROLLOUT_LABELS } from "../stacks/config";
import { TRIGGERS } from "../stacks/notifications";
import { declaredObjects, evaluate } from "../evaluator/evaluate";
import { validateObjects } from "./doubles/k8s-schema";
import { renderChart } from "../evaluator/helm";
import { IN_CLUSTER, destinationRefusal, registeredClusters } from "../evaluator/app-project";
import { generateApplications } from "../evaluator/render";
import { fleetObjects } from "../evaluator/registrations";
import { STACKS, type Obj, evaluated, key, objectsOf, rendered } from "./helpers";

const hubObject = async (stack: string, kind: string) => {
    const [found] = await objectsOf(stack, { cluster: "hub", kind });
    assert.ok(found, `${stack} declares no ${kind}`);
    return found;
};

describe("fleet rollout", () => {
    for (const stack of STACKS) {
        describe(`stack ${stack}`, () => {
            it("puts every tenant in exactly one RollingSync step, matching on the generated Applications' labels", async () => {
                const { apps, plan } = await rendered(stack);
                const tenants = (await objectsOf(stack, { cluster: "hub", kind: "Secret" })).filter((o) => (o.object.metadata as Obj).labels?.["argocd.argoproj.io/secret-type"] === "cluster").map((o) => (o.object.metadata as Obj).labels.tenant);
                assert.deepStrictEqual(apps.map((a) => a.tenant).sort(), [...tenants].sort(), "one Application per registered tenant");
                assert.deepStrictEqual(apps.filter((a) => a.step === -1).map((a) => a.tenant), [], "tenants in no step are never synced");
                const inSteps = plan.steps.flatMap((s) => s.tenants);
                assert.deepStrictEqual([...inSteps].sort(), [...tenants].sort());
                assert.strictEqual(new Set(inSteps).size, inSteps.length, "a tenant appears in two steps");
                assert.ok(plan.steps.every((s) => s.tenants.length > 0), "an empty step");
            });

            it("renders, for every tenant, the chart in the promised order: config, migration, Deployment, Service and Ingress, warm-up", async () => {
                const { apps } = await rendered(stack);
                for (const app of apps) {
                    const at = (kind: string, name: string) => {
                        const i = app.waves.findIndex((w) => w.kind === kind && w.name === name);
                        assert.ok(i >= 0, `${app.tenant}: no ${kind} ${name}`);
                        return { i, wave: app.waves[i] };
                    };
                    const config = at("ConfigMap", "voice-agent-config");
                    const migration = at("Job", "voice-agent-migrate");
                    const deployment = at("Deployment", "voice-agent");
                    const service = at("Service", "voice-agent");
                    const ingress = at("Ingress", "voice-agent");
                    const warmup = at("Job", "voice-agent-warmup");
                    assert.ok(config.wave.wave < migration.wave.wave && migration.wave.wave < deployment.wave.wave, `${app.tenant}: config, then migration, then Deployment, in separate waves`);
                    assert.ok(deployment.wave.wave < service.wave.wave && deployment.wave.wave < ingress.wave.wave, `${app.tenant}: traffic after the Deployment is healthy`);
                    assert.strictEqual(warmup.wave.phase, "PostSync");
                    assert.strictEqual(warmup.i, app.waves.length - 1, `${app.tenant}: warm-up last`);
                }
            });

            it("generates Applications that validate strictly against the Argo CD schema", async () => {
                const { apps } = await rendered(stack);
                assert.deepStrictEqual(await validateObjects(apps.map((a) => a.application)), []);
            });

            it("renders the ApplicationSet with go templates that fail on missing keys, over the fleet's cluster Secrets", async () => {
                const spec = (await hubObject(stack, "ApplicationSet")).object.spec as Obj;
                assert.strictEqual(spec.goTemplate, true);
                assert.deepStrictEqual(spec.goTemplateOptions, ["missingkey=error"]);
                assert.deepStrictEqual(spec.generators[0].clusters.selector.matchLabels, { "argocd.argoproj.io/secret-type": "cluster", "agentfleet.io/fleet": stack });
                for (const label of ROLLOUT_LABELS) assert.ok(spec.template.metadata.labels[label], `template sets no ${label} label`);
            });

            it("never deletes tenant workloads when the ApplicationSet or an Application goes away", async () => {
                const spec = (await hubObject(stack, "ApplicationSet")).object.spec as Obj;
                assert.strictEqual(spec.syncPolicy.preserveResourcesOnDeletion, true);
                assert.strictEqual(spec.strategy.type, "RollingSync");
                assert.strictEqual(spec.strategy.deletionOrder, "Reverse");
                assert.ok(["create-only", "create-update", "create-delete", "sync"].includes(spec.syncPolicy.applicationsSync));
            });

            it("syncs the chart from this repository at the stack's revision, with env and tenant value files", async () => {
                const ev = await evaluated(stack);
                const spec = (await hubObject(stack, "ApplicationSet")).object.spec as Obj;
                const source = spec.template.spec.source;
                assert.strictEqual(source.path, "charts/voice-agent");
                assert.ok(source.targetRevision);
                assert.deepStrictEqual(source.helm.valueFiles, ["values.yaml", 'values-{{index .metadata.labels "env"}}.yaml', "tenants/{{.name}}.yaml"]);
                assert.strictEqual(source.helm.ignoreMissingValueFiles, true);
                const retry = spec.template.spec.syncPolicy.retry;
                assert.ok(retry.limit > 0 && retry.backoff.duration && retry.backoff.factor > 1);
                assert.ok(ev.resources.length > 0);
            });

            it("subscribes the generated Applications to notification triggers that exist", async () => {
                const spec = (await hubObject(stack, "ApplicationSet")).object.spec as Obj;
                const annotations = Object.keys(spec.template.metadata.annotations ?? {});
                assert.ok(annotations.length > 0, "no subscriptions");
                for (const a of annotations) {
                    const trigger = /^notifications\.argoproj\.io\/subscribe\.([^.]+)\./.exec(a)?.[1];
                    assert.ok(trigger && trigger in TRIGGERS, `${a} subscribes to a trigger that does not exist`);
                }
            });

            it("limits the AppProject to this repository, the clusters scoped to it (no destination of its own) and the chart's kinds; Argo CD's rules admit every generated Application", async () => {
                const ev = await evaluated(stack);
                const project = (await hubObject(stack, "AppProject")).object as Obj;
                const appSet = (await hubObject(stack, "ApplicationSet")).object.spec as Obj;
                assert.deepStrictEqual(project.spec.sourceRepos, [appSet.template.spec.source.repoURL]);
                assert.deepStrictEqual(project.spec.clusterResourceWhitelist, []);
                assert.deepStrictEqual(project.spec.namespaceResourceWhitelist, AGENT_CHART_KINDS);
                assert.deepStrictEqual([project.spec.destinations, project.spec.permitOnlyProjectScopedClusters], [[], true]);
                const secrets = (await fleetObjects(ev)).filter((o) => (o.object.metadata as Obj).labels?.["argocd.argoproj.io/secret-type"] === "cluster");
                assert.ok(secrets.length > 0 && secrets.every((s) => (s.object.stringData as Obj).project === project.metadata.name && (s.object.stringData as Obj).namespaces === "voice-agent"));
                const apps = generateApplications(await fleetObjects(ev));
                assert.strictEqual(apps.length, secrets.length);
                assert.deepStrictEqual(apps.filter((a) => a.refusal).map((a) => `${a.tenant}: ${a.refusal}`), []);
            });

            it("allows exactly the kinds the agent chart renders, in every environment", async () => {
                const { apps } = await rendered(stack);
                const kinds = new Set<string>();
                for (const app of apps) for (const o of app.objects) kinds.add(`${String(o.apiVersion).includes("/") ? String(o.apiVersion).split("/")[0] : ""}/${o.kind}`);
                const allowed = AGENT_CHART_KINDS.map((k) => `${k.group}/${k.kind}`);
                for (const k of kinds) assert.ok(allowed.includes(k), `the chart renders ${k}, which the AppProject does not allow`);
            });
        });
    }

    it("protects the prod AppProject and ApplicationSet from deletion, and not dev's", async () => {
        for (const [stack, protect] of [["prod", true], ["dev", false]] as const) {
            for (const kind of ["AppProject", "ApplicationSet"]) {
                const { resource } = await hubObject(stack, kind);
                assert.strictEqual(resource.protect, protect, `${stack} ${kind} protect`);
                assert.strictEqual(resource.retainOnDelete, protect, `${stack} ${kind} retainOnDelete`);
            }
        }
    });

    it("applies the prod deny window with manual sync allowed", async () => {
        const project = (await hubObject("prod", "AppProject")).object.spec as Obj;
        assert.deepStrictEqual(project.syncWindows, [{ kind: "deny", schedule: "0 17 * * *", duration: "5h", applications: ["*"], manualSync: true, timeZone: "Europe/Berlin" }]);
    });

    describe("the single-hub topology (stack fleet)", () => {
        it("promotes dev, then staging at 100%, then prod 20% at a time", async () => {
            const spec = (await hubObject("fleet", "ApplicationSet")).object.spec as Obj;
            assert.deepStrictEqual(spec.strategy.rollingSync.steps, [
                { matchExpressions: [{ key: "env", operator: "In", values: ["dev"] }] },
                { matchExpressions: [{ key: "env", operator: "In", values: ["staging"] }], maxUpdate: "100%" },
                { matchExpressions: [{ key: "env", operator: "In", values: ["prod"] }], maxUpdate: "20%" },
            ]);
            const { plan, apps } = await rendered("fleet");
            assert.deepStrictEqual(plan.steps.map((s) => s.tenants), [["fleet-dev"], ["fleet-staging"], ["fleet-prod"]]);
            assert.deepStrictEqual(apps.map((a) => a.application.spec.source.helm.valueFiles[1]), ["values-dev.yaml", "values-staging.yaml", "values-prod.yaml"]);
        });
    });

    describe("the emergency path", () => {
        it("rolls the revision to every tenant in one step at 100%, and changes nothing else", async () => {
            const normal = (await hubObject("prod", "ApplicationSet")).object.spec as Obj;
            const ev = await evaluate("prod", { edit: (c) => (c["agentfleet:emergencyRollout"] = true) });
            const emergency = declaredObjects(ev).find((o) => o.object.kind === "ApplicationSet")!.object.spec as Obj;
            assert.deepStrictEqual(emergency.strategy.rollingSync.steps, [{ matchExpressions: [{ key: "env", operator: "In", values: ["prod"] }], maxUpdate: "100%" }]);
            assert.deepStrictEqual({ ...emergency, strategy: undefined }, { ...normal, strategy: undefined });
            const apps = generateApplications(await fleetObjects(ev));
            assert.ok(apps.length === 7 && apps.every((a) => a.step === 0), "every tenant is in the single step");
        });

        it("covers every env of a single-hub fleet", () => {
            const tenants = ["dev", "staging", "prod"].map((env) => ({ env }));
            assert.deepStrictEqual(effectiveSteps({ steps: [], tenants: tenants as never, emergencyRollout: true })[0].matchExpressions[0].values, ["dev", "prod", "staging"]);
        });
    });

    describe("the AppProject admits only the clusters scoped to it (Argo CD's rules, as evaluator/app-project.ts models them)", () => {
        const refusal = (server: string, namespace: string, project = "voice-agent-prod") => `application destination server '${server}' and namespace '${namespace}' do not match any of the allowed destinations in project '${project}'`;
        const prodHub = async () => (await objectsOf("prod", { cluster: "hub" })).map((o) => o.object as Obj);
        const projectOf = (hub: Obj[]) => hub.find((o) => o.kind === "AppProject")!;

        it("refuses an Application in the fleet's project aimed at the hub's in-cluster, with Argo CD's message, and a tenant's namespace its cluster Secret does not list", async () => {
            const hub = await prodHub();
            const clusters = registeredClusters(hub);
            assert.strictEqual(destinationRefusal(projectOf(hub), clusters, { server: IN_CLUSTER, namespace: "voice-agent" }), refusal(IN_CLUSTER, "voice-agent"));
            const tenant = clusters[0].server;
            assert.strictEqual(destinationRefusal(projectOf(hub), clusters, { server: tenant, namespace: "voice-agent" }), undefined);
            assert.strictEqual(destinationRefusal(projectOf(hub), clusters, { server: tenant, namespace: "kube-system" }), refusal(tenant, "kube-system"));
        });

        for (const [what, project] of [["no project", undefined], ["another project", "voice-agent-staging"]] as const) {
            it(`refuses the Application of a tenant whose cluster Secret carries ${what}, and only that one`, async () => {
                const objects = await objectsOf("prod");
                const unscoped = objects.map((o) => {
                    if ((o.object.metadata as Obj).name !== "cluster-prod-acme-eu") return o;
                    const stringData = { ...(o.object.stringData as Obj), project };
                    return { ...o, object: { ...o.object, stringData } };
                });
                const apps = generateApplications(unscoped);
                const server = String((objects.find((o) => (o.object.metadata as Obj).name === "cluster-prod-acme-eu")!.object.stringData as Obj).server);
                assert.deepStrictEqual(apps.filter((a) => a.refusal).map((a) => [a.tenant, a.refusal]), [["prod-acme-eu", refusal(server, "voice-agent")]]);
            });
        }

        it("follows permitOnlyProjectScopedClusters: a `*` destination admits the in-cluster without it, and not with it", async () => {
            const hub = await prodHub();
            const anywhere = { ...projectOf(hub), spec: { ...projectOf(hub).spec, destinations: [{ server: "*", namespace: "*" }] } };
            const clusters = registeredClusters(hub);
            assert.strictEqual(destinationRefusal({ ...anywhere, spec: { ...anywhere.spec, permitOnlyProjectScopedClusters: false } }, clusters, { server: IN_CLUSTER, namespace: "voice-agent" }), undefined);
            assert.strictEqual(destinationRefusal(anywhere, clusters, { server: IN_CLUSTER, namespace: "voice-agent" }), refusal(IN_CLUSTER, "voice-agent"));
        });
    });

    it("would leave every Application unsynced if the template lost its labels (the blog-post bug)", async () => {
        const objects = await objectsOf("prod");
        const broken = objects.map((o) => {
            if (o.object.kind !== "ApplicationSet") return o;
            const spec = JSON.parse(JSON.stringify(o.object.spec));
            spec.template.metadata.labels = {};
            return { ...o, object: { ...o.object, spec } };
        });
        assert.ok(generateApplications(broken).every((a) => a.step === -1));
        assert.ok(applicationSetSpec.length === 1);
    });

    it("moves a tenant to another ring without restarting its agents", async () => {
        const render = (ring: string, logLevel = "info") => renderChart({ chartDir: "charts/voice-agent", releaseName: "voice-agent", namespace: "voice-agent", valueFiles: ["values.yaml", "values-prod.yaml"], values: { logLevel, fleet: { tenant: "acme", env: "prod", ring, region: "eu-west" } } });
        const podTemplate = (objs: Obj[]) => objs.find((o) => o.kind === "Deployment")!.spec.template;
        assert.deepStrictEqual(podTemplate(await render("early")), podTemplate(await render("main")));
        // ...while a real configuration change still rolls the pods.
        assert.notDeepStrictEqual(podTemplate(await render("early")), podTemplate(await render("early", "debug")));
    });

    it("rejects a configuration change that would strand a tenant outside every step", async () => {
        await assert.rejects(evaluate("prod", { edit: (c) => key(c, "rollout").steps.pop() }), /prod-globex-eu matches no rollout step/);
    });
});
