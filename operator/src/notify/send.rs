//! The I/O of delivery: one attempt to hand one outbox record to its channel (SMTP, Slack,
//! Standard Webhooks). Errors are short sentences that never carry a credential or a secret URL
//! (reqwest errors lose their URL; SMTP errors carry only the server's reply).

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use sha2::Sha256;

use crate::api::notification::NotificationSpec;
use crate::api::notification_channel::SmtpSecurity;

/// How long one attempt may take (connect, hand over, answer).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A channel with its secrets read: what one attempt needs.
pub enum Destination {
    Smtp {
        host: String,
        port: i32,
        security: SmtpSecurity,
        credentials: Option<(String, String)>,
        /// PEM CA certificates trusted besides the system's.
        ca: Option<String>,
        from: String,
    },
    Slack {
        url: String,
    },
    Webhook {
        url: String,
        /// The `whsec_...` secret.
        secret: String,
    },
}

// Never print a destination: it holds credentials.
impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Smtp { host, port, .. } => write!(f, "Smtp({host}:{port})"),
            Destination::Slack { .. } => f.write_str("Slack(<redacted>)"),
            Destination::Webhook { .. } => f.write_str("Webhook(<redacted>)"),
        }
    }
}

/// The e-mail Message-ID of a record (its name is derived from the event id).
pub fn message_id(record: &str) -> String {
    format!("<{record}@marketplace.dev>")
}

/// One attempt: `Ok` once the receiver accepted the message.
pub async fn send(
    http: &reqwest::Client,
    destination: &Destination,
    record: &str,
    spec: &NotificationSpec,
    now: jiff::Timestamp,
) -> Result<(), String> {
    match destination {
        Destination::Smtp {
            host,
            port,
            security,
            credentials,
            ca,
            from,
        } => {
            let to = spec
                .recipient
                .as_deref()
                .ok_or("an e-mail record has no recipient")?;
            let message = email(record, spec, from, to)?;
            let port_number =
                u16::try_from(*port).map_err(|_| format!("SMTP port {port} is out of range"))?;
            let mut builder =
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                    .port(port_number)
                    .timeout(Some(ATTEMPT_TIMEOUT));
            match security {
                // Never a password in clear text.
                SmtpSecurity::None if credentials.is_some() => {
                    return Err(format!(
                        "SMTP {host}:{port}: credentials are only sent over TLS (security StartTls or Tls)"
                    ));
                }
                SmtpSecurity::None => {}
                SmtpSecurity::StartTls => builder = builder.tls(Tls::Required(tls(host, ca)?)),
                SmtpSecurity::Tls => builder = builder.tls(Tls::Wrapper(tls(host, ca)?)),
            }
            if let Some((user, password)) = credentials {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            builder
                .build()
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| format!("SMTP {host}:{port}: {e}"))
        }
        Destination::Slack { url } => {
            let body = json!({"text": format!("*{}*\n{}", spec.subject, spec.text)});
            post(http.post(url).json(&body), "Slack webhook").await
        }
        Destination::Webhook { url, secret } => {
            let body = serde_json::to_vec(&webhook_payload(spec, now)).unwrap_or_default();
            let timestamp = now.as_second().to_string();
            let signature = sign(secret, record, &timestamp, &body)?;
            let request = http
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", record)
                .header("webhook-timestamp", &timestamp)
                .header("webhook-signature", signature)
                .body(body);
            post(request, "webhook").await
        }
    }
}

/// TLS for `host`: its certificate must be valid for it and signed by a system CA or one of
/// `ca` (PEM, one or more certificates).
fn tls(host: &str, ca: &Option<String>) -> Result<TlsParameters, String> {
    let mut params = TlsParameters::builder(host.to_string());
    if let Some(pem) = ca {
        for block in pem_blocks(pem) {
            let cert = Certificate::from_pem(block.as_bytes())
                .map_err(|e| format!("SMTP CA certificate: {e}"))?;
            params = params.add_root_certificate(cert);
        }
    }
    params.build().map_err(|e| format!("SMTP TLS setup: {e}"))
}

/// The PEM certificates of a bundle, one by one.
fn pem_blocks(bundle: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    bundle
        .split_inclusive(END)
        .filter(|b| b.ends_with(END))
        // Text between certificates (comments) is not part of either.
        .filter_map(|b| b.find(BEGIN).map(|at| b[at..].to_string()))
        .collect()
}

async fn post(request: reqwest::RequestBuilder, what: &str) -> Result<(), String> {
    let response = request
        .timeout(ATTEMPT_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{what}: {}", e.without_url()))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{what} answered HTTP {}", status.as_u16()))
    }
}

fn email(record: &str, spec: &NotificationSpec, from: &str, to: &str) -> Result<Message, String> {
    let from: Mailbox = from.parse().map_err(|e| format!("from address: {e}"))?;
    let to: Mailbox = to.parse().map_err(|e| format!("recipient address: {e}"))?;
    let builder = Message::builder()
        .message_id(Some(message_id(record)))
        .from(from)
        .to(to)
        .subject(spec.subject.clone());
    match &spec.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            spec.text.clone(),
            html.clone(),
        )),
        None => builder
            .header(ContentType::TEXT_PLAIN)
            .body(spec.text.clone()),
    }
    .map_err(|e| format!("building the e-mail: {e}"))
}

/// The JSON a webhook receives, in the Standard Webhooks payload shape.
pub fn webhook_payload(spec: &NotificationSpec, now: jiff::Timestamp) -> serde_json::Value {
    json!({
        "type": format!("marketplace.{:?}", spec.event),
        "timestamp": now.to_string(),
        "data": {
            "eventId": spec.event_id,
            "audience": spec.audience,
            "subject": spec.subject,
            "text": spec.text,
            "occurredAt": spec.occurred_at.0.to_string(),
            "facts": spec.data,
        },
    })
}

/// The `webhook-signature` header of Standard Webhooks: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body`, keyed with the base64 part of the `whsec_` secret.
pub fn sign(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> Result<String, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "the webhook signing secret is not whsec_ followed by base64".to_string())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|_| "the webhook signing secret is empty".to_string())?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", b64.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::{pem_blocks, sign};

    #[test]
    fn a_ca_bundle_is_read_certificate_by_certificate() {
        let one = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
        let two = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----";
        let bundle = format!("# private CA\n{one}\n\n{two}\n");
        let blocks = pem_blocks(&bundle);
        assert_eq!(blocks.len(), 2);
        assert!(blocks[0].starts_with("-----BEGIN") && blocks[0].contains("AAAA"));
        assert!(blocks[1].contains("BBBB") && !blocks[1].contains("AAAA"));
        assert!(pem_blocks("no certificate here").is_empty());
    }

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signatures_match_the_standard_webhooks_reference() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let got = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body).unwrap();
        assert_eq!(got, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(sign("whsec_!!", "id", "1", b"").is_err());
    }
}
