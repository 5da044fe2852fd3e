//! Create mode notices drift as controllers do (a watch, not a poll) and
//! repairs it: against the real API server, nspool as its own
//! ServiceAccount with the shipped RBAC, the worker running as leader.

use crate::cluster::{Account, Cluster, kubectl};
use crate::support::TestApp;
use nspool::kube::objects::MANAGED_BY_KEY;
use nspool::kube::reconcile::KubeWorker;
use serde_json::Value;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// How long a repair may take: the bound docs/operations.md states.
const DRIFT_BOUND: Duration = Duration::from_secs(60);

fn create_config(names: &[String]) -> String {
    format!(
        "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{create: true, names: [{}]}}}}}}}}\n",
        names.join(", ")
    )
}

/// Waits up to the bound until `done` holds; returns how long it took.
async fn within_bound<F, Fut>(what: &str, mut done: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < DRIFT_BOUND,
            "{what}: not within {DRIFT_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    started.elapsed()
}

/// Create mode over `names`, this replica's worker leading, once every
/// namespace is applied and offered.
struct Leading {
    app: TestApp,
    admin: String,
    stop: tokio::sync::watch::Sender<bool>,
    run: tokio::task::JoinHandle<()>,
}

async fn leading(cluster: &Cluster, names: &[String], db: &PgPool) -> Leading {
    let app = TestApp::spawn_in_cluster(&create_config(names), db.clone()).await;
    let admin = app.admin().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = KubeWorker::new(&app.service, cluster.nspool(Account::Create).await);
    let run = tokio::spawn(worker.run(stopped));
    let mut all = names.to_vec();
    all.sort();
    within_bound("first applied", || async {
        app.available(&admin).await == all
    })
    .await;
    Leading {
        app,
        admin,
        stop,
        run,
    }
}

/// Sets the Namespace's finalizers (`json`: a list, or `null` for none).
fn finalizers(namespace: &str, json: &str) {
    let patch = format!(r#"{{"metadata":{{"finalizers":{json}}}}}"#);
    kubectl(
        &[
            "patch",
            "namespace",
            namespace,
            "--type=merge",
            "-p",
            &patch,
        ],
        None,
    );
}

async fn subjects(cluster: &Cluster, ns: &str) -> Value {
    cluster
        .object("RoleBinding", ns, "deployment-commander-rolebinding")
        .await
        .map(|b| b["subjects"].clone())
        .unwrap_or(Value::Null)
}

async fn verbs(cluster: &Cluster, ns: &str) -> Option<Value> {
    cluster
        .object("Role", ns, "deployment-commander-role")
        .await
        .map(|r| r["rules"].clone())
}

/// A Role deleted, a RoleBinding pointed at another account, a managed-by
/// label removed and a Namespace deleted, all out of band while nspool runs:
/// each is found by the watch, taken off the offer, applied again within the
/// bound, and told as a `drift` event.
#[sqlx::test]
async fn create_mode_repairs_drift_found_by_a_watch_within_a_minute(db: PgPool) {
    let cluster = Cluster::connect().await;
    let names: Vec<String> = ["role", "binding", "label", "gone", "quiet"]
        .iter()
        .map(|base| cluster.ns(base))
        .collect();
    let [role_ns, binding_ns, label_ns, gone_ns, quiet_ns] =
        [0, 1, 2, 3, 4].map(|i| names[i].clone());
    let Leading {
        app,
        admin,
        stop,
        run,
    } = leading(&cluster, &names, &db).await;
    within_bound("the drift watch listed", || async {
        app.metrics()
            .await
            .contains("nspool_kube_drift_watch_synced{cluster=\"default\"} 1")
    })
    .await;
    let rules = verbs(&cluster, &role_ns).await.expect("applied");
    let commander = subjects(&cluster, &binding_ns).await;
    let quiet_role = cluster
        .object("Role", &quiet_ns, "deployment-commander-role")
        .await
        .unwrap();

    // Out of band, all at once.
    kubectl(
        &[
            "-n",
            &role_ns,
            "delete",
            "role",
            "deployment-commander-role",
        ],
        None,
    );
    kubectl(
        &[
            "-n",
            &binding_ns,
            "patch",
            "rolebinding",
            "deployment-commander-rolebinding",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/subjects/0/name","value":"someone-else"}]"#,
        ],
        None,
    );
    kubectl(
        &[
            "label",
            "namespace",
            &label_ns,
            &format!("{MANAGED_BY_KEY}-"),
        ],
        None,
    );
    // A finalizer of someone else's holds it in Terminating until removed.
    finalizers(&gone_ns, r#"["nspool.test/hold"]"#);
    kubectl(&["delete", "namespace", &gone_ns, "--wait=false"], None);
    let changed = Instant::now();

    let role_back = within_bound("Role applied again", || async {
        verbs(&cluster, &role_ns).await.as_ref() == Some(&rules)
    })
    .await;
    let binding_back = within_bound("RoleBinding applied again", || async {
        subjects(&cluster, &binding_ns).await == commander
    })
    .await;
    let label_back = within_bound("label applied again", || async {
        cluster
            .object("Namespace", "", &label_ns)
            .await
            .is_some_and(|n| n["metadata"]["labels"][MANAGED_BY_KEY] == "nspool")
    })
    .await;
    // The deleted namespace: not offered while it is being deleted, an
    // apply there (which would pass: its objects are still there) is no
    // readiness.
    within_bound("a namespace being deleted is not offered", || async {
        !app.available(&admin).await.contains(&gone_ns)
    })
    .await;
    within_bound("its apply refused as being deleted", || async {
        let error: Option<String> =
            sqlx::query_scalar("select kube_error from pool_namespaces where name = $1")
                .bind(&gone_ns)
                .fetch_one(&db)
                .await
                .unwrap();
        error.is_some_and(|e| e.contains("is being deleted"))
    })
    .await;
    assert!(!app.available(&admin).await.contains(&gone_ns));
    eprintln!(
        "repaired after: Role {role_back:?}, RoleBinding {binding_back:?}, label {label_back:?} (all changed at {:?})",
        changed.elapsed()
    );

    // Each drift is an event on its namespace, and counted.
    let events: Vec<(String, String)> =
        sqlx::query_as("select namespace, reason from events where kind = 'drift' order by id")
            .fetch_all(&db)
            .await
            .unwrap();
    for (ns, what) in [
        (&role_ns, "Role/deployment-commander-role deleted"),
        (
            &binding_ns,
            "RoleBinding/deployment-commander-rolebinding edited",
        ),
        (&label_ns, "Namespace edited"),
    ] {
        assert!(
            events.iter().any(|(n, w)| n == ns && w == what),
            "{ns}: {what} in {events:?}"
        );
    }
    // Whichever of its objects the watch saw go first.
    assert!(
        events
            .iter()
            .any(|(n, w)| n == &gone_ns && w.ends_with("deleted")),
        "{events:?}"
    );
    assert!(!events.iter().any(|(n, _)| n == &quiet_ns), "{events:?}");
    // Counted (the namespace being deleted may add its own Role's delete).
    let metrics = app.metrics().await;
    let counted = crate::support::metric_value(
        &metrics,
        "nspool_kube_drift_total{object=\"Role/deployment-commander-role\",change=\"deleted\",cluster=\"default\"}",
    );
    assert!(counted.is_some_and(|n| n >= 1.0), "{metrics}");
    // The untouched namespace's Role was not written again.
    let quiet_now = cluster
        .object("Role", &quiet_ns, "deployment-commander-role")
        .await
        .unwrap();
    assert_eq!(
        quiet_now["metadata"]["resourceVersion"],
        quiet_role["metadata"]["resourceVersion"]
    );
    // Found by watches (by name for the RBAC objects), never a poll.
    let watches = cluster.watches_of(Account::Create);
    for wanted in [
        "fieldSelector=metadata.name%3Ddeployment-commander-role",
        "fieldSelector=metadata.name%3Ddeployment-commander-rolebinding",
        "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dnspool",
    ] {
        assert!(
            watches.iter().any(|uri| uri.contains(wanted)),
            "no watch with {wanted}: {watches:?}"
        );
    }

    // Once the namespace controller removed it, it is made again and offered.
    let old_uid =
        cluster.object("Namespace", "", &gone_ns).await.unwrap()["metadata"]["uid"].clone();
    finalizers(&gone_ns, "null");
    within_bound("the deleted namespace made again", || async {
        sqlx::query("update pool_namespaces set kube_next_attempt_at = null where name = $1")
            .bind(&gone_ns)
            .execute(&db)
            .await
            .unwrap();
        app.service.kube_wake().wake_workers();
        app.available(&admin).await.contains(&gone_ns)
    })
    .await;
    let made = cluster
        .object("Namespace", "", &gone_ns)
        .await
        .expect("made again");
    assert_ne!(made["metadata"]["uid"], old_uid);
    assert!(made["metadata"]["deletionTimestamp"].is_null());
    let _ = stop.send(true);
    let _ = run.await;
    cluster.assert_never_deleted();
}

/// What changed while no replica watched (every replica down, or the watch
/// broken) is found by the next leader's fresh list: what the database says
/// was applied and the list does not show is applied again; what is there
/// is left alone.
#[sqlx::test]
async fn drift_while_nobody_watched_is_found_by_the_fresh_list(db: PgPool) {
    let cluster = Cluster::connect().await;
    let names = [cluster.ns("missed"), cluster.ns("kept")];
    let app = TestApp::spawn_in_cluster(&create_config(&names), db.clone()).await;
    let admin = app.admin().await;
    let report = cluster.pass(&app.service, Account::Create).await;
    assert_eq!(report.applied, 2, "{report:?}");
    let kept = cluster
        .object("RoleBinding", &names[1], "deployment-commander-rolebinding")
        .await
        .unwrap();

    // Nobody watches: the binding goes.
    kubectl(
        &[
            "-n",
            &names[0],
            "delete",
            "rolebinding",
            "deployment-commander-rolebinding",
        ],
        None,
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = KubeWorker::new(&app.service, cluster.nspool(Account::Create).await);
    let run = tokio::spawn(worker.run(stopped));
    let took = within_bound("the binding applied again", || async {
        cluster
            .object("RoleBinding", &names[0], "deployment-commander-rolebinding")
            .await
            .is_some()
    })
    .await;
    eprintln!("a binding deleted while nobody watched was back {took:?} after the leader started");
    let reason: String =
        sqlx::query_scalar("select reason from events where kind = 'drift' and namespace = $1")
            .bind(&names[0])
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(
        reason,
        "RoleBinding/deployment-commander-rolebinding deleted"
    );
    let mut all = names.to_vec();
    all.sort();
    within_bound("both offered", || async {
        app.available(&admin).await == all
    })
    .await;
    let kept_now = cluster
        .object("RoleBinding", &names[1], "deployment-commander-rolebinding")
        .await
        .unwrap();
    assert_eq!(
        kept_now["metadata"]["resourceVersion"],
        kept["metadata"]["resourceVersion"]
    );
    let _ = stop.send(true);
    let _ = run.await;
    cluster.assert_never_deleted();
}

/// Claim labels stripped or edited by hand on held namespaces are written
/// again by the watch, without `resyncPool`, with a `drift` event each;
/// a label someone put on a free namespace is theirs and no drift.
#[sqlx::test]
async fn claim_labels_changed_by_hand_are_written_again_by_the_watch(db: PgPool) {
    use crate::support::claim_in_own_workspace as claim;
    use nspool::kube::objects::{LABEL_DEPLOYMENT, LABEL_RELEASE};
    let cluster = Cluster::connect().await;
    let names: Vec<String> = ["stripped", "edited", "quiet", "free"]
        .iter()
        .map(|base| cluster.ns(base))
        .collect();
    let [stripped, edited, quiet, free] = [0, 1, 2, 3].map(|i| names[i].clone());
    let Leading {
        app,
        admin,
        stop,
        run,
    } = leading(&cluster, &names, &db).await;
    let mut holders = std::collections::HashMap::new();
    for ns in [&stripped, &edited, &quiet] {
        holders.insert(ns.clone(), claim(&app, &admin, ns).await);
    }
    let labelled = |ns: String| {
        let cluster = &cluster;
        let holder = holders[&ns].clone();
        async move {
            let labels =
                cluster.object("Namespace", "", &ns).await.unwrap()["metadata"]["labels"].clone();
            labels[LABEL_DEPLOYMENT] == holder["id"]
                && labels[LABEL_RELEASE] == holder["releaseName"]
        }
    };
    for ns in [&stripped, &edited, &quiet] {
        within_bound("claim labels written", || labelled(ns.clone())).await;
    }
    within_bound("the drift watch listed", || async {
        app.metrics()
            .await
            .contains("nspool_kube_drift_watch_synced{cluster=\"default\"} 1")
    })
    .await;
    let quiet_version =
        cluster.object("Namespace", "", &quiet).await.unwrap()["metadata"]["resourceVersion"]
            .clone();

    // By hand: one label taken off, one pointed elsewhere, and a label on a
    // free namespace that nspool never wrote.
    kubectl(
        &[
            "label",
            "namespace",
            &stripped,
            &format!("{LABEL_DEPLOYMENT}-"),
        ],
        None,
    );
    kubectl(
        &[
            "label",
            "--overwrite",
            "namespace",
            &edited,
            &format!("{LABEL_RELEASE}=someone-else"),
        ],
        None,
    );
    kubectl(
        &[
            "label",
            "namespace",
            &free,
            &format!("{LABEL_DEPLOYMENT}=by-hand"),
        ],
        None,
    );
    let stripped_back = within_bound("the stripped label written again", || {
        labelled(stripped.clone())
    })
    .await;
    let edited_back = within_bound("the edited label written again", || {
        labelled(edited.clone())
    })
    .await;
    eprintln!("claim labels back after: stripped {stripped_back:?}, edited {edited_back:?}");

    let events: Vec<(String, String)> =
        sqlx::query_as("select namespace, reason from events where kind = 'drift' order by id")
            .fetch_all(&db)
            .await
            .unwrap();
    for ns in [&stripped, &edited] {
        assert!(
            events
                .iter()
                .any(|(n, w)| n == ns && w == "Namespace claim labels removed or edited"),
            "{ns} in {events:?}"
        );
    }
    assert!(
        !events.iter().any(|(n, _)| n == &quiet || n == &free),
        "{events:?}"
    );
    let metrics = app.metrics().await;
    let counted = crate::support::metric_value(
        &metrics,
        "nspool_kube_drift_total{object=\"Namespace\",change=\"claim-labels\",cluster=\"default\"}",
    );
    assert_eq!(counted, Some(2.0), "{metrics}");
    // Nothing written where nothing changed; the person's label stays.
    assert_eq!(
        cluster.object("Namespace", "", &quiet).await.unwrap()["metadata"]["resourceVersion"],
        quiet_version
    );
    assert_eq!(
        cluster.object("Namespace", "", &free).await.unwrap()["metadata"]["labels"]
            [LABEL_DEPLOYMENT],
        "by-hand"
    );
    // The held namespaces were never off the holder's books.
    let held: i64 = sqlx::query_scalar(
        "select count(*) from pool_namespaces where holder_deployment_id is not null",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(held, 3);
    let _ = stop.send(true);
    let _ = run.await;
    cluster.assert_never_deleted();
}

/// The database's half of the claim-label comparison, without a cluster:
/// a sighting that does not name the holder makes the namespace a suspect,
/// but only a fresh read that still misses the labels marks them unwritten
/// (with its event); one that names the holder, as a stale watch event's
/// re-read does, marks nothing. A released namespace is never a suspect.
#[sqlx::test]
async fn only_a_fresh_read_that_misses_the_claim_labels_marks_them(db: PgPool) {
    use crate::support::{POOL_OF_5, claim_in_own_workspace as claim};
    let app = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let admin = app.admin().await;
    let held = claim(&app, &admin, "pool-a").await;
    let (id, release) = (
        held["id"].as_str().unwrap().to_owned(),
        held["releaseName"].as_str().unwrap().to_owned(),
    );
    // As the worker records labels written for the holder.
    sqlx::query(
        "update pool_namespaces set labels_holder = holder_deployment_id where name = 'pool-a'",
    )
    .execute(&db)
    .await
    .unwrap();
    let store = app.service.store();
    let cluster: uuid::Uuid =
        sqlx::query_scalar("select cluster_id from pool_namespaces where name = 'pool-a'")
            .fetch_one(&db)
            .await
            .unwrap();
    let names = ["pool-a".to_owned(), "pool-b".to_owned()];
    // Seen with the holder's labels: nothing; seen without: a suspect.
    let matching = store
        .claim_labels_differ(
            cluster,
            &names,
            &[Some(id.clone()), None],
            &[Some(release.clone()), None],
        )
        .await
        .unwrap();
    assert!(matching.is_empty(), "{matching:?}");
    let stripped = store
        .claim_labels_differ(
            cluster,
            &names,
            &[None, None],
            &[Some(release.clone()), None],
        )
        .await
        .unwrap();
    assert_eq!(stripped, ["pool-a"]);
    // The fresh read names the holder after all: nothing marked.
    let what = "Namespace claim labels removed or edited";
    let marked = store
        .record_claim_labels_lost(cluster, "pool-a", (Some(&id), Some(&release)), what)
        .await
        .unwrap();
    assert!(!marked);
    let drifts = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from events where kind = 'drift'")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    assert_eq!(drifts().await, 0);
    // It still misses them: marked unwritten, once, with its event.
    assert!(
        store
            .record_claim_labels_lost(cluster, "pool-a", (None, Some(&release)), what)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_claim_labels_lost(cluster, "pool-a", (None, Some(&release)), what)
            .await
            .unwrap()
    );
    assert_eq!(drifts().await, 1);
    let labels_holder: Option<uuid::Uuid> =
        sqlx::query_scalar("select labels_holder from pool_namespaces where name = 'pool-a'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(labels_holder, None);
    // Released, its labels due for removal: never a suspect.
    crate::support::hard_delete(&app, &admin, &held["id"]).await;
    sqlx::query("update pool_namespaces set labels_holder = $1::uuid where name = 'pool-a'")
        .bind(&id)
        .execute(&db)
        .await
        .unwrap();
    let released = store
        .claim_labels_differ(
            cluster,
            &names,
            &[Some(id.clone()), None],
            &[Some(release), None],
        )
        .await
        .unwrap();
    assert!(released.is_empty(), "{released:?}");
}
