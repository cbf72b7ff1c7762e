/**
 * What a stack's state holds, read the way anyone with the backend and the secrets provider can:
 * `pulumi stack export --show-secrets`, every secret in plaintext. The search finds a cluster's
 * admin kubeconfig in it, whatever the encoding the engines used for it.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { Cluster } from "./fleet";
import type { PulumiBins } from "./pulumi";

/** `pulumi stack export --show-secrets` of `stack` of Pulumi project `project` on the run's backend, as text. */
export function exportWithSecrets(env: Record<string, string>, bins: PulumiBins, project: string, stack: string): string {
    // The CLI names a stack within the project of the folder it runs in.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-export-"));
    try {
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${project}\nruntime: nodejs\n`);
        return execFileSync(path.join(bins.pulumi, "pulumi"), ["stack", "export", "--show-secrets", "--stack", stack, "--non-interactive"], {
            cwd: dir,
            env: { ...process.env, ...env },
            stdio: ["ignore", "pipe", "pipe"],
            maxBuffer: 256 * 1024 * 1024,
            timeout: 5 * 60_000,
        }).toString();
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** Pieces of a cluster's admin credential to look for: the kubeconfig's base64 fields, and a line of each PEM body (as text, or JSON-escaped). */
function adminMaterial(cluster: Cluster): Array<[string, string]> {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const pemLine = (pem: string) => pem.split("\n").find((l) => l.length > 40 && !l.startsWith("-----"))!;
    return [
        [`${cluster.name}'s client-certificate-data`, b64(cluster.admin.cert!)],
        [`${cluster.name}'s client-key-data`, b64(cluster.admin.key!)],
        [`${cluster.name}'s admin certificate (PEM)`, pemLine(cluster.admin.cert!)],
        [`${cluster.name}'s admin key (PEM)`, pemLine(cluster.admin.key!)],
    ];
}

/** What marks any kubeconfig, whoever's. */
const KUBECONFIG_MARKERS: Array<[string, RegExp]> = [
    ["kind: Config", /kind[\\"]*:\s*[\\"]*Config\b/],
    ["client-key-data", /client-key-data/],
    ["client-certificate-data", /client-certificate-data/],
];

/**
 * The kubeconfig material in an exported state (`exportWithSecrets`), each finding named: any piece
 * of the `clusters`' admin credentials and any kubeconfig marker, anywhere in the state.
 */
export function kubeconfigFindings(exported: string, clusters: Cluster[]): string[] {
    const deployment = JSON.parse(exported).deployment ?? {};
    const resources: Array<{ urn: string; type: string; inputs?: Record<string, unknown> }> = deployment.resources ?? [];
    const parts: Array<[string, string]> = [
        ["the state outside its resources", JSON.stringify({ ...deployment, resources: [] })],
        ...resources.map((r): [string, string] => [r.urn, JSON.stringify(r)]),
    ];
    const material = clusters.flatMap(adminMaterial);
    return parts.flatMap(([where, text]) => [
        ...material.filter(([, piece]) => text.includes(piece)).map(([what]) => `${what} in ${where}`),
        ...KUBECONFIG_MARKERS.filter(([, marker]) => marker.test(text)).map(([what]) => `${what} in ${where}`),
    ]);
}
