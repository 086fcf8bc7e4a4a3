//! IPv4 and IPv6 interface addresses over rtnetlink: list, add (with prefix,
//! broadcast and label), remove. Plus the small pure helpers around them
//! (prefix/netmask conversion, network broadcast).

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::link::IFNAME_MAX;
use crate::rtnl::{NetError, Result, Rtnl};

/// One address on an interface, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// Index of the interface holding it.
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    /// IPv4 broadcast address, if one is set.
    pub broadcast: Option<Ipv4Addr>,
    /// IPv4 label (`eth0`, `eth0:0`...).
    pub label: Option<String>,
    /// `IFA_F_*` flags (secondary, tentative, dadfailed, nodad...).
    pub flags: AddressFlags,
}

impl IfAddr {
    /// IPv6 duplicate address detection still running.
    pub fn tentative(&self) -> bool {
        self.flags.contains(AddressFlags::Tentative)
    }
    /// IPv6 duplicate address detection found a duplicate.
    pub fn dad_failed(&self) -> bool {
        self.flags.contains(AddressFlags::Dadfailed)
    }
}

/// What to add: `ip addr add ADDR/PREFIX [brd BROADCAST] [label LABEL] dev ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrSpec {
    pub addr: IpAddr,
    pub prefix: u8,
    /// IPv4 only.
    pub broadcast: Option<Ipv4Addr>,
    /// IPv4 only; at most 15 bytes.
    pub label: Option<String>,
    /// IPv6: skip duplicate address detection (`nodad`).
    pub nodad: bool,
}

impl AddrSpec {
    /// An address with prefix and nothing else.
    pub fn new(addr: IpAddr, prefix: u8) -> AddrSpec {
        AddrSpec {
            addr,
            prefix,
            broadcast: None,
            label: None,
            nodad: false,
        }
    }

    /// Checks the combination: prefix in range, broadcast/label only for IPv4,
    /// label length.
    pub fn validate(&self) -> Result<()> {
        check_prefix(self.addr, self.prefix)?;
        if self.addr.is_ipv6() && (self.broadcast.is_some() || self.label.is_some()) {
            return Err(NetError::Invalid(format!(
                "{}: broadcast and label apply to IPv4 addresses only",
                self.addr
            )));
        }
        if let Some(l) = &self.label {
            if l.is_empty() || l.len() > IFNAME_MAX {
                return Err(NetError::Invalid(format!(
                    "label {l:?} must be 1-{IFNAME_MAX} bytes"
                )));
            }
        }
        Ok(())
    }
}

/// Maximum prefix length for the address family of `addr`.
pub fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Errors unless `prefix` fits the family of `addr`.
pub fn check_prefix(addr: IpAddr, prefix: u8) -> Result<()> {
    if prefix > max_prefix(addr) {
        Err(NetError::Invalid(format!(
            "prefix length {prefix} out of range for {addr} (0-{})",
            max_prefix(addr)
        )))
    } else {
        Ok(())
    }
}

/// The IPv4 netmask of a prefix length (24 → 255.255.255.0).
pub fn prefix_to_netmask(prefix: u8) -> Ipv4Addr {
    let p = prefix.min(32) as u32;
    Ipv4Addr::from(if p == 0 { 0 } else { u32::MAX << (32 - p) })
}

/// The prefix length of a contiguous IPv4 netmask (255.255.255.0 → 24);
/// `None` for a non-contiguous mask.
pub fn netmask_to_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    if m.checked_shl(ones).unwrap_or(0) == 0 {
        Some(ones as u8)
    } else {
        None
    }
}

/// The network broadcast address of `addr/prefix` (all host bits set);
/// `None` for /31 and /32 which have no broadcast.
pub fn network_broadcast(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    if prefix >= 31 {
        return None;
    }
    let mask = u32::from(prefix_to_netmask(prefix));
    Some(Ipv4Addr::from(u32::from(addr) | !mask))
}

/// True if `addr` lies in `net/prefix` (same family).
pub fn prefix_contains(net: IpAddr, prefix: u8, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let p = prefix.min(32) as u32;
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let p = prefix.min(128) as u32;
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

fn family_of(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn parse_addr(m: &AddressMessage) -> Option<IfAddr> {
    let mut local = None;
    let mut address = None;
    let mut a = IfAddr {
        index: m.header.index,
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        prefix: m.header.prefix_len,
        broadcast: None,
        label: None,
        flags: AddressFlags::from_bits_retain(m.header.flags.bits() as u32),
    };
    for attr in &m.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Broadcast(b) => a.broadcast = Some(*b),
            AddressAttribute::Label(l) => a.label = Some(l.clone()),
            AddressAttribute::Flags(f) => a.flags = *f,
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links (and the only one for IPv6).
    a.addr = local.or(address)?;
    Some(a)
}

fn address_message(index: u32, addr: IpAddr, prefix: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = family_of(addr);
    m.header.prefix_len = prefix;
    m.header.index = index;
    m.header.scope = match addr {
        IpAddr::V4(v4) if v4.is_loopback() => AddressScope::Host,
        IpAddr::V6(v6) if v6.is_loopback() => AddressScope::Host,
        _ => AddressScope::Universe,
    };
    if addr.is_ipv4() {
        m.attributes.push(AddressAttribute::Local(addr));
    }
    m.attributes.push(AddressAttribute::Address(addr));
    m
}

impl Rtnl {
    /// The addresses of one interface (`Some(index)`) or of all of them.
    pub fn addresses(&mut self, index: Option<u32>) -> Result<Vec<IfAddr>> {
        let replies = self.dump(
            "list addresses",
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        )?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(m) => parse_addr(m),
                _ => None,
            })
            .filter(|a| index.is_none_or(|i| a.index == i))
            .collect())
    }

    /// Where `addr` is configured, if anywhere (first match).
    pub fn find_address(&mut self, addr: IpAddr) -> Result<Option<IfAddr>> {
        Ok(self.addresses(None)?.into_iter().find(|a| a.addr == addr))
    }

    /// Adds an address to interface `index`. Adding an address that is
    /// already there fails with errno EEXIST (see [`NetError::errno`]).
    pub fn add_address(&mut self, index: u32, spec: &AddrSpec) -> Result<()> {
        spec.validate()?;
        let mut m = address_message(index, spec.addr, spec.prefix);
        if let Some(b) = spec.broadcast {
            m.attributes.push(AddressAttribute::Broadcast(b));
        }
        if let Some(l) = &spec.label {
            m.attributes.push(AddressAttribute::Label(l.clone()));
        }
        if spec.nodad {
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        let what = format!("add {}/{} to interface #{index}", spec.addr, spec.prefix);
        self.change(
            &what,
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Removes `addr/prefix` from interface `index`. A missing address fails
    /// with errno EADDRNOTAVAIL.
    pub fn del_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        check_prefix(addr, prefix)?;
        let m = address_message(index, addr, prefix);
        let what = format!("remove {addr}/{prefix} from interface #{index}");
        self.change(&what, RouteNetlinkMessage::DelAddress(m), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn netmask_prefix_round_trip() {
        for p in 0..=32u8 {
            assert_eq!(netmask_to_prefix(prefix_to_netmask(p)), Some(p));
        }
        assert_eq!(prefix_to_netmask(24), v4("255.255.255.0"));
        assert_eq!(prefix_to_netmask(0), v4("0.0.0.0"));
        assert_eq!(netmask_to_prefix(v4("255.0.255.0")), None);
        assert_eq!(netmask_to_prefix(v4("255.255.255.254")), Some(31));
    }

    #[test]
    fn broadcast_of_network() {
        assert_eq!(
            network_broadcast(v4("192.168.136.10"), 24),
            Some(v4("192.168.136.255"))
        );
        assert_eq!(
            network_broadcast(v4("10.1.2.3"), 8),
            Some(v4("10.255.255.255"))
        );
        assert_eq!(network_broadcast(v4("10.1.2.3"), 31), None);
        assert_eq!(network_broadcast(v4("10.1.2.3"), 32), None);
    }

    #[test]
    fn containment() {
        let n: IpAddr = "10.99.0.0".parse().unwrap();
        assert!(prefix_contains(n, 24, "10.99.0.77".parse().unwrap()));
        assert!(!prefix_contains(n, 24, "10.99.1.77".parse().unwrap()));
        assert!(prefix_contains(n, 0, "1.2.3.4".parse().unwrap()));
        let n6: IpAddr = "fd00:1::".parse().unwrap();
        assert!(prefix_contains(n6, 64, "fd00:1::5".parse().unwrap()));
        assert!(!prefix_contains(n6, 64, "fd00:2::5".parse().unwrap()));
        assert!(!prefix_contains(n, 0, "fd00:2::5".parse().unwrap()));
    }

    #[test]
    fn spec_validation() {
        let mut s = AddrSpec::new("10.0.0.1".parse().unwrap(), 33);
        assert!(s.validate().is_err());
        s.prefix = 24;
        s.label = Some("eth0:0123456789ab".into());
        assert!(s.validate().is_err());
        s.label = Some("eth0:vip".into());
        s.validate().unwrap();
        let mut s6 = AddrSpec::new("fd00::1".parse().unwrap(), 64);
        s6.validate().unwrap();
        s6.label = Some("eth0:x".into());
        assert!(s6.validate().is_err());
        s6.label = None;
        s6.prefix = 129;
        assert!(s6.validate().is_err());
    }
}
