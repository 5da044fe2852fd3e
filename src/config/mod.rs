//! The platform's `config.yaml` (Helm values) → validated, effective settings.
//!
//! Pure: the caller hands in the file's text and a way to read environment
//! variables, so every rule here is unit-tested without touching either.

mod bounds;
pub mod clusters;
pub use clusters::{ClusterSettings, DEFAULT_CLUSTER_NAME, MAX_CLUSTERS};
mod houston;
mod houston_settings;
mod http;
pub mod keys;
mod labels;
mod platform;
mod pool;
pub use platform::PlatformSettings;
mod quota;
pub use quota::MAX_WORKSPACE_QUOTA;
mod reader;
mod service;
mod suggest;
pub use service::check_houston_version;
pub mod schedule;

use crate::domain::NamespaceName;
use crate::domain::commander_rules::{Rule, seed_rules};
pub use bounds::{MAX_CONFIG_BYTES, MAX_CONFIG_NESTING};
pub use http::HttpSettings;
pub use reader::ConfigError;
use reader::{At, Reader};
pub use schedule::Schedule;

/// `olderThan` and `olderThanDays`: a century is plenty, and keeps date
/// arithmetic far from overflow.
pub const MAX_OLDER_THAN_DAYS: u32 = 36_500;
use serde::Serialize;
use serde_yaml::Value;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Oldest and newest Houston API nspool speaks (SPEC §3).
pub const HOUSTON_VERSION_MIN: (u64, u64, u64) = (0, 32, 0);
pub const DEFAULT_HOUSTON_VERSION: &str = "0.37.0";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8871";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The clusters served, never empty: `nspool.clusters` in its order, or
    /// the one default cluster. The first is where a claim without a
    /// `clusterId` goes.
    pub clusters: Vec<ClusterSettings>,
    /// Namespaces one workspace may hold, in every cluster together, unless
    /// it has its own quota (`nspool.workspaceQuota`; `None`: no limit).
    pub workspace_quota: Option<u32>,
    /// Houston's deployment flags as the file says them (each cluster's
    /// pool then decides what `appConfig` reports: [`ClusterSettings::houston`]).
    pub deployment_flags: HoustonFlags,
    pub cleanup: CleanupSettings,
    pub platform: PlatformSettings,
    pub service: ServiceSettings,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSettings {
    /// Standard pool mode: `global.features.namespacePools.enabled`.
    pub standard: bool,
    /// Advanced pool mode: a non-empty `preCreatedNamespaces`.
    pub advanced: bool,
    pub create_namespaces: bool,
    pub create_rbac: bool,
    /// The pool, in config order, standard names first.
    pub namespaces: Vec<PoolEntry>,
}

impl PoolSettings {
    pub fn enabled(&self) -> bool {
        self.standard || self.advanced
    }

    /// The namespaces the pool holds: none with pool mode off (every name
    /// ever in the pool is then retired).
    pub fn active(&self) -> &[PoolEntry] {
        if self.enabled() {
            &self.namespaces
        } else {
            &[]
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolEntry {
    #[serde(serialize_with = "as_str")]
    pub name: NamespaceName,
    pub source: PoolSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PoolSource {
    /// `global.features.namespacePools.namespaces.names`
    Standard,
    /// `astronomer.houston.config.deployments.preCreatedNamespaces`
    Advanced,
}

impl PoolSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolSource::Standard => "standard",
            PoolSource::Advanced => "advanced",
        }
    }
}

/// The Houston flags as `appConfig` reports them: the effective values.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HoustonFlags {
    pub manual_namespace_names: bool,
    pub hard_delete_deployment: bool,
    pub namespace_free_form_entry: bool,
    pub manual_release_names: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupSettings {
    pub enabled: bool,
    #[serde(serialize_with = "schedule_str")]
    pub schedule: Schedule,
    pub older_than_days: u32,
    pub dry_run: bool,
}

impl CleanupSettings {
    /// Whether soft-deleted Deployments ever come back to the pool by themselves.
    pub fn reclaims(&self) -> bool {
        self.enabled && !self.dry_run
    }

    /// Said by `config check`, the log and the pool view when namespaces of
    /// soft-deleted Deployments never come back by themselves.
    pub fn never_reclaims_note(&self) -> Option<String> {
        let why = if !self.enabled {
            "astronomer.houston.cleanupDeployments.enabled is false"
        } else if self.dry_run {
            "astronomer.houston.cleanupDeployments.dryRun is true"
        } else {
            return None;
        };
        Some(format!(
            "{why}: namespaces of soft-deleted Deployments never return to the pool by themselves; hard-delete those Deployments (or run `nspool reclaim`) to free them"
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KubernetesMode {
    Auto,
    Cluster,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSettings {
    pub listen: SocketAddr,
    /// `None`: the embedded PostgreSQL.
    #[serde(serialize_with = "redacted_url")]
    pub database_url: Option<String>,
    /// A connection straight to PostgreSQL for session features (LISTEN, the
    /// pool-copy heartbeat) when `database_url` goes through PgBouncer in transaction
    /// mode; `None`: `database_url` itself.
    #[serde(serialize_with = "redacted_url")]
    pub database_direct_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub kubernetes_mode: KubernetesMode,
    /// With Kubernetes on: a released namespace is offered again only once
    /// found free of what its Deployment left (`nspool.kubernetes.checkReleased`).
    pub check_released: bool,
    /// `nspool.kubernetes.claimLabels` as set (`None`: each cluster's
    /// default, on where nspool creates the namespaces).
    pub claim_labels_setting: Option<bool>,
    /// Objects the platform puts in every namespace on purpose, never
    /// leftovers (`nspool.kubernetes.ignoredLeftovers`).
    pub ignored_leftovers: Vec<crate::domain::hygiene::IgnoredObject>,
    /// The labels every pool namespace carries (`platform-release` and the
    /// platform's namespaceLabels).
    pub pool_labels: std::collections::BTreeMap<String, String>,
    #[serde(serialize_with = "as_str")]
    pub platform_namespace: NamespaceName,
    pub commander_service_account: String,
    /// nspool's own ServiceAccount (in the platform namespace): in create
    /// mode nspool binds it to list leftovers in each pool namespace.
    pub service_account: String,
    pub houston_version: String,
    pub base_domain: String,
    pub airflow_chart_version: String,
    pub log_format: LogFormat,
    /// Connections `serve` keeps to PostgreSQL (per replica: mind the server's max_connections).
    pub database_max_connections: u32,
    /// Bounds on connections and requests.
    pub http: HttpSettings,
    /// Peers whose `X-Forwarded-*` headers are believed (`nspool.http.trustedProxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The Commander Role's rules: the seed's, unless `nspool.rbacRules` replaces them.
    #[serde(skip)]
    pub rbac_rules: Vec<Rule>,
    /// `seed` or `nspool.rbacRules`.
    pub rbac_rules_source: &'static str,
}

/// What nspool itself must be allowed in the cluster, by mode (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NspoolRbac {
    /// `namespaces.create: true`: create and patch Namespaces, Roles, RoleBindings.
    Create,
    /// `namespaces.create: false`: verify only (and label claims if switched on).
    Verify,
}

impl Settings {
    /// Whether released namespaces are checked for leftovers before they are
    /// offered again (Kubernetes not off, and `checkReleased` not false). A
    /// replica that finds no cluster in `auto` mode turns it off for itself.
    pub fn checks_released(&self) -> bool {
        self.service.kubernetes_mode != KubernetesMode::Off && self.service.check_released
    }

    /// Why released namespaces are offered again at once, when they are.
    pub fn unchecked_release_note(&self) -> Option<&'static str> {
        if self.service.kubernetes_mode == KubernetesMode::Off {
            Some(
                "released namespaces are not checked for leftovers (nspool.kubernetes.mode is off): a released namespace is offered again at once",
            )
        } else if !self.service.check_released {
            Some(
                "released namespaces are not checked for leftovers (nspool.kubernetes.checkReleased is false): a released namespace is offered again at once",
            )
        } else {
            None
        }
    }

    /// The cluster a request without `clusterId` means (the first listed).
    pub fn default_cluster(&self) -> &ClusterSettings {
        // Never empty: `parse` refuses a config without a cluster.
        &self.clusters[0]
    }

    /// These settings with the database's id for the default cluster of a
    /// config without `nspool.clusterId` (ids given in the config stay).
    pub fn with_cluster_ids(&self, ids: &[uuid::Uuid]) -> Settings {
        let mut settings = self.clone();
        for (cluster, id) in settings.clusters.iter_mut().zip(ids) {
            if !cluster.id_given {
                cluster.id = *id;
            }
        }
        settings
    }

    /// These settings with the ids `old` had for clusters of the same name
    /// the config gives no id (a reload: the database made them once).
    pub fn keeping_cluster_ids_of(mut self, old: &Settings) -> Settings {
        for cluster in self.clusters.iter_mut().filter(|c| !c.id_given) {
            if let Some(before) = old.cluster_named(&cluster.name) {
                cluster.id = before.id;
            }
        }
        self
    }

    pub fn cluster(&self, id: uuid::Uuid) -> Option<&ClusterSettings> {
        self.clusters.iter().find(|c| c.id == id)
    }

    /// Served with `nspool.clusters` (more than the one default cluster).
    pub fn many_clusters(&self) -> bool {
        self.clusters.len() > 1 || !self.clusters[0].key.is_empty()
    }

    pub fn cluster_named(&self, name: &str) -> Option<&ClusterSettings> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// Some cluster's pool is on.
    pub fn pool_mode(&self) -> bool {
        self.clusters.iter().any(|c| c.pool.enabled())
    }

    /// Namespaces listed in every cluster's pool together.
    pub fn pool_size(&self) -> usize {
        self.clusters.iter().map(|c| c.pool.namespaces.len()).sum()
    }
}

impl ClusterSettings {
    /// A sentence for `config check`: which shipped RBAC manifest the cluster needs.
    pub fn nspool_rbac_advice(&self) -> String {
        match self.nspool_rbac() {
            NspoolRbac::Create => "nspool's own RBAC: the `docker/kubernetes/create` overlay (rbac-create.yaml; namespaces.create is true: it creates and patches Namespaces, Roles and RoleBindings)".into(),
            NspoolRbac::Verify if self.claim_labels => "nspool's own RBAC: the `docker/kubernetes/verify` overlay (rbac-verify.yaml) with its namespaces `patch` rule (namespaces.create is false and claim labels are on)".into(),
            NspoolRbac::Verify => "nspool's own RBAC: the `docker/kubernetes/verify` overlay (rbac-verify.yaml; namespaces.create is false: it only reads Namespaces and asks SubjectAccessReviews)".into(),
        }
    }
}

/// Errors of a config that cannot be used, each naming its key, and the
/// warnings found on the way (unknown keys, say: a typo is often the cause).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
}

impl ConfigErrors {
    /// One error, no warnings (the file could not be read at all).
    pub fn one(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigErrors {
            errors: vec![ConfigError {
                key: key.into(),
                reason: reason.into(),
            }],
            warnings: Vec::new(),
        }
    }
}

/// Entries of `nspool.kubernetes.ignoredLeftovers` at most (each is matched
/// against every object a leftover check lists).
const MAX_IGNORED_LEFTOVERS: usize = 64;

/// The names of the environment variables that override `nspool.*` keys.
pub const ENV_OVERRIDES: [(&str, &str); 11] = [
    ("databaseUrl", "DATABASE_URL"),
    ("databaseDirectUrl", "DATABASE_DIRECT_URL"),
    ("listen", "NSPOOL_LISTEN"),
    ("dataDir", "NSPOOL_DATA_DIR"),
    ("kubernetes.mode", "NSPOOL_KUBERNETES_MODE"),
    ("platformNamespace", "NSPOOL_PLATFORM_NAMESPACE"),
    ("houstonVersion", "NSPOOL_HOUSTON_VERSION"),
    ("baseDomain", "NSPOOL_BASE_DOMAIN"),
    ("airflowChartVersion", "NSPOOL_AIRFLOW_CHART_VERSION"),
    ("logFormat", "NSPOOL_LOG_FORMAT"),
    ("databaseMaxConnections", "NSPOOL_DATABASE_MAX_CONNECTIONS"),
];

impl Settings {
    /// Settings from the text of a config file (empty text: every default).
    pub fn parse(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigErrors> {
        if let Some(error) = bounds::size_error(text.len() as u64) {
            return Err(ConfigErrors::one("the file", error));
        }
        if let Some(line) = bounds::too_deep_at(text) {
            return Err(ConfigErrors::one(
                format!("line {line}"),
                format!(
                    "nested more than {MAX_CONFIG_NESTING} collections deep; nspool's keys need 7"
                ),
            ));
        }
        let root: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_yaml::from_str(text).map_err(|e| {
                let at = e
                    .location()
                    .map(|l| format!("line {}, column {}", l.line(), l.column()))
                    .unwrap_or_else(|| "the file".into());
                ConfigErrors::one(
                    at,
                    format!("not valid YAML: {}", first_sentence(&e.to_string())),
                )
            })?
        };
        let mut r = Reader::default();
        let root = At::root(&root);
        if root.value.is_some_and(|v| !v.is_null() && !v.is_mapping()) {
            r.error(
                &root,
                "the config must be a mapping of keys (the shape of the platform's config.yaml)",
            );
        }
        refuse_2x_layout(&mut r, &root);
        let service = service::read_service(&mut r, &root, env);
        let platform_ns = service.settings.platform_namespace.clone();
        let deployment_flags = houston::read_houston(&mut r, &root);
        let clusters = clusters::read_clusters(
            &mut r,
            &root,
            &platform_ns,
            &deployment_flags,
            service.claim_labels,
            service.settings.kubernetes_mode,
        );
        for cluster in &clusters {
            let pre_key = if cluster.key.is_empty() {
                "astronomer.houston.config.deployments.preCreatedNamespaces".to_owned()
            } else {
                cluster.key_of("preCreatedNamespaces")
            };
            houston::warn_advanced_without_prompt(
                &mut r,
                &deployment_flags,
                &cluster.pool,
                &pre_key,
            );
        }
        // The astro CLI below 1.x sends no clusterId: with several clusters
        // its reads of the free namespaces always fail.
        if clusters.len() > 1 && service.settings.houston_version.split('.').next() == Some("0") {
            r.warnings.push(format!(
                "nspool.clusters lists {} clusters but nspool.houstonVersion is {}: the astro CLI then sends its 0.3x documents, without clusterId, and its availableNamespaces is refused; set nspool.houstonVersion to a 1.x version (1.0.0)",
                clusters.len(),
                service.settings.houston_version
            ));
        }
        let workspace_quota = quota::read_workspace_quota(&mut r, &root);
        let cleanup = houston::read_cleanup(&mut r, &root);
        if let Some(note) = cleanup.never_reclaims_note() {
            r.warnings.push(note);
        }
        let platform = platform::read(
            &mut r,
            &root,
            clusters.iter().any(|c| c.pool.enabled()),
            clusters.iter().any(|c| c.pool.advanced),
        );
        let service = ServiceSettings {
            claim_labels_setting: service.claim_labels,
            ..service.settings
        };
        if clusters.is_empty() && r.errors.is_empty() {
            r.errors.push(ConfigError {
                key: "nspool.clusters".into(),
                reason: "no cluster could be read".into(),
            });
        }
        if r.errors.is_empty() {
            Ok(Settings {
                clusters,
                workspace_quota,
                deployment_flags,
                cleanup,
                platform,
                service,
                warnings: r.warnings,
            })
        } else {
            Err(ConfigErrors {
                errors: r.errors,
                warnings: r.warnings,
            })
        }
    }

    /// Settings from the process environment and an optional file, each
    /// cluster's kubeconfig read and checked.
    pub fn load(path: Option<&std::path::Path>) -> Result<Settings, ConfigErrors> {
        let text = match path {
            None => String::new(),
            Some(path) => read_bounded(path)
                .map_err(|reason| ConfigErrors::one(path.display().to_string(), reason))?,
        };
        let mut settings = Settings::parse(&text, &|name| std::env::var(name).ok())?;
        let errors = clusters::check_kubeconfigs(&mut settings.clusters, &|path| {
            read_bounded(path).map_err(std::io::Error::other)
        });
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigErrors {
                errors,
                warnings: settings.warnings,
            })
        }
    }

    /// The effective settings as YAML, for `config check` (the database URL redacted).
    pub fn to_yaml(&self) -> String {
        let mut value = match serde_yaml::to_value(self) {
            Ok(value) => value,
            Err(e) => return format!("# cannot render: {e}\n"),
        };
        // An id the config does not give is the database's, not known here.
        if let Some(shown) = value.get_mut("clusters").and_then(Value::as_sequence_mut) {
            for (shown, cluster) in shown.iter_mut().zip(&self.clusters) {
                if !cluster.id_given
                    && let Some(id) = shown.get_mut("id")
                {
                    *id = Value::String("(made by the database at the first start)".into());
                }
            }
        }
        serde_yaml::to_string(&value).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// The file's text, refused before it is read whole when it is too large.
fn read_bounded(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read the config file: {e}"))?;
    let declared = file.metadata().map(|m| m.len()).unwrap_or(0);
    if let Some(error) = bounds::size_error(declared) {
        return Err(error);
    }
    // A file that grows while it is read (or a pipe) stops at the limit too.
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the config file: {e}"))?;
    match bounds::size_error(text.len() as u64) {
        Some(error) => Err(error),
        None => Ok(text),
    }
}

fn first_sentence(message: &str) -> &str {
    message.split(" at line").next().unwrap_or(message)
}

fn refuse_2x_layout(r: &mut Reader, root: &At<'_>) {
    let global = root.at("global.namespaceManagement");
    if global.present() {
        r.error(
            &global,
            "this is the Astronomer Software 2.x layout, which nspool does not read; use global.features.namespacePools.enabled, .namespaces.create and .namespaces.names",
        );
    }
    let houston = root.at("astronomer.houston.config.deployments.namespaceManagement");
    if houston.present() {
        r.error(
            &houston,
            "this is the Astronomer Software 2.x layout, which nspool does not read; use astronomer.houston.config.deployments.preCreatedNamespaces and .manualNamespaceNames",
        );
    }
}

fn as_str<S: serde::Serializer>(name: &NamespaceName, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(name.as_str())
}

fn schedule_str<S: serde::Serializer>(schedule: &Schedule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(schedule.as_str())
}

fn redacted_url<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        None => s.serialize_str("(embedded PostgreSQL)"),
        Some(url) => s.serialize_str(&redact_password(url)),
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
