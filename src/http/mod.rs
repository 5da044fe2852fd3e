//! The axum router: GraphQL at `/v1`, GraphiQL, the token page, health.
//! The state is one struct so later layers (metrics, dashboard) slot in.

pub(crate) mod assets;
mod client_address;
pub mod dashboard;
mod graphql;
pub mod guard;
mod health;
pub mod metrics;
pub(crate) mod pages;
pub mod pool_reads;
pub mod probes;
mod public_url;
pub mod server;
pub mod unsent;

use crate::graphql::NspoolSchema;
use crate::pool::PoolService;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

/// The largest request body accepted (document and variables together).
pub const MAX_BODY_BYTES: usize = crate::graphql::limits::MAX_DOCUMENT_BYTES;

/// Sign-in attempts per client address and minute at the dashboard.
pub const SIGN_IN_TRIES_PER_MINUTE: u32 = dashboard::rate_limit::TRIES;

/// Every request and connection bound as the README's markdown table
/// (checked by a test, like the SDL).
pub fn limits_markdown() -> String {
    let connection = server::ConnectionLimits::default();
    let request = guard::RequestLimits::default();
    let mut rows = crate::graphql::limits::table();
    let row = |name, value: String, error| crate::graphql::limits::Limit { name, value, error };
    rows.extend([
        row(
            "request body",
            format!("{MAX_BODY_BYTES} bytes"),
            "HTTP 413, BAD_USER_INPUT",
        ),
        row(
            "request line and headers",
            format!(
                "{} bytes, {} header lines",
                server::MAX_HEADER_BYTES,
                server::MAX_HEADERS
            ),
            "HTTP 431, close",
        ),
        row(
            "headers complete after connecting or after the last answer (`nspool.http.headerReadTimeoutSeconds`)",
            format!("{} s", connection.header_read_timeout.as_secs()),
            "HTTP 408 and close (idle connections: close)",
        ),
        row(
            "open connections, lowered to the open-file limit less 256 (`nspool.http.maxConnections`)",
            connection.max_connections.to_string(),
            "HTTP 503 with Retry-After, close",
        ),
        row(
            "requests answered at once on `/v1` and its pages (`nspool.http.maxRequestsInFlight`)",
            request.max_in_flight.to_string(),
            "HTTP 503 with Retry-After, SERVICE_UNAVAILABLE",
        ),
        row(
            "answers built for one request waiting for their clients, together (`nspool.http.answerBufferMebibytes`)",
            format!("{} MiB", connection.answer_buffer_bytes / (1024 * 1024)),
            "HTTP 503 with Retry-After, SERVICE_UNAVAILABLE",
        ),
        row(
            "time to answer one request; the work is cancelled (`nspool.http.requestTimeoutSeconds`)",
            format!("{} s", request.timeout.as_secs()),
            "HTTP 503 with Retry-After, SERVICE_UNAVAILABLE",
        ),
    ]);
    let mut out = String::from(
        "| limit | value | error |
| --- | --- | --- |
",
    );
    for limit in rows {
        out.push_str(&format!(
            "| {} | {} | {} |
",
            limit.name, limit.value, limit.error
        ));
    }
    out
}

#[derive(Clone)]
pub struct AppState {
    pub schema: NspoolSchema,
    pub service: PoolService,
    pub metrics: std::sync::Arc<metrics::Metrics>,
    pub guard: guard::Guard,
    pub sign_in_limit: std::sync::Arc<dashboard::rate_limit::SignInLimit>,
    /// Pool reads' answers, per pool generation.
    pub pool_reads: std::sync::Arc<pool_reads::PoolReads>,
    /// Permits of the answers larger than the fixed budget (whole-pool reads).
    pub large_answers: crate::graphql::LargeAnswers,
    /// Permits of dashboard pages rendered at once.
    pub dashboard_renders: dashboard::renders::Renders,
    /// Set on SIGTERM: `/readyz` answers 503 from then on.
    pub shutting_down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The probes' shared database reads.
    pub probes: std::sync::Arc<probes::Probes>,
}

/// On every answer: no content sniffing; on HTML pages, no referrer (a
/// page where tokens are pasted never tells another site it was visited).
async fn web_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        headers
            .entry(header::REFERRER_POLICY)
            .or_insert(HeaderValue::from_static("no-referrer"));
    }
    response
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1", get(pages::graphiql).post(graphql::execute))
        .route("/v1/token", get(pages::token))
        .route("/v1/assets/{name}", get(assets::asset))
        .merge(
            Router::new()
                .route("/", get(dashboard::show))
                .route("/login", axum::routing::post(dashboard::sign_in))
                .route("/logout", axum::routing::post(dashboard::sign_out))
                .route("/actions", axum::routing::post(dashboard::act))
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    dashboard::same_site_posts,
                )),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::limit,
        ))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::scrape))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(web_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}
