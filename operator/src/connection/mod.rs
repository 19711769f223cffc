//! An integration subscription's connection: its settings, validated against the
//! WizardConfig's `connectionSchema`, and the WizardConfig's test-connection probe, run safely.
//!
//! - [`validate_settings`]: the tenant's Secret → [`ConnectionSettings`] or a [`SettingsError`]
//!   listing every problem by setting name (pure, no I/O).
//! - [`test_connection`]: renders the `{{name}}` templates ([`template`]), refuses non-public
//!   targets ([`address`]) unless the [`ProbePolicy`] allows them, and sends one HTTPS request
//!   pinned to the checked addresses.
//!
//! Secret settings (the WizardConfig's `secretFields`) may only travel in headers, and never
//! appear in an error, a `Debug` string or a log line: library texts pass through
//! [`redact()`](redact::redact) first.

pub mod address;
pub mod probe;
pub mod redact;
pub mod settings;
pub mod template;

pub use probe::{ProbeError, ProbePolicy, ProbeSuccess, test_connection};
pub use redact::{REDACTED, redact};
pub use settings::{ConnectionSettings, SettingProblem, SettingsError, validate_settings};
pub use template::{TemplateError, TemplateProblem};
