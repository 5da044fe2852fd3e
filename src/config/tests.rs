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
