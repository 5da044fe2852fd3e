//! Pool hygiene rules, pure: which objects a Deployment leaves behind in a
//! released namespace, and the label syntax Kubernetes accepts.

/// The label the platform selects Deployment namespaces by.
pub const PLATFORM_RELEASE_LABEL: &str = "platform-release";

/// Leftovers named at most (the rest is counted).
pub const MAX_NAMED_LEFTOVERS: usize = 100;

/// What a real cluster puts into every new namespace; never a leftover.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
pub const SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";
/// The annotation every service-account token Secret carries (the API
/// server requires it for that type): how a metadata-only list tells one.
pub const SERVICE_ACCOUNT_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";

/// The kinds a Deployment can leave behind, in the order they are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftoverKind {
    Pod,
    PersistentVolumeClaim,
    Service,
    Secret,
    ConfigMap,
}

impl LeftoverKind {
    pub const ALL: [LeftoverKind; 5] = [
        LeftoverKind::Pod,
        LeftoverKind::PersistentVolumeClaim,
        LeftoverKind::Service,
        LeftoverKind::Secret,
        LeftoverKind::ConfigMap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LeftoverKind::Pod => "Pod",
            LeftoverKind::PersistentVolumeClaim => "PersistentVolumeClaim",
            LeftoverKind::Service => "Service",
            LeftoverKind::Secret => "Secret",
            LeftoverKind::ConfigMap => "ConfigMap",
        }
    }

    /// Whether an object of this kind, named `name` (and for Secrets of
    /// `secret_type`), is something a Deployment left: everything but what
    /// the cluster itself puts in every namespace.
    pub fn is_leftover(self, name: &str, secret_type: Option<&str>) -> bool {
        match self {
            LeftoverKind::Secret => secret_type != Some(SERVICE_ACCOUNT_TOKEN),
            LeftoverKind::ConfigMap => name != ROOT_CA_CONFIG_MAP,
            _ => true,
        }
    }

    pub fn describe(self, name: &str) -> String {
        format!("{}/{name}", self.as_str())
    }

    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// An object the platform itself puts in every namespace on purpose (an
/// Istio root certificate, a synced pull secret): `Kind/name`, the name
/// ending in `*` for a prefix. Never a leftover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredObject {
    pub kind: LeftoverKind,
    name: String,
    prefix: bool,
}

impl std::fmt::Display for IgnoredObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let star = if self.prefix { "*" } else { "" };
        write!(f, "{}/{}{star}", self.kind.as_str(), self.name)
    }
}

impl serde::Serialize for IgnoredObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl IgnoredObject {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, name) = text.split_once('/').ok_or_else(|| {
            format!("\"{text}\" is not Kind/name (e.g. ConfigMap/istio-ca-root-cert)")
        })?;
        let kind = LeftoverKind::parse(kind).ok_or_else(|| {
            format!(
                "\"{kind}\" is not a kind nspool lists; use one of {}",
                LeftoverKind::ALL.map(LeftoverKind::as_str).join(", ")
            )
        })?;
        let (name, prefix) = match name.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (name, false),
        };
        if name.is_empty() && !prefix || name.contains('*') || name.len() > 253 {
            return Err(format!(
                "\"{text}\" needs a name, or a name prefix ending in *"
            ));
        }
        Ok(Self {
            kind,
            name: name.to_owned(),
            prefix,
        })
    }

    pub fn matches(&self, kind: LeftoverKind, name: &str) -> bool {
        self.kind == kind
            && if self.prefix {
                name.starts_with(&self.name)
            } else {
                name == self.name
            }
    }
}

/// Whether an object is a leftover: not what the cluster puts in every
/// namespace, and not on the platform's own list.
pub fn is_leftover(
    kind: LeftoverKind,
    name: &str,
    secret_type: Option<&str>,
    ignored: &[IgnoredObject],
) -> bool {
    kind.is_leftover(name, secret_type) && !ignored.iter().any(|i| i.matches(kind, name))
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 characters, alphanumeric at both ends, `-_.` inside.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !valid {
            return Err(format!(
                "\"{prefix}\" is not a DNS subdomain (a label key's prefix)"
            ));
        }
    }
    if name.is_empty() {
        return Err("a label key needs a name".into());
    }
    check_label_value(name).map_err(|_| {
        format!("\"{name}\" is not a label name (at most 63 characters: letters, digits, '-', '_', '.', alphanumeric at both ends)")
    })
}

/// A label value: empty, or at most 63 characters, alphanumeric at both
/// ends, `-_.` inside.
pub fn check_label_value(value: &str) -> Result<(), String> {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let valid = value.is_empty()
        || (value.len() <= 63
            && alnum(value.chars().next())
            && alnum(value.chars().last())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "\"{value}\" is not a label value (at most 63 characters: letters, digits, '-', '_', '.', alphanumeric at both ends)"
        ))
    }
}

/// `key=value` strings of the labels `want` that `have` lacks or holds with
/// another value, sorted.
pub fn missing_labels(
    want: &std::collections::BTreeMap<String, String>,
    have: Option<&std::collections::BTreeMap<String, String>>,
) -> Vec<String> {
    want.iter()
        .filter(|(k, v)| have.and_then(|h| h.get(*k)) != Some(*v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn what_the_cluster_puts_in_every_namespace_is_not_a_leftover() {
        assert!(!LeftoverKind::ConfigMap.is_leftover("kube-root-ca.crt", None));
        assert!(LeftoverKind::ConfigMap.is_leftover("airflow-config", None));
        assert!(!LeftoverKind::Secret.is_leftover("default-token-x", Some(SERVICE_ACCOUNT_TOKEN)));
        assert!(
            LeftoverKind::Secret.is_leftover("sh.helm.release.v1.x.v1", Some("helm.sh/release.v1"))
        );
        assert!(LeftoverKind::Secret.is_leftover("opaque", None));
        assert!(LeftoverKind::PersistentVolumeClaim.is_leftover("data-x-worker-0", None));
        assert_eq!(
            LeftoverKind::PersistentVolumeClaim.describe("data-x-worker-0"),
            "PersistentVolumeClaim/data-x-worker-0"
        );
    }

    #[test]
    fn objects_the_platform_puts_everywhere_can_be_ignored() {
        let ignored = [
            IgnoredObject::parse("ConfigMap/istio-ca-root-cert").unwrap(),
            IgnoredObject::parse("Secret/platform-pull-*").unwrap(),
        ];
        let cm = LeftoverKind::ConfigMap;
        assert!(!is_leftover(cm, "istio-ca-root-cert", None, &ignored));
        assert!(is_leftover(cm, "istio-ca-root-cert-2", None, &ignored));
        assert!(!is_leftover(
            LeftoverKind::Secret,
            "platform-pull-quay",
            None,
            &ignored
        ));
        assert!(is_leftover(
            LeftoverKind::Secret,
            "airflow-fernet",
            None,
            &ignored
        ));
        assert!(is_leftover(
            LeftoverKind::Pod,
            "istio-ca-root-cert",
            None,
            &ignored
        ));
        for bad in [
            "istio",
            "Deployment/x",
            "Secret/",
            "Secret/a*b",
            "configmap/x",
        ] {
            assert!(IgnoredObject::parse(bad).is_err(), "{bad}");
        }
        assert!(
            IgnoredObject::parse("Secret/*").is_ok(),
            "every Secret, if a platform wants that"
        );
    }

    #[test]
    fn label_syntax_is_kubernetes_own() {
        for key in ["platform-release", "example.com/team", "a", "a.b_c-d"] {
            assert_eq!(check_label_key(key), Ok(()), "{key}");
        }
        for key in ["", "-a", "a-", "Example.com/x", "x/", "/x", &"a".repeat(64)] {
            assert!(check_label_key(key).is_err(), "{key}");
        }
        for value in ["", "astronomer", "v1.2_3", &"a".repeat(63)] {
            assert_eq!(check_label_value(value), Ok(()), "{value}");
        }
        for value in ["-x", "x y", "ü", &"a".repeat(64)] {
            assert!(check_label_value(value).is_err(), "{value}");
        }
    }

    #[test]
    fn missing_labels_name_absent_and_different_ones() {
        let want = BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ]);
        let have = BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "9".to_owned()),
        ]);
        assert_eq!(missing_labels(&want, Some(&have)), ["b=2"]);
        assert_eq!(missing_labels(&want, None), ["a=1", "b=2"]);
    }
}
