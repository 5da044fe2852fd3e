//! The budget of resolver runs of one request. Static limits bound the
//! document, not what its lists multiply it by (`types { fields { … } }` runs
//! the inner selection once per item); so every field resolution and list
//! item is counted as it runs, and past [`MAX_RESOLVER_RUNS`] the rest are
//! refused at once and the transport answers one error instead of partial
//! data. Identical fields were merged before (`super::document_merge`).

use super::allowance::Allowance;
use super::errors::BAD_USER_INPUT;
use super::limits::MAX_RESOLVER_RUNS;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerError, ServerResult, Value};
use std::sync::Arc;

/// Runs left for one request; clones share it.
#[derive(Clone)]
pub struct ResolverRuns(Allowance);

impl Default for ResolverRuns {
    fn default() -> Self {
        Self(Allowance::new(MAX_RESOLVER_RUNS))
    }
}

impl ResolverRuns {
    /// Whether some resolution of this request was refused.
    pub fn exceeded(&self) -> bool {
        self.0.exceeded()
    }
}

pub fn too_many_runs_message() -> String {
    format!(
        "The request would run more than {MAX_RESOLVER_RUNS} field resolutions; ask for fewer fields or fewer items"
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
            && !runs.0.take(1)
        {
            let mut error = ServerError::new(too_many_runs_message(), None);
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", BAD_USER_INPUT);
            return Err(error);
        }
        next.run(ctx, info).await
    }
}
