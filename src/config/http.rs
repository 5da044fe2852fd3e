//! `nspool.http`: the bounds on connections and requests (see the README's
//! limits table for what each refusal looks like).

use super::reader::{At, Reader};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpSettings {
    /// A request's headers must be complete this long after the connection
    /// opened or the last answer went out (else 408, or a quiet close when idle).
    pub header_read_timeout_seconds: u32,
    /// A request's answer, at most; the work is cancelled after it.
    pub request_timeout_seconds: u32,
    /// Open connections (lowered to the open-file limit less a reserve).
    pub max_connections: u32,
    /// Requests answered at once on `/v1`; beyond, 503 with Retry-After.
    pub max_requests_in_flight: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout_seconds: 10,
            request_timeout_seconds: 30,
            max_connections: 10_000,
            max_requests_in_flight: 256,
        }
    }
}

/// A whole number in `range`, or the default with an error naming the key.
fn bounded(r: &mut Reader, at: &At<'_>, default: u32, range: std::ops::RangeInclusive<u32>) -> u32 {
    let value = r.u32(at, default);
    if range.contains(&value) {
        value
    } else {
        r.error(
            at,
            format!(
                "expected {} to {}, found {value}",
                range.start(),
                range.end()
            ),
        );
        default
    }
}

pub fn read_http(r: &mut Reader, nspool: &At<'_>) -> HttpSettings {
    let http = nspool.key("http");
    r.warn_unknown(&http, &super::keys::children("nspool.http"));
    let defaults = HttpSettings::default();
    HttpSettings {
        header_read_timeout_seconds: bounded(
            r,
            &http.key("headerReadTimeoutSeconds"),
            defaults.header_read_timeout_seconds,
            1..=300,
        ),
        request_timeout_seconds: bounded(
            r,
            &http.key("requestTimeoutSeconds"),
            defaults.request_timeout_seconds,
            1..=600,
        ),
        max_connections: bounded(
            r,
            &http.key("maxConnections"),
            defaults.max_connections,
            1..=1_000_000,
        ),
        max_requests_in_flight: bounded(
            r,
            &http.key("maxRequestsInFlight"),
            defaults.max_requests_in_flight,
            1..=100_000,
        ),
    }
}
