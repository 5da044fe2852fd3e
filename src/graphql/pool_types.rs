//! nspool's own pool view in GraphQL: each pool namespace with its state,
//! holder, cordon and events.

use super::loaders::EventLoader;
use super::scalars::Uuid;
use super::types::Deployment;
use crate::pool::{self, PoolNamespaceState, PoolNamespaceView};
use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Enum, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "PoolNamespaceState", rename_items = "PascalCase")]
pub enum PoolNamespaceStateType {
    /// Offered by `availableNamespaces`.
    Free,
    /// Held by a live Deployment.
    Held,
    /// Held by a soft-deleted Deployment until it is reclaimed or hard-deleted.
    SoftDeleted,
    /// Removed from the config: never offered again; a holder keeps working.
    Retired,
    /// Released; offered again once nspool finds nothing its Deployment left
    /// in it (see `leftovers`), or when a system admin marks it clean.
    Releasing,
    /// Free but cordoned (see `cordon`): not offered until uncordoned.
    Cordoned,
}

impl From<PoolNamespaceState> for PoolNamespaceStateType {
    fn from(state: PoolNamespaceState) -> Self {
        match state {
            PoolNamespaceState::Free => Self::Free,
            PoolNamespaceState::Held => Self::Held,
            PoolNamespaceState::SoftDeleted => Self::SoftDeleted,
            PoolNamespaceState::Retired => Self::Retired,
            PoolNamespaceState::Releasing => Self::Releasing,
            PoolNamespaceState::Cordoned => Self::Cordoned,
        }
    }
}

/// One namespace of the pool, as nspool sees it.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PoolNamespace {
    /// The cluster the namespace is in (the same name may be in several).
    pub cluster_id: Uuid,
    pub name: String,
    pub state: PoolNamespaceStateType,
    /// `standard` (namespacePools.namespaces.names) or `advanced` (preCreatedNamespaces).
    pub source: String,
    pub added_at: DateTime<Utc>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    /// When the soft-deleted holder's namespace comes back by itself; null when never.
    pub reclaimable_at: Option<DateTime<Utc>>,
    /// How it becomes free again (null when free).
    pub note: Option<String>,
    /// Verification: `unknown` (not checked), `ok`, `broken` (a namespaced
    /// permission is missing: not offered), `missing` (no such namespace: not offered).
    pub rbac_state: String,
    /// The Commander permissions a verification found missing.
    pub rbac_missing: Vec<String>,
    pub rbac_checked_at: Option<DateTime<Utc>>,
    /// Whether nspool applies this namespace's objects (namespaces.create).
    pub managed: bool,
    /// Whether nspool's current RBAC objects have been applied (when managed).
    pub rbac_applied: bool,
    /// Whether the claim labels in the cluster match the holder.
    pub labels_in_sync: bool,
    /// The last Kubernetes failure on this namespace, retried with backoff.
    pub kube_error: Option<String>,
    pub kube_error_at: Option<DateTime<Utc>>,
    pub kube_next_attempt_at: Option<DateTime<Utc>>,
    /// Since when it is releasing (null unless RELEASING).
    pub releasing_since: Option<DateTime<Utc>>,
    /// What the last check of a released namespace found that a Deployment
    /// left, as `Kind/name` (e.g. `PersistentVolumeClaim/data-foo-worker-0`).
    pub leftovers: Vec<String>,
    /// When a released namespace was last checked for leftovers.
    pub leftovers_checked_at: Option<DateTime<Utc>>,
    /// Pool labels (`platform-release` and the platform's namespaceLabels)
    /// the last verification found missing or different, as `key=value`.
    pub labels_missing: Vec<String>,
    /// Kept out of what is offered (its holder keeps it); null when not cordoned.
    pub cordon: Option<Cordon>,
    #[graphql(skip)]
    pub holder: Option<pool::Deployment>,
}

/// A cordon: of one namespace, or of the whole pool.
#[derive(SimpleObject, Clone)]
pub struct Cordon {
    pub reason: String,
    /// Who cordoned (a token's actor name).
    pub by: String,
    pub at: DateTime<Utc>,
    /// When it lifts by itself; null: until uncordoned.
    pub until: Option<DateTime<Utc>>,
}

impl From<pool::Cordon> for Cordon {
    fn from(cordon: pool::Cordon) -> Self {
        Cordon {
            reason: cordon.reason,
            by: cordon.by,
            at: cordon.at,
            until: cordon.until,
        }
    }
}

#[ComplexObject]
impl PoolNamespace {
    /// The Deployment holding it, live or soft-deleted.
    async fn deployment(&self) -> Option<Deployment> {
        self.holder.clone().map(Deployment)
    }

    /// Its newest events, newest first.
    #[graphql(complexity = "(last.max(0) as usize).saturating_mul(child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, validator(minimum = 1, maximum = 500))] last: i32,
    ) -> async_graphql::Result<Vec<PoolEvent>> {
        let loader = ctx.data_unchecked::<DataLoader<EventLoader>>();
        let rows = loader
            .load_one((self.cluster_id.0, self.name.clone(), i64::from(last)))
            .await
            .map_err(|e| super::errors::to_graphql(&e))?;
        super::response_budget::charge_nested_items(ctx, rows.as_ref().map_or(0, Vec::len)).await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(PoolEvent::from)
            .collect())
    }
}

impl From<PoolNamespaceView> for PoolNamespace {
    fn from(view: PoolNamespaceView) -> Self {
        PoolNamespace {
            cluster_id: view.cluster_id.into(),
            name: view.name,
            state: view.state.into(),
            source: view.source,
            added_at: view.added_at,
            claimed_at: view.claimed_at,
            retired_at: view.retired_at,
            reclaimable_at: view.reclaimable_at,
            note: view.note,
            rbac_state: view.rbac_state,
            rbac_missing: view.rbac_missing,
            rbac_checked_at: view.rbac_checked_at,
            managed: view.managed,
            rbac_applied: view.rbac_applied,
            labels_in_sync: view.labels_in_sync,
            kube_error: view.kube_error,
            kube_error_at: view.kube_error_at,
            kube_next_attempt_at: view.kube_next_attempt_at,
            releasing_since: view.releasing_since,
            leftovers: view.leftovers,
            leftovers_checked_at: view.leftovers_checked_at,
            labels_missing: view.labels_missing,
            cordon: view.cordon.map(Cordon::from),
            holder: view.holder.map(|holder| *holder),
        }
    }
}

/// One entry of the append-only history.
#[derive(SimpleObject)]
pub struct PoolEvent {
    pub id: String,
    pub at: DateTime<Utc>,
    /// claim, update, soft_delete, release (hard delete), reclaim, add, retire, restore, adopt, …
    pub kind: String,
    /// The cluster of `namespace` (null: not about one cluster's namespace).
    pub cluster_id: Option<Uuid>,
    pub namespace: Option<String>,
    pub deployment_id: Option<Uuid>,
    pub release_name: Option<String>,
    pub workspace_id: Option<Uuid>,
    pub actor: String,
    pub reason: Option<String>,
}

impl From<pool::PoolEvent> for PoolEvent {
    fn from(row: pool::PoolEvent) -> Self {
        PoolEvent {
            id: row.id.to_string(),
            at: row.at,
            kind: row.kind,
            cluster_id: row.cluster_id.map(Into::into),
            namespace: row.namespace,
            deployment_id: row.deployment_id.map(Into::into),
            release_name: row.release_name,
            workspace_id: row.workspace_id.map(Into::into),
            actor: row.actor,
            reason: row.reason,
        }
    }
}

/// One cluster nspool serves, with its namespaces by state.
#[derive(SimpleObject)]
pub struct Cluster {
    /// What `clusterId` arguments (the astro CLI's `--cluster-id`) name.
    pub id: Uuid,
    pub name: String,
    /// Where a claim without `clusterId` goes (the first listed).
    pub is_default: bool,
    pub free: i32,
    /// Held by a live Deployment.
    pub held: i32,
    /// Held by a soft-deleted Deployment (until hard-deleted or reclaimed).
    pub soft_deleted: i32,
    /// Free, not yet seen ready in the cluster.
    pub pending: i32,
    pub broken: i32,
    pub releasing: i32,
    pub cordoned: i32,
    pub retired: i32,
    /// Whether its Kubernetes API server answered at the last check (null:
    /// never checked, or Kubernetes is off).
    pub reachable: Option<bool>,
    pub checked_at: Option<DateTime<Utc>>,
    /// What the last check that failed said.
    pub check_error: Option<String>,
}

impl From<crate::pool::clusters::ClusterView> for Cluster {
    fn from(view: crate::pool::clusters::ClusterView) -> Self {
        let n = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
        Cluster {
            id: view.id.into(),
            name: view.name,
            is_default: view.is_default,
            free: n(view.free),
            held: n(view.held),
            soft_deleted: n(view.soft_deleted),
            pending: n(view.pending),
            broken: n(view.broken),
            releasing: n(view.releasing),
            cordoned: n(view.cordoned),
            retired: n(view.retired),
            reachable: view.reachable,
            checked_at: view.checked_at,
            check_error: view.check_error,
        }
    }
}
