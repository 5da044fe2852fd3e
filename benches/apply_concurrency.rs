//! Applying a 1,000-namespace pool (Namespace, Role, RoleBinding each) against
//! the fake API server with a per-request latency: bounded concurrency (16
//! requests in flight) against one request at a time, in one run.
//!
//!   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench --bench apply_concurrency
//!
//! Knobs: BENCH_NAMESPACES (1000), BENCH_LATENCY_MS (5), BENCH_IN_FLIGHT (16).

#[path = "../tests/it/fake_kube.rs"]
#[allow(dead_code)]
mod fake_kube;

#[path = "support/common.rs"]
mod common;

use common::{knob, with_scratch_database};
use fake_kube::FakeKube;
use nspool::config::Settings;
use nspool::kube::client::KubeClient;
use nspool::kube::reconcile::KubeWorker;
use nspool::pool::PoolService;
use nspool::store::Store;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn apply_all(
    service: &PoolService,
    latency: Duration,
    in_flight: usize,
) -> anyhow::Result<(Duration, usize, usize)> {
    service.store().request_resync().await?;
    let fake = FakeKube::start().await;
    fake.with(|s| s.latency = latency);
    let worker = KubeWorker::new(service, KubeClient::for_url(&fake.url, in_flight)?);
    let started = Instant::now();
    let report = worker.pass(false).await?;
    let took = started.elapsed();
    fake.assert_never_deleted();
    let requests = fake.with(|s| s.requests.len());
    Ok((took, report.applied, requests))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count = knob("BENCH_NAMESPACES", 1_000);
    let latency = Duration::from_millis(knob("BENCH_LATENCY_MS", 5) as u64);
    let in_flight = knob("BENCH_IN_FLIGHT", 16);
    with_scratch_database("apply", |options| async move {
        let names: Vec<String> = (0..count).map(|i| format!("team-{i:04}")).collect();
        let config = format!(
            "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{create: true, names: [{}]}}}}}}}}",
            names.join(", ")
        );
        let settings = Arc::new(Settings::parse(&config, &|_| None).map_err(|e| anyhow::anyhow!("{e}"))?);
        let pool = PgPoolOptions::new().max_connections(20).connect_with(options).await?;
        let store = Store::new(pool.clone());
        store.migrate().await?;
        let service = PoolService::new(store, settings);
        service.sync_pool().await.map_err(|e| anyhow::anyhow!("{e}"))?;

        let (bounded, applied_b, requests_b) = apply_all(&service, latency, in_flight).await?;
        let (serial, applied_s, requests_s) = apply_all(&service, latency, 1).await?;
        println!("applying {count} namespaces (3 objects each), {} ms per API request", latency.as_millis());
        println!("bounded ({in_flight} in flight): {:>7.2} s  ({applied_b} applied, {requests_b} requests)", bounded.as_secs_f64());
        println!("one at a time:        {:>7.2} s  ({applied_s} applied, {requests_s} requests)", serial.as_secs_f64());
        println!("speed-up: {:.1}x", serial.as_secs_f64() / bounded.as_secs_f64());
        pool.close().await;
        anyhow::Ok(())
    })
    .await
}
