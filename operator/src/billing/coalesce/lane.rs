//! One lane: inputs of one kind of call waiting for the next batch, and the batch in flight.

use crate::billing::api::MAX_BATCH;
use crate::billing::error::{HubSpotError, Result};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

type Reply<O> = oneshot::Sender<Result<O>>;

struct LaneState<I, O> {
    waiting: Vec<(I, Reply<O>)>,
    /// Batches sent and not yet answered.
    in_flight: usize,
    /// A linger timer is running.
    timer: bool,
}

impl<I, O> LaneState<I, O> {
    fn take_batch(&mut self) -> Vec<(I, Reply<O>)> {
        let n = self.waiting.len().min(MAX_BATCH);
        self.in_flight += 1;
        self.waiting.drain(..n).collect()
    }
}

/// Inputs waiting for the next batch of one kind of call.
///
/// One batch per lane is in flight at a time (a full batch of 100 always goes at once): what
/// arrives meanwhile waits for the answer and then goes together. So the busier HubSpot is (a
/// rate-limit wait, slow answers), the larger the batches, without a longer linger.
pub(crate) struct Lane<I, O> {
    op: String,
    state: Mutex<LaneState<I, O>>,
}

impl<I: Send + 'static, O: Send + 'static> Lane<I, O> {
    pub(super) fn new(op: String) -> Self {
        Lane {
            op,
            state: Mutex::new(LaneState {
                waiting: Vec::new(),
                in_flight: 0,
                timer: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LaneState<I, O>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `input` and waits for its result. The first input of an idle lane starts the
    /// linger; a full lane is sent at once; otherwise the input goes with the next batch, after
    /// the one in flight. `run` sends one batch and returns one result per input, in order.
    pub(super) async fn submit<F, Fut>(
        self: &Arc<Self>,
        input: I,
        linger: Duration,
        run: F,
    ) -> Result<O>
    where
        F: Fn(Vec<I>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<O>>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let (full, start_timer) = {
            let mut st = self.lock();
            st.waiting.push((input, tx));
            if st.waiting.len() >= MAX_BATCH {
                (Some(st.take_batch()), false)
            } else if st.in_flight == 0 && !st.timer {
                st.timer = true;
                (None, true)
            } else {
                (None, false)
            }
        };
        if let Some(batch) = full {
            self.spawn_send(batch, run);
        } else if start_timer {
            let lane = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(linger).await;
                lane.lock().timer = false;
                lane.flush(&run);
            });
        }
        // The sender is gone only if the batch task died mid-call: whether a write committed
        // is then unknown, so the caller must look it up first.
        rx.await.unwrap_or_else(|_| {
            Err(HubSpotError::AmbiguousAfterCommit {
                op: self.op.clone(),
                status: None,
            })
        })
    }

    /// Sends everything waiting, in batches of ≤100.
    fn flush<F, Fut>(self: &Arc<Self>, run: &F)
    where
        F: Fn(Vec<I>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<O>>> + Send + 'static,
    {
        let batches: Vec<_> = {
            let mut st = self.lock();
            std::iter::from_fn(|| (!st.waiting.is_empty()).then(|| st.take_batch())).collect()
        };
        for batch in batches {
            self.spawn_send(batch, run.clone());
        }
    }

    fn spawn_send<F, Fut>(self: &Arc<Self>, batch: Vec<(I, Reply<O>)>, run: F)
    where
        F: Fn(Vec<I>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<O>>> + Send + 'static,
    {
        let answered = Answered {
            lane: Arc::clone(self),
            run: run.clone(),
        };
        tokio::spawn(async move {
            send(batch, run).await;
            drop(answered);
        });
    }
}

/// Marks a batch answered when dropped (also if its task panicked or was cancelled), and sends
/// what waited for it.
struct Answered<I: Send + 'static, O: Send + 'static, F, Fut>
where
    F: Fn(Vec<I>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Vec<Result<O>>> + Send + 'static,
{
    lane: Arc<Lane<I, O>>,
    run: F,
}

impl<I: Send + 'static, O: Send + 'static, F, Fut> Drop for Answered<I, O, F, Fut>
where
    F: Fn(Vec<I>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Vec<Result<O>>> + Send + 'static,
{
    fn drop(&mut self) {
        let next = {
            let mut st = self.lane.lock();
            st.in_flight = st.in_flight.saturating_sub(1);
            st.in_flight == 0 && !st.timer && !st.waiting.is_empty()
        };
        // These inputs already waited a whole round trip: no linger.
        if next && tokio::runtime::Handle::try_current().is_ok() {
            self.lane.flush(&self.run);
        }
    }
}

async fn send<I, O, F, Fut>(batch: Vec<(I, Reply<O>)>, run: F)
where
    F: Fn(Vec<I>) -> Fut,
    Fut: Future<Output = Vec<Result<O>>>,
{
    let (inputs, replies): (Vec<I>, Vec<Reply<O>>) = batch.into_iter().unzip();
    let results = run(inputs).await;
    for (reply, result) in replies.into_iter().zip(results) {
        // A caller that stopped waiting (its reconcile ended) does not matter to the others.
        let _ = reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Run = std::sync::Arc<
        dyn Fn(Vec<u32>) -> futures::future::BoxFuture<'static, Vec<Result<u32>>> + Send + Sync,
    >;

    /// A lane "call" that records the batch sizes, takes `delay`, and answers each input with
    /// itself times ten.
    fn recorder(delay: Duration) -> (Arc<Mutex<Vec<usize>>>, Run) {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let run: Run = Arc::new(move |inputs: Vec<u32>| {
            let seen = Arc::clone(&seen);
            let fut: futures::future::BoxFuture<'static, Vec<Result<u32>>> = Box::pin(async move {
                seen.lock().unwrap().push(inputs.len());
                tokio::time::sleep(delay).await;
                inputs.into_iter().map(|i| Ok(i * 10)).collect()
            });
            fut
        });
        (sizes, run)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_inputs_share_batches_of_at_most_100_and_get_their_own_results() {
        let lane = Arc::new(Lane::<u32, u32>::new("test".into()));
        let (sizes, run) = recorder(Duration::from_millis(50));
        let tasks: Vec<_> = (0..250u32)
            .map(|i| {
                let (lane, run) = (Arc::clone(&lane), run.clone());
                tokio::spawn(async move {
                    lane.submit(i, Duration::from_millis(20), move |v| run(v))
                        .await
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().unwrap(), i as u32 * 10);
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 250);
        assert!(sizes.iter().all(|n| *n <= MAX_BATCH), "{sizes:?}");
        assert_eq!(sizes.len(), 3, "{sizes:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn inputs_arriving_during_a_call_go_together_after_it() {
        let lane = Arc::new(Lane::<u32, u32>::new("test".into()));
        let (sizes, run) = recorder(Duration::from_millis(100));
        let linger = Duration::from_millis(10);
        let first = {
            let (lane, run) = (Arc::clone(&lane), run.clone());
            tokio::spawn(async move { lane.submit(1, linger, move |v| run(v)).await })
        };
        // The first batch (one input) is in flight from 10 ms to 110 ms; five more arrive
        // meanwhile, spread out, and leave together when it is answered.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut later = Vec::new();
        for i in 2..7u32 {
            let (lane, run) = (Arc::clone(&lane), run.clone());
            later.push(tokio::spawn(async move {
                lane.submit(i, linger, move |v| run(v)).await
            }));
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        assert_eq!(first.await.unwrap().unwrap(), 10);
        for (t, i) in later.into_iter().zip(2..) {
            assert_eq!(t.await.unwrap().unwrap(), i * 10);
        }
        assert_eq!(*sizes.lock().unwrap(), vec![1, 5]);
    }
}
