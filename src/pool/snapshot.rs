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

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// One `nspool_pool` notice: `"<generation>.<sequence> +1/name -2/name …"`
/// (each name after its cluster's number),
/// `"<generation>.<sequence> *"` (too many names: reload), or
/// `"sync <marker>"` (a replica's load marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Changes {
        generation: i64,
        /// Names now offered (`true`) or no longer offered (`false`), each
        /// with its cluster's number.
        names: Vec<(bool, i32, String)>,
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
            .map(|item| {
                let (offered, qualified) = match item.split_at_checked(1) {
                    Some(("+", rest)) => (true, rest),
                    Some(("-", rest)) => (false, rest),
                    _ => return None,
                };
                let (no, name) = qualified.split_once('/')?;
                let no = no.parse().ok()?;
                (!name.is_empty()).then(|| (offered, no, name.to_owned()))
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
    /// Each cluster's number in the notices, by id, as loaded.
    numbers: HashMap<uuid::Uuid, i32>,
    /// The offered names, by cluster number.
    offered: HashMap<i32, BTreeSet<String>>,
    /// Clusters whose whole pool is cordoned: their clients are offered
    /// nothing, while `offered` keeps following the free namespaces underneath.
    pool_cordoned: HashSet<i32>,
    /// Changes on this replica's copy, to tell cached answers apart.
    version: u64,
    applied: HashSet<i64>,
    applied_order: VecDeque<i64>,
    /// The sorted lists handed to readers, by cluster number, each built at
    /// most once per version.
    lists: HashMap<i32, Arc<[String]>>,
}

impl State {
    fn reset(&mut self) {
        let version = self.version;
        *self = State::default();
        self.version = version + 1;
    }
}

/// One cluster's part of a load: its id and number, its offered names and
/// whether its whole pool is cordoned.
pub struct LoadedCluster {
    pub id: uuid::Uuid,
    pub no: i32,
    pub names: Vec<String>,
    pub cordoned: bool,
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
    /// Each cluster's offered set and pool cordon as read at `read_at` (one
    /// database read); serving once the notice `sync <marker>` comes back.
    /// (A change of a pool cordon is a `*` notice: every replica loads again.)
    pub fn load(&self, clusters: Vec<LoadedCluster>, read_at: Instant, marker: String) {
        let mut state = self.write();
        state.reset();
        state.loaded = true;
        for cluster in clusters {
            state.numbers.insert(cluster.id, cluster.no);
            if cluster.cordoned {
                state.pool_cordoned.insert(cluster.no);
            }
            state
                .offered
                .insert(cluster.no, cluster.names.into_iter().collect());
        }
        state.marker = Some(marker);
        state.loaded_at = Some(read_at);
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
            // A cluster this copy did not load (another replica's sync added
            // it since): loaded again, with it.
            Message::Changes { names, .. }
                if names
                    .iter()
                    .any(|(_, no, _)| !state.offered.contains_key(no)) =>
            {
                state.reset();
                Applied::Reload
            }
            Message::Changes { generation, names } => {
                for (offered, no, name) in names {
                    let Some(set) = state.offered.get_mut(no) else {
                        continue;
                    };
                    if *offered {
                        set.insert(name.clone());
                    } else {
                        set.remove(name);
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
                state.lists.clear();
                Applied::Applied
            }
        };
        self.publish(state);
        outcome
    }

    /// The names `cluster` offers to clients in name order (none while its
    /// pool is cordoned) and the copy's version, while serving and while the
    /// copy has that cluster.
    pub fn offered(&self, cluster: uuid::Uuid) -> Option<(u64, Arc<[String]>)> {
        {
            let state = self.read();
            if !state.serving {
                return None;
            }
            let no = state.numbers.get(&cluster)?;
            if let Some(list) = state.lists.get(no) {
                return Some((state.version, list.clone()));
            }
        }
        let mut state = self.write();
        if !state.serving {
            return None;
        }
        let no = *state.numbers.get(&cluster)?;
        if let Some(list) = state.lists.get(&no) {
            return Some((state.version, list.clone()));
        }
        let list: Arc<[String]> = if state.pool_cordoned.contains(&no) {
            Arc::from(Vec::new())
        } else {
            state
                .offered
                .get(&no)
                .map(|set| set.iter().cloned().collect())
                .unwrap_or_else(|| Arc::from(Vec::new()))
        };
        state.lists.insert(no, list.clone());
        Some((state.version, list))
    }

    /// What the copy offers clients, in every cluster, as the database's
    /// `offered_digest` counts it: a count and a SHA-256 of `number/name` by
    /// number and name, one per line (nothing of a cordoned cluster).
    pub fn digest(&self) -> Option<(i64, String)> {
        use sha2::Digest as _;
        let state = self.read();
        if !state.serving {
            return None;
        }
        let mut numbers: Vec<i32> = state.offered.keys().copied().collect();
        numbers.sort_unstable();
        let mut hasher = sha2::Sha256::new();
        let mut count = 0i64;
        for no in numbers {
            if state.pool_cordoned.contains(&no) {
                continue;
            }
            for name in state.offered.get(&no).into_iter().flatten() {
                if count > 0 {
                    hasher.update(b"\n");
                }
                hasher.update(format!("{no}/{name}").as_bytes());
                count += 1;
            }
        }
        Some((count, hex::encode(hasher.finalize())))
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
        state.lists.clear();
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

    const C: uuid::Uuid = uuid::Uuid::from_u128(1);

    fn one(names: Vec<String>, cordoned: bool) -> Vec<LoadedCluster> {
        vec![LoadedCluster {
            id: C,
            no: 1,
            names,
            cordoned,
        }]
    }

    fn names(snapshot: &PoolSnapshot) -> Vec<String> {
        snapshot
            .offered(C)
            .map(|(_, list)| list.to_vec())
            .unwrap_or_default()
    }

    fn message(payload: &str) -> Message {
        Message::parse(payload).expect(payload)
    }

    fn serving(s: &PoolSnapshot, names: &[&str]) {
        s.load(
            one(names.iter().map(|n| n.to_string()).collect(), false),
            Instant::now(),
            "m".into(),
        );
        assert_eq!(s.apply(&message("sync m")), Applied::Serving);
    }

    #[test]
    fn payloads_parse_and_garbage_does_not() {
        assert_eq!(
            message("7.1 +1/a -2/b"),
            Message::Changes {
                generation: 7,
                names: vec![(true, 1, "a".into()), (false, 2, "b".into())]
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
            "7.1 +1/a  -1/b",
            "7 +1/a",
            "7.1 +a",
            "7.1 +x/a",
            "7.1 +1/",
        ] {
            assert_eq!(Message::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_wait_for_the_marker_and_replayed_notices_end_where_the_read_was() {
        let s = PoolSnapshot::default();
        assert_eq!(s.apply(&message("1.1 +1/a")), Applied::NotLoaded);
        // The read saw a free (a claim and its release both committed before it).
        s.load(
            one(vec!["a".into(), "b".into()], false),
            Instant::now(),
            "mine".into(),
        );
        assert_eq!(s.offered(C), None, "not before the marker");
        assert_eq!(s.apply(&message("3.1 -1/a")), Applied::Applied);
        assert_eq!(s.offered(C), None);
        assert_eq!(s.apply(&message("2.1 +1/a")), Applied::Applied);
        assert_eq!(s.apply(&message("sync theirs")), Applied::Ignored);
        assert_eq!(s.version(), None);
        assert_eq!(s.apply(&message("sync mine")), Applied::Serving);
        assert_eq!(names(&s), ["a", "b"]);
        assert_eq!(s.apply(&message("9.1 *")), Applied::Reload);
        assert_eq!(s.offered(C), None);
        assert_eq!(s.apply(&message("10.1 +1/c")), Applied::NotLoaded);
    }

    #[test]
    fn a_cordoned_pool_offers_nothing_while_its_free_set_follows_the_notices() {
        let s = PoolSnapshot::default();
        s.load(one(vec!["a".into()], true), Instant::now(), "m".into());
        assert_eq!(s.apply(&message("sync m")), Applied::Serving);
        assert!(names(&s).is_empty());
        // A release while cordoned: still nothing offered.
        s.apply(&message("2.1 +1/b"));
        assert!(names(&s).is_empty());
        // Uncordoned: a reload, and both are there.
        assert_eq!(s.apply(&message("3.1 *")), Applied::Reload);
        s.load(
            one(vec!["a".into(), "b".into()], false),
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
        let (v1, first) = s.offered(C).expect("serving");
        let (_, again) = s.offered(C).expect("serving");
        assert!(Arc::ptr_eq(&first, &again));
        s.apply(&message("2.1 +1/b"));
        let (v2, after) = s.offered(C).expect("serving");
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
        s.apply(&message("9.1 +1/z"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "another writer's notice is not this one's"
        );
        s.apply(&message("7.1 +1/a"));
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

#[cfg(test)]
mod cluster_tests {
    use super::*;

    const A: uuid::Uuid = uuid::Uuid::from_u128(1);
    const B: uuid::Uuid = uuid::Uuid::from_u128(2);

    fn offered(s: &PoolSnapshot, cluster: uuid::Uuid) -> Vec<String> {
        s.offered(cluster)
            .map(|(_, l)| l.to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn one_name_in_two_clusters_is_two_namespaces() {
        let s = PoolSnapshot::default();
        s.load(
            vec![
                LoadedCluster {
                    id: A,
                    no: 1,
                    names: vec!["x".into()],
                    cordoned: false,
                },
                LoadedCluster {
                    id: B,
                    no: 2,
                    names: vec!["x".into()],
                    cordoned: true,
                },
            ],
            Instant::now(),
            "m".into(),
        );
        s.apply(&Message::parse("sync m").expect("marker"));
        assert_eq!(offered(&s, A), ["x"]);
        assert!(offered(&s, B).is_empty(), "B's pool is cordoned");
        s.apply(&Message::parse("2.1 -1/x +2/y").expect("notice"));
        assert!(offered(&s, A).is_empty());
        assert!(offered(&s, B).is_empty());
        assert_eq!(
            s.offered(uuid::Uuid::from_u128(9)),
            None,
            "unknown: to the database"
        );
        // A cluster added after the load: loaded again.
        assert_eq!(
            s.apply(&Message::parse("3.1 +3/z").expect("notice")),
            Applied::Reload
        );
    }
}
