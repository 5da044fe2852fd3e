//! `nspool.clusters`: the data-plane clusters one nspool serves (Software
//! 1.x), each with its pool as that data plane's values say it. Without it
//! the config is one cluster, the default, with today's top-level pool.

use super::*;
use sha2::Digest as _;
use uuid::Uuid;

/// The default cluster's name when the config has one cluster.
pub const DEFAULT_CLUSTER_NAME: &str = "default";

/// Clusters one nspool serves at most: each has its own Kubernetes client,
/// worker, lease and watches.
pub const MAX_CLUSTERS: usize = 64;

/// One cluster and its pool.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSettings {
    /// `nspool.clusters[].id`, or `nspool.clusterId` for the one cluster of
    /// a config without `nspool.clusters`. Without `nspool.clusterId` the
    /// database made that cluster's id once and keeps it: nil here until the
    /// service reads it ([`Settings::with_cluster_ids`]), before any use.
    pub id: Uuid,
    /// The id was in the config (else the database's).
    #[serde(skip)]
    pub id_given: bool,
    pub name: String,
    /// `None`: in-cluster config, else `KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// `None`: the kubeconfig's current context.
    pub context: Option<String>,
    /// The SHA-256 of the kubeconfig file as last read (`Settings::load`):
    /// a file rewritten in place (rotated credentials from a Secret) is a
    /// change a reload applies, with a new client.
    pub kubeconfig_sha256: Option<String>,
    pub pool: PoolSettings,
    /// The Houston flags `appConfig(clusterId)` reports for this cluster.
    pub houston: HoustonFlags,
    /// Claim labels on this cluster's namespaces (`nspool.kubernetes.claimLabels`,
    /// else on when nspool creates the namespaces).
    pub claim_labels: bool,
    /// Where its keys are: `nspool.clusters[2]`, or `` for the top level.
    #[serde(skip)]
    pub key: String,
}

impl ClusterSettings {
    pub fn nspool_rbac(&self) -> NspoolRbac {
        if self.pool.create_namespaces {
            NspoolRbac::Create
        } else {
            NspoolRbac::Verify
        }
    }

    /// A key of this cluster's, for messages: `nspool.clusters[1].kubeconfig`.
    pub fn key_of(&self, key: &str) -> String {
        if self.key.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.key)
        }
    }
}

/// The clusters: `nspool.clusters`, or the one default cluster.
pub(super) fn read_clusters(
    r: &mut Reader,
    root: &At<'_>,
    platform: &NamespaceName,
    deployments: &HoustonFlags,
    claim_labels: Option<bool>,
    kubernetes: KubernetesMode,
) -> Vec<ClusterSettings> {
    let list_at = root.at("nspool.clusters");
    let id_at = root.at("nspool.clusterId");
    let cluster = |pool: PoolSettings,
                   id: Option<Uuid>,
                   name: String,
                   kubeconfig: Option<PathBuf>,
                   context: Option<String>,
                   key: String| ClusterSettings {
        houston: deployments.for_pool(&pool),
        claim_labels: claim_labels.unwrap_or(pool.create_namespaces),
        id: id.unwrap_or_default(),
        id_given: id.is_some(),
        name,
        kubeconfig,
        context,
        kubeconfig_sha256: None,
        pool,
        key,
    };
    if !list_at.present() {
        let pool = pool::read_pool(r, root, platform);
        let id = id_at.present().then(|| read_id(r, &id_at)).flatten();
        return vec![cluster(
            pool,
            id,
            DEFAULT_CLUSTER_NAME.to_owned(),
            None,
            None,
            String::new(),
        )];
    }
    if id_at.present() {
        r.error(
            &id_at,
            "with nspool.clusters each cluster has its own id (nspool.clusters[].id); remove nspool.clusterId",
        );
    }
    // With many clusters each pool is the cluster's: a top-level pool would
    // be nobody's, so it is refused rather than guessed at.
    for top in [
        "global.features.namespacePools",
        "astronomer.houston.config.deployments.preCreatedNamespaces",
    ] {
        let at = root.at(top);
        if at.present() {
            r.error(
                &at,
                "with nspool.clusters each cluster lists its own pool (nspool.clusters[].namespacePools or .preCreatedNamespaces); move it there",
            );
        }
    }
    let items = r.list(&list_at);
    if items.is_empty() {
        r.error(
            &list_at,
            "must list at least one cluster (or leave nspool.clusters out for one cluster)",
        );
        return Vec::new();
    }
    if items.len() > MAX_CLUSTERS {
        r.error(
            &list_at,
            format!(
                "lists {} clusters; nspool serves at most {MAX_CLUSTERS}",
                items.len()
            ),
        );
        return Vec::new();
    }
    let mut clusters: Vec<ClusterSettings> = Vec::new();
    let mut ids: std::collections::HashMap<Uuid, String> = std::collections::HashMap::new();
    let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for (key, item) in &items {
        let at = At {
            value: Some(item),
            path: key.clone(),
        };
        if !item.is_mapping() {
            r.error(
                &at,
                format!(
                    "expected a cluster ({{id, name, kubeconfig, context, namespacePools}}), found {}",
                    reader::describe(item)
                ),
            );
            continue;
        }
        r.refuse_unknown(&at, &keys::children("nspool.clusters[]"), &[]);
        let id_at = at.key("id");
        let id = if id_at.present() {
            read_id(r, &id_at)
        } else {
            r.error(
                &id_at,
                "each cluster needs an id (a UUID: the astro CLI's --cluster-id)",
            );
            None
        };
        if let Some(id) = id {
            if let Some(first) = ids.get(&id) {
                r.error(&id_at, format!("{id} is the id of {first} too"));
            } else {
                ids.insert(id, key.clone());
            }
        }
        let name_at = at.key("name");
        let name = match r.string(&name_at) {
            None => {
                r.error(
                    &name_at,
                    "each cluster needs a name (a DNS label, like prod-eu)",
                );
                None
            }
            Some(text) => match crate::domain::NamespaceName::parse(&text) {
                Err(_) => {
                    r.error(
                        &name_at,
                        format!(
                            "\"{}\" is not a DNS label (lowercase letters, digits and '-', at most 63)",
                            crate::domain::text::excerpt(&text)
                        ),
                    );
                    None
                }
                Ok(_) => {
                    if let Some(first) = names.get(&text) {
                        r.error(&name_at, format!("\"{text}\" is the name of {first} too"));
                        None
                    } else {
                        names.insert(text.clone(), key.clone());
                        Some(text)
                    }
                }
            },
        };
        let kubeconfig = r.string(&at.key("kubeconfig")).map(PathBuf::from);
        let context = r.string(&at.key("context"));
        let pool = pool::read_pool_at(
            r,
            &at.key("namespacePools"),
            &at.key("preCreatedNamespaces"),
            platform,
        );
        // Two clusters reached the same way would be one API server: only
        // one may rely on the in-cluster config or KUBECONFIG.
        if kubeconfig.is_none()
            && kubernetes != KubernetesMode::Off
            && let Some(first) = clusters.iter().find(|c| c.kubeconfig.is_none())
        {
            r.error(
                &at.key("kubeconfig"),
                format!(
                    "{} has no kubeconfig either: two clusters would reach the same API server (in-cluster config or KUBECONFIG); give each but one its kubeconfig",
                    first.key
                ),
            );
        }
        if let (Some(id), Some(name)) = (id, name) {
            clusters.push(cluster(
                pool,
                Some(id),
                name,
                kubeconfig,
                context,
                key.clone(),
            ));
        }
    }
    clusters
}

fn read_id(r: &mut Reader, at: &At<'_>) -> Option<Uuid> {
    let text = r.string(at)?;
    match Uuid::parse_str(text.trim()) {
        Ok(id) if !id.is_nil() => Some(id),
        _ => {
            r.error(
                at,
                format!(
                    "\"{}\" is not a cluster id (a UUID like 3f2b9a52-6c1e-4e8f-9d7a-0b5c2e1f4a6d)",
                    crate::domain::text::excerpt(&text)
                ),
            );
            None
        }
    }
}

/// Each cluster's kubeconfig readable and naming its context: the errors,
/// each naming the cluster's key. `read` reads a file (injected, so this is
/// tested without files).
pub fn check_kubeconfigs(
    clusters: &mut [ClusterSettings],
    read: &dyn Fn(&std::path::Path) -> std::io::Result<String>,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    // Each API server reached, and the first entry that reaches it.
    let mut servers: Vec<(String, String)> = Vec::new();
    for cluster in clusters.iter_mut() {
        let Some(path) = &cluster.kubeconfig else {
            if cluster.context.is_some() {
                errors.push(ConfigError {
                    key: cluster.key_of("context"),
                    reason: "a context needs a kubeconfig: set kubeconfig too".into(),
                });
            }
            continue;
        };
        let key = cluster.key_of("kubeconfig");
        let text = match read(path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(ConfigError {
                    key,
                    reason: format!("cannot read {}: {e}", path.display()),
                });
                continue;
            }
        };
        cluster.kubeconfig_sha256 = Some(
            sha2::Sha256::digest(text.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        );
        let parsed: Result<kube::config::Kubeconfig, _> = serde_yaml::from_str(&text);
        let kubeconfig = match parsed {
            Ok(k) => k,
            Err(e) => {
                errors.push(ConfigError {
                    key,
                    reason: format!(
                        "{} is not a kubeconfig: {}",
                        path.display(),
                        first_sentence(&e.to_string())
                    ),
                });
                continue;
            }
        };
        // Any YAML mapping reads as a kubeconfig with nothing in it (an empty
        // file, a Helm values file): without a context it cannot be used, and
        // the fault is the file, not the context.
        if kubeconfig.contexts.is_empty() {
            errors.push(ConfigError {
                key,
                reason: format!(
                    "{} is not a kubeconfig: it lists no contexts",
                    path.display()
                ),
            });
            continue;
        }
        let contexts: Vec<&str> = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let wanted = cluster
            .context
            .as_deref()
            .or(kubeconfig.current_context.as_deref());
        match wanted {
            None => errors.push(ConfigError {
                key: cluster.key_of("context"),
                reason: format!(
                    "{} has no current-context: name one of its contexts ({})",
                    path.display(),
                    contexts.join(", ")
                ),
            }),
            Some(context) if !contexts.contains(&context) => errors.push(ConfigError {
                key: if cluster.context.is_some() {
                    cluster.key_of("context")
                } else {
                    key
                },
                reason: format!(
                    "{} has no context \"{}\" (it has: {})",
                    path.display(),
                    crate::domain::text::excerpt(context),
                    contexts.join(", ")
                ),
            }),
            Some(context) => {
                let server = server_of(&kubeconfig, context);
                match server
                    .as_ref()
                    .and_then(|server| servers.iter().find(|(s, _)| s == server))
                {
                    Some((server, first)) => errors.push(ConfigError {
                        key,
                        reason: format!(
                            "reaches the same API server ({server}) as {first}: two entries would be one cluster under two ids, and a claim in one would overwrite the other's labels; list that cluster once"
                        ),
                    }),
                    None => {
                        let first = cluster.key_of("kubeconfig");
                        servers.extend(server.map(|s| (s, first)));
                    }
                }
            }
        }
    }
    errors
}

/// The API server URL `context` points at (without a trailing slash), when
/// the kubeconfig names one.
fn server_of(kubeconfig: &kube::config::Kubeconfig, context: &str) -> Option<String> {
    let cluster = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .clone();
    let server = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster)?
        .cluster
        .as_ref()?
        .server
        .clone()?;
    Some(server.trim_end_matches('/').to_owned())
}
