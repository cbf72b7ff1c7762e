import type * as k8s from "@pulumi/kubernetes";

/**
 * The hub's Kubernetes provider, as the hub stack and every tenant stack declare it (named `hub`,
 * so a provider `pulumi state move` brings from the hub stack is the same resource).
 */
export function hubProviderArgs(context?: string): k8s.ProviderArgs {
    return {
        // No kubeconfig (an input is stored in state): "" makes the provider load the run's KUBECONFIG,
        // which the run checked points at the hub. Left unset, the SDK would store KUBECONFIG's
        // path, which differs from machine to machine and would show as a change in every preview.
        kubeconfig: "",
        ...(context !== undefined ? { context } : {}),
        // A rotated hub kubeconfig (or the kubeconfig input leaving) must not replace Argo CD and every registration.
        clusterIdentifier: "hub",
        // Explicit, so PULUMI_K8S_DELETE_UNREACHABLE=true in someone's environment can never make a refresh of an
        // unreachable hub drop Argo CD and every registration from state (it overrides the variable).
        deleteUnreachable: false,
        // Without it the provider replaces (deletes, then recreates) a Secret whose data changes:
        // a cluster Secret gaining `project`, or a new token, would vanish from Argo CD meanwhile.
        enableSecretMutable: true,
    };
}
