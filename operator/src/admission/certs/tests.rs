use super::*;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn names() -> ServingNames {
    let mut names = ServingNames::for_service("marketplace-webhook", "marketplace-system");
    names.ips.push("127.0.0.1".parse().unwrap());
    names
}

const LIFETIMES: CertLifetimes = CertLifetimes {
    ca: Duration::from_secs(300 * 24 * 3600),
    leaf: Duration::from_secs(90 * 24 * 3600),
};

/// Applies the steps due at `now` until nothing is left to do (trusting every CA at once).
fn settle(m: Option<Material>, now: Timestamp) -> (Material, Vec<RotationStep>) {
    let mut current = m;
    let mut steps = Vec::new();
    loop {
        let step = plan_rotation(&Observed::of(current.as_ref()), &names(), true, now);
        if step == RotationStep::Keep {
            return (current.expect("material"), steps);
        }
        steps.push(step);
        current = Some(apply_step(step, current.as_ref(), &names(), LIFETIMES, now).unwrap());
        assert!(steps.len() < 5, "no fixed point: {steps:?}");
    }
}

#[test]
fn fresh_material_is_a_ca_and_a_leaf_it_signed_for_the_service_names() {
    let now = at("2026-01-01T00:00:00Z");
    let (m, steps) = settle(None, now);
    assert_eq!(steps, vec![RotationStep::Fresh]);
    let cas = parse_certs(CA_CERT_KEY, &m.ca_cert).unwrap();
    let leaf = parse_certs(TLS_CERT_KEY, &m.cert).unwrap().remove(0);
    assert_eq!(cas.len(), 1);
    assert_eq!(leaf.issuer, cas[0].subject);
    assert_eq!(leaf.names, names());
    assert_eq!(leaf.not_after, now + SignedDuration::from_hours(90 * 24));
    assert_eq!(cas[0].not_after, now + SignedDuration::from_hours(300 * 24));
    // Backdated a little, never by more than a minute.
    assert_eq!(leaf.not_before, now - SignedDuration::from_secs(60));
    // rustls takes the pair as a serving certificate.
    crate::server::tls::ReloadableCert::default()
        .set_pem("test", m.cert.as_bytes(), m.key.as_bytes())
        .unwrap();
}

#[test]
fn the_leaf_is_renewed_after_two_thirds_of_its_life_by_the_same_ca() {
    let start = at("2026-01-01T00:00:00Z");
    let (m, _) = settle(None, start);
    let (same, steps) = settle(Some(m.clone()), start + SignedDuration::from_hours(59 * 24));
    assert!(steps.is_empty());
    assert_eq!(same, m);
    let later = start + SignedDuration::from_hours(61 * 24);
    let (renewed, steps) = settle(Some(m.clone()), later);
    assert_eq!(steps, vec![RotationStep::NewLeaf]);
    assert_eq!(renewed.ca_cert, m.ca_cert);
    assert_ne!(renewed.cert, m.cert);
    let leaf = parse_certs(TLS_CERT_KEY, &renewed.cert).unwrap().remove(0);
    assert_eq!(leaf.not_after, later + SignedDuration::from_hours(90 * 24));
}

#[test]
fn a_new_ca_is_trusted_before_it_signs_the_served_leaf() {
    let start = at("2026-01-01T00:00:00Z");
    let (m, _) = settle(None, start);
    let old_ca = parse_certs(CA_CERT_KEY, &m.ca_cert).unwrap().remove(0);
    // Keep the leaf fresh until the CA is due (2/3 of 300 days = 200 days).
    let (m, _) = settle(Some(m), start + SignedDuration::from_hours(150 * 24));
    let due = start + SignedDuration::from_hours(201 * 24);
    let observed = Observed::of(Some(&m));
    assert_eq!(
        plan_rotation(&observed, &names(), true, due),
        RotationStep::NewCa { new_leaf: false }
    );
    let rotated = apply_step(
        RotationStep::NewCa { new_leaf: false },
        Some(&m),
        &names(),
        LIFETIMES,
        due,
    )
    .unwrap();
    let cas = parse_certs(CA_CERT_KEY, &rotated.ca_cert).unwrap();
    assert_eq!(cas.len(), 2, "the new CA joins the old one");
    assert_eq!(cas[1], old_ca);
    assert_eq!(
        rotated.cert, m.cert,
        "the old leaf is served until the new CA is trusted"
    );
    // Not trusted yet: keep serving the old leaf.
    let observed = Observed::of(Some(&rotated));
    assert_eq!(
        plan_rotation(&observed, &names(), false, due),
        RotationStep::Keep
    );
    // Trusted: a leaf from the new CA.
    assert_eq!(
        plan_rotation(&observed, &names(), true, due),
        RotationStep::NewLeaf
    );
    let switched = apply_step(
        RotationStep::NewLeaf,
        Some(&rotated),
        &names(),
        LIFETIMES,
        due,
    )
    .unwrap();
    let leaf = parse_certs(TLS_CERT_KEY, &switched.cert).unwrap().remove(0);
    assert_eq!(leaf.issuer, cas[0].subject);
    // Once the old CA has expired it leaves the bundle.
    let gone = start + SignedDuration::from_hours(301 * 24);
    let (pruned, steps) = settle(Some(switched), gone);
    assert!(steps.contains(&RotationStep::Prune), "{steps:?}");
    assert_eq!(parse_certs(CA_CERT_KEY, &pruned.ca_cert).unwrap().len(), 1);
}

#[test]
fn unusable_material_is_replaced() {
    let now = at("2026-01-01T00:00:00Z");
    let (m, _) = settle(None, now);
    let mut broken = m.clone();
    broken.ca_key = "not a key".into();
    assert_eq!(
        plan_rotation(&Observed::of(Some(&broken)), &names(), true, now),
        RotationStep::Fresh
    );
    let mut no_leaf = m.clone();
    no_leaf.cert.clear();
    assert_eq!(
        plan_rotation(&Observed::of(Some(&no_leaf)), &names(), false, now),
        RotationStep::NewLeaf
    );
    // Another Service name: a new leaf, even before the CA is trusted.
    let mut other = names();
    other.dns = vec!["other.marketplace-system.svc".into()];
    assert_eq!(
        plan_rotation(&Observed::of(Some(&m)), &other, false, now),
        RotationStep::NewLeaf
    );
    // Everything expired: start over.
    let later = now + SignedDuration::from_hours(400 * 24);
    assert_eq!(
        plan_rotation(&Observed::of(Some(&m)), &names(), true, later),
        RotationStep::Fresh
    );
}

#[test]
fn a_bundle_is_searched_certificate_by_certificate() {
    let (m, _) = settle(None, at("2026-01-01T00:00:00Z"));
    let ca = parse_certs(CA_CERT_KEY, &m.ca_cert).unwrap().remove(0);
    let leaf = parse_certs(TLS_CERT_KEY, &m.cert).unwrap().remove(0);
    let bundle = format!("{}{}", m.cert, m.ca_cert);
    assert!(bundle_contains(bundle.as_bytes(), &ca.der));
    assert!(!bundle_contains(m.ca_cert.as_bytes(), &leaf.der));
    assert!(!bundle_contains(b"", &ca.der));
}
