/**
 * Fleet scale on the real engines: `pulumi preview` and `pulumi up` of a hub stack with N tenants
 * against a loopback hub, each side by side with a floor measured in the same run under the same
 * engine: a plain program declaring the hub's own objects (floorProject). The hub declares no
 * per-tenant object (tenant stacks register the tenants), so the floor is the same at any size and
 * what the fleet's size costs the hub shows as the ratio's growth.
 * Used by `npm run bench -- --real-engines`; prints progress on stderr.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { stringify } from "yaml";
import { ensureEngines } from "../engines/toolchain";
import { projectCopy } from "../tests/helpers";
import { EXAMPLE_PASSPHRASE, newPassphraseCrypter } from "../tests/doubles/passphrase";
import { LoopbackFleet } from "./harness/fleet";
import { stopAll } from "./harness/processes";
import { installProvider, pulumiStack } from "./harness/pulumi";
import { withArgoCdCrds } from "./harness/project";
import { automationEngine } from "../tenants/engine";
import { fleetUp } from "../tenants/fleet-up";
import { withRunKubeconfig } from "../tenants/kubeconfig";
import { checkHub, onboardTenants } from "../tenants/onboard";
import { onboardingStackName, tenantStackSettings } from "../tenants/onboarding-program";
import { readView } from "../tenants/stack-file";
import { forEachTenant } from "../tenants/parallel";
import { inlineHubStack } from "../commands/hub";
import { type LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import { type CapturedResource, evaluate } from "../evaluator/evaluate";

/** The engine's switch to save the state once at the end of an update instead of after every step. */
export const SKIP_CHECKPOINTS = "PULUMI_SKIP_CHECKPOINTS";

/** The floor (first), and the hub program run two ways: by the pulumi CLI's Node.js language host, and inline (`npm run hub`). */
export const BENCH_PROGRAMS = ["floor: the hub's objects", "agentfleet hub, pulumi CLI", "agentfleet hub, npm run hub"] as const;

export interface EngineBenchRow {
    tenants: number;
    program: (typeof BENCH_PROGRAMS)[number];
    /** Each round's seconds (none when it failed). */
    previewSeconds: number[];
    upSeconds: number[];
    resources: number;
    /** Why the program could not run (the engine's error line), when it could not. */
    failure?: string;
}

/**
 * A stand-in credential of the size of a real one: a service-account token (a JWT, about 950
 * characters) and a cluster CA (base64 PEM, about 1,500). Example-only filler, never a credential.
 */
export function exampleCredential(tenant: string): { bearerToken: string; caData: string } {
    const filler = (length: number) => `example-only-${tenant}-`.padEnd(length, "x");
    return { bearerToken: filler(950), caData: Buffer.from(`-----BEGIN CERTIFICATE-----\n${filler(1080)}\n-----END CERTIFICATE-----\n`).toString("base64") };
}

/** How a hub stack file reaches its hub: by hub.server (the run's KUBECONFIG), or, for a program of the earlier layout, by its hubKubeconfig. */
export type HubAccess = { server: string } | { kubeconfig: string };

/**
 * Writes hub stack `stack` into `project`: its stack file and its tenant inventory (fleet/<stack>/),
 * `n` token tenants on (never contacted) loopback servers, every secret encrypted; or, given
 * `bootstrap` (tenant name -> its loopback server), those bootstrap tenants instead, pending (no
 * credential stored yet). `crdsSource`: the hub's hub.crdsSource (the argocd engine's CRDs; unset,
 * the provider would read them from GitHub). A hub given by kubeconfig is the layout from before
 * the inventory (an old checkout's program): its tenants are listed in the stack file.
 */
export function writeHubStack(project: string, stack: string, n: number, hub: HubAccess, bootstrap?: Map<string, string>, crdsSource?: string): void {
    const crypter = newPassphraseCrypter(EXAMPLE_PASSPHRASE);
    const names = bootstrap ? [...bootstrap.keys()] : Array.from({ length: n }, (_, i) => `bench-${String(i).padStart(5, "0")}`);
    const server = (name: string, i: number) => bootstrap?.get(name) ?? `https://127.0.0.${2 + Math.floor(i / 60000)}:${1025 + (i % 60000)}`;
    const config = {
        "agentfleet:environment": "dev",
        "agentfleet:hub": { ...("server" in hub ? { server: hub.server } : {}), domain: "argocd.bench.example.net", chartRepository: "e2e/argo-cd-standin", loopbackTenants: true, ...(crdsSource ? { crdsSource } : {}) },
        ...("kubeconfig" in hub ? { "agentfleet:hubKubeconfig": { secure: crypter.encrypt(hub.kubeconfig) } } : {}),
        "agentfleet:deploy": { repoURL: "https://github.com/example-org/agentfleet.git", targetRevision: "HEAD" },
        // Only the earlier layout's program reads tenant tokens from the hub stack's configuration.
        ...("kubeconfig" in hub && !bootstrap
            ? {
                  "agentfleet:tenantCredentials": Object.fromEntries(
                      names.map((name) => {
                          const { bearerToken, caData } = exampleCredential(name);
                          return [name, { bearerToken: { secure: crypter.encrypt(bearerToken) }, caData: { secure: crypter.encrypt(caData) } }];
                      }),
                  ),
              }
            : {}),
        "agentfleet:notificationSecrets": { webhookToken: { secure: crypter.encrypt("example-only-webhook-token") } },
        "agentfleet:rollout": {
            steps: [
                { name: "canary", matchExpressions: [{ key: "ring", operator: "In", values: ["canary"] }], maxUpdate: "10%" },
                { name: "main", matchExpressions: [{ key: "ring", operator: "In", values: ["main"] }], maxUpdate: "10%" },
            ],
        },
    };
    const tenants = names.map((name, i) => ({ name, server: server(name, i), ring: i < names.length / 10 ? "canary" : "main", region: "loopback", credentials: bootstrap ? "bootstrap" : "token" }));
    const legacy = "kubeconfig" in hub;
    fs.writeFileSync(path.join(project, `Pulumi.${stack}.yaml`), stringify({ encryptionsalt: crypter.encryptionSalt, config: legacy ? { ...config, "agentfleet:tenants": tenants } : config }, { lineWidth: 0 }));
    if (legacy) return;
    const folder = path.join(project, "fleet", stack);
    fs.rmSync(folder, { recursive: true, force: true });
    fs.mkdirSync(folder, { recursive: true });
    for (const { name, ...entry } of tenants) fs.writeFileSync(path.join(folder, `${name}.yaml`), stringify(entry));
}

/**
 * The floor: the hub's own objects, declared by a plain CommonJS program: the same provider
 * inputs, the same resources with the same inputs (secrets as secrets), the same dependsOn, the
 * ConfigGroup of CRDs, and its two components; no TypeScript, no configuration, no tenant
 * inventory, no state check. What the engine must do for this hub, whatever program declares it.
 * `resources`: the hub stack's evaluation at this fleet size (the offline evaluator).
 */
function floorProject(dir: string, resources: CapturedResource[]): void {
    const crypter = newPassphraseCrypter(EXAMPLE_PASSPHRASE);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), stringify({ name: "agentfleet-bench-floor", runtime: { name: "nodejs", options: { typescript: false } }, main: "index.js" }));
    fs.writeFileSync(path.join(dir, "Pulumi.floor.yaml"), stringify({ encryptionsalt: crypter.encryptionSalt, config: {} }));
    const declared = resources.filter((r) => r.type !== "pulumi:pulumi:Stack").map((r) => ({ type: r.type, name: r.name, custom: r.custom, provider: r.provider, dependsOn: r.dependsOn, inputs: r.inputs }));
    fs.writeFileSync(
        path.join(dir, "index.js"),
        `const pulumi = require("@pulumi/pulumi");
const k8s = require("@pulumi/kubernetes");
// The evaluation records secret inputs in the SDK's own envelope: secrets again here.
const unwrap = (v) => pulumi.runtime.isRpcSecret(v) ? pulumi.secret(unwrap(pulumi.runtime.unwrapRpcSecret(v))) : Array.isArray(v) ? v.map(unwrap) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)])) : v;
const declared = ${JSON.stringify(declared)};
const made = {};
for (const r of declared) {
    const opts = { provider: r.provider ? made[r.provider] : undefined, dependsOn: r.dependsOn.map((d) => made[d]) };
    if (r.type.startsWith("pulumi:providers:")) made[r.name] = new pulumi.ProviderResource(r.type.slice("pulumi:providers:".length), r.name, unwrap(r.inputs));
    else if (r.type === "kubernetes:yaml/v2:ConfigGroup") made[r.name] = new k8s.yaml.v2.ConfigGroup(r.name, unwrap(r.inputs), opts);
    else if (r.custom) made[r.name] = new pulumi.CustomResource(r.type, r.name, unwrap(r.inputs), opts);
    else made[r.name] = new pulumi.ComponentResource(r.type, r.name, {}, opts);
}
`,
    );
    fs.symlinkSync(path.resolve(__dirname, "..", "node_modules"), path.join(dir, "node_modules"), "dir");
}

const seconds = async (work: () => Promise<unknown>) => {
    const start = process.hrtime.bigint();
    await work();
    return Number(process.hrtime.bigint() - start) / 1e9;
};

/** Runs every program `runs` times at each size on one loopback hub; returns one row per program and size, with every round's times. */
export async function benchRealEngines(sizes: number[], runs: number, log: (line: string) => void): Promise<EngineBenchRow[]> {
    const engines = await ensureEngines({ log });
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-engine-bench-"));
    const fleet = new LoopbackFleet({ clusters: ["hub"], dir: path.join(runDir, "fleet"), bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin }, log });
    const bins = { pulumi: engines.pulumi.bin, kubernetesProvider: engines["pulumi-kubernetes"].bin };
    const rows: EngineBenchRow[] = [];
    try {
        await fleet.start();
        // The inline program (npm run hub's way) runs in this process: it checks this KUBECONFIG against hub.server, as pulumi up's does its own.
        process.env.KUBECONFIG = fleet.hub.kubeconfigPath;
        const project = projectCopy();
        const crdsSource = withArgoCdCrds(project, engines);
        for (const n of sizes) {
            const stackName = `bench${n}`;
            writeHubStack(project, stackName, n, { server: fleet.hub.server }, undefined, crdsSource);
            const hub = await pulumiStack(project, stackName, path.join(runDir, `hub-${n}`), bins, fleet.hub.kubeconfigPath);
            installProvider(hub.env, bins, project);
            const floorDir = path.join(runDir, `floor-${n}`);
            floorProject(floorDir, (await evaluate(stackName, { root: project })).resources);
            const floor = await pulumiStack(floorDir, "floor", path.join(runDir, `floor-state-${n}`), bins, fleet.hub.kubeconfigPath);
            installProvider(floor.env, bins, project);
            const inline = await inlineHubStack(stackName, project, { envVars: hub.env, pulumiCommand: await PulumiCommand.get({ root: path.dirname(bins.pulumi) }) });
            // The local file backend rewrites the whole state after every step (quadratic: the floor's
            // up of 1,000 Secrets took 607 s with it, the engine using 13 GB): measure the programs,
            // not that, with the engine's own switch, for every program alike.
            for (const stack of [floor.stack, hub.stack, inline]) (stack.workspace as LocalWorkspace).envVars[SKIP_CHECKPOINTS] = "true";
            const programs = [[BENCH_PROGRAMS[0], floor.stack], [BENCH_PROGRAMS[1], hub.stack], [BENCH_PROGRAMS[2], inline]] as const;
            const times = new Map<string, { preview: number[]; up: number[]; resources: number; failure?: string }>(programs.map(([program]) => [program, { preview: [], up: [], resources: 0 }]));
            // Rounds, each program's order rotated per round: a drift of the machine's load touches all alike.
            for (let round = 0; round < runs; round++) {
                for (let k = 0; k < programs.length; k++) {
                    const [program, stack] = programs[(k + round) % programs.length];
                    const t = times.get(program)!;
                    if (t.failure) continue;
                    const what = `bench: ${n} tenants, round ${round + 1}/${runs}, ${program}`;
                    try {
                        log(`${what}: preview`);
                        t.preview.push(await seconds(() => stack.preview()));
                        log(`${what}: up (${t.preview.at(-1)!.toFixed(1)}s preview)`);
                        t.up.push(
                            await seconds(async () => {
                                const up = await stack.up({ onOutput: () => undefined });
                                t.resources = Object.values(up.summary.resourceChanges ?? {}).reduce((a, b) => a + (b ?? 0), 0);
                            }),
                        );
                        log(`${what}: ${t.up.at(-1)!.toFixed(1)}s up, ${t.resources} resources`);
                        // Every program deploys the same objects to this hub: each round measures a fresh deployment.
                        await stack.destroy({ onOutput: () => undefined });
                    } catch (err) {
                        t.failure = String((err as Error).message).split("\n")[0];
                        log(`${what}: failed: ${t.failure}`);
                    }
                }
            }
            for (const [program] of programs) {
                const t = times.get(program)!;
                rows.push({ tenants: n, program, previewSeconds: t.preview, upSeconds: t.up, resources: t.resources, failure: t.failure });
            }
        }
        fs.rmSync(project, { recursive: true, force: true });
    } finally {
        await fleet.stop();
        await stopAll();
        fs.rmSync(runDir, { recursive: true, force: true });
    }
    return rows;
}

export interface OnboardingBench {
    tenants: number;
    parallel: number;
    seconds: number;
    /** Tenants bootstrapped per minute. */
    perMinute: number;
}

/** A loopback hub with the hub stack up (the argocd namespace its tenants register into) and the tenant stacks' engine. */
async function hubWithStack(runDir: string, stack: string, tenants: Map<string, string> | number, log: (line: string) => void, tenantClusters: string[] = []) {
    const engines = await ensureEngines({ log });
    const fleet = new LoopbackFleet({ clusters: ["hub", ...tenantClusters], dir: path.join(runDir, "fleet"), bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin }, log });
    const project = projectCopy();
    await fleet.start();
    const crdsSource = withArgoCdCrds(project, engines);
    // A number: that many token tenants (writeHubStack's bench-<i>), none registered yet.
    const servers = typeof tenants === "number" ? undefined : new Map([...tenants].map(([name, server]) => [name, tenantClusters.includes(name) ? fleet.cluster(name).server : server]));
    writeHubStack(project, stack, typeof tenants === "number" ? tenants : 0, { server: fleet.hub.server }, servers, crdsSource);
    const bins = { pulumi: engines.pulumi.bin, kubernetesProvider: engines["pulumi-kubernetes"].bin };
    const hub = await pulumiStack(project, stack, path.join(runDir, "hub"), bins, fleet.hub.kubeconfigPath);
    installProvider(hub.env, bins, project);
    log(`bench: hub stack ${stack}: pulumi up (tenants register into its Argo CD namespace)`);
    const upSeconds = await seconds(() => hub.stack.up({ onOutput: () => undefined }));
    log(`bench: hub stack up in ${upSeconds.toFixed(1)}s`);
    const engine = automationEngine({ hubStack: stack, root: project, env: hub.env, pulumiBin: bins.pulumi });
    return { fleet, project, engine, hubKubeconfig: fs.readFileSync(fleet.hub.kubeconfigPath, "utf8") };
}

/**
 * `npm run tenant -- bootstrap`'s code (onboardTenants, the Automation API, one tenant stack per
 * tenant) bootstrapping `tenants` loopback tenants, `parallel` at a time, after the hub stack's up;
 * the time from the first tenant stack to the last registration.
 */
export async function benchOnboarding(tenants: number, parallel: number, log: (line: string) => void): Promise<OnboardingBench> {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-onboarding-bench-"));
    const names = Array.from({ length: tenants }, (_, i) => `onboard-${i}`);
    let world: Awaited<ReturnType<typeof hubWithStack>> | undefined;
    try {
        world = await hubWithStack(runDir, "onboard", new Map(names.map((n) => [n, ""])), log, names);
        const { fleet, project, engine, hubKubeconfig } = world;
        const targets = names.map((name) => ({ name, kubeconfigFile: fleet.cluster(name).kubeconfigPath }));
        const start = process.hrtime.bigint();
        const outcomes = await onboardTenants({ hub: { stack: "onboard", root: project }, engine, targets, hubKubeconfig, parallel, log });
        const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
        const failed = outcomes.filter((o) => !o.ok);
        if (failed.length > 0) throw new Error(`onboarding bench: ${failed.map((o) => `${o.tenant}: ${o.error}`).join("; ")}`);
        return { tenants, parallel, seconds: elapsed, perMinute: tenants / (elapsed / 60) };
    } finally {
        await world?.fleet.stop();
        await stopAll();
        for (const dir of [world?.project, runDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
}

export interface RegistrationBench {
    tenants: number;
    parallel: number;
    /** The first registration of every tenant (`tenant add --credentials token`'s tenant stack up, one per tenant): wall seconds. */
    registerSeconds: number;
    /** `tenant up --all` of a relabel of every tenant: wall seconds, tenants per minute. */
    seconds: number;
    perMinute: number;
    /** CPU-seconds per tenant: the Pulumi CLI processes and their provider plugins (this process's reaped children), and this Node.js process (inline programs, Automation API). */
    cliCpuPerTenant: number;
    nodeCpuPerTenant: number;
    /** Busy share of the machine's cores during the run (CLI + Node CPU / (wall x cores)). */
    coreShare: number;
    cores: number;
}

/** CPU-seconds of this process and of its reaped children (/proc/self/stat utime+stime, cutime+cstime). */
function cpuSeconds(): { self: number; children: number } {
    const fields = fs.readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
    // After "pid (comm) ": state is field 3, so utime (14) is index 11, stime 12, cutime 13, cstime 14.
    const tick = 100; // USER_HZ on Linux
    return { self: (Number(fields[11]) + Number(fields[12])) / tick, children: (Number(fields[13]) + Number(fields[14])) / tick };
}

/**
 * Fleet registration throughput: `npm run tenant -- up --all`'s code (fleetUp) relabelling every one
 * of `tenants` registered tenants (ring canary -> main in each tenant file) with the hub's context
 * only, `parallel` at a time: the run a fleet-wide relabel makes. The tenants are token tenants,
 * each registered first by its own tenant stack (as `tenant add --credentials token` does), so that no
 * tenant cluster is needed (a relabel contacts none: docs/design/tenant-stacks.md Q1); a bootstrap
 * tenant's stack holds 12 resources instead of 2, and its relabel costs about the same CPU (Q4: the
 * CLI invocations, not the steps, dominate).
 */
export async function benchRegistration(tenants: number, parallel: number, log: (line: string) => void): Promise<RegistrationBench> {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-registration-bench-"));
    let world: Awaited<ReturnType<typeof hubWithStack>> | undefined;
    try {
        // The hub stack lists the tenants (its rollout steps need them); each registers from its own stack, as `tenant add --credentials token` does.
        world = await hubWithStack(runDir, "registration", tenants, log);
        const { project, engine, hubKubeconfig } = world;
        const hub = { stack: "registration", root: project };
        const cfg = checkHub(hub, readView(project, "registration"));
        const registerStart = process.hrtime.bigint();
        const registered = await forEachTenant(
            cfg.tenants.map((t) => t.name),
            async (name) => {
                const settings = tenantStackSettings(cfg, cfg.tenants.find((t) => t.name === name)!, { tokenGenerations: [0] }, exampleCredential(name));
                return withRunKubeconfig({ hub: hubKubeconfig }, (env) => engine.up(onboardingStackName("registration", name), settings, env));
            },
            { parallel, log, action: "register (tenant add --credentials token's tenant stack)" },
        );
        const failedRegistrations = registered.filter((o) => !o.ok);
        if (failedRegistrations.length > 0) throw new Error(`registration bench: ${failedRegistrations.map((o) => `${o.tenant}: ${o.error}`).join("; ")}`);
        const registerSeconds = Number(process.hrtime.bigint() - registerStart) / 1e9;
        // The relabel: every tenant changes ring (canary <-> main, so both rollout steps keep tenants).
        const folder = path.join(project, "fleet", "registration");
        for (const file of fs.readdirSync(folder).map((f) => path.join(folder, f))) {
            fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(/^ring: (canary|main)$/m, (_, ring: string) => `ring: ${ring === "canary" ? "main" : "canary"}`));
        }
        const before = cpuSeconds();
        const start = process.hrtime.bigint();
        let summary = "";
        const code = await fleetUp({ hub, engine, selection: { all: true }, hubKubeconfig, preview: false, parallel, log, out: (l) => (summary += l) });
        const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
        const after = cpuSeconds();
        if (code !== 0 || !new RegExp(`: ${tenants} changed`).test(summary)) throw new Error(`registration bench: tenant up --all exited ${code}: ${summary}`);
        const [cli, node] = [after.children - before.children, after.self - before.self];
        const cores = os.cpus().length;
        return { tenants, parallel, registerSeconds, seconds: elapsed, perMinute: tenants / (elapsed / 60), cliCpuPerTenant: cli / tenants, nodeCpuPerTenant: node / tenants, coreShare: (cli + node) / (elapsed * cores), cores };
    } finally {
        await world?.fleet.stop();
        await stopAll();
        for (const dir of [world?.project, runDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
}
