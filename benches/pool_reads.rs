//! Pool reads from memory against PostgreSQL answering the same question, in one run.
//!
//! For each pool size (100, 1,000, 10,000, 100,000 namespaces, all free) a
//! scratch database and `nspool serve` as its own process (release build):
//!   - PostgreSQL alone: 16 clients run the free-namespace statement straight
//!     through sqlx (`select array(select name … where <offered> order by name)`);
//!   - nspool: 16 clients POST the CLI's `availableNamespaces` document;
//!
//! reported as requests/s, the ratio, per-request time, peak RSS.
//!
//! Then, at 1,000 namespaces with three `nspool serve` replicas:
//!   - claim/release cycles through the API (createDeployment, hard
//!     deleteDeployment; through one replica, then round-robin over the
//!     three) against the claim and release statements run straight;
//!   - cross-replica staleness: a claim answered by one replica, then the
//!     other two polled until they stop offering the name (p50/p99);
//!   - revoke propagation: a token used on all three, revoked through one,
//!     the other two polled until they refuse it (p50/p99).
//!
//!   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench pool_reads
//!
//! Knobs: BENCH_CLIENTS (16), BENCH_SECONDS (5), BENCH_SIZES (100,1000,10000,100000),
//! BENCH_PROBES (200 claims for staleness, 50 revokes).

#[path = "support/common.rs"]
mod common;
#[path = "support/load.rs"]
mod load;

use common::{knob, with_scratch_database};
use load::{Run, load, peak_rss_mib};
use nspool::store::Store;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const AVAILABLE: &str = "query availableNamespaces {\n  availableNamespaces { name }\n}";
const CREATE: &str = "mutation($ws: Uuid!, $label: String!, $ns: String) { createDeployment(workspaceUuid: $ws, label: $label, executor: CeleryExecutor, namespace: $ns) { id } }";
const DELETE: &str = "mutation($id: Uuid!) { deleteDeployment(deploymentUuid: $id, deploymentHardDelete: true) { id } }";
const REVOKE: &str = "mutation($id: Uuid!) { revokeToken(id: $id) }";

/// One `nspool serve` process on the scratch database.
struct Serve {
    child: Child,
    endpoint: String,
}

impl Serve {
    fn start(config: &str, options: &PgConnectOptions, connections: usize) -> anyhow::Result<Self> {
        let url = std::env::var("DATABASE_URL")?;
        let (prefix, _) = url
            .rsplit_once('/')
            .ok_or_else(|| anyhow::anyhow!("DATABASE_URL needs a database"))?;
        let database = options.get_database().unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "nspool-bench-{}-{}.yaml",
            std::process::id(),
            Uuid::new_v4()
        ));
        std::fs::write(&path, config)?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_nspool"))
            .args(["serve", "--config"])
            .arg(&path)
            .env("DATABASE_URL", format!("{prefix}/{database}"))
            .env("NSPOOL_LISTEN", "127.0.0.1:0")
            .env("NSPOOL_DATABASE_MAX_CONNECTIONS", connections.to_string())
            .env("RUST_LOG", "warn,nspool::cli=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
                }
            }
        });
        let address = rx.recv_timeout(Duration::from_secs(120))?;
        let _ = std::fs::remove_file(&path);
        Ok(Self {
            child,
            endpoint: format!("http://{address}/v1"),
        })
    }

    fn peak_rss(&self) -> f64 {
        peak_rss_mib(self.child.id())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // SAFETY: kill with a valid pid and signal has no memory effects.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// POSTs a document; the answer's bytes (not parsed: the client's work stays small).
async fn post(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> axum::body::Bytes {
    http.post(endpoint)
        .header("authorization", token)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("request")
        .bytes()
        .await
        .expect("body")
}

async fn gql(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    let body: Value =
        serde_json::from_slice(&post(http, endpoint, token, query, variables).await).expect("json");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

fn config(names: &[String]) -> String {
    format!(
        "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{names: [{}]}}}}}}}}\nnspool: {{kubernetes: {{mode: 'off'}}}}",
        names.join(", ")
    )
}

fn quantiles(mut values: Vec<Duration>) -> (f64, f64) {
    values.sort();
    let at = |q: f64| {
        values
            .get(((values.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    };
    (at(0.5), at(0.99))
}

/// A token made through the CLI's path (the service, on the database).
async fn token(
    options: &PgConnectOptions,
    role: nspool::domain::Role,
) -> anyhow::Result<(String, Uuid)> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    let settings = Arc::new(
        nspool::config::Settings::parse("", &|_| None).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let service = nspool::pool::PoolService::new(Store::new(pool.clone()), settings);
    let made = service
        .create_token(&nspool::domain::Caller::Operator, role, None, "bench")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    pool.close().await;
    Ok((made.token, made.record.id))
}

/// Reads at one pool size: (PostgreSQL alone, nspool, nspool's peak RSS).
async fn reads_at(size: usize, clients: usize, seconds: u64) -> anyhow::Result<(Run, Run, f64)> {
    with_scratch_database(&format!("reads{size}"), |options| async move {
        let names: Vec<String> = (0..size).map(|i| format!("ns-{i:06}")).collect();
        let serve = Serve::start(&config(&names), &options, clients + 2)?;
        let (admin, _) = token(&options, nspool::domain::Role::SYSTEM_ADMIN).await?;
        let pool = PgPoolOptions::new()
            .max_connections(clients as u32)
            .connect_with(options.clone())
            .await?;
        let store = Store::new(pool.clone());
        let cluster = common::default_cluster(&pool).await?;
        assert_eq!(store.available_namespaces(cluster).await?.len(), size);
        let direct = {
            let store = store.clone();
            load(clients, seconds, move |_, _| {
                let store = store.clone();
                async move {
                    store
                        .available_namespaces(cluster)
                        .await
                        .expect("available");
                }
            })
            .await
        };
        let http = reqwest::Client::new();
        let endpoint = Arc::new(serve.endpoint.clone());
        let first = gql(&http, &endpoint, &admin, AVAILABLE, Value::Null).await;
        assert_eq!(
            first["availableNamespaces"].as_array().map(Vec::len),
            Some(size)
        );
        let api = load(clients, seconds, move |_, _| {
            let (http, endpoint, admin) = (http.clone(), endpoint.clone(), admin.clone());
            async move {
                let body = post(&http, &endpoint, &admin, AVAILABLE, Value::Null).await;
                assert!(
                    body.starts_with(b"{\"data\""),
                    "{}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                );
            }
        })
        .await;
        let rss = serve.peak_rss();
        drop(serve);
        pool.close().await;
        Ok((direct, api, rss))
    })
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = knob("BENCH_CLIENTS", 16);
    let seconds = knob("BENCH_SECONDS", 5) as u64;
    let probes = knob("BENCH_PROBES", 200);
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "100,1000,10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();

    println!("{clients} clients, {seconds} s per measurement, all namespaces free");
    println!(
        "| namespaces | PostgreSQL alone | nspool | ratio | nspool per request (p50 / p99) | PostgreSQL per request (p50 / p99) | nspool peak RSS |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for size in sizes {
        let (direct, api, rss) = reads_at(size, clients, seconds).await?;
        println!(
            "| {size} | {:.0}/s | {:.0}/s | ×{:.2} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {rss:.1} MiB |",
            direct.rate(),
            api.rate(),
            api.rate() / direct.rate(),
            api.p(0.5),
            api.p(0.99),
            direct.p(0.5),
            direct.p(0.99),
        );
    }

    with_scratch_database("replicas", |options| async move {
        let names: Vec<String> = (0..1000).map(|i| format!("ns-{i:04}")).collect();
        let replicas = [
            Serve::start(&config(&names), &options, clients + 2)?,
            Serve::start(&config(&names), &options, clients + 2)?,
            Serve::start(&config(&names), &options, clients + 2)?,
        ];
        let (admin, _) = token(&options, nspool::domain::Role::SYSTEM_ADMIN).await?;
        let pool = PgPoolOptions::new().max_connections(clients as u32 + 2).connect_with(options.clone()).await?;
        let store = Store::new(pool.clone());
        let workspace = Uuid::new_v4();
        let cluster = common::default_cluster(&pool).await?;
        sqlx::query("insert into workspaces (id, label) values ($1, 'bench')").bind(workspace).execute(&pool).await?;
        let per_client: Arc<Vec<Vec<String>>> = Arc::new(
            (0..clients)
                .map(|c| names.iter().enumerate().filter(|(i, _)| i % clients == c).map(|(_, n)| n.clone()).collect())
                .collect(),
        );

        // The claim and release statements, straight.
        let direct = {
            let (store, per_client) = (store.clone(), per_client.clone());
            load(clients, seconds, move |client, n| {
                let (store, per_client) = (store.clone(), per_client.clone());
                async move {
                    let ns = &per_client[client][n % per_client[client].len()];
                    let id = Uuid::new_v4();
                    let (release, label) = (format!("d-{client}-{n}"), format!("direct-{client}-{n}"));
                    let new = common::pool_claim(cluster, id, workspace, &label, &release, ns);
                    store.insert_deployment(&new).await.expect("claim").expect("free");
                    store.hard_delete_deployment(id, None, nspool::store::Release { kind: "release", actor: "bench", reason: "bench", check_released: false }).await.expect("release");
                }
            })
            .await
        };
        let http = reqwest::Client::new();
        let endpoints: Arc<Vec<String>> = Arc::new(replicas.iter().map(|r| r.endpoint.clone()).collect());
        // Through one replica, then spread over the three.
        let mut cycles = Vec::new();
        for spread in [1, 3] {
            let (http, endpoints, admin, per_client) = (http.clone(), endpoints.clone(), admin.clone(), per_client.clone());
            cycles.push(
                load(clients, seconds, move |client, n| {
                    let (http, endpoints, admin) = (http.clone(), endpoints.clone(), admin.clone());
                    let ns = per_client[client][n % per_client[client].len()].clone();
                    async move {
                        let endpoint = &endpoints[(client + n) % spread];
                        let created = gql(&http, endpoint, &admin, CREATE, json!({"ws": workspace, "label": format!("api-{spread}-{client}-{n}"), "ns": ns})).await;
                        gql(&http, endpoint, &admin, DELETE, json!({"id": created["createDeployment"]["id"]})).await;
                    }
                })
                .await,
            );
        }

        // Staleness: claim on one replica, poll the other two.
        let offered = |body: &[u8], name: &str| {
            let needle = format!("\"name\":\"{name}\"");
            body.windows(needle.len()).any(|w| w == needle.as_bytes())
        };
        let mut lags = Vec::new();
        for n in 0..probes {
            let writer = n % 3;
            let name = &names[n % names.len()];
            let created = gql(&http, &endpoints[writer], &admin, CREATE, json!({"ws": workspace, "label": format!("stale-{n}"), "ns": name})).await;
            let started = Instant::now();
            for reader in (0..3).filter(|r| *r != writer) {
                while offered(&post(&http, &endpoints[reader], &admin, AVAILABLE, Value::Null).await, name) {
                    assert!(started.elapsed() < Duration::from_secs(10), "never converged");
                }
            }
            lags.push(started.elapsed());
            gql(&http, &endpoints[writer], &admin, DELETE, json!({"id": created["createDeployment"]["id"]})).await;
        }
        let (stale_p50, stale_p99) = quantiles(lags);

        // Revoke propagation.
        let mut revokes = Vec::new();
        for n in 0..probes.div_ceil(4) {
            let (viewer, id) = token(&options, nspool::domain::Role::SYSTEM_VIEWER).await?;
            for endpoint in endpoints.iter() {
                gql(&http, endpoint, &viewer, AVAILABLE, Value::Null).await;
            }
            let writer = n % 3;
            gql(&http, &endpoints[writer], &admin, REVOKE, json!({"id": id})).await;
            let started = Instant::now();
            for reader in (0..3).filter(|r| *r != writer) {
                while post(&http, &endpoints[reader], &viewer, AVAILABLE, Value::Null).await.starts_with(b"{\"data\":{") {
                    assert!(started.elapsed() < Duration::from_secs(10), "a revoked token kept working");
                }
            }
            revokes.push(started.elapsed());
        }
        let (revoke_p50, revoke_p99) = quantiles(revokes);
        let rss: Vec<String> = replicas.iter().map(|r| format!("{:.1}", r.peak_rss())).collect();

        println!();
        println!("three replicas, 1,000-namespace pool");
        println!("{}", direct.line("claim/release, statements straight"));
        println!("{}", cycles[0].line("claim/release, nspool API, one replica"));
        println!("{}", cycles[1].line("claim/release, nspool API, three"));
        println!(
            "claim/release ratio nspool/PostgreSQL: one replica ×{:.2}, spread over three ×{:.2}",
            cycles[0].rate() / direct.rate(),
            cycles[1].rate() / direct.rate()
        );
        println!("cross-replica staleness over {probes} claims: p50 {stale_p50:.2} ms, p99 {stale_p99:.2} ms (polling the other two)");
        println!("revoke propagation over {} revokes: p50 {revoke_p50:.2} ms, p99 {revoke_p99:.2} ms", probes.div_ceil(4));
        println!("replicas' peak RSS: {} MiB", rss.join(", "));
        pool.close().await;
        anyhow::Ok(())
    })
    .await
}
