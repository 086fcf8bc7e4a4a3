//! Shared helpers of the agent tests: agent binaries copied to a directory
//! any user can traverse (ocf-tester runs meta-data as `nobody`), a private
//! state directory per test, namespaces with a veth pair, a packet capture.
#![allow(dead_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lab::Netns;

/// The agent binaries of this crate, by installed name.
pub const AGENTS: &[(&str, &str)] = &[
    ("IPaddr", env!("CARGO_BIN_EXE_IPaddr")),
    ("lvs", env!("CARGO_BIN_EXE_lvs")),
    ("ldirectord", env!("CARGO_BIN_EXE_ldirectord-ocf")),
    ("ipvsadm", env!("CARGO_BIN_EXE_ipvsadm")),
];

/// The seed's /etc/sysconfig/ipvsadm (LVS-TUN, round robin).
pub const SEED_RULES: &str = "-A -t 192.168.136.10:80 -s rr
-a -t 192.168.136.10:80 -r 192.168.136.11:80 -i
-a -t 192.168.136.10:80 -r 192.168.136.12:80 -i
-a -t 192.168.136.10:80 -r 192.168.136.101:80 -i
-a -t 192.168.136.10:80 -r 192.168.136.102:80 -i
-a -t 192.168.136.10:80 -r 192.168.136.103:80 -i
";

/// A world-readable copy of the agents plus a private state directory.
pub struct Agents {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
}

impl Agents {
    pub fn new() -> Agents {
        let dir = tempfile::Builder::new()
            .prefix("hbrs-agents-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for (name, src) in AGENTS {
            let dst = dir.path().join(name);
            std::fs::copy(src, &dst).unwrap_or_else(|e| panic!("copy {src}: {e}"));
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let state = dir.path().join("state");
        Agents { dir, state }
    }

    pub fn path(&self, agent: &str) -> PathBuf {
        self.dir.path().join(agent)
    }

    /// `ip netns exec NS AGENT args...` with HA_RSCTMP set and the OCF
    /// variables of this test process removed.
    pub fn cmd(&self, ns: &Netns, agent: &str, args: &[&str]) -> Command {
        let mut c = ns.cmd(self.path(agent).to_str().unwrap());
        c.args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("OCF_") || k.starts_with("HA_") || k == "__OCF_ACTION" {
                c.env_remove(k);
            }
        }
        c.env("HA_RSCTMP", &self.state);
        c
    }

    /// Runs an agent; returns (exit code, stdout, stderr).
    pub fn run(&self, ns: &Netns, agent: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd(ns, agent, args);
        for (k, v) in env {
            c.env(k, v);
        }
        Run::from(lab::run(&mut c))
    }

    /// Runs an agent in OCF mode: `OCF_RESKEY_<k>=<v>` for each pair.
    pub fn ocf(&self, ns: &Netns, agent: &str, action: &str, params: &[(&str, &str)]) -> Run {
        let mut env: Vec<(String, String)> = vec![
            ("OCF_ROOT".into(), "/usr/lib/ocf".into()),
            ("OCF_RESOURCE_INSTANCE".into(), "test".into()),
        ];
        for (k, v) in params {
            env.push((format!("OCF_RESKEY_{k}"), v.to_string()));
        }
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.run(ns, agent, &[action], &e)
    }

    /// Files in the state directory.
    pub fn state_files(&self) -> Vec<String> {
        match std::fs::read_dir(&self.state) {
            Ok(d) => {
                let mut v: Vec<String> = d
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v
            }
            Err(_) => Vec::new(),
        }
    }
}

/// What an agent run produced.
#[derive(Debug)]
pub struct Run {
    pub rc: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            rc: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing the output otherwise.
    pub fn rc(&self, want: i32) -> &Run {
        assert_eq!(self.rc, want, "unexpected exit code: {self:#?}");
        self
    }
}

/// Two namespaces joined by a veth pair: `va` 10.99.0.1/24 in `a`,
/// `vb` 10.99.0.2/24 in `b`.
pub fn pair() -> (Netns, Netns) {
    let a = Netns::new("raa");
    let b = Netns::new("rab");
    lab::veth(&a, "va", "10.99.0.1/24", &b, "vb", "10.99.0.2/24");
    (a, b)
}

/// `ip -o addr show` of the namespace (all interfaces).
pub fn addrs(ns: &Netns) -> String {
    ns.ip(&["-o", "addr", "show"])
}

/// `sysctl -n KEY` in the namespace.
pub fn sysctl(ns: &Netns, key: &str) -> String {
    ns.sh(&format!("sysctl -n {key}")).trim().to_string()
}

/// Enters `ns` on the current thread (use from a dedicated thread).
pub fn enter(ns_name: &str) {
    let path = format!("/run/netns/{ns_name}");
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|e| panic!("setns {path}: {e}"));
}

/// An AF_PACKET socket bound to one interface and EtherType.
pub struct Capture {
    fd: OwnedFd,
}

impl Capture {
    pub fn open(ifname: &str, ethertype: u16) -> Capture {
        // SAFETY: plain socket/bind/setsockopt calls on a descriptor we own.
        unsafe {
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                ethertype.to_be() as i32,
            );
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

    /// Frames matching `keep` until `n` arrived or `timeout` passed.
    pub fn frames(
        &self,
        n: usize,
        timeout: Duration,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Vec<Vec<u8>> {
        let end = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while got.len() < n && Instant::now() < end {
            // SAFETY: buf is valid for its length.
            let r =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if r > 0 && keep(&buf[..r as usize]) {
                got.push(buf[..r as usize].to_vec());
            }
        }
        got
    }
}

/// Starts capturing on `ifname` in namespace `ns` (a thread), returning a
/// handle whose `join` gives the frames.
pub fn capture_in(
    ns: &Netns,
    ifname: &'static str,
    ethertype: u16,
    n: usize,
    timeout: Duration,
    keep: impl Fn(&[u8]) -> bool + Send + 'static,
) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    let name = ns.name().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        enter(&name);
        let cap = Capture::open(ifname, ethertype);
        tx.send(()).unwrap();
        cap.frames(n, timeout, keep)
    });
    rx.recv().expect("capture thread started");
    h
}

/// The MAC of `ifname` in `ns` (from `ip -o link`).
pub fn mac_of(ns: &Netns, ifname: &str) -> [u8; 6] {
    let out = ns.ip(&["-o", "link", "show", "dev", ifname]);
    let m = out
        .split("link/ether ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no MAC in {out}"));
    let v: Vec<u8> = m
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// Does `path` exist?
pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// Writes a stand-in for the ldirectord daemon's CLI into `dir`:
/// `ldirectord CONFIG start|stop|status|reload` with the real one's exit
/// codes (status: 0 running, 1 stale pid file, 3 stopped; 2 configuration
/// errors). The "daemon" is a `sleep` in its own session; its pid goes to
/// `$LDSTANDIN_PIDFILE`. A config containing `BROKEN` makes every verb
/// exit 2; a file `CONFIG.stubborn` makes `stop` do nothing; `reload`
/// appends a line to `CONFIG.reloads`.
pub fn ldirectord_standin(dir: &Path) -> PathBuf {
    let p = dir.join("ldirectord-standin");
    std::fs::write(
        &p,
        r#"#!/bin/sh
cf=$1; verb=$2
pidfile=${LDSTANDIN_PIDFILE:?}
if [ -z "$verb" ]; then echo "usage: ldirectord [configfile] start|stop|status|reload" >&2; exit 1; fi
if grep -q BROKEN "$cf"; then echo "Error [$$] reading file $cf at line 1: BROKEN" >&2; exit 2; fi
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case $verb in
start)
    if running; then echo "ldirectord for $cf is already running"; exit 0; fi
    setsid sleep 300 </dev/null >/dev/null 2>&1 &
    echo $! > "$pidfile"
    echo "Starting ldirectord... success"; exit 0 ;;
stop)
    [ -f "$cf.stubborn" ] && exit 0
    if running; then kill "$(cat "$pidfile")"; fi
    rm -f "$pidfile"; exit 0 ;;
status)
    if running; then echo "ldirectord for $cf is running with pid: $(cat "$pidfile")"; exit 0; fi
    if [ -f "$pidfile" ]; then echo "ldirectord stale pid file $pidfile for $cf" >&2; exit 1; fi
    echo "ldirectord is stopped for $cf" >&2; exit 3 ;;
reload)
    running || exit 7
    echo reloaded >> "$cf.reloads"; exit 0 ;;
*) echo "usage: ldirectord [configfile] start|stop|status|reload" >&2; exit 1 ;;
esac
"#,
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Shell helpers every guest payload starts with: `fail MSG` (prints MSG and
/// the payload's own `diag` output, exits 1) and `expect RC CMD...` (runs CMD,
/// fails unless it exits RC).
const GUEST_SH: &str = r#"#!/bin/sh
set -u
fail() { echo "FAIL: $*"; diag; exit 1; }
expect() {
    want=$1; shift
    "$@" >/tmp/out 2>&1; rc=$?
    [ "$rc" = "$want" ] || { cat /tmp/out; fail "$* exited $rc, want $want"; }
}
"#;

/// Runs `body` (a shell script defining `diag` and ending with
/// `echo "GUEST OK"`) in the real-IPVS guest with `files` (host path, guest
/// path) copied in; panics unless it succeeded. Returns its output.
pub fn run_in_guest(body: &str, files: &[(&Path, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("payload.sh");
    std::fs::write(&script, format!("{GUEST_SH}{body}")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut guest = lab::ipvs_vm::Guest::new(&script).timeout(Duration::from_secs(180));
    for (host, path) in files {
        guest = guest.file(*host, *path);
    }
    let out = guest
        .run()
        .unwrap_or_else(|e| panic!("IPVS guest harness: {e}"));
    println!("{}", out.output);
    out.assert_success();
    assert!(out.output.contains("GUEST OK"), "{}", out.output);
    out.output
}
