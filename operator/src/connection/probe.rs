//! The WizardConfig's test connection: one HTTPS request that proves a tenant's settings work.
//!
//! The request goes from inside the cluster to a URL partly chosen by a tenant, so it is guarded:
//! every address the host resolves to must be public (see [`super::address`]) and the connection
//! is pinned to those checked addresses, so a second DNS answer (rebinding) cannot move it; no
//! redirects and no proxies are followed (either would reach an unchecked host); one deadline
//! covers DNS, connect, TLS and the response; and the body read is capped. Errors and logs never
//! carry a secret setting's value and headers are never logged.

use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Certificate, Method, Url};

use super::address::forbidden_reason;
use super::settings::ConnectionSettings;
use super::template::{TemplateError, render_header, render_url};
use crate::api::wizard_config::{HttpMethod, TestConnection};

/// What a probe may do beyond the defaults.
#[derive(Clone, Debug)]
pub struct ProbePolicy {
    /// Allow loopback, private, link-local and other non-public targets. Off in production; for
    /// tests and for on-premises integrations reached over a private network.
    pub allow_private_targets: bool,
    /// PEM certificates (one or more per entry) trusted in addition to the system roots, e.g. a
    /// corporate CA.
    pub extra_root_certificates_pem: Vec<Vec<u8>>,
    /// At most this many bytes of the response body are read (then the connection is dropped).
    pub max_body_bytes: usize,
}

impl Default for ProbePolicy {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            extra_root_certificates_pem: Vec::new(),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// A probe that answered with the expected status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSuccess {
    /// The HTTP status received (equal to `expectedStatus`).
    pub status: u16,
    /// From the start of the probe (DNS included) to the response's headers.
    pub elapsed: Duration,
    /// `host:port` probed; never contains a secret (secrets cannot be in the URL).
    pub target: String,
}

/// Why a connection test failed. `Display` never contains a secret setting's value: texts from
/// libraries pass through [`ConnectionSettings::redact`] first.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A template cannot be rendered with these settings.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The rendered URL does not parse or has no host.
    #[error("urlTemplate does not render a valid URL: {reason}")]
    InvalidUrl {
        /// Why.
        reason: String,
    },
    /// The rendered URL is not https.
    #[error("the test connection URL must use https, not {scheme}")]
    NotHttps {
        /// The scheme found.
        scheme: String,
    },
    /// A header name or rendered value is not valid HTTP.
    #[error("headersTemplate.{name}: {reason}")]
    InvalidHeader {
        /// The header's name.
        name: String,
        /// Why (never the value).
        reason: String,
    },
    /// The test connection or the policy is unusable (timeout out of range, bad certificate).
    #[error("cannot run the connection test: {reason}")]
    InvalidConfig {
        /// Why.
        reason: String,
    },
    /// The host resolves to an address that is not public.
    #[error("refusing to connect to {target}: it resolves to {address}, a {reason} address")]
    ForbiddenTarget {
        /// `host:port`.
        target: String,
        /// The refused address.
        address: IpAddr,
        /// Its range, e.g. `loopback (127.0.0.0/8)`.
        reason: &'static str,
    },
    /// The host name does not resolve.
    #[error("cannot resolve {target}: {reason}")]
    Resolve {
        /// `host:port`.
        target: String,
        /// Why.
        reason: String,
    },
    /// No response within `timeoutSeconds`.
    #[error("{target} did not answer within {seconds} s")]
    Timeout {
        /// `host:port`.
        target: String,
        /// The timeout.
        seconds: u64,
    },
    /// The TCP connection failed.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// `host:port`.
        target: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed, e.g. the certificate is not trusted or not for this host.
    #[error("TLS with {target} failed: {reason}")]
    Tls {
        /// `host:port`.
        target: String,
        /// Why.
        reason: String,
    },
    /// The request failed after connecting (protocol error, connection reset).
    #[error("request to {target} failed: {reason}")]
    Http {
        /// `host:port`.
        target: String,
        /// Why.
        reason: String,
    },
    /// The server answered with another status than `expectedStatus`.
    #[error("expected HTTP status {expected}, got {got}")]
    UnexpectedStatus {
        /// `expectedStatus`.
        expected: u16,
        /// The status received.
        got: u16,
    },
}

impl ProbeError {
    /// A stable, machine-readable name of the failure's kind (for condition reasons and metrics).
    pub fn category(&self) -> &'static str {
        match self {
            Self::Template(_) | Self::InvalidUrl { .. } | Self::NotHttps { .. } => "template",
            Self::InvalidHeader { .. } => "invalid-header",
            Self::InvalidConfig { .. } => "config",
            Self::ForbiddenTarget { .. } => "forbidden-target",
            Self::Resolve { .. } => "dns",
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "connect",
            Self::Tls { .. } => "tls",
            Self::Http { .. } => "http",
            Self::UnexpectedStatus { .. } => "unexpected-status",
        }
    }
}

/// Runs the WizardConfig's test connection with the tenant's settings.
///
/// Success iff the response status equals `expectedStatus`; a redirect is just a status.
pub async fn test_connection(
    test: &TestConnection,
    settings: &ConnectionSettings,
    policy: &ProbePolicy,
) -> Result<ProbeSuccess, ProbeError> {
    let started = Instant::now();
    let request = prepare(test, settings)?;
    let deadline = started + request.timeout;
    let seconds = request.timeout.as_secs();
    tracing::debug!(endpoint = %request.target, method = %request.method, "connection test starting");

    let outcome = tokio::time::timeout_at(deadline.into(), send(&request, settings, policy)).await;
    let result = match outcome {
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            let elapsed = started.elapsed();
            // Reading (part of) the body completes the exchange politely; it cannot change the
            // verdict, and the deadline still bounds it.
            let _ =
                tokio::time::timeout_at(deadline.into(), drain(response, policy.max_body_bytes))
                    .await;
            if status == request.expected_status {
                Ok(ProbeSuccess {
                    status,
                    elapsed,
                    target: request.target.clone(),
                })
            } else {
                Err(ProbeError::UnexpectedStatus {
                    expected: request.expected_status,
                    got: status,
                })
            }
        }
        Ok(Err(error)) => Err(error),
        Err(_) => Err(ProbeError::Timeout {
            target: request.target.clone(),
            seconds,
        }),
    };
    match &result {
        Ok(success) => tracing::info!(
            endpoint = %success.target,
            status = success.status,
            elapsed_ms = success.elapsed.as_millis() as u64,
            "connection test succeeded"
        ),
        Err(error) => tracing::info!(
            endpoint = %request.target,
            category = error.category(),
            error = %error,
            "connection test failed"
        ),
    }
    result
}

/// A rendered, checked request, ready to send.
struct Prepared {
    method: Method,
    url: Url,
    /// Host as in the URL (IPv6 without brackets), for DNS and pinning.
    host: String,
    /// Set when the host is an IP literal.
    literal: Option<IpAddr>,
    port: u16,
    /// `host:port` for messages.
    target: String,
    headers: HeaderMap,
    timeout: Duration,
    expected_status: u16,
}

/// Everything that needs no network: templates, URL, headers, limits.
fn prepare(test: &TestConnection, settings: &ConnectionSettings) -> Result<Prepared, ProbeError> {
    let timeout = u64::try_from(test.timeout_seconds)
        .ok()
        .filter(|s| (1..=60).contains(s))
        .map(Duration::from_secs)
        .ok_or_else(|| ProbeError::InvalidConfig {
            reason: format!(
                "timeoutSeconds must be 1 to 60, not {}",
                test.timeout_seconds
            ),
        })?;
    let expected_status = u16::try_from(test.expected_status)
        .ok()
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| ProbeError::InvalidConfig {
            reason: format!(
                "expectedStatus must be 100 to 599, not {}",
                test.expected_status
            ),
        })?;

    let rendered = render_url(&test.url_template, settings)?;
    let url = Url::parse(&rendered).map_err(|e| ProbeError::InvalidUrl {
        reason: settings.redact(&e.to_string()),
    })?;
    if url.scheme() != "https" {
        return Err(ProbeError::NotHttps {
            scheme: url.scheme().to_owned(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ProbeError::InvalidUrl {
            reason: "it must not contain user information; send credentials in headersTemplate"
                .to_owned(),
        });
    }
    let host_text = url.host_str().ok_or_else(|| ProbeError::InvalidUrl {
        reason: "it has no host".to_owned(),
    })?;
    let host = host_text
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host_text)
        .to_owned();
    // The URL parser has already normalised IPv4 forms such as `0x7f.1` or `2130706433`.
    let literal = host.parse::<IpAddr>().ok();
    let port = url.port_or_known_default().unwrap_or(443);
    let target = format!("{host_text}:{port}");

    let mut headers = HeaderMap::new();
    for (name, template) in &test.headers_template {
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| ProbeError::InvalidHeader {
                name: name.clone(),
                reason: "is not a valid HTTP header name".to_owned(),
            })?;
        let rendered = render_header(name, template, settings)?;
        let mut value =
            HeaderValue::from_str(&rendered.value).map_err(|_| ProbeError::InvalidHeader {
                name: name.clone(),
                reason: "the rendered value contains characters not allowed in HTTP headers \
                         (e.g. a line break)"
                    .to_owned(),
            })?;
        // Keeps the value out of HTTP libraries' Debug output.
        value.set_sensitive(rendered.contains_secret);
        headers.append(header_name, value);
    }

    let method = match test.method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Post => Method::POST,
    };
    Ok(Prepared {
        method,
        url,
        host,
        literal,
        port,
        target,
        headers,
        timeout,
        expected_status,
    })
}

/// Resolves and checks the target, then sends the request pinned to the checked addresses.
async fn send(
    request: &Prepared,
    settings: &ConnectionSettings,
    policy: &ProbePolicy,
) -> Result<reqwest::Response, ProbeError> {
    let addresses: Vec<SocketAddr> = match request.literal {
        Some(ip) => vec![SocketAddr::new(ip, request.port)],
        None => tokio::net::lookup_host((request.host.as_str(), request.port))
            .await
            .map_err(|e| ProbeError::Resolve {
                target: request.target.clone(),
                reason: settings.redact(&e.to_string()),
            })?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(ProbeError::Resolve {
            target: request.target.clone(),
            reason: "no addresses".to_owned(),
        });
    }
    if !policy.allow_private_targets {
        // Any refused address refuses the host: we cannot choose which one a client would use.
        for address in &addresses {
            if let Some(reason) = forbidden_reason(address.ip()) {
                return Err(ProbeError::ForbiddenTarget {
                    target: request.target.clone(),
                    address: address.ip(),
                    reason,
                });
            }
        }
    }

    let mut builder = reqwest::Client::builder()
        .tls_backend_native()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the host itself, past the address check.
        .no_proxy()
        .connect_timeout(request.timeout)
        .timeout(request.timeout)
        .pool_max_idle_per_host(0)
        .user_agent(concat!("marketplace-operator/", env!("CARGO_PKG_VERSION")));
    if request.literal.is_none() {
        builder = builder.resolve_to_addrs(&request.host, &addresses);
    }
    let mut roots = Vec::new();
    for pem in &policy.extra_root_certificates_pem {
        let certificates =
            Certificate::from_pem_bundle(pem).map_err(|e| ProbeError::InvalidConfig {
                reason: format!("an extra root certificate is not valid PEM: {e}"),
            })?;
        roots.extend(certificates);
    }
    if !roots.is_empty() {
        builder = builder.tls_certs_merge(roots);
    }
    let client = builder.build().map_err(|e| ProbeError::InvalidConfig {
        reason: settings.redact(&error_chain(&e.without_url())),
    })?;

    client
        .request(request.method.clone(), request.url.clone())
        .headers(request.headers.clone())
        .send()
        .await
        .map_err(|e| classify(e, request, settings))
}

/// Reads at most `limit` bytes of the body; errors are irrelevant once the status is known.
async fn drain(mut response: reqwest::Response, limit: usize) {
    let mut read = 0;
    while read < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) | Err(_) => break,
        }
    }
}

/// Sorts a reqwest error into timeout, TLS, connect or HTTP, with a redacted reason.
fn classify(
    error: reqwest::Error,
    request: &Prepared,
    settings: &ConnectionSettings,
) -> ProbeError {
    let target = request.target.clone();
    if error.is_timeout() {
        return ProbeError::Timeout {
            target,
            seconds: request.timeout.as_secs(),
        };
    }
    let connect = error.is_connect();
    let reason = settings.redact(&error_chain(&error.without_url()));
    if looks_like_tls(&reason) {
        ProbeError::Tls { target, reason }
    } else if connect {
        ProbeError::Connect { target, reason }
    } else {
        ProbeError::Http { target, reason }
    }
}

/// The error and its sources, `: `-separated, skipping a source its wrapper already quoted
/// (native-tls repeats OpenSSL's message).
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        source = inner.source();
    }
    parts.join(": ")
}

/// The TLS library's error type is private to reqwest, so TLS failures are recognised by the
/// words OpenSSL and the other native stacks use.
fn looks_like_tls(reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    ["certificate", "ssl", "tls", "handshake", "x509"]
        .iter()
        .any(|word| lower.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const SECRET: &str = "sk_live_topsecret";

    fn settings() -> ConnectionSettings {
        ConnectionSettings::new(
            [
                ("host", "api.example.com"),
                ("realmId", "42"),
                ("apiKey", SECRET),
                ("evil", "x\r\nInjected: 1"),
            ],
            ["apiKey"],
        )
    }

    fn test_connection_spec(url: &str, headers: &[(&str, &str)]) -> TestConnection {
        TestConnection {
            method: HttpMethod::Get,
            url_template: url.to_owned(),
            headers_template: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            expected_status: 200,
            timeout_seconds: 5,
        }
    }

    #[test]
    fn prepares_url_target_and_sensitive_headers() {
        let spec = test_connection_spec(
            "https://{{host}}/v3/company/{{realmId}}",
            &[
                ("Authorization", "Bearer {{apiKey}}"),
                ("Accept", "application/json"),
            ],
        );
        let prepared = prepare(&spec, &settings()).unwrap();
        assert_eq!(
            prepared.url.as_str(),
            "https://api.example.com/v3/company/42"
        );
        assert_eq!(prepared.target, "api.example.com:443");
        assert_eq!(prepared.literal, None);
        assert!(prepared.headers["authorization"].is_sensitive());
        assert!(!prepared.headers["accept"].is_sensitive());
        assert!(!format!("{:?}", prepared.headers).contains(SECRET));
    }

    #[test]
    fn ip_literals_are_normalised() {
        let spec = test_connection_spec("https://2130706433:8443/", &[]);
        let prepared = prepare(&spec, &settings()).unwrap();
        assert_eq!(prepared.literal, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(prepared.target, "127.0.0.1:8443");
        let spec = test_connection_spec("https://[::1]/", &[]);
        let prepared = prepare(&spec, &settings()).unwrap();
        assert_eq!(prepared.literal, Some("::1".parse().unwrap()));
        assert_eq!(prepared.target, "[::1]:443");
    }

    #[test]
    fn refuses_bad_requests_without_secrets() {
        let cases: Vec<(TestConnection, &str)> = vec![
            (test_connection_spec("http://{{host}}/", &[]), "template"),
            (
                test_connection_spec("https://{{host}}/?k={{apiKey}}", &[]),
                "template",
            ),
            (
                test_connection_spec("https://u:p@{{host}}/", &[]),
                "template",
            ),
            (
                test_connection_spec("https://{{host}}/", &[("X-Evil", "{{evil}}")]),
                "invalid-header",
            ),
            (
                test_connection_spec("https://{{host}}/", &[("Bad Name", "{{apiKey}}")]),
                "invalid-header",
            ),
            (
                TestConnection {
                    timeout_seconds: 0,
                    ..test_connection_spec("https://{{host}}/", &[])
                },
                "config",
            ),
        ];
        for (spec, category) in cases {
            let err = prepare(&spec, &settings())
                .err()
                .unwrap_or_else(|| panic!("{spec:?} should fail"));
            assert_eq!(err.category(), category, "{err}");
            assert!(!err.to_string().contains(SECRET), "{err}");
        }
    }

    #[tokio::test]
    async fn private_targets_are_refused_before_connecting() {
        for url in [
            "https://127.0.0.1:1/",
            "https://[::1]:1/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:10.0.0.1]/",
            "https://0/",
            "https://localhost:1/",
        ] {
            let spec = test_connection_spec(url, &[("Authorization", "Bearer {{apiKey}}")]);
            let err = test_connection(&spec, &settings(), &ProbePolicy::default())
                .await
                .unwrap_err();
            assert_eq!(err.category(), "forbidden-target", "{url}: {err}");
        }
    }

    #[test]
    fn tls_words_are_recognised() {
        assert!(looks_like_tls(
            "error:0A000086:SSL routines::certificate verify failed"
        ));
        assert!(!looks_like_tls("tcp connect error: Connection refused"));
    }
}
