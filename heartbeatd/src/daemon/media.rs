//! Heartbeat media: how messages leave and reach this node.
//!
//! A [`Medium`] turns a [`Message`] into its wire form and sends it, and
//! turns what arrives into verified messages (or errors naming the sender).
//! The core never sees a medium: it only knows link indexes. The UDP media
//! of 3.0.6 are here; the serial medium (classic frames on a tty,
//! [`super::serial`]) implements the same trait.
//!
//! UDP details follow 3.0.6: `bcast IF` sends to IF's broadcast address from
//! an ephemeral port of a separate socket (SO_BROADCAST, SO_DONTROUTE,
//! SO_BINDTODEVICE) and receives on `0.0.0.0:udpport` bound to IF with
//! SO_REUSEADDR, so the node hears its own broadcasts back; `ucast IF PEER`
//! sends the same bytes to PEER (a PEER that is one of our own addresses
//! makes the line a no-op, so one ha.cf fits both nodes); `mcast` joins the
//! group on IF and ignores `udpport`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use crate::auth::Keyring;
use crate::config::MediumKind;
use crate::wire::{self, Message, WireError};

/// A message (or the reason it was rejected) and who sent it.
pub struct Received {
    pub result: Result<Message, WireError>,
    pub from: String,
}

/// One heartbeat medium.
pub trait Medium {
    /// The link name (`hb0`, `/dev/ttyS0`).
    fn link_name(&self) -> &str;
    /// For logs: `bcast hb0`.
    fn describe(&self) -> String;
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()>;
    /// Encodes `msg` for this medium and sends it.
    fn send(&mut self, msg: &Message, keys: &Keyring) -> io::Result<()>;
    /// Reads everything that is waiting.
    fn recv(&mut self, keys: &Keyring, out: &mut Vec<Received>);
}

/// Opens the medium of a configuration line. `Ok(None)` means the line
/// does not apply to this node (ucast to one of our own addresses).
pub fn open(kind: &MediumKind) -> Result<Option<Box<dyn Medium>>, String> {
    match kind {
        MediumKind::Bcast { iface, port } => Ok(Some(Box::new(
            Udp::bcast(iface, *port).map_err(|e| format!("bcast {iface}: {e}"))?,
        ))),
        MediumKind::Ucast { iface, peer, port } => {
            if local_addresses()?.contains(&IpAddr::V4(*peer)) {
                return Ok(None);
            }
            Ok(Some(Box::new(
                Udp::ucast(iface, IpAddr::V4(*peer), *port)
                    .map_err(|e| format!("ucast {iface} {peer}: {e}"))?,
            )))
        }
        MediumKind::Ucast6 { iface, peer, port } => {
            if local_addresses()?.contains(&IpAddr::V6(*peer)) {
                return Ok(None);
            }
            Ok(Some(Box::new(
                Udp::ucast(iface, IpAddr::V6(*peer), *port)
                    .map_err(|e| format!("ucast6 {iface} {peer}: {e}"))?,
            )))
        }
        MediumKind::Mcast {
            iface,
            group,
            port,
            ttl,
            loopback,
        } => Ok(Some(Box::new(
            Udp::mcast(iface, IpAddr::V4(*group), *port, u32::from(*ttl), *loopback)
                .map_err(|e| format!("mcast {iface} {group}: {e}"))?,
        ))),
        MediumKind::Mcast6 {
            iface,
            group,
            port,
            hops,
            loopback,
        } => Ok(Some(Box::new(
            Udp::mcast(
                iface,
                IpAddr::V6(*group),
                *port,
                u32::from(*hops),
                *loopback,
            )
            .map_err(|e| format!("mcast6 {iface} {group}: {e}"))?,
        ))),
        MediumKind::Serial { device, baud } => Ok(Some(Box::new(
            super::serial::Serial::open(device, *baud)
                .map_err(|e| format!("serial {}: {e}", device.display()))?,
        ))),
    }
}

/// Every address configured on this host (to recognise our own ucast peer).
fn local_addresses() -> Result<Vec<IpAddr>, String> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| format!("getifaddrs: {e}"))?;
    Ok(addrs
        .filter_map(|a| a.address)
        .filter_map(|s| {
            if let Some(v4) = s.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect())
}

/// IF's IPv4 address and broadcast address.
fn ipv4_of(iface: &str) -> io::Result<(Ipv4Addr, Option<Ipv4Addr>)> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    for a in addrs {
        if a.interface_name != iface {
            continue;
        }
        if let Some(v4) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            let brd = a
                .broadcast
                .as_ref()
                .and_then(|s| s.as_sockaddr_in())
                .map(|b| b.ip());
            return Ok((v4.ip(), brd));
        }
    }
    Err(io::Error::other(format!(
        "interface {iface} has no IPv4 address"
    )))
}

fn ifindex(iface: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(iface)
        .map_err(|e| io::Error::other(format!("no interface {iface}: {e}")))
}

fn setopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: v points to a live T of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn udp_socket(v6: bool) -> io::Result<OwnedFd> {
    let dom = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            dom,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind_to_device(fd: RawFd, iface: &str) -> io::Result<()> {
    let name = std::ffi::CString::new(iface).map_err(io::Error::other)?;
    // SAFETY: name is NUL-terminated; its length includes the NUL.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.as_bytes_with_nul().len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::other(format!("bind to device {iface}: {e}")));
    }
    Ok(())
}

fn into_mio(fd: OwnedFd, bind: SocketAddr) -> io::Result<UdpSocket> {
    let std = std::net::UdpSocket::from(fd);
    let sa = nix::sys::socket::SockaddrStorage::from(bind);
    nix::sys::socket::bind(std.as_raw_fd(), &sa)
        .map_err(|e| io::Error::other(format!("bind {bind}: {e}")))?;
    Ok(UdpSocket::from_std(std))
}

/// A UDP medium (bcast, ucast, mcast; IPv4 or IPv6).
pub struct Udp {
    kind: &'static str,
    iface: String,
    rx: UdpSocket,
    tx: UdpSocket,
    dest: SocketAddr,
    buf: Vec<u8>,
}

impl Udp {
    fn receiver(iface: &str, v6: bool, port: u16) -> io::Result<UdpSocket> {
        let fd = udp_socket(v6)?;
        setopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, &1i32)?;
        bind_to_device(fd.as_raw_fd(), iface)?;
        if v6 {
            setopt(fd.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &1i32)?;
        }
        let any: IpAddr = if v6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        into_mio(fd, SocketAddr::new(any, port))
    }

    fn sender(iface: &str, v6: bool) -> io::Result<UdpSocket> {
        let fd = udp_socket(v6)?;
        bind_to_device(fd.as_raw_fd(), iface)?;
        let any: IpAddr = if v6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        into_mio(fd, SocketAddr::new(any, 0))
    }

    pub fn bcast(iface: &str, port: u16) -> io::Result<Udp> {
        let (_, brd) = ipv4_of(iface)?;
        let brd = brd.ok_or_else(|| {
            io::Error::other(format!("interface {iface} has no broadcast address"))
        })?;
        let tx = Udp::sender(iface, false)?;
        setopt(tx.as_raw_fd(), libc::SOL_SOCKET, libc::SO_BROADCAST, &1i32)?;
        setopt(tx.as_raw_fd(), libc::SOL_SOCKET, libc::SO_DONTROUTE, &1i32)?;
        Ok(Udp {
            kind: "bcast",
            iface: iface.to_owned(),
            rx: Udp::receiver(iface, false, port)?,
            tx,
            dest: SocketAddr::new(IpAddr::V4(brd), port),
            buf: vec![0; 65536],
        })
    }

    pub fn ucast(iface: &str, peer: IpAddr, port: u16) -> io::Result<Udp> {
        ifindex(iface)?;
        let v6 = peer.is_ipv6();
        let tx = Udp::sender(iface, v6)?;
        if !v6 {
            // IPTOS_LOWDELAY, as 3.0.6.
            setopt(tx.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TOS, &0x10i32)?;
        }
        Ok(Udp {
            kind: if v6 { "ucast6" } else { "ucast" },
            iface: iface.to_owned(),
            rx: Udp::receiver(iface, v6, port)?,
            tx,
            dest: SocketAddr::new(peer, port),
            buf: vec![0; 65536],
        })
    }

    pub fn mcast(iface: &str, group: IpAddr, port: u16, ttl: u32, lp: bool) -> io::Result<Udp> {
        let idx = ifindex(iface)?;
        let rx;
        let tx;
        match group {
            IpAddr::V4(g) => {
                let (addr, _) = ipv4_of(iface)?;
                rx = Udp::receiver(iface, false, port)?;
                let mreq = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr {
                        s_addr: u32::from(g).to_be(),
                    },
                    imr_address: libc::in_addr {
                        s_addr: u32::from(addr).to_be(),
                    },
                    imr_ifindex: idx as libc::c_int,
                };
                setopt(
                    rx.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_ADD_MEMBERSHIP,
                    &mreq,
                )?;
                tx = Udp::sender(iface, false)?;
                setopt(
                    tx.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_MULTICAST_IF,
                    &mreq,
                )?;
                setopt(
                    tx.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_MULTICAST_TTL,
                    &(ttl as i32),
                )?;
                setopt(
                    tx.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_MULTICAST_LOOP,
                    &(lp as i32),
                )?;
            }
            IpAddr::V6(g) => {
                rx = Udp::receiver(iface, true, port)?;
                let mreq = libc::ipv6_mreq {
                    ipv6mr_multiaddr: libc::in6_addr {
                        s6_addr: g.octets(),
                    },
                    ipv6mr_interface: idx,
                };
                setopt(
                    rx.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_ADD_MEMBERSHIP,
                    &mreq,
                )?;
                tx = Udp::sender(iface, true)?;
                setopt(
                    tx.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MULTICAST_IF,
                    &(idx as i32),
                )?;
                setopt(
                    tx.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MULTICAST_HOPS,
                    &(ttl as i32),
                )?;
                setopt(
                    tx.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MULTICAST_LOOP,
                    &(lp as i32),
                )?;
            }
        }
        Ok(Udp {
            kind: if group.is_ipv6() { "mcast6" } else { "mcast" },
            iface: iface.to_owned(),
            rx,
            tx,
            dest: SocketAddr::new(group, port),
            buf: vec![0; 65536],
        })
    }
}

impl Medium for Udp {
    fn link_name(&self) -> &str {
        &self.iface
    }

    fn describe(&self) -> String {
        format!("{} {}", self.kind, self.iface)
    }

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.rx, token, Interest::READABLE)
    }

    fn send(&mut self, msg: &Message, keys: &Keyring) -> io::Result<()> {
        let bytes = msg.encode_netstring(keys);
        self.tx.send_to(&bytes, self.dest).map(|_| ())
    }

    fn recv(&mut self, keys: &Keyring, out: &mut Vec<Received>) {
        loop {
            match self.rx.recv_from(&mut self.buf) {
                Ok((n, from)) => out.push(Received {
                    result: wire::decode_verified(&self.buf[..n], keys),
                    from: from.to_string(),
                }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }
}
