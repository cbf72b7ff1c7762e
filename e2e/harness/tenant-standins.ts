/**
 * What a k3s tenant has and the loopback fleet does not, stood in for while real Argo CD runs:
 * - an ingress controller publishing Ingress status (k3s Traefik through ServiceLB publishes the
 *   node address; here 127.0.0.1), without which Argo CD keeps every Ingress Progressing;
 * - the agent prober's verdict on the probe-gated Deployment (the chart's prober runs in a pod,
 *   and kwok runs no containers). The verdict is written the way the chart's prober writes it
 *   (files/prober.sh: one annotate of the three annotations, conditional on the resourceVersion
 *   it read) once the Deployment's rollout is complete; what it says is the test's choice.
 */
import { type Credentials, KubeError, request } from "./kube";

export const PROBE_GATE = "agentfleet.io/probe-gate";
/** The pod template revision the verdict is for (files/prober.sh; never metadata.generation, which the write itself bumps). */
export const PROBE_REVISION = "agentfleet.io/probe-revision";
export const REVISION = "deployment.kubernetes.io/revision";
export const PROBE_RESULT = "agentfleet.io/probe-result";
export const PROBE_MESSAGE = "agentfleet.io/probe-message";

export interface ProbeVerdict {
    result: "pass" | "fail";
    message: string;
}

export interface StandInOptions {
    /** Tenant name -> its admin credentials. */
    tenants: Record<string, Credentials>;
    /** The verdict for a tenant's Deployment; undefined records nothing. Default: pass. */
    verdict?: (tenant: string, deployment: any) => ProbeVerdict | undefined;
    intervalMs?: number;
    log?: (line: string) => void;
}

export interface StandIns {
    /** Changes the verdict from now on. */
    setVerdict(verdict: StandInOptions["verdict"]): void;
    stop(): Promise<void>;
}

const MERGE = "application/merge-patch+json";
const rolledOut = (d: any) =>
    (d.status?.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) &&
    (d.status?.updatedReplicas ?? 0) >= (d.spec.replicas ?? 1) &&
    (d.status?.availableReplicas ?? 0) >= (d.spec.replicas ?? 1) &&
    (d.status?.replicas ?? 0) <= (d.spec.replicas ?? 1);

/** Starts the stand-ins; they poll every tenant until stopped. */
export function startTenantStandIns(options: StandInOptions): StandIns {
    let verdict = options.verdict ?? (() => ({ result: "pass" as const, message: "stand-in prober: pass" }));
    let stopped = false;
    const log = options.log ?? (() => undefined);
    const once = async (tenant: string, admin: Credentials) => {
        const ingresses = await request(admin, "GET", "/apis/networking.k8s.io/v1/ingresses");
        for (const ing of ingresses.items) {
            if ((ing.status?.loadBalancer?.ingress ?? []).length > 0) continue;
            const p = `/apis/networking.k8s.io/v1/namespaces/${ing.metadata.namespace}/ingresses/${ing.metadata.name}/status`;
            await request(admin, "PATCH", p, { status: { loadBalancer: { ingress: [{ ip: "127.0.0.1" }] } } }, MERGE);
            log(`stand-in ingress controller: ${tenant}: published ${ing.metadata.name}`);
        }
        const deployments = await request(admin, "GET", "/apis/apps/v1/deployments");
        for (const d of deployments.items) {
            const ann = d.metadata.annotations ?? {};
            // As files/prober.sh: only a complete rollout whose revision the Deployment controller recorded, and a pass is final for it.
            if (ann[PROBE_GATE] !== "true" || !rolledOut(d) || ann[REVISION] === undefined) continue;
            if (ann[PROBE_REVISION] === ann[REVISION] && ann[PROBE_RESULT] === "pass") continue;
            const v = verdict(tenant, d);
            // Already written: the same verdict again would change nothing (and flood the log).
            if (!v || (ann[PROBE_REVISION] === ann[REVISION] && ann[PROBE_RESULT] === v.result && ann[PROBE_MESSAGE] === v.message)) continue;
            const body = {
                metadata: {
                    resourceVersion: d.metadata.resourceVersion,
                    annotations: { [PROBE_REVISION]: ann[REVISION], [PROBE_RESULT]: v.result, [PROBE_MESSAGE]: v.message },
                },
            };
            try {
                await request(admin, "PATCH", `/apis/apps/v1/namespaces/${d.metadata.namespace}/deployments/${d.metadata.name}`, body, MERGE);
                log(`stand-in prober: ${tenant}: ${d.metadata.name} revision ${ann[REVISION]}: ${v.result}`);
            } catch (err) {
                // As the prober: a Deployment changed while probing is probed again on the next run.
                if (!(err instanceof KubeError && err.status === 409)) throw err;
            }
        }
    };
    const loop = (async () => {
        while (!stopped) {
            for (const [tenant, admin] of Object.entries(options.tenants)) {
                if (stopped) break;
                // A tenant that is down (a scenario stops one) is skipped until it is back.
                await once(tenant, admin).catch((err: Error) => log(`stand-ins: ${tenant}: ${err.message}`));
            }
            await new Promise((r) => setTimeout(r, options.intervalMs ?? 500));
        }
    })();
    return {
        setVerdict(v) {
            verdict = v ?? verdict;
        },
        async stop() {
            stopped = true;
            await loop;
        },
    };
}
