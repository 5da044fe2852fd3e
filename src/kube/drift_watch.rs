//! The drift watch: in create mode the leader watches what nspool applied
//! in the pool namespaces (the Namespaces, the Commander Role and
//! RoleBinding, nspool's own RoleBindings), as controllers do, and a
//! namespace whose object is deleted or edited out of band is taken off the
//! offer and applied again by the next pass, with a `drift` event (posted to
//! the namespace as a Kubernetes Event).
//!
//! One watch per kind, cluster-wide: Namespaces by nspool's
//! `managed-by` label, the RBAC objects by their one name (a
//! `metadata.name` field selector, so nspool's ClusterRole grants list and
//! watch by `resourceNames` and sees no other Role). A broken watch lists
//! again after a backoff that doubles from 0.8 s to at most 30 s and starts
//! over only once a list succeeded (kube's own backoff starts over at every
//! list attempt, so an API server that refuses connections was tried every
//! second); what went missing while it did not watch is found by comparing
//! the fresh list with what the database says was applied.

use super::drift::{Change, Desired, SeenClaim, Watched};
use super::objects::{MANAGED_BY_KEY, MANAGED_BY_VALUE};
use crate::metrics::ServiceMetrics;
use crate::pool::PoolService;
use crate::store::{DriftFound, Store};
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::runtime::watcher::{self, Event};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Names per query when a fresh list is compared with the database.
const UNSEEN_BATCH: i64 = 1000;
/// Claim labels seen in a fresh list, compared with the database per query.
const CLAIMS_BATCH: usize = 1000;
/// What the drift event and log say of claim labels lost.
const CLAIM_LABELS_LOST: &str = "Namespace claim labels removed or edited";
/// Objects per page of a fresh list (the API server's default is unbounded).
const LIST_PAGE: u32 = 500;

/// What one watch saw, in the terms of drift.
enum Seen {
    /// A fresh list of this kind begins.
    Listing(Watched),
    /// An object of this kind in namespace `.1`, and how it differs; a
    /// Namespace also with the claim labels it carries.
    Object(Watched, String, Option<Change>, Option<SeenClaim>),
    /// The fresh list of this kind is complete.
    Listed(Watched),
    /// The watch failed; it lists again after a backoff.
    Failed(Watched, String),
}

pub struct DriftWatch {
    client: kube::Client,
    /// The cluster watched (its pool rows are the ones compared).
    cluster: uuid::Uuid,
    /// Its name, for the metrics' `cluster` label.
    cluster_name: String,
    store: Store,
    service: PoolService,
    desired: Arc<Desired>,
    /// What the worker applies now: only rows applied with it can drift.
    fingerprint: String,
    wake: Arc<crate::pool::kube_wake::KubeWake>,
    metrics: Arc<ServiceMetrics>,
}

/// Namespaces one fresh list remembers at most (two and a half times the
/// documented pool of 100,000: the watch also lists nspool-labelled
/// namespaces outside this pool). Past it the list's comparison with the
/// database is skipped (logged): changes while nobody watched then wait
/// for the next fresh list; what the watch sees from then on is unaffected.
const MAX_LISTED: usize = 250_000;

/// One fresh list in progress: when it began (the database's clock) and
/// the namespaces it has shown (`None` once past `cap`), and the claim
/// labels seen and not yet compared (at most [`CLAIMS_BATCH`]).
struct Listing {
    began: Option<DateTime<Utc>>,
    seen: Option<Vec<String>>,
    cap: usize,
    claims: Vec<SeenClaim>,
}

impl Listing {
    fn new(began: Option<DateTime<Utc>>, cap: usize) -> Self {
        Self {
            began,
            seen: Some(Vec::new()),
            cap,
            claims: Vec::new(),
        }
    }

    fn saw(&mut self, namespace: &str) {
        if let Some(seen) = &mut self.seen {
            if seen.len() >= self.cap {
                self.seen = None;
            } else {
                seen.push(namespace.to_owned());
            }
        }
    }
}

impl DriftWatch {
    pub fn new(
        client: kube::Client,
        (cluster, cluster_name): (uuid::Uuid, String),
        service: &PoolService,
        desired: Desired,
        fingerprint: String,
    ) -> Self {
        Self {
            client,
            cluster,
            cluster_name,
            store: service.store().clone(),
            service: service.clone(),
            desired: Arc::new(desired),
            fingerprint,
            wake: service.kube_wake(),
            metrics: service.metrics(),
        }
    }

    /// Watches until dropped (the worker aborts it when it loses the lease
    /// or the config changes what is applied).
    pub async fn run(self) {
        let kinds = Watched::applied(&self.desired.objects);
        let mut all = futures::stream::select_all(kinds.iter().map(|kind| self.stream(*kind)));
        let mut listings: HashMap<Watched, Listing> = HashMap::new();
        let mut synced: HashSet<Watched> = HashSet::new();
        self.metrics
            .set_drift_watch_synced(&self.cluster_name, false);
        while let Some(seen) = all.next().await {
            match seen {
                Seen::Listing(kind) => {
                    synced.remove(&kind);
                    self.metrics
                        .set_drift_watch_synced(&self.cluster_name, false);
                    let began = self.store.database_now().await.ok();
                    listings.insert(kind, Listing::new(began, MAX_LISTED));
                }
                Seen::Object(kind, namespace, change, claim) => {
                    let listing = listings.get_mut(&kind);
                    let claim = claim.filter(|_| self.desired.claim_labels);
                    match (listing, claim) {
                        (Some(listing), Some(claim)) => {
                            listing.saw(&namespace);
                            listing.claims.push(claim);
                            if listing.claims.len() >= CLAIMS_BATCH {
                                let claims = std::mem::take(&mut listing.claims);
                                self.claims(claims).await;
                            }
                        }
                        (Some(listing), None) => listing.saw(&namespace),
                        (None, Some(claim)) => self.claims(vec![claim]).await,
                        (None, None) => {}
                    }
                    if let Some(change) = change {
                        self.drifted(kind, change, &[namespace], None).await;
                    }
                }
                Seen::Listed(kind) => {
                    if let Some(mut listing) = listings.remove(&kind) {
                        self.claims(std::mem::take(&mut listing.claims)).await;
                        self.unseen(kind, listing).await;
                    }
                    synced.insert(kind);
                    self.metrics
                        .set_drift_watch_synced(&self.cluster_name, synced.len() == kinds.len());
                }
                Seen::Failed(kind, error) => {
                    tracing::warn!(object = kind.describe(), %error, "the drift watch failed; it lists again");
                    synced.remove(&kind);
                    self.metrics
                        .set_drift_watch_synced(&self.cluster_name, false);
                }
            }
        }
    }

    /// What was applied before the fresh list began and is not in it: gone
    /// while nobody watched.
    async fn unseen(&self, kind: Watched, listing: Listing) {
        let Some(began) = listing.began else {
            return;
        };
        let Some(seen) = listing.seen else {
            tracing::warn!(
                object = kind.describe(),
                "the drift watch listed more than {MAX_LISTED} objects: what changed while nobody watched is found at the next fresh list"
            );
            return;
        };
        loop {
            let names = match self
                .store
                .applied_but_unseen(self.cluster, &self.fingerprint, began, &seen, UNSEEN_BATCH)
                .await
            {
                Ok(names) => names,
                Err(error) => {
                    tracing::warn!(%error, "could not compare the drift watch's list with the pool");
                    return;
                }
            };
            if names.is_empty() {
                return;
            }
            // Each batch marked leaves the applied rows, so the next query moves on.
            if self
                .drifted(kind, Change::Deleted, &names, Some(began))
                .await
                == 0
            {
                return;
            }
        }
    }

    /// Claim labels seen that no longer name the holder they were written
    /// for are written again. Each suspect is read again first (one GET at
    /// a time): a watch event or a list page may predate the labels' write.
    async fn claims(&self, seen: Vec<SeenClaim>) {
        if seen.is_empty() {
            return;
        }
        let mut names = Vec::with_capacity(seen.len());
        let mut ids = Vec::with_capacity(seen.len());
        let mut releases = Vec::with_capacity(seen.len());
        for claim in seen {
            names.push(claim.namespace);
            ids.push(claim.deployment_id);
            releases.push(claim.release);
        }
        let suspects = match self
            .store
            .claim_labels_differ(self.cluster, &names, &ids, &releases)
            .await
        {
            Ok(suspects) => suspects,
            Err(error) => {
                // The next event of that Namespace (or the next list) compares again.
                tracing::warn!(%error, "could not compare claim labels with the pool");
                return;
            }
        };
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut marked = 0u64;
        for name in suspects {
            let fresh = match api.get_opt(&name).await {
                Ok(Some(namespace)) => SeenClaim::of(&namespace),
                // Gone: the Namespace watch reports that.
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(namespace = %name, %error, "could not read a namespace whose claim labels looked changed");
                    continue;
                }
            };
            let seen = (fresh.deployment_id.as_deref(), fresh.release.as_deref());
            match self
                .store
                .record_claim_labels_lost(self.cluster, &name, seen, CLAIM_LABELS_LOST)
                .await
            {
                Ok(true) => {
                    marked += 1;
                    if marked <= 10 {
                        tracing::warn!(namespace = %name, "drift: {CLAIM_LABELS_LOST}; writing them again");
                    }
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(namespace = %name, %error, "could not record claim labels lost");
                }
            }
        }
        if marked > 0 {
            self.metrics
                .kube_drift(&self.cluster_name, "Namespace", "claim-labels", marked);
            self.wake.wake_workers();
        }
    }

    /// Records the drift; returns how many namespaces it took off the offer.
    async fn drifted(
        &self,
        kind: Watched,
        change: Change,
        names: &[String],
        applied_before: Option<DateTime<Utc>>,
    ) -> usize {
        let what = format!("{} {}", kind.describe(), change.as_str());
        let found = DriftFound {
            cluster: self.cluster,
            names,
            fingerprint: &self.fingerprint,
            applied_before,
            namespace_gone: kind == Watched::Namespace && change == Change::Deleted,
            what: &what,
        };
        let marked = match self.store.record_drift(&found).await {
            Ok(marked) => marked,
            Err(error) => {
                // The next fresh list (or the next event) finds it again.
                tracing::warn!(%error, %what, "could not record drift");
                return 0;
            }
        };
        if marked.is_empty() {
            return 0;
        }
        self.metrics.kube_drift(
            &self.cluster_name,
            kind.describe(),
            change.as_str(),
            marked.len() as u64,
        );
        for row in marked.iter().take(10) {
            tracing::warn!(namespace = %row.name, %what, "drift: changed out of band; applying it again");
        }
        if marked.len() > 10 {
            tracing::warn!(count = marked.len(), %what, "drift in more namespaces");
        }
        if let Some(generation) = marked.iter().filter_map(|row| row.generation).max() {
            self.service.read_own_write(Some(generation)).await;
        }
        self.wake.wake_workers();
        marked.len()
    }

    fn stream(&self, kind: Watched) -> BoxStream<'static, Seen> {
        let desired = self.desired.clone();
        let config = watcher::Config::default().page_size(LIST_PAGE);
        match kind.name() {
            None => {
                let api: Api<Namespace> = Api::all(self.client.clone());
                let config = config.labels(&format!("{MANAGED_BY_KEY}={MANAGED_BY_VALUE}"));
                seen(
                    kind,
                    watcher::watcher(api, config),
                    move |ns: &Namespace| {
                        let name = ns.metadata.name.clone().unwrap_or_default();
                        let claim = SeenClaim::of(ns);
                        (name, desired.namespace_object(ns), Some(claim))
                    },
                )
            }
            Some(name) if kind == Watched::CommanderRole => {
                let api: Api<Role> = Api::all(self.client.clone());
                let config = config.fields(&format!("metadata.name={name}"));
                seen(kind, watcher::watcher(api, config), move |role: &Role| {
                    let ns = role.metadata.namespace.clone().unwrap_or_default();
                    let change = desired.role(&ns, role);
                    (ns, change, None)
                })
            }
            Some(name) => {
                let api: Api<RoleBinding> = Api::all(self.client.clone());
                let config = config.fields(&format!("metadata.name={name}"));
                seen(
                    kind,
                    watcher::watcher(api, config),
                    move |binding: &RoleBinding| {
                        let ns = binding.metadata.namespace.clone().unwrap_or_default();
                        let change = desired.binding(kind, &ns, binding);
                        (ns, change, None)
                    },
                )
            }
        }
    }
}

/// The wait before a failed list or watch is tried again: doubling from
/// [`RELIST_FIRST`] to [`RELIST_MOST`], and from the start again only once
/// a list has succeeded.
#[derive(Debug, Default)]
struct RelistBackoff {
    last: Option<std::time::Duration>,
}

const RELIST_FIRST: std::time::Duration = std::time::Duration::from_millis(800);
const RELIST_MOST: std::time::Duration = std::time::Duration::from_secs(30);

impl RelistBackoff {
    fn failed(&mut self) -> std::time::Duration {
        let wait = self
            .last
            .map_or(RELIST_FIRST, |last| (last * 2).min(RELIST_MOST));
        self.last = Some(wait);
        wait
    }

    fn listed(&mut self) {
        self.last = None;
    }
}

/// One kind's watch events as [`Seen`]; `judge` names an object's namespace,
/// how it differs from what nspool applies and (a Namespace) its claim labels.
fn seen<K, S>(
    kind: Watched,
    events: S,
    judge: impl Fn(&K) -> (String, Option<Change>, Option<SeenClaim>) + Send + 'static,
) -> BoxStream<'static, Seen>
where
    K: Send + 'static,
    S: futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
{
    let backoff = Arc::new(std::sync::Mutex::new(RelistBackoff::default()));
    events
        .then(move |event| {
            let backoff = backoff.clone();
            async move {
                let backoff = || {
                    backoff
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                };
                match &event {
                    // The watcher lists again when polled next: not before.
                    Err(_) => {
                        let wait = backoff().failed();
                        tokio::time::sleep(wait).await;
                    }
                    Ok(Event::InitDone) => backoff().listed(),
                    Ok(_) => {}
                }
                event
            }
        })
        .map(move |event| match event {
            Ok(Event::Init) => Seen::Listing(kind),
            Ok(Event::InitDone) => Seen::Listed(kind),
            Ok(Event::Apply(object) | Event::InitApply(object)) => {
                let (namespace, change, claim) = judge(&object);
                Seen::Object(kind, namespace, change, claim)
            }
            Ok(Event::Delete(object)) => {
                // A Namespace that lost nspool's label leaves the watch's
                // selector as a delete without a deletion timestamp (a
                // Namespace really deleted always has one: its finalizer).
                let (namespace, change, _) = judge(&object);
                let change = match change {
                    Some(Change::Deleted) => Change::Deleted,
                    _ if kind == Watched::Namespace => Change::Edited,
                    _ => Change::Deleted,
                };
                Seen::Object(kind, namespace, Some(change), None)
            }
            Err(error) => Seen::Failed(kind, error.to_string()),
        })
        .boxed()
}

#[cfg(test)]
mod relist_tests {
    use super::*;

    #[test]
    fn the_wait_doubles_to_its_most_and_starts_over_after_a_list() {
        let mut backoff = RelistBackoff::default();
        let waits: Vec<u64> = (0..8)
            .map(|_| backoff.failed().as_millis() as u64)
            .collect();
        assert_eq!(waits, [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
        backoff.listed();
        assert_eq!(backoff.failed(), RELIST_FIRST);
    }
}

#[cfg(test)]
mod tests {
    use super::Listing;

    #[test]
    fn a_list_past_its_cap_remembers_nothing_rather_than_part() {
        let mut listing = Listing::new(None, 2);
        listing.saw("a");
        listing.saw("b");
        assert_eq!(
            listing.seen.as_deref(),
            Some(&["a".to_owned(), "b".to_owned()][..])
        );
        listing.saw("c");
        assert!(
            listing.seen.is_none(),
            "a partial list would call the rest gone"
        );
        listing.saw("d");
        assert!(listing.seen.is_none());
    }
}
