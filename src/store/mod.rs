//! Postgres: all SQL lives in this module, one file per aggregate.
//! Constraint names are mapped to domain errors here, once.

mod clusters;
mod connections;
mod cordons;
mod deployments;
mod drift;
mod events;
mod history;
pub mod kube_events;
mod kube_lease;
mod kube_work;
mod pool;
mod pool_pages;
mod pool_sync;
mod reclaim_runs;
mod replica_configs;
mod sessions;
mod tokens;
mod workspaces;

pub use clusters::{ClusterRow, WantedCluster};
pub use connections::{
    ACQUIRE_TIMEOUT, LOOKUP_TIMEOUT, WAITS_TIMED_OUT, spawn_in_budget, with_connection_budget,
};
pub use cordons::{CordonChange, ExpiredCordons};
pub use deployments::{
    DeploymentRow, DeploymentUpdate, ListFilter, NewDeployment, PoolChange, Release,
};
pub use drift::{DriftFound, Drifted};
pub use events::EventRow;
pub use history::StateChange;
pub use kube_events::LoggedEvent;
pub use kube_work::{ClusterReportRow, KubeWorkRow, WorkFilter};
pub use pool::{
    HealthFigures, NamespaceHolder, PoolCordonRow, PoolNamespaceRow, PoolOffer, PoolStateCounts,
    PoolSummary,
};
pub use pool_sync::{PoolListing, PoolSyncReport, SYNC_CHANNEL, SyncNotice};
pub use reclaim_runs::{NewRun, ReclaimRunRow, RunStart};
pub use replica_configs::{LIVE_SECONDS, ReplicaConfig};
pub use tokens::TokenRow;
pub use workspaces::{HoldingsRow, RoleBindingRow, WorkspaceRow};

use sqlx::PgPool;

/// How long closing the pools waits for connections still on their way back.
pub const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the release name is taken")]
    ReleaseNameTaken,
    #[error("the label is taken by a live Deployment of the workspace")]
    LabelTaken,
    #[error("the namespace is held by another Deployment")]
    NamespaceTaken,
    #[error("the workspace does not exist")]
    WorkspaceNotFound,
    /// The workspace already holds its quota of namespaces.
    #[error("the workspace holds {held} namespaces; its quota is {quota}")]
    QuotaReached { quota: i64, held: i64 },
    #[error("a value is outside what the database accepts ({0})")]
    CheckViolation(String),
    /// Text PostgreSQL cannot hold (NUL, or not in the database encoding).
    #[error("a text value cannot be stored")]
    Untranslatable,
    /// The database cannot be reached (down, restarting, connection cut).
    #[error("the database is unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A pool sync held back: another live replica still asks for the pool
    /// config in force, and this one's differs.
    #[error(
        "replica {replica} runs the pool config in force and this replica's pool config differs; not applied while it does (replicas must agree: docs/operations.md, \"Replicas with different configs\")"
    )]
    HeldBack { replica: String },
    /// A cluster the config no longer lists still has namespaces that
    /// Deployments hold (`cluster/namespace`, the first 50).
    #[error(
        "a cluster removed from the config still has namespaces held by Deployments (live or soft-deleted): {}; hard-delete those Deployments (or keep the cluster listed) first; nothing was changed",
        namespaces.join(", ")
    )]
    ClusterHeld { namespaces: Vec<String> },
    /// A config of one cluster without `nspool.clusterId` on a database that
    /// serves several, none of its name: which one it is, is not guessed.
    #[error(
        "nspool.clusterId: the config names one cluster without an id and the database serves several ({}); set nspool.clusterId to the id of the one this config is for, or list them all under nspool.clusters; nothing was changed",
        clusters.join(", ")
    )]
    ClusterAmbiguous { clusters: Vec<String> },
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        let constraint = error
            .as_database_error()
            .and_then(|e| e.constraint())
            .map(str::to_owned);
        match constraint.as_deref() {
            Some("workspaces_namespace_quota_reached") => {
                let (quota, held) = quota_detail(&error).unwrap_or((0, 0));
                Error::QuotaReached { quota, held }
            }
            Some("deployments_release_name_key") => Error::ReleaseNameTaken,
            Some("deployments_live_label_key") => Error::LabelTaken,
            Some("deployments_namespace_key") => Error::NamespaceTaken,
            Some("deployments_workspace_fk" | "api_tokens_workspace_fk") => {
                Error::WorkspaceNotFound
            }
            Some(name) if name.ends_with("_check") || name.ends_with("_length") => {
                Error::CheckViolation(name.to_owned())
            }
            _ if is_untranslatable(&error) => Error::Untranslatable,
            _ if is_unavailable(&error) => Error::Unavailable(error),
            _ => Error::Database(error),
        }
    }
}

impl Error {
    /// 42P01 undefined_table: a statement met a database without nspool's
    /// tables (not migrated, or another application's).
    pub fn is_undefined_table(&self) -> bool {
        match self {
            Error::Database(error) | Error::Unavailable(error) => error
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|code| code == "42P01"),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Characters of a Kubernetes failure kept in the database (`left(…, 1024)`
/// in the statements that store one).
pub const MAX_ERROR_CHARS: usize = 1024;

/// The quota trigger's detail: "<quota> <held>".
fn quota_detail(error: &sqlx::Error) -> Option<(i64, i64)> {
    let detail = error
        .as_database_error()?
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?
        .detail()?;
    let (quota, held) = detail.split_once(' ')?;
    Some((quota.parse().ok()?, held.parse().ok()?))
}

/// 22021 character_not_in_repertoire, 22P05 untranslatable_character: the
/// service refuses these first; this keeps a miss from becoming an ERROR log.
fn is_untranslatable(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "22021" || c == "22P05")
}

/// Errors that mean "no database right now" rather than "this statement failed".
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        // 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now,
        // 08xxx connection, 53xxx insufficient resources (too many connections),
        // 57014 a statement timeout, 55P03 a lock timeout.
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("57P")
                || c.starts_with("08")
                || c.starts_with("53")
                || c == "57014"
                || c == "55P03"
        }),
        _ => false,
    }
}

/// `application_name` of nspool's connections, so that a DBA can tell its
/// backends apart in `pg_stat_activity` (a URL that names one keeps its own).
pub const APPLICATION_NAME: &str = "nspool";
/// The same for the session connections (LISTEN, the pool-copy heartbeat).
pub const SESSION_APPLICATION_NAME: &str = "nspool-session";

fn named(options: PgConnectOptions, name: &str) -> PgConnectOptions {
    if options.get_application_name().is_some() {
        options
    } else {
        options.application_name(name)
    }
}

/// The database handle shared by every request.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// Session work (LISTEN, session advisory locks): PostgreSQL itself, also
    /// when `pool` goes through PgBouncer in transaction mode. Its connections
    /// are taken out of it (detached) and kept by their user.
    direct: PgPool,
}

/// The migrations in `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// One pool for everything (tests, benchmarks, a database without a pooler).
    pub fn new(pool: PgPool) -> Self {
        Self {
            direct: pool.clone(),
            pool,
        }
    }

    /// A pool that fails fast when the database is away, so requests get a
    /// clear error instead of hanging; `direct` for session work (`None`: the same server).
    pub fn connect_lazy(
        options: PgConnectOptions,
        direct: Option<PgConnectOptions>,
        max_connections: u32,
    ) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(named(options.clone(), APPLICATION_NAME));
        let direct = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(named(direct.unwrap_or(options), SESSION_APPLICATION_NAME));
        Self { pool, direct }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Connections straight to PostgreSQL, for LISTEN and session locks.
    pub fn direct(&self) -> &PgPool {
        &self.direct
    }

    /// Closes both pools, each connection said goodbye to, and waits (at
    /// most [`CLOSE_WAIT`]) until none is left: sqlx's `close` may return
    /// while a connection is still on its way back to the pool, and one that
    /// arrives after it stays open (sqlx issue 3217, fixed after 0.8.6), so
    /// it is closed again until the pool is empty. A database server stopped
    /// right after then tells no client to terminate.
    pub async fn close(&self) {
        for pool in [&self.pool, &self.direct] {
            let deadline = std::time::Instant::now() + CLOSE_WAIT;
            loop {
                pool.close().await;
                if pool.size() == 0 || std::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// Whether every embedded migration is applied (reads only; an error
    /// when the database has no migrations table at all).
    pub async fn migrated(&self) -> Result<bool> {
        let applied: i64 = sqlx::query_scalar(
            "select count(*) from _sqlx_migrations where success and version = any($1)",
        )
        .bind(MIGRATOR.iter().map(|m| m.version).collect::<Vec<i64>>())
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(applied as usize == MIGRATOR.iter().count())
    }

    /// Ready: the database answers and every embedded migration is applied
    /// (the statement may run 2 s at most, for this transaction only).
    pub async fn ready(&self) -> Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query("select set_config('statement_timeout', '2000ms', true)")
            .execute(&mut *tx)
            .await?;
        let applied: i64 = sqlx::query_scalar(
            "select count(*) from _sqlx_migrations where success and version = any($1)",
        )
        .bind(MIGRATOR.iter().map(|m| m.version).collect::<Vec<i64>>())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(applied as usize == MIGRATOR.iter().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn connections_are_named_unless_the_url_names_them() {
        let plain = PgConnectOptions::from_str("postgres://u@h/d").unwrap();
        assert_eq!(
            named(plain, APPLICATION_NAME).get_application_name(),
            Some("nspool")
        );
        let own = PgConnectOptions::from_str("postgres://u@h/d?application_name=mine").unwrap();
        assert_eq!(
            named(own, APPLICATION_NAME).get_application_name(),
            Some("mine")
        );
    }
}
