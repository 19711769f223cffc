//! Who is calling and may they read a tenant: Kubernetes decides. A bearer token is checked
//! with a TokenReview; reading tenant T is a SubjectAccessReview for `get entitlements` in T's
//! namespace, i.e. the RBAC the Tenant reconciler writes (viewers, admins and billing admins
//! read). Both answers are cached (see [`ReviewCache`]), so a known caller's reads make no
//! apiserver call. The process needs `create` on tokenreviews and subjectaccessreviews (the
//! built-in `system:auth-delegator` ClusterRole).
//!
//! A product server may send a backend key as `X-API-Key` instead ([`super::api_keys`]): it
//! reads its own tenant and nothing else, and is checked against watched Secrets, with no review.
//! Reads are then counted against the tenant's read rate ([`super::read_limits`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};
use sha2::{Digest, Sha256};

use super::api_keys::store::ApiKeyStore;
use super::api_keys::{API_KEY_HEADER, KeyScope};
use super::read_limits::{ReadClass, ReadLimitSettings, ReadLimiter};
use super::review_cache::ReviewCache;
use crate::controllers::tenant_rbac::namespace_name;

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token, or one Kubernetes does not accept (401).
    Unauthenticated,
    /// The caller may not read this tenant (403).
    Forbidden,
    /// A review could not be made (503); not cached.
    Unavailable(String),
    /// The tenant's reads are over its rate (429 with `Retry-After`).
    RateLimited { retry_after_seconds: u64 },
}

/// How long and how many review answers are kept.
#[derive(Clone, Copy, Debug)]
pub struct ReviewCacheSettings {
    pub ttl: Duration,
    pub capacity: usize,
}

type TokenHash = [u8; 32];

/// Checks callers against the apiserver, with cached answers.
pub struct Authorizer {
    client: Client,
    identities: Mutex<ReviewCache<TokenHash, Option<Arc<UserInfo>>>>,
    decisions: Mutex<ReviewCache<(TokenHash, String, Access), bool>>,
    /// The backend keys; without them every `X-API-Key` is refused.
    api_keys: Option<ApiKeyStore>,
    read_limits: ReadLimiter,
}

/// What a caller asks to do in a tenant's namespace, as the Tenant's RBAC grants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read the tenant's catalog, subscriptions and entitlements (viewers and up).
    Read,
    /// Create subscriptions (billing admins).
    Buy,
    /// Change or cancel subscriptions (billing admins).
    Change,
    /// Take steps on the approval ladder: create SubscriptionActions in the operator's
    /// namespace (superadmins).
    Act,
    /// Report usage events (`POST /v1/usage`): the tenant's own backend keys, or a token
    /// allowed `create` on the (virtual) `usageevents` resource in the tenant's namespace.
    ReportUsage,
}

impl Access {
    /// The SubjectAccessReview's verb and `marketplace.dev` resource.
    fn attributes(self) -> (&'static str, &'static str) {
        match self {
            Access::Read => ("get", "entitlements"),
            Access::Buy => ("create", "tenantsubscriptions"),
            Access::Change => ("patch", "tenantsubscriptions"),
            Access::Act => ("create", "subscriptionactions"),
            Access::ReportUsage => ("create", "usageevents"),
        }
    }
}

/// An authenticated caller: who Kubernetes says the token belongs to, or a backend key.
#[derive(Clone, Debug)]
pub struct Caller {
    hash: TokenHash,
    pub user: Arc<UserInfo>,
    /// Set for a backend key: the one tenant it reads (and it may do nothing else).
    api_key: Option<KeyScope>,
}

impl Caller {
    /// The tenant of a backend key (`None` for a token).
    pub fn key_tenant(&self) -> Option<&str> {
        self.api_key.as_ref().map(|scope| scope.tenant.as_str())
    }

    /// A backend key's caller: named after the key, with no groups, so even a write attempted
    /// as it would find no RBAC that lets it.
    fn for_key(scope: KeyScope) -> Caller {
        let user = UserInfo {
            username: Some(format!(
                "marketplace.dev/api-key:{}/{}",
                scope.tenant, scope.id
            )),
            ..UserInfo::default()
        };
        Caller {
            hash: [0; 32],
            user: Arc::new(user),
            api_key: Some(scope),
        }
    }
}

/// The bearer token of `headers`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether the request carries any credentials (a bearer token or a backend key).
pub fn has_credentials(headers: &HeaderMap) -> bool {
    bearer(headers).is_some() || headers.contains_key(API_KEY_HEADER)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Authorizer {
    pub fn new(client: Client, settings: ReviewCacheSettings) -> Self {
        Authorizer {
            client,
            identities: Mutex::new(ReviewCache::new(settings.ttl, settings.capacity)),
            decisions: Mutex::new(ReviewCache::new(settings.ttl, settings.capacity)),
            api_keys: None,
            read_limits: ReadLimiter::new(ReadLimitSettings::UNLIMITED),
        }
    }

    /// Accepts `X-API-Key` backend keys found in `keys`.
    pub fn with_api_keys(mut self, keys: ApiKeyStore) -> Self {
        self.api_keys = Some(keys);
        self
    }

    /// Limits each tenant's reads to `limits`.
    pub fn with_read_limits(mut self, limits: ReadLimitSettings) -> Self {
        self.read_limits = ReadLimiter::new(limits);
        self
    }

    /// Allows an entitlement check if the caller may read `tenant` and the tenant's checks are
    /// within their rate.
    pub async fn may_read(&self, headers: &HeaderMap, tenant: &str) -> Result<(), Refusal> {
        let caller = self.caller(headers).await?;
        if self.allows(&caller, tenant, Access::Read).await? {
            self.within_read_rate(tenant, ReadClass::Check)
        } else {
            Err(Refusal::Forbidden)
        }
    }

    /// Counts a read of `class` in `tenant` (once the caller may read it): refused when the
    /// tenant is over its rate.
    pub fn within_read_rate(&self, tenant: &str, class: ReadClass) -> Result<(), Refusal> {
        self.read_limits
            .admit(tenant, class, Instant::now())
            .map_err(|retry_after_seconds| Refusal::RateLimited {
                retry_after_seconds,
            })
    }

    /// Who the request comes from: its `X-API-Key` if it has one, else its bearer token.
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        if let Some(key) = headers.get(API_KEY_HEADER) {
            return self.key_caller(key.to_str().unwrap_or_default());
        }
        let token = bearer(headers).ok_or(Refusal::Unauthenticated)?;
        let hash: TokenHash = Sha256::digest(token.as_bytes()).into();
        let user = self.identity(token, hash).await?;
        Ok(Caller {
            hash,
            user,
            api_key: None,
        })
    }

    fn key_caller(&self, key: &str) -> Result<Caller, Refusal> {
        let keys = self.api_keys.as_ref().ok_or(Refusal::Unauthenticated)?;
        match keys.check(key.trim(), jiff::Timestamp::now()) {
            Ok(scope) => Ok(Caller::for_key(scope)),
            Err(why) => {
                tracing::debug!(?why, "X-API-Key refused");
                Err(Refusal::Unauthenticated)
            }
        }
    }

    /// Whether `caller` may do `access` in `tenant`'s namespace (cached per token).
    pub async fn allows(
        &self,
        caller: &Caller,
        tenant: &str,
        access: Access,
    ) -> Result<bool, Refusal> {
        self.allows_in(caller, &namespace_name(tenant), access)
            .await
    }

    /// Whether `caller` may do `access` in `namespace` (cached per token).
    pub async fn allows_in(
        &self,
        caller: &Caller,
        namespace: &str,
        access: Access,
    ) -> Result<bool, Refusal> {
        if let Some(scope) = &caller.api_key {
            // A backend key reads its own tenant and reports its usage, and does nothing else
            // anywhere.
            return Ok(matches!(access, Access::Read | Access::ReportUsage)
                && namespace == namespace_name(&scope.tenant));
        }
        let key = (caller.hash, namespace.to_string(), access);
        let cached = lock(&self.decisions).get(&key, Instant::now());
        match cached {
            Some(allowed) => Ok(allowed),
            None => {
                let allowed = self.review_access(&caller.user, namespace, access).await?;
                lock(&self.decisions).insert(key, allowed, Instant::now());
                Ok(allowed)
            }
        }
    }

    async fn identity(&self, token: &str, hash: TokenHash) -> Result<Arc<UserInfo>, Refusal> {
        let cached = lock(&self.identities).get(&hash, Instant::now());
        let user = match cached {
            Some(user) => user,
            None => {
                let review = TokenReview {
                    spec: TokenReviewSpec {
                        token: token.to_string(),
                        ..TokenReviewSpec::default()
                    },
                    ..TokenReview::default()
                };
                let answer = Api::<TokenReview>::all(self.client.clone())
                    .create(&PostParams::default(), &review)
                    .await
                    .map_err(|e| Refusal::Unavailable(format!("TokenReview: {e}")))?;
                let user = answer
                    .status
                    .filter(|s| s.authenticated == Some(true))
                    .and_then(|s| s.user)
                    .map(Arc::new);
                lock(&self.identities).insert(hash, user.clone(), Instant::now());
                user
            }
        };
        user.ok_or(Refusal::Unauthenticated)
    }

    async fn review_access(
        &self,
        user: &UserInfo,
        namespace: &str,
        access: Access,
    ) -> Result<bool, Refusal> {
        let (verb, resource) = access.attributes();
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username.clone(),
                uid: user.uid.clone(),
                groups: user.groups.clone(),
                extra: user.extra.clone(),
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_string()),
                    verb: Some(verb.into()),
                    group: Some("marketplace.dev".into()),
                    resource: Some(resource.into()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| Refusal::Unavailable(format!("SubjectAccessReview: {e}")))?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_non_empty_bearer_token_is_taken() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("authorization", v.parse().unwrap());
            h
        };
        assert_eq!(bearer(&with("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&with("bearer abc")), Some("abc"));
        assert_eq!(bearer(&with("Bearer ")), None);
        assert_eq!(bearer(&with("Basic abc")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn a_key_or_a_token_counts_as_credentials() {
        let mut headers = HeaderMap::new();
        assert!(!has_credentials(&headers));
        headers.insert("x-api-key", "mk_acme".parse().unwrap());
        assert!(has_credentials(&headers));
    }

    /// An authorizer whose apiserver does not answer: any review would fail.
    fn offline_authorizer() -> Authorizer {
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        let client = Client::try_from(config).expect("client");
        let settings = ReviewCacheSettings {
            ttl: Duration::from_secs(10),
            capacity: 10,
        };
        Authorizer::new(client, settings)
    }

    #[tokio::test]
    async fn a_backend_key_reads_and_reports_usage_for_its_own_tenant_and_does_nothing_else() {
        let auth = offline_authorizer();
        let caller = Caller::for_key(KeyScope {
            tenant: "acme".into(),
            id: "1a2b3c4d".into(),
        });
        // No review is made (the apiserver above does not exist).
        assert_eq!(auth.allows(&caller, "acme", Access::Read).await, Ok(true));
        assert_eq!(
            auth.allows(&caller, "acme", Access::ReportUsage).await,
            Ok(true)
        );
        for (tenant, access) in [
            ("globex", Access::Read),
            ("globex", Access::ReportUsage),
            ("acme", Access::Buy),
            ("acme", Access::Change),
            ("acme", Access::Act),
        ] {
            assert_eq!(
                auth.allows(&caller, tenant, access).await,
                Ok(false),
                "{tenant} {access:?}"
            );
        }
        for access in [Access::Read, Access::Act] {
            assert_eq!(
                auth.allows_in(&caller, "marketplace-system", access).await,
                Ok(false),
                "the operator's namespace: {access:?}"
            );
        }
        assert!(caller.user.groups.is_none());
    }

    #[tokio::test]
    async fn keys_are_refused_when_the_process_has_none() {
        assert!(matches!(
            offline_authorizer().key_caller("mk_acme_1a2b3c4d_00"),
            Err(Refusal::Unauthenticated)
        ));
    }
}
