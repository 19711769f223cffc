//! The webhook's serving certificate when the operator manages it itself: a private CA and a
//! leaf signed by it, both ECDSA P-256, kept in one Secret (`ca.crt`, `ca.key`, `tls.crt`,
//! `tls.key`) and rotated before they expire. [`plan_rotation`] decides (pure, time as an
//! argument); [`apply_step`] makes the keys.
//!
//! Rotation never leaves the apiserver with a certificate it does not trust: a new CA is first
//! added to the trust bundle (`ca.crt`, which becomes the webhook's `caBundle`) next to the old
//! one, and only once the `caBundle` carries it is a leaf signed by it served. Old CAs leave the
//! bundle when they expire.

use std::net::IpAddr;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// Secret keys.
pub const CA_CERT_KEY: &str = "ca.crt";
pub const CA_KEY_KEY: &str = "ca.key";
pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_KEY_KEY: &str = "tls.key";

/// Common name prefix of the CAs; the creation time follows (`...@<unix seconds>`), so each CA
/// has its own subject and a leaf's issuer tells which CA signed it.
const CA_NAME: &str = "marketplace-operator-admission-ca";

/// How long certificates live. Each is renewed after two thirds of its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertLifetimes {
    pub ca: Duration,
    pub leaf: Duration,
}

impl Default for CertLifetimes {
    fn default() -> Self {
        CertLifetimes {
            ca: Duration::from_secs(365 * 24 * 3600),
            leaf: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// The names the serving certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServingNames {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl ServingNames {
    /// The DNS names of Service `service` in `namespace`, as the apiserver may call it.
    pub fn for_service(service: &str, namespace: &str) -> ServingNames {
        ServingNames {
            dns: vec![
                format!("{service}.{namespace}.svc"),
                format!("{service}.{namespace}.svc.cluster.local"),
            ],
            ips: Vec::new(),
        }
    }
}

/// PEM texts as stored in the Secret. `ca_cert` is the trust bundle: the current CA first, then
/// older CAs still valid.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Material {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    pub names: ServingNames,
    pub der: Vec<u8>,
}

impl CertFacts {
    /// Past two thirds of its lifetime.
    fn due(&self, now: Timestamp) -> bool {
        let life = self.not_after.duration_since(self.not_before);
        now >= self.not_before + life * 2 / 3
    }

    fn expired(&self, now: Timestamp) -> bool {
        now >= self.not_after
    }
}

/// Why PEM material cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{0}: not a PEM certificate: {1}")]
    Parse(&'static str, String),
    #[error("{0}: no certificate")]
    Empty(&'static str),
    #[error("{0}: {1}")]
    Key(&'static str, String),
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Every certificate in a PEM text, in order.
pub fn parse_certs(what: &'static str, pem: &str) -> Result<Vec<CertFacts>, CertError> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| CertError::Parse(what, e.to_string()))?;
        let cert = block
            .parse_x509()
            .map_err(|e| CertError::Parse(what, e.to_string()))?;
        let at =
            |t: i64| Timestamp::from_second(t).map_err(|e| CertError::Parse(what, e.to_string()));
        let mut names = ServingNames::default();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => names.dns.push((*dns).to_string()),
                    GeneralName::IPAddress(bytes) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                            names.ips.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                            names.ips.push(IpAddr::from(v6));
                        }
                    }
                    _ => {}
                }
            }
        }
        out.push(CertFacts {
            not_before: at(cert.validity().not_before.timestamp())?,
            not_after: at(cert.validity().not_after.timestamp())?,
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
            names,
            der: block.contents.clone(),
        });
    }
    if out.is_empty() {
        return Err(CertError::Empty(what));
    }
    Ok(out)
}

/// Whether every certificate of `wanted` (DER) is in the PEM `bundle`.
pub fn bundle_contains(bundle: &[u8], wanted: &[u8]) -> bool {
    Pem::iter_from_buffer(bundle)
        .filter_map(Result::ok)
        .any(|block| block.contents == wanted)
}

/// The Secret's material, read back.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The CA bundle, current first; empty when the material is missing or unusable.
    pub cas: Vec<CertFacts>,
    pub leaf: Option<CertFacts>,
}

impl Observed {
    /// Parses `material`; anything unreadable counts as absent (and is replaced).
    pub fn of(material: Option<&Material>) -> Observed {
        let Some(m) = material else {
            return Observed {
                cas: Vec::new(),
                leaf: None,
            };
        };
        let key_ok = KeyPair::from_pem(&m.ca_key).is_ok();
        let cas = parse_certs(CA_CERT_KEY, &m.ca_cert)
            .ok()
            .filter(|_| key_ok)
            .unwrap_or_default();
        let leaf = parse_certs(TLS_CERT_KEY, &m.cert)
            .ok()
            .filter(|_| KeyPair::from_pem(&m.key).is_ok())
            .and_then(|certs| certs.into_iter().next());
        Observed { cas, leaf }
    }
}

/// What to do with the Secret's material now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    /// Nothing: everything is valid and not yet due.
    Keep,
    /// No usable CA: a new CA and leaf, the bundle holding only the new CA.
    Fresh,
    /// The CA is due: a new CA joins the bundle in front; the leaf stays until the new CA is
    /// trusted (unless it is unusable already, then a leaf from the new CA at once).
    NewCa { new_leaf: bool },
    /// A new leaf from the current CA.
    NewLeaf,
    /// Drop expired CAs from the bundle.
    Prune,
}

/// Decides the next rotation step. `trusted` tells whether the webhook's `caBundle` already
/// carries the current CA (true when no webhook configuration is kept up to date).
pub fn plan_rotation(
    observed: &Observed,
    names: &ServingNames,
    trusted: bool,
    now: Timestamp,
) -> RotationStep {
    let Some(ca) = observed.cas.first().filter(|ca| !ca.expired(now)) else {
        return RotationStep::Fresh;
    };
    let leaf_unusable = observed
        .leaf
        .as_ref()
        .is_none_or(|l| l.expired(now) || !names_match(&l.names, names));
    if ca.due(now) {
        return RotationStep::NewCa {
            new_leaf: leaf_unusable,
        };
    }
    let leaf_current = observed
        .leaf
        .as_ref()
        .is_some_and(|l| l.issuer == ca.subject && !l.due(now));
    if leaf_unusable || (!leaf_current && trusted) {
        return RotationStep::NewLeaf;
    }
    if observed.cas.iter().any(|c| c.expired(now)) {
        return RotationStep::Prune;
    }
    RotationStep::Keep
}

fn names_match(have: &ServingNames, want: &ServingNames) -> bool {
    want.dns.iter().all(|d| have.dns.contains(d)) && want.ips.iter().all(|i| have.ips.contains(i))
}

/// Carries out `step` on `current` (generating keys as needed) and returns the new material.
pub fn apply_step(
    step: RotationStep,
    current: Option<&Material>,
    names: &ServingNames,
    lifetimes: CertLifetimes,
    now: Timestamp,
) -> Result<Material, CertError> {
    let mut m = current.cloned().unwrap_or_default();
    match step {
        RotationStep::Keep => {}
        RotationStep::Fresh => {
            let (ca_cert, ca_key) = new_ca(lifetimes.ca, now)?;
            m.ca_cert = ca_cert;
            m.ca_key = ca_key;
            (m.cert, m.key) = issue_leaf(&m.ca_cert, &m.ca_key, names, lifetimes.leaf, now)?;
        }
        RotationStep::NewCa { new_leaf } => {
            let (ca_cert, ca_key) = new_ca(lifetimes.ca, now)?;
            let older = pems_valid_at(&m.ca_cert, now);
            m.ca_cert = format!("{ca_cert}{older}");
            m.ca_key = ca_key;
            if new_leaf {
                (m.cert, m.key) = issue_leaf(&m.ca_cert, &m.ca_key, names, lifetimes.leaf, now)?;
            }
        }
        RotationStep::NewLeaf => {
            (m.cert, m.key) = issue_leaf(&m.ca_cert, &m.ca_key, names, lifetimes.leaf, now)?;
        }
        RotationStep::Prune => m.ca_cert = pems_valid_at(&m.ca_cert, now),
    }
    Ok(m)
}

/// The certificates of a PEM bundle that have not expired at `now`, as PEM.
fn pems_valid_at(bundle: &str, now: Timestamp) -> String {
    parse_certs(CA_CERT_KEY, bundle)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !c.expired(now))
        .map(|c| pem_of(&c.der))
        .collect()
}

fn pem_of(der: &[u8]) -> String {
    let body = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Sets the validity from `now` (backdated by a tenth of the lifetime, at most a minute, as the
/// apiserver's clock may run a little behind ours) to `until`.
fn validity(params: &mut CertificateParams, now: Timestamp, until: Timestamp) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let backdate = (until.duration_since(now) / 10).min(SignedDuration::from_secs(60));
    let from = (now - backdate).as_second().max(0);
    params.not_before = epoch + Duration::from_secs(from.unsigned_abs());
    params.not_after = epoch + Duration::from_secs(until.as_second().max(0).unsigned_abs());
}

fn new_ca(lifetime: Duration, now: Timestamp) -> Result<(String, String), CertError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{CA_NAME}@{}", now.as_second()));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, now, now + signed(lifetime));
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A leaf for `names`, signed by the first CA of `ca_bundle`; it never outlives that CA.
fn issue_leaf(
    ca_bundle: &str,
    ca_key: &str,
    names: &ServingNames,
    lifetime: Duration,
    now: Timestamp,
) -> Result<(String, String), CertError> {
    let ca_key =
        KeyPair::from_pem(ca_key).map_err(|e| CertError::Key(CA_KEY_KEY, e.to_string()))?;
    let ca = parse_certs(CA_CERT_KEY, ca_bundle)?.remove(0);
    let issuer = Issuer::from_ca_cert_der(&ca.der.clone().into(), ca_key)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(names.dns.clone())?;
    params
        .subject_alt_names
        .extend(names.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    let common_name = names
        .dns
        .first()
        .cloned()
        .unwrap_or_else(|| "marketplace-operator-admission".into());
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut params, now, (now + signed(lifetime)).min(ca.not_after));
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

#[cfg(test)]
mod tests;
