//! `marketplace audit verify` as a user runs it: exit 0 on an intact chain, 1 at the first
//! broken line, 2 when the file cannot be read.

use marketplace_operator::audit_log::{AuditEntry, AuditLog};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

fn marketplace_audit_verify(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_marketplace"))
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .expect("run marketplace")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn verify_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    let mut last = String::new();
    for phase in ["Pending", "Provisioning", "Active"] {
        last = log
            .append(AuditEntry::new(
                "controller/tenant-subscription",
                "subscription.transition",
                "tenant-acme/route-optimization",
                format!("entered {phase}"),
                json!({ "to": phase }),
            ))
            .unwrap()
            .hash;
    }
    drop(log);

    let out = marketplace_audit_verify(&path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("ok: 3 records, chain intact, last hash {last}\n")
    );

    // Someone rewrites history: line 2 now says something else.
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("entered Provisioning", "entered Cancelled");
    std::fs::write(&path, edited).unwrap();
    let out = marketplace_audit_verify(&path);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "audit log {} line 2: hash does not match the record's content",
            path.display()
        )),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let out = marketplace_audit_verify(&dir.path().join("missing.jsonl"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
