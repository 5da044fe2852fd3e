//! `nspool serve` and `nspool migrate`: the pool synced to the config, then
//! the API (serve), or only the sync (migrate); and the container's health check.

use super::*;

/// One `GET /healthz` over plain TCP: the image carries no HTTP client.
pub(super) async fn healthcheck(listen: &str) -> ExitCode {
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

pub(super) async fn serve(
    settings: Arc<Settings>,
    config_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    // Connections are capped below this limit; the higher it is, the more fit.
    if let Some(files) = crate::http::server::raise_open_file_limit() {
        tracing::debug!(files, "open file limit");
    }
    // Bound first: a start that cannot listen must not change the shared
    // state (the pool sync below retires and adds namespaces).
    let listener = tokio::net::TcpListener::bind(settings.service.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (another program uses it? set NSPOOL_LISTEN or nspool.listen to another address, e.g. NSPOOL_LISTEN=127.0.0.1:8872)",
                settings.service.listen
            )
        })?;
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
            .pool_summary(None)
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
pub(super) async fn migrate(settings: Arc<Settings>) -> anyhow::Result<()> {
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
