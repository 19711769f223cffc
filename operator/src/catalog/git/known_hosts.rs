//! ssh host key verification against the `known_hosts` of the credentials Secret. libgit2 hands
//! the raw host key to the certificate callback; we accept it only if a known_hosts line for the
//! host carries exactly that key, the way OpenSSH does with `StrictHostKeyChecking yes`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Parsed known_hosts lines (comments, blank and malformed lines are skipped).
#[derive(Debug, Clone)]
pub(super) struct KnownHosts {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    hosts: Hosts,
    key: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    /// Certificate authorities are not supported (libgit2 gives us the plain key only).
    CertAuthority,
}

#[derive(Debug, Clone)]
enum Hosts {
    /// `|1|salt|hash`: HMAC-SHA1 of the host name, as written by `ssh-keyscan -H`.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Comma-separated patterns with `*`, `?` and `!` negation.
    Patterns(Vec<String>),
}

/// Why a host key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum HostKeyError {
    #[error("host {0} is not in known_hosts (secret key `known_hosts`)")]
    Unknown(String),
    #[error(
        "the host key of {0} does not match known_hosts (secret key `known_hosts`): possible man-in-the-middle, or the server key changed"
    )]
    Mismatch(String),
    #[error("the host key of {0} is marked @revoked in known_hosts")]
    Revoked(String),
    #[error("the server did not present a usable host key")]
    NoKey,
}

impl KnownHosts {
    /// Parses known_hosts text. Returns `None` if no line is usable, so that callers can refuse
    /// with a clear message rather than rejecting every host.
    pub(super) fn parse(text: &str) -> Option<Self> {
        let entries: Vec<Entry> = text.lines().filter_map(parse_line).collect();
        (!entries.is_empty()).then_some(Self { entries })
    }

    /// Accepts `key` (the raw ssh wire-format public key) for `host`:`port`.
    pub(super) fn verify(&self, host: &str, port: u16, key: &[u8]) -> Result<(), HostKeyError> {
        let name = if port == 22 {
            host.to_ascii_lowercase()
        } else {
            format!("[{}]:{port}", host.to_ascii_lowercase())
        };
        let mut known = false;
        let mut accepted = false;
        for entry in self.entries.iter().filter(|e| e.hosts.matches(&name)) {
            match entry.marker {
                Marker::Revoked if entry.key == key => return Err(HostKeyError::Revoked(name)),
                Marker::Revoked | Marker::CertAuthority => {}
                Marker::None => {
                    known = true;
                    accepted |= entry.key == key;
                }
            }
        }
        match (accepted, known) {
            (true, _) => Ok(()),
            (false, true) => Err(HostKeyError::Mismatch(name)),
            (false, false) => Err(HostKeyError::Unknown(name)),
        }
    }
}

fn parse_line(line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let _key_type = fields.next()?;
    let key = STANDARD.decode(fields.next()?).ok()?;
    let hosts = match first.strip_prefix("|1|") {
        Some(hashed) => {
            let (salt, hash) = hashed.split_once('|')?;
            Hosts::Hashed {
                salt: STANDARD.decode(salt).ok()?,
                hash: STANDARD.decode(hash).ok()?,
            }
        }
        None => Hosts::Patterns(first.split(',').map(str::to_ascii_lowercase).collect()),
    };
    Some(Entry { marker, hosts, key })
}

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Hashed { salt, hash } => Hmac::<Sha1>::new_from_slice(salt)
                .map(|mut mac| {
                    mac.update(name.as_bytes());
                    mac.verify_slice(hash).is_ok()
                })
                .unwrap_or(false),
            Self::Patterns(patterns) => {
                let mut matched = false;
                for pattern in patterns {
                    match pattern.strip_prefix('!') {
                        Some(negated) if glob(negated.as_bytes(), name.as_bytes()) => return false,
                        Some(_) => {}
                        None => matched |= glob(pattern.as_bytes(), name.as_bytes()),
                    }
                }
                matched
            }
        }
    }
}

/// OpenSSH host pattern matching: `*` any run, `?` one character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            glob(rest, text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some((b'?', rest)), Some((_, text_rest))) => glob(rest, text_rest),
        (Some((p, rest)), Some((t, text_rest))) if p == t => glob(rest, text_rest),
        _ => false,
    }
}

/// Host and port of an ssh URL (`ssh://[user@]host[:port]/path` or scp-like `user@host:path`).
pub(super) fn ssh_host_port(url: &str) -> Option<(String, u16)> {
    if let Some(rest) = url
        .strip_prefix("ssh://")
        .or_else(|| url.strip_prefix("git+ssh://"))
    {
        let authority = rest.split('/').next()?;
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if let Some(bracketed) = host_port.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']')?;
            let port = after
                .strip_prefix(':')
                .map_or(Some(22), |p| p.parse().ok())?;
            return Some((host.to_owned(), port));
        }
        return match host_port.split_once(':') {
            Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
            None => Some((host_port.to_owned(), 22)),
        };
    }
    if url.contains("://") {
        return None;
    }
    let (before_colon, _) = url.split_once(':')?;
    let host = before_colon
        .rsplit_once('@')
        .map_or(before_colon, |(_, h)| h);
    (!host.is_empty() && !host.contains('/')).then(|| (host.to_owned(), 22))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &[u8] =
        b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const KEY_B: &[u8] =
        b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn line(hosts: &str, key: &[u8]) -> String {
        format!("{hosts} ssh-ed25519 {}\n", STANDARD.encode(key))
    }

    #[test]
    fn accepts_only_the_listed_key_for_the_listed_host() {
        let known = KnownHosts::parse(&format!(
            "# comment\n\n{}",
            line("github.com,gh.example", KEY_A)
        ))
        .unwrap();
        assert_eq!(known.verify("github.com", 22, KEY_A), Ok(()));
        assert_eq!(known.verify("GH.example", 22, KEY_A), Ok(()));
        assert_eq!(
            known.verify("github.com", 22, KEY_B),
            Err(HostKeyError::Mismatch("github.com".into()))
        );
        assert_eq!(
            known.verify("gitlab.com", 22, KEY_A),
            Err(HostKeyError::Unknown("gitlab.com".into()))
        );
        assert_eq!(
            known.verify("github.com", 2222, KEY_A),
            Err(HostKeyError::Unknown("[github.com]:2222".into()))
        );
    }

    #[test]
    fn supports_ports_wildcards_negation_hashes_and_revocation() {
        let salt = b"0123456789abcdefghij";
        let mut mac = Hmac::<Sha1>::new_from_slice(salt).unwrap();
        mac.update(b"hashed.example");
        let hashed = format!(
            "|1|{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(mac.finalize().into_bytes())
        );
        let text = [
            line("[git.example]:2222", KEY_A),
            line("*.corp.example,!evil.corp.example", KEY_A),
            line(&hashed, KEY_B),
            format!("@revoked {}", line("*.corp.example", KEY_B)),
        ]
        .concat();
        let known = KnownHosts::parse(&text).unwrap();
        assert_eq!(known.verify("git.example", 2222, KEY_A), Ok(()));
        assert_eq!(known.verify("a.corp.example", 22, KEY_A), Ok(()));
        assert!(matches!(
            known.verify("evil.corp.example", 22, KEY_A),
            Err(HostKeyError::Unknown(_))
        ));
        assert_eq!(known.verify("hashed.example", 22, KEY_B), Ok(()));
        assert!(matches!(
            known.verify("hashed.example", 22, KEY_A),
            Err(HostKeyError::Mismatch(_))
        ));
        assert!(matches!(
            known.verify("a.corp.example", 22, KEY_B),
            Err(HostKeyError::Revoked(_))
        ));
    }

    #[test]
    fn rejects_text_without_usable_lines() {
        assert!(KnownHosts::parse("# nothing\nnot-a-line\n").is_none());
    }

    #[test]
    fn finds_ssh_host_and_port() {
        assert_eq!(
            ssh_host_port("ssh://git@example.com:2222/r.git"),
            Some(("example.com".into(), 2222))
        );
        assert_eq!(
            ssh_host_port("ssh://example.com/r.git"),
            Some(("example.com".into(), 22))
        );
        assert_eq!(
            ssh_host_port("ssh://git@[::1]:2222/r.git"),
            Some(("::1".into(), 2222))
        );
        assert_eq!(
            ssh_host_port("git@github.com:org/r.git"),
            Some(("github.com".into(), 22))
        );
        assert_eq!(ssh_host_port("https://github.com/org/r.git"), None);
        assert_eq!(ssh_host_port("/tmp/repo"), None);
        assert_eq!(ssh_host_port("file:///tmp/repo"), None);
    }
}
