{{- define "gha-rs-controller.name" -}}
{{- default "gha-rs-controller" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gha-rs-controller.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "gha-rs-controller.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gha-rs-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gha-rs-controller.name" . }}
app.kubernetes.io/namespace: {{ .Release.Namespace }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gha-rs-controller.labels" -}}
{{ include "gha-rs-controller.selectorLabels" . }}
app.kubernetes.io/part-of: gha-rs-controller
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: spar-sandbox-chart
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gha-rs-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gha-rs-controller.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
