//! The database going away while claims run: a private PostgreSQL (never the
//! machine's shared server) is stopped and started under load.

use crate::documents::CREATE_DEPLOYMENT;
use crate::support::TestApp;
use nspool::embedded_pg::EmbeddedPostgres;
use nspool::store::Store;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn private_data_dir() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("nspool-faults-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

async fn ready(app: &TestApp) -> u16 {
    reqwest::get(app.url("/readyz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_survive_a_database_restart_without_loss_or_doubles() {
    let dir = private_data_dir();
    let server = EmbeddedPostgres::start(Some(dir.join("data")))
        .await
        .expect("private PostgreSQL");
    let store = Store::connect_lazy(server.connect_options(), None, 8);
    let names = crate::support::pool_names(300);
    let config = crate::support::pool_config(&names, "");
    let app = TestApp::spawn(&config, store.pool().clone()).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    assert_eq!(ready(&app).await, 200);

    // Claims in a loop; the database stops after a moment and comes back.
    let claims = {
        let admin = admin.clone();
        let app = &app;
        async move {
            let mut outcomes: Vec<(String, Value, Duration)> = Vec::new();
            for (i, ns) in names.iter().enumerate() {
                let label = format!("d-{i}");
                let started = Instant::now();
                let value = app
                    .gql(
                        Some(&admin),
                        CREATE_DEPLOYMENT,
                        json!({"label": label, "workspaceId": ws, "executor": "LocalExecutor", "namespace": ns}),
                    )
                    .await;
                outcomes.push((label, value, started.elapsed()));
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            outcomes
        }
    };
    let outage = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let server = &server;
        tokio::task::block_in_place(|| server.interrupt(false)).expect("stop");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let unready = ready(&app).await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        tokio::task::block_in_place(|| server.resume()).expect("start");
        unready
    };
    let (outcomes, unready) = tokio::join!(claims, outage);
    assert_eq!(
        unready, 503,
        "/readyz is unready while the database is away"
    );

    // Recovered by itself: a claim works again, /readyz is ready.
    let mut recovered = false;
    for _ in 0..50 {
        if ready(&app).await == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "nspool recovers without a restart");

    let failed: Vec<&(String, Value, Duration)> = outcomes
        .iter()
        .filter(|o| o.1.get("errors").is_some())
        .collect();
    let succeeded: Vec<&(String, Value, Duration)> = outcomes
        .iter()
        .filter(|o| o.1.get("errors").is_none())
        .collect();
    assert!(!failed.is_empty(), "the outage was felt");
    assert!(
        succeeded.len() > failed.len(),
        "most claims ran outside the outage"
    );
    for (label, value, took) in &failed {
        let error = &value["errors"][0];
        assert_eq!(
            error["extensions"]["code"], "SERVICE_UNAVAILABLE",
            "{label}: {value}"
        );
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("unavailable"),
            "a clear message: {message}"
        );
        assert!(
            *took < Duration::from_secs(5),
            "fails fast: {label} took {took:?}"
        );
    }
    // Every successful claim is there once; every failed one left nothing.
    let rows: Vec<(String, String)> = sqlx::query_as("select label, namespace from deployments")
        .fetch_all(store.pool())
        .await
        .unwrap();
    for (label, value, _) in &succeeded {
        assert!(
            value["data"]["createDeployment"]["id"].is_string(),
            "{value}"
        );
        assert_eq!(
            rows.iter().filter(|r| &r.0 == label).count(),
            1,
            "{label} once"
        );
    }
    for (label, _, _) in &failed {
        assert_eq!(
            rows.iter().filter(|r| &r.0 == label).count(),
            0,
            "{label} left nothing"
        );
    }
    let holders: i64 = sqlx::query_scalar(
        "select count(*) from pool_namespaces where holder_deployment_id is not null",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let claims: i64 = sqlx::query_scalar("select count(*) from events where kind = 'claim'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        (holders, claims),
        (succeeded.len() as i64, succeeded.len() as i64)
    );

    store.pool().close().await;
    tokio::task::block_in_place(|| server.stop()).expect("stop private PostgreSQL");
    let _ = std::fs::remove_dir_all(dir);
}

/// Connections cut under load (`pg_terminate_backend`): requests fail or go
/// through, nothing is doubled or half-written, and nspool carries on.
#[sqlx::test]
async fn cut_connections_lose_and_double_nothing(db: sqlx::PgPool) {
    let names = crate::support::pool_names(120);
    let config = crate::support::pool_config(&names, "");
    let app = TestApp::spawn(&config, crate::support::another_pool(&db).await).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    let database: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&db)
        .await
        .unwrap();
    let own_pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&db)
        .await
        .unwrap();

    let claims = async {
        let mut outcomes = Vec::new();
        for (i, ns) in names.iter().enumerate() {
            let label = format!("d-{i}");
            let value = app
                .gql(
                    Some(&admin),
                    CREATE_DEPLOYMENT,
                    json!({"label": label, "workspaceId": ws, "executor": "LocalExecutor", "namespace": ns}),
                )
                .await;
            outcomes.push((label, value));
        }
        outcomes
    };
    let cuts = async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(60)).await;
            sqlx::query(
                "select pg_terminate_backend(pid) from pg_stat_activity
                 where datname = $1 and pid <> pg_backend_pid() and pid <> $2",
            )
            .bind(&database)
            .bind(own_pid)
            .execute(&db)
            .await
            .unwrap();
        }
    };
    let (outcomes, ()) = tokio::join!(claims, cuts);
    let failed = outcomes
        .iter()
        .filter(|o| o.1.get("errors").is_some())
        .count();
    eprintln!(
        "{failed} of {} claims failed while connections were cut",
        outcomes.len()
    );
    let rows: Vec<(String,)> = sqlx::query_as("select label from deployments")
        .fetch_all(&db)
        .await
        .unwrap();
    for (label, value) in &outcomes {
        let stored = rows.iter().filter(|r| &r.0 == label).count();
        if value.get("errors").is_none() {
            assert_eq!(stored, 1, "{label} succeeded once");
        } else {
            assert_eq!(
                value["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
                "{value}"
            );
            assert_eq!(stored, 0, "{label} failed and left nothing");
        }
    }
    let holders: i64 = sqlx::query_scalar(
        "select count(*) from pool_namespaces where holder_deployment_id is not null",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(holders as usize, rows.len());
    // Carries on: a claim after the cuts goes through.
    let free = app.available(&admin).await;
    if let Some(ns) = free.first() {
        let after = app
            .gql(
                Some(&admin),
                CREATE_DEPLOYMENT,
                json!({"label": "after", "workspaceId": ws, "executor": "LocalExecutor", "namespace": ns}),
            )
            .await;
        assert!(after.get("errors").is_none(), "{after}");
    }
}
