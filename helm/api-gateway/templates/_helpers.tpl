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

{{/* The env rendered into the ConfigMap: .Values.env, the tracing block as OTEL_* variables, BACKEND_URL or BACKEND_URLS (never both), REDIS_URL from redis.url. */}}
{{- define "api-gateway.env" -}}
{{- $env := dict }}
{{- range $k, $v := .Values.env }}
{{- $_ := set $env $k (toString $v) }}
{{- end }}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" (toString .Values.tracing.endpoint) }}
{{- $_ := set $env "OTEL_TRACES_SAMPLER" (toString .Values.tracing.sampler) }}
{{- $_ := set $env "OTEL_TRACES_SAMPLER_ARG" (toString .Values.tracing.samplerArg) }}
{{- if .Values.demo.enabled }}
{{- $_ := set $env "BACKEND_URL" (printf "http://%s:80" (include "api-gateway.demo.serviceName" .)) }}
{{- $_ := set $env "BACKEND_URLS" "" }}
{{- end }}
{{- if and $env.BACKEND_URL $env.BACKEND_URLS (ne $env.BACKEND_URL "http://sentiment-api-service:80") }}
{{- fail "env.BACKEND_URL and env.BACKEND_URLS are both set: set one of them" }}
{{- end }}
{{- $_ := set $env "REDIS_URL" .Values.redis.url }}
{{- if .Values.routes.models }}
{{- $_ := set $env "ROUTES_FILE" (printf "%s/routes.yaml" (include "api-gateway.routesDir" .)) }}
{{- end }}
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

{{/* The Redis port of redis.url (6379 when it names none), for the egress NetworkPolicy. */}}
{{- define "api-gateway.redisPort" -}}
{{- $host := (urlParse .Values.redis.url).host }}
{{- $port := regexFind ":[0-9]+$" $host | trimPrefix ":" }}
{{- default "6379" $port }}
{{- end }}

{{/* Where the routes ConfigMap is mounted: a directory, so its updates reach the pod (a subPath mount never sees them). */}}
{{- define "api-gateway.routesDir" -}}
/etc/api-gateway/routes
{{- end }}
