//! How big an answer may grow. Static complexity cannot know how many rows a
//! list has; so every resolver that returns rows charges their real count,
//! times the values its selection asks of each, to the request's budget before
//! one object is built. A list over budget is never built, and the transport
//! answers the whole request with one clear error instead of partial data.

use super::allowance::Allowance;
use super::errors::{busy, too_large};
use super::large_answers::LargeAnswer;
use super::limits::{MAX_RESPONSE_VALUES, PoolBudgets};
use async_graphql::{Context, SelectionField};

/// Values left for one request's answer; clones share it.
#[derive(Clone)]
pub struct ResponseBudget {
    allowance: Allowance,
    limit: usize,
    /// Taken once the answer grows past the fixed budget.
    large: Option<LargeAnswer>,
}

impl Default for ResponseBudget {
    fn default() -> Self {
        Self::new(MAX_RESPONSE_VALUES)
    }
}

impl ResponseBudget {
    pub fn new(values: usize) -> Self {
        Self {
            allowance: Allowance::new(values),
            limit: values,
            large: None,
        }
    }

    /// The budget of one request on a pool of `pool_size` namespaces (the
    /// operator sets its size, not the client): one read of the whole pool
    /// fits ([`PoolBudgets`]); past the fixed budget the answer waits for
    /// a large-answer permit.
    pub fn for_pool(pool_size: usize, large: LargeAnswer) -> Self {
        let mut budget = Self::new(PoolBudgets::for_pool(pool_size).response_values);
        budget.large = Some(large);
        budget
    }

    /// Values this request may hold in its answer.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `values` from the budget, or fails, takes nothing and remembers.
    fn take(&self, values: usize) -> bool {
        self.allowance.take(values)
    }

    /// Whether some list of this request did not fit.
    pub fn exceeded(&self) -> bool {
        self.allowance.exceeded()
    }

    /// Past the fixed budget: the request's large-answer permit.
    async fn admit_large(&self) -> bool {
        match &self.large {
            Some(large) if self.limit - self.allowance.left() > MAX_RESPONSE_VALUES => {
                large.admit().await
            }
            _ => true,
        }
    }
}

/// A nested list's requested size (`last: N`), when the document gives one.
fn requested_size(field: &SelectionField<'_>) -> Option<usize> {
    let arguments = field.arguments().ok()?;
    arguments.iter().find_map(|(name, value)| match value {
        async_graphql::Value::Number(n) if name.as_str() == "last" => {
            n.as_u64().and_then(|n| usize::try_from(n).ok())
        }
        _ => None,
    })
}

/// Values one item of this field's list produces: itself and every field its
/// selection asks for. A nested list with `last: N` counts N times here (so
/// the whole answer is estimated before the outer list is built); one
/// without a size counts once and charges its own rows.
fn values_per_item(field: SelectionField<'_>) -> usize {
    // Selection depth is bounded (limits::MAX_DEPTH), so recursion is shallow.
    field.selection_set().fold(1usize, |total, child| {
        let size = requested_size(&child).unwrap_or(1);
        total.saturating_add(values_per_item(child).saturating_mul(size))
    })
}

/// Charges `items` rows of the current list field.
pub async fn charge_items(ctx: &Context<'_>, items: usize) -> async_graphql::Result<()> {
    let values = items.saturating_mul(values_per_item(ctx.field()));
    charge(ctx, values).await
}

/// Charges the rows of a list nested in another list, unless the outer list
/// already counted it at its requested size.
pub async fn charge_nested_items(ctx: &Context<'_>, items: usize) -> async_graphql::Result<()> {
    if requested_size(&ctx.field()).is_some() {
        return Ok(());
    }
    charge_items(ctx, items).await
}

/// Charges `values` to the request's budget.
async fn charge(ctx: &Context<'_>, values: usize) -> async_graphql::Result<()> {
    let Some(budget) = ctx.data_opt::<ResponseBudget>() else {
        return Ok(());
    };
    if !budget.take(values) {
        return Err(too_large(budget.limit()));
    }
    if !budget.admit_large().await {
        return Err(busy());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::graphql::limits::{MAX_POOL_NAMESPACES, WHOLE_POOL_READ_VALUES};

    #[test]
    fn a_large_pool_fits_one_whole_read_of_its_widest_kind_but_not_more() {
        let large = LargeAnswer::new(crate::graphql::LargeAnswers::default());
        assert!(ResponseBudget::for_pool(10, large.clone()).take(MAX_RESPONSE_VALUES));
        assert!(!ResponseBudget::for_pool(10, large.clone()).take(MAX_RESPONSE_VALUES + 1));
        let budget = ResponseBudget::for_pool(100_000, large.clone());
        assert!(
            budget.take(100_000 * WHOLE_POOL_READ_VALUES),
            "poolNamespaces {{ name state source }} of 100,000 namespaces"
        );
        assert!(!budget.take(100_000), "a read of one more field is refused");
        // Past the documented maximum the budget stops growing.
        assert_eq!(
            ResponseBudget::for_pool(10 * MAX_POOL_NAMESPACES, large.clone()).limit(),
            ResponseBudget::for_pool(MAX_POOL_NAMESPACES, large).limit()
        );
    }
}
