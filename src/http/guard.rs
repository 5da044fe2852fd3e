//! Per-request bounds on the API routes: a whole-request timeout that cancels
//! the work (the handler's future is dropped), and a cap on requests in
//! flight beyond which nspool sheds load with 503 and `Retry-After` instead
//! of queueing without end. Health and metrics stay outside, so probes answer
//! under load.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The code of a request refused or cancelled by these bounds.
pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";

#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// From the handler's start to its answer.
    pub timeout: Duration,
    /// Requests being answered at once.
    pub max_in_flight: usize,
}

impl From<&crate::config::HttpSettings> for RequestLimits {
    fn from(http: &crate::config::HttpSettings) -> Self {
        Self {
            timeout: Duration::from_secs(u64::from(http.request_timeout_seconds)),
            max_in_flight: usize::try_from(http.max_requests_in_flight).unwrap_or(usize::MAX),
        }
    }
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self::from(&crate::config::HttpSettings::default())
    }
}

#[derive(Clone)]
pub struct Guard {
    limits: RequestLimits,
    in_flight: Arc<Semaphore>,
}

impl Guard {
    pub fn new(limits: RequestLimits) -> Self {
        Self {
            limits,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
        }
    }
}

impl Default for Guard {
    fn default() -> Self {
        Self::new(RequestLimits::default())
    }
}

fn unavailable(message: String) -> Response {
    let body =
        json!({"errors": [{"message": message, "extensions": {"code": SERVICE_UNAVAILABLE}}]});
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        axum::Json(body),
    )
        .into_response()
}

pub async fn limit(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let Ok(_permit) = guard.in_flight.try_acquire() else {
        return unavailable(format!(
            "nspool is answering {} requests already; try again in a second",
            guard.limits.max_in_flight
        ));
    };
    match tokio::time::timeout(guard.limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                seconds = guard.limits.timeout.as_secs(),
                "a request ran out of time and was cancelled"
            );
            unavailable(format!(
                "The request took longer than {} s and was cancelled",
                guard.limits.timeout.as_secs()
            ))
        }
    }
}
