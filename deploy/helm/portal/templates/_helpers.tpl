{{/* The release's name prefix of every object. */}}
{{- define "portal.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of one component's objects: {{ include "portal.name" (list $ "ingest") }} */}}
{{- define "portal.name" -}}
{{- printf "%s-%s" (include "portal.fullname" (index . 0)) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "portal.selectorLabels" -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
{{- end -}}

{{- define "portal.labels" -}}
{{ include "portal.selectorLabels" . }}
app.kubernetes.io/part-of: portal
app.kubernetes.io/version: {{ (index . 0).Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ (index . 0).Release.Service }}
helm.sh/chart: {{ printf "%s-%s" (index . 0).Chart.Name (index . 0).Chart.Version }}
{{- end -}}

{{/* A component's settings: the defaults, overridden by its own entry. */}}
{{- define "portal.component" -}}
{{- $root := index . 0 -}}
{{- $own := index $root.Values.components (index . 1) -}}
{{- $merged := mergeOverwrite (deepCopy $root.Values.defaults) (deepCopy $own) -}}
{{- /* mergeOverwrite skips false: a component's own false (hpa.enabled) is set again */ -}}
{{- range $key, $value := $own -}}
{{- if kindIs "bool" $value -}}
{{- $_ := set $merged $key $value -}}
{{- else if kindIs "map" $value -}}
{{- range $inner, $v := $value -}}
{{- if kindIs "bool" $v -}}
{{- $_ := set (index $merged $key) $inner $v -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $merged -}}
{{- end -}}

{{- define "portal.image" -}}
{{- $root := index . 0 -}}
{{- printf "%s/%s:%s" $root.Values.image.repository (index . 1) (default $root.Chart.AppVersion $root.Values.image.tag) -}}
{{- end -}}

{{/* Seconds a pod gets after SIGTERM: the readiness delay, the drain, and a margin. */}}
{{- define "portal.gracePeriod" -}}
{{- add .Values.shutdown.delaySeconds .Values.shutdown.drainSeconds 10 -}}
{{- end -}}

{{/* The URL of a component's Service inside the cluster. */}}
{{- define "portal.url" -}}
{{- $root := index . 0 -}}
{{- $c := index $root.Values.components (index . 1) -}}
{{- printf "http://%s:%v" (include "portal.name" .) $c.port -}}
{{- end -}}

{{/* Hardened container defaults (the images run as uid 10001). */}}
{{- define "portal.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}
