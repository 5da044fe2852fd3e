//! How big an answer may grow. Static complexity cannot know how many rows a
//! list has; so every resolver that returns rows charges their real count,
//! times the values its selection asks of each, to the request's budget before
//! one object is built. An answer over budget is refused with a clear error
//! instead of being built in memory.

use super::errors::too_large;
use super::limits::MAX_RESPONSE_VALUES;
use async_graphql::{Context, SelectionField};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Values left for one request's answer.
pub struct ResponseBudget {
    left: AtomicUsize,
}

impl Default for ResponseBudget {
    fn default() -> Self {
        Self::new(MAX_RESPONSE_VALUES)
    }
}

impl ResponseBudget {
    pub fn new(values: usize) -> Self {
        Self {
            left: AtomicUsize::new(values),
        }
    }

    /// Takes `values` from the budget, or fails and takes nothing.
    fn take(&self, values: usize) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(values)
            })
            .is_ok()
    }
}

/// Values one item of this field's list produces: itself and every field its
/// selection asks for (nested lists count once here and charge their own rows).
fn values_per_item(field: SelectionField<'_>) -> usize {
    // Selection depth is bounded (limits::MAX_DEPTH), so recursion is shallow.
    field
        .selection_set()
        .map(values_per_item)
        .fold(1usize, usize::saturating_add)
}

/// Charges `items` rows of the current list field.
pub fn charge_items(ctx: &Context<'_>, items: usize) -> async_graphql::Result<()> {
    let values = items.saturating_mul(values_per_item(ctx.field()));
    charge(ctx, values)
}

/// Charges `values` to the request's budget.
fn charge(ctx: &Context<'_>, values: usize) -> async_graphql::Result<()> {
    match ctx.data_opt::<ResponseBudget>() {
        Some(budget) if !budget.take(values) => Err(too_large(values)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_what_does_not_fit_and_keeps_the_rest() {
        let budget = ResponseBudget::new(10);
        assert!(budget.take(6));
        assert!(!budget.take(5));
        assert!(budget.take(4));
        assert!(!budget.take(1));
    }
}
