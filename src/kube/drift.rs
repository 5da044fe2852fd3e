//! Drift: what is in the cluster against what nspool applied (create mode).
//! Pure: the watch (`kube::drift_watch`) feeds it the objects it sees.
//!
//! Only what nspool owns counts: extra labels or annotations someone added
//! are theirs; a label nspool set, a rule of the Commander Role, a binding's
//! subjects or its role are nspool's, and any difference there is drift.

use super::objects::{self, NamespaceObjects, RbacTarget};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, Subject};
use std::collections::BTreeMap;

/// One object nspool applies in each pool namespace, as the watch sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Watched {
    Namespace,
    CommanderRole,
    CommanderBinding,
    EventsBinding,
    LeftoversBinding,
}

impl Watched {
    pub const ALL: [Self; 5] = [
        Self::Namespace,
        Self::CommanderRole,
        Self::CommanderBinding,
        Self::EventsBinding,
        Self::LeftoversBinding,
    ];

    /// What a person reads in the pool's events and logs: `Role/deployment-commander-role`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Namespace => "Namespace",
            Self::CommanderRole => "Role/deployment-commander-role",
            Self::CommanderBinding => "RoleBinding/deployment-commander-rolebinding",
            Self::EventsBinding => "RoleBinding/nspool-events",
            Self::LeftoversBinding => "RoleBinding/nspool-leftovers",
        }
    }

    /// The object's name (namespaced kinds): the watch asks for this name
    /// only, so RBAC can grant list and watch by `resourceNames`.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::Namespace => None,
            Self::CommanderRole => Some(objects::ROLE_NAME),
            Self::CommanderBinding => Some(objects::ROLE_BINDING_NAME),
            Self::EventsBinding => Some(objects::EVENTS_BINDING_NAME),
            Self::LeftoversBinding => Some(objects::LEFTOVERS_BINDING_NAME),
        }
    }

    /// The kinds this configuration applies, so the ones it watches.
    pub fn applied(objects: &NamespaceObjects) -> Vec<Self> {
        let mut kinds = vec![Self::Namespace];
        if objects.create_rbac {
            kinds.extend([Self::CommanderRole, Self::CommanderBinding]);
        }
        if objects.events_writer.is_some() {
            kinds.push(Self::EventsBinding);
        }
        if objects.leftovers_reader.is_some() {
            kinds.push(Self::LeftoversBinding);
        }
        kinds
    }
}

/// How an object differs from what nspool applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Gone, or being deleted.
    Deleted,
    /// There, but a part nspool owns was changed.
    Edited,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::Edited => "edited",
        }
    }
}

/// What nspool applies, to compare the watched objects with.
pub struct Desired {
    pub target: RbacTarget,
    pub objects: NamespaceObjects,
    /// Whether nspool writes claim labels in this cluster (then the ones a
    /// Namespace carries are compared with its holder, in the database).
    pub claim_labels: bool,
}

/// The claim labels a pool Namespace carries as seen. Which holder they
/// should name is in the database, so the comparison is made there
/// (`Store::claim_labels_differ`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenClaim {
    pub namespace: String,
    /// `nspool.astronomer.io/deployment-id`.
    pub deployment_id: Option<String>,
    /// `nspool.astronomer.io/release-name`.
    pub release: Option<String>,
}

impl SeenClaim {
    pub fn of(seen: &Namespace) -> Self {
        let label = |key: &str| {
            seen.metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(key))
                .cloned()
        };
        Self {
            namespace: seen.metadata.name.clone().unwrap_or_default(),
            deployment_id: label(objects::LABEL_DEPLOYMENT),
            release: label(objects::LABEL_RELEASE),
        }
    }
}

impl Desired {
    /// A Namespace as seen (its labels; `terminating`: it has a deletion
    /// timestamp): drift when it is being deleted or misses a label nspool sets.
    pub fn namespace(
        &self,
        labels: Option<&BTreeMap<String, String>>,
        terminating: bool,
    ) -> Option<Change> {
        if terminating {
            return Some(Change::Deleted);
        }
        let wanted = objects::namespace("", true, &self.objects.pool_labels)
            .metadata
            .labels
            .unwrap_or_default();
        let has = |(k, v): (&String, &String)| labels.and_then(|l| l.get(k)) == Some(v);
        (!wanted.iter().all(has)).then_some(Change::Edited)
    }

    pub fn role(&self, namespace: &str, seen: &Role) -> Option<Change> {
        if seen.metadata.deletion_timestamp.is_some() {
            return Some(Change::Deleted);
        }
        let wanted = objects::role(namespace, &self.target, true);
        let rules = |role: &Role| -> Vec<PolicyRule> {
            role.rules
                .iter()
                .flatten()
                .map(|r| PolicyRule {
                    api_groups: Some(r.api_groups.clone().unwrap_or_default()),
                    resources: Some(r.resources.clone().unwrap_or_default()),
                    resource_names: r.resource_names.clone().filter(|n| !n.is_empty()),
                    non_resource_urls: r.non_resource_urls.clone().filter(|n| !n.is_empty()),
                    verbs: r.verbs.clone(),
                })
                .collect()
        };
        (rules(seen) != rules(&wanted)).then_some(Change::Edited)
    }

    /// A RoleBinding `kind` (one of the bindings) in `namespace` as seen.
    pub fn binding(&self, kind: Watched, namespace: &str, seen: &RoleBinding) -> Option<Change> {
        if seen.metadata.deletion_timestamp.is_some() {
            return Some(Change::Deleted);
        }
        let wanted = match kind {
            Watched::CommanderBinding => objects::role_binding(namespace, &self.target, true),
            Watched::EventsBinding => {
                objects::events_binding(namespace, self.objects.events_writer.as_ref()?)
            }
            Watched::LeftoversBinding => {
                objects::leftovers_binding(namespace, self.objects.leftovers_reader.as_ref()?)
            }
            Watched::Namespace | Watched::CommanderRole => return None,
        };
        // The API server fills in a ServiceAccount subject's empty API group.
        let subjects = |binding: &RoleBinding| -> Vec<(String, String, Option<String>)> {
            binding
                .subjects
                .iter()
                .flatten()
                .map(
                    |Subject {
                         kind,
                         name,
                         namespace,
                         ..
                     }| { (kind.clone(), name.clone(), namespace.clone()) },
                )
                .collect()
        };
        (subjects(seen) != subjects(&wanted) || seen.role_ref != wanted.role_ref)
            .then_some(Change::Edited)
    }

    /// A Namespace as the watch hands it over.
    pub fn namespace_object(&self, seen: &Namespace) -> Option<Change> {
        self.namespace(
            seen.metadata.labels.as_ref(),
            seen.metadata.deletion_timestamp.is_some(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commander_rules::Rule;

    fn desired() -> Desired {
        Desired {
            target: RbacTarget {
                service_account: "commander".into(),
                service_account_namespace: "astronomer".into(),
                rules: vec![Rule {
                    api_groups: vec!["apps".into()],
                    resources: vec!["deployments".into()],
                    verbs: vec!["get".into(), "create".into()],
                }],
            },
            objects: NamespaceObjects {
                create_rbac: true,
                pool_labels: BTreeMap::from([("platform-release".into(), "astronomer".into())]),
                leftovers_reader: None,
                events_writer: Some(("nspool".into(), "astronomer".into())),
            },
            claim_labels: true,
        }
    }

    #[test]
    fn the_claim_labels_seen_are_the_two_nspool_writes() {
        let written = objects::claim_labels("a", "uid-a", Some(("r-1", "id-1")), &BTreeMap::new());
        assert_eq!(
            SeenClaim::of(&written),
            SeenClaim {
                namespace: "a".into(),
                deployment_id: Some("id-1".into()),
                release: Some("r-1".into()),
            }
        );
        let bare = objects::namespace("a", true, &BTreeMap::new());
        assert_eq!(SeenClaim::of(&bare).deployment_id, None);
        assert_eq!(SeenClaim::of(&bare).release, None);
    }

    #[test]
    fn what_nspool_applies_is_no_drift() {
        let d = desired();
        let ns = objects::namespace("a", true, &d.objects.pool_labels);
        assert_eq!(d.namespace_object(&ns), None);
        assert_eq!(d.role("a", &objects::role("a", &d.target, true)), None);
        let binding = objects::role_binding("a", &d.target, true);
        assert_eq!(d.binding(Watched::CommanderBinding, "a", &binding), None);
        let events = objects::events_binding("a", d.objects.events_writer.as_ref().unwrap());
        assert_eq!(d.binding(Watched::EventsBinding, "a", &events), None);
    }

    #[test]
    fn labels_of_others_are_theirs_and_a_missing_label_of_nspool_is_drift() {
        let d = desired();
        let mut ns = objects::namespace("a", true, &d.objects.pool_labels);
        let labels = ns.metadata.labels.get_or_insert_with(BTreeMap::new);
        labels.insert("team".into(), "x".into());
        assert_eq!(d.namespace_object(&ns), None);
        ns.metadata
            .labels
            .as_mut()
            .unwrap()
            .remove("platform-release");
        assert_eq!(d.namespace_object(&ns), Some(Change::Edited));
        assert_eq!(d.namespace(None, false), Some(Change::Edited));
        assert_eq!(d.namespace(None, true), Some(Change::Deleted));
    }

    #[test]
    fn a_role_with_a_verb_taken_away_or_added_is_edited() {
        let d = desired();
        let mut role = objects::role("a", &d.target, true);
        role.rules.as_mut().unwrap()[0].verbs.pop();
        assert_eq!(d.role("a", &role), Some(Change::Edited));
        let mut role = objects::role("a", &d.target, true);
        role.rules.as_mut().unwrap()[0].verbs.push("delete".into());
        assert_eq!(d.role("a", &role), Some(Change::Edited));
        let mut role = objects::role("a", &d.target, true);
        role.rules = None;
        assert_eq!(d.role("a", &role), Some(Change::Edited));
    }

    #[test]
    fn a_binding_to_another_account_or_role_is_edited() {
        let d = desired();
        let mut binding = objects::role_binding("a", &d.target, true);
        binding.subjects.as_mut().unwrap()[0].name = "someone".into();
        assert_eq!(
            d.binding(Watched::CommanderBinding, "a", &binding),
            Some(Change::Edited)
        );
        let mut binding = objects::role_binding("a", &d.target, true);
        binding.role_ref.name = "cluster-admin".into();
        assert_eq!(
            d.binding(Watched::CommanderBinding, "a", &binding),
            Some(Change::Edited)
        );
        // The server's defaulted API group on a ServiceAccount subject is no change.
        let mut binding = objects::role_binding("a", &d.target, true);
        binding.subjects.as_mut().unwrap()[0].api_group = Some(String::new());
        assert_eq!(d.binding(Watched::CommanderBinding, "a", &binding), None);
    }

    #[test]
    fn the_kinds_watched_follow_what_is_applied() {
        let mut d = desired();
        assert_eq!(
            Watched::applied(&d.objects),
            vec![
                Watched::Namespace,
                Watched::CommanderRole,
                Watched::CommanderBinding,
                Watched::EventsBinding
            ]
        );
        d.objects.create_rbac = false;
        d.objects.leftovers_reader = Some(("nspool".into(), "astronomer".into()));
        assert_eq!(
            Watched::applied(&d.objects),
            vec![
                Watched::Namespace,
                Watched::EventsBinding,
                Watched::LeftoversBinding
            ]
        );
    }
}
