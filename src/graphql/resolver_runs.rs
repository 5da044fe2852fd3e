//! The budget of resolver runs of one request. Static limits bound the
//! document, not what its lists multiply it by (`types { fields { … } }` runs
//! the inner selection once per item); so every field resolution and list
//! item is counted as it runs, and past the request's budget
//! ([`MAX_RESOLVER_RUNS`], more on a larger pool so that one read of the
//! whole pool fits: [`PoolBudgets`]) the rest are refused at once and the transport answers one error instead of partial
//! data. Identical fields were merged before (`super::document_merge`).

use super::allowance::Allowance;
use super::errors::{BAD_USER_INPUT, SERVICE_UNAVAILABLE, busy_message};
use super::large_answers::LargeAnswer;
use super::limits::{MAX_RESOLVER_RUNS, PoolBudgets};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerError, ServerResult, Value};
use std::sync::Arc;

/// Runs left for one request; clones share it.
#[derive(Clone)]
pub struct ResolverRuns {
    allowance: Allowance,
    limit: usize,
    /// Taken once the runs pass the fixed budget (an answer that large,
    /// introspection's too, is built a few at a time).
    large: Option<LargeAnswer>,
}

impl Default for ResolverRuns {
    fn default() -> Self {
        Self::new(MAX_RESOLVER_RUNS)
    }
}

impl ResolverRuns {
    pub fn new(limit: usize) -> Self {
        Self {
            allowance: Allowance::new(limit),
            limit,
            large: None,
        }
    }

    /// The runs of one request on a pool of `pool_size` namespaces: one read
    /// of the whole pool fits (each namespace's item and its fields); past
    /// the fixed budget the request waits for a large-answer permit.
    pub fn for_pool(pool_size: usize, large: LargeAnswer) -> Self {
        let mut runs = Self::new(PoolBudgets::for_pool(pool_size).resolver_runs);
        runs.large = Some(large);
        runs
    }

    /// Past the fixed budget: the request's large-answer permit.
    async fn admit_large(&self) -> bool {
        match &self.large {
            Some(large) if self.limit - self.allowance.left() > MAX_RESOLVER_RUNS => {
                large.admit().await
            }
            _ => true,
        }
    }

    /// Whether some resolution of this request was refused.
    pub fn exceeded(&self) -> bool {
        self.allowance.exceeded()
    }

    /// The runs this request may make.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

pub fn too_many_runs_message(limit: usize) -> String {
    format!(
        "The request would run more than {limit} field resolutions; ask for fewer fields or fewer items"
    )
}

/// Counts every resolution against the request's [`ResolverRuns`], if it has one.
pub struct ResolverRunLimit;

impl ExtensionFactory for ResolverRunLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ResolverRunLimit)
    }
}

#[async_trait::async_trait]
impl Extension for ResolverRunLimit {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if let Some(runs) = ctx.data_opt::<ResolverRuns>()
            && !runs.allowance.take(1)
        {
            let mut error = ServerError::new(too_many_runs_message(runs.limit), None);
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", BAD_USER_INPUT);
            return Err(error);
        }
        if let Some(runs) = ctx.data_opt::<ResolverRuns>()
            && !runs.admit_large().await
        {
            let mut error = ServerError::new(busy_message(), None);
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", SERVICE_UNAVAILABLE);
            return Err(error);
        }
        next.run(ctx, info).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::limits::{MAX_POOL_NAMESPACES, WHOLE_POOL_READ_VALUES};

    #[test]
    fn a_whole_pool_read_fits_and_the_budget_stops_at_the_largest_pool() {
        let large = || LargeAnswer::new(crate::graphql::LargeAnswers::default());
        assert_eq!(
            ResolverRuns::for_pool(5, large()).limit(),
            MAX_RESOLVER_RUNS
        );
        let runs = ResolverRuns::for_pool(MAX_POOL_NAMESPACES, large());
        assert!(
            runs.allowance
                .take(MAX_POOL_NAMESPACES * WHOLE_POOL_READ_VALUES + 1)
        );
        assert!(!runs.allowance.take(MAX_POOL_NAMESPACES));
        assert_eq!(
            ResolverRuns::for_pool(100 * MAX_POOL_NAMESPACES, large()).limit(),
            runs.limit()
        );
    }
}
