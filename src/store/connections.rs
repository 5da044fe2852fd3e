//! Database connections handed out per request: every statement of the store
//! takes its connection here, and inside a request (a scope opened by
//! [`with_connection_budget`]) that also takes one of the request's few
//! connection slots. One request therefore never holds more than its budget
//! of the pool, however many resolvers its document runs at once; work
//! outside a request (reclaim, the Kubernetes worker) is not limited here.

use super::{Error, Result, Store};
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::{Postgres, Transaction};
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a statement waits for a slot of its request, and for a
/// connection of the pool: past it, the database counts as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Statements that gave up waiting for a slot of their request (all
/// requests of the process; `nspool_request_database_waits_timed_out_total`).
pub static WAITS_TIMED_OUT: std::sync::LazyLock<prometheus_client::metrics::counter::Counter> =
    std::sync::LazyLock::new(Default::default);

tokio::task_local! {
    static REQUEST_SLOTS: Arc<Semaphore>;
}

/// How long a credential lookup may wait for the database (a lock on its
/// table, say) before it is cancelled.
pub const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs `work` (one request) with at most `connections` database connections at once.
pub async fn with_connection_budget<F: Future>(connections: usize, work: F) -> F::Output {
    REQUEST_SLOTS
        .scope(Arc::new(Semaphore::new(connections.max(1))), work)
        .await
}

/// Spawns `work` inside the current request's connection budget (the
/// GraphQL data loaders run their batches in tasks of their own).
pub fn spawn_in_budget<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match REQUEST_SLOTS.try_with(Arc::clone) {
        Ok(slots) => tokio::spawn(REQUEST_SLOTS.scope(slots, work)),
        Err(_) => tokio::spawn(work),
    }
}

/// The current request's slot, if this runs inside one.
async fn request_slot() -> Result<Option<OwnedSemaphorePermit>> {
    let Ok(slots) = REQUEST_SLOTS.try_with(Arc::clone) else {
        return Ok(None);
    };
    match tokio::time::timeout(ACQUIRE_TIMEOUT, slots.acquire_owned()).await {
        Ok(Ok(permit)) => Ok(Some(permit)),
        // Closed never happens (the semaphore is private); time out is the case.
        _ => {
            WAITS_TIMED_OUT.inc();
            Err(Error::Unavailable(sqlx::Error::PoolTimedOut))
        }
    }
}

/// A pooled connection and the request slot it uses.
pub struct Conn {
    conn: PoolConnection<Postgres>,
    _slot: Option<OwnedSemaphorePermit>,
}

impl Deref for Conn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

/// A transaction and the request slot its connection uses.
pub struct Tx {
    tx: Transaction<'static, Postgres>,
    _slot: Option<OwnedSemaphorePermit>,
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }
}

impl Deref for Tx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl Store {
    /// A connection for one statement (held until the value is dropped).
    pub(crate) async fn conn(&self) -> Result<Conn> {
        let slot = request_slot().await?;
        let conn = self.pool.acquire().await?;
        Ok(Conn { conn, _slot: slot })
    }

    /// A transaction on one connection of the request's budget.
    pub(crate) async fn begin(&self) -> Result<Tx> {
        let slot = request_slot().await?;
        let tx = self.pool.begin().await?;
        Ok(Tx { tx, _slot: slot })
    }

    /// A transaction whose statements give up after [`LOOKUP_TIMEOUT`]:
    /// for reads every request makes (credential lookups), which must never
    /// wait out a lock on their table (a restore, a `lock table`) holding a
    /// connection and a credential-check slot. Set for this transaction
    /// only, so it follows the statements through PgBouncer.
    pub(crate) async fn begin_bounded(&self) -> Result<Tx> {
        let mut tx = self.begin().await?;
        sqlx::query("select set_config('statement_timeout', $1, true)")
            .bind(format!("{}ms", LOOKUP_TIMEOUT.as_millis()))
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_waits_for_its_own_slots_and_then_gives_up() {
        with_connection_budget(2, async {
            let first = request_slot().await.unwrap();
            let second = request_slot().await.unwrap();
            assert!(first.is_some() && second.is_some());
            tokio::time::pause();
            let third = request_slot().await;
            assert!(
                matches!(third, Err(Error::Unavailable(_))),
                "a third waits, then fails"
            );
            drop(first);
            assert!(
                request_slot().await.unwrap().is_some(),
                "a freed slot is taken again"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn work_outside_a_request_takes_no_slot_and_spawned_work_keeps_its_request() {
        assert!(request_slot().await.unwrap().is_none());
        let inside = with_connection_budget(1, async {
            let held = request_slot().await.unwrap();
            let spawned = spawn_in_budget(async {
                tokio::time::pause();
                request_slot().await.is_err()
            });
            let waited_out = spawned.await.unwrap();
            drop(held);
            waited_out
        })
        .await;
        assert!(
            inside,
            "a spawned batch shares (and waits on) its request's slots"
        );
    }
}
