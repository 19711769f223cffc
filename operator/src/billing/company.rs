//! The tenant-level HubSpot record (contract §1.5, §1.8 points 3 and 4): the tenant's company,
//! upserted by its unique `mkt_tenant_id`, and its billing contact, upserted by `email` and
//! associated with the company. The Tenant reconciler calls [`HubSpotClient::ensure_company`] and
//! stores [`CompanyRecord::company_id`] in `Tenant.status.hubspotCompanyId`.
//!
//! `ensure_billing_record` upserts the same company by the same key with
//! [`company_properties`] (once per tenant, cached: `tenant_company_id`); it writes only `name`,
//! so it never undoes the segment and region written here.
//!
//! Calls, once the bootstrap has run: a new tenant with a billing contact costs 4 (company
//! upsert, contact read by email, contact upsert, association PUT); an unchanged one costs 2
//! (company upsert, contact read). The first call on a portal adds 3 once (see
//! [`SEGMENT_PROPERTY`]). Without a billing contact it is the company upsert alone.

use super::api::{Obj, assoc};
use super::bootstrap::PropertySpec;
use super::client::HubSpotClient;
use super::error::{HubSpotError, Result};
use serde_json::json;
use std::collections::BTreeMap;

/// The company's unique key (contract §1.8; created unique by the bootstrap, contract §2.6
/// "Preconditions").
pub const TENANT_ID_PROPERTY: &str = "mkt_tenant_id";

/// Company property holding the tenant's market segment. HubSpot has no standard property for
/// it, so it is a plain custom property. [`HubSpotClient::ensure_company`] creates it (and
/// [`REGION_PROPERTY`]) the first time HubSpot answers `PROPERTY_DOESNT_EXIST` (contract §4),
/// then repeats the upsert: 3 extra calls, once per portal.
pub const SEGMENT_PROPERTY: &str = "mkt_segment";
/// Company property holding the tenant's data-residency region (plain custom property; see
/// [`SEGMENT_PROPERTY`]).
pub const REGION_PROPERTY: &str = "mkt_region";

/// The custom company properties only `ensure_company` writes.
const TENANT_PROPERTIES: &[PropertySpec] = &[
    PropertySpec {
        object: Obj::Companies,
        name: SEGMENT_PROPERTY,
        label: "Marketplace segment",
        group: "companyinformation",
        unique: false,
    },
    PropertySpec {
        object: Obj::Companies,
        name: REGION_PROPERTY,
        label: "Marketplace region",
        group: "companyinformation",
        unique: false,
    },
];

/// Contacts are upserted and read by `email`, their built-in unique key (contract §1.5, §2.3).
const CONTACT_ID_PROPERTY: &str = "email";
/// Contact properties read to decide whether the contact needs a write.
const CONTACT_PROPS: &[&str] = &["email", "firstname", "lastname"];
/// Contact → company labels sent on the association PUT. It replaces the pair's labels
/// (contract §1.7), so both are sent, as for deals (`HubSpotConfig::deal_company_types`).
const CONTACT_COMPANY_TYPES: &[u32] =
    &[assoc::CONTACT_TO_COMPANY_PRIMARY, assoc::CONTACT_TO_COMPANY];

/// What the tenant's HubSpot record must say. Plain data: the operator maps its `Tenant` to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyRequest {
    /// Unique per tenant: the company's `mkt_tenant_id` (contract §1.8). Must be the same value
    /// as [`BillingRequest::tenant_id`](super::BillingRequest::tenant_id), so both upserts
    /// address one company.
    pub tenant_id: String,
    /// The company `name`, e.g. the tenant's display name.
    pub name: String,
    /// Market segment, written to [`SEGMENT_PROPERTY`]; `None` clears it.
    pub segment: Option<String>,
    /// Data-residency region, written to [`REGION_PROPERTY`]; `None` clears it.
    pub region: Option<String>,
    /// Who receives invoices. `None` leaves the company's contacts alone.
    pub billing_contact: Option<ContactRequest>,
}

/// A tenant's billing contact: a HubSpot contact, found by `email` (contract §1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRequest {
    /// The contact's `email`, its unique key in HubSpot (compared case-insensitively there).
    pub email: String,
    /// Full name. The last word becomes `lastname`, the words before it `firstname`; a single
    /// word is a `firstname` with an empty `lastname` (see [`ContactRequest::split_name`]).
    pub name: String,
}

/// Something [`HubSpotClient::ensure_company`] found out of place and fixed; the operator turns
/// these into Events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompanyRepair {
    /// The billing contact already existed in HubSpot but was not associated with the company:
    /// created by someone else, association removed in HubSpot, or an earlier attempt stopped
    /// between the contact upsert and the association. The association was written.
    LinkedExistingContact { contact_id: String },
}

/// The tenant's HubSpot ids. Store `company_id` in `Tenant.status.hubspotCompanyId`; as with
/// the billing record, correctness never depends on stored ids (contract §2.6 step 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyRecord {
    pub company_id: String,
    /// The billing contact's id, when the request named one.
    pub contact_id: Option<String>,
    pub repairs: Vec<CompanyRepair>,
}

fn invalid<T>(message: String) -> Result<T> {
    Err(HubSpotError::Invalid(message))
}

impl CompanyRequest {
    /// Checks the request before any call; the message names the offending field.
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [("tenant_id", &self.tenant_id), ("name", &self.name)] {
            if value.trim().is_empty() {
                return invalid(format!("{field} is empty"));
            }
        }
        for (field, value) in [("segment", &self.segment), ("region", &self.region)] {
            if value.as_ref().is_some_and(|v| v.trim().is_empty()) {
                return invalid(format!("{field} is empty (leave it out instead)"));
            }
        }
        if let Some(contact) = &self.billing_contact {
            contact.validate()?;
        }
        Ok(())
    }
}

impl ContactRequest {
    /// Checks the contact before any call; the message names the offending field.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return invalid("billing_contact.name is empty".into());
        }
        if !is_email(&self.email) {
            return invalid(format!(
                "billing_contact.email {:?} is not an e-mail address (local@domain.tld)",
                self.email
            ));
        }
        Ok(())
    }

    /// `(firstname, lastname)`: the last word is the last name, the words before it the first
    /// name; a single word is a first name. Whitespace runs collapse to one space.
    pub fn split_name(&self) -> (String, String) {
        let words: Vec<&str> = self.name.split_whitespace().collect();
        match words.as_slice() {
            [] => (String::new(), String::new()),
            [one] => ((*one).to_string(), String::new()),
            [first @ .., last] => (first.join(" "), (*last).to_string()),
        }
    }
}

/// A plain `local@domain.tld` address, as the Tenant CRD's pattern (`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
/// plus the RFC 5321 lengths and no empty domain labels.
pub fn is_email(s: &str) -> bool {
    if !(3..=254).contains(&s.len()) || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

/// The company properties every upsert of the tenant's company writes (contract §1.5: a company
/// needs `name` or `domain`). Shared by `ensure_company` and `ensure_billing_record`.
pub(crate) fn company_properties(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("name".to_string(), name.to_string())])
}

impl HubSpotClient {
    /// Makes sure the tenant's company exists with the requested properties and, when given,
    /// that the billing contact exists with its name and is associated with the company
    /// (contract §1.8 points 3 and 4). Idempotent and safe to call again after any error: every
    /// write is an upsert by a unique key or an association PUT, never a plain create.
    ///
    /// A billing contact whose email changed is a different contact: the new one is upserted and
    /// associated; the old one keeps its association (people in HubSpot may rely on it).
    pub async fn ensure_company(&self, req: &CompanyRequest) -> Result<CompanyRecord> {
        req.validate()?;
        let company_id = self.upsert_tenant_company(req).await?;
        self.remember_company(&req.tenant_id, &req.name, &company_id);
        let mut repairs = Vec::new();
        let contact_id = match &req.billing_contact {
            Some(contact) => Some(
                self.ensure_contact(&company_id, contact, &mut repairs)
                    .await?,
            ),
            None => None,
        };
        Ok(CompanyRecord {
            company_id,
            contact_id,
            repairs,
        })
    }

    /// contract §2.6 step 1 for `ensure_billing_record`: the tenant's company id, upserted once
    /// per tenant (coalesced with other tenants' upserts) and then reused for
    /// [`HubSpotConfig::company_cache_ttl`](super::HubSpotConfig::company_cache_ttl), as long as
    /// the name it was written with is still the tenant's.
    pub(crate) async fn tenant_company_id(&self, tenant_id: &str, name: &str) -> Result<String> {
        let ttl = self.config().company_cache_ttl;
        let cached = self
            .inner
            .companies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant_id)
            .filter(|(written, _, at)| written == name && at.elapsed() < ttl)
            .map(|(_, id, _)| id.clone());
        if let Some(id) = cached {
            return Ok(id);
        }
        let (id, _) = self
            .upsert_batched(
                Obj::Companies,
                TENANT_ID_PROPERTY,
                tenant_id,
                company_properties(name),
            )
            .await?;
        self.remember_company(tenant_id, name, &id);
        Ok(id)
    }

    fn remember_company(&self, tenant_id: &str, name: &str, company_id: &str) {
        self.inner
            .companies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                tenant_id.to_string(),
                (
                    name.to_string(),
                    company_id.to_string(),
                    tokio::time::Instant::now(),
                ),
            );
    }

    /// Drops the tenant's cached company id, so the next ensure upserts it again.
    pub(crate) fn forget_company(&self, tenant_id: &str) {
        self.inner
            .companies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant_id);
    }

    /// Upserts the tenant's company by its unique `mkt_tenant_id` (contract §2.6 step 1) and
    /// returns its id. Repeating it converges (contract §2.3).
    pub(crate) async fn upsert_company(
        &self,
        tenant_id: &str,
        props: &BTreeMap<String, String>,
    ) -> Result<String> {
        let (id, _) = self
            .api()
            .upsert_unique(Obj::Companies, TENANT_ID_PROPERTY, tenant_id, props)
            .await?;
        Ok(id)
    }

    /// The company upsert with segment and region; creates their properties on first use.
    async fn upsert_tenant_company(&self, req: &CompanyRequest) -> Result<String> {
        let mut props = company_properties(&req.name);
        props.insert(
            SEGMENT_PROPERTY.into(),
            req.segment.clone().unwrap_or_default(),
        );
        props.insert(
            REGION_PROPERTY.into(),
            req.region.clone().unwrap_or_default(),
        );
        match self.upsert_company(&req.tenant_id, &props).await {
            // contract §4: 400 `PROPERTY_DOESNT_EXIST`; the upsert wrote nothing.
            Err(HubSpotError::Validation { body, .. }) if mentions_missing_property(&body) => {
                for spec in TENANT_PROPERTIES {
                    self.create_plain_property(spec).await?;
                }
                // A second refusal (e.g. `mkt_tenant_id` itself missing: no bootstrap) surfaces.
                self.upsert_company(&req.tenant_id, &props).await
            }
            other => other,
        }
    }

    /// `POST` a plain custom property; one that exists already (409) is fine.
    async fn create_plain_property(&self, spec: &PropertySpec) -> Result<()> {
        let def = json!({
            "name": spec.name,
            "label": spec.label,
            "type": "string",
            "fieldType": "text",
            "groupName": spec.group,
            "hasUniqueValue": spec.unique,
            "description": "Managed by the marketplace operator; do not edit.",
        });
        match self.api().create_property(spec.object, def).await {
            Ok(()) => {
                tracing::info!(property = %format!("{}.{}", spec.object.path(), spec.name), "created HubSpot property");
                Ok(())
            }
            Err(HubSpotError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The billing contact: one read by email tells whether its name and association are
    /// already right; only what is missing is written. Returns the contact id.
    async fn ensure_contact(
        &self,
        company_id: &str,
        contact: &ContactRequest,
        repairs: &mut Vec<CompanyRepair>,
    ) -> Result<String> {
        let api = self.api();
        let (firstname, lastname) = contact.split_name();
        let found = api
            .read_by_unique(
                Obj::Contacts,
                CONTACT_ID_PROPERTY,
                &contact.email,
                CONTACT_PROPS,
                &[Obj::Companies],
            )
            .await?;
        let linked_id = found
            .as_ref()
            .filter(|c| {
                c.associated(Obj::Companies.assoc_keys())
                    .iter()
                    .any(|id| id == company_id)
            })
            .map(|c| c.id.clone());
        let (contact_id, existed) = match &found {
            Some(c)
                if c.prop("firstname").unwrap_or_default() == firstname
                    && c.prop("lastname").unwrap_or_default() == lastname =>
            {
                (c.id.clone(), true)
            }
            _ => {
                let props = BTreeMap::from([
                    ("firstname".to_string(), firstname),
                    ("lastname".to_string(), lastname),
                ]);
                let (id, new) = api
                    .upsert_unique(Obj::Contacts, CONTACT_ID_PROPERTY, &contact.email, &props)
                    .await?;
                (id, !new)
            }
        };
        // Already associated: no PUT, which would also replace labels people added (§1.7).
        if linked_id.as_deref() != Some(contact_id.as_str()) {
            api.associate(
                Obj::Contacts,
                &contact_id,
                Obj::Companies,
                company_id,
                CONTACT_COMPANY_TYPES,
            )
            .await?;
            if existed {
                tracing::info!(contact = %contact_id, company = company_id, "associated an existing HubSpot contact with the tenant's company");
                repairs.push(CompanyRepair::LinkedExistingContact {
                    contact_id: contact_id.clone(),
                });
            }
        }
        Ok(contact_id)
    }
}

/// contract §4: an unknown property is a 400 with `PROPERTY_DOESNT_EXIST` in `errors[].code`
/// (and, in the long-standing format, in the message).
fn mentions_missing_property(body: &super::error::ApiErrorBody) -> bool {
    const CODE: &str = "PROPERTY_DOESNT_EXIST";
    body.codes.iter().any(|c| c == CODE)
        || body.message.as_deref().is_some_and(|m| m.contains(CODE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(email: &str, name: &str) -> ContactRequest {
        ContactRequest {
            email: email.into(),
            name: name.into(),
        }
    }

    fn request() -> CompanyRequest {
        CompanyRequest {
            tenant_id: "acme".into(),
            name: "Acme Logistics".into(),
            segment: Some("smb".into()),
            region: None,
            billing_contact: Some(contact("ada@acme.example", "Ada Lovelace")),
        }
    }

    #[test]
    fn names_split_on_the_last_word() {
        let split = |n: &str| contact("a@b.c", n).split_name();
        assert_eq!(split("Ada Lovelace"), ("Ada".into(), "Lovelace".into()));
        assert_eq!(
            split("  Jean  Claude Van   Damme "),
            ("Jean Claude Van".into(), "Damme".into())
        );
        assert_eq!(split("Cher"), ("Cher".into(), String::new()));
        assert_eq!(split("   "), (String::new(), String::new()));
    }

    #[test]
    fn emails_follow_the_tenant_pattern() {
        for ok in [
            "ada@acme.example",
            "a.b+tag@sub.acme.example",
            "A@B.CO",
            "x/y@z.io",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        let long_local = format!("{}@x.io", "a".repeat(65));
        for bad in [
            "",
            "ada",
            "ada@",
            "@acme.example",
            "ada@acme",
            "ada@@acme.example",
            "a@b@c.io",
            "ada @acme.example",
            "ada@acme..example",
            "ada@.acme.example",
            "ada@acme.example.",
            "ada@acme\n.example",
            long_local.as_str(),
        ] {
            assert!(!is_email(bad), "{bad:?}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert!(request().validate().is_ok());
        let msg = |r: CompanyRequest| match r.validate() {
            Err(HubSpotError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        };
        let mut r = request();
        r.tenant_id = " ".into();
        assert!(msg(r).contains("tenant_id"));
        let mut r = request();
        r.name = String::new();
        assert!(msg(r).starts_with("name"));
        let mut r = request();
        r.region = Some(String::new());
        assert!(msg(r).contains("region"));
        let mut r = request();
        r.billing_contact = Some(contact("not-an-email", "Ada"));
        assert!(msg(r).contains("billing_contact.email"));
        let mut r = request();
        r.billing_contact = Some(contact("ada@acme.example", " "));
        assert!(msg(r).contains("billing_contact.name"));
    }

    #[test]
    fn company_properties_carry_the_name() {
        assert_eq!(
            company_properties("Acme"),
            BTreeMap::from([("name".to_string(), "Acme".to_string())])
        );
    }
}
