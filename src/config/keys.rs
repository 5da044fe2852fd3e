//! Every key nspool reads, in one table: the readers take their lists of
//! known keys (for unknown-key errors and warnings, and their "did you
//! mean") from it, and `docs/configuration.md` is generated from it
//! (`nspool config keys`; a test keeps them equal).

/// One key: its path (`[]` marks the items of a list), the environment
/// variable that overrides it, its default, and what it does.
pub struct Key {
    pub path: &'static str,
    pub env: Option<&'static str>,
    pub default: &'static str,
    pub meaning: &'static str,
}

const fn key(path: &'static str, default: &'static str, meaning: &'static str) -> Key {
    Key {
        path,
        env: None,
        default,
        meaning,
    }
}

const fn env_key(
    path: &'static str,
    env: &'static str,
    default: &'static str,
    meaning: &'static str,
) -> Key {
    Key {
        path,
        env: Some(env),
        default,
        meaning,
    }
}

pub const KEYS: &[Key] = &[
    key(
        "global.baseDomain",
        "`localhost`",
        "the platform's domain: Deployment URLs, and the `authConfig` login link (`https://houston.<baseDomain>`; a request to a loopback address or `localhost` gets that host instead)",
    ),
    key(
        "global.features.namespacePools.enabled",
        "`false`",
        "standard pool mode: the pool is `namespaces.names`",
    ),
    key(
        "global.features.namespacePools.createRbac",
        "`true`",
        "with `namespaces.create: true`, whether nspool also applies each namespace's Commander Role and RoleBinding",
    ),
    key(
        "global.features.namespacePools.namespaces.create",
        "`false`",
        "`true`: nspool creates each Namespace, Role and RoleBinding by server-side apply; `false`: they were made by hand and nspool verifies them",
    ),
    key(
        "global.features.namespacePools.namespaces.names",
        "`[]`",
        "the pool's namespaces: DNS-1123 labels, each once, not `default`, `kube-*` or the platform namespace",
    ),
    key(
        "global.manualNamespaceNamesEnabled",
        "`false`",
        "read to warn when the platform's own settings contradict the pool",
    ),
    key(
        "global.clusterRoles",
        "`true`",
        "read to warn when Commander would still get cluster-wide roles",
    ),
    key(
        "astronomer.commander.env",
        "`[]`",
        "its `COMMANDER_MANUAL_NAMESPACE_NAMES` entry is read to warn when it is off in pool mode",
    ),
    key(
        "astronomer.houston.config.deployments.preCreatedNamespaces",
        "`[]`",
        "the advanced pool (`- name: team-a`); with the standard pool, the pool is their union (a warning says so)",
    ),
    key(
        "astronomer.houston.config.deployments.preCreatedNamespaces[].name",
        "",
        "one namespace of the advanced pool",
    ),
    key(
        "astronomer.houston.config.deployments.manualNamespaceNames",
        "`false`",
        "reported by `appConfig` (always true in pool mode)",
    ),
    key(
        "astronomer.houston.config.deployments.hardDeleteDeployment",
        "`false`",
        "allows hard deletes (always true in standard pool mode)",
    ),
    key(
        "astronomer.houston.config.deployments.namespaceFreeFormEntry",
        "`false`",
        "outside pool mode, whether a Deployment may name its namespace",
    ),
    key(
        "astronomer.houston.config.deployments.manualReleaseNames",
        "`false`",
        "whether a Deployment may name its release",
    ),
    key(
        "astronomer.houston.cleanupDeployments.enabled",
        "`true`",
        "the reclaim job",
    ),
    key(
        "astronomer.houston.cleanupDeployments.schedule",
        "`\"0 0 * * *\"`",
        "cron, UTC: 5 fields (or 6 with seconds); not both day-of-month and day-of-week",
    ),
    key(
        "astronomer.houston.cleanupDeployments.olderThan",
        "`14`",
        "days a soft-deleted Deployment keeps its namespace (0 to 36500)",
    ),
    key(
        "astronomer.houston.cleanupDeployments.dryRun",
        "`false`",
        "runs only list what they would reclaim",
    ),
    env_key(
        "nspool.listen",
        "NSPOOL_LISTEN",
        "`127.0.0.1:8871`",
        "the HTTP address",
    ),
    env_key(
        "nspool.databaseUrl",
        "DATABASE_URL",
        "unset: the embedded PostgreSQL",
        "an external PostgreSQL (`postgres://user:password@host:5432/db`)",
    ),
    env_key(
        "nspool.databaseDirectUrl",
        "DATABASE_DIRECT_URL",
        "unset: `databaseUrl`",
        "PostgreSQL without a pooler in between, for LISTEN and the pool-copy heartbeat (set it when `databaseUrl` is PgBouncer in transaction mode)",
    ),
    env_key(
        "nspool.dataDir",
        "NSPOOL_DATA_DIR",
        "one directory per working directory (`<name>-<hash>`) under `/var/lib/nspool` as root, else under `$XDG_DATA_HOME/nspool`",
        "where the embedded PostgreSQL keeps its data (`nspool config check` prints the one it will use); two checkouts never share one",
    ),
    env_key(
        "nspool.databaseMaxConnections",
        "NSPOOL_DATABASE_MAX_CONNECTIONS",
        "`16`",
        "database connections per replica (1 to 1000)",
    ),
    env_key(
        "nspool.kubernetes.mode",
        "NSPOOL_KUBERNETES_MODE",
        "`auto`",
        "`auto` (in-cluster config or a kubeconfig, else off with one warning), `cluster` (must connect), `off`",
    ),
    key(
        "nspool.kubernetes.claimLabels",
        "on with `namespaces.create: true`",
        "label a claimed namespace with its holder (field manager `nspool-claims`)",
    ),
    key(
        "nspool.kubernetes.checkReleased",
        "`true`",
        "with Kubernetes on, a released namespace is `releasing` until nspool finds nothing its Deployment left (Pods, PersistentVolumeClaims, Services, Secrets but service-account tokens, ConfigMaps but `kube-root-ca.crt`); `false` offers it again at once",
    ),
    key(
        "nspool.kubernetes.ignoredLeftovers",
        "none",
        "objects the platform puts in every namespace on purpose, never leftovers: `Kind/name` (`ConfigMap/istio-ca-root-cert`), a name ending in `*` for a prefix (`Secret/platform-pull-*`)",
    ),
    key(
        "nspool.platformRelease",
        "`astronomer`",
        "the platform's release name: every pool namespace carries `platform-release: <this>`, as Houston labels Deployment namespaces",
    ),
    key(
        "global.namespaceLabels",
        "none",
        "labels every Deployment namespace carries (the chart's); nspool puts them on every pool namespace",
    ),
    key(
        "astronomer.houston.config.deployments.namespaceLabels",
        "none",
        "Houston's labels for Deployment namespaces; nspool puts them on every pool namespace",
    ),
    env_key(
        "nspool.platformNamespace",
        "NSPOOL_PLATFORM_NAMESPACE",
        "`astronomer`",
        "where Commander runs; never in the pool",
    ),
    key(
        "nspool.serviceAccount",
        "`nspool`",
        "nspool's own ServiceAccount in the platform namespace; in create mode each pool namespace gets RoleBindings `nspool-leftovers` (list leftovers there) and `nspool-events` (post Events there)",
    ),
    key(
        "nspool.commanderServiceAccount",
        "`astronomer-commander`",
        "the account the Commander Role is bound to",
    ),
    key(
        "nspool.rbacRules",
        "the seed's Commander rules",
        "stricter rules for the Commander Role",
    ),
    key("nspool.rbacRules[].apiGroups", "", "a rule's API groups"),
    key("nspool.rbacRules[].resources", "", "a rule's resources"),
    key("nspool.rbacRules[].verbs", "", "a rule's verbs"),
    env_key(
        "nspool.houstonVersion",
        "NSPOOL_HOUSTON_VERSION",
        "`0.37.0`",
        "the version `appConfig` reports (0.32.0 <= v < 2.0.0): the astro CLI sends its documents of that version; with several clusters a 1.x one (1.0.0), so that it sends `clusterId`",
    ),
    env_key(
        "nspool.baseDomain",
        "NSPOOL_BASE_DOMAIN",
        "`global.baseDomain`",
        "overrides the platform's base domain",
    ),
    env_key(
        "nspool.airflowChartVersion",
        "NSPOOL_AIRFLOW_CHART_VERSION",
        "`1.11.4`",
        "the chart version Deployments report",
    ),
    key(
        "nspool.http.headerReadTimeoutSeconds",
        "`10`",
        "a request's headers must be complete this long after connecting or after the last answer (1 to 300; else 408, or an idle connection is closed)",
    ),
    key(
        "nspool.http.requestTimeoutSeconds",
        "`30`",
        "the longest a request is worked on; then it is cancelled with 503 (1 to 600)",
    ),
    key(
        "nspool.http.maxConnections",
        "`10000`",
        "open connections, lowered to the open-file limit less 256; more are closed with 503 (1 to 1000000)",
    ),
    key(
        "nspool.http.maxRequestsInFlight",
        "`256`",
        "requests answered at once on `/v1` and its pages, taken once the body is in; more get 503 with Retry-After (1 to 100000)",
    ),
    key(
        "nspool.http.maxAnonymousRequestsInFlight",
        "a quarter of `maxRequestsInFlight` (`64`)",
        "of those, requests without a valid token or dashboard session at most, so token holders always have the rest (1 to `maxRequestsInFlight`)",
    ),
    key(
        "nspool.http.bodyReadTimeoutSeconds",
        "`10`",
        "a request's body must be complete this long after its headers; else 408 and close (1 to 300)",
    ),
    key(
        "nspool.http.responseWriteTimeoutSeconds",
        "`30`",
        "a client that takes none of its answer for this long is closed (1 to 300)",
    ),
    key(
        "nspool.http.bodyBufferMebibytes",
        "`64`",
        "request bodies held in memory at once while they arrive; past it, 503 with Retry-After and close (1 to 4096)",
    ),
    key(
        "nspool.http.answerBufferMebibytes",
        "`32`",
        "answers built for one request (GraphQL, dashboard pages, metrics) held in memory at once until their clients take them; one that finds it full is answered 503 with Retry-After instead (1 to 4095)",
    ),
    key(
        "nspool.http.databaseConnectionsPerRequest",
        "`3`",
        "database connections one request holds at once; one it cannot get within 3 s gives SERVICE_UNAVAILABLE (1 to 32)",
    ),
    key(
        "nspool.http.trustedProxies",
        "`[]`",
        "addresses or CIDR ranges of the ingress or load balancer in front; only from these peers are `X-Forwarded-For` (the client's address, for the sign-in limit) and `X-Forwarded-Host`/`-Proto` believed (at most 64)",
    ),
    key(
        "nspool.http.drainSeconds",
        "`5`",
        "after SIGTERM, open connections are still served this long, each answer with `Connection: close` (0 to 120)",
    ),
    key(
        "nspool.clusterId",
        "made once and kept in the database",
        "the id (a UUID) of the one cluster a config without `nspool.clusters` describes: what the astro CLI's `--cluster-id` names",
    ),
    key(
        "nspool.clusters",
        "unset: one cluster, the top-level pool",
        "the data-plane clusters one nspool serves (Software 1.x, at most 64); the first is where a claim without `clusterId` goes. With it, the pool is each cluster's, not the top-level one",
    ),
    key(
        "nspool.clusters[].id",
        "",
        "the cluster's id, a UUID (the astro CLI's `--cluster-id`); each once",
    ),
    key(
        "nspool.clusters[].name",
        "",
        "the cluster's name, a DNS label (`prod-eu`); each once. Metrics label `cluster`, `--cluster NAME`",
    ),
    key(
        "nspool.clusters[].kubeconfig",
        "unset: in-cluster config, else `KUBECONFIG`",
        "the kubeconfig file nspool reaches the cluster's API server with (read at start and reload; an unreadable one is an error)",
    ),
    key(
        "nspool.clusters[].context",
        "the kubeconfig's current context",
        "the kubeconfig context to use",
    ),
    key(
        "nspool.clusters[].namespacePools",
        "off",
        "the cluster's standard pool, as its data plane's `global.features.namespacePools` (`enabled`, `createRbac`, `namespaces.create`, `namespaces.names`)",
    ),
    key(
        "nspool.clusters[].namespacePools.enabled",
        "`false`",
        "the cluster's standard pool mode",
    ),
    key(
        "nspool.clusters[].namespacePools.createRbac",
        "`true`",
        "as `global.features.namespacePools.createRbac`, for this cluster",
    ),
    key(
        "nspool.clusters[].namespacePools.namespaces",
        "",
        "`create` and `names`, as in `global.features.namespacePools.namespaces`",
    ),
    key(
        "nspool.clusters[].namespacePools.namespaces.create",
        "`false`",
        "whether nspool creates this cluster's namespaces and RBAC",
    ),
    key(
        "nspool.clusters[].namespacePools.namespaces.names",
        "`[]`",
        "the cluster's standard pool; a name may be in several clusters' pools",
    ),
    key(
        "nspool.clusters[].preCreatedNamespaces",
        "`[]`",
        "the cluster's advanced pool (`- name: team-a`), as its data plane's `preCreatedNamespaces`",
    ),
    key(
        "nspool.clusters[].preCreatedNamespaces[].name",
        "",
        "one namespace of the cluster's advanced pool",
    ),
    key(
        "nspool.workspaceQuota",
        "unset: no limit",
        "pool namespaces one workspace may hold (its Deployments, live or soft-deleted), unless `setWorkspaceQuota` gives it its own (0 to 1000000); applied on reload",
    ),
    env_key(
        "nspool.logFormat",
        "NSPOOL_LOG_FORMAT",
        "`text`",
        "`text` or `json` (JSON lines on stderr)",
    ),
];

/// The names directly under `parent` (for a reader's unknown-key checks).
pub fn children(parent: &str) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for key in KEYS {
        let Some(rest) = key
            .path
            .strip_prefix(parent)
            .and_then(|r| r.strip_prefix('.'))
        else {
            continue;
        };
        let name = rest.split('.').next().unwrap_or(rest);
        // `rbacRules[]` has items; the list itself is known as `rbacRules`.
        let name = name.strip_suffix("[]").unwrap_or(name);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The reference tables of `docs/configuration.md`.
pub fn reference_markdown() -> String {
    let mut out =
        String::from("| key | environment | default | what it does |\n| --- | --- | --- | --- |\n");
    for key in KEYS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            key.path,
            key.env.map(|e| format!("`{e}`")).unwrap_or_default(),
            key.default,
            key.meaning
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_one_level_down() {
        assert_eq!(
            children("global.features.namespacePools"),
            ["enabled", "createRbac", "namespaces"]
        );
        assert_eq!(
            children("global.features.namespacePools.namespaces"),
            ["create", "names"]
        );
        assert_eq!(
            children("nspool.rbacRules[]"),
            ["apiGroups", "resources", "verbs"]
        );
    }

    #[test]
    fn every_environment_override_is_in_the_table() {
        for (key, env) in super::super::ENV_OVERRIDES {
            let path = format!("nspool.{key}");
            let entry = KEYS.iter().find(|k| k.path == path);
            assert_eq!(entry.and_then(|k| k.env), Some(env), "{path}");
        }
        let with_env = KEYS.iter().filter(|k| k.env.is_some()).count();
        assert_eq!(with_env, super::super::ENV_OVERRIDES.len());
    }
}
