/**
 * The one way every command (plan, render, diff, tenant, bench) reads its flags, finds its stack,
 * reports progress and fails: `--help` with the options and an example, required flags named
 * when missing, an unknown stack with a "did you mean", and ordinary mistakes as one-line
 * messages instead of stack traces.
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { ConfigError, suggestion } from "../stacks/config";
import { ROOT, stackNames } from "../evaluator/evaluate";
import { UserError } from "../evaluator/report";

/** A wrong or missing flag: the message, then the command's usage. */
export class UsageError extends UserError {
    constructor(message: string) {
        super(message, 2);
        this.name = "UsageError";
    }
}

export interface OptionSpec {
    type: "string" | "boolean";
    multiple?: boolean;
    /** Placeholder shown in the usage, e.g. "NAME". */
    value?: string;
    required?: boolean;
    default?: string | boolean;
    description: string;
}

export interface CommandSpec {
    /** As typed after `npm run`, e.g. "plan" or "tenant -- add". */
    name: string;
    summary: string;
    options: Record<string, OptionSpec>;
    examples: string[];
}

export function usage(spec: CommandSpec): string {
    const flag = (name: string, o: OptionSpec) => `--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`;
    const synopsis = Object.entries(spec.options)
        .map(([name, o]) => (o.required ? flag(name, o) : `[${flag(name, o)}]`))
        .join(" ");
    const width = Math.max(...Object.entries(spec.options).map(([n, o]) => flag(n, o).length), "--help".length);
    const lines = [
        `Usage: npm run ${spec.name.includes(" -- ") ? spec.name : `${spec.name} --`} ${synopsis}`,
        "",
        spec.summary,
        "",
        "Options:",
        ...Object.entries(spec.options).map(([n, o]) => `  ${flag(n, o).padEnd(width)}  ${o.description}${o.required ? " (required)" : o.default !== undefined ? ` (default: ${o.default})` : ""}${o.multiple ? " (repeatable)" : ""}`),
        `  ${"--help".padEnd(width)}  show this help`,
        "",
        "Example:",
        ...spec.examples.map((e) => `  ${e}`),
    ];
    return lines.join("\n") + "\n";
}

type Values = Record<string, string | boolean | string[] | undefined>;

/** Parses `argv` against the spec; `undefined` when `--help` was asked for. Throws UsageError. */
export function parseCommandArgs(spec: CommandSpec, argv: string[]): Values | undefined {
    if (argv.includes("--help") || argv.includes("-h")) return undefined;
    const options = Object.fromEntries(Object.entries(spec.options).map(([n, o]) => [n, { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.default !== undefined ? { default: o.default } : {}) }]));
    let values: Values;
    try {
        ({ values } = parseArgs({ args: argv, options: options as never, strict: true, allowPositionals: false }) as { values: Values });
    } catch (err) {
        // parseArgs' messages name the flag; the hint about "--" is not for npm run users.
        const message = (err as Error).message.replace(/\. To specify an option argument starting with a dash.*$/s, "").replace(/\n.*$/s, "");
        const unknown = /Unknown option '(--?[^']+)'/.exec(message)?.[1];
        throw new UsageError(unknown ? `unknown option ${unknown}${suggestion(unknown.replace(/^-+/, ""), Object.keys(spec.options)).replace(/'([^']+)'/, "'--$1'")}` : message);
    }
    const missing = Object.entries(spec.options).filter(([n, o]) => o.required && (values[n] === undefined || values[n] === ""));
    if (missing.length > 0) throw new UsageError(`missing required ${missing.map(([n, o]) => `--${n}${o.value ? ` ${o.value}` : ""}`).join(", ")}`);
    return values;
}

/** The stack's name when `Pulumi.<stack>.yaml` exists under `root`; otherwise a UserError naming the stacks there. */
export function requireStack(stack: string, root: string = ROOT): string {
    const stacks = fs.existsSync(root) ? stackNames(root) : [];
    if (stacks.includes(stack)) return stack;
    throw new UserError(`unknown stack ${JSON.stringify(stack)}${suggestion(stack, stacks)}: no Pulumi.${stack}.yaml in ${root} (stacks: ${stacks.join(", ") || "none"})`);
}

/** A folder the command can write into: created if missing; a UserError naming it otherwise. */
export function writableFolder(dir: string, what: string): string {
    const absolute = path.resolve(dir);
    try {
        fs.mkdirSync(absolute, { recursive: true });
        fs.accessSync(absolute, fs.constants.W_OK);
    } catch (err) {
        throw new UserError(`${what} ${dir} is not a writable folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    return absolute;
}

export interface ExitCodes {
    /** Configuration problems (default 2). */
    config: number;
    /** Other ordinary failures (default 1). */
    failure: number;
    /** Bad flags (default 2). */
    usage: number;
}

/**
 * Runs a command: prints the usage for `--help` (exit 0), and turns ordinary failures into
 * messages: bad flags (the usage follows), configuration problems, UserErrors. Anything else is a
 * bug, reported with its stack.
 */
export async function runCommand(spec: CommandSpec, argv: string[], body: (values: Values) => Promise<number>, codes: Partial<ExitCodes> = {}): Promise<number> {
    const exit: ExitCodes = { config: 2, failure: 1, usage: 2, ...codes };
    try {
        const values = parseCommandArgs(spec, argv);
        if (!values) {
            process.stdout.write(usage(spec));
            return 0;
        }
        return await body(values);
    } catch (err) {
        return reportError(spec, err, exit);
    }
}

export function reportError(spec: CommandSpec, err: unknown, exit: ExitCodes): number {
    if (err instanceof UsageError) {
        process.stderr.write(`${spec.name}: ${err.message}\n\n${usage(spec)}`);
        return exit.usage;
    }
    // By name: a program loaded from another checkout (diff's base) throws its own ConfigError class.
    if (err instanceof ConfigError || (err as Error)?.name === "ConfigError") {
        process.stderr.write(`${(err as Error).message}\n`);
        return exit.config;
    }
    if (err instanceof UserError) {
        process.stderr.write(`${spec.name}: ${err.message}\n`);
        return err.exitCode === 1 ? exit.failure : err.exitCode;
    }
    process.stderr.write(`${spec.name}: unexpected error (a bug in agentfleet; please report it with this output):\n${(err as Error)?.stack ?? err}\n`);
    return exit.failure;
}

/** Runs `main` as the process's entry point, setting the exit code. */
export function runAsProgram(main: (argv: string[]) => Promise<number>): void {
    main(process.argv.slice(2)).then(
        (code) => (process.exitCode = code),
        (err) => {
            process.stderr.write(`unexpected error: ${(err as Error)?.stack ?? err}\n`);
            process.exitCode = 1;
        },
    );
}
