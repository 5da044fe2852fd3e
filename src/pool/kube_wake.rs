//! Wakes every Kubernetes worker (one per cluster) after a claim, a release
//! or a drift: a counter each worker watches, so no wake-up is taken by one
//! worker from another (as a single `Notify` permit would be).

use tokio::sync::watch;

#[derive(Debug)]
pub struct KubeWake(watch::Sender<u64>);

impl Default for KubeWake {
    fn default() -> Self {
        Self(watch::Sender::new(0))
    }
}

impl KubeWake {
    /// Every worker's next wait ends at once.
    pub fn wake_workers(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// One worker's view: `changed()` resolves after the next wake.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}
