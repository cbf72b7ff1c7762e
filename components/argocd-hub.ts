import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ARGOCD_CRD_FILES, type GitWebhookProvider, type HubConfig, type NotificationSecrets, type NotificationsConfig } from "../stacks/config";
import { SECRET_KEYS, notificationValues } from "../stacks/notifications";
import { OWNED_ANNOTATIONS } from "./ownership";

/** The argo-cd chart's values key that really enables progressive syncs (never the top-level key). */
export const PROGRESSIVE_SYNCS_PARAM = "applicationsetcontroller.enable.progressive.syncs";
/**
 * Secret the chart's Redis reads its password from. The chart's own pre-install hook
 * (redisSecretInit) generates it inside the hub, so the password never enters Pulumi's state.
 */
export const REDIS_SECRET = "argocd-redis";
export const NOTIFICATIONS_SECRET = "argocd-notifications-secret";
/**
 * Secret holding the git webhook's shared secret (key GIT_WEBHOOK_KEY). The chart's argocd-secret
 * only references it (`$<secret>:<key>`, which Argo CD resolves in Secrets labelled part-of argocd),
 * so the value never enters the Helm values.
 */
export const GIT_WEBHOOK_SECRET = "argocd-git-webhook";
export const GIT_WEBHOOK_KEY = "secret";
/** Basic-auth user name Azure DevOps service hooks send with the generated password. */
export const AZURE_DEVOPS_WEBHOOK_USER = "argocd";
/** Where Argo CD's API server takes git push webhooks. */
export const WEBHOOK_PATH = "/api/webhook";

export interface ArgoCdHubArgs {
    /** Hub settings from the stack configuration (versions, HA, shards, domain). */
    hub: HubConfig;
    /** Notifier settings; their tokens come separately, as secrets. */
    notifications: NotificationsConfig;
    /** Notifier tokens (secret), written to argocd-notifications-secret. */
    notificationSecrets: pulumi.Input<NotificationSecrets>;
    /** argocd-cm keys carrying the custom Lua health checks. */
    healthChecks: Record<string, string>;
    /** Provider of the hub cluster. */
    provider: k8s.Provider;
}

/** The chart's `configs.secret` values that point Argo CD at the git webhook's shared secret (never the secret itself). */
export function gitWebhookValues(provider: GitWebhookProvider): Record<string, unknown> {
    const reference = `$${GIT_WEBHOOK_SECRET}:${GIT_WEBHOOK_KEY}`;
    switch (provider) {
        case "github":
            return { githubSecret: reference };
        case "gitlab":
            return { gitlabSecret: reference };
        case "bitbucketserver":
            return { bitbucketServerSecret: reference };
        case "gogs":
            return { gogsSecret: reference };
        case "azuredevops":
            return { azureDevops: { username: AZURE_DEVOPS_WEBHOOK_USER, password: reference } };
    }
}

/** argocd-cmd-params-cm: the application controller keeps each resource's health in status.resources (v3 default: off). */
export const PERSIST_RESOURCE_HEALTH_PARAM = "controller.resource.health.persist";

/** argocd-cmd-params-cm: how many entries the ApplicationSet controller keeps in an ApplicationSet's status.resources (v3.6.2 default 5000; 0 = unlimited). */
export const APPSET_STATUS_RESOURCES_PARAM = "applicationsetcontroller.status.max.resources.count";

/**
 * The hub's cap on status.resources: a sample of the Applications (sorted by name; resourcesCount
 * keeps the true count). Uncapped up to 5000, that list grows with the fleet beside
 * applicationStatus and halves how many Applications one ApplicationSet's status can hold
 * (docs/performance.md). Nothing in agentfleet reads it: status and promote read applicationStatus.
 */
export const APPSET_STATUS_RESOURCES_MAX = 100;

/** argocd-cm: the application controller watches only the resources its credential may list (v3.6.2 util/settings). */
export const RESPECT_RBAC_KEY = "resource.respectRBAC";

/** Helm values of the argo-cd chart for this hub: pure, so tests can assert on them directly. */
export function argoCdValues(hub: HubConfig, notifications: NotificationsConfig, healthChecks: Record<string, string>): Record<string, unknown> {
    const replicas = hub.ha ? 2 : 1;
    const params: Record<string, string> = {
        [PROGRESSIVE_SYNCS_PARAM]: "true",
        // Lets each ApplicationSet's own applicationsSync policy take effect (argocd.md §3).
        "applicationsetcontroller.enable.policy.override": "true",
        // Each resource's health message in the Application itself (v3 keeps it only in Redis by
        // default, and the Application says just "Caused by apps/Deployment:…"): status and promote
        // read why a tenant is Degraded, e.g. the probe gate's verdict, from the Kubernetes API.
        [PERSIST_RESOURCE_HEALTH_PARAM]: "true",
        // The fleet's ApplicationSet status must fit one etcd request (APPLICATIONSET_CEILING).
        [APPSET_STATUS_RESOURCES_PARAM]: String(APPSET_STATUS_RESOURCES_MAX),
    };
    // A sync that waits on a resource forever (e.g. health Unknown) fails instead. Never with sync
    // windows: a blocked sync stays Running until the window ends, and a timeout would terminate it
    // for good (RollingSync does not retry), halting the rollout. The loader enforces this.
    if (hub.syncTimeoutSeconds > 0) params["controller.sync.timeout.seconds"] = String(hub.syncTimeoutSeconds);
    if (hub.controllerShards > 1) params["controller.sharding.algorithm"] = "round-robin";
    return {
        global: { domain: hub.domain, image: { tag: hub.argocdVersion } },
        // The hub applies the CRDs of argocdVersion itself (ArgoCdHub.crds): the chart's are its appVersion's.
        // keep: a hub upgraded from the chart's CRDs keeps them (and every Application) when Helm drops them.
        crds: { install: false, keep: true },
        configs: {
            params,
            // With a token whose rights stop short of some kind in the agent namespaces (a tenant's own
            // pre-issued token; a hardened cluster), the cluster cache skips what it may not list instead
            // of failing for the whole tenant (gitops-engine aborts on one 403; found on real Argo CD).
            cm: { create: true, [RESPECT_RBAC_KEY]: "normal", ...healthChecks },
            ...(hub.gitWebhook ? { secret: gitWebhookValues(hub.gitWebhook.provider) } : {}),
        },
        redisSecretInit: { enabled: true },
        redis: { enabled: !hub.ha },
        "redis-ha": hub.ha ? { enabled: true, auth: true, existingSecret: REDIS_SECRET, authKey: "auth" } : { enabled: false },
        controller: { replicas: hub.controllerShards },
        server: { replicas },
        repoServer: { replicas },
        applicationSet: { replicas },
        notifications: notificationValues(notifications),
    };
}

/** The manifests of Argo CD's CRDs the Kubernetes provider reads: one per file, under an https URL prefix or a local folder. */
export function argoCdCrdFiles(source: string): string[] {
    return ARGOCD_CRD_FILES.map((file) => `${source}/${file}`);
}

const CRD_TYPE = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition";

/**
 * Transform of the CRDs' ConfigGroup: agentfleet owns the CRDs outright (OWNED_ANNOTATIONS, i.e.
 * patchForce). On a hub whose CRDs the chart installed, Helm's field manager owns their schemas,
 * and a plain server-side apply of newer ones fails with a field conflict (found on the real
 * engines); forcing takes the fields over in place, keeping the CRD and every Application. Other
 * resources (the ConfigGroup itself) pass unchanged.
 */
export function forceCrdApply(args: pulumi.ResourceTransformArgs): pulumi.ResourceTransformResult | undefined {
    if (args.type !== CRD_TYPE) return undefined;
    const metadata = (args.props.metadata ?? {}) as Record<string, any>;
    return { props: { ...args.props, metadata: { ...metadata, annotations: { ...(metadata.annotations ?? {}), ...OWNED_ANNOTATIONS } } }, opts: args.opts };
}

/** The Release's chart arguments for an https repository, an oci:// registry, or a local chart folder. */
export function chartSource(repository: string): { chart: string; repositoryOpts?: { repo: string } } {
    if (repository.startsWith("https://")) return { chart: "argo-cd", repositoryOpts: { repo: repository } };
    if (repository.startsWith("oci://")) return { chart: `${repository.replace(/\/$/, "")}/argo-cd` };
    return { chart: repository };
}

/** Data of argocd-notifications-secret: only the tokens the configured notifiers reference. */
export function notificationSecretData(secrets: NotificationSecrets): Record<string, string> {
    const data: Record<string, string> = {};
    if (secrets.slackToken) data[SECRET_KEYS.slackToken] = secrets.slackToken;
    if (secrets.webhookToken) data[SECRET_KEYS.webhookToken] = secrets.webhookToken;
    return data;
}

/**
 * Argo CD on the hub: its namespace, the notifications Secret, the git webhook's generated shared
 * secret when the stack asks for one, Argo CD's CRDs of the pinned version, and the pinned argo-cd
 * chart with progressive syncs enabled. Custom resources of Argo CD's kinds depend on `crds` (their
 * kinds) and `release` (the controllers that act on them).
 */
export class ArgoCdHub extends pulumi.ComponentResource {
    public readonly namespace: pulumi.Output<string>;
    /**
     * Argo CD's CRDs of `hub.argocdVersion`, read by the Kubernetes provider from `hub.crdsSource`
     * and applied server-side (the ApplicationSet CRD is too big for a last-applied annotation).
     */
    public readonly crds: k8s.yaml.v2.ConfigGroup;
    public readonly release: k8s.helm.v3.Release;
    public readonly argocdUrl: string;
    /** The git webhook's shared secret (secret), for the repository's webhook setting; undefined unless hub.gitWebhook is set. */
    public readonly gitWebhookSecret?: pulumi.Output<string>;

    constructor(name: string, args: ArgoCdHubArgs, opts?: pulumi.ComponentResourceOptions) {
        super("agentfleet:index:ArgoCdHub", name, {}, { ...opts, providers: [args.provider] });
        const child = { parent: this };

        const namespace = new k8s.core.v1.Namespace(`${name}-namespace`, { metadata: { name: args.hub.namespace } }, child);
        this.namespace = namespace.metadata.name;

        const notificationsSecret = new k8s.core.v1.Secret(
            `${name}-notifications-secret`,
            {
                metadata: { name: NOTIFICATIONS_SECRET, namespace: this.namespace, labels: { "app.kubernetes.io/part-of": "argocd" }, annotations: { ...OWNED_ANNOTATIONS } },
                type: "Opaque",
                stringData: pulumi.secret(pulumi.output(args.notificationSecrets).apply(notificationSecretData)),
            },
            child,
        );
        const secrets: k8s.core.v1.Secret[] = [notificationsSecret];
        if (args.hub.gitWebhook) {
            // Two parties share it: Argo CD (this Secret) and the git host's webhook setting (the stack output).
            const password = new random.RandomPassword(`${name}-git-webhook`, { length: 40, special: false }, child);
            this.gitWebhookSecret = pulumi.secret(password.result);
            secrets.push(
                new k8s.core.v1.Secret(
                    `${name}-git-webhook`,
                    {
                        metadata: { name: GIT_WEBHOOK_SECRET, namespace: this.namespace, labels: { "app.kubernetes.io/part-of": "argocd" }, annotations: { ...OWNED_ANNOTATIONS } },
                        type: "Opaque",
                        stringData: pulumi.secret(this.gitWebhookSecret.apply((value) => ({ [GIT_WEBHOOK_KEY]: value }))),
                    },
                    child,
                ),
            );
        }

        // Never deleted by Pulumi (retainOnDelete reaches the CRDs): deleting a CRD deletes every Application.
        this.crds = new k8s.yaml.v2.ConfigGroup(`${name}-crds`, { files: argoCdCrdFiles(args.hub.crdsSource) }, { ...child, retainOnDelete: true, transforms: [forceCrdApply] });

        this.release = new k8s.helm.v3.Release(
            `${name}-argo-cd`,
            {
                name: "argo-cd",
                ...chartSource(args.hub.chartRepository),
                version: args.hub.chartVersion,
                namespace: this.namespace,
                createNamespace: false,
                values: argoCdValues(args.hub, args.notifications, args.healthChecks),
                cleanupOnFail: true,
                maxHistory: 10,
                timeout: 900,
            },
            // The controllers start with their kinds already defined.
            { ...child, dependsOn: [...secrets, this.crds] },
        );
        this.argocdUrl = args.notifications.argocdUrl;

        this.registerOutputs({ namespace: this.namespace, release: this.release.status, argocdUrl: this.argocdUrl, gitWebhookSecret: this.gitWebhookSecret });
    }
}
