{{- define "cert-manager.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cert-manager.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "cert-manager.webhook.fullname" -}}
{{- printf "%s-webhook" (include "cert-manager.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cert-manager.cainjector.fullname" -}}
{{- printf "%s-cainjector" (include "cert-manager.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cert-manager.startupapicheck.fullname" -}}
{{- printf "%s-startupapicheck" (include "cert-manager.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of one component: pass (list $ "controller" "cert-manager"). */}}
{{- define "cert-manager.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ index . 2 }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 | quote }}
{{- end -}}

{{- define "cert-manager.labels" -}}
{{- $ := index . 0 -}}
{{ include "cert-manager.selectorLabels" . }}
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: spar-sandbox-chart
helm.sh/chart: {{ printf "%s-%s" $.Chart.Name $.Chart.Version }}
{{- end -}}

{{- define "cert-manager.crdsEnabled" -}}
{{- if or .Values.crds.enabled .Values.installCRDs -}}true{{- end -}}
{{- end -}}

{{/* The CRD metadata (pass (list $ "certificates.cert-manager.io")). */}}
{{- define "cert-manager.crdMetadata" -}}
{{- $ := index . 0 -}}
metadata:
  name: {{ index . 1 }}
  labels:
    {{- include "cert-manager.labels" (list $ "crds" "cert-manager") | nindent 4 }}
  {{- if $.Values.crds.keep }}
  annotations:
    helm.sh/resource-policy: keep
  {{- end }}
{{- end -}}
