//! The documented largest pool (`limits::MAX_POOL_NAMESPACES`, 100,000
//! namespaces) served as a user meets it: the astro CLI's and the UI's reads
//! of the whole pool answer, every budget that grows with the pool lets one
//! whole read through and still refuses what multiplies it, and the largest
//! answers are built a few at a time.

use crate::support::{TestApp, pool_config};
use nspool::graphql::limits::{MAX_POOL_NAMESPACES, PoolBudgets};
use serde_json::{Value, json};
use sqlx::PgPool;

/// `count` names of the longest kind (63 characters, a DNS label's most):
/// the widest answer every byte budget must fit.
pub fn longest_names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("ns-{i:060}")).collect()
}

/// A server on a pool of [`MAX_POOL_NAMESPACES`] longest names.
async fn largest_pool(db: PgPool) -> TestApp {
    let names = longest_names(MAX_POOL_NAMESPACES);
    TestApp::spawn(
        &pool_config(&names, "nspool: {kubernetes: {mode: 'off'}}"),
        db,
    )
    .await
}

/// Introspection nested as deep as the limits allow, in 24 aliases: about
/// 10 MiB of answer, past the fixed budgets, inside the largest pool's.
fn deep_introspection() -> String {
    let inner = "fields { name type { name ofType { name fields { name type { name ofType { name ofType { name fields { name } } } } } ofType { name fields { name type { name ofType { name fields { name } } } } } } } }";
    let aliases: String = (0..24)
        .map(|i| format!("a{i}: __schema {{ types {{ name {inner} }} }} "))
        .collect();
    format!("{{ {aliases} }}")
}

fn listed(data: &Value, field: &str) -> usize {
    data[field].as_array().map_or(0, Vec::len)
}

#[sqlx::test]
async fn the_largest_pool_is_read_whole_and_what_multiplies_it_is_refused(db: PgPool) {
    let app = largest_pool(db).await;
    let admin = app.admin().await;
    let editor = app.token("SYSTEM_EDITOR", None).await;

    // The astro CLI's read in both of its eras' shapes (anonymous and a
    // named operation), the UI's with `__typename`: each answers whole, and
    // again from memory.
    let cli = crate::documents::AVAILABLE_NAMESPACES;
    for (document, token) in [
        ("{ availableNamespaces { name } }", &editor),
        (cli, &editor),
        ("{ availableNamespaces { name __typename } }", &admin),
        (cli, &admin),
    ] {
        let data = app.ok(Some(token), document, Value::Null).await;
        assert_eq!(
            listed(&data, "availableNamespaces"),
            MAX_POOL_NAMESPACES,
            "{document}"
        );
    }
    // One whole read of the pool view, with up to three fields.
    for document in [
        "{ poolNamespaces { name } }",
        "{ poolNamespaces { name state } }",
        "{ poolNamespaces { name state source } }",
    ] {
        let data = app.ok(Some(&admin), document, Value::Null).await;
        assert_eq!(
            listed(&data, "poolNamespaces"),
            MAX_POOL_NAMESPACES,
            "{document}"
        );
    }

    // Every scalar field of every namespace is more than a whole read: one
    // clear error before a row is read, never partial data.
    let budgets = PoolBudgets::for_pool(MAX_POOL_NAMESPACES);
    let every_field = "{ poolNamespaces { name state source addedAt claimedAt retiredAt reclaimableAt note rbacState rbacMissing rbacCheckedAt managed rbacApplied labelsInSync kubeError kubeErrorAt kubeNextAttemptAt releasingSince leftovers leftoversCheckedAt labelsMissing } }";
    let error = app
        .err(Some(&admin), every_field, Value::Null, "BAD_USER_INPUT")
        .await;
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("more than {} values", budgets.response_values)),
        "{message}"
    );
    // Two whole reads of the widest kind in one request are refused too.
    let twice = "{ a: poolNamespaces { name state source } b: poolNamespaces { name } }";
    app.err(Some(&admin), twice, Value::Null, "BAD_USER_INPUT")
        .await;
    // A document that multiplies lists (introspection, never charged by
    // rows) meets budgets that grew with the pool but no further: answered
    // within them or refused as a whole, never partial.
    let (status, answer) = app
        .post_raw(
            Some(&admin),
            json!({"query": deep_introspection()}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    match answer["errors"][0]["message"].as_str() {
        Some(message) => assert!(
            answer["data"].is_null()
                && (message.contains(&format!("{} field resolutions", budgets.resolver_runs))
                    || message.contains(&format!("limit of {}", budgets.response_bytes))),
            "{message}"
        ),
        None => assert!(serde_json::to_vec(&answer).unwrap().len() <= budgets.response_bytes),
    }

    // The answer budget's backstop in bytes fits the widest whole read.
    let (status, body) = app
        .post_raw(
            Some(&admin),
            json!({"query": "{ availableNamespaces { name __typename } }"}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert!(body["data"]["availableNamespaces"].is_array());
    assert!(
        serde_json::to_vec(&body).unwrap().len() <= budgets.response_bytes,
        "the widest pure read fits the byte budget"
    );
}

/// The large-answer budget: with its permits taken, a whole read waits a
/// little, then answers 503 with Retry-After, while small answers and the
/// reads served from memory go on.
#[sqlx::test]
async fn large_answers_wait_for_a_permit_while_others_are_served(db: PgPool) {
    let app = largest_pool(db).await;
    let admin = app.admin().await;
    // Kept in memory first (once the pool copy is loaded): served without a
    // permit from now on.
    let loaded = std::time::Instant::now();
    while app.service.snapshot().version().is_none() {
        assert!(
            loaded.elapsed() < std::time::Duration::from_secs(60),
            "the pool copy loads"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let cached = app
        .ok(
            Some(&admin),
            "{ availableNamespaces { name } }",
            Value::Null,
        )
        .await;
    assert_eq!(listed(&cached, "availableNamespaces"), MAX_POOL_NAMESPACES);

    let held = app
        .large_answers
        .try_hold(u32::try_from(nspool::graphql::LARGE_ANSWERS).unwrap())
        .expect("every permit is free");
    let (status, answer) = app
        .post_raw(
            Some(&admin),
            json!({"query": "{ poolNamespaces { name state } }"}).to_string(),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(
        answer["errors"][0]["extensions"]["code"],
        "SERVICE_UNAVAILABLE"
    );
    assert!(answer.get("data").is_none(), "{answer}");
    // Introspection as large waits the same way.
    let (status, _) = app
        .post_raw(
            Some(&admin),
            json!({"query": deep_introspection()}).to_string(),
        )
        .await;
    assert_eq!(status, 503);
    // Meanwhile: a small answer, and the CLI's read from memory.
    let small = app
        .ok(
            Some(&admin),
            "{ workspaces { id } appConfig { version } }",
            Value::Null,
        )
        .await;
    assert!(small["workspaces"].is_array());
    let again = app
        .ok(
            Some(&admin),
            "{ availableNamespaces { name } }",
            Value::Null,
        )
        .await;
    assert_eq!(listed(&again, "availableNamespaces"), MAX_POOL_NAMESPACES);
    let metrics = app.metrics().await;
    assert!(
        crate::support::metric_value(
            &metrics,
            "nspool_budget_refusals_total{budget=\"large_answers\"}"
        )
        .is_some_and(|v| v >= 1.0),
        "counted"
    );
    drop(held);
    let data = app
        .ok(
            Some(&admin),
            "{ poolNamespaces { name state } }",
            Value::Null,
        )
        .await;
    assert_eq!(listed(&data, "poolNamespaces"), MAX_POOL_NAMESPACES);
}
