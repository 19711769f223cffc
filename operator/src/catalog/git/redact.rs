//! Keeping credentials out of messages. Users put tokens in URLs (`https://<token>@host/repo`),
//! and libgit2 echoes URLs in its errors, so every URL and every libgit2 message that we show is
//! passed through here first.

/// What replaces a credential in a message.
const MASK: &str = "***";

/// Secrets shorter than this are not searched for in messages: masking every "git" or "a" would
/// garble messages while protecting nothing a real token looks like.
const MIN_SECRET_LEN: usize = 6;

/// The URL with its credentials masked: for http(s) and other schemes the whole user-info part
/// (a token is often passed as the user name), for ssh only the password (the user name, usually
/// `git`, is not secret and helps to diagnose). scp-like `git@host:path` has no password.
pub fn redact_url(url: &str) -> String {
    scrub(url, &[])
}

/// `text` with the user-info of every `scheme://` URL in it masked (as [`redact_url`]), and every
/// occurrence of the given secrets replaced by `***`.
pub(super) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let scheme_start = rest[..pos]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let scheme = &rest[scheme_start..pos];
        let after = &rest[pos + 3..];
        let authority_len = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#')
                    || c.is_whitespace()
                    || matches!(c, '\'' | '"' | '`' | '<' | '>')
            })
            .unwrap_or(after.len());
        let authority = &after[..authority_len];
        out.push_str(&rest[..pos + 3]);
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let ssh =
                    scheme.eq_ignore_ascii_case("ssh") || scheme.eq_ignore_ascii_case("git+ssh");
                match userinfo.split_once(':') {
                    Some((user, _)) if ssh => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                    }
                    None if ssh => out.push_str(userinfo),
                    _ => out.push_str(MASK),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    secrets
        .iter()
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .fold(out, |text, secret| text.replace(secret, MASK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_userinfo_of_http_urls() {
        assert_eq!(
            redact_url("https://user:tok@example.com/r.git"),
            "https://***@example.com/r.git"
        );
        assert_eq!(
            redact_url("https://ghp_abc@example.com/r.git"),
            "https://***@example.com/r.git"
        );
        assert_eq!(
            redact_url("http://u:p@127.0.0.1:8080"),
            "http://***@127.0.0.1:8080"
        );
        assert_eq!(
            redact_url("https://example.com/r.git"),
            "https://example.com/r.git"
        );
        assert_eq!(redact_url("file:///tmp/r"), "file:///tmp/r");
    }

    #[test]
    fn keeps_ssh_user_names_but_not_passwords() {
        assert_eq!(
            redact_url("ssh://git@example.com:2222/r.git"),
            "ssh://git@example.com:2222/r.git"
        );
        assert_eq!(
            redact_url("ssh://git:pw@example.com/r.git"),
            "ssh://git:***@example.com/r.git"
        );
        assert_eq!(
            redact_url("git@example.com:org/r.git"),
            "git@example.com:org/r.git"
        );
    }

    #[test]
    fn scrubs_urls_and_secrets_inside_text() {
        let text =
            "failed to fetch 'https://me:s3cret-token@h/x' (token s3cret-token), try http://a@b";
        assert_eq!(
            scrub(text, &["s3cret-token", "git"]),
            "failed to fetch 'https://***@h/x' (token ***), try http://***@b"
        );
    }
}
