/**
 * `npm run render -- --stack <name> --out <dir>`: evaluates a stack offline and writes
 *   <dir>/resources.json         every registered resource with its options, secrets redacted
 *   <dir>/manifests/<cluster>.yaml  every Kubernetes object the program declares, per cluster
 *   <dir>/apps/<tenant>.yaml     the agent chart at the stack's deploy.targetRevision, as Argo CD
 *                                will render it for each tenant
 *   <dir>/plan.json              the rollout steps with their tenants, and the in-tenant wave order
 *   <dir>/.agentfleet-render     the marker: render replaces only a folder holding it (or a missing
 *                                or empty one); anything else, the repository and any folder above
 *                                it, or a folder holding .git, is refused and left untouched
 * The output is written to a temporary folder next to <dir> and then moved into place, so <dir>
 * never mixes files of two runs and an error part-way leaves the previous output as it was.
 * Exit 0 on success; on invalid configuration, the problems on stderr, exit 2, nothing written.
 */
import * as fs from "fs";
import * as path from "path";
import { ROOT } from "../evaluator/evaluate";
import { renderStack } from "../evaluator/render";
import { type CommandSpec, requireStack, runAsProgram, runCommand, userPath } from "./cli";
import { UserError } from "../evaluator/report";

/** The file render writes into every output folder: its mark that the folder is render's to replace. */
export const RENDER_MARKER = ".agentfleet-render";

const MARKER_TEXT = "Written by `npm run render` (agentfleet): this folder is replaced as a whole by the next render into it.\n";

const contains = (folder: string, inside: string) => inside === folder || inside.startsWith(folder.endsWith(path.sep) ? folder : folder + path.sep);

/**
 * Why `target` (absolute) may not be replaced by render, or undefined when it may: render replaces
 * only a missing or empty folder, or one it wrote itself (it holds RENDER_MARKER); never the
 * project, a folder above it, or a git repository.
 */
export function refusalToReplace(target: string, root: string = ROOT): string | undefined {
    const real = (p: string) => (fs.existsSync(p) ? fs.realpathSync(p) : p);
    if (contains(real(target), real(root))) return `${target} is ${real(target) === real(root) ? "the project folder" : `a folder above the project folder ${root}`}; render replaces its output folder as a whole, so give a folder of its own, e.g. --out ${path.join(root, "out", "STACK")}`;
    if (!fs.existsSync(target)) return undefined;
    if (!fs.statSync(target).isDirectory()) return `${target} is a file, not a folder`;
    const entries = fs.readdirSync(target);
    if (entries.includes(".git")) return `${target} holds a git repository (.git); render replaces its output folder as a whole, so give a folder of its own`;
    if (entries.length === 0 || entries.includes(RENDER_MARKER)) return undefined;
    return `${target} holds files render did not write (no ${RENDER_MARKER} in it: ${entries.slice(0, 3).join(", ")}${entries.length > 3 ? ", ..." : ""}); render replaces its output folder as a whole, so it leaves this one untouched: give a new or empty folder`;
}

/**
 * Writes `files` and the marker as the whole content of `outDir` (absolute): into a fresh folder
 * next to it, then swapped into place, so no file of an earlier run stays and a failure leaves the
 * earlier output intact. Refuses a folder render did not write (refusalToReplace), touching nothing.
 */
export function writeFiles(outDir: string, files: Record<string, string>, root: string = ROOT): void {
    const target = path.resolve(outDir);
    const refusal = refusalToReplace(target, root);
    if (refusal) throw new UserError(`--out ${refusal}`);
    const parent = path.dirname(target);
    try {
        fs.mkdirSync(parent, { recursive: true });
    } catch (err) {
        throw new UserError(`cannot create the output folder's parent ${parent} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    let staging: string;
    try {
        staging = fs.mkdtempSync(path.join(parent, `.${path.basename(target)}.render-`));
    } catch (err) {
        throw new UserError(`--out ${target}: cannot write in ${parent} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const previous = `${staging}.previous`;
    try {
        for (const [rel, content] of Object.entries({ ...files, [RENDER_MARKER]: MARKER_TEXT })) {
            const file = path.join(staging, rel);
            fs.mkdirSync(path.dirname(file), { recursive: true });
            fs.writeFileSync(file, content);
        }
        const hadPrevious = fs.existsSync(target);
        if (hadPrevious) fs.renameSync(target, previous);
        try {
            fs.renameSync(staging, target);
        } catch (err) {
            if (hadPrevious) fs.renameSync(previous, target);
            throw err;
        }
        fs.rmSync(previous, { recursive: true, force: true });
    } catch (err) {
        fs.rmSync(staging, { recursive: true, force: true });
        throw new UserError(`--out ${target}: could not write the output (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the previous content is unchanged`);
    }
}

export const RENDER: CommandSpec = {
    name: "render",
    summary: "Evaluates the stack offline and writes resources.json, manifests/<cluster>.yaml, apps/<tenant>.yaml (the agent chart at the stack's deploy.targetRevision) and plan.json. The folder is replaced as a whole; render refuses one it did not write.",
    options: {
        stack: { type: "string", value: "STACK", required: true, description: "stack to render (a Pulumi.<STACK>.yaml in the project root)" },
        out: { type: "string", value: "DIR", required: true, description: `output folder (relative to where you run the command): new, empty, or an earlier render's output (it holds ${RENDER_MARKER}), which is replaced` },
    },
    examples: ["npm run render -- --stack prod --out out/prod"],
};

export function main(argv: string[]): Promise<number> {
    return runCommand(RENDER, argv, async (values) => {
        const stack = requireStack(String(values.stack));
        const out = userPath(String(values.out));
        // Refused before the work, and checked again as the files are written.
        const refusal = refusalToReplace(out);
        if (refusal) throw new UserError(`--out ${refusal}`);
        const result = await renderStack(stack, ROOT, { progress: true });
        for (const note of result.notes) process.stderr.write(`note: ${note}\n`);
        const replacing = fs.existsSync(path.join(out, RENDER_MARKER));
        writeFiles(out, result.files);
        const count = (prefix: string) => Object.keys(result.files).filter((f) => f.startsWith(prefix)).length;
        const chart = result.chart ? ` (agent chart at ${result.chart.revision}, commit ${result.chart.commit.slice(0, 12)})` : "";
        process.stdout.write(
            `Wrote ${Object.keys(result.files).length} files for stack ${stack} to ${out}${replacing ? ", replacing its previous output" : ""}${chart}:\n` +
                `  resources.json, plan.json, manifests/ (${count("manifests/")} cluster${count("manifests/") === 1 ? "" : "s"}), apps/ (${count("apps/")} tenant${count("apps/") === 1 ? "" : "s"})\n`,
        );
        return 0;
    });
}

if (require.main === module) runAsProgram(main);
