//! The endpoint over HTTPS: a throw-away CA's certificate for 127.0.0.1, a client that trusts
//! only that CA, and the same routes as over HTTP.

use std::sync::Arc;

use marketplace_operator::server::{Metrics, Readiness, ServerState, router, serve_tls, tls};

#[tokio::test]
async fn the_endpoint_serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // Distinct names: a leaf whose subject equals its issuer looks self-signed to OpenSSL.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "server-tls-test-ca");
    let ca_pem = ca_params.self_signed(&ca_key).expect("ca").pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &issuer).expect("cert");
    let cert_file = dir.path().join("tls.crt");
    let key_file = dir.path().join("tls.key");
    std::fs::write(&cert_file, cert.pem()).expect("write cert");
    std::fs::write(&key_file, key.serialize_pem()).expect("write key");

    let config = tls::server_config(&cert_file, &key_file).expect("server config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = ServerState::new(Readiness::new(), Arc::new(Metrics::new()), None);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_tls(listener, config, router(state), async move {
        let _ = stopped.await;
    }));

    // A client that has never seen the CA refuses the server; one that trusts it gets through.
    let stranger = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    assert!(
        stranger
            .get(format!("https://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
    let trusted = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("ca pem"))
        .build()
        .expect("client");
    let reply = trusted
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .expect("https request");
    assert_eq!(reply.status(), 200);
    // A plain-HTTP request to the HTTPS port is refused, and the server keeps serving.
    let plain = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    assert!(
        plain
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
    let again = trusted
        .get(format!("https://{addr}/readyz"))
        .send()
        .await
        .expect("again");
    assert_eq!(again.status(), 200);

    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .expect("server task")
        .expect("server result");
}

#[test]
fn unreadable_or_empty_pem_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").expect("write");
    let error = tls::server_config(&empty, &empty).expect_err("no certificate");
    assert!(error.to_string().contains("empty.pem"), "{error}");
    let missing = dir.path().join("missing.pem");
    let error = tls::server_config(&missing, &missing).expect_err("missing");
    assert!(error.to_string().contains("missing.pem"), "{error}");
}
