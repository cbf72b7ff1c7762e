/**
 * `npm run diff -- --stack <name> --base <git ref>`: the offline drift preview of a change, with
 * no credentials. Evaluates and renders the stack at the base ref and in the working tree, and
 * prints a markdown diff of both layers (each side's agent chart read from git at that side's
 * deploy.targetRevision, as Argo CD reads it; HEAD on the base side means the base commit):
 *   - the objects Pulumi owns (added / changed / removed, field by field), secrets redacted;
 *   - the agent chart as Argo CD will render it for each tenant, grouped by tenant in rollout order;
 *   - each tenant's rollout step.
 * Exit codes: 0 no change, 3 changes, 1 error.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ChartSourceError, gitTopLevel } from "../evaluator/chart-source";
import { type CommandSpec, requireStack, runAsProgram, runCommand } from "./cli";
import { UserError } from "../evaluator/report";
import { ROOT, STACK_RESOURCE_TYPE, resourcesJson } from "../evaluator/evaluate";
import { type RenderResult, renderStack } from "../evaluator/render";
import { formatTable } from "./table";

export const EXIT_NO_CHANGES = 0;
export const EXIT_ERROR = 1;
export const EXIT_CHANGES = 3;

type Obj = Record<string, any>;

/** What the diff compares: per-resource redacted inputs, per-tenant chart objects, per-tenant steps. */
export interface Snapshot {
    resources: Map<string, Obj>;
    apps: Map<string, Map<string, Obj>>;
    steps: Map<string, number>;
    /** Tenants in rollout order. */
    order: string[];
    /** Each resource's key (in `resources`) by its URN. */
    urns: Map<string, string>;
    /** The URNs each resource was known by before (its aliases), by key. */
    aliases: Map<string, string[]>;
}

export const EMPTY_SNAPSHOT: Snapshot = { resources: new Map(), apps: new Map(), steps: new Map(), order: [], urns: new Map(), aliases: new Map() };

const resourceKey = (r: { type: string; name: string }) => `${r.type}::${r.name}`;

export function snapshotOf(result: RenderResult): Snapshot {
    const resources = new Map<string, Obj>();
    const urns = new Map<string, string>();
    const aliases = new Map<string, string[]>();
    // The hub stack's resources by type and name; each tenant stack's (its registration) under its stack's name.
    for (const evaluation of [result.evaluation, ...(result.registrations ?? [])]) {
        const keyOf = (r: { type: string; name: string }) => (evaluation === result.evaluation ? resourceKey(r) : `${evaluation.stack}: ${resourceKey(r)}`);
        for (const r of resourcesJson(evaluation)) if (r.type !== STACK_RESOURCE_TYPE || evaluation === result.evaluation) resources.set(keyOf(r as { type: string; name: string }), r);
        for (const r of evaluation.resources) urns.set(r.urn, keyOf(r));
        for (const r of evaluation.resources.filter((r) => r.aliases.length > 0)) aliases.set(keyOf(r), r.aliases);
    }
    const apps = new Map<string, Map<string, Obj>>();
    const steps = new Map<string, number>();
    for (const app of result.apps) {
        apps.set(app.tenant, new Map(app.objects.map((o) => [`${o.kind}/${o.metadata?.name}`, o])));
        steps.set(app.tenant, app.step);
    }
    return { resources, apps, steps, order: result.apps.map((a) => a.tenant), urns, aliases };
}

/**
 * The base's resources keyed as the head knows them: a base resource whose URN a head resource
 * names as an alias is the same resource to Pulumi (renamed or moved, not replaced), so it is
 * compared with that resource instead of showing as removed and added.
 */
export function baseResourcesByAlias(base: Snapshot, head: Snapshot): Map<string, Obj> {
    const resources = new Map(base.resources);
    for (const [headKey, aliases] of head.aliases) {
        const baseKey = aliases.map((urn) => base.urns.get(urn)).find((k) => k !== undefined && !head.resources.has(k));
        if (baseKey === undefined || resources.has(headKey)) continue;
        resources.set(headKey, resources.get(baseKey)!);
        resources.delete(baseKey);
    }
    return resources;
}

export interface FieldChange {
    path: string;
    before: unknown;
    after: unknown;
}

/**
 * The fields that identify an entry of a list of objects, in the order they are tried: Kubernetes'
 * own merge keys (containers, env, volumes, ports by name), AppProject destinations by server and
 * namespace, label matchers by key, resource kinds by group and kind.
 */
const IDENTITIES = [["name"], ["server", "namespace"], ["key"], ["group", "kind"]];

const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object";

/**
 * Each entry of both lists by its identity (`name=voice-agent`, `server=https://..., namespace=voice-agent`),
 * when one rule identifies every entry on both sides uniquely; otherwise undefined (compared by position).
 */
function byIdentity(before: unknown[], after: unknown[]): [Map<string, unknown>, Map<string, unknown>] | undefined {
    const entries = [...before, ...after];
    if (entries.length === 0 || !entries.every((e) => isObj(e) && !Array.isArray(e))) return undefined;
    for (const fields of IDENTITIES) {
        if (!entries.every((e) => ["string", "number"].includes(typeof (e as Obj)[fields[0]]))) continue;
        const id = (e: Obj) => fields.filter((f) => e[f] !== undefined).map((f) => `${f}=${e[f]}`).join(", ");
        const keyed = (list: unknown[]) => new Map(list.map((e) => [id(e as Obj), e]));
        const sides: [Map<string, unknown>, Map<string, unknown>] = [keyed(before), keyed(after)];
        if (sides[0].size === before.length && sides[1].size === after.length) return sides;
    }
    return undefined;
}

/** Leaf-level differences between two JSON values, as dotted paths; list entries by identity where they have one. */
export function fieldChanges(before: unknown, after: unknown, prefix = ""): FieldChange[] {
    if (Array.isArray(before) && Array.isArray(after)) {
        const keyed = byIdentity(before, after);
        if (keyed) {
            const [a, b] = keyed;
            return [...new Set([...a.keys(), ...b.keys()])].flatMap((id) => fieldChanges(a.get(id), b.get(id), `${prefix}[${id}]`));
        }
    }
    if (isObj(before) && isObj(after) && Array.isArray(before) === Array.isArray(after)) {
        const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
        return keys.flatMap((k) => fieldChanges(before[k], after[k], Array.isArray(before) ? `${prefix}[${k}]` : prefix ? `${prefix}.${k}` : k));
    }
    return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ path: prefix || ".", before, after }];
}

const show = (v: unknown): string => {
    if (v === undefined) return "(absent)";
    const text = JSON.stringify(v);
    return text.length > 100 ? `${text.slice(0, 97)}...` : text;
};

/** One change as markdown; multi-line strings (scripts, templates) as a line diff. */
function formatChange(c: FieldChange): string {
    if (typeof c.before === "string" && typeof c.after === "string" && (c.before.includes("\n") || c.after.includes("\n"))) {
        const a = c.before.split("\n");
        const b = c.after.split("\n");
        const removed = a.filter((l) => !b.includes(l)).map((l) => `- ${l}`);
        const added = b.filter((l) => !a.includes(l)).map((l) => `+ ${l}`);
        const lines = [...removed, ...added];
        const shown = lines.slice(0, 30);
        return [`- \`${c.path}\`: text changed`, "  ```diff", ...shown.map((l) => `  ${l}`), ...(lines.length > shown.length ? [`  ... ${lines.length - shown.length} more lines`] : []), "  ```"].join("\n");
    }
    return `- \`${c.path}\`: ${show(c.before)} → ${show(c.after)}`;
}

interface Section {
    lines: string[];
    changes: number;
}

function diffMaps(before: Map<string, Obj>, after: Map<string, Obj>, heading: (key: string, mark: string) => string, indent = ""): Section {
    const lines: string[] = [];
    let changes = 0;
    const keys = [...new Set([...before.keys(), ...after.keys()])].sort();
    for (const k of keys) {
        const a = before.get(k);
        const b = after.get(k);
        if (!a) {
            changes++;
            lines.push(heading(k, "+ added"));
        } else if (!b) {
            changes++;
            lines.push(heading(k, "- removed"));
        } else {
            const fields = fieldChanges(a, b);
            if (fields.length === 0) continue;
            changes++;
            lines.push(heading(k, "~ changed"), ...fields.map((f) => formatChange(f).replace(/^/gm, indent)));
        }
    }
    return { lines, changes };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** The markdown report and the number of changed items. */
export function formatDiff(stack: string, baseRef: string, base: Snapshot, head: Snapshot, notes: string[] = []): { markdown: string; changes: number } {
    const out: string[] = [`## agentfleet offline diff: stack \`${stack}\` (${baseRef} → working tree)`, "", ...notes.map((n) => `> ${n}`), ...(notes.length ? [""] : [])];

    const stepText = (s: number | undefined) => (s === undefined ? "—" : s === -1 ? "none (never synced)" : String(s + 1));
    const tenants = [...head.order, ...base.order.filter((t) => !head.order.includes(t))];
    const stepRows = tenants.filter((t) => base.steps.get(t) !== head.steps.get(t)).map((t) => [t, stepText(base.steps.get(t)), stepText(head.steps.get(t))]);

    const pulumi = diffMaps(baseResourcesByAlias(base, head), head.resources, (k, mark) => `#### ${mark}: \`${k}\``);
    const chart: Section = { lines: [], changes: 0 };
    for (const tenant of tenants) {
        const section = diffMaps(base.apps.get(tenant) ?? new Map(), head.apps.get(tenant) ?? new Map(), (k, mark) => `- ${mark}: \`${k}\``, "  ");
        if (section.changes === 0) continue;
        chart.changes += section.changes;
        chart.lines.push(`#### ${tenant} (rollout step ${stepText(head.steps.get(tenant) ?? base.steps.get(tenant))})`, ...section.lines, "");
    }
    const changes = stepRows.length + pulumi.changes + chart.changes;
    if (changes === 0) {
        out.push("No changes: the stack declares the same objects and every tenant renders the same agent chart.");
        return { markdown: out.join("\n") + "\n", changes };
    }
    out.push(`**${plural(changes, "change")}**: ${plural(stepRows.length, "rollout step")}, ${pulumi.changes} Pulumi-owned, ${chart.changes} in tenants. Secrets are shown as "[secret]".`, "");
    if (stepRows.length) out.push("### Rollout steps", "", formatTable(["tenant", "step (base)", "step (now)"], stepRows, { markdown: true }));
    if (pulumi.changes) out.push("### Objects Pulumi owns", "", ...pulumi.lines, "");
    if (chart.changes) out.push("### Agent chart per tenant, in rollout order", "", ...chart.lines);
    return { markdown: out.join("\n").replace(/\n{3,}/g, "\n\n") + "\n", changes };
}

/** The commit `ref` names; a UserError naming --base when it names none. */
export function baseCommit(ref: string, root: string = ROOT): string {
    const top = gitTopLevel(root);
    if (!top) throw new UserError(`--base ${ref}: ${root} is not a git repository`);
    try {
        return execFileSync("git", ["rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`], { cwd: root, stdio: ["ignore", "pipe", "pipe"] }).toString().trim();
    } catch {
        const branches = execFileSync("git", ["for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/remotes"], { cwd: root }).toString().split("\n").filter(Boolean);
        throw new UserError(`--base ${JSON.stringify(ref)} is not a branch, tag or commit of this repository (branches: ${branches.slice(0, 10).join(", ") || "none"}); fetch it first, e.g. git fetch origin main`);
    }
}

/** A copy of the project at `ref` (git archive), sharing this checkout's node_modules. */
export function checkoutRef(ref: string, root: string = ROOT): string {
    const archive = execFileSync("git", ["archive", "--format=tar", baseCommit(ref, root)], { cwd: root, maxBuffer: 1 << 28, stdio: ["ignore", "pipe", "pipe"] });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentfleet-base-"));
    execFileSync("tar", ["-x", "-C", dir], { input: archive });
    fs.symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir");
    return dir;
}

// By name: the base ref's program throws its own copy of the ConfigError class.
const isConfigError = (err: unknown) => (err as Error)?.name === "ConfigError";

export async function diffStack(stack: string, baseRef: string, root: string = ROOT, options: { progress?: boolean } = {}): Promise<{ markdown: string; changes: number }> {
    const commit = baseCommit(baseRef, root);
    const headResult = await renderStack(stack, root, options);
    const head = snapshotOf(headResult);
    const baseDir = checkoutRef(commit, root);
    const notes: string[] = [...headResult.notes];
    let base = EMPTY_SNAPSHOT;
    try {
        // The base's chart comes from this repository too; its HEAD is the base commit.
        if (fs.existsSync(path.join(baseDir, `Pulumi.${stack}.yaml`))) base = snapshotOf(await renderStack(stack, baseDir, { ...options, repo: root, head: commit }));
        else notes.push(`Stack ${stack} does not exist at ${baseRef}: everything is new.`);
    } catch (err) {
        // The base may predate a fix; the change under review is what matters. A chart revision
        // missing here (a tag not fetched) is not the base's fault: comparing with nothing would mislead.
        if (!isConfigError(err) || err instanceof ChartSourceError) throw err;
        notes.push(`The configuration at ${baseRef} did not evaluate (${(err as Error).message.split("\n")[0]}); compared against nothing.`);
    } finally {
        fs.rmSync(baseDir, { recursive: true, force: true });
    }
    return formatDiff(stack, baseRef, base, head, notes);
}

export const DIFF: CommandSpec = {
    name: "diff",
    summary: "Prints a markdown diff of the stack between a git ref and the working tree: the objects Pulumi owns, each tenant's rollout step, and the agent chart per tenant at each side's deploy.targetRevision. Exit 0 no change, 3 changes, 1 error.",
    options: {
        stack: { type: "string", value: "STACK", required: true, description: "stack to compare (a Pulumi.<STACK>.yaml in the project root)" },
        base: { type: "string", value: "REF", default: "HEAD", description: "git branch, tag or commit to compare against" },
    },
    examples: ["npm run diff -- --stack prod --base origin/main"],
};

export function main(argv: string[]): Promise<number> {
    return runCommand(
        DIFF,
        argv,
        async (values) => {
            const stack = requireStack(String(values.stack));
            const { markdown, changes } = await diffStack(stack, String(values.base), ROOT, { progress: true });
            process.stdout.write(markdown);
            return changes > 0 ? EXIT_CHANGES : EXIT_NO_CHANGES;
        },
        { config: EXIT_ERROR, failure: EXIT_ERROR, usage: EXIT_ERROR },
    );
}

if (require.main === module) runAsProgram(main);
