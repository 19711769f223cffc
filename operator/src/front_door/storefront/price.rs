//! Prices as a person reads them, and the sentence a buyer confirms. Amounts are exact decimal
//! strings in the catalog ("49.00"); arithmetic is in ten-thousandths (the schema allows four
//! decimals), never in floating point.

use serde::{Deserialize, Serialize};

use crate::api::listing::{BillingInterval, Plan, Pricing, PricingModel};
use crate::lifecycle::promotion::Offer;

/// An amount in ten-thousandths of the currency's unit.
pub type Minor = i128;
pub const SCALE: Minor = 10_000;

/// A catalog amount ("49.00") in ten-thousandths; `None` for anything the schema would refuse.
pub fn parse_amount(amount: &str) -> Option<Minor> {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    if whole.is_empty()
        || fraction.len() > 4
        || !(whole.chars().chain(fraction.chars())).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let whole: Minor = whole.parse().ok()?;
    let fraction: Minor = format!("{fraction:0<4}").parse().ok()?;
    Some(whole * SCALE + fraction)
}

/// `49.00`, `0.50`, `12.125`: at least two decimals, more only when the catalog has them.
fn format_amount(minor: Minor) -> String {
    let whole = minor / SCALE;
    let mut fraction = format!("{:04}", minor % SCALE);
    while fraction.len() > 2 && fraction.ends_with('0') {
        fraction.pop();
    }
    let whole = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}.{fraction}")
}

/// An amount as the catalog and HubSpot write it: `39.2` → `"39.20"`, no grouping.
pub fn plain_amount(minor: Minor) -> String {
    format_amount(minor).replace(',', "")
}

fn money(minor: Minor, currency: &str) -> String {
    let amount = format_amount(minor);
    match currency {
        "USD" => format!("${amount}"),
        "EUR" => format!("€{amount}"),
        "GBP" => format!("£{amount}"),
        other => format!("{amount} {other}"),
    }
}

fn per(interval: BillingInterval) -> &'static str {
    match interval {
        BillingInterval::Month => "/mo",
        BillingInterval::Year => "/yr",
    }
}

/// A flat amount per interval as a tenant reads it (`"47.20"` → `$47.20/mo`), for bundle
/// prices, which are totals rather than a plan's pricing.
pub fn per_interval(amount: &str, currency: &str, interval: BillingInterval) -> String {
    match parse_amount(amount) {
        Some(minor) => format!("{}{}", money(minor, currency), per(interval)),
        None => format!("{amount} {currency}"),
    }
}

/// A plan's price as a tenant reads it: `$49.00/mo`, `$12.00 per vehicle/mo`, `Free`.
pub fn describe(pricing: &Pricing) -> String {
    let Some(amount) = parse_amount(&pricing.amount) else {
        return format!("{} {}", pricing.amount, pricing.currency);
    };
    if amount == 0 {
        return "Free".to_string();
    }
    let unit = match (pricing.model, pricing.unit.as_deref()) {
        (PricingModel::PerUnit, Some(unit)) => format!(" per {unit}"),
        (PricingModel::PerUnit, None) => " per unit".to_string(),
        (PricingModel::Flat, _) => String::new(),
    };
    format!(
        "{}{unit}{}",
        money(amount, &pricing.currency),
        per(pricing.interval)
    )
}

/// What `quantity` of a plan adds to the bill, e.g. `$60.00/mo (5 vehicles × $12.00)`.
pub fn total(pricing: &Pricing, quantity: i32) -> String {
    let Some(amount) = parse_amount(&pricing.amount) else {
        return describe(pricing);
    };
    match pricing.model {
        PricingModel::Flat => describe(pricing),
        PricingModel::PerUnit => {
            let unit = pricing.unit.as_deref().unwrap_or("unit");
            let units = if quantity == 1 {
                unit.to_string()
            } else {
                format!("{unit}s")
            };
            format!(
                "{}{} ({quantity} {units} × {})",
                money(amount * Minor::from(quantity), &pricing.currency),
                per(pricing.interval),
                money(amount, &pricing.currency)
            )
        }
    }
}

/// Whether a plan costs nothing (no price to confirm).
pub fn is_free(pricing: &Pricing) -> bool {
    parse_amount(&pricing.amount) == Some(0)
}

/// The sentence the buyer confirms, as the storefront shows it before a purchase.
pub fn confirmation(plan: &Plan, quantity: i32) -> String {
    if is_free(&plan.pricing) {
        return format!("Confirm adding the free {} plan?", plan.display_name);
    }
    let what = if plan.pricing.model == PricingModel::Flat || quantity < 1 {
        describe(&plan.pricing)
    } else {
        total(&plan.pricing, quantity)
    };
    format!("Confirm addition of {what} to your bill?")
}

/// The plan as a promotion prices it: the promoted amount in place of the list amount.
pub fn promoted_plan(plan: &Plan, offer: Option<&Offer>) -> Plan {
    let mut promoted = plan.clone();
    if let Some(offer) = offer {
        promoted.pricing.amount = offer.price.clone();
    }
    promoted
}

/// The sentence the buyer confirms, naming the promotion and what follows it, if there is one.
pub fn promoted_confirmation(plan: &Plan, quantity: i32, offer: Option<&Offer>) -> String {
    let promoted = promoted_plan(plan, offer);
    let sentence = confirmation(&promoted, quantity);
    match offer {
        None => sentence,
        Some(offer) => format!(
            "{sentence} {}",
            promotion_terms(&offer.display_name, offer.periods, &describe(&plan.pricing))
        ),
    }
}

/// "Spring sale: this price for 3 billing periods, then $49.00/mo.": what a promotion keeps,
/// for how long and what follows, as the buyer confirms it.
pub fn promotion_terms(display_name: &str, periods: i32, then: &str) -> String {
    format!(
        "{display_name}: this price for {periods} billing period{}, then {then}.",
        if periods == 1 { "" } else { "s" }
    )
}

/// The price a buyer saw and confirmed; a purchase goes through only if the plan still costs it.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QuotedPrice {
    /// The unit or flat amount, as the catalog writes it, e.g. "49.00".
    pub amount: String,
    pub currency: String,
    pub interval: BillingInterval,
}

impl QuotedPrice {
    pub fn of(pricing: &Pricing) -> QuotedPrice {
        QuotedPrice {
            amount: pricing.amount.clone(),
            currency: pricing.currency.clone(),
            interval: pricing.interval,
        }
    }

    /// Whether the catalog's price is the one quoted ("49" and "49.00" are the same amount).
    pub fn matches(&self, pricing: &Pricing) -> bool {
        let same_amount = match (parse_amount(&self.amount), parse_amount(&pricing.amount)) {
            (Some(a), Some(b)) => a == b,
            _ => self.amount == pricing.amount,
        };
        same_amount && self.currency == pricing.currency && self.interval == pricing.interval
    }
}

/// What `quantity` of a plan bills per month, in the currency's units (a yearly price counts a
/// twelfth), for revenue metrics; `None` for an amount the catalog schema would refuse.
pub fn monthly_amount(pricing: &Pricing, quantity: i32) -> Option<f64> {
    let amount = parse_amount(&pricing.amount)?;
    let units = match pricing.model {
        PricingModel::Flat => 1,
        PricingModel::PerUnit => Minor::from(quantity.max(0)),
    };
    let months = match pricing.interval {
        BillingInterval::Month => 1.0,
        BillingInterval::Year => 12.0,
    };
    // Exact up to here; the metric is a float anyway.
    Some((amount * units) as f64 / SCALE as f64 / months)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::fixtures::listing;

    fn pricing(yaml: &str) -> Pricing {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn prices_read_as_a_person_would_say_them() {
        let flat = pricing("{model: Flat, amount: '49.00', currency: USD, interval: Month}");
        let unit =
            pricing("{model: PerUnit, amount: '12', currency: EUR, interval: Year, unit: vehicle}");
        let odd = pricing("{model: Flat, amount: '1234.125', currency: CHF, interval: Month}");
        let free = pricing("{model: Flat, amount: '0', currency: USD, interval: Month}");
        assert_eq!(describe(&flat), "$49.00/mo");
        assert_eq!(describe(&unit), "€12.00 per vehicle/yr");
        assert_eq!(describe(&odd), "1,234.125 CHF/mo");
        assert_eq!(describe(&free), "Free");
        assert_eq!(total(&unit, 5), "€60.00/yr (5 vehicles × €12.00)");
        assert_eq!(total(&unit, 1), "€12.00/yr (1 vehicle × €12.00)");
        assert_eq!(
            per_interval("1180.5", "USD", BillingInterval::Year),
            "$1,180.50/yr"
        );
    }

    #[test]
    fn the_confirmation_names_what_is_added_to_the_bill() {
        let l = listing("");
        let standard = &l.plans[0];
        let flat = &l.plans[1];
        assert_eq!(
            confirmation(flat, 1),
            "Confirm addition of $49.00/yr to your bill?"
        );
        assert_eq!(
            confirmation(standard, 3),
            "Confirm addition of $36.00/mo (3 vehicles × $12.00) to your bill?"
        );
    }

    #[test]
    fn a_quote_matches_the_same_price_however_it_is_written() {
        let flat = pricing("{model: Flat, amount: '49.00', currency: USD, interval: Month}");
        let mut quote = QuotedPrice::of(&flat);
        assert!(quote.matches(&flat));
        quote.amount = "49".into();
        assert!(quote.matches(&flat));
        quote.amount = "59.00".into();
        assert!(!quote.matches(&flat));
        let yearly = pricing("{model: Flat, amount: '49.00', currency: USD, interval: Year}");
        assert!(!QuotedPrice::of(&flat).matches(&yearly));
    }
}
