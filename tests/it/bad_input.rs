//! Bad input gets a clear error with the right code, and changes nothing.

use crate::documents::*;
use crate::support::{POOL_OF_5, TestApp, assert_no_internals};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

struct Case {
    name: &'static str,
    token: Option<String>,
    query: String,
    variables: Value,
    code: &'static str,
    says: &'static str,
}

fn case(
    name: &'static str,
    token: &str,
    query: &str,
    variables: Value,
    code: &'static str,
    says: &'static str,
) -> Case {
    Case {
        name,
        token: Some(token.to_owned()),
        query: query.to_owned(),
        variables,
        code,
        says,
    }
}

#[sqlx::test]
async fn every_bad_request_is_refused_with_its_code_and_changes_nothing(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    let held = app
        .ok(
            Some(&admin),
            CREATE_DEPLOYMENT,
            json!({"label": "held", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-a", "releaseName": "held-release"}),
        )
        .await;
    let held_id = held["createDeployment"]["id"].as_str().unwrap().to_owned();
    let revoked = app.token("WORKSPACE_ADMIN", Some(ws)).await;
    let revoked_id: Uuid = sqlx::query_scalar("select id from api_tokens where workspace_id = $1")
        .bind(ws)
        .fetch_one(&app.db)
        .await
        .unwrap();
    app.ok(
        Some(&admin),
        "mutation($id: Uuid!) { revokeToken(id: $id) }",
        json!({"id": revoked_id}),
    )
    .await;
    let viewer = app.token("WORKSPACE_VIEWER", Some(ws)).await;
    let create = |vars: Value| {
        crate::support::with(
            json!({"label": "x", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-b"}),
            vars,
        )
    };
    let nested = |depth: usize| format!("{}name{}", "ofType { ".repeat(depth), " }".repeat(depth));
    let too_deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} }} }} }} }} }}",
        nested(14)
    );
    let too_complex = format!(
        "{{ {} }}",
        (0..1100)
            .map(|i| format!("a{i}: appConfig {{ version }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );

    let cases = vec![
        case(
            "graphql syntax",
            &admin,
            "{ availableNamespaces { name }",
            Value::Null,
            "GRAPHQL_PARSE_FAILED",
            "",
        ),
        case(
            "unknown field",
            &admin,
            "{ availableNamespaces { nope } }",
            Value::Null,
            "GRAPHQL_VALIDATION_FAILED",
            "Cannot query field \"nope\" on type \"Namespace\".",
        ),
        case(
            "unknown root field",
            &admin,
            "{ nope }",
            Value::Null,
            "GRAPHQL_VALIDATION_FAILED",
            "Cannot query field \"nope\" on type \"Query\".",
        ),
        case(
            "too deep",
            &admin,
            &too_deep,
            Value::Null,
            "GRAPHQL_VALIDATION_FAILED",
            "nested too deep",
        ),
        case(
            "too complex",
            &admin,
            &too_complex,
            Value::Null,
            "GRAPHQL_VALIDATION_FAILED",
            "too complex",
        ),
        case(
            "namespace outside the pool",
            &admin,
            CREATE_DEPLOYMENT,
            create(json!({"namespace": "elsewhere"})),
            "BAD_USER_INPUT",
            "is not in the namespace pool",
        ),
        case(
            "invalid namespace name",
            &admin,
            CREATE_DEPLOYMENT,
            create(json!({"namespace": "Not_Valid"})),
            "BAD_USER_INPUT",
            "not a valid namespace name",
        ),
        case(
            "taken namespace",
            &admin,
            CREATE_DEPLOYMENT,
            create(json!({"namespace": "pool-a"})),
            "CONFLICT",
            "held by Deployment \"held-release\"",
        ),
        case(
            "invalid workspace uuid",
            &admin,
            CREATE_DEPLOYMENT,
            create(json!({"workspaceId": "not-a-uuid"})),
            "BAD_USER_INPUT",
            "not a UUID",
        ),
        case(
            "unknown workspace",
            &admin,
            CREATE_DEPLOYMENT,
            create(json!({"workspaceId": Uuid::new_v4()})),
            "NOT_FOUND",
            "does not exist",
        ),
        case(
            "invalid executor",
            &admin,
            CREATE_DEPLOYMENT,
            create(json!({"executor": "FastExecutor"})),
            "BAD_USER_INPUT",
            "",
        ),
        case(
            "label too long",
            &admin,
            CREATE_DEPLOYMENT,
            create(json!({"label": "x".repeat(129)})),
            "BAD_USER_INPUT",
            "at most 128",
        ),
        case(
            "empty label",
            &admin,
            CREATE_DEPLOYMENT,
            create(json!({"label": "  "})),
            "BAD_USER_INPUT",
            "must not be empty",
        ),
        case(
            "taken label",
            &admin,
            CREATE_DEPLOYMENT,
            create(json!({"label": "held"})),
            "CONFLICT",
            "labelled \"held\"",
        ),
        case(
            "invalid release name",
            &admin,
            CREATE_DEPLOYMENT,
            create(json!({"releaseName": "123"})),
            "BAD_USER_INPUT",
            "not a valid release name",
        ),
        case(
            "taken release name",
            &admin,
            CREATE_DEPLOYMENT,
            create(json!({"releaseName": "held-release"})),
            "CONFLICT",
            "is taken",
        ),
        case(
            "invalid deployment id",
            &admin,
            DEPLOYMENT,
            json!({"id": "42"}),
            "BAD_USER_INPUT",
            "not a Deployment id",
        ),
        case(
            "move namespace",
            &admin,
            UPDATE_DEPLOYMENT,
            json!({"deploymentId": held_id, "payload": {"namespace": "pool-c"}}),
            "BAD_USER_INPUT",
            "never moves",
        ),
        case(
            "payload not an object",
            &admin,
            UPDATE_DEPLOYMENT,
            json!({"deploymentId": held_id, "payload": [1]}),
            "BAD_USER_INPUT",
            "JSON object",
        ),
        case(
            "unknown deployment",
            &admin,
            DELETE_DEPLOYMENT,
            json!({"deploymentId": Uuid::new_v4()}),
            "NOT_FOUND",
            "not found",
        ),
        case(
            "negative take",
            &admin,
            "{ paginatedDeployments(take: -5) { id } }",
            Value::Null,
            "BAD_USER_INPUT",
            "take",
        ),
        case(
            "unknown token",
            "nsp_0000000000000000000000000000000000000000000000000000000000000000",
            AVAILABLE_NAMESPACES,
            Value::Null,
            "UNAUTHENTICATED",
            "You do not have the appropriate permissions for that",
        ),
        case(
            "garbage token",
            "hello",
            AVAILABLE_NAMESPACES,
            Value::Null,
            "UNAUTHENTICATED",
            "You do not have the appropriate permissions for that",
        ),
        case(
            "revoked token",
            &revoked,
            WORKSPACES,
            Value::Null,
            "UNAUTHENTICATED",
            "You do not have the appropriate permissions for that",
        ),
        case(
            "wrong role",
            &viewer,
            DELETE_DEPLOYMENT,
            json!({"deploymentId": held_id}),
            "FORBIDDEN",
            "You do not have the appropriate permissions for that",
        ),
        Case {
            name: "no token",
            token: None,
            query: CREATE_DEPLOYMENT.into(),
            variables: create(json!({})),
            code: "UNAUTHENTICATED",
            says: "You do not have the appropriate permissions for that",
        },
    ];

    for case in cases {
        let before = app.snapshot().await;
        let value = app
            .gql(case.token.as_deref(), &case.query, case.variables.clone())
            .await;
        let error = &value["errors"][0];
        assert_eq!(
            error["extensions"]["code"], case.code,
            "{}: {value}",
            case.name
        );
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(case.says), "{}: {message}", case.name);
        assert_no_internals(message);
        if ["UNAUTHENTICATED", "FORBIDDEN"].contains(&case.code) {
            assert_eq!(
                message, "You do not have the appropriate permissions for that",
                "{}",
                case.name
            );
            assert!(
                error["extensions"]["requiredRole"].is_string(),
                "{}: {value}",
                case.name
            );
        }
        assert_eq!(
            app.snapshot().await,
            before,
            "{} changed the database",
            case.name
        );
    }
}

#[sqlx::test]
async fn malformed_and_oversized_bodies_get_graphql_shaped_errors(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let before = app.snapshot().await;

    let (status, body) = app.post_raw(None, "{not json").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_PARSE_FAILED"
    );

    let (status, body) = app.post_raw(None, r#"{"variables": {}}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    let (status, body) = app
        .post_raw(
            None,
            r#"{"query": "{ appConfig { version } }", "variables": [1]}"#,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    let huge =
        json!({"query": "{ appConfig { version } }", "variables": {"pad": "x".repeat(300 * 1024)}});
    let (status, body) = app.post_raw(None, huge.to_string()).await;
    assert_eq!(status, 413);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_no_internals(body["errors"][0]["message"].as_str().unwrap());
    assert_eq!(app.snapshot().await, before);
}

#[sqlx::test]
async fn health_and_readiness(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        200
    );
    let page = reqwest::get(app.url("/v1")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("graphiql"));
}

#[sqlx::test]
async fn metrics_report_requests_errors_and_the_pool(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    app.ok(
        Some(&admin),
        CREATE_DEPLOYMENT,
        json!({"label": "a", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-a"}),
    )
    .await;
    app.err(
        Some(&admin),
        CREATE_DEPLOYMENT,
        json!({"label": "b", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-a"}),
        "CONFLICT",
    )
    .await;
    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for line in [
        "nspool_pool_namespaces{state=\"free\"} 4",
        "nspool_pool_namespaces{state=\"held\"} 1",
        "nspool_pool_namespaces{state=\"retired\"} 0",
        "nspool_graphql_errors_total{code=\"CONFLICT\"} 1",
        "nspool_http_requests_total{route=\"/v1\",status=\"200\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    assert!(text.contains("nspool_http_request_duration_seconds_bucket{le="));
}

#[sqlx::test]
async fn graphiql_loads_only_from_nspool(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let page = reqwest::get(app.url("/v1")).await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(
        csp.contains("script-src 'self';"),
        "no inline script: {csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script src=\"").count(),
        "every script is a file"
    );
    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for part in html.split(attribute).skip(1) {
            let url = part.split('"').next().unwrap();
            assert!(
                url.starts_with("/v1/assets/"),
                "{url} is not served by nspool"
            );
            assets.push(url.to_owned());
        }
    }
    assert_eq!(assets.len(), 5, "{assets:?}");
    // nspool's own boot script: revalidated, and it sets up the playground.
    let (own, vendored): (Vec<String>, Vec<String>) =
        assets.into_iter().partition(|url| url.contains("/nspool-"));
    assert_eq!(own, ["/v1/assets/nspool-graphiql.js"]);
    let boot = reqwest::get(app.url(&own[0])).await.unwrap();
    assert_eq!(boot.headers()["cache-control"], "no-cache");
    let boot = boot.text().await.unwrap();
    assert!(boot.contains("availableNamespaces") && boot.contains("\"Authorization\""));
    for url in vendored {
        let response = reqwest::get(app.url(&url)).await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = if url.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(kind.starts_with(expected), "{url}: {kind}");
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age=31536000")
        );
        assert!(response.bytes().await.unwrap().len() > 1_000, "{url}");
    }
    let missing = reqwest::get(app.url("/v1/assets/nope.js")).await.unwrap();
    assert_eq!(missing.status(), 404);
}
