//! What the pool dashboard shows, gathered for a system viewer in a few
//! statements; the HTML is `crate::http::dashboard`'s. The namespaces come a
//! page at a time (a search's matches too) and the rest as counts, so a
//! page's size and its memory are the same on a pool of any size. With
//! several clusters the page can show one of them (its namespaces, counts and
//! chart); the clusters' summary is always every cluster's.

use super::records::{Cordon, PoolEvent, ReclaimRun, all};
use super::view::PoolNamespaceView;
use super::{PoolService, Result};
use crate::config::CleanupSettings;
use crate::domain::roles::Level;
use crate::domain::{Action, Caller};
use crate::store::{ClusterRow, PoolStateCounts, StateChange};
use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// Namespaces on one dashboard page (and cells in its grid): an HTML page of
/// at most a few hundred KiB however large the pool; the rest are counted.
pub const DASHBOARD_PAGE_SIZE: usize = 200;

/// Which namespaces a dashboard page shows: those matching `search` (all
/// when empty) of `cluster` (every cluster when `None`; ignored with one
/// cluster, or when the config has no such cluster), the `page`-th
/// [`DASHBOARD_PAGE_SIZE`] of them (from 1; past the last, the last).
#[derive(Debug, Clone, Default)]
pub struct DashboardPage {
    pub search: String,
    pub page: usize,
    pub cluster: Option<Uuid>,
}

/// The chart's window: the last 7 days, hour by hour.
pub const HISTORY_HOURS: i64 = 7 * 24;

/// The pool at the start of one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPoint {
    pub hour: DateTime<Utc>,
    pub free: i64,
    pub held: i64,
    pub soft_deleted: i64,
}

/// One cluster of the config as the dashboard's summary shows it.
#[derive(Debug, Clone)]
pub struct DashboardCluster {
    pub id: Uuid,
    pub name: String,
    /// The first of the config (claims without a cluster go there).
    pub is_default: bool,
    /// Its namespaces by state (the same states as the whole pool's).
    pub counts: PoolStateCounts,
    /// Whether its API server answered its Kubernetes worker's last check
    /// (`None`: never checked, or Kubernetes is off), when, and what failed.
    pub reachable: Option<bool>,
    pub checked_at: Option<DateTime<Utc>>,
    pub check_error: Option<String>,
    /// Its pool cordon, while it holds.
    pub cordon: Option<Cordon>,
}

pub struct Dashboard {
    /// This page's namespaces, by cluster and name.
    pub namespaces: Vec<PoolNamespaceView>,
    /// The whole pool by state.
    pub counts: PoolStateCounts,
    /// Namespaces matching the search (the whole pool without one) in the
    /// cluster shown (every cluster without one).
    pub matches: usize,
    /// This page (from 1) and how many there are (at least 1).
    pub page: usize,
    pub pages: usize,
    pub runs: Vec<ReclaimRun>,
    pub events: Vec<PoolEvent>,
    pub history: Vec<HistoryPoint>,
    pub cleanup: CleanupSettings,
    pub next_reclaim: Option<DateTime<Utc>>,
    /// The default cluster's pool cordon (with one cluster, the whole pool's).
    pub pool_cordon: Option<Cordon>,
    /// Every cluster of the config, in its order, with its counts,
    /// reachability and pool cordon.
    pub clusters: Vec<DashboardCluster>,
    /// The cluster the page shows (with several; `None`: all of them).
    pub cluster: Option<Uuid>,
    /// `nspool.kubernetes.mode` is not `off`: the clusters' checks are live
    /// (with it off, a row's last check is history and is not shown).
    pub kubernetes: bool,
    /// The last config reload's outcome (this replica).
    pub reload: super::reload::ReloadStatus,
}

impl Dashboard {
    /// nspool serves several clusters: the page groups the pool by cluster.
    pub fn grouped(&self) -> bool {
        self.clusters.len() > 1
    }

    /// The cluster the page shows, when it shows one.
    pub fn shown_cluster(&self) -> Option<&DashboardCluster> {
        let id = self.cluster?;
        self.clusters.iter().find(|c| c.id == id)
    }

    /// The counts the page shows: the cluster's it shows, else the whole pool's.
    pub fn shown_counts(&self) -> &PoolStateCounts {
        self.shown_cluster().map_or(&self.counts, |c| &c.counts)
    }

    /// The name of the cluster `id` (`None`: one the config no longer lists).
    pub fn cluster_name(&self, id: Uuid) -> Option<&str> {
        self.clusters
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.as_str())
    }
}

/// Free, held and soft-deleted namespaces at one moment: what the chart draws.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    free: i64,
    held: i64,
    soft_deleted: i64,
}

impl Tally {
    /// Counts one namespace in `state` (`by` 1) or no longer (`by` -1).
    fn count(&mut self, state: &str, by: i64) {
        match state {
            "free" => self.free += by,
            "held" => self.held += by,
            "soft_deleted" => self.soft_deleted += by,
            _ => {}
        }
    }

    fn add(mut self, other: &Tally) -> Tally {
        self.free += other.free;
        self.held += other.held;
        self.soft_deleted += other.soft_deleted;
        self
    }

    fn at(self, hour: DateTime<Utc>) -> HistoryPoint {
        HistoryPoint {
            hour,
            free: self.free,
            held: self.held,
            soft_deleted: self.soft_deleted,
        }
    }
}

/// The cluster part of a history key (`<cluster id>/<name>`; `-` for an
/// event of no cluster's, `` for a key without one).
fn cluster_of(namespace: &str) -> &str {
    namespace.split_once('/').map_or("", |(cluster, _)| cluster)
}

/// The pool's history, hour by hour and cluster by cluster, kept per
/// replica and brought up to date with only the events since it was last
/// read: the event log is read whole once (at start), then an hour at a
/// time. The tallies are kept as the events are folded in, so a point costs
/// the number of clusters, not of namespaces.
#[derive(Default)]
pub struct History {
    /// Each namespace's state after the events folded in so far.
    states: HashMap<String, String>,
    /// `states` counted, per cluster (the key's part before `/`).
    tallies: HashMap<String, Tally>,
    /// Points at whole hours, oldest first, each per cluster; the last is
    /// `folded_until`.
    points: Vec<(DateTime<Utc>, HashMap<String, Tally>)>,
    folded_until: Option<DateTime<Utc>>,
}

impl History {
    /// Folds `changes` (in order, all before `until`) in, with a point at
    /// each whole hour they pass, up to and including `until`.
    pub fn fold(&mut self, changes: &[StateChange], until: DateTime<Utc>) {
        let mut next_hour = self
            .folded_until
            .map(|at| at + Duration::hours(1))
            .unwrap_or(until);
        for change in changes {
            while change.at >= next_hour && next_hour <= until {
                self.push_point(next_hour);
                next_hour += Duration::hours(1);
            }
            self.apply(change);
        }
        while next_hour <= until {
            self.push_point(next_hour);
            next_hour += Duration::hours(1);
        }
        self.folded_until = Some(until);
        let oldest = until - Duration::hours(HISTORY_HOURS);
        self.points.retain(|(hour, _)| *hour >= oldest);
    }

    fn apply(&mut self, change: &StateChange) {
        let tally = self
            .tallies
            .entry(cluster_of(&change.namespace).to_owned())
            .or_default();
        tally.count(&change.state, 1);
        if let Some(before) = self
            .states
            .insert(change.namespace.clone(), change.state.clone())
        {
            tally.count(&before, -1);
        }
    }

    fn push_point(&mut self, hour: DateTime<Utc>) {
        self.points.push((hour, self.tallies.clone()));
    }

    /// The whole pool's hourly points, then `now`.
    pub fn points_with(&self, now: HistoryPoint) -> Vec<HistoryPoint> {
        self.points_of(None, now)
    }

    /// The hourly points of `cluster` (its id as the history keys it; the
    /// whole pool when `None`), then `now`.
    pub fn points_of(&self, cluster: Option<&str>, now: HistoryPoint) -> Vec<HistoryPoint> {
        let mut points: Vec<HistoryPoint> = self
            .points
            .iter()
            .map(|(hour, tallies)| {
                let tally = match cluster {
                    Some(cluster) => tallies.get(cluster).copied().unwrap_or_default(),
                    None => tallies.values().fold(Tally::default(), |sum, t| sum.add(t)),
                };
                tally.at(*hour)
            })
            .collect();
        points.push(now);
        points
    }
}

/// The pool of `counts` as the chart's last point, at `now`.
fn live_point(counts: &PoolStateCounts, now: DateTime<Utc>) -> HistoryPoint {
    HistoryPoint {
        hour: now,
        // Broken, pending, releasing and cordoned namespaces are free in the
        // event log's terms (the hourly points before this one count them so).
        free: counts.free + counts.broken + counts.pending + counts.releasing + counts.cordoned,
        held: counts.held,
        soft_deleted: counts.soft_deleted,
    }
}

/// The config's clusters with what the database says of each.
fn dashboard_clusters(
    settings: &crate::config::Settings,
    rows: &[ClusterRow],
    counts: &[(Uuid, PoolStateCounts)],
    cordons: &[(Uuid, crate::store::PoolCordonRow)],
) -> Vec<DashboardCluster> {
    settings
        .clusters
        .iter()
        .enumerate()
        .map(|(i, cluster)| {
            let row = rows.iter().find(|r| r.id == cluster.id);
            DashboardCluster {
                id: cluster.id,
                name: cluster.name.clone(),
                is_default: i == 0,
                counts: counts
                    .iter()
                    .find(|(id, _)| *id == cluster.id)
                    .map_or_else(PoolStateCounts::empty, |(_, c)| *c),
                reachable: row.and_then(|r| r.reachable),
                checked_at: row.and_then(|r| r.checked_at),
                check_error: row.and_then(|r| r.check_error.clone()),
                cordon: cordons
                    .iter()
                    .find(|(id, _)| *id == cluster.id)
                    .map(|(_, c)| Cordon::from(c.clone())),
            }
        })
        .collect()
}

impl PoolService {
    pub async fn dashboard(&self, caller: &Caller, shown: &DashboardPage) -> Result<Dashboard> {
        caller.authorize(Action::System(Level::Viewer))?;
        let now = Utc::now();
        let settings = self.settings();
        let search = Some(shown.search.as_str()).filter(|s| !s.is_empty());
        if let Some(search) = search {
            crate::domain::text::check("search", search, crate::domain::text::max::FILTER)?;
        }
        // One cluster shown only when there are several to choose from.
        let cluster = shown
            .cluster
            .filter(|_| settings.clusters.len() > 1)
            .and_then(|id| settings.cluster(id))
            .map(|c| c.id);
        let (matches, counts, clusters) = tokio::try_join!(
            async { Ok::<_, super::Error>(self.store.pool_matches(cluster, search).await?) },
            async { Ok(self.store.pool_state_counts().await?) },
            self.dashboard_clusters(&settings),
        )?;
        let matches = usize::try_from(matches).unwrap_or(0);
        let pages = matches.div_ceil(DASHBOARD_PAGE_SIZE).max(1);
        let page = shown.page.clamp(1, pages);
        let offset = i64::try_from((page - 1) * DASHBOARD_PAGE_SIZE).unwrap_or(i64::MAX);
        let size = i64::try_from(DASHBOARD_PAGE_SIZE).unwrap_or(i64::MAX);
        let (namespaces, runs, events, ()) = tokio::try_join!(
            async {
                let rows = self.store.pool_page(cluster, search, offset, size).await?;
                self.views_of(rows).await
            },
            async { Ok(all(self.store.reclaim_runs(10).await?)) },
            async { Ok(all(self.store.events(None, None, 25).await?)) },
            self.fold_history_until(now),
        )?;
        let cleanup = settings.cleanup.clone();
        let next_reclaim = cleanup
            .enabled
            .then(|| cleanup.schedule.next_after(now))
            .flatten();
        let mut dashboard = Dashboard {
            namespaces,
            counts,
            matches,
            page,
            pages,
            runs,
            events,
            history: Vec::new(),
            cleanup,
            next_reclaim,
            pool_cordon: clusters.first().and_then(|c| c.cordon.clone()),
            clusters,
            cluster,
            kubernetes: settings.service.kubernetes_mode != crate::config::KubernetesMode::Off,
            reload: self.reload_status(),
        };
        let live = live_point(dashboard.shown_counts(), now);
        let key = cluster.map(|id| id.to_string());
        dashboard.history = self.history.lock().await.points_of(key.as_deref(), live);
        Ok(dashboard)
    }

    /// Every cluster of the config with its counts, reachability and pool
    /// cordon (three statements, whatever the number of clusters).
    async fn dashboard_clusters(
        &self,
        settings: &crate::config::Settings,
    ) -> Result<Vec<DashboardCluster>> {
        let (rows, counts, cordons) = tokio::try_join!(
            self.store.clusters(),
            self.store.cluster_state_counts(),
            self.store.pool_cordons(),
        )?;
        Ok(dashboard_clusters(settings, &rows, &counts, &cordons))
    }

    /// Reads the event log for the dashboard's chart once, so that no request
    /// waits for it (`serve` calls this in the background at start).
    pub async fn warm_dashboard(&self) {
        if let Err(error) = self.fold_history_until(Utc::now()).await {
            tracing::debug!(%error, "the dashboard's history waits for the first request");
        }
    }

    /// Brings the hourly history up to the hour of `now` (the last 7 days).
    async fn fold_history_until(&self, now: DateTime<Utc>) -> Result<()> {
        let hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
        let mut history = self.history.lock().await;
        match history.folded_until {
            Some(until) if until == hour => {}
            // An hour or more passed: fold in just those events.
            Some(until) if until > hour - Duration::hours(HISTORY_HOURS) => {
                let changes = self.store.state_changes(until, hour).await?;
                history.fold(&changes, hour);
            }
            // First read (or a long pause): the whole window, once.
            _ => {
                let start = hour - Duration::hours(HISTORY_HOURS);
                let mut fresh = History::default();
                fresh.fold(&self.store.states_before(start).await?, start);
                fresh.fold(&self.store.state_changes(start, hour).await?, hour);
                *history = fresh;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_last_point_counts_free_as_the_event_log_does() {
        let counts = PoolStateCounts {
            free: 1,
            broken: 1,
            pending: 1,
            releasing: 1,
            cordoned: 2,
            held: 3,
            soft_deleted: 4,
            ..PoolStateCounts::empty()
        };
        let point = live_point(&counts, Utc::now());
        // A cordon is no state change in the log: a cordoned one is free there.
        assert_eq!((point.free, point.held, point.soft_deleted), (6, 3, 4));
    }

    fn change(start: DateTime<Utc>, minutes: i64, namespace: &str, state: &str) -> StateChange {
        StateChange {
            namespace: namespace.into(),
            at: start + Duration::minutes(minutes),
            state: state.into(),
        }
    }

    /// The hourly points of `cluster` (the whole pool: `None`) as (free, held, soft-deleted).
    fn counts(history: &History, cluster: Option<&str>) -> Vec<(i64, i64, i64)> {
        let mut points = history.points_of(cluster, Tally::default().at(DateTime::<Utc>::MIN_UTC));
        points.pop();
        points
            .iter()
            .map(|p| (p.free, p.held, p.soft_deleted))
            .collect()
    }

    #[test]
    fn history_folds_events_into_hourly_points_and_keeps_seven_days() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut history = History::default();
        // Before the window: a and b free, c held.
        history.fold(
            &[
                change(start, -90, "a", "free"),
                change(start, -80, "b", "free"),
                change(start, -70, "c", "held"),
            ],
            start,
        );
        // In the first hours: a claimed at 0:30, c soft-deleted at 1:10.
        history.fold(
            &[
                change(start, 30, "a", "held"),
                change(start, 70, "c", "soft_deleted"),
            ],
            start + Duration::hours(2),
        );
        assert_eq!(counts(&history, None), [(2, 1, 0), (1, 2, 0), (1, 1, 1)]);
        // Later hours with nothing new repeat the counts; old points go.
        history.fold(&[], start + Duration::hours(HISTORY_HOURS + 5));
        assert_eq!(history.points.len() as i64, HISTORY_HOURS + 1);
        assert_eq!(counts(&history, None).last(), Some(&(1, 1, 1)));
    }

    #[test]
    fn history_is_kept_per_cluster_and_one_name_in_two_clusters_is_two_namespaces() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let (prod, staging) = ("11111111-1111-4111-8111-111111111111", "2222");
        let mut history = History::default();
        history.fold(
            &[
                change(start, -90, &format!("{prod}/team-a"), "free"),
                change(start, -80, &format!("{prod}/team-b"), "free"),
                change(start, -70, &format!("{staging}/team-a"), "free"),
            ],
            start,
        );
        // team-a claimed in staging only; prod's team-a stays free.
        history.fold(
            &[change(start, 30, &format!("{staging}/team-a"), "held")],
            start + Duration::hours(1),
        );
        assert_eq!(counts(&history, Some(prod)), [(2, 0, 0), (2, 0, 0)]);
        assert_eq!(counts(&history, Some(staging)), [(1, 0, 0), (0, 1, 0)]);
        assert_eq!(counts(&history, None), [(3, 0, 0), (2, 1, 0)]);
        assert_eq!(counts(&history, Some("no-such")), [(0, 0, 0), (0, 0, 0)]);
    }
}
