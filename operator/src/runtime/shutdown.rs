//! One stop signal for the whole process. SIGTERM or Ctrl-C flips it; everything that runs
//! until shutdown waits on a clone. If stopping takes longer than the grace period, the process
//! exits anyway (a wedged task must not keep a pod Terminating).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

/// A cloneable view of the stop signal.
#[derive(Clone)]
pub struct Shutdown {
    requested: watch::Receiver<bool>,
}

/// Flips a [`Shutdown`] by hand (tests, and stop signals derived from others).
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// A signal only `trigger` flips.
    pub fn manual() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown { requested: rx })
    }

    /// A signal flipped by SIGTERM or Ctrl-C; `grace` later the process exits regardless.
    pub fn on_signals(grace: Duration) -> std::io::Result<Shutdown> {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let (trigger, shutdown) = Shutdown::manual();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            info!("shutting down");
            trigger.stop();
            tokio::time::sleep(grace).await;
            warn!(
                ?grace,
                "shutdown took longer than the grace period; exiting now"
            );
            std::process::exit(0);
        });
        Ok(shutdown)
    }

    pub fn is_requested(&self) -> bool {
        *self.requested.borrow()
    }

    /// Resolves once shutdown is requested (at once if it already was).
    pub fn requested(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut requested = self.requested.clone();
        async move {
            let _ = requested.wait_for(|stop| *stop).await;
        }
    }

    /// A signal that flips when this one does or when `other` resolves, whichever is first.
    pub fn or(&self, other: impl Future<Output = ()> + Send + 'static) -> Shutdown {
        let (trigger, combined) = Shutdown::manual();
        let this = self.requested();
        tokio::spawn(async move {
            tokio::select! {
                _ = this => {}
                _ = other => {}
            }
            trigger.stop();
        });
        combined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_combined_signal_follows_either_side() {
        let (trigger, shutdown) = Shutdown::manual();
        let (other, other_signal) = Shutdown::manual();
        let combined = shutdown.or(other_signal.requested());
        assert!(!combined.is_requested());
        other.stop();
        tokio::time::timeout(Duration::from_secs(5), combined.requested())
            .await
            .expect("the other side stops it");
        assert!(!shutdown.is_requested());
        trigger.stop();
        shutdown.requested().await;
    }
}
