//! nspool against PostgreSQL running the same statements directly, in one run.
//!
//! `nspool serve` runs as its own process (release build, DATABASE_URL) on a
//! scratch database with a 1,000-namespace pool and 100,000 earlier claims in
//! the history. 16 clients then run, each for BENCH_SECONDS:
//!   1. claim/release cycles: straight on PostgreSQL (the statements nspool
//!      runs for them: token lookup + claim; token lookup + read + hard delete),
//!      then through nspool's GraphQL API (createDeployment, deleteDeployment);
//!   2. availableNamespaces: straight (token lookup + the free-namespace scan),
//!      then through the API;
//!   3. availableNamespaces at a steady 200 requests/s through the API (p99).
//!
//! Reports throughput ratios (nspool / PostgreSQL), latencies, and the server's
//! peak resident memory (VmHWM).
//!
//!   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench api_vs_postgres
//!
//! Knobs: BENCH_CLIENTS (16), BENCH_SECONDS (10), BENCH_HISTORY (100000).

#[path = "support/common.rs"]
mod common;
#[path = "support/load.rs"]
mod load;

use common::{knob, with_scratch_database};
use load::{Run, load, peak_rss_mib};
use nspool::config::Settings;
use nspool::domain::{Caller, Role, token};
use nspool::pool::PoolService;
use nspool::store::Store;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = knob("BENCH_CLIENTS", 16);
    let seconds = knob("BENCH_SECONDS", 10) as u64;
    let history = knob("BENCH_HISTORY", 100_000);
    with_scratch_database("api", |options| async move {
        let names: Vec<String> = (0..1000).map(|i| format!("ns-{i:04}")).collect();
        let config = format!(
            "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{names: [{}]}}}}}}}}\nnspool: {{kubernetes: {{mode: 'off'}}}}",
            names.join(", ")
        );
        let settings = Arc::new(Settings::parse(&config, &|_| None).map_err(|e| anyhow::anyhow!("{e}"))?);
        let pool = PgPoolOptions::new().max_connections(clients as u32 + 2).connect_with(options.clone()).await?;
        let store = Store::new(pool.clone());
        store.migrate().await?;
        let service = PoolService::new(store.clone(), settings);
        service.sync_pool().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let workspace = Uuid::new_v4();
        let cluster = common::default_cluster(&pool).await?;
        sqlx::query("insert into workspaces (id, label) values ($1, 'bench')").bind(workspace).execute(&pool).await?;
        // 100,000 earlier claims in the history: their events, released long ago.
        sqlx::query(
            "insert into events (kind, namespace, release_name, workspace_id, actor)
             select case when i % 2 = 0 then 'claim' else 'release' end, 'ns-' || lpad((i % 1000)::text, 4, '0'),
                    'old-' || (i / 2), $1, 'bench'
             from generate_series(0, $2 * 2 - 1) as i",
        )
        .bind(workspace)
        .bind(history as i64)
        .execute(&pool)
        .await?;
        sqlx::query("analyze").execute(&pool).await?;
        let admin = service
            .create_token(&Caller::Operator, Role::SYSTEM_ADMIN, None, "bench")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .token;
        let hash = token::sha256(&admin);

        // PostgreSQL alone: the statements nspool runs, straight through sqlx.
        let per_client: Vec<Vec<String>> = (0..clients)
            .map(|c| names.iter().enumerate().filter(|(i, _)| i % clients == c).map(|(_, n)| n.clone()).collect())
            .collect();
        let per_client = Arc::new(per_client);
        let direct_cycles = {
            let store = store.clone();
            let per_client = per_client.clone();
            load(clients, seconds, move |client, n| {
                let store = store.clone();
                let per_client = per_client.clone();
                async move {
                    let ns = &per_client[client][n % per_client[client].len()];
                    store.token_by_hash(&hash).await.expect("token");
                    let id = Uuid::new_v4();
                    let release = format!("d-{client}-{n}");
                    let label = format!("direct-{client}-{n}");
                    let new = common::pool_claim(cluster, id, workspace, &label, &release, ns);
                    store.insert_deployment(&new).await.expect("claim").expect("free");
                    store.token_by_hash(&hash).await.expect("token");
                    store.deployment(id).await.expect("read");
                    store.hard_delete_deployment(id, None, nspool::store::Release { kind: "release", actor: "bench", reason: "bench", check_released: false }).await.expect("release");
                }
            })
            .await
        };
        let direct_available = {
            let store = store.clone();
            load(clients, seconds, move |_, _| {
                let store = store.clone();
                async move {
                    store.token_by_hash(&hash).await.expect("token");
                    store.available_namespaces(cluster).await.expect("available");
                }
            })
            .await
        };

        // nspool: its own process, release build, on the same database.
        let url = std::env::var("DATABASE_URL")?;
        let (prefix, _) = url.rsplit_once('/').ok_or_else(|| anyhow::anyhow!("DATABASE_URL needs a database"))?;
        let db_name = options.get_database().unwrap_or_default().to_owned();
        let config_path = std::env::temp_dir().join(format!("nspool-bench-{}.yaml", std::process::id()));
        std::fs::write(&config_path, &config)?;
        let mut serve = Command::new(env!("CARGO_BIN_EXE_nspool"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("DATABASE_URL", format!("{prefix}/{db_name}"))
            .env("NSPOOL_LISTEN", "127.0.0.1:0")
            .env("NSPOOL_DATABASE_MAX_CONNECTIONS", (clients + 2).to_string())
            .env("RUST_LOG", "warn,nspool::cli=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = serve.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
                }
            }
        });
        let address = rx.recv_timeout(Duration::from_secs(60))?;
        let endpoint = Arc::new(format!("http://{address}/v1"));
        let http = reqwest::Client::new();
        let gql = {
            let http = http.clone();
            let endpoint = endpoint.clone();
            let admin = admin.clone();
            move |query: &'static str, variables: Value| {
                let http = http.clone();
                let endpoint = endpoint.clone();
                let admin = admin.clone();
                async move {
                    let body: Value = http
                        .post(endpoint.as_str())
                        .header("authorization", admin)
                        .json(&json!({"query": query, "variables": variables}))
                        .send()
                        .await
                        .expect("request")
                        .json()
                        .await
                        .expect("json");
                    assert!(body.get("errors").is_none(), "{body}");
                    body
                }
            }
        };
        const CREATE: &str = "mutation($ws: Uuid!, $label: String!, $ns: String) { createDeployment(workspaceUuid: $ws, label: $label, executor: CeleryExecutor, namespace: $ns) { id } }";
        const DELETE: &str = "mutation($id: Uuid!) { deleteDeployment(deploymentUuid: $id, deploymentHardDelete: true) { id } }";
        const AVAILABLE: &str = "query availableNamespaces { availableNamespaces { name } }";
        let api_cycles = {
            let gql = gql.clone();
            let per_client = per_client.clone();
            load(clients, seconds, move |client, n| {
                let gql = gql.clone();
                let ns = per_client[client][n % per_client[client].len()].clone();
                async move {
                    let created = gql(CREATE, json!({"ws": workspace, "label": format!("api-{client}-{n}"), "ns": ns})).await;
                    let id = created["data"]["createDeployment"]["id"].clone();
                    gql(DELETE, json!({"id": id})).await;
                }
            })
            .await
        };
        let api_available = {
            let gql = gql.clone();
            load(clients, seconds, move |_, _| {
                let gql = gql.clone();
                async move {
                    gql(AVAILABLE, Value::Null).await;
                }
            })
            .await
        };
        // A steady 200 requests/s for BENCH_SECONDS.
        let steady = {
            let started = Instant::now();
            let mut ticker = tokio::time::interval(Duration::from_millis(5));
            let mut tasks = Vec::new();
            while started.elapsed() < Duration::from_secs(seconds) {
                ticker.tick().await;
                let gql = gql.clone();
                tasks.push(tokio::spawn(async move {
                    let t = Instant::now();
                    gql(AVAILABLE, Value::Null).await;
                    t.elapsed()
                }));
            }
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.push(task.await?);
            }
            Run { latencies, elapsed: started.elapsed() }
        };
        let rss = peak_rss_mib(serve.id());
        // SAFETY: kill with a valid pid and signal has no memory effects.
        unsafe { libc::kill(serve.id() as libc::pid_t, libc::SIGTERM) };
        let _ = serve.wait();
        let _ = std::fs::remove_file(&config_path);

        println!("{clients} clients, {seconds} s each, 1,000-namespace pool, {history} earlier claims in the history");
        println!("{}", direct_cycles.line("claim/release cycles, PostgreSQL alone"));
        println!("{}", api_cycles.line("claim/release cycles, nspool API"));
        println!("{}", direct_available.line("availableNamespaces, PostgreSQL alone"));
        println!("{}", api_available.line("availableNamespaces, nspool API"));
        println!("{}", steady.line("availableNamespaces at 200/s, nspool"));
        println!(
            "ratios nspool/PostgreSQL: claim/release {:.2}, availableNamespaces {:.2}",
            api_cycles.rate() / direct_cycles.rate(),
            api_available.rate() / direct_available.rate()
        );
        println!("nspool serve peak resident memory (VmHWM): {rss:.1} MiB");
        pool.close().await;
        anyhow::Ok(())
    })
    .await
}
