//! The pool dashboard at `/`, for system roles: sign in with a pasted token
//! (kept by nobody: the browser gets an HttpOnly, SameSite=Strict session
//! cookie), a server-rendered page with a search box, system admins' actions
//! (plain POST forms, each with the session's CSRF token), sign out. Every
//! POST here must come from this site (`forms::cross_site`). Cookies are read
//! here only: `/v1` takes the Authorization header alone, so it has no CSRF
//! surface.

mod action_forms;
mod actions;
mod chart;
pub mod forms;
mod page;
pub mod rate_limit;
pub mod renders;

pub use actions::act;

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
    let response = (
        status,
        [
            (
                header::CONTENT_SECURITY_POLICY,
                super::pages::SAME_ORIGIN_ONLY,
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(visible(markup.into_string())),
    )
        .into_response();
    super::unsent::fresh(response)
}

/// Every page with each bidirectional control (in text stored before
/// nspool refused them, or in an append-only event's copy) shown as
/// `<U+202E>`, so no cordon reason or label reads differently from what it
/// is. The templates never hold one, so the whole page can be done at once.
fn visible(page: String) -> String {
    match crate::domain::text::bidi_marked(&page, "&lt;", "&gt;") {
        std::borrow::Cow::Borrowed(_) => page,
        std::borrow::Cow::Owned(marked) => marked,
    }
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

/// The session's caller: the one the request guard looked up for this very
/// request, else one lookup (`None`: ended or unknown).
pub(crate) async fn session_caller(
    state: &AppState,
    checked: Option<axum::Extension<crate::http::guard::CheckedSession>>,
    id: &str,
) -> crate::pool::Result<Option<crate::domain::Caller>> {
    match checked {
        Some(axum::Extension(checked)) if checked.id == id => Ok(checked.caller),
        _ => state.service.session(id).await,
    }
}

/// Whether the client reached nspool over HTTPS: said by a trusted proxy's
/// `X-Forwarded-Proto` (`nspool.http.trustedProxies`) only; anybody else's
/// header is theirs to set and says nothing.
fn over_https(
    state: &AppState,
    connection: Option<&Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> bool {
    let trusted = connection.is_some_and(|c| {
        crate::http::client_address::from_trusted_proxy(
            c.0.0.ip(),
            &state.service.settings().service.trusted_proxies,
        )
    });
    trusted
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// The session cookie; `Secure` when the client came over HTTPS.
fn cookie(https: bool, value: &str, max_age: i64) -> HeaderValue {
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

/// The client's address, as the sign-in limit counts it.
fn client(
    state: &AppState,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> IpAddr {
    let peer = connection.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0.ip());
    let proxies = state.service.settings().service.trusted_proxies.clone();
    crate::http::client_address::client_address(peer, headers, &proxies)
}

/// This site as the browser addressed it: `X-Forwarded-Host` from a trusted
/// proxy, else the Host header.
fn site_host(
    state: &AppState,
    connection: Option<&Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> Option<String> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or(v).trim().to_owned())
    };
    let peer = connection.map(|c| c.0.0.ip());
    let trusted = peer.is_some_and(|peer| {
        crate::http::client_address::from_trusted_proxy(
            peer,
            &state.service.settings().service.trusted_proxies,
        )
    });
    trusted
        .then(|| text("x-forwarded-host"))
        .flatten()
        .or_else(|| text(header::HOST.as_str()))
}

/// Every dashboard POST (`/login`, `/logout`, `/actions`): refused with 403
/// before it is read when a browser says another site sent it.
pub async fn same_site_posts(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() == axum::http::Method::POST {
        let host = site_host(&state, connection.as_ref(), request.headers());
        if let Some(why) = forms::cross_site(request.headers(), host.as_deref()) {
            tracing::info!(path = %request.uri().path(), why, "dashboard: a cross-site form was refused");
            return html(
                StatusCode::FORBIDDEN,
                page::sign_in(Some(&format!(
                    "Refused: {why}. Use the dashboard itself at its own address."
                ))),
            );
        }
    }
    next.run(request).await
}

/// What `GET /` may carry: a search and its page, the cluster shown (its
/// id, with several), and what the last action did.
#[derive(serde::Deserialize, Default)]
pub struct Shown {
    #[serde(default)]
    pub q: String,
    /// A cluster's id; anything else shows every cluster.
    #[serde(default)]
    pub cluster: String,
    /// The page (from 1); anything else is the first.
    #[serde(default)]
    pub page: String,
    #[serde(default)]
    pub done: String,
    #[serde(default)]
    pub ns: String,
}

/// `GET /`: the dashboard, or the sign-in form.
pub async fn show(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    checked: Option<axum::Extension<crate::http::guard::CheckedSession>>,
    // A query it cannot read is ignored, not refused.
    shown: Result<axum::extract::Query<Shown>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let shown = shown.map(|q| q.0).unwrap_or_default();
    let Some(id) = session_id(&headers) else {
        return html(StatusCode::OK, page::sign_in(None));
    };
    let caller = match session_caller(&state, checked, &id).await {
        Ok(Some(caller)) => caller,
        Ok(None) => {
            let mut response = html(
                StatusCode::OK,
                page::sign_in(Some("Your session has ended; sign in again.")),
            );
            let https = over_https(&state, connection.as_ref(), &headers);
            response
                .headers_mut()
                .insert(header::SET_COOKIE, cookie(https, "", 0));
            return response;
        }
        Err(error) => return unavailable(&error),
    };
    let role = match &caller {
        Caller::Authenticated(identity) => identity.role.as_str(),
        _ => "",
    };
    let admin = caller
        .authorize(crate::domain::Action::System(
            crate::domain::roles::Level::Admin,
        ))
        .is_ok();
    let settings = state.service.settings();
    // Only a cluster of the config (by id, or by name as operators say
    // it), and only when there are several; another is said, not ignored.
    let asked = shown.cluster.trim();
    let cluster = match uuid::Uuid::parse_str(asked) {
        Ok(id) => settings.cluster(id),
        Err(_) => settings.cluster_named(asked),
    }
    .filter(|_| settings.clusters.len() > 1);
    let unknown_cluster = (!asked.is_empty() && cluster.is_none() && settings.clusters.len() > 1)
        .then(|| crate::domain::text::excerpt(asked));
    let view = page::View {
        role,
        csrf: admin.then(|| forms::csrf_token(&id)),
        // NUL can be in no text nspool stores, so it matches nothing anyway.
        search: shown
            .q
            .trim()
            .chars()
            .filter(|c| *c != '\0')
            .take(page::MAX_SEARCH)
            .collect(),
        done: action_forms::Done::parse(&shown.done, &shown.ns).map(|done| match cluster {
            Some(c) => done.in_cluster(c.id, &c.name),
            None => done,
        }),
        unknown_cluster,
    };
    let wanted = crate::pool::DashboardPage {
        search: view.search.clone(),
        page: shown.page.trim().parse().unwrap_or(1),
        cluster: cluster.map(|c| c.id),
    };
    // Held until the page is built; the bytes then go out without it.
    let Some(permit) = state.dashboard_renders.admit().await else {
        state
            .service
            .metrics()
            .refused(crate::domain::budget::Budget::DashboardRenders);
        let mut response = html(
            StatusCode::SERVICE_UNAVAILABLE,
            page::refused(
                "The dashboard is busy with other pages right now; it tries again in a moment.",
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    let shown_page = state.service.dashboard(&caller, &wanted).await;
    let response = match shown_page {
        Ok(data) => {
            if data.matches > data.namespaces.len() {
                state
                    .service
                    .metrics()
                    .refused(crate::domain::budget::Budget::DashboardPage);
            }
            html(StatusCode::OK, page::dashboard(&data, &view))
        }
        Err(Error::Forbidden { .. } | Error::Unauthenticated { .. }) => html(
            StatusCode::FORBIDDEN,
            page::sign_in(Some(
                "The dashboard needs a system role (SYSTEM_VIEWER or higher).",
            )),
        ),
        Err(error) => unavailable(&error),
    };
    drop(permit);
    response
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
    let https = over_https(&state, connection.as_ref(), &headers);
    let address = client(&state, connection, &headers);
    if state.sign_in_limit.blocked(address, Instant::now()) {
        state
            .service
            .metrics()
            .refused(crate::domain::budget::Budget::SignIn);
        let mut response = html(
            StatusCode::TOO_MANY_REQUESTS,
            page::sign_in(Some(&format!(
                "Too many failed sign-ins from your address ({} a minute); wait a minute.",
                rate_limit::TRIES
            ))),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return response;
    }
    match state.service.sign_in(&form.token).await {
        Ok(session) => {
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                cookie(https, &session.id, session.max_age_seconds),
            );
            response
        }
        Err(Error::Unauthenticated { .. }) => {
            state.sign_in_limit.failed(address, Instant::now());
            html(
                StatusCode::UNAUTHORIZED,
                page::sign_in(Some("That is not a valid token.")),
            )
        }
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
pub async fn sign_out(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = session_id(&headers)
        && let Err(error) = state.service.sign_out(&id).await
    {
        return unavailable(&error);
    }
    let mut response = Redirect::to("/").into_response();
    let https = over_https(&state, connection.as_ref(), &headers);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(https, "", 0));
    response
}
