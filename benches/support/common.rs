//! What the benches share: knobs from the environment, and a database of the
//! bench's own on `DATABASE_URL`'s server, dropped afterwards.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::future::Future;
use std::str::FromStr;

pub async fn with_scratch_database<T, F, Fut>(tag: &str, work: F) -> anyhow::Result<T>
where
    F: FnOnce(PgConnectOptions) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let admin = PgConnectOptions::from_str(&url)?;
    let database = format!("nspool_bench_{tag}_{}", std::process::id());
    let mut conn = admin.connect().await?;
    sqlx::query(&format!("create database {database}"))
        .execute(&mut conn)
        .await?;
    let outcome = work(admin.database(&database)).await;
    sqlx::query(&format!("drop database if exists {database} with (force)"))
        .execute(&mut conn)
        .await?;
    let _ = conn.close().await;
    outcome
}

/// A numeric knob from the environment, or its default.
pub fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A claim of `namespace` by a new CeleryExecutor Deployment: what the
/// benches insert straight through the store.
#[allow(dead_code)] // Not every bench claims straight.
pub fn pool_claim<'a>(
    cluster: uuid::Uuid,
    id: uuid::Uuid,
    workspace_id: uuid::Uuid,
    label: &'a str,
    release_name: &'a str,
    namespace: &'a str,
) -> nspool::store::NewDeployment<'a> {
    nspool::store::NewDeployment {
        id,
        workspace_id,
        label,
        description: None,
        release_name,
        namespace,
        kind: "airflow",
        executor: "CeleryExecutor",
        airflow_version: None,
        runtime_version: None,
        cloud_role: None,
        config: None,
        dag_deployment: None,
        triggerer_replicas: None,
        cluster_id: cluster,
        claim_from_pool: true,
        actor: "bench",
    }
}

/// The default cluster's id (the one cluster of the benches' configs).
#[allow(dead_code)] // Not every bench claims straight.
pub async fn default_cluster(pool: &sqlx::PgPool) -> anyhow::Result<uuid::Uuid> {
    Ok(
        sqlx::query_scalar("select id from clusters where name = 'default'")
            .fetch_one(pool)
            .await?,
    )
}
