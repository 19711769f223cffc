//! Small text helpers shared by modules that have nothing else in common.

/// Percent-encodes everything except RFC 3986 unreserved characters, so the result is one URL
/// path segment or one query value whatever the input (`/`, `?`, `#`, `%` cannot change the
/// URL's structure).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Lowercase hexadecimal of `bytes` (digests, random ids).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::{hex, percent_encode};

    #[test]
    fn hex_is_lowercase_and_two_digits_a_byte() {
        assert_eq!(hex(&[0, 0x0f, 0xab]), "000fab");
    }

    #[test]
    fn only_unreserved_characters_stay() {
        assert_eq!(percent_encode("Az09-._~"), "Az09-._~");
        assert_eq!(
            percent_encode("ada.l-x_y~z@example.com"),
            "ada.l-x_y~z%40example.com"
        );
        assert_eq!(
            percent_encode("a/b?c#d%e+f g&="),
            "a%2Fb%3Fc%23d%25e%2Bf%20g%26%3D"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
