//! The alert rules and the Grafana dashboard in `docker/monitoring/` name
//! only metrics that `/metrics` really exposes.

use crate::documents::*;
use crate::support::{POOL_OF_5, TestApp};
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
