//! An outside fuzzer against the whole schema: schemathesis (pinned in
//! `scripts/schemathesis`, installed by `scripts/test.sh`) draws queries and
//! mutations from nspool's own introspection, with an admin's token, a
//! workspace editor's and none, and its `nspool_never_fails` check
//! (scripts/schemathesis/hooks.py) fails any 5xx, any answer that is not
//! JSON, and any error that is uncoded or coded INTERNAL. Afterwards the service still answers and the pool
//! still adds up.

use crate::support::{POOL_OF_5, TestApp};
use serde_json::json;
use sqlx::PgPool;
use std::path::{Path, PathBuf};

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("NSPOOL_SCHEMATHESIS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis-venv/bin/st"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "no schemathesis at {} (scripts/test.sh installs scripts/schemathesis/requirements.txt there; NSPOOL_SCHEMATHESIS names another)",
        path.display()
    );
    path
}

/// One fuzzing run; panics with schemathesis' report when it finds a failure.
async fn fuzz(app: &TestApp, token: Option<&str>, known_ids: &[String], examples: u32) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/schemathesis");
    let mut command = tokio::process::Command::new(schemathesis());
    command
        .current_dir(&dir)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &dir)
        .env("NSPOOL_FUZZ_IDS", known_ids.join(","))
        // A fixed seed: a failure here fails again on the next run.
        .args(["--config-file", "schemathesis.toml", "run"])
        .arg(app.url("/v1"))
        .args(["--checks", "nspool_never_fails", "--workers", "2"])
        .args(["--seed", "20261202", "--no-color"])
        .arg(format!("--max-examples={examples}"));
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = command.output().await.expect("schemathesis runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every operation was tried: a schema change cannot quietly shrink the run.
    assert!(report.contains("32 selected / 32 total"), "{report}");
    assert!(!report.contains("Unknown GraphQL Scalar"), "{report}");
}

/// The codes the check accepts are nspool's own, less INTERNAL: a code
/// added to nspool cannot go unnoticed by the fuzzer's check, nor INTERNAL
/// slip into it.
#[test]
fn the_fuzzers_check_knows_every_code_but_internal() {
    let hooks = include_str!("../../scripts/schemathesis/hooks.py");
    let list = hooks
        .split_once("CODES = {")
        .and_then(|(_, rest)| rest.split_once('}'))
        .expect("a CODES set in hooks.py")
        .0;
    let mut accepted: Vec<&str> = list
        .split(',')
        .map(|code| code.trim().trim_matches('"'))
        .filter(|code| !code.is_empty())
        .collect();
    accepted.sort_unstable();
    let mut expected: Vec<&str> = nspool::graphql::CODES
        .iter()
        .copied()
        .filter(|code| *code != nspool::graphql::INTERNAL)
        .collect();
    expected.sort_unstable();
    assert_eq!(accepted, expected);
}

#[sqlx::test]
async fn a_schema_fuzzer_finds_no_failure_with_or_without_a_token(db: PgPool) {
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let workspace = app.create_workspace(&admin, "fuzz").await;
    let created = app
        .ok(
            Some(&admin),
            "mutation($w: Uuid!) { createDeployment(workspaceUuid: $w, label: \"held\",
                executor: CeleryExecutor, namespace: \"pool-a\") { id } }",
            json!({"w": workspace}),
        )
        .await;
    let deployment = created["createDeployment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another token's id (never the fuzzer's own, which would lock it out).
    let other = app
        .service
        .create_token(
            &nspool::domain::Caller::Operator,
            nspool::domain::Role::parse("WORKSPACE_EDITOR").unwrap(),
            Some(workspace),
            "editor",
        )
        .await
        .unwrap();
    let known = vec![
        workspace.to_string(),
        deployment,
        other.record.id.to_string(),
    ];

    fuzz(&app, Some(&admin), &known, 60).await;
    // A workspace editor: the same operations through the workspace checks.
    let editor = app.token("WORKSPACE_EDITOR", Some(workspace)).await;
    fuzz(&app, Some(&editor), &known, 20).await;
    fuzz(&app, None, &known, 15).await;

    // Still serving, and still whole: every pool namespace is free, held,
    // releasing or cordoned, each exactly once.
    let fresh = app.admin().await;
    app.ok(Some(&fresh), "mutation { uncordonPool }", json!({}))
        .await;
    let pool = app
        .ok(Some(&fresh), "{ poolNamespaces { name state } }", json!({}))
        .await;
    let mut names: Vec<&str> = pool["poolNamespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["pool-a", "pool-b", "pool-c", "pool-d", "pool-e"]);
    // What is offered is exactly the free ones; each held one names its holder once.
    let mut free: Vec<&str> = pool["poolNamespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["state"] == "Free")
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    free.sort();
    assert_eq!(app.available(&fresh).await, free);
    let holders = app
        .ok(
            Some(&fresh),
            "{ poolNamespaces { state deployment { id namespace } name } }",
            json!({}),
        )
        .await;
    let mut ids = std::collections::HashSet::new();
    for n in holders["poolNamespaces"].as_array().unwrap() {
        let held = matches!(n["state"].as_str(), Some("Held" | "SoftDeleted"));
        assert_eq!(held, !n["deployment"].is_null(), "{n}");
        if held {
            assert_eq!(n["deployment"]["namespace"], n["name"], "{n}");
            assert!(ids.insert(n["deployment"]["id"].to_string()), "{n}");
        }
    }
}
