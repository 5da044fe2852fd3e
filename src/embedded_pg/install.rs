//! A bare machine's first run: no PostgreSQL server binaries. As root with
//! apt-get (a Debian or Ubuntu machine, as the project's are), nspool
//! installs Debian's `postgresql` itself, saying so, as `scripts/test.sh`
//! does; anywhere else it stops and names the one command to run there.

use super::{Error, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the decision needs to know of the machine, found by
/// [`Machine::detect`] or given by a test.
#[derive(Debug, Clone, Default)]
pub(super) struct Machine {
    pub(super) root: bool,
    /// Each package manager found on PATH.
    pub(super) apt_get: Option<PathBuf>,
    pub(super) dnf: bool,
    pub(super) brew: bool,
}

/// What to do without server binaries.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Plan {
    /// Run this apt-get to install Debian's `postgresql`.
    Install(PathBuf),
    /// Stop, telling the person this.
    Advise(String),
}

impl Machine {
    /// The machine as the commands on `path` show it.
    pub(super) fn detect(root: bool, path: Option<&OsString>) -> Machine {
        Machine {
            root,
            apt_get: on_path("apt-get", path),
            dnf: on_path("dnf", path).is_some(),
            brew: on_path("brew", path).is_some(),
        }
    }
}

/// Root with apt-get installs; anyone else is told exactly what to run (an
/// unprivileged process never installs packages, nor asks for sudo itself).
pub(super) fn plan(machine: &Machine) -> Plan {
    let advice = match (&machine.apt_get, machine.root) {
        (Some(apt_get), true) => return Plan::Install(apt_get.clone()),
        (Some(_), false) => {
            "run `sudo apt-get install postgresql` (run as root, nspool installs it itself)"
        }
        (None, _) if machine.dnf => "run `sudo dnf install postgresql-server`",
        (None, _) if machine.brew => "run `brew install postgresql@16`",
        (None, _) => {
            "install PostgreSQL's server package (Debian/Ubuntu: `apt-get install postgresql`; Fedora/RHEL: `dnf install postgresql-server`; macOS: `brew install postgresql@16`), or point NSPOOL_PG_BIN at the directory holding initdb and pg_ctl"
        }
    };
    Plan::Advise(advice.to_owned())
}

/// Installs Debian's `postgresql` with `apt_get`. The package manager's
/// output is shown only on failure: a good install is two lines of ours, not
/// a page of dpkg's.
pub(super) fn install(apt_get: &Path) -> Result<()> {
    eprintln!(
        "nspool: no PostgreSQL server binaries on this machine: installing Debian's postgresql package (apt-get install -y postgresql; once, later runs find it)"
    );
    // Another process may hold the dpkg lock (a second nspool starting at
    // the same time, unattended upgrades): wait for it rather than fail.
    let lock_wait = ["-o", "DPkg::Lock::Timeout=300"];
    run(apt_get, &[&lock_wait[..], &["update", "-qq"]].concat())?;
    run(
        apt_get,
        &[&lock_wait[..], &["install", "-y", "-qq", "postgresql"]].concat(),
    )?;
    eprintln!("nspool: postgresql installed");
    Ok(())
}

fn run(apt_get: &Path, args: &[&str]) -> Result<()> {
    let what = format!("{} {}", apt_get.display(), args.join(" "));
    let output = Command::new(apt_get)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| Error::Command {
            what: what.clone(),
            detail: e.to_string(),
        })?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    Err(Error::Command {
        what,
        detail: format!(
            "{} ({}); install postgresql yourself or set DATABASE_URL",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
            output.status
        ),
    })
}

/// The first executable `name` in the directories of `path` (PATH's form).
pub(super) fn on_path(name: &str, path: Option<&OsString>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|file| {
            file.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apt() -> Option<PathBuf> {
        Some(PathBuf::from("/usr/bin/apt-get"))
    }

    #[test]
    fn root_with_apt_get_installs() {
        let machine = Machine {
            root: true,
            apt_get: apt(),
            ..Machine::default()
        };
        assert_eq!(
            plan(&machine),
            Plan::Install(PathBuf::from("/usr/bin/apt-get"))
        );
    }

    #[test]
    fn without_root_or_apt_get_the_advice_names_the_command() {
        let user_on_debian = Machine {
            root: false,
            apt_get: apt(),
            ..Machine::default()
        };
        let Plan::Advise(advice) = plan(&user_on_debian) else {
            panic!("an unprivileged process never installs");
        };
        assert!(
            advice.contains("`sudo apt-get install postgresql`"),
            "{advice}"
        );
        let fedora = Machine {
            root: true,
            dnf: true,
            ..Machine::default()
        };
        assert_eq!(
            plan(&fedora),
            Plan::Advise("run `sudo dnf install postgresql-server`".into())
        );
        let mac = Machine {
            brew: true,
            ..Machine::default()
        };
        assert_eq!(
            plan(&mac),
            Plan::Advise("run `brew install postgresql@16`".into())
        );
        let Plan::Advise(unknown) = plan(&Machine::default()) else {
            panic!("nothing to install with");
        };
        for named in [
            "apt-get install postgresql",
            "dnf install postgresql-server",
            "brew install postgresql@16",
            "NSPOOL_PG_BIN",
        ] {
            assert!(unknown.contains(named), "{named} not in {unknown}");
        }
    }

    #[test]
    fn commands_are_found_on_the_given_path_only() {
        let dir = std::env::temp_dir().join(format!("nspool-on-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tool = dir.join("apt-get");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = OsString::from(format!("/nonexistent:{}", dir.display()));
        assert_eq!(on_path("apt-get", Some(&path)), Some(tool.clone()));
        assert_eq!(on_path("dnf", Some(&path)), None);
        assert_eq!(on_path("apt-get", None), None);
        // Not executable: not a command.
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(on_path("apt-get", Some(&path)), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
