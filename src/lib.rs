//! nspool: a pool of pre-created Kubernetes namespaces for Astronomer Software.

pub mod config;
pub mod domain;
pub mod pool;
pub mod store;
