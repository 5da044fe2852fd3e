//! Mutations: thin calls into the pool service.

use super::errors::GqlResult;
use super::query::caller;
use super::scalars::Uuid;
use super::types::*;
use crate::domain::Role;
use crate::pool::{CreateDeployment, DeploymentInput, UpsertDeployment};
use async_graphql::{Context, Json, Object};
use serde_json::Value;

#[derive(Default)]
pub struct HoustonMutation;

#[Object]
impl HoustonMutation {
    async fn create_workspace(
        &self,
        ctx: &Context<'_>,
        label: String,
        description: Option<String>,
    ) -> async_graphql::Result<Workspace> {
        let caller = caller(ctx).await?;
        let row = service(ctx)
            .create_workspace(caller, &label, description.as_deref())
            .await
            .gql()?;
        Ok(Workspace(row))
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_deployment(
        &self,
        ctx: &Context<'_>,
        workspace_uuid: Uuid,
        label: String,
        #[graphql(name = "type", default_with = "Some(\"airflow\".to_owned())")] kind: Option<
            String,
        >,
        release_name: Option<String>,
        executor: ExecutorType,
        airflow_version: Option<String>,
        runtime_version: Option<String>,
        namespace: Option<String>,
        cloud_role: Option<String>,
        description: Option<String>,
        config: Option<Json<Value>>,
        dag_deployment: Option<DagDeploymentInput>,
        triggerer: Option<TriggererInput>,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<Deployment> {
        let caller = caller(ctx).await?;
        let input = DeploymentInput {
            label: Some(label),
            description,
            kind,
            release_name,
            executor: Some(executor.into()),
            airflow_version,
            runtime_version,
            namespace,
            cloud_role,
            config: config.map(|c| c.0),
            dag_deployment: dag_deployment_json(dag_deployment),
            triggerer_replicas: triggerer.and_then(|t| t.replicas),
            cluster_id: cluster_id.map(|c| c.0),
        };
        let request = CreateDeployment {
            workspace_id: workspace_uuid.0,
            input,
        };
        let row = service(ctx)
            .create_deployment(caller, request)
            .await
            .gql()?;
        Ok(Deployment(row))
    }

    #[allow(clippy::too_many_arguments)]
    async fn update_deployment(
        &self,
        ctx: &Context<'_>,
        deployment_uuid: Uuid,
        payload: Option<Json<Value>>,
        executor: Option<ExecutorType>,
        cloud_role: Option<String>,
        dag_deployment: Option<DagDeploymentInput>,
        triggerer: Option<TriggererInput>,
    ) -> async_graphql::Result<Deployment> {
        let caller = caller(ctx).await?;
        let input = DeploymentInput {
            executor: executor.map(Into::into),
            cloud_role,
            dag_deployment: dag_deployment_json(dag_deployment),
            triggerer_replicas: triggerer.and_then(|t| t.replicas),
            ..DeploymentInput::default()
        };
        let row = service(ctx)
            .update_deployment(
                caller,
                deployment_uuid.0,
                payload.as_ref().map(|p| &p.0),
                input,
            )
            .await
            .gql()?;
        Ok(Deployment(row))
    }

    #[allow(clippy::too_many_arguments)]
    async fn upsert_deployment(
        &self,
        ctx: &Context<'_>,
        deployment_uuid: Option<Uuid>,
        workspace_uuid: Option<Uuid>,
        cluster_id: Option<Uuid>,
        label: Option<String>,
        description: Option<String>,
        release_name: Option<String>,
        namespace: Option<String>,
        runtime_version: Option<String>,
        executor: Option<ExecutorType>,
        triggerer: Option<TriggererInput>,
        dag_deployment: Option<DagDeploymentInput>,
        cloud_role: Option<String>,
    ) -> async_graphql::Result<Deployment> {
        let caller = caller(ctx).await?;
        let input = DeploymentInput {
            label,
            description,
            kind: None,
            release_name,
            executor: executor.map(Into::into),
            airflow_version: None,
            runtime_version,
            namespace,
            cloud_role,
            config: None,
            dag_deployment: dag_deployment_json(dag_deployment),
            triggerer_replicas: triggerer.and_then(|t| t.replicas),
            cluster_id: cluster_id.map(|c| c.0),
        };
        let request = UpsertDeployment {
            deployment_id: deployment_uuid.map(|d| d.0),
            workspace_id: workspace_uuid.map(|w| w.0),
            input,
        };
        let row = service(ctx)
            .upsert_deployment(caller, request)
            .await
            .gql()?;
        Ok(Deployment(row))
    }

    /// Soft delete unless `deploymentHardDelete` is true and hard delete is
    /// allowed; returns the Deployment as it was last.
    async fn delete_deployment(
        &self,
        ctx: &Context<'_>,
        deployment_uuid: Uuid,
        deployment_hard_delete: Option<bool>,
    ) -> async_graphql::Result<Option<Deployment>> {
        let caller = caller(ctx).await?;
        let row = service(ctx)
            .delete_deployment(caller, deployment_uuid.0, deployment_hard_delete)
            .await
            .gql()?;
        Ok(Some(Deployment(row)))
    }
}

/// nspool's own mutations (system admins).
#[derive(Default)]
pub struct PoolMutation;

#[Object]
impl PoolMutation {
    /// Hard-deletes Deployments soft-deleted more than `olderThanDays` ago
    /// (default: cleanupDeployments.olderThan) and frees their namespaces.
    async fn reclaim_deployments(
        &self,
        ctx: &Context<'_>,
        older_than_days: Option<u32>,
        #[graphql(default = false)] dry_run: bool,
    ) -> async_graphql::Result<ReclaimResult> {
        let caller = caller(ctx).await?;
        let service = service(ctx);
        let days = older_than_days.unwrap_or(service.settings().cleanup.older_than_days);
        let report = service.reclaim(caller, days, dry_run).await.gql()?;
        Ok(ReclaimResult {
            run_id: report.run_id.to_string(),
            dry_run: report.dry_run,
            cutoff: report.cutoff,
            count: i32::try_from(report.count).unwrap_or(i32::MAX),
            stopped: report.stopped,
            deployments: report
                .deployments
                .into_iter()
                .map(|d| ReclaimedDeploymentInfo {
                    release_name: d.release_name,
                    namespace: d.namespace,
                    deleted_at: d.deleted_at,
                })
                .collect(),
        })
    }

    /// Re-applies (namespaces.create) and re-checks every pool namespace now;
    /// returns how many namespaces were queued.
    async fn resync_pool(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let caller = caller(ctx).await?;
        let rows = service(ctx).resync_pool(caller).await.gql()?;
        Ok(i32::try_from(rows).unwrap_or(i32::MAX))
    }

    /// Offers a releasing namespace again at once, whatever its last check
    /// found (system admins). The event keeps who did it and `reason`.
    async fn mark_namespace_clean(
        &self,
        ctx: &Context<'_>,
        name: String,
        reason: String,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<bool> {
        let caller = caller(ctx).await?;
        service(ctx)
            .mark_namespace_clean(caller, cluster_id.map(|c| c.0), &name, &reason)
            .await
            .gql()?;
        Ok(true)
    }

    /// A new API token bound to one role (and workspace, for workspace roles).
    async fn create_token(
        &self,
        ctx: &Context<'_>,
        role: String,
        workspace_uuid: Option<Uuid>,
        #[graphql(default)] label: String,
    ) -> async_graphql::Result<CreatedToken> {
        let caller = caller(ctx).await?;
        let role = Role::parse(&role).map_err(crate::pool::Error::from).gql()?;
        let created = service(ctx)
            .create_token(caller, role, workspace_uuid.map(|w| w.0), &label)
            .await
            .gql()?;
        Ok(CreatedToken {
            id: created.record.id.into(),
            token: created.token,
            role: created.record.role,
            workspace_id: created.record.workspace_id.map(Into::into),
        })
    }

    /// Revokes a token by id; it stops working at once.
    async fn revoke_token(&self, ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<bool> {
        let caller = caller(ctx).await?;
        service(ctx).revoke_token(caller, id.0).await.gql()?;
        Ok(true)
    }
}
