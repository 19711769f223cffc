//! `docs/openapi.json` is generated from the code; this fails when it differs from what
//! `marketplace openapi` writes, so the committed document can never drift from the API.

use std::path::PathBuf;

use marketplace_operator::front_door::openapi_document::{COMMITTED_PATH, REGENERATE, rendered};

#[test]
fn committed_openapi_document_matches_the_generated_one() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(COMMITTED_PATH);
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == rendered(),
        "{COMMITTED_PATH} is out of date; run `{REGENERATE}`"
    );
}
