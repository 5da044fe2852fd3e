//! Kubernetes faults, against the fake API server because they must be
//! injected on demand (a 403 on one path, a one-off 409 or 500, a slow
//! answer): recorded on the namespace, retried with backoff, never touching
//! a claim. What nspool does when the API server answers well is tested
//! against a real one (`kube_cluster.rs`).

use crate::documents::CREATE_DEPLOYMENT;
use crate::fake_kube::FakeKube;
use crate::support::TestApp;
use nspool::kube::client::KubeClient;
use nspool::kube::objects::LABEL_DEPLOYMENT;
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
