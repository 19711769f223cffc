use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::schedule::ScheduleFacts;
use super::*;
use crate::api::notification_channel::{EmailAddress, NotificationEventKind as K};
use crate::api::tenant::TenantNotifications;
use crate::api::tenant_subscription::TenantSubscriptionStatus;
use crate::lifecycle::fixtures::{tenant, ts};

fn t(from: Option<Phase>, to: Phase, at: &str, reason: &str) -> Transition {
    Transition {
        from,
        to,
        at: Time(ts(at)),
        actor: "operator".into(),
        reason: Some(reason.into()),
        action: None,
    }
}

fn kinds(events: &[SubscriptionEvent]) -> Vec<K> {
    events.iter().map(|e| e.kind).collect()
}

#[test]
fn transitions_become_events_with_stable_ids() {
    let history = vec![
        t(None, Phase::Requested, "2026-01-01T00:00:00Z", "received"),
        t(
            Some(Phase::Requested),
            Phase::Invoiced,
            "2026-01-01T01:00:00Z",
            "invoiced",
        ),
        t(
            Some(Phase::Invoiced),
            Phase::Paid,
            "2026-01-02T00:00:00Z",
            "paid",
        ),
        t(
            Some(Phase::Paid),
            Phase::Provisioning,
            "2026-01-02T01:00:00Z",
            "ok",
        ),
        t(
            Some(Phase::Provisioning),
            Phase::Active,
            "2026-01-02T01:00:00Z",
            "ok",
        ),
        t(
            Some(Phase::Active),
            Phase::Suspended,
            "2026-02-01T00:00:00Z",
            "past_due",
        ),
        t(
            Some(Phase::Suspended),
            Phase::Active,
            "2026-02-02T00:00:00Z",
            "paid",
        ),
        t(
            Some(Phase::Active),
            Phase::CancelRequested,
            "2026-03-01T00:00:00Z",
            "bye",
        ),
        t(
            Some(Phase::CancelRequested),
            Phase::Cancelled,
            "2026-03-31T00:00:00Z",
            "end",
        ),
    ];
    let all = events_of_history("uid-1", &history, true, ts("2025-01-01T00:00:00Z"));
    assert_eq!(
        kinds(&all),
        [
            K::NewRequest,
            K::InvoiceReady,
            K::Activated,
            K::PaymentFailed,
            K::CancellationRequested,
            K::CancellationConfirmed
        ]
    );
    let again = events_of_history("uid-1", &history, true, ts("2025-01-01T00:00:00Z"));
    assert_eq!(all, again, "the same history is the same events");
    // As written (nanoseconds) and as read back from the apiserver (seconds): the same ids.
    let mut precise = history.clone();
    precise[1].at = Time(ts("2026-01-01T01:00:00.123456789Z"));
    let read_back = events_of_history("uid-1", &precise, true, ts("2025-01-01T00:00:00Z"));
    assert_eq!(read_back[1].id, all[1].id);
    let other = events_of_history("uid-2", &history, true, ts("2025-01-01T00:00:00Z"));
    assert_ne!(all[0].id, other[0].id);
    let recent = events_of_history("uid-1", &history, true, ts("2026-03-01T00:00:00Z"));
    assert_eq!(
        kinds(&recent),
        [K::CancellationRequested, K::CancellationConfirmed]
    );
    // Instant listings: no review; a suspended tenant is not a failed payment.
    let instant = vec![
        t(None, Phase::Requested, "2026-01-01T00:00:00Z", "received"),
        t(
            Some(Phase::Requested),
            Phase::Trialing,
            "2026-01-01T00:00:00Z",
            "trial",
        ),
        t(
            Some(Phase::Trialing),
            Phase::Suspended,
            "2026-01-02T00:00:00Z",
            TENANT_SUSPENDED_MESSAGE,
        ),
        t(
            Some(Phase::Requested),
            Phase::Failed,
            "2026-01-03T00:00:00Z",
            "x",
        ),
    ];
    let events = events_of_history("u", &instant, false, ts("2025-01-01T00:00:00Z"));
    assert_eq!(kinds(&events), [K::Activated, K::ProvisioningFailed]);
}

fn channel(yaml: &str) -> NotificationChannelSpec {
    serde_saphyr::from_str(yaml).unwrap()
}

#[test]
fn routing_fans_out_per_recipient_and_respects_opt_out() {
    let mut acme = tenant("Professional");
    acme.notifications = Some(TenantNotifications {
        admin_emails: vec![
            EmailAddress("Ops@Acme.example".into()),
            EmailAddress("ann@example.com".into()),
        ],
        marketing_opt_out: true,
    });
    let mail = channel(
        "audience: Tenants\nsmtp: {host: localhost, port: 25, security: None, from: m@x.example}",
    );
    let alerts = channel(
        "audience: Superadmins\nevents: [PaymentFailed]\nto: [ops@saas.example]\nsmtp: {host: localhost, port: 25, from: m@x.example}",
    );
    let hook = channel(
        "audience: Tasks\nwebhook: {url: 'http://127.0.0.1:1/', signingSecretRef: {name: s}}",
    );
    let channels = [("mail", &mail), ("alerts", &alerts), ("hook", &hook)];
    let everything = |_: NotificationAudience, _: K| true;
    let paid = route("evt-1", K::PaymentFailed, channels, Some(&acme), everything);
    let to: Vec<_> = paid
        .iter()
        .map(|d| (d.channel.as_str(), d.recipient.as_deref()))
        .collect();
    assert_eq!(
        to,
        [
            ("mail", Some("ann@example.com")),
            ("mail", Some("ops@acme.example")),
            ("alerts", Some("ops@saas.example")),
            ("hook", None)
        ]
    );
    let names: std::collections::BTreeSet<_> = paid.iter().map(|d| &d.name).collect();
    assert_eq!(names.len(), 4, "one record name per recipient");
    assert_eq!(
        paid,
        route("evt-1", K::PaymentFailed, channels, Some(&acme), everything)
    );
    // Opted out of marketing: the idle nudge reaches no tenant; the alerts channel filters.
    let idle = route("evt-2", K::IdleAddOn, channels, Some(&acme), everything);
    assert_eq!(
        idle.iter().map(|d| d.channel.as_str()).collect::<Vec<_>>(),
        ["hook"]
    );
    // No message for an audience and kind: nothing routed there.
    let none = route("evt-3", K::Activated, channels, Some(&acme), |a, _| {
        a == NotificationAudience::Superadmins
    });
    assert!(none.is_empty(), "{none:?}");
}

#[test]
fn delivery_backs_off_then_dead_letters_and_restarts_on_request() {
    let policy = RetryPolicy {
        max_attempts: 3,
        first_delay: Duration::from_secs(10),
        max_delay: Duration::from_secs(15),
    };
    let now = ts("2026-01-01T00:00:00Z");
    let fresh = NotificationStatus::default();
    assert_eq!(next_step(&fresh, None, now), DeliveryStep::Send);
    let once = after_attempt(&fresh, Err("500".into()), &policy, now);
    assert_eq!(once.phase, Some(DeliveryPhase::Pending));
    assert_eq!(
        once.next_attempt_at.as_ref().unwrap().0,
        ts("2026-01-01T00:00:10Z")
    );
    assert_eq!(
        next_step(&once, None, now),
        DeliveryStep::WaitUntil(ts("2026-01-01T00:00:10Z"))
    );
    let twice = after_attempt(&once, Err("500".into()), &policy, now);
    assert_eq!(
        twice.next_attempt_at.as_ref().unwrap().0,
        ts("2026-01-01T00:00:15Z"),
        "capped"
    );
    let dead = after_attempt(&twice, Err("500".into()), &policy, now);
    assert_eq!(dead.phase, Some(DeliveryPhase::DeadLetter));
    assert_eq!(next_step(&dead, None, now), DeliveryStep::Done);
    let DeliveryStep::Restart(restarted) = next_step(&dead, Some("1"), now) else {
        panic!("a retry annotation restarts a dead letter");
    };
    assert_eq!(restarted.attempts, 0);
    assert_eq!(next_step(&restarted, Some("1"), now), DeliveryStep::Send);
    let sent = after_attempt(&restarted, Ok(()), &policy, now);
    assert_eq!(sent.phase, Some(DeliveryPhase::Sent));
    assert_eq!(next_step(&sent, Some("2"), now), DeliveryStep::Done);
    // The same annotation value does not restart twice.
    let dead_again = NotificationStatus {
        phase: Some(DeliveryPhase::DeadLetter),
        ..restarted
    };
    assert_eq!(next_step(&dead_again, Some("1"), now), DeliveryStep::Done);
}

fn status(
    phase: Phase,
    history: Vec<Transition>,
    trial_ends: Option<&str>,
) -> TenantSubscriptionStatus {
    TenantSubscriptionStatus {
        phase: Some(phase),
        history,
        trial_ends_at: trial_ends.map(|t| Time(ts(t))),
        ..TenantSubscriptionStatus::default()
    }
}

fn due(f: ScheduleFacts<'_>) -> Vec<SubscriptionEvent> {
    scheduled_events(&f, &ScheduleConfig::default())
}

#[test]
fn overdue_invoices_are_reminded_once_a_day() {
    let invoiced = status(
        Phase::Invoiced,
        vec![t(None, Phase::Invoiced, "2026-01-01T00:00:00Z", "x")],
        None,
    );
    let at = |now: &str| ScheduleFacts {
        uid: "u",
        status: &invoiced,
        last_checked: None,
        last_idle_nudge: None,
        now: ts(now),
    };
    assert!(due(at("2026-01-07T23:59:59Z")).is_empty());
    let day0 = due(at("2026-01-08T00:00:00Z"));
    assert_eq!(kinds(&day0), [K::InvoiceOverdue]);
    assert_eq!(
        day0[0].id,
        due(at("2026-01-08T23:00:00Z"))[0].id,
        "same day"
    );
    assert_ne!(
        day0[0].id,
        due(at("2026-01-09T00:00:00Z"))[0].id,
        "next day"
    );
}

#[test]
fn trials_get_one_notice_three_days_before_the_end() {
    let trialing = status(Phase::Trialing, vec![], Some("2026-01-15T00:00:00Z"));
    let at = |now: &str| ScheduleFacts {
        uid: "u",
        status: &trialing,
        last_checked: None,
        last_idle_nudge: None,
        now: ts(now),
    };
    assert!(due(at("2026-01-11T23:59:59Z")).is_empty());
    let notice = due(at("2026-01-12T00:00:00Z"));
    assert_eq!(kinds(&notice), [K::TrialEnding]);
    assert_eq!(notice[0].id, due(at("2026-01-14T00:00:00Z"))[0].id);
    assert!(due(at("2026-01-15T00:00:00Z")).is_empty());
}

#[test]
fn idle_add_ons_are_nudged_at_most_every_sixty_days_and_only_if_checked_through_the_api() {
    let active = status(Phase::Active, vec![], None);
    let at = |now: &str, checked: Option<&str>, nudged: Option<&str>| ScheduleFacts {
        uid: "u",
        status: &active,
        last_checked: checked.map(ts),
        last_idle_nudge: nudged.map(ts),
        now: ts(now),
    };
    let checked = Some("2026-01-01T00:00:00Z");
    assert!(
        due(at("2026-06-01T00:00:00Z", None, None)).is_empty(),
        "never checked"
    );
    assert!(
        due(at("2026-01-30T00:00:00Z", checked, None)).is_empty(),
        "in use"
    );
    let first = due(at("2026-01-31T00:00:00Z", checked, None));
    assert_eq!(kinds(&first), [K::IdleAddOn]);
    let nudged = Some("2026-01-31T00:00:00Z");
    assert!(due(at("2026-03-31T00:00:00Z", checked, nudged)).is_empty());
    let later = due(at("2026-04-01T00:00:00Z", checked, nudged));
    assert_eq!(kinds(&later), [K::IdleAddOn]);
    assert_ne!(first[0].id, later[0].id);
}

#[test]
fn sent_records_expire_after_the_retention_and_dead_letters_stay() {
    let day = Duration::from_secs(24 * 3600);
    let sent = NotificationStatus {
        phase: Some(DeliveryPhase::Sent),
        sent_at: Some(Time(ts("2026-01-01T00:00:00Z"))),
        ..NotificationStatus::default()
    };
    assert!(!expired(Some(&sent), ts("2026-01-30T23:59:59Z"), 30 * day));
    assert!(expired(Some(&sent), ts("2026-01-31T00:00:00Z"), 30 * day));
    let dead = NotificationStatus {
        phase: Some(DeliveryPhase::DeadLetter),
        ..sent.clone()
    };
    assert!(!expired(Some(&dead), ts("2027-01-01T00:00:00Z"), 30 * day));
    assert!(!expired(None, ts("2027-01-01T00:00:00Z"), 30 * day));
}

#[test]
fn drift_not_healed_for_half_an_hour_is_alerted_once_per_episode() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    let synced = |status: &str, reason: &str, since: &str| {
        let mut s = status_of(Phase::Active);
        s.conditions = vec![Condition {
            type_: "Synced".into(),
            status: status.into(),
            reason: reason.into(),
            message: "the HubSpot subscription was cancelled; healing failed: 503".into(),
            last_transition_time: Time(ts(since)),
            observed_generation: None,
        }];
        s
    };
    let at = |status: &TenantSubscriptionStatus, now: &str| {
        due(ScheduleFacts {
            uid: "u",
            status,
            last_checked: None,
            last_idle_nudge: None,
            now: ts(now),
        })
    };
    let failing = synced("False", "DriftFound", "2026-01-01T00:00:00Z");
    assert!(at(&failing, "2026-01-01T00:29:59Z").is_empty());
    let alert = at(&failing, "2026-01-01T00:30:00Z");
    assert_eq!(kinds(&alert), [K::DriftUnhealed]);
    assert!(
        alert[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("503"))
    );
    assert_eq!(alert[0].date, ts("2026-01-01T00:00:00Z"));
    assert_eq!(
        alert[0].id,
        at(&failing, "2026-01-03T00:00:00Z")[0].id,
        "one alert per episode"
    );
    let again = synced("False", "DriftFound", "2026-01-05T00:00:00Z");
    assert_ne!(alert[0].id, at(&again, "2026-01-06T00:00:00Z")[0].id);
    for (status, reason) in [("True", "Healed"), ("True", "InSync")] {
        let fine = synced(status, reason, "2026-01-01T00:00:00Z");
        assert!(at(&fine, "2026-01-06T00:00:00Z").is_empty());
    }
}

fn status_of(phase: Phase) -> TenantSubscriptionStatus {
    status(phase, vec![], None)
}
