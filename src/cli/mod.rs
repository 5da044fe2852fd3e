//! The command line: serve, migrate, reclaim, token, pool, config, schema.

use crate::app::{self, Database};
use crate::config::{ConfigErrors, Settings};
use crate::domain::{Caller, Role};
use crate::telemetry;

mod config;
mod pool;
mod rbac;
mod reclaim;
mod serve;
mod terminal;
mod token;
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
    /// Say what happens on the way (INFO on stderr: the embedded
    /// PostgreSQL's start and stop, …); commands other than `serve` and
    /// `migrate` otherwise speak only of what is wrong.
    #[arg(long, short = 'v', global = true)]
    verbose: bool,
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
        /// The cluster whose pool (its name in nspool.clusters); needed when
        /// nspool serves several.
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Verify every pool namespace in the cluster now; exit 1 when any is
    /// broken or missing, or the check failed.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// The cluster to check (its name in nspool.clusters); needed when
        /// nspool serves several.
        #[arg(long)]
        cluster: Option<String>,
    },
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
        Command::Healthcheck { listen } => return serve::healthcheck(listen).await,
        Command::Config(ConfigCommand::Check(config)) => return config::config_check(config),
        Command::Config(ConfigCommand::Keys) => {
            print!("{}", crate::config::keys::reference_markdown());
            return ExitCode::SUCCESS;
        }
        Command::Rbac(RbacCommand::Render {
            config,
            namespaces,
            cluster,
        }) => {
            return rbac::rbac_render(config, namespaces, cluster.as_deref());
        }
        Command::Serve(c) => require(c, "serve"),
        Command::Migrate(c) => require(c, "migrate"),
        Command::Rbac(RbacCommand::Check { config, .. }) => require(config, "rbac check"),
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
    // A service logs what it does; a command at a terminal only what is wrong.
    let chatty = cli.verbose || matches!(cli.command, Command::Serve(_) | Command::Migrate(_));
    telemetry::init(settings.service.log_format, chatty);
    warn(&settings);
    let result = match cli.command {
        Command::Serve(c) => serve::serve(settings, c.config).await,
        Command::Migrate(_) => serve::migrate(settings).await,
        Command::Reclaim {
            older_than,
            dry_run,
            ..
        } => reclaim::reclaim(settings, older_than, dry_run).await,
        Command::Token(TokenCommand::Create {
            role,
            workspace,
            label,
            ..
        }) => token::token_create(settings, role, workspace, label).await,
        Command::Token(TokenCommand::List(_)) => token::token_list(settings).await,
        Command::Token(TokenCommand::Revoke { id, .. }) => {
            with_service(settings, move |service| async move {
                let row = service.revoke_token(&Caller::Operator, id).await?;
                println!("revoked {} ({})", row.id, row.role);
                Ok(())
            })
            .await
        }
        Command::Rbac(RbacCommand::Check { cluster, .. }) => {
            return rbac::rbac_check(settings, cluster.as_deref()).await;
        }
        Command::Pool(command) => pool::run(settings, command).await,
        Command::Schema | Command::Healthcheck { .. } | Command::Config(_) | Command::Rbac(_) => {
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nspool: {error:#}");
            // What the command was asked is refused: a usage error, as
            // clap's, `rbac` and `config check` exit.
            if error.downcast_ref::<Refused>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A command's arguments refused by the pool service (an unknown
/// `--cluster`, an empty reason): exit 2 rather than 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

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
        work(service).await.map_err(|e| match e {
            crate::pool::Error::BadInput(_) => anyhow::Error::new(Refused(e.to_string())),
            e => anyhow::anyhow!("{e}"),
        })
    }
    .await;
    database.close().await;
    outcome
}
