/**
 * The e2e stack on the loopback fleet: a scratch copy of the project (the committed files, one git
 * commit on main, node_modules shared), the argo-cd stand-in chart completed with Argo CD's CRDs,
 * and the stack's example secrets replaced by the fleet's real credentials: the hub's kubeconfig
 * and a token tenant's pre-issued token through the real CLI, and the bootstrap tenant's through
 * agentfleet's own onboarding (`npm run tenant -- bootstrap`'s code: an onboarding stack per tenant).
 */
import * as fs from "fs";
import * as path from "path";
import { type Document, parse, parseDocument } from "yaml";
import { projectCopy } from "../../tests/helpers";
import { type BuiltEngine, ensureEngines } from "../../engines/toolchain";
import { LoopbackFleet } from "./fleet";
import { request } from "./kube";
import { waitFor } from "./processes";
import { type PulumiBins, type PulumiRun, installProvider, pulumiStack } from "./pulumi";
import { automationEngine } from "../../tenants/engine";
import { onboardTenants } from "../../tenants/onboard";

export const E2E_STACK = "e2e";
export const HUB = "hub";

export interface E2eWorld {
    engines: Record<string, BuiltEngine>;
    fleet: LoopbackFleet;
    project: string;
    runDir: string;
    pulumi: PulumiRun;
    bins: PulumiBins;
    /** Tenant names of the e2e stack, in file order. */
    tenants: Array<{ name: string; server: string; credentials: string }>;
}

const log = (line: string) => process.stderr.write(`e2e: ${line}\n`);

/** The e2e stack's tenants as its committed file lists them. */
export function e2eTenants(root: string): E2eWorld["tenants"] {
    const file = parse(fs.readFileSync(path.join(root, `Pulumi.${E2E_STACK}.yaml`), "utf8"));
    return file.config["agentfleet:tenants"];
}

/** A pre-issued token for a token-mode tenant: a service account's long-lived token, as a tenant admin would hand it over. */
async function preIssuedToken(fleet: LoopbackFleet, tenant: string): Promise<{ bearerToken: string; caData: string }> {
    const admin = fleet.cluster(tenant).admin;
    const ns = "kube-system";
    await request(admin, "POST", `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "preissued-argocd" } });
    await request(admin, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: "preissued-argocd" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
        subjects: [{ kind: "ServiceAccount", name: "preissued-argocd", namespace: ns }],
    });
    await request(admin, "POST", `/api/v1/namespaces/${ns}/secrets`, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "preissued-argocd-token", annotations: { "kubernetes.io/service-account.name": "preissued-argocd" } },
        type: "kubernetes.io/service-account-token",
    });
    let token = "";
    await waitFor(`${tenant}: the token controller filling preissued-argocd-token`, async () => {
        const secret = await request(admin, "GET", `/api/v1/namespaces/${ns}/secrets/preissued-argocd-token`);
        token = secret.data?.token ?? "";
        return token !== "";
    });
    return { bearerToken: Buffer.from(token, "base64").toString("utf8"), caData: Buffer.from(fleet.cluster(tenant).ca).toString("base64") };
}

/** Gives the project copy's stand-in argo-cd chart the CRDs of the Argo CD the argocd engine runs. */
export function withArgoCdCrds(project: string, engines: Record<string, { dir: string }>): void {
    const crdSource = path.join(project, "e2e", "argo-cd-standin", "crds-source");
    fs.mkdirSync(crdSource, { recursive: true });
    for (const f of fs.readdirSync(path.join(engines.argocd.dir, "crds"))) fs.copyFileSync(path.join(engines.argocd.dir, "crds", f), path.join(crdSource, f));
}

export interface WorldOptions {
    /** Edits the scratch copy's stack file before anything reads it (tenants, rollout steps). */
    editStack?: (doc: Document) => void;
}

/** Edits the scratch copy's stack file in place (comments and the secrets Pulumi wrote are kept). */
export function editStackFile(project: string, edit: (doc: Document) => void): void {
    const file = path.join(project, `Pulumi.${E2E_STACK}.yaml`);
    const doc = parseDocument(fs.readFileSync(file, "utf8"));
    edit(doc);
    fs.writeFileSync(file, doc.toString());
}

/** Builds or finds the engines, starts the fleet, prepares the project and selects the stack. */
export async function startWorld(runDir: string, options: WorldOptions = {}): Promise<E2eWorld> {
    const engines = await ensureEngines({ log });
    const project = projectCopy();
    if (options.editStack) editStackFile(project, options.editStack);
    const tenants = e2eTenants(project);
    const ports: Record<string, number> = Object.fromEntries(tenants.map((t) => [t.name, Number(new URL(t.server).port)]));
    const fleet = new LoopbackFleet({
        clusters: [HUB, ...tenants.map((t) => t.name)],
        ports,
        dir: path.join(runDir, "fleet"),
        bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin },
        log: (l) => log(l),
    });
    await fleet.start();

    withArgoCdCrds(project, engines);

    const bins = { pulumi: engines.pulumi.bin, kubernetesProvider: engines["pulumi-kubernetes"].bin };
    const pulumi = await pulumiStack(project, E2E_STACK, runDir, bins);
    installProvider(pulumi.env, bins, project);
    const secret = (value: string) => ({ value, secret: true });
    await pulumi.stack.setConfig("agentfleet:hubKubeconfig", secret(fleet.hub.kubeconfig));
    for (const t of tenants.filter((t) => t.credentials === "token")) {
        const issued = await preIssuedToken(fleet, t.name);
        await pulumi.stack.setConfig(`agentfleet:tenantCredentials.${t.name}.bearerToken`, secret(issued.bearerToken), true);
        await pulumi.stack.setConfig(`agentfleet:tenantCredentials.${t.name}.caData`, secret(issued.caData), true);
    }
    const bootstrap = tenants.filter((t) => t.credentials === "bootstrap");
    const outcomes = await onboardTenants({
        hub: { stack: E2E_STACK, root: project },
        engine: onboardingEngine({ project, pulumi, bins }),
        targets: bootstrap.map((t) => ({ name: t.name, kubeconfigFile: fleet.cluster(t.name).kubeconfigPath })),
        parallel: 4,
        log,
    });
    const failed = outcomes.filter((o) => !o.ok);
    if (failed.length > 0) throw new Error(`bootstrap failed: ${JSON.stringify(failed)}`);
    log(`project ${project}, stack ${E2E_STACK} ready`);
    return { engines, fleet, project, runDir, pulumi, bins, tenants };
}

/** agentfleet's onboarding engine (Automation API, inline programs) on the run's backend and CLI. */
export function onboardingEngine(w: { project: string; pulumi: PulumiRun; bins: { pulumi: string } }) {
    return automationEngine({ hubStack: E2E_STACK, root: w.project, env: w.pulumi.env, pulumiBin: w.bins.pulumi });
}

/** Stops the fleet and removes the scratch folders (kept when E2E_KEEP is set, for debugging). */
export async function stopWorld(world: Partial<E2eWorld>): Promise<void> {
    await world.fleet?.stop();
    if (process.env.E2E_KEEP) {
        log(`kept ${world.runDir} and ${world.project}`);
        return;
    }
    for (const dir of [world.project, world.runDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
}
