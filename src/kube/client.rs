//! Talking to the Kubernetes API: server-side apply for every write, reads,
//! SubjectAccessReviews, discovery. One client, bounded in-flight requests,
//! a timeout on each call. Never a DELETE, never an ownerReference.

use super::objects::{self, CLAIMS_FIELD_MANAGER, FIELD_MANAGER, RbacTarget};
use crate::config::KubernetesMode;
use crate::domain::commander_rules::Triple;
use crate::domain::hygiene::{
    IgnoredObject, LeftoverKind, MAX_NAMED_LEFTOVERS, SERVICE_ACCOUNT_NAME_ANNOTATION,
    SERVICE_ACCOUNT_TOKEN, is_leftover,
};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, Service,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Requests in flight at once, over all namespaces.
pub const MAX_IN_FLIGHT: usize = 16;
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes answered {code} {reason}: {message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("cannot reach the Kubernetes API: {0}")]
    Transport(String),
    #[error("the Kubernetes API did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("no Kubernetes configuration: {0}")]
    NoConfig(String),
    /// An apply reached a namespace being deleted: it is not ready, and it
    /// is applied anew once the namespace controller has removed it.
    #[error("namespace {0} is being deleted; it is applied again once it is gone")]
    Terminating(String),
    /// Not sent: this replica lost the Kubernetes lease before the call.
    #[error("this replica no longer holds the Kubernetes lease")]
    LeaseLost,
}

/// A call's outcome as a metric label.
fn outcome<T>(result: &Result<T>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(Error::Api { code: 403, .. }) => "forbidden",
        Err(Error::Api { code: 404, .. }) => "not_found",
        Err(Error::Api { code: 409, .. }) => "conflict",
        Err(Error::Api { code, .. }) if *code >= 500 => "server_error",
        Err(Error::Timeout(_)) => "timeout",
        Err(_) => "other",
    }
}

impl From<kube::Error> for Error {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => Error::Api {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            other => Error::Transport(other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct KubeClient {
    client: kube::Client,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    call_timeout: Duration,
    metrics: Arc<crate::metrics::ServiceMetrics>,
    /// The cluster's name, for the metrics' `cluster` label (empty: a client
    /// of no configured cluster, as the tests make).
    cluster: Arc<str>,
}

impl KubeClient {
    /// By mode: `auto` uses in-cluster config or a kubeconfig when there is
    /// one, else none (with one warning); `cluster` insists; `off` never connects.
    pub async fn connect(mode: KubernetesMode) -> Result<Option<Self>> {
        if mode == KubernetesMode::Off {
            return Ok(None);
        }
        let config = match kube::Config::infer().await {
            Ok(config) => config,
            Err(error) if mode == KubernetesMode::Auto => {
                // One short line; the whole chain of causes at DEBUG.
                tracing::warn!(
                    "Kubernetes work is off: no in-cluster configuration and no kubeconfig (the pool still works; `nspool rbac render` prints the manifests)"
                );
                tracing::debug!(error = ?error, "Kubernetes configuration");
                return Ok(None);
            }
            Err(error) => return Err(Error::NoConfig(error.to_string())),
        };
        Self::from_config(config, MAX_IN_FLIGHT).map(Some)
    }

    /// The client of one cluster: its kubeconfig and context when the config
    /// names one (`nspool.clusters[].kubeconfig`), else as [`Self::connect`].
    /// A named kubeconfig that cannot be used is an error in any mode but
    /// `off`: the operator asked for that cluster.
    pub async fn connect_cluster(
        mode: KubernetesMode,
        cluster: &crate::config::ClusterSettings,
    ) -> Result<Option<Self>> {
        if mode == KubernetesMode::Off {
            return Ok(None);
        }
        let Some(path) = &cluster.kubeconfig else {
            return Self::connect(mode).await;
        };
        let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| {
            Error::NoConfig(format!(
                "{}: cannot read {}: {e}",
                cluster.key_of("kubeconfig"),
                path.display()
            ))
        })?;
        let options = kube::config::KubeConfigOptions {
            context: cluster.context.clone(),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| {
                Error::NoConfig(format!(
                    "{}: {}: {e}",
                    cluster.key_of("kubeconfig"),
                    path.display()
                ))
            })?;
        Self::from_config(config, MAX_IN_FLIGHT).map(Some)
    }

    /// Whether the API server answers (`GET /version`, within the call
    /// timeout): the cluster's reachability as the dashboard and metrics show it.
    pub async fn reachable(&self) -> Result<()> {
        self.call("version", self.client.apiserver_version())
            .await
            .map(|_| ())
    }

    /// [`Self::reachable`] within `within` (shorter than a call's own
    /// timeout: a reachability check must say soon), counted as a call.
    pub async fn reachable_within(&self, within: Duration) -> Result<()> {
        // The call's own timeout starts once it has a slot; this one also
        // bounds the wait for a slot. Whichever ends it, it is counted once.
        match tokio::time::timeout(within, self.reachable()).await {
            Ok(result) => result,
            Err(_) => {
                self.metrics.kube_call(&self.cluster, "version", "timeout");
                Err(Error::Timeout(within))
            }
        }
    }

    /// A client of the API server at `url` (tests: the fake API server).
    pub fn for_url(url: &str, max_in_flight: usize) -> Result<Self> {
        let uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| Error::NoConfig(e.to_string()))?;
        Self::from_config(kube::Config::new(uri), max_in_flight)
    }

    /// A client from a kube config of the caller's making (tests: a token of nspool's
    /// own ServiceAccount on a real API server).
    pub fn from_config(config: kube::Config, max_in_flight: usize) -> Result<Self> {
        let client = kube::Client::try_from(config).map_err(|e| Error::NoConfig(e.to_string()))?;
        Ok(Self {
            client,
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            max_in_flight: max_in_flight.max(1),
            call_timeout: CALL_TIMEOUT,
            metrics: Arc::default(),
            cluster: Arc::from(""),
        })
    }

    /// How long one API call may take (default 15 s).
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Counts this client's calls in `metrics` (the pool service's).
    /// Counts this client's calls as `cluster`'s.
    pub fn for_cluster_named(mut self, cluster: &str) -> Self {
        self.cluster = Arc::from(cluster);
        self
    }

    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::ServiceMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The client itself, for long-running watches (outside the in-flight
    /// bound and the call timeout, which are for single calls).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// One API call: waits for a slot, then at most the call timeout; counted
    /// by `name` and outcome.
    async fn call<T>(
        &self,
        name: &'static str,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T> {
        let timeout = self.call_timeout;
        let _slot = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| Error::Timeout(timeout))?;
        let result = match tokio::time::timeout(timeout, request).await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::Timeout(timeout)),
        };
        self.metrics
            .kube_call(&self.cluster, name, outcome(&result));
        result
    }

    /// The Namespace, unless `create_rbac` is false its Role and RoleBinding,
    /// and nspool's own leftovers RoleBinding when asked, applied under field
    /// manager `nspool`.
    pub async fn apply_rbac(
        &self,
        namespace: &str,
        target: &RbacTarget,
        objects: &objects::NamespaceObjects,
    ) -> Result<()> {
        let (create_rbac, pool_labels) = (objects.create_rbac, &objects.pool_labels);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let stored = self
            .call(
                "apply",
                namespaces.patch(
                    namespace,
                    &params,
                    &Patch::Apply(objects::namespace(namespace, true, pool_labels)),
                ),
            )
            .await?;
        if stored.metadata.deletion_timestamp.is_some() {
            // Patches of what is still there would pass: never ready.
            return Err(Error::Terminating(namespace.to_owned()));
        }
        if create_rbac {
            let roles: Api<Role> = Api::namespaced(self.client.clone(), namespace);
            let role = objects::role(namespace, target, true);
            self.call(
                "apply",
                roles.patch(objects::ROLE_NAME, &params, &Patch::Apply(role)),
            )
            .await?;
            let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), namespace);
            let binding = objects::role_binding(namespace, target, true);
            self.call(
                "apply",
                bindings.patch(objects::ROLE_BINDING_NAME, &params, &Patch::Apply(binding)),
            )
            .await?;
        }
        if let Some(writer) = &objects.events_writer {
            let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), namespace);
            let binding = objects::events_binding(namespace, writer);
            self.call(
                "apply",
                bindings.patch(
                    objects::EVENTS_BINDING_NAME,
                    &params,
                    &Patch::Apply(binding),
                ),
            )
            .await?;
        }
        if let Some(reader) = &objects.leftovers_reader {
            let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), namespace);
            let binding = objects::leftovers_binding(namespace, reader);
            self.call(
                "apply",
                bindings.patch(
                    objects::LEFTOVERS_BINDING_NAME,
                    &params,
                    &Patch::Apply(binding),
                ),
            )
            .await?;
        }
        Ok(())
    }

    /// Posts an Event (events.k8s.io/v1) in its namespace. Its name is made
    /// from nspool's event, so a second post of the same one is a 409, taken
    /// as posted.
    pub async fn post_event(&self, event: &k8s_openapi::api::events::v1::Event) -> Result<()> {
        let namespace = event.metadata.namespace.as_deref().unwrap_or_default();
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), namespace);
        match self
            .call("post_event", events.create(&PostParams::default(), event))
            .await
        {
            Ok(_) | Err(Error::Api { code: 409, .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The namespace's labels; `None` when there is no such namespace.
    pub async fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Result<Option<BTreeMap<String, String>>> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        Ok(self
            .call("get_namespace", namespaces.get_opt(namespace))
            .await?
            .map(|ns| ns.metadata.labels.unwrap_or_default()))
    }

    /// What is left in a released namespace that a Deployment could have left
    /// (`Kind/name`, at most [`MAX_NAMED_LEFTOVERS`]), but for `ignored`: one
    /// `list` per kind, the kinds side by side, of metadata only (nspool
    /// never receives a Secret's data, nor any object's spec). Reads only.
    pub async fn leftovers(
        &self,
        namespace: &str,
        ignored: &[IgnoredObject],
    ) -> Result<Vec<String>> {
        let ns = namespace;
        let (pods, claims, services, secrets, config_maps) = futures::try_join!(
            self.names::<Pod>(ns, LeftoverKind::Pod, ignored),
            self.names::<PersistentVolumeClaim>(ns, LeftoverKind::PersistentVolumeClaim, ignored),
            self.names::<Service>(ns, LeftoverKind::Service, ignored),
            self.names::<Secret>(ns, LeftoverKind::Secret, ignored),
            self.names::<ConfigMap>(ns, LeftoverKind::ConfigMap, ignored),
        )?;
        let mut found: Vec<String> = [pods, claims, services, secrets, config_maps].concat();
        found.truncate(MAX_NAMED_LEFTOVERS);
        Ok(found)
    }

    /// The leftovers of one kind, from a metadata-only list. A
    /// service-account token Secret (the cluster's, never a leftover) is
    /// told apart by the annotation every such Secret carries (its type is
    /// not in the metadata).
    async fn names<K>(
        &self,
        namespace: &str,
        kind: LeftoverKind,
        ignored: &[IgnoredObject],
    ) -> Result<Vec<String>>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let params = ListParams::default().limit(MAX_NAMED_LEFTOVERS as u32 + 1);
        let list = self
            .call("list_leftovers", api.list_metadata(&params))
            .await?;
        Ok(list
            .items
            .iter()
            .filter_map(|item| {
                let meta = &item.metadata;
                let name = meta.name.clone().unwrap_or_default();
                let token = meta
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(SERVICE_ACCOUNT_NAME_ANNOTATION));
                let secret_type = token.then_some(SERVICE_ACCOUNT_TOKEN);
                is_leftover(kind, &name, secret_type, ignored).then(|| kind.describe(&name))
            })
            .collect())
    }

    /// The claim labels under field manager `nspool-claims`: the holder's, or
    /// none (which removes the ones this manager wrote). Only onto the
    /// namespace that is there now (its uid rides on the apply): a namespace
    /// that is gone is a 404 here and is never created by a label write.
    pub async fn apply_claim_labels(
        &self,
        namespace: &str,
        holder: Option<(&str, &str)>,
        pool_labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let live = self
            .call("get_namespace", namespaces.get_opt(namespace))
            .await?;
        let Some(uid) = live.and_then(|ns| ns.metadata.uid) else {
            return Err(Error::Api {
                code: 404,
                reason: "NotFound".into(),
                message: format!("namespace {namespace} does not exist; claim labels not written"),
            });
        };
        let params = PatchParams::apply(CLAIMS_FIELD_MANAGER).force();
        let patch = Patch::Apply(objects::claim_labels(namespace, &uid, holder, pool_labels));
        self.call("claim_labels", namespaces.patch(namespace, &params, &patch))
            .await?;
        Ok(())
    }

    /// May `user` (in `groups`) do `triple` in `namespace` (`None`: cluster scope)?
    pub async fn can(
        &self,
        user: &str,
        groups: &[String],
        namespace: Option<&str>,
        triple: &Triple,
    ) -> Result<bool> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.to_owned()),
                groups: Some(groups.to_vec()),
                resource_attributes: Some(ResourceAttributes {
                    namespace: namespace.map(str::to_owned),
                    group: Some(triple.group.clone()),
                    resource: Some(triple.resource.clone()),
                    verb: Some(triple.verb.clone()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let reviews: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = self
            .call(
                "access_review",
                reviews.create(&PostParams::default(), &review),
            )
            .await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }

    /// The API groups the cluster serves (`""`, the core group, always).
    pub async fn served_groups(&self) -> Result<HashSet<String>> {
        let list = self
            .call("discovery", self.client.list_api_groups())
            .await?;
        let mut groups: HashSet<String> = list.groups.into_iter().map(|g| g.name).collect();
        groups.insert(String::new());
        Ok(groups)
    }
}

#[cfg(test)]
mod outcome_tests {
    use super::*;

    /// `Metrics::forget_cluster` removes the outcomes it knows: every one a
    /// call can be counted under must be among them.
    #[test]
    fn every_outcome_is_one_the_metrics_forget() {
        let api = |code| Error::Api {
            code,
            reason: String::new(),
            message: String::new(),
        };
        let results: Vec<Result<()>> = vec![
            Ok(()),
            Err(api(403)),
            Err(api(404)),
            Err(api(409)),
            Err(api(503)),
            Err(api(400)),
            Err(Error::Timeout(Duration::from_secs(1))),
            Err(Error::Transport(String::new())),
            Err(Error::LeaseLost),
        ];
        for result in &results {
            assert!(
                crate::metrics::KUBE_CALL_OUTCOMES.contains(&outcome(result)),
                "{}",
                outcome(result)
            );
        }
    }
}
