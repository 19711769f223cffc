{{/* The release's base name: <release>-marketplace, or the release name if it says marketplace. */}}
{{- define "marketplace.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "marketplace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "marketplace.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "marketplace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: marketplace
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" . "component" "operator"). */}}
{{- define "marketplace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "marketplace.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of one component's objects. */}}
{{- define "marketplace.componentLabels" -}}
{{ include "marketplace.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Names derived from the release: one place, so flags, RBAC names and objects agree. */}}
{{- define "marketplace.operator.name" -}}{{ include "marketplace.fullname" . }}-operator{{- end -}}
{{- define "marketplace.api.name" -}}{{ include "marketplace.fullname" . }}-api{{- end -}}
{{- define "marketplace.webhook.service" -}}{{ include "marketplace.fullname" . }}-operator-webhook{{- end -}}
{{- define "marketplace.webhook.config" -}}{{ include "marketplace.fullname" . }}-operator{{- end -}}
{{- define "marketplace.webhook.managedSecret" -}}{{ include "marketplace.fullname" . }}-operator-webhook-cert{{- end -}}
{{- define "marketplace.webhook.certManagerSecret" -}}{{ include "marketplace.fullname" . }}-operator-webhook-tls{{- end -}}
{{- define "marketplace.lease" -}}{{ include "marketplace.fullname" . }}-operator{{- end -}}

{{- define "marketplace.operator.serviceAccount" -}}
{{- default (include "marketplace.operator.name" .) .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- define "marketplace.api.serviceAccount" -}}
{{- default (include "marketplace.api.name" .) .Values.api.serviceAccount.name -}}
{{- end -}}

{{/* Whether the admission webhook uses cert-manager. */}}
{{- define "marketplace.webhook.certManager" -}}
{{- if and .Values.admissionWebhook.enabled (eq .Values.admissionWebhook.certificate.source "certManager") -}}true{{- end -}}
{{- end -}}

{{- define "marketplace.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* A soft anti-affinity that spreads a component's replicas over nodes, unless set. */}}
{{- define "marketplace.affinity" -}}
{{- if .affinity -}}
{{ toYaml .affinity }}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "marketplace.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 12 }}
{{- end -}}
{{- end -}}

{{/* The pod-level scheduling fields shared by both Deployments: (dict "ctx" . "c" .Values.x "component" "x"). */}}
{{- define "marketplace.scheduling" -}}
affinity:
  {{- include "marketplace.affinity" (dict "affinity" .c.affinity "ctx" .ctx "component" .component) | nindent 2 }}
{{- with .c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* The shared usage store (values: usageStore), as the API and the operator both get it. */}}
{{- define "marketplace.usageStore.check" -}}
{{- if and (eq .Values.usageStore.type "postgres") (not .Values.usageStore.postgres.urlSecret.name) -}}
{{- fail "usageStore.type postgres needs usageStore.postgres.urlSecret.name: a Secret holding the postgres:// URL" -}}
{{- end -}}
{{- end -}}
{{- define "marketplace.usageStore.env" -}}
{{- if eq .Values.usageStore.type "postgres" }}
# The URL carries a password: from the Secret, never in the arguments.
- name: MARKETPLACE_USAGE_STORE
  valueFrom:
    secretKeyRef:
      name: {{ .Values.usageStore.postgres.urlSecret.name }}
      key: {{ .Values.usageStore.postgres.urlSecret.key }}
{{- end }}
{{- end -}}
{{- define "marketplace.usageStore.volumeMounts" -}}
{{- if and (eq .Values.usageStore.type "postgres") .Values.usageStore.postgres.caConfigMap }}
- name: postgres-ca
  mountPath: /etc/marketplace/postgres-ca
  readOnly: true
{{- end }}
{{- end -}}
{{- define "marketplace.usageStore.volumes" -}}
{{- if and (eq .Values.usageStore.type "postgres") .Values.usageStore.postgres.caConfigMap }}
- name: postgres-ca
  configMap:
    name: {{ .Values.usageStore.postgres.caConfigMap }}
{{- end }}
{{- end -}}
