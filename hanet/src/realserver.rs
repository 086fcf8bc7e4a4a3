//! The LVS real-server ⇄ director switch of one node.
//!
//! A real server holds the VIP as a /32 on a device that does not answer
//! ARP for it — `tunl0` (the ipip tunnel, LVS-TUN) or `lo` (LVS-DR) — with
//! ARP hiding on (`arp_ignore=1`, `arp_announce=2`). A director holds no
//! such copy, answers ARP normally and forwards (`ip_forward=1`); its VIP
//! lives on the public interface (the IPaddr agent puts it there).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::addr::AddrSpec;
use crate::rtnl::{NetError, Result, Rtnl};
use crate::sysctl::{self, Conf, ConfKey};

/// How the director reaches this node when it is a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsMode {
    /// IP tunnelling: the VIP sits on the ipip device `tunl0`.
    Tun,
    /// Direct routing: the VIP sits on `lo`.
    Dr,
}

impl RsMode {
    /// Parses `tun` / `dr` (also the ipvsadm words `ipip` / `gate`).
    pub fn parse(s: &str) -> Option<RsMode> {
        match s.to_ascii_lowercase().as_str() {
            "tun" | "ipip" | "tunnel" => Some(RsMode::Tun),
            "dr" | "gate" | "direct" => Some(RsMode::Dr),
            _ => None,
        }
    }

    /// The device the VIP goes on in this mode.
    pub fn default_device(self) -> &'static str {
        match self {
            RsMode::Tun => "tunl0",
            RsMode::Dr => "lo",
        }
    }
}

impl fmt::Display for RsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RsMode::Tun => "tun",
            RsMode::Dr => "dr",
        })
    }
}

/// The real-server setup of a node: mode, VIP device, VIPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    pub mode: RsMode,
    pub device: String,
    pub vips: Vec<Ipv4Addr>,
}

/// Which role the node is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Forwarding on, no VIP copy on the device, ARP answered normally.
    Director,
    /// Every VIP on the device as /32, ARP hidden.
    RealServer,
    /// Neither: the description says what is off.
    Mixed(String),
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Director => f.write_str("director"),
            Role::RealServer => f.write_str("real server"),
            Role::Mixed(why) => write!(f, "neither director nor real server ({why})"),
        }
    }
}

impl RealServer {
    /// A setup with the mode's default device.
    pub fn new(mode: RsMode, vips: Vec<Ipv4Addr>) -> RealServer {
        RealServer {
            mode,
            device: mode.default_device().to_string(),
            vips,
        }
    }

    fn vip_spec(vip: Ipv4Addr) -> AddrSpec {
        // As the classic `ifconfig tunl0 VIP netmask 255.255.255.255 broadcast VIP`.
        AddrSpec {
            broadcast: Some(vip),
            ..AddrSpec::new(IpAddr::V4(vip), 32)
        }
    }

    /// Which VIPs sit on the device as /32 right now (empty if the device
    /// does not exist).
    pub fn vips_on_device(&self, rtnl: &mut Rtnl) -> Result<Vec<Ipv4Addr>> {
        let Some(link) = rtnl.link_by_name(&self.device)? else {
            return Ok(Vec::new());
        };
        let addrs = rtnl.addresses(Some(link.index))?;
        Ok(self
            .vips
            .iter()
            .copied()
            .filter(|v| {
                addrs
                    .iter()
                    .any(|a| a.addr == IpAddr::V4(*v) && a.prefix == 32)
            })
            .collect())
    }

    /// Makes this node a real server: creates `tunl0` if needed (Tun), brings
    /// the device up, puts every VIP on it as /32, hides ARP; in Tun mode
    /// also turns the reverse-path filter off on the device and `all`
    /// (decapsulated packets arrive on tunl0 with the client as source).
    /// Idempotent.
    pub fn become_real_server(&self, rtnl: &mut Rtnl) -> Result<()> {
        let link = match rtnl.link_by_name(&self.device)? {
            Some(l) => l,
            None if self.mode == RsMode::Tun => rtnl.create_ipip(&self.device)?,
            None => {
                return Err(NetError::NotFound(format!(
                    "no interface named {:?} for the VIP",
                    self.device
                )))
            }
        };
        if !link.up {
            rtnl.set_link_up(link.index, true)?;
        }
        let present = self.vips_on_device(rtnl)?;
        for vip in self.vips.iter().filter(|v| !present.contains(v)) {
            match rtnl.add_address(link.index, &Self::vip_spec(*vip)) {
                Err(e) if e.errno() == Some(libc::EEXIST) => {}
                r => r?,
            }
        }
        sysctl::hide_arp(&self.device)?;
        if self.mode == RsMode::Tun {
            sysctl::set(Conf::Dev(&self.device), ConfKey::RpFilter, 0)?;
            sysctl::set(Conf::All, ConfKey::RpFilter, 0)?;
        }
        Ok(())
    }

    /// Makes this node a director: forwarding on, the /32 VIP copies off
    /// the device, ARP hiding undone. Idempotent; a missing device is fine.
    pub fn become_director(&self, rtnl: &mut Rtnl) -> Result<()> {
        sysctl::set_ip_forward(true)?;
        if let Some(link) = rtnl.link_by_name(&self.device)? {
            for vip in self.vips_on_device(rtnl)? {
                match rtnl.del_address(link.index, IpAddr::V4(vip), 32) {
                    Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => {}
                    r => r?,
                }
            }
        }
        sysctl::unhide_arp(&self.device)
    }

    /// Which role the node is in now.
    pub fn role(&self, rtnl: &mut Rtnl) -> Result<Role> {
        let on_dev = self.vips_on_device(rtnl)?;
        let hidden = sysctl::arp_hidden(&self.device)?;
        let forward = sysctl::ip_forward()?;
        if on_dev.is_empty() && !hidden && forward {
            return Ok(Role::Director);
        }
        if on_dev.len() == self.vips.len() && hidden {
            return Ok(Role::RealServer);
        }
        let mut why = Vec::new();
        if !forward {
            why.push("ip_forward=0".to_string());
        }
        let missing: Vec<String> = self
            .vips
            .iter()
            .filter(|v| !on_dev.contains(v))
            .map(|v| v.to_string())
            .collect();
        if !on_dev.is_empty() {
            let on: Vec<String> = on_dev.iter().map(|v| v.to_string()).collect();
            why.push(format!("{} on {}", on.join(","), self.device));
        }
        if !missing.is_empty() {
            why.push(format!("{} not on {}", missing.join(","), self.device));
        }
        why.push(format!("ARP hiding {}", if hidden { "on" } else { "off" }));
        Ok(Role::Mixed(why.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(RsMode::parse("TUN"), Some(RsMode::Tun));
        assert_eq!(RsMode::parse("ipip"), Some(RsMode::Tun));
        assert_eq!(RsMode::parse("dr"), Some(RsMode::Dr));
        assert_eq!(RsMode::parse("gate"), Some(RsMode::Dr));
        assert_eq!(RsMode::parse("nat"), None);
        assert_eq!(RsMode::Tun.default_device(), "tunl0");
        assert_eq!(RsMode::Dr.default_device(), "lo");
        assert_eq!(RsMode::Dr.to_string(), "dr");
    }
}
