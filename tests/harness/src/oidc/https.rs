//! The local issuer's HTTPS server: one thread answering `GET`s of a few fixed JSON documents
//! and the authorization code flow's two endpoints ([`super::code_flow`]),
//! one connection at a time, each closed after its answer. That is all an apiserver asks of an
//! issuer (discovery, then the JWKS), and with no async runtime the control plane stays usable
//! from any number of tokio runtimes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::code_flow::{AUTHORIZE_PATH, CodeFlow, FlowAnswer, TOKEN_PATH};
use crate::HarnessError;

/// A client that stalls is dropped after this long, so it cannot hold up the next one for more.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Requests are a line and a few headers; anything longer is not one of ours.
const MAX_HEAD: usize = 16 * 1024;

/// A running document server; stops on drop.
#[derive(Debug)]
pub(crate) struct DocumentServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Listens on 127.0.0.1:`port` (a free port when `None`). Separate from [`DocumentServer::spawn`]
/// because the documents name the URL, hence the port.
pub(crate) fn bind(port: Option<u16>) -> Result<TcpListener, HarnessError> {
    let port = port.unwrap_or(0);
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| {
        HarnessError::io(
            format!("binding the local OIDC issuer to 127.0.0.1:{port}"),
            e,
        )
    })
}

impl DocumentServer {
    /// Serves `documents` (path → JSON text) over TLS with the PEM certificate and key.
    pub(crate) fn spawn(
        listener: TcpListener,
        cert_pem: &str,
        key_pem: &str,
        documents: BTreeMap<String, String>,
        flow: Option<Arc<CodeFlow>>,
    ) -> Result<Self, HarnessError> {
        let tls = Arc::new(tls_config(cert_pem, key_pem)?);
        let port = listener
            .local_addr()
            .map_err(|e| HarnessError::io("reading the OIDC issuer's port", e))?
            .port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("oidc-issuer".to_owned())
            .spawn(move || {
                for incoming in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let outcome =
                        incoming.and_then(|tcp| answer(&tls, tcp, &documents, flow.as_deref()));
                    if let Err(error) = outcome {
                        tracing::debug!(%error, "OIDC issuer: a connection failed");
                    }
                }
            })
            .map_err(|e| HarnessError::io("spawning the OIDC issuer thread", e))?;
        Ok(Self {
            port,
            stop,
            thread: Some(thread),
        })
    }

    /// The port it listens on.
    #[cfg(test)]
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept, which then sees the flag.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn tls_config(cert_pem: &str, key_pem: &str) -> Result<ServerConfig, HarnessError> {
    let invalid = |e: &dyn std::fmt::Display| {
        HarnessError::Oidc(format!("the issuer's serving certificate or key: {e}"))
    };
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| invalid(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| invalid(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Reads one request (head, and a form body for POST) and writes the answer: a document
/// (200), the code flow's answers, 404, or 405.
fn answer(
    tls: &Arc<ServerConfig>,
    tcp: TcpStream,
    documents: &BTreeMap<String, String>,
    flow: Option<&CodeFlow>,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    let connection = ServerConnection::new(tls.clone()).map_err(std::io::Error::other)?;
    let mut stream = StreamOwned::new(connection, tcp);
    let mut received = Vec::new();
    let mut chunk = [0u8; 2048];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 || received.len() > MAX_HEAD {
            return Ok(());
        }
        received.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let content_length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_HEAD);
    while received.len() < head_end + content_length {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..read]);
    }
    let body = String::from_utf8_lossy(&received[head_end..]).into_owned();
    let mut request_line = head.lines().next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default();
    let target = request_line.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let answer = match (method, path, flow) {
        ("GET", AUTHORIZE_PATH, Some(flow)) => flow.authorize(query),
        ("POST", TOKEN_PATH, Some(flow)) => flow.token(&body),
        ("GET", _, _) => match documents.get(path) {
            Some(document) => fixed("200 OK", document),
            None => fixed("404 Not Found", r#"{"error":"not found"}"#),
        },
        _ => fixed("405 Method Not Allowed", r#"{"error":"only GET"}"#),
    };
    let location = answer
        .location
        .map(|l| format!("Location: {l}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "HTTP/1.1 {}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n{location}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        answer.status,
        answer.body.len(),
        answer.body
    )?;
    stream.conn.send_close_notify();
    stream.flush()
}

fn fixed(status: &'static str, body: &str) -> FlowAnswer {
    FlowAnswer {
        status,
        location: None,
        body: body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use rustls::{ClientConfig, ClientConnection, RootCertStore};

    use super::*;
    use crate::pki::Pki;

    /// GETs `path` over TLS trusting only the harness CA; returns the whole response text.
    fn get(ca_pem: &str, port: u16, path: &str) -> String {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = "127.0.0.1".try_into().unwrap();
        let connection = ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let mut stream = StreamOwned::new(connection, tcp);
        write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        stream.flush().unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn serves_its_documents_over_tls_and_stops_on_drop() {
        let pki = Pki::generate().unwrap();
        let documents = BTreeMap::from([("/doc".to_owned(), r#"{"a":1}"#.to_owned())]);
        let server = DocumentServer::spawn(
            bind(None).unwrap(),
            &pki.oidc_issuer_cert,
            &pki.oidc_issuer_key,
            documents,
            None,
        )
        .unwrap();
        let port = server.port();

        let found = get(&pki.ca_cert, port, "/doc?x=1");
        assert!(found.starts_with("HTTP/1.1 200 OK\r\n"), "{found}");
        assert!(found.ends_with("\r\n\r\n{\"a\":1}"), "{found}");
        let missing = get(&pki.ca_cert, port, "/other");
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

        // Drop joins the serving thread, so returning at all proves it stopped. (Whether the
        // port is free afterwards says nothing: tests running beside this one may take it.)
        let dropped = std::time::Instant::now();
        drop(server);
        assert!(dropped.elapsed() < IO_TIMEOUT);
    }
}
