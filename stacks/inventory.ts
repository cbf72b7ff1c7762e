/**
 * The tenant inventory: one reviewed YAML file per tenant, `fleet/<stack>/<tenant>.yaml` (or the
 * folder `agentfleet:fleet` names), so the hub stack's configuration stays the same whatever the
 * fleet size, and two people adding tenants never edit the same file. The file name is the
 * tenant's name. Reading records problems naming the file; the validator checks the entries.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { yamlErrorText } from "./reader";

/** The keys of a tenant file: a tenant entry's, without `name` (the file name is the name). */
export const TENANT_FILE_KEYS = ["server", "ring", "region", "credentials", "env", "labels", "namespaces", "grantedNamespaces", "paused", "decommissioned"] as const;

/** The inventory folder of a stack unless `agentfleet:fleet` says otherwise, relative to the project root. */
export const defaultFleetFolder = (stack: string): string => `fleet/${stack}`;

/** One tenant file, read but not yet validated. */
export interface InventoryEntry {
    /** The file as problems name it: `<folder>/<tenant>.yaml`, the folder as configured. */
    file: string;
    /** The tenant's name: the file name without `.yaml`. */
    name: string;
    /** The parsed content (without a `name` key that only repeats the file name). */
    value: unknown;
}

export interface Inventory {
    /** The folder as configured (relative to the project root, or absolute). */
    folder: string;
    entries: InventoryEntry[];
    /** Problems reading the folder or a file (each naming the file). */
    problems: string[];
}

/** The folder `agentfleet:fleet` names (a non-empty string), or the default; a bad value is the validator's problem. */
export const fleetFolder = (stack: string, setting: unknown): string => (typeof setting === "string" && setting.trim() !== "" ? setting.replace(/\/+$/, "") : defaultFleetFolder(stack));

/** What to create when the inventory is empty or missing. */
export const emptyInventoryProblem = (folder: string): string =>
    `${folder}: holds no tenant: the tenant inventory is one file per tenant, ${folder}/<tenant>.yaml with its server, ring, region and credentials (docs/configuration.md, "The tenant inventory"); a stack file that still lists agentfleet:tenants moves them there with \`npm run tenant -- split-inventory --stack <stack>\``;

/** Parses one tenant file's text; problems name the file, never quoting its content. */
export function parseTenantFile(file: string, name: string, text: string, problems: string[]): unknown {
    const doc = YAML.parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) {
        problems.push(`${file}: is not valid YAML: ${yamlErrorText(doc.errors[0])}`);
        return undefined;
    }
    const value: unknown = doc.toJS();
    if (value !== null && typeof value === "object" && !Array.isArray(value) && "name" in value) {
        const { name: given, ...rest } = value as Record<string, unknown>;
        if (given !== name) problems.push(`${file}: name: differs from the file name; the file name is the tenant's name, so remove the name key (or rename the file)`);
        return rest;
    }
    return value;
}

/** Reads the inventory folder `folder` (relative to `root`, or absolute): `.yaml` files in file-name order. */
export function readInventory(root: string, folder: string): Inventory {
    const dir = path.resolve(root, folder);
    const problems: string[] = [];
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return { folder, entries: [], problems: [emptyInventoryProblem(folder)] };
    const entries: InventoryEntry[] = [];
    for (const f of fs.readdirSync(dir).sort()) {
        const file = `${folder}/${f}`;
        if (!f.endsWith(".yaml") || !fs.statSync(path.join(dir, f)).isFile()) {
            problems.push(`${file}: is not a tenant file: the inventory folder holds only <tenant>.yaml files, one per tenant; move it elsewhere`);
            continue;
        }
        const name = f.slice(0, -".yaml".length);
        const value = parseTenantFile(file, name, fs.readFileSync(path.join(dir, f), "utf8"), problems);
        if (value !== undefined) entries.push({ file, name, value });
    }
    if (entries.length === 0 && problems.length === 0) problems.push(emptyInventoryProblem(folder));
    return { folder, entries, problems };
}

/** An entry as it is written to its tenant file: every key but `name`, in the usual order. */
export function tenantFileText(entry: Record<string, unknown>): string {
    const { name: _name, ...rest } = entry;
    return YAML.stringify(rest, { lineWidth: 0, flowCollectionPadding: false });
}

/** The inventory as a list of entries with their names, the way `agentfleet:tenants` listed them. */
export const inventoryList = (inventory: Inventory): Array<Record<string, unknown>> =>
    inventory.entries.map((e) => (e.value !== null && typeof e.value === "object" && !Array.isArray(e.value) ? { name: e.name, ...(e.value as Record<string, unknown>) } : { name: e.name }));
