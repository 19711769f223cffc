//! Commerce-subscription rules and the billing clock (contract §1.2, §9 "Commerce subscription
//! state machine", "Billing clock and events").

use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::model::{CrmObject, ObjectType};
use crate::state::SimState;
use crate::webhooks::ChangeSource;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// contract §1.2: once billable, only these properties may be updated.
pub const BILLABLE_UPDATABLE: &[&str] = &[
    "hs_name",
    "hs_owner",
    "hs_automatically_email_invoices",
    "hs_allowed_payment_methods",
    "hs_collect_address_types",
    "hs_invoice_comments",
    "hs_language",
    "hs_locale",
    "hs_net_payment_terms",
    "hs_payment_enabled",
    "hs_tax_ids",
    "hubspot_owner_id",
];

const TERMINAL: &[&str] = &["canceled", "expired"];
const DAY_MS: i64 = 86_400_000;
/// Failed payments are retried this long after the failure (simulator choice; HubSpot's retry
/// schedule is not in the contract).
pub const RETRY_AFTER_FAILURE_MS: i64 = 3 * DAY_MS;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingState {
    pub payments_enabled: bool,
    /// Companies (tenants) whose payments fail.
    pub failing_companies: BTreeSet<u64>,
    /// Subscriptions whose payments fail regardless of company.
    pub failing_subscriptions: BTreeSet<u64>,
    /// Consecutive failures per subscription.
    pub failures: BTreeMap<u64, u32>,
    /// Next retry of a failed payment.
    pub retry_at: BTreeMap<u64, i64>,
}

fn is_billable(obj: &CrmObject) -> bool {
    obj.properties
        .get("hs_invoice_creation")
        .map(String::as_str)
        == Some("on")
}

fn status(obj: &CrmObject) -> &str {
    obj.properties
        .get("hs_status")
        .map(String::as_str)
        .unwrap_or("")
}

fn date_ms(obj: &CrmObject, prop: &str) -> Option<i64> {
    obj.properties.get(prop).and_then(|v| clock::parse_ymd(v))
}

/// contract §1.2 prerequisite and defaults: a new subscription is non-billable.
pub fn prepare_create(st: &SimState, props: &mut BTreeMap<String, String>) -> ApiResult<()> {
    if !st.billing.payments_enabled {
        // The wording is a simulator choice; the contract only says the API refuses.
        return Err(ApiError::validation(
            "Subscriptions can't be created because this account has not set up HubSpot payments or Stripe payment processing.",
        )
        .sub_category("PAYMENTS_NOT_SET_UP"));
    }
    props
        .entry("hs_invoice_creation".into())
        .or_insert_with(|| "off".into());
    if !props.contains_key("hs_status") {
        let today = clock::midnight_utc(st.now());
        let start = props
            .get("hs_recurring_billing_start_date")
            .and_then(|v| clock::parse_ymd(v));
        let s = if start.is_some_and(|s| s > today) {
            "scheduled"
        } else {
            "active"
        };
        props.insert("hs_status".into(), s.into());
    }
    Ok(())
}

/// contract §1.2: once billable, PATCH is restricted to the allowed list. A value equal to the
/// current one is not a change (so repeating `hs_invoice_creation=on` is harmless, §2.6 step 5).
pub fn check_update(
    st: &SimState,
    obj: &CrmObject,
    changes: &BTreeMap<String, String>,
) -> ApiResult<()> {
    let real: Vec<&String> = changes
        .iter()
        .filter(|(k, v)| obj.properties.get(*k).map(String::as_str).unwrap_or("") != v.as_str())
        .map(|(k, _)| k)
        .collect();
    if real.is_empty() {
        return Ok(());
    }
    if is_billable(obj) {
        let blocked: Vec<&String> = real
            .iter()
            .copied()
            .filter(|k| {
                !BILLABLE_UPDATABLE.contains(&k.as_str()) && !k.starts_with("hs_recipient_billing_")
            })
            .collect();
        if !blocked.is_empty() {
            let mut err = ApiError::validation(format!(
                "Subscriptions that create invoices can only update these properties: {}. Not updatable: {}",
                BILLABLE_UPDATABLE.join(", "),
                blocked.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .sub_category("SUBSCRIPTION_PROPERTY_NOT_UPDATABLE");
            for b in blocked {
                err = err.error_detail(json!({
                    "message": format!("Property \"{b}\" can't be updated on a billable subscription"),
                    "code": "READ_ONLY_VALUE",
                    "context": {"propertyName": [b]},
                }));
            }
            return Err(err);
        }
        if st.config.enforce_ui_edit_constraints {
            // contract §1.2 UI-side constraints, as API rejections (shape unverified).
            if !matches!(status(obj), "active" | "scheduled") {
                return Err(ApiError::validation(format!(
                    "Only active or scheduled subscriptions can be edited (status {}).",
                    status(obj)
                ))
                .sub_category("SUBSCRIPTION_NOT_EDITABLE"));
            }
            if let Some(due) = date_ms(obj, "hs_next_payment_due_date")
                && due - st.now() < 2 * DAY_MS
            {
                return Err(ApiError::validation(
                    "Subscriptions can't be edited within two days of the next payment due date.",
                )
                .sub_category("SUBSCRIPTION_NOT_EDITABLE"));
            }
        }
    } else if TERMINAL.contains(&status(obj)) && st.config.enforce_ui_edit_constraints {
        return Err(
            ApiError::validation("Canceled or expired subscriptions can't be edited.")
                .sub_category("SUBSCRIPTION_NOT_EDITABLE"),
        );
    }
    Ok(())
}

/// Turning invoice creation on schedules the first payment.
pub fn after_update(st: &mut SimState, before: &CrmObject, after: &CrmObject) {
    if is_billable(before) || !is_billable(after) {
        return;
    }
    let today = clock::midnight_utc(st.now());
    let start = date_ms(after, "hs_recurring_billing_start_date").unwrap_or(today);
    let due = start.max(today);
    let amount = amount_of(st, after.id);
    let mut changes = BTreeMap::new();
    changes.insert("hs_next_payment_due_date".to_string(), clock::ymd(due));
    changes.insert("hs_next_payment_amount".to_string(), fmt_amount(amount));
    if start > today {
        changes.insert("hs_status".to_string(), "scheduled".to_string());
    }
    st.apply_changes(
        ObjectType::Subscriptions,
        after.id,
        changes,
        ChangeSource::Billing,
    );
}

/// contract §1.2: a billable subscription can be deleted only once canceled or expired.
pub fn check_delete(obj: &CrmObject) -> ApiResult<()> {
    if is_billable(obj) && !TERMINAL.contains(&status(obj)) {
        return Err(ApiError::validation(format!(
            "Subscription {} creates invoices and is {}; only canceled or expired subscriptions can be deleted.",
            obj.id,
            status(obj)
        ))
        .sub_category("SUBSCRIPTION_NOT_DELETABLE"));
    }
    Ok(())
}

fn fmt_amount(a: f64) -> String {
    if a.fract() == 0.0 {
        format!("{a:.0}")
    } else {
        format!("{a:.2}")
    }
}

/// Sum of the associated line items' amounts: quantity × unit price after the line item's
/// `discount` (an amount off each unit) or `hs_discount_percentage`.
fn amount_of(st: &SimState, sub_id: u64) -> f64 {
    st.assoc
        .list(ObjectType::Subscriptions, sub_id, ObjectType::LineItems)
        .into_iter()
        .filter_map(|(id, _)| st.get(ObjectType::LineItems, id))
        .map(|li| {
            let price = li
                .properties
                .get("price")
                .and_then(|p| p.parse::<f64>().ok())
                .unwrap_or(0.0);
            let qty = li
                .properties
                .get("quantity")
                .and_then(|p| p.parse::<f64>().ok())
                .unwrap_or(1.0);
            let number = |name: &str| {
                li.properties
                    .get(name)
                    .and_then(|p| p.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            let net =
                (price - number("discount")) * (1.0 - number("hs_discount_percentage") / 100.0);
            net.max(0.0) * qty
        })
        .sum()
}

fn frequency(st: &SimState, sub: &CrmObject) -> String {
    if let Some(f) = sub.properties.get("hs_recurring_billing_frequency") {
        return f.clone();
    }
    st.assoc
        .list(ObjectType::Subscriptions, sub.id, ObjectType::LineItems)
        .into_iter()
        .filter_map(|(id, _)| st.get(ObjectType::LineItems, id))
        .find_map(|li| li.properties.get("recurringbillingfrequency").cloned())
        .unwrap_or_else(|| "monthly".into())
}

fn next_due(due: i64, freq: &str) -> i64 {
    match freq {
        "weekly" => due + 7 * DAY_MS,
        "biweekly" => due + 14 * DAY_MS,
        "quarterly" => clock::add_months(due, 3),
        "per_six_months" => clock::add_months(due, 6),
        "annually" => clock::add_months(due, 12),
        "per_two_years" => clock::add_months(due, 24),
        "per_three_years" => clock::add_months(due, 36),
        "per_four_years" => clock::add_months(due, 48),
        "per_five_years" => clock::add_months(due, 60),
        _ => clock::add_months(due, 1),
    }
}

fn payment_fails(st: &SimState, sub_id: u64) -> bool {
    st.billing.failing_subscriptions.contains(&sub_id)
        || st
            .assoc
            .list(ObjectType::Subscriptions, sub_id, ObjectType::Companies)
            .iter()
            .any(|(c, _)| st.billing.failing_companies.contains(c))
}

fn props(pairs: &[(&str, String)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
        .collect()
}

/// One charge attempt for the payment due at `due`: issues an invoice and a payment and moves
/// `hs_status` (contract §9 "Billing clock and events").
fn charge(st: &mut SimState, sub_id: u64, due: i64) -> bool {
    let Some(sub) = st.get(ObjectType::Subscriptions, sub_id).cloned() else {
        return false;
    };
    let amount = amount_of(st, sub_id);
    let currency = sub
        .properties
        .get("hs_currency_code")
        .cloned()
        .unwrap_or_else(|| "USD".into());
    let fails = payment_fails(st, sub_id);
    let now = st.now();
    let invoice = props(&[
        ("hs_currency", currency.clone()),
        (
            "hs_invoice_status",
            if fails { "open" } else { "paid" }.into(),
        ),
        ("hs_amount_billed", fmt_amount(amount)),
        ("hs_due_date", clock::ymd(due)),
        ("hs_invoice_date", now.to_string()),
    ]);
    if let Ok(inv_id) = st.create(ObjectType::Invoices, &invoice, &[], ChangeSource::Billing) {
        st.assoc.add(
            ObjectType::Subscriptions,
            sub_id,
            ObjectType::Invoices,
            inv_id,
            623,
        );
    }
    let payment = props(&[
        (
            "hs_latest_status",
            if fails { "failed" } else { "succeeded" }.into(),
        ),
        ("hs_initial_amount", fmt_amount(amount)),
        ("hs_initiated_date", now.to_string()),
        ("hs_currency_code", currency),
    ]);
    if let Ok(pay_id) = st.create(
        ObjectType::CommercePayments,
        &payment,
        &[],
        ChangeSource::Billing,
    ) {
        st.assoc.add(
            ObjectType::CommercePayments,
            pay_id,
            ObjectType::Subscriptions,
            sub_id,
            393,
        );
    }
    let mut changes = BTreeMap::new();
    if fails {
        let n = {
            let e = st.billing.failures.entry(sub_id).or_insert(0);
            *e += 1;
            *e
        };
        // contract §1.2: past_due on the first failure, unpaid once it keeps failing.
        let new_status = if n == 1 { "past_due" } else { "unpaid" };
        changes.insert("hs_status".to_string(), new_status.to_string());
        st.billing
            .retry_at
            .insert(sub_id, now.max(due) + RETRY_AFTER_FAILURE_MS);
    } else {
        st.billing.failures.remove(&sub_id);
        st.billing.retry_at.remove(&sub_id);
        let freq = frequency(st, &sub);
        changes.insert("hs_status".to_string(), "active".to_string());
        changes.insert("hs_last_payment_amount".to_string(), fmt_amount(amount));
        changes.insert(
            "hs_last_payment_date".to_string(),
            clock::ymd(clock::midnight_utc(now)),
        );
        changes.insert(
            "hs_next_payment_due_date".to_string(),
            clock::ymd(next_due(due, &freq)),
        );
        changes.insert("hs_next_payment_amount".to_string(), fmt_amount(amount));
    }
    st.apply_changes(
        ObjectType::Subscriptions,
        sub_id,
        changes,
        ChangeSource::Billing,
    );
    !fails
}

/// Runs every billing event due at the current simulated time.
pub fn run_cycles(st: &mut SimState) {
    // Only subscriptions with something due are read, from the index of due times (reading
    // every subscription per request made each request cost O(subscriptions)).
    let now = st.now();
    if !st.cycle_index.is_built() {
        let entries: Vec<(u64, Option<i64>)> = st
            .live(ObjectType::Subscriptions)
            .map(|o| (o.id, next_cycle_at(&st.billing, o)))
            .collect();
        st.cycle_index.rebuild(entries);
    }
    let ids: Vec<u64> = st
        .cycle_index
        .due(now)
        .into_iter()
        .filter(|id| {
            st.get(ObjectType::Subscriptions, *id)
                .is_some_and(|o| is_billable(o) && cycle_step(&st.billing, o, now).is_some())
        })
        .collect();
    for id in ids {
        for _ in 0..500 {
            let now = st.now();
            let step = st
                .get(ObjectType::Subscriptions, id)
                .and_then(|sub| cycle_step(&st.billing, sub, now));
            let status = match step {
                None => break,
                Some(CycleStep::Charge { due }) => {
                    charge(st, id, due);
                    continue;
                }
                Some(CycleStep::Expire) => "expired",
                Some(CycleStep::Start) => "active",
            };
            let mut c = BTreeMap::new();
            c.insert("hs_status".to_string(), status.to_string());
            st.apply_changes(ObjectType::Subscriptions, id, c, ChangeSource::Billing);
            if status == "expired" {
                break;
            }
        }
    }
}

/// What the cycle walk does next to a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CycleStep {
    /// Its end date has passed: it expires (and nothing follows).
    Expire,
    /// A scheduled subscription's start date has come.
    Start,
    /// A payment is due (or its retry is): charged for the period from `due`.
    Charge { due: i64 },
}

/// The walk's next step for `sub` at `now`, if any; the walk repeats it until there is none.
fn cycle_step(billing: &BillingState, sub: &CrmObject, now: i64) -> Option<CycleStep> {
    let today = clock::midnight_utc(now);
    if date_ms(sub, "hs_recurring_billing_end_date").is_some_and(|end| end <= today)
        && !TERMINAL.contains(&status(sub))
    {
        return Some(CycleStep::Expire);
    }
    let due = date_ms(sub, "hs_next_payment_due_date")?;
    match status(sub) {
        "scheduled" if due <= now => Some(CycleStep::Start),
        "active" if due <= now => Some(CycleStep::Charge { due }),
        "past_due" | "unpaid" if billing.retry_at.get(&sub.id).copied().unwrap_or(due) <= now => {
            Some(CycleStep::Charge { due })
        }
        _ => None,
    }
}

/// The earliest time at which the walk has a step for `sub` as it stands ([`cycle_step`]) (none: never, until
/// it changes): its expiry (the first midnight on or after its end date), its start or charge,
/// or the retry of a failed payment.
pub fn next_cycle_at(billing: &BillingState, sub: &CrmObject) -> Option<i64> {
    if sub.archived || !is_billable(sub) {
        return None;
    }
    let expires = date_ms(sub, "hs_recurring_billing_end_date")
        .filter(|_| !TERMINAL.contains(&status(sub)))
        .map(|end| {
            let midnight = clock::midnight_utc(end);
            if midnight == end {
                end
            } else {
                midnight + DAY_MS
            }
        });
    let cycle = date_ms(sub, "hs_next_payment_due_date").and_then(|due| match status(sub) {
        "scheduled" | "active" => Some(due),
        "past_due" | "unpaid" => Some(billing.retry_at.get(&sub.id).copied().unwrap_or(due)),
        _ => None,
    });
    match (expires, cycle) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Admin: make a tenant's payments fail (`fail = true`) or recover. Recovery immediately
/// collects the outstanding payment of past_due/unpaid subscriptions (→ `active`).
pub fn set_company_failing(st: &mut SimState, company_id: u64, fail: bool) {
    if fail {
        st.billing.failing_companies.insert(company_id);
        return;
    }
    st.billing.failing_companies.remove(&company_id);
    let subs: Vec<u64> = st
        .assoc
        .list(ObjectType::Companies, company_id, ObjectType::Subscriptions)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    recover_subscriptions(st, &subs);
}

pub fn set_subscription_failing(st: &mut SimState, sub_id: u64, fail: bool) {
    if fail {
        st.billing.failing_subscriptions.insert(sub_id);
    } else {
        st.billing.failing_subscriptions.remove(&sub_id);
        recover_subscriptions(st, &[sub_id]);
    }
}

fn recover_subscriptions(st: &mut SimState, subs: &[u64]) {
    for id in subs {
        let Some(sub) = st.get(ObjectType::Subscriptions, *id).cloned() else {
            continue;
        };
        if matches!(status(&sub), "past_due" | "unpaid") && !payment_fails(st, *id) {
            let due = date_ms(&sub, "hs_next_payment_due_date").unwrap_or_else(|| st.now());
            charge(st, *id, due);
        }
    }
}

pub enum Lifecycle {
    Cancel,
    Pause(Option<String>),
    Unpause(Option<i64>),
}

/// contract §1.2 lifecycle endpoints. Success is 204 (the spec leaves it undocumented).
pub fn lifecycle(st: &mut SimState, id: u64, action: Lifecycle) -> ApiResult<()> {
    let Some(sub) = st.get(ObjectType::Subscriptions, id).cloned() else {
        return Err(ApiError::object_not_found(&id.to_string()));
    };
    let current = status(&sub).to_string();
    // contract §9: lifecycle calls on terminal subscriptions give a 400.
    if TERMINAL.contains(&current.as_str()) {
        return Err(ApiError::validation(format!(
            "Subscription {id} is {current} and can't be changed."
        ))
        .sub_category("INVALID_SUBSCRIPTION_STATE"));
    }
    let mut changes = BTreeMap::new();
    match action {
        Lifecycle::Cancel => {
            changes.insert("hs_status".to_string(), "canceled".to_string());
        }
        Lifecycle::Pause(reason) => {
            if !matches!(current.as_str(), "active" | "past_due" | "unpaid") {
                return Err(ApiError::validation(format!(
                    "Subscription {id} is {current}; only active subscriptions can be paused."
                ))
                .sub_category("INVALID_SUBSCRIPTION_STATE"));
            }
            changes.insert("hs_status".to_string(), "paused".to_string());
            changes.insert("hs_pause_reason".to_string(), reason.unwrap_or_default());
        }
        Lifecycle::Unpause(date) => {
            let Some(date) = date else {
                return Err(ApiError::validation("proposedNextBillingDate is required")
                    .error_detail(
                        json!({"message": "must not be null", "code": "REQUIRED_FIELD",
                                         "in": "proposedNextBillingDate"}),
                    ));
            };
            if current != "paused" {
                return Err(ApiError::validation(format!(
                    "Subscription {id} is {current}; only paused subscriptions can be unpaused."
                ))
                .sub_category("INVALID_SUBSCRIPTION_STATE"));
            }
            changes.insert("hs_status".to_string(), "active".to_string());
            changes.insert(
                "hs_next_payment_due_date".to_string(),
                clock::ymd(clock::midnight_utc(date)),
            );
        }
    }
    st.apply_changes(
        ObjectType::Subscriptions,
        id,
        changes,
        ChangeSource::Integration,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: u64, props: &[(&str, &str)]) -> CrmObject {
        CrmObject::test_record(id, ObjectType::Subscriptions, props)
    }

    /// The index's time is exact: due at `now` exactly when the walk's first step would act.
    #[test]
    fn next_cycle_at_is_when_the_walk_first_has_a_step() {
        let mut st = SimState::new(crate::config::SimConfig::default());
        st.billing
            .retry_at
            .insert(4, clock::parse_ymd("2026-03-20").unwrap() + 3_600_000);
        let on = ("hs_invoice_creation", "on");
        let due = ("hs_next_payment_due_date", "2026-03-10");
        let cases = [
            sub(1, &[on, due, ("hs_status", "scheduled")]),
            sub(
                2,
                &[
                    on,
                    due,
                    ("hs_status", "active"),
                    ("hs_recurring_billing_end_date", "2026-03-05"),
                ],
            ),
            sub(3, &[on, due, ("hs_status", "past_due")]),
            sub(4, &[on, due, ("hs_status", "unpaid")]),
            sub(
                5,
                &[
                    on,
                    due,
                    ("hs_status", "canceled"),
                    ("hs_recurring_billing_end_date", "2026-03-05"),
                ],
            ),
            sub(
                6,
                &[("hs_invoice_creation", "off"), due, ("hs_status", "active")],
            ),
            sub(
                7,
                &[
                    on,
                    ("hs_status", "active"),
                    ("hs_recurring_billing_end_date", "2026-03-15"),
                ],
            ),
        ];
        let start = clock::parse_ymd("2026-03-01").unwrap();
        for case in &cases {
            let next = next_cycle_at(&st.billing, case);
            // Every 6 hours over 30 days, and each side of the computed time.
            let mut moments: Vec<i64> = (0..120).map(|i| start + i * 6 * 3_600_000).collect();
            if let Some(at) = next {
                moments.extend([at - 1, at, at + 1]);
            }
            for now in moments {
                assert_eq!(
                    next.is_some_and(|at| at <= now),
                    is_billable(case) && cycle_step(&st.billing, case, now).is_some(),
                    "subscription {} at {now}",
                    case.id
                );
            }
        }
    }
}
