//! Pool reads from memory, kept exact across replicas: a client reads its own
//! writes, replicas converge after every kind of change, a lost listener
//! falls back to the database and recovers, a revoke reaches every replica.

use crate::documents::CREATE_DEPLOYMENT;
use crate::support::{POOL_OF_5, TestApp, another_pool};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};

const DELETE: &str = "mutation($id: Uuid!, $hard: Boolean) { deleteDeployment(deploymentUuid: $id, deploymentHardDelete: $hard) { id } }";
const RECLAIM: &str = "mutation { reclaimDeployments(olderThanDays: 0) { count } }";
const REVOKE: &str = "mutation($id: Uuid!) { revokeToken(id: $id) }";
/// Bound for convergence in these tests; the benchmark measures the real lag.
const CONVERGE: Duration = Duration::from_secs(5);

async fn loaded(app: &TestApp) {
    let started = Instant::now();
    while app.service.snapshot().version().is_none() {
        assert!(
            started.elapsed() < CONVERGE,
            "the pool snapshot never loaded"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn fresh_read(db: &PgPool) -> Vec<String> {
    let cluster: uuid::Uuid = sqlx::query_scalar("select id from clusters where name = 'default'")
        .fetch_one(db)
        .await
        .expect("the default cluster");
    nspool::store::Store::new(db.clone())
        .available_namespaces(cluster)
        .await
        .expect("database read")
}

/// Every replica serves from memory and answers what the database says now.
async fn converged(apps: &[&TestApp], token: &str, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let truth = fresh_read(&apps[0].db).await;
        let mut same = true;
        for app in apps {
            same &=
                app.service.snapshot().version().is_some() && app.available(token).await == truth;
        }
        if same {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < CONVERGE,
            "replicas did not converge after {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn claim(app: &TestApp, token: &str, ws: &str, namespace: &str, label: &str) -> String {
    let data = app
        .ok(
            Some(token),
            CREATE_DEPLOYMENT,
            json!({"label": label, "workspaceId": ws, "executor": "LocalExecutor", "namespace": namespace}),
        )
        .await;
    data["createDeployment"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[sqlx::test]
async fn a_client_reads_its_own_writes(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    loaded(&app).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "own").await.to_string();
    let before = app.service.snapshot().version();
    for round in 0..10 {
        let id = claim(&app, &admin, &ws, "pool-c", &format!("own-{round}")).await;
        assert!(!app.available(&admin).await.contains(&"pool-c".to_owned()));
        app.ok(Some(&admin), DELETE, json!({"id": id, "hard": true}))
            .await;
        assert!(app.available(&admin).await.contains(&"pool-c".to_owned()));
    }
    // Answered from memory all along: the snapshot moved with every write.
    let after = app.service.snapshot().version();
    assert!(after >= before.map(|g| g + 20), "{before:?} → {after:?}");
}

#[sqlx::test]
async fn replicas_converge_after_every_kind_of_change(db: PgPool) {
    let a = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let b = TestApp::spawn(POOL_OF_5, another_pool(&db).await).await;
    loaded(&a).await;
    loaded(&b).await;
    let admin = a.admin().await;
    let ws = a.create_workspace(&admin, "converge").await.to_string();
    let both = [&a, &b];

    let held = claim(&a, &admin, &ws, "pool-a", "held").await;
    converged(&both, &admin, "a claim").await;
    b.ok(Some(&admin), DELETE, json!({"id": held, "hard": true}))
        .await;
    converged(&both, &admin, "a release").await;

    let soft = claim(&b, &admin, &ws, "pool-b", "soft").await;
    a.ok(Some(&admin), DELETE, json!({"id": soft, "hard": false}))
        .await;
    converged(&both, &admin, "a soft delete").await;
    assert!(!a.available(&admin).await.contains(&"pool-b".to_owned()));
    let reclaimed = b.ok(Some(&admin), RECLAIM, Value::Null).await;
    assert_eq!(reclaimed["reclaimDeployments"]["count"], 1);
    converged(&both, &admin, "a reclaim").await;
    assert!(a.available(&admin).await.contains(&"pool-b".to_owned()));

    // RBAC found broken, then fixed (what the Kubernetes worker writes).
    for state in ["broken", "ok"] {
        sqlx::query("update pool_namespaces set rbac_state = $1 where name = 'pool-d'")
            .bind(state)
            .execute(&db)
            .await
            .unwrap();
        converged(&both, &admin, &format!("RBAC {state}")).await;
    }

    // A third replica starts with another config: its sync retires two
    // names and adds one; both running replicas see it.
    let other = POOL_OF_5.replace(
        "names: [pool-a, pool-b, pool-c, pool-d, pool-e]",
        "names: [pool-a, pool-b, pool-c, pool-f]",
    );
    let c = TestApp::spawn(&other, another_pool(&db).await).await;
    loaded(&c).await;
    converged(&[&a, &b, &c], &admin, "a sync that retires and adds").await;
    assert_eq!(
        b.available(&admin).await,
        ["pool-a", "pool-b", "pool-c", "pool-f"]
    );
}

#[sqlx::test]
async fn claims_on_three_replicas_converge(db: PgPool) {
    let names: Vec<String> = (0..30).map(|i| format!("ns-{i:02}")).collect();
    let config = crate::support::pool_config(&names, "nspool: {kubernetes: {mode: 'off'}}");
    let apps = [
        TestApp::spawn(&config, db.clone()).await,
        TestApp::spawn(&config, another_pool(&db).await).await,
        TestApp::spawn(&config, another_pool(&db).await).await,
    ];
    for app in &apps {
        loaded(app).await;
    }
    let admin = apps[0].admin().await;
    let ws = apps[0].create_workspace(&admin, "three").await.to_string();
    // Each replica claims its own ten namespaces at once; after each claim
    // answers, the other two must stop offering that name.
    let runs = apps.iter().enumerate().map(|(i, app)| {
        let (admin, ws, names) = (admin.clone(), ws.clone(), names.clone());
        let others: Vec<&TestApp> = apps
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| a)
            .collect();
        async move {
            let mut lags = Vec::new();
            for n in (i..30).step_by(3) {
                claim(app, &admin, &ws, &names[n], &format!("c-{n}")).await;
                let started = Instant::now();
                for other in &others {
                    while other.available(&admin).await.contains(&names[n]) {
                        assert!(started.elapsed() < CONVERGE, "{} still offered", names[n]);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                lags.push(started.elapsed());
            }
            lags
        }
    });
    let mut lags: Vec<Duration> = futures::future::join_all(runs).await.concat();
    lags.sort();
    eprintln!(
        "cross-replica staleness over {} claims: p50 {:?}, max {:?} (the benchmark reports p99)",
        lags.len(),
        lags[lags.len() / 2],
        lags[lags.len() - 1]
    );
    let refs: Vec<&TestApp> = apps.iter().collect();
    converged(&refs, &admin, "thirty claims").await;
    assert!(apps[2].available(&admin).await.is_empty());
}

#[sqlx::test]
async fn a_lost_listener_falls_back_to_the_database_and_recovers(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db.clone()).await;
    loaded(&app).await;
    let admin = app.admin().await;
    let kill = "select count(pg_terminate_backend(pid)) from pg_stat_activity
                where datname = current_database() and query like 'LISTEN%'";
    let killed: i64 = sqlx::query_scalar(kill).fetch_one(&db).await.unwrap();
    assert_eq!(killed, 1, "one listener connection");
    // The replica notices (at once for a closed connection; a silent one
    // within the heartbeat) and reads from the database meanwhile.
    let started = std::time::Instant::now();
    while !app
        .metrics()
        .await
        .contains("nspool_pool_listener_reconnects_total 1")
    {
        assert!(
            started.elapsed() < CONVERGE,
            "the lost listener went unnoticed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A change while nobody listens; reads must see it anyway.
    sqlx::query("update pool_namespaces set retired_at = now() where name = 'pool-e'")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        app.available(&admin).await,
        ["pool-a", "pool-b", "pool-c", "pool-d"]
    );
    // Back: listening again, loaded, and following changes again.
    loaded(&app).await;
    sqlx::query("update pool_namespaces set retired_at = now() where name = 'pool-d'")
        .execute(&db)
        .await
        .unwrap();
    converged(&[&app], &admin, "a change after the listener came back").await;
    assert_eq!(app.available(&admin).await, ["pool-a", "pool-b", "pool-c"]);
    // Back, and serving from memory again.
    assert!(app.service.snapshot().version().is_some());
}

#[sqlx::test]
async fn a_revoked_token_stops_working_on_every_replica(db: PgPool) {
    let apps = [
        TestApp::spawn(POOL_OF_5, db.clone()).await,
        TestApp::spawn(POOL_OF_5, another_pool(&db).await).await,
        TestApp::spawn(POOL_OF_5, another_pool(&db).await).await,
    ];
    for app in &apps {
        loaded(app).await;
    }
    let admin = apps[0].admin().await;
    for by_cli in [false, true] {
        let viewer = apps[0].token("SYSTEM_VIEWER", None).await;
        let id: uuid::Uuid = sqlx::query_scalar(
            "select id from api_tokens where revoked_at is null order by created_at desc limit 1",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        // Every replica has it cached.
        for app in &apps {
            app.available(&viewer).await;
        }
        if by_cli {
            // Another process (the CLI) revokes straight in the database.
            nspool::store::Store::new(db.clone())
                .revoke_token(id, "cli")
                .await
                .unwrap()
                .expect("revoked");
        } else {
            apps[0].ok(Some(&admin), REVOKE, json!({"id": id})).await;
            // The replica that revoked refuses it at once.
            let refused = apps[0]
                .gql(
                    Some(&viewer),
                    "{ availableNamespaces { name } }",
                    Value::Null,
                )
                .await;
            assert_eq!(
                refused["errors"][0]["extensions"]["code"],
                "UNAUTHENTICATED"
            );
        }
        let started = Instant::now();
        for app in &apps {
            loop {
                let answer = app
                    .gql(
                        Some(&viewer),
                        "{ availableNamespaces { name } }",
                        Value::Null,
                    )
                    .await;
                if answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" {
                    break;
                }
                assert!(started.elapsed() < CONVERGE, "a revoked token still works");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        eprintln!(
            "revoke ({}) reached all three replicas in {:?}",
            if by_cli { "CLI" } else { "API" },
            started.elapsed()
        );
    }
}

/// Behind PgBouncer in transaction mode, session work must not use the
/// pooled URL: the LISTEN connection uses the direct one. Reclaim runs hold
/// a lease on their row (plain statements), no session lock at all.
#[sqlx::test]
async fn session_work_uses_the_direct_connection(db: PgPool) {
    let options = (*db.connect_options()).clone();
    let store = nspool::store::Store::connect_lazy(
        options.clone().application_name("nspool-pooled"),
        Some(options.application_name("nspool-direct")),
        8,
    );
    let app = TestApp::spawn_on(
        POOL_OF_5,
        store.clone(),
        db.clone(),
        Default::default(),
        Default::default(),
    )
    .await;
    loaded(&app).await;
    let admin = app.admin().await;
    app.available(&admin).await;
    app.service
        .reclaim(&nspool::domain::Caller::Operator, 14, false)
        .await
        .expect("a reclaim run");
    let sessions: Vec<(String, String)> = sqlx::query_as(
        "select a.application_name, case when a.query like 'LISTEN%' then 'listen' else 'lock' end
         from pg_stat_activity a
         where a.datname = current_database()
           and (a.query like 'LISTEN%' or exists (select 1 from pg_locks l where l.pid = a.pid and l.locktype = 'advisory'))
         order by 2",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        sessions,
        [("nspool-direct".to_owned(), "listen".to_owned())]
    );
    // Everything else went through the pooled URL.
    let pooled: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = current_database() and application_name = 'nspool-pooled'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(pooled >= 1);
}

/// Every request connection busy (requests waiting on the database) says
/// nothing of the LISTEN connection: the heartbeat goes out on a session
/// connection of its own (as `serve` sets them up), so the copy stays
/// checked and keeps serving reads from memory instead of sending them to
/// the busy database.
#[sqlx::test]
async fn a_busy_pool_does_not_knock_the_copy_out(db: PgPool) {
    let store = nspool::store::Store::connect_lazy((*db.connect_options()).clone(), None, 2);
    let small = store.pool().clone();
    let app = TestApp::spawn_on(POOL_OF_5, store, db, Default::default(), Default::default()).await;
    let admin = app.admin().await;
    loaded(&app).await;
    assert_eq!(app.available(&admin).await.len(), 5);
    // Both pooled connections taken and held past two heartbeats and the
    // time a lost heartbeat is given up on.
    let mut held = Vec::new();
    while let Ok(Ok(connection)) =
        tokio::time::timeout(Duration::from_secs(1), small.acquire()).await
    {
        held.push(connection);
    }
    assert!(!held.is_empty());
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(
        app.service.snapshot().version().is_some(),
        "the copy still serves"
    );
    // From the database this would be SERVICE_UNAVAILABLE: no connection.
    assert_eq!(app.available(&admin).await.len(), 5);
    drop(held);
}

/// A replica that syncs the pool to another config (its start, a reload)
/// is heard by the others, which say so in their own logs.
#[sqlx::test]
async fn a_replica_logs_the_pool_changes_another_made(db: PgPool) {
    let (captured, _guard) = crate::dashboard::Captured::start();
    let first = TestApp::spawn(POOL_OF_5, db.clone()).await;
    loaded(&first).await;
    let other = POOL_OF_5.replace("pool-e]", "pool-x]");
    let _second = TestApp::spawn(&other, another_pool(&db).await).await;
    let said = "another replica synced the pool to its config";
    let started = Instant::now();
    while !captured.text().contains(said) {
        assert!(
            started.elapsed() < CONVERGE,
            "the first replica never said it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line = captured
        .text()
        .lines()
        .find(|l| l.contains(said))
        .unwrap()
        .to_owned();
    assert!(line.contains("pool-x") && line.contains("pool-e"), "{line}");
    assert_eq!(
        captured.text().matches(said).count(),
        1,
        "only the other replica says it"
    );
}

/// A write that bypasses the change notices (a restore, triggers off) is
/// found by the periodic check of the copy against the database, and the
/// copy heals itself: within `COPY_CHECK` and a recheck, well under a minute.
#[sqlx::test]
async fn a_copy_that_differs_from_the_database_heals_itself(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let admin = app.admin().await;
    loaded(&app).await;
    assert!(app.available(&admin).await.contains(&"pool-a".to_owned()));
    // pool-a retired behind the notices' back.
    let mut conn = db.acquire().await.unwrap();
    sqlx::query("set session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("update pool_namespaces set retired_at = now() where name = 'pool-a'")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("set session_replication_role = origin")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    assert!(
        app.available(&admin).await.contains(&"pool-a".to_owned()),
        "the copy serves the stale offer until it is checked"
    );
    let written = Instant::now();
    while app.available(&admin).await.contains(&"pool-a".to_owned()) {
        assert!(
            written.elapsed() < Duration::from_secs(60),
            "the copy never healed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("the copy healed {:?} after the write", written.elapsed());
    let metrics = app.metrics().await;
    assert_eq!(
        crate::support::metric_value(&metrics, "nspool_pool_copy_repairs_total"),
        Some(1.0),
        "{metrics}"
    );
}

/// The documented restore (`pg_restore --clean --if-exists`) under three
/// running replicas: the restored pool has namespaces free that every
/// replica's copy still holds as claimed, and no change notice tells them.
/// Each replica's check of its copy finds the difference and heals it: all
/// three offer the restored pool within the documented bound (a minute).
#[sqlx::test]
async fn a_restore_under_three_replicas_heals_every_copy(db: PgPool) {
    let replicas = [
        TestApp::spawn(POOL_OF_5, db.clone()).await,
        TestApp::spawn(POOL_OF_5, another_pool(&db).await).await,
        TestApp::spawn(POOL_OF_5, another_pool(&db).await).await,
    ];
    for app in &replicas {
        loaded(app).await;
    }
    let admin = replicas[0].admin().await;
    let dir =
        std::env::temp_dir().join(format!("nspool-restore-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let dump = dir.join("nspool.dump");
    let url = crate::support::database_url(&db);
    // The backup, as docs/operations.md takes it: every namespace free.
    let dumped = std::process::Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&url)
        .output()
        .expect("pg_dump (apt-get install postgresql-client)");
    assert!(
        dumped.status.success(),
        "{}",
        String::from_utf8_lossy(&dumped.stderr)
    );
    let all: Vec<String> = ["pool-a", "pool-b", "pool-c", "pool-d", "pool-e"]
        .map(String::from)
        .to_vec();
    for app in &replicas {
        assert_eq!(app.available(&admin).await, all);
    }
    // Two claims after the backup: every copy hides them.
    for ns in ["pool-a", "pool-b"] {
        crate::support::claim_in_own_workspace(&replicas[0], &admin, ns).await;
    }
    for app in &replicas {
        let started = Instant::now();
        while app.available(&admin).await.len() != 3 {
            assert!(
                started.elapsed() < CONVERGE,
                "a replica never saw the claims"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // The restore, with the replicas running (admin tokens come back too).
    let restored = std::process::Command::new("pg_restore")
        .args(["--clean", "--if-exists", "--dbname"])
        .arg(&url)
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let held: i64 = sqlx::query_scalar(
        "select count(*) from pool_namespaces where holder_deployment_id is not null",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(held, 0, "the backup's pool: all free");
    let written = Instant::now();
    for (i, app) in replicas.iter().enumerate() {
        while app.available(&admin).await != all {
            assert!(
                written.elapsed() < Duration::from_secs(60),
                "replica {i} still hides free namespaces a minute after the restore"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        eprintln!(
            "replica {i} offers the restored pool {:?} after the restore",
            written.elapsed()
        );
    }
    for app in &replicas {
        let metrics = app.metrics().await;
        assert!(
            crate::support::metric_value(&metrics, "nspool_pool_copy_repairs_total")
                .is_some_and(|n| n >= 1.0),
            "{metrics}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
