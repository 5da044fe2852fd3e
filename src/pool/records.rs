//! What the pool service hands out: its own types, apart from the store's
//! rows. The SQL's shape (a joined workspace flattened into `workspace_*`
//! columns, JSON columns, executors as text, nullable column groups) stays
//! in `store`; the API, the dashboard and the CLI see only these.

use crate::domain::Executor;
use crate::store::{
    ClusterReportRow, DeploymentRow, EventRow, HoldingsRow, PoolCordonRow, ReclaimRunRow,
    RoleBindingRow, TokenRow, WorkspaceRow,
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: Uuid,
    pub label: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<WorkspaceRow> for Workspace {
    fn from(row: WorkspaceRow) -> Self {
        Workspace {
            id: row.id,
            label: row.label,
            description: row.description,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A Deployment with the workspace it belongs to.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: Uuid,
    pub workspace: Workspace,
    pub label: String,
    pub description: Option<String>,
    pub release_name: String,
    /// The pool namespace it holds.
    pub namespace: String,
    /// Houston's Deployment type (`airflow`).
    pub kind: String,
    /// `None`: stored by an older nspool under a name it no longer knows.
    pub executor: Option<Executor>,
    pub airflow_version: Option<String>,
    pub runtime_version: Option<String>,
    pub cloud_role: Option<String>,
    pub config: Option<Value>,
    pub dag_deployment: Option<Value>,
    pub triggerer_replicas: Option<i32>,
    pub cluster_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set while soft-deleted: it keeps its namespace until reclaimed.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<DeploymentRow> for Deployment {
    fn from(row: DeploymentRow) -> Self {
        Deployment {
            id: row.id,
            workspace: Workspace {
                id: row.workspace_id,
                label: row.workspace_label,
                description: row.workspace_description,
                created_at: row.workspace_created_at,
                updated_at: row.workspace_updated_at,
            },
            label: row.label,
            description: row.description,
            release_name: row.release_name,
            namespace: row.namespace,
            kind: row.kind,
            executor: Executor::parse(&row.executor),
            airflow_version: row.airflow_version,
            runtime_version: row.runtime_version,
            cloud_role: row.cloud_role,
            config: row.config,
            dag_deployment: row.dag_deployment,
            triggerer_replicas: row.triggerer_replicas,
            cluster_id: row.cluster_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        }
    }
}

/// A live token bound to a workspace: nspool has no user accounts, so these
/// are a workspace's role bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceToken {
    pub workspace_id: Uuid,
    pub token_id: Uuid,
    pub role: String,
    pub label: String,
}

impl From<RoleBindingRow> for WorkspaceToken {
    fn from(row: RoleBindingRow) -> Self {
        WorkspaceToken {
            workspace_id: row.workspace_id,
            token_id: row.token_id,
            role: row.role,
            label: row.label,
        }
    }
}

/// A workspace's quota (its own, else the config's default; `None`: no
/// limit) and how many namespaces its Deployments hold, live or soft-deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holdings {
    pub workspace_id: Uuid,
    pub quota: Option<i32>,
    pub held: i64,
}

impl From<HoldingsRow> for Holdings {
    fn from(row: HoldingsRow) -> Self {
        Holdings {
            workspace_id: row.workspace_id,
            quota: row.quota,
            held: row.held,
        }
    }
}

/// An API token as listed (never its secret, which is not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: Uuid,
    pub role: String,
    pub workspace_id: Option<Uuid>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenRow> for Token {
    fn from(row: TokenRow) -> Self {
        Token {
            id: row.id,
            role: row.role,
            workspace_id: row.workspace_id,
            label: row.label,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// One entry of the append-only history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// claim, update, soft_delete, release, reclaim, add, retire, cordon, …
    pub kind: String,
    /// The cluster of `namespace` (none: not about one cluster's namespace).
    pub cluster_id: Option<Uuid>,
    pub namespace: Option<String>,
    pub deployment_id: Option<Uuid>,
    pub release_name: Option<String>,
    pub workspace_id: Option<Uuid>,
    pub actor: String,
    pub reason: Option<String>,
}

impl From<EventRow> for PoolEvent {
    fn from(row: EventRow) -> Self {
        PoolEvent {
            id: row.id,
            at: row.at,
            kind: row.kind,
            cluster_id: row.cluster_id,
            namespace: row.namespace,
            deployment_id: row.deployment_id,
            release_name: row.release_name,
            workspace_id: row.workspace_id,
            actor: row.actor,
            reason: row.reason,
        }
    }
}

/// One reclaim run, scheduled or by hand.
#[derive(Debug, Clone, PartialEq)]
pub struct ReclaimRun {
    pub id: i64,
    /// The tick a scheduled run belongs to; `None` for runs by hand.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// `schedule` or `manual`.
    pub trigger: String,
    pub replica: String,
    pub older_than_days: i32,
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub reclaimed: i32,
    pub errors: Option<String>,
    /// Dry runs: what they would have reclaimed.
    pub would_reclaim: Option<Value>,
}

impl From<ReclaimRunRow> for ReclaimRun {
    fn from(row: ReclaimRunRow) -> Self {
        ReclaimRun {
            id: row.id,
            scheduled_for: row.scheduled_for,
            trigger: row.trigger,
            replica: row.replica,
            older_than_days: row.older_than_days,
            dry_run: row.dry_run,
            started_at: row.started_at,
            finished_at: row.finished_at,
            reclaimed: row.reclaimed,
            errors: row.errors,
            would_reclaim: row.would_reclaim,
        }
    }
}

/// A cordon: of one namespace, or of the whole pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cordon {
    pub reason: String,
    /// Who cordoned (a token's actor name).
    pub by: String,
    pub at: DateTime<Utc>,
    /// When it lifts by itself; `None`: until uncordoned.
    pub until: Option<DateTime<Utc>>,
}

impl From<PoolCordonRow> for Cordon {
    fn from(row: PoolCordonRow) -> Self {
        Cordon {
            reason: row.reason,
            by: row.cordoned_by,
            at: row.cordoned_at,
            until: row.until,
        }
    }
}

/// The cluster-wide part of the last RBAC verification.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterReport {
    pub checked_at: DateTime<Utc>,
    /// Cluster-scoped permissions in the rules, each with whether the
    /// Commander account has it at cluster scope.
    pub cluster_scoped: Value,
    /// Rules for API groups the cluster does not serve.
    pub stale: Value,
}

impl From<ClusterReportRow> for ClusterReport {
    fn from(row: ClusterReportRow) -> Self {
        ClusterReport {
            checked_at: row.checked_at,
            cluster_scoped: row.cluster_scoped,
            stale: row.stale,
        }
    }
}

/// Converts what a store call gave into the pool's own types.
pub(super) fn all<R, T: From<R>>(rows: Vec<R>) -> Vec<T> {
    rows.into_iter().map(T::from).collect()
}
