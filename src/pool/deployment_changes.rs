//! Changing and deleting Deployments (update, upsert, soft and hard delete),
//! and Houston's `payload` JSON merged into the typed arguments.

use super::deployments::{
    CreateDeployment, DeploymentInput, UpsertDeployment, label_taken, non_empty,
};
use super::records::Deployment;
use super::{Error, PoolService, Result};
use crate::domain::roles::Level;
use crate::domain::text;
use crate::domain::{Caller, DeploymentLabel, Executor};
use crate::store::{self, DeploymentUpdate};
use serde_json::{Map, Value};
use uuid::Uuid;

impl PoolService {
    pub async fn update_deployment(
        &self,
        caller: &Caller,
        id: Uuid,
        payload: Option<&Value>,
        input: DeploymentInput,
    ) -> Result<Deployment> {
        if let Some(payload) = payload {
            text::check_stored_json("payload", payload)?;
        }
        let current = self.deployment_for(caller, id, Level::Editor).await?;
        if current.deleted_at.is_some() {
            return Err(Error::NotFound(format!(
                "Deployment {id} is deleted and cannot be updated"
            )));
        }
        let merged = merge_payload(payload, input)?;
        merged.check()?;
        if let Some(namespace) = non_empty(&merged.namespace)
            && namespace != current.namespace
        {
            return Err(Error::BadInput(format!(
                "A Deployment never moves to another namespace: it stays in \"{}\"",
                current.namespace
            )));
        }
        if let Some(release) = non_empty(&merged.release_name)
            && release != current.release_name
        {
            return Err(Error::BadInput(format!(
                "A Deployment's release name cannot change: it stays \"{}\"",
                current.release_name
            )));
        }
        let label = merged
            .label
            .as_deref()
            .map(DeploymentLabel::parse)
            .transpose()?;
        let update = DeploymentUpdate {
            label: label.as_ref().map(DeploymentLabel::as_str),
            description: merged.description.as_deref(),
            executor: merged.executor.map(Executor::as_str),
            airflow_version: non_empty(&merged.airflow_version),
            runtime_version: non_empty(&merged.runtime_version),
            cloud_role: merged.cloud_role.as_deref(),
            config: merged.config.as_ref(),
            dag_deployment: merged.dag_deployment.as_ref(),
            triggerer_replicas: merged.triggerer_replicas,
        };
        match self
            .store
            .update_deployment(id, &update, &caller.actor())
            .await
        {
            Ok(Some(row)) => Ok(row.into()),
            Ok(None) => Err(Error::NotFound(format!("Deployment {id} not found"))),
            Err(store::Error::LabelTaken) => Err(label_taken(update.label.unwrap_or_default())),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn upsert_deployment(
        &self,
        caller: &Caller,
        request: UpsertDeployment,
    ) -> Result<Deployment> {
        match request.deployment_id {
            None => {
                let workspace_id = request.workspace_id.ok_or_else(|| {
                    Error::BadInput("workspaceUuid is required to create a Deployment".into())
                })?;
                self.create_deployment(
                    caller,
                    CreateDeployment {
                        workspace_id,
                        input: request.input,
                    },
                )
                .await
            }
            Some(id) => {
                // An unknown cluster is refused by its id, as on a create.
                let cluster = match request.input.cluster_id {
                    Some(cluster) => Some(
                        super::clusters::cluster_or_default(&self.settings(), Some(cluster))?.id,
                    ),
                    None => None,
                };
                if request.workspace_id.is_some() || cluster.is_some() {
                    let current = self.deployment_for(caller, id, Level::Editor).await?;
                    if request
                        .workspace_id
                        .is_some_and(|w| w != current.workspace_id)
                    {
                        return Err(Error::BadInput(
                            "A Deployment cannot move to another workspace".into(),
                        ));
                    }
                    if let Some(asked) = cluster.filter(|c| *c != current.cluster_id) {
                        let settings = self.settings();
                        let name = |id: Uuid| {
                            settings
                                .cluster(id)
                                .map_or_else(|| id.to_string(), |c| format!("{} ({id})", c.name))
                        };
                        return Err(Error::BadInput(format!(
                            "A Deployment cannot move to another cluster: it is in cluster {} with its namespace, and clusterId names {}",
                            name(current.cluster_id),
                            name(asked)
                        )));
                    }
                }
                self.update_deployment(caller, id, None, request.input)
                    .await
            }
        }
    }

    /// Soft delete unless a hard delete is asked for and allowed; a hard delete
    /// asked for where it is not allowed is a soft delete whose event says why.
    pub async fn delete_deployment(
        &self,
        caller: &Caller,
        id: Uuid,
        hard: Option<bool>,
    ) -> Result<Deployment> {
        let hard_allowed = self.hard_delete_allowed(id).await?;
        let hard_requested = hard == Some(true);
        if hard_requested && hard_allowed {
            // One statement that carries the caller's scope; the row is read
            // first only to word a refusal.
            if let Some(scope) = caller.workspaces_at(Level::Admin)
                && let Some(released) = self
                    .store
                    .hard_delete_deployment(
                        id,
                        scope,
                        store::Release {
                            kind: "release",
                            actor: &caller.actor(),
                            reason: "hard delete",
                            check_released: self.checks_released(),
                        },
                    )
                    .await?
            {
                self.metrics.release("hard_delete");
                self.kube_wake.wake_workers();
                self.read_own_write(released.pool_generation).await;
                return Ok(released.deployment.into());
            }
            self.deployment_for(caller, id, Level::Admin).await?;
            return Err(Error::NotFound(format!("Deployment {id} not found")));
        }
        let current = self.deployment_for(caller, id, Level::Admin).await?;
        let actor = caller.actor();
        if let Some(deleted_at) = current.deleted_at {
            return Err(Error::NotFound(format!(
                "Deployment {id} was already deleted at {}; {}",
                deleted_at.to_rfc3339(),
                if hard_allowed {
                    "hard-delete it to free its namespace now"
                } else {
                    "hard delete is not allowed here (astronomer.houston.config.deployments.hardDeleteDeployment is false), so the reclaim job frees its namespace"
                }
            )));
        }
        let reason = if hard_requested {
            "hard delete requested but not allowed (astronomer.houston.config.deployments.hardDeleteDeployment is false): soft-deleted instead"
        } else {
            "soft delete"
        };
        self.metrics.release("soft_delete");
        let deleted = self
            .store
            .soft_delete_deployment(id, &actor, reason)
            .await?;
        self.kube_wake.wake_workers();
        deleted
            .map(Deployment::from)
            .ok_or_else(|| Error::NotFound(format!("Deployment {id} not found")))
    }
}

impl PoolService {
    /// Whether the cluster of Deployment `id` allows hard deletes (its
    /// `appConfig.hardDeleteDeployment`); read only when clusters differ.
    async fn hard_delete_allowed(&self, id: Uuid) -> Result<bool> {
        let settings = self.settings();
        let allowed = |c: &crate::config::ClusterSettings| c.houston.hard_delete_deployment;
        if settings.clusters.iter().all(allowed) {
            return Ok(true);
        }
        if !settings.clusters.iter().any(allowed) {
            return Ok(false);
        }
        Ok(match self.store.deployment(id).await? {
            Some(row) => settings.cluster(row.cluster_id).is_some_and(allowed),
            None => false,
        })
    }
}

/// Houston's `payload` JSON and the typed arguments, as one input. Known keys
/// are typed; any other key is kept in the Deployment's config.
fn merge_payload(payload: Option<&Value>, mut input: DeploymentInput) -> Result<DeploymentInput> {
    let Some(payload) = payload else {
        return Ok(input);
    };
    let Value::Object(map) = payload else {
        return Err(Error::BadInput("payload must be a JSON object".into()));
    };
    let string = |key: &str| -> Result<Option<String>> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::BadInput(format!("payload.{key} must be a string"))),
        }
    };
    input.label = string("label")?.or(input.label);
    input.description = string("description")?.or(input.description);
    input.namespace = string("namespace")?.or(input.namespace);
    input.release_name = string("releaseName")?.or(input.release_name);
    input.airflow_version = string("airflowVersion")?.or(input.airflow_version);
    input.runtime_version = string("runtimeVersion")?
        .or(string("desiredRuntimeVersion")?)
        .or(input.runtime_version);
    if let Some(executor) = string("executor")? {
        input.executor = Some(Executor::parse(&executor).ok_or_else(|| {
            Error::BadInput(format!(
                "payload.executor \"{}\" is not one of LocalExecutor, CeleryExecutor, KubernetesExecutor",
                text::excerpt(&executor)
            ))
        })?);
    }
    const TYPED: [&str; 8] = [
        "label",
        "description",
        "namespace",
        "releaseName",
        "airflowVersion",
        "runtimeVersion",
        "desiredRuntimeVersion",
        "executor",
    ];
    let mut rest: Map<String, Value> = match map.get("config") {
        Some(Value::Object(config)) => config.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            return Err(Error::BadInput(
                "payload.config must be a JSON object".into(),
            ));
        }
    };
    for (key, value) in map {
        if !TYPED.contains(&key.as_str()) && key != "config" {
            rest.insert(key.clone(), value.clone());
        }
    }
    if !rest.is_empty() {
        let mut config = match input.config.take() {
            Some(Value::Object(config)) => config,
            _ => Map::new(),
        };
        config.extend(rest);
        input.config = Some(Value::Object(config));
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_keys_are_typed_and_the_rest_goes_to_config() {
        let merged = merge_payload(
            Some(&json!({"label": "new", "description": "d", "executor": "LocalExecutor", "env": [1]})),
            DeploymentInput::default(),
        )
        .unwrap();
        assert_eq!(merged.label.as_deref(), Some("new"));
        assert_eq!(merged.executor, Some(Executor::Local));
        assert_eq!(merged.config, Some(json!({"env": [1]})));
    }

    #[test]
    fn bad_payloads_are_refused() {
        for bad in [
            json!([1]),
            json!({"label": 3}),
            json!({"executor": "Nope"}),
            json!({"config": 1}),
        ] {
            assert!(
                merge_payload(Some(&bad), DeploymentInput::default()).is_err(),
                "{bad}"
            );
        }
    }
}
