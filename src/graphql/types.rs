//! The object types of SPEC §3, by their Houston names, and nspool's own.

use super::loaders::RoleBindingLoader;
pub use super::pool_types::*;
use super::scalars::Uuid;
use crate::domain::Executor;
use crate::pool::{self, PoolService};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

/// Houston's names, PascalCase on the wire, as the CLI declares them.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "PascalCase")]
#[allow(clippy::enum_variant_names)]
pub enum ExecutorType {
    LocalExecutor,
    CeleryExecutor,
    KubernetesExecutor,
}

impl From<ExecutorType> for Executor {
    fn from(value: ExecutorType) -> Self {
        match value {
            ExecutorType::LocalExecutor => Executor::Local,
            ExecutorType::CeleryExecutor => Executor::Celery,
            ExecutorType::KubernetesExecutor => Executor::Kubernetes,
        }
    }
}

impl From<Executor> for ExecutorType {
    fn from(value: Executor) -> Self {
        match value {
            Executor::Local => ExecutorType::LocalExecutor,
            Executor::Celery => ExecutorType::CeleryExecutor,
            Executor::Kubernetes => ExecutorType::KubernetesExecutor,
        }
    }
}

/// How a Deployment gets its DAGs; the CLI sends `type` in lowercase.
#[derive(InputObject, Clone, serde::Serialize)]
#[graphql(name = "DagDeployment", rename_fields = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct DagDeploymentInput {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub nfs_location: Option<String>,
    pub repository_url: Option<String>,
    pub branch_name: Option<String>,
    pub sync_interval: Option<i32>,
    pub sync_timeout: Option<i32>,
    pub ephemeral_storage: Option<i32>,
    pub dag_directory_location: Option<String>,
    pub rev: Option<String>,
    pub ssh_key: Option<String>,
    pub known_hosts: Option<String>,
}

#[derive(InputObject, Clone)]
pub struct TriggererInput {
    pub replicas: Option<i32>,
}

#[derive(InputObject, Clone)]
pub struct DeploymentWhere {
    pub id: Option<String>,
}

#[derive(SimpleObject)]
pub struct AuthProvider {
    pub name: String,
    pub display_name: String,
    pub url: String,
}

#[derive(SimpleObject)]
pub struct AuthConfig {
    pub local_enabled: bool,
    pub public_signup: bool,
    pub initial_signup: bool,
    pub providers: Vec<AuthProvider>,
}

#[derive(SimpleObject)]
pub struct AppConfig {
    pub version: String,
    pub base_domain: String,
    pub smtp_configured: bool,
    pub manual_release_names: bool,
    pub configure_dag_deployment: bool,
    pub nfs_mount_dag_deployment: bool,
    pub manual_namespace_names: bool,
    pub hard_delete_deployment: bool,
    pub triggerer_enabled: bool,
    pub byo_update_registry_host: Option<String>,
    pub feature_flags: Json<serde_json::Value>,
}

#[derive(SimpleObject)]
pub struct Namespace {
    pub name: String,
}

impl From<String> for Namespace {
    fn from(name: String) -> Self {
        Namespace { name }
    }
}

#[derive(SimpleObject)]
pub struct User {
    pub id: Uuid,
    pub username: String,
}

#[derive(SimpleObject)]
pub struct ServiceAccount {
    pub id: Uuid,
    pub label: String,
}

#[derive(SimpleObject)]
pub struct RoleBinding {
    pub role: String,
    pub user: Option<User>,
    pub service_account: Option<ServiceAccount>,
}

impl From<pool::WorkspaceToken> for RoleBinding {
    /// nspool has no users: a workspace's role bindings are its tokens.
    fn from(token: pool::WorkspaceToken) -> Self {
        RoleBinding {
            role: token.role,
            user: None,
            service_account: Some(ServiceAccount {
                id: token.token_id.into(),
                label: token.label,
            }),
        }
    }
}

pub struct Workspace(pub pool::Workspace);

impl Workspace {
    async fn holdings(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<pool::Holdings>> {
        let loader = ctx.data_unchecked::<DataLoader<super::loaders::HoldingsLoader>>();
        loader
            .load_one(self.0.id)
            .await
            .map_err(|e| super::errors::to_graphql(&e))
    }
}

#[Object]
impl Workspace {
    async fn id(&self) -> Uuid {
        self.0.id.into()
    }
    async fn label(&self) -> &str {
        &self.0.label
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// How many pool namespaces it may hold: its own quota, else the
    /// config's default; null: no limit.
    async fn namespace_quota(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i32>> {
        Ok(self.holdings(ctx).await?.and_then(|h| h.quota))
    }
    /// Namespaces its Deployments hold, live and soft-deleted.
    async fn namespaces_held(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let held = self.holdings(ctx).await?.map_or(0, |h| h.held);
        Ok(i32::try_from(held).unwrap_or(i32::MAX))
    }
    /// The live tokens bound to this workspace (nspool has no user accounts).
    async fn role_bindings(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RoleBinding>> {
        let loader = ctx.data_unchecked::<DataLoader<RoleBindingLoader>>();
        let rows = loader
            .load_one(self.0.id)
            .await
            .map_err(|e| super::errors::to_graphql(&e))?;
        super::response_budget::charge_items(ctx, rows.as_ref().map_or(0, Vec::len)).await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(SimpleObject)]
pub struct DeploymentUrl {
    #[graphql(name = "type")]
    pub kind: String,
    pub url: String,
}

#[derive(SimpleObject)]
pub struct DeployInfo {
    pub current: Option<String>,
    pub next_cli: Option<String>,
}

#[derive(SimpleObject, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct DagDeploymentConfig {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub nfs_location: Option<String>,
    pub repository_url: Option<String>,
    pub branch_name: Option<String>,
    pub sync_interval: Option<i32>,
    pub rev: Option<String>,
}

pub struct Deployment(pub pool::Deployment);

#[Object]
impl Deployment {
    async fn id(&self) -> Uuid {
        self.0.id.into()
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn label(&self) -> &str {
        &self.0.label
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn release_name(&self) -> &str {
        &self.0.release_name
    }
    async fn namespace(&self) -> &str {
        &self.0.namespace
    }
    /// The configured Airflow chart version.
    async fn version(&self, ctx: &Context<'_>) -> String {
        service(ctx)
            .settings()
            .service
            .airflow_chart_version
            .clone()
    }
    async fn airflow_version(&self) -> Option<&str> {
        self.0.airflow_version.as_deref()
    }
    async fn desired_airflow_version(&self) -> Option<&str> {
        self.0.airflow_version.as_deref()
    }
    async fn runtime_version(&self) -> Option<&str> {
        self.0.runtime_version.as_deref()
    }
    async fn desired_runtime_version(&self) -> Option<&str> {
        self.0.runtime_version.as_deref()
    }
    async fn runtime_airflow_version(&self) -> Option<&str> {
        None
    }
    async fn executor(&self) -> Option<ExecutorType> {
        self.0.executor.map(Into::into)
    }
    /// nspool does not run Airflow, so it cannot know the status.
    async fn status(&self) -> Option<&str> {
        None
    }
    async fn urls(&self, ctx: &Context<'_>) -> Vec<DeploymentUrl> {
        service(ctx)
            .urls(&self.0)
            .into_iter()
            .map(|(kind, url)| DeploymentUrl {
                kind: kind.to_owned(),
                url,
            })
            .collect()
    }
    async fn workspace(&self) -> Workspace {
        Workspace(self.0.workspace.clone())
    }
    async fn deploy_info(&self) -> DeployInfo {
        DeployInfo {
            current: None,
            next_cli: None,
        }
    }
    async fn dag_deployment(&self) -> Option<DagDeploymentConfig> {
        let value = self.0.dag_deployment.clone()?;
        serde_json::from_value(value).ok()
    }
    /// The cluster the Deployment's namespace is in (always set; the
    /// default cluster for Deployments made without `clusterId`).
    async fn cluster_id(&self) -> Option<Uuid> {
        Some(self.0.cluster_id.into())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }
    /// `deletedAt` + `cleanupDeployments.olderThan`; null when the reclaim job
    /// is off or only dry-runs.
    async fn reclaimable_at(&self, ctx: &Context<'_>) -> Option<DateTime<Utc>> {
        service(ctx).reclaimable_at(self.0.deleted_at)
    }
}

pub fn service<'a>(ctx: &Context<'a>) -> &'a PoolService {
    ctx.data_unchecked::<PoolService>()
}

/// A freshly created token: `token` is shown this once.
#[derive(SimpleObject)]
pub struct CreatedToken {
    pub id: Uuid,
    pub token: String,
    pub role: String,
    pub workspace_id: Option<Uuid>,
}

/// What a reclaim freed, or would free in a dry run.
#[derive(SimpleObject)]
pub struct ReclaimResult {
    pub run_id: String,
    pub dry_run: bool,
    pub cutoff: DateTime<Utc>,
    /// How many were freed (would be, in a dry run).
    pub count: i32,
    /// The first 10,000 of them.
    pub deployments: Vec<ReclaimedDeploymentInfo>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
}

/// One reclaim run, scheduled or by hand.
#[derive(SimpleObject)]
pub struct ReclaimRun {
    pub id: String,
    /// The tick a scheduled run belongs to; null for runs by hand.
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
    /// Dry runs: what they would have reclaimed (`{releaseName, namespace}` objects).
    pub would_reclaim: Option<Json<serde_json::Value>>,
}

impl From<pool::ReclaimRun> for ReclaimRun {
    fn from(row: pool::ReclaimRun) -> Self {
        ReclaimRun {
            id: row.id.to_string(),
            scheduled_for: row.scheduled_for,
            trigger: row.trigger,
            replica: row.replica,
            older_than_days: row.older_than_days,
            dry_run: row.dry_run,
            started_at: row.started_at,
            finished_at: row.finished_at,
            reclaimed: row.reclaimed,
            errors: row.errors,
            would_reclaim: row.would_reclaim.map(Json),
        }
    }
}

/// The reclaim job as configured (`astronomer.houston.cleanupDeployments`).
#[derive(SimpleObject)]
pub struct ReclaimJob {
    pub enabled: bool,
    /// 6-field form, seconds first, UTC.
    pub schedule: String,
    pub older_than_days: i32,
    pub dry_run: bool,
    /// False when soft-deleted Deployments never return their namespaces by themselves.
    pub reclaims: bool,
    pub next_run_at: Option<DateTime<Utc>>,
    /// What a platform engineer should know, e.g. that namespaces never come back.
    pub note: Option<String>,
}

#[derive(SimpleObject)]
pub struct ReclaimedDeploymentInfo {
    pub release_name: String,
    pub namespace: String,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Keeps DagDeployment input as the JSON stored with the Deployment.
pub fn dag_deployment_json(input: Option<DagDeploymentInput>) -> Option<serde_json::Value> {
    input.and_then(|d| serde_json::to_value(d).ok())
}

/// The cluster-wide part of the last verification.
#[derive(SimpleObject)]
pub struct RbacClusterReport {
    pub checked_at: DateTime<Utc>,
    /// Cluster-scoped permissions in the rules ("a Role cannot grant this"),
    /// each with whether the Commander account has it at cluster scope.
    pub cluster_scoped: Json<serde_json::Value>,
    /// Rules for API groups the cluster does not serve.
    pub stale: Json<serde_json::Value>,
}
