//! The alert rules and the Grafana dashboard in `docker/monitoring/` name
//! only metrics that `/metrics` really exposes.

use crate::dashboard_clusters::{PROD, STAGING, TWO_CLUSTERS, two_clusters, two_clusters_of};
use crate::documents::*;
use crate::support::{POOL_OF_5, TestApp, metric_value};
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeSet;

/// Every `nspool_…` name in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("nspool_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Whether `/metrics` has `name`: as a sample, or as a family whose samples
/// carry a suffix (`_total`, `_bucket`, …) or have none yet.
fn exposed(metrics: &str, name: &str) -> bool {
    let family = ["_total", "_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name);
    metrics.lines().any(|line| {
        line.starts_with(&format!("{name} "))
            || line.starts_with(&format!("{name}{{"))
            || line.starts_with(&format!("# TYPE {family} "))
    })
}

#[sqlx::test]
async fn every_metric_the_alerts_and_dashboard_use_exists(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    // A cluster's reachability series exist once its worker has checked it
    // (none runs here: the check is written as a worker would).
    let default = app.service.settings().default_cluster().id;
    app.service
        .store()
        .record_reachability(default, None)
        .await
        .unwrap();
    let ws = app.create_workspace(&admin, "team").await;
    // A claim of each outcome, a hard and a soft delete, a reclaim run.
    let created = app
        .ok(
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
    let id = created["createDeployment"]["id"].clone();
    app.ok(Some(&admin), DELETE_DEPLOYMENT, json!({"deploymentId": id}))
        .await;
    app.ok(
        Some(&admin),
        "mutation { reclaimDeployments(olderThanDays: 0) { count } }",
        serde_json::Value::Null,
    )
    .await;
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "nspool_claims_total{outcome=\"ok\"} 1",
        "nspool_claims_total{outcome=\"conflict\"} 1",
        "nspool_releases_total{kind=\"soft_delete\"} 1",
        "nspool_releases_total{kind=\"reclaim\"} 1",
        "nspool_reclaim_runs_total{outcome=\"ok\"} 1",
        "nspool_reclaimed_deployments_total 1",
        "nspool_database_up 1",
        "nspool_kube_errors 0",
        "nspool_reclaim_enabled 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    assert!(metrics.contains("nspool_claim_duration_seconds_bucket{"));
    assert!(metrics.contains("nspool_database_connections{state=\"in_use\"}"));
    // The one cluster of a config without `nspool.clusters` is `default`.
    assert!(metrics.contains("nspool_cluster_namespaces{cluster=\"default\",state=\"free\"}"));

    let rules = include_str!("../../docker/monitoring/alerts.yaml");
    let dashboard = include_str!("../../docker/monitoring/grafana-dashboard.json");
    let used: BTreeSet<String> = metric_names(rules)
        .into_iter()
        .chain(metric_names(dashboard))
        .collect();
    assert!(used.len() >= 10, "{used:?}");
    let missing: Vec<_> = used.iter().filter(|n| !exposed(&metrics, n)).collect();
    assert!(
        missing.is_empty(),
        "not in /metrics: {missing:?}\n{metrics}"
    );
}

/// A fresh scrape (scrapes within a second share one read).
async fn scrape_again(app: &TestApp) -> String {
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.metrics().await
}

#[sqlx::test]
async fn each_cluster_has_its_counts_and_reachability_by_name(db: PgPool) {
    // Kubernetes on in the config; the test runs no worker, so the checks
    // are the ones written here.
    let app = two_clusters(db).await;
    let metrics = app.metrics().await;
    let value = |metrics: &str, sample: &str| {
        metric_value(metrics, sample).unwrap_or_else(|| panic!("no {sample} in\n{metrics}"))
    };
    assert_eq!(
        value(&metrics, "nspool_cluster_reachable{cluster=\"prod\"}"),
        1.0
    );
    assert_eq!(
        value(&metrics, "nspool_cluster_reachable{cluster=\"staging\"}"),
        0.0
    );
    for cluster in ["prod", "staging"] {
        let age = value(
            &metrics,
            &format!("nspool_cluster_check_age_seconds{{cluster=\"{cluster}\"}}"),
        );
        assert!((0.0..30.0).contains(&age), "{cluster}: {age}");
    }
    // Each cluster's counts, in the pool's states; together, the pool's.
    for (cluster, state, count) in [
        ("prod", "free", 2.0),
        ("prod", "held", 0.0),
        ("staging", "free", 1.0),
        ("staging", "held", 1.0),
        ("staging", "soft_deleted", 0.0),
    ] {
        let sample =
            format!("nspool_cluster_namespaces{{cluster=\"{cluster}\",state=\"{state}\"}}");
        assert_eq!(value(&metrics, &sample), count, "{sample}");
    }
    for state in [
        "free",
        "held",
        "soft_deleted",
        "retired",
        "broken",
        "pending",
        "releasing",
        "cordoned",
    ] {
        let sum: f64 = ["prod", "staging"]
            .iter()
            .map(|c| {
                value(
                    &metrics,
                    &format!("nspool_cluster_namespaces{{cluster=\"{c}\",state=\"{state}\"}}"),
                )
            })
            .sum();
        let pool = value(
            &metrics,
            &format!("nspool_pool_namespaces{{state=\"{state}\"}}"),
        );
        assert_eq!(sum, pool, "{state}");
    }
    // The existing series are as they were.
    assert_eq!(
        value(&metrics, "nspool_pool_namespaces{state=\"free\"}"),
        3.0
    );
    assert_eq!(value(&metrics, "nspool_database_up"), 1.0);

    // A check five minutes old shows its age; a cluster never checked has no series.
    sqlx::query(
        "update clusters set checked_at = now() - interval '5 minutes' where id = $1::uuid;
         ",
    )
    .bind(STAGING)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query("update clusters set reachable = null, checked_at = null where id = $1::uuid")
        .bind(PROD)
        .execute(&app.db)
        .await
        .unwrap();
    let metrics = scrape_again(&app).await;
    let age = value(
        &metrics,
        "nspool_cluster_check_age_seconds{cluster=\"staging\"}",
    );
    assert!((300.0..330.0).contains(&age), "{age}");
    assert!(
        !metrics.contains("nspool_cluster_reachable{cluster=\"prod\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("nspool_cluster_check_age_seconds{cluster=\"prod\"}"));
    assert!(metrics.contains("nspool_cluster_namespaces{cluster=\"prod\",state=\"free\"} 2"));
}

#[sqlx::test]
async fn with_kubernetes_off_no_cluster_has_a_check(db: PgPool) {
    // The rows say what a worker found before; with Kubernetes off that is
    // history, and its age would read as a stale check.
    let app = two_clusters_of(TWO_CLUSTERS, db).await;
    let metrics = app.metrics().await;
    assert!(!metrics.contains("nspool_cluster_reachable{"), "{metrics}");
    assert!(!metrics.contains("nspool_cluster_check_age_seconds{"));
    assert!(metrics.contains("nspool_cluster_namespaces{cluster=\"staging\",state=\"held\"} 1"));
}
