//! Many clusters against real API servers: one nspool, two control planes
//! at once (each its own kubeconfig file, as `nspool.clusters` names them),
//! one Kubernetes client and worker per cluster, as `serve` runs them.

use crate::cluster::{Account, Cluster, OwnedPlane};
use crate::clusters::{PROD, STAGING};
use crate::documents_1x as v1;
use crate::support::TestApp;
use nspool::config::KubernetesMode;
use nspool::kube::client::KubeClient;
use nspool::kube::lease::{Leadership, LeaseTiming};
use nspool::kube::objects::{LABEL_DEPLOYMENT, LABEL_RELEASE};
use nspool::kube::reconcile::KubeWorker;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

/// Both clusters in create mode: prod reached with `prod`'s kubeconfig,
/// staging with `staging`'s, each pool listing `names`.
fn two_clusters(
    prod: &Path,
    prod_names: &[&str],
    staging: &Path,
    staging_names: &[&str],
) -> String {
    format!(
        r#"
nspool:
  houstonVersion: 1.0.0
  clusters:
    - id: {PROD}
      name: prod
      kubeconfig: {}
      namespacePools: {{enabled: true, namespaces: {{create: true, names: [{}]}}}}
    - id: {STAGING}
      name: staging
      kubeconfig: {}
      namespacePools: {{enabled: true, namespaces: {{create: true, names: [{}]}}}}
"#,
        prod.display(),
        prod_names.join(", "),
        staging.display(),
        staging_names.join(", "),
    )
}

/// The workers of a test, stopped before its database goes.
struct Workers {
    stop: watch::Sender<bool>,
    running: Vec<tokio::task::JoinHandle<()>>,
    /// Each worker's hold on its cluster's lease, by cluster name.
    leads: Vec<(String, Leadership)>,
}

impl Workers {
    /// Stops them and waits (a call to a silent API server ends by its timeout).
    async fn stop(self) {
        let _ = self.stop.send(true);
        for worker in self.running {
            let _ = tokio::time::timeout(Duration::from_secs(30), worker).await;
        }
    }
}

/// One worker per cluster, each with its own client from the cluster's
/// kubeconfig (what `serve` starts).
async fn start_workers(app: &TestApp) -> Workers {
    start_workers_timed(app, LeaseTiming::default(), |_| true).await
}

/// The same with other lease timing (a hand-over within seconds), for the
/// clusters `which` names only.
async fn start_workers_timed(
    app: &TestApp,
    timing: LeaseTiming,
    which: impl Fn(&str) -> bool,
) -> Workers {
    let (stop, stopped) = watch::channel(false);
    let settings = app.service.settings();
    let (mut running, mut leads) = (Vec::new(), Vec::new());
    for cluster in settings.clusters.iter().filter(|c| which(&c.name)) {
        let kube = KubeClient::connect_cluster(KubernetesMode::Cluster, cluster)
            .await
            .expect("the cluster's kubeconfig")
            .expect("a client");
        let worker = KubeWorker::for_cluster(&app.service, cluster, kube).with_lease_timing(timing);
        leads.push((cluster.name.clone(), worker.leadership()));
        running.push(tokio::spawn(worker.run(stopped.clone())));
    }
    Workers {
        stop,
        running,
        leads,
    }
}

/// The workers as `serve` runs them, following reloads: started with the
/// first cluster's client (its `stop`, and the supervisor to wait for).
async fn supervise_from_the_first(
    app: &TestApp,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let first = app.service.settings().default_cluster().clone();
    let kube = KubeClient::connect_cluster(KubernetesMode::Cluster, &first)
        .await
        .expect("the first cluster's kubeconfig")
        .expect("a client");
    let (stop, stopped) = watch::channel(false);
    let supervisor = tokio::spawn(nspool::kube::workers::supervise(
        app.service.clone(),
        KubernetesMode::Cluster,
        vec![(first, kube)],
        stopped,
    ));
    (stop, supervisor)
}

async fn available_in(app: &TestApp, token: &str, cluster: &str) -> Vec<String> {
    let data = app
        .ok(
            Some(token),
            v1::AVAILABLE_NAMESPACES,
            json!({"clusterId": cluster}),
        )
        .await;
    data["availableNamespaces"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|n| n["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// Waits (at most `within`) until `check` holds, polling.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "{what} not within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn claim_in(app: &TestApp, token: &str, workspace: Uuid, cluster: &str, ns: &str) -> Value {
    let answer = app
        .gql(
            Some(token),
            v1::CREATE_DEPLOYMENT,
            json!({"label": format!("in-{cluster}"), "workspaceId": workspace, "clusterId": cluster,
                   "executor": "CeleryExecutor", "namespace": ns}),
        )
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    answer["data"]["upsertDeployment"].clone()
}

async fn label_of(cluster: &Cluster, ns: &str, label: &str) -> Option<String> {
    let namespace = cluster.object("Namespace", "", ns).await?;
    namespace["metadata"]["labels"][label]
        .as_str()
        .map(str::to_owned)
}

#[sqlx::test]
async fn the_same_name_in_two_real_clusters_is_held_by_two_deployments(db: PgPool) {
    let (prod, staging) = Cluster::connect_both().await;
    // The same name in both clusters (the two views share their suffix).
    let ns = prod.ns("team-a");
    assert_eq!(ns, staging.ns("team-a"));
    let config = two_clusters(
        &prod.kubeconfig_as(Account::Create).await,
        &[&ns],
        &staging.kubeconfig_as(Account::Create).await,
        &[&ns],
    );
    let url = crate::support::database_url(&db);
    let app = TestApp::spawn_in_cluster(&config, db).await;
    let admin = app.admin().await;
    assert!(
        available_in(&app, &admin, PROD).await.is_empty(),
        "not offered before it is applied"
    );
    let workers = start_workers(&app).await;
    eventually(Duration::from_secs(60), "both applied", || async {
        available_in(&app, &admin, PROD).await == [ns.clone()]
            && available_in(&app, &admin, STAGING).await == [ns.clone()]
    })
    .await;
    for cluster in [&prod, &staging] {
        assert!(cluster.object("Namespace", "", &ns).await.is_some());
        assert!(
            cluster
                .object("Role", &ns, "deployment-commander-role")
                .await
                .is_some()
        );
    }

    let workspace = app.create_workspace(&admin, "w").await;
    let in_prod = claim_in(&app, &admin, workspace, PROD, &ns).await;
    let in_staging = claim_in(&app, &admin, workspace, STAGING, &ns).await;
    assert_ne!(in_prod["id"], in_staging["id"]);
    // Each cluster's Namespace carries its own holder's claim labels.
    for (cluster, deployment) in [(&prod, &in_prod), (&staging, &in_staging)] {
        let id = deployment["id"].as_str().expect("an id").to_owned();
        eventually(Duration::from_secs(30), "claim labels", || async {
            label_of(cluster, &ns, LABEL_DEPLOYMENT).await.as_deref() == Some(id.as_str())
        })
        .await;
        assert_eq!(
            label_of(cluster, &ns, LABEL_RELEASE).await.as_deref(),
            deployment["releaseName"].as_str()
        );
    }
    // Each cluster's worker posted its claim Event into its own cluster.
    for (cluster, deployment) in [(&prod, &in_prod), (&staging, &in_staging)] {
        let release = deployment["releaseName"]
            .as_str()
            .expect("a release")
            .to_owned();
        eventually(Duration::from_secs(30), "the claim Event", || async {
            cluster
                .events(&ns)
                .await
                .iter()
                .any(|e| e.to_string().contains(&release))
        })
        .await;
    }
    let clusters = app
        .ok(
            Some(&admin),
            "{ clusters { name held reachable } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        clusters["clusters"],
        json!([{"name": "prod", "held": 1, "reachable": true}, {"name": "staging", "held": 1, "reachable": true}])
    );
    workers.stop().await;

    // `nspool rbac check --cluster NAME` verifies that cluster's pool with
    // that cluster's kubeconfig; an unknown name is refused.
    let file = std::env::temp_dir().join(format!("nspool-clusters-{}.yaml", Uuid::new_v4()));
    std::fs::write(&file, &config).expect("config written");
    let written = file.clone();
    let check = move |cluster: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nspool"))
            .args(["rbac", "check", "--cluster", cluster, "--config"])
            .arg(&file)
            .env("DATABASE_URL", &url)
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .expect("nspool runs")
    };
    let out = tokio::task::spawn_blocking({
        let check = check.clone();
        move || check("staging")
    })
    .await
    .expect("the check ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("checked 1 namespace(s)"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tokio::task::spawn_blocking(move || check("qa"))
        .await
        .expect("the check ran");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"qa\""));
    let _ = std::fs::remove_file(written);
    prod.assert_never_deleted();
    staging.assert_never_deleted();
}

/// One cluster's API server stops answering (SIGSTOP of its process): its
/// own work waits and its row says it is unreachable, while claims go on in
/// both clusters and the other cluster's RBAC and labels are applied as ever.
#[sqlx::test]
async fn a_cluster_that_does_not_answer_delays_only_its_own_work(db: PgPool) {
    let (mut owned, down) = OwnedPlane::start().await;
    let up = Cluster::connect().await;
    let (down_ns, up_ns) = (down.ns("down-a"), up.ns("up-a"));
    let (down_b, up_b) = (down.ns("down-b"), up.ns("up-b"));
    let config = two_clusters(
        &down.kubeconfig_as(Account::Create).await,
        &[&down_ns, &down_b],
        &up.kubeconfig_as(Account::Create).await,
        &[&up_ns, &up_b],
    );
    let app = TestApp::spawn_in_cluster(&config, db).await;
    let admin = app.admin().await;
    let workers = start_workers(&app).await;
    eventually(Duration::from_secs(60), "both applied", || async {
        available_in(&app, &admin, PROD).await.len() == 2
            && available_in(&app, &admin, STAGING).await.len() == 2
    })
    .await;

    owned.pause();
    let paused = Instant::now();
    // Claims in both clusters answer at once: they never wait for Kubernetes.
    let workspace = app.create_workspace(&admin, "w").await;
    let started = Instant::now();
    let in_down = claim_in(&app, &admin, workspace, PROD, &down_ns).await;
    let in_up = claim_in(&app, &admin, workspace, STAGING, &up_ns).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "claims waited {:?}",
        started.elapsed()
    );
    // The answering cluster's claim labels are written, and a resync of its
    // RBAC is applied again, while the other does not answer.
    let id = in_up["id"].as_str().expect("an id").to_owned();
    eventually(
        Duration::from_secs(30),
        "labels in the answering cluster",
        || async { label_of(&up, &up_ns, LABEL_DEPLOYMENT).await.as_deref() == Some(id.as_str()) },
    )
    .await;
    up.remove("Role", &up_b, "deployment-commander-role");
    app.ok(Some(&admin), "mutation { resyncPool }", Value::Null)
        .await;
    eventually(
        Duration::from_secs(30),
        "the Role applied again",
        || async {
            up.object("Role", &up_b, "deployment-commander-role")
                .await
                .is_some()
        },
    )
    .await;
    // The silent cluster says so: on its row, in the clusters query.
    // Within a check period and its timeout (5 s each), and a poll.
    eventually(Duration::from_secs(20), "prod marked unreachable", || async {
        let clusters = app
            .ok(Some(&admin), "{ clusters { name reachable } }", Value::Null)
            .await;
        clusters["clusters"]
            == json!([{"name": "prod", "reachable": false}, {"name": "staging", "reachable": true}])
    })
    .await;
    eprintln!("unreachable after {:?}", paused.elapsed());

    // Back: its own work (the claim labels) is done, and it is reachable again.
    owned.resume();
    let id = in_down["id"].as_str().expect("an id").to_owned();
    eventually(
        Duration::from_secs(60),
        "labels once it answers",
        || async {
            label_of(&down, &down_ns, LABEL_DEPLOYMENT).await.as_deref() == Some(id.as_str())
        },
    )
    .await;
    eventually(Duration::from_secs(30), "prod reachable again", || async {
        let clusters = app
            .ok(Some(&admin), "{ clusters { name reachable } }", Value::Null)
            .await;
        clusters["clusters"][0]["reachable"] == true
    })
    .await;
    workers.stop().await;
    up.assert_never_deleted();
    down.assert_never_deleted();
}

/// A reload that adds a cluster gets it a client and a worker (as `serve`
/// follows its config): its namespace is applied and offered; removed again,
/// its worker ends and gives its lease up.
#[sqlx::test]
async fn a_cluster_added_by_a_reload_gets_its_worker(db: PgPool) {
    let (prod, staging) = Cluster::connect_both().await;
    let ns = prod.ns("team-r");
    let (prod_kubeconfig, staging_kubeconfig) = (
        prod.kubeconfig_as(Account::Create).await,
        staging.kubeconfig_as(Account::Create).await,
    );
    let one = format!(
        "nspool:\n  clusters:\n    - {{id: {PROD}, name: prod, kubeconfig: {}, namespacePools: {{enabled: true, namespaces: {{create: true, names: [{ns}]}}}}}}\n",
        prod_kubeconfig.display()
    );
    let both = two_clusters(&prod_kubeconfig, &[&ns], &staging_kubeconfig, &[&ns]);
    let app = TestApp::spawn_in_cluster(&one, db).await;
    let admin = app.admin().await;
    let (stop, supervisor) = supervise_from_the_first(&app).await;
    eventually(Duration::from_secs(60), "prod applied", || async {
        available_in(&app, &admin, PROD).await == [ns.clone()]
    })
    .await;

    let parse = |yaml: &str| nspool::config::Settings::parse(yaml, &|_| None);
    app.service
        .reload(parse(&both))
        .await
        .expect("staging added");
    eventually(
        Duration::from_secs(60),
        "staging applied by its new worker",
        || async { available_in(&app, &admin, STAGING).await == [ns.clone()] },
    )
    .await;
    assert!(staging.object("Namespace", "", &ns).await.is_some());

    app.service
        .reload(parse(&one))
        .await
        .expect("staging removed");
    let staging_id = Uuid::parse_str(STAGING).expect("uuid");
    eventually(
        Duration::from_secs(30),
        "staging's lease given up",
        || async {
            app.service
                .store()
                .kube_lease(staging_id)
                .await
                .expect("the lease row")
                .is_none()
        },
    )
    .await;
    // Its series went with its worker: no alert pages about it.
    let kube_series_of = |metrics: &str, cluster: &str| -> Vec<String> {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("nspool_kube_") && l.contains(&format!("cluster=\"{cluster}\""))
            })
            .map(str::to_owned)
            .collect()
    };
    eventually(
        Duration::from_secs(10),
        "staging's series removed",
        || async { kube_series_of(&app.metrics().await, "staging").is_empty() },
    )
    .await;

    // A rename starts the cluster's worker anew under its new name; the old
    // name's series go (a stale last pass would page after two minutes).
    let renamed = one.replace("name: prod", "name: main");
    app.service
        .reload(parse(&renamed))
        .await
        .expect("prod renamed");
    eventually(Duration::from_secs(30), "main's worker leads", || async {
        let metrics = app.metrics().await;
        metrics.contains("nspool_kube_leader{cluster=\"main\"} 1")
            && kube_series_of(&metrics, "prod").is_empty()
    })
    .await;
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), supervisor).await;
    prod.assert_never_deleted();
    staging.assert_never_deleted();
}

/// Which of `replicas` (each its workers' holds) leads `cluster` now.
fn leaders_of(replicas: &[Vec<(String, Leadership)>], cluster: &str) -> Vec<usize> {
    (0..replicas.len())
        .filter(|&i| {
            replicas[i]
                .iter()
                .any(|(name, lead)| name == cluster && lead.held())
        })
        .collect()
}

/// Three replicas on one database, each running a worker per cluster (as
/// three `serve`s do) against two real control planes. Replica 0 starts
/// with prod's worker and replica 1 with staging's, so each leads one
/// cluster; then every replica runs both. Each cluster's lease has one
/// holder at every moment; replica 0, stopped cleanly, hands prod over at
/// once while staging's lease stays with replica 1, never taken anew. Claims
/// made afterwards reach both clusters through their leaders.
#[sqlx::test]
async fn three_replicas_lead_each_cluster_once_and_hand_over(db: PgPool) {
    const TIMING: LeaseTiming = LeaseTiming {
        duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry: Duration::from_millis(500),
    };
    let (prod, staging) = Cluster::connect_both().await;
    let ns = prod.ns("team-l");
    let config = two_clusters(
        &prod.kubeconfig_as(Account::Create).await,
        &[&ns],
        &staging.kubeconfig_as(Account::Create).await,
        &[&ns],
    );
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(TestApp::spawn_replica_in_cluster(&config, &db).await);
    }
    // Each replica's workers (those started first, then the rest).
    let mut workers: Vec<Vec<Workers>> = vec![
        vec![start_workers_timed(&replicas[0], TIMING, |c| c == "prod").await],
        vec![start_workers_timed(&replicas[1], TIMING, |c| c == "staging").await],
        Vec::new(),
    ];
    let first_leads = |workers: &[Vec<Workers>]| -> Vec<Vec<(String, Leadership)>> {
        workers
            .iter()
            .map(|w| w.iter().flat_map(|w| w.leads.clone()).collect())
            .collect()
    };
    let early = first_leads(&workers);
    eventually(
        Duration::from_secs(10),
        "replica 0 leads prod, 1 staging",
        || async { leaders_of(&early, "prod") == [0] && leaders_of(&early, "staging") == [1] },
    )
    .await;
    workers[0].push(start_workers_timed(&replicas[0], TIMING, |c| c == "staging").await);
    workers[1].push(start_workers_timed(&replicas[1], TIMING, |c| c == "prod").await);
    workers[2].push(start_workers_timed(&replicas[2], TIMING, |_| true).await);
    let leads = first_leads(&workers);
    // Every 20 ms until the end: how many replicas lead each cluster at once.
    let (done, mut finished) = watch::channel(false);
    let sampler = tokio::spawn({
        let leads = leads.clone();
        async move {
            let mut most = 0;
            loop {
                for cluster in ["prod", "staging"] {
                    most = most.max(leaders_of(&leads, cluster).len());
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(20)) => {},
                    _ = finished.wait_for(|done| *done) => return most,
                }
            }
        }
    });

    let admin = replicas[0].admin().await;
    eventually(Duration::from_secs(60), "both applied", || async {
        available_in(&replicas[1], &admin, PROD).await == [ns.clone()]
            && available_in(&replicas[2], &admin, STAGING).await == [ns.clone()]
    })
    .await;
    // The followers that joined took nothing over.
    assert_eq!(leaders_of(&leads, "prod"), [0]);
    assert_eq!(leaders_of(&leads, "staging"), [1]);
    let staging_id = Uuid::parse_str(STAGING).expect("uuid");
    let staging_taken = || async {
        sqlx::query_as::<_, (String, chrono::DateTime<chrono::Utc>)>(
            "select holder, acquired_at from kube_lease where cluster_id = $1",
        )
        .bind(staging_id)
        .fetch_one(&db)
        .await
        .expect("staging's lease row")
    };
    let staging_lease = staging_taken().await;

    // Replica 0 stops cleanly: another takes prod at once; staging stays.
    let stopped_at = Instant::now();
    for w in workers[0].drain(..) {
        w.stop().await;
    }
    eventually(
        Duration::from_secs(5),
        "prod led by another replica",
        || async { leaders_of(&leads, "prod").len() == 1 },
    )
    .await;
    eprintln!(
        "prod handed over {:?} after its leader began to stop (lease {:?})",
        stopped_at.elapsed(),
        TIMING.duration
    );
    assert_eq!(
        leaders_of(&leads, "staging"),
        [1],
        "staging's leader keeps it"
    );
    assert_eq!(
        staging_taken().await,
        staging_lease,
        "staging's lease was never taken anew"
    );

    // The leaders do the work: claims in both clusters get their labels and
    // one claim Event each.
    let survivor = &replicas[2];
    let workspace = survivor.create_workspace(&admin, "w").await;
    for (cluster, id) in [(&prod, PROD), (&staging, STAGING)] {
        let claimed = claim_in(survivor, &admin, workspace, id, &ns).await;
        let deployment = claimed["id"].as_str().expect("an id").to_owned();
        eventually(Duration::from_secs(30), "claim labels", || async {
            label_of(cluster, &ns, LABEL_DEPLOYMENT).await.as_deref() == Some(deployment.as_str())
        })
        .await;
        let release = claimed["releaseName"]
            .as_str()
            .expect("a release")
            .to_owned();
        eventually(Duration::from_secs(30), "the claim Event", || async {
            cluster
                .events(&ns)
                .await
                .iter()
                .any(|e| e.to_string().contains(&release))
        })
        .await;
        let posted = cluster
            .events(&ns)
            .await
            .iter()
            .filter(|e| e.to_string().contains(&release))
            .count();
        assert_eq!(posted, 1, "one claim Event in {id}, not one per replica");
    }

    let _ = done.send(true);
    let most = sampler.await.expect("the sampler");
    assert_eq!(most, 1, "two replicas led one cluster at once");
    for w in workers.into_iter().flatten() {
        w.stop().await;
    }
    prod.assert_never_deleted();
    staging.assert_never_deleted();
}

/// A kubeconfig rewritten in place (a Secret's rotated credentials, at the
/// same path) is a change the config watch applies: the cluster's worker
/// starts again with a client made from the new file. Here the file first
/// points at a port nothing listens on, then at the real API server.
#[sqlx::test]
async fn a_kubeconfig_rewritten_in_place_gets_a_new_client(db: PgPool) {
    let (prod, _staging) = Cluster::connect_both().await;
    let ns = prod.ns("team-k");
    let good =
        std::fs::read_to_string(prod.kubeconfig_as(Account::Create).await).expect("the kubeconfig");
    let dir = std::env::temp_dir().join(format!("nspool-rotate-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let kubeconfig = dir.join("kubeconfig");
    let server = good
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("a server")
        .to_owned();
    std::fs::write(&kubeconfig, good.replace(&server, "https://127.0.0.1:1"))
        .expect("the first kubeconfig");
    let config = dir.join("config.yaml");
    let yaml = format!(
        "nspool:\n  clusters:\n    - {{id: {PROD}, name: prod, kubeconfig: {}, namespacePools: {{enabled: true, namespaces: {{create: true, names: [{ns}]}}}}}}\n",
        kubeconfig.display()
    );
    std::fs::write(&config, &yaml).expect("the config");
    let app = TestApp::spawn_in_cluster(&yaml, db).await;
    let admin = app.admin().await;
    let (stop, supervisor) = supervise_from_the_first(&app).await;
    let stopped = stop.subscribe();
    let watcher = tokio::spawn(nspool::jobs::config_watch::watch_settling(
        app.service.clone(),
        config.clone(),
        Default::default(),
        stopped,
        Duration::from_millis(500),
    ));
    let reachable = || async {
        app.ok(Some(&admin), "{ clusters { reachable } }", Value::Null)
            .await["clusters"][0]["reachable"]
            .clone()
    };
    eventually(Duration::from_secs(30), "prod unreachable", || async {
        reachable().await == json!(false)
    })
    .await;
    assert!(available_in(&app, &admin, PROD).await.is_empty());

    // The same path, rotated to what reaches the API server.
    std::fs::write(&kubeconfig, &good).expect("the rotated kubeconfig");
    eventually(
        Duration::from_secs(60),
        "applied with the new client",
        || async { available_in(&app, &admin, PROD).await == [ns.clone()] },
    )
    .await;
    assert_eq!(reachable().await, json!(true));
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), supervisor).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), watcher).await;
    let _ = std::fs::remove_dir_all(dir);
    prod.assert_never_deleted();
}
