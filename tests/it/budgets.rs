//! Every budget of docs/operations.md driven past its limit, with other
//! clients served meanwhile (the table names these tests; `docs` checks that
//! each named test exists).

use crate::documents::*;
use crate::support::{
    POOL_OF_5, TestApp, another_pool, metric_value, pool_config, pool_names, read_to_close,
};
use nspool::config::Settings;
use nspool::http::guard::RequestLimits;
use nspool::http::server::ConnectionLimits;
use nspool::store::Store;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `nspool_budget_refusals_total{budget="…"}` as scraped.
async fn refusals(app: &TestApp, budget: &str) -> u64 {
    let sample = format!("nspool_budget_refusals_total{{budget=\"{budget}\"}}");
    metric_value(&app.metrics().await, &sample).unwrap_or_else(|| panic!("no {sample} in /metrics"))
        as u64
}

fn limits(change: impl FnOnce(&mut RequestLimits)) -> RequestLimits {
    let mut limits = RequestLimits::default();
    change(&mut limits);
    limits
}

#[sqlx::test]
async fn stalled_bodies_hold_no_permit_and_are_closed(db: PgPool) {
    let requests = limits(|l| {
        l.max_in_flight = 4;
        l.max_anonymous_in_flight = 2;
        l.body_read_timeout = Duration::from_secs(2);
    });
    let app = TestApp::spawn_with(POOL_OF_5, db, ConnectionLimits::default(), requests).await;
    let admin = app.admin().await;
    // 64 times the in-flight cap: a request line, headers, half a body.
    let mut stalled = Vec::new();
    for _ in 0..256 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(b"POST /v1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"query\":")
            .await
            .unwrap();
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Token holders and anonymous clients are served beside them.
    assert_eq!(app.available(&admin).await.len(), 5);
    app.ok(None, VERSION_PROBE, Value::Null).await;
    let page = reqwest::get(app.url("/")).await.unwrap();
    assert_eq!(page.status(), 200, "the sign-in page");
    for stream in &mut stalled {
        let seen = read_to_close(stream, Duration::from_secs(20))
            .await
            .expect("a stalled body is closed");
        let text = String::from_utf8_lossy(&seen);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("connection: close"), "{text}");
    }
    assert_eq!(refusals(&app, "body_read").await, 256);
    app.ok(None, VERSION_PROBE, Value::Null).await;
}

#[sqlx::test]
async fn clients_that_never_read_are_closed(db: PgPool) {
    let connections = ConnectionLimits {
        response_write_timeout: Duration::from_secs(2),
        ..ConnectionLimits::default()
    };
    let app = TestApp::spawn_with(POOL_OF_5, db, connections, RequestLimits::default()).await;
    let asset = "/v1/assets/graphiql-3.8.3.min.js";
    let full = reqwest::get(app.url(asset))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    // Ten pipelined requests for the 3.5 MB bundle: more than any socket
    // buffer holds, and the client reads none of it.
    let mut readers = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        let one = format!("GET {asset} HTTP/1.1\r\nhost: x\r\n\r\n");
        stream.write_all(one.repeat(10).as_bytes()).await.unwrap();
        readers.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.ok(None, VERSION_PROBE, Value::Null).await;
    // Well past the write timeout, the server has given every one up.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(refusals(&app, "response_write").await, 8);
    for stream in &mut readers {
        let seen = read_to_close(stream, Duration::from_secs(20))
            .await
            .unwrap_or_default();
        assert!(
            seen.len() < 10 * full,
            "cut short: {} of {}",
            seen.len(),
            10 * full
        );
    }
    app.ok(None, VERSION_PROBE, Value::Null).await;
}

#[sqlx::test]
async fn oversized_bodies_are_refused_before_they_are_read(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"POST /v1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n")
        .await
        .unwrap();
    let seen = read_to_close(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed without the body");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("BAD_USER_INPUT"), "{text}");
    assert_eq!(refusals(&app, "body_size").await, 1);
    app.ok(None, VERSION_PROBE, Value::Null).await;
}

#[sqlx::test]
async fn the_body_buffer_is_shared_and_refuses_past_it(db: PgPool) {
    let requests = limits(|l| l.body_buffer_bytes = 1_000);
    let app = TestApp::spawn_with(POOL_OF_5, db, ConnectionLimits::default(), requests).await;
    let head = b"POST /v1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 900\r\n\r\n";
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    first.write_all(head).await.unwrap();
    first.write_all(&[b' '; 800]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    second.write_all(head).await.unwrap();
    second.write_all(&[b' '; 800]).await.unwrap();
    let seen = read_to_close(&mut second, Duration::from_secs(5))
        .await
        .expect("refused and closed");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("retry-after: 1"), "{text}");
    // A small body still fits beside the first one.
    app.ok(None, VERSION_PROBE, Value::Null).await;
    assert_eq!(refusals(&app, "body_buffer").await, 1);
    // The first one's share comes back when it ends.
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let big = format!(
        r#"{{"query": "{{ appConfig {{ version }} }}"{}}}"#,
        " ".repeat(900)
    );
    let (status, _) = app.post_raw(None, big).await;
    assert_eq!(status, 200);
}

#[sqlx::test]
async fn anonymous_requests_never_take_the_token_holders_share(db: PgPool) {
    let requests = limits(|l| {
        l.max_in_flight = 8;
        l.max_anonymous_in_flight = 2;
    });
    let app = TestApp::spawn_with(POOL_OF_5, db, ConnectionLimits::default(), requests).await;
    let admin = app.admin().await;
    // The listener is up (tokens are cached only while it is), then the
    // token is known to this replica: checked from memory from now on.
    let started = std::time::Instant::now();
    while app.service.snapshot().version().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the listener never came up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.available(&admin).await.len(), 5);
    // Sign-ins look their token up in a table that another session holds:
    // each anonymous sign-in stays in flight until it is let go.
    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("lock table api_tokens in access exclusive mode")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let mut anonymous = Vec::new();
    for i in 0..6 {
        let url = app.url("/login");
        anonymous.push(tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token=nsp_{i:064}"))
                .send()
                .await
                .unwrap();
            let retry = response.headers().get("retry-after").cloned();
            (response.status().as_u16(), retry)
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Anonymous GraphQL is shed too, while token holders are all served.
    let (status, shed_graphql) = app
        .post_raw(None, r#"{"query": "{ appConfig { version } }"}"#)
        .await;
    assert_eq!(status, 503, "{shed_graphql}");
    assert_eq!(
        shed_graphql["errors"][0]["extensions"]["code"],
        "SERVICE_UNAVAILABLE"
    );
    for _ in 0..6 {
        let pool = app
            .ok(Some(&admin), "{ poolNamespaces { name } }", Value::Null)
            .await;
        assert_eq!(pool["poolNamespaces"].as_array().unwrap().len(), 5);
    }
    blocker.rollback().await.unwrap();
    let (mut served, mut shed) = (0, 0);
    for request in anonymous {
        match request.await.unwrap() {
            (503, Some(retry)) => {
                assert_eq!(retry, "1");
                shed += 1;
            }
            (503, None) => panic!("a 503 without Retry-After"),
            _ => served += 1,
        }
    }
    assert_eq!((served, shed), (2, 4), "two in flight, the rest shed");
    assert_eq!(refusals(&app, "anonymous_in_flight").await, 5);
}

#[sqlx::test]
async fn token_checks_are_bounded_and_the_rest_are_served_as_anonymous(db: PgPool) {
    // A pool with room for the 16 stuck lookups and the rest, as a replica's
    // is sized (the lookups take at most a quarter of it:
    // `nspool::budgets::credential_checks`); the test's own pool has 5.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(64)
        .connect_with((*db.connect_options()).clone())
        .await
        .unwrap();
    let app = TestApp::spawn_on(
        POOL_OF_5,
        Store::new(pool),
        db,
        ConnectionLimits::default(),
        RequestLimits::default(),
    )
    .await;
    let admin = app.admin().await;
    // Tokens are kept in memory only while the listener is connected (so
    // revokes are heard): wait for it, then let this replica verify the token.
    let started = std::time::Instant::now();
    while app.service.snapshot().version().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the listener never connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.available(&admin).await.len(), 5);
    assert!(
        app.service.known_caller(&admin).is_some(),
        "the token is known from memory now"
    );
    // Token lookups wait on a table another session holds.
    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("lock table api_tokens in access exclusive mode")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let made_up: Vec<_> = (0..20)
        .map(|i| {
            let url = app.url("/v1");
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(url)
                    .header("authorization", format!("nsp_{i:064}"))
                    .json(&json!({"query": "{ appConfig { version } }"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    // Past the 16 lookups at once, each waits 1 s and goes on as anonymous:
    // `appConfig` needs no token, so those four are answered. The 16 wait on
    // the lock, for at most their bound (`LOOKUP_TIMEOUT`, 2 s).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let finished = made_up.iter().filter(|t| t.is_finished()).count();
    assert!(
        finished <= 20 - nspool::budgets::CREDENTIAL_CHECKS,
        "{finished} answered: a lookup that waits on the lock was answered before its bound"
    );
    assert_eq!(refusals(&app, "credential_checks").await, 4);
    // A token this replica knows needs no lookup.
    assert_eq!(app.available(&admin).await.len(), 5);
    // The waiting lookups give up at their bound, while the lock is still
    // held: every request is answered (anonymous `appConfig` needs no token).
    for request in made_up {
        let status = tokio::time::timeout(Duration::from_secs(20), request)
            .await
            .expect("answered while the lock is held")
            .unwrap();
        assert_eq!(status, 200);
    }
    blocker.rollback().await.unwrap();
}

#[sqlx::test]
async fn repeated_fields_cost_their_distinct_work(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let viewer = app.token("SYSTEM_VIEWER", None).await;
    // 499 copies are one field: the same answer as one copy.
    let once = app
        .ok(Some(&viewer), "{ poolNamespaces { name } }", Value::Null)
        .await;
    let copies = format!("{{ {} }}", "poolNamespaces { name } ".repeat(499));
    assert_eq!(app.ok(Some(&viewer), &copies, Value::Null).await, once);
    // Unmerged, these would run ~80,000 resolvers, past the budget; merged, a few hundred.
    let schema = format!("{{ {} }}", "__schema { types { name kind } } ".repeat(400));
    let answer = app.ok(None, &schema, Value::Null).await;
    // A fragment chain that spreads each next one twice doubles 28 times
    // unmerged; merged, it is 28 spreads long.
    let mut chain = String::from("{ ...F0 }\n");
    for i in 0..28 {
        chain.push_str(&format!(
            "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
            i + 1,
            i + 1
        ));
    }
    chain.push_str("fragment F28 on Query { appConfig { version } }");
    let version = app.ok(None, &chain, Value::Null).await;
    assert!(version["appConfig"]["version"].is_string(), "{version}");
    assert!(
        answer["__schema"]["types"].as_array().unwrap().len() > 20,
        "{answer}"
    );
    // Distinct work past the budget is refused as a whole, with one error.
    let aliases: String = (0..120)
        .map(|i| format!("a{i}: __schema {{ types {{ fields {{ name args {{ name type {{ name }} }} }} }} }} "))
        .collect();
    let (status, refused) = app
        .post_raw(
            None,
            json!({"query": format!("{{ {aliases} }}")}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert!(refused["data"].is_null(), "no partial data: {refused}");
    let errors = refused["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{refused}");
    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("field resolutions")
    );
    assert_eq!(refusals(&app, "resolver_runs").await, 1);
    app.ok(Some(&viewer), "{ poolNamespaces { name } }", Value::Null)
        .await;
}

/// Reads of the pool view (`poolNamespaces`) waiting on a lock; the
/// replica's own snapshot load is another statement.
async fn lock_waiters(db: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'
           and query like '%offered_changed_at from pool_namespaces p join clusters k%'",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn one_request_holds_a_few_database_connections(db: PgPool) {
    let requests = limits(|l| l.timeout = Duration::from_secs(8));
    let store = Store::new(another_pool(&db).await);
    let app = TestApp::spawn_on(POOL_OF_5, store, db, ConnectionLimits::default(), requests).await;
    let admin = app.admin().await;
    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("lock table pool_namespaces in access exclusive mode")
        .execute(&mut *blocker)
        .await
        .unwrap();
    // 100 aliases, each a read of the locked table, run at once by async-graphql.
    let aliases: String = (0..100)
        .map(|i| format!("a{i}: poolNamespaces {{ name }} "))
        .collect();
    let hungry = {
        let url = app.url("/v1");
        let admin = admin.clone();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("authorization", admin)
                .json(&json!({"query": format!("{{ {aliases} }}")}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    let waiting = lock_waiters(&app.db).await;
    assert!(
        (1..=3).contains(&waiting),
        "one request holds at most databaseConnectionsPerRequest (3): {waiting}"
    );
    // The pool (8 connections) still serves others.
    let workspaces = app
        .ok(Some(&admin), "{ workspaces { id } }", Value::Null)
        .await;
    assert!(workspaces["workspaces"].is_array(), "{workspaces}");
    let (status, answer) = hungry.await.unwrap();
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE",
        "{answer}"
    );
    blocker.rollback().await.unwrap();
    let waits = metric_value(
        &app.metrics().await,
        "nspool_request_database_waits_timed_out_total",
    );
    assert!(
        waits.is_some_and(|n| n > 0.0),
        "slot waits that timed out are counted: {waits:?}"
    );
}

#[sqlx::test]
async fn errors_are_capped_and_refusals_are_small(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let variables: String = (0..3_700).map(|_| "$a: Int ").collect();
    let document = format!("query Q({variables}) {{ appConfig {{ version }} }}");
    let body = json!({ "query": document }).to_string();
    let response = reqwest::Client::new()
        .post(app.url("/v1"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let bytes = response.bytes().await.unwrap();
    assert!(
        bytes.len() < nspool::graphql::limits::MAX_REFUSAL_BYTES,
        "{} bytes",
        bytes.len()
    );
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    let errors = answer["errors"].as_array().unwrap();
    assert!(errors.len() <= 100, "{}", errors.len());
    let last = errors.last().unwrap()["message"].as_str().unwrap();
    assert!(last.contains("more errors were left out"), "{last}");
    assert!(refusals(&app, "errors").await >= 1);
    app.ok(None, VERSION_PROBE, Value::Null).await;
}

#[sqlx::test]
async fn an_unreachable_database_answers_503_and_probes_do_not_wait(db: PgPool) {
    // Timing out: the tables /metrics and /readyz read are locked.
    let app = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("lock table pool_namespaces, _sqlx_migrations in access exclusive mode")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let metrics = app.metrics().await;
    assert!(metrics.contains("nspool_database_up 0"), "{metrics}");
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
    // Both waited the probe timeout (2 s) each, not the lock.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    blocker.rollback().await.unwrap();
    assert!(app.metrics().await.contains("nspool_database_up 1"));

    // Unreachable: this replica's pool is closed under it.
    let pool = another_pool(&db).await;
    let app = TestApp::spawn_on(
        POOL_OF_5,
        Store::new(pool.clone()),
        db,
        ConnectionLimits::default(),
        RequestLimits::default(),
    )
    .await;
    let admin = app.admin().await;
    app.ok(Some(&admin), "{ poolNamespaces { name } }", Value::Null)
        .await;
    pool.close().await;
    let response = reqwest::Client::new()
        .post(app.url("/v1"))
        .header("authorization", &admin)
        .json(&json!({"query": "{ poolNamespaces { name } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["errors"][0]["extensions"]["code"],
        "SERVICE_UNAVAILABLE"
    );
    assert!(
        app.metrics()
            .await
            .contains("nspool_graphql_errors_total{code=\"SERVICE_UNAVAILABLE\"} 1")
    );
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        503
    );
    assert!(app.metrics().await.contains("nspool_database_up 0"));
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
}

#[sqlx::test]
async fn shutdown_answers_every_request_it_read(db: PgPool) {
    let connections = ConnectionLimits {
        drain: Duration::from_secs(2),
        ..ConnectionLimits::default()
    };
    let app = TestApp::spawn_with(POOL_OF_5, db, connections, RequestLimits::default()).await;
    let body = r#"{"query":"{ appConfig { version } }"}"#;
    let request = format!(
        "POST /v1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    // 50 keep-alive clients asking again as soon as each answer is in.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..50 {
        let (addr, request, stop) = (app.addr, request.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let (mut answered, mut lost, mut closed_after_answer) = (0, 0, 0);
            let mut stream = TcpStream::connect(addr).await.unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if stream.write_all(request.as_bytes()).await.is_err() {
                    break;
                }
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                let complete = loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break false,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    let text = String::from_utf8_lossy(&seen);
                    if text.contains("\r\n\r\n") && text.trim_end().ends_with('}') {
                        break true;
                    }
                };
                if !complete {
                    lost += 1;
                    break;
                }
                answered += 1;
                if String::from_utf8_lossy(&seen).contains("connection: close") {
                    closed_after_answer += 1;
                    break;
                }
            }
            (answered, lost, closed_after_answer)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.shutdown.send(true).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut answered, mut lost, mut closed) = (0, 0, 0);
    for client in clients {
        let (a, l, c) = client.await.unwrap();
        answered += a;
        lost += l;
        closed += c;
    }
    assert!(answered > 50, "{answered}");
    assert_eq!(lost, 0, "every request written was answered");
    assert_eq!(closed, 50, "each connection was told to close by an answer");
    app.stop_server().await;
    assert!(
        TcpStream::connect(app.addr).await.is_err(),
        "the listener is closed"
    );
}

#[test]
fn config_size_and_nesting_are_refused_early() {
    let env = |_: &str| None;
    let big = format!("# {}\n", "x".repeat(nspool::config::MAX_CONFIG_BYTES));
    let error = Settings::parse(&big, &env).unwrap_err().to_string();
    assert!(error.contains(&format!("{} bytes", big.len())), "{error}");
    let nested = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let error = Settings::parse(&nested, &env).unwrap_err().to_string();
    assert!(
        error.contains("line 1") && error.contains("nested more than"),
        "{error}"
    );
    // Aliases that expand exponentially (a "billion laughs" of 2 KiB): the
    // YAML reader's repetition limit refuses them at once, in little memory.
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for level in 1..12 {
        let items = vec![format!("*a{}", level - 1); 9].join(", ");
        bomb.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    let started = std::time::Instant::now();
    let error = Settings::parse(&bomb, &env).unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(error.contains("repetition limit"), "{error}");
    // A 100,000-name pool is read (duplicates found by lookup, not by scan).
    let mut names = pool_names(100_000);
    let settings = Settings::parse(&pool_config(&names, ""), &env).unwrap();
    assert_eq!(settings.pool_size(), 100_000);
    names.push("ns-000".into());
    let error = Settings::parse(&pool_config(&names, ""), &env)
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"ns-000\" is listed twice"), "{error}");
}

#[sqlx::test]
async fn metric_families_exist_from_the_start(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let metrics = app.metrics().await;
    for line in [
        "nspool_claim_duration_seconds_count{outcome=\"ok\"} 0",
        "nspool_graphql_errors_total{code=\"INTERNAL\"} 0",
        "nspool_graphql_errors_total{code=\"SERVICE_UNAVAILABLE\"} 0",
        "nspool_budget_refusals_total{budget=\"in_flight\"} 0",
        "nspool_request_database_waits_timed_out_total",
    ] {
        assert!(metrics.contains(line), "{line} missing from /metrics");
    }
}

/// A lock on the tokens table (a restore, `lock table`) never holds a
/// credential lookup past its bound: the lookup gives up after
/// `LOOKUP_TIMEOUT` (statement timeout, set per transaction), its
/// connection and slot come back while the lock is still held, and the
/// request is answered; once the lock goes, the token works.
#[sqlx::test]
async fn a_locked_tokens_table_holds_no_lookup_past_its_bound(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let token = app.token("SYSTEM_VIEWER", None).await;
    let mut locker = db.begin().await.unwrap();
    sqlx::query("lock table api_tokens in access exclusive mode")
        .execute(&mut *locker)
        .await
        .unwrap();
    let asked = std::time::Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        app.gql(Some(&token), "{ workspaces { id } }", Value::Null),
    )
    .await
    .expect("answered while the lock is held");
    eprintln!(
        "answered after {:?} under the lock: {answer}",
        asked.elapsed()
    );
    assert!(answer.get("errors").is_some(), "{answer}");
    // Nothing of nspool's waits on the lock any more.
    let waiting: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock'
           and query like '%api_tokens%' and pid <> pg_backend_pid()",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(waiting, 0, "a lookup still waits on the lock");
    locker.rollback().await.unwrap();
    let ok = app
        .ok(Some(&token), "{ workspaces { id } }", Value::Null)
        .await;
    assert!(ok["workspaces"].is_array(), "{ok}");
}
