//! A request's database budget, as the layers above the pool service see
//! it: HTTP opens one for each request, GraphQL's data loaders run their
//! batches inside it. The store enforces it at each connection it hands
//! out; this is the service's face on it, so nothing above the service
//! reaches into the store.

use std::future::Future;

/// Runs `work` (one request) with at most `connections` database
/// connections at once.
pub async fn with_request_budget<F: Future>(connections: usize, work: F) -> F::Output {
    crate::store::with_connection_budget(connections, work).await
}

/// Spawns `work` inside the current request's budget (a data loader's batch).
pub fn spawn_in_request<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    crate::store::spawn_in_budget(work)
}
