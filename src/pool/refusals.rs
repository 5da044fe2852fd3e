//! How a refused claim is worded. The astro CLI prints only the first error
//! message, so each one names the namespace, its holder's state and what to do.

use crate::config::ClusterSettings;
use crate::store::{NamespaceHolder, PoolCordonRow, PoolSummary};
use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The cluster a refusal is about, as its words need it: the commands it
/// suggests work as written.
#[derive(Debug, Clone)]
pub struct Where {
    /// Its name and id when nspool serves several (the words name it).
    pub cluster: Option<(String, Uuid)>,
    /// The config key its pool's names are listed under.
    pub pool_key: String,
    /// Whether its Deployments may be hard-deleted (`hardDeleteDeployment`).
    pub hard_delete: bool,
}

impl Where {
    pub fn of(cluster: &ClusterSettings, many_clusters: bool) -> Self {
        let pool_key = match (cluster.key.is_empty(), cluster.pool.standard) {
            (true, true) => "global.features.namespacePools.namespaces.names".to_owned(),
            (true, false) => {
                "astronomer.houston.config.deployments.preCreatedNamespaces".to_owned()
            }
            (false, true) => cluster.key_of("namespacePools.namespaces.names"),
            (false, false) => cluster.key_of("preCreatedNamespaces"),
        };
        Self {
            cluster: many_clusters.then(|| (cluster.name.clone(), cluster.id)),
            pool_key,
            hard_delete: cluster.houston.hard_delete_deployment,
        }
    }

    /// " of cluster prod", or nothing with one cluster.
    fn of_cluster(&self) -> String {
        self.cluster
            .as_ref()
            .map_or(String::new(), |(name, _)| format!(" of cluster {name}"))
    }

    /// " --cluster prod" for an `nspool pool` command, or nothing.
    fn cli_flag(&self) -> String {
        self.cluster
            .as_ref()
            .map_or(String::new(), |(name, _)| format!(" --cluster {name}"))
    }

    /// "(clusterId: \"…\")" for a GraphQL field, or nothing.
    fn argument(&self) -> String {
        self.cluster
            .as_ref()
            .map_or(String::new(), |(_, id)| format!("(clusterId: \"{id}\")"))
    }
}

/// Why none is free and how one comes back.
pub fn empty_pool(
    summary: &PoolSummary,
    next_reclaim: Option<DateTime<Utc>>,
    at: &Where,
) -> String {
    let mut text = format!(
        "No namespace in the pool{} is free ({} in the pool: {} held by live Deployments, {} by soft-deleted ones{}).",
        at.of_cluster(),
        summary.active,
        summary.held_live,
        summary.held_soft_deleted,
        if summary.broken > 0 {
            format!(
                ", {} not offered because of broken RBAC (see `nspool rbac check{}`)",
                summary.broken,
                at.cli_flag()
            )
        } else {
            String::new()
        }
    );
    if summary.pending > 0 {
        text.push_str(&format!(
            " {} free ones are not offered yet: nspool has not yet seen them ready in the cluster (see `nspool pool list --state pending{}` and their Kubernetes errors).",
            summary.pending,
            at.cli_flag()
        ));
    }
    if summary.cordoned > 0 {
        text.push_str(&format!(
            " {} free ones are cordoned (see poolNamespaces or `nspool pool list --state cordoned{}`).",
            summary.cordoned,
            at.cli_flag()
        ));
    }
    if at.hard_delete {
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
    } else {
        // Hard deletes are refused here: only the reclaim job frees one.
        text.push_str(" Hard deletes are off here (hardDeleteDeployment is false): ");
        match (summary.held_soft_deleted, next_reclaim) {
            (0, _) => text.push_str(
                "a namespace returns when its Deployment is deleted and the reclaim job frees it.",
            ),
            (_, Some(at)) => text.push_str(&format!(
                "a namespace returns when the reclaim job frees a soft-deleted Deployment's (the first at {}).",
                time(at)
            )),
            (_, None) => text.push_str(
                "a namespace returns only when the reclaim job frees it, and the reclaim job is disabled or in dry-run.",
            ),
        }
    }
    text.push_str(&format!(
        " A platform admin can also add namespaces to {}.",
        at.pool_key
    ));
    text
}

/// Any claim while the cluster's whole pool is cordoned.
pub fn pool_cordoned(cordon: &PoolCordonRow, at: &Where) -> String {
    format!(
        "The namespace pool{} is cordoned: no namespace can be claimed{} ({}, by {} at {}). Releases and reclaims go on; a system admin lifts it with uncordonPool{} (or `nspool pool uncordon --all{}`).",
        at.of_cluster(),
        until_text(cordon.until),
        cordon.reason,
        cordon.cordoned_by,
        time(cordon.cordoned_at),
        at.argument(),
        at.cli_flag()
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
    at: &Where,
) -> (Kind, String) {
    let alternatives = if available.is_empty() {
        empty()
    } else {
        format!("Free namespaces: {}.", name_list(available))
    };
    let Some(holder) = holder else {
        return (
            Kind::BadInput,
            match &at.cluster {
                None => {
                    format!("Namespace \"{name}\" is not in the namespace pool. {alternatives}")
                }
                Some((cluster, _)) => format!(
                    "Namespace \"{name}\" is not in the namespace pool of cluster {cluster} (a namespace of another cluster is claimed with its clusterId). {alternatives}"
                ),
            },
        );
    };
    if let (Some(reason), None) = (&holder.cordon_reason, holder.retired_at) {
        return (
            Kind::Conflict,
            format!(
                "Namespace \"{name}\"{} is cordoned{}: {reason} (by {}). It is not offered until a system admin uncordons it (uncordonNamespace, or `nspool pool uncordon {name}{}`). {alternatives}",
                at.of_cluster(),
                until_text(holder.cordon_until),
                holder.cordoned_by.as_deref().unwrap_or("a system admin"),
                at.cli_flag()
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
                "Namespace \"{name}\" is not offered: the Commander service account lacks permissions there ({}); fix its Role and run `nspool rbac check{}`. {alternatives}",
                missing_list(holder.rbac_missing.as_ref()),
                at.cli_flag()
            ),
        ),
        (None, _, None) if holder.rbac_state == "pending" => (
            Kind::BadInput,
            format!(
                "Namespace \"{name}\" is not offered yet: nspool has not yet seen it ready in the cluster (applied, or verified with `nspool rbac check{}`); its Kubernetes error, if any, is in poolNamespaces. {alternatives}",
                at.cli_flag()
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

    const POOL_KEY: &str = "global.features.namespacePools.namespaces.names";

    fn here() -> Where {
        Where {
            cluster: None,
            pool_key: POOL_KEY.into(),
            hard_delete: true,
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
        let text = empty_pool(&summary(1), Some(at()), &here());
        assert!(text.starts_with("No namespace in the pool is free (2 in the pool: 1 held by live Deployments, 1 by soft-deleted ones)."));
        assert!(text.contains("hard-deleted"));
        assert!(text.contains("the first at 2026-01-02T03:04:05Z"));
        assert!(text.contains(POOL_KEY));
        assert!(empty_pool(&summary(1), None, &here()).contains("disabled or in dry-run"));
    }

    #[test]
    fn with_several_clusters_the_words_name_the_cluster_and_its_keys() {
        let prod = Where {
            cluster: Some(("prod".into(), Uuid::nil())),
            pool_key: "nspool.clusters[1].preCreatedNamespaces".into(),
            hard_delete: false,
        };
        let text = empty_pool(&summary(1), Some(at()), &prod);
        assert!(
            text.starts_with("No namespace in the pool of cluster prod is free"),
            "{text}"
        );
        assert!(
            text.contains("nspool.clusters[1].preCreatedNamespaces."),
            "{text}"
        );
        assert!(text.contains("Hard deletes are off here"), "{text}");
        assert!(!text.contains("deploymentHardDelete: true"), "{text}");
        let cordon = PoolCordonRow {
            reason: "upgrade".into(),
            cordoned_by: "admin".into(),
            cordoned_at: at(),
            until: None,
        };
        let text = pool_cordoned(&cordon, &prod);
        assert!(
            text.starts_with("The namespace pool of cluster prod is cordoned"),
            "{text}"
        );
        assert!(
            text.contains("uncordonPool(clusterId: \"00000000-0000-0000-0000-000000000000\")")
                && text.contains("`nspool pool uncordon --all --cluster prod`"),
            "{text}"
        );
        let mut cordoned = holder(None, false, false);
        cordoned.cordon_reason = Some("disk".into());
        let (_, text) = not_claimable(
            "team-a",
            Some(&cordoned),
            true,
            None,
            &[],
            String::new,
            &prod,
        );
        assert!(
            text.contains("`nspool pool uncordon team-a --cluster prod`"),
            "{text}"
        );
        let (_, text) = not_claimable("nope", None, true, None, &[], String::new, &prod);
        assert!(
            text.contains("not in the namespace pool of cluster prod"),
            "{text}"
        );
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
                &here(),
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
            &here(),
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
            &here(),
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
            &here(),
        );
        assert_eq!(kind, Kind::BadInput);
        assert!(text.contains("retired"), "{text}");

        let mut broken = holder(None, false, false);
        broken.rbac_state = "broken".into();
        broken.rbac_missing = Some(serde_json::json!(["create serviceaccounts (core)"]));
        let (kind, text) = not_claimable(
            "team-a",
            Some(&broken),
            true,
            None,
            &free,
            String::new,
            &here(),
        );
        assert_eq!(kind, Kind::BadInput);
        assert!(
            text.contains("cannot create serviceaccounts (core)"),
            "{text}"
        );

        let (kind, text) = not_claimable("nope", None, true, None, &free, String::new, &here());
        assert_eq!(kind, Kind::BadInput);
        assert!(
            text.starts_with("Namespace \"nope\" is not in the namespace pool."),
            "{text}"
        );
    }
}
