#!/bin/sh
# Probe gate for the voice agent (chart README, "Probe gate").
#
# Once the agent Deployment has fully rolled out, probe every agent pod by its pod IP (the Service
# does not exist yet on a first install) and record the verdict on the Deployment, which the
# probe-gated Argo CD health check reads:
#   agentfleet.io/probe-revision  the deployment.kubernetes.io/revision that was probed
#   agentfleet.io/probe-result    pass | fail
#   agentfleet.io/probe-message   detail
# The verdict is keyed on the pod template's revision, never on metadata.generation: this script's
# own annotate bumps the generation (Kubernetes pkg/registry/apps/deployment/strategy.go), while the
# Deployment controller raises the revision only for a new pod template (a rollback included).
# A pass is final for its revision; a fail is probed again on the next run, so a transient
# failure can recover (an Argo CD sync retry then finds the Deployment Healthy).
#
# Exit status: 0 when a verdict was recorded or there was nothing to do yet. Non-zero only when the
# Kubernetes API cannot be used: Argo CD marks a CronJob whose last run failed Degraded, and that
# should mean "the gate itself is broken", never "the agent failed its probe".
#
# Environment: NAMESPACE, DEPLOYMENT, AGENT_SELECTOR, PROBE_PORT, PROBE_PATH,
#              PROBE_TIMEOUT_SECONDS, PROBE_ATTEMPTS, PROBE_RETRY_DELAY_SECONDS
set -u

: "${NAMESPACE:?}" "${DEPLOYMENT:?}" "${AGENT_SELECTOR:?}" "${PROBE_PORT:?}" "${PROBE_PATH:?}"
timeout_seconds="${PROBE_TIMEOUT_SECONDS:-5}"
attempts="${PROBE_ATTEMPTS:-3}"
retry_delay="${PROBE_RETRY_DELAY_SECONDS:-2}"

log() { echo "prober: $*"; }

# kubectl go-templates shipped next to this script (one file each, so they can be tested alone).
templates_dir=$(dirname "$0")

if ! state=$(kubectl -n "$NAMESPACE" get deployment "$DEPLOYMENT" --ignore-not-found -o "go-template-file=$templates_dir/deployment-state.gotmpl"); then
  log "cannot read deployment $DEPLOYMENT"
  exit 1
fi
if [ -z "$state" ]; then
  log "deployment $DEPLOYMENT does not exist yet"
  exit 0
fi
# shellcheck disable=SC2086 # deliberate word splitting: ten fields, each defaulted in the template
set -- $state
generation=$1 observed=$2 desired=$3 current=$4 updated=$5 available=$6 resource_version=$7
revision=$8 recorded_revision=$9 recorded_result=${10}

if [ "$observed" != "$generation" ] || [ "$updated" != "$desired" ] || [ "$available" != "$desired" ] || [ "$current" != "$desired" ]; then
  log "generation $generation is still rolling out (observed=$observed desired=$desired current=$current updated=$updated available=$available)"
  exit 0
fi
if [ "$revision" = "none" ]; then
  log "the Deployment controller has not recorded a revision yet"
  exit 0
fi
if [ "$recorded_revision" = "$revision" ] && [ "$recorded_result" = "pass" ]; then
  log "revision $revision already passed"
  exit 0
fi

# Running agent pods that are not terminating: after a complete rollout, exactly the new ones.
if ! pods=$(kubectl -n "$NAMESPACE" get pods -l "$AGENT_SELECTOR" -o "go-template-file=$templates_dir/agent-pods.gotmpl"); then
  log "cannot list agent pods"
  exit 1
fi
pod_count=$(printf '%s\n' "$pods" | grep -c . || true)
if [ "$pod_count" != "$desired" ]; then
  log "found $pod_count running agent pods, want $desired; probing on the next run"
  exit 0
fi

# Probe the pods in parallel, so a run takes attempts x (timeout + delay) however many replicas.
results=$(mktemp -d)
probe_pod() { # pod ip: writes $results/<pod>.pass, or $results/<pod>.fail holding the last error
  case "$2" in
    *:*) host="[$2]" ;; # IPv6
    *) host="$2" ;;
  esac
  attempt=1
  while :; do
    if error=$(curl -fsS -o /dev/null --max-time "$timeout_seconds" "http://$host:$PROBE_PORT$PROBE_PATH" </dev/null 2>&1); then
      : >"$results/$1.pass"
      return
    fi
    if [ "$attempt" -ge "$attempts" ]; then
      printf '%s' "${error:-no response}" | tr '\n' ' ' >"$results/$1.fail"
      return
    fi
    attempt=$((attempt + 1))
    sleep "$retry_delay"
  done
}
while read -r pod ip; do
  [ -n "$pod" ] && probe_pod "$pod" "$ip" &
done <<EOF
$pods
EOF
wait

passed=0
failures=""
for outcome in "$results"/*; do
  [ -e "$outcome" ] || continue # no pods
  case "$outcome" in
    *.pass) passed=$((passed + 1)) ;;
    *.fail)
      pod=$(basename "$outcome" .fail)
      failures="$failures $pod ($(cat "$outcome"));"
      ;;
  esac
done
rm -rf "$results"

# A pass needs a positive result from every pod; a pod with no result at all counts as failing.
if [ "$passed" = "$desired" ]; then
  result=pass
  message="$passed/$desired pods passed GET $PROBE_PATH"
else
  result=fail
  message="$((desired - passed))/$desired pods failed GET $PROBE_PATH:$failures"
fi
message=$(printf '%s' "$message" | cut -c1-512)

# --resource-version makes the write conditional: if the Deployment changed while we probed, the
# verdict may belong to a stale revision, so drop it and probe again next run.
if output=$(kubectl -n "$NAMESPACE" annotate deployment "$DEPLOYMENT" --overwrite \
  --resource-version="$resource_version" \
  "agentfleet.io/probe-revision=$revision" \
  "agentfleet.io/probe-result=$result" \
  "agentfleet.io/probe-message=$message" 2>&1); then
  log "revision $revision: $result: $message"
  exit 0
fi
case "$output" in
  *Conflict* | *"has been modified"*)
    log "deployment changed while probing; probing again on the next run"
    exit 0
    ;;
esac
log "cannot record the verdict: $output"
exit 1
