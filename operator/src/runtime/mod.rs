//! What every marketplace process runs, whatever it serves (kubert's shape): the shared caches
//! ([`Stores`]), the HTTP endpoint, leader election for the writers, one shutdown signal, the Event
//! recorder and logging (text or JSON lines, with trace ids).
//! `marketplace operator` assembles these in [`crate::process`]; the command line only parses
//! flags into settings.

pub mod caches;
pub mod endpoint;
pub mod event_recorder;
pub mod leader;
pub mod logging;
pub mod shutdown;
pub mod stores;

pub use caches::{CacheUpdate, SharedCache, spec_changes};
pub use event_recorder::EventRecorder;
pub use leader::{LeaderOutcome, LeaseSettings};
pub use shutdown::Shutdown;
pub use stores::Stores;

/// A 64-bit hash of `value`, the same for equal values within one process (never stored or
/// sent): what the caches and the Event recorder remember instead of whole keys or objects.
pub fn fingerprint(value: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}
