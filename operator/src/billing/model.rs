//! Plain inputs and outputs of the billing client. The operator maps its CRDs to these; nothing
//! here knows about Kubernetes types.

use super::error::HubSpotError;
use super::status::StatusClass;
use jiff::civil::Date;

/// Marks the `hs_name` of every commerce subscription the operator creates, followed by the
/// subscription uid. Subscriptions cannot carry unique custom properties (contract §2.2), so the
/// orphan sweep recognises ours by this marker.
pub const NAME_MARKER: &str = "[mkt:";

/// What one tenant add-on subscription must be billed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingRequest {
    /// Unique per tenant: the company's `mkt_tenant_id` (contract §1.8).
    pub tenant_id: String,
    pub tenant_name: String,
    /// The TenantSubscription's `metadata.uid`: the deal's unique `mkt_subscription_uid`.
    pub subscription_uid: String,
    pub listing: String,
    pub plan: String,
    /// The product's `hs_sku` (contract §1.4: one product per listing plan).
    pub sku: String,
    pub quantity: u32,
    /// Decimal string, e.g. `"25.00"`; never negative (contract §1.3).
    pub unit_price: String,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// A `recurringbillingfrequency` option, e.g. `monthly` (contract §1.3; checked against the
    /// portal's options read at start-up).
    pub interval: String,
    /// Billing starts this many days after `start_date`.
    pub trial_days: u32,
    pub start_date: Date,
    /// A promotion's cut, shown on the line item next to the list `unit_price`.
    pub discount: Option<LineDiscount>,
}

/// A discount on a line item: HubSpot's `hs_discount_percentage` or `discount` (an amount off
/// each unit), with the unit price it leaves (for the deal amount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDiscount {
    pub percentage: Option<u32>,
    /// Decimal string, e.g. `"9.80"`.
    pub amount: Option<String>,
    /// Decimal string: the unit price after the discount.
    pub net_unit_price: String,
}

impl LineDiscount {
    /// The line item properties carrying it.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(percentage) = self.percentage {
            out.push(("hs_discount_percentage", percentage.to_string()));
        }
        if let Some(amount) = &self.amount {
            out.push(("discount", amount.clone()));
        }
        out
    }
}

impl BillingRequest {
    /// Checks what HubSpot would reject anyway, before spending calls on it.
    pub fn validate(&self) -> Result<(), HubSpotError> {
        let bad = |m: String| Err(HubSpotError::Invalid(m));
        for (name, value) in [
            ("tenant_id", &self.tenant_id),
            ("tenant_name", &self.tenant_name),
            ("subscription_uid", &self.subscription_uid),
            ("listing", &self.listing),
            ("plan", &self.plan),
            ("interval", &self.interval),
        ] {
            if value.trim().is_empty() {
                return bad(format!("{name} is empty"));
            }
        }
        if self.quantity == 0 {
            return bad("quantity must be at least 1".into());
        }
        if Decimal::parse(&self.unit_price).is_none() {
            return bad(format!(
                "unit_price {:?} is not a non-negative decimal",
                self.unit_price
            ));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return bad(format!(
                "currency {:?} is not an ISO 4217 code",
                self.currency
            ));
        }
        self.billing_start()?;
        Ok(())
    }

    /// `dealname` of the anchor deal.
    pub fn deal_name(&self) -> String {
        format!("{} · {}/{}", self.tenant_name, self.listing, self.plan)
    }

    /// `name` of the line item.
    pub fn line_item_name(&self) -> String {
        format!("{} {}", self.listing, self.plan)
    }

    /// `hs_name` of the commerce subscription; `generation` counts the subscriptions the deal
    /// has had (contract §1.8: a plan change is cancel + create under the same deal).
    pub fn subscription_name(&self, generation: usize) -> String {
        format!(
            "{}/{} for {} {NAME_MARKER}{}] #{generation}",
            self.listing, self.plan, self.tenant_name, self.subscription_uid
        )
    }

    /// The deal `amount`: unit price (after any discount) × quantity, exactly.
    pub fn amount(&self) -> Result<String, HubSpotError> {
        let unit = self
            .discount
            .as_ref()
            .map_or(&self.unit_price, |d| &d.net_unit_price);
        Decimal::parse(unit)
            .and_then(|d| d.times(self.quantity))
            .map(|d| d.to_string())
            .ok_or_else(|| HubSpotError::Invalid(format!("amount of {:?}", self.unit_price)))
    }

    /// First billing day: `start_date + trial_days`, as `YYYY-MM-DD` (contract §1.3: date
    /// properties take a date or midnight UTC; the civil date form cannot be off midnight).
    pub fn billing_start(&self) -> Result<String, HubSpotError> {
        self.start_date
            .checked_add(jiff::Span::new().days(i64::from(self.trial_days)))
            .map(|d| d.to_string())
            .map_err(|e| HubSpotError::Invalid(format!("billing start date: {e}")))
    }
}

/// A non-negative decimal kept as digits and a scale, so prices are never rounded by floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    units: u128,
    scale: u32,
}

impl Decimal {
    pub fn parse(s: &str) -> Option<Decimal> {
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int.is_empty() || frac.len() > 18 || s.ends_with('.') {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let units: u128 = format!("{int}{frac}").parse().ok()?;
        Some(Decimal {
            units,
            scale: u32::try_from(frac.len()).ok()?,
        })
    }

    pub fn times(self, n: u32) -> Option<Decimal> {
        Some(Decimal {
            units: self.units.checked_mul(u128::from(n))?,
            scale: self.scale,
        })
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = format!("{:0>width$}", self.units, width = self.scale as usize + 1);
        let (int, frac) = digits.split_at(digits.len() - self.scale as usize);
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            write!(f, "{int}")
        } else {
            write!(f, "{int}.{frac}")
        }
    }
}

/// Where the billing record stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingStatus {
    /// A commerce subscription bills the tenant.
    Subscription {
        /// The raw `hs_status`.
        value: String,
        class: StatusClass,
        /// `hs_invoice_creation = on`.
        invoicing: bool,
    },
    /// Explicit CRM-only mode: deal and line item are recorded, nothing is billed (contract §1.8).
    CrmOnly,
}

/// Something the ensure algorithm had to fix; the operator turns these into Events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// contract §2.6 step 3: more than one live subscription on the deal; this one was retired.
    RetiredDuplicate {
        subscription_id: String,
        deleted: bool,
    },
    /// The subscription existed but was not associated with the deal (create whose inline
    /// associations were lost); the associations were written again.
    Relinked { subscription_id: String },
    /// CRM-only mode: extra line items on the deal were deleted.
    RemovedDuplicateLineItem { line_item_id: String },
    /// CRM-only mode: a created line item was not associated with the deal; relinked.
    RelinkedLineItem { line_item_id: String },
}

/// The ids and state of one tenant subscription's billing record. Store them in the CR status as
/// an optimisation; correctness never depends on them (contract §2.6 step 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingRecord {
    pub company_id: String,
    pub deal_id: String,
    pub line_item_id: Option<String>,
    pub subscription_id: Option<String>,
    pub status: BillingStatus,
    pub repairs: Vec<Repair>,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn request() -> BillingRequest {
        BillingRequest {
            tenant_id: "acme".into(),
            tenant_name: "Acme".into(),
            subscription_uid: "uid-1".into(),
            listing: "postgres".into(),
            plan: "small".into(),
            sku: "postgres-small".into(),
            quantity: 3,
            unit_price: "19.90".into(),
            currency: "EUR".into(),
            interval: "monthly".into(),
            trial_days: 14,
            start_date: jiff::civil::date(2026, 12, 25),
            discount: None,
        }
    }

    #[test]
    fn a_discounted_request_bills_the_net_price_and_shows_the_cut() {
        let mut discounted = request();
        discounted.discount = Some(LineDiscount {
            percentage: Some(20),
            amount: None,
            net_unit_price: "15.92".into(),
        });
        assert_eq!(discounted.amount().unwrap(), "47.76");
        assert_eq!(
            discounted.discount.unwrap().properties(),
            vec![("hs_discount_percentage", "20".to_string())]
        );
    }

    #[test]
    fn decimal_math_is_exact() {
        let d = |s: &str| Decimal::parse(s).map(|d| d.to_string());
        assert_eq!(d("19.90"), Some("19.9".into()));
        assert_eq!(d("0"), Some("0".into()));
        assert_eq!(d("0.05"), Some("0.05".into()));
        assert_eq!(d("-1"), None);
        assert_eq!(d("1e3"), None);
        assert_eq!(d("1."), None);
        assert_eq!(d(".5"), None);
        assert_eq!(request().amount().unwrap(), "59.7");
        let x = Decimal::parse("0.10").unwrap().times(3).unwrap();
        assert_eq!(x.to_string(), "0.3");
    }

    #[test]
    fn derived_values() {
        let r = request();
        assert!(r.validate().is_ok());
        assert_eq!(r.billing_start().unwrap(), "2027-01-08");
        assert!(r.subscription_name(2).contains("[mkt:uid-1] #2"));
        let mut bad = r.clone();
        bad.currency = "eur".into();
        assert_eq!(bad.validate().unwrap_err().category(), "invalid");
        let mut bad = r.clone();
        bad.quantity = 0;
        assert!(bad.validate().is_err());
        let mut bad = r;
        bad.unit_price = "-3".into();
        assert!(bad.validate().is_err());
    }
}
