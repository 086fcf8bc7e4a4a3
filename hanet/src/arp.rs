//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6),
//! sent on an `AF_PACKET` socket so that switches and neighbours learn
//! where a moved address lives now.
//!
//! The frame builders and the parser are pure codecs; [`announce`] does the
//! sending with the timing of heartbeat's `send_arp`: for each of `count`
//! rounds an ARP **request** then an ARP **reply**, `interval / 2` apart
//! (defaults 5 rounds, 200 ms: ten frames 100 ms apart). IPv6 sends `count`
//! unsolicited NAs (override flag, target link-layer option) to ff02::1,
//! `interval` apart, like `send_ua`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use crate::rtnl::{NetError, Result};

/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// Ethernet broadcast.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// Length of an Ethernet + ARP (IPv4 over Ethernet) frame, unpadded.
pub const ARP_FRAME_LEN: usize = 42;
/// Length of an Ethernet + IPv6 + ICMPv6 NA with a target link-layer option.
pub const NA_FRAME_LEN: usize = 14 + 40 + 32;

/// ARP opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    Request = 1,
    Reply = 2,
}

/// How many announcements and how far apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announce {
    /// IPv4: request+reply pairs; IPv6: neighbour advertisements.
    pub count: u32,
    /// IPv4: time between pairs (frames are `interval/2` apart); IPv6: between NAs.
    pub interval: Duration,
}

impl Default for Announce {
    /// send_arp's defaults as IPaddr2 runs it: 5 pairs, 200 ms.
    fn default() -> Self {
        Announce {
            count: 5,
            interval: Duration::from_millis(200),
        }
    }
}

/// A decoded Ethernet/IPv4 ARP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpFrame {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

/// The gratuitous ARP frame send_arp sends: broadcast, sender = target = `ip`;
/// the request has a zero target MAC, the reply our own.
pub fn garp_frame(op: ArpOp, mac: [u8; 6], ip: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
    let mut f = [0u8; ARP_FRAME_LEN];
    f[0..6].copy_from_slice(&BROADCAST_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // htype Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // ptype IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&(op as u16).to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    if op == ArpOp::Reply {
        f[32..38].copy_from_slice(&mac);
    }
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// Decodes an Ethernet frame holding an IPv4-over-Ethernet ARP packet
/// (trailing padding allowed). `None` for anything else.
pub fn parse_arp(frame: &[u8]) -> Option<ArpFrame> {
    if frame.len() < ARP_FRAME_LEN
        || frame[12..14] != ETH_P_ARP.to_be_bytes()
        || frame[14..16] != 1u16.to_be_bytes()
        || frame[16..18] != 0x0800u16.to_be_bytes()
        || frame[18] != 6
        || frame[19] != 4
    {
        return None;
    }
    let mac = |o: usize| -> [u8; 6] { frame[o..o + 6].try_into().unwrap() };
    let ip = |o: usize| Ipv4Addr::new(frame[o], frame[o + 1], frame[o + 2], frame[o + 3]);
    Some(ArpFrame {
        eth_dst: mac(0),
        eth_src: mac(6),
        op: u16::from_be_bytes([frame[20], frame[21]]),
        sender_mac: mac(22),
        sender_ip: ip(28),
        target_mac: mac(32),
        target_ip: ip(38),
    })
}

/// The Internet checksum (RFC 1071) of `data`, folded, not complemented.
fn ones_sum(data: &[u8], mut sum: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u32) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// ICMPv6 checksum over the IPv6 pseudo header and `icmp` (whose checksum
/// field must be zero, or hold the value to verify: then the result is 0).
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut pseudo = [0u8; 40];
    pseudo[0..16].copy_from_slice(&src.octets());
    pseudo[16..32].copy_from_slice(&dst.octets());
    pseudo[32..36].copy_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo[39] = 58; // next header ICMPv6
    let sum = ones_sum(icmp, ones_sum(&pseudo, 0));
    !(sum as u16)
}

/// An unsolicited neighbour advertisement for `ip` (RFC 4861 §7.2.6): from
/// `ip` to all-nodes ff02::1, hop limit 255, Override flag set, with a
/// target link-layer address option carrying `mac`.
pub fn unsolicited_na_frame(mac: [u8; 6], ip: Ipv6Addr) -> [u8; NA_FRAME_LEN] {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut f = [0u8; NA_FRAME_LEN];
    f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    let ip6 = &mut f[14..54];
    ip6[0] = 0x60;
    ip6[4..6].copy_from_slice(&32u16.to_be_bytes()); // payload length
    ip6[6] = 58; // ICMPv6
    ip6[7] = 255; // hop limit
    ip6[8..24].copy_from_slice(&ip.octets());
    ip6[24..40].copy_from_slice(&all_nodes.octets());
    let icmp = &mut f[54..86];
    icmp[0] = 136; // neighbour advertisement
    icmp[4] = 0x20; // Override
    icmp[8..24].copy_from_slice(&ip.octets());
    icmp[24] = 2; // option: target link-layer address
    icmp[25] = 1; // length in units of 8 bytes
    icmp[26..32].copy_from_slice(&mac);
    let ck = icmpv6_checksum(ip, all_nodes, icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    f
}

/// A raw `AF_PACKET` socket for sending link-layer frames.
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a send-only packet socket (protocol 0: receives nothing).
    pub fn open() -> Result<PacketSocket> {
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| NetError::io("open AF_PACKET socket", e.into()))?;
        Ok(PacketSocket { fd })
    }

    /// Sends one complete Ethernet frame (header included) out of `ifindex`.
    pub fn send(&self, ifindex: u32, frame: &[u8]) -> Result<()> {
        if frame.len() < 14 {
            return Err(NetError::Invalid(
                "frame shorter than an Ethernet header".into(),
            ));
        }
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = u16::from_be_bytes([frame[12], frame[13]]).to_be();
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[0..6]);
        // SAFETY: the buffer and the address are valid for the given lengths
        // for the duration of the call.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(NetError::io(
                format!("send frame on interface #{ifindex}"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

/// Announces `ip` on interface `ifindex` (hardware address `mac`): gratuitous
/// ARP request/reply pairs for IPv4, unsolicited NAs for IPv6, with the
/// timing of [`Announce`]. Blocks until the last frame is sent (about
/// `(count - 1/2) * interval` for IPv4).
pub fn announce(ifindex: u32, mac: [u8; 6], ip: IpAddr, how: &Announce) -> Result<()> {
    let sock = PacketSocket::open()?;
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let gap = match ip {
        IpAddr::V4(v4) => {
            frames.push(garp_frame(ArpOp::Request, mac, v4).to_vec());
            frames.push(garp_frame(ArpOp::Reply, mac, v4).to_vec());
            how.interval / 2
        }
        IpAddr::V6(v6) => {
            frames.push(unsolicited_na_frame(mac, v6).to_vec());
            how.interval
        }
    };
    let total = how.count as usize * frames.len();
    for i in 0..total {
        if i > 0 {
            std::thread::sleep(gap);
        }
        sock.send(ifindex, &frames[i % frames.len()])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0xb2, 0x61, 0x50, 0xa6, 0x7d, 0x33];

    #[test]
    fn garp_request_and_reply_bytes() {
        let ip: Ipv4Addr = "10.99.0.70".parse().unwrap();
        let req = garp_frame(ArpOp::Request, MAC, ip);
        #[rustfmt::skip]
        let want_req: [u8; 42] = [
            0xff,0xff,0xff,0xff,0xff,0xff, 0xb2,0x61,0x50,0xa6,0x7d,0x33, 0x08,0x06,
            0x00,0x01, 0x08,0x00, 6, 4, 0x00,0x01,
            0xb2,0x61,0x50,0xa6,0x7d,0x33, 10,99,0,70,
            0,0,0,0,0,0, 10,99,0,70,
        ];
        assert_eq!(req, want_req);
        let rep = garp_frame(ArpOp::Reply, MAC, ip);
        assert_eq!(rep[20..22], [0, 2]);
        assert_eq!(rep[32..38], MAC);
        let p = parse_arp(&rep).unwrap();
        assert_eq!(p.op, 2);
        assert_eq!(p.sender_ip, ip);
        assert_eq!(p.target_ip, ip);
        assert_eq!(p.target_mac, MAC);
        assert_eq!(p.eth_dst, BROADCAST_MAC);
        // padding to the 60-byte Ethernet minimum is accepted
        let mut padded = rep.to_vec();
        padded.resize(60, 0);
        assert_eq!(parse_arp(&padded), Some(p));
        assert_eq!(parse_arp(&rep[..41]), None);
        let mut ipv6_ether = rep;
        ipv6_ether[12] = 0x86;
        assert_eq!(parse_arp(&ipv6_ether), None);
    }

    #[test]
    fn na_frame_layout_and_checksum() {
        let ip: Ipv6Addr = "fd00:99::50".parse().unwrap();
        let f = unsolicited_na_frame(MAC, ip);
        assert_eq!(f[0..6], [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(f[12..14], [0x86, 0xdd]);
        assert_eq!(f[14] >> 4, 6);
        assert_eq!(f[20], 58);
        assert_eq!(f[21], 255);
        assert_eq!(f[54], 136);
        assert_eq!(f[58], 0x20);
        assert_eq!(f[62..78], ip.octets());
        assert_eq!(f[78..80], [2, 1]);
        assert_eq!(f[80..86], MAC);
        // A correct checksum makes the sum over the whole message zero.
        let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
        assert_eq!(icmpv6_checksum(ip, all_nodes, &f[54..86]), 0);
    }

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 §3 example: 0001 f203 f4f5 f6f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_sum(&data, 0), 0xddf2);
        // odd length: the last byte is the high half of a word
        assert_eq!(ones_sum(&[0x12], 0), 0x1200);
    }
}
