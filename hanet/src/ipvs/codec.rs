//! The IPVS generic-netlink wire format, sans IO.
//!
//! Requests are [`IpvsRequest`] payloads (a command and attributes) carried in
//! `netlink_packet_generic::GenlMessage`; replies are parsed into
//! [`IpvsReply`] (command and raw attribute bytes) and decoded into the model
//! with [`decode_service`], [`decode_dest`] and [`decode_info`].
//!
//! Layout, from the kernel ABI (`include/uapi/linux/ip_vs.h`, family "IPVS",
//! version 1): the command's top-level attributes `IPVS_CMD_ATTR_SERVICE` and
//! `IPVS_CMD_ATTR_DEST` are nested. Inside them addresses are 16 bytes
//! (`union nf_inet_addr`, an IPv4 address in the first 4), ports are
//! big-endian u16, `IPVS_SVC_ATTR_FLAGS` is `struct ip_vs_flags { u32 flags;
//! u32 mask; }` in host order, the IPv4 netmask is the mask's network-order
//! bytes, everything else is host-order u8/u16/u32/u64. Counters come in
//! nested `*_ATTR_STATS` (u32 and u64 members) and `*_ATTR_STATS64` (all u64).

use netlink_packet_core::{
    DecodeError, Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla, NlaBuffer,
    NlasIterator, ParseableParametrized, NLA_F_NESTED, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::IpvsError;
use super::model::{
    Dest, DestKey, Family, Forward, Info, Netmask, Protocol, SchedFlags, Scheduler, Service,
    ServiceKey, Stats, Tunnel, TunnelType, IP_VS_SVC_F_ONEPACKET, IP_VS_SVC_F_PERSISTENT,
};
use super::table::Op;

/// The generic netlink family name.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// The family version.
pub const IPVS_GENL_VERSION: u8 = 1;

/// `IPVS_CMD_*`
pub mod cmd {
    #![allow(missing_docs)]
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const SET_INFO: u8 = 14;
    pub const GET_INFO: u8 = 15;
    pub const ZERO: u8 = 16;
    pub const FLUSH: u8 = 17;
}

/// Attribute numbers (`IPVS_CMD_ATTR_*`, `IPVS_SVC_ATTR_*`, ...).
pub mod attr {
    #![allow(missing_docs)]
    pub const CMD_SERVICE: u16 = 1;
    pub const CMD_DEST: u16 = 2;

    pub const SVC_AF: u16 = 1;
    pub const SVC_PROTOCOL: u16 = 2;
    pub const SVC_ADDR: u16 = 3;
    pub const SVC_PORT: u16 = 4;
    pub const SVC_FWMARK: u16 = 5;
    pub const SVC_SCHED_NAME: u16 = 6;
    pub const SVC_FLAGS: u16 = 7;
    pub const SVC_TIMEOUT: u16 = 8;
    pub const SVC_NETMASK: u16 = 9;
    pub const SVC_STATS: u16 = 10;
    pub const SVC_PE_NAME: u16 = 11;
    pub const SVC_STATS64: u16 = 12;

    pub const DEST_ADDR: u16 = 1;
    pub const DEST_PORT: u16 = 2;
    pub const DEST_FWD_METHOD: u16 = 3;
    pub const DEST_WEIGHT: u16 = 4;
    pub const DEST_U_THRESH: u16 = 5;
    pub const DEST_L_THRESH: u16 = 6;
    pub const DEST_ACTIVE_CONNS: u16 = 7;
    pub const DEST_INACT_CONNS: u16 = 8;
    pub const DEST_PERSIST_CONNS: u16 = 9;
    pub const DEST_STATS: u16 = 10;
    pub const DEST_ADDR_FAMILY: u16 = 11;
    pub const DEST_STATS64: u16 = 12;
    pub const DEST_TUN_TYPE: u16 = 13;
    pub const DEST_TUN_PORT: u16 = 14;
    pub const DEST_TUN_FLAGS: u16 = 15;

    pub const STATS_CONNS: u16 = 1;
    pub const STATS_INPKTS: u16 = 2;
    pub const STATS_OUTPKTS: u16 = 3;
    pub const STATS_INBYTES: u16 = 4;
    pub const STATS_OUTBYTES: u16 = 5;
    pub const STATS_CPS: u16 = 6;
    pub const STATS_INPPS: u16 = 7;
    pub const STATS_OUTPPS: u16 = 8;
    pub const STATS_INBPS: u16 = 9;
    pub const STATS_OUTBPS: u16 = 10;

    pub const INFO_VERSION: u16 = 1;
    pub const INFO_CONN_TAB_SIZE: u16 = 2;
}

/// One attribute to emit. `Nested` children are emitted inside it and the
/// `NLA_F_NESTED` bit is set (the kernel accepts nests with or without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    /// u8 value
    U8(u16, u8),
    /// u16 in host order
    U16(u16, u16),
    /// u16 in network order (ports)
    Be16(u16, u16),
    /// u32 in host order
    U32(u16, u32),
    /// raw bytes
    Bytes(u16, Vec<u8>),
    /// NUL-terminated string
    Str(u16, String),
    /// nested attributes
    Nested(u16, Vec<Attr>),
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match self {
            Attr::U8(..) => 1,
            Attr::U16(..) | Attr::Be16(..) => 2,
            Attr::U32(..) => 4,
            Attr::Bytes(_, b) => b.len(),
            Attr::Str(_, s) => s.len() + 1,
            Attr::Nested(_, v) => v.as_slice().buffer_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Attr::U8(k, _)
            | Attr::U16(k, _)
            | Attr::Be16(k, _)
            | Attr::U32(k, _)
            | Attr::Bytes(k, _)
            | Attr::Str(k, _) => *k,
            Attr::Nested(k, _) => *k | NLA_F_NESTED,
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            Attr::U8(_, v) => buf[0] = *v,
            Attr::U16(_, v) => buf.copy_from_slice(&v.to_ne_bytes()),
            Attr::Be16(_, v) => buf.copy_from_slice(&v.to_be_bytes()),
            Attr::U32(_, v) => buf.copy_from_slice(&v.to_ne_bytes()),
            Attr::Bytes(_, b) => buf.copy_from_slice(b),
            Attr::Str(_, s) => {
                buf[..s.len()].copy_from_slice(s.as_bytes());
                buf[s.len()] = 0;
            }
            Attr::Nested(_, v) => v.as_slice().emit(buf),
        }
    }
}

/// An IPVS request: the genl command and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsRequest {
    /// `IPVS_CMD_*`
    pub cmd: u8,
    /// top-level attributes
    pub attrs: Vec<Attr>,
    /// send as a dump (`NLM_F_DUMP`)
    pub dump: bool,
}

impl GenlFamily for IpvsRequest {
    fn family_name() -> &'static str {
        IPVS_GENL_NAME
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Emitable for IpvsRequest {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

/// A reply from the IPVS family: its command and the raw attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsReply {
    /// `IPVS_CMD_*` of the reply (NEW_SERVICE for service entries, ...)
    pub cmd: u8,
    /// the attribute bytes after the genl header
    pub attrs: Vec<u8>,
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsReply {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        Ok(IpvsReply {
            cmd: header.cmd,
            attrs: buf.to_vec(),
        })
    }
}

fn addr_bytes(a: &IpAddr) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    match a {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b.copy_from_slice(&v6.octets()),
    }
    b
}

/// The attributes identifying a service (what GET/DEL and the dest commands need).
pub fn service_key_attrs(key: &ServiceKey) -> Vec<Attr> {
    let mut v = vec![Attr::U16(attr::SVC_AF, key.family().af())];
    match key {
        ServiceKey::Fwmark { mark, .. } => v.push(Attr::U32(attr::SVC_FWMARK, *mark)),
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => {
            v.push(Attr::U16(attr::SVC_PROTOCOL, protocol.number()));
            v.push(Attr::Bytes(attr::SVC_ADDR, addr_bytes(addr)));
            v.push(Attr::Be16(attr::SVC_PORT, *port));
        }
    }
    v
}

/// All attributes of a service, in libipvs's order (what NEW/SET_SERVICE need).
pub fn service_attrs(s: &Service) -> Vec<Attr> {
    let mut v = service_key_attrs(&s.key);
    v.push(Attr::Str(
        attr::SVC_SCHED_NAME,
        s.scheduler.as_str().to_string(),
    ));
    if let Some(pe) = &s.pe_name {
        v.push(Attr::Str(attr::SVC_PE_NAME, pe.clone()));
    }
    let mut flags = Vec::with_capacity(8);
    flags.extend_from_slice(&s.kernel_flags().to_ne_bytes());
    flags.extend_from_slice(&u32::MAX.to_ne_bytes());
    v.push(Attr::Bytes(attr::SVC_FLAGS, flags));
    v.push(Attr::U32(attr::SVC_TIMEOUT, s.persistent.unwrap_or(0)));
    v.push(Attr::U32(attr::SVC_NETMASK, s.netmask.to_kernel()));
    v
}

/// The attributes identifying a destination (what DEL_DEST needs).
pub fn dest_key_attrs(d: &DestKey) -> Vec<Attr> {
    vec![
        Attr::U16(attr::DEST_ADDR_FAMILY, Family::of(&d.addr).af()),
        Attr::Bytes(attr::DEST_ADDR, addr_bytes(&d.addr)),
        Attr::Be16(attr::DEST_PORT, d.port),
    ]
}

/// All attributes of a destination, in libipvs's order (NEW/SET_DEST).
pub fn dest_attrs(d: &Dest) -> Vec<Attr> {
    let mut v = dest_key_attrs(&d.key());
    v.extend([
        Attr::U32(attr::DEST_FWD_METHOD, d.forward.to_kernel()),
        Attr::U32(attr::DEST_WEIGHT, d.weight),
        Attr::U8(attr::DEST_TUN_TYPE, d.tunnel.kind.to_kernel()),
        Attr::Be16(attr::DEST_TUN_PORT, d.tunnel.port),
        Attr::U16(attr::DEST_TUN_FLAGS, d.tunnel.flags),
        Attr::U32(attr::DEST_U_THRESH, d.upper_threshold),
        Attr::U32(attr::DEST_L_THRESH, d.lower_threshold),
    ]);
    v
}

fn req(cmd: u8, attrs: Vec<Attr>) -> IpvsRequest {
    IpvsRequest {
        cmd,
        attrs,
        dump: false,
    }
}

/// The request that performs `op`.
pub fn op_request(op: &Op) -> IpvsRequest {
    let svc = |a| Attr::Nested(attr::CMD_SERVICE, a);
    let dst = |a| Attr::Nested(attr::CMD_DEST, a);
    match op {
        Op::AddService(s) => req(cmd::NEW_SERVICE, vec![svc(service_attrs(s))]),
        Op::EditService(s) => req(cmd::SET_SERVICE, vec![svc(service_attrs(s))]),
        Op::DelService(k) => req(cmd::DEL_SERVICE, vec![svc(service_key_attrs(k))]),
        Op::AddDest(k, d) => req(
            cmd::NEW_DEST,
            vec![svc(service_key_attrs(k)), dst(dest_attrs(d))],
        ),
        Op::EditDest(k, d) => req(
            cmd::SET_DEST,
            vec![svc(service_key_attrs(k)), dst(dest_attrs(d))],
        ),
        Op::DelDest(k, d) => req(
            cmd::DEL_DEST,
            vec![svc(service_key_attrs(k)), dst(dest_key_attrs(d))],
        ),
    }
}

/// Dump every service.
pub fn get_services_request() -> IpvsRequest {
    IpvsRequest {
        cmd: cmd::GET_SERVICE,
        attrs: vec![],
        dump: true,
    }
}

/// Get one service.
pub fn get_service_request(key: &ServiceKey) -> IpvsRequest {
    req(
        cmd::GET_SERVICE,
        vec![Attr::Nested(attr::CMD_SERVICE, service_key_attrs(key))],
    )
}

/// Dump the destinations of a service.
pub fn get_dests_request(key: &ServiceKey) -> IpvsRequest {
    IpvsRequest {
        cmd: cmd::GET_DEST,
        attrs: vec![Attr::Nested(attr::CMD_SERVICE, service_key_attrs(key))],
        dump: true,
    }
}

/// Delete every service.
pub fn flush_request() -> IpvsRequest {
    req(cmd::FLUSH, vec![])
}

/// Zero the counters of one service, or of all.
pub fn zero_request(key: Option<&ServiceKey>) -> IpvsRequest {
    let attrs = key
        .map(|k| vec![Attr::Nested(attr::CMD_SERVICE, service_key_attrs(k))])
        .unwrap_or_default();
    req(cmd::ZERO, attrs)
}

/// Version and table size.
pub fn get_info_request() -> IpvsRequest {
    req(cmd::GET_INFO, vec![])
}

/// Serializes a generic netlink request for family `family` (0: the
/// payload's static id) into `out`: `NLM_F_REQUEST` plus `NLM_F_DUMP` for a
/// dump or `NLM_F_ACK` otherwise, sequence number `seq`, port id 0 (the
/// kernel fills it in).
pub fn genl_bytes<P>(payload: P, family: u16, seq: u32, dump: bool, out: &mut Vec<u8>)
where
    P: GenlFamily + Emitable + std::fmt::Debug,
{
    let mut g = GenlMessage::from_payload(payload);
    if family != 0 {
        g.set_resolved_family_id(family);
    }
    let mut m = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(g));
    m.header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { NLM_F_ACK };
    m.header.sequence_number = seq;
    m.finalize();
    out.clear();
    out.resize(m.buffer_len(), 0);
    m.serialize(out);
}

/// The bytes of an IPVS request as [`super::KernelIpvs`] sends it.
pub fn to_wire(req: &IpvsRequest, family: u16, seq: u32) -> Vec<u8> {
    let mut v = Vec::new();
    genl_bytes(req.clone(), family, seq, req.dump, &mut v);
    v
}

// ------------------------------------------------------------------ decoding

fn derr(msg: impl Into<String>) -> IpvsError {
    IpvsError::Decode(msg.into())
}

/// The attributes in `bytes` as (kind, value) pairs.
fn attrs(bytes: &[u8]) -> Result<Vec<(u16, &[u8])>, IpvsError> {
    NlasIterator::new(bytes)
        .map(|r| {
            r.map(|b: NlaBuffer<&[u8]>| {
                let (kind, len) = (b.kind(), b.length() as usize);
                (kind, &b.into_inner()[4..len])
            })
            .map_err(|e| derr(e.to_string()))
        })
        .collect()
}

fn find<'a>(v: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    v.iter().find(|(k, _)| *k == kind).map(|(_, b)| *b)
}

fn need<'a>(v: &[(u16, &'a [u8])], kind: u16, what: &str) -> Result<&'a [u8], IpvsError> {
    find(v, kind).ok_or_else(|| derr(format!("{what} missing")))
}

fn num(b: &[u8], what: &str) -> Result<u64, IpvsError> {
    Ok(match b.len() {
        1 => b[0] as u64,
        2 => u16::from_ne_bytes([b[0], b[1]]) as u64,
        4 => u32::from_ne_bytes(b.try_into().unwrap()) as u64,
        8 => u64::from_ne_bytes(b.try_into().unwrap()),
        n => return Err(derr(format!("{what}: bad length {n}"))),
    })
}

fn u32_of(b: &[u8], what: &str) -> Result<u32, IpvsError> {
    u32::try_from(num(b, what)?).map_err(|_| derr(format!("{what}: out of range")))
}

fn u16_of(b: &[u8], what: &str) -> Result<u16, IpvsError> {
    u16::try_from(num(b, what)?).map_err(|_| derr(format!("{what}: out of range")))
}

fn be16_of(b: &[u8], what: &str) -> Result<u16, IpvsError> {
    match b {
        [a, c] => Ok(u16::from_be_bytes([*a, *c])),
        _ => Err(derr(format!("{what}: bad length {}", b.len()))),
    }
}

fn addr_of(family: Family, b: &[u8], what: &str) -> Result<IpAddr, IpvsError> {
    match family {
        Family::Inet if b.len() >= 4 => Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        Family::Inet6 if b.len() >= 16 => Ok(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(&b[..16]).unwrap(),
        ))),
        _ => Err(derr(format!("{what}: {} bytes for {family:?}", b.len()))),
    }
}

fn string_of(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Decodes a nested `*_ATTR_STATS` or `*_ATTR_STATS64`.
pub fn decode_stats(bytes: &[u8]) -> Result<Stats, IpvsError> {
    let a = attrs(bytes)?;
    let get = |k| {
        find(&a, k)
            .map(|b| num(b, "stats"))
            .transpose()
            .map(|v| v.unwrap_or(0))
    };
    Ok(Stats {
        conns: get(attr::STATS_CONNS)?,
        inpkts: get(attr::STATS_INPKTS)?,
        outpkts: get(attr::STATS_OUTPKTS)?,
        inbytes: get(attr::STATS_INBYTES)?,
        outbytes: get(attr::STATS_OUTBYTES)?,
        cps: get(attr::STATS_CPS)?,
        inpps: get(attr::STATS_INPPS)?,
        outpps: get(attr::STATS_OUTPPS)?,
        inbps: get(attr::STATS_INBPS)?,
        outbps: get(attr::STATS_OUTBPS)?,
    })
}

fn nested<'a>(reply: &'a IpvsReply, kind: u16, what: &str) -> Result<&'a [u8], IpvsError> {
    let top = attrs(&reply.attrs)?;
    need(&top, kind, what)
}

/// Decodes the service of a GET_SERVICE reply.
pub fn decode_service(reply: &IpvsReply) -> Result<Service, IpvsError> {
    let a = attrs(nested(reply, attr::CMD_SERVICE, "IPVS_CMD_ATTR_SERVICE")?)?;
    let af = u16_of(need(&a, attr::SVC_AF, "service address family")?, "af")?;
    let family = Family::from_af(af).ok_or_else(|| derr(format!("unknown address family {af}")))?;
    let key = if let Some(m) = find(&a, attr::SVC_FWMARK) {
        ServiceKey::Fwmark {
            family,
            mark: u32_of(m, "fwmark")?,
        }
    } else {
        let p = u16_of(
            need(&a, attr::SVC_PROTOCOL, "service protocol")?,
            "protocol",
        )?;
        let protocol =
            Protocol::from_number(p).ok_or_else(|| derr(format!("unknown protocol {p}")))?;
        ServiceKey::Inet {
            protocol,
            addr: addr_of(
                family,
                need(&a, attr::SVC_ADDR, "service address")?,
                "address",
            )?,
            port: be16_of(need(&a, attr::SVC_PORT, "service port")?, "port")?,
        }
    };
    let flags_b = need(&a, attr::SVC_FLAGS, "service flags")?;
    if flags_b.len() < 8 {
        return Err(derr("service flags: short"));
    }
    let flags = u32::from_ne_bytes(flags_b[..4].try_into().unwrap())
        & u32::from_ne_bytes(flags_b[4..8].try_into().unwrap());
    let timeout = u32_of(need(&a, attr::SVC_TIMEOUT, "service timeout")?, "timeout")?;
    let netmask = u32_of(need(&a, attr::SVC_NETMASK, "service netmask")?, "netmask")?;
    let stats = match (find(&a, attr::SVC_STATS64), find(&a, attr::SVC_STATS)) {
        (Some(b), _) | (None, Some(b)) => decode_stats(b)?,
        (None, None) => Stats::default(),
    };
    Ok(Service {
        key,
        scheduler: Scheduler::from_kernel(string_of(need(&a, attr::SVC_SCHED_NAME, "scheduler")?)),
        persistent: (flags & IP_VS_SVC_F_PERSISTENT != 0).then_some(timeout),
        netmask: Netmask::from_kernel(family, netmask)?,
        one_packet: flags & IP_VS_SVC_F_ONEPACKET != 0,
        sched_flags: SchedFlags::from_kernel(flags),
        pe_name: find(&a, attr::SVC_PE_NAME)
            .map(string_of)
            .filter(|s| !s.is_empty()),
        stats,
    })
}

/// Decodes the destination of a GET_DEST reply (`family` is the service's,
/// used when the kernel sends no address family for the destination).
pub fn decode_dest(reply: &IpvsReply, family: Family) -> Result<Dest, IpvsError> {
    let a = attrs(nested(reply, attr::CMD_DEST, "IPVS_CMD_ATTR_DEST")?)?;
    let family = match find(&a, attr::DEST_ADDR_FAMILY) {
        Some(b) => {
            let af = u16_of(b, "dest af")?;
            Family::from_af(af).ok_or_else(|| derr(format!("unknown address family {af}")))?
        }
        None => family,
    };
    let n = |k, what| -> Result<u32, IpvsError> { u32_of(need(&a, k, what)?, what) };
    let stats = match (find(&a, attr::DEST_STATS64), find(&a, attr::DEST_STATS)) {
        (Some(b), _) | (None, Some(b)) => decode_stats(b)?,
        (None, None) => Stats::default(),
    };
    Ok(Dest {
        addr: addr_of(
            family,
            need(&a, attr::DEST_ADDR, "dest address")?,
            "dest address",
        )?,
        port: be16_of(need(&a, attr::DEST_PORT, "dest port")?, "dest port")?,
        forward: Forward::from_kernel(n(attr::DEST_FWD_METHOD, "forwarding method")?)?,
        weight: n(attr::DEST_WEIGHT, "weight")?,
        upper_threshold: n(attr::DEST_U_THRESH, "upper threshold")?,
        lower_threshold: n(attr::DEST_L_THRESH, "lower threshold")?,
        tunnel: Tunnel {
            kind: match find(&a, attr::DEST_TUN_TYPE) {
                Some(b) => TunnelType::from_kernel(num(b, "tunnel type")? as u8)?,
                None => TunnelType::Ipip,
            },
            port: find(&a, attr::DEST_TUN_PORT)
                .map(|b| be16_of(b, "tunnel port"))
                .transpose()?
                .unwrap_or(0),
            flags: find(&a, attr::DEST_TUN_FLAGS)
                .map(|b| u16_of(b, "tunnel flags"))
                .transpose()?
                .unwrap_or(0),
        },
        active_conns: n(attr::DEST_ACTIVE_CONNS, "active connections")?,
        inact_conns: n(attr::DEST_INACT_CONNS, "inactive connections")?,
        persist_conns: n(attr::DEST_PERSIST_CONNS, "persistent connections")?,
        stats,
    })
}

/// Decodes a GET_INFO reply.
pub fn decode_info(reply: &IpvsReply) -> Result<Info, IpvsError> {
    let a = attrs(&reply.attrs)?;
    Ok(Info {
        version: u32_of(need(&a, attr::INFO_VERSION, "IPVS version")?, "version")?,
        conn_tab_size: u32_of(need(&a, attr::INFO_CONN_TAB_SIZE, "table size")?, "size")?,
    })
}

// The expected bytes below spell host-order values little-endian (x86-64).
#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    fn wire(r: &IpvsRequest, family: u16, seq: u32) -> Vec<u8> {
        to_wire(r, family, seq)
    }

    // little helpers to write the expected bytes by hand from the ABI
    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + value.len()) as u16).to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }
    fn nest(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        nla(kind | 0x8000, &parts.concat())
    }
    fn nlmsg(ty: u16, flags: u16, seq: u32, cmd: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((16 + 4 + payload.len()) as u32).to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(&flags.to_le_bytes());
        v.extend_from_slice(&seq.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&[cmd, 1, 0, 0]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn golden_new_service_tcp_rr() {
        // ipvsadm -A -t 192.168.136.10:80 -s rr
        let s = Service::new(ServiceKey::tcp(Ipv4Addr::new(192, 168, 136, 10), 80))
            .with_scheduler("rr")
            .unwrap();
        let got = wire(&op_request(&Op::AddService(s)), 0x1c, 7);
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[192, 168, 136, 10]);
        let svc = nest(
            1,
            &[
                nla(1, &2u16.to_le_bytes()),               // AF_INET
                nla(2, &6u16.to_le_bytes()),               // IPPROTO_TCP
                nla(3, &addr),                             // nf_inet_addr
                nla(4, &[0, 80]),                          // port, network order
                nla(6, b"rr\0"),                           // scheduler
                nla(7, &[0, 0, 0, 0, 255, 255, 255, 255]), // ip_vs_flags {0, ~0}
                nla(8, &0u32.to_le_bytes()),               // timeout
                nla(9, &[255, 255, 255, 255]),             // netmask
            ],
        );
        let want = nlmsg(0x1c, 0x0005, 7, cmd::NEW_SERVICE, &svc);
        assert_eq!(got, want);
    }

    #[test]
    fn golden_fwmark6_persistent_service() {
        // ipvsadm -A -f 6 -6 -s lc -p 100 -M 64 -o
        let mut s = Service::new(ServiceKey::fwmark6(6))
            .with_scheduler("lc")
            .unwrap();
        s.persistent = Some(100);
        s.netmask = Netmask::V6(64);
        s.one_packet = true;
        let got = wire(&op_request(&Op::EditService(s)), 0x1c, 1);
        let svc = nest(
            1,
            &[
                nla(1, &10u16.to_le_bytes()),
                nla(5, &6u32.to_le_bytes()),
                nla(6, b"lc\0"),
                nla(7, &[5, 0, 0, 0, 255, 255, 255, 255]), // PERSISTENT | ONEPACKET
                nla(8, &100u32.to_le_bytes()),
                nla(9, &64u32.to_le_bytes()),
            ],
        );
        assert_eq!(got, nlmsg(0x1c, 5, 1, cmd::SET_SERVICE, &svc));
    }

    #[test]
    fn golden_new_dest_tunnel_and_del_dest_v6() {
        let k = ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80);
        let d = Dest::new(Ipv4Addr::new(10, 0, 0, 2), 8080, Forward::Tunnel, 3)
            .with_thresholds(100, 10);
        let got = wire(&op_request(&Op::AddDest(k, d)), 30, 2);
        let mut a1 = [0u8; 16];
        a1[..4].copy_from_slice(&[10, 0, 0, 1]);
        let mut a2 = [0u8; 16];
        a2[..4].copy_from_slice(&[10, 0, 0, 2]);
        let svc = nest(
            1,
            &[
                nla(1, &2u16.to_le_bytes()),
                nla(2, &6u16.to_le_bytes()),
                nla(3, &a1),
                nla(4, &[0, 80]),
            ],
        );
        let dst = nest(
            2,
            &[
                nla(11, &2u16.to_le_bytes()),
                nla(1, &a2),
                nla(2, &8080u16.to_be_bytes()),
                nla(3, &2u32.to_le_bytes()), // IP_VS_CONN_F_TUNNEL
                nla(4, &3u32.to_le_bytes()),
                nla(13, &[0]),
                nla(14, &[0, 0]),
                nla(15, &[0, 0]),
                nla(5, &100u32.to_le_bytes()),
                nla(6, &10u32.to_le_bytes()),
            ],
        );
        assert_eq!(got, nlmsg(30, 5, 2, cmd::NEW_DEST, &[svc, dst].concat()));

        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let r: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let k6 = ServiceKey::udp(v6, 53);
        let got = wire(
            &op_request(&Op::DelDest(
                k6,
                DestKey {
                    addr: r.into(),
                    port: 53,
                },
            )),
            30,
            3,
        );
        let svc = nest(
            1,
            &[
                nla(1, &10u16.to_le_bytes()),
                nla(2, &17u16.to_le_bytes()),
                nla(3, &v6.octets()),
                nla(4, &[0, 53]),
            ],
        );
        let dst = nest(
            2,
            &[
                nla(11, &10u16.to_le_bytes()),
                nla(1, &r.octets()),
                nla(2, &[0, 53]),
            ],
        );
        assert_eq!(got, nlmsg(30, 5, 3, cmd::DEL_DEST, &[svc, dst].concat()));
    }

    #[test]
    fn golden_flush_and_zero_all() {
        assert_eq!(
            wire(&flush_request(), 30, 9),
            nlmsg(30, 5, 9, cmd::FLUSH, &[])
        );
        assert_eq!(
            wire(&zero_request(None), 30, 9),
            nlmsg(30, 5, 9, cmd::ZERO, &[])
        );
    }

    /// A GET_SERVICE dump entry laid out the way the kernel's
    /// ip_vs_genl_fill_service builds it (unflagged nests, HASHED flag,
    /// 32- and 64-bit stats with PAD attributes).
    fn kernel_service_entry() -> Vec<u8> {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[10, 99, 0, 10]);
        let u64a = |k: u16, v: u64| [nla(11, &[]), nla(k, &v.to_le_bytes())].concat();
        let stats32 = [
            nla(1, &3u32.to_le_bytes()),
            nla(2, &10u32.to_le_bytes()),
            nla(3, &8u32.to_le_bytes()),
            u64a(4, 1000),
            u64a(5, 2000),
            nla(6, &1u32.to_le_bytes()),
            nla(7, &0u32.to_le_bytes()),
            nla(8, &0u32.to_le_bytes()),
            nla(9, &0u32.to_le_bytes()),
            nla(10, &0u32.to_le_bytes()),
        ];
        let stats64: Vec<Vec<u8>> = (1..=10u16)
            .map(|k| u64a(k, (k as u64) * 5_000_000_000))
            .collect();
        nla(
            1,
            &[
                nla(1, &2u16.to_le_bytes()),
                nla(2, &17u16.to_le_bytes()),
                nla(3, &addr),
                nla(4, &[0, 53]),
                nla(6, b"sh\0"),
                nla(7, &[0x1b, 0, 0, 0, 255, 255, 255, 255]), // PERSISTENT|HASHED|SCHED1|SCHED2
                nla(8, &360u32.to_le_bytes()),
                nla(9, &[255, 255, 255, 0]),
                nla(10, &stats32.concat()),
                nla(12, &stats64.concat()),
            ]
            .concat(),
        )
    }

    #[test]
    fn decode_kernel_service_entry() {
        let reply = IpvsReply {
            cmd: cmd::NEW_SERVICE,
            attrs: kernel_service_entry(),
        };
        let s = decode_service(&reply).unwrap();
        assert_eq!(s.key, ServiceKey::udp(Ipv4Addr::new(10, 99, 0, 10), 53));
        assert_eq!(s.scheduler.as_str(), "sh");
        assert_eq!(s.persistent, Some(360));
        assert_eq!(s.netmask, Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(
            s.sched_flags,
            SchedFlags::SH_FALLBACK.union(SchedFlags::SH_PORT)
        );
        assert!(!s.one_packet);
        assert_eq!(s.stats.conns, 5_000_000_000, "STATS64 wins over STATS");
        assert_eq!(s.stats.outbps, 50_000_000_000);
        // and what we would send back for it is the same service
        let mut back = s.clone();
        back.stats = Stats::default();
        let rt = IpvsReply {
            cmd: 1,
            attrs: op_request(&Op::AddService(back.clone())).attrs_bytes(),
        };
        assert!(decode_service(&rt).unwrap().same_config(&back));
    }

    #[test]
    fn decode_kernel_dest_entry() {
        let r: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let body = [
            nla(1, &r.octets()),
            nla(2, &[0x1f, 0x90]),
            nla(3, &0u32.to_le_bytes()),
            nla(4, &5u32.to_le_bytes()),
            nla(13, &[1]),
            nla(14, &[0x17, 0xc0]),
            nla(15, &1u16.to_le_bytes()),
            nla(5, &0u32.to_le_bytes()),
            nla(6, &0u32.to_le_bytes()),
            nla(7, &4u32.to_le_bytes()),
            nla(8, &2u32.to_le_bytes()),
            nla(9, &1u32.to_le_bytes()),
            nla(11, &10u16.to_le_bytes()),
        ]
        .concat();
        let reply = IpvsReply {
            cmd: cmd::NEW_DEST,
            attrs: nla(2, &body),
        };
        let d = decode_dest(&reply, Family::Inet6).unwrap();
        assert_eq!(d.addr, IpAddr::V6(r));
        assert_eq!(d.port, 8080);
        assert_eq!(d.forward, Forward::Masq);
        assert_eq!(d.weight, 5);
        assert_eq!(
            d.tunnel,
            Tunnel {
                kind: TunnelType::Gue,
                port: 6080,
                flags: Tunnel::CSUM
            }
        );
        assert_eq!((d.active_conns, d.inact_conns, d.persist_conns), (4, 2, 1));
    }

    #[test]
    fn decode_errors_are_clear() {
        let reply = IpvsReply {
            cmd: cmd::NEW_SERVICE,
            attrs: nla(1, &nla(1, &2u16.to_le_bytes())),
        };
        let e = decode_service(&reply).unwrap_err().to_string();
        assert!(e.contains("service protocol missing"), "{e}");
        let reply = IpvsReply {
            cmd: cmd::NEW_SERVICE,
            attrs: vec![8, 0, 1],
        };
        assert!(decode_service(&reply).is_err());
    }

    #[test]
    fn decode_info_reply() {
        let reply = IpvsReply {
            cmd: cmd::SET_INFO,
            attrs: [
                nla(1, &0x010201u32.to_le_bytes()),
                nla(2, &4096u32.to_le_bytes()),
            ]
            .concat(),
        };
        let i = decode_info(&reply).unwrap();
        assert_eq!(i.version_string(), "1.2.1");
        assert_eq!(i.conn_tab_size, 4096);
    }

    impl IpvsRequest {
        fn attrs_bytes(&self) -> Vec<u8> {
            let mut b = vec![0; self.buffer_len()];
            self.emit(&mut b);
            b
        }
    }
}
