//! Credentials for a catalog source, read from the Secret named by `secretRef`. The key names
//! follow Flux's GitRepository secrets, so an existing Flux secret works unchanged.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::ByteString;

/// Names of the keys read from the credentials Secret.
pub mod secret_keys {
    /// https: the token (password of basic auth).
    pub const TOKEN: &str = "token";
    /// https: user name of basic auth (default `git`, which GitHub, GitLab and Gitea accept with a token).
    pub const USERNAME: &str = "username";
    /// https: password of basic auth (when there is no `token`); ssh: passphrase of `identity`.
    pub const PASSWORD: &str = "password";
    /// ssh: the private key (PEM or OpenSSH format).
    pub const IDENTITY: &str = "identity";
    /// ssh: known_hosts lines for the server; required, host keys are never trusted blindly.
    pub const KNOWN_HOSTS: &str = "known_hosts";
}

/// How to authenticate to the remote. `Debug` never shows the secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum GitCredentials {
    /// Public repository (or file://).
    #[default]
    None,
    /// https basic auth with a token as password.
    Token {
        /// Basic-auth user name; `git` when unset.
        username: Option<String>,
        token: String,
    },
    /// ssh with an in-memory private key; the host key is checked against `known_hosts`.
    Ssh {
        private_key: String,
        passphrase: Option<String>,
        /// Without it, ssh is refused: an unverified host could serve any catalog.
        known_hosts: Option<String>,
    },
}

impl fmt::Debug for GitCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Token { username, .. } => f
                .debug_struct("Token")
                .field("username", username)
                .field("token", &"<redacted>")
                .finish(),
            Self::Ssh {
                passphrase,
                known_hosts,
                ..
            } => f
                .debug_struct("Ssh")
                .field("private_key", &"<redacted>")
                .field("passphrase", &passphrase.as_ref().map(|_| "<redacted>"))
                .field("known_hosts", &known_hosts.as_ref().map(|_| "<set>"))
                .finish(),
        }
    }
}

/// Why a Secret could not be turned into credentials. Names keys, never values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    #[error(
        "the secret has no git credentials: expected key `token` (https), `username` and `password` (https), or `identity` and `known_hosts` (ssh)"
    )]
    Missing,
    #[error("secret key `{0}` is not valid UTF-8")]
    NotUtf8(&'static str),
    #[error("secret key `{0}` is empty")]
    Empty(&'static str),
}

impl GitCredentials {
    /// Reads credentials from a Secret's `data`: `identity` (+ `known_hosts`, `password` as key
    /// passphrase) means ssh; otherwise `token` (+ optional `username`), or `username` +
    /// `password`, means https basic auth.
    pub fn from_secret_data(data: &BTreeMap<String, ByteString>) -> Result<Self, CredentialsError> {
        let get = |key: &'static str| -> Result<Option<String>, CredentialsError> {
            match data.get(key) {
                None => Ok(None),
                Some(ByteString(bytes)) => {
                    let text =
                        std::str::from_utf8(bytes).map_err(|_| CredentialsError::NotUtf8(key))?;
                    let text = if key == secret_keys::IDENTITY || key == secret_keys::KNOWN_HOSTS {
                        text.to_owned()
                    } else {
                        text.trim().to_owned()
                    };
                    if text.trim().is_empty() {
                        Err(CredentialsError::Empty(key))
                    } else {
                        Ok(Some(text))
                    }
                }
            }
        };
        if let Some(private_key) = get(secret_keys::IDENTITY)? {
            return Ok(Self::Ssh {
                private_key,
                passphrase: get(secret_keys::PASSWORD)?,
                known_hosts: get(secret_keys::KNOWN_HOSTS)?,
            });
        }
        let username = get(secret_keys::USERNAME)?;
        if let Some(token) = get(secret_keys::TOKEN)? {
            return Ok(Self::Token { username, token });
        }
        match (username, get(secret_keys::PASSWORD)?) {
            (Some(username), Some(password)) => Ok(Self::Token {
                username: Some(username),
                token: password,
            }),
            _ => Err(CredentialsError::Missing),
        }
    }

    /// The secret strings, to scrub from any message that libgit2 produces.
    pub(super) fn secrets(&self) -> Vec<&str> {
        match self {
            Self::None => Vec::new(),
            Self::Token { token, .. } => vec![token.as_str()],
            Self::Ssh {
                private_key,
                passphrase,
                ..
            } => {
                let mut secrets = vec![private_key.as_str()];
                secrets.extend(passphrase.as_deref());
                secrets
            }
        }
    }

    /// Which secret keys to check when the remote rejects these credentials.
    pub(super) fn rejected_hint(&self) -> String {
        match self {
            Self::None => "the remote requires credentials but the source has no secretRef (expected secret key `token` for https, or `identity` and `known_hosts` for ssh)".to_owned(),
            Self::Token { .. } => "the remote rejected the token (secret key `token`, or `username` and `password`)".to_owned(),
            Self::Ssh { .. } => "the remote rejected the ssh key (secret key `identity`, passphrase in `password`)".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn reads_token_basic_auth_and_ssh() {
        assert_eq!(
            GitCredentials::from_secret_data(&data(&[("token", "t0ken\n")])),
            Ok(GitCredentials::Token {
                username: None,
                token: "t0ken".into()
            })
        );
        assert_eq!(
            GitCredentials::from_secret_data(&data(&[("username", "bot"), ("password", "pw")])),
            Ok(GitCredentials::Token {
                username: Some("bot".into()),
                token: "pw".into()
            })
        );
        assert_eq!(
            GitCredentials::from_secret_data(&data(&[
                ("identity", "KEY\n"),
                ("known_hosts", "h ssh-ed25519 AAAA\n")
            ])),
            Ok(GitCredentials::Ssh {
                private_key: "KEY\n".into(),
                passphrase: None,
                known_hosts: Some("h ssh-ed25519 AAAA\n".into())
            })
        );
    }

    #[test]
    fn names_missing_or_bad_keys() {
        assert_eq!(
            GitCredentials::from_secret_data(&data(&[])),
            Err(CredentialsError::Missing)
        );
        assert_eq!(
            GitCredentials::from_secret_data(&data(&[("token", " ")])),
            Err(CredentialsError::Empty("token"))
        );
        let bad = BTreeMap::from([("token".to_owned(), ByteString(vec![0xff, 0xfe]))]);
        assert_eq!(
            GitCredentials::from_secret_data(&bad),
            Err(CredentialsError::NotUtf8("token"))
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let token = GitCredentials::Token {
            username: None,
            token: "very-secret".into(),
        };
        let ssh = GitCredentials::Ssh {
            private_key: "PRIVATE".into(),
            passphrase: Some("pass-secret".into()),
            known_hosts: None,
        };
        let shown = format!("{token:?} {ssh:?}");
        assert!(
            !shown.contains("very-secret")
                && !shown.contains("PRIVATE")
                && !shown.contains("pass-secret"),
            "{shown}"
        );
    }
}
