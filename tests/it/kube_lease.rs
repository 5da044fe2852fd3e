//! The Kubernetes worker's lease (`kube::lease`): one replica works at a
//! time; a replica whose database connection hangs (a TCP proxy that stops
//! forwarding, as a partition or a half-open connection does) stops trusting
//! its hold within the renew deadline and another takes over once the lease
//! has expired, never both at once; a clean stop gives the lease up at once.
//! Short timings here; the defaults are 15 s, 10 s and 2 s.

use crate::cluster::{Account, Cluster};
use crate::documents::CREATE_DEPLOYMENT;
use crate::support::TestApp;
use nspool::kube::lease::{Leadership, LeaseTiming};
use nspool::kube::objects::LABEL_RELEASE;
use nspool::kube::reconcile::KubeWorker;
use nspool::store::Store;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMING: LeaseTiming = LeaseTiming {
    duration: Duration::from_secs(3),
    renew_deadline: Duration::from_secs(2),
    retry: Duration::from_millis(500),
};

/// A TCP proxy to `upstream` that can stop forwarding (both ways), leaving
/// every connection open: what a partition or a half-open connection looks
/// like to the client.
struct FreezableProxy {
    port: u16,
    frozen: Arc<AtomicBool>,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let Ok(read) = from.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        while frozen.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

async fn proxy(upstream: (String, u16)) -> FreezableProxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let frozen = Arc::new(AtomicBool::new(false));
    let flag = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) =
                tokio::net::TcpStream::connect((upstream.0.as_str(), upstream.1)).await
            else {
                continue;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(pump(client_read, server_write, flag.clone()));
            tokio::spawn(pump(server_read, client_write, flag.clone()));
        }
    });
    FreezableProxy { port, frozen }
}

/// Waits until `done`, at most `limit`; fails the test if both hold at once.
async fn until(
    limit: Duration,
    a: &Leadership,
    b: &Leadership,
    done: impl Fn() -> bool,
) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            !(a.held() && b.held()),
            "two replicas held the lease at once"
        );
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[sqlx::test]
async fn a_hung_leader_stops_and_another_takes_over_within_the_lease(db: PgPool) {
    let cluster = Cluster::connect().await;
    let ns = cluster.ns("team-a");
    let config = format!(
        "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{create: true, names: [{ns}]}}}}}}}}\n"
    );
    // Replica A reaches the database through the proxy; replica B directly.
    let options = (*db.connect_options()).clone();
    let upstream = (options.get_host().to_owned(), options.get_port());
    let proxy = proxy(upstream).await;
    let through_proxy = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options.clone().host("127.0.0.1").port(proxy.port))
        .await
        .unwrap();
    let a = TestApp::spawn_on(
        &config,
        Store::new(through_proxy),
        db.clone(),
        Default::default(),
        Default::default(),
    )
    .await;
    let b = TestApp::spawn(&config, crate::support::another_pool(&db).await).await;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker_a = KubeWorker::new(&a.service, cluster.nspool(Account::Create).await)
        .with_lease_timing(TIMING);
    let lead_a = worker_a.leadership();
    tokio::spawn(worker_a.run(stopped.clone()));
    let none = Leadership::default();
    until(Duration::from_secs(10), &lead_a, &none, || lead_a.held()).await;
    let (stop_b, stopped_b) = tokio::sync::watch::channel(false);
    let worker_b = KubeWorker::new(&b.service, cluster.nspool(Account::Create).await)
        .with_lease_timing(TIMING);
    let lead_b = worker_b.leadership();
    let run_b = tokio::spawn(worker_b.run(stopped_b));
    // B follows while A renews.
    tokio::time::sleep(TIMING.duration * 2).await;
    assert!(lead_a.held() && !lead_b.held());

    // A's database connection hangs: A stops trusting its hold, then B
    // takes the lease over once it expired; never both at once.
    proxy.frozen.store(true, Ordering::Relaxed);
    let stopped_after = until(Duration::from_secs(20), &lead_a, &lead_b, || !lead_a.held()).await;
    let taken_after = until(Duration::from_secs(20), &lead_a, &lead_b, || lead_b.held()).await;
    eprintln!(
        "A stopped {stopped_after:?} after its connection hung; B led {taken_after:?} later (lease {:?}, renew deadline {:?}, retry {:?})",
        TIMING.duration, TIMING.renew_deadline, TIMING.retry
    );
    let metrics = b.metrics().await;
    assert!(
        metrics.contains("nspool_kube_leader{cluster=\"default\"} 1"),
        "{metrics}"
    );

    // B does the work now: a claim's labels reach the cluster.
    let admin = b.admin().await;
    let ws = b.create_workspace(&admin, "lease").await;
    let held = b
        .ok(
            Some(&admin),
            CREATE_DEPLOYMENT,
            json!({"label": "x", "workspaceId": ws, "executor": "LocalExecutor", "namespace": ns}),
        )
        .await;
    let release = held["createDeployment"]["releaseName"].clone();
    let started = Instant::now();
    loop {
        let labels = cluster
            .object("Namespace", "", &ns)
            .await
            .map(|n| n["metadata"]["labels"].clone());
        if labels.is_some_and(|l| l[LABEL_RELEASE] == release) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "B never labelled it"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A clean stop gives the lease up at once.
    let _ = stop_b.send(true);
    run_b.await.unwrap();
    let default_cluster = b.service.settings().default_cluster().id;
    assert_eq!(
        b.service.store().kube_lease(default_cluster).await.unwrap(),
        None
    );
    let _ = stop.send(true);
    // A's connections flow again and close, so the test database can go.
    proxy.frozen.store(false, Ordering::Relaxed);
    a.stop_server().await;
    a.service.store().pool().close().await;
    a.service.store().direct().close().await;
    cluster.assert_never_deleted();
}
