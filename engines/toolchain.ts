/**
 * The real engines agentfleet is proven against, built from Go modules by the wrapper modules in
 * engines/modules/ into a cache outside the repository, keyed by version and by the wrapper's own
 * files, so a second run only checks stamps. Versions are pinned once: the npm packages' versions in
 * package.json for Pulumi and its Kubernetes provider, ENGINE_VERSIONS below for the rest; each
 * wrapper's go.mod must agree (checked before building, and by `npm test`).
 */
import { spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DEFAULT_ARGOCD_VERSION } from "../stacks/config";
import { type CommandSpec, UsageError, runAsProgram, runCommand } from "../commands/cli";
import { UserError } from "../evaluator/report";

const ROOT = path.resolve(__dirname, "..");
const MODULES = path.join(__dirname, "modules");

/** Versions that are not npm packages' versions. Kubernetes pins etcd: see its go.mod. */
export const ENGINE_VERSIONS = { kubernetes: "v1.34.4", etcd: "v3.6.4", kwok: "v0.7.0", argocd: DEFAULT_ARGOCD_VERSION } as const;

/**
 * The Kubernetes provider module has no tags of its own: each @pulumi/kubernetes release maps to its
 * release commit's pseudo-version. Only releases the Go module proxy serves can be listed here.
 */
export const KUBERNETES_PROVIDER_COMMITS: Record<string, string> = { "4.25.0": "v4.0.0-20260115033456-f47bc2d6f199" };

/** The version package.json pins for an npm dependency (Pulumi's engines are built at the same versions). */
export const npmVersion = (pkg: string): string => JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).dependencies[pkg];

/** Where built engines live: $AGENTFLEET_CACHE, else ~/.cache/agentfleet (never inside the repository). */
export function cacheRoot(): string {
    return process.env.AGENTFLEET_CACHE ?? path.join(os.homedir(), ".cache", "agentfleet");
}

interface Binary {
    /** File name in the engine's bin folder. */
    name: string;
    /** Go package to build, relative to the wrapper module (a path) or a module path. */
    pkg: string;
    ldflags?: string[];
    /** Other names the binary is installed under (symlinks in the same folder). */
    aliases?: string[];
}

/** The Argo CD components the fleet's hub runs, by the names the argocd engine's binary answers to. */
export const ARGOCD_COMPONENTS = ["argocd-application-controller", "argocd-applicationset-controller", "argocd-repo-server", "argocd-notifications"] as const;
/** The argo-cd module's manifests (under manifests/base) that run those components; the engine keeps them in manifests/. */
const ARGOCD_MANIFESTS = [
    "application-controller/argocd-application-controller-statefulset.yaml",
    "applicationset-controller/argocd-applicationset-controller-deployment.yaml",
    "repo-server/argocd-repo-server-deployment.yaml",
    "notification/argocd-notifications-controller-deployment.yaml",
];

export interface Engine {
    name: string;
    version: string;
    /** Folder under engines/modules. */
    module: string;
    /** The Go toolchain to build with (GOTOOLCHAIN; the proxy serves it): when the module needs a newer Go than the installed one. Default: the installed Go. */
    toolchain?: string;
    /** `require` lines the wrapper's go.mod must hold: module path and the version it must be at. */
    pins: Array<[string, string]>;
    binaries: Binary[];
    /** Files written into the build copy of the wrapper before building (from the module cache). */
    prepare?: (buildDir: string, run: Runner) => Promise<void>;
    /** Files this engine provides besides binaries, copied into its folder from the module cache. */
    files?: (outDir: string, run: Runner, buildDir: string) => Promise<void>;
}

export function engines(): Engine[] {
    const pulumi = npmVersion("@pulumi/pulumi");
    const k8sProvider = npmVersion("@pulumi/kubernetes");
    const kube = ENGINE_VERSIONS.kubernetes;
    const kubeVersionFlags = [
        `-X k8s.io/component-base/version.gitVersion=${kube}`,
        `-X k8s.io/component-base/version.gitMajor=${kube.split(".")[0].slice(1)}`,
        `-X k8s.io/component-base/version.gitMinor=${kube.split(".")[1]}`,
        "-X k8s.io/component-base/version.gitTreeState=clean",
    ];
    return [
        {
            // Argo CD's own controllers, one binary installed under each component's name (main.go dispatches on it).
            name: "argocd",
            version: ENGINE_VERSIONS.argocd,
            module: "argocd",
            // argo-cd v3.6's go.mod says `go 1.27.0`; the Go module proxy serves this toolchain.
            toolchain: "go1.27.3",
            pins: [["github.com/argoproj/argo-cd/v3", ENGINE_VERSIONS.argocd]],
            binaries: [{ name: "argocd", pkg: ".", aliases: [...ARGOCD_COMPONENTS], ldflags: [`-X github.com/argoproj/argo-cd/v3/common.version=${ENGINE_VERSIONS.argocd.slice(1)}`] }],
            // The CRDs of the same version (the API server prunes fields a CRD lacks), and the script the
            // repo-server runs for every revision (in its image it is on PATH).
            files: async (outDir, run, buildDir) => {
                const dir = JSON.parse(await run("go", ["mod", "download", "-json", `github.com/argoproj/argo-cd/v3@${ENGINE_VERSIONS.argocd}`], buildDir)).Dir as string;
                const crds = path.join(dir, "manifests", "crds");
                const target = path.join(outDir, "crds");
                fs.mkdirSync(target, { recursive: true });
                for (const f of fs.readdirSync(crds).filter((f) => f.endsWith("-crd.yaml"))) fs.copyFileSync(path.join(crds, f), path.join(target, f));
                // The Deployments Argo CD's own install runs each component with: which argocd-cm and
                // argocd-cmd-params-cm keys reach which component, as which environment variable.
                fs.mkdirSync(path.join(outDir, "manifests"), { recursive: true });
                for (const f of ARGOCD_MANIFESTS) fs.copyFileSync(path.join(dir, "manifests", "base", f), path.join(outDir, "manifests", path.basename(f)));
                fs.mkdirSync(path.join(outDir, "bin"), { recursive: true });
                fs.copyFileSync(path.join(dir, "hack", "git-verify-wrapper.sh"), path.join(outDir, "bin", "git-verify-wrapper.sh"));
                fs.chmodSync(path.join(outDir, "bin", "git-verify-wrapper.sh"), 0o755);
            },
        },
        {
            name: "etcd",
            version: ENGINE_VERSIONS.etcd,
            module: "etcd",
            pins: [["go.etcd.io/etcd/server/v3", ENGINE_VERSIONS.etcd]],
            binaries: [{ name: "etcd", pkg: "go.etcd.io/etcd/server/v3" }],
        },
        {
            name: "kubernetes",
            version: kube,
            module: "kubernetes",
            pins: [["k8s.io/kubernetes", kube]],
            binaries: [
                { name: "kube-apiserver", pkg: "k8s.io/kubernetes/cmd/kube-apiserver", ldflags: kubeVersionFlags },
                { name: "kube-controller-manager", pkg: "k8s.io/kubernetes/cmd/kube-controller-manager", ldflags: kubeVersionFlags },
                { name: "kube-scheduler", pkg: "k8s.io/kubernetes/cmd/kube-scheduler", ldflags: kubeVersionFlags },
            ],
        },
        {
            name: "kwok",
            version: ENGINE_VERSIONS.kwok,
            module: "kwok",
            pins: [["sigs.k8s.io/kwok", ENGINE_VERSIONS.kwok]],
            binaries: [{ name: "kwok", pkg: "sigs.k8s.io/kwok/cmd/kwok", ldflags: [`-X sigs.k8s.io/kwok/pkg/consts.Version=${ENGINE_VERSIONS.kwok}`] }],
        },
        {
            name: "pulumi",
            version: `v${pulumi}`,
            module: "pulumi",
            pins: [
                ["github.com/pulumi/pulumi/pkg/v3", `v${pulumi}`],
                ["github.com/pulumi/pulumi/sdk/v3", `v${pulumi}`],
            ],
            binaries: [
                { name: "pulumi", pkg: "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", ldflags: [`-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v${pulumi}`] },
                { name: "pulumi-language-nodejs", pkg: "./cmd/pulumi-language-nodejs", ldflags: [`-X main.version=${pulumi}`] },
            ],
        },
        {
            name: "pulumi-kubernetes",
            version: `v${k8sProvider}`,
            module: "pulumi-kubernetes",
            pins: [
                ["github.com/pulumi/pulumi-kubernetes/provider/v4", KUBERNETES_PROVIDER_COMMITS[k8sProvider] ?? `(no release commit known for @pulumi/kubernetes ${k8sProvider}: add it to KUBERNETES_PROVIDER_COMMITS)`],
                ["github.com/pulumi/pulumi-kubernetes/sdk/v4", `v${k8sProvider}`],
            ],
            binaries: [{ name: "pulumi-resource-kubernetes", pkg: ".", ldflags: [`-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=${k8sProvider}`] }],
            // The provider's main embeds files its module zip lacks; write them from the committed sources.
            prepare: async (buildDir, run) => {
                // `go mod download -json` fetches the module first: `go list -m` prints no Dir for one not downloaded yet (a cold cache).
                const dir = JSON.parse(await run("go", ["mod", "download", "-json", "github.com/pulumi/pulumi-kubernetes/provider/v4"], buildDir)).Dir as string;
                const cmd = path.join(dir, "cmd", "pulumi-resource-kubernetes");
                fs.copyFileSync(path.join(cmd, "schema.json"), path.join(buildDir, "schema-embed.json"));
                fs.copyFileSync(path.join(cmd, "terraform-mapping.json"), path.join(buildDir, "terraform-mapping-embed.json"));
            },
        },
    ];
}

/** Checks each wrapper's go.mod against the pinned versions; returns the mismatches. */
export function pinMismatches(list: Engine[] = engines()): string[] {
    const problems: string[] = [];
    for (const engine of list) {
        const goMod = fs.readFileSync(path.join(MODULES, engine.module, "go.mod"), "utf8");
        for (const [mod, version] of engine.pins) {
            const found = new RegExp(`^\\s*(?:require\\s+)?${mod.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} (\\S+)`, "m").exec(goMod)?.[1];
            if (found !== version) problems.push(`engines/modules/${engine.module}/go.mod requires ${mod} ${found ?? "(nothing)"}, but ${engine.name} is pinned to ${version}`);
        }
    }
    return problems;
}

type Runner = (cmd: string, args: string[], cwd: string) => Promise<string>;

/** A runner whose Go is `toolchain` (GOTOOLCHAIN), the installed one when absent; on failure the error names the command and ends with its output. */
const runner = (toolchain = "local"): Runner => (cmd, args, cwd) =>
    new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { cwd, env: { ...process.env, GOTOOLCHAIN: toolchain, GOFLAGS: "-mod=readonly" }, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.on("error", (e) => reject(new Error(`${cmd} ${args.join(" ")}: ${e.message}`)));
        child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`\`${cmd} ${args.join(" ")}\` (in ${cwd}) exited ${code}:\n${(err || out).trim().split("\n").slice(-30).join("\n")}`))));
    });

/** A key for the wrapper's files and the Go version: a change to either means a rebuild. */
function wrapperKey(engine: Engine, goVersion: string): string {
    const hash = crypto.createHash("sha256").update(goVersion);
    const walk = (dir: string) => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
            const full = path.join(dir, entry.name);
            if (entry.isDirectory()) walk(full);
            // Files the build writes (git-ignored) are not the wrapper's.
            else if (entry.name.endsWith("-embed.json")) continue;
            else hash.update(path.relative(MODULES, full)).update(fs.readFileSync(full));
        }
    };
    walk(path.join(MODULES, engine.module));
    for (const b of engine.binaries) hash.update(b.name + b.pkg + (b.ldflags ?? []).join(" ") + (b.aliases ?? []).join(" "));
    // What an engine provides besides binaries is part of it too.
    if (engine.files) hash.update(engine.files.toString());
    return hash.digest("hex").slice(0, 12);
}

export interface BuiltEngine {
    name: string;
    version: string;
    bin: string;
    /** The engine's folder (bin/ and any files it provides). */
    dir: string;
    /** Whether this run built it (false: found in the cache). */
    built: boolean;
    seconds: number;
}

export interface EnsureOptions {
    /** Only these engines (by name); all when absent. */
    only?: string[];
    log?: (line: string) => void;
}

/** Builds, or finds already built, each engine; returns where each one's binaries are. */
export async function ensureEngines(options: EnsureOptions = {}): Promise<Record<string, BuiltEngine>> {
    const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    const list = engines().filter((e) => !options.only || options.only.includes(e.name));
    const mismatches = pinMismatches(list);
    if (mismatches.length > 0) throw new Error(`engine pins disagree:\n  ${mismatches.join("\n  ")}`);
    const start = Date.now();
    const result: Record<string, BuiltEngine> = {};
    for (const engine of list) {
        const run = runner(engine.toolchain);
        // The engine's own Go version keys its cache (a toolchain the proxy serves is fetched here, once).
        const goVersion = (await run("go", ["env", "GOVERSION"], ROOT).catch((e) => Promise.reject(new Error(`Go${engine.toolchain ? ` (${engine.toolchain} from the Go module proxy)` : ""} is needed to build the ${engine.name} engine: ${e.message}`)))).trim();
        const dir = path.join(cacheRoot(), "engines", `${engine.name}-${engine.version}-${wrapperKey(engine, goVersion)}`);
        const bin = path.join(dir, "bin");
        const stamp = path.join(dir, "complete");
        const began = Date.now();
        const elapsed = () => `${((Date.now() - began) / 1000).toFixed(1)}s`;
        if (fs.existsSync(stamp)) {
            result[engine.name] = { name: engine.name, version: engine.version, bin, dir, built: false, seconds: 0 };
            log(`engines: ${engine.name} ${engine.version}: cached (${bin})`);
            continue;
        }
        log(`engines: ${engine.name} ${engine.version}: ${engine.binaries.length > 0 ? `building ${engine.binaries.map((b) => b.name).join(", ")} (a cold build takes minutes)` : "fetching"}`);
        const heartbeat = setInterval(() => log(`engines: ${engine.name} ${engine.version}: still building (${elapsed()})`), 30_000);
        try {
            // Build from a copy, so files written for the build never land in the repository.
            const buildDir = path.join(dir, "module");
            fs.rmSync(dir, { recursive: true, force: true });
            fs.cpSync(path.join(MODULES, engine.module), buildDir, { recursive: true });
            await engine.prepare?.(buildDir, run);
            await engine.files?.(dir, run, buildDir);
            for (const binary of engine.binaries) {
                const ldflags = ["-s", "-w", ...(binary.ldflags ?? [])].join(" ");
                await run("go", ["build", "-trimpath", "-ldflags", ldflags, "-o", path.join(bin, binary.name), binary.pkg], buildDir).catch((e: Error) => {
                    throw new Error(`engine ${engine.name} ${engine.version} failed to build ${binary.name}: ${e.message}`);
                });
                for (const alias of binary.aliases ?? []) fs.symlinkSync(binary.name, path.join(bin, alias));
                log(`engines: ${engine.name} ${engine.version}: built ${binary.name}${binary.aliases ? ` (also as ${binary.aliases.join(", ")})` : ""} (${elapsed()})`);
            }
            fs.rmSync(buildDir, { recursive: true, force: true });
            fs.writeFileSync(stamp, `${new Date().toISOString()} ${goVersion}\n`);
        } finally {
            clearInterval(heartbeat);
        }
        result[engine.name] = { name: engine.name, version: engine.version, bin, dir, built: true, seconds: (Date.now() - began) / 1000 };
    }
    log(`engines: ready in ${((Date.now() - start) / 1000).toFixed(1)}s`);
    return result;
}

export const ENGINES_COMMAND: CommandSpec = {
    name: "engines",
    summary: `Builds (or finds already built) the real engines from Go modules into ${path.join("~", ".cache", "agentfleet", "engines")} ($AGENTFLEET_CACHE to move it); prints each engine's bin folder.`,
    options: {
        only: { type: "string", multiple: true, value: "ENGINE", description: `build only this engine (${engines().map((e) => e.name).join(", ")})` },
        json: { type: "boolean", description: "print the engines' bin folders as JSON" },
    },
    examples: ["npm run engines", "npm run engines -- --only kubernetes --only etcd"],
};

export function main(argv: string[]): Promise<number> {
    return runCommand(ENGINES_COMMAND, argv, async (values) => {
        const only = values.only as string[] | undefined;
        const unknown = (only ?? []).filter((name) => !engines().some((e) => e.name === name));
        if (unknown.length > 0) throw new UsageError(`unknown engine ${unknown.join(", ")}; engines: ${engines().map((e) => e.name).join(", ")}`);
        let built: Record<string, BuiltEngine>;
        try {
            built = await ensureEngines({ only });
        } catch (err) {
            throw new UserError((err as Error).message);
        }
        if (values.json) process.stdout.write(JSON.stringify(built, null, 2) + "\n");
        else for (const e of Object.values(built)) process.stdout.write(`${e.name} ${e.version}: ${e.bin}\n`);
        return 0;
    });
}

if (require.main === module) runAsProgram(main);
