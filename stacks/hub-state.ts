/**
 * The hub stack's guard against deleting every registration (docs/design/tenant-stacks.md, Q3):
 * tenant stacks register their tenants, so the hub program declares no cluster Secret. A hub state
 * that still holds the Secrets its earlier program declared (TenantClusters' `tenants-<tenant>`)
 * has not been migrated, and an up of the program that no longer declares them would DELETE them
 * all from the hub: Argo CD would drop every tenant and delete its Application. So, before any
 * resource is declared, the program reads its own stack's state and refuses while one is there.
 *
 * A program cannot ask the engine for its own state, so it reads it as anyone would: `pulumi
 * stack export` of its stack, run by the program with the run's environment (the same backend
 * login and project). A run that already holds the export (the offline evaluator: no state; an
 * Automation API host) names it in AGENTFLEET_HUB_STATE instead.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import { PREVIOUS_PARENT_TYPE, TENANT_CLUSTERS_TYPE } from "../components/tenant-clusters";
import { migrateRegistrationCommand } from "./validate";

/** A resource of a state export (`pulumi stack export`'s deployment.resources). */
export interface StateResource {
    urn: string;
    type: string;
}

/** Environment variable naming a file with the hub stack's state export, read instead of running `pulumi stack export`. */
export const HUB_STATE_ENV = "AGENTFLEET_HUB_STATE";

/**
 * The tenants whose cluster Secret the hub state holds: a `kubernetes:core/v1:Secret` under the
 * hub's TenantClusters component (`tenants-<tenant>`), or under an older per-tenant TenantCluster.
 */
export function heldRegistrations(resources: StateResource[]): string[] {
    const held = resources
        .filter((r) => r.type === "kubernetes:core/v1:Secret")
        .map((r) => {
            const [types, name] = [r.urn.split("::")[2] ?? "", r.urn.slice(r.urn.lastIndexOf("::") + 2)];
            if (types.startsWith(`${TENANT_CLUSTERS_TYPE}$`) && name.startsWith("tenants-")) return name.slice("tenants-".length);
            if (types.startsWith(`${PREVIOUS_PARENT_TYPE}$`) && name.endsWith("-cluster-secret")) return name.slice(0, -"-cluster-secret".length);
            return undefined;
        });
    return [...new Set(held.filter((t): t is string => t !== undefined))].sort();
}

/** The refusal of a hub run whose state still holds these tenants' cluster Secrets, naming what to do. */
export function heldRegistrationsProblem(stack: string, tenants: string[]): string {
    const shown = tenants.length > 5 ? `${tenants.slice(0, 5).join(", ")} and ${tenants.length - 5} more` : tenants.join(", ");
    return `the state of hub stack ${stack} still holds the cluster Secret of ${tenants.length} tenant${tenants.length === 1 ? "" : "s"} (${shown}), which this program no longer declares: tenant stacks register their tenants now, and this run would DELETE ${tenants.length === 1 ? "that registration" : "those registrations"} from the hub (Argo CD would drop the tenants and delete their Applications). Nothing was touched. First move them into the tenant stacks: \`${migrateRegistrationCommand(stack)}\` (docs/operations.md, "Tenant stacks register their tenants"), then run this again`;
}

/** The resources of a state export's JSON (`{deployment: {resources}}`, or a list of resources). */
export function stateResourcesOf(exported: unknown): StateResource[] {
    const list = Array.isArray(exported) ? exported : ((exported as { deployment?: { resources?: unknown } } | null)?.deployment?.resources ?? []);
    return (Array.isArray(list) ? list : []).filter((r): r is StateResource => typeof r?.urn === "string" && typeof r?.type === "string");
}

/**
 * The hub stack's own state: the file AGENTFLEET_HUB_STATE names, else `pulumi stack export` of
 * `stack` (in `cwd`, the project root). Returns why it cannot be read instead of guessing "empty".
 */
export function readHubState(stack: string, env: NodeJS.ProcessEnv, cwd: string): StateResource[] | { problem: string } {
    const file = env[HUB_STATE_ENV];
    try {
        if (file) return stateResourcesOf(JSON.parse(fs.readFileSync(file, "utf8")));
        // The configuration the CLI hands this program stays out of the child's environment.
        const { PULUMI_CONFIG: _config, PULUMI_CONFIG_SECRET_KEYS: _secretKeys, ...childEnv } = env;
        const out = execFileSync("pulumi", ["stack", "export", "--stack", stack, "--non-interactive"], { cwd, env: childEnv, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000, maxBuffer: 1 << 30 });
        return stateResourcesOf(JSON.parse(out));
    } catch (err) {
        const detail = String((err as { stderr?: unknown }).stderr ?? "").trim().split("\n").filter(Boolean).slice(-2).join(" ") || (err as Error).message;
        return { problem: `cannot read the state of hub stack ${stack} (${file ? `${HUB_STATE_ENV}=${file}` : "pulumi stack export"}: ${detail}) to check it holds no tenant's cluster Secret, which this program no longer declares and would delete; run with the Pulumi CLI on PATH and logged in to the stack's backend` };
    }
}
