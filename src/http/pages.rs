use axum::response::Html;

/// GraphiQL, talking to `POST /v1`.
pub async fn graphiql() -> Html<&'static str> {
    Html(include_str!("graphiql.html"))
}

/// Where `authConfig`'s provider points `astro login`: how to get a token.
pub async fn token() -> Html<&'static str> {
    Html(include_str!("token.html"))
}
