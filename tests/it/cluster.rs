//! The real Kubernetes control plane the Kubernetes tests run against: etcd,
//! kube-apiserver (RBAC, audit log) and the ServiceAccount, root-CA and
//! namespace controllers, built from Kubernetes' own Go modules
//! (`tests/control-plane`, started by `scripts/control-plane`).
//!
//! `scripts/test.sh` starts one for the whole run and names its kubeconfig
//! and audit log in `NSPOOL_TEST_KUBECONFIG` and `NSPOOL_TEST_AUDIT_LOG`.
//! Without them the first test that needs a cluster starts one itself, which
//! lives as long as the test process (it exits when its stdin closes).
//! Every test uses namespace names of its own (a random suffix), so the
//! tests share one control plane side by side.
//!
//! nspool talks to it as its own ServiceAccount, bound to exactly the RBAC
//! shipped in `docker/kubernetes/` (a token from the TokenRequest API), so
//! every test here also proves the shipped permissions are enough.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DynamicObject, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use nspool::kube::client::KubeClient;
use serde_json::Value;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The platform namespace of the shipped manifests (`base/kustomization.yaml`).
pub const PLATFORM: &str = "astronomer";
/// The user agent of the tests' own probes as nspool's accounts: not nspool.
pub const PROBE_AGENT: &str = "nspool-test-probe";
/// How long a cold build of the control plane may take before a test gives up.
const BUILD_AND_START: Duration = Duration::from_secs(25 * 60);

/// Who nspool is in the cluster: one ServiceAccount per shipped overlay, so
/// that no test holds the union of two modes' permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    /// `docker/kubernetes/create` as shipped: ServiceAccount `nspool`.
    Create,
    /// `docker/kubernetes/verify` without the claim-labels binding
    /// (ServiceAccount `nspool-verify`, bound to ClusterRole `nspool-verify`).
    Verify,
    /// `docker/kubernetes/verify` with `nspool-claim-labels` bound too
    /// (ServiceAccount `nspool-verify-labels`).
    VerifyWithClaimLabels,
}

impl Account {
    pub fn service_account(self) -> &'static str {
        match self {
            Account::Create => "nspool",
            Account::Verify => "nspool-verify",
            Account::VerifyWithClaimLabels => "nspool-verify-labels",
        }
    }

    /// The user name the API server gives its tokens.
    pub fn user(self) -> String {
        format!(
            "system:serviceaccount:{PLATFORM}:{}",
            self.service_account()
        )
    }
}

struct ControlPlane {
    kubeconfig: PathBuf,
    audit_log: PathBuf,
    /// Ours to keep alive: it exits when this process does (its stdin closes).
    _process: Option<Mutex<Child>>,
}

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(|| {
        let plane = match std::env::var_os("NSPOOL_TEST_KUBECONFIG") {
            Some(kubeconfig) => ControlPlane {
                kubeconfig: kubeconfig.into(),
                audit_log: std::env::var_os("NSPOOL_TEST_AUDIT_LOG")
                    .expect("NSPOOL_TEST_AUDIT_LOG names the control plane's audit log")
                    .into(),
                _process: None,
            },
            None => start_control_plane(),
        };
        install_shipped_rbac(&plane.kubeconfig);
        plane
    })
}

/// `scripts/control-plane` (which builds it when needed) for this test process.
fn start_control_plane() -> ControlPlane {
    let dir = repository()
        .join("target/test-control-plane")
        .join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("control plane directory");
    let kubeconfig = dir.join("kubeconfig");
    let audit_log = dir.join("audit.log");
    let mut child = Command::new(repository().join("scripts/control-plane"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--audit-log")
        .arg(&audit_log)
        .arg("--exit-on-stdin-eof")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("scripts/control-plane starts (it needs Go to build the control plane)");
    let stdout = child.stdout.take().expect("piped stdout");
    let started = Instant::now();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("control plane: {line}");
            if line.starts_with("ready") {
                let _ = ready_tx.send(());
            }
        }
    });
    loop {
        if ready_rx.recv_timeout(Duration::from_millis(200)).is_ok() && kubeconfig.exists() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the test control plane stopped before it was ready ({status}); see above");
        }
        assert!(
            started.elapsed() < BUILD_AND_START,
            "the test control plane was not ready within {BUILD_AND_START:?}"
        );
    }
    ControlPlane {
        kubeconfig,
        audit_log,
        _process: Some(Mutex::new(child)),
    }
}

/// `kubectl` against the control plane as its admin; panics with its output
/// when it fails.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    kubectl_at(&control_plane().kubeconfig, args, stdin).unwrap_or_else(|e| panic!("{e}"))
}

fn kubectl_at(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs (Debian's kubernetes-client; scripts/test.sh installs it)");
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("kubectl reads its input");
    drop(input);
    let out = child.wait_with_output().expect("kubectl finishes");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "kubectl {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The shipped manifests, as a platform engineer applies them: the create
/// overlay as it is (ServiceAccount `nspool`, the Deployment and all), and the
/// verify overlay's ClusterRoles bound to two other ServiceAccounts.
/// Server-side apply: idempotent, so test processes may race here.
fn install_shipped_rbac(kubeconfig: &Path) {
    let run = |args: &[&str], stdin: Option<&str>| {
        kubectl_at(kubeconfig, args, stdin).unwrap_or_else(|e| panic!("{e}"))
    };
    let apply = ["apply", "--server-side", "--force-conflicts", "-f", "-"];
    run(
        &apply,
        Some(&format!(
            "{{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {{\"name\": \"{PLATFORM}\"}}}}"
        )),
    );
    let create = repository().join("docker/kubernetes/create");
    run(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            create.to_str().expect("a UTF-8 path"),
        ],
        None,
    );
    let verify =
        std::fs::read_to_string(repository().join("docker/kubernetes/verify/rbac-verify.yaml"))
            .expect("the verify overlay's RBAC");
    let mut objects: Vec<Value> = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&verify) {
        let object: Value = serde::Deserialize::deserialize(document).expect("shipped YAML parses");
        if object["kind"] == "ClusterRoleBinding" {
            continue;
        }
        objects.push(object);
    }
    let bind = |name: &str, role: &str, account: Account| {
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": account.service_account(), "namespace": PLATFORM}]
        })
    };
    for account in [Account::Verify, Account::VerifyWithClaimLabels] {
        objects.push(
            serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": account.service_account(), "namespace": PLATFORM}}),
        );
        objects.push(bind(
            &format!("{}-verify", account.service_account()),
            "nspool-verify",
            account,
        ));
    }
    objects.push(bind(
        "nspool-verify-labels-claim-labels",
        "nspool-claim-labels",
        Account::VerifyWithClaimLabels,
    ));
    // Commander's own account: the one the Commander Role is bound to.
    objects.push(
        serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "astronomer-commander", "namespace": PLATFORM}}),
    );
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
    run(&apply, Some(&list.to_string()));
}

/// One test's view of the cluster: its admin client, its namespace names.
pub struct Cluster {
    pub admin: kube::Client,
    admin_config: kube::Config,
    suffix: String,
}

impl Cluster {
    pub async fn connect() -> Cluster {
        let plane = tokio::task::spawn_blocking(control_plane)
            .await
            .expect("the control plane starts");
        let kubeconfig = Kubeconfig::read_from(&plane.kubeconfig).expect("a kubeconfig");
        let admin_config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("the admin kubeconfig");
        let admin = kube::Client::try_from(admin_config.clone()).expect("an admin client");
        Cluster {
            admin,
            admin_config,
            suffix: uuid::Uuid::new_v4().simple().to_string()[..6].to_owned(),
        }
    }

    pub fn kubeconfig(&self) -> &'static Path {
        &control_plane().kubeconfig
    }

    /// `base`, made this test's own.
    pub fn ns(&self, base: &str) -> String {
        format!("{base}-{}", self.suffix)
    }

    /// Is `name` one of this test's namespaces?
    fn ours(&self, name: &str) -> bool {
        name.ends_with(&format!("-{}", self.suffix))
    }

    /// A token for `account` from the TokenRequest API (an hour).
    pub async fn token(&self, account: Account) -> String {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), PLATFORM);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: Vec::new(),
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let answer = accounts
            .create_token_request(account.service_account(), &PostParams::default(), &request)
            .await
            .expect("a token for nspool's account");
        answer.status.expect("a token").token
    }

    /// A kube config that authenticates with `token` (no client certificate).
    pub fn config_with_token(&self, token: String) -> kube::Config {
        let mut config = self.admin_config.clone();
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.into()),
            ..kube::config::AuthInfo::default()
        };
        config
    }

    /// A client impersonating `user` in `groups` (the admin may impersonate).
    pub fn impersonating(&self, user: &str, groups: &[&str]) -> kube::Client {
        let mut config = self.admin_config.clone();
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups =
            Some(groups.iter().map(|g| (*g).to_owned()).collect());
        kube::Client::try_from(config).expect("an impersonating client")
    }

    /// nspool's client, as `account`.
    pub async fn nspool(&self, account: Account) -> KubeClient {
        let config = self.config_with_token(self.token(account).await);
        KubeClient::from_config(config, 16).expect("nspool's client")
    }

    /// A client as `account` to try what nspool must not do: its requests
    /// carry the user agent [`PROBE_AGENT`], so the audit tells them from nspool's.
    pub async fn client_as(&self, account: Account) -> kube::Client {
        let mut config = self.config_with_token(self.token(account).await);
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(PROBE_AGENT),
        ));
        kube::Client::try_from(config).expect("a client")
    }

    /// A kubeconfig file that authenticates as `account` (for `nspool`
    /// commands run as processes), in a directory of its own.
    pub async fn kubeconfig_as(&self, account: Account) -> PathBuf {
        let token = self.token(account).await;
        let mut kubeconfig = Kubeconfig::read_from(self.kubeconfig()).expect("a kubeconfig");
        for user in &mut kubeconfig.auth_infos {
            user.auth_info = Some(kube::config::AuthInfo {
                token: Some(token.clone().into()),
                ..kube::config::AuthInfo::default()
            });
        }
        let dir = std::env::temp_dir().join(format!("nspool-cluster-{}", self.suffix));
        std::fs::create_dir_all(&dir).expect("a directory");
        let path = dir.join(format!("kubeconfig-{}", account.service_account()));
        // The token is written out on purpose: the file is this test's only.
        let yaml = serde_yaml::to_string(&kubeconfig).expect("a kubeconfig serializes");
        std::fs::write(&path, yaml).expect("kubeconfig written");
        path
    }

    /// One Kubernetes pass of `service`'s worker, as `account`.
    pub async fn pass(
        &self,
        service: &nspool::pool::PoolService,
        account: Account,
    ) -> nspool::kube::reconcile::PassReport {
        nspool::kube::reconcile::KubeWorker::new(service, self.nspool(account).await)
            .pass(false)
            .await
            .expect("the pass reads the database")
    }

    /// An object as the API server holds it, by kind (`Namespace`, `Role`,
    /// `RoleBinding`, `ConfigMap`, `ServiceAccount`, `Secret`); `None` when absent.
    pub async fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let api: Api<DynamicObject> = self.api(kind, namespace);
        api.get_opt(name)
            .await
            .expect("the API server answers")
            .map(|o| serde_json::to_value(o).expect("an object serializes"))
    }

    fn api(&self, kind: &str, namespace: &str) -> Api<DynamicObject> {
        let (group, version) = match kind {
            "Role" | "RoleBinding" => ("rbac.authorization.k8s.io", "v1"),
            "Event" => ("events.k8s.io", "v1"),
            _ => ("", "v1"),
        };
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        if namespace.is_empty() {
            Api::all_with(self.admin.clone(), &resource)
        } else {
            Api::namespaced_with(self.admin.clone(), namespace, &resource)
        }
    }

    /// The Events (events.k8s.io/v1) in `namespace`, as the API server
    /// stores them, oldest first.
    pub async fn events(&self, namespace: &str) -> Vec<Value> {
        let api = self.api("Event", namespace);
        let mut events: Vec<Value> = api
            .list(&Default::default())
            .await
            .expect("the API server answers")
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).expect("an object serializes"))
            .collect();
        events.sort_by_key(|e| {
            (
                e["eventTime"].as_str().unwrap_or_default().to_owned(),
                e["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        });
        events
    }

    /// Objects made as a person with kubectl would (server-side apply,
    /// field manager `kubectl`): a JSON list or object.
    pub fn apply(&self, objects: &Value) {
        kubectl(
            &[
                "apply",
                "--server-side",
                "--field-manager",
                "kubectl",
                "-f",
                "-",
            ],
            Some(&objects.to_string()),
        );
    }

    /// What a Deployment's chart (or anyone but nspool) made in `namespace`:
    /// `kind` as Kubernetes spells it, `extra` merged into the object.
    pub fn put(&self, kind: &str, namespace: &str, name: &str, extra: Value) {
        let mut object = serde_json::json!({"apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace}});
        merge(&mut object, extra);
        kubectl(
            &[
                "apply",
                "--server-side",
                "--field-manager",
                "helm",
                "-f",
                "-",
            ],
            Some(&object.to_string()),
        );
    }

    /// Its owner removed it (`kind` as kubectl names it: `pvc`, `secret`, …).
    pub fn remove(&self, kind: &str, namespace: &str, name: &str) {
        kubectl(
            &["-n", namespace, "delete", kind, name, "--wait=false"],
            None,
        );
    }

    /// A namespace made by hand (option 2).
    pub fn create_namespace(&self, name: &str) {
        self.apply(&serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
    }

    /// Waits (up to 30 s) until the controllers have put the `default`
    /// ServiceAccount and the `kube-root-ca.crt` ConfigMap in `namespace`.
    pub async fn wait_for_controller_defaults(&self, namespace: &str) {
        let started = Instant::now();
        loop {
            let account = self.object("ServiceAccount", namespace, "default").await;
            let ca = self
                .object("ConfigMap", namespace, "kube-root-ca.crt")
                .await;
            if account.is_some() && ca.is_some() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the controllers did not fill {namespace} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The audit log's finished requests about this test's namespaces (or
    /// the objects in them).
    pub fn audit(&self) -> Vec<AuditEntry> {
        let text = std::fs::read_to_string(&control_plane().audit_log).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|e| e["stage"] == "ResponseComplete")
            .map(|e| AuditEntry {
                verb: e["verb"].as_str().unwrap_or_default().to_owned(),
                user: e["user"]["username"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                resource: e["objectRef"]["resource"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                namespace: e["objectRef"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                name: e["objectRef"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                uri: e["requestURI"].as_str().unwrap_or_default().to_owned(),
                code: e["responseStatus"]["code"].as_u64().unwrap_or_default(),
            })
            .filter(|e| {
                self.ours(&e.namespace) || (e.resource == "namespaces" && self.ours(&e.name))
            })
            .collect()
    }

    /// The request URIs of the cluster-wide watches `account` opened (any
    /// test's: a watch is cluster-wide; seen at `ResponseStarted`, as a
    /// watch completes only when it ends).
    pub fn watches_of(&self, account: Account) -> Vec<String> {
        let text = std::fs::read_to_string(&control_plane().audit_log).unwrap_or_default();
        let user = account.user();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|e| e["verb"] == "watch" && e["user"]["username"] == user.as_str())
            .filter_map(|e| e["requestURI"].as_str().map(str::to_owned))
            .collect()
    }

    /// The audit log's requests by `account` about this test's namespaces.
    pub fn audit_of(&self, account: Account) -> Vec<AuditEntry> {
        let user = account.user();
        self.audit()
            .into_iter()
            .filter(|e| e.user == user)
            .collect()
    }

    /// Fails the test if the audit log holds a DELETE (refused or not) sent
    /// by nspool as any of its accounts, anywhere, by any test so far.
    pub fn assert_never_deleted(&self) {
        let text = std::fs::read_to_string(&control_plane().audit_log).unwrap_or_default();
        let deletes: Vec<String> = text
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|e| e["stage"] == "ResponseComplete")
            .filter(|e| matches!(e["verb"].as_str(), Some("delete" | "deletecollection")))
            .filter(|e| {
                e["user"]["username"].as_str().is_some_and(|u| {
                    u.starts_with(&format!("system:serviceaccount:{PLATFORM}:nspool"))
                })
            })
            .filter(|e| e["userAgent"] != PROBE_AGENT)
            .map(|e| {
                format!(
                    "{} {} by {}",
                    e["verb"], e["requestURI"], e["user"]["username"]
                )
            })
            .collect();
        assert!(deletes.is_empty(), "nspool sent a DELETE: {deletes:#?}");
    }
}

/// One request in the API server's audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub verb: String,
    pub user: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub uri: String,
    pub code: u64,
}

impl AuditEntry {
    /// A request that writes (anything but get, list, watch).
    pub fn writes(&self) -> bool {
        !matches!(self.verb.as_str(), "get" | "list" | "watch")
    }
}

/// `extra` merged into `base`, objects key by key.
fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(base), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, extra) => *base = extra,
    }
}
