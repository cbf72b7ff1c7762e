/**
 * The agent chart's git repository for a real-Argo CD run: a local repository the test controls
 * (Argo CD's repo-server clones it through its file:// URL), holding the project's
 * charts/voice-agent at deploy.chartPath. Each commit is a release the test rolls out.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { DEFAULT_CHART_PATH } from "../../stacks/config";

export interface AgentRepo {
    /** file:///… : the stack's deploy.repoURL (the AppProject allows only that). */
    url: string;
    dir: string;
    /** The current commit's SHA. */
    head(): string;
    /**
     * Writes (or, for null, deletes) files relative to the chart folder and commits them;
     * returns the new commit's SHA.
     */
    commit(message: string, files: Record<string, string | null>): string;
}

/** A repository at `dir` whose first commit holds `project`'s agent chart. */
export function createAgentRepo(dir: string, project: string): AgentRepo {
    const git = (...args: string[]) =>
        execFileSync("git", ["-c", "user.name=agentfleet-e2e", "-c", "user.email=e2e@agentfleet.example.net", "-c", "commit.gpgsign=false", ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
            .toString()
            .trim();
    const chart = path.join(dir, DEFAULT_CHART_PATH);
    fs.mkdirSync(chart, { recursive: true });
    fs.cpSync(path.join(project, DEFAULT_CHART_PATH), chart, { recursive: true });
    git("init", "-q", "-b", "main");
    git("add", "-A");
    git("commit", "-qm", "agent chart");
    return {
        url: `file://${dir}`,
        dir,
        head: () => git("rev-parse", "HEAD"),
        commit(message, files) {
            for (const [rel, content] of Object.entries(files)) {
                const file = path.join(chart, rel);
                if (content === null) fs.rmSync(file, { force: true });
                else {
                    fs.mkdirSync(path.dirname(file), { recursive: true });
                    fs.writeFileSync(file, content);
                }
            }
            git("add", "-A");
            git("commit", "-qm", message);
            return git("rev-parse", "HEAD");
        },
    };
}
