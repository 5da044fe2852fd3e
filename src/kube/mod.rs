//! Kubernetes: the pool namespaces' RBAC (pure builders and rules) and the
//! client that applies and verifies them.

pub mod client;
pub mod drift;
pub mod drift_watch;
pub mod event_posts;
pub mod events;
pub mod lease;
pub mod objects;
pub mod reconcile;
pub mod workers;
