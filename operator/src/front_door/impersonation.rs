//! Writes are made as the caller: the API's own credentials only impersonate the user, groups,
//! uid and extras the TokenReview returned, so the apiserver's RBAC, admission and audit log see
//! the real person. The API's service account needs `impersonate` on users, groups,
//! serviceaccounts, uids and userextras (see the README's Entitlement API section).

use k8s_openapi::api::authentication::v1::UserInfo;
use kube::{Client, Config};

use super::auth::Refusal;

/// Makes clients that act as a reviewed caller.
#[derive(Clone)]
pub struct Impersonator {
    config: Config,
}

impl Impersonator {
    pub fn new(config: Config) -> Self {
        Impersonator { config }
    }

    /// A client whose every request is made as `user`.
    pub fn client_for(&self, user: &UserInfo) -> Result<Client, Refusal> {
        let mut config = self.config.clone();
        let auth = &mut config.auth_info;
        auth.impersonate = user.username.clone();
        auth.impersonate_uid = user.uid.clone().filter(|u| !u.is_empty());
        auth.impersonate_groups = user.groups.clone().filter(|g| !g.is_empty());
        auth.impersonate_user_extra = user
            .extra
            .as_ref()
            .filter(|e| !e.is_empty())
            .map(|e| e.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        Client::try_from(config).map_err(|e| Refusal::Unavailable(format!("client: {e}")))
    }
}
