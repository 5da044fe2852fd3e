//! The Commander Role's rules: the seed's option-2 manifest as data, and the
//! (group, resource, verb) triples a verification asks about. Pure.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
}

type RuleSpec = (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

/// `deployment-commander-role` exactly as the seed's option 2 writes it (the
/// two lines the seed cuts off read `watch` and `patch`). A test compares this
/// with the seed's text.
const SEED_RULES: &[RuleSpec] = &[
    (&["*"], &["*"], &["list", "watch"]),
    (
        &[""],
        &["configmaps"],
        &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
    ),
    (
        &["keda.k8s.io"],
        &["scaledobjects"],
        &["get", "create", "delete"],
    ),
    (
        &[""],
        &["secrets"],
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
    ),
    (
        &[""],
        &["namespaces"],
        &["get", "list", "patch", "update", "watch"],
    ),
    (
        &[""],
        &["serviceaccounts"],
        &["create", "delete", "get", "patch"],
    ),
    (&["rbac.authorization.k8s.io"], &["roles"], &["*"]),
    (
        &[""],
        &["persistentvolumeclaims"],
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "update",
            "watch",
            "patch",
        ],
    ),
    (&[""], &["pods"], &["get", "list", "watch"]),
    (
        &[""],
        &["endpoints"],
        &["create", "delete", "get", "list", "update", "watch"],
    ),
    (
        &[""],
        &["limitranges"],
        &["create", "delete", "get", "list", "watch", "patch"],
    ),
    (&[""], &["nodes"], &["get", "list", "watch"]),
    (&[""], &["nodes/proxy"], &["get"]),
    (
        &[""],
        &["persistentvolumes"],
        &["create", "delete", "get", "list", "watch", "patch"],
    ),
    (&[""], &["replicationcontrollers"], &["list", "watch"]),
    (
        &[""],
        &["resourcequotas"],
        &["create", "delete", "get", "list", "patch", "watch"],
    ),
    (
        &[""],
        &["services"],
        &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
    ),
    (
        &["apps"],
        &["statefulsets"],
        &["create", "delete", "get", "list", "patch", "watch"],
    ),
    (
        &["apps"],
        &["deployments"],
        &["create", "delete", "get", "patch", "update"],
    ),
    (
        &["autoscaling"],
        &["horizontalpodautoscalers"],
        &["list", "watch"],
    ),
    (
        &["batch"],
        &["jobs"],
        &["list", "watch", "create", "delete"],
    ),
    (
        &["batch"],
        &["cronjobs"],
        &["create", "delete", "get", "list", "patch", "watch"],
    ),
    (
        &["extensions"],
        &["daemonsets", "replicasets"],
        &["list", "watch"],
    ),
    (
        &["extensions"],
        &["deployments"],
        &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
    ),
    (&[""], &["events"], &["create", "delete", "patch"]),
    (
        &["extensions"],
        &["ingresses"],
        &["create", "delete", "get", "patch"],
    ),
    (&["extensions"], &["ingresses/status"], &["update"]),
    (
        &["networking.k8s.io"],
        &["ingresses"],
        &["get", "create", "delete", "patch"],
    ),
    (&["networking.k8s.io"], &["ingresses/status"], &["update"]),
    (
        &["networking.k8s.io"],
        &["networkpolicies"],
        &["create", "delete", "get", "patch"],
    ),
    (
        &["rbac.authorization.k8s.io"],
        &["rolebindings"],
        &["create", "delete", "get", "patch"],
    ),
    (
        &["authentication.k8s.io"],
        &["tokenreviews"],
        &["create", "delete"],
    ),
    (
        &["authorization.k8s.io"],
        &["subjectaccessreviews"],
        &["create", "delete"],
    ),
    (&["kubed.appscode.com"], &["searchresults"], &["get"]),
    (
        &["policy"],
        &["poddisruptionbudgets"],
        &["create", "delete", "get"],
    ),
];

pub fn seed_rules() -> Vec<Rule> {
    let owned = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
    SEED_RULES
        .iter()
        .map(|(groups, resources, verbs)| Rule {
            api_groups: owned(groups),
            resources: owned(resources),
            verbs: owned(verbs),
        })
        .collect()
}

/// Resources a namespaced Role cannot grant: they live at cluster scope.
/// (`namespaces` is granted for the Role's own namespace only.)
pub const CLUSTER_SCOPED: [&str; 6] = [
    "nodes",
    "nodes/proxy",
    "persistentvolumes",
    "namespaces",
    "tokenreviews",
    "subjectaccessreviews",
];

/// One permission a verification asks about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Triple {
    pub group: String,
    pub resource: String,
    pub verb: String,
}

impl std::fmt::Display for Triple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {} ({group})", self.verb, self.resource)
    }
}

/// Every (group, resource, verb) of the rules, deduplicated and sorted.
pub fn triples(rules: &[Rule]) -> Vec<Triple> {
    let mut out: Vec<Triple> = rules
        .iter()
        .flat_map(|rule| {
            rule.api_groups.iter().flat_map(move |group| {
                rule.resources.iter().flat_map(move |resource| {
                    rule.verbs.iter().map(move |verb| Triple {
                        group: group.clone(),
                        resource: resource.clone(),
                        verb: verb.clone(),
                    })
                })
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// How each triple is verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckPlan {
    /// Asked in each pool namespace; a denial makes the namespace broken.
    pub namespaced: Vec<Triple>,
    /// "A Role cannot grant this": asked once at cluster scope, reported only.
    pub cluster_scoped: Vec<Triple>,
    /// Groups the cluster does not serve: reported as stale, not asked.
    pub stale: Vec<Triple>,
}

/// Splits the triples by scope and by whether the cluster serves their group.
/// `served` holds the API groups the cluster serves (`""` is core, always served).
pub fn plan(rules: &[Rule], served: &dyn Fn(&str) -> bool) -> CheckPlan {
    let mut plan = CheckPlan::default();
    for triple in triples(rules) {
        if triple.group != "*" && !triple.group.is_empty() && !served(&triple.group) {
            plan.stale.push(triple);
        } else if CLUSTER_SCOPED.contains(&triple.resource.as_str()) {
            plan.cluster_scoped.push(triple);
        } else {
            plan.namespaced.push(triple);
        }
    }
    plan
}

/// A short, stable fingerprint of what is applied, to know when to re-apply.
pub fn fingerprint(rules: &[Rule], service_account: &str, platform_namespace: &str) -> String {
    use sha2::{Digest, Sha256};
    let text =
        serde_json::to_string(&(rules, service_account, platform_namespace)).unwrap_or_default();
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's rules block (kept in the repository beside the tests), line
    /// by line: `- apiGroups: [...]`, `resources: [...]`, `verbs: [...]`; the
    /// seed cuts two lines short, which read `watch` and `patch`.
    fn parse_seed(text: &str) -> Vec<Rule> {
        let mut rules: Vec<Rule> = Vec::new();
        let list = |line: &str| -> Vec<String> {
            let line = line.trim();
            // The two cut lines stop at `"watc` and `"patc`: both end in `h"]`.
            let line = if line.ends_with(']') {
                line.to_owned()
            } else {
                format!("{line}h\"]")
            };
            let (_, value) = line.split_once(':').unwrap();
            serde_yaml::from_str(value.trim()).unwrap()
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("- ") {
                rules.push(Rule {
                    api_groups: list(rest),
                    resources: vec![],
                    verbs: vec![],
                });
            } else if line.starts_with("resources:") {
                rules.last_mut().unwrap().resources = list(line);
            } else if line.starts_with("verbs:") {
                rules.last_mut().unwrap().verbs = list(line);
            }
        }
        rules
    }

    #[test]
    fn default_rules_equal_the_seed_manifest() {
        let fixture = include_str!("../../tests/fixtures/seed_commander_role_rules.txt");
        assert_eq!(parse_seed(fixture), seed_rules());
        // Where the seed itself is beside the project (CI, development), compare with it too.
        let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/seeds/000_c51595969a8843d4.txt");
        if let Ok(text) = std::fs::read_to_string(seed) {
            let block: String = text
                .split("\nrules:\n")
                .nth(1)
                .and_then(|rest| rest.split("\n---").next())
                .unwrap()
                .to_owned();
            assert_eq!(parse_seed(&block), seed_rules());
        }
    }

    #[test]
    fn triples_are_deduplicated_and_classified() {
        let rules = seed_rules();
        let all = triples(&rules);
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
        let served =
            |group: &str| !["extensions", "keda.k8s.io", "kubed.appscode.com"].contains(&group);
        let plan = plan(&rules, &served);
        assert!(plan.stale.iter().all(|t| t.group == "extensions"
            || t.group == "keda.k8s.io"
            || t.group == "kubed.appscode.com"));
        assert!(plan.stale.iter().any(|t| t.resource == "ingresses/status"));
        assert!(
            plan.cluster_scoped
                .iter()
                .any(|t| t.resource == "nodes/proxy" && t.verb == "get")
        );
        assert!(
            plan.cluster_scoped
                .iter()
                .all(|t| CLUSTER_SCOPED.contains(&t.resource.as_str()))
        );
        assert!(
            plan.namespaced
                .iter()
                .any(|t| t.resource == "serviceaccounts" && t.verb == "create")
        );
        assert!(
            plan.namespaced
                .iter()
                .any(|t| t.group == "*" && t.resource == "*" && t.verb == "list")
        );
        assert_eq!(
            plan.namespaced.len() + plan.cluster_scoped.len() + plan.stale.len(),
            all.len()
        );
    }

    #[test]
    fn fingerprints_follow_the_inputs() {
        let rules = seed_rules();
        let a = fingerprint(&rules, "astronomer-commander", "astronomer");
        assert_eq!(a, fingerprint(&rules, "astronomer-commander", "astronomer"));
        assert_ne!(a, fingerprint(&rules, "other", "astronomer"));
        assert_ne!(
            a,
            fingerprint(&rules[1..], "astronomer-commander", "astronomer")
        );
    }
}
