//! The pool service: the only place where nspool's rules meet I/O. Resolvers
//! and commands call it; it calls the store.

mod deployments;
mod error;
mod reclaim;
mod refusals;
mod tokens;
mod view;
mod workspaces;

pub use deployments::{CreateDeployment, DeploymentInput, UpsertDeployment};
pub use error::{Error, Result};
pub use reclaim::{ReclaimReport, ReclaimedDeployment, never_stop, replica_name};
pub use tokens::{Credentials, NewToken};
pub use view::{PoolNamespaceState, PoolNamespaceView};

use crate::config::Settings;
use crate::domain::Caller;
use crate::store::{DeploymentRow, PoolSyncReport, Store};
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

#[derive(Clone)]
pub struct PoolService {
    store: Store,
    settings: Arc<Settings>,
}

impl PoolService {
    pub fn new(store: Store, settings: Arc<Settings>) -> Self {
        Self { store, settings }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Brings the pool table in line with the config (start-up, config change).
    pub async fn sync_pool(&self) -> Result<PoolSyncReport> {
        let (names, sources): (Vec<String>, Vec<&str>) = if self.settings.pool.enabled() {
            self.settings
                .pool
                .namespaces
                .iter()
                .map(|e| (e.name.as_str().to_owned(), e.source.as_str()))
                .unzip()
        } else {
            // Pool mode off: every name ever in the pool is retired.
            (Vec::new(), Vec::new())
        };
        Ok(self
            .store
            .sync_pool(&names, &sources, &Caller::Operator.actor())
            .await?)
    }

    /// When a soft-deleted Deployment's namespace comes back by itself:
    /// `None` when the reclaim job is off or only dry-runs.
    pub fn reclaimable_at(&self, deleted_at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let cleanup = &self.settings.cleanup;
        if !cleanup.reclaims() {
            return None;
        }
        deleted_at.map(|at| at + Duration::days(i64::from(cleanup.older_than_days)))
    }

    /// Houston's deployment URLs.
    pub fn urls(&self, row: &DeploymentRow) -> [(&'static str, String); 2] {
        let base = format!(
            "https://deployments.{}/{}",
            self.settings.service.base_domain, row.release_name
        );
        [
            ("airflow", format!("{base}/airflow")),
            ("flower", format!("{base}/flower")),
        ]
    }

    /// Free namespaces in name order; any valid token may ask.
    pub async fn available_namespaces(&self, caller: &Caller) -> Result<Vec<String>> {
        caller.authorize(crate::domain::Action::UseToken)?;
        Ok(self.store.available_namespaces().await?)
    }
}
