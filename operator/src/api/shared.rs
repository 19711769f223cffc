//! Small value types shared by several kinds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Kubernetes object name (RFC 1123 label: lowercase letters, digits and dashes).
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(transparent)]
pub struct ObjectName(
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub String,
);

/// A feature code (lower_snake_case, e.g. `route_optimization`): the unit of entitlement that
/// product code checks.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(transparent)]
pub struct FeatureCode(
    #[schemars(
        length(min = 2, max = 63),
        regex(pattern = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
    )]
    pub String,
);

/// `as_str`, `Display` and `From<&str>` of a one-string newtype.
macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}
pub(crate) use string_newtype;
string_newtype!(ObjectName);
string_newtype!(FeatureCode);

/// A reference to a Secret in the same namespace as the referring object.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}
