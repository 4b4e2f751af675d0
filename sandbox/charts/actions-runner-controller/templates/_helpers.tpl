{{- define "arc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "arc.fullname" -}}
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

{{- define "arc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "arc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "arc.labels" -}}
{{ include "arc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: spar-sandbox-chart
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "arc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "arc.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "arc.secretName" -}}
{{- default (include "arc.fullname" .) .Values.authSecret.name -}}
{{- end -}}

{{- define "arc.webhookServiceName" -}}
{{- printf "%s-webhook" (include "arc.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "arc.servingCertName" -}}
{{- printf "%s-serving-cert" (include "arc.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "arc.selfsignedIssuerName" -}}
{{- printf "%s-selfsigned-issuer" (include "arc.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* A value as a string; whole numbers read from YAML (float64) without an exponent. */}}
{{- define "arc.string" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) -}}
{{- int64 . | toString -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{- define "arc.managerRoleName" -}}
{{- include "arc.fullname" . }}-manager
{{- end -}}
