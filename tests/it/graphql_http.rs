//! GraphQL over HTTP, as its spec has it: a POST must be JSON (else 415),
//! and a client that accepts `application/graphql-response+json` gets it,
//! with 400 for a request refused before execution and 200 for one
//! executed. `application/json` clients (the astro CLI) keep 200 for every
//! well-formed request, as before.

use crate::support::{POOL_OF_5, TestApp};
use serde_json::{Value, json};
use sqlx::PgPool;

const NEW: &str = "application/graphql-response+json";

async fn post(
    app: &TestApp,
    token: Option<&str>,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: &str,
) -> (u16, String, Value) {
    let mut request = reqwest::Client::new()
        .post(app.url("/v1"))
        .body(body.to_owned());
    for (name, value) in [
        ("authorization", token),
        ("content-type", content_type),
        ("accept", accept),
    ] {
        if let Some(value) = value {
            request = request.header(name, value);
        }
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, kind, body)
}

fn query(document: &str) -> String {
    json!({ "query": document }).to_string()
}

#[sqlx::test]
async fn a_post_must_say_it_is_json(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let body = query("{ availableNamespaces { name } }");
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, _, answer) = post(&app, Some(&admin), content_type, None, &body).await;
        assert_eq!(status, 415, "{content_type:?}");
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    let (status, kind, answer) = post(
        &app,
        Some(&admin),
        Some("application/json; charset=utf-8"),
        None,
        &body,
    )
    .await;
    assert_eq!((status, kind.as_str()), (200, "application/json"));
    assert!(answer["data"]["availableNamespaces"].is_array());
}

#[sqlx::test]
async fn the_newer_media_type_tells_refused_from_executed(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let json = Some("application/json");
    let cases = [
        // (document, status with the newer type)
        ("{ availableNamespaces { name } }", 200),
        ("{ availableNamespaces { name ", 400),
        ("{ noSuchField }", 400),
        // Executed: a resolver's refusal is an execution error, with data.
        (
            "{ deployment(where: {id: \"00000000-0000-0000-0000-000000000000\"}) { id } }",
            200,
        ),
    ];
    for (document, expected) in cases {
        let (status, kind, answer) =
            post(&app, Some(&admin), json, Some(NEW), &query(document)).await;
        assert_eq!(status, expected, "{document}: {answer}");
        assert_eq!(kind, NEW, "{document}");
        // application/json: 200 for every well-formed request, as the astro CLI expects.
        let (status, kind, legacy) = post(
            &app,
            Some(&admin),
            json,
            Some("application/json"),
            &query(document),
        )
        .await;
        assert_eq!(
            (status, kind.as_str()),
            (200, "application/json"),
            "{document}"
        );
        assert_eq!(legacy, answer, "the same answer either way");
    }
    // Without a token: executed, refused by the resolver (data null), 200.
    let (status, _, answer) =
        post(&app, None, json, Some(NEW), &query("{ workspaces { id } }")).await;
    assert_eq!(status, 200, "{answer}");
    // A body that is not a GraphQL request: 400 either way.
    for accept in [Some(NEW), None] {
        let (status, _, _) = post(&app, Some(&admin), json, accept, "{").await;
        assert_eq!(status, 400);
    }
    // Declined with q=0, or not named: application/json.
    for accept in [
        format!("{NEW};q=0, application/json"),
        "*/*".to_owned(),
        "application/json, text/plain".to_owned(),
    ] {
        let (status, kind, _) =
            post(&app, Some(&admin), json, Some(&accept), &query("{ nope }")).await;
        assert_eq!(
            (status, kind.as_str()),
            (200, "application/json"),
            "{accept}"
        );
    }
    let (_, kind, _) = post(
        &app,
        Some(&admin),
        json,
        Some(&format!("application/json;q=0.9, {NEW}")),
        &query("{ availableNamespaces { name } }"),
    )
    .await;
    assert_eq!(kind, NEW);
}

/// The spec's own audit suite (graphql-http's `serverAudits`, pinned in
/// `scripts/graphql-http-audit`; `scripts/test.sh` installs it) against a
/// running server: every MUST and every SHOULD met (MAYs are notices).
#[sqlx::test]
async fn the_graphql_over_http_audit_finds_no_warning_and_no_error(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let token = app.token("SYSTEM_VIEWER", None).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/graphql-http-audit");
    assert!(
        dir.join("node_modules/graphql-http").exists(),
        "run `npm ci --prefix scripts/graphql-http-audit` (scripts/test.sh does)"
    );
    let out = tokio::process::Command::new("node")
        .arg(dir.join("audit.mjs"))
        .arg(app.url("/v1"))
        .arg(&token)
        .output()
        .await
        .expect("node runs the audit (Node.js 18 or later)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = report.lines().last().unwrap_or_default();
    assert!(last.ends_with(" 0 warn, 0 error"), "{report}");
    let ok: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(ok >= 40, "{report}");
}
