//! Period-end reporting, decided: which closed periods of a metered subscription are due to be
//! billed, and what a period's usage becomes on the bill. Pure (time is an argument); the
//! reporter (`controllers/usage_report.rs`) gathers and acts.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use super::period::UsagePeriod;
use super::price::{Charge, charges, format_micros};
use crate::api::metered::MeteredPrice;

/// How far back unreported periods are still reported (a store restored from an old backup, or
/// an operator down for weeks, must not bill a year at once by surprise).
pub const LOOKBACK_PERIODS: usize = 3;

/// The closed periods of a subscription that exists since `started` which are due at `now`:
/// ended at least `settle` ago (late events have arrived), overlapping the subscription's life,
/// at most [`LOOKBACK_PERIODS`] back, and not in `reported`. Oldest first.
pub fn due_periods(
    started: Timestamp,
    reported: &BTreeSet<UsagePeriod>,
    now: Timestamp,
    settle: SignedDuration,
) -> Vec<UsagePeriod> {
    let mut due = Vec::new();
    let mut period = UsagePeriod::containing(now).previous();
    for _ in 0..LOOKBACK_PERIODS {
        if period.end() <= started {
            break;
        }
        let settled = now
            .checked_sub(settle)
            .is_ok_and(|settled| period.end() <= settled);
        if settled && !reported.contains(&period) {
            due.push(period);
        }
        period = period.previous();
    }
    due.reverse();
    due
}

/// The oldest period still reported at `now` ([`LOOKBACK_PERIODS`] before the current one).
pub fn oldest_reportable(now: Timestamp) -> UsagePeriod {
    let mut period = UsagePeriod::containing(now);
    for _ in 0..LOOKBACK_PERIODS {
        period = period.previous();
    }
    period
}

/// The HubSpot key of a subscription's period: `<uid>/<period>`.
pub fn period_key(subscription_uid: &str, period: UsagePeriod) -> String {
    format!("{subscription_uid}/{period}")
}

/// A period's usage as one bill line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodBill {
    /// Units past the included quantity, rounded up.
    pub billable_units: i64,
    /// What they cost, in millionths of the currency unit.
    pub amount_micros: i64,
    /// The line's quantity and unit price: the units at their price when one price applies (or
    /// the tiers average to an exact price), else one unit at the whole amount.
    pub quantity: i64,
    pub unit_price: String,
    /// How the amount is made, e.g. `1000 × 0.05 + 200 × 0.03` (tiers) or `200 × 0.01`.
    pub breakdown: String,
}

impl PeriodBill {
    pub fn amount(&self) -> String {
        format_micros(self.amount_micros)
    }
}

/// The bill of `quantity` used in a period under `price`; `None` when nothing is billable.
pub fn period_bill(price: &MeteredPrice, quantity: f64) -> Option<PeriodBill> {
    let lines = charges(price, quantity);
    let billable_units: i64 = lines.iter().map(|c| c.units).sum();
    if billable_units == 0 {
        return None;
    }
    let amount_micros: i64 = lines.iter().map(Charge::amount_micros).sum();
    let breakdown = lines
        .iter()
        .map(|c| format!("{} × {}", c.units, c.unit_price()))
        .collect::<Vec<_>>()
        .join(" + ");
    let (quantity, unit_price) = if amount_micros % billable_units == 0 {
        (
            billable_units,
            format_micros(amount_micros / billable_units),
        )
    } else {
        (1, format_micros(amount_micros))
    };
    Some(PeriodBill {
        billable_units,
        amount_micros,
        quantity,
        unit_price,
        breakdown,
    })
}

/// A period's bill as its line item shows it once prepaid credits paid `credited_micros` of
/// it: HubSpot's `discount` is off each unit, so the credit stays a per-unit discount when it
/// divides evenly, else the line becomes one unit at the whole amount with the whole credit
/// off it. Either way the line's net is exactly the amount less the credit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BilledLine {
    pub quantity: i64,
    pub unit_price: String,
    /// Off each unit; `None` without credits.
    pub discount: Option<String>,
}

pub fn billed_line(bill: &PeriodBill, credited_micros: i64) -> BilledLine {
    let credited = credited_micros.clamp(0, bill.amount_micros);
    if credited == 0 {
        return BilledLine {
            quantity: bill.quantity,
            unit_price: bill.unit_price.clone(),
            discount: None,
        };
    }
    if bill.quantity > 0 && credited % bill.quantity == 0 {
        return BilledLine {
            quantity: bill.quantity,
            unit_price: bill.unit_price.clone(),
            discount: Some(format_micros(credited / bill.quantity)),
        };
    }
    BilledLine {
        quantity: 1,
        unit_price: bill.amount(),
        discount: Some(format_micros(credited)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::price::tests::price;
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn periods(list: &[UsagePeriod]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    const HOUR: SignedDuration = SignedDuration::from_hours(1);

    #[test]
    fn a_period_is_due_once_it_has_closed_and_settled() {
        let started = at("2026-10-20T00:00:00Z");
        let none = BTreeSet::new();
        // November closed at midnight; with an hour to settle it is due from 01:00.
        assert_eq!(
            periods(&due_periods(
                started,
                &none,
                at("2026-12-01T00:30:00Z"),
                HOUR
            )),
            ["2026-10"]
        );
        assert_eq!(
            periods(&due_periods(
                started,
                &none,
                at("2026-12-01T01:00:00Z"),
                HOUR
            )),
            ["2026-10", "2026-11"]
        );
        let reported: BTreeSet<_> = [UsagePeriod::containing(at("2026-10-31T00:00:00Z"))].into();
        assert_eq!(
            periods(&due_periods(
                started,
                &reported,
                at("2026-12-02T00:00:00Z"),
                HOUR
            )),
            ["2026-11"]
        );
    }

    #[test]
    fn only_periods_of_the_subscriptions_life_within_the_lookback_are_due() {
        let none = BTreeSet::new();
        // Bought on December 3rd: nothing closed since.
        let bought = at("2026-12-03T10:00:00Z");
        assert!(due_periods(bought, &none, at("2026-12-20T00:00:00Z"), HOUR).is_empty());
        assert_eq!(
            periods(&due_periods(
                bought,
                &none,
                at("2027-01-01T02:00:00Z"),
                HOUR
            )),
            ["2026-12"]
        );
        // Bought years ago, the operator down since: only the last three months.
        let old = at("2020-01-01T00:00:00Z");
        assert_eq!(
            periods(&due_periods(old, &none, at("2027-01-05T00:00:00Z"), HOUR)),
            ["2026-10", "2026-11", "2026-12"]
        );
        // A period that started before the subscription counts (it was in service during it);
        // one that ended before it does not.
        let midnight = at("2026-12-01T00:00:00Z");
        assert_eq!(
            periods(&due_periods(
                midnight,
                &none,
                at("2027-01-05T00:00:00Z"),
                HOUR
            )),
            ["2026-12"]
        );
    }

    #[test]
    fn a_bill_is_units_at_their_price_or_one_line_at_the_amount() {
        let flat = price(json!({"unitPrice": "0.10", "includedQuantity": 3}));
        assert_eq!(period_bill(&flat, 3.0), None);
        let bill = period_bill(&flat, 7.0).unwrap();
        assert_eq!(
            (
                bill.quantity,
                bill.unit_price.as_str(),
                bill.amount().as_str()
            ),
            (4, "0.1", "0.4")
        );
        assert_eq!(bill.breakdown, "4 × 0.1");
        let tiers = price(json!({"tiers": [
            {"upTo": 10, "unitPrice": "0.05"}, {"unitPrice": "0.03"}]}));
        let bill = period_bill(&tiers, 13.0).unwrap();
        assert_eq!(bill.billable_units, 13);
        assert_eq!(bill.amount(), "0.59");
        // 0.59 / 13 is no exact price: one line at the amount.
        assert_eq!((bill.quantity, bill.unit_price.as_str()), (1, "0.59"));
        assert_eq!(bill.breakdown, "10 × 0.05 + 3 × 0.03");
        // 10 × 0.05 + 10 × 0.03 = 0.8 = 20 × 0.04.
        let even = period_bill(&tiers, 20.0).unwrap();
        assert_eq!((even.quantity, even.unit_price.as_str()), (20, "0.04"));
    }

    #[test]
    fn credits_show_as_a_discount_that_leaves_exactly_the_remainder() {
        let flat = price(json!({"unitPrice": "0.10", "includedQuantity": 3}));
        // 4 units at 0.1 = 0.4.
        let bill = period_bill(&flat, 7.0).unwrap();
        let line = |q: i64, p: &str, d: Option<&str>| BilledLine {
            quantity: q,
            unit_price: p.into(),
            discount: d.map(Into::into),
        };
        assert_eq!(billed_line(&bill, 0), line(4, "0.1", None));
        // 0.2 of credit is 0.05 off each of the 4 units.
        assert_eq!(billed_line(&bill, 200_000), line(4, "0.1", Some("0.05")));
        // 0.25 does not divide by 4 units of a millionth: one unit at 0.4, 0.25 off.
        assert_eq!(
            billed_line(&bill, 250_001),
            line(1, "0.4", Some("0.250001"))
        );
        // More credit than the bill: all of it, net zero.
        assert_eq!(billed_line(&bill, 9_000_000), line(4, "0.1", Some("0.1")));
    }
}
