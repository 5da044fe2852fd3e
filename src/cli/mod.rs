//! The command line: serve, migrate, reclaim, token, pool, config, schema.

use crate::app::{self, Database};
use crate::config::{ConfigErrors, Settings};
use crate::domain::{Caller, Role};
use crate::telemetry;

mod pool;
mod terminal;
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use terminal::{Bar, print_summary};
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "nspool",
    version,
    about = "A pool of pre-created Kubernetes namespaces for Astronomer Software"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ConfigArg {
    /// The platform's config.yaml (Helm values); without it every default applies.
    #[arg(long, short = 'c', env = "NSPOOL_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (embedded PostgreSQL unless DATABASE_URL is set).
    Serve(ConfigArg),
    /// Apply the database migrations and exit.
    Migrate(ConfigArg),
    /// Hard-delete Deployments soft-deleted more than DAYS ago, freeing their namespaces.
    Reclaim {
        #[command(flatten)]
        config: ConfigArg,
        /// Retention in days (default: astronomer.houston.cleanupDeployments.olderThan).
        #[arg(long)]
        older_than: Option<u32>,
        /// List what would be reclaimed, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The pool namespaces' Commander RBAC.
    #[command(subcommand)]
    Rbac(RbacCommand),
    /// The pool: list, show, cordon, uncordon, mark clean.
    #[command(subcommand)]
    Pool(pool::PoolCommand),
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Exit 0 when the local server answers /healthz (for container health checks).
    Healthcheck {
        /// The server's address.
        #[arg(long, env = "NSPOOL_LISTEN", default_value = "127.0.0.1:8871")]
        listen: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print only the token.
    Create {
        #[command(flatten)]
        config: ConfigArg,
        /// SYSTEM_ADMIN, SYSTEM_EDITOR, SYSTEM_VIEWER, WORKSPACE_ADMIN, WORKSPACE_EDITOR or WORKSPACE_VIEWER.
        #[arg(long)]
        role: String,
        /// The workspace of a WORKSPACE_* role.
        #[arg(long)]
        workspace: Option<Uuid>,
        /// A note on whom the token is for.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List tokens (never their secrets).
    List(ConfigArg),
    /// Revoke a token by id; it stops working at once.
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        id: Uuid,
    },
}

#[derive(Subcommand)]
enum RbacCommand {
    /// Print the seed's option-2 manifest (Namespace, Role, RoleBinding) for
    /// every pool namespace, or the named ones, for `kubectl apply -f`.
    Render {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long = "namespace")]
        namespaces: Vec<String>,
    },
    /// Verify every pool namespace in the cluster now; exit 1 when any is
    /// broken or missing, or the check failed.
    Check(ConfigArg),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective settings, or every error (exit 2).
    Check(ConfigArg),
    /// Print every key nspool reads, as the markdown table of docs/configuration.md.
    Keys,
}

fn load(config: &ConfigArg) -> Result<Settings, ExitCode> {
    Settings::load(config.config.as_deref()).map_err(|ConfigErrors { errors, warnings }| {
        eprintln!("nspool: the configuration is not valid:");
        for error in errors {
            eprintln!("  {error}");
        }
        // A typo'd key is often why a required value seems missing.
        for warning in warnings {
            eprintln!("warning: {warning}");
        }
        ExitCode::from(2)
    })
}

/// For the commands whose work follows from the pool config (serve and
/// migrate sync the pool to it; rbac and config check read it): without one,
/// an empty default would retire every namespace or check nothing.
fn require(config: &ConfigArg, command: &str) -> Result<Settings, ExitCode> {
    if config.config.is_none() {
        eprintln!(
            "nspool {command}: needs the platform's config.yaml: pass --config FILE or set NSPOOL_CONFIG"
        );
        return Err(ExitCode::from(2));
    }
    load(config)
}

fn warn(settings: &Settings) {
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    let settings = match &cli.command {
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            return ExitCode::SUCCESS;
        }
        Command::Healthcheck { listen } => return healthcheck(listen).await,
        Command::Config(ConfigCommand::Check(config)) => return config_check(config),
        Command::Config(ConfigCommand::Keys) => {
            print!("{}", crate::config::keys::reference_markdown());
            return ExitCode::SUCCESS;
        }
        Command::Rbac(RbacCommand::Render { config, namespaces }) => {
            return rbac_render(config, namespaces);
        }
        Command::Serve(c) => require(c, "serve"),
        Command::Migrate(c) => require(c, "migrate"),
        Command::Rbac(RbacCommand::Check(c)) => require(c, "rbac check"),
        Command::Reclaim {
            config,
            older_than: None,
            ..
        } if config.config.is_none() => {
            eprintln!(
                "nspool reclaim: give --older-than DAYS, or --config FILE for astronomer.houston.cleanupDeployments.olderThan"
            );
            return ExitCode::from(2);
        }
        // Tokens, reclaim and the pool commands need only the database: the
        // config is optional (the pool table is as the last sync left it).
        Command::Token(TokenCommand::List(c)) => load(c),
        Command::Pool(command) => load(command.config()),
        Command::Reclaim { config, .. }
        | Command::Token(
            TokenCommand::Create { config, .. } | TokenCommand::Revoke { config, .. },
        ) => load(config),
    };
    let settings = match settings {
        Ok(settings) => Arc::new(settings),
        Err(code) => return code,
    };
    telemetry::init(settings.service.log_format);
    warn(&settings);
    let result = match cli.command {
        Command::Serve(c) => serve(settings, c.config).await,
        Command::Migrate(_) => migrate(settings).await,
        Command::Reclaim {
            older_than,
            dry_run,
            ..
        } => reclaim(settings, older_than, dry_run).await,
        Command::Token(TokenCommand::Create {
            role,
            workspace,
            label,
            ..
        }) => token_create(settings, role, workspace, label).await,
        Command::Token(TokenCommand::List(_)) => token_list(settings).await,
        Command::Token(TokenCommand::Revoke { id, .. }) => {
            with_service(settings, move |service| async move {
                let row = service.revoke_token(&Caller::Operator, id).await?;
                println!("revoked {} ({})", row.id, row.role);
                Ok(())
            })
            .await
        }
        Command::Rbac(RbacCommand::Check(_)) => return rbac_check(settings).await,
        Command::Pool(command) => pool::run(settings, command).await,
        Command::Schema | Command::Healthcheck { .. } | Command::Config(_) | Command::Rbac(_) => {
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nspool: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// One `GET /healthz` over plain TCP: the image carries no HTTP client.
async fn healthcheck(listen: &str) -> ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server listening on every address is reached on loopback.
    let address = listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(&address).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head.starts_with(b"HTTP/1.1 200"))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), probe).await {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => {
            eprintln!("nspool healthcheck: {address} answered, but not 200");
            ExitCode::FAILURE
        }
        Ok(Err(error)) => {
            eprintln!("nspool healthcheck: {address}: {error}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("nspool healthcheck: {address} did not answer within 3 s");
            ExitCode::FAILURE
        }
    }
}

fn config_check(config: &ConfigArg) -> ExitCode {
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
    println!("# {}", settings.nspool_rbac_advice());
    match settings.unchecked_release_note() {
        Some(note) => println!("# {note}"),
        None => println!(
            "# released namespaces are checked for leftovers before they are offered again (nspool.kubernetes.checkReleased); in auto mode only where a cluster is found"
        ),
    }
    ExitCode::SUCCESS
}

/// Runs `work` against a migrated database, then closes it. The pool table
/// stays as the last `serve` or `migrate` left it.
async fn with_service<F, Fut>(settings: Arc<Settings>, work: F) -> anyhow::Result<()>
where
    F: FnOnce(crate::pool::PoolService) -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::pool::Error>>,
{
    let database = Database::open(&settings, 4).await?;
    let outcome = async {
        let service = app::open(settings, database.store.clone()).await?;
        work(service).await.map_err(|e| anyhow::anyhow!("{e}"))
    }
    .await;
    database.close().await;
    outcome
}

async fn serve(settings: Arc<Settings>, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    // Connections are capped below this limit; the higher it is, the more fit.
    if let Some(files) = crate::http::server::raise_open_file_limit() {
        tracing::debug!(files, "open file limit");
    }
    // Bound first: a start that cannot listen must not change the shared
    // state (the pool sync below retires and adds namespaces).
    let listener = tokio::net::TcpListener::bind(settings.service.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.service.listen))?;
    let database = Database::open(&settings, settings.service.database_max_connections).await?;
    let outcome = async {
        let service = app::prepare(settings.clone(), database.store.clone()).await?;
        let address = listener.local_addr()?;
        if database.is_embedded() {
            match service
                .create_first_admin_token()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                // The token alone on its line, for scripts; where to paste it before.
                Some(token) => println!(
                    "First SYSTEM_ADMIN token, shown once. Paste it to sign in at http://{address}/ (the pool dashboard), in GraphiQL's Headers pane at http://{address}/v1, or where `astro login` asks:\n{token}"
                ),
                None => tracing::info!(
                    "tokens exist already; make another with: nspool token create --config {} --role SYSTEM_ADMIN --label <who>",
                    config_path
                        .as_deref()
                        .map_or("<config.yaml>".into(), |p| p.display().to_string())
                ),
            }
        }
        let database_kind = match &settings.service.database_url {
            Some(url) => crate::telemetry::mask_password(url),
            None => "embedded PostgreSQL (Unix socket)".to_owned(),
        };
        let pool = service
            .store()
            .pool_summary()
            .await
            .map_err(|e| anyhow::anyhow!("could not read the pool: {e}"))?;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            database = %database_kind,
            kubernetes = ?settings.service.kubernetes_mode,
            pool = pool.active,
            held = pool.held_live,
            soft_deleted = pool.held_soft_deleted,
            broken = pool.broken,
            "nspool listening on http://{address}/v1 (GraphQL; GET for GraphiQL)"
        );
        app::run_until_signal(listener, service, config_path).await
    }
    .await;
    database.close().await;
    tracing::info!("nspool exited");
    outcome
}

/// Migrations and the pool synced to the config, with a summary of both.
async fn migrate(settings: Arc<Settings>) -> anyhow::Result<()> {
    let database = Database::open(&settings, 4).await?;
    let bar = Bar::new("applying migrations and syncing the pool");
    let outcome = app::prepare_reporting(settings, database.store.clone()).await;
    bar.finish();
    database.close().await;
    let (_, report) = outcome?;
    let count = |names: &Vec<String>| names.len().to_string();
    println!(
        "migrated; pool synced: {} added, {} back, {} retired",
        report.added.len(),
        report.restored.len(),
        report.retired.len()
    );
    print_summary(
        "migrate summary",
        &[
            (
                "migrations",
                crate::store::MIGRATOR.iter().count().to_string(),
            ),
            ("namespaces added", count(&report.added)),
            ("namespaces back in the pool", count(&report.restored)),
            ("namespaces retired", count(&report.retired)),
            ("held by existing Deployments", count(&report.adopted)),
        ],
    );
    Ok(())
}

async fn reclaim(
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

async fn token_create(
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

async fn token_list(settings: Arc<Settings>) -> anyhow::Result<()> {
    with_service(settings, |service| async move {
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

fn rbac_render(config: &ConfigArg, only: &[String]) -> ExitCode {
    let settings = match require(config, "rbac render") {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let pool: Vec<&str> = settings
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

async fn rbac_check(settings: Arc<Settings>) -> ExitCode {
    use crate::kube::client::KubeClient;
    use crate::kube::reconcile::KubeWorker;
    let mode = match settings.service.kubernetes_mode {
        crate::config::KubernetesMode::Off => crate::config::KubernetesMode::Off,
        _ => crate::config::KubernetesMode::Cluster,
    };
    let kube = match KubeClient::connect(mode).await {
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
        if let Ok(pool) = service.store().pool_summary().await {
            crate::pool::Progress::set_length(
                bar.as_ref(),
                u64::try_from(pool.active).unwrap_or(0),
            );
        }
        let report = KubeWorker::new(&service, kube)
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
