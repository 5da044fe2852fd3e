//! Logs on stderr (stdout carries command output such as a token):
//! `RUST_LOG` filters, `nspool.logFormat: json` for JSON lines. Without
//! `RUST_LOG`, `serve` and `migrate` (and any command with `-v`) log nspool's
//! INFO and every other crate's WARN; other commands only WARN; colours only
//! when stderr is a terminal and `NO_COLOR` is unset.

use crate::config::LogFormat;
use std::io::IsTerminal as _;
use tracing_subscriber::EnvFilter;

/// nspool's own INFO, everything else (sqlx, hyper, the cron scheduler) WARN.
pub const DEFAULT_FILTER: &str = "warn,nspool=info";
/// A command at a terminal (not `serve`, not `migrate`, no `-v`): WARN only.
pub const QUIET_FILTER: &str = "warn";

pub fn init(format: LogFormat, info: bool) {
    let default = if info { DEFAULT_FILTER } else { QUIET_FILTER };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let colours = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// A database URL fit for a log line: the password replaced by `***`.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("postgres://nspool:s3cr@t@db:5432/nspool"),
            "postgres://nspool:***@db:5432/nspool"
        );
        assert_eq!(
            mask_password("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(mask_password("not a url"), "not a url");
    }
}
