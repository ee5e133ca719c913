//! Addresses, networks and origins: the setting `trusted_proxies` (a comma-separated list of
//! IPs and CIDR ranges: `10.0.0.0/8`, `::1`) and the setting `cors_origins` (the web origins
//! whose pages may call the API).

use std::net::IpAddr;

/// An IP network: an address and how many leading bits of it count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(u128::from(u32::from(net)) << 96, u128::from(u32::from(ip)) << 96, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(u128::from(net), u128::from(ip), self.prefix),
            _ => false,
        }
    }
}

fn same_prefix(a: u128, b: u128, prefix: u8) -> bool {
    prefix == 0 || (a ^ b) >> (128 - u32::from(prefix)) == 0
}

/// The networks of a `trusted_proxies` value; `Err` names the first entry that is not one.
pub fn parse_proxies(list: &str) -> Result<Vec<Cidr>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| Cidr::parse(item).ok_or_else(|| format!("'{item}' is not an IP address or CIDR range")))
        .collect()
}

/// The origins of a `cors_origins` value: `*` for any, else a comma-separated list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    Any,
    Listed(Vec<Origin>),
}

/// One web origin, `scheme://host[:port]`; a host written `*.example.com` stands for every
/// subdomain of `example.com` (and not for `example.com` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
    any_subdomain: bool,
}

impl Origin {
    /// An origin as browsers send it, or as an operator lists it (then with `*.` allowed).
    fn parse(text: &str, wildcard_allowed: bool) -> Option<Origin> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        // An IPv6 host is bracketed (`[::1]:8080`): its colons are not the port's.
        let host_end = match rest.strip_prefix('[') {
            Some(inner) => inner.find(']')? + 2,
            None => rest.find(':').unwrap_or(rest.len()),
        };
        let (host, port) = rest.split_at(host_end);
        let port = match port {
            "" => None,
            port => Some(port.strip_prefix(':')?.parse::<u16>().ok()?),
        };
        let (any_subdomain, host) = match host.strip_prefix("*.") {
            Some(parent) if wildcard_allowed => (true, parent),
            _ => (false, host),
        };
        let host_ok = !host.is_empty()
            && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':' | '_'));
        (scheme_ok && host_ok).then(|| Origin {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_ascii_lowercase(),
            port,
            any_subdomain,
        })
    }

    fn admits(&self, origin: &Origin) -> bool {
        let host_matches = if self.any_subdomain {
            origin.host.strip_suffix(self.host.as_str()).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        } else {
            origin.host == self.host
        };
        self.scheme == origin.scheme && self.port == origin.port && host_matches
    }
}

impl Origins {
    /// A `cors_origins` value; `Err` names the first entry that is not an origin. An empty
    /// list admits no origin: browsers then may not call the API from any page.
    pub fn parse(list: &str) -> Result<Origins, String> {
        if list.trim() == "*" {
            return Ok(Origins::Any);
        }
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                Origin::parse(item, true).ok_or_else(|| {
                    format!("'{item}' is not an origin such as https://app.example.com or https://*.example.com")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Origins::Listed)
    }

    /// Whether a page of `origin` (an `Origin` header's value) may call the API.
    pub fn admits(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::Listed(allowed) => {
                Origin::parse(origin, false).is_some_and(|origin| allowed.iter().any(|a| a.admits(&origin)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let ten = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(ten.contains(ip("10.1.2.3")) && !ten.contains(ip("11.0.0.1")));
        assert!(ten.contains(ip("::ffff:10.9.9.9")), "IPv4-mapped addresses count as IPv4");
        let one = Cidr::parse("192.168.1.7").unwrap();
        assert!(one.contains(ip("192.168.1.7")) && !one.contains(ip("192.168.1.8")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8::1")) && !v6.contains(ip("2001:db9::1")) && !v6.contains(ip("10.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    }

    #[test]
    fn bad_entries_are_named() {
        assert_eq!(parse_proxies("").unwrap(), vec![]);
        assert_eq!(parse_proxies("127.0.0.1, 10.0.0.0/8").unwrap().len(), 2);
        for bad in ["10.0.0.0/33", "::1/129", "localhost", "1.2.3.4/x", "1.2.3"] {
            assert!(parse_proxies(bad).unwrap_err().contains(bad.split('/').next().unwrap()), "{bad}");
        }
    }

    #[test]
    fn origins_admit_what_they_list() {
        assert!(Origins::parse("*").unwrap().admits("https://anything.example"));
        let listed =
            Origins::parse("https://app.example.com, http://localhost:5173, https://*.preview.dev, http://[::1]:3000")
                .unwrap();
        for admitted in [
            "https://app.example.com",
            "https://APP.example.com",
            "http://localhost:5173",
            "https://pr-7.preview.dev",
            "http://[::1]:3000",
        ] {
            assert!(listed.admits(admitted), "{admitted}");
        }
        for refused in [
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://evil.app.example.com",
            "https://app.example.com.evil",
            "http://localhost:5174",
            "https://preview.dev",
            "https://.preview.dev",
            "https://evilpreview.dev",
            "null",
            "",
        ] {
            assert!(!listed.admits(refused), "{refused}");
        }
        assert!(!Origins::parse("").unwrap().admits("https://app.example.com"));
    }

    #[test]
    fn bad_origins_are_named() {
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://",
            "https://a:b",
            "*://x.com",
            "https://*",
        ] {
            let err = Origins::parse(&format!("https://ok.example, {bad}")).unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }
}
