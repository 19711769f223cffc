//! Logging of the long-running commands, set up in one place: `RUST_LOG` (default `info`) to
//! stderr, as text for people or as one JSON object per line for log pipelines.
//!
//! In JSON every event carries the fields of the spans it happened in, flattened: a reconcile's
//! `kind`, `namespace`, `name` and `trace_id` (see [`crate::controllers::runner`]), an API
//! request's `method`, `route` and `trace_id`, so one query finds everything about one object
//! or one request.

use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// How log lines look.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message, the event's fields and
    /// the fields of its spans (object reference, trace id).
    Json,
}

/// The logging flag every long-running command flattens in.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LogArgs {
    /// `text` (human-readable) or `json` (one object per line, with the object reference and
    /// the trace id of the reconcile or request). The level comes from RUST_LOG (default info).
    #[arg(long, env = "MARKETPLACE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Installs the process's subscriber: `RUST_LOG` (default `info`) to stderr in `format`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .init(),
    }
}

/// A subscriber writing JSON lines to `writer` (what [`init`] installs, for tests).
pub fn json_subscriber<W>(writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("debug"))
        .with_writer(writer)
        .fmt_fields(JsonFields::new())
        .event_format(JsonLines)
        .finish()
}

/// One flat JSON object per event. Span fields are merged outermost first, so an inner span's
/// field wins; the event's own fields win over all of them.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(jiff::Timestamp::now().to_string()),
        );
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_string()));
        if let Some(scope) = ctx.event_scope() {
            let mut innermost = None;
            for span in scope.from_root() {
                innermost = Some(span.name());
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                // JsonFields keeps each span's fields as a JSON object's text.
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    line.extend(fields);
                }
            }
            if let Some(name) = innermost {
                line.insert("span".into(), Value::String(name.to_string()));
            }
        }
        let mut fields = FieldVisitor(Map::new());
        event.record(&mut fields);
        line.extend(fields.0);
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// An event's fields as JSON values (numbers and booleans stay typed).
struct FieldVisitor(Map<String, Value>);

impl tracing::field::Visit for FieldVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
}

/// A fresh W3C trace id (32 lowercase hex digits), for one reconcile or one request.
pub fn new_trace_id() -> String {
    let mut bytes = [0u8; 16];
    // The OS random source never fails on the platforms we run on; a zero id would still log.
    let _ = getrandom::fill(&mut bytes);
    crate::text::hex(&bytes)
}

/// The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), when valid, so a
/// caller's trace continues through the API's logs.
pub fn trace_id_of_traceparent(header: &str) -> Option<&str> {
    let mut parts = header.trim().split('-');
    let (_version, trace_id) = (parts.next()?, parts.next()?);
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let valid = trace_id.len() == 32 && hex(trace_id) && trace_id.bytes().any(|b| b != b'0');
    valid.then_some(trace_id)
}

/// The JSON lines `emit` logs, parsed (for tests of what is logged).
#[cfg(test)]
pub(crate) fn capture_json(emit: impl FnOnce()) -> Vec<Value> {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    // With a single live subscriber, tracing asks whichever thread registers a callsite first
    // for that callsite's interest: a parallel test's thread, with none, would switch it off
    // for good. A second, idle subscriber kept alive makes it ask every live one.
    static IDLE: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    IDLE.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing::subscriber::with_default(json_subscriber(move || writer.clone()), || {
        // A callsite registered while this subscriber was being installed: ask it again.
        tracing::callsite::rebuild_interest_cache();
        emit()
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_the_object_reference_and_trace_id_of_their_spans() {
        let lines = capture_json(|| {
            let span = tracing::info_span!(
                "reconcile",
                kind = "TenantSubscription",
                namespace = "tenant-acme",
                name = "routes",
                trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
            );
            let _entered = span.enter();
            tracing::warn!(category = "billing", attempt = 2u64, "reconcile failed");
            tracing::info!("second event");
        });
        assert_eq!(lines.len(), 2, "one line per event: {lines:?}");
        let first = &lines[0];
        assert_eq!(first["level"], "WARN");
        assert_eq!(first["message"], "reconcile failed");
        assert_eq!(first["category"], "billing");
        assert_eq!(first["attempt"], 2);
        assert_eq!(first["kind"], "TenantSubscription");
        assert_eq!(first["namespace"], "tenant-acme");
        assert_eq!(first["name"], "routes");
        assert_eq!(first["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(first["span"], "reconcile");
        assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["trace_id"], first["trace_id"]);
    }

    #[test]
    fn trace_ids_are_w3c_shaped_and_taken_from_a_valid_traceparent() {
        let id = new_trace_id();
        assert_eq!(id.len(), 32);
        assert_eq!(
            trace_id_of_traceparent(&format!("00-{id}-00f067aa0ba902b7-01")),
            Some(id.as_str())
        );
        assert_ne!(new_trace_id(), id);
        for bad in [
            "",
            "00-xyz-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(trace_id_of_traceparent(bad), None, "{bad}");
        }
    }
}
