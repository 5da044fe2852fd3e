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

/// Keyed by (namespace, how many of its newest events).
pub struct EventLoader(pub PoolService);

impl Loader<(String, i64)> for EventLoader {
    type Value = Vec<PoolEvent>;
    type Error = Arc<pool::Error>;

    async fn load(
        &self,
        keys: &[(String, i64)],
    ) -> Result<HashMap<(String, i64), Self::Value>, Self::Error> {
        let mut out = HashMap::new();
        // One query per distinct `last` (in practice one).
        let mut by_last: HashMap<i64, Vec<String>> = HashMap::new();
        for (name, last) in keys {
            by_last.entry(*last).or_default().push(name.clone());
        }
        for (last, names) in by_last {
            let rows = self
                .0
                .namespace_events(&names, last)
                .await
                .map_err(Arc::new)?;
            for row in rows {
                if let Some(name) = row.namespace.clone() {
                    out.entry((name, last)).or_insert_with(Vec::new).push(row);
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
