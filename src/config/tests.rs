use super::*;

fn parse(text: &str) -> Result<Settings, ConfigErrors> {
    Settings::parse(text, &|_| None)
}

fn errors(text: &str) -> Vec<String> {
    parse(text)
        .expect_err("config should be refused")
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn names(settings: &Settings) -> Vec<&str> {
    settings
        .default_cluster()
        .pool
        .namespaces
        .iter()
        .map(|e| e.name.as_str())
        .collect()
}

const STANDARD: &str = r#"
global:
  baseDomain: example.com
  features:
    namespacePools:
      enabled: true
      namespaces:
        create: true
        names: [team-a, team-b]
"#;

const ADVANCED: &str = r#"
global:
  manualNamespaceNamesEnabled: true
  clusterRoles: false
astronomer:
  houston:
    config:
      deployments:
        manualNamespaceNames: true
        preCreatedNamespaces:
          - name: ns-1
          - name: ns-2
        hardDeleteDeployment: true
  commander:
    env:
      - name: "COMMANDER_MANUAL_NAMESPACE_NAMES"
        value: true
"#;

#[test]
fn empty_config_gives_every_default() {
    let s = parse("").unwrap();
    assert!(!s.default_cluster().pool.enabled());
    assert!(s.default_cluster().pool.create_rbac);
    assert!(
        !s.default_cluster().houston.manual_namespace_names
            && !s.default_cluster().houston.hard_delete_deployment
    );
    assert!(s.cleanup.enabled && !s.cleanup.dry_run);
    assert_eq!(s.cleanup.older_than_days, 14);
    assert_eq!(s.cleanup.schedule.as_str(), "0 0 0 * * *");
    assert_eq!(s.service.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(s.service.houston_version, DEFAULT_HOUSTON_VERSION);
    assert_eq!(s.service.platform_namespace.as_str(), "astronomer");
    assert_eq!(s.service.commander_service_account, "astronomer-commander");
    assert_eq!(s.service.kubernetes_mode, KubernetesMode::Auto);
    assert!(s.service.database_url.is_none());
    assert_eq!(s.service.database_max_connections, 16);
    assert!(s.platform.cluster_roles);
}

#[test]
fn standard_pool_mode_reports_manual_namespaces_and_hard_delete() {
    let s = parse(STANDARD).unwrap();
    assert!(
        s.default_cluster().pool.standard
            && !s.default_cluster().pool.advanced
            && s.default_cluster().pool.create_namespaces
    );
    assert_eq!(names(&s), ["team-a", "team-b"]);
    assert!(s.default_cluster().houston.manual_namespace_names);
    assert!(s.default_cluster().houston.hard_delete_deployment);
    assert_eq!(s.service.base_domain, "example.com");
    assert!(
        s.default_cluster().claim_labels,
        "claim labels follow create by default"
    );
    // The platform's own settings still give Commander cluster-wide rights.
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert!(s.warnings[0].starts_with("global.clusterRoles is true"));
    assert!(s.warnings[1].contains("COMMANDER_MANUAL_NAMESPACE_NAMES"));
}

#[test]
fn the_platform_settings_a_pool_needs_warn_only_in_pool_mode() {
    let pool = "global: {clusterRoles: false, features: {namespacePools: {enabled: true, namespaces: {names: [a]}}}}\n";
    let set = "astronomer: {commander: {env: [{name: COMMANDER_MANUAL_NAMESPACE_NAMES, value: \"true\"}]}}";
    assert!(parse(&format!("{pool}{set}")).unwrap().warnings.is_empty());
    let warned = parse(pool).unwrap().warnings;
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("COMMANDER_MANUAL_NAMESPACE_NAMES"));
    // Outside pool mode nothing is asked of them.
    assert!(
        parse("global: {clusterRoles: true}")
            .unwrap()
            .warnings
            .is_empty()
    );
    // With pre-created namespaces Fluentd must look in them too.
    let advanced = parse(
        "global: {clusterRoles: false}\nastronomer: {commander: {env: [{name: COMMANDER_MANUAL_NAMESPACE_NAMES, value: true}]}, houston: {config: {deployments: {manualNamespaceNames: true, preCreatedNamespaces: [{name: b}]}}}}",
    )
    .unwrap();
    assert_eq!(advanced.warnings.len(), 1, "{:?}", advanced.warnings);
    assert!(advanced.warnings[0].contains("manualNamespaceNamesEnabled"));
}

#[test]
fn unknown_key_warnings_come_with_errors_too() {
    let refused = parse("nspool: {kubernetes: {mdoe: off}, houstonVersion: 2.0.0}").unwrap_err();
    assert!(!refused.errors.is_empty());
    assert!(
        refused
            .warnings
            .iter()
            .any(|w| w
                .starts_with("nspool.kubernetes.mdoe: unknown key, ignored; did you mean `mode`?")),
        "{:?}",
        refused.warnings
    );
}

#[test]
fn advanced_pool_mode_reads_the_seed_example() {
    let s = parse(ADVANCED).unwrap();
    assert!(
        s.default_cluster().pool.advanced
            && !s.default_cluster().pool.standard
            && !s.default_cluster().pool.create_namespaces
    );
    assert_eq!(names(&s), ["ns-1", "ns-2"]);
    assert!(
        s.default_cluster().houston.manual_namespace_names
            && s.default_cluster().houston.hard_delete_deployment
    );
    assert!(s.platform.commander_manual_namespace_names);
    assert!(s.platform.manual_namespace_names_enabled);
    assert!(!s.platform.cluster_roles);
    assert!(!s.default_cluster().claim_labels);
}

#[test]
fn advanced_pool_does_not_force_hard_delete() {
    let s = parse(
        "astronomer: {houston: {config: {deployments: {manualNamespaceNames: true, preCreatedNamespaces: [{name: a}]}}}}",
    )
    .unwrap();
    assert!(s.default_cluster().houston.manual_namespace_names);
    assert!(!s.default_cluster().houston.hard_delete_deployment);
}

#[test]
fn commander_env_value_may_be_a_string() {
    let s = parse(
        "astronomer: {commander: {env: [{name: OTHER, value: x}, {name: COMMANDER_MANUAL_NAMESPACE_NAMES, value: \"true\"}]}}",
    )
    .unwrap();
    assert!(s.platform.commander_manual_namespace_names);
}

#[test]
fn enabled_pool_needs_names() {
    for text in [
        "global: {features: {namespacePools: {enabled: true}}}",
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: }}}}",
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: []}}}}",
    ] {
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("global.features.namespacePools.namespaces.names: must list"),
            "{errs:?}"
        );
    }
}

#[test]
fn bad_values_name_their_key() {
    let errs = errors(
        r#"
global:
  features:
    namespacePools:
      enabled: true
      createRbac: yes please
      namespaces:
        names: [Team_A, kube-system, astronomer, ok, ok, 12]
astronomer:
  houston:
    cleanupDeployments:
      olderThan: -3
      schedule: "0 0 1 * 1"
nspool:
  listen: nowhere
  houstonVersion: 2.0.0
  databaseMaxConnections: 0
"#,
    );
    let expect = [
        "global.features.namespacePools.createRbac: expected true or false",
        "global.features.namespacePools.namespaces.names[0]: \"Team_A\" is not a valid namespace name",
        "global.features.namespacePools.namespaces.names[1]: \"kube-system\" is reserved",
        "global.features.namespacePools.namespaces.names[2]: \"astronomer\" is reserved",
        "global.features.namespacePools.namespaces.names[4]: \"ok\" is listed twice",
        "global.features.namespacePools.namespaces.names[5]: expected a namespace name, found the number 12",
        "astronomer.houston.cleanupDeployments.olderThan: expected a whole number",
        "astronomer.houston.cleanupDeployments.schedule: \"0 0 1 * 1\" restricts both",
        "nspool.listen: \"nowhere\" is not an address",
        "nspool.houstonVersion: 2.0.0 is outside",
        "nspool.databaseMaxConnections: \"0\" is not a number of connections",
    ];
    for prefix in expect {
        assert!(
            errs.iter().any(|e| e.starts_with(prefix)),
            "missing {prefix:?} in {errs:#?}"
        );
    }
}

#[test]
fn a_name_in_both_lists_is_a_duplicate() {
    let errs = errors(
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: [a]}}}}\nastronomer: {houston: {config: {deployments: {preCreatedNamespaces: [{name: a}]}}}}",
    );
    assert!(
        errs[0].starts_with(
            "astronomer.houston.config.deployments.preCreatedNamespaces[0].name: \"a\" is listed twice (first in the standard pool list)"
        ),
        "{errs:?}"
    );
}

#[test]
fn both_pools_are_a_union_with_a_warning() {
    let s = parse(
        "global: {features: {namespacePools: {enabled: true, namespaces: {create: true, names: [a]}}}}\nastronomer: {houston: {config: {deployments: {manualNamespaceNames: true, preCreatedNamespaces: [{name: b}]}}}}",
    )
    .unwrap();
    assert_eq!(names(&s), ["a", "b"]);
    assert_eq!(
        s.default_cluster().pool.namespaces[1].source,
        PoolSource::Advanced
    );
    assert!(s.warnings.iter().any(|w| w.contains("union")
        && w.contains("global.features.namespacePools.namespaces.names")
        && w.contains("preCreatedNamespaces")));
}

#[test]
fn pre_created_without_manual_names_warns() {
    let s = parse(
        "astronomer: {houston: {config: {deployments: {preCreatedNamespaces: [{name: b}]}}}}",
    )
    .unwrap();
    assert!(
        s.warnings.iter().any(|w| w.contains("will not prompt")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn unknown_keys_are_ignored_outside_and_refused_inside_pool_subtrees() {
    let refused = parse(
        "global: {somethingElse: 1, features: {namespacePools: {enabled: true, extra: 1, namespaces: {names: [a], typo: 2}}}}\nastronomer: {houston: {config: {other: 1}}}",
    )
    .unwrap_err();
    let errs: Vec<String> = refused.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(
        errs[0],
        "global.features.namespacePools.extra: unknown key (nspool reads enabled, createRbac, namespaces here)"
    );
    assert_eq!(
        errs[1],
        "global.features.namespacePools.namespaces.typo: unknown key (nspool reads create, names here)"
    );
    // Outside nspool's subtrees nothing is said.
    assert!(
        refused.warnings.iter().all(|w| !w.contains("unknown key")),
        "{:?}",
        refused.warnings
    );
}

/// Issue 25: `enabeld: true` once ran with pool mode off and only a warning.
#[test]
fn a_misspelt_pool_key_is_refused_with_its_fix() {
    let errs =
        errors("global: {features: {namespacePools: {enabeld: true, namespaces: {names: [a]}}}}");
    assert_eq!(
        errs,
        [
            "global.features.namespacePools.enabeld: unknown key; did you mean `enabled`? (nspool reads enabled, createRbac, namespaces here)"
        ]
    );
    let errs = errors(
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: [a], Create: true}}}}",
    );
    assert!(
        errs[0].starts_with(
            "global.features.namespacePools.namespaces.Create: unknown key; did you mean `create`?"
        ),
        "{errs:?}"
    );
    let errs = errors(
        "astronomer: {houston: {config: {deployments: {preCreatedNamespaces: [{name: a, nmae: b}]}}}}",
    );
    assert!(
        errs.iter().any(|e| e.starts_with(
            "astronomer.houston.config.deployments.preCreatedNamespaces[0].nmae: unknown key; did you mean `name`?"
        )),
        "{errs:?}"
    );
}

#[test]
fn houstons_deployment_keys_are_read_accepted_or_refused() {
    // A misspelt key nspool reads: refused, with its fix.
    let errs = errors(
        "astronomer: {houston: {config: {deployments: {preCreatedNamespace: [{name: a}]}}}}",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "astronomer.houston.config.deployments.preCreatedNamespace: unknown key; did you mean `preCreatedNamespaces`? (nspool reads "
        ),
        "{errs:?}"
    );
    assert!(
        errs[0].contains("the platform's other settings here are accepted"),
        "{errs:?}"
    );
    // A misspelt Houston setting is a typo too, and named.
    let errs =
        errors("astronomer: {houston: {config: {deployments: {configureDagDeploymnt: true}}}}");
    assert!(
        errs[0].contains("did you mean `configureDagDeployment`?"),
        "{errs:?}"
    );
    // Houston's own settings, as a platform file has them: accepted silently.
    let s = parse(
        "astronomer: {houston: {config: {deployments: {manualReleaseNames: true, configureDagDeployment: true, helm: {webserver: {}}, astroUnit: {price: 10}, chart: {version: 1.11.4}, logHelmValues: true}}}}",
    )
    .unwrap();
    assert!(s.default_cluster().houston.manual_release_names);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    // Nothing close: refused without a guess.
    let errs = errors("astronomer: {houston: {config: {deployments: {zzz: 1}}}}");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("astronomer.houston.config.deployments.zzz: unknown key (nspool reads"),
        "{errs:?}"
    );
}

#[test]
fn a_near_miss_of_namespace_pools_is_refused_with_its_fix() {
    let errs = errors("global: {features: {namespacePool: {enabled: true}}}");
    assert_eq!(
        errs,
        [
            "global.features.namespacePool: unknown key; did you mean `namespacePools`? (nspool reads namespacePools here)"
        ]
    );
}

#[test]
fn the_2x_layout_is_refused_naming_the_0x_keys() {
    let errs = errors("global: {namespaceManagement: {enabled: true}}");
    assert!(
        errs[0]
            .starts_with("global.namespaceManagement: this is the Astronomer Software 2.x layout")
    );
    assert!(errs[0].contains("global.features.namespacePools.enabled"));
    let errs = errors("astronomer: {houston: {config: {deployments: {namespaceManagement: {}}}}}");
    assert!(errs[0].contains("preCreatedNamespaces"), "{errs:?}");
}

#[test]
fn invalid_yaml_is_refused_with_a_position() {
    let errs = errors("global: [unclosed");
    assert!(errs[0].starts_with("line "), "{errs:?}");
    assert!(errs[0].contains("not valid YAML"));
    let errs = errors("- just\n- a list");
    assert!(errs[0].contains("must be a mapping"), "{errs:?}");
}

#[test]
fn environment_overrides_the_file_and_is_named_in_errors() {
    let env = |name: &str| match name {
        "NSPOOL_LISTEN" => Some("0.0.0.0:9000".to_owned()),
        "DATABASE_URL" => Some("postgres://u:secret@db/x".to_owned()),
        _ => None,
    };
    let s = Settings::parse("nspool: {listen: '127.0.0.1:1'}", &env).unwrap();
    assert_eq!(s.service.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(
        s.service.database_url.as_deref(),
        Some("postgres://u:secret@db/x")
    );
    assert!(s.to_yaml().contains("postgres://u:***@db/x"));
    assert!(!s.to_yaml().contains("secret"));

    let bad = |name: &str| (name == "NSPOOL_HOUSTON_VERSION").then(|| "0.31.9".to_owned());
    let errs = Settings::parse("", &bad).unwrap_err().errors;
    assert!(
        errs[0]
            .to_string()
            .starts_with("NSPOOL_HOUSTON_VERSION (environment): 0.31.9 is outside")
    );
}

#[test]
fn houston_versions_in_range() {
    // The 1.x API too: the newest astro CLI then sends its 1.x documents.
    for ok in ["0.32.0", "0.37.0", "0.99.12", "1.0.0", "1.4.2"] {
        assert!(check_houston_version(ok).is_ok(), "{ok}");
    }
    for bad in ["0.31.9", "2.0.0", "2.1.0", "0.37", "x"] {
        assert!(check_houston_version(bad).is_err(), "{bad}");
    }
}

#[test]
fn cleanup_settings_are_read() {
    let s = parse(
        "astronomer: {houston: {cleanupDeployments: {enabled: false, schedule: '*/5 * * * * *', olderThan: 3, dryRun: true}}}",
    )
    .unwrap();
    assert!(!s.cleanup.enabled && s.cleanup.dry_run && !s.cleanup.reclaims());
    assert_eq!(s.cleanup.older_than_days, 3);
    assert_eq!(s.cleanup.schedule.as_str(), "*/5 * * * * *");
}

#[test]
fn rbac_rules_default_to_the_seed_and_can_be_replaced() {
    let s = parse("").unwrap();
    assert_eq!(
        s.service.rbac_rules,
        crate::domain::commander_rules::seed_rules()
    );
    assert_eq!(s.service.rbac_rules_source, "seed");
    let s = parse(
        "nspool: {rbacRules: [{apiGroups: [''], resources: [configmaps], verbs: [get, list]}]}",
    )
    .unwrap();
    assert_eq!(s.service.rbac_rules.len(), 1);
    assert_eq!(s.service.rbac_rules[0].api_groups, [""]);
    assert_eq!(s.service.rbac_rules_source, "nspool.rbacRules");
    let errs = errors("nspool: {rbacRules: [{apiGroups: [''], resources: [], verbs: [1]}]}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("nspool.rbacRules[0].resources: must be a non-empty list")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("nspool.rbacRules[0].verbs[0]: expected a string")),
        "{errs:?}"
    );
}

#[test]
fn config_check_names_the_rbac_nspool_needs() {
    assert!(
        parse(STANDARD)
            .unwrap()
            .default_cluster()
            .nspool_rbac_advice()
            .contains("rbac-create.yaml")
    );
    assert!(
        parse(ADVANCED)
            .unwrap()
            .default_cluster()
            .nspool_rbac_advice()
            .contains("rbac-verify.yaml")
    );
}

#[test]
fn older_than_is_bounded_so_dates_never_overflow() {
    let errs = errors("astronomer: {houston: {cleanupDeployments: {olderThan: 100000000}}}");
    assert!(
        errs.iter().any(|e| e.starts_with(
            "astronomer.houston.cleanupDeployments.olderThan: expected at most 36500 days"
        )),
        "{errs:?}"
    );
    let s = parse("astronomer: {houston: {cleanupDeployments: {olderThan: 36500}}}").unwrap();
    assert_eq!(s.cleanup.older_than_days, super::MAX_OLDER_THAN_DAYS);
}

#[test]
fn http_bounds_are_read_and_checked() {
    let s =
        parse("nspool: {http: {headerReadTimeoutSeconds: 5, maxRequestsInFlight: 32}}").unwrap();
    assert_eq!(s.service.http.header_read_timeout_seconds, 5);
    assert_eq!(s.service.http.max_requests_in_flight, 32);
    assert_eq!(s.service.http.request_timeout_seconds, 30);
    let errs = errors("nspool: {http: {requestTimeoutSeconds: 0, maxConnections: -1}}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("nspool.http.requestTimeoutSeconds: expected 1 to 600")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("nspool.http.maxConnections:")),
        "{errs:?}"
    );
}

#[test]
fn pool_labels_and_ignored_leftovers_are_read_and_checked() {
    let s = parse(
        "global: {namespaceLabels: {team: data}}\nastronomer: {houston: {config: {deployments: {namespaceLabels: {tier: gold}}}}}\nnspool: {platformRelease: prod, kubernetes: {ignoredLeftovers: [ConfigMap/istio-ca-root-cert, 'Secret/platform-pull-*']}}",
    )
    .unwrap();
    assert_eq!(
        s.service
            .pool_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        ["platform-release=prod", "team=data", "tier=gold"]
    );
    assert_eq!(
        s.service
            .ignored_leftovers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["ConfigMap/istio-ca-root-cert", "Secret/platform-pull-*"]
    );
    // Defaults: platform-release astronomer, checks on unless Kubernetes is off.
    let d = parse("").unwrap();
    assert_eq!(d.service.pool_labels["platform-release"], "astronomer");
    assert!(d.checks_released() && d.unchecked_release_note().is_none());
    let off = parse("nspool: {kubernetes: {mode: 'off'}}").unwrap();
    assert!(!off.checks_released());
    assert!(
        off.unchecked_release_note()
            .unwrap()
            .contains("mode is off")
    );

    let errs = errors(
        "global: {namespaceLabels: {'-bad': x, ok: 'not ok'}}\nnspool: {platformRelease: '', kubernetes: {ignoredLeftovers: [Deployment/x, 'Secret/']}}",
    );
    let many: Vec<String> = (0..65).map(|i| format!("Secret/s{i}")).collect();
    let errs_many = errors(&format!(
        "nspool: {{kubernetes: {{ignoredLeftovers: [{}]}}}}",
        many.join(", ")
    ));
    assert!(
        errs_many[0].starts_with("nspool.kubernetes.ignoredLeftovers")
            && errs_many[0].contains("at most 64"),
        "{errs_many:?}"
    );
    for key in [
        "global.namespaceLabels.-bad",
        "global.namespaceLabels.ok",
        "nspool.platformRelease",
        "nspool.kubernetes.ignoredLeftovers[0]",
        "nspool.kubernetes.ignoredLeftovers[1]",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(key)), "{key}: {errs:?}");
    }
}

// nspool.clusters: many data-plane clusters (Software 1.x).

const PROD_ID: &str = "3f2b9a52-6c1e-4e8f-9d7a-0b5c2e1f4a6d";
const STAGING_ID: &str = "9c1d7e40-2b3a-4f5e-8a6b-1c2d3e4f5a6b";

/// Two clusters: prod with a standard pool nspool creates, staging with an
/// advanced pool only; `team-a` is in both.
fn two_clusters() -> String {
    format!(
        r#"
astronomer:
  houston:
    config:
      deployments:
        manualNamespaceNames: true
nspool:
  clusters:
    - id: {PROD_ID}
      name: prod
      kubeconfig: /etc/nspool/prod.kubeconfig
      context: prod-admin
      namespacePools:
        enabled: true
        createRbac: true
        namespaces: {{create: true, names: [team-a, team-b]}}
    - id: {STAGING_ID}
      name: staging
      preCreatedNamespaces: [{{name: team-a}}, {{name: legacy-1}}]
"#
    )
}

/// A one-cluster `nspool.clusters` entry with `rest` added to it.
fn one_cluster(rest: &str) -> String {
    format!("nspool: {{clusters: [{{id: {PROD_ID}, name: prod{rest}}}]}}")
}

fn pool_names(cluster: &ClusterSettings) -> Vec<&str> {
    cluster
        .pool
        .namespaces
        .iter()
        .map(|e| e.name.as_str())
        .collect()
}

/// The errors of a refused config that start with `prefix`.
fn errors_starting(text: &str, prefix: &str) -> Vec<String> {
    let errs = errors(text);
    let found: Vec<String> = errs
        .iter()
        .filter(|e| e.starts_with(prefix))
        .cloned()
        .collect();
    assert!(
        !found.is_empty(),
        "no error starts with {prefix:?}: {errs:#?}"
    );
    found
}

#[test]
fn two_clusters_are_read_each_with_its_pool_and_flags() {
    let s = parse(&two_clusters()).unwrap();
    assert_eq!(s.clusters.len(), 2);
    assert!(s.many_clusters());
    let (prod, staging) = (&s.clusters[0], &s.clusters[1]);

    assert_eq!(prod.id.to_string(), PROD_ID);
    assert!(prod.id_given);
    assert_eq!(prod.name, "prod");
    assert_eq!(
        prod.kubeconfig.as_deref(),
        Some(std::path::Path::new("/etc/nspool/prod.kubeconfig"))
    );
    assert_eq!(prod.context.as_deref(), Some("prod-admin"));
    assert_eq!(prod.key, "nspool.clusters[0]");
    assert_eq!(prod.key_of("kubeconfig"), "nspool.clusters[0].kubeconfig");
    assert!(prod.pool.standard && !prod.pool.advanced);
    assert!(prod.pool.create_namespaces && prod.pool.create_rbac);
    assert_eq!(pool_names(prod), ["team-a", "team-b"]);
    assert_eq!(prod.nspool_rbac(), NspoolRbac::Create);
    assert!(prod.claim_labels, "claim labels follow create by default");

    assert_eq!(staging.id.to_string(), STAGING_ID);
    assert!(staging.id_given);
    assert_eq!(staging.name, "staging");
    assert_eq!(staging.key, "nspool.clusters[1]");
    assert!(staging.kubeconfig.is_none() && staging.context.is_none());
    assert!(staging.pool.advanced && !staging.pool.standard);
    assert!(!staging.pool.create_namespaces);
    // The same name in two clusters is two namespaces, not a duplicate.
    assert_eq!(pool_names(staging), ["team-a", "legacy-1"]);
    assert_eq!(staging.pool.namespaces[0].source, PoolSource::Advanced);
    assert_eq!(staging.nspool_rbac(), NspoolRbac::Verify);
    assert!(!staging.claim_labels);

    // The Houston flags are each cluster's: the standard pool hard-deletes,
    // an advanced pool alone does not; both ask for a namespace.
    assert!(prod.houston.manual_namespace_names && prod.houston.hard_delete_deployment);
    assert!(staging.houston.manual_namespace_names && !staging.houston.hard_delete_deployment);
    // The file's own flags stay as written.
    assert!(!s.deployment_flags.hard_delete_deployment);

    // The first listed is the default; lookups by id and by name.
    assert_eq!(s.default_cluster().name, "prod");
    assert_eq!(
        s.cluster(STAGING_ID.parse().unwrap())
            .map(|c| c.name.as_str()),
        Some("staging")
    );
    assert_eq!(
        s.cluster_named("staging").map(|c| c.id.to_string()),
        Some(STAGING_ID.to_owned())
    );
    assert!(s.cluster_named("default").is_none());
    assert!(s.pool_mode());
    assert_eq!(s.pool_size(), 4);
}

#[test]
fn the_file_flags_reach_every_cluster() {
    // hardDeleteDeployment: true in the file holds for the advanced cluster too.
    let s = parse(&format!(
        "astronomer: {{houston: {{config: {{deployments: {{hardDeleteDeployment: true, manualReleaseNames: true}}}}}}}}\n{}",
        one_cluster(", preCreatedNamespaces: [{name: a}]")
    ))
    .unwrap();
    let cluster = s.default_cluster();
    assert!(cluster.houston.hard_delete_deployment && cluster.houston.manual_release_names);
    // A cluster without a pool reports the file's flags as they are.
    let s = parse(&one_cluster("")).unwrap();
    let cluster = s.default_cluster();
    assert!(!cluster.pool.enabled());
    assert!(!cluster.houston.manual_namespace_names && !cluster.houston.hard_delete_deployment);
    // One listed cluster is still "many clusters": it has its own key.
    assert!(s.many_clusters());
    assert_eq!(cluster.name, "prod");
}

#[test]
fn without_clusters_there_is_one_default_cluster() {
    let s = parse(STANDARD).unwrap();
    assert_eq!(s.clusters.len(), 1);
    assert!(!s.many_clusters());
    let cluster = s.default_cluster();
    assert_eq!(cluster.name, DEFAULT_CLUSTER_NAME);
    assert_eq!(cluster.key, "");
    assert_eq!(cluster.key_of("kubeconfig"), "kubeconfig");
    // The database makes the id: nil until the service reads it.
    assert!(!cluster.id_given && cluster.id.is_nil());
    assert!(cluster.kubeconfig.is_none() && cluster.context.is_none());
    // with_cluster_ids puts the database's id in; keeping_cluster_ids_of
    // keeps it across a reload.
    let id: uuid::Uuid = STAGING_ID.parse().unwrap();
    let resolved = s.with_cluster_ids(&[id]);
    assert_eq!(resolved.default_cluster().id, id);
    let reloaded = parse(STANDARD).unwrap().keeping_cluster_ids_of(&resolved);
    assert_eq!(reloaded.default_cluster().id, id);
}

#[test]
fn cluster_id_alone_names_the_default_cluster() {
    let s = parse(&format!("{STANDARD}nspool: {{clusterId: {PROD_ID}}}\n")).unwrap();
    let cluster = s.default_cluster();
    assert_eq!(cluster.id.to_string(), PROD_ID);
    assert!(cluster.id_given);
    assert_eq!(cluster.name, DEFAULT_CLUSTER_NAME);
    assert_eq!(pool_names(cluster), ["team-a", "team-b"]);
    // A given id is not replaced by the database's.
    let other: uuid::Uuid = STAGING_ID.parse().unwrap();
    assert_eq!(
        s.with_cluster_ids(&[other])
            .default_cluster()
            .id
            .to_string(),
        PROD_ID
    );
    // A bad one is refused by its key.
    for bad in ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "12"] {
        let errs = errors(&format!("nspool: {{clusterId: '{bad}'}}"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with(&format!(
                "nspool.clusterId: \"{bad}\" is not a cluster id (a UUID"
            )),
            "{errs:?}"
        );
    }
}

#[test]
fn duplicate_cluster_ids_and_names_are_refused_by_key() {
    let errs = errors_starting(
        &format!(
            "nspool: {{clusters: [{{id: {PROD_ID}, name: prod}}, {{id: {PROD_ID}, name: staging}}]}}"
        ),
        "nspool.clusters[1].id:",
    );
    assert_eq!(
        errs,
        [format!(
            "nspool.clusters[1].id: {PROD_ID} is the id of nspool.clusters[0] too"
        )]
    );
    // Case does not make another id.
    errors_starting(
        &format!(
            "nspool: {{clusters: [{{id: {PROD_ID}, name: prod}}, {{id: {}, name: staging}}]}}",
            PROD_ID.to_uppercase()
        ),
        "nspool.clusters[1].id:",
    );
    let errs = errors_starting(
        &format!(
            "nspool: {{clusters: [{{id: {PROD_ID}, name: prod}}, {{id: {STAGING_ID}, name: prod}}]}}"
        ),
        "nspool.clusters[1].name:",
    );
    assert_eq!(
        errs,
        ["nspool.clusters[1].name: \"prod\" is the name of nspool.clusters[0] too"]
    );
}

#[test]
fn a_namespace_twice_in_one_cluster_is_refused_by_key() {
    let errs = errors(&one_cluster(
        ", namespacePools: {enabled: true, namespaces: {names: [team-a, team-a]}}",
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "nspool.clusters[0].namespacePools.namespaces.names[1]: \"team-a\" is listed twice"
        ),
        "{errs:?}"
    );
    let errs = errors(&one_cluster(
        ", preCreatedNamespaces: [{name: legacy-1}, {name: legacy-1}]",
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "nspool.clusters[0].preCreatedNamespaces[1].name: \"legacy-1\" is listed twice (first in the advanced pool list)"
        ),
        "{errs:?}"
    );
    // In both of one cluster's lists: a duplicate too.
    let errs = errors(&one_cluster(
        ", namespacePools: {enabled: true, namespaces: {names: [a]}}, preCreatedNamespaces: [{name: a}]",
    ));
    assert!(
        errs[0].starts_with(
            "nspool.clusters[0].preCreatedNamespaces[0].name: \"a\" is listed twice (first in the standard pool list)"
        ),
        "{errs:?}"
    );
    // A cluster's pool follows the same rules as the top-level one.
    let errs = errors(&one_cluster(
        ", namespacePools: {enabled: true, namespaces: {names: [kube-system, Bad_Name]}}",
    ));
    assert!(
        errs[0].starts_with(
            "nspool.clusters[0].namespacePools.namespaces.names[0]: \"kube-system\" is reserved"
        ),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("nspool.clusters[0].namespacePools.namespaces.names[1]: \"Bad_Name\" is not a valid namespace name"),
        "{errs:?}"
    );
    let errs = errors(&one_cluster(", namespacePools: {enabled: true}"));
    assert!(
        errs[0].starts_with(
            "nspool.clusters[0].namespacePools.namespaces.names: must list at least one namespace when nspool.clusters[0].namespacePools.enabled is true"
        ),
        "{errs:?}"
    );
}

#[test]
fn a_cluster_needs_an_id_and_a_name() {
    let errs = errors("nspool: {clusters: [{name: prod}]}");
    assert_eq!(
        errs,
        ["nspool.clusters[0].id: each cluster needs an id (a UUID: the astro CLI's --cluster-id)"]
    );
    let errs = errors(&format!("nspool: {{clusters: [{{id: {PROD_ID}}}]}}"));
    assert_eq!(
        errs,
        ["nspool.clusters[0].name: each cluster needs a name (a DNS label, like prod-eu)"]
    );
    // Both missing: both said, each by its key.
    let errs = errors(&format!(
        "nspool: {{clusters: [{{id: {PROD_ID}, name: prod}}, {{kubeconfig: /k}}]}}"
    ));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("nspool.clusters[1].id: each cluster needs an id"));
    assert!(errs[1].starts_with("nspool.clusters[1].name: each cluster needs a name"));
    // An entry that is not a mapping.
    let errs = errors("nspool: {clusters: [prod]}");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("nspool.clusters[0]: expected a cluster ({id, name, kubeconfig, context, namespacePools}), found the string \"prod\""),
        "{errs:?}"
    );
}

#[test]
fn a_cluster_id_must_be_a_uuid() {
    for bad in [
        "prod",
        "3f2b9a52-6c1e-4e8f-9d7a",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let errs = errors(&format!(
            "nspool: {{clusters: [{{id: '{bad}', name: prod}}]}}"
        ));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0],
            format!(
                "nspool.clusters[0].id: \"{bad}\" is not a cluster id (a UUID like 3f2b9a52-6c1e-4e8f-9d7a-0b5c2e1f4a6d)"
            )
        );
    }
    let errs = errors("nspool: {clusters: [{id: [1], name: prod}]}");
    assert!(
        errs[0].starts_with("nspool.clusters[0].id: expected a string, found a list"),
        "{errs:?}"
    );
}

#[test]
fn a_cluster_name_must_be_a_dns_label() {
    let long = "a".repeat(64);
    for bad in ["Prod", "prod_eu", "-prod", "prod.eu", long.as_str()] {
        let errs = errors(&format!(
            "nspool: {{clusters: [{{id: {PROD_ID}, name: '{bad}'}}]}}"
        ));
        assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
        assert!(
            errs[0].starts_with("nspool.clusters[0].name: \"")
                && errs[0]
                    .contains("is not a DNS label (lowercase letters, digits and '-', at most 63)"),
            "{bad}: {errs:?}"
        );
    }
    // 63 characters is a label.
    let s = parse(&format!(
        "nspool: {{clusters: [{{id: {PROD_ID}, name: {}}}]}}",
        "a".repeat(63)
    ))
    .unwrap();
    assert_eq!(s.default_cluster().name.len(), 63);
}

#[test]
fn an_unknown_key_under_a_cluster_is_refused_with_its_fix() {
    let errs = errors(&one_cluster(", kubeconfg: /etc/k"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "nspool.clusters[0].kubeconfg: unknown key; did you mean `kubeconfig`? (nspool reads id, name, kubeconfig, context, namespacePools, preCreatedNamespaces here)"
        ),
        "{errs:?}"
    );
    let errs = errors(&one_cluster(", namespacePool: {enabled: true}"));
    assert!(
        errs[0].starts_with(
            "nspool.clusters[0].namespacePool: unknown key; did you mean `namespacePools`?"
        ),
        "{errs:?}"
    );
    // Under the cluster's pool, as under the top-level one.
    let errs = errors(&one_cluster(
        ", namespacePools: {enabeld: true, namespaces: {names: [a]}}",
    ));
    assert!(
        errs[0].starts_with(
            "nspool.clusters[0].namespacePools.enabeld: unknown key; did you mean `enabled`?"
        ),
        "{errs:?}"
    );
    let errs = errors(&one_cluster(", preCreatedNamespaces: [{nmae: a}]"));
    assert!(
        errs.iter().any(|e| e.starts_with(
            "nspool.clusters[0].preCreatedNamespaces[0].nmae: unknown key; did you mean `name`?"
        )),
        "{errs:?}"
    );
    // Nothing close: refused without a guess.
    let errs = errors(&one_cluster(", zzz: 1"));
    assert!(
        errs[0].starts_with("nspool.clusters[0].zzz: unknown key (nspool reads"),
        "{errs:?}"
    );
}

#[test]
fn cluster_id_and_a_top_level_pool_are_refused_with_clusters() {
    let errs = errors(&format!(
        "nspool: {{clusterId: {STAGING_ID}, clusters: [{{id: {PROD_ID}, name: prod}}]}}"
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "nspool.clusterId: with nspool.clusters each cluster has its own id (nspool.clusters[].id); remove nspool.clusterId"
        ),
        "{errs:?}"
    );
    let errs = errors(&format!("{STANDARD}{}", one_cluster("")));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "global.features.namespacePools: with nspool.clusters each cluster lists its own pool"
        ),
        "{errs:?}"
    );
    let errs = errors(&format!(
        "astronomer: {{houston: {{config: {{deployments: {{preCreatedNamespaces: [{{name: a}}]}}}}}}}}\n{}",
        one_cluster("")
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "astronomer.houston.config.deployments.preCreatedNamespaces: with nspool.clusters each cluster lists its own pool"
        ),
        "{errs:?}"
    );
}

#[test]
fn the_cluster_list_is_not_empty_and_bounded() {
    let errs = errors("nspool: {clusters: []}");
    assert_eq!(
        errs,
        [
            "nspool.clusters: must list at least one cluster (or leave nspool.clusters out for one cluster)"
        ]
    );
    let errs = errors("nspool: {clusters: prod}");
    assert!(
        errs[0].starts_with("nspool.clusters: expected a list, found the string \"prod\""),
        "{errs:?}"
    );
    let list = |n: usize| {
        let items: Vec<String> = (0..n)
            .map(|i| format!("{{id: 3f2b9a52-6c1e-4e8f-9d7a-{i:012x}, name: c{i}}}"))
            .collect();
        format!(
            "nspool: {{kubernetes: {{mode: 'off'}}, clusters: [{}]}}",
            items.join(", ")
        )
    };
    let s = parse(&list(MAX_CLUSTERS)).unwrap();
    assert_eq!(s.clusters.len(), MAX_CLUSTERS);
    let errs = errors(&list(MAX_CLUSTERS + 1));
    assert_eq!(
        errs,
        [format!(
            "nspool.clusters: lists {} clusters; nspool serves at most {MAX_CLUSTERS}",
            MAX_CLUSTERS + 1
        )]
    );
}

const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: prod-admin
clusters:
  - name: prod
    cluster: {server: "https://prod.example.com:6443"}
users:
  - name: nspool
    user: {token: abc}
contexts:
  - name: prod-admin
    context: {cluster: prod, user: nspool}
  - name: prod-readonly
    context: {cluster: prod, user: nspool}
"#;

/// `check_kubeconfigs` on `config` with a reader that finds `files`.
fn kubeconfig_errors(config: &str, files: &[(&str, &str)]) -> Vec<String> {
    let mut s = parse(config).unwrap();
    let read = |path: &std::path::Path| -> std::io::Result<String> {
        files
            .iter()
            .find(|(p, _)| std::path::Path::new(p) == path)
            .map(|(_, text)| (*text).to_owned())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    };
    clusters::check_kubeconfigs(&mut s.clusters, &read)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn kubeconfigs_are_checked_naming_the_clusters_keys() {
    let with = |rest: &str| one_cluster(&format!(", kubeconfig: /k/prod{rest}"));
    // A good one, with its context or its current-context.
    assert!(
        kubeconfig_errors(
            &with(", context: prod-readonly"),
            &[("/k/prod", KUBECONFIG)]
        )
        .is_empty()
    );
    assert!(kubeconfig_errors(&with(""), &[("/k/prod", KUBECONFIG)]).is_empty());
    // Without a kubeconfig nothing is read.
    assert!(kubeconfig_errors(&one_cluster(""), &[]).is_empty());
    assert!(kubeconfig_errors(STANDARD, &[]).is_empty());

    let errs = kubeconfig_errors(&with(""), &[]);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("nspool.clusters[0].kubeconfig: cannot read /k/prod: "),
        "{errs:?}"
    );

    // Not YAML of a kubeconfig's shape; or a mapping with no contexts (an
    // empty file, a Helm values file), which could not be used either.
    for not_kubeconfig in [
        "just some text",
        "- a\n- list",
        "clusters: 3",
        "",
        "global: {baseDomain: example.com}",
    ] {
        let errs = kubeconfig_errors(&with(""), &[("/k/prod", not_kubeconfig)]);
        assert_eq!(errs.len(), 1, "{not_kubeconfig}: {errs:?}");
        assert!(
            errs[0].starts_with("nspool.clusters[0].kubeconfig: /k/prod is not a kubeconfig: "),
            "{not_kubeconfig}: {errs:?}"
        );
    }

    let errs = kubeconfig_errors(&with(", context: staging"), &[("/k/prod", KUBECONFIG)]);
    assert_eq!(
        errs,
        [
            "nspool.clusters[0].context: /k/prod has no context \"staging\" (it has: prod-admin, prod-readonly)"
        ]
    );
    // A current-context the file does not have: the file is at fault.
    let broken = KUBECONFIG.replace("current-context: prod-admin", "current-context: gone");
    let errs = kubeconfig_errors(&with(""), &[("/k/prod", &broken)]);
    assert_eq!(
        errs,
        [
            "nspool.clusters[0].kubeconfig: /k/prod has no context \"gone\" (it has: prod-admin, prod-readonly)"
        ]
    );
    // No current-context and none named: name one.
    let none = KUBECONFIG.replace("current-context: prod-admin", "");
    let errs = kubeconfig_errors(&with(""), &[("/k/prod", &none)]);
    assert_eq!(
        errs,
        [
            "nspool.clusters[0].context: /k/prod has no current-context: name one of its contexts (prod-admin, prod-readonly)"
        ]
    );
    // A context needs a kubeconfig to be in.
    let errs = kubeconfig_errors(&one_cluster(", context: prod-admin"), &[]);
    assert_eq!(
        errs,
        ["nspool.clusters[0].context: a context needs a kubeconfig: set kubeconfig too"]
    );
    // Each cluster is checked, each error by its own key.
    let two = format!(
        "nspool: {{clusters: [{{id: {PROD_ID}, name: prod, kubeconfig: /k/prod}}, {{id: {STAGING_ID}, name: staging, kubeconfig: /k/staging}}]}}"
    );
    let errs = kubeconfig_errors(&two, &[("/k/prod", KUBECONFIG)]);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("nspool.clusters[1].kubeconfig: cannot read /k/staging"),
        "{errs:?}"
    );

    // Two files that reach one API server (a trailing slash changes nothing)
    // would make one cluster two: refused on the second.
    let same = KUBECONFIG.replace("prod.example.com:6443\"", "prod.example.com:6443/\"");
    let errs = kubeconfig_errors(&two, &[("/k/prod", KUBECONFIG), ("/k/staging", &same)]);
    assert_eq!(
        errs,
        [
            "nspool.clusters[1].kubeconfig: reaches the same API server (https://prod.example.com:6443) as nspool.clusters[0].kubeconfig: two entries would be one cluster under two ids, and a claim in one would overwrite the other's labels; list that cluster once"
        ]
    );
    let other = KUBECONFIG.replace("prod.example.com", "staging.example.com");
    assert!(kubeconfig_errors(&two, &[("/k/prod", KUBECONFIG), ("/k/staging", &other)]).is_empty());
}

#[test]
fn a_kubeconfig_read_is_remembered_by_its_hash() {
    let mut s = parse(&one_cluster(", kubeconfig: /k/prod")).unwrap();
    let read = |_: &std::path::Path| Ok(KUBECONFIG.to_owned());
    assert!(clusters::check_kubeconfigs(&mut s.clusters, &read).is_empty());
    let first = s.clusters[0].kubeconfig_sha256.clone().expect("a hash");
    let rotated = |_: &std::path::Path| Ok(KUBECONFIG.replace("token: abc", "token: xyz"));
    assert!(clusters::check_kubeconfigs(&mut s.clusters, &rotated).is_empty());
    assert_ne!(
        s.clusters[0].kubeconfig_sha256.as_deref(),
        Some(first.as_str())
    );
}

/// The YAML blocks of docs/configuration.md's "Many clusters" section.
fn many_clusters_doc_blocks() -> Vec<String> {
    let page = include_str!("../../docs/configuration.md");
    let start = page
        .find("## Many clusters (Software 1.x)")
        .expect("docs/configuration.md has a Many clusters section");
    let section = &page[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .split("```yaml\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_many_clusters_configs_of_the_docs_are_valid() {
    let blocks = many_clusters_doc_blocks();
    assert_eq!(blocks.len(), 3, "the config, before and after the move");

    let s = parse(&blocks[0]).unwrap_or_else(|e| panic!("{e}\n{}", blocks[0]));
    let names: Vec<&str> = s.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["prod", "staging"]);
    assert_eq!(s.default_cluster().id.to_string(), PROD_ID);
    assert_eq!(s.clusters[1].id.to_string(), STAGING_ID);
    assert!(
        s.clusters
            .iter()
            .all(|c| c.kubeconfig.is_some() && c.context.is_some())
    );
    assert!(s.clusters.iter().all(|c| pool_names(c).contains(&"team-a")));
    assert_eq!(s.clusters[0].nspool_rbac(), NspoolRbac::Create);
    assert_eq!(s.clusters[1].nspool_rbac(), NspoolRbac::Verify);
    assert!(s.service.houston_version.starts_with("1."));

    // Before the move: one cluster, the top-level pool.
    let before = parse(&blocks[1]).unwrap();
    assert!(!before.many_clusters());
    assert_eq!(
        pool_names(before.default_cluster()),
        ["team-a", "team-b", "team-c"]
    );
    // After: the same pool in the first entry, with the id given.
    let after = parse(&blocks[2]).unwrap();
    assert_eq!(
        pool_names(after.default_cluster()),
        pool_names(before.default_cluster())
    );
    assert!(after.default_cluster().id_given && after.default_cluster().kubeconfig.is_none());
    // Left beside nspool.clusters, the top-level pool is refused: the page
    // says to move it.
    let errs = errors(&format!("{}{}", blocks[1], blocks[2]));
    assert!(
        errs[0].starts_with("global.features.namespacePools: with nspool.clusters"),
        "{errs:?}"
    );
}

#[test]
fn two_clusters_without_a_kubeconfig_would_be_one_api_server() {
    let config = |mode: &str| {
        format!(
            "nspool:\n  kubernetes: {{mode: {mode}}}\n  clusters:\n    - {{id: 3f2b9a52-6c1e-4e8f-9d7a-000000000001, name: a}}\n    - {{id: 3f2b9a52-6c1e-4e8f-9d7a-000000000002, name: b}}\n    - {{id: 3f2b9a52-6c1e-4e8f-9d7a-000000000003, name: c, kubeconfig: /k}}\n"
        )
    };
    let errs = errors(&config("auto"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "nspool.clusters[1].kubeconfig: nspool.clusters[0] has no kubeconfig either"
        ),
        "{errs:?}"
    );
    // Without Kubernetes no API server is reached: nothing to tell apart.
    assert!(parse(&config("'off'")).is_ok());
}
