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
        if windows.len() >= MAX_ADDRESSES && !windows.contains_key(&address) {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            // Still full: a flood from many addresses. New addresses wait for
            // the window to pass, so memory stays bounded.
            if windows.len() >= MAX_ADDRESSES {
                return false;
            }
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

    #[test]
    fn a_flood_of_addresses_is_bounded() {
        let limit = SignInLimit::default();
        let now = Instant::now();
        for i in 0..MAX_ADDRESSES {
            let address = IpAddr::from((i as u128).to_be_bytes());
            assert!(limit.allow(address, now));
        }
        let newcomer: IpAddr = "10.9.9.9".parse().unwrap();
        assert!(!limit.allow(newcomer, now), "full: new addresses wait");
        assert!(
            limit.allow(IpAddr::from(0u128.to_be_bytes()), now),
            "known ones go on"
        );
        assert!(
            limit.allow(newcomer, now + WINDOW),
            "and the window frees room"
        );
        assert!(limit.windows.lock().unwrap().len() <= MAX_ADDRESSES);
    }
}
