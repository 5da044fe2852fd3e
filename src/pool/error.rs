use crate::domain::{NameError, Role, RoleError};
use crate::store;

/// What the pool service can refuse or fail with; the GraphQL layer turns
/// each variant into one `extensions.code`, once.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("You do not have the appropriate permissions for that")]
    Unauthenticated { required_role: Role },
    #[error("You do not have the appropriate permissions for that")]
    Forbidden { required_role: Role },
    /// The database is away; requests fail fast until it is back.
    #[error("The nspool database is unavailable right now; try again in a moment")]
    Unavailable(#[source] store::Error),
    /// Never shown to clients: logged, and replaced by a generic message.
    #[error("internal error: {0}")]
    Internal(#[source] store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<RoleError> for Error {
    fn from(error: RoleError) -> Self {
        match error {
            RoleError::Unauthenticated { required_role } => {
                Error::Unauthenticated { required_role }
            }
            RoleError::Forbidden { required_role } => Error::Forbidden { required_role },
            RoleError::UnknownRole(_) => Error::BadInput(error.to_string()),
        }
    }
}

impl From<crate::domain::text::TextError> for Error {
    fn from(error: crate::domain::text::TextError) -> Self {
        Error::BadInput(error.to_string())
    }
}

impl From<NameError> for Error {
    fn from(error: NameError) -> Self {
        Error::BadInput(error.to_string())
    }
}

/// Store errors that no caller words more precisely.
impl From<store::Error> for Error {
    fn from(error: store::Error) -> Self {
        match error {
            store::Error::WorkspaceNotFound => {
                Error::NotFound("the workspace does not exist".into())
            }
            // The service checks every bound first; a constraint that still
            // fires is worded without its name, which is for the logs.
            store::Error::CheckViolation(constraint) => {
                tracing::warn!(%constraint, "a database check refused a value the service let through");
                Error::BadInput("A value is outside the range nspool accepts".into())
            }
            store::Error::Untranslatable => Error::BadInput(
                "A text value contains a character nspool cannot store (such as NUL, U+0000)"
                    .into(),
            ),
            store::Error::QuotaReached { quota, held } => Error::Conflict(quota_text(quota, held)),
            other @ (store::Error::ReleaseNameTaken
            | store::Error::LabelTaken
            | store::Error::NamespaceTaken
            | store::Error::HeldBack { .. }
            | store::Error::ClusterHeld { .. }
            | store::Error::ClusterAmbiguous { .. }) => Error::Conflict(other.to_string()),
            other @ store::Error::Unavailable(_) => Error::Unavailable(other),
            other @ store::Error::Database(_) => Error::Internal(other),
        }
    }
}

/// A claim past the workspace's quota: the quota, the count, and the way out.
pub fn quota_text(quota: i64, held: i64) -> String {
    format!(
        "The workspace's namespace quota is {quota} and its Deployments hold {held} (soft-deleted ones count until they are hard-deleted or reclaimed): hard-delete one, or ask a system admin to raise the quota (setWorkspaceQuota)"
    )
}
