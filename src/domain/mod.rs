//! Pure domain rules: names that parse once, roles and who may do what,
//! release-name generation. No I/O lives here.

pub mod budget;
pub mod commander_rules;
pub mod hygiene;
pub mod names;
pub mod release_name_generator;
pub mod roles;
pub mod text;
pub mod token;

pub use names::{DeploymentLabel, NameError, NamespaceName, ReleaseName};
pub use roles::{Action, Caller, Identity, Role, RoleError};

/// The executors Houston knows, spelled as the astro CLI sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    Local,
    Celery,
    Kubernetes,
}

impl Executor {
    pub fn as_str(self) -> &'static str {
        match self {
            Executor::Local => "LocalExecutor",
            Executor::Celery => "CeleryExecutor",
            Executor::Kubernetes => "KubernetesExecutor",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "LocalExecutor" => Some(Executor::Local),
            "CeleryExecutor" => Some(Executor::Celery),
            "KubernetesExecutor" => Some(Executor::Kubernetes),
            _ => None,
        }
    }
}
