//! Roles bound to tokens and the one table that says who may do what (SPEC §4).

use std::fmt;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Viewer,
    Editor,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    System,
    Workspace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    pub scope: Scope,
    pub level: Level,
}

impl Role {
    pub const ALL: [&'static str; 6] = [
        "SYSTEM_ADMIN",
        "SYSTEM_EDITOR",
        "SYSTEM_VIEWER",
        "WORKSPACE_ADMIN",
        "WORKSPACE_EDITOR",
        "WORKSPACE_VIEWER",
    ];

    pub const SYSTEM_ADMIN: Role = Role::new(Scope::System, Level::Admin);
    pub const SYSTEM_VIEWER: Role = Role::new(Scope::System, Level::Viewer);

    pub const fn new(scope: Scope, level: Level) -> Self {
        Self { scope, level }
    }

    pub fn parse(value: &str) -> Result<Self, RoleError> {
        let (scope, level) = value
            .split_once('_')
            .ok_or_else(|| RoleError::UnknownRole(super::text::excerpt(value)))?;
        let scope = match scope {
            "SYSTEM" => Scope::System,
            "WORKSPACE" => Scope::Workspace,
            _ => return Err(RoleError::UnknownRole(super::text::excerpt(value))),
        };
        let level = match level {
            "ADMIN" => Level::Admin,
            "EDITOR" => Level::Editor,
            "VIEWER" => Level::Viewer,
            _ => return Err(RoleError::UnknownRole(super::text::excerpt(value))),
        };
        Ok(Self { scope, level })
    }

    pub fn as_str(self) -> &'static str {
        match (self.scope, self.level) {
            (Scope::System, Level::Admin) => "SYSTEM_ADMIN",
            (Scope::System, Level::Editor) => "SYSTEM_EDITOR",
            (Scope::System, Level::Viewer) => "SYSTEM_VIEWER",
            (Scope::Workspace, Level::Admin) => "WORKSPACE_ADMIN",
            (Scope::Workspace, Level::Editor) => "WORKSPACE_EDITOR",
            (Scope::Workspace, Level::Viewer) => "WORKSPACE_VIEWER",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a valid token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub token_id: Uuid,
    pub role: Role,
    /// Set exactly when `role` is a workspace role.
    pub workspace_id: Option<Uuid>,
}

impl Identity {
    /// A short, stable name for the event log.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token_id)
    }
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No `Authorization` header.
    Anonymous,
    /// A token was sent but is unknown or revoked.
    InvalidToken,
    Authenticated(Identity),
    /// The command line and start-up jobs: trusted, never from the network.
    Operator,
}

impl Caller {
    pub fn actor(&self) -> String {
        match self {
            Caller::Authenticated(identity) => identity.actor(),
            Caller::Operator => "operator".to_owned(),
            Caller::Anonymous | Caller::InvalidToken => "anonymous".to_owned(),
        }
    }

    /// Workspaces a caller may list: `None` means all of them.
    pub fn workspace_filter(&self) -> Result<Option<Uuid>, RoleError> {
        match self {
            Caller::Operator => Ok(None),
            Caller::Authenticated(identity) => match identity.role.scope {
                Scope::System => Ok(None),
                Scope::Workspace => Ok(identity.workspace_id),
            },
            Caller::Anonymous | Caller::InvalidToken => Err(RoleError::Unauthenticated {
                required_role: Role::new(Scope::Workspace, Level::Viewer),
            }),
        }
    }

    /// Where this caller may act at `level`: every workspace (`Some(None)`),
    /// one (`Some(Some(id))`), or nowhere (`None`); for statements that carry
    /// the check themselves instead of reading the row first.
    pub fn workspaces_at(&self, level: Level) -> Option<Option<Uuid>> {
        match self {
            Caller::Operator => Some(None),
            Caller::Authenticated(identity) if identity.role.level >= level => {
                match identity.role.scope {
                    Scope::System => Some(None),
                    Scope::Workspace => identity.workspace_id.map(Some),
                }
            }
            _ => None,
        }
    }

    pub fn authorize(&self, action: Action) -> Result<(), RoleError> {
        let required = action.required_role();
        let identity = match self {
            Caller::Operator => return Ok(()),
            Caller::Authenticated(identity) => identity,
            Caller::Anonymous | Caller::InvalidToken => {
                return Err(RoleError::Unauthenticated {
                    required_role: required,
                });
            }
        };
        let role = identity.role;
        let allowed = match action {
            Action::UseToken => true,
            Action::System(level) => role.scope == Scope::System && role.level >= level,
            Action::Workspace(workspace, level) => {
                role.level >= level
                    && (role.scope == Scope::System || identity.workspace_id == Some(workspace))
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(RoleError::Forbidden {
                required_role: required,
            })
        }
    }
}

/// What a request wants to do, at the level it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Anything that only needs a valid token (`availableNamespaces`).
    UseToken,
    /// System-wide work (`createWorkspace`, pool administration, tokens).
    System(Level),
    /// Work inside one workspace; system roles of the same level qualify too.
    Workspace(Uuid, Level),
}

impl Action {
    pub fn required_role(self) -> Role {
        match self {
            Action::UseToken => Role::new(Scope::Workspace, Level::Viewer),
            Action::System(level) => Role::new(Scope::System, level),
            Action::Workspace(_, level) => Role::new(Scope::Workspace, level),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("You do not have the appropriate permissions for that")]
    Unauthenticated { required_role: Role },
    #[error("You do not have the appropriate permissions for that")]
    Forbidden { required_role: Role },
    #[error("unknown role \"{0}\"; use one of {roles}", roles = Role::ALL.join(", "))]
    UnknownRole(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: &str, workspace: Option<Uuid>) -> Caller {
        Caller::Authenticated(Identity {
            token_id: Uuid::new_v4(),
            role: Role::parse(role).unwrap(),
            workspace_id: workspace,
        })
    }

    #[test]
    fn roles_round_trip() {
        for name in Role::ALL {
            assert_eq!(Role::parse(name).unwrap().as_str(), name);
        }
        assert!(Role::parse("SYSTEM_OWNER").is_err());
        assert!(Role::parse("admin").is_err());
    }

    #[test]
    fn workspace_roles_stop_at_their_workspace() {
        let mine = Uuid::new_v4();
        let other = Uuid::new_v4();
        let editor = caller("WORKSPACE_EDITOR", Some(mine));
        assert!(
            editor
                .authorize(Action::Workspace(mine, Level::Editor))
                .is_ok()
        );
        assert!(
            editor
                .authorize(Action::Workspace(mine, Level::Viewer))
                .is_ok()
        );
        assert_eq!(
            editor.authorize(Action::Workspace(mine, Level::Admin)),
            Err(RoleError::Forbidden {
                required_role: Role::parse("WORKSPACE_ADMIN").unwrap()
            })
        );
        assert!(
            editor
                .authorize(Action::Workspace(other, Level::Viewer))
                .is_err()
        );
        assert!(editor.authorize(Action::System(Level::Viewer)).is_err());
        assert_eq!(editor.workspace_filter(), Ok(Some(mine)));
    }

    #[test]
    fn system_roles_reach_every_workspace_at_their_level() {
        let ws = Uuid::new_v4();
        let viewer = caller("SYSTEM_VIEWER", None);
        assert!(
            viewer
                .authorize(Action::Workspace(ws, Level::Viewer))
                .is_ok()
        );
        assert!(
            viewer
                .authorize(Action::Workspace(ws, Level::Editor))
                .is_err()
        );
        assert!(viewer.authorize(Action::System(Level::Viewer)).is_ok());
        assert!(viewer.authorize(Action::System(Level::Admin)).is_err());
        let admin = caller("SYSTEM_ADMIN", None);
        assert!(admin.authorize(Action::Workspace(ws, Level::Admin)).is_ok());
        assert!(admin.authorize(Action::System(Level::Admin)).is_ok());
        assert_eq!(admin.workspace_filter(), Ok(None));
    }

    #[test]
    fn missing_and_invalid_tokens_are_unauthenticated() {
        for caller in [Caller::Anonymous, Caller::InvalidToken] {
            assert!(matches!(
                caller.authorize(Action::UseToken),
                Err(RoleError::Unauthenticated { .. })
            ));
            assert!(caller.workspace_filter().is_err());
        }
        assert!(
            Caller::Operator
                .authorize(Action::System(Level::Admin))
                .is_ok()
        );
    }
}
