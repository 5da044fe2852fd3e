//! `nspool pool`: the pool at a terminal, like kubectl: aligned columns on
//! stdout, JSON with `--output json` (fields as the GraphQL API names them).

use super::{ConfigArg, with_service};
use crate::config::Settings;
use crate::domain::Caller;
use crate::pool::{PoolNamespaceView, PoolService, SHOWN_STATES};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::io::Write as _;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum PoolCommand {
    /// Every pool namespace with its state, holder and cordon.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// The cluster (its name in nspool.clusters); needed when nspool
        /// serves several, except for `list`, which then shows them all.
        #[arg(long)]
        cluster: Option<String>,
        /// Only namespaces in this state (free, held, soft-deleted, retired,
        /// releasing, cordoned, broken).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(SHOWN_STATES))]
        state: Option<String>,
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// One namespace: its state, holder, cordon and last events.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        /// The cluster (its name in nspool.clusters); needed when nspool
        /// serves several, except for `list`, which then shows them all.
        #[arg(long)]
        cluster: Option<String>,
        name: String,
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Keep a namespace (or with --all, every claim) out of the pool.
    Cordon {
        #[command(flatten)]
        config: ConfigArg,
        /// The cluster (its name in nspool.clusters); needed when nspool
        /// serves several, except for `list`, which then shows them all.
        #[arg(long)]
        cluster: Option<String>,
        /// The namespace; leave it out with --all.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Cordon the whole pool: no claims until `nspool pool uncordon --all`.
        #[arg(long)]
        all: bool,
        /// Why: refused claims and the events show it.
        #[arg(long)]
        reason: String,
        /// When it lifts by itself: RFC 3339 (2026-12-24T06:00:00Z) or a
        /// duration from now (90m, 12h, 2d).
        #[arg(long, value_parser = parse_until)]
        until: Option<DateTime<Utc>>,
    },
    /// Offer a cordoned namespace again (or with --all, open the pool).
    Uncordon {
        #[command(flatten)]
        config: ConfigArg,
        /// The cluster (its name in nspool.clusters); needed when nspool
        /// serves several, except for `list`, which then shows them all.
        #[arg(long)]
        cluster: Option<String>,
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Offer a releasing namespace again at once, whatever its last check found.
    MarkClean {
        #[command(flatten)]
        config: ConfigArg,
        /// The cluster (its name in nspool.clusters); needed when nspool
        /// serves several, except for `list`, which then shows them all.
        #[arg(long)]
        cluster: Option<String>,
        name: String,
        /// Why it is clean: the event keeps it.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

impl PoolCommand {
    /// `--cluster NAME`, as given.
    fn cluster(&self) -> Option<&str> {
        match self {
            PoolCommand::List { cluster, .. }
            | PoolCommand::Show { cluster, .. }
            | PoolCommand::Cordon { cluster, .. }
            | PoolCommand::Uncordon { cluster, .. }
            | PoolCommand::MarkClean { cluster, .. } => cluster.as_deref(),
        }
    }

    pub fn config(&self) -> &ConfigArg {
        match self {
            PoolCommand::List { config, .. }
            | PoolCommand::Show { config, .. }
            | PoolCommand::Cordon { config, .. }
            | PoolCommand::Uncordon { config, .. }
            | PoolCommand::MarkClean { config, .. } => config,
        }
    }
}

/// `2026-12-24T06:00:00Z`, or `90m` / `12h` / `2d` / `30s` from now.
fn parse_until(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let split = text.len().saturating_sub(1);
    let (number, unit) = text.split_at_checked(split).unwrap_or((text, ""));
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(n) if seconds > 0 && n > 0 => n
            .checked_mul(seconds)
            .and_then(chrono::Duration::try_seconds)
            .and_then(|d| Utc::now().checked_add_signed(d))
            .ok_or_else(|| format!("\"{text}\" is too far ahead")),
        _ => Err(format!(
            "\"{text}\" is neither an RFC 3339 time (2026-12-24T06:00:00Z) nor a duration (90m, 12h, 2d)"
        )),
    }
}

pub async fn run(settings: Arc<Settings>, command: PoolCommand) -> anyhow::Result<()> {
    with_service(settings, move |service| async move {
        let settings = service.settings();
        let listing = matches!(command, PoolCommand::List { .. });
        // `list` without --cluster shows every cluster; the others need one
        // when there are several.
        let cluster = match (command.cluster(), listing) {
            (None, true) => None,
            (name, _) => Some(service.cluster_id_named(name).await?),
        };
        let many = settings.many_clusters();
        // What the commands it suggests need to say the same cluster.
        let command_cluster = match command.cluster() {
            Some(name) if many => format!(" --cluster {name}"),
            _ => String::new(),
        };
        let mut out = std::io::stdout().lock();
        let text = match command {
            PoolCommand::List { state, output, .. } => {
                list(&service, cluster, many, state, output).await?
            }
            PoolCommand::Show { name, output, .. } => {
                show(&service, cluster, &name, output).await?
            }
            // As kubectl cordon says it: a second cordon (or uncordon) is
            // "already …" and succeeds (its reason and end are replaced).
            PoolCommand::Cordon {
                name: Some(name),
                reason,
                until,
                ..
            } => {
                let was = cordoned(&service, cluster, &name).await?;
                let view = service
                    .cordon_namespace(&Caller::Operator, cluster, &name, &reason, until)
                    .await?;
                format!(
                    "namespace/{} {}cordoned ({})\n",
                    view.name,
                    if was { "already " } else { "" },
                    view.shown_state()
                )
            }
            PoolCommand::Cordon { reason, until, .. } => {
                let was = service
                    .pool_cordon(&Caller::Operator, cluster)
                    .await?
                    .is_some();
                service
                    .cordon_pool(&Caller::Operator, cluster, &reason, until)
                    .await?;
                format!(
                    "pool {}cordoned: no claims until `nspool pool uncordon --all{}`\n",
                    if was { "already " } else { "" },
                    command_cluster
                )
            }
            PoolCommand::Uncordon {
                name: Some(name), ..
            } => {
                if !cordoned(&service, cluster, &name).await? {
                    format!("namespace/{name} already uncordoned\n")
                } else {
                    let view = service
                        .uncordon_namespace(&Caller::Operator, cluster, &name)
                        .await?;
                    format!(
                        "namespace/{} uncordoned ({})\n",
                        view.name,
                        view.shown_state()
                    )
                }
            }
            PoolCommand::Uncordon { .. } => {
                match service.uncordon_pool(&Caller::Operator, cluster).await? {
                    true => "pool uncordoned\n".to_owned(),
                    false => "pool already uncordoned\n".to_owned(),
                }
            }
            PoolCommand::MarkClean { name, reason, .. } => {
                service
                    .mark_namespace_clean(&Caller::Operator, cluster, &name, &reason)
                    .await?;
                format!("namespace/{name} marked clean: offered again\n")
            }
        };
        // A closed pipe (`| head`) is not an error of the command.
        let _ = out.write_all(text.as_bytes());
        Ok(())
    })
    .await
}

/// Whether pool namespace `name` is cordoned now.
async fn cordoned(
    service: &PoolService,
    cluster: Option<uuid::Uuid>,
    name: &str,
) -> Result<bool, crate::pool::Error> {
    match service
        .pool_namespace(&Caller::Operator, cluster, name)
        .await?
    {
        Some(view) => Ok(view.cordon.is_some()),
        None => Err(crate::pool::Error::NotFound(format!(
            "\"{}\" is not a namespace of the pool",
            crate::domain::text::excerpt(name)
        ))),
    }
}

/// How long ago, as kubectl's AGE column says it: 45s, 12m, 5h, 3d, 2y.
fn age(at: Option<DateTime<Utc>>) -> String {
    let Some(at) = at else {
        return "-".into();
    };
    let seconds = (Utc::now() - at).num_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 120 * 60 => format!("{}m", s / 60),
        s if s < 48 * 3_600 => format!("{}h", s / 3_600),
        s if s < 730 * 86_400 => format!("{}d", s / 86_400),
        s => format!("{}y", s / (365 * 86_400)),
    }
}

fn time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "-".into(),
        |at| at.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

fn cordon_json(view: &PoolNamespaceView) -> Value {
    match &view.cordon {
        Some(cordon) => json!({
            "reason": cordon.reason,
            "by": cordon.by,
            "at": cordon.at,
            "until": cordon.until,
        }),
        None => Value::Null,
    }
}

fn namespace_json(view: &PoolNamespaceView, cluster: &str) -> Value {
    json!({
        "clusterId": view.cluster_id,
        "cluster": cluster,
        "name": view.name,
        "state": view.shown_state(),
        "source": view.source,
        "holder": view.holder.as_ref().map(|d| json!({
            "id": d.id,
            "releaseName": d.release_name,
            "label": d.label,
            "workspaceId": d.workspace.id,
            "workspace": d.workspace.label,
            "deletedAt": d.deleted_at,
        })),
        "claimedAt": view.claimed_at,
        "releasingSince": view.releasing_since,
        "retiredAt": view.retired_at,
        "reclaimableAt": view.reclaimable_at,
        "rbacState": view.rbac_state,
        "kubeError": view.kube_error,
        "cordon": cordon_json(view),
        "note": view.note,
    })
}

/// Elastic columns, as kubectl aligns them.
fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut writer = tabwriter::TabWriter::new(Vec::new()).padding(3);
    let _ = writeln!(writer, "{}", header.join("\t"));
    for row in rows {
        // A tab or newline inside a value would break the columns.
        let cells: Vec<String> = row
            .into_iter()
            .map(|cell| cell.replace(['\t', '\n', '\r'], " "))
            .collect();
        let _ = writeln!(writer, "{}", cells.join("\t"));
    }
    writer
        .into_inner()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

async fn list(
    service: &PoolService,
    cluster: Option<uuid::Uuid>,
    many: bool,
    state: Option<String>,
    output: Output,
) -> Result<String, crate::pool::Error> {
    let settings = service.settings();
    let views: Vec<PoolNamespaceView> = service
        .pool_view(&Caller::Operator, cluster)
        .await?
        .into_iter()
        .filter(|v| state.as_deref().is_none_or(|s| v.shown_state() == s))
        .collect();
    // Each cluster's pool cordon: with it nothing of that cluster is offered.
    let mut cordons = std::collections::HashMap::new();
    for c in &settings.clusters {
        if cluster.is_none_or(|id| id == c.id)
            && let Some(cordon) = service.pool_cordon(&Caller::Operator, Some(c.id)).await?
        {
            cordons.insert(c.id, (c.name.clone(), cordon));
        }
    }
    let cluster_name = |id: uuid::Uuid| {
        settings
            .cluster(id)
            .map_or_else(|| id.to_string(), |c| c.name.clone())
    };
    // With the whole pool cordoned nothing is offered: a free namespace
    // shows it, as kubectl shows SchedulingDisabled.
    let shown = |v: &PoolNamespaceView| match (cordons.contains_key(&v.cluster_id), v.shown_state())
    {
        (true, "free") => "free,PoolCordoned".to_owned(),
        (_, state) => state.to_owned(),
    };
    Ok(match output {
        Output::Json => {
            let items: Vec<Value> = views
                .iter()
                .map(|v| namespace_json(v, &cluster_name(v.cluster_id)))
                .collect();
            format!("{}\n", json!({ "items": items }))
        }
        Output::Table => {
            let mut text = String::new();
            for (name, cordon) in cordons.values() {
                let whose = if many {
                    format!("The pool of cluster {name}")
                } else {
                    "The pool".to_owned()
                };
                text.push_str(&format!(
                    "{whose} is cordoned ({}, by {} at {}, {}): no namespace is offered.\n",
                    cordon.reason,
                    cordon.by,
                    time(Some(cordon.at)),
                    cordon.until.map_or("until uncordoned".into(), |t| format!(
                        "until {}",
                        time(Some(t))
                    ))
                ));
            }
            let mut header = vec!["NAME", "STATE", "HOLDER", "WORKSPACE", "CLAIMED", "CORDON"];
            if many {
                header.insert(0, "CLUSTER");
            }
            text.push_str(&table(
                &header,
                views.iter().map(|v| {
                    let mut row = vec![
                        v.name.clone(),
                        shown(v),
                        v.holder
                            .as_ref()
                            .map_or("-".into(), |d| d.release_name.clone()),
                        v.holder
                            .as_ref()
                            .map_or("-".into(), |d| d.workspace.label.clone()),
                        age(v.claimed_at),
                        v.cordon
                            .as_ref()
                            .map_or_else(|| "-".into(), |c| c.reason.clone()),
                    ];
                    if many {
                        row.insert(0, cluster_name(v.cluster_id));
                    }
                    row
                }),
            ));
            text
        }
    })
}

async fn show(
    service: &PoolService,
    cluster: Option<uuid::Uuid>,
    name: &str,
    output: Output,
) -> Result<String, crate::pool::Error> {
    let view = service
        .pool_namespace(&Caller::Operator, cluster, name)
        .await?
        .ok_or_else(|| {
            crate::pool::Error::NotFound(format!(
                "\"{}\" is not a namespace of the pool",
                crate::domain::text::excerpt(name)
            ))
        })?;
    let events = service
        .events(&Caller::Operator, Some(view.cluster_id), Some(name), 10)
        .await?;
    let pool_cordon = service
        .pool_cordon(&Caller::Operator, Some(view.cluster_id))
        .await?;
    let settings = service.settings();
    let cluster_name = settings
        .cluster(view.cluster_id)
        .map_or_else(|| view.cluster_id.to_string(), |c| c.name.clone());
    Ok(match output {
        Output::Json => {
            let mut value = namespace_json(&view, &cluster_name);
            value["events"] = events
                .iter()
                .map(|e| {
                    json!({"at": e.at, "kind": e.kind, "actor": e.actor, "reason": e.reason,
                           "releaseName": e.release_name})
                })
                .collect();
            format!("{value}\n")
        }
        Output::Table => {
            let mut text = String::new();
            let field = |text: &mut String, key: &str, value: String| {
                text.push_str(&format!("{:<16}{value}\n", format!("{key}:")));
            };
            field(&mut text, "Name", view.name.clone());
            if settings.many_clusters() {
                field(&mut text, "Cluster", cluster_name.clone());
            }
            match (&pool_cordon, view.shown_state()) {
                (Some(cordon), "free") => field(
                    &mut text,
                    "State",
                    format!(
                        "free,PoolCordoned (the pool is cordoned by {}: {}; not offered)",
                        cordon.by, cordon.reason
                    ),
                ),
                (_, state) => field(&mut text, "State", state.to_owned()),
            }
            field(&mut text, "Source", view.source.clone());
            match &view.holder {
                Some(d) => field(
                    &mut text,
                    "Holder",
                    format!(
                        "{} (label {}, workspace {}{})",
                        d.release_name,
                        d.label,
                        d.workspace.label,
                        d.deleted_at.map_or(String::new(), |at| format!(
                            ", soft-deleted {}",
                            time(Some(at))
                        ))
                    ),
                ),
                None => field(&mut text, "Holder", "-".into()),
            }
            field(&mut text, "RBAC", view.rbac_state.clone());
            if let Some(cordon) = &view.cordon {
                field(
                    &mut text,
                    "Cordoned",
                    format!(
                        "{} (by {} at {}, until {})",
                        cordon.reason,
                        cordon.by,
                        time(Some(cordon.at)),
                        cordon.until.map_or("uncordoned".into(), |t| time(Some(t)))
                    ),
                );
            }
            if let Some(error) = &view.kube_error {
                field(&mut text, "Kubernetes", error.clone());
            }
            if let Some(note) = &view.note {
                field(&mut text, "Note", note.clone());
            }
            text.push_str("Events:\n");
            text.push_str(&table(
                &["  AT", "KIND", "ACTOR", "REASON"],
                events.iter().map(|e| {
                    vec![
                        format!("  {}", time(Some(e.at))),
                        e.kind.clone(),
                        e.actor.clone(),
                        e.reason.clone().unwrap_or_default(),
                    ]
                }),
            ));
            text
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_a_time_or_a_duration() {
        let at = parse_until("2030-01-02T03:04:05Z").unwrap();
        assert_eq!(at.to_rfc3339(), "2030-01-02T03:04:05+00:00");
        let soon = parse_until("90m").unwrap() - Utc::now();
        assert!((89..=90).contains(&soon.num_minutes()), "{soon}");
        assert!(parse_until("2d").unwrap() > Utc::now() + chrono::Duration::days(1));
        for bad in ["", "m", "0h", "-3h", "12x", "tomorrow", "99999999999999d"] {
            assert!(parse_until(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn columns_align_and_values_cannot_break_them() {
        let text = table(
            &["NAME", "STATE"],
            [
                vec!["a".into(), "free".into()],
                vec!["longer-name".into(), "held\tx\ny".into()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0].find("STATE"), lines[2].find("held"), "{text}");
    }
}
