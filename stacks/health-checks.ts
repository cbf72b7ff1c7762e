/**
 * The custom Argo CD health checks shipped with agentfleet, read from charts/health-checks/<key>/
 * and turned into argocd-cm entries (split-key form, Argo CD v2.1+).
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";

export const HEALTH_CHECKS_DIR = path.resolve(__dirname, "..", "charts", "health-checks");

export interface HealthCheck {
    /** argocd-cm split-key suffix, `<group>_<Kind>`, or just `<Kind>` for core kinds, e.g. "apps_Deployment". */
    key: string;
    /** Exact contents of health.lua. */
    script: string;
    /** The script needs Lua's standard libraries (string, math, ...), which argocd-cm withholds by default. */
    useOpenLibs: boolean;
    /** Absolute path of the check's folder. */
    dir: string;
}

const KEY_PATTERN = /^([a-z0-9]([a-z0-9.-]*[a-z0-9])?_)?[A-Z][A-Za-z0-9]*$/;

/** Every charts/health-checks/<key>/health.lua, sorted by key. */
export function loadHealthChecks(root: string = HEALTH_CHECKS_DIR): HealthCheck[] {
    return fs
        .readdirSync(root, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name)
        .sort()
        .map((key) => {
            const dir = path.join(root, key);
            if (!KEY_PATTERN.test(key)) {
                throw new Error(`health check folder ${key} is not an argocd-cm key like apps_Deployment or Service`);
            }
            // A misnamed script would otherwise silently fall back to the built-in check.
            if (!fs.existsSync(path.join(dir, "health.lua"))) {
                throw new Error(`health check folder ${dir} has no health.lua`);
            }
            return {
                key,
                script: fs.readFileSync(path.join(dir, "health.lua"), "utf8"),
                useOpenLibs: readUseOpenLibs(dir),
                dir,
            };
        });
}

/** argocd-cm data for the checks: the script under its health key, plus useOpenLibs where needed. */
export function healthCheckCmValues(checks: HealthCheck[]): Record<string, string> {
    const values: Record<string, string> = {};
    for (const check of checks) {
        values[`resource.customizations.health.${check.key}`] = check.script;
        if (check.useOpenLibs) {
            values[`resource.customizations.useOpenLibs.${check.key}`] = "true";
        }
    }
    return values;
}

/**
 * options.yaml exists only for a check that truly needs the standard libraries; the goal is that
 * none does. It holds exactly `useOpenLibs: <boolean>`.
 */
function readUseOpenLibs(dir: string): boolean {
    const file = path.join(dir, "options.yaml");
    if (!fs.existsSync(file)) {
        return false;
    }
    const options: unknown = YAML.parse(fs.readFileSync(file, "utf8"));
    const isExactlyUseOpenLibs =
        typeof options === "object" &&
        options !== null &&
        Object.keys(options).join() === "useOpenLibs" &&
        typeof (options as { useOpenLibs: unknown }).useOpenLibs === "boolean";
    if (!isExactlyUseOpenLibs) {
        throw new Error(`${file} must contain exactly "useOpenLibs: true" or "useOpenLibs: false"`);
    }
    return (options as { useOpenLibs: boolean }).useOpenLibs;
}
