//! What the machine offers the embedded database: PostgreSQL's server
//! binaries, the unprivileged account to run them as (when nspool runs as
//! root, since initdb refuses root), and whether that account can reach the
//! data directory.

use super::{Error, Result, io};
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

/// `NSPOOL_PG_BIN`, else `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`.
pub(super) fn find_binaries() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("NSPOOL_PG_BIN").map(PathBuf::from) {
        return if has_initdb(&dir) {
            Ok(dir)
        } else {
            Err(Error::NoBinaries)
        };
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_initdb(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
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
    versions.pop().map(|(_, bin)| bin).ok_or(Error::NoBinaries)
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
