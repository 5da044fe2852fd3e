//! Pool hygiene against the fake API server: a released namespace is offered
//! again only once nothing its Deployment left is found in it, and every
//! pool namespace carries the platform's labels.

use crate::documents::{CREATE_DEPLOYMENT, DELETE_DEPLOYMENT};
use crate::fake_kube::FakeKube;
use crate::support::TestApp;
use axum::http::Method;
use nspool::kube::client::KubeClient;
use nspool::kube::reconcile::{KubeWorker, PassReport};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::Duration;

const CREATE: &str = r#"
global:
  namespaceLabels: {team: data}
  features:
    namespacePools:
      enabled: true
      namespaces: {create: true, names: [team-a, team-b]}
"#;

const VIEW: &str = "{ poolNamespaces { name state note leftovers leftoversCheckedAt releasingSince labelsMissing kubeError } }";

/// The fake API server, a replica that checks released namespaces, and its
/// admin token, after the first pass (the pool namespaces applied).
async fn cluster(config: &str, db: PgPool) -> (FakeKube, TestApp, String) {
    let fake = FakeKube::start().await;
    let app = TestApp::spawn_in_cluster(config, db).await;
    let admin = app.admin().await;
    pass(&app, &fake).await;
    (fake, app, admin)
}

async fn pass(app: &TestApp, fake: &FakeKube) -> PassReport {
    fake.pass(&app.service).await
}

async fn claim(app: &TestApp, token: &str, ns: &str) -> String {
    let ws = app.create_workspace(token, &format!("ws-{ns}")).await;
    app.ok(
        Some(token),
        CREATE_DEPLOYMENT,
        json!({"label": format!("on-{ns}"), "workspaceId": ws, "executor": "CeleryExecutor", "namespace": ns}),
    )
    .await["createDeployment"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn release(app: &TestApp, token: &str, id: &str) {
    app.ok(
        Some(token),
        DELETE_DEPLOYMENT,
        json!({"deploymentId": id, "deploymentHardDelete": true}),
    )
    .await;
}

async fn namespace(app: &TestApp, token: &str, name: &str) -> Value {
    let view = app.ok(Some(token), VIEW, Value::Null).await;
    view["poolNamespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap()
}

/// Time passes for the next leftover check (or retry) of `name`.
pub async fn due(db: &PgPool, name: &str) {
    sqlx::query(
        "update pool_namespaces set leftovers_checked_at = leftovers_checked_at - interval '1 hour',
                kube_next_attempt_at = null where name = $1",
    )
    .bind(name)
    .execute(db)
    .await
    .unwrap();
}

async fn events(db: &PgPool, name: &str) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as("select kind, actor, reason from events where namespace = $1 order by id")
        .bind(name)
        .fetch_all(db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_clean_release_is_offered_again_after_one_check(db: PgPool) {
    let (fake, app, admin) = cluster(CREATE, db.clone()).await;
    // nspool may list leftovers there, and only there: its own RoleBinding.
    let (binding, _) = fake
        .object("RoleBinding", "team-a", "nspool-leftovers")
        .unwrap();
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "nspool-leftovers"})
    );
    assert_eq!(
        binding["subjects"][0],
        json!({"kind": "ServiceAccount", "name": "nspool", "namespace": "astronomer"})
    );
    // What the cluster put there is not a leftover.
    assert!(fake.object("ServiceAccount", "team-a", "default").is_some());
    assert!(
        fake.object("ConfigMap", "team-a", "kube-root-ca.crt")
            .is_some()
    );
    let id = claim(&app, &admin, "team-a").await;
    release(&app, &admin, &id).await;

    let ns = namespace(&app, &admin, "team-a").await;
    assert_eq!(ns["state"], "Releasing", "{ns}");
    assert!(ns["releasingSince"].is_string());
    // The database itself refuses a holder on a releasing namespace.
    let refused = sqlx::query(
        "update pool_namespaces set holder_deployment_id = gen_random_uuid() where name = 'team-a'",
    )
    .execute(&db)
    .await
    .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("pool_namespaces_releasing_check"),
        "{refused}"
    );
    assert!(!app.available(&admin).await.contains(&"team-a".to_owned()));
    // A claim of it now is refused cleanly.
    let ws = app.create_workspace(&admin, "early").await;
    let refused = app
        .gql(
            Some(&admin),
            CREATE_DEPLOYMENT,
            json!({"label": "early", "workspaceId": ws, "executor": "CeleryExecutor", "namespace": "team-a"}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "CONFLICT",
        "{refused}"
    );

    let report = pass(&app, &fake).await;
    assert_eq!(report.cleaned, ["team-a"]);
    let ns = namespace(&app, &admin, "team-a").await;
    assert_eq!(ns["state"], "Free");
    assert_eq!(ns["leftovers"], json!([]));
    assert!(ns["leftoversCheckedAt"].is_string());
    assert!(app.available(&admin).await.contains(&"team-a".to_owned()));
    let kinds: Vec<String> = events(&db, "team-a")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(
        kinds.ends_with(&["release".to_owned(), "clean".to_owned()]),
        "{kinds:?}"
    );
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn leftovers_hold_a_namespace_back_until_they_are_gone(db: PgPool) {
    let (fake, app, admin) = cluster(CREATE, db.clone()).await;
    let id = claim(&app, &admin, "team-a").await;
    // What uninstalling an Airflow release leaves, and what is not a leftover.
    fake.put(
        "PersistentVolumeClaim",
        "team-a",
        "data-foo-worker-0",
        json!({}),
    );
    fake.put(
        "Secret",
        "team-a",
        "sh.helm.release.v1.foo.v1",
        json!({"type": "helm.sh/release.v1"}),
    );
    fake.put(
        "Secret",
        "team-a",
        "default-token-abcde",
        json!({"type": "kubernetes.io/service-account-token"}),
    );
    release(&app, &admin, &id).await;

    let report = pass(&app, &fake).await;
    let expected = [
        "PersistentVolumeClaim/data-foo-worker-0",
        "Secret/sh.helm.release.v1.foo.v1",
    ];
    assert_eq!(
        report.leftovers,
        [("team-a".to_owned(), expected.map(str::to_owned).to_vec())]
    );
    let ns = namespace(&app, &admin, "team-a").await;
    assert_eq!(ns["state"], "Releasing");
    assert_eq!(ns["leftovers"], json!(expected));
    assert!(ns["note"].as_str().unwrap().contains("markNamespaceClean"));
    assert!(!app.available(&admin).await.contains(&"team-a".to_owned()));
    let last = events(&db, "team-a").await.pop().unwrap();
    assert_eq!(last.0, "leftovers");
    assert!(
        last.2
            .unwrap()
            .contains("PersistentVolumeClaim/data-foo-worker-0")
    );

    // Not due yet: the next check waits (2 s, doubling).
    let report = pass(&app, &fake).await;
    assert!(report.leftovers.is_empty() && report.cleaned.is_empty());

    // The owner removes the volume claim: still the Helm secret.
    fake.remove("PersistentVolumeClaim", "team-a", "data-foo-worker-0");
    due(&db, "team-a").await;
    let report = pass(&app, &fake).await;
    assert_eq!(report.leftovers[0].1, ["Secret/sh.helm.release.v1.foo.v1"]);
    fake.remove("Secret", "team-a", "sh.helm.release.v1.foo.v1");
    due(&db, "team-a").await;
    let report = pass(&app, &fake).await;
    assert_eq!(report.cleaned, ["team-a"]);
    assert!(app.available(&admin).await.contains(&"team-a".to_owned()));

    // Metrics count releasing namespaces and how long the oldest waits.
    let id = claim(&app, &admin, "team-b").await;
    fake.put("Pod", "team-b", "foo-scheduler-0", json!({}));
    release(&app, &admin, &id).await;
    pass(&app, &fake).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("nspool_pool_namespaces{state=\"releasing\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("nspool_pool_releasing_oldest_seconds "));
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn mark_namespace_clean_frees_it_and_keeps_who_and_why(db: PgPool) {
    let (fake, app, admin) = cluster(CREATE, db.clone()).await;
    let id = claim(&app, &admin, "team-a").await;
    fake.put(
        "PersistentVolumeClaim",
        "team-a",
        "data-foo-worker-0",
        json!({}),
    );
    release(&app, &admin, &id).await;
    pass(&app, &fake).await;

    const MARK: &str = "mutation($name: String!, $reason: String!) { markNamespaceClean(name: $name, reason: $reason) }";
    let editor = app.token("SYSTEM_EDITOR", None).await;
    for (token, name, reason, code) in [
        (&editor, "team-a", "x", "FORBIDDEN"),
        (&admin, "team-a", "  ", "BAD_USER_INPUT"),
        (&admin, "team-b", "x", "NOT_FOUND"),
        (&admin, "team-a\u{0}", "x", "BAD_USER_INPUT"),
    ] {
        app.err(
            Some(token),
            MARK,
            json!({"name": name, "reason": reason}),
            code,
        )
        .await;
    }

    let reason = "the volume holds nothing of the old tenant; its team keeps it";
    app.ok(
        Some(&admin),
        MARK,
        json!({"name": "team-a", "reason": reason}),
    )
    .await;
    // Read your own write: offered at once.
    assert!(app.available(&admin).await.contains(&"team-a".to_owned()));
    let (kind, actor, logged) = events(&db, "team-a").await.pop().unwrap();
    assert_eq!(kind, "mark_clean");
    assert!(actor.starts_with("token:"), "{actor}");
    assert_eq!(logged.as_deref(), Some(reason));
    // nspool never removed the volume claim.
    assert!(
        fake.object("PersistentVolumeClaim", "team-a", "data-foo-worker-0")
            .is_some()
    );
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn a_refused_list_is_recorded_and_retried_without_freeing(db: PgPool) {
    let (fake, app, admin) = cluster(CREATE, db.clone()).await;
    let id = claim(&app, &admin, "team-a").await;
    release(&app, &admin, &id).await;
    fake.fail(Some(Method::GET), "/namespaces/team-a/secrets", 403, None);
    let report = pass(&app, &fake).await;
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let ns = namespace(&app, &admin, "team-a").await;
    assert_eq!(ns["state"], "Releasing");
    assert!(ns["kubeError"].as_str().unwrap().contains("403"), "{ns}");
    assert!(!app.available(&admin).await.contains(&"team-a".to_owned()));
    // Retried with backoff, still refused, still releasing.
    due(&db, "team-a").await;
    pass(&app, &fake).await;
    assert_eq!(
        namespace(&app, &admin, "team-a").await["state"],
        "Releasing"
    );
    // Allowed again (RBAC fixed): the next retry finds it clean.
    fake.with(|s| s.faults.clear());
    due(&db, "team-a").await;
    let report = pass(&app, &fake).await;
    assert_eq!(report.cleaned, ["team-a"]);
    let ns = namespace(&app, &admin, "team-a").await;
    assert_eq!(
        (ns["state"].as_str(), ns["kubeError"].as_str()),
        (Some("Free"), None)
    );
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn a_check_cut_short_is_resumed_by_another_replica(db: PgPool) {
    let (fake, first, admin) = cluster(CREATE, db.clone()).await;
    let id = claim(&first, &admin, "team-a").await;
    release(&first, &admin, &id).await;
    // The first replica dies while its lists are in flight.
    fake.with(|s| s.latency = Duration::from_millis(300));
    let kube = KubeClient::for_url(&fake.url, 16).unwrap();
    let worker = KubeWorker::new(&first.service, kube);
    let cut = tokio::time::timeout(Duration::from_millis(100), worker.pass(false)).await;
    assert!(cut.is_err(), "the pass was cut short");
    assert_eq!(
        namespace(&first, &admin, "team-a").await["state"],
        "Releasing"
    );
    fake.with(|s| s.latency = Duration::ZERO);
    // Another replica (the state is in PostgreSQL) picks it up.
    let second = TestApp::spawn_in_cluster(CREATE, crate::support::another_pool(&db).await).await;
    let report = pass(&second, &fake).await;
    assert_eq!(report.cleaned, ["team-a"]);
    assert!(first.available(&admin).await.contains(&"team-a".to_owned()));
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn with_kubernetes_off_a_release_frees_at_once_and_says_so(db: PgPool) {
    let off = format!("{CREATE}nspool: {{kubernetes: {{mode: 'off'}}}}\n");
    // A namespace left releasing while checks were on is freed when they go off.
    let before = TestApp::spawn_in_cluster(CREATE, db.clone()).await;
    let admin = before.admin().await;
    let id = claim(&before, &admin, "team-b").await;
    release(&before, &admin, &id).await;
    assert_eq!(
        namespace(&before, &admin, "team-b").await["state"],
        "Releasing"
    );

    let app = TestApp::spawn_in_cluster(&off, crate::support::another_pool(&db).await).await;
    assert_eq!(namespace(&app, &admin, "team-b").await["state"], "Free");
    let (kind, _, reason) = events(&db, "team-b").await.pop().unwrap();
    assert_eq!(kind, "clean");
    assert!(reason.unwrap().contains("not checked"));
    let id = claim(&app, &admin, "team-a").await;
    release(&app, &admin, &id).await;
    let ns = namespace(&app, &admin, "team-a").await;
    assert_eq!(ns["state"], "Free");
    assert!(ns["note"].as_str().unwrap().contains("not checked"), "{ns}");
}

#[sqlx::test]
async fn pool_labels_in_create_mode_keep_labels_others_own(db: PgPool) {
    let (fake, app, admin) = cluster(CREATE, db).await;
    let labels = |fake: &FakeKube| {
        fake.object("Namespace", "", "team-a").unwrap().0["metadata"]["labels"].clone()
    };
    assert_eq!(labels(&fake)["platform-release"], "astronomer");
    assert_eq!(labels(&fake)["team"], "data");
    // Someone else labels it; a forced re-apply of nspool's objects keeps theirs.
    fake.label_namespace_as("kubectl", "team-a", "owner", "data-eng");
    app.ok(Some(&admin), "mutation { resyncPool }", Value::Null)
        .await;
    let report = pass(&app, &fake).await;
    assert_eq!(report.applied, 2);
    assert_eq!(labels(&fake)["owner"], "data-eng");
    assert_eq!(labels(&fake)["platform-release"], "astronomer");
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn pool_labels_in_verify_mode_ride_on_claim_labels_or_are_reported(db: PgPool) {
    let verify = |claim_labels: bool| {
        format!(
            "global:\n  features:\n    namespacePools:\n      enabled: true\n      namespaces: {{create: false, names: [ns-a]}}\nnspool:\n  platformRelease: prod\n  kubernetes: {{claimLabels: {claim_labels}}}\n"
        )
    };
    let fake = FakeKube::start().await;
    fake.create_namespace("ns-a");
    // Claim labels off: nothing is written; the check reports what is missing.
    let app = TestApp::spawn_in_cluster(&verify(false), db.clone()).await;
    let admin = app.admin().await;
    let report = pass(&app, &fake).await;
    assert_eq!(
        report.labels_missing,
        [("ns-a".to_owned(), vec!["platform-release=prod".to_owned()])]
    );
    assert_eq!(
        namespace(&app, &admin, "ns-a").await["labelsMissing"],
        json!(["platform-release=prod"])
    );
    assert!(fake.with(|s| s.requests.iter().all(|(m, _)| m != "PATCH")));

    // Claim labels on: applied under nspool-claims, kubectl's own labels kept.
    fake.label_namespace_as("kubectl", "ns-a", "owner", "data-eng");
    let app =
        TestApp::spawn_in_cluster(&verify(true), crate::support::another_pool(&db).await).await;
    pass(&app, &fake).await;
    let (live, _) = fake.object("Namespace", "", "ns-a").unwrap();
    assert_eq!(live["metadata"]["labels"]["platform-release"], "prod");
    assert_eq!(live["metadata"]["labels"]["owner"], "data-eng");
    assert!(
        live["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "nspool-claims")
    );
    // A re-check finds nothing missing any more.
    sqlx::query("update pool_namespaces set rbac_checked_at = null")
        .execute(&db)
        .await
        .unwrap();
    let report = pass(&app, &fake).await;
    assert!(
        report.labels_missing.is_empty(),
        "{:?}",
        report.labels_missing
    );
    assert_eq!(
        namespace(&app, &admin, "ns-a").await["labelsMissing"],
        json!([])
    );
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn the_worker_offers_a_clean_release_again_within_seconds(db: PgPool) {
    let fake = FakeKube::start().await;
    let app = TestApp::spawn_in_cluster(CREATE, db).await;
    let admin = app.admin().await;
    // The worker as `serve` runs it: woken by releases, else every 2 s.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let kube = KubeClient::for_url(&fake.url, 16).unwrap();
    let worker = tokio::spawn(KubeWorker::new(&app.service, kube).run(stopped));
    let id = claim(&app, &admin, "team-a").await;
    release(&app, &admin, &id).await;
    let released = std::time::Instant::now();
    while !app.available(&admin).await.contains(&"team-a".to_owned()) {
        assert!(
            released.elapsed() < Duration::from_secs(15),
            "never offered again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "a clean release was offered again after {:?}",
        released.elapsed()
    );
    let _ = stop.send(true);
    let _ = worker.await;
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn rbac_check_names_what_a_released_namespace_holds(db: PgPool) {
    let (fake, app, admin) = cluster(CREATE, db.clone()).await;
    for ns in ["team-a", "team-b"] {
        let id = claim(&app, &admin, ns).await;
        release(&app, &admin, &id).await;
    }
    fake.put(
        "PersistentVolumeClaim",
        "team-b",
        "data-foo-worker-0",
        json!({}),
    );
    let kubeconfig = fake.kubeconfig();
    let dir = kubeconfig.parent().unwrap().to_owned();
    let config = dir.join("config.yaml");
    std::fs::write(&config, CREATE).unwrap();
    let url = crate::support::database_url(&db);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_nspool"))
            .args(["rbac", "check", "--config"])
            .arg(&config)
            .env("KUBECONFIG", &kubeconfig)
            .env("DATABASE_URL", &url)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("CLEAN   team-a: released, nothing left behind"),
        "{stdout}"
    );
    assert!(
        stdout.contains("LEFT    team-b: releasing, not offered while left behind: PersistentVolumeClaim/data-foo-worker-0"),
        "{stdout}"
    );
    assert_eq!(
        namespace(&app, &admin, "team-b").await["state"],
        "Releasing"
    );
    fake.assert_never_deleted();
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test]
async fn what_the_platform_puts_everywhere_can_be_ignored(db: PgPool) {
    let config = format!(
        "{CREATE}nspool: {{kubernetes: {{ignoredLeftovers: [ConfigMap/istio-ca-root-cert, 'Secret/platform-pull-*']}}}}\n"
    );
    let (fake, app, admin) = cluster(&config, db).await;
    let id = claim(&app, &admin, "team-a").await;
    fake.put("ConfigMap", "team-a", "istio-ca-root-cert", json!({}));
    fake.put(
        "Secret",
        "team-a",
        "platform-pull-quay",
        json!({"type": "kubernetes.io/dockerconfigjson"}),
    );
    fake.put(
        "Secret",
        "team-a",
        "foo-fernet-key",
        json!({"type": "Opaque"}),
    );
    release(&app, &admin, &id).await;
    let report = pass(&app, &fake).await;
    assert_eq!(report.leftovers[0].1, ["Secret/foo-fernet-key"]);
    fake.remove("Secret", "team-a", "foo-fernet-key");
    due(&app.db, "team-a").await;
    let report = pass(&app, &fake).await;
    assert_eq!(report.cleaned, ["team-a"]);
    fake.assert_never_deleted();
}
