//! The pool's section: `global.features.namespacePools` and
//! `astronomer.houston.config.deployments.preCreatedNamespaces`.

use super::*;

/// The top-level pool (one cluster, today's config).
pub(super) fn read_pool(r: &mut Reader, root: &At<'_>, platform: &NamespaceName) -> PoolSettings {
    // `global.features` holds only `namespacePools` in the platform chart, so
    // anything else there is a near miss (`namespacePool`) that would leave
    // pool mode off: refused too.
    r.refuse_unknown(
        &root.at("global.features"),
        &keys::children("global.features"),
        &[],
    );
    read_pool_at(
        r,
        &root.at("global.features.namespacePools"),
        &root.at("astronomer.houston.config.deployments.preCreatedNamespaces"),
        platform,
    )
}

/// A pool as a data plane's values say it: `pools` is its `namespacePools`,
/// `pre` its `preCreatedNamespaces` (top level, or one of `nspool.clusters`).
pub(super) fn read_pool_at(
    r: &mut Reader,
    pools: &At<'_>,
    pre: &At<'_>,
    platform: &NamespaceName,
) -> PoolSettings {
    // Every key under namespacePools is nspool's: an unknown one is a typo
    // that would turn the pool off or change it (`enabeld: true`), so refused.
    let pools = pools.clone();
    r.refuse_unknown(
        &pools,
        &keys::children("global.features.namespacePools"),
        &[],
    );
    let standard = r.bool(&pools.key("enabled"), false);
    let create_rbac = r.bool(&pools.key("createRbac"), true);
    let ns = pools.key("namespaces");
    r.refuse_unknown(
        &ns,
        &keys::children("global.features.namespacePools.namespaces"),
        &[],
    );
    let create_namespaces = r.bool(&ns.key("create"), false);
    let names_at = ns.key("names");

    let mut namespaces: Vec<PoolEntry> = Vec::new();
    // Where each name was first listed: one lookup per name, not a scan.
    let mut seen: std::collections::HashMap<NamespaceName, PoolSource> =
        std::collections::HashMap::new();
    let mut add = |r: &mut Reader, key: String, value: &Value, source: PoolSource| {
        let Some(text) = value.as_str() else {
            r.errors.push(ConfigError {
                key,
                reason: format!(
                    "expected a namespace name, found {}",
                    reader::describe(value)
                ),
            });
            return;
        };
        match NamespaceName::parse_for_pool(text, platform) {
            Err(e) => r.errors.push(ConfigError {
                key,
                reason: e.to_string(),
            }),
            Ok(name) => {
                if let Some(first) = seen.get(&name) {
                    r.errors.push(ConfigError {
                        key,
                        reason: format!(
                            "\"{name}\" is listed twice (first in the {} pool list)",
                            first.as_str()
                        ),
                    });
                } else {
                    seen.insert(name.clone(), source);
                    namespaces.push(PoolEntry { name, source });
                }
            }
        }
    };

    let standard_names = r.list(&names_at);
    if standard {
        if standard_names.is_empty() {
            r.error(
                &names_at,
                format!(
                    "must list at least one namespace when {}.enabled is true",
                    pools.path
                ),
            );
        }
        for (key, value) in &standard_names {
            add(r, key.clone(), value, PoolSource::Standard);
        }
    } else if !standard_names.is_empty() {
        r.warnings.push(format!(
            "{}: ignored because {}.enabled is false",
            names_at.path, pools.path
        ));
    }

    let pre_items = r.list(pre);
    for (key, item) in &pre_items {
        let item_at = At {
            value: Some(item),
            path: key.clone(),
        };
        r.refuse_unknown(
            &item_at,
            &keys::children("astronomer.houston.config.deployments.preCreatedNamespaces[]"),
            &[],
        );
        match item_at.key("name").value {
            Some(value) => add(r, format!("{key}.name"), value, PoolSource::Advanced),
            None => r.errors.push(ConfigError {
                key: key.clone(),
                reason: "each entry needs a name: write `- name: <namespace>`".into(),
            }),
        }
    }
    let advanced = !pre_items.is_empty();
    if standard && advanced {
        r.warnings.push(format!(
            "both {}.namespaces.names and {} are set: the pool is their union, and namespaces.create applies only to namespaces.names (Astronomer recommends using one of the two)",
            pools.path, pre.path
        ));
    }
    PoolSettings {
        standard,
        advanced,
        create_namespaces: create_namespaces && standard,
        create_rbac,
        namespaces,
    }
}
