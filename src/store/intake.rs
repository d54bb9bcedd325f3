//! Group commit for webhook intake.
//!
//! Every acknowledged delivery must be durable before its 202, and one fsync per delivery
//! caps SQLite near 3,500/s on this class of machine. The intake queue gathers the deliveries
//! that arrive while a commit is in flight and commits them together: each caller still waits
//! for the commit that contains its delivery, so durability is unchanged and the fsync cost is
//! shared. If a batch fails, its deliveries are retried one by one so one bad row cannot fail
//! its neighbours.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Intake, Recorded, Store, StoreError, StoreResult};

type Reply = oneshot::Sender<StoreResult<Recorded>>;

/// Handle for recording deliveries through the group committer. Cloning is cheap; the
/// committer stops once every handle is dropped and the queue is drained.
#[derive(Clone)]
pub struct IntakeQueue {
    sender: mpsc::Sender<(Intake, Reply)>,
}

impl IntakeQueue {
    /// Starts the committer task. `max_batch` bounds one transaction.
    pub fn start(store: Arc<dyn Store>, max_batch: usize) -> (Self, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(max_batch * 4);
        let task = tokio::spawn(commit_loop(store, receiver, max_batch.max(1)));
        (Self { sender }, task)
    }

    /// Records one delivery; returns once it is committed (or failed).
    pub async fn record(&self, intake: Intake) -> StoreResult<Recorded> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((intake, reply))
            .await
            .map_err(|_| StoreError::IntakeClosed)?;
        answer.await.map_err(|_| StoreError::IntakeClosed)?
    }
}

async fn commit_loop(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<(Intake, Reply)>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while receiver.recv_many(&mut batch, max_batch).await > 0 {
        let (intakes, replies): (Vec<Intake>, Vec<Reply>) = batch.drain(..).unzip();
        match store.record_deliveries(&intakes).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(err) if intakes.len() == 1 => {
                let _ = replies.into_iter().next().map(|reply| reply.send(Err(err)));
            }
            Err(err) => {
                tracing::warn!(error = %err, size = intakes.len(), "intake batch failed; retrying one by one");
                for (intake, reply) in intakes.into_iter().zip(replies) {
                    let result = store
                        .record_deliveries(std::slice::from_ref(&intake))
                        .await
                        .map(|mut results| results.pop().unwrap_or(Recorded::Duplicate));
                    let _ = reply.send(result);
                }
            }
        }
    }
}
