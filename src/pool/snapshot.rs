//! The offered namespaces in memory, one copy per replica, kept exact by the
//! pool generations PostgreSQL numbers and announces (migration
//! `20261130000001_pool_generation`). Reads use it only while it is known to be
//! whole; otherwise they go to the database. Claims never use it: the claim is
//! the database's one conditional statement, so a stale "free" at worst gives
//! a clean CONFLICT.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// One `nspool_pool` notification: `"<generation>.<sequence> +name -name …"`
/// or `"<generation>.<sequence> *"` (too many names: reload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub generation: i64,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Names now offered (`true`) or no longer offered (`false`).
    Names(Vec<(bool, String)>),
    Reload,
}

impl Message {
    /// `None` for a payload nspool does not write (then the caller reloads).
    pub fn parse(payload: &str) -> Option<Self> {
        let (stamp, rest) = payload.split_once(' ')?;
        let (generation, sequence) = stamp.split_once('.')?;
        let generation = generation.parse().ok()?;
        sequence.parse::<u32>().ok()?;
        let change = if rest == "*" {
            Change::Reload
        } else {
            let names = rest
                .split(' ')
                .map(|item| match item.split_at_checked(1) {
                    Some(("+", name)) if !name.is_empty() => Some((true, name.to_owned())),
                    Some(("-", name)) if !name.is_empty() => Some((false, name.to_owned())),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            Change::Names(names)
        };
        Some(Self { generation, change })
    }
}

/// What [`PoolSnapshot::apply`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The snapshot now holds the message's generation.
    Applied,
    /// Older than the snapshot: already in it.
    Ignored,
    /// A generation was missed (or the message asks for it): the snapshot is
    /// dropped and must be loaded again.
    Reload,
    /// Not loaded: nothing to apply to.
    NotLoaded,
}

#[derive(Default)]
struct State {
    /// `None`: not loaded (start, a lost listener, a gap): reads go to the database.
    generation: Option<i64>,
    offered: BTreeSet<String>,
    /// The sorted list handed to readers, built at most once per generation.
    list: Option<Arc<[String]>>,
}

pub struct PoolSnapshot {
    state: RwLock<State>,
    /// The loaded generation, for writers waiting to read their own write.
    generation: watch::Sender<Option<i64>>,
    /// Asks the listener to load the snapshot again.
    reload: Notify,
}

impl Default for PoolSnapshot {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            generation: watch::Sender::new(None),
            reload: Notify::new(),
        }
    }
}

impl PoolSnapshot {
    /// The whole offered set as of `generation` (one database read).
    pub fn load(&self, generation: i64, names: Vec<String>) {
        let mut state = self.write();
        state.offered = names.into_iter().collect();
        state.generation = Some(generation);
        state.list = None;
        drop(state);
        self.generation.send_replace(Some(generation));
    }

    /// Forget everything until the next load; reads go to the database.
    pub fn drop_all(&self) {
        let mut state = self.write();
        *state = State::default();
        drop(state);
        self.generation.send_replace(None);
    }

    /// Drops the snapshot and wakes the listener to load it again.
    pub fn invalidate(&self) {
        self.drop_all();
        self.reload.notify_one();
    }

    /// Resolves when someone asked for a reload.
    pub async fn reload_requested(&self) {
        self.reload.notified().await;
    }

    /// Generations commit in order and without gaps, and one transaction's
    /// messages arrive together; so the next generation or the current one
    /// (more messages of the same transaction, or its messages arriving after
    /// a load that already saw it: setting a name's state twice is harmless)
    /// apply, older ones are already in, and anything else is a gap.
    pub fn apply(&self, message: &Message) -> Applied {
        let mut state = self.write();
        let Some(current) = state.generation else {
            return Applied::NotLoaded;
        };
        let next = message.generation;
        if next < current {
            return Applied::Ignored;
        }
        let names = match &message.change {
            Change::Names(names) if next == current || next == current + 1 => names,
            _ => {
                *state = State::default();
                drop(state);
                self.generation.send_replace(None);
                return Applied::Reload;
            }
        };
        for (offered, name) in names {
            if *offered {
                state.offered.insert(name.clone());
            } else {
                state.offered.remove(name);
            }
        }
        state.generation = Some(next);
        state.list = None;
        drop(state);
        self.generation.send_replace(Some(next));
        Applied::Applied
    }

    /// The offered names in name order and their generation, when loaded.
    pub fn offered(&self) -> Option<(i64, Arc<[String]>)> {
        {
            let state = self.read();
            let generation = state.generation?;
            if let Some(list) = &state.list {
                return Some((generation, list.clone()));
            }
        }
        let mut state = self.write();
        let generation = state.generation?;
        if let Some(list) = &state.list {
            return Some((generation, list.clone()));
        }
        let list: Arc<[String]> = state.offered.iter().cloned().collect();
        state.list = Some(list.clone());
        Some((generation, list))
    }

    /// The loaded generation (`None`: reads go to the database).
    pub fn generation(&self) -> Option<i64> {
        self.read().generation
    }

    /// Waits until this replica's reads include `generation`, which a write
    /// of this replica just committed: a client reads its own writes. When the
    /// message is late beyond `wait`, the snapshot is dropped (reads then go
    /// to the database, which has the write) and loaded again.
    pub async fn caught_up(&self, generation: i64, wait: Duration) {
        let mut seen = self.generation.subscribe();
        let reached = tokio::time::timeout(
            wait,
            seen.wait_for(|loaded| loaded.is_none_or(|at| at >= generation)),
        )
        .await;
        if !matches!(reached, Ok(Ok(_))) {
            tracing::warn!(
                generation,
                "the pool change notice was late; reading the pool from the database until it is reloaded"
            );
            self.invalidate();
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed
        // in a way that matters more than losing it: recover the guard.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(snapshot: &PoolSnapshot) -> Vec<String> {
        snapshot
            .offered()
            .map(|(_, list)| list.to_vec())
            .unwrap_or_default()
    }

    fn message(payload: &str) -> Message {
        Message::parse(payload).expect(payload)
    }

    #[test]
    fn payloads_parse_and_garbage_does_not() {
        assert_eq!(
            message("7.1 +a -b"),
            Message {
                generation: 7,
                change: Change::Names(vec![(true, "a".into()), (false, "b".into())])
            }
        );
        assert_eq!(message("8.2 *").change, Change::Reload);
        for bad in ["", "7", "7.1", "x.1 +a", "7.1 a", "7.1 +", "7.1 +a  -b", "7 +a"] {
            assert_eq!(Message::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn next_and_same_generation_apply_older_ignored_gaps_reload() {
        let s = PoolSnapshot::default();
        assert_eq!(s.apply(&message("1.1 +a")), Applied::NotLoaded);
        s.load(5, vec!["b".into(), "a".into()]);
        assert_eq!(names(&s), ["a", "b"]);
        assert_eq!(s.apply(&message("5.1 -a")), Applied::Applied);
        assert_eq!(s.apply(&message("4.1 +z")), Applied::Ignored);
        assert_eq!(s.apply(&message("6.1 +c")), Applied::Applied);
        assert_eq!(s.apply(&message("6.2 -b")), Applied::Applied);
        assert_eq!(names(&s), ["c"]);
        assert_eq!(s.generation(), Some(6));
        assert_eq!(s.apply(&message("8.1 +d")), Applied::Reload);
        assert_eq!(s.offered(), None);
        s.load(8, vec!["d".into()]);
        assert_eq!(s.apply(&message("9.1 *")), Applied::Reload);
        assert_eq!(s.generation(), None);
    }

    #[test]
    fn the_list_is_rebuilt_only_after_a_change() {
        let s = PoolSnapshot::default();
        s.load(1, vec!["a".into()]);
        let (_, first) = s.offered().expect("loaded");
        let (_, again) = s.offered().expect("loaded");
        assert!(Arc::ptr_eq(&first, &again));
        s.apply(&message("2.1 +b"));
        let (generation, after) = s.offered().expect("loaded");
        assert_eq!((generation, after.to_vec()), (2, vec!["a".into(), "b".into()]));
    }

    #[tokio::test]
    async fn a_writer_waits_for_its_generation_and_a_late_one_drops_the_snapshot() {
        let s = Arc::new(PoolSnapshot::default());
        // Not loaded: reads go to the database, nothing to wait for.
        s.caught_up(3, Duration::from_secs(5)).await;
        s.load(2, vec![]);
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.caught_up(3, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        s.apply(&message("3.1 +a"));
        waiter.await.expect("waiter");
        assert_eq!(s.generation(), Some(3));
        s.caught_up(4, Duration::from_millis(10)).await;
        assert_eq!(s.generation(), None, "a late notice drops the snapshot");
    }
}
