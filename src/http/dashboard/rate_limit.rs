//! Sign-in attempts per client address: at most [`TRIES`] a minute. Kept in
//! memory per replica (a guessing client meets each replica's limit; the
//! tokens' 256 bits make guessing hopeless anyway, this keeps the database
//! and the logs quiet).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const TRIES: u32 = 10;
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once; beyond, the oldest windows are dropped.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Default)]
pub struct SignInLimit {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl SignInLimit {
    /// Counts one attempt from `address`; false when it is over the limit.
    pub fn allow(&self, address: IpAddr, now: Instant) -> bool {
        let Ok(mut windows) = self.windows.lock() else {
            return true;
        };
        if windows.len() >= MAX_ADDRESSES {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = windows.entry(address).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= TRIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_tries_a_minute_per_address() {
        let limit = SignInLimit::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let now = Instant::now();
        for _ in 0..TRIES {
            assert!(limit.allow(a, now));
        }
        assert!(!limit.allow(a, now));
        assert!(limit.allow(b, now));
        assert!(limit.allow(a, now + WINDOW));
    }
}
