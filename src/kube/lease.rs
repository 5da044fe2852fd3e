//! Who does the Kubernetes work: one replica at a time, holding a lease in
//! PostgreSQL as client-go's leader election holds a Lease object. The
//! holder renews it every `retry`; it trusts its hold only until
//! `renew_deadline` after its last renewal began, which is shorter than the
//! lease, so it has stopped before another replica may take the lease over.
//! A replica that crashes, is cut off, or whose database connection hangs
//! stops renewing: within `duration` (plus one `retry`) another takes over.

pub use crate::lease::{Leadership, LeaseTiming};
use crate::store::Store;

impl Leadership {
    /// One attempt to take or renew the lease for `holder`. A failed or
    /// hung attempt changes nothing: the hold runs out by itself.
    /// One lease per cluster: `cluster`'s.
    pub async fn try_once(
        &self,
        store: &Store,
        cluster: uuid::Uuid,
        holder: &str,
        timing: LeaseTiming,
    ) -> bool {
        self.try_with(
            store.take_kube_lease(cluster, holder, timing.duration),
            timing,
            "Kubernetes",
        )
        .await
    }
}
