//! `nspool reclaim`: one reclaim run by hand.

use super::*;

pub(super) async fn reclaim(
    settings: Arc<Settings>,
    older_than: Option<u32>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let days = older_than.unwrap_or(settings.cleanup.older_than_days);
    let mode = settings.service.kubernetes_mode;
    with_service(settings, move |service| async move {
        // As `serve` decides: no cluster here in `auto` mode, no leftover checks.
        if matches!(
            crate::kube::client::KubeClient::connect(mode).await,
            Ok(None)
        ) {
            service.without_kubernetes();
        }
        let bar = Arc::new(Bar::new("reclaiming"));
        let report = service
            .reclaim_showing(&Caller::Operator, days, dry_run, bar.clone())
            .await;
        bar.finish();
        let report = report?;
        let verb = match (dry_run, service.checks_released()) {
            (true, _) => "would free",
            (false, true) => "released (offered again once found clean)",
            (false, false) => "freed",
        };
        for d in &report.deployments {
            println!(
                "{verb} namespace {} (Deployment {})",
                d.namespace, d.release_name
            );
        }
        println!(
            "{} Deployment(s) soft-deleted before {} {}",
            report.count,
            report.cutoff.to_rfc3339(),
            if dry_run {
                "would be reclaimed (dry run)"
            } else {
                "reclaimed"
            }
        );
        let mut rows = vec![
            ("run", report.run_id.to_string()),
            ("older than", format!("{days} days")),
            ("cutoff", report.cutoff.to_rfc3339()),
            (
                if dry_run {
                    "would reclaim"
                } else {
                    "reclaimed"
                },
                report.count.to_string(),
            ),
        ];
        if let Some(stopped) = &report.stopped {
            rows.push(("stopped", stopped.clone()));
        }
        print_summary("reclaim summary", &rows);
        Ok(())
    })
    .await
}
