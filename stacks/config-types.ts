/**
 * What a validated stack configuration is: the types the program and the commands use, the
 * project's constants and defaults, and the error every configuration problem ends in.
 */
import type * as pulumi from "@pulumi/pulumi";

export const PROJECT = "agentfleet";

/** Label keys every generated Application carries; RollingSync steps may match only these. */
export const ROLLOUT_LABELS = ["env", "ring", "region", "tenant"] as const;

/** Argo CD releases with the RollingSync tight-loop fix (#27577): v3.4.7+, v3.5.1+, 3.6+. */
export const DEFAULT_ARGOCD_VERSION = "v3.6.2";
/**
 * The files of Argo CD's CRDs in argo-cd's `manifests/crds/`. The hub applies them at `argocdVersion`
 * itself: the chart's own are its appVersion's, and the API server prunes fields a CRD lacks.
 */
export const ARGOCD_CRD_FILES = ["application-crd.yaml", "applicationset-crd.yaml", "appproject-crd.yaml"] as const;
/** Where the CRDs of an Argo CD release are, unless hub.crdsSource says otherwise: the release tag's files on GitHub. */
export const argoCdCrdsUrl = (version: string) => `https://raw.githubusercontent.com/argoproj/argo-cd/${version}/manifests/crds`;
/** argo-helm argo-cd chart; its own appVersion is overridden by `argocdVersion`. */
export const DEFAULT_CHART_VERSION = "10.1.1";
/** Where the argo-cd chart comes from unless hub.chartRepository says otherwise. */
export const ARGO_HELM_REPO = "https://argoproj.github.io/argo-helm";
export const DEFAULT_AGENT_NAMESPACE = "voice-agent";
export const DEFAULT_CHART_PATH = "charts/voice-agent";

export type CredentialMode = "bootstrap" | "token";
/**
 * applicationsSync policies that keep RollingSync working: the ApplicationSet controller writes an
 * existing Application (a new targetRevision, the sync operation of a step) only when the policy
 * allows update. `create-only` and `create-delete` do not, so they are refused.
 */
export type ApplicationsSyncPolicy = "create-update" | "sync";
export const APPLICATIONS_SYNC_POLICIES: ApplicationsSyncPolicy[] = ["create-update", "sync"];

/** Chart 10.1.1's redis-ha and its HAProxy: 3 replicas each under required pod anti-affinity. */
export const HA_MIN_HUB_NODES = 3;
/** Default controller sync timeout, only for stacks without sync windows (see validateConfig). */
export const DEFAULT_SYNC_TIMEOUT = "1h";

/**
 * Git hosts whose push webhook Argo CD checks with a shared secret (argocd-secret's
 * `webhook.<host>.secret`; Azure DevOps: basic auth). Bitbucket Cloud is not one: it sends no
 * secret, and Argo CD checks its account UUID instead.
 */
export const GIT_WEBHOOK_PROVIDERS = ["github", "gitlab", "bitbucketserver", "gogs", "azuredevops"] as const;
export type GitWebhookProvider = (typeof GIT_WEBHOOK_PROVIDERS)[number];

export interface HubConfig {
    /**
     * The hub cluster's API server URL. The hub's kubeconfig is not configuration (a provider input
     * is stored in state): each run reads it from KUBECONFIG, which must point at this server.
     */
    server: string;
    /** The KUBECONFIG context naming the hub; unset: the kubeconfig's current context. */
    context?: string;
    /** Host name Argo CD is served on; also the default notification link base. */
    domain: string;
    /** Namespace Argo CD is installed into. */
    namespace: string;
    /** argo-helm argo-cd chart version, pinned. */
    chartVersion: string;
    /**
     * Where the argo-cd chart comes from: an https Helm repository, an oci:// registry, or a local
     * chart folder (air-gapped hubs; resolved against the project folder).
     */
    chartRepository: string;
    /** Tenant API servers may be loopback addresses: only for fleets on the hub's own host (tests, local clusters). */
    loopbackTenants: boolean;
    /** Argo CD image tag, pinned (overrides the chart's appVersion). */
    argocdVersion: string;
    /**
     * Where Argo CD's CRDs of `argocdVersion` come from (ARGOCD_CRD_FILES in it): an https URL prefix
     * (default: the release tag's manifests/crds on GitHub) or an absolute local folder (air-gapped hubs).
     * The Kubernetes provider reads them at `pulumi up`, not the program.
     */
    crdsSource: string;
    /** Highly available install (redis-ha, replicated server/repo-server/applicationset). */
    ha: boolean;
    /** Application controller shards; derived from the fleet size unless set. */
    controllerShards: number;
    /** Schedulable nodes of the hub cluster (HA needs HA_MIN_HUB_NODES). */
    nodes: number;
    /** Controller sync timeout in seconds; 0 = none (always 0 when the stack has sync windows). */
    syncTimeoutSeconds: number;
    /** The git host whose push webhook makes Argo CD refresh at once, with a generated shared secret; unset: Argo CD polls (every 3 minutes). */
    gitWebhook?: { provider: GitWebhookProvider };
}

export interface TenantConfig {
    /** Tenant name: a DNS label, unique in the stack. */
    name: string;
    /** Kubernetes API server URL, as the hub reaches it (https, never loopback). */
    server: string;
    /** Environment label (defaults to the stack's environment). */
    env: string;
    /** Rollout ring label. */
    ring: string;
    /** Region label. */
    region: string;
    /** Further labels on the cluster Secret (free-form). */
    labels: Record<string, string>;
    /** Namespaces the agent is deployed into; the first receives the agent Application. */
    namespaces: string[];
    /** Pause reconciliation of every app on this tenant (argocd.argoproj.io/skip-reconcile). */
    paused: boolean;
    /** How its token and CA were obtained: by `npm run tenant -- bootstrap` (its own onboarding stack), or pre-issued. */
    credentials: CredentialMode;
    /** The cluster is gone for good: it leaves the rollout and the hub, and needs no credential. */
    decommissioned: boolean;
}

export interface MatchExpression {
    key: string;
    operator: "In" | "NotIn";
    values: string[];
}

export interface RolloutStep {
    /** Human name of the step (plan output). */
    name: string;
    matchExpressions: MatchExpression[];
    /** Integer or percentage string; undefined means 100%. 0 / "0%" is a manual gate. */
    maxUpdate?: number | string;
}

export interface SyncWindow {
    kind: "allow" | "deny";
    schedule: string;
    duration: string;
    manualSync: boolean;
    timeZone?: string;
}

export interface DeployConfig {
    /** Git repository holding the agent chart (this repository). */
    repoURL: string;
    /** Git revision of the chart this stack runs: promotion is a change of this value. */
    targetRevision: string;
    /** Path of the chart in the repository. */
    chartPath: string;
    /** Prune resources removed from the chart. */
    prune: boolean;
    /** ApplicationSet applicationsSync policy. */
    applicationsSync: ApplicationsSyncPolicy;
    /** Public host of each tenant's agent is `<tenant>.<agentBaseDomain>` (unset: the chart's values-<env>.yaml). */
    agentBaseDomain?: string;
    /** The agent image, pinned by digest (unset: the chart's default). */
    agentImage?: { repository: string; tag: string; digest: string };
}

export interface NotificationsConfig {
    /** Base URL of the Argo CD UI used in notification links. */
    argocdUrl: string;
    /** Slack channels to notify (empty: no Slack notifier). */
    slackChannels: string[];
    /** Generic webhook URL (undefined: no webhook notifier). */
    webhookUrl?: string;
}

export interface NotificationSecrets {
    slackToken?: string;
    webhookToken?: string;
}

/** The gate a revision passes before this stack may run it: healthy on the `from` stack's fleet for `soakSeconds`. */
export interface PromotionConfig {
    /** The stack (stage) a revision is promoted from, e.g. staging for prod. */
    from: string;
    /** How long every tenant of `from` must have run the revision Synced and Healthy, as written (e.g. 2h). */
    soak: string;
    /** The same in seconds. */
    soakSeconds: number;
}

export interface FleetConfig {
    /** Pulumi stack name. */
    stack: string;
    environment: string;
    hub: HubConfig;
    deploy: DeployConfig;
    tenants: TenantConfig[];
    steps: RolloutStep[];
    syncWindows: SyncWindow[];
    /** Roll everything out in one step (emergency rollback). */
    emergencyRollout: boolean;
    notifications: NotificationsConfig;
    /** Protect the rollout objects against deletion (prod). */
    protectRollout: boolean;
    /** The soak gate `npm run promote` checks before this stack's targetRevision moves; none when unset. */
    promotion?: PromotionConfig;
    notificationSecrets: pulumi.Output<NotificationSecrets>;
}

/** Thrown when the stack configuration is invalid; `problems` holds one line per problem. */
export class ConfigError extends Error {
    constructor(public readonly problems: string[]) {
        super(`Invalid agentfleet stack configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` + problems.map((p) => `  - ${p}`).join("\n"));
        this.name = "ConfigError";
    }
}

/** Every key the project reads, with whether it holds secrets. */
export const CONFIG_KEYS: Record<string, { secret: boolean; required: boolean }> = {
    environment: { secret: false, required: true },
    hub: { secret: false, required: true },
    deploy: { secret: false, required: true },
    // Optional: the tenant inventory folder, one file per tenant (default fleet/<stack>).
    fleet: { secret: false, required: false },
    rollout: { secret: false, required: true },
    emergencyRollout: { secret: false, required: false },
    // Optional: without it Argo CD sends no notifications (docs/configuration.md).
    notifications: { secret: false, required: false },
    notificationSecrets: { secret: true, required: true },
    // Optional: without it `npm run promote` has no gate to check for this stack.
    promotion: { secret: false, required: false },
};
