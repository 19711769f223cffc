//! What `GET /v1/tenants/{t}/credits` shows a tenant, and superadmins (who also see who made
//! each grant): the balance per currency, every grant with what it has left and its expiry,
//! and every deduction. Pure.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use super::ledger::{TenantLedger, available, currencies, grant_balances};
use crate::metering::price::format_micros;

/// A tenant's credits.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreditsView {
    pub tenant: String,
    /// Usable now, per currency.
    pub balances: Vec<CreditBalance>,
    /// Oldest first.
    pub grants: Vec<GrantView>,
    /// What usage consumed, oldest first.
    pub deductions: Vec<DeductionView>,
}

/// Credits usable now in one currency.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreditBalance {
    pub currency: String,
    /// A decimal string.
    pub available: String,
}

/// One grant.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrantView {
    pub id: String,
    pub currency: String,
    /// Decimal strings: granted, and left (not usable once expired).
    pub amount: String,
    pub remaining: String,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
    pub expired: bool,
    pub reason: String,
    /// Who granted it (superadmins' view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted_by: Option<String>,
}

/// Part of a period's usage paid with credits.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeductionView {
    /// `<subscription uid>/<period>`: the usage paid for.
    pub usage_key: String,
    pub grant_id: String,
    /// A decimal string in the grant's currency.
    pub amount: String,
    pub at: Timestamp,
}

/// `tenant`'s credits at `now`; `internal` adds who granted what.
pub fn credits_view(
    tenant: &str,
    ledger: &TenantLedger,
    now: Timestamp,
    internal: bool,
) -> CreditsView {
    let balances = grant_balances(ledger);
    CreditsView {
        tenant: tenant.to_string(),
        balances: currencies(&balances)
            .into_iter()
            .map(|currency| CreditBalance {
                available: format_micros(available(&balances, &currency, now)),
                currency,
            })
            .collect(),
        grants: balances
            .iter()
            .map(|b| {
                let grant = ledger.grants.iter().find(|g| g.id == b.id);
                GrantView {
                    id: b.id.clone(),
                    currency: b.currency.clone(),
                    amount: format_micros(b.amount_micros),
                    remaining: format_micros(b.remaining_micros),
                    granted_at: b.granted_at,
                    expires_at: b.expires_at,
                    expired: b.expired(now),
                    reason: grant.map(|g| g.reason.clone()).unwrap_or_default(),
                    granted_by: grant.filter(|_| internal).map(|g| g.granted_by.clone()),
                }
            })
            .collect(),
        deductions: ledger
            .deductions
            .iter()
            .map(|d| DeductionView {
                usage_key: d.usage_key.clone(),
                grant_id: d.grant_id.clone(),
                amount: format_micros(d.amount_micros),
                at: d.at,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credits::ledger::{CreditDeduction, CreditGrant};

    #[test]
    fn the_view_shows_balances_grants_and_deductions() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let grant = |id: &str, expires: &str| CreditGrant {
            tenant: "acme".into(),
            id: id.into(),
            currency: "USD".into(),
            amount_micros: 10_000_000,
            granted_at: at("2026-10-01T00:00:00Z"),
            expires_at: at(expires),
            granted_by: "ana".into(),
            reason: "welcome".into(),
        };
        let ledger = TenantLedger {
            grants: vec![
                grant("a", "2027-01-01T00:00:00Z"),
                grant("b", "2026-11-01T00:00:00Z"),
            ],
            deductions: vec![CreditDeduction {
                tenant: "acme".into(),
                usage_key: "u/2026-10".into(),
                grant_id: "a".into(),
                amount_micros: 2_500_000,
                at: at("2026-11-01T01:00:00Z"),
            }],
        };
        let now = at("2026-11-15T00:00:00Z");
        let view = credits_view("acme", &ledger, now, false);
        assert_eq!(
            view.balances,
            [CreditBalance {
                currency: "USD".into(),
                available: "7.5".into()
            }]
        );
        assert_eq!(
            (view.grants[0].remaining.as_str(), view.grants[0].expired),
            ("7.5", false)
        );
        assert!(view.grants[1].expired);
        assert_eq!(view.grants[0].granted_by, None);
        assert_eq!(view.deductions[0].amount, "2.5");
        let internal = credits_view("acme", &ledger, now, true);
        assert_eq!(internal.grants[0].granted_by.as_deref(), Some("ana"));
    }
}
