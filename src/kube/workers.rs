//! One Kubernetes worker per cluster, kept in line with the config in force:
//! a reload that adds a cluster gets it a client and a worker within
//! [`FOLLOW_EVERY`]; a worker whose cluster left the config (or whose
//! kubeconfig or context changed) ends by itself, and a changed one is
//! started again with its new client. A cluster whose client cannot be made
//! is tried again after [`RETRY_CONNECT`], without holding up the others.

use super::client::KubeClient;
use super::reconcile::KubeWorker;
use crate::config::{ClusterSettings, KubernetesMode};
use crate::pool::PoolService;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;
use uuid::Uuid;

/// How often the config in force is compared with the running workers.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(2);
/// How long after a failed connection a cluster is tried again.
pub const RETRY_CONNECT: Duration = Duration::from_secs(30);

/// Runs the workers of `started` (clients made at start-up), then follows
/// the config until `stop`; returns once every worker has ended.
pub async fn supervise(
    service: PoolService,
    mode: KubernetesMode,
    started: Vec<(ClusterSettings, KubeClient)>,
    mut stop: watch::Receiver<bool>,
) {
    let mut running: HashMap<Uuid, JoinHandle<()>> = HashMap::new();
    let mut failed: HashMap<Uuid, Instant> = HashMap::new();
    for (cluster, kube) in started {
        running.insert(cluster.id, spawn(&service, &cluster, kube, &stop));
    }
    // Without any cluster at start (auto mode found none), nothing follows.
    let follow = !running.is_empty() && mode != KubernetesMode::Off;
    while follow && !*stop.borrow() {
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_EVERY) => {},
            _ = stop.wait_for(|stop| *stop) => break,
        }
        let settings = service.settings();
        running.retain(|_, worker| !worker.is_finished());
        for cluster in &settings.clusters {
            // A worker whose kubeconfig or context changed sees it and ends;
            // it is started anew on a later round.
            if running.contains_key(&cluster.id) {
                continue;
            }
            if failed
                .get(&cluster.id)
                .is_some_and(|at| at.elapsed() < RETRY_CONNECT)
            {
                continue;
            }
            match KubeClient::connect_cluster(KubernetesMode::Cluster, cluster).await {
                Ok(Some(kube)) => {
                    failed.remove(&cluster.id);
                    tracing::info!(cluster = %cluster.name, "a Kubernetes worker for the cluster starts");
                    running.insert(cluster.id, spawn(&service, cluster, kube, &stop));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(cluster = %cluster.name, %error, "cannot reach the cluster's API server with its kubeconfig; trying again");
                    failed.insert(cluster.id, Instant::now());
                }
            }
        }
    }
    for (_, worker) in running {
        let _ = worker.await;
    }
}

fn spawn(
    service: &PoolService,
    cluster: &ClusterSettings,
    kube: KubeClient,
    stop: &watch::Receiver<bool>,
) -> JoinHandle<()> {
    // Every line its work logs says which cluster (one name may be a
    // namespace of several).
    let span = tracing::info_span!("cluster", cluster = %cluster.name);
    tokio::spawn(
        KubeWorker::for_cluster(service, cluster, kube)
            .run(stop.clone())
            .instrument(span),
    )
}
