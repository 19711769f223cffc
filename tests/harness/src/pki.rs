//! Throw-away PKI for one control plane, generated with `rcgen` (no openssl needed).
//!
//! Mirrors envtest's `tinyca`: one ECDSA P-256 CA signs the serving certificates (apiserver and
//! the local OIDC issuer) and the admin client certificate; the apiserver trusts the same CA for
//! client certificates. A separate P-256 key signs service-account tokens. Everything is regenerated on every start,
//! so nothing secret ever needs to be stored or rotated.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use crate::HarnessError;

/// PEM texts of everything the control plane needs.
pub struct Pki {
    /// CA certificate: trusted by clients (serving cert) and by the apiserver (client certs).
    pub ca_cert: String,
    /// Serving certificate of kube-apiserver (SAN IP 127.0.0.1 and DNS localhost).
    pub apiserver_cert: String,
    /// Key of the serving certificate (PKCS#8).
    pub apiserver_key: String,
    /// Serving certificate of the local OIDC issuer (same SANs, its own key).
    pub oidc_issuer_cert: String,
    /// Its key (PKCS#8).
    pub oidc_issuer_key: String,
    /// Admin client certificate: CN=admin, O=system:masters (bypasses RBAC).
    pub admin_cert: String,
    /// Key of the admin certificate (PKCS#8).
    pub admin_key: String,
    /// Service-account token signing key (PKCS#8).
    pub service_account_key: String,
    /// Its public half (SPKI), for token verification.
    pub service_account_pub: String,
}

/// Paths of the PEM files written by [`Pki::write`].
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// `ca.crt`
    pub ca_cert: PathBuf,
    /// `apiserver.crt`
    pub apiserver_cert: PathBuf,
    /// `apiserver.key`
    pub apiserver_key: PathBuf,
    /// `sa.key`
    pub service_account_key: PathBuf,
    /// `sa.pub`
    pub service_account_pub: PathBuf,
}

impl Pki {
    /// Generates a fresh CA, serving cert, admin cert and service-account key.
    pub fn generate() -> Result<Self, HarnessError> {
        let (ca_cert, ca) = certificate_authority()?;

        let (apiserver_cert, apiserver_key) = serving_certificate("kube-apiserver", &ca)?;
        let (oidc_issuer_cert, oidc_issuer_key) = serving_certificate("oidc-issuer", &ca)?;

        // The apiserver maps CN to the user name and O to groups; system:masters is cluster-admin
        // regardless of RBAC, like envtest's default user.
        let admin_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut admin = CertificateParams::new(Vec::<String>::new())?;
        admin.distinguished_name.push(DnType::CommonName, "admin");
        admin
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        admin.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = admin.signed_by(&admin_key, &ca)?.pem();

        let sa_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;

        Ok(Self {
            ca_cert,
            apiserver_cert,
            apiserver_key,
            oidc_issuer_cert,
            oidc_issuer_key,
            admin_cert,
            admin_key: admin_key.serialize_pem(),
            service_account_key: sa_key.serialize_pem(),
            service_account_pub: sa_key.public_key_pem(),
        })
    }

    /// Writes the files the apiserver reads into `dir` (created if needed). The admin
    /// credentials are not written: they live only inside the kubeconfig.
    pub fn write(&self, dir: &Path) -> Result<PkiFiles, HarnessError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| HarnessError::io(format!("creating {}", dir.display()), e))?;
        let files = PkiFiles {
            ca_cert: dir.join("ca.crt"),
            apiserver_cert: dir.join("apiserver.crt"),
            apiserver_key: dir.join("apiserver.key"),
            service_account_key: dir.join("sa.key"),
            service_account_pub: dir.join("sa.pub"),
        };
        for (path, text) in [
            (&files.ca_cert, &self.ca_cert),
            (&files.apiserver_cert, &self.apiserver_cert),
            (&files.apiserver_key, &self.apiserver_key),
            (&files.service_account_key, &self.service_account_key),
            (&files.service_account_pub, &self.service_account_pub),
        ] {
            std::fs::write(path, text)
                .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))?;
        }
        Ok(files)
    }
}

/// A fresh CA and a serving certificate it signs for 127.0.0.1 and localhost, as PEM texts
/// `(CA, certificate, key)`: for a loopback server outside the control plane (e.g. PostgreSQL
/// with TLS), whose clients trust only that CA.
pub fn serving_pair(common_name: &str) -> Result<(String, String, String), HarnessError> {
    let (ca_cert, ca) = certificate_authority()?;
    let (cert, key) = serving_certificate(common_name, &ca)?;
    Ok((ca_cert, cert, key))
}

/// A self-signed CA: its certificate (PEM) and the issuer that signs with it.
fn certificate_authority() -> Result<(String, Issuer<'static, KeyPair>), HarnessError> {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "marketplace-harness-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?.pem();
    Ok((ca_cert, Issuer::new(ca_params, ca_key)))
}

/// A certificate for 127.0.0.1 and localhost signed by `ca`, and its key (PEM). rustls (kube's
/// TLS stack) needs the IP SAN: the server URLs are https://127.0.0.1:<port>.
fn serving_certificate(
    common_name: &str,
    ca: &Issuer<'_, KeyPair>,
) -> Result<(String, String), HarnessError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok((params.signed_by(&key, ca)?.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_pem_material() {
        let pki = Pki::generate().unwrap();
        assert!(pki.ca_cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(
            pki.apiserver_cert
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(pki.admin_key.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(
            pki.service_account_pub
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        let dir = tempfile::tempdir().unwrap();
        let files = pki.write(dir.path()).unwrap();
        assert!(files.service_account_key.is_file());
    }
}
