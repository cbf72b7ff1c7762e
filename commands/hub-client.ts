/**
 * Read-only access to a stack's hub for the commands that read it live (status, promote): its
 * kubeconfig (--kubeconfig, else $KUBECONFIG; its context must point at the stack's hub.server; a
 * client certificate or bearer token, CA from certificate-authority-data) parsed with `yaml`, and
 * JSON GETs over Node's https. Credentials stay in memory; every error names the server and never
 * the credential.
 */
import * as fs from "fs";
import * as https from "https";
import * as path from "path";
import { parse } from "yaml";
import { AGENT_APP, ARGO_API } from "../components/fleet-rollout";
import { PROJECT, sameServer } from "../stacks/config";
import { UserError } from "../evaluator/report";
import { readStackConfig } from "../evaluator/evaluate";
import { userPath } from "./cli";

export interface HubConnection {
    server: string;
    /** Which kubeconfig this came from (a file path). */
    source: string;
    ca?: string;
    cert?: string;
    key?: string;
    token?: string;
    insecure: boolean;
}

type Obj = Record<string, any>;

/** Connection settings of the kubeconfig's `contextName` (default: its current context). Throws UserError naming what is wrong (never a value). */
export function parseKubeconfig(text: string, source: string, contextName?: string): HubConnection {
    let doc: Obj;
    try {
        doc = parse(text) ?? {};
    } catch {
        throw new UserError(`the kubeconfig from ${source} is not valid YAML`);
    }
    if (typeof doc !== "object" || Array.isArray(doc)) throw new UserError(`the kubeconfig from ${source} is not a kubeconfig (no clusters, users, contexts)`);
    const named = (list: unknown, name: string | undefined): Obj | undefined => (Array.isArray(list) ? list.find((e: Obj) => e?.name === name) ?? (name === undefined ? list[0] : undefined) : undefined);
    contextName ??= doc["current-context"] || undefined;
    const context = named(doc.contexts, contextName)?.context;
    if (!context) throw new UserError(`the kubeconfig from ${source} has no ${contextName ? `context ${JSON.stringify(contextName)}` : "context"}`);
    const cluster = named(doc.clusters, context.cluster)?.cluster;
    if (!cluster?.server) throw new UserError(`the kubeconfig from ${source} has no server for cluster ${JSON.stringify(context.cluster)}`);
    const user: Obj = named(doc.users, context.user)?.user ?? {};
    const base = source.startsWith("/") ? path.dirname(source) : process.cwd();
    const file = (f: string) => fs.readFileSync(path.resolve(base, f), "utf8");
    const data = (b64: unknown) => (typeof b64 === "string" ? Buffer.from(b64, "base64").toString("utf8") : undefined);
    const connection: HubConnection = {
        server: String(cluster.server),
        source,
        ca: data(cluster["certificate-authority-data"]) ?? (cluster["certificate-authority"] ? file(cluster["certificate-authority"]) : undefined),
        cert: data(user["client-certificate-data"]) ?? (user["client-certificate"] ? file(user["client-certificate"]) : undefined),
        key: data(user["client-key-data"]) ?? (user["client-key"] ? file(user["client-key"]) : undefined),
        token: user.token ?? (user.tokenFile ? file(user.tokenFile).trim() : undefined),
        insecure: cluster["insecure-skip-tls-verify"] === true,
    };
    if (!connection.token && !(connection.cert && connection.key)) {
        const kind = user.exec ? "exec credential plugins" : user["auth-provider"] ? "auth providers" : user.username ? "basic auth" : "no credentials";
        throw new UserError(`the kubeconfig from ${source} (user ${JSON.stringify(context.user)}) uses ${kind}; npm run status needs a client certificate or a bearer token`);
    }
    return connection;
}

/** GET `apiPath` as JSON; undefined on 404. Unreachable servers and refusals are one-line UserErrors. */
export async function hubGet<T = Obj>(hub: HubConnection, apiPath: string, timeoutMs = 15_000): Promise<T | undefined> {
    // 429 is the API server asking to come back (a restart, storage initialising): a few bounded retries.
    for (let attempt = 1; ; attempt++) {
        const answer = await getOnce<T>(hub, apiPath, timeoutMs);
        if (answer.status !== 429) return answer.value;
        if (attempt === 5) throw new UserError(`the hub API server ${hub.server} kept answering GET ${apiPath} with HTTP 429 (too many requests); try again later`);
        await new Promise((r) => setTimeout(r, Math.min(5, Number(answer.retryAfter) || 1) * 1000));
    }
}

function getOnce<T>(hub: HubConnection, apiPath: string, timeoutMs: number): Promise<{ status: number; value?: T; retryAfter?: string }> {
    const url = new URL(apiPath, hub.server);
    return new Promise((resolve, reject) => {
        const req = https.request(
            url,
            {
                method: "GET",
                ca: hub.ca,
                cert: hub.cert,
                key: hub.key,
                rejectUnauthorized: !hub.insecure,
                headers: { Accept: "application/json", ...(hub.token ? { Authorization: `Bearer ${hub.token}` } : {}) },
                timeout: timeoutMs,
            },
            (res) => {
                let body = "";
                res.setEncoding("utf8");
                res.on("data", (d) => (body += d));
                res.on("end", () => {
                    const status = res.statusCode ?? 0;
                    if (status === 404) return resolve({ status });
                    if (status === 429) return resolve({ status, retryAfter: String(res.headers["retry-after"] ?? "") });
                    if (status === 401 || status === 403) return reject(new UserError(`the hub API server ${hub.server} refused the kubeconfig from ${hub.source} (HTTP ${status}): it needs to read ApplicationSets and Applications`));
                    if (status < 200 || status >= 300) return reject(new UserError(`the hub API server ${hub.server} answered GET ${url.pathname} with HTTP ${status}: ${apiMessage(body)}`));
                    try {
                        resolve({ status, value: JSON.parse(body) });
                    } catch {
                        reject(new UserError(`the hub API server ${hub.server} answered GET ${url.pathname} with something other than JSON`));
                    }
                });
            },
        );
        req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
        req.on("error", (err: NodeJS.ErrnoException) =>
            reject(new UserError(certificateProblem(hub, err) ?? `the hub API server ${hub.server} is unreachable (${err.code ?? err.message}); kubeconfig from ${hub.source}`)),
        );
        req.end();
    });
}

/** OpenSSL's verification failures, as Node reports them (err.code): the server answered, but is not trusted. */
const UNTRUSTED_ISSUER = ["SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "CERT_UNTRUSTED", "CERT_SIGNATURE_FAILURE", "UNABLE_TO_DECRYPT_CERT_SIGNATURE", "CERT_REJECTED", "INVALID_CA", "CERT_CHAIN_TOO_LONG", "PATH_LENGTH_EXCEEDED", "INVALID_PURPOSE"];
const OUT_OF_DATE = ["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "ERROR_IN_CERT_NOT_BEFORE_FIELD", "ERROR_IN_CERT_NOT_AFTER_FIELD"];

/**
 * A certificate the hub presented that the kubeconfig does not trust, as one line saying which
 * check failed and what to do; undefined for any other error (the server is then unreachable).
 */
export function certificateProblem(hub: Pick<HubConnection, "server" | "source">, err: NodeJS.ErrnoException): string | undefined {
    const code = err.code ?? "";
    const prefix = `the hub API server ${hub.server} presented a TLS certificate that the kubeconfig from ${hub.source} does not trust (${code})`;
    if (UNTRUSTED_ISSUER.includes(code)) {
        return `${prefix}: it is not signed by the kubeconfig's CA. Put the CA that signed the hub's serving certificate in the cluster's certificate-authority-data (k3s: the certificate-authority-data of /etc/rancher/k3s/k3s.yaml on the hub, from /var/lib/rancher/k3s/server/tls/server-ca.crt), or use the kubeconfig the hub's installer wrote`;
    }
    if (OUT_OF_DATE.includes(code)) {
        return `${prefix}: ${code === "CERT_HAS_EXPIRED" || code === "ERROR_IN_CERT_NOT_AFTER_FIELD" ? "it has expired" : "it is not valid yet"}. Renew the hub's serving certificate (k3s renews certificates within 90 days of expiry when it restarts; \`k3s certificate rotate\`), and check this machine's clock`;
    }
    if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
        // Node's reason names the host and the certificate's names: neither is secret.
        const reason = String((err as { reason?: string }).reason ?? "").split("\n")[0];
        return `${prefix}: it does not name the host of the server URL${reason ? ` (${reason})` : ""}. Use a server address the certificate names, or add the address to it (k3s: --tls-san <host>, then restart k3s)`;
    }
    return undefined;
}

/** The API's own message (a Status object), one line. */
const apiMessage = (body: string): string => {
    try {
        return String(JSON.parse(body).message ?? "").split("\n")[0].slice(0, 300);
    } catch {
        return body.split("\n")[0].slice(0, 300);
    }
};

// ---------------------------------------------------------------------------------------------
// A stack's hub, as status and promote reach it

/** The stack's hub as its file configures it: namespace (default argocd), API server and kubeconfig context. */
export function stackHub(stack: string): { namespace: string; server?: string; context?: string } {
    const text = readStackConfig(stack).config[`${PROJECT}:hub`];
    const hub = (text ? JSON.parse(text) : {}) as { namespace?: string; server?: string; context?: string };
    return { namespace: hub.namespace ?? "argocd", ...(hub.server ? { server: hub.server } : {}), ...(hub.context ? { context: hub.context } : {}) };
}

/** The hub kubeconfig file the user named (--kubeconfig, else the first of $KUBECONFIG), absolute; undefined when neither. */
export function kubeconfigFile(flag: string | undefined): { file: string; source: string } | undefined {
    if (flag !== undefined) return { file: userPath(flag), source: userPath(flag) };
    const fromEnv = (process.env.KUBECONFIG ?? "").split(path.delimiter).find((f) => f !== "");
    return fromEnv === undefined ? undefined : { file: userPath(fromEnv), source: `$KUBECONFIG (${userPath(fromEnv)})` };
}

/** The connection to `stack`'s hub through the given kubeconfig, refused unless its context points at the stack's hub.server. */
export function hubConnection(stack: string, given: { file: string; source: string } | undefined): HubConnection {
    if (given === undefined) throw new UserError(`no hub kubeconfig: pass --kubeconfig FILE or set KUBECONFIG to the kubeconfig of ${stack}'s hub (it is never in the stack file; docs/operations.md, "The hub's kubeconfig")`, 2);
    let text: string;
    try {
        text = fs.readFileSync(given.file, "utf8");
    } catch (err) {
        throw new UserError(`cannot read the kubeconfig ${given.source} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const hub = stackHub(stack);
    const connection = parseKubeconfig(text, given.source, hub.context);
    if (hub.server && !sameServer(connection.server, hub.server)) {
        throw new UserError(`the kubeconfig from ${given.source} points at ${connection.server}, not at ${stack}'s hub ${hub.server} (${PROJECT}:hub.server); pass the kubeconfig of ${stack}'s hub`, 2);
    }
    return connection;
}

/** The fleet's ApplicationSet on the stack's hub and every Application in its namespace; a UserError without the ApplicationSet. */
export async function fleetApplications(hub: HubConnection, namespace: string, stack: string): Promise<{ appSet: Record<string, any>; applications: Array<Record<string, any>> }> {
    const base = `/apis/${ARGO_API}/namespaces/${namespace}`;
    const appSet = await hubGet(hub, `${base}/applicationsets/${AGENT_APP}`);
    if (!appSet) throw new UserError(`no ApplicationSet ${namespace}/${AGENT_APP} on the hub ${hub.server}: \`pulumi up --stack ${stack}\` creates it (npm run plan -- --stack ${stack} shows what it declares)`);
    const apps = await hubGet<{ items: Array<Record<string, any>> }>(hub, `${base}/applications`);
    return { appSet, applications: apps?.items ?? [] };
}
