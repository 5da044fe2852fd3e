//! The Kubernetes side against the fake API server: apply, labels under their
//! own field manager, idempotency, verification, failures, never a DELETE.

use crate::documents::{CREATE_DEPLOYMENT, DELETE_DEPLOYMENT};
use crate::fake_kube::FakeKube;
use crate::support::TestApp;
use nspool::domain::commander_rules::seed_rules;
use nspool::kube::client::KubeClient;
use nspool::kube::objects::{LABEL_DEPLOYMENT, LABEL_RELEASE, MANAGED_BY_KEY};
use nspool::kube::reconcile::{KubeWorker, PassReport};
use serde_json::{Value, json};
use sqlx::PgPool;

const CREATE: &str = r#"
global:
  features:
    namespacePools:
      enabled: true
      namespaces: {create: true, names: [team-a, team-b, team-c]}
"#;

const VERIFY: &str = r#"
global:
  features:
    namespacePools:
      enabled: true
      namespaces: {create: false, names: [ns-ok, ns-broken, ns-missing]}
"#;

async fn pass(app: &TestApp, fake: &FakeKube) -> PassReport {
    fake.pass(&app.service).await
}

async fn claim(app: &TestApp, token: &str, ws: uuid::Uuid, ns: &str) -> Value {
    app.ok(
        Some(token),
        CREATE_DEPLOYMENT,
        json!({"label": format!("on-{ns}"), "workspaceId": ws, "executor": "LocalExecutor", "namespace": ns}),
    )
    .await["createDeployment"]
        .clone()
}

fn labels(fake: &FakeKube, ns: &str) -> Value {
    fake.object("Namespace", "", ns)
        .expect("namespace exists")
        .0["metadata"]["labels"]
        .clone()
}

#[sqlx::test]
async fn create_mode_applies_every_object_once_with_field_manager_nspool(db: PgPool) {
    let fake = FakeKube::start().await;
    let app = TestApp::spawn(CREATE, db).await;
    let report = pass(&app, &fake).await;
    assert_eq!(report.applied, 3);
    for ns in ["team-a", "team-b", "team-c"] {
        let (namespace, _) = fake.object("Namespace", "", ns).unwrap();
        assert_eq!(namespace["metadata"]["labels"][MANAGED_BY_KEY], "nspool");
        let (role, _) = fake
            .object("Role", ns, "deployment-commander-role")
            .unwrap();
        assert_eq!(role["metadata"]["labels"][MANAGED_BY_KEY], "nspool");
        let rules: Vec<nspool::domain::commander_rules::Rule> = role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| nspool::domain::commander_rules::Rule {
                api_groups: serde_json::from_value(r["apiGroups"].clone()).unwrap(),
                resources: serde_json::from_value(r["resources"].clone()).unwrap(),
                verbs: serde_json::from_value(r["verbs"].clone()).unwrap(),
            })
            .collect();
        assert_eq!(rules, seed_rules());
        let (binding, _) = fake
            .object("RoleBinding", ns, "deployment-commander-rolebinding")
            .unwrap();
        assert_eq!(
            binding["subjects"][0],
            json!({"kind": "ServiceAccount", "name": "astronomer-commander", "namespace": "astronomer"})
        );
        assert_eq!(binding["roleRef"]["name"], "deployment-commander-role");
    }
    let patches = fake.with(|s| {
        s.requests
            .iter()
            .filter(|(m, _)| m == "PATCH")
            .cloned()
            .collect::<Vec<_>>()
    });
    // Per namespace: the Namespace, the Commander Role and RoleBinding, and
    // nspool's own RoleBinding for Events.
    assert_eq!(patches.len(), 12);
    assert!(
        patches
            .iter()
            .all(|(_, uri)| uri.contains("fieldManager=nspool") && uri.contains("force=true")),
        "{patches:?}"
    );

    // Nothing due: a second pass sends nothing.
    let before = fake.with(|s| s.requests.len());
    let report = pass(&app, &fake).await;
    assert_eq!((report.applied, report.labelled, report.checked), (0, 0, 0));
    assert_eq!(fake.with(|s| s.requests.len()), before);

    // Forced re-apply: every object applied again, none changed.
    let writes = fake.with(|s| s.writes);
    let version = fake
        .object("Role", "team-a", "deployment-commander-role")
        .unwrap()
        .1;
    app.ok(
        Some(&app.admin().await),
        "mutation { resyncPool }",
        Value::Null,
    )
    .await;
    let report = pass(&app, &fake).await;
    assert_eq!(report.applied, 3);
    assert_eq!(
        fake.with(|s| s.writes),
        writes,
        "a repeat apply changes no object"
    );
    assert_eq!(
        fake.object("Role", "team-a", "deployment-commander-role")
            .unwrap()
            .1,
        version
    );
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn claim_labels_have_their_own_manager_and_survive_reapply_and_restart(db: PgPool) {
    let fake = FakeKube::start().await;
    let app = TestApp::spawn(CREATE, db.clone()).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    pass(&app, &fake).await;
    let deployment = claim(&app, &admin, ws, "team-a").await;
    let report = pass(&app, &fake).await;
    assert_eq!(report.labelled, 1);
    let l = labels(&fake, "team-a");
    assert_eq!(l[LABEL_RELEASE], deployment["releaseName"]);
    assert_eq!(l[LABEL_DEPLOYMENT], deployment["id"]);
    assert_eq!(l[MANAGED_BY_KEY], "nspool");
    let managers =
        fake.object("Namespace", "", "team-a").unwrap().0["metadata"]["managedFields"].clone();
    assert_eq!(
        managers,
        json!([{"manager": "nspool", "operation": "Apply"}, {"manager": "nspool-claims", "operation": "Apply"}])
    );

    // An RBAC re-apply, in a new process, never strips the claim labels.
    let restarted = TestApp::spawn(CREATE, crate::support::another_pool(&db).await).await;
    restarted
        .ok(Some(&admin), "mutation { resyncPool }", Value::Null)
        .await;
    let report = pass(&restarted, &fake).await;
    assert_eq!((report.applied, report.labelled), (3, 0));
    assert_eq!(
        labels(&fake, "team-a")[LABEL_RELEASE],
        deployment["releaseName"]
    );

    // Release removes them; managed-by stays.
    restarted
        .ok(
            Some(&admin),
            DELETE_DEPLOYMENT,
            json!({"deploymentId": deployment["id"], "deploymentHardDelete": true}),
        )
        .await;
    let report = pass(&restarted, &fake).await;
    assert_eq!(report.labelled, 1);
    let l = labels(&fake, "team-a");
    assert!(
        l.get(LABEL_RELEASE).is_none() && l.get(LABEL_DEPLOYMENT).is_none(),
        "{l}"
    );
    assert_eq!(l[MANAGED_BY_KEY], "nspool");
    let view = restarted
        .ok(
            Some(&admin),
            "{ poolNamespaces { name labelsInSync rbacApplied managed } }",
            Value::Null,
        )
        .await;
    assert!(
        view["poolNamespaces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["labelsInSync"] == true && n["rbacApplied"] == true)
    );
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn verification_marks_broken_and_missing_namespaces_and_writes_nothing(db: PgPool) {
    let fake = FakeKube::start().await;
    fake.create_namespace("ns-ok");
    fake.create_namespace("ns-broken");
    fake.deny("ns-broken", "serviceaccounts", "create");
    fake.deny("ns-broken", "secrets", "get");
    let app = TestApp::spawn(VERIFY, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    assert_eq!(
        app.available(&admin).await,
        ["ns-broken", "ns-missing", "ns-ok"],
        "unknown until checked"
    );

    let report = pass(&app, &fake).await;
    assert_eq!(report.checked, 3);
    assert_eq!(report.missing, ["ns-missing"]);
    assert_eq!(report.broken.len(), 1);
    assert_eq!(
        report.broken[0].1,
        ["create serviceaccounts (core)", "get secrets (core)"]
    );
    assert!(report.stale.iter().any(|t| t.contains("(extensions)")));
    assert!(
        report
            .cluster_scoped
            .iter()
            .any(|(t, _)| t == "get nodes/proxy (core)")
    );
    assert_eq!(app.available(&admin).await, ["ns-ok"]);

    // The pool view and a direct claim name what is missing.
    let view = app.ok(Some(&admin), "{ poolNamespaces { name rbacState rbacMissing rbacCheckedAt } rbacClusterReport { stale clusterScoped } }", Value::Null).await;
    let broken = view["poolNamespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "ns-broken")
        .unwrap()
        .clone();
    assert_eq!(broken["rbacState"], "broken");
    assert_eq!(
        broken["rbacMissing"],
        json!(["create serviceaccounts (core)", "get secrets (core)"])
    );
    assert!(broken["rbacCheckedAt"].is_string());
    assert!(
        view["rbacClusterReport"]["stale"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().contains("extensions"))
    );
    let err = app
        .err(Some(&admin), CREATE_DEPLOYMENT, json!({"label": "x", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "ns-broken"}), "BAD_USER_INPUT")
        .await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("cannot create serviceaccounts (core)"),
        "{err}"
    );
    let err = app
        .err(Some(&admin), CREATE_DEPLOYMENT, json!({"label": "x", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "ns-missing"}), "BAD_USER_INPUT")
        .await;
    assert!(
        err["message"].as_str().unwrap().contains("does not exist"),
        "{err}"
    );

    // Deduplicated: one review per namespaced permission per namespace.
    let plan = nspool::domain::commander_rules::plan(&seed_rules(), &|g| {
        !["extensions", "keda.k8s.io", "kubed.appscode.com"].contains(&g)
    });
    let reviews = fake.with(|s| {
        s.requests
            .iter()
            .filter(|(m, u)| m == "POST" && u.contains("subjectaccessreviews"))
            .count()
    });
    assert_eq!(
        reviews,
        2 * plan.namespaced.len() + plan.cluster_scoped.len()
    );
    // create: false and no claim labels: nothing written to the cluster.
    assert_eq!(
        fake.with(|s| s.writes),
        2,
        "only the two namespaces made by hand"
    );
    assert!(fake.with(|s| s.requests.iter().all(|(m, _)| m != "PATCH")));

    // Fixed by hand, then re-checked on request: offered again.
    fake.with(|s| s.denied.clear());
    app.ok(Some(&admin), "mutation { resyncPool }", Value::Null)
        .await;
    pass(&app, &fake).await;
    assert_eq!(app.available(&admin).await, ["ns-broken", "ns-ok"]);
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn kubernetes_failures_are_recorded_retried_and_never_touch_claims(db: PgPool) {
    let fake = FakeKube::start().await;
    let app = TestApp::spawn(CREATE, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    fake.fail(None, "/namespaces/team-a", 403, None);
    fake.fail(
        Some(axum::http::Method::PATCH),
        "/namespaces/team-b/roles",
        409,
        Some(1),
    );
    fake.fail(None, "/namespaces/team-c/rolebindings", 500, Some(1));
    let report = pass(&app, &fake).await;
    let failed_at = std::time::Instant::now();
    assert_eq!(report.failed.len(), 3, "{report:?}");
    assert!(
        report
            .failed
            .iter()
            .any(|(ns, e)| ns == "team-a" && e.contains("403"))
    );
    assert!(
        report
            .failed
            .iter()
            .any(|(ns, e)| ns == "team-b" && e.contains("409"))
    );
    assert!(
        report
            .failed
            .iter()
            .any(|(ns, e)| ns == "team-c" && e.contains("500"))
    );

    // Claims go on regardless.
    let held = claim(&app, &admin, ws, "team-a").await;
    let view = app
        .ok(
            Some(&admin),
            "{ poolNamespaces { name kubeError kubeNextAttemptAt rbacApplied } }",
            Value::Null,
        )
        .await;
    for n in view["poolNamespaces"].as_array().unwrap() {
        assert!(
            n["kubeError"].is_string() && n["kubeNextAttemptAt"].is_string(),
            "{n}"
        );
        assert_eq!(n["rbacApplied"], false);
    }
    // Not retried before its time (1 s after a first failure).
    let report = pass(&app, &fake).await;
    if failed_at.elapsed() < std::time::Duration::from_millis(800) {
        assert!(
            report.failed.is_empty() && report.applied == 0,
            "{report:?}"
        );
    }

    // The 409 and 500 were one-off; the 403 stays until fixed.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let report = pass(&app, &fake).await;
    assert_eq!(report.applied, 2, "{report:?}");
    assert_eq!(report.failed.len(), 1);
    fake.with(|s| s.faults.clear());
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    let report = pass(&app, &fake).await;
    assert_eq!((report.applied, report.labelled), (1, 1), "{report:?}");
    let view = app
        .ok(
            Some(&admin),
            "{ poolNamespaces { name kubeError rbacApplied labelsInSync } }",
            Value::Null,
        )
        .await;
    for n in view["poolNamespaces"].as_array().unwrap() {
        assert!(n["kubeError"].is_null(), "{n}");
        assert_eq!(
            (n["rbacApplied"].clone(), n["labelsInSync"].clone()),
            (json!(true), json!(true)),
            "{n}"
        );
    }
    assert_eq!(labels(&fake, "team-a")[LABEL_DEPLOYMENT], held["id"]);
    let deployments: i64 = sqlx::query_scalar("select count(*) from deployments")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(deployments, 1, "the claim is neither lost nor doubled");
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn a_slow_api_server_times_out_and_is_retried(db: PgPool) {
    let fake = FakeKube::start().await;
    let app = TestApp::spawn(CREATE, db).await;
    fake.with(|s| s.latency = std::time::Duration::from_millis(400));
    let kube = KubeClient::for_url(&fake.url, 16)
        .unwrap()
        .with_call_timeout(std::time::Duration::from_millis(100));
    let report = KubeWorker::new(&app.service, kube)
        .pass(false)
        .await
        .unwrap();
    assert_eq!(report.failed.len(), 3, "{report:?}");
    assert!(
        report
            .failed
            .iter()
            .all(|(_, e)| e.contains("did not answer within 100 ms")),
        "{report:?}"
    );
    fake.with(|s| s.latency = std::time::Duration::ZERO);
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(pass(&app, &fake).await.applied, 3);
    fake.assert_never_deleted();
}

/// `nspool rbac check` as a person runs it: a kubeconfig pointing at the
/// (fake) cluster, exit 1 and the missing verbs named when a namespace is broken.
#[sqlx::test]
async fn rbac_check_command_names_broken_namespaces_and_fails(db: PgPool) {
    let fake = FakeKube::start().await;
    fake.create_namespace("ns-ok");
    fake.create_namespace("ns-broken");
    fake.deny("ns-broken", "serviceaccounts", "create");
    let app = TestApp::spawn(VERIFY, db.clone()).await;
    let kubeconfig = fake.kubeconfig();
    let dir = kubeconfig.parent().unwrap().to_owned();
    let config = dir.join("config.yaml");
    std::fs::write(&config, VERIFY).unwrap();
    let url = crate::support::database_url(&db);
    let run = move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_nspool"))
            .args(["rbac", "check", "--config"])
            .arg(&config)
            .env("KUBECONFIG", &kubeconfig)
            .env("DATABASE_URL", &url)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap()
    };
    let out = tokio::task::spawn_blocking(run).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "BROKEN  ns-broken: the Commander account cannot create serviceaccounts (core)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("MISSING ns-missing"), "{stdout}");
    assert!(
        stdout.contains("STALE   ") && stdout.contains("(extensions)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("CLUSTER get nodes (core): a Role cannot grant this"),
        "{stdout}"
    );
    // Results are stored with their time.
    let states: Vec<(String, String)> = sqlx::query_as(
        "select name, rbac_state from pool_namespaces where rbac_checked_at is not null order by name",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        states,
        [
            ("ns-broken".into(), "broken".into()),
            ("ns-missing".into(), "missing".into()),
            ("ns-ok".into(), "ok".into())
        ]
    );
    fake.assert_never_deleted();
    let _ = std::fs::remove_dir_all(dir);
}

/// `nspool rbac check` in create mode verifies and writes nothing, even with
/// applies pending and a retry not yet due.
#[sqlx::test]
async fn a_check_by_hand_only_reads(db: PgPool) {
    let fake = FakeKube::start().await;
    let app = TestApp::spawn(CREATE, db).await;
    for ns in ["team-a", "team-b", "team-c"] {
        fake.create_namespace(ns);
    }
    sqlx::query("update pool_namespaces set kube_next_attempt_at = now() + interval '1 hour'")
        .execute(&app.db)
        .await
        .unwrap();
    let kube = KubeClient::for_url(&fake.url, 16).unwrap();
    let report = KubeWorker::new(&app.service, kube)
        .pass(true)
        .await
        .unwrap();
    assert_eq!((report.checked, report.applied, report.labelled), (3, 0, 0));
    assert!(fake.with(|s| s.requests.iter().all(|(m, _)| m != "PATCH")));
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn verify_mode_labels_only_existing_namespaces_when_switched_on(db: PgPool) {
    let fake = FakeKube::start().await;
    fake.create_namespace("ns-ok");
    let config = format!("{VERIFY}\nnspool: {{kubernetes: {{claimLabels: true}}}}");
    let app = TestApp::spawn(&config, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    claim(&app, &admin, ws, "ns-ok").await;
    claim(&app, &admin, ws, "ns-missing").await;
    let report = pass(&app, &fake).await;
    assert_eq!(report.labelled, 1);
    assert!(
        report
            .failed
            .iter()
            .any(|(ns, e)| ns == "ns-missing" && e.contains("does not exist")),
        "{report:?}"
    );
    assert!(
        fake.object("Namespace", "", "ns-missing").is_none(),
        "labelling never creates a namespace"
    );
    assert!(labels(&fake, "ns-ok").get(LABEL_RELEASE).is_some());
    fake.assert_never_deleted();
}

/// Against a real cluster (kind or k3d): `kind create cluster`, then
/// `DATABASE_URL=... cargo test --test it -- --ignored real_cluster`.
/// It applies to namespaces `nspool-e2e-a` and `nspool-e2e-b`, which nspool never deletes:
/// remove them with kubectl afterwards.
#[sqlx::test]
#[ignore = "needs a Kubernetes cluster (kind or k3d) and a kubeconfig"]
async fn real_cluster_apply_is_idempotent_and_verifies(db: PgPool) {
    let config = "global: {features: {namespacePools: {enabled: true, namespaces: {create: true, names: [nspool-e2e-a, nspool-e2e-b]}}}}";
    let app = TestApp::spawn(config, db).await;
    let kube = KubeClient::connect(nspool::config::KubernetesMode::Cluster)
        .await
        .unwrap()
        .unwrap();
    let worker = KubeWorker::new(&app.service, kube);
    let report = worker.pass(false).await.unwrap();
    assert_eq!(report.applied, 2, "{report:?}");
    let report = worker.pass(true).await.unwrap();
    assert_eq!(report.checked, 2, "{report:?}");
    assert!(
        report.broken.is_empty() && report.missing.is_empty(),
        "{report:?}"
    );
}
