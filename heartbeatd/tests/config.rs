//! Config parser tests on real-world files and every error path.
//!
//! Files: `tests/data/config/` (the seed cluster's files, the lab's
//! real-heartbeat default ha.cf) and the shipped samples in `etc/ha.d/`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use heartbeatd::auth::AuthMethod;
use heartbeatd::config::{
    self, load, parse_authkeys, parse_ha_cf_with, parse_haresources, AutoFailback, ConfigError,
    HaCf, MediumKind, ParseEnv, StopFailure, Verb,
};

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/config")
        .join(p)
}

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/ha.d")
}

fn ha(text: &str) -> Result<HaCf, Vec<ConfigError>> {
    parse_ha_cf_with(Path::new("/etc/ha.d/ha.cf"), text, &ParseEnv::default())
}

fn ok(text: &str) -> HaCf {
    ha(text).unwrap_or_else(|e| panic!("{text}\n{e:#?}"))
}

fn errs(text: &str) -> Vec<ConfigError> {
    match ha(text) {
        Ok(h) => panic!("accepted:\n{text}\n{h:#?}"),
        Err(e) => e,
    }
}

/// A valid base; case lines are appended after it (so they start on line 4).
const BASE: &str = "node alpha beta\nbcast eth0\nlogfacility local0\n";
const FIRST: usize = 4;

/// Copies a config into a fresh temp dir with authkeys mode 600.
fn temp_conf(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(d.path().join(name), text).unwrap();
    }
    let ak = d.path().join("authkeys");
    if ak.exists() {
        fs::set_permissions(&ak, fs::Permissions::from_mode(0o600)).unwrap();
    }
    d
}

#[test]
fn seed_ha_cf_fails_only_on_ipfail() {
    let text = fs::read_to_string(data("seed/ha.cf")).unwrap();
    let e = errs(&text);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].line, Some(17));
    assert!(
        e[0].msg.contains("ipfail is a heartbeat API client"),
        "{}",
        e[0].msg
    );
    assert_eq!(e[0].file, Path::new("/etc/ha.d/ha.cf"));
    assert!(e[0]
        .to_string()
        .starts_with("/etc/ha.d/ha.cf:17: respawn root"));

    // Without the ipfail line everything else is taken.
    let without: String = text
        .lines()
        .filter(|l| !l.contains("ipfail") || l.starts_with("apiauth"))
        .map(|l| format!("{l}\n"))
        .collect();
    let h = ok(&without);
    assert_eq!(h.nodes, ["loadbalancer", "backup"]);
    assert_eq!(h.keepalive, Duration::from_secs(2));
    assert_eq!(h.deadtime, Duration::from_secs(30));
    assert_eq!(h.warntime, Duration::from_secs(10));
    assert_eq!(h.initdead, Duration::from_secs(120));
    assert_eq!(h.auto_failback, AutoFailback::On);
    assert_eq!(h.watchdog.as_deref(), Some(Path::new("/dev/watchdog")));
    assert_eq!(h.logfile.as_deref(), Some(Path::new("/var/log/ha-log")));
    assert_eq!(h.logfacility.as_deref(), Some("local0"));
    let kinds: Vec<_> = h.media.iter().map(|m| m.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            MediumKind::Serial {
                device: "/dev/ttyS0".into(),
                baud: 19200
            },
            MediumKind::Bcast {
                iface: "eth0".into(),
                port: 694
            },
        ]
    );
    assert_eq!(h.ping.len(), 1);
    assert_eq!(h.ping[0].name, "192.168.136.1");
    assert!(!h.ping[0].group);
    // apiauth: accepted with a notice
    assert!(h
        .notices
        .iter()
        .any(|n| n.msg.contains("apiauth ipfail") && n.msg.contains("no client API")));
}

#[test]
fn seed_haresources_and_authkeys() {
    let hr = parse_haresources(
        &data("seed/haresources"),
        &fs::read_to_string(data("seed/haresources")).unwrap(),
    )
    .unwrap();
    assert_eq!(hr.len(), 1);
    assert_eq!(hr[0].node, "loadbalancer");
    assert_eq!(hr[0].key(), "lvs");
    let scripts: Vec<_> = hr[0].resources.iter().map(|r| r.script.as_str()).collect();
    assert_eq!(scripts, ["lvs", "IPaddr", "ipvsadm", "ldirectord"]);
    assert_eq!(hr[0].resources[1].args, ["192.168.136.10/24/eth0"]);

    let k = parse_authkeys(
        &data("seed/authkeys"),
        &fs::read_to_string(data("seed/authkeys")).unwrap(),
    )
    .unwrap();
    assert_eq!(k.send_index(), 1);
    assert_eq!(k.send_method(), &AuthMethod::Crc);
}

#[test]
fn shipped_samples_load() {
    let src = sample_dir();
    let files: Vec<(String, String)> = ["ha.cf", "haresources", "authkeys"]
        .iter()
        .map(|f| (f.to_string(), fs::read_to_string(src.join(f)).unwrap()))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let d = temp_conf(&refs);
    let c = load(d.path()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(c.ha.nodes, ["loadbalancer", "backup"]);
    assert_eq!(c.ha.media.len(), 2);
    assert_eq!(c.resources.len(), 1);
    assert_eq!(c.resources[0].key(), "lvs");
    assert_eq!(c.keys.send_index(), 1);
    c.check_local_node("loadbalancer").unwrap();
    c.check_local_node("backup").unwrap();
    let e = c.check_local_node("director3").unwrap_err();
    assert!(e
        .msg
        .starts_with("Current node [director3] not in configuration!"));
    // the sample parses without warnings
    assert!(c.ha.notices.is_empty(), "{:#?}", c.ha.notices);
    let yaml = c.to_yaml();
    assert!(
        yaml.contains("loadbalancer") && yaml.contains("send_index: 1"),
        "{yaml}"
    );
}

#[test]
fn hbpeer_default_ha_cf() {
    let h = ok(&fs::read_to_string(data("hbpeer/ha.cf")).unwrap());
    assert_eq!(h.nodes, ["alpha", "beta"]);
    assert_eq!(h.keepalive, Duration::from_millis(200));
    assert_eq!(h.warntime, Duration::from_millis(600));
    assert_eq!(h.deadtime, Duration::from_secs(1));
    assert_eq!(h.initdead, Duration::from_secs(2));
    assert_eq!(h.auto_failback, AutoFailback::On);
    assert_eq!(
        h.media[0].kind,
        MediumKind::Bcast {
            iface: "hb0".into(),
            port: 694
        }
    );
    // initdead 2 s < 10 s: a notice, as 3.0.6 warns
    let n: Vec<_> = h.notices.iter().map(|n| (n.line, n.msg.as_str())).collect();
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].0, Some(6));
    assert!(n[0].1.contains("initdead (2000ms) may be too small"));
}

#[test]
fn udpport_is_fixed_per_medium_type_at_its_first_line() {
    // Verified against a running 3.0.6: both bcast lines use 700, ucast 701.
    let h = ok(
        "udpport 700\nbcast eth0\nudpport 701\nbcast eth1\nucast eth0 10.99.0.5\n\
                node alpha beta\nlogfacility local0\n",
    );
    let ports: Vec<_> = h
        .media
        .iter()
        .map(|m| match &m.kind {
            MediumKind::Bcast { port, .. } | MediumKind::Ucast { port, .. } => *port,
            k => panic!("{k:?}"),
        })
        .collect();
    assert_eq!(ports, [700, 700, 701]);
    assert_eq!(h.udpport, 701);
    let n: Vec<_> = h.notices.iter().map(|n| (n.line, n.msg.as_str())).collect();
    assert!(n
        .iter()
        .any(|(l, m)| *l == Some(3) && m.contains("bcast keeps port 700 (fixed on line 2)")));
    assert!(n
        .iter()
        .any(|(l, m)| *l == Some(4) && m.contains("uses port 700") && m.contains("udpport 701")));
    // a udpport that repeats the same value says nothing
    let h = ok("udpport 700\nbcast eth0\nudpport 700\nbcast eth1\nnode a\nlogfacility local0\n");
    assert!(
        h.notices.iter().all(|n| !n.msg.contains("port")),
        "{:?}",
        h.notices
    );
    // mcast carries its own port
    let h = ok("udpport 700\nmcast eth0 225.0.0.1 1694 1 0\nnode a\nlogfacility local0\n");
    assert!(matches!(
        h.media[0].kind,
        MediumKind::Mcast {
            port: 1694,
            ttl: 1,
            loopback: false,
            ..
        }
    ));
}

#[test]
fn baud_is_fixed_at_the_first_serial_line() {
    let h = ok("serial /dev/ttyS0\nbaud 9600\nserial /dev/ttyS1\nnode a\nlogfacility local0\n");
    for m in &h.media {
        assert!(
            matches!(m.kind, MediumKind::Serial { baud: 19200, .. }),
            "{m:?}"
        );
    }
    assert_eq!(h.baud, 9600);
    assert!(h
        .notices
        .iter()
        .any(|n| n.line == Some(2) && n.msg.contains("already fixed 19200 baud")));
    let h = ok("baud 115200\nserial /dev/ttyS0\nnode a\nlogfacility local0\n");
    assert!(matches!(
        h.media[0].kind,
        MediumKind::Serial { baud: 115200, .. }
    ));
}

#[test]
fn continuation_lines() {
    let h = ok(
        "node alpha \\\n     beta \\\n  gamma\nbcast eth0 \\\n eth1\nlogfacility local0\n\
                ucast eth2 \\\n 10.0.0.2\n",
    );
    assert_eq!(h.nodes, ["alpha", "beta", "gamma"]);
    let lines: Vec<_> = h.media.iter().map(|m| m.line).collect();
    assert_eq!(lines, [4, 4, 7]);
    let e = errs("node alpha\nbcast eth0\nlogfacility local0\nnode beta \\");
    assert_eq!(e[0].line, Some(4));
    assert!(e[0].msg.contains("file ends"));
}

#[test]
fn directive_classes() {
    // implemented
    let h = ok(&format!(
        "{BASE}udpport 1694\nbcast eth1\nucast eth1 10.0.0.2\nucast6 eth1 fe80::2\n\
         mcast eth1 239.1.2.3 1695 2 1\nmcast6 eth1 ff12::1:2:3:4 1696 1 0\nserial /dev/ttyS0\n\
         ping 10.0.0.254,10.0.0.253\nping6 fe80::fe\nping_group routers 10.0.0.1 10.0.0.2\n\
         keepalive 500ms\ndeadtime 5\nwarntime 2.5\ninitdead 20\ndeadping 6\nauto_failback off\n\
         hopfudge 2\nbaud 38400\ncluster lb\nhbgenmethod time\nrealtime no\nrtprio 50\ndebug 3\n\
         logfile /var/log/ha-log\ndebugfile /var/log/ha-debug\nsyslogmsgfmt false\n\
         log_badpack off\nmsgfmt netstring\nmax_rexmit_delay 100\ncoredumps n\n\
         coreroot /var/lib/heartbeat/cores\nwatchdog /dev/watchdog\nrespawn hacluster /usr/bin/logger -t x\n\
         env FOO=bar,BAZ=\nuuidfrom nodename\nautojoin none\n"
    ));
    assert_eq!(h.media.len(), 7);
    assert!(matches!(
        h.media[0].kind,
        MediumKind::Bcast { port: 694, .. }
    ));
    // bcast's port was fixed by the first bcast line (in BASE), before udpport
    assert!(matches!(
        h.media[1].kind,
        MediumKind::Bcast { port: 694, .. }
    ));
    assert!(matches!(
        h.media[2].kind,
        MediumKind::Ucast { port: 1694, .. }
    ));
    assert!(matches!(
        h.media[3].kind,
        MediumKind::Ucast6 { port: 1694, .. }
    ));
    assert!(matches!(
        h.media[4].kind,
        MediumKind::Mcast {
            port: 1695,
            ttl: 2,
            loopback: true,
            ..
        }
    ));
    assert!(matches!(
        h.media[5].kind,
        MediumKind::Mcast6 {
            port: 1696,
            hops: 1,
            loopback: false,
            ..
        }
    ));
    assert!(matches!(
        h.media[6].kind,
        MediumKind::Serial { baud: 19200, .. }
    ));
    assert_eq!(h.ping.len(), 4);
    assert_eq!(h.ping[3].name, "routers");
    assert!(h.ping[3].group);
    assert_eq!(h.ping[3].targets.len(), 2);
    assert_eq!(h.keepalive, Duration::from_millis(500));
    assert_eq!(h.warntime, Duration::from_millis(2500));
    assert_eq!(h.initdead, Duration::from_secs(20));
    assert_eq!(h.deadping, Duration::from_secs(6));
    assert_eq!(h.auto_failback, AutoFailback::Off);
    assert_eq!((h.hopfudge, h.baud, h.cluster.as_str()), (2, 38400, "lb"));
    assert_eq!(h.hbgenmethod, config::GenMethod::Time);
    assert!(!h.realtime && !h.syslogmsgfmt && !h.log_badpack && !h.coredumps);
    assert_eq!((h.rtprio, h.debug), (Some(50), 3));
    assert_eq!(h.max_rexmit_delay, Duration::from_millis(100));
    assert_eq!(h.respawn[0].user, "hacluster");
    assert_eq!(h.respawn[0].args, ["-t", "x"]);
    assert_eq!(
        h.env,
        [("FOO".into(), "bar".into()), ("BAZ".into(), String::new())]
    );
    assert_eq!(h.uuidfrom, config::UuidFrom::Nodename);
    assert_eq!(h.logfacility.as_deref(), Some("local0"));

    // accepted with a notice saying why it has no effect
    for line in [
        "apiauth ipfail gid=haclient uid=root",
        "apiauth anon uid=root gid=haclient",
        "use_logd off",
        "conn_logd_time 60",
        "memreserve 6500",
        "compression bz2",
        "compression_threshold 2",
        "traditional_compression no",
        "use_apphbd off",
        "use_apphbd false",
        "crm off",
        "pacemaker false",
        "crm no",
        "crm_daemon_dir /usr/lib/pacemaker",
        "crmd_spawns_pengine yes",
        "record_config_changes on",
        "record_pengine_inputs off",
        "enable_config_writes on",
        "nice_failback on",
        "udp eth1",
        "keepalive 1 2",
    ] {
        let h = ok(&format!("{BASE}{line}\n"));
        assert!(
            h.notices.iter().any(|n| n.line == Some(FIRST)),
            "{line}: no notice on its line: {:#?}",
            h.notices
        );
    }
    // use_logd on: logs go to logfile/debugfile/syslog, facility daemon if none
    let h = ok("node a\nbcast eth0\nuse_logd on\nlogfile /tmp/l\n");
    assert_eq!(h.logfacility.as_deref(), Some("daemon"));
    assert!(h
        .notices
        .iter()
        .any(|n| n.line == Some(3) && n.msg.contains("logfile /tmp/l, syslog facility daemon")));
    let h = ok("node a\nbcast eth0\nuse_logd yes\nlogfacility local3\n");
    assert_eq!(h.logfacility.as_deref(), Some("local3"));
    // no log destination at all: 3.0.6 uses logd, heartbeatd syslog daemon
    let h = ok("node a\nbcast eth0\n");
    assert_eq!(h.logfacility.as_deref(), Some("daemon"));
    assert!(h
        .notices
        .iter()
        .any(|n| n.line.is_none() && n.msg.contains("logd")));
    let h = ok("node a\nbcast eth0\nlogfacility none\nlogfile /x\n");
    assert_eq!(h.logfacility, None);
}

#[test]
fn nice_failback_maps_like_3_0_6() {
    // 3.0.6 ignores the value: legacy, or off after an auto_failback on/off
    for v in ["on", "off"] {
        let h = ok(&format!("{BASE}nice_failback {v}\n"));
        assert_eq!(h.auto_failback, AutoFailback::Legacy, "{v}");
        let h = ok(&format!("{BASE}auto_failback on\nnice_failback {v}\n"));
        assert_eq!(h.auto_failback, AutoFailback::Off, "{v}");
    }
    let h = ok(&format!("{BASE}auto_failback legacy\nnice_failback on\n"));
    assert_eq!(h.auto_failback, AutoFailback::Legacy);
    for (v, af) in [
        ("on", AutoFailback::On),
        ("Yes", AutoFailback::On),
        ("0", AutoFailback::Off),
        ("LEGACY", AutoFailback::Legacy),
    ] {
        assert_eq!(
            ok(&format!("{BASE}auto_failback {v}\n")).auto_failback,
            af,
            "{v}"
        );
    }
}

#[test]
fn extensions() {
    let h = ok(&format!(
        "{BASE}stop_failure exec /usr/local/sbin/fence-peer --hard\nstop_retries 3\n\
         agent_timeout all 10\nagent_timeout stop 90 ldirectord\nagent_timeout start 1.5 IPaddr\n"
    ));
    assert_eq!(
        h.stop_failure,
        StopFailure::Exec {
            command: vec!["/usr/local/sbin/fence-peer".into(), "--hard".into()]
        }
    );
    assert_eq!(h.stop_retries, 3);
    let t = &h.agent_timeouts;
    assert_eq!(
        (t.start, t.stop, t.status),
        (
            Duration::from_secs(10),
            Duration::from_secs(10),
            Duration::from_secs(10)
        )
    );
    assert_eq!(t.get("ldirectord", Verb::Stop), Duration::from_secs(90));
    assert_eq!(t.get("ldirectord", Verb::Start), Duration::from_secs(10));
    assert_eq!(t.get("IPaddr", Verb::Start), Duration::from_millis(1500));
    assert_eq!(
        ok(&format!("{BASE}stop_failure reboot\n")).stop_failure,
        StopFailure::Reboot
    );
    assert_eq!(
        ok(&format!("{BASE}stop_failure hold\n")).stop_failure,
        StopFailure::Hold
    );
    // each extension line says that 3.0.6 refuses it
    let h = ok(&format!("{BASE}stop_failure hold\n"));
    assert!(h
        .notices
        .iter()
        .any(|n| n.line == Some(FIRST) && n.msg.contains("extension")));
}

/// Every refused directive: (line, words its message must contain).
#[test]
fn refused_directives() {
    let cases: &[(&str, &[&str])] = &[
        ("crm on", &["Pacemaker with our OCF agents", "heartbeat-rs"]),
        ("crm respawn", &["Pacemaker with our OCF agents"]),
        ("crm yes", &["Pacemaker with our OCF agents"]),
        ("pacemaker true", &["Pacemaker with our OCF agents"]),
        ("pacemaker minimal", &["Pacemaker with our OCF agents"]),
        (
            "stonith baytech /etc/ha.d/conf/stonith.baytech",
            &[
                "STONITH plugins are not supported by heartbeatd",
                "stop_failure exec",
            ],
        ),
        (
            "stonith_host * baytech 10.0.0.3 mylogin mysecretpassword",
            &["STONITH plugins are not supported by heartbeatd"],
        ),
        (
            "failfast hacluster /usr/lib/heartbeat/ccm",
            &["failfast", "not supported"],
        ),
        ("autojoin other", &["autojoin other", "node"]),
        ("autojoin any", &["autojoin any"]),
        ("use_apphbd on", &["apphbd is not supported"]),
        (
            "quorum_server qs.example.com",
            &["quorum servers are a Pacemaker"],
        ),
        ("normalpoll true", &["normalpoll is compiled out"]),
        (
            "respawn root /usr/lib/heartbeat/ipfail",
            &["ipfail is a heartbeat API client", "no client API"],
        ),
        (
            "respawn hacluster /usr/libexec/heartbeat/ccm",
            &["ccm is a heartbeat API client"],
        ),
        (
            "respawn hacluster /usr/lib/heartbeat/mgmtd -v",
            &["mgmtd is a heartbeat API client"],
        ),
        (
            "respawn root /usr/lib/heartbeat/cibmon -d",
            &["cibmon is a heartbeat API client"],
        ),
        (
            "respawn hacluster /usr/lib/heartbeat/crmd",
            &["crmd is a heartbeat API client"],
        ),
        (
            "respawn root /usr/lib/heartbeat/lha-snmpagent",
            &["lha-snmpagent is a heartbeat API client"],
        ),
        ("foo bar", &["unknown directive \"foo\""]),
        (
            "Node gamma",
            &["unknown directive \"Node\"", "did you mean \"node\""],
        ),
        ("KEEPALIVE 2", &["did you mean \"keepalive\""]),
    ];
    for (line, words) in cases {
        let e = errs(&format!("{BASE}{line}\n"));
        assert_eq!(e.len(), 1, "{line}: {e:#?}");
        assert_eq!(e[0].line, Some(FIRST), "{line}");
        for w in *words {
            assert!(e[0].msg.contains(w), "{line}: {:?} lacks {w:?}", e[0].msg);
        }
    }
}

/// Every error path of ha.cf with its line.
#[test]
fn error_paths_name_the_line() {
    let cases: &[(&str, &str)] = &[
        ("keepalive 2s", "no \"s\" unit"),
        ("keepalive 2 s", "invalid time \"s\""),
        ("keepalive 0", "at least 1ms"),
        ("keepalive 499us", "at least 1ms"),
        ("keepalive", "needs a value"),
        ("deadtime x", "invalid time"),
        ("warntime 0", "at least 1ms"),
        ("initdead -1", "invalid time"),
        (
            "deadping 1ms",
            "deadping (1ms) must be more than twice keepalive",
        ),
        ("conn_logd_time 0", "at least 1ms"),
        (
            "udpport 0",
            "udpport 0: expected a whole number from 1 to 65535",
        ),
        ("udpport 70000", "from 1 to 65535"),
        ("udpport 694x", "from 1 to 65535"),
        ("baud 19201", "not a supported rate"),
        ("hopfudge 256", "from 0 to 255"),
        ("debug 256", "from 0 to 255"),
        ("rtprio 0", "from 1 to 99"),
        ("rtprio 100", "from 1 to 99"),
        ("realtime 2", "not a boolean"),
        ("log_badpack maybe", "not a boolean"),
        ("coredumps x", "not a boolean"),
        ("syslogmsgfmt x", "not a boolean"),
        ("nice_failback x", "not a boolean"),
        ("auto_failback sometimes", "use on, off or legacy"),
        ("hbgenmethod TIME", "use file or time"),
        ("uuidfrom NodeName", "use file or nodename"),
        ("msgfmt NETSTRING", "use classic or netstring"),
        ("logfacility LOCAL0", "not a syslog facility"),
        ("logfacility bogus", "not a syslog facility"),
        ("max_rexmit_delay 0.5", "max_rexmit_delay 0.5"),
        ("max_rexmit_delay 0", "above 0"),
        ("compression lz4", "use zlib or bz2"),
        ("compression_threshold 0", "from 1"),
        ("traditional_compression maybe", "not a boolean"),
        ("memreserve 0", "from 1"),
        ("autojoin sometimes", "use none, other or any"),
        ("env =bar", "expected NAME=VALUE"),
        ("env FOO", "expected NAME=VALUE"),
        ("record_config_changes maybe", "not a boolean"),
        ("crm maybe", "use off"),
        ("node alpha", "node alpha is already listed on line 1"),
        (
            "bcast eth0",
            "this medium (bcast eth0) is already defined on line 2",
        ),
        ("bcast", "needs a value"),
        ("serial ttyS0", "not a full path name"),
        ("ucast eth0", "needs an interface and the peer's address"),
        ("ucast eth0 peer.example.com", "not an IPv4 address"),
        ("ucast6 eth0 10.0.0.1", "not an IPv6 address"),
        ("mcast eth0 225.0.0.1 694 1", "missing loop"),
        ("mcast eth0", "missing a group"),
        (
            "mcast eth0 10.0.0.1 694 1 0",
            "not an IPv4 multicast address",
        ),
        ("mcast eth0 225.0.0.1 0 1 0", "bad port 0"),
        (
            "mcast eth0 225.0.0.1 694 5 0",
            "bad ttl 5: heartbeat 3.0.6 allows 0 to 4",
        ),
        ("mcast eth0 225.0.0.1 694 1 2", "bad loop 2"),
        (
            "mcast6 eth0 fe80::1 694 1 0",
            "not an IPv6 multicast address",
        ),
        ("mcast6 eth0 ff12::1 694 5 0", "bad hops 5"),
        ("ping router", "not an IPv4 address"),
        ("ping6 10.0.0.1", "not an IPv6 address"),
        ("ping_group g", "has no addresses"),
        ("ping_group", "needs a name"),
        ("ping_group g 10.0.0.1 gw", "gw is not an IPv4 address"),
        ("apiauth ipfail", "needs uid= or gid="),
        ("apiauth ipfail user=root", "is not uid=... or gid=..."),
        ("apiauth ipfail uid=a uid=b", "uid= given twice"),
        ("respawn root", "needs a user and a program"),
        ("respawn root bin/true", "must be a full path name"),
        ("stop_failure", "stop_failure : the line is"),
        ("stop_failure exec", "no command"),
        ("stop_failure exec fence.sh", "must be a full path name"),
        ("stop_failure halt", "the line is"),
        ("stop_retries -1", "from 0 to 10000"),
        ("agent_timeout start", "the line is"),
        ("agent_timeout begin 10", "unknown verb"),
        ("agent_timeout start 10s", "no \"s\" unit"),
        ("agent_timeout stop 0", "at least 1ms"),
        ("agent_timeout stop 1 a b", "the line is"),
    ];
    for (line, what) in cases {
        let e = errs(&format!("{BASE}{line}\n"));
        assert!(
            e.iter()
                .any(|e| e.line == Some(FIRST) && e.msg.contains(what)),
            "{line}: want line {FIRST} with {what:?}, got {e:#?}"
        );
    }
    // twice-only-once directives name the first line
    for (a, b, what) in [
        ("baud 9600", "baud 19200", "baud is already set on line 4"),
        (
            "watchdog /dev/watchdog",
            "watchdog /dev/watchdog",
            "already set on line 4",
        ),
        ("crm off", "pacemaker off", "already given on line 4"),
        (
            "ping 10.0.0.1",
            "ping 10.0.0.1",
            "ping node 10.0.0.1 is already defined on line 4",
        ),
    ] {
        let e = errs(&format!("{BASE}{a}\n{b}\n"));
        assert!(
            e.iter()
                .any(|e| e.line == Some(FIRST + 1) && e.msg.contains(what)),
            "{a}/{b}: {e:#?}"
        );
    }
}

#[test]
fn cross_checks_and_missing_things() {
    let e = errs("logfacility local0\n");
    let msgs: Vec<_> = e.iter().map(|e| (e.line, e.msg.as_str())).collect();
    assert!(
        msgs.iter()
            .any(|(l, m)| l.is_none() && m.starts_with("no nodes defined")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|(l, m)| l.is_none() && m.starts_with("No heartbeat media defined")),
        "{msgs:?}"
    );

    let e = errs(&format!("{BASE}keepalive 1\ndeadtime 2\n"));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, Some(5));
    assert_eq!(
        e[0].msg,
        "deadtime (2000ms) must be more than twice keepalive (1000ms)"
    );
    // deadtime not given: the keepalive line is blamed
    let e = errs(&format!("{BASE}keepalive 15\n"));
    assert_eq!(e[0].line, Some(4));
    let e = errs(&format!("{BASE}initdead 29\n"));
    assert_eq!(e[0].line, Some(4));
    assert_eq!(
        e[0].msg,
        "initdead (29000ms) is smaller than deadtime (30000ms)"
    );
    let e = errs(&format!("{BASE}use_logd off\n").replace("logfacility local0\n", ""));
    assert!(e[0].msg.contains("nowhere to log"), "{e:?}");

    // warnings, not errors
    let h = ok(&format!("{BASE}warntime 40\n"));
    assert!(h
        .notices
        .iter()
        .any(|n| n.line == Some(4) && n.msg.contains("not below deadtime")));
    let h = ok(&format!("{BASE}keepalive 1\ndeadtime 3\ninitdead 5\n"));
    assert!(h
        .notices
        .iter()
        .any(|n| n.line == Some(6) && n.msg.contains("may be too small")));
    let h = ok(&format!("{BASE}ucast eth0 10.0.0.2 10.0.0.3\n"));
    assert!(h
        .notices
        .iter()
        .any(|n| n.line == Some(4) && n.msg.contains("\"10.0.0.3\" are ignored")));

    // all errors are reported, not just the first
    let e = errs("node a\nbcast eth0\nlogfacility local0\nkeepalive 2s\nfoo\nbaud 1\n");
    let lines: Vec<_> = e.iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(4), Some(5), Some(6)]);
}

#[test]
fn load_checks_files_and_machine() {
    let good = [
        ("ha.cf", "node alpha beta\nbcast eth0\nlogfacility local0\n"),
        (
            "haresources",
            "alpha 10.0.0.10 httpd\nbeta IPaddr::10.0.0.11\n",
        ),
        ("authkeys", "auth 2\n2 sha1 s3cret\n"),
    ];
    let d = temp_conf(&good);
    let c = load(d.path()).unwrap();
    assert_eq!(c.resources[0].key(), "10.0.0.10");
    assert_eq!(c.resources[0].resources[0].spec, "IPaddr::10.0.0.10");
    assert!(
        !c.to_yaml().contains("s3cret"),
        "secrets must not be printed"
    );

    // authkeys readable by others: refused as 3.0.6
    fs::set_permissions(d.path().join("authkeys"), fs::Permissions::from_mode(0o644)).unwrap();
    let e = load(d.path()).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e[0].msg.starts_with(&format!(
        "Bad permissions on keyfile [{}], 600 recommended.",
        d.path().join("authkeys").display()
    )));

    // haresources missing: no resources
    let d = temp_conf(&[good[0], good[2]]);
    assert!(load(d.path()).unwrap().resources.is_empty());

    // errors of all three files together, each with file and line
    let d = temp_conf(&[
        ("ha.cf", "node alpha beta\nbcast eth0\nkeepalive 2s\n"),
        ("haresources", "alpha\n"),
        ("authkeys", "auth 1\n1 crc # c\n"),
    ]);
    let e = load(d.path()).unwrap_err();
    let got: Vec<_> = e
        .iter()
        .map(|e| {
            (
                e.file.file_name().unwrap().to_str().unwrap().to_owned(),
                e.line,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("ha.cf".to_owned(), Some(3)),
            ("haresources".to_owned(), Some(1)),
            ("authkeys".to_owned(), Some(2)),
            ("authkeys".to_owned(), Some(1)),
        ],
        "{e:#?}"
    );

    // cross-file: unknown node, duplicate group key
    let d = temp_conf(&[
        good[0],
        (
            "haresources",
            "gamma x\nalpha 10.0.0.1 a\nbeta 10.0.0.1 b\n",
        ),
        good[2],
    ]);
    let e = load(d.path()).unwrap_err();
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(e[0].line, Some(1));
    assert!(e[0].msg.contains("node gamma is not a cluster node"));
    assert_eq!(e[1].line, Some(3));
    assert!(e[1]
        .msg
        .contains("resource group 10.0.0.1 is already defined on line 2"));

    // machine checks: respawn user and program
    let d = temp_conf(&[
        ("ha.cf", "node alpha\nbcast eth0\nlogfacility local0\nrespawn nosuchuser-xyz /bin/true\nrespawn root /nonexistent/prog\n"),
        good[2],
    ]);
    let e = load(d.path()).unwrap_err();
    let got: Vec<_> = e.iter().map(|e| (e.line, e.msg.as_str())).collect();
    assert_eq!(
        got,
        [
            (Some(4), "respawn: no such user \"nosuchuser-xyz\""),
            (
                Some(5),
                "respawn: /nonexistent/prog is not an executable file"
            ),
        ]
    );

    // missing ha.cf / authkeys
    let d = temp_conf(&[]);
    let e = load(d.path()).unwrap_err();
    assert_eq!(e.len(), 2);
    assert!(e.iter().all(|e| e.msg.starts_with("cannot read")));
}

#[test]
fn local_node_name_from_nodeinfo_or_uname() {
    let d = tempfile::tempdir().unwrap();
    let uname = nix::sys::utsname::uname().unwrap();
    let host = uname.nodename().to_string_lossy().to_ascii_lowercase();
    assert_eq!(config::local_node_name(d.path()).unwrap(), host);
    fs::write(d.path().join("nodeinfo"), "LoadBalancer\nignored\n").unwrap();
    assert_eq!(config::local_node_name(d.path()).unwrap(), "loadbalancer");
    // no line break: 3.0.6 would ignore the file; heartbeatd uses it
    fs::write(d.path().join("nodeinfo"), " backup ").unwrap();
    assert_eq!(config::local_node_name(d.path()).unwrap(), "backup");
    fs::write(d.path().join("nodeinfo"), "\n").unwrap();
    assert_eq!(config::local_node_name(d.path()).unwrap(), host);
}

/// Every directive of the reference's §10 table is handled: implemented
/// (no unknown-directive error), noticed or refused with its own message.
#[test]
fn every_3_0_6_directive_is_classified() {
    let all = [
        ("node", "gamma"),
        ("bcast", "eth1"),
        ("mcast", "eth1 225.0.0.1 694 1 0"),
        ("mcast6", "eth1 ff12::1 694 1 0"),
        ("ucast", "eth1 10.0.0.2"),
        ("ucast6", "eth1 fe80::2"),
        ("serial", "/dev/ttyS0"),
        ("ping", "10.0.0.1"),
        ("ping6", "fe80::1"),
        ("ping_group", "g 10.0.0.1"),
        ("udpport", "694"),
        ("keepalive", "1"),
        ("deadtime", "30"),
        ("warntime", "10"),
        ("initdead", "60"),
        ("deadping", "30"),
        ("auto_failback", "on"),
        ("nice_failback", "on"),
        ("hopfudge", "1"),
        ("baud", "19200"),
        ("cluster", "x"),
        ("hbgenmethod", "file"),
        ("realtime", "on"),
        ("rtprio", "10"),
        ("debug", "1"),
        ("logfile", "/x"),
        ("debugfile", "/y"),
        ("logfacility", "daemon"),
        ("use_logd", "off"),
        ("conn_logd_time", "60"),
        ("syslogmsgfmt", "on"),
        ("log_badpack", "on"),
        ("msgfmt", "classic"),
        ("compression", "zlib"),
        ("compression_threshold", "2"),
        ("traditional_compression", "no"),
        ("max_rexmit_delay", "250"),
        ("coredumps", "on"),
        ("coreroot", "/x"),
        ("watchdog", "/dev/watchdog"),
        ("stonith", "x y"),
        ("stonith_host", "* x y"),
        ("respawn", "root /bin/true"),
        ("failfast", "root /bin/true"),
        ("apiauth", "x uid=root"),
        ("autojoin", "none"),
        ("uuidfrom", "file"),
        ("env", "A=b"),
        ("memreserve", "6500"),
        ("use_apphbd", "off"),
        ("pacemaker", "off"),
        ("crm", "off"),
        ("crm_daemon_dir", "/x"),
        ("crmd_spawns_pengine", "on"),
        ("record_config_changes", "on"),
        ("record_pengine_inputs", "on"),
        ("enable_config_writes", "on"),
        ("quorum_server", "x"),
        ("normalpoll", "on"),
        ("udp", "eth1"),
    ];
    for (d, v) in all {
        match ha(&format!("{BASE}{d} {v}\n")) {
            Ok(_) => {}
            Err(e) => {
                assert!(
                    e.iter().all(|e| !e.msg.contains("unknown directive")),
                    "{d}: {e:#?}"
                );
                assert!(e.iter().any(|e| e.line == Some(FIRST)), "{d}: {e:#?}");
            }
        }
    }
}
