{{/* Chart name, overridable. */}}
{{- define "redis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: `<release>-redis`. Unlike the usual helper it never collapses to the
release name, so the twitter chart can compute the host without seeing this chart.
*/}}
{{- define "redis.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "redis.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "redis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "redis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: cache
{{- end }}

{{- define "redis.labels" -}}
helm.sh/chart: {{ include "redis.chart" . }}
{{ include "redis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ .Release.Name }}
{{- with (.Values.global).commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Secret holding the password: existingSecret, else the generated one. */}}
{{- define "redis.secretName" -}}
{{- if .Values.existingSecret }}
{{- tpl .Values.existingSecret . }}
{{- else }}
{{- tpl .Values.generatedSecret . }}
{{- end }}
{{- end }}

{{- define "redis.passwordKey" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecretKeys.password }}
{{- else }}
{{- .Values.generatedSecretKey }}
{{- end }}
{{- end }}

{{- define "redis.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "redis.fullname" .)) }}
{{- end }}
