//! Reclaim: hard-delete Deployments soft-deleted long enough ago, freeing
//! their namespaces. A plain function; the schedule around it lives apart.

use super::{PoolService, Result};
use crate::domain::Caller;
use crate::store::DeploymentRow;
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone)]
pub struct ReclaimedDeployment {
    pub release_name: String,
    pub namespace: String,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<DeploymentRow> for ReclaimedDeployment {
    fn from(row: DeploymentRow) -> Self {
        Self {
            release_name: row.release_name,
            namespace: row.namespace,
            deleted_at: row.deleted_at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReclaimReport {
    pub cutoff: DateTime<Utc>,
    pub dry_run: bool,
    /// Freed, or (dry run) what would be.
    pub deployments: Vec<ReclaimedDeployment>,
}

/// How many a dry run lists at most.
const DRY_RUN_LIMIT: i64 = 10_000;

impl PoolService {
    /// One Deployment per statement, each its own transaction with its event,
    /// so a large backlog never holds locks that block claims.
    pub async fn reclaim(
        &self,
        caller: &Caller,
        older_than_days: u32,
        dry_run: bool,
    ) -> Result<ReclaimReport> {
        caller.authorize(crate::domain::Action::System(
            crate::domain::roles::Level::Admin,
        ))?;
        let cutoff = Utc::now() - Duration::days(i64::from(older_than_days));
        if dry_run {
            let rows = self.store.reclaimable(cutoff, DRY_RUN_LIMIT).await?;
            return Ok(ReclaimReport {
                cutoff,
                dry_run,
                deployments: rows.into_iter().map(Into::into).collect(),
            });
        }
        let reason = format!("soft-deleted more than {older_than_days} days ago");
        let actor = caller.actor();
        let mut deployments = Vec::new();
        while let Some(row) = self.store.reclaim_one(cutoff, &actor, &reason).await? {
            deployments.push(row.into());
        }
        Ok(ReclaimReport {
            cutoff,
            dry_run,
            deployments,
        })
    }
}
