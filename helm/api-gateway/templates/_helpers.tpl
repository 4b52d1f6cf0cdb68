{{/* Chart name. */}}
{{- define "api-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or the release name when it contains the chart name. */}}
{{- define "api-gateway.fullname" -}}
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

{{- define "api-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "api-gateway.labels" -}}
helm.sh/chart: {{ include "api-gateway.chart" . }}
{{ include "api-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "api-gateway.name" . }}
{{- end }}

{{/* Selector labels of the gateway pods. */}}
{{- define "api-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "api-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{/* Selector labels of the demo backend pods. */}}
{{- define "api-gateway.demo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "api-gateway.name" . }}-demo
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: demo-backend
{{- end }}

{{- define "api-gateway.demo.labels" -}}
helm.sh/chart: {{ include "api-gateway.chart" . }}
{{ include "api-gateway.demo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "api-gateway.name" . }}
{{- end }}

{{- define "api-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "api-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "api-gateway.serviceName" -}}
{{- default (include "api-gateway.fullname" .) .Values.service.name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "api-gateway.demo.serviceName" -}}
{{- default (printf "%s-demo" (include "api-gateway.fullname" .)) .Values.demo.serviceName | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "api-gateway.secretName" -}}
{{- default (include "api-gateway.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "api-gateway.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "api-gateway.demo.image" -}}
{{- $repo := default .Values.image.repository .Values.demo.image.repository }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.demo.image.tag }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

{{/* The env rendered into the ConfigMap: .Values.env, the tracing block as OTEL_* variables, batching as BATCH_*, capture as CAPTURE_* (but CAPTURE_HEADERS, a Secret's), BACKEND_URL or BACKEND_URLS (never both), REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_NAME, REDIS_CLUSTER_NODES, REDIS_TLS and REDIS_USERNAME from redis, JWT_* from auth.jwt, ROUTES_FILE and TENANTS_FILE when routes / tenants are given. */}}
{{- define "api-gateway.env" -}}
{{- $env := dict }}
{{- range $k, $v := .Values.env }}
{{- $_ := set $env $k (toString $v) }}
{{- end }}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" (toString .Values.tracing.endpoint) }}
{{- $_ := set $env "OTEL_TRACES_SAMPLER" (toString .Values.tracing.sampler) }}
{{- $_ := set $env "OTEL_TRACES_SAMPLER_ARG" (toString .Values.tracing.samplerArg) }}
{{- $batching := .Values.batching }}
{{- $_ := set $env "BATCH_MAX_SIZE" (toString $batching.maxSize) }}
{{- $_ := set $env "BATCH_MAX_DELAY_MS" (toString $batching.maxDelayMs) }}
{{- $_ := set $env "BATCH_PATH" $batching.path }}
{{- $_ := set $env "BATCH_ITEM" $batching.item }}
{{- $_ := set $env "BATCH_ITEMS" $batching.items }}
{{- $_ := set $env "BATCH_RESULTS" $batching.results }}
{{- $capture := .Values.capture }}
{{- if and $capture.headers $capture.existingSecret }}
{{- fail "capture.headers and capture.existingSecret: set at most one of them (the sink's headers come from one place)" }}
{{- end }}
{{- if and $capture.headers .Values.auth.existingSecret }}
{{- fail "capture.headers goes into the chart's Secret, which auth.existingSecret replaces: put the headers in capture.existingSecret" }}
{{- end }}
{{- $_ := set $env "CAPTURE_SAMPLE_RATE" (toString $capture.sampleRate) }}
{{- $_ := set $env "CAPTURE_SAMPLE_KEY" $capture.sampleKey }}
{{- $_ := set $env "CAPTURE_URL" $capture.url }}
{{- $_ := set $env "CAPTURE_REDIS_STREAM" $capture.redisStream }}
{{- $_ := set $env "CAPTURE_REDIS_MAXLEN" (toString (int64 $capture.redisMaxLen)) }}
{{- $_ := set $env "CAPTURE_REDACT" (join "," $capture.redact) }}
{{- $_ := set $env "CAPTURE_MAX_BODY_BYTES" (toString (int64 $capture.maxBodyBytes)) }}
{{- $_ := set $env "CAPTURE_BUFFER_BYTES" (toString (int64 $capture.bufferBytes)) }}
{{- $_ := set $env "CAPTURE_TIMEOUT_MS" (toString (int64 $capture.timeoutMs)) }}
{{- $_ := set $env "CAPTURE_RETRIES" (toString (int64 $capture.retries)) }}
{{- $_ := set $env "CAPTURE_HEADERS_FILE" "" }}
{{- if $capture.existingSecret }}
{{- $_ := set $env "CAPTURE_HEADERS_FILE" (printf "%s/%s" (include "api-gateway.captureDir" .) $capture.existingSecretKey) }}
{{- end }}
{{- if .Values.demo.enabled }}
{{- $_ := set $env "BACKEND_URL" (printf "http://%s:80" (include "api-gateway.demo.serviceName" .)) }}
{{- $_ := set $env "BACKEND_URLS" "" }}
{{- end }}
{{- if and $env.BACKEND_URL $env.BACKEND_URLS (ne $env.BACKEND_URL "http://sentiment-api-service:80") }}
{{- fail "env.BACKEND_URL and env.BACKEND_URLS are both set: set one of them" }}
{{- end }}
{{- $redis := .Values.redis }}
{{- if gt (len (compact (list $redis.url (join "," $redis.sentinels) (join "," $redis.clusterNodes)))) 1 }}
{{- fail "redis.url, redis.sentinels and redis.clusterNodes: set at most one of them (a single Redis, Sentinel or Cluster)" }}
{{- end }}
{{- $_ := set $env "REDIS_URL" $redis.url }}
{{- $_ := set $env "REDIS_SENTINELS" (join "," $redis.sentinels) }}
{{- $_ := set $env "REDIS_SENTINEL_NAME" $redis.sentinelName }}
{{- $_ := set $env "REDIS_CLUSTER_NODES" (join "," $redis.clusterNodes) }}
{{- $_ := set $env "REDIS_TLS" (toString $redis.tls) }}
{{- $_ := set $env "REDIS_USERNAME" $redis.username }}
{{- if .Values.routes.models }}
{{- $_ := set $env "ROUTES_FILE" (printf "%s/routes.yaml" (include "api-gateway.routesDir" .)) }}
{{- end }}
{{- if .Values.tenants }}
{{- $_ := set $env "TENANTS_FILE" (printf "%s/tenants.yaml" (include "api-gateway.tenantsDir" .)) }}
{{- end }}
{{- $jwt := .Values.auth.jwt }}
{{- if and $jwt.jwksUrl $jwt.publicKey }}
{{- fail "auth.jwt.jwksUrl and auth.jwt.publicKey are both set: set one of them" }}
{{- end }}
{{- if and (or $jwt.jwksUrl $jwt.publicKey) (or (empty $jwt.issuers) (empty $jwt.audiences)) }}
{{- fail "auth.jwt.issuers and auth.jwt.audiences are required with auth.jwt.jwksUrl or auth.jwt.publicKey" }}
{{- end }}
{{- $_ := set $env "JWT_JWKS_URL" $jwt.jwksUrl }}
{{- $_ := set $env "JWT_PUBLIC_KEY_FILE" (ternary (printf "%s/key" (include "api-gateway.jwtDir" .)) "" (not (empty $jwt.publicKey))) }}
{{- $_ := set $env "JWT_ISSUER" (join "," $jwt.issuers) }}
{{- $_ := set $env "JWT_AUDIENCE" (join "," $jwt.audiences) }}
{{- $_ := set $env "JWT_ALGORITHMS" (join "," $jwt.algorithms) }}
{{- $_ := set $env "JWT_CLOCK_TOLERANCE_S" (toString $jwt.clockToleranceSeconds) }}
{{- $_ := set $env "JWT_TENANT_CLAIM" $jwt.tenantClaim }}
{{- $_ := set $env "JWT_JWKS_COOLDOWN_MS" (toString $jwt.jwksCooldownMs) }}
{{- $_ := set $env "JWT_JWKS_REFRESH_MS" (toString $jwt.jwksRefreshMs) }}
{{- if $env.BACKEND_URLS }}
{{- $_ := unset $env "BACKEND_URL" }}
{{- else }}
{{- $_ := unset $env "BACKEND_URLS" }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/* Fails when the grace period cannot cover preStop + drain. */}}
{{- define "api-gateway.checkGracePeriod" -}}
{{- $drain := add (int .Values.lifecycle.preStopSleepSeconds) (div (add (int .Values.env.SHUTDOWN_DELAY_MS) (int .Values.env.SHUTDOWN_TIMEOUT_MS)) 1000) }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $drain) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + (SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS)/1000 = %d" (int .Values.terminationGracePeriodSeconds) (int $drain)) }}
{{- end }}
{{- end }}

{{/* The Redis ports the gateway connects to, one per line, for the egress NetworkPolicy: redis.url's (6379 when it names none); the sentinels' and 6379 (the masters' port, as Bitnami's chart has it); the cluster seeds' (discovered nodes are expected on the same ports). */}}
{{- define "api-gateway.redisPorts" -}}
{{- $ports := list }}
{{- with .Values.redis.url }}
{{- $port := regexFind ":[0-9]+$" (urlParse .).host | trimPrefix ":" }}
{{- $ports = append $ports (default "6379" $port) }}
{{- end }}
{{- range .Values.redis.sentinels }}
{{- $ports = append $ports (default "26379" (regexFind ":[0-9]+$" . | trimPrefix ":")) }}
{{- end }}
{{- if .Values.redis.sentinels }}
{{- $ports = append $ports "6379" }}
{{- end }}
{{- range .Values.redis.clusterNodes }}
{{- $ports = append $ports (default "6379" (regexFind ":[0-9]+$" . | trimPrefix ":")) }}
{{- end }}
{{- join "\n" (uniq $ports) }}
{{- end }}

{{/* Where the routes ConfigMap is mounted: a directory, so its updates reach the pod (a subPath mount never sees them). */}}
{{- define "api-gateway.routesDir" -}}
/etc/api-gateway/routes
{{- end }}

{{/* Where the tenants ConfigMap is mounted (a directory, like the routes). */}}
{{- define "api-gateway.tenantsDir" -}}
/etc/api-gateway/tenants
{{- end }}

{{/* Where the JWT public key ConfigMap is mounted (a directory: its updates reach the pod). */}}
{{- define "api-gateway.jwtDir" -}}
/etc/api-gateway/jwt
{{- end }}

{{/* The JWKS URL's port, for the egress NetworkPolicy (443 for https, 80 for http when it names none). */}}
{{- define "api-gateway.jwksPort" -}}
{{- $url := urlParse .Values.auth.jwt.jwksUrl }}
{{- $port := regexFind ":[0-9]+$" $url.host | trimPrefix ":" }}
{{- default (ternary "443" "80" (eq $url.scheme "https")) $port }}
{{- end }}

{{/* Where capture.existingSecret (the capture sink's headers) is mounted. */}}
{{- define "api-gateway.captureDir" -}}
/etc/api-gateway/capture
{{- end }}

{{/* capture.headers as CAPTURE_HEADERS: name=value pairs, commas and percent signs in values percent-encoded. */}}
{{- define "api-gateway.captureHeaders" -}}
{{- $pairs := list }}
{{- range $name, $value := .Values.capture.headers }}
{{- $pairs = append $pairs (printf "%s=%s" $name (toString $value | replace "%" "%25" | replace "," "%2C")) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}
