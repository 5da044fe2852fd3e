//! Replicas with different configs. Each serving replica says every
//! [`HEARTBEAT`] which pool listing its config asks for (a fingerprint of the
//! names, their sources, whether nspool creates them, and the workspace
//! quota). A pool sync (start-up or reload) whose listing differs from the
//! one in force is held back while another live replica still asks for the
//! one in force: without that, two replicas with different files flip the
//! pool (retire, restore, Events) on every reload or restart. A held reload
//! is refused and reported like a bad config (log, metrics, dashboard) and
//! tried again every heartbeat; it applies once no live replica asks for
//! the old listing (they reloaded the same file, or stopped). While live
//! replicas ask for different listings, `nspool_config_replicas_disagree`
//! is 1 on every replica, the dashboard says which asks for what, and the
//! alert `NspoolReplicasDisagreeOnConfig` fires.

use super::PoolService;
use crate::config::{PoolSource, Settings};
use crate::store::{self, ReplicaConfig};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often a serving replica says what it asks for (a replica counts as
/// live for `store::LIVE_SECONDS`, three heartbeats).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// The pool as one config lists it (every cluster's, side by side), and
/// its fingerprint.
pub struct Listing {
    /// Each cluster's id (nil: the database's, for the one cluster of a
    /// config without `nspool.clusterId`) and name, in config order.
    pub clusters: Vec<(uuid::Uuid, String)>,
    /// Each name's cluster, as an index into `clusters`.
    pub cluster_index: Vec<i32>,
    pub names: Vec<String>,
    pub sources: Vec<&'static str>,
    pub managed: Vec<bool>,
    pub fingerprint: String,
}

impl Listing {
    pub fn of(settings: &Settings) -> Self {
        let mut listing = Listing {
            clusters: Vec::new(),
            cluster_index: Vec::new(),
            names: Vec::new(),
            sources: Vec::new(),
            managed: Vec::new(),
            fingerprint: String::new(),
        };
        let mut hash = Sha256::new();
        for (i, cluster) in settings.clusters.iter().enumerate() {
            let pool = &cluster.pool;
            listing.clusters.push((
                if cluster.id_given {
                    cluster.id
                } else {
                    uuid::Uuid::nil()
                },
                cluster.name.clone(),
            ));
            hash.update(format!(
                "cluster\t{}\t{}\n",
                listing.clusters[i].0, cluster.name
            ));
            for entry in pool.active() {
                // namespaces.create applies only to namespacePools.namespaces.names.
                let managed = pool.create_namespaces && entry.source == PoolSource::Standard;
                hash.update(format!(
                    "{}\t{}\t{managed}\n",
                    entry.name.as_str(),
                    entry.source.as_str()
                ));
                listing
                    .cluster_index
                    .push(i32::try_from(i).unwrap_or(i32::MAX));
                listing.names.push(entry.name.as_str().to_owned());
                listing.sources.push(entry.source.as_str());
                listing.managed.push(managed);
            }
        }
        hash.update(format!("quota\t{:?}\n", settings.workspace_quota));
        listing.fingerprint = hex::encode(hash.finalize())[..16].to_owned();
        listing
    }
}

/// This replica's side of the agreement.
#[derive(Default)]
pub struct Agreement {
    /// A reload held back: what it would apply.
    pending: Mutex<Option<Settings>>,
    /// The start-up sync was held back: the pool does not follow this
    /// replica's config (yet).
    unsynced: AtomicBool,
    /// The live replicas as last seen, when they ask for different listings.
    disagreeing: Mutex<Vec<ReplicaConfig>>,
}

impl Agreement {
    pub(super) fn synced(&self) {
        self.unsynced.store(false, Ordering::Relaxed);
    }

    fn pending(&self) -> Option<Settings> {
        self.pending.lock().ok().and_then(|p| p.clone())
    }

    pub(super) fn hold(&self, settings: Settings) {
        if let Ok(mut pending) = self.pending.lock() {
            *pending = Some(settings);
        }
    }

    pub(super) fn clear_pending(&self) {
        if let Ok(mut pending) = self.pending.lock() {
            *pending = None;
        }
    }

    fn held(&self) -> bool {
        self.unsynced.load(Ordering::Relaxed)
            || self.pending.lock().map(|p| p.is_some()).unwrap_or(false)
    }

    /// The live replicas, when they ask for different listings (empty
    /// when they agree).
    pub fn disagreeing(&self) -> Vec<ReplicaConfig> {
        self.disagreeing
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }
}

impl PoolService {
    /// The start-up sync was held back (`store::Error::HeldBack`): this
    /// replica serves, and its heartbeat tries the sync again.
    pub fn hold_start_sync(&self) {
        self.agreement.unsynced.store(true, Ordering::Relaxed);
        self.metrics.set_config_held_back(true);
    }

    /// What this replica asks for: the held reload's listing, or its own.
    fn wanted(&self) -> String {
        match self.agreement.pending() {
            Some(pending) => Listing::of(&pending).fingerprint,
            None => Listing::of(&self.settings()).fingerprint,
        }
    }

    /// The pool follows this replica's config, or another replica holds it
    /// back.
    pub fn config_agreement(&self) -> &Agreement {
        &self.agreement
    }

    /// One heartbeat: says what this replica asks for, sees what the others
    /// ask for, and applies a held reload or sync once nothing holds it back.
    pub async fn agreement_heartbeat(&self) -> Result<(), store::Error> {
        let wanted = self.wanted();
        let held = self.agreement.held();
        self.store
            .replica_heartbeat(&self.instance, &wanted, !held)
            .await?;
        let live = self.store.live_replica_configs().await?;
        let mut asks: Vec<&str> = live.iter().map(|r| r.wanted.as_str()).collect();
        asks.sort_unstable();
        asks.dedup();
        let disagree = asks.len() > 1;
        self.metrics.set_config_disagreement(disagree);
        if let Ok(mut seen) = self.agreement.disagreeing.lock() {
            *seen = if disagree { live.clone() } else { Vec::new() };
        }
        self.metrics.set_config_held_back(held);
        if !held {
            return Ok(());
        }
        let in_force = self.store.pool_config_in_force().await?;
        let holder = live.iter().find(|r| {
            r.replica != *self.instance
                && Some(&r.wanted) == in_force.as_ref()
                && in_force.as_deref() != Some(wanted.as_str())
        });
        if let Some(holder) = holder {
            tracing::debug!(replica = %holder.replica, "this replica's pool config is still held back");
            return Ok(());
        }
        if let Some(pending) = self.agreement.pending() {
            tracing::info!(
                "no live replica asks for the pool config in force any more: applying the held reload"
            );
            // A reload that is refused again (held again, or something
            // else) stays reported; one that applies clears the hold.
            let _ = self.reload(Ok(pending)).await;
        } else {
            match self.try_sync_pool().await {
                Ok(report) => tracing::info!(
                    added = report.added.len(),
                    retired = report.retired.len(),
                    "the pool follows this replica's config now (no live replica asked for the old one)"
                ),
                Err(store::Error::HeldBack { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        self.metrics.set_config_held_back(self.agreement.held());
        Ok(())
    }

    /// A clean stop: this replica asks for nothing any more, so a replica
    /// that replaces it with another config is not held back.
    pub async fn leave_agreement(&self) {
        if let Err(error) = self.store.forget_replica(&self.instance).await {
            tracing::debug!(%error, "could not remove this replica's config heartbeat; it goes stale by itself");
        }
    }
}

/// Heartbeats until `stop`, then leaves (`serve`).
pub async fn heartbeats(service: PoolService, mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Err(error) = service.agreement_heartbeat().await {
            tracing::warn!(%error, "could not compare this replica's config with the others'");
        }
        tokio::select! {
            () = tokio::time::sleep(HEARTBEAT) => {},
            _ = stop.changed() => {},
        }
    }
    service.leave_agreement().await;
}

/// Replica configs as the dashboard shows them.
pub fn describe(replicas: &[ReplicaConfig]) -> Vec<String> {
    replicas
        .iter()
        .map(|r| {
            format!(
                "{} asks for pool config {}{}",
                r.replica,
                r.wanted,
                if r.in_force { "" } else { " (held back)" }
            )
        })
        .collect()
}

/// [`heartbeats`] as a task of its own (`serve`).
pub fn spawn_heartbeats(
    service: &PoolService,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(heartbeats(service.clone(), stop))
}
