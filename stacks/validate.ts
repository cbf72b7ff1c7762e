/**
 * Validates the whole plain configuration of a stack (and the shape of its secrets, never their
 * values) before any resource is declared, and returns it typed.
 */
import * as fs from "fs";
import * as path from "path";
import { PROJECT_DIR, chartEnvironments, isTimeZone } from "./chart-environments";
import {
    APPLICATIONS_SYNC_POLICIES,
    ARGOCD_CRD_FILES,
    ARGO_HELM_REPO,
    type ApplicationsSyncPolicy,
    CONFIG_KEYS,
    ConfigError,
    type CredentialMode,
    DEFAULT_AGENT_NAMESPACE,
    DEFAULT_ARGOCD_VERSION,
    DEFAULT_CHART_PATH,
    DEFAULT_CHART_VERSION,
    DEFAULT_SYNC_TIMEOUT,
    type DeployConfig,
    type FleetConfig,
    GIT_WEBHOOK_PROVIDERS,
    type GitWebhookProvider,
    HA_MIN_HUB_NODES,
    type HubConfig,
    type MatchExpression,
    PROJECT,
    type PromotionConfig,
    ROLLOUT_LABELS,
    type RolloutStep,
    type SyncWindow,
    type TenantConfig,
    argoCdCrdsUrl,
} from "./config-types";
import { DNS_LABEL, DURATION, HOSTNAME, LABEL_VALUE, Reader, SEMVER, V_TAG, describeValue, suggestion } from "./reader";
import { type Inventory, TENANT_FILE_KEYS, emptyInventoryProblem } from "./inventory";
import { APPLICATIONSET_CEILING, controllerShardsFor, durationSeconds, hasRollingSyncFix, isLoopbackHost, parseMaxUpdate, sharedFreeformLabelKeys, stepIndexes } from "./rollout-rules";

// ---------------------------------------------------------------------------------------------
// The configuration as a whole

/** Plain (non-secret) configuration values, already parsed from their JSON strings. */
export type RawConfig = Partial<Record<keyof typeof CONFIG_KEYS, unknown>>;

export interface SecretShapes {
    notificationSecrets?: string[] | "not-an-object";
}

export type Plain = Omit<FleetConfig, "notificationSecrets">;

/** The command that moves a hub stack's tenant registrations into the tenants' own stacks (docs/design/tenant-stacks.md, Q3). */
export const migrateRegistrationCommand = (stack: string): string => `npm run tenant -- migrate-registration --stack ${stack}`;

/** Keys agentfleet no longer reads, with what to do instead. */
export const RETIRED_KEYS: Record<string, (stack: string) => string> = {
    tenantCredentials: (stack) =>
        `is no longer configuration: each tenant's own stack registers it on the hub (its cluster Secret and token live in that stack's state, never in a file), so the hub stack's configuration stays the same at any fleet size. Do not run the hub stack until its tenants are moved: run \`${migrateRegistrationCommand(stack)}\` (it moves each tenant's cluster Secret from the hub stack's state into its tenant stack, changing nothing on the hub, and then removes the tenant's entry of this key) (docs/operations.md, "Tenant stacks register their tenants")`,
    tenants: (stack) =>
        `is no longer configuration: the tenant inventory is one file per tenant, fleet/${stack}/<tenant>.yaml (a stack configuration that grows per tenant outgrows what the Pulumi CLI can hand the program). Move the entries out with \`npm run tenant -- split-inventory --stack ${stack}\` (it writes one file per tenant and removes agentfleet:tenants from Pulumi.${stack}.yaml), review and commit the files (docs/operations.md, "Moving tenants to the inventory")`,
    hubKubeconfig: (stack) =>
        `is no longer configuration: as the hub provider's input it was stored in the stack's state. Move it out of Pulumi.${stack}.yaml: \`(umask 077; pulumi config get hubKubeconfig --stack ${stack} > hub-${stack}.kubeconfig)\`, set agentfleet:hub.server to the API server URL it names, then \`pulumi config rm hubKubeconfig --stack ${stack}\`; every run then reads the hub's kubeconfig from KUBECONFIG (KUBECONFIG=hub-${stack}.kubeconfig pulumi up; in CI, the secret docs/operations.md names)`,
};

/**
 * hub.gitWebhook: `{provider}`, one of the git hosts that share a secret with Argo CD. Bitbucket
 * Cloud gets its own message: it shares none (Argo CD checks its account UUID).
 */
function gitWebhookOf(r: Reader, key: string, value: unknown): { gitWebhook?: { provider: GitWebhookProvider } } {
    const raw = r.object(key, value, ["provider"]);
    const expected = `one of ${GIT_WEBHOOK_PROVIDERS.join(", ")}: the git host that sends Argo CD the push webhook`;
    if (!raw || !r.required(`${key}.provider`, raw.provider, expected)) return {};
    if (raw.provider === "bitbucket") {
        r.problem(`${key}.provider`, `bitbucket (Bitbucket Cloud) shares no secret with Argo CD (it checks the account UUID, argocd-secret's webhook.bitbucket.uuid), so there is nothing to generate; remove hub.gitWebhook, or use ${GIT_WEBHOOK_PROVIDERS.join(", ")}`);
        return {};
    }
    const provider = r.string(`${key}.provider`, raw.provider, expected, new RegExp(`^(${GIT_WEBHOOK_PROVIDERS.join("|")})$`));
    return provider ? { gitWebhook: { provider: provider as GitWebhookProvider } } : {};
}

/**
 * hub.server: the hub's API server, an https URL without credentials, query or fragment
 * (loopback is fine: the runner may reach the hub through a tunnel). Returned without a trailing slash.
 */
function hubServerOf(r: Reader, key: string, value: unknown): string {
    const text = r.string(key, value, "an https URL such as https://hub.example.net:6443");
    if (text === undefined) return "";
    let url: URL;
    try {
        url = new URL(text);
    } catch {
        r.problem(key, `is not a URL; expected https://<host>:<port>`);
        return "";
    }
    if (url.protocol !== "https:") r.problem(key, "must use https (the Kubernetes API server speaks TLS)");
    if (url.username || url.password) r.problem(key, "must not carry credentials (user:password@): the kubeconfig in KUBECONFIG holds them");
    if (url.search || url.hash) r.problem(key, "must not have a query or fragment; expected https://<host>:<port>");
    return text.replace(/\/+$/, "");
}

/**
 * hub.chartRepository: an https Helm repository or oci:// registry as given, or a local chart
 * folder that must exist now (so a typo fails before anything is touched), made absolute.
 */
function chartRepositoryOf(r: Reader, key: string, value: unknown): string {
    const text = r.string(key, value, "an https Helm repository URL, an oci:// registry, or a local chart folder", /^\S+$/);
    if (text === undefined) return ARGO_HELM_REPO;
    if (/^(https|oci):\/\//.test(text)) return text;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
        r.problem(key, `${JSON.stringify(text)}: only https:// Helm repositories, oci:// registries and local chart folders are supported`);
        return text;
    }
    const folder = path.resolve(PROJECT_DIR, text);
    if (!fs.existsSync(path.join(folder, "Chart.yaml"))) r.problem(key, `${JSON.stringify(text)} is not a chart folder (no Chart.yaml in ${folder}); give an https or oci:// repository, or the path of an unpacked argo-cd chart`);
    return folder;
}

/**
 * hub.crdsSource: where the Kubernetes provider reads Argo CD's CRDs of `argocdVersion` from: an
 * https URL prefix as given, or a local folder that must hold the three files now (so a typo fails
 * before anything is touched), made absolute. Unset: the release tag's files on GitHub.
 */
function crdsSourceOf(r: Reader, key: string, value: unknown, argocdVersion: string): string {
    const files = ARGOCD_CRD_FILES.join(", ");
    const text = r.string(key, value, `an https URL prefix or a local folder holding Argo CD's ${files}`, /^\S+$/);
    if (text === undefined) return argoCdCrdsUrl(argocdVersion);
    if (text.startsWith("https://")) return text.replace(/\/+$/, "");
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
        r.problem(key, `${JSON.stringify(text)}: only https:// URL prefixes and local folders are supported (the provider reads <prefix>/${ARGOCD_CRD_FILES[0]} and the others)`);
        return text;
    }
    const folder = path.resolve(PROJECT_DIR, text);
    const missing = ARGOCD_CRD_FILES.filter((f) => !fs.existsSync(path.join(folder, f)));
    if (missing.length > 0) {
        r.problem(key, `${JSON.stringify(text)} lacks ${missing.join(", ")} (looked in ${folder}); copy ${files} from argo-cd's manifests/crds/ at tag ${argocdVersion} there, or unset it to read them from GitHub`);
    }
    return folder;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * deploy.agentBaseDomain and deploy.agentImage, checked; also that the stack's environments have
 * a values-<env>.yaml in the chart (Argo CD would skip a missing one silently).
 */
function agentSettings(r: Reader, deployRaw: Record<string, unknown>, chartPath: string, environment: string, tenants: TenantConfig[], tenantPath: (name: string) => string): Pick<DeployConfig, "agentBaseDomain" | "agentImage"> {
    const d = `${PROJECT}:deploy`;
    const envs = chartEnvironments(chartPath);
    if (envs) {
        const valid = `the chart ${chartPath} has value files for ${envs.join(", ")}`;
        if (environment !== "invalid" && !envs.includes(environment)) r.problem(`${PROJECT}:environment`, `${JSON.stringify(environment)} has no values-${environment}.yaml in ${chartPath}${suggestion(environment, envs)}; ${valid} (add the file to the chart for a new environment)`);
        tenants.forEach((t) => {
            if (t.env !== environment && !envs.includes(t.env)) r.problem(`${tenantPath(t.name)}: env`, `${JSON.stringify(t.env)} has no values-${t.env}.yaml in ${chartPath}${suggestion(t.env, envs)}; ${valid}`);
        });
    }
    const agentBaseDomain = r.string(`${d}.agentBaseDomain`, deployRaw.agentBaseDomain, "a DNS domain such as agents.example.net (each tenant's agent is served on <tenant>.<domain>)", HOSTNAME);
    const imageRaw = r.object(`${d}.agentImage`, deployRaw.agentImage, ["repository", "tag", "digest"]);
    let agentImage: DeployConfig["agentImage"];
    if (imageRaw) {
        r.required(`${d}.agentImage.repository`, imageRaw.repository, "the image repository, e.g. ghcr.io/example-org/voice-agent");
        r.required(`${d}.agentImage.tag`, imageRaw.tag, "the image tag, e.g. 1.4.2 (kept for readability; the digest decides what runs)");
        r.required(`${d}.agentImage.digest`, imageRaw.digest, "the image digest, sha256:<64 hex digits> (`docker buildx imagetools inspect <image>:<tag>` prints it): a tag can be moved, a digest cannot");
        const repository = r.string(`${d}.agentImage.repository`, imageRaw.repository, "an image repository without tag or digest, e.g. ghcr.io/example-org/voice-agent", /^[a-z0-9]+([._/:-][a-z0-9]+)*$/);
        const tag = r.string(`${d}.agentImage.tag`, typeof imageRaw.tag === "number" ? String(imageRaw.tag) : imageRaw.tag, "an image tag other than latest", /^(?!latest$)[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/);
        const digest = r.string(`${d}.agentImage.digest`, imageRaw.digest, "a digest sha256:<64 lowercase hex digits>", DIGEST);
        if (repository && tag && digest) agentImage = { repository, tag, digest };
    }
    return { ...(agentBaseDomain ? { agentBaseDomain } : {}), ...(agentImage ? { agentImage } : {}) };
}

/**
 * Validates the whole configuration (pure: no Pulumi runtime involved) and returns the typed
 * plain part, or throws ConfigError listing every problem.
 */
export function validateConfig(stack: string, raw: RawConfig, secrets: SecretShapes, unknownKeys: string[], inventory: Inventory): Plain {
    const r = new Reader();
    const k = (key: string) => `${PROJECT}:${key}`;
    for (const key of unknownKeys.filter((key) => key in RETIRED_KEYS)) r.problem(k(key), RETIRED_KEYS[key](stack));
    for (const key of unknownKeys.filter((key) => !(key in RETIRED_KEYS))) r.problem(k(key), `unknown configuration key${suggestion(key, Object.keys(CONFIG_KEYS))}; agentfleet reads ${Object.keys(CONFIG_KEYS).join(", ")}`);
    for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
        if (spec.required && !spec.secret && (raw as Record<string, unknown>)[key] === undefined) r.problem(k(key), "is required (see docs/configuration.md)");
    }

    r.string(k("fleet"), raw.fleet, "the tenant inventory folder relative to the project root, such as fleet/prod (empty: fleet/<stack>)", /^\S*$/);
    const environment = r.string(k("environment"), raw.environment, "a DNS label such as dev, staging or prod", DNS_LABEL) ?? "invalid";

    // Hub
    const hubRaw = r.object(k("hub"), raw.hub, ["server", "context", "domain", "namespace", "chartVersion", "chartRepository", "argocdVersion", "ha", "controllerShards", "nodes", "syncTimeout", "loopbackTenants", "gitWebhook", "crdsSource"]) ?? {};
    const loopbackTenants = r.boolean(`${k("hub")}.loopbackTenants`, hubRaw.loopbackTenants) ?? false;
    const chartRepository = chartRepositoryOf(r, `${k("hub")}.chartRepository`, hubRaw.chartRepository);
    if (raw.hub !== undefined) r.required(`${k("hub")}.domain`, hubRaw.domain, "the host name Argo CD is served on");
    if (raw.hub !== undefined) r.required(`${k("hub")}.server`, hubRaw.server, "the hub cluster's API server URL, as the kubeconfig in KUBECONFIG names it, e.g. https://hub.example.net:6443");
    const hubServer = hubServerOf(r, `${k("hub")}.server`, hubRaw.server);
    const hubContext = r.string(`${k("hub")}.context`, hubRaw.context, "the name of the KUBECONFIG context of the hub (a non-empty string)", /^\S+$/);
    // The version is the image tag: "3.4.7" names no image, and the hub would sit in ImagePullBackOff.
    const argocdVersionKey = `${k("hub")}.argocdVersion`;
    const unprefixed = typeof hubRaw.argocdVersion === "string" && SEMVER.test(hubRaw.argocdVersion) && !V_TAG.test(hubRaw.argocdVersion);
    if (unprefixed) r.problem(argocdVersionKey, `${JSON.stringify(hubRaw.argocdVersion)} is not an Argo CD image tag: Argo CD's tags are v-prefixed; write v${hubRaw.argocdVersion}`);
    const argocdVersion = (unprefixed ? undefined : r.string(argocdVersionKey, hubRaw.argocdVersion, "a version such as v3.4.7 (an Argo CD release tag: v-prefixed, as its images are tagged)", V_TAG)) ?? DEFAULT_ARGOCD_VERSION;
    if (SEMVER.test(argocdVersion) && !hasRollingSyncFix(argocdVersion)) {
        r.problem(`${k("hub")}.argocdVersion`, `${argocdVersion} has the RollingSync reconcile tight loop (argo-cd #27577); use v3.4.7 or later on 3.4, v3.5.1 or later on 3.5, or 3.6+`);
    }
    const ha = r.boolean(`${k("hub")}.ha`, hubRaw.ha) ?? environment === "prod";
    const nodes = r.integer(`${k("hub")}.nodes`, hubRaw.nodes, 1, 1000) ?? 1;
    if (ha && nodes < HA_MIN_HUB_NODES && (hubRaw.nodes === undefined || Number.isInteger(hubRaw.nodes))) {
        r.problem(
            `${k("hub")}.nodes`,
            `is ${nodes}${hubRaw.nodes === undefined ? " (the default)" : ""}, but the HA hub${hubRaw.ha === undefined ? " (hub.ha defaults to true in prod)" : ""} needs at least ${HA_MIN_HUB_NODES} schedulable nodes: the argo-cd chart runs redis-ha and its HAProxy with ${HA_MIN_HUB_NODES} replicas each under required pod anti-affinity, so pulumi up would wait 15 minutes and fail. Set hub.nodes to the hub's schedulable node count if it has ${HA_MIN_HUB_NODES} or more, add nodes, or set hub.ha: false`,
        );
    }

    // Tenants: one file per tenant (stacks/inventory.ts); every problem names the file and the key.
    // A stack file that still lists its tenants has no inventory yet: the retired key says what to do.
    const unmoved = unknownKeys.includes("tenants");
    for (const problem of inventory.problems) if (!(unmoved && problem === emptyInventoryProblem(inventory.folder))) r.problems.push(problem);
    const tenantList = inventory.entries;
    const at = (file: string, key?: string) => (key === undefined ? file : `${file}: ${key}`);
    const tenants: TenantConfig[] = [];
    const fileOf = new Map<string, string>();
    const servers = new Map<string, string>();
    tenantList.forEach(({ file, name: fileName, value: item }) => {
        const p = file;
        if (item === null || typeof item !== "object" || Array.isArray(item)) {
            r.problem(p, `expected the tenant's keys ${TENANT_FILE_KEYS.join(", ")}, got ${describeValue(item)}`);
            return;
        }
        const t = item as Record<string, unknown>;
        for (const key of Object.keys(t)) {
            if (!(TENANT_FILE_KEYS as readonly string[]).includes(key)) r.problem(at(p, key), `unknown key${suggestion(key, TENANT_FILE_KEYS)}; expected one of ${TENANT_FILE_KEYS.join(", ")}`);
        }
        r.required(at(p, "server"), t.server, "the tenant's API server URL as the hub reaches it, e.g. https://acme.k3s.example.net:6443");
        r.required(at(p, "ring"), t.ring, "the rollout ring label, e.g. canary");
        r.required(at(p, "region"), t.region, "the region label, e.g. eu-west");
        r.required(at(p, "credentials"), t.credentials, "bootstrap or token");
        const name = DNS_LABEL.test(fileName) && fileName.length <= 63 ? fileName : undefined;
        if (name === undefined) r.problem(p, `the file name is the tenant's name and must be a DNS label (lowercase letters, digits and '-', at most 63 characters); rename the file`);
        else fileOf.set(name, file);
        const server = r.string(at(p, "server"), t.server, "an https URL");
        if (server !== undefined) {
            let url: URL | undefined;
            try {
                url = new URL(server);
            } catch {
                r.problem(at(p, "server"), `${JSON.stringify(server)} is not a URL; expected https://<host>:<port>`);
            }
            // Never echo a password someone put into the URL.
            const shown = JSON.stringify(server.replace(/\/\/[^@/]*@/, "//***@"));
            if (url) {
                // The server is copied into the AppProject and the Applications, which are not secret.
                if (url.username || url.password) r.problem(at(p, "server"), "must not carry credentials (user:password@): Argo CD's credential is the tenant stack's (npm run tenant -- bootstrap, or add --credentials token)");
                if (url.search || url.hash) r.problem(at(p, "server"), "must not have a query or fragment; expected https://<host>:<port>");
                if (url.protocol !== "https:") r.problem(at(p, "server"), `${shown} must use https (Argo CD talks to the tenant API server over TLS)`);
                if (isLoopbackHost(url.hostname) && !loopbackTenants) {
                    r.problem(at(p, "server"), `${shown} is a loopback address (the k3s kubeconfig default); use the address the hub reaches, and make sure the k3s serving certificate carries it as a SAN (k3s --tls-san <host>)`);
                }
                const normalized = `${url.protocol}//${url.host.toLowerCase()}${url.pathname.replace(/\/$/, "")}`;
                if (servers.has(normalized)) r.problem(at(p, "server"), `duplicate server ${shown} (also ${servers.get(normalized)}); Argo CD keys clusters by server URL, so each tenant needs its own`);
                else servers.set(normalized, file);
            }
        }
        const labelValue = "a Kubernetes label value (at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric)";
        const env = r.string(at(p, "env"), t.env, labelValue, LABEL_VALUE) ?? environment;
        const ring = r.string(at(p, "ring"), t.ring, labelValue, LABEL_VALUE);
        const region = r.string(at(p, "region"), t.region, labelValue, LABEL_VALUE);
        const labels = r.labels(at(p, "labels"), t.labels) ?? {};
        for (const reserved of ROLLOUT_LABELS) {
            if (reserved in labels) r.problem(at(p, `labels.${reserved}`), `'${reserved}' is set by agentfleet from the tenant's own fields; set ${reserved === "tenant" ? "name" : reserved} instead`);
        }
        const namespaces = r.stringList(at(p, "namespaces"), t.namespaces, "namespace names (DNS labels)", DNS_LABEL) ?? [DEFAULT_AGENT_NAMESPACE];
        if (Array.isArray(t.namespaces) && t.namespaces.length === 0) r.problem(at(p, "namespaces"), "must list at least one namespace for the agent");
        if (new Set(namespaces).size !== namespaces.length) r.problem(at(p, "namespaces"), "lists a namespace twice");
        // Written by the onboarding command: where its stack gave argocd-manager a Role. Argo CD lists in
        // every namespace of the cluster Secret, and one 403 stops its cache of the whole tenant
        // (gitops-engine pkg/cache/cluster.go), so the hub alone may drop a namespace but never add one.
        const granted = t.grantedNamespaces === undefined ? undefined : r.stringList(at(p, "grantedNamespaces"), t.grantedNamespaces, "namespace names (DNS labels)", DNS_LABEL);
        const ungranted = granted ? namespaces.filter((ns) => !granted.includes(ns)) : [];
        if (ungranted.length > 0) {
            r.problem(at(p, "namespaces"), `lists ${ungranted.map((ns) => JSON.stringify(ns)).join(", ")}, which tenant ${fileName}'s onboarding stack has not granted argocd-manager (grantedNamespaces: ${granted!.join(", ")}); Argo CD would get 403 listing there, and one 403 stops its cache of the whole tenant. Grant it first with \`npm run tenant -- bootstrap --stack ${stack} --name ${fileName} --kubeconfig <admin kubeconfig>\` (it records grantedNamespaces), then run pulumi up`);
        }
        const paused = r.boolean(at(p, "paused"), t.paused) ?? false;
        const decommissioned = r.boolean(at(p, "decommissioned"), t.decommissioned) ?? false;
        const credentials = r.string(at(p, "credentials"), t.credentials, "bootstrap or token", /^(bootstrap|token)$/) as CredentialMode | undefined;
        if (name && server && ring && region && credentials) {
            tenants.push({ name, server, env, ring, region, labels, namespaces, paused, credentials, decommissioned });
        }
    });

    // One ApplicationSet's status lists every active tenant's Application, in one etcd request.
    const activeCount = tenantList.filter((e) => (e.value as Record<string, unknown> | null)?.decommissioned !== true).length;
    if (activeCount > APPLICATIONSET_CEILING) {
        r.problem(
            inventory.folder,
            `lists ${activeCount} active tenants, more than the ${APPLICATIONSET_CEILING} one hub stack can roll out: each is an Application of the fleet's one RollingSync ApplicationSet, whose status lists every Application and must fit one etcd request (Argo CD writes it in one update; past that the API server refuses it and RollingSync stops recording progress; docs/performance.md, "The ApplicationSet ceiling"). Split the fleet across hub stacks of at most ${APPLICATIONSET_CEILING} active tenants each, e.g. one per region (sharding one hub into several ApplicationSets is not built yet)`,
        );
    }

    // Deploy source
    const deployRaw = r.object(k("deploy"), raw.deploy, ["repoURL", "targetRevision", "chartPath", "prune", "applicationsSync", "agentBaseDomain", "agentImage"]) ?? {};
    if (raw.deploy !== undefined) {
        r.required(`${k("deploy")}.repoURL`, deployRaw.repoURL, "the git URL of the repository holding the agent chart");
        r.required(`${k("deploy")}.targetRevision`, deployRaw.targetRevision, "the git revision (tag, branch or commit) of the chart this stack runs");
    }
    // A fleet on this machine (hub.loopbackTenants) may also deploy from a local repository: the real-Argo CD suite's.
    const repoURL = loopbackTenants
        ? (r.string(`${k("deploy")}.repoURL`, deployRaw.repoURL, "a git URL (https://..., ssh://..., git@host:org/repo.git, or file:///path with hub.loopbackTenants)", /^(https:\/\/|ssh:\/\/|git@|file:\/\/\/)\S+$/) ?? "")
        : (r.string(`${k("deploy")}.repoURL`, deployRaw.repoURL, "a git URL (https://..., ssh://... or git@host:org/repo.git)", /^(https:\/\/|ssh:\/\/|git@)\S+$/) ?? "");
    const targetRevision = r.string(`${k("deploy")}.targetRevision`, deployRaw.targetRevision, "a git revision", /^\S+$/) ?? "";
    // These are copied into the ApplicationSet's Go template: "{{" would be evaluated there.
    for (const field of ["repoURL", "targetRevision", "chartPath"]) {
        const v = deployRaw[field];
        if (typeof v === "string" && /\{\{|\}\}/.test(v)) r.problem(`${k("deploy")}.${field}`, "must not contain '{{' or '}}': it is copied into the ApplicationSet's Go template");
    }
    const chartPath = r.string(`${k("deploy")}.chartPath`, deployRaw.chartPath, "a relative path inside the repository", /^[^/\s][^\s]*$/) ?? DEFAULT_CHART_PATH;
    const prune = r.boolean(`${k("deploy")}.prune`, deployRaw.prune) ?? true;
    const applicationsSyncRaw = r.string(`${k("deploy")}.applicationsSync`, deployRaw.applicationsSync, `one of ${APPLICATIONS_SYNC_POLICIES.join(", ")}`, /^(create-only|create-update|create-delete|sync)$/);
    if (applicationsSyncRaw === "create-only" || applicationsSyncRaw === "create-delete") {
        r.problem(
            `${k("deploy")}.applicationsSync`,
            `${applicationsSyncRaw} stops the rollout: the ApplicationSet controller then never updates an existing Application, so a new deploy.targetRevision, the sync each RollingSync step starts and the emergency rollout all do nothing, with no error. Use create-update (the default) or sync`,
        );
    }
    const applicationsSync: ApplicationsSyncPolicy = applicationsSyncRaw === "sync" ? "sync" : "create-update";

    // Rollout
    const rolloutRaw = r.object(k("rollout"), raw.rollout, ["steps", "syncWindows"]) ?? {};
    if (raw.rollout !== undefined) r.required(`${k("rollout")}.steps`, rolloutRaw.steps, "the RollingSync steps, in order");
    const active = tenants.filter((t) => !t.decommissioned);
    const templateKeys = [...ROLLOUT_LABELS, ...sharedFreeformLabelKeys(active)];
    const steps: RolloutStep[] = [];
    const stepList = r.list(`${k("rollout")}.steps`, rolloutRaw.steps, "steps") ?? [];
    if (Array.isArray(rolloutRaw.steps) && stepList.length === 0) r.problem(`${k("rollout")}.steps`, "must list at least one step");
    let stepsValid = true;
    stepList.forEach((item, i) => {
        const p = `${k("rollout")}.steps[${i}]`;
        const s = r.object(p, item, ["name", "matchExpressions", "maxUpdate"]);
        if (!s) return void (stepsValid = false);
        const name = r.string(`${p}.name`, s.name, "a short name") ?? `step-${i + 1}`;
        r.required(`${p}.matchExpressions`, s.matchExpressions, "label matchers such as [{key: ring, operator: In, values: [canary]}]");
        const exprs = r.list(`${p}.matchExpressions`, s.matchExpressions, "label matchers") ?? [];
        if (Array.isArray(s.matchExpressions) && exprs.length === 0) r.problem(`${p}.matchExpressions`, "must have at least one matcher (an empty step matches nothing in Argo CD)");
        const matchExpressions: MatchExpression[] = [];
        exprs.forEach((e, j) => {
            const q = `${p}.matchExpressions[${j}]`;
            const expr = r.object(q, e, ["key", "operator", "values"]);
            if (!expr) return void (stepsValid = false);
            const key = r.string(`${q}.key`, expr.key, "a label key");
            // Without this, a matcher missing its key was dropped silently, widening the step.
            if (expr.key === undefined) r.problem(`${q}.key`, `is required: the label to match, one of ${templateKeys.join(", ")}`);
            if (key !== undefined && !templateKeys.includes(key)) {
                r.problem(`${q}.key`, `${JSON.stringify(key)} is not a label the generated Applications carry${suggestion(key, templateKeys)}; steps can match ${templateKeys.join(", ")} (free-form labels only when every tenant sets them)`);
            }
            if (expr.operator === undefined) r.problem(`${q}.operator`, "is required: In or NotIn");
            else if (expr.operator !== "In" && expr.operator !== "NotIn") {
                r.problem(`${q}.operator`, `${describeValue(expr.operator)} is not supported by RollingSync; use In or NotIn (other operators make the step invalid)`);
            }
            const values = r.stringList(`${q}.values`, expr.values, "label values");
            if (expr.values === undefined) r.problem(`${q}.values`, "is required: the label values to match");
            else if (Array.isArray(expr.values) && expr.values.length === 0) r.problem(`${q}.values`, "must list at least one value");
            if (key && (expr.operator === "In" || expr.operator === "NotIn") && values && values.length > 0) matchExpressions.push({ key, operator: expr.operator, values });
            else stepsValid = false;
        });
        let maxUpdate: number | string | undefined;
        if (s.maxUpdate !== undefined) {
            const parsed = parseMaxUpdate(s.maxUpdate);
            if (parsed.ok) maxUpdate = parsed.value;
            else r.problem(`${p}.maxUpdate`, `${parsed.reason}; expected a whole number of apps (0 = manual gate) or a percentage from "0%" to "100%"`);
        }
        steps.push({ name, matchExpressions, ...(maxUpdate !== undefined ? { maxUpdate } : {}) });
    });

    // Coverage: every tenant in exactly one step, every step matching some tenant.
    if (stepsValid && steps.length > 0 && tenants.length === tenantList.length) {
        const matches = stepIndexes(tenants, steps).map((m, i) => (tenants[i].decommissioned ? [] : m));
        const ringsInSteps = [...new Set(steps.flatMap((s) => s.matchExpressions.filter((e) => e.key === "ring" && e.operator === "In").flatMap((e) => e.values)))];
        tenants.forEach((t, i) => {
            const p = fileOf.get(t.name)!;
            if (t.decommissioned) return;
            if (matches[i].length === 0) {
                const hint = ringsInSteps.length > 0 && !ringsInSteps.includes(t.ring) ? `; ring ${JSON.stringify(t.ring)} is not one the steps use (${ringsInSteps.join(", ")})${suggestion(t.ring, ringsInSteps)}` : "";
                r.problem(p, `tenant ${t.name} matches no rollout step, so Argo CD would never sync it${hint}`);
            } else if (matches[i].length > 1) {
                r.problem(p, `tenant ${t.name} matches rollout steps ${matches[i].map((s) => `${s + 1} (${steps[s].name})`).join(" and ")}; each tenant must match exactly one step`);
            }
        });
        steps.forEach((s, i) => {
            if (!matches.some((m) => m.includes(i))) r.problem(`${k("rollout")}.steps[${i}]`, `step ${JSON.stringify(s.name)} matches no tenant; remove it or fix its matchExpressions`);
        });
    }

    const syncWindows: SyncWindow[] = [];
    (r.list(`${k("rollout")}.syncWindows`, rolloutRaw.syncWindows, "sync windows") ?? []).forEach((item, i) => {
        const p = `${k("rollout")}.syncWindows[${i}]`;
        const w = r.object(p, item, ["kind", "schedule", "duration", "manualSync", "timeZone"]);
        if (!w) return;
        r.required(`${p}.kind`, w.kind, "allow or deny");
        r.required(`${p}.schedule`, w.schedule, "a cron schedule such as '0 22 * * *'");
        r.required(`${p}.duration`, w.duration, "a duration such as 10h");
        const kind = r.string(`${p}.kind`, w.kind, "allow or deny", /^(allow|deny)$/) as "allow" | "deny" | undefined;
        const schedule = r.string(`${p}.schedule`, w.schedule, "a five-field cron schedule", /^(\S+\s+){4}\S+$/);
        const duration = r.string(`${p}.duration`, w.duration, "a duration such as 1h30m", DURATION);
        if (duration === "") r.problem(`${p}.duration`, "must not be empty");
        const manualSync = r.boolean(`${p}.manualSync`, w.manualSync) ?? true;
        const timeZone = r.string(`${p}.timeZone`, w.timeZone, "an IANA time zone such as Europe/Berlin");
        if (timeZone !== undefined && !isTimeZone(timeZone)) r.problem(`${p}.timeZone`, `${JSON.stringify(timeZone)} is not an IANA time zone${suggestion(timeZone, Intl.supportedValuesOf("timeZone"))}; use a name such as Europe/Berlin or UTC (case matters)`);
        if (kind && schedule && duration) syncWindows.push({ kind, schedule, duration, manualSync, ...(timeZone ? { timeZone } : {}) });
    });

    // A sync a window blocks stays Running; the controller's sync timeout would terminate it, and
    // RollingSync never retries a terminated sync, so the rollout would halt. With windows: no timeout.
    const syncTimeoutRaw = r.string(`${k("hub")}.syncTimeout`, hubRaw.syncTimeout, "a duration such as 1h or 90m", DURATION);
    if (syncTimeoutRaw === "") r.problem(`${k("hub")}.syncTimeout`, "must not be empty");
    if (syncTimeoutRaw && durationSeconds(syncTimeoutRaw) > 0 && Array.isArray(rolloutRaw.syncWindows) && rolloutRaw.syncWindows.length > 0) {
        r.problem(
            `${k("hub")}.syncTimeout`,
            `cannot be combined with agentfleet:rollout.syncWindows: RollingSync starts automated syncs, a window blocks them and they stay Running, and the controller's sync timeout (controller.sync.timeout.seconds) terminates them; a terminated sync is never retried and later steps never start. Remove hub.syncTimeout (Argo CD then has no sync timeout), or remove the sync windows`,
        );
    }
    const syncTimeoutSeconds = syncWindows.length > 0 || (Array.isArray(rolloutRaw.syncWindows) && rolloutRaw.syncWindows.length > 0) ? 0 : durationSeconds(syncTimeoutRaw || DEFAULT_SYNC_TIMEOUT);

    const emergencyRollout = r.boolean(k("emergencyRollout"), raw.emergencyRollout) ?? false;
    const promotion = promotionOf(r, stack, k("promotion"), raw.promotion);

    // Notifications
    const notifRaw = r.object(k("notifications"), raw.notifications, ["argocdUrl", "slack", "webhook"]) ?? {};
    const hubDomain = r.string(`${k("hub")}.domain`, hubRaw.domain, "a host name such as argocd.example.net", HOSTNAME) ?? "";
    const argocdUrl = r.string(`${k("notifications")}.argocdUrl`, notifRaw.argocdUrl, "an https URL", /^https:\/\/\S+$/) ?? `https://${hubDomain}`;
    const slackRaw = r.object(`${k("notifications")}.slack`, notifRaw.slack, ["channels"]);
    const slackChannels = slackRaw ? r.stringList(`${k("notifications")}.slack.channels`, slackRaw.channels, "Slack channel names", /^[a-z0-9][a-z0-9_-]{0,79}$/) ?? [] : [];
    if (slackRaw && (!Array.isArray(slackRaw.channels) || slackRaw.channels.length === 0)) r.problem(`${k("notifications")}.slack.channels`, "must list at least one Slack channel");
    const webhookRaw = r.object(`${k("notifications")}.webhook`, notifRaw.webhook, ["url"]);
    const webhookUrl = webhookRaw ? r.string(`${k("notifications")}.webhook.url`, webhookRaw.url, "an https URL", /^https:\/\/\S+$/) : undefined;
    if (webhookRaw) r.required(`${k("notifications")}.webhook.url`, webhookRaw.url, "the https URL notifications are posted to");
    const notifSecrets = secrets.notificationSecrets;
    if (notifSecrets === "not-an-object") r.problem(k("notificationSecrets"), "expected an object with slackToken and/or webhookToken");
    const haveSecrets = Array.isArray(notifSecrets) ? notifSecrets : [];
    for (const f of haveSecrets) if (!["slackToken", "webhookToken"].includes(f)) r.problem(`${k("notificationSecrets")}.${f}`, `unknown key${suggestion(f, ["slackToken", "webhookToken"])}; expected slackToken or webhookToken`);
    if (slackChannels.length > 0 && !haveSecrets.includes("slackToken")) r.problem(`${k("notificationSecrets")}.slackToken`, "is required when notifications.slack is set: `pulumi config set --secret --path notificationSecrets.slackToken xoxb-...`");
    if (webhookUrl && !haveSecrets.includes("webhookToken")) r.problem(`${k("notificationSecrets")}.webhookToken`, "is required when notifications.webhook is set: `pulumi config set --secret --path notificationSecrets.webhookToken ...`");

    const shardsRaw = r.integer(`${k("hub")}.controllerShards`, hubRaw.controllerShards, 1, 50);
    const hub: HubConfig = {
        server: hubServer,
        ...(hubContext !== undefined ? { context: hubContext } : {}),
        domain: hubDomain,
        namespace: r.string(`${k("hub")}.namespace`, hubRaw.namespace, "a namespace name (DNS label)", DNS_LABEL) ?? "argocd",
        chartVersion: r.string(`${k("hub")}.chartVersion`, hubRaw.chartVersion, "a chart version such as 10.1.1", SEMVER) ?? DEFAULT_CHART_VERSION,
        chartRepository,
        loopbackTenants,
        argocdVersion,
        crdsSource: crdsSourceOf(r, `${k("hub")}.crdsSource`, hubRaw.crdsSource, argocdVersion),
        ha,
        controllerShards: shardsRaw ?? controllerShardsFor(active.length, ha),
        nodes,
        syncTimeoutSeconds,
        ...gitWebhookOf(r, `${k("hub")}.gitWebhook`, hubRaw.gitWebhook),
    };

    const agent = agentSettings(r, deployRaw, chartPath, environment, tenants, (name) => fileOf.get(name)!);
    if (r.problems.length > 0) throw new ConfigError(r.problems);
    return {
        stack,
        environment,
        hub,
        deploy: { repoURL, targetRevision, chartPath, prune, applicationsSync, ...agent },
        tenants,
        steps,
        syncWindows,
        emergencyRollout,
        notifications: { argocdUrl, slackChannels, ...(webhookUrl ? { webhookUrl } : {}) },
        protectRollout: environment === "prod",
        ...(promotion ? { promotion } : {}),
    };
}

/**
 * promotion: {from, soak}: the stack a revision comes from must have a stack file here (and not be
 * this stack), and the soak must be a non-zero duration. An empty object (Pulumi.yaml's default) is no gate.
 */
function promotionOf(r: Reader, stack: string, key: string, value: unknown): PromotionConfig | undefined {
    const raw = r.object(key, value, ["from", "soak"]);
    if (!raw || Object.keys(raw).length === 0) return undefined;
    r.required(`${key}.from`, raw.from, "the stack a revision is promoted from, e.g. staging");
    r.required(`${key}.soak`, raw.soak, "how long the revision must run healthy there, e.g. 2h");
    const from = r.string(`${key}.from`, raw.from, "a stack name such as staging", /^[A-Za-z0-9_.-]+$/);
    const soak = r.string(`${key}.soak`, raw.soak, "a duration such as 2h or 90m", DURATION);
    if (from === stack) r.problem(`${key}.from`, `is this stack itself; name the stack whose fleet must run the revision first, e.g. staging`);
    else if (from && !fs.existsSync(path.join(PROJECT_DIR, `Pulumi.${from}.yaml`))) {
        const stacks = fs.readdirSync(PROJECT_DIR).map((f) => /^Pulumi\.([A-Za-z0-9_.-]+)\.yaml$/.exec(f)?.[1]).filter((s): s is string => s !== undefined && s !== stack);
        r.problem(`${key}.from`, `no stack ${JSON.stringify(from)}: there is no Pulumi.${from}.yaml${suggestion(from, stacks)}; stacks: ${stacks.join(", ")}`);
    }
    const soakSeconds = soak ? durationSeconds(soak) : 0;
    if (soak !== undefined && soak !== "" && soakSeconds === 0 && DURATION.test(soak)) r.problem(`${key}.soak`, `must be longer than 0s; without a soak use no promotion rule`);
    if (soak === "") r.problem(`${key}.soak`, "must not be empty: a duration such as 2h");
    return from && soak && soakSeconds > 0 ? { from, soak, soakSeconds } : undefined;
}

/** Waits for an Output's value to compute something non-secret from it. */
