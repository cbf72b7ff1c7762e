/**
 * A loopback fleet: one etcd, and per cluster (a hub and N tenants) a kube-apiserver under its own
 * etcd prefix, a kube-controller-manager (service-account tokens, namespace finalization,
 * Deployments -> ReplicaSets -> Pods, Jobs, the garbage collector), a kube-scheduler (binds Pods
 * to the node) and kwok (a fake node that runs Pods and completes Jobs, handing pods addresses in
 * 127.0.0.0/8). Certificates are made locally with openssl; everything listens on 127.0.0.1 only.
 *
 * What differs from k3s: no kubelet, containers or network (kwok fakes pod status), no Traefik or
 * service load balancer, no CoreDNS, no metrics-server; one etcd shared under prefixes instead of
 * k3s's kine/SQLite; the admin credential is a client certificate in system:masters.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { stringify } from "yaml";
import { type Credentials, request } from "./kube";
import { type Started, assertPortFree, assertRunning, freePort, reserveFixedPorts, start, stop, waitFor } from "./processes";

export interface Cluster {
    name: string;
    server: string;
    /** Admin credentials (system:masters client certificate). */
    admin: Credentials;
    /** Admin kubeconfig file, and its text. */
    kubeconfigPath: string;
    kubeconfig: string;
    /** The cluster CA, PEM. */
    ca: string;
    processes: Started[];
}

export interface Bins {
    etcd: string;
    kubernetes: string;
    kwok: string;
}

export interface FleetOptions {
    /** Cluster names: the first is the hub. */
    clusters: string[];
    /** Folder for certificates, kubeconfigs, etcd data and logs. */
    dir: string;
    bins: Bins;
    /** Fixed API server ports by cluster (the e2e stack file names its tenants' servers); others get a free port. */
    ports?: Record<string, number>;
    log?: (line: string) => void;
}

const openssl = (cwd: string, ...args: string[]) => execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });

/** A CA, and from it certificates for the API servers and the admin; EC keys, one day. */
function makePki(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    openssl(dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=agentfleet-e2e-ca", "-keyout", "ca.key", "-out", "ca.crt");
    const issue = (name: string, subject: string, ext: string) => {
        openssl(dir, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", subject, "-keyout", `${name}.key`, "-out", `${name}.csr`);
        fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
        openssl(dir, "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", `${name}.ext`, "-out", `${name}.crt`);
    };
    issue("serving", "/CN=kube-apiserver", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    issue("admin", "/O=system:masters/CN=agentfleet-e2e-admin", "extendedKeyUsage=clientAuth\n");
}

function kubeconfigText(name: string, server: string, ca: string, cert: string, key: string): string {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    return stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name, cluster: { server, "certificate-authority-data": b64(ca) } }],
        users: [{ name: `${name}-admin`, user: { "client-certificate-data": b64(cert), "client-key-data": b64(key) } }],
        contexts: [{ name, context: { cluster: name, user: `${name}-admin` } }],
        "current-context": name,
    });
}

/** A kwok Node: kwok manages nodes with this annotation and fakes the status of Pods bound to them. */
const fakeNode = {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: "kwok-node-0", annotations: { "kwok.x-k8s.io/node": "fake" }, labels: { "kubernetes.io/hostname": "kwok-node-0", type: "kwok" } },
    spec: {},
};

/** The pod addresses kwok hands out on the fleet's `index`th cluster: inside 127.0.0.0/8. */
export function podCidr(index: number): string {
    return `127.${100 + index}.0.1/24`;
}

export class LoopbackFleet {
    readonly clusters = new Map<string, Cluster>();
    private etcd?: Started;

    constructor(private readonly options: FleetOptions) {}

    /**
     * The fleet's CA and its serving certificate (SAN 127.0.0.1), as files: a loopback receiver
     * serves this certificate, and a process told to trust caFile (SSL_CERT_FILE) accepts it.
     */
    get tls(): { caFile: string; certFile: string; keyFile: string } {
        const pki = path.join(this.options.dir, "pki");
        return { caFile: path.join(pki, "ca.crt"), certFile: path.join(pki, "serving.crt"), keyFile: path.join(pki, "serving.key") };
    }

    get hub(): Cluster {
        return this.cluster(this.options.clusters[0]);
    }

    cluster(name: string): Cluster {
        const c = this.clusters.get(name);
        if (!c) throw new Error(`no cluster ${name} in the loopback fleet`);
        return c;
    }

    private log(line: string) {
        (this.options.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(line);
    }

    /** Starts etcd and every cluster; on failure stops what it started and rethrows. */
    async start(): Promise<void> {
        const { dir, bins } = this.options;
        const began = Date.now();
        const elapsed = () => `${((Date.now() - began) / 1000).toFixed(1)}s`;
        try {
            reserveFixedPorts(this.options.log);
            const pki = path.join(dir, "pki");
            makePki(pki);
            const read = (f: string) => fs.readFileSync(path.join(pki, f), "utf8");
            const etcdPort = await freePort();
            const peerPort = await freePort();
            this.etcd = start("etcd", path.join(bins.etcd, "etcd"), [
                "--name=e2e", `--data-dir=${path.join(dir, "etcd")}`,
                `--listen-client-urls=http://127.0.0.1:${etcdPort}`, `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
                `--listen-peer-urls=http://127.0.0.1:${peerPort}`, `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
                `--initial-cluster=e2e=http://127.0.0.1:${peerPort}`, "--unsafe-no-fsync", "--log-level=warn",
            ], path.join(dir, "etcd.log"));
            await waitFor("etcd", async () => {
                assertRunning(this.etcd!);
                const res = await fetch(`http://127.0.0.1:${etcdPort}/health`);
                return res.ok;
            }, { attempts: 60, intervalMs: 250 });
            this.log(`fleet: etcd ready (${elapsed()})`);

            await Promise.all(this.options.clusters.map(async (name, index) => {
                const clusterDir = path.join(dir, name);
                fs.mkdirSync(clusterDir, { recursive: true });
                // Each cluster signs its own service-account tokens, so a token of one never works on another.
                openssl(clusterDir, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key");
                openssl(clusterDir, "ec", "-in", "sa.key", "-pubout", "-out", "sa.pub");
                const port = this.options.ports?.[name] ?? (await freePort());
                await assertPortFree(port, name);
                const server = `https://127.0.0.1:${port}`;
                const admin: Credentials = { server, ca: read("ca.crt"), cert: read("admin.crt"), key: read("admin.key") };
                const kubeconfig = kubeconfigText(name, server, admin.ca, admin.cert!, admin.key!);
                const kubeconfigPath = path.join(clusterDir, "admin.kubeconfig");
                fs.writeFileSync(kubeconfigPath, kubeconfig, { mode: 0o600 });
                const apiserver = start(`${name} kube-apiserver`, path.join(bins.kubernetes, "kube-apiserver"), [
                    `--etcd-servers=http://127.0.0.1:${etcdPort}`, `--etcd-prefix=/${name}`,
                    "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", `--secure-port=${port}`,
                    `--tls-cert-file=${path.join(pki, "serving.crt")}`, `--tls-private-key-file=${path.join(pki, "serving.key")}`,
                    `--client-ca-file=${path.join(pki, "ca.crt")}`,
                    `--service-account-issuer=${server}`, `--service-account-key-file=${path.join(clusterDir, "sa.pub")}`,
                    `--service-account-signing-key-file=${path.join(clusterDir, "sa.key")}`,
                    "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=RBAC",
                    `--cert-dir=${clusterDir}`, "--profiling=false", "--enable-priority-and-fairness=false",
                ], path.join(clusterDir, "kube-apiserver.log"));
                const processes = [apiserver];
                this.clusters.set(name, { name, server, admin, kubeconfigPath, kubeconfig, ca: admin.ca, processes });
                await waitFor(`${name} kube-apiserver /readyz`, async () => {
                    assertRunning(apiserver);
                    return (await request(admin, "GET", "/readyz")) === "ok";
                }, { attempts: 240, intervalMs: 500 });
                processes.push(start(`${name} kube-controller-manager`, path.join(bins.kubernetes, "kube-controller-manager"), [
                    `--kubeconfig=${kubeconfigPath}`, "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
                    `--service-account-private-key-file=${path.join(clusterDir, "sa.key")}`, `--root-ca-file=${path.join(pki, "ca.crt")}`,
                    "--use-service-account-credentials=false", "--controllers=*,-nodeipam,-nodelifecycle,-service-lb-controller,-cloud-node-lifecycle",
                    // Owned objects go with their owner (Applications of a deleted ApplicationSet, ReplicaSets, Pods).
                    "--enable-garbage-collector=true",
                ], path.join(clusterDir, "kube-controller-manager.log")));
                processes.push(start(`${name} kube-scheduler`, path.join(bins.kubernetes, "kube-scheduler"), [
                    `--kubeconfig=${kubeconfigPath}`, "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
                ], path.join(clusterDir, "kube-scheduler.log")));
                processes.push(start(`${name} kwok`, path.join(bins.kwok, "kwok"), [
                    `--kubeconfig=${kubeconfigPath}`, "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                    "--node-ip=127.0.0.1", "--server-address=127.0.0.1:0", "--node-lease-duration-seconds=40",
                    // Pod IPs on loopback, one /24 per cluster: a prober that probes pod IPs never leaves this machine.
                    `--cidr=${podCidr(index)}`,
                ], path.join(clusterDir, "kwok.log")));
                await request(admin, "POST", "/api/v1/nodes", fakeNode);
                // The controller-manager is working once it has given "default" its service account.
                await waitFor(`${name} kube-controller-manager (default service account)`, async () => {
                    for (const p of processes) assertRunning(p);
                    return (await request(admin, "GET", "/api/v1/namespaces/default/serviceaccounts")).items.some((sa: any) => sa.metadata.name === "default");
                }, { attempts: 120, intervalMs: 500 });
                await waitFor(`${name} kwok (node Ready)`, async () => {
                    const node = await request(admin, "GET", "/api/v1/nodes/kwok-node-0");
                    return node.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True");
                }, { attempts: 120, intervalMs: 500 });
                // The API server taints a new node not-ready; the node lifecycle controller, which is
                // off here (no kubelet heartbeats to judge), would lift it once Ready: kwok's node is.
                await request(admin, "PATCH", "/api/v1/nodes/kwok-node-0", { spec: { taints: null } }, "application/merge-patch+json");
                this.log(`fleet: cluster ${name} ready at ${server} (${elapsed()})`);
            }));
        } catch (err) {
            await this.stop();
            throw err;
        }
    }

    /** Stops one cluster's processes (an unreachable tenant), keeping its data. */
    async stopCluster(name: string): Promise<void> {
        for (const p of [...this.cluster(name).processes].reverse()) await stop(p);
    }

    /** Stops everything this fleet started. */
    async stop(): Promise<void> {
        for (const c of this.clusters.values()) for (const p of [...c.processes].reverse()) await stop(p);
        if (this.etcd) await stop(this.etcd);
    }
}
