/**
 * SPIKE (throwaway): Q7 of docs/design/tenant-stacks.md, the real Argo CD (the argocd engine's
 * application controller and repo-server) during a one-up token rotation of a tenant stack. Run
 * through e2e/spikes/tenant-stacks.ts (`... tenant-stacks.ts q7`). Env SPIKE_Q7_WINDOW_S (default 60):
 * seconds observed before the first rotation and after each.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { type ArgoCd } from "../harness/argocd";
import { type Credentials, request } from "../harness/kube";

const APPS = "/apis/argoproj.io/v1alpha1/namespaces/argocd";
export const Q7_PROJECT = "voice-agent-spike";

/**
 * A directory-of-manifests git repository (one ConfigMap) the repo-server clones through file://;
 * `bump()` commits a new value, a new revision the automated sync applies (unlike a self-heal of
 * live drift, which Argo CD v3 backs off exponentially).
 */
export function manifestRepo(dir: string): { url: string; bump: (n: number) => void } {
    fs.mkdirSync(path.join(dir, "manifests"), { recursive: true });
    const write = (v: string) => fs.writeFileSync(path.join(dir, "manifests", "cm.yaml"), `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: spike-probe\ndata:\n  hello: ${JSON.stringify(v)}\n`);
    const git = (...args: string[]) => execFileSync("git", ["-c", "user.name=spike", "-c", "user.email=spike@example.net", "-c", "commit.gpgsign=false", ...args], { cwd: dir, stdio: "ignore" });
    write("world");
    git("init", "-q", "-b", "main");
    git("add", "-A");
    git("commit", "-qm", "probe");
    return {
        url: `file://${dir}`,
        bump: (n) => {
            write(`release-${n}`);
            git("commit", "-qam", `release ${n}`);
        },
    };
}

/** What Argo CD needs on the hub besides the CRDs: argocd-cm (a 5 s reconciliation), argocd-cmd-params-cm, argocd-secret, the AppProject. */
export async function prepareHub(hub: Credentials, repoURL: string): Promise<void> {
    const ns = "/api/v1/namespaces/argocd";
    await request(hub, "POST", `${ns}/configmaps`, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "argocd-cm", labels: { "app.kubernetes.io/part-of": "argocd" } }, data: { "timeout.reconciliation": "5s", "timeout.reconciliation.jitter": "0s" } });
    // Millisecond log times (Argo CD's default layout has seconds), to order the cluster cache's switch against the old token's deletion.
    await request(hub, "POST", `${ns}/configmaps`, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "argocd-cmd-params-cm", labels: { "app.kubernetes.io/part-of": "argocd" } }, data: { "log.format.timestamp": "2006-01-02T15:04:05.000Z07:00" } });
    await request(hub, "POST", `${ns}/secrets`, { apiVersion: "v1", kind: "Secret", metadata: { name: "argocd-secret", labels: { "app.kubernetes.io/part-of": "argocd" } }, type: "Opaque", data: {} });
    await request(hub, "POST", `${APPS}/appprojects`, {
        apiVersion: "argoproj.io/v1alpha1",
        kind: "AppProject",
        metadata: { name: Q7_PROJECT },
        spec: { sourceRepos: [repoURL], destinations: [{ server: "*", namespace: "*" }], namespaceResourceWhitelist: [{ group: "*", kind: "*" }] },
    });
}

/** The Application: automated sync with self-heal of the probe ConfigMap into the tenant's voice-agent namespace. */
export async function createApplication(hub: Credentials, repoURL: string, server: string): Promise<void> {
    await request(hub, "POST", `${APPS}/applications`, {
        apiVersion: "argoproj.io/v1alpha1",
        kind: "Application",
        metadata: { name: "probe-t1" },
        spec: {
            project: Q7_PROJECT,
            source: { repoURL, targetRevision: "main", path: "manifests" },
            destination: { server, namespace: "voice-agent" },
            syncPolicy: { automated: { selfHeal: true, prune: true }, retry: { limit: 0 } },
        },
    });
}

export interface Sample {
    at: number;
    sync?: string;
    health?: string;
    op?: string;
    opMessage?: string;
    conditions: string[];
    reconciledAt?: string;
}

/** Polls the Application every second (and asks for a refresh every 2 s) until stopped; `bump`s the repository every 10 s so that Argo CD syncs to the tenant. */
export function observe(hub: Credentials, bump: (n: number) => void): { samples: Sample[]; stop: () => Promise<void> } {
    const samples: Sample[] = [];
    let running = true;
    let tick = 0;
    const loop = (async () => {
        while (running) {
            tick++;
            try {
                const app = await request(hub, "GET", `${APPS}/applications/probe-t1`);
                const s = app.status ?? {};
                samples.push({
                    at: Date.now(),
                    sync: s.sync?.status,
                    health: s.health?.status,
                    op: s.operationState?.phase,
                    opMessage: s.operationState?.message?.slice(0, 200),
                    conditions: (s.conditions ?? []).map((c: { type: string; message: string }) => `${c.type}: ${c.message.slice(0, 300)}`),
                    reconciledAt: s.reconciledAt,
                });
                if (tick % 2 === 0) await request(hub, "PATCH", `${APPS}/applications/probe-t1`, { metadata: { annotations: { "argocd.argoproj.io/refresh": "normal" } } }, "application/merge-patch+json");
                if (tick % 10 === 0) bump(tick);
            } catch {
                samples.push({ at: Date.now(), conditions: ["(hub GET failed)"] });
            }
            await new Promise((r) => setTimeout(r, 1000));
        }
    })();
    return {
        samples,
        stop: async () => {
            running = false;
            await loop;
        },
    };
}

/** Lines of the application controller's log after byte `from` that show an authentication or connection problem. */
export function troubleLines(logFile: string, from: number): string[] {
    const text = fs.readFileSync(logFile, "utf8").slice(from);
    return text.split("\n").filter((l) => /"(code|status)":401|status code 401|HTTP 401|unauthori[sz]ed|provide credentials|the server has asked|invalid bearer|forbidden|connection refused|failed to (sync|load|get|list|watch)|cluster cache|"level":"(error|warning)"/i.test(l));
}

/** Counts of the application controller's log messages that show it working with the tenant, after byte `from`, and its cluster cache's lines. */
export function logTally(logFile: string, from: number): { counts: Record<string, number>; clusterCache: string[] } {
    const lines = fs.readFileSync(logFile, "utf8").slice(from).split("\n").filter(Boolean);
    const kinds: Record<string, RegExp> = {
        "Reconciliation completed": /"msg":"Reconciliation completed/,
        "Applying resource (sync to the tenant)": /"msg":"Applying resource/,
        "operation Running -> Succeeded": /phase: Running -\\u003e Succeeded/,
        "operation -> Failed/Error": /phase: \w+ -\\u003e (Failed|Error)/,
        "Invalidated cluster": /"msg":"Invalidated cluster/,
        "Cluster successfully synced": /"msg":"Cluster successfully synced/,
    };
    const counts = Object.fromEntries(Object.entries(kinds).map(([k, re]) => [k, lines.filter((l) => re.test(l)).length]));
    const clusterCache = lines.filter((l) => /Invalidated cluster|Start syncing cluster|Cluster successfully synced|Failed to sync cluster/.test(l)).map((l) => {
        const j = JSON.parse(l);
        return `${j.time} ${j.msg}${j.total_ms !== undefined ? ` (total_ms ${j.total_ms})` : ""}`;
    });
    return { counts, clusterCache };
}

/** The tenant API server's authentication counters (its /metrics, read with the admin's certificate). */
export async function authCounters(tenantAdmin: Credentials): Promise<Record<string, number>> {
    const text: string = await request(tenantAdmin, "GET", "/metrics");
    const out: Record<string, number> = {};
    for (const l of String(text).split("\n")) {
        const m = /^(authentication_attempts\{[^}]*\}|apiserver_request_total\{[^}]*code="401"[^}]*\}|authenticated_user_requests\{[^}]*\})\s+([0-9.e+]+)/.exec(l);
        if (m) out[m[1]] = Number(m[2]);
    }
    return out;
}

/** The application controller's metrics lines about the cluster and its requests to it. */
export async function controllerMetrics(argocd: ArgoCd): Promise<string[]> {
    const controller = argocd.processes.find((p) => p.name.includes("application-controller"));
    const port = controller?.child.spawnargs.find((a) => a.startsWith("--metrics-port="))?.split("=")[1];
    if (!port) return ["(no metrics port)"];
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
    return (await res.text()).split("\n").filter((l) => /^argocd_(cluster_connection_status|app_k8s_request_total|app_sync_total|cluster_events_total)/.test(l));
}

/** Counts and transitions of the samples in [from, to). */
export function summarise(samples: Sample[], from: number, to: number): Record<string, unknown> {
    const inWindow = samples.filter((s) => s.at >= from && s.at < to);
    const states = new Map<string, number>();
    const conditions = new Set<string>();
    const ops = new Map<string, number>();
    for (const s of inWindow) {
        const k = `${s.sync}/${s.health}`;
        states.set(k, (states.get(k) ?? 0) + 1);
        s.conditions.forEach((c) => conditions.add(c));
        if (s.op) ops.set(`${s.op}${s.op === "Succeeded" ? "" : `: ${s.opMessage}`}`, (ops.get(`${s.op}`) ?? 0) + 1);
    }
    const reconciled = new Set(inWindow.map((s) => s.reconciledAt)).size;
    return { samples: inWindow.length, syncHealth: Object.fromEntries(states), operationPhases: [...ops.keys()], conditions: [...conditions], distinctReconciledAt: reconciled };
}
