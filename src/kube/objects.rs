//! The objects nspool puts in each pool namespace, built from settings. Pure.

use crate::domain::commander_rules::Rule;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

pub const ROLE_NAME: &str = "deployment-commander-role";
pub const ROLE_BINDING_NAME: &str = "deployment-commander-rolebinding";
/// Field manager of the Namespace, Role and RoleBinding.
pub const FIELD_MANAGER: &str = "nspool";
/// Field manager of the claim labels only, so an RBAC re-apply never strips them.
pub const CLAIMS_FIELD_MANAGER: &str = "nspool-claims";
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "nspool";
pub const LABEL_RELEASE: &str = "nspool.astronomer.io/release-name";
pub const LABEL_DEPLOYMENT: &str = "nspool.astronomer.io/deployment-id";
/// The ClusterRole (shipped with nspool's manifests) that lists what a
/// released namespace still holds, and nspool's RoleBinding to it in each
/// pool namespace (create mode).
pub const LEFTOVERS_ROLE: &str = "nspool-leftovers";
pub const LEFTOVERS_BINDING_NAME: &str = "nspool-leftovers";
/// The ClusterRole (shipped) that creates Events, and nspool's RoleBinding to
/// it in each pool namespace (create mode): Events go to pool namespaces only.
pub const EVENTS_ROLE: &str = "nspool-events";
pub const EVENTS_BINDING_NAME: &str = "nspool-events";

/// What nspool applies in one pool namespace (create mode).
#[derive(Debug, Clone, Default)]
pub struct NamespaceObjects {
    /// The Commander Role and RoleBinding too (`createRbac`).
    pub create_rbac: bool,
    pub pool_labels: BTreeMap<String, String>,
    /// nspool's own account, bound to [`LEFTOVERS_ROLE`] here when released
    /// namespaces are checked: (name, namespace).
    pub leftovers_reader: Option<(String, String)>,
    /// nspool's own account, bound to [`EVENTS_ROLE`] here: (name, namespace).
    pub events_writer: Option<(String, String)>,
}

impl NamespaceObjects {
    /// A fingerprint of what is applied besides the Commander rules.
    pub fn fingerprint(&self) -> String {
        let account = |who: &Option<(String, String)>| {
            who.as_ref()
                .map(|(name, ns)| format!("{ns}:{name}"))
                .unwrap_or_default()
        };
        let reader = account(&self.leftovers_reader);
        let writer = account(&self.events_writer);
        format!(
            "{}/{}/{reader}/events={writer}",
            if self.create_rbac {
                "rbac"
            } else {
                "namespace-only"
            },
            labels_fingerprint(&self.pool_labels)
        )
    }
}

/// nspool's RoleBinding to [`LEFTOVERS_ROLE`] in a pool namespace: list only,
/// there only.
pub fn leftovers_binding(namespace: &str, reader: &(String, String)) -> RoleBinding {
    own_binding(LEFTOVERS_BINDING_NAME, LEFTOVERS_ROLE, namespace, reader)
}

/// nspool's RoleBinding to [`EVENTS_ROLE`] in a pool namespace: it creates
/// Events about that namespace, there only.
pub fn events_binding(namespace: &str, writer: &(String, String)) -> RoleBinding {
    own_binding(EVENTS_BINDING_NAME, EVENTS_ROLE, namespace, writer)
}

fn own_binding(
    name: &str,
    cluster_role: &str,
    namespace: &str,
    account: &(String, String),
) -> RoleBinding {
    RoleBinding {
        metadata: meta(name, Some(namespace), true),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: cluster_role.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: account.0.clone(),
            namespace: Some(account.1.clone()),
            ..Subject::default()
        }]),
    }
}

/// Whom the Role is for, and what it grants.
#[derive(Debug, Clone)]
pub struct RbacTarget {
    pub service_account: String,
    pub service_account_namespace: String,
    pub rules: Vec<Rule>,
}

impl RbacTarget {
    /// The Commander account and rules the settings name.
    pub fn from_settings(service: &crate::config::ServiceSettings) -> Self {
        Self {
            service_account: service.commander_service_account.clone(),
            service_account_namespace: service.platform_namespace.as_str().to_owned(),
            rules: service.rbac_rules.clone(),
        }
    }
}

fn meta(name: &str, namespace: Option<&str>, managed: bool) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: managed
            .then(|| BTreeMap::from([(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned())])),
        ..ObjectMeta::default()
    }
}

/// `managed`: carry `app.kubernetes.io/managed-by: nspool` (objects nspool
/// applies); the rendered option-2 manifest is the seed's, without it. The
/// pool labels (`platform-release` and the platform's namespaceLabels) are
/// on both, so the platform finds the namespace.
pub fn namespace(name: &str, managed: bool, pool_labels: &BTreeMap<String, String>) -> Namespace {
    let mut metadata = meta(name, None, managed);
    if !pool_labels.is_empty() {
        metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .extend(pool_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Namespace {
        metadata,
        ..Namespace::default()
    }
}

pub fn role(namespace: &str, target: &RbacTarget, managed: bool) -> Role {
    Role {
        metadata: meta(ROLE_NAME, Some(namespace), managed),
        rules: Some(
            target
                .rules
                .iter()
                .map(|rule| PolicyRule {
                    api_groups: Some(rule.api_groups.clone()),
                    resources: Some(rule.resources.clone()),
                    verbs: rule.verbs.clone(),
                    ..PolicyRule::default()
                })
                .collect(),
        ),
    }
}

pub fn role_binding(namespace: &str, target: &RbacTarget, managed: bool) -> RoleBinding {
    RoleBinding {
        metadata: meta(ROLE_BINDING_NAME, Some(namespace), managed),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: ROLE_NAME.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: target.service_account.clone(),
            namespace: Some(target.service_account_namespace.clone()),
            ..Subject::default()
        }]),
    }
}

/// The claim labels as one apply of the `nspool-claims` manager: the holder's
/// labels, or none (which removes the ones it applied before), and in verify
/// mode the pool labels (`pool_labels`; empty in create mode, where the
/// namespace's own apply carries them).
/// The claim labels of namespace `name`, applied only to the namespace of
/// `uid`: the API server refuses the apply (409) when no namespace of that
/// uid exists, so a label write never creates a namespace, nor writes onto
/// one deleted and made again meanwhile.
pub fn claim_labels(
    name: &str,
    uid: &str,
    holder: Option<(&str, &str)>,
    pool_labels: &BTreeMap<String, String>,
) -> Namespace {
    let mut labels = pool_labels.clone();
    if let Some((release, id)) = holder {
        labels.insert(LABEL_RELEASE.to_owned(), release.to_owned());
        labels.insert(LABEL_DEPLOYMENT.to_owned(), id.to_owned());
    }
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            uid: Some(uid.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// A fingerprint of the pool labels, to know when they changed.
pub fn labels_fingerprint(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The seed's `commander.yaml` for each namespace: what a person would
/// `kubectl apply -f` for option 2, with the pool labels on each namespace.
pub fn render(
    namespaces: &[&str],
    target: &RbacTarget,
    pool_labels: &BTreeMap<String, String>,
) -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for ns in namespaces {
        for document in [
            serde_yaml::to_string(&namespace(ns, false, pool_labels))?,
            serde_yaml::to_string(&role(ns, target, false))?,
            serde_yaml::to_string(&role_binding(ns, target, false))?,
        ] {
            out.push_str("---\n");
            out.push_str(&document);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commander_rules::seed_rules;
    use serde::Deserialize;

    fn target() -> RbacTarget {
        RbacTarget {
            service_account: "astronomer-commander".into(),
            service_account_namespace: "astronomer".into(),
            rules: seed_rules(),
        }
    }

    #[test]
    fn rendered_yaml_parses_back_into_the_same_objects() {
        let yaml = render(&["team-a", "team-b"], &target(), &BTreeMap::new()).unwrap();
        let documents: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| serde_yaml::Value::deserialize(d).unwrap())
            .collect();
        assert_eq!(documents.len(), 6);
        for (i, ns) in ["team-a", "team-b"].iter().enumerate() {
            let parsed_ns: Namespace = serde_yaml::from_value(documents[i * 3].clone()).unwrap();
            let parsed_role: Role = serde_yaml::from_value(documents[i * 3 + 1].clone()).unwrap();
            let parsed_binding: RoleBinding =
                serde_yaml::from_value(documents[i * 3 + 2].clone()).unwrap();
            assert_eq!(parsed_ns, namespace(ns, false, &BTreeMap::new()));
            assert_eq!(parsed_role, role(ns, &target(), false));
            assert_eq!(parsed_binding, role_binding(ns, &target(), false));
            assert_eq!(documents[i * 3]["kind"], "Namespace");
            assert_eq!(
                documents[i * 3 + 1]["apiVersion"],
                "rbac.authorization.k8s.io/v1"
            );
        }
        // The seed's shape: names, binding to the Commander account, the rules.
        let binding = &documents[2];
        assert_eq!(binding["metadata"]["name"], ROLE_BINDING_NAME);
        assert_eq!(binding["roleRef"]["name"], ROLE_NAME);
        assert_eq!(binding["subjects"][0]["name"], "astronomer-commander");
        assert_eq!(binding["subjects"][0]["namespace"], "astronomer");
        assert_eq!(
            documents[1]["rules"].as_sequence().unwrap().len(),
            seed_rules().len()
        );
        assert!(!yaml.contains("ownerReferences"));
    }

    #[test]
    fn applied_objects_carry_managed_by() {
        for labels in [
            namespace("a", true, &BTreeMap::new()).metadata.labels,
            role("a", &target(), true).metadata.labels,
            role_binding("a", &target(), true).metadata.labels,
        ] {
            assert_eq!(labels.unwrap()[MANAGED_BY_KEY], MANAGED_BY_VALUE);
        }
        assert!(
            namespace("a", false, &BTreeMap::new())
                .metadata
                .labels
                .is_none()
        );
    }

    #[test]
    fn pool_labels_go_on_every_namespace_object() {
        let pool = BTreeMap::from([("platform-release".to_owned(), "astronomer".to_owned())]);
        let labels = namespace("a", true, &pool).metadata.labels.unwrap();
        assert_eq!(labels["platform-release"], "astronomer");
        assert_eq!(labels[MANAGED_BY_KEY], MANAGED_BY_VALUE);
        let rendered = namespace("a", false, &pool).metadata.labels.unwrap();
        assert_eq!(rendered.len(), 1);
        let claims = claim_labels("a", "uid-a", None, &pool)
            .metadata
            .labels
            .unwrap();
        assert_eq!(claims, pool);
    }

    #[test]
    fn claim_labels_name_the_holder_or_nothing() {
        let labels = claim_labels("a", "uid-a", Some(("r-1", "id-1")), &BTreeMap::new())
            .metadata
            .labels
            .unwrap();
        assert_eq!(labels[LABEL_RELEASE], "r-1");
        assert_eq!(labels[LABEL_DEPLOYMENT], "id-1");
        assert!(
            claim_labels("a", "uid-a", None, &BTreeMap::new())
                .metadata
                .labels
                .unwrap()
                .is_empty()
        );
    }
}
