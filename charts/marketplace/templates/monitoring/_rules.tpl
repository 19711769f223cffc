{{/*
The operator's alerts, as a Prometheus rule file's `groups` (the PrometheusRule's spec, and
deploy/prometheus-rules.yaml, which the suite keeps equal to the default rendering). Every
alert names its runbook: a section of the chart's README (README.md's "Runbooks"), or of
metrics.prometheusRule.runbookBaseUrl where one is set. Series are picked by
metrics.prometheusRule.selector, by default the job and namespace the ServiceMonitor scrapes.
Gauges computed from the caches are the same on every replica, hence max(); counters are per
replica, hence sum().
*/}}
{{- define "marketplace.alertRules" -}}
{{- $r := .Values.metrics.prometheusRule -}}
{{- $sel := $r.selector | default (printf "job=%q,namespace=%q" (include "marketplace.operator.name" .) .Release.Namespace) -}}
{{- $for := $r.for -}}
groups:
  - name: marketplace-operator
    rules:
      - alert: MarketplaceOperatorDown
        expr: absent(up{ {{- $sel -}} } == 1)
        for: {{ $for.operatorDown }}
        labels:
          severity: critical
        annotations:
          summary: No marketplace operator replica is being scraped.
          description: >-
            Subscriptions, tenants and the catalog are not reconciled and the admission
            webhook is not served while no replica runs.
          {{- include "marketplace.runbookAnnotation" (dict "ctx" $ "anchor" "marketplaceoperatordown") | nindent 10 }}
      - alert: MarketplaceNoLeader
        expr: sum(marketplace_leader{ {{- $sel -}} }) < 1
        for: {{ $for.noLeader }}
        labels:
          severity: critical
        annotations:
          summary: No operator replica holds the leader Lease.
          description: >-
            Replicas run and serve, but none runs the controllers: nothing is provisioned,
            healed or cancelled until one leads.
          {{- include "marketplace.runbookAnnotation" (dict "ctx" $ "anchor" "marketplacenoleader") | nindent 10 }}
      - alert: MarketplaceProvisioningFailing
        expr: max by (listing) (marketplace_subscriptions_provisioning_failed{ {{- $sel -}} }) > 0
        for: {{ $for.provisioningFailing }}
        labels:
          severity: warning
        annotations:
          summary: 'Subscriptions to {{ "{{" }} $labels.listing {{ "}}" }} fail to provision.'
          description: >-
            {{ "{{" }} $value {{ "}}" }} subscription(s) of listing {{ "{{" }} $labels.listing {{ "}}" }}
            are not in service and their billing or entitlements keep failing.
          {{- include "marketplace.runbookAnnotation" (dict "ctx" $ "anchor" "marketplaceprovisioningfailing") | nindent 10 }}
      - alert: MarketplaceDriftNotHealed
        expr: max by (listing) (marketplace_subscriptions_drift_unhealed{ {{- $sel -}} }) > 0
        for: {{ $for.driftNotHealed }}
        labels:
          severity: warning
        annotations:
          summary: 'Billing drift of {{ "{{" }} $labels.listing {{ "}}" }} subscriptions is not healed.'
          description: >-
            {{ "{{" }} $value {{ "}}" }} subscription(s) disagree with HubSpot and healing them
            failed (Synced=False, reason DriftFound).
          {{- include "marketplace.runbookAnnotation" (dict "ctx" $ "anchor" "marketplacedriftnothealed") | nindent 10 }}
      - alert: MarketplaceHubSpotRateLimited
        expr: sum(rate(marketplace_hubspot_calls_total{ {{- $sel -}} ,outcome="rate_limited"}[5m])) > 0
        for: {{ $for.hubspotRateLimited }}
        labels:
          severity: warning
        annotations:
          summary: HubSpot keeps answering 429.
          description: >-
            The shared rate budget is smaller than the operator's limiter assumes (another
            app uses the same portal, or hubspot.tier is wrong); billing calls are delayed.
          {{- include "marketplace.runbookAnnotation" (dict "ctx" $ "anchor" "marketplacehubspotratelimited") | nindent 10 }}
      - alert: MarketplaceHubSpotDailyLimit
        expr: sum(increase(marketplace_hubspot_calls_total{ {{- $sel -}} ,outcome=~"daily_limited|refused_daily"}[5m])) > 0
        for: {{ $for.hubspotDailyLimit }}
        labels:
          severity: critical
        annotations:
          summary: The HubSpot daily API limit is exhausted.
          description: >-
            No billing call is made until the portal's daily limit resets (midnight in the
            portal's time zone): new subscriptions wait in Provisioning.
          {{- include "marketplace.runbookAnnotation" (dict "ctx" $ "anchor" "marketplacehubspotdailylimit") | nindent 10 }}
      - alert: MarketplaceForgedWebhooks
        expr: sum(increase(marketplace_webhooks_total{ {{- $sel -}} ,outcome="forged"}[10m])) > 0
        for: {{ $for.forgedWebhooks }}
        labels:
          severity: warning
        annotations:
          summary: HubSpot webhooks with bad signatures are arriving.
          description: >-
            {{ "{{" }} $value {{ "}}" }} webhook request(s) in 10 minutes failed signature
            verification: someone forges them, or the app's client secret changed.
          {{- include "marketplace.runbookAnnotation" (dict "ctx" $ "anchor" "marketplaceforgedwebhooks") | nindent 10 }}
      - alert: MarketplaceAuditNotRunning
        expr: >-
          max(marketplace_billing_audit_interval_seconds{ {{- $sel -}} }) > 0
          and
          (time() - max(marketplace_billing_audit_last_success_timestamp_seconds{ {{- $sel -}} }))
          > 3 * max(marketplace_billing_audit_interval_seconds{ {{- $sel -}} })
        for: {{ $for.auditNotRunning }}
        labels:
          severity: warning
        annotations:
          summary: The HubSpot drift audit has not finished for 3 intervals.
          description: >-
            Drift that webhooks missed is not found or healed while the audit does not run
            to the end.
          {{- include "marketplace.runbookAnnotation" (dict "ctx" $ "anchor" "marketplaceauditnotrunning") | nindent 10 }}
      - alert: MarketplaceNotificationsUndelivered
        expr: >-
          max(marketplace_notification_outbox{ {{- $sel -}} ,phase="DeadLetter"}) > 0
          or
          max(marketplace_notification_oldest_pending_seconds{ {{- $sel -}} }) > 1800
        for: {{ $for.notificationsUndelivered }}
        labels:
          severity: warning
        annotations:
          summary: Notifications are not being delivered.
          description: >-
            Notifications were dead-lettered after every attempt failed, or one has waited
            more than 30 minutes: a channel is down or refuses them, and nobody hears of
            what happens until it is fixed and the records are retried.
          {{- include "marketplace.runbookAnnotation" (dict "ctx" $ "anchor" "marketplacenotificationsundelivered") | nindent 10 }}
{{- end -}}

{{/*
Where an alert's runbook is: runbook_url under metrics.prometheusRule.runbookBaseUrl when one is
set (a served copy of the README); else the section of this chart's own README (helm show
readme), which every copy of the chart carries, matching its version.
(dict "ctx" $ "anchor" "<alert name in lower case>")
*/}}
{{- define "marketplace.runbookAnnotation" -}}
{{- with .ctx.Values.metrics.prometheusRule.runbookBaseUrl -}}
runbook_url: {{ . }}#{{ $.anchor }}
{{- else -}}
runbook: {{ printf "README.md#%s of chart %s-%s (helm show readme)" .anchor .ctx.Chart.Name .ctx.Chart.Version | quote }}
{{- end -}}
{{- end -}}
