/**
 * Fleet scale on the real engines: `pulumi preview` and `pulumi up` of a hub stack with N tenants
 * against a loopback hub, each side by side with a floor measured in the same run under the same
 * engine: a plain program declaring N Kubernetes Secrets of the same size through one provider.
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
import { onboardTenants } from "../tenants/onboard";
import { inlineHubStack } from "../commands/hub";
import { type LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";

/** The engine's switch to save the state once at the end of an update instead of after every step. */
export const SKIP_CHECKPOINTS = "PULUMI_SKIP_CHECKPOINTS";

/** The floor, and the hub program run two ways: by the pulumi CLI's Node.js language host, and inline (`npm run hub`). */
export const BENCH_PROGRAMS = ["floor: N Secrets", "agentfleet hub, pulumi CLI", "agentfleet hub, npm run hub"] as const;

export interface EngineBenchRow {
    tenants: number;
    program: (typeof BENCH_PROGRAMS)[number];
    previewSeconds: number;
    upSeconds: number;
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
        "agentfleet:tenantCredentials": Object.fromEntries(
            (bootstrap ? [] : names).map((name) => {
                const { bearerToken, caData } = exampleCredential(name);
                return [name, { bearerToken: { secure: crypter.encrypt(bearerToken) }, caData: { secure: crypter.encrypt(caData) } }];
            }),
        ),
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

/** The floor: one provider (reading KUBECONFIG, as the hub's does) and `n` Secrets with a similar payload, nothing else. */
function floorProject(dir: string, n: number): void {
    const crypter = newPassphraseCrypter(EXAMPLE_PASSPHRASE);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), stringify({ name: "agentfleet-bench-floor", runtime: { name: "nodejs", options: { typescript: false } }, main: "index.js" }));
    fs.writeFileSync(path.join(dir, "Pulumi.floor.yaml"), stringify({ encryptionsalt: crypter.encryptionSalt, config: {} }));
    fs.writeFileSync(
        path.join(dir, "index.js"),
        `const pulumi = require("@pulumi/pulumi");
const k8s = require("@pulumi/kubernetes");
const provider = new k8s.Provider("hub", {});
const ns = new k8s.core.v1.Namespace("floor", { metadata: { name: "floor" } }, { provider });
const filler = (i, length) => ("example-only-t" + i + "-").padEnd(length, "x");
for (let i = 0; i < ${n}; i++) {
    const config = JSON.stringify({ bearerToken: filler(i, 950), tlsClientConfig: { caData: Buffer.from(filler(i, 1150)).toString("base64"), insecure: false } });
    new k8s.core.v1.Secret("s" + i, { metadata: { name: "s" + i, namespace: ns.metadata.name, labels: { tenant: "t" + i, ring: "main" } },
        stringData: pulumi.secret({ name: "t" + i, server: "https://127.0.0.2:" + (1025 + i), config }) }, { provider });
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

/** Runs both programs at each size on a fresh loopback hub; returns one row per program and size. */
export async function benchRealEngines(sizes: number[], log: (line: string) => void): Promise<EngineBenchRow[]> {
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
            floorProject(floorDir, n);
            const floor = await pulumiStack(floorDir, "floor", path.join(runDir, `floor-state-${n}`), bins, fleet.hub.kubeconfigPath);
            installProvider(floor.env, bins, project);
            const inline = await inlineHubStack(stackName, project, { envVars: hub.env, pulumiCommand: await PulumiCommand.get({ root: path.dirname(bins.pulumi) }) });
            // The local file backend rewrites the whole state after every step (quadratic: the floor's
            // up of 1,000 Secrets took 607 s with it, the engine using 13 GB): measure the programs,
            // not that, with the engine's own switch, for every program alike.
            for (const stack of [floor.stack, hub.stack, inline]) (stack.workspace as LocalWorkspace).envVars[SKIP_CHECKPOINTS] = "true";
            for (const [program, stack] of [["floor: N Secrets", floor.stack], ["agentfleet hub, pulumi CLI", hub.stack], ["agentfleet hub, npm run hub", inline]] as const) {
                log(`bench: ${n} tenants, ${program}: preview`);
                let previewSeconds: number;
                try {
                    previewSeconds = await seconds(() => stack.preview());
                } catch (err) {
                    // Above about 50 tenants the CLI cannot start node with the configuration (commands/hub.ts).
                    const failure = /argument list too long/.test(String(err)) ? "fork/exec node: argument list too long" : String((err as Error).message).split("\n")[0];
                    log(`bench: ${n} tenants, ${program}: failed: ${failure}`);
                    rows.push({ tenants: n, program, previewSeconds: NaN, upSeconds: NaN, resources: 0, failure });
                    continue;
                }
                log(`bench: ${n} tenants, ${program}: up (${previewSeconds.toFixed(1)}s preview)`);
                let resources = 0;
                const upSeconds = await seconds(async () => {
                    const up = await stack.up({ onOutput: () => undefined });
                    resources = Object.values(up.summary.resourceChanges ?? {}).reduce((a, b) => a + (b ?? 0), 0);
                });
                log(`bench: ${n} tenants, ${program}: ${upSeconds.toFixed(1)}s up, ${resources} resources`);
                rows.push({ tenants: n, program, previewSeconds, upSeconds, resources });
                // Both hub rows deploy the same stack: the second measures a fresh deployment too.
                if (program === "agentfleet hub, pulumi CLI") await stack.destroy({ onOutput: () => undefined });
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

/**
 * `npm run tenant -- bootstrap`'s code (onboardTenants, the Automation API, one onboarding stack
 * per tenant) bootstrapping `tenants` loopback tenants, `parallel` at a time; the time from the
 * first stack to the last credential stored in the hub stack file.
 */
export async function benchOnboarding(tenants: number, parallel: number, log: (line: string) => void): Promise<OnboardingBench> {
    const engines = await ensureEngines({ log });
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-onboarding-bench-"));
    const names = Array.from({ length: tenants }, (_, i) => `onboard-${i}`);
    const fleet = new LoopbackFleet({ clusters: ["hub", ...names], dir: path.join(runDir, "fleet"), bins: { etcd: engines.etcd.bin, kubernetes: engines.kubernetes.bin, kwok: engines.kwok.bin }, log });
    const project = projectCopy();
    try {
        await fleet.start();
        writeHubStack(project, "onboard", 0, { server: fleet.hub.server }, new Map(names.map((n) => [n, fleet.cluster(n).server])));
        const bins = { pulumi: engines.pulumi.bin, kubernetesProvider: engines["pulumi-kubernetes"].bin };
        const hub = await pulumiStack(project, "onboard", path.join(runDir, "hub"), bins, fleet.hub.kubeconfigPath);
        installProvider(hub.env, bins, project);
        const engine = automationEngine({ hubStack: "onboard", root: project, env: hub.env, pulumiBin: bins.pulumi });
        const targets = names.map((name) => ({ name, kubeconfigFile: fleet.cluster(name).kubeconfigPath }));
        const start = process.hrtime.bigint();
        const outcomes = await onboardTenants({ hub: { stack: "onboard", root: project }, engine, targets, parallel, log });
        const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
        const failed = outcomes.filter((o) => !o.ok);
        if (failed.length > 0) throw new Error(`onboarding bench: ${failed.map((o) => `${o.tenant}: ${o.error}`).join("; ")}`);
        return { tenants, parallel, seconds: elapsed, perMinute: tenants / (elapsed / 60) };
    } finally {
        await fleet.stop();
        await stopAll();
        for (const dir of [project, runDir]) fs.rmSync(dir, { recursive: true, force: true });
    }
}
