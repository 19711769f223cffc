use super::*;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).unwrap()
}

fn seen(name: &str, count: i32, last: Timestamp) -> Remembered {
    Remembered {
        namespace: "tenant-a".into(),
        name: name.into(),
        count,
        last,
    }
}

fn event(reason: &str, note: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note.into()),
        action: "Reconcile".into(),
        secondary: None,
    }
}

fn object(name: &str, uid: &str) -> ObjectReference {
    ObjectReference {
        kind: Some("TenantSubscription".into()),
        namespace: Some("tenant-a".into()),
        name: Some(name.into()),
        uid: Some(uid.into()),
        ..ObjectReference::default()
    }
}

#[test]
fn a_first_event_is_created() {
    assert_eq!(plan(None, at(0), SERIES_WINDOW), Publication::Create);
}

#[test]
fn a_repeat_within_the_window_joins_the_series() {
    let first = seen("sub.1", 1, at(0));
    assert_eq!(
        plan(Some(&first), at(359), SERIES_WINDOW),
        Publication::Repeat {
            namespace: "tenant-a".into(),
            name: "sub.1".into(),
            count: 2
        }
    );
    let third = seen("sub.1", 2, at(359));
    assert!(matches!(
        plan(Some(&third), at(700), SERIES_WINDOW),
        Publication::Repeat { count: 3, .. }
    ));
}

#[test]
fn a_repeat_after_the_window_is_a_new_event() {
    let first = seen("sub.1", 4, at(0));
    assert_eq!(
        plan(Some(&first), at(360), SERIES_WINDOW),
        Publication::Create
    );
}

#[test]
fn the_same_event_has_the_same_fingerprint_and_any_difference_another() {
    let base = fingerprint(&event("Refused", "no plan"), &object("sub", "u1"));
    let again = fingerprint(&event("Refused", "no plan"), &object("sub", "u1"));
    assert_eq!(base, again);
    let mut normal = event("Refused", "no plan");
    normal.type_ = EventType::Normal;
    let others = [
        (event("Refused", "other"), object("sub", "u1")),
        (event("Other", "no plan"), object("sub", "u1")),
        // A new object of the same name (deleted and created again) starts its own series.
        (event("Refused", "no plan"), object("sub", "u2")),
        (normal, object("sub", "u1")),
    ];
    for (other, regarding) in others {
        assert_ne!(base, fingerprint(&other, &regarding), "{}", other.reason);
    }
}

#[test]
fn events_past_the_window_are_forgotten_as_new_ones_arrive() {
    let mut recent = RecentEvents::default();
    recent.remember(1, seen("a", 1, at(0)), SERIES_WINDOW, 100);
    recent.remember(2, seen("b", 1, at(10)), SERIES_WINDOW, 100);
    recent.remember(3, seen("c", 1, at(365)), SERIES_WINDOW, 100);
    assert!(recent.get(1).is_none());
    assert!(recent.get(2).is_some());
    assert_eq!(recent.len(), 2);
}

#[test]
fn a_repeated_event_is_kept_from_its_last_occurrence() {
    let mut recent = RecentEvents::default();
    recent.remember(1, seen("a", 1, at(0)), SERIES_WINDOW, 100);
    recent.remember(1, seen("a", 2, at(300)), SERIES_WINDOW, 100);
    recent.remember(2, seen("b", 1, at(400)), SERIES_WINDOW, 100);
    assert_eq!(recent.get(1).map(|r| r.count), Some(2));
    recent.remember(3, seen("c", 1, at(700)), SERIES_WINDOW, 100);
    assert!(recent.get(1).is_none());
}

#[test]
fn at_most_the_limit_is_remembered_the_oldest_going_first() {
    let mut recent = RecentEvents::default();
    for i in 0..1000u64 {
        recent.remember(i, seen("e", 1, at(i as i64 / 100)), SERIES_WINDOW, 64);
    }
    assert_eq!(recent.len(), 64);
    assert!(recent.get(999).is_some());
    assert!(recent.get(935).is_none());
    // Repeats of one Event do not grow what is kept without bound either.
    let mut repeats = RecentEvents::default();
    for i in 0..1000 {
        repeats.remember(7, seen("e", i + 1, at(i as i64 / 100)), SERIES_WINDOW, 64);
    }
    assert_eq!(repeats.len(), 1);
    assert!(repeats.order.len() <= 128);
    assert_eq!(repeats.get(7).map(|r| r.count), Some(1000));
}
