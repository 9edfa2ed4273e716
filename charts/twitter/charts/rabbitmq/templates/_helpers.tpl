{{/* Chart name, overridable. */}}
{{- define "rabbitmq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: `<release>-rabbitmq`. Unlike the usual helper it never collapses to the
release name, so the twitter chart can compute the host without seeing this chart.
*/}}
{{- define "rabbitmq.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "rabbitmq.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "rabbitmq.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rabbitmq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rabbitmq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: broker
{{- end }}

{{- define "rabbitmq.labels" -}}
helm.sh/chart: {{ include "rabbitmq.chart" . }}
{{ include "rabbitmq.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ .Release.Name }}
{{- with (.Values.global).commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Secret holding the password: existingSecret, else the generated one. */}}
{{- define "rabbitmq.secretName" -}}
{{- if .Values.existingSecret }}
{{- tpl .Values.existingSecret . }}
{{- else }}
{{- tpl .Values.generatedSecret . }}
{{- end }}
{{- end }}

{{- define "rabbitmq.passwordKey" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecretKeys.password }}
{{- else }}
{{- .Values.generatedSecretKey }}
{{- end }}
{{- end }}

{{- define "rabbitmq.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "rabbitmq.fullname" .)) }}
{{- end }}
