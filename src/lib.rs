//! nspool: a pool of pre-created Kubernetes namespaces for Astronomer Software,
//! served as Houston's GraphQL API.
//!
//! HTTP (`http`) → GraphQL resolvers (`graphql`) → the pool service (`pool`)
//! → Postgres (`store`). Pure rules live in `config` and `domain`.

pub mod app;
pub mod budgets;
pub mod cli;
pub mod config;
pub mod domain;
pub mod embedded_pg;
pub mod graphql;
pub mod heap;
pub mod http;
pub mod jobs;
pub mod kube;
pub mod lease;
pub mod metrics;
pub mod pool;
pub mod store;
pub mod telemetry;
