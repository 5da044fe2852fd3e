//! A per-request allowance that requests take from as they run (values of an
//! answer, resolver runs): shared by the clones of one request, refusing
//! what does not fit without taking it, and remembering that it refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[derive(Clone)]
pub struct Allowance(Arc<Inner>);

struct Inner {
    left: AtomicUsize,
    exceeded: AtomicBool,
}

impl Allowance {
    pub fn new(amount: usize) -> Self {
        Self(Arc::new(Inner {
            left: AtomicUsize::new(amount),
            exceeded: AtomicBool::new(false),
        }))
    }

    /// Takes `amount`, or fails, takes nothing and remembers.
    pub fn take(&self, amount: usize) -> bool {
        let taken = self
            .0
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(amount)
            })
            .is_ok();
        if !taken {
            self.0.exceeded.store(true, Ordering::Relaxed);
        }
        taken
    }

    /// What is left to take.
    pub fn left(&self) -> usize {
        self.0.left.load(Ordering::Relaxed)
    }

    /// Whether some take of this request did not fit.
    pub fn exceeded(&self) -> bool {
        self.0.exceeded.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_refuses_what_does_not_fit_and_keeps_the_rest() {
        let allowance = Allowance::new(10);
        assert!(allowance.take(6));
        assert!(!allowance.take(5));
        assert!(allowance.clone().exceeded());
        assert!(allowance.take(4));
        assert!(!allowance.take(1));
        assert!(allowance.exceeded());
        assert!(!Allowance::new(1).exceeded());
    }
}
