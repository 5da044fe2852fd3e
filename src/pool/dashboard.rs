//! What the pool dashboard shows, gathered for a system viewer in a few
//! statements; the HTML is `crate::http::dashboard`'s.

use super::view::PoolNamespaceView;
use super::{PoolService, Result};
use crate::config::CleanupSettings;
use crate::domain::roles::Level;
use crate::domain::{Action, Caller};
use crate::store::{EventRow, ReclaimRunRow, StateChange};
use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};

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

pub struct Dashboard<'a> {
    pub namespaces: Vec<PoolNamespaceView>,
    pub runs: Vec<ReclaimRunRow>,
    pub events: Vec<EventRow>,
    pub history: Vec<HistoryPoint>,
    pub cleanup: &'a CleanupSettings,
    pub next_reclaim: Option<DateTime<Utc>>,
}

/// Hourly points from the counts at `start` and the hourly changes after it
/// (each change counts from the end of its hour), and a last point at `now`
/// with every change so far.
pub fn history_points(
    start: DateTime<Utc>,
    hours: i64,
    now: DateTime<Utc>,
    changes: &[StateChange],
) -> Vec<HistoryPoint> {
    let mut counts = std::collections::HashMap::<&str, i64>::new();
    let mut changes = changes.iter().peekable();
    while let Some(change) = changes.next_if(|c| c.hour.is_none()) {
        *counts.entry(change.state.as_str()).or_default() += change.delta;
    }
    let mut points = Vec::new();
    for i in 0..=hours {
        let hour = start + Duration::hours(i);
        while let Some(change) = changes.next_if(|c| c.hour.is_some_and(|h| h < hour)) {
            *counts.entry(change.state.as_str()).or_default() += change.delta;
        }
        let get = |state: &str| counts.get(state).copied().unwrap_or(0).max(0);
        points.push(HistoryPoint {
            hour,
            free: get("free"),
            held: get("held"),
            soft_deleted: get("soft_deleted"),
        });
    }
    for change in changes {
        *counts.entry(change.state.as_str()).or_default() += change.delta;
    }
    let get = |state: &str| counts.get(state).copied().unwrap_or(0).max(0);
    points.push(HistoryPoint {
        hour: now,
        free: get("free"),
        held: get("held"),
        soft_deleted: get("soft_deleted"),
    });
    points
}

impl PoolService {
    pub async fn dashboard(&self, caller: &Caller) -> Result<Dashboard<'_>> {
        caller.authorize(Action::System(Level::Viewer))?;
        let now = Utc::now();
        let start =
            now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now) - Duration::hours(HISTORY_HOURS);
        let (namespaces, runs, events, changes) = tokio::try_join!(
            self.pool_view(caller),
            async { Ok(self.store.reclaim_runs(10).await?) },
            async { Ok(self.store.events(None, 25).await?) },
            async { Ok(self.store.pool_history(start).await?) },
        )?;
        let cleanup = &self.settings.cleanup;
        Ok(Dashboard {
            namespaces,
            runs,
            events,
            history: history_points(start, HISTORY_HOURS, now, &changes),
            cleanup,
            next_reclaim: cleanup
                .enabled
                .then(|| cleanup.schedule.next_after(now))
                .flatten(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn change(hour: Option<i64>, state: &str, delta: i64) -> StateChange {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        StateChange {
            hour: hour.map(|h| start + Duration::hours(h)),
            state: state.into(),
            delta,
        }
    }

    #[test]
    fn changes_apply_from_the_end_of_their_hour() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let changes = [
            change(None, "free", 3),
            change(None, "held", 1),
            change(Some(1), "free", -1),
            change(Some(1), "held", 1),
            change(Some(2), "held", -1),
            change(Some(2), "soft_deleted", 1),
        ];
        let now = start + Duration::minutes(150);
        let points = history_points(start, 2, now, &changes);
        let counts: Vec<_> = points
            .iter()
            .map(|p| (p.free, p.held, p.soft_deleted))
            .collect();
        // Hours 0, 1, 2, then now (hour 2's changes included).
        assert_eq!(counts, [(3, 1, 0), (3, 1, 0), (2, 2, 0), (2, 1, 1)]);
        assert_eq!(points[2].hour, start + Duration::hours(2));
        assert_eq!(points[3].hour, now);
    }
}
