//! Batches for fields that would otherwise cost one query per parent row.

use crate::pool::{self, PoolService};
use crate::pool::{Holdings, PoolEvent, WorkspaceToken};
use async_graphql::dataloader::Loader;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

pub struct RoleBindingLoader(pub PoolService);

impl Loader<Uuid> for RoleBindingLoader {
    type Value = Vec<WorkspaceToken>;
    type Error = Arc<pool::Error>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = self.0.role_bindings(keys).await.map_err(Arc::new)?;
        let mut by_workspace: HashMap<Uuid, Vec<WorkspaceToken>> = HashMap::new();
        for row in rows {
            by_workspace.entry(row.workspace_id).or_default().push(row);
        }
        Ok(by_workspace)
    }
}

/// Keyed by (cluster, namespace, how many of its newest events).
pub struct EventLoader(pub PoolService);

type EventKey = (Uuid, String, i64);

impl Loader<EventKey> for EventLoader {
    type Value = Vec<PoolEvent>;
    type Error = Arc<pool::Error>;

    async fn load(&self, keys: &[EventKey]) -> Result<HashMap<EventKey, Self::Value>, Self::Error> {
        let mut out = HashMap::new();
        // One query per distinct `last` (in practice one).
        let mut by_last: HashMap<i64, (Vec<Uuid>, Vec<String>)> = HashMap::new();
        for (cluster, name, last) in keys {
            let entry = by_last.entry(*last).or_default();
            entry.0.push(*cluster);
            entry.1.push(name.clone());
        }
        for (last, (clusters, names)) in by_last {
            let rows = self
                .0
                .namespace_events(&clusters, &names, last)
                .await
                .map_err(Arc::new)?;
            for row in rows {
                if let (Some(cluster), Some(name)) = (row.cluster_id, row.namespace.clone()) {
                    out.entry((cluster, name, last))
                        .or_insert_with(Vec::new)
                        .push(row);
                }
            }
        }
        Ok(out)
    }
}

/// A workspace's quota and how many namespaces it holds.
pub struct HoldingsLoader(pub PoolService);

impl Loader<Uuid> for HoldingsLoader {
    type Value = Holdings;
    type Error = Arc<pool::Error>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = self.0.holdings(keys).await.map_err(Arc::new)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.workspace_id, row))
            .collect())
    }
}
