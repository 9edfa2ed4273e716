{{/* Chart name, overridable. */}}
{{- define "postgres.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: `<release>-postgres`. Unlike the usual helper it never collapses to the
release name, so the twitter chart can compute the host without seeing this chart.
*/}}
{{- define "postgres.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "postgres.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "postgres.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "postgres.selectorLabels" -}}
app.kubernetes.io/name: {{ include "postgres.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: database
{{- end }}

{{- define "postgres.labels" -}}
helm.sh/chart: {{ include "postgres.chart" . }}
{{ include "postgres.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ .Release.Name }}
{{- with (.Values.global).commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Secret holding the password: existingSecret, else the generated one. */}}
{{- define "postgres.secretName" -}}
{{- if .Values.existingSecret }}
{{- tpl .Values.existingSecret . }}
{{- else }}
{{- tpl .Values.generatedSecret . }}
{{- end }}
{{- end }}

{{- define "postgres.passwordKey" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecretKeys.password }}
{{- else }}
{{- .Values.generatedSecretKey }}
{{- end }}
{{- end }}

{{- define "postgres.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "postgres.fullname" .)) }}
{{- end }}
