//! `POST /v1`: the body is read here (not by async-graphql) so that
//! `"variables": null` works and every failure has a GraphQL-shaped answer.

use super::AppState;
use crate::graphql::{PARSE_FAILED, PublicUrl, classify};
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

fn public_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

pub async fn execute(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) => {
            return transport_error(
                rejection.status(),
                "BAD_USER_INPUT",
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
            "BAD_USER_INPUT",
            "The request body needs a \"query\" with a GraphQL document".into(),
        );
    };
    let variables = match body.variables {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(object @ Value::Object(_)) => object,
        Some(_) => {
            return transport_error(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                "\"variables\" must be a JSON object or null".into(),
            );
        }
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());

    let mut request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables))
        .data(Credentials::new(authorization))
        .data(PublicUrl(public_url(&headers)));
    if let Some(name) = body.operation_name.filter(|n| !n.is_empty()) {
        request = request.operation_name(name);
    }
    // Parsed once here (and kept in the request) to tell parse errors apart.
    if let Err(error) = request.parsed_query() {
        return axum::Json(parse_failed(&error)).into_response();
    }
    let mut response = state.schema.execute(request).await;
    classify(&mut response.errors);
    for error in &response.errors {
        if let Some(async_graphql::Value::String(code)) =
            error.extensions.as_ref().and_then(|e| e.get("code"))
        {
            state.metrics.graphql_error(code);
        }
    }
    axum::Json(response).into_response()
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
