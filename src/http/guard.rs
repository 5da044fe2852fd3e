//! Per-request budgets on the API routes and pages, in the order a request
//! meets them:
//!
//! 1. its body is read (bounded in size, in time and, across all requests, in
//!    bytes held) *before* it takes any permit, so a client that stalls
//!    mid-body holds nothing that others need;
//! 2. its credentials are classified: a token or session this replica knows
//!    (memory) or can verify (a bounded number of lookups at once) makes it a
//!    token holder's request, anything else is anonymous;
//! 3. it takes an in-flight permit; anonymous requests also take one of their
//!    own smaller share, so token holders always find the rest free;
//! 4. it runs with a deadline (the work is cancelled) and a budget of
//!    database connections (`crate::pool::request_budget`).
//!
//! Health and metrics stay outside, so probes answer under load.

use super::AppState;
use crate::domain::Caller;
use crate::domain::budget::{Budget, CREDENTIAL_CHECK_WAIT, CREDENTIAL_CHECKS};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The code of a request refused or cancelled by these bounds.
pub use crate::graphql::SERVICE_UNAVAILABLE;

#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// From the handler's start to its answer.
    pub timeout: Duration,
    /// Requests being answered at once.
    pub max_in_flight: usize,
    /// Of those, requests without a valid token or session.
    pub max_anonymous_in_flight: usize,
    /// From the end of the headers to the end of the body.
    pub body_read_timeout: Duration,
    /// Bytes of request bodies held at once, across requests.
    pub body_buffer_bytes: usize,
    /// Database connections one request holds at once.
    pub database_connections: usize,
    /// Token or session lookups at once (see [`crate::domain::budget::credential_checks`]).
    pub credential_checks: usize,
}

impl From<&crate::config::HttpSettings> for RequestLimits {
    fn from(http: &crate::config::HttpSettings) -> Self {
        let count = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        Self {
            timeout: Duration::from_secs(u64::from(http.request_timeout_seconds)),
            max_in_flight: count(http.max_requests_in_flight),
            max_anonymous_in_flight: count(http.max_anonymous_requests_in_flight),
            body_read_timeout: Duration::from_secs(u64::from(http.body_read_timeout_seconds)),
            body_buffer_bytes: count(http.body_buffer_mebibytes).saturating_mul(1024 * 1024),
            database_connections: count(http.database_connections_per_request),
            credential_checks: CREDENTIAL_CHECKS,
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
    anonymous: Arc<Semaphore>,
    body_buffer: Arc<Semaphore>,
    credential_checks: Arc<Semaphore>,
}

impl Guard {
    pub fn new(limits: RequestLimits) -> Self {
        Self {
            limits,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            anonymous: Arc::new(Semaphore::new(
                limits.max_anonymous_in_flight.min(limits.max_in_flight),
            )),
            body_buffer: Arc::new(Semaphore::new(
                limits.body_buffer_bytes.min(Semaphore::MAX_PERMITS),
            )),
            credential_checks: Arc::new(Semaphore::new(limits.credential_checks.max(1))),
        }
    }
}

impl Default for Guard {
    fn default() -> Self {
        Self::new(RequestLimits::default())
    }
}

/// A GraphQL-shaped refusal with `Retry-After`.
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

/// The same, and the connection is closed after it (its body was not read whole).
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

fn body_error(status: StatusCode, message: String) -> Response {
    let code = crate::graphql::BAD_USER_INPUT;
    let body = json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    closing((status, axum::Json(body)).into_response())
}

/// A chunked body's trailers share the request head's bound
/// (`server::MAX_HEADER_BYTES`); hyper reports going past it as an
/// `InvalidData` I/O error about trailers under its body error (pinned by
/// `connections::oversized_request_heads_are_refused_while_others_are_served`).
fn trailers_too_large(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::InvalidData
            && io.to_string().contains("trailers")
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// A body read whole, and the share of the body buffer it holds.
struct ReadBody {
    bytes: Bytes,
    _held: Option<OwnedSemaphorePermit>,
}

/// Reads the body within the time and size budgets, or answers the refusal.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<ReadBody, Response> {
    let guard = &state.guard;
    let limit = super::MAX_BODY_BYTES;
    let metrics = state.service.metrics();
    let too_large = || {
        body_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The request body could not be read (it is too large); the limit is {limit} bytes"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        metrics.refused(Budget::BodySize);
        return Err(too_large());
    }
    let deadline = tokio::time::Instant::now() + guard.limits.body_read_timeout;
    let mut stream = body.into_data_stream();
    let mut buffer = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut held: Option<OwnedSemaphorePermit> = None;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                metrics.refused(Budget::BodyRead);
                return Err(body_error(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "The request body did not arrive within {} s",
                        guard.limits.body_read_timeout.as_secs()
                    ),
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                if trailers_too_large(&error) {
                    metrics.refused(Budget::HeaderSize);
                    return Err(body_error(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        format!(
                            "The request's trailers are too large; the limit is {} bytes",
                            super::server::MAX_HEADER_BYTES
                        ),
                    ));
                }
                return Err(body_error(
                    StatusCode::BAD_REQUEST,
                    format!("The request body could not be read: {error}"),
                ));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        if buffer.len() + chunk.len() > limit {
            metrics.refused(Budget::BodySize);
            return Err(too_large());
        }
        let wanted = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        match guard.body_buffer.clone().try_acquire_many_owned(wanted) {
            Ok(permit) => match held.as_mut() {
                Some(held) => held.merge(permit),
                None => held = Some(permit),
            },
            Err(_) => {
                metrics.refused(Budget::BodyBuffer);
                return Err(closing(unavailable(
                    "nspool is reading too many request bodies at once; try again in a second"
                        .into(),
                )));
            }
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(ReadBody {
        bytes: Bytes::from(buffer),
        _held: held,
    })
}

/// Whether the request comes from a token holder: a token (header) or a
/// dashboard session (cookie) that is live. Memory first; else one lookup,
/// at most [`CREDENTIAL_CHECKS`] at once.
///
/// A dashboard session it looked up is left in the request's extensions
/// ([`CheckedSession`]), so the page does not look it up again.
async fn holds_credentials(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &mut axum::http::Extensions,
) -> bool {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty());
    let session = super::dashboard::session_id(headers);
    if authorization.is_none() && session.is_none() {
        return false;
    }
    if let Some(header) = authorization
        && let Some(caller) = state.service.known_caller(header)
    {
        return matches!(caller, Caller::Authenticated(_));
    }
    let checks = state.guard.credential_checks.clone();
    let Ok(Ok(_check)) = tokio::time::timeout(CREDENTIAL_CHECK_WAIT, checks.acquire_owned()).await
    else {
        state.service.metrics().refused(Budget::CredentialChecks);
        return false;
    };
    if let Some(header) = authorization {
        return matches!(
            state.service.authenticate(Some(header)).await,
            Ok(Caller::Authenticated(_))
        );
    }
    match session {
        Some(id) => match state.service.session(&id).await {
            Ok(found) => {
                let live = matches!(found, Some(Caller::Authenticated(_)));
                extensions.insert(CheckedSession { id, caller: found });
                live
            }
            Err(_) => false,
        },
        None => false,
    }
}

/// The dashboard session the guard looked up for this request: its id and
/// its caller (`None`: ended or unknown).
#[derive(Clone)]
pub struct CheckedSession {
    pub id: String,
    pub caller: Option<Caller>,
}

pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let body = match read_body(&state, &parts.headers, body).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let guard = &state.guard;
    let metrics = state.service.metrics();
    let anonymous = if holds_credentials(&state, &parts.headers, &mut parts.extensions).await {
        None
    } else {
        match guard.anonymous.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                metrics.refused(Budget::AnonymousInFlight);
                return unavailable(format!(
                    "nspool is answering {} requests without a token already; try again in a second, or send a token",
                    guard.limits.max_anonymous_in_flight
                ));
            }
        }
    };
    let Ok(_permit) = guard.in_flight.try_acquire() else {
        metrics.refused(Budget::InFlight);
        return unavailable(format!(
            "nspool is answering {} requests already; try again in a second",
            guard.limits.max_in_flight
        ));
    };
    let request = Request::from_parts(parts, Body::from(body.bytes.clone()));
    let work = crate::pool::request_budget::with_request_budget(
        guard.limits.database_connections,
        next.run(request),
    );
    let response = match tokio::time::timeout(guard.limits.timeout, work).await {
        Ok(response) => response,
        Err(_) => {
            metrics.refused(Budget::RequestTime);
            tracing::warn!(
                seconds = guard.limits.timeout.as_secs(),
                "a request ran out of time and was cancelled"
            );
            unavailable(format!(
                "The request took longer than {} s and was cancelled",
                guard.limits.timeout.as_secs()
            ))
        }
    };
    drop(anonymous);
    drop(body);
    response
}
