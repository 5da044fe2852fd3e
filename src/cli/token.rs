//! `nspool token create` and `nspool token list`.

use super::*;

pub(super) async fn token_create(
    settings: Arc<Settings>,
    role: String,
    workspace: Option<Uuid>,
    label: String,
) -> anyhow::Result<()> {
    let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("{e}"))?;
    with_service(settings, move |service| async move {
        let created = service
            .create_token(&Caller::Operator, role, workspace, &label)
            .await?;
        println!("{}", created.token);
        Ok(())
    })
    .await
}

pub(super) async fn token_list(settings: Arc<Settings>) -> anyhow::Result<()> {
    with_service(settings, |service| async move {
        println!("{:<36}  {:<16} {:<36} LABEL", "ID", "ROLE", "WORKSPACE");
        for t in service.tokens(&Caller::Operator).await? {
            println!(
                "{}  {:<16} {:<36} {}{}",
                t.id,
                t.role,
                t.workspace_id
                    .map(|w| w.to_string())
                    .unwrap_or_else(|| "-".into()),
                t.label,
                if t.revoked_at.is_some() {
                    "  (revoked)"
                } else {
                    ""
                }
            );
        }
        Ok(())
    })
    .await
}
