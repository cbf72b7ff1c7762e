import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { validateObjects } from "./doubles/k8s-schema";
import { helmBinary, lintChart, renderChart, renderChartManifest, parseManifest } from "../evaluator/helm";
import { applyOrder, KIND_ORDER, WaveEntry } from "../evaluator/waves";

type KubeObject = Record<string, any>;

const CHART_DIR = path.resolve(__dirname, "..", "charts", "voice-agent");
const ENVS = ["dev", "staging", "prod"] as const;
type Env = (typeof ENVS)[number];

const TENANT = "acme";
const NAMESPACE = "tenant-acme";
// The ApplicationSet sets helm.releaseName to the chart name, so object names are stable per tenant.
const RELEASE = "voice-agent";
const NAMES = {
    deployment: RELEASE,
    config: `${RELEASE}-config`,
    prober: `${RELEASE}-prober`,
    migration: `${RELEASE}-migrate`,
    warmup: `${RELEASE}-warmup`,
};

/** What the ApplicationSet passes per Application through `valuesObject`. */
const fleetValues = (env: Env) => ({ fleet: { tenant: TENANT, env, ring: env === "prod" ? "main" : "early", region: "eu-west" } });
/** The ApplicationSet's value files, in its order; the tenant file is optional. */
const valueFilesFor = (env: Env) => ["values.yaml", `values-${env}.yaml`, `tenants/${TENANT}.yaml`];

/**
 * Every namespaced kind the chart renders, as AppProject namespaceResourceWhitelist entries
 * (group/kind). Adding a kind to the chart must also add it to the AppProject.
 */
const RENDERED_KINDS = [
    "/ConfigMap",
    "/Service",
    "/ServiceAccount",
    "apps/Deployment",
    "batch/CronJob",
    "batch/Job",
    "networking.k8s.io/Ingress",
    "policy/PodDisruptionBudget",
    "rbac.authorization.k8s.io/Role",
    "rbac.authorization.k8s.io/RoleBinding",
];

const CLUSTER_SCOPED_KINDS = new Set([
    "Namespace", "Node", "PersistentVolume", "StorageClass", "CSIDriver", "CSINode", "VolumeAttachment",
    "CustomResourceDefinition", "APIService", "ClusterRole", "ClusterRoleBinding", "IngressClass",
    "PriorityClass", "RuntimeClass", "PodSecurityPolicy", "CertificateSigningRequest",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "FlowSchema", "PriorityLevelConfiguration",
]);

interface Rendering {
    manifest: string;
    objects: KubeObject[];
    order: WaveEntry[];
}

async function render(env: Env, extraValues: object = {}): Promise<Rendering> {
    const manifest = await renderChartManifest({
        chartDir: CHART_DIR,
        releaseName: RELEASE,
        namespace: NAMESPACE,
        valueFiles: valueFilesFor(env),
        values: { ...fleetValues(env), ...extraValues },
        ignoreMissingValueFiles: true,
    });
    const objects = parseManifest(manifest);
    return { manifest, objects, order: applyOrder(objects) };
}

const groupKind = (obj: KubeObject) => `${obj.apiVersion.includes("/") ? obj.apiVersion.split("/")[0] : ""}/${obj.kind}`;
const find = (objects: KubeObject[], kind: string, name: string): KubeObject => {
    const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
    assert.ok(found, `${kind} ${name} is rendered`);
    return found;
};
const at = (order: WaveEntry[], kind: string, name: string): { index: number; entry: WaveEntry } => {
    const index = order.findIndex((e) => e.kind === kind && e.name === name);
    assert.ok(index >= 0, `${kind} ${name} is applied by a sync`);
    return { index, entry: order[index] };
};
const podSpecs = (objects: KubeObject[]): Array<{ owner: string; spec: KubeObject }> =>
    objects.flatMap((o) => {
        const owner = `${o.kind} ${o.metadata.name}`;
        if (o.kind === "Deployment" || o.kind === "Job") return [{ owner, spec: o.spec.template.spec }];
        if (o.kind === "CronJob") return [{ owner, spec: o.spec.jobTemplate.spec.template.spec }];
        return [];
    });
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "agent-chart-spec-"));

describe("voice-agent chart", function () {
    this.timeout(120_000);

    it("uses a real helm binary", function () {
        assert.ok(fs.existsSync(helmBinary()));
    });

    for (const env of ENVS) {
        describe(`in ${env}`, function () {
            let rendering: Rendering;
            before(async function () {
                rendering = await render(env);
            });

            it("passes helm lint --strict", function () {
                const dir = tempDir();
                try {
                    const fleetFile = path.join(dir, "fleet.yaml");
                    fs.writeFileSync(fleetFile, JSON.stringify(fleetValues(env)));
                    const lint = lintChart(CHART_DIR, ["values.yaml", `values-${env}.yaml`, fleetFile]);
                    assert.ok(lint.ok, lint.output);
                } finally {
                    fs.rmSync(dir, { recursive: true, force: true });
                }
            });

            it("renders only objects that validate strictly against the official schemas", async function () {
                assert.deepEqual(await validateObjects(rendering.objects as never), []);
            });

            it("renders exactly the namespaced kinds the AppProject whitelists, all into the destination namespace", function () {
                assert.deepEqual([...new Set(rendering.objects.map(groupKind))].sort(), [...RENDERED_KINDS].sort());
                for (const obj of rendering.objects) {
                    assert.ok(!CLUSTER_SCOPED_KINDS.has(obj.kind), `${obj.kind} is cluster-scoped`);
                    assert.equal(obj.metadata.namespace, NAMESPACE, `${obj.kind} ${obj.metadata.name} namespace`);
                }
            });

            describe("sync order", function () {
                it("applies the configuration and the prober with its RBAC in a wave before the migration", function () {
                    const migration = at(rendering.order, "Job", NAMES.migration);
                    for (const [kind, name] of [
                        ["ConfigMap", NAMES.config],
                        ["ServiceAccount", NAMES.prober],
                        ["Role", NAMES.prober],
                        ["RoleBinding", NAMES.prober],
                        ["ConfigMap", NAMES.prober],
                        ["CronJob", NAMES.prober],
                        ["ServiceAccount", NAMES.deployment],
                    ]) {
                        const earlier = at(rendering.order, kind, name);
                        assert.equal(earlier.entry.phase, "Sync", `${kind} ${name} phase`);
                        assert.ok(earlier.index < migration.index, `${kind} ${name} is applied before the migration`);
                        assert.ok(earlier.entry.wave < migration.entry.wave, `${kind} ${name} is in an earlier wave than the migration`);
                    }
                });

                it("runs the migration as a Sync-phase hook (not PreSync) that completes before the Deployment changes", function () {
                    const migration = at(rendering.order, "Job", NAMES.migration);
                    const deployment = at(rendering.order, "Deployment", NAMES.deployment);
                    assert.equal(migration.entry.phase, "Sync");
                    assert.equal(find(rendering.objects, "Job", NAMES.migration).metadata.annotations["argocd.argoproj.io/hook"], "Sync");
                    assert.ok(migration.index < deployment.index, "migration is applied before the Deployment");
                    assert.ok(migration.entry.wave < deployment.entry.wave, "migration is in an earlier wave than the Deployment");
                });

                it("re-runs the migration on every sync (BeforeHookCreation)", function () {
                    const policies = String(
                        find(rendering.objects, "Job", NAMES.migration).metadata.annotations["argocd.argoproj.io/hook-delete-policy"],
                    ).split(",").map((p) => p.trim());
                    assert.ok(policies.includes("BeforeHookCreation"), `delete policy ${policies}`);
                });

                it("applies the PodDisruptionBudget with the Deployment", function () {
                    const deployment = at(rendering.order, "Deployment", NAMES.deployment);
                    const pdb = at(rendering.order, "PodDisruptionBudget", NAMES.deployment);
                    assert.deepEqual([pdb.entry.phase, pdb.entry.wave], [deployment.entry.phase, deployment.entry.wave]);
                });

                it("exposes the agent (Service, Ingress) only in a later wave, after the Deployment is healthy", function () {
                    const deployment = at(rendering.order, "Deployment", NAMES.deployment);
                    for (const kind of ["Service", "Ingress"]) {
                        const exposure = at(rendering.order, kind, NAMES.deployment);
                        assert.equal(exposure.entry.phase, "Sync");
                        assert.ok(exposure.index > deployment.index, `${kind} after the Deployment`);
                        assert.ok(exposure.entry.wave > deployment.entry.wave, `${kind} in a later wave than the Deployment`);
                    }
                });

                it("runs the warm-up last, as a PostSync hook", function () {
                    const warmup = at(rendering.order, "Job", NAMES.warmup);
                    assert.equal(warmup.index, rendering.order.length - 1);
                    assert.equal(warmup.entry.phase, "PostSync");
                    const policy = find(rendering.objects, "Job", NAMES.warmup).metadata.annotations["argocd.argoproj.io/hook-delete-policy"];
                    assert.match(policy, /BeforeHookCreation|HookSucceeded/);
                });

                it("writes every sync-wave annotation as a quoted integer string", function () {
                    const waveLines = rendering.manifest.split("\n").filter((line) => line.includes("argocd.argoproj.io/sync-wave"));
                    assert.ok(waveLines.length >= 5, "the chart sets waves");
                    for (const line of waveLines) assert.match(line, /^\s*argocd\.argoproj\.io\/sync-wave: "-?\d+"$/);
                });
            });

            describe("probe gate contract", function () {
                it("opts the Deployment in to the probe-gated health check", function () {
                    const deployment = find(rendering.objects, "Deployment", NAMES.deployment);
                    assert.equal(deployment.metadata.annotations["agentfleet.io/probe-gate"], "true");
                });

                it("grants the prober only get/list on pods and get/patch on the agent Deployment by name", function () {
                    assert.deepEqual(find(rendering.objects, "Role", NAMES.prober).rules, [
                        { apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] },
                        { apiGroups: ["apps"], resources: ["deployments"], resourceNames: [NAMES.deployment], verbs: ["get", "patch"] },
                    ]);
                    const binding = find(rendering.objects, "RoleBinding", NAMES.prober);
                    assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: NAMES.prober, namespace: NAMESPACE }]);
                    assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: NAMES.prober });
                });

                it("points the prober at the agent pods only, by the Deployment's own selector", function () {
                    const deployment = find(rendering.objects, "Deployment", NAMES.deployment);
                    const cronJob = find(rendering.objects, "CronJob", NAMES.prober);
                    const env = Object.fromEntries(
                        cronJob.spec.jobTemplate.spec.template.spec.containers[0].env
                            .filter((e: KubeObject) => "value" in e)
                            .map((e: KubeObject) => [e.name, e.value]),
                    );
                    assert.equal(env.DEPLOYMENT, NAMES.deployment);
                    const selector = Object.fromEntries(env.AGENT_SELECTOR.split(",").map((pair: string) => pair.split("=")));
                    assert.deepEqual(selector, deployment.spec.selector.matchLabels);
                    assert.equal(env.PROBE_PORT, String(deployment.spec.template.spec.containers[0].ports[0].containerPort));
                    for (const job of rendering.objects.filter((o) => o.kind === "Job")) {
                        assert.notEqual(job.spec.template.metadata.labels["app.kubernetes.io/component"], "agent", `${job.metadata.name} pods are not probe targets`);
                    }
                });
            });

            describe("production defaults", function () {
                it("hardens every pod and container", function () {
                    for (const { owner, spec } of podSpecs(rendering.objects)) {
                        assert.equal(spec.securityContext?.runAsNonRoot, true, `${owner} runAsNonRoot`);
                        assert.equal(spec.securityContext?.seccompProfile?.type, "RuntimeDefault", `${owner} seccomp`);
                        const mountsTmp = (c: KubeObject) => (c.volumeMounts ?? []).some((m: KubeObject) => m.mountPath === "/tmp");
                        for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
                            const where = `${owner} container ${container.name}`;
                            const context = container.securityContext ?? {};
                            assert.equal(context.allowPrivilegeEscalation, false, `${where} allowPrivilegeEscalation`);
                            assert.equal(context.readOnlyRootFilesystem, true, `${where} readOnlyRootFilesystem`);
                            assert.deepEqual(context.capabilities?.drop, ["ALL"], `${where} drops capabilities`);
                            assert.ok(mountsTmp(container), `${where} has a writable /tmp`);
                            for (const bound of ["requests", "limits"]) {
                                assert.ok(container.resources?.[bound]?.cpu && container.resources?.[bound]?.memory, `${where} ${bound}`);
                            }
                            assert.match(container.image, /^[^\s@]+:[\w][\w.-]*(@sha256:[0-9a-f]{64})?$/, `${where} image is pinned`);
                            assert.doesNotMatch(container.image, /:latest(@|$)/, `${where} image is not latest`);
                        }
                    }
                });

                it("gives the agent liveness and readiness probes and no API token", function () {
                    const pod = find(rendering.objects, "Deployment", NAMES.deployment).spec.template.spec;
                    assert.ok(pod.containers[0].livenessProbe?.httpGet);
                    assert.ok(pod.containers[0].readinessProbe?.httpGet);
                    assert.equal(pod.automountServiceAccountToken, false);
                });

                it("references the existing credentials Secret without rendering it", function () {
                    const agent = find(rendering.objects, "Deployment", NAMES.deployment).spec.template.spec.containers[0];
                    assert.deepEqual(agent.envFrom, [{ secretRef: { name: "voice-agent-credentials" } }]);
                    const migrate = find(rendering.objects, "Job", NAMES.migration).spec.template.spec.containers[0];
                    const databaseUrl = migrate.env.find((e: KubeObject) => e.name === "DATABASE_URL");
                    assert.deepEqual(databaseUrl.valueFrom, { secretKeyRef: { name: "voice-agent-credentials", key: "DATABASE_URL" } });
                    assert.ok(!rendering.objects.some((o) => o.kind === "Secret"));
                });

                it("mounts the same configuration into the agent and the migration", function () {
                    for (const [kind, name] of [["Deployment", NAMES.deployment], ["Job", NAMES.migration]]) {
                        const volumes = find(rendering.objects, kind, name).spec.template.spec.volumes;
                        assert.ok(volumes.some((v: KubeObject) => v.configMap?.name === NAMES.config), `${kind} mounts ${NAMES.config}`);
                    }
                });

                it("serves the tenant at <tenant>.<env base domain>", function () {
                    const ingress = find(rendering.objects, "Ingress", NAMES.deployment);
                    const host = ingress.spec.rules[0].host;
                    assert.match(host, new RegExp(`^${TENANT}\\.`));
                    assert.ok(host.includes(env === "prod" ? ".agents.example.com" : `.${env}.agents.example.com`), host);
                });
            });
        });
    }

    describe("environments differ sensibly", function () {
        let byEnv: Record<Env, Rendering>;
        before(async function () {
            byEnv = { dev: await render("dev"), staging: await render("staging"), prod: await render("prod") };
        });
        const deploymentIn = (env: Env) => find(byEnv[env].objects, "Deployment", NAMES.deployment);
        const configIn = (env: Env) => find(byEnv[env].objects, "ConfigMap", NAMES.config).data["agent.yaml"];

        it("scales replicas up from dev to prod", function () {
            const replicas = ENVS.map((env) => deploymentIn(env).spec.replicas);
            assert.deepEqual(replicas, [...replicas].sort((a, b) => a - b));
            assert.ok(replicas[0] < replicas[2]);
        });

        it("logs verbosely in dev and sparingly in prod", function () {
            assert.match(configIn("dev"), /logLevel: debug/);
            assert.match(configIn("prod"), /logLevel: warn/);
        });

        it("uses a different ingress host per environment", function () {
            const hosts = ENVS.map((env) => find(byEnv[env].objects, "Ingress", NAMES.deployment).spec.rules[0].host);
            assert.equal(new Set(hosts).size, ENVS.length);
        });

        it("gives prod larger resources than dev", function () {
            const memory = (env: Env) => deploymentIn(env).spec.template.spec.containers[0].resources.limits.memory;
            assert.notEqual(memory("dev"), memory("prod"));
        });
    });

    describe("value files and fleet values", function () {
        it("skips a missing tenants/<tenant>.yaml when ignoreMissingValueFiles is set, as Argo CD does", async function () {
            const objects = await renderChart({
                chartDir: CHART_DIR, releaseName: RELEASE, namespace: NAMESPACE,
                valueFiles: valueFilesFor("prod"), values: fleetValues("prod"), ignoreMissingValueFiles: true,
            });
            assert.ok(objects.length > 0);
        });

        it("fails on a missing value file otherwise", async function () {
            await assert.rejects(
                renderChart({ chartDir: CHART_DIR, releaseName: RELEASE, namespace: NAMESPACE, valueFiles: valueFilesFor("prod"), values: fleetValues("prod") }),
                /value file not found: tenants\/acme\.yaml/,
            );
        });

        it("lets a tenant file override the environment file", async function () {
            const dir = tempDir();
            try {
                const tenantFile = path.join(dir, `${TENANT}.yaml`);
                fs.writeFileSync(tenantFile, "replicas: 5\ningress:\n  host: voice.acme.example.org\n");
                const objects = await renderChart({
                    chartDir: CHART_DIR, releaseName: RELEASE, namespace: NAMESPACE,
                    valueFiles: ["values.yaml", "values-prod.yaml", tenantFile], values: fleetValues("prod"),
                });
                assert.equal(find(objects, "Deployment", NAMES.deployment).spec.replicas, 5);
                assert.equal(find(objects, "Ingress", NAMES.deployment).spec.rules[0].host, "voice.acme.example.org");
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });

        it("labels every object with the fleet identity", async function () {
            const { objects } = await render("staging");
            for (const obj of objects) {
                assert.equal(obj.metadata.labels["agentfleet.io/tenant"], TENANT);
                assert.equal(obj.metadata.labels["agentfleet.io/env"], "staging");
                assert.equal(obj.metadata.labels["agentfleet.io/region"], "eu-west");
            }
        });

        it("refuses to render without a tenant", async function () {
            await assert.rejects(
                renderChart({ chartDir: CHART_DIR, releaseName: RELEASE, namespace: NAMESPACE, valueFiles: ["values.yaml", "values-dev.yaml"] }),
                /fleet\.tenant is required/,
            );
        });

        it("refuses an unpinned image", async function () {
            await assert.rejects(render("dev", { image: { tag: "latest" } }), /image\.tag must be pinned/);
        });
    });
});

describe("applyOrder (Argo CD sync order)", function () {
    const obj = (kind: string, name: string, annotations: Record<string, string> = {}, extra: KubeObject = {}): KubeObject => ({
        apiVersion: "v1",
        kind,
        metadata: { name, annotations, ...(extra.metadata ?? {}) },
        ...Object.fromEntries(Object.entries(extra).filter(([key]) => key !== "metadata")),
    });
    const wave = (n: string) => ({ "argocd.argoproj.io/sync-wave": n });
    const hook = (type: string, more: Record<string, string> = {}) => ({ "argocd.argoproj.io/hook": type, ...more });
    const summary = (entries: WaveEntry[]) => entries.map((e) => `${e.phase}/${e.wave}/${e.kind}/${e.name}`);

    it("orders by phase before wave", function () {
        const order = applyOrder([
            obj("Job", "post", hook("PostSync", wave("-10"))),
            obj("ConfigMap", "sync", wave("5")),
            obj("Job", "pre", hook("PreSync", wave("10"))),
            obj("Job", "fail", hook("SyncFail", wave("-20"))),
        ]);
        assert.deepEqual(summary(order), ["PreSync/10/Job/pre", "Sync/5/ConfigMap/sync", "PostSync/-10/Job/post", "SyncFail/-20/Job/fail"]);
    });

    it("orders by wave before kind", function () {
        const order = applyOrder([obj("ConfigMap", "late", wave("1")), obj("Ingress", "early", wave("-1"))]);
        assert.deepEqual(summary(order), ["Sync/-1/Ingress/early", "Sync/1/ConfigMap/late"]);
    });

    it("orders kinds within a wave by Helm's install order, unknown kinds last", function () {
        const order = applyOrder([
            obj("Widget", "a"),
            obj("Ingress", "a"),
            obj("Job", "a"),
            obj("Deployment", "a"),
            obj("Service", "a"),
            obj("ConfigMap", "a"),
            obj("ServiceAccount", "a"),
            obj("PodDisruptionBudget", "a"),
        ]);
        assert.deepEqual(order.map((e) => e.kind), ["PodDisruptionBudget", "ServiceAccount", "ConfigMap", "Service", "Deployment", "Job", "Ingress", "Widget"]);
    });

    it("exports the kind order exactly as gitops-engine lists it", function () {
        assert.equal(KIND_ORDER.length, 35);
        assert.deepEqual([KIND_ORDER[0], KIND_ORDER[5], KIND_ORDER[7], KIND_ORDER[9]], ["Namespace", "PodDisruptionBudget", "Secret", "ConfigMap"]);
        assert.deepEqual(KIND_ORDER.slice(-4), ["CronJob", "IngressClass", "Ingress", "APIService"]);
        assert.ok(KIND_ORDER.indexOf("RoleBinding") < KIND_ORDER.indexOf("Service"));
    });

    it("breaks ties by name", function () {
        const order = applyOrder([obj("ConfigMap", "b"), obj("ConfigMap", "a"), obj("ConfigMap", "c")]);
        assert.deepEqual(order.map((e) => e.name), ["a", "b", "c"]);
    });

    it("maps Helm hooks to phases and hook-weight to waves", function () {
        const order = applyOrder([
            obj("Job", "post-upgrade", { "helm.sh/hook": "post-upgrade", "helm.sh/hook-weight": "3" }),
            obj("Job", "pre-install", { "helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "-2" }),
            obj("Job", "helm-test", { "helm.sh/hook": "test" }),
            obj("ConfigMap", "plain"),
        ]);
        assert.deepEqual(summary(order), ["PreSync/-2/Job/pre-install", "Sync/0/ConfigMap/plain", "PostSync/3/Job/post-upgrade"]);
    });

    it("prefers the Argo CD hook and sync-wave annotations over Helm's", function () {
        const order = applyOrder([obj("Job", "j", { ...hook("Sync"), ...wave("7"), "helm.sh/hook": "pre-install", "helm.sh/hook-weight": "-5" })]);
        assert.deepEqual(summary(order), ["Sync/7/Job/j"]);
    });

    it("falls back to hook-weight, then 0, for a wave that is not an integer", function () {
        const order = applyOrder([
            obj("ConfigMap", "a", { ...wave("one") }),
            obj("ConfigMap", "b", { ...wave("1.5"), "helm.sh/hook-weight": "-4" }),
            obj("ConfigMap", "c", { ...wave(" 2") }),
        ]);
        assert.deepEqual(summary(order), ["Sync/-4/ConfigMap/b", "Sync/0/ConfigMap/a", "Sync/0/ConfigMap/c"]);
    });

    it("leaves out Skip and delete-only hooks, and applies multi-phase hooks once per phase", function () {
        const order = applyOrder([
            obj("ConfigMap", "skipped", hook("Skip")),
            obj("Job", "cleanup", hook("PostDelete")),
            obj("Job", "twice", hook("PreSync, PostSync")),
        ]);
        assert.deepEqual(summary(order), ["PreSync/0/Job/twice", "PostSync/0/Job/twice"]);
    });

    it("moves a Namespace in front of the first object in it, adopting that object's wave", function () {
        const order = applyOrder([
            obj("ConfigMap", "cm", wave("-3"), { metadata: { namespace: "tenant" } }),
            obj("Namespace", "tenant", wave("5")),
        ]);
        assert.deepEqual(summary(order), ["Sync/-3/Namespace/tenant", "Sync/-3/ConfigMap/cm"]);
    });

    it("moves a CRD in front of its first custom resource", function () {
        const crd = {
            apiVersion: "apiextensions.k8s.io/v1",
            kind: "CustomResourceDefinition",
            metadata: { name: "widgets.example.io", annotations: wave("2") },
            spec: { group: "example.io", names: { kind: "Widget" } },
        };
        const widget = { apiVersion: "example.io/v1", kind: "Widget", metadata: { name: "w", annotations: wave("1") } };
        assert.deepEqual(summary(applyOrder([widget, crd])), ["Sync/1/CustomResourceDefinition/widgets.example.io", "Sync/1/Widget/w"]);
    });
});

describe("prober script", function () {
    const SCRIPT = path.join(CHART_DIR, "files", "prober.sh");

    /** Runs prober.sh against stub kubectl/curl; returns the exit status, output and annotate call. */
    function runProber(stub: { deployment: string; pods?: string[]; failingIps?: string[]; annotateError?: string }) {
        const dir = tempDir();
        try {
            const bin = path.join(dir, "bin");
            fs.mkdirSync(bin);
            fs.writeFileSync(path.join(dir, "deployment.txt"), stub.deployment);
            fs.writeFileSync(path.join(dir, "pods.txt"), (stub.pods ?? []).map((p) => `${p}\n`).join(""));
            fs.writeFileSync(path.join(dir, "failing-ips.txt"), (stub.failingIps ?? []).join("\n") + "\n");
            if (stub.annotateError) fs.writeFileSync(path.join(dir, "annotate-error.txt"), stub.annotateError);
            fs.writeFileSync(
                path.join(bin, "kubectl"),
                `#!/bin/sh
case "$*" in
  *" get deployment "*) cat "$STUB_DIR/deployment.txt" ;;
  *" get pods "*) cat "$STUB_DIR/pods.txt" ;;
  *" annotate "*)
    printf '%s\\n' "$@" > "$STUB_DIR/annotate.txt"
    if [ -f "$STUB_DIR/annotate-error.txt" ]; then cat "$STUB_DIR/annotate-error.txt" >&2; exit 1; fi ;;
  *) echo "unexpected kubectl $*" >&2; exit 2 ;;
esac
`,
                { mode: 0o755 },
            );
            fs.writeFileSync(
                path.join(bin, "curl"),
                `#!/bin/sh
for url; do :; done
ip=$(echo "$url" | sed -e 's|http://||' -e 's|:[0-9]*/.*||')
if grep -qx "$ip" "$STUB_DIR/failing-ips.txt"; then echo "curl: (22) The requested URL returned error: 503" >&2; exit 22; fi
echo "$url" >> "$STUB_DIR/probed.txt"
`,
                { mode: 0o755 },
            );
            const result = spawnSync("sh", [SCRIPT], {
                encoding: "utf8",
                env: {
                    PATH: `${bin}:${process.env.PATH}`,
                    STUB_DIR: dir,
                    NAMESPACE,
                    DEPLOYMENT: NAMES.deployment,
                    AGENT_SELECTOR: "app.kubernetes.io/component=agent",
                    PROBE_PORT: "8080",
                    PROBE_PATH: "/probe",
                    PROBE_ATTEMPTS: "2",
                    PROBE_RETRY_DELAY_SECONDS: "0",
                },
            });
            const read = (file: string) => (fs.existsSync(path.join(dir, file)) ? fs.readFileSync(path.join(dir, file), "utf8") : undefined);
            const annotateArgs = read("annotate.txt")?.trim().split("\n");
            return { status: result.status, output: result.stdout + result.stderr, annotateArgs, probed: read("probed.txt") };
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }
    // generation observed desired current updated available resourceVersion revision recordedRevision recordedResult
    const rolledOut = "4 4 2 2 2 2 rv-77 3 2 pass";
    const twoPods = ["agent-a 10.0.0.1", "agent-b 10.0.0.2"];

    it("records pass for the pod template revision once every pod of a completed rollout passes", function () {
        const run = runProber({ deployment: rolledOut, pods: twoPods });
        assert.equal(run.status, 0, run.output);
        assert.ok(run.annotateArgs, run.output);
        assert.ok(run.annotateArgs.includes("--resource-version=rv-77"));
        assert.ok(run.annotateArgs.includes("agentfleet.io/probe-revision=3"), run.annotateArgs.join(" "));
        assert.ok(!run.annotateArgs.some((a) => a.startsWith("agentfleet.io/probe-generation")));
        assert.ok(run.annotateArgs.includes("agentfleet.io/probe-result=pass"));
        assert.ok(run.annotateArgs.some((a) => a.startsWith("agentfleet.io/probe-message=2/2 pods passed")));
        assert.match(run.probed ?? "", /http:\/\/10\.0\.0\.1:8080\/probe/);
    });

    it("records fail, naming the failing pod, and still exits 0 so the CronJob stays Healthy", function () {
        const run = runProber({ deployment: rolledOut, pods: twoPods, failingIps: ["10.0.0.2"] });
        assert.equal(run.status, 0, run.output);
        assert.ok(run.annotateArgs?.includes("agentfleet.io/probe-result=fail"), run.output);
        assert.ok(run.annotateArgs?.some((a) => a.startsWith("agentfleet.io/probe-message=1/2 pods failed") && a.includes("agent-b")));
    });

    it("records nothing while the generation is still rolling out", function () {
        for (const deployment of ["4 3 2 2 2 2 rv 3 2 pass", "4 4 2 3 2 2 rv 3 2 pass", "4 4 2 2 1 1 rv 3 2 pass", "4 4 2 2 2 1 rv 3 2 pass", "4 4 2 2 2 2 rv none none none"]) {
            const run = runProber({ deployment, pods: twoPods });
            assert.equal(run.status, 0, run.output);
            assert.equal(run.annotateArgs, undefined, `${deployment}: ${run.output}`);
            assert.equal(run.probed, undefined);
        }
    });

    it("does not re-probe a revision that already passed, but re-probes one that failed", function () {
        assert.equal(runProber({ deployment: "4 4 2 2 2 2 rv 3 3 pass", pods: twoPods }).annotateArgs, undefined);
        assert.ok(runProber({ deployment: "4 4 2 2 2 2 rv 3 3 fail", pods: twoPods }).annotateArgs);
    });

    // Its own annotate bumped metadata.generation 4 -> 5 (Kubernetes deployment strategy.go); the
    // revision stayed 3, so the next run must see the pass as current and write nothing.
    it("sees its own pass as current after the write bumped metadata.generation", function () {
        const run = runProber({ deployment: "5 5 2 2 2 2 rv-78 3 3 pass", pods: twoPods });
        assert.equal(run.status, 0, run.output);
        assert.equal(run.annotateArgs, undefined, run.output);
        assert.equal(run.probed, undefined);
        assert.match(run.output, /revision 3 already passed/);
    });

    it("waits for the Deployment to exist", function () {
        const run = runProber({ deployment: "" });
        assert.equal(run.status, 0);
        assert.match(run.output, /does not exist yet/);
    });

    it("drops a verdict when the Deployment changed meanwhile, but fails when it cannot write at all", function () {
        const conflict = runProber({ deployment: rolledOut, pods: twoPods, annotateError: "Error from server (Conflict): the object has been modified" });
        assert.equal(conflict.status, 0, conflict.output);
        const forbidden = runProber({ deployment: rolledOut, pods: twoPods, annotateError: "Error from server (Forbidden): cannot patch" });
        assert.equal(forbidden.status, 1, forbidden.output);
    });

    describe("kubectl go-templates (evaluated by helm's Go template engine)", function () {
        /** Evaluates a files/*.gotmpl against an object, the way kubectl -o go-template-file does. */
        function evaluate(templateFile: string, object: KubeObject): string {
            const dir = tempDir();
            try {
                fs.mkdirSync(path.join(dir, "templates"));
                fs.writeFileSync(path.join(dir, "Chart.yaml"), "apiVersion: v2\nname: gotmpl\nversion: 0.0.1\n");
                fs.copyFileSync(path.join(CHART_DIR, "files", templateFile), path.join(dir, "template.gotmpl"));
                fs.writeFileSync(
                    path.join(dir, "templates", "out.yaml"),
                    // helm only emits YAML documents, so the evaluated text travels as a JSON string.
                    'evaluated: {{ tpl (.Files.Get "template.gotmpl") (merge (dict "Template" .Template) .Values.object) | toJson }}',
                );
                fs.writeFileSync(path.join(dir, "values.yaml"), JSON.stringify({ object }));
                const out = spawnSync(helmBinary(), ["template", "t", dir], { encoding: "utf8" });
                assert.equal(out.status, 0, out.stderr);
                return String(parseManifest(out.stdout)[0].evaluated).trimEnd();
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        }

        it("prints the ten deployment-state fields, defaulting missing status and annotations", function () {
            const deployment = (status: KubeObject, annotations?: KubeObject) => ({
                metadata: { generation: 4, resourceVersion: "77", ...(annotations ? { annotations } : {}) },
                spec: { replicas: 2 },
                status,
            });
            assert.equal(
                evaluate("deployment-state.gotmpl", deployment(
                    { observedGeneration: 4, replicas: 2, updatedReplicas: 2, availableReplicas: 2 },
                    { "agentfleet.io/probe-gate": "true", "deployment.kubernetes.io/revision": "3", "agentfleet.io/probe-revision": "2", "agentfleet.io/probe-result": "pass" },
                )),
                "4 4 2 2 2 2 77 3 2 pass",
            );
            assert.equal(evaluate("deployment-state.gotmpl", deployment({}, { "agentfleet.io/probe-gate": "true" })), "4 0 2 0 0 0 77 none none none");
            assert.equal(evaluate("deployment-state.gotmpl", deployment({})), "4 0 2 0 0 0 77 none none none");
        });

        it("lists running, non-terminating pods with their IPs", function () {
            const pod = (name: string, phase: string, extra: KubeObject = {}) => ({
                metadata: { name, ...extra },
                status: { phase, podIP: `10.0.0.${name.length}` },
            });
            const listing = evaluate("agent-pods.gotmpl", {
                items: [pod("a", "Running"), pod("bb", "Pending"), pod("ccc", "Running", { deletionTimestamp: "2026-01-01T00:00:00Z" }), pod("dddd", "Running")],
            });
            assert.equal(listing, "a 10.0.0.1\ndddd 10.0.0.4");
        });
    });
});
