//! The offered namespaces in memory, one copy per replica, kept exact by the
//! change notices PostgreSQL sends in commit order (migration
//! `20261130000001_pool_generation`). Reads use it only while it is known to
//! be whole; otherwise they go to the database. Claims never use it: the
//! claim is the database's one conditional statement, so a stale "free" at
//! worst gives a clean CONFLICT.
//!
//! Loading: the listener LISTENs, reads the offered set, then sends itself a
//! `sync` marker. Notices of transactions that committed before the read may
//! still be queued behind it; replayed in commit order they end where the
//! read was, and they all come before the marker. So the copy serves reads
//! from the marker on, never from a replay half done.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// One `nspool_pool` notice: `"<generation>.<sequence> +name -name …"`,
/// `"<generation>.<sequence> *"` (too many names: reload), or
/// `"sync <marker>"` (a replica's load marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Changes {
        generation: i64,
        /// Names now offered (`true`) or no longer offered (`false`).
        names: Vec<(bool, String)>,
    },
    Reload,
    Sync(String),
}

impl Message {
    /// `None` for a payload nspool does not write (then the caller reloads).
    pub fn parse(payload: &str) -> Option<Self> {
        let (stamp, rest) = payload.split_once(' ')?;
        if stamp == "sync" {
            return Some(Self::Sync(rest.to_owned()));
        }
        let (generation, sequence) = stamp.split_once('.')?;
        let generation = generation.parse().ok()?;
        sequence.parse::<u32>().ok()?;
        if rest == "*" {
            return Some(Self::Reload);
        }
        let names = rest
            .split(' ')
            .map(|item| match item.split_at_checked(1) {
                Some(("+", name)) if !name.is_empty() => Some((true, name.to_owned())),
                Some(("-", name)) if !name.is_empty() => Some((false, name.to_owned())),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self::Changes { generation, names })
    }
}

/// What [`PoolSnapshot::apply`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// The copy is whole from here on: reads use it.
    Serving,
    /// Someone else's marker.
    Ignored,
    /// The copy is dropped and must be loaded again.
    Reload,
    /// Not loaded: nothing to apply to (the next load includes it).
    NotLoaded,
}

/// Generations remembered as applied, for writers waiting on their own.
const REMEMBERED: usize = 65_536;

#[derive(Default)]
struct State {
    /// Loaded: notices apply. Serving: reads use it.
    loaded: bool,
    serving: bool,
    /// The marker this load waits for.
    marker: Option<String>,
    /// When the current load read the database: every write that committed
    /// before is in it.
    loaded_at: Option<Instant>,
    offered: BTreeSet<String>,
    /// The whole pool is cordoned: clients are offered nothing, while
    /// `offered` keeps following the free namespaces underneath.
    pool_cordoned: bool,
    /// Changes on this replica's copy, to tell cached answers apart.
    version: u64,
    applied: HashSet<i64>,
    applied_order: VecDeque<i64>,
    /// The sorted list handed to readers, built at most once per version.
    list: Option<Arc<[String]>>,
}

impl State {
    fn reset(&mut self) {
        let version = self.version;
        *self = State::default();
        self.version = version + 1;
    }
}

pub struct PoolSnapshot {
    state: RwLock<State>,
    /// Bumped at every change, to wake writers waiting for their own.
    changed: watch::Sender<u64>,
    /// Asks the listener to load the copy again.
    reload: Notify,
}

impl Default for PoolSnapshot {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            changed: watch::Sender::new(0),
            reload: Notify::new(),
        }
    }
}

impl PoolSnapshot {
    /// The offered set and the pool cordon as read at `read_at` (one
    /// database read); serving once the notice `sync <marker>` comes back.
    /// (A change of the pool cordon is a `*` notice: every replica loads again.)
    pub fn load(&self, names: Vec<String>, pool_cordoned: bool, read_at: Instant, marker: String) {
        let mut state = self.write();
        state.reset();
        state.loaded = true;
        state.pool_cordoned = pool_cordoned;
        state.marker = Some(marker);
        state.loaded_at = Some(read_at);
        state.offered = names.into_iter().collect();
        self.publish(state);
    }

    /// Forget everything until the next load; reads go to the database.
    pub fn drop_all(&self) {
        let mut state = self.write();
        state.reset();
        self.publish(state);
    }

    /// Drops the copy and wakes the listener to load it again.
    pub fn invalidate(&self) {
        self.drop_all();
        self.reload.notify_one();
    }

    /// Resolves when someone asked for a reload.
    pub async fn reload_requested(&self) {
        self.reload.notified().await;
    }

    /// Notices arrive in commit order: each one's names are set as it says.
    pub fn apply(&self, message: &Message) -> Applied {
        let mut state = self.write();
        if !state.loaded {
            return Applied::NotLoaded;
        }
        let outcome = match message {
            Message::Reload => {
                state.reset();
                Applied::Reload
            }
            Message::Sync(marker) if state.marker.as_ref() == Some(marker) => {
                state.marker = None;
                state.serving = true;
                Applied::Serving
            }
            Message::Sync(_) => return Applied::Ignored,
            Message::Changes { generation, names } => {
                for (offered, name) in names {
                    if *offered {
                        state.offered.insert(name.clone());
                    } else {
                        state.offered.remove(name);
                    }
                }
                if state.applied.insert(*generation) {
                    state.applied_order.push_back(*generation);
                    if state.applied_order.len() > REMEMBERED
                        && let Some(oldest) = state.applied_order.pop_front()
                    {
                        state.applied.remove(&oldest);
                    }
                }
                state.version += 1;
                state.list = None;
                Applied::Applied
            }
        };
        self.publish(state);
        outcome
    }

    /// The names offered to clients in name order (none while the pool is
    /// cordoned) and the copy's version, while serving.
    pub fn offered(&self) -> Option<(u64, Arc<[String]>)> {
        {
            let state = self.read();
            if !state.serving {
                return None;
            }
            if let Some(list) = &state.list {
                return Some((state.version, list.clone()));
            }
        }
        let mut state = self.write();
        if !state.serving {
            return None;
        }
        if let Some(list) = &state.list {
            return Some((state.version, list.clone()));
        }
        let list: Arc<[String]> = if state.pool_cordoned {
            Arc::from(Vec::new())
        } else {
            state.offered.iter().cloned().collect()
        };
        state.list = Some(list.clone());
        Some((state.version, list))
    }

    /// The copy's version while it serves reads (`None`: reads go to the database).
    pub fn version(&self) -> Option<u64> {
        let state = self.read();
        state.serving.then_some(state.version)
    }

    /// Waits until this replica's reads include a write of this replica
    /// that committed as `generation` before `committed_at`, so a client reads
    /// its own writes. When its notice is late beyond `wait`, the copy is
    /// dropped (reads then go to the database, which has the write) and
    /// loaded again.
    pub async fn caught_up(&self, generation: i64, committed_at: Instant, wait: Duration) {
        let included = |state: &State| {
            !state.serving
                || state.applied.contains(&generation)
                || state.loaded_at.is_some_and(|at| at > committed_at)
        };
        let mut changed = self.changed.subscribe();
        let reached =
            tokio::time::timeout(wait, changed.wait_for(|_| included(&self.read()))).await;
        if !matches!(reached, Ok(Ok(_))) {
            tracing::warn!(
                generation,
                "the pool change notice was late; reading the pool from the database until it is reloaded"
            );
            self.invalidate();
        }
    }

    fn publish(&self, mut state: std::sync::RwLockWriteGuard<'_, State>) {
        state.list = None;
        let version = state.version;
        drop(state);
        self.changed.send_replace(version);
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

    fn serving(s: &PoolSnapshot, names: &[&str]) {
        s.load(
            names.iter().map(|n| n.to_string()).collect(),
            false,
            Instant::now(),
            "m".into(),
        );
        assert_eq!(s.apply(&message("sync m")), Applied::Serving);
    }

    #[test]
    fn payloads_parse_and_garbage_does_not() {
        assert_eq!(
            message("7.1 +a -b"),
            Message::Changes {
                generation: 7,
                names: vec![(true, "a".into()), (false, "b".into())]
            }
        );
        assert_eq!(message("8.2 *"), Message::Reload);
        assert_eq!(message("sync x1"), Message::Sync("x1".into()));
        for bad in [
            "",
            "7",
            "7.1",
            "x.1 +a",
            "7.1 a",
            "7.1 +",
            "7.1 +a  -b",
            "7 +a",
        ] {
            assert_eq!(Message::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_wait_for_the_marker_and_replayed_notices_end_where_the_read_was() {
        let s = PoolSnapshot::default();
        assert_eq!(s.apply(&message("1.1 +a")), Applied::NotLoaded);
        // The read saw a free (a claim and its release both committed before it).
        s.load(
            vec!["a".into(), "b".into()],
            false,
            Instant::now(),
            "mine".into(),
        );
        assert_eq!(s.offered(), None, "not before the marker");
        assert_eq!(s.apply(&message("3.1 -a")), Applied::Applied);
        assert_eq!(s.offered(), None);
        assert_eq!(s.apply(&message("2.1 +a")), Applied::Applied);
        assert_eq!(s.apply(&message("sync theirs")), Applied::Ignored);
        assert_eq!(s.version(), None);
        assert_eq!(s.apply(&message("sync mine")), Applied::Serving);
        assert_eq!(names(&s), ["a", "b"]);
        assert_eq!(s.apply(&message("9.1 *")), Applied::Reload);
        assert_eq!(s.offered(), None);
        assert_eq!(s.apply(&message("10.1 +c")), Applied::NotLoaded);
    }

    #[test]
    fn a_cordoned_pool_offers_nothing_while_its_free_set_follows_the_notices() {
        let s = PoolSnapshot::default();
        s.load(vec!["a".into()], true, Instant::now(), "m".into());
        assert_eq!(s.apply(&message("sync m")), Applied::Serving);
        assert!(names(&s).is_empty());
        // A release while cordoned: still nothing offered.
        s.apply(&message("2.1 +b"));
        assert!(names(&s).is_empty());
        // Uncordoned: a reload, and both are there.
        assert_eq!(s.apply(&message("3.1 *")), Applied::Reload);
        s.load(
            vec!["a".into(), "b".into()],
            false,
            Instant::now(),
            "n".into(),
        );
        s.apply(&message("sync n"));
        assert_eq!(names(&s), ["a", "b"]);
    }

    #[test]
    fn the_list_is_rebuilt_only_after_a_change() {
        let s = PoolSnapshot::default();
        serving(&s, &["a"]);
        let (v1, first) = s.offered().expect("serving");
        let (_, again) = s.offered().expect("serving");
        assert!(Arc::ptr_eq(&first, &again));
        s.apply(&message("2.1 +b"));
        let (v2, after) = s.offered().expect("serving");
        assert_eq!(after.to_vec(), vec!["a".to_owned(), "b".to_owned()]);
        assert!(v2 > v1);
    }

    #[tokio::test]
    async fn a_writer_waits_for_its_generation_and_a_late_one_drops_the_snapshot() {
        let s = Arc::new(PoolSnapshot::default());
        // Not serving: reads go to the database, nothing to wait for.
        s.caught_up(3, Instant::now(), Duration::from_secs(5)).await;
        serving(&s, &[]);
        let committed = Instant::now();
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.caught_up(7, committed, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.apply(&message("9.1 +z"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "another writer's notice is not this one's"
        );
        s.apply(&message("7.1 +a"));
        waiter.await.expect("waiter");
        // A write that committed before the load is in it.
        let before = Instant::now();
        serving(&s, &["a"]);
        s.caught_up(8, before, Duration::from_secs(5)).await;
        assert!(s.version().is_some());
        s.caught_up(11, Instant::now(), Duration::from_millis(10))
            .await;
        assert_eq!(s.version(), None, "a late notice drops the copy");
    }
}
