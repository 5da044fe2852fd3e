//! The hostile requests of issue 7, each as a regression test: no crash, no
//! hang, a clear coded error, and nothing written that could poison a read.

use crate::documents::*;
use crate::support::{POOL_OF_5, TestApp, assert_no_internals, pool_config, pool_names};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

fn nested(open: &str, close: &str, inner: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

/// Documents that overflowed the stack or held a core; none needs a token.
pub fn hostile_documents() -> Vec<(&'static str, String)> {
    // Each fragment spreads the next twice; the second spread sits under a
    // directive, so field collection cannot merge the two (two plain spreads
    // of one fragment are one, and such a chain costs only its length).
    let chain = {
        let mut doc = String::from("{ ...F0 }\n");
        for i in 0..28 {
            doc.push_str(&format!(
                "fragment F{i} on Query {{ ...F{} ... @include(if: true) {{ ...F{} }} }}\n",
                i + 1,
                i + 1
            ));
        }
        doc + "fragment F28 on Query { appConfig { version } }"
    };
    vec![
        (
            "nested list literal",
            format!(
                "{{ appConfig(clusterId: {}) {{ version }} }}",
                nested("[", "]", "1", 2_000)
            ),
        ),
        (
            "nested object literal",
            format!(
                "{{ appConfig(clusterId: {}) {{ version }} }}",
                nested("{a: ", "}", "1", 2_000)
            ),
        ),
        (
            "nested variable default",
            format!(
                "query($v: Uuid = {}) {{ appConfig(clusterId: $v) {{ version }} }}",
                nested("[", "]", "1", 2_000)
            ),
        ),
        (
            "nested directive argument",
            format!(
                "{{ appConfig @skip(if: {}) {{ version }} }}",
                nested("[", "]", "true", 2_000)
            ),
        ),
        (
            "nested unknown argument",
            format!(
                "{{ appConfig(nope: {}) {{ version }} }}",
                nested("{a: [", "]}", "1", 1_000)
            ),
        ),
        ("nested parentheses", nested("(", ")", "", 5_000)),
        (
            "doubling fragment chain into a missing fragment (found by the fuzz loop)",
            chain.replace("fragment F24 ", "fragment G24 "),
        ),
        ("doubling fragment chain", chain),
        (
            "95 aliases of poolEvents(last: 1000)",
            format!(
                "{{ {} }}",
                (0..95)
                    .map(|i| format!(
                        "e{i}: poolEvents(last: 1000) {{ id at kind namespace actor reason }}"
                    ))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
        (
            "many tokens",
            format!("{{ {} }}", "__typename ".repeat(20_000)),
        ),
    ]
}

#[sqlx::test]
async fn hostile_documents_are_refused_and_the_process_lives_on(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    for (name, document) in hostile_documents() {
        for token in [None, Some("nsp_garbage")] {
            let value = app.gql(token, &document, Value::Null).await;
            let error = &value["errors"][0];
            let code = error["extensions"]["code"].as_str().unwrap_or_default();
            assert!(
                code == "GRAPHQL_PARSE_FAILED" || code == "GRAPHQL_VALIDATION_FAILED",
                "{name}: {value}"
            );
            assert_no_internals(error["message"].as_str().unwrap_or_default());
        }
        // Still alive and answering.
        app.ok(None, VERSION_PROBE, Value::Null).await;
    }
}

#[sqlx::test]
async fn the_scan_says_which_bound_was_hit(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let deep = format!(
        "{{ appConfig(clusterId: {}) {{ version }} }}",
        nested("[", "]", "1", 100)
    );
    let error = app
        .err(None, &deep, Value::Null, "GRAPHQL_PARSE_FAILED")
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("deeper than 64 levels (line 1, column 86)"),
        "{error}"
    );
    let many = format!("{{ {} }}", "__typename ".repeat(20_000));
    let error = app
        .err(None, &many, Value::Null, "GRAPHQL_PARSE_FAILED")
        .await;
    assert!(error["message"].as_str().unwrap().contains("tokens"));

    let chain = &hostile_documents()[7].1;
    let error = app
        .err(None, chain, Value::Null, "GRAPHQL_VALIDATION_FAILED")
        .await;
    assert!(
        error["message"].as_str().unwrap().contains("too complex"),
        "{error}"
    );

    // Variables: the same nesting bound, and a bounded count.
    let variables =
        json!({"v": serde_json::from_str::<Value>(&nested("[", "]", "1", 100)).unwrap()});
    let error = app
        .err(None, VERSION_PROBE, variables, "BAD_USER_INPUT")
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("deeper than 64")
    );
    let many: serde_json::Map<String, Value> =
        (0..100).map(|i| (format!("v{i}"), json!(1))).collect();
    app.err(None, VERSION_PROBE, Value::Object(many), "BAD_USER_INPUT")
        .await;
}

#[sqlx::test]
async fn list_sizes_count_and_big_answers_are_refused_before_they_are_built(db: PgPool) {
    // 2,000 namespaces × 61 values each is over the 100,000-value budget.
    let app = TestApp::spawn(&pool_config(&pool_names(2_000), ""), db).await;
    let admin = app.admin().await;
    let error = app
        .err(
            Some(&admin),
            &hostile_documents()[8].1,
            Value::Null,
            "GRAPHQL_VALIDATION_FAILED",
        )
        .await;
    assert!(error["message"].as_str().unwrap().contains("too complex"));

    let fields = (0..60)
        .map(|i| format!("n{i}: name"))
        .collect::<Vec<_>>()
        .join(" ");
    let document = format!("{{ poolNamespaces {{ {fields} }} }}");
    let error = app
        .err(Some(&admin), &document, Value::Null, "BAD_USER_INPUT")
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("more than 100000 values"),
        "{error}"
    );
    // The same pool, asked for what fits, answers.
    let names = app
        .ok(
            Some(&admin),
            "{ poolNamespaces { name state } }",
            Value::Null,
        )
        .await;
    assert_eq!(names["poolNamespaces"].as_array().unwrap().len(), 2_000);
}

#[sqlx::test]
async fn stored_json_is_bounded_and_a_refused_claim_leaves_nothing(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    let editor = app.token("WORKSPACE_EDITOR", Some(ws)).await;
    // Deeper than stored JSON may be, within what a request may carry.
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!({"a": deep});
    }
    let before = app.snapshot().await;
    for (field, variables) in [
        ("config", json!({"config": deep})),
        ("config", json!({"config": {"big": "x".repeat(70 * 1024)}})),
        ("config", json!({"config": {"k": "a\u{0}b"}})),
    ] {
        let vars = crate::support::with(
            json!({"label": "deep", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-a"}),
            variables,
        );
        let error = app
            .err(Some(&editor), CREATE_DEPLOYMENT, vars, "BAD_USER_INPUT")
            .await;
        assert!(
            error["message"].as_str().unwrap().starts_with(field),
            "{error}"
        );
    }
    assert_eq!(app.snapshot().await, before);
    assert!(app.available(&admin).await.contains(&"pool-a".to_owned()));

    // An update's payload is bounded the same way.
    let created = app
        .ok(
            Some(&editor),
            CREATE_DEPLOYMENT,
            json!({"label": "ok", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-b"}),
        )
        .await;
    let id = created["createDeployment"]["id"].as_str().unwrap();
    let error = app
        .err(
            Some(&editor),
            UPDATE_DEPLOYMENT,
            json!({"deploymentId": id, "payload": {"env": deep}}),
            "BAD_USER_INPUT",
        )
        .await;
    assert!(error["message"].as_str().unwrap().starts_with("payload"));
    // Every read that lists the row still works.
    app.ok(Some(&admin), PAGINATED_DEPLOYMENTS, Value::Null)
        .await;
    app.ok(
        Some(&admin),
        "{ poolNamespaces { name deployment { releaseName } } }",
        Value::Null,
    )
    .await;
}

#[sqlx::test]
async fn a_failure_after_the_claim_statement_leaves_no_claim(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    // The injected failure: every new row comes back 200 levels deep, past
    // what the row can be decoded with, after the claim statement has run.
    sqlx::raw_sql(
        "alter table deployments drop constraint deployments_config_check;
         create function inject_deep_config() returns trigger language plpgsql as $$
         begin
             new.config := (repeat('[', 200) || '1' || repeat(']', 200))::jsonb;
             return new;
         end $$;
         create trigger inject_deep_config before insert on deployments
             for each row execute function inject_deep_config();",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let before = app.snapshot().await;
    let value = app
        .gql(
            Some(&admin),
            CREATE_DEPLOYMENT,
            json!({"label": "x", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-a"}),
        )
        .await;
    assert!(value["errors"].is_array(), "{value}");
    assert_eq!(app.snapshot().await, before, "the claim was rolled back");
    assert!(app.available(&admin).await.contains(&"pool-a".to_owned()));
}

#[sqlx::test(migrations = false)]
async fn rows_stored_before_the_bounds_are_repaired_by_the_migration(db: PgPool) {
    // The migrations before the input bounds, from a copy of the folder.
    let earlier_dir = std::env::temp_dir().join(format!("nspool-migrations-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&earlier_dir).unwrap();
    let mut files: Vec<_> = std::fs::read_dir("migrations")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let bounds = files
        .iter()
        .position(|f| f.to_string_lossy().ends_with("_input_bounds.sql"))
        .expect("the input-bounds migration");
    for file in &files[..bounds] {
        std::fs::copy(file, earlier_dir.join(file.file_name().unwrap())).unwrap();
    }
    sqlx::migrate::Migrator::new(earlier_dir.as_path())
        .await
        .unwrap()
        .run(&db)
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&earlier_dir);
    let ws = Uuid::new_v4();
    sqlx::query("insert into workspaces (id, label) values ($1, 'w')")
        .bind(ws)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(
        "insert into deployments (id, workspace_id, label, release_name, namespace, type, executor, config, triggerer_replicas)
         values ($1, $2, 'deep', 'deep-1', 'ns-deep', 'airflow', 'LocalExecutor', $3::jsonb, -5),
                ($4, $2, 'fine', 'fine-1', 'ns-fine', 'airflow', 'LocalExecutor', '{\"a\": [1]}', 2)",
    )
    .bind(Uuid::new_v4())
    .bind(ws)
    .bind(nested("[", "]", "1", 130))
    .bind(Uuid::new_v4())
    .execute(&db)
    .await
    .unwrap();
    nspool::store::MIGRATOR.run(&db).await.unwrap();
    let rows: Vec<(String, Option<Value>, Option<i32>)> =
        sqlx::query_as("select label, config, triggerer_replicas from deployments order by label")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            ("deep".into(), None, None),
            ("fine".into(), Some(json!({"a": [1]})), Some(2))
        ]
    );
    let repairs: i64 = sqlx::query_scalar("select count(*) from events where kind = 'repair'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(repairs, 1);
}

/// createDeployment with a description (the CLI's document has none).
const DESCRIBED: &str = "mutation($ws: Uuid!, $d: String) { createDeployment(workspaceUuid: $ws, label: \"x\", executor: LocalExecutor, namespace: \"pool-b\", description: $d) { id } }";

#[sqlx::test]
async fn text_inputs_are_bounded_and_nul_free(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    let viewer = app.token("WORKSPACE_VIEWER", Some(ws)).await;
    let create = |vars: Value| {
        crate::support::with(
            json!({"label": "x", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-b"}),
            vars,
        )
    };
    let before = app.snapshot().await;
    let cases: Vec<(&str, Option<&str>, &str, Value, &str)> = vec![
        (
            "NUL label",
            Some(&admin),
            CREATE_DEPLOYMENT,
            create(json!({"label": "a\u{0}"})),
            "label contains a NUL",
        ),
        (
            "NUL description",
            Some(&admin),
            DESCRIBED,
            json!({"ws": ws, "d": "a\u{0}"}),
            "description contains a NUL",
        ),
        (
            "NUL airflow version",
            Some(&admin),
            CREATE_DEPLOYMENT,
            create(json!({"airflowVersion": "2\u{0}"})),
            "airflowVersion contains a NUL",
        ),
        (
            "NUL namespace",
            Some(&admin),
            CREATE_DEPLOYMENT,
            create(json!({"namespace": "pool\u{0}"})),
            "namespace contains a NUL",
        ),
        (
            "long description",
            Some(&admin),
            DESCRIBED,
            json!({"ws": ws, "d": "d".repeat(1025)}),
            "at most 1024 characters",
        ),
        (
            "negative triggerer",
            Some(&admin),
            CREATE_DEPLOYMENT,
            create(json!({"triggererReplicas": -5})),
            "between 0 and 10",
        ),
        (
            "NUL workspace label",
            Some(&admin),
            CREATE_WORKSPACE,
            json!({"label": "w\u{0}"}),
            "label contains a NUL",
        ),
        (
            "long workspace description",
            Some(&admin),
            CREATE_WORKSPACE,
            json!({"label": "w", "description": "d".repeat(1025)}),
            "at most 1024",
        ),
        (
            "NUL filter",
            Some(&viewer),
            "query($n: String) { paginatedDeployments(name: $n) { id } }",
            json!({"n": "a\u{0}"}),
            "name contains a NUL",
        ),
        (
            "NUL event filter",
            Some(&admin),
            "query($n: String) { poolEvents(namespace: $n) { id } }",
            json!({"n": "a\u{0}"}),
            "namespace contains a NUL",
        ),
        (
            "long token label",
            Some(&admin),
            "mutation($l: String!) { createToken(role: \"SYSTEM_VIEWER\", label: $l) { id } }",
            json!({"l": "t".repeat(129)}),
            "at most 128",
        ),
        (
            "NUL token label",
            Some(&admin),
            "mutation($l: String!) { createToken(role: \"SYSTEM_VIEWER\", label: $l) { id } }",
            json!({"l": "t\u{0}"}),
            "NUL",
        ),
        (
            "huge page number",
            Some(&admin),
            "{ paginatedDeployments(take: 10, pageNumber: 2000000000) { id } }",
            Value::Null,
            "pageNumber",
        ),
    ];
    for (name, token, document, variables, says) in cases {
        let error = app.err(token, document, variables, "BAD_USER_INPUT").await;
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(says), "{name}: {message}");
    }
    assert_eq!(app.snapshot().await, before);

    // A 10,000-character name is echoed as a short excerpt only.
    let long = "n".repeat(10_000);
    let error = app
        .err(
            Some(&admin),
            CREATE_DEPLOYMENT,
            create(json!({"namespace": long})),
            "BAD_USER_INPUT",
        )
        .await;
    assert!(error["message"].as_str().unwrap().len() < 400, "{error}");
    // A literal of the wrong type is the client's error.
    let value = app
        .gql(
            Some(&admin),
            "{ workspace(workspaceUuid: 5) { id } }",
            Value::Null,
        )
        .await;
    let code = value["errors"][0]["extensions"]["code"].as_str().unwrap();
    assert!(
        code == "BAD_USER_INPUT" || code == "GRAPHQL_VALIDATION_FAILED",
        "{value}"
    );
}

#[sqlx::test]
async fn reclaim_days_out_of_range_are_refused_without_a_run(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let error = app
        .err(
            Some(&admin),
            "mutation { reclaimDeployments(olderThanDays: 100000000) { count } }",
            Value::Null,
            "BAD_USER_INPUT",
        )
        .await;
    assert!(error["message"].as_str().unwrap().contains("36500"));
    let runs: i64 = sqlx::query_scalar("select count(*) from reclaim_runs")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(runs, 0);
    // The largest allowed value runs and finishes.
    app.ok(
        Some(&admin),
        "mutation { reclaimDeployments(olderThanDays: 36500) { count } }",
        Value::Null,
    )
    .await;
}

#[sqlx::test]
async fn the_login_link_ignores_hostile_host_headers(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    for (host, proto) in [
        ("evil.example", "https"),
        ("127.0.0.1", "javascript"),
        ("user@127.0.0.1", "http"),
    ] {
        let response = app
            .post_with(
                &[("host", host), ("x-forwarded-proto", proto)],
                json!({"query": AUTH_CONFIG}),
            )
            .await;
        assert_eq!(
            response["data"]["authConfig"]["providers"][0]["url"],
            "https://houston.example.com/v1/token",
            "{host} {proto}"
        );
    }
}

#[sqlx::test]
async fn other_workspaces_stay_unnamed(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let a = app.create_workspace(&admin, "a").await;
    let b = app.create_workspace(&admin, "b").await;
    let created = app
        .ok(
            Some(&admin),
            CREATE_DEPLOYMENT,
            json!({"label": "secret-label", "workspaceId": a, "executor": "LocalExecutor", "namespace": "pool-a", "releaseName": "secret-release"}),
        )
        .await;
    let id = created["createDeployment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let editor_b = app.token("WORKSPACE_EDITOR", Some(b)).await;
    let error = app
        .err(
            Some(&editor_b),
            CREATE_DEPLOYMENT,
            json!({"label": "x", "workspaceId": b, "executor": "LocalExecutor", "namespace": "pool-a"}),
            "CONFLICT",
        )
        .await;
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("another workspace"), "{message}");
    assert!(!message.contains("secret"), "{message}");

    // "Not yours" and "not there" get the same answer.
    let mine = app.ok(Some(&editor_b), DEPLOYMENT, json!({"id": id})).await;
    let unknown = app
        .ok(Some(&editor_b), DEPLOYMENT, json!({"id": Uuid::new_v4()}))
        .await;
    assert_eq!(mine, unknown);
    assert!(mine["deployment"].is_null());

    // reclaimJob needs a token.
    app.err(
        None,
        "{ reclaimJob { enabled } }",
        Value::Null,
        "UNAUTHENTICATED",
    )
    .await;
    app.ok(Some(&admin), "{ reclaimJob { enabled } }", Value::Null)
        .await;
}

#[test]
fn the_readme_documents_every_limit() {
    let readme = include_str!("../../README.md");
    let table = nspool::http::limits_markdown();
    assert!(
        readme.contains(&table),
        "README.md's limits table is stale; it should read:\n{table}"
    );
}

/// A name filter is matched as written: LIKE's wildcards in it (`_`, `%`,
/// and its escape `\`) match only themselves, never every Deployment.
#[sqlx::test]
async fn a_name_filter_matches_wildcards_literally(db: PgPool) {
    let app = TestApp::spawn(crate::support::POOL_OF_5, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "filters").await;
    for (label, namespace) in [
        ("etl", "pool-a"),
        ("ml_train", "pool-b"),
        ("100%", "pool-c"),
    ] {
        app.ok(
            Some(&admin),
            crate::documents::CREATE_DEPLOYMENT,
            json!({"label": label, "workspaceId": ws, "executor": "LocalExecutor", "namespace": namespace}),
        )
        .await;
    }
    let labels = |name: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let data = app
                .ok(
                    Some(&admin),
                    "query($n: String) { paginatedDeployments(name: $n) { label } }",
                    json!({"n": name}),
                )
                .await;
            let mut labels: Vec<String> = data["paginatedDeployments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["label"].as_str().unwrap().to_owned())
                .collect();
            labels.sort();
            labels
        }
    };
    assert_eq!(labels("_").await, ["ml_train"]);
    assert_eq!(labels("%").await, ["100%"]);
    assert!(labels("\\").await.is_empty());
    assert_eq!(labels("ETL").await, ["etl"], "still a case-blind match");
}

/// Text that would read differently from what it is (a bidirectional
/// override such as U+202E) is refused where it would be shown: a cordon's
/// reason (on the dashboard, in `kubectl events`), a Deployment's label;
/// nothing is written.
#[sqlx::test]
async fn bidirectional_controls_are_refused_in_shown_text(db: PgPool) {
    let app = TestApp::spawn(crate::support::POOL_OF_5, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "bidi").await;
    for (query, variables) in [
        (
            "mutation($r: String!) { cordonNamespace(name: \"pool-a\", reason: $r) { name } }",
            json!({"r": "upgrade \u{202E}gnp.exe"}),
        ),
        (
            "mutation($r: String!) { cordonPool(reason: $r) }",
            json!({"r": "\u{2066}isolated\u{2069}"}),
        ),
        (
            crate::documents::CREATE_DEPLOYMENT,
            json!({"label": "etl\u{202E}", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-b"}),
        ),
    ] {
        let error = app
            .err(Some(&admin), query, variables, "BAD_USER_INPUT")
            .await;
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("bidirectional control character"),
            "{error}"
        );
    }
    let events: i64 = sqlx::query_scalar(
        "select count(*) from events where kind in ('cordon', 'cordon_pool', 'claim')",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(events, 0, "something was written");
    // Right-to-left text itself (and its plain marks) is fine.
    app.ok(
        Some(&admin),
        "mutation($r: String!) { cordonNamespace(name: \"pool-c\", reason: $r) { name } }",
        json!({"r": "تحديث \u{200F}العقد"}),
    )
    .await;
}

/// Stored JSON is bounded exactly where the docs say, and the service and
/// the database measure the same bytes (as PostgreSQL writes jsonb out): a
/// config of exactly 65,536 bytes is stored, one byte more is refused by
/// the service with the field's name (never by the database's check). A
/// number written with an exponent counts as stored: every digit.
#[sqlx::test]
async fn stored_json_is_bounded_at_the_documented_byte_exactly(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    // {"k": "xxx…"} is 9 bytes around the string as jsonb text writes it.
    let at_limit = json!({"k": "x".repeat(65_536 - 9)});
    let over = json!({"k": "x".repeat(65_536 - 8)});
    let vars = |config: &Value, ns: &str, label: &str| json!({"label": label, "workspaceId": ws, "executor": "LocalExecutor", "namespace": ns, "config": config});
    let error = app
        .err(
            Some(&admin),
            CREATE_DEPLOYMENT,
            vars(&over, "pool-a", "over"),
            "BAD_USER_INPUT",
        )
        .await;
    assert!(
        error["message"].as_str().unwrap().starts_with("config"),
        "{error}"
    );
    app.ok(
        Some(&admin),
        CREATE_DEPLOYMENT,
        vars(&at_limit, "pool-a", "at"),
    )
    .await;
    let stored: i32 = sqlx::query_scalar("select max(octet_length(config::text)) from deployments")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored, 65_536);
    // 300 numbers of 1e300: 3 KiB as sent, 90 KiB as stored.
    let wide = json!({"n": vec![json!(1e300); 300]});
    let error = app
        .err(
            Some(&admin),
            CREATE_DEPLOYMENT,
            vars(&wide, "pool-b", "wide"),
            "BAD_USER_INPUT",
        )
        .await;
    assert!(
        error["message"].as_str().unwrap().starts_with("config"),
        "{error}"
    );
}

/// Text stored before nspool refused bidirectional controls (written here
/// behind the service's back, as an older version could have) is shown on
/// the dashboard as what it is: `<U+202E>`, never the control itself.
#[sqlx::test]
async fn stored_bidirectional_controls_are_shown_as_what_they_are(db: PgPool) {
    let app = TestApp::spawn(crate::support::POOL_OF_5, db.clone()).await;
    let admin = app.admin().await;
    sqlx::query(
        "update pool_namespaces set cordon_reason = 'upgrade ' || chr(8238) || 'gnp.exe',
                cordoned_by = 'operator', cordoned_at = now() where name = 'pool-a'",
    )
    .execute(&db)
    .await
    .unwrap();
    let page = crate::dashboard_actions::signed_in_page(&app, &admin, "?q=pool-a").await;
    assert!(page.contains("upgrade &lt;U+202E&gt;gnp.exe"), "{page}");
    assert!(!page.chars().any(nspool::domain::text::is_bidi_control));
}
