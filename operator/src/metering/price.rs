//! What a period's usage costs under a metered price, as HubSpot line items: pure, exact
//! (prices in millionths, whole units). Units past the included quantity are billable; a
//! fractional quantity (a Sum of fractions) is rounded up to whole units.

use crate::api::metered::{MeteredPrice, TiersMode};

/// One line of the period's usage invoice: `units` at `unit_price_micros` each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    pub units: i64,
    /// The unit price in millionths of the currency unit.
    pub unit_price_micros: i64,
    /// Which tier (0-based) priced these units; `None` for a single unit price.
    pub tier: Option<usize>,
}

impl Charge {
    /// The unit price as a decimal string, e.g. "0.005".
    pub fn unit_price(&self) -> String {
        format_micros(self.unit_price_micros)
    }

    pub fn amount_micros(&self) -> i64 {
        self.units.saturating_mul(self.unit_price_micros)
    }
}

/// Billable units: the quantity past `included`, rounded up.
pub fn billable_units(quantity: f64, included: i64) -> i64 {
    let over = quantity - included as f64;
    if over.is_finite() && over > 0.0 {
        over.ceil().min(i64::MAX as f64) as i64
    } else {
        0
    }
}

/// The charges for `quantity` of a period under `price` (none when nothing is billable).
pub fn charges(price: &MeteredPrice, quantity: f64) -> Vec<Charge> {
    let units = billable_units(quantity, price.included_quantity);
    if units == 0 {
        return Vec::new();
    }
    let tiers = match (&price.unit_price, &price.tiers) {
        (Some(unit_price), _) => {
            return vec![Charge {
                units,
                unit_price_micros: parse_micros(unit_price),
                tier: None,
            }];
        }
        (None, Some(tiers)) => tiers,
        (None, None) => return Vec::new(),
    };
    match price.mode() {
        TiersMode::Volume => {
            let index = tiers
                .iter()
                .position(|t| t.up_to.is_none_or(|up_to| units <= up_to))
                .unwrap_or(tiers.len() - 1);
            vec![Charge {
                units,
                unit_price_micros: parse_micros(&tiers[index].unit_price),
                tier: Some(index),
            }]
        }
        TiersMode::Graduated => {
            let mut lines = Vec::new();
            let mut below = 0_i64;
            for (index, tier) in tiers.iter().enumerate() {
                let top = tier.up_to.unwrap_or(i64::MAX).min(units);
                if top > below {
                    lines.push(Charge {
                        units: top - below,
                        unit_price_micros: parse_micros(&tier.unit_price),
                        tier: Some(index),
                    });
                    below = top;
                }
                if below >= units {
                    break;
                }
            }
            lines
        }
    }
}

/// Whether `quantity` has used up a hard-limited price's included quantity.
pub fn limit_reached(price: &MeteredPrice, quantity: f64) -> bool {
    price.hard_limit && quantity >= price.included_quantity as f64
}

/// A schema-valid decimal price ("0.005") in millionths; anything else is 0 (the schema has
/// already refused it).
pub fn parse_micros(text: &str) -> i64 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole: i64 = whole.parse().unwrap_or(0);
    let mut digits = fraction.chars().take(6).collect::<String>();
    while digits.len() < 6 {
        digits.push('0');
    }
    whole
        .saturating_mul(1_000_000)
        .saturating_add(digits.parse::<i64>().unwrap_or(0))
}

/// Millionths as a decimal string without trailing zeros: 5000 → "0.005", 2_000_000 → "2".
pub fn format_micros(micros: i64) -> String {
    let whole = micros / 1_000_000;
    let fraction = format!("{:06}", (micros % 1_000_000).abs());
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// A metered price of meter `api_call`, with `v`'s fields (the report tests use it too).
    pub(in crate::metering) fn price(v: serde_json::Value) -> MeteredPrice {
        let mut base = json!({"meter": "api_call", "unit": "call"});
        base.as_object_mut()
            .unwrap()
            .extend(v.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn lines(p: &MeteredPrice, q: f64) -> Vec<(i64, String)> {
        charges(p, q)
            .iter()
            .map(|c| (c.units, c.unit_price()))
            .collect()
    }

    #[test]
    fn only_units_past_the_included_quantity_are_billed_rounded_up() {
        let p = price(json!({"unitPrice": "0.01", "includedQuantity": 1000}));
        assert_eq!(lines(&p, 999.0), vec![]);
        assert_eq!(lines(&p, 1000.0), vec![]);
        assert_eq!(lines(&p, 1000.2), vec![(1, "0.01".to_string())]);
        assert_eq!(lines(&p, 1500.0), vec![(500, "0.01".to_string())]);
        assert_eq!(charges(&p, 1500.0)[0].amount_micros(), 5_000_000);
    }

    #[test]
    fn graduated_tiers_price_each_unit_by_its_tier() {
        let p = price(json!({"tiers": [
            {"upTo": 10000, "unitPrice": "0.05"},
            {"upTo": 100000, "unitPrice": "0.03"},
            {"unitPrice": "0.02"}]}));
        assert_eq!(lines(&p, 500.0), vec![(500, "0.05".to_string())]);
        assert_eq!(
            lines(&p, 150_000.0),
            vec![
                (10_000, "0.05".to_string()),
                (90_000, "0.03".to_string()),
                (50_000, "0.02".to_string())
            ]
        );
        let total: i64 = charges(&p, 150_000.0)
            .iter()
            .map(Charge::amount_micros)
            .sum();
        assert_eq!(format_micros(total), "4200");
    }

    #[test]
    fn volume_tiers_price_every_unit_by_the_tier_reached() {
        let p = price(
            json!({"tiersMode": "Volume", "includedQuantity": 100, "tiers": [
            {"upTo": 1000, "unitPrice": "0.01"},
            {"unitPrice": "0.005"}]}),
        );
        assert_eq!(lines(&p, 1100.0), vec![(1000, "0.01".to_string())]);
        assert_eq!(lines(&p, 1101.0), vec![(1001, "0.005".to_string())]);
    }

    #[test]
    fn a_hard_limit_is_reached_at_the_included_quantity() {
        let p = price(json!({"unitPrice": "0", "includedQuantity": 3, "hardLimit": true}));
        assert!(!limit_reached(&p, 2.0));
        assert!(limit_reached(&p, 3.0));
        let soft = price(json!({"unitPrice": "0", "includedQuantity": 3}));
        assert!(!limit_reached(&soft, 30.0));
    }

    #[test]
    fn prices_parse_and_print_exactly() {
        assert_eq!(parse_micros("0.002"), 2000);
        assert_eq!(parse_micros("12"), 12_000_000);
        assert_eq!(parse_micros("1.5"), 1_500_000);
        assert_eq!(format_micros(1_500_000), "1.5");
        assert_eq!(format_micros(0), "0");
    }
}
