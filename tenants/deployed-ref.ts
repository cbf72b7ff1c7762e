/**
 * The hub stack file as committed at the ref deploy.yml deploys from. deploy.yml runs `pulumi up`
 * with that file on every push, so a token is revoked only once that file no longer uses it:
 * otherwise the next unrelated merge re-applies the revoked token and Argo CD gets 401.
 */
import { spawnSync } from "child_process";
import * as YAML from "yaml";
import { PROJECT, fleetFolder, parseTenantFile } from "../stacks/config";
import { CommandError, inventoryView, tenantEntries } from "./stack-file";

/** The ref deploy.yml deploys from (it runs on pushes to main), as the user's clone knows it. */
export const DEFAULT_DEPLOYED_REF = "origin/main";

/** What to do when the check cannot run; `none` skips it knowingly. */
const HOW_TO_CHOOSE = `pass --deployed-ref REF (the branch deploy.yml deploys, as your clone knows it), or --deployed-ref none to skip this check knowingly`;

/**
 * The text of `fileName` (in project root `root`) committed at `ref`; undefined when the file is
 * not in that commit. A CommandError when `root` is not in a git repository or `ref` does not exist.
 */
export function committedStackFile(root: string, fileName: string, ref: string): string | undefined {
    const git = (...args: string[]) => spawnSync("git", args, { cwd: root, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    const inRepo = git("rev-parse", "--show-toplevel");
    if (inRepo.error || inRepo.status !== 0) throw new CommandError([`${root} is not in a git repository, so the ${fileName} deploy.yml applies cannot be read: ${HOW_TO_CHOOSE}`]);
    if (git("rev-parse", "--verify", "--quiet", `${ref}^{commit}`).status !== 0) {
        throw new CommandError([`git has no ref ${ref} in ${root} (run git fetch?), so the ${fileName} deploy.yml applies cannot be read: ${HOW_TO_CHOOSE}`]);
    }
    // `REF:./path` is relative to the working directory: the project root inside the repository.
    const shown = git("show", `${ref}:./${fileName}`);
    return shown.status === 0 ? withCommittedInventory(root, fileName, ref, shown.stdout) : undefined;
}

/**
 * The stack file's text at `ref` with the tenant files committed there listed under
 * `agentfleet:tenants` (the view the tenant commands read, stack-file.ts); a stack file from before
 * the inventory lists them itself.
 */
function withCommittedInventory(root: string, fileName: string, ref: string, stackText: string): string {
    const config = YAML.parse(stackText)?.config ?? {};
    if (config[`${PROJECT}:tenants`] !== undefined) return stackText;
    const stack = fileName.replace(/^Pulumi\.(.*)\.yaml$/, "$1");
    const folder = fleetFolder(stack, config[`${PROJECT}:fleet`]);
    const listed = spawnSync("git", ["ls-tree", "--name-only", `${ref}:./${folder}`], { cwd: root, encoding: "utf8" });
    if (listed.status !== 0) return stackText;
    const entries = listed.stdout
        .split("\n")
        .filter((f) => f.endsWith(".yaml"))
        .map((f) => {
            const name = f.slice(0, -".yaml".length);
            const value = parseTenantFile(f, name, spawnSync("git", ["show", `${ref}:./${folder}/${f}`], { cwd: root, encoding: "utf8" }).stdout ?? "", []);
            return { name, ...(value !== null && typeof value === "object" ? (value as Record<string, unknown>) : {}) };
        });
    // The view exactly as readView makes it from a working tree, so checkStack reads it too; a
    // file inventoryView cannot lay out the same way is listed by hand (read only).
    try {
        return inventoryView(stackText, entries);
    } catch {
        const doc = YAML.parseDocument(stackText);
        doc.setIn(["config", `${PROJECT}:tenants`], doc.createNode(entries));
        return doc.toString();
    }
}

/** How far back `lastListedEntry` looks: a removal is merged, then finished, within days. */
const HISTORY_DEPTH = 50;

/**
 * The tenant's entry in the newest of the last HISTORY_DEPTH first-parent versions of `fileName` at
 * `ref` that lists it: a removed tenant's server, to check its admin kubeconfig against.
 */
export function lastListedEntry(root: string, fileName: string, ref: string, tenant: string): Record<string, unknown> | undefined {
    // One listing of the commits, then one read per commit (committedStackFile checks the repository and ref once more each time).
    const commits = spawnSync("git", ["rev-list", "--first-parent", `--max-count=${HISTORY_DEPTH}`, ref], { cwd: root, encoding: "utf8" });
    if (commits.error || commits.status !== 0) return undefined;
    for (const commit of commits.stdout.split("\n").filter(Boolean)) {
        const shown = spawnSync("git", ["show", `${commit}:./${fileName}`], { cwd: root, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
        const entry = tenantEntries(shown.status === 0 ? withCommittedInventory(root, fileName, commit, shown.stdout) : "").find((e) => e.name === tenant);
        if (entry) return entry;
    }
    return undefined;
}
