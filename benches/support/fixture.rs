//! A pool as the benches need it: 1,000 namespaces (500 held through the
//! service) and 100,000 events of history spread over the last 14 days.

use nspool::config::Settings;
use nspool::domain::{Caller, Role};
use nspool::pool::{CreateDeployment, DeploymentInput, PoolService};
use nspool::store::Store;
use sqlx::PgPool;
use std::sync::Arc;
use uuid::Uuid;

#[allow(dead_code)] // Each bench uses the fields it needs.
pub struct Fixture {
    pub service: PoolService,
    pub admin: String,
    pub workspace: Uuid,
}

pub async fn pool_with_history(pool: &PgPool) -> anyhow::Result<Fixture> {
    let names: Vec<String> = (0..1_000).map(|i| format!("ns-{i:04}")).collect();
    let config = format!(
        "global: {{features: {{namespacePools: {{enabled: true, namespaces: {{names: [{}]}}}}}}}}",
        names.join(", ")
    );
    let settings =
        Arc::new(Settings::parse(&config, &|_| None).map_err(|e| anyhow::anyhow!("{e}"))?);
    let service: PoolService = nspool::app::prepare(settings, Store::new(pool.clone())).await?;
    let admin = service
        .create_token(
            &Caller::Operator,
            Role::parse("SYSTEM_ADMIN")?,
            None,
            "bench",
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .token;
    let workspace = service
        .create_workspace(&Caller::Operator, "bench", None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .id;
    for name in names.iter().take(500) {
        let input = DeploymentInput {
            label: Some(name.clone()),
            namespace: Some(name.clone()),
            ..DeploymentInput::default()
        };
        service
            .create_deployment(
                &Caller::Operator,
                CreateDeployment {
                    workspace_id: workspace,
                    input,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    // Claims, soft deletes and releases, one every 12 s over two weeks.
    sqlx::query(
        "insert into events (at, kind, namespace, release_name, workspace_id, actor, reason)
         select now() - interval '12 seconds' * (100000 - i),
                (array['claim', 'soft_delete', 'release'])[1 + (i / 1000) % 3],
                'ns-' || lpad((i % 1000)::text, 4, '0'), 'r-' || i, $1, 'bench', 'history'
         from generate_series(1, 100000) i",
    )
    .bind(workspace)
    .execute(pool)
    .await?;
    Ok(Fixture {
        service,
        admin,
        workspace,
    })
}
