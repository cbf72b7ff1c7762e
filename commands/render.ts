/**
 * `npm run render -- --stack <name> --out <dir>`: evaluates a stack offline and writes
 *   <dir>/resources.json         every registered resource with its options, secrets redacted
 *   <dir>/manifests/<cluster>.yaml  every Kubernetes object the program declares, per cluster
 *   <dir>/apps/<tenant>.yaml     the agent chart at the stack's deploy.targetRevision, as Argo CD
 *                                will render it for each tenant
 *   <dir>/plan.json              the rollout steps with their tenants, and the in-tenant wave order
 * The output is written to a temporary folder next to <dir> and then moved into place, so <dir>
 * never mixes files of two runs and an error part-way leaves the previous output as it was.
 * Exit 0 on success; on invalid configuration, the problems on stderr, exit 2, nothing written.
 */
import * as fs from "fs";
import * as path from "path";
import { ROOT } from "../evaluator/evaluate";
import { renderStack } from "../evaluator/render";
import { type CommandSpec, requireStack, runAsProgram, runCommand } from "./cli";
import { UserError } from "../evaluator/report";

/**
 * Writes `files` as the whole content of `outDir`: into a fresh folder next to it, then swapped
 * into place, so no file of an earlier run stays and a failure leaves the earlier output intact.
 */
export function writeFiles(outDir: string, files: Record<string, string>): void {
    const target = path.resolve(outDir);
    const parent = path.dirname(target);
    try {
        fs.mkdirSync(parent, { recursive: true });
    } catch (err) {
        throw new UserError(`cannot create the output folder's parent ${parent} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (fs.existsSync(target) && !fs.statSync(target).isDirectory()) throw new UserError(`--out ${outDir} is a file, not a folder`);
    let staging: string;
    try {
        staging = fs.mkdtempSync(path.join(parent, `.${path.basename(target)}.render-`));
    } catch (err) {
        throw new UserError(`--out ${outDir}: cannot write in ${parent} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const previous = `${staging}.previous`;
    try {
        for (const [rel, content] of Object.entries(files)) {
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
        throw new UserError(`--out ${outDir}: could not write the output (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the previous content is unchanged`);
    }
}

export const RENDER: CommandSpec = {
    name: "render",
    summary: "Evaluates the stack offline and writes resources.json, manifests/<cluster>.yaml, apps/<tenant>.yaml (the agent chart at the stack's deploy.targetRevision) and plan.json. The folder is replaced as a whole.",
    options: {
        stack: { type: "string", value: "STACK", required: true, description: "stack to render (a Pulumi.<STACK>.yaml in the project root)" },
        out: { type: "string", value: "DIR", required: true, description: "output folder; its previous content is replaced" },
    },
    examples: ["npm run render -- --stack prod --out out/prod"],
};

export function main(argv: string[]): Promise<number> {
    return runCommand(RENDER, argv, async (values) => {
        const stack = requireStack(String(values.stack));
        const out = String(values.out);
        const result = await renderStack(stack, ROOT, { progress: true });
        for (const note of result.notes) process.stderr.write(`note: ${note}\n`);
        writeFiles(out, result.files);
        const count = (prefix: string) => Object.keys(result.files).filter((f) => f.startsWith(prefix)).length;
        const chart = result.chart ? ` (agent chart at ${result.chart.revision}, commit ${result.chart.commit.slice(0, 12)})` : "";
        process.stdout.write(
            `Wrote ${Object.keys(result.files).length} files for stack ${stack} to ${out}, replacing its previous content${chart}:\n` +
                `  resources.json, plan.json, manifests/ (${count("manifests/")} cluster${count("manifests/") === 1 ? "" : "s"}), apps/ (${count("apps/")} tenant${count("apps/") === 1 ? "" : "s"})\n`,
        );
        return 0;
    });
}

if (require.main === module) runAsProgram(main);
