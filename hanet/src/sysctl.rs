//! The IPv4 sysctls an LVS director or real server touches, read and
//! written through `/proc/sys/net/ipv4` of the calling thread's network
//! namespace: `ip_forward`, and per interface (or `all` / `default`)
//! `arp_ignore`, `arp_announce`, `rp_filter`.

use std::path::PathBuf;

use crate::link::valid_ifname;
use crate::rtnl::{NetError, Result};

/// Which `conf/<X>/` directory a per-interface sysctl lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conf<'a> {
    /// `conf/all`: combined with every interface's value.
    All,
    /// `conf/default`: the value new interfaces start with.
    Default,
    /// `conf/<dev>`.
    Dev(&'a str),
}

impl Conf<'_> {
    fn dir(&self) -> Result<String> {
        Ok(match self {
            Conf::All => "all".into(),
            Conf::Default => "default".into(),
            Conf::Dev(d) => {
                valid_ifname(d)?;
                if *d == "all" || *d == "default" {
                    return Err(NetError::Invalid(format!(
                        "interface name {d:?} clashes with conf/{d}"
                    )));
                }
                d.to_string()
            }
        })
    }
}

/// The per-interface IPv4 sysctls this module knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfKey {
    /// 0 answer ARP for any local address on any interface; 1 only for
    /// addresses on the receiving interface; ...
    ArpIgnore,
    /// 0 any source address; 2 always the best local address of the
    /// outgoing interface (never a VIP on lo/tunl0).
    ArpAnnounce,
    /// Reverse path filter: 0 off, 1 strict, 2 loose.
    RpFilter,
}

impl ConfKey {
    fn file(self) -> &'static str {
        match self {
            ConfKey::ArpIgnore => "arp_ignore",
            ConfKey::ArpAnnounce => "arp_announce",
            ConfKey::RpFilter => "rp_filter",
        }
    }
    fn max(self) -> u32 {
        match self {
            ConfKey::ArpIgnore => 8,
            ConfKey::ArpAnnounce => 2,
            ConfKey::RpFilter => 2,
        }
    }
}

const ROOT: &str = "/proc/sys/net/ipv4";

fn conf_path(conf: Conf<'_>, key: ConfKey) -> Result<PathBuf> {
    Ok(PathBuf::from(format!(
        "{ROOT}/conf/{}/{}",
        conf.dir()?,
        key.file()
    )))
}

/// Reads a numeric sysctl file.
pub fn read_u32(path: &std::path::Path) -> Result<u32> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| NetError::io(format!("read {}", path.display()), e))?;
    s.trim().parse().map_err(|_| {
        NetError::Invalid(format!(
            "{}: expected a number, found {:?}",
            path.display(),
            s.trim()
        ))
    })
}

/// Writes a numeric sysctl file (only if the value differs).
pub fn write_u32(path: &std::path::Path, value: u32) -> Result<()> {
    if read_u32(path)? == value {
        return Ok(());
    }
    std::fs::write(path, format!("{value}\n"))
        .map_err(|e| NetError::io(format!("write {value} to {}", path.display()), e))
}

/// Reads `net.ipv4.conf.<conf>.<key>`.
pub fn get(conf: Conf<'_>, key: ConfKey) -> Result<u32> {
    read_u32(&conf_path(conf, key)?)
}

/// Writes `net.ipv4.conf.<conf>.<key>`.
pub fn set(conf: Conf<'_>, key: ConfKey, value: u32) -> Result<()> {
    if value > key.max() {
        return Err(NetError::Invalid(format!(
            "{} = {value} out of range (0-{})",
            key.file(),
            key.max()
        )));
    }
    write_u32(&conf_path(conf, key)?, value)
}

/// `net.ipv4.ip_forward`.
pub fn ip_forward() -> Result<bool> {
    Ok(read_u32(&PathBuf::from(format!("{ROOT}/ip_forward")))? != 0)
}

/// Sets `net.ipv4.ip_forward`.
pub fn set_ip_forward(on: bool) -> Result<()> {
    write_u32(&PathBuf::from(format!("{ROOT}/ip_forward")), on as u32)
}

/// The ARP-hiding values of an LVS real server: `arp_ignore=1`,
/// `arp_announce=2`.
pub const ARP_IGNORE_HIDDEN: u32 = 1;
/// See [`ARP_IGNORE_HIDDEN`].
pub const ARP_ANNOUNCE_HIDDEN: u32 = 2;

/// Hides addresses on `dev` (lo, tunl0) from ARP, on `dev` and `all`:
/// the real server does not answer ARP for the VIP, nor use it as ARP
/// source.
pub fn hide_arp(dev: &str) -> Result<()> {
    for conf in [Conf::All, Conf::Dev(dev)] {
        set(conf, ConfKey::ArpIgnore, ARP_IGNORE_HIDDEN)?;
        set(conf, ConfKey::ArpAnnounce, ARP_ANNOUNCE_HIDDEN)?;
    }
    Ok(())
}

/// Undoes [`hide_arp`]: back to the kernel defaults (0/0) on `dev` and `all`.
/// A missing `dev` is fine (nothing to undo there).
pub fn unhide_arp(dev: &str) -> Result<()> {
    for conf in [Conf::All, Conf::Dev(dev)] {
        if let Conf::Dev(d) = conf {
            if !conf_path(conf, ConfKey::ArpIgnore)?.exists() {
                log::debug!("no conf/{d}: nothing to unhide there");
                continue;
            }
        }
        set(conf, ConfKey::ArpIgnore, 0)?;
        set(conf, ConfKey::ArpAnnounce, 0)?;
    }
    Ok(())
}

/// True if ARP hiding is in effect for `dev` (the kernel uses the maximum
/// of `all` and the device's value for both sysctls).
pub fn arp_hidden(dev: &str) -> Result<bool> {
    let eff = |key| -> Result<u32> {
        let dev_v = if conf_path(Conf::Dev(dev), key)?.exists() {
            get(Conf::Dev(dev), key)?
        } else {
            0
        };
        Ok(get(Conf::All, key)?.max(dev_v))
    };
    Ok(eff(ConfKey::ArpIgnore)? >= ARP_IGNORE_HIDDEN
        && eff(ConfKey::ArpAnnounce)? >= ARP_ANNOUNCE_HIDDEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_validation() {
        assert_eq!(
            conf_path(Conf::Dev("tunl0"), ConfKey::ArpIgnore).unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/tunl0/arp_ignore")
        );
        assert_eq!(
            conf_path(Conf::All, ConfKey::RpFilter).unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/all/rp_filter")
        );
        assert!(conf_path(Conf::Dev("../x"), ConfKey::RpFilter).is_err());
        assert!(conf_path(Conf::Dev("all"), ConfKey::RpFilter).is_err());
        assert!(set(Conf::All, ConfKey::ArpAnnounce, 3).is_err());
    }
}
