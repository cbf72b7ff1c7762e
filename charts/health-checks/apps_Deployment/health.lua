-- Deployment health for agentfleet.
--
-- A custom apps_Deployment check replaces Argo CD's built-in one, so the first half re-implements
-- gitops-engine pkg/health/health_deployment.go step by step, with its messages. The second half
-- is the agent probe gate: a Deployment annotated agentfleet.io/probe-gate: "true" is only Healthy
-- once the agent prober has passed its current pod template revision.
--
-- argocd-cm runs this without useOpenLibs (gopher-lua, Lua 5.1, no string/math/os), and any
-- runtime error turns the whole Application Unknown and stalls the sync, so every field access
-- is nil-safe and every path returns a status and a message.

local PROBE_GATE = "agentfleet.io/probe-gate"
local PROBE_REVISION = "agentfleet.io/probe-revision"
-- Written by the Deployment controller through the status subresource; raised only for a new pod
-- template (a rollback included), never by an annotation write.
local REVISION = "deployment.kubernetes.io/revision"
local PROBE_RESULT = "agentfleet.io/probe-result"
local PROBE_MESSAGE = "agentfleet.io/probe-message"

local metadata = obj.metadata or {}
local ann = (obj.metadata and obj.metadata.annotations) or {}
local spec = obj.spec or {}
local status = obj.status or {}

-- The Go check reads typed fields, where an absent number is 0.
local function number_or(value, default)
  if type(value) == "number" then
    return value
  end
  return default
end

local function health(code, message)
  return { status = code, message = message }
end

local function progress_deadline_exceeded()
  -- Like the Go check, only the first Progressing condition counts.
  for _, condition in ipairs(status.conditions or {}) do
    if type(condition) == "table" and condition.type == "Progressing" then
      return condition.reason == "ProgressDeadlineExceeded"
    end
  end
  return false
end

local function builtin_health(generation)
  if spec.paused == true then
    return health("Suspended", "Deployment is paused")
  end
  if generation > number_or(status.observedGeneration, 0) then
    return health("Progressing",
      "Waiting for rollout to finish: observed deployment generation less than desired generation")
  end
  if progress_deadline_exceeded() then
    local name = metadata.name
    if type(name) ~= "string" then
      name = ""
    end
    return health("Degraded", "Deployment \"" .. name .. "\" exceeded its progress deadline")
  end
  -- The API server defaults spec.replicas to 1; treat a missing value the same way.
  local desired = number_or(spec.replicas, 1)
  local current = number_or(status.replicas, 0)
  local updated = number_or(status.updatedReplicas, 0)
  local available = number_or(status.availableReplicas, 0)
  if updated < desired then
    return health("Progressing", "Waiting for rollout to finish: " .. tostring(updated) .. " out of "
      .. tostring(desired) .. " new replicas have been updated...")
  end
  if current > updated then
    return health("Progressing", "Waiting for rollout to finish: " .. tostring(current - updated)
      .. " old replicas are pending termination...")
  end
  if available < updated then
    return health("Progressing", "Waiting for rollout to finish: " .. tostring(available) .. " of "
      .. tostring(updated) .. " updated replicas are available...")
  end
  return health("Healthy", "")
end

-- The verdict is keyed on the pod template's revision, not metadata.generation: the prober's own
-- annotation write bumps the generation (Kubernetes pkg/registry/apps/deployment/strategy.go), so a
-- verdict for generation N would be stale the moment it is written. Both sides are the
-- annotation strings, compared as text: no string library needed.
local function probe_gate()
  local wanted = ann[REVISION]
  if type(wanted) ~= "string" or wanted == "" then
    return health("Progressing", "Waiting for the Deployment controller to record the pod template's revision")
  end
  local probed = ann[PROBE_REVISION]
  local waiting = "Waiting for the agent prober to pass revision " .. wanted
  if type(probed) ~= "string" or probed == "" then
    return health("Progressing", waiting .. " (no probe yet)")
  end
  if probed ~= wanted then
    return health("Progressing", waiting .. " (last probe: revision " .. probed .. ")")
  end
  local result = ann[PROBE_RESULT]
  if result == "pass" then
    return health("Healthy", "Agent prober passed revision " .. wanted)
  end
  if result == "fail" then
    local detail = ann[PROBE_MESSAGE]
    if type(detail) == "string" and detail ~= "" then
      return health("Degraded", "Agent prober failed revision " .. wanted .. ": " .. detail)
    end
    return health("Degraded", "Agent prober failed revision " .. wanted)
  end
  return health("Progressing", waiting .. " (last probe of revision " .. wanted
    .. " has no pass/fail result)")
end

local generation = number_or(metadata.generation, 0)
local builtin = builtin_health(generation)
-- The gate only ever holds back a Healthy verdict; it never hides a rollout in progress.
if builtin.status ~= "Healthy" or ann[PROBE_GATE] ~= "true" then
  return builtin
end
return probe_gate()
