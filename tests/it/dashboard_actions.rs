//! The dashboard's actions over HTTP: a system admin cordons, uncordons and
//! marks clean with plain forms; every action needs the session's CSRF
//! token; every POST (sign-in and sign-out too) must come from this site;
//! the search finds namespaces; the sign-in limit reads the client's
//! address from trusted proxies only.

use crate::dashboard::seeded;
use crate::support::{TestApp, pool_config};
use sqlx::PgPool;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A session cookie for `token`.
pub async fn session(app: &TestApp, token: &str) -> String {
    session_at(&app.url(""), token).await
}

/// A session cookie for `token` from the nspool at `base` (`http://host:port`).
pub async fn session_at(base: &str, token: &str) -> String {
    let response = client()
        .post(format!("{base}/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let set = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    set.split(';').next().unwrap().to_owned()
}

/// The dashboard at `/{query}` as `token` sees it, signed in afresh.
pub async fn signed_in_page(app: &TestApp, token: &str, query: &str) -> String {
    page(app, &session(app, token).await, query).await
}

pub async fn page(app: &TestApp, cookie: &str, query: &str) -> String {
    client()
        .get(app.url(&format!("/{query}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The CSRF token the page put in its forms.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..at + 64].to_owned()
}

async fn post(app: &TestApp, cookie: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(app.url("/actions"))
        .header("cookie", cookie)
        .header("sec-fetch-site", "same-origin")
        .form(fields)
        .send()
        .await
        .unwrap()
}

async fn cordoned(app: &TestApp, name: &str) -> Option<String> {
    sqlx::query_scalar("select cordon_reason from pool_namespaces where name = $1")
        .bind(name)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn an_admin_cordons_uncordons_and_marks_clean_and_viewers_see_no_forms(db: PgPool) {
    let (app, _) = seeded(db).await;
    let admin = session(&app, &app.admin().await).await;
    let html = page(&app, &admin, "").await;
    assert!(html.contains("action=\"/actions\""), "admins get the forms");
    let csrf = csrf_of(&html);

    let done = post(
        &app,
        &admin,
        &[
            ("csrf", &csrf),
            ("action", "cordon"),
            ("name", "pool-c"),
            ("reason", "disk check"),
        ],
    )
    .await;
    assert_eq!(done.status(), 303);
    assert_eq!(
        done.headers()["location"],
        "/?done=cordon&ns=pool-c#ns-pool-c"
    );
    assert_eq!(
        cordoned(&app, "pool-c").await.as_deref(),
        Some("disk check")
    );
    let after = page(&app, &admin, "?done=cordon&ns=pool-c").await;
    assert!(
        after.contains("Cordoned: pool-c."),
        "the page says what was done"
    );
    assert!(after.contains("cordoned: disk check"));
    assert!(
        after.contains("id=\"uncordon-pool-c\""),
        "now it can be uncordoned"
    );

    let done = post(
        &app,
        &admin,
        &[("csrf", &csrf), ("action", "uncordon"), ("name", "pool-c")],
    )
    .await;
    assert_eq!(done.status(), 303);
    assert_eq!(cordoned(&app, "pool-c").await, None);

    // Mark clean: only a releasing namespace, with a reason.
    let refused = post(
        &app,
        &admin,
        &[
            ("csrf", &csrf),
            ("action", "mark-clean"),
            ("name", "pool-c"),
            ("reason", "x"),
        ],
    )
    .await;
    assert_eq!(refused.status(), 404);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("not a releasing pool namespace")
    );
    let refused = post(
        &app,
        &admin,
        &[
            ("csrf", &csrf),
            ("action", "mark-clean"),
            ("name", "pool-f"),
            ("reason", " "),
        ],
    )
    .await;
    assert_eq!(refused.status(), 400);
    let done = post(
        &app,
        &admin,
        &[
            ("csrf", &csrf),
            ("action", "mark-clean"),
            ("name", "pool-f"),
            ("reason", "empty PVC"),
        ],
    )
    .await;
    assert_eq!(done.status(), 303);
    assert!(
        app.available(&app.admin().await)
            .await
            .contains(&"pool-f".to_owned())
    );

    // The whole pool, then open again.
    let done = post(
        &app,
        &admin,
        &[
            ("csrf", &csrf),
            ("action", "cordon-pool"),
            ("reason", "upgrade"),
        ],
    )
    .await;
    assert_eq!(done.headers()["location"], "/?done=cordon-pool");
    let html = page(&app, &admin, "?done=cordon-pool").await;
    assert!(html.contains("The pool is cordoned: no claims."));
    assert!(html.contains("id=\"uncordon-pool\""));
    post(
        &app,
        &admin,
        &[("csrf", &csrf), ("action", "uncordon-pool")],
    )
    .await;
    assert!(
        !page(&app, &admin, "")
            .await
            .contains("The pool is cordoned")
    );

    // A viewer gets no forms, and its own token cannot act either.
    let viewer_token = app.token("SYSTEM_VIEWER", None).await;
    let viewer = session(&app, &viewer_token).await;
    let html = page(&app, &viewer, "").await;
    assert!(
        !html.contains("action=\"/actions\""),
        "viewers get no forms"
    );
    assert!(!html.contains("name=\"csrf\""));
    let viewer_id = viewer.split_once('=').unwrap().1;
    let own = nspool::http::dashboard::forms::csrf_token(viewer_id);
    let refused = post(
        &app,
        &viewer,
        &[
            ("csrf", &own),
            ("action", "cordon"),
            ("name", "pool-c"),
            ("reason", "mine"),
        ],
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("SYSTEM_ADMIN"));
    assert_eq!(cordoned(&app, "pool-c").await, None);
}

#[sqlx::test]
async fn a_form_without_the_sessions_token_or_from_another_site_changes_nothing(db: PgPool) {
    let (app, _) = seeded(db).await;
    let admin_token = app.admin().await;
    let admin = session(&app, &admin_token).await;
    let other = session(&app, &admin_token).await;
    let csrf = csrf_of(&page(&app, &admin, "").await);
    let before = app.snapshot().await;
    // No token, a wrong one, another session's.
    let others_csrf = csrf_of(&page(&app, &other, "").await);
    for token in ["", "nope", others_csrf.as_str()] {
        let refused = post(
            &app,
            &admin,
            &[
                ("csrf", token),
                ("action", "cordon"),
                ("name", "pool-c"),
                ("reason", "forged"),
            ],
        )
        .await;
        assert_eq!(refused.status(), 403, "csrf {token:?}");
        assert!(refused.text().await.unwrap().contains("CSRF"));
    }
    // The right token, sent from another site: refused before it is read.
    for (header, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
        ("origin", "null"),
    ] {
        let refused = client()
            .post(app.url("/actions"))
            .header("cookie", &admin)
            .header(header, value)
            .form(&[
                ("csrf", csrf.as_str()),
                ("action", "cordon"),
                ("name", "pool-c"),
                ("reason", "forged"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "{header}: {value}");
    }
    assert_eq!(app.snapshot().await, before, "nothing changed");
    assert_eq!(cordoned(&app, "pool-c").await, None);

    // Sign-in and sign-out from another site: refused, no session made or ended.
    let cross_login = client()
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .form(&[("token", admin_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_login.status(), 403);
    assert!(cross_login.headers().get("set-cookie").is_none());
    let cross_logout = client()
        .post(app.url("/logout"))
        .header("cookie", &admin)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_logout.status(), 403);
    assert!(
        page(&app, &admin, "").await.contains("action=\"/actions\""),
        "still signed in"
    );
    // The same origin, said by Origin alone (an older browser): accepted.
    let origin = format!("http://{}", app.addr);
    let done = client()
        .post(app.url("/actions"))
        .header("cookie", &admin)
        .header("origin", origin)
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "cordon"),
            ("name", "pool-c"),
            ("reason", "same origin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    // Unknown actions and missing fields: a clear refusal.
    let refused = post(&app, &admin, &[("csrf", &csrf), ("action", "drop")]).await;
    assert_eq!(refused.status(), 400);
    let refused = post(&app, &admin, &[("csrf", &csrf)]).await;
    assert_eq!(refused.status(), 400);
}

#[sqlx::test]
async fn the_search_finds_by_name_release_label_or_workspace(db: PgPool) {
    let (app, _) = seeded(db).await;
    let admin = session(&app, &app.admin().await).await;
    let rows = |html: &str| {
        ["pool-a", "pool-b", "pool-c", "pool-d", "pool-e", "pool-f"]
            .into_iter()
            .filter(|n| html.contains(&format!("<tr id=\"ns-{n}\"")))
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(&page(&app, &admin, "").await).len(), 6);
    assert_eq!(rows(&page(&app, &admin, "?q=pool-c").await), ["pool-c"]);
    assert_eq!(
        rows(&page(&app, &admin, "?q=etl-release").await),
        ["pool-a"]
    );
    assert_eq!(
        rows(&page(&app, &admin, "?q=OLD").await),
        ["pool-b"],
        "a label, any case"
    );
    assert_eq!(
        rows(&page(&app, &admin, "?q=data-team").await),
        ["pool-a", "pool-b"]
    );
    assert!(rows(&page(&app, &admin, "?q=nothing-like-it").await).is_empty());
    let html = page(&app, &admin, "?q=%3Cscript%3E").await;
    assert!(!html.contains("<script>"), "the search is escaped");
    // Bytes that are no text: read as replacement characters, matching nothing.
    let html = page(&app, &admin, "?q=%FF%FE&other=1").await;
    assert!(html.contains("role=\"search\"") && rows(&html).is_empty());
}

#[sqlx::test]
async fn the_sign_in_limit_believes_forwarded_addresses_from_trusted_proxies_only(db: PgPool) {
    let wrong = format!("nsp_{}", "0".repeat(64));
    let attempt = |app: &TestApp, forwarded: &'static str| {
        let url = app.url("/login");
        let wrong = wrong.clone();
        async move {
            client()
                .post(url)
                .header("x-forwarded-for", forwarded)
                .form(&[("token", wrong.as_str())])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let tries = nspool::http::SIGN_IN_TRIES_PER_MINUTE;
    // Behind a trusted proxy (the test's loopback peer): per forwarded client.
    let trusted = pool_config(
        &["ns-a".into()],
        "nspool: {http: {trustedProxies: [127.0.0.1/32, '::1']}}",
    );
    let app = TestApp::spawn(&trusted, db.clone()).await;
    for _ in 0..tries {
        assert_eq!(attempt(&app, "198.51.100.1").await, 401);
    }
    assert_eq!(attempt(&app, "198.51.100.1").await, 429);
    assert_eq!(
        attempt(&app, "198.51.100.2").await,
        401,
        "another client is not limited"
    );
    // A client that makes up a chain is still itself (the proxy appends what it saw).
    assert_eq!(attempt(&app, "203.0.113.5, 198.51.100.1").await, 429);

    // Without trusted proxies the header is anybody's: the peer counts.
    let untrusted = pool_config(&["ns-a".into()], "");
    let app = TestApp::spawn(&untrusted, crate::support::another_pool(&db).await).await;
    for i in 0..tries {
        let forwarded = if i % 2 == 0 {
            "198.51.100.3"
        } else {
            "198.51.100.4"
        };
        assert_eq!(attempt(&app, forwarded).await, 401);
    }
    assert_eq!(
        attempt(&app, "198.51.100.9").await,
        429,
        "a made-up header changes nothing"
    );
}
