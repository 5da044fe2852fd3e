//! The Kubernetes side of the pool, driven from Postgres: each pool row says
//! what is due (apply, labels, check) and records what was done, so any
//! replica can resume after another dies. One replica at a time does the
//! work (the one holding the lease: `kube::lease`); failures are recorded on the namespace
//! and retried with backoff, and never touch a claim.

use super::client::{self, KubeClient};
use super::drift::Desired;
use super::drift_watch::DriftWatch;
use super::lease::{Leadership, LeaseTiming};
use super::objects::{self, RbacTarget};
use crate::config::{ClusterSettings, NspoolRbac, Settings};
use crate::domain::commander_rules::{self as rules, CheckPlan, Triple};
use crate::pool::PoolService;
use crate::store::{self, KubeWorkRow, Store, WorkFilter};
use chrono::Utc;
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument as _;

/// How often a verified namespace is verified again.
pub const RECHECK_EVERY: Duration = Duration::from_secs(15 * 60);
/// How long the worker waits when nothing is due (a claim wakes it sooner).
const IDLE: Duration = Duration::from_secs(2);
/// How often the leader of a cluster asks its API server whether it answers,
/// and how long the answer may take: a cluster whose API server stopped
/// answering says so on its row within these two.
const REACH_CHECK_EVERY: Duration = Duration::from_secs(5);
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// While this replica leads `cluster`'s work, asks its API server for its
/// version every [`REACH_CHECK_EVERY`] and records the answer on the
/// cluster's row (the `clusters` query, the dashboard and `/metrics` read
/// it there, on every replica), until `stop`.
async fn reachability_checks(
    store: Store,
    kube: KubeClient,
    cluster: ClusterSettings,
    leadership: Leadership,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let checked = leadership.held();
        if checked {
            let error = match kube.reachable_within(REACH_TIMEOUT).await {
                Ok(()) => None,
                Err(error) => Some(error.to_string()),
            };
            if *stop.borrow() {
                // The worker ended during the check (its cluster left the
                // config): its answer is about a cluster no longer served.
                return;
            }
            if let Some(error) = &error {
                tracing::warn!(cluster = %cluster.name, %error, "the cluster's API server does not answer");
            }
            if let Err(error) = store
                .record_reachability(cluster.id, error.as_deref())
                .await
            {
                tracing::warn!(%error, "could not record the cluster's reachability");
            }
        }
        // Not leading (yet): look again soon, so a new leader says it at once.
        let wait = if checked {
            REACH_CHECK_EVERY
        } else {
            Duration::from_millis(500)
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {},
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}
/// Rows fetched per round of a pass.
const ROUND: i64 = 512;

mod namespace_work;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Kube(#[from] client::Error),
}

/// What a pass did.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    pub applied: usize,
    pub labelled: usize,
    pub checked: usize,
    pub broken: Vec<(String, Vec<String>)>,
    pub missing: Vec<String>,
    /// Releasing namespaces checked: found clean (offered again), or what is left.
    pub cleaned: Vec<String>,
    pub leftovers: Vec<(String, Vec<String>)>,
    /// Namespaces whose pool labels are missing (verify mode without claim labels).
    pub labels_missing: Vec<(String, Vec<String>)>,
    pub failed: Vec<(String, String)>,
    /// Asked once at cluster scope: "a Role cannot grant this".
    pub cluster_scoped: Vec<(String, bool)>,
    /// Rules for API groups the cluster does not serve.
    pub stale: Vec<String>,
}

pub struct KubeWorker {
    store: Store,
    settings: Arc<Settings>,
    /// The cluster this worker serves, as the settings in force say it
    /// (one worker and one client per cluster).
    cluster: ClusterSettings,
    kube: KubeClient,
    /// Changes after a claim, release or drift: the next pass starts at once.
    wake: watch::Receiver<u64>,
    /// Told each namespace a pass finishes (`nspool rbac check` shows it).
    progress: Arc<dyn crate::pool::Progress>,
    /// Released namespaces are checked for leftovers (the service's decision).
    checks_released: bool,
    /// This replica's service: a pass answers (and `rbac check` prints)
    /// only once its changes to what is offered are in this replica's reads.
    service: PoolService,
    /// Pool generations this pass's writes committed as.
    changed: std::sync::Mutex<Vec<i64>>,
    /// This worker's name on the lease (replica and a nonce: two workers in
    /// one process are two holders).
    holder: String,
    timing: LeaseTiming,
    /// Set by the lease's renewals; a pass of [`Self::run`] stops between
    /// rounds without it.
    leadership: Leadership,
    /// Passes run under the lease (`run`), not by hand (`nspool rbac check`).
    led: bool,
    metrics: Arc<crate::metrics::ServiceMetrics>,
}

/// The running drift watch and the configuration it watches for.
struct DriftWatchTask {
    fingerprint: String,
    /// Whether it compares claim labels (a reload may switch them).
    claim_labels: bool,
    task: tokio::task::JoinHandle<()>,
}

/// One namespace's work: what was done, or the failure that stopped it.
type NamespaceResult = (String, Result<Vec<Outcome>, client::Error>);

enum Outcome {
    Applied,
    Labelled,
    Checked {
        broken: Option<Vec<String>>,
        missing: bool,
        labels_missing: Vec<String>,
    },
    /// A releasing namespace listed: what is left (empty: clean, offered again).
    Released(Vec<String>),
}

impl KubeWorker {
    /// The worker of the default cluster (the only one, unless `nspool.clusters` lists several).
    pub fn new(service: &PoolService, kube: KubeClient) -> Self {
        let settings = service.settings();
        Self::for_cluster(service, settings.default_cluster(), kube)
    }

    /// The worker of `cluster` (as the service's settings list it).
    pub fn for_cluster(service: &PoolService, cluster: &ClusterSettings, kube: KubeClient) -> Self {
        Self {
            store: service.store().clone(),
            settings: service.settings(),
            cluster: cluster.clone(),
            kube: kube
                .with_metrics(service.metrics())
                .for_cluster_named(&cluster.name),
            wake: service.kube_wake().subscribe(),
            progress: Arc::new(crate::pool::Silent),
            checks_released: service.checks_released(),
            service: service.clone(),
            changed: std::sync::Mutex::default(),
            holder: format!(
                "{}/{}",
                crate::pool::replica_name(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            timing: LeaseTiming::default(),
            leadership: Leadership::default(),
            led: false,
            metrics: service.metrics(),
        }
    }

    /// Other lease timing (tests: seconds rather than the defaults).
    pub fn with_lease_timing(mut self, timing: LeaseTiming) -> Self {
        self.timing = timing;
        self
    }

    /// This worker's hold on the lease (to watch it from outside: tests).
    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    pub fn with_progress(mut self, progress: Arc<dyn crate::pool::Progress>) -> Self {
        self.progress = progress;
        self
    }

    fn target(&self) -> RbacTarget {
        RbacTarget::from_settings(&self.settings.service)
    }

    /// What nspool applies in each pool namespace (create mode).
    fn namespace_objects(&self) -> objects::NamespaceObjects {
        let service = &self.settings.service;
        objects::NamespaceObjects {
            create_rbac: self.cluster.pool.create_rbac,
            pool_labels: service.pool_labels.clone(),
            leftovers_reader: self.checks_released.then(|| {
                (
                    service.service_account.clone(),
                    service.platform_namespace.as_str().to_owned(),
                )
            }),
            events_writer: Some((
                service.service_account.clone(),
                service.platform_namespace.as_str().to_owned(),
            )),
        }
    }

    fn fingerprint(&self) -> String {
        let target = self.target();
        // Labels and nspool's own binding are part of what it applies.
        rules::fingerprint(
            &target.rules,
            &format!(
                "{}/{}",
                target.service_account,
                self.namespace_objects().fingerprint()
            ),
            &target.service_account_namespace,
        )
    }

    /// The pool labels the claim-labels apply carries: in verify mode with
    /// claim labels on (in create mode the namespace's own apply has them).
    fn claim_pool_labels(&self) -> &std::collections::BTreeMap<String, String> {
        static NONE: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        if self.cluster.nspool_rbac() == NspoolRbac::Verify {
            &self.settings.service.pool_labels
        } else {
            &NONE
        }
    }

    /// The Commander account as a SubjectAccessReview names it.
    fn commander(&self) -> (String, Vec<String>) {
        let target = self.target();
        let ns = &target.service_account_namespace;
        (
            format!("system:serviceaccount:{ns}:{}", target.service_account),
            vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
        )
    }

    /// The work this configuration asks for on its own: apply when nspool
    /// creates the namespaces, labels when switched on, checks when it only
    /// verifies, leftover checks of released namespaces when those are checked.
    /// `check_only` (`nspool rbac check`): verify and list leftovers, write
    /// nothing to the cluster.
    fn filter(&self, check_only: bool) -> (bool, bool, bool, bool) {
        let leftovers = self.checks_released;
        if check_only {
            return (false, false, true, leftovers);
        }
        let create = self.cluster.nspool_rbac() == NspoolRbac::Create;
        (create, self.cluster.claim_labels, !create, leftovers)
    }

    /// Runs passes while this replica holds the Kubernetes lease, until
    /// `stop` (see `kube::lease`). Each pass works with the settings in force
    /// when it starts (a reload changes the next pass).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        self.led = true;
        self.metrics.cluster_series(&self.cluster.name);
        let leadership = self.leadership.clone();
        // This worker's own end: the service's stop, or its cluster leaving
        // the config (then the lease renewals and checks must end with it).
        let ended = Arc::new(watch::Sender::new(false));
        let bridge = {
            let (ended, mut stop) = (ended.clone(), stop.clone());
            tokio::spawn(
                async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                    ended.send_replace(true);
                }
                .in_current_span(),
            )
        };
        let renewer = {
            let (store, holder, timing) = (self.store.clone(), self.holder.clone(), self.timing);
            let cluster = self.cluster.id;
            let (leadership, metrics) = (leadership.clone(), self.metrics.clone());
            let name = self.cluster.name.clone();
            let mut stop = ended.subscribe();
            tokio::spawn(
                async move {
                    loop {
                        let held = leadership.try_once(&store, cluster, &holder, timing).await;
                        metrics.set_kube_leader(&name, held);
                        tokio::select! {
                            () = tokio::time::sleep(timing.retry) => {},
                            _ = stop.wait_for(|stop| *stop) => return,
                        }
                    }
                }
                .in_current_span(),
            )
        };
        // Beside the passes, not between them: a pass stuck on an API server
        // that does not answer must not keep the cluster's row saying it does.
        let reach = tokio::spawn(
            reachability_checks(
                self.store.clone(),
                self.kube.clone(),
                self.cluster.clone(),
                leadership.clone(),
                ended.subscribe(),
            )
            .in_current_span(),
        );
        let mut leading = false;
        let mut drift: Option<DriftWatchTask> = None;
        while !*stop.borrow() {
            // Leading or not: a follower too must not outlive its cluster.
            self.settings = self.service.settings();
            let Some(cluster) = self.settings.cluster(self.cluster.id) else {
                tracing::info!(cluster = %self.cluster.name, "the cluster left the config; its worker stops");
                break;
            };
            if cluster.kubeconfig != self.cluster.kubeconfig
                || cluster.context != self.cluster.context
                || cluster.kubeconfig_sha256 != self.cluster.kubeconfig_sha256
                || cluster.name != self.cluster.name
            {
                // Its client was made from the old ones (a kubeconfig rewritten
                // in place: rotated credentials), and its metrics are labelled
                // with the old name: a new worker takes over.
                tracing::info!(cluster = %cluster.name, "the cluster's kubeconfig (its path or its content), context or name changed; its worker starts again");
                break;
            }
            self.cluster = cluster.clone();
            if !leadership.held() {
                self.stop_drift_watch(&mut drift);
                if leading {
                    tracing::warn!("this replica lost the Kubernetes lease; another takes over");
                    leading = false;
                }
                tokio::select! {
                    () = tokio::time::sleep(self.timing.retry) => {},
                    _ = stop.changed() => {},
                }
                continue;
            }
            if !leading {
                tracing::info!(holder = %self.holder, "this replica does the Kubernetes work");
                leading = true;
            }
            self.checks_released = self.service.checks_released();
            self.keep_drift_watch(&mut drift);
            match self.pass(false).await {
                Ok(_) => self.metrics.kube_pass_done(&self.cluster.name),
                Err(error) => {
                    tracing::warn!(cluster = %self.cluster.name, %error, "Kubernetes pass failed; retrying")
                }
            }
            if leadership.held()
                && let Err(error) = super::event_posts::post_due(
                    &self.store,
                    self.cluster.id,
                    &self.kube,
                    &crate::pool::replica_name(),
                )
                .await
            {
                tracing::warn!(%error, "could not read the events to post to Kubernetes; retrying");
            }
            tokio::select! {
                _ = self.wake.changed() => {},
                () = tokio::time::sleep(IDLE) => {},
                _ = stop.changed() => {},
            }
        }
        self.stop_drift_watch(&mut drift);
        ended.send_replace(true);
        bridge.abort();
        let _ = renewer.await;
        let _ = reach.await;
        // Its series go with it: nothing pages about work nobody does here.
        self.metrics.forget_cluster(&self.cluster.name);
        if leadership.held() {
            // A clean stop hands the work over at once, not after the lease;
            // this worker stops believing it leads first.
            leadership.give_up();
            if let Err(error) = self
                .store
                .release_kube_lease(self.cluster.id, &self.holder)
                .await
            {
                tracing::warn!(%error, "could not give the Kubernetes lease up; it expires by itself");
            }
        }
    }

    /// In create mode the leader watches what it applied (`kube::drift_watch`),
    /// one watch per configuration: a reload that changes what is applied
    /// (or switches claim labels) starts it anew.
    fn keep_drift_watch(&self, drift: &mut Option<DriftWatchTask>) {
        let claim_labels = self.cluster.claim_labels;
        let want = (self.cluster.nspool_rbac() == NspoolRbac::Create).then(|| self.fingerprint());
        let running = drift
            .as_ref()
            .map(|task| (&task.fingerprint, task.claim_labels));
        if running == want.as_ref().map(|f| (f, claim_labels)) {
            return;
        }
        self.stop_drift_watch(drift);
        if let Some(fingerprint) = want {
            let desired = Desired {
                target: self.target(),
                objects: self.namespace_objects(),
                claim_labels,
            };
            let watch = DriftWatch::new(
                self.kube.client(),
                (self.cluster.id, self.cluster.name.clone()),
                &self.service,
                desired,
                fingerprint.clone(),
            );
            *drift = Some(DriftWatchTask {
                fingerprint,
                claim_labels,
                task: tokio::spawn(watch.run().in_current_span()),
            });
        }
    }

    fn stop_drift_watch(&self, drift: &mut Option<DriftWatchTask>) {
        if let Some(old) = drift.take() {
            old.task.abort();
            self.metrics
                .set_drift_watch_synced(&self.cluster.name, false);
        }
    }

    /// Does all work due now. `check_all`: only verify every namespace, whatever
    /// the mode and however recently it was checked (`nspool rbac check`).
    pub async fn pass(&self, check_all: bool) -> Result<PassReport, Error> {
        let fingerprint = self.fingerprint();
        let (apply, labels, verify, leftovers) = self.filter(check_all);
        let pool_labels_fingerprint = objects::labels_fingerprint(self.claim_pool_labels());
        let check_before = if check_all {
            Some(Utc::now())
        } else if verify {
            Some(Utc::now() - chrono::Duration::from_std(RECHECK_EVERY).unwrap_or_default())
        } else {
            None
        };
        let filter = WorkFilter {
            cluster: self.cluster.id,
            apply: apply.then_some(fingerprint.as_str()),
            labels,
            check_before,
            respect_backoff: !check_all,
            leftovers,
            // Verify mode with claim labels: the pool labels ride on that apply.
            pool_labels: (labels && !apply && !self.claim_pool_labels().is_empty())
                .then_some(pool_labels_fingerprint.as_str()),
        };
        let mut report = PassReport::default();
        let mut plan: Option<CheckPlan> = None;
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            if self.led && !self.leadership.held() {
                tracing::warn!("the Kubernetes lease ran out mid-pass; the pass stops here");
                break;
            }
            let mut rows: Vec<KubeWorkRow> = self
                .store
                .kube_work(&filter, ROUND)
                .await?
                .into_iter()
                .filter(|row| !seen.contains(&row.name))
                .collect();
            if rows.is_empty() {
                break;
            }
            if plan.is_none() && rows.iter().any(|r| r.needs_check) {
                match self.cluster_checks(&mut report).await {
                    Ok(checks) => plan = Some(checks),
                    Err(Error::Kube(error)) => {
                        // Discovery (or a cluster-scoped review) failed: each
                        // namespace waiting for its check records it, so the
                        // pool view, nspool_kube_errors and its alert see it;
                        // retried with backoff like any failure.
                        tracing::warn!(%error, "Kubernetes discovery failed; the verifications wait");
                        for row in rows.iter().filter(|r| r.needs_check) {
                            self.store
                                .record_kube_error(self.cluster.id, &row.name, &error.to_string())
                                .await?;
                            report.failed.push((row.name.clone(), error.to_string()));
                            seen.insert(row.name.clone());
                            self.progress.advance(1);
                        }
                        rows.retain(|r| !r.needs_check);
                    }
                    Err(other) => return Err(other),
                }
            }
            let empty = CheckPlan::default();
            let plan_ref = plan.as_ref().unwrap_or(&empty);
            let fingerprint = fingerprint.as_str();
            let mut work: Vec<BoxFuture<'_, NamespaceResult>> = Vec::new();
            for row in rows {
                let name = row.name.clone();
                work.push(Box::pin(async move {
                    // A lease lost mid-round: not one more namespace (the
                    // next leader does the rest; nothing is recorded here).
                    if self.led && !self.leadership.held() {
                        return (name, Err(client::Error::LeaseLost));
                    }
                    (name, self.work_on(row, plan_ref, fingerprint).await)
                }));
            }
            // Namespaces side by side; the client bounds the requests in flight.
            let results: Vec<_> = stream::iter(work)
                .buffer_unordered(self.kube.max_in_flight())
                .collect()
                .await;
            for (name, result) in results {
                self.progress.advance(1);
                seen.insert(name.clone());
                match result {
                    Ok(outcomes) => {
                        self.store.clear_kube_error(self.cluster.id, &name).await?;
                        for outcome in outcomes {
                            match outcome {
                                Outcome::Applied => report.applied += 1,
                                Outcome::Labelled => report.labelled += 1,
                                Outcome::Checked {
                                    broken,
                                    missing,
                                    labels_missing,
                                } => {
                                    report.checked += 1;
                                    if missing {
                                        report.missing.push(name.clone());
                                    }
                                    if let Some(denied) = broken {
                                        report.broken.push((name.clone(), denied));
                                    }
                                    if !labels_missing.is_empty() {
                                        report.labels_missing.push((name.clone(), labels_missing));
                                    }
                                }
                                Outcome::Released(left) if left.is_empty() => {
                                    report.cleaned.push(name.clone());
                                }
                                Outcome::Released(left) => {
                                    report.leftovers.push((name.clone(), left));
                                }
                            }
                        }
                    }
                    Err(client::Error::LeaseLost) => {}
                    Err(error) => {
                        tracing::warn!(namespace = %name, %error, "Kubernetes work failed; will retry");
                        self.store
                            .record_kube_error(self.cluster.id, &name, &error.to_string())
                            .await?;
                        report.failed.push((name, error.to_string()));
                    }
                }
            }
        }
        let changed = std::mem::take(&mut *self.changed_lock());
        for generation in changed {
            self.service.read_own_write(Some(generation)).await;
        }
        Ok(report)
    }

    fn changed_lock(&self) -> std::sync::MutexGuard<'_, Vec<i64>> {
        self.changed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers a write that changed what the pool offers.
    fn note(&self, generation: Option<i64>) {
        if let Some(generation) = generation {
            self.changed_lock().push(generation);
        }
    }

    /// Discovery and the cluster-scoped part of a verification, once per pass.
    async fn cluster_checks(&self, report: &mut PassReport) -> Result<CheckPlan, Error> {
        let served = self.kube.served_groups().await?;
        let plan = rules::plan(&self.target().rules, &|group| served.contains(group));
        let (user, groups) = self.commander();
        for triple in &plan.cluster_scoped {
            let allowed = self.kube.can(&user, &groups, None, triple).await?;
            report.cluster_scoped.push((triple.to_string(), allowed));
        }
        report.stale = plan.stale.iter().map(Triple::to_string).collect();
        let cluster: Vec<Value> = report
            .cluster_scoped
            .iter()
            .map(|(t, allowed)| json!({"permission": t, "allowedAtClusterScope": allowed, "note": "a Role cannot grant this"}))
            .collect();
        self.store
            .save_cluster_report(
                self.cluster.id,
                &Value::Array(cluster),
                &json!(report.stale),
            )
            .await?;
        Ok(plan)
    }
}
