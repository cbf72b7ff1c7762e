/**
 * The real Pulumi CLI, driven through the Automation API against a local file backend with
 * passphrase secrets: no Pulumi Cloud, no plugin downloads. The Kubernetes provider built by the
 * toolchain is installed from its file into a Pulumi home of the run's own.
 */
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { EXAMPLE_PASSPHRASE } from "../../tests/doubles/passphrase";

export interface PulumiBins {
    /** Folder holding `pulumi` and `pulumi-language-nodejs`. */
    pulumi: string;
    /** Folder holding `pulumi-resource-kubernetes`. */
    kubernetesProvider: string;
}

export interface PulumiRun {
    stack: Stack;
    workspace: LocalWorkspace;
    env: Record<string, string>;
    /** Runs the CLI itself in the project folder (for what the Automation API does not expose). */
    cli(args: string[]): { status: number; stdout: string; stderr: string };
}

/** The environment every CLI call of the run gets: isolated home and backend, nothing downloaded. */
export function pulumiEnv(runDir: string, bins: PulumiBins): Record<string, string> {
    const home = path.join(runDir, "pulumi-home");
    const state = path.join(runDir, "pulumi-state");
    fs.mkdirSync(home, { recursive: true });
    fs.mkdirSync(state, { recursive: true });
    return {
        PULUMI_HOME: home,
        PULUMI_BACKEND_URL: `file://${state}`,
        PULUMI_CONFIG_PASSPHRASE: EXAMPLE_PASSPHRASE,
        PULUMI_SKIP_UPDATE_CHECK: "true",
        // Nothing is downloaded: the Node.js language host reports every provider package in node_modules,
        // @pulumi/random included, whose provider cannot be built here. The engine's install of reported
        // plugins is best effort, and no e2e stack declares a random resource (tests/git-webhook.spec.ts).
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_IGNORE_AMBIENT_PLUGINS: "true",
        PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "false",
        PATH: `${bins.pulumi}:${process.env.PATH}`,
    };
}

/** Installs the built Kubernetes provider into the run's Pulumi home, at the version @pulumi/kubernetes asks for. */
export function installProvider(env: Record<string, string>, bins: PulumiBins, projectDir: string): void {
    // The version the project's package.json pins for @pulumi/kubernetes: the plugin its program asks for.
    const version = JSON.parse(fs.readFileSync(path.join(projectDir, "package.json"), "utf8")).dependencies["@pulumi/kubernetes"];
    execFileSync(path.join(bins.pulumi, "pulumi"), ["plugin", "install", "resource", "kubernetes", version, "--file", path.join(bins.kubernetesProvider, "pulumi-resource-kubernetes")], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
    });
}

/**
 * Selects (creating if needed) `stackName` of the project in `projectDir` through the real CLI.
 * `hubKubeconfig`: the file every run of the stack gets as KUBECONFIG (the hub's kubeconfig is never configuration).
 */
export async function pulumiStack(projectDir: string, stackName: string, runDir: string, bins: PulumiBins, hubKubeconfig?: string): Promise<PulumiRun> {
    const env = { ...pulumiEnv(runDir, bins), ...(hubKubeconfig ? { KUBECONFIG: hubKubeconfig } : {}) };
    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(bins.pulumi) });
    const workspace = await LocalWorkspace.create({ workDir: projectDir, pulumiCommand, envVars: env });
    const stack = await (async () => {
        try {
            return await LocalWorkspace.selectStack({ stackName, workDir: projectDir }, { pulumiCommand, envVars: env });
        } catch {
            return await LocalWorkspace.createStack({ stackName, workDir: projectDir }, { pulumiCommand, envVars: env });
        }
    })();
    const cli = (args: string[]) => {
        try {
            const stdout = execFileSync(path.join(bins.pulumi, "pulumi"), [...args, "--stack", stackName, "--non-interactive"], {
                cwd: projectDir,
                env: { ...process.env, ...env },
                stdio: ["ignore", "pipe", "pipe"],
                maxBuffer: 64 * 1024 * 1024,
                timeout: 15 * 60_000,
            }).toString();
            return { status: 0, stdout, stderr: "" };
        } catch (err) {
            const e = err as { status?: number; stdout?: Buffer; stderr?: Buffer };
            return { status: e.status ?? 1, stdout: e.stdout?.toString() ?? "", stderr: e.stderr?.toString() ?? "" };
        }
    };
    return { stack, workspace, env, cli };
}
