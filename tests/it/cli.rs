//! The binary itself: `config check`, `schema`, and the embedded default
//! database shared by `serve` and `token create`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn nspool() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nspool"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("NSPOOL_CONFIG")
        .env("NO_COLOR", "1");
    command
}

/// `nspool ARGS` on the database at `url`: exit code, stdout, stderr.
fn run_on(url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = nspool()
        .env("DATABASE_URL", url)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("nspool-it-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // Reachable by the embedded server's unprivileged user when tests run as root.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn config_check_prints_settings_or_every_error() {
    let dir = temp_dir("config");
    let good = write(
        &dir,
        "good.yaml",
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: [a, b]}}}}\nnspool: {kubernetes: {mdoe: off}}\n",
    );
    let out = nspool()
        .args(["config", "check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("name: a") && stdout.contains("hardDeleteDeployment: true"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Outside the pool's subtrees an unknown key is a warning, with its fix.
    assert!(
        stderr.contains("nspool.kubernetes.mdoe: unknown key, ignored; did you mean `mode`?"),
        "{stderr}"
    );
    // The warnings docs/configuration.md promises in pool mode.
    assert!(stderr.contains("global.clusterRoles is true"), "{stderr}");
    assert!(
        stderr.contains("COMMANDER_MANUAL_NAMESPACE_NAMES"),
        "{stderr}"
    );
    // The data directory the embedded default will use, one per working directory.
    let data_dir = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("dataDir: "))
        .unwrap_or_else(|| panic!("no dataDir in {stdout}"))
        .to_owned();
    assert!(
        data_dir.starts_with('/') && data_dir != "null",
        "{data_dir}"
    );
    let elsewhere = nspool()
        .current_dir(&dir)
        .args(["config", "check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    let other = String::from_utf8_lossy(&elsewhere.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("dataDir: ").map(str::to_owned))
        .unwrap();
    assert_ne!(
        data_dir, other,
        "another working directory, another data directory"
    );

    let bad = write(
        &dir,
        "bad.yaml",
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: [kube-system, Bad]}, nmaes: [x]}}}\nnspool: {houstonVersion: 2.0.0}\n",
    );
    let out = nspool()
        .args(["config", "check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "global.features.namespacePools.namespaces.names[0]: \"kube-system\" is reserved",
        "global.features.namespacePools.namespaces.names[1]: \"Bad\" is not a valid namespace name",
        "nspool.houstonVersion: 2.0.0 is outside",
        // In the pool's subtree an unknown key is an error too.
        "global.features.namespacePools.nmaes: unknown key (nspool reads enabled, createRbac, namespaces here)",
    ] {
        assert!(stderr.contains(expected), "{expected} not in {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");

    let missing = nspool()
        .args(["config", "check", "--config", "/nonexistent.yaml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 25: `enabeld: true` once passed `config check` (exit 0, a warning)
/// and ran with pool mode off. A typo in the pool's keys stops the file.
#[test]
fn config_check_refuses_a_misspelt_pool_key_naming_its_fix() {
    let dir = temp_dir("typo");
    let typo = write(
        &dir,
        "typo.yaml",
        "global:\n  features:\n    namespacePools:\n      enabeld: true\n      namespaces:\n        names: [team-a]\nastronomer:\n  houston:\n    config:\n      deployments:\n        hardDeleteDeploymnet: true\n        configureDagDeployment: true\n",
    );
    let out = nspool()
        .args(["config", "check", "--config"])
        .arg(&typo)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for expected in [
        "global.features.namespacePools.enabeld: unknown key; did you mean `enabled`?",
        "astronomer.houston.config.deployments.hardDeleteDeploymnet: unknown key; did you mean `hardDeleteDeployment`?",
    ] {
        assert!(stderr.contains(expected), "{expected} not in {stderr}");
    }
    // Houston's own settings are not errors.
    assert!(!stderr.contains("configureDagDeployment:"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "no settings printed for a refused file"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn schema_command_prints_the_committed_sdl() {
    let out = nspool().arg("schema").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        include_str!("../../graphql/schema.graphql")
    );
}

fn has_postgres_binaries() -> bool {
    Path::new("/usr/lib/postgresql").exists() || std::env::var_os("NSPOOL_PG_BIN").is_some()
}

/// `serve` on the embedded default, started from a home of mode 0700 when
/// root; `token create` joins the same database while it runs; SIGTERM stops
/// both the service and its PostgreSQL.
#[test]
fn embedded_default_serves_shares_and_stops() {
    assert!(
        has_postgres_binaries(),
        "this test needs PostgreSQL server binaries (apt-get install postgresql)"
    );
    let dir = temp_dir("embedded");
    let data = dir.join("data");
    let config = write(
        &dir,
        "config.yaml",
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: [team-a]}}}}\n",
    );
    let cwd = if Path::new("/root").exists() {
        PathBuf::from("/root")
    } else {
        std::env::temp_dir()
    };
    let serve = nspool()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .current_dir(&cwd)
        .env("NSPOOL_DATA_DIR", &data)
        .env("NSPOOL_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut serve = crate::support::ChildGuard(serve);

    // The first admin token on stdout, the address in the log.
    let lines = crate::support::drain_lines(&mut serve.0);
    let mut token = None;
    let address = crate::support::listening_address(&lines, |line| {
        if line.starts_with("nsp_") {
            token = Some(line.to_owned());
        }
    });
    // stdout and stderr arrive through two threads, in either order.
    while token.is_none() {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("first admin token printed");
        if line.starts_with("nsp_") {
            token = Some(line);
        }
    }
    let token = token.unwrap_or_default();

    let query = |token: &str| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            reqwest::Client::new()
                .post(format!("http://{address}/v1"))
                .header("authorization", token)
                .header("content-type", "application/json")
                .body(r#"{"query": "{ workspaces { id } }"}"#)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    };
    assert!(
        query(&token).get("errors").is_none(),
        "first admin token works"
    );

    // A second command shares the running database.
    let out = nspool()
        .args(["token", "create", "--role", "SYSTEM_VIEWER"])
        .current_dir(&cwd)
        .env("NSPOOL_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let viewer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        viewer.starts_with("nsp_") && !viewer.contains('\n'),
        "prints only the token: {viewer}"
    );
    assert!(
        query(&viewer).get("errors").is_none(),
        "the new token is in the same database"
    );

    // SIGTERM: a clean stop, and the embedded server goes with the last user.
    // SAFETY: kill with a valid pid and signal has no memory effects.
    unsafe { libc::kill(serve.0.id() as libc::pid_t, libc::SIGTERM) };
    let status = serve.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let pid_file = data.join("pgdata/postmaster.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    while pid_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!pid_file.exists(), "the embedded PostgreSQL stopped");
    // Every client said goodbye before the server stopped: none was still
    // connected to be told to terminate (onto a socket it had closed).
    // (A command's own connection may still log "connection to client lost"
    // now and then while the command exits: known, see the README.)
    let log = std::fs::read_to_string(data.join("postgres.log")).unwrap_or_default();
    assert!(
        !log.contains("terminating connection due to administrator command"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}

/// The shipped manifests are valid YAML, and the config in the ConfigMap is a
/// valid nspool config.
#[test]
fn shipped_manifests_and_example_config_parse() {
    use serde::Deserialize;
    let config_map = include_str!("../../docker/kubernetes/base/config.yaml");
    let value: serde_yaml::Value = serde_yaml::from_str(config_map).expect("valid YAML");
    assert_eq!(value["kind"], "ConfigMap");
    let config = value["data"]["config.yaml"].as_str().unwrap();
    nspool::config::Settings::parse(config, &|_| None).expect("ConfigMap config is valid");
    let mut kinds = Vec::new();
    for manifest in [
        include_str!("../../docker/kubernetes/base/serviceaccount.yaml"),
        include_str!("../../docker/kubernetes/base/deployment.yaml"),
        include_str!("../../docker/kubernetes/base/service.yaml"),
        include_str!("../../docker/kubernetes/base/poddisruptionbudget.yaml"),
        include_str!("../../docker/kubernetes/base/networkpolicy.yaml"),
    ] {
        let value = serde_yaml::Value::deserialize(serde_yaml::Deserializer::from_str(manifest))
            .expect("valid YAML");
        kinds.push(value["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "NetworkPolicy"
        ]
    );
    let example = include_str!("../../examples/config.yaml");
    let settings =
        nspool::config::Settings::parse(example, &|_| None).expect("example config is valid");
    assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
}

/// nspool's own RBAC manifests parse into k8s-openapi types; none of them
/// lets nspool delete anything; escalate and bind name the Commander Role,
/// and bind also nspool's own leftovers and events ClusterRoles (nothing else).
#[test]
fn shipped_rbac_manifests_never_grant_delete_and_limit_escalate() {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    use serde::Deserialize;
    for text in [
        include_str!("../../docker/kubernetes/create/rbac-create.yaml"),
        include_str!("../../docker/kubernetes/verify/rbac-verify.yaml"),
        include_str!("../../docker/kubernetes/base/rbac-leftovers.yaml"),
        include_str!("../../docker/kubernetes/base/rbac-events.yaml"),
    ] {
        for document in serde_yaml::Deserializer::from_str(text) {
            let value = serde_yaml::Value::deserialize(document).unwrap();
            if value["kind"] != "ClusterRole" {
                continue;
            }
            let role: ClusterRole = serde_yaml::from_value(value).unwrap();
            for rule in role.rules.unwrap_or_default() {
                assert!(
                    !rule.verbs.iter().any(|v| v == "delete" || v == "*"),
                    "{rule:?}"
                );
                if rule.verbs.iter().any(|v| v == "escalate" || v == "bind") {
                    let resources = rule.resources.clone().unwrap_or_default();
                    let allowed: &[&str] = if resources == ["clusterroles"] {
                        assert_eq!(rule.verbs, ["bind"], "{rule:?}");
                        &["nspool-leftovers", "nspool-events"]
                    } else {
                        assert_eq!(resources, ["roles"], "{rule:?}");
                        &["deployment-commander-role"]
                    };
                    let names: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
                    assert_eq!(rule.resource_names.as_deref(), Some(&names[..]), "{rule:?}");
                }
            }
        }
    }
}

#[test]
fn rbac_render_prints_the_option_2_manifest() {
    let dir = temp_dir("render");
    let config = write(
        &dir,
        "c.yaml",
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: [a, b]}}}}\n",
    );
    let out = nspool()
        .args(["rbac", "render", "--namespace", "b", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success());
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        yaml.matches("\n---\n").count() + usize::from(yaml.starts_with("---\n")),
        3,
        "{yaml}"
    );
    assert!(
        yaml.contains("name: deployment-commander-rolebinding") && yaml.contains("namespace: b")
    );
    assert!(!yaml.contains("namespace: a\n"));
    let out = nspool()
        .args(["rbac", "render", "--namespace", "zzz", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

/// The pool as rows: which names, and which are retired.
async fn pool_rows(db: &sqlx::PgPool) -> String {
    sqlx::query_scalar(
        "select string_agg(name || ':' || coalesce(retired_at::text, 'live'), ',' order by name) from pool_namespaces",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn only_serve_and_migrate_change_the_pool(db: sqlx::PgPool) {
    use crate::support::{POOL_OF_5, TestApp, database_url};
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let url = database_url(&app.db);
    let dir = temp_dir("commands");
    let other = write(
        &dir,
        "other.yaml",
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: [elsewhere]}}}}\n",
    );
    let run = |args: &[&str]| run_on(&url, args);
    let other = other.to_str().unwrap();
    let before = pool_rows(&app.db).await;
    let (code, token, stderr) = run(&["token", "create", "--role", "SYSTEM_VIEWER"]);
    assert_eq!(code, Some(0), "{stderr}");
    let id: uuid::Uuid =
        sqlx::query_scalar("select id from api_tokens where role = 'SYSTEM_VIEWER'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(token.trim().starts_with("nsp_"));
    for args in [
        vec!["token", "list"],
        vec!["token", "list", "--config", other],
        vec![
            "token",
            "create",
            "--role",
            "SYSTEM_VIEWER",
            "--config",
            other,
        ],
        vec!["reclaim", "--older-than", "14"],
        vec!["reclaim", "--config", other, "--dry-run"],
        vec!["token", "revoke", &id.to_string()],
    ] {
        let (code, _, stderr) = run(&args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(
            pool_rows(&app.db).await,
            before,
            "{args:?} changed the pool"
        );
    }
    // Commands that need a config say so and change nothing.
    for args in [
        vec!["serve"],
        vec!["migrate"],
        vec!["rbac", "check"],
        vec!["rbac", "render"],
        vec!["config", "check"],
        vec!["reclaim"],
    ] {
        let (code, _, stderr) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("--config") && stderr.contains("nspool"),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            pool_rows(&app.db).await,
            before,
            "{args:?} changed the pool"
        );
    }
    // migrate syncs to its config.
    let (code, _, stderr) = run(&["migrate", "--config", other]);
    assert_eq!(code, Some(0), "{stderr}");
    let after = pool_rows(&app.db).await;
    assert!(after.contains("elsewhere:live"), "{after}");
    assert!(!after.contains("pool-a:live"), "{after}");
    let _ = std::fs::remove_dir_all(dir);
}

/// On a pipe: the plain lines only (no bar, no colours, no table); on a
/// terminal (through util-linux's `script`): a summary table.
#[sqlx::test]
async fn long_commands_draw_only_on_a_terminal(db: sqlx::PgPool) {
    use crate::support::{POOL_OF_5, TestApp, database_url};
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let url = database_url(&app.db);
    let dir = temp_dir("summary");
    let config = write(
        &dir,
        "config.yaml",
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: [pool-a, pool-b, extra]}}}}\n",
    );
    let config = config.to_str().unwrap().to_owned();
    let cases = [
        (
            vec!["reclaim", "--older-than", "0"],
            "reclaimed",
            "reclaim summary",
        ),
        (
            vec!["migrate", "--config", config.as_str()],
            "migrated; pool synced: 1 added",
            "migrate summary",
        ),
    ];
    for (args, plain, title) in &cases {
        let out = nspool()
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(stdout.contains(plain), "{args:?}: {stdout}");
        assert!(!stdout.contains(title), "{args:?}: {stdout}");
        for text in [&stdout, &stderr] {
            assert!(
                !text.contains('\u{1b}') && !text.contains('\r'),
                "{args:?} drew on a pipe: {text:?}"
            );
        }
    }
    // `script` (util-linux, on every Debian) gives the command a terminal.
    {
        let (args, _, title) = &cases[0];
        let line = format!("{} {}", env!("CARGO_BIN_EXE_nspool"), args.join(" "));
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("DATABASE_URL", &url)
            .stdin(Stdio::null())
            .output()
            .expect("script from util-linux");
        let seen = String::from_utf8_lossy(&out.stdout);
        assert!(seen.contains(title), "on a terminal: {seen}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test]
async fn a_serve_that_cannot_listen_changes_nothing(db: sqlx::PgPool) {
    use crate::support::{POOL_OF_5, TestApp, database_url};
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let dir = temp_dir("taken-port");
    let other = write(
        &dir,
        "other.yaml",
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: [elsewhere]}}}}\n",
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let before = pool_rows(&app.db).await;
    let out = nspool()
        .env("DATABASE_URL", database_url(&app.db))
        .env("NSPOOL_LISTEN", taken.local_addr().unwrap().to_string())
        .env("NSPOOL_KUBERNETES_MODE", "off")
        .args(["serve", "--config", other.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert_eq!(pool_rows(&app.db).await, before, "the pool is as it was");
}

/// `nspool pool …` against the database a server uses: the server's
/// replica sees each change (the notices reach it), tables for people,
/// JSON for scripts.
#[sqlx::test]
async fn the_pool_commands_list_show_cordon_and_mark_clean(db: sqlx::PgPool) {
    use crate::documents::CREATE_DEPLOYMENT;
    use crate::support::{POOL_OF_5, TestApp, database_url};
    use serde_json::{Value, json};
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let url = database_url(&app.db);
    let run = |args: &[&str]| run_on(&url, args);
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "cli").await;
    app.ok(
        Some(&admin),
        CREATE_DEPLOYMENT,
        json!({"label": "etl", "workspaceId": ws, "executor": "LocalExecutor", "namespace": "pool-a", "releaseName": "cli-etl"}),
    )
    .await;

    let (code, out, err) = run(&["pool", "list"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STATE"),
        "{out}"
    );
    assert_eq!(lines.len(), 6, "{out}");
    assert!(
        lines[1].starts_with("pool-a") && lines[1].contains("held") && lines[1].contains("cli-etl"),
        "{out}"
    );

    let (code, out, err) = run(&[
        "pool",
        "cordon",
        "pool-b",
        "--reason",
        "disk pressure",
        "--until",
        "2h",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("namespace/pool-b cordoned"), "{out}");
    let started = Instant::now();
    while app.available(&admin).await.contains(&"pool-b".to_owned()) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the server never saw the cordon"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (code, out, err) = run(&["pool", "list", "--state", "cordoned", "--output", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let listed: Value = serde_json::from_str(&out).expect("JSON");
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{out}");
    assert_eq!(items[0]["name"], "pool-b");
    assert_eq!(items[0]["state"], "cordoned");
    assert_eq!(items[0]["cordon"]["reason"], "disk pressure");
    assert!(items[0]["cordon"]["until"].is_string());

    let (code, out, err) = run(&["pool", "show", "pool-b"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("State:") && out.contains("cordoned") && out.contains("disk pressure"),
        "{out}"
    );
    assert!(out.contains("Events:") && out.contains("cordon"), "{out}");
    let (code, out, _) = run(&["pool", "show", "pool-a", "-o", "json"]);
    assert_eq!(code, Some(0));
    let shown: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown["holder"]["releaseName"], "cli-etl");
    assert_eq!(shown["events"][0]["kind"], "claim");

    // As kubectl cordon: a second cordon says "already", exit 0.
    let (code, out, err) = run(&["pool", "cordon", "pool-b", "--reason", "still"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("namespace/pool-b already cordoned"), "{out}");

    // The whole pool, then open again.
    let (code, _, err) = run(&["pool", "cordon", "--all", "--reason", "upgrade"]);
    assert_eq!(code, Some(0), "{err}");
    let started = Instant::now();
    while !app.available(&admin).await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the server never saw the pool cordon"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The list says so: a line above the table, and free ones not offered.
    let (code, out, err) = run(&["pool", "list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("The pool is cordoned (upgrade"), "{out}");
    assert!(out.contains("free,PoolCordoned"), "{out}");
    let (code, out, _) = run(&["pool", "show", "pool-c"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("free,PoolCordoned"), "{out}");
    let (code, out, _) = run(&["pool", "cordon", "--all", "--reason", "upgrade"]);
    assert_eq!(
        (code, out.contains("pool already cordoned")),
        (Some(0), true),
        "{out}"
    );
    let (code, out, _) = run(&["pool", "uncordon", "--all"]);
    assert_eq!((code, out.trim()), (Some(0), "pool uncordoned"));
    let (code, out, _) = run(&["pool", "uncordon", "--all"]);
    assert_eq!((code, out.trim()), (Some(0), "pool already uncordoned"));
    let (code, out, _) = run(&["pool", "uncordon", "pool-b"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out, _) = run(&["pool", "uncordon", "pool-b"]);
    assert_eq!(
        (code, out.trim()),
        (Some(0), "namespace/pool-b already uncordoned")
    );
    // Ages where kubectl shows an AGE; no INFO lines unless asked.
    let (code, out, err) = run(&["pool", "list"]);
    assert_eq!(code, Some(0));
    let held = out
        .lines()
        .find(|l| l.contains("cli-etl"))
        .unwrap_or_default();
    assert!(
        held.split_whitespace()
            .any(|w| w.ends_with('s') && w[..w.len() - 1].parse::<u32>().is_ok()),
        "{out}"
    );
    assert!(!err.contains("INFO"), "{err}");
    let (code, out, _) = run(&["token", "list"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("ID "), "a header row first: {out}");

    // Refusals: a clear message, a non-zero exit, nothing changed.
    let before = pool_rows(&app.db).await;
    for (args, says) in [
        (vec!["pool", "show", "nope"], "not a namespace of the pool"),
        (
            vec!["pool", "uncordon", "nope"],
            "not a namespace of the pool",
        ),
        (
            vec!["pool", "mark-clean", "pool-c", "--reason", "x"],
            "not a releasing",
        ),
        (vec!["pool", "cordon", "pool-c", "--reason", " "], "reason"),
        (
            vec![
                "pool",
                "cordon",
                "pool-c",
                "--reason",
                "x",
                "--until",
                "yesterday",
            ],
            "yesterday",
        ),
        (vec!["pool", "list", "--state", "sleepy"], "sleepy"),
        (vec!["pool", "cordon", "--reason", "x"], "<NAME>"),
    ] {
        let (code, _, err) = run(&args);
        assert_ne!(code, Some(0), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(pool_rows(&app.db).await, before);
}

/// Only `serve` and `migrate` migrate: pointed at a database that is not
/// nspool's (another application's, never migrated), every other command
/// refuses, says why, and writes nothing there.
#[sqlx::test(migrations = false)]
async fn commands_refuse_a_database_that_is_not_nspools_and_write_nothing(db: sqlx::PgPool) {
    sqlx::query("create table invoices (id int primary key)")
        .execute(&db)
        .await
        .unwrap();
    let url = crate::support::database_url(&db);
    let tables = || async {
        sqlx::query_scalar::<_, String>(
            "select tablename::text from pg_tables where schemaname = 'public' order by 1",
        )
        .fetch_all(&db)
        .await
        .unwrap()
    };
    let id = uuid::Uuid::new_v4().to_string();
    for args in [
        vec!["token", "list"],
        vec!["token", "create", "--role", "SYSTEM_VIEWER"],
        vec!["token", "revoke", id.as_str()],
        vec!["pool", "list"],
        vec!["pool", "show", "team-a"],
    ] {
        let url = url.clone();
        let owned: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let (code, _, stderr) = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = owned.iter().map(String::as_str).collect();
            run_on(&url, &args)
        })
        .await
        .unwrap();
        assert_ne!(code, Some(0), "{args:?} ran on a foreign database");
        assert!(
            stderr.contains("no nspool tables") && stderr.contains("nspool migrate"),
            "{args:?}: {stderr}"
        );
        assert_eq!(tables().await, ["invoices"], "{args:?} wrote to it");
    }
    // An nspool database an older version left (migrations missing): the
    // same, naming `nspool migrate`.
    sqlx::query(
        "create table _sqlx_migrations (version bigint primary key, description text not null,
             installed_on timestamptz not null default now(), success boolean not null,
             checksum bytea not null, execution_time bigint not null)",
    )
    .execute(&db)
    .await
    .unwrap();
    let (code, _, stderr) = tokio::task::spawn_blocking(move || run_on(&url, &["token", "list"]))
        .await
        .unwrap();
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("not migrated to this nspool version"),
        "{stderr}"
    );
    assert_eq!(tables().await, ["_sqlx_migrations", "invoices"]);
}

/// A taken port says what to do about it: NSPOOL_LISTEN (or nspool.listen).
#[sqlx::test]
async fn a_taken_port_names_the_setting_that_moves_it(db: sqlx::PgPool) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let url = crate::support::database_url(&db);
    let config = write(
        &temp_dir("taken-port"),
        "config.yaml",
        crate::support::POOL_OF_5,
    );
    let out = tokio::task::spawn_blocking(move || {
        nspool()
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("DATABASE_URL", &url)
            .env("NSPOOL_LISTEN", &address)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot listen on") && stderr.contains("NSPOOL_LISTEN"),
        "{stderr}"
    );
    drop(taken);
}

/// With several clusters the pool and rbac commands name theirs
/// (`--cluster NAME`), and `pool list` shows every cluster's namespaces with
/// a CLUSTER column.
#[sqlx::test]
async fn the_pool_and_rbac_commands_take_a_cluster(db: sqlx::PgPool) {
    use crate::clusters::{STAGING, two_clusters};
    use crate::documents_1x::CREATE_DEPLOYMENT;
    use crate::support::{TestApp, database_url};
    use serde_json::json;
    let yaml = two_clusters("");
    let dir = temp_dir("clusters");
    let config = write(&dir, "c.yaml", &yaml);
    let config = config.to_str().expect("a UTF-8 path");
    let app = TestApp::spawn(&yaml, db).await;
    let url = database_url(&app.db);
    let run = |args: &[&str]| run_on(&url, args);
    let admin = app.admin().await;
    let ws = app.create_workspace(&admin, "cli").await;
    app.ok(
        Some(&admin),
        CREATE_DEPLOYMENT,
        json!({"label": "etl", "workspaceId": ws, "clusterId": STAGING, "executor": "LocalExecutor",
               "namespace": "team-a", "releaseName": "stg-etl"}),
    )
    .await;

    let (code, out, err) = run(&["pool", "list", "--config", config]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("CLUSTER") && lines[0].contains("NAME"),
        "{out}"
    );
    assert_eq!(lines.len(), 5, "{out}");
    assert!(
        lines[1].starts_with("prod") && lines[1].contains("team-a") && lines[1].contains("free"),
        "{out}"
    );
    assert!(
        lines[3].starts_with("staging") && lines[3].contains("team-a") && lines[3].contains("held"),
        "{out}"
    );
    let (code, out, err) = run(&["pool", "list", "--config", config, "--cluster", "staging"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");

    // One namespace needs its cluster: the error lists them.
    let (code, _, err) = run(&["pool", "show", "team-a", "--config", config]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("--cluster") && err.contains("prod") && err.contains("staging"),
        "{err}"
    );
    let (code, out, err) = run(&[
        "pool",
        "show",
        "team-a",
        "--config",
        config,
        "--cluster",
        "staging",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("workspace cli") && out.contains("Cluster:") && out.contains("staging"),
        "{out}"
    );
    let (code, out, err) = run(&[
        "pool",
        "cordon",
        "team-c",
        "--reason",
        "disk",
        "--config",
        config,
        "--cluster",
        "staging",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("namespace/team-c cordoned"), "{out}");
    let (code, _, err) = run(&["pool", "list", "--config", config, "--cluster", "qa"]);
    assert_eq!(code, Some(2), "a usage error, as rbac's: {err}");
    assert!(err.contains("\"qa\""), "{err}");

    // rbac render: the named cluster's pool.
    let out = nspool()
        .args(["rbac", "render", "--cluster", "prod", "--config", config])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(
        yaml.contains("namespace: team-b") && !yaml.contains("namespace: team-c"),
        "{yaml}"
    );
    let out = nspool()
        .args(["rbac", "render", "--config", config])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cluster"));
    let _ = std::fs::remove_dir_all(dir);
}
