//! The platform's own settings nspool reads only to warn: where they
//! contradict the pool, Deployments would still get cluster-wide rights or
//! namespaces the pool never offered.

use super::reader::{At, Reader};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformSettings {
    pub manual_namespace_names_enabled: bool,
    pub cluster_roles: bool,
    pub commander_manual_namespace_names: bool,
}

/// `pool_mode`: some cluster's pool is on; `advanced`: some cluster has an advanced pool.
pub fn read(r: &mut Reader, root: &At<'_>, pool_mode: bool, advanced: bool) -> PlatformSettings {
    let global = root.key("global");
    let manual_namespace_names_enabled = r.bool(&global.key("manualNamespaceNamesEnabled"), false);
    let cluster_roles = r.bool(&global.key("clusterRoles"), true);
    let mut commander_manual_namespace_names = false;
    for (key, item) in r.list(&root.at("astronomer.commander.env")) {
        let item = At {
            value: Some(item),
            path: key,
        };
        let name = r.string(&item.key("name"));
        if name.as_deref() == Some("COMMANDER_MANUAL_NAMESPACE_NAMES") {
            // The seed writes `value: true`; Helm users also write "true".
            commander_manual_namespace_names = r.bool(&item.key("value"), false);
        }
    }
    let settings = PlatformSettings {
        manual_namespace_names_enabled,
        cluster_roles,
        commander_manual_namespace_names,
    };
    r.warnings.extend(warnings(&settings, pool_mode, advanced));
    settings
}

/// What the platform's settings contradict in pool mode (none outside it).
fn warnings(platform: &PlatformSettings, pool_mode: bool, advanced: bool) -> Vec<String> {
    let mut out = Vec::new();
    if !pool_mode {
        return out;
    }
    if platform.cluster_roles {
        out.push(
            "global.clusterRoles is true (the default): the platform still gives Commander a ClusterRole, so the pool does not keep it out of other namespaces; set it to false".into(),
        );
    }
    if !platform.commander_manual_namespace_names {
        out.push(
            "astronomer.commander.env has no COMMANDER_MANUAL_NAMESPACE_NAMES: true: Commander would create namespaces of its own for new Deployments instead of using the pool's; add {name: COMMANDER_MANUAL_NAMESPACE_NAMES, value: true}".into(),
        );
    }
    if advanced && !platform.manual_namespace_names_enabled {
        out.push(
            "global.manualNamespaceNamesEnabled is false: with pre-created namespaces the platform's Fluentd does not gather the Deployments' logs from them; set it to true".into(),
        );
    }
    out
}
