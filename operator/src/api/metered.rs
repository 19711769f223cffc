//! A plan's metered price (`spec.plans[].metered` of a Listing): usage of a named meter,
//! aggregated per tenant and calendar month, billed per unit past an included quantity, with
//! optional graduated or volume tiers and an optional hard limit on the plan's features.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A meter name: the CloudEvents `type` of the usage events it counts (lower_snake_case, dots
/// allowed for namespacing, e.g. `api_call` or `vision.scan`).
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(transparent)]
pub struct MeterName(
    #[schemars(
        length(min = 2, max = 63),
        regex(pattern = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
    )]
    pub String,
);

super::shared::string_newtype!(MeterName);

/// How a meter turns a period's events into one quantity.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Aggregation {
    /// The number of events.
    #[default]
    Count,
    /// The sum of `valueProperty` over the events.
    Sum,
    /// The largest `valueProperty` seen (e.g. peak vehicles tracked).
    Max,
    /// The number of distinct values of `valueProperty` (e.g. active users).
    UniqueCount,
}

/// How tiers price the billable quantity.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TiersMode {
    /// Each unit is priced by the tier it falls in (the first 1,000 at one price, the next at
    /// another...).
    #[default]
    Graduated,
    /// Every unit is priced by the tier the whole quantity reaches.
    Volume,
}

/// One price tier: units up to `upTo` (inclusive, counted after the included quantity) cost
/// `unitPrice` each; the last tier has no `upTo`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PriceTier {
    /// The last unit of this tier; absent on the last tier (no upper bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000_000_000_i64))]
    pub up_to: Option<i64>,
    /// Price of one unit in this tier, as a non-negative decimal string, e.g. "0.002".
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?$"))]
    pub unit_price: String,
}

/// A metered price, billed at the end of each calendar month (UTC) in the plan's currency.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.aggregation == 'Count' || has(self.valueProperty)")
        .message("a Sum, Max or UniqueCount meter needs valueProperty (the property of the events' data it reads)")
        .field_path(".valueProperty"),
    validation = Rule::new("self.aggregation != 'Count' || !has(self.valueProperty)")
        .message("valueProperty is not used by a Count meter; remove it or choose Sum, Max or UniqueCount")
        .field_path(".valueProperty"),
    validation = Rule::new("has(self.unitPrice) != has(self.tiers)")
        .message("give either unitPrice (one price per unit) or tiers, exactly one of them")
        .field_path(".unitPrice"),
    validation = Rule::new("has(self.tiers) || !has(self.tiersMode)")
        .message("tiersMode is only allowed with tiers")
        .field_path(".tiersMode"),
    validation = Rule::new("!self.hardLimit || self.includedQuantity > 0")
        .message("a hard limit needs includedQuantity above 0, or the plan's features would never be usable")
        .field_path(".includedQuantity"),
)]
pub struct MeteredPrice {
    /// The meter: usage events whose CloudEvents `type` is this name count towards it.
    pub meter: MeterName,
    /// How the period's events become a quantity (default Count).
    #[serde(default)]
    pub aggregation: Aggregation,
    /// The property of the events' `data` that Sum, Max and UniqueCount read, e.g. `tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$")
    )]
    pub value_property: Option<String>,
    /// What one unit is, shown to tenants, e.g. "API call" or "scan".
    #[schemars(length(min = 1, max = 40))]
    pub unit: String,
    /// Price of one unit past the included quantity, as a decimal string, e.g. "0.01".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?$"))]
    pub unit_price: Option<String>,
    /// Tiered prices for the units past the included quantity, lowest first; the last tier has
    /// no upTo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10))]
    #[x_kube(validation = Rule::new("!has(self[size(self) - 1].upTo) && self.filter(t, !has(t.upTo)).size() == 1")
        .message("only the last tier, and it always, has no upTo (it prices every unit beyond the others)"))]
    pub tiers: Option<Vec<PriceTier>>,
    /// Graduated (default) or Volume; only with tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers_mode: Option<TiersMode>,
    /// Units each period includes at no charge (the plan's base price covers them).
    #[serde(default)]
    #[schemars(range(min = 0, max = 1_000_000_000_000_i64))]
    pub included_quantity: i64,
    /// When true, the plan's features answer `false` to entitlement checks once the period's
    /// usage reaches includedQuantity (until the next period); otherwise usage past it is billed.
    #[serde(default)]
    pub hard_limit: bool,
}

impl MeteredPrice {
    /// The tiers mode in force (Graduated unless given).
    pub fn mode(&self) -> TiersMode {
        self.tiers_mode.unwrap_or_default()
    }
}
