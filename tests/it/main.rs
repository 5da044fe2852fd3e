//! One integration-test binary (compile time on 2 cores): the astro CLI's
//! contract, flows, races, bad input and reclaim, each against a real server
//! over HTTP and a per-test PostgreSQL database (`#[sqlx::test]`).

mod agreement;
mod bad_input;
mod bare_machine;
mod browser;
mod budgets;
mod cli;
mod cluster;
mod cluster_planes;
mod clusters;
mod connections;
mod contract;
mod dashboard;
mod dashboard_actions;
mod dashboard_clusters;
mod docs;
mod documents;
mod documents_1x;
mod fake_kube;
mod faults;
mod flow;
mod fuzz;
mod graphql_http;
mod history;
mod hostile;
mod hygiene;
mod kube;
mod kube_cluster;
mod kube_clusters;
mod kube_drift;
mod kube_events;
mod kube_lease;
mod kube_rbac;
mod monitoring;
mod operations;
mod probes;
mod races;
mod reclaim_job;
mod reload;
mod replicas;
mod scale;
mod schemathesis;
mod support;
