-- Ingress health for agentfleet.
--
-- Same rule as Argo CD's built-in check (gitops-engine pkg/health/health_ingress.go): Healthy once
-- the ingress controller has published status.loadBalancer.ingress. On k3s, Traefik publishes it
-- through ServiceLB, but a tenant without a load balancer never gets it, and a forever-Progressing
-- Ingress stalls the sync wave and the rollout. Such tenants annotate the Ingress
-- agentfleet.io/ingress-status: "unpublished" and rely on the Deployment's health instead.
--
-- argocd-cm runs this without useOpenLibs (gopher-lua, Lua 5.1, no string/math/os); every field
-- access is nil-safe so a runtime error can never turn the Application Unknown.

local INGRESS_STATUS = "agentfleet.io/ingress-status"

local ann = (obj.metadata and obj.metadata.annotations) or {}
local load_balancer = (obj.status and obj.status.loadBalancer) or {}
local published = load_balancer.ingress or {}

if type(published) == "table" and #published > 0 then
  return { status = "Healthy", message = "" }
end

if ann[INGRESS_STATUS] == "unpublished" then
  return {
    status = "Healthy",
    message = "Ingress status is not published on this tenant (agentfleet.io/ingress-status: unpublished); "
      .. "health relies on the backing Deployment",
  }
end

return {
  status = "Progressing",
  message = "Waiting for the ingress controller to publish status.loadBalancer.ingress; on k3s enable "
    .. "providers.kubernetesIngress.publishedService.enabled in Traefik, or annotate the Ingress "
    .. "agentfleet.io/ingress-status: \"unpublished\" if the tenant has no load balancer",
}
