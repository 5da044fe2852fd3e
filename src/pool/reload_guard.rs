//! What a reload may not do on its own: turn pool mode off, retire a
//! namespace a Deployment holds, or retire most of the pool. A file caught
//! empty or half-written (`slow-tool > config.yaml`), or a slip of the
//! editor, must not empty the pool; a restart with the new config applies it
//! (the operator's confirmation, docs/operations.md).

use super::PoolService;
use crate::config::{ClusterSettings, Settings};
use std::collections::HashSet;

/// What confirms such a change.
const CONFIRM: &str = "restart nspool with this config to apply it (kubectl rollout restart)";

fn listed(cluster: &ClusterSettings) -> Vec<&str> {
    cluster
        .pool
        .active()
        .iter()
        .map(|e| e.name.as_str())
        .collect()
}

/// A key of the cluster's pool: `global.features.namespacePools.enabled`,
/// or `nspool.clusters[1].namespacePools.enabled`.
fn pool_key(cluster: &ClusterSettings, key: &str) -> String {
    if cluster.key.is_empty() {
        format!("global.features.namespacePools.{key}")
    } else {
        cluster.key_of(&format!("namespacePools.{key}"))
    }
}

impl PoolService {
    /// Why the reload from `old` to `new` is refused, when it is: a cluster
    /// removed while Deployments hold its namespaces, or, in a cluster kept,
    /// pool mode turned off, held namespaces dropped or most of its pool.
    pub(super) async fn shrink_refusal(&self, old: &Settings, new: &Settings) -> Option<String> {
        // Clusters are matched by id (a cluster moved to nspool.clusters
        // keeps its id under a new name); by name where an id is not known
        // yet (the database makes it at the first sync).
        let same = |a: &ClusterSettings, b: &ClusterSettings| {
            if a.id.is_nil() || b.id.is_nil() {
                a.name == b.name
            } else {
                a.id == b.id
            }
        };
        // Every cluster's refusal, so that one edit fixes them all.
        let mut refusals = Vec::new();
        for before in &old.clusters {
            let after = new.clusters.iter().find(|c| same(before, c));
            let refusal = match after {
                None => self.removal_refusal(before).await,
                Some(after) => self.cluster_shrink_refusal(before, after).await,
            };
            refusals.extend(refusal);
        }
        (!refusals.is_empty()).then(|| refusals.join("; "))
    }

    /// A cluster the new config no longer lists: refused while Deployments
    /// hold any of its namespaces (named).
    async fn removal_refusal(&self, cluster: &ClusterSettings) -> Option<String> {
        let names: Vec<String> = listed(cluster).into_iter().map(str::to_owned).collect();
        let clusters = vec![cluster.id; names.len()];
        match self.store.held_among(&clusters, &names).await {
            Ok(held) if !held.is_empty() => {
                let held: Vec<&str> = held
                    .iter()
                    .filter_map(|i| usize::try_from(*i).ok().and_then(|i| names.get(i)))
                    .map(String::as_str)
                    .collect();
                Some(format!(
                    "nspool.clusters: the new config removes cluster {} ({}) while Deployments (live or soft-deleted) hold {} of its namespaces ({}); hard-delete those Deployments first, or keep the cluster listed",
                    cluster.name,
                    cluster.id,
                    held.len(),
                    shown(&held)
                ))
            }
            Ok(_) => None,
            Err(error) => Some(format!(
                "nspool.clusters: could not check whether the namespaces of the removed cluster {} are held ({error})",
                cluster.name
            )),
        }
    }

    async fn cluster_shrink_refusal(
        &self,
        old: &ClusterSettings,
        new: &ClusterSettings,
    ) -> Option<String> {
        if old.pool.enabled() && !new.pool.enabled() {
            let whose = if new.key.is_empty() {
                "every pool namespace".to_owned()
            } else {
                format!("every namespace of cluster {}'s pool", new.name)
            };
            return Some(format!(
                "{}: the new config turns pool mode off, which would retire {whose}; a reload does not do that on its own: {CONFIRM}",
                pool_key(new, "enabled")
            ));
        }
        let names_key = pool_key(new, "namespaces");
        let before = listed(old);
        let kept: HashSet<&str> = listed(new).into_iter().collect();
        let removed: Vec<String> = before
            .iter()
            .filter(|name| !kept.contains(*name))
            .map(|name| (*name).to_owned())
            .collect();
        if removed.is_empty() {
            return None;
        }
        let clusters = vec![old.id; removed.len()];
        match self.store.held_among(&clusters, &removed).await {
            Ok(held) if !held.is_empty() => {
                let held: Vec<&str> = held
                    .iter()
                    .filter_map(|i| usize::try_from(*i).ok().and_then(|i| removed.get(i)))
                    .map(String::as_str)
                    .collect();
                return Some(format!(
                    "{names_key}: the new config drops {} namespace(s) Deployments hold ({}); a reload does not retire held namespaces: move or delete those Deployments first, or {CONFIRM}",
                    held.len(),
                    shown(&held)
                ));
            }
            Ok(_) => {}
            Err(error) => {
                return Some(format!(
                    "{names_key}: could not check whether the namespaces the new config drops are held ({error})"
                ));
            }
        }
        if removed.len() * 2 > before.len() {
            return Some(format!(
                "{names_key}: the new config drops {} of the {} pool namespaces; a reload does not retire most of the pool on its own: {CONFIRM}",
                removed.len(),
                before.len()
            ));
        }
        None
    }
}

/// The first ten names, and "…" when there are more.
fn shown(names: &[&str]) -> String {
    let first: Vec<&str> = names.iter().take(10).copied().collect();
    format!(
        "{}{}",
        first.join(", "),
        if names.len() > first.len() {
            ", …"
        } else {
            ""
        }
    )
}
