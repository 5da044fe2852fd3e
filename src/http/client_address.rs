//! Who the client is, behind an ingress: the peer's address, unless the peer
//! is a trusted proxy (`nspool.http.trustedProxies`); then the nearest
//! address of `X-Forwarded-For` that is not a trusted proxy itself. Pure.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

fn trusted(address: IpAddr, proxies: &[IpNet]) -> bool {
    // An IPv4 peer may arrive as an IPv4-mapped IPv6 address.
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    };
    proxies.iter().any(|net| net.contains(&address))
}

/// The peer is a trusted proxy: its `X-Forwarded-*` headers may be believed.
pub fn from_trusted_proxy(peer: IpAddr, proxies: &[IpNet]) -> bool {
    trusted(peer, proxies)
}

/// The client's address. `X-Forwarded-For` is read from the right (each
/// proxy appends the address it saw), skipping trusted proxies; what is left
/// of the first untrusted hop was written by the client and is not believed.
/// An unreadable entry stops the walk at the last good address.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    if !trusted(peer, proxies) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(address) = hop.parse::<IpAddr>() else {
            break;
        };
        client = address;
        if !trusted(address, proxies) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().unwrap());
        }
        map
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let proxies = nets(&["10.0.0.0/8"]);
        let claimed = headers(&["1.2.3.4"]);
        assert_eq!(
            client_address(ip("203.0.113.9"), &claimed, &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("10.1.2.3"), &claimed, &proxies),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_address(ip("10.1.2.3"), &claimed, &[]),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client_and_what_it_claims_is_ignored() {
        let proxies = nets(&["10.0.0.0/8", "fd00::/8"]);
        // The client claims 6.6.6.6; the ingress saw 198.51.100.7, then an inner proxy.
        let chain = headers(&["6.6.6.6, 198.51.100.7", "10.0.0.5"]);
        assert_eq!(
            client_address(ip("10.0.0.9"), &chain, &proxies),
            ip("198.51.100.7")
        );
        // Garbage stops the walk at the last good address.
        let garbage = headers(&["198.51.100.7, not-an-ip, 10.0.0.5"]);
        assert_eq!(
            client_address(ip("10.0.0.9"), &garbage, &proxies),
            ip("10.0.0.5")
        );
        // Only proxies: the farthest one.
        assert_eq!(
            client_address(ip("10.0.0.9"), &headers(&["10.0.0.5"]), &proxies),
            ip("10.0.0.5")
        );
        // No header: the peer.
        assert_eq!(
            client_address(ip("10.0.0.9"), &HeaderMap::new(), &proxies),
            ip("10.0.0.9")
        );
        // A mapped IPv4 peer is an IPv4 peer.
        assert_eq!(
            client_address(ip("::ffff:10.0.0.9"), &headers(&["192.0.2.1"]), &proxies),
            ip("192.0.2.1")
        );
    }
}
