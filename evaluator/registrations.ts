/**
 * The tenant stacks' registrations, offline: since each tenant's own stack declares its cluster
 * Secret on the hub (docs/design/tenant-stacks.md), the hub program declares none, and what Argo
 * CD's cluster generator sees is the sum of the tenant stacks. Each active tenant's stack program
 * (tenants/onboarding-program.ts, with its registration) is evaluated under the mock runtime as
 * `npm run tenant -- bootstrap` (or `add --credentials token`) runs it: a bootstrap tenant's
 * argocd-manager with its generated token, a token tenant's pre-issued token as a placeholder.
 */
import { type DeclaredObject, type Evaluation, ROOT, SECRET_PREFIX, declaredObjects, evaluate, validateStackConfig } from "./evaluate";
import { FLEET_LABEL } from "../components/tenant-clusters";
import { PROJECT, fleetFolder } from "../stacks/config";
import { ONBOARDING_PROJECT, onboardingProgram, onboardingStackName, tenantStackSettings } from "../tenants/onboarding-program";

/** The placeholder standing for a token tenant's pre-issued `field` (its stack's state holds the real one). */
export const preIssuedPlaceholder = (stack: string, field: string): string => `${SECRET_PREFIX}${stack}.preIssued.${field}__`;

/** Whether the hub evaluation declares cluster Secrets itself: a program from before tenant stacks registered their tenants (diff's base). */
const hubRegistersTenants = (hub: Evaluation): boolean =>
    hub.resources.some((r) => r.type === "kubernetes:core/v1:Secret" && (r.inputs.metadata as { labels?: Record<string, string> } | undefined)?.labels?.[FLEET_LABEL] !== undefined);

/**
 * Each active tenant's stack with its registration, evaluated for the hub stack `hub` evaluated; none
 * when the hub program itself registers the tenants (an older checkout's). One at a time, with `step`
 * told each tenant (progress).
 */
export async function evaluateRegistrations(hub: Evaluation, step: (tenant: string, index: number, count: number) => void = () => undefined, root: string = ROOT): Promise<Evaluation[]> {
    if (hubRegistersTenants(hub)) return [];
    const folder = fleetFolder(hub.stack, hub.config[`${PROJECT}:fleet`]);
    const inventory = { folder, entries: hub.inventory.map(({ name, ...value }) => ({ file: `${folder}/${String(name)}.yaml`, name: String(name), value })), problems: [] };
    // The hub evaluation succeeded, so its configuration is valid: this returns it typed.
    const cfg = validateStackConfig(hub.stack, hub.config, inventory);
    const active = cfg.tenants.filter((t) => !t.decommissioned);
    const evaluations: Evaluation[] = [];
    for (const [i, tenant] of active.entries()) {
        step(tenant.name, i, active.length);
        const stack = onboardingStackName(cfg.stack, tenant.name);
        const preIssued = tenant.credentials === "token" ? { bearerToken: preIssuedPlaceholder(stack, "bearerToken"), caData: preIssuedPlaceholder(stack, "caData") } : undefined;
        const settings = tenantStackSettings(cfg, tenant, { tokenGenerations: [0] }, preIssued);
        const evaluation = await evaluate(stack, { root, config: {}, program: { project: ONBOARDING_PROJECT, run: onboardingProgram(settings) } });
        evaluations.push({ ...evaluation, placeholders: [...evaluation.placeholders, ...(preIssued ? Object.values(preIssued) : [])] });
    }
    return evaluations;
}

/** What the hub stack and its tenant stacks declare, by cluster: what Argo CD's cluster generator and the AppProject see on the hub. */
export async function fleetObjects(hub: Evaluation, root: string = ROOT): Promise<DeclaredObject[]> {
    return [hub, ...(await evaluateRegistrations(hub, undefined, root))].flatMap(declaredObjects);
}
