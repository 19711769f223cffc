//! The credit ledger's records and the decisions made over them: what each grant has left,
//! a tenant's balance, and which grants pay for a period's usage. Pure (time is an argument);
//! the stores keep the records, the period-end reporter acts on the split.
//!
//! Credits are money in one currency (ISO 4217, like plan prices), in millionths: a grant pays
//! only for usage priced in its currency. Nothing is ever changed in place: a balance is what
//! the grants, less their deductions, add up to.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

/// Credits granted to a tenant: by a superadmin, or by an automatic top-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditGrant {
    pub tenant: String,
    /// Unique per tenant: the request's Idempotency-Key, or the top-up's key.
    pub id: String,
    pub currency: String,
    pub amount_micros: i64,
    pub granted_at: Timestamp,
    /// From this instant on, what is left of the grant is never used.
    pub expires_at: Timestamp,
    /// Who granted it (the caller's user name, or the top-up controller).
    pub granted_by: String,
    pub reason: String,
}

/// Part of a period's usage paid from one grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditDeduction {
    pub tenant: String,
    /// The usage paid for: `<subscription uid>/<period>`, as the usage line item's key.
    pub usage_key: String,
    pub grant_id: String,
    pub amount_micros: i64,
    pub at: Timestamp,
}

/// What credits paid of one period's usage bill, decided once (with its deductions): a retry,
/// a restart or a grant made later finds it and bills the same remainder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settlement {
    pub tenant: String,
    pub usage_key: String,
    pub currency: String,
    /// The usage bill before credits.
    pub usage_micros: i64,
    /// What credits paid of it (the sum of its deductions).
    pub credited_micros: i64,
    pub at: Timestamp,
}

impl Settlement {
    /// What is left to bill.
    pub fn remainder_micros(&self) -> i64 {
        (self.usage_micros - self.credited_micros).max(0)
    }
}

/// A tenant's ledger: every grant and every deduction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantLedger {
    pub grants: Vec<CreditGrant>,
    pub deductions: Vec<CreditDeduction>,
}

/// What a grant has left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantBalance {
    pub id: String,
    pub currency: String,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
    pub amount_micros: i64,
    pub remaining_micros: i64,
}

impl GrantBalance {
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }
}

/// What each grant of `ledger` has left (expired or not), oldest grant first.
pub fn grant_balances(ledger: &TenantLedger) -> Vec<GrantBalance> {
    let mut out: Vec<GrantBalance> = ledger
        .grants
        .iter()
        .map(|g| {
            let used: i64 = ledger
                .deductions
                .iter()
                .filter(|d| d.grant_id == g.id)
                .map(|d| d.amount_micros)
                .sum();
            GrantBalance {
                id: g.id.clone(),
                currency: g.currency.clone(),
                granted_at: g.granted_at,
                expires_at: g.expires_at,
                amount_micros: g.amount_micros,
                remaining_micros: (g.amount_micros - used).max(0),
            }
        })
        .collect();
    out.sort_by(|a, b| (a.granted_at, &a.id).cmp(&(b.granted_at, &b.id)));
    out
}

/// The credits usable at `now` in `currency`.
pub fn available(balances: &[GrantBalance], currency: &str, now: Timestamp) -> i64 {
    balances
        .iter()
        .filter(|b| b.currency == currency && !b.expired(now))
        .map(|b| b.remaining_micros)
        .sum()
}

/// The currencies `balances` are in, each once, sorted.
pub fn currencies(balances: &[GrantBalance]) -> Vec<String> {
    let mut out: Vec<String> = balances.iter().map(|b| b.currency.clone()).collect();
    out.sort();
    out.dedup();
    out
}

/// Which grants pay for `usage_micros` of usage priced in `currency` at `now`: the grants
/// that expire first pay first (ties: the older grant, then the id), expired grants and grants
/// in other currencies never; at most the usage, at most what each grant has left. Returns
/// (grant id, amount) in the order paid.
pub fn split(
    balances: &[GrantBalance],
    currency: &str,
    usage_micros: i64,
    now: Timestamp,
) -> Vec<(String, i64)> {
    let mut usable: Vec<&GrantBalance> = balances
        .iter()
        .filter(|b| b.currency == currency && !b.expired(now) && b.remaining_micros > 0)
        .collect();
    usable.sort_by(|a, b| {
        (a.expires_at, a.granted_at, &a.id).cmp(&(b.expires_at, b.granted_at, &b.id))
    });
    let mut owed = usage_micros.max(0);
    let mut out = Vec::new();
    for grant in usable {
        if owed == 0 {
            break;
        }
        let paid = grant.remaining_micros.min(owed);
        owed -= paid;
        out.push((grant.id.clone(), paid));
    }
    out
}

/// The settlement of `usage_micros` for `usage_key`, with its deductions, as [`split`] decides.
pub fn settle(
    ledger: &TenantLedger,
    tenant: &str,
    usage_key: &str,
    currency: &str,
    usage_micros: i64,
    now: Timestamp,
) -> (Settlement, Vec<CreditDeduction>) {
    let paid = split(&grant_balances(ledger), currency, usage_micros, now);
    let deductions: Vec<CreditDeduction> = paid
        .into_iter()
        .map(|(grant_id, amount_micros)| CreditDeduction {
            tenant: tenant.to_string(),
            usage_key: usage_key.to_string(),
            grant_id,
            amount_micros,
            at: now,
        })
        .collect();
    let settlement = Settlement {
        tenant: tenant.to_string(),
        usage_key: usage_key.to_string(),
        currency: currency.to_string(),
        usage_micros,
        credited_micros: deductions.iter().map(|d| d.amount_micros).sum(),
        at: now,
    };
    (settlement, deductions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn grant(id: &str, currency: &str, micros: i64, granted: &str, expires: &str) -> CreditGrant {
        CreditGrant {
            tenant: "acme".into(),
            id: id.into(),
            currency: currency.into(),
            amount_micros: micros,
            granted_at: at(granted),
            expires_at: at(expires),
            granted_by: "admin".into(),
            reason: String::new(),
        }
    }

    fn used(grant_id: &str, micros: i64) -> CreditDeduction {
        CreditDeduction {
            tenant: "acme".into(),
            usage_key: format!("u/{grant_id}"),
            grant_id: grant_id.into(),
            amount_micros: micros,
            at: at("2026-11-01T00:00:00Z"),
        }
    }

    fn ledger() -> TenantLedger {
        TenantLedger {
            grants: vec![
                grant(
                    "late",
                    "USD",
                    5_000_000,
                    "2026-10-01T00:00:00Z",
                    "2027-06-01T00:00:00Z",
                ),
                grant(
                    "soon",
                    "USD",
                    2_000_000,
                    "2026-10-05T00:00:00Z",
                    "2027-01-01T00:00:00Z",
                ),
                grant(
                    "gone",
                    "USD",
                    9_000_000,
                    "2026-09-01T00:00:00Z",
                    "2026-11-30T00:00:00Z",
                ),
                grant(
                    "euro",
                    "EUR",
                    9_000_000,
                    "2026-09-01T00:00:00Z",
                    "2027-06-01T00:00:00Z",
                ),
            ],
            deductions: vec![used("soon", 500_000)],
        }
    }

    const DEC: &str = "2026-12-01T01:00:00Z";

    #[test]
    fn the_grant_expiring_first_pays_first_and_expired_grants_never() {
        let balances = grant_balances(&ledger());
        assert_eq!(available(&balances, "USD", at(DEC)), 6_500_000);
        assert_eq!(
            available(&balances, "USD", at("2026-11-29T00:00:00Z")),
            15_500_000
        );
        // 1.5 left on "soon", then "late"; "gone" expired, "euro" is another currency.
        assert_eq!(
            split(&balances, "USD", 3_000_000, at(DEC)),
            [
                ("soon".to_string(), 1_500_000),
                ("late".to_string(), 1_500_000)
            ]
        );
        assert_eq!(
            split(&balances, "USD", 100, at(DEC)),
            [("soon".to_string(), 100)]
        );
        // More usage than credits: every usable credit, the rest is billed.
        let all = split(&balances, "USD", 50_000_000, at(DEC));
        assert_eq!(all.iter().map(|(_, m)| m).sum::<i64>(), 6_500_000);
        assert!(split(&balances, "GBP", 1_000_000, at(DEC)).is_empty());
        assert!(split(&balances, "USD", 0, at(DEC)).is_empty());
    }

    #[test]
    fn a_settlement_records_what_credits_paid_and_the_remainder() {
        let (settlement, deductions) =
            settle(&ledger(), "acme", "u/2026-11", "USD", 8_000_000, at(DEC));
        assert_eq!(settlement.credited_micros, 6_500_000);
        assert_eq!(settlement.remainder_micros(), 1_500_000);
        assert_eq!(deductions.len(), 2);
        assert!(deductions.iter().all(|d| d.usage_key == "u/2026-11"));
        // Spent: nothing more is usable.
        let mut after = ledger();
        after.deductions.extend(deductions);
        let balances = grant_balances(&after);
        assert_eq!(available(&balances, "USD", at(DEC)), 0);
        assert_eq!(
            balances
                .iter()
                .find(|b| b.id == "gone")
                .unwrap()
                .remaining_micros,
            9_000_000,
            "an expired grant keeps what it had left; it is only never used"
        );
        let (none, nothing) = settle(&after, "acme", "u/2026-12", "USD", 1_000_000, at(DEC));
        assert_eq!(
            (none.credited_micros, none.remainder_micros()),
            (0, 1_000_000)
        );
        assert!(nothing.is_empty());
        assert_eq!(currencies(&balances), ["EUR", "USD"]);
    }
}
