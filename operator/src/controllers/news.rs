//! What webhooks and the drift audit learned about subscriptions' billing records, held until
//! the subscription's next reconcile reads it. Webhooks are hints: the reconcile trusts only
//! what was re-read from HubSpot, which is what the news carries.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc;

use crate::api::TenantSubscription;

pub use crate::lifecycle::subscription_plan::BillingNews;

/// News by subscription uid, plus the channel that wakes the subscription controller.
pub struct NewsBoard {
    news: Mutex<HashMap<String, BillingNews>>,
    wake: mpsc::Sender<ObjectRef<TenantSubscription>>,
    wakeups: Mutex<Option<mpsc::Receiver<ObjectRef<TenantSubscription>>>>,
}

impl Default for NewsBoard {
    fn default() -> Self {
        let (wake, wakeups) = mpsc::channel(4096);
        NewsBoard {
            news: Mutex::new(HashMap::new()),
            wake,
            wakeups: Mutex::new(Some(wakeups)),
        }
    }
}

impl NewsBoard {
    /// Records news for `uid` (newer news replaces older) and wakes its subscription.
    pub fn post(&self, uid: &str, object: ObjectRef<TenantSubscription>, news: BillingNews) {
        self.news
            .lock()
            .expect("news lock")
            .insert(uid.to_string(), news);
        // A full channel only delays the reconcile to its periodic requeue.
        let _ = self.wake.try_send(object);
    }

    /// Puts back news a reconcile took but could not answer yet, without waking anyone (what
    /// it waits for wakes the subscription).
    pub fn keep(&self, uid: &str, news: BillingNews) {
        self.news
            .lock()
            .expect("news lock")
            .entry(uid.to_string())
            .or_insert(news);
    }

    /// A sender of wake-ups, for work that finishes outside a reconcile.
    pub fn waker(&self) -> mpsc::Sender<ObjectRef<TenantSubscription>> {
        self.wake.clone()
    }

    /// Takes the news for `uid`, if any.
    pub fn take(&self, uid: &str) -> Option<BillingNews> {
        self.news.lock().expect("news lock").remove(uid)
    }

    /// The wake-up stream, for the subscription controller (once).
    pub fn wakeups(&self) -> Option<mpsc::Receiver<ObjectRef<TenantSubscription>>> {
        self.wakeups.lock().expect("wakeups lock").take()
    }
}
