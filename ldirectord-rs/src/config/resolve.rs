//! Name lookups the parser needs: host names and service (port) names.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};

/// Host and service name lookups, injected into the parser.
pub trait Resolve {
    /// The first address of `name` in the family asked for (`v6`), or `None`.
    /// Literal addresses are returned as they are.
    fn host(&self, name: &str, v6: bool) -> Option<IpAddr>;
    /// The port of a service name for `proto` ("tcp", "udp"; `None` = any).
    fn service(&self, name: &str, proto: Option<&str>) -> Option<u16>;
    /// This machine's host name (default ftp password, sip login).
    fn hostname(&self) -> String;
}

/// Looks names up with the C library (`getaddrinfo`) and `/etc/services`.
#[derive(Debug, Default)]
pub struct SystemResolver {
    services: HashMap<(String, String), u16>,
}

impl SystemResolver {
    /// Reads `/etc/services` once.
    pub fn new() -> SystemResolver {
        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
        SystemResolver {
            services: parse_services(&text),
        }
    }
}

/// Parses `/etc/services` text into (name or alias, proto) → port.
pub fn parse_services(text: &str) -> HashMap<(String, String), u16> {
    let mut m = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut it = line.split_whitespace();
        let (Some(name), Some(pp)) = (it.next(), it.next()) else {
            continue;
        };
        let Some((port, proto)) = pp.split_once('/') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        for n in std::iter::once(name).chain(it) {
            m.entry((n.to_string(), proto.to_string())).or_insert(port);
        }
    }
    m
}

impl Resolve for SystemResolver {
    fn host(&self, name: &str, v6: bool) -> Option<IpAddr> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return (ip.is_ipv6() == v6).then_some(ip);
        }
        (name, 0)
            .to_socket_addrs()
            .ok()?
            .map(|sa| sa.ip())
            .find(|ip| ip.is_ipv6() == v6)
    }

    fn service(&self, name: &str, proto: Option<&str>) -> Option<u16> {
        match proto {
            Some(p) => self
                .services
                .get(&(name.to_string(), p.to_string()))
                .copied(),
            None => ["tcp", "udp", "sctp", "ddp"]
                .iter()
                .find_map(|p| self.services.get(&(name.to_string(), p.to_string())))
                .copied(),
        }
    }

    fn hostname(&self) -> String {
        if let Ok(h) = std::env::var("HOSTNAME") {
            if !h.is_empty() {
                return h;
            }
        }
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_file() {
        let m = parse_services(
            "# comment\nhttp\t\t80/tcp\t\twww\t# WorldWideWeb\ndomain 53/udp\nbad line\n",
        );
        assert_eq!(m.get(&("http".into(), "tcp".into())), Some(&80));
        assert_eq!(m.get(&("www".into(), "tcp".into())), Some(&80));
        assert_eq!(m.get(&("domain".into(), "udp".into())), Some(&53));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn literal_hosts_keep_their_family() {
        let r = SystemResolver::default();
        assert_eq!(r.host("10.0.0.1", false), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(r.host("10.0.0.1", true), None);
        assert_eq!(r.host("::1", true), Some("::1".parse().unwrap()));
    }
}
