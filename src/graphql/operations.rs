//! Day-2 operations: cordons and workspace quotas (system admins), as thin
//! calls into the pool service.

use super::errors::GqlResult;
use super::query::caller;
use super::scalars::Uuid;
use super::types::{Cordon, PoolNamespace, Workspace, service};
use async_graphql::{Context, Object};
use chrono::{DateTime, Utc};

#[derive(Default)]
pub struct OperationsQuery;

#[Object]
impl OperationsQuery {
    /// One pool namespace by name (system viewer or more; `clusterId`
    /// needed when nspool serves several); null when it is not in the pool.
    async fn pool_namespace(
        &self,
        ctx: &Context<'_>,
        name: String,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<Option<PoolNamespace>> {
        let caller = caller(ctx).await?;
        let view = service(ctx)
            .pool_namespace(caller, cluster_id.map(|c| c.0), &name)
            .await
            .gql()?;
        Ok(view.map(PoolNamespace::from))
    }

    /// A cluster's whole-pool cordon while it holds (no claims pass there);
    /// null when its pool is open. Any valid token may ask; `clusterId`
    /// needed when nspool serves several.
    async fn pool_cordon(
        &self,
        ctx: &Context<'_>,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<Option<Cordon>> {
        let caller = caller(ctx).await?;
        let row = service(ctx)
            .pool_cordon(caller, cluster_id.map(|c| c.0))
            .await
            .gql()?;
        Ok(row.map(Cordon::from))
    }
}

#[derive(Default)]
pub struct OperationsMutation;

#[Object]
impl OperationsMutation {
    /// Keeps a namespace out of what is offered (system admins). Its holder
    /// keeps it; once released it stays out until uncordoned or `until`
    /// passes. Cordoning again replaces the reason and the end. `clusterId`:
    /// needed when nspool serves several clusters.
    async fn cordon_namespace(
        &self,
        ctx: &Context<'_>,
        name: String,
        reason: String,
        until: Option<DateTime<Utc>>,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<PoolNamespace> {
        let caller = caller(ctx).await?;
        let view = service(ctx)
            .cordon_namespace(caller, cluster_id.map(|c| c.0), &name, &reason, until)
            .await
            .gql()?;
        Ok(view.into())
    }

    /// Offers a cordoned namespace again (when it is free).
    async fn uncordon_namespace(
        &self,
        ctx: &Context<'_>,
        name: String,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<PoolNamespace> {
        let caller = caller(ctx).await?;
        let view = service(ctx)
            .uncordon_namespace(caller, cluster_id.map(|c| c.0), &name)
            .await
            .gql()?;
        Ok(view.into())
    }

    /// No claims in the cluster's pool while it holds (the refusal gives
    /// `reason`); its `availableNamespaces` answers an empty list; releases
    /// and reclaims go on. `clusterId`: needed when nspool serves several.
    async fn cordon_pool(
        &self,
        ctx: &Context<'_>,
        reason: String,
        until: Option<DateTime<Utc>>,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<bool> {
        let caller = caller(ctx).await?;
        service(ctx)
            .cordon_pool(caller, cluster_id.map(|c| c.0), &reason, until)
            .await
            .gql()?;
        Ok(true)
    }

    /// Lifts a cluster's pool cordon; false when its pool was not cordoned.
    async fn uncordon_pool(
        &self,
        ctx: &Context<'_>,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<bool> {
        let caller = caller(ctx).await?;
        service(ctx)
            .uncordon_pool(caller, cluster_id.map(|c| c.0))
            .await
            .gql()
    }

    /// A workspace's own namespace quota (system admins); null: the
    /// config's default (`nspool.workspaceQuota`) applies. Namespaces held
    /// by live and soft-deleted Deployments count; a lower quota takes
    /// nothing away, it refuses the next claims.
    async fn set_workspace_quota(
        &self,
        ctx: &Context<'_>,
        workspace_uuid: Uuid,
        max_namespaces: Option<i32>,
    ) -> async_graphql::Result<Workspace> {
        let caller = caller(ctx).await?;
        let row = service(ctx)
            .set_workspace_quota(caller, workspace_uuid.0, max_namespaces)
            .await
            .gql()?;
        Ok(Workspace(row))
    }
}
