//! The IPaddr agent binary in network namespaces: heartbeat v1, LSB and OCF
//! calls, interface selection, ownership, ARP/NA on the wire, bad
//! parameters. `ip` and the peer namespace are the judges.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use common::{addrs, capture_in, mac_of, pair, Agents};
use hanet::arp::{self, ArpOp};

#[test]
fn heartbeat_v1_start_status_stop() {
    let (a, _b) = pair();
    let ag = Agents::new();
    let arg = "10.99.0.51/24/va";
    let st = ag.run(&a, "IPaddr", &[arg, "status"], &[]);
    st.rc(3);
    assert_eq!(st.stdout.trim(), "stopped (10.99.0.51 not on va)");
    let logfile = ag.dir.path().join("ha-log");
    let log_env = [("HA_LOGFILE", logfile.to_str().unwrap())];
    ag.run(&a, "IPaddr", &[arg, "start"], &log_env).rc(0);
    let logged = std::fs::read_to_string(&logfile).unwrap();
    assert!(
        logged.contains("IPaddr[")
            && logged.contains(
                "]: INFO: Adding inet address 10.99.0.51/24 brd 10.99.0.255 to device va"
            ),
        "{logged}"
    );
    assert!(
        addrs(&a).contains("inet 10.99.0.51/24 brd 10.99.0.255 scope global secondary va"),
        "{}",
        addrs(&a)
    );
    let st = ag.run(&a, "IPaddr", &[arg, "status"], &[]);
    st.rc(0);
    // heartbeat's ResourceManager: stdout contains "running", not "not running"
    assert_eq!(st.stdout.trim(), "running (10.99.0.51/24 on va)");
    ag.run(&a, "IPaddr", &[arg, "start"], &[]).rc(0); // idempotent
    ag.run(&a, "IPaddr", &[arg, "stop"], &[]).rc(0);
    assert!(!addrs(&a).contains("10.99.0.51"), "{}", addrs(&a));
    ag.run(&a, "IPaddr", &[arg, "stop"], &[]).rc(0); // idempotent
    assert_eq!(ag.state_files(), Vec::<String>::new());
    // label and broadcast in the v1 argument
    let arg = "10.99.0.52/24/va:web/10.99.0.255";
    ag.run(&a, "IPaddr", &[arg, "start"], &[]).rc(0);
    assert!(
        addrs(&a).contains("inet 10.99.0.52/24 brd 10.99.0.255 scope global secondary va:web"),
        "{}",
        addrs(&a)
    );
    ag.run(&a, "IPaddr", &[arg, "stop"], &[]).rc(0);
    // heartbeat's own environment without arguments before the verb is v1 too
    let r = ag.run(
        &a,
        "IPaddr",
        &["status"],
        &[
            ("HA_CURHOST", "loadbalancer"),
            ("OCF_RESKEY_ip", "10.99.0.52"),
        ],
    );
    assert_eq!(r.stdout.trim(), "stopped (10.99.0.52 not on va)");
}

#[test]
fn lsb_verbs_and_exit_codes() {
    let (a, _b) = pair();
    let ag = Agents::new();
    let env = [
        ("OCF_RESKEY_ip", "10.99.0.55"),
        ("OCF_RESKEY_cidr_netmask", "24"),
    ];
    ag.run(&a, "IPaddr", &["status"], &env).rc(3);
    ag.run(&a, "IPaddr", &["start"], &env).rc(0);
    ag.run(&a, "IPaddr", &["status"], &env).rc(0);
    ag.run(&a, "IPaddr", &["restart"], &env).rc(0);
    ag.run(&a, "IPaddr", &["try-restart"], &env).rc(0);
    assert!(addrs(&a).contains("inet 10.99.0.55/24"), "{}", addrs(&a));
    ag.run(&a, "IPaddr", &["reload"], &env).rc(3); // unimplemented
    ag.run(&a, "IPaddr", &["stop"], &env).rc(0);
    ag.run(&a, "IPaddr", &["status"], &env).rc(3);
    let bad = ag.run(&a, "IPaddr", &["frobnicate"], &env);
    bad.rc(2);
    assert!(bad.stderr.contains("usage: IPaddr"), "{bad:?}");
    let u = ag.run(&a, "IPaddr", &["usage"], &env);
    u.rc(0);
    assert!(u.stdout.starts_with("usage: IPaddr"), "{u:?}");
    // no parameters at all: not configured, status unknown
    ag.run(&a, "IPaddr", &["start"], &[]).rc(6);
    ag.run(&a, "IPaddr", &["status"], &[]).rc(4);
}

#[test]
fn interface_selected_by_longest_link_route() {
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
    let ag = Agents::new();
    ag.ocf(&a, "IPaddr", "start", &[("ip", "10.99.0.61")]).rc(0);
    ag.ocf(&a, "IPaddr", "start", &[("ip", "10.99.0.200")])
        .rc(0);
    let va = a.ip(&["-o", "addr", "show", "dev", "va"]);
    let vc = a.ip(&["-o", "addr", "show", "dev", "vc"]);
    assert!(va.contains("inet 10.99.0.61/24 brd 10.99.0.255"), "{va}");
    assert!(vc.contains("inet 10.99.0.200/25 brd 10.99.0.255"), "{vc}");
    ag.ocf(&a, "IPaddr", "monitor", &[("ip", "10.99.0.200")])
        .rc(0);
    // no route for it: start fails (nothing added), monitor/probe say stopped, stop succeeds
    let before = addrs(&a);
    let r = ag.ocf(&a, "IPaddr", "start", &[("ip", "172.31.9.9")]);
    r.rc(1);
    assert!(
        r.stderr.contains("ocf-exit-reason:[findif] failed"),
        "{r:?}"
    );
    ag.ocf(&a, "IPaddr", "validate-all", &[("ip", "172.31.9.9")])
        .rc(6);
    ag.ocf(&a, "IPaddr", "monitor", &[("ip", "172.31.9.9")])
        .rc(7);
    ag.ocf(&a, "IPaddr", "stop", &[("ip", "172.31.9.9")]).rc(0);
    assert_eq!(addrs(&a), before);
    for ip in ["10.99.0.61", "10.99.0.200"] {
        ag.ocf(&a, "IPaddr", "stop", &[("ip", ip)]).rc(0);
        ag.ocf(&a, "IPaddr", "monitor", &[("ip", ip)]).rc(7);
    }
    assert!(!addrs(&a).contains("10.99.0.61") && !addrs(&a).contains("10.99.0.200"));
}

#[test]
fn never_removes_an_address_it_did_not_add() {
    let (a, _b) = pair();
    let ag = Agents::new();
    a.ip(&["addr", "add", "10.99.0.53/24", "dev", "va"]);
    let p = [("ip", "10.99.0.53"), ("nic", "va"), ("cidr_netmask", "24")];
    ag.ocf(&a, "IPaddr", "monitor", &p).rc(0);
    ag.ocf(&a, "IPaddr", "start", &p).rc(0);
    let r = ag.ocf(&a, "IPaddr", "stop", &p);
    r.rc(0);
    assert!(r.stderr.contains("was not added by this agent"), "{r:?}");
    assert!(addrs(&a).contains("inet 10.99.0.53/24"), "{}", addrs(&a));
    ag.ocf(&a, "IPaddr", "monitor", &p).rc(0);
    assert_eq!(ag.state_files(), Vec::<String>::new());
}

/// The interface goes away under a running VIP (a USB NIC unplugged, a
/// bond deleted): stop still succeeds from the agent's record, so the
/// group can move; a probe on a node without the interface finds the
/// resource not running (7), where a full monitor reports the error (6).
#[test]
fn stop_and_probe_survive_a_vanished_interface() {
    let (a, _b) = pair();
    let ag = Agents::new();
    a.ip(&["link", "add", "vx", "type", "veth", "peer", "name", "vy"]);
    a.ip(&["link", "set", "vx", "up"]);
    a.ip(&["link", "set", "vy", "up"]);
    let p = [("ip", "10.98.0.10"), ("nic", "vx"), ("cidr_netmask", "24")];
    ag.ocf(&a, "IPaddr", "start", &p).rc(0);
    assert!(addrs(&a).contains("inet 10.98.0.10/24"), "{}", addrs(&a));
    assert!(
        ag.state_files().contains(&"IPaddr-10.98.0.10".to_string()),
        "{:?}",
        ag.state_files()
    );
    a.ip(&["link", "del", "vx"]);
    ag.ocf(&a, "IPaddr", "monitor", &p).rc(6);
    let probe = ag.run(
        &a,
        "IPaddr",
        &["monitor"],
        &[
            ("OCF_ROOT", "/usr/lib/ocf"),
            ("OCF_RESOURCE_INSTANCE", "test"),
            ("OCF_RESKEY_ip", "10.98.0.10"),
            ("OCF_RESKEY_nic", "vx"),
            ("OCF_RESKEY_cidr_netmask", "24"),
            ("OCF_RESKEY_CRM_meta_interval", "0"),
        ],
    );
    probe.rc(7);
    let r = ag.ocf(&a, "IPaddr", "stop", &p);
    r.rc(0);
    assert!(
        r.stderr.contains("no such interface") && r.stderr.contains("own record"),
        "{r:?}"
    );
    assert_eq!(ag.state_files(), Vec::<String>::new());
    ag.ocf(&a, "IPaddr", "stop", &p).rc(0);
    // v1 too (heartbeatd's stop of the group)
    let r = ag.run(&a, "IPaddr", &["10.98.0.10/24/vx", "stop"], &[]);
    r.rc(0);
}

#[test]
fn bad_parameters_change_nothing() {
    let (a, _b) = pair();
    let ag = Agents::new();
    let before = addrs(&a);
    type Case<'a> = (&'a [(&'a str, &'a str)], i32, &'a str);
    let cases: &[Case] = &[
        (&[], 6, "the ip parameter is mandatory"),
        (
            &[("ip", "10.99.0.300")],
            6,
            "not a valid IPv4 or IPv6 address",
        ),
        (
            &[("ip", "10.99.0.56"), ("cidr_netmask", "33")],
            6,
            "cidr_netmask=\"33\"",
        ),
        (
            &[("ip", "10.99.0.56"), ("nic", "nosuch0")],
            6,
            "Invalid interface name [nosuch0]",
        ),
        (
            &[("ip", "10.99.0.56"), ("broadcast", "10.99.0")],
            6,
            "broadcast=\"10.99.0\"",
        ),
        (
            &[("ip", "10.99.0.56"), ("arp_count", "many")],
            6,
            "arp_count",
        ),
        (
            &[
                ("ip", "10.99.0.56"),
                ("nic", "va"),
                ("iflabel", "a-very-long-one"),
            ],
            6,
            "iflabel",
        ),
    ];
    for (params, rc, reason) in cases {
        for action in ["start", "validate-all", "stop"] {
            let r = ag.ocf(&a, "IPaddr", action, params);
            let lines: Vec<&str> = r.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "one line on stderr: {r:?}");
            assert!(lines[0].contains(reason), "{params:?}: {r:?}");
            assert!(r.stdout.is_empty(), "{r:?}");
            // stop needs only a valid address: it releases what the
            // agent recorded (here nothing) and warns about the rest
            let ip_ok = params.iter().any(|(k, v)| *k == "ip" && *v == "10.99.0.56");
            if action == "stop" && ip_ok {
                r.rc(0);
                assert!(lines[0].contains("WARNING") && lines[0].contains("own record"));
            } else {
                r.rc(*rc);
                assert!(lines[0].starts_with("ocf-exit-reason:"), "{r:?}");
            }
        }
    }
    // v1 mode: a malformed argument is ERR_ARGS, reason on one line
    let r = ag.run(
        &a,
        "IPaddr",
        &["10.99.0.56/24/va/10.99.0.255/x", "start"],
        &[],
    );
    r.rc(2);
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(r.stderr.starts_with("IPaddr: ERROR: bad argument"), "{r:?}");
    ag.run(&a, "IPaddr", &["a", "b", "start"], &[]).rc(2);
    assert_eq!(addrs(&a), before);
    assert_eq!(ag.state_files(), Vec::<String>::new());
    // not root: insufficient privileges, nothing changed
    let mut c = a.cmd("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(ag.path("IPaddr"))
        .arg("start")
        .env("HA_RSCTMP", &ag.state)
        .env("OCF_RESOURCE_INSTANCE", "t")
        .env("OCF_RESKEY_ip", "10.99.0.57")
        .env("OCF_RESKEY_nic", "va")
        .env("OCF_RESKEY_cidr_netmask", "24");
    let r = common::Run::from(lab::run(&mut c));
    r.rc(4);
    assert!(r.stderr.contains("needs root"), "{r:?}");
    assert_eq!(addrs(&a), before);
}

#[test]
fn gratuitous_arp_on_start_reaches_the_peer() {
    let (a, b) = pair();
    let ag = Agents::new();
    let vip: Ipv4Addr = "10.99.0.70".parse().unwrap();
    let cap = capture_in(
        &b,
        "vb",
        arp::ETH_P_ARP,
        4,
        Duration::from_secs(5),
        move |f| arp::parse_arp(f).is_some_and(|p| p.sender_ip == vip),
    );
    let p = [
        ("ip", "10.99.0.70"),
        ("cidr_netmask", "24"),
        ("nic", "va"),
        ("arp_count", "2"),
        ("arp_interval", "100"),
    ];
    ag.ocf(&a, "IPaddr", "start", &p).rc(0);
    let frames = cap.join().unwrap();
    let mac = mac_of(&a, "va");
    assert_eq!(frames.len(), 4, "{frames:?}");
    for (i, f) in frames.iter().enumerate() {
        let op = if i % 2 == 0 {
            ArpOp::Request
        } else {
            ArpOp::Reply
        };
        assert_eq!(&f[..42], &arp::garp_frame(op, mac, vip)[..], "frame {i}");
    }
    ag.ocf(&a, "IPaddr", "stop", &p).rc(0);

    // stop ends a background sender that is still running
    let long = [
        ("ip", "10.99.0.71"),
        ("cidr_netmask", "24"),
        ("nic", "va"),
        ("arp_count", "100"),
        ("arp_interval", "200"),
    ];
    ag.ocf(&a, "IPaddr", "start", &long).rc(0);
    let pidfile = ag.state.join("IPaddr-arp-10.99.0.71");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    ag.ocf(&a, "IPaddr", "stop", &long).rc(0);
    assert!(!pidfile.exists());
    let gone = lab::wait_until(Duration::from_secs(3), || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.contains(") Z ")).then_some(())
    });
    assert!(gone.is_some(), "ARP sender {pid} still running after stop");
}

#[test]
fn ipv6_address_with_neighbour_advertisements() {
    let (a, b) = pair();
    let ag = Agents::new();
    let vip: Ipv6Addr = "fd00:99::70".parse().unwrap();
    lab::wait_until(Duration::from_secs(5), || {
        b.ip(&["-6", "route", "show", "table", "local"])
            .contains("ff00::/8 dev vb")
            .then_some(())
    })
    .expect("IPv6 up on vb");
    let cap = capture_in(
        &b,
        "vb",
        arp::ETH_P_IPV6,
        2,
        Duration::from_secs(5),
        move |f| f.len() >= 78 && f[54] == 136 && f[62..78] == vip.octets(),
    );
    let p = [
        ("ip", "fd00:99::70"),
        ("cidr_netmask", "64"),
        ("nic", "va"),
        ("nodad", "true"),
        ("arp_count", "2"),
        ("arp_interval", "50"),
    ];
    ag.ocf(&a, "IPaddr", "start", &p).rc(0);
    assert!(addrs(&a).contains("inet6 fd00:99::70/64"), "{}", addrs(&a));
    let frames = cap.join().unwrap();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(
        frames[0],
        arp::unsolicited_na_frame(mac_of(&a, "va"), vip).to_vec()
    );
    ag.ocf(&a, "IPaddr", "monitor", &p).rc(0);
    ag.ocf(&a, "IPaddr", "stop", &p).rc(0);
    ag.ocf(&a, "IPaddr", "monitor", &p).rc(7);
    assert!(!addrs(&a).contains("fd00:99::70"));
    // with duplicate address detection: start waits for it to finish
    let dad = [
        ("ip", "fd00:99::71"),
        ("cidr_netmask", "64"),
        ("nic", "va"),
        ("arp_count", "1"),
    ];
    ag.ocf(&a, "IPaddr", "start", &dad).rc(0);
    let shown = a.ip(&["-o", "-6", "addr", "show", "dev", "va"]);
    assert!(
        shown.contains("fd00:99::71/64") && !shown.contains("tentative"),
        "{shown}"
    );
    ag.ocf(&a, "IPaddr", "stop", &dad).rc(0);
}

#[test]
fn meta_data_is_valid_and_works_for_anyone() {
    lab::ensure_packages(&["libxml2-utils", "resource-agents"]);
    let ag = Agents::new();
    for (agent, _) in common::AGENTS {
        let out = lab::run(
            std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(ag.path(agent))
                .arg("meta-data"),
        );
        assert!(out.status.success(), "{agent} meta-data as nobody: {out:?}");
        let xml = String::from_utf8(out.stdout).unwrap();
        assert!(
            xml.contains(&format!("<resource-agent name=\"{agent}\"")),
            "{xml}"
        );
        let mut child = std::process::Command::new("xmllint")
            .args(["--noout", "--valid", "-"])
            .current_dir("/usr/share/resource-agents")
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(xml.as_bytes())
            .unwrap();
        let r = child.wait_with_output().unwrap();
        assert!(
            r.status.success(),
            "{agent} meta-data not valid against ra-api-1.dtd: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
}
