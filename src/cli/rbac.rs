//! `nspool rbac render` and `nspool rbac check`.

use super::*;

pub(super) fn rbac_render(config: &ConfigArg, only: &[String], cluster: Option<&str>) -> ExitCode {
    let settings = match require(config, "rbac render") {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let cluster = match crate::pool::clusters::cluster_by_name(&settings, cluster) {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("nspool: {error}");
            return ExitCode::from(2);
        }
    };
    let pool: Vec<&str> = cluster
        .pool
        .namespaces
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    for name in only {
        if !pool.contains(&name.as_str()) {
            eprintln!(
                "nspool: {name} is not a pool namespace (pool: {})",
                pool.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    let names: Vec<&str> = if only.is_empty() {
        pool
    } else {
        only.iter().map(String::as_str).collect()
    };
    let target = crate::kube::objects::RbacTarget::from_settings(&settings.service);
    match crate::kube::objects::render(&names, &target, &settings.service.pool_labels) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("nspool: cannot render: {error}");
            ExitCode::FAILURE
        }
    }
}

pub(super) async fn rbac_check(settings: Arc<Settings>, cluster: Option<&str>) -> ExitCode {
    use crate::kube::client::KubeClient;
    use crate::kube::reconcile::KubeWorker;
    let mode = match settings.service.kubernetes_mode {
        crate::config::KubernetesMode::Off => crate::config::KubernetesMode::Off,
        _ => crate::config::KubernetesMode::Cluster,
    };
    let name = match crate::pool::clusters::cluster_by_name(&settings, cluster) {
        Ok(cluster) => cluster.name.clone(),
        Err(error) => {
            eprintln!("nspool: {error}");
            return ExitCode::from(2);
        }
    };
    let Some(chosen) = settings.cluster_named(&name).cloned() else {
        return ExitCode::from(2);
    };
    let kube = match KubeClient::connect_cluster(mode, &chosen).await {
        Ok(Some(kube)) => kube,
        Ok(None) => {
            eprintln!("nspool: Kubernetes mode is off (nspool.kubernetes.mode); nothing to check");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("nspool: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut healthy = true;
    let result = with_service(settings, |service| async move {
        let bar = Arc::new(Bar::new("checking pool namespaces"));
        // The service knows the database's id of a cluster the config gave none.
        let Some(chosen) = service.settings().cluster_named(&name).cloned() else {
            return Err(crate::pool::Error::NotFound(format!("no cluster {name}")));
        };
        if let Ok(pool) = service.store().pool_summary(Some(chosen.id)).await {
            crate::pool::Progress::set_length(
                bar.as_ref(),
                u64::try_from(pool.active).unwrap_or(0),
            );
        }
        let report = KubeWorker::for_cluster(&service, &chosen, kube)
            .with_progress(bar.clone())
            .pass(true)
            .await;
        bar.finish();
        let report = report.map_err(|e| crate::pool::Error::BadInput(e.to_string()))?;
        println!("checked {} namespace(s)", report.checked);
        for (name, denied) in &report.broken {
            println!(
                "BROKEN  {name}: the Commander account cannot {}",
                denied.join(", ")
            );
        }
        for name in &report.missing {
            println!("MISSING {name}: the namespace does not exist");
        }
        for (name, error) in &report.failed {
            println!("FAILED  {name}: {error}");
        }
        for (permission, allowed) in &report.cluster_scoped {
            println!(
                "CLUSTER {permission}: a Role cannot grant this; at cluster scope it is {}",
                if *allowed { "allowed" } else { "not allowed" }
            );
        }
        for permission in &report.stale {
            println!("STALE   {permission}: the cluster does not serve this API group");
        }
        for (name, labels) in &report.labels_missing {
            println!(
                "LABELS  {name}: missing {} (the platform selects Deployment namespaces by them)",
                labels.join(", ")
            );
        }
        for name in &report.cleaned {
            println!("CLEAN   {name}: released, nothing left behind; offered again");
        }
        for (name, left) in &report.leftovers {
            println!(
                "LEFT    {name}: releasing, not offered while left behind: {}",
                left.join(", ")
            );
        }
        print_summary(
            "rbac check summary",
            &[
                ("checked", report.checked.to_string()),
                ("broken", report.broken.len().to_string()),
                ("missing", report.missing.len().to_string()),
                ("could not check", report.failed.len().to_string()),
                (
                    "cluster-scoped rules",
                    report.cluster_scoped.len().to_string(),
                ),
                ("stale rules", report.stale.len().to_string()),
                (
                    "pool labels missing",
                    report.labels_missing.len().to_string(),
                ),
                ("released and found clean", report.cleaned.len().to_string()),
                (
                    "releasing with leftovers",
                    report.leftovers.len().to_string(),
                ),
            ],
        );
        if report.broken.is_empty() && report.missing.is_empty() && report.failed.is_empty() {
            println!(
                "every pool namespace grants the Commander account its namespaced permissions"
            );
            Ok(())
        } else {
            Err(crate::pool::Error::Conflict(
                "some pool namespaces are broken, missing or could not be checked".into(),
            ))
        }
    })
    .await;
    if let Err(error) = result {
        eprintln!("nspool: {error:#}");
        healthy = false;
    }
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
