//! Every operation the API serves, in one table: method, path, who may call, parameters, body
//! and answers. The document is built from it, and `tests.rs` calls each entry on the real
//! router and scans the routes files for routes missing from it.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::bodies::{
    ApiError, CatalogAnswer, CreatedAction, EntitlementList, InboxList, ListingAnswer,
    NavigationList, PurchaseConflict, Purchased, SubscriptionList,
};
use crate::credits::grant::GrantRequest;
use crate::credits::view::CreditsView;
use crate::front_door::console::inbox::InboxQuery;
use crate::front_door::console::routes::ActionRequest;
use crate::front_door::console::support::SupportView;
use crate::front_door::decide::FeatureCheck;
use crate::front_door::health_routes::{HealthReport, RevenueReport};
use crate::front_door::metering_routes::{UsageAccepted, UsageRefused};
use crate::front_door::ofrep::{
    BulkEvaluation, EvaluationFailure, EvaluationRequest, EvaluationRetryLater, FlagEvaluation,
};
use crate::front_door::storefront::bundles::{
    BundleList, BundlePurchaseList, BundlePurchaseRequest, BundlePurchaseView, BundlePurchased,
};
use crate::front_door::storefront::catalog::CatalogQuery;
use crate::front_door::storefront::changes::{CancelRequest, ChangeRequest};
use crate::front_door::storefront::detail::SubscriptionView;
use crate::front_door::storefront::purchase::PurchaseRequest;
use crate::front_door::storefront::wizard::{SettingsInvalid, WizardTestRequest, WizardTestResult};
use crate::health::filter::{HealthFilter, RevenueFilter};
use crate::metering::view::TenantUsage;

/// A type's schema: a `$ref` to its component (or the schema itself, for query types).
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn named<T: JsonSchema>() -> SchemaFn {
    SchemaGenerator::subschema_for::<T>
}

/// One of two shapes (e.g. a 422 with the settings' problems, or a plain error).
fn either<A: JsonSchema, B: JsonSchema>() -> SchemaFn {
    |generator| {
        json_schema!({
            "anyOf": [generator.subschema_for::<A>(), generator.subschema_for::<B>()],
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    /// As OpenAPI's path items name it.
    pub fn key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Patch => "patch",
            Method::Delete => "delete",
        }
    }
}

/// Who may call an operation, which decides its security schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Anyone,
    /// Whoever may read the tenant: a bearer token, or a tenant's backend API key.
    TenantReader,
    /// The tenant's billing admins: a bearer token (writes are made as the caller).
    TenantBillingAdmin,
    /// Whoever may create SubscriptionActions in the operator's namespace: a bearer token.
    Superadmin,
    /// Whoever may report a tenant's usage: its backend API key, or a bearer token allowed
    /// `create` on `usageevents` in the tenant's namespace.
    UsageReporter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestHeader {
    IfNoneMatch,
    IdempotencyKey,
    LastEventId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyHeader {
    ETag,
    RetryAfter,
    Location,
    IdempotentReplayed,
}

#[derive(Clone, Copy)]
pub enum Content {
    Empty,
    Json(SchemaFn),
    /// Server-sent events; the events' data schemas are named in the document.
    EventStream,
    /// A plain-text line (axum's own answer to a query it cannot read).
    Text,
}

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub description: &'static str,
    pub content: Content,
    pub headers: Vec<ReplyHeader>,
}

fn reply(status: u16, description: &'static str, content: Content) -> Reply {
    Reply {
        status,
        description,
        content,
        headers: Vec::new(),
    }
}

impl Reply {
    fn with(mut self, header: ReplyHeader) -> Reply {
        self.headers.push(header);
        self
    }
}

/// An operation's request body.
#[derive(Clone, Copy)]
pub struct Body {
    pub schema: SchemaFn,
    /// An empty body reads as `{}` when not required.
    pub required: bool,
}

pub struct Operation {
    pub method: Method,
    pub path: &'static str,
    pub id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: Option<&'static str>,
    pub caller: Caller,
    /// A type whose fields are the query parameters.
    pub query: Option<SchemaFn>,
    pub headers: Vec<RequestHeader>,
    pub body: Option<Body>,
    pub replies: Vec<Reply>,
}

/// A path parameter: its description, and the example the document shows and the routing test
/// calls with.
pub struct PathParameter {
    pub name: &'static str,
    pub description: &'static str,
    pub example: &'static str,
}

pub const PATH_PARAMETERS: &[PathParameter] = &[
    PathParameter {
        name: "tenant",
        description: "The tenant's name (its Tenant object; its namespace is `tenant-<name>`).",
        example: "acme-logistics",
    },
    PathParameter {
        name: "feature",
        description: "A feature code, as Listings grant them.",
        example: "route-optimization",
    },
    PathParameter {
        name: "key",
        description: "The flag key: a feature code, as Listings grant them.",
        example: "route-optimization",
    },
    PathParameter {
        name: "listing",
        description: "The Listing's name.",
        example: "route-optimizer",
    },
    PathParameter {
        name: "name",
        description: "The subscription's name (TenantSubscription in the tenant's namespace).",
        example: "route-optimizer-acme-logistics-1a2b3c4d",
    },
];

pub const TAGS: &[(&str, &str)] = &[
    (
        ENTITLEMENTS,
        "May tenant T use feature F? Answered from each replica's caches.",
    ),
    (
        OFREP,
        "OpenFeature Remote Evaluation Protocol: flag key = feature code, targetingKey = tenant.",
    ),
    (
        STOREFRONT,
        "The catalog as one tenant sees it, buying, changing and cancelling.",
    ),
    (
        CONSOLE,
        "Superadmins: the approval inbox, ladder actions, the support view, tenant health and MRR.",
    ),
    (
        USAGE,
        "Usage-based plans: usage events in (CloudEvents), a tenant's usage this period out.",
    ),
    (SERVICE, "This document and the probes."),
];

const ENTITLEMENTS: &str = "Entitlements";
const OFREP: &str = "OFREP";
const STOREFRONT: &str = "Storefront";
const CONSOLE: &str = "Console";
const SERVICE: &str = "Service";
const USAGE: &str = "Usage";

fn op(
    method: Method,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
) -> Operation {
    Operation {
        method,
        path,
        id,
        tag,
        summary,
        description: None,
        caller: Caller::Anyone,
        query: None,
        headers: Vec::new(),
        body: None,
        replies: Vec::new(),
    }
}

impl Operation {
    fn describe(mut self, description: &'static str) -> Self {
        self.description = Some(description);
        self
    }

    /// Who may call, with the refusals that come with it.
    fn caller(mut self, caller: Caller) -> Self {
        self.caller = caller;
        if self.tag == OFREP {
            self.replies.extend([
                reply(401, "No or bad credentials (no body).", Content::Empty),
                reply(
                    403,
                    "The caller may not read this tenant (no body).",
                    Content::Empty,
                ),
                reply(
                    503,
                    "The caller could not be checked now; retry.",
                    Content::Json(named::<EvaluationRetryLater>()),
                )
                .with(ReplyHeader::RetryAfter),
                reply(
                    429,
                    "The tenant's reads are over its rate; retry after `Retry-After` seconds.",
                    Content::Json(named::<EvaluationRetryLater>()),
                )
                .with(ReplyHeader::RetryAfter),
            ]);
        } else if caller != Caller::Anyone {
            let forbidden = match caller {
                Caller::TenantBillingAdmin => {
                    "The caller may not read this tenant, or is not one of its billing admins."
                }
                Caller::Superadmin => "The caller is not a superadmin.",
                Caller::UsageReporter => {
                    "An event names another tenant than the key's, or the token may not report \
                     usage for the tenant an event names (the body says which event)."
                }
                _ => "The caller may not read this tenant.",
            };
            self.replies.extend([
                error(401, "No or bad credentials."),
                error(403, forbidden),
                error(503, "The caller could not be checked now; retry."),
            ]);
            if caller == Caller::TenantReader {
                self.replies.push(
                    error(
                        429,
                        "The tenant's reads are over its rate (`RateLimited`); retry after \
                         `Retry-After` seconds.",
                    )
                    .with(ReplyHeader::RetryAfter),
                );
            }
        }
        self
    }

    fn query(mut self, schema: SchemaFn) -> Self {
        self.query = Some(schema);
        self.replies.push(reply(
            400,
            "A query parameter could not be read.",
            Content::Text,
        ));
        self
    }

    fn header(mut self, header: RequestHeader) -> Self {
        self.headers.push(header);
        self
    }

    fn body(mut self, schema: SchemaFn, required: bool) -> Self {
        self.body = Some(Body { schema, required });
        self
    }

    fn reply(mut self, reply: Reply) -> Self {
        self.replies.push(reply);
        self
    }

    /// A 200 with a strong ETag, and the 304 of `If-None-Match`.
    fn tagged(self, schema: SchemaFn, description: &'static str) -> Self {
        self.header(RequestHeader::IfNoneMatch)
            .reply(reply(200, description, Content::Json(schema)).with(ReplyHeader::ETag))
            .reply(
                reply(
                    304,
                    "`If-None-Match` names the current ETag (no body).",
                    Content::Empty,
                )
                .with(ReplyHeader::ETag),
            )
    }
}

fn error(status: u16, description: &'static str) -> Reply {
    reply(status, description, Content::Json(named::<ApiError>()))
}

fn json(status: u16, description: &'static str, schema: SchemaFn) -> Reply {
    reply(status, description, Content::Json(schema))
}

/// The whole API, one entry per method and path (laid out by hand: a table reads better than
/// rustfmt's one argument per line).
#[rustfmt::skip]
pub fn operations() -> Vec<Operation> {
    use Caller::*;
    use Method::*;
    use RequestHeader::*;
    vec![
        // ---- entitlements ----
        op(Get, "/v1/tenants/{tenant}/entitlements", "listEntitlements", ENTITLEMENTS,
            "Every feature the tenant holds")
            .caller(TenantReader)
            .tagged(named::<EntitlementList>(), "The tenant's features, with state and dates."),
        op(Get, "/v1/tenants/{tenant}/entitlements/{feature}", "checkEntitlement", ENTITLEMENTS,
            "May the tenant use this feature?")
            .describe("`enabled` only when Active or Trialing and not past `endsAt`. A feature \
                some Listing grants but the tenant lacks is a 200 with `enabled: false`, reason \
                `NotEntitled`. The feature code `stream` names the change stream.")
            .caller(TenantReader)
            .reply(json(200, "The check.", named::<FeatureCheck>()))
            .reply(error(404, "No Listing grants this feature.")),
        op(Get, "/v1/tenants/{tenant}/entitlements/stream", "streamEntitlements", ENTITLEMENTS,
            "The tenant's entitlement changes, as server-sent events")
            .describe("First `event: snapshot` (data: StreamSnapshot), then `event: entitlement` \
                (data: FeatureCheck) at each change of a feature's state or end; `: heartbeat` \
                comments in between. Reconnect with `Last-Event-ID` to get only what changed \
                since (or a fresh snapshot). A client that stops reading is disconnected.")
            .caller(TenantReader)
            .header(LastEventId)
            .reply(reply(200, "The event stream.", Content::EventStream)),
        // ---- OFREP ----
        op(Post, "/ofrep/v1/evaluate/flags/{key}", "evaluateFlag", OFREP,
            "Evaluate one flag for the tenant of the context")
            .describe("The tenant is the context's `targetingKey` (or a `tenant` attribute). \
                Enabled: `true`, variant `on`, reason `TARGETING_MATCH`; not enabled: `false`, \
                `off`, `DISABLED`. Any Content-Type is accepted.")
            .body(named::<EvaluationRequest>(), false)
            .caller(TenantReader)
            .reply(json(200, "The evaluation.", named::<FlagEvaluation>()))
            .reply(json(400, "The body is not JSON, or names no tenant.",
                named::<EvaluationFailure>()))
            .reply(json(404, "No Listing grants this feature (`FLAG_NOT_FOUND`).",
                named::<EvaluationFailure>())),
        op(Post, "/ofrep/v1/evaluate/flags", "evaluateFlags", OFREP,
            "Evaluate every flag for the tenant of the context")
            .describe("Every feature the catalog knows (and any the tenant still holds). The \
                ETag covers the context and the answer: another context never gets a 304.")
            .body(named::<EvaluationRequest>(), false)
            .caller(TenantReader)
            .tagged(named::<BulkEvaluation>(), "Every flag's evaluation.")
            .reply(json(400, "The body is not JSON, or names no tenant.",
                named::<EvaluationFailure>())),
        // ---- storefront ----
        op(Get, "/v1/tenants/{tenant}/catalog", "getCatalog", STOREFRONT,
            "The listings the tenant may see, with their state for it")
            .caller(TenantReader)
            .query(<CatalogQuery as JsonSchema>::json_schema)
            .tagged(named::<CatalogAnswer>(), "A page of cards, featured first.")
            .reply(error(404, "There is no such tenant.")),
        op(Get, "/v1/tenants/{tenant}/catalog/{listing}", "getListing", STOREFRONT,
            "A listing's detail page for the tenant")
            .caller(TenantReader)
            .tagged(named::<ListingAnswer>(),
                "The detail, plans priced, and the tenant's subscriptions to it.")
            .reply(error(404, "No such tenant, or no such listing for this tenant (one it may \
                not see is not found either).")),
        op(Post, "/v1/tenants/{tenant}/catalog/{listing}/wizard/test", "testWizardConnection",
            STOREFRONT, "Check an integration's settings and run its test connection")
            .describe("The settings are checked against the listing's WizardConfig, then its \
                safe test connection runs; nothing is subscribed or stored.")
            .caller(TenantBillingAdmin)
            .body(named::<WizardTestRequest>(), false)
            .reply(json(200, "Whether the test connection succeeded (`ok`).",
                named::<WizardTestResult>()))
            .reply(error(404, "No such tenant, or no such listing for this tenant."))
            .reply(json(422, "The settings do not fit the wizard (`ConnectionInvalid`, with \
                `problems`), or the listing has no wizard (`NotAnIntegration`).",
                either::<SettingsInvalid, ApiError>())),
        op(Get, "/v1/tenants/{tenant}/navigation", "getNavigation", STOREFRONT,
            "The menu entries the tenant's product UI shows")
            .caller(TenantReader)
            .tagged(named::<NavigationList>(),
                "The entries of the listings whose features the tenant may use now.")
            .reply(error(404, "There is no such tenant.")),
        op(Get, "/v1/tenants/{tenant}/subscriptions", "listSubscriptions", STOREFRONT,
            "The tenant's subscriptions")
            .caller(TenantReader)
            .tagged(named::<SubscriptionList>(), "Every subscription, newest first.")
            .reply(error(404, "There is no such tenant.")),
        op(Post, "/v1/tenants/{tenant}/subscriptions", "purchase", STOREFRONT,
            "Buy a plan of a listing, as the caller")
            .describe("Idempotent with `Idempotency-Key`: the same key and body answer the same \
                subscription (`Idempotent-Replayed: true`), on any replica, for as long as the \
                subscription exists.")
            .caller(TenantBillingAdmin)
            .header(IdempotencyKey)
            .body(named::<PurchaseRequest>(), true)
            .reply(json(201, "The subscription, created as the caller.", named::<Purchased>())
                .with(ReplyHeader::Location)
                .with(ReplyHeader::IdempotentReplayed))
            .reply(error(400, "The Idempotency-Key is not 1 to 255 visible ASCII characters."))
            .reply(error(404, "No such tenant, or no such listing for this tenant."))
            .reply(json(409, "The confirmed price is not the plan's price now \
                (`PriceChanged`), or another conflict.", named::<PurchaseConflict>()))
            .reply(json(422, "The request breaks a rule (the field is named), the connection \
                settings do not fit the wizard (`ConnectionInvalid`, with `problems`), or the \
                Idempotency-Key was used with another body (`IdempotencyKeyReused`).",
                either::<SettingsInvalid, ApiError>()))
            .reply(error(429, "Another request for this listing came too soon.")
                .with(ReplyHeader::RetryAfter)),
        op(Get, "/v1/tenants/{tenant}/subscriptions/{name}", "getSubscription", STOREFRONT,
            "One of the tenant's subscriptions")
            .caller(TenantReader)
            .tagged(named::<SubscriptionView>(), "The subscription.")
            .reply(error(404, "No such tenant or subscription.")),
        op(Patch, "/v1/tenants/{tenant}/subscriptions/{name}", "changeSubscription", STOREFRONT,
            "Change the plan or quantity, at the price confirmed")
            .caller(TenantBillingAdmin)
            .body(named::<ChangeRequest>(), false)
            .reply(json(200, "The subscription, changed as the caller.",
                named::<SubscriptionView>()))
            .reply(error(404, "No such tenant, subscription or listing."))
            .reply(json(409, "The confirmed price is not the plan's price now, or the phase \
                does not allow it.", named::<PurchaseConflict>()))
            .reply(error(422, "The change breaks a rule (the field is named).")),
        op(Post, "/v1/tenants/{tenant}/subscriptions/{name}/cancel", "cancelSubscription",
            STOREFRONT, "Cancel at the end of the period or now")
            .caller(TenantBillingAdmin)
            .body(named::<CancelRequest>(), false)
            .reply(json(200, "The subscription, its cancellation requested as the caller.",
                named::<SubscriptionView>()))
            .reply(error(404, "No such tenant or subscription."))
            .reply(error(409, "The phase does not allow a cancellation, or the subscription \
                is a bundle member (`BundleMemberCancelledAlone`: cancel its bundle)."))
            .reply(error(422, "The body is not valid.")),
        op(Delete, "/v1/tenants/{tenant}/subscriptions/{name}/cancel", "undoCancel", STOREFRONT,
            "Withdraw a scheduled cancellation")
            .caller(TenantBillingAdmin)
            .reply(json(200, "The subscription, in service again.", named::<SubscriptionView>()))
            .reply(error(404, "No such tenant or subscription."))
            .reply(error(409, "There is no cancellation that can still be withdrawn.")),
        op(Get, "/v1/tenants/{tenant}/bundles", "listBundles", STOREFRONT,
            "The bundles the tenant may buy")
            .describe("A bundle is offered when every member listing is visible to the tenant \
                and the bundle can be sold (its members Published, in one currency and \
                interval). Prices are decimal strings in the bundle's currency per interval.")
            .caller(TenantReader)
            .tagged(named::<BundleList>(),
                "Each bundle with its members, list total, bundle price and savings.")
            .reply(error(404, "There is no such tenant.")),
        op(Get, "/v1/tenants/{tenant}/bundle-subscriptions", "listBundleSubscriptions",
            STOREFRONT, "The tenant's bundle purchases")
            .caller(TenantReader)
            .tagged(named::<BundlePurchaseList>(), "Every bundle purchase with its members.")
            .reply(error(404, "There is no such tenant.")),
        op(Post, "/v1/tenants/{tenant}/bundle-subscriptions", "purchaseBundle", STOREFRONT,
            "Buy a bundle, as the caller")
            .describe("Creates a BundleSubscription; the operator creates one subscription per \
                member, billed with the bundle's discount. Idempotent with `Idempotency-Key`: \
                a retry answers the same purchase (200).")
            .caller(TenantBillingAdmin)
            .header(IdempotencyKey)
            .body(named::<BundlePurchaseRequest>(), true)
            .reply(json(201, "The bundle purchase, created as the caller, and its prices.",
                named::<BundlePurchased>()))
            .reply(json(200, "A retry: the purchase the key already made.",
                named::<BundlePurchaseView>()))
            .reply(error(400, "The Idempotency-Key is not 1 to 255 visible ASCII characters."))
            .reply(error(404, "No such tenant, or no such bundle for this tenant."))
            .reply(error(409, "The tenant already subscribes to a member listing \
                (`AlreadySubscribed`), or the bundle's price is not the `confirmedPrice` sent \
                (`PriceChanged`: its message has the sentence to confirm again).")
            )
            .reply(error(422, "The body is not valid, or the Idempotency-Key was used for \
                another bundle (`IdempotencyKeyReused`).")),
        op(Post, "/v1/tenants/{tenant}/bundle-subscriptions/{name}/cancel",
            "cancelBundleSubscription", STOREFRONT, "Cancel a bundle and every member")
            .describe("Members are cancelled together, at the end of the period or now; a \
                member cannot be cancelled on its own (`BundleMemberCancelledAlone`).")
            .caller(TenantBillingAdmin)
            .body(named::<CancelRequest>(), false)
            .reply(json(200, "The bundle purchase, its cancellation requested as the caller.",
                named::<BundlePurchaseView>()))
            .reply(error(404, "No such tenant or bundle purchase."))
            .reply(error(409, "The bundle is already being cancelled (`AlreadyCancelling`), or \
                every member has ended (`BundleEnded`)."))
            .reply(error(422, "The body is not valid.")),
        // ---- usage ----
        op(Post, "/v1/usage", "reportUsage", USAGE, "Report usage events of metered plans")
            .describe("CloudEvents 1.0, structured JSON: one event (`application/cloudevents+json` \
                or `application/json`) or a batch of up to 1000 \
                (`application/cloudevents-batch+json`, a JSON array). `type` names the meter (a \
                plan's `metered.meter`), `subject` the tenant (optional with a backend key, \
                which reports for its own tenant only), `time` when the usage happened (default: \
                now), `data` the properties the meter reads. Deduplicated by tenant, `source` \
                and `id`: a retried event counts once. Events are counted in the calendar month \
                (UTC) of their `time`.")
            .body(<serde_json::Value as JsonSchema>::json_schema, true)
            .caller(UsageReporter)
            .reply(json(202, "Stored: how many events were new and how many were duplicates.",
                named::<UsageAccepted>()))
            .reply(json(400, "The body is not JSON, not the shape its media type says, or an \
                event is not an object.", named::<UsageRefused>()))
            .reply(json(413, "More than 1000 events.", named::<UsageRefused>()))
            .reply(json(415, "Not a CloudEvents JSON media type.", named::<UsageRefused>()))
            .reply(json(422, "An event is invalid: `index` and `field` say which and where \
                (nothing of the request was stored). Code `PeriodReported`: events of a month \
                already reported to billing, listed in `late` (send the others again).",
                named::<UsageRefused>())),
        op(Get, "/v1/tenants/{tenant}/usage", "getTenantUsage", USAGE,
            "The tenant's metered usage this period so far")
            .describe("One entry per subscription on a metered plan: the meter's quantity this \
                calendar month (UTC), the included quantity, whether a hard limit is reached, \
                billable units and their cost so far.")
            .caller(TenantReader)
            .reply(json(200, "The period's usage.", named::<TenantUsage>())),
        op(Get, "/v1/tenants/{tenant}/credits", "getTenantCredits", USAGE,
            "The tenant's prepaid credits")
            .describe("The balance usable now per currency, every grant with what it has left and \
                its expiry, and what metered usage consumed. At each period's end the usage bill \
                is paid from the grants that expire first (expired grants never, only grants in \
                the plan's currency); only the remainder is invoiced.")
            .caller(TenantReader)
            .reply(json(200, "The tenant's credits.", named::<CreditsView>())),
        // ---- console ----
        op(Get, "/v1/admin/inbox", "getInbox", CONSOLE, "What waits for a superadmin")
            .caller(Superadmin)
            .query(<InboxQuery as JsonSchema>::json_schema)
            .tagged(named::<InboxList>(), "Approval requests, cancellations to confirm and \
                provisioning failures, oldest first."),
        op(Get, "/v1/admin/tenants/{tenant}", "getTenantSupport", CONSOLE,
            "A tenant as support sees it")
            .caller(Superadmin)
            .tagged(named::<SupportView>(), "Subscriptions with HubSpot ids, conditions and \
                transitions; entitlements; the last audit's drift findings.")
            .reply(error(404, "There is no such tenant.")),
        op(Post, "/v1/admin/tenants/{tenant}/subscriptions/{name}/actions", "takeAction", CONSOLE,
            "Take a step of the approval ladder, as the caller")
            .describe("With `Idempotency-Key`, a retried click takes the step once.")
            .caller(Superadmin)
            .header(IdempotencyKey)
            .body(named::<ActionRequest>(), true)
            .reply(json(201, "The SubscriptionAction, created as the caller.",
                named::<CreatedAction>()))
            .reply(error(404, "The tenant has no such subscription."))
            .reply(error(409, "The action does not fit the subscription's phase \
                (`ActionDoesNotFit`)."))
            .reply(error(422, "The body is not valid, or the Idempotency-Key was used for \
                another action.")),
        op(Get, "/v1/admin/tenants/{tenant}/credits", "getTenantCreditLedger", CONSOLE,
            "A tenant's credit ledger")
            .describe("As the tenant sees it, plus who made each grant.")
            .caller(Superadmin)
            .reply(json(200, "The tenant's credits.", named::<CreditsView>())),
        op(Post, "/v1/admin/tenants/{tenant}/credits", "grantCredits", CONSOLE,
            "Grant prepaid credits to a tenant")
            .describe("An amount in a currency with an expiry, recorded in the usage store's \
                ledger (never changed afterwards). The Idempotency-Key is the grant's id: a \
                retried request grants once.")
            .caller(Superadmin)
            .header(IdempotencyKey)
            .body(named::<GrantRequest>(), true)
            .reply(json(201, "Granted (or granted before under this Idempotency-Key): the \
                tenant's credits.", named::<CreditsView>()))
            .reply(error(404, "There is no such tenant."))
            .reply(error(422, "The body is not valid (`InvalidGrant`; `field` names the field), \
                or the Idempotency-Key was used for another grant.")),
        op(Get, "/v1/health/tenants", "getTenantHealth", CONSOLE,
            "Every tenant's health, with a verdict")
            .describe("Per tenant: add-ons in service, entitlement checks per feature (adopted \
                when checked within the HealthPolicy's adoption window), usage against included \
                quantities this period, payment problems and cancellations within its history \
                window, and the verdict (AtRisk, UpsellReady, Healthy) its thresholds give, with \
                the reasons. CSV with `format=csv` or `Accept: text/csv`. A bad filter is a 400 \
                naming it in `field`.")
            .caller(Superadmin)
            .query(<HealthFilter as JsonSchema>::json_schema)
            .reply(json(200, "The tenants' health (or CSV, one row per tenant).",
                named::<HealthReport>()))
            .reply(error(400, "A filter is not valid (`InvalidParameter`; `field` names the parameter).")),
        op(Get, "/v1/revenue/mrr", "getMrr", CONSOLE,
            "Monthly recurring revenue by listing, plan and currency")
            .describe("Active subscriptions and those cancelling at the period's end, at their \
                billed plan's price per month (a yearly price counts a twelfth, a per-unit price \
                times the quantity); totals per currency. CSV with `format=csv` or \
                `Accept: text/csv`.")
            .caller(Superadmin)
            .query(<RevenueFilter as JsonSchema>::json_schema)
            .reply(json(200, "The MRR (or CSV, one row per listing, plan and currency).",
                named::<RevenueReport>()))
            .reply(error(400, "A filter is not valid (`InvalidParameter`; `field` names the parameter).")),
        // ---- service ----
        op(Get, "/openapi.json", "getOpenApiDocument", SERVICE, "This document")
            .reply(json(200, "The OpenAPI document.",
                |_| schemars::json_schema!({"type": "object"}))),
        op(Get, "/metrics", "getMetrics", SERVICE, "Prometheus metrics of this replica")
            .describe("Requests by route template, method and status class, and their \
                latency (OpenMetrics text).")
            .reply(reply(200, "The metrics.", Content::Text)),
        op(Get, "/healthz", "getHealth", SERVICE, "Liveness: the process answers")
            .reply(reply(200, "Alive.", Content::Text)),
        op(Get, "/readyz", "getReadiness", SERVICE, "Readiness: the caches have synced")
            .reply(reply(200, "Ready.", Content::Text))
            .reply(reply(503, "Not ready yet.", Content::Text)),
    ]
}
