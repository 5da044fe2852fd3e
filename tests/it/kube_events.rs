//! Kubernetes Events: what nspool does to a namespace is told in that
//! namespace, once each, posted as nspool's own ServiceAccount to a real API
//! server (`cluster.rs`, whose validation checks each one); a failure to post
//! changes nothing else (refusals injected by the fake API server). The
//! Events the real server stored are written to `target/kube-events/` for
//! `scripts/check-shipping.sh` to validate against the Kubernetes schema too.

use crate::cluster::{Account, Cluster};
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
    nspool::kube::event_posts::post_due(
        app.service.store(),
        app.service.settings().default_cluster().id,
        &kube,
        "nspool-test-0",
    )
    .await
    .expect("posting reads the database")
}

fn reasons(fake: &FakeKube, ns: &str) -> Vec<String> {
    fake.events_in(ns)
        .into_iter()
        .map(|(reason, _)| reason)
        .collect()
}

/// Events posted as nspool's own account to the real API server.
async fn post_to(app: &TestApp, cluster: &Cluster) -> usize {
    let kube = cluster.nspool(Account::Create).await;
    nspool::kube::event_posts::post_due(
        app.service.store(),
        app.service.settings().default_cluster().id,
        &kube,
        "nspool-test-0",
    )
    .await
    .expect("posting reads the database")
}

/// (reason, note) of the Events the API server holds in `ns`, oldest first.
async fn told(cluster: &Cluster, ns: &str) -> Vec<(String, String)> {
    cluster
        .events(ns)
        .await
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_owned(),
                e["note"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[sqlx::test]
async fn what_nspool_does_to_a_namespace_is_told_there_once(db: PgPool) {
    let cluster = Cluster::connect().await;
    let (a, b) = (cluster.ns("team-a"), cluster.ns("team-b"));
    let config = format!(
        "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{create: true, names: [{a}, {b}]}}}}}}}}\n"
    );
    let app = TestApp::spawn_in_cluster(&config, db.clone()).await;
    let admin = app.admin().await;
    cluster.pass(&app.service, Account::Create).await;
    // nspool may create Events there, and only there: its own RoleBinding.
    let binding = cluster
        .object("RoleBinding", &a, "nspool-events")
        .await
        .expect("the events binding is applied");
    assert_eq!(binding["roleRef"]["name"], "nspool-events");
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(binding["subjects"][0]["name"], "nspool");

    let ws = app.create_workspace(&admin, "events").await;
    let created = app
        .ok(
            Some(&admin),
            CREATE_DEPLOYMENT,
            json!({"label": "etl", "workspaceId": ws, "executor": "CeleryExecutor", "namespace": a, "releaseName": "quasar-etl"}),
        )
        .await;
    let id = created["createDeployment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        Some(&admin),
        CORDON,
        json!({"name": a, "reason": "node pool upgrade"}),
    )
    .await;
    app.ok(
        Some(&admin),
        DELETE_DEPLOYMENT,
        json!({"deploymentId": id, "deploymentHardDelete": true}),
    )
    .await;
    // The Deployment left a config behind: found, then removed and found clean.
    cluster.put(
        "ConfigMap",
        &a,
        "quasar-etl-airflow-config",
        json!({"data": {"k": "v"}}),
    );
    cluster.pass(&app.service, Account::Create).await;
    cluster.remove("configmap", &a, "quasar-etl-airflow-config");
    due(&db, &a).await;
    cluster.pass(&app.service, Account::Create).await;
    app.ok(Some(&admin), UNCORDON, json!({"name": a})).await;

    let posted = post_to(&app, &cluster).await;
    let events = told(&cluster, &a).await;
    assert_eq!(posted, 6, "{events:?}");
    let reasons: Vec<&str> = events.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "Claimed",
            "Cordoned",
            "Released",
            "LeftoversFound",
            "FoundClean",
            "Uncordoned"
        ]
    );
    assert!(
        events[0].1.starts_with("Claimed by Deployment "),
        "{events:?}"
    );
    assert!(events[1].1.contains("node pool upgrade"), "{events:?}");
    assert!(
        events[3].1.contains("ConfigMap/quasar-etl-airflow-config"),
        "{events:?}"
    );
    let stored = cluster.events(&a).await;
    for event in &stored {
        assert_eq!(event["reportingController"], "nspool");
        assert_eq!(event["regarding"]["kind"], "Namespace");
        assert_eq!(event["regarding"]["name"], event["metadata"]["namespace"]);
    }
    let warning = stored
        .iter()
        .find(|e| e["reason"] == "LeftoversFound")
        .unwrap();
    assert_eq!(warning["type"], "Warning");
    assert!(
        told(&cluster, &b).await.is_empty(),
        "nothing happened there"
    );

    // Told once: the next round posts nothing, and the log is unchanged.
    assert_eq!(post_to(&app, &cluster).await, 0);
    assert_eq!(cluster.events(&a).await.len(), 6);
    save_for_schema_check(&stored, "lifecycle");
    cluster.assert_never_deleted();
}

/// Time passes for every failed post: `seconds` more since its last try.
async fn later(db: &PgPool, seconds: i32) {
    sqlx::query(
        "update kube_event_posts set attempted_at = attempted_at - make_interval(secs => $1)",
    )
    .bind(f64::from(seconds))
    .execute(db)
    .await
    .unwrap();
}

/// A refused post (the API server restarting, a missing binding) changes
/// nothing else and is tried again with a backoff (5 s, doubling, at most
/// 5 minutes) while the entry is younger than an hour: refusals injected by
/// the fake API server.
#[sqlx::test]
async fn a_failed_post_changes_nothing_else_and_is_tried_again_with_backoff(db: PgPool) {
    use nspool::store::kube_events::{
        FIRST_RETRY_WAIT_SECONDS, MAX_ATTEMPTS, MAX_RETRY_WAIT_SECONDS,
    };
    let fake = FakeKube::start().await;
    let app = TestApp::spawn_in_cluster(CREATE, db.clone()).await;
    let admin = app.admin().await;
    fake.pass(&app.service).await;
    // The API server refuses Events twice (no binding yet, say): the claim is fine.
    fake.fail(Some(Method::POST), "/events", 403, Some(2));
    let ws = app.create_workspace(&admin, "failing").await;
    app.ok(
        Some(&admin),
        CREATE_DEPLOYMENT,
        json!({"label": "etl", "workspaceId": ws, "executor": "CeleryExecutor", "namespace": "team-b"}),
    )
    .await;
    assert_eq!(post(&app, &fake).await, 0);
    let attempts = || async {
        sqlx::query_as::<_, (i32, Option<String>)>("select attempts, error from kube_event_posts")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    let (tries, error) = attempts().await;
    assert_eq!(tries, 1);
    assert!(error.is_some_and(|e| e.contains("403")));
    // Not tried again at once: it waits out its backoff.
    assert_eq!(post(&app, &fake).await, 0);
    assert_eq!(attempts().await.0, 1, "no second try within the backoff");
    later(&db, FIRST_RETRY_WAIT_SECONDS).await;
    assert_eq!(post(&app, &fake).await, 0, "the second try is refused too");
    assert_eq!(attempts().await.0, 2);
    later(&db, FIRST_RETRY_WAIT_SECONDS).await;
    assert_eq!(post(&app, &fake).await, 0, "the wait doubled");
    later(&db, FIRST_RETRY_WAIT_SECONDS).await;
    // The third try gets through; then nothing is left to try.
    assert_eq!(post(&app, &fake).await, 1);
    assert_eq!(reasons(&fake, "team-b"), ["Claimed"]);
    assert_eq!(post(&app, &fake).await, 0);

    // Refused every time: tried MAX_ATTEMPTS times over the hour, then given up.
    fake.fail(Some(Method::POST), "/events", 500, None);
    app.ok(
        Some(&admin),
        CORDON,
        json!({"name": "team-a", "reason": "never told"}),
    )
    .await;
    for _ in 0..(MAX_ATTEMPTS + 5) {
        post(&app, &fake).await;
        later(&db, MAX_RETRY_WAIT_SECONDS).await;
    }
    let tries: i32 = sqlx::query_scalar(
        "select p.attempts from kube_event_posts p join events e on e.id = p.event_id where e.kind = 'cordon'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(tries, MAX_ATTEMPTS);
    // The tries span most of the hour an entry may be posted in.
    let waits: i32 = (1..MAX_ATTEMPTS)
        .map(|n| (FIRST_RETRY_WAIT_SECONDS << (n - 1).min(10)).min(MAX_RETRY_WAIT_SECONDS))
        .sum();
    assert!((2_400..=3_600).contains(&waits), "{waits} s of retries");
    let available = app.available(&admin).await;
    assert!(
        !available.contains(&"team-a".to_owned()),
        "the cordon holds"
    );
}

/// The Events the API server stored, as a YAML stream of JSON documents
/// for `kubernetes-validate --strict` (scripts/check-shipping.sh), as a
/// client would send them (no server-set fields). Each test its own file,
/// so that tests running at once never mix them.
fn save_for_schema_check(events: &[Value], test: &str) {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/kube-events");
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::new();
    for event in events {
        let mut event = event.clone();
        if let Some(meta) = event["metadata"].as_object_mut() {
            for server_field in [
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "managedFields",
            ] {
                meta.remove(server_field);
            }
        }
        event["apiVersion"] = Value::from("events.k8s.io/v1");
        event["kind"] = Value::from("Event");
        // JSON documents: YAML would read the times as timestamps, not strings.
        text.push_str("---\n");
        text.push_str(&event.to_string());
        text.push('\n');
    }
    std::fs::write(dir.join(format!("{test}.yaml")), text).unwrap();
}

/// A Kubernetes failure's text is anybody's length: what is stored of it is
/// bounded, on the namespace and on an Event's try alike.
#[sqlx::test]
async fn stored_kubernetes_errors_are_bounded(db: PgPool) {
    let app = TestApp::spawn(CREATE, db.clone()).await;
    let store = app.service.store();
    let huge = "é".repeat(100_000);
    let cluster = app.service.settings().default_cluster().id;
    store
        .record_kube_error(cluster, "team-a", &huge)
        .await
        .unwrap();
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

/// In verify mode: a namespace whose Commander Role lacks a permission is
/// told so (a Warning naming it), and told again when it is repaired; a
/// namespace verified as it was is told once, not at each recheck.
#[sqlx::test]
async fn broken_and_repaired_rbac_are_told_in_the_namespace(db: PgPool) {
    let cluster = Cluster::connect().await;
    let (ok, broken) = (cluster.ns("ns-ok"), cluster.ns("ns-broken"));
    let config = format!(
        "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{create: false, names: [{ok}, {broken}]}}}}}}}}\nnspool: {{serviceAccount: {}}}\n",
        Account::Verify.service_account()
    );
    let app = TestApp::spawn_in_cluster(&config, db.clone()).await;
    // The platform team's objects, as `nspool rbac render` prints them, but
    // the Commander Role in ns-broken cannot get Secrets.
    let settings = app.service.settings();
    let target = nspool::kube::objects::RbacTarget::from_settings(&settings.service);
    let render = |names: &[&str]| -> Vec<Value> {
        let yaml =
            nspool::kube::objects::render(names, &target, &settings.service.pool_labels).unwrap();
        serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect()
    };
    let mut objects = render(&[&ok, &broken]);
    for object in &mut objects {
        if object["kind"] == "Role" && object["metadata"]["namespace"] == broken.as_str() {
            for rule in object["rules"].as_array_mut().unwrap() {
                if rule["resources"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("secrets"))
                {
                    rule["verbs"].as_array_mut().unwrap().retain(|v| v != "get");
                }
            }
        }
    }
    cluster.apply(&json!({"apiVersion": "v1", "kind": "List", "items": objects}));
    for ns in [&ok, &broken] {
        crate::cluster::kubectl(
            &[
                "-n",
                ns,
                "create",
                "rolebinding",
                "nspool-events",
                "--clusterrole=nspool-events",
                &format!(
                    "--serviceaccount=astronomer:{}",
                    Account::Verify.service_account()
                ),
            ],
            None,
        );
    }
    let report = cluster.pass(&app.service, Account::Verify).await;
    assert_eq!(report.broken.len(), 1, "{report:?}");
    let post = || async {
        let kube = cluster.nspool(Account::Verify).await;
        nspool::kube::event_posts::post_due(
            app.service.store(),
            app.service.settings().default_cluster().id,
            &kube,
            "nspool-test-0",
        )
        .await
        .expect("posting reads the database")
    };
    assert_eq!(post().await, 2);
    let told_broken = told(&cluster, &broken).await;
    assert_eq!(
        told_broken
            .iter()
            .map(|(r, _)| r.as_str())
            .collect::<Vec<_>>(),
        ["RBACBroken"]
    );
    assert!(
        told_broken[0].1.contains("get secrets (core)"),
        "{told_broken:?}"
    );
    assert_eq!(
        told(&cluster, &ok)
            .await
            .iter()
            .map(|(r, _)| r.as_str())
            .collect::<Vec<_>>(),
        ["RBACVerified"]
    );
    let warning = cluster.events(&broken).await.remove(0);
    assert_eq!(warning["type"], "Warning");

    // The Role is fixed; both are checked again.
    cluster.apply(&json!({"apiVersion": "v1", "kind": "List", "items": render(&[&broken])}));
    sqlx::query("update pool_namespaces set rbac_checked_at = rbac_checked_at - interval '1 day'")
        .execute(&db)
        .await
        .unwrap();
    let report = cluster.pass(&app.service, Account::Verify).await;
    assert!(report.broken.is_empty(), "{report:?}");
    assert_eq!(post().await, 1, "only the repair is news");
    assert_eq!(
        told(&cluster, &broken)
            .await
            .iter()
            .map(|(r, _)| r.as_str())
            .collect::<Vec<_>>(),
        ["RBACBroken", "RBACRepaired"]
    );
    assert_eq!(told(&cluster, &ok).await.len(), 1);
    let mut stored = cluster.events(&ok).await;
    stored.extend(cluster.events(&broken).await);
    save_for_schema_check(&stored, "rbac");
    cluster.assert_never_deleted();
}
