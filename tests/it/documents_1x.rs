//! The documents the astro CLI sends to a Software 1.x platform (many
//! clusters), in the CLI's shape: it picks them when `appConfig.version` is
//! 1.0.0 or later, and they name the cluster (`--cluster-id`) in `clusterId`.

pub const APP_CONFIG: &str = r#"
query AppConfig($clusterId: Uuid) {
  appConfig(clusterId: $clusterId) {
    version
    baseDomain
    byoUpdateRegistryHost
    smtpConfigured
    manualReleaseNames
    configureDagDeployment
    nfsMountDagDeployment
    manualNamespaceNames
    hardDeleteDeployment
    triggererEnabled
    featureFlags
  }
}"#;

pub const AVAILABLE_NAMESPACES: &str = r#"
query availableNamespaces($clusterId: Uuid!) {
  availableNamespaces(clusterId: $clusterId) { name }
}"#;

/// 1.0.1 and later (1.0.0 also selects `airflowVersion`).
pub const CREATE_DEPLOYMENT: &str = r#"
mutation upsertDeployment(
  $label: String, $workspaceId: Uuid, $clusterId: Uuid, $releaseName: String,
  $executor: ExecutorType, $runtimeVersion: String, $namespace: String,
  $cloudRole: String, $dagDeployment: DagDeployment, $triggererReplicas: Int
) {
  upsertDeployment(
    workspaceUuid: $workspaceId, clusterId: $clusterId, label: $label,
    releaseName: $releaseName, namespace: $namespace, runtimeVersion: $runtimeVersion,
    executor: $executor, triggerer: { replicas: $triggererReplicas },
    dagDeployment: $dagDeployment, cloudRole: $cloudRole
  ) {
    id type label releaseName version runtimeVersion urls { type url } createdAt updatedAt
  }
}"#;

pub const PAGINATED_DEPLOYMENTS: &str = r#"
query paginatedDeployments($take: Int, $name: String, $cursor: Uuid, $pageNumber: Int, $clusterId: Uuid) {
  paginatedDeployments(take: $take, name: $name, cursor: $cursor, pageNumber: $pageNumber, clusterId: $clusterId) {
    id type label releaseName workspace { id } deployInfo { nextCli current }
    version runtimeVersion clusterId createdAt updatedAt
  }
}"#;

pub const WORKSPACE_DEPLOYMENTS: &str = r#"
query workspaceDeployments($workspaceUuid: Uuid!, $releaseName: String) {
  workspaceDeployments(workspaceUuid: $workspaceUuid, releaseName: $releaseName) {
    id type label releaseName workspace { id } deployInfo { nextCli current }
    version runtimeVersion clusterId createdAt updatedAt
  }
}"#;

pub const DEPLOYMENT: &str = r#"
query GetDeployment($id: String) {
  deployment(where: {id: $id}) {
    id runtimeVersion runtimeAirflowVersion releaseName urls { type url } dagDeployment { type } clusterId
  }
}"#;

pub const DELETE_DEPLOYMENT: &str = r#"
mutation DeleteDeployment($deploymentId: Uuid!, $deploymentHardDelete: Boolean) {
  deleteDeployment(deploymentUuid: $deploymentId, deploymentHardDelete: $deploymentHardDelete) {
    id
  }
}"#;
