//! An append-only, hash-chained audit log of every subscription transition and billing call:
//! one JSON record per line, each carrying the hash of the one before, so an edited, deleted,
//! reordered or truncated line is found by [`verify`] (and by `marketplace audit verify`).
//! The record format and the exact hashed bytes are defined in [`record`].

pub mod record;
pub mod verify;

pub use record::{AuditEntry, AuditRecord, GENESIS};
pub use verify::{ChainBreak, VerifyError, VerifyReport, verify};

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use verify::{Link, check_line};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot open audit log {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot append to audit log {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "audit log {} line {line}: {why}; refusing to append (see `marketplace audit verify`)",
        path.display()
    )]
    CorruptTail {
        path: PathBuf,
        line: u64,
        why: ChainBreak,
    },
    #[error("audit log {} failed a write earlier and may end in a partial line; reopen it", path.display())]
    Poisoned { path: PathBuf },
}

/// How the log writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditOptions {
    /// `fsync` after every record. Off by default: a record is one `write(2)` into the page
    /// cache, which survives the likely failure (the operator process killed or restarted);
    /// only a machine crash can lose the newest records, and a torn last line is then found
    /// on open. An fsync per record costs milliseconds on network volumes, on the reconcile
    /// path. Turn it on where losing the last records to a power cut matters.
    pub fsync: bool,
}

/// The audit log. Cheap to clone; clones append to the same chain, one record at a time.
#[derive(Debug, Clone)]
pub struct AuditLog {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    /// `None` for [`AuditLog::disabled`].
    sink: Option<Sink>,
    link: Link,
}

#[derive(Debug)]
struct Sink {
    path: PathBuf,
    file: File,
    fsync: bool,
    /// A write failed: the file may end in a partial line, so nothing more is appended.
    poisoned: bool,
}

impl AuditLog {
    /// Opens (or creates) the log at `path` and continues its chain.
    pub fn open(path: impl AsRef<Path>) -> Result<AuditLog, AuditError> {
        Self::open_with(path, AuditOptions::default())
    }

    pub fn open_with(
        path: impl AsRef<Path>,
        options: AuditOptions,
    ) -> Result<AuditLog, AuditError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |source| AuditError::Open {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(open_err)?;
        let link = recover_tail(&mut file, &path)?;
        Ok(AuditLog {
            inner: Arc::new(Mutex::new(State {
                sink: Some(Sink {
                    path,
                    file,
                    fsync: options.fsync,
                    poisoned: false,
                }),
                link,
            })),
        })
    }

    /// A log that writes nothing (no path configured). Records are still numbered and
    /// chained in memory, so callers see the same values either way.
    pub fn disabled() -> AuditLog {
        AuditLog {
            inner: Arc::new(Mutex::new(State {
                sink: None,
                link: Link::genesis(),
            })),
        }
    }

    /// Appends one record stamped with the current time.
    pub fn append(&self, entry: AuditEntry) -> Result<AuditRecord, AuditError> {
        self.append_at(entry, jiff::Timestamp::now())
    }

    /// Appends one record stamped `at`. Blocks for one small file write; records from
    /// concurrent callers are serialized, so the chain stays linear.
    pub fn append_at(
        &self,
        entry: AuditEntry,
        at: jiff::Timestamp,
    ) -> Result<AuditRecord, AuditError> {
        let mut st = self.lock();
        // Milliseconds, UTC, `Z`: RFC 3339.
        let rec = AuditRecord::seal(st.link.seq + 1, format!("{at:.3}"), entry, &st.link.hash);
        if let Some(sink) = st.sink.as_mut() {
            if sink.poisoned {
                return Err(AuditError::Poisoned {
                    path: sink.path.clone(),
                });
            }
            let mut line = rec.to_line();
            line.push('\n');
            // One write call per record, so concurrent appenders (even other processes, with
            // O_APPEND) cannot interleave within a line.
            let written = sink.file.write_all(line.as_bytes()).and_then(|()| {
                sink.file.flush()?;
                if sink.fsync {
                    sink.file.sync_data()?;
                }
                Ok(())
            });
            if let Err(source) = written {
                sink.poisoned = true;
                return Err(AuditError::Write {
                    path: sink.path.clone(),
                    source,
                });
            }
        }
        st.link = Link {
            seq: rec.seq,
            hash: rec.hash.clone(),
        };
        Ok(rec)
    }

    /// The number of records and the hash of the last one.
    pub fn head(&self) -> (u64, String) {
        let st = self.lock();
        (st.link.seq, st.link.hash.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic mid-append leaves either no write or a poisoned sink: the state is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads the last line and checks it on its own (not the whole chain: that is [`verify`]).
fn recover_tail(file: &mut File, path: &Path) -> Result<Link, AuditError> {
    let io = |source| AuditError::Open {
        path: path.to_path_buf(),
        source,
    };
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    if len == 0 {
        return Ok(Link::genesis());
    }
    let tail = last_line(file, len).map_err(io)?;
    let checked = match tail.strip_suffix(b"\n") {
        None => Err(ChainBreak::Truncated),
        Some(line) => check_line(line),
    };
    match checked {
        Ok(rec) => Ok(Link {
            seq: rec.seq,
            hash: rec.hash,
        }),
        Err(why) => {
            // Only now read the whole file, to name the line.
            let line = count_lines(file).map_err(io)?;
            Err(AuditError::CorruptTail {
                path: path.to_path_buf(),
                line,
                why,
            })
        }
    }
}

/// The bytes after the last newline that is not the file's final byte.
fn last_line(file: &mut File, len: u64) -> std::io::Result<Vec<u8>> {
    const CHUNK: u64 = 8 * 1024;
    let mut tail: Vec<u8> = Vec::new();
    let mut pos = len;
    while pos > 0 {
        let start = pos.saturating_sub(CHUNK);
        let mut chunk = vec![0; usize::try_from(pos - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        pos = start;
        let body = &tail[..tail.len() - 1];
        if let Some(i) = body.iter().rposition(|b| *b == b'\n') {
            return Ok(tail[i + 1..].to_vec());
        }
    }
    Ok(tail)
}

/// Lines in the file, counting a final line without a newline.
fn count_lines(file: &mut File) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        last = buf[n - 1];
    }
    Ok(lines + u64::from(last != b'\n'))
}

#[cfg(test)]
mod tests;
