//! The HTTP/1 server loop, with the connection bounds `axum::serve` does not
//! offer, phase by phase: a bound on the request head's size and header
//! count (431 and close), a header-read timeout that answers 408 and closes
//! (it also closes idle keep-alive connections), a response-write timeout
//! that closes a client that takes none of its answer, a cap on open
//! connections below the file limit, and a drain on shutdown: the listener
//! closes at once, open connections are still served for the drain period
//! with `Connection: close` on every answer, then idle ones are closed and
//! running ones finish. The body read and per-request bounds (time, requests
//! in flight) are middleware in `super::guard`.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use super::unsent::{AnswerBuffer, Unsent};
use crate::domain::budget::Budget;
use crate::metrics::ServiceMetrics;

/// Connection bounds; [`ConnectionLimits::default`] is what `serve` uses.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// From accepting a connection (or finishing a response) to a request's
    /// last header line.
    pub header_read_timeout: Duration,
    /// Open connections; more are closed at once with a 503.
    pub max_connections: usize,
    /// How long a write may wait for the client to take some of its answer.
    pub response_write_timeout: Duration,
    /// Bytes of answers built for one request that may wait for their
    /// clients at once (`super::unsent`).
    pub answer_buffer_bytes: usize,
    /// After shutdown starts: how long open connections are still served.
    pub drain: Duration,
}

/// File descriptors kept back from the connection cap for the database,
/// the Kubernetes client, logs and the embedded server's pipes.
const RESERVED_FDS: usize = 256;

impl From<&crate::config::HttpSettings> for ConnectionLimits {
    fn from(http: &crate::config::HttpSettings) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(u64::from(http.header_read_timeout_seconds)),
            max_connections: usize::try_from(http.max_connections).unwrap_or(usize::MAX),
            response_write_timeout: Duration::from_secs(u64::from(
                http.response_write_timeout_seconds,
            )),
            drain: Duration::from_secs(u64::from(http.drain_seconds)),
            answer_buffer_bytes: usize::try_from(http.answer_buffer_mebibytes)
                .unwrap_or(usize::MAX)
                .saturating_mul(1024 * 1024),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::from(&crate::config::HttpSettings::default())
    }
}

impl ConnectionLimits {
    /// The cap, lowered to fit the process's file limit.
    fn effective_max_connections(&self) -> usize {
        let files = open_file_limit().unwrap_or(1024);
        self.max_connections
            .min(files.saturating_sub(RESERVED_FDS))
            .max(1)
    }
}

/// The soft limit on open files.
fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    ok.then(|| usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

/// Raises the soft open-file limit to the hard one (start-up); returns it.
pub fn raise_open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return open_file_limit();
            }
        }
    }
    open_file_limit()
}

/// A request's line and headers together, in bytes (also the bound on a
/// chunked body's trailers). Far above what the CLI, a browser or a proxy
/// sends (a token and a session cookie are under 200 bytes); a GET document
/// longer than this belongs in a POST body, whose own bound is larger.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Header lines in one request.
pub const MAX_HEADERS: usize = 100;

const TIMED_OUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// Where a server is in its life; connections follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Every answer closes its connection.
    Draining,
    /// Idle connections close; running requests finish.
    Closing,
}

/// Serves `router` until `shutdown` completes, drains open connections for
/// `limits.drain`, then lets running requests finish (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    metrics: Arc<ServiceMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.effective_max_connections()));
    let answers = AnswerBuffer::new(limits.answer_buffer_bytes);
    let (phase, phases) = watch::channel(Phase::Serving);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.refused(Budget::Connections);
            // Best effort: the socket buffer of a new connection has room.
            let _ = stream.try_write(FULL);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let draining = phases.clone();
        let unsent = answers.connection();
        let (held, answer_metrics) = (unsent.clone(), metrics.clone());
        let service = router
            .clone()
            .map_request(move |mut request: http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(remote));
                request.map(Body::new)
            })
            .map_response(move |mut response: axum::response::Response| {
                // hyper closes the connection after an answer that says so.
                if *draining.borrow() != Phase::Serving {
                    response.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                super::unsent::account(&held, response, &answer_metrics)
            });
        let phases = phases.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            serve_connection(
                (stream, unsent),
                TowerToHyperService::new(service),
                limits,
                phases,
                &metrics,
            )
            .await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = phase.send(Phase::Draining);
    // Every connection task holds a permit until it ends.
    let all = u32::try_from(limits.effective_max_connections()).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain, permits.acquire_many(all))
        .await
        .is_err()
    {
        let _ = phase.send(Phase::Closing);
        let _ = permits.acquire_many(all).await;
    }
    Ok(())
}

async fn serve_connection<S>(
    (stream, unsent): (TcpStream, Unsent),
    service: S,
    limits: ConnectionLimits,
    mut phases: watch::Receiver<Phase>,
    metrics: &ServiceMetrics,
) where
    S: hyper::service::Service<http::Request<Incoming>, Response = axum::response::Response>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let stream = SharedStream::new(stream, limits.response_write_timeout, unsent);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream.clone()), service);
    let mut connection = std::pin::pin!(connection);
    let mut closing = false;
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break result,
            _ = phases.wait_for(|phase| *phase == Phase::Closing), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    };
    if stream.write_timed_out() {
        metrics.refused(Budget::ResponseWrite);
    } else if let Err(error) = &result
        && error.is_parse_too_large()
    {
        // hyper answered 431 and closed.
        metrics.refused(Budget::HeaderSize);
    } else if let Err(error) = result
        && error.is_timeout()
        && stream.mid_request()
    {
        metrics.refused(Budget::HeaderRead);
        let _ = stream.inner.try_write(TIMED_OUT);
    }
}

/// A TCP stream shared between hyper and this loop, so that a 408 can still
/// be written after hyper gives a connection up. It also notes whether bytes
/// came in since the last response went out: a timeout then is a client
/// that never finished its request (408), otherwise an idle keep-alive.
///
/// A write that the client does not take within the write timeout fails
/// (hyper then closes the connection): the timer runs from the moment a write
/// first finds the socket full and restarts whenever some bytes go out.
struct SharedStream {
    inner: Arc<TcpStream>,
    read_since_write: Arc<AtomicBool>,
    write_timeout: Duration,
    /// Set while a write waits for room (this handle's own).
    write_stall: Option<Pin<Box<tokio::time::Sleep>>>,
    write_timed_out: Arc<AtomicBool>,
    /// What this connection's answers hold of the answer buffer, given back
    /// as the socket takes their bytes.
    unsent: Unsent,
}

impl Clone for SharedStream {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            read_since_write: self.read_since_write.clone(),
            write_timeout: self.write_timeout,
            write_stall: None,
            write_timed_out: self.write_timed_out.clone(),
            unsent: self.unsent.clone(),
        }
    }
}

impl SharedStream {
    fn new(stream: TcpStream, write_timeout: Duration, unsent: Unsent) -> Self {
        Self {
            inner: Arc::new(stream),
            read_since_write: Arc::new(AtomicBool::new(false)),
            write_timeout,
            write_stall: None,
            write_timed_out: Arc::new(AtomicBool::new(false)),
            unsent,
        }
    }

    fn write_timed_out(&self) -> bool {
        self.write_timed_out.load(Ordering::Relaxed)
    }

    fn mid_request(&self) -> bool {
        self.read_since_write.load(Ordering::Relaxed)
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.inner.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match self.inner.try_read(unfilled) {
                Ok(n) => {
                    if n > 0 {
                        self.read_since_write.store(true, Ordering::Relaxed);
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl SharedStream {
    /// One write (`write` tries it on the socket): waits for room, failing
    /// when the client took nothing within the write timeout.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            let ready = self.inner.poll_write_ready(cx);
            if let Poll::Ready(Err(error)) = ready {
                return Poll::Ready(Err(error));
            }
            if ready.is_pending() {
                let timeout = self.write_timeout;
                let stall = self
                    .write_stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if stall.as_mut().poll(cx).is_ready() {
                    self.write_timed_out.store(true, Ordering::Relaxed);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client took none of its answer within the write timeout",
                    )));
                }
                return Poll::Pending;
            }
            match write(&self.inner) {
                Ok(n) => {
                    self.write_stall = None;
                    self.read_since_write.store(false, Ordering::Relaxed);
                    self.unsent.written(n);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, |socket| socket.try_write(data))
    }

    /// Vectored, so hyper queues an answer's bytes as they are instead of
    /// copying them into a per-connection buffer that grows to ~400 KiB
    /// and keeps that size while the connection lives (a probe of clients
    /// that never read found that copy, not the answers, filling memory).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, |socket| socket.try_write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        use std::os::fd::AsRawFd;
        // SAFETY: shutdown on a descriptor this stream owns; no memory is touched.
        unsafe { libc::shutdown(self.inner.as_raw_fd(), libc::SHUT_WR) };
        Poll::Ready(Ok(()))
    }
}
