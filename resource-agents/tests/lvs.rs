//! The lvs agent binary in network namespaces: the director ⇄ real-server
//! switch (sysctls and VIP moves), v1/LSB/OCF calls, the configuration
//! file, bad parameters, and the seed's chain `lvs IPaddr` start/stop.

mod common;

use common::{addrs, pair, sysctl, Agents};

fn lo(ns: &lab::Netns) -> String {
    ns.ip(&["-o", "addr", "show", "dev", "lo"])
}

#[test]
fn director_and_real_server_roles_dr() {
    let (a, _b) = pair();
    let ag = Agents::new();
    let p = [("vip", "10.99.0.10,10.99.0.11"), ("mode", "dr")];
    // a fresh node is neither: not forwarding, no VIP copies
    ag.ocf(&a, "lvs", "monitor", &p).rc(7);
    ag.ocf(&a, "lvs", "stop", &p).rc(0);
    let l = lo(&a);
    assert!(l.contains("inet 10.99.0.10/32 brd 10.99.0.10"), "{l}");
    assert!(l.contains("inet 10.99.0.11/32 brd 10.99.0.11"), "{l}");
    for (k, v) in [
        ("net.ipv4.conf.lo.arp_ignore", "1"),
        ("net.ipv4.conf.lo.arp_announce", "2"),
        ("net.ipv4.conf.all.arp_ignore", "1"),
        ("net.ipv4.conf.all.arp_announce", "2"),
    ] {
        assert_eq!(sysctl(&a, k), v, "{k}");
    }
    let st = ag.ocf(&a, "lvs", "status", &p);
    st.rc(7);
    assert_eq!(st.stdout.trim(), "stopped (real server)");
    ag.ocf(&a, "lvs", "start", &p).rc(0);
    ag.ocf(&a, "lvs", "start", &p).rc(0); // idempotent
    assert!(!lo(&a).contains("10.99.0.1"), "{}", lo(&a));
    for (k, v) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.lo.arp_ignore", "0"),
        ("net.ipv4.conf.lo.arp_announce", "0"),
        ("net.ipv4.conf.all.arp_ignore", "0"),
        ("net.ipv4.conf.all.arp_announce", "0"),
    ] {
        assert_eq!(sysctl(&a, k), v, "{k}");
    }
    let st = ag.ocf(&a, "lvs", "status", &p);
    st.rc(0);
    assert_eq!(st.stdout.trim(), "running (director)");
    ag.ocf(&a, "lvs", "monitor", &p).rc(0);
    ag.ocf(&a, "lvs", "stop", &p).rc(0);
    ag.ocf(&a, "lvs", "stop", &p).rc(0); // idempotent
    ag.ocf(&a, "lvs", "monitor", &p).rc(7);
    // the real server keeps forwarding on (as the seed's tunl script sets it)
    assert_eq!(sysctl(&a, "net.ipv4.ip_forward"), "1");
}

#[test]
fn seed_chain_lvs_then_ipaddr_and_back() {
    let (a, _b) = pair();
    let ag = Agents::new();
    // boot state of every node: a real server
    ag.run(&a, "lvs", &["10.99.0.10", "dr", "stop"], &[]).rc(0);
    // heartbeat takes the group: status then start, left to right
    let st = ag.run(&a, "lvs", &["10.99.0.10", "dr", "status"], &[]);
    assert!(!st.stdout.contains("running"), "{st:?}");
    ag.run(&a, "lvs", &["10.99.0.10", "dr", "start"], &[]).rc(0);
    ag.run(&a, "IPaddr", &["10.99.0.10/24/va", "start"], &[])
        .rc(0);
    let all = addrs(&a);
    assert!(
        all.contains("va    inet 10.99.0.10/24 brd 10.99.0.255"),
        "{all}"
    );
    assert!(!lo(&a).contains("10.99.0.10"), "{}", lo(&a));
    let st = ag.run(&a, "lvs", &["10.99.0.10", "dr", "status"], &[]);
    assert!(st.stdout.contains("running"), "{st:?}");
    // heartbeat gives the group up: stop, right to left
    ag.run(&a, "IPaddr", &["10.99.0.10/24/va", "stop"], &[])
        .rc(0);
    ag.run(&a, "lvs", &["10.99.0.10", "dr", "stop"], &[]).rc(0);
    let all = addrs(&a);
    assert!(!all.contains("va    inet 10.99.0.10"), "{all}");
    assert!(lo(&a).contains("inet 10.99.0.10/32"), "{}", lo(&a));
    assert_eq!(sysctl(&a, "net.ipv4.conf.all.arp_ignore"), "1");
}

#[test]
fn configuration_file_for_v1_and_lsb() {
    let (a, _b) = pair();
    let ag = Agents::new();
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("lvs");
    std::fs::write(&cf, "# seed\nVIP=\"10.99.0.10\"\nMODE=dr\n").unwrap();
    let cfs = cf.to_str().unwrap();
    let env = [("OCF_RESKEY_config", cfs)];
    // LSB: verb only, parameters from the file
    ag.run(&a, "lvs", &["stop"], &env).rc(0);
    assert!(lo(&a).contains("inet 10.99.0.10/32"), "{}", lo(&a));
    let st = ag.run(&a, "lvs", &["status"], &env);
    st.rc(3);
    assert_eq!(st.stdout.trim(), "stopped (real server)");
    ag.run(&a, "lvs", &["start"], &env).rc(0);
    ag.run(&a, "lvs", &["status"], &env).rc(0);
    // arguments override the file
    ag.run(&a, "lvs", &["10.99.0.12", "stop"], &env).rc(0);
    assert!(lo(&a).contains("inet 10.99.0.12/32"), "{}", lo(&a));
    assert!(!lo(&a).contains("10.99.0.10/32"), "{}", lo(&a));
    // a bad line: one-line reason naming file and line, nothing changed
    std::fs::write(&cf, "VIP=10.99.0.10\nMODE=dr\nWEIGHT=3\n").unwrap();
    let before = (lo(&a), sysctl(&a, "net.ipv4.conf.all.arp_ignore"));
    let r = ag.run(&a, "lvs", &["start"], &env);
    r.rc(6);
    assert_eq!(
        r.stderr.trim(),
        format!("lvs: ERROR: {cfs}:3: unknown setting \"WEIGHT\" (expected VIP, MODE or DEVICE)")
    );
    let r = ag.run(&a, "lvs", &["status"], &env);
    r.rc(4);
    assert!(r.stdout.starts_with("stopped"), "{r:?}");
    assert_eq!((lo(&a), sysctl(&a, "net.ipv4.conf.all.arp_ignore")), before);
    // OCF mode names a missing file it was told to read
    let r = ag.ocf(&a, "lvs", "validate-all", &[("config", "/nonexistent/lvs")]);
    r.rc(6);
    assert!(
        r.stderr
            .contains("ocf-exit-reason:config file /nonexistent/lvs does not exist"),
        "{r:?}"
    );
}

#[test]
fn bad_parameters_change_nothing() {
    let (a, _b) = pair();
    let ag = Agents::new();
    let before = (addrs(&a), sysctl(&a, "net.ipv4.ip_forward"));
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "the vip parameter is mandatory"),
        (
            &[("vip", "10.99.0.300")],
            "vip: \"10.99.0.300\" is not an IPv4 address",
        ),
        (
            &[("vip", "10.99.0.10"), ("mode", "nat")],
            "mode=\"nat\": expected tun or dr",
        ),
        (
            &[("vip", "10.99.0.10"), ("device", "x/y")],
            "device=\"x/y\"",
        ),
    ];
    for (p, reason) in cases {
        for action in ["start", "stop", "monitor", "validate-all"] {
            let r = ag.ocf(&a, "lvs", action, p);
            r.rc(6);
            assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
            assert!(r.stderr.starts_with("ocf-exit-reason:"), "{r:?}");
            assert!(r.stderr.contains(reason), "{p:?} {r:?}");
        }
    }
    let r = ag.run(&a, "lvs", &["10.99.0.10", "dr", "extra", "start"], &[]);
    r.rc(2);
    assert_eq!((addrs(&a), sysctl(&a, "net.ipv4.ip_forward")), before);
}

#[test]
fn tun_mode_uses_tunl0_or_reports_missing_ipip() {
    let (a, _b) = pair();
    let ag = Agents::new();
    let p = [("vip", "10.99.0.10"), ("mode", "tun")];
    let ipip = std::path::Path::new("/sys/module/ipip").exists();
    let r = ag.ocf(&a, "lvs", "stop", &p);
    if ipip {
        r.rc(0);
        let t = a.ip(&["-o", "addr", "show", "dev", "tunl0"]);
        assert!(t.contains("inet 10.99.0.10/32"), "{t}");
        assert_eq!(sysctl(&a, "net.ipv4.conf.tunl0.rp_filter"), "0");
    } else {
        // this kernel has no ipip: not installed, and nothing was changed
        r.rc(5);
        assert!(
            r.stderr
                .contains("ocf-exit-reason:create ipip tunnel tunl0"),
            "{r:?}"
        );
        assert_eq!(sysctl(&a, "net.ipv4.conf.all.arp_ignore"), "0");
        assert!(!addrs(&a).contains("10.99.0.10"));
    }
    // becoming the director needs no tunnel device
    ag.ocf(&a, "lvs", "start", &p).rc(0);
    ag.ocf(&a, "lvs", "monitor", &p).rc(0);
}
