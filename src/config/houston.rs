//! Houston's sections: the deployment flags and the reclaim job
//! (`astronomer.houston.config.deployments`, `astronomer.houston.cleanupDeployments`).

use super::*;

pub(super) fn read_houston(r: &mut Reader, root: &At<'_>, pool: &PoolSettings) -> HoustonFlags {
    let d = root.at("astronomer.houston.config.deployments");
    // `namespaceManagement` (the 2.x layout) is refused with its own message.
    let mut accepted = houston_settings::HOUSTON_DEPLOYMENT_SETTINGS.to_vec();
    accepted.push("namespaceManagement");
    r.refuse_unknown(
        &d,
        &keys::children("astronomer.houston.config.deployments"),
        &accepted,
    );
    let manual_namespace_names = r.bool(&d.key("manualNamespaceNames"), false);
    let hard_delete_deployment = r.bool(&d.key("hardDeleteDeployment"), false);
    let namespace_free_form_entry = r.bool(&d.key("namespaceFreeFormEntry"), false);
    let manual_release_names = r.bool(&d.key("manualReleaseNames"), false);
    if pool.advanced && !manual_namespace_names {
        r.warnings.push(
            "astronomer.houston.config.deployments.preCreatedNamespaces is set but manualNamespaceNames is false: the astro CLI will not prompt for a namespace (nspool still reports manualNamespaceNames: true in pool mode)".into(),
        );
    }
    HoustonFlags {
        manual_namespace_names: manual_namespace_names || pool.enabled(),
        hard_delete_deployment: hard_delete_deployment || pool.standard,
        namespace_free_form_entry,
        manual_release_names,
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
