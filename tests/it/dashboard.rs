//! The pool dashboard over HTTP: sign-in, every state of a seeded pool,
//! sign-out, refusals and the sign-in limit. (In a browser: `browser.rs`.)

use crate::documents::*;
use crate::support::{POOL_OF_5, TestApp};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// Each namespace of [`seeded`] and the state it is in.
pub const SEEDED_STATES: [(&str, &str); 6] = [
    ("pool-a", "held"),
    ("pool-b", "soft-deleted"),
    ("pool-c", "free"),
    ("pool-d", "broken"),
    ("pool-e", "retired"),
    ("pool-f", "releasing"),
];

/// A pool with each state: pool-a held, pool-b soft-deleted, pool-c free,
/// pool-d broken, pool-e retired, pool-f releasing (a volume claim left).
pub async fn seeded(db: PgPool) -> (TestApp, Uuid) {
    let config = POOL_OF_5.replace("pool-e]", "pool-e, pool-f]");
    let app = TestApp::spawn(&config, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "data-team").await;
    for (label, namespace) in [("etl", "pool-a"), ("old", "pool-b")] {
        app.ok(
            Some(&admin),
            CREATE_DEPLOYMENT,
            json!({"label": label, "workspaceId": ws, "executor": "LocalExecutor", "namespace": namespace, "releaseName": format!("{label}-release")}),
        )
        .await;
    }
    let old: Uuid = sqlx::query_scalar("select id from deployments where label = 'old'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    app.ok(
        Some(&admin),
        DELETE_DEPLOYMENT,
        json!({"deploymentId": old}),
    )
    .await;
    sqlx::raw_sql(
        "update pool_namespaces set rbac_state = 'broken', rbac_missing = '[\"create serviceaccounts (core)\"]' where name = 'pool-d';
         update pool_namespaces set retired_at = now() where name = 'pool-e';
         update pool_namespaces set releasing_since = now(), leftovers = '[\"PersistentVolumeClaim/data-old-worker-0\"]',
                leftovers_checked_at = now() where name = 'pool-f';",
    )
    .execute(&app.db)
    .await
    .unwrap();
    (app, ws)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn sign_in(app: &TestApp, token: &str) -> reqwest::Response {
    client()
        .post(app.url("/login"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

fn session_cookie(response: &reqwest::Response) -> String {
    let set = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    set.split(';').next().unwrap().to_owned()
}

async fn page(app: &TestApp, cookie: Option<&str>) -> (u16, String) {
    let mut request = client().get(app.url("/"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[sqlx::test]
async fn a_system_token_signs_in_and_sees_every_state(db: PgPool) {
    let (app, ws) = seeded(db).await;
    let (status, form) = page(&app, None).await;
    assert_eq!(status, 200);
    assert!(form.contains("type=\"password\""), "{form}");

    let viewer = app.token("SYSTEM_VIEWER", None).await;
    let response = sign_in(&app, &viewer).await;
    assert_eq!(response.status(), 303);
    let set = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(
        !set.contains(&viewer)
            && !response.headers()["location"]
                .to_str()
                .unwrap()
                .contains("nsp_")
    );
    let cookie = session_cookie(&response);

    let (status, html) = page(&app, Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(!html.contains(&viewer), "the token is never in the page");
    for (name, state) in SEEDED_STATES {
        assert!(
            html.contains(&format!("title=\"{name}: {state}\"")),
            "{name} is {state} in the grid"
        );
        let row = html.split(&format!("id=\"ns-{name}\"")).nth(1).unwrap();
        let row = row.split("</tr>").next().unwrap();
        assert!(row.contains(&format!(">{state}</span>")), "{name}: {row}");
    }
    let held = html.split("id=\"ns-pool-a\"").nth(1).unwrap();
    assert!(held.contains("data-team / etl") && held.contains("etl-release"));
    let soft = html
        .split("id=\"ns-pool-b\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(soft.contains("reclaimable after"), "{soft}");
    let broken = html
        .split("id=\"ns-pool-d\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(broken.contains("create serviceaccounts (core)"), "{broken}");
    let releasing = html
        .split("id=\"ns-pool-f\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        releasing.contains("left behind: PersistentVolumeClaim/data-old-worker-0"),
        "{releasing}"
    );
    assert!(html.contains("id=\"count-releasing\""));
    for part in [
        "<svg class=\"chart\"",
        "The reclaim job",
        "Latest events",
        "href=\"/v1\"",
        "href=\"/metrics\"",
        "soft_delete",
    ] {
        assert!(html.contains(part), "{part}");
    }
    assert!(html.contains("id=\"count-free\""));

    // The cookie is for the dashboard only: /v1 reads the Authorization header.
    let value = app
        .post_with(
            &[("cookie", cookie.as_str())],
            json!({"query": "{ workspaces { id } }"}),
        )
        .await;
    assert_eq!(value["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    // Houston's exact message, and where to get a token beside it.
    assert!(
        value["errors"][0]["extensions"]["help"]
            .as_str()
            .unwrap()
            .contains("/v1/token")
    );

    // Signing out ends the session here too.
    let out = client()
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (_, again) = page(&app, Some(&cookie)).await;
    assert!(again.contains("Your session has ended"), "{again}");

    // A workspace token is refused, saying which role is needed.
    let editor = app.token("WORKSPACE_EDITOR", Some(ws)).await;
    let refused = sign_in(&app, &editor).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("SYSTEM_VIEWER"));
}

#[sqlx::test]
async fn bad_tokens_and_cookies_get_the_form_and_guessing_is_limited(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    for cookie in ["nspool_session=nope", "nspool_session=", "other=1"] {
        let (status, html) = page(&app, Some(cookie)).await;
        assert_eq!(status, 200);
        assert!(html.contains("type=\"password\""), "{cookie}");
    }
    let viewer = app.token("SYSTEM_VIEWER", None).await;
    let revoked_session = session_cookie(&sign_in(&app, &viewer).await);
    sqlx::query("update api_tokens set revoked_at = now() where role = 'SYSTEM_VIEWER'")
        .execute(&app.db)
        .await
        .unwrap();
    let (_, html) = page(&app, Some(&revoked_session)).await;
    assert!(
        html.contains("Your session has ended"),
        "a revoked token ends its sessions"
    );

    // Signing in again and again is no failure: never limited.
    let admin = app.admin().await;
    for _ in 0..2 * nspool::http::SIGN_IN_TRIES_PER_MINUTE {
        assert_eq!(sign_in(&app, &admin).await.status(), 303);
    }
    let wrong = format!("nsp_{}", "0".repeat(64));
    for attempt in 1..=nspool::http::SIGN_IN_TRIES_PER_MINUTE {
        let response = sign_in(&app, &wrong).await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
        let text = response.text().await.unwrap();
        assert!(text.contains("not a valid token"));
    }
    let limited = sign_in(&app, &wrong).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "60");
    let metrics = app.metrics().await;
    assert_eq!(
        crate::support::metric_value(&metrics, "nspool_budget_refusals_total{budget=\"sign_in\"}"),
        Some(1.0)
    );
    assert!(limited.text().await.unwrap().contains("failed sign-ins"));
}

/// Everything logged while the test runs (the server's tasks run on the
/// test's own thread, so a thread-local subscriber sees them all).
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything logged on this thread from now while the guard lives.
    pub fn start() -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[sqlx::test]
async fn tokens_are_never_logged(db: PgPool) {
    let (captured, _guard) = Captured::start();

    let (app, ws) = seeded(db).await;
    let viewer = app.token("SYSTEM_VIEWER", None).await;
    let editor = app.token("WORKSPACE_EDITOR", Some(ws)).await;
    let wrong = format!("nsp_{}", "1".repeat(64));
    for token in [&viewer, &editor, &wrong] {
        let response = sign_in(&app, token).await;
        let _ = response.text().await;
        app.gql(
            Some(token),
            "{ workspaces { id } }",
            serde_json::Value::Null,
        )
        .await;
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.len() > 1_000,
        "the capture works: {} bytes: {logs}",
        logs.len()
    );
    for token in [&viewer, &editor, &wrong] {
        assert!(!logs.contains(token.as_str()), "a token reached the logs");
        assert!(
            !logs.contains(&token[4..20]),
            "part of a token reached the logs"
        );
    }
}

#[sqlx::test]
async fn every_answer_says_nosniff_and_pages_send_no_referrer(db: sqlx::PgPool) {
    let app = crate::support::TestApp::spawn(crate::support::POOL_OF_5, db).await;
    let client = reqwest::Client::new();
    for (path, page) in [
        ("/", true),
        ("/v1", true),
        ("/v1/token", true),
        ("/healthz", false),
        ("/readyz", false),
        ("/metrics", false),
        ("/no-such-route", false),
        ("/v1/assets/graphiql-3.8.3.min.css", false),
    ] {
        let response = client.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        if page {
            assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        }
    }
    let response = client.post(app.url("/v1")).body("{").send().await.unwrap();
    assert_eq!(
        response.headers()["x-content-type-options"],
        "nosniff",
        "a refusal too"
    );
}

/// A token signing in without end holds at most MAX_SESSIONS_PER_TOKEN live
/// sessions: each sign-in past the cap ends that token's oldest, the newest
/// all work, and another token's sessions are untouched. Concurrent
/// sign-ins keep the cap too (the database holds it).
#[sqlx::test]
async fn a_tokens_sessions_are_capped_and_the_oldest_end_first(db: PgPool) {
    let cap = nspool::pool::MAX_SESSIONS_PER_TOKEN;
    let app = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let viewer = app.token("SYSTEM_VIEWER", None).await;
    let other = app.token("SYSTEM_VIEWER", None).await;
    let kept = session_cookie(&sign_in(&app, &other).await);
    let mut cookies = Vec::new();
    for _ in 0..cap + 10 {
        cookies.push(session_cookie(&sign_in(&app, &viewer).await));
    }
    // 40 more at once.
    let racing: Vec<_> = (0..40)
        .map(|_| {
            let (app_url, viewer) = (app.url("/login"), viewer.clone());
            tokio::spawn(async move {
                client()
                    .post(app_url)
                    .form(&[("token", viewer.as_str())])
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for sign_in in racing {
        assert!(sign_in.await.unwrap().is_redirection());
    }
    let live: i64 = sqlx::query_scalar(
        "select count(*) from dashboard_sessions s join api_tokens t on t.id = s.token_id
         where t.revoked_at is null and s.expires_at > now()",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        live,
        cap as i64 + 1,
        "{cap} of the one token, 1 of the other"
    );
    // The first ones have ended; the other token's session still works.
    let (_, first) = page(&app, Some(&cookies[0])).await;
    assert!(first.contains("Your session has ended"), "{first}");
    let (_, theirs) = page(&app, Some(&kept)).await;
    assert!(theirs.contains("Sign out"), "{theirs}");
    // A person signing in again always can.
    let again = session_cookie(&sign_in(&app, &viewer).await);
    let (_, page_now) = page(&app, Some(&again)).await;
    assert!(page_now.contains("Sign out"), "{page_now}");
    let metrics = app.metrics().await;
    assert_eq!(
        crate::support::metric_value(&metrics, "nspool_dashboard_sessions"),
        Some(cap as f64 + 1.0),
        "{metrics}"
    );
}

/// The session cookie is `Secure` when a trusted proxy says the client came
/// over HTTPS; the same header from anyone else says nothing.
#[sqlx::test]
async fn only_a_trusted_proxy_makes_the_cookie_secure(db: PgPool) {
    let sign_in_with = |app: &TestApp, token: String| {
        let url = app.url("/login");
        async move {
            client()
                .post(url)
                .header("x-forwarded-proto", "https")
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap()
                .headers()["set-cookie"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let untrusted = TestApp::spawn(crate::support::POOL_OF_5, db.clone()).await;
    let set = sign_in_with(&untrusted, untrusted.admin().await).await;
    assert!(
        !set.contains("Secure"),
        "an untrusted peer set Secure: {set}"
    );
    let behind_proxy = format!(
        "{}nspool: {{http: {{trustedProxies: [127.0.0.1/32, '::1']}}}}\n",
        crate::support::POOL_OF_5
    );
    let trusted = TestApp::spawn(&behind_proxy, crate::support::another_pool(&db).await).await;
    let set = sign_in_with(&trusted, trusted.admin().await).await;
    assert!(set.contains("; Secure"), "{set}");
}

/// A signed-in session of a fresh `role` token; its cookie.
async fn session(app: &TestApp, role: &str) -> String {
    let token = app.token(role, None).await;
    session_cookie(&sign_in(app, &token).await)
}

/// The page at `path` for `cookie`: its status and HTML.
async fn page_at(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let response = client()
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Rows of the namespaces table in `html`.
fn rows(html: &str) -> usize {
    html.matches("<tr id=\"ns-").count()
}

#[sqlx::test]
async fn pages_and_searches_are_bounded_and_the_rest_is_counted(db: PgPool) {
    use nspool::pool::DASHBOARD_PAGE_SIZE as SIZE;
    let names = crate::support::pool_names(2 * SIZE + 50);
    let app = TestApp::spawn(&crate::support::pool_config(&names, ""), db).await;
    let cookie = session(&app, "SYSTEM_VIEWER").await;

    let (status, first) = page_at(&app, &cookie, "/").await;
    assert_eq!(status, 200);
    assert_eq!(rows(&first), SIZE, "one page of rows");
    assert_eq!(first.matches("class=\"cell free\" title=").count(), SIZE);
    let total = 2 * SIZE + 50;
    assert!(
        first.contains(&format!("free<b>{total}</b>")),
        "the whole pool is counted"
    );
    assert!(first.contains(&format!("Namespaces 1–{SIZE} of {total}")));
    assert!(first.contains("href=\"/?page=2\" rel=\"next\""));
    assert!(first.contains("href=\"/?page=3\" rel=\"last\""));
    assert!(first.contains("id=\"ns-ns-000\"") && !first.contains("id=\"ns-ns-200\""));

    let (_, second) = page_at(&app, &cookie, "/?page=2").await;
    assert_eq!(rows(&second), SIZE);
    assert!(second.contains("id=\"ns-ns-200\"") && second.contains("rel=\"prev\""));
    // Past the last page: the last page; nonsense: the first.
    let (_, last) = page_at(&app, &cookie, "/?page=99").await;
    assert_eq!(rows(&last), 50);
    assert!(last.contains("page 3 of 3") && !last.contains("rel=\"next\""));
    let (_, odd) = page_at(&app, &cookie, "/?page=-1").await;
    assert_eq!(rows(&odd), SIZE);

    // A search pages its matches the same way and counts them.
    let (_, search) = page_at(&app, &cookie, "/?q=ns-1").await;
    assert_eq!(rows(&search), 100, "ns-100..ns-199");
    assert!(search.contains("of 100 matching"), "{search}");
    let (_, nothing) = page_at(&app, &cookie, "/?q=no-such-namespace").await;
    assert_eq!(rows(&nothing), 0);
    assert!(nothing.contains("No namespace matches."));
    assert!(nothing.contains(&format!("free<b>{total}</b>")));
    // LIKE's wildcards match only themselves.
    let (_, wildcard) = page_at(&app, &cookie, "/?q=%25").await;
    assert_eq!(rows(&wildcard), 0);
    // The search is kept in the page links.
    let (_, wide) = page_at(&app, &cookie, "/?q=ns").await;
    assert!(wide.contains("href=\"/?q=ns&amp;page=2\""), "{wide}");

    let metrics = app.metrics().await;
    assert!(
        crate::support::metric_value(
            &metrics,
            "nspool_budget_refusals_total{budget=\"dashboard_page\"}"
        )
        .is_some_and(|v| v >= 3.0),
        "pages that left namespaces out are counted"
    );
}

#[sqlx::test]
async fn dashboard_renders_are_bounded_while_others_are_served(db: PgPool) {
    let (app, _) = seeded(db).await;
    let cookie = session(&app, "SYSTEM_VIEWER").await;
    let held = app
        .dashboard_renders
        .try_hold(u32::try_from(nspool::http::dashboard::renders::DASHBOARD_RENDERS).unwrap())
        .expect("every permit is free");
    let response = client()
        .get(app.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(response.text().await.unwrap().contains("busy"));
    // Meanwhile the API, the sign-in form and the probes answer.
    let admin = app.admin().await;
    assert_eq!(app.available(&admin).await, vec!["pool-c"]);
    let (status, form) = page(&app, None).await;
    assert_eq!(status, 200);
    assert!(form.contains("type=\"password\""));
    let metrics = app.metrics().await;
    assert_eq!(
        crate::support::metric_value(
            &metrics,
            "nspool_budget_refusals_total{budget=\"dashboard_renders\"}"
        ),
        Some(1.0)
    );
    drop(held);
    let (status, html) = page_at(&app, &cookie, "/").await;
    assert_eq!(status, 200);
    assert_eq!(rows(&html), 6);
}
