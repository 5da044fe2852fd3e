//! Background jobs. Their bodies are plain functions of the pool service.

pub mod config_watch;
pub mod reclaim_schedule;
pub mod reclaim_takeover;
