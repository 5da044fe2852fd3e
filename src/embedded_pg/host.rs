//! What the machine offers the embedded database: PostgreSQL's server
//! binaries, the unprivileged account to run them as (when nspool runs as
//! root, since initdb refuses root), and whether that account can reach the
//! data directory.

use super::install::on_path;
use super::{Error, Result, io};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The unprivileged account the server runs as when nspool runs as root.
#[derive(Debug, Clone)]
pub(super) struct RunAs {
    pub(super) name: String,
    pub(super) uid: u32,
    pub(super) gid: u32,
}

pub(super) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn has_initdb(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// Where to look for the server binaries and for a package manager.
#[derive(Debug, Clone)]
pub(super) struct Search {
    /// `NSPOOL_PG_BIN`: the one directory to use, never installed into.
    pub(super) pg_bin: Option<PathBuf>,
    /// PATH, for `pg_config` and the package managers.
    pub(super) path: Option<OsString>,
    /// Debian's versioned server directories (`<lib_dir>/<version>/bin`).
    pub(super) lib_dir: PathBuf,
}

impl Search {
    /// The process's environment. In debug builds (the ones the tests run),
    /// `NSPOOL_TEST_BARE_MACHINE=DIR` makes DIR stand for `/`: PATH is
    /// `DIR/usr/bin` alone and the server directories are under
    /// `DIR/usr/lib/postgresql`, so a test sees a bare machine (and a fake
    /// apt-get) without removing the real PostgreSQL. Release builds never
    /// read it.
    pub(super) fn from_env() -> Search {
        #[cfg(debug_assertions)]
        if let Some(bare) = std::env::var_os("NSPOOL_TEST_BARE_MACHINE").map(PathBuf::from) {
            return Search {
                pg_bin: None,
                path: Some(bare.join("usr/bin").into_os_string()),
                lib_dir: bare.join("usr/lib/postgresql"),
            };
        }
        Search {
            pg_bin: std::env::var_os("NSPOOL_PG_BIN").map(PathBuf::from),
            path: std::env::var_os("PATH"),
            lib_dir: PathBuf::from("/usr/lib/postgresql"),
        }
    }
}

/// `NSPOOL_PG_BIN`, else `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`; `None` when none has initdb and pg_ctl.
pub(super) fn find_binaries(search: &Search) -> Result<Option<PathBuf>> {
    if let Some(dir) = &search.pg_bin {
        return if has_initdb(dir) {
            Ok(Some(dir.clone()))
        } else {
            Err(Error::BadPgBin(dir.clone()))
        };
    }
    if let Some(pg_config) = on_path("pg_config", search.path.as_ref())
        && let Ok(output) = Command::new(pg_config).arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_initdb(&dir) {
            return Ok(Some(dir));
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(&search.lib_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_initdb(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    Ok(versions.pop().map(|(_, bin)| bin))
}

pub(super) fn lookup_user(name: &str) -> Option<RunAs> {
    let c_name = std::ffi::CString::new(name).ok()?;
    let mut passwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and the buffer outlives it.
    let rc = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut passwd,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then(|| RunAs {
        name: name.to_owned(),
        uid: passwd.pw_uid,
        gid: passwd.pw_gid,
    })
}

/// Every ancestor must let `user` pass: searchable by others, or owned by them.
pub(super) fn check_reachable(dir: &Path, user: &RunAs) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let absolute = fs::canonicalize(dir).map_err(io(dir))?;
    for ancestor in absolute.ancestors().skip(1) {
        let meta = fs::metadata(ancestor).map_err(io(ancestor))?;
        let mode = meta.mode();
        let passes = mode & 0o001 != 0
            || (meta.uid() == user.uid && mode & 0o100 != 0)
            || (meta.gid() == user.gid && mode & 0o010 != 0);
        if !passes {
            return Err(Error::Unreachable {
                user: user.name.clone(),
                dir: ancestor.to_owned(),
            });
        }
    }
    Ok(())
}
