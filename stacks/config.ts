/**
 * Typed stack configuration: one loader that reads every `agentfleet:*` key, validates the whole
 * configuration before any resource is declared, and reports every problem at once with the key
 * path in the stack file (for example `agentfleet:hub.server`), or the tenant file and key
 * (`fleet/prod/prod-acme-eu.yaml: server`): the tenant inventory is one file per tenant.
 *
 * Secrets are read only through `requireSecret` / `getSecretObject`; the loader looks at their
 * shape (which credential fields are present) inside `apply`, and never copies a value out.
 */
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_KEYS, ConfigError, type FleetConfig, type NotificationSecrets, PROJECT } from "./config-types";
import { hubKubeconfigProblem } from "./hub-kubeconfig";
import { heldRegistrations, heldRegistrationsProblem, readHubState } from "./hub-state";
import { fleetFolder, readInventory } from "./inventory";
import { type Plain, type RawConfig, type SecretShapes, validateConfig } from "./validate";

export * from "./config-types";
export * from "./hub-kubeconfig";
export * from "./hub-state";
export * from "./inventory";
export * from "./reader";
export * from "./rollout-rules";
export * from "./validate";

function shapeOf<T, U>(output: pulumi.Output<T>, shape: (value: T) => U): Promise<U> {
    return new Promise((resolve) => output.apply((v) => resolve(shape(v))));
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** Names of the non-empty string fields of an object: all a secret's shape reveals. */
export const fieldsOf = (v: unknown): string[] => (isPlainObject(v) ? Object.entries(v).filter(([, x]) => typeof x === "string" && x !== "").map(([f]) => f) : []);

/**
 * One configuration value as the Pulumi CLI hands it to the program: JSON for structured values
 * (always for secret objects), a plain string for scalars. Unparsable structure is a problem.
 */
export function parseConfigValue(key: string, text: string, problems: string[], structured = false): unknown {
    if (!structured && !/^[[{]/.test(text.trim())) return text;
    try {
        return JSON.parse(text);
    } catch {
        problems.push(`${PROJECT}:${key}: is not ${structured ? "a structured secret: store each entry with `pulumi config set --secret --path '" + key + ".<entry>'`" : "valid structured configuration"}`);
        return undefined;
    }
}

/** Which tokens `notificationSecrets` has. */
export const notificationSecretsShape = (v: unknown): string[] | "not-an-object" => (isPlainObject(v) ? fieldsOf(v) : "not-an-object");

/** `agentfleet:` keys the project does not read (from fully qualified configuration keys). */
export const unknownConfigKeys = (fullKeys: string[]): string[] =>
    fullKeys
        .filter((full) => full.startsWith(`${PROJECT}:`))
        .map((full) => full.slice(PROJECT.length + 1))
        .filter((key) => !(key in CONFIG_KEYS));

/**
 * Reads and validates the stack configuration through the Pulumi Config API. Throws ConfigError
 * (every problem at once) before any resource is declared.
 */
export async function loadConfig(): Promise<FleetConfig> {
    const config = new pulumi.Config(PROJECT);
    const raw: RawConfig = {};
    const problems: string[] = [];
    for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
        const text = spec.secret ? undefined : config.get(key);
        if (text !== undefined) (raw as Record<string, unknown>)[key] = parseConfigValue(key, text, problems);
    }
    // Secret objects are read as secret strings and parsed inside the Output, so a value that is
    // not JSON becomes a ConfigError instead of a crash, and no plaintext leaves the Output.
    const secretObject = (key: string) => {
        const text = config.getSecret(key);
        return text && { text, value: text.apply((t) => parseConfigValue(key, t, [], true) ?? {}) };
    };
    const notificationSecrets = secretObject("notificationSecrets");
    const structuredShape = async <U>(key: string, entry: ReturnType<typeof secretObject>, shape: (v: unknown) => U): Promise<U | undefined> =>
        entry ? shapeOf(entry.text, (t) => shape(parseConfigValue(key, t, problems, true))) : undefined;
    const secrets: SecretShapes = {
        notificationSecrets: await structuredShape("notificationSecrets", notificationSecrets, notificationSecretsShape),
    };
    let plain: Plain | undefined;
    try {
        // The inventory folder is relative to the project root: the working directory under the CLI.
        const inventory = readInventory(process.cwd(), fleetFolder(pulumi.getStack(), raw.fleet));
        plain = validateConfig(pulumi.getStack(), raw, secrets, unknownConfigKeys(Object.keys(pulumi.runtime.allConfig())), inventory);
    } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        problems.push(...err.problems);
    }
    // Only a valid configuration names the hub to check the run's kubeconfig against.
    const unreachable = plain && problems.length === 0 ? hubKubeconfigProblem(plain.stack, plain.hub, process.env) : undefined;
    if (unreachable) problems.push(unreachable);
    // Last, and only for a run that could go ahead: it reads the stack's state (docs/design/tenant-stacks.md, Q3).
    if (plain && problems.length === 0) {
        const state = readHubState(plain.stack, process.env, process.cwd());
        const held = "problem" in state ? [] : heldRegistrations(state);
        if ("problem" in state) problems.push(state.problem);
        else if (held.length > 0) problems.push(heldRegistrationsProblem(plain.stack, held));
    }
    if (problems.length > 0 || !plain) throw new ConfigError(problems);
    return {
        ...plain,
        notificationSecrets: (notificationSecrets?.value ?? pulumi.secret({})) as pulumi.Output<NotificationSecrets>,
    };
}
