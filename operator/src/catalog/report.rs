//! Lint reports for people (text, like compiler errors), for GitHub Actions (workflow commands
//! that become annotations on the pull request's diff) and for tools (JSON).

use std::fmt::Write;

use serde::Serialize;

use super::lint::{Diagnostic, LintReport, Severity};

/// How `marketplace catalog lint` prints its findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `file:line:column: error[rule] field: message` and a `help:` line.
    Text,
    /// GitHub Actions `::error`/`::warning` workflow commands, then the summary.
    Github,
    /// A JSON array of diagnostics (file, line, column, field_path, rule, severity, message, hint).
    Json,
}

/// The whole report in `format`.
pub fn render(report: &LintReport, format: Format) -> String {
    match format {
        Format::Text => text(report),
        Format::Github => github(report),
        Format::Json => json(report),
    }
}

fn text(report: &LintReport) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        let _ = writeln!(out, "{d}");
        let _ = writeln!(out, "  help: {}", d.hint);
    }
    if !report.diagnostics.is_empty() {
        out.push('\n');
    }
    out.push_str(&summary(report));
    out.push('\n');
    out
}

/// "2 errors in 1 of 22 files, 1 warning", "no problems in 22 files".
pub fn summary(report: &LintReport) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let files = plural(report.files_checked, "file");
    let warnings = report.warning_count();
    let warnings = if warnings == 0 {
        String::new()
    } else {
        format!(", {}", plural(warnings, "warning"))
    };
    match report.error_count() {
        0 if warnings.is_empty() => format!("no problems in {files}"),
        0 => format!("no errors in {files}{warnings}"),
        errors => format!(
            "{} in {} of {files}{warnings}",
            plural(errors, "error"),
            report.files_with_errors()
        ),
    }
}

fn github(report: &LintReport) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        let command = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let title = if d.field_path.is_empty() {
            d.rule.to_string()
        } else {
            format!("{}: {}", d.rule, d.field_path)
        };
        let message = format!("{}\nhelp: {}", d.message, d.hint);
        let _ = writeln!(
            out,
            "::{command} file={},line={},col={},title={}::{}",
            escape_property(&d.file.to_string_lossy()),
            d.line,
            d.column,
            escape_property(&title),
            escape_data(&message)
        );
    }
    out.push_str(&summary(report));
    out.push('\n');
    out
}

/// Workflow command data: `%`, CR and LF are escaped (toolkit `escapeData`).
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow command properties additionally escape `:` and `,` (toolkit `escapeProperty`).
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The JSON shape of one diagnostic: field names are stable, paths are strings.
#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    file: String,
    line: usize,
    column: usize,
    field_path: &'a str,
    rule: &'static str,
    severity: Severity,
    message: &'a str,
    hint: &'a str,
}

impl<'a> From<&'a Diagnostic> for JsonDiagnostic<'a> {
    fn from(d: &'a Diagnostic) -> Self {
        JsonDiagnostic {
            file: d.file.to_string_lossy().into_owned(),
            line: d.line,
            column: d.column,
            field_path: &d.field_path,
            rule: d.rule.id(),
            severity: d.severity,
            message: &d.message,
            hint: &d.hint,
        }
    }
}

fn json(report: &LintReport) -> String {
    let items: Vec<JsonDiagnostic<'_>> = report
        .diagnostics
        .iter()
        .map(JsonDiagnostic::from)
        .collect();
    // Serializing strings and numbers cannot fail; an empty array is the safe fallback anyway.
    let mut out = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_owned());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::lint::Rule;

    fn report() -> LintReport {
        LintReport {
            objects: Vec::new(),
            diagnostics: vec![Diagnostic {
                file: "catalog/listings/x.yaml".into(),
                line: 12,
                column: 5,
                field_path: "spec.partner".into(),
                rule: Rule::Cel,
                severity: Severity::Error,
                message: "partner url must be an https:// URL, 100% sure".into(),
                hint: "use https".into(),
            }],
            files_checked: 22,
        }
    }

    #[test]
    fn text_reads_like_a_compiler() {
        assert_eq!(
            render(&report(), Format::Text),
            "catalog/listings/x.yaml:12:5: error[cel] spec.partner: partner url must be an https:// URL, 100% sure\n  help: use https\n\n1 error in 1 of 22 files\n"
        );
    }

    #[test]
    fn github_commands_escape_properties_and_data() {
        let out = render(&report(), Format::Github);
        assert_eq!(
            out,
            "::error file=catalog/listings/x.yaml,line=12,col=5,title=cel%3A spec.partner::partner url must be an https:// URL, 100%25 sure%0Ahelp: use https\n1 error in 1 of 22 files\n"
        );
    }

    #[test]
    fn json_has_stable_field_names() {
        let out: serde_json::Value =
            serde_json::from_str(&render(&report(), Format::Json)).expect("JSON");
        assert_eq!(
            out,
            serde_json::json!([{
                "file": "catalog/listings/x.yaml", "line": 12, "column": 5, "field_path": "spec.partner",
                "rule": "cel", "severity": "error",
                "message": "partner url must be an https:// URL, 100% sure", "hint": "use https",
            }])
        );
    }

    #[test]
    fn summaries_count_errors_files_and_warnings() {
        let mut report = report();
        assert_eq!(summary(&report), "1 error in 1 of 22 files");
        report.diagnostics[0].severity = Severity::Warning;
        assert_eq!(summary(&report), "no errors in 22 files, 1 warning");
        report.diagnostics.clear();
        assert_eq!(summary(&report), "no problems in 22 files");
    }
}
