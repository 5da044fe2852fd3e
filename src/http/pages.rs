use axum::http::header;
use axum::response::{Html, IntoResponse};

/// Only this origin, for scripts, styles, images and requests alike: a page
/// where tokens are pasted loads nothing from anywhere else, and runs no
/// inline script (every script is a file nspool serves). GraphiQL's inline
/// styles need 'unsafe-inline' for styles only.
pub const SAME_ORIGIN_ONLY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// GraphiQL, talking to `POST /v1`, from assets nspool serves itself.
pub async fn graphiql() -> impl IntoResponse {
    (
        [
            (header::CONTENT_SECURITY_POLICY, SAME_ORIGIN_ONLY),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(include_str!("graphiql.html")),
    )
}

/// Where `authConfig`'s provider points `astro login`: how to get a token.
pub async fn token() -> impl IntoResponse {
    (
        [(header::CONTENT_SECURITY_POLICY, SAME_ORIGIN_ONLY)],
        Html(include_str!("token.html")),
    )
}
