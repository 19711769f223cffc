//! What the linter reports: one problem, where it is, what is wrong and how to fix it.

use std::path::PathBuf;

use serde::Serialize;

/// How bad a problem is. Only errors fail `marketplace catalog lint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The apiserver, the operator or a catalog rule would reject the change.
    Error,
    /// Legal, but almost certainly not what the author meant.
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// Stable rule ids: CI configurations and editors may match on them, so they never change
/// meaning. Serialized (and shown) in kebab-case, e.g. `requires-cycle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The file is not one well-formed YAML document (syntax, encoding, size, duplicate keys...).
    Yaml,
    /// A plain scalar YAML 1.1 tools (kubectl) read as a boolean, e.g. `on` or `no`.
    YamlAmbiguous,
    /// apiVersion/kind is not one of the catalog's kinds.
    Kind,
    /// The file's name or folder does not match the object in it.
    FileName,
    /// The file does not point editors at its JSON Schema (yaml-language-server modeline).
    SchemaModeline,
    /// The OpenAPI schema of the CRD rejects a value.
    Schema,
    /// A field the CRD does not define (server-side apply would reject it).
    UnknownField,
    /// A CEL rule (`x-kubernetes-validations`) of the CRD is false.
    Cel,
    /// A CEL rule could not be evaluated offline; the apiserver will still check it.
    CelUnevaluated,
    /// Two objects of the same kind have the same metadata.name.
    UniqueName,
    /// Two plans of one listing have the same name.
    PlanNameUnique,
    /// spec.requires.listings names a listing that is not in the catalog.
    RequiresMissing,
    /// Listings require each other in a cycle, so none can be bought first.
    RequiresCycle,
    /// A Published listing requires one that tenants cannot subscribe to.
    RequiresUnavailable,
    /// An integration's wizardConfigRef names a WizardConfig that is not in the catalog.
    WizardMissing,
    /// A WizardConfig no listing uses.
    WizardUnused,
    /// A WizardConfig's connectionSchema is not a valid JSON Schema.
    ConnectionSchema,
    /// A price's currency is not an ISO 4217 currency code.
    Currency,
    /// A release version is not semver, or is listed twice.
    ReleaseVersion,
    /// Releases are not newest first.
    ReleaseOrder,
    /// A screenshot's alt text does not describe it.
    ScreenshotAlt,
    /// A metered price's tiers do not rise (each upTo must be above the one before).
    MeteredTiers,
    /// A promotion targets a listing or plan that is not in the catalog, or a price it cannot lower.
    PromotionTargetMissing,
    /// Two promotions offer the same plan to the same buyers at the same time.
    PromotionOverlap,
    /// A promotion's price override is not below a target plan's list price.
    PromotionNoCut,
    /// A bundle member is unknown, listed twice, not Published, or priced apart from the
    /// others; or its discount leaves nothing to pay.
    BundleInvalid,
    /// A listing that was Published at the base revision is gone.
    PublishedDeleted,
    /// A listing that was Published at the base revision went back to Draft or ComingSoon.
    LifecycleRegression,
}

impl Rule {
    /// The stable id, as serialized.
    pub fn id(self) -> &'static str {
        match self {
            Rule::Yaml => "yaml",
            Rule::YamlAmbiguous => "yaml-ambiguous",
            Rule::Kind => "kind",
            Rule::FileName => "file-name",
            Rule::SchemaModeline => "schema-modeline",
            Rule::Schema => "schema",
            Rule::UnknownField => "unknown-field",
            Rule::Cel => "cel",
            Rule::CelUnevaluated => "cel-unevaluated",
            Rule::UniqueName => "unique-name",
            Rule::PlanNameUnique => "plan-name-unique",
            Rule::RequiresMissing => "requires-missing",
            Rule::RequiresCycle => "requires-cycle",
            Rule::RequiresUnavailable => "requires-unavailable",
            Rule::WizardMissing => "wizard-missing",
            Rule::WizardUnused => "wizard-unused",
            Rule::ConnectionSchema => "connection-schema",
            Rule::Currency => "currency",
            Rule::ReleaseVersion => "release-version",
            Rule::ReleaseOrder => "release-order",
            Rule::ScreenshotAlt => "screenshot-alt",
            Rule::MeteredTiers => "metered-tiers",
            Rule::PromotionTargetMissing => "promotion-target-missing",
            Rule::PromotionOverlap => "promotion-overlap",
            Rule::PromotionNoCut => "promotion-no-cut",
            Rule::BundleInvalid => "bundle-invalid",
            Rule::PublishedDeleted => "published-deleted",
            Rule::LifecycleRegression => "lifecycle-regression",
        }
    }

    /// Checks run in stages; when several stages report the same field, only the earliest is
    /// kept, because later ones are usually consequences (a too-long tagline fails both the
    /// schema's maxLength and the CEL rule; one message is enough).
    pub(crate) fn stage(self) -> u8 {
        match self {
            Rule::Yaml | Rule::YamlAmbiguous => 0,
            Rule::Kind | Rule::FileName | Rule::SchemaModeline => 1,
            Rule::Schema | Rule::UnknownField => 2,
            Rule::Cel | Rule::CelUnevaluated => 3,
            _ => 4,
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as given (relative to the working directory or the repository root).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The field concerned, e.g. `spec.plans[1].pricing.unit`; empty for the file as a whole.
    pub field_path: String,
    pub rule: Rule,
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The headline: `file:line:column: severity[rule] field: message` (the hint is separate).
impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}] ",
            self.file.display(),
            self.line,
            self.column,
            self.severity.as_str(),
            self.rule
        )?;
        if !self.field_path.is_empty() {
            write!(f, "{}: ", self.field_path)?;
        }
        f.write_str(&self.message)
    }
}
