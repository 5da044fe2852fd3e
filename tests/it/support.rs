//! A real nspool on a port-0 listener over a per-test database, and a small
//! GraphQL client that speaks to it the way the astro CLI does.

use nspool::config::Settings;
use nspool::domain::{Caller, Role};
use nspool::http::guard::{Guard, RequestLimits};
use nspool::http::server::ConnectionLimits;
use nspool::pool::PoolService;
use nspool::store::Store;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::net::SocketAddr;
use std::sync::Arc;
use uuid::Uuid;

pub const POOL_OF_5: &str = r#"
global:
  baseDomain: example.com
  features:
    namespacePools:
      enabled: true
      namespaces:
        create: false
        names: [pool-a, pool-b, pool-c, pool-d, pool-e]
astronomer:
  houston:
    config:
      deployments:
        manualReleaseNames: true
"#;

/// Names `ns-000`, `ns-001`, … for a pool of `count`.
pub fn pool_names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("ns-{i:03}")).collect()
}

/// A standard pool of `names`, then `extra` YAML (other top-level keys).
pub fn pool_config(names: &[String], extra: &str) -> String {
    format!(
        "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{names: [{}]}}}}}}}}\n{extra}",
        names.join(", ")
    )
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub service: PoolService,
    pub db: PgPool,
    client: reqwest::Client,
    /// Dropped with the app: its pool listener stops.
    _listening: tokio::sync::watch::Sender<bool>,
    /// `send(true)` starts the server's shutdown (as SIGTERM does).
    pub shutdown: tokio::sync::watch::Sender<bool>,
    server: std::sync::Mutex<Option<tokio::task::JoinHandle<std::io::Result<()>>>>,
    /// The server's large-answer permits (a test holds them to fill the budget).
    pub large_answers: nspool::graphql::LargeAnswers,
    /// The server's dashboard render permits.
    pub dashboard_renders: nspool::http::dashboard::renders::Renders,
}

pub fn settings(yaml: &str) -> Arc<Settings> {
    Arc::new(Settings::parse(yaml, &|_| None).expect("test config is valid"))
}

/// A second connection pool on the same database: another "process".
pub async fn another_pool(db: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(8)
        .connect_with((*db.connect_options()).clone())
        .await
        .expect("second pool")
}

impl TestApp {
    pub async fn spawn(yaml: &str, db: PgPool) -> TestApp {
        Self::spawn_with(yaml, db, Default::default(), Default::default()).await
    }

    /// A server with other connection and request bounds.
    pub async fn spawn_with(
        yaml: &str,
        db: PgPool,
        connections: ConnectionLimits,
        requests: RequestLimits,
    ) -> TestApp {
        Self::spawn_on(yaml, Store::new(db.clone()), db, connections, requests).await
    }

    /// A server on a store of the test's making (`db` for the test's own reads).
    pub async fn spawn_on(
        yaml: &str,
        store: Store,
        db: PgPool,
        connections: ConnectionLimits,
        requests: RequestLimits,
    ) -> TestApp {
        Self::start(yaml, store, db, connections, requests, false).await
    }

    /// A server that, like `serve` with a cluster, checks released
    /// namespaces for leftovers when its config says so (the test runs the
    /// Kubernetes passes against the fake API server).
    pub async fn spawn_in_cluster(yaml: &str, db: PgPool) -> TestApp {
        let store = Store::new(db.clone());
        Self::start(
            yaml,
            store,
            db,
            Default::default(),
            Default::default(),
            true,
        )
        .await
    }

    /// Another replica in a cluster, on its own connection pool to the same
    /// database (as a second `serve` with a cluster).
    pub async fn spawn_replica_in_cluster(yaml: &str, db: &PgPool) -> TestApp {
        let store = Store::new(another_pool(db).await);
        Self::start(
            yaml,
            store,
            db.clone(),
            Default::default(),
            Default::default(),
            true,
        )
        .await
    }

    /// `in_cluster: false`: as `serve` where no cluster is found.
    async fn start(
        yaml: &str,
        store: Store,
        db: PgPool,
        connections: ConnectionLimits,
        requests: RequestLimits,
        in_cluster: bool,
    ) -> TestApp {
        let service = nspool::app::prepare(settings(yaml), store)
            .await
            .expect("prepare");
        if !in_cluster {
            service.without_kubernetes();
        }
        service
            .require_readiness()
            .await
            .expect("readiness recorded");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (listening, stop) = tokio::sync::watch::channel(false);
        let listener_service = service.clone();
        tokio::spawn(async move { listener_service.listen(stop).await });
        let mut state = nspool::app::state(service.clone());
        state.guard = Guard::new(requests);
        let large_answers = state.large_answers.clone();
        let dashboard_renders = state.dashboard_renders.clone();
        let (shutdown, mut stopping) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(nspool::app::serve_with(
            listener,
            state,
            connections,
            async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            },
        ));
        TestApp {
            addr,
            service,
            db,
            // Idle connections are dropped well before the server closes an
            // idle keep-alive (its header-read timeout, 10 s): a request sent
            // on one the server is closing that instant fails.
            client: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(5))
                .build()
                .expect("a client"),
            _listening: listening,
            shutdown,
            server: std::sync::Mutex::new(Some(server)),
            large_answers,
            dashboard_renders,
        }
    }

    /// Starts the server's shutdown and waits until it has stopped.
    pub async fn stop_server(&self) {
        let _ = self.shutdown.send(true);
        let server = self.server.lock().expect("server handle").take();
        if let Some(server) = server {
            server.await.expect("server task").expect("server");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub async fn token(&self, role: &str, workspace: Option<Uuid>) -> String {
        let role = Role::parse(role).expect("role");
        self.service
            .create_token(&Caller::Operator, role, workspace, "test")
            .await
            .expect("token")
            .token
    }

    pub async fn admin(&self) -> String {
        self.token("SYSTEM_ADMIN", None).await
    }

    /// POSTs a raw body; returns status and JSON.
    pub async fn post_raw(
        &self,
        token: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.url("/v1"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, value)
    }

    /// POSTs `body` to `/v1` with extra `headers` (no token); returns the JSON.
    pub async fn post_with(&self, headers: &[(&str, &str)], body: Value) -> Value {
        let mut request = self.client.post(self.url("/v1")).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON")
    }

    /// Runs a document as the CLI sends it; asserts HTTP 200, or 503 when
    /// the answer says the database is unavailable.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = json!({"query": query, "variables": variables});
        let (status, value) = self.post_raw(token, body.to_string()).await;
        let unavailable = value["errors"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e["extensions"]["code"] == "SERVICE_UNAVAILABLE")
        });
        assert_eq!(status, if unavailable { 503 } else { 200 }, "{value}");
        if let Some(errors) = value.get("errors") {
            assert!(
                errors.as_array().is_some_and(|e| !e.is_empty()),
                "errors must never be an empty array: {value}"
            );
        }
        value
    }

    /// Runs a document that must succeed; returns `data`.
    pub async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let value = self.gql(token, query, variables).await;
        assert!(value.get("errors").is_none(), "unexpected errors: {value}");
        value["data"].clone()
    }

    /// Runs a document that must fail with `code`; returns the first error.
    pub async fn err(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        code: &str,
    ) -> Value {
        let value = self.gql(token, query, variables).await;
        let error = value["errors"][0].clone();
        assert_eq!(error["extensions"]["code"], code, "{value}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{value}");
        assert_no_internals(message);
        error
    }

    pub async fn create_workspace(&self, token: &str, label: &str) -> Uuid {
        let data = self
            .ok(
                Some(token),
                "mutation($label: String!) { createWorkspace(label: $label) { id } }",
                json!({"label": label}),
            )
            .await;
        data["createWorkspace"]["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("uuid")
    }

    pub async fn available(&self, token: &str) -> Vec<String> {
        let data = self
            .ok(Some(token), "{ availableNamespaces { name } }", Value::Null)
            .await;
        data["availableNamespaces"]
            .as_array()
            .expect("list")
            .iter()
            .map(|n| n["name"].as_str().expect("name").to_owned())
            .collect()
    }

    /// Rows of a table, to assert that a refused request changed nothing.
    pub async fn snapshot(&self) -> String {
        let row: (String,) = sqlx::query_as(
            "select concat_ws('|',
                (select count(*) from workspaces), (select count(*) from deployments),
                (select string_agg(name || ':' || coalesce(holder_deployment_id::text, '-') || ':' || coalesce(retired_at::text, '-'), ',' order by name) from pool_namespaces),
                (select count(*) from events), (select count(*) from api_tokens where revoked_at is null),
                (select max(updated_at)::text from deployments))",
        )
        .fetch_one(&self.db)
        .await
        .expect("snapshot");
        row.0
    }
}

/// No SQL, Rust or Kubernetes internals in a client-facing message.
/// Reads a raw connection until the server closes it (or `limit` passes):
/// what came, or `None` while it is still open.
pub async fn read_to_close(
    stream: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let mut seen = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut seen)).await {
        Ok(_) => Some(seen),
        Err(_) => None,
    }
}

/// A client that sends `request` to `addr` and reads only its answer's
/// status line (`HTTP/1.1 200`), with a small receive window: the rest
/// waits, in the kernel as far as it takes it, then in nspool.
pub async fn park_unread(
    addr: std::net::SocketAddr,
    request: &[u8],
) -> (tokio::net::TcpStream, [u8; 12]) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small window");
    let mut stream = socket.connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("the request");
    let mut status_line = [0u8; 12];
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        stream.read_exact(&mut status_line),
    )
    .await
    .expect("an answer begins")
    .expect("a status line");
    (stream, status_line)
}

/// `field` (`VmRSS`, `VmHWM`) of process `pid`'s status, in MiB.
pub fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Resident memory of process `pid` now, in MiB (`VmRSS`).
pub fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS")
}

/// The value of one unlabelled or labelled sample in a `/metrics` text.
pub fn metric_value(metrics: &str, sample: &str) -> Option<f64> {
    let prefix = format!("{sample} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
}

pub fn assert_no_internals(message: &str) {
    for word in [
        "sqlx",
        "SQLSTATE",
        "violates",
        "constraint",
        "panicked",
        "pg_",
        "select ",
        "insert ",
    ] {
        assert!(
            !message.contains(word),
            "internal detail {word:?} in {message:?}"
        );
    }
}

/// A URL for the per-test database, for child processes.
pub fn database_url(db: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let name = db
        .connect_options()
        .get_database()
        .expect("database name")
        .to_owned();
    let (prefix, rest) = base.rsplit_once('/').expect("URL with a database");
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{prefix}/{name}{query}")
}

/// The output of a child process, line by line, from both pipes; the pipes
/// are drained to the end so the child never writes into a closed pipe.
pub fn drain_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::{BufRead, BufReader};
    let (lines, seen) = std::sync::mpsc::channel::<String>();
    let pipes: Vec<Box<dyn std::io::Read + Send>> = vec![
        Box::new(child.stdout.take().expect("piped stdout")),
        Box::new(child.stderr.take().expect("piped stderr")),
    ];
    for pipe in pipes {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    seen
}

/// Waits for the line where `serve` says where it listens; returns `host:port`.
pub fn listening_address(
    lines: &std::sync::mpsc::Receiver<String>,
    mut also: impl FnMut(&str),
) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("serve logged where it listens");
        also(&line);
        if let Some(rest) = line.split("listening on http://").nth(1) {
            return rest.split('/').next().unwrap_or_default().to_owned();
        }
    }
}

/// A child `nspool` that is stopped when the test ends, also when it fails:
/// SIGTERM first (so `serve` stops its embedded PostgreSQL), SIGKILL after 15 s.
/// `binary serve --config config` on `database_url`, on a free port,
/// without Kubernetes, its output drained into lines (`drain_lines`).
pub fn serve_process(
    binary: &std::path::Path,
    database_url: &str,
    config: &std::path::Path,
) -> (ChildGuard, std::sync::mpsc::Receiver<String>) {
    let mut child = std::process::Command::new(binary)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("DATABASE_URL", database_url)
        .env("NSPOOL_LISTEN", "127.0.0.1:0")
        .env("NSPOOL_KUBERNETES_MODE", "off")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = drain_lines(&mut child);
    (ChildGuard(child), lines)
}

pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: kill with a valid pid and signal has no memory effects.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `base` with the keys of `overrides` set over it (variables of a case).
pub fn with(mut base: Value, overrides: Value) -> Value {
    if let (Some(base), Some(overrides)) = (base.as_object_mut(), overrides.as_object()) {
        for (key, value) in overrides {
            base.insert(key.clone(), value.clone());
        }
    }
    base
}

/// A Deployment in namespace `ns`, in a workspace of its own
/// (`ws-<ns>`), labelled `on-<ns>`: the created Deployment.
pub async fn claim_in_own_workspace(app: &TestApp, token: &str, ns: &str) -> Value {
    let ws = app.create_workspace(token, &format!("ws-{ns}")).await;
    app.ok(
        Some(token),
        crate::documents::CREATE_DEPLOYMENT,
        json!({"label": format!("on-{ns}"), "workspaceId": ws, "executor": "CeleryExecutor", "namespace": ns}),
    )
    .await["createDeployment"]
        .clone()
}

/// Hard-deletes Deployment `id` (its namespace is released at once).
pub async fn hard_delete(app: &TestApp, token: &str, id: &Value) {
    app.ok(
        Some(token),
        crate::documents::DELETE_DEPLOYMENT,
        json!({"deploymentId": id, "deploymentHardDelete": true}),
    )
    .await;
}
