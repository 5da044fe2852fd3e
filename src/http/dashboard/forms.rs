//! What every dashboard POST must show before it is read: that it comes
//! from this site (`Sec-Fetch-Site`, else `Origin`; sign-in and sign-out
//! included, so no other site can sign a browser in or out), and, for the
//! actions, the session's CSRF token. Pure.

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

/// A session's CSRF token: derived from its secret id (which only the
/// browser's HttpOnly cookie holds), so nothing more is stored and another
/// site can neither read nor guess it.
pub fn csrf_token(session_id: &str) -> String {
    hex::encode(Sha256::digest(format!("nspool-csrf\0{session_id}")))
}

/// The token sent with a form is this session's (compared in constant time).
pub fn csrf_matches(session_id: &str, sent: &str) -> bool {
    let expected = csrf_token(session_id);
    expected.len() == sent.len()
        && expected
            .bytes()
            .zip(sent.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Why a POST is refused as cross-site, or `None` when it is this site's.
/// `host`: this site as the browser addressed it (the Host header, or
/// `X-Forwarded-Host` from a trusted proxy). A client that sends neither
/// `Sec-Fetch-Site` nor `Origin` is no browser, and so no forged request.
pub fn cross_site(headers: &HeaderMap, host: Option<&str>) -> Option<&'static str> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return match site {
            // `none`: the person did it (typed, bookmarked), no other site.
            "same-origin" | "none" => None,
            _ => Some("the form was sent from another site"),
        };
    }
    match text(header::ORIGIN.as_str()) {
        None => None,
        Some("null") => Some("the form was sent from an opaque origin"),
        Some(origin) => {
            let authority = origin
                .split_once("://")
                .map_or(origin, |(_, rest)| rest)
                .trim_end_matches('/');
            let same = host.is_some_and(|h| h.eq_ignore_ascii_case(authority));
            (!same).then_some("the form was sent from another origin")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_token_is_the_sessions_and_no_other() {
        let a = csrf_token(&"a".repeat(64));
        assert_eq!(a.len(), 64);
        assert!(csrf_matches(&"a".repeat(64), &a));
        assert!(!csrf_matches(&"b".repeat(64), &a));
        assert!(!csrf_matches(&"a".repeat(64), ""));
        assert!(!csrf_matches(&"a".repeat(64), &a[..63]));
    }

    #[test]
    fn only_this_site_may_post() {
        let host = Some("nspool.example:8871");
        assert_eq!(
            cross_site(&headers(&[("sec-fetch-site", "same-origin")]), host),
            None
        );
        assert_eq!(
            cross_site(&headers(&[("sec-fetch-site", "none")]), host),
            None
        );
        for site in ["cross-site", "same-site", "garbage"] {
            assert!(
                cross_site(&headers(&[("sec-fetch-site", site)]), host).is_some(),
                "{site}"
            );
        }
        // The browser's word wins over an Origin that looks right.
        assert!(
            cross_site(
                &headers(&[
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "http://nspool.example:8871")
                ]),
                host
            )
            .is_some()
        );
        assert_eq!(
            cross_site(&headers(&[("origin", "http://nspool.example:8871")]), host),
            None
        );
        assert_eq!(
            cross_site(&headers(&[("origin", "https://NSPOOL.example:8871")]), host),
            None
        );
        assert!(cross_site(&headers(&[("origin", "https://evil.example")]), host).is_some());
        assert!(cross_site(&headers(&[("origin", "null")]), host).is_some());
        assert!(cross_site(&headers(&[("origin", "http://nspool.example:8871")]), None).is_some());
        assert_eq!(
            cross_site(&HeaderMap::new(), host),
            None,
            "curl is no browser"
        );
    }
}
