//! Pool hygiene in the service: whether this replica's releases leave a
//! namespace `releasing` until it is found clean, and freeing one by hand.
//! (The check itself is Kubernetes work: `kube::reconcile`.)

use super::{Error, PoolService, Result};
use crate::domain::roles::Level;
use crate::domain::{Action, Caller, text};
use std::sync::atomic::Ordering;

impl PoolService {
    /// Whether this replica's releases leave a namespace `releasing`.
    pub fn checks_released(&self) -> bool {
        self.checks_released.load(Ordering::Relaxed)
    }

    /// Whether this replica works with a cluster: Kubernetes not off, and
    /// (in `auto` mode) one found. With one, a namespace is offered only once
    /// it has been seen ready there.
    pub fn kubernetes_on(&self) -> bool {
        self.settings().service.kubernetes_mode != crate::config::KubernetesMode::Off
            && !self.no_cluster.load(Ordering::Relaxed)
    }

    /// No cluster here after all (`auto` mode found none): this replica's
    /// releases free at once, as with Kubernetes off.
    pub fn without_kubernetes(&self) {
        self.no_cluster.store(true, Ordering::Relaxed);
        self.checks_released.store(false, Ordering::Relaxed);
    }

    /// `serve`, once it knows whether it has a cluster: with one, namespaces
    /// never seen ready there are pending (not offered until applied or
    /// verified); without, they are offered unchecked.
    pub async fn require_readiness(&self) -> Result<()> {
        let generation = self.store.require_readiness(self.kubernetes_on()).await?;
        self.read_own_write(generation).await;
        Ok(())
    }

    /// After a reload: released namespaces are checked when the new config
    /// says so and this replica has a cluster.
    pub(crate) fn recheck_released(&self) {
        let checks = self.settings().checks_released() && !self.no_cluster.load(Ordering::Relaxed);
        self.checks_released.store(checks, Ordering::Relaxed);
    }

    /// Frees a releasing namespace at once (system admins); the event keeps
    /// the actor and the reason.
    pub async fn mark_namespace_clean(
        &self,
        caller: &Caller,
        cluster: Option<uuid::Uuid>,
        name: &str,
        reason: &str,
    ) -> Result<()> {
        caller.authorize(Action::System(Level::Admin))?;
        let cluster = self.cluster_id_known(cluster).await?;
        text::check("name", name, text::max::FILTER)?;
        text::check("reason", reason, text::max::REASON)?;
        if reason.trim().is_empty() {
            return Err(Error::BadInput(
                "Say why the namespace is clean (reason): the event keeps it".into(),
            ));
        }
        match self
            .store
            .mark_clean(cluster, name, &caller.actor(), reason.trim())
            .await?
        {
            Some(generation) => {
                self.read_own_write(generation).await;
                Ok(())
            }
            None => Err(Error::NotFound(format!(
                "\"{}\" is not a releasing pool namespace",
                text::excerpt(name)
            ))),
        }
    }
}
