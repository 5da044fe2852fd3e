//! The GraphQL schema (transport-free): Houston's contract plus nspool's own
//! pool view, merged from thin resolver objects.

mod allowance;
mod chunked_list;
mod document_merge;
mod document_scan;
mod document_shape;
mod error_cap;
mod errors;
mod large_answers;
pub mod limits;
mod loaders;
mod mutation;
mod operations;
mod pool_types;
mod query;
mod resolver_runs;
mod response_budget;
mod scalars;
mod types;

pub use document_merge::merge as merge_fields;
pub use document_scan::{ScanError, scan};
pub use document_shape::{ShapeError, check as check_shape};
pub use error_cap::cap as cap_errors;
pub use errors::{
    BAD_USER_INPUT, CODES, INTERNAL, PARSE_FAILED, SERVICE_UNAVAILABLE, VALIDATION_FAILED,
    busy_message, classify, too_large_message,
};
pub use large_answers::{LARGE_ANSWER_WAIT, LARGE_ANSWERS, LargeAnswer, LargeAnswers};
pub use query::PublicUrl;
pub use resolver_runs::{ResolverRuns, too_many_runs_message};
pub use response_budget::ResponseBudget;

use crate::pool::PoolService;
use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptySubscription, MergedObject, Schema};

#[derive(MergedObject, Default)]
pub struct Query(
    query::HoustonQuery,
    query::PoolQuery,
    query::ReclaimQuery,
    operations::OperationsQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    mutation::HoustonMutation,
    mutation::PoolMutation,
    operations::OperationsMutation,
);

pub type NspoolSchema = Schema<Query, Mutation, EmptySubscription>;

use limits::{MAX_COMPLEXITY, MAX_DEPTH};

pub fn schema(service: PoolService) -> NspoolSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .data(DataLoader::new(
            loaders::RoleBindingLoader(service.clone()),
            crate::pool::request_budget::spawn_in_request,
        ))
        .data(DataLoader::new(
            loaders::EventLoader(service.clone()),
            crate::pool::request_budget::spawn_in_request,
        ))
        .data(DataLoader::new(
            loaders::HoldingsLoader(service.clone()),
            crate::pool::request_budget::spawn_in_request,
        ))
        .data(service)
        .extension(resolver_runs::ResolverRunLimit)
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
