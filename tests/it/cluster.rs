//! The real Kubernetes control planes the Kubernetes tests run against:
//! etcd, kube-apiserver (RBAC, audit log) and the ServiceAccount, root-CA and
//! namespace controllers, built from Kubernetes' own Go modules
//! (`tests/control-plane`, started by `scripts/control-plane`).
//!
//! Two are shared by every test ([`Plane`]): [`Cluster::connect`] the first,
//! [`Cluster::connect_second`] the second, for the tests that need two
//! clusters at once. `scripts/test.sh` starts both for the whole run and
//! names their kubeconfigs and audit logs in `NSPOOL_TEST_KUBECONFIG` and
//! `NSPOOL_TEST_AUDIT_LOG` (the second: `NSPOOL_TEST_KUBECONFIG_2` and
//! `NSPOOL_TEST_AUDIT_LOG_2`), and their Kubernetes version in
//! `NSPOOL_TEST_K8S` (`scripts/control-plane --k8s`; unset: the newest).
//! Without them the first test that needs a plane starts it itself, which
//! lives as long as the test process (it exits when its stdin closes).
//! Every test uses namespace names of its own (a random suffix), so the
//! tests share the control planes side by side.
//!
//! A test that takes a cluster down (its API server hanging or gone while
//! another serves) starts one of its own: [`OwnedPlane::start`], about 4 s
//! once built.
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
use std::ffi::OsStr;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
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

/// The shared control planes. Every test may use both, side by side: the
/// second is for the tests that need two clusters at once (nspool serving
/// several).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// `NSPOOL_TEST_KUBECONFIG`, `NSPOOL_TEST_AUDIT_LOG`.
    First,
    /// `NSPOOL_TEST_KUBECONFIG_2`, `NSPOOL_TEST_AUDIT_LOG_2`.
    Second,
}

impl Plane {
    fn label(self) -> &'static str {
        match self {
            Plane::First => "first",
            Plane::Second => "second",
        }
    }

    /// The environment variables naming a plane `scripts/test.sh` started.
    fn env(self) -> (&'static str, &'static str) {
        match self {
            Plane::First => ("NSPOOL_TEST_KUBECONFIG", "NSPOOL_TEST_AUDIT_LOG"),
            Plane::Second => ("NSPOOL_TEST_KUBECONFIG_2", "NSPOOL_TEST_AUDIT_LOG_2"),
        }
    }
}

/// What a test needs of a control plane: where its admin kubeconfig and its
/// audit log are.
#[derive(Debug, Clone)]
struct PlaneFiles {
    kubeconfig: PathBuf,
    audit_log: PathBuf,
}

struct SharedPlane {
    files: PlaneFiles,
    /// Ours to keep alive: it exits when this process does (its stdin closes).
    _process: Option<Mutex<Child>>,
}

static FIRST: OnceLock<SharedPlane> = OnceLock::new();
static SECOND: OnceLock<SharedPlane> = OnceLock::new();

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where this test process keeps the control planes it starts itself.
fn planes_dir() -> PathBuf {
    repository()
        .join("target/test-control-plane")
        .join(std::process::id().to_string())
}

/// A shared plane's files, started first when needed (off the async runtime).
async fn shared_files(plane: Plane) -> PlaneFiles {
    tokio::task::spawn_blocking(move || shared(plane).files.clone())
        .await
        .expect("the control plane starts")
}

fn shared(plane: Plane) -> &'static SharedPlane {
    let cell = match plane {
        Plane::First => &FIRST,
        Plane::Second => &SECOND,
    };
    cell.get_or_init(|| {
        let (kubeconfig_var, audit_var) = plane.env();
        let shared = match std::env::var_os(kubeconfig_var) {
            Some(kubeconfig) => SharedPlane {
                files: PlaneFiles {
                    kubeconfig: kubeconfig.into(),
                    audit_log: std::env::var_os(audit_var)
                        .unwrap_or_else(|| {
                            panic!("{audit_var} names the control plane's audit log")
                        })
                        .into(),
                },
                _process: None,
            },
            None => {
                let dir = planes_dir().join(plane.label());
                let _ = std::fs::remove_dir_all(&dir);
                let process = launch(plane.label(), &dir, &[], false);
                SharedPlane {
                    files: PlaneFiles {
                        kubeconfig: dir.join("kubeconfig"),
                        audit_log: dir.join("audit.log"),
                    },
                    _process: Some(Mutex::new(process)),
                }
            }
        };
        install_shipped_rbac(&shared.files.kubeconfig);
        shared
    })
}

/// `scripts/control-plane` (which builds it when needed) for this test
/// process, with its kubeconfig and audit log in `dir`; returns once it is
/// ready. The Kubernetes version is the one `scripts/test.sh` names in
/// `NSPOOL_TEST_K8S` (its `--k8s`; unset: the newest). With `own_group` it
/// runs in a process group of its own, which can then be paused as a whole
/// without pausing this process.
fn launch(label: &str, dir: &Path, extra: &[&OsStr], own_group: bool) -> Child {
    std::fs::create_dir_all(dir).expect("control plane directory");
    let kubeconfig = dir.join("kubeconfig");
    let mut command = Command::new(repository().join("scripts/control-plane"));
    if let Some(version) = std::env::var_os("NSPOOL_TEST_K8S").filter(|v| !v.is_empty()) {
        command.arg("--k8s").arg(version);
    }
    command
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--audit-log")
        .arg(dir.join("audit.log"))
        .arg("--exit-on-stdin-eof")
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if own_group {
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .expect("scripts/control-plane starts (it needs Go to build the control plane)");
    let stdout = child.stdout.take().expect("piped stdout");
    let started = Instant::now();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let prefix = format!("control plane ({label})");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("{prefix}: {line}");
            if line.starts_with("ready") {
                let _ = ready_tx.send(());
            }
        }
    });
    let mut ready = false;
    loop {
        ready |= ready_rx.recv_timeout(Duration::from_millis(200)).is_ok();
        if ready && kubeconfig.exists() {
            return child;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the {label} test control plane stopped before it was ready ({status}); see above"
            );
        }
        assert!(
            started.elapsed() < BUILD_AND_START,
            "the {label} test control plane was not ready within {BUILD_AND_START:?}"
        );
    }
}

/// A control plane one test owns, apart from the shared ones, to take down
/// and bring back: "one cluster's API server is down while another serves".
/// [`OwnedPlane::pause`] makes it hang (etcd and API server stopped with
/// SIGSTOP: connections open, no answer, the "down or slow" case);
/// [`OwnedPlane::stop`] makes it refuse connections, and
/// [`OwnedPlane::restart`] brings it back on the same address with the same
/// certificates, tokens and objects. Its processes end when it is dropped,
/// and when this test process ends in any other way (see `GUARD`). Its
/// audit log goes with it, so dropping it checks that nspool never sent it
/// a DELETE (what `scripts/test.sh` checks of the shared ones).
pub struct OwnedPlane {
    label: String,
    dir: PathBuf,
    files: PlaneFiles,
    /// The API server's port, kept across restarts.
    port: u16,
    running: Option<Running>,
    paused: bool,
}

/// An owned plane's process (the leader of its own process group) and the
/// guard that ends that group if this test process dies without doing so.
struct Running {
    process: Child,
    guard: Child,
}

/// Waits for its stdin to close, which happens when the test process ends
/// however it ends (a panic that aborts, a signal, Ctrl-C: it ignores the
/// terminal's signals so that it outlives the tests), then wakes the
/// control plane's process group up if it was paused (a paused process
/// would not see its own stdin close) and stops it; killed if it has not
/// stopped within a minute. Dropping an [`OwnedPlane`] kills the guard
/// first (a process group's id may be reused once it is gone), then does
/// the same itself.
const GUARD: &str = r#"trap '' INT TERM HUP QUIT
cat >/dev/null
kill -CONT "-$1" 2>/dev/null
kill -TERM "-$1" 2>/dev/null
i=0
while kill -0 "-$1" 2>/dev/null; do
  if [ "$i" -ge 600 ]; then kill -KILL "-$1" 2>/dev/null; exit 0; fi
  sleep 0.1
  i=$((i + 1))
done
"#;

impl OwnedPlane {
    /// Starts a control plane of its own (with the shipped RBAC installed,
    /// like the shared ones) and connects to it.
    pub async fn start() -> (OwnedPlane, Cluster) {
        let label = format!("owned-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        let dir = planes_dir().join(&label);
        let mut plane = OwnedPlane {
            files: PlaneFiles {
                // A copy of the kubeconfig the control plane writes: it
                // removes its own when it stops, and the copy stays valid
                // across a restart (same address, same certificates).
                kubeconfig: dir.join("admin.kubeconfig"),
                audit_log: dir.join("audit.log"),
            },
            label,
            dir,
            port: 0,
            running: None,
            paused: false,
        };
        plane.run().await;
        std::fs::copy(plane.dir.join("kubeconfig"), &plane.files.kubeconfig)
            .expect("the owned control plane's kubeconfig copied");
        let cluster = plane.connect().await;
        plane.port = cluster
            .admin_config
            .cluster_url
            .port_u16()
            .expect("the API server's URL has a port");
        let kubeconfig = plane.files.kubeconfig.clone();
        tokio::task::spawn_blocking(move || install_shipped_rbac(&kubeconfig))
            .await
            .expect("the shipped RBAC installed");
        (plane, cluster)
    }

    /// Another view of this plane (a namespace suffix of its own).
    pub async fn connect(&self) -> Cluster {
        Cluster::connect_with(self.files.clone(), new_suffix()).await
    }

    /// Its API server's URL (`https://127.0.0.1:PORT`), the same across restarts.
    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Starts its process and waits until it is ready (on `self.port` when
    /// one was kept, with the data of the runs before).
    async fn run(&mut self) {
        assert!(
            self.running.is_none(),
            "the {} control plane runs already",
            self.label
        );
        let (label, dir, port) = (self.label.clone(), self.dir.clone(), self.port);
        let process = tokio::task::spawn_blocking(move || {
            let data = dir.join("data");
            let port = port.to_string();
            let extra: [&OsStr; 4] = [
                "--data-dir".as_ref(),
                data.as_os_str(),
                "--port".as_ref(),
                port.as_ref(),
            ];
            launch(&label, &dir, &extra, true)
        })
        .await
        .expect("the owned control plane starts");
        let guard = Command::new("sh")
            .arg("-c")
            .arg(GUARD)
            .arg("nspool-control-plane-guard")
            .arg(process.id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs the control plane's guard");
        self.running = Some(Running { process, guard });
        self.paused = false;
    }

    fn process_group(&self) -> libc::pid_t {
        let running = self.running.as_ref().unwrap_or_else(|| {
            panic!("the {} control plane is stopped", self.label);
        });
        libc::pid_t::try_from(running.process.id()).expect("a process id")
    }

    /// Stops (SIGSTOP) its whole process group: the API server accepts
    /// connections (the kernel does) but answers nothing until
    /// [`OwnedPlane::resume`]. Returns once the process is stopped.
    pub fn pause(&mut self) {
        let group = self.process_group();
        signal_group(group, libc::SIGSTOP);
        self.paused = true;
        wait_for_state(group, true);
    }

    /// Continues (SIGCONT) what [`OwnedPlane::pause`] stopped.
    pub fn resume(&mut self) {
        let group = self.process_group();
        signal_group(group, libc::SIGCONT);
        self.paused = false;
        wait_for_state(group, false);
    }

    /// Stops it (gracefully; its data stays): connections to its address
    /// are refused until [`OwnedPlane::restart`].
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            tokio::task::spawn_blocking(move || end(running))
                .await
                .expect("the owned control plane stops");
        }
        self.paused = false;
    }

    /// Starts it again after [`OwnedPlane::stop`]: the same address,
    /// certificates and service-account signing key (clients and tokens
    /// from before still work), the same objects.
    pub async fn restart(&mut self) {
        self.run().await;
    }
}

impl Drop for OwnedPlane {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            end(running);
        }
        if std::thread::panicking() {
            eprintln!(
                "the {} control plane's files are kept in {} (its log: data/control-plane.log)",
                self.label,
                self.dir.display()
            );
            return;
        }
        let deletes = nspool_deletes(&self.files.audit_log);
        let _ = std::fs::remove_dir_all(&self.dir);
        assert!(
            deletes.is_empty(),
            "nspool sent a DELETE to the {} control plane: {deletes:#?}",
            self.label
        );
    }
}

/// Sends `signal` to process group `group` (one an [`OwnedPlane`] started).
fn signal_group(group: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill(2) takes no pointers; a negative pid names a process
    // group, here one of our own children's (process_group(0)).
    unsafe { libc::kill(-group, signal) };
}

/// Waits (up to 10 s) until process `pid` is stopped by a signal, or no
/// longer is: the signal is delivered asynchronously.
fn wait_for_state(pid: libc::pid_t, stopped: bool) {
    let started = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if state.is_some_and(|s| (s == 'T') == stopped) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "process {pid} did not {} within 10 s (state {state:?})",
            if stopped { "stop" } else { "continue" }
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Ends an owned plane's processes: the guard first (see `GUARD`), then the
/// control plane's group, woken up in case it is paused, stopped gracefully
/// (SIGTERM: a second one would make it exit at once), killed after a minute.
fn end(mut running: Running) {
    let _ = running.guard.kill();
    let _ = running.guard.wait();
    let group = libc::pid_t::try_from(running.process.id()).expect("a process id");
    // Not reaped until it is waited for, so its group is still ours to signal.
    if let Ok(None) = running.process.try_wait() {
        signal_group(group, libc::SIGCONT);
        signal_group(group, libc::SIGTERM);
        let started = Instant::now();
        while let Ok(None) = running.process.try_wait() {
            if started.elapsed() > Duration::from_secs(60) {
                signal_group(group, libc::SIGKILL);
                let _ = running.process.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `kubectl` against the first shared control plane as its admin; panics
/// with its output when it fails. [`Cluster::kubectl`] for a test's own.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    kubectl_at(&shared(Plane::First).files.kubeconfig, args, stdin)
        .unwrap_or_else(|e| panic!("{e}"))
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

/// A namespace suffix of a test's own.
fn new_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..6].to_owned()
}

/// One test's view of one cluster (control plane): its admin client, its
/// namespace names. Everything here answers for that cluster only.
pub struct Cluster {
    pub admin: kube::Client,
    admin_config: kube::Config,
    files: PlaneFiles,
    suffix: String,
}

impl Cluster {
    /// The first shared control plane, the one every Kubernetes test uses.
    pub async fn connect() -> Cluster {
        Cluster::connect_to(Plane::First).await
    }

    /// The second shared control plane, for tests that need two clusters.
    pub async fn connect_second() -> Cluster {
        Cluster::connect_to(Plane::Second).await
    }

    pub async fn connect_to(plane: Plane) -> Cluster {
        Cluster::connect_with(shared_files(plane).await, new_suffix()).await
    }

    /// Both shared control planes, with one namespace suffix: `ns(base)`
    /// names the same namespace in either cluster.
    pub async fn connect_both() -> (Cluster, Cluster) {
        // Side by side: when this process starts them, they start at once.
        let (first, second) = tokio::join!(shared_files(Plane::First), shared_files(Plane::Second));
        let suffix = new_suffix();
        let first = Cluster::connect_with(first, suffix.clone()).await;
        let second = Cluster::connect_with(second, suffix).await;
        (first, second)
    }

    async fn connect_with(files: PlaneFiles, suffix: String) -> Cluster {
        let kubeconfig = Kubeconfig::read_from(&files.kubeconfig).expect("a kubeconfig");
        let admin_config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("the admin kubeconfig");
        let admin = kube::Client::try_from(admin_config.clone()).expect("an admin client");
        Cluster {
            admin,
            admin_config,
            files,
            suffix,
        }
    }

    /// Its admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.files.kubeconfig
    }

    /// Its admin kube config (a copy to change, e.g. its timeouts).
    pub fn admin_config(&self) -> kube::Config {
        self.admin_config.clone()
    }

    /// `kubectl` against this cluster as its admin; panics with its output
    /// when it fails.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        kubectl_at(&self.files.kubeconfig, args, stdin).unwrap_or_else(|e| panic!("{e}"))
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
        // Named by the API server's port too: a test's two clusters may share
        // its suffix (`connect_both`).
        let port = self.admin_config.cluster_url.port_u16().unwrap_or_default();
        let path = dir.join(format!("kubeconfig-{}-{port}", account.service_account()));
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
        self.kubectl(
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
        self.kubectl(
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
        self.kubectl(
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
        let text = std::fs::read_to_string(&self.files.audit_log).unwrap_or_default();
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
        let text = std::fs::read_to_string(&self.files.audit_log).unwrap_or_default();
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

    /// Fails the test if this cluster's audit log holds a DELETE (refused
    /// or not) sent by nspool as any of its accounts, anywhere, by any test
    /// so far.
    pub fn assert_never_deleted(&self) {
        let deletes = nspool_deletes(&self.files.audit_log);
        assert!(deletes.is_empty(), "nspool sent a DELETE: {deletes:#?}");
    }
}

/// The DELETEs in an audit log sent by nspool as any of its accounts (but
/// the tests' own probes, [`PROBE_AGENT`]).
fn nspool_deletes(audit_log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(audit_log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["stage"] == "ResponseComplete")
        .filter(|e| matches!(e["verb"].as_str(), Some("delete" | "deletecollection")))
        .filter(|e| {
            e["user"]["username"]
                .as_str()
                .is_some_and(|u| u.starts_with(&format!("system:serviceaccount:{PLATFORM}:nspool")))
        })
        .filter(|e| e["userAgent"] != PROBE_AGENT)
        .map(|e| {
            format!(
                "{} {} by {}",
                e["verb"], e["requestURI"], e["user"]["username"]
            )
        })
        .collect()
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
