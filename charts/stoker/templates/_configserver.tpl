{{/*
The first-boot config server (values configServer): the hub's flags, its
container port, mounts and volumes. Secrets are mounted read-only; the
token directory is a Secret whose keys are pool names.
*/}}

{{- define "stoker.configServer.check" -}}
{{- $c := .Values.configServer -}}
{{- if $c.enabled -}}
{{- $_ := required "configServer.tokens.existingSecret is required when configServer.enabled (every pool needs a token)" $c.tokens.existingSecret -}}
{{- if and (not $c.tls.existingSecret) (not $c.insecureHTTP) -}}
{{- fail "configServer.tls.existingSecret is required when configServer.enabled (or configServer.insecureHTTP=true to serve tokens and credentials in the clear)" -}}
{{- end -}}
{{- if and $c.agent.credentials.files (not $c.agent.credentials.existingSecret) -}}
{{- fail "configServer.agent.credentials.existingSecret is required when configServer.agent.credentials.files is set" -}}
{{- end -}}
{{- if eq (int $c.port) (int .Values.hub.port) -}}
{{- fail "configServer.port must differ from hub.port: the config server has its own listener" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "stoker.configServer.args" -}}
{{- $c := .Values.configServer -}}
{{- if $c.enabled -}}
{{- include "stoker.configServer.check" . -}}
- --config-listen=:{{ $c.port }}
- --config-token-dir=/etc/stoker/config-tokens
{{- if $c.tls.existingSecret }}
- --config-tls-cert=/etc/stoker/config-tls/tls.crt
- --config-tls-key=/etc/stoker/config-tls/tls.key
{{- end }}
{{- if $c.insecureHTTP }}
- --config-insecure-http
{{- end }}
{{- with $c.agent.repo }}
- --config-agent-repo={{ . }}
{{- end }}
{{- with $c.agent.statusRepo }}
- --config-agent-status-repo={{ . }}
{{- end }}
{{- with $c.agent.reportsRepo }}
- --config-agent-reports-repo={{ . }}
{{- end }}
{{- with $c.agent.gitUsername }}
- --config-agent-git-username={{ . }}
{{- end }}
{{- if $c.agent.credentials.existingSecret }}
{{- range $flag, $key := $c.agent.credentials.files }}
- --config-agent-credential={{ $flag }}=/etc/stoker/config-agent-git/{{ $key }}
{{- end }}
{{- end }}
{{- if .Values.signing.hubPublicKeys }}
- --config-agent-trust-hub-key=/etc/stoker/hub-public-keys/hub.pub
{{- end }}
{{- with $c.agent.binary }}
- --config-agent-binary={{ . }}
{{- end }}
{{- range $c.agent.extraArgs }}
- --config-agent-arg={{ . }}
{{- end }}
{{- end -}}
{{- end -}}

{{- define "stoker.configServer.port" -}}
{{- if .Values.configServer.enabled -}}
- name: config
  containerPort: {{ .Values.configServer.port }}
  protocol: TCP
{{- end -}}
{{- end -}}

{{- define "stoker.configServer.volumeMounts" -}}
{{- $c := .Values.configServer -}}
{{- if $c.enabled -}}
- name: config-tokens
  mountPath: /etc/stoker/config-tokens
  readOnly: true
{{- if $c.tls.existingSecret }}
- name: config-tls
  mountPath: /etc/stoker/config-tls
  readOnly: true
{{- end }}
{{- if $c.agent.credentials.existingSecret }}
- name: config-agent-git
  mountPath: /etc/stoker/config-agent-git
  readOnly: true
{{- end }}
{{- end -}}
{{- end -}}

{{- define "stoker.configServer.volumes" -}}
{{- $c := .Values.configServer -}}
{{- if $c.enabled -}}
- name: config-tokens
  secret:
    secretName: {{ $c.tokens.existingSecret }}
    defaultMode: 0400
{{- if $c.tls.existingSecret }}
- name: config-tls
  secret:
    secretName: {{ $c.tls.existingSecret }}
    defaultMode: 0400
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
{{- end }}
{{- if $c.agent.credentials.existingSecret }}
- name: config-agent-git
  secret:
    secretName: {{ $c.agent.credentials.existingSecret }}
    defaultMode: 0400
{{- end }}
{{- end -}}
{{- end -}}
