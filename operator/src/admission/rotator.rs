//! Keeps the webhook's serving certificate: reads it from its Secret into the server's
//! [`ReloadableCert`] and, when the operator manages it, creates and rotates it
//! ([`super::certs`]) and keeps the `caBundle` of the ValidatingWebhookConfiguration current.
//!
//! Every replica runs this loop on the same Secret; writes carry the resourceVersion read, so a
//! replica that loses a race (409) reads the winner's certificate instead of overwriting it.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingWebhook, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

use super::certs::{
    self, CA_CERT_KEY, CA_KEY_KEY, CertLifetimes, Material, Observed, RotationStep, ServingNames,
    TLS_CERT_KEY, TLS_KEY_KEY,
};
use crate::server::tls::ReloadableCert;

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// The operator creates and rotates a CA and serving certificate in Secret `secret` (in its
    /// namespace) for `names`, and keeps the `caBundle` of every webhook of the
    /// ValidatingWebhookConfiguration `webhook_config` current.
    Managed {
        secret: String,
        names: ServingNames,
        lifetimes: CertLifetimes,
        webhook_config: Option<String>,
    },
    /// Another issuer (cert-manager) keeps Secret `secret` (`tls.crt`, `tls.key`) and the
    /// `caBundle` (cert-manager's CA injector); the operator only reads it.
    External { secret: String },
}

impl CertSource {
    pub fn secret(&self) -> &str {
        match self {
            CertSource::Managed { secret, .. } | CertSource::External { secret } => secret,
        }
    }

    /// How often the Secret is read again: often enough to renew in time, at most a minute.
    pub fn resync(&self) -> Duration {
        match self {
            CertSource::Managed { lifetimes, .. } => {
                (lifetimes.leaf / 10).clamp(Duration::from_millis(100), Duration::from_secs(60))
            }
            CertSource::External { .. } => Duration::from_secs(60),
        }
    }
}

/// Why the certificate could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("Secret {0}: {1}")]
    Kube(String, #[source] kube::Error),
    #[error("ValidatingWebhookConfiguration {0}: {1}")]
    WebhookConfig(String, #[source] kube::Error),
    #[error("Secret {0}: {1}")]
    Certificate(String, #[source] certs::CertError),
    #[error("Secret {0} has no {1}")]
    Missing(String, &'static str),
    #[error(transparent)]
    Tls(#[from] crate::server::tls::TlsError),
}

/// One pass: read (and if needed renew) the certificate, publish the CA, serve the leaf.
pub async fn sync_once(
    client: &Client,
    namespace: &str,
    source: &CertSource,
    serving: &ReloadableCert,
    now: Timestamp,
) -> Result<(), RotationError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let label = format!("{namespace}/{}", source.secret());
    let material = match source {
        CertSource::External { secret } => {
            let found = secrets
                .get(secret)
                .await
                .map_err(|e| RotationError::Kube(label.clone(), e))?;
            material_of(&found)
        }
        CertSource::Managed {
            secret,
            names,
            lifetimes,
            webhook_config,
        } => {
            let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
            let config = match webhook_config {
                Some(name) => configs
                    .get_opt(name)
                    .await
                    .map_err(|e| RotationError::WebhookConfig(name.clone(), e))?,
                None => None,
            };
            let material = renew(
                &secrets,
                secret,
                &label,
                names,
                *lifetimes,
                config.as_ref(),
                now,
            )
            .await?;
            if let Some(config) = &config {
                publish_ca(&configs, config, material.ca_cert.as_bytes()).await?;
            }
            material
        }
    };
    if material.cert.is_empty() {
        return Err(RotationError::Missing(label, TLS_CERT_KEY));
    }
    if material.key.is_empty() {
        return Err(RotationError::Missing(label, TLS_KEY_KEY));
    }
    let source_name = format!("Secret {label}");
    if serving.set_pem(
        &source_name,
        material.cert.as_bytes(),
        material.key.as_bytes(),
    )? {
        tracing::info!(secret = %label, "admission webhook serves a new certificate");
    }
    Ok(())
}

/// Reads the Secret, applies the rotation step due now and returns the material in force.
/// Losing a write race (409) is no error: the winner's material is read back.
async fn renew(
    secrets: &Api<Secret>,
    name: &str,
    label: &str,
    names: &ServingNames,
    lifetimes: CertLifetimes,
    config: Option<&ValidatingWebhookConfiguration>,
    now: Timestamp,
) -> Result<Material, RotationError> {
    for _ in 0..3 {
        let found = secrets
            .get_opt(name)
            .await
            .map_err(|e| RotationError::Kube(label.into(), e))?;
        let current = found.as_ref().map(material_of);
        let observed = Observed::of(current.as_ref());
        let trusted = match (config, observed.cas.first()) {
            (Some(config), Some(ca)) => ca_trusted(config, &ca.der),
            _ => true,
        };
        let step = certs::plan_rotation(&observed, names, trusted, now);
        if step == RotationStep::Keep {
            return Ok(current.unwrap_or_default());
        }
        let next = certs::apply_step(step, current.as_ref(), names, lifetimes, now)
            .map_err(|e| RotationError::Certificate(label.into(), e))?;
        let written = match found {
            Some(mut secret) => {
                secret.data = Some(data_of(&next));
                secrets.replace(name, &PostParams::default(), &secret).await
            }
            None => {
                secrets
                    .create(&PostParams::default(), &new_secret(name, &next))
                    .await
            }
        };
        match written {
            Ok(_) => {
                tracing::info!(secret = name, ?step, "admission certificate rotated");
                return Ok(next);
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::debug!(secret = name, "another replica wrote the certificate first");
            }
            Err(e) => return Err(RotationError::Kube(label.into(), e)),
        }
    }
    // Three lost races in a row: serve what is there; the next pass decides again.
    let found = secrets
        .get(name)
        .await
        .map_err(|e| RotationError::Kube(label.into(), e))?;
    Ok(material_of(&found))
}

/// Whether every webhook of `config` trusts the CA `der`.
fn ca_trusted(config: &ValidatingWebhookConfiguration, der: &[u8]) -> bool {
    config.webhooks.iter().flatten().all(|w| {
        w.client_config
            .ca_bundle
            .as_ref()
            .is_some_and(|b| certs::bundle_contains(&b.0, der))
    })
}

/// Sets `caBundle` of every webhook of `config` to `bundle`, when it differs. The write carries
/// the resourceVersion read: a configuration changed meanwhile is read again on the next pass.
async fn publish_ca(
    configs: &Api<ValidatingWebhookConfiguration>,
    config: &ValidatingWebhookConfiguration,
    bundle: &[u8],
) -> Result<(), RotationError> {
    let name = config.metadata.name.clone().unwrap_or_default();
    let stale = |w: &ValidatingWebhook| {
        w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) != Some(bundle)
    };
    if !config.webhooks.iter().flatten().any(stale) {
        return Ok(());
    }
    let mut next = config.clone();
    for webhook in next.webhooks.iter_mut().flatten() {
        webhook.client_config.ca_bundle = Some(ByteString(bundle.to_vec()));
    }
    match configs.replace(&name, &PostParams::default(), &next).await {
        Ok(_) => {
            tracing::info!(webhook_config = %name, "admission caBundle updated");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(RotationError::WebhookConfig(name, e)),
    }
}

fn material_of(secret: &Secret) -> Material {
    let get = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .unwrap_or_default()
    };
    Material {
        ca_cert: get(CA_CERT_KEY),
        ca_key: get(CA_KEY_KEY),
        cert: get(TLS_CERT_KEY),
        key: get(TLS_KEY_KEY),
    }
}

fn data_of(m: &Material) -> BTreeMap<String, ByteString> {
    [
        (CA_CERT_KEY, &m.ca_cert),
        (CA_KEY_KEY, &m.ca_key),
        (TLS_CERT_KEY, &m.cert),
        (TLS_KEY_KEY, &m.key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
    .collect()
}

fn new_secret(name: &str, m: &Material) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "marketplace-operator".to_string(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data_of(m)),
        ..Default::default()
    }
}
