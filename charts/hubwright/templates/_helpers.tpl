{{/* The release's base name, at most 63 characters. */}}
{{- define "hubwright.fullname" -}}
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

{{- define "hubwright.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hubwright.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ include "hubwright.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component (api, worker, migrate). */}}
{{- define "hubwright.selector" -}}
app.kubernetes.io/name: {{ include "hubwright.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "hubwright.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "hubwright.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "hubwright.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding database-url and secret-key. */}}
{{- define "hubwright.secretName" -}}
{{- if .Values.secret.existingSecret -}}
{{- .Values.secret.existingSecret -}}
{{- else -}}
{{- include "hubwright.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* DATABASE_URL and HUBWRIGHT_SECRET_KEY from the Secret. */}}
{{- define "hubwright.secretEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "hubwright.secretName" . }}
      key: database-url
- name: HUBWRIGHT_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "hubwright.secretName" . }}
      key: secret-key
{{- end -}}

{{/* Environment every hubwright container shares. HOME and helm's state go to
the writable /tmp emptyDir: the root filesystem is read-only. */}}
{{- define "hubwright.env" -}}
{{ include "hubwright.secretEnv" . }}
- name: RUST_LOG
  value: {{ .Values.logLevel | quote }}
- name: HOME
  value: /tmp
- name: HELM_CACHE_HOME
  value: /tmp/helm/cache
- name: HELM_CONFIG_HOME
  value: /tmp/helm/config
- name: HELM_DATA_HOME
  value: /tmp/helm/data
- name: KUBECACHEDIR
  value: /tmp/kube-cache
{{- end -}}

{{- define "hubwright.workflowKey" -}}
{{- . | replace "/" "__" -}}
{{- end -}}

{{/* Volumes: /tmp, the configuration, the workflows when overridden, kubeconfigs. */}}
{{- define "hubwright.volumes" -}}
- name: tmp
  emptyDir: {}
- name: config
  configMap:
    name: {{ include "hubwright.fullname" . }}-config
{{- if .Values.workflows }}
- name: workflows
  configMap:
    name: {{ include "hubwright.fullname" . }}-workflows
    items:
    {{- range $path, $_ := .Values.workflows }}
      - key: {{ include "hubwright.workflowKey" $path }}
        path: {{ $path }}
    {{- end }}
{{- end }}
{{- if .Values.kubeconfigSecret }}
- name: kubeconfigs
  secret:
    secretName: {{ .Values.kubeconfigSecret }}
{{- end }}
{{- end -}}

{{- define "hubwright.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: config
  mountPath: /etc/hubwright/config
  readOnly: true
{{- if .Values.workflows }}
- name: workflows
  mountPath: /etc/hubwright/workflows
  readOnly: true
{{- end }}
{{- if .Values.kubeconfigSecret }}
- name: kubeconfigs
  mountPath: /etc/hubwright/kubeconfigs
  readOnly: true
{{- end }}
{{- end -}}

{{/* `hubwright serve` flags shared by both components. */}}
{{- define "hubwright.commonArgs" -}}
- --log-format
- {{ .Values.logFormat }}
- serve
- --workflows
- /etc/hubwright/workflows
- --clusters
- /etc/hubwright/config/clusters.yaml
- --metrics-listen
- {{ printf "0.0.0.0:%d" (int .Values.metrics.port) | quote }}
{{- end -}}

{{/* The metrics port, and probes on it, of a container. */}}
{{- define "hubwright.metricsPort" -}}
- name: metrics
  containerPort: {{ .Values.metrics.port }}
{{- end -}}

{{/* Fails rendering when values contradict each other in ways the schema cannot say. */}}
{{- define "hubwright.validate" -}}
{{- if and (not .Values.secret.existingSecret) (not .Values.secret.databaseUrl) -}}
{{- fail "secret: set secret.existingSecret (a Secret with keys database-url and secret-key) or secret.databaseUrl (the chart then creates the Secret)" -}}
{{- end -}}
{{- $grace := regexFind "^[0-9]+" .Values.worker.shutdownGrace | int -}}
{{- if not (regexMatch "^[0-9]+s$" .Values.worker.shutdownGrace) -}}
{{- $grace = 0 -}}
{{- if regexMatch "^[0-9]+m$" .Values.worker.shutdownGrace -}}
{{- $grace = mul (regexFind "^[0-9]+" .Values.worker.shutdownGrace | int) 60 -}}
{{- end -}}
{{- end -}}
{{- if le (int .Values.worker.terminationGracePeriodSeconds) (int $grace) -}}
{{- fail (printf "worker.terminationGracePeriodSeconds (%d) must be longer than worker.shutdownGrace (%s): Kubernetes kills the pod at the former, and steps in flight need the latter to finish" (int .Values.worker.terminationGracePeriodSeconds) .Values.worker.shutdownGrace) -}}
{{- end -}}
{{- if and (eq .Values.rbac.scope "namespaced") .Values.rbac.create (not .Values.rbac.namespaced.namespaces) -}}
{{- fail "rbac.scope namespaced needs rbac.namespaced.namespaces: the namespaces hubwright may provision into" -}}
{{- end -}}
{{- if .Values.serviceMonitor.enabled -}}
{{- fail "serviceMonitor was replaced by metrics.podMonitor, which scrapes API and worker pods on their metrics port without a token: set metrics.podMonitor.enabled (and its labels) instead" -}}
{{- end -}}
{{- end -}}
