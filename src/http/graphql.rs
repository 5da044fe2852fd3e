//! `POST /v1`: the body is read here (not by async-graphql) so that
//! `"variables": null` works and every failure has a GraphQL-shaped answer.

use super::AppState;
use super::pool_reads::Lookup;
use super::public_url::public_url;
use crate::domain::Action;
use crate::domain::budget::Budget;
use crate::domain::text::json_depth;
use crate::graphql::limits::{MAX_NESTING, MAX_VARIABLES, PoolBudgets};
use crate::graphql::{
    BAD_USER_INPUT, INTERNAL, LargeAnswer, PARSE_FAILED, PublicUrl, ResolverRuns, ResponseBudget,
    SERVICE_UNAVAILABLE, VALIDATION_FAILED, busy_message, cap_errors, check_shape, classify,
    merge_fields, scan, too_large_message, too_many_runs_message,
};
use crate::pool::Credentials;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    query: Option<String>,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default)]
    operation_name: Option<String>,
}

fn transport_error(status: StatusCode, code: &str, message: String) -> Response {
    let body = json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    (status, axum::Json(body)).into_response()
}

/// A request refused by a limit, before or after parsing, counted like any
/// GraphQL error: HTTP 200 for `application/json` clients (the astro CLI
/// reads the message from any 200), 400 for `application/graphql-response+json`
/// ones (no `data`: the request was not executed).
fn refused(state: &AppState, media: Media, code: &str, message: String) -> Response {
    state.metrics.graphql_error(code);
    let body = json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    media.answer(StatusCode::BAD_REQUEST, Bytes::from(body.to_string()))
}

/// The answer's media type, as GraphQL over HTTP says: the newer
/// `application/graphql-response+json` (whose status codes tell a request
/// refused before execution from one executed) when the client accepts it,
/// else `application/json` (always 200 for a well-formed request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Json,
    GraphqlResponse,
}

pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

impl Media {
    pub fn accepted(headers: &HeaderMap) -> Media {
        let accepts_new = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|item| {
                let mut parts = item.split(';');
                let kind = parts.next()?.trim();
                // `q=0` is "not this one".
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q == 0.0)
                });
                (!refused).then_some(kind)
            })
            .any(|kind| kind.eq_ignore_ascii_case(GRAPHQL_RESPONSE));
        if accepts_new {
            Media::GraphqlResponse
        } else {
            Media::Json
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Media::Json => "application/json",
            Media::GraphqlResponse => GRAPHQL_RESPONSE,
        }
    }

    /// `bytes` with this media type: 200, or `refused` (a 4xx) for the
    /// newer media type when the request was not executed.
    fn answer(self, refused: StatusCode, bytes: Bytes) -> Response {
        let status = match self {
            Media::Json => StatusCode::OK,
            Media::GraphqlResponse => refused,
        };
        (status, [(header::CONTENT_TYPE, self.content_type())], bytes).into_response()
    }
}

/// A POST body must say it is JSON (GraphQL over HTTP); anything else is
/// 415 before it is read.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("application/json"))
}

pub async fn execute(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let media = Media::accepted(&headers);
    if !is_json(&headers) {
        return transport_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BAD_USER_INPUT,
            "Send the GraphQL request as JSON with Content-Type: application/json".into(),
        );
    }
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) => {
            return transport_error(
                rejection.status(),
                BAD_USER_INPUT,
                format!(
                    "The request body could not be read ({}); the limit is {} bytes",
                    rejection.body_text(),
                    super::MAX_BODY_BYTES
                ),
            );
        }
    };
    let body: Body = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(error) => {
            return transport_error(
                StatusCode::BAD_REQUEST,
                PARSE_FAILED,
                format!("The request body is not a GraphQL request in JSON: {error}"),
            );
        }
    };
    let Some(query) = body.query.filter(|q| !q.trim().is_empty()) else {
        return transport_error(
            StatusCode::BAD_REQUEST,
            BAD_USER_INPUT,
            "The request body needs a \"query\" with a GraphQL document".into(),
        );
    };
    // Bounded before anything recursive sees the document.
    if let Err(error) = scan(&query) {
        state.service.metrics().refused(Budget::Document);
        return refused(
            &state,
            media,
            PARSE_FAILED,
            format!("GraphQL document refused: {error}"),
        );
    }
    let variables = match body.variables {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(Value::Object(map)) if map.len() > MAX_VARIABLES => {
            return refused(
                &state,
                media,
                BAD_USER_INPUT,
                format!("A request has at most {MAX_VARIABLES} variables"),
            );
        }
        Some(object @ Value::Object(_)) if json_depth(&object) > MAX_NESTING + 1 => {
            return refused(
                &state,
                media,
                BAD_USER_INPUT,
                format!("\"variables\" nest deeper than {MAX_NESTING} levels"),
            );
        }
        Some(object @ Value::Object(_)) => object,
        Some(_) => {
            return transport_error(
                StatusCode::BAD_REQUEST,
                BAD_USER_INPUT,
                "\"variables\" must be a JSON object or null".into(),
            );
        }
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    let operation = body.operation_name.filter(|n| !n.is_empty());

    // A pure pool read whose answer this generation already has: only the
    // caller's own token is checked. Any refusal takes the usual path below.
    let mut version = state.service.snapshot().version();
    let pure = matches!(&variables, Value::Object(map) if map.is_empty());
    let lookup = |version| {
        if pure {
            state
                .pool_reads
                .lookup(&query, operation.as_deref(), version)
        } else {
            Lookup::Other
        }
    };
    // Held while this request builds its pure read's answer: requests for
    // the same answer wait and then take the kept one instead of building
    // it again (each build of a whole pool is a large answer).
    let mut _building = None;
    let pure_read = match lookup(version) {
        Lookup::Other => false,
        Lookup::Pure(None) => {
            _building = state
                .pool_reads
                .build_turn(&query, operation.as_deref())
                .await;
            version = state.service.snapshot().version();
            if let Lookup::Pure(Some(answer)) = lookup(version)
                && may_read_pool(&state, authorization.as_deref()).await
            {
                return media.answer(StatusCode::OK, answer);
            }
            true
        }
        Lookup::Pure(Some(answer)) => {
            if may_read_pool(&state, authorization.as_deref()).await {
                return media.answer(StatusCode::OK, answer);
            }
            true
        }
    };

    // Every budget that a whole-pool read meets grows with the pool alike.
    let pool_size = state.service.settings().pool_size();
    let large = LargeAnswer::new(state.large_answers.clone());
    let budget = ResponseBudget::for_pool(pool_size, large.clone());
    let runs = ResolverRuns::for_pool(pool_size, large.clone());
    let max_bytes = PoolBudgets::for_pool(pool_size).response_bytes;
    let query_text = if pure_read {
        query.clone()
    } else {
        String::new()
    };
    let mut request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables))
        .data(Credentials::new(authorization))
        .data(budget.clone())
        .data(runs.clone())
        .data(PublicUrl(public_url(
            &headers,
            &state.service.settings().service.base_domain,
        )));
    if let Some(name) = &operation {
        request = request.operation_name(name);
    }
    // Parsed once here (and kept in the request) to tell parse errors apart.
    match request.parsed_query() {
        Err(error) => {
            return media.answer(
                StatusCode::BAD_REQUEST,
                Bytes::from(parse_failed(&error).to_string()),
            );
        }
        // Measured in linear time before async-graphql's validation expands it.
        Ok(document) => {
            // Identical fields are one (GraphQL's field collection), before
            // they are measured: linear in the document, which the scan bounds.
            let mut merged = document.clone();
            merge_fields(&mut merged);
            if let Err(error) = check_shape(&merged) {
                state.service.metrics().refused(Budget::Document);
                return refused(&state, media, VALIDATION_FAILED, error.to_string());
            }
            request.set_parsed_query(merged);
        }
    }
    let mut response = state.schema.execute(request).await;
    // One clear error rather than partial data and an error per list.
    if runs.exceeded() {
        state.service.metrics().refused(Budget::ResolverRuns);
        return refused(
            &state,
            media,
            BAD_USER_INPUT,
            too_many_runs_message(runs.limit()),
        );
    }
    if budget.exceeded() {
        state.service.metrics().refused(Budget::AnswerSize);
        return refused(
            &state,
            media,
            BAD_USER_INPUT,
            too_large_message(budget.limit()),
        );
    }
    if large.busy() {
        state.service.metrics().refused(Budget::LargeAnswers);
        state.metrics.graphql_error(SERVICE_UNAVAILABLE);
        let body = json!({"errors": [{"message": busy_message(), "extensions": {"code": SERVICE_UNAVAILABLE}}]});
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, media.content_type()),
                (header::RETRY_AFTER, "1"),
            ],
            body.to_string(),
        )
            .into_response();
    }
    classify(&mut response.errors);
    // Refused before execution (validation): no `data` to speak of.
    let executed = !(response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| {
            matches!(
                e.extensions.as_ref().and_then(|x| x.get("code")),
                Some(async_graphql::Value::String(c)) if c == VALIDATION_FAILED || c == PARSE_FAILED
            )
        }));
    let mut unavailable = false;
    for error in &response.errors {
        if let Some(async_graphql::Value::String(code)) =
            error.extensions.as_ref().and_then(|e| e.get("code"))
        {
            state.metrics.graphql_error(code);
            unavailable |= code == SERVICE_UNAVAILABLE;
        }
    }
    if cap_errors(&mut response.errors) {
        state.service.metrics().refused(Budget::Errors);
    }
    match serde_json::to_vec(&response) {
        Ok(bytes) if bytes.len() <= max_bytes => {
            let bytes = Bytes::from(bytes);
            // Kept only when the whole answer was read from one version.
            if let Some(at) = version.filter(|_| pure_read && response.errors.is_empty())
                && state.service.snapshot().version() == Some(at)
            {
                state.pool_reads.keep(
                    &query_text,
                    operation.as_deref(),
                    at,
                    bytes.clone(),
                    super::pool_reads::answer_bytes_for_pool(pool_size),
                );
            }
            if unavailable {
                // The database is away: a status that proxies, clients and
                // load balancers read as "try again", with when.
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [
                        (header::CONTENT_TYPE, media.content_type()),
                        (header::RETRY_AFTER, "1"),
                    ],
                    bytes,
                )
                    .into_response();
            }
            let status = if executed {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            // Built for this request: held of the answer buffer until sent.
            super::unsent::fresh(media.answer(status, bytes))
        }
        Ok(bytes) => {
            state.service.metrics().refused(Budget::AnswerSize);
            refused(
                &state,
                media,
                BAD_USER_INPUT,
                format!(
                    "The answer is {} bytes, more than the limit of {max_bytes}; ask for fewer fields or fewer items",
                    bytes.len()
                ),
            )
        }
        Err(error) => {
            tracing::error!(%error, "a GraphQL answer could not be serialized");
            refused(
                &state,
                media,
                INTERNAL,
                "Internal error in nspool; the service logs have the details".into(),
            )
        }
    }
}

/// Whether the caller's token may read the offered names (any valid token).
async fn may_read_pool(state: &AppState, authorization: Option<&str>) -> bool {
    state
        .service
        .authenticate(authorization)
        .await
        .is_ok_and(|caller| caller.authorize(Action::UseToken).is_ok())
}

/// A syntax error in one line: where, and what was expected.
fn parse_failed(error: &async_graphql::ServerError) -> Value {
    let text = &error.message;
    let what = text
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("= "))
        .unwrap_or(text.trim());
    let (message, locations) = match error.locations.first() {
        Some(pos) => (
            format!(
                "GraphQL syntax error at line {}, column {}: {what}",
                pos.line, pos.column
            ),
            json!([{"line": pos.line, "column": pos.column}]),
        ),
        None => (format!("GraphQL syntax error: {what}"), json!([])),
    };
    json!({"errors": [{"message": message, "locations": locations, "extensions": {"code": PARSE_FAILED}}]})
}
