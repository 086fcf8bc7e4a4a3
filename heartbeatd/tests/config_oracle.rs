//! The real heartbeat 3.0.6 as the judge of the config grammar.
//!
//! Every case (an ha.cf, haresources, authkeys, maybe a nodeinfo) is given
//! to heartbeatd's parser and to the real `/usr/libexec/heartbeat/heartbeat`,
//! which runs in its own network, mount, UTS and PID namespaces (hostname
//! `alpha`, a veth pair `eth0`/`eth1` with addresses, private `/run` and
//! `/var/lib/heartbeat`, the case's files bound over `/etc/ha.d`, `/bin/true`
//! over `/bin/systemctl`). A live process's pid is written to
//! `/run/heartbeat.pid` first, so a 3.0.6 that accepts the configuration
//! stops right after parsing with "already running" (exit 0) instead of
//! starting; a refused configuration exits 6 ("Configuration error,
//! heartbeat not started"). Nothing can reach the host's network or files.
//!
//! Both must agree, except in the cases marked `Differs`, which are the
//! documented, deliberate differences of heartbeatd's grammar.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use heartbeatd::config;

const HB: &str = "/usr/libexec/heartbeat/heartbeat";
const BASE: &str = "node alpha beta\nbcast eth0\nlogfacility local0\n";
const HARES: &str = "alpha IPaddr::10.0.0.1\n";
const AUTH: &str = "auth 1\n1 crc\n";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    Same(bool),
    /// heartbeatd accepts `ours`, 3.0.6 accepts `!ours`; why.
    Differs(bool, &'static str),
}
use Verdict::*;

struct Case {
    name: String,
    ha_cf: String,
    haresources: String,
    authkeys: String,
    authkeys_mode: u32,
    nodeinfo: Option<String>,
    verdict: Verdict,
}

fn ha(extra: &str, verdict: Verdict) -> Case {
    Case {
        name: format!("ha.cf + {extra:?}"),
        ha_cf: format!("{BASE}{extra}\n"),
        haresources: HARES.into(),
        authkeys: AUTH.into(),
        authkeys_mode: 0o600,
        nodeinfo: None,
        verdict,
    }
}

fn whole(name: &str, ha_cf: &str, verdict: Verdict) -> Case {
    Case {
        name: name.into(),
        ha_cf: ha_cf.into(),
        ..ha("", verdict)
    }
}

fn hr(text: &str, verdict: Verdict) -> Case {
    Case {
        name: format!("haresources {text:?}"),
        haresources: text.into(),
        ..ha("", verdict)
    }
}

fn ak(text: &str, verdict: Verdict) -> Case {
    Case {
        name: format!("authkeys {text:?}"),
        authkeys: text.into(),
        ..ha("", verdict)
    }
}

fn cases() -> Vec<Case> {
    let acc = Same(true);
    let rej = Same(false);
    let mut v = vec![
        ha("", acc),
        // time values
        ha("keepalive 2s", rej),
        ha("keepalive 2 s", rej),
        ha("keepalive 1.5", acc),
        ha("keepalive .5", acc),
        ha("keepalive 500000us", acc),
        ha("keepalive 500000usec", acc),
        ha("keepalive 200MS", acc),
        ha("keepalive 200msec", acc),
        ha("keepalive 499us", rej),
        ha("keepalive 600us", acc),
        ha("keepalive 0", rej),
        ha("keepalive 1e3", rej),
        ha("keepalive +1", rej),
        ha("keepalive 1 2", acc),
        ha("keepalive 1,2", acc),
        ha("keepalive 200ms # comment", acc),
        ha("keepalive 200ms\r", acc),
        ha("deadtime 2", rej),
        ha("deadtime 3", acc),
        ha("warntime 40", acc),
        ha("warntime 0", rej),
        ha("initdead 29", rej),
        ha("initdead 5\ndeadtime 3\nkeepalive 1", acc),
        ha("deadping 1", rej),
        ha("deadping 3", acc),
        // booleans and keywords
        ha("realtime Y", acc),
        ha("realtime TRUE", acc),
        ha("realtime On", acc),
        ha("realtime 2", rej),
        ha("realtime yes no", acc),
        ha("nice_failback on", acc),
        ha("auto_failback LEGACY", acc),
        ha("auto_failback sometimes", rej),
        ha("msgfmt netstring", acc),
        ha("msgfmt NETSTRING", rej),
        ha("hbgenmethod time", acc),
        ha("hbgenmethod TIME", rej),
        ha("uuidfrom nodename", acc),
        ha("uuidfrom NodeName", rej),
        ha("autojoin NONE", acc),
        ha("autojoin other", rej),
        ha("autojoin any", rej),
        ha("logfacility security", acc),
        ha("logfacility bogus", rej),
        ha("logfacility LOCAL0", rej),
        ha("hopfudge 255", acc),
        ha("hopfudge 256", rej),
        ha("debug 255", acc),
        ha("debug 256", rej),
        ha("rtprio 99", acc),
        ha("rtprio 0", rej),
        ha("rtprio 100", rej),
        ha("cluster foo", acc),
        ha("coreroot /nonexistent", acc),
        ha("debugfile /tmp/x", acc),
        ha("env A=1,B=2", acc),
        ha("env =bar", rej),
        ha("max_rexmit_delay 250", acc),
        ha("max_rexmit_delay 250ms", acc),
        ha("max_rexmit_delay 0.5", rej),
        ha("max_rexmit_delay x", rej),
        ha("conn_logd_time 60", acc),
        ha("conn_logd_time 0", rej),
        ha("use_logd off", acc),
        ha("use_logd maybe", rej),
        ha("memreserve 0", rej),
        ha("compression bz2", acc),
        ha("compression foo", rej),
        ha("compression_threshold 0", rej),
        ha("traditional_compression yes", acc),
        ha("traditional_compression maybe", rej),
        ha("record_config_changes on", acc),
        ha("record_config_changes maybe", rej),
        ha("crmd_spawns_pengine yes", acc),
        ha("pacemaker off", acc),
        ha("crm no", acc),
        ha("crm on", rej),
        ha("crm respawn", rej),
        ha("watchdog /dev/watchdog", acc),
        ha("watchdog /dev/watchdog\nwatchdog /dev/watchdog", rej),
        ha("normalpoll true", rej),
        ha("Node gamma", rej),
        ha("foo bar\nbaz", rej),
        // media and nodes
        ha("udpport 694\nbcast eth1", acc),
        ha("udpport 0", rej),
        ha("udp eth1", acc),
        ha("node gamma,delta", acc),
        ha("baud 9600", acc),
        ha("baud 19201", rej),
        ha("baud 19200\nbaud 19200", rej),
        ha("serial /dev/null", acc),
        ha("serial ttyS0", rej),
        ha("serial /dev/null\nbaud 9600", acc),
        ha("ucast eth0 10.99.0.2", acc),
        ha("ucast eth0 10.99.0.2 10.99.0.3", acc),
        ha("ucast eth0", rej),
        ha("ucast6 eth0 fe80::1", acc),
        ha("mcast eth0 225.0.0.1 694 4 0", acc),
        ha("mcast eth0 225.0.0.1 694 0 0", acc),
        ha("mcast eth0 225.0.0.1 694 5 0", rej),
        ha("mcast eth0 225.0.0.1 694 1 2", rej),
        ha("mcast eth0 225.0.0.1 694 1", rej),
        ha("mcast eth0 10.0.0.1 694 1 0", rej),
        ha("mcast eth0 225.0.0.1 0 1 0", rej),
        ha("mcast eth0 225.0.0.1 694 1 0 extra", acc),
        ha("mcast6 eth0 ff12::1:2:3:4 694 1 0", acc),
        ha("mcast6 eth0 ff12::1:2:3:4 694 5 0", rej),
        ha("ping 10.0.0.254 10.0.0.253", acc),
        ha("ping_group g 10.0.0.1 10.0.0.2", acc),
        ha("ping_group g", rej),
        // client programs
        ha("apiauth ipfail gid=haclient uid=root", acc),
        ha("apiauth ipfail", rej),
        ha("respawn root /usr/lib/heartbeat/ipfail", rej),
        ha("respawn root bin/true", rej),
        ha("respawn nosuchuser-xyz /bin/true", rej),
        ha("respawn root /bin/true", acc),
        ha("stonith null /etc/nonexistent", rej),
        whole("no nodes", "bcast eth0\nlogfacility local0\n", rej),
        whole("no media", "node alpha\nlogfacility local0\n", rej),
        whole(
            "local node not listed",
            "node beta gamma\nbcast eth0\nlogfacility local0\n",
            rej,
        ),
        whole(
            "use_logd off and nowhere to log",
            "node alpha\nbcast eth0\nuse_logd off\n",
            rej,
        ),
        whole("logd fallback", "node alpha\nbcast eth0\n", acc),
        // haresources
        hr("ALPHA IPaddr::10.0.0.1\n", acc),
        hr("gamma x\n", rej),
        hr("#gamma x\nalpha x # gamma\n", acc),
        hr("alpha a \\\n  b\nbeta c\n", acc),
        hr("", acc),
        // authkeys
        ak("auth 2\n2 sha1 somesecret\n", acc),
        ak("auth 3\n3 md5 somesecret\n", acc),
        ak("auth 1\n1 crc # comment\n", rej),
        ak("1 crc\nauth 1\n", rej),
        ak("auth 2\n2 sha1\n", rej),
        ak("auth 2\n2 SHA1 k\n", rej),
        ak("auth 16\n16 crc\n", rej),
        ak("auth 0\n0 crc\n", acc),
        ak("auth1\n1crc\n", acc),
        ak("auth 1\nauth 2\n1 crc\n2 md5 k\n", acc),
        ak("auth 3\n1 crc\n", rej),
        ak("1 crc\n", rej),
        ak("auth x\n1 crc\n", rej),
        ak("auth 1\nfoo bar\n1 crc\n", rej),
        ak("# keys\n  auth 1\n 1 crc\n\n", acc),
        ak("auth 2\n2 sha1 secret # old\n", acc),
        Case {
            name: "authkeys mode 640".into(),
            authkeys_mode: 0o640,
            ..ha("", rej)
        },
        Case {
            name: "authkeys mode 620".into(),
            authkeys_mode: 0o620,
            ..ha("", acc)
        },
        Case {
            name: "nodeinfo with line break".into(),
            ha_cf: "node gamma beta\nbcast eth0\nlogfacility local0\n".into(),
            haresources: "gamma x\n".into(),
            nodeinfo: Some("Gamma\n".into()),
            ..ha("", acc)
        },
    ];
    // The deliberate differences (see the module docs of config::hacf,
    // haresources, authkeys and config::local_node_name).
    let d = |extra: &str, ours: bool, why: &'static str| ha(extra, Differs(ours, why));
    v.extend([
        d(
            "bcast",
            false,
            "bcast without an interface is a mistake 3.0.6 ignores",
        ),
        d(
            "keepalive",
            false,
            "a directive without a value is a mistake 3.0.6 ignores",
        ),
        d("bcast eth0", false, "a medium given twice"),
        d(
            "bcast nosuch0",
            true,
            "interfaces are checked when heartbeatd opens the media, not by the parser",
        ),
        d("node alpha", false, "a node given twice"),
        d(
            "udpport 70000",
            false,
            "3.0.6 does not check the port range",
        ),
        d("udpport 694x", false, "3.0.6 reads numbers with atoi"),
        d("rtprio 50x", false, "3.0.6 reads numbers with atoi"),
        d(
            "keepalive 200msxyz",
            false,
            "3.0.6 compares 2 letters of the unit",
        ),
        d("keepalive 1.2.3", false, "3.0.6 reads 1.2.3 as 1.2 (atof)"),
        d(
            "mcast eth0 225.0.0.1 694 256 1",
            false,
            "3.0.6 wraps ttl 256 to 0",
        ),
        d(
            "ucast eth0 localhost",
            false,
            "heartbeatd does not resolve host names",
        ),
        d(
            "ping localhost",
            false,
            "heartbeatd does not resolve host names",
        ),
        d("quorum_server qs", false, "Pacemaker-only, refused"),
        d(
            "stonith_host * null foo",
            false,
            "no STONITH plugins in heartbeatd",
        ),
        d(
            "failfast root /bin/true",
            false,
            "no client API in heartbeatd",
        ),
        d("use_apphbd on", false, "no apphbd in heartbeatd"),
        d(
            "crm_daemon_dir /x",
            true,
            "3.0.6's check is inverted; Pacemaker-only, noticed",
        ),
        d(
            "apiauth ipfail gid=haclient uid=alanr,root",
            true,
            "apiauth has no effect in heartbeatd, users are not looked up",
        ),
        d("stop_failure hold", true, "heartbeatd extension"),
        d("stop_retries 3", true, "heartbeatd extension"),
        d("agent_timeout all 30", true, "heartbeatd extension"),
        d(
            "node gamma \\\n  delta",
            true,
            "line continuation is a heartbeatd extension",
        ),
    ]);
    v.extend([
        Case {
            name: "haresources group without resources".into(),
            haresources: "alpha\n".into(),
            ..ha("", Differs(false, "a node without resources"))
        },
        Case {
            name: "haresources duplicate group key".into(),
            haresources: "alpha x\nbeta x\n".into(),
            ..ha("", Differs(false, "group keys must be unique"))
        },
        Case {
            name: "authkeys duplicate index".into(),
            authkeys: "auth 1\n1 crc\n1 md5 k\n".into(),
            ..ha(
                "",
                Differs(false, "3.0.6 keeps the last of two lines per index"),
            )
        },
        Case {
            name: "nodeinfo without line break".into(),
            ha_cf: "node alpha beta\nbcast eth0\nlogfacility local0\n".into(),
            nodeinfo: Some("gamma".into()),
            ..ha(
                "",
                Differs(false, "3.0.6 ignores a nodeinfo line without a line break"),
            )
        },
    ]);
    v
}

/// heartbeatd's verdict on a case directory (local node: nodeinfo, else
/// the oracle's hostname `alpha`).
fn ours(dir: &Path) -> Result<(), String> {
    let c = config::load(dir).map_err(|e| format!("{e:?}"))?;
    let node = if dir.join("nodeinfo").exists() {
        config::local_node_name(dir).map_err(|e| e.to_string())?
    } else {
        "alpha".into()
    };
    c.check_local_node(&node).map_err(|e| e.to_string())
}

#[test]
fn real_heartbeat_3_0_6_agrees_with_the_parser() {
    lab::require_root("the heartbeat 3.0.6 config oracle (namespaces)");
    lab::ensure_packages(&["heartbeat"]);
    assert!(
        Path::new(HB).exists(),
        "{HB} missing after installing heartbeat"
    );

    let work = tempfile::tempdir().unwrap();
    let cases = cases();
    for (i, c) in cases.iter().enumerate() {
        let etc = work.path().join(format!("cases/{i:03}/etc"));
        fs::create_dir_all(&etc).unwrap();
        fs::write(etc.join("ha.cf"), &c.ha_cf).unwrap();
        fs::write(etc.join("haresources"), &c.haresources).unwrap();
        fs::write(etc.join("authkeys"), &c.authkeys).unwrap();
        fs::set_permissions(
            etc.join("authkeys"),
            fs::Permissions::from_mode(c.authkeys_mode),
        )
        .unwrap();
        if let Some(n) = &c.nodeinfo {
            fs::write(etc.join("nodeinfo"), n).unwrap();
        }
    }
    for d in ["run", "lib"] {
        fs::create_dir_all(work.path().join(d)).unwrap();
    }
    // One set of namespaces for all cases; the case's files are bound over
    // /etc/ha.d for each run.
    let script = r#"
        set -u
        W=$1 HB=$2
        ip link set lo up
        ip link add eth0 type veth peer name eth1
        ip addr add 10.99.0.1/24 brd + dev eth0
        ip addr add 10.99.1.1/24 brd + dev eth1
        ip link set eth0 up; ip link set eth1 up
        hostname alpha
        mount --bind "$W/run" /run
        mount --bind "$W/lib" /var/lib/heartbeat
        if [ -e /bin/systemctl ]; then mount --bind /bin/true /bin/systemctl; fi
        sleep 600 &
        echo $! > /run/heartbeat.pid
        for c in "$W"/cases/*; do
            mount --bind "$c/etc" /etc/ha.d || exit 1
            timeout 20 "$HB" -f > "$c/out" 2>&1
            echo $? > "$c/rc"
            umount /etc/ha.d
        done
    "#;
    let out = Command::new("unshare")
        .args([
            "--net",
            "--mount",
            "--uts",
            "--ipc",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "oracle",
        ])
        .arg(work.path())
        .arg(HB)
        .output()
        .expect("run unshare");
    assert!(
        out.status.success(),
        "oracle namespace failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let mut report = String::new();
    let mut differences = 0;
    for (i, c) in cases.iter().enumerate() {
        let dir = work.path().join(format!("cases/{i:03}"));
        let rc: i32 = fs::read_to_string(dir.join("rc"))
            .unwrap_or_else(|e| panic!("case {}: no rc: {e}", c.name))
            .trim()
            .parse()
            .unwrap();
        let hb_out = fs::read_to_string(dir.join("out")).unwrap_or_default();
        let hb_ok = match rc {
            0 => {
                assert!(
                    hb_out.contains("already running"),
                    "case {}: 3.0.6 exited 0 without parsing to the end:\n{hb_out}",
                    c.name
                );
                true
            }
            6 => false,
            other => panic!("case {}: 3.0.6 exited {other}:\n{hb_out}", c.name),
        };
        let our = ours(&dir.join("etc"));
        let want_ours = match c.verdict {
            Same(ok) => {
                if hb_ok != ok {
                    writeln!(
                        report,
                        "case {}: 3.0.6 {} it, the table says {}:\n{hb_out}",
                        c.name,
                        if hb_ok { "accepts" } else { "refuses" },
                        if ok { "accept" } else { "refuse" },
                    )
                    .unwrap();
                }
                ok
            }
            Differs(o, why) => {
                differences += 1;
                if hb_ok == o {
                    writeln!(
                        report,
                        "case {} ({why}): documented as a difference, but 3.0.6 {} it too:\n{hb_out}",
                        c.name,
                        if hb_ok { "accepts" } else { "refuses" }
                    )
                    .unwrap();
                }
                o
            }
        };
        if our.is_ok() != want_ours {
            writeln!(
                report,
                "case {}: heartbeatd {} it ({:?}), 3.0.6 {}",
                c.name,
                if our.is_ok() { "accepts" } else { "refuses" },
                our,
                if hb_ok { "accepts" } else { "refuses" }
            )
            .unwrap();
        }
    }
    assert!(report.is_empty(), "{report}");
    eprintln!(
        "config oracle: {} cases, heartbeatd and 3.0.6 agree on {}, {} documented differences",
        cases.len(),
        cases.len() - differences,
        differences
    );
}
