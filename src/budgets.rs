//! Every resource a client can make nspool spend, as one list: its limit,
//! where the limit is set, what a client gets past it and what counts it.
//! `docs/operations.md` holds [`markdown`] (a test keeps them equal), and
//! every row names the integration test that drives it past its limit while
//! other clients are still served (a test checks each named test exists).
//! Pure data: the limits themselves are enforced where the resource is used.
//! The table is assembled here from the constants of every layer, and no
//! layer imports it back: the budgets' names and shared numbers live low,
//! in `domain::budget`, where every layer (and `metrics`) reads them.

use crate::config::HttpSettings;

pub use crate::domain::budget::{
    Budget, CREDENTIAL_CHECK_WAIT, CREDENTIAL_CHECKS, PROBE_TIMEOUT, credential_checks,
};

/// One row of the budgets table.
pub struct Row {
    pub resource: &'static str,
    pub default: String,
    pub key: &'static str,
    pub past_it: &'static str,
    pub metric: String,
    /// `module::test_name` under `tests/it/`.
    pub test: &'static str,
}

fn refusals(budget: Budget) -> String {
    format!(
        "`nspool_budget_refusals_total{{budget=\"{}\"}}`",
        budget.name()
    )
}

/// Every budget, with the defaults of this build.
pub fn table() -> Vec<Row> {
    use crate::graphql::limits as gl;
    let http = HttpSettings::default();
    let row = |resource, default: String, key, past_it, metric: String, test| Row {
        resource,
        default,
        key,
        past_it,
        metric,
        test,
    };
    vec![
        row(
            "connection: headers complete after connecting or after the last answer",
            format!("{} s", http.header_read_timeout_seconds),
            "`nspool.http.headerReadTimeoutSeconds`",
            "HTTP 408, close (an idle keep-alive connection: close)",
            refusals(Budget::HeaderRead),
            "connections::slow_clients_are_closed_while_others_are_served",
        ),
        row(
            "connection: the request line and headers (and a chunked body's trailers)",
            format!(
                "{} bytes, {} header lines",
                crate::http::server::MAX_HEADER_BYTES,
                crate::http::server::MAX_HEADERS
            ),
            "(fixed)",
            "HTTP 431, close (a GET document that long belongs in a POST body)",
            refusals(Budget::HeaderSize),
            "connections::oversized_request_heads_are_refused_while_others_are_served",
        ),
        row(
            "connection: body complete after its headers",
            format!("{} s", http.body_read_timeout_seconds),
            "`nspool.http.bodyReadTimeoutSeconds`",
            "HTTP 408, close; no permit was taken",
            refusals(Budget::BodyRead),
            "budgets::stalled_bodies_hold_no_permit_and_are_closed",
        ),
        row(
            "connection: the client takes some of its answer",
            format!("{} s", http.response_write_timeout_seconds),
            "`nspool.http.responseWriteTimeoutSeconds`",
            "closed",
            refusals(Budget::ResponseWrite),
            "budgets::clients_that_never_read_are_closed",
        ),
        row(
            "open connections (lowered to the open-file limit less 256)",
            http.max_connections.to_string(),
            "`nspool.http.maxConnections`",
            "HTTP 503, Retry-After: 1, close",
            refusals(Budget::Connections),
            "connections::open_connections_are_capped",
        ),
        row(
            "request body size",
            format!("{} bytes", gl::MAX_DOCUMENT_BYTES),
            "(fixed)",
            "HTTP 413, BAD_USER_INPUT, close",
            refusals(Budget::BodySize),
            "budgets::oversized_bodies_are_refused_before_they_are_read",
        ),
        row(
            "request bodies held in memory at once while they arrive",
            format!("{} MiB", http.body_buffer_mebibytes),
            "`nspool.http.bodyBufferMebibytes`",
            "HTTP 503, SERVICE_UNAVAILABLE, Retry-After: 1, close",
            refusals(Budget::BodyBuffer),
            "budgets::the_body_buffer_is_shared_and_refuses_past_it",
        ),
        row(
            "answers built for one request (GraphQL, dashboard pages, metrics; over 16 KiB) held in memory until their clients take them",
            format!("{} MiB", http.answer_buffer_mebibytes),
            "`nspool.http.answerBufferMebibytes`",
            "HTTP 503, SERVICE_UNAVAILABLE, Retry-After: 1 (instead of the answer)",
            refusals(Budget::AnswerBuffer),
            "scale::answers_nobody_reads_are_bounded_while_others_are_served",
        ),
        row(
            "requests answered at once on `/v1`, `/`, `/login`, `/logout` (taken once the body is in)",
            http.max_requests_in_flight.to_string(),
            "`nspool.http.maxRequestsInFlight`",
            "HTTP 503, SERVICE_UNAVAILABLE, Retry-After: 1",
            refusals(Budget::InFlight),
            "connections::long_requests_are_cancelled_and_excess_load_is_shed",
        ),
        row(
            "of those, requests without a valid token or session",
            http.max_anonymous_requests_in_flight.to_string(),
            "`nspool.http.maxAnonymousRequestsInFlight`",
            "HTTP 503, SERVICE_UNAVAILABLE, Retry-After: 1 (token holders keep the rest)",
            refusals(Budget::AnonymousInFlight),
            "budgets::anonymous_requests_never_take_the_token_holders_share",
        ),
        row(
            "token and session checks against the database at once",
            format!(
                "{CREDENTIAL_CHECKS}, at most a quarter of `databaseMaxConnections` ({} at its default); waited for {} s",
                credential_checks(16),
                CREDENTIAL_CHECK_WAIT.as_secs()
            ),
            "(fixed)",
            "served as anonymous (the request itself then answers UNAUTHENTICATED if it needs a token)",
            refusals(Budget::CredentialChecks),
            "budgets::token_checks_are_bounded_and_the_rest_are_served_as_anonymous",
        ),
        row(
            "time to answer one request; the work is cancelled",
            format!("{} s", http.request_timeout_seconds),
            "`nspool.http.requestTimeoutSeconds`",
            "HTTP 503, SERVICE_UNAVAILABLE, Retry-After: 1",
            refusals(Budget::RequestTime),
            "connections::long_requests_are_cancelled_and_excess_load_is_shed",
        ),
        row(
            "document size, tokens, nesting, fields, depth, aliases, cost (the limits table in the README)",
            format!(
                "{} bytes, {} tokens, {} fields",
                gl::MAX_DOCUMENT_BYTES,
                gl::MAX_TOKENS,
                gl::MAX_FIELDS
            ),
            "(fixed)",
            "HTTP 200, GRAPHQL_PARSE_FAILED or GRAPHQL_VALIDATION_FAILED, before execution",
            refusals(Budget::Document),
            "hostile::hostile_documents_are_refused_and_the_process_lives_on",
        ),
        row(
            "resolver runs per request (identical fields are merged first, as GraphQL's field collection says)",
            format!(
                "{}; on a larger pool one whole read more ({} per namespace, up to {} namespaces: {})",
                gl::MAX_RESOLVER_RUNS,
                gl::WHOLE_POOL_READ_VALUES,
                gl::MAX_POOL_NAMESPACES,
                gl::PoolBudgets::for_pool(gl::MAX_POOL_NAMESPACES).resolver_runs
            ),
            "(fixed; grows with the configured pool)",
            "HTTP 200, BAD_USER_INPUT, one error, no partial data",
            refusals(Budget::ResolverRuns),
            "budgets::repeated_fields_cost_their_distinct_work",
        ),
        row(
            "database connections one request holds at once",
            format!(
                "{}, waited for {} s",
                http.database_connections_per_request,
                crate::store::ACQUIRE_TIMEOUT.as_secs()
            ),
            "`nspool.http.databaseConnectionsPerRequest`",
            "HTTP 503, SERVICE_UNAVAILABLE, Retry-After: 1",
            "`nspool_request_database_waits_timed_out_total`".into(),
            "budgets::one_request_holds_a_few_database_connections",
        ),
        row(
            "values in an answer / its serialized size",
            format!(
                "{} values / {} bytes; on a larger pool one whole read of {} fields a namespace more (at {} namespaces: {} values / {} bytes)",
                gl::MAX_RESPONSE_VALUES,
                gl::MAX_RESPONSE_BYTES,
                gl::WHOLE_POOL_READ_FIELDS,
                gl::MAX_POOL_NAMESPACES,
                gl::PoolBudgets::for_pool(gl::MAX_POOL_NAMESPACES).response_values,
                gl::PoolBudgets::for_pool(gl::MAX_POOL_NAMESPACES).response_bytes
            ),
            "(fixed; grows with the configured pool, so one read of the whole pool fits)",
            "HTTP 200, BAD_USER_INPUT, one error",
            refusals(Budget::AnswerSize),
            "hostile::list_sizes_count_and_big_answers_are_refused_before_they_are_built",
        ),
        row(
            "answers past the fixed values or runs budget built at once (whole-pool reads; answers kept in memory need none)",
            format!(
                "{}, waited for {} s",
                crate::graphql::LARGE_ANSWERS,
                crate::graphql::LARGE_ANSWER_WAIT.as_secs()
            ),
            "(fixed)",
            "HTTP 503, SERVICE_UNAVAILABLE, Retry-After: 1",
            refusals(Budget::LargeAnswers),
            "scale::large_answers_wait_for_a_permit_while_others_are_served",
        ),
        row(
            "errors in one answer; bytes of a refusal",
            format!(
                "{} errors (the last says how many more); {} KiB",
                gl::MAX_ERRORS,
                gl::MAX_REFUSAL_BYTES / 1024
            ),
            "(fixed)",
            "the errors past it are left out and counted in the last one",
            refusals(Budget::Errors),
            "budgets::errors_are_capped_and_refusals_are_small",
        ),
        row(
            "failed dashboard sign-ins per client address and minute",
            crate::http::SIGN_IN_TRIES_PER_MINUTE.to_string(),
            "(fixed)",
            "HTTP 429, Retry-After",
            refusals(Budget::SignIn),
            "dashboard::bad_tokens_and_cookies_get_the_form_and_guessing_is_limited",
        ),
        row(
            "the database: unreachable, refusing, out of connections or timing out",
            format!(
                "{} s to get a connection",
                crate::store::ACQUIRE_TIMEOUT.as_secs()
            ),
            "`nspool.databaseMaxConnections`",
            "HTTP 503, SERVICE_UNAVAILABLE, Retry-After: 1 (INTERNAL is for bugs only)",
            "`nspool_graphql_errors_total{code=\"SERVICE_UNAVAILABLE\"}`".into(),
            "budgets::an_unreachable_database_answers_503_and_probes_do_not_wait",
        ),
        row(
            "a token or session lookup waiting on a lock of its table (a restore, `lock table`)",
            format!(
                "{} s per lookup (statement timeout, per transaction)",
                crate::store::LOOKUP_TIMEOUT.as_secs()
            ),
            "(fixed)",
            "the lookup gives up, its connection and slot come back; HTTP 503, SERVICE_UNAVAILABLE, Retry-After: 1",
            "`nspool_graphql_errors_total{code=\"SERVICE_UNAVAILABLE\"}`".into(),
            "budgets::a_locked_tokens_table_holds_no_lookup_past_its_bound",
        ),
        row(
            "event-log rows the dashboard's chart reads (however fast Deployments come and go)",
            format!(
                "each namespace's last change per hour: at most the pool's size × {} hours",
                crate::pool::HISTORY_HOURS
            ),
            "(fixed)",
            "the rest is condensed away in the database; the chart is the same",
            "— (bounded by construction)".into(),
            "history::churn_costs_the_chart_no_more_than_the_pool_per_hour",
        ),
        row(
            "namespaces on one dashboard page and cells in its grid (a search's matches too; the whole pool is counted by state)",
            crate::pool::DASHBOARD_PAGE_SIZE.to_string(),
            "(fixed)",
            "the rest on further pages (`?page=N`, plain links that work without JavaScript); counted when a page leaves some out",
            refusals(Budget::DashboardPage),
            "dashboard::pages_and_searches_are_bounded_and_the_rest_is_counted",
        ),
        row(
            "dashboard pages rendered at once (a page read, its counts and its HTML)",
            format!(
                "{}, waited for {} s",
                crate::http::dashboard::renders::DASHBOARD_RENDERS,
                crate::http::dashboard::renders::DASHBOARD_RENDER_WAIT.as_secs()
            ),
            "(fixed)",
            "HTTP 503, Retry-After: 1, a short page (the page's reload tries again)",
            refusals(Budget::DashboardRenders),
            "dashboard::dashboard_renders_are_bounded_while_others_are_served",
        ),
        row(
            "live dashboard sessions of one token (kept by the database, concurrent sign-ins included)",
            crate::pool::MAX_SESSIONS_PER_TOKEN.to_string(),
            "(fixed)",
            "a sign-in past it ends that token's oldest session (signing in again always works)",
            "`nspool_dashboard_sessions`".into(),
            "dashboard::a_tokens_sessions_are_capped_and_the_oldest_end_first",
        ),
        row(
            "database reads for `/readyz` and `/metrics` (no token, outside the request caps)",
            format!(
                "1 at a time per probe, its outcome kept {} s",
                crate::http::probes::FRESH_FOR.as_secs()
            ),
            "(fixed)",
            "probes meanwhile share the read under way or the kept outcome (figures at most 1 s old)",
            "`nspool_probe_database_reads_total{probe}`".into(),
            "probes::a_flood_of_probes_costs_the_database_about_one_read_a_second",
        ),
        row(
            "`/metrics` and `/readyz` waiting on the database",
            format!("{} s", PROBE_TIMEOUT.as_secs()),
            "(fixed)",
            "`/readyz` 503; `/metrics` answers with the last good pool figures and `nspool_database_up 0`",
            "`nspool_database_up`".into(),
            "budgets::an_unreachable_database_answers_503_and_probes_do_not_wait",
        ),
        row(
            "shutdown: open connections served after SIGTERM (readiness false at once)",
            format!("{} s", http.drain_seconds),
            "`nspool.http.drainSeconds`",
            "each answer carries `Connection: close`; then idle connections close",
            "`nspool_http_requests_total`".into(),
            "budgets::shutdown_answers_every_request_it_read",
        ),
        row(
            "config file size (also what a reload and the change poll read, at most)",
            format!("{} MiB", crate::config::MAX_CONFIG_BYTES / (1024 * 1024)),
            "(fixed)",
            "`config check` and `serve` exit 2; a reload is refused and the running config stays; the error names the size",
            "`nspool_config_reloads_total{outcome=\"failed\"}` (reloads)".into(),
            "reload::a_config_grown_past_its_size_bound_is_refused_at_reload",
        ),
        row(
            "config nesting (checked in one linear pass before YAML parsing) and alias expansion",
            format!(
                "{} levels; aliases within the YAML reader's repetition limit",
                crate::config::MAX_CONFIG_NESTING
            ),
            "(fixed)",
            "exit 2 (a reload: refused), the error names the line or the repetition limit",
            "— (start-up)".into(),
            "budgets::config_size_and_nesting_are_refused_early",
        ),
        row(
            "clusters one nspool serves (`nspool.clusters`: each has its own Kubernetes client, worker, lease and watches)",
            format!("{}", crate::config::MAX_CLUSTERS),
            "(fixed)",
            "`config check` and `serve` exit 2; a reload is refused and the running config stays; the error names `nspool.clusters`",
            "`nspool_config_reloads_total{outcome=\"failed\"}` (reloads)".into(),
            "clusters::more_clusters_than_the_bound_are_refused_while_the_others_serve",
        ),
    ]
}

/// The table in `docs/operations.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "| resource | default | set by | past it | counted by | tested by |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for row in table() {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | `{}` |\n",
            row.resource, row.default, row.key, row.past_it, row.metric, row.test
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_checks_take_at_most_a_quarter_of_the_pool() {
        assert_eq!(credential_checks(16), 4);
        assert_eq!(credential_checks(1), 1);
        assert_eq!(credential_checks(3), 1);
        assert_eq!(credential_checks(64), 16);
        assert_eq!(credential_checks(1000), CREDENTIAL_CHECKS);
    }
}
