//! A local OpenID Connect issuer that the control plane's kube-apiserver trusts, so bearer
//! tokens from an identity provider (what a SaaS's Keycloak or Auth0 issues) are authenticated
//! by the real apiserver, through its structured authentication configuration, exactly as a
//! cluster trusting that provider would.
//!
//! The issuer serves its discovery document and JWKS over HTTPS on 127.0.0.1 (certificate from
//! the harness CA) and mints ES256 ID tokens for any user and groups. The apiserver maps the
//! `sub` claim to the user name and `groups` to groups, both prefixed [`OIDC_PREFIX`], and
//! accepts audience [`OIDC_AUDIENCE`]; service-account tokens and client certificates work as
//! before. Files in `<control plane folder>/oidc/`:
//!
//! - `signing.key`: the ES256 private key (PKCS#8 PEM). A control plane with a fixed folder
//!   keeps it across restarts, so with a fixed issuer port earlier tokens stay valid.
//! - `openid-configuration.json`, `jwks.json`: what the issuer serves.
//! - `authentication-config.json`: the apiserver's `--authentication-config`.
//! - `ca.crt`: the CA of the issuer's HTTPS certificate.
//!
//! It also runs the authorization code flow with PKCE ([`code_flow`]) that auto-approves the
//! `login_hint` subject, so the web UI's sign-in is tested through a real OIDC redirect.
//!
//! [`OidcIssuer::load`] reads the first two back, which is how the `oidc-token` binary mints
//! tokens for a running control plane.

pub mod code_flow;
mod es256;
mod https;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

pub use es256::Es256Key;
pub(crate) use https::DocumentServer;

use crate::HarnessError;
use crate::pki::Pki;

/// The audience the apiserver requires in `aud` (an identity provider's client id).
pub const OIDC_AUDIENCE: &str = "marketplace";

/// Prefix of OIDC user and group names in Kubernetes: token subject `ann` is user `oidc:ann`,
/// group `staff` is `oidc:staff`. RBAC subjects (e.g. a Tenant's viewers) use the prefixed names.
pub const OIDC_PREFIX: &str = "oidc:";

/// Folder of the issuer's files inside the control plane's folder.
pub const OIDC_DIR: &str = "oidc";

const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
const JWKS_PATH: &str = "/openid/v1/jwks";
const KEY_FILE: &str = "signing.key";
const DISCOVERY_FILE: &str = "openid-configuration.json";
const JWKS_FILE: &str = "jwks.json";
const AUTHENTICATION_CONFIG_FILE: &str = "authentication-config.json";
/// The CA that signed the issuer's serving certificate (for clients of its code flow).
const CA_FILE: &str = "ca.crt";

/// The claims of one ID token; [`OidcIssuer::id_token`] fills them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdToken {
    /// `iss`: the issuer URL.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// `sub`: the user name, without [`OIDC_PREFIX`].
    pub username: String,
    /// `groups`, without [`OIDC_PREFIX`].
    pub groups: Vec<String>,
    /// `iat`.
    pub issued_at: SystemTime,
    /// `exp`.
    pub expires_at: SystemTime,
}

impl IdToken {
    /// The JWT payload.
    pub fn claims(&self) -> Value {
        json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": self.username,
            "groups": self.groups,
            "iat": unix_seconds(self.issued_at),
            "exp": unix_seconds(self.expires_at),
        })
    }

    /// The signed JWT, e.g. with another key than the issuer's to prove it is refused.
    pub fn sign(&self, key: &Es256Key) -> Result<String, HarnessError> {
        key.sign(&self.claims())
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The issuer's URL and signing key: what mints tokens the apiserver accepts.
#[derive(Debug)]
pub struct OidcIssuer {
    url: String,
    key: Es256Key,
    ca_pem: String,
}

impl OidcIssuer {
    /// `https://127.0.0.1:<port>`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// PEM of the CA that signed the issuer's HTTPS certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Claims for `username` in `groups`, issued now and valid for `lifetime`.
    pub fn id_token(&self, username: &str, groups: &[&str], lifetime: Duration) -> IdToken {
        let now = SystemTime::now();
        IdToken {
            issuer: self.url.clone(),
            audience: OIDC_AUDIENCE.to_owned(),
            username: username.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            issued_at: now,
            expires_at: now + lifetime,
        }
    }

    /// `token` signed with the issuer's key.
    pub fn sign(&self, token: &IdToken) -> Result<String, HarnessError> {
        token.sign(&self.key)
    }

    /// A signed ID token for `username` in `groups`, valid for `lifetime` from now.
    pub fn mint(
        &self,
        username: &str,
        groups: &[&str],
        lifetime: Duration,
    ) -> Result<String, HarnessError> {
        self.sign(&self.id_token(username, groups, lifetime))
    }

    /// The issuer of a control plane whose folder is `dir` (it need not be running, but its
    /// tokens are only accepted while it is).
    pub fn load(dir: &Path) -> Result<Self, HarnessError> {
        let oidc = dir.join(OIDC_DIR);
        let read = |name: &str| {
            let path = oidc.join(name);
            std::fs::read_to_string(&path)
                .map_err(|e| HarnessError::io(format!("reading {}", path.display()), e))
        };
        let key = Es256Key::from_pem(&read(KEY_FILE)?)?;
        let discovery: Value = serde_json::from_str(&read(DISCOVERY_FILE)?)
            .map_err(|e| HarnessError::Oidc(format!("{}/{DISCOVERY_FILE}: {e}", oidc.display())))?;
        let url = discovery["issuer"].as_str().ok_or_else(|| {
            HarnessError::Oidc(format!(
                "{}/{DISCOVERY_FILE}: field issuer: missing or not a string",
                oidc.display()
            ))
        })?;
        Ok(Self {
            url: url.to_owned(),
            key,
            ca_pem: read(CA_FILE)?,
        })
    }

    /// The OpenID Provider metadata the apiserver reads first (only `issuer` and `jwks_uri`
    /// matter to it; the endpoints are the code flow's, for a web UI signing people in).
    fn discovery(&self) -> Value {
        json!({
            "issuer": self.url,
            "jwks_uri": format!("{}{JWKS_PATH}", self.url),
            "authorization_endpoint": format!("{}{}", self.url, code_flow::AUTHORIZE_PATH),
            "token_endpoint": format!("{}{}", self.url, code_flow::TOKEN_PATH),
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
            "response_types_supported": ["code", "id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "groups"],
        })
    }

    /// The structured AuthenticationConfiguration that trusts this issuer, whose certificate is
    /// signed by `ca_pem`.
    pub fn authentication_config(&self, ca_pem: &str) -> Value {
        json!({
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "AuthenticationConfiguration",
            "jwt": [{
                "issuer": {
                    "url": self.url,
                    "certificateAuthority": ca_pem,
                    "audiences": [OIDC_AUDIENCE],
                },
                "claimMappings": {
                    "username": {"claim": "sub", "prefix": OIDC_PREFIX},
                    "groups": {"claim": "groups", "prefix": OIDC_PREFIX},
                },
            }],
        })
    }
}

/// A running issuer for a control plane in `dir`: the issuer, its server (stops on drop) and
/// the path of the apiserver's authentication configuration.
pub(crate) fn start(
    dir: &Path,
    pki: &Pki,
    port: Option<u16>,
) -> Result<(OidcIssuer, DocumentServer, PathBuf), HarnessError> {
    let oidc = dir.join(OIDC_DIR);
    std::fs::create_dir_all(&oidc)
        .map_err(|e| HarnessError::io(format!("creating {}", oidc.display()), e))?;
    let key_path = oidc.join(KEY_FILE);
    let key = match std::fs::read_to_string(&key_path) {
        Ok(pem) => Es256Key::from_pem(&pem)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Es256Key::generate()?;
            crate::control_plane::write_private(&key_path, key.pem())?;
            key
        }
        Err(e) => {
            return Err(HarnessError::io(
                format!("reading {}", key_path.display()),
                e,
            ));
        }
    };
    let listener = https::bind(port)?;
    let port = listener
        .local_addr()
        .map_err(|e| HarnessError::io("reading the OIDC issuer's port", e))?
        .port();
    let issuer = OidcIssuer {
        url: format!("https://127.0.0.1:{port}"),
        key,
        ca_pem: pki.ca_cert.clone(),
    };
    let discovery = issuer.discovery().to_string();
    let jwks = json!({"keys": [issuer.key.jwk()]}).to_string();
    let config = serde_json::to_string_pretty(&issuer.authentication_config(&pki.ca_cert))
        .map_err(|e| HarnessError::Oidc(e.to_string()))?;
    let config_path = oidc.join(AUTHENTICATION_CONFIG_FILE);
    for (path, text) in [
        (oidc.join(DISCOVERY_FILE), &discovery),
        (oidc.join(JWKS_FILE), &jwks),
        (config_path.clone(), &config),
        (oidc.join(CA_FILE), &pki.ca_cert),
    ] {
        std::fs::write(&path, text)
            .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))?;
    }
    let documents = BTreeMap::from([
        (DISCOVERY_PATH.to_owned(), discovery),
        (JWKS_PATH.to_owned(), jwks),
    ]);
    let server = DocumentServer::spawn(
        listener,
        &pki.oidc_issuer_cert,
        &pki.oidc_issuer_key,
        documents,
        Some(Arc::new(code_flow::CodeFlow::new(
            issuer.url.clone(),
            Es256Key::from_pem(issuer.key.pem())?,
        ))),
    )?;
    Ok((issuer, server, config_path))
}

/// Who the apiserver says `token` belongs to (a TokenReview), or `None` if it refuses it.
pub async fn review_token(client: &Client, token: &str) -> Result<Option<UserInfo>, HarnessError> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.to_owned(),
            ..TokenReviewSpec::default()
        },
        ..TokenReview::default()
    };
    let answer = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer
        .status
        .filter(|s| s.authenticated == Some(true))
        .and_then(|s| s.user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_carry_the_unprefixed_names_and_unix_times() {
        let token = IdToken {
            issuer: "https://127.0.0.1:1".to_owned(),
            audience: OIDC_AUDIENCE.to_owned(),
            username: "ann@acme.example".to_owned(),
            groups: vec!["acme:staff".to_owned()],
            issued_at: UNIX_EPOCH + Duration::from_secs(100),
            expires_at: UNIX_EPOCH + Duration::from_secs(160),
        };
        assert_eq!(
            token.claims(),
            json!({"iss": "https://127.0.0.1:1", "aud": "marketplace", "sub": "ann@acme.example",
                "groups": ["acme:staff"], "iat": 100, "exp": 160})
        );
    }

    #[test]
    fn a_started_issuer_can_be_loaded_back_and_keeps_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate().unwrap();
        let (issuer, server, config_path) = start(dir.path(), &pki, None).unwrap();
        assert_eq!(issuer.url(), format!("https://127.0.0.1:{}", server.port()));
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(config_path).unwrap()).unwrap();
        assert_eq!(config["jwt"][0]["issuer"]["url"], issuer.url());
        assert_eq!(
            config["jwt"][0]["issuer"]["certificateAuthority"],
            pki.ca_cert
        );
        assert_eq!(
            config["jwt"][0]["claimMappings"]["username"],
            json!({"claim": "sub", "prefix": "oidc:"})
        );

        let loaded = OidcIssuer::load(dir.path()).unwrap();
        assert_eq!(loaded.url(), issuer.url());
        assert_eq!(loaded.key.jwk(), issuer.key.jwk());
        drop(server);

        // A restart in the same folder signs with the same key.
        let (again, _server, _) = start(dir.path(), &pki, None).unwrap();
        assert_eq!(again.key.jwk(), issuer.key.jwk());
    }
}
