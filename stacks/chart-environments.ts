/**
 * The environments the agent chart has value files for (`values-<env>.yaml`), read from the
 * chart folder of this checkout. Argo CD skips a missing value file silently
 * (ignoreMissingValueFiles), so an environment without one would deploy with the wrong settings.
 */
import * as fs from "fs";
import * as path from "path";

/** Project folder: the one holding stacks/ (the program's own checkout, also for a diff's base). */
/** The project root (Pulumi.yaml, charts/): relative paths in a stack file are relative to it, whatever the working directory. */
export const PROJECT_DIR = path.resolve(__dirname, "..");

/** Environment names with a `values-<env>.yaml` in the chart, or undefined when the folder is not there. */
export function chartEnvironments(chartPath: string): string[] | undefined {
    const dir = path.resolve(PROJECT_DIR, chartPath);
    if (!fs.existsSync(dir)) return undefined;
    return fs
        .readdirSync(dir)
        .map((f) => /^values-(.+)\.yaml$/.exec(f)?.[1])
        .filter((e): e is string => e !== undefined)
        .sort();
}

/** Whether Argo CD (Go's time.LoadLocation, case-sensitive) knows the IANA time zone. */
export function isTimeZone(zone: string): boolean {
    if (zone === "UTC" || zone === "Local") return zone === "UTC";
    if (Intl.supportedValuesOf("timeZone").includes(zone)) return true;
    try {
        // Aliases (Etc/UTC, America/Argentina/Buenos_Aires) are valid too. ICU ignores case, Go does
        // not: every part of an IANA name starts with a capital letter.
        new Intl.DateTimeFormat("en", { timeZone: zone });
        return zone.split("/").every((part) => /^[A-Z]/.test(part));
    } catch {
        return false;
    }
}
