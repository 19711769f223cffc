//! The `marketplace operator` flags of the admission webhook (flattened into the operator's
//! arguments). The webhook is off unless `--admission-listen` is given.

use std::net::{IpAddr, SocketAddr};

use clap::Args;

use super::certs::{CertLifetimes, ServingNames};
use super::{AdmissionConfig, CertSource};

#[derive(Args, Debug, Clone)]
pub struct AdmissionArgs {
    /// Serve the TenantSubscription validating admission webhook over HTTPS on this address
    /// (every replica), e.g. 0.0.0.0:9443; off when unset.
    #[arg(long, env = "MARKETPLACE_ADMISSION_LISTEN")]
    pub admission_listen: Option<SocketAddr>,
    /// Read the serving certificate from this Secret (`tls.crt`, `tls.key`), kept by
    /// cert-manager, whose CA injector keeps the caBundle; without it the operator makes and
    /// rotates its own (see --admission-managed-secret).
    #[arg(long, env = "MARKETPLACE_ADMISSION_CERT_SECRET")]
    pub admission_cert_secret: Option<String>,
    /// Secret in which the operator keeps its own webhook CA and serving certificate.
    #[arg(
        long,
        env = "MARKETPLACE_ADMISSION_MANAGED_SECRET",
        default_value = "marketplace-operator-webhook-cert"
    )]
    pub admission_managed_secret: String,
    /// ValidatingWebhookConfiguration whose caBundle the operator keeps current (own
    /// certificate only).
    #[arg(
        long,
        env = "MARKETPLACE_ADMISSION_WEBHOOK_CONFIG",
        default_value = "marketplace-operator"
    )]
    pub admission_webhook_config: String,
    /// Service through which the apiserver calls the webhook; its DNS names
    /// (<service>.<namespace>.svc[.cluster.local]) go into the own certificate.
    #[arg(
        long,
        env = "MARKETPLACE_ADMISSION_SERVICE",
        default_value = "marketplace-operator-webhook"
    )]
    pub admission_service: String,
    /// Extra IP address for the own certificate, for a webhook called by URL (e.g. 127.0.0.1
    /// in development); repeatable.
    #[arg(
        long = "admission-cert-ip",
        env = "MARKETPLACE_ADMISSION_CERT_IPS",
        value_delimiter = ','
    )]
    pub admission_cert_ips: Vec<IpAddr>,
}

impl AdmissionArgs {
    /// The webhook's settings, or `None` when it is off.
    pub fn config(
        &self,
        namespace: &str,
        platform_version: Option<semver::Version>,
    ) -> Option<AdmissionConfig> {
        let listen = self.admission_listen?;
        let certificate = match &self.admission_cert_secret {
            Some(secret) => CertSource::External {
                secret: secret.clone(),
            },
            None => {
                let mut names = ServingNames::for_service(&self.admission_service, namespace);
                names.ips = self.admission_cert_ips.clone();
                CertSource::Managed {
                    secret: self.admission_managed_secret.clone(),
                    names,
                    lifetimes: CertLifetimes::default(),
                    webhook_config: Some(self.admission_webhook_config.clone()),
                }
            }
        };
        Some(AdmissionConfig {
            listen,
            namespace: namespace.to_string(),
            certificate,
            platform_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        admission: AdmissionArgs,
    }

    fn config(args: &[&str]) -> Option<AdmissionConfig> {
        let cli = Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied())).unwrap();
        cli.admission.config("marketplace-system", None)
    }

    #[test]
    fn off_unless_a_listen_address_is_given() {
        assert!(config(&[]).is_none());
    }

    #[test]
    fn own_certificate_for_the_service_names_and_extra_ips() {
        let c = config(&[
            "--admission-listen",
            "0.0.0.0:9443",
            "--admission-cert-ip",
            "127.0.0.1",
        ])
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9443".parse().unwrap());
        match c.certificate {
            CertSource::Managed {
                secret,
                names,
                webhook_config,
                ..
            } => {
                assert_eq!(secret, "marketplace-operator-webhook-cert");
                assert_eq!(webhook_config.as_deref(), Some("marketplace-operator"));
                assert_eq!(
                    names.dns[0],
                    "marketplace-operator-webhook.marketplace-system.svc"
                );
                assert_eq!(names.ips, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_cert_manager_secret_is_only_read() {
        let c = config(&[
            "--admission-listen",
            "0.0.0.0:9443",
            "--admission-cert-secret",
            "webhook-tls",
        ])
        .unwrap();
        assert_eq!(
            c.certificate,
            CertSource::External {
                secret: "webhook-tls".into()
            }
        );
    }
}
