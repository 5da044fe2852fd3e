//! GraphiQL in a real browser: Debian's Chromium, headless, driven over the
//! DevTools protocol (chromiumoxide), against a server on a machine with no
//! route to the internet. `scripts/test.sh` installs Chromium when it is
//! missing; `NSPOOL_CHROMIUM` names another binary. Screenshots land in
//! `target/screenshots/`.

use crate::support::{POOL_OF_5, TestApp};
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::{Page, ScreenshotParams};
use futures::StreamExt as _;
use sqlx::PgPool;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn chromium() -> PathBuf {
    let path = std::env::var_os("NSPOOL_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "no Chromium at {} (scripts/test.sh installs Debian's chromium; NSPOOL_CHROMIUM names another)",
        path.display()
    );
    path
}

/// A headless Chromium that asks nothing of the network by itself.
async fn launch() -> Browser {
    let profile = std::env::temp_dir().join(format!("nspool-chromium-{}", uuid::Uuid::new_v4()));
    let config = BrowserConfig::builder()
        .chrome_executable(chromium())
        .new_headless_mode()
        .no_sandbox()
        .user_data_dir(&profile)
        .window_size(1400, 900)
        .viewport(Viewport {
            width: 1280,
            height: 900,
            ..Viewport::default()
        })
        .args([
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .build()
        .expect("browser config");
    let (browser, mut handler) = Browser::launch(config).await.expect("Chromium starts");
    tokio::spawn(async move { while handler.next().await.is_some() {} });
    browser
}

/// Evaluates `script` until it returns true, or fails after `limit`.
async fn wait_until(page: &Page, script: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let done = page
            .evaluate(script)
            .await
            .ok()
            .and_then(|r| r.into_value::<bool>().ok())
            .unwrap_or(false);
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {script}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The whole page as a PNG under `target/screenshots/`.
async fn screenshot(page: &Page, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    let png = page
        .screenshot(
            ScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .full_page(true)
                .build(),
        )
        .await
        .expect("screenshot");
    std::fs::write(dir.join(name), png).expect("screenshot written");
}

#[sqlx::test]
async fn graphiql_runs_a_query_from_nspool_alone(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let mut browser = launch().await;
    let page = browser
        .new_page(app.url("/v1"))
        .await
        .expect("GraphiQL opens");
    // GraphiQL renders from the assets nspool serves (nothing else is reachable).
    wait_until(
        &page,
        "!!document.querySelector('.graphiql-query-editor .CodeMirror')",
        Duration::from_secs(30),
    )
    .await;
    // The token goes into the Headers pane; the query is typed, key by key.
    let headers = serde_json::json!({ "Authorization": admin }).to_string();
    let set_editors = format!(
        "(() => {{
            const editors = [...document.querySelectorAll('.graphiql-editor-tool .CodeMirror')];
            const headers = editors.find(e => e.CodeMirror.getValue().includes('Authorization'));
            headers.CodeMirror.setValue({headers});
            const query = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;
            query.setValue('');
            query.focus();
            return true;
        }})()",
        headers = serde_json::to_string(&headers).expect("JSON"),
    );
    page.evaluate(set_editors.as_str())
        .await
        .expect("editors ready");
    page.find_element(".graphiql-query-editor .CodeMirror textarea")
        .await
        .expect("the query editor's input")
        .type_str("{ availableNamespaces { name } }")
        .await
        .expect("typed");
    let typed: String = page
        .evaluate(
            "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()",
        )
        .await
        .expect("query text")
        .into_value()
        .expect("text");
    assert_eq!(
        typed.split_whitespace().collect::<String>(),
        "{availableNamespaces{name}}",
        "{typed}"
    );
    page.find_element(".graphiql-execute-button")
        .await
        .expect("run button")
        .click()
        .await
        .expect("run");
    wait_until(
        &page,
        "(document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() || '').includes('pool-e')",
        Duration::from_secs(30),
    )
    .await;
    let answer: String = page
        .evaluate("document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()")
        .await
        .expect("answer")
        .into_value()
        .expect("text");
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON answer");
    let names: Vec<&str> = answer["data"]["availableNamespaces"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["pool-a", "pool-b", "pool-c", "pool-d", "pool-e"]);
    screenshot(&page, "graphiql.png").await;
    browser.close().await.expect("Chromium closes");
    let _ = browser.wait().await;
}

/// The element `selector` finds, tried again while the page settles (a
/// node found a moment before a navigation commits is gone after it).
async fn element(page: &Page, selector: &str) -> chromiumoxide::element::Element {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match page.find_element(selector).await {
            Ok(found) => return found,
            Err(error) => {
                assert!(Instant::now() < deadline, "{selector}: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Fills the sign-in form and submits it, as a person would.
/// The dashboard opened, signed in with `token`, once `selector` is on the page.
async fn signed_in(browser: &Browser, app: &TestApp, token: &str, selector: &str) -> Page {
    let page = browser
        .new_page(app.url("/"))
        .await
        .expect("dashboard opens");
    wait_until(
        &page,
        "!!document.querySelector('input[name=token]')",
        Duration::from_secs(20),
    )
    .await;
    sign_in_with(&page, token).await;
    wait_until(
        &page,
        &format!("!!document.querySelector('{selector}')"),
        Duration::from_secs(20),
    )
    .await;
    page
}

async fn sign_in_with(page: &Page, token: &str) {
    let field = page
        .find_element("input[name=token]")
        .await
        .expect("the token field");
    field.click().await.expect("focus");
    field.type_str(token).await.expect("typed");
    page.find_element("button[type=submit]")
        .await
        .expect("the sign-in button")
        .click()
        .await
        .expect("submitted");
}

#[sqlx::test]
async fn the_dashboard_signs_in_shows_every_state_and_signs_out(db: PgPool) {
    let (app, ws) = crate::dashboard::seeded(db).await;
    let viewer = app.token("SYSTEM_VIEWER", None).await;
    let editor = app.token("WORKSPACE_EDITOR", Some(ws)).await;
    let mut browser = launch().await;
    let page = signed_in(&browser, &app, &viewer, "#ns-pool-a").await;
    for (name, state) in crate::dashboard::SEEDED_STATES {
        let shown: String = page
            .evaluate(format!("document.querySelector('#ns-{name} .state').textContent").as_str())
            .await
            .expect("state cell")
            .into_value()
            .expect("text");
        assert_eq!(shown, state, "{name}");
        let cell: bool = page
            .evaluate(
                format!("!!document.querySelector('.grid-cells [title=\"{name}: {state}\"]')")
                    .as_str(),
            )
            .await
            .expect("grid cell")
            .into_value()
            .expect("bool");
        assert!(cell, "{name} has its grid cell");
    }
    // The session cookie is not readable by scripts (HttpOnly).
    let cookies: String = page
        .evaluate("document.cookie")
        .await
        .expect("cookies")
        .into_value()
        .expect("text");
    assert!(!cookies.contains("nspool_session"), "{cookies}");
    screenshot(&page, "dashboard.png").await;

    page.find_element("form[action='/logout'] button")
        .await
        .expect("sign-out button")
        .click()
        .await
        .expect("signed out");
    wait_until(
        &page,
        "!!document.querySelector('input[name=token]')",
        Duration::from_secs(20),
    )
    .await;

    sign_in_with(&page, &editor).await;
    wait_until(
        &page,
        "document.body.textContent.includes('the dashboard needs a system role')",
        Duration::from_secs(20),
    )
    .await;
    screenshot(&page, "dashboard-refused.png").await;
    browser.close().await.expect("Chromium closes");
    let _ = browser.wait().await;
}

/// A system admin cordons a namespace from the dashboard, as a person
/// would: types a reason, clicks Cordon, sees it cordoned; then uncordons
/// it. No inline script runs (the CSP forbids it; the page's one script is
/// a file), and the browser logs no CSP violation.
/// (That the forms are plain POSTs that need no script is shown over HTTP
/// in `dashboard_actions.rs`.)
#[sqlx::test]
async fn an_admin_cordons_a_namespace_from_the_dashboard(db: PgPool) {
    let (app, _) = crate::dashboard::seeded(db).await;
    let admin = app.admin().await;
    let mut browser = launch().await;
    let page = browser.new_page("about:blank").await.expect("a tab");
    // What the browser logs about the page's security (a CSP violation is one).
    page.execute(chromiumoxide::cdp::browser_protocol::log::EnableParams::default())
        .await
        .expect("the browser's log");
    let mut entries = page
        .event_listener::<chromiumoxide::cdp::browser_protocol::log::EventEntryAdded>()
        .await
        .expect("log entries");
    let security = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = security.clone();
    tokio::spawn(async move {
        while let Some(entry) = entries.next().await {
            let text = entry.entry.text.clone();
            if text.contains("Content Security Policy") || text.contains("Refused to") {
                seen.lock().unwrap().push(text);
            }
        }
    });
    page.goto(app.url("/")).await.expect("dashboard opens");
    wait_until(
        &page,
        "!!document.querySelector('input[name=token]')",
        Duration::from_secs(20),
    )
    .await;
    sign_in_with(&page, &admin).await;
    wait_until(
        &page,
        "!!document.querySelector('#cordon-pool-c')",
        Duration::from_secs(20),
    )
    .await;
    let reason = element(&page, "#cordon-reason-pool-c").await;
    reason.click().await.expect("focus");
    reason.type_str("node pool upgrade").await.expect("typed");
    element(&page, "#cordon-pool-c")
        .await
        .click()
        .await
        .expect("cordoned");
    wait_until(
        &page,
        "(document.querySelector('#done')?.textContent || '').includes('Cordoned: pool-c')",
        Duration::from_secs(20),
    )
    .await;
    let text = |script: &'static str| {
        let page = page.clone();
        async move {
            page.evaluate(script)
                .await
                .expect("read the page")
                .into_value::<String>()
                .expect("text")
        }
    };
    assert_eq!(
        text("document.querySelector('#ns-pool-c .state').textContent").await,
        "cordoned"
    );
    assert!(
        text("document.querySelector('#ns-pool-c').textContent")
            .await
            .contains("node pool upgrade")
    );
    let reason: Option<String> =
        sqlx::query_scalar("select cordon_reason from pool_namespaces where name = 'pool-c'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("node pool upgrade"));
    let logged = security.lock().unwrap().clone();
    assert!(logged.is_empty(), "the page breaks its own CSP: {logged:?}");
    // The reload script is a file of this origin, and it loaded.
    let scripts =
        text("[...document.scripts].map(s => s.src + ':' + s.textContent.length).join(' ')").await;
    assert!(
        scripts.ends_with("/v1/assets/nspool-dashboard.js:0"),
        "{scripts}"
    );
    screenshot(&page, "dashboard-cordoned.png").await;

    element(&page, "#uncordon-pool-c")
        .await
        .click()
        .await
        .expect("uncordoned");
    wait_until(
        &page,
        "(document.querySelector('#done')?.textContent || '').includes('Uncordoned: pool-c')",
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        text("document.querySelector('#ns-pool-c .state').textContent").await,
        "free"
    );
    let security = security.lock().unwrap().clone();
    assert!(
        security.is_empty(),
        "the page breaks its own CSP: {security:?}"
    );
    browser.close().await.expect("Chromium closes");
    let _ = browser.wait().await;
}

/// With two clusters, as a person would: the summary shows each cluster
/// (staging's API server not answering), a click shows staging alone, and
/// a cordon typed in staging's `team-a` row cordons that one, not prod's.
/// Screenshots: `dashboard-clusters.png` (every cluster) and
/// `dashboard-clusters-staging.png` (staging, after the cordon).
#[sqlx::test]
async fn the_dashboard_groups_two_clusters_and_acts_in_the_one_chosen(db: PgPool) {
    use crate::dashboard_clusters::STAGING;
    let app = crate::dashboard_clusters::two_clusters(db).await;
    let admin = app.admin().await;
    let mut browser = launch().await;
    let page = signed_in(&browser, &app, &admin, "#clusters #cluster-staging").await;
    let text = |script: String| {
        let page = page.clone();
        async move {
            page.evaluate(script.as_str())
                .await
                .expect("read the page")
                .into_value::<String>()
                .expect("text")
        }
    };
    assert!(
        text("document.querySelector('#cluster-staging').textContent".into())
            .await
            .contains("unreachable")
    );
    assert_eq!(
        text("[...document.querySelectorAll('#namespaces td.cluster')].map(td => td.textContent).join(' ')".into())
            .await,
        "prod prod staging staging"
    );
    screenshot(&page, "dashboard-clusters.png").await;

    // Show staging alone: a plain link.
    element(
        &page,
        &format!("nav.clusters a[href='/?cluster={STAGING}']"),
    )
    .await
    .click()
    .await
    .expect("staging shown");
    wait_until(
        &page,
        "(document.querySelector('#scope')?.textContent || '') === 'Cluster staging'",
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        text("[...document.querySelectorAll('#namespaces td.cluster')].map(td => td.textContent).join(' ')".into())
            .await,
        "staging staging"
    );
    let reason = element(&page, "#cordon-reason-staging_team-a").await;
    reason.click().await.expect("focus");
    reason.type_str("etcd restore").await.expect("typed");
    element(&page, "#cordon-staging_team-a")
        .await
        .click()
        .await
        .expect("cordoned");
    wait_until(
        &page,
        "(document.querySelector('#done')?.textContent || '').includes('Cordoned: team-a (cluster staging)')",
        Duration::from_secs(20),
    )
    .await;
    // Held, and cordoned: not offered again once its Deployment lets it go.
    assert!(
        text("document.querySelector('#ns-staging_team-a').textContent".into())
            .await
            .contains("cordoned: etcd restore")
    );
    let cordoned: Vec<String> = sqlx::query_scalar(
        "select k.name from pool_namespaces p join clusters k on k.id = p.cluster_id
         where p.cordoned_at is not null",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(cordoned, ["staging"], "prod's team-a is not cordoned");
    screenshot(&page, "dashboard-clusters-staging.png").await;
    browser.close().await.expect("Chromium closes");
    let _ = browser.wait().await;
}
