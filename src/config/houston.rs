//! Houston's sections: the deployment flags and the reclaim job
//! (`astronomer.houston.config.deployments`, `astronomer.houston.cleanupDeployments`).

use super::*;

/// The flags as the file says them; each cluster's pool then decides what
/// `appConfig` reports ([`HoustonFlags::for_pool`]).
pub(super) fn read_houston(r: &mut Reader, root: &At<'_>) -> HoustonFlags {
    let d = root.at("astronomer.houston.config.deployments");
    // `namespaceManagement` (the 2.x layout) is refused with its own message.
    let mut accepted = houston_settings::HOUSTON_DEPLOYMENT_SETTINGS.to_vec();
    accepted.push("namespaceManagement");
    r.refuse_unknown(
        &d,
        &keys::children("astronomer.houston.config.deployments"),
        &accepted,
    );
    HoustonFlags {
        manual_namespace_names: r.bool(&d.key("manualNamespaceNames"), false),
        hard_delete_deployment: r.bool(&d.key("hardDeleteDeployment"), false),
        namespace_free_form_entry: r.bool(&d.key("namespaceFreeFormEntry"), false),
        manual_release_names: r.bool(&d.key("manualReleaseNames"), false),
    }
}

/// Warns when an advanced pool (the `pre_key` list) meets manualNamespaceNames: false.
pub(super) fn warn_advanced_without_prompt(
    r: &mut Reader,
    file: &HoustonFlags,
    pool: &PoolSettings,
    pre_key: &str,
) {
    if pool.advanced && !file.manual_namespace_names {
        r.warnings.push(format!(
            "{pre_key} is set but manualNamespaceNames is false: the astro CLI will not prompt for a namespace (nspool still reports manualNamespaceNames: true in pool mode)"
        ));
    }
}

impl HoustonFlags {
    /// What `appConfig` reports for a cluster with `pool`: pool mode asks
    /// for a namespace, and the standard pool hard-deletes.
    pub fn for_pool(&self, pool: &PoolSettings) -> HoustonFlags {
        HoustonFlags {
            manual_namespace_names: self.manual_namespace_names || pool.enabled(),
            hard_delete_deployment: self.hard_delete_deployment || pool.standard,
            namespace_free_form_entry: self.namespace_free_form_entry,
            manual_release_names: self.manual_release_names,
        }
    }
}

pub(super) fn read_cleanup(r: &mut Reader, root: &At<'_>) -> CleanupSettings {
    let c = root.at("astronomer.houston.cleanupDeployments");
    r.warn_unknown(&c, &keys::children("astronomer.houston.cleanupDeployments"));
    let enabled = r.bool(&c.key("enabled"), true);
    let schedule_at = c.key("schedule");
    let text = r.string(&schedule_at).unwrap_or_else(|| "0 0 * * *".into());
    let schedule = Schedule::parse(&text).unwrap_or_else(|reason| {
        r.error(&schedule_at, reason);
        Schedule::parse("0 0 * * *").unwrap_or_else(|_| unreachable!("default schedule"))
    });
    let older_than_at = c.key("olderThan");
    let mut older_than_days = r.u32(&older_than_at, 14);
    if older_than_days > MAX_OLDER_THAN_DAYS {
        r.error(
            &older_than_at,
            format!(
                "expected at most {MAX_OLDER_THAN_DAYS} days (100 years), found {older_than_days}"
            ),
        );
        older_than_days = 14;
    }
    let dry_run = r.bool(&c.key("dryRun"), false);
    CleanupSettings {
        enabled,
        schedule,
        older_than_days,
        dry_run,
    }
}
