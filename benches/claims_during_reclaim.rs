//! Claims while a 100,000-Deployment reclaim backlog drains.
//!
//! A 101,000-namespace pool: 100,000 namespaces held by Deployments
//! soft-deleted 30 days ago, 1,000 free. 16 clients run claim/release cycles
//! on the free 1,000 through the pool service, first alone (baseline), then
//! while a reclaim run frees the backlog, in one run. Reports claim latency
//! p50/p99 and throughput for both, and the ratios.
//!
//!   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench --bench claims_during_reclaim
//!
//! It makes (and drops) a database of its own on that server. Knobs:
//! BENCH_BACKLOG (100000), BENCH_FREE (1000), BENCH_CLIENTS (16), BENCH_SECONDS (15).

#[path = "support/common.rs"]
mod common;

use common::{knob, with_scratch_database};
use nspool::config::Settings;
use nspool::domain::{Caller, Executor};
use nspool::pool::{CreateDeployment, DeploymentInput, PoolService};
use nspool::store::Store;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

struct Phase {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Phase {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }

    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name:<22} claims {:>7}  {:>8.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            self.latencies.len(),
            self.throughput(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
        )
    }
}

/// `clients` tasks, each cycling over its own slice of the free namespaces:
/// claim (measured), then hard delete.
async fn claim_cycles(
    service: &PoolService,
    workspace: Uuid,
    free: usize,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> Phase {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let service = service.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mine: Vec<usize> = (0..free).filter(|i| i % clients == client).collect();
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let ns = format!("free-{:04}", mine[n % mine.len()]);
                    n += 1;
                    let request = CreateDeployment {
                        workspace_id: workspace,
                        input: DeploymentInput {
                            label: Some(format!("c{client}-{n}")),
                            executor: Some(Executor::Celery),
                            namespace: Some(ns),
                            ..DeploymentInput::default()
                        },
                    };
                    let t = Instant::now();
                    let row = service
                        .create_deployment(&Caller::Operator, request)
                        .await
                        .expect("claim");
                    latencies.push(t.elapsed());
                    service
                        .delete_deployment(&Caller::Operator, row.id, Some(true))
                        .await
                        .expect("release");
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client"));
    }
    Phase {
        latencies,
        elapsed: started.elapsed(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let backlog = knob("BENCH_BACKLOG", 100_000);
    let free = knob("BENCH_FREE", 1_000);
    let clients = knob("BENCH_CLIENTS", 16);
    let seconds = knob("BENCH_SECONDS", 15) as u64;
    with_scratch_database("reclaim", |options| async move {
        let names: Vec<String> = (0..backlog)
            .map(|i| format!("held-{i:06}"))
            .chain((0..free).map(|i| format!("free-{i:04}")))
            .collect();
        // The pool is in the database already; the config only needs pool mode on.
        let config = "global: {features: {namespacePools: {enabled: true, namespaces: {names: [placeholder]}}}}";
        let settings = Arc::new(Settings::parse(config, &|_| None).map_err(|e| anyhow::anyhow!("{e}"))?);
        let pool = PgPoolOptions::new().max_connections(clients as u32 + 4).connect_with(options).await?;
        let store = Store::new(pool.clone());
        store.migrate().await?;
        eprintln!("seeding {backlog} soft-deleted Deployments in a {}-namespace pool…", names.len());
        let seeding = Instant::now();
        let workspace = Uuid::new_v4();
        sqlx::query("insert into workspaces (id, label) values ($1, 'bench')").bind(workspace).execute(&pool).await?;
        sqlx::query("insert into pool_namespaces (name, source) select unnest($1::text[]), 'standard'")
            .bind(&names)
            .execute(&pool)
            .await?;
        sqlx::query(
            "insert into deployments (id, workspace_id, label, release_name, namespace, type, executor, deleted_at)
             select gen_random_uuid(), $1, 'old-' || i, 'old-release-' || i, 'held-' || lpad(i::text, 6, '0'),
                    'airflow', 'CeleryExecutor', now() - interval '30 days' - i * interval '1 second'
             from generate_series(0, $2 - 1) as i",
        )
        .bind(workspace)
        .bind(backlog as i64)
        .execute(&pool)
        .await?;
        sqlx::query(
            "update pool_namespaces p set holder_deployment_id = d.id, claimed_at = d.created_at
             from deployments d where d.namespace = p.name",
        )
        .execute(&pool)
        .await?;
        sqlx::query("analyze").execute(&pool).await?;
        eprintln!("seeded in {:.1} s", seeding.elapsed().as_secs_f64());
        let service = PoolService::new(store, settings);

        // Baseline: claims alone.
        let stop = Arc::new(AtomicBool::new(false));
        let timer = {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                stop.store(true, Ordering::Relaxed);
            })
        };
        let alone = claim_cycles(&service, workspace, free, clients, stop).await;
        timer.await?;

        // The same while the backlog is reclaimed.
        let stop = Arc::new(AtomicBool::new(false));
        let reclaim = {
            let service = service.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let report = service.reclaim(&Caller::Operator, 14, false).await;
                let took = started.elapsed();
                stop.store(true, Ordering::Relaxed);
                (report, took)
            })
        };
        let timer = {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                stop.store(true, Ordering::Relaxed);
            })
        };
        let during = claim_cycles(&service, workspace, free, clients, stop).await;
        timer.abort();
        let (report, took) = reclaim.await?;
        let reclaimed = report.map_err(|e| anyhow::anyhow!("{e}"))?.count;

        println!("claims during a reclaim of a {backlog}-Deployment backlog, {clients} clients, {} free namespaces", free);
        println!("{}", alone.line("claims alone"));
        println!("{}", during.line("claims during reclaim"));
        println!(
            "reclaim: {reclaimed} Deployments in {:.1} s ({:.0}/s), alongside the claims",
            took.as_secs_f64(),
            reclaimed as f64 / took.as_secs_f64()
        );
        println!(
            "ratios during/alone: throughput {:.2}, p50 {:.2}, p99 {:.2}",
            during.throughput() / alone.throughput(),
            during.percentile(0.5).as_secs_f64() / alone.percentile(0.5).as_secs_f64(),
            during.percentile(0.99).as_secs_f64() / alone.percentile(0.99).as_secs_f64(),
        );
        pool.close().await;
        anyhow::Ok(())
    })
    .await
}
