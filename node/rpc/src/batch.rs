//! Batch requests run their calls concurrently.
//!
//! jsonrpsee answers the calls of a batch one after another. A `lane_sendTransfer` is
//! answered only after the journal's `fdatasync`, so a batch of 50 transfers would wait for
//! 50 group commits in a row, and batching would make a client slower, not faster. This
//! middleware starts every call of a batch at once (the batch length is bounded by
//! `batch_requests_max`) and answers in request order, so the transfers of a batch share
//! group commits. Calls of one batch are independent requests either way: JSON-RPC
//! promises no order of execution within a batch.

use futures::future::join_all;
use jsonrpsee::{
    core::middleware::{Batch, BatchEntry, RpcServiceT},
    server::{BatchResponseBuilder, MethodResponse},
    types::{Notification, Request},
};
use tower::Layer;

/// Layer of [`ConcurrentBatch`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConcurrentBatchLayer {
    /// The server's response size limit, applied to the whole batch response.
    pub(crate) response_max_bytes: usize,
}

impl<S> Layer<S> for ConcurrentBatchLayer {
    type Service = ConcurrentBatch<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrentBatch {
            inner,
            response_max_bytes: self.response_max_bytes,
        }
    }
}

/// Runs the calls of a batch concurrently; single calls and notifications pass through.
#[derive(Debug, Clone)]
pub(crate) struct ConcurrentBatch<S> {
    inner: S,
    response_max_bytes: usize,
}

impl<S> RpcServiceT for ConcurrentBatch<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(
        &self,
        request: Request<'a>,
    ) -> impl std::future::Future<Output = Self::MethodResponse> + Send + 'a {
        self.inner.call(request)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a, Option<std::borrow::Cow<'a, serde_json::value::RawValue>>>,
    ) -> impl std::future::Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }

    fn batch<'a>(
        &self,
        batch: Batch<'a>,
    ) -> impl std::future::Future<Output = Self::BatchResponse> + Send + 'a {
        let service = self.inner.clone();
        let limit = self.response_max_bytes;
        async move {
            let mut calls = Vec::new();
            let mut notifications = Vec::new();
            for entry in batch {
                match entry {
                    Ok(BatchEntry::Call(request)) => {
                        let service = service.clone();
                        calls.push(futures::future::Either::Left(async move {
                            service.call(request).await
                        }));
                    }
                    Ok(BatchEntry::Notification(n)) => notifications.push(n),
                    Err(error) => {
                        let (error, id) = error.into_parts();
                        calls.push(futures::future::Either::Right(std::future::ready(
                            MethodResponse::error(id, error),
                        )));
                    }
                }
            }
            let got_notification = !notifications.is_empty();
            let (responses, _) = futures::join!(
                join_all(calls),
                join_all(notifications.into_iter().map(|n| service.notification(n)))
            );
            let mut builder = BatchResponseBuilder::new_with_limit(limit);
            for response in responses {
                if let Err(too_big) = builder.append(response) {
                    return too_big;
                }
            }
            if builder.is_empty() && got_notification {
                MethodResponse::notification()
            } else {
                MethodResponse::from_batch(builder.finish())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use jsonrpsee::{
        core::middleware::BatchEntryErr,
        types::{ErrorCode, ErrorObject, Id},
        ResponsePayload,
    };

    use super::*;

    /// A service whose calls each wait until `n` calls have started: a batch of `n` calls
    /// completes only if they run concurrently.
    #[derive(Clone)]
    struct Rendezvous(Arc<tokio::sync::Barrier>);

    impl RpcServiceT for Rendezvous {
        type MethodResponse = MethodResponse;
        type NotificationResponse = MethodResponse;
        type BatchResponse = MethodResponse;

        fn call<'a>(
            &self,
            request: Request<'a>,
        ) -> impl std::future::Future<Output = MethodResponse> + Send + 'a {
            let barrier = self.0.clone();
            async move {
                barrier.wait().await;
                MethodResponse::response(
                    request.id,
                    ResponsePayload::success(request.method.to_string()),
                    usize::MAX,
                )
            }
        }

        fn notification<'a>(
            &self,
            _: Notification<'a, Option<std::borrow::Cow<'a, serde_json::value::RawValue>>>,
        ) -> impl std::future::Future<Output = MethodResponse> + Send + 'a {
            std::future::ready(MethodResponse::notification())
        }

        fn batch<'a>(
            &self,
            _: Batch<'a>,
        ) -> impl std::future::Future<Output = MethodResponse> + Send + 'a {
            std::future::ready(MethodResponse::notification())
        }
    }

    fn batch_of(methods: &[&'static str]) -> Batch<'static> {
        let mut entries: Vec<_> = methods
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Ok(BatchEntry::Call(Request::borrowed(
                    m,
                    None,
                    Id::Number(i as u64),
                )))
            })
            .collect();
        entries.push(Err(BatchEntryErr::new(
            Id::Number(99),
            ErrorObject::from(ErrorCode::InvalidRequest),
        )));
        Batch::from(entries)
    }

    #[tokio::test]
    async fn the_calls_of_a_batch_run_concurrently_and_answer_in_order() {
        let methods = ["a", "b", "c", "d", "e"];
        let service = ConcurrentBatchLayer {
            response_max_bytes: 1 << 20,
        }
        .layer(Rendezvous(Arc::new(tokio::sync::Barrier::new(
            methods.len(),
        ))));
        // Run one after another, the first call would wait for the others forever.
        let response =
            tokio::time::timeout(Duration::from_secs(30), service.batch(batch_of(&methods)))
                .await
                .expect("the calls of the batch waited for each other: run one after another");
        let json: serde_json::Value = serde_json::from_str(response.as_json().get()).unwrap();
        let answers = json.as_array().unwrap();
        assert_eq!(answers.len(), methods.len() + 1);
        for (i, m) in methods.iter().enumerate() {
            assert_eq!(answers[i]["id"], i as u64);
            assert_eq!(answers[i]["result"], *m);
        }
        assert_eq!(answers[5]["id"], 99);
        assert_eq!(answers[5]["error"]["code"], -32600);
    }

    #[tokio::test]
    async fn a_batch_response_over_the_limit_is_refused() {
        let service = ConcurrentBatchLayer {
            response_max_bytes: 40,
        }
        .layer(Rendezvous(Arc::new(tokio::sync::Barrier::new(3))));
        let response = service.batch(batch_of(&["one", "two", "three"])).await;
        let json: serde_json::Value = serde_json::from_str(response.as_json().get()).unwrap();
        assert_eq!(json["error"]["code"], -32011, "{json}");
    }
}
