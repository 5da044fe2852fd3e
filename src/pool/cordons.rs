//! Cordons (one namespace, or the whole pool, out of what is offered) and
//! workspace quotas: system admins' day-2 operations. The rules that hold
//! under races (a cordoned namespace is never claimed, a quota never passed)
//! are the database's; this checks input and words the answers.

use super::records::{Cordon, Holdings, Workspace, all};
use super::view::PoolNamespaceView;
use super::{Error, PoolService, Result};
use crate::domain::roles::Level;
use crate::domain::{Action, Caller, text};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How often each replica lifts cordons whose end passed.
pub const CORDON_SWEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The reason a cordon must give: the events and refusals show it.
fn reason(reason: &str) -> Result<&str> {
    text::check("reason", reason, text::max::REASON)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::BadInput(
            "Say why (reason): claims refused while the cordon holds show it".into(),
        ));
    }
    Ok(reason)
}

fn until(until: Option<DateTime<Utc>>) -> Result<Option<DateTime<Utc>>> {
    match until {
        Some(at) if at <= Utc::now() => Err(Error::BadInput(format!(
            "until ({}) has passed; give a time ahead, or none to cordon until uncordoned",
            at.to_rfc3339()
        ))),
        other => Ok(other),
    }
}

impl PoolService {
    /// Cordons a pool namespace: never offered while it holds; its holder
    /// keeps it, and once released it stays out until uncordoned.
    pub async fn cordon_namespace(
        &self,
        caller: &Caller,
        cluster: Option<Uuid>,
        name: &str,
        why: &str,
        ends: Option<DateTime<Utc>>,
    ) -> Result<PoolNamespaceView> {
        caller.authorize(Action::System(Level::Admin))?;
        text::check("name", name, text::max::FILTER)?;
        let why = reason(why)?;
        let ends = until(ends)?;
        let cluster = self.cluster_id_known(cluster).await?;
        let change = self
            .store
            .cordon_namespace(cluster, name, why, ends, &caller.actor())
            .await?
            .ok_or_else(|| self.not_in_pool(cluster, name))?;
        self.read_own_write(change.generation).await;
        self.kube_wake.wake_workers();
        self.pool_namespace(caller, Some(cluster), name)
            .await?
            .ok_or_else(|| self.not_in_pool(cluster, name))
    }

    pub async fn uncordon_namespace(
        &self,
        caller: &Caller,
        cluster: Option<Uuid>,
        name: &str,
    ) -> Result<PoolNamespaceView> {
        caller.authorize(Action::System(Level::Admin))?;
        text::check("name", name, text::max::FILTER)?;
        let cluster = self.cluster_id_known(cluster).await?;
        let change = self
            .store
            .uncordon_namespace(cluster, name, &caller.actor(), "uncordoned")
            .await?;
        match change {
            Some(change) => {
                self.read_own_write(change.generation).await;
                self.kube_wake.wake_workers();
            }
            // Not cordoned: say so, unless it is not in the pool at all.
            None => {
                self.pool_namespace(caller, Some(cluster), name)
                    .await?
                    .ok_or_else(|| self.not_in_pool(cluster, name))?;
                return Err(Error::Conflict(format!(
                    "Namespace \"{}\" is not cordoned",
                    text::excerpt(name)
                )));
            }
        }
        self.pool_namespace(caller, Some(cluster), name)
            .await?
            .ok_or_else(|| self.not_in_pool(cluster, name))
    }

    /// No claims while it holds; releases and reclaims go on.
    pub async fn cordon_pool(
        &self,
        caller: &Caller,
        cluster: Option<Uuid>,
        why: &str,
        ends: Option<DateTime<Utc>>,
    ) -> Result<()> {
        caller.authorize(Action::System(Level::Admin))?;
        let why = reason(why)?;
        let ends = until(ends)?;
        let cluster = self.cluster_id_required(cluster)?;
        let generation = self
            .store
            .cordon_pool(cluster, why, ends, &caller.actor())
            .await?;
        self.read_own_write(Some(generation)).await;
        Ok(())
    }

    /// `false`: the pool was not cordoned.
    pub async fn uncordon_pool(&self, caller: &Caller, cluster: Option<Uuid>) -> Result<bool> {
        caller.authorize(Action::System(Level::Admin))?;
        let cluster = self.cluster_id_required(cluster)?;
        let generation = self
            .store
            .uncordon_pool(cluster, &caller.actor(), "uncordoned")
            .await?;
        self.read_own_write(generation).await;
        Ok(generation.is_some())
    }

    /// The pool cordon while it holds (any valid token may ask: the astro
    /// CLI's users see why a create is refused).
    pub async fn pool_cordon(
        &self,
        caller: &Caller,
        cluster: Option<Uuid>,
    ) -> Result<Option<Cordon>> {
        caller.authorize(Action::UseToken)?;
        let cluster = self.cluster_id_required(cluster)?;
        Ok(self.store.pool_cordon(cluster).await?.map(Cordon::from))
    }

    /// Lifts cordons whose end passed (each replica, every [`CORDON_SWEEP`]).
    pub async fn expire_cordons(&self) -> Result<()> {
        let expired = self.store.expire_cordons(&Caller::Operator.actor()).await?;
        if !expired.namespaces.is_empty() {
            tracing::info!(namespaces = ?expired.namespaces, "cordons lifted: their end passed");
            self.kube_wake.wake_workers();
        }
        if !expired.pools.is_empty() {
            tracing::info!(clusters = ?expired.pools, "the pool cordon lifted: its end passed");
        }
        Ok(())
    }

    /// Runs [`Self::expire_cordons`] until `stop`.
    pub async fn sweep_cordons(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(CORDON_SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(error) = self.expire_cordons().await {
                tracing::warn!(%error, "could not lift expired cordons; trying again shortly");
            }
        }
    }

    /// A workspace's own quota (`None`: the config's default applies).
    pub async fn set_workspace_quota(
        &self,
        caller: &Caller,
        workspace_id: Uuid,
        quota: Option<i32>,
    ) -> Result<Workspace> {
        caller.authorize(Action::System(Level::Admin))?;
        let max = crate::config::MAX_WORKSPACE_QUOTA;
        if let Some(q) = quota
            && !(0..=i64::from(max)).contains(&i64::from(q))
        {
            return Err(Error::BadInput(format!(
                "maxNamespaces must be between 0 and {max}, or null for no quota of its own; got {q}"
            )));
        }
        self.store
            .set_workspace_quota(workspace_id, quota, &caller.actor())
            .await?
            .map(Workspace::from)
            .ok_or_else(|| Error::NotFound(format!("Workspace {workspace_id} does not exist")))
    }

    /// Quotas and holdings of many workspaces at once (the GraphQL loader's batch).
    pub async fn holdings(&self, workspace_ids: &[Uuid]) -> Result<Vec<Holdings>> {
        Ok(all(self.store.holdings(workspace_ids).await?))
    }
}

impl PoolService {
    /// With several clusters it says which cluster's pool was looked in.
    fn not_in_pool(&self, cluster: Uuid, name: &str) -> Error {
        let settings = self.settings();
        let pool = if settings.many_clusters() {
            match settings.cluster(cluster) {
                Some(c) => format!("cluster {}'s pool", c.name),
                None => format!("the pool of removed cluster {cluster}"),
            }
        } else {
            "the pool".to_owned()
        };
        Error::NotFound(format!(
            "\"{}\" is not a namespace of {pool} (or it is retired)",
            text::excerpt(name)
        ))
    }
}
