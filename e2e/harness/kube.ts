/**
 * A minimal Kubernetes API client for the real-engine suite: JSON over HTTPS to a loopback API
 * server, authenticated by a client certificate or a bearer token.
 */
import * as fs from "fs";
import * as https from "https";
import * as path from "path";

export interface Credentials {
    /** https://127.0.0.1:<port> */
    server: string;
    ca: string;
    cert?: string;
    key?: string;
    token?: string;
}

export class KubeError extends Error {
    constructor(
        readonly status: number,
        readonly body: string,
        what: string,
    ) {
        super(`${what}: HTTP ${status} ${body.slice(0, 300)}`);
    }
}

/** One API request; resolves to the parsed JSON body, rejects with KubeError on a non-2xx status. */
export function request<T = any>(creds: Credentials, method: string, path: string, body?: unknown, contentType = "application/json"): Promise<T> {
    const url = new URL(path, creds.server);
    if (url.hostname !== "127.0.0.1" && url.hostname !== "localhost") throw new Error(`refusing a non-loopback API server: ${url.hostname}`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
        const req = https.request(
            url,
            {
                method,
                ca: creds.ca,
                cert: creds.cert,
                key: creds.key,
                headers: {
                    Accept: "application/json",
                    ...(creds.token ? { Authorization: `Bearer ${creds.token}` } : {}),
                    ...(payload ? { "Content-Type": contentType, "Content-Length": Buffer.byteLength(payload) } : {}),
                },
                timeout: 15_000,
            },
            (res) => {
                let data = "";
                res.on("data", (d) => (data += d));
                res.on("end", () => {
                    const status = res.statusCode ?? 0;
                    if (status < 200 || status >= 300) return reject(new KubeError(status, data, `${method} ${path}`));
                    try {
                        resolve(data ? JSON.parse(data) : undefined);
                    } catch {
                        resolve(data as T);
                    }
                });
            },
        );
        req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer in 15s`)));
        req.on("error", reject);
        if (payload) req.write(payload);
        req.end();
    });
}

/** GET that resolves to undefined on 404. */
export async function getOrUndefined<T = any>(creds: Credentials, path: string): Promise<T | undefined> {
    try {
        return await request<T>(creds, "GET", path);
    } catch (err) {
        if (err instanceof KubeError && err.status === 404) return undefined;
        throw err;
    }
}

/** API path of a namespaced or cluster-scoped object. */
export function objectPath(apiVersion: string, kind: string, name: string, namespace?: string): string {
    const plural = PLURALS[kind] ?? `${kind.toLowerCase()}s`;
    const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    return `${base}${namespace ? `/namespaces/${namespace}` : ""}/${plural}/${name}`;
}

const PLURALS: Record<string, string> = {
    Ingress: "ingresses",
    NetworkPolicy: "networkpolicies",
    ApplicationSet: "applicationsets",
    AppProject: "appprojects",
    Endpoints: "endpoints",
};

/**
 * Whether the API server says `user` (or the token's identity) may do `verb` on `resource`, or on
 * the non-resource URL `path` (`/openapi/v2`): its own SubjectAccessReview.
 */
export async function canI(admin: Credentials, review: { user: string; groups?: string[]; verb: string; resource?: string; path?: string; group?: string; namespace?: string; name?: string }): Promise<boolean> {
    const result = await request(admin, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        spec: {
            user: review.user,
            groups: review.groups ?? ["system:serviceaccounts", "system:authenticated"],
            ...(review.path !== undefined
                ? { nonResourceAttributes: { verb: review.verb, path: review.path } }
                : { resourceAttributes: { verb: review.verb, resource: review.resource, group: review.group ?? "", namespace: review.namespace, name: review.name } }),
        },
    });
    return result.status?.allowed === true;
}

/** Whom the API server's authenticator says `token` is, asked with the admin's TokenReview: undefined when it does not authenticate. */
export async function tokenUser(admin: Credentials, token: string): Promise<string | undefined> {
    const review = await request(admin, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } });
    return review.status?.authenticated === true ? String(review.status.user?.username) : undefined;
}

/**
 * A kubectl for the chart's scripts under test: $AGENTFLEET_KUBECTL, else `kubectl` on PATH. The
 * Google Cloud SDK's `kubectl` is a version dispatcher; the real binaries it dispatches to sit next
 * to it as `kubectl.<major>.<minor>`, and the newest of them is used directly.
 */
export function kubectlBinary(): string {
    if (process.env.AGENTFLEET_KUBECTL) return process.env.AGENTFLEET_KUBECTL;
    const onPath = (process.env.PATH ?? "").split(path.delimiter).map((dir) => path.join(dir, "kubectl")).find((file) => fs.existsSync(file));
    if (!onPath) throw new Error("no kubectl on PATH: install one, or set AGENTFLEET_KUBECTL to its path");
    const real = fs.realpathSync(onPath);
    const versioned = fs
        .readdirSync(path.dirname(real))
        .map((name) => /^kubectl\.(\d+)\.(\d+)$/.exec(name))
        .filter((m): m is RegExpExecArray => m !== null)
        .sort((a, b) => Number(a[1]) - Number(b[1]) || Number(a[2]) - Number(b[2]));
    return versioned.length > 0 ? path.join(path.dirname(real), versioned[versioned.length - 1][0]) : real;
}
