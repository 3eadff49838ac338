{{/*
The release's name for its objects: the release name, with the chart name
appended unless the release name already holds it.
*/}}
{{- define "temporal-batch.fullname" -}}
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

{{- define "temporal-batch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "temporal-batch.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "temporal-batch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: temporal-batch
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "temporal-batch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "temporal-batch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "temporal-batch.managerSelectorLabels" -}}
{{ include "temporal-batch.selectorLabels" . }}
app.kubernetes.io/component: manager
{{- end }}

{{- define "temporal-batch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "temporal-batch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "temporal-batch.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The bundled Temporal dev server's Service. Its address is namespace-qualified
because worker pods in the jobs' namespaces are given the same address.
*/}}
{{- define "temporal-batch.devServerName" -}}
{{- printf "%s-temporal-dev" (include "temporal-batch.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The Temporal frontend the manager and the workers connect to: temporal.address
when set, else the bundled dev server when enabled, else the frontend that
Temporal's own Helm chart creates in the namespace "temporal".
*/}}
{{- define "temporal-batch.temporalAddress" -}}
{{- if .Values.temporal.address }}
{{- .Values.temporal.address }}
{{- else if .Values.devServer.enabled }}
{{- printf "%s.%s.svc:%d" (include "temporal-batch.devServerName" .) .Release.Namespace (int .Values.devServer.service.port) }}
{{- else }}
{{- "temporal-frontend.temporal.svc:7233" }}
{{- end }}
{{- end }}

{{/*
Fails on value combinations that would render a broken operator.
*/}}
{{- define "temporal-batch.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without it every replica reconciles every job" }}
{{- end }}
{{- with .Values.temporal.tls }}
{{- if and .enabled (not .secretName) }}
{{- fail "temporal.tls.enabled needs temporal.tls.secretName: a Secret holding the client certificate and key" }}
{{- end }}
{{- if and .enabled .certKey (not .keyKey) }}
{{- fail "temporal.tls.certKey needs temporal.tls.keyKey: the client certificate's private key" }}
{{- end }}
{{- if and .enabled (not .certKey) (not .caKey) }}
{{- fail "temporal.tls.enabled needs temporal.tls.certKey (mTLS) or temporal.tls.caKey (a private CA)" }}
{{- end }}
{{- end }}
{{- with .Values.temporal.apiKey }}
{{- if and .enabled (not .secretName) }}
{{- fail "temporal.apiKey.enabled needs temporal.apiKey.secretName: a Secret holding the API key" }}
{{- end }}
{{- end }}
{{- end }}
