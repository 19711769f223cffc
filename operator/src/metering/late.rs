//! Usage that arrives for a month already billed. A month's line item is final once the
//! reporter has written it (`controllers/usage_report.rs`), so an event of that month could
//! only be stored and never billed. Such events are refused at `POST /v1/usage` instead, each
//! named with the month and when it was reported, and nothing of the request is stored: what is
//! accepted is always billed, and the sender knows at once about what is not (as Stripe's
//! meter events refuse timestamps too far in the past). Pure: the events, the reports and the
//! time in; the refusal out.

use std::collections::BTreeMap;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use super::event::{EventProblem, UsageEvent};
use super::period::UsagePeriod;
use super::store::PeriodReport;

/// An event of a month already reported to billing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LateEvent {
    /// The event's index in the batch (0 for a single event).
    pub index: usize,
    pub id: String,
    /// The month its `time` falls in, e.g. `2026-11`.
    pub period: String,
    /// When that month's usage of the event's meter was reported to billing.
    pub reported_at: Timestamp,
}

/// The tenants whose reports must be read to judge `events` at `now`, each with the oldest
/// month to read from. Only months before the current one can have been reported (a month is
/// billed after it ends), so a request of this month's events reads nothing.
pub fn months_to_check(events: &[UsageEvent], now: Timestamp) -> BTreeMap<&str, UsagePeriod> {
    let current = UsagePeriod::containing(now);
    let mut oldest: BTreeMap<&str, UsagePeriod> = BTreeMap::new();
    for event in events {
        let period = UsagePeriod::containing(event.time);
        if period < current {
            oldest
                .entry(event.tenant.as_str())
                .and_modify(|p| *p = (*p).min(period))
                .or_insert(period);
        }
    }
    oldest
}

/// The events of `events` whose tenant's meter has its month among `reported`.
pub fn late_events(events: &[UsageEvent], reported: &[PeriodReport]) -> Vec<LateEvent> {
    events
        .iter()
        .enumerate()
        .filter_map(|(index, event)| {
            let period = UsagePeriod::containing(event.time);
            let report = reported.iter().find(|r| {
                r.key.tenant == event.tenant && r.key.meter == event.meter && r.key.period == period
            })?;
            Some(LateEvent {
                index,
                id: event.id.clone(),
                period: period.to_string(),
                reported_at: report.reported_at,
            })
        })
        .collect()
}

/// The refusal of a request with `late` events (`None` without any): 422 naming the first one
/// and listing them all, so the sender can drop them and send the rest again.
pub fn refuse_late(late: Vec<LateEvent>) -> Option<EventProblem> {
    let first = late.first()?;
    let (events, are, them) = if late.len() == 1 {
        ("event", "is", "it")
    } else {
        ("events", "are", "them")
    };
    let message = format!(
        "event {} (id {:?}): time: {} was reported to billing at {}; usage of a reported month \
         cannot be billed, so {} {events} of this request {are} refused and nothing was stored \
         (send the others again without {them})",
        first.index,
        first.id,
        first.period,
        first.reported_at,
        late.len(),
    );
    Some(EventProblem {
        status: 422,
        code: "PeriodReported",
        index: Some(first.index),
        field: "time".into(),
        message,
        late,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::metering::store::ReportKey;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn event(tenant: &str, meter: &str, id: &str, time: &str) -> UsageEvent {
        UsageEvent {
            tenant: tenant.into(),
            source: "/pages".into(),
            id: id.into(),
            meter: meter.into(),
            time: at(time),
            data: Value::Null,
        }
    }

    fn report(tenant: &str, meter: &str, month: &str, reported_at: &str) -> PeriodReport {
        PeriodReport {
            key: ReportKey {
                tenant: tenant.into(),
                meter: meter.into(),
                period: UsagePeriod::containing(at(&format!("{month}-15T00:00:00Z"))),
                subscription: "uid-1".into(),
            },
            quantity: 7.0,
            billable_units: 4,
            amount: "0.4".into(),
            reference: "123".into(),
            reported_at: at(reported_at),
        }
    }

    #[test]
    fn only_tenants_with_events_of_earlier_months_are_looked_up() {
        let now = at("2026-12-01T02:00:00Z");
        let events = [
            event("acme", "pages", "a", "2026-12-01T01:00:00Z"),
            event("acme", "pages", "b", "2026-11-30T23:00:00Z"),
            event("acme", "pages", "c", "2026-10-03T00:00:00Z"),
            event("globex", "pages", "d", "2026-12-01T00:00:00Z"),
        ];
        let months = months_to_check(&events, now);
        assert_eq!(
            months.into_iter().collect::<Vec<_>>(),
            [("acme", UsagePeriod::containing(at("2026-10-03T00:00:00Z")))]
        );
        assert!(months_to_check(&events[..1], now).is_empty());
    }

    #[test]
    fn events_of_a_reported_month_of_their_meter_are_late() {
        let events = [
            event("acme", "pages", "a", "2026-12-01T01:00:00Z"),
            event("acme", "pages", "b", "2026-11-30T23:00:00Z"),
            event("acme", "tokens", "c", "2026-11-30T23:00:00Z"),
            event("globex", "pages", "d", "2026-11-02T00:00:00Z"),
            event("acme", "pages", "e", "2026-10-31T23:59:59Z"),
        ];
        let reported = [
            report("acme", "pages", "2026-11", "2026-12-01T01:05:00Z"),
            report("acme", "pages", "2026-10", "2026-11-01T01:05:00Z"),
        ];
        // Another month, meter or tenant is not late.
        assert_eq!(
            late_events(&events, &reported),
            [
                LateEvent {
                    index: 1,
                    id: "b".into(),
                    period: "2026-11".into(),
                    reported_at: at("2026-12-01T01:05:00Z"),
                },
                LateEvent {
                    index: 4,
                    id: "e".into(),
                    period: "2026-10".into(),
                    reported_at: at("2026-11-01T01:05:00Z"),
                },
            ]
        );
        assert!(late_events(&events, &[]).is_empty());
    }

    #[test]
    fn late_events_refuse_the_request_naming_each() {
        assert_eq!(refuse_late(Vec::new()), None);
        let one = LateEvent {
            index: 2,
            id: "e7".into(),
            period: "2026-11".into(),
            reported_at: at("2026-12-01T01:05:00Z"),
        };
        let problem = refuse_late(vec![one.clone()]).unwrap();
        assert_eq!(
            (
                problem.status,
                problem.code,
                problem.index,
                problem.field.as_str()
            ),
            (422, "PeriodReported", Some(2), "time")
        );
        assert_eq!(
            problem.message,
            "event 2 (id \"e7\"): time: 2026-11 was reported to billing at \
             2026-12-01T01:05:00Z; usage of a reported month cannot be billed, so 1 event of \
             this request is refused and nothing was stored (send the others again without it)"
        );
        let two = refuse_late(vec![one.clone(), LateEvent { index: 5, ..one }]).unwrap();
        assert_eq!(two.late.len(), 2);
        assert!(two.message.contains("2 events of this request are refused"));
    }
}
