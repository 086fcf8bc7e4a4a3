//! hanet's address, link, route, ARP/NA, sysctl and real-server code against
//! the real kernel, inside network namespaces created (and removed) here.
//! The `ip` / `sysctl` tools and the peer namespace's kernel are the judges.
//! Needs root: run via `sudo ./lab/test` (panics with a message otherwise).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use hanet::addr::AddrSpec;
use hanet::arp::{self, Announce, ArpOp};
use hanet::realserver::{RealServer, Role, RsMode};
use hanet::sysctl::{self, Conf, ConfKey};
use hanet::Rtnl;
use lab::Netns;

/// Runs `f` on a thread that has entered `ns`'s network namespace (sockets
/// and /proc/sys/net opened there belong to it).
fn in_ns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{}", ns.name());
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Two namespaces joined by a veth pair: `va` 10.99.0.1/24 in `a`,
/// `vb` 10.99.0.2/24 in `b`.
fn pair() -> (Netns, Netns) {
    let a = Netns::new("hna");
    let b = Netns::new("hnb");
    lab::veth(&a, "va", "10.99.0.1/24", &b, "vb", "10.99.0.2/24");
    (a, b)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn addresses_with_prefix_broadcast_label() {
    let (a, _b) = pair();
    let out = in_ns(&a, || {
        let mut rt = Rtnl::open().unwrap();
        let va = rt.require_link("va").unwrap();
        let spec = AddrSpec {
            broadcast: Some("10.99.0.255".parse().unwrap()),
            label: Some("va:vip".into()),
            ..AddrSpec::new(ip("10.99.0.50"), 24)
        };
        rt.add_address(va.index, &spec).unwrap();
        let again = rt.add_address(va.index, &spec).unwrap_err();
        assert_eq!(again.errno(), Some(libc::EEXIST), "{again}");
        let listed = rt.find_address(ip("10.99.0.50")).unwrap().unwrap();
        assert_eq!(listed.index, va.index);
        assert_eq!(listed.prefix, 24);
        assert_eq!(listed.broadcast, Some("10.99.0.255".parse().unwrap()));
        assert_eq!(listed.label.as_deref(), Some("va:vip"));
        assert!(listed
            .flags
            .contains(netlink_packet_route::address::AddressFlags::Secondary));
        let mut v6 = AddrSpec::new(ip("fd00:99::50"), 64);
        v6.nodad = true;
        rt.add_address(va.index, &v6).unwrap();
        let l6 = rt.find_address(ip("fd00:99::50")).unwrap().unwrap();
        assert_eq!((l6.prefix, l6.tentative()), (64, false));
        let on_va = rt.addresses(Some(va.index)).unwrap();
        assert!(on_va.iter().any(|a| a.addr == ip("10.99.0.1")));
        assert!(on_va.iter().all(|a| a.index == va.index));
        va.index
    });
    // iproute2 sees the same thing
    let shown = a.ip(&["-o", "addr", "show", "dev", "va"]);
    assert!(
        shown.contains("inet 10.99.0.50/24 brd 10.99.0.255 scope global secondary va:vip"),
        "{shown}"
    );
    assert!(shown.contains("inet6 fd00:99::50/64"), "{shown}");
    in_ns(&a, move || {
        let mut rt = Rtnl::open().unwrap();
        rt.del_address(out, ip("10.99.0.50"), 24).unwrap();
        rt.del_address(out, ip("fd00:99::50"), 64).unwrap();
        let gone = rt.del_address(out, ip("10.99.0.50"), 24).unwrap_err();
        assert_eq!(gone.errno(), Some(libc::EADDRNOTAVAIL), "{gone}");
        assert!(rt.find_address(ip("10.99.0.50")).unwrap().is_none());
        // bad input is refused before reaching the kernel
        assert!(rt
            .add_address(out, &AddrSpec::new(ip("10.99.0.51"), 33))
            .is_err());
    });
    let shown = a.ip(&["-o", "addr", "show", "dev", "va"]);
    assert!(!shown.contains("10.99.0.50"), "{shown}");
    assert!(!shown.contains("fd00:99::50"), "{shown}");
}

#[test]
fn links_lookup_and_up_down() {
    let (a, _b) = pair();
    let shown = a.ip(&["-o", "link", "show", "dev", "va"]);
    let (index, mac) = in_ns(&a, || {
        let mut rt = Rtnl::open().unwrap();
        let va = rt.require_link("va").unwrap();
        assert!(va.up && !va.loopback && !va.noarp);
        assert_eq!(va.kind.as_deref(), Some("veth"));
        assert_eq!(rt.link_by_index(va.index).unwrap().unwrap().name, "va");
        assert!(rt.link_by_name("nosuch0").unwrap().is_none());
        assert!(rt.link_by_index(999_999).unwrap().is_none());
        let err = rt.require_link("nosuch0").unwrap_err().to_string();
        assert!(err.contains("nosuch0"), "{err}");
        assert!(rt.link_by_name("bad/name").is_err());
        let lo = rt.require_link("lo").unwrap();
        assert!(lo.loopback);
        rt.set_link_up(va.index, false).unwrap();
        assert!(!rt.require_link("va").unwrap().up);
        let all = rt.links().unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        (va.index, va.mac.unwrap())
    });
    assert!(shown.starts_with(&format!("{index}: va@")), "{shown}");
    assert!(
        shown.contains(&format!("link/ether {}", hanet::link::format_mac(&mac))),
        "{shown}"
    );
    let down = a.ip(&["-o", "link", "show", "dev", "va"]);
    assert!(down.contains("state DOWN"), "{down}");
    in_ns(&a, move || {
        Rtnl::open().unwrap().set_link_up(index, true).unwrap();
    });
    let up = a.ip(&["-o", "link", "show", "dev", "va"]);
    assert!(up.contains("<BROADCAST,MULTICAST,UP,LOWER_UP>"), "{up}");
}

#[test]
fn interface_selection_by_longest_link_route() {
    let (a, b) = pair();
    lab::veth(&a, "vc", "10.98.0.1/16", &b, "vd", "10.98.0.2/16");
    a.ip(&[
        "route",
        "add",
        "10.99.0.128/25",
        "dev",
        "vc",
        "scope",
        "link",
    ]);
    a.ip(&["route", "add", "172.16.0.0/12", "via", "10.98.0.2"]);
    a.ip(&["addr", "add", "fd00:99::1/64", "dev", "va", "nodad"]);
    in_ns(&a, || {
        let mut rt = Rtnl::open().unwrap();
        let pick =
            |rt: &mut Rtnl, s: &str, nic: Option<&str>| rt.find_interface(ip(s), nic).unwrap();
        let c = pick(&mut rt, "10.99.0.7", None).unwrap();
        assert_eq!((c.name.as_str(), c.prefix), ("va", 24));
        assert_eq!(c.broadcast, Some("10.99.0.255".parse().unwrap()));
        let c = pick(&mut rt, "10.99.0.200", None).unwrap();
        assert_eq!((c.name.as_str(), c.prefix), ("vc", 25));
        assert_eq!(c.broadcast, Some("10.99.0.255".parse().unwrap()));
        let c = pick(&mut rt, "10.99.0.200", Some("va")).unwrap();
        assert_eq!((c.name.as_str(), c.prefix), ("va", 24));
        let c = pick(&mut rt, "10.98.3.4", None).unwrap();
        assert_eq!((c.name.as_str(), c.prefix), ("vc", 16));
        assert_eq!(c.broadcast, Some("10.98.255.255".parse().unwrap()));
        // only a gateway route: not on-link
        assert!(pick(&mut rt, "172.16.1.1", None).is_none());
        assert!(pick(&mut rt, "172.31.9.9", None).is_none());
        assert!(pick(&mut rt, "10.98.3.4", Some("va")).is_none());
        let c = pick(&mut rt, "127.0.0.2", None).unwrap();
        assert_eq!((c.name.as_str(), c.prefix), ("lo", 8));
        let c = pick(&mut rt, "fd00:99::50", None).unwrap();
        assert_eq!((c.name.as_str(), c.prefix, c.broadcast), ("va", 64, None));
        let err = rt
            .find_interface(ip("10.99.0.7"), Some("nosuch0"))
            .unwrap_err();
        assert!(err.to_string().contains("nosuch0"), "{err}");
    });
}

/// An AF_PACKET socket bound to one interface and EtherType, for capturing
/// what arrives on the peer end.
struct Capture {
    fd: OwnedFd,
}

impl Capture {
    fn open(ifname: &str, ethertype: u16) -> Capture {
        let proto = ethertype.to_be() as i32;
        // SAFETY: plain socket/bind/setsockopt calls on a descriptor we own.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto);
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            let fd = OwnedFd::from_raw_fd(fd);
            let index = nix::net::if_::if_nametoindex(ifname).unwrap();
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = ethertype.to_be();
            sll.sll_ifindex = index as i32;
            let rc = libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            };
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            Capture { fd }
        }
    }

    /// Frames (with their arrival time) until `n` matched `keep` or `timeout`.
    fn frames(
        &self,
        n: usize,
        timeout: Duration,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Vec<(Instant, Vec<u8>)> {
        let end = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while got.len() < n && Instant::now() < end {
            // SAFETY: buf is valid for its length.
            let r =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if r > 0 && keep(&buf[..r as usize]) {
                got.push((Instant::now(), buf[..r as usize].to_vec()));
            }
        }
        got
    }
}

#[test]
fn gratuitous_arp_frames_arrive_on_the_peer() {
    let (a, b) = pair();
    let vip: Ipv4Addr = "10.99.0.70".parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let catcher = {
        let bname = b.name().to_string();
        let path = format!("/run/netns/{bname}");
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let cap = Capture::open("vb", arp::ETH_P_ARP);
            tx.send(()).unwrap();
            cap.frames(6, Duration::from_secs(5), |f| {
                arp::parse_arp(f).is_some_and(|p| p.sender_ip == vip)
            })
        })
    };
    rx.recv().unwrap();
    let mac = in_ns(&a, move || {
        let mut rt = Rtnl::open().unwrap();
        let va = rt.require_link("va").unwrap();
        let mac = va.mac.unwrap();
        let how = Announce {
            count: 3,
            interval: Duration::from_millis(100),
        };
        let t0 = Instant::now();
        arp::announce(va.index, mac, IpAddr::V4(vip), &how).unwrap();
        // 6 frames, 50 ms apart: 250 ms of sleeps
        assert!(
            t0.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t0.elapsed()
        );
        mac
    });
    let frames = catcher.join().unwrap();
    assert_eq!(frames.len(), 6, "captured {frames:?}");
    for (i, (_, f)) in frames.iter().enumerate() {
        let op = if i % 2 == 0 {
            ArpOp::Request
        } else {
            ArpOp::Reply
        };
        assert_eq!(&f[..42], &arp::garp_frame(op, mac, vip)[..], "frame {i}");
        let p = arp::parse_arp(f).unwrap();
        assert_eq!(p.op, op as u16);
        assert_eq!(p.eth_dst, arp::BROADCAST_MAC);
        assert_eq!((p.eth_src, p.sender_mac), (mac, mac));
        assert_eq!((p.sender_ip, p.target_ip), (vip, vip));
        let want_tha = if op == ArpOp::Reply { mac } else { [0; 6] };
        assert_eq!(p.target_mac, want_tha);
    }
}

#[test]
fn our_arp_frames_equal_heartbeat_send_arp() {
    lab::ensure_packages(&["heartbeat"]);
    let (a, b) = pair();
    let vip: Ipv4Addr = "10.99.0.71".parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let path = format!("/run/netns/{}", b.name());
    let catcher = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let cap = Capture::open("vb", arp::ETH_P_ARP);
        tx.send(()).unwrap();
        cap.frames(2, Duration::from_secs(5), |f| {
            arp::parse_arp(f).is_some_and(|p| p.sender_ip == vip)
        })
    });
    rx.recv().unwrap();
    let out = lab::run(a.cmd("/usr/libexec/heartbeat/send_arp").args([
        "-i",
        "100",
        "-r",
        "1",
        "va",
        "10.99.0.71",
        "auto",
        "not_used",
        "not_used",
    ]));
    assert!(out.status.success(), "send_arp: {out:?}");
    let frames = catcher.join().unwrap();
    assert_eq!(frames.len(), 2, "send_arp frames: {frames:?}");
    let mac = in_ns(&a, || {
        Rtnl::open()
            .unwrap()
            .require_link("va")
            .unwrap()
            .mac
            .unwrap()
    });
    assert_eq!(
        &frames[0].1[..42],
        &arp::garp_frame(ArpOp::Request, mac, vip)[..]
    );
    assert_eq!(
        &frames[1].1[..42],
        &arp::garp_frame(ArpOp::Reply, mac, vip)[..]
    );
}

fn snmp6(counter: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/net/snmp6").unwrap();
    text.lines()
        .find_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some(counter)).then(|| it.next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {counter} in snmp6"))
}

#[test]
fn unsolicited_na_is_accepted_by_the_peer_kernel() {
    let (a, b) = pair();
    let vip: Ipv6Addr = "fd00:99::60".parse().unwrap();
    a.ip(&["addr", "add", "fd00:99::60/64", "dev", "va", "nodad"]);
    // IPv6 on the peer starts once linkwatch reports the carrier (up to ~1 s):
    // until its ff00::/8 route exists, multicast is dropped as "no route".
    lab::wait_until(Duration::from_secs(5), || {
        b.ip(&["-6", "route", "show", "table", "local"])
            .contains("ff00::/8 dev vb")
            .then_some(())
    })
    .expect("IPv6 multicast route on vb");
    let before = in_ns(&b, || {
        (
            snmp6("Icmp6InNeighborAdvertisements"),
            snmp6("Icmp6InCsumErrors"),
        )
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let path = format!("/run/netns/{}", b.name());
    let catcher = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let cap = Capture::open("vb", arp::ETH_P_IPV6);
        tx.send(()).unwrap();
        let frames = cap.frames(2, Duration::from_secs(5), |f| {
            f.len() >= 78 && f[20] == 58 && f[54] == 136 && f[62..78] == vip.octets()
        });
        let after = (
            snmp6("Icmp6InNeighborAdvertisements"),
            snmp6("Icmp6InCsumErrors"),
        );
        (frames, after)
    });
    rx.recv().unwrap();
    let mac = in_ns(&a, move || {
        let mut rt = Rtnl::open().unwrap();
        let va = rt.require_link("va").unwrap();
        let how = Announce {
            count: 2,
            interval: Duration::from_millis(50),
        };
        arp::announce(va.index, va.mac.unwrap(), IpAddr::V6(vip), &how).unwrap();
        va.mac.unwrap()
    });
    let (frames, after) = catcher.join().unwrap();
    assert_eq!(frames.len(), 2, "{frames:?}");
    for (_, f) in &frames {
        assert_eq!(&f[..], &arp::unsolicited_na_frame(mac, vip)[..]);
    }
    // the peer's IPv6 stack parsed both as valid NAs (checksum included)
    assert!(
        after.0 >= before.0 + 2,
        "NA counter {before:?} -> {after:?}\n{}",
        b.sh("cat /proc/net/snmp6 | grep -v ' 0$'")
    );
    assert_eq!(after.1, before.1, "checksum errors");
}

#[test]
fn sysctls_read_and_write_per_namespace() {
    let (a, _b) = pair();
    in_ns(&a, || {
        assert!(!sysctl::ip_forward().unwrap());
        sysctl::set_ip_forward(true).unwrap();
        assert!(sysctl::ip_forward().unwrap());
        sysctl::set(Conf::Dev("va"), ConfKey::ArpIgnore, 1).unwrap();
        assert!(!sysctl::arp_hidden("va").unwrap());
        // the kernel takes the maximum of conf/all and conf/va
        sysctl::set(Conf::All, ConfKey::ArpAnnounce, 2).unwrap();
        assert!(sysctl::arp_hidden("va").unwrap());
        sysctl::set(Conf::Default, ConfKey::RpFilter, 2).unwrap();
        assert_eq!(sysctl::get(Conf::Dev("va"), ConfKey::ArpIgnore).unwrap(), 1);
        sysctl::hide_arp("va").unwrap();
        assert!(sysctl::arp_hidden("va").unwrap());
        assert!(sysctl::get(Conf::Dev("nosuch0"), ConfKey::RpFilter).is_err());
    });
    let judge = |key: &str| a.sh(&format!("sysctl -n {key}")).trim().to_string();
    assert_eq!(judge("net.ipv4.ip_forward"), "1");
    assert_eq!(judge("net.ipv4.conf.va.arp_ignore"), "1");
    assert_eq!(judge("net.ipv4.conf.va.arp_announce"), "2");
    assert_eq!(judge("net.ipv4.conf.all.arp_ignore"), "1");
    assert_eq!(judge("net.ipv4.conf.all.arp_announce"), "2");
    assert_eq!(judge("net.ipv4.conf.default.rp_filter"), "2");
    // the host (this test's own namespace) is untouched
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/conf/default/rp_filter")
            .unwrap()
            .trim(),
        lab::run_ok(
            std::process::Command::new("sysctl").args(["-n", "net.ipv4.conf.default.rp_filter"])
        )
        .trim()
    );
    in_ns(&a, || {
        sysctl::unhide_arp("va").unwrap();
        assert!(!sysctl::arp_hidden("va").unwrap());
    });
    assert_eq!(judge("net.ipv4.conf.all.arp_ignore"), "0");
    assert_eq!(judge("net.ipv4.conf.va.arp_announce"), "0");
}

#[test]
fn real_server_and_director_roles_dr_mode() {
    let (a, _b) = pair();
    let rs = RealServer::new(
        RsMode::Dr,
        vec!["10.99.0.10".parse().unwrap(), "10.99.0.11".parse().unwrap()],
    );
    let r2 = rs.clone();
    in_ns(&a, move || {
        let mut rt = Rtnl::open().unwrap();
        assert!(matches!(r2.role(&mut rt).unwrap(), Role::Mixed(w) if w.contains("ip_forward=0")));
        r2.become_real_server(&mut rt).unwrap();
        r2.become_real_server(&mut rt).unwrap(); // idempotent
        assert_eq!(r2.role(&mut rt).unwrap(), Role::RealServer);
    });
    let lo = a.ip(&["-o", "addr", "show", "dev", "lo"]);
    assert!(lo.contains("inet 10.99.0.10/32 brd 10.99.0.10"), "{lo}");
    assert!(lo.contains("inet 10.99.0.11/32"), "{lo}");
    assert_eq!(a.sh("sysctl -n net.ipv4.conf.lo.arp_ignore").trim(), "1");
    assert_eq!(a.sh("sysctl -n net.ipv4.conf.all.arp_announce").trim(), "2");
    let r3 = rs.clone();
    in_ns(&a, move || {
        let mut rt = Rtnl::open().unwrap();
        r3.become_director(&mut rt).unwrap();
        r3.become_director(&mut rt).unwrap(); // idempotent
        assert_eq!(r3.role(&mut rt).unwrap(), Role::Director);
        // a VIP copy put back by hand makes the role mixed
    });
    let lo = a.ip(&["-o", "addr", "show", "dev", "lo"]);
    assert!(!lo.contains("10.99.0.1"), "{lo}");
    assert!(lo.contains("inet 127.0.0.1/8"), "{lo}");
    assert_eq!(a.sh("sysctl -n net.ipv4.ip_forward").trim(), "1");
    assert_eq!(a.sh("sysctl -n net.ipv4.conf.all.arp_ignore").trim(), "0");
    a.ip(&["addr", "add", "10.99.0.10/32", "dev", "lo"]);
    in_ns(&a, move || {
        let mut rt = Rtnl::open().unwrap();
        let role = rs.role(&mut rt).unwrap();
        assert!(
            matches!(&role, Role::Mixed(w) if w.contains("10.99.0.10 on lo")),
            "{role}"
        );
    });
}

#[test]
fn tun_mode_creates_tunl0_or_says_why_not() {
    let (a, _b) = pair();
    let ipip = std::path::Path::new("/sys/module/ipip").exists();
    let rs = RealServer::new(RsMode::Tun, vec!["10.99.0.10".parse().unwrap()]);
    let res = in_ns(&a, move || {
        let mut rt = Rtnl::open().unwrap();
        rs.become_real_server(&mut rt).map_err(|e| e.to_string())
    });
    if ipip {
        res.unwrap();
        let t = a.ip(&["-o", "addr", "show", "dev", "tunl0"]);
        assert!(t.contains("inet 10.99.0.10/32"), "{t}");
    } else {
        let err = res.unwrap_err();
        assert!(err.contains("tunl0") && err.contains("ipip"), "{err}");
        // nothing was changed
        assert_eq!(a.sh("sysctl -n net.ipv4.conf.all.arp_ignore").trim(), "0");
    }
}
