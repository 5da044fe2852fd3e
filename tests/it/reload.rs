//! Reloading the config without a restart: a good config is applied whole
//! (pool, Houston flags, quotas, the reclaim job), a bad one changes nothing
//! and is reported; the service never stops. Through the service, and
//! through the binary (SIGHUP, and a change of the file alone).

use crate::support::{TestApp, database_url, listening_address, metric_value, pool_config};
use nspool::config::Settings;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};

fn parse(yaml: &str) -> Result<Settings, nspool::config::ConfigErrors> {
    Settings::parse(yaml, &|_| None)
}

const FLAGS: &str = "{ appConfig { manualReleaseNames hardDeleteDeployment } }";

#[sqlx::test]
async fn a_good_reload_applies_the_pool_flags_and_quota_without_a_restart(db: PgPool) {
    let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    let before = pool_config(&names(&["ns-a", "ns-b"]), "");
    let app = TestApp::spawn(&before, db).await;
    let admin = app.admin().await;
    let flags = app.ok(Some(&admin), FLAGS, Value::Null).await;
    assert_eq!(flags["appConfig"]["manualReleaseNames"], false);

    let after = pool_config(
        &names(&["ns-a", "ns-c"]),
        "astronomer: {houston: {config: {deployments: {manualReleaseNames: true}}, cleanupDeployments: {schedule: '30 2 * * *'}}}\n\
         nspool: {workspaceQuota: 1, listen: '127.0.0.1:1'}",
    );
    let report = app
        .service
        .reload(parse(&after))
        .await
        .expect("a valid config is applied");
    assert_eq!(report.sync.added, ["ns-c"]);
    assert_eq!(report.sync.retired, ["ns-b"]);
    assert!(report.cleanup_changed);
    assert_eq!(report.needs_restart, ["nspool.listen"]);
    assert_ne!(
        app.service.settings().service.listen.to_string(),
        "127.0.0.1:1",
        "what needs a restart keeps its running value"
    );

    // The writer's replica reads the new pool at once; the flags and quota apply.
    let started = Instant::now();
    while app.available(&admin).await != ["ns-a", "ns-c"] {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the new pool is never offered"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let flags = app.ok(Some(&admin), FLAGS, Value::Null).await;
    assert_eq!(flags["appConfig"]["manualReleaseNames"], true);
    let job = app
        .ok(Some(&admin), "{ reclaimJob { schedule } }", Value::Null)
        .await;
    assert!(
        job["reclaimJob"]["schedule"]
            .as_str()
            .unwrap()
            .contains("30 2"),
        "{job}"
    );
    let ws = app.create_workspace(&admin, "quota").await;
    let quota = app
        .ok(
            Some(&admin),
            "query($ws: Uuid!) { workspace(workspaceUuid: $ws) { namespaceQuota } }",
            json!({"ws": ws}),
        )
        .await;
    assert_eq!(quota["workspace"]["namespaceQuota"], 1);

    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "nspool_config_reloads_total{outcome=\"ok\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&metrics, "nspool_config_last_reload_failed"),
        Some(0.0)
    );
    assert!(
        metric_value(
            &metrics,
            "nspool_config_last_reload_success_timestamp_seconds"
        )
        .unwrap()
            > 0.0
    );
    let logged: i64 =
        sqlx::query_scalar("select count(*) from events where kind = 'config_reload'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(logged, 1);
}

#[sqlx::test]
async fn a_bad_reload_changes_nothing_and_is_reported_until_a_good_one(db: PgPool) {
    let config = pool_config(&["ns-a".into(), "ns-b".into()], "");
    let app = TestApp::spawn(&config, db).await;
    let admin = app.admin().await;
    let rows = app.snapshot().await;
    let bad = pool_config(
        &["ns-a".into(), "Not_A_Name".into()],
        "astronomer: {houston: {cleanupDeployments: {olderThan: -3}}}",
    );
    assert!(app.service.reload(parse(&bad)).await.is_none());
    assert_eq!(app.snapshot().await, rows, "nothing changed");
    assert_eq!(app.available(&admin).await, ["ns-a", "ns-b"]);
    let status = app.service.reload_status();
    let (_, errors) = status
        .failing
        .expect("the failure is kept for the dashboard");
    assert!(
        errors.iter().any(|e| e.contains("namespaces.names")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("olderThan")), "{errors:?}");
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "nspool_config_reloads_total{outcome=\"failed\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&metrics, "nspool_config_last_reload_failed"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "nspool_config_last_reload_success_timestamp_seconds"
        ),
        Some(0.0)
    );

    // Still serving; a good config afterwards clears the report.
    app.ok(Some(&admin), "{ workspaces { id } }", Value::Null)
        .await;
    assert!(app.service.reload(parse(&config)).await.is_some());
    assert!(app.service.reload_status().failing.is_none());
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "nspool_config_last_reload_failed"),
        Some(0.0)
    );
}

/// Issue 25: a misspelt pool key (`enabeld`) in a reloaded file is refused
/// whole, like any bad config: the pool is not turned off, nothing else of
/// the file (here a new name and a quota) is half-applied.
#[sqlx::test]
async fn a_reload_with_a_misspelt_pool_key_is_refused_whole(db: PgPool) {
    let config = pool_config(&["ns-a".into(), "ns-b".into()], "");
    let app = TestApp::spawn(&config, db).await;
    let admin = app.admin().await;
    let rows = app.snapshot().await;
    let typo = "global: {features: {namespacePools: {enabeld: true, namespaces: {names: [ns-a, ns-b, ns-c]}}}}\nnspool: {workspaceQuota: 1}\n";
    assert!(app.service.reload(parse(typo)).await.is_none());
    assert_eq!(app.snapshot().await, rows, "nothing changed");
    assert_eq!(app.available(&admin).await, ["ns-a", "ns-b"]);
    let (_, errors) = app
        .service
        .reload_status()
        .failing
        .expect("the refusal is kept for the dashboard");
    assert!(
        errors.iter().any(|e| e.contains(
            "global.features.namespacePools.enabeld: unknown key; did you mean `enabled`?"
        )),
        "{errors:?}"
    );
}

/// The binary: SIGHUP reloads, a change of the file alone reloads (as a
/// mounted ConfigMap changes), a bad file is refused while serving goes on.
#[sqlx::test]
async fn serve_reloads_on_sighup_and_on_a_change_of_the_file(db: PgPool) {
    let url = database_url(&db);
    let dir = std::env::temp_dir().join(format!(
        "nspool-it-reload-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    let write = |names: &[&str]| {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        std::fs::write(&file, pool_config(&names, "")).unwrap();
    };
    write(&["ns-a"]);
    let token = std::process::Command::new(env!("CARGO_BIN_EXE_nspool"))
        .env("DATABASE_URL", &url)
        .args(["token", "create", "--role", "SYSTEM_VIEWER"])
        .output()
        .unwrap();
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    let (child, lines) = crate::support::serve_process(
        std::path::Path::new(env!("CARGO_BIN_EXE_nspool")),
        &url,
        &file,
    );
    let address = listening_address(&lines, |_| {});
    // Idle connections dropped before the server closes an idle keep-alive
    // (10 s): the file changes below take the 10 s settle time to apply.
    let client = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let available = || async {
        let answer: Value = client
            .post(format!("http://{address}/v1"))
            .header("authorization", &token)
            .json(&json!({"query": "{ availableNamespaces { name } }"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["data"]["availableNamespaces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n["name"].as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let until = |want: Vec<&'static str>, what: &'static str| {
        let available = &available;
        async move {
            let started = Instant::now();
            while available().await != want {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "{what}: never {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    until(vec!["ns-a"], "start").await;

    // SIGHUP. (The poll would see the change too; the signal is at once.)
    write(&["ns-a", "ns-b"]);
    // SAFETY: kill with a valid pid and signal has no memory effects.
    unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGHUP) };
    until(vec!["ns-a", "ns-b"], "after SIGHUP").await;

    // The file alone, replaced as a ConfigMap's is (a new file renamed over it).
    let next = dir.join("config.yaml.new");
    std::fs::write(
        &next,
        pool_config(&["ns-a".into(), "ns-b".into(), "ns-c".into()], ""),
    )
    .unwrap();
    std::fs::rename(&next, &file).unwrap();
    until(vec!["ns-a", "ns-b", "ns-c"], "after the file changed").await;

    // A bad file: refused, logged with its key, served on.
    std::fs::write(
        &file,
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: [BAD]}}}}\n",
    )
    .unwrap();
    let started = Instant::now();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the refusal is logged");
        if line.contains("config reload refused") && line.contains("namespaces.names") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20));
    }
    assert_eq!(
        available().await,
        ["ns-a", "ns-b", "ns-c"],
        "the last good config serves"
    );
    drop(child);
    let _ = std::fs::remove_dir_all(dir);
}

/// The dashboard tells a signed-in person that the last reload was refused,
/// with each error's key, until a good one comes.
#[sqlx::test]
async fn the_dashboard_shows_a_refused_reload(db: PgPool) {
    let config = pool_config(&["ns-a".into()], "");
    let app = TestApp::spawn(&config, db).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = crate::dashboard_actions::session(&app, &app.admin().await).await;
    let page = || async {
        client
            .get(app.url("/"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(page().await.contains("Config as read at start"));
    let bad = pool_config(&["ns-a".into()], "nspool: {workspaceQuota: lots}");
    assert!(app.service.reload(parse(&bad)).await.is_none());
    let html = page().await;
    assert!(html.contains("id=\"reload-failed\""), "{html}");
    assert!(
        html.contains("nspool.workspaceQuota"),
        "the error names its key"
    );
    assert!(app.service.reload(parse(&config)).await.is_some());
    let html = page().await;
    assert!(!html.contains("id=\"reload-failed\""));
    assert!(html.contains("Config last reloaded at"));
}

/// A namespace listed again after it was retired is free since it came
/// back, not since it was first added.
#[sqlx::test]
async fn a_restored_namespace_is_free_since_it_came_back(db: PgPool) {
    let both = pool_config(&["ns-a".into(), "ns-b".into()], "");
    let app = TestApp::spawn(&both, db).await;
    sqlx::query("update pool_namespaces set added_at = added_at - interval '3 days', offered_changed_at = offered_changed_at - interval '3 days'")
        .execute(&app.db)
        .await
        .unwrap();
    let one = pool_config(&["ns-a".into()], "");
    app.service.reload(parse(&one)).await.expect("retired");
    let report = app.service.reload(parse(&both)).await.expect("restored");
    assert_eq!(report.sync.restored, ["ns-b"]);
    let (added, since): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as(
            "select added_at, offered_changed_at from pool_namespaces where name = 'ns-b'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(since - added > chrono::Duration::days(2), "{added} {since}");
    let html = crate::dashboard_actions::signed_in_page(&app, &app.admin().await, "").await;
    let row = html
        .split("<tr id=\"ns-ns-b\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    let shown = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(row.contains(&shown), "since {shown}: {row}");
}

/// A config file grown past the size bound is refused at reload as at start:
/// read no further than the bound, the running config stays, the error
/// names the size, and serving goes on.
#[sqlx::test]
async fn a_config_grown_past_its_size_bound_is_refused_at_reload(db: PgPool) {
    let config = pool_config(&["ns-a".into(), "ns-b".into()], "");
    let app = TestApp::spawn(&config, db).await;
    let admin = app.admin().await;
    let dir = std::env::temp_dir().join(format!("nspool-reload-size-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.yaml");
    let padding =
        format!("# {}\n", "x".repeat(1000)).repeat(nspool::config::MAX_CONFIG_BYTES / 1000 + 10);
    std::fs::write(&path, format!("{config}{padding}")).unwrap();
    let read = Settings::load(Some(&path));
    assert!(app.service.reload(read).await.is_none());
    let (_, errors) = app.service.reload_status().failing.expect("reported");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("MiB") || e.contains("bytes")),
        "{errors:?}"
    );
    assert_eq!(app.available(&admin).await, ["ns-a", "ns-b"]);
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "nspool_config_reloads_total{outcome=\"failed\"}"),
        Some(1.0)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Create mode over `a` and `b` with the platform's namespace labels.
fn labelled(a: &str, b: &str) -> String {
    format!(
        "global:\n  namespaceLabels: {{team: data, tier: gold}}\n  features:\n    namespacePools:\n      enabled: true\n      namespaces: {{create: true, names: [{a}, {b}]}}\n"
    )
}

/// What nspool applies follows a reload: the next Kubernetes pass re-applies
/// every managed namespace with the new labels, and a label the config no
/// longer lists is removed by the API server (server-side apply drops fields
/// nspool stopped sending), without a restart. Against the real API server.
#[sqlx::test]
async fn a_reload_reapplies_what_nspool_writes_to_its_namespaces(db: PgPool) {
    use crate::cluster::{Account, Cluster};
    let cluster = Cluster::connect().await;
    let (a, b) = (cluster.ns("team-a"), cluster.ns("team-b"));
    let config = labelled(&a, &b);
    let app = TestApp::spawn_in_cluster(&config, db).await;
    let pass = || cluster.pass(&app.service, Account::Create);
    assert_eq!(pass().await.applied, 2);
    let labels = |ns: String| {
        let cluster = &cluster;
        async move {
            cluster
                .object("Namespace", "", &ns)
                .await
                .expect("namespace")["metadata"]["labels"]
                .clone()
        }
    };
    assert_eq!(labels(a.clone()).await["tier"], "gold");

    let relabelled = config.replace("{team: data, tier: gold}", "{team: ml}");
    let report = app
        .service
        .reload(parse(&relabelled))
        .await
        .expect("a good reload");
    assert!(
        report.needs_restart.is_empty(),
        "{:?}",
        report.needs_restart
    );
    assert_eq!(pass().await.applied, 2, "both applied again");
    for ns in [&a, &b] {
        let now = labels(ns.clone()).await;
        assert_eq!(now["team"], "ml", "{now}");
        assert!(now.get("tier").is_none(), "dropped with the config: {now}");
    }
    // Nothing changed since: the next pass applies nothing.
    assert_eq!(pass().await.applied, 0);
    cluster.assert_never_deleted();
}

/// The same config again (each SIGHUP, a file touched) changes nothing: no
/// sync, no event, nothing offered differently.
#[sqlx::test]
async fn an_identical_reload_changes_nothing(db: PgPool) {
    let names = ["ns-a".to_owned(), "ns-b".to_owned()];
    let config = pool_config(&names, "");
    let app = TestApp::spawn(&config, db).await;
    let events = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from events")
            .fetch_one(&app.db)
            .await
            .unwrap()
    };
    let generation = || async {
        sqlx::query_scalar::<_, i64>("select coalesce(max(generation), 0) from pool_namespaces")
            .fetch_one(&app.db)
            .await
            .unwrap()
    };
    let (events_before, generation_before) = (events().await, generation().await);
    for _ in 0..50 {
        let report = app
            .service
            .reload(parse(&config))
            .await
            .expect("the same config is fine");
        assert!(report.sync.is_empty() && !report.cleanup_changed);
    }
    assert_eq!(
        events().await,
        events_before,
        "an identical reload logged an event"
    );
    assert_eq!(generation().await, generation_before);
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "nspool_config_reloads_total{outcome=\"ok\"}"),
        Some(50.0)
    );
}

/// A reload never empties the pool on its own: turning pool mode off (an
/// emptied file), dropping a held namespace, or dropping most of the pool is
/// refused, reported, and changes nothing; a smaller change applies.
#[sqlx::test]
async fn a_reload_never_empties_the_pool_on_its_own(db: PgPool) {
    let all: Vec<String> = ["ns-a", "ns-b", "ns-c", "ns-d", "ns-e"]
        .iter()
        .map(|n| (*n).to_owned())
        .collect();
    let app = TestApp::spawn(&pool_config(&all, ""), db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "holder").await;
    app.ok(
        Some(&admin),
        crate::documents::CREATE_DEPLOYMENT,
        json!({"label": "x", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "ns-a"}),
    )
    .await;
    let rows = || async {
        sqlx::query_as::<_, (String, bool)>(
            "select name, retired_at is not null from pool_namespaces order by name",
        )
        .fetch_all(&app.db)
        .await
        .unwrap()
    };
    let before = rows().await;
    let keep = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    for (config, says) in [
        (String::new(), "turns pool mode off"),
        (
            "global: {features: {namespacePools: {enabled: false}}}\n".to_owned(),
            "turns pool mode off",
        ),
        (
            pool_config(&keep(&["ns-b", "ns-c", "ns-d", "ns-e"]), ""),
            "Deployments hold (ns-a)",
        ),
        (
            pool_config(&keep(&["ns-a", "ns-b"]), ""),
            "drops 3 of the 5 pool namespaces",
        ),
    ] {
        assert!(
            app.service.reload(parse(&config)).await.is_none(),
            "applied: {config}"
        );
        let status = app.service.reload_status();
        let (_, errors) = status.failing.expect("reported");
        assert!(errors[0].contains(says), "{errors:?}");
        assert!(errors[0].contains("restart nspool"), "{errors:?}");
        assert_eq!(rows().await, before, "a refused reload changed the pool");
    }
    let retired: i64 = sqlx::query_scalar("select count(*) from events where kind = 'retire'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(retired, 0);
    // Two of five, none held: a reload does that.
    let report = app
        .service
        .reload(parse(&pool_config(&keep(&["ns-a", "ns-b", "ns-c"]), "")))
        .await
        .expect("a small change applies");
    assert_eq!(report.sync.retired, ["ns-d", "ns-e"]);
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "nspool_config_reloads_total{outcome=\"failed\"}"),
        Some(4.0)
    );
}

/// The file watcher applies a change only once the file has stayed as it
/// is: a list caught half-written (`nk` of `nkx-prod`) is never applied.
#[sqlx::test]
async fn a_file_caught_mid_write_is_never_applied(db: PgPool) {
    let dir = std::env::temp_dir().join(format!("nspool-settle-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    let block = |names: &[&str]| {
        format!(
            "global:\n  features:\n    namespacePools:\n      enabled: true\n      namespaces:\n        names:\n{}",
            names
                .iter()
                .map(|n| format!("          - {n}\n"))
                .collect::<String>()
        )
    };
    std::fs::write(&file, block(&["ns-a", "ns-b"])).unwrap();
    let app = TestApp::spawn(&block(&["ns-a", "ns-b"]), db).await;
    let settle = Duration::from_secs(2);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(nspool::jobs::config_watch::watch_settling(
        app.service.clone(),
        file.clone(),
        std::sync::Arc::new(tokio::sync::Mutex::new(None)),
        stopped,
        settle,
    ));
    // A slow writer: the list cut after `nk` for a while (shorter than the
    // settle time, longer than the 2 s poll), then the whole file.
    std::fs::write(&file, block(&["ns-a", "ns-b", "nk"])).unwrap();
    tokio::time::sleep(settle - Duration::from_millis(500)).await;
    std::fs::write(&file, block(&["ns-a", "ns-b", "nkx-prod"])).unwrap();
    let started = Instant::now();
    loop {
        let names: Vec<String> =
            sqlx::query_scalar("select name from pool_namespaces order by name")
                .fetch_all(&app.db)
                .await
                .unwrap();
        assert!(
            !names.contains(&"nk".to_owned()),
            "the half-written file was applied"
        );
        if names.contains(&"nkx-prod".to_owned()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let _ = watcher.await;
    let _ = std::fs::remove_dir_all(dir);
}
