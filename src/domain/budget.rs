//! The budgets' names (the label of `nspool_budget_refusals_total`) and the
//! numbers several layers share. Pure data, low in the house: HTTP,
//! GraphQL and `metrics` read them here; `crate::budgets` assembles the
//! documented table from these and every layer's own limits.

/// A budget that refuses or cuts off: the label of `nspool_budget_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    HeaderRead,
    HeaderSize,
    BodyRead,
    BodySize,
    BodyBuffer,
    AnswerBuffer,
    ResponseWrite,
    Connections,
    InFlight,
    AnonymousInFlight,
    CredentialChecks,
    RequestTime,
    Document,
    ResolverRuns,
    DatabaseConnections,
    AnswerSize,
    LargeAnswers,
    DashboardRenders,
    DashboardPage,
    Errors,
    SignIn,
}

impl Budget {
    pub const ALL: [Budget; 21] = [
        Budget::HeaderRead,
        Budget::HeaderSize,
        Budget::BodyRead,
        Budget::BodySize,
        Budget::BodyBuffer,
        Budget::AnswerBuffer,
        Budget::ResponseWrite,
        Budget::Connections,
        Budget::InFlight,
        Budget::AnonymousInFlight,
        Budget::CredentialChecks,
        Budget::RequestTime,
        Budget::Document,
        Budget::ResolverRuns,
        Budget::DatabaseConnections,
        Budget::AnswerSize,
        Budget::LargeAnswers,
        Budget::DashboardRenders,
        Budget::DashboardPage,
        Budget::Errors,
        Budget::SignIn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Budget::HeaderRead => "header_read",
            Budget::HeaderSize => "header_size",
            Budget::BodyRead => "body_read",
            Budget::BodySize => "body_size",
            Budget::BodyBuffer => "body_buffer",
            Budget::AnswerBuffer => "answer_buffer",
            Budget::ResponseWrite => "response_write",
            Budget::Connections => "connections",
            Budget::InFlight => "in_flight",
            Budget::AnonymousInFlight => "anonymous_in_flight",
            Budget::CredentialChecks => "credential_checks",
            Budget::RequestTime => "request_time",
            Budget::Document => "document",
            Budget::ResolverRuns => "resolver_runs",
            Budget::DatabaseConnections => "database_connections",
            Budget::AnswerSize => "answer_size",
            Budget::LargeAnswers => "large_answers",
            Budget::DashboardRenders => "dashboard_renders",
            Budget::DashboardPage => "dashboard_page",
            Budget::Errors => "errors",
            Budget::SignIn => "sign_in",
        }
    }
}

/// Token or session checks against the database at once (a token this
/// replica verified in the last 30 s needs none); a request that waits
/// longer than [`CREDENTIAL_CHECK_WAIT`] for one is served as anonymous.
pub const CREDENTIAL_CHECKS: usize = 16;

/// The lookups at once for a replica with `database_max_connections`: at
/// most a quarter of its pool, so lookups stuck on a slow database never
/// take the connections everything else needs.
pub fn credential_checks(database_max_connections: u32) -> usize {
    let quarter = usize::try_from(database_max_connections / 4).unwrap_or(usize::MAX);
    CREDENTIAL_CHECKS.min(quarter.max(1))
}
pub const CREDENTIAL_CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// `/metrics` and `/readyz` wait this long for the database, at most.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
