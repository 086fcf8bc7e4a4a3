//! Routes over rtnetlink, and the interface selection of IPaddr2's `findif`:
//! when an address is given without an interface (or without a prefix), the
//! longest-prefix **link-scope** route of the main table that contains it
//! names the interface and the prefix length; the broadcast comes from the
//! interface's own address in that network. 127/8 goes to `lo`.
//!
//! The selection rule is a pure function ([`best_link_route`]) so it is
//! tested without a kernel.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::addr::{network_broadcast, prefix_contains};
use crate::rtnl::{NetError, Result, Rtnl};

/// The kernel's main routing table.
pub const TABLE_MAIN: u32 = 254;
/// The kernel's local routing table.
pub const TABLE_LOCAL: u32 = 255;

/// One route, reduced to what interface selection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network (None = default route).
    pub dst: Option<IpAddr>,
    pub prefix: u8,
    pub table: u32,
    pub scope: RouteScope,
    pub kind: RouteType,
    /// Output interface index.
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    /// Preferred source address (`src` in `ip route`).
    pub pref_src: Option<IpAddr>,
}

/// Where an address belongs: the interface, the prefix length and (IPv4)
/// the broadcast address to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfChoice {
    pub index: u32,
    pub name: String,
    pub prefix: u8,
    pub broadcast: Option<Ipv4Addr>,
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn parse_route(m: &RouteMessage) -> Route {
    let mut r = Route {
        dst: None,
        prefix: m.header.destination_prefix_length,
        table: m.header.table as u32,
        scope: m.header.scope,
        kind: m.header.kind,
        oif: None,
        gateway: None,
        pref_src: None,
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => r.dst = route_ip(d),
            RouteAttribute::Oif(i) => r.oif = Some(*i),
            RouteAttribute::Gateway(g) => r.gateway = route_ip(g),
            RouteAttribute::PrefSource(s) => r.pref_src = route_ip(s),
            RouteAttribute::Table(t) => r.table = *t,
            _ => {}
        }
    }
    r
}

/// The longest-prefix on-link route of the main table containing `ip`,
/// optionally restricted to interface `oif`.
///
/// IPv4: unicast routes with scope `link` (the connected routes the kernel
/// adds with each address, and `ip route add ... scope link`). IPv6 has no
/// link scope on routes: unicast routes without a gateway and with a
/// non-zero prefix count as on-link.
pub fn best_link_route(routes: &[Route], ip: IpAddr, oif: Option<u32>) -> Option<&Route> {
    routes
        .iter()
        .filter(|r| r.table == TABLE_MAIN && r.kind == RouteType::Unicast)
        .filter(|r| match ip {
            IpAddr::V4(_) => r.scope == RouteScope::Link,
            IpAddr::V6(_) => r.gateway.is_none() && r.prefix > 0,
        })
        .filter(|r| oif.is_none() || r.oif == oif)
        .filter(|r| r.dst.is_some_and(|d| prefix_contains(d, r.prefix, ip)))
        .max_by_key(|r| r.prefix)
}

impl Rtnl {
    /// Every route of one address family, all tables.
    pub fn routes(&mut self, v6: bool) -> Result<Vec<Route>> {
        let mut m = RouteMessage::default();
        m.header = RouteHeader {
            address_family: if v6 {
                AddressFamily::Inet6
            } else {
                AddressFamily::Inet
            },
            ..RouteHeader::default()
        };
        let replies = self.dump("list routes", RouteNetlinkMessage::GetRoute(m))?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(m) => Some(parse_route(m)),
                _ => None,
            })
            .collect())
    }

    /// Picks the interface for `ip` like IPaddr2's findif: the longest-prefix
    /// link-scope route (restricted to `nic` if given). `None` when no route
    /// matches. 127/8 resolves to the loopback device with prefix 8.
    pub fn find_interface(&mut self, ip: IpAddr, nic: Option<&str>) -> Result<Option<IfChoice>> {
        let want = match nic {
            Some(n) => Some(self.require_link(n)?),
            None => None,
        };
        if let IpAddr::V4(v4) = ip {
            if v4.is_loopback() {
                let lo = match want {
                    Some(l) => l,
                    None => self
                        .links()?
                        .into_iter()
                        .find(|l| l.loopback)
                        .ok_or_else(|| NetError::NotFound("no loopback device".into()))?,
                };
                return Ok(Some(IfChoice {
                    index: lo.index,
                    name: lo.name,
                    prefix: 8,
                    broadcast: None,
                }));
            }
        }
        let routes = self.routes(ip.is_ipv6())?;
        let Some(route) = best_link_route(&routes, ip, want.as_ref().map(|l| l.index)) else {
            return Ok(None);
        };
        let Some(index) = route.oif else {
            return Ok(None);
        };
        let name = match want {
            Some(l) => l.name,
            None => {
                self.link_by_index(index)?
                    .ok_or_else(|| NetError::NotFound(format!("interface #{index} vanished")))?
                    .name
            }
        };
        let broadcast = match ip {
            IpAddr::V4(v4) => {
                let dst = route.dst.expect("route with destination");
                let addrs = self.addresses(Some(index))?;
                // The interface's own address in that network: the route's
                // preferred source first, then any address in the prefix.
                let own = addrs
                    .iter()
                    .find(|a| Some(a.addr) == route.pref_src && a.broadcast.is_some())
                    .or_else(|| {
                        addrs.iter().find(|a| {
                            a.broadcast.is_some()
                                && a.prefix == route.prefix
                                && prefix_contains(dst, route.prefix, a.addr)
                        })
                    });
                own.and_then(|a| a.broadcast)
                    .or_else(|| network_broadcast(v4, route.prefix))
            }
            IpAddr::V6(_) => None,
        };
        Ok(Some(IfChoice {
            index,
            name,
            prefix: route.prefix,
            broadcast,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(dst: &str, prefix: u8, scope: RouteScope, oif: u32) -> Route {
        Route {
            dst: Some(dst.parse().unwrap()),
            prefix,
            table: TABLE_MAIN,
            scope,
            kind: RouteType::Unicast,
            oif: Some(oif),
            gateway: None,
            pref_src: None,
        }
    }

    #[test]
    fn longest_prefix_link_route_wins() {
        let routes = vec![
            Route {
                dst: None,
                prefix: 0,
                gateway: Some("10.0.0.254".parse().unwrap()),
                scope: RouteScope::Universe,
                ..r("0.0.0.0", 0, RouteScope::Universe, 1)
            },
            r("10.0.0.0", 8, RouteScope::Link, 2),
            r("10.99.0.0", 24, RouteScope::Link, 3),
            r("10.99.0.0", 25, RouteScope::Universe, 4), // via gateway, not link
            Route {
                table: TABLE_LOCAL,
                kind: RouteType::Local,
                ..r("10.99.0.1", 32, RouteScope::Host, 3)
            },
        ];
        let ip = "10.99.0.7".parse().unwrap();
        assert_eq!(best_link_route(&routes, ip, None).unwrap().oif, Some(3));
        assert_eq!(best_link_route(&routes, ip, Some(2)).unwrap().prefix, 8);
        assert!(best_link_route(&routes, ip, Some(4)).is_none());
        assert!(best_link_route(&routes, "172.31.9.9".parse().unwrap(), None).is_none());
        assert_eq!(
            best_link_route(&routes, "10.1.1.1".parse().unwrap(), None)
                .unwrap()
                .oif,
            Some(2)
        );
    }

    #[test]
    fn ipv6_on_link_routes() {
        let routes = vec![
            r("fd00:1::", 64, RouteScope::Universe, 5),
            r("fd00::", 16, RouteScope::Universe, 6),
            Route {
                gateway: Some("fd00::1".parse().unwrap()),
                ..r("fd00:1:2::", 96, RouteScope::Universe, 7)
            },
        ];
        let ip = "fd00:1::9".parse().unwrap();
        assert_eq!(best_link_route(&routes, ip, None).unwrap().oif, Some(5));
        // the /96 is via a gateway: not on-link, the /16 wins
        let behind_gw = "fd00:1:2::9".parse().unwrap();
        assert_eq!(
            best_link_route(&routes, behind_gw, None).unwrap().oif,
            Some(6)
        );
        assert_eq!(
            best_link_route(&routes, "fd00:7::1".parse().unwrap(), None)
                .unwrap()
                .oif,
            Some(6)
        );
        // an IPv4 address never matches IPv6 routes
        assert!(best_link_route(&routes, "10.0.0.1".parse().unwrap(), None).is_none());
    }
}
