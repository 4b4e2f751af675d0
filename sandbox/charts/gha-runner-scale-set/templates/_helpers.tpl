{{- define "gha-rs.scaleSetName" -}}
{{- default .Release.Name .Values.runnerScaleSetName -}}
{{- end -}}

{{- define "gha-rs.labels" -}}
app.kubernetes.io/name: {{ include "gha-rs.scaleSetName" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: gha-rs
app.kubernetes.io/managed-by: spar-sandbox-chart
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
actions.github.com/scale-set-name: {{ include "gha-rs.scaleSetName" . }}
actions.github.com/scale-set-namespace: {{ .Release.Namespace }}
{{- end -}}

{{- define "gha-rs.githubSecretName" -}}
{{- if kindIs "string" .Values.githubConfigSecret -}}
{{- .Values.githubConfigSecret -}}
{{- else -}}
{{- printf "%s-gha-rs-github-secret" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gha-rs.noPermissionServiceAccountName" -}}
{{- printf "%s-gha-rs-no-permission" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gha-rs.kubeModeRoleName" -}}
{{- printf "%s-gha-rs-kube-mode" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gha-rs.kubeModeServiceAccountName" -}}
{{- printf "%s-gha-rs-kube-mode" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "true" when the runners use the kubernetes container mode (containerMode.type
kubernetes or kubernetes-novolume), else empty. */}}
{{- define "gha-rs.kubeMode" -}}
{{- $mode := .Values.containerMode | default dict -}}
{{- if has (toString $mode.type) (list "kubernetes" "kubernetes-novolume") -}}true{{- end -}}
{{- end -}}

{{/* The runners' own template.spec.serviceAccountName, else empty. */}}
{{- define "gha-rs.runnerServiceAccountName" -}}
{{- $template := .Values.template | default dict -}}
{{- $spec := $template.spec | default dict -}}
{{- $spec.serviceAccountName | default "" -}}
{{- end -}}

{{/* The user's .Values.labels, as upstream: quoted, without the keys the chart sets itself
and without actions.github.com/ ones. Renders nothing without labels. */}}
{{- define "gha-rs.userLabels" -}}
{{- $reserved := fromYaml (include "gha-rs.labels" .) -}}
{{- $_ := set $reserved "app.kubernetes.io/component" "" -}}
{{- range $k, $v := .Values.labels }}
{{- if not (or (hasKey $reserved $k) (hasPrefix "actions.github.com/" $k)) }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "gha-rs.managerRoleName" -}}
{{- printf "%s-gha-rs-manager" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The controller's ServiceAccount as a dict {namespace, name}: from
controllerServiceAccount, else discovered (lookup; empty under `helm template`), else fail. */}}
{{- define "gha-rs.controllerServiceAccount" -}}
{{- $sa := .Values.controllerServiceAccount | default dict -}}
{{- if and $sa.namespace $sa.name -}}
{{- toYaml (dict "namespace" $sa.namespace "name" $sa.name) -}}
{{- else if or $sa.namespace $sa.name -}}
{{- fail "controllerServiceAccount needs both namespace and name" -}}
{{- else -}}
{{- $found := dict -}}
{{- $list := lookup "apps/v1" "Deployment" "" "" -}}
{{- range ($list.items | default list) -}}
{{- $l := .metadata.labels | default dict -}}
{{- if eq (get $l "app.kubernetes.io/part-of") "gha-rs-controller" -}}
{{- $found = dict "namespace" (get $l "actions.github.com/controller-service-account-namespace") "name" (get $l "actions.github.com/controller-service-account-name") -}}
{{- end -}}
{{- end -}}
{{- if not $found.name -}}
{{- fail "No gha-runner-scale-set-controller deployment found (label app.kubernetes.io/part-of=gha-rs-controller); set controllerServiceAccount.namespace and controllerServiceAccount.name" -}}
{{- end -}}
{{- toYaml $found -}}
{{- end -}}
{{- end -}}

{{- define "gha-rs.isNumber" -}}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) -}}true{{- end -}}
{{- end -}}

{{/* Every check of the values; included first by every template so that the first error a
user sees is the same whichever template Helm renders first. Renders nothing. */}}
{{- define "gha-rs.validate" -}}
{{- if not (.Values.githubConfigUrl | default "" | toString | trim) -}}
{{- fail "githubConfigUrl is required: the URL of the GitHub organisation, repository or enterprise the runners register with (e.g. https://github.com/my-org)" -}}
{{- end -}}
{{- if gt (len (include "gha-rs.scaleSetName" .)) 45 -}}
{{- fail "runnerScaleSetName (default: the release name) must have up to 45 characters" -}}
{{- end -}}
{{- $s := .Values.githubConfigSecret -}}
{{- if kindIs "string" $s -}}
{{- if not (trim $s) -}}
{{- fail "githubConfigSecret: the name of an existing Secret must not be empty" -}}
{{- end -}}
{{- else if kindIs "map" $s -}}
{{- $app := or $s.github_app_id $s.github_app_installation_id $s.github_app_private_key -}}
{{- if and $app $s.github_token -}}
{{- fail "githubConfigSecret: set either github_token or the github_app_* fields, not both" -}}
{{- end -}}
{{- if $app -}}
{{- if not (and $s.github_app_id $s.github_app_installation_id $s.github_app_private_key) -}}
{{- fail "githubConfigSecret: a GitHub App needs github_app_id, github_app_installation_id and github_app_private_key" -}}
{{- end -}}
{{- else if not $s.github_token -}}
{{- fail "githubConfigSecret is required: set github_token, or github_app_id, github_app_installation_id and github_app_private_key, or give the name of an existing Secret" -}}
{{- end -}}
{{- else -}}
{{- fail "githubConfigSecret must be the name of an existing Secret (a string) or an object with github_token or github_app_id, github_app_installation_id and github_app_private_key" -}}
{{- end -}}
{{- $hasMin := include "gha-rs.isNumber" .Values.minRunners -}}
{{- $hasMax := include "gha-rs.isNumber" .Values.maxRunners -}}
{{- if and (not $hasMin) (ne (toString .Values.minRunners) "<nil>") -}}
{{- fail "minRunners must be an integer" -}}
{{- end -}}
{{- if and (not $hasMax) (ne (toString .Values.maxRunners) "<nil>") -}}
{{- fail "maxRunners must be an integer" -}}
{{- end -}}
{{- if and $hasMin (lt (.Values.minRunners | int) 0) -}}
{{- fail "minRunners has to be greater or equal to 0" -}}
{{- end -}}
{{- if and $hasMax (lt (.Values.maxRunners | int) 0) -}}
{{- fail "maxRunners has to be greater or equal to 0" -}}
{{- end -}}
{{- if and $hasMin $hasMax (lt (.Values.maxRunners | int) (.Values.minRunners | int)) -}}
{{- fail "maxRunners has to be greater or equal to minRunners" -}}
{{- end -}}
{{- end -}}

{{/* A value as a string; whole numbers read from YAML (float64) without an exponent. */}}
{{- define "gha-rs.string" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) -}}
{{- int64 . | toString -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}
