import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { DeployConfig, RolloutStep, SyncWindow, TenantConfig } from "../stacks/config";
import { ROLLOUT_LABELS, sharedFreeformLabelKeys } from "../stacks/config";
import { AGENT_NAMESPACE_ANNOTATION, FLEET_LABEL } from "./tenant-clusters";
import { OWNED_ANNOTATIONS } from "./ownership";

export const AGENT_APP = "voice-agent";
export const ARGO_API = "argoproj.io/v1alpha1";

/**
 * The namespaced kinds the agent chart renders, and nothing else: the AppProject allows exactly
 * these (a test renders the chart for every environment and compares).
 */
export const AGENT_CHART_KINDS: Array<{ group: string; kind: string }> = [
    { group: "", kind: "ConfigMap" },
    { group: "", kind: "Service" },
    { group: "", kind: "ServiceAccount" },
    { group: "apps", kind: "Deployment" },
    { group: "batch", kind: "CronJob" },
    { group: "batch", kind: "Job" },
    { group: "networking.k8s.io", kind: "Ingress" },
    { group: "policy", kind: "PodDisruptionBudget" },
    { group: "rbac.authorization.k8s.io", kind: "Role" },
    { group: "rbac.authorization.k8s.io", kind: "RoleBinding" },
];

export interface RolloutInputs {
    /** Pulumi stack name; names the fleet and its objects. */
    fleet: string;
    /** Where the chart comes from and how it syncs. */
    deploy: DeployConfig;
    /** Tenants of the fleet (decommissioned ones are left out). */
    tenants: TenantConfig[];
    /** RollingSync steps, in order. */
    steps: RolloutStep[];
    /** AppProject sync windows. */
    syncWindows: SyncWindow[];
    /** Emergency rollout: one step over the whole fleet at 100%. */
    emergencyRollout: boolean;
    /** Notification subscription annotations for every generated Application. */
    subscriptions: Record<string, string>;
}

const label = (key: string) => `{{index .metadata.labels ${JSON.stringify(key)}}}`;

/** The steps Argo CD runs: the configured rings, or one step over everything in an emergency. */
export function effectiveSteps(inputs: Pick<RolloutInputs, "steps" | "tenants" | "emergencyRollout">): RolloutStep[] {
    if (!inputs.emergencyRollout) return inputs.steps;
    const envs = [...new Set(inputs.tenants.map((t) => t.env))].sort();
    return [{ name: "emergency", matchExpressions: [{ key: "env", operator: "In", values: envs }], maxUpdate: "100%" }];
}

/**
 * AppProject spec: only this repo, only the chart's kinds, and only the clusters scoped to this
 * project (their cluster Secret's `project`), each in its own Secret's `namespaces`. Argo CD adds
 * every project-scoped cluster to the project's destinations with those namespaces
 * (util/argo GetAppProjectByName), so the spec lists no destination and stays the same at any
 * fleet size; `permitOnlyProjectScopedClusters` refuses any other cluster (the hub's in-cluster
 * included) even if a destination pattern is ever added. docs/rollout.md has the reasoning.
 */
export function appProjectSpec(inputs: Pick<RolloutInputs, "deploy" | "syncWindows">): Record<string, unknown> {
    return {
        sourceRepos: [inputs.deploy.repoURL],
        destinations: [],
        permitOnlyProjectScopedClusters: true,
        clusterResourceWhitelist: [],
        namespaceResourceWhitelist: AGENT_CHART_KINDS.map(({ group, kind }) => ({ group, kind })),
        syncWindows: inputs.syncWindows.map((w) => ({ kind: w.kind, schedule: w.schedule, duration: w.duration, applications: ["*"], manualSync: w.manualSync, ...(w.timeZone ? { timeZone: w.timeZone } : {}) })),
    };
}

/** ApplicationSet spec: a RollingSync over the fleet's cluster Secrets. */
export function applicationSetSpec(inputs: RolloutInputs): Record<string, unknown> {
    // Steps match Application labels, so the template must carry every key they may use.
    const labelKeys = [...ROLLOUT_LABELS, ...sharedFreeformLabelKeys(inputs.tenants)];
    const labels = Object.fromEntries(labelKeys.map((k) => [k, label(k)]));
    return {
        goTemplate: true,
        goTemplateOptions: ["missingkey=error"],
        generators: [{ clusters: { selector: { matchLabels: { "argocd.argoproj.io/secret-type": "cluster", [FLEET_LABEL]: inputs.fleet } } } }],
        strategy: {
            type: "RollingSync",
            deletionOrder: "Reverse",
            rollingSync: {
                steps: effectiveSteps(inputs).map((s) => ({
                    matchExpressions: s.matchExpressions.map((e) => ({ key: e.key, operator: e.operator, values: [...e.values] })),
                    ...(s.maxUpdate !== undefined ? { maxUpdate: s.maxUpdate } : {}),
                })),
            },
        },
        syncPolicy: {
            applicationsSync: inputs.deploy.applicationsSync,
            // Deleting the ApplicationSet (or an Application) must never delete the tenants' workloads.
            preserveResourcesOnDeletion: true,
        },
        template: {
            metadata: {
                name: `${AGENT_APP}-{{.name}}`,
                labels: { ...labels, "app.kubernetes.io/part-of": "agentfleet" },
                annotations: { ...inputs.subscriptions },
            },
            spec: {
                project: projectName(inputs.fleet),
                source: {
                    repoURL: inputs.deploy.repoURL,
                    targetRevision: inputs.deploy.targetRevision,
                    path: inputs.deploy.chartPath,
                    helm: {
                        releaseName: AGENT_APP,
                        valueFiles: ["values.yaml", `values-${label("env")}.yaml`, "tenants/{{.name}}.yaml"],
                        ignoreMissingValueFiles: true,
                        valuesObject: {
                            fleet: { tenant: "{{.name}}", env: label("env"), ring: label("ring"), region: label("region") },
                            // The stack's agent settings win over the chart's value files.
                            ...(inputs.deploy.agentBaseDomain ? { ingress: { baseDomain: inputs.deploy.agentBaseDomain } } : {}),
                            ...(inputs.deploy.agentImage ? { image: { ...inputs.deploy.agentImage } } : {}),
                        },
                    },
                },
                destination: { server: "{{.server}}", namespace: `{{index .metadata.annotations ${JSON.stringify(AGENT_NAMESPACE_ANNOTATION)}}}` },
                syncPolicy: {
                    // RollingSync turns autosync off and syncs step by step; it reads `prune` from here.
                    automated: { prune: inputs.deploy.prune, selfHeal: false },
                    retry: { limit: 5, backoff: { duration: "30s", factor: 2, maxDuration: "10m" } },
                    syncOptions: ["PruneLast=true", "FailOnSharedResource=true", "CreateNamespace=false"],
                },
            },
        },
    };
}

export const projectName = (fleet: string) => `${AGENT_APP}-${fleet}`;

export interface FleetRolloutArgs extends RolloutInputs {
    /** Namespace Argo CD runs in on the hub. */
    argocdNamespace: pulumi.Input<string>;
    /** Protect the AppProject and ApplicationSet from deletion (prod). */
    protect: boolean;
    /** Provider of the hub cluster. */
    provider: k8s.Provider;
    /** What the AppProject and ApplicationSet wait for: Argo CD's CRDs (their kinds) and its release (the controllers). */
    argocd: pulumi.Resource[];
}

/** The fleet's AppProject and RollingSync ApplicationSet on the hub. */
export class FleetRollout extends pulumi.ComponentResource {
    public readonly applicationSet: k8s.apiextensions.CustomResource;
    public readonly project: k8s.apiextensions.CustomResource;

    constructor(name: string, args: FleetRolloutArgs, opts?: pulumi.ComponentResourceOptions) {
        super("agentfleet:index:FleetRollout", name, {}, { ...opts, providers: [args.provider] });
        // Replacing or deleting these through Pulumi would delete every generated Application.
        const guard = { parent: this, protect: args.protect, retainOnDelete: args.protect };

        this.project = new k8s.apiextensions.CustomResource(
            `${name}-project`,
            { apiVersion: ARGO_API, kind: "AppProject", metadata: { name: projectName(args.fleet), namespace: args.argocdNamespace, annotations: { ...OWNED_ANNOTATIONS } }, spec: appProjectSpec(args) },
            { ...guard, dependsOn: args.argocd },
        );
        this.applicationSet = new k8s.apiextensions.CustomResource(
            `${name}-applicationset`,
            { apiVersion: ARGO_API, kind: "ApplicationSet", metadata: { name: AGENT_APP, namespace: args.argocdNamespace, annotations: { ...OWNED_ANNOTATIONS } }, spec: applicationSetSpec(args) },
            { ...guard, dependsOn: [...args.argocd, this.project] },
        );
        this.registerOutputs({ applicationSet: this.applicationSet.metadata.name, project: this.project.metadata.name });
    }
}
