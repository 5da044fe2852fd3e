//! How a refused claim is worded. The astro CLI prints only the first error
//! message, so each one names the namespace, its holder's state and what to do.

use crate::store::{NamespaceHolder, PoolCordonRow, PoolSummary};
use chrono::{DateTime, SecondsFormat, Utc};

const POOL_KEY: &str = "global.features.namespacePools.namespaces.names";

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Why none is free and how one comes back.
pub fn empty_pool(summary: &PoolSummary, next_reclaim: Option<DateTime<Utc>>) -> String {
    let mut text = format!(
        "No namespace in the pool is free ({} in the pool: {} held by live Deployments, {} by soft-deleted ones{}).",
        summary.active,
        summary.held_live,
        summary.held_soft_deleted,
        if summary.broken > 0 {
            format!(
                ", {} not offered because of broken RBAC (see `nspool rbac check`)",
                summary.broken
            )
        } else {
            String::new()
        }
    );
    if summary.pending > 0 {
        text.push_str(&format!(
            " {} free ones are not offered yet: nspool has not yet seen them ready in the cluster (see `nspool pool list --state pending` and their Kubernetes errors).",
            summary.pending
        ));
    }
    if summary.cordoned > 0 {
        text.push_str(&format!(
            " {} free ones are cordoned (see poolNamespaces or `nspool pool list --state cordoned`).",
            summary.cordoned
        ));
    }
    text.push_str(
        " A namespace returns when its Deployment is hard-deleted (astro deployment delete --hard, or deleteDeployment with deploymentHardDelete: true)",
    );
    match (summary.held_soft_deleted, next_reclaim) {
        (0, _) => text.push('.'),
        (_, Some(at)) => text.push_str(&format!(
            ", or when the reclaim job frees a soft-deleted one (the first at {}).",
            time(at)
        )),
        (_, None) => text.push_str(
            "; the reclaim job is disabled or in dry-run, so soft-deleted Deployments keep theirs until hard-deleted.",
        ),
    }
    text.push_str(&format!(
        " A platform admin can also add namespaces to {POOL_KEY}."
    ));
    text
}

/// A refusal of the cluster `cluster` (`name`, its config `key`) when nspool
/// serves several: the cluster is named, and the pool key is the cluster's.
pub fn in_cluster(text: String, name: &str, key: &str) -> String {
    let text = text.replace(POOL_KEY, &format!("{key}.namespacePools.namespaces.names"));
    text.replacen(
        "is not in the namespace pool.",
        &format!(
            "is not in the namespace pool of cluster {name} (a namespace of another cluster is claimed with its clusterId)."
        ),
        1,
    )
}

/// Any claim while the whole pool is cordoned.
pub fn pool_cordoned(cordon: &PoolCordonRow) -> String {
    format!(
        "The namespace pool is cordoned: no namespace can be claimed{} ({}, by {} at {}). Releases and reclaims go on; a system admin lifts it with uncordonPool (or `nspool pool uncordon --all`).",
        until_text(cordon.until),
        cordon.reason,
        cordon.cordoned_by,
        time(cordon.cordoned_at)
    )
}

fn until_text(until: Option<DateTime<Utc>>) -> String {
    until.map_or(String::new(), |at| format!(" until {}", time(at)))
}

/// Free names for a message: the first few, then how many more, so that a
/// large pool does not make a large error.
fn name_list(available: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut text = available
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if available.len() > SHOWN {
        text.push_str(&format!(" and {} more", available.len() - SHOWN));
    }
    text
}

fn choose_from(available: &[String]) -> String {
    format!("choose one of: {}", name_list(available))
}

/// A pool-mode create without a namespace.
pub fn namespace_required(available: &[String], empty: impl FnOnce() -> String) -> String {
    if available.is_empty() {
        format!("A namespace from the pool is required. {}", empty())
    } else {
        format!(
            "A namespace from the pool is required (namespace pools are on); {}",
            choose_from(available)
        )
    }
}

/// A claim of `name` that found it not free; `holder` is the second read.
pub fn not_claimable(
    name: &str,
    holder: Option<&NamespaceHolder>,
    holder_visible: bool,
    reclaimable_at: Option<DateTime<Utc>>,
    available: &[String],
    empty: impl FnOnce() -> String,
) -> (Kind, String) {
    let alternatives = if available.is_empty() {
        empty()
    } else {
        format!("Free namespaces: {}.", name_list(available))
    };
    let Some(holder) = holder else {
        return (
            Kind::BadInput,
            format!("Namespace \"{name}\" is not in the namespace pool. {alternatives}"),
        );
    };
    if let (Some(reason), None) = (&holder.cordon_reason, holder.retired_at) {
        return (
            Kind::Conflict,
            format!(
                "Namespace \"{name}\" is cordoned{}: {reason} (by {}). It is not offered until a system admin uncordons it (uncordonNamespace, or `nspool pool uncordon {name}`). {alternatives}",
                until_text(holder.cordon_until),
                holder.cordoned_by.as_deref().unwrap_or("a system admin")
            ),
        );
    }
    match (&holder.release_name, holder.deleted_at, holder.retired_at) {
        // The caller may not see the holder's workspace: no names, no dates.
        (Some(_), _, _) if !holder_visible => (
            Kind::Conflict,
            format!(
                "Namespace \"{name}\" is held by a Deployment of another workspace. {alternatives}"
            ),
        ),
        (Some(release), None, _) => (
            Kind::Conflict,
            format!(
                "Namespace \"{name}\" is held by Deployment \"{release}\" (label \"{}\"). {alternatives}",
                holder.label.as_deref().unwrap_or("")
            ),
        ),
        (Some(release), Some(deleted_at), _) => {
            let comes_back = match reclaimable_at {
                Some(at) => format!(
                    "it returns to the pool when the reclaim job runs after {}, or at once if that Deployment is hard-deleted",
                    time(at)
                ),
                None => "the reclaim job is disabled or in dry-run, so it returns only when that Deployment is hard-deleted".into(),
            };
            (
                Kind::Conflict,
                format!(
                    "Namespace \"{name}\" is held by soft-deleted Deployment \"{release}\" (deleted {}); {comes_back}. {alternatives}",
                    time(deleted_at)
                ),
            )
        }
        (None, _, Some(retired_at)) => (
            Kind::BadInput,
            format!(
                "Namespace \"{name}\" was removed from the pool config ({}) and is retired: it is not offered any more. {alternatives}",
                time(retired_at)
            ),
        ),
        (None, _, None) if holder.rbac_state == "broken" => (
            Kind::BadInput,
            format!(
                "Namespace \"{name}\" is not offered: the Commander service account lacks permissions there ({}); fix its Role and run `nspool rbac check`. {alternatives}",
                missing_list(holder.rbac_missing.as_ref())
            ),
        ),
        (None, _, None) if holder.rbac_state == "pending" => (
            Kind::BadInput,
            format!(
                "Namespace \"{name}\" is not offered yet: nspool has not yet seen it ready in the cluster (applied, or verified with `nspool rbac check`); its Kubernetes error, if any, is in poolNamespaces. {alternatives}"
            ),
        ),
        (None, _, None) if holder.rbac_state == "missing" => (
            Kind::BadInput,
            format!(
                "Namespace \"{name}\" does not exist in the cluster; create it (and its Role and RoleBinding) or remove it from the pool. {alternatives}"
            ),
        ),
        // Free when read a moment after the claim failed: another claim raced it and lost.
        (None, _, None) => (
            Kind::Conflict,
            format!(
                "Namespace \"{name}\" changed hands while it was being claimed; try again. {alternatives}"
            ),
        ),
    }
}

/// "cannot create serviceaccounts (core), …", at most a few, then a count.
pub fn missing_list(missing: Option<&serde_json::Value>) -> String {
    let items: Vec<&str> = missing
        .and_then(|m| m.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    const SHOWN: usize = 8;
    let mut text = format!(
        "cannot {}",
        items
            .iter()
            .take(SHOWN)
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    );
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadInput,
    Conflict,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn summary(held_soft_deleted: i64) -> PoolSummary {
        PoolSummary {
            active: 2,
            broken: 0,
            pending: 0,
            cordoned: 0,
            held_live: 2 - held_soft_deleted,
            held_soft_deleted,
            oldest_soft_delete: None,
        }
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
    }

    fn holder(release: Option<&str>, deleted: bool, retired: bool) -> NamespaceHolder {
        NamespaceHolder {
            name: "team-a".into(),
            retired_at: retired.then(at),
            rbac_state: "ok".into(),
            rbac_missing: None,
            deployment_id: None,
            workspace_id: None,
            release_name: release.map(Into::into),
            label: Some("etl".into()),
            deleted_at: deleted.then(at),
            cordon_reason: None,
            cordoned_by: None,
            cordon_until: None,
        }
    }

    #[test]
    fn empty_pool_says_how_a_namespace_comes_back() {
        let text = empty_pool(&summary(1), Some(at()));
        assert!(text.starts_with("No namespace in the pool is free (2 in the pool: 1 held by live Deployments, 1 by soft-deleted ones)."));
        assert!(text.contains("hard-deleted"));
        assert!(text.contains("the first at 2026-01-02T03:04:05Z"));
        assert!(text.contains(POOL_KEY));
        assert!(empty_pool(&summary(1), None).contains("disabled or in dry-run"));
    }

    #[test]
    fn long_free_lists_are_cut() {
        let free: Vec<String> = (0..1_000).map(|i| format!("ns-{i}")).collect();
        let text = namespace_required(&free, String::new);
        assert!(text.ends_with("ns-19 and 980 more"), "{text}");
    }

    #[test]
    fn a_holder_in_another_workspace_is_not_named() {
        for deleted in [false, true] {
            let (kind, text) = not_claimable(
                "team-a",
                Some(&holder(Some("r-1"), deleted, false)),
                false,
                Some(at()),
                &[],
                || "None is free.".into(),
            );
            assert_eq!(kind, Kind::Conflict);
            assert_eq!(
                text,
                "Namespace \"team-a\" is held by a Deployment of another workspace. None is free."
            );
        }
    }

    #[test]
    fn taken_namespaces_name_their_holder_and_state() {
        let free = vec!["team-b".to_owned()];
        let (kind, text) = not_claimable(
            "team-a",
            Some(&holder(Some("r-1"), false, false)),
            true,
            None,
            &free,
            String::new,
        );
        assert_eq!(kind, Kind::Conflict);
        assert_eq!(
            text,
            "Namespace \"team-a\" is held by Deployment \"r-1\" (label \"etl\"). Free namespaces: team-b."
        );

        let (kind, text) = not_claimable(
            "team-a",
            Some(&holder(Some("r-1"), true, false)),
            true,
            Some(at()),
            &[],
            || "EMPTY".into(),
        );
        assert_eq!(kind, Kind::Conflict);
        assert!(text.contains("soft-deleted Deployment \"r-1\""), "{text}");
        assert!(text.contains("after 2026-01-02T03:04:05Z"), "{text}");
        assert!(text.ends_with("EMPTY"), "{text}");

        let (kind, text) = not_claimable(
            "team-a",
            Some(&holder(None, false, true)),
            true,
            None,
            &free,
            String::new,
        );
        assert_eq!(kind, Kind::BadInput);
        assert!(text.contains("retired"), "{text}");

        let mut broken = holder(None, false, false);
        broken.rbac_state = "broken".into();
        broken.rbac_missing = Some(serde_json::json!(["create serviceaccounts (core)"]));
        let (kind, text) = not_claimable("team-a", Some(&broken), true, None, &free, String::new);
        assert_eq!(kind, Kind::BadInput);
        assert!(
            text.contains("cannot create serviceaccounts (core)"),
            "{text}"
        );

        let (kind, text) = not_claimable("nope", None, true, None, &free, String::new);
        assert_eq!(kind, Kind::BadInput);
        assert!(
            text.starts_with("Namespace \"nope\" is not in the namespace pool."),
            "{text}"
        );
    }
}
