//! Pool errors → GraphQL errors with `extensions.code`, in one place; and the
//! codes for errors async-graphql raises itself (parse, validation, input).

use crate::pool;
use async_graphql::{ErrorExtensions, ServerError};

pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
pub const INTERNAL: &str = "INTERNAL";
/// The database (or a budget of this replica) cannot take the request now;
/// HTTP 503 with Retry-After at the transport.
pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";

/// Every `extensions.code` nspool answers.
pub const CODES: &[&str] = &[
    PARSE_FAILED,
    VALIDATION_FAILED,
    BAD_USER_INPUT,
    "NOT_FOUND",
    "CONFLICT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    SERVICE_UNAVAILABLE,
    INTERNAL,
];

pub fn to_graphql(error: &pool::Error) -> async_graphql::Error {
    let (code, required_role) = match error {
        pool::Error::BadInput(_) => (BAD_USER_INPUT, None),
        pool::Error::NotFound(_) => ("NOT_FOUND", None),
        pool::Error::Conflict(_) => ("CONFLICT", None),
        pool::Error::Unauthenticated { required_role } => ("UNAUTHENTICATED", Some(*required_role)),
        pool::Error::Forbidden { required_role } => ("FORBIDDEN", Some(*required_role)),
        pool::Error::Unavailable(source) => {
            tracing::warn!(error = %source, "database unavailable");
            return async_graphql::Error::new(error.to_string())
                .extend_with(|_, e| e.set("code", SERVICE_UNAVAILABLE));
        }
        pool::Error::Internal(source) => {
            tracing::error!(error = %source, "internal error while answering a GraphQL request");
            return async_graphql::Error::new(
                "Internal error in nspool; the service logs have the details",
            )
            .extend_with(|_, e| e.set("code", INTERNAL));
        }
    };
    let unauthenticated = matches!(error, pool::Error::Unauthenticated { .. });
    async_graphql::Error::new(error.to_string()).extend_with(|_, e| {
        e.set("code", code);
        if let Some(role) = required_role {
            e.set("requiredRole", role.as_str());
        }
        // The message itself is Houston's, word for word (the astro CLI
        // recognises it); where to get a token goes beside it.
        if unauthenticated {
            e.set(
                "help",
                "Send a token as `Authorization: <token>`; /v1/token on this server says how to get one",
            );
        }
    })
}

/// The answer to a request whose lists did not fit its response budget of
/// `limit` values (more on a larger pool: `limits::PoolBudgets`).
pub fn too_large_message(limit: usize) -> String {
    format!(
        "The answer would hold more than {limit} values; ask for fewer fields or fewer items (take and pageNumber, last)"
    )
}

/// A list that does not fit the response budget.
pub fn too_large(limit: usize) -> async_graphql::Error {
    async_graphql::Error::new(too_large_message(limit))
        .extend_with(|_, e| e.set("code", BAD_USER_INPUT))
}

/// The answer to a request whose large answer found no permit in time
/// (`large_answers`): the client tries again, as after any 503.
pub fn busy_message() -> String {
    "nspool is building its largest answers for other requests right now; try again in a moment"
        .into()
}

/// A large answer that found no permit in time.
pub fn busy() -> async_graphql::Error {
    async_graphql::Error::new(busy_message()).extend_with(|_, e| e.set("code", SERVICE_UNAVAILABLE))
}

/// `.gql()?` in resolvers: the one conversion from a pool result.
pub trait GqlResult<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResult<T> for Result<T, pool::Error> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| to_graphql(&e))
    }
}

/// Gives every error of a response a code and Houston's wording. Errors raised
/// by resolvers already carry one; the others come from async-graphql itself.
pub fn classify(errors: &mut [ServerError]) {
    for error in errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if has_code {
            continue;
        }
        // The astro CLI matches this wording of an unknown field.
        if let Some(rest) = error.message.strip_prefix("Unknown field ") {
            let rest = rest.split(". Did you mean").next().unwrap_or(rest);
            let rest = rest.trim_end_matches('.');
            error.message = format!("Cannot query field {rest}.");
        }
        // Resolvers code every error they raise (`to_graphql`), so an uncoded
        // error on a field comes from async-graphql reading that field's
        // arguments: a literal or variable that does not fit its type, or a
        // variable the document never declared. Without a path it is
        // validation's, except a literal of the wrong type, worded so:
        let bad_literal = error.message.starts_with("Invalid value for argument")
            || error.message.starts_with("Failed to parse")
            || error.message.starts_with("Expected input type");
        let code = if error.path.is_empty() && !bad_literal {
            VALIDATION_FAILED
        } else {
            tracing::debug!(message = %error.message, "a field's arguments could not be read");
            BAD_USER_INPUT
        };
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
}
