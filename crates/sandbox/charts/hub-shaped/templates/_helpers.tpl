{{/* The labels z2jh puts on every object: app, component, release, chart, heritage. */}}
{{- define "hub-shaped.labels" -}}
app: jupyterhub
component: {{ .component }}
release: {{ .root.Release.Name }}
chart: {{ .root.Chart.Name }}-{{ .root.Chart.Version }}
heritage: {{ .root.Release.Service }}
{{- end }}

{{/* The selector labels z2jh's Deployments and Services use. */}}
{{- define "hub-shaped.selector" -}}
app: jupyterhub
component: {{ .component }}
release: {{ .root.Release.Name }}
{{- end }}
