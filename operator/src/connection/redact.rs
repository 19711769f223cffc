//! Removing secret values from text before it reaches an error, a status condition or a log.
//!
//! Errors of libraries (reqwest, TLS stacks, JSON Schema validators) may quote the data they were
//! given. Every error text built by this module passes through [`redact`] first.

use crate::text::percent_encode;

/// What a secret value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Replaces every occurrence of each secret in `text` (as written and percent-encoded) with
/// [`REDACTED`]. Empty secrets are skipped; longer secrets are replaced first so that a secret
/// containing another one is removed whole.
pub fn redact<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut needles: Vec<String> = Vec::new();
    for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
        let encoded = percent_encode(secret);
        if encoded != secret {
            needles.push(encoded);
        }
        needles.push(secret.to_owned());
    }
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    needles.dedup();
    let mut out = text.to_owned();
    for needle in &needles {
        if out.contains(needle.as_str()) {
            out = out.replace(needle.as_str(), REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence() {
        let text = "token s3cr3t rejected; retry with s3cr3t";
        assert_eq!(
            redact(text, ["s3cr3t"]),
            "token <redacted> rejected; retry with <redacted>"
        );
    }

    #[test]
    fn longer_secret_first_and_empty_ignored() {
        let text = "abcdef and abc";
        assert_eq!(
            redact(text, ["abc", "", "abcdef"]),
            "<redacted> and <redacted>"
        );
        assert_eq!(redact("nothing here", [""]), "nothing here");
    }

    #[test]
    fn percent_encoded_form_is_redacted_too() {
        let text = "error sending request for url (https://h/x?k=a%2Fb%20c)";
        let out = redact(text, ["a/b c"]);
        assert!(!out.contains("a%2Fb%20c"), "{out}");
        assert!(out.contains(REDACTED));
    }
}
