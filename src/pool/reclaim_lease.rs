//! A reclaim run's lease on its own row (`reclaim_runs.holder`,
//! `lease_expires_at`), renewed while the run goes on, as client-go's
//! leases are (`crate::lease`). A run whose replica dies or is cut off stops
//! renewing; once the lease expired another replica takes the run over and
//! finishes it (`PoolService::resume_dead_reclaim_run`). The run itself
//! stops between Deployments once it cannot trust its hold.

use crate::lease::{Leadership, LeaseTiming};
use crate::store::Store;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The lease's timing: a dead run is taken over within `duration` plus the
/// takeover check's period (`jobs::reclaim_takeover`).
pub const RUN_LEASE: LeaseTiming = LeaseTiming {
    duration: std::time::Duration::from_secs(15),
    renew_deadline: std::time::Duration::from_secs(10),
    retry: std::time::Duration::from_secs(2),
};

/// This replica's hold on run `id`; renewing until dropped.
pub struct RunLease {
    pub id: i64,
    pub holder: String,
    leadership: Leadership,
    renewer: JoinHandle<()>,
}

impl RunLease {
    /// Holds run `id` (just started or taken over by an attempt begun at
    /// `began`) and renews it every `RUN_LEASE.retry`.
    pub fn hold(store: Store, id: i64, holder: String, began: Instant) -> Self {
        let leadership = Leadership::held_since(began, RUN_LEASE);
        let renewer = {
            let (leadership, holder) = (leadership.clone(), holder.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RUN_LEASE.retry).await;
                    let renewal = store.renew_run_lease(id, &holder, RUN_LEASE.duration);
                    if !leadership.try_with(renewal, RUN_LEASE, "reclaim run").await
                        && !leadership.held()
                    {
                        return;
                    }
                }
            })
        };
        Self {
            id,
            holder,
            leadership,
            renewer,
        }
    }

    /// Whether the run may go on (its lease is trusted).
    pub fn held(&self) -> bool {
        self.leadership.held()
    }
}

impl Drop for RunLease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// A holder name for this process's runs: the replica and a nonce.
pub fn holder() -> String {
    format!(
        "{}/{}",
        super::reclaim::replica_name(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}
