//! The CLI's flow end to end over HTTP, and the pool's life around it.

use crate::documents::*;
use crate::support::{POOL_OF_5, TestApp};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

async fn create(
    app: &TestApp,
    token: &str,
    ws: Uuid,
    label: &str,
    namespace: Option<&str>,
) -> Value {
    app.gql(
        Some(token),
        CREATE_DEPLOYMENT,
        json!({"label": label, "workspaceId": ws, "executor": "LocalExecutor", "namespace": namespace}),
    )
    .await
}

fn id_of(value: &Value) -> String {
    value["data"]["createDeployment"]["id"]
        .as_str()
        .expect("created")
        .to_owned()
}

const POOL_VIEW: &str = "{ poolNamespaces { name state source reclaimableAt deployment { releaseName deletedAt } events { kind reason actor } } }";

fn state_of<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["poolNamespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {view}"))
}

#[sqlx::test]
async fn claim_conflict_empty_pool_soft_and_hard_delete(db: PgPool) {
    let app = TestApp::spawn(
        r#"
global:
  features:
    namespacePools:
      enabled: true
      namespaces: {names: [ns-a, ns-b]}
"#,
        db,
    )
    .await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    let editor = app.token("WORKSPACE_ADMIN", Some(ws)).await;

    assert_eq!(app.available(&editor).await, ["ns-a", "ns-b"]);
    let first = create(&app, &editor, ws, "one", Some("ns-a")).await;
    let first_id = id_of(&first);
    assert_eq!(app.available(&editor).await, ["ns-b"]);

    // Reuse: CONFLICT naming the namespace and its holder.
    let release = first["data"]["createDeployment"]["releaseName"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = app
        .err(Some(&editor), CREATE_DEPLOYMENT, json!({"label": "two", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "ns-a"}), "CONFLICT")
        .await;
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("\"ns-a\"") && message.contains(&release),
        "{message}"
    );
    assert!(message.contains("Free namespaces: ns-b"), "{message}");

    // Empty pool: says none is free and how one comes back.
    let _second = id_of(&create(&app, &editor, ws, "two", Some("ns-b")).await);
    assert!(app.available(&editor).await.is_empty());
    let err = app
        .err(
            Some(&editor),
            CREATE_DEPLOYMENT,
            json!({"label": "three", "workspaceId": ws, "executor": "LocalExecutor"}),
            "BAD_USER_INPUT",
        )
        .await;
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("No namespace in the pool is free"),
        "{message}"
    );
    assert!(message.contains("hard-deleted"), "{message}");

    // Soft delete keeps the namespace held, with a reclaim time.
    let deleted = app
        .ok(
            Some(&editor),
            DELETE_DEPLOYMENT,
            json!({"deploymentId": first_id, "deploymentHardDelete": false}),
        )
        .await;
    assert_eq!(deleted["deleteDeployment"]["id"], first_id.as_str());
    assert!(app.available(&editor).await.is_empty());
    let view = app.ok(Some(&admin), POOL_VIEW, Value::Null).await;
    let a = state_of(&view, "ns-a");
    assert_eq!(a["state"], "SoftDeleted");
    assert!(a["reclaimableAt"].is_string(), "{a}");
    assert!(a["deployment"]["deletedAt"].is_string());
    let err = app
        .err(Some(&editor), CREATE_DEPLOYMENT, json!({"label": "three", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "ns-a"}), "CONFLICT")
        .await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("soft-deleted Deployment"),
        "{err}"
    );
    // The label is free again among live Deployments; the release name is not.
    let relabel = create(&app, &editor, ws, "one", None).await;
    assert_eq!(
        relabel["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "pool is empty: {relabel}"
    );

    // A hard delete of the soft-deleted Deployment frees it at once.
    app.ok(
        Some(&editor),
        DELETE_DEPLOYMENT,
        json!({"deploymentId": first_id, "deploymentHardDelete": true}),
    )
    .await;
    assert_eq!(app.available(&editor).await, ["ns-a"]);
    let view = app.ok(Some(&admin), POOL_VIEW, Value::Null).await;
    let kinds: Vec<&str> = state_of(&view, "ns-a")["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["release", "soft_delete", "claim", "add"]);
    // The release name is free again after a hard delete (Houston's rule).
    let gone: i64 = sqlx::query_scalar("select count(*) from deployments where release_name = $1")
        .bind(&release)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(gone, 0);
}

#[sqlx::test]
async fn hard_delete_where_not_allowed_is_a_soft_delete_that_says_why(db: PgPool) {
    // Advanced mode without hardDeleteDeployment.
    let app = TestApp::spawn(
        "astronomer: {houston: {config: {deployments: {manualNamespaceNames: true, preCreatedNamespaces: [{name: adv-1}]}}}}",
        db,
    )
    .await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    let config = app.ok(None, APP_CONFIG, Value::Null).await;
    assert_eq!(config["appConfig"]["hardDeleteDeployment"], false);
    assert_eq!(config["appConfig"]["manualNamespaceNames"], true);
    let id = id_of(&create(&app, &admin, ws, "one", Some("adv-1")).await);
    app.ok(
        Some(&admin),
        DELETE_DEPLOYMENT,
        json!({"deploymentId": id, "deploymentHardDelete": true}),
    )
    .await;
    assert!(app.available(&admin).await.is_empty(), "still held");
    let reason: String = sqlx::query_scalar("select reason from events where kind = 'soft_delete'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(reason.contains("hardDeleteDeployment is false"), "{reason}");
    // A second delete says it is already deleted.
    app.err(
        Some(&admin),
        DELETE_DEPLOYMENT,
        json!({"deploymentId": id, "deploymentHardDelete": true}),
        "NOT_FOUND",
    )
    .await;
}

#[sqlx::test]
async fn reclaim_frees_only_what_is_past_retention(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    let old = id_of(&create(&app, &admin, ws, "old", Some("pool-a")).await);
    let recent = id_of(&create(&app, &admin, ws, "recent", Some("pool-b")).await);
    let live = id_of(&create(&app, &admin, ws, "live", Some("pool-c")).await);
    for id in [&old, &recent] {
        app.ok(Some(&admin), DELETE_DEPLOYMENT, json!({"deploymentId": id}))
            .await;
    }
    sqlx::query("update deployments set deleted_at = now() - interval '20 days' where id = $1")
        .bind(Uuid::parse_str(&old).unwrap())
        .execute(&app.db)
        .await
        .unwrap();

    let dry = app
        .ok(
            Some(&admin),
            "mutation { reclaimDeployments(dryRun: true) { dryRun deployments { namespace } } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        dry["reclaimDeployments"]["deployments"],
        json!([{"namespace": "pool-a"}])
    );
    assert!(
        !app.available(&admin).await.contains(&"pool-a".to_owned()),
        "dry run changes nothing"
    );

    let report = app
        .service
        .reclaim(&nspool::domain::Caller::Operator, 14, false)
        .await
        .unwrap();
    let freed: Vec<&str> = report
        .deployments
        .iter()
        .map(|d| d.namespace.as_str())
        .collect();
    assert_eq!(freed, ["pool-a"]);
    assert_eq!(app.available(&admin).await, ["pool-a", "pool-d", "pool-e"]);
    let again = app
        .service
        .reclaim(&nspool::domain::Caller::Operator, 14, false)
        .await
        .unwrap();
    assert!(
        again.deployments.is_empty(),
        "each Deployment is reclaimed once"
    );
    let events: i64 = sqlx::query_scalar("select count(*) from events where kind = 'reclaim'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(events, 1);
    // The live one and the recent one are untouched.
    for id in [&recent, &live] {
        let data = app.ok(Some(&admin), DEPLOYMENT, json!({"id": id})).await;
        assert_eq!(data["deployment"]["id"], id.as_str());
    }
}

#[sqlx::test]
async fn removed_names_are_retired_never_deleted_and_holders_keep_working(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    let held = id_of(&create(&app, &admin, ws, "held", Some("pool-e")).await);

    // A restart with pool-d and pool-e removed from the config.
    let smaller = POOL_OF_5.replace("pool-d, pool-e", "pool-new");
    let app = TestApp::spawn(&smaller, db).await;
    assert_eq!(
        app.available(&admin).await,
        ["pool-a", "pool-b", "pool-c", "pool-new"]
    );
    let view = app.ok(Some(&admin), POOL_VIEW, Value::Null).await;
    assert_eq!(state_of(&view, "pool-d")["state"], "Retired");
    assert_eq!(state_of(&view, "pool-e")["state"], "Retired");
    assert!(state_of(&view, "pool-e")["deployment"]["releaseName"].is_string());
    let err = app
        .err(Some(&admin), CREATE_DEPLOYMENT, json!({"label": "x", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-d"}), "BAD_USER_INPUT")
        .await;
    assert!(
        err["message"].as_str().unwrap().contains("retired"),
        "{err}"
    );
    // The holder in a retired namespace still works, and is never offered after its delete.
    app.ok(
        Some(&admin),
        UPDATE_DEPLOYMENT,
        json!({"deploymentId": held, "payload": {"description": "still here"}}),
    )
    .await;
    app.ok(
        Some(&admin),
        DELETE_DEPLOYMENT,
        json!({"deploymentId": held, "deploymentHardDelete": true}),
    )
    .await;
    assert!(!app.available(&admin).await.contains(&"pool-e".to_owned()));
    let rows: i64 = sqlx::query_scalar("select count(*) from pool_namespaces")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 6, "retired rows are kept");
}

#[sqlx::test]
async fn outside_pool_mode_namespaces_follow_houston(db: PgPool) {
    let app = TestApp::spawn("nspool: {platformNamespace: astro}", db.clone()).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    let created = create(&app, &admin, ws, "one", None).await;
    let release = created["data"]["createDeployment"]["releaseName"]
        .as_str()
        .unwrap();
    let namespace: String = sqlx::query_scalar("select namespace from deployments")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(namespace, format!("astro-{release}"));
    // A chosen namespace is refused unless free-form entry is on.
    app.err(Some(&admin), CREATE_DEPLOYMENT, json!({"label": "two", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "mine"}), "BAD_USER_INPUT")
        .await;
    let app = TestApp::spawn(
        "astronomer: {houston: {config: {deployments: {namespaceFreeFormEntry: true}}}}",
        db,
    )
    .await;
    let created = create(&app, &admin, ws, "two", Some("mine")).await;
    assert!(created.get("errors").is_none(), "{created}");
    let err = app
        .err(Some(&admin), CREATE_DEPLOYMENT, json!({"label": "three", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "mine"}), "CONFLICT")
        .await;
    assert!(
        err["message"].as_str().unwrap().contains("\"mine\""),
        "{err}"
    );
}

#[sqlx::test]
async fn roles_limit_what_a_token_may_do(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "mine").await;
    let other = app.create_workspace(&admin, "other").await;
    let viewer = app.token("WORKSPACE_VIEWER", Some(ws)).await;
    let editor = app.token("WORKSPACE_EDITOR", Some(ws)).await;
    let sys_viewer = app.token("SYSTEM_VIEWER", None).await;

    // Workspace roles see only their workspace.
    let list = app.ok(Some(&editor), WORKSPACES, Value::Null).await;
    assert_eq!(list["workspaces"].as_array().unwrap().len(), 1);
    let err = app
        .err(
            Some(&editor),
            WORKSPACE,
            json!({"workspaceUuid": other}),
            "FORBIDDEN",
        )
        .await;
    assert_eq!(
        err["message"],
        "You do not have the appropriate permissions for that"
    );
    assert_eq!(err["extensions"]["requiredRole"], "WORKSPACE_VIEWER");
    let all = app.ok(Some(&sys_viewer), WORKSPACES, Value::Null).await;
    assert_eq!(all["workspaces"].as_array().unwrap().len(), 2);

    // Viewer cannot create; editor can but cannot delete; system viewer cannot create.
    let vars = json!({"label": "x", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-a"});
    let err = app
        .err(Some(&viewer), CREATE_DEPLOYMENT, vars.clone(), "FORBIDDEN")
        .await;
    assert_eq!(err["extensions"]["requiredRole"], "WORKSPACE_EDITOR");
    app.err(
        Some(&sys_viewer),
        CREATE_DEPLOYMENT,
        vars.clone(),
        "FORBIDDEN",
    )
    .await;
    let other_vars = json!({"label": "x", "workspaceId": other, "executor": "LocalExecutor", "namespace": "pool-a"});
    app.err(Some(&editor), CREATE_DEPLOYMENT, other_vars, "FORBIDDEN")
        .await;
    let id = id_of(&app.gql(Some(&editor), CREATE_DEPLOYMENT, vars).await);
    let err = app
        .err(
            Some(&editor),
            DELETE_DEPLOYMENT,
            json!({"deploymentId": id}),
            "FORBIDDEN",
        )
        .await;
    assert_eq!(err["extensions"]["requiredRole"], "WORKSPACE_ADMIN");
    // Viewers read; system admin things stay with system admins.
    app.ok(Some(&viewer), DEPLOYMENT, json!({"id": id})).await;
    app.err(
        Some(&editor),
        CREATE_WORKSPACE,
        json!({"label": "x"}),
        "FORBIDDEN",
    )
    .await;
    app.err(Some(&editor), POOL_VIEW, Value::Null, "FORBIDDEN")
        .await;
    app.ok(Some(&sys_viewer), POOL_VIEW, Value::Null).await;
    // Bearer form works too.
    app.ok(
        Some(&format!("Bearer {viewer}")),
        AVAILABLE_NAMESPACES,
        Value::Null,
    )
    .await;
}

const DELETE_ANSWERING_DELETED_AT: &str = "mutation ($id: Uuid!, $hard: Boolean) { deleteDeployment(deploymentUuid: $id, deploymentHardDelete: $hard) { id deletedAt } }";

/// Issue 25: a hard delete answered `deletedAt: null`. It answers the time of
/// the deletion; a Deployment soft-deleted before keeps that time.
#[sqlx::test]
async fn a_hard_delete_answers_when_it_deleted(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "team").await;
    let live = id_of(&create(&app, &admin, ws, "live", Some("pool-a")).await);
    let before = chrono::Utc::now();
    let deleted = app
        .ok(
            Some(&admin),
            DELETE_ANSWERING_DELETED_AT,
            json!({"id": live, "hard": true}),
        )
        .await;
    let after = chrono::Utc::now();
    let at = deleted["deleteDeployment"]["deletedAt"]
        .as_str()
        .unwrap_or_else(|| panic!("deletedAt is set: {deleted}"));
    let at = chrono::DateTime::parse_from_rfc3339(at).expect("an RFC 3339 time");
    // The database's clock and this one agree to well within a second here.
    assert!(
        at >= before - chrono::Duration::seconds(1) && at <= after + chrono::Duration::seconds(1),
        "{at} not between {before} and {after}"
    );

    let soft = id_of(&create(&app, &admin, ws, "soft", Some("pool-b")).await);
    let soft_deleted = app
        .ok(
            Some(&admin),
            DELETE_ANSWERING_DELETED_AT,
            json!({"id": soft, "hard": false}),
        )
        .await;
    let soft_at = soft_deleted["deleteDeployment"]["deletedAt"].clone();
    assert!(soft_at.is_string(), "{soft_deleted}");
    let hard = app
        .ok(
            Some(&admin),
            DELETE_ANSWERING_DELETED_AT,
            json!({"id": soft, "hard": true}),
        )
        .await;
    assert_eq!(hard["deleteDeployment"]["deletedAt"], soft_at, "{hard}");
}
