//! Any bytes as one catalog file: parsing and linting must return diagnostics, never panic,
//! and every diagnostic must point at a real position and say how to fix it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use marketplace_operator::catalog::document;
use marketplace_operator::catalog::lint::{lint, LintOptions};
use marketplace_operator::catalog::SourceFile;

fuzz_target!(|data: &[u8]| {
    let _ = document::parse(data);
    let file = SourceFile {
        path: "listings/fuzz.yaml".into(),
        contents: data.to_vec(),
    };
    let report = lint(&[file], &LintOptions::default());
    for d in &report.diagnostics {
        assert!(d.line >= 1 && d.column >= 1, "{d:?}");
        assert!(!d.message.is_empty() && !d.hint.is_empty(), "{d:?}");
    }
});
