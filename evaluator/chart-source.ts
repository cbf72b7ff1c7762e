/**
 * The agent chart as Argo CD fetches it: the files of `deploy.chartPath` at the git revision
 * `deploy.targetRevision`, read from the project's git repository (`git archive`), never the
 * working tree. Argo CD resolves a tag, a branch, a commit SHA, or HEAD (the remote's default
 * branch); here a name is looked up as a local ref first, then as `origin/<name>` (a branch only
 * fetched), and HEAD is the checked-out commit (or the base commit, for the base of a diff).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError } from "../stacks/config-types";
import { UserError } from "./report";

const TARGET_REVISION = "agentfleet:deploy.targetRevision";

/**
 * deploy.targetRevision or deploy.chartPath names nothing in the repository: a configuration
 * problem (the commands exit 2, as for any other), found after the loader, when the chart is read.
 */
export class ChartSourceError extends ConfigError {}

const git = (repo: string, args: string[]) => execFileSync("git", args, { cwd: repo, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 28 });

const tryGit = (repo: string, args: string[]): string | undefined => {
    try {
        return git(repo, args).toString().trim();
    } catch {
        return undefined;
    }
};

/** Top of the git work tree holding `dir`, or undefined outside git. */
export const gitTopLevel = (dir: string): string | undefined => tryGit(dir, ["rev-parse", "--show-toplevel"]);

/** Where revisions are resolved: the repository, and what HEAD means (default: its checked-out commit). */
export interface RevisionContext {
    repo: string;
    head?: string;
}

/** The commit `revision` names in the repository; a UserError naming deploy.targetRevision when none. */
export function resolveRevision(revision: string, context: RevisionContext): string {
    const top = gitTopLevel(context.repo);
    if (!top) throw new UserError(`${TARGET_REVISION}: cannot read the chart at ${JSON.stringify(revision)}: ${context.repo} is not a git repository (the chart is rendered from git, as Argo CD does)`);
    const candidates = revision === "HEAD" && context.head ? [context.head] : [revision, `origin/${revision}`];
    for (const candidate of candidates) {
        // "--end-of-options" keeps a revision starting with "-" from being read as an option.
        const commit = tryGit(top, ["rev-parse", "--verify", "--quiet", "--end-of-options", `${candidate}^{commit}`]);
        if (commit) return commit;
    }
    const tags = (tryGit(top, ["tag", "--list"]) ?? "").split("\n").filter(Boolean);
    const branches = (tryGit(top, ["for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/remotes"]) ?? "").split("\n").filter(Boolean);
    throw new ChartSourceError([
        `${TARGET_REVISION}: ${JSON.stringify(revision)} is not a tag, branch or commit of the repository at ${top}` +
            ` (tags: ${tags.slice(-10).join(", ") || "none"}; branches: ${branches.slice(0, 10).join(", ") || "none"}).` +
            ` Argo CD would fail to fetch it too. Fetch it (git fetch --tags origin), create it (git tag ${revision} <commit>), or set targetRevision to a revision that exists (e.g. HEAD or main).`,
    ]);
}

const extracted = new Map<string, string>();
let cleanupRegistered = false;

/**
 * A folder holding `chartPath` as committed at `revision` (cached per commit for the process, and
 * removed when it exits). Returns the chart folder and the commit it came from.
 */
export function chartAtRevision(revision: string, chartPath: string, context: RevisionContext): { chartDir: string; commit: string } {
    const commit = resolveRevision(revision, context);
    const top = gitTopLevel(context.repo)!;
    // chartPath is relative to the project root, which may sit below the repository's top.
    const inRepo = path.relative(top, path.resolve(context.repo, chartPath)) || ".";
    const key = `${top}\0${commit}\0${inRepo}`;
    let dir = extracted.get(key);
    if (!dir) {
        let archive: Buffer;
        try {
            archive = git(top, ["archive", "--format=tar", commit, "--", inRepo]);
        } catch {
            throw new ChartSourceError([`agentfleet:deploy.chartPath: ${JSON.stringify(chartPath)} does not exist at ${TARGET_REVISION} ${JSON.stringify(revision)} (commit ${commit.slice(0, 12)}); set deploy.chartPath to the chart's folder in the repository at that revision`]);
        }
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-chart-"));
        if (!cleanupRegistered) {
            cleanupRegistered = true;
            process.on("exit", () => {
                for (const d of extracted.values()) fs.rmSync(d, { recursive: true, force: true });
            });
        }
        extracted.set(key, dir);
        execFileSync("tar", ["-x", "-C", dir], { input: archive });
    }
    return { chartDir: path.join(dir, inRepo), commit };
}

/** Whether the working tree has changes under `chartPath` that no commit holds yet. */
export function uncommittedChartChanges(repo: string, chartPath: string): boolean {
    const top = gitTopLevel(repo);
    if (!top) return false;
    const relative = path.relative(top, path.resolve(repo, chartPath));
    return (tryGit(top, ["status", "--porcelain", "--", relative]) ?? "") !== "";
}
