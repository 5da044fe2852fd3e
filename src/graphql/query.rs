//! Queries: thin calls into the pool service.

use super::chunked_list::Chunked;
use super::errors::GqlResult;
use super::response_budget::charge_items;
use super::scalars::Uuid;
use super::types::*;
use crate::pool::Credentials;
use crate::pool::PoolNamespaceView;
use async_graphql::{Context, Json, Object};
use serde_json::json;

pub async fn caller<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a crate::domain::Caller> {
    let credentials = ctx.data_unchecked::<Credentials>();
    credentials.caller(service(ctx)).await.gql()
}

#[derive(Default)]
pub struct HoustonQuery;

#[Object]
impl HoustonQuery {
    /// Answers with or without a token: the astro CLI picks its documents by
    /// `version`. The flags are the cluster's (`clusterId`; the default
    /// cluster without one); an unknown `clusterId` is refused.
    async fn app_config(
        &self,
        ctx: &Context<'_>,
        cluster_id: Option<Uuid>,
        workspace_uuid: Option<Uuid>,
        deployment_uuid: Option<Uuid>,
    ) -> async_graphql::Result<AppConfig> {
        let _ = (workspace_uuid, deployment_uuid);
        let settings = service(ctx).settings();
        let cluster = crate::pool::clusters::cluster_or_default_for_anyone(
            &settings,
            cluster_id.map(|c| c.0),
        )
        .gql()?;
        let h = &cluster.houston;
        Ok(AppConfig {
            version: settings.service.houston_version.clone(),
            base_domain: settings.service.base_domain.clone(),
            smtp_configured: false,
            manual_release_names: h.manual_release_names,
            configure_dag_deployment: false,
            nfs_mount_dag_deployment: false,
            manual_namespace_names: h.manual_namespace_names,
            hard_delete_deployment: h.hard_delete_deployment,
            triggerer_enabled: true,
            byo_update_registry_host: None,
            feature_flags: Json(json!({
                "manualNamespaceNames": h.manual_namespace_names,
                "hardDeleteDeployment": h.hard_delete_deployment,
                "namespaceFreeFormEntry": h.namespace_free_form_entry,
                "triggererEnabled": true,
                "nfsMountDagDeployment": false,
                "gitSyncDagDeployment": false,
                "dagOnlyDeployment": false,
                "byoUpdateRegistryEnabled": false,
                "astroRuntimeEnabled": true,
            })),
        })
    }

    /// No local accounts: one provider, a page that explains how to get a token.
    async fn auth_config(&self, ctx: &Context<'_>, redirect: Option<String>) -> AuthConfig {
        let _ = redirect;
        let public_url = ctx
            .data_opt::<PublicUrl>()
            .map(|u| u.0.as_str())
            .unwrap_or("");
        AuthConfig {
            local_enabled: false,
            public_signup: false,
            initial_signup: false,
            providers: vec![AuthProvider {
                name: "nspool".into(),
                display_name: "nspool token".into(),
                url: format!("{public_url}/v1/token"),
            }],
        }
    }

    async fn available_namespaces(
        &self,
        ctx: &Context<'_>,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<Chunked<Namespace, String>> {
        let caller = caller(ctx).await?;
        let names = service(ctx)
            .available_namespaces(caller, cluster_id.map(|c| c.0))
            .await
            .gql()?;
        charge_items(ctx, names.len()).await?;
        Ok(Chunked::shared(names))
    }

    async fn workspaces(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Workspace>> {
        let caller = caller(ctx).await?;
        let rows = service(ctx).workspaces(caller, None, None).await.gql()?;
        charge_items(ctx, rows.len()).await?;
        Ok(rows.into_iter().map(Workspace).collect())
    }

    async fn paginated_workspaces(
        &self,
        ctx: &Context<'_>,
        take: Option<i32>,
        page_number: Option<i32>,
    ) -> async_graphql::Result<Vec<Workspace>> {
        let caller = caller(ctx).await?;
        let rows = service(ctx)
            .workspaces(caller, Some(take.unwrap_or(-1)), page_number)
            .await
            .gql()?;
        charge_items(ctx, rows.len()).await?;
        Ok(rows.into_iter().map(Workspace).collect())
    }

    async fn workspace(
        &self,
        ctx: &Context<'_>,
        workspace_uuid: Uuid,
    ) -> async_graphql::Result<Option<Workspace>> {
        let caller = caller(ctx).await?;
        let row = service(ctx)
            .workspace(caller, workspace_uuid.0)
            .await
            .gql()?;
        Ok(row.map(Workspace))
    }

    async fn workspace_deployments(
        &self,
        ctx: &Context<'_>,
        workspace_uuid: Uuid,
        release_name: Option<String>,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<Vec<Deployment>> {
        let caller = caller(ctx).await?;
        let rows = service(ctx)
            .workspace_deployments(
                caller,
                workspace_uuid.0,
                release_name.as_deref(),
                cluster_id.map(|c| c.0),
            )
            .await
            .gql()?;
        charge_items(ctx, rows.len()).await?;
        Ok(rows.into_iter().map(Deployment).collect())
    }

    async fn paginated_deployments(
        &self,
        ctx: &Context<'_>,
        take: Option<i32>,
        cursor: Option<Uuid>,
        page_number: Option<i32>,
        name: Option<String>,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<Vec<Deployment>> {
        let caller = caller(ctx).await?;
        let rows = service(ctx)
            .paginated_deployments(
                caller,
                take,
                cursor.map(|c| c.0),
                page_number,
                name.as_deref(),
                cluster_id.map(|c| c.0),
            )
            .await
            .gql()?;
        charge_items(ctx, rows.len()).await?;
        Ok(rows.into_iter().map(Deployment).collect())
    }

    async fn deployment(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "where")] filter: DeploymentWhere,
    ) -> async_graphql::Result<Option<Deployment>> {
        let caller = caller(ctx).await?;
        let id = filter.id.unwrap_or_default();
        let row = service(ctx).deployment(caller, &id).await.gql()?;
        Ok(row.map(Deployment))
    }
}

/// nspool's own queries, beside Houston's.
#[derive(Default)]
pub struct PoolQuery;

/// nspool's reclaim queries.
#[derive(Default)]
pub struct ReclaimQuery;

#[Object]
impl PoolQuery {
    /// Every pool namespace with its state and holder, of every cluster or
    /// of `clusterId`'s (system viewer or more).
    async fn pool_namespaces(
        &self,
        ctx: &Context<'_>,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<Chunked<PoolNamespace, PoolNamespaceView>> {
        let caller = caller(ctx).await?;
        caller
            .authorize(crate::domain::Action::System(
                crate::domain::roles::Level::Viewer,
            ))
            .map_err(crate::pool::Error::from)
            .gql()?;
        // Charged at the configured pool's size before the rows are read
        // (retired namespaces beyond it once they are), so an answer over
        // budget, or one waiting for a large-answer permit, holds no rows.
        let settings = service(ctx).settings();
        // A cluster no longer configured (its namespaces retired) is
        // expected empty; which ids are known is the service's to say.
        let expected = match cluster_id {
            None => settings.pool_size(),
            Some(id) => settings
                .cluster(id.0)
                .map_or(0, |c| c.pool.namespaces.len()),
        };
        charge_items(ctx, expected).await?;
        let views = service(ctx)
            .pool_view(caller, cluster_id.map(|c| c.0))
            .await
            .gql()?;
        charge_items(ctx, views.len().saturating_sub(expected)).await?;
        Ok(Chunked::owned(views))
    }

    /// Every cluster nspool serves, in config order (the first is where a
    /// claim without `clusterId` goes), with its namespaces by state and
    /// whether its Kubernetes API server answered at the last check (system
    /// viewer or more).
    async fn clusters(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Cluster>> {
        let caller = caller(ctx).await?;
        let rows = service(ctx).clusters(caller).await.gql()?;
        Ok(rows.into_iter().map(Cluster::from).collect())
    }

    /// The cluster-wide part of a cluster's last RBAC verification (system
    /// viewer or more; `clusterId` needed when nspool serves several).
    async fn rbac_cluster_report(
        &self,
        ctx: &Context<'_>,
        cluster_id: Option<Uuid>,
    ) -> async_graphql::Result<Option<RbacClusterReport>> {
        let caller = caller(ctx).await?;
        let row = service(ctx)
            .rbac_cluster_report(caller, cluster_id.map(|c| c.0))
            .await
            .gql()?;
        Ok(row.map(|r| RbacClusterReport {
            checked_at: r.checked_at,
            cluster_scoped: Json(r.cluster_scoped),
            stale: Json(r.stale),
        }))
    }

    /// The newest events, newest first, optionally of one namespace (of
    /// `clusterId`, needed when nspool serves several) (system viewer or more).
    #[graphql(complexity = "(last.max(0) as usize).saturating_mul(child_complexity)")]
    async fn pool_events(
        &self,
        ctx: &Context<'_>,
        namespace: Option<String>,
        cluster_id: Option<Uuid>,
        #[graphql(default = 50, validator(minimum = 1, maximum = 1000))] last: i32,
    ) -> async_graphql::Result<Vec<PoolEvent>> {
        let caller = caller(ctx).await?;
        let rows = service(ctx)
            .events(
                caller,
                cluster_id.map(|c| c.0),
                namespace.as_deref(),
                i64::from(last),
            )
            .await
            .gql()?;
        charge_items(ctx, rows.len()).await?;
        Ok(rows.into_iter().map(PoolEvent::from).collect())
    }
}

#[Object]
impl ReclaimQuery {
    /// Reclaim runs, newest first (system viewer or more).
    #[graphql(complexity = "(last.max(0) as usize).saturating_mul(child_complexity)")]
    async fn reclaim_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, validator(minimum = 1, maximum = 1000))] last: i32,
    ) -> async_graphql::Result<Vec<ReclaimRun>> {
        let caller = caller(ctx).await?;
        let rows = service(ctx)
            .reclaim_runs(caller, i64::from(last))
            .await
            .gql()?;
        charge_items(ctx, rows.len()).await?;
        Ok(rows.into_iter().map(ReclaimRun::from).collect())
    }

    /// The reclaim job's settings, its next run, and whether namespaces of
    /// soft-deleted Deployments ever come back by themselves.
    async fn reclaim_job(&self, ctx: &Context<'_>) -> async_graphql::Result<ReclaimJob> {
        let caller = caller(ctx).await?;
        let cleanup = service(ctx).reclaim_job(caller).gql()?;
        Ok(ReclaimJob {
            enabled: cleanup.enabled,
            schedule: cleanup.schedule.as_str().to_owned(),
            older_than_days: i32::try_from(cleanup.older_than_days).unwrap_or(i32::MAX),
            dry_run: cleanup.dry_run,
            reclaims: cleanup.reclaims(),
            next_run_at: cleanup
                .enabled
                .then(|| cleanup.schedule.next_after(chrono::Utc::now()))
                .flatten(),
            note: cleanup.never_reclaims_note(),
        })
    }
}

/// The address clients reach nspool at, for links it hands out.
#[derive(Clone)]
pub struct PublicUrl(pub String);
