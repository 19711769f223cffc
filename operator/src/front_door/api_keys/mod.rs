//! Backend API keys: what a product server sends as `X-API-Key` (the OFREP spec's second
//! scheme) instead of a Kubernetes token. A key reads one tenant and nothing else.
//!
//! A key is `mk_<tenant>_<id>_<secret>`: the tenant and id name the Secret that holds its hash
//! (`marketplace-api-key-<id>` in `tenant-<tenant>`, labelled `marketplace.dev/api-key=true`), so
//! a lookup is one cache read, never a scan. Only the SHA-256 of the whole key is stored, so the
//! hash of a key copied into another tenant's namespace matches nothing there. The secret is 256
//! random bits, so a fast hash is enough (there is nothing to brute-force). Rotation: create a
//! new key, move the servers, delete the old Secret; any number of keys are valid at once.
//!
//! This module is the pure part (format, hash, the Secret's shape, the verdict);
//! [`store`] watches the Secrets and [`secrets`] writes them.

pub mod secrets;
pub mod store;

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::text::hex;

/// The label every key Secret carries; the API watches Secrets with it (and only those).
pub const API_KEY_LABEL: &str = "marketplace.dev/api-key";
/// The label selector of [`API_KEY_LABEL`].
pub const API_KEY_SELECTOR: &str = "marketplace.dev/api-key=true";
/// The Secrets' `type`, so `kubectl get secrets` says what they are.
pub const API_KEY_SECRET_TYPE: &str = "marketplace.dev/api-key";
/// The request header that carries a key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Data keys of a key Secret.
pub const HASH_FIELD: &str = "hash";
pub const NAME_FIELD: &str = "name";
pub const CREATED_FIELD: &str = "created";
pub const EXPIRES_FIELD: &str = "expires";

const PREFIX: &str = "mk";
/// Hex characters of the id (4 random bytes) and of the secret (32 random bytes).
const ID_LEN: usize = 8;
const SECRET_LEN: usize = 64;
const HASH_PREFIX: &str = "sha256:";

/// The parts of a well-formed key; nothing about it is checked yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub tenant: &'a str,
    pub id: &'a str,
    /// The whole key, as hashed.
    pub text: &'a str,
}

/// The tenant a verified key reads, and which key it was (for logs and the caller's name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyScope {
    pub tenant: String,
    pub id: String,
}

/// What a key Secret says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// `sha256:<hex>` of the whole key.
    pub hash: String,
    pub name: String,
    pub created: Option<Timestamp>,
    pub expires: Option<Timestamp>,
}

/// Why a key is refused; every one is a 401 to the caller, the difference is for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRejection {
    Malformed,
    /// No Secret for the tenant and id (never created, or revoked by deleting it).
    Unknown,
    /// A Secret that is not a key's (no hash, or an unknown algorithm).
    BadSecret,
    WrongSecret,
    Expired,
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A tenant name as the Tenant CRD allows it (a DNS label of at most 56 characters): it has no
/// `_`, which is what makes the key's parts unambiguous.
fn is_tenant_name(s: &str) -> bool {
    (1..=56).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Splits `mk_<tenant>_<id>_<secret>`; `None` for anything else.
pub fn parse_key(text: &str) -> Option<PresentedKey<'_>> {
    let mut parts = text.split('_');
    let (prefix, tenant, id, secret) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let well_formed = parts.next().is_none()
        && prefix == PREFIX
        && is_tenant_name(tenant)
        && is_lower_hex(id, ID_LEN)
        && is_lower_hex(secret, SECRET_LEN);
    well_formed.then_some(PresentedKey { tenant, id, text })
}

/// Builds a key from its tenant and random bytes (id: 4, secret: 32).
pub fn format_key(tenant: &str, id_bytes: &[u8; 4], secret_bytes: &[u8; 32]) -> String {
    format!("{PREFIX}_{tenant}_{}_{}", hex(id_bytes), hex(secret_bytes))
}

/// What a key Secret stores: `sha256:<hex>` of the whole key.
pub fn key_hash(text: &str) -> String {
    format!("{HASH_PREFIX}{}", hex(&Sha256::digest(text.as_bytes())))
}

const SECRET_NAME_PREFIX: &str = "marketplace-api-key-";

/// The name of the Secret of key `id`.
pub fn secret_name(id: &str) -> String {
    format!("{SECRET_NAME_PREFIX}{id}")
}

/// The key id a Secret's name carries.
pub fn key_id(secret_name: &str) -> Option<&str> {
    secret_name
        .strip_prefix(SECRET_NAME_PREFIX)
        .filter(|id| is_lower_hex(id, ID_LEN))
}

/// A key id as `--id` gives it, checked.
pub fn check_key_id(id: &str) -> Result<(), String> {
    if is_lower_hex(id, ID_LEN) {
        Ok(())
    } else {
        Err(format!(
            "--id {id:?}: a key id is {ID_LEN} lowercase hex characters \
             (`marketplace api-key list` shows them)"
        ))
    }
}

/// Reads a key Secret; `None` when it has no hash (not a key's Secret).
pub fn stored_key(secret: &Secret) -> Option<StoredKey> {
    let data = secret.data.as_ref()?;
    let text = |field: &str| {
        data.get(field)
            .and_then(|v| std::str::from_utf8(&v.0).ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let time = |field: &str| text(field).and_then(|v| v.parse::<Timestamp>().ok());
    Some(StoredKey {
        hash: text(HASH_FIELD)?.to_string(),
        name: text(NAME_FIELD).unwrap_or_default().to_string(),
        created: time(CREATED_FIELD),
        expires: time(EXPIRES_FIELD),
    })
}

/// The Secret's data for a new key (its hash, never the key).
pub fn secret_data(
    key: &str,
    name: &str,
    created: Timestamp,
    expires: Option<Timestamp>,
) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([
        (HASH_FIELD.to_string(), key_hash(key)),
        (NAME_FIELD.to_string(), name.to_string()),
        (CREATED_FIELD.to_string(), created.to_string()),
    ]);
    if let Some(expires) = expires {
        data.insert(EXPIRES_FIELD.to_string(), expires.to_string());
    }
    data
}

/// The verdict on a presented key, given the Secret its tenant and id name (if any) at `now`.
/// Hashes are compared in constant time.
pub fn verify(
    presented: &PresentedKey<'_>,
    stored: Option<&StoredKey>,
    now: Timestamp,
) -> Result<KeyScope, KeyRejection> {
    let stored = stored.ok_or(KeyRejection::Unknown)?;
    if !stored.hash.starts_with(HASH_PREFIX) {
        return Err(KeyRejection::BadSecret);
    }
    let expected = stored.hash.as_bytes();
    let given = key_hash(presented.text);
    let matches = expected.len() == given.len() && bool::from(expected.ct_eq(given.as_bytes()));
    if !matches {
        return Err(KeyRejection::WrongSecret);
    }
    if stored.expires.is_some_and(|at| at <= now) {
        return Err(KeyRejection::Expired);
    }
    Ok(KeyScope {
        tenant: presented.tenant.to_string(),
        id: presented.id.to_string(),
    })
}

/// A key's display name: what a person typed, checked.
pub fn check_key_name(name: &str) -> Result<(), String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(format!(
            "--name {name:?}: give the key a name of 1 to 100 characters without control \
             characters, e.g. the server that will use it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
