//! Day-2 operations through the API: cordons (one namespace, the whole
//! pool) and workspace quotas, each enforced by the database across replicas.

use crate::documents::{CREATE_DEPLOYMENT, DELETE_DEPLOYMENT};
use crate::support::{POOL_OF_5, TestApp, another_pool, pool_config, pool_names};
use futures::future::join_all;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};

const CORDON: &str = "mutation($name: String!, $reason: String!, $until: DateTime) {
    cordonNamespace(name: $name, reason: $reason, until: $until) { name state cordon { reason by at until } } }";
const UNCORDON: &str =
    "mutation($name: String!) { uncordonNamespace(name: $name) { name state cordon { reason } } }";
const CORDON_POOL: &str =
    "mutation($reason: String!, $until: DateTime) { cordonPool(reason: $reason, until: $until) }";
const UNCORDON_POOL: &str = "mutation { uncordonPool }";
const SET_QUOTA: &str = "mutation($ws: Uuid!, $max: Int) {
    setWorkspaceQuota(workspaceUuid: $ws, maxNamespaces: $max) { id namespaceQuota namespacesHeld } }";
const HOLDINGS: &str =
    "query($ws: Uuid!) { workspace(workspaceUuid: $ws) { namespaceQuota namespacesHeld } }";
const STATE: &str = "query($name: String!) { poolNamespace(name: $name) { state cordon { reason by until } events(last: 5) { kind reason } } }";

async fn claim(
    app: &TestApp,
    token: &str,
    ws: impl ToString,
    namespace: &str,
    label: &str,
) -> Value {
    app.gql(
        Some(token),
        CREATE_DEPLOYMENT,
        json!({"label": label, "workspaceId": ws.to_string(), "executor": "LocalExecutor", "namespace": namespace}),
    )
    .await
}

fn id_of(created: &Value) -> String {
    created["data"]["createDeployment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("not created: {created}"))
        .to_owned()
}

/// Waits until `app` offers what `want` says of `name` (replicas learn of
/// another's write from its notice).
async fn offered_on(app: &TestApp, token: &str, name: &str, want: bool) {
    let started = Instant::now();
    while app.available(token).await.contains(&name.to_owned()) != want {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name} offered should be {want}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[sqlx::test]
async fn a_cordoned_namespace_is_never_offered_and_stays_out_through_its_release(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "ops").await;
    let held = id_of(&claim(&app, &admin, ws, "pool-a", "etl").await);

    // Cordon a held namespace: its holder keeps it.
    let data = app
        .ok(
            Some(&admin),
            CORDON,
            json!({"name": "pool-a", "reason": "node pool upgrade"}),
        )
        .await;
    let cordoned = &data["cordonNamespace"];
    assert_eq!(cordoned["state"], "Held");
    assert_eq!(cordoned["cordon"]["reason"], "node pool upgrade");
    assert!(
        cordoned["cordon"]["by"]
            .as_str()
            .is_some_and(|b| !b.is_empty())
    );
    assert!(cordoned["cordon"]["until"].is_null());

    // A free one cordoned: gone from the offer at once (the writer reads its write).
    app.ok(
        Some(&admin),
        CORDON,
        json!({"name": "pool-b", "reason": "quota review"}),
    )
    .await;
    assert!(!app.available(&admin).await.contains(&"pool-b".to_owned()));
    let refused = claim(&app, &admin, ws, "pool-b", "b").await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "CONFLICT",
        "{refused}"
    );
    let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cordoned") && message.contains("quota review"),
        "{message}"
    );

    // The holder goes: the namespace stays out, shown as cordoned.
    app.ok(
        Some(&admin),
        DELETE_DEPLOYMENT,
        json!({"deploymentId": held, "deploymentHardDelete": true}),
    )
    .await;
    assert!(!app.available(&admin).await.contains(&"pool-a".to_owned()));
    let state = app.ok(Some(&admin), STATE, json!({"name": "pool-a"})).await;
    assert_eq!(state["poolNamespace"]["state"], "Cordoned", "{state}");
    assert_eq!(
        state["poolNamespace"]["cordon"]["reason"],
        "node pool upgrade"
    );
    let refused = claim(&app, &admin, ws, "pool-a", "again").await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("node pool upgrade")),
        "{refused}"
    );

    // Uncordoned: offered again, at once for the writer.
    let data = app
        .ok(Some(&admin), UNCORDON, json!({"name": "pool-a"}))
        .await;
    assert_eq!(data["uncordonNamespace"]["state"], "Free");
    assert!(data["uncordonNamespace"]["cordon"].is_null());
    assert!(app.available(&admin).await.contains(&"pool-a".to_owned()));
    id_of(&claim(&app, &admin, ws, "pool-a", "back").await);

    // The history tells it.
    let state = app.ok(Some(&admin), STATE, json!({"name": "pool-a"})).await;
    let kinds: Vec<&str> = state["poolNamespace"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"cordon") && kinds.contains(&"uncordon"),
        "{kinds:?}"
    );
}

#[sqlx::test]
async fn cordons_are_for_system_admins_and_bad_input_writes_nothing(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let editor = app.token("SYSTEM_EDITOR", None).await;
    let before = app.snapshot().await;
    let refusals = [
        (
            Some(&editor),
            CORDON,
            json!({"name": "pool-a", "reason": "mine"}),
            "FORBIDDEN",
        ),
        (None, CORDON_POOL, json!({"reason": "x"}), "UNAUTHENTICATED"),
        (
            Some(&admin),
            CORDON,
            json!({"name": "pool-a", "reason": "   "}),
            "BAD_USER_INPUT",
        ),
        (
            Some(&admin),
            CORDON,
            json!({"name": "pool-a", "reason": "late", "until": "2020-01-01T00:00:00Z"}),
            "BAD_USER_INPUT",
        ),
        (
            Some(&admin),
            CORDON,
            json!({"name": "not-in-pool", "reason": "x"}),
            "NOT_FOUND",
        ),
        (
            Some(&admin),
            UNCORDON,
            json!({"name": "pool-a"}),
            "CONFLICT",
        ),
        (
            Some(&admin),
            SET_QUOTA,
            json!({"ws": uuid::Uuid::new_v4(), "max": 2}),
            "NOT_FOUND",
        ),
    ];
    for (token, document, variables, code) in refusals {
        app.err(token.map(String::as_str), document, variables, code)
            .await;
    }
    let ws = app.create_workspace(&admin, "q").await;
    let after_ws = app.snapshot().await;
    app.err(
        Some(&admin),
        SET_QUOTA,
        json!({"ws": ws, "max": -1}),
        "BAD_USER_INPUT",
    )
    .await;
    assert_eq!(app.snapshot().await, after_ws);
    assert_ne!(before, after_ws);
    let cordons: i64 =
        sqlx::query_scalar("select count(*) from pool_namespaces where cordoned_at is not null")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(cordons, 0);
    // Uncordoning an open pool is no error: false.
    let data = app.ok(Some(&admin), UNCORDON_POOL, Value::Null).await;
    assert_eq!(data["uncordonPool"], false);
}

#[sqlx::test]
async fn a_cordon_with_an_end_lifts_itself(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let until = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let data = app
        .ok(
            Some(&admin),
            CORDON,
            json!({"name": "pool-c", "reason": "short", "until": until.to_rfc3339()}),
        )
        .await;
    assert!(data["cordonNamespace"]["cordon"]["until"].is_string());
    app.ok(
        Some(&admin),
        CORDON_POOL,
        json!({"reason": "short too", "until": until.to_rfc3339()}),
    )
    .await;
    // Before its end the sweep lifts nothing.
    app.service.expire_cordons().await.expect("sweep");
    assert!(app.available(&admin).await.is_empty());
    tokio::time::sleep(Duration::from_millis(1700)).await;
    app.service.expire_cordons().await.expect("sweep");
    offered_on(&app, &admin, "pool-c", true).await;
    let state = app.ok(Some(&admin), STATE, json!({"name": "pool-c"})).await;
    assert!(state["poolNamespace"]["cordon"].is_null());
    assert_eq!(state["poolNamespace"]["events"][0]["kind"], "uncordon");
    let cordon = app
        .ok(Some(&admin), "{ poolCordon { reason } }", Value::Null)
        .await;
    assert!(cordon["poolCordon"].is_null());
}

#[sqlx::test]
async fn a_cordoned_pool_offers_nothing_on_any_replica_while_releases_go_on(db: PgPool) {
    let first = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let second = TestApp::spawn(POOL_OF_5, another_pool(&db).await).await;
    let admin = first.admin().await;
    let ws = first.create_workspace(&admin, "pool").await;
    let held = id_of(&claim(&first, &admin, ws, "pool-a", "etl").await);
    offered_on(&second, &admin, "pool-b", true).await;

    let data = first
        .ok(
            Some(&admin),
            CORDON_POOL,
            json!({"reason": "cluster upgrade tonight"}),
        )
        .await;
    assert_eq!(data["cordonPool"], true);
    assert!(
        first.available(&admin).await.is_empty(),
        "the writer reads its write"
    );
    offered_on(&second, &admin, "pool-b", false).await;
    assert!(second.available(&admin).await.is_empty());
    let cordon = second
        .ok(
            Some(&admin),
            "{ poolCordon { reason by at until } }",
            Value::Null,
        )
        .await;
    assert_eq!(cordon["poolCordon"]["reason"], "cluster upgrade tonight");

    for app in [&first, &second] {
        let refused = claim(app, &admin, ws, "pool-b", "b").await;
        let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
        assert_eq!(refused["errors"][0]["extensions"]["code"], "CONFLICT");
        assert!(message.contains("cluster upgrade tonight"), "{message}");
    }
    // A release goes on; the namespace is free underneath, not offered.
    first
        .ok(
            Some(&admin),
            DELETE_DEPLOYMENT,
            json!({"deploymentId": held, "deploymentHardDelete": true}),
        )
        .await;
    assert!(first.available(&admin).await.is_empty());

    let data = second.ok(Some(&admin), UNCORDON_POOL, Value::Null).await;
    assert_eq!(data["uncordonPool"], true);
    assert_eq!(
        second.available(&admin).await.len(),
        5,
        "the writer reads its write"
    );
    offered_on(&first, &admin, "pool-a", true).await;
    id_of(&claim(&first, &admin, ws, "pool-a", "after").await);
}

/// Three replicas of one pool of `size` on one database.
async fn three_replicas(size: usize, db: &PgPool) -> [TestApp; 3] {
    let config = pool_config(&pool_names(size), "");
    [
        TestApp::spawn(&config, db.clone()).await,
        TestApp::spawn(&config, another_pool(db).await).await,
        TestApp::spawn(&config, another_pool(db).await).await,
    ]
}

/// Quota 2, 24 claims of 24 different namespaces at once across three
/// replicas: the database lets exactly two through.
#[sqlx::test]
async fn racing_claims_across_three_replicas_never_pass_the_quota(db: PgPool) {
    let apps = three_replicas(30, &db).await;
    let admin = apps[0].admin().await;
    let ws = apps[0].create_workspace(&admin, "quota").await;
    let data = apps[1]
        .ok(Some(&admin), SET_QUOTA, json!({"ws": ws, "max": 2}))
        .await;
    assert_eq!(data["setWorkspaceQuota"]["namespaceQuota"], 2);
    assert_eq!(data["setWorkspaceQuota"]["namespacesHeld"], 0);

    let racers = (0..24).map(|i| {
        let app = &apps[i % 3];
        let admin = admin.clone();
        async move {
            claim(
                app,
                &admin,
                ws,
                &format!("ns-{i:03}"),
                &format!("racer-{i}"),
            )
            .await
        }
    });
    let results = join_all(racers).await;
    let won = results.iter().filter(|r| r.get("errors").is_none()).count();
    assert_eq!(won, 2, "exactly the quota wins");
    for lost in results.iter().filter(|r| r.get("errors").is_some()) {
        assert_eq!(
            lost["errors"][0]["extensions"]["code"], "CONFLICT",
            "{lost}"
        );
        let message = lost["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("quota is 2") && message.contains("hold 2"),
            "{message}"
        );
    }
    let held: i64 = sqlx::query_scalar(
        "select count(*) from pool_namespaces p join deployments d on d.id = p.holder_deployment_id
         where d.workspace_id = $1",
    )
    .bind(ws)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(held, 2);
    let data = apps[2].ok(Some(&admin), HOLDINGS, json!({"ws": ws})).await;
    assert_eq!(data["workspace"]["namespacesHeld"], 2);
}

#[sqlx::test]
async fn soft_deleted_deployments_count_and_the_config_default_applies(db: PgPool) {
    let config = pool_config(&pool_names(6), "nspool: {workspaceQuota: 1}");
    let app = TestApp::spawn(&config, db).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "default").await;
    let other = app.create_workspace(&admin, "other").await;
    let data = app.ok(Some(&admin), HOLDINGS, json!({"ws": ws})).await;
    assert_eq!(data["workspace"]["namespaceQuota"], 1);
    let first = id_of(&claim(&app, &admin, ws, "ns-000", "first").await);
    let refused = claim(&app, &admin, ws, "ns-001", "second").await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("quota is 1")),
        "{refused}"
    );
    // Another workspace has its own count.
    id_of(&claim(&app, &admin, other, "ns-002", "theirs").await);

    // Soft-deleted: still held, still counted.
    app.ok(
        Some(&admin),
        DELETE_DEPLOYMENT,
        json!({"deploymentId": first, "deploymentHardDelete": false}),
    )
    .await;
    let refused = claim(&app, &admin, ws, "ns-001", "second").await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "CONFLICT",
        "{refused}"
    );

    // Its own quota overrides the default; null gives the default back.
    let data = app
        .ok(Some(&admin), SET_QUOTA, json!({"ws": ws, "max": 2}))
        .await;
    assert_eq!(data["setWorkspaceQuota"]["namespaceQuota"], 2);
    assert_eq!(data["setWorkspaceQuota"]["namespacesHeld"], 1);
    id_of(&claim(&app, &admin, ws, "ns-001", "second").await);
    let data = app
        .ok(Some(&admin), SET_QUOTA, json!({"ws": ws, "max": null}))
        .await;
    assert_eq!(data["setWorkspaceQuota"]["namespaceQuota"], 1);
    assert_eq!(data["setWorkspaceQuota"]["namespacesHeld"], 2);

    // A hard delete frees a place.
    app.ok(
        Some(&admin),
        DELETE_DEPLOYMENT,
        json!({"deploymentId": first, "deploymentHardDelete": true}),
    )
    .await;
    let data = app.ok(Some(&admin), HOLDINGS, json!({"ws": ws})).await;
    assert_eq!(data["workspace"]["namespacesHeld"], 1);
}

/// A cordon of the pool racing claims on three replicas: claims that
/// started before it may win, every claim that starts after it has answered
/// is refused on every replica, and the holders are exactly the winners.
#[sqlx::test]
async fn a_pool_cordon_racing_claims_on_three_replicas_stops_every_later_claim(db: PgPool) {
    let apps = three_replicas(60, &db).await;
    let admin = apps[0].admin().await;
    let ws = apps[0].create_workspace(&admin, "race").await;
    let racers = (0..24).map(|i| {
        let app = &apps[i % 3];
        let admin = admin.clone();
        async move {
            claim(
                app,
                &admin,
                ws,
                &format!("ns-{i:03}"),
                &format!("before-{i}"),
            )
            .await
        }
    });
    let cordon = apps[1].gql(
        Some(&admin),
        CORDON_POOL,
        json!({"reason": "maintenance window"}),
    );
    let (before, cordoned) = tokio::join!(join_all(racers), cordon);
    assert_eq!(cordoned["data"]["cordonPool"], true, "{cordoned}");
    let won = before.iter().filter(|r| r.get("errors").is_none()).count();
    for lost in before.iter().filter(|r| r.get("errors").is_some()) {
        let message = lost["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("maintenance window"), "{message}");
    }
    // After the cordon answered: nothing passes, anywhere.
    let after = (24..48).map(|i| {
        let app = &apps[i % 3];
        let admin = admin.clone();
        async move {
            claim(
                app,
                &admin,
                ws,
                &format!("ns-{i:03}"),
                &format!("after-{i}"),
            )
            .await
        }
    });
    for refused in join_all(after).await {
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "CONFLICT",
            "{refused}"
        );
    }
    let holders: i64 = sqlx::query_scalar(
        "select count(*) from pool_namespaces where holder_deployment_id is not null",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(holders as usize, won, "the holders are exactly the winners");
}

/// `cordonPool` is a barrier: claims already under way (here queued on
/// their workspace's row, which the quota check locks, after taking their
/// namespace) end before it answers, and none passes after.
#[sqlx::test]
async fn a_pool_cordon_lets_no_queued_claim_pass_after_it_answers(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db.clone()).await;
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "race").await;
    // Someone holds the workspace's row for a while (a slow transaction).
    let mut slow = db.begin().await.unwrap();
    sqlx::query("select 1 from workspaces where id = $1 for update")
        .bind(ws)
        .execute(&mut *slow)
        .await
        .unwrap();
    // Three claims of that workspace queue on it.
    let claims: Vec<_> = ["pool-a", "pool-b", "pool-c"]
        .into_iter()
        .map(|namespace| {
            let (token, client, url) = (admin.clone(), reqwest::Client::new(), app.url("/v1"));
            tokio::spawn(async move {
                let body = json!({"query": CREATE_DEPLOYMENT, "variables":
                    {"label": namespace, "workspaceId": ws, "executor": "LocalExecutor", "namespace": namespace}});
                client
                    .post(url)
                    .header("authorization", token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        slow.commit().await.unwrap();
    });
    let held = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from pool_namespaces where holder_deployment_id is not null",
        )
        .fetch_one(&db)
        .await
        .unwrap()
    };
    let data = app
        .ok(
            Some(&admin),
            CORDON_POOL,
            json!({"reason": "barrier", "until": null}),
        )
        .await;
    assert_eq!(data["cordonPool"], true);
    let held_at_answer = held().await;
    releaser.await.unwrap();
    let answers = join_all(claims).await;
    assert_eq!(
        held().await,
        held_at_answer,
        "a claim passed after cordonPool answered: {answers:?}"
    );
    // A claim after the cordon is refused.
    app.err(
        Some(&admin),
        CREATE_DEPLOYMENT,
        json!({"label": "late", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-d"}),
        "CONFLICT",
    )
    .await;
}
