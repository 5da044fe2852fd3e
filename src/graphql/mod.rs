//! The GraphQL schema (transport-free): Houston's contract plus nspool's own
//! pool view, merged from thin resolver objects.

mod document_scan;
mod document_shape;
mod errors;
pub mod limits;
mod loaders;
mod mutation;
mod query;
mod response_budget;
mod scalars;
mod types;

pub use document_scan::{ScanError, scan};
pub use document_shape::{ShapeError, check as check_shape};
pub use errors::{
    BAD_USER_INPUT, INTERNAL, PARSE_FAILED, VALIDATION_FAILED, classify, too_large_message,
};
pub use query::PublicUrl;
pub use response_budget::ResponseBudget;

use crate::pool::PoolService;
use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptySubscription, MergedObject, Schema};

#[derive(MergedObject, Default)]
pub struct Query(query::HoustonQuery, query::PoolQuery, query::ReclaimQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(mutation::HoustonMutation, mutation::PoolMutation);

pub type NspoolSchema = Schema<Query, Mutation, EmptySubscription>;

use limits::{MAX_COMPLEXITY, MAX_DEPTH};

pub fn schema(service: PoolService) -> NspoolSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .data(DataLoader::new(
            loaders::RoleBindingLoader(service.clone()),
            tokio::spawn,
        ))
        .data(DataLoader::new(
            loaders::EventLoader(service.clone()),
            tokio::spawn,
        ))
        .data(service)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(64)
        .limit_directives(16)
        .finish()
}

/// The SDL, as committed in `graphql/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .finish()
        .sdl()
}
