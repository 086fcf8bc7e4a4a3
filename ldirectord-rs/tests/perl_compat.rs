//! The seed's ldirectord.cf and the example shipped with Debian's
//! `ldirectord` package, run by the Perl ldirectord 4.12 (driven with our
//! ipvsadm stand-in over hanet's file table) and by ours: the IPVS tables
//! they build must be the same — every virtual service with its scheduler,
//! persistence and protocol, every real server with its forwarding method,
//! port and weight, the fallback servers.
//!
//! Two runs per file: with every check forced on (all reals up: the table
//! shows every real as the daemon parsed it) and as written (the reals are
//! unreachable here: the table shows the services and the fallbacks).

mod common;

use common::*;
use std::os::unix::fs::symlink;
use std::process::{Command, Stdio};
use std::time::Duration;

const SEED: &str = "# Global Directives
checktimeout=3
checkinterval=1
# A sample virtual with a fallback that overrides the global setting
virtual=192.168.136.10:80
        real=192.168.136.101:80 ipip
        real=192.168.136.102:80 ipip
        real=192.168.136.103:80 ipip
        service=http
        request=\"test.html\"
        receive=\"Test Page\"
        virtualhost=www.funbsd.net
        scheduler=rr
        protocol=tcp
";

/// `cleanstop=no` (the table survives the stop) and, if `all_on`,
/// `checktype=on` in every virtual service instead of its checktype.
fn variant(text: &str, all_on: bool) -> String {
    let mut out = String::from("cleanstop=no\n");
    for l in text.lines() {
        let t = l.trim_start();
        if all_on && t.starts_with("checktype") && l.starts_with([' ', '\t']) {
            continue;
        }
        out.push_str(l);
        out.push('\n');
        if all_on && (l.starts_with("virtual=") || l.starts_with("virtual6=")) {
            out.push_str("\tchecktype=on\n");
        }
    }
    out
}

/// Runs a daemon with `-d` in a fresh namespace until the table is stable
/// and equal to `want` (if given) or stops changing; returns the table.
fn run_daemon(perl: bool, cfg_text: &str, want: Option<&str>) -> String {
    let e = Env::new();
    let ns = lab::Netns::new(if perl { "ldpl" } else { "ldrs" });
    let cfg = e.write("ld.cf", cfg_text);
    let mut cmd = if perl {
        symlink(STANDIN, e.path("ipvsadm")).unwrap();
        let mut c = ns.cmd("/usr/sbin/ldirectord");
        c.current_dir(e.dir.path()).env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
        c
    } else {
        ns.cmd(BIN)
    };
    cmd.args(["-d", cfg.to_str().unwrap(), "start"])
        .env(
            "HANET_IPVS_BACKEND",
            format!("file:{}", e.table_path().display()),
        )
        .env("LDIRECTORD_RUNDIR", e.path("run"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(e.path("daemon.err")).unwrap(),
        ));
    let mut child = cmd.spawn().unwrap();
    let listing = || {
        let o = Command::new(STANDIN)
            .args(["-L", "-n"])
            .env(
                "HANET_IPVS_BACKEND",
                format!("file:{}", e.table_path().display()),
            )
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // the Perl daemon needs a few seconds to start and check once
    let limit = Duration::from_secs(if perl { 40 } else { 10 });
    let mut last = String::new();
    let mut stable_since = std::time::Instant::now();
    let t0 = std::time::Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = listing();
        if now != last {
            last = now;
            stable_since = std::time::Instant::now();
        }
        let settled = match want {
            Some(w) => last == w && stable_since.elapsed() > Duration::from_millis(1500),
            None => !last.is_empty() && stable_since.elapsed() > Duration::from_secs(3),
        };
        if settled || t0.elapsed() > limit {
            break;
        }
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    // the stop must leave the table (cleanstop=no)
    let after = listing();
    assert_eq!(
        after,
        last,
        "{} changed the table on a stop with cleanstop=no",
        if perl { "Perl" } else { "ours" }
    );
    if last.lines().count() <= 3 {
        panic!(
            "{} built no table:\n{}",
            if perl {
                "Perl ldirectord"
            } else {
                "ldirectord"
            },
            e.read("daemon.err")
        );
    }
    last
}

fn compare(name: &str, text: &str) {
    lab::require_root("the Perl ldirectord comparison (network namespaces)");
    lab::ensure_packages(&["ldirectord"]);
    for all_on in [true, false] {
        let v = variant(text, all_on);
        let ours = run_daemon(false, &v, None);
        let perl = run_daemon(true, &v, Some(&ours));
        assert_eq!(
            perl,
            ours,
            "{name} (checks {}): the Perl daemon's table (left) differs from ours (right)",
            if all_on { "forced on" } else { "as written" }
        );
        eprintln!("{name} (all_on={all_on}): identical tables\n{ours}");
    }
}

#[test]
fn seed_configuration_same_table_as_perl() {
    compare("seed ldirectord.cf", SEED);
}

#[test]
fn debian_example_same_table_as_perl() {
    lab::ensure_packages(&["ldirectord"]);
    let text = std::fs::read_to_string("/usr/share/doc/ldirectord/examples/ldirectord.cf")
        .expect("Debian's ldirectord example");
    compare("Debian example ldirectord.cf", &text);
}

/// Our own file using the directives the two samples do not: ranges,
/// weights, thresholds, masq port mapping, persistence with netmask, UDP,
/// firewall marks with port-less reals, a service name as port, IPv6,
/// quiescent. (A port-less real in an address service is left out: the Perl
/// daemon never restores one from quiescence, see the README.)
const FEATURES: &str = "quiescent=yes
checkinterval=1
checktimeout=2
virtual=10.10.0.1:80
	real=10.20.0.1->10.20.0.3:80 gate 2
	real=10.20.0.9:8080 masq 5 l:5 u:10
	real=10.20.0.10:80 ipip
	scheduler=wlc
	persistent=300
	netmask=255.255.255.0
	checktype=connect
virtual=10.10.0.1:53
	real=10.20.0.1:53 gate
	scheduler=sh
	checktype=connect
virtual=10.10.0.2:https
	real=10.20.0.4:443 masq
	real=10.20.0.4:8443 masq 2
	service=https
virtual=42
	real=10.20.0.5 gate 3
	real=10.20.0.6:80 masq
	scheduler=rr
virtual6=[2001:db8::1]:80
	real6=[2001:db8::2]:80 masq 4
	real6=[2001:db8::3]:8080 masq
	checktype=connect
";

#[test]
fn feature_configuration_same_table_as_perl() {
    compare("feature ldirectord.cf", FEATURES);
}
