use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::*;

const ID: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];
const SECRET: [u8; 32] = [7; 32];

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn stored_for(key: &str, expires: Option<Timestamp>) -> StoredKey {
    StoredKey {
        hash: key_hash(key),
        name: "billing server".into(),
        created: Some(now()),
        expires,
    }
}

#[test]
fn a_key_names_its_tenant_and_id_and_parses_back() {
    let key = format_key("acme-logistics", &ID, &SECRET);
    assert_eq!(
        key,
        format!("mk_acme-logistics_1a2b3c4d_{}", "07".repeat(32))
    );
    let parsed = parse_key(&key).expect("parses");
    assert_eq!(
        (parsed.tenant, parsed.id, parsed.text),
        ("acme-logistics", "1a2b3c4d", key.as_str())
    );
    assert_eq!(secret_name(parsed.id), "marketplace-api-key-1a2b3c4d");
    assert_eq!(key_id(&secret_name(parsed.id)), Some("1a2b3c4d"));
    assert_eq!(key_id("marketplace-api-key-x"), None);
    assert!(check_key_id("1a2b3c4d").is_ok());
    assert!(check_key_id("1A2B3C4D").unwrap_err().contains("--id"));
}

#[test]
fn anything_but_the_exact_shape_is_malformed() {
    let good = format_key("acme", &ID, &SECRET);
    let secret = "07".repeat(32);
    for bad in [
        String::new(),
        "Bearer abc".to_string(),
        good.replacen("mk_", "mx_", 1),
        format!("{good}_extra"),
        format!("mk_acme_1a2b3c4d_{}", &secret[1..]),
        format!("mk_acme_1A2B3C4D_{secret}"),
        format!("mk_acme_1a2b3c4_{secret}"),
        format!("mk_Acme_1a2b3c4d_{secret}"),
        format!("mk_-acme_1a2b3c4d_{secret}"),
        format!("mk__1a2b3c4d_{secret}"),
        format!("mk_{}_1a2b3c4d_{secret}", "a".repeat(57)),
        format!("mk_acme_1a2b3c4d_{}", "AB".repeat(32)),
    ] {
        assert_eq!(parse_key(&bad), None, "{bad:?}");
    }
    assert!(parse_key(&format!("mk_{}_1a2b3c4d_{secret}", "a".repeat(56))).is_some());
}

#[test]
fn the_right_key_reads_its_tenant_only_until_it_expires() {
    let key = format_key("acme", &ID, &SECRET);
    let presented = parse_key(&key).unwrap();
    let scope = KeyScope {
        tenant: "acme".into(),
        id: "1a2b3c4d".into(),
    };
    assert_eq!(
        verify(&presented, Some(&stored_for(&key, None)), now()),
        Ok(scope.clone())
    );
    let expires = now() + SignedDuration::from_hours(1);
    let stored = stored_for(&key, Some(expires));
    assert_eq!(verify(&presented, Some(&stored), now()), Ok(scope));
    assert_eq!(
        verify(&presented, Some(&stored), expires),
        Err(KeyRejection::Expired)
    );
}

#[test]
fn a_wrong_missing_or_moved_key_is_refused() {
    let key = format_key("acme", &ID, &SECRET);
    let stored = stored_for(&key, None);
    let other = format_key("acme", &ID, &[8; 32]);
    assert_eq!(
        verify(&parse_key(&other).unwrap(), Some(&stored), now()),
        Err(KeyRejection::WrongSecret)
    );
    assert_eq!(
        verify(&parse_key(&key).unwrap(), None, now()),
        Err(KeyRejection::Unknown)
    );
    // The hash covers the tenant: tenant B's Secret holding A's hash does not let A's secret in
    // as B, and A's key renamed to B does not match A's hash.
    let moved = format_key("globex", &ID, &SECRET);
    assert_eq!(
        verify(&parse_key(&moved).unwrap(), Some(&stored), now()),
        Err(KeyRejection::WrongSecret)
    );
    let unknown_algorithm = StoredKey {
        hash: format!("md5:{}", &key_hash(&key)["sha256:".len()..]),
        ..stored
    };
    assert_eq!(
        verify(&parse_key(&key).unwrap(), Some(&unknown_algorithm), now()),
        Err(KeyRejection::BadSecret)
    );
}

#[test]
fn the_secret_holds_the_hash_never_the_key() {
    let key = format_key("acme", &ID, &SECRET);
    let expires = now() + SignedDuration::from_hours(24);
    let data = secret_data(&key, "billing server", now(), Some(expires));
    assert!(
        data.values().all(|v| !v.contains(&"07".repeat(32))),
        "{data:?}"
    );
    let hash = &data[HASH_FIELD];
    assert!(
        hash.starts_with("sha256:") && hash.len() == 7 + 64,
        "{hash}"
    );
    let secret = Secret {
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    };
    assert_eq!(
        stored_key(&secret),
        Some(StoredKey {
            hash: key_hash(&key),
            name: "billing server".into(),
            created: Some(now()),
            expires: Some(expires),
        })
    );
    let no_hash = Secret {
        data: Some(BTreeMap::from([(
            NAME_FIELD.to_string(),
            ByteString(b"x".to_vec()),
        )])),
        ..Secret::default()
    };
    assert_eq!(stored_key(&no_hash), None);
    assert_eq!(stored_key(&Secret::default()), None);
}

#[test]
fn key_names_are_checked() {
    assert!(check_key_name("billing server").is_ok());
    for bad in ["", "  ", "a\nb", &"x".repeat(101)] {
        let error = check_key_name(bad).unwrap_err();
        assert!(error.contains("--name"), "{error}");
    }
}
