{{/*
Names. The release name is the Argo CD Application name unless the ApplicationSet sets
helm.releaseName; fullnameOverride pins object names when the prober or a health check must
refer to them from outside.
*/}}
{{- define "voice-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "voice-agent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Names of the companion objects, kept short enough for the 63-character limit. */}}
{{- define "voice-agent.configName" -}}
{{- printf "%s-config" (include "voice-agent.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}
{{- define "voice-agent.migrationName" -}}
{{- printf "%s-migrate" (include "voice-agent.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}
{{- define "voice-agent.warmupName" -}}
{{- printf "%s-warmup" (include "voice-agent.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}
{{- define "voice-agent.proberName" -}}
{{- printf "%s-prober" (include "voice-agent.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{/*
The tenant identity comes from the ApplicationSet's valuesObject. Rendering without it would
deploy an anonymous agent, so fail the render instead: Argo CD then applies nothing.
*/}}
{{- define "voice-agent.tenant" -}}
{{- required "fleet.tenant is required (the ApplicationSet passes it via valuesObject)" .Values.fleet.tenant }}
{{- end }}

{{/* Labels shared by every object. */}}
{{- define "voice-agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "voice-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agentfleet
agentfleet.io/tenant: {{ include "voice-agent.tenant" . | quote }}
{{- with .Values.fleet.env }}
agentfleet.io/env: {{ . | quote }}
{{- end }}
{{- with .Values.fleet.ring }}
agentfleet.io/ring: {{ . | toString | quote }}
{{- end }}
{{- with .Values.fleet.region }}
agentfleet.io/region: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Selector labels per component. The component label keeps Job and prober pods out of the agent's
Service, PodDisruptionBudget and probe target set.
*/}}
{{- define "voice-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voice-agent.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Agent pods as a label selector string, for the prober's `kubectl get pods -l`. */}}
{{- define "voice-agent.agentSelectorString" -}}
{{- $labels := include "voice-agent.selectorLabels" (dict "root" . "component" "agent") | fromYaml }}
{{- $pairs := list }}
{{- range $key := keys $labels | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $key (get $labels $key)) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/*
A pinned image reference: repository:tag, plus @digest when given. A missing or `latest` tag is a
render error, because an unpinned image makes a rollout unrepeatable.
*/}}
{{- define "voice-agent.image" -}}
{{- $tag := toString (required (printf "%s.tag is required" .what) .image.tag) }}
{{- if eq $tag "latest" }}
{{- fail (printf "%s.tag must be pinned, not latest" .what) }}
{{- end }}
{{- if .image.digest }}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* The agent's HTTP address inside the cluster, for the warm-up Job. */}}
{{- define "voice-agent.serviceUrl" -}}
{{- printf "http://%s.%s.svc:%v" (include "voice-agent.fullname" .) .Release.Namespace .Values.service.port }}
{{- end }}

{{- define "voice-agent.ingressHost" -}}
{{- if .Values.ingress.host }}
{{- .Values.ingress.host }}
{{- else }}
{{- printf "%s.%s" (include "voice-agent.tenant" .) (required "ingress.baseDomain (or ingress.host) is required" .Values.ingress.baseDomain) }}
{{- end }}
{{- end }}

{{/* Pod-level hardening shared by every pod the chart creates. */}}
{{- define "voice-agent.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{/* Container-level hardening shared by every container the chart creates. */}}
{{- define "voice-agent.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end }}

{{/* The scratch volume every read-only-root container gets at /tmp. */}}
{{- define "voice-agent.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{/*
The agent configuration (agent.yaml). The Deployment's checksum/config hashes exactly this, not
the ConfigMap's labels: moving a tenant between rollout rings relabels it without restarting
its agents. No ring inside, for the same reason.
*/}}
{{- define "voice-agent.agentConfig" -}}
{{- $fleet := dict "tenant" (include "voice-agent.tenant" .) "env" .Values.fleet.env "region" .Values.fleet.region }}
{{- $agent := merge (dict "fleet" $fleet "logLevel" .Values.logLevel) (deepCopy .Values.config) }}
{{- toYaml $agent }}
{{- end }}
