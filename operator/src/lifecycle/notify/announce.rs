//! Catalog announcements to tenants: a listing's first publication (NewListing) and each rise of
//! its major version (MajorRelease). What was announced is kept in a ledger (listing name → the
//! major version announced), so an announcement is decided once however often the pass runs, on
//! whichever replica, after any restart; each tenant's event id names the listing, the kind and
//! the major version, so a pass that dies between the outbox and the ledger writes the same
//! records again (no-ops) and then the ledger.
//!
//! No ledger yet (notifications just switched on, or a new installation): everything published
//! now is the baseline, announced to nobody. Only what is published, or released, afterwards is
//! news.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::{SubscriptionEvent, stable_id};
use crate::api::listing::{Lifecycle, ListingSpec};
use crate::api::notification_channel::NotificationEventKind;
use crate::lifecycle::visibility::{Viewer, visible_to};

/// What was announced: listing name → the major version announced with it (decimal).
pub type Ledger = BTreeMap<String, String>;

/// One listing's news, before it is fanned out to tenants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub listing: String,
    pub kind: NotificationEventKind,
    /// The major version it announces (0 when the listing has no release ≥ 1.0.0).
    pub major: u64,
    /// The newest release's version, if the listing has releases.
    pub version: Option<String>,
    /// The listing's tagline (NewListing) or the release's summary (MajorRelease).
    pub summary: String,
    /// The release's date (YYYY-MM-DD), for MajorRelease.
    pub released_on: Option<String>,
}

/// The newest release by semantic version: (major, version, summary, date). Versions that do
/// not parse are ignored (the CRD's pattern keeps them out).
fn newest_release(spec: &ListingSpec) -> Option<(u64, &str, &str, &str)> {
    spec.releases
        .iter()
        .filter_map(|r| Some((semver::Version::parse(&r.version).ok()?, r)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(v, r)| {
            (
                v.major,
                r.version.as_str(),
                r.summary.as_str(),
                r.date.as_str(),
            )
        })
}

/// The announcements due for `listings` given the `ledger` (`None`: none written yet), and the
/// ledger to write once their outbox records are.
pub fn announcements<'a>(
    listings: impl IntoIterator<Item = (&'a str, &'a ListingSpec)>,
    ledger: Option<&Ledger>,
) -> (Vec<Announcement>, Ledger) {
    let mut next = ledger.cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (name, spec) in listings {
        if spec.lifecycle != Lifecycle::Published {
            continue;
        }
        let newest = newest_release(spec);
        let major = newest.map(|r| r.0).unwrap_or(0);
        let announced = next.get(name).and_then(|m| m.parse::<u64>().ok());
        let kind = match (ledger, announced) {
            // The baseline: published before there was a ledger.
            (None, _) => None,
            (Some(_), None) => Some(NotificationEventKind::NewListing),
            (Some(_), Some(was)) if major > was => Some(NotificationEventKind::MajorRelease),
            (Some(_), Some(_)) => None,
        };
        if ledger.is_none() || kind.is_some() {
            next.insert(name.to_string(), major.to_string());
        }
        if let Some(kind) = kind {
            let release = (kind == NotificationEventKind::MajorRelease)
                .then_some(newest)
                .flatten();
            out.push(Announcement {
                listing: name.to_string(),
                kind,
                major,
                version: newest.map(|r| r.1.to_string()),
                summary: release
                    .map(|r| r.2.to_string())
                    .unwrap_or_else(|| spec.tagline.clone()),
                released_on: release.map(|r| r.3.to_string()),
            });
        }
    }
    (out, next)
}

/// The event of `announcement` for one tenant who may see the listing, or `None` when the
/// tenant may not (an Internal or Private listing). Marketing opt-outs are honoured by routing
/// ([`super::tenant_recipients`]).
pub fn tenant_event(
    announcement: &Announcement,
    listing: &ListingSpec,
    tenant: Viewer<'_>,
    now: Timestamp,
) -> Option<SubscriptionEvent> {
    if !visible_to(listing, tenant) {
        return None;
    }
    let major = announcement.major.to_string();
    Some(SubscriptionEvent {
        id: stable_id(
            "evt",
            &[
                &announcement.listing,
                &format!("{:?}", announcement.kind),
                &major,
                tenant.name,
            ],
        ),
        kind: announcement.kind,
        at: now,
        date: now,
        reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::fixtures::{listing, tenant};

    fn with_releases(extra: &str, versions: &[&str]) -> ListingSpec {
        let releases: Vec<String> = versions
            .iter()
            .map(|v| format!("{{version: \"{v}\", date: \"2026-11-05\", summary: \"v{v}\"}}"))
            .collect();
        listing(&format!("{extra}\nreleases: [{}]", releases.join(", ")))
    }

    #[test]
    fn without_a_ledger_what_is_published_is_the_baseline_and_nobody_hears_of_it() {
        let published = with_releases("", &["2.1.0"]);
        let draft = listing("lifecycle: ComingSoon");
        let (news, ledger) = announcements([("routes", &published), ("soon", &draft)], None);
        assert!(news.is_empty(), "{news:?}");
        assert_eq!(ledger, Ledger::from([("routes".into(), "2".into())]));
    }

    #[test]
    fn a_first_publication_is_announced_once_and_a_major_rise_once_each() {
        let ledger = Ledger::from([("routes".into(), "2".into())]);
        let soon = with_releases("lifecycle: ComingSoon", &["1.0.0"]);
        let (news, same) = announcements([("eta", &soon)], Some(&ledger));
        assert!(news.is_empty());
        assert_eq!(same, ledger, "a listing not yet published is not recorded");

        let published = with_releases("", &["1.0.0"]);
        let (news, ledger) = announcements([("eta", &published)], Some(&ledger));
        assert_eq!(news.len(), 1);
        assert_eq!(news[0].kind, NotificationEventKind::NewListing);
        assert_eq!(news[0].summary, "Fast routes", "the tagline");
        assert_eq!(ledger.get("eta").map(String::as_str), Some("1"));
        let (again, _) = announcements([("eta", &published)], Some(&ledger));
        assert!(again.is_empty(), "announced once");

        let minor = with_releases("", &["1.0.0", "1.4.0"]);
        assert!(announcements([("eta", &minor)], Some(&ledger)).0.is_empty());
        let major = with_releases("", &["1.4.0", "10.0.0", "9.9.9"]);
        let (news, ledger) = announcements([("eta", &major)], Some(&ledger));
        assert_eq!(news.len(), 1);
        assert_eq!(news[0].kind, NotificationEventKind::MajorRelease);
        assert_eq!(news[0].version.as_deref(), Some("10.0.0"));
        assert_eq!(news[0].summary, "v10.0.0");
        assert_eq!(ledger.get("eta").map(String::as_str), Some("10"));
        assert!(announcements([("eta", &major)], Some(&ledger)).0.is_empty());

        // Archived and published again: not news.
        let archived = with_releases("lifecycle: Archived", &["10.0.0"]);
        let (none, kept) = announcements([("eta", &archived)], Some(&ledger));
        assert!(none.is_empty());
        assert_eq!(kept, ledger);
    }

    #[test]
    fn each_tenant_who_may_see_the_listing_gets_its_own_stable_event() {
        let spec = listing("");
        let (news, _) = announcements([("eta", &spec)], Some(&Ledger::new()));
        let labels = BTreeMap::new();
        let t = tenant("Starter");
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let viewer = |name| Viewer {
            name,
            spec: &t,
            labels: &labels,
        };
        let a = tenant_event(&news[0], &spec, viewer("acme"), now).unwrap();
        let b = tenant_event(&news[0], &spec, viewer("globex"), now).unwrap();
        assert_ne!(a.id, b.id);
        let later = now + jiff::SignedDuration::from_hours(5);
        assert_eq!(
            tenant_event(&news[0], &spec, viewer("acme"), later)
                .unwrap()
                .id,
            a.id,
            "the same news for the same tenant has the same id at any time"
        );
        let internal = listing("visibility: Internal");
        assert!(tenant_event(&news[0], &internal, viewer("acme"), now).is_none());
    }
}
