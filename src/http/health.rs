use super::AppState;
use crate::domain::budget::PROBE_TIMEOUT;
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::atomic::Ordering;

const NOT_IN_TIME: &str = "not ready: the database does not answer in time\n";

/// The process is up (liveness: never asks the database).
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: not shutting down, the database answers within [`PROBE_TIMEOUT`]
/// and every migration is applied.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if state.shutting_down.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n".into(),
        );
    }
    let store = state.service.store().clone();
    let metrics = state.metrics.clone();
    state
        .probes
        .ready
        .get(
            || ready_look(store),
            || metrics.probe_database_read("readyz"),
        )
        .await
        .unwrap_or_else(|| (StatusCode::SERVICE_UNAVAILABLE, NOT_IN_TIME.into()))
}

/// The database's side of readiness (shared by the probes that ask at once).
async fn ready_look(store: crate::store::Store) -> (StatusCode, String) {
    match tokio::time::timeout(PROBE_TIMEOUT, store.ready()).await {
        Ok(Ok(true)) => (StatusCode::OK, "ready\n".into()),
        Ok(Ok(false)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: migrations are not applied (run `nspool migrate`)\n".into(),
        ),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database does not answer\n".into(),
            )
        }
        Err(_) => {
            tracing::warn!(
                seconds = PROBE_TIMEOUT.as_secs(),
                "readiness check: the database did not answer in time"
            );
            (StatusCode::SERVICE_UNAVAILABLE, NOT_IN_TIME.into())
        }
    }
}
