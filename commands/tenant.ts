/**
 * `npm run tenant -- <command>`: the tenant clusters of a hub stack. `add`, `list` and `remove`
 * edit the stack file (keeping its comments and formatting byte for byte, checked with the
 * project's loader before anything is written); `bootstrap`, `rotate` and `migrate` run tenants'
 * own onboarding stacks (tenants/). Credentials go to `pulumi config set --secret` on standard
 * input, never to the terminal or a command line.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { type CredentialMode, ConfigError, DEFAULT_AGENT_NAMESPACE, PROJECT, fleetFolder, stepIndexes, suggestion } from "../stacks/config";
import { type OnboardingEngine, automationEngine } from "../tenants/engine";
import { type CheckedKubeconfig, credentialCommands, credentialKey, parseKubeconfig, pulumiSetArgs, pulumiSetCommand, readTenantKubeconfig, shellQuote, withTenantKubeconfig } from "../tenants/kubeconfig";
import { DEFAULT_DEPLOYED_REF, committedStackFile, lastListedEntry } from "../tenants/deployed-ref";
import { migrateTenant } from "../tenants/migrate";
import { type HubStack, type OnboardMode, type OnboardTarget, onboardTenants, pendingTenants } from "../tenants/onboard";
import { onboardingStackName } from "../tenants/onboarding-program";
import { type TenantEntry, CommandError, TENANTS_KEY, addTenant, checkStack, decommissionTenant, isObject, readView, removeTenant, splitStackFile, storedCredentialFields, tenantEntries, tenantFileConflict, writeView } from "../tenants/stack-file";
import { type FlagSpec, type FlagValues, UsageError, parseFlags, pulumiOnPath, requirePulumiCli, requireStack, userCwd } from "./cli";
import { UserError } from "../evaluator/report";
import { ROOT } from "../evaluator/evaluate";
import { withStackLock, writeFileAtomic } from "../tenants/stack-lock";
import { formatTable } from "./table";

// The tenants/ modules, for callers that used them from here.
export { type CheckedKubeconfig, CommandError, type TenantEntry, addTenant, checkStack, credentialCommands, decommissionTenant, parseKubeconfig, removeTenant, shellQuote };

export const USAGE = `Usage: npm run tenant -- <command> [options]

  bootstrap --stack STACK (--name NAME ... | --all-pending) (--kubeconfig FILE | --kubeconfig-dir DIR)
          [--parallel N] [--context NAME]
          [--server URL --ring RING --region REGION [--env ENV] [--namespace NS ...] [--label KEY=VALUE ...]]
          Runs each tenant's onboarding stack (<stack>-tenant-<name>: argocd-manager on the tenant)
          and stores its token and CA in the hub stack; --server/--ring/--region add a new tenant.
          --kubeconfig-dir reads DIR/<name>.yaml. Runs up to --parallel (default 4) at a time.
  rotate  --stack STACK (--name NAME ... | --all) (--kubeconfig FILE | --kubeconfig-dir DIR) [--parallel N]
          [--finish [--deployed-ref REF|none]]
          Gives the tenants new tokens and stores them in the hub stack; the old tokens stay valid.
          Then pulumi up the hub and merge the stack file to main, then rotate --finish: it checks
          the hub registered the new token and the stack file at REF (default origin/main, what
          deploy.yml applies) holds it, and revokes the old one.
  migrate --stack STACK --name NAME --kubeconfig FILE [--context NAME]
          Moves a tenant bootstrapped inside the hub stack (before onboarding stacks) to its own
          onboarding stack, touching nothing on any cluster (docs/operations.md, "Migrating to onboarding stacks").
  add     --stack STACK --name NAME --kubeconfig FILE --server URL --ring RING --region REGION
          [--env ENV] [--namespace NS ...] [--label KEY=VALUE ...]
          [--credentials bootstrap|token] [--context NAME]
          bootstrap (the default) is the bootstrap command; token stores the kubeconfig's token and CA.
  list    --stack STACK
  split-inventory --stack STACK
          Moves the tenant entries of a stack file that still lists agentfleet:tenants into the
          tenant inventory, one file each (fleet/<stack>/<tenant>.yaml), and removes the key from
          the stack file (its other comments kept). Refuses to overwrite a tenant file with other
          content; one with the same content is kept, so it can run again.
  remove  --stack STACK --name NAME [--kubeconfig FILE | --kubeconfig-dir DIR] [--context NAME]
          [--decommission] [--deployed-ref REF|none]
          A bootstrap tenant's onboarding stack is destroyed (its token revoked, its agent namespaces
          kept) once the stack file at REF (default origin/main) no longer lists the tenant: until
          then remove edits the stack file only; merge that, then run remove again to destroy it.
          Destroying needs the tenant's admin kubeconfig (no state holds it).
          --decommission: the cluster is gone, its onboarding stack is dropped without contacting it.

Every command takes --project-root DIR (default: this repository); relative paths are from the
folder you run npm in. Edits lock the stack file (Pulumi.<stack>.yaml.lock) and replace it
atomically, so commands can run at the same time. bootstrap, rotate, migrate, and remove of a
bootstrap tenant need the Pulumi CLI on PATH, and so does add --credentials token to store the
credential; the onboarding stacks use the hub stack's backend and secrets provider (the same
pulumi login and passphrase or KMS key). The admin kubeconfig is only read: each onboarding
stack's run gets a private copy through KUBECONFIG (deleted afterwards), never stored in any state.

Examples:
  npm run tenant -- bootstrap --stack prod --name acme --kubeconfig ./acme.yaml \
      --server https://acme.k3s.example.net:6443 --ring canary --region eu-west
  npm run tenant -- bootstrap --stack prod --all-pending --kubeconfig-dir ./kubeconfigs --parallel 8
  npm run tenant -- list --stack prod
  npm run tenant -- remove --stack prod --name acme --kubeconfig ./acme.yaml
`;

/** The credential fields stored in `tenantCredentials.<tenant>` of the hub stack. */
const CREDENTIAL_FIELDS = ["bearerToken", "caData"];

type PulumiResult = { status: "stored" } | { status: "missing" } | { status: "failed"; detail: string };

/** Runs `pulumi` with `input` on standard input; "missing" when the CLI is not on PATH. */
function runPulumi(args: string[], input: string, cwd: string, env: NodeJS.ProcessEnv): Promise<PulumiResult> {
    return new Promise((resolve) => {
        const child = spawn("pulumi", args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ENOENT" ? { status: "missing" } : { status: "failed", detail: err.message }));
        child.on("close", (code) => resolve(code === 0 ? { status: "stored" } : { status: "failed", detail: output.trim() || `exit code ${code}` }));
        // A CLI that exits without reading its input closes the pipe; its exit status reports why.
        child.stdin.on("error", () => undefined);
        child.stdin.end(input);
    });
}


// ---------------------------------------------------------------------------------------------
// Commands

export interface CommandIO {
    stdout(text: string): void;
    stderr(text: string): void;
    /** Environment of the Pulumi CLI; its PATH decides whether the CLI is found. */
    env: NodeJS.ProcessEnv;
    /** Directory relative paths are given from (`npm run` itself runs in the project root). */
    cwd: string;
    /** The Pulumi engine of a hub stack's onboarding stacks (default: the Automation API; specs: a fake). */
    engine?: (hub: HubStack) => OnboardingEngine;
}

const defaultIO = (): CommandIO => ({
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    cwd: userCwd(),
});

const common = { stack: { type: "string" }, "project-root": { type: "string" } } as const satisfies Record<string, FlagSpec>;
/** The flags that describe a tenant entry to add (add, bootstrap of a new tenant). */
const newEntry = {
    server: { type: "string" },
    ring: { type: "string" },
    region: { type: "string" },
    env: { type: "string" },
    namespace: { type: "string", multiple: true },
    label: { type: "string", multiple: true },
} as const satisfies Record<string, FlagSpec>;
const parallel = { type: "string", number: { integer: true, min: 1, max: 64 } } as const satisfies FlagSpec;
const OPTIONS = {
    add: {
        ...common,
        ...newEntry,
        name: { type: "string" },
        kubeconfig: { type: "string" },
        credentials: { type: "string" },
        context: { type: "string" },
    },
    list: { ...common },
    remove: { ...common, name: { type: "string" }, decommission: { type: "boolean" }, "deployed-ref": { type: "string" }, kubeconfig: { type: "string" }, "kubeconfig-dir": { type: "string" }, context: { type: "string" } },
    bootstrap: {
        ...common,
        name: { type: "string", multiple: true },
        "all-pending": { type: "boolean" },
        kubeconfig: { type: "string" },
        "kubeconfig-dir": { type: "string" },
        parallel,
        context: { type: "string" },
        ...newEntry,
    },
    rotate: { ...common, name: { type: "string", multiple: true }, all: { type: "boolean" }, finish: { type: "boolean" }, "deployed-ref": { type: "string" }, kubeconfig: { type: "string" }, "kubeconfig-dir": { type: "string" }, parallel, context: { type: "string" } },
    migrate: { ...common, name: { type: "string" }, kubeconfig: { type: "string" }, context: { type: "string" } },
    "split-inventory": { ...common },
} as const satisfies Record<string, Record<string, FlagSpec>>;

/** The command's flags, parsed strictly (an unknown one with a "did you mean"); a UsageError otherwise. */
const flagsOf = <C extends keyof typeof OPTIONS>(command: C, argv: string[], io: CommandIO): FlagValues<(typeof OPTIONS)[C]> =>
    parseFlags(OPTIONS[command], argv, `npm run tenant -- ${command} --stack STACK ...`, io.env) as FlagValues<(typeof OPTIONS)[C]>;

/** The real onboarding engine runs the Pulumi CLI: refused before any work without one (an injected engine is the specs' fake). */
const requirePulumiFor = (what: string, io: CommandIO) => {
    if (!io.engine) requirePulumiCli(what, io.env);
};

/** The ref whose stack file deploy.yml applies (--deployed-ref, default origin/main); undefined with `none`: not checked. */
const deployedRefOf = (given: unknown): string | undefined => (given === "none" ? undefined : typeof given === "string" ? given : DEFAULT_DEPLOYED_REF);

const engineFor = (io: CommandIO, hub: HubStack): OnboardingEngine => (io.engine ?? ((h) => automationEngine({ hubStack: h.stack, root: h.root, env: io.env as Record<string, string> })))(hub);

function required(values: Record<string, unknown>, ...names: string[]): void {
    const missing = names.filter((n) => values[n] === undefined || values[n] === "");
    if (missing.length > 0) throw new UsageError(`missing ${missing.map((n) => `--${n}`).join(", ")}`);
}

interface StackFile {
    stack: string;
    root: string;
    file: string;
    fileName: string;
    text: string;
}

function openStack(stack: string, projectRoot: string | undefined, cwd: string): StackFile {
    const root = projectRoot ? path.resolve(cwd, projectRoot) : ROOT;
    requireStack(stack, root);
    const fileName = `Pulumi.${stack}.yaml`;
    const file = path.join(root, fileName);
    return { stack, root, file, fileName, text: inFile(fileName, () => readView(root, stack)) };
}

/** Runs a stack-file step, naming the file in its problems. */
function inFile<T>(fileName: string, step: () => T): T {
    try {
        return step();
    } catch (err) {
        if (err instanceof CommandError) throw new CommandError(err.problems.map((p) => `${fileName}: ${p}`));
        throw err;
    }
}

/** Validates the stack file's text (`edited`: a result not written yet); ConfigError becomes a refusal listing the loader's problems. */
function checkText(target: StackFile, text: string, edited: boolean, pendingSecrets: string[] = []): ReturnType<typeof checkStack> {
    try {
        return inFile(target.fileName, () => checkStack(target.stack, text, target.root, pendingSecrets));
    } catch (err) {
        if (err instanceof ConfigError) throw new CommandError([`${target.fileName} ${edited ? "would not be" : "is not"} a valid configuration:`, ...err.problems.map((p) => `  - ${p}`)]);
        throw err;
    }
}

const stepLabel = (cfg: ReturnType<typeof checkStack>, index: number): string => {
    const matches = stepIndexes(cfg.tenants, cfg.steps)[index];
    return matches.map((s) => `${s + 1} (${cfg.steps[s].name})`).join(", ");
};

type AddValues = ReturnType<typeof parseAdd>;
const parseAdd = (argv: string[], io: CommandIO) => flagsOf("add", argv, io);

async function add(argv: string[], io: CommandIO): Promise<number> {
    const values = parseAdd(argv, io);
    required(values, "stack", "name", "kubeconfig", "server", "ring", "region");
    const credentials = (values.credentials ?? "bootstrap") as CredentialMode;
    if (credentials !== "bootstrap" && credentials !== "token") throw new UsageError(`--credentials must be bootstrap or token, not ${JSON.stringify(values.credentials)}`);
    // A bootstrap tenant's token comes from its own onboarding stack: that is the bootstrap command.
    if (credentials === "bootstrap") return bootstrap(argv.filter((a, i) => a !== "--credentials" && argv[i - 1] !== "--credentials" && !a.startsWith("--credentials=")), io);
    const labels = labelsOf(values.label ?? []);
    const name = values.name!;
    const server = values.server!;
    const root = values["project-root"] ? path.resolve(io.cwd, values["project-root"]) : ROOT;
    requireStack(values.stack!, root);
    return withStackLock(path.join(root, `Pulumi.${values.stack}.yaml`), () => addLocked(values, { name, server, credentials, labels }, io));
}

async function addLocked(values: AddValues, given: { name: string; server: string; credentials: CredentialMode; labels: Record<string, string> }, io: CommandIO): Promise<number> {
    const { name, server, credentials, labels } = given;
    const target = openStack(values.stack!, values["project-root"], io.cwd);
    const entry: TenantEntry = {
        name,
        server,
        ...(values.env !== undefined ? { env: values.env } : {}),
        ring: values.ring!,
        region: values.region!,
        credentials,
        ...(Object.keys(labels).length > 0 ? { labels } : {}),
        ...(values.namespace ? { namespaces: values.namespace } : {}),
    };

    // Both checks run before anything is written, and their problems are reported together.
    const problems: string[] = [];
    const attempt = <T>(step: () => T): T | undefined => {
        try {
            return step();
        } catch (err) {
            if (!(err instanceof CommandError)) throw err;
            problems.push(...err.problems);
            return undefined;
        }
    };
    const newText = attempt(() => inFile(target.fileName, () => addTenant(target.text, entry)));
    const cfg = newText === undefined ? undefined : attempt(() => checkText(target, newText, true, CREDENTIAL_FIELDS.map((f) => credentialKey(name, f))));
    const kubeconfigPath = path.resolve(io.cwd, values.kubeconfig!);
    const checked = attempt(() => {
        if (!fs.existsSync(kubeconfigPath) || !fs.statSync(kubeconfigPath).isFile()) throw new CommandError([`${kubeconfigPath}: no such kubeconfig file`]);
        return inFile(kubeconfigPath, () => parseKubeconfig(fs.readFileSync(kubeconfigPath, "utf8"), { server, credentials, context: values.context }));
    });
    if (problems.length > 0 || !newText || !cfg || !checked) throw new CommandError([`not adding tenant ${name}:`, ...problems]);

    const fields = CREDENTIAL_FIELDS;
    const alreadyStored = fields.every((f) => storedCredentialFields(target.text, name).includes(f));
    const notes: string[] = [];
    if (checked.loopbackServer) {
        const host = new URL(server).hostname.replace(/^\[|\]$/g, "");
        notes.push(
            `The kubeconfig's server ${checked.loopbackServer} is a loopback address (the k3s default); the stored credential uses ${server} instead.`,
            `The k3s serving certificate must carry ${host} as a SAN, or the hub fails TLS verification: start k3s with --tls-san ${host} (tls-san in /etc/rancher/k3s/config.yaml) and restart it.`,
        );
    }

    // The entry is written only together with its credential: an entry without one makes every
    // command refuse the stack until someone stores it.
    if (!alreadyStored && !pulumiOnPath(io.env)) {
        // Show the path as typed when the command is run from where it was typed.
        const shownPath = path.isAbsolute(values.kubeconfig!) || io.cwd === target.root ? values.kubeconfig! : kubeconfigPath;
        const commands = credentialCommands({ stack: target.stack, name, credentials, kubeconfigPath: shownPath, server, checked });
        const inRoot = io.cwd === target.root ? "" : `cd ${shellQuote(target.root)} && `;
        throw new CommandError([
            `not adding tenant ${name}: the Pulumi CLI is not on PATH, so its credential cannot be stored, and ${target.fileName} gets the entry only together with the credential. Nothing was written.`,
            "Install the Pulumi CLI (https://www.pulumi.com/docs/install/) and run this command again, or store the credential where the CLI is:",
            ...commands.map((c) => `  ${inRoot}${c}`),
            "and then run this command again: it adds the entry and keeps the stored credential.",
            `To undo a stored credential instead: pulumi config rm --stack ${shellQuote(target.stack)} --path '${`tenantCredentials.${name}`}'`,
            ...notes,
        ]);
    }
    writeView(target.root, target.stack, newText);
    notes.unshift(`Added tenant ${name} to ${target.fileName}: ring ${entry.ring}, rollout step ${stepLabel(cfg, cfg.tenants.length - 1)}.`);
    if (alreadyStored) {
        notes.push(`Kept the credential already stored in ${fields.map((f) => `${PROJECT}:${credentialKey(name, f)}`).join(" and ")}; to replace it, run this command where the Pulumi CLI is after removing the tenant.`);
    } else {
        for (const [field, value] of Object.entries(checked.secrets)) {
            const result = await runPulumi(pulumiSetArgs(target.stack, name, field), value, target.root, io.env);
            if (result.status !== "stored") {
                writeView(target.root, target.stack, target.text);
                throw new CommandError([`\`${pulumiSetCommand(target.stack, name, field)}\` failed, so ${target.fileName} is restored as it was:`, result.status === "missing" ? "the Pulumi CLI is not on PATH" : result.detail]);
            }
            notes.push(`Stored the credential: ${pulumiSetCommand(target.stack, name, field)}`);
        }
    }
    io.stdout([...notes, `Next: pulumi preview --stack ${shellQuote(target.stack)}`].join("\n") + "\n");
    return 0;
}

function list(argv: string[], io: CommandIO): number {
    const values = flagsOf("list", argv, io);
    required(values, "stack");
    const target = openStack(values.stack!, values["project-root"], io.cwd);
    const cfg = checkText(target, target.text, false);
    const steps = stepIndexes(cfg.tenants, cfg.steps);
    const rows = cfg.tenants.map((t, i) => [
        t.name,
        t.env,
        t.ring,
        t.region,
        t.credentials,
        t.decommissioned ? "decommissioned" : t.paused ? "paused" : "active",
        // Decommissioned tenants are not in the ApplicationSet.
        t.decommissioned ? "-" : steps[i].map((s) => `${s + 1} ${cfg.steps[s].name}`).join(", "),
    ]);
    io.stdout(formatTable(["TENANT", "ENV", "RING", "REGION", "CREDENTIALS", "STATE", "STEP"], rows));
    if (cfg.emergencyRollout) io.stdout(`emergencyRollout is on: Argo CD runs one step over every active tenant at 100% instead of these steps.\n`);
    return 0;
}

/**
 * Destroying a bootstrap tenant's onboarding stack revokes its token, so it waits until the stack
 * file deploy.yml applies (at the deployed ref) no longer lists the tenant: otherwise the next
 * merge registers the tenant again with a revoked token. Until then, remove takes the entry out of
 * the local stack file only; run again once that change is merged, it destroys the onboarding stack.
 */
async function remove(argv: string[], io: CommandIO): Promise<number> {
    const values = flagsOf("remove", argv, io);
    required(values, "stack", "name");
    const root = values["project-root"] ? path.resolve(io.cwd, values["project-root"]) : ROOT;
    requireStack(values.stack!, root);
    const target = openStack(values.stack!, values["project-root"], io.cwd);
    const name = values.name!;
    const deployedRef = deployedRefOf(values["deployed-ref"]);
    /** The deployed stack file still lists the tenant (so destroying its onboarding stack now would revoke a token deploy.yml re-applies). */
    const stillDeployed = () => deployedRef !== undefined && tenantEntries(committedStackFile(target.root, target.fileName, deployedRef) ?? "").some((e) => e.name === name);
    const entry = tenantEntries(target.text).find((e) => e.name === name);
    const stack = onboardingStackName(target.stack, name);
    if (!entry && !values.decommission) return removeOnboardingStack(values, target, name, stack, deployedRef, stillDeployed, io);
    const edit = (text: string) => inFile(target.fileName, () => (values.decommission ? decommissionTenant(text, name) : removeTenant(text, name)));
    // Refuse a removal the hub stack would not accept before anything is destroyed.
    checkText(target, edit(target.text), true);
    let destroyed = false;
    if (entry!.credentials === "bootstrap" && entry!.decommissioned !== true) {
        // Known only from the entry: checked before its onboarding stack is touched.
        requirePulumiFor(`npm run tenant -- remove of bootstrap tenant ${name} (it destroys the tenant's onboarding stack)`, io);
        // --decommission: the cluster is gone, so its token authenticates nothing anyway.
        if (values.decommission) {
            await destroyOnboardingStack(target, stack, undefined, io);
            destroyed = true;
        } else if (!stillDeployed()) {
            // A tenant never bootstrapped has no onboarding stack: nothing to destroy, no kubeconfig needed.
            if ((await engineFor(io, { stack: target.stack, root: target.root }).tokenState(stack)) !== undefined) {
                await destroyOnboardingStack(target, stack, removalKubeconfig(values, name, String(entry!.server), stack, io), io);
            }
            destroyed = true;
        }
    }
    return withStackLock(target.file, () => removeLocked(values, { destroyed, deployedRef }, io));
}

/**
 * The tenant's checked admin kubeconfig, which destroying its onboarding stack needs (no state holds
 * it), checked against `server`; a refusal naming what to give when none was given.
 */
function removalKubeconfig(values: { kubeconfig?: string; "kubeconfig-dir"?: string; context?: string }, name: string, server: string, stack: string, io: CommandIO): string {
    if (values.kubeconfig === undefined && values["kubeconfig-dir"] === undefined) {
        throw new UsageError(`missing --kubeconfig FILE (or --kubeconfig-dir DIR holding ${name}.yaml): removing bootstrap tenant ${name} destroys its onboarding stack ${stack} on the tenant with its admin kubeconfig; if the cluster is gone for good, use --decommission instead`);
    }
    return readTenantKubeconfig(kubeconfigFiles([name], values, io.cwd).get(name)!, { server, context: values.context });
}

/** Destroys the onboarding stack with the tenant's admin kubeconfig, or (none: --decommission) drops it without contacting the cluster. */
async function destroyOnboardingStack(target: StackFile, stack: string, kubeconfig: string | undefined, io: CommandIO): Promise<void> {
    const forget = kubeconfig === undefined;
    const started = Date.now();
    io.stderr(`${forget ? "Dropping" : "Destroying"} onboarding stack ${stack}${forget ? " without contacting the cluster" : " (argocd-manager on the tenant; its agent namespaces are kept)"}...\n`);
    try {
        const engine = engineFor(io, { stack: target.stack, root: target.root });
        await (kubeconfig === undefined ? engine.destroy(stack, { forget: true }) : withTenantKubeconfig(kubeconfig, (env) => engine.destroy(stack, { forget: false, env })));
    } catch (err) {
        // The engine's account, without a trace; the stack file is untouched, so removing again retries.
        throw new UserError(`${(err as Error).message}\n${target.fileName} is unchanged: run the same command again once that is fixed.`);
    }
    io.stderr(`Onboarding stack ${stack} removed in ${((Date.now() - started) / 1000).toFixed(1)}s.\n`);
}

/** The second step of removing a bootstrap tenant: its entry is gone from the stack file, its onboarding stack is left. */
async function removeOnboardingStack(values: { kubeconfig?: string; "kubeconfig-dir"?: string; context?: string }, target: StackFile, name: string, stack: string, deployedRef: string | undefined, stillDeployed: () => boolean, io: CommandIO): Promise<number> {
    const unknown = () => inFile(target.fileName, () => removeTenant(target.text, name));
    // Without the CLI no onboarding stack can be looked up: the name is unknown to the stack file.
    if (!io.engine && !pulumiOnPath(io.env)) unknown();
    const engine = engineFor(io, { stack: target.stack, root: target.root });
    if ((await engine.tokenState(stack)) === undefined) unknown();
    if (stillDeployed()) {
        throw new CommandError([
            `${target.fileName} at ${deployedRef} still lists tenant ${name}, so deploy.yml would register it again; merge the removal's change of ${target.fileName} to ${deployedRef} and let deploy.yml apply it, then run this again to destroy onboarding stack ${stack} (its token stays valid until then)`,
        ]);
    }
    // The entry is gone from the stack file: the kubeconfig is checked against the server it was registered with.
    const server = lastListedEntry(target.root, target.fileName, deployedRef ?? "HEAD", name)?.server;
    if (typeof server !== "string") throw new CommandError([`tenant ${name}'s server is in none of the last 50 versions of ${target.fileName} at ${deployedRef ?? "HEAD"}, so its kubeconfig cannot be checked against it; give --deployed-ref a ref whose history lists the tenant`]);
    await destroyOnboardingStack(target, stack, removalKubeconfig(values, name, server, stack, io), io);
    io.stdout(`Destroyed onboarding stack ${stack} of removed tenant ${name}: its token is revoked, and argocd-manager, its token Secret, Roles, RoleBindings, ClusterRole and ClusterRoleBinding are gone from the tenant (its agent namespaces are kept).\n`);
    return 0;
}

function removeLocked(values: { stack?: string; name?: string; decommission?: boolean; "project-root"?: string }, step: { destroyed: boolean; deployedRef?: string }, io: CommandIO): number {
    const name = values.name!;
    const target = openStack(values.stack!, values["project-root"], io.cwd);
    const newText = inFile(target.fileName, () => (values.decommission ? decommissionTenant(target.text, name) : removeTenant(target.text, name)));
    const after = checkText(target, newText, true);
    writeView(target.root, target.stack, newText);

    // The entry as it was (the file parsed: the edit above succeeded), for what happens next.
    const entries: unknown[] = YAML.parse(target.text).config[TENANTS_KEY];
    const tenant = entries.find((e): e is Record<string, unknown> => isObject(e) && e.name === name)!;
    const bootstrap = tenant.credentials === "bootstrap";

    const up = `pulumi up --stack ${shellQuote(target.stack)}`;
    const lines: string[] = [];
    if (values.decommission) {
        lines.push(
            `Marked tenant ${name} decommissioned in ${target.fileName}: the cluster is gone for good. On the next ${up}:`,
            `  - the hub's Argo CD cluster Secret cluster-${name} is deleted and the tenant leaves the rollout;`,
            bootstrap
                ? `  - its onboarding stack was dropped (its state forgotten, the cluster not contacted).`
                : `  - Pulumi manages nothing on the tenant (credentials: token), so nothing else changes.`,
            `After that ${up} succeeds, remove the entry: npm run tenant -- remove --stack ${target.stack} --name ${name}`,
        );
    } else if (tenant.decommissioned === true || tenant.decommissioned === "true") {
        lines.push(`Removed decommissioned tenant ${name} and its credentials from ${target.fileName}.`);
    } else {
        const namespaces = Array.isArray(tenant.namespaces) ? tenant.namespaces.join(", ") : DEFAULT_AGENT_NAMESPACE;
        const keepsApplication = ["create-only", "create-update"].includes(after.deploy.applicationsSync);
        lines.push(
            `Removed tenant ${name} and its credentials from ${target.fileName}. On the next ${up}:`,
            `  - the hub's Argo CD cluster Secret cluster-${name} is deleted: Argo CD stops deploying to ${tenant.server};`,
            bootstrap && step.destroyed
                ? `  - on the tenant, the argocd-manager ServiceAccount, its token Secret, Roles, RoleBindings, ClusterRole and ClusterRoleBinding were already deleted with its onboarding stack;`
                : bootstrap
                ? `  - its onboarding stack (argocd-manager on the tenant) is kept, and its token stays valid, because ${target.fileName} at ${step.deployedRef} still lists the tenant and deploy.yml applies that file;`
                : `  - Pulumi manages nothing on the tenant (credentials: token); revoke the pre-issued token there if it is no longer needed;`,
            `  - the agent namespaces (${namespaces}) are retained and the workloads in them keep running;`,
            keepsApplication
                ? `  - applicationsSync ${after.deploy.applicationsSync} keeps the tenant's generated Application on the hub; delete it by hand (preserveResourcesOnDeletion keeps the workloads).`
                : `  - the ApplicationSet deletes the tenant's generated Application (preserveResourcesOnDeletion keeps the workloads).`,
            `If a tenant's cluster is already gone, use --decommission instead: Pulumi cannot delete objects on an unreachable cluster.`,
        );
        if (bootstrap && !step.destroyed) {
            lines.push(
                `Next: merge this change of ${target.fileName} to ${step.deployedRef} and let deploy.yml apply it; then run the same command again: npm run tenant -- remove --stack ${shellQuote(target.stack)} --name ${shellQuote(name)}`,
                `  it destroys the onboarding stack (revoking the token) once ${target.fileName} at ${step.deployedRef} no longer lists the tenant.`,
            );
        }
    }
    io.stdout(lines.join("\n") + "\n");
    return 0;
}

/** The kubeconfig file of each tenant: --kubeconfig for one tenant, DIR/<name>.yaml with --kubeconfig-dir. */
function kubeconfigFiles(names: string[], values: { kubeconfig?: string; "kubeconfig-dir"?: string }, cwd: string): Map<string, string> {
    if (values.kubeconfig && values["kubeconfig-dir"]) throw new UsageError("give --kubeconfig or --kubeconfig-dir, not both");
    if (values.kubeconfig && names.length !== 1) throw new UsageError(`--kubeconfig is for one tenant; for ${names.length}, give --kubeconfig-dir DIR holding <name>.yaml for each`);
    if (!values.kubeconfig && !values["kubeconfig-dir"]) throw new UsageError("missing --kubeconfig FILE (one tenant) or --kubeconfig-dir DIR (DIR/<name>.yaml per tenant)");
    return new Map(names.map((n) => [n, values.kubeconfig ? path.resolve(cwd, values.kubeconfig) : path.join(path.resolve(cwd, values["kubeconfig-dir"]!), `${n}.yaml`)]));
}

async function onboard(argv: string[], io: CommandIO, rotate: boolean): Promise<number> {
    const values = flagsOf(rotate ? "rotate" : "bootstrap", argv, io) as Record<string, string | string[] | boolean | number | undefined>;
    required(values, "stack");
    requirePulumiFor(`npm run tenant -- ${rotate ? "rotate" : "bootstrap"}`, io);
    const target = openStack(values.stack as string, values["project-root"] as string | undefined, io.cwd);
    const hub: HubStack = { stack: target.stack, root: target.root };
    const all = rotate ? values.all === true : values["all-pending"] === true;
    const given = (values.name as string[] | undefined) ?? [];
    if (all === given.length > 0) throw new UsageError(rotate ? "give --name NAME (repeatable) or --all" : "give --name NAME (repeatable) or --all-pending");
    const names = all
        ? rotate
            ? checkText(target, target.text, false).tenants.filter((t) => t.credentials === "bootstrap" && !t.decommissioned).map((t) => t.name)
            : pendingTenants(hub)
        : [...new Set(given)];
    if (names.length === 0) {
        io.stdout(`No ${rotate ? "bootstrap" : "pending bootstrap"} tenants in ${target.fileName}.\n`);
        return 0;
    }
    const files = kubeconfigFiles(names, values as { kubeconfig?: string; "kubeconfig-dir"?: string }, io.cwd);
    const newEntry = !rotate && (values.server !== undefined || values.ring !== undefined || values.region !== undefined);
    if (newEntry && names.length !== 1) throw new UsageError("--server, --ring and --region add one new tenant; give a single --name");
    let entry: TenantEntry | undefined;
    if (newEntry) {
        required(values, "server", "ring", "region");
        const labels = labelsOf((values.label as string[] | undefined) ?? []);
        entry = {
            name: names[0],
            server: values.server as string,
            ...(values.env !== undefined ? { env: values.env as string } : {}),
            ring: values.ring as string,
            region: values.region as string,
            credentials: "bootstrap",
            ...(Object.keys(labels).length > 0 ? { labels } : {}),
            ...(values.namespace ? { namespaces: values.namespace as string[] } : {}),
        };
    }
    const targets: OnboardTarget[] = names.map((name) => ({ name, kubeconfigFile: files.get(name)!, context: values.context as string | undefined, ...(entry ? { entry } : {}) }));
    const mode: OnboardMode = !rotate ? "bootstrap" : values.finish === true ? "finish-rotation" : "rotate";
    if (values["deployed-ref"] !== undefined && mode !== "finish-rotation") throw new UsageError("--deployed-ref is for rotate --finish (and remove)");
    const outcomes = await onboardTenants({ hub, engine: engineFor(io, hub), targets, parallel: (values.parallel as number | undefined) ?? 4, log: (l) => io.stderr(`${l}\n`), mode, heartbeatMs: 30000, deployedRef: deployedRefOf(values["deployed-ref"]) });
    const done = outcomes.filter((o) => o.ok);
    const tenants = done.map((o) => o.tenant).join(", ");
    const stack = shellQuote(target.stack);
    if (done.length > 0 && mode === "finish-rotation") {
        const retired = done.filter((o) => o.value?.retired !== undefined);
        io.stdout(retired.length ? `Revoked the previous token of ${retired.map((o) => o.tenant).join(", ")}: only the token the hub registered is valid now.\n` : `No rotation to finish for ${tenants}.\n`);
    } else if (done.length > 0) {
        io.stdout(`${mode === "rotate" ? "Rotated the token of" : "Bootstrapped"} ${tenants}: ${target.fileName} holds ${done.length === 1 ? "its" : "their"} token and CA (secret).\nNext: pulumi preview --stack ${stack} && pulumi up --stack ${stack}\n`);
        if (mode === "rotate") {
            const names = done.map((o) => `--name ${shellQuote(o.tenant)}`).join(" ");
            io.stdout(`The old token stays valid, so Argo CD keeps working until that pulumi up. Then merge the change of ${target.fileName} to main (deploy.yml applies it) and revoke the old token:\n  npm run tenant -- rotate --finish --stack ${stack} ${names} ${values["kubeconfig-dir"] ? `--kubeconfig-dir ${shellQuote(path.resolve(io.cwd, String(values["kubeconfig-dir"])))}` : `--kubeconfig ${shellQuote(path.resolve(io.cwd, String(values.kubeconfig)))}`}\n`);
        }
    }
    return outcomes.every((o) => o.ok) ? 0 : 1;
}

const bootstrap = (argv: string[], io: CommandIO) => onboard(argv, io, false);
const rotate = (argv: string[], io: CommandIO) => onboard(argv, io, true);

async function migrate(argv: string[], io: CommandIO): Promise<number> {
    const values = flagsOf("migrate", argv, io);
    required(values, "stack", "name", "kubeconfig");
    requirePulumiFor("npm run tenant -- migrate", io);
    const target = openStack(values.stack!, values["project-root"], io.cwd);
    const hub: HubStack = { stack: target.stack, root: target.root };
    const started = Date.now();
    const result = await migrateTenant({
        hub,
        engine: engineFor(io, hub),
        tenant: values.name!,
        kubeconfigFile: path.resolve(io.cwd, values.kubeconfig!),
        context: values.context,
        log: (l) => io.stderr(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${l}\n`),
    });
    io.stdout(`Migrated tenant ${values.name} to onboarding stack ${result.stack} (${result.moved.length} resources moved, nothing replaced). Next: pulumi preview --stack ${shellQuote(target.stack)} shows only the tenant's old provider leaving the hub state.\n`);
    return 0;
}

function labelsOf(given: string[]): Record<string, string> {
    const labels: Record<string, string> = {};
    for (const label of given) {
        const eq = label.indexOf("=");
        if (eq <= 0) throw new UsageError(`--label ${JSON.stringify(label)} is not KEY=VALUE`);
        if (label.slice(0, eq) in labels) throw new UsageError(`--label ${label.slice(0, eq)} is given twice`);
        labels[label.slice(0, eq)] = label.slice(eq + 1);
    }
    return labels;
}

/**
 * split-inventory: the documented move of a stack file's `agentfleet:tenants` into one file per
 * tenant. Every file is checked before any is written; the stack file changes last, so a run that
 * stops half way leaves the entries where they were, and the next run finishes it.
 */
async function splitInventory(argv: string[], io: CommandIO): Promise<number> {
    const values = flagsOf("split-inventory", argv, io);
    required(values, "stack");
    const stack = values.stack!;
    const root = values["project-root"] ? path.resolve(io.cwd, values["project-root"]) : ROOT;
    requireStack(stack, root);
    const fileName = `Pulumi.${stack}.yaml`;
    return withStackLock(path.join(root, fileName), () => {
        const started = Date.now();
        const text = fs.readFileSync(path.join(root, fileName), "utf8");
        const split = inFile(fileName, () => splitStackFile(text));
        const folder = fleetFolder(stack, (YAML.parse(text)?.config ?? {})[`${PROJECT}:fleet`]);
        if (split.files.length === 0) {
            io.stdout(`${fileName} lists no agentfleet:tenants: nothing to move (the inventory is ${folder}/).\n`);
            return 0;
        }
        const dir = path.resolve(root, folder);
        const conflicts = split.files.map((f) => tenantFileConflict(dir, f)).filter((f): f is string => f !== undefined);
        if (conflicts.length > 0) {
            throw new CommandError([
                `not moving the tenants of ${fileName}: ${conflicts.map((f) => path.relative(root, f)).join(", ")} already exist${conflicts.length === 1 ? "s" : ""} with other content, and a file this command did not write is never overwritten. Compare each with its entry in ${fileName}, keep the right one (delete or fix the file), then run this again. Nothing was written.`,
            ]);
        }
        fs.mkdirSync(dir, { recursive: true });
        split.files.forEach((f, i) => {
            const file = path.join(dir, `${f.name}.yaml`);
            const kept = fs.existsSync(file);
            if (!kept) writeFileAtomic(file, f.text);
            io.stdout(`[${i + 1}/${split.files.length}, ${((Date.now() - started) / 1000).toFixed(1)} s] ${f.name}: ${kept ? "already in" : "written to"} ${folder}/${f.name}.yaml\n`);
        });
        writeFileAtomic(path.join(root, fileName), split.stackText);
        io.stdout(`Moved ${split.files.length} tenant${split.files.length === 1 ? "" : "s"} of ${fileName} to ${folder}/ and removed agentfleet:tenants from ${fileName}. Review and commit both (docs/operations.md, "Moving tenants to the inventory").\n`);
        return 0;
    });
}

const COMMANDS: Record<string, (argv: string[], io: CommandIO) => number | Promise<number>> = { bootstrap, rotate, migrate, add, list, remove, "split-inventory": splitInventory };

/** Runs the CLI; returns the exit code (0 done, 1 refused or failed, 2 usage error). */
export async function main(argv: string[], io: CommandIO = defaultIO()): Promise<number> {
    const [command, ...rest] = argv;
    if (command === undefined || command === "--help" || command === "-h" || rest.includes("--help")) {
        (command === undefined ? io.stderr : io.stdout)(USAGE);
        return command === undefined ? 2 : 0;
    }
    try {
        const run = COMMANDS[command];
        if (!run) throw new UsageError(`unknown command ${JSON.stringify(command)}${suggestion(command, Object.keys(COMMANDS))}`);
        return await run(rest, io);
    } catch (err) {
        if (err instanceof UsageError) {
            io.stderr(`tenant ${command}: ${(err as Error).message}\n\n${USAGE}`);
            return 2;
        }
        if (err instanceof CommandError) {
            io.stderr(`tenant ${command}: ${err.problems.join("\n")}\n`);
            return 1;
        }
        if (err instanceof UserError) {
            io.stderr(`tenant ${command}: ${err.message}\n`);
            return 1;
        }
        throw err;
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => (process.exitCode = code),
        (err) => {
            process.stderr.write(`${(err as Error).stack ?? err}\n`);
            process.exitCode = 1;
        },
    );
}
