//! How big an answer may grow. Static complexity cannot know how many rows a
//! list has; so every resolver that returns rows charges their real count,
//! times the values its selection asks of each, to the request's budget before
//! one object is built. A list over budget is never built, and the transport
//! answers the whole request with one clear error instead of partial data.

use super::allowance::Allowance;
use super::errors::too_large;
use super::limits::MAX_RESPONSE_VALUES;
use async_graphql::{Context, SelectionField};

/// Values left for one request's answer; clones share it.
#[derive(Clone)]
pub struct ResponseBudget(Allowance);

impl Default for ResponseBudget {
    fn default() -> Self {
        Self::new(MAX_RESPONSE_VALUES)
    }
}

impl ResponseBudget {
    pub fn new(values: usize) -> Self {
        Self(Allowance::new(values))
    }

    /// The budget of one request on a pool of `pool_size` namespaces: the
    /// usual bound, or one read of the whole pool (the operator sets its size,
    /// not the client) with room to spare, whichever is more.
    pub fn for_pool(pool_size: usize) -> Self {
        let one_read = pool_size.saturating_mul(2).saturating_add(1_000);
        Self::new(MAX_RESPONSE_VALUES.max(one_read))
    }

    /// Takes `values` from the budget, or fails, takes nothing and remembers.
    fn take(&self, values: usize) -> bool {
        self.0.take(values)
    }

    /// Whether some list of this request did not fit.
    pub fn exceeded(&self) -> bool {
        self.0.exceeded()
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
pub fn charge_items(ctx: &Context<'_>, items: usize) -> async_graphql::Result<()> {
    let values = items.saturating_mul(values_per_item(ctx.field()));
    charge(ctx, values)
}

/// Charges the rows of a list nested in another list, unless the outer list
/// already counted it at its requested size.
pub fn charge_nested_items(ctx: &Context<'_>, items: usize) -> async_graphql::Result<()> {
    if requested_size(&ctx.field()).is_some() {
        return Ok(());
    }
    charge_items(ctx, items)
}

/// Charges `values` to the request's budget.
fn charge(ctx: &Context<'_>, values: usize) -> async_graphql::Result<()> {
    match ctx.data_opt::<ResponseBudget>() {
        Some(budget) if !budget.take(values) => Err(too_large()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_pool_fits_one_whole_read_but_not_two() {
        assert!(ResponseBudget::for_pool(10).take(MAX_RESPONSE_VALUES));
        let budget = ResponseBudget::for_pool(100_000);
        assert!(
            budget.take(200_000),
            "one availableNamespaces of 100,000 names"
        );
        assert!(!budget.take(200_000), "a second one (an alias) is refused");
    }
}
