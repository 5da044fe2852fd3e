//! The pool service: the only place where nspool's rules meet I/O. Resolvers
//! and commands call it; it calls the store.

pub mod agreement;
pub mod clusters;
mod cordons;
mod dashboard;
mod deployment_changes;
mod deployments;
mod error;
mod hygiene;
pub mod kube_wake;
mod listener;
mod progress;
mod reclaim;
mod reclaim_lease;
mod records;
mod refusals;
pub mod reload;
mod reload_guard;
pub mod request_budget;
mod sessions;
pub mod snapshot;
pub mod token_cache;
mod tokens;
mod view;
mod workspaces;

pub use cordons::CORDON_SWEEP;
pub use dashboard::{
    DASHBOARD_PAGE_SIZE, Dashboard, DashboardCluster, DashboardPage, HISTORY_HOURS, History,
    HistoryPoint,
};
pub use deployments::{
    CreateDeployment, DeploymentInput, MAX_PAGE_NUMBER, MAX_TAKE, MAX_TRIGGERER_REPLICAS,
    UpsertDeployment,
};
pub use error::{Error, Result};
pub use progress::{Progress, Silent};
pub use reclaim::{ReclaimReport, ReclaimedDeployment, never_stop, replica_name};
pub use records::{
    ClusterReport, Cordon, Deployment, Holdings, PoolEvent, ReclaimRun, Token, Workspace,
    WorkspaceToken,
};
pub use sessions::{MAX_SESSIONS_PER_TOKEN, NewSession, SESSION_HOURS};
pub use tokens::{Credentials, NewToken};
pub use view::{PoolNamespaceState, PoolNamespaceView, SHOWN_STATES};

use crate::config::Settings;
use crate::domain::Caller;
use crate::store::{PoolSyncReport, Store};
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

#[derive(Clone)]
pub struct PoolService {
    store: Store,
    /// Swapped whole by a reload (`swap_settings`).
    settings: Arc<arc_swap::ArcSwap<Settings>>,
    /// Wakes this process's Kubernetes worker after a claim or release.
    kube_wake: Arc<kube_wake::KubeWake>,
    metrics: Arc<crate::metrics::ServiceMetrics>,
    /// The dashboard's chart, folded forward an hour at a time.
    history: Arc<tokio::sync::Mutex<History>>,
    /// The offered namespaces in memory (loaded and kept by [`PoolService::listen`]).
    snapshot: Arc<snapshot::PoolSnapshot>,
    /// Verified tokens in memory (live only while listening).
    tokens: Arc<token_cache::TokenCache>,
    /// Released namespaces are checked for leftovers: the config says so and
    /// (for `serve` in `auto` mode) this replica found a cluster.
    checks_released: Arc<std::sync::atomic::AtomicBool>,
    /// `auto` mode found no cluster at start (`without_kubernetes`).
    no_cluster: Arc<std::sync::atomic::AtomicBool>,
    /// Config reloads: their outcomes and the last good one's time.
    reloads: Arc<reload::ReloadState>,
    /// This service among the replicas (host, process, and a random part:
    /// two services in one process are two replicas too).
    instance: Arc<str>,
    /// This replica's pool config against the other replicas' (`agreement`).
    agreement: Arc<agreement::Agreement>,
}

/// How long a write waits for its own pool change to reach this replica's
/// snapshot before the snapshot is dropped (and reads go to the database).
const OWN_WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl PoolService {
    pub fn new(store: Store, settings: Arc<Settings>) -> Self {
        Self {
            store,
            kube_wake: Arc::default(),
            metrics: Arc::default(),
            history: Arc::default(),
            snapshot: Arc::default(),
            tokens: Arc::default(),
            checks_released: Arc::new(std::sync::atomic::AtomicBool::new(
                settings.checks_released(),
            )),
            settings: Arc::new(arc_swap::ArcSwap::new(settings)),
            no_cluster: Arc::default(),
            instance: format!(
                "{}/{}",
                reclaim::replica_name(),
                &uuid::Uuid::new_v4().simple().to_string()[..6]
            )
            .into(),
            reloads: Arc::default(),
            agreement: Arc::default(),
        }
    }

    /// The pool copy in memory: its version tells cached answers apart.
    pub fn snapshot(&self) -> &snapshot::PoolSnapshot {
        &self.snapshot
    }

    /// After a write of this replica changed what the pool offers (it
    /// committed as `generation`), before the write answers: the client's next
    /// read here includes it.
    pub(crate) async fn read_own_write(&self, generation: Option<i64>) {
        if let Some(generation) = generation {
            let committed_at = std::time::Instant::now();
            self.snapshot
                .caught_up(generation, committed_at, OWN_WRITE_WAIT)
                .await;
        }
    }

    /// Claims, releases, reclaim runs and Kubernetes calls, for `/metrics`.
    pub fn metrics(&self) -> Arc<crate::metrics::ServiceMetrics> {
        self.metrics.clone()
    }

    pub fn kube_wake(&self) -> Arc<kube_wake::KubeWake> {
        self.kube_wake.clone()
    }

    /// Re-apply and re-check every pool namespace on the next pass (system admins).
    pub async fn resync_pool(&self, caller: &Caller) -> Result<u64> {
        caller.authorize(crate::domain::Action::System(
            crate::domain::roles::Level::Admin,
        ))?;
        let rows = self.store.request_resync().await?;
        self.kube_wake.wake_workers();
        Ok(rows)
    }

    /// The settings in force now: a reload swaps them whole, so one read
    /// sees one config (hold the `Arc` for the length of one operation).
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Puts `settings` in force for every operation that starts from now.
    pub(crate) fn swap_settings(&self, settings: Arc<Settings>) {
        self.settings.store(settings);
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Brings the pool table in line with the config (start-up, config change).
    pub async fn sync_pool(&self) -> Result<PoolSyncReport> {
        Ok(self.try_sync_pool().await?)
    }

    /// [`Self::sync_pool`] with the store's error (a sync held back is
    /// `store::Error::HeldBack`: see `agreement`).
    pub(crate) async fn try_sync_pool(&self) -> Result<PoolSyncReport, crate::store::Error> {
        let settings = self.settings();
        let listing = agreement::Listing::of(&settings);
        let wanted: Vec<crate::store::WantedCluster<'_>> = listing
            .clusters
            .iter()
            .map(|(id, name)| crate::store::WantedCluster { id: *id, name })
            .collect();
        let (ids, report) = self
            .store
            .sync_pool(
                &crate::store::PoolListing {
                    clusters: &wanted,
                    cluster_index: &listing.cluster_index,
                    names: &listing.names,
                    sources: &listing.sources,
                    managed: &listing.managed,
                    fingerprint: &listing.fingerprint,
                },
                settings
                    .workspace_quota
                    .map(|q| i32::try_from(q).unwrap_or(i32::MAX)),
                &Caller::Operator.actor(),
                &self.instance,
                self.kubernetes_on(),
            )
            .await?;
        // The database's id of a cluster the config gave none: in force now.
        if settings.clusters.iter().any(|c| !c.id_given) {
            let resolved = Arc::new(settings.with_cluster_ids(&ids));
            self.swap_settings(resolved);
        }
        self.agreement.synced();
        // Checks switched off: nothing will ever find the releasing ones clean.
        if let Some(note) = settings.unchecked_release_note() {
            let freed = self
                .store
                .free_releasing(&Caller::Operator.actor(), note)
                .await?;
            if !freed.is_empty() {
                tracing::info!(namespaces = ?freed, "{note}");
            }
        }
        Ok(report)
    }

    /// The database's ids of the clusters the config gave none, put in
    /// force without writing (commands that do not sync the pool). A
    /// database that has no row for such a cluster yet leaves it nil: that
    /// cluster has no namespaces to show.
    pub async fn resolve_cluster_ids(&self) -> Result<()> {
        let settings = self.settings();
        if settings.clusters.iter().all(|c| c.id_given) {
            return Ok(());
        }
        let resolved = self.with_database_ids(&settings).await?;
        self.swap_settings(Arc::new(resolved));
        Ok(())
    }

    /// `settings` with the database's id of each cluster the config gives
    /// none (nil where the database has no row for it yet), without writing.
    pub(crate) async fn with_database_ids(&self, settings: &Settings) -> Result<Settings> {
        let wanted: Vec<crate::store::WantedCluster<'_>> = settings
            .clusters
            .iter()
            .map(|c| crate::store::WantedCluster {
                id: if c.id_given { c.id } else { uuid::Uuid::nil() },
                name: &c.name,
            })
            .collect();
        let ids: Vec<uuid::Uuid> = self
            .store
            .cluster_ids(&wanted)
            .await?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        Ok(settings.with_cluster_ids(&ids))
    }

    /// When a soft-deleted Deployment's namespace comes back by itself:
    /// `None` when the reclaim job is off or only dry-runs.
    pub fn reclaimable_at(&self, deleted_at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let settings = self.settings();
        let cleanup = &settings.cleanup;
        if !cleanup.reclaims() {
            return None;
        }
        let days = Duration::try_days(i64::from(cleanup.older_than_days))?;
        deleted_at.and_then(|at| at.checked_add_signed(days))
    }

    /// Houston's deployment URLs.
    pub fn urls(&self, deployment: &Deployment) -> [(&'static str, String); 2] {
        let base = format!(
            "https://deployments.{}/{}",
            self.settings().service.base_domain,
            deployment.release_name
        );
        [
            ("airflow", format!("{base}/airflow")),
            ("flower", format!("{base}/flower")),
        ]
    }

    /// The free namespaces of the cluster `cluster` names (the only one
    /// without), in name order (none while its pool is cordoned); any valid
    /// token may ask. From memory while the snapshot is whole, else from
    /// the database.
    pub async fn available_namespaces(
        &self,
        caller: &Caller,
        cluster: Option<uuid::Uuid>,
    ) -> Result<Arc<[String]>> {
        caller.authorize(crate::domain::Action::UseToken)?;
        let settings = self.settings();
        let cluster = clusters::cluster_required(&settings, cluster)?.id;
        match self.snapshot.offered(cluster) {
            Some((_, names)) => Ok(names),
            None => {
                let offer = self.store.pool_offer(Some(cluster)).await?;
                Ok(match offer.clusters.into_iter().next() {
                    Some(offer) if offer.cordon.is_none() => offer.names.into(),
                    _ => Arc::from(Vec::new()),
                })
            }
        }
    }
}
