//! Opening a connection to the PostgreSQL usage store as libpq would for the same URL: TLS as
//! `sslmode` asks (`prefer`, the default, uses it when the server offers it; `require` insists;
//! `disable` never), the server's certificate and name checked against the system's roots plus
//! the CA file `sslrootcert=PATH` names. tokio-postgres does not read `sslrootcert`, so it is
//! taken out of the URL here.

use std::path::PathBuf;
use std::str::FromStr;

use postgres_native_tls::MakeTlsConnector;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config};

use super::store::StoreError;

/// Where to connect and with which TLS, parsed once and reused by every reconnect.
pub(super) struct PostgresTarget {
    config: Config,
    tls: MakeTlsConnector,
}

impl PostgresTarget {
    /// Parses a `postgres://` URL; the error names the parameter that is wrong.
    pub(super) fn parse(url: &str) -> Result<PostgresTarget, StoreError> {
        let (url, root) = take_root_cert(url);
        let config = Config::from_str(&url)
            .map_err(|e| StoreError(format!("the PostgreSQL URL: {}", with_source(&e))))?;
        let mut builder = native_tls::TlsConnector::builder();
        if let Some(path) = root {
            let pem = std::fs::read(&path)
                .map_err(|e| StoreError(format!("sslrootcert: reading {}: {e}", path.display())))?;
            let ca = native_tls::Certificate::from_pem(&pem).map_err(|e| {
                StoreError(format!(
                    "sslrootcert: {} is not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            builder.add_root_certificate(ca);
        }
        let connector = builder
            .build()
            .map_err(|e| StoreError(format!("setting up TLS for PostgreSQL: {e}")))?;
        Ok(PostgresTarget {
            config,
            tls: MakeTlsConnector::new(connector),
        })
    }

    /// A new session; its connection runs on a task, which ends when the client is dropped.
    pub(super) async fn open(&self) -> Result<(Client, JoinHandle<()>), StoreError> {
        let (client, connection) =
            self.config.connect(self.tls.clone()).await.map_err(|e| {
                StoreError(format!("connecting to PostgreSQL: {}", with_source(&e)))
            })?;
        let running = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "usage store: the PostgreSQL connection ended");
            }
        });
        Ok((client, running))
    }
}

/// The error with its cause: the reason (an unknown CA, the URL parameter that is wrong) is
/// only in the source.
fn with_source(error: &tokio_postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

/// The URL without `sslrootcert=...`, and that path.
fn take_root_cert(url: &str) -> (String, Option<PathBuf>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("sslrootcert=") {
            Some(path) => {
                root = Some(PathBuf::from(path));
                false
            }
            None => true,
        })
        .collect();
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_certificate_is_taken_out_of_the_url() {
        assert_eq!(
            take_root_cert("postgres://u@h:5432/db?sslmode=require&sslrootcert=/etc/ca.crt"),
            (
                "postgres://u@h:5432/db?sslmode=require".to_string(),
                Some(PathBuf::from("/etc/ca.crt"))
            )
        );
        assert_eq!(
            take_root_cert("postgres://u@h/db?sslrootcert=/ca.pem"),
            (
                "postgres://u@h/db".to_string(),
                Some(PathBuf::from("/ca.pem"))
            )
        );
        assert_eq!(
            take_root_cert("postgres://u@h/db?sslmode=disable"),
            ("postgres://u@h/db?sslmode=disable".to_string(), None)
        );
    }

    #[test]
    fn a_missing_or_bad_root_certificate_is_named() {
        let missing = PostgresTarget::parse("postgres://u@h/db?sslrootcert=/nonexistent/ca.crt")
            .err()
            .unwrap();
        assert!(
            missing
                .0
                .contains("sslrootcert: reading /nonexistent/ca.crt"),
            "{missing}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.crt");
        std::fs::write(&file, "not a certificate").unwrap();
        let bad =
            PostgresTarget::parse(&format!("postgres://u@h/db?sslrootcert={}", file.display()))
                .err()
                .unwrap();
        assert!(bad.0.contains("is not a PEM certificate"), "{bad}");
        let mode = PostgresTarget::parse("postgres://u@h/db?sslmode=always")
            .err()
            .unwrap();
        assert!(mode.0.contains("sslmode"), "{mode}");
    }
}
