use super::*;
use serde_json::json;
use sha2::{Digest, Sha256};

fn entry(n: u64) -> AuditEntry {
    AuditEntry::new(
        "controller/tenant-subscription",
        "subscription.transition",
        "tenant-acme/route-optimization",
        format!("step {n}"),
        json!({"from": "Pending", "to": "Active", "n": n}),
    )
}

fn at(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_795_305_600 + secs).unwrap()
}

/// A log of `n` records; returns its path (inside the kept temp dir) and its lines.
fn log_of(n: u64) -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    for i in 1..=n {
        log.append_at(entry(i), at(i as i64)).unwrap();
    }
    let lines = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    (dir, path, lines)
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// The first broken line and why.
fn broken(path: &Path) -> (u64, ChainBreak) {
    match verify(path) {
        Err(VerifyError::Broken { line, why, .. }) => (line, why),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[test]
fn canonical_form_is_exactly_as_documented() {
    let e = AuditEntry::new(
        "alice",
        "billing.ensure",
        "tenant-acme/route-optimization",
        "new subscription",
        json!({"b": 1, "a": {"d": "x\"y", "c": [{"z": 1, "y": 2}]}}),
    );
    let r = AuditRecord::seal(1, "2026-11-22T00:00:01.000Z".into(), e, GENESIS);
    let canonical = concat!(
        r#"{"seq":1,"at":"2026-11-22T00:00:01.000Z","actor":"alice","action":"billing.ensure","#,
        r#""object":"tenant-acme/route-optimization","reason":"new subscription","#,
        r#""details":{"a":{"c":[{"y":2,"z":1}],"d":"x\"y"},"b":1},"#,
        r#""prev":"0000000000000000000000000000000000000000000000000000000000000000"}"#
    );
    assert_eq!(r.canonical(), canonical);
    let hash: String = Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(r.hash, hash);
    assert_eq!(
        r.to_line(),
        format!(
            "{}{}",
            &canonical[..canonical.len() - 1],
            format_args!(",\"hash\":\"{hash}\"}}")
        )
    );
}

#[test]
fn appended_records_chain_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    // An empty log is intact.
    assert_eq!(
        verify(&path).unwrap(),
        VerifyReport {
            records: 0,
            last_hash: GENESIS.into()
        }
    );
    let a = log.append_at(entry(1), at(1)).unwrap();
    let b = log.append(entry(2)).unwrap();
    assert_eq!((a.seq, b.seq), (1, 2));
    assert_eq!(a.prev, GENESIS);
    assert_eq!(b.prev, a.hash);
    assert_eq!(a.at, "2026-11-22T00:00:01.000Z");
    assert!(b.at.ends_with('Z') && b.at.parse::<jiff::Timestamp>().is_ok());
    assert_eq!(log.head(), (2, b.hash.clone()));
    let report = verify(&path).unwrap();
    assert_eq!(report.records, 2);
    assert_eq!(report.last_hash, b.hash);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, format!("{}\n{}\n", a.to_line(), b.to_line()));
}

#[test]
fn reopening_continues_the_chain() {
    let (_dir, path, lines) = log_of(2);
    let log = AuditLog::open(&path).unwrap();
    let last: AuditRecord = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(log.head(), (2, last.hash.clone()));
    let c = log.append_at(entry(3), at(3)).unwrap();
    assert_eq!(c.seq, 3);
    assert_eq!(c.prev, last.hash);
    drop(log);
    // A record longer than the tail reader's chunk.
    let log = AuditLog::open(&path).unwrap();
    let big = AuditEntry::new("a", "b", "c", "d", json!({"blob": "x".repeat(20_000)}));
    log.append_at(big, at(4)).unwrap();
    drop(log);
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head().0, 4);
    log.append_at(entry(5), at(5)).unwrap();
    assert_eq!(verify(&path).unwrap().records, 5);
}

#[test]
fn an_edited_field_is_found() {
    let (_dir, path, mut lines) = log_of(5);
    lines[2] = lines[2].replace("tenant-acme", "tenant-evil");
    write_lines(&path, &lines);
    assert_eq!(broken(&path), (3, ChainBreak::Edited));
    let msg = verify(&path).unwrap_err().to_string();
    assert_eq!(
        msg,
        format!(
            "audit log {} line 3: hash does not match the record's content: the record was edited",
            path.display()
        )
    );
}

#[test]
fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
    let (_dir, path, mut lines) = log_of(5);
    let mut rec: AuditRecord = serde_json::from_str(&lines[2]).unwrap();
    rec.reason = "nothing to see".into();
    rec.hash = rec.compute_hash();
    lines[2] = rec.to_line();
    write_lines(&path, &lines);
    assert_eq!(broken(&path), (4, ChainBreak::Unlinked));
}

#[test]
fn a_deleted_line_is_found() {
    let (_dir, path, mut lines) = log_of(5);
    lines.remove(2);
    write_lines(&path, &lines);
    assert_eq!(
        broken(&path),
        (
            3,
            ChainBreak::Gap {
                found: 4,
                expected: 3
            }
        )
    );
    // The first line too.
    let (_dir, path, mut lines) = log_of(3);
    lines.remove(0);
    write_lines(&path, &lines);
    assert_eq!(
        broken(&path),
        (
            1,
            ChainBreak::Gap {
                found: 2,
                expected: 1
            }
        )
    );
}

#[test]
fn swapped_and_duplicated_lines_are_found() {
    let (_dir, path, mut lines) = log_of(5);
    lines.swap(1, 2);
    write_lines(&path, &lines);
    assert_eq!(
        broken(&path),
        (
            2,
            ChainBreak::Gap {
                found: 3,
                expected: 2
            }
        )
    );
    let (_dir, path, mut lines) = log_of(3);
    let copy = lines[1].clone();
    lines.insert(2, copy);
    write_lines(&path, &lines);
    assert_eq!(
        broken(&path),
        (
            3,
            ChainBreak::Backwards {
                found: 2,
                expected: 3
            }
        )
    );
}

#[test]
fn truncation_reformatting_and_junk_are_found() {
    let (_dir, path, lines) = log_of(5);
    let mut text = lines.join("\n");
    text.truncate(text.len() - 40);
    std::fs::write(&path, &text).unwrap();
    assert_eq!(broken(&path), (5, ChainBreak::Truncated));
    // Cut exactly before the final newline: still incomplete.
    std::fs::write(&path, lines.join("\n")).unwrap();
    assert_eq!(broken(&path), (5, ChainBreak::Truncated));

    let (_dir, path, mut lines) = log_of(3);
    lines[1] = lines[1].replacen("\"seq\":2", "\"seq\": 2", 1);
    write_lines(&path, &lines);
    assert_eq!(broken(&path), (2, ChainBreak::NotCanonical));

    let (_dir, path, mut lines) = log_of(3);
    lines.insert(1, String::new());
    write_lines(&path, &lines);
    assert_eq!(broken(&path), (2, ChainBreak::EmptyLine));

    let (_dir, path, mut lines) = log_of(3);
    lines[0] = lines[0].replacen('{', "{\"extra\":1,", 1);
    write_lines(&path, &lines);
    assert!(matches!(broken(&path), (1, ChainBreak::Malformed(_))));

    let missing = path.with_file_name("missing.jsonl");
    assert!(matches!(verify(&missing), Err(VerifyError::Io { .. })));
}

#[test]
fn open_refuses_a_corrupt_tail_and_names_the_line() {
    let (_dir, path, lines) = log_of(4);
    let mut text = lines.join("\n");
    text.truncate(text.len() - 10);
    std::fs::write(&path, &text).unwrap();
    match AuditLog::open(&path) {
        Err(AuditError::CorruptTail { line, why, .. }) => {
            assert_eq!((line, why), (4, ChainBreak::Truncated));
        }
        other => panic!("{other:?}"),
    }
    let (_dir, path, mut lines) = log_of(4);
    lines[3] = lines[3].replace("Active", "Cancelled");
    write_lines(&path, &lines);
    let err = AuditLog::open(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("line 4: hash does not match the record's content"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    log.append(entry(t * 1000 + i)).unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let report = verify(&path).unwrap();
    assert_eq!(report.records, 400);
    assert_eq!(log.head(), (400, report.last_hash));
}

#[test]
fn disabled_log_chains_in_memory_and_writes_nothing() {
    let log = AuditLog::disabled();
    let a = log.append(entry(1)).unwrap();
    let b = log.append(entry(2)).unwrap();
    assert_eq!((a.seq, b.seq), (1, 2));
    assert_eq!(b.prev, a.hash);
}

#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_poisons_the_log() {
    // /dev/full accepts the open and fails every write with ENOSPC.
    let log = AuditLog::open("/dev/full").unwrap();
    assert!(matches!(
        log.append(entry(1)),
        Err(AuditError::Write { .. })
    ));
    assert!(matches!(
        log.append(entry(2)),
        Err(AuditError::Poisoned { .. })
    ));
    assert_eq!(log.head().0, 0);
}
