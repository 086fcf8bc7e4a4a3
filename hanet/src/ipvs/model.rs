//! The typed IPVS model: virtual services, destinations (real servers), and
//! the read-only counters the kernel reports with them.
//!
//! Everything here mirrors what the kernel stores (see `include/uapi/linux/ip_vs.h`),
//! so a value read back from the kernel compares equal to the value that was
//! written. Defaults follow `ipvsadm` (scheduler `wlc`, forwarding `-g`, weight 1,
//! persistence granularity /32 or /128).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::error::IpvsError;

/// Transport protocol of an address-based virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `-t` / `--tcp-service`
    Tcp,
    /// `-u` / `--udp-service`
    Udp,
    /// `--sctp-service`
    Sctp,
}

impl Protocol {
    /// The IP protocol number (`IPPROTO_*`).
    pub const fn number(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// The protocol for an IP protocol number, if IPVS supports it.
    pub fn from_number(n: u16) -> Option<Self> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The name `ipvsadm -L` prints: `TCP`, `UDP`, `SCTP`.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Address family of a service or destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4 (`AF_INET`)
    Inet,
    /// IPv6 (`AF_INET6`)
    Inet6,
}

impl Family {
    /// The `AF_*` value the kernel uses.
    pub const fn af(self) -> u16 {
        match self {
            Family::Inet => libc::AF_INET as u16,
            Family::Inet6 => libc::AF_INET6 as u16,
        }
    }

    /// The family for an `AF_*` value.
    pub fn from_af(af: u16) -> Option<Self> {
        match af as i32 {
            libc::AF_INET => Some(Family::Inet),
            libc::AF_INET6 => Some(Family::Inet6),
            _ => None,
        }
    }

    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }
}

/// What identifies a virtual service in the kernel table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKey {
    /// Protocol + virtual IP + port (`-t|-u|--sctp-service VIP:PORT`).
    Inet {
        /// transport protocol
        protocol: Protocol,
        /// virtual IP address (v4 or v6)
        addr: IpAddr,
        /// virtual port (0 = all ports, only allowed for persistent services)
        port: u16,
    },
    /// Firewall mark (`-f MARK`, with `-6` for IPv6).
    Fwmark {
        /// address family of the packets the mark selects
        family: Family,
        /// the mark, > 0
        mark: u32,
    },
}

impl ServiceKey {
    /// A TCP service `addr:port`.
    pub fn tcp(addr: impl Into<IpAddr>, port: u16) -> Self {
        ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: addr.into(),
            port,
        }
    }

    /// A UDP service `addr:port`.
    pub fn udp(addr: impl Into<IpAddr>, port: u16) -> Self {
        ServiceKey::Inet {
            protocol: Protocol::Udp,
            addr: addr.into(),
            port,
        }
    }

    /// An SCTP service `addr:port`.
    pub fn sctp(addr: impl Into<IpAddr>, port: u16) -> Self {
        ServiceKey::Inet {
            protocol: Protocol::Sctp,
            addr: addr.into(),
            port,
        }
    }

    /// An IPv4 firewall-mark service.
    pub fn fwmark(mark: u32) -> Self {
        ServiceKey::Fwmark {
            family: Family::Inet,
            mark,
        }
    }

    /// An IPv6 firewall-mark service (`-f MARK -6`).
    pub fn fwmark6(mark: u32) -> Self {
        ServiceKey::Fwmark {
            family: Family::Inet6,
            mark,
        }
    }

    /// The address family of the service.
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Inet { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    /// The service port (0 for firewall-mark services).
    pub fn port(&self) -> u16 {
        match self {
            ServiceKey::Inet { port, .. } => *port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }

    /// True for a firewall-mark service.
    pub fn is_fwmark(&self) -> bool {
        matches!(self, ServiceKey::Fwmark { .. })
    }
}

/// `TCP 10.0.0.1:80`, `UDP [2001:db8::1]:53`, `FWM 5`, `FWM 5 IPv6`.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            } => {
                write!(f, "{protocol} {}", AddrPort(*addr, *port))
            }
            ServiceKey::Fwmark {
                family: Family::Inet,
                mark,
            } => write!(f, "FWM {mark}"),
            ServiceKey::Fwmark {
                family: Family::Inet6,
                mark,
            } => write!(f, "FWM {mark} IPv6"),
        }
    }
}

/// Formats `addr:port` the way ipvsadm does: `1.2.3.4:80`, `[::1]:80`
/// (the IPv6 text exactly as glibc's `inet_ntop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrPort(pub IpAddr, pub u16);

impl fmt::Display for AddrPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{}]:{}", inet_ntop6(&a), self.1),
        }
    }
}

/// The text glibc's `inet_ntop(AF_INET6, ...)` produces (RFC 5952 style, with
/// the embedded-IPv4 forms `::a.b.c.d` and `::ffff:a.b.c.d`), so that our
/// listings match ipvsadm's byte for byte.
pub fn inet_ntop6(a: &Ipv6Addr) -> String {
    let w = a.segments();
    // the longest run of zero words (first one on ties), if at least 2 long
    let mut best: Option<(usize, usize)> = None;
    let mut cur: Option<(usize, usize)> = None;
    for (i, word) in w.iter().enumerate() {
        if *word == 0 {
            cur = Some(match cur {
                Some((b, l)) => (b, l + 1),
                None => (i, 1),
            });
        } else if let Some(c) = cur.take() {
            if best.is_none_or(|b| c.1 > b.1) {
                best = Some(c);
            }
        }
    }
    if let Some(c) = cur {
        if best.is_none_or(|b| c.1 > b.1) {
            best = Some(c);
        }
    }
    let best = best.filter(|b| b.1 >= 2);
    let mut out = String::with_capacity(40);
    for (i, word) in w.iter().enumerate() {
        if let Some((base, len)) = best {
            if i >= base && i < base + len {
                if i == base {
                    out.push(':');
                }
                continue;
            }
        }
        if i != 0 {
            out.push(':');
        }
        // an encapsulated IPv4 address (::a.b.c.d or ::ffff:a.b.c.d)?
        if i == 6 {
            if let Some((0, len)) = best {
                if len == 6 || (len == 5 && w[5] == 0xffff) {
                    let o = a.octets();
                    out.push_str(&format!("{}.{}.{}.{}", o[12], o[13], o[14], o[15]));
                    return out;
                }
            }
        }
        out.push_str(&format!("{word:x}"));
    }
    if let Some((base, len)) = best {
        if base + len == 8 {
            out.push(':');
        }
    }
    out
}

/// The schedulers IPVS knows (`ipvsadm -s`). Which of them a kernel has
/// depends on its modules; the kernel answers "Scheduler not found" otherwise.
pub const KNOWN_SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

/// A scheduler name, validated against [`KNOWN_SCHEDULERS`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scheduler(String);

impl Scheduler {
    /// Validates `name` (e.g. `"rr"`).
    pub fn new(name: &str) -> Result<Self, IpvsError> {
        if KNOWN_SCHEDULERS.contains(&name) {
            Ok(Scheduler(name.to_string()))
        } else {
            Err(IpvsError::Invalid(format!(
                "unknown scheduler `{name}` (known: {})",
                KNOWN_SCHEDULERS.join(" ")
            )))
        }
    }

    /// A name as the kernel reported it (not validated: a newer kernel may
    /// have schedulers we do not know).
    pub(crate) fn from_kernel(name: String) -> Self {
        Scheduler(name)
    }

    /// The scheduler name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Scheduler {
    /// `wlc`, ipvsadm's default.
    fn default() -> Self {
        Scheduler("wlc".to_string())
    }
}

impl FromStr for Scheduler {
    type Err = IpvsError;
    fn from_str(s: &str) -> Result<Self, IpvsError> {
        Scheduler::new(s)
    }
}

impl TryFrom<String> for Scheduler {
    type Error = IpvsError;
    fn try_from(s: String) -> Result<Self, IpvsError> {
        Scheduler::new(&s)
    }
}

impl From<Scheduler> for String {
    fn from(s: Scheduler) -> String {
        s.0
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Persistence granularity (`-M`): a dotted mask for IPv4 services, a prefix
/// length (1..=128) for IPv6 services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Netmask {
    /// IPv4 mask, e.g. 255.255.255.0 (any 32-bit value, as ipvsadm accepts)
    V4(Ipv4Addr),
    /// IPv6 prefix length
    V6(u8),
}

impl Netmask {
    /// The default for a family: 255.255.255.255 or 128.
    pub fn full(family: Family) -> Self {
        match family {
            Family::Inet => Netmask::V4(Ipv4Addr::BROADCAST),
            Family::Inet6 => Netmask::V6(128),
        }
    }

    /// The family this netmask belongs to.
    pub fn family(&self) -> Family {
        match self {
            Netmask::V4(_) => Family::Inet,
            Netmask::V6(_) => Family::Inet6,
        }
    }

    /// The `u32` the kernel stores: the mask in network byte order for IPv4
    /// (as the host reads it), the prefix length for IPv6.
    pub fn to_kernel(self) -> u32 {
        match self {
            Netmask::V4(m) => u32::from_ne_bytes(m.octets()),
            Netmask::V6(p) => p as u32,
        }
    }

    /// Decodes the kernel's value for a service of `family`.
    pub fn from_kernel(family: Family, v: u32) -> Result<Self, IpvsError> {
        match family {
            Family::Inet => Ok(Netmask::V4(Ipv4Addr::from(v.to_ne_bytes()))),
            Family::Inet6 => u8::try_from(v)
                .ok()
                .filter(|p| *p <= 128)
                .map(Netmask::V6)
                .ok_or_else(|| IpvsError::Decode(format!("IPv6 netmask {v} out of range"))),
        }
    }
}

impl fmt::Display for Netmask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netmask::V4(m) => write!(f, "{m}"),
            Netmask::V6(p) => write!(f, "{p}"),
        }
    }
}

/// The three scheduler flags (`-b`). Their meaning depends on the
/// scheduler: for `sh` and `mh`, flag 1 is `*-fallback` and flag 2 is `*-port`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SchedFlags(pub u8);

impl SchedFlags {
    /// `flag-1` (`sh-fallback`, `mh-fallback`)
    pub const FLAG_1: SchedFlags = SchedFlags(1);
    /// `flag-2` (`sh-port`, `mh-port`)
    pub const FLAG_2: SchedFlags = SchedFlags(2);
    /// `flag-3`
    pub const FLAG_3: SchedFlags = SchedFlags(4);
    /// `sh-fallback`: pick another server when the hashed one is unavailable
    pub const SH_FALLBACK: SchedFlags = SchedFlags::FLAG_1;
    /// `sh-port`: hash the source port too
    pub const SH_PORT: SchedFlags = SchedFlags::FLAG_2;
    /// `mh-fallback`
    pub const MH_FALLBACK: SchedFlags = SchedFlags::FLAG_1;
    /// `mh-port`
    pub const MH_PORT: SchedFlags = SchedFlags::FLAG_2;

    /// No flag set.
    pub fn is_empty(self) -> bool {
        self.0 & 7 == 0
    }

    /// True if every flag of `other` is set.
    pub fn contains(self, other: SchedFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both.
    pub fn union(self, other: SchedFlags) -> SchedFlags {
        SchedFlags((self.0 | other.0) & 7)
    }

    /// The kernel's `IP_VS_SVC_F_SCHED1..3` bits.
    pub fn to_kernel(self) -> u32 {
        ((self.0 & 7) as u32) << 3
    }

    /// From the kernel's service flags.
    pub fn from_kernel(flags: u32) -> Self {
        SchedFlags(((flags >> 3) & 7) as u8)
    }

    /// The names ipvsadm prints for these flags under `scheduler`
    /// (`sh-fallback`, `mh-port`, `flag-3`, ...), in ipvsadm's order.
    pub fn names(self, scheduler: &str) -> Vec<&'static str> {
        let mut v = Vec::new();
        match scheduler {
            "sh" => {
                if self.contains(Self::FLAG_1) {
                    v.push("sh-fallback");
                }
                if self.contains(Self::FLAG_2) {
                    v.push("sh-port");
                }
            }
            "mh" => {
                if self.contains(Self::FLAG_1) {
                    v.push("mh-fallback");
                }
                if self.contains(Self::FLAG_2) {
                    v.push("mh-port");
                }
            }
            _ => {
                if self.contains(Self::FLAG_1) {
                    v.push("flag-1");
                }
                if self.contains(Self::FLAG_2) {
                    v.push("flag-2");
                }
                if self.contains(Self::FLAG_3) {
                    v.push("flag-3");
                }
            }
        }
        v
    }

    /// Parses ipvsadm's `-b` argument (comma-separated) for `scheduler`,
    /// with ipvsadm's rules: `sh-*` only with `sh`, `mh-*` only with `mh`.
    pub fn parse(scheduler: &str, arg: &str) -> Result<Self, IpvsError> {
        let mut f = SchedFlags::default();
        for name in arg.split(',').filter(|s| !s.is_empty()) {
            let (flag, needs) = match name {
                "flag-1" => (Self::FLAG_1, None),
                "flag-2" => (Self::FLAG_2, None),
                "flag-3" => (Self::FLAG_3, None),
                "sh-fallback" => (Self::SH_FALLBACK, Some("sh")),
                "sh-port" => (Self::SH_PORT, Some("sh")),
                "mh-fallback" => (Self::MH_FALLBACK, Some("mh")),
                "mh-port" => (Self::MH_PORT, Some("mh")),
                _ => {
                    return Err(IpvsError::Invalid(format!(
                        "invalid scheduler flag `{name}'"
                    )))
                }
            };
            if needs.is_some_and(|s| s != scheduler) {
                return Err(IpvsError::Invalid(format!(
                    "incompatible scheduler flag `{name}'"
                )));
            }
            f = f.union(flag);
        }
        Ok(f)
    }
}

/// Traffic counters of a service or destination (`ipvsadm -L --stats/--rate`).
/// Read-only: filled in when listing, ignored when comparing configurations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stats {
    /// connections scheduled
    pub conns: u64,
    /// incoming packets
    pub inpkts: u64,
    /// outgoing packets
    pub outpkts: u64,
    /// incoming bytes
    pub inbytes: u64,
    /// outgoing bytes
    pub outbytes: u64,
    /// current connection rate (per second)
    pub cps: u64,
    /// current incoming packet rate
    pub inpps: u64,
    /// current outgoing packet rate
    pub outpps: u64,
    /// current incoming byte rate
    pub inbps: u64,
    /// current outgoing byte rate
    pub outbps: u64,
}

impl Stats {
    /// True if every counter is zero.
    pub fn is_zero(&self) -> bool {
        *self == Stats::default()
    }
}

/// The persistence engine IPVS ships (`--pe sip`).
pub const KNOWN_PERSISTENCE_ENGINES: &[&str] = &["sip"];

/// A virtual service and its attributes (not its destinations: see
/// [`super::Table`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Service {
    /// what identifies it
    pub key: ServiceKey,
    /// `-s` (default `wlc`)
    #[serde(default)]
    pub scheduler: Scheduler,
    /// `-p [timeout]`: `Some(seconds)` for a persistent service
    #[serde(default)]
    pub persistent: Option<u32>,
    /// `-M`: persistence granularity (kept by the kernel even when not persistent)
    pub netmask: Netmask,
    /// `-o`: one-packet scheduling
    #[serde(default)]
    pub one_packet: bool,
    /// `-b`: scheduler flags
    #[serde(default)]
    pub sched_flags: SchedFlags,
    /// `--pe NAME`: persistence engine (`sip`)
    #[serde(default)]
    pub pe_name: Option<String>,
    /// counters (read-only; ignored by [`Service::same_config`])
    #[serde(default, skip_serializing_if = "Stats::is_zero")]
    pub stats: Stats,
}

/// ipvsadm's default persistence timeout for `-p` without a value (seconds).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;

impl Service {
    /// A service with ipvsadm's defaults: scheduler `wlc`, not persistent,
    /// full netmask, no flags.
    pub fn new(key: ServiceKey) -> Self {
        Service {
            key,
            scheduler: Scheduler::default(),
            persistent: None,
            netmask: Netmask::full(key.family()),
            one_packet: false,
            sched_flags: SchedFlags::default(),
            pe_name: None,
            stats: Stats::default(),
        }
    }

    /// Sets the scheduler (validated).
    pub fn with_scheduler(mut self, name: &str) -> Result<Self, IpvsError> {
        self.scheduler = Scheduler::new(name)?;
        Ok(self)
    }

    /// Makes the service persistent for `timeout` seconds.
    pub fn with_persistence(mut self, timeout: u32) -> Self {
        self.persistent = Some(timeout);
        self
    }

    /// True if every configurable attribute (not the counters) is equal.
    pub fn same_config(&self, other: &Service) -> bool {
        self.key == other.key
            && self.scheduler == other.scheduler
            && self.persistent == other.persistent
            && self.netmask == other.netmask
            && self.one_packet == other.one_packet
            && self.sched_flags == other.sched_flags
            && self.pe_name == other.pe_name
    }

    /// Checks what the kernel would refuse, without asking it: netmask family,
    /// IPv6 prefix range, fwmark 0, persistence engine name.
    pub fn validate(&self) -> Result<(), IpvsError> {
        if self.netmask.family() != self.key.family() {
            return Err(IpvsError::Invalid(format!(
                "{}: netmask {} does not fit the address family",
                self.key, self.netmask
            )));
        }
        if let Netmask::V6(p) = self.netmask {
            if !(1..=128).contains(&p) {
                return Err(IpvsError::Invalid(format!(
                    "{}: IPv6 netmask must be 1..128",
                    self.key
                )));
            }
        }
        if let ServiceKey::Fwmark { mark: 0, .. } = self.key {
            return Err(IpvsError::Invalid(
                "fwmark must be greater than zero".into(),
            ));
        }
        if let Some(pe) = &self.pe_name {
            if pe.is_empty() || pe.len() > 16 {
                return Err(IpvsError::Invalid(format!(
                    "bad persistence engine name `{pe}`"
                )));
            }
        }
        Ok(())
    }

    /// The kernel's service flags word (without `HASHED`).
    pub fn kernel_flags(&self) -> u32 {
        let mut f = self.sched_flags.to_kernel();
        if self.persistent.is_some() {
            f |= IP_VS_SVC_F_PERSISTENT;
        }
        if self.one_packet {
            f |= IP_VS_SVC_F_ONEPACKET;
        }
        f
    }
}

/// `IP_VS_SVC_F_PERSISTENT`
pub const IP_VS_SVC_F_PERSISTENT: u32 = 0x1;
/// `IP_VS_SVC_F_ONEPACKET`
pub const IP_VS_SVC_F_ONEPACKET: u32 = 0x4;

/// Packet forwarding method of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    /// `-m`: NAT ("Masq")
    Masq,
    /// local node ("Local"; set by old kernels for local addresses)
    Local,
    /// `-i`: IP-in-IP tunnelling ("Tunnel")
    Tunnel,
    /// `-g`: direct routing, gatewaying ("Route"; the default)
    Gate,
    /// cache bypass (never configured by users)
    Bypass,
}

impl Forward {
    /// The kernel's `IP_VS_CONN_F_*` forwarding value.
    pub const fn to_kernel(self) -> u32 {
        match self {
            Forward::Masq => 0,
            Forward::Local => 1,
            Forward::Tunnel => 2,
            Forward::Gate => 3,
            Forward::Bypass => 4,
        }
    }

    /// From the kernel's connection flags (only the forwarding bits count).
    pub fn from_kernel(v: u32) -> Result<Self, IpvsError> {
        Ok(match v & 7 {
            0 => Forward::Masq,
            1 => Forward::Local,
            2 => Forward::Tunnel,
            3 => Forward::Gate,
            4 => Forward::Bypass,
            x => return Err(IpvsError::Decode(format!("unknown forwarding method {x}"))),
        })
    }

    /// The name `ipvsadm -L` prints: `Masq`, `Local`, `Tunnel`, `Route`.
    pub const fn name(self) -> &'static str {
        match self {
            Forward::Masq => "Masq",
            Forward::Local => "Local",
            Forward::Tunnel => "Tunnel",
            Forward::Gate => "Route",
            Forward::Bypass => "(null)",
        }
    }

    /// The ipvsadm switch: `-m`, `-i`, `-g`.
    pub const fn switch(self) -> &'static str {
        match self {
            Forward::Masq => "-m",
            Forward::Tunnel => "-i",
            Forward::Local | Forward::Gate | Forward::Bypass => "-g",
        }
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Encapsulation of a tunnelling (`-i`) destination.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    /// IP-in-IP (the default)
    #[default]
    Ipip,
    /// Generic UDP Encapsulation (`--tun-type gue --tun-port N`)
    Gue,
    /// GRE (`--tun-type gre`)
    Gre,
}

impl TunnelType {
    /// `IP_VS_CONN_F_TUNNEL_TYPE_*`
    pub const fn to_kernel(self) -> u8 {
        match self {
            TunnelType::Ipip => 0,
            TunnelType::Gue => 1,
            TunnelType::Gre => 2,
        }
    }

    /// From the kernel's value.
    pub fn from_kernel(v: u8) -> Result<Self, IpvsError> {
        Ok(match v {
            0 => TunnelType::Ipip,
            1 => TunnelType::Gue,
            2 => TunnelType::Gre,
            x => return Err(IpvsError::Decode(format!("unknown tunnel type {x}"))),
        })
    }

    /// `ipip`, `gue`, `gre`
    pub const fn name(self) -> &'static str {
        match self {
            TunnelType::Ipip => "ipip",
            TunnelType::Gue => "gue",
            TunnelType::Gre => "gre",
        }
    }
}

/// Tunnel options of a destination (only meaningful with [`Forward::Tunnel`]).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Tunnel {
    /// encapsulation
    #[serde(default)]
    pub kind: TunnelType,
    /// destination UDP port for GUE (0 otherwise)
    #[serde(default)]
    pub port: u16,
    /// checksum flags: [`Tunnel::NOCSUM`], [`Tunnel::CSUM`], [`Tunnel::REMCSUM`]
    #[serde(default)]
    pub flags: u16,
}

impl Tunnel {
    /// `--tun-nocsum`
    pub const NOCSUM: u16 = 0;
    /// `--tun-csum`
    pub const CSUM: u16 = 1;
    /// `--tun-remcsum`
    pub const REMCSUM: u16 = 2;
}

/// Identifies a destination within its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DestKey {
    /// real server address
    pub addr: IpAddr,
    /// real server port
    pub port: u16,
}

impl fmt::Display for DestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        AddrPort(self.addr, self.port).fmt(f)
    }
}

/// A destination (real server) of a virtual service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dest {
    /// real server address (may differ in family from the service only for tunnels)
    pub addr: IpAddr,
    /// real server port
    pub port: u16,
    /// `-g|-m|-i`
    pub forward: Forward,
    /// `-w` (0 = quiescent: no new connections)
    pub weight: u32,
    /// `-x`: upper connection threshold (0 = none)
    #[serde(default)]
    pub upper_threshold: u32,
    /// `-y`: lower connection threshold
    #[serde(default)]
    pub lower_threshold: u32,
    /// tunnel options (`--tun-type` ...)
    #[serde(default)]
    pub tunnel: Tunnel,
    /// active connections (read-only)
    #[serde(default)]
    pub active_conns: u32,
    /// inactive connections (read-only)
    #[serde(default)]
    pub inact_conns: u32,
    /// persistent connection templates (read-only)
    #[serde(default)]
    pub persist_conns: u32,
    /// counters (read-only)
    #[serde(default, skip_serializing_if = "Stats::is_zero")]
    pub stats: Stats,
}

impl Dest {
    /// A destination with no thresholds and ipip tunnel options.
    pub fn new(addr: impl Into<IpAddr>, port: u16, forward: Forward, weight: u32) -> Self {
        Dest {
            addr: addr.into(),
            port,
            forward,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
            tunnel: Tunnel::default(),
            active_conns: 0,
            inact_conns: 0,
            persist_conns: 0,
            stats: Stats::default(),
        }
    }

    /// Its key within the service.
    pub fn key(&self) -> DestKey {
        DestKey {
            addr: self.addr,
            port: self.port,
        }
    }

    /// Sets upper and lower connection thresholds.
    pub fn with_thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.upper_threshold = upper;
        self.lower_threshold = lower;
        self
    }

    /// True if every configurable attribute (not the counters) is equal.
    pub fn same_config(&self, other: &Dest) -> bool {
        self.addr == other.addr
            && self.port == other.port
            && self.forward == other.forward
            && self.weight == other.weight
            && self.upper_threshold == other.upper_threshold
            && self.lower_threshold == other.lower_threshold
            && self.tunnel == other.tunnel
    }

    /// Checks what the kernel refuses for a destination of a `family` service:
    /// negative weight, lower threshold above the upper one, a foreign
    /// address family without tunnelling.
    pub fn validate(&self, family: Family) -> Result<(), IpvsError> {
        if self.weight > i32::MAX as u32 {
            return Err(IpvsError::Invalid(format!(
                "{}: weight too large",
                self.key()
            )));
        }
        if self.lower_threshold > self.upper_threshold {
            return Err(IpvsError::Invalid(format!(
                "{}: lower threshold {} is higher than upper threshold {}",
                self.key(),
                self.lower_threshold,
                self.upper_threshold
            )));
        }
        if Family::of(&self.addr) != family && self.forward != Forward::Tunnel {
            return Err(IpvsError::Invalid(format!(
                "{}: a different address family is allowed only for tunnelling servers",
                self.key()
            )));
        }
        Ok(())
    }
}

/// What `IPVS_CMD_GET_INFO` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// IPVS version, e.g. 0x010201 for 1.2.1
    pub version: u32,
    /// size of the connection hash table
    pub conn_tab_size: u32,
}

impl Info {
    /// The version as ipvsadm prints it: `1.2.1`.
    pub fn version_string(&self) -> String {
        format!(
            "{}.{}.{}",
            (self.version >> 16) & 0xff,
            (self.version >> 8) & 0xff,
            self.version & 0xff
        )
    }
}

impl Default for Info {
    /// What current kernels report: 1.2.1, 4096 buckets.
    fn default() -> Self {
        Info {
            version: 0x010201,
            conn_tab_size: 4096,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntop6_matches_glibc_forms() {
        let cases = [
            ("2001:db8::1", "2001:db8::1"),
            ("::", "::"),
            ("::1", "::1"),
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
            ("::10.0.0.1", "::10.0.0.1"),
            ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),
            ("1:0:0:0:1:0:0:1", "1::1:0:0:1"),
            ("fe80::", "fe80::"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
        ];
        for (a, want) in cases {
            let ip: Ipv6Addr = a.parse().unwrap();
            assert_eq!(inet_ntop6(&ip), want, "{a}");
        }
    }

    #[test]
    fn netmask_kernel_values() {
        let m = Netmask::V4("255.255.255.0".parse().unwrap());
        assert_eq!(m.to_kernel().to_ne_bytes(), [255, 255, 255, 0]);
        assert_eq!(
            Netmask::from_kernel(Family::Inet, m.to_kernel()).unwrap(),
            m
        );
        assert_eq!(Netmask::V6(64).to_kernel(), 64);
        assert!(Netmask::from_kernel(Family::Inet6, 129).is_err());
    }

    #[test]
    fn sched_flags_names_and_parse() {
        let f = SchedFlags::parse("sh", "sh-fallback,sh-port").unwrap();
        assert_eq!(f.to_kernel(), 0x18);
        assert_eq!(f.names("sh"), ["sh-fallback", "sh-port"]);
        assert_eq!(f.names("rr"), ["flag-1", "flag-2"]);
        assert!(SchedFlags::parse("rr", "sh-port").is_err());
        assert!(SchedFlags::parse("rr", "bogus").is_err());
    }

    #[test]
    fn scheduler_validation() {
        assert!(Scheduler::new("rr").is_ok());
        assert!(Scheduler::new("roundrobin").is_err());
        assert_eq!(Scheduler::default().as_str(), "wlc");
    }

    #[test]
    fn display_keys() {
        assert_eq!(
            ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80).to_string(),
            "TCP 10.0.0.1:80"
        );
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(ServiceKey::udp(v6, 53).to_string(), "UDP [2001:db8::1]:53");
        assert_eq!(ServiceKey::fwmark6(3).to_string(), "FWM 3 IPv6");
    }
}
