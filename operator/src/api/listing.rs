//! `Listing`: one add-on in the marketplace catalog (cluster-scoped, written by the catalog sync).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::metered::MeteredPrice;
use super::shared::{FeatureCode, ObjectName};

/// An add-on that tenants can discover and, unless it is a partner redirect, subscribe to.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "Listing",
    doc = "An add-on offered in the marketplace: what it is, how it is priced, which features it grants and who may buy it.",
    shortname = "lst",
    category = "marketplace",
    printcolumn(
        name = "Display Name",
        type_ = "string",
        json_path = ".spec.displayName"
    ),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Category", type_ = "string", json_path = ".spec.category"),
    printcolumn(name = "Lifecycle", type_ = "string", json_path = ".spec.lifecycle"),
    printcolumn(name = "Activation", type_ = "string", json_path = ".spec.activation"),
    printcolumn(
        name = "Visibility",
        type_ = "string",
        json_path = ".spec.visibility",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(validation = Rule::new("self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')")
    .message("metadata.name: a listing name must be a DNS label (lowercase letters, digits and dashes, at most 63), so that subscriptions and requires can name it"))]
#[x_kube(
    validation = Rule::new("self.type != 'Partner' || (has(self.partner) && (!has(self.plans) || size(self.plans) == 0))")
        .message("a Partner listing needs spec.partner and must not have spec.plans (partner add-ons are never billed)")
        .field_path(".partner"),
    validation = Rule::new("self.type == 'Partner' || !has(self.partner)")
        .message("spec.partner is only allowed on listings of type Partner")
        .field_path(".partner"),
    validation = Rule::new("self.type != 'Integration' || has(self.integration)")
        .message("an Integration listing needs spec.integration.wizardConfigRef (the connection wizard)")
        .field_path(".integration"),
    validation = Rule::new("self.type == 'Integration' || !has(self.integration)")
        .message("spec.integration is only allowed on listings of type Integration")
        .field_path(".integration"),
    validation = Rule::new("self.type == 'Partner' || self.lifecycle != 'Published' || (has(self.plans) && size(self.plans) > 0)")
        .message("a Published InApp or Integration listing needs at least one plan")
        .field_path(".plans"),
    validation = Rule::new("(self.visibility == 'Private') == has(self.audience)")
        .message("spec.audience names who may see a Private listing: it is required when visibility is Private and not allowed otherwise")
        .field_path(".audience"),
    validation = Rule::new("!has(self.audience) || (has(self.audience.tenants) && size(self.audience.tenants) > 0) || has(self.audience.tenantSelector)")
        .message("spec.audience must name tenants or give a tenantSelector")
        .field_path(".audience"),
    validation = Rule::new("!has(self.navigation) || self.navigation.all(n, !has(n.feature) || (has(self.features) && n.feature in self.features) || (has(self.plans) && self.plans.exists(p, has(p.extraFeatures) && n.feature in p.extraFeatures)))")
        .message("a navigation entry's feature must be one the listing grants (spec.features or a plan's extraFeatures)")
        .field_path(".navigation"),
)]
#[serde(rename_all = "camelCase")]
pub struct ListingSpec {
    /// Name shown to tenants, e.g. "Route Optimization".
    #[schemars(length(min = 1, max = 80))]
    pub display_name: String,

    /// One-line pitch shown on the listing card; at most 90 characters.
    #[x_kube(validation = Rule::new("self.size() <= 90").message("tagline must be at most 90 characters (it is shown on listing cards)"))]
    #[schemars(length(min = 1, max = 1000))]
    pub tagline: String,

    /// Long description in Markdown, shown on the listing's detail page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20000))]
    pub description: Option<String>,

    /// What kind of add-on this is: an in-app feature, an integration with a connection wizard,
    /// or a redirect to a partner's site.
    #[serde(rename = "type")]
    pub type_: ListingType,

    /// Catalog category, used for browsing and filtering.
    pub category: Category,

    /// Icon shown on the card and detail page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<Icon>,

    /// Background colour of the detail page's hero banner, as #RRGGBB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^#[0-9a-fA-F]{6}$"))]
    pub hero_color: Option<String>,

    /// The "what you get" bullets on the detail page: 3 to 6 short sentences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 3, max = 6), inner(length(min = 1, max = 200)))]
    pub what_you_get: Vec<String>,

    /// Screenshots for the detail page's gallery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 12))]
    pub screenshots: Vec<Screenshot>,

    /// Frequently asked questions shown on the detail page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 30))]
    pub faq: Vec<FaqEntry>,

    /// Security and compliance badges shown on the detail page, e.g. "SOC 2 Type II".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(min = 1, max = 60)))]
    pub security_badges: Vec<String>,

    /// Whether the listing is promoted in the catalog's featured row.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub featured: bool,

    /// Position in the catalog; lower values come first, ties sort by display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub sort_order: Option<i32>,

    /// Where the listing is in its life: Draft (not shown), ComingSoon (shown, not purchasable),
    /// Published (purchasable), Archived (no new subscriptions; existing ones keep running).
    pub lifecycle: Lifecycle,

    /// Who can see and buy the listing: Public (every tenant), Private (only the tenants
    /// spec.audience names, e.g. an enterprise customer's private offer), Internal (only tenants
    /// with spec.internal: true, e.g. the SaaS company's own staff tenants). A tenant never sees a
    /// listing hidden from it, and its subscriptions to one are rejected (ListingNotOffered).
    #[serde(default)]
    pub visibility: Visibility,

    /// Private listings: the tenants the listing is offered to, by name, by label, or both (a
    /// tenant matching either sees it). Only allowed, and required, when visibility is Private.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Audience>,

    /// Feature codes every plan of this listing grants (lower_snake_case, e.g. route_optimization).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub features: Vec<FeatureCode>,

    /// Plans a tenant can choose from; plan names are unique within the listing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.name == p.name))").message("plan names must be unique within a listing"))]
    pub plans: Vec<Plan>,

    /// How a subscription becomes active: Instant (billing record created and features granted
    /// at once) or Approval (a superadmin walks it through requested, invoiced, paid, active).
    #[serde(default)]
    pub activation: Activation,

    /// How billing and entitlement are ordered for this listing's subscriptions; absent, the
    /// operator's `--billing-order` applies (BillFirst unless set otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<ListingBilling>,

    /// What a tenant must already have before subscribing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<Requirements>,

    /// Tenant base plans (Tenant spec.basePlan) allowed to subscribe; empty means every base plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(min = 1, max = 63)))]
    pub available_on_plans: Vec<String>,

    /// Semver range of the platform versions this add-on works with, e.g. ">=4.2, <6".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100))]
    pub platform_version: Option<String>,

    /// Integration settings; required when type is Integration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<IntegrationSettings>,

    /// Partner redirect; required when type is Partner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<PartnerRedirect>,

    /// Release history, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub releases: Vec<Release>,

    /// Menu entries the product shows once a tenant is entitled to the listing, e.g. "Itinerary
    /// Planning" in the Dispatch menu (served by `GET /v1/tenants/{t}/navigation`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub navigation: Vec<NavigationEntry>,
}

/// A menu entry a listing unlocks in the product's own UI.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NavigationEntry {
    /// The menu it appears in, e.g. "Dispatch".
    #[schemars(length(min = 1, max = 40))]
    pub menu: String,
    /// The entry's text, e.g. "Itinerary Planning".
    #[schemars(length(min = 1, max = 60))]
    pub label: String,
    /// The product path it opens, e.g. /dispatch/itineraries (an app path, never a URL).
    #[schemars(length(min = 2, max = 200))]
    #[x_kube(validation = Rule::new("self.matches('^/[A-Za-z0-9._~!$&()*+,;=:@%/-]*$') && !self.startsWith('//')").message("path must be an app path starting with a single / (e.g. /dispatch/itineraries), not a URL"))]
    pub path: String,
    /// An icon name from the product's icon set, e.g. "route".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 40))]
    pub icon: Option<String>,
    /// Position within the menu (lower first; then by label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i32>,
    /// Show the entry only with this feature (e.g. a plan's extra); by default any of the
    /// listing's features unlocks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<FeatureCode>,
}

/// What kind of add-on a listing is.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListingType {
    /// A feature inside the product, granted by entitlements.
    InApp,
    /// A connection to an external system, set up with a wizard (WizardConfig).
    Integration,
    /// A redirect to a partner's own site; never billed by us.
    Partner,
}

/// Catalog categories.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    Operations,
    Analytics,
    AI,
    Communication,
    Finance,
    Healthcare,
    Insurance,
    Storage,
    Seats,
    Compliance,
}

/// The listing's icon.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.kind != 'Url' || self.value.startsWith('https://')")
    .message("an icon of kind Url must be an https:// URL")
    .field_path(".value"))]
pub struct Icon {
    /// Lucide (a lucide.dev icon name such as "route") or Url (an https image URL).
    pub kind: IconKind,
    /// The lucide icon name or the image URL.
    #[schemars(length(min = 1, max = 2048))]
    pub value: String,
}

/// How an icon is given.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IconKind {
    Lucide,
    Url,
}

/// A screenshot in the detail page's gallery.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Screenshot {
    /// https URL of the image.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://')").message("screenshot url must be an https:// URL"))]
    pub url: String,
    /// Alternative text describing the image, for screen readers.
    #[schemars(length(min = 1, max = 300))]
    pub alt: String,
}

/// A question and its answer.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct FaqEntry {
    /// The question.
    #[schemars(length(min = 1, max = 300))]
    pub q: String,
    /// The answer, in Markdown.
    #[schemars(length(min = 1, max = 5000))]
    pub a: String,
}

/// Lifecycle of a listing.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    Draft,
    ComingSoon,
    Published,
    Archived,
}

/// Who can see a listing (see spec.visibility).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Visibility {
    Internal,
    Private,
    #[default]
    Public,
}

/// The tenants a Private listing is offered to.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Audience {
    /// Tenant names (metadata.name of Tenant objects).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    pub tenants: Vec<ObjectName>,
    /// Tenants whose labels match, e.g. `matchLabels: {segment: enterprise}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_selector: Option<LabelSelector>,
}

/// How a subscription to the listing becomes active.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// Active as soon as the billing record exists.
    #[default]
    Instant,
    /// Requested, then invoiced, paid and approved by a superadmin through SubscriptionActions.
    Approval,
}

/// Billing settings of a listing.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ListingBilling {
    /// BillFirst: features are granted once the HubSpot billing record exists. EntitleFirst:
    /// features are granted at once and billing follows; if billing cannot be established
    /// within the operator's grace (`--entitle-first-grace-seconds`) the subscription is
    /// Suspended until it is.
    pub order: BillingOrder,
}

/// Whether a subscription is billed before or after its features are granted.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BillingOrder {
    /// The billing record first, then the features (a purchase waits for HubSpot).
    #[default]
    BillFirst,
    /// The features first, billing right after (within a grace).
    EntitleFirst,
}

impl BillingOrder {
    /// Parses `BillFirst` or `EntitleFirst` (as written in a Listing and the flag).
    pub fn parse(value: &str) -> Option<BillingOrder> {
        match value {
            "BillFirst" => Some(BillingOrder::BillFirst),
            "EntitleFirst" => Some(BillingOrder::EntitleFirst),
            _ => None,
        }
    }
}

/// A plan of a listing: a price and the features it adds.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Plan identifier, unique within the listing (lowercase letters, digits and dashes).
    pub name: ObjectName,
    /// Name shown to tenants, e.g. "Professional".
    #[schemars(length(min = 1, max = 80))]
    pub display_name: String,
    /// Price of the plan.
    pub pricing: Pricing,
    /// Days of free trial before billing starts; 0 or absent means no trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 90))]
    pub trial_days: Option<i32>,
    /// Feature codes this plan grants in addition to the listing's features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub extra_features: Vec<FeatureCode>,
    /// SKU of the HubSpot product that bills this plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 100),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    )]
    pub hubspot_sku: Option<String>,
    /// A usage-based price on top of `pricing` (which may be "0"): a meter's usage each calendar
    /// month, billed per unit past an included quantity (see the README's usage-based plans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metered: Option<MeteredPrice>,
}

/// A plan's price.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("self.model != 'PerUnit' || has(self.unit)")
        .message("a PerUnit price must name its unit (e.g. seat, vehicle, GB)")
        .field_path(".unit"),
    validation = Rule::new("self.model == 'PerUnit' || !has(self.unit)")
        .message("unit is only allowed on PerUnit prices")
        .field_path(".unit"),
)]
pub struct Pricing {
    /// Flat (one price per interval) or PerUnit (price per unit per interval).
    pub model: PricingModel,
    /// Price as a non-negative decimal string, e.g. "49.00"; "0" for free plans.
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,4})?$"))]
    pub amount: String,
    /// ISO 4217 currency code, e.g. USD.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// Billing interval.
    pub interval: BillingInterval,
    /// What one unit is, for PerUnit prices (e.g. seat, vehicle, GB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 40))]
    pub unit: Option<String>,
}

/// Pricing models.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PricingModel {
    Flat,
    PerUnit,
}

/// Billing intervals.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BillingInterval {
    Month,
    Year,
}

/// Prerequisites a tenant must meet before subscribing.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
pub struct Requirements {
    /// Listings the tenant must have an active subscription to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub listings: Vec<ObjectName>,
    /// Feature codes the tenant must already be entitled to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub features: Vec<FeatureCode>,
}

/// Integration settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationSettings {
    /// Name of the WizardConfig that drives the connection wizard.
    pub wizard_config_ref: ObjectName,
}

/// Where a partner listing sends the tenant.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PartnerRedirect {
    /// The partner's name, e.g. "GigSafe".
    #[schemars(length(min = 1, max = 80))]
    pub name: String,
    /// The partner's https landing page.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://')").message("partner url must be an https:// URL"))]
    pub url: String,
}

/// One release of the add-on.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct Release {
    /// Semantic version, e.g. 2.3.0.
    #[schemars(regex(
        pattern = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
    ))]
    pub version: String,
    /// Release date, YYYY-MM-DD.
    #[schemars(extend("format" = "date"), regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub date: String,
    /// One-line summary.
    #[schemars(length(min = 1, max = 200))]
    pub summary: String,
    /// Release notes in Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20000))]
    pub notes: Option<String>,
    /// Whether this release has breaking changes tenants should know about.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub major: bool,
}
