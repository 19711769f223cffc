//! The test-connection probe against a real HTTPS server on 127.0.0.1: a throw-away CA (rcgen)
//! signs a certificate for `localhost` and 127.0.0.1, served by axum over rustls. The probe uses
//! its own TLS stack (native-tls), so trust really goes through `extra_root_certificates_pem`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::get;
use k8s_openapi::ByteString;
use marketplace_operator::api::WizardConfigSpec;
use marketplace_operator::api::wizard_config::{HttpMethod, TestConnection};
use marketplace_operator::connection::{
    ConnectionSettings, ProbeError, ProbePolicy, test_connection, validate_settings,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const SECRET: &str = "sk_live_s3cr3t_0123456789abcdef0123456789";

/// A CA and a serving certificate it signed, for `localhost` and 127.0.0.1.
struct Pki {
    ca_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "connection-probe-test-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem,
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    /// TCP connections accepted (before TLS).
    connections: AtomicUsize,
    /// (path, Authorization header) of every request.
    requests: Mutex<Vec<(String, Option<String>)>>,
}

impl Seen {
    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.requests.lock().unwrap().clone()
    }
}

/// axum over rustls: accepts TCP, then completes the TLS handshake; failed handshakes (e.g. a
/// client that does not trust the certificate) are skipped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    seen: Arc<Seen>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            self.seen.connections.fetch_add(1, Ordering::SeqCst);
            let handshake = self.acceptor.accept(stream);
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), handshake).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// An HTTPS server on 127.0.0.1:0, stopped on drop.
struct Server {
    port: u16,
    ca_pem: String,
    seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn record(seen: &Seen, uri: &Uri, headers: &HeaderMap) {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    seen.requests
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), auth));
}

async fn start_server() -> Server {
    let pki = pki();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![pki.cert_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];

    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route(
            "/v3/company/{realm}/info",
            get(
                |State(seen): State<Arc<Seen>>, uri: Uri, headers: HeaderMap| async move {
                    record(&seen, &uri, &headers);
                    (StatusCode::OK, "{\"ok\":true}")
                },
            ),
        )
        .route(
            "/unauthorized",
            get(
                |State(seen): State<Arc<Seen>>, uri: Uri, headers: HeaderMap| async move {
                    record(&seen, &uri, &headers);
                    // Servers do echo credentials; the probe must not pass this on.
                    let echoed = headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    (StatusCode::UNAUTHORIZED, format!("invalid token {echoed}"))
                },
            ),
        )
        .route(
            "/redirect",
            get(
                |State(seen): State<Arc<Seen>>, uri: Uri, headers: HeaderMap| async move {
                    record(&seen, &uri, &headers);
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, "/v3/company/1/info")],
                    )
                        .into_response()
                },
            ),
        )
        .route(
            "/slow",
            get(
                |State(seen): State<Arc<Seen>>, uri: Uri, headers: HeaderMap| async move {
                    record(&seen, &uri, &headers);
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    StatusCode::OK
                },
            ),
        )
        .with_state(seen.clone());

    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
        seen: seen.clone(),
    };
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        port,
        ca_pem: pki.ca_pem,
        seen,
        task,
    }
}

/// A QuickBooks-like wizard whose test connection goes to `url_template`.
fn wizard(url_template: String, timeout_seconds: i32) -> WizardConfigSpec {
    WizardConfigSpec {
        title: "Connect the test service".into(),
        connection_schema: serde_json::from_value(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["realmId", "apiKey"],
            "properties": {
                "realmId": {"type": "string", "pattern": "^[0-9]+$"},
                "apiKey": {"type": "string", "minLength": 20},
            },
        }))
        .unwrap(),
        secret_fields: vec!["apiKey".into()],
        test_connection: TestConnection {
            method: HttpMethod::Get,
            url_template,
            headers_template: BTreeMap::from([
                ("Authorization".to_owned(), "Bearer {{ apiKey }}".to_owned()),
                ("Accept".to_owned(), "application/json".to_owned()),
            ]),
            expected_status: 200,
            timeout_seconds,
        },
        field_mapping: None,
        billing_confirmation: "Billed monthly.".into(),
    }
}

/// The tenant's Secret, validated as the operator will.
fn settings(wizard: &WizardConfigSpec) -> ConnectionSettings {
    let data = BTreeMap::from([
        ("realmId".to_owned(), ByteString(b"12345".to_vec())),
        ("apiKey".to_owned(), ByteString(SECRET.as_bytes().to_vec())),
    ]);
    validate_settings(wizard, &data).unwrap()
}

fn trusting(server: &Server) -> ProbePolicy {
    ProbePolicy {
        allow_private_targets: true,
        extra_root_certificates_pem: vec![server.ca_pem.as_bytes().to_vec()],
        ..ProbePolicy::default()
    }
}

async fn probe(
    server_port: u16,
    path: &str,
    timeout_seconds: i32,
    policy: &ProbePolicy,
) -> Result<marketplace_operator::connection::ProbeSuccess, ProbeError> {
    let wizard = wizard(
        format!("https://127.0.0.1:{server_port}{path}"),
        timeout_seconds,
    );
    test_connection(&wizard.test_connection, &settings(&wizard), policy).await
}

fn assert_no_secret(error: &ProbeError) {
    let display = error.to_string();
    let debug = format!("{error:?}");
    eprintln!("{}: {display}", error.category());
    assert!(!display.contains(SECRET), "secret in Display: {display}");
    assert!(!debug.contains(SECRET), "secret in Debug: {debug}");
}

#[tokio::test]
async fn loopback_is_refused_by_default_without_connecting() {
    let server = start_server().await;
    let policy = ProbePolicy {
        extra_root_certificates_pem: vec![server.ca_pem.as_bytes().to_vec()],
        ..ProbePolicy::default()
    };
    let error = probe(server.port, "/v3/company/{{realmId}}/info", 5, &policy)
        .await
        .unwrap_err();
    assert_eq!(error.category(), "forbidden-target", "{error}");
    assert!(
        matches!(&error, ProbeError::ForbiddenTarget { address, .. } if address.is_loopback()),
        "{error:?}"
    );
    assert_no_secret(&error);
    // Give a stray connection time to show up, then check there was none.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 0);
    assert!(server.seen.requests().is_empty());
}

#[tokio::test]
async fn allowed_target_with_trusted_ca_succeeds_and_sends_the_secret_header() {
    let server = start_server().await;
    let success = probe(
        server.port,
        "/v3/company/{{realmId}}/info",
        5,
        &trusting(&server),
    )
    .await
    .unwrap();
    assert_eq!(success.status, 200);
    assert_eq!(success.target, format!("127.0.0.1:{}", server.port));
    assert!(success.elapsed < Duration::from_secs(5));
    assert_eq!(
        server.seen.requests(),
        vec![(
            "/v3/company/12345/info".to_owned(),
            Some(format!("Bearer {SECRET}"))
        )]
    );
}

#[tokio::test]
async fn unexpected_status_is_reported_without_the_secret() {
    let server = start_server().await;
    let error = probe(server.port, "/unauthorized", 5, &trusting(&server))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ProbeError::UnexpectedStatus {
                expected: 200,
                got: 401
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.category(), "unexpected-status");
    assert_no_secret(&error);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = start_server().await;
    let error = probe(server.port, "/redirect", 5, &trusting(&server))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ProbeError::UnexpectedStatus {
                expected: 200,
                got: 302
            }
        ),
        "{error:?}"
    );
    let paths: Vec<String> = server.seen.requests().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, vec!["/redirect".to_owned()]);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = start_server().await;
    let started = Instant::now();
    let error = probe(server.port, "/slow", 1, &trusting(&server))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.category(), "timeout", "{error}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_no_secret(&error);
    assert_eq!(server.seen.requests().len(), 1);
}

#[tokio::test]
async fn a_server_that_never_starts_tls_times_out() {
    // Accepts TCP and then says nothing, so the TLS handshake never completes.
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = tcp.accept().await {
            held.push(stream);
        }
    });
    let policy = ProbePolicy {
        allow_private_targets: true,
        ..ProbePolicy::default()
    };
    let started = Instant::now();
    let error = probe(port, "/v3/company/{{realmId}}/info", 1, &policy)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    silent.abort();
    assert_eq!(error.category(), "timeout", "{error}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_no_secret(&error);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    let server = start_server().await;
    let policy = ProbePolicy {
        allow_private_targets: true,
        ..ProbePolicy::default()
    };
    let error = probe(server.port, "/v3/company/{{realmId}}/info", 5, &policy)
        .await
        .unwrap_err();
    assert_eq!(error.category(), "tls", "{error}");
    assert_no_secret(&error);
    // The handshake failed, so no request (and no Authorization header) was ever sent.
    assert!(server.seen.requests().is_empty());
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let port = {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        tcp.local_addr().unwrap().port()
    };
    let policy = ProbePolicy {
        allow_private_targets: true,
        ..ProbePolicy::default()
    };
    let error = probe(port, "/v3/company/{{realmId}}/info", 5, &policy)
        .await
        .unwrap_err();
    assert_eq!(error.category(), "connect", "{error}");
    assert_no_secret(&error);
}

#[tokio::test]
async fn a_secret_in_the_url_is_refused_before_any_request() {
    let server = start_server().await;
    let error = probe(
        server.port,
        "/v3/company/{{realmId}}/info?key={{apiKey}}",
        5,
        &trusting(&server),
    )
    .await
    .unwrap_err();
    assert_eq!(error.category(), "template");
    assert!(
        error
            .to_string()
            .contains("secret field \"apiKey\" may only be used in headersTemplate"),
        "{error}"
    );
    assert_no_secret(&error);
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 0);
}
