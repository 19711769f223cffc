//! The admin kubeconfig: self-contained (certificates embedded as base64 `*-data` fields), so it
//! can be copied, used by `kubectl`, KCM and kube-rs alike, and outlives nothing but the server.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::HarnessError;
use crate::pki::Pki;

/// Name used for the cluster, user and context entries.
const NAME: &str = "marketplace-harness";

/// Renders the kubeconfig YAML for `server` (e.g. `https://127.0.0.1:6443`).
///
/// Written by hand rather than serialized from [`Kubeconfig`]: every value is base64 or a URL,
/// so nothing needs quoting, and the text stays exactly what `kubectl config view` expects.
pub fn render(server: &str, pki: &Pki) -> String {
    let ca = STANDARD.encode(&pki.ca_cert);
    let cert = STANDARD.encode(&pki.admin_cert);
    let key = STANDARD.encode(&pki.admin_key);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {NAME}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {NAME}-admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {NAME}
  context:
    cluster: {NAME}
    user: {NAME}-admin
    namespace: default
current-context: {NAME}
preferences: {{}}
"
    )
}

/// Builds the kube-rs client configuration from the rendered text, so the Rust clients use
/// exactly what kubectl and KCM use.
pub async fn client_config(text: &str) -> Result<kube::Config, HarnessError> {
    let kubeconfig = Kubeconfig::from_yaml(text)?;
    Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rendered_kubeconfig_loads_with_kube() {
        let pki = Pki::generate().unwrap();
        let text = render("https://127.0.0.1:12345", &pki);
        let config = client_config(&text).await.unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:12345/");
        assert_eq!(config.root_cert.as_ref().map(Vec::len), Some(1));
    }
}
