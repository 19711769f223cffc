//! The apiserver's audit log (`ControlPlaneOptions::audit_log`) read as what each identity did:
//! the requests a service account made with its own rights, the ones it refused, and the
//! impersonations it made, so a suite can hold them against a list of permissions.

use std::collections::BTreeSet;
use std::path::Path;

use marketplace_operator::process::permissions::{Grant, Reach};
use serde::Deserialize;

/// One request as the audit log records it (the fields the suites read).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub stage: String,
    pub verb: String,
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    pub user: AuditUser,
    #[serde(default)]
    pub impersonated_user: Option<AuditUser>,
    #[serde(default)]
    pub object_ref: Option<ObjectRef>,
    #[serde(default)]
    pub response_status: Option<ResponseStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditUser {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub subresource: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub api_group: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseStatus {
    #[serde(default)]
    pub code: u16,
}

impl AuditEvent {
    pub fn code(&self) -> u16 {
        self.response_status.as_ref().map_or(0, |s| s.code)
    }

    /// `verb group/resource[/sub] in namespace named name`, for failure messages.
    pub fn describe(&self) -> String {
        let Some(object) = &self.object_ref else {
            return format!("{} {}", self.verb, self.request_uri);
        };
        let mut resource = object.resource.clone();
        if !object.subresource.is_empty() {
            resource = format!("{resource}/{}", object.subresource);
        }
        let group = if object.api_group.is_empty() {
            "core"
        } else {
            &object.api_group
        };
        let mut out = format!("{} {group}/{resource}", self.verb);
        if !object.namespace.is_empty() {
            out.push_str(&format!(" in {}", object.namespace));
        }
        if !object.name.is_empty() {
            out.push_str(&format!(" named {}", object.name));
        }
        out.push_str(&format!(" ({})", self.code()));
        out
    }

    /// What this request used of its user's own rights, as grants: its verb on its object,
    /// bound in the operator's namespace when made there and cluster-wide otherwise. A
    /// server-side apply that created its object (201) also used `create` (the apiserver
    /// authorizes that for the name).
    pub fn used(&self, operator_namespace: &str) -> Vec<Grant> {
        let Some(object) = &self.object_ref else {
            return Vec::new();
        };
        let reach = if object.namespace == operator_namespace {
            Reach::OperatorNamespace
        } else {
            Reach::Cluster
        };
        let resource = if object.subresource.is_empty() {
            object.resource.clone()
        } else {
            format!("{}/{}", object.resource, object.subresource)
        };
        let name = (!object.name.is_empty()).then(|| object.name.clone());
        let grant = |verb: &str| Grant {
            reach,
            api_group: object.api_group.clone(),
            resource: resource.clone(),
            verb: verb.to_owned(),
            name: name.clone(),
        };
        let mut out = vec![grant(&self.verb)];
        if self.verb == "patch" && self.code() == 201 {
            out.push(grant("create"));
        }
        out
    }
}

/// Every event of the audit log at `path`, in order.
pub fn read(path: &Path) -> Vec<AuditEvent> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading the audit log {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit event {l}: {e}")))
        .collect()
}

/// The user name of service account `namespace/name`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// What `user` did with its own rights (not as someone it impersonated).
pub fn own_requests<'a>(
    events: &'a [AuditEvent],
    user: &'a str,
) -> impl Iterator<Item = &'a AuditEvent> + 'a {
    events
        .iter()
        .filter(move |e| e.user.username == user && e.impersonated_user.is_none())
}

/// The requests `user` refused itself: 403s of its own requests, each described once.
pub fn refused(events: &[AuditEvent], user: &str) -> BTreeSet<String> {
    own_requests(events, user)
        .filter(|e| e.code() == 403)
        .map(AuditEvent::describe)
        .collect()
}

/// The `impersonate` grants `user` used, from the requests it made as others: `users` or
/// `serviceaccounts` for the name, `groups`, `uids`, and `userextras/<key>` for each extra.
pub fn impersonations(events: &[AuditEvent], user: &str) -> BTreeSet<Grant> {
    {
        let mut out = BTreeSet::new();
        let grant = |group: &str, resource: String| Grant {
            reach: Reach::Cluster,
            api_group: group.to_owned(),
            resource,
            verb: "impersonate".to_owned(),
            name: None,
        };
        for event in events
            .iter()
            .filter(|e| e.user.username == user && e.code() != 403)
        {
            let Some(as_user) = &event.impersonated_user else {
                continue;
            };
            if as_user.username.starts_with("system:serviceaccount:") {
                out.insert(grant("", "serviceaccounts".into()));
            } else if !as_user.username.is_empty() {
                out.insert(grant("", "users".into()));
            }
            if !as_user.groups.is_empty() {
                out.insert(grant("", "groups".into()));
            }
            if !as_user.uid.is_empty() {
                out.insert(grant("authentication.k8s.io", "uids".into()));
            }
            for key in as_user.extra.keys() {
                out.insert(grant("authentication.k8s.io", format!("userextras/{key}")));
            }
        }
        out
    }
}

/// Whether a request's `used` grant exercises the listed `listed` one: the same verb on the
/// same resource, in the reach it is bound with (a cluster-wide grant must be used outside the
/// operator's namespace to be needed cluster-wide), for its name when it names one.
pub fn exercises(used: &Grant, listed: &Grant) -> bool {
    used.api_group == listed.api_group
        && used.resource == listed.resource
        && used.verb == listed.verb
        && used.reach == listed.reach
        && (listed.name.is_none() || listed.name == used.name)
}
