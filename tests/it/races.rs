//! Racing claims: many requests, two app instances on one database.

use crate::documents::CREATE_DEPLOYMENT;
use crate::support::{POOL_OF_5, TestApp, another_pool};
use futures::future::join_all;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test]
async fn two_hundred_claims_for_five_namespaces_have_five_winners(db: PgPool) {
    let first = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let second = TestApp::spawn(POOL_OF_5, another_pool(&db).await).await;
    let admin = first.admin().await;
    let ws = first.create_workspace(&admin, "race").await;

    let names = ["pool-a", "pool-b", "pool-c", "pool-d", "pool-e"];
    let calls = (0..200).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        let vars = json!({
            "label": format!("racer-{i}"),
            "workspaceId": ws,
            "executor": "CeleryExecutor",
            "namespace": names[i % names.len()],
        });
        let admin = admin.clone();
        async move { app.gql(Some(&admin), CREATE_DEPLOYMENT, vars).await }
    });
    let results = join_all(calls).await;

    let winners: Vec<_> = results
        .iter()
        .filter(|r| r.get("errors").is_none())
        .collect();
    assert_eq!(winners.len(), 5, "exactly one winner per namespace");
    for loser in results.iter().filter(|r| r.get("errors").is_some()) {
        assert_eq!(
            loser["errors"][0]["extensions"]["code"], "CONFLICT",
            "{loser}"
        );
        assert!(loser["data"].is_null() || loser["data"]["createDeployment"].is_null());
    }

    // The database agrees: five Deployments, each the holder of its namespace.
    let rows: Vec<(String, Option<uuid::Uuid>, uuid::Uuid)> = sqlx::query_as(
        "select p.name, p.holder_deployment_id, d.id from pool_namespaces p
         join deployments d on d.namespace = p.name order by p.name",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 5);
    for (name, holder, deployment) in rows {
        assert_eq!(holder, Some(deployment), "{name}");
    }
    let deployments: i64 = sqlx::query_scalar("select count(*) from deployments")
        .fetch_one(&db)
        .await
        .unwrap();
    let claims: i64 = sqlx::query_scalar("select count(*) from events where kind = 'claim'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!((deployments, claims), (5, 5));
    assert!(first.available(&admin).await.is_empty());
}

#[sqlx::test]
async fn a_claim_racing_a_hard_delete_never_double_claims(db: PgPool) {
    let first = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let second = TestApp::spawn(POOL_OF_5, another_pool(&db).await).await;
    let admin = first.admin().await;
    let ws = first.create_workspace(&admin, "race").await;
    for round in 0..20 {
        let created = first
            .gql(
                Some(&admin),
                CREATE_DEPLOYMENT,
                json!({"label": format!("holder-{round}"), "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-a"}),
            )
            .await;
        let id = created["data"]["createDeployment"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let delete = first.gql(
            Some(&admin),
            crate::documents::DELETE_DEPLOYMENT,
            json!({"deploymentId": id, "deploymentHardDelete": true}),
        );
        let claims = (0..4).map(|i| {
            second.gql(
                Some(&admin),
                CREATE_DEPLOYMENT,
                json!({"label": format!("claimer-{round}-{i}"), "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-a"}),
            )
        });
        let (_, results) = tokio::join!(delete, join_all(claims));
        let won = results.iter().filter(|r| r.get("errors").is_none()).count();
        assert!(won <= 1, "round {round}: {won} claims won");
        let holders: i64 =
            sqlx::query_scalar("select count(*) from deployments where namespace = 'pool-a'")
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(holders as usize, won, "round {round}");
        // Free it for the next round.
        sqlx::query("delete from deployments where namespace = 'pool-a'")
            .execute(&db)
            .await
            .unwrap();
    }
}
