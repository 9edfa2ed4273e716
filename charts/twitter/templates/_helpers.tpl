{{/* Chart name, overridable. */}}
{{- define "twitter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name; the release name alone when it contains the chart name. */}}
{{- define "twitter.fullname" -}}
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

{{- define "twitter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: name + instance + component. Frozen once released: a selector
change cannot be patched into an existing Deployment.
Call with (dict "ctx" $ "component" "api").
*/}}
{{- define "twitter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "twitter.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Recommended labels plus commonLabels. Call with (dict "ctx" $ "component" "api"). */}}
{{- define "twitter.labels" -}}
helm.sh/chart: {{ include "twitter.chart" .ctx }}
{{ include "twitter.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: {{ include "twitter.name" .ctx }}
{{- with (merge (dict) .ctx.Values.commonLabels ((.ctx.Values.global).commonLabels | default dict)) }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Pod options of one component, resolved against the top-level defaults, as JSON.
Maps (nodeSelector, podAnnotations, podLabels) merge, the most specific key
winning; affinity, tolerations and priorityClassName take the most specific
non-empty one; the extra* lists and sidecars add up (defaults first);
topologySpreadConstraints are the component's own (a worker group's if it sets
the key, even to []), each completed with this component's labelSelector.
Call with (dict "ctx" $ "component" "api" "values" .Values.api "defaults" dict).
*/}}
{{- define "twitter.podOptions" -}}
{{- $v := .ctx.Values }}
{{- $c := .values }}
{{- $d := .defaults | default dict }}
{{- $o := dict }}
{{- $_ := set $o "nodeSelector" (merge (dict) ($c.nodeSelector | default dict) ($d.nodeSelector | default dict) ($v.nodeSelector | default dict)) }}
{{- $_ := set $o "podAnnotations" (merge (dict) ($c.podAnnotations | default dict) ($d.podAnnotations | default dict) ($v.podAnnotations | default dict)) }}
{{- $_ := set $o "podLabels" (merge (dict) ($c.podLabels | default dict) ($d.podLabels | default dict) ($v.podLabels | default dict)) }}
{{- $_ := set $o "affinity" ($c.affinity | default $d.affinity | default $v.affinity | default dict) }}
{{- $_ := set $o "tolerations" ($c.tolerations | default $d.tolerations | default $v.tolerations | default list) }}
{{- $_ := set $o "priorityClassName" ($c.priorityClassName | default $d.priorityClassName | default "") }}
{{- range $key := list "extraEnv" "extraEnvFrom" "extraVolumes" "extraVolumeMounts" "extraInitContainers" "sidecars" }}
{{- $_ := set $o $key (concat (index $d $key | default list) (index $c $key | default list)) }}
{{- end }}
{{- $spread := ternary $c.topologySpreadConstraints $d.topologySpreadConstraints (hasKey $c "topologySpreadConstraints") }}
{{- $constraints := list }}
{{- range $spread }}
{{- $one := merge (dict) . }}
{{- if not (hasKey $one "labelSelector") }}
{{- $_ := set $one "labelSelector" (dict "matchLabels" (include "twitter.selectorLabels" (dict "ctx" $.ctx "component" $.component) | fromYaml)) }}
{{- if not (hasKey $one "matchLabelKeys") }}
{{- $_ := set $one "matchLabelKeys" (list "pod-template-hash") }}
{{- end }}
{{- end }}
{{- $constraints = append $constraints $one }}
{{- end }}
{{- $_ := set $o "topologySpreadConstraints" $constraints }}
{{- toJson $o }}
{{- end }}

{{/* Scheduling fields of a pod spec from resolved podOptions (YAML, at pod-spec indent 0). */}}
{{- define "twitter.scheduling" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "twitter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "twitter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "twitter.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "twitter.apiName" -}}
{{- printf "%s-api" (include "twitter.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* ---------------------------------------------------------------------------
Secrets. The key Job creates the generated ones; none is rendered by the chart,
so `helm template` never needs `lookup` or random functions.
--------------------------------------------------------------------------- */}}

{{/* Secret the key Job fills with random credentials (name matches the subcharts' generatedSecret). */}}
{{- define "twitter.generatedSecretName" -}}
{{- printf "%s-generated" .Release.Name }}
{{- end }}

{{- define "twitter.jwtPrivateSecretName" -}}
{{- .Values.jwt.existingSecret | default (printf "%s-jwt" .Release.Name) }}
{{- end }}

{{- define "twitter.jwtPublicSecretName" -}}
{{- .Values.jwt.existingPublicSecret | default (printf "%s-jwt-public" .Release.Name) }}
{{- end }}

{{/* Keys the key Job must create in the generated Secret, one per line. */}}
{{- define "twitter.generatedKeys" -}}
{{- if not .Values.cursorSecret.existingSecret }}
cursor-secret
{{- end }}
{{- if and .Values.postgres.enabled (not .Values.postgres.existingSecret) }}
postgres-password
{{- end }}
{{- if and .Values.redis.enabled (not .Values.redis.existingSecret) }}
redis-password
{{- end }}
{{- if and .Values.rabbitmq.enabled (not .Values.rabbitmq.existingSecret) }}
rabbitmq-password
{{- end }}
{{- end }}

{{/* "true" when the key Job has anything to do. */}}
{{- define "twitter.keysJobEnabled" -}}
{{- if or (not .Values.jwt.existingSecret) (include "twitter.generatedKeys" . | trim) }}true{{ end }}
{{- end }}

{{/*
Data-service endpoints. Bundled: the subchart's Service `<release>-<svc>` and
the generated Secret. External: the block's host and existingSecret.
Each returns a dict as JSON: host, port, secret, passwordKey, usernameKey, username.
*/}}
{{- define "twitter.svc" -}}
{{- $ctx := .ctx }}
{{- $name := .name }}
{{- $v := index $ctx.Values $name }}
{{- $out := dict "port" ($v.port | int64) "username" ($v.username | default "") }}
{{- if $v.enabled }}
{{- $_ := set $out "host" ($v.fullnameOverride | default (printf "%s-%s" $ctx.Release.Name $name) | trunc 63 | trimSuffix "-") }}
{{- else }}
{{- $_ := set $out "host" (required (printf "%s.host is required when %s.enabled=false" $name $name) $v.host) }}
{{- end }}
{{- if $v.existingSecret }}
{{- $_ := set $out "secret" $v.existingSecret }}
{{- $_ := set $out "passwordKey" $v.existingSecretKeys.password }}
{{- $_ := set $out "usernameKey" ($v.existingSecretKeys.username | default "") }}
{{- else if $v.enabled }}
{{- $_ := set $out "secret" (include "twitter.generatedSecretName" $ctx) }}
{{- $_ := set $out "passwordKey" (printf "%s-password" $name) }}
{{- $_ := set $out "usernameKey" "" }}
{{- else if eq $name "redis" }}
{{- /* External Redis without a Secret: no AUTH. */}}
{{- $_ := set $out "secret" "" }}
{{- $_ := set $out "passwordKey" "" }}
{{- $_ := set $out "usernameKey" "" }}
{{- else }}
{{- fail (printf "%s.existingSecret is required when %s.enabled=false" $name $name) }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
Credentials and endpoints as container env. Usernames that live in a Secret are
expanded into the URL by Kubernetes ($(VAR) refers to an earlier entry); passwords
stay in their own variables, which core/settings.py merges into the URLs.
Call with (dict "ctx" $ "migrate" false).
*/}}
{{- define "twitter.connectionEnv" -}}
{{- $ctx := .ctx }}
{{- $pg := include "twitter.svc" (dict "ctx" $ctx "name" "postgres") | fromJson }}
{{- $pgHost := $pg.host }}
{{- if and .migrate $ctx.Values.postgres.directHost (not $ctx.Values.postgres.enabled) }}
{{- $pgHost = $ctx.Values.postgres.directHost }}
{{- end }}
{{- $pgUser := $pg.username | urlquery }}
{{- if $pg.usernameKey }}
- name: DATABASE_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $pg.secret }}
      key: {{ $pg.usernameKey }}
{{- $pgUser = "$(DATABASE_USERNAME)" }}
{{- end }}
- name: DATABASE_URL
  value: {{ printf "postgresql://%s@%s:%d/%s" $pgUser $pgHost (int64 $pg.port) ($ctx.Values.postgres.database | urlquery) }}{{ with $ctx.Values.postgres.sslMode }}?sslmode={{ . }}{{ end }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $pg.secret }}
      key: {{ $pg.passwordKey }}
{{- $rd := include "twitter.svc" (dict "ctx" $ctx "name" "redis") | fromJson }}
{{- $rdUser := "" }}
{{- if $rd.usernameKey }}
- name: REDIS_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $rd.secret }}
      key: {{ $rd.usernameKey }}
{{- $rdUser = "$(REDIS_USERNAME)@" }}
{{- end }}
{{- $rdMode := ternary "single" ($ctx.Values.redis.external.mode | default "single") $ctx.Values.redis.enabled }}
{{- $rdNode := printf "%s:%d" $rd.host (int64 $rd.port) }}
{{- if and (eq $rdMode "cluster") $ctx.Values.redis.external.seedNodes }}
{{- $rdNode = first $ctx.Values.redis.external.seedNodes }}
{{- end }}
- name: REDIS_MODE
  value: {{ $rdMode }}
- name: REDIS_URL
  value: {{ printf "%s://%s%s/%d" (ternary "rediss" "redis" (and (not $ctx.Values.redis.enabled) $ctx.Values.redis.tls)) $rdUser $rdNode (int64 $ctx.Values.redis.database) }}
{{- if $rd.secret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $rd.secret }}
      key: {{ $rd.passwordKey }}
{{- end }}
{{- $mq := include "twitter.svc" (dict "ctx" $ctx "name" "rabbitmq") | fromJson }}
{{- $mqUser := $mq.username | urlquery }}
{{- if $mq.usernameKey }}
- name: BROKER_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $mq.secret }}
      key: {{ $mq.usernameKey }}
{{- $mqUser = "$(BROKER_USERNAME)" }}
{{- end }}
{{- if not $mq.usernameKey }}
{{- /* Not read by the app (the URL has it); KEDA's rabbitmq trigger reads it. */}}
- name: BROKER_USERNAME
  value: {{ $mq.username | quote }}
{{- end }}
- name: BROKER_URL
  value: {{ printf "%s://%s@%s:%d/%s" (ternary "amqps" "amqp" (and (not $ctx.Values.rabbitmq.enabled) $ctx.Values.rabbitmq.tls)) $mqUser $mq.host (int64 $mq.port) ($ctx.Values.rabbitmq.vhost | urlquery) }}
- name: BROKER_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $mq.secret }}
      key: {{ $mq.passwordKey }}
- name: CURSOR_SECRET
  valueFrom:
    secretKeyRef:
      {{- if $ctx.Values.cursorSecret.existingSecret }}
      name: {{ $ctx.Values.cursorSecret.existingSecret }}
      key: {{ $ctx.Values.cursorSecret.key }}
      {{- else }}
      name: {{ include "twitter.generatedSecretName" $ctx }}
      key: cursor-secret
      {{- end }}
- name: JWT_PUBLIC_KEYS_PATH
  value: /var/run/secrets/twitter/jwt-public
{{- end }}

{{/* Settings that are not secret, rendered into the ConfigMap. */}}
{{- define "twitter.configData" -}}
{{- $c := .Values.config }}
APP_ENV: production
BROKER_KIND: rabbitmq
LOG_LEVEL: {{ $c.logLevel | quote }}
DB_POOL_SIZE: {{ $c.dbPoolSize | int64 | quote }}
DB_STATEMENT_TIMEOUT_MS: {{ $c.dbStatementTimeoutMs | int64 | quote }}
REDIS_PREFIX: {{ $c.redisPrefix | quote }}
REDIS_WAIT_REPLICAS: {{ $c.redisWaitReplicas | int64 | quote }}
REDIS_WAIT_TIMEOUT_MS: {{ $c.redisWaitTimeoutMs | int64 | quote }}
JWT_ISSUER: {{ $c.jwtIssuer | quote }}
JWT_AUDIENCE: {{ $c.jwtAudience | quote }}
JWT_KEY_PROPAGATION_S: {{ .Values.jwt.propagationSeconds | int64 | quote }}
ACCESS_TOKEN_TTL_S: {{ $c.accessTokenTtlSeconds | int64 | quote }}
REFRESH_TOKEN_TTL_S: {{ $c.refreshTokenTtlSeconds | int64 | quote }}
{{- if kindIs "invalid" $c.cookieSecure }}
COOKIE_SECURE: {{ and .Values.ingress.enabled .Values.ingress.tls.enabled | toString | quote }}
{{- else }}
COOKIE_SECURE: {{ $c.cookieSecure | toString | quote }}
{{- end }}
ARGON2_TIME_COST: {{ $c.argon2TimeCost | int64 | quote }}
ARGON2_MEMORY_KIB: {{ $c.argon2MemoryKib | int64 | quote }}
ARGON2_PARALLELISM: {{ $c.argon2Parallelism | int64 | quote }}
FANOUT_THRESHOLD: {{ $c.fanoutThreshold | int64 | quote }}
TIMELINE_CAP: {{ $c.timelineCap | int64 | quote }}
FANOUT_CHUNK_SIZE: {{ $c.fanoutChunkSize | int64 | quote }}
HOME_TTL_S: {{ $c.homeTtlSeconds | int64 | quote }}
INACTIVE_DAYS: {{ $c.inactiveDays | int64 | quote }}
PULLED_CACHE_S: {{ $c.pulledCacheSeconds | float64 | toString | quote }}
CARD_CACHE_SIZE: {{ $c.cardCacheSize | int64 | quote }}
NODE_ID: {{ $c.nodeId | int64 | quote }}
MAX_BODY_BYTES: {{ $c.maxBodyBytes | int64 | quote }}
OUTBOX_POLL_S: {{ $c.outboxPollSeconds | float64 | toString | quote }}
OUTBOX_BATCH: {{ $c.outboxBatch | int64 | quote }}
BROKER_QUEUE_TYPE: {{ $c.brokerQueueType | quote }}
RATE_LIMITS_ENABLED: {{ $c.rateLimits.enabled | toString | quote }}
RATE_LIMIT_STRATEGY: {{ $c.rateLimits.strategy | quote }}
RATE_LIMIT_AUTH: {{ $c.rateLimits.auth | quote }}
RATE_LIMIT_LOGIN_FAILURES: {{ $c.rateLimits.loginFailures | quote }}
RATE_LIMIT_WRITES: {{ $c.rateLimits.writes | quote }}
RATE_LIMIT_READS: {{ $c.rateLimits.reads | quote }}
RATE_LIMIT_ANONYMOUS: {{ $c.rateLimits.anonymous | quote }}
TRUSTED_PROXIES: {{ join "," $c.trustedProxies | quote }}
PORT: {{ .Values.api.containerPort | int64 | quote }}
WEB_WORKERS: {{ .Values.api.gunicorn.workers | int64 | quote }}
WEB_THREADS: {{ .Values.api.gunicorn.threads | int64 | quote }}
METRICS_PORT: {{ .Values.api.metricsPort | int64 | quote }}
WORKER_METRICS_PORT: {{ .Values.workerDefaults.metricsPort | int64 | quote }}
{{- range $name, $value := $c.extraEnv }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/*
Pod annotations that roll pods when configuration changes: the ConfigMap, and
which Secrets/keys are used (the contents of externally managed Secrets are
invisible to Helm: restart after changing credentials). JWT key rotations and
retirements do not roll anything: pods watch the mounted key files.
*/}}
{{- define "twitter.checksums" -}}
checksum/config: {{ include "twitter.configData" . | sha256sum }}
checksum/secrets: {{ list (include "twitter.connectionEnv" (dict "ctx" . "migrate" false)) (include "twitter.jwtPrivateSecretName" .) (include "twitter.jwtPublicSecretName" .) | toJson | sha256sum }}
{{- end }}

{{/* ---------------------------------------------------------------------------
Metrics (docs/observability.md).
--------------------------------------------------------------------------- */}}

{{/* PROMETHEUS_MULTIPROC_DIR: an emptyDir mounted here (the root fs is read-only). */}}
{{- define "twitter.metricsDir" -}}
/var/run/prometheus
{{- end }}

{{/*
Worker entrypoint: empty the multiprocess metrics directory, then exec the
dramatiq command given as arguments. ${VAR:?} stops the shell rather than run
`rm -rf /*` should the variable ever be missing.
*/}}
{{- define "twitter.metricsResetScript" -}}
rm -rf -- "${PROMETHEUS_MULTIPROC_DIR:?}"/*; exec "$@"
{{- end }}

{{/*
prometheus.io/* pod annotations for annotation-based scraping, as YAML (empty
when metrics.podAnnotations is off). Call with (dict "ctx" $ "port" 8000).
*/}}
{{- define "twitter.scrapeAnnotations" -}}
{{- if .ctx.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | int64 | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/* Labels of the prometheus-operator objects. Call with (dict "ctx" $ "component" "api"). */}}
{{- define "twitter.monitorLabels" -}}
{{- toYaml (merge (include "twitter.labels" . | fromYaml) .ctx.Values.metrics.serviceMonitor.labels) }}
{{- end }}

{{/* The scrape settings shared by the ServiceMonitor and the PodMonitors. */}}
{{- define "twitter.scrapeEndpoint" -}}
path: /metrics
interval: {{ .Values.metrics.serviceMonitor.interval }}
{{- with .Values.metrics.serviceMonitor.scrapeTimeout }}
scrapeTimeout: {{ . }}
{{- end }}
{{- end }}

{{/* Volumes of the public keys, /tmp and (dev mode) the synced sources. */}}
{{- define "twitter.commonVolumes" -}}
- name: jwt-public
  secret:
    secretName: {{ include "twitter.jwtPublicSecretName" . }}
    defaultMode: 0444
- name: tmp
  emptyDir: {}
{{- if .Values.dev.enabled }}
- name: app-src
  emptyDir: {}
{{- end }}
{{- end }}

{{- define "twitter.commonMounts" -}}
- name: jwt-public
  mountPath: /var/run/secrets/twitter/jwt-public
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.dev.enabled }}
- name: app-src
  mountPath: /app
{{- end }}
{{- end }}

{{/* Dev mode: copy the image's sources to a writable volume skaffold syncs into. */}}
{{- define "twitter.devSourcesInit" -}}
- name: dev-sources
  image: {{ include "twitter.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["cp", "-R", "/app/.", "/dev-app/"]
  securityContext:
    {{- toYaml .Values.containerSecurityContext | nindent 4 }}
  resources:
    requests:
      cpu: 10m
      memory: 16Mi
    limits:
      memory: 64Mi
  volumeMounts:
    - name: app-src
      mountPath: /dev-app
{{- end }}

{{/*
Init container that holds API/worker pods until the schema is current. It talks
to Postgres like the app does, so it gets the component's extra env and mounts
(a private CA bundle, say). Call with (dict "ctx" $ "opts" $podOptions).
*/}}
{{- define "twitter.waitForSchemaInit" -}}
{{- $ctx := .ctx }}
- name: wait-for-schema
  image: {{ include "twitter.image" $ctx }}
  imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
  command: ["python", "-m", "migrations", "wait", "--timeout", {{ $ctx.Values.migrations.waitTimeoutSeconds | int64 | quote }}]
  securityContext:
    {{- toYaml $ctx.Values.containerSecurityContext | nindent 4 }}
  envFrom:
    - configMapRef:
        name: {{ include "twitter.fullname" $ctx }}-config
    {{- with .opts.extraEnvFrom }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  env:
    {{- include "twitter.connectionEnv" (dict "ctx" $ctx "migrate" false) | trim | nindent 4 }}
    {{- with .opts.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  resources:
    {{- toYaml $ctx.Values.migrations.resources | nindent 4 }}
  volumeMounts:
    {{- include "twitter.commonMounts" $ctx | nindent 4 }}
    {{- with .opts.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* Checks that no schema can express. */}}
{{- define "twitter.validate" -}}
{{- if and .Values.migrations.asHook .Values.postgres.enabled }}
{{- fail "migrations.asHook=true needs an external Postgres (postgres.enabled=false): a pre-install hook runs before the bundled Postgres exists" }}
{{- end }}
{{- if and (not .Values.redis.enabled) (eq .Values.redis.external.mode "cluster") (ne (int .Values.redis.database) 0) }}
{{- fail "redis.database must be 0 with redis.external.mode=cluster: a Redis Cluster has only database 0" }}
{{- end }}
{{- if eq (int .Values.api.metricsPort) (int .Values.api.containerPort) }}
{{- fail "api.metricsPort must differ from api.containerPort: metrics must not be served on the API port" }}
{{- end }}
{{- if and .Values.jwt.existingSecret (not .Values.jwt.existingPublicSecret) }}
{{- fail "jwt.existingPublicSecret is required with jwt.existingSecret" }}
{{- end }}
{{- $seen := dict }}
{{- range .Values.workers }}
{{- if hasKey $seen .name }}
{{- fail (printf "workers: duplicate name %q" .name) }}
{{- end }}
{{- $_ := set $seen .name true }}
{{- $grace := .terminationGracePeriodSeconds | default $.Values.workerDefaults.terminationGracePeriodSeconds | int }}
{{- if le $grace (add $.Values.workerDefaults.longestJobSeconds 10 | int) }}
{{- fail (printf "workers[%s]: terminationGracePeriodSeconds (%d) must exceed workerDefaults.longestJobSeconds + 10" .name $grace) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A `helm test` pod running one script from the tests ConfigMap against the API
Service. Call with (dict "ctx" $ "name" "readiness" "script" "readiness.py").
*/}}
{{- define "twitter.testPod" -}}
{{- $ctx := .ctx }}
apiVersion: v1
kind: Pod
metadata:
  name: {{ printf "%s-test-%s" (include "twitter.fullname" $ctx) .name | trunc 63 | trimSuffix "-" }}
  labels:
    {{- include "twitter.labels" (dict "ctx" $ctx "component" "tests") | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-weight: "0"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  {{- with $ctx.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $ctx.Values.podSecurityContext | nindent 4 }}
  containers:
    - name: {{ .name }}
      image: {{ $ctx.Values.tests.image | default (include "twitter.image" $ctx) }}
      imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
      command: ["python", "/tests/{{ .script }}"]
      env:
        - name: API_URL
          value: {{ printf "http://%s:%d" (include "twitter.apiName" $ctx) (int64 $ctx.Values.api.service.port) }}
        - name: TIMEOUT_S
          value: {{ $ctx.Values.tests.timeoutSeconds | int64 | quote }}
      securityContext:
        {{- toYaml $ctx.Values.containerSecurityContext | nindent 8 }}
      resources:
        requests:
          cpu: 10m
          memory: 32Mi
        limits:
          memory: 128Mi
      volumeMounts:
        - name: tests
          mountPath: /tests
          readOnly: true
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: tests
      configMap:
        name: {{ include "twitter.fullname" $ctx }}-tests
    - name: tmp
      emptyDir: {}
{{- end }}

{{/*
Autoscaling of one worker group: workerDefaults.autoscaling with the group's
`autoscaling` merged over it. Returns JSON {keda, hpa, cfg}; KEDA wins over the
CPU HPA (both would fight over the replica count).
Call with (dict "ctx" $ "worker" $worker).
*/}}
{{- define "twitter.workerScaling" -}}
{{- $a := mergeOverwrite (deepCopy .ctx.Values.workerDefaults.autoscaling) (deepCopy (.worker.autoscaling | default dict)) }}
{{- toJson (dict "keda" $a.keda.enabled "hpa" (and $a.enabled (not $a.keda.enabled)) "cfg" $a) }}
{{- end }}

{{/* Name of a worker group's objects. Call with (dict "ctx" $ "worker" $worker). */}}
{{- define "twitter.workerName" -}}
{{- printf "%s-worker-%s" (include "twitter.fullname" .ctx) .worker.name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of a pod template, as one map so that no key is written twice (a
duplicate key is an error for the API server): the recommended and common
labels, then the pod's extra labels over them, then the selector labels over
everything (a pod must keep matching its Deployment).
Call with (dict "ctx" $ "component" "api" "extra" $podLabels).
*/}}
{{- define "twitter.podLabels" -}}
{{- $selector := include "twitter.selectorLabels" (dict "ctx" .ctx "component" .component) | fromYaml }}
{{- $labels := include "twitter.labels" (dict "ctx" .ctx "component" .component) | fromYaml }}
{{- toYaml (merge (dict) $selector (.extra | default dict) $labels) }}
{{- end }}
