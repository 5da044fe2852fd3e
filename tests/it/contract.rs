//! Every document form the astro CLI sends, against the real server.

use crate::documents::*;
use crate::support::{POOL_OF_5, TestApp};
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test]
async fn version_probe_answers_with_null_variables_and_any_token(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let revoked = app.admin().await;
    let id: uuid::Uuid = sqlx::query_scalar("select id from api_tokens limit 1")
        .fetch_one(&app.db)
        .await
        .unwrap();
    sqlx::query("update api_tokens set revoked_at = now() where id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    for token in [None, Some("nonsense"), Some(revoked.as_str())] {
        let data = app.ok(token, VERSION_PROBE, Value::Null).await;
        assert_eq!(data["appConfig"]["version"], "0.37.0");
        assert_eq!(data["appConfig"]["baseDomain"], "example.com");
    }
    // "variables": null literally, and no variables key at all.
    let (status, body) = app
        .post_raw(
            None,
            format!(r#"{{"query": {:?}, "variables": null}}"#, VERSION_PROBE),
        )
        .await;
    assert_eq!(
        (status, &body["data"]["appConfig"]["version"]),
        (200, &json!("0.37.0"))
    );
    let (status, body) = app
        .post_raw(None, format!(r#"{{"query": {VERSION_PROBE:?}}}"#))
        .await;
    assert_eq!(
        (status, &body["data"]["appConfig"]["version"]),
        (200, &json!("0.37.0"))
    );
}

#[sqlx::test]
async fn full_app_config_in_standard_pool_mode(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let data = app.ok(None, APP_CONFIG, json!({"clusterId": null})).await;
    let config = &data["appConfig"];
    assert_eq!(config["manualNamespaceNames"], true);
    assert_eq!(config["hardDeleteDeployment"], true);
    assert_eq!(config["manualReleaseNames"], true);
    assert_eq!(config["smtpConfigured"], false);
    assert_eq!(config["byoUpdateRegistryHost"], Value::Null);
    let flags = config["featureFlags"]
        .as_object()
        .expect("featureFlags is an object");
    for key in [
        "manualNamespaceNames",
        "hardDeleteDeployment",
        "namespaceFreeFormEntry",
        "triggererEnabled",
        "nfsMountDagDeployment",
        "gitSyncDagDeployment",
        "dagOnlyDeployment",
        "byoUpdateRegistryEnabled",
        "astroRuntimeEnabled",
    ] {
        assert!(flags[key].is_boolean(), "{key} in {flags:?}");
    }
    assert_eq!(flags["astroRuntimeEnabled"], true);
    assert_eq!(flags["manualNamespaceNames"], true);
}

#[sqlx::test]
async fn auth_config_points_at_the_token_page(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let data = app.ok(None, AUTH_CONFIG, json!({"redirect": null})).await;
    let auth = &data["authConfig"];
    assert_eq!(auth["localEnabled"], false);
    let url = auth["providers"][0]["url"].as_str().unwrap();
    assert_eq!(url, app.url("/v1/token"));
    let page = reqwest::get(url).await.unwrap().text().await.unwrap();
    assert!(page.contains("nspool token create"), "{page}");
}

#[sqlx::test]
async fn every_cli_document_runs(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin_token = app.admin().await;
    let admin = Some(admin_token.as_str());

    // createWorkspace with the default description.
    let ws = app
        .ok(admin, CREATE_WORKSPACE, json!({"label": "data team"}))
        .await;
    assert_eq!(ws["createWorkspace"]["description"], "N/A");
    let ws_id = ws["createWorkspace"]["id"].as_str().unwrap().to_owned();

    // workspace list and switch.
    let list = app.ok(admin, WORKSPACES, Value::Null).await;
    assert_eq!(list["workspaces"][0]["id"], ws_id.as_str());
    assert!(list["workspaces"][0]["roleBindings"].is_array());
    let page = app
        .ok(
            admin,
            PAGINATED_WORKSPACES,
            json!({"pageSize": 10, "pageNumber": 0}),
        )
        .await;
    assert_eq!(page["paginatedWorkspaces"].as_array().unwrap().len(), 1);
    let one = app
        .ok(admin, WORKSPACE, json!({"workspaceUuid": ws_id}))
        .await;
    assert_eq!(one["workspace"]["label"], "data team");

    let free = app.ok(admin, AVAILABLE_NAMESPACES, Value::Null).await;
    assert_eq!(free["availableNamespaces"][0]["name"], "pool-a");

    // createDeployment with the CLI's declarations; $triggererReplicas absent.
    let created = app
        .ok(
            admin,
            CREATE_DEPLOYMENT,
            json!({
                "label": "etl",
                "workspaceId": ws_id,
                "executor": "CeleryExecutor",
                "runtimeVersion": "9.1.0",
                "namespace": "pool-a",
                "releaseName": "",
                "dagDeployment": {"type": "image", "nfsLocation": "", "repositoryUrl": "", "branchName": "", "syncInterval": 1, "syncTimeout": 120, "ephemeralStorage": 2, "dagDirectoryLocation": "", "rev": "", "sshKey": "", "knownHosts": ""},
            }),
        )
        .await;
    let d = &created["createDeployment"];
    assert_eq!(d["type"], "airflow");
    assert_eq!(d["label"], "etl");
    assert_eq!(d["version"], "1.11.4");
    assert_eq!(d["runtimeVersion"], "9.1.0");
    let release = d["releaseName"].as_str().unwrap().to_owned();
    assert_eq!(
        d["urls"],
        json!([
            {"type": "airflow", "url": format!("https://deployments.example.com/{release}/airflow")},
            {"type": "flower", "url": format!("https://deployments.example.com/{release}/flower")},
        ])
    );
    let id = d["id"].as_str().unwrap().to_owned();

    let listed = app
        .ok(
            admin,
            WORKSPACE_DEPLOYMENTS,
            json!({"workspaceId": ws_id, "releaseName": release}),
        )
        .await;
    assert_eq!(listed["workspaceDeployments"][0]["id"], id.as_str());
    assert_eq!(
        listed["workspaceDeployments"][0]["workspace"]["label"],
        "data team"
    );
    let all = app.ok(admin, PAGINATED_DEPLOYMENTS, Value::Null).await;
    assert_eq!(all["paginatedDeployments"].as_array().unwrap().len(), 1);

    let one = app.ok(admin, DEPLOYMENT, json!({"id": id})).await;
    assert_eq!(one["deployment"]["desiredRuntimeVersion"], "9.1.0");
    assert_eq!(one["deployment"]["dagDeployment"]["type"], "image");

    // updateDeployment with $payload: JSON! and an undeclared `sync` variable.
    let updated = app
        .ok(
            admin,
            UPDATE_DEPLOYMENT,
            json!({"deploymentId": id, "payload": {"label": "etl-2", "description": "nightly"}, "sync": false}),
        )
        .await;
    assert_eq!(updated["updateDeployment"]["label"], "etl-2");
    assert_eq!(updated["updateDeployment"]["description"], "nightly");

    // upsertDeployment: update by id, then create without one.
    let upserted = app
        .ok(
            admin,
            UPSERT_DEPLOYMENT,
            json!({"deploymentId": id, "description": "upserted"}),
        )
        .await;
    assert_eq!(upserted["upsertDeployment"]["description"], "upserted");
    assert_eq!(upserted["upsertDeployment"]["namespace"], "pool-a");
    let created = app
        .ok(
            admin,
            UPSERT_DEPLOYMENT,
            json!({"workspaceId": ws_id, "label": "second", "namespace": "pool-b", "executor": "KubernetesExecutor"}),
        )
        .await;
    assert_eq!(created["upsertDeployment"]["namespace"], "pool-b");

    // deleteDeployment with both variables (and the CLI's misspelt extra one).
    let deleted = app
        .ok(
            admin,
            DELETE_DEPLOYMENT,
            json!({"deploymentId": id, "deploymentHardDelete": true, "delpoymentHardDelete": true}),
        )
        .await;
    assert_eq!(deleted["deleteDeployment"]["id"], id.as_str());
    assert!(
        app.available(&admin_token)
            .await
            .contains(&"pool-a".to_owned())
    );
}

#[sqlx::test]
async fn introspection_passes_the_limits(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let data = app.ok(None, INTROSPECTION, Value::Null).await;
    let types = data["__schema"]["types"].as_array().unwrap();
    let names: Vec<&str> = types.iter().filter_map(|t| t["name"].as_str()).collect();
    for expected in [
        "Uuid",
        "JSON",
        "DateTime",
        "ExecutorType",
        "DagDeployment",
        "Deployment",
    ] {
        assert!(names.contains(&expected), "{expected} missing");
    }
    let executor = types.iter().find(|t| t["name"] == "ExecutorType").unwrap();
    let items: Vec<&str> = executor["enumValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        items,
        ["LocalExecutor", "CeleryExecutor", "KubernetesExecutor"]
    );
}

#[test]
fn committed_schema_matches_the_code() {
    let committed = include_str!("../../graphql/schema.graphql");
    let current = nspool::graphql::sdl();
    assert!(
        committed == current,
        "graphql/schema.graphql is stale: run `cargo run -- schema > graphql/schema.graphql`"
    );
}
