/**
 * `npm run tenant -- <command>`: the tenants of a hub stack. `add`, `list` and `remove` edit the
 * tenant inventory (fleet/<stack>/<tenant>.yaml, checked with the project's loader before anything
 * is written); `bootstrap`, `rotate`, `add --credentials token` and `remove` run each tenant's own
 * stack (tenants/), which registers the tenant on the hub: its token never passes through the hub
 * stack, a file, the terminal or a command line.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { type CredentialMode, ConfigError, DEFAULT_AGENT_NAMESPACE, PROJECT, fleetFolder, stepIndexes, suggestion } from "../stacks/config";
import { type OnboardingEngine, automationEngine } from "../tenants/engine";
import { type CheckedKubeconfig, parseKubeconfig, readHubKubeconfig, readTenantKubeconfig, shellQuote, withRunKubeconfig } from "../tenants/kubeconfig";
import { type HubStack, type OnboardMode, type OnboardTarget, onboardTenants, pendingTenants, registerTokenTenant } from "../tenants/onboard";
import { type Selection, fleetUp } from "../tenants/fleet-up";
import { onboardingStackName } from "../tenants/onboarding-program";
import { migrateRegistrations } from "../tenants/migrate-registration";
import { type TenantEntry, CommandError, TENANTS_KEY, addTenant, checkStack, decommissionTenant, isObject, readView, removeTenant, splitStackFile, tenantEntries, tenantFileConflict, writeView } from "../tenants/stack-file";
import { type FlagSpec, type FlagValues, UsageError, parseFlags, pulumiOnPath, requirePulumiCli, requireStack, userCwd } from "./cli";
import { UserError } from "../evaluator/report";
import { ROOT } from "../evaluator/evaluate";
import { withStackLock, writeFileAtomic } from "../tenants/stack-lock";
import { formatTable } from "./table";

// The tenants/ modules, for callers that used them from here.
export { type CheckedKubeconfig, CommandError, type TenantEntry, addTenant, checkStack, decommissionTenant, parseKubeconfig, removeTenant, shellQuote };

export const USAGE = `Usage: npm run tenant -- <command> [options]

  bootstrap --stack STACK (--name NAME ... | --all-pending) (--kubeconfig FILE | --kubeconfig-dir DIR)
          [--hub-kubeconfig FILE] [--parallel N] [--context NAME]
          [--server URL --ring RING --region REGION [--env ENV] [--namespace NS ...] [--label KEY=VALUE ...]]
          Runs each tenant's own stack (<stack>-tenant-<name>): argocd-manager on the tenant, and the
          tenant's Argo CD cluster Secret on the hub (its registration, holding the token);
          --server/--ring/--region add a new tenant. --kubeconfig-dir reads DIR/<name>.yaml. Runs up
          to --parallel (default 4) at a time.
  rotate  --stack STACK (--name NAME ... | --all) (--kubeconfig FILE | --kubeconfig-dir DIR) [--hub-kubeconfig FILE]
          [--parallel N] [--context NAME]
          Gives the tenants new tokens in one up of each tenant stack: the new token is created, the
          hub's cluster Secret switched to it, and only then the old token revoked.
  migrate --stack STACK --name NAME --kubeconfig FILE [--context NAME]
          Moves a tenant bootstrapped inside the hub stack (before onboarding stacks) to its own
          onboarding stack, touching nothing on any cluster (docs/operations.md, "Migrating to onboarding stacks").
  migrate-registration --stack STACK [--name NAME ... | --all] [--hub-kubeconfig FILE] [--parallel N]
          Moves each tenant's cluster Secret from the hub stack's state (the layout before tenant
          stacks) into its tenant stack and runs that stack at once (hub context only): the Secret
          is adopted without a write (same UID); then removes tenantCredentials.<name> from the
          stack file. Resumable: migrated tenants are left as they are. Without --name: every
          tenant (--all). Run it before the hub's up.
  add     --stack STACK --name NAME --kubeconfig FILE --server URL --ring RING --region REGION
          [--env ENV] [--namespace NS ...] [--label KEY=VALUE ...]
          [--credentials bootstrap|token] [--context NAME] [--hub-kubeconfig FILE]
          bootstrap (the default) is the bootstrap command; token registers the token and CA the
          kubeconfig file holds (pre-issued by the tenant's admin) from a tenant stack of its own,
          which declares nothing on the tenant.
  up      --stack STACK (--name NAME ... | --all | --changed GIT-REF) [--preview [--refresh]]
          [--parallel N] [--hub-kubeconfig FILE]
          Runs the tenant stacks with the hub's context only, so tenant-file changes (ring, region,
          labels, env, server) reach their registrations on the hub; --changed: tenants whose file
          was added or changed since GIT-REF. Each run is refused from its preview when a step would
          touch the tenant (run bootstrap with its kubeconfig). --preview: previews only, exit 3 when
          some stack would change; --refresh also refreshes each registration (drift check).
          Runs up to --parallel (default 4) at a time; exit 1 names the tenants that failed.
  list    --stack STACK
  split-inventory --stack STACK
          Moves the tenant entries of a stack file that still lists agentfleet:tenants into the
          tenant inventory, one file each (fleet/<stack>/<tenant>.yaml), and removes the key from
          the stack file (its other comments kept). Refuses to overwrite a tenant file with other
          content; one with the same content is kept, so it can run again.
  remove  --stack STACK --name NAME [--kubeconfig FILE | --kubeconfig-dir DIR] [--context NAME]
          [--hub-kubeconfig FILE] [--decommission]
          Destroys the tenant's stack (its cluster Secret leaves the hub, so Argo CD stops deploying
          there; a bootstrap tenant's token is revoked and argocd-manager removed, its agent
          namespaces kept), then removes its tenant file. A bootstrap tenant needs its admin kubeconfig.
          --decommission: the cluster is gone: its registration is deleted from the hub and its stack
          dropped without contacting the cluster; the file is marked decommissioned.

The hub's kubeconfig (every command that runs a tenant stack: it registers the tenant on the hub)
is --hub-kubeconfig FILE, or else KUBECONFIG, checked to reach agentfleet:hub.server as the hub
stack's own runs are. Every command takes --project-root DIR (default: this repository); relative
paths are from the folder you run npm in. Edits lock the stack file (Pulumi.<stack>.yaml.lock) and
replace files atomically, so commands can run at the same time. Tenant stacks need the Pulumi CLI on
PATH and use the hub stack's backend and secrets provider (the same pulumi login and passphrase or
KMS key). Kubeconfigs are only read: each tenant stack's run gets a private copy through KUBECONFIG
(deleted afterwards), never stored in any state.

Examples:
  npm run tenant -- bootstrap --stack prod --name acme --kubeconfig ./acme.yaml --hub-kubeconfig ./hub.yaml \\
      --server https://acme.k3s.example.net:6443 --ring canary --region eu-west
  npm run tenant -- bootstrap --stack prod --all-pending --kubeconfig-dir ./kubeconfigs --parallel 8
  npm run tenant -- rotate --stack prod --all --kubeconfig-dir ./kubeconfigs
  npm run tenant -- list --stack prod
  npm run tenant -- remove --stack prod --name acme --kubeconfig ./acme.yaml
`;

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
/** The hub's kubeconfig of a tenant stack's run (default: KUBECONFIG). */
const hubKubeconfig = { "hub-kubeconfig": { type: "string" } } as const satisfies Record<string, FlagSpec>;
const OPTIONS = {
    add: {
        ...common,
        ...newEntry,
        ...hubKubeconfig,
        name: { type: "string" },
        kubeconfig: { type: "string" },
        credentials: { type: "string" },
        context: { type: "string" },
    },
    list: { ...common },
    remove: { ...common, ...hubKubeconfig, name: { type: "string" }, decommission: { type: "boolean" }, kubeconfig: { type: "string" }, "kubeconfig-dir": { type: "string" }, context: { type: "string" } },
    bootstrap: {
        ...common,
        ...hubKubeconfig,
        name: { type: "string", multiple: true },
        "all-pending": { type: "boolean" },
        kubeconfig: { type: "string" },
        "kubeconfig-dir": { type: "string" },
        parallel,
        context: { type: "string" },
        ...newEntry,
    },
    rotate: { ...common, ...hubKubeconfig, name: { type: "string", multiple: true }, all: { type: "boolean" }, kubeconfig: { type: "string" }, "kubeconfig-dir": { type: "string" }, parallel, context: { type: "string" } },
    up: { ...common, ...hubKubeconfig, name: { type: "string", multiple: true }, all: { type: "boolean" }, changed: { type: "string" }, preview: { type: "boolean" }, refresh: { type: "boolean" }, parallel },
    migrate: { ...common, name: { type: "string" }, kubeconfig: { type: "string" }, context: { type: "string" } },
    "migrate-registration": { ...common, ...hubKubeconfig, name: { type: "string", multiple: true }, all: { type: "boolean" }, parallel },
    "split-inventory": { ...common },
} as const satisfies Record<string, Record<string, FlagSpec>>;

/** The command's flags, parsed strictly (an unknown one with a "did you mean"); a UsageError otherwise. */
const flagsOf = <C extends keyof typeof OPTIONS>(command: C, argv: string[], io: CommandIO): FlagValues<(typeof OPTIONS)[C]> =>
    parseFlags(OPTIONS[command], argv, `npm run tenant -- ${command} --stack STACK ...`, io.env) as FlagValues<(typeof OPTIONS)[C]>;

/** The real onboarding engine runs the Pulumi CLI: refused before any work without one (an injected engine is the specs' fake). */
const requirePulumiFor = (what: string, io: CommandIO) => {
    if (!io.engine) requirePulumiCli(what, io.env);
};

/**
 * The hub's checked kubeconfig for a tenant stack's run: --hub-kubeconfig, else KUBECONFIG, checked
 * against the stack file's agentfleet:hub.server (and hub.context), which the loader validates.
 */
function hubKubeconfigOf(values: { "hub-kubeconfig"?: string }, target: StackFile, io: CommandIO): string {
    const hub = (YAML.parse(target.text)?.config?.[`${PROJECT}:hub`] ?? {}) as { server?: unknown; context?: unknown };
    const given = values["hub-kubeconfig"] === undefined ? undefined : path.resolve(io.cwd, values["hub-kubeconfig"]);
    return readHubKubeconfig(target.stack, { server: String(hub.server ?? ""), ...(typeof hub.context === "string" ? { context: hub.context } : {}) }, given, io.env);
}

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
function checkText(target: StackFile, text: string, edited: boolean): ReturnType<typeof checkStack> {
    try {
        return inFile(target.fileName, () => checkStack(target.stack, text, target.root));
    } catch (err) {
        if (err instanceof ConfigError) throw new CommandError([`${target.fileName} ${edited ? "would not be" : "is not"} a valid configuration:`, ...err.problems.map((p) => `  - ${p}`)]);
        throw err;
    }
}

const stepLabel = (cfg: ReturnType<typeof checkStack>, index: number): string => {
    const matches = stepIndexes(cfg.tenants, cfg.steps)[index];
    return matches.map((s) => `${s + 1} (${cfg.steps[s].name})`).join(", ");
};

async function add(argv: string[], io: CommandIO): Promise<number> {
    const values = flagsOf("add", argv, io);
    required(values, "stack", "name", "kubeconfig", "server", "ring", "region");
    const credentials = (values.credentials ?? "bootstrap") as CredentialMode;
    if (credentials !== "bootstrap" && credentials !== "token") throw new UsageError(`--credentials must be bootstrap or token, not ${JSON.stringify(values.credentials)}`);
    // A bootstrap tenant's token comes from its own tenant stack: that is the bootstrap command.
    if (credentials === "bootstrap") return bootstrap(argv.filter((a, i) => a !== "--credentials" && argv[i - 1] !== "--credentials" && !a.startsWith("--credentials=")), io);
    const labels = labelsOf(values.label ?? []);
    const name = values.name!;
    const server = values.server!;
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

    // Every check runs before anything is touched, and their problems are reported together.
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
    const cfg = newText === undefined ? undefined : attempt(() => checkText(target, newText, true));
    const kubeconfigPath = path.resolve(io.cwd, values.kubeconfig!);
    // The token and CA are read from the file (never from argv, where `ps` shows them).
    const checked = attempt(() => {
        if (!fs.existsSync(kubeconfigPath) || !fs.statSync(kubeconfigPath).isFile()) throw new CommandError([`${kubeconfigPath}: no such kubeconfig file`]);
        return inFile(kubeconfigPath, () => parseKubeconfig(fs.readFileSync(kubeconfigPath, "utf8"), { server, credentials, context: values.context }));
    });
    const hub = attempt(() => hubKubeconfigOf(values, target, io));
    if (problems.length > 0 || !newText || !cfg || !checked || !hub) throw new CommandError([`not adding tenant ${name}:`, ...problems]);
    requirePulumiFor(`npm run tenant -- add --credentials token (it runs tenant ${name}'s own stack, which registers it on the hub)`, io);

    const notes: string[] = [];
    if (checked.loopbackServer) {
        const host = new URL(server).hostname.replace(/^\[|\]$/g, "");
        notes.push(
            `The kubeconfig's server ${checked.loopbackServer} is a loopback address (the k3s default); the registration uses ${server} instead.`,
            `The k3s serving certificate must carry ${host} as a SAN, or the hub fails TLS verification: start k3s with --tls-san ${host} (tls-san in /etc/rancher/k3s/config.yaml) and restart it.`,
        );
    }
    const hubStack: HubStack = { stack: target.stack, root: target.root };
    const started = Date.now();
    io.stderr(`Registering token tenant ${name} from its tenant stack ${onboardingStackName(target.stack, name)} (its cluster Secret on the hub; nothing on the tenant)...\n`);
    try {
        const credential = { bearerToken: checked.secrets.bearerToken, caData: checked.secrets.caData };
        await registerTokenTenant({ hub: hubStack, engine: engineFor(io, hubStack), entry, credential, hubKubeconfig: hub });
    } catch (err) {
        if (err instanceof CommandError) throw err;
        throw new UserError(`${(err as Error).message}\nNothing was written to ${target.fileName} or the inventory: run the same command again once that is fixed.`);
    }
    const after = checkText(target, readView(target.root, target.stack), false);
    notes.unshift(
        `Added tenant ${name} (credentials: token) to ${fleetFolder(target.stack, YAML.parse(target.text)?.config?.[`${PROJECT}:fleet`])}/${name}.yaml: ring ${entry.ring}, rollout step ${stepLabel(after, after.tenants.findIndex((t) => t.name === name))}, registered on the hub by its tenant stack ${onboardingStackName(target.stack, name)} in ${((Date.now() - started) / 1000).toFixed(1)}s (the token lives in that stack's state only).`,
    );
    io.stdout([...notes, `Next: commit the tenant file; pulumi preview --stack ${shellQuote(target.stack)} shows no change (the hub stack holds no tenant).`].join("\n") + "\n");
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
 * Destroying a tenant's stack deletes its registration (the cluster Secret) from the hub and, for a
 * bootstrap tenant, its argocd-manager and token on the tenant, in one run: the engine deletes the
 * Secret before the token it holds. The hub stack holds nothing of the tenant, and no file holds its
 * token, so no later deploy can register it again. The tenant file goes last, once the stack is gone.
 */
async function remove(argv: string[], io: CommandIO): Promise<number> {
    const values = flagsOf("remove", argv, io);
    required(values, "stack", "name");
    const target = openStack(values.stack!, values["project-root"], io.cwd);
    const name = values.name!;
    const entry = tenantEntries(target.text).find((e) => e.name === name);
    const stack = onboardingStackName(target.stack, name);
    const hubStack: HubStack = { stack: target.stack, root: target.root };
    if (!entry) {
        // Without the CLI no tenant stack can be looked up: the name is unknown to the inventory.
        if (io.engine || pulumiOnPath(io.env)) {
            if ((await engineFor(io, hubStack).tokenState(stack)) !== undefined) {
                throw new CommandError([`tenant ${name} has no tenant file, but its tenant stack ${stack} exists (a removal begun by an earlier agentfleet, or a file deleted by hand): restore the file (\`git checkout <ref> -- <inventory folder>/${name}.yaml\`) and run this again, so its kubeconfigs can be checked against its server`]);
            }
        }
        inFile(target.fileName, () => removeTenant(target.text, name));
    }
    const edit = (text: string) => inFile(target.fileName, () => (values.decommission ? decommissionTenant(text, name) : removeTenant(text, name)));
    // Refuse a removal the hub stack would not accept before anything is destroyed.
    checkText(target, edit(target.text), true);
    let destroyed = false;
    if (entry!.decommissioned !== true) {
        requirePulumiFor(`npm run tenant -- remove of tenant ${name} (it destroys the tenant's own stack)`, io);
        const engine = engineFor(io, hubStack);
        // A tenant never bootstrapped or registered has no stack: nothing to destroy, no kubeconfig needed.
        if ((await engine.tokenState(stack)) !== undefined) {
            const hub = hubKubeconfigOf(values, target, io);
            // --decommission: the cluster is gone, so its token authenticates nothing anyway; only the registration goes.
            const tenant = values.decommission || entry!.credentials !== "bootstrap" ? undefined : removalKubeconfig(values, name, String(entry!.server), stack, io);
            await destroyTenantStack(target, stack, { hub, ...(tenant ? { tenant } : {}) }, values.decommission === true, io);
            destroyed = true;
        }
    }
    return withStackLock(target.file, () => removeLocked(values, destroyed, io));
}

/** The tenant's checked admin kubeconfig, which destroying its stack needs (no state holds it), checked against `server`. */
function removalKubeconfig(values: { kubeconfig?: string; "kubeconfig-dir"?: string; context?: string }, name: string, server: string, stack: string, io: CommandIO): string {
    if (values.kubeconfig === undefined && values["kubeconfig-dir"] === undefined) {
        throw new UsageError(`missing --kubeconfig FILE (or --kubeconfig-dir DIR holding ${name}.yaml): removing bootstrap tenant ${name} destroys its tenant stack ${stack}, argocd-manager on the tenant, with its admin kubeconfig; if the cluster is gone for good, use --decommission instead`);
    }
    return readTenantKubeconfig(kubeconfigFiles([name], values, io.cwd).get(name)!, { server, context: values.context });
}

/** Destroys the tenant stack with its run kubeconfig; `forget` (--decommission): only its registration on the hub, then the stack is dropped without contacting the tenant. */
async function destroyTenantStack(target: StackFile, stack: string, kubeconfigs: { tenant?: string; hub: string }, forget: boolean, io: CommandIO): Promise<void> {
    const started = Date.now();
    io.stderr(`${forget ? `Deleting the registration of tenant stack ${stack} from the hub and dropping the stack without contacting the tenant` : `Destroying tenant stack ${stack} (its cluster Secret on the hub${kubeconfigs.tenant ? ", argocd-manager on the tenant; its agent namespaces are kept" : ""})`}...\n`);
    try {
        const engine = engineFor(io, { stack: target.stack, root: target.root });
        await withRunKubeconfig(kubeconfigs, (env) => engine.destroy(stack, forget ? { forget: true, env } : { forget: false, env }));
    } catch (err) {
        // The engine's account, without a trace; the inventory is untouched, so removing again retries.
        throw new UserError(`${(err as Error).message}\nThe tenant file is unchanged: run the same command again once that is fixed.`);
    }
    io.stderr(`Tenant stack ${stack} ${forget ? "deregistered and dropped" : "destroyed"} in ${((Date.now() - started) / 1000).toFixed(1)}s.\n`);
}

function removeLocked(values: { stack?: string; name?: string; decommission?: boolean; "project-root"?: string }, destroyed: boolean, io: CommandIO): number {
    const name = values.name!;
    const target = openStack(values.stack!, values["project-root"], io.cwd);
    const newText = inFile(target.fileName, () => (values.decommission ? decommissionTenant(target.text, name) : removeTenant(target.text, name)));
    const after = checkText(target, newText, true);
    writeView(target.root, target.stack, newText);

    // The entry as it was (the view parsed: the edit above succeeded), for what happened.
    const entries: unknown[] = YAML.parse(target.text).config[TENANTS_KEY];
    const tenant = entries.find((e): e is Record<string, unknown> => isObject(e) && e.name === name)!;
    const bootstrap = tenant.credentials === "bootstrap";
    const stack = onboardingStackName(target.stack, name);
    const lines: string[] = [];
    if (values.decommission) {
        lines.push(
            `Marked tenant ${name} decommissioned in its tenant file: the cluster is gone for good.`,
            destroyed ? `  - its cluster Secret cluster-${name} was deleted from the hub by its tenant stack ${stack}, which was then dropped (the tenant was not contacted): the tenant left the rollout;` : `  - it had no tenant stack, so nothing was registered on the hub;`,
            `Commit the tenant file, then remove the entry: npm run tenant -- remove --stack ${target.stack} --name ${name}`,
        );
    } else if (tenant.decommissioned === true || tenant.decommissioned === "true") {
        lines.push(`Removed the tenant file of decommissioned tenant ${name}; commit its removal.`);
    } else {
        const namespaces = Array.isArray(tenant.namespaces) ? tenant.namespaces.join(", ") : DEFAULT_AGENT_NAMESPACE;
        const keepsApplication = ["create-only", "create-update"].includes(after.deploy.applicationsSync);
        lines.push(
            destroyed ? `Removed tenant ${name}: its tenant stack ${stack} is destroyed, and its tenant file removed (commit that).` : `Removed tenant ${name}'s tenant file (commit that): it had no tenant stack, so nothing was registered on the hub.`,
            ...(destroyed
                ? [
                      `  - the hub's Argo CD cluster Secret cluster-${name} is deleted: Argo CD stops deploying to ${tenant.server};`,
                      bootstrap
                          ? `  - on the tenant, the argocd-manager ServiceAccount, its token Secret, Roles, RoleBindings, ClusterRole and ClusterRoleBinding are deleted: its token is revoked;`
                          : `  - nothing of Pulumi's was on the tenant (credentials: token); revoke the pre-issued token there if it is no longer needed;`,
                      `  - the agent namespaces (${namespaces}) are retained and the workloads in them keep running;`,
                      keepsApplication
                          ? `  - applicationsSync ${after.deploy.applicationsSync} keeps the tenant's generated Application on the hub; delete it by hand (preserveResourcesOnDeletion keeps the workloads).`
                          : `  - the ApplicationSet deletes the tenant's generated Application (preserveResourcesOnDeletion keeps the workloads).`,
                  ]
                : []),
            `If a tenant's cluster is already gone, use --decommission instead: Pulumi cannot delete objects on an unreachable cluster.`,
        );
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
    if (rotate && argv.some((a) => a === "--finish" || a.startsWith("--finish=") || a.startsWith("--deployed-ref"))) {
        throw new UsageError("rotate --finish (and --deployed-ref) are gone: rotate is one up of each tenant stack, which registers the new token on the hub before it revokes the old one; run rotate alone");
    }
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
            ? tenantEntries(target.text).filter((t) => t.credentials === "bootstrap" && t.decommissioned !== true).map((t) => String(t.name))
            : await pendingTenants(hub, engineFor(io, hub))
        : [...new Set(given)];
    if (names.length === 0) {
        io.stdout(`No ${rotate ? "bootstrap" : "pending bootstrap"} tenants in ${target.fileName}'s inventory.\n`);
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
    // Checked once, before any tenant: every tenant stack registers on this hub.
    const hubKubeconfig = hubKubeconfigOf(values as { "hub-kubeconfig"?: string }, target, io);
    const targets: OnboardTarget[] = names.map((name) => ({ name, kubeconfigFile: files.get(name)!, context: values.context as string | undefined, ...(entry ? { entry } : {}) }));
    const mode: OnboardMode = rotate ? "rotate" : "bootstrap";
    const outcomes = await onboardTenants({ hub, engine: engineFor(io, hub), targets, hubKubeconfig, parallel: (values.parallel as number | undefined) ?? 4, log: (l) => io.stderr(`${l}\n`), mode, heartbeatMs: 30000 });
    const done = outcomes.filter((o) => o.ok);
    if (done.length > 0) {
        const tenants = done.map((o) => o.tenant).join(", ");
        io.stdout(
            mode === "rotate"
                ? `Rotated the token of ${tenants}, each in one up of its tenant stack: the hub's cluster Secret holds the new token, and the previous one is revoked.\n`
                : `Bootstrapped ${tenants}: ${done.length === 1 ? "its" : "each"} tenant stack registered ${done.length === 1 ? "it" : "its tenant"} on the hub (cluster Secret with its token; the token is in no file).\nNext: commit the tenant file${done.length === 1 ? "" : "s"} in ${fleetFolder(target.stack, YAML.parse(target.text)?.config?.[`${PROJECT}:fleet`])}/.\n`,
        );
    }
    return outcomes.every((o) => o.ok) ? 0 : 1;
}

/** `up`: the tenant stacks with the hub's context only (tenants/fleet-up.ts). */
async function up(argv: string[], io: CommandIO): Promise<number> {
    const values = flagsOf("up", argv, io);
    required(values, "stack");
    const chosen = [values.name !== undefined, values.all === true, values.changed !== undefined].filter(Boolean).length;
    if (chosen !== 1) throw new UsageError("give exactly one of --name NAME (repeatable), --all or --changed GIT-REF");
    if (values.refresh && !values.preview) throw new UsageError("--refresh is for --preview (the drift check); an up never refreshes, since the tenant side cannot be read with the hub's context");
    requirePulumiFor("npm run tenant -- up", io);
    const target = openStack(values.stack!, values["project-root"], io.cwd);
    const hub: HubStack = { stack: target.stack, root: target.root };
    const selection: Selection = values.all ? { all: true } : values.changed !== undefined ? { changed: values.changed } : { names: values.name! };
    return fleetUp({
        hub,
        engine: engineFor(io, hub),
        selection,
        hubKubeconfig: hubKubeconfigOf(values, target, io),
        preview: values.preview === true,
        refreshHub: values.refresh === true,
        parallel: values.parallel ?? 4,
        log: (l) => io.stderr(`${l}\n`),
        out: (l) => io.stdout(l),
        heartbeatMs: 30000,
    });
}

const bootstrap = (argv: string[], io: CommandIO) => onboard(argv, io, false);
const rotate = (argv: string[], io: CommandIO) => onboard(argv, io, true);

/**
 * The layout before onboarding stacks (a tenant's kubeconfig in the hub stack) moved its tenants
 * into onboarding stacks and stored their tokens in the hub stack, which tenant stacks no longer
 * allow (agentfleet:tenantCredentials is retired): it is finished with an earlier agentfleet.
 */
async function migrate(argv: string[], io: CommandIO): Promise<number> {
    const values = flagsOf("migrate", argv, io);
    required(values, "stack", "name", "kubeconfig");
    throw new CommandError([
        `migrate moves a tenant of the layout before onboarding stacks (its kubeconfig in Pulumi.${values.stack}.yaml) and stores its token in the hub stack, which this agentfleet no longer reads: run \`npm run tenant -- migrate\` with an agentfleet before tenant stacks (git log -- docs/design/tenant-stacks.md), then \`npm run tenant -- migrate-registration --stack ${values.stack}\` with this one (docs/operations.md, "Tenant stacks register their tenants"). Nothing was touched.`,
    ]);
}

/** migrate-registration: the previous layout's registrations into the tenant stacks (tenants/migrate-registration.ts). */
async function migrateRegistration(argv: string[], io: CommandIO): Promise<number> {
    const values = flagsOf("migrate-registration", argv, io);
    required(values, "stack");
    const given = values.name ?? [];
    if (values.all === true && given.length > 0) throw new UsageError("give --name NAME (repeatable) or --all (the default), not both");
    requirePulumiFor("npm run tenant -- migrate-registration", io);
    const target = openStack(values.stack!, values["project-root"], io.cwd);
    const names = given.length === 0 ? tenantEntries(target.text).filter((t) => t.decommissioned !== true).map((t) => String(t.name)) : [...new Set(given)];
    const hubKubeconfig = hubKubeconfigOf(values, target, io);
    const hub: HubStack = { stack: target.stack, root: target.root };
    const outcomes = await migrateRegistrations({ hub, engine: engineFor(io, hub), tenants: names, hubKubeconfig, parallel: values.parallel ?? 4, log: (l) => io.stderr(`${l}\n`), heartbeatMs: 30000 });
    const ran = outcomes.filter((o) => o.ok && o.value?.ran).map((o) => o.tenant);
    if (outcomes.every((o) => o.ok)) {
        io.stdout(
            (ran.length > 0 ? `Migrated ${ran.join(", ")}: each tenant stack owns its cluster Secret (same UID, no write), and the stack file no longer holds its token.\n` : `Every tenant was migrated before: nothing to do.\n`) +
                `Next: commit ${target.fileName}, then the hub's pulumi up (it changes nothing on the hub).\n`,
        );
    }
    return outcomes.every((o) => o.ok) ? 0 : 1;
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

const COMMANDS: Record<string, (argv: string[], io: CommandIO) => number | Promise<number>> = { bootstrap, rotate, up, migrate, "migrate-registration": migrateRegistration, add, list, remove, "split-inventory": splitInventory };

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
