/**
 * Test-only double of the Automation API boundary (tenants/engine.ts): keeps onboarding stacks in
 * memory, stores hub credentials as `secure:` placeholders in the stack file (as `pulumi config
 * set --secret --path` would), and records how many `up`s run at once. Never used by the program.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import type { HubCredential, HubOnlyRun, OnboardingEngine, RegistrationCheck, StateResource, TokenState } from "../../tenants/engine";
import type { TenantKubeconfigEnv } from "../../tenants/kubeconfig";
import type { OnboardingSettings } from "../../tenants/onboarding-program";

export interface FakeEngineOptions {
    /** Tenants whose `up` fails (the cluster is unreachable), each with its message. */
    failing?: Map<string, string>;
    /** How long each `up` takes, ms. */
    upMs?: number;
    /** Hub state resources (for migrate). */
    hubState?: StateResource[];
    /** Tenants whose cluster Secret on the hub was edited out of band: a refresh of the hub side sees it. */
    hubDrift?: Set<string>;
    /** The hub stack's decrypted tenantCredentials (for migrate-registration). */
    hubCredentials?: Record<string, HubCredential>;
    /** What a second preview of a tenant's stack plans (default: all same). */
    secondPreview?: Map<string, Record<string, number>>;
}

/** What a stack's Pulumi run would have found at its KUBECONFIG, seen while it ran. */
export interface SeenKubeconfig {
    stack: string;
    file: string;
    /** Permission bits of the file. */
    mode: number;
    /** Its text (a test kubeconfig). */
    text: string;
}

export class FakeOnboardingEngine implements OnboardingEngine {
    readonly stacks = new Map<string, { settings: OnboardingSettings; ups: number }>();
    readonly calls: string[] = [];
    /** Each run's KUBECONFIG, as the run saw it. */
    readonly kubeconfigs: SeenKubeconfig[] = [];
    running = 0;
    maxRunning = 0;
    hubState: StateResource[];

    constructor(
        private readonly hubFile: string,
        readonly options: FakeEngineOptions = {},
    ) {
        this.hubState = options.hubState ?? [];
    }

    /** The token each tenant's cluster Secret on the hub holds: what its tenant stack's last `up` registered (deleted with its registration). */
    readonly hubRegistered = new Map<string, string>();

    async tokenState(stack: string): Promise<TokenState | undefined> {
        const settings = this.stacks.get(stack)?.settings;
        const preIssued = settings?.registration?.preIssued;
        return settings && { generations: settings.tokenGenerations, bearerToken: preIssued?.bearerToken ?? fakeToken(settings.tenant, settings.tokenGenerations.at(-1)!), caData: preIssued?.caData ?? `fake-ca-${settings.tenant}` };
    }

    private see(stack: string, env: TenantKubeconfigEnv): void {
        this.kubeconfigs.push({ stack, file: env.KUBECONFIG, mode: fs.statSync(env.KUBECONFIG).mode & 0o777, text: fs.readFileSync(env.KUBECONFIG, "utf8") });
    }

    /** One Pulumi run of a stack: its KUBECONFIG seen, counted while it runs, `upMs` long, failing as `failing` says. */
    private async run<T>(stack: string, settings: OnboardingSettings, env: TenantKubeconfigEnv, work: () => Promise<T>): Promise<T> {
        this.see(stack, env);
        this.running++;
        this.maxRunning = Math.max(this.maxRunning, this.running);
        try {
            await new Promise((resolve) => setTimeout(resolve, this.options.upMs ?? 20));
            const failure = this.options.failing?.get(settings.tenant);
            if (failure) throw new Error(failure);
            return await work();
        } finally {
            this.running--;
        }
    }

    /** The live UID of each tenant's cluster Secret on the hub: kept by an up that finds it, new when an up creates it. */
    readonly hubUids = new Map<string, string>();

    async up(stack: string, settings: OnboardingSettings, env: TenantKubeconfigEnv, options?: { refresh?: boolean }): Promise<HubCredential> {
        this.calls.push(`up ${stack} generations ${settings.tokenGenerations.join(",")}${options?.refresh === false ? " no-refresh" : ""}`);
        return this.run(stack, settings, env, async () => {
            const previous = this.stacks.get(stack);
            this.stacks.set(stack, { settings, ups: (previous?.ups ?? 0) + 1 });
            const credential = settings.registration?.preIssued ?? { bearerToken: fakeToken(settings.tenant, settings.tokenGenerations.at(-1)!), caData: `fake-ca-${settings.tenant}` };
            if (settings.registration) {
                this.hubRegistered.set(settings.tenant, credential.bearerToken);
                if (!this.hubUids.has(settings.tenant)) this.hubUids.set(settings.tenant, `uid-${settings.tenant}-new-${this.hubUids.size}`);
            }
            return credential;
        });
    }

    /**
     * A hub-only run: the registration's change is on the hub; new namespaces or token generations of
     * a bootstrap tenant are on the tenant (planned, never applied here, as a real hub-only up fails at them).
     */
    async hubOnly(stack: string, settings: OnboardingSettings, env: TenantKubeconfigEnv, options: { apply: boolean; refreshHub?: boolean }): Promise<HubOnlyRun> {
        this.calls.push(`hubOnly ${stack} ${options.apply ? "apply" : "preview"}${options.refreshHub ? " refresh-hub" : ""}`);
        return this.run(stack, settings, env, async () => {
            const previous = this.stacks.get(stack);
            if (!previous) throw new Error(`no stack named '${stack}' found`);
            const was = previous.settings;
            const tenantSide = settings.registration?.preIssued
                ? []
                : [
                      ...settings.namespaces.filter((n) => !was.namespaces.includes(n)).map((n) => `create ${settings.tenant}-deployer-${n}`),
                      ...settings.tokenGenerations.filter((g) => !was.tokenGenerations.includes(g)).map((g) => `create ${settings.tenant}-manager-token-${g}`),
                  ];
            const drifted = options.refreshHub === true && this.options.hubDrift?.has(settings.tenant) === true;
            const hubChanged = JSON.stringify(was.registration) !== JSON.stringify(settings.registration) || drifted;
            const update = hubChanged ? 1 : 0;
            const changes: Record<string, number> = { same: 12 - update - tenantSide.length, ...(update ? { update } : {}), ...(tenantSide.length ? { create: tenantSide.length } : {}) };
            const applied = options.apply && tenantSide.length === 0 && update > 0;
            if (applied) {
                this.stacks.set(stack, { settings, ups: previous.ups + 1 });
                this.options.hubDrift?.delete(settings.tenant);
                if (settings.registration) this.hubRegistered.set(settings.tenant, (await this.tokenState(stack))!.bearerToken);
            }
            return { changes, tenantSide, applied };
        });
    }

    async destroy(stack: string, options: { forget: true; env?: TenantKubeconfigEnv } | { forget: false; env: TenantKubeconfigEnv }): Promise<void> {
        this.calls.push(`destroy ${stack}${options.forget ? " forget" : ""}`);
        if (options.env) this.see(stack, options.env);
        const tenant = this.stacks.get(stack)?.settings.tenant;
        // The registration goes with the stack; forgotten without the hub's context, it stays on the hub.
        if (tenant && options.env) this.hubRegistered.delete(tenant);
        this.stacks.delete(stack);
    }

    async checkRegistration(stack: string, settings: OnboardingSettings, env: TenantKubeconfigEnv): Promise<RegistrationCheck> {
        this.calls.push(`check ${stack}`);
        this.see(stack, env);
        return { uid: this.hubUids.get(settings.tenant), changes: this.options.secondPreview?.get(settings.tenant) ?? { same: 3 } };
    }

    async hubCredentials(): Promise<Record<string, HubCredential>> {
        this.calls.push("hubCredentials");
        return this.options.hubCredentials ?? {};
    }

    async storeHubCredential(tenant: string, credential: HubCredential, remove: string[] = []): Promise<void> {
        this.calls.push(`store ${tenant}${remove.length ? ` remove ${remove.join(",")}` : ""}`);
        const doc = YAML.parseDocument(fs.readFileSync(this.hubFile, "utf8"));
        // The placeholder names the credential's value (fake tokens only), so committedToken can read it back.
        for (const [field, value] of Object.entries(credential)) doc.setIn(["config", "agentfleet:tenantCredentials", tenant, field], doc.createNode({ secure: `v1:fake:${field}:${Buffer.from(value).toString("base64")}` }));
        for (const key of remove) doc.deleteIn(["config", "agentfleet:tenantCredentials", ...key.split(".").slice(1)]);
        fs.writeFileSync(this.hubFile, doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
    }

    async hubResources(): Promise<StateResource[]> {
        return this.hubState;
    }

    async dropFromHub(urn: string): Promise<void> {
        this.calls.push(`drop ${urn.split("::").pop()}`);
        this.hubState = this.hubState.filter((r) => r.urn !== urn);
    }

    /** Moves at once on the hub stack's state (each rewrites it whole: overlapping moves would lose one). */
    movesRunning = 0;
    maxMovesRunning = 0;

    async moveFromHub(stack: string, urns: string[]): Promise<void> {
        this.calls.push(`move ${stack} ${urns.length}`);
        this.movesRunning++;
        this.maxMovesRunning = Math.max(this.maxMovesRunning, this.movesRunning);
        await new Promise((resolve) => setTimeout(resolve, 10));
        this.movesRunning--;
        this.hubState = this.hubState.filter((r) => !urns.includes(r.urn));
    }
}

const fakeToken = (tenant: string, generation: number) => `fake-token-${tenant}-${generation}`;

export const hubFileOf = (root: string, stack: string) => path.join(root, `Pulumi.${stack}.yaml`);
