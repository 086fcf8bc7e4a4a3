//! Network interfaces (links) over rtnetlink: list, look up by name or
//! index, bring up/down, create the `ipip` fallback tunnel device.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

use crate::rtnl::{NetError, Result, Rtnl};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The hardware address, when it is a 6-byte MAC (Ethernet, veth, ...).
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The loopback device (`IFF_LOOPBACK`).
    pub loopback: bool,
    /// ARP disabled on the device (`IFF_NOARP`: loopback, tunnels).
    pub noarp: bool,
    pub mtu: u32,
    /// `rtnl_link_ops` kind: "veth", "ipip", "bridge"... (None for plain devices).
    pub kind: Option<String>,
}

/// Checks that `name` can be an interface name: 1..=15 bytes, no '/',
/// no whitespace, not "." or "..". (The kernel's `dev_valid_name` rule.)
pub fn valid_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if ok {
        Ok(())
    } else {
        Err(NetError::Invalid(format!(
            "invalid interface name {name:?} (1-{IFNAME_MAX} bytes, no '/', ':' or spaces)"
        )))
    }
}

fn parse_link(m: &LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        mac: None,
        up: m.header.flags.contains(LinkFlags::Up),
        loopback: m.header.flags.contains(LinkFlags::Loopback),
        noarp: m.header.flags.contains(LinkFlags::Noarp),
        mtu: 0,
        kind: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Address(a) if a.len() == 6 => {
                let mut mac = [0; 6];
                mac.copy_from_slice(a);
                link.mac = Some(mac);
            }
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        link.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Rtnl {
    /// Every interface of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let replies = self.dump(
            "list links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
        )?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(parse_link(m)),
                _ => None,
            })
            .collect())
    }

    /// The interface called `name`, or `None` if there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        valid_ifname(name)?;
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.get_one(&format!("look up interface {name}"), m)
    }

    /// The interface with index `index`, or `None` if there is none.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.get_one(&format!("look up interface #{index}"), m)
    }

    /// Like [`Rtnl::link_by_name`] but a missing interface is an error.
    pub fn require_link(&mut self, name: &str) -> Result<Link> {
        self.link_by_name(name)?
            .ok_or_else(|| NetError::NotFound(format!("no interface named {name:?}")))
    }

    fn get_one(&mut self, what: &str, m: LinkMessage) -> Result<Option<Link>> {
        match self.get(what, RouteNetlinkMessage::GetLink(m)) {
            Ok(replies) => Ok(replies.iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(parse_link(m)),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the interface administratively up or down (`ip link set DEV up|down`).
    pub fn set_link_up(&mut self, index: u32, up: bool) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.change_mask = LinkFlags::Up;
        if up {
            m.header.flags = LinkFlags::Up;
        }
        let what = format!("set interface #{index} {}", if up { "up" } else { "down" });
        self.change(&what, RouteNetlinkMessage::SetLink(m), 0)
    }

    /// Creates an `ipip` tunnel device named `name` with no endpoints
    /// (what `tunl0`, the fallback device of the ipip module, is).
    /// Fails with an `Invalid` error naming the cause when the kernel has
    /// no ipip support.
    pub fn create_ipip(&mut self, name: &str) -> Result<Link> {
        valid_ifname(name)?;
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::IpIp,
            )]));
        let what = format!("create ipip tunnel {name}");
        match self.change(
            &what,
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(()) => {}
            // Loading the ipip module (autoloaded by this very request)
            // creates its fallback device tunl0 before the kernel replays
            // the request, which then finds the name taken: it is there.
            Err(e) if e.errno() == Some(libc::EEXIST) => {}
            Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => {
                return Err(NetError::NotFound(format!(
                    "{what}: this kernel has no ipip tunnel support (CONFIG_NET_IPIP / module ipip)"
                )))
            }
            Err(e) => return Err(e),
        }
        self.require_link(name)
    }

    /// Deletes the interface with index `index`.
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.change(
            &format!("delete interface #{index}"),
            RouteNetlinkMessage::DelLink(m),
            0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for good in ["eth0", "lo", "tunl0", "a", "123456789012345", "veth-x.1"] {
            valid_ifname(good).unwrap();
        }
        for bad in ["", ".", "..", "eth0:1", "a/b", "a b", "1234567890123456"] {
            assert!(valid_ifname(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mac_format() {
        assert_eq!(
            format_mac(&[0xb2, 0x61, 0x50, 0xa6, 0x7d, 0x03]),
            "b2:61:50:a6:7d:03"
        );
    }
}
