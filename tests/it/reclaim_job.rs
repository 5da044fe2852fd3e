//! The reclaim job across replicas: one run per tick, each Deployment once.

use crate::documents::CREATE_DEPLOYMENT;
use crate::support::{TestApp, another_pool};
use futures::future::join_all;
use nspool::jobs::reclaim_schedule::ReclaimSchedule;
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

fn pool_config(names: usize, schedule: &str) -> String {
    crate::support::pool_config(
        &crate::support::pool_names(names),
        &format!(
            "astronomer: {{houston: {{cleanupDeployments: {{schedule: '{schedule}', olderThan: 1}}}}}}"
        ),
    )
}

/// Creates Deployments in `namespaces` and soft-deletes them `days_ago` days ago.
async fn soft_deleted(app: &TestApp, token: &str, ws: Uuid, namespaces: &[String], days_ago: i32) {
    for ns in namespaces {
        let created = app
            .gql(
                Some(token),
                CREATE_DEPLOYMENT,
                json!({"label": format!("d-{ns}"), "workspaceId": ws, "executor": "LocalExecutor", "namespace": ns}),
            )
            .await;
        assert!(created.get("errors").is_none(), "{created}");
    }
    sqlx::query(
        "update deployments set deleted_at = now() - make_interval(days => $2) where namespace = any($1)",
    )
    .bind(namespaces)
    .bind(days_ago)
    .execute(&app.db)
    .await
    .unwrap();
}

fn names(range: std::ops::Range<usize>) -> Vec<String> {
    crate::support::pool_names(range.end)[range].to_vec()
}

#[sqlx::test]
async fn three_replicas_run_each_tick_once_and_reclaim_each_deployment_once(db: PgPool) {
    let config = pool_config(60, "* * * * * *");
    let first = TestApp::spawn(&config, db.clone()).await;
    let admin = first.admin().await;
    let ws = first.create_workspace(&admin, "team").await;
    let past = names(0..40);
    let recent = names(40..50);
    soft_deleted(&first, &admin, ws, &past, 3).await;
    soft_deleted(&first, &admin, ws, &recent, 0).await;

    let second = TestApp::spawn(&config, another_pool(&db).await).await;
    let third = TestApp::spawn(&config, another_pool(&db).await).await;
    let (stop, stopped) = watch::channel(false);
    let mut schedules = Vec::new();
    for app in [&first, &second, &third] {
        let schedule = ReclaimSchedule::start(app.service.clone(), stopped.clone())
            .await
            .unwrap()
            .expect("enabled");
        schedules.push(schedule);
    }
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let _ = stop.send(true);
    for schedule in schedules {
        schedule.shutdown(Duration::from_secs(10)).await;
    }

    let runs: Vec<(chrono::DateTime<chrono::Utc>, String, i32)> = sqlx::query_as(
        "select scheduled_for, replica, reclaimed from reclaim_runs where trigger = 'schedule' order by scheduled_for",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(runs.len() >= 3, "a run per second: {runs:?}");
    let ticks: std::collections::HashSet<_> = runs.iter().map(|r| r.0).collect();
    assert_eq!(ticks.len(), runs.len(), "each tick runs once");
    assert!(
        runs.iter().all(|r| r.0.timestamp_subsec_nanos() == 0),
        "ticks are whole seconds"
    );
    let total: i32 = runs.iter().map(|r| r.2).sum();
    assert_eq!(total, 40, "every Deployment past retention once: {runs:?}");

    let reclaim_events: Vec<(String,)> =
        sqlx::query_as("select namespace from events where kind = 'reclaim' order by namespace")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        reclaim_events.into_iter().map(|r| r.0).collect::<Vec<_>>(),
        past
    );
    let left: Vec<(String,)> =
        sqlx::query_as("select namespace from deployments order by namespace")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(left.into_iter().map(|r| r.0).collect::<Vec<_>>(), recent);

    let view = first
        .ok(Some(&admin), "{ reclaimRuns(last: 100) { trigger reclaimed finishedAt } reclaimJob { enabled reclaims schedule nextRunAt note } }", json!(null))
        .await;
    assert_eq!(view["reclaimJob"]["schedule"], "* * * * * *");
    assert_eq!(view["reclaimJob"]["reclaims"], true);
    assert!(view["reclaimJob"]["note"].is_null());
    assert!(
        view["reclaimRuns"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["finishedAt"].is_string())
    );
}

#[sqlx::test]
async fn reclaim_racing_claims_never_double_claims(db: PgPool) {
    let config = pool_config(20, "0 0 * * *");
    let app = TestApp::spawn(&config, db.clone()).await;
    let other = TestApp::spawn(&config, another_pool(&db).await).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    let held = names(0..20);
    soft_deleted(&app, &admin, ws, &held, 30).await;

    let reclaim = app
        .service
        .reclaim(&nspool::domain::Caller::Operator, 14, false);
    let claims = (0..120).map(|i| {
        let ns = held[i % held.len()].clone();
        let admin = admin.clone();
        let other = &other;
        async move {
            other
                .gql(
                    Some(&admin),
                    CREATE_DEPLOYMENT,
                    json!({"label": format!("new-{i}"), "workspaceId": ws, "executor": "LocalExecutor", "namespace": ns}),
                )
                .await
        }
    });
    let (report, results) = tokio::join!(reclaim, join_all(claims));
    assert_eq!(report.unwrap().count, 20);
    let won = results.iter().filter(|r| r.get("errors").is_none()).count();
    for r in results.iter().filter(|r| r.get("errors").is_some()) {
        assert_eq!(r["errors"][0]["extensions"]["code"], "CONFLICT", "{r}");
    }
    let per_namespace: Vec<(String, i64)> = sqlx::query_as(
        "select namespace, count(*) from deployments group by namespace having count(*) > 1",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(per_namespace.is_empty(), "{per_namespace:?}");
    let consistent: i64 = sqlx::query_scalar(
        "select count(*) from deployments d join pool_namespaces p on p.name = d.namespace
         where p.holder_deployment_id = d.id",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let deployments: i64 = sqlx::query_scalar("select count(*) from deployments")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!((consistent, deployments), (won as i64, won as i64));
}

#[sqlx::test]
async fn three_manual_runs_at_once_all_succeed_and_reclaim_each_once(db: PgPool) {
    let config = pool_config(30, "0 0 * * *");
    let app = TestApp::spawn(&config, db.clone()).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    soft_deleted(&app, &admin, ws, &names(0..30), 30).await;

    // Three `nspool reclaim` processes on the test's database.
    let url = crate::support::database_url(&db);
    let dir = std::env::temp_dir().join(format!("nspool-reclaim-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, &config).unwrap();
    let runs = (0..3).map(|_| {
        let url = url.clone();
        let config_path = config_path.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_nspool"))
                .args(["reclaim", "--older-than", "14", "--config"])
                .arg(&config_path)
                .env("DATABASE_URL", url)
                .output()
                .unwrap()
        })
    });
    let outputs = join_all(runs).await;
    let mut total = 0;
    for output in outputs {
        let output = output.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let summary = stdout.lines().last().unwrap_or_default();
        total += summary.split(' ').next().unwrap().parse::<usize>().unwrap();
    }
    assert_eq!(total, 30);
    let events: i64 = sqlx::query_scalar("select count(*) from events where kind = 'reclaim'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(events, 30);
    let runs: i64 = sqlx::query_scalar(
        "select count(*) from reclaim_runs where trigger = 'manual' and finished_at is not null",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(runs, 3);
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test]
async fn dry_runs_list_and_disabled_jobs_say_namespaces_never_return(db: PgPool) {
    let config = "global: {features: {namespacePools: {enabled: true, namespaces: {names: [a, b]}}}}\nastronomer: {houston: {cleanupDeployments: {dryRun: true, olderThan: 1}}}";
    let app = TestApp::spawn(config, db.clone()).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    soft_deleted(&app, &admin, ws, &["a".to_owned()], 5).await;
    let tick = chrono::Utc::now();
    let report = app
        .service
        .run_scheduled_reclaim(tick, &nspool::pool::never_stop())
        .await
        .unwrap()
        .expect("tick claimed");
    assert!(report.dry_run);
    assert_eq!(report.count, 1);
    assert!(
        app.service
            .run_scheduled_reclaim(tick, &nspool::pool::never_stop())
            .await
            .unwrap()
            .is_none(),
        "a tick runs once"
    );
    let view = app
        .ok(
            Some(&admin),
            "{ reclaimRuns { dryRun wouldReclaim } reclaimJob { reclaims note } poolNamespaces { name state reclaimableAt note } }",
            json!(null),
        )
        .await;
    assert_eq!(view["reclaimRuns"][0]["wouldReclaim"][0]["namespace"], "a");
    assert_eq!(view["reclaimJob"]["reclaims"], false);
    assert!(
        view["reclaimJob"]["note"]
            .as_str()
            .unwrap()
            .contains("dryRun is true")
    );
    let a = &view["poolNamespaces"][0];
    assert_eq!(a["state"], "SoftDeleted");
    assert!(a["reclaimableAt"].is_null());
    assert!(a["note"].as_str().unwrap().contains("never return"), "{a}");
    let still: i64 = sqlx::query_scalar("select count(*) from deployments")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(still, 1, "a dry run changes nothing");
}

/// `count` Deployments soft-deleted 30 days ago, outside the pool: a
/// backlog big enough for a run to be caught mid-way.
async fn backlog(db: &PgPool, count: i32) {
    sqlx::query(
        "insert into workspaces (id, label) values ('00000000-0000-0000-0000-000000000001', 'w')",
    )
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "insert into deployments (id, workspace_id, label, release_name, namespace, type, executor, deleted_at, cluster_id)
         select gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'old-' || i, 'old-' || i,
                'elsewhere-' || i, 'airflow', 'CeleryExecutor', now() - interval '30 days',
                (select id from clusters where name = 'default')
         from generate_series(1, $1) as i",
    )
    .bind(count)
    .execute(db)
    .await
    .unwrap();
}

/// SIGTERM during a scheduled run: new requests are refused, the running
/// batch stops at a Deployment boundary, the process exits within its bound,
/// and every Deployment removed has its reclaim event (nothing half-done).
#[sqlx::test]
async fn sigterm_during_a_run_exits_cleanly_and_leaves_nothing_half_done(db: PgPool) {
    let config = pool_config(5, "* * * * * *");
    let app = TestApp::spawn(&config, db.clone()).await;
    // A backlog big enough to be mid-run when the signal comes.
    backlog(&db, 20_000).await;
    drop(app);

    let dir = std::env::temp_dir().join(format!("nspool-sigterm-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, &config).unwrap();
    let (mut serve, lines) = crate::support::serve_process(
        std::path::Path::new(env!("CARGO_BIN_EXE_nspool")),
        &crate::support::database_url(&db),
        &config_path,
    );
    let address =
        tokio::task::spawn_blocking(move || crate::support::listening_address(&lines, |_| {}))
            .await
            .unwrap();

    // Wait for a run to be going, then SIGTERM.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let going: i64 = sqlx::query_scalar("select count(*) from events where kind = 'reclaim'")
            .fetch_one(&db)
            .await
            .unwrap();
        if going > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reclaim run started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let signalled = std::time::Instant::now();
    // SAFETY: kill with a valid pid and signal has no memory effects.
    unsafe { libc::kill(serve.0.id() as libc::pid_t, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || serve.0.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(30),
        "exits within its bound"
    );
    assert!(
        reqwest::get(format!("http://{address}/healthz"))
            .await
            .is_err(),
        "no longer takes requests"
    );

    // Nothing half-done: removed Deployments and reclaim events match one to one.
    let left: i64 = sqlx::query_scalar("select count(*) from deployments")
        .fetch_one(&db)
        .await
        .unwrap();
    let events: i64 = sqlx::query_scalar("select count(*) from events where kind = 'reclaim'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        left + events,
        20_000,
        "every removed Deployment has its event"
    );
    let unfinished: i64 =
        sqlx::query_scalar("select count(*) from reclaim_runs where finished_at is null")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(unfinished, 0, "the running run recorded how it ended");
    assert!(left > 0, "the signal came mid-run");
    let stopped: Option<String> = sqlx::query_scalar(
        "select errors from reclaim_runs where reclaimed > 0 order by started_at desc limit 1",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(stopped.unwrap_or_default().contains("stopped by shutdown"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A run killed mid-way (`kill -9` of `nspool reclaim`: no goodbye, its
/// lease simply stops being renewed) is taken over by a serving replica once
/// its lease expired and finished: the row counts every Deployment it and
/// its taker reclaimed, and nothing waits for the next tick.
#[sqlx::test]
async fn a_run_killed_mid_way_is_taken_over_and_finished_with_its_real_count(db: PgPool) {
    let config = pool_config(5, "0 0 1 1 *");
    let app = TestApp::spawn(&config, db.clone()).await;
    backlog(&db, 20_000).await;
    let dir = std::env::temp_dir().join(format!("nspool-kill-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, &config).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_nspool"))
        .args(["reclaim", "--older-than", "14", "--config"])
        .arg(&config_path)
        .env("DATABASE_URL", crate::support::database_url(&db))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut run = crate::support::ChildGuard(run);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done: Option<i32> =
            sqlx::query_scalar("select reclaimed from reclaim_runs where finished_at is null")
                .fetch_optional(&db)
                .await
                .unwrap();
        if done.is_some_and(|n| n >= 100) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never got going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.0.kill().unwrap();
    let _ = run.0.wait();
    let (killed_at, counted): (i32, i64) = sqlx::query_as(
        "select r.reclaimed, (select count(*) from events where kind = 'reclaim')
         from reclaim_runs r where r.finished_at is null",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(
        killed_at > 0 && i64::from(killed_at) == counted,
        "{killed_at} vs {counted} events"
    );

    // No other run starts meanwhile (one unfinished run at a time)…
    let second = nspool::store::NewRun {
        tick: None,
        replica: "test",
        older_than_days: 14,
        dry_run: true,
        holder: "test/second",
        lease: Duration::from_secs(15),
    };
    assert_eq!(
        app.service.store().start_run(&second).await.unwrap(),
        nspool::store::RunStart::Busy,
        "a second run started beside the unfinished one"
    );
    // …and a serving replica takes the dead one over once its lease expired.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let taker = tokio::spawn(nspool::jobs::reclaim_takeover::watch(
        app.service.clone(),
        stopped,
    ));
    let started = std::time::Instant::now();
    loop {
        let finished: Option<(i32, i32, Option<String>)> = sqlx::query_as(
            "select reclaimed, taken_over, errors from reclaim_runs
             where finished_at is not null and trigger = 'manual' and not dry_run",
        )
        .fetch_optional(&db)
        .await
        .unwrap();
        if let Some((reclaimed, taken_over, errors)) = finished {
            assert_eq!((reclaimed, taken_over, errors), (20_000, 1, None));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the dead run was not finished within a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "killed after {killed_at}; taken over and finished {:?} later",
        started.elapsed()
    );
    let left: i64 = sqlx::query_scalar("select count(*) from deployments")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let _ = stop.send(true);
    let _ = taker.await;
    let _ = std::fs::remove_dir_all(dir);
}
