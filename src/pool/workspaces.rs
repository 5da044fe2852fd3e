use super::deployments::page;
use super::records::{Workspace, WorkspaceToken, all};
use super::{Error, PoolService, Result};
use crate::domain::roles::Level;
use crate::domain::{Action, Caller};
use uuid::Uuid;

use crate::domain::text::{check, check_opt, max};

impl PoolService {
    pub async fn create_workspace(
        &self,
        caller: &Caller,
        label: &str,
        description: Option<&str>,
    ) -> Result<Workspace> {
        caller.authorize(Action::System(Level::Admin))?;
        let label = label.trim();
        check("label", label, max::LABEL)?;
        if label.is_empty() {
            return Err(Error::BadInput(format!(
                "A workspace label must have 1 to {} characters",
                max::LABEL
            )));
        }
        check_opt("description", description, max::DESCRIPTION)?;
        Ok(self
            .store
            .create_workspace(label, description, &caller.actor())
            .await?
            .into())
    }

    pub async fn workspaces(
        &self,
        caller: &Caller,
        take: Option<i32>,
        page_number: Option<i32>,
    ) -> Result<Vec<Workspace>> {
        let only = caller.workspace_filter()?;
        let (limit, offset) = match (take, page_number) {
            (None, None) => (None, 0),
            _ => page(take, page_number)?,
        };
        Ok(all(self.store.workspaces(only, limit, offset).await?))
    }

    pub async fn workspace(&self, caller: &Caller, id: Uuid) -> Result<Option<Workspace>> {
        caller.authorize(Action::Workspace(id, Level::Viewer))?;
        Ok(self.store.workspace(id).await?.map(Workspace::from))
    }

    pub async fn role_bindings(&self, workspace_ids: &[Uuid]) -> Result<Vec<WorkspaceToken>> {
        Ok(all(self.store.role_bindings(workspace_ids).await?))
    }
}
