//! Group commit. Requests that must each make a small durable write of the same kind —
//! recording a proof's or an assertion's `jti`, recording an issued token — hand it to a
//! batcher instead of committing on their own. The batcher takes whatever has queued up
//! while the previous transaction was committing, writes it all in one transaction, and
//! answers each request only once that transaction has committed. Nothing is acknowledged
//! before it is durable; under load, one commit (one `fsync`) serves many requests, and
//! when idle a write is committed at once, with no added delay.

use std::future::Future;
use std::sync::Arc;

use surety_store::StoreError;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

type Reply<R> = oneshot::Sender<Result<R, Arc<StoreError>>>;

/// A queue of writes of one kind, applied in batches of at most `max`.
#[derive(Debug)]
pub(crate) struct Batcher<T, R> {
    queue: mpsc::Sender<(T, Reply<R>)>,
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the batching task; `apply` writes a batch in one transaction and returns one
    /// result per item, in order.
    pub(crate) fn spawn<F, Fut>(max: usize, apply: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<R>, StoreError>> + Send,
    {
        let (queue, mut rx) = mpsc::channel::<(T, Reply<R>)>(max.saturating_mul(4).max(1));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut items = vec![first.0];
                let mut replies = vec![first.1];
                while items.len() < max {
                    let Ok((item, reply)) = rx.try_recv() else {
                        break;
                    };
                    items.push(item);
                    replies.push(reply);
                }
                metrics::histogram!("surety_group_commit_batch_size").record(items.len() as f64);
                match apply(items).await {
                    Ok(results) => {
                        // INVARIANT: one result per item; a short answer leaves the rest
                        // unanswered, which they see as a failed write.
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        let e = Arc::new(e);
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        Self { queue }
    }

    /// Queues `item` and waits until its batch has committed.
    pub(crate) async fn submit(&self, item: T) -> Result<R, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((item, reply))
            .await
            .map_err(|_| ApiError::internal("the batch writer has stopped"))?;
        match answer.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) if e.is_unavailable() => Err(ApiError::unavailable(e)),
            Ok(Err(e)) => Err(ApiError::internal(e)),
            Err(_) => Err(ApiError::internal("a batched write got no answer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn concurrent_writes_share_commits_and_each_gets_its_own_answer() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = Arc::new(Batcher::spawn(8, move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.len());
            async move {
                // A commit takes a while: meanwhile the others queue up.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Ok(items.into_iter().map(|i| i * 2).collect())
            }
        }));
        let tasks: Vec<_> = (0..40u32)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { (i, b.submit(i).await.unwrap()) })
            })
            .collect();
        for t in tasks {
            let (i, doubled) = t.await.unwrap();
            assert_eq!(doubled, i * 2);
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 40);
        assert!(sizes.iter().all(|s| *s <= 8), "{sizes:?}");
        assert!(sizes.len() < 40, "writes were grouped: {sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_write_in_it() {
        let batcher = Batcher::spawn(8, |_items: Vec<u32>| async {
            Err::<Vec<u32>, _>(StoreError::Corrupt("disk on fire".into()))
        });
        let err = batcher.submit(1).await.unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        // A short answer leaves a write unanswered: it fails too, never succeeds.
        let short = Batcher::spawn(8, |_items: Vec<u32>| async { Ok(Vec::<u32>::new()) });
        assert!(short.submit(1).await.is_err());
    }
}
