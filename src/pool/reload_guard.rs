//! What a reload may not do on its own: turn pool mode off, retire a
//! namespace a Deployment holds, or retire most of the pool. A file caught
//! empty or half-written (`slow-tool > config.yaml`), or a slip of the
//! editor, must not empty the pool; a restart with the new config applies it
//! (the operator's confirmation, docs/operations.md).

use super::PoolService;
use crate::config::Settings;
use std::collections::HashSet;

const ENABLED_KEY: &str = "global.features.namespacePools.enabled";
const NAMES_KEY: &str = "global.features.namespacePools.namespaces";
/// What confirms such a change.
const CONFIRM: &str = "restart nspool with this config to apply it (kubectl rollout restart)";

fn listed(settings: &Settings) -> Vec<&str> {
    settings
        .pool
        .active()
        .iter()
        .map(|e| e.name.as_str())
        .collect()
}

impl PoolService {
    /// Why the reload from `old` to `new` is refused, when it is.
    pub(super) async fn shrink_refusal(&self, old: &Settings, new: &Settings) -> Option<String> {
        if old.pool.enabled() && !new.pool.enabled() {
            return Some(format!(
                "{ENABLED_KEY}: the new config turns pool mode off, which would retire every pool namespace; a reload does not do that on its own: {CONFIRM}"
            ));
        }
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
        match self.store.held_among(&removed).await {
            Ok(held) if !held.is_empty() => {
                let shown: Vec<&str> = held.iter().take(10).map(String::as_str).collect();
                return Some(format!(
                    "{NAMES_KEY}: the new config drops {} namespace(s) Deployments hold ({}{}); a reload does not retire held namespaces: move or delete those Deployments first, or {CONFIRM}",
                    held.len(),
                    shown.join(", "),
                    if held.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                ));
            }
            Ok(_) => {}
            Err(error) => {
                return Some(format!(
                    "{NAMES_KEY}: could not check whether the namespaces the new config drops are held ({error})"
                ));
            }
        }
        if removed.len() * 2 > before.len() {
            return Some(format!(
                "{NAMES_KEY}: the new config drops {} of the {} pool namespaces; a reload does not retire most of the pool on its own: {CONFIRM}",
                removed.len(),
                before.len()
            ));
        }
        None
    }
}
