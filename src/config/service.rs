//! nspool's own section (`nspool.*`, with its environment overrides).

use super::*;

pub(super) struct ServiceRead {
    pub(super) settings: ServiceSettings,
    pub(super) claim_labels: Option<bool>,
}

pub(super) fn read_service(
    r: &mut Reader,
    root: &At<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> ServiceRead {
    let n = root.key("nspool");
    r.warn_unknown(&n, &keys::children("nspool"));
    r.warn_unknown(&n.key("kubernetes"), &keys::children("nspool.kubernetes"));
    // A setting's value and where it came from: its env variable or its key.
    let setting = |r: &mut Reader, key: &str| -> Option<(At<'static>, String)> {
        let env_name = ENV_OVERRIDES
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, e)| *e);
        if let Some(value) = env_name.and_then(|name| env(name).map(|v| (name, v))) {
            let at = At {
                value: None,
                path: format!("{} (environment)", value.0),
            };
            return Some((at, value.1));
        }
        let at = n.at(key);
        let value = r.string(&at)?;
        Some((
            At {
                value: None,
                path: at.path,
            },
            value,
        ))
    };

    let listen = match setting(r, "listen") {
        None => default_listen(),
        Some((at, text)) => text.parse().unwrap_or_else(|_| {
            r.error(
                &at,
                format!("\"{text}\" is not an address with a port, like {DEFAULT_LISTEN}"),
            );
            default_listen()
        }),
    };
    let database_url = setting(r, "databaseUrl")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty());
    let database_direct_url = setting(r, "databaseDirectUrl")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty());
    let data_dir = setting(r, "dataDir").map(|(_, v)| PathBuf::from(v));
    let kubernetes_mode = match setting(r, "kubernetes.mode") {
        None => KubernetesMode::Auto,
        Some((at, text)) => match text.as_str() {
            "auto" => KubernetesMode::Auto,
            "cluster" => KubernetesMode::Cluster,
            "off" => KubernetesMode::Off,
            _ => {
                r.error(
                    &at,
                    format!("\"{text}\" is not a mode; use auto, cluster or off"),
                );
                KubernetesMode::Auto
            }
        },
    };
    let check_released = r.bool(&n.at("kubernetes.checkReleased"), true);
    let mut ignored_leftovers = Vec::new();
    let ignored_at = n.at("kubernetes.ignoredLeftovers");
    let ignored_items = r.list(&ignored_at);
    if ignored_items.len() > MAX_IGNORED_LEFTOVERS {
        r.error(
            &ignored_at,
            format!(
                "{} entries; at most {MAX_IGNORED_LEFTOVERS} (a name ending in * covers many)",
                ignored_items.len()
            ),
        );
    }
    for (path, item) in ignored_items.into_iter().take(MAX_IGNORED_LEFTOVERS) {
        let at = At {
            value: Some(item),
            path,
        };
        let parsed = r
            .string(&at)
            .map(|text| crate::domain::hygiene::IgnoredObject::parse(&text));
        match parsed {
            Some(Ok(object)) => ignored_leftovers.push(object),
            Some(Err(reason)) => r.error(&at, reason),
            None => {}
        }
    }
    let pool_labels = labels::read(r, root);
    let claim_labels_at = n.at("kubernetes.claimLabels");
    let claim_labels = claim_labels_at
        .present()
        .then(|| r.bool(&claim_labels_at, false));
    let platform_namespace = match setting(r, "platformNamespace") {
        None => default_platform_namespace(),
        Some((at, text)) => NamespaceName::parse(&text).unwrap_or_else(|e| {
            r.error(&at, e.to_string());
            default_platform_namespace()
        }),
    };
    // A service account name is a DNS label, like a namespace name.
    let account = |r: &mut Reader, key: &str, default: &str| match setting(r, key) {
        None => default.to_owned(),
        Some((at, text)) => {
            if NamespaceName::parse(&text).is_err() {
                r.error(
                    &at,
                    format!("\"{text}\" is not a valid service account name"),
                );
            }
            text
        }
    };
    let commander_service_account = account(r, "commanderServiceAccount", "astronomer-commander");
    let service_account = account(r, "serviceAccount", "nspool");
    let houston_version = match setting(r, "houstonVersion") {
        None => DEFAULT_HOUSTON_VERSION.to_owned(),
        Some((at, text)) => {
            if let Err(reason) = check_houston_version(&text) {
                r.error(&at, reason);
            }
            text
        }
    };
    let base_domain = setting(r, "baseDomain")
        .map(|(_, v)| v)
        .or_else(|| r.string(&root.at("global.baseDomain")))
        .unwrap_or_else(|| "localhost".into());
    let airflow_chart_version = setting(r, "airflowChartVersion")
        .map(|(_, v)| v)
        .unwrap_or_else(|| "1.11.4".into());
    let database_max_connections = match setting(r, "databaseMaxConnections") {
        None => 16,
        Some((at, text)) => match text.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                r.error(
                    &at,
                    format!("\"{text}\" is not a number of connections from 1 to 1000"),
                );
                16
            }
        },
    };
    let http = http::read_http(r, &n);
    let trusted_proxies = http::read_trusted_proxies(r, &n);
    let rules_at = n.key("rbacRules");
    let (rbac_rules, rbac_rules_source) = if rules_at.present() {
        (read_rules(r, &rules_at), "nspool.rbacRules")
    } else {
        (seed_rules(), "seed")
    };
    let log_format = match setting(r, "logFormat") {
        None => LogFormat::Text,
        Some((at, text)) => match text.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => {
                r.error(
                    &at,
                    format!("\"{text}\" is not a log format; use text or json"),
                );
                LogFormat::Text
            }
        },
    };
    ServiceRead {
        settings: ServiceSettings {
            listen,
            database_url,
            database_direct_url,
            data_dir,
            kubernetes_mode,
            claim_labels_setting: claim_labels,
            check_released,
            ignored_leftovers,
            pool_labels,
            platform_namespace,
            commander_service_account,
            service_account,
            houston_version,
            base_domain,
            airflow_chart_version,
            log_format,
            database_max_connections,
            http,
            trusted_proxies,
            rbac_rules,
            rbac_rules_source,
        },
        claim_labels,
    }
}

/// `nspool.rbacRules`: a list of `{apiGroups, resources, verbs}`, each a
/// non-empty list of strings, as in a Role.
pub(super) fn read_rules(r: &mut Reader, at: &At<'_>) -> Vec<Rule> {
    let mut rules = Vec::new();
    let items = r.list(at);
    if items.is_empty() {
        r.error(at, "must list at least one rule ({apiGroups, resources, verbs}) or be left out for the seed's rules");
    }
    for (key, item) in items {
        let rule_at = At {
            value: Some(item),
            path: key,
        };
        r.warn_unknown(&rule_at, &keys::children("nspool.rbacRules[]"));
        let mut field = |name: &str| -> Vec<String> {
            let field_at = rule_at.key(name);
            let values: Vec<String> = r
                .list(&field_at)
                .into_iter()
                .filter_map(|(path, v)| match v.as_str() {
                    Some(s) => Some(s.to_owned()),
                    None => {
                        r.errors.push(ConfigError {
                            key: path,
                            reason: "expected a string".into(),
                        });
                        None
                    }
                })
                .collect();
            // apiGroups may hold "" (core); resources and verbs may not be empty strings.
            if values.is_empty() {
                r.error(&field_at, "must be a non-empty list");
            }
            values
        };
        let api_groups = field("apiGroups");
        let resources = field("resources");
        let verbs = field("verbs");
        rules.push(Rule {
            api_groups,
            resources,
            verbs,
        });
    }
    rules
}

pub(super) fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8871))
}

pub(super) fn default_platform_namespace() -> NamespaceName {
    NamespaceName::parse("astronomer").unwrap_or_else(|_| unreachable!("valid constant"))
}

/// The advertised Houston version picks the astro CLI's documents: it must be
/// a 0.x release from 0.32.0 on (SPEC §3).
pub fn check_houston_version(text: &str) -> Result<(), String> {
    let parts: Vec<Option<u64>> = text.split('.').map(|p| p.parse().ok()).collect();
    let version = match parts.as_slice() {
        [Some(a), Some(b), Some(c)] => (*a, *b, *c),
        _ => {
            return Err(format!(
                "\"{text}\" is not a version like {DEFAULT_HOUSTON_VERSION}"
            ));
        }
    };
    if version < HOUSTON_VERSION_MIN || version.0 >= 2 {
        return Err(format!(
            "{text} is outside what nspool implements (0.32.0 up to, not including, 2.0.0: the 0.3x API, and with many clusters the 1.x one); the astro CLI would send documents of another API"
        ));
    }
    Ok(())
}
