/**
 * The boundary between the tenant commands and Pulumi: everything that runs the Pulumi engine or
 * touches Pulumi state goes through `OnboardingEngine`. `automationEngine` is the real one (the
 * Automation API with inline programs, and the CLI for what the API lacks); the specs use a
 * test-only double (tests/doubles/fake-onboarding-engine.ts).
 */
import { LocalWorkspace, PulumiCommand, Stack, StackNotFoundError } from "@pulumi/pulumi/automation";
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import type { TenantKubeconfigEnv } from "./kubeconfig";
import { ONBOARDING_PROJECT, type OnboardingSettings, onboardingProgram } from "./onboarding-program";

export interface HubCredential {
    bearerToken: string;
    caData: string;
}

export interface StateResource {
    urn: string;
    type: string;
    parent?: string;
    /** A Kubernetes object's UID (its outputs' metadata.uid), when the state holds one. */
    uid?: string;
}

/** What `checkRegistration` found of a tenant stack's cluster Secret. */
export interface RegistrationCheck {
    /** The live UID of the cluster Secret (refreshed from the hub), undefined when the stack holds none. */
    uid?: string;
    /** The change summary of a preview (no refresh) after that refresh: `{same: n}` only when nothing would change. */
    changes: Record<string, number>;
}

/** What an onboarding stack holds of its tokens. */
export interface TokenState {
    /** Generations whose token is valid, oldest first; the last is the current one. */
    generations: number[];
    /** Set when an earlier agentfleet made the stack (one Secret renamed per rotation): that generation is under generation 0's resource name. */
    legacyGeneration?: number;
    /** The current generation's token (secret; compared, never printed). */
    bearerToken: string;
    /** The CA the stack registered (secret; a token tenant's stack re-registers it as given). */
    caData: string;
}

/** The TokenState of an onboarding stack's outputs (an earlier agentfleet exported only `tokenGeneration`). */
export function tokenStateOf(outputs: Record<string, unknown>): TokenState {
    const current = Number(outputs.tokenGeneration ?? 0);
    const generations = Array.isArray(outputs.tokenGenerations) ? outputs.tokenGenerations.map(Number) : [current];
    const legacy = !Array.isArray(outputs.tokenGenerations) && current > 0 ? { legacyGeneration: current } : {};
    return { generations, ...legacy, bearerToken: String(outputs.bearerToken ?? ""), caData: String(outputs.caData ?? "") };
}

export interface OnboardingEngine {
    /** The tokens of the tenant's onboarding stack; undefined when the stack does not exist. */
    tokenState(stack: string): Promise<TokenState | undefined>;
    /**
     * Creates (sharing the hub's backend and secrets provider) or updates the onboarding stack; returns
     * its credential. `env` is added to this stack's Pulumi run only: its KUBECONFIG is the tenant's.
     */
    up(stack: string, settings: OnboardingSettings, env: TenantKubeconfigEnv, options?: { refresh?: boolean }): Promise<HubCredential>;
    /**
     * Refreshes only the tenant stack's cluster Secret (the hub context suffices, Q1), then previews
     * the stack without refresh: the Secret's live UID and what an up would change.
     */
    checkRegistration(stack: string, settings: OnboardingSettings, env: TenantKubeconfigEnv): Promise<RegistrationCheck>;
    /** The hub stack's `tenantCredentials`, decrypted in this process only (never printed): the previous layout's tokens. */
    hubCredentials(): Promise<Record<string, HubCredential>>;
    /**
     * Destroys the tenant stack and removes it, its Pulumi run with `env` (the run kubeconfig: the
     * tenant's context for a bootstrap tenant, and the hub's, where its registration is deleted);
     * `forget`: the tenant's cluster is gone: with `env` (the hub's context) its registration on the hub
     * is destroyed first (only the resources of the provider named `hub`), then the stack and its state
     * are dropped without contacting the tenant.
     */
    destroy(stack: string, options: { forget: true; env?: TenantKubeconfigEnv } | { forget: false; env: TenantKubeconfigEnv }): Promise<void>;
    /**
     * `tenant up` (tenants/fleet-up.ts): previews the EXISTING tenant stack with `env` (the hub's
     * context only) and no refresh of the tenant side, then, with `apply` and when the preview has
     * changes and none of them on the tenant side, runs `up` the same way. `refreshHub`: the preview
     * first refreshes the resources of the provider named `hub` and is limited to them (drift of the
     * registration, which the hub's context alone can read: docs/design/tenant-stacks.md Q1).
     */
    hubOnly(stack: string, settings: OnboardingSettings, env: TenantKubeconfigEnv, options: { apply: boolean; refreshHub?: boolean }): Promise<HubOnlyRun>;
    /** Stores the credential in the hub stack's `tenantCredentials.<tenant>` (secret), and removes the `remove` config paths (the older `migrate` only). */
    storeHubCredential(tenant: string, credential: HubCredential, remove?: string[]): Promise<void>;
    /** Resources in the hub stack's state. */
    hubResources(): Promise<StateResource[]>;
    /** `pulumi state move` of `urns` from the hub stack into the onboarding stack (created if needed). */
    moveFromHub(stack: string, urns: string[]): Promise<void>;
    /** `pulumi state delete` of `urn` from the hub stack's state (a component that declared nothing on a cluster). */
    dropFromHub(urn: string): Promise<void>;
}

export interface AutomationOptions {
    hubStack: string;
    /** Project root of the hub (Pulumi.yaml, Pulumi.<hubStack>.yaml). */
    root: string;
    /** Environment of every Pulumi CLI call (backend, passphrase, PULUMI_HOME...). Default: this process's. */
    env?: Record<string, string>;
    /** Folder holding the `pulumi` binary; default: the one on PATH. */
    pulumiBin?: string;
}

/** One step the engine planned (a preview's `resourcePreEvent.metadata`). */
export interface PlannedStep {
    op: string;
    urn: string;
    type: string;
    /** The provider reference `<provider urn>::<id>`; empty for components and providers themselves. */
    provider?: string;
}

/** What a hub-only run of a tenant stack planned, and whether it applied it. */
export interface HubOnlyRun {
    /** Planned steps per operation, `same` included (the preview's change summary). */
    changes: Record<string, number>;
    /** Planned changes that need the tenant's own cluster ("create t1-manager-token-1"): a hub-only up would fail at them (Q1). */
    tenantSide: string[];
    /** The up ran (changes, none on the tenant side, `apply`). */
    applied: boolean;
}

/** The name of a provider reference's provider (`urn:pulumi:s::p::pulumi:providers:kubernetes::hub::<id>` -> `hub`). */
const providerName = (reference: string) => reference.split("::")[3] ?? "";

/**
 * The planned changes that would touch the tenant: every non-`same` step of a resource managed by a
 * provider other than the one named `hub`. Providers' own updates (a pulumi-kubernetes upgrade) and
 * components contact no cluster, so they are not among them (Q1: a hub-only preview plans a
 * tenant-side create without complaint; only the up fails).
 */
export function tenantSideSteps(steps: PlannedStep[]): string[] {
    return steps
        .filter((s) => s.op !== "same" && s.op !== "read" && !!s.provider && providerName(s.provider) !== "hub" && !s.type.startsWith("pulumi:providers:"))
        .map((s) => `${s.op} ${s.urn.split("::").pop()}`);
}

/** URNs of a deployment's resources managed by the provider named `hub` (the registration). */
export const hubSideUrns = (resources: Array<{ urn: string; provider?: string }>): string[] => resources.filter((r) => !!r.provider && providerName(r.provider) === "hub").map((r) => r.urn);

/** Secrets provider settings of the hub stack file, shared by its onboarding stacks (same passphrase, KMS key or Pulumi Cloud). */
export function hubSecretsSettings(stackText: string): { secretsProvider?: string; encryptedKey?: string; encryptionSalt?: string } {
    const doc = (YAML.parse(stackText) ?? {}) as Record<string, unknown>;
    const str = (k: string) => (typeof doc[k] === "string" ? (doc[k] as string) : undefined);
    return Object.fromEntries(
        Object.entries({ secretsProvider: str("secretsprovider"), encryptedKey: str("encryptedkey"), encryptionSalt: str("encryptionsalt") }).filter(([, v]) => v !== undefined),
    );
}

/**
 * The bearer token in the hub state's cluster Secret of `tenant` (state exported with its secrets
 * shown). The Kubernetes provider stores a Secret's `stringData` as `data` (base64 per key), the
 * whole map in a secret envelope whose JSON is in `plaintext`.
 */
export function registeredTokenIn(resources: Array<{ type?: string; inputs?: Record<string, any> }>, tenant: string): string | undefined {
    const secret = resources.find((r) => r.type === "kubernetes:core/v1:Secret" && r.inputs?.metadata?.name === `cluster-${tenant}` && r.inputs?.metadata?.labels?.["argocd.argoproj.io/secret-type"] === "cluster");
    const revealed = (value: any) => (value && typeof value.plaintext === "string" ? JSON.parse(value.plaintext) : value);
    const data = revealed(secret?.inputs?.data);
    const config = typeof data?.config === "string" ? Buffer.from(data.config, "base64").toString("utf8") : revealed(secret?.inputs?.stringData)?.config;
    if (typeof config !== "string") return undefined;
    try {
        return JSON.parse(config).bearerToken;
    } catch {
        return undefined;
    }
}

/** A tenant stack's cluster Secret in its state export: the Secret managed by the provider named `hub` (its registration). */
export function registrationSecretIn(resources: Array<{ urn: string; type: string; provider?: string; outputs?: { metadata?: { uid?: unknown } } }>): { urn: string; uid?: string } | undefined {
    const secret = resources.find((r) => r.type === "kubernetes:core/v1:Secret" && r.provider?.split("::")[3] === "hub");
    if (!secret) return undefined;
    const uid = secret.outputs?.metadata?.uid;
    return { urn: secret.urn, ...(typeof uid === "string" ? { uid } : {}) };
}

/** The last lines of a failed CLI run: enough to act on, without pages of engine output. */
const lastLines = (text: string, n = 8) => text.trim().split("\n").filter(Boolean).slice(-n).join("\n");

/** The engine's own verdicts, which say only that the run failed; they come before or after the reasons, in no fixed order. */
const ENGINE_SUMMARY = /^error: (update|preview|destroy|refresh) failed$/;

/**
 * Why a Pulumi run failed, from its output: the engine's `error:` diagnostics (the provider's own
 * reasons, each once, first), which the summary at the end ("8 errored") leaves out; else the last lines.
 */
export function failureReason(output: string): string {
    const errors = [...new Set(output.split("\n").map((l) => l.trim()).filter((l) => /^error: /.test(l)))];
    const ordered = [...errors.filter((l) => !ENGINE_SUMMARY.test(l)), ...errors.filter((l) => ENGINE_SUMMARY.test(l))];
    return ordered.length > 0 ? ordered.slice(0, 5).join("\n") : lastLines(output);
}

export function automationEngine(options: AutomationOptions): OnboardingEngine {
    const env = options.env ?? (process.env as Record<string, string>);
    let command: Promise<PulumiCommand> | undefined;
    const pulumiCommand = () => (command ??= PulumiCommand.get(options.pulumiBin ? { root: path.dirname(options.pulumiBin) } : {}));
    const hubFile = () => path.join(options.root, `Pulumi.${options.hubStack}.yaml`);

    /** A workspace per call: `runEnv` (a tenant's KUBECONFIG) reaches this stack's run only, never another tenant's running beside it. */
    const onboardingWorkspace = async (stack: string, settings?: OnboardingSettings, runEnv?: TenantKubeconfigEnv) => {
        const secrets = hubSecretsSettings(fs.readFileSync(hubFile(), "utf8"));
        return LocalWorkspace.create({
            ...(settings ? { program: onboardingProgram(settings) } : {}),
            projectSettings: { name: ONBOARDING_PROJECT, runtime: "nodejs", description: "One tenant's argocd-manager identity (agentfleet tenants/)" },
            stackSettings: { [stack]: secrets },
            ...(secrets.secretsProvider ? { secretsProvider: secrets.secretsProvider } : {}),
            envVars: { ...env, ...runEnv },
            pulumiCommand: await pulumiCommand(),
        });
    };
    /**
     * The stack, or undefined when it does not exist: one `pulumi stack select`, never `stack ls`,
     * which reads every stack's state (with a 1,000-tenant fleet on a file backend, about 2 CPU-s a
     * call: `tenant up --all` ran at half its speed).
     */
    const selectIfExists = async (ws: LocalWorkspace, stack: string): Promise<Stack | undefined> => {
        try {
            return await Stack.select(stack, ws);
        } catch (err) {
            if (err instanceof StackNotFoundError) return undefined;
            throw err;
        }
    };
    const hubWorkspace = async () => LocalWorkspace.create({ workDir: options.root, envVars: env, pulumiCommand: await pulumiCommand() });

    /** Runs the CLI with `input` on standard input (secret values never go into argv, where `ps` shows them). */
    const cli = async (args: string[], cwd: string, input = ""): Promise<string> => {
        const bin = (await pulumiCommand()).command;
        return new Promise((resolve, reject) => {
            const child = spawn(bin, [...args, "--non-interactive"], { cwd, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
            let out = "";
            let err = "";
            child.stdout.on("data", (d) => (out += d));
            child.stderr.on("data", (d) => (err += d));
            child.on("error", reject);
            child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`pulumi ${args.slice(0, 2).join(" ")} failed: ${lastLines(err || out) || `exit code ${code}`}`))));
            child.stdin.on("error", () => undefined);
            child.stdin.end(input);
        });
    };

    return {
        async tokenState(stack) {
            const s = await selectIfExists(await onboardingWorkspace(stack), stack);
            if (!s) return undefined;
            const outputs = await s.outputs();
            return tokenStateOf(Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value])));
        },
        async up(stack, settings, runEnv, upOptions) {
            const ws = await onboardingWorkspace(stack, settings, runEnv);
            const s = await Stack.createOrSelect(stack, ws);
            try {
                // Refresh first, so running bootstrap again repairs what was changed by hand on the tenant.
                await s.up({ refresh: upOptions?.refresh ?? true });
            } catch (err) {
                throw new Error(`pulumi up of ${stack} failed: ${failureReason(String((err as Error).message))}`);
            }
            const outputs = await s.outputs();
            const bearerToken = String(outputs.bearerToken?.value ?? "");
            const caData = String(outputs.caData?.value ?? "");
            if (!bearerToken || !caData) throw new Error(`${stack} exported no token or CA: the tenant's token controller did not fill argocd-manager's token Secret`);
            return { bearerToken, caData };
        },
        async destroy(stack, options) {
            const ws = await onboardingWorkspace(stack, undefined, options.env);
            const s = await selectIfExists(ws, stack);
            if (!s) return;
            try {
                if (options.forget && options.env) {
                    // Only the registration: what the provider named `hub` manages. The tenant is not contacted.
                    const deployment = (await s.exportStack()).deployment as { resources?: Array<{ urn: string; provider?: string }> };
                    const onHub = hubSideUrns(deployment.resources ?? []);
                    if (onHub.length > 0) await s.destroy({ target: onHub });
                } else if (!options.forget) await s.destroy();
            } catch (err) {
                throw new Error(`pulumi destroy of ${stack} failed: ${failureReason(String((err as Error).message))}${options.forget ? "" : "; if the cluster is gone for good, use --decommission"}`);
            }
            await ws.removeStack(stack, options.forget ? { force: true } : undefined);
        },
        async hubOnly(stack, settings, runEnv, runOptions) {
            const ws = await onboardingWorkspace(stack, settings, runEnv);
            // Select, never create: a stack that does not exist is bootstrap's (it needs the tenant's kubeconfig).
            const s = await Stack.select(stack, ws);
            const steps: PlannedStep[] = [];
            const onEvent = (event: { resourcePreEvent?: { metadata: PlannedStep } }) => {
                const m = event.resourcePreEvent?.metadata;
                if (m) steps.push({ op: m.op, urn: m.urn, type: m.type, provider: m.provider });
            };
            let changes: Record<string, number>;
            try {
                const target = runOptions.refreshHub ? hubSideUrns(((await s.exportStack()).deployment as { resources?: Array<{ urn: string; provider?: string }> }).resources ?? []) : [];
                const preview = await s.preview({ onEvent, ...(runOptions.refreshHub ? { refresh: true, target } : {}) });
                changes = Object.fromEntries(Object.entries(preview.changeSummary ?? {}).filter(([, n]) => (n ?? 0) > 0)) as Record<string, number>;
            } catch (err) {
                throw new Error(`pulumi preview of ${stack} failed: ${failureReason(String((err as Error).message))}`);
            }
            const tenantSide = tenantSideSteps(steps);
            const changing = Object.entries(changes).some(([op, n]) => op !== "same" && n > 0);
            if (!runOptions.apply || tenantSide.length > 0 || !changing) return { changes, tenantSide, applied: false };
            try {
                await s.up({});
            } catch (err) {
                throw new Error(`pulumi up of ${stack} failed: ${failureReason(String((err as Error).message))}`);
            }
            return { changes, tenantSide, applied: true };
        },
        async checkRegistration(stack, settings, runEnv) {
            const ws = await onboardingWorkspace(stack, settings, runEnv);
            const s = await Stack.select(stack, ws);
            const secretOf = async () => registrationSecretIn(((await s.exportStack()).deployment as { resources?: Parameters<typeof registrationSecretIn>[0] }).resources ?? []);
            const before = await secretOf();
            try {
                if (before) await s.refresh({ target: [before.urn] });
                const preview = await s.preview();
                return { uid: (await secretOf())?.uid, changes: preview.changeSummary as Record<string, number> };
            } catch (err) {
                throw new Error(`checking ${stack} failed: ${failureReason(String((err as Error).message))}`);
            }
        },
        async hubCredentials() {
            // `pulumi config --show-secrets --json`: the values stay in this process.
            const config = JSON.parse(await cli(["config", "--show-secrets", "--json", "--stack", options.hubStack], options.root)) as Record<string, { value?: string; objectValue?: unknown }>;
            const entry = config[`agentfleet:tenantCredentials`];
            const value = entry?.objectValue ?? (entry?.value ? JSON.parse(entry.value) : {});
            const credentials: Record<string, HubCredential> = {};
            for (const [tenant, fields] of Object.entries((value ?? {}) as Record<string, Record<string, unknown>>)) {
                if (typeof fields?.bearerToken === "string" && typeof fields?.caData === "string") credentials[tenant] = { bearerToken: fields.bearerToken, caData: fields.caData };
            }
            return credentials;
        },
        async storeHubCredential(tenant, credential, remove = []) {
            for (const [field, value] of Object.entries(credential)) {
                await cli(["config", "set", "--stack", options.hubStack, "--secret", "--path", `tenantCredentials.${tenant}.${field}`], options.root, value);
            }
            for (const key of remove) await cli(["config", "rm", "--stack", options.hubStack, "--path", key], options.root);
        },
        async hubResources() {
            const deployment = await (await hubWorkspace()).exportStack(options.hubStack);
            const resources = ((deployment.deployment as { resources?: Array<Record<string, unknown>> })?.resources ?? []) as Array<{ urn: string; type: string; parent?: string }>;
            return resources.map((r) => {
                const uid = (r as { outputs?: { metadata?: { uid?: unknown } } }).outputs?.metadata?.uid;
                return { urn: r.urn, type: r.type, ...(r.parent ? { parent: r.parent } : {}), ...(typeof uid === "string" ? { uid } : {}) };
            });
        },
        async moveFromHub(stack, urns) {
            const ws = await onboardingWorkspace(stack);
            await Stack.createOrSelect(stack, ws);
            // The hub stack lives in another project: the move needs its fully qualified name.
            const source = (await cli(["stack", "--show-name", "--fully-qualify-stack-names", "--stack", options.hubStack], options.root)).trim();
            await cli(["state", "move", "--source", source, "--dest", stack, "--yes", ...urns], ws.workDir);
        },
        async dropFromHub(urn) {
            await cli(["state", "delete", "--stack", options.hubStack, "--yes", urn], options.root);
        },
    };
}
