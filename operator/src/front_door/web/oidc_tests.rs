use super::*;

fn settings() -> OidcSettings {
    OidcSettings {
        issuer_url: "https://id.example.com".into(),
        client_id: "marketplace".into(),
        client_secret: None,
        public_url: "https://shop.example.com/".into(),
        ca_pem: None,
    }
}

fn attempt() -> Attempt {
    let mut random = [0u8; 96];
    for (i, byte) in random.iter_mut().enumerate() {
        *byte = i as u8;
    }
    Attempt::new(&random, "/t/acme/marketplace?q=a b", 1_000)
}

fn query(state: &str, code: &str) -> CallbackQuery {
    CallbackQuery {
        code: Some(code.into()),
        state: Some(state.into()),
        ..CallbackQuery::default()
    }
}

#[test]
fn the_pkce_challenge_is_rfc_7636_s256() {
    // The example of RFC 7636, appendix B.
    assert_eq!(
        challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn the_authorize_url_carries_state_nonce_and_the_s256_challenge() {
    let attempt = attempt();
    let url = authorize_url(
        "https://id.example.com/authorize",
        &settings(),
        &attempt,
        Some("ann@acme.example"),
    );
    assert!(
        url.starts_with(
            "https://id.example.com/authorize?response_type=code&client_id=marketplace"
        ),
        "{url}"
    );
    assert!(
        url.contains("&redirect_uri=https%3A%2F%2Fshop.example.com%2Fsignin%2Foidc%2Fcallback&"),
        "{url}"
    );
    assert!(url.contains(&format!("&state={}&", attempt.state)), "{url}");
    assert!(url.contains(&format!("&nonce={}&", attempt.nonce)), "{url}");
    assert!(
        url.contains(&format!(
            "&code_challenge={}&code_challenge_method=S256",
            challenge(&attempt.verifier)
        )),
        "{url}"
    );
    assert!(url.ends_with("&login_hint=ann%40acme.example"), "{url}");
    assert!(
        !url.contains(&attempt.verifier),
        "the verifier never leaves the server"
    );
}

#[test]
fn the_attempt_round_trips_through_its_cookie() {
    let attempt = attempt();
    assert_eq!(Attempt::from_cookie(&attempt.to_cookie()), Some(attempt));
    assert_eq!(Attempt::from_cookie("a.b.c"), None);
    assert_eq!(Attempt::from_cookie("a.b.c.notanumber.eA"), None);
}

#[test]
fn a_callback_needs_this_browsers_attempt_in_time_with_its_state() {
    let attempt = attempt();
    let cookie = attempt.to_cookie();
    let (code, back) =
        check_callback(Some(&cookie), &query(&attempt.state, "c0de"), 1_100).expect("accepted");
    assert_eq!((code.as_str(), back), ("c0de", attempt.clone()));
    for (cookie, query, now, refusal) in [
        (
            None,
            query(&attempt.state, "c"),
            1_100,
            CallbackRefusal::NoAttempt,
        ),
        (
            Some(cookie.as_str()),
            query(&attempt.state, "c"),
            1_600,
            CallbackRefusal::Expired,
        ),
        (
            Some(cookie.as_str()),
            query("forged", "c"),
            1_100,
            CallbackRefusal::StateMismatch,
        ),
        (
            Some(cookie.as_str()),
            query(&attempt.state, ""),
            1_100,
            CallbackRefusal::NoCode,
        ),
    ] {
        assert_eq!(check_callback(cookie, &query, now), Err(refusal));
    }
    let denied = CallbackQuery {
        error: Some("access_denied".into()),
        error_description: Some("the user said no".into()),
        ..CallbackQuery::default()
    };
    assert_eq!(
        check_callback(Some(&cookie), &denied, 1_100),
        Err(CallbackRefusal::Provider("the user said no".into()))
    );
}

#[test]
fn the_id_token_must_carry_the_attempts_nonce() {
    let token = |claims: &str| format!("h.{}.s", URL_SAFE_NO_PAD.encode(claims));
    assert_eq!(check_nonce(&token(r#"{"nonce":"n1"}"#), "n1"), Ok(()));
    assert_eq!(
        check_nonce(&token(r#"{"nonce":"n2"}"#), "n1"),
        Err(CallbackRefusal::NonceMismatch)
    );
    assert_eq!(
        check_nonce(&token("{}"), "n1"),
        Err(CallbackRefusal::NonceMismatch)
    );
    assert_eq!(
        check_nonce("garbage", "n1"),
        Err(CallbackRefusal::NonceMismatch)
    );
}
