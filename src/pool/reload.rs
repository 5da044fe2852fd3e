//! Applying a config read again without a restart (SIGHUP, or the file
//! changed: `jobs::config_watch`). A valid config is swapped in whole and the
//! pool table synced to it; an invalid one changes nothing and is reported
//! (the log, `/metrics`, the dashboard). What only a restart can change
//! (the listen address, the database, connection bounds) keeps its running
//! value, and the log says so.

use super::PoolService;
use crate::config::{ConfigErrors, Settings};
use crate::domain::Caller;
use crate::store::PoolSyncReport;
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

/// The last reload's outcome, for the dashboard.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    pub last_success: Option<DateTime<Utc>>,
    /// The last refused reload while no good one came after it: when, and
    /// each error with its key.
    pub failing: Option<(DateTime<Utc>, Vec<String>)>,
    /// Live replicas asking for different pool configs, each said as
    /// "replica asks for pool config …" (empty while they agree).
    pub disagreeing: Vec<String>,
}

#[derive(Default)]
pub struct ReloadState(Mutex<ReloadStatus>);

/// What an applied reload changed.
#[derive(Debug, Clone, Default)]
pub struct ReloadReport {
    pub sync: PoolSyncReport,
    /// The reclaim job's schedule or retention changed: restart its timer.
    pub cleanup_changed: bool,
    /// Keys whose new values wait for a restart.
    pub needs_restart: Vec<&'static str>,
}

/// How the clusters changed, matched by id: "added qa", "removed tmp",
/// "renamed stage (was staging)" (a rename changes no row but the name).
fn cluster_changes(old: &Settings, new: &Settings) -> Vec<String> {
    let mut changes = Vec::new();
    for cluster in &new.clusters {
        match old.cluster(cluster.id) {
            None => changes.push(format!("added {}", cluster.name)),
            Some(before) if before.name != cluster.name => {
                changes.push(format!("renamed {} (was {})", cluster.name, before.name))
            }
            Some(_) => {}
        }
    }
    for cluster in &old.clusters {
        if new.cluster(cluster.id).is_none() {
            changes.push(format!("removed {}", cluster.name));
        }
    }
    changes
}

/// Settings a running replica cannot change: they keep their running values.
fn keep_running(old: &Settings, new: &mut Settings) -> Vec<&'static str> {
    let (was, now) = (&old.service, &mut new.service);
    let mut kept = Vec::new();
    macro_rules! keep {
        ($field:ident, $key:literal) => {
            if was.$field != now.$field {
                now.$field = was.$field.clone();
                kept.push($key);
            }
        };
    }
    keep!(listen, "nspool.listen");
    keep!(database_url, "nspool.databaseUrl");
    keep!(database_direct_url, "nspool.databaseDirectUrl");
    keep!(data_dir, "nspool.dataDir");
    keep!(database_max_connections, "nspool.databaseMaxConnections");
    keep!(kubernetes_mode, "nspool.kubernetes.mode");
    keep!(log_format, "nspool.logFormat");
    keep!(http, "nspool.http");
    kept
}

impl PoolService {
    /// The last reload's outcome.
    pub fn reload_status(&self) -> ReloadStatus {
        let mut status = self.reloads.0.lock().map(|s| s.clone()).unwrap_or_default();
        status.disagreeing = super::agreement::describe(&self.agreement.disagreeing());
        status
    }

    fn reload_failed(&self, errors: Vec<String>) {
        for error in &errors {
            tracing::error!(%error, "config reload refused; the last good config stays in force");
        }
        self.metrics.config_reload(false);
        if let Ok(mut status) = self.reloads.0.lock() {
            status.failing = Some((Utc::now(), errors));
        }
    }

    /// Applies a config read again, or reports why it was refused; either
    /// way the service goes on. `None`: refused (nothing changed).
    pub async fn reload(&self, read: Result<Settings, ConfigErrors>) -> Option<ReloadReport> {
        let mut new = match read {
            Ok(new) => new,
            Err(ConfigErrors { errors, warnings }) => {
                // Warnings are not why it is refused: logged as warnings.
                for warning in &warnings {
                    tracing::warn!("{warning}");
                }
                self.reload_failed(errors.iter().map(ToString::to_string).collect());
                return None;
            }
        };
        let old = self.settings();
        // The database's id of a cluster the config gives none stays its id.
        new = new.keeping_cluster_ids_of(&old);
        let needs_restart = keep_running(&old, &mut new);
        // The same config again (a SIGHUP, a file touched): nothing to do,
        // no sync, no event.
        if serde_json::to_value(&*old).ok() == serde_json::to_value(&new).ok() {
            self.metrics.config_reload(true);
            if let Ok(mut status) = self.reloads.0.lock() {
                status.last_success = Some(Utc::now());
                status.failing = None;
            }
            // The file asks for what runs: a reload held back is moot.
            self.agreement.clear_pending();
            tracing::info!("config reloaded: unchanged, nothing to do");
            return Some(ReloadReport {
                needs_restart,
                ..ReloadReport::default()
            });
        }
        // A changed config: else the database's (a config going back to one cluster keeps the
        // id it had under nspool.clusters): the guard below matches by id.
        if new.clusters.iter().any(|c| c.id.is_nil()) {
            match self.with_database_ids(&new).await {
                Ok(resolved) => new = resolved,
                Err(error) => {
                    self.reload_failed(vec![error.to_string()]);
                    return None;
                }
            }
        }
        if let Some(refusal) = self.shrink_refusal(&old, &new).await {
            self.reload_failed(vec![refusal]);
            return None;
        }
        for warning in &new.warnings {
            tracing::warn!("{warning}");
        }
        let cleanup_changed = old.cleanup != new.cleanup;
        let held = new.clone();
        self.swap_settings(Arc::new(new));
        self.recheck_released();
        let sync = match self.try_sync_pool().await {
            Ok(sync) => sync,
            Err(error) => {
                // Nothing half-applied: the old config is back in force.
                self.swap_settings(old);
                self.recheck_released();
                if let crate::store::Error::HeldBack { .. } = error {
                    // Tried again every heartbeat (`agreement`).
                    self.agreement.hold(held);
                    self.metrics.set_config_held_back(true);
                }
                self.reload_failed(vec![format!(
                    "the pool could not be synced to the new config ({error})"
                )]);
                return None;
            }
        };
        self.agreement.clear_pending();
        self.metrics.config_reload(true);
        if let Ok(mut status) = self.reloads.0.lock() {
            status.last_success = Some(Utc::now());
            status.failing = None;
        }
        // RBAC, labels and leftover checks follow on the next pass (their
        // fingerprint includes the settings).
        self.kube_wake.wake_workers();
        let clusters = cluster_changes(&old, &self.settings());
        let summary = format!(
            "config reloaded: {} added, {} back, {} retired{}{}{}",
            sync.added.len(),
            sync.restored.len(),
            sync.retired.len(),
            if clusters.is_empty() {
                String::new()
            } else {
                format!("; clusters: {}", clusters.join(", "))
            },
            if cleanup_changed {
                "; reclaim job changed"
            } else {
                ""
            },
            if needs_restart.is_empty() {
                String::new()
            } else {
                format!("; waiting for a restart: {}", needs_restart.join(", "))
            }
        );
        if let Err(error) = self
            .store
            .log_event("config_reload", &Caller::Operator.actor(), &summary)
            .await
        {
            tracing::warn!(%error, "could not log the config reload's event");
        }
        tracing::info!(
            added = ?sync.added,
            restored = ?sync.restored,
            retired = ?sync.retired,
            "{summary}"
        );
        for key in &needs_restart {
            tracing::warn!(key, "this key's new value takes effect at the next restart");
        }
        Some(ReloadReport {
            sync,
            cleanup_changed,
            needs_restart,
        })
    }
}
