//! Field paths in the two spellings the linter meets: JSON pointers (`/spec/plans/1/name`, what
//! the position index and `jsonschema` use) and the dotted paths people read and `kube-cel`
//! reports (`spec.plans[1].name`).

use serde_json::Value;

use crate::catalog::document::escape_pointer_segment;

/// Appends one key to a pointer.
pub fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", escape_pointer_segment(key))
}

/// Appends one index to a pointer.
pub fn index(pointer: &str, index: usize) -> String {
    format!("{pointer}/{index}")
}

/// The dotted spelling of `pointer` within `root`: arrays get `[i]`, keys that are not plain
/// identifiers get `["key"]`. Segments past the end of `root` (a missing field) are keys.
pub fn dotted(pointer: &str, root: &Value) -> String {
    let mut out = String::new();
    let mut node = Some(root);
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        match node {
            Some(Value::Array(items)) if segment.parse::<usize>().is_ok() => {
                out.push_str(&format!("[{segment}]"));
                node = segment.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            _ => {
                push_key(&mut out, &segment);
                node = node.and_then(|n| n.get(&segment));
            }
        }
    }
    out
}

fn push_key(out: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$');
    if plain {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(key);
    } else {
        out.push_str(&format!("[{key:?}]"));
    }
}

/// The dotted spelling of `pointer` when no value is at hand (a file whose YAML failed):
/// numeric segments are taken as indexes.
pub fn dotted_guess(pointer: &str) -> String {
    let mut out = String::new();
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            push_key(&mut out, &segment);
        }
    }
    out
}

/// The pointer for a dotted path as `kube-cel` writes it (`spec.plans[0].pricing.unit`). Keys
/// containing dots cannot be told apart from nesting; the position lookup then falls back to
/// the nearest ancestor, which is still the right neighbourhood.
pub fn from_dotted(path: &str) -> String {
    let mut pointer = String::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indexes) = match part.find('[') {
            Some(open) => (&part[..open], &part[open..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            pointer = child(&pointer, key);
        }
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            pointer = child(&pointer, index.trim_matches('"'));
        }
    }
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_mark_indexes_and_odd_keys() {
        let root = json!({"spec": {"plans": [{"pricing": {}}], "headers": {"X-Api.Key": "v"}}});
        assert_eq!(
            dotted("/spec/plans/0/pricing/unit", &root),
            "spec.plans[0].pricing.unit"
        );
        assert_eq!(
            dotted("/spec/headers/X-Api.Key", &root),
            "spec.headers[\"X-Api.Key\"]"
        );
        assert_eq!(dotted("", &root), "");
        assert_eq!(dotted("/a~1b", &json!({"a/b": 1})), "[\"a/b\"]");
        assert_eq!(dotted_guess("/spec/plans/1/name"), "spec.plans[1].name");
    }

    #[test]
    fn kube_cel_paths_become_pointers() {
        assert_eq!(
            from_dotted("spec.plans[0].pricing.unit"),
            "/spec/plans/0/pricing/unit"
        );
        assert_eq!(from_dotted("spec.partner"), "/spec/partner");
        assert_eq!(from_dotted("[2]"), "/2");
        assert_eq!(from_dotted(""), "");
    }
}
