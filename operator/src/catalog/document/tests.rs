use super::*;
use serde_json::json;

fn errors(text: &str) -> Vec<DocumentError> {
    match parse(text.as_bytes()) {
        Ok(document) => panic!("expected errors, parsed {:?}", document.value),
        Err(errors) => errors,
    }
}

fn only_error(text: &str) -> DocumentError {
    let mut errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.remove(0)
}

#[test]
fn parses_values_and_positions() {
    let text =
        "# comment\nkind: Listing\nspec:\n  plans:\n    - name: basic\n      trialDays: 14\n";
    let document = parse(text.as_bytes()).expect("valid YAML");
    assert_eq!(
        document.value,
        json!({"kind": "Listing", "spec": {"plans": [{"name": "basic", "trialDays": 14}]}})
    );
    let kind = document.locate("/kind");
    assert_eq!(kind.key, Some(Position { line: 2, column: 1 }));
    assert_eq!(kind.value, Position { line: 2, column: 7 });
    let name = document.locate("/spec/plans/0/name");
    assert_eq!(name.key, Some(Position { line: 5, column: 7 }));
    assert_eq!(
        name.value,
        Position {
            line: 5,
            column: 13
        }
    );
    assert_eq!(document.locate("/spec/plans/0/trialDays").value.line, 6);
    // A missing node falls back to its nearest ancestor.
    assert_eq!(
        document.locate("/spec/plans/0/pricing/unit"),
        document.locate("/spec/plans/0")
    );
}

#[test]
fn quoted_scalars_stay_strings_and_plain_ones_follow_the_core_schema() {
    let text = "a: \"29.00\"\nb: 29.00\nc: true\nd: ~\ne: 0x1F\nf: !!str 12\ng: 1.2.0\n";
    let document = parse(text.as_bytes()).expect("valid YAML");
    assert_eq!(
        document.value,
        json!({"a": "29.00", "b": 29.0, "c": true, "d": null, "e": 31, "f": "12", "g": "1.2.0"})
    );
}

#[test]
fn keys_with_slashes_and_tildes_are_escaped_in_pointers() {
    let document = parse(b"a/b:\n  c~d: 1\n").expect("valid YAML");
    assert_eq!(
        document.locate("/a~1b/c~0d").value,
        Position { line: 2, column: 8 }
    );
}

#[test]
fn every_duplicate_key_is_reported_with_the_first_line() {
    let errors = errors("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].position, Position { line: 4, column: 3 });
    assert_eq!(errors[0].pointer, "/b/c");
    assert_eq!(
        errors[0].kind,
        DocumentErrorKind::DuplicateKey {
            key: "c".into(),
            first_line: 3
        }
    );
    assert_eq!(errors[1].position, Position { line: 5, column: 1 });
    assert_eq!(
        errors[1].kind,
        DocumentErrorKind::DuplicateKey {
            key: "a".into(),
            first_line: 1
        }
    );
}

#[test]
fn syntax_errors_have_positions() {
    let error = only_error("a: [1, 2\nb: 3\n");
    assert!(
        matches!(error.kind, DocumentErrorKind::Syntax { .. }),
        "{error:?}"
    );
    assert!(error.position.line >= 1);
}

#[test]
fn two_documents_are_rejected_at_the_second() {
    let error = only_error("a: 1\n---\nb: 2\n");
    assert_eq!(error.kind, DocumentErrorKind::MultipleDocuments);
    assert_eq!(error.position.line, 2);
}

#[test]
fn empty_files_and_non_mappings_are_rejected() {
    assert_eq!(only_error("").kind, DocumentErrorKind::Empty);
    assert_eq!(
        only_error("# only a comment\n").kind,
        DocumentErrorKind::Empty
    );
    assert_eq!(only_error("---\n").kind, DocumentErrorKind::Empty);
    assert_eq!(
        only_error("- a\n- b\n").kind,
        DocumentErrorKind::NotAMapping {
            found: "a sequence"
        }
    );
    assert_eq!(
        only_error("just text\n").kind,
        DocumentErrorKind::NotAMapping { found: "a string" }
    );
}

#[test]
fn binary_and_non_utf8_contents_are_rejected_with_positions() {
    let error = parse(b"a: 1\nb: \x00\x01").expect_err("binary");
    assert_eq!(error[0].kind, DocumentErrorKind::Binary);
    assert_eq!(error[0].position, Position { line: 2, column: 4 });
    let error = parse(b"a: caf\xe9\n").expect_err("latin-1");
    assert_eq!(error[0].kind, DocumentErrorKind::NotUtf8);
    assert_eq!(error[0].position, Position { line: 1, column: 7 });
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let document = parse("\u{feff}a: 1\n".as_bytes()).expect("BOM is fine");
    assert_eq!(document.value, json!({"a": 1}));
}

#[test]
fn files_over_the_limit_are_rejected_before_parsing() {
    let big = vec![b'a'; MAX_FILE_BYTES + 1];
    let error = parse(&big).expect_err("too large");
    assert_eq!(
        error[0].kind,
        DocumentErrorKind::TooLarge {
            limit: MAX_FILE_BYTES
        }
    );
}

#[test]
fn non_string_and_complex_keys_are_rejected() {
    assert_eq!(
        only_error("1: a\n").kind,
        DocumentErrorKind::NonStringKey { found: "a number" }
    );
    assert_eq!(
        only_error("true: a\n").kind,
        DocumentErrorKind::NonStringKey { found: "a boolean" }
    );
    assert_eq!(
        only_error("? [a]\n: b\n").kind,
        DocumentErrorKind::NonStringKey {
            found: "a collection"
        }
    );
    // Quoted, they are strings.
    assert!(parse(b"\"1\": a\n'true': b\n").is_ok());
}

#[test]
fn aliases_expand_and_alias_bombs_are_bounded() {
    let document = parse(b"a: &x {b: 1}\nc: *x\n").expect("aliases are YAML");
    assert_eq!(document.value, json!({"a": {"b": 1}, "c": {"b": 1}}));
    assert_eq!(
        document.locate("/c/b").value,
        Position { line: 2, column: 4 }
    );

    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..12 {
        let previous = format!("*a{}", level - 1);
        let items = [previous.as_str(); 10].join(", ");
        bomb.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    let error = only_error(&bomb);
    assert_eq!(
        error.kind,
        DocumentErrorKind::TooManyNodes { limit: MAX_NODES }
    );
}

#[test]
fn deep_nesting_is_bounded() {
    let deep = format!(
        "a: {}{}\n",
        "[".repeat(MAX_DEPTH + 5),
        "]".repeat(MAX_DEPTH + 5)
    );
    let error = only_error(&deep);
    assert!(
        matches!(
            error.kind,
            DocumentErrorKind::TooDeep { .. } | DocumentErrorKind::Syntax { .. }
        ),
        "{error:?}"
    );
    let mut block = String::new();
    for level in 0..(MAX_DEPTH + 5) {
        block.push_str(&format!("{}k{level}:\n", "  ".repeat(level)));
    }
    assert_eq!(
        only_error(&block).kind,
        DocumentErrorKind::TooDeep { limit: MAX_DEPTH }
    );
}

#[test]
fn tags_outside_the_core_schema_are_rejected() {
    assert_eq!(
        only_error("a: !custom x\n").kind,
        DocumentErrorKind::UnsupportedTag {
            tag: "!custom".into()
        }
    );
    assert_eq!(
        only_error("a: !!int abc\n").kind,
        DocumentErrorKind::BadTaggedValue {
            tag: "!!int".into(),
            text: "abc".into()
        }
    );
    assert_eq!(
        only_error("a: .nan\n").kind,
        DocumentErrorKind::NonFinite {
            text: ".nan".into()
        }
    );
    let document = parse(b"a: !!float 3\nb: !!map {c: !!seq [1]}\n").expect("core tags");
    assert_eq!(document.value, json!({"a": 3.0, "b": {"c": [1]}}));
}

#[test]
fn yaml_1_1_booleans_are_noted() {
    let document = parse(b"a: yes\nb: \"no\"\non: x\n").expect("valid YAML 1.2");
    assert_eq!(document.value, json!({"a": "yes", "b": "no", "on": "x"}));
    let texts: Vec<&str> = document.ambiguous.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(texts, ["yes", "on"]);
    assert_eq!(document.ambiguous[0].pointer, "/a");
}
