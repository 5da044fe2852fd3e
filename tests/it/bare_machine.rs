//! Issue 25: the first run on a machine without PostgreSQL's server
//! binaries. The machine is made bare for the binary alone
//! (`NSPOOL_TEST_BARE_MACHINE`, read by debug builds only: PATH and the
//! server directories point into an empty directory), so nothing is removed
//! from the real machine; a fake apt-get there "installs" postgresql by
//! linking the real server binaries where Debian's package puts them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The real server binaries the fake package links to.
fn real_server_binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("NSPOOL_PG_BIN") {
        return PathBuf::from(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() {
            return dir;
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("this test needs PostgreSQL server binaries (apt-get install postgresql)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    dirs.sort();
    dirs.pop().expect("PostgreSQL server binaries")
}

fn bare_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "nspool-bare-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(dir.join("usr/bin")).unwrap();
    // Reachable by the embedded server's unprivileged user when tests run as root.
    for d in [&dir, &dir.join("usr"), &dir.join("usr/bin")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// `nspool migrate` on the embedded default, on the bare machine `bare`.
fn migrate_on(bare: &Path) -> Output {
    let config = bare.join("config.yaml");
    std::fs::write(
        &config,
        "global: {features: {namespacePools: {enabled: true, namespaces: {names: [team-a]}}}}\n",
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_nspool"))
        .args(["migrate", "--config"])
        .arg(&config)
        .env("NSPOOL_KUBERNETES_MODE", "off")
        .env_remove("DATABASE_URL")
        .env_remove("NSPOOL_CONFIG")
        .env_remove("NSPOOL_PG_BIN")
        .env("NSPOOL_TEST_BARE_MACHINE", bare)
        .env("NSPOOL_DATA_DIR", bare.join("data"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn as_root_with_apt_get_the_first_run_installs_postgresql_saying_so() {
    if !is_root() {
        eprintln!("skipped: nspool installs packages only when run as root");
        return;
    }
    let bare = bare_dir("apt");
    let log = bare.join("apt-get.log");
    let real = real_server_binaries();
    let package = bare.join("usr/lib/postgresql/15/bin");
    let script = format!(
        "#!/bin/sh\necho \"DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*\" >> '{log}'\ncase \" $* \" in *' install '*)\n  mkdir -p '{package}'\n  for f in initdb pg_ctl postgres; do ln -sf '{real}'/$f '{package}'/$f; done;;\nesac\n",
        log = log.display(),
        package = package.display(),
        real = real.display(),
    );
    let apt_get = bare.join("usr/bin/apt-get");
    std::fs::write(&apt_get, script).unwrap();
    std::fs::set_permissions(&apt_get, std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = migrate_on(&bare);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("installing Debian's postgresql package"),
        "{stderr}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls[0].starts_with("DEBIAN_FRONTEND=noninteractive ")
            && calls[0].ends_with(" update -qq"),
        "{calls:?}"
    );
    assert!(
        calls[1].starts_with("DEBIAN_FRONTEND=noninteractive ")
            && calls[1].ends_with(" install -y -qq postgresql"),
        "{calls:?}"
    );

    // The second run finds what the first installed: nothing more to do.
    let again = migrate_on(&bare);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(!stderr.contains("installing"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);
    let _ = std::fs::remove_dir_all(bare);
}

#[test]
fn without_a_package_manager_the_error_says_exactly_what_to_install() {
    let bare = bare_dir("none");
    let out = migrate_on(&bare);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for expected in [
        "no PostgreSQL server binaries found",
        "`apt-get install postgresql`",
        "`dnf install postgresql-server`",
        "`brew install postgresql@16`",
        "DATABASE_URL",
    ] {
        assert!(stderr.contains(expected), "{expected} not in {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(bare);
}

#[test]
fn a_failing_install_is_reported_with_apt_gets_own_words() {
    if !is_root() {
        return;
    }
    let bare = bare_dir("fail");
    let apt_get = bare.join("usr/bin/apt-get");
    std::fs::write(
        &apt_get,
        "#!/bin/sh\necho 'E: Unable to locate package postgresql' >&2\nexit 100\n",
    )
    .unwrap();
    std::fs::set_permissions(&apt_get, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = migrate_on(&bare);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("installing Debian's postgresql package"),
        "{stderr}"
    );
    assert!(
        stderr.contains("E: Unable to locate package postgresql"),
        "{stderr}"
    );
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    let _ = std::fs::remove_dir_all(bare);
}
