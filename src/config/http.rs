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
    /// Of those, requests without a valid token or session at most: token
    /// holders always have the rest.
    pub max_anonymous_requests_in_flight: u32,
    /// A request's body must be complete this long after its headers (408 and close).
    pub body_read_timeout_seconds: u32,
    /// A client that takes none of its answer for this long is closed.
    pub response_write_timeout_seconds: u32,
    /// Request bodies held in memory at once, before they take a permit.
    pub body_buffer_mebibytes: u32,
    /// Answers built for one request and not yet taken by their clients,
    /// held in memory at once (`http::unsent`).
    pub answer_buffer_mebibytes: u32,
    /// Database connections one request holds at once.
    pub database_connections_per_request: u32,
    /// After SIGTERM: open connections are still served this long (each
    /// answer with `Connection: close`), then closed.
    pub drain_seconds: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout_seconds: 10,
            request_timeout_seconds: 30,
            max_connections: 10_000,
            max_requests_in_flight: 256,
            max_anonymous_requests_in_flight: 64,
            body_read_timeout_seconds: 10,
            response_write_timeout_seconds: 30,
            body_buffer_mebibytes: 64,
            answer_buffer_mebibytes: 32,
            database_connections_per_request: 3,
            drain_seconds: 5,
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
    let settings = HttpSettings {
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
        max_anonymous_requests_in_flight: 0,
        body_read_timeout_seconds: bounded(
            r,
            &http.key("bodyReadTimeoutSeconds"),
            defaults.body_read_timeout_seconds,
            1..=300,
        ),
        response_write_timeout_seconds: bounded(
            r,
            &http.key("responseWriteTimeoutSeconds"),
            defaults.response_write_timeout_seconds,
            1..=300,
        ),
        body_buffer_mebibytes: bounded(
            r,
            &http.key("bodyBufferMebibytes"),
            defaults.body_buffer_mebibytes,
            1..=4_096,
        ),
        answer_buffer_mebibytes: bounded(
            r,
            &http.key("answerBufferMebibytes"),
            defaults.answer_buffer_mebibytes,
            1..=4_095,
        ),
        database_connections_per_request: bounded(
            r,
            &http.key("databaseConnectionsPerRequest"),
            defaults.database_connections_per_request,
            1..=32,
        ),
        drain_seconds: bounded(
            r,
            &http.key("drainSeconds"),
            defaults.drain_seconds,
            0..=120,
        ),
    };
    // Unset: a quarter of the in-flight cap (64 of 256).
    let mut settings = settings;
    settings.max_anonymous_requests_in_flight = bounded(
        r,
        &http.key("maxAnonymousRequestsInFlight"),
        (settings.max_requests_in_flight / 4).max(1),
        1..=100_000,
    );
    if settings.max_anonymous_requests_in_flight > settings.max_requests_in_flight {
        r.error(
            &http.key("maxAnonymousRequestsInFlight"),
            format!(
                "must not be more than nspool.http.maxRequestsInFlight ({})",
                settings.max_requests_in_flight
            ),
        );
    }
    settings
}

/// Most proxies a list may name (a real ingress has a handful of ranges).
pub const MAX_TRUSTED_PROXIES: usize = 64;

/// `nspool.http.trustedProxies`: the peers (CIDRs) whose `X-Forwarded-For`
/// and `X-Forwarded-Host` are believed. Unset: none (the peer is the client).
pub fn read_trusted_proxies(r: &mut Reader, nspool: &At<'_>) -> Vec<ipnet::IpNet> {
    let at = nspool.at("http.trustedProxies");
    let items = r.list(&at);
    if items.len() > MAX_TRUSTED_PROXIES {
        r.error(
            &at,
            format!("{} entries; at most {MAX_TRUSTED_PROXIES}", items.len()),
        );
        return Vec::new();
    }
    let mut nets = Vec::new();
    for (path, item) in items {
        let item = At {
            value: Some(item),
            path,
        };
        let Some(text) = r.string(&item) else {
            continue;
        };
        // A bare address is a /32 (or /128).
        let parsed = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => nets.push(net.trunc()),
            Err(_) => r.error(
                &item,
                format!("\"{text}\" is not an address or a CIDR range (10.0.0.0/8, fd00::/8)"),
            ),
        }
    }
    nets
}
