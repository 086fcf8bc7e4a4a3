//! `v1-ocf` side by side with heartbeat 3.0.6's own wrappers in
//! `/etc/ha.d/resource.d` (Debian's `heartbeat` package): same arguments,
//! same environment, compared stdout (the verdict lines heartbeat judges
//! `status` by, the usage) and exit codes. Agents that change the system run
//! in a network namespace with a veth pair or in a private mount namespace
//! made by the test; the real wrapper's sequence runs first, then ours, and
//! each must leave things as they were.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use lab::Netns;
use resource_agents::v1ocf::WRAPPERS;

const REAL: &str = "/etc/ha.d/resource.d";

fn setup() {
    lab::require_root("the v1 wrapper tests");
    lab::ensure_packages(&["heartbeat", "resource-agents"]);
}

/// Our binary linked under every wrapper name, in a directory of its own.
struct Ours {
    dir: tempfile::TempDir,
}

impl Ours {
    fn new() -> Ours {
        let dir = tempfile::Builder::new()
            .prefix("hbrs-v1ocf-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for w in WRAPPERS {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_v1-ocf"), dir.path().join(w.name))
                .unwrap();
        }
        Ours { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// What one wrapper call gave: stdout with the program's directory cut
/// off (the usage names `$0`), and the exit code.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    stdout: String,
    rc: i32,
}

/// Where a wrapper runs.
enum Place<'a> {
    Here,
    Netns(&'a Netns),
    /// `nsenter -t PID -m`: the mount namespace of that process
    Mounts(u32),
}

/// Runs `prog args` in `place` with the test's OCF_*/HA_* variables
/// removed, `HA_RSCTMP` = `rsctmp`, plus `env`.
fn call(place: &Place, prog: &Path, args: &[&str], rsctmp: &Path, env: &[(&str, &str)]) -> Seen {
    let p = prog.to_str().unwrap();
    let mut c = match place {
        Place::Here => Command::new(p),
        Place::Netns(ns) => ns.cmd(p),
        Place::Mounts(pid) => {
            let mut c = Command::new("nsenter");
            c.args(["-t", &pid.to_string(), "-m", p]);
            c
        }
    };
    c.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("OCF_") || k.starts_with("HA_") || k == "__OCF_ACTION" {
            c.env_remove(k);
        }
    }
    c.env("HA_RSCTMP", rsctmp);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = lab::run(&mut c);
    let dir = format!("{}/", prog.parent().unwrap().display());
    Seen {
        stdout: String::from_utf8_lossy(&out.stdout).replace(&dir, ""),
        rc: out.status.code().unwrap_or(-1),
    }
}

/// Runs the same call through the real wrapper and ours, asserts the same
/// stdout and exit code, returns what both saw.
fn both(
    ours: &Ours,
    place: &Place,
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
    rsctmp: &Path,
) -> Seen {
    let real = call(place, &Path::new(REAL).join(name), args, rsctmp, env);
    let mine = call(place, &ours.path(name), args, rsctmp, env);
    assert_eq!(mine, real, "{name} {args:?}: ours (left) vs 3.0.6 (right)");
    mine
}

/// `status start status stop status` through the real wrapper, then the
/// same through ours, each step compared; `up`, if given, reads the system
/// after each step (true: the resource is up after start, not before or
/// after stop).
fn lifecycle(
    ours: &Ours,
    place: &Place,
    name: &str,
    params: &[&str],
    env: &[(&str, &str)],
    up: Option<&dyn Fn() -> bool>,
) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut runs: [Vec<Seen>; 2] = [Vec::new(), Vec::new()];
    for (i, prog) in [Path::new(REAL).join(name), ours.path(name)]
        .iter()
        .enumerate()
    {
        let rsctmp = tempfile::tempdir().unwrap();
        for (step, action) in ["status", "start", "status", "stop", "status"]
            .iter()
            .enumerate()
        {
            let mut a = params.to_vec();
            a.push(action);
            let s = call(place, prog, &a, rsctmp.path(), env);
            if let Some(up) = up {
                assert_eq!(
                    up(),
                    step == 1 || step == 2,
                    "{} {a:?} gave {s:?}: up after step {step}?",
                    prog.display()
                );
            }
            runs[i].push(s);
        }
    }
    for (step, (mine, real)) in runs[1].iter().zip(&runs[0]).enumerate() {
        assert_eq!(mine, real, "{name} {params:?}, step {step}: ours vs 3.0.6");
        seen.push(Seen {
            stdout: mine.stdout.clone(),
            rc: mine.rc,
        });
    }
    seen
}

/// Arguments each wrapper accepts (none of these calls runs an agent: the
/// actions given are `usage` and unknown ones).
fn good_args(name: &str) -> Vec<&'static str> {
    match name {
        "AudibleAlarm" => vec!["node1", "node2"],
        "Delay" => vec!["1", "2"],
        "Filesystem" => vec!["/dev/sdz1", "/srv/data", "ext4"],
        "ICP" => vec!["c1d0", "/dev/sdz"],
        "IPaddr2" => vec!["10.254.0.1/24/lo"],
        "IPsrcaddr" => vec!["10.254.0.1"],
        "IPv6addr" => vec!["2001:db8::1/64/lo"],
        "LVM" => vec!["vgtest"],
        "LinuxSCSI" => vec!["0:0:9"],
        "MailTo" => vec!["root@localhost", "failover"],
        "Raid1" => vec!["/etc/raidtab", "/dev/md9"],
        "SendArp" => vec!["10.254.0.1/lo"],
        "ServeRAID" => vec!["1", "2"],
        "WAS" => vec!["9080"],
        "WinPopup" => vec!["/etc/hosts.smb"],
        "Xinetd" => vec!["tftp"],
        "apache" => vec!["/etc/httpd.conf"],
        "db2" => vec!["db2inst1"],
        "ids" => vec!["/opt/ifx", "srv", "onconfig.srv"],
        "portblock" => vec!["tcp", "80", "block"],
        other => panic!("no arguments for {other} in the test"),
    }
}

#[test]
fn usage_and_unknown_action_match_for_every_name() {
    setup();
    let ours = Ours::new();
    let rsctmp = tempfile::tempdir().unwrap();
    let t = rsctmp.path();
    for w in WRAPPERS {
        let n = w.name;
        let args = good_args(n);
        // too few arguments (none), and far too many (an unknown action
        // for the two that take any number: nothing may start)
        let s = both(&ours, &Place::Here, n, &[], &[], t);
        assert_eq!(s.rc, 1, "{n} without arguments: {s:?}");
        let many = ["a", "b", "c", "d", "e", "f", "bogus"];
        let s = both(&ours, &Place::Here, n, &many, &[], t);
        assert_eq!(s.rc, 1, "{n} {many:?}: {s:?}");
        // unknown actions, meta-data included (hto-mapfuncs lists it but
        // does not run it)
        for bad in ["bogus", "meta-data"] {
            let mut a = args.clone();
            a.push(bad);
            let s = both(&ours, &Place::Here, n, &a, &[], t);
            assert_eq!(s.rc, 1, "{n} {a:?}: {s:?}");
            assert!(
                s.stdout
                    .starts_with(&format!("ERROR: Unknown operation: {bad}\n")),
                "{n} {a:?}: {s:?}"
            );
        }
        // the usage action; 3.0.6's Xinetd calls a usage function it does
        // not have ("Unknown error: 127"), ours prints its usage text
        let mut a = args.clone();
        a.push("usage");
        if n == "Xinetd" {
            let real = call(&Place::Here, &Path::new(REAL).join(n), &a, t, &[]);
            let mine = call(&Place::Here, &ours.path(n), &a, t, &[]);
            assert_eq!((real.rc, mine.rc), (1, 1));
            assert_eq!(real.stdout, "ERROR:  Unknown error: 127\n");
            assert!(mine
                .stdout
                .starts_with("Usage: Xinetd <xinetd-service-name>"));
        } else {
            both(&ours, &Place::Here, n, &a, &[], t);
        }
    }
    // wrapper-specific refusals
    both(&ours, &Place::Here, "MailTo", &["start"], &[], t);
    both(&ours, &Place::Here, "WAS", &["not/a/file", "start"], &[], t);
    both(
        &ours,
        &Place::Here,
        "WinPopup",
        &["a", "b", "start"],
        &[],
        t,
    );
    both(
        &ours,
        &Place::Here,
        "Filesystem",
        &["/dev/sdz1", "", "start"],
        &[],
        t,
    );
    both(&ours, &Place::Here, "ids", &["a", "b", "start"], &[], t);
    both(&ours, &Place::Here, "IPsrcaddr", &["start"], &[], t);
    assert_eq!(std::fs::read_dir(t).unwrap().count(), 0, "nothing ran");
}

#[test]
fn delay_lifecycle() {
    setup();
    let ours = Ours::new();
    // mondelay is no wrapper argument: inherited from the environment
    let env = [("OCF_RESKEY_mondelay", "0")];
    // Delay changes nothing on the system: the verdicts are the judges
    let seen = lifecycle(&ours, &Place::Here, "Delay", &["0", "0"], &env, None);
    let want = [
        ("INFO:  Resource is stopped\n", 7),
        ("INFO:  Success\n", 0),
        ("INFO:  Running OK\n", 0),
        ("INFO:  Success\n", 0),
        ("INFO:  Resource is stopped\n", 7),
    ];
    for (s, (out, rc)) in seen.iter().zip(want) {
        assert_eq!((s.stdout.as_str(), s.rc), (out, rc));
    }
}

/// A namespace with `veth0` 10.77.0.1/24 and a peer at 10.77.0.2.
fn two_ends() -> (Netns, Netns) {
    let a = Netns::new("v1oa");
    let b = Netns::new("v1ob");
    lab::veth(&a, "veth0", "10.77.0.1/24", &b, "veth1", "10.77.0.2/24");
    (a, b)
}

#[test]
fn ipaddr2_lifecycle_in_a_netns() {
    setup();
    let ours = Ours::new();
    let (a, _b) = two_ends();
    let has_vip = || {
        a.ip(&["-4", "addr", "show", "dev", "veth0"])
            .contains("10.77.0.10/24")
    };
    let seen = lifecycle(
        &ours,
        &Place::Netns(&a),
        "IPaddr2",
        &["10.77.0.10/24/veth0"],
        &[],
        Some(&has_vip),
    );
    assert_eq!(seen[0].stdout, "INFO:  Resource is stopped\n");
    assert_eq!(seen[2].stdout, "INFO:  Running OK\n");
    assert_eq!(
        seen.iter().map(|s| s.rc).collect::<Vec<_>>(),
        [7, 0, 0, 0, 7]
    );
}

#[test]
fn sendarp_and_ipsrcaddr_lifecycle_in_a_netns() {
    setup();
    let ours = Ours::new();
    let (a, _b) = two_ends();
    // SendArp keeps only a state file: judged by the verdicts; it runs
    // under `set -e`, so a stopped status exits 7 with no verdict line
    let seen = lifecycle(
        &ours,
        &Place::Netns(&a),
        "SendArp",
        &["10.77.0.1/veth0"],
        &[],
        None,
    );
    assert_eq!(
        seen.iter().map(|s| s.rc).collect::<Vec<_>>(),
        [7, 0, 0, 0, 7]
    );
    assert_eq!(seen[0].stdout, "");
    assert_eq!(seen[2].stdout, "INFO:  Running OK\n");

    // IPsrcaddr sets the preferred source of the default route
    a.ip(&["route", "add", "default", "via", "10.77.0.2"]);
    a.ip(&["addr", "add", "10.77.0.20/24", "dev", "veth0"]);
    let src = || {
        a.ip(&["route", "show", "default"])
            .contains("src 10.77.0.20")
    };
    let seen = lifecycle(
        &ours,
        &Place::Netns(&a),
        "IPsrcaddr",
        &["10.77.0.20"],
        &[],
        Some(&src),
    );
    assert_eq!(
        seen.iter().map(|s| s.rc).collect::<Vec<_>>(),
        [7, 0, 0, 0, 7]
    );
    // the agent prints its own "OK" first; both wrappers pass it through
    assert_eq!(seen[2].stdout, "OK\nINFO:  Running OK\n");
}

/// A process in a private mount namespace (`unshare -m`), killed on drop.
struct MountNs(Child);

impl MountNs {
    fn new() -> MountNs {
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sleep", "600"])
            .spawn()
            .expect("unshare");
        // wait until the child is inside its own mount namespace
        let mine = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        let id = child.id();
        lab::wait_until(std::time::Duration::from_secs(5), || {
            std::fs::read_link(format!("/proc/{id}/ns/mnt"))
                .ok()
                .filter(|l| *l != mine)
        })
        .expect("unshare -m never entered a new mount namespace");
        MountNs(child)
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn filesystem_tmpfs_lifecycle_in_a_private_mount_namespace() {
    setup();
    let ours = Ours::new();
    let ns = MountNs::new();
    let pid = ns.0.id();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let mounted = || {
        std::fs::read_to_string(format!("/proc/{pid}/mounts"))
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(d.as_str()))
    };
    let seen = lifecycle(
        &ours,
        &Place::Mounts(pid),
        "Filesystem",
        &["tmpfs", &d, "tmpfs"],
        &[],
        Some(&mounted),
    );
    assert_eq!(
        seen.iter().map(|s| s.rc).collect::<Vec<_>>(),
        [7, 0, 0, 0, 7]
    );
    assert_eq!(seen[2].stdout, "INFO:  Running OK\n");
    let host = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!host.contains(&d), "the host never saw the mount");
}

#[test]
fn mailto_and_apache_without_their_programs() {
    setup();
    let ours = Ours::new();
    let path = [("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")];
    for prog in ["mail", "httpd", "apache2"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {prog}")])
            .env("PATH", path[0].1)
            .output()
            .unwrap();
        assert!(
            !found.status.success(),
            "{prog} is installed here; this test needs it absent"
        );
    }
    for (name, params) in [
        ("MailTo", vec!["root@localhost", "failover"]),
        ("apache", vec!["/etc/httpd/conf/httpd.conf"]),
    ] {
        let rsctmp = tempfile::tempdir().unwrap();
        for action in ["status", "start", "status", "stop", "status"] {
            let mut a = params.clone();
            a.push(action);
            let s = both(&ours, &Place::Here, name, &a, &path, rsctmp.path());
            if action == "start" {
                assert_eq!(
                    (s.stdout.as_str(), s.rc),
                    ("ERROR:  Program is not installed\n", 5),
                    "{name} {a:?}"
                );
            }
        }
    }
}

#[test]
fn the_agent_sees_the_mapping_and_the_verdict_is_logged() {
    let ours = Ours::new();
    let root = tempfile::tempdir().unwrap();
    let agents = root.path().join("resource.d/heartbeat");
    std::fs::create_dir_all(&agents).unwrap();
    let dump = root.path().join("env");
    let rc = root.path().join("rc");
    let script = format!(
        "#!/bin/sh\n{{ echo \"ARG=$1\"; env | grep -E '^(OCF_|LC_ALL|LANG=)' | sort; }} > {}\nexit $(cat {})\n",
        dump.display(),
        rc.display()
    );
    let agent = agents.join("IPaddr2");
    std::fs::write(&agent, script).unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = root.path().join("ha-log");
    let env = [
        ("OCF_ROOT", root.path().to_str().unwrap()),
        ("HA_LOGFILE", log.to_str().unwrap()),
        ("LANG", "de_DE.UTF-8"),
    ];
    let t = root.path();
    let prog = ours.path("IPaddr2");

    std::fs::write(&rc, "0").unwrap();
    let s = call(
        &Place::Here,
        &prog,
        &["10.1.2.3/24/eth1:vip/10.1.2.255", "status"],
        t,
        &env,
    );
    assert_eq!(
        s,
        Seen {
            stdout: "INFO:  Running OK\n".into(),
            rc: 0
        }
    );
    let got = std::fs::read_to_string(&dump).unwrap();
    let want = format!(
        "ARG=monitor\nLC_ALL=C\nOCF_RA_VERSION_MAJOR=1\nOCF_RA_VERSION_MINOR=0\n\
         OCF_RESKEY_broadcast=10.1.2.255\nOCF_RESKEY_cidr_netmask=24\nOCF_RESKEY_ip=10.1.2.3\n\
         OCF_RESKEY_lvs_support=1\nOCF_RESKEY_nic=eth1:vip\nOCF_RESOURCE_INSTANCE=IPaddr2_10.1.2.3\n\
         OCF_ROOT={}\nOCF_TYPE=IPaddr2\n",
        root.path().display()
    );
    assert_eq!(got, want);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("IPaddr2(IPaddr2_10.1.2.3)[") && logged.contains("]: INFO: Running OK"),
        "{logged}"
    );

    // an exit code hto-mapfuncs does not know: its verdict, and exit 1
    std::fs::write(&rc, "9").unwrap();
    let s = call(&Place::Here, &prog, &["10.1.2.3", "start"], t, &env);
    assert_eq!(
        s,
        Seen {
            stdout: "ERROR:  Unknown error: 9\n".into(),
            rc: 1
        }
    );
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("]: ERROR: Unknown error: 9"));
    std::fs::write(&rc, "6").unwrap();
    let s = call(&Place::Here, &prog, &["10.1.2.3", "stop"], t, &env);
    assert_eq!(
        s,
        Seen {
            stdout: "ERROR:  Program is not configured\n".into(),
            rc: 6
        }
    );

    // the agent missing: its path and the package named, exit 1
    std::fs::remove_file(&agent).unwrap();
    let s = call(&Place::Here, &prog, &["10.1.2.3", "start"], t, &env);
    assert_eq!(s.rc, 1);
    assert!(
        s.stdout
            .contains(&format!("{} is not an executable file", agent.display()))
            && s.stdout.contains("resource-agents"),
        "{s:?}"
    );
    // called by a name it does not serve
    let other = root.path().join("Nonesuch");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_v1-ocf"), &other).unwrap();
    let s = call(&Place::Here, &other, &["start"], t, &env);
    assert_eq!(s.rc, 1);
}
