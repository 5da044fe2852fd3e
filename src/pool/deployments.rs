//! Creating Deployments and claiming their namespaces, and reading them
//! (changes and deletes: `deployment_changes`).

use super::records::{Deployment, all};
use super::refusals::{self, Kind};
use super::{Error, PoolService, Result};
use crate::domain::roles::Level;
use crate::domain::text::{self, check_opt, max};
use crate::domain::{
    Action, Caller, DeploymentLabel, Executor, NamespaceName, ReleaseName, release_name_generator,
};
use crate::store::{self, DeploymentRow, ListFilter, NewDeployment};
use serde_json::Value;
use uuid::Uuid;

/// The fields a create or upsert may carry, as the client sent them.
#[derive(Debug, Clone, Default)]
pub struct DeploymentInput {
    pub label: Option<String>,
    pub description: Option<String>,
    pub kind: Option<String>,
    pub release_name: Option<String>,
    pub executor: Option<Executor>,
    pub airflow_version: Option<String>,
    pub runtime_version: Option<String>,
    pub namespace: Option<String>,
    pub cloud_role: Option<String>,
    pub config: Option<Value>,
    pub dag_deployment: Option<Value>,
    pub triggerer_replicas: Option<i32>,
    pub cluster_id: Option<Uuid>,
}

pub struct CreateDeployment {
    pub workspace_id: Uuid,
    pub input: DeploymentInput,
}

pub struct UpsertDeployment {
    pub deployment_id: Option<Uuid>,
    pub workspace_id: Option<Uuid>,
    pub input: DeploymentInput,
}

/// Tries for a generated release name before giving up (collisions are rare).
const RELEASE_NAME_ATTEMPTS: usize = 5;
pub const MAX_TAKE: i64 = 10_000;
/// Far beyond any real listing; keeps `take * pageNumber` small.
pub const MAX_PAGE_NUMBER: i64 = 1_000_000;
/// Houston's triggerer runs a handful of replicas at most.
pub const MAX_TRIGGERER_REPLICAS: i32 = 10;
const DEFAULT_TAKE: i64 = 50;

impl DeploymentInput {
    /// Every text and JSON field within its bounds, before any statement runs.
    /// Names (label, release name, namespace) are parsed where they are used.
    pub(super) fn check(&self) -> Result<()> {
        check_opt("label", self.label.as_deref(), max::FILTER)?;
        check_opt("description", self.description.as_deref(), max::DESCRIPTION)?;
        check_opt("type", self.kind.as_deref(), max::SHORT)?;
        check_opt("releaseName", self.release_name.as_deref(), max::FILTER)?;
        check_opt(
            "airflowVersion",
            self.airflow_version.as_deref(),
            max::SHORT,
        )?;
        check_opt(
            "runtimeVersion",
            self.runtime_version.as_deref(),
            max::SHORT,
        )?;
        check_opt("namespace", self.namespace.as_deref(), max::FILTER)?;
        check_opt("cloudRole", self.cloud_role.as_deref(), max::SHORT)?;
        if let Some(config) = &self.config {
            text::check_stored_json("config", config)?;
        }
        if let Some(dag) = &self.dag_deployment {
            text::check_stored_json("dagDeployment", dag)?;
        }
        if let Some(replicas) = self.triggerer_replicas
            && !(0..=MAX_TRIGGERER_REPLICAS).contains(&replicas)
        {
            return Err(Error::BadInput(format!(
                "triggerer.replicas must be between 0 and {MAX_TRIGGERER_REPLICAS}; got {replicas}"
            )));
        }
        Ok(())
    }
}

pub(super) fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `take` and `pageNumber` (0-based) → limit and offset; `take: -1` is "all".
pub fn page(take: Option<i32>, page_number: Option<i32>) -> Result<(Option<i64>, i64)> {
    let take = match take.map(i64::from) {
        None => Some(DEFAULT_TAKE),
        Some(-1) => None,
        Some(n) if (0..=MAX_TAKE).contains(&n) => Some(n),
        Some(n) => {
            return Err(Error::BadInput(format!(
                "take must be between 0 and {MAX_TAKE}, or -1 for all; got {n}"
            )));
        }
    };
    let page = i64::from(page_number.unwrap_or(0));
    if !(0..=MAX_PAGE_NUMBER).contains(&page) {
        return Err(Error::BadInput(format!(
            "pageNumber counts from 0 up to {MAX_PAGE_NUMBER}; got {page}"
        )));
    }
    Ok((take, take.map_or(0, |t| t * page)))
}

impl PoolService {
    /// Creates a Deployment; in pool mode, claims its namespace (counted in
    /// the metrics by outcome, with its latency).
    pub async fn create_deployment(
        &self,
        caller: &Caller,
        request: CreateDeployment,
    ) -> Result<Deployment> {
        let started = std::time::Instant::now();
        let pool_mode =
            super::clusters::cluster_or_default(&self.settings(), request.input.cluster_id)
                .is_ok_and(|c| c.pool.enabled());
        let result = self.create_deployment_now(caller, request).await;
        if pool_mode {
            self.metrics
                .claim(claim_outcome(&result), started.elapsed());
        }
        result.map(Deployment::from)
    }

    async fn create_deployment_now(
        &self,
        caller: &Caller,
        request: CreateDeployment,
    ) -> Result<DeploymentRow> {
        let CreateDeployment {
            workspace_id,
            input,
        } = request;
        caller.authorize(Action::Workspace(workspace_id, Level::Editor))?;
        input.check()?;
        let label = DeploymentLabel::parse(input.label.as_deref().unwrap_or(""))?;
        let executor = input.executor.unwrap_or(Executor::Celery);
        let settings = self.settings();
        let cluster = super::clusters::cluster_or_default(&settings, input.cluster_id)?;
        let houston = &cluster.houston;
        let manual_release = match non_empty(&input.release_name) {
            Some(name) if houston.manual_release_names => Some(ReleaseName::parse(name)?),
            _ => None,
        };
        let pool_mode = cluster.pool.enabled();
        let requested_namespace = match non_empty(&input.namespace) {
            None => None,
            Some(name) if pool_mode => Some(NamespaceName::parse(name)?),
            Some(name) if houston.namespace_free_form_entry => Some(NamespaceName::parse_for_pool(
                name,
                &settings.service.platform_namespace,
            )?),
            Some(_) => {
                return Err(Error::BadInput(
                    "A namespace cannot be chosen here: namespace pools are off and astronomer.houston.config.deployments.namespaceFreeFormEntry is false; leave namespace out and one is made from the release name".into(),
                ));
            }
        };
        if pool_mode && requested_namespace.is_none() {
            let at = refusals::Where::of(cluster, settings.many_clusters());
            if let Some(cordon) = self.store.pool_cordon(cluster.id).await? {
                return Err(Error::Conflict(refusals::pool_cordoned(&cordon, &at)));
            }
            let available = self.store.available_namespaces(cluster.id).await?;
            let empty = self.empty_pool_text(&at, cluster.id).await?;
            return Err(Error::BadInput(refusals::namespace_required(
                &available,
                || empty,
            )));
        }

        let id = Uuid::new_v4();
        let actor = caller.actor();
        let attempts = if manual_release.is_some() {
            1
        } else {
            RELEASE_NAME_ATTEMPTS
        };
        for _ in 0..attempts {
            let release = match &manual_release {
                Some(name) => name.clone(),
                None => release_name_generator::generate(&mut rand::rng()),
            };
            let namespace = match &requested_namespace {
                Some(name) => name.clone(),
                None => self.houston_namespace(&release)?,
            };
            let new = NewDeployment {
                id,
                workspace_id,
                label: label.as_str(),
                description: input.description.as_deref(),
                release_name: release.as_str(),
                namespace: namespace.as_str(),
                kind: non_empty(&input.kind).unwrap_or("airflow"),
                executor: executor.as_str(),
                airflow_version: non_empty(&input.airflow_version),
                runtime_version: non_empty(&input.runtime_version),
                cloud_role: input.cloud_role.as_deref(),
                config: input.config.as_ref(),
                dag_deployment: input.dag_deployment.as_ref(),
                triggerer_replicas: input.triggerer_replicas,
                cluster_id: cluster.id,
                claim_from_pool: pool_mode,
                actor: &actor,
            };
            match self.store.insert_deployment(&new).await {
                Ok(Some(claimed)) => {
                    self.kube_wake.wake_workers();
                    self.read_own_write(claimed.pool_generation).await;
                    return Ok(claimed.deployment);
                }
                Ok(None) => {
                    return Err(self
                        .claim_refused(caller, cluster.id, namespace.as_str())
                        .await);
                }
                Err(store::Error::ReleaseNameTaken) if manual_release.is_none() => continue,
                Err(e) => {
                    return Err(self.insert_refused(e, &label, &release, &namespace, workspace_id));
                }
            }
        }
        Err(Error::Conflict(
            "Could not find a free release name; try again or give one (manualReleaseNames)".into(),
        ))
    }

    /// Houston's namespace outside pool mode: `<platform namespace>-<release>`.
    fn houston_namespace(&self, release: &ReleaseName) -> Result<NamespaceName> {
        let settings = self.settings();
        let platform = &settings.service.platform_namespace;
        let name = format!("{platform}-{}", release.as_str().to_ascii_lowercase());
        NamespaceName::parse(&name).map_err(|_| {
            Error::BadInput(format!(
                "The namespace \"{name}\" made from the platform namespace and the release name is not a valid namespace name (at most 63 characters); choose a shorter release name"
            ))
        })
    }

    fn insert_refused(
        &self,
        error: store::Error,
        label: &DeploymentLabel,
        release: &ReleaseName,
        namespace: &NamespaceName,
        workspace_id: Uuid,
    ) -> Error {
        match error {
            store::Error::LabelTaken => label_taken(label.as_str()),
            store::Error::ReleaseNameTaken => Error::Conflict(format!(
                "The release name \"{release}\" is taken (also by soft-deleted Deployments until they are hard-deleted); choose another"
            )),
            store::Error::NamespaceTaken => Error::Conflict(format!(
                "Namespace \"{namespace}\" is used by another Deployment; choose another"
            )),
            store::Error::WorkspaceNotFound => {
                Error::NotFound(format!("Workspace {workspace_id} does not exist"))
            }
            store::Error::QuotaReached { quota, held } => Error::Conflict(format!(
                "Namespace \"{namespace}\" was not claimed: {}",
                super::error::quota_text(quota, held)
            )),
            other => other.into(),
        }
    }

    /// The second read after a claim found nothing to update: only to word the error.
    async fn claim_refused(&self, caller: &Caller, cluster: Uuid, name: &str) -> Error {
        let settings = self.settings();
        // With several clusters the words name the cluster and its keys.
        let at = match settings.cluster(cluster) {
            Some(c) => refusals::Where::of(c, settings.many_clusters()),
            None => refusals::Where::of(settings.default_cluster(), settings.many_clusters()),
        };
        let words = async {
            if let Some(cordon) = self.store.pool_cordon(cluster).await? {
                return Ok((Kind::Conflict, refusals::pool_cordoned(&cordon, &at)));
            }
            let holder = self.store.namespace_holder(cluster, name).await?;
            let visible = holder
                .as_ref()
                .and_then(|h| h.workspace_id)
                .is_none_or(|w| {
                    caller
                        .authorize(Action::Workspace(w, Level::Viewer))
                        .is_ok()
                });
            let available = self.store.available_namespaces(cluster).await?;
            let empty = self.empty_pool_text(&at, cluster).await?;
            let reclaimable = self.reclaimable_at(holder.as_ref().and_then(|h| h.deleted_at));
            Ok::<_, Error>(refusals::not_claimable(
                name,
                holder.as_ref(),
                visible,
                reclaimable,
                &available,
                || empty,
                &at,
            ))
        };
        match words.await {
            Ok((Kind::Conflict, text)) => Error::Conflict(text),
            Ok((Kind::BadInput, text)) => Error::BadInput(text),
            Err(e) => e,
        }
    }

    async fn empty_pool_text(&self, at: &refusals::Where, cluster: Uuid) -> Result<String> {
        let summary = self.store.pool_summary(Some(cluster)).await?;
        let next = self.reclaimable_at(summary.oldest_soft_delete);
        Ok(refusals::empty_pool(&summary, next, at))
    }

    /// A Deployment the caller may see at `level`, soft-deleted ones included.
    pub(super) async fn deployment_for(
        &self,
        caller: &Caller,
        id: Uuid,
        level: Level,
    ) -> Result<DeploymentRow> {
        let not_found = || Error::NotFound(format!("Deployment {id} not found"));
        // Refuse a caller without any valid token before saying whether the id exists.
        if matches!(caller, Caller::Anonymous | Caller::InvalidToken) {
            caller.authorize(Action::UseToken)?;
        }
        let row = self.store.deployment(id).await?.ok_or_else(not_found)?;
        // Another workspace's Deployment is answered like one that is not there.
        if caller
            .authorize(Action::Workspace(row.workspace_id, Level::Viewer))
            .is_err()
        {
            return Err(not_found());
        }
        caller.authorize(Action::Workspace(row.workspace_id, level))?;
        Ok(row)
    }

    pub async fn deployment(&self, caller: &Caller, id: &str) -> Result<Option<Deployment>> {
        let id = Uuid::parse_str(id.trim()).map_err(|_| {
            Error::BadInput(format!(
                "\"{}\" is not a Deployment id (a UUID)",
                text::excerpt(id)
            ))
        })?;
        match self.deployment_for(caller, id, Level::Viewer).await {
            Ok(row) => Ok(Some(row.into())),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn workspace_deployments(
        &self,
        caller: &Caller,
        workspace_id: Uuid,
        release_name: Option<&str>,
        cluster: Option<Uuid>,
    ) -> Result<Vec<Deployment>> {
        caller.authorize(Action::Workspace(workspace_id, Level::Viewer))?;
        check_opt("releaseName", release_name, max::FILTER)?;
        let cluster_id = self.cluster_filter(cluster)?;
        let filter = ListFilter {
            cluster_id,
            workspace_id: Some(workspace_id),
            release_name: release_name.filter(|r| !r.is_empty()),
            name: None,
            after: None,
            limit: None,
            offset: 0,
        };
        Ok(all(self.store.deployments(&filter).await?))
    }

    pub async fn paginated_deployments(
        &self,
        caller: &Caller,
        take: Option<i32>,
        cursor: Option<Uuid>,
        page_number: Option<i32>,
        name: Option<&str>,
        cluster: Option<Uuid>,
    ) -> Result<Vec<Deployment>> {
        let workspace_id = caller.workspace_filter()?;
        let (limit, offset) = page(take, page_number)?;
        check_opt("name", name, max::FILTER)?;
        let cluster_id = self.cluster_filter(cluster)?;
        let filter = ListFilter {
            cluster_id,
            workspace_id,
            release_name: None,
            name: name.map(str::trim).filter(|n| !n.is_empty()),
            after: cursor,
            limit,
            offset,
        };
        Ok(all(self.store.deployments(&filter).await?))
    }
}

impl PoolService {
    /// A list's `clusterId`: one nspool serves, else refused by id (none: every cluster).
    fn cluster_filter(&self, cluster: Option<Uuid>) -> Result<Option<Uuid>> {
        match cluster {
            None => Ok(None),
            Some(id) => Ok(Some(
                super::clusters::cluster_or_default(&self.settings(), Some(id))?.id,
            )),
        }
    }
}

/// A claim's outcome as a metric label.
fn claim_outcome(result: &Result<DeploymentRow>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(Error::Conflict(_)) => "conflict",
        Err(Error::BadInput(_)) => "bad_input",
        Err(Error::NotFound(_)) => "not_found",
        Err(Error::Unauthenticated { .. } | Error::Forbidden { .. }) => "forbidden",
        Err(Error::Unavailable(_)) => "unavailable",
        Err(Error::Internal(_)) => "error",
    }
}

pub(super) fn label_taken(label: &str) -> Error {
    Error::Conflict(format!(
        "A Deployment labelled \"{label}\" already exists in this workspace; choose another label"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging() {
        assert_eq!(page(None, None).unwrap(), (Some(DEFAULT_TAKE), 0));
        assert_eq!(page(Some(-1), Some(3)).unwrap(), (None, 0));
        assert_eq!(page(Some(10), Some(2)).unwrap(), (Some(10), 20));
        assert!(page(Some(-2), None).is_err());
        assert!(page(Some(10_001), None).is_err());
        assert!(page(Some(5), Some(-1)).is_err());
    }
}
