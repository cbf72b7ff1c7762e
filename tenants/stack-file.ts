/**
 * Edits of a hub stack's tenant entries that keep its comments and formatting byte for byte,
 * and the check of the result with the project's own loader (`validateConfig`) before anything is
 * written. Used by every `npm run tenant` command that changes a stack.
 *
 * The tenants are files, one per tenant (stacks/inventory.ts); the commands edit a view of the
 * stack, the stack file's text with the inventory listed under `agentfleet:tenants` as stack files
 * once did (`readView`), and `writeView` writes each change back to the file it belongs in.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { type CredentialMode, ConfigError, DEFAULT_AGENT_NAMESPACE, PROJECT, RETIRED_KEYS, fleetFolder, inventoryList, parseTenantFile, readInventory, suggestion, tenantFileText, validateConfig, yamlErrorText } from "../stacks/config";
import { readStackConfig, validateStackConfig } from "../evaluator/evaluate";
import { writeFileAtomic } from "./stack-lock";

/** A refusal with a message for the user (never containing credential content). */
export class CommandError extends Error {
    constructor(readonly problems: string[]) {
        super(problems.join("\n"));
        this.name = "CommandError";
    }
}

export const TENANTS_KEY = `${PROJECT}:tenants`;
export const FLEET_KEY = `${PROJECT}:fleet`;
export const CREDENTIALS_KEY = `${PROJECT}:tenantCredentials`;

export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** What a YAML error is and where, without the parser's excerpt (it can quote the file's content). */
export const yamlErrorAt = (err: YAML.YAMLError): string => yamlErrorText(err);

/** The credential fields already stored (as secure values) for the tenant in the stack file. */
export function storedCredentialFields(stackText: string, name: string): string[] {
    const entry = YAML.parse(stackText)?.config?.[CREDENTIALS_KEY]?.[name];
    return isObject(entry) ? Object.keys(entry).filter((f) => isObject(entry[f]) && "secure" in (entry[f] as object)) : [];
}

/** The tenant entries of the stack file as plain objects (empty when there are none). */
export function tenantEntries(stackText: string): Array<Record<string, unknown>> {
    const entries: unknown = YAML.parse(stackText)?.config?.[TENANTS_KEY];
    return Array.isArray(entries) ? entries.filter(isObject) : [];
}

// ---------------------------------------------------------------------------------------------
// Stack file edits

/** The layout of the stack files; every edit first checks these options reproduce the file exactly. */
const STACK_FILE_FORMAT: YAML.ToStringOptions = { lineWidth: 0, flowCollectionPadding: false };

/** A tenant entry as written under `agentfleet:tenants` (optional fields only when given). */
export interface TenantEntry {
    name: string;
    server: string;
    env?: string;
    ring: string;
    region: string;
    credentials: CredentialMode;
    labels?: Record<string, string>;
    namespaces?: string[];
    /** Written by the onboarding command: the namespaces its stack granted argocd-manager. */
    grantedNamespaces?: string[];
}

/** The agent namespaces of a tenant entry. */
export const entryNamespaces = (entry: Record<string, unknown>): string[] => (Array.isArray(entry.namespaces) ? entry.namespaces.map(String) : [DEFAULT_AGENT_NAMESPACE]);

export function parseYaml(text: string): YAML.Document {
    const doc = YAML.parseDocument(text);
    if (doc.errors.length > 0) throw new CommandError([`is not valid YAML (${yamlErrorAt(doc.errors[0])})`]);
    return doc;
}

/** Applies `edit` to the stack file's document and returns the new text, or refuses to reformat. */
function editStackText(text: string, edit: (config: YAML.YAMLMap, doc: YAML.Document) => void): string {
    const doc = parseYaml(text);
    const rendered = doc.toString(STACK_FILE_FORMAT);
    if (rendered !== text) {
        const [before, after] = [text.split("\n"), rendered.split("\n")];
        const line = before.findIndex((l, i) => l !== after[i]) + 1;
        throw new CommandError([`cannot be edited without reformatting it (line ${line} would change); make this change by hand`]);
    }
    const config = doc.get("config", true);
    if (!YAML.isMap(config)) throw new CommandError(["has no config: map"]);
    edit(config, doc);
    return doc.toString(STACK_FILE_FORMAT);
}

function tenantsOf(config: YAML.YAMLMap): YAML.YAMLSeq {
    const tenants = config.get(TENANTS_KEY, true);
    if (!YAML.isSeq(tenants)) throw new CommandError([`${TENANTS_KEY}: is not a list of tenants`]);
    return tenants;
}

function tenantIndex(tenants: YAML.YAMLSeq, name: string): number {
    const names = tenants.items.map((item) => (YAML.isMap(item) ? String(item.get("name")) : ""));
    const index = names.indexOf(name);
    if (index < 0) throw new CommandError([`${TENANTS_KEY}: no tenant is named ${JSON.stringify(name)}${suggestion(name, names)} (tenants: ${names.join(", ")})`]);
    return index;
}

/** Appends `entry` to `agentfleet:tenants`; everything else stays byte-identical. */
export function addTenant(stackText: string, entry: TenantEntry): string {
    return editStackText(stackText, (config, doc) => {
        if (config.has(TENANTS_KEY)) tenantsOf(config).add(doc.createNode(entry));
        else config.set(TENANTS_KEY, doc.createNode([entry]));
    });
}

/** Removes the tenant's entry and its `tenantCredentials` entry. */
export function removeTenant(stackText: string, name: string): string {
    return editStackText(stackText, (config) => {
        const tenants = tenantsOf(config);
        tenants.delete(tenantIndex(tenants, name));
        const credentials = config.get(CREDENTIALS_KEY, true);
        if (YAML.isMap(credentials)) credentials.delete(name);
    });
}

/** The tenants the stack file's retired `tenantCredentials` still lists. */
export function credentialTenants(stackText: string): string[] {
    const credentials = YAML.parse(stackText)?.config?.[CREDENTIALS_KEY];
    return isObject(credentials) ? Object.keys(credentials) : [];
}

/** Removes `tenantCredentials.<name>` (every tenant's with no name), and the key itself once it lists no tenant; everything else byte-identical. */
export function dropTenantCredentials(stackText: string, name?: string): string {
    if (!(name === undefined ? credentialTenants(stackText).length > 0 || YAML.parse(stackText)?.config?.[CREDENTIALS_KEY] !== undefined : credentialTenants(stackText).includes(name))) return stackText;
    return editStackText(stackText, (config) => {
        const credentials = config.get(CREDENTIALS_KEY, true);
        if (name !== undefined && YAML.isMap(credentials)) credentials.delete(name);
        if (name === undefined || !YAML.isMap(credentials) || credentials.items.length === 0) config.delete(CREDENTIALS_KEY);
    });
}

/** Marks the tenant `decommissioned: true` (its credentials stay: the provider still needs them). */
export function decommissionTenant(stackText: string, name: string): string {
    return editStackText(stackText, (config) => {
        const tenants = tenantsOf(config);
        const entry = tenants.items[tenantIndex(tenants, name)];
        if (!YAML.isMap(entry)) return; // tenantIndex finds maps only
        const current = entry.get("decommissioned");
        if (current === true || current === "true") throw new CommandError([`tenant ${name} is already decommissioned; after its pulumi up, remove the entry with \`remove\` (without --decommission)`]);
        entry.set("decommissioned", true);
    });
}

export const DEPLOY_KEY = `${PROJECT}:deploy`;

/** Sets `agentfleet:deploy.targetRevision` (a promotion); everything else stays byte-identical. */
export function setTargetRevision(stackText: string, revision: string): string {
    return editStackText(stackText, (config) => {
        const deploy = config.get(DEPLOY_KEY, true);
        if (!YAML.isMap(deploy)) throw new CommandError([`${DEPLOY_KEY}: is not a map with targetRevision`]);
        deploy.set("targetRevision", revision);
    });
}

/** Records on the tenant's entry the namespaces its onboarding stack granted argocd-manager. */
export function recordGrantedNamespaces(stackText: string, name: string, namespaces: string[]): string {
    return editStackText(stackText, (config, doc) => {
        const tenants = tenantsOf(config);
        const entry = tenants.items[tenantIndex(tenants, name)];
        if (YAML.isMap(entry)) entry.set("grantedNamespaces", doc.createNode([...namespaces]));
    });
}

// ---------------------------------------------------------------------------------------------
// Validation with the project's loader

/**
 * Checks a view of the stack (`readView`) as its configuration with `validateConfig`, the way `loadConfig`
 * sees it under `pulumi up`: project defaults from Pulumi.yaml, structures as JSON, and secure
 * values by shape only.
 */
export function checkStack(stack: string, viewText: string, root: string): ReturnType<typeof validateConfig> {
    const { stackText, entries } = splitView(viewText);
    const parsed: unknown = parseYaml(stackText).toJS();
    const fileConfig: Record<string, unknown> = isObject(parsed) && isObject(parsed.config) ? parsed.config : {};
    const { config } = readStackConfig(stack, { root, config: fileConfig });
    const folder = fleetFolder(stack, fileConfig[FLEET_KEY]);
    // One file per tenant: a second entry of a name would overwrite a file the command did not write.
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const name of entries.map((e) => String(e.name))) {
        if (seen.has(name)) problems.push(`${folder}/${name}.yaml: duplicate tenant name ${JSON.stringify(name)}: the file already exists, and a tenant file is never overwritten; choose another name`);
        seen.add(name);
    }
    if (problems.length > 0) throw new ConfigError(problems);
    return validateStackConfig(stack, config, { folder, entries: entries.map(({ name, ...value }) => ({ file: `${folder}/${String(name)}.yaml`, name: String(name), value })), problems: [] });
}

// ---------------------------------------------------------------------------------------------
// The view the commands edit: the stack file with its inventory listed

const stackFileOf = (root: string, stack: string) => path.join(root, `Pulumi.${stack}.yaml`);
const configOf = (stackText: string): Record<string, unknown> => {
    const parsed: unknown = parseYaml(stackText).toJS();
    return isObject(parsed) && isObject(parsed.config) ? parsed.config : {};
};
/** The inventory folder of the stack whose file is `stackText`, absolute. */
const inventoryDir = (root: string, stack: string, stackText: string) => path.resolve(root, fleetFolder(stack, configOf(stackText)[FLEET_KEY]));

/** The stack file's text with `entries` (tenant entries with names) listed under `agentfleet:tenants`, last. */
export function inventoryView(stackText: string, entries: Array<Record<string, unknown>>): string {
    if (entries.length === 0) return stackText;
    return editStackText(stackText, (config, doc) => config.set(TENANTS_KEY, doc.createNode(entries)));
}

/** A view split again: the stack file's text and the tenant entries (with names). */
export function splitView(viewText: string): { stackText: string; entries: Array<Record<string, unknown>> } {
    const parsed: unknown = parseYaml(viewText).toJS();
    const listed = isObject(parsed) && isObject(parsed.config) ? parsed.config[TENANTS_KEY] : undefined;
    if (listed === undefined) return { stackText: viewText, entries: [] };
    if (!Array.isArray(listed)) throw new CommandError([`${TENANTS_KEY}: is not a list of tenants`]);
    return { stackText: editStackText(viewText, (config) => void config.delete(TENANTS_KEY)), entries: listed.filter(isObject) };
}

/**
 * The stack's view (see above): its stack file and its inventory folder. A stack file that still
 * lists `agentfleet:tenants` is refused with how to move them out; so is a tenant file that does not parse.
 */
export function readView(root: string, stack: string): string {
    const stackText = fs.readFileSync(stackFileOf(root, stack), "utf8");
    if (configOf(stackText)[TENANTS_KEY] !== undefined) throw new CommandError([`Pulumi.${stack}.yaml: ${TENANTS_KEY}: ${RETIRED_KEYS.tenants(stack)}`]);
    const folder = fleetFolder(stack, configOf(stackText)[FLEET_KEY]);
    const dir = path.resolve(root, folder);
    if (!fs.existsSync(dir)) return stackText;
    const inventory = readInventory(root, folder);
    const problems = inventory.problems.filter((p) => !p.startsWith(`${folder}: holds no tenant`));
    if (problems.length > 0) throw new CommandError(problems);
    return inventoryView(stackText, inventoryList(inventory));
}

/**
 * Writes a changed view back: the stack file if its part changed, a new tenant's file, the keys
 * that changed in an existing tenant's file (its comments kept), and deletes the file of a tenant
 * the view no longer lists (`tenant remove`).
 */
export function writeView(root: string, stack: string, viewText: string): void {
    const { stackText, entries } = splitView(viewText);
    const dir = inventoryDir(root, stack, stackText);
    const names = new Set(entries.map((e) => String(e.name)));
    for (const entry of entries) {
        const file = path.join(dir, `${String(entry.name)}.yaml`);
        const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
        const next = text === undefined ? tenantFileText(entry) : editedTenantFile(text, entry);
        if (next === text) continue;
        fs.mkdirSync(dir, { recursive: true });
        writeFileAtomic(file, next);
    }
    if (fs.existsSync(dir)) {
        for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".yaml") && !names.has(f.slice(0, -".yaml".length)))) fs.rmSync(path.join(dir, f));
    }
    const file = stackFileOf(root, stack);
    if (fs.readFileSync(file, "utf8") !== stackText) writeFileAtomic(file, stackText);
}

/** A tenant file's text with its keys set to `entry`'s (without name), comments and order kept. */
function editedTenantFile(text: string, entry: Record<string, unknown>): string {
    const { name: _name, ...wanted } = entry;
    const doc = YAML.parseDocument(text);
    const current = doc.toJS();
    if (!isObject(current) || doc.errors.length > 0) return tenantFileText(entry);
    for (const key of Object.keys(current)) if (!(key in wanted)) doc.delete(key);
    for (const [key, value] of Object.entries(wanted)) if (JSON.stringify(current[key]) !== JSON.stringify(value)) doc.set(key, doc.createNode(value));
    const edited = doc.toString(STACK_FILE_FORMAT);
    return JSON.stringify(YAML.parse(edited)) === JSON.stringify(YAML.parse(text)) ? text : edited;
}

// ---------------------------------------------------------------------------------------------
// Moving a stack file's tenants out (split-inventory)

/** One tenant file the split writes: its entry's keys, and the comments that explained the entry. */
export interface SplitFile {
    name: string;
    text: string;
}

/**
 * Splits a stack file that still lists `agentfleet:tenants`: the file text without that key (its
 * other comments kept) and one tenant file per entry (the entry's own comments kept).
 */
export function splitStackFile(stackText: string): { stackText: string; files: SplitFile[] } {
    const doc = parseYaml(stackText);
    const config = doc.get("config", true);
    const tenants = YAML.isMap(config) ? config.get(TENANTS_KEY, true) : undefined;
    if (tenants === undefined) return { stackText, files: [] };
    if (!YAML.isSeq(tenants)) throw new CommandError([`${TENANTS_KEY}: is not a list of tenants`]);
    const files: SplitFile[] = [];
    const problems: string[] = [];
    tenants.items.forEach((item, i) => {
        const name = YAML.isMap(item) ? item.get("name") : undefined;
        if (typeof name !== "string" || name === "" || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
            problems.push(`${TENANTS_KEY}[${i}]: has no name that can be a file name (a DNS label); fix the entry, then run this again`);
            return;
        }
        if (files.some((f) => f.name === name)) {
            problems.push(`${TENANTS_KEY}[${i}]: tenant ${name} is listed twice; keep one entry, then run this again`);
            return;
        }
        const entry = (item as YAML.YAMLMap).clone() as YAML.YAMLMap;
        entry.delete("name");
        // The comment above the entry explains the tenant: it goes above the file's first key.
        const first = entry.items[0]?.key;
        const above = (item as YAML.YAMLMap).commentBefore;
        if (above && YAML.isNode(first)) first.commentBefore = first.commentBefore ? `${above}\n${first.commentBefore}` : above;
        entry.commentBefore = null;
        const file = new YAML.Document(entry);
        files.push({ name, text: file.toString(STACK_FILE_FORMAT) });
    });
    if (problems.length > 0) throw new CommandError(problems);
    return { stackText: editStackText(stackText, (c) => void c.delete(TENANTS_KEY)), files };
}

/** The tenant's text in the folder `dir` unless it is already there with the same content (a re-run). */
export function tenantFileConflict(dir: string, file: SplitFile): string | undefined {
    const at = path.join(dir, `${file.name}.yaml`);
    if (!fs.existsSync(at)) return undefined;
    const problems: string[] = [];
    const existing = parseTenantFile(at, file.name, fs.readFileSync(at, "utf8"), problems);
    return problems.length === 0 && JSON.stringify(existing) === JSON.stringify(YAML.parse(file.text)) ? undefined : at;
}

