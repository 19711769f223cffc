//! Who is calling and may they read a tenant: Kubernetes decides. A bearer token is checked
//! with a TokenReview; reading tenant T is a SubjectAccessReview for `get entitlements` in T's
//! namespace, i.e. the RBAC the Tenant reconciler writes (viewers, admins and billing admins
//! read). Both answers are cached (see [`ReviewCache`]), so a known caller's reads make no
//! apiserver call. The process needs `create` on tokenreviews and subjectaccessreviews (the
//! built-in `system:auth-delegator` ClusterRole).

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
}

impl Access {
    /// The SubjectAccessReview's verb and `marketplace.dev` resource.
    fn attributes(self) -> (&'static str, &'static str) {
        match self {
            Access::Read => ("get", "entitlements"),
            Access::Buy => ("create", "tenantsubscriptions"),
            Access::Change => ("patch", "tenantsubscriptions"),
            Access::Act => ("create", "subscriptionactions"),
        }
    }
}

/// An authenticated caller: who Kubernetes says the token belongs to.
#[derive(Clone, Debug)]
pub struct Caller {
    hash: TokenHash,
    pub user: Arc<UserInfo>,
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Authorizer {
    pub fn new(client: Client, settings: ReviewCacheSettings) -> Self {
        Authorizer {
            client,
            identities: Mutex::new(ReviewCache::new(settings.ttl, settings.capacity)),
            decisions: Mutex::new(ReviewCache::new(settings.ttl, settings.capacity)),
        }
    }

    /// Allows the request if its bearer token belongs to someone who may read `tenant`.
    pub async fn may_read(&self, headers: &HeaderMap, tenant: &str) -> Result<(), Refusal> {
        let caller = self.caller(headers).await?;
        if self.allows(&caller, tenant, Access::Read).await? {
            Ok(())
        } else {
            Err(Refusal::Forbidden)
        }
    }

    /// Who the bearer token of `headers` belongs to.
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        let token = bearer(headers).ok_or(Refusal::Unauthenticated)?;
        let hash: TokenHash = Sha256::digest(token.as_bytes()).into();
        let user = self.identity(token, hash).await?;
        Ok(Caller { hash, user })
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
}
