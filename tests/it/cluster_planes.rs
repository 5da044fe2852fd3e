//! The control planes the Kubernetes tests have (`cluster.rs`): two shared
//! ones that are two clusters, and one a test owns and takes down.

use crate::cluster::{Account, Cluster, OwnedPlane, PLATFORM};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use std::time::{Duration, Instant};

/// How long a request to a hanging API server may wait for its answer.
const QUICK: Duration = Duration::from_secs(1);
/// Far longer than [`QUICK`]: a request still waiting then hangs for good.
const HANGS: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_two_shared_planes_are_two_clusters() {
    let (first, second) = Cluster::connect_both().await;
    assert_ne!(first.kubeconfig(), second.kubeconfig());
    let ns = first.ns("planes");
    assert_eq!(
        ns,
        second.ns("planes"),
        "one suffix names one namespace in both"
    );

    first.create_namespace(&ns);
    assert!(first.object("Namespace", "", &ns).await.is_some());
    assert!(
        second.object("Namespace", "", &ns).await.is_none(),
        "a namespace made in the first cluster is in the second"
    );
    let listed = second.kubectl(
        &["get", "namespace", &ns, "--ignore-not-found", "-o", "name"],
        None,
    );
    assert_eq!(listed.trim(), "", "kubectl on the second sees the first");

    // Each plane audits its own requests only.
    assert!(
        first
            .audit()
            .iter()
            .any(|e| e.writes() && e.resource == "namespaces" && e.name == ns)
    );
    let written: Vec<_> = second.audit().into_iter().filter(|e| e.writes()).collect();
    assert!(written.is_empty(), "the second audits: {written:#?}");
    assert_ne!(
        first.kubeconfig_as(Account::Create).await,
        second.kubeconfig_as(Account::Create).await,
        "one file per cluster, though the suffix is the same"
    );

    // The second has the shipped RBAC too: nspool's account reads there.
    let other = Cluster::connect_second().await;
    assert_eq!(other.kubeconfig(), second.kubeconfig());
    let theirs = other.ns("planes-second");
    other.create_namespace(&theirs);
    let namespaces: Api<Namespace> = Api::all(other.client_as(Account::Create).await);
    namespaces
        .get(&theirs)
        .await
        .expect("nspool's account reads namespaces in the second cluster");
    assert!(first.object("Namespace", "", &theirs).await.is_none());
    assert!(
        other
            .object("ServiceAccount", PLATFORM, "nspool-verify")
            .await
            .is_some()
    );
}

#[tokio::test]
async fn an_owned_plane_goes_down_and_comes_back() {
    let started = Instant::now();
    let (mut plane, cluster) = OwnedPlane::start().await;
    eprintln!(
        "an owned control plane was ready (shipped RBAC installed) in {:.1?}",
        started.elapsed()
    );
    let shared = Cluster::connect().await;
    assert_ne!(cluster.kubeconfig(), shared.kubeconfig());
    assert_eq!(
        cluster
            .admin_config()
            .cluster_url
            .to_string()
            .trim_end_matches('/'),
        plane.server()
    );
    let ns = cluster.ns("owned");
    cluster.create_namespace(&ns);
    assert!(shared.object("Namespace", "", &ns).await.is_none());

    // The requests meant to fail have short timeouts (connecting, TLS
    // included, and reading); those meant to succeed none, as a busy
    // machine may be slow to answer.
    let mut config = cluster.admin_config();
    config.connect_timeout = Some(QUICK);
    config.read_timeout = Some(QUICK);
    config.write_timeout = Some(QUICK);
    let quick: Api<Namespace> =
        Api::all(kube::Client::try_from(config).expect("a client with short timeouts"));
    let namespaces: Api<Namespace> = Api::all(cluster.admin.clone());
    quick.get(&ns).await.expect("the owned plane serves");
    let token = cluster.token(Account::Create).await;

    // Paused: the connection is accepted, the answer never comes.
    plane.pause();
    let asked = Instant::now();
    let answer = tokio::time::timeout(HANGS, quick.get(&ns))
        .await
        .expect("the client's own timeout ends a request to a paused plane");
    assert!(answer.is_err(), "a paused plane answered: {answer:?}");
    eprintln!(
        "a request to the paused plane failed after {:.1?}",
        asked.elapsed()
    );
    assert!(
        shared.object("Namespace", "", "default").await.is_some(),
        "the shared plane serves while the owned one hangs"
    );
    plane.resume();
    namespaces
        .get(&ns)
        .await
        .expect("the owned plane serves again once resumed");

    // Stopped: nothing listens on its address.
    plane.stop().await;
    let answer = tokio::time::timeout(HANGS, quick.get(&ns))
        .await
        .expect("a request to a stopped plane fails at once");
    assert!(answer.is_err(), "a stopped plane answered: {answer:?}");
    let another = plane.connect().await;
    assert_eq!(another.kubeconfig(), cluster.kubeconfig());

    let restarting = Instant::now();
    plane.restart().await;
    eprintln!("the owned plane restarted in {:.1?}", restarting.elapsed());
    namespaces
        .get(&ns)
        .await
        .expect("the restarted plane has the same address, certificates and objects");
    let nspool: Api<Namespace> =
        Api::all(kube::Client::try_from(cluster.config_with_token(token)).expect("a client"));
    nspool
        .get(&ns)
        .await
        .expect("a token from before the restart still works");
    another.kubectl(&["get", "namespace", &ns], None);
}
