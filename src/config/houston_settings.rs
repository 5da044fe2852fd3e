//! Houston's own `astronomer.houston.config.deployments` settings that nspool
//! does not read. A platform's file carries them, so they are accepted as
//! they are; any other key there is refused as a typo (a misspelt
//! `preCreatedNamespaces` would otherwise leave the pool empty).
//!
//! The names are those of the platform chart's Houston config and of
//! Houston's settings for the 0.x and 1.x layouts (the ones its later path
//! migrations move), in the flat form nspool reads.

pub const HOUSTON_DEPLOYMENT_SETTINGS: &[&str] = &[
    "airflowMinimumAstroRuntimeVersion",
    "airflowV3",
    "astroRuntimeReleasesFile",
    "astroUnit",
    "astroUnitsEnabled",
    "authSideCar",
    "canUpsertDeploymentFromUI",
    "chart",
    "cleanupAirflowDb",
    "components",
    "configureDagDeployment",
    "customImageShaEnabled",
    "dagDeploy",
    "dagOnlyDeployment",
    "dagProcessorEnabled",
    "database",
    "defaultDistribution",
    "deployRollback",
    "disableManageClusterScopedResources",
    "disableManageResourceQuotasAndLimitRanges",
    "elasticsearch",
    "enableHoustonInternalAuthorization",
    "enableListAllRuntimeVersions",
    "enableSystemAdminCanCreateDeprecatedAirflows",
    "enableUpdateDeploymentImageEndpoint",
    "enableUpdateDeploymentImageEndpointDockerValidation",
    "executors",
    "exposeDockerWebhookEndpoint",
    "fluentdIndexPrefix",
    "gitSyncDagDeployment",
    "gitSyncRelay",
    "grafanaUIEnabled",
    "helm",
    "kibanaUIEnabled",
    "logHelmValues",
    "loggingSidecar",
    "manualConnectionStrings",
    "maxExtraAu",
    "maxExtraCapacity",
    "maxPodAu",
    "maxPodCapacity",
    "mode",
    "nfsMountDagDeployment",
    "overProvisioningComponents",
    "overProvisioningFactorCPU",
    "overProvisioningFactorMem",
    "pagination",
    "performanceOptimizationModeEnabled",
    "pgBouncerResourceCalculationStrategy",
    "preDeploymentValidationHook",
    "preDeploymentValidationHookTimeout",
    "privateCaCertSecretNames",
    "resourceProvisioningStrategy",
    "runtimeEnvOverideSemverCheck",
    "serviceAccountAnnotationKey",
    "sidecars",
    "taskUsageReport",
    "triggererEnabled",
    "upsertDeploymentEnabled",
    "upsertExtraIniAllowed",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_setting_is_one_nspool_reads_and_the_list_is_sorted() {
        let read = crate::config::keys::children("astronomer.houston.config.deployments");
        for name in HOUSTON_DEPLOYMENT_SETTINGS {
            assert!(!read.contains(name), "{name} is read by nspool");
        }
        let mut sorted = HOUSTON_DEPLOYMENT_SETTINGS.to_vec();
        sorted.sort_unstable();
        assert_eq!(
            sorted, HOUSTON_DEPLOYMENT_SETTINGS,
            "kept sorted, so a reader finds a name"
        );
    }
}
