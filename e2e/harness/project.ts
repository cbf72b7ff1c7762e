/**
 * The e2e stack on the loopback fleet: a scratch copy of the project (the committed files, one git
 * commit on main, node_modules shared), the argo-cd stand-in chart completed with chart 10.1.1's CRDs
 * (the hub's own, the engine's version, come from hub.crdsSource), the hub's kubeconfig every run's
 * KUBECONFIG (hub.server its address). Once the hub's first up made Argo CD's namespace,
 * `registerTenants` registers every tenant from its own tenant stack, as the commands do: a token
 * tenant's pre-issued token through `add --credentials token`'s code, a bootstrap tenant through
 * `bootstrap`'s (argocd-manager on the tenant, the cluster Secret on the hub).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { type Document, parse, parseDocument, stringify } from "yaml";
import { projectCopy, runTool } from "../../tests/helpers";
import { ARGOCD_CRD_FILES } from "../../stacks/config";
import { ROOT } from "../../evaluator/evaluate";
import { type BuiltEngine, ensureEngines } from "../../engines/toolchain";
import { LoopbackFleet } from "./fleet";
import { request } from "./kube";
import { waitFor } from "./processes";
import { type PulumiBins, type PulumiRun, installProvider, pulumiStack } from "./pulumi";
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { automationEngine, hubSecretsSettings } from "../../tenants/engine";
import { readTenantKubeconfig, withRunKubeconfig } from "../../tenants/kubeconfig";
import { ONBOARDING_PROJECT, onboardingProgram, onboardingStackName, tenantStackSettings } from "../../tenants/onboarding-program";
import { checkHub, onboardTenants, registerTokenTenant } from "../../tenants/onboard";
import { type TenantEntry, readView } from "../../tenants/stack-file";

export const E2E_STACK = "e2e";
export const HUB = "hub";
/** The port of the loopback hub's API server, as Pulumi.e2e.yaml's hub.server names it. */
export const E2E_HUB_PORT = 36442;

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

/**
 * The e2e stack's tenants as its committed tenant files list them (fleet/e2e/<tenant>.yaml, in
 * file-name order); in a checkout from before the inventory, as its stack file lists them.
 */
export function e2eTenants(root: string): E2eWorld["tenants"] {
    const folder = path.join(root, "fleet", E2E_STACK);
    if (!fs.existsSync(folder)) return parse(fs.readFileSync(path.join(root, `Pulumi.${E2E_STACK}.yaml`), "utf8")).config["agentfleet:tenants"];
    return fs
        .readdirSync(folder)
        .sort()
        .map((f) => ({ name: f.slice(0, -".yaml".length), ...parse(fs.readFileSync(path.join(folder, f), "utf8")) }));
}

/** Edits the scratch copy's tenant files as one list of entries with names: changed files are rewritten, new ones written, dropped ones deleted. */
export function editTenantFiles(project: string, edit: (tenants: Array<Record<string, unknown>>) => Array<Record<string, unknown>>): void {
    const folder = path.join(project, "fleet", E2E_STACK);
    const before = e2eTenants(project) as unknown as Array<Record<string, unknown>>;
    const after = edit(structuredClone(before));
    for (const { name, ...entry } of after) {
        const file = path.join(folder, `${String(name)}.yaml`);
        const text = stringify(entry);
        if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) fs.writeFileSync(file, text);
    }
    for (const t of before) if (!after.some((a) => a.name === t.name)) fs.rmSync(path.join(folder, `${String(t.name)}.yaml`));
}

/**
 * The documented migration of a stack file from before the inventory (docs/operations.md): `npm
 * run tenant -- split-inventory` in `project`, after its committed tenant files of `stack` are
 * removed (the stack file's entries are the ones to move).
 */
export function splitInventory(project: string, stack: string): void {
    fs.rmSync(path.join(project, "fleet", stack), { recursive: true, force: true });
    execFileSync(process.execPath, ["-r", "ts-node/register/transpile-only", "commands/tenant.ts", "split-inventory", "--stack", stack], { cwd: project, stdio: ["ignore", "pipe", "inherit"], timeout: 120_000 });
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

/**
 * Completes the project copy's stand-in argo-cd chart with the CRDs chart 10.1.1 ships, its appVersion's
 * (argo-cd's manifests/crds from the Go module at this checkout's stand-in Chart.yaml appVersion, also
 * for a copy of an earlier layout), which it renders with crds.install: true; returns the folder of the
 * argocd engine's own CRDs (its version's), for hub.crdsSource: what the hub applies itself.
 */
export function withArgoCdCrds(project: string, engines: Record<string, { dir: string }>): string {
    const chart = path.join(project, "e2e", "argo-cd-standin");
    const appVersion = parse(fs.readFileSync(path.join(ROOT, "e2e", "argo-cd-standin", "Chart.yaml"), "utf8")).appVersion as string;
    const download = execFileSync("go", ["mod", "download", "-json", `github.com/argoproj/argo-cd/v3@${appVersion}`], { cwd: os.tmpdir(), env: { ...process.env, GOFLAGS: "-mod=mod" }, encoding: "utf8", timeout: 10 * 60_000 });
    const moduleCrds = path.join(JSON.parse(download).Dir, "manifests", "crds");
    const crdSource = path.join(chart, "crds-source");
    fs.mkdirSync(crdSource, { recursive: true });
    for (const f of ARGOCD_CRD_FILES) fs.copyFileSync(path.join(moduleCrds, f), path.join(crdSource, f));
    return path.join(engines.argocd.dir, "crds");
}

/** A field each of Argo CD v3.6.2's CRDs has and chart 10.1.1's (v3.4.4's) lack, by file: the API server would prune it. */
export const V3_6_CRD_FIELDS: Record<(typeof ARGOCD_CRD_FILES)[number], string[]> = {
    "application-crd.yaml": ["status", "summary", "isAppOfApps"],
    "applicationset-crd.yaml": ["spec", "template", "spec", "source", "tagPrefix"],
    "appproject-crd.yaml": ["spec", "syncWindows", "syncOverrun"],
};

/** Whether a live CRD's (first version's) schema has the field at `fields`, stepping through list items. */
export function crdHasField(crd: { spec: { versions: Array<{ schema: { openAPIV3Schema: unknown } }> } }, fields: string[]): boolean {
    type Schema = { properties?: Record<string, Schema>; items?: Schema } | undefined;
    let schema = crd.spec.versions[0].schema.openAPIV3Schema as Schema;
    for (const field of fields) schema = schema?.properties?.[field] ?? schema?.items?.properties?.[field];
    return schema !== undefined;
}

/** The project's files at `rev`, as a folder sharing this checkout's node_modules (a program of an earlier layout). */
export function checkoutAt(rev: string, dir: string): string {
    fs.mkdirSync(dir, { recursive: true });
    const tar = execFileSync("git", ["archive", "--format=tar", rev], { cwd: ROOT, maxBuffer: 256 * 1024 * 1024 });
    execFileSync("tar", ["-x", "-C", dir], { input: tar });
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
    execFileSync("git", ["init", "-q", "-b", "main"], { cwd: dir });
    execFileSync("git", ["-c", "user.name=e2e", "-c", "user.email=e2e@example.net", "add", "-A"], { cwd: dir });
    execFileSync("git", ["-c", "user.name=e2e", "-c", "user.email=e2e@example.net", "commit", "-qm", rev], { cwd: dir });
    return dir;
}

export interface WorldOptions {
    /** Edits the scratch copy's stack file before anything reads it (tenants, rollout steps). */
    editStack?: (doc: Document) => void;
    /** Edits the scratch copy's tenant files first (see `editTenantFiles`). */
    editTenants?: (tenants: Array<Record<string, unknown>>) => Array<Record<string, unknown>>;
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
    if (options.editTenants) editTenantFiles(project, options.editTenants);
    const tenants = e2eTenants(project);
    const ports: Record<string, number> = { [HUB]: E2E_HUB_PORT, ...Object.fromEntries(tenants.map((t) => [t.name, Number(new URL(t.server).port)])) };
    const fleet = new LoopbackFleet({
        clusters: [HUB, ...tenants.map((t) => t.name)],
        ports,
        dir: path.join(runDir, "fleet"),
        bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin },
        log: (l) => log(l),
    });
    await fleet.start();

    const crdsSource = withArgoCdCrds(project, engines);

    const bins = { pulumi: engines.pulumi.bin, kubernetesProvider: engines["pulumi-kubernetes"].bin };
    const pulumi = await pulumiStack(project, E2E_STACK, runDir, bins, fleet.hub.kubeconfigPath);
    installProvider(pulumi.env, bins, project);
    // The hub applies the engine's CRDs (GitHub, the default source, cannot be reached here).
    await pulumi.stack.setConfig("agentfleet:hub.crdsSource", { value: crdsSource }, true);
    log(`project ${project}, stack ${E2E_STACK} ready`);
    return { engines, fleet, project, runDir, pulumi, bins, tenants };
}

/**
 * Registers the world's tenants from their own tenant stacks, after the hub's first up (a
 * registration needs Argo CD's namespace): each token tenant as `npm run tenant -- add --credentials
 * token` does (its committed file stands for the one that command wrote, so the file is taken out
 * and written again by the registration), then the bootstrap tenants as `npm run tenant -- bootstrap` does.
 */
export async function registerTenants(w: E2eWorld): Promise<void> {
    const started = Date.now();
    const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
    const hub = { stack: E2E_STACK, root: w.project };
    const hubKubeconfig = fs.readFileSync(w.fleet.hub.kubeconfigPath, "utf8");
    const engine = onboardingEngine(w);
    for (const t of w.tenants.filter((t) => t.credentials === "token")) {
        const credential = await preIssuedToken(w.fleet, t.name);
        const file = path.join(w.project, "fleet", E2E_STACK, `${t.name}.yaml`);
        const entry = { name: t.name, ...parse(fs.readFileSync(file, "utf8")) } as TenantEntry;
        fs.rmSync(file);
        await registerTokenTenant({ hub, engine, entry, credential, hubKubeconfig });
        log(`[${elapsed()}] token tenant ${t.name} registered by its tenant stack`);
    }
    const bootstrap = w.tenants.filter((t) => t.credentials === "bootstrap");
    const outcomes = await onboardTenants({
        hub,
        engine,
        targets: bootstrap.map((t) => ({ name: t.name, kubeconfigFile: w.fleet.cluster(t.name).kubeconfigPath })),
        hubKubeconfig,
        parallel: 4,
        log,
    });
    const failed = outcomes.filter((o) => !o.ok);
    if (failed.length > 0) throw new Error(`bootstrap failed: ${JSON.stringify(failed)}`);
    log(`[${elapsed()}] bootstrap tenants ${bootstrap.map((t) => t.name).join(", ")} registered by their tenant stacks`);
}

/** `npm run tenant -- <args> --stack e2e` in the scratch copy, as a process, with the run's Pulumi environment (KUBECONFIG: the hub's). */
export const tenantCommand = (w: Pick<E2eWorld, "project" | "pulumi">, ...args: string[]) => runTool(w.project, "tenant", [...args, "--stack", E2E_STACK], { env: w.pulumi.env, timeoutMs: 10 * 60_000 });

/**
 * A bootstrap tenant's stack as `npm run tenant -- bootstrap` runs it (its program with the
 * registration, its token generations, the run kubeconfig's tenant and hub contexts), selected for
 * what no command runs (a preview); a later bootstrap is what changes it.
 */
export async function withTenantStack<T>(w: E2eWorld, tenant: string, run: (stack: Stack) => Promise<T>): Promise<T> {
    const cfg = checkHub({ stack: E2E_STACK, root: w.project }, readView(w.project, E2E_STACK));
    const entry = cfg.tenants.find((t) => t.name === tenant);
    const name = onboardingStackName(E2E_STACK, tenant);
    const tokens = await onboardingEngine(w).tokenState(name);
    if (!entry || entry.credentials !== "bootstrap" || !tokens) throw new Error(`${tenant} is no bootstrap tenant with a tenant stack ${name}`);
    const settings = tenantStackSettings(cfg, entry, { tokenGenerations: tokens.generations, legacyTokenGeneration: tokens.legacyGeneration });
    const kubeconfig = readTenantKubeconfig(w.fleet.cluster(tenant).kubeconfigPath, { server: entry.server });
    return withRunKubeconfig({ tenant: kubeconfig, hub: fs.readFileSync(w.fleet.hub.kubeconfigPath, "utf8") }, async (env) => {
        const secrets = hubSecretsSettings(fs.readFileSync(path.join(w.project, `Pulumi.${E2E_STACK}.yaml`), "utf8"));
        const workspace = await LocalWorkspace.create({
            program: onboardingProgram(settings),
            projectSettings: { name: ONBOARDING_PROJECT, runtime: "nodejs" },
            stackSettings: { [name]: secrets },
            ...(secrets.secretsProvider ? { secretsProvider: secrets.secretsProvider } : {}),
            envVars: { ...w.pulumi.env, ...env },
            pulumiCommand: await PulumiCommand.get({ root: path.dirname(w.bins.pulumi) }),
        });
        return run(await Stack.select(name, workspace));
    });
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
