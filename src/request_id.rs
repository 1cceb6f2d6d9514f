//! The id of the request a task is serving, for its log lines: the HTTP
//! layer runs each request's future inside [`scope`], and the production log
//! formatter writes the id into every line logged within it (as
//! `span: {request_id, name: "request"}`, the shape a tracing span gave).
//!
//! Why a task-local and not a tracing span per request: a span is built in
//! the subscriber's registry, has its fields formatted as JSON when created,
//! and is entered and left on every poll; on a hot route that was a tenth of
//! the request's instructions (BENCHMARKS.md). Development logs, which show
//! spans their own way, still get a span.

use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static CURRENT: Arc<str>;
}

/// Runs `f` as the request `id`.
pub async fn scope<F: Future>(id: Arc<str>, f: F) -> F::Output {
    CURRENT.scope(id, f).await
}

/// The id of the request being served here, if any.
pub fn current() -> Option<Arc<str>> {
    CURRENT.try_with(Arc::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_id_is_there_inside_the_scope_only() {
        assert_eq!(current(), None);
        let inside = scope(Arc::from("req-1"), async {
            tokio::task::yield_now().await;
            current()
        })
        .await;
        assert_eq!(inside.as_deref(), Some("req-1"));
        assert_eq!(current(), None);
    }
}
