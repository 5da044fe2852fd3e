//! The pool dashboard at `/`, for system roles: sign in with a pasted token
//! (kept by nobody: the browser gets an HttpOnly, SameSite=Strict session
//! cookie), a server-rendered page, sign out. Cookies are read here only:
//! `/v1` takes the Authorization header alone, so it has no CSRF surface.

mod chart;
mod page;
pub mod rate_limit;

use super::AppState;
use crate::domain::Caller;
use crate::pool::Error;
use axum::Extension;
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::Markup;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

const COOKIE: &str = "nspool_session";

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (
                header::CONTENT_SECURITY_POLICY,
                super::pages::SAME_ORIGIN_ONLY,
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(markup.into_string()),
    )
        .into_response()
}

pub(crate) fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(&format!("{COOKIE}=")))
        .map(str::to_owned)
}

/// `Secure` when the client reached nspool over HTTPS (through an ingress).
fn cookie(headers: &HeaderMap, value: &str, max_age: i64) -> HeaderValue {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let text = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if https { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn unavailable(error: &Error) -> Response {
    tracing::warn!(%error, "dashboard: cannot read the pool");
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        page::sign_in(Some(
            "The nspool database is unavailable right now; try again in a moment.",
        )),
    )
}

/// `GET /`: the dashboard, or the sign-in form.
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(id) = session_id(&headers) else {
        return html(StatusCode::OK, page::sign_in(None));
    };
    let caller = match state.service.session(&id).await {
        Ok(Some(caller)) => caller,
        Ok(None) => {
            let mut response = html(
                StatusCode::OK,
                page::sign_in(Some("Your session has ended; sign in again.")),
            );
            response
                .headers_mut()
                .insert(header::SET_COOKIE, cookie(&headers, "", 0));
            return response;
        }
        Err(error) => return unavailable(&error),
    };
    let role = match &caller {
        Caller::Authenticated(identity) => identity.role.as_str(),
        _ => "",
    };
    match state.service.dashboard(&caller).await {
        Ok(data) => html(StatusCode::OK, page::dashboard(&data, role)),
        Err(Error::Forbidden { .. } | Error::Unauthenticated { .. }) => html(
            StatusCode::FORBIDDEN,
            page::sign_in(Some(
                "The dashboard needs a system role (SYSTEM_VIEWER or higher).",
            )),
        ),
        Err(error) => unavailable(&error),
    }
}

#[derive(serde::Deserialize)]
pub struct SignIn {
    token: String,
}

/// `POST /login`: the pasted token becomes a session; never logged.
pub async fn sign_in(
    State(state): State<AppState>,
    // Set by `super::server`; absent when the router is called in process.
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let address = connection.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0.ip());
    if !state.sign_in_limit.allow(address, Instant::now()) {
        return html(
            StatusCode::TOO_MANY_REQUESTS,
            page::sign_in(Some(&format!(
                "Too many sign-in attempts from your address ({} a minute); wait a minute.",
                rate_limit::TRIES
            ))),
        );
    }
    match state.service.sign_in(&form.token).await {
        Ok(session) => {
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                cookie(&headers, &session.id, session.max_age_seconds),
            );
            response
        }
        Err(Error::Unauthenticated { .. }) => html(
            StatusCode::UNAUTHORIZED,
            page::sign_in(Some("That is not a valid token.")),
        ),
        Err(Error::Forbidden { .. }) => html(
            StatusCode::FORBIDDEN,
            page::sign_in(Some(
                "That token is for one workspace; the dashboard needs a system role (SYSTEM_VIEWER, SYSTEM_EDITOR or SYSTEM_ADMIN).",
            )),
        ),
        Err(error) => unavailable(&error),
    }
}

/// `POST /logout`: ends the session here and in the browser.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers)
        && let Err(error) = state.service.sign_out(&id).await
    {
        return unavailable(&error);
    }
    let mut response = Redirect::to("/").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&headers, "", 0));
    response
}
