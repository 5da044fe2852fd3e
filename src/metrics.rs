//! The pool's own metrics: claims and releases by outcome, reclaim runs,
//! Kubernetes calls. Counted where the work happens (the pool service and
//! the Kubernetes client) and registered by `/metrics` beside its HTTP ones.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReleaseLabels {
    /// hard_delete, soft_delete, reclaim
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KubeCallLabels {
    /// apply, get_namespace, claim_labels, access_review, discovery
    pub call: &'static str,
    /// ok, forbidden, not_found, conflict, server_error, timeout, other
    pub outcome: &'static str,
    /// The cluster called (its name in the config).
    pub cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    /// One of [`crate::domain::budget::Budget::ALL`]'s names.
    pub budget: &'static str,
}

/// The cluster a Kubernetes worker serves (its name in the config).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriftLabels {
    /// Namespace, Role/deployment-commander-role, RoleBinding/…
    pub object: &'static str,
    /// deleted, edited
    pub change: &'static str,
    /// The cluster watched.
    pub cluster: String,
}

pub struct ServiceMetrics {
    budget_refusals: Family<BudgetLabels, Counter>,
    claims: Family<OutcomeLabels, Counter>,
    claim_seconds: Family<OutcomeLabels, Histogram>,
    releases: Family<ReleaseLabels, Counter>,
    reclaim_runs: Family<OutcomeLabels, Counter>,
    reclaimed: Counter,
    kube_calls: Family<KubeCallLabels, Counter>,
    listener_reconnects: Counter,
    snapshot_reloads: Counter,
    copy_repairs: Counter,
    config_reloads: Family<OutcomeLabels, Counter>,
    /// Unix seconds of the last reload that applied (0: none since start).
    config_reload_success: Gauge,
    /// 1 while the last reload attempt failed (the last good config serves).
    config_reload_failing: Gauge,
    /// 1 while this replica holds a cluster's Kubernetes lease (one lease and
    /// one worker per cluster: each has its own series).
    kube_leader: Family<ClusterLabels, Gauge>,
    /// Unix seconds of this replica's last Kubernetes pass of a cluster that
    /// finished (0: none).
    kube_last_pass: Family<ClusterLabels, Gauge>,
    /// Objects found changed or gone out of band (create mode's drift watch).
    kube_drift: Family<DriftLabels, Counter>,
    /// 1 while this replica's drift watch of a cluster has listed every kind it watches.
    kube_drift_watch_synced: Family<ClusterLabels, Gauge>,
    /// 1 while live replicas ask for different pool configs.
    config_disagreement: Gauge,
    /// 1 while this replica's config (a reload, or its start-up sync) is
    /// held back by another replica's.
    config_held_back: Gauge,
}

/// Buckets for request and claim latencies: 0.5 ms to ~16 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The Kubernetes calls nspool makes, and the outcomes every family starts
/// with at zero: a counter that appears only at its first increment hides
/// that increment from `increase()` and `rate()`.
const KUBE_CALLS: [&str; 8] = [
    "apply",
    "version",
    "post_event",
    "get_namespace",
    "claim_labels",
    "access_review",
    "discovery",
    "list_leftovers",
];

/// Every outcome a Kubernetes call is counted under (`kube::client`).
pub const KUBE_CALL_OUTCOMES: [&str; 7] = [
    "ok",
    "forbidden",
    "not_found",
    "conflict",
    "server_error",
    "timeout",
    "other",
];

impl Default for ServiceMetrics {
    fn default() -> Self {
        let metrics = Self {
            budget_refusals: Family::default(),
            claims: Family::default(),
            claim_seconds: Family::new_with_constructor(latency_histogram),
            releases: Family::default(),
            reclaim_runs: Family::default(),
            reclaimed: Counter::default(),
            kube_calls: Family::default(),
            listener_reconnects: Counter::default(),
            snapshot_reloads: Counter::default(),
            copy_repairs: Counter::default(),
            config_reloads: Family::default(),
            config_reload_success: Gauge::default(),
            config_reload_failing: Gauge::default(),
            kube_leader: Family::default(),
            kube_last_pass: Family::default(),
            kube_drift: Family::default(),
            kube_drift_watch_synced: Family::default(),
            config_disagreement: Gauge::default(),
            config_held_back: Gauge::default(),
        };
        for outcome in ["ok", "conflict", "bad_input", "error"] {
            let _ = metrics.claims.get_or_create(&OutcomeLabels { outcome });
            let _ = metrics
                .claim_seconds
                .get_or_create(&OutcomeLabels { outcome });
        }
        for budget in crate::domain::budget::Budget::ALL {
            let _ = metrics.budget_refusals.get_or_create(&BudgetLabels {
                budget: budget.name(),
            });
        }
        for kind in ["hard_delete", "soft_delete", "reclaim"] {
            let _ = metrics.releases.get_or_create(&ReleaseLabels { kind });
        }
        for outcome in ["ok", "stopped", "failed"] {
            let _ = metrics
                .reclaim_runs
                .get_or_create(&OutcomeLabels { outcome });
        }
        for outcome in ["ok", "failed"] {
            let _ = metrics
                .config_reloads
                .get_or_create(&OutcomeLabels { outcome });
        }
        metrics
    }
}

impl ServiceMetrics {
    /// Adds these metrics to `/metrics`' registry (prefixed `nspool_`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "budget_refusals",
            "Requests, connections and documents refused or cut off by a budget, by budget (docs/operations.md lists them)",
            self.budget_refusals.clone(),
        );
        registry.register(
            "request_database_waits_timed_out",
            "Statements that waited longer than 3 s for one of their request's database connections (nspool.http.databaseConnectionsPerRequest); the request answered SERVICE_UNAVAILABLE",
            crate::store::WAITS_TIMED_OUT.clone(),
        );
        registry.register(
            "claims",
            "Claims (createDeployment in pool mode) by outcome: ok, conflict, bad_input, not_found, forbidden, unavailable, error",
            self.claims.clone(),
        );
        registry.register(
            "claim_duration_seconds",
            "Time to answer a claim, by outcome",
            self.claim_seconds.clone(),
        );
        registry.register(
            "releases",
            "Namespaces given back or set aside by kind: hard_delete (free at once), soft_delete (held until reclaimed), reclaim",
            self.releases.clone(),
        );
        registry.register(
            "reclaim_runs",
            "Reclaim runs this replica did, by outcome: ok, stopped, failed",
            self.reclaim_runs.clone(),
        );
        registry.register(
            "reclaimed_deployments",
            "Deployments hard-deleted by reclaim runs of this replica",
            self.reclaimed.clone(),
        );
        registry.register(
            "kube_calls",
            "Kubernetes API calls by call and outcome",
            self.kube_calls.clone(),
        );
        registry.register(
            "pool_listener_reconnects",
            "Times this replica's LISTEN connection was lost (reads went to the database until it was back)",
            self.listener_reconnects.clone(),
        );
        registry.register(
            "config_reloads",
            "Config reloads (SIGHUP, or the file changed) by outcome: ok (applied), failed (refused; the last good config serves)",
            self.config_reloads.clone(),
        );
        registry.register(
            "kube_leader",
            "1 while this replica holds the cluster's Kubernetes lease and does its Kubernetes work (exactly one replica per cluster should)",
            self.kube_leader.clone(),
        );
        registry.register(
            "kube_last_pass_timestamp_seconds",
            "When this replica last finished a Kubernetes pass of the cluster (0: never); the leader's grows every few seconds",
            self.kube_last_pass.clone(),
        );
        registry.register(
            "kube_drift",
            "Objects nspool applied (create mode) found deleted or edited out of band, by object and change (`claim-labels`: a held Namespace's claim labels); each is applied again",
            self.kube_drift.clone(),
        );
        registry.register(
            "kube_drift_watch_synced",
            "1 while this replica's drift watch of the cluster is listed and watching (the leader in create mode); 0 while it lists again after an error",
            self.kube_drift_watch_synced.clone(),
        );
        registry.register(
            "config_replicas_disagree",
            "1 while live replicas ask for different pool configs (the dashboard says which asks for what); a sync that would flip the pool is held back meanwhile",
            self.config_disagreement.clone(),
        );
        registry.register(
            "config_held_back",
            "1 while this replica's config (a reload, or its start-up sync) is held back because another live replica still asks for the pool config in force",
            self.config_held_back.clone(),
        );
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "When the last config reload was applied (0: none since the start)",
            self.config_reload_success.clone(),
        );
        registry.register(
            "config_last_reload_failed",
            "1 while the last config reload was refused (the errors are in the log and on the dashboard)",
            self.config_reload_failing.clone(),
        );
        registry.register(
            "pool_snapshot_reloads",
            "Times this replica reloaded its pool snapshot after a missed or oversized change notice",
            self.snapshot_reloads.clone(),
        );
        registry.register(
            "pool_copy_repairs",
            "Times this replica found its pool copy different from the database (a write that bypassed the change notices: a restore, a trigger off) and loaded it again",
            self.copy_repairs.clone(),
        );
    }

    /// Something went past `budget` and was refused or cut off.
    pub fn refused(&self, budget: crate::domain::budget::Budget) {
        self.budget_refusals
            .get_or_create(&BudgetLabels {
                budget: budget.name(),
            })
            .inc();
    }

    pub fn claim(&self, outcome: &'static str, took: Duration) {
        let labels = OutcomeLabels { outcome };
        self.claims.get_or_create(&labels).inc();
        self.claim_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn release(&self, kind: &'static str) {
        self.releases.get_or_create(&ReleaseLabels { kind }).inc();
    }

    pub fn reclaim_run(&self, outcome: &'static str, reclaimed: u64) {
        self.reclaim_runs
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.reclaimed.inc_by(reclaimed);
        self.releases
            .get_or_create(&ReleaseLabels { kind: "reclaim" })
            .inc_by(reclaimed);
    }

    pub fn listener_reconnect(&self) {
        self.listener_reconnects.inc();
    }

    pub fn copy_repaired(&self) {
        self.copy_repairs.inc();
    }

    pub fn snapshot_reload(&self) {
        self.snapshot_reloads.inc();
    }

    /// A config reload applied (`ok`) or refused.
    pub fn config_reload(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.config_reloads
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.config_reload_failing.set(i64::from(!ok));
        if ok {
            self.config_reload_success
                .set(chrono::Utc::now().timestamp());
        }
    }

    /// The cluster's Kubernetes series at 0 (not leading, no pass, not
    /// synced), so they exist before its worker first sets them: an alert
    /// over a series that does not exist yet sees nothing.
    pub fn cluster_series(&self, cluster: &str) {
        for labels in drift_labels(cluster) {
            let _ = self.kube_drift.get_or_create(&labels);
        }
        for labels in call_labels(cluster, &["ok", "forbidden", "timeout", "server_error"]) {
            let _ = self.kube_calls.get_or_create(&labels);
        }
        let labels = cluster_labels(cluster);
        let _ = self.kube_leader.get_or_create(&labels);
        let _ = self.kube_last_pass.get_or_create(&labels);
        let _ = self.kube_drift_watch_synced.get_or_create(&labels);
    }

    /// Removes the cluster's Kubernetes series once its worker has ended
    /// (the cluster left the config, or was renamed: its new worker makes
    /// them anew): a stale last pass must not page about a cluster nspool
    /// no longer works on.
    pub fn forget_cluster(&self, cluster: &str) {
        for labels in drift_labels(cluster) {
            self.kube_drift.remove(&labels);
        }
        for labels in call_labels(cluster, &KUBE_CALL_OUTCOMES) {
            self.kube_calls.remove(&labels);
        }
        let labels = cluster_labels(cluster);
        self.kube_leader.remove(&labels);
        self.kube_last_pass.remove(&labels);
        self.kube_drift_watch_synced.remove(&labels);
    }

    pub fn set_kube_leader(&self, cluster: &str, leader: bool) {
        self.kube_leader
            .get_or_create(&cluster_labels(cluster))
            .set(i64::from(leader));
    }

    pub fn kube_pass_done(&self, cluster: &str) {
        self.kube_last_pass
            .get_or_create(&cluster_labels(cluster))
            .set(chrono::Utc::now().timestamp());
    }

    pub fn kube_drift(
        &self,
        cluster: &str,
        object: &'static str,
        change: &'static str,
        count: u64,
    ) {
        self.kube_drift
            .get_or_create(&DriftLabels {
                object,
                change,
                cluster: cluster.to_owned(),
            })
            .inc_by(count);
    }

    pub fn set_drift_watch_synced(&self, cluster: &str, synced: bool) {
        self.kube_drift_watch_synced
            .get_or_create(&cluster_labels(cluster))
            .set(i64::from(synced));
    }

    pub fn set_config_disagreement(&self, disagree: bool) {
        self.config_disagreement.set(i64::from(disagree));
    }

    pub fn set_config_held_back(&self, held: bool) {
        self.config_held_back.set(i64::from(held));
    }

    pub fn kube_call(&self, cluster: &str, call: &'static str, outcome: &'static str) {
        self.kube_calls
            .get_or_create(&KubeCallLabels {
                call,
                outcome,
                cluster: cluster.to_owned(),
            })
            .inc();
    }
}

/// Every drift series of `cluster`: each watched object, deleted or edited.
fn drift_labels(cluster: &str) -> impl Iterator<Item = DriftLabels> + '_ {
    crate::kube::drift::Watched::ALL
        .map(crate::kube::drift::Watched::describe)
        .into_iter()
        .flat_map(move |object| {
            ["deleted", "edited"].map(|change| DriftLabels {
                object,
                change,
                cluster: cluster.to_owned(),
            })
        })
}

/// The call series of `cluster`: each call with each of `outcomes`.
fn call_labels<'a>(
    cluster: &'a str,
    outcomes: &'a [&'static str],
) -> impl Iterator<Item = KubeCallLabels> + 'a {
    KUBE_CALLS.into_iter().flat_map(move |call| {
        outcomes.iter().map(move |outcome| KubeCallLabels {
            call,
            outcome,
            cluster: cluster.to_owned(),
        })
    })
}

fn cluster_labels(cluster: &str) -> ClusterLabels {
    ClusterLabels {
        cluster: cluster.to_owned(),
    }
}
