//! Names that are checked once, where they enter, and trusted afterwards.

use super::text::{TextError, excerpt};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "\"{0}\" is not a valid namespace name: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit (DNS-1123 label)"
    )]
    InvalidNamespace(String),
    #[error("\"{0}\" is reserved by Kubernetes or the platform and cannot be in the pool")]
    ReservedNamespace(String),
    #[error(
        "\"{0}\" is not a valid release name: use at most 63 letters, digits and '-', not only digits, not starting or ending with '-'"
    )]
    InvalidReleaseName(String),
    #[error("a Deployment label must not be empty")]
    EmptyLabel,
    #[error("a Deployment label is at most {max} characters; this one has {len}")]
    LabelTooLong { len: usize, max: usize },
    #[error(transparent)]
    Text(#[from] TextError),
}

/// Namespaces that never belong to a pool, whatever the config says.
pub const RESERVED_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// A Kubernetes namespace name: a DNS-1123 label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamespaceName(String);

impl NamespaceName {
    pub fn parse(value: &str) -> Result<Self, NameError> {
        if is_dns1123_label(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(NameError::InvalidNamespace(excerpt(value)))
        }
    }

    /// A name that may be in the pool: valid and neither a Kubernetes system
    /// namespace nor the platform's own.
    pub fn parse_for_pool(value: &str, platform: &NamespaceName) -> Result<Self, NameError> {
        let name = Self::parse(value)?;
        if RESERVED_NAMESPACES.contains(&value) || name == *platform {
            return Err(NameError::ReservedNamespace(excerpt(value)));
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for NamespaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_dns1123_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(allowed)
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A Helm release name as Houston accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReleaseName(String);

impl ReleaseName {
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let bytes = value.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && !bytes.iter().all(u8::is_ascii_digit)
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-';
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(NameError::InvalidReleaseName(excerpt(value)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReleaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Deployment's human label: trimmed, not empty, bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentLabel(String);

impl DeploymentLabel {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(value: &str) -> Result<Self, NameError> {
        super::text::check("label", value, usize::MAX)?;
        let trimmed = value.trim();
        let len = trimmed.chars().count();
        if len == 0 {
            Err(NameError::EmptyLabel)
        } else if len > Self::MAX_CHARS {
            Err(NameError::LabelTooLong {
                len,
                max: Self::MAX_CHARS,
            })
        } else {
            Ok(Self(trimmed.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> NamespaceName {
        NamespaceName::parse("astronomer").unwrap()
    }

    #[test]
    fn namespace_names_follow_dns1123() {
        for ok in ["a", "team-a", "ns1", "1ns", &"a".repeat(63)] {
            assert!(NamespaceName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "ü",
            &"a".repeat(64),
            "a b",
        ] {
            assert!(NamespaceName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pool_names_exclude_system_and_platform_namespaces() {
        for reserved in RESERVED_NAMESPACES.iter().copied().chain(["astronomer"]) {
            assert_eq!(
                NamespaceName::parse_for_pool(reserved, &platform()),
                Err(NameError::ReservedNamespace(reserved.into()))
            );
        }
        assert!(NamespaceName::parse_for_pool("team-a", &platform()).is_ok());
    }

    #[test]
    fn release_names_follow_houston() {
        for ok in ["a", "celestial-nebula-1234", "Abc-9", "9a"] {
            assert!(ReleaseName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "123", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(ReleaseName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_are_trimmed_and_bounded() {
        assert_eq!(DeploymentLabel::parse("  x ").unwrap().as_str(), "x");
        assert_eq!(DeploymentLabel::parse("   "), Err(NameError::EmptyLabel));
        let long = "é".repeat(DeploymentLabel::MAX_CHARS + 1);
        assert!(matches!(
            DeploymentLabel::parse(&long),
            Err(NameError::LabelTooLong { .. })
        ));
        assert!(DeploymentLabel::parse(&"é".repeat(DeploymentLabel::MAX_CHARS)).is_ok());
        assert!(matches!(
            DeploymentLabel::parse("a\0b"),
            Err(NameError::Text(TextError::Nul { .. }))
        ));
    }

    #[test]
    fn errors_echo_at_most_a_short_excerpt() {
        let long = "X".repeat(10_000);
        for error in [
            NamespaceName::parse(&long).unwrap_err(),
            ReleaseName::parse(&long).unwrap_err(),
        ] {
            assert!(error.to_string().len() < 300, "{error}");
        }
    }
}
