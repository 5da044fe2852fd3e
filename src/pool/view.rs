//! nspool's own pool view: every namespace with its state.

use super::{PoolService, Result};
use crate::domain::roles::Level;
use crate::domain::{Action, Caller};
use crate::store::{DeploymentRow, EventRow, PoolNamespaceRow};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolNamespaceState {
    Free,
    Held,
    SoftDeleted,
    Retired,
    /// Released, not offered until nothing its Deployment left is found in it.
    Releasing,
    /// Free, but cordoned: not offered until uncordoned.
    Cordoned,
}

impl PoolNamespaceState {
    /// Retired wins: a retired namespace is never offered, even once its holder goes.
    pub fn of(row: &PoolNamespaceRow, holder: Option<&DeploymentRow>) -> Self {
        match (row.retired_at, holder) {
            (Some(_), _) => Self::Retired,
            (None, None) if row.releasing_since.is_some() => Self::Releasing,
            (None, None) if row.cordoned_at.is_some() => Self::Cordoned,
            (None, None) => Self::Free,
            (None, Some(d)) if d.deleted_at.is_some() => Self::SoftDeleted,
            (None, Some(_)) => Self::Held,
        }
    }
}

pub struct PoolNamespaceView {
    pub row: PoolNamespaceRow,
    pub holder: Option<DeploymentRow>,
    pub state: PoolNamespaceState,
    pub reclaimable_at: Option<DateTime<Utc>>,
    /// How the namespace becomes free again, when it is not.
    pub note: Option<String>,
}

impl PoolNamespaceView {
    /// The state a person reads (the dashboard, `nspool pool list`):
    /// `broken` is a free namespace that is not offered for its RBAC.
    pub fn shown_state(&self) -> &'static str {
        match self.state {
            PoolNamespaceState::Free
                if matches!(self.row.rbac_state.as_str(), "broken" | "missing") =>
            {
                "broken"
            }
            PoolNamespaceState::Free => "free",
            PoolNamespaceState::Held => "held",
            PoolNamespaceState::SoftDeleted => "soft-deleted",
            PoolNamespaceState::Retired => "retired",
            PoolNamespaceState::Releasing => "releasing",
            PoolNamespaceState::Cordoned => "cordoned",
        }
    }
}

/// Every state [`PoolNamespaceView::shown_state`] gives.
pub const SHOWN_STATES: [&str; 7] = [
    "free",
    "held",
    "soft-deleted",
    "retired",
    "releasing",
    "cordoned",
    "broken",
];

/// How a namespace in `state` comes back; `never_note` is the config's word
/// when the reclaim job will not free soft-deleted ones, `unchecked_note`
/// when released namespaces are offered again unchecked.
pub fn comes_back(
    state: PoolNamespaceState,
    reclaimable_at: Option<DateTime<Utc>>,
    never_note: Option<&str>,
    unchecked_note: Option<&str>,
) -> Option<String> {
    match state {
        PoolNamespaceState::Free => unchecked_note.map(str::to_owned),
        PoolNamespaceState::Releasing => Some(
            "offered again once nspool finds nothing its Deployment left (see leftovers); markNamespaceClean frees it at once".into(),
        ),
        PoolNamespaceState::Held => {
            Some("free again when its Deployment is hard-deleted (or soft-deleted and reclaimed)".into())
        }
        PoolNamespaceState::SoftDeleted => Some(match (reclaimable_at, never_note) {
            (Some(at), _) => format!(
                "free again when the reclaim job runs after {}, or at once if its Deployment is hard-deleted",
                at.to_rfc3339()
            ),
            (None, Some(note)) => note.to_owned(),
            (None, None) => "free again when its Deployment is hard-deleted".into(),
        }),
        PoolNamespaceState::Cordoned => Some(
            "cordoned: offered again once uncordoned (uncordonNamespace) or when its cordon's end passes".into(),
        ),
        PoolNamespaceState::Retired => Some(
            "removed from the pool config: never offered again; list it in the config to bring it back".into(),
        ),
    }
}

impl PoolService {
    /// Two queries whatever the pool's size: the pool, then all its holders.
    pub async fn pool_view(&self, caller: &Caller) -> Result<Vec<PoolNamespaceView>> {
        caller.authorize(Action::System(Level::Viewer))?;
        let rows = self.store.pool_namespaces().await?;
        self.views_of(rows).await
    }

    /// One pool namespace with its state and holder (system viewers);
    /// `None`: not in the pool.
    pub async fn pool_namespace(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Option<PoolNamespaceView>> {
        caller.authorize(Action::System(Level::Viewer))?;
        crate::domain::text::check("name", name, crate::domain::text::max::FILTER)?;
        let Some(row) = self.store.pool_namespace(name).await? else {
            return Ok(None);
        };
        Ok(self.views_of(vec![row]).await?.pop())
    }

    async fn views_of(&self, rows: Vec<PoolNamespaceRow>) -> Result<Vec<PoolNamespaceView>> {
        let ids: Vec<_> = rows.iter().filter_map(|r| r.holder_deployment_id).collect();
        let mut holders: HashMap<_, _> = self
            .store
            .deployments_by_id(&ids)
            .await?
            .into_iter()
            .map(|d| (d.id, d))
            .collect();
        let settings = self.settings();
        let never = settings.cleanup.never_reclaims_note();
        let unchecked = (!self.checks_released())
            .then(|| settings.unchecked_release_note())
            .flatten();
        Ok(rows
            .into_iter()
            .map(|row| {
                let holder = row.holder_deployment_id.and_then(|id| holders.remove(&id));
                let state = PoolNamespaceState::of(&row, holder.as_ref());
                let reclaimable_at =
                    self.reclaimable_at(holder.as_ref().and_then(|d| d.deleted_at));
                let note = comes_back(state, reclaimable_at, never.as_deref(), unchecked);
                PoolNamespaceView {
                    row,
                    holder,
                    state,
                    reclaimable_at,
                    note,
                }
            })
            .collect())
    }

    pub async fn rbac_cluster_report(
        &self,
        caller: &Caller,
    ) -> Result<Option<crate::store::ClusterReportRow>> {
        caller.authorize(Action::System(Level::Viewer))?;
        Ok(self.store.cluster_report().await?)
    }

    /// The newest events of many namespaces at once (the GraphQL loader's batch).
    pub async fn namespace_events(&self, names: &[String], last: i64) -> Result<Vec<EventRow>> {
        Ok(self.store.namespace_events(names, last).await?)
    }

    pub async fn events(
        &self,
        caller: &Caller,
        namespace: Option<&str>,
        last: i64,
    ) -> Result<Vec<EventRow>> {
        caller.authorize(Action::System(Level::Viewer))?;
        crate::domain::text::check_opt("namespace", namespace, crate::domain::text::max::FILTER)?;
        Ok(self.store.events(namespace, last).await?)
    }
}
