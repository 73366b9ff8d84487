{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "stoker.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name. */}}
{{- define "stoker.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "stoker.labels" -}}
app.kubernetes.io/name: {{ include "stoker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "stoker.selector" -}}
app.kubernetes.io/name: {{ include "stoker.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "stoker.hubServiceAccount" -}}
{{- default (printf "%s-hub" (include "stoker.fullname" .)) .Values.serviceAccount.hubName -}}
{{- end -}}

{{- define "stoker.agentServiceAccount" -}}
{{- default (printf "%s-agent" (include "stoker.fullname" .)) .Values.serviceAccount.agentName -}}
{{- end -}}

{{- define "stoker.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Repository and credential flags shared by hub and agent. */}}
{{- define "stoker.gitArgs" -}}
- --repo={{ required "git.url is required" .Values.git.url }}
{{- with .Values.git.statusRepo }}
- --status-repo={{ . }}
{{- end }}
- --reports-repo={{ required "git.reportsRepo is required: the per-node stoker/reports/<node> branches live in a repository of their own so that the repository agents poll keeps few refs (set it to git.url to keep them there anyway, at ~80 B per node on every poll)" .Values.git.reportsRepo }}
- --interval={{ .Values.git.interval }}
{{- $c := .Values.git.credentials }}
{{- if eq $c.type "ssh" }}
- --git-ssh-key-file=/etc/stoker/git/{{ $c.sshKeyKey }}
- --git-known-hosts-file=/etc/stoker/git/{{ $c.knownHostsKey }}
{{- else if eq $c.type "token" }}
- --git-token-file=/etc/stoker/git/{{ $c.tokenKey }}
{{- else if eq $c.type "basic" }}
- --git-username={{ required "git.credentials.username is required for basic auth" $c.username }}
- --git-password-file=/etc/stoker/git/{{ $c.passwordKey }}
{{- end }}
{{- end -}}

{{- define "stoker.gitVolumeMount" -}}
{{- if ne .Values.git.credentials.type "none" -}}
- name: git-credentials
  mountPath: /etc/stoker/git
  readOnly: true
{{- end }}
{{- end -}}

{{- define "stoker.gitVolume" -}}
{{- if ne .Values.git.credentials.type "none" -}}
- name: git-credentials
  secret:
    secretName: {{ required "git.credentials.existingSecret is required when git.credentials.type is not none" .Values.git.credentials.existingSecret }}
    defaultMode: 0400
{{- end }}
{{- end -}}
