//! Wiring: the database (external or embedded), the pool service, the HTTP
//! server. Tests use the same pieces with a port-0 listener.

use crate::config::Settings;
use crate::embedded_pg::EmbeddedPostgres;
use crate::graphql;
use crate::http::server::ConnectionLimits;
use crate::http::{AppState, router};
use crate::jobs::reclaim_schedule::ReclaimSchedule;
use crate::kube::client::KubeClient;
use crate::pool::PoolService;
use crate::store::Store;
use anyhow::Context as _;
use sqlx::postgres::PgConnectOptions;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The database a command uses, and the embedded server if it is one.
pub struct Database {
    pub store: Store,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// `DATABASE_URL` / `nspool.databaseUrl`, else the embedded PostgreSQL.
    pub async fn open(settings: &Settings, max_connections: u32) -> anyhow::Result<Database> {
        let direct = match &settings.service.database_direct_url {
            Some(url) => Some(PgConnectOptions::from_str(url).context(
                "DATABASE_DIRECT_URL is not a PostgreSQL URL (postgres://user@host:port/database)",
            )?),
            None => None,
        };
        let (options, embedded) = match &settings.service.database_url {
            Some(url) => {
                let options = PgConnectOptions::from_str(url).context(
                    "DATABASE_URL is not a PostgreSQL URL (postgres://user@host:port/database)",
                )?;
                (options, None)
            }
            None => {
                let embedded = EmbeddedPostgres::start(settings.service.data_dir.clone()).await?;
                tracing::info!(data_dir = %embedded.data_dir().display(), "using the embedded PostgreSQL");
                (embedded.connect_options(), Some(embedded))
            }
        };
        let store = Store::connect_lazy(options, direct, max_connections);
        Ok(Database { store, embedded })
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Closes the connections (each said goodbye to, so the server logs no
    /// broken pipe); the last process using the embedded server stops it.
    pub async fn close(self) {
        self.store.close().await;
        if let Some(embedded) = self.embedded {
            match tokio::task::spawn_blocking(move || embedded.stop())
                .await
                .unwrap_or(Ok(false))
            {
                Ok(true) => tracing::info!("embedded PostgreSQL stopped"),
                Ok(false) => {
                    tracing::info!("left the embedded PostgreSQL running for its other users")
                }
                Err(error) => tracing::warn!(%error, "could not stop the embedded PostgreSQL"),
            }
        }
    }
}

/// Every command but `serve` and `migrate`: the database as it is. Only
/// those two migrate; any other command refuses a database that is not
/// nspool's or not migrated to this version, and writes nothing to it.
pub async fn open(settings: Arc<Settings>, store: Store) -> anyhow::Result<PoolService> {
    match store.migrated().await {
        Ok(true) => {
            let service = PoolService::new(store, settings);
            service
                .resolve_cluster_ids()
                .await
                .context("could not read the clusters")?;
            Ok(service)
        }
        Ok(false) => anyhow::bail!(
            "the database is not migrated to this nspool version: run `nspool migrate` (or `nspool serve`) first; nothing was written"
        ),
        Err(error) if error.is_undefined_table() => anyhow::bail!(
            "the database has no nspool tables (is DATABASE_URL another application's database?): run `nspool migrate` on the right one first; nothing was written"
        ),
        Err(error) => Err(error).context("could not read the database's migrations"),
    }
}

/// Migrations, then the pool table brought in line with the config.
pub async fn prepare(settings: Arc<Settings>, store: Store) -> anyhow::Result<PoolService> {
    Ok(prepare_reporting(settings, store).await?.0)
}

/// [`prepare`], also returning what the sync changed.
pub async fn prepare_reporting(
    settings: Arc<Settings>,
    store: Store,
) -> anyhow::Result<(PoolService, crate::store::PoolSyncReport)> {
    store
        .migrate()
        .await
        .context("could not apply the database migrations")?;
    let service = PoolService::new(store, settings);
    let report = match service.try_sync_pool().await {
        Ok(report) => report,
        Err(error @ crate::store::Error::HeldBack { .. }) => {
            // Serve all the same: the pool stays as the other replica's
            // config has it, and the heartbeat tries again.
            tracing::error!(%error, "this replica's pool config is held back");
            service.hold_start_sync();
            crate::store::PoolSyncReport::default()
        }
        Err(error) => anyhow::bail!("could not sync the pool with the config: {error}"),
    };
    for (what, names) in [
        ("added to the pool", &report.added),
        ("back in the pool", &report.restored),
        (
            "retired (no longer in the config; never deleted)",
            &report.retired,
        ),
        ("held by an existing Deployment", &report.adopted),
    ] {
        if !names.is_empty() {
            tracing::info!(namespaces = ?names, "{what}");
        }
    }
    Ok((service, report))
}

pub fn state(service: PoolService) -> AppState {
    let settings = service.settings();
    let mut limits = crate::http::guard::RequestLimits::from(&settings.service.http);
    limits.credential_checks =
        crate::domain::budget::credential_checks(settings.service.database_max_connections);
    let guard = crate::http::guard::Guard::new(limits);
    for cluster in &settings.clusters {
        service.metrics().cluster_series(&cluster.name);
    }
    AppState {
        schema: graphql::schema(service.clone()),
        metrics: Arc::new(crate::http::metrics::Metrics::new(&service.metrics())),
        service,
        guard,
        sign_in_limit: Default::default(),
        pool_reads: Default::default(),
        large_answers: Default::default(),
        dashboard_renders: Default::default(),
        shutting_down: Default::default(),
        probes: Default::default(),
    }
}

/// Serves until `shutdown` completes, then lets running requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, ConnectionLimits::default(), shutdown).await
}

/// [`serve`] with other connection bounds (tests shorten the timeouts).
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = state.service.metrics();
    crate::http::server::serve(listener, router(state), limits, metrics, shutdown).await
}

/// How long running requests and a running reclaim batch get after SIGTERM
/// and the drain (`nspool.http.drainSeconds`).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// Serves until Ctrl-C or SIGTERM, with the reclaim schedule beside the API
/// (and, given the config file, reloads on SIGHUP or a change of the file);
/// then stops taking requests and gives running work [`SHUTDOWN_GRACE`].
pub async fn run_until_signal(
    listener: TcpListener,
    service: PoolService,
    config_path: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let listener_task = {
        let service = service.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move { service.listen(stopped).await })
    };
    let cordon_sweep = {
        let service = service.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move { service.sweep_cordons(stopped).await })
    };
    let agreement = crate::pool::agreement::spawn_heartbeats(&service, stopped.clone());
    let reclaim_takeover = tokio::spawn(crate::jobs::reclaim_takeover::watch(
        service.clone(),
        stopped.clone(),
    ));
    let schedule: crate::jobs::config_watch::ScheduleSlot = Arc::new(tokio::sync::Mutex::new(
        ReclaimSchedule::start(service.clone(), stopped.clone()).await?,
    ));
    let config_watch = config_path.map(|path| {
        tokio::spawn(crate::jobs::config_watch::watch(
            service.clone(),
            path,
            schedule.clone(),
            stopped.clone(),
        ))
    });
    let warming = service.clone();
    tokio::spawn(async move {
        warming.warm_dashboard().await;
        // Reading the config and the pool freed much more than is kept.
        crate::heap::give_back();
    });
    // One client and one worker per cluster: a cluster whose API server is
    // down or slow holds up only its own worker.
    let settings = service.settings();
    let mode = settings.service.kubernetes_mode;
    let mut clients = Vec::new();
    let mut without = Vec::new();
    for cluster in &settings.clusters {
        match KubeClient::connect_cluster(mode, cluster).await? {
            Some(kube) => clients.push((cluster.clone(), kube)),
            None => without.push(cluster.name.as_str()),
        }
    }
    if clients.is_empty() {
        service.without_kubernetes();
    } else if !without.is_empty() {
        // Other clusters have their workers: these have none, so their
        // namespaces are never seen ready and never offered. Said loudly.
        tracing::error!(
            clusters = ?without,
            "no Kubernetes configuration for these clusters (no kubeconfig, no in-cluster config): their namespaces stay pending and are not offered; give each its nspool.clusters[].kubeconfig"
        );
    }
    service.require_readiness().await?;
    let kube_workers = tokio::spawn(crate::kube::workers::supervise(
        service.clone(),
        mode,
        clients,
        stopped.clone(),
    ));
    let mut server_stopped = stopped.clone();
    let limits = ConnectionLimits::from(&service.settings().service.http);
    let state = state(service);
    let shutting_down = state.shutting_down.clone();
    let server = tokio::spawn(serve_with(listener, state, limits, async move {
        let _ = server_stopped.wait_for(|stop| *stop).await;
    }));
    shutdown_signal().await;
    // Not ready at once (load balancers stop sending), while open
    // connections are drained for `nspool.http.drainSeconds`.
    shutting_down.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = stop.send(true);
    let drain = limits.drain;
    let deadline = tokio::time::Instant::now() + drain + SHUTDOWN_GRACE;
    match tokio::time::timeout_at(deadline, server).await {
        Ok(Ok(Ok(()))) => tracing::info!("requests drained; the HTTP server stopped"),
        Ok(Ok(Err(error))) => tracing::warn!(%error, "the HTTP server stopped with an error"),
        Ok(Err(error)) => tracing::warn!(%error, "the HTTP server task failed"),
        Err(_) => tracing::warn!("requests were still running after the shutdown grace; exiting"),
    }
    if let Some(watch) = config_watch {
        let _ = watch.await;
    }
    if let Some(schedule) = schedule.lock().await.take() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        schedule.shutdown(left.max(Duration::from_secs(1))).await;
        tracing::info!("reclaim schedule stopped");
    }
    let _ = listener_task.await;
    let _ = cordon_sweep.await;
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let _ = tokio::time::timeout(left.max(Duration::from_secs(1)), reclaim_takeover).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), agreement).await;
    // Each worker's work is recorded per namespace as it goes; what is left
    // is done later.
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    match tokio::time::timeout(left.max(Duration::from_secs(1)), kube_workers).await {
        Ok(_) => tracing::info!("Kubernetes workers stopped"),
        Err(_) => {
            tracing::warn!("Kubernetes workers still busy after the grace; left to the next start")
        }
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing running requests");
}
