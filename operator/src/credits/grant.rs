//! A superadmin's grant request, checked: a clear error names the field and the reason. Pure.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Deserialize;

use super::ledger::CreditGrant;

/// `POST /v1/admin/tenants/{t}/credits`.
#[derive(Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantRequest {
    /// A positive decimal with at most 6 decimals, e.g. `"50.00"`.
    pub amount: String,
    /// ISO 4217, e.g. `USD`: the credits pay only for usage priced in this currency.
    pub currency: String,
    /// From this instant on, what is left of the grant is not used (RFC 3339, in the future).
    pub expires_at: Timestamp,
    /// Why it was granted (shown to the tenant).
    #[serde(default)]
    pub reason: String,
}

/// A refused field and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantProblem {
    pub field: &'static str,
    pub reason: String,
}

/// Longest grant id (an Idempotency-Key) kept.
pub const MAX_GRANT_ID: usize = 200;

/// A money amount: up to 12 whole digits and 6 decimals, in millionths; `None` otherwise.
pub fn parse_amount(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 12
        || (whole.len() > 1 && whole.starts_with('0'))
        || fraction.len() > 6
        || (text.contains('.') && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<6}").parse().ok()?;
    whole.checked_mul(1_000_000)?.checked_add(fraction)
}

/// The grant `request` asks for, as `id`, by `granted_by`, at `now`.
pub fn grant_of(
    tenant: &str,
    id: &str,
    request: &GrantRequest,
    granted_by: &str,
    now: Timestamp,
) -> Result<CreditGrant, GrantProblem> {
    let problem = |field, reason: String| Err(GrantProblem { field, reason });
    let amount_micros = match parse_amount(&request.amount) {
        Some(micros) if micros > 0 => micros,
        Some(_) => return problem("amount", "must be more than 0".into()),
        None => {
            return problem(
                "amount",
                format!(
                    "{:?} is not a decimal like \"50.00\" (at most 6 decimals)",
                    request.amount
                ),
            );
        }
    };
    if request.currency.len() != 3 || !request.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return problem(
            "currency",
            format!(
                "{:?} is not an ISO 4217 code like \"USD\"",
                request.currency
            ),
        );
    }
    if request.expires_at <= now {
        return problem(
            "expiresAt",
            format!("{} is not in the future", request.expires_at),
        );
    }
    if id.is_empty() || id.len() > MAX_GRANT_ID {
        return problem(
            "Idempotency-Key",
            format!("must have 1 to {MAX_GRANT_ID} characters"),
        );
    }
    Ok(CreditGrant {
        tenant: tenant.to_string(),
        id: id.to_string(),
        currency: request.currency.clone(),
        amount_micros,
        granted_at: to_millisecond(now),
        expires_at: to_millisecond(request.expires_at),
        granted_by: granted_by.to_string(),
        reason: request.reason.clone(),
    })
}

/// `at` to the millisecond: what the stores keep of a time.
fn to_millisecond(at: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(at.as_millisecond()).unwrap_or(at)
}

/// Whether `existing` is what `request` asks for (a retried request replays it).
pub fn same_grant(existing: &CreditGrant, request: &GrantRequest) -> bool {
    parse_amount(&request.amount) == Some(existing.amount_micros)
        && existing.currency == request.currency
        && existing.expires_at == to_millisecond(request.expires_at)
        && existing.reason == request.reason
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(amount: &str, currency: &str, expires: &str) -> GrantRequest {
        GrantRequest {
            amount: amount.into(),
            currency: currency.into(),
            expires_at: expires.parse().unwrap(),
            reason: "welcome".into(),
        }
    }

    #[test]
    fn amounts_are_exact_decimals() {
        assert_eq!(parse_amount("50"), Some(50_000_000));
        assert_eq!(parse_amount("0.000001"), Some(1));
        assert_eq!(parse_amount("12.5"), Some(12_500_000));
        for bad in ["", "-1", "1.", ".5", "1.0000001", "01", "1e3", "abc"] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_bad_request_names_its_field() {
        let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let ok = request("50.00", "USD", "2027-12-01T00:00:00Z");
        let grant = grant_of("acme", "k1", &ok, "ana", now).unwrap();
        assert_eq!((grant.amount_micros, grant.granted_at), (50_000_000, now));
        assert!(same_grant(&grant, &ok));
        // Kept to the millisecond, as the stores keep it: a retry still matches.
        let precise = request("50.00", "USD", "2027-12-01T00:00:00.123456789Z");
        let kept = grant_of("acme", "k1", &precise, "ana", now).unwrap();
        assert_eq!(kept.expires_at, "2027-12-01T00:00:00.123Z".parse().unwrap());
        assert!(same_grant(&kept, &precise));
        assert!(!same_grant(
            &grant,
            &request("60", "USD", "2027-12-01T00:00:00Z")
        ));
        let field =
            |r: &GrantRequest, id: &str| grant_of("acme", id, r, "ana", now).unwrap_err().field;
        assert_eq!(
            field(&request("0", "USD", "2027-01-01T00:00:00Z"), "k"),
            "amount"
        );
        assert_eq!(
            field(&request("1,5", "USD", "2027-01-01T00:00:00Z"), "k"),
            "amount"
        );
        assert_eq!(
            field(&request("1", "usd", "2027-01-01T00:00:00Z"), "k"),
            "currency"
        );
        assert_eq!(
            field(&request("1", "USD", "2026-11-01T00:00:00Z"), "k"),
            "expiresAt"
        );
        assert_eq!(field(&ok, ""), "Idempotency-Key");
    }
}
