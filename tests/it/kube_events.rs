//! Kubernetes Events against the fake API server (which checks each one as
//! the real server's validation does): what nspool does to a namespace is
//! told in that namespace, once each, and a failure to post changes nothing
//! else. The Events posted are written to `target/kube-events/` for
//! `scripts/check-shipping.sh` to validate against the Kubernetes schema.

use crate::documents::{CREATE_DEPLOYMENT, DELETE_DEPLOYMENT};
use crate::fake_kube::FakeKube;
use crate::hygiene::due;
use crate::support::TestApp;
use axum::http::Method;
use nspool::kube::client::KubeClient;
use serde_json::{Value, json};
use sqlx::PgPool;

const CREATE: &str = r#"
global:
  features:
    namespacePools:
      enabled: true
      namespaces: {create: true, names: [team-a, team-b]}
"#;
const CORDON: &str = "mutation($name: String!, $reason: String!) { cordonNamespace(name: $name, reason: $reason) { name } }";
const UNCORDON: &str = "mutation($name: String!) { uncordonNamespace(name: $name) { name } }";

async fn post(app: &TestApp, fake: &FakeKube) -> usize {
    let kube = KubeClient::for_url(&fake.url, 4).unwrap();
    nspool::kube::event_posts::post_due(app.service.store(), &kube, "nspool-test-0")
        .await
        .expect("posting reads the database")
}

fn reasons(fake: &FakeKube, ns: &str) -> Vec<String> {
    fake.events_in(ns)
        .into_iter()
        .map(|(reason, _)| reason)
        .collect()
}

#[sqlx::test]
async fn what_nspool_does_to_a_namespace_is_told_there_once(db: PgPool) {
    let fake = FakeKube::start().await;
    let app = TestApp::spawn_in_cluster(CREATE, db.clone()).await;
    let admin = app.admin().await;
    fake.pass(&app.service).await;
    // nspool may create Events there, and only there: its own RoleBinding.
    let (binding, _) = fake
        .object("RoleBinding", "team-a", "nspool-events")
        .expect("the events binding is applied");
    assert_eq!(binding["roleRef"]["name"], "nspool-events");
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(binding["subjects"][0]["name"], "nspool");

    let ws = app.create_workspace(&admin, "events").await;
    let created = app
        .ok(
            Some(&admin),
            CREATE_DEPLOYMENT,
            json!({"label": "etl", "workspaceId": ws, "executor": "CeleryExecutor", "namespace": "team-a", "releaseName": "quasar-etl"}),
        )
        .await;
    let id = created["createDeployment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        Some(&admin),
        CORDON,
        json!({"name": "team-a", "reason": "node pool upgrade"}),
    )
    .await;
    app.ok(
        Some(&admin),
        DELETE_DEPLOYMENT,
        json!({"deploymentId": id, "deploymentHardDelete": true}),
    )
    .await;
    // The Deployment left a claim behind: found, then removed and found clean.
    fake.put(
        "PersistentVolumeClaim",
        "team-a",
        "data-quasar-etl-worker-0",
        json!({}),
    );
    fake.pass(&app.service).await;
    fake.remove(
        "PersistentVolumeClaim",
        "team-a",
        "data-quasar-etl-worker-0",
    );
    due(&db, "team-a").await;
    fake.pass(&app.service).await;
    app.ok(Some(&admin), UNCORDON, json!({"name": "team-a"}))
        .await;

    let posted = post(&app, &fake).await;
    assert_eq!(posted, 6, "{:?}", fake.events_in("team-a"));
    assert_eq!(
        reasons(&fake, "team-a"),
        [
            "Claimed",
            "Cordoned",
            "Released",
            "LeftoversFound",
            "FoundClean",
            "Uncordoned"
        ]
    );
    let events = fake.events_in("team-a");
    assert!(
        events[0].1.starts_with("Claimed by Deployment "),
        "{events:?}"
    );
    assert!(events[1].1.contains("node pool upgrade"), "{events:?}");
    assert!(
        events[3]
            .1
            .contains("PersistentVolumeClaim/data-quasar-etl-worker-0"),
        "{events:?}"
    );
    fake.with(|s| {
        for event in &s.events {
            assert_eq!(event["reportingController"], "nspool");
            assert_eq!(event["regarding"]["kind"], "Namespace");
            assert_eq!(event["regarding"]["name"], event["metadata"]["namespace"]);
        }
        let warning = s
            .events
            .iter()
            .find(|e| e["reason"] == "LeftoversFound")
            .unwrap();
        assert_eq!(warning["type"], "Warning");
    });
    assert!(
        reasons(&fake, "team-b").is_empty(),
        "nothing happened there"
    );

    // Told once: the next round posts nothing, and the log is unchanged.
    assert_eq!(post(&app, &fake).await, 0);
    assert_eq!(fake.with(|s| s.events.len()), 6);
    save_for_schema_check(&fake, "lifecycle");
    fake.assert_never_deleted();
}

#[sqlx::test]
async fn a_failed_post_changes_nothing_else_and_is_tried_again_a_few_times(db: PgPool) {
    let fake = FakeKube::start().await;
    let app = TestApp::spawn_in_cluster(CREATE, db.clone()).await;
    let admin = app.admin().await;
    fake.pass(&app.service).await;
    // The API server refuses Events (no binding, say): the claim is fine.
    fake.fail(Some(Method::POST), "/events", 403, Some(2));
    let ws = app.create_workspace(&admin, "failing").await;
    app.ok(
        Some(&admin),
        CREATE_DEPLOYMENT,
        json!({"label": "etl", "workspaceId": ws, "executor": "CeleryExecutor", "namespace": "team-b"}),
    )
    .await;
    assert_eq!(post(&app, &fake).await, 0);
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("select attempts, error from kube_event_posts")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(attempts, 1);
    assert!(error.is_some_and(|e| e.contains("403")));
    assert_eq!(post(&app, &fake).await, 0, "the second try is refused too");
    // The third try gets through; then nothing is left to try.
    assert_eq!(post(&app, &fake).await, 1);
    assert_eq!(reasons(&fake, "team-b"), ["Claimed"]);
    assert_eq!(post(&app, &fake).await, 0);

    // Refused every time: tried three times, then given up.
    fake.fail(Some(Method::POST), "/events", 500, None);
    app.ok(
        Some(&admin),
        CORDON,
        json!({"name": "team-a", "reason": "never told"}),
    )
    .await;
    for _ in 0..5 {
        post(&app, &fake).await;
    }
    let tries: i32 = sqlx::query_scalar(
        "select p.attempts from kube_event_posts p join events e on e.id = p.event_id where e.kind = 'cordon'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(tries, 3);
    let available = app.available(&admin).await;
    assert!(
        !available.contains(&"team-a".to_owned()),
        "the cordon holds"
    );
}

/// Every Event the fake server took, as a YAML stream of JSON documents for
/// `kubernetes-validate --strict` (scripts/check-shipping.sh).
/// Each test its own file, so that tests running at once never mix them.
fn save_for_schema_check(fake: &FakeKube, test: &str) {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/kube-events");
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::new();
    fake.with(|s| {
        for event in &s.events {
            let mut event = event.clone();
            // What a client sends, as `kubectl get -o yaml` would not show server fields.
            if let Some(meta) = event["metadata"].as_object_mut() {
                meta.remove("resourceVersion");
            }
            event["apiVersion"] = Value::from("events.k8s.io/v1");
            event["kind"] = Value::from("Event");
            // JSON documents: YAML would read the times as timestamps, not strings.
            text.push_str("---\n");
            text.push_str(&event.to_string());
            text.push('\n');
        }
    });
    std::fs::write(dir.join(format!("{test}.yaml")), text).unwrap();
}

/// A Kubernetes failure's text is anybody's length: what is stored of it is
/// bounded, on the namespace and on an Event's try alike.
#[sqlx::test]
async fn stored_kubernetes_errors_are_bounded(db: PgPool) {
    let app = TestApp::spawn(CREATE, db.clone()).await;
    let store = app.service.store();
    let huge = "é".repeat(100_000);
    store.record_kube_error("team-a", &huge).await.unwrap();
    store.record_event_post(1, Some(&huge)).await.unwrap();
    let (on_namespace, on_post): (i32, i32) = sqlx::query_as(
        "select (select char_length(kube_error) from pool_namespaces where name = 'team-a'),
                (select char_length(error) from kube_event_posts where event_id = 1)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let max = nspool::store::MAX_ERROR_CHARS as i32;
    assert_eq!((on_namespace, on_post), (max, max));
}

const VERIFY: &str = r#"
global:
  features:
    namespacePools:
      enabled: true
      namespaces: {create: false, names: [ns-ok, ns-broken]}
"#;

/// In verify mode: a namespace whose Commander Role lacks a permission is
/// told so (a Warning naming it), and told again when it is repaired; a
/// namespace verified as it was is told once, not at each recheck.
#[sqlx::test]
async fn broken_and_repaired_rbac_are_told_in_the_namespace(db: PgPool) {
    let fake = FakeKube::start().await;
    fake.create_namespace("ns-ok");
    fake.create_namespace("ns-broken");
    fake.deny("ns-broken", "secrets", "get");
    let app = TestApp::spawn_in_cluster(VERIFY, db.clone()).await;
    let report = fake.pass(&app.service).await;
    assert_eq!(report.broken.len(), 1, "{report:?}");
    assert_eq!(post(&app, &fake).await, 2);
    assert_eq!(reasons(&fake, "ns-broken"), ["RBACBroken"]);
    assert_eq!(reasons(&fake, "ns-ok"), ["RBACVerified"]);
    let broken = fake.events_in("ns-broken");
    assert!(broken[0].1.contains("get secrets (core)"), "{broken:?}");
    fake.with(|s| {
        let warning = s
            .events
            .iter()
            .find(|e| e["reason"] == "RBACBroken")
            .unwrap();
        assert_eq!(warning["type"], "Warning");
    });

    // The Role is fixed; both are checked again.
    fake.with(|s| s.denied.clear());
    sqlx::query("update pool_namespaces set rbac_checked_at = rbac_checked_at - interval '1 day'")
        .execute(&db)
        .await
        .unwrap();
    let report = fake.pass(&app.service).await;
    assert!(report.broken.is_empty(), "{report:?}");
    assert_eq!(post(&app, &fake).await, 1, "only the repair is news");
    assert_eq!(reasons(&fake, "ns-broken"), ["RBACBroken", "RBACRepaired"]);
    assert_eq!(reasons(&fake, "ns-ok"), ["RBACVerified"]);
    save_for_schema_check(&fake, "rbac");
    fake.assert_never_deleted();
}
