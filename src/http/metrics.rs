//! `GET /metrics` (Prometheus text format): requests by route and status,
//! their durations, GraphQL errors by code; the pool service's claims,
//! releases, reclaim runs and Kubernetes calls; and, read from Postgres at
//! scrape time (so every replica reports the same): the pool's namespaces by
//! state, Kubernetes errors waiting for a retry, the last reclaim run,
//! whether the database answered at all, and per cluster of the config in
//! force (label `cluster`, its name): its namespaces by state and whether its
//! API server answered its worker's last check, and how long ago that was.
//! Alert rules and a dashboard for these are in `docker/monitoring/`.

use super::AppState;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    /// The cluster's name in the config.
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterStateLabels {
    cluster: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    /// in_use, idle
    state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    graphql_errors: Family<CodeLabels, Counter>,
    pool: Family<StateLabels, Gauge>,
    releasing_oldest: Gauge<f64, std::sync::atomic::AtomicU64>,
    database_up: Gauge,
    database_connections: Family<ConnectionLabels, Gauge>,
    database_max_connections: Gauge,
    kube_errors: Gauge,
    reclaim_enabled: Gauge,
    reclaim_last_success: Gauge<f64, std::sync::atomic::AtomicU64>,
    probe_database_reads: Family<ProbeLabels, Counter>,
    dashboard_sessions: Gauge,
    cluster_namespaces: Family<ClusterStateLabels, Gauge>,
    cluster_reachable: Family<ClusterLabels, Gauge>,
    cluster_check_age: Family<ClusterLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// The clusters whose series the last good read set: a cluster that
    /// left the config (or whose check went away) has its series removed,
    /// not left at their last values.
    clusters_shown: std::sync::Mutex<ClustersShown>,
}

#[derive(Default)]
struct ClustersShown {
    counted: Vec<String>,
    checked: Vec<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    probe: &'static str,
}

impl Metrics {
    /// The HTTP metrics, plus the pool service's own (`crate::metrics`).
    pub fn new(service: &crate::metrics::ServiceMetrics) -> Self {
        let mut metrics = Self::default();
        service.register(&mut metrics.registry);
        metrics
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("nspool");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(
            crate::metrics::latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request durations",
            durations.clone(),
        );
        let graphql_errors = Family::<CodeLabels, Counter>::default();
        // Every code from the start, at zero: alerts on a family that appears
        // only at its first error cannot evaluate until then.
        for code in crate::graphql::CODES {
            let _ = graphql_errors.get_or_create(&CodeLabels {
                code: (*code).to_owned(),
            });
        }
        registry.register(
            "graphql_errors",
            "GraphQL errors by extensions.code",
            graphql_errors.clone(),
        );
        let pool = Family::<StateLabels, Gauge>::default();
        registry.register(
            "pool_namespaces",
            "Pool namespaces by state (free, held, soft_deleted, retired, broken, releasing)",
            pool.clone(),
        );
        let releasing_oldest = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "pool_releasing_oldest_seconds",
            "How long the longest-releasing namespace has waited to be found clean; 0 when none is releasing",
            releasing_oldest.clone(),
        );
        let database_up = Gauge::default();
        registry.register(
            "database_up",
            "1 when the last scrape could read the database within 2 s, else 0 (the pool gauges then keep their last good values)",
            database_up.clone(),
        );
        let database_connections = Family::<ConnectionLabels, Gauge>::default();
        registry.register(
            "database_connections",
            "This replica's database connections by state (in_use, idle)",
            database_connections.clone(),
        );
        let database_max_connections = Gauge::default();
        registry.register(
            "database_max_connections",
            "This replica's database connection limit (nspool.databaseMaxConnections)",
            database_max_connections.clone(),
        );
        let kube_errors = Gauge::default();
        registry.register(
            "kube_errors",
            "Pool namespaces whose last Kubernetes work failed and waits for a retry",
            kube_errors.clone(),
        );
        let reclaim_enabled = Gauge::default();
        registry.register(
            "reclaim_enabled",
            "1 when the reclaim job runs for real (enabled and not a dry run)",
            reclaim_enabled.clone(),
        );
        let reclaim_last_success = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "reclaim_last_success_timestamp_seconds",
            "When a reclaim run (any replica, not a dry run) last finished without errors; 0 if never",
            reclaim_last_success.clone(),
        );
        let probe_database_reads = Family::<ProbeLabels, Counter>::default();
        registry.register(
            "probe_database_reads",
            "Database reads made for /readyz and /metrics (one at a time each, shared by the probes that ask meanwhile, kept 1 s)",
            probe_database_reads.clone(),
        );
        for probe in ["readyz", "metrics"] {
            probe_database_reads
                .get_or_create(&ProbeLabels { probe })
                .get();
        }
        let dashboard_sessions = Gauge::default();
        registry.register(
            "dashboard_sessions",
            "Live dashboard sessions (at most 20 per token; read from PostgreSQL)",
            dashboard_sessions.clone(),
        );
        let cluster_namespaces = Family::<ClusterStateLabels, Gauge>::default();
        registry.register(
            "cluster_namespaces",
            "Each cluster's pool namespaces by state (the states of nspool_pool_namespaces); label cluster: its name in the config",
            cluster_namespaces.clone(),
        );
        let cluster_reachable = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "cluster_reachable",
            "1 when the cluster's API server answered its Kubernetes worker's last check (every 5 s on the leader), 0 when it did not; absent while never checked (Kubernetes off, or no worker has checked yet)",
            cluster_reachable.clone(),
        );
        let cluster_check_age =
            Family::<ClusterLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "cluster_check_age_seconds",
            "Seconds since the cluster's last reachability check (by the database's clock); absent while never checked",
            cluster_check_age.clone(),
        );
        Self {
            registry,
            dashboard_sessions,
            cluster_namespaces,
            cluster_reachable,
            cluster_check_age,
            clusters_shown: Default::default(),
            probe_database_reads,
            releasing_oldest,
            requests,
            durations,
            graphql_errors,
            pool,
            database_up,
            database_connections,
            database_max_connections,
            kube_errors,
            reclaim_enabled,
            reclaim_last_success,
        }
    }
}

impl Metrics {
    pub fn probe_database_read(&self, probe: &'static str) {
        self.probe_database_reads
            .get_or_create(&ProbeLabels { probe })
            .inc();
    }

    pub fn graphql_error(&self, code: &str) {
        self.graphql_errors
            .get_or_create(&CodeLabels {
                code: code.to_owned(),
            })
            .inc();
    }
}

/// Counts and times every request, by its route pattern (never the raw path).
pub async fn track(State(state): State<AppState>, request: Request<Body>, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .durations
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

pub async fn scrape(State(state): State<AppState>) -> Response {
    let metrics = &state.metrics;
    let store = state.service.store();
    let connections = store.pool();
    let size = i64::from(connections.size());
    let idle = i64::try_from(connections.num_idle()).unwrap_or(i64::MAX);
    metrics
        .database_connections
        .get_or_create(&ConnectionLabels { state: "in_use" })
        .set(size - idle);
    metrics
        .database_connections
        .get_or_create(&ConnectionLabels { state: "idle" })
        .set(idle);
    metrics
        .database_max_connections
        .set(i64::from(connections.options().get_max_connections()));
    let cleanup = &state.service.settings().cleanup;
    metrics.reclaim_enabled.set(i64::from(cleanup.reclaims()));
    // Never waits on the database past the probe timeout: the pool gauges
    // keep the last good read, and `database_up` says the read failed.
    // Scrapes at once share one read; one a second at most.
    let (figures_metrics, figures_store) = (state.metrics.clone(), store.clone());
    let settings = state.service.settings();
    let counted = state.metrics.clone();
    let _ = state
        .probes
        .figures
        .get(
            || read_figures(figures_metrics, figures_store, settings),
            || counted.probe_database_read("metrics"),
        )
        .await;
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &state.metrics.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let response = (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    );
    // Built for this scrape: held of the answer buffer until sent.
    super::unsent::fresh(response.into_response())
}

/// The pool figures and the clusters' from the database, into the gauges:
/// two bounded reads at once, within one probe timeout for both.
async fn read_figures(
    metrics: std::sync::Arc<Metrics>,
    store: crate::store::Store,
    settings: std::sync::Arc<crate::config::Settings>,
) {
    let timeout = crate::domain::budget::PROBE_TIMEOUT;
    let both = async {
        tokio::join!(
            store.scrape_figures(timeout),
            store.scrape_cluster_figures(timeout)
        )
    };
    match tokio::time::timeout(timeout, both).await {
        Ok((pool, clusters)) => {
            let pool_read = match pool {
                Ok((figures, counts)) => {
                    metrics.set_pool_figures(&figures, &counts);
                    true
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics: cannot read the database");
                    false
                }
            };
            let clusters_read = match clusters {
                Ok(scrape) => {
                    metrics.set_cluster_figures(&cluster_gauges(&settings, &scrape));
                    true
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics: cannot read the clusters from the database");
                    false
                }
            };
            metrics
                .database_up
                .set(i64::from(pool_read && clusters_read));
        }
        Err(_) => {
            metrics.database_up.set(0);
            tracing::warn!(
                seconds = timeout.as_secs(),
                "metrics: the database did not answer in time"
            );
        }
    }
}

impl Metrics {
    fn set_pool_figures(
        &self,
        figures: &crate::store::HealthFigures,
        counts: &crate::store::PoolStateCounts,
    ) {
        self.kube_errors.set(figures.kube_errors);
        self.dashboard_sessions.set(figures.sessions);
        self.reclaim_last_success.set(
            figures
                .last_reclaim
                .map_or(0.0, |at| at.timestamp_millis() as f64 / 1000.0),
        );
        let waited = counts.oldest_releasing.map_or(0.0, |since| {
            (chrono::Utc::now() - since).num_milliseconds().max(0) as f64 / 1000.0
        });
        self.releasing_oldest.set(waited);
        for (name, value) in counts.by_state() {
            self.pool
                .get_or_create(&StateLabels {
                    state: name.to_owned(),
                })
                .set(value);
        }
    }

    /// Sets each cluster's series and removes those of clusters no longer
    /// shown (gone from the config, or no longer checked), so that no alert
    /// fires on a cluster nspool stopped serving.
    fn set_cluster_figures(&self, gauges: &[ClusterGauges]) {
        let mut shown = self
            .clusters_shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let counted: Vec<String> = gauges.iter().map(|g| g.name.clone()).collect();
        let checked: Vec<String> = gauges
            .iter()
            .filter(|g| g.check.is_some())
            .map(|g| g.name.clone())
            .collect();
        for gone in shown.counted.iter().filter(|n| !counted.contains(n)) {
            for (state, _) in crate::store::PoolStateCounts::empty().by_state() {
                self.cluster_namespaces.remove(&ClusterStateLabels {
                    cluster: gone.clone(),
                    state: state.to_owned(),
                });
            }
        }
        for gone in shown.checked.iter().filter(|n| !checked.contains(n)) {
            let labels = ClusterLabels {
                cluster: gone.clone(),
            };
            self.cluster_reachable.remove(&labels);
            self.cluster_check_age.remove(&labels);
        }
        for cluster in gauges {
            for (state, value) in cluster.counts.by_state() {
                self.cluster_namespaces
                    .get_or_create(&ClusterStateLabels {
                        cluster: cluster.name.clone(),
                        state: state.to_owned(),
                    })
                    .set(value);
            }
            if let Some(check) = cluster.check {
                let labels = ClusterLabels {
                    cluster: cluster.name.clone(),
                };
                self.cluster_reachable
                    .get_or_create(&labels)
                    .set(i64::from(check.reachable));
                self.cluster_check_age
                    .get_or_create(&labels)
                    .set(check.age_seconds);
            }
        }
        *shown = ClustersShown { counted, checked };
    }
}

/// What [`crate::store::Store::scrape_cluster_figures`] reads: the
/// database's clock, the cluster rows, each cluster's counts.
type ClusterScrape = (
    chrono::DateTime<chrono::Utc>,
    Vec<crate::store::ClusterRow>,
    Vec<(uuid::Uuid, crate::store::PoolStateCounts)>,
);

/// A cluster's last reachability check as `/metrics` shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Check {
    reachable: bool,
    age_seconds: f64,
}

/// One cluster's series.
#[derive(Debug, Clone)]
struct ClusterGauges {
    name: String,
    counts: crate::store::PoolStateCounts,
    /// `None`: never checked, or Kubernetes is off (no series then).
    check: Option<Check>,
}

/// The clusters of the config in force, in its order, each with its counts
/// (zero when it has no namespace) and its last check. Rows of clusters the
/// config no longer lists are left out. With `nspool.kubernetes.mode: off`
/// no cluster has a check: a row's last check from before is history, and
/// its growing age would read as a stale check.
fn cluster_gauges(
    settings: &crate::config::Settings,
    (now, rows, counts): &ClusterScrape,
) -> Vec<ClusterGauges> {
    let kubernetes = settings.service.kubernetes_mode != crate::config::KubernetesMode::Off;
    settings
        .clusters
        .iter()
        .map(|cluster| {
            let row = rows.iter().find(|r| r.id == cluster.id);
            let check = row
                .filter(|_| kubernetes)
                .and_then(|r| Some((r.reachable?, r.checked_at?)))
                .map(|(reachable, at)| Check {
                    reachable,
                    age_seconds: (*now - at).num_milliseconds().max(0) as f64 / 1000.0,
                });
            ClusterGauges {
                name: cluster.name.clone(),
                counts: counts
                    .iter()
                    .find(|(id, _)| *id == cluster.id)
                    .map_or_else(crate::store::PoolStateCounts::empty, |(_, c)| *c),
                check,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges(name: &str, free: i64, check: Option<(bool, f64)>) -> ClusterGauges {
        ClusterGauges {
            name: name.to_owned(),
            counts: crate::store::PoolStateCounts {
                free,
                ..crate::store::PoolStateCounts::empty()
            },
            check: check.map(|(reachable, age_seconds)| Check {
                reachable,
                age_seconds,
            }),
        }
    }

    fn text(metrics: &Metrics) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        text
    }

    #[test]
    fn a_cluster_that_leaves_or_is_no_longer_checked_loses_its_series() {
        let metrics = Metrics::default();
        metrics.set_cluster_figures(&[
            gauges("prod", 2, Some((true, 3.5))),
            gauges("staging", 1, Some((false, 4.0))),
        ]);
        let before = text(&metrics);
        for line in [
            "nspool_cluster_reachable{cluster=\"prod\"} 1",
            "nspool_cluster_reachable{cluster=\"staging\"} 0",
            "nspool_cluster_check_age_seconds{cluster=\"prod\"} 3.5",
            "nspool_cluster_namespaces{cluster=\"staging\",state=\"free\"} 1",
        ] {
            assert!(before.lines().any(|l| l == line), "{line} in\n{before}");
        }
        // staging left the config; prod's worker no longer checks.
        metrics.set_cluster_figures(&[gauges("prod", 2, None)]);
        let after = text(&metrics);
        assert!(!after.contains("cluster=\"staging\""), "{after}");
        assert!(!after.contains("nspool_cluster_reachable{"), "{after}");
        assert!(
            !after.contains("nspool_cluster_check_age_seconds{"),
            "{after}"
        );
        assert!(after.contains("nspool_cluster_namespaces{cluster=\"prod\",state=\"free\"} 2"));
    }
}
