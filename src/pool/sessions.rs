//! Dashboard sign-in: a token pasted once becomes a session id kept in an
//! HttpOnly cookie; the GraphQL endpoint never looks at cookies.

use super::tokens::caller_of;
use super::{Error, PoolService, Result};
use crate::domain::roles::Level;
use crate::domain::{Action, Caller, Role, token};
use chrono::{Duration, Utc};
use rand::RngCore;

/// How long a dashboard session lasts (a working day).
pub const SESSION_HOURS: i64 = 8;
/// Live dashboard sessions of one token; a sign-in past it ends the oldest
/// (the database keeps the cap: migration `session_cap`).
pub const MAX_SESSIONS_PER_TOKEN: usize = 20;

/// A new session: the id for the cookie, and its lifetime in seconds.
pub struct NewSession {
    pub id: String,
    pub max_age_seconds: i64,
}

/// A session id's hash; well-formed ids only (64 hex digits), so garbage
/// costs no lookup.
fn session_hash(id: &str) -> Option<[u8; 32]> {
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| token::sha256(id))
}

impl PoolService {
    /// Signs in with a pasted token: system roles only (the dashboard shows
    /// every workspace). A wrong token and a revoked one read the same.
    pub async fn sign_in(&self, pasted: &str) -> Result<NewSession> {
        let caller = self.authenticate(Some(pasted)).await?;
        // Unauthenticated for a wrong or revoked token, Forbidden for a workspace one.
        caller.authorize(Action::System(Level::Viewer))?;
        let Caller::Authenticated(identity) = caller else {
            return Err(Error::Unauthenticated {
                required_role: Role::SYSTEM_VIEWER,
            });
        };
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let id = hex::encode(secret);
        let expires_at = Utc::now() + Duration::hours(SESSION_HOURS);
        self.store
            .create_session(&token::sha256(&id), identity.token_id, expires_at)
            .await?;
        Ok(NewSession {
            id,
            max_age_seconds: SESSION_HOURS * 3600,
        })
    }

    /// The caller behind a session cookie; `None` for a missing, expired or
    /// ended session, or one whose token was revoked.
    pub async fn session(&self, id: &str) -> Result<Option<Caller>> {
        let Some(hash) = session_hash(id) else {
            return Ok(None);
        };
        match self.store.session_token(&hash).await? {
            Some(row) => Ok(Some(caller_of(row)?)),
            None => Ok(None),
        }
    }

    pub async fn sign_out(&self, id: &str) -> Result<()> {
        if let Some(hash) = session_hash(id) {
            self.store.delete_session(&hash).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_are_looked_up() {
        assert!(session_hash(&"a".repeat(64)).is_some());
        for bad in ["", "x", &"g".repeat(64), &"a".repeat(65)] {
            assert!(session_hash(bad).is_none(), "{bad}");
        }
    }
}
