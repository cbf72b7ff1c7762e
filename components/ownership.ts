/**
 * Annotations of every object agentfleet owns outright. With Server-Side Apply, a field another
 * field manager changed (`kubectl edit`, a hand patch, another tool) makes Pulumi's apply fail with
 * a field conflict; `pulumi.com/patchForce` makes Pulumi take such fields back, so `pulumi up`
 * (and re-running a tenant's bootstrap) repairs drift instead of failing. Not for objects others
 * share, such as the agent namespaces on tenants.
 */
export const OWNED_ANNOTATIONS: Readonly<Record<string, string>> = { "pulumi.com/patchForce": "true" };
