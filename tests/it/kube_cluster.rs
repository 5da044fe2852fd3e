//! The Kubernetes side against a real API server (the control plane of
//! `cluster.rs`), nspool authenticated as its own ServiceAccount with exactly
//! the shipped RBAC: server-side apply and its field managers, idempotency
//! (no resourceVersion moves on a second pass), labels the API server really
//! drops, verification through the real RBAC authorizer, leftovers beside
//! what the controllers put in every namespace, Events as `kubectl events`
//! shows them, and never a DELETE (the API server's audit log says so).

use crate::cluster::{Account, Cluster, PLATFORM};
use crate::documents::CREATE_DEPLOYMENT;
use crate::support::TestApp;
use crate::support::{claim_in_own_workspace as claim, hard_delete as release};
use nspool::domain::commander_rules::{Rule, Triple, seed_rules};
use nspool::kube::objects::{LABEL_DEPLOYMENT, LABEL_RELEASE, MANAGED_BY_KEY};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Create mode over `names`.
fn create_config(names: &[String]) -> String {
    format!(
        "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{create: true, names: [{}]}}}}}}}}\n",
        names.join(", ")
    )
}

/// Verify mode over `names`, nspool as `account`.
fn verify_config(names: &[String], account: Account, extra: &str) -> String {
    format!(
        "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{create: false, names: [{}]}}}}}}}}\nnspool: {{serviceAccount: {}{extra}}}\n",
        names.join(", "),
        account.service_account()
    )
}

/// One create-mode namespace of this test's own: the cluster, a replica
/// (checking released namespaces when `in_cluster`, as `serve` with a cluster
/// does), its admin token, after the first pass applied the namespace.
struct OneNamespace {
    cluster: Cluster,
    names: [String; 1],
    app: TestApp,
    admin: String,
}

async fn one_namespace(db: PgPool, in_cluster: bool) -> OneNamespace {
    let cluster = Cluster::connect().await;
    let names = [cluster.ns("team-a")];
    let config = create_config(&names);
    let app = if in_cluster {
        TestApp::spawn_in_cluster(&config, db).await
    } else {
        TestApp::spawn(&config, db).await
    };
    let admin = app.admin().await;
    cluster.pass(&app.service, Account::Create).await;
    OneNamespace {
        cluster,
        names,
        app,
        admin,
    }
}

fn rules_of(role: &Value) -> Vec<Rule> {
    role["rules"]
        .as_array()
        .expect("a Role has rules")
        .iter()
        .map(|r| Rule {
            api_groups: serde_json::from_value(r["apiGroups"].clone()).unwrap_or_default(),
            resources: serde_json::from_value(r["resources"].clone()).unwrap_or_default(),
            verbs: serde_json::from_value(r["verbs"].clone()).unwrap_or_default(),
        })
        .collect()
}

fn resource_version(object: &Value) -> String {
    object["metadata"]["resourceVersion"]
        .as_str()
        .expect("a resourceVersion")
        .to_owned()
}

/// Every object nspool applies in a create-mode namespace, by (kind, name).
const APPLIED: [(&str, &str); 5] = [
    ("Namespace", ""),
    ("Role", "deployment-commander-role"),
    ("RoleBinding", "deployment-commander-rolebinding"),
    ("RoleBinding", "nspool-events"),
    ("RoleBinding", "nspool-leftovers"),
];

async fn versions(cluster: &Cluster, ns: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, name) in APPLIED {
        let object = if kind == "Namespace" {
            cluster.object(kind, "", ns).await
        } else {
            cluster.object(kind, ns, name).await
        };
        out.push(resource_version(
            &object.unwrap_or_else(|| panic!("{kind} {name} in {ns}")),
        ));
    }
    out
}

#[sqlx::test]
async fn create_mode_applies_every_object_by_server_side_apply_and_a_second_pass_moves_nothing(
    db: PgPool,
) {
    let cluster = Cluster::connect().await;
    let names = [cluster.ns("team-a"), cluster.ns("team-b")];
    let app = TestApp::spawn_in_cluster(&create_config(&names), db).await;
    let report = cluster.pass(&app.service, Account::Create).await;
    assert_eq!(report.applied, 2, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    for ns in &names {
        let namespace = cluster.object("Namespace", "", ns).await.expect("created");
        assert_eq!(namespace["metadata"]["labels"][MANAGED_BY_KEY], "nspool");
        let managers: Vec<(String, String)> = namespace["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["manager"].as_str().unwrap().to_owned(),
                    m["operation"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(
            managers.contains(&("nspool".into(), "Apply".into())),
            "{managers:?}"
        );
        let role = cluster
            .object("Role", ns, "deployment-commander-role")
            .await
            .expect("the Commander Role");
        assert_eq!(rules_of(&role), seed_rules());
        let binding = cluster
            .object("RoleBinding", ns, "deployment-commander-rolebinding")
            .await
            .expect("the Commander RoleBinding");
        assert_eq!(
            binding["subjects"][0],
            json!({"kind": "ServiceAccount", "name": "astronomer-commander", "namespace": PLATFORM})
        );
        assert_eq!(binding["roleRef"]["name"], "deployment-commander-role");
        for own in ["nspool-events", "nspool-leftovers"] {
            let binding = cluster
                .object("RoleBinding", ns, own)
                .await
                .unwrap_or_else(|| panic!("{own} in {ns}"));
            assert_eq!(
                binding["roleRef"],
                json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": own})
            );
            assert_eq!(
                binding["subjects"][0],
                json!({"kind": "ServiceAccount", "name": "nspool", "namespace": PLATFORM})
            );
        }
    }
    // Every write nspool sent was a forced server-side apply under `nspool`.
    let writes: Vec<_> = cluster
        .audit_of(Account::Create)
        .into_iter()
        .filter(|e| e.writes())
        .collect();
    assert_eq!(writes.len(), 10, "{writes:#?}");
    assert!(
        writes.iter().all(|e| e.verb == "patch"
            && e.uri.contains("fieldManager=nspool")
            && e.uri.contains("force=true")
            && e.code < 300),
        "{writes:#?}"
    );

    // Nothing due: a second pass sends nothing.
    let before = cluster.audit_of(Account::Create).len();
    let report = cluster.pass(&app.service, Account::Create).await;
    assert_eq!((report.applied, report.labelled, report.checked), (0, 0, 0));
    assert_eq!(cluster.audit_of(Account::Create).len(), before);

    // A forced re-apply: every object applied again, no resourceVersion moves.
    let first: Vec<Vec<String>> =
        futures::future::join_all(names.iter().map(|n| versions(&cluster, n))).await;
    let admin = app.admin().await;
    app.ok(Some(&admin), "mutation { resyncPool }", Value::Null)
        .await;
    let report = cluster.pass(&app.service, Account::Create).await;
    assert_eq!(report.applied, 2, "{report:?}");
    let second: Vec<Vec<String>> =
        futures::future::join_all(names.iter().map(|n| versions(&cluster, n))).await;
    assert_eq!(first, second, "a repeat apply changes no object");
    cluster.assert_never_deleted();
}

#[sqlx::test]
async fn claim_labels_have_their_own_manager_and_the_api_server_drops_them_on_release(db: PgPool) {
    let OneNamespace {
        cluster,
        names,
        app,
        admin,
    } = one_namespace(db.clone(), true).await;
    let ns = names[0].as_str();
    // A label a person put there with kubectl is theirs, and stays.
    crate::cluster::kubectl(&["label", "namespace", ns, "team=data"], None);
    let deployment = claim(&app, &admin, ns).await;
    let report = cluster.pass(&app.service, Account::Create).await;
    assert_eq!(report.labelled, 1, "{report:?}");
    let namespace = cluster.object("Namespace", "", ns).await.unwrap();
    let labels = &namespace["metadata"]["labels"];
    assert_eq!(labels[LABEL_RELEASE], deployment["releaseName"]);
    assert_eq!(labels[LABEL_DEPLOYMENT], deployment["id"]);
    let claims_fields = namespace["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "nspool-claims")
        .expect("the claim labels' own field manager")
        .clone();
    assert_eq!(claims_fields["operation"], "Apply");
    let owned = claims_fields["fieldsV1"]["f:metadata"]["f:labels"].clone();
    assert!(
        owned.get(format!("f:{LABEL_RELEASE}")).is_some()
            && owned.get(format!("f:{MANAGED_BY_KEY}")).is_none(),
        "{owned}"
    );

    // An RBAC re-apply in a new process never strips the claim labels; a
    // resync writes them again where they were stripped by hand.
    crate::cluster::kubectl(
        &["label", "namespace", ns, &format!("{LABEL_DEPLOYMENT}-")],
        None,
    );
    let restarted = TestApp::spawn_in_cluster(
        &create_config(&names),
        crate::support::another_pool(&db).await,
    )
    .await;
    restarted
        .ok(Some(&admin), "mutation { resyncPool }", Value::Null)
        .await;
    let report = cluster.pass(&restarted.service, Account::Create).await;
    assert_eq!((report.applied, report.labelled), (1, 1), "{report:?}");
    let labels = cluster.object("Namespace", "", ns).await.unwrap()["metadata"]["labels"].clone();
    assert_eq!(labels[LABEL_RELEASE], deployment["releaseName"]);
    assert_eq!(labels[LABEL_DEPLOYMENT], deployment["id"]);

    // Released: the claim manager applies no labels, and the API server drops
    // the ones it owned; nspool's own and the person's stay.
    release(&restarted, &admin, &deployment["id"]).await;
    let report = cluster.pass(&restarted.service, Account::Create).await;
    assert_eq!(report.labelled, 1, "{report:?}");
    let labels = cluster.object("Namespace", "", ns).await.unwrap()["metadata"]["labels"].clone();
    assert!(
        labels.get(LABEL_RELEASE).is_none() && labels.get(LABEL_DEPLOYMENT).is_none(),
        "{labels}"
    );
    assert_eq!(labels[MANAGED_BY_KEY], "nspool");
    assert_eq!(labels["team"], "data");
    cluster.assert_never_deleted();
}

/// What a Role of `rules` grants of `triple`, as the RBAC authorizer reads it.
fn grants(rules: &[Rule], triple: &Triple) -> bool {
    let has = |items: &[String], want: &str| items.iter().any(|i| i == want || i == "*");
    rules.iter().any(|r| {
        has(&r.api_groups, &triple.group)
            && has(&r.resources, &triple.resource)
            && has(&r.verbs, &triple.verb)
    })
}

/// The objects `nspool rbac render` prints for `names`, as JSON values.
fn rendered(app: &TestApp, names: &[&str]) -> Vec<Value> {
    let settings = app.service.settings();
    let target = nspool::kube::objects::RbacTarget::from_settings(&settings.service);
    let yaml = nspool::kube::objects::render(names, &target, &settings.service.pool_labels)
        .expect("render");
    serde_yaml::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("rendered YAML parses"))
        .collect()
}

/// nspool's own RoleBindings in a verify-mode namespace, as the shipped
/// manifests tell the platform team to make them.
fn own_bindings(ns: &str, account: Account) {
    for role in ["nspool-events", "nspool-leftovers"] {
        crate::cluster::kubectl(
            &[
                "-n",
                ns,
                "create",
                "rolebinding",
                role,
                &format!("--clusterrole={role}"),
                &format!("--serviceaccount={PLATFORM}:{}", account.service_account()),
            ],
            None,
        );
    }
}

#[sqlx::test]
async fn verify_mode_asks_the_real_authorizer_and_names_the_missing_verb(db: PgPool) {
    let cluster = Cluster::connect().await;
    let (ok, broken, missing) = (
        cluster.ns("ns-ok"),
        cluster.ns("ns-broken"),
        cluster.ns("ns-missing"),
    );
    let names = [ok.clone(), broken.clone(), missing.clone()];
    let app = TestApp::spawn_in_cluster(&verify_config(&names, Account::Verify, ""), db).await;
    let admin = app.admin().await;
    // The platform team applies what `nspool rbac render` prints, but for
    // ns-broken one verb is left out of one rule of the Commander Role.
    let mut objects = rendered(&app, &[&ok, &broken]);
    let mut dropped = Vec::new();
    for object in &mut objects {
        if object["kind"] == "Role" && object["metadata"]["namespace"] == broken.as_str() {
            let rule = object["rules"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|r| {
                    r["resources"]
                        .as_array()
                        .unwrap()
                        .contains(&json!("serviceaccounts"))
                })
                .expect("the Commander Role manages serviceaccounts");
            rule["verbs"]
                .as_array_mut()
                .unwrap()
                .retain(|v| v != "create");
            dropped = rules_of(object);
        }
    }
    cluster.apply(&json!({"apiVersion": "v1", "kind": "List", "items": objects}));
    own_bindings(&ok, Account::Verify);
    own_bindings(&broken, Account::Verify);

    let report = cluster.pass(&app.service, Account::Verify).await;
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.checked, 3, "{report:?}");
    assert_eq!(report.missing, std::slice::from_ref(&missing));
    // Exactly what the weakened Role no longer grants, as the authorizer says.
    let served = nspool::kube::client::KubeClient::from_config(
        cluster.config_with_token(cluster.token(Account::Verify).await),
        4,
    )
    .unwrap()
    .served_groups()
    .await
    .unwrap();
    let plan = nspool::domain::commander_rules::plan(&seed_rules(), &|g| served.contains(g));
    let mut expected: Vec<String> = plan
        .namespaced
        .iter()
        .filter(|t| !grants(&dropped, t))
        .map(Triple::to_string)
        .collect();
    expected.sort();
    assert!(expected.contains(&"create serviceaccounts (core)".to_owned()));
    assert_eq!(report.broken, [(broken.clone(), expected)]);
    assert!(
        report
            .cluster_scoped
            .iter()
            .any(|(t, allowed)| t == "get nodes/proxy (core)" && !allowed),
        "{report:?}"
    );
    assert!(
        report.stale.iter().any(|t| t.contains("(extensions)")),
        "{report:?}"
    );
    assert_eq!(app.available(&admin).await, std::slice::from_ref(&ok));
    // The pool view and a direct claim name what is wrong.
    let view = app
        .ok(
            Some(&admin),
            "{ poolNamespaces { name rbacState rbacMissing rbacCheckedAt } }",
            Value::Null,
        )
        .await;
    let row = view["poolNamespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == broken.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["rbacState"], "broken");
    assert_eq!(row["rbacMissing"], json!(report.broken[0].1));
    assert!(row["rbacCheckedAt"].is_string());
    let ws = app.create_workspace(&admin, "team").await;
    for (ns, says) in [
        (&broken, "cannot create serviceaccounts (core)"),
        (&missing, "does not exist"),
    ] {
        let err = app
            .err(
                Some(&admin),
                CREATE_DEPLOYMENT,
                json!({"label": "x", "workspaceId": ws, "executor": "LocalExecutor", "namespace": ns}),
                "BAD_USER_INPUT",
            )
            .await;
        assert!(err["message"].as_str().unwrap().contains(says), "{err}");
    }
    // Verify mode writes nothing to the cluster.
    let writes: Vec<_> = cluster
        .audit_of(Account::Verify)
        .into_iter()
        .filter(|e| e.writes())
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");

    // Repaired by the platform team, re-checked on request: offered again.
    cluster
        .apply(&json!({"apiVersion": "v1", "kind": "List", "items": rendered(&app, &[&broken])}));
    app.ok(Some(&admin), "mutation { resyncPool }", Value::Null)
        .await;
    let report = cluster.pass(&app.service, Account::Verify).await;
    assert!(report.broken.is_empty(), "{report:?}");
    let mut offered = vec![broken.clone(), ok.clone()];
    offered.sort();
    assert_eq!(app.available(&admin).await, offered);
    cluster.assert_never_deleted();
}

#[sqlx::test]
async fn verify_mode_labels_only_namespaces_that_exist(db: PgPool) {
    let cluster = Cluster::connect().await;
    let (there, gone) = (cluster.ns("ns-there"), cluster.ns("ns-gone"));
    let names = [there.clone(), gone.clone()];
    let config = verify_config(
        &names,
        Account::VerifyWithClaimLabels,
        ", kubernetes: {claimLabels: true}",
    );
    let app = TestApp::spawn(&config, db).await;
    let admin = app.admin().await;
    cluster.create_namespace(&there);
    claim(&app, &admin, &there).await;
    claim(&app, &admin, &gone).await;
    let report = cluster
        .pass(&app.service, Account::VerifyWithClaimLabels)
        .await;
    assert_eq!(report.labelled, 1, "{report:?}");
    assert!(
        report
            .failed
            .iter()
            .any(|(ns, e)| ns == &gone && e.contains("does not exist")),
        "{report:?}"
    );
    assert!(
        cluster.object("Namespace", "", &gone).await.is_none(),
        "labelling never creates a namespace"
    );
    let labels =
        cluster.object("Namespace", "", &there).await.unwrap()["metadata"]["labels"].clone();
    assert!(labels.get(LABEL_RELEASE).is_some(), "{labels}");
    cluster.assert_never_deleted();
}

#[sqlx::test]
async fn leftovers_are_what_a_deployment_left_never_what_the_controllers_made(db: PgPool) {
    let OneNamespace {
        cluster,
        names,
        app,
        admin,
    } = one_namespace(db.clone(), true).await;
    let ns = names[0].as_str();
    // The controllers fill every new namespace; none of it is a leftover.
    cluster.wait_for_controller_defaults(ns).await;
    let deployment = claim(&app, &admin, ns).await;
    // What the Deployment's chart made (as Commander would).
    cluster.apply(&json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "airflow-config", "namespace": ns}, "data": {"a": "b"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "airflow-fernet-key", "namespace": ns}, "stringData": {"k": "v"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "airflow-webserver", "namespace": ns},
         "spec": {"ports": [{"port": 8080}], "selector": {"app": "webserver"}}},
    ]}));
    release(&app, &admin, &deployment["id"]).await;
    let report = cluster.pass(&app.service, Account::Create).await;
    assert!(report.failed.is_empty(), "{report:?}");
    let mut left = report.leftovers.clone();
    for (_, found) in &mut left {
        found.sort();
    }
    assert_eq!(
        left,
        [(
            ns.to_owned(),
            vec![
                "ConfigMap/airflow-config".to_owned(),
                "Secret/airflow-fernet-key".to_owned(),
                "Service/airflow-webserver".to_owned()
            ]
        )]
    );
    assert!(!app.available(&admin).await.contains(&ns.to_owned()));

    // Their owner removes them; the next check offers the namespace again.
    for (kind, name) in [
        ("configmap", "airflow-config"),
        ("secret", "airflow-fernet-key"),
        ("service", "airflow-webserver"),
    ] {
        crate::cluster::kubectl(&["-n", ns, "delete", kind, name], None);
    }
    crate::hygiene::due(&db, ns).await;
    let report = cluster.pass(&app.service, Account::Create).await;
    assert_eq!(report.cleaned, [ns.to_owned()], "{report:?}");
    assert!(app.available(&admin).await.contains(&ns.to_owned()));
    // It listed what it needed there, and only there.
    let lists: Vec<_> = cluster
        .audit_of(Account::Create)
        .into_iter()
        .filter(|e| e.verb == "list")
        .collect();
    assert!(
        lists.iter().all(|e| e.namespace == ns && e.code == 200),
        "{lists:#?}"
    );
    cluster.assert_never_deleted();
}

#[sqlx::test]
async fn events_are_posted_as_nspool_and_read_with_kubectl_events(db: PgPool) {
    let OneNamespace {
        cluster,
        names,
        app,
        admin,
    } = one_namespace(db, true).await;
    let ns = names[0].as_str();
    let deployment = claim(&app, &admin, ns).await;
    release(&app, &admin, &deployment["id"]).await;
    cluster.pass(&app.service, Account::Create).await;
    let kube = cluster.nspool(Account::Create).await;
    let posted = nspool::kube::event_posts::post_due(
        app.service.store(),
        app.service.settings().default_cluster().id,
        &kube,
        "nspool-test-0",
    )
    .await
    .expect("posting reads the database");
    assert_eq!(posted, 3, "claimed, released, found clean");
    let shown = crate::cluster::kubectl(&["events", "-n", ns], None);
    for reason in ["Claimed", "Released", "FoundClean"] {
        assert!(shown.contains(reason), "{reason} in:\n{shown}");
    }
    assert!(
        shown.contains(deployment["releaseName"].as_str().unwrap()),
        "{shown}"
    );
    // Posted by nspool's own account, in the namespace they are about.
    let creates: Vec<_> = cluster
        .audit_of(Account::Create)
        .into_iter()
        .filter(|e| e.resource == "events")
        .collect();
    assert_eq!(creates.len(), 3, "{creates:#?}");
    assert!(
        creates
            .iter()
            .all(|e| e.verb == "create" && e.namespace == ns && e.code == 201)
    );
    cluster.assert_never_deleted();
}

/// `nspool rbac check` as a person runs it, against the real cluster with a
/// kubeconfig of nspool's verify account: exit 1, the missing verb named.
#[sqlx::test]
async fn rbac_check_command_against_the_cluster_names_broken_namespaces(db: PgPool) {
    let cluster = Cluster::connect().await;
    let (ok, broken, missing) = (
        cluster.ns("ns-ok"),
        cluster.ns("ns-broken"),
        cluster.ns("ns-missing"),
    );
    let names = [ok.clone(), broken.clone(), missing.clone()];
    let config_text = verify_config(&names, Account::Verify, "");
    let app = TestApp::spawn(&config_text, db.clone()).await;
    let mut objects = rendered(&app, &[&ok, &broken]);
    for object in &mut objects {
        if object["kind"] == "Role" && object["metadata"]["namespace"] == broken.as_str() {
            // No Secrets at all for Commander there (a rule left with no
            // resource is dropped: the API server refuses an empty one).
            let rules = object["rules"].as_array_mut().unwrap();
            for rule in rules.iter_mut() {
                if let Some(resources) = rule["resources"].as_array_mut() {
                    resources.retain(|x| x != "secrets");
                }
            }
            rules.retain(|r| r["resources"].as_array().is_some_and(|x| !x.is_empty()));
        }
    }
    cluster.apply(&json!({"apiVersion": "v1", "kind": "List", "items": objects}));
    let kubeconfig = cluster.kubeconfig_as(Account::Verify).await;
    let config = kubeconfig.with_file_name("config.yaml");
    std::fs::write(&config, &config_text).unwrap();
    let url = crate::support::database_url(&db);
    let run = move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_nspool"))
            .args(["rbac", "check", "--config"])
            .arg(&config)
            .env("KUBECONFIG", &kubeconfig)
            .env("DATABASE_URL", &url)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap()
    };
    let out = tokio::task::spawn_blocking(run).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("BROKEN  {broken}: the Commander account cannot ")),
        "{stdout}"
    );
    assert!(stdout.contains("get secrets (core)"), "{stdout}");
    assert!(stdout.contains(&format!("MISSING {missing}")), "{stdout}");
    assert!(!stdout.contains(&format!("BROKEN  {ok}")), "{stdout}");
    cluster.assert_never_deleted();
}

/// `nspool rbac check` in create mode verifies and writes nothing, even with
/// applies pending and a retry not yet due.
#[sqlx::test]
async fn a_check_by_hand_only_reads(db: PgPool) {
    let cluster = Cluster::connect().await;
    let names = [cluster.ns("team-a"), cluster.ns("team-b")];
    let app = TestApp::spawn(&create_config(&names), db).await;
    for ns in &names {
        cluster.create_namespace(ns);
    }
    sqlx::query("update pool_namespaces set kube_next_attempt_at = now() + interval '1 hour'")
        .execute(&app.db)
        .await
        .unwrap();
    let report = nspool::kube::reconcile::KubeWorker::new(
        &app.service,
        cluster.nspool(Account::Create).await,
    )
    .pass(true)
    .await
    .unwrap();
    assert_eq!((report.checked, report.applied, report.labelled), (2, 0, 0));
    // No Commander Role there yet: both are reported broken, nothing applied.
    assert_eq!(report.broken.len(), 2, "{report:?}");
    let writes: Vec<_> = cluster
        .audit_of(Account::Create)
        .into_iter()
        .filter(|e| e.writes())
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
    cluster.assert_never_deleted();
}

/// A namespace deleted behind nspool's back: a label write never creates it
/// again (server-side apply would: the namespace's uid rides on the apply);
/// in create mode the next pass applies it again in full, Commander's Role
/// and RoleBinding with it.
#[sqlx::test]
async fn a_namespace_deleted_out_of_band_is_never_made_by_a_label_write(db: PgPool) {
    let OneNamespace {
        cluster,
        names,
        app,
        admin,
    } = one_namespace(db.clone(), false).await;
    let ns = names[0].as_str();
    let deployment = claim(&app, &admin, ns).await;
    assert_eq!(
        cluster.pass(&app.service, Account::Create).await.labelled,
        1
    );
    let first_uid = cluster.object("Namespace", "", ns).await.unwrap()["metadata"]["uid"].clone();

    // Someone deletes it (the namespace controller empties and removes it).
    crate::cluster::kubectl(
        &["delete", "namespace", ns, "--wait=true", "--timeout=30s"],
        None,
    );
    assert!(cluster.object("Namespace", "", ns).await.is_none());
    release(&app, &admin, &deployment["id"]).await;
    let report = cluster.pass(&app.service, Account::Create).await;
    assert!(
        report
            .failed
            .iter()
            .any(|(name, e)| name == ns && e.contains("does not exist")),
        "{report:?}"
    );
    assert!(
        cluster.object("Namespace", "", ns).await.is_none(),
        "a label write made the namespace again"
    );

    // The next pass (after the retry's backoff) applies it again in full.
    sqlx::query("update pool_namespaces set kube_next_attempt_at = null")
        .execute(&db)
        .await
        .unwrap();
    let report = cluster.pass(&app.service, Account::Create).await;
    assert_eq!((report.applied, report.labelled), (1, 1), "{report:?}");
    let again = cluster
        .object("Namespace", "", ns)
        .await
        .expect("applied again");
    assert_ne!(again["metadata"]["uid"], first_uid);
    assert!(again["metadata"]["labels"].get(LABEL_RELEASE).is_none());
    // (No leftovers binding: this replica does not check released namespaces.)
    for (kind, name) in &APPLIED[1..4] {
        assert!(
            cluster.object(kind, ns, name).await.is_some(),
            "{kind} {name} applied again"
        );
    }
    cluster.assert_never_deleted();
}

/// Offer only what is true, create mode: a namespace is offered once nspool
/// has applied it (the API server answered each apply with what it stored),
/// never before, and not while its apply is refused.
#[sqlx::test]
async fn create_mode_offers_a_namespace_only_once_applied(db: PgPool) {
    let cluster = Cluster::connect().await;
    let names = [cluster.ns("team-a"), cluster.ns("team-b")];
    let app = TestApp::spawn_in_cluster(&create_config(&names), db.clone()).await;
    let admin = app.admin().await;
    assert!(app.available(&admin).await.is_empty(), "nothing seen yet");
    let ws = app.create_workspace(&admin, "early").await;
    let refused = app
        .err(
            Some(&admin),
            CREATE_DEPLOYMENT,
            json!({"label": "x", "workspaceId": ws, "executor": "LocalExecutor", "namespace": names[0]}),
            "BAD_USER_INPUT",
        )
        .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("not offered yet"),
        "{refused}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("nspool_pool_namespaces{state=\"pending\"} 2"),
        "{metrics}"
    );

    // The apply is refused (an account without the create-mode RBAC): still
    // not offered, the refusal on the namespace.
    let report = cluster.pass(&app.service, Account::Verify).await;
    assert_eq!(report.failed.len(), 2, "{report:?}");
    assert!(
        report.failed.iter().all(|(_, e)| e.contains("403")),
        "{report:?}"
    );
    assert!(app.available(&admin).await.is_empty());
    let view = app
        .ok(
            Some(&admin),
            "{ poolNamespaces { name rbacState kubeError } }",
            Value::Null,
        )
        .await;
    for n in view["poolNamespaces"].as_array().unwrap() {
        assert_eq!(n["rbacState"], "pending", "{n}");
        assert!(n["kubeError"].as_str().unwrap().contains("403"), "{n}");
    }

    // Applied as nspool's own account: offered.
    sqlx::query("update pool_namespaces set kube_next_attempt_at = null")
        .execute(&db)
        .await
        .unwrap();
    let report = cluster.pass(&app.service, Account::Create).await;
    assert_eq!(report.applied, 2, "{report:?}");
    let mut offered = names.to_vec();
    offered.sort();
    assert_eq!(app.available(&admin).await, offered);
    cluster.assert_never_deleted();
}

/// A namespace dropped from the config and listed again is checked again
/// before it is offered: while it was retired its objects may have gone
/// (here its Commander Role), and the pass that applies it again is what
/// makes it ready.
#[sqlx::test]
async fn a_namespace_listed_again_is_applied_again_before_it_is_offered(db: PgPool) {
    let cluster = Cluster::connect().await;
    let names = [cluster.ns("team-a"), cluster.ns("team-b")];
    let app = TestApp::spawn_in_cluster(&create_config(&names), db).await;
    let admin = app.admin().await;
    cluster.pass(&app.service, Account::Create).await;
    let mut both = names.to_vec();
    both.sort();
    assert_eq!(app.available(&admin).await, both);

    let parse = |yaml: &str| nspool::config::Settings::parse(yaml, &|_| None);
    app.service
        .reload(parse(&create_config(&names[..1])))
        .await
        .expect("team-b dropped");
    cluster.kubectl(
        &[
            "delete",
            "role",
            "deployment-commander-role",
            "-n",
            &names[1],
        ],
        None,
    );
    let back = app
        .service
        .reload(parse(&create_config(&names)))
        .await
        .expect("team-b listed again");
    assert_eq!(back.sync.restored, [names[1].clone()]);
    assert_eq!(
        app.available(&admin).await,
        [names[0].clone()],
        "not offered before it is seen ready again"
    );
    let report = cluster.pass(&app.service, Account::Create).await;
    assert_eq!(report.applied, 1, "{report:?}");
    assert!(
        cluster
            .object("Role", &names[1], "deployment-commander-role")
            .await
            .is_some(),
        "its Role applied again"
    );
    assert_eq!(app.available(&admin).await, both);
    cluster.assert_never_deleted();
}

/// Offer only what is true, verify mode: a namespace never verified is not
/// offered while the API server cannot be reached; once verified, it is.
#[sqlx::test]
async fn verify_mode_offers_nothing_unverified_during_an_api_outage(db: PgPool) {
    let cluster = Cluster::connect().await;
    let ok = cluster.ns("ns-ok");
    let names = [ok.clone()];
    let app =
        TestApp::spawn_in_cluster(&verify_config(&names, Account::Verify, ""), db.clone()).await;
    let admin = app.admin().await;
    cluster.apply(&json!({"apiVersion": "v1", "kind": "List", "items": rendered(&app, &[&ok])}));
    own_bindings(&ok, Account::Verify);
    // The API server is down (nothing listens there).
    let down = nspool::kube::client::KubeClient::for_url("http://127.0.0.1:9", 4).unwrap();
    let outage = nspool::kube::reconcile::KubeWorker::new(&app.service, down)
        .pass(false)
        .await
        .expect("the pass reads the database");
    assert_eq!(outage.failed.len(), 1, "{outage:?}");
    assert!(
        app.available(&admin).await.is_empty(),
        "never verified, not offered"
    );
    // The failure is on the namespace, so the metric and its alert see it.
    let metrics = app.metrics().await;
    assert_eq!(
        crate::support::metric_value(&metrics, "nspool_kube_errors"),
        Some(1.0),
        "{metrics}"
    );

    sqlx::query("update pool_namespaces set kube_next_attempt_at = null")
        .execute(&db)
        .await
        .unwrap();
    let report = cluster.pass(&app.service, Account::Verify).await;
    assert_eq!(report.checked, 1, "{report:?}");
    assert_eq!(app.available(&admin).await, names);
    cluster.assert_never_deleted();
}
