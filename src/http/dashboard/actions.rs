//! `POST /actions`: a system admin's cordon, uncordon and mark-clean from
//! the dashboard, as plain forms (they work with JavaScript off). The form
//! carries the session's CSRF token; the pool service decides who may (the
//! same rules as GraphQL). With several clusters the form names its
//! cluster by id (a name may be in two). Done: 303 back to the namespace's
//! row (on its cluster's page) with what was done; refused: a page that says
//! why, with the right status.

use super::{AppState, forms, html, page, session_id};
use crate::pool::Error;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

#[derive(serde::Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    reason: String,
    /// The cluster's id (the dashboard's forms say it when nspool serves several).
    #[serde(default)]
    cluster: String,
}

fn refused(status: StatusCode, message: &str) -> Response {
    html(status, page::refused(message))
}

pub async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    checked: Option<axum::Extension<crate::http::guard::CheckedSession>>,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some(id) = session_id(&headers) else {
        return Redirect::to("/").into_response();
    };
    let caller = match super::session_caller(&state, checked, &id).await {
        Ok(Some(caller)) => caller,
        Ok(None) => return Redirect::to("/").into_response(),
        Err(error) => return super::unavailable(&error),
    };
    if !forms::csrf_matches(&id, &form.csrf) {
        return refused(
            StatusCode::FORBIDDEN,
            "This form is not from your session (its CSRF token does not match); reload the dashboard and try again.",
        );
    }
    let service = &state.service;
    let name = form.name.trim();
    let cluster = match form.cluster.trim() {
        "" => None,
        id => match uuid::Uuid::parse_str(id) {
            Ok(id) => Some(id),
            Err(_) => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "This form names no cluster nspool knows; reload the dashboard and try again.",
                );
            }
        },
    };
    let outcome = match form.action.as_str() {
        "cordon" => service
            .cordon_namespace(&caller, cluster, name, &form.reason, None)
            .await
            .map(|_| ()),
        "uncordon" => service
            .uncordon_namespace(&caller, cluster, name)
            .await
            .map(|_| ()),
        "mark-clean" => {
            service
                .mark_namespace_clean(&caller, cluster, name, &form.reason)
                .await
        }
        "cordon-pool" => {
            service
                .cordon_pool(&caller, cluster, &form.reason, None)
                .await
        }
        "uncordon-pool" => service.uncordon_pool(&caller, cluster).await.map(|_| ()),
        _ => Err(Error::BadInput(
            "No such action; use the dashboard's buttons".into(),
        )),
    };
    match outcome {
        Ok(()) => {
            let settings = service.settings();
            // With several clusters, back to the page of the cluster it acted in.
            let acted_in = cluster
                .filter(|_| settings.clusters.len() > 1)
                .and_then(|id| settings.cluster(id));
            let target = super::action_forms::Done::parse(&form.action, name)
                .map(|done| match acted_in {
                    Some(c) => done.in_cluster(c.id, &c.name),
                    None => done,
                })
                .map_or_else(|| "/".to_owned(), |done| done.link());
            Redirect::to(&target).into_response()
        }
        Err(error) => {
            let status = match &error {
                Error::BadInput(_) => StatusCode::BAD_REQUEST,
                Error::NotFound(_) => StatusCode::NOT_FOUND,
                Error::Conflict(_) => StatusCode::CONFLICT,
                Error::Unauthenticated { .. } | Error::Forbidden { .. } => StatusCode::FORBIDDEN,
                Error::Unavailable(_) | Error::Internal(_) => {
                    return super::unavailable(&error);
                }
            };
            let message = match &error {
                Error::Forbidden { .. } => {
                    "Only a SYSTEM_ADMIN's session may cordon, uncordon or mark clean.".to_owned()
                }
                other => other.to_string(),
            };
            refused(status, &message)
        }
    }
}
