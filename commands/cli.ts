/**
 * The one way every command (plan, render, diff, status, hub, tenant, bench) reads its flags, finds
 * its stack, resolves the user's paths, checks for the Pulumi CLI, reports progress and fails:
 * `--help` with the options and an example, required flags named when missing, unknown flags and
 * stacks with a "did you mean", a hint when npm took the flags for itself (the `--` forgotten),
 * and ordinary mistakes as one-line messages instead of stack traces.
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { ConfigError, suggestion } from "../stacks/config";
import { ROOT, stackNames } from "../evaluator/evaluate";
import { UserError } from "../evaluator/report";
import { cacheRoot, npmVersion } from "../engines/toolchain";

/** A wrong or missing flag: the message, then the command's usage. */
export class UsageError extends UserError {
    constructor(message: string) {
        super(message, 2);
        this.name = "UsageError";
    }
}

/** A flag as the parser sees it. */
export interface FlagSpec {
    type: "string" | "boolean";
    multiple?: boolean;
    default?: string | boolean;
    /** A numeric flag: its value is checked and returned as a number. */
    number?: NumberSpec;
}

export interface NumberSpec {
    integer?: boolean;
    /** Smallest value allowed; omitted: any positive number. */
    min?: number;
    max?: number;
}

export interface OptionSpec extends FlagSpec {
    /** Placeholder shown in the usage, e.g. "NAME". */
    value?: string;
    required?: boolean;
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

export type Values = Record<string, string | boolean | string[] | number | undefined>;

/** What parseFlags returns for `flags`, typed per flag. */
export type FlagValues<T extends Record<string, FlagSpec>> = {
    [K in keyof T]?: T[K] extends { number: NumberSpec } ? number : T[K] extends { type: "boolean" } ? boolean : T[K] extends { multiple: true } ? string[] : string;
};

const describeNumber = (n: NumberSpec) =>
    `${n.integer ? "a whole number" : "a number"}${n.min === undefined ? (n.integer ? " of at least 1" : " greater than 0") : n.max !== undefined ? ` from ${n.min} to ${n.max}` : ` of at least ${n.min}`}`;

/** The value of a numeric flag, or a UsageError saying what it must be. */
function numberOf(name: string, spec: NumberSpec, text: string): number {
    const n = text.trim() === "" ? NaN : Number(text);
    const min = spec.min ?? (spec.integer ? 1 : 0);
    const ok = Number.isFinite(n) && (!spec.integer || Number.isInteger(n)) && (spec.min === undefined && !spec.integer ? n > 0 : n >= min) && (spec.max === undefined || n <= spec.max);
    if (!ok) throw new UsageError(`--${name} must be ${describeNumber(spec)}, not ${JSON.stringify(text)}`);
    return n;
}

/**
 * Flags npm took for itself: `npm run plan --stack prod` (no `--`) runs the script without
 * `--stack`, and npm exports it as npm_config_stack. Only under `npm run`, and only flags not given.
 */
function swallowedByNpm(names: string[], argv: string[], env: NodeJS.ProcessEnv): string[] {
    if (env.npm_lifecycle_event === undefined) return [];
    const given = (n: string) => argv.some((a) => a === `--${n}` || a.startsWith(`--${n}=`));
    return names.filter((n) => env[`npm_config_${n.replace(/-/g, "_")}`] !== undefined && !given(n));
}

/**
 * Parses `argv` strictly against `flags`: an unknown flag is refused with a "did you mean", a
 * flag npm swallowed with a hint about `--`, a numeric flag's bad value with what it must be.
 * `example` is shown with the npm hint. Throws UsageError.
 */
export function parseFlags(flags: Record<string, FlagSpec>, argv: string[], example: string, env: NodeJS.ProcessEnv = process.env): Values {
    const swallowed = swallowedByNpm(Object.keys(flags), argv, env);
    if (swallowed.length > 0) {
        throw new UsageError(`npm took ${swallowed.map((n) => `--${n}`).join(", ")} for itself: put -- between the command and its flags, as in: ${example}`);
    }
    // A negative number after a flag is its value, not a flag: "--interval -5" is a bad interval.
    const args: string[] = [];
    for (let i = 0; i < argv.length; i++) {
        const takesValue = argv[i].startsWith("--") && flags[argv[i].slice(2)]?.type === "string";
        if (takesValue && /^-\.?\d/.test(argv[i + 1] ?? "")) args.push(`${argv[i]}=${argv[++i]}`);
        else args.push(argv[i]);
    }
    const options = Object.fromEntries(Object.entries(flags).map(([n, o]) => [n, { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.default !== undefined ? { default: o.default } : {}) }]));
    let values: Values;
    try {
        ({ values } = parseArgs({ args, options: options as never, strict: true, allowPositionals: false }) as { values: Values });
    } catch (err) {
        // parseArgs' messages name the flag; the hint about "--" is not for npm run users.
        const message = (err as Error).message.replace(/\. To specify an option argument starting with a dash.*$/s, "").replace(/\n.*$/s, "");
        const unknown = /Unknown option '(--?[^']+)'/.exec(message)?.[1];
        const unexpected = /Unexpected argument '([^']*)'/.exec(message)?.[1];
        if (unknown) throw new UsageError(`unknown option ${unknown}${suggestion(unknown.replace(/^-+/, ""), Object.keys(flags)).replace(/'([^']+)'/, "'--$1'")}`);
        if (unexpected !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(unexpected)}: every value follows its flag (--name value)`);
        throw new UsageError(message);
    }
    for (const [n, o] of Object.entries(flags)) {
        if (o.number && values[n] !== undefined) values[n] = numberOf(n, o.number, String(values[n]));
    }
    return values;
}

/** Parses `argv` against the spec; `undefined` when `--help` was asked for. Throws UsageError. */
export function parseCommandArgs(spec: CommandSpec, argv: string[], env: NodeJS.ProcessEnv = process.env): Values | undefined {
    if (argv.includes("--help") || argv.includes("-h")) return undefined;
    const values = parseFlags(spec.options, argv, spec.examples[0], env);
    const missing = Object.entries(spec.options).filter(([n, o]) => o.required && (values[n] === undefined || values[n] === ""));
    if (missing.length > 0) throw new UsageError(`missing required ${missing.map(([n, o]) => `--${n}${o.value ? ` ${o.value}` : ""}`).join(", ")}`);
    return values;
}

/** The folder the user ran the command in: npm runs scripts in the project root and passes the user's folder as INIT_CWD. */
export function userCwd(env: NodeJS.ProcessEnv = process.env): string {
    return env.INIT_CWD || process.cwd();
}

/** A path the user gave (a flag's value), as an absolute path: relative ones are from the user's folder. */
export function userPath(given: string, env: NodeJS.ProcessEnv = process.env): string {
    return path.resolve(userCwd(env), given);
}

/** Whether an executable `pulumi` is on the PATH of `env`. */
export function pulumiOnPath(env: NodeJS.ProcessEnv = process.env): boolean {
    return (env.PATH ?? "").split(path.delimiter).some((dir) => {
        if (!dir) return false;
        try {
            fs.accessSync(path.join(dir, "pulumi"), fs.constants.X_OK);
            return true;
        } catch {
            return false;
        }
    });
}

/** Where `npm run engines` puts the Pulumi CLI: a folder it already built, else the pattern of one. */
function builtPulumiFolder(): string {
    const engines = path.join(cacheRoot(), "engines");
    const built = (fs.existsSync(engines) ? fs.readdirSync(engines) : [])
        .filter((d) => /^pulumi-v\d/.test(d))
        .map((d) => path.join(engines, d, "bin"))
        .find((bin) => fs.existsSync(path.join(bin, "pulumi")));
    return built ?? path.join(engines, `pulumi-v${npmVersion("@pulumi/pulumi")}-<key>`, "bin");
}

/**
 * Refuses, before any work, a command that needs the Pulumi CLI when there is none on PATH: one
 * line saying so, and how to get it. `what` is what needs it, e.g. "npm run hub".
 */
export function requirePulumiCli(what: string, env: NodeJS.ProcessEnv = process.env): void {
    if (pulumiOnPath(env)) return;
    const folder = builtPulumiFolder();
    throw new UserError(
        `${what} needs the Pulumi CLI, and there is no pulumi on PATH: install it (https://www.pulumi.com/docs/install/), or build it with \`npm run engines\`, which puts it in ${folder} (it prints the folder), and put that folder on PATH: export PATH="${folder}:$PATH"`,
    );
}

/** The stack's name when `Pulumi.<stack>.yaml` exists under `root`; otherwise a UserError naming the stacks there. */
export function requireStack(stack: string, root: string = ROOT): string {
    const stacks = fs.existsSync(root) ? stackNames(root) : [];
    if (stacks.includes(stack)) return stack;
    throw new UserError(`unknown stack ${JSON.stringify(stack)}${suggestion(stack, stacks)}: no Pulumi.${stack}.yaml in ${root} (stacks: ${stacks.join(", ") || "none"})`);
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
