//! What the pool dashboard shows, gathered for a system viewer in a few
//! statements; the HTML is `crate::http::dashboard`'s. The namespaces come a
//! page at a time (a search's matches too) and the rest as counts, so a
//! page's size and its memory are the same on a pool of any size.

use super::records::{Cordon, PoolEvent, ReclaimRun, all};
use super::view::PoolNamespaceView;
use super::{PoolService, Result};
use crate::config::CleanupSettings;
use crate::domain::roles::Level;
use crate::domain::{Action, Caller};
use crate::store::{PoolStateCounts, StateChange};
use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use std::collections::HashMap;

/// Namespaces on one dashboard page (and cells in its grid): an HTML page of
/// at most a few hundred KiB however large the pool; the rest are counted.
pub const DASHBOARD_PAGE_SIZE: usize = 200;

/// Which namespaces a dashboard page shows: those matching `search` (all
/// when empty), the `page`-th [`DASHBOARD_PAGE_SIZE`] of them (from 1; past
/// the last, the last).
#[derive(Debug, Clone, Default)]
pub struct DashboardPage {
    pub search: String,
    pub page: usize,
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

pub struct Dashboard {
    /// This page's namespaces, by name.
    pub namespaces: Vec<PoolNamespaceView>,
    /// The whole pool by state.
    pub counts: PoolStateCounts,
    /// Namespaces matching the search (the whole pool without one).
    pub matches: usize,
    /// This page (from 1) and how many there are (at least 1).
    pub page: usize,
    pub pages: usize,
    pub runs: Vec<ReclaimRun>,
    pub events: Vec<PoolEvent>,
    pub history: Vec<HistoryPoint>,
    pub cleanup: CleanupSettings,
    pub next_reclaim: Option<DateTime<Utc>>,
    /// The whole pool's cordon, while it holds.
    /// The default cluster's pool cordon.
    pub pool_cordon: Option<Cordon>,
    /// Every cluster with its counts and reachability.
    pub clusters: Vec<super::clusters::ClusterView>,
    /// The last config reload's outcome (this replica).
    pub reload: super::reload::ReloadStatus,
}

/// The pool's history, hour by hour, kept per replica and brought up to date
/// with only the events since it was last read: the event log is read whole
/// once (at start), then an hour at a time.
#[derive(Default)]
pub struct History {
    /// Each namespace's state after the events folded in so far.
    states: HashMap<String, String>,
    /// Points at whole hours, oldest first; the last is `folded_until`.
    points: Vec<HistoryPoint>,
    folded_until: Option<DateTime<Utc>>,
}

impl History {
    fn count(&self) -> HistoryPoint {
        let mut point = HistoryPoint {
            hour: DateTime::<Utc>::MIN_UTC,
            free: 0,
            held: 0,
            soft_deleted: 0,
        };
        for state in self.states.values() {
            match state.as_str() {
                "free" => point.free += 1,
                "held" => point.held += 1,
                "soft_deleted" => point.soft_deleted += 1,
                _ => {}
            }
        }
        point
    }

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
            self.states
                .insert(change.namespace.clone(), change.state.clone());
        }
        while next_hour <= until {
            self.push_point(next_hour);
            next_hour += Duration::hours(1);
        }
        self.folded_until = Some(until);
        let oldest = until - Duration::hours(HISTORY_HOURS);
        self.points.retain(|p| p.hour >= oldest);
    }

    fn push_point(&mut self, hour: DateTime<Utc>) {
        let mut point = self.count();
        point.hour = hour;
        self.points.push(point);
    }

    /// The hourly points, then `now` with `live` counts.
    pub fn points_with(&self, now: HistoryPoint) -> Vec<HistoryPoint> {
        let mut points = self.points.clone();
        points.push(now);
        points
    }
}

impl PoolService {
    pub async fn dashboard(&self, caller: &Caller, shown: &DashboardPage) -> Result<Dashboard> {
        caller.authorize(Action::System(Level::Viewer))?;
        let now = Utc::now();
        let search = Some(shown.search.as_str()).filter(|s| !s.is_empty());
        if let Some(search) = search {
            crate::domain::text::check("search", search, crate::domain::text::max::FILTER)?;
        }
        let (matches, counts) = tokio::try_join!(
            async { Ok::<_, super::Error>(self.store.pool_matches(None, search).await?) },
            async { Ok(self.store.pool_state_counts().await?) },
        )?;
        let matches = usize::try_from(matches).unwrap_or(0);
        let pages = matches.div_ceil(DASHBOARD_PAGE_SIZE).max(1);
        let page = shown.page.clamp(1, pages);
        let offset = i64::try_from((page - 1) * DASHBOARD_PAGE_SIZE).unwrap_or(i64::MAX);
        let size = i64::try_from(DASHBOARD_PAGE_SIZE).unwrap_or(i64::MAX);
        let (namespaces, runs, events, history, pool_cordon) = tokio::try_join!(
            async {
                let rows = self.store.pool_page(None, search, offset, size).await?;
                self.views_of(rows).await
            },
            async { Ok(all(self.store.reclaim_runs(10).await?)) },
            async { Ok(all(self.store.events(None, None, 25).await?)) },
            self.history_until(now),
            async {
                let cluster = self.settings().default_cluster().id;
                Ok(self.store.pool_cordon(cluster).await?.map(Cordon::from))
            },
        )?;
        let clusters = self.clusters(caller).await?;
        let cleanup = self.settings().cleanup.clone();
        let next_reclaim = cleanup
            .enabled
            .then(|| cleanup.schedule.next_after(now))
            .flatten();
        Ok(Dashboard {
            namespaces,
            counts,
            matches,
            page,
            pages,
            runs,
            events,
            history,
            cleanup,
            next_reclaim,
            pool_cordon,
            clusters,
            reload: self.reload_status(),
        })
    }

    /// Reads the event log for the dashboard's chart once, so that no request
    /// waits for it (`serve` calls this in the background at start).
    pub async fn warm_dashboard(&self) {
        if let Err(error) = self.history_until(Utc::now()).await {
            tracing::debug!(%error, "the dashboard's history waits for the first request");
        }
    }

    /// The last 7 days hour by hour, then `now` from the pool table itself.
    async fn history_until(&self, now: DateTime<Utc>) -> Result<Vec<HistoryPoint>> {
        let hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
        {
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
        }
        let counts = self.store.pool_state_counts().await?;
        let live = HistoryPoint {
            hour: now,
            // Broken, pending and releasing namespaces are free in the event log's terms.
            free: counts.free + counts.broken + counts.pending + counts.releasing,
            held: counts.held,
            soft_deleted: counts.soft_deleted,
        };
        Ok(self.history.lock().await.points_with(live))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn change(start: DateTime<Utc>, minutes: i64, namespace: &str, state: &str) -> StateChange {
        StateChange {
            namespace: namespace.into(),
            at: start + Duration::minutes(minutes),
            state: state.into(),
        }
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
        let counts: Vec<_> = history
            .points
            .iter()
            .map(|p| (p.free, p.held, p.soft_deleted))
            .collect();
        assert_eq!(counts, [(2, 1, 0), (1, 2, 0), (1, 1, 1)]);
        // Later hours with nothing new repeat the counts; old points go.
        history.fold(&[], start + Duration::hours(HISTORY_HOURS + 5));
        assert_eq!(history.points.len() as i64, HISTORY_HOURS + 1);
        assert_eq!(
            history
                .points
                .last()
                .map(|p| (p.free, p.held, p.soft_deleted)),
            Some((1, 1, 1))
        );
    }
}
