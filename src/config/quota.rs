//! `nspool.workspaceQuota`: how many pool namespaces one workspace may hold
//! unless `setWorkspaceQuota` gives it its own number (unset: no limit).

use super::reader::{At, Reader};

/// Far beyond any pool; keeps the number an `integer` in the database.
pub const MAX_WORKSPACE_QUOTA: u32 = 1_000_000;

pub fn read_workspace_quota(r: &mut Reader, root: &At<'_>) -> Option<u32> {
    let at = root.at("nspool.workspaceQuota");
    if !at.present() {
        return None;
    }
    let quota = r.u32(&at, 0);
    if quota > MAX_WORKSPACE_QUOTA {
        r.error(
            &at,
            format!("expected at most {MAX_WORKSPACE_QUOTA} namespaces, found {quota}"),
        );
        return None;
    }
    Some(quota)
}
