//! Creating, listing and revoking keys: the Secrets `marketplace api-key` writes. The key itself
//! is returned once and never stored.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};

use super::{
    API_KEY_LABEL, API_KEY_SECRET_TYPE, API_KEY_SELECTOR, check_key_id, check_key_name, format_key,
    key_id, secret_data, secret_name, stored_key,
};
use crate::api::tenant::Tenant;
use crate::controllers::tenant_rbac::{TENANT_LABEL, namespace_name};

/// A new key: shown once.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub key: String,
    pub id: String,
    pub namespace: String,
    pub secret: String,
}

/// A key as `list` shows it (never its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySummary {
    pub id: String,
    pub name: String,
    pub created: Option<Timestamp>,
    pub expires: Option<Timestamp>,
}

/// Why a key could not be created, listed or revoked.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("tenant {0:?} does not exist (kubectl get tenants lists them)")]
    TenantNotFound(String),
    #[error("tenant {tenant:?} has no API key with id {id:?}")]
    KeyNotFound { tenant: String, id: String },
    #[error("the operating system gave no random bytes: {0}")]
    Random(String),
    #[error("{what}: {source}")]
    Apiserver {
        what: String,
        #[source]
        source: kube::Error,
    },
}

fn apiserver(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ApiKeyError {
    let what = what.into();
    move |source| ApiKeyError::Apiserver { what, source }
}

fn random<const N: usize>() -> Result<[u8; N], ApiKeyError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| ApiKeyError::Random(e.to_string()))?;
    Ok(bytes)
}

async fn require_tenant(client: &Client, tenant: &str) -> Result<(), ApiKeyError> {
    Api::<Tenant>::all(client.clone())
        .get_opt(tenant)
        .await
        .map_err(apiserver(format!("reading Tenant {tenant}")))?
        .map(|_| ())
        .ok_or_else(|| ApiKeyError::TenantNotFound(tenant.to_string()))
}

/// Creates a key that reads `tenant` (until `expires`, if given): writes its Secret into the
/// tenant's namespace and returns the key, which exists nowhere else.
pub async fn create_api_key(
    client: &Client,
    tenant: &str,
    name: &str,
    expires: Option<Timestamp>,
    now: Timestamp,
) -> Result<IssuedKey, ApiKeyError> {
    check_key_name(name).map_err(ApiKeyError::Invalid)?;
    if let Some(at) = expires.filter(|at| *at <= now) {
        return Err(ApiKeyError::Invalid(format!(
            "the expiry {at} is not in the future; give a later one"
        )));
    }
    require_tenant(client, tenant).await?;
    let namespace = namespace_name(tenant);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let key = format_key(tenant, &random()?, &random()?);
    let id = super::parse_key(&key)
        .map(|k| k.id.to_string())
        .ok_or_else(|| {
            ApiKeyError::Invalid(format!(
                "tenant {tenant:?}: not a tenant name a key can carry"
            ))
        })?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&id)),
            namespace: Some(namespace.clone()),
            labels: Some(BTreeMap::from([
                (API_KEY_LABEL.to_string(), "true".to_string()),
                (TENANT_LABEL.to_string(), tenant.to_string()),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some(API_KEY_SECRET_TYPE.to_string()),
        string_data: Some(secret_data(&key, name.trim(), now, expires)),
        ..Secret::default()
    };
    // A fresh random id that is taken is refused (409), never overwritten.
    let created = secrets
        .create(&PostParams::default(), &secret)
        .await
        .map_err(apiserver(format!(
            "creating Secret {namespace}/{}",
            secret_name(&id)
        )))?;
    Ok(IssuedKey {
        key,
        id,
        namespace,
        secret: created.metadata.name.unwrap_or_default(),
    })
}

/// The keys of `tenant`, oldest first.
pub async fn list_api_keys(client: &Client, tenant: &str) -> Result<Vec<KeySummary>, ApiKeyError> {
    require_tenant(client, tenant).await?;
    let namespace = namespace_name(tenant);
    let secrets = Api::<Secret>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default().labels(API_KEY_SELECTOR))
        .await
        .map_err(apiserver(format!("listing Secrets in {namespace}")))?;
    let mut keys: Vec<KeySummary> = secrets
        .items
        .iter()
        .filter_map(|secret| {
            let stored = stored_key(secret)?;
            let id = key_id(secret.metadata.name.as_deref()?)?;
            Some(KeySummary {
                id: id.to_string(),
                name: stored.name,
                created: stored.created,
                expires: stored.expires,
            })
        })
        .collect();
    keys.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(keys)
}

/// Revokes key `id` of `tenant`: deletes its Secret (every replica stops accepting it as soon
/// as its watch sees the deletion).
pub async fn revoke_api_key(client: &Client, tenant: &str, id: &str) -> Result<(), ApiKeyError> {
    check_key_id(id).map_err(ApiKeyError::Invalid)?;
    let namespace = namespace_name(tenant);
    let name = secret_name(id);
    match Api::<Secret>::namespaced(client.clone(), &namespace)
        .delete(&name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(ApiKeyError::KeyNotFound {
            tenant: tenant.to_string(),
            id: id.to_string(),
        }),
        Err(e) => Err(apiserver(format!("deleting Secret {namespace}/{name}"))(e)),
    }
}
