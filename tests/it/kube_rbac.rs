//! The RBAC nspool ships, proven on a real API server: nspool, as its own
//! ServiceAccount bound to exactly `docker/kubernetes/`, is refused what it
//! must never do; and Commander, bound by the Role nspool applies, may do in
//! a pool namespace what the seed's Role lists and nothing outside it.
//! (That nspool's account is enough for its whole job is shown by every test
//! in `kube_cluster.rs`, which run as that account.)

use crate::cluster::{Account, Cluster, PLATFORM, kubectl};
use crate::support::TestApp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use sqlx::PgPool;

/// The API server's answer code to a request: 200-ish, or its refusal.
fn code<T>(result: Result<T, kube::Error>) -> u16 {
    match result {
        Ok(_) => 200,
        Err(kube::Error::Api(status)) => status.code,
        Err(other) => panic!("not an API answer: {other}"),
    }
}

fn create_config(names: &[String]) -> String {
    format!(
        "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{create: true, names: [{}]}}}}}}}}\n",
        names.join(", ")
    )
}

#[sqlx::test]
async fn nspool_is_refused_what_it_must_never_do(db: PgPool) {
    let cluster = Cluster::connect().await;
    let pool = cluster.ns("team-a");
    let outside = cluster.ns("outside");
    let app = TestApp::spawn_in_cluster(&create_config(std::slice::from_ref(&pool)), db).await;
    let report = cluster.pass(&app.service, Account::Create).await;
    assert_eq!(report.applied, 1, "{report:?}");
    cluster.create_namespace(&outside);
    cluster.apply(&json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": pool}, "stringData": {"password": "p"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": outside}, "stringData": {"password": "p"}},
    ]}));

    for account in [
        Account::Create,
        Account::Verify,
        Account::VerifyWithClaimLabels,
    ] {
        let client = cluster.client_as(account).await;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        // Never delete a namespace, in the pool or out of it.
        for ns in [&pool, &outside] {
            assert_eq!(
                code(namespaces.delete(ns, &DeleteParams::default()).await),
                403,
                "{account:?} delete {ns}"
            );
        }
        // Never read a Secret by name, anywhere, nor list them outside the pool.
        for ns in [pool.as_str(), outside.as_str(), "kube-system"] {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
            assert_eq!(
                code(secrets.get("db").await),
                403,
                "{account:?} get secret in {ns}"
            );
        }
        for ns in [outside.as_str(), "kube-system", PLATFORM] {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
            assert_eq!(
                code(secrets.list(&ListParams::default()).await),
                403,
                "{account:?} list secrets in {ns}"
            );
            let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
            assert_eq!(
                code(pods.list(&ListParams::default()).await),
                403,
                "{account:?} list pods in {ns}"
            );
            let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
            let map = ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some("x".into()),
                    ..Default::default()
                },
                ..Default::default()
            };
            assert_eq!(
                code(maps.create(&PostParams::default(), &map).await),
                403,
                "{account:?} create in {ns}"
            );
        }
        // Nothing cluster-wide beyond its own rules.
        let roles: Api<ClusterRole> = Api::all(client.clone());
        assert_eq!(
            code(roles.list(&ListParams::default()).await),
            403,
            "{account:?} list clusterroles"
        );
        let accounts: Api<ServiceAccount> = Api::all(client.clone());
        assert_eq!(
            code(accounts.list(&ListParams::default()).await),
            403,
            "{account:?} list serviceaccounts"
        );
        // Events only in pool namespaces (its RoleBinding there).
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(client.clone(), &outside);
        let event = k8s_openapi::api::events::v1::Event {
            metadata: kube::api::ObjectMeta {
                name: Some("x".into()),
                ..Default::default()
            },
            event_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                k8s_openapi::jiff::Timestamp::now(),
            )),
            reporting_controller: Some("nspool.astronomer.io/nspool".into()),
            reporting_instance: Some("nspool-0".into()),
            action: Some("Claim".into()),
            reason: Some("Claimed".into()),
            type_: Some("Normal".into()),
            ..Default::default()
        };
        assert_eq!(
            code(events.create(&PostParams::default(), &event).await),
            403,
            "{account:?} event outside"
        );
    }

    // The verify accounts write nothing at all; only the claim-labels one
    // may label (patch) namespaces.
    let verify = cluster.client_as(Account::Verify).await;
    let namespaces: Api<Namespace> = Api::all(verify);
    let patch = Patch::Apply(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": pool, "labels": {"x": "y"}}}),
    );
    assert_eq!(
        code(
            namespaces
                .patch(&pool, &PatchParams::apply("probe"), &patch)
                .await
        ),
        403
    );
    let roles: Api<Role> = Api::namespaced(cluster.client_as(Account::Verify).await, &pool);
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "deployment-commander-role", "namespace": pool}, "rules": []});
    assert_eq!(
        code(
            roles
                .patch(
                    "deployment-commander-role",
                    &PatchParams::apply("probe"),
                    &Patch::Apply(role)
                )
                .await
        ),
        403
    );

    // In create mode nspool may create Roles anywhere (Kubernetes cannot
    // limit create by name), but one that grants what nspool lacks only under
    // the Commander Role's name: `escalate` is limited to it.
    let create = cluster.client_as(Account::Create).await;
    let roles: Api<Role> = Api::namespaced(create.clone(), &pool);
    let role = |name: &str| -> Role {
        serde_json::from_value(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": pool},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        )
        .unwrap()
    };
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    assert_eq!(code(roles.create(&dry_run, &role("backdoor")).await), 403);
    // What the shipped create-mode RBAC does allow outside the pool, as
    // docs/operations.md says (dry runs: nothing is changed): labelling any
    // Namespace, and writing the Commander Role under its own name anywhere.
    let namespaces: Api<Namespace> = Api::all(create.clone());
    let label = Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": outside, "labels": {"probe": "x"}}}));
    let params = PatchParams::apply("probe").dry_run();
    assert_eq!(code(namespaces.patch(&outside, &params, &label).await), 200);
    // (By server-side apply, as nspool writes it: the name is in the
    // request, so `escalate` on that name applies; a plain create has none.)
    for ns in [outside.as_str(), "kube-system"] {
        let elsewhere: Api<Role> = Api::namespaced(create.clone(), ns);
        let mut commander_role = role("deployment-commander-role");
        commander_role.metadata.namespace = Some(ns.to_owned());
        let patch = Patch::Apply(&commander_role);
        let answer = elsewhere
            .patch("deployment-commander-role", &params, &patch)
            .await;
        assert_eq!(code(answer), 200, "the Commander Role in {ns}");
        assert_eq!(code(elsewhere.create(&dry_run, &commander_role).await), 403);
    }
    cluster.assert_never_deleted();
}

/// The seed's promise: Commander, bound by the Role nspool applied, may do in
/// a pool namespace what that Role lists, and nothing outside the pool or at
/// cluster scope.
#[sqlx::test]
async fn commander_may_do_its_job_in_a_pool_namespace_and_nothing_outside(db: PgPool) {
    let cluster = Cluster::connect().await;
    let pool = cluster.ns("team-a");
    let outside = cluster.ns("outside");
    let app = TestApp::spawn_in_cluster(&create_config(std::slice::from_ref(&pool)), db).await;
    let report = cluster.pass(&app.service, Account::Create).await;
    assert_eq!(report.applied, 1, "{report:?}");
    cluster.create_namespace(&outside);
    let user = format!("system:serviceaccount:{PLATFORM}:astronomer-commander");
    let groups = [
        "system:serviceaccounts",
        "system:serviceaccounts:astronomer",
        "system:authenticated",
    ];
    let commander = cluster.impersonating(&user, &groups);

    let account = |ns: &str| ServiceAccount {
        metadata: kube::api::ObjectMeta {
            name: Some("airflow-worker".into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let secret = |ns: &str| Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("airflow-fernet-key".into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        string_data: Some([("key".to_owned(), "v".to_owned())].into()),
        ..Default::default()
    };
    let deployment = |ns: &str| -> Deployment {
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "airflow-scheduler", "namespace": ns},
            "spec": {"selector": {"matchLabels": {"c": "s"}}, "template": {"metadata": {"labels": {"c": "s"}},
                "spec": {"serviceAccountName": "airflow-worker", "containers": [{"name": "s", "image": "airflow"}]}}}}))
        .unwrap()
    };
    let post = PostParams::default();
    for (ns, allowed) in [
        (pool.as_str(), true),
        (outside.as_str(), false),
        ("kube-system", false),
        (PLATFORM, false),
    ] {
        let want = if allowed { 200 } else { 403 };
        let accounts: Api<ServiceAccount> = Api::namespaced(commander.clone(), ns);
        assert_eq!(
            code(accounts.create(&post, &account(ns)).await),
            want,
            "serviceaccount in {ns}"
        );
        let secrets: Api<Secret> = Api::namespaced(commander.clone(), ns);
        assert_eq!(
            code(secrets.create(&post, &secret(ns)).await),
            want,
            "secret in {ns}"
        );
        let deployments: Api<Deployment> = Api::namespaced(commander.clone(), ns);
        assert_eq!(
            code(deployments.create(&post, &deployment(ns)).await),
            want,
            "deployment in {ns}"
        );
    }
    // Nothing at cluster scope.
    let namespaces: Api<Namespace> = Api::all(commander.clone());
    assert_eq!(code(namespaces.list(&ListParams::default()).await), 403);
    let fresh = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(cluster.ns("commander-made")),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(code(namespaces.create(&post, &fresh).await), 403);
    let roles: Api<ClusterRole> = Api::all(commander.clone());
    assert_eq!(code(roles.list(&ListParams::default()).await), 403);
    let secrets: Api<Secret> = Api::all(commander);
    assert_eq!(code(secrets.list(&ListParams::default()).await), 403);

    // What `kubectl auth can-i --list` shows, as a person would check it.
    let as_commander = |ns: &str| {
        let mut args = vec!["auth", "can-i", "--list", "-n", ns, "--as", user.as_str()];
        for group in &groups {
            args.extend(["--as-group", group]);
        }
        kubectl(&args, None)
    };
    let inside = as_commander(&pool);
    for resource in [
        "deployments.apps",
        "secrets",
        "serviceaccounts",
        "rolebindings.rbac.authorization.k8s.io",
    ] {
        assert!(
            inside
                .lines()
                .any(|l| l.starts_with(&format!("{resource} "))),
            "{resource} in:\n{inside}"
        );
    }
    let elsewhere = as_commander(&outside);
    for resource in ["deployments.apps", "secrets", "serviceaccounts"] {
        assert!(
            !elsewhere
                .lines()
                .any(|l| l.starts_with(&format!("{resource} "))),
            "{resource} outside the pool:\n{elsewhere}"
        );
    }
}
