//! The documents the astro CLI sends to a 0.32–0.3x platform, written here
//! from SPEC §3's schema in the CLI's shape (names, variable declarations).

pub const VERSION_PROBE: &str = "query AppConfig { appConfig { version baseDomain } }";

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
    hardDeleteDeployment
    manualNamespaceNames
    triggererEnabled
    featureFlags
  }
}"#;

pub const AUTH_CONFIG: &str = r#"
query GetAuthConfig($redirect: String) {
  authConfig(redirect: $redirect) {
    localEnabled
    publicSignup
    initialSignup
    providers { name displayName url }
  }
}"#;

pub const WORKSPACES: &str = r#"
query GetWorkspaces {
  workspaces {
    id
    label
    description
    createdAt
    updatedAt
    roleBindings {
      role
      user { id username }
      serviceAccount { id label }
    }
  }
}"#;

pub const PAGINATED_WORKSPACES: &str = r#"
query PaginatedWorkspaces($pageSize: Int, $pageNumber: Int) {
  paginatedWorkspaces(take: $pageSize, pageNumber: $pageNumber) {
    id
    label
    description
    createdAt
    updatedAt
    roleBindings { role user { id username } }
  }
}"#;

pub const WORKSPACE: &str = r#"
query GetWorkspace($workspaceUuid: Uuid!) {
  workspace(workspaceUuid: $workspaceUuid) {
    id
    label
    description
    createdAt
    updatedAt
  }
}"#;

pub const CREATE_WORKSPACE: &str = r#"
mutation CreateWorkspace($label: String!, $description: String = "N/A") {
  createWorkspace(label: $label, description: $description) {
    id
    label
    description
    createdAt
    updatedAt
  }
}"#;

pub const AVAILABLE_NAMESPACES: &str = r#"
query availableNamespaces {
  availableNamespaces { name }
}"#;

pub const CREATE_DEPLOYMENT: &str = r#"
mutation CreateDeployment(
  $label: String!
  $type: String = "airflow"
  $releaseName: String
  $workspaceId: Uuid!
  $executor: ExecutorType!
  $airflowVersion: String
  $runtimeVersion: String
  $namespace: String
  $config: JSON
  $cloudRole: String
  $dagDeployment: DagDeployment
  $triggererReplicas: Int
) {
  createDeployment(
    label: $label
    type: $type
    workspaceUuid: $workspaceId
    releaseName: $releaseName
    executor: $executor
    airflowVersion: $airflowVersion
    runtimeVersion: $runtimeVersion
    namespace: $namespace
    config: $config
    cloudRole: $cloudRole
    dagDeployment: $dagDeployment
    triggerer: { replicas: $triggererReplicas }
  ) {
    id
    type
    label
    releaseName
    version
    airflowVersion
    runtimeVersion
    urls { type url }
    createdAt
    updatedAt
  }
}"#;

pub const WORKSPACE_DEPLOYMENTS: &str = r#"
query GetDeployment($workspaceId: Uuid!, $releaseName: String) {
  workspaceDeployments(workspaceUuid: $workspaceId, releaseName: $releaseName) {
    id
    type
    label
    releaseName
    workspace { id label }
    deployInfo { nextCli current }
    version
    airflowVersion
    runtimeVersion
    runtimeAirflowVersion
    urls { type url }
    createdAt
    updatedAt
  }
}"#;

pub const PAGINATED_DEPLOYMENTS: &str = r#"
query PaginatedDeployments {
  paginatedDeployments(take: -1) {
    id
    type
    label
    releaseName
    workspace { id label }
    deployInfo { nextCli current }
    version
    airflowVersion
    runtimeVersion
    createdAt
    updatedAt
  }
}"#;

pub const DEPLOYMENT: &str = r#"
query GetDeployment($id: String!) {
  deployment(where: {id: $id}) {
    id
    airflowVersion
    desiredAirflowVersion
    runtimeVersion
    desiredRuntimeVersion
    runtimeAirflowVersion
    urls { type url }
    dagDeployment { type nfsLocation repositoryUrl branchName syncInterval rev }
  }
}"#;

pub const UPDATE_DEPLOYMENT: &str = r#"
mutation UpdateDeployment(
  $deploymentId: Uuid!,
  $payload: JSON!,
  $executor: ExecutorType,
  $cloudRole: String,
  $dagDeployment: DagDeployment,
  $triggererReplicas: Int
) {
  updateDeployment(
    deploymentUuid: $deploymentId,
    payload: $payload,
    executor: $executor,
    cloudRole: $cloudRole,
    dagDeployment: $dagDeployment,
    triggerer: { replicas: $triggererReplicas }
  ) {
    id
    type
    label
    description
    releaseName
    version
    airflowVersion
    workspace { id }
    deployInfo { current }
    createdAt
    updatedAt
  }
}"#;

pub const DELETE_DEPLOYMENT: &str = r#"
mutation DeleteDeployment($deploymentId: Uuid!, $deploymentHardDelete: Boolean) {
  deleteDeployment(deploymentUuid: $deploymentId, deploymentHardDelete: $deploymentHardDelete) {
    id
    type
    label
    description
    releaseName
    version
    workspace { id }
    createdAt
    updatedAt
  }
}"#;

pub const UPSERT_DEPLOYMENT: &str = r#"
mutation upsertDeployment(
  $workspaceId: Uuid, $deploymentId: Uuid, $label: String, $description: String,
  $releaseName: String, $namespace: String, $executor: ExecutorType,
  $runtimeVersion: String, $triggererReplicas: Int, $dagDeployment: DagDeployment
) {
  upsertDeployment(
    workspaceUuid: $workspaceId, deploymentUuid: $deploymentId, label: $label,
    description: $description, releaseName: $releaseName, namespace: $namespace,
    executor: $executor, runtimeVersion: $runtimeVersion,
    triggerer: { replicas: $triggererReplicas }, dagDeployment: $dagDeployment
  ) {
    id label description releaseName namespace runtimeVersion
    workspace { id }
  }
}"#;

/// GraphiQL's introspection query (the one it sends on load).
pub const INTROSPECTION: &str = include_str!("../fixtures/introspection.graphql");
