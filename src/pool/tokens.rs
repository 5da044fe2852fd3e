use super::records::{Token, all};
use super::{Error, PoolService, Result};
use crate::domain::roles::{Level, Scope};
use crate::domain::{Action, Caller, Identity, Role, token};
use crate::store::{self, TokenRow};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// The `Authorization` header of one request, resolved to a caller at most
/// once and only when an operation needs it: `appConfig` never touches the
/// database, whatever token comes with it.
pub struct Credentials {
    header: Option<String>,
    caller: OnceCell<Caller>,
}

impl Credentials {
    pub fn new(header: Option<String>) -> Self {
        Self {
            header,
            caller: OnceCell::new(),
        }
    }

    pub fn operator() -> Self {
        Self {
            header: None,
            caller: OnceCell::new_with(Some(Caller::Operator)),
        }
    }

    pub async fn caller(&self, service: &PoolService) -> Result<&Caller> {
        self.caller
            .get_or_try_init(|| service.authenticate(self.header.as_deref()))
            .await
    }
}

/// The caller a live token stands for.
pub(super) fn caller_of(row: TokenRow) -> Result<Caller> {
    let role = Role::parse(&row.role).map_err(|_| {
        Error::Internal(store::Error::CheckViolation("api_tokens_role_check".into()))
    })?;
    Ok(Caller::Authenticated(Identity {
        token_id: row.id,
        role,
        workspace_id: row.workspace_id,
    }))
}

pub struct NewToken {
    pub token: String,
    pub record: Token,
}

impl PoolService {
    /// The token's SHA-256 in the cache, else one indexed lookup.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Caller> {
        let Some(header) = header.filter(|h| !h.trim().is_empty()) else {
            return Ok(Caller::Anonymous);
        };
        let Some(token) = token::from_header(header) else {
            return Ok(Caller::InvalidToken);
        };
        let hash = token::sha256(token);
        if let Some(row) = self.tokens.get(&hash) {
            return caller_of(row);
        }
        let epoch = self.tokens.epoch();
        let Some(row) = self.store.token_by_hash(&hash).await? else {
            return Ok(Caller::InvalidToken);
        };
        self.tokens.put(hash, row.clone(), epoch);
        caller_of(row)
    }

    /// The caller of a token this replica verified lately: memory only, so
    /// it costs nothing (`None`: not known here, which says nothing of it).
    pub fn known_caller(&self, header: &str) -> Option<Caller> {
        let token = token::from_header(header)?;
        let row = self.tokens.get(&token::sha256(token))?;
        caller_of(row).ok()
    }

    pub async fn create_token(
        &self,
        caller: &Caller,
        role: Role,
        workspace_id: Option<Uuid>,
        label: &str,
    ) -> Result<NewToken> {
        caller.authorize(Action::System(Level::Admin))?;
        crate::domain::text::check("label", label, crate::domain::text::max::TOKEN_LABEL)?;
        match (role.scope, workspace_id) {
            (Scope::Workspace, None) => {
                return Err(Error::BadInput(format!(
                    "{role} needs a workspace (--workspace UUID)"
                )));
            }
            (Scope::System, Some(_)) => {
                return Err(Error::BadInput(format!(
                    "{role} is system-wide: leave the workspace out"
                )));
            }
            _ => {}
        }
        let (token, hash) = token::generate();
        match self
            .store
            .create_token(&hash, role.as_str(), workspace_id, label, &caller.actor())
            .await
        {
            Ok(row) => Ok(NewToken {
                token,
                record: row.into(),
            }),
            Err(store::Error::WorkspaceNotFound) => Err(Error::NotFound(format!(
                "Workspace {} does not exist",
                workspace_id.unwrap_or_default()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The first SYSTEM_ADMIN token, made only while there is no token at all.
    pub async fn create_first_admin_token(&self) -> Result<Option<String>> {
        let (token, hash) = token::generate();
        let created = self.store.create_first_token(&hash, "first admin").await?;
        Ok(created.then_some(token))
    }

    pub async fn tokens(&self, caller: &Caller) -> Result<Vec<Token>> {
        caller.authorize(Action::System(Level::Admin))?;
        Ok(all(self.store.tokens().await?))
    }

    pub async fn revoke_token(&self, caller: &Caller, id: Uuid) -> Result<Token> {
        caller.authorize(Action::System(Level::Admin))?;
        let revoked = self
            .store
            .revoke_token(id, &caller.actor())
            .await?
            .ok_or_else(|| Error::NotFound(format!("No live token with id {id}")))?;
        // Here at once; other replicas when the notice reaches them.
        self.tokens.evict_id(id);
        Ok(revoked.into())
    }
}
