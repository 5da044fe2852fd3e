//! nspool's own pool view: every namespace with its state.

use super::records::{ClusterReport, Cordon, Deployment, PoolEvent, all};
use super::{PoolService, Result};
use crate::domain::roles::Level;
use crate::domain::{Action, Caller};
use crate::store::{DeploymentRow, PoolNamespaceRow};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Rows turned into views between two shrinks of the rows' buffer.
const VIEW_CHUNK: usize = 1024;

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

/// One namespace of the pool as nspool sees it: its state, holder, cordon,
/// and what the Kubernetes worker last found.
#[derive(Debug, Clone)]
pub struct PoolNamespaceView {
    /// The cluster the namespace is in.
    pub cluster_id: uuid::Uuid,
    pub name: String,
    /// `standard` (namespacePools.namespaces.names) or `advanced` (preCreatedNamespaces).
    pub source: String,
    pub added_at: DateTime<Utc>,
    /// When its holder claimed it (`None` unless held).
    pub claimed_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    /// When it last started or stopped being offered.
    pub offered_changed_at: DateTime<Utc>,
    /// The Deployment holding it, live or soft-deleted.
    /// Boxed: most namespaces of a large pool have none, and a view is
    /// then ~500 bytes instead of ~1 KB (100,000 of them in a whole read).
    pub holder: Option<Box<Deployment>>,
    pub state: PoolNamespaceState,
    pub reclaimable_at: Option<DateTime<Utc>>,
    /// How the namespace becomes free again, when it is not.
    pub note: Option<String>,
    pub cordon: Option<Cordon>,
    /// Verification: `unknown`, `ok`, `broken` or `missing`.
    pub rbac_state: String,
    /// The Commander permissions a verification found missing.
    pub rbac_missing: Vec<String>,
    pub rbac_checked_at: Option<DateTime<Utc>>,
    /// Whether nspool applies this namespace's objects (namespaces.create).
    pub managed: bool,
    /// Whether nspool's current RBAC objects have been applied.
    pub rbac_applied: bool,
    /// Whether the claim labels in the cluster match the holder.
    pub labels_in_sync: bool,
    /// Pool labels the last verification found missing or different, as `key=value`.
    pub labels_missing: Vec<String>,
    /// The last Kubernetes failure on it, retried with backoff.
    pub kube_error: Option<String>,
    pub kube_error_at: Option<DateTime<Utc>>,
    pub kube_next_attempt_at: Option<DateTime<Utc>>,
    /// Since when it is releasing (`None` unless releasing).
    pub releasing_since: Option<DateTime<Utc>>,
    /// What the last check of it after a release found, as `Kind/name`.
    pub leftovers: Vec<String>,
    pub leftovers_checked_at: Option<DateTime<Utc>>,
}

impl PoolNamespaceView {
    /// The state a person reads (the dashboard, `nspool pool list`):
    /// `broken` is a free namespace that is not offered for its RBAC,
    /// `pending` one not yet seen ready in the cluster.
    pub fn shown_state(&self) -> &'static str {
        match self.state {
            PoolNamespaceState::Free
                if matches!(self.rbac_state.as_str(), "broken" | "missing") =>
            {
                "broken"
            }
            PoolNamespaceState::Free if self.rbac_state == "pending" => "pending",
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
pub const SHOWN_STATES: [&str; 8] = [
    "free",
    "held",
    "soft-deleted",
    "retired",
    "releasing",
    "cordoned",
    "broken",
    "pending",
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

/// The strings of a stored JSON array (nothing for anything else).
fn strings(value: Option<serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn view_of(
    row: PoolNamespaceRow,
    holder: Option<DeploymentRow>,
    state: PoolNamespaceState,
    reclaimable_at: Option<DateTime<Utc>>,
    note: Option<String>,
) -> PoolNamespaceView {
    // The cordon's columns are set and cleared together (a table constraint).
    let cordon = match (row.cordon_reason, row.cordoned_by, row.cordoned_at) {
        (Some(reason), Some(by), Some(at)) => Some(Cordon {
            reason,
            by,
            at,
            until: row.cordon_until,
        }),
        _ => None,
    };
    PoolNamespaceView {
        cluster_id: row.cluster_id,
        claimed_at: row.holder_deployment_id.and(row.claimed_at),
        labels_in_sync: row.labels_holder == row.holder_deployment_id,
        name: row.name,
        source: row.source,
        added_at: row.added_at,
        retired_at: row.retired_at,
        offered_changed_at: row.offered_changed_at,
        holder: holder.map(|row| Box::new(Deployment::from(row))),
        state,
        reclaimable_at,
        note,
        cordon,
        rbac_state: row.rbac_state,
        rbac_missing: strings(row.rbac_missing),
        rbac_checked_at: row.rbac_checked_at,
        managed: row.managed,
        rbac_applied: row.rbac_applied.is_some(),
        labels_missing: strings(row.labels_missing),
        kube_error: row.kube_error,
        kube_error_at: row.kube_error_at,
        kube_next_attempt_at: row.kube_next_attempt_at,
        releasing_since: row.releasing_since,
        leftovers: strings(row.leftovers),
        leftovers_checked_at: row.leftovers_checked_at,
    }
}

impl PoolService {
    /// Two queries whatever the pool's size: the pool, then all its holders.
    /// Every cluster's pool, or one cluster's.
    pub async fn pool_view(
        &self,
        caller: &Caller,
        cluster: Option<uuid::Uuid>,
    ) -> Result<Vec<PoolNamespaceView>> {
        caller.authorize(Action::System(Level::Viewer))?;
        let cluster = match cluster {
            None => None,
            Some(id) => Some(self.cluster_id_known(Some(id)).await?),
        };
        let rows = self.store.pool_namespaces(cluster).await?;
        self.views_of(rows).await
    }

    /// One pool namespace with its state and holder (system viewers);
    /// `None`: not in the pool.
    /// `cluster`: needed when nspool serves several.
    pub async fn pool_namespace(
        &self,
        caller: &Caller,
        cluster: Option<uuid::Uuid>,
        name: &str,
    ) -> Result<Option<PoolNamespaceView>> {
        caller.authorize(Action::System(Level::Viewer))?;
        crate::domain::text::check("name", name, crate::domain::text::max::FILTER)?;
        let cluster = self.cluster_id_known(cluster).await?;
        let Some(row) = self.store.pool_namespace(cluster, name).await? else {
            return Ok(None);
        };
        Ok(self.views_of(vec![row]).await?.pop())
    }

    pub(super) async fn views_of(
        &self,
        rows: Vec<PoolNamespaceRow>,
    ) -> Result<Vec<PoolNamespaceView>> {
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
        let mut view = |row: PoolNamespaceRow| {
            let holder = row.holder_deployment_id.and_then(|id| holders.remove(&id));
            let state = PoolNamespaceState::of(&row, holder.as_ref());
            let reclaimable_at = self.reclaimable_at(holder.as_ref().and_then(|d| d.deleted_at));
            let note = comes_back(state, reclaimable_at, never.as_deref(), unchecked);
            view_of(row, holder, state, reclaimable_at, note)
        };
        // The rows become views a chunk at a time, and the rows' buffer
        // shrinks as it empties: a whole pool's rows and views (~50 MB each
        // at 100,000 namespaces) are never both held.
        let mut rows = rows;
        rows.reverse();
        let mut views = Vec::with_capacity(rows.len());
        while !rows.is_empty() {
            let from = rows.len().saturating_sub(VIEW_CHUNK);
            views.extend(rows.drain(from..).rev().map(&mut view));
            if rows.capacity() > 2 * rows.len() + VIEW_CHUNK {
                rows.shrink_to_fit();
            }
        }
        Ok(views)
    }

    /// The cluster-wide part of a cluster's last verification.
    pub async fn rbac_cluster_report(
        &self,
        caller: &Caller,
        cluster: Option<uuid::Uuid>,
    ) -> Result<Option<ClusterReport>> {
        caller.authorize(Action::System(Level::Viewer))?;
        let cluster = self.cluster_id_required(cluster)?;
        Ok(self
            .store
            .cluster_report(cluster)
            .await?
            .map(ClusterReport::from))
    }

    /// The newest events of many namespaces (each with its cluster, side by
    /// side) at once (the GraphQL loader's batch).
    pub async fn namespace_events(
        &self,
        clusters: &[uuid::Uuid],
        names: &[String],
        last: i64,
    ) -> Result<Vec<PoolEvent>> {
        Ok(all(self
            .store
            .namespace_events(clusters, names, last)
            .await?))
    }

    /// The newest events: all, one cluster's (`cluster`), or one namespace's
    /// (of `cluster`, needed when nspool serves several).
    pub async fn events(
        &self,
        caller: &Caller,
        cluster: Option<uuid::Uuid>,
        namespace: Option<&str>,
        last: i64,
    ) -> Result<Vec<PoolEvent>> {
        caller.authorize(Action::System(Level::Viewer))?;
        crate::domain::text::check_opt("namespace", namespace, crate::domain::text::max::FILTER)?;
        let cluster = match (cluster, namespace) {
            (None, None) => None,
            (cluster, _) => Some(self.cluster_id_known(cluster).await?),
        };
        Ok(all(self.store.events(cluster, namespace, last).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(name: &str) -> PoolNamespaceRow {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        PoolNamespaceRow {
            cluster_id: uuid::Uuid::nil(),
            name: name.into(),
            source: "standard".into(),
            holder_deployment_id: None,
            claimed_at: Some(at),
            added_at: at,
            retired_at: None,
            managed: true,
            rbac_applied: Some("v1".into()),
            labels_holder: None,
            rbac_state: "ok".into(),
            rbac_missing: Some(json!(["create pods", 7, null])),
            rbac_checked_at: None,
            kube_error: None,
            kube_error_at: None,
            kube_next_attempt_at: None,
            releasing_since: None,
            leftovers: Some(json!({"not": "an array"})),
            leftovers_checked_at: None,
            labels_missing: None,
            cordon_reason: Some("disk".into()),
            cordoned_by: Some("token:ops".into()),
            cordoned_at: Some(at),
            cordon_until: None,
            offered_changed_at: at,
        }
    }

    #[test]
    fn the_view_speaks_in_the_pools_terms_not_the_columns() {
        let view = view_of(
            row("pool-a"),
            None,
            PoolNamespaceState::Cordoned,
            None,
            None,
        );
        // A claim time left from an earlier holder is not shown once free.
        assert_eq!(view.claimed_at, None);
        assert_eq!(view.rbac_missing, ["create pods"]);
        assert!(view.leftovers.is_empty() && view.labels_missing.is_empty());
        assert!(view.rbac_applied && view.labels_in_sync);
        let cordon = view.cordon.clone().expect("cordon");
        assert_eq!(
            (cordon.reason.as_str(), cordon.by.as_str()),
            ("disk", "token:ops")
        );
        assert_eq!(view.shown_state(), "cordoned");

        let mut held = row("pool-b");
        held.holder_deployment_id = Some(uuid::Uuid::nil());
        held.cordon_reason = None;
        let view = view_of(held, None, PoolNamespaceState::Held, None, None);
        assert!(view.claimed_at.is_some() && view.cordon.is_none());
        // The labels in the cluster still name no holder.
        assert!(!view.labels_in_sync);
    }
}
