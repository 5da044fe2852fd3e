//! Verified tokens in memory, keyed by the token's SHA-256, so a request does
//! not ask the database who it is. Only live tokens are kept (an unknown
//! token is looked up every time, so a flood of made-up tokens cannot fill
//! it). An entry goes when its token is revoked or deleted (NOTIFY
//! `nspool_tokens` from any replica), when the listener loses its connection
//! (then nothing is cached until it is back), and after [`MAX_AGE`] whatever
//! happens, as a backstop.

use crate::store::TokenRow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest a verified token is trusted without asking the database.
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// Entries at most; beyond, expired ones go, then all (a burst of distinct
/// valid tokens is rare and costs only a lookup each).
pub const MAX_ENTRIES: usize = 10_000;

pub type Hash = [u8; 32];

#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<Hash, (TokenRow, Instant)>>,
    /// Bumped by every invalidation: a lookup that started before one may
    /// have read the token before its revoke, so its answer is not kept.
    epoch: AtomicU64,
    /// Only while the listener is connected (so revokes are heard).
    live: AtomicBool,
}

impl TokenCache {
    pub fn get(&self, hash: &Hash) -> Option<TokenRow> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.lock();
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < MAX_AGE)
            .map(|(row, _)| row.clone())
    }

    /// Taken before a database lookup; hand it to [`TokenCache::put`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps a live token read from the database, unless an invalidation
    /// happened since `epoch` was taken.
    pub fn put(&self, hash: Hash, row: TokenRow, epoch: u64) {
        if !self.live.load(Ordering::Acquire) {
            return;
        }
        let mut entries = self.lock();
        // Checked under the lock that invalidations also take.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, at)| at.elapsed() < MAX_AGE);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash, (row, Instant::now()));
    }

    /// A token was revoked or deleted (here or on another replica).
    pub fn evict(&self, hash: &Hash) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.remove(hash);
    }

    /// A token revoked by this replica: gone before the revoke answers.
    pub fn evict_id(&self, id: uuid::Uuid) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, (row, _)| row.id != id);
    }

    /// Listening (`true`) or not: either way what is cached now is forgotten.
    pub fn set_live(&self, live: bool) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
        self.live.store(live, Ordering::Release);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Hash, (TokenRow, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> TokenRow {
        TokenRow {
            id: uuid::Uuid::new_v4(),
            role: "SYSTEM_ADMIN".into(),
            workspace_id: None,
            label: String::new(),
            created_at: chrono::Utc::now(),
            revoked_at: None,
        }
    }

    #[test]
    fn nothing_is_kept_unless_listening() {
        let cache = TokenCache::default();
        cache.put([1; 32], row(), cache.epoch());
        assert!(cache.get(&[1; 32]).is_none());
        cache.set_live(true);
        cache.put([1; 32], row(), cache.epoch());
        assert!(cache.get(&[1; 32]).is_some());
        cache.set_live(false);
        assert!(cache.get(&[1; 32]).is_none() && cache.is_empty());
    }

    #[test]
    fn a_lookup_overtaken_by_a_revoke_is_not_kept() {
        let cache = TokenCache::default();
        cache.set_live(true);
        let before = cache.epoch();
        // The revoke's notice arrives while the lookup is in the database.
        cache.evict(&[2; 32]);
        cache.put([2; 32], row(), before);
        assert!(cache.get(&[2; 32]).is_none());
    }

    #[test]
    fn evict_removes_and_the_size_stays_bounded() {
        let cache = TokenCache::default();
        cache.set_live(true);
        for i in 0..(MAX_ENTRIES + 10) {
            let mut hash = [0u8; 32];
            hash[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.put(hash, row(), cache.epoch());
        }
        assert!(cache.len() <= MAX_ENTRIES);
        let mut last = [0u8; 32];
        last[..8].copy_from_slice(&((MAX_ENTRIES + 9) as u64).to_le_bytes());
        assert!(cache.get(&last).is_some());
        cache.evict(&last);
        assert!(cache.get(&last).is_none());
    }
}
