//! A release storm: 1,000 held namespaces released at once (16 at a time,
//! hard deletes through the pool service), then the Kubernetes worker's
//! passes until every one is found clean and offered again, against the fake
//! API server answering each call after BENCH_LATENCY_MS. One namespace in
//! ten keeps a PersistentVolumeClaim and must stay releasing. The baseline,
//! in the same run: the same storm with released namespaces not checked
//! (`checkReleased: false`: free at once).
//!
//!   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench --bench release_storm
//!
//! Knobs: BENCH_NAMESPACES (1000), BENCH_LATENCY_MS (5), BENCH_IN_FLIGHT (16).

#[path = "../tests/it/fake_kube.rs"]
#[allow(dead_code)]
mod fake_kube;

#[path = "support/common.rs"]
mod common;

use common::{knob, with_scratch_database};
use fake_kube::FakeKube;
use futures::stream::{self, StreamExt};
use nspool::config::Settings;
use nspool::domain::Caller;
use nspool::kube::client::KubeClient;
use nspool::kube::reconcile::KubeWorker;
use nspool::pool::PoolService;
use nspool::store::Store;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

struct Storm {
    released_in: Duration,
    /// From the first release until every clean namespace is offered again.
    all_offered_in: Duration,
    passes: usize,
    list_calls: usize,
    held_back: i64,
    /// Per namespace: release to offered again (p50, p99), in ms.
    wait_p50: f64,
    wait_p99: f64,
}

async fn storm(
    check: bool,
    namespaces: usize,
    latency: Duration,
    in_flight: usize,
) -> anyhow::Result<Storm> {
    with_scratch_database(if check { "storm_checked" } else { "storm_unchecked" }, |options| async move {
        let names: Vec<String> = (0..namespaces).map(|i| format!("ns-{i:04}")).collect();
        let config = format!(
            "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{create: false, names: [{}]}}}}}}}}\nnspool: {{kubernetes: {{mode: cluster, checkReleased: {check}}}}}",
            names.join(", ")
        );
        let settings = Arc::new(Settings::parse(&config, &|_| None).map_err(|e| anyhow::anyhow!("{e}"))?);
        let pool = PgPoolOptions::new().max_connections(in_flight as u32 + 4).connect_with(options).await?;
        let service: PoolService = nspool::app::prepare(settings, Store::new(pool.clone())).await?;
        // Verified already: the storm is about releases, not RBAC checks.
        sqlx::query("update pool_namespaces set rbac_state = 'ok', rbac_checked_at = now() + interval '1 day'")
            .execute(&pool)
            .await?;
        let fake = FakeKube::start().await;
        let workspace = Uuid::new_v4();
        let cluster = common::default_cluster(&pool).await?;
        sqlx::query("insert into workspaces (id, label) values ($1, 'storm')").bind(workspace).execute(&pool).await?;
        let mut ids = Vec::new();
        for (i, name) in names.iter().enumerate() {
            fake.create_namespace(name);
            if i % 10 == 0 {
                fake.put("PersistentVolumeClaim", name, "data-worker-0", serde_json::json!({}));
            }
            let id = Uuid::new_v4();
            let (label, release) = (format!("d{i}"), format!("r{i}"));
            service
                .store()
                .insert_deployment(&common::pool_claim(cluster, id, workspace, &label, &release, name))
                .await?
                .ok_or_else(|| anyhow::anyhow!("{name} was not free"))?;
            ids.push(id);
        }
        fake.with(|s| {
            s.latency = latency;
            s.requests.clear();
        });

        let started = Instant::now();
        let service_ref = &service;
        let released: Vec<_> = stream::iter(ids)
            .map(|id| async move { service_ref.delete_deployment(&Caller::Operator, id, Some(true)).await })
            .buffer_unordered(in_flight)
            .collect()
            .await;
        let released_in = started.elapsed();
        if let Some(Err(error)) = released.into_iter().find(Result::is_err) {
            anyhow::bail!("a release failed: {error}");
        }
        let expected_free = namespaces - namespaces.div_ceil(10);
        let worker = KubeWorker::new(&service, KubeClient::for_url(&fake.url, in_flight)?);
        let mut passes = 0;
        loop {
            let free = service.store().available_namespaces(cluster).await?.len();
            if free >= if check { expected_free } else { namespaces } {
                break;
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "the storm never settled");
            worker.pass(false).await?;
            passes += 1;
        }
        let all_offered_in = started.elapsed();
        fake.assert_never_deleted();
        let list_calls = fake.with(|s| s.requests.iter().filter(|(m, _)| m == "GET").count());
        let held_back: i64 = sqlx::query_scalar("select count(*) from pool_namespaces where releasing_since is not null")
            .fetch_one(&pool)
            .await?;
        // Release to offered again, per namespace, from the event log.
        let mut waits: Vec<f64> = sqlx::query_scalar(
            "select extract(epoch from c.at - r.at)::float8 * 1000 from events r
             join events c on c.namespace = r.namespace and c.kind = 'clean'
             where r.kind = 'release'",
        )
        .fetch_all(&pool)
        .await?;
        waits.sort_by(f64::total_cmp);
        let at = |q: f64| waits.get(((waits.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
        let storm = Storm {
            released_in,
            all_offered_in,
            passes,
            list_calls,
            held_back,
            wait_p50: at(0.5),
            wait_p99: at(0.99),
        };
        pool.close().await;
        Ok(storm)
    })
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let namespaces = knob("BENCH_NAMESPACES", 1000);
    let latency = Duration::from_millis(knob("BENCH_LATENCY_MS", 5) as u64);
    let in_flight = knob("BENCH_IN_FLIGHT", 16);
    let unchecked = storm(false, namespaces, latency, in_flight).await?;
    let checked = storm(true, namespaces, latency, in_flight).await?;
    println!(
        "{namespaces} namespaces released at once, {} ms per API call, {in_flight} calls in flight; one in ten keeps a PersistentVolumeClaim",
        latency.as_millis()
    );
    for (name, s) in [
        ("not checked (baseline)", &unchecked),
        ("checked", &checked),
    ] {
        println!(
            "{name:<24} releases answered in {:>6.2} s; clean ones offered again after {:>6.2} s; {} passes, {} list calls; {} held back; release to offered p50 {:.0} ms, p99 {:.0} ms",
            s.released_in.as_secs_f64(),
            s.all_offered_in.as_secs_f64(),
            s.passes,
            s.list_calls,
            s.held_back,
            s.wait_p50,
            s.wait_p99,
        );
    }
    println!(
        "checked / baseline: releases answered ×{:.2}, time until offered ×{:.2}",
        checked.released_in.as_secs_f64() / unchecked.released_in.as_secs_f64(),
        checked.all_offered_in.as_secs_f64() / unchecked.all_offered_in.as_secs_f64()
    );
    Ok(())
}
