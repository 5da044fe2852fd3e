//! A bounded fuzz loop in the normal suite: documents and variables made by
//! mutating the astro CLI's documents and the hostile corpus, sent to the
//! in-process router with every kind of caller. Every answer must be JSON
//! with `data` and/or coded `errors`, never INTERNAL, never slower than its
//! bound; afterwards every list still reads. `NSPOOL_FUZZ_SECONDS` (default
//! 20) sets the time, `NSPOOL_FUZZ_SEED` replays a run.

use crate::documents::*;
use crate::hostile::hostile_documents;
use crate::support::{POOL_OF_5, TestApp, assert_no_internals};
use axum::body::Body;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

/// The most one answer may take, in a debug build on a busy 2-core machine.
const ANSWER_BOUND: Duration = Duration::from_secs(5);

const FRAGMENTS: [&str; 24] = [
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "...",
    " @skip(if: true) ",
    " @include(if: $v) ",
    "\"\\u0000\"",
    "\"a\\u0000b\"",
    "-1",
    "2147483648",
    "-2147483649",
    "1e400",
    "null",
    " $v ",
    " fragment F on Query { __typename } ",
    " ...F ",
    " a: ",
    " __typename ",
    "\"",
    "#",
    "\"\"\"",
];

fn random_string(rng: &mut StdRng) -> Value {
    let choices = [
        String::new(),
        "pool-a".into(),
        "a\u{0}b".into(),
        "x".repeat(rng.random_range(1..5_000)),
        "ünïcödé 🚀".into(),
        uuid::Uuid::new_v4().to_string(),
        "-1".into(),
        "LocalExecutor".into(),
        "Not_Valid".into(),
    ];
    json!(choices[rng.random_range(0..choices.len())].clone())
}

fn random_value(rng: &mut StdRng, depth: usize) -> Value {
    match rng.random_range(0..9) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!([i64::MIN, -1, 0, 1, i64::from(i32::MAX) + 1, i64::MAX][rng.random_range(0..6)]),
        3 => json!(rng.random::<f64>() * 1e300),
        4 | 5 => random_string(rng),
        6 if depth < 100 => {
            let mut value = random_value(rng, depth + 1);
            for _ in 0..rng.random_range(1..100) {
                value = json!([value]);
            }
            value
        }
        7 if depth < 100 => {
            json!({"config": random_value(rng, depth + 1), "label": random_string(rng)})
        }
        _ => json!(rng.random_range(-20i32..20)),
    }
}

fn mutate_document(rng: &mut StdRng, document: &str) -> String {
    let mut chars: Vec<char> = document.chars().collect();
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..=chars.len());
        match rng.random_range(0..5) {
            0 => {
                let fragment = FRAGMENTS[rng.random_range(0..FRAGMENTS.len())];
                chars.splice(at..at, fragment.chars());
            }
            1 if !chars.is_empty() => {
                let end = (at + rng.random_range(1..20)).min(chars.len());
                let start = at.min(end);
                chars.drain(start..end);
            }
            2 if !chars.is_empty() => {
                let end = (at + rng.random_range(1..200)).min(chars.len());
                let start = at.min(end);
                let copy: Vec<char> = chars[start..end].to_vec();
                for _ in 0..rng.random_range(1..4) {
                    chars.splice(end..end, copy.iter().copied());
                }
            }
            3 => {
                let depth = rng.random_range(1..200);
                let (open, close) = [("[", "]"), ("{a: ", "}"), ("(", ")")][rng.random_range(0..3)];
                let wrapped = format!("{}1{}", open.repeat(depth), close.repeat(depth));
                chars.splice(at..at, wrapped.chars());
            }
            _ => {
                let fragment = ["0", "-1", "99999999999", "1000", "-5"][rng.random_range(0..5)];
                chars.splice(at..at, fragment.chars());
            }
        }
    }
    chars.into_iter().collect()
}

fn mutate_variables(rng: &mut StdRng, variables: &Value) -> Value {
    let mut variables = variables.clone();
    if rng.random_range(0..10) == 0 {
        return random_value(rng, 0);
    }
    if let Some(map) = variables.as_object_mut() {
        let keys: Vec<String> = map.keys().cloned().collect();
        for _ in 0..rng.random_range(0..3) {
            let key = if keys.is_empty() || rng.random_range(0..4) == 0 {
                "v".to_owned()
            } else {
                keys[rng.random_range(0..keys.len())].clone()
            };
            map.insert(key, random_value(rng, 0));
        }
    }
    variables
}

fn check_answer(status: u16, text: &str, elapsed: Duration, what: &str) {
    assert!(
        [200, 400, 413, 503].contains(&status),
        "{what}: status {status}: {text}"
    );
    assert!(elapsed < ANSWER_BOUND, "{what}: took {elapsed:?}");
    let value: Value =
        serde_json::from_str(text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
    assert!(
        value.get("data").is_some() || value.get("errors").is_some(),
        "{what}: {text}"
    );
    if let Some(errors) = value.get("errors") {
        let errors = errors.as_array().expect("errors is a list");
        assert!(!errors.is_empty(), "{what}: empty errors");
        for error in errors {
            let code = error["extensions"]["code"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: uncoded error {error}"));
            assert_ne!(code, "INTERNAL", "{what}: {error}");
            let message = error["message"].as_str().expect("message");
            assert!(!message.is_empty(), "{what}: {error}");
            assert_no_internals(message);
        }
    }
}

#[sqlx::test]
async fn fuzzed_requests_never_crash_hang_or_poison(db: PgPool) {
    let seconds: u64 = std::env::var("NSPOOL_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("NSPOOL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("fuzz seed {seed} (NSPOOL_FUZZ_SEED={seed} replays it), {seconds} s");
    let mut rng = StdRng::seed_from_u64(seed);

    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "fuzz").await;
    let created = app
        .ok(
            Some(&admin),
            CREATE_DEPLOYMENT,
            json!({"label": "held", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-a"}),
        )
        .await;
    let held = created["createDeployment"]["id"].clone();
    let callers = [
        None,
        Some(admin.clone()),
        Some(app.token("WORKSPACE_EDITOR", Some(ws)).await),
        Some(app.token("WORKSPACE_VIEWER", Some(ws)).await),
        Some(app.token("SYSTEM_VIEWER", None).await),
        Some("nsp_0000".to_owned()),
    ];
    let deployment_vars = json!({"label": "f", "workspaceId": ws, "executor": "CeleryExecutor", "namespace": "pool-b", "config": {"a": 1}});
    let mut seeds: Vec<(String, Value)> = vec![
        (VERSION_PROBE.into(), Value::Null),
        (APP_CONFIG.into(), json!({"clusterId": null})),
        (AUTH_CONFIG.into(), json!({"redirect": null})),
        (WORKSPACES.into(), Value::Null),
        (
            PAGINATED_WORKSPACES.into(),
            json!({"pageSize": 10, "pageNumber": 0}),
        ),
        (WORKSPACE.into(), json!({"workspaceUuid": ws})),
        (CREATE_WORKSPACE.into(), json!({"label": "w"})),
        (AVAILABLE_NAMESPACES.into(), Value::Null),
        (CREATE_DEPLOYMENT.into(), deployment_vars.clone()),
        (WORKSPACE_DEPLOYMENTS.into(), json!({"workspaceId": ws})),
        (PAGINATED_DEPLOYMENTS.into(), Value::Null),
        (DEPLOYMENT.into(), json!({"id": held})),
        (
            UPDATE_DEPLOYMENT.into(),
            json!({"deploymentId": held, "payload": {"label": "g"}}),
        ),
        (DELETE_DEPLOYMENT.into(), json!({"deploymentId": held})),
        (
            UPSERT_DEPLOYMENT.into(),
            json!({"deploymentId": held, "label": "h"}),
        ),
        (INTROSPECTION.into(), Value::Null),
        (
            "{ poolNamespaces { name state deployment { releaseName } events(last: 5) { kind } } }"
                .into(),
            Value::Null,
        ),
        (
            "{ poolEvents(last: 1000) { id kind actor } reclaimRuns { id } reclaimJob { note } }"
                .into(),
            Value::Null,
        ),
        (
            "mutation { reclaimDeployments(olderThanDays: 14, dryRun: true) { count } }".into(),
            Value::Null,
        ),
        (
            "mutation($name: String!, $reason: String!) { markNamespaceClean(name: $name, reason: $reason) }"
                .into(),
            json!({"name": "pool-c", "reason": "fuzz"}),
        ),
        // Pool reads answered from kept bytes: aliases, __typename, names.
        (
            "query q { a: availableNamespaces { n: name __typename } __typename }".into(),
            Value::Null,
        ),
        (
            "{ poolNamespaces { name state leftovers leftoversCheckedAt releasingSince labelsMissing note } }"
                .into(),
            Value::Null,
        ),
        (
            "mutation($l: String!) { createToken(role: \"SYSTEM_VIEWER\", label: $l) { id } }"
                .into(),
            json!({"l": "t"}),
        ),
    ];
    seeds.extend(
        hostile_documents()
            .into_iter()
            .map(|(_, d)| (d, Value::Null)),
    );

    let router = nspool::http::router(nspool::app::state(app.service.clone()));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut sent = 0u64;
    let mut slowest = Duration::ZERO;
    while Instant::now() < deadline {
        let (document, variables) = &seeds[rng.random_range(0..seeds.len())];
        let document = if rng.random_range(0..5) == 0 {
            document.clone()
        } else {
            mutate_document(&mut rng, document)
        };
        let variables = mutate_variables(&mut rng, variables);
        let caller = &callers[rng.random_range(0..callers.len())];
        let body = json!({"query": document, "variables": variables}).to_string();
        let mut request = http::Request::post("/v1")
            .header("content-type", "application/json")
            .header("host", "127.0.0.1:8871");
        if let Some(token) = caller {
            request = request.header("authorization", token);
        }
        let request = request.body(Body::from(body)).expect("request");
        let started = Instant::now();
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let elapsed = started.elapsed();
        slowest = slowest.max(elapsed);
        let what = format!(
            "seed {seed}, request {sent}: {}",
            document.chars().take(200).collect::<String>()
        );
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Err(failure) =
            std::panic::catch_unwind(|| check_answer(status, &text, elapsed, &what))
        {
            // The whole request, to replay it by hand.
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{seed}-{sent}.json"));
            let _ = std::fs::write(
                &file,
                json!({"query": document, "variables": variables}).to_string(),
            );
            eprintln!("fuzz: the failing request is in {}", file.display());
            std::panic::resume_unwind(failure);
        }
        sent += 1;
    }
    println!("fuzz: {sent} requests, slowest {slowest:?}");
    assert!(sent > 100, "only {sent} requests in {seconds} s");

    // Nothing stored makes a read fail.
    for document in [
        PAGINATED_DEPLOYMENTS,
        WORKSPACES,
        "{ poolNamespaces { name state deployment { id label releaseName dagDeployment { type } workspace { label } } events { kind reason } } }",
        "{ poolEvents(last: 1000) { id kind namespace actor reason } reclaimRuns(last: 1000) { id } }",
    ] {
        app.ok(Some(&admin), document, Value::Null).await;
    }
}
