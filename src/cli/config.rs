//! `nspool config check`.

use super::*;

pub(super) fn config_check(config: &ConfigArg) -> ExitCode {
    let settings = match require(config, "config check") {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    for warning in &settings.warnings {
        eprintln!("warning: {warning}");
    }
    // The directory the embedded default will use, not "null".
    let mut shown = settings.clone();
    if shown.service.database_url.is_none() && shown.service.data_dir.is_none() {
        shown.service.data_dir = Some(crate::embedded_pg::EmbeddedPostgres::default_data_dir());
    }
    print!("{}", shown.to_yaml());
    for cluster in &settings.clusters {
        if settings.many_clusters() {
            println!(
                "# cluster {}: {}",
                cluster.name,
                cluster.nspool_rbac_advice()
            );
        } else {
            println!("# {}", cluster.nspool_rbac_advice());
        }
        if !cluster.id_given {
            println!(
                "# cluster {}: its id is the one the database made at the first start (the clusters query shows it); set nspool.clusterId to choose it",
                cluster.name
            );
        }
    }
    match settings.unchecked_release_note() {
        Some(note) => println!("# {note}"),
        None => println!(
            "# released namespaces are checked for leftovers before they are offered again (nspool.kubernetes.checkReleased); in auto mode only where a cluster is found"
        ),
    }
    ExitCode::SUCCESS
}
