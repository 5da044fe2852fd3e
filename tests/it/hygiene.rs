//! Pool hygiene against a real API server (`cluster.rs`), nspool as its own
//! ServiceAccount: a released namespace is offered again only once nothing
//! its Deployment left is found in it, and every pool namespace carries the
//! platform's labels. (A pass cut short mid-flight needs an injected delay:
//! that one test runs against the fake API server.)

use crate::cluster::{Account, Cluster};
use crate::documents::CREATE_DEPLOYMENT;
use crate::fake_kube::FakeKube;
use crate::support::TestApp;
use nspool::kube::client::KubeClient;
use nspool::kube::reconcile::{KubeWorker, PassReport};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::Duration;

/// Create mode over `names`, with the platform's own namespace labels.
fn create(names: &[&str]) -> String {
    format!(
        "global:\n  namespaceLabels: {{team: data}}\n  features:\n    namespacePools:\n      enabled: true\n      namespaces: {{create: true, names: [{}]}}\n",
        names.join(", ")
    )
}

const VIEW: &str = "{ poolNamespaces { name state note leftovers leftoversCheckedAt releasingSince labelsMissing kubeError } }";

/// The cluster, two pool namespaces of this test's own, a replica that
/// checks released namespaces and its admin token, after the first pass
/// (the pool namespaces applied).
struct Setup {
    cluster: Cluster,
    app: TestApp,
    admin: String,
    a: String,
    b: String,
}

async fn setup_with(extra: &str, db: PgPool) -> Setup {
    let cluster = Cluster::connect().await;
    let (a, b) = (cluster.ns("team-a"), cluster.ns("team-b"));
    let app = TestApp::spawn_in_cluster(&format!("{}{extra}", create(&[&a, &b])), db).await;
    let admin = app.admin().await;
    let setup = Setup {
        cluster,
        app,
        admin,
        a,
        b,
    };
    let report = setup.pass().await;
    assert_eq!(report.applied, 2, "{report:?}");
    setup
}

async fn setup(db: PgPool) -> Setup {
    setup_with("", db).await
}

impl Setup {
    async fn pass(&self) -> PassReport {
        self.cluster.pass(&self.app.service, Account::Create).await
    }
}

/// Claims `ns` (a workspace of its own): the Deployment's id.
async fn claim(app: &TestApp, token: &str, ns: &str) -> String {
    crate::support::claim_in_own_workspace(app, token, ns).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn release(app: &TestApp, token: &str, id: &str) {
    crate::support::hard_delete(app, token, &json!(id)).await;
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
    let Setup {
        cluster,
        app,
        admin,
        a,
        ..
    } = setup(db.clone()).await;
    // nspool may list leftovers there, and only there: its own RoleBinding.
    let binding = cluster
        .object("RoleBinding", &a, "nspool-leftovers")
        .await
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
    cluster.wait_for_controller_defaults(&a).await;
    let id = claim(&app, &admin, &a).await;
    release(&app, &admin, &id).await;

    let ns = namespace(&app, &admin, &a).await;
    assert_eq!(ns["state"], "Releasing", "{ns}");
    assert!(ns["releasingSince"].is_string());
    // The database itself refuses a holder on a releasing namespace.
    let refused = sqlx::query(
        "update pool_namespaces set holder_deployment_id = gen_random_uuid() where name = $1",
    )
    .bind(&a)
    .execute(&db)
    .await
    .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("pool_namespaces_releasing_check"),
        "{refused}"
    );
    assert!(!app.available(&admin).await.contains(&a));
    // A claim of it now is refused cleanly.
    let ws = app.create_workspace(&admin, "early").await;
    let refused = app
        .gql(
            Some(&admin),
            CREATE_DEPLOYMENT,
            json!({"label": "early", "workspaceId": ws, "executor": "CeleryExecutor", "namespace": a}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "CONFLICT",
        "{refused}"
    );

    let report = cluster.pass(&app.service, Account::Create).await;
    assert_eq!(report.cleaned, std::slice::from_ref(&a), "{report:?}");
    let ns = namespace(&app, &admin, &a).await;
    assert_eq!(ns["state"], "Free");
    assert_eq!(ns["leftovers"], json!([]));
    assert!(ns["leftoversCheckedAt"].is_string());
    assert!(app.available(&admin).await.contains(&a));
    let kinds: Vec<String> = events(&db, &a).await.into_iter().map(|e| e.0).collect();
    assert!(
        kinds.ends_with(&["release".to_owned(), "clean".to_owned()]),
        "{kinds:?}"
    );
    cluster.assert_never_deleted();
}

#[sqlx::test]
async fn leftovers_hold_a_namespace_back_until_they_are_gone(db: PgPool) {
    let setup = setup(db.clone()).await;
    let Setup {
        cluster,
        app,
        admin,
        a,
        b,
    } = &setup;
    let id = claim(app, admin, a).await;
    // What uninstalling an Airflow release leaves, and what is not a leftover.
    let claim_spec = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    cluster.put(
        "PersistentVolumeClaim",
        a,
        "data-foo-worker-0",
        claim_spec.clone(),
    );
    cluster.put(
        "Secret",
        a,
        "sh.helm.release.v1.foo.v1",
        json!({"type": "helm.sh/release.v1"}),
    );
    cluster.put(
        "Secret",
        a,
        "default-token-abcde",
        json!({"type": "kubernetes.io/service-account-token",
               "metadata": {"annotations": {"kubernetes.io/service-account.name": "default"}}}),
    );
    release(app, admin, &id).await;

    let report = setup.pass().await;
    let expected = [
        "PersistentVolumeClaim/data-foo-worker-0",
        "Secret/sh.helm.release.v1.foo.v1",
    ];
    assert_eq!(
        report.leftovers,
        [(a.clone(), expected.map(str::to_owned).to_vec())]
    );
    let ns = namespace(app, admin, a).await;
    assert_eq!(ns["state"], "Releasing");
    assert_eq!(ns["leftovers"], json!(expected));
    assert!(ns["note"].as_str().unwrap().contains("markNamespaceClean"));
    assert!(!app.available(admin).await.contains(a));
    let last = events(&db, a).await.pop().unwrap();
    assert_eq!(last.0, "leftovers");
    assert!(
        last.2
            .unwrap()
            .contains("PersistentVolumeClaim/data-foo-worker-0")
    );

    // Not due yet: the next check waits (2 s, doubling).
    let report = setup.pass().await;
    assert!(report.leftovers.is_empty() && report.cleaned.is_empty());

    // The owner removes the volume claim: still the Helm secret. (A claim
    // with the protection finalizer and no controller to lift it stays
    // terminating, so the finalizer goes first, as the controller would.)
    crate::cluster::kubectl(
        &[
            "-n",
            a,
            "patch",
            "pvc",
            "data-foo-worker-0",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
        None,
    );
    cluster.remove("pvc", a, "data-foo-worker-0");
    due(&db, a).await;
    let report = setup.pass().await;
    assert_eq!(report.leftovers[0].1, ["Secret/sh.helm.release.v1.foo.v1"]);
    cluster.remove("secret", a, "sh.helm.release.v1.foo.v1");
    due(&db, a).await;
    let report = setup.pass().await;
    assert_eq!(report.cleaned, std::slice::from_ref(a));
    assert!(app.available(admin).await.contains(a));

    // Metrics count releasing namespaces and how long the oldest waits.
    let id = claim(app, admin, b).await;
    cluster.put(
        "Pod",
        b,
        "foo-scheduler-0",
        json!({"spec": {"containers": [{"name": "s", "image": "airflow"}]}}),
    );
    release(app, admin, &id).await;
    setup.pass().await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("nspool_pool_namespaces{state=\"releasing\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("nspool_pool_releasing_oldest_seconds "));
    cluster.assert_never_deleted();
}

#[sqlx::test]
async fn mark_namespace_clean_frees_it_and_keeps_who_and_why(db: PgPool) {
    let setup = setup(db.clone()).await;
    let Setup {
        cluster,
        app,
        admin,
        a,
        b,
    } = &setup;
    let id = claim(app, admin, a).await;
    cluster.put(
        "ConfigMap",
        a,
        "foo-airflow-config",
        json!({"data": {"k": "v"}}),
    );
    release(app, admin, &id).await;
    setup.pass().await;

    const MARK: &str = "mutation($name: String!, $reason: String!) { markNamespaceClean(name: $name, reason: $reason) }";
    let editor = app.token("SYSTEM_EDITOR", None).await;
    let nul = format!("{a}\u{0}");
    for (token, name, reason, code) in [
        (&editor, a.as_str(), "x", "FORBIDDEN"),
        (admin, a.as_str(), "  ", "BAD_USER_INPUT"),
        (admin, b.as_str(), "x", "NOT_FOUND"),
        (admin, nul.as_str(), "x", "BAD_USER_INPUT"),
    ] {
        app.err(
            Some(token),
            MARK,
            json!({"name": name, "reason": reason}),
            code,
        )
        .await;
    }

    let reason = "the config holds nothing of the old tenant; its team keeps it";
    app.ok(Some(admin), MARK, json!({"name": a, "reason": reason}))
        .await;
    // Read your own write: offered at once.
    assert!(app.available(admin).await.contains(a));
    let (kind, actor, logged) = events(&db, a).await.pop().unwrap();
    assert_eq!(kind, "mark_clean");
    assert!(actor.starts_with("token:"), "{actor}");
    assert_eq!(logged.as_deref(), Some(reason));
    // nspool never removed what was left.
    assert!(
        cluster
            .object("ConfigMap", a, "foo-airflow-config")
            .await
            .is_some()
    );
    cluster.assert_never_deleted();
}

/// The platform team removed nspool's `nspool-leftovers` RoleBinding by
/// mistake: the real API server refuses the lists (403), nspool records it
/// and retries, never freeing the namespace, until the binding is back.
#[sqlx::test]
async fn a_refused_list_is_recorded_and_retried_without_freeing(db: PgPool) {
    let setup = setup(db.clone()).await;
    let Setup {
        cluster,
        app,
        admin,
        a,
        ..
    } = &setup;
    let id = claim(app, admin, a).await;
    release(app, admin, &id).await;
    cluster.remove("rolebinding", a, "nspool-leftovers");
    let report = setup.pass().await;
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let ns = namespace(app, admin, a).await;
    assert_eq!(ns["state"], "Releasing");
    assert!(ns["kubeError"].as_str().unwrap().contains("403"), "{ns}");
    assert!(!app.available(admin).await.contains(a));
    // Retried with backoff, still refused, still releasing.
    due(&db, a).await;
    setup.pass().await;
    assert_eq!(namespace(app, admin, a).await["state"], "Releasing");
    // The binding is back (a forced re-apply, as `resyncPool` asks): the
    // next retry finds it clean.
    app.ok(Some(admin), "mutation { resyncPool }", Value::Null)
        .await;
    due(&db, a).await;
    let report = setup.pass().await;
    assert_eq!(report.cleaned, std::slice::from_ref(a), "{report:?}");
    let ns = namespace(app, admin, a).await;
    assert_eq!(
        (ns["state"].as_str(), ns["kubeError"].as_str()),
        (Some("Free"), None)
    );
    cluster.assert_never_deleted();
}

/// A pass cut short while its lists are in flight: the delay must be
/// injected, so this one runs against the fake API server.
#[sqlx::test]
async fn a_check_cut_short_is_resumed_by_another_replica(db: PgPool) {
    const CREATE: &str = "global: {features: {namespacePools: {enabled: true, namespaces: {create: true, names: [team-a]}}}}\n";
    let fake = FakeKube::start().await;
    let first = TestApp::spawn_in_cluster(CREATE, db.clone()).await;
    let admin = first.admin().await;
    fake.pass(&first.service).await;
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
    let report = fake.pass(&second.service).await;
    assert_eq!(report.cleaned, ["team-a"]);
    assert!(first.available(&admin).await.contains(&"team-a".to_owned()));
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn with_kubernetes_off_a_release_frees_at_once_and_says_so(db: PgPool) {
    let create = create(&["team-a", "team-b"]);
    let off = format!("{create}nspool: {{kubernetes: {{mode: 'off'}}}}\n");
    // A namespace left releasing while checks were on is freed when they go off.
    let before = TestApp::spawn_in_cluster(&create, db.clone()).await;
    let admin = before.admin().await;
    // Seen ready in the cluster (as a pass that applied them records it).
    sqlx::query("update pool_namespaces set rbac_state = 'ok'")
        .execute(&db)
        .await
        .unwrap();
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
    let setup = setup(db).await;
    let Setup {
        cluster,
        app,
        admin,
        a,
        ..
    } = &setup;
    let labels = || async {
        cluster.object("Namespace", "", a).await.unwrap()["metadata"]["labels"].clone()
    };
    assert_eq!(labels().await["platform-release"], "astronomer");
    assert_eq!(labels().await["team"], "data");
    // Someone else labels it; a forced re-apply of nspool's objects keeps theirs.
    crate::cluster::kubectl(&["label", "namespace", a, "owner=data-eng"], None);
    app.ok(Some(admin), "mutation { resyncPool }", Value::Null)
        .await;
    let report = setup.pass().await;
    assert_eq!(report.applied, 2);
    assert_eq!(labels().await["owner"], "data-eng");
    assert_eq!(labels().await["platform-release"], "astronomer");
    cluster.assert_never_deleted();
}

#[sqlx::test]
async fn pool_labels_in_verify_mode_ride_on_claim_labels_or_are_reported(db: PgPool) {
    let cluster = Cluster::connect().await;
    let a = cluster.ns("ns-a");
    let verify = |claim_labels: bool, account: Account| {
        format!(
            "global:\n  features:\n    namespacePools:\n      enabled: true\n      namespaces: {{create: false, names: [{a}]}}\nnspool:\n  serviceAccount: {}\n  platformRelease: prod\n  kubernetes: {{claimLabels: {claim_labels}}}\n",
            account.service_account()
        )
    };
    cluster.create_namespace(&a);
    // Claim labels off: nothing is written; the check reports what is missing.
    let app = TestApp::spawn_in_cluster(&verify(false, Account::Verify), db.clone()).await;
    let admin = app.admin().await;
    let report = cluster.pass(&app.service, Account::Verify).await;
    assert_eq!(
        report.labels_missing,
        [(a.clone(), vec!["platform-release=prod".to_owned()])]
    );
    assert_eq!(
        namespace(&app, &admin, &a).await["labelsMissing"],
        json!(["platform-release=prod"])
    );
    let writes: Vec<_> = cluster
        .audit_of(Account::Verify)
        .into_iter()
        .filter(|e| e.writes())
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");

    // Claim labels on: applied under nspool-claims, kubectl's own labels kept.
    crate::cluster::kubectl(&["label", "namespace", &a, "owner=data-eng"], None);
    let app = TestApp::spawn_in_cluster(
        &verify(true, Account::VerifyWithClaimLabels),
        crate::support::another_pool(&db).await,
    )
    .await;
    cluster
        .pass(&app.service, Account::VerifyWithClaimLabels)
        .await;
    let live = cluster.object("Namespace", "", &a).await.unwrap();
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
    let report = cluster
        .pass(&app.service, Account::VerifyWithClaimLabels)
        .await;
    assert!(
        report.labels_missing.is_empty(),
        "{:?}",
        report.labels_missing
    );
    assert_eq!(
        namespace(&app, &admin, &a).await["labelsMissing"],
        json!([])
    );
    cluster.assert_never_deleted();
}

#[sqlx::test]
async fn the_worker_offers_a_clean_release_again_within_seconds(db: PgPool) {
    let cluster = Cluster::connect().await;
    let a = cluster.ns("team-a");
    let app = TestApp::spawn_in_cluster(&create(&[&a]), db).await;
    let admin = app.admin().await;
    // The worker as `serve` runs it: woken by releases, else every 2 s.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let kube = cluster.nspool(Account::Create).await;
    let worker = tokio::spawn(KubeWorker::new(&app.service, kube).run(stopped));
    // Offered once the worker has applied it.
    let started = std::time::Instant::now();
    while !app.available(&admin).await.contains(&a) {
        assert!(started.elapsed() < Duration::from_secs(15), "never offered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let id = claim(&app, &admin, &a).await;
    release(&app, &admin, &id).await;
    let released = std::time::Instant::now();
    while !app.available(&admin).await.contains(&a) {
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
    cluster.assert_never_deleted();
}

#[sqlx::test]
async fn rbac_check_names_what_a_released_namespace_holds(db: PgPool) {
    let setup = setup(db.clone()).await;
    let Setup {
        cluster,
        app,
        admin,
        a,
        b,
    } = &setup;
    for ns in [a, b] {
        let id = claim(app, admin, ns).await;
        release(app, admin, &id).await;
    }
    cluster.put(
        "ConfigMap",
        b,
        "foo-airflow-config",
        json!({"data": {"k": "v"}}),
    );
    let kubeconfig = cluster.kubeconfig_as(Account::Create).await;
    let config = kubeconfig.with_file_name("config-create.yaml");
    std::fs::write(&config, create(&[a, b])).unwrap();
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
        stdout.contains(&format!("CLEAN   {a}: released, nothing left behind")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "LEFT    {b}: releasing, not offered while left behind: ConfigMap/foo-airflow-config"
        )),
        "{stdout}"
    );
    assert_eq!(namespace(app, admin, b).await["state"], "Releasing");
    cluster.assert_never_deleted();
}

#[sqlx::test]
async fn what_the_platform_puts_everywhere_can_be_ignored(db: PgPool) {
    let setup = setup_with(
        "nspool: {kubernetes: {ignoredLeftovers: [ConfigMap/istio-ca-root-cert, 'Secret/platform-pull-*']}}\n",
        db,
    )
    .await;
    let Setup {
        cluster,
        app,
        admin,
        a,
        ..
    } = &setup;
    let id = claim(app, admin, a).await;
    cluster.put("ConfigMap", a, "istio-ca-root-cert", json!({}));
    cluster.put(
        "Secret",
        a,
        "platform-pull-quay",
        json!({"type": "kubernetes.io/dockerconfigjson",
               "stringData": {".dockerconfigjson": "{\"auths\": {}}"}}),
    );
    cluster.put("Secret", a, "foo-fernet-key", json!({"type": "Opaque"}));
    release(app, admin, &id).await;
    let report = setup.pass().await;
    assert_eq!(report.leftovers[0].1, ["Secret/foo-fernet-key"]);
    cluster.remove("secret", a, "foo-fernet-key");
    due(&app.db, a).await;
    let report = setup.pass().await;
    assert_eq!(report.cleaned, std::slice::from_ref(a));
    cluster.assert_never_deleted();
}
