//! Answers waiting for their clients. An answer built for one request (a
//! GraphQL answer, a dashboard page, a metrics scrape) stays in nspool's
//! memory until its client has taken it, and a client that reads slowly or
//! not at all keeps it there for as long as the write timeout allows, again
//! at each byte it takes. Without a bound, clients that ask and never read
//! would hold answer after answer until the process passes its memory limit.
//!
//! So each such answer, marked [`FreshAnswer`] by its handler, holds its
//! size in bytes of one shared buffer (`nspool.http.answerBufferMebibytes`)
//! from the moment it is handed to the connection until the socket has
//! taken it: the connection's writes give the bytes back as they go out,
//! and a connection that ends gives back what it still held. An answer that
//! finds the buffer full is not kept: the client gets 503 with Retry-After
//! at once (the answer it asked for would wait in memory, unbounded, if it
//! waited here). Answers served from a copy every client shares (the pool
//! reads kept in memory) and static files cost nothing more per client and
//! are not counted; nor are answers of at most [`UNCOUNTED_BYTES`], which
//! the kernel's socket buffer takes at once.
//!
//! What the kernel's socket buffers hold is outside this bound (Linux lets
//! a send buffer grow to `net.ipv4.tcp_wmem`'s largest, 4 MiB by default,
//! within the system-wide `tcp_mem`): on a fast link an answer below that
//! leaves nspool at once and holds nothing here. A container's memory limit
//! may count socket memory too; the connection cap and the write timeout
//! bound it there.

use crate::domain::budget::Budget;
use crate::metrics::ServiceMetrics;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Answers this small are not counted: a socket's send buffer takes them
/// whole at the first write (Linux starts it at 16 KiB).
pub const UNCOUNTED_BYTES: usize = 16 * 1024;

/// A response extension: this answer was built for its request alone.
#[derive(Debug, Clone, Copy)]
pub struct FreshAnswer;

/// Marks `response` as built for its request alone (see the module).
pub fn fresh(mut response: Response) -> Response {
    response.extensions_mut().insert(FreshAnswer);
    response
}

/// The shared buffer: bytes of fresh answers not yet taken by their clients.
#[derive(Clone)]
pub struct AnswerBuffer {
    bytes: Arc<Semaphore>,
    capacity: usize,
}

impl AnswerBuffer {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize);
        Self {
            bytes: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// Bytes free now (tests and the budgets table).
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// One connection's share: what its answers hold until written.
    pub fn connection(&self) -> Unsent {
        Unsent {
            buffer: self.clone(),
            held: Arc::new(Mutex::new(None)),
        }
    }
}

/// What one connection's answers hold of the buffer; clones share it. The
/// bytes come back as the connection writes, and when the last clone (the
/// connection's) is dropped.
#[derive(Clone)]
pub struct Unsent {
    buffer: AnswerBuffer,
    held: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
}

impl Unsent {
    /// Holds `bytes` (at most the whole buffer) until they are written;
    /// `false` when the buffer has not that much free now.
    fn hold(&self, bytes: usize) -> bool {
        let bytes = bytes.min(self.buffer.capacity);
        let Ok(count) = u32::try_from(bytes) else {
            return false;
        };
        let Ok(permit) = self.buffer.bytes.clone().try_acquire_many_owned(count) else {
            return false;
        };
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        match held.as_mut() {
            Some(earlier) => earlier.merge(permit),
            None => *held = Some(permit),
        }
        true
    }

    /// The socket took `bytes`: as many go back to the buffer.
    pub fn written(&self, bytes: usize) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(permit) = held.as_mut() {
            if permit.num_permits() <= bytes {
                *held = None;
            } else {
                drop(permit.split(bytes));
            }
        }
    }

    /// Bytes this connection holds now.
    #[cfg(test)]
    fn holding(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }
}

/// A fresh answer larger than [`UNCOUNTED_BYTES`] takes its bytes of the
/// buffer, or is replaced by a 503 (counted) when they are not free. The
/// bytes come back as the connection writes any bytes, its headers and
/// uncounted answers included: a few hundred early per answer, never late.
pub fn account(unsent: &Unsent, response: Response, metrics: &ServiceMetrics) -> Response {
    if response.extensions().get::<FreshAnswer>().is_none() {
        return response;
    }
    let bytes = axum::body::HttpBody::size_hint(response.body())
        .exact()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(usize::MAX);
    if bytes <= UNCOUNTED_BYTES || unsent.hold(bytes) {
        return response;
    }
    metrics.refused(Budget::AnswerBuffer);
    busy(&response)
}

/// The refusal, in the answer's own kind: GraphQL-shaped JSON for a JSON
/// answer (`application/json`, `application/graphql-response+json`), a
/// line of text for anything else (a page, a metrics scrape).
fn busy(refused: &Response) -> Response {
    let message = "nspool is sending as many answers as its memory allows; try again in a second";
    let json = refused
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().ends_with("json"));
    let (content_type, body) = if json {
        let code = crate::graphql::SERVICE_UNAVAILABLE;
        let json =
            serde_json::json!({"errors": [{"message": message, "extensions": {"code": code}}]});
        ("application/json", json.to_string())
    } else {
        ("text/plain; charset=utf-8", message.to_owned())
    };
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(bytes: usize) -> Response {
        fresh(vec![b'x'; bytes].into_response())
    }

    #[test]
    fn a_fresh_answer_holds_its_bytes_until_written_and_past_the_buffer_is_refused() {
        let metrics = ServiceMetrics::default();
        let buffer = AnswerBuffer::new(100_000);
        let one = buffer.connection();
        let two = buffer.connection();
        assert_eq!(account(&one, answer(60_000), &metrics).status(), 200);
        assert_eq!(one.holding(), 60_000);
        // Not enough left for the second connection's answer.
        assert_eq!(account(&two, answer(60_000), &metrics).status(), 503);
        assert_eq!(two.holding(), 0);
        // Small, shared or unmarked answers are never counted nor refused.
        assert_eq!(
            account(&two, answer(UNCOUNTED_BYTES), &metrics).status(),
            200
        );
        let shared = vec![b'x'; 60_000].into_response();
        assert_eq!(account(&two, shared, &metrics).status(), 200);
        assert_eq!(buffer.available(), 40_000);
        // Written in part, then the rest: all of it comes back.
        one.written(50_000);
        assert_eq!(buffer.available(), 90_000);
        one.written(20_000);
        assert_eq!(buffer.available(), 100_000);
        assert_eq!(account(&two, answer(60_000), &metrics).status(), 200);
        // A connection that ends gives back what it held.
        drop(two);
        assert_eq!(buffer.available(), 100_000);
    }

    #[test]
    fn a_refusal_speaks_json_to_json_clients_and_text_to_the_rest() {
        let metrics = ServiceMetrics::default();
        let buffer = AnswerBuffer::new(20_000);
        let full = buffer.connection();
        assert_eq!(account(&full, answer(20_000), &metrics).status(), 200);
        let typed = |content_type: &'static str| {
            let mut response = answer(30_000);
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            account(&buffer.connection(), response, &metrics)
        };
        for (content_type, refusal) in [
            ("application/json", "application/json"),
            (
                "application/graphql-response+json; charset=utf-8",
                "application/json",
            ),
            ("text/html; charset=utf-8", "text/plain; charset=utf-8"),
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                "text/plain; charset=utf-8",
            ),
        ] {
            let refused = typed(content_type);
            assert_eq!(refused.status(), 503, "{content_type}");
            assert_eq!(
                refused.headers()[header::CONTENT_TYPE],
                refusal,
                "{content_type}"
            );
        }
    }

    #[test]
    fn an_answer_larger_than_the_buffer_takes_all_of_it_when_all_is_free() {
        let metrics = ServiceMetrics::default();
        let buffer = AnswerBuffer::new(50_000);
        let one = buffer.connection();
        assert_eq!(account(&one, answer(80_000), &metrics).status(), 200);
        assert_eq!(buffer.available(), 0);
        let refused = account(&buffer.connection(), answer(20_000), &metrics);
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
    }
}
