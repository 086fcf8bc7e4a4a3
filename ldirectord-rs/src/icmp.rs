//! ICMP echo for `checktype=ping`: one shared socket per address family,
//! an unprivileged ICMP datagram socket where `net.ipv4.ping_group_range`
//! allows it, else a raw socket (root). Replies are matched to checks by
//! (source address, sequence number).

use std::io;
use std::net::{IpAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    recvfrom, sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
    SockaddrIn, SockaddrIn6, SockaddrStorage,
};

/// Payload bytes after the 8-byte ICMP header (Net::Ping's 64-byte default
/// minus the header).
pub const PAYLOAD: usize = 56;

/// The Internet checksum.
pub fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in b.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request (type 8, or 128 for ICMPv6; the kernel computes the
/// ICMPv6 checksum).
pub fn echo_request(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 8 + PAYLOAD];
    p[0] = if v6 { 128 } else { 8 };
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// `(ident, seq)` of an echo reply. `raw4` buffers start with the IPv4
/// header.
pub fn parse_reply(v6: bool, raw4: bool, buf: &[u8]) -> Option<(u16, u16)> {
    let icmp = if raw4 {
        let ihl = (*buf.first()? & 0x0f) as usize * 4;
        buf.get(ihl..)?
    } else {
        buf
    };
    if icmp.len() < 8 {
        return None;
    }
    let reply_type = if v6 { 129 } else { 0 };
    if icmp[0] != reply_type || icmp[1] != 0 {
        return None;
    }
    Some((
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

/// One ICMP socket.
#[derive(Debug)]
pub struct IcmpSocket {
    pub fd: OwnedFd,
    pub v6: bool,
    /// a raw socket (replies of every process; filter on `ident`)
    pub raw: bool,
    pub ident: u16,
}

impl IcmpSocket {
    /// Opens a datagram socket, or a raw one if datagram ping sockets are
    /// not allowed for our group.
    pub fn open(v6: bool) -> io::Result<IcmpSocket> {
        let (af, proto) = if v6 {
            (AddressFamily::Inet6, SockProtocol::IcmpV6)
        } else {
            (AddressFamily::Inet, SockProtocol::Icmp)
        };
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        let ident = (std::process::id() & 0xffff) as u16;
        match socket(af, SockType::Datagram, flags, proto) {
            Ok(fd) => Ok(IcmpSocket {
                fd,
                v6,
                raw: false,
                ident,
            }),
            Err(e1) => match socket(af, SockType::Raw, flags, proto) {
                Ok(fd) => Ok(IcmpSocket {
                    fd,
                    v6,
                    raw: true,
                    ident,
                }),
                Err(e2) => Err(io::Error::other(format!(
                    "cannot open an ICMP socket: datagram: {e1} (see net.ipv4.ping_group_range), raw: {e2}"
                ))),
            },
        }
    }

    pub fn send(&self, dst: IpAddr, seq: u16) -> io::Result<()> {
        let p = echo_request(self.v6, self.ident, seq);
        let fd = self.fd.as_raw_fd();
        let r = match dst {
            IpAddr::V4(a) => sendto(
                fd,
                &p,
                &SockaddrIn::from(SocketAddrV4::new(a, 0)),
                MsgFlags::empty(),
            ),
            IpAddr::V6(a) => sendto(
                fd,
                &p,
                &SockaddrIn6::from(SocketAddrV6::new(a, 0, 0, 0)),
                MsgFlags::empty(),
            ),
        };
        r.map(drop).map_err(io::Error::from)
    }

    /// The next reply waiting: `Ok(None)` when none is left; replies that
    /// are not ours are skipped.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(IpAddr, u16)>> {
        loop {
            let (n, from) = match recvfrom::<SockaddrStorage>(self.fd.as_raw_fd(), buf) {
                Ok(x) => x,
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let src: Option<IpAddr> = from.and_then(|s| {
                if let Some(a) = s.as_sockaddr_in() {
                    Some(IpAddr::V4(a.ip()))
                } else {
                    s.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip()))
                }
            });
            let Some(src) = src else { continue };
            let Some((ident, seq)) = parse_reply(self.v6, self.raw && !self.v6, &buf[..n]) else {
                continue;
            };
            if self.raw && ident != self.ident {
                continue;
            }
            return Ok(Some((src, seq)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_request_verifies() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(p[0], 8);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to 0");
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        // RFC 1071 example
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

    #[test]
    fn replies_with_and_without_ip_header() {
        let mut reply = echo_request(false, 0x1234, 9);
        reply[0] = 0;
        assert_eq!(parse_reply(false, false, &reply), Some((0x1234, 9)));
        let mut ip = vec![0x45u8; 1];
        ip.resize(20, 0);
        ip.extend_from_slice(&reply);
        assert_eq!(parse_reply(false, true, &ip), Some((0x1234, 9)));
        // our own request looped back is not a reply
        assert_eq!(parse_reply(false, false, &echo_request(false, 1, 1)), None);
        let mut r6 = echo_request(true, 5, 6);
        r6[0] = 129;
        assert_eq!(parse_reply(true, false, &r6), Some((5, 6)));
    }
}
