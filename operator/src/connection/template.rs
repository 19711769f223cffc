//! `{{name}}` templates of a WizardConfig's test connection.
//!
//! A placeholder is `{{name}}`, with optional whitespace inside the braces (`{{ name }}`), and is
//! replaced by the connection setting of that name. Values go into the URL percent-encoded, so a
//! value cannot add path segments, a query or a fragment; secret settings may not go into the URL
//! at all (URLs end up in access logs, proxies and error messages), only into headers.

use super::redact::REDACTED;
use super::settings::ConnectionSettings;
use crate::text::percent_encode;

/// A template that cannot be rendered. Names only the template field and setting names, never a
/// setting's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct TemplateError {
    /// The template: `urlTemplate` or `headersTemplate.<Header-Name>`.
    pub field: String,
    /// What is wrong.
    pub problem: TemplateProblem,
}

/// What is wrong with a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateProblem {
    /// `{{` without a closing `}}`.
    #[error("placeholder opened at byte {0} is not closed with }}}}")]
    Unterminated(usize),
    /// `{{}}` or `{{  }}`.
    #[error("placeholder at byte {0} has no setting name")]
    EmptyName(usize),
    /// The placeholder names no connection setting that has a value.
    #[error("template uses {{{{{0}}}}} but connection setting {0:?} is not set")]
    UnknownSetting(String),
    /// A secret setting placed in the URL.
    #[error("secret field {0:?} may only be used in headersTemplate")]
    SecretInUrl(String),
    /// A URL value that is `.` or `..`, which URL parsers treat as a path step even encoded.
    #[error(
        "connection setting {0:?} is a dot segment (\".\" or \"..\") and cannot be used in the URL"
    )]
    DotSegment(String),
}

/// A rendered header value, and whether a secret went into it (such values are marked sensitive
/// so that HTTP libraries never print them).
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedHeader {
    /// The header value.
    pub value: String,
    /// True if a secret setting was substituted.
    pub contains_secret: bool,
}

impl std::fmt::Debug for RenderedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.contains_secret {
            REDACTED
        } else {
            self.value.as_str()
        };
        f.debug_struct("RenderedHeader")
            .field("value", &value)
            .field("contains_secret", &self.contains_secret)
            .finish()
    }
}

/// Renders `urlTemplate`: every value is percent-encoded; secrets are refused.
pub fn render_url(template: &str, settings: &ConnectionSettings) -> Result<String, TemplateError> {
    let field = "urlTemplate";
    let mut out = String::with_capacity(template.len());
    for part in parse(template).map_err(|problem| error(field, problem))? {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Setting(name) => {
                if settings.is_secret(name) {
                    return Err(error(field, TemplateProblem::SecretInUrl(name.to_owned())));
                }
                let value = lookup(settings, name).map_err(|p| error(field, p))?;
                if value == "." || value == ".." {
                    return Err(error(field, TemplateProblem::DotSegment(name.to_owned())));
                }
                out.push_str(&percent_encode(value));
            }
        }
    }
    Ok(out)
}

/// Renders one value of `headersTemplate` (the header's name is only used in errors). Values
/// are substituted as they are; the HTTP layer refuses control characters such as CR and LF.
pub fn render_header(
    header: &str,
    template: &str,
    settings: &ConnectionSettings,
) -> Result<RenderedHeader, TemplateError> {
    let field = format!("headersTemplate.{header}");
    let mut value = String::with_capacity(template.len());
    let mut contains_secret = false;
    for part in parse(template).map_err(|problem| error(&field, problem))? {
        match part {
            Part::Text(text) => value.push_str(text),
            Part::Setting(name) => {
                value.push_str(lookup(settings, name).map_err(|p| error(&field, p))?);
                contains_secret |= settings.is_secret(name);
            }
        }
    }
    Ok(RenderedHeader {
        value,
        contains_secret,
    })
}

enum Part<'t> {
    Text(&'t str),
    Setting(&'t str),
}

fn parse(template: &str) -> Result<Vec<Part<'_>>, TemplateProblem> {
    let mut parts = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(Part::Text(&rest[..open]));
        }
        let inner_start = open + 2;
        let close = rest[inner_start..]
            .find("}}")
            .ok_or(TemplateProblem::Unterminated(offset + open))?;
        let name = rest[inner_start..inner_start + close].trim();
        if name.is_empty() {
            return Err(TemplateProblem::EmptyName(offset + open));
        }
        parts.push(Part::Setting(name));
        let consumed = inner_start + close + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

fn lookup<'s>(settings: &'s ConnectionSettings, name: &str) -> Result<&'s str, TemplateProblem> {
    settings
        .get(name)
        .ok_or_else(|| TemplateProblem::UnknownSetting(name.to_owned()))
}

fn error(field: &str, problem: TemplateProblem) -> TemplateError {
    TemplateError {
        field: field.to_owned(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConnectionSettings {
        ConnectionSettings::new(
            [
                ("realmId", "12345"),
                ("path", "a/b?c=d#e f"),
                ("apiKey", "sk_live_abc"),
                ("dots", ".."),
                ("unicode", "é"),
            ],
            ["apiKey"],
        )
    }

    #[test]
    fn replaces_placeholders_with_optional_whitespace() {
        let url = render_url(
            "https://api.example.com/v3/company/{{realmId}}/info/{{ realmId }}?x={{  realmId}}",
            &settings(),
        )
        .unwrap();
        assert_eq!(
            url,
            "https://api.example.com/v3/company/12345/info/12345?x=12345"
        );
    }

    #[test]
    fn url_values_are_percent_encoded() {
        let url = render_url("https://h.example.com/{{path}}?q={{unicode}}", &settings()).unwrap();
        assert_eq!(url, "https://h.example.com/a%2Fb%3Fc%3Dd%23e%20f?q=%C3%A9");
    }

    #[test]
    fn unknown_setting_is_named() {
        let err = render_url("https://h.example.com/{{ nope }}", &settings()).unwrap_err();
        assert_eq!(err.problem, TemplateProblem::UnknownSetting("nope".into()));
        assert_eq!(
            err.to_string(),
            "urlTemplate: template uses {{nope}} but connection setting \"nope\" is not set"
        );
        let err = render_header("X-Id", "{{missing}}", &settings()).unwrap_err();
        assert_eq!(err.field, "headersTemplate.X-Id");
    }

    #[test]
    fn secret_in_url_is_refused_without_its_value() {
        let err = render_url("https://h.example.com/?key={{apiKey}}", &settings()).unwrap_err();
        assert_eq!(err.problem, TemplateProblem::SecretInUrl("apiKey".into()));
        let text = err.to_string();
        assert!(
            text.contains("secret field \"apiKey\" may only be used in headersTemplate"),
            "{text}"
        );
        assert!(!text.contains("sk_live_abc"));
    }

    #[test]
    fn secrets_allowed_in_headers_and_marked() {
        let header = render_header("Authorization", "Bearer {{apiKey}}", &settings()).unwrap();
        assert_eq!(header.value, "Bearer sk_live_abc");
        assert!(header.contains_secret);
        assert!(!format!("{header:?}").contains("sk_live_abc"));
        let plain = render_header("Accept", "application/json", &settings()).unwrap();
        assert_eq!(plain.value, "application/json");
        assert!(!plain.contains_secret);
    }

    #[test]
    fn malformed_templates() {
        assert_eq!(
            render_url("https://h/{{realmId", &settings())
                .unwrap_err()
                .problem,
            TemplateProblem::Unterminated(10)
        );
        assert_eq!(
            render_url("https://h/{{ }}", &settings())
                .unwrap_err()
                .problem,
            TemplateProblem::EmptyName(10)
        );
        assert_eq!(
            render_url("https://h/{{dots}}", &settings())
                .unwrap_err()
                .problem,
            TemplateProblem::DotSegment("dots".into())
        );
        // A lone closing pair is plain text.
        assert_eq!(
            render_url("https://h/}}", &settings()).unwrap(),
            "https://h/}}"
        );
    }
}
