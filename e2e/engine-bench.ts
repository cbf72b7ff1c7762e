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

export interface EngineBenchRow {
    tenants: number;
    program: "agentfleet hub" | "floor: N Secrets";
    previewSeconds: number;
    upSeconds: number;
    resources: number;
}

/** A hub stack file with `n` token tenants on (never contacted) loopback servers, every secret encrypted. */
function hubStackFile(n: number, hubKubeconfig: string): string {
    const crypter = newPassphraseCrypter(EXAMPLE_PASSPHRASE);
    const ca = Buffer.from("-----BEGIN CERTIFICATE-----\nEXAMPLE-ONLY\n-----END CERTIFICATE-----\n").toString("base64");
    const names = Array.from({ length: n }, (_, i) => `bench-${String(i).padStart(5, "0")}`);
    const config = {
        "agentfleet:environment": "dev",
        "agentfleet:hub": { domain: "argocd.bench.example.net", chartRepository: "e2e/argo-cd-standin", loopbackTenants: true },
        "agentfleet:hubKubeconfig": { secure: crypter.encrypt(hubKubeconfig) },
        "agentfleet:deploy": { repoURL: "https://github.com/example-org/agentfleet.git", targetRevision: "HEAD" },
        "agentfleet:tenants": names.map((name, i) => ({ name, server: `https://127.0.0.${2 + Math.floor(i / 60000)}:${1025 + (i % 60000)}`, ring: i < n / 10 ? "canary" : "main", region: "loopback", credentials: "token" })),
        "agentfleet:tenantCredentials": Object.fromEntries(names.map((name) => [name, { bearerToken: { secure: crypter.encrypt(`example-only-token-${name}`) }, caData: { secure: crypter.encrypt(ca) } }])),
        "agentfleet:notificationSecrets": { webhookToken: { secure: crypter.encrypt("example-only-webhook-token") } },
        "agentfleet:rollout": {
            steps: [
                { name: "canary", matchExpressions: [{ key: "ring", operator: "In", values: ["canary"] }], maxUpdate: "10%" },
                { name: "main", matchExpressions: [{ key: "ring", operator: "In", values: ["main"] }], maxUpdate: "10%" },
            ],
        },
    };
    return stringify({ encryptionsalt: crypter.encryptionSalt, config }, { lineWidth: 0 });
}

/** The floor: one provider and `n` Secrets with a similar payload, nothing else. */
function floorProject(dir: string, n: number, hubKubeconfig: string): void {
    const crypter = newPassphraseCrypter(EXAMPLE_PASSPHRASE);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), stringify({ name: "agentfleet-bench-floor", runtime: { name: "nodejs", options: { typescript: false } }, main: "index.js" }));
    fs.writeFileSync(path.join(dir, "Pulumi.floor.yaml"), stringify({ encryptionsalt: crypter.encryptionSalt, config: { "agentfleet-bench-floor:kubeconfig": { secure: crypter.encrypt(hubKubeconfig) } } }));
    fs.writeFileSync(
        path.join(dir, "index.js"),
        `const pulumi = require("@pulumi/pulumi");
const k8s = require("@pulumi/kubernetes");
const cfg = new pulumi.Config();
const provider = new k8s.Provider("hub", { kubeconfig: cfg.requireSecret("kubeconfig") });
const ns = new k8s.core.v1.Namespace("floor", { metadata: { name: "floor" } }, { provider });
for (let i = 0; i < ${n}; i++) {
    new k8s.core.v1.Secret("s" + i, { metadata: { name: "s" + i, namespace: ns.metadata.name, labels: { tenant: "t" + i, ring: "main" } },
        stringData: pulumi.secret({ name: "t" + i, server: "https://127.0.0.2:" + (1025 + i), config: JSON.stringify({ bearerToken: "example-only-" + i }) }) }, { provider });
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
        const project = projectCopy();
        const crds = path.join(project, "e2e", "argo-cd-standin", "crds-source");
        fs.mkdirSync(crds, { recursive: true });
        for (const f of fs.readdirSync(path.join(engines["argocd-crds"].dir, "crds"))) fs.copyFileSync(path.join(engines["argocd-crds"].dir, "crds", f), path.join(crds, f));
        for (const n of sizes) {
            const stackName = `bench${n}`;
            fs.writeFileSync(path.join(project, `Pulumi.${stackName}.yaml`), hubStackFile(n, fleet.hub.kubeconfig));
            const hub = await pulumiStack(project, stackName, path.join(runDir, `hub-${n}`), bins);
            installProvider(hub.env, bins, JSON.parse(fs.readFileSync(path.join(project, "package.json"), "utf8")).dependencies["@pulumi/kubernetes"]);
            const floorDir = path.join(runDir, `floor-${n}`);
            floorProject(floorDir, n, fleet.hub.kubeconfig);
            const floor = await pulumiStack(floorDir, "floor", path.join(runDir, `floor-state-${n}`), bins);
            installProvider(floor.env, bins, JSON.parse(fs.readFileSync(path.join(project, "package.json"), "utf8")).dependencies["@pulumi/kubernetes"]);
            for (const [program, run] of [["floor: N Secrets", floor], ["agentfleet hub", hub]] as const) {
                log(`bench: ${n} tenants, ${program}: preview`);
                const previewSeconds = await seconds(() => run.stack.preview());
                log(`bench: ${n} tenants, ${program}: up (${previewSeconds.toFixed(1)}s preview)`);
                let resources = 0;
                const upSeconds = await seconds(async () => {
                    const up = await run.stack.up({ onOutput: () => undefined });
                    resources = Object.values(up.summary.resourceChanges ?? {}).reduce((a, b) => a + (b ?? 0), 0);
                });
                log(`bench: ${n} tenants, ${program}: ${upSeconds.toFixed(1)}s up, ${resources} resources`);
                rows.push({ tenants: n, program, previewSeconds, upSeconds, resources });
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
