//! The client's IP address: the socket's peer, unless that peer is a trusted proxy (the
//! setting `trusted_proxies`); then the address the proxies report in the one header the
//! setting `client_ip_header` names (`X-Forwarded-For` by default, or `Forwarded`, RFC 7239),
//! read from the nearest hop back to the first untrusted one. A client cannot choose its
//! address by sending these headers itself: the proxies' own entries come last, and the
//! header the proxies do not manage is never read (were both read, a client could pass the
//! other one through a proxy that leaves it alone).

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::app::AppState;
use crate::net::{Cidr, parse_proxies};

/// The client IP of a request (`None` when the server runs without socket information).
pub fn of(state: &AppState, parts_extensions: &axum::http::Extensions, headers: &HeaderMap) -> Option<IpAddr> {
    let peer = parts_extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())?;
    let trusted = parse_proxies(&state.settings().get_str("trusted_proxies")).unwrap_or_default();
    let header = state.settings().with_str("client_ip_header", ProxyHeader::named).unwrap_or_default();
    Some(resolve(peer, headers, &trusted, header))
}

/// The header trusted proxies report the client's address in (the setting `client_ip_header`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProxyHeader {
    #[default]
    XForwardedFor,
    Forwarded,
}

impl ProxyHeader {
    fn named(name: &str) -> ProxyHeader {
        if name.eq_ignore_ascii_case("forwarded") { ProxyHeader::Forwarded } else { ProxyHeader::XForwardedFor }
    }
}

pub fn of_parts(state: &AppState, parts: &Parts) -> Option<IpAddr> {
    of(state, &parts.extensions, &parts.headers)
}

pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr], header: ProxyHeader) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let chain = forwarded_chain(headers, header);
    chain.iter().rev().copied().find(|ip| !is_trusted(*ip)).or(chain.first().copied()).unwrap_or(peer)
}

/// The addresses the proxies recorded, the client's first.
fn forwarded_chain(headers: &HeaderMap, header: ProxyHeader) -> Vec<IpAddr> {
    let values =
        |name: &str| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    if header == ProxyHeader::Forwarded {
        return values("forwarded")
            .split(',')
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.eq_ignore_ascii_case("for").then(|| parse_node(value))?
                })
            })
            .collect();
    }
    values("x-forwarded-for").split(',').filter_map(parse_node).collect()
}

/// `1.2.3.4`, `1.2.3.4:80`, `"[2001:db8::1]:80"` or `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    text.parse().ok().or_else(|| text.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let trusted = parse_proxies("10.0.0.0/8").unwrap();
        let xff = ProxyHeader::XForwardedFor;
        let spoof = headers(&[("x-forwarded-for", "6.6.6.6")]);
        assert_eq!(
            resolve(ip("8.8.8.8"), &spoof, &trusted, xff),
            ip("8.8.8.8"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(resolve(ip("10.0.0.2"), &spoof, &trusted, xff), ip("6.6.6.6"));
        // The client prepended a fake hop; the proxies appended the real one.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 7.7.7.7, 10.0.0.9")]);
        assert_eq!(resolve(ip("10.0.0.2"), &chain, &trusted, xff), ip("7.7.7.7"));
        let rfc = headers(&[("forwarded", "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.3")]);
        assert_eq!(resolve(ip("10.0.0.2"), &rfc, &trusted, ProxyHeader::Forwarded), ip("2001:db8::7"));
        assert_eq!(resolve(ip("10.0.0.2"), &headers(&[]), &trusted, xff), ip("10.0.0.2"));
        assert_eq!(
            resolve(ip("10.0.0.2"), &headers(&[("x-forwarded-for", "5.5.5.5:1234")]), &trusted, xff),
            ip("5.5.5.5")
        );
        // Only the header the proxies manage is read: the other is the client's own.
        let both = headers(&[("x-forwarded-for", "7.7.7.7"), ("forwarded", "for=8.8.8.8")]);
        assert_eq!(resolve(ip("10.0.0.2"), &both, &trusted, xff), ip("7.7.7.7"));
        assert_eq!(resolve(ip("10.0.0.2"), &both, &trusted, ProxyHeader::Forwarded), ip("8.8.8.8"));
        assert_eq!(resolve(ip("10.0.0.2"), &rfc, &trusted, xff), ip("10.0.0.2"), "no X-Forwarded-For: the peer");
    }
}
