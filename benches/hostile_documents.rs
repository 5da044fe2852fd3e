//! The cost of hostile requests, against ordinary ones measured in the same run.
//!
//! The in-process router (no sockets) on a scratch database with a
//! 1,000-namespace pool (500 held) and 100,000 events. Each document of a
//! catalogue of hostile ones (the regression corpus, plus documents of up to
//! 256 KiB in every shape the limits allow or refuse) is sent BENCH_REPEAT
//! times, one at a time; the CPU time of each request is read from the
//! process's CPU clock. Reported: the worst CPU time per request of
//! each document and overall, as a ratio to an ordinary CLI request; then
//! sixteen of the largest answers the limits allow, in parallel, and the
//! process's peak resident memory while they run.
//!
//!   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench hostile_documents
//!
//! Knobs: BENCH_REPEAT (20), BENCH_PARALLEL (16).

#[path = "support/common.rs"]
mod common;
#[path = "support/fixture.rs"]
mod fixture;

use axum::body::Body;
use common::{knob, with_scratch_database};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;
use tower::ServiceExt as _;

/// CPU time the whole process has used (all threads): requests are sent one
/// at a time, so the difference around one is that request's cost.
fn process_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into the struct it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Peak resident memory (VmHWM) in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Starts a new peak (Linux: "5" resets VmHWM to the current RSS).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn nested(open: &str, close: &str, inner: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

fn catalogue() -> Vec<(&'static str, String, Value)> {
    const KIB_256: usize = 256 * 1024 - 64;
    let chain = |links: usize, last: &str| {
        let mut doc = String::from("{ ...F0 }\n");
        for i in 0..links {
            doc.push_str(&format!(
                "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
                i + 1,
                i + 1
            ));
        }
        doc + &format!("fragment F{links} on Query {{ {last} }}")
    };
    let aliases = |n: usize, field: &str| {
        format!(
            "{{ {} }}",
            (0..n)
                .map(|i| format!("a{i}: {field}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    vec![
        (
            "[[[…2,000…]]] in an argument",
            format!(
                "{{ appConfig(clusterId: {}) {{ version }} }}",
                nested("[", "]", "1", 2_000)
            ),
            Value::Null,
        ),
        (
            "[[[…]]] filling 256 KiB",
            nested("[", "]", "", KIB_256 / 2),
            Value::Null,
        ),
        (
            "{a:{a:…}} 1,800 deep",
            format!(
                "{{ appConfig(clusterId: {}) {{ version }} }}",
                nested("{a: ", "}", "1", 1_800)
            ),
            Value::Null,
        ),
        (
            "63 levels deep (allowed nesting)",
            format!(
                "{{ appConfig(clusterId: {}) {{ version }} }}",
                nested("[", "]", "1", 61)
            ),
            Value::Null,
        ),
        (
            "fragment chain ×2, 28 links",
            chain(28, "appConfig { version }"),
            Value::Null,
        ),
        (
            "fragment chain ×2, 60 links",
            chain(60, "appConfig { version }"),
            Value::Null,
        ),
        (
            "fragment chain into a missing fragment",
            chain(28, "appConfig { version }").replace("fragment F24 ", "fragment G24 "),
            Value::Null,
        ),
        (
            "95 × poolEvents(last: 1000)",
            aliases(95, "poolEvents(last: 1000) { id at kind namespace actor reason }"),
            Value::Null,
        ),
        (
            "1,000 fields (at the limit)",
            format!("{{ appConfig {{ {} }} }}", "version ".repeat(998)),
            Value::Null,
        ),
        (
            "128 aliases of appConfig",
            aliases(128, "appConfig { version baseDomain featureFlags }"),
            Value::Null,
        ),
        (
            "15,000 tokens",
            format!("{{ {} }}", "__typename ".repeat(14_990)),
            Value::Null,
        ),
        (
            "a 256 KiB string argument",
            format!(
                "{{ paginatedDeployments(name: \"{}\") {{ id }} }}",
                "x".repeat(KIB_256 - 64)
            ),
            Value::Null,
        ),
        (
            "a 256 KiB comment",
            format!("#{}\n{{ __typename }}", "{".repeat(KIB_256)),
            Value::Null,
        ),
        (
            "GraphiQL's introspection",
            include_str!("../tests/fixtures/introspection.graphql").to_owned(),
            Value::Null,
        ),
        (
            "variables 64 deep",
            "mutation($v: JSON!) { updateDeployment(deploymentUuid: \"00000000-0000-0000-0000-000000000000\", payload: $v) { id } }".to_owned(),
            json!({"v": serde_json::from_str::<Value>(&nested("[", "]", "1", 63)).unwrap()}),
        ),
        (
            "poolNamespaces, every field, all events",
            "{ poolNamespaces { name state source addedAt claimedAt retiredAt reclaimableAt rbacState rbacMissing kubeError deployment { id label releaseName namespace workspace { id label } } events(last: 20) { id at kind actor reason } } }".to_owned(),
            Value::Null,
        ),
        (
            "poolEvents(last: 1000), every field",
            "{ poolEvents(last: 1000) { id at kind namespace deploymentId releaseName workspaceId actor reason } }".to_owned(),
            Value::Null,
        ),
    ]
}

/// What an ordinary client sends: the CLI's version probe, pool and lists.
fn ordinary() -> Vec<(&'static str, String, Value)> {
    vec![
        (
            "version probe",
            "query AppConfig { appConfig { version baseDomain } }".into(),
            Value::Null,
        ),
        (
            "availableNamespaces",
            "{ availableNamespaces { name } }".into(),
            Value::Null,
        ),
        (
            "paginatedDeployments(take: -1)",
            "{ paginatedDeployments(take: -1) { id label releaseName namespace workspace { id label } urls { type url } createdAt } }".into(),
            Value::Null,
        ),
    ]
}

async fn send(router: &axum::Router, token: &str, query: &str, variables: &Value) -> (u16, usize) {
    let (status, bytes) = send_read(router, token, query, variables).await;
    (status, bytes.len())
}

async fn send_read(
    router: &axum::Router,
    token: &str,
    query: &str,
    variables: &Value,
) -> (u16, axum::body::Bytes) {
    let body = json!({"query": query, "variables": variables}).to_string();
    let request = http::Request::post("/v1")
        .header("content-type", "application/json")
        .header("authorization", token)
        .body(Body::from(body))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, bytes)
}

/// The worst CPU time of `repeat` sends, the answer's size and what it said.
async fn worst_cpu(
    router: &axum::Router,
    token: &str,
    query: &str,
    variables: &Value,
    repeat: usize,
) -> (Duration, usize, u16) {
    let mut worst = Duration::ZERO;
    let mut last = (0, axum::body::Bytes::new());
    for _ in 0..repeat {
        let before = process_cpu();
        last = send_read(router, token, query, variables).await;
        worst = worst.max(process_cpu() - before);
    }
    if std::env::var_os("BENCH_SHOW").is_some() {
        let text = String::from_utf8_lossy(&last.1);
        let tail: String = text
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        println!(
            "    {} … {tail}",
            text.chars().take(300).collect::<String>()
        );
    }
    (worst, last.1.len(), last.0)
}

fn main() -> anyhow::Result<()> {
    let repeat = knob("BENCH_REPEAT", 20);
    let parallel = knob("BENCH_PARALLEL", 16);
    let setup = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    setup.block_on(with_scratch_database("hostile", |options| async move {
        let pool = PgPoolOptions::new().max_connections(16).connect_with(options).await?;
        let fixture::Fixture { service, admin, .. } = fixture::pool_with_history(&pool).await?;
        let router = nspool::http::router(nspool::app::state(service.clone()));

        let mut baseline = Duration::ZERO;
        let mut rows = Vec::new();
        for (name, query, variables) in ordinary() {
            let (cpu, bytes, status) = worst_cpu(&router, &admin, &query, &variables, repeat).await;
            baseline = baseline.max(cpu);
            rows.push((name, cpu, bytes, status));
        }
        println!("ordinary requests (worst CPU of {repeat}):");
        for (name, cpu, bytes, status) in &rows {
            println!("  {name:<44} {:>8.3} ms  {bytes:>8} B  HTTP {status}", cpu.as_secs_f64() * 1e3);
        }
        println!("baseline: {:.3} ms (the slowest ordinary request)\n", baseline.as_secs_f64() * 1e3);

        println!("hostile documents (worst CPU of {repeat}, ratio to the baseline):");
        let mut worst = (Duration::ZERO, "");
        for (name, query, variables) in catalogue() {
            let (cpu, bytes, status) = worst_cpu(&router, &admin, &query, &variables, repeat).await;
            if cpu > worst.0 {
                worst = (cpu, name);
            }
            println!(
                "  {name:<44} {:>8.3} ms  ×{:>5.2}  {:>7} B in  {bytes:>8} B out  HTTP {status}",
                cpu.as_secs_f64() * 1e3,
                cpu.as_secs_f64() / baseline.as_secs_f64(),
                query.len(),
            );
        }
        println!(
            "worst: {:.3} ms ({}), ×{:.2} the baseline\n",
            worst.0.as_secs_f64() * 1e3,
            worst.1,
            worst.0.as_secs_f64() / baseline.as_secs_f64()
        );

        // The largest answers the limits allow, sixteen at once.
        let largest = [
            "{ poolEvents(last: 1000) { id at kind namespace deploymentId releaseName workspaceId actor reason } }".to_owned(),
            format!("{{ poolNamespaces {{ {} }} }}", (0..95).map(|i| format!("n{i}: name")).collect::<Vec<_>>().join(" ")),
        ];
        for query in &largest {
            let (status, bytes) = send(&router, &admin, query, &Value::Null).await;
            println!("largest allowed answer: {bytes} B (HTTP {status}) for {}…", &query[..60]);
        }
        let before = peak_rss_mib();
        reset_peak_rss();
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..parallel)
            .map(|i| {
                let router = router.clone();
                let admin = admin.clone();
                let query = largest[i % largest.len()].clone();
                tokio::spawn(async move { send(&router, &admin, &query, &Value::Null).await })
            })
            .collect();
        for task in tasks {
            task.await?;
        }
        println!(
            "{parallel} largest allowed answers in parallel: {:.0} ms, peak RSS {:.1} MiB (before: {before:.1} MiB, the bench's own setup included)",
            started.elapsed().as_secs_f64() * 1e3,
            peak_rss_mib()
        );
        Ok(())
    }))
}
