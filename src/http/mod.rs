//! The axum router: GraphQL at `/v1`, GraphiQL, the token page, health.
//! The state is one struct so later layers (metrics, dashboard) slot in.

mod graphql;
pub mod guard;
mod health;
pub mod metrics;
mod pages;
mod public_url;
pub mod server;

use crate::graphql::NspoolSchema;
use crate::pool::PoolService;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

/// The largest request body accepted (document and variables together).
pub const MAX_BODY_BYTES: usize = crate::graphql::limits::MAX_DOCUMENT_BYTES;

#[derive(Clone)]
pub struct AppState {
    pub schema: NspoolSchema,
    pub service: PoolService,
    pub metrics: std::sync::Arc<metrics::Metrics>,
    pub guard: guard::Guard,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1", get(pages::graphiql).post(graphql::execute))
        .route("/v1/token", get(pages::token))
        .route_layer(axum::middleware::from_fn_with_state(
            state.guard.clone(),
            guard::limit,
        ))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::scrape))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}
