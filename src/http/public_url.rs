//! The address nspool hands out in `authConfig`'s login link. A request's
//! `Host` and `X-Forwarded-Proto` are anybody's to set, so they are used only
//! when they name nspool: the configured base domain (or a name under it), or
//! a loopback address for a local try. Anything else gets
//! `https://houston.<base domain>`, where the astro CLI looks for Houston.

use axum::http::{HeaderMap, header};
use std::net::IpAddr;

pub fn public_url(headers: &HeaderMap, base_domain: &str) -> String {
    let fallback = format!("https://houston.{base_domain}");
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return fallback;
    };
    let Ok(authority) = host.parse::<http::uri::Authority>() else {
        return fallback;
    };
    // An authority with user info (`evil@host`) is never a plain host.
    if host.contains('@') || !allowed_host(authority.host(), base_domain) {
        return fallback;
    }
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .map(|p| p.trim().to_ascii_lowercase())
    {
        None => "http",
        Some(p) if p == "http" => "http",
        Some(p) if p == "https" => "https",
        Some(_) => return fallback,
    };
    format!("{scheme}://{authority}")
}

fn allowed_host(host: &str, base_domain: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let base = base_domain.to_ascii_lowercase();
    if host == "localhost" {
        return true;
    }
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    !base.is_empty() && (host == base || host.ends_with(&format!(".{base}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: Option<&str>, proto: Option<&str>) -> String {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(header::HOST, host.parse().unwrap());
        }
        if let Some(proto) = proto {
            headers.insert("x-forwarded-proto", proto.parse().unwrap());
        }
        public_url(&headers, "example.com")
    }

    #[test]
    fn nspool_own_names_are_used() {
        assert_eq!(url(Some("127.0.0.1:8871"), None), "http://127.0.0.1:8871");
        assert_eq!(url(Some("[::1]:8871"), None), "http://[::1]:8871");
        assert_eq!(url(Some("localhost"), Some("https")), "https://localhost");
        assert_eq!(
            url(Some("houston.example.com"), Some("https")),
            "https://houston.example.com"
        );
    }

    #[test]
    fn anything_else_gets_the_configured_address() {
        let fallback = "https://houston.example.com";
        assert_eq!(url(None, None), fallback);
        assert_eq!(url(Some("evil.example"), None), fallback);
        assert_eq!(url(Some("example.com.evil.example"), None), fallback);
        assert_eq!(url(Some("10.0.0.1"), None), fallback);
        assert_eq!(url(Some("user@localhost"), None), fallback);
        assert_eq!(url(Some("localhost"), Some("javascript")), fallback);
        assert_eq!(url(Some("localhost/x"), None), fallback);
    }
}
