//! What the operator's scrape reads live rather than counting as things happen: the
//! subscriptions in the shared caches ([`super::fleet`]) and the HubSpot client's call counters.
//! Read at every scrape, so the numbers cannot drift from the caches and the client.

use std::sync::OnceLock;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::{fleet, outbox};
use crate::api::Notification;
use crate::billing::{CALL_OUTCOMES, HubSpotClient};
use crate::runtime::{SharedCache, Stores};

/// What the scrape reads live: set once each, when the process has them.
#[derive(Default)]
pub struct Sources {
    pub(super) stores: OnceLock<Stores>,
    pub(super) hubspot: OnceLock<HubSpotClient>,
    pub(super) outbox: OnceLock<SharedCache<Notification>>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("stores", &self.stores.get().is_some())
            .field("hubspot", &self.hubspot.get().is_some())
            .field("outbox", &self.outbox.get().is_some())
            .finish()
    }
}

/// The names [`Sources`] exports, for tests and the dashboard check.
pub const SCRAPED_METRICS: &[&str] = &[
    "marketplace_subscriptions",
    "marketplace_monthly_recurring_revenue",
    "marketplace_subscriptions_provisioning_failed",
    "marketplace_subscriptions_drift_unhealed",
    "marketplace_hubspot_calls_total",
    "marketplace_hubspot_rate_limit_waits_total",
    "marketplace_hubspot_rate_limit_wait_seconds_total",
];

fn gauge_family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl Iterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Sources {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(stores) = self.stores.get() {
            let subscriptions = stores.subscriptions.state();
            let fleet = fleet::tally(&subscriptions, |name| stores.listing(name));
            gauge_family(
                &mut encoder,
                "marketplace_subscriptions",
                "TenantSubscriptions by listing and phase",
                fleet.by_phase.iter().map(|((listing, phase), n)| {
                    (
                        vec![("listing", listing.as_str()), ("phase", *phase)],
                        *n as f64,
                    )
                }),
            )?;
            gauge_family(
                &mut encoder,
                "marketplace_monthly_recurring_revenue",
                "What Active and CancelRequested subscriptions bill per month (yearly prices count a twelfth), by listing and currency, in the currency's units",
                fleet.mrr.iter().map(|((listing, currency), amount)| {
                    (
                        vec![
                            ("listing", listing.as_str()),
                            ("currency", currency.as_str()),
                        ],
                        *amount,
                    )
                }),
            )?;
            gauge_family(
                &mut encoder,
                "marketplace_subscriptions_provisioning_failed",
                "Subscriptions not yet in service whose billing or entitlements failed (Billed or Entitled False, reason Failed), by listing",
                fleet
                    .provisioning_failed
                    .iter()
                    .map(|(listing, n)| (vec![("listing", listing.as_str())], *n as f64)),
            )?;
            gauge_family(
                &mut encoder,
                "marketplace_subscriptions_drift_unhealed",
                "Subscriptions whose drift from HubSpot was found and could not be healed (Synced False, reason DriftFound), by listing",
                fleet
                    .drift_unhealed
                    .iter()
                    .map(|(listing, n)| (vec![("listing", listing.as_str())], *n as f64)),
            )?;
        }
        // Always described (the alert rule reads them); sampled once notifications are on.
        let tally = self
            .outbox
            .get()
            .map(|records| outbox::tally(&records.state(), jiff::Timestamp::now()));
        gauge_family(
            &mut encoder,
            outbox::OUTBOX_METRICS[0],
            "Notification outbox records by delivery phase (Pending, Sent, DeadLetter)",
            tally.iter().flat_map(|t| {
                t.by_phase
                    .iter()
                    .map(|(phase, n)| (vec![("phase", *phase)], *n as f64))
            }),
        )?;
        gauge_family(
            &mut encoder,
            outbox::OUTBOX_METRICS[1],
            "Age of the oldest notification not yet delivered (0 when none is pending)",
            tally.iter().map(|t| (Vec::new(), t.oldest_pending_seconds)),
        )?;
        if let Some(hubspot) = self.hubspot.get() {
            let stats = hubspot.stats();
            let mut calls = encoder.encode_descriptor(
                "marketplace_hubspot_calls",
                "Requests sent to HubSpot (retries included), by how they ended",
                None,
                MetricType::Counter,
            )?;
            for (outcome, n) in CALL_OUTCOMES.iter().zip(stats.outcomes) {
                ConstCounter::new(n).encode(calls.encode_family(&[("outcome", *outcome)])?)?;
            }
            ConstCounter::new(stats.rate_limit_waits).encode(encoder.encode_descriptor(
                "marketplace_hubspot_rate_limit_waits",
                "Times a HubSpot request waited for the shared rate limiter (a slot, or the pause after a 429)",
                None,
                MetricType::Counter,
            )?)?;
            ConstCounter::new(stats.rate_limit_wait_micros as f64 / 1e6).encode(
                encoder.encode_descriptor(
                    "marketplace_hubspot_rate_limit_wait_seconds",
                    "Time HubSpot requests spent waiting for the shared rate limiter",
                    None,
                    MetricType::Counter,
                )?,
            )?;
        }
        Ok(())
    }
}
