//! Every bound a GraphQL request meets, in one place, with the error it gives.
//! The README's limits table is checked against [`TABLE`] by a test.

/// Bytes of the `query` text (the body limit bounds it too).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Lexical tokens of the document (GraphiQL's introspection query has ~300).
pub const MAX_TOKENS: usize = 15_000;
/// Nesting of `{`, `[` and `(` in the document, and of the variables' JSON.
pub const MAX_NESTING: usize = 64;
/// Fields after every fragment spread is expanded; GraphiQL's introspection uses ~150.
pub const MAX_FIELDS: usize = 1_000;
/// Selection depth; GraphiQL's introspection query needs 13.
pub const MAX_DEPTH: usize = 16;
pub const MAX_OPERATIONS: usize = 32;
pub const MAX_FRAGMENTS: usize = 64;
pub const MAX_ALIASES: usize = 128;
pub const MAX_DIRECTIVES: usize = 64;
pub const MAX_VARIABLES: usize = 64;
/// The static cost: every field 1, a list with `last` its size times its fields.
pub const MAX_COMPLEXITY: usize = 10_000;
/// Values (objects, list items, scalars) an answer may hold, counted from the
/// real row counts before the answer is built: about 4 MiB of JSON.
pub const MAX_RESPONSE_VALUES: usize = 100_000;
/// The serialized answer, a backstop behind [`MAX_RESPONSE_VALUES`].
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Field resolutions one request may run, counted as they run (identical
/// fields are merged before; this bounds what lists multiply). GraphiQL's
/// introspection query fits well inside (`contract::introspection_passes_the_limits`).
/// More on a larger pool: [`PoolBudgets`].
pub const MAX_RESOLVER_RUNS: usize = 50_000;

/// The largest pool nspool is documented, measured and sized for (the
/// README's benchmarks and memory figures). The budgets that grow with the
/// pool stop growing here, so no config makes a hostile document cheap.
pub const MAX_POOL_NAMESPACES: usize = 100_000;
/// Fields one read of the whole pool may select of each namespace and still
/// fit every budget: `availableNamespaces { name __typename }` (the astro
/// CLI's and the UI's), `poolNamespaces { name state source }`.
pub const WHOLE_POOL_READ_FIELDS: usize = 3;
/// Answer values (and field resolutions) of one namespace in such a read:
/// its object (a list item) and its fields.
pub const WHOLE_POOL_READ_VALUES: usize = 1 + WHOLE_POOL_READ_FIELDS;
/// Serialized bytes of one namespace in such a read, at the longest name
/// (63 characters): `{"name":"…","state":"SOFT_DELETED","__typename":"PoolNamespace"},`.
pub const WHOLE_POOL_READ_BYTES: usize = 128;
/// Room beside the whole-pool read in the same request (`__typename`,
/// `appConfig`, an error), in namespaces' worth.
const WHOLE_POOL_READ_SLACK: usize = 1_000;

/// A budget that grows with the pool: `base`, or one read of the whole pool
/// of `pool_size` namespaces at `per_namespace` each (with a little room),
/// whichever is more; counted up to [`MAX_POOL_NAMESPACES`]. The operator sets
/// the pool's size, never the client; a document that multiplies lists still
/// meets a bound linear in the pool.
pub fn for_pool(base: usize, per_namespace: usize, pool_size: usize) -> usize {
    let one_read = pool_size
        .min(MAX_POOL_NAMESPACES)
        .saturating_add(WHOLE_POOL_READ_SLACK)
        .saturating_mul(per_namespace);
    base.max(one_read)
}

/// The budgets of one request on a pool of `pool_size` namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolBudgets {
    pub resolver_runs: usize,
    pub response_values: usize,
    pub response_bytes: usize,
}

impl PoolBudgets {
    pub fn for_pool(pool_size: usize) -> Self {
        Self {
            resolver_runs: for_pool(MAX_RESOLVER_RUNS, WHOLE_POOL_READ_VALUES, pool_size),
            response_values: for_pool(MAX_RESPONSE_VALUES, WHOLE_POOL_READ_VALUES, pool_size),
            response_bytes: for_pool(MAX_RESPONSE_BYTES, WHOLE_POOL_READ_BYTES, pool_size),
        }
    }
}
/// Errors in one answer; the last of them says how many more were left out.
pub const MAX_ERRORS: usize = 100;
/// One error's message, cut at a character boundary past this.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1024;
/// Source locations kept per error.
pub const MAX_ERROR_LOCATIONS: usize = 8;
/// An answer of errors only stays below this.
pub const MAX_REFUSAL_BYTES: usize = 64 * 1024;

/// One row of the README's limits table.
pub struct Limit {
    pub name: &'static str,
    pub value: String,
    pub error: &'static str,
}

/// The request limits as documented; `crate::http::limits` adds the connection ones.
pub fn table() -> Vec<Limit> {
    use crate::domain::text::{self, max};
    let row = |name, value: String, error| Limit { name, value, error };
    vec![
        row(
            "document size",
            format!("{MAX_DOCUMENT_BYTES} bytes"),
            "GRAPHQL_PARSE_FAILED",
        ),
        row(
            "document tokens",
            MAX_TOKENS.to_string(),
            "GRAPHQL_PARSE_FAILED",
        ),
        row(
            "nesting of `{ [ (` in the document, and of variables",
            MAX_NESTING.to_string(),
            "GRAPHQL_PARSE_FAILED",
        ),
        row(
            "fields after fragments are expanded",
            MAX_FIELDS.to_string(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        row(
            "selection depth",
            MAX_DEPTH.to_string(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        row(
            "operations per document",
            MAX_OPERATIONS.to_string(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        row(
            "fragments per document",
            MAX_FRAGMENTS.to_string(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        row(
            "aliases per document",
            MAX_ALIASES.to_string(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        row(
            "directives per document",
            MAX_DIRECTIVES.to_string(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        row(
            "variables per request",
            MAX_VARIABLES.to_string(),
            "BAD_USER_INPUT",
        ),
        row(
            "cost (fields; `last: N` lists count N times)",
            MAX_COMPLEXITY.to_string(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        row(
            "values in an answer (real row counts, checked before it is built)",
            format!(
                "{MAX_RESPONSE_VALUES}; at {MAX_POOL_NAMESPACES} namespaces {}",
                PoolBudgets::for_pool(MAX_POOL_NAMESPACES).response_values
            ),
            "BAD_USER_INPUT",
        ),
        row(
            "field resolutions of one request (counted as they run)",
            format!(
                "{MAX_RESOLVER_RUNS}; at {MAX_POOL_NAMESPACES} namespaces {}",
                PoolBudgets::for_pool(MAX_POOL_NAMESPACES).resolver_runs
            ),
            "BAD_USER_INPUT",
        ),
        row(
            "serialized answer",
            format!(
                "{MAX_RESPONSE_BYTES} bytes; at {MAX_POOL_NAMESPACES} namespaces {} bytes",
                PoolBudgets::for_pool(MAX_POOL_NAMESPACES).response_bytes
            ),
            "BAD_USER_INPUT",
        ),
        row(
            "stored JSON (`config`, `dagDeployment`, `payload`) depth / size",
            format!(
                "{} levels / {} bytes",
                text::MAX_STORED_JSON_DEPTH,
                text::MAX_STORED_JSON_BYTES
            ),
            "BAD_USER_INPUT",
        ),
        row(
            "labels (workspace, Deployment) / descriptions",
            format!("{} / {} characters", max::LABEL, max::DESCRIPTION),
            "BAD_USER_INPUT",
        ),
        row(
            "versions, cloud role, type, search filters, names before they are parsed",
            format!("{} characters", max::SHORT),
            "BAD_USER_INPUT",
        ),
        row(
            "token labels",
            format!("{} characters", max::TOKEN_LABEL),
            "BAD_USER_INPUT",
        ),
        row(
            "NUL (U+0000) in any text",
            "refused".into(),
            "BAD_USER_INPUT",
        ),
        row(
            "bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) in any text",
            "refused (they would make a reason or label read differently on the dashboard, in `kubectl events` and in a terminal; right-to-left text and its plain marks are fine)".into(),
            "BAD_USER_INPUT",
        ),
        row(
            "`take`",
            format!("0..={} or -1", crate::pool::MAX_TAKE),
            "BAD_USER_INPUT",
        ),
        row(
            "`pageNumber`",
            format!("0..={}", crate::pool::MAX_PAGE_NUMBER),
            "BAD_USER_INPUT",
        ),
        row(
            "`last` (`poolEvents`, `reclaimRuns` / a namespace's `events`)",
            "1..=1000 / 1..=500".into(),
            "BAD_USER_INPUT",
        ),
        row(
            "`olderThanDays`, `olderThan`",
            format!("0..={}", crate::config::MAX_OLDER_THAN_DAYS),
            "BAD_USER_INPUT (config check: exit 2)",
        ),
        row(
            "`triggerer.replicas`",
            format!("0..={}", crate::pool::MAX_TRIGGERER_REPLICAS),
            "BAD_USER_INPUT",
        ),
    ]
}
