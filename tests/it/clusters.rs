//! Many clusters, one nspool (Software 1.x): a pool namespace is (cluster,
//! name), every rule holds per cluster in the database, and both CLI eras'
//! documents are served by one schema. Kubernetes is off here (no cluster is
//! found): `kube_clusters` proves the same against two real API servers.

use crate::documents_1x as v1;
use crate::support::{TestApp, another_pool};
use futures::future::join_all;
use nspool::config::Settings;
use nspool::store::Store;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

pub const PROD: &str = "11111111-1111-4111-8111-111111111111";
pub const STAGING: &str = "22222222-2222-4222-8222-222222222222";

/// Two clusters: prod with a standard pool (hard deletes allowed), staging
/// with an advanced one (soft deletes only); `team-a` is in both.
pub fn two_clusters(extra: &str) -> String {
    format!(
        r#"
nspool:
  houstonVersion: 1.0.0
  kubernetes: {{mode: "off"}}
  clusters:
    - id: {PROD}
      name: prod
      namespacePools: {{enabled: true, namespaces: {{names: [team-a, team-b]}}}}
    - id: {STAGING}
      name: staging
      preCreatedNamespaces: [{{name: team-a}}, {{name: team-c}}]
{extra}"#
    )
}

async fn available_in(app: &TestApp, token: &str, cluster: &str) -> Vec<String> {
    let data = app
        .ok(
            Some(token),
            v1::AVAILABLE_NAMESPACES,
            json!({"clusterId": cluster}),
        )
        .await;
    names(&data["availableNamespaces"])
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|n| n["name"].as_str().expect("a name").to_owned())
        .collect()
}

async fn create_in(
    app: &TestApp,
    token: &str,
    workspace: Uuid,
    cluster: Option<&str>,
    namespace: &str,
    label: &str,
) -> Value {
    app.gql(
        Some(token),
        v1::CREATE_DEPLOYMENT,
        json!({"label": label, "workspaceId": workspace, "clusterId": cluster,
               "executor": "CeleryExecutor", "namespace": namespace}),
    )
    .await
}

async fn cluster_of(app: &TestApp, token: &str, id: &Value) -> String {
    let data = app.ok(Some(token), v1::DEPLOYMENT, json!({"id": id})).await;
    data["deployment"]["clusterId"]
        .as_str()
        .expect("clusterId is always set")
        .to_owned()
}

#[sqlx::test]
async fn one_nspool_serves_two_clusters_to_the_1x_cli(db: PgPool) {
    let app = TestApp::spawn(&two_clusters(""), db).await;
    let admin = app.admin().await;

    // Each cluster's flags; the version makes the newest CLI send its 1.x documents.
    let prod = app
        .ok(None, v1::APP_CONFIG, json!({"clusterId": PROD}))
        .await;
    assert_eq!(prod["appConfig"]["version"], "1.0.0");
    assert_eq!(prod["appConfig"]["hardDeleteDeployment"], true);
    assert_eq!(prod["appConfig"]["manualNamespaceNames"], true);
    let staging = app
        .ok(None, v1::APP_CONFIG, json!({"clusterId": STAGING}))
        .await;
    assert_eq!(staging["appConfig"]["hardDeleteDeployment"], false);
    let unknown = Uuid::new_v4().to_string();
    let error = app
        .err(
            None,
            v1::APP_CONFIG,
            json!({"clusterId": unknown}),
            "BAD_USER_INPUT",
        )
        .await;
    // appConfig answers anyone: the clusters are listed to token holders only.
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&unknown) && !message.contains(PROD),
        "{message}"
    );

    // Each cluster's free namespaces; without clusterId a clear error.
    assert_eq!(available_in(&app, &admin, PROD).await, ["team-a", "team-b"]);
    assert_eq!(
        available_in(&app, &admin, STAGING).await,
        ["team-a", "team-c"]
    );
    let error = app
        .err(
            Some(&admin),
            "{ availableNamespaces { name } }",
            Value::Null,
            "BAD_USER_INPUT",
        )
        .await;
    let message = error["message"].as_str().unwrap_or_default();
    for said in [
        "clusterId",
        &format!("prod ({PROD})"),
        &format!("staging ({STAGING})"),
    ] {
        assert!(message.contains(said), "{said}: {message}");
    }

    // The same name claimed in both clusters by two Deployments.
    let workspace = app.create_workspace(&admin, "w").await;
    let in_prod = create_in(&app, &admin, workspace, Some(PROD), "team-a", "a-prod").await;
    let in_staging = create_in(
        &app,
        &admin,
        workspace,
        Some(STAGING),
        "team-a",
        "a-staging",
    )
    .await;
    assert!(in_prod.get("errors").is_none(), "{in_prod}");
    assert!(in_staging.get("errors").is_none(), "{in_staging}");
    let prod_id = in_prod["data"]["upsertDeployment"]["id"].clone();
    let staging_id = in_staging["data"]["upsertDeployment"]["id"].clone();
    assert_eq!(cluster_of(&app, &admin, &prod_id).await, PROD);
    assert_eq!(cluster_of(&app, &admin, &staging_id).await, STAGING);
    assert_eq!(available_in(&app, &admin, PROD).await, ["team-b"]);
    assert_eq!(available_in(&app, &admin, STAGING).await, ["team-c"]);
    // Once per cluster.
    let again = create_in(&app, &admin, workspace, Some(PROD), "team-a", "again").await;
    assert_eq!(
        again["errors"][0]["extensions"]["code"], "CONFLICT",
        "{again}"
    );
    // An unknown cluster is refused by its id, nothing claimed.
    let refused = create_in(&app, &admin, workspace, Some(&unknown), "team-b", "x").await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&unknown)),
        "{refused}"
    );
    // Without clusterId (the 0.3x CLI): the default cluster, the first listed.
    let default = create_in(&app, &admin, workspace, None, "team-b", "b-default").await;
    let default_id = default["data"]["upsertDeployment"]["id"].clone();
    assert_eq!(cluster_of(&app, &admin, &default_id).await, PROD);

    // Lists filter by cluster.
    let listed = app
        .ok(
            Some(&admin),
            v1::PAGINATED_DEPLOYMENTS,
            json!({"take": -1, "clusterId": STAGING}),
        )
        .await;
    let listed = listed["paginatedDeployments"].as_array().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], staging_id);
    assert_eq!(listed[0]["clusterId"], STAGING);
    let all = app
        .ok(
            Some(&admin),
            v1::WORKSPACE_DEPLOYMENTS,
            json!({"workspaceUuid": workspace}),
        )
        .await;
    assert_eq!(
        all["workspaceDeployments"].as_array().map(Vec::len),
        Some(3)
    );
    let prod_only = app
        .ok(
            Some(&admin),
            "query($w: Uuid!, $c: Uuid) { workspaceDeployments(workspaceUuid: $w, clusterId: $c) { id clusterId } }",
            json!({"w": workspace, "c": PROD}),
        )
        .await;
    assert_eq!(
        prod_only["workspaceDeployments"].as_array().map(Vec::len),
        Some(2)
    );

    // nspool's own view of the clusters.
    let clusters = app
        .ok(
            Some(&admin),
            "{ clusters { id name isDefault free held pending reachable } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        clusters["clusters"],
        json!([
            {"id": PROD, "name": "prod", "isDefault": true, "free": 0, "held": 2, "pending": 0, "reachable": null},
            {"id": STAGING, "name": "staging", "isDefault": false, "free": 1, "held": 1, "pending": 0, "reachable": null},
        ])
    );

    // A hard delete (prod allows it) frees prod's team-a only.
    app.ok(
        Some(&admin),
        v1::DELETE_DEPLOYMENT,
        json!({"deploymentId": prod_id, "deploymentHardDelete": true}),
    )
    .await;
    assert_eq!(available_in(&app, &admin, PROD).await, ["team-a"]);
    assert_eq!(available_in(&app, &admin, STAGING).await, ["team-c"]);
    // Staging soft-deletes (hardDeleteDeployment is false there): team-a stays held.
    app.ok(
        Some(&admin),
        v1::DELETE_DEPLOYMENT,
        json!({"deploymentId": staging_id, "deploymentHardDelete": true}),
    )
    .await;
    assert_eq!(available_in(&app, &admin, STAGING).await, ["team-c"]);

    // Operator commands name their cluster.
    let cordon = app
        .err(
            Some(&admin),
            r#"mutation { cordonNamespace(name: "team-c", reason: "disk") { name } }"#,
            Value::Null,
            "BAD_USER_INPUT",
        )
        .await;
    assert!(
        cordon["message"]
            .as_str()
            .is_some_and(|m| m.contains("clusterId")),
        "{cordon}"
    );
    app.ok(
        Some(&admin),
        "mutation($c: Uuid) { cordonPool(reason: \"maintenance\", clusterId: $c) }",
        json!({"c": STAGING}),
    )
    .await;
    assert!(available_in(&app, &admin, STAGING).await.is_empty());
    assert_eq!(available_in(&app, &admin, PROD).await, ["team-a"]);
    let view = app
        .ok(
            Some(&admin),
            "query($c: Uuid) { poolNamespaces(clusterId: $c) { clusterId name } }",
            json!({"c": STAGING}),
        )
        .await;
    assert_eq!(
        view["poolNamespaces"],
        json!([{"clusterId": STAGING, "name": "team-a"}, {"clusterId": STAGING, "name": "team-c"}])
    );
}

/// The 0.3x CLI against a 1.x server of one cluster: `availableNamespaces`
/// without `clusterId` is that cluster's, and every Deployment carries the
/// cluster's id.
#[sqlx::test]
async fn one_cluster_needs_no_cluster_id(db: PgPool) {
    let config = format!(
        "{}\nnspool: {{houstonVersion: 1.0.0, clusterId: {PROD}}}\n",
        crate::support::pool_config(&["pool-a".into(), "pool-b".into()], "")
    );
    let app = TestApp::spawn(&config, db).await;
    let admin = app.admin().await;
    assert_eq!(app.available(&admin).await, ["pool-a", "pool-b"]);
    assert_eq!(available_in(&app, &admin, PROD).await, ["pool-a", "pool-b"]);
    let workspace = app.create_workspace(&admin, "w").await;
    let made = create_in(&app, &admin, workspace, None, "pool-a", "a").await;
    let id = made["data"]["upsertDeployment"]["id"].clone();
    assert_eq!(cluster_of(&app, &admin, &id).await, PROD);
}

#[sqlx::test]
async fn the_workspace_quota_counts_every_cluster(db: PgPool) {
    let app = TestApp::spawn(&two_clusters("  workspaceQuota: 1\n"), db).await;
    let admin = app.admin().await;
    let workspace = app.create_workspace(&admin, "w").await;
    let first = create_in(&app, &admin, workspace, Some(PROD), "team-a", "a").await;
    assert!(first.get("errors").is_none(), "{first}");
    let second = create_in(&app, &admin, workspace, Some(STAGING), "team-a", "b").await;
    assert_eq!(
        second["errors"][0]["extensions"]["code"], "CONFLICT",
        "{second}"
    );
    assert!(
        second["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("quota is 1")),
        "{second}"
    );
    assert_eq!(
        available_in(&app, &admin, STAGING).await,
        ["team-a", "team-c"]
    );
}

/// Three replicas on one database, claims of the same names in both
/// clusters at once: each (cluster, name) gets exactly one holder, and the
/// same name is held in both clusters.
#[sqlx::test]
async fn claims_race_across_clusters_on_three_replicas(db: PgPool) {
    let config = two_clusters("");
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let store = Store::new(another_pool(&db).await);
        replicas.push(
            TestApp::spawn_on(
                &config,
                store,
                db.clone(),
                Default::default(),
                Default::default(),
            )
            .await,
        );
    }
    let admin = replicas[0].admin().await;
    let workspace = replicas[0].create_workspace(&admin, "w").await;
    let wanted = [
        (PROD, "team-a"),
        (PROD, "team-b"),
        (STAGING, "team-a"),
        (STAGING, "team-c"),
    ];
    let attempts = (0..24).map(|i| {
        let (cluster, name) = wanted[i % wanted.len()];
        let app = &replicas[i % replicas.len()];
        let admin = admin.clone();
        async move {
            let answer = create_in(
                app,
                &admin,
                workspace,
                Some(cluster),
                name,
                &format!("d{i}"),
            )
            .await;
            (cluster, name, answer)
        }
    });
    let answers = join_all(attempts).await;
    for (cluster, name) in wanted {
        let won: Vec<&Value> = answers
            .iter()
            .filter(|(c, n, a)| *c == cluster && *n == name && a.get("errors").is_none())
            .map(|(_, _, a)| a)
            .collect();
        assert_eq!(won.len(), 1, "{cluster}/{name}: {answers:?}");
        for (_, _, answer) in answers
            .iter()
            .filter(|(c, n, a)| *c == cluster && *n == name && a.get("errors").is_some())
        {
            assert_eq!(
                answer["errors"][0]["extensions"]["code"], "CONFLICT",
                "{answer}"
            );
        }
    }
    let held: Vec<(String, String, Uuid)> = sqlx::query_as(
        "select p.cluster_id::text, p.name, d.cluster_id from pool_namespaces p
         join deployments d on d.id = p.holder_deployment_id order by 1, 2",
    )
    .fetch_all(&db)
    .await
    .expect("holders");
    assert_eq!(held.len(), 4, "{held:?}");
    for (cluster, _, holder_cluster) in &held {
        assert_eq!(
            cluster,
            &holder_cluster.to_string(),
            "a holder of its own cluster"
        );
    }
    for app in &replicas {
        assert_eq!(available_in(app, &admin, PROD).await, Vec::<String>::new());
        assert_eq!(
            available_in(app, &admin, STAGING).await,
            Vec::<String>::new()
        );
    }
}

#[sqlx::test]
async fn a_reload_adds_a_cluster_and_refuses_removing_one_that_is_held(db: PgPool) {
    let prod_only = format!(
        "nspool:\n  kubernetes: {{mode: \"off\"}}\n  clusters:\n    - {{id: {PROD}, name: prod, namespacePools: {{enabled: true, namespaces: {{names: [team-a]}}}}}}\n"
    );
    let both = format!(
        "{prod_only}    - {{id: {STAGING}, name: staging, namespacePools: {{enabled: true, namespaces: {{names: [team-a, team-c]}}}}}}\n"
    );
    let parse = |yaml: &str| Settings::parse(yaml, &|_| None);
    let app = TestApp::spawn(&prod_only, db).await;
    let admin = app.admin().await;
    assert_eq!(app.available(&admin).await, ["team-a"]);
    let report = app
        .service
        .reload(parse(&both))
        .await
        .expect("a cluster added");
    assert_eq!(report.sync.added, ["staging/team-a", "staging/team-c"]);
    assert_eq!(
        available_in(&app, &admin, STAGING).await,
        ["team-a", "team-c"]
    );
    let workspace = app.create_workspace(&admin, "w").await;
    let held = create_in(&app, &admin, workspace, Some(STAGING), "team-c", "c").await;
    let id = held["data"]["upsertDeployment"]["id"].clone();

    // Removing staging while team-c is held: refused, naming it; nothing changes.
    assert!(app.service.reload(parse(&prod_only)).await.is_none());
    let (_, errors) = app
        .service
        .reload_status()
        .failing
        .expect("the refusal is reported");
    assert!(
        errors[0].contains("staging") && errors[0].contains("team-c"),
        "{errors:?}"
    );
    assert_eq!(available_in(&app, &admin, STAGING).await, ["team-a"]);
    app.ok(
        Some(&admin),
        &format!(
            r#"mutation {{ cordonNamespace(name: "team-a", reason: "disk", clusterId: "{STAGING}") {{ name }} }}"#
        ),
        Value::Null,
    )
    .await;

    // Once released, the cluster goes; its namespaces are retired, never deleted.
    app.ok(
        Some(&admin),
        v1::DELETE_DEPLOYMENT,
        json!({"deploymentId": id, "deploymentHardDelete": true}),
    )
    .await;
    let report = app
        .service
        .reload(parse(&prod_only))
        .await
        .expect("the cluster is removed");
    assert_eq!(report.sync.retired, ["staging/team-a", "staging/team-c"]);
    let clusters = app
        .ok(Some(&admin), "{ clusters { name } }", Value::Null)
        .await;
    assert_eq!(clusters["clusters"], json!([{"name": "prod"}]));
    let unknown = app
        .gql(
            Some(&admin),
            v1::AVAILABLE_NAMESPACES,
            json!({"clusterId": STAGING}),
        )
        .await;
    assert_eq!(
        unknown["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{unknown}"
    );
    let rows: i64 = sqlx::query_scalar(
        "select count(*) from pool_namespaces where cluster_id = $1 and retired_at is not null",
    )
    .bind(Uuid::parse_str(STAGING).expect("uuid"))
    .fetch_one(&app.db)
    .await
    .expect("count");
    assert_eq!(rows, 2, "retired, not deleted");

    // The removed cluster's namespaces are still read, and uncordoned, by
    // its id: they keep their history and cordons.
    let read = app
        .ok(
            Some(&admin),
            &format!(
                r#"{{ poolNamespace(name: "team-a", clusterId: "{STAGING}") {{ name cordon {{ reason }} }}
                    poolEvents(namespace: "team-a", clusterId: "{STAGING}") {{ kind }}
                    poolNamespaces(clusterId: "{STAGING}") {{ name state }} }}"#
            ),
            Value::Null,
        )
        .await;
    assert_eq!(read["poolNamespace"]["cordon"]["reason"], "disk", "{read}");
    assert_eq!(
        read["poolNamespaces"],
        json!([{"name": "team-a", "state": "Retired"}, {"name": "team-c", "state": "Retired"}]),
        "{read}"
    );
    assert!(
        read["poolEvents"].as_array().is_some_and(|e| !e.is_empty()),
        "{read}"
    );
    let lifted = app
        .gql(
            Some(&admin),
            &format!(
                r#"mutation {{ uncordonNamespace(name: "team-a", clusterId: "{STAGING}") {{ name cordon {{ reason }} }} }}"#
            ),
            Value::Null,
        )
        .await;
    assert!(lifted.get("errors").is_none(), "{lifted}");
    assert_eq!(lifted["data"]["uncordonNamespace"]["cordon"], Value::Null);
}

/// A reload that removes several clusters with held namespaces is refused
/// naming every one of them, not the first only.
#[sqlx::test]
async fn a_refused_reload_names_every_cluster_it_would_empty(db: PgPool) {
    const DEV: &str = "5b5b5b5b-0000-4000-8000-000000000003";
    let three = two_clusters(&format!(
        "    - id: {DEV}\n      name: dev\n      preCreatedNamespaces: [{{name: legacy-1}}]\n"
    ));
    let parse = |yaml: &str| Settings::parse(yaml, &|_| None);
    let app = TestApp::spawn(&three, db).await;
    let admin = app.admin().await;
    let workspace = app.create_workspace(&admin, "w").await;
    for (cluster, ns) in [(STAGING, "team-c"), (DEV, "legacy-1")] {
        let held = create_in(&app, &admin, workspace, Some(cluster), ns, ns).await;
        assert!(held.get("errors").is_none(), "{held}");
    }
    let prod_only = format!(
        "nspool:\n  houstonVersion: 1.0.0\n  kubernetes: {{mode: \"off\"}}\n  clusters:\n    - {{id: {PROD}, name: prod, namespacePools: {{enabled: true, namespaces: {{names: [team-a, team-b]}}}}}}\n"
    );
    assert!(app.service.reload(parse(&prod_only)).await.is_none());
    let (_, errors) = app.service.reload_status().failing.expect("refused");
    assert!(
        errors[0].contains("cluster staging")
            && errors[0].contains("team-c")
            && errors[0].contains("cluster dev")
            && errors[0].contains("legacy-1"),
        "{errors:?}"
    );
}

/// The `clusters` query's ids, names and retired counts.
async fn clusters_of(app: &TestApp, admin: &str) -> Value {
    app.ok(Some(admin), "{ clusters { id name retired } }", Value::Null)
        .await["clusters"]
        .clone()
}

/// A one-cluster config without `nspool.clusterId` that moves under
/// `nspool.clusters` (with the id the database made) and back again keeps
/// that id, its claims and its cordons: the database serves one cluster and
/// it is that one. With several clusters in the database, which one a
/// config of one cluster means is not guessed: refused, naming them.
#[sqlx::test]
async fn a_config_going_back_to_one_cluster_keeps_its_id_and_cordons(db: PgPool) {
    let single = "global: {features: {namespacePools: {enabled: true, namespaces: {names: [team-a, team-b, team-c]}}}}\n";
    let parse = |yaml: &str| Settings::parse(yaml, &|_| None);
    let app = TestApp::spawn(single, db).await;
    let admin = app.admin().await;
    let made = clusters_of(&app, &admin).await;
    let id = made[0]["id"].as_str().expect("an id").to_owned();
    let workspace = app.create_workspace(&admin, "w").await;
    let held = create_in(&app, &admin, workspace, None, "team-a", "a").await;
    assert!(held.get("errors").is_none(), "{held}");
    app.ok(
        Some(&admin),
        r#"mutation { cordonNamespace(name: "team-b", reason: "disk") { name } }"#,
        Value::Null,
    )
    .await;

    let listed = format!(
        "nspool:\n  kubernetes: {{mode: \"off\"}}\n  clusters:\n    - {{id: {id}, name: prod, namespacePools: {{enabled: true, namespaces: {{names: [team-a, team-b, team-c]}}}}}}\n"
    );
    app.service
        .reload(parse(&listed))
        .await
        .expect("moved under nspool.clusters");
    assert_eq!(
        clusters_of(&app, &admin).await,
        json!([{"id": id, "name": "prod", "retired": 0}])
    );
    let back = app
        .service
        .reload(parse(single))
        .await
        .expect("back to one cluster, although team-a is held");
    assert!(
        back.sync.added.is_empty() && back.sync.retired.is_empty(),
        "{back:?}"
    );
    assert_eq!(
        clusters_of(&app, &admin).await,
        json!([{"id": id, "name": "default", "retired": 0}])
    );
    assert_eq!(
        app.available(&admin).await,
        ["team-c"],
        "team-b still cordoned"
    );

    // Two clusters in the database, then a config of one without an id.
    let two = format!(
        "{listed}    - {{id: {STAGING}, name: staging, namespacePools: {{enabled: true, namespaces: {{names: [team-a]}}}}}}\n"
    );
    app.service
        .reload(parse(&two))
        .await
        .expect("staging added");
    assert!(app.service.reload(parse(single)).await.is_none());
    let (_, errors) = app
        .service
        .reload_status()
        .failing
        .expect("the refusal is reported");
    assert!(
        errors[0].contains("nspool.clusterId")
            && errors[0].contains(&format!("prod ({id})"))
            && errors[0].contains(&format!("staging ({STAGING})")),
        "{errors:?}"
    );
    assert_eq!(
        clusters_of(&app, &admin).await,
        json!([{"id": id, "name": "prod", "retired": 0},
               {"id": STAGING, "name": "staging", "retired": 0}]),
        "nothing changed"
    );
}

/// `pool-a`'s events include the one written before the upgrade.
async fn assert_history_kept(app: &TestApp, token: &str) {
    let events = app
        .ok(
            Some(token),
            "{ poolNamespace(name: \"pool-a\") { events { kind actor } } }",
            Value::Null,
        )
        .await;
    assert!(
        events["poolNamespace"]["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["actor"] == "test")),
        "{events}"
    );
}

/// A database made by the schema before many clusters (one cluster, today's
/// rows) upgrades keeping every row, claim and token: they are the default
/// cluster's. Giving that cluster an id later moves every row with it.
#[sqlx::test(migrations = false)]
async fn an_install_of_one_cluster_upgrades_keeping_every_row(db: PgPool) {
    let earlier = std::env::temp_dir().join(format!("nspool-migrations-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&earlier).expect("a folder");
    let mut files: Vec<_> = std::fs::read_dir("migrations")
        .expect("migrations")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for file in files
        .iter()
        .filter(|f| !f.to_string_lossy().ends_with("_clusters.sql"))
        .take_while(|f| !f.to_string_lossy().contains("20261203000007"))
    {
        std::fs::copy(file, earlier.join(file.file_name().expect("a name"))).expect("copy");
    }
    sqlx::migrate::Migrator::new(earlier.as_path())
        .await
        .expect("migrations")
        .run(&db)
        .await
        .expect("today's schema");
    let _ = std::fs::remove_dir_all(&earlier);
    // Today's rows: a workspace, a Deployment holding pool-a (with the
    // clusterId an older 1.x CLI sent, which was not used), a free pool-b,
    // an admin token, events.
    let (token, hash) = nspool::domain::token::generate();
    let workspace = Uuid::new_v4();
    let deployment = Uuid::new_v4();
    let sent = Uuid::new_v4();
    for statement in [
        "insert into workspaces (id, label) values ($1, 'w')",
        "insert into deployments (id, workspace_id, label, release_name, namespace, type, executor, cluster_id)
         values ($2, $1, 'd', 'r-1', 'pool-a', 'airflow', 'CeleryExecutor', $3)",
        "insert into pool_namespaces (name, source, holder_deployment_id, claimed_at)
         values ('pool-a', 'standard', $2, now()), ('pool-b', 'standard', null, null)",
        "insert into events (kind, namespace, deployment_id, actor) values ('claim', 'pool-a', $2, 'test')",
    ] {
        sqlx::query(statement)
            .bind(workspace)
            .bind(deployment)
            .bind(sent)
            .execute(&db)
            .await
            .expect(statement);
    }
    sqlx::query(
        "insert into api_tokens (id, sha256, role, label) values ($1, $2, 'SYSTEM_ADMIN', 'old')",
    )
    .bind(Uuid::new_v4())
    .bind(hash.as_slice())
    .execute(&db)
    .await
    .expect("token");

    let config = crate::support::pool_config(&["pool-a".into(), "pool-b".into()], "");
    let app = TestApp::spawn(&config, db.clone()).await;
    let clusters = app
        .ok(
            Some(&token),
            "{ clusters { id name held free } }",
            Value::Null,
        )
        .await;
    let default = clusters["clusters"][0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert_eq!(clusters["clusters"][0]["name"], "default");
    assert_eq!(clusters["clusters"][0]["held"], 1);
    assert_eq!(clusters["clusters"][0]["free"], 1);
    assert_eq!(app.available(&token).await, ["pool-b"]);
    let id = json!(deployment.to_string());
    assert_eq!(cluster_of(&app, &token, &id).await, default);
    let again = create_in(&app, &token, workspace, None, "pool-a", "again").await;
    assert_eq!(
        again["errors"][0]["extensions"]["code"], "CONFLICT",
        "{again}"
    );
    assert_history_kept(&app, &token).await;
    drop(app);

    // The same install given an id: every row goes with it.
    let with_id = format!("{config}\nnspool: {{clusterId: {PROD}}}\n");
    let app = TestApp::spawn(&with_id, db).await;
    let clusters = app
        .ok(Some(&token), "{ clusters { id held } }", Value::Null)
        .await;
    assert_eq!(clusters["clusters"], json!([{"id": PROD, "held": 1}]));
    assert_eq!(cluster_of(&app, &token, &id).await, PROD);
    assert_eq!(available_in(&app, &token, PROD).await, ["pool-b"]);
    // The history went with it.
    assert_history_kept(&app, &token).await;
}

/// `nspool.clusters` past its bound (64): a reload is refused naming the
/// key, and the clusters in force go on serving.
#[sqlx::test]
async fn more_clusters_than_the_bound_are_refused_while_the_others_serve(db: PgPool) {
    let app = TestApp::spawn(&two_clusters(""), db).await;
    let admin = app.admin().await;
    let entries: String = (0..=nspool::config::MAX_CLUSTERS)
        .map(|i| {
            format!(
                "    - {{id: {}, name: c{i}, namespacePools: {{enabled: true, namespaces: {{names: [n{i}]}}}}}}\n",
                Uuid::new_v4()
            )
        })
        .collect();
    let many = format!("nspool:\n  kubernetes: {{mode: \"off\"}}\n  clusters:\n{entries}");
    assert!(
        app.service
            .reload(Settings::parse(&many, &|_| None))
            .await
            .is_none()
    );
    let (_, errors) = app.service.reload_status().failing.expect("reported");
    assert!(
        errors[0].starts_with("nspool.clusters:") && errors[0].contains("at most 64"),
        "{errors:?}"
    );
    assert!(
        app.metrics()
            .await
            .contains("nspool_config_reloads_total{outcome=\"failed\"} 1")
    );
    assert_eq!(available_in(&app, &admin, PROD).await, ["team-a", "team-b"]);
}

/// Every field that takes a `clusterId` reads it: an update may not move a
/// Deployment to another cluster, and the event log filters by it.
#[sqlx::test]
async fn updates_and_the_event_log_read_the_cluster_id(db: PgPool) {
    let app = TestApp::spawn(&two_clusters(""), db).await;
    let admin = app.admin().await;
    let workspace = app.create_workspace(&admin, "w").await;
    let made = create_in(&app, &admin, workspace, Some(STAGING), "team-c", "c").await;
    let id = made["data"]["upsertDeployment"]["id"].clone();
    let update = "mutation($d: Uuid, $c: Uuid) { upsertDeployment(deploymentUuid: $d, clusterId: $c, label: \"renamed\") { label } }";
    let moved = app
        .err(
            Some(&admin),
            update,
            json!({"d": id, "c": PROD}),
            "BAD_USER_INPUT",
        )
        .await;
    assert!(
        moved["message"]
            .as_str()
            .is_some_and(|m| m.contains("another cluster")),
        "{moved}"
    );
    let unknown = Uuid::new_v4();
    app.err(
        Some(&admin),
        update,
        json!({"d": id, "c": unknown}),
        "BAD_USER_INPUT",
    )
    .await;
    let same = app
        .ok(Some(&admin), update, json!({"d": id, "c": STAGING}))
        .await;
    assert_eq!(same["upsertDeployment"]["label"], "renamed");

    let events =
        "query($c: Uuid) { poolEvents(clusterId: $c, last: 100) { kind clusterId namespace } }";
    let staging = app.ok(Some(&admin), events, json!({"c": STAGING})).await;
    let staging = staging["poolEvents"].as_array().expect("events");
    assert!(
        staging
            .iter()
            .any(|e| e["kind"] == "claim" && e["namespace"] == "team-c")
    );
    assert!(
        staging.iter().all(|e| e["clusterId"] == STAGING),
        "{staging:?}"
    );
    let prod = app.ok(Some(&admin), events, json!({"c": PROD})).await;
    assert!(
        prod["poolEvents"]
            .as_array()
            .is_some_and(|e| e.iter().all(|e| e["clusterId"] == PROD)),
        "{prod}"
    );
}

/// Two clusters swapping their names in one reload: a rename each, the
/// namespaces and claims stay with the ids.
#[sqlx::test]
async fn two_clusters_may_swap_names_in_one_reload(db: PgPool) {
    let app = TestApp::spawn(&two_clusters(""), db).await;
    let admin = app.admin().await;
    let workspace = app.create_workspace(&admin, "w").await;
    create_in(&app, &admin, workspace, Some(STAGING), "team-c", "c").await;
    let swapped = two_clusters("")
        .replace("name: prod", "name: tmp")
        .replace("name: staging", "name: prod")
        .replace("name: tmp", "name: staging");
    app.service
        .reload(Settings::parse(&swapped, &|_| None))
        .await
        .expect("a rename of each");
    let clusters = app
        .ok(Some(&admin), "{ clusters { id name held } }", Value::Null)
        .await;
    assert_eq!(
        clusters["clusters"],
        json!([{"id": PROD, "name": "staging", "held": 0}, {"id": STAGING, "name": "prod", "held": 1}])
    );
    assert_eq!(available_in(&app, &admin, STAGING).await, ["team-a"]);
    // The config_reload event says what changed (no namespace row did).
    let said: String = sqlx::query_scalar(
        "select reason from events where kind = 'config_reload' order by id desc limit 1",
    )
    .fetch_one(&app.db)
    .await
    .expect("the reload's event");
    assert!(
        said.contains("clusters: renamed staging (was prod), renamed prod (was staging)"),
        "{said}"
    );
}

/// A pool cordon being written in one cluster (its barrier lock held here,
/// as `cordonPool` holds it) holds back claims in that cluster only.
#[sqlx::test]
async fn a_cordon_under_way_in_one_cluster_holds_back_only_its_claims(db: PgPool) {
    let app = TestApp::spawn(&two_clusters(""), db.clone()).await;
    let admin = app.admin().await;
    let workspace = app.create_workspace(&admin, "w").await;
    let mut cordoning = db.begin().await.expect("a transaction");
    sqlx::query("select pg_advisory_xact_lock(hashtext('nspool.pool_cordon'), hashtext($1::text))")
        .bind(Uuid::parse_str(STAGING).expect("uuid"))
        .execute(&mut *cordoning)
        .await
        .expect("the staging barrier");
    let started = std::time::Instant::now();
    let in_prod = create_in(&app, &admin, workspace, Some(PROD), "team-a", "p").await;
    assert!(in_prod.get("errors").is_none(), "{in_prod}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let waiting = {
        let (app_url, admin) = (app.url("/v1"), admin.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(app_url)
                .header("authorization", admin)
                .json(
                    &json!({"query": v1::CREATE_DEPLOYMENT, "variables": {"label": "s",
                    "workspaceId": workspace, "clusterId": STAGING, "executor": "CeleryExecutor",
                    "namespace": "team-a"}}),
                )
                .send()
                .await
                .expect("an answer")
                .json::<Value>()
                .await
                .expect("JSON")
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "the staging claim waits for the cordon"
    );
    cordoning.commit().await.expect("released");
    let answer = waiting.await.expect("the claim");
    assert!(answer.get("errors").is_none(), "{answer}");
}
