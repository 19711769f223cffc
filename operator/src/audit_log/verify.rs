//! Checking a log: every line parses, hashes to its own `hash`, is in canonical form, and
//! links to the line before (`seq` + 1, `prev` = previous `hash`). The first broken line is
//! reported with the likely cause.
//!
//! What the chain cannot show on its own: records cut from the end at a line boundary. Keep
//! the last hash (printed by `marketplace audit verify`) somewhere else to detect that.

use super::record::{AuditRecord, GENESIS, is_hash};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Why a line breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("incomplete last line (no newline at the end): the log was truncated mid-write")]
    Truncated,
    #[error("empty line")]
    EmptyLine,
    #[error("not an audit record: {0}")]
    Malformed(String),
    #[error("hash does not match the record's content: the record was edited")]
    Edited,
    #[error("the record is not in canonical form: it was reformatted or edited")]
    NotCanonical,
    #[error(
        "seq {found} where {expected} was expected: a record before this line was deleted, or lines were reordered"
    )]
    Gap { found: u64, expected: u64 },
    #[error("seq {found} where {expected} was expected: lines were reordered or duplicated")]
    Backwards { found: u64, expected: u64 },
    #[error(
        "prev does not match the hash of the record before: a line was deleted, inserted or reordered"
    )]
    Unlinked,
}

/// A log whose chain is intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: u64,
    /// The last record's hash ([`GENESIS`] for an empty log).
    pub last_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read audit log {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("audit log {} line {line}: {why}", path.display())]
    Broken {
        path: PathBuf,
        /// 1-based.
        line: u64,
        why: ChainBreak,
    },
}

impl VerifyError {
    /// The first broken line, when the log could be read.
    pub fn line(&self) -> Option<u64> {
        match self {
            VerifyError::Broken { line, .. } => Some(*line),
            VerifyError::Io { .. } => None,
        }
    }
}

/// Parses one line (without its newline) and checks it on its own: fields, hash, canonical
/// form. The chain (seq, prev) is the caller's.
pub(crate) fn check_line(line: &[u8]) -> Result<AuditRecord, ChainBreak> {
    if line.is_empty() {
        return Err(ChainBreak::EmptyLine);
    }
    let rec: AuditRecord =
        serde_json::from_slice(line).map_err(|e| ChainBreak::Malformed(e.to_string()))?;
    if !is_hash(&rec.hash) {
        return Err(ChainBreak::Malformed(
            "hash is not 64 lowercase hex digits".into(),
        ));
    }
    if !is_hash(&rec.prev) {
        return Err(ChainBreak::Malformed(
            "prev is not 64 lowercase hex digits".into(),
        ));
    }
    if rec.at.parse::<jiff::Timestamp>().is_err() {
        return Err(ChainBreak::Malformed(format!(
            "at {:?} is not an RFC 3339 time",
            rec.at
        )));
    }
    if rec.compute_hash() != rec.hash {
        return Err(ChainBreak::Edited);
    }
    if rec.to_line().as_bytes() != line {
        return Err(ChainBreak::NotCanonical);
    }
    Ok(rec)
}

/// Where the chain stands after a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub seq: u64,
    pub hash: String,
}

impl Link {
    pub fn genesis() -> Link {
        Link {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }

    /// Checks that `rec` follows this link.
    pub fn check_next(&self, rec: &AuditRecord) -> Result<(), ChainBreak> {
        let expected = self.seq + 1;
        if rec.seq > expected {
            return Err(ChainBreak::Gap {
                found: rec.seq,
                expected,
            });
        }
        if rec.seq < expected {
            return Err(ChainBreak::Backwards {
                found: rec.seq,
                expected,
            });
        }
        if rec.prev != self.hash {
            return Err(ChainBreak::Unlinked);
        }
        Ok(())
    }
}

/// Verifies the whole log at `path`.
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport, VerifyError> {
    let path = path.as_ref();
    let io = |source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io)?);
    let mut link = Link::genesis();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io)? == 0 {
            break;
        }
        line_no += 1;
        let broken = |why| VerifyError::Broken {
            path: path.to_path_buf(),
            line: line_no,
            why,
        };
        let Some(line) = buf.strip_suffix(b"\n") else {
            return Err(broken(ChainBreak::Truncated));
        };
        let rec = check_line(line).map_err(broken)?;
        link.check_next(&rec).map_err(broken)?;
        link = Link {
            seq: rec.seq,
            hash: rec.hash,
        };
    }
    Ok(VerifyReport {
        records: link.seq,
        last_hash: link.hash,
    })
}
