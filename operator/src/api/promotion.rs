//! `Promotion`: a time-bound price cut on listing plans or bundles, limited to segments or regions and
//! optionally behind a code (cluster-scoped, written by the catalog sync like Listings).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::ObjectName;

/// RFC 3339 timestamps as the catalog writes them (UTC `Z` or an offset), e.g.
/// `2026-12-01T00:00:00Z`. Checked by the schema so that CEL's `timestamp()` cannot fail.
const TIMESTAMP_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$";

/// A promotion: while its window is open, tenants of its segments and regions (and with its
/// code, if it has one) buy its target plans at the promoted price, and keep that price for
/// `periods` billing periods.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "Promotion",
    doc = "A time-bound price cut on listing plans or bundles: a price override or a percentage or amount discount, for some segments or regions, optionally behind a code, kept for a number of billing periods.",
    shortname = "promo",
    category = "marketplace",
    printcolumn(
        name = "Display Name",
        type_ = "string",
        json_path = ".spec.displayName"
    ),
    printcolumn(name = "Starts", type_ = "string", json_path = ".spec.startsAt"),
    printcolumn(name = "Ends", type_ = "string", json_path = ".spec.endsAt"),
    printcolumn(name = "Periods", type_ = "integer", json_path = ".spec.periods"),
    printcolumn(
        name = "Code",
        type_ = "string",
        json_path = ".spec.code",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(validation = Rule::new("self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')")
    .message("metadata.name: a promotion name must be a DNS label (lowercase letters, digits and dashes, at most 63), so that subscriptions can record it"))]
#[x_kube(
    validation = Rule::new("timestamp(self.endsAt) > timestamp(self.startsAt)")
        .message("spec.endsAt must be after spec.startsAt: the promotion's window would be empty")
        .field_path(".endsAt"),
    validation = Rule::new("(has(self.targets) && size(self.targets) > 0) || (has(self.bundles) && size(self.bundles) > 0)")
        .message("spec.targets or spec.bundles must name at least one listing or bundle the promotion lowers")
        .field_path(".targets"),
)]
#[serde(rename_all = "camelCase")]
pub struct PromotionSpec {
    /// Name shown to tenants next to the promoted price, e.g. "Spring launch: 20% off".
    #[schemars(length(min = 1, max = 80))]
    pub display_name: String,

    /// The listings (and plans) the promotion lowers the price of; with `bundles`, at least one
    /// of the two is non-empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[x_kube(validation = Rule::new("self.all(t, self.exists_one(u, u.listing == t.listing))").message("each listing may be targeted once; list its plans in one entry"))]
    pub targets: Vec<PromotionTarget>,

    /// The Bundles whose price the promotion lowers (the cut applies to the bundle's price,
    /// its own discount already taken off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    #[x_kube(validation = Rule::new("self.all(b, self.exists_one(c, c == b))").message("each bundle may be targeted once"))]
    pub bundles: Vec<ObjectName>,

    /// The price cut: exactly one of percentage, amount or price.
    pub discount: PromotionDiscount,

    /// When the promotion opens (RFC 3339, e.g. 2026-12-01T00:00:00Z).
    #[schemars(regex(pattern = TIMESTAMP_PATTERN))]
    pub starts_at: String,

    /// When it closes (RFC 3339); purchases from this instant on pay the list price.
    #[schemars(regex(pattern = TIMESTAMP_PATTERN))]
    pub ends_at: String,

    /// Tenant segments (Tenant spec.segment) it is offered to; empty means every segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(min = 1, max = 63)))]
    pub segments: Vec<String>,

    /// Tenant regions (Tenant spec.region) it is offered to; empty means every region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(min = 1, max = 63)))]
    pub regions: Vec<String>,

    /// A code the buyer must enter (e.g. SPRING26); absent, the promotion applies by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z0-9][A-Z0-9-]{2,31}$"))]
    pub code: Option<String>,

    /// How many billing periods a subscription bought under the promotion keeps its price.
    #[schemars(range(min = 1, max = 36))]
    pub periods: i32,
}

/// A listing whose plans a promotion lowers.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct PromotionTarget {
    /// Name of the Listing.
    pub listing: ObjectName,
    /// The listing's plans it applies to; empty means all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub plans: Vec<ObjectName>,
}

/// How a promotion cuts the price; exactly one field is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("[has(self.percentage), has(self.amount), has(self.price)].filter(x, x).size() == 1")
        .message("spec.discount needs exactly one of percentage, amount or price")
        .field_path(".percentage"),
)]
pub struct PromotionDiscount {
    /// Percent off the list price, 1 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub percentage: Option<i32>,
    /// Amount off the unit price, in the plan's currency, e.g. "10.00".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,4})?$"))]
    pub amount: Option<String>,
    /// The promoted unit price itself, in the plan's currency, e.g. "29.00".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,4})?$"))]
    pub price: Option<String>,
}
