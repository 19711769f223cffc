//! The key Secrets, watched: one label-selected watch of Secrets across the cluster
//! (`marketplace.dev/api-key=true`), so checking a key costs one cache read and a hash, never an
//! apiserver call. A deleted Secret stops its key as soon as the watch reports it (typically well
//! under a second). The watch needs `list` and `watch` on Secrets cluster-wide: RBAC cannot
//! narrow that to a label, so run the API with `--api-keys=false` where it must not have it.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::{API_KEY_SELECTOR, KeyRejection, KeyScope, parse_key, secret_name, stored_key, verify};
use crate::controllers::tenant_rbac::namespace_name;
use crate::runtime::SharedCache;

/// The watched key Secrets.
#[derive(Clone)]
pub struct ApiKeyStore {
    secrets: SharedCache<Secret>,
}

impl ApiKeyStore {
    /// Starts the watch on the current runtime.
    pub fn start(client: &Client) -> Self {
        let config = watcher::Config::default().labels(API_KEY_SELECTOR);
        ApiKeyStore {
            secrets: SharedCache::start_with(Api::all(client.clone()), config),
        }
    }

    /// A store over an existing cache (tests feed one from a script).
    pub fn from_cache(secrets: SharedCache<Secret>) -> Self {
        ApiKeyStore { secrets }
    }

    /// Resolves once the first full list of key Secrets is in.
    pub async fn wait_until_ready(&self) {
        self.secrets.wait_until_ready().await;
    }

    /// The tenant `text` may read, if it is a live key.
    pub fn check(&self, text: &str, now: Timestamp) -> Result<KeyScope, KeyRejection> {
        let presented = parse_key(text).ok_or(KeyRejection::Malformed)?;
        let reference =
            ObjectRef::new(&secret_name(presented.id)).within(&namespace_name(presented.tenant));
        let stored = match self.secrets.get(&reference) {
            Some(secret) => Some(stored_key(&secret).ok_or(KeyRejection::BadSecret)?),
            None => None,
        };
        verify(&presented, stored.as_ref(), now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;
    use kube::runtime::watcher::Event;

    use super::*;
    use crate::front_door::api_keys::{format_key, secret_data};

    fn secret(namespace: &str, name: &str, key: &str) -> Secret {
        let now: Timestamp = "2026-06-01T12:00:00Z".parse().unwrap();
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                ..ObjectMeta::default()
            },
            data: Some(
                secret_data(key, "server", now, None)
                    .into_iter()
                    .map(|(k, v)| (k, ByteString(v.into_bytes())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    #[tokio::test]
    async fn a_key_is_found_by_its_tenant_and_id_only() {
        let key = format_key("acme", &[1, 2, 3, 4], &[9; 32]);
        let other_tenant = format_key("globex", &[1, 2, 3, 4], &[9; 32]);
        let events = futures::stream::iter(vec![
            Ok(Event::Init),
            Ok(Event::InitApply(secret(
                "tenant-acme",
                "marketplace-api-key-01020304",
                &key,
            ))),
            // A's hash in B's namespace under the same id: not a key for B.
            Ok(Event::InitApply(secret(
                "tenant-globex",
                "marketplace-api-key-01020304",
                &key,
            ))),
            Ok::<_, watcher::Error>(Event::InitDone),
        ])
        .chain(futures::stream::pending());
        let store = ApiKeyStore::from_cache(SharedCache::from_events(events));
        tokio::time::timeout(Duration::from_secs(5), store.wait_until_ready())
            .await
            .expect("ready");
        let now = "2026-06-02T00:00:00Z".parse().unwrap();
        assert_eq!(
            store.check(&key, now),
            Ok(KeyScope {
                tenant: "acme".into(),
                id: "01020304".into()
            })
        );
        assert_eq!(
            store.check(&other_tenant, now),
            Err(KeyRejection::WrongSecret)
        );
        let unknown = format_key("acme", &[4, 3, 2, 1], &[9; 32]);
        assert_eq!(store.check(&unknown, now), Err(KeyRejection::Unknown));
        assert_eq!(store.check("nope", now), Err(KeyRejection::Malformed));
    }
}
