//! Failed sign-ins per client address: after [`TRIES`] failures within a
//! minute, an address must wait for that minute to pass. Only failures
//! count, so a person signing in again and again is never refused, and a
//! full table never refuses an address that has not failed: the oldest
//! window is forgotten instead (memory stays bounded; a flood from many
//! addresses only shortens how long each is remembered). Kept in memory per
//! replica; the tokens' 256 bits make guessing hopeless anyway, this keeps
//! the database and the logs quiet.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const TRIES: u32 = 10;
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Default)]
pub struct SignInLimit {
    /// Per address: when its window started, and its failures in it.
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl SignInLimit {
    /// Whether `address` has used up its failures for now.
    pub fn blocked(&self, address: IpAddr, now: Instant) -> bool {
        let Ok(windows) = self.windows.lock() else {
            return false;
        };
        windows.get(&address).is_some_and(|(start, failures)| {
            now.duration_since(*start) < WINDOW && *failures >= TRIES
        })
    }

    /// Counts one failed sign-in from `address`.
    pub fn failed(&self, address: IpAddr, now: Instant) {
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        if windows.len() >= MAX_ADDRESSES && !windows.contains_key(&address) {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if windows.len() >= MAX_ADDRESSES
                && let Some(oldest) = windows
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(address, _)| *address)
            {
                windows.remove(&oldest);
            }
        }
        let entry = windows.entry(address).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.windows.lock().map(|w| w.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_a_minute_per_address_and_successes_never_count() {
        let limit = SignInLimit::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let now = Instant::now();
        // Signing in (no failure) any number of times: never blocked.
        for _ in 0..100 {
            assert!(!limit.blocked(a, now));
        }
        for _ in 0..TRIES {
            assert!(!limit.blocked(a, now));
            limit.failed(a, now);
        }
        assert!(limit.blocked(a, now));
        assert!(!limit.blocked(b, now), "per address");
        assert!(!limit.blocked(a, now + WINDOW), "the window passes");
    }

    #[test]
    fn a_full_table_never_refuses_an_address_that_has_not_failed() {
        let limit = SignInLimit::default();
        let now = Instant::now();
        for i in 0..MAX_ADDRESSES {
            let address = IpAddr::from((i as u128).to_be_bytes());
            for _ in 0..TRIES {
                limit.failed(address, now + Duration::from_micros(i as u64));
            }
        }
        let newcomer: IpAddr = "10.9.9.9".parse().unwrap();
        assert!(!limit.blocked(newcomer, now), "full, and still not refused");
        // Its own failures still count, within bounded memory.
        for _ in 0..TRIES {
            limit.failed(newcomer, now + Duration::from_secs(1));
        }
        assert!(limit.blocked(newcomer, now + Duration::from_secs(1)));
        assert!(limit.remembered() <= MAX_ADDRESSES);
        // The oldest window made room.
        assert!(!limit.blocked(
            IpAddr::from(0u128.to_be_bytes()),
            now + Duration::from_secs(1)
        ));
    }
}
