//! The embedded default database: a private PostgreSQL started from the
//! machine's server binaries, reachable only through a Unix socket in its
//! own directory. Every nspool command uses the same one: the first that
//! needs it starts it (under a lock), the last one to leave stops it.

use sqlx::postgres::PgConnectOptions;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

mod host;
mod install;

use host::{RunAs, Search, check_reachable, find_binaries, is_root, lookup_user};
use install::{Machine, Plan};

const DATABASE: &str = "nspool";
const SUPERUSER: &str = "postgres";
const PORT: u16 = 5432;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no PostgreSQL server binaries found (looked at `pg_config --bindir` and /usr/lib/postgresql/*/bin): {advice}; or set DATABASE_URL to an existing database"
    )]
    NoBinaries { advice: String },
    #[error(
        "NSPOOL_PG_BIN is {0}, which has no initdb and pg_ctl: point it at PostgreSQL's server binaries (pg_config --bindir), or unset it"
    )]
    BadPgBin(PathBuf),
    #[error(
        "running as root, the embedded PostgreSQL needs an unprivileged user to run as, and there is no `postgres` user; create one (apt-get install postgresql does) or set DATABASE_URL"
    )]
    NoUser,
    #[error(
        "the embedded PostgreSQL runs as user {user}, who cannot reach {dir} (its mode leaves others out); set NSPOOL_DATA_DIR to a directory such as /var/lib/nspool"
    )]
    Unreachable { user: String, dir: PathBuf },
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("the embedded PostgreSQL did not accept connections: {0}")]
    Connect(sqlx::Error),
}

type Result<T, E = Error> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// The server binaries; on a bare machine installed first where nspool may
/// (root with apt-get), else an error saying what to install.
fn server_binaries() -> Result<PathBuf> {
    let search = Search::from_env();
    if let Some(dir) = find_binaries(&search)? {
        return Ok(dir);
    }
    match install::plan(&Machine::detect(is_root(), search.path.as_ref())) {
        Plan::Install(apt_get) => {
            install::install(&apt_get)?;
            find_binaries(&search)?.ok_or_else(|| Error::NoBinaries {
                advice: "apt-get installed postgresql, yet no initdb was found under /usr/lib/postgresql/*/bin; point NSPOOL_PG_BIN at it".into(),
            })
        }
        Plan::Advise(advice) => Err(Error::NoBinaries { advice }),
    }
}

pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<RunAs>,
    /// Held shared while this process uses the server; see [`Self::stop`].
    users_lock: Option<File>,
}

/// A working directory's own name under the base: its last part (for a
/// person reading `ls`) and a hash of its whole path (so two `main`
/// checkouts still differ), e.g. `main-3f9c2a1b`.
fn checkout_key(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let name: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    let hash = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    format!("{name}-{}", &hex::encode(hash)[..8])
}

impl EmbeddedPostgres {
    /// The data directory unless `NSPOOL_DATA_DIR`/`nspool.dataDir` names
    /// one: one per working directory (every command run from one checkout
    /// shares it; two checkouts never mix), under `/var/lib/nspool` as root
    /// (home directories are often mode 0700), else `$XDG_DATA_HOME/nspool`
    /// or `~/.local/share/nspool`.
    pub fn default_data_dir() -> PathBuf {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        Self::default_base().join(checkout_key(&cwd))
    }

    fn default_base() -> PathBuf {
        if is_root() {
            return PathBuf::from("/var/lib/nspool");
        }
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("nspool");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
        PathBuf::from(home).join(".local/share/nspool")
    }

    /// Starts the server if no other nspool process has, and joins it.
    pub async fn start(data_dir: Option<PathBuf>) -> Result<Self> {
        let data_dir = data_dir.unwrap_or_else(Self::default_data_dir);
        let bin_dir = server_binaries()?;
        let run_as = if is_root() {
            Some(lookup_user(SUPERUSER).ok_or(Error::NoUser)?)
        } else {
            None
        };
        fs::create_dir_all(&data_dir).map_err(io(&data_dir))?;
        if let Some(user) = &run_as {
            // The server's user must pass through the data directory to its own.
            set_mode(&data_dir, 0o755)?;
            check_reachable(&data_dir, user)?;
        }
        let socket_dir = socket_dir_for(&data_dir);
        let mut this = Self {
            bin_dir,
            data_dir,
            socket_dir,
            run_as,
            users_lock: None,
        };
        // One process at a time decides whether to start (or stop) the server.
        let start_lock = this.lock_file("start.lock")?;
        start_lock.lock().map_err(io(&this.data_dir))?;
        this.prepare_dirs()?;
        if !this.pgdata().join("PG_VERSION").exists() {
            this.initdb()?;
        }
        if !this.running() {
            this.pg_ctl_start()?;
        }
        let users = this.lock_file("users.lock")?;
        users.lock_shared().map_err(io(&this.data_dir))?;
        this.users_lock = Some(users);
        drop(start_lock);
        this.create_database().await?;
        Ok(this)
    }

    /// How to reach the server: its socket, as the superuser, database `nspool`.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.options(DATABASE)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// Leaves the server; the last nspool process to leave stops it.
    /// Leaves the server; returns whether this was its last user and stopped it.
    pub fn stop(mut self) -> Result<bool> {
        let Some(users) = self.users_lock.take() else {
            return Ok(false);
        };
        let start_lock = self.lock_file("start.lock")?;
        start_lock.lock().map_err(io(&self.data_dir))?;
        drop(users);
        let users = self.lock_file("users.lock")?;
        if users.try_lock().is_ok() && self.running() {
            // Smart first: a backend still reading its client's goodbye
            // (sent, not yet read) would otherwise be told to terminate on a
            // socket its client has closed, and log a broken pipe. Nobody
            // else uses the server, so this waits only for those; fast if
            // anything lingers.
            let smart = self.pg_ctl(
                &["stop", "-m", "smart", "-w", "-t", "5"],
                "stopping the embedded PostgreSQL",
            );
            if smart.is_err() {
                self.pg_ctl(
                    &["stop", "-m", "fast", "-w"],
                    "stopping the embedded PostgreSQL",
                )?;
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Stops the server at once, whoever uses it: a database outage, for fault
    /// tests. `immediate` is a crash; otherwise a fast shutdown.
    pub fn interrupt(&self, immediate: bool) -> Result<()> {
        let mode = if immediate { "immediate" } else { "fast" };
        self.pg_ctl(
            &["stop", "-m", mode, "-w"],
            "stopping the embedded PostgreSQL",
        )
        .map(drop)
    }

    /// Starts the server again after [`Self::interrupt`].
    pub fn resume(&self) -> Result<()> {
        self.pg_ctl_start()
    }

    fn pgdata(&self) -> PathBuf {
        self.data_dir.join("pgdata")
    }

    fn lock_file(&self, name: &str) -> Result<File> {
        let path = self.data_dir.join(name);
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))
    }

    /// The server's own directories: owned by its user, closed to everyone else.
    fn prepare_dirs(&self) -> Result<()> {
        for dir in [self.pgdata(), self.socket_dir.clone()] {
            fs::create_dir_all(&dir).map_err(io(&dir))?;
            if let Some(user) = &self.run_as {
                chown(&dir, Some(user.uid), Some(user.gid)).map_err(io(&dir))?;
            }
            set_mode(&dir, 0o700)?;
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        // The caller's working directory may be a home the server's user cannot enter.
        command.current_dir(&self.data_dir);
        command.env_remove("PGDATA");
        if let Some(user) = &self.run_as {
            // std drops root's supplementary groups when it sets the uid.
            command.uid(user.uid).gid(user.gid);
            command.env("HOME", &self.data_dir).env("USER", &user.name);
        }
        command
    }

    fn run(&self, mut command: Command, what: &str) -> Result<Output> {
        let output = command.output().map_err(|e| Error::Command {
            what: what.to_owned(),
            detail: e.to_string(),
        })?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(Error::Command {
                what: what.to_owned(),
                detail: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stderr).trim(),
                    self.log_tail()
                ),
            })
        }
    }

    fn initdb(&self) -> Result<()> {
        let mut command = self.command("initdb");
        command.arg("-D").arg(self.pgdata()).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ]);
        self.run(command, "initdb of the embedded PostgreSQL")
            .map(drop)
    }

    fn pg_ctl(&self, args: &[&str], what: &str) -> Result<Output> {
        let mut command = self.command("pg_ctl");
        command.arg("-D").arg(self.pgdata()).args(args);
        self.run(command, what)
    }

    fn running(&self) -> bool {
        self.pg_ctl(&["status"], "pg_ctl status").is_ok()
    }

    fn pg_ctl_start(&self) -> Result<()> {
        // Only a Unix socket in a private directory: no TCP port, no one else.
        let options = format!(
            "-k {} -c listen_addresses='' -p {PORT} -c max_connections=200",
            self.socket_dir.display()
        );
        let log = self.data_dir.join("postgres.log");
        if let Some(user) = &self.run_as {
            File::create(&log).map_err(io(&log))?;
            chown(&log, Some(user.uid), Some(user.gid)).map_err(io(&log))?;
        }
        let log = log.display().to_string();
        self.pg_ctl(
            &["start", "-w", "-t", "60", "-l", &log, "-o", &options],
            "starting the embedded PostgreSQL",
        )
        .map(drop)
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.data_dir.join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(5).collect();
        if lines.is_empty() {
            String::new()
        } else {
            let tail: Vec<&str> = lines.into_iter().rev().collect();
            format!("\nlast lines of postgres.log:\n{}", tail.join("\n"))
        }
    }

    async fn create_database(&self) -> Result<()> {
        use sqlx::{ConnectOptions, Connection};
        let mut last_error = None;
        // The socket can lag the pid file by a moment after a start.
        for _ in 0..50 {
            match self.options("postgres").connect().await {
                Ok(mut conn) => {
                    let exists: bool = sqlx::query_scalar(
                        "select exists (select 1 from pg_database where datname = $1)",
                    )
                    .bind(DATABASE)
                    .fetch_one(&mut conn)
                    .await
                    .map_err(Error::Connect)?;
                    if !exists {
                        let created = sqlx::query(&format!("create database {DATABASE}"))
                            .execute(&mut conn)
                            .await;
                        // Another nspool process may have created it meanwhile.
                        if let Err(e) = created
                            && e.as_database_error().and_then(|d| d.code()).as_deref()
                                != Some("42P04")
                        {
                            return Err(Error::Connect(e));
                        }
                    }
                    let _ = conn.close().await;
                    return Ok(());
                }
                Err(e) => last_error = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::Connect(
            last_error.unwrap_or(sqlx::Error::PoolTimedOut),
        ))
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io(path))
}

/// Sockets live beside the data when the path is short enough for a Unix
/// socket address (about 107 bytes), else in a short directory under /tmp.
fn socket_dir_for(data_dir: &Path) -> PathBuf {
    let beside = data_dir.join("run");
    let socket_len = beside.as_os_str().len() + "/.s.PGSQL.5432".len();
    if socket_len < 100 {
        return beside;
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    PathBuf::from(format!("/tmp/nspool-{}", &hex::encode(digest)[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_working_directory_has_its_own_data_directory() {
        let a = checkout_key(Path::new("/srv/checkouts/one/main"));
        let b = checkout_key(Path::new("/srv/checkouts/two/main"));
        assert!(a.starts_with("main-") && b.starts_with("main-"), "{a} {b}");
        assert_ne!(a, b, "same name, other checkout");
        assert_eq!(
            a,
            checkout_key(Path::new("/srv/checkouts/one/main")),
            "stable"
        );
        assert_eq!(
            checkout_key(Path::new("/")),
            format!("root-{}", &checkout_key(Path::new("/"))[5..])
        );
        let odd = checkout_key(Path::new("/tmp/we ird:name"));
        assert!(odd.starts_with("we_ird_name-"), "{odd}");
    }

    #[test]
    fn long_data_dirs_get_a_short_socket_dir() {
        assert_eq!(
            socket_dir_for(Path::new("/var/lib/nspool")),
            PathBuf::from("/var/lib/nspool/run")
        );
        let long = PathBuf::from(format!("/{}", "x".repeat(120)));
        let socket = socket_dir_for(&long);
        assert!(
            socket.to_string_lossy().starts_with("/tmp/nspool-"),
            "{socket:?}"
        );
        assert_eq!(socket, socket_dir_for(&long), "stable for one data dir");
    }
}
