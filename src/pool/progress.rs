//! How long work tells its progress, without knowing who watches: the
//! commands show a bar on a terminal (`crate::cli`), the server nothing.

/// Progress of one piece of work; every method does nothing by default.
pub trait Progress: Send + Sync {
    /// How many steps there will be, when known.
    fn set_length(&self, _steps: u64) {}
    /// `steps` more are done.
    fn advance(&self, _steps: u64) {}
    /// What is being done now.
    fn say(&self, _what: &str) {}
}

/// Nobody watches.
pub struct Silent;

impl Progress for Silent {}
