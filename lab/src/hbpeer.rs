//! A REAL heartbeat 3.0.6 node as a test peer.
//!
//! [`HbPeer::start`] runs the Debian package's
//! `/usr/libexec/heartbeat/heartbeat -f` as node `NAME` inside a network
//! namespace the test created, in its own mount, UTS, IPC and PID
//! namespaces:
//!
//! * hostname `NAME` (heartbeat and its scripts use `uname -n`);
//! * a private `/etc/ha.d`: the package's files (harc, rc.d, resource.d,
//!   shellfuncs) plus everything in the given config directory (`ha.cf`,
//!   `haresources`, `authkeys` — installed mode 600 —, `resource.d/*`,
//!   `nodeinfo`...); a `logfile`/`debugfile` in the state directory is added
//!   to ha.cf unless it names its own;
//! * a private `/run` (pid file, API socket, `rsctmp`) and a private
//!   `/var/lib/heartbeat` kept in the state directory, so the generation
//!   (`hb_generation`) and uuid survive restarts like on a real node (or
//!   start over with `fresh`);
//! * `/bin/true` bound over `/bin/systemctl` (which `/sbin/reboot` is), and
//!   its own PID namespace and `/proc`: ResourceManager's "recover from a
//!   failed stop" (`pkill -9 heartbeat; reboot -nf`) and heartbeat's own
//!   reboot(2) can only hit the instance, never the host.
//!
//! The namespace's init is a small shell that mounts all that, starts
//! heartbeat and then only waits: when heartbeat restarts itself after a
//! healed partition it re-executes **without** `-f` and daemonizes, so the
//! first pid exits while the node lives on; the instance therefore lasts
//! until [`HbPeer::stop`] or [`HbPeer::kill`], and [`HbPeer::master_pid`]
//! always finds the current master control process.
//!
//! Resource scripts are looked up in the private `/etc/ha.d/resource.d`
//! first, then in the host's `/etc/init.d`: give every resource a script in
//! the config directory's `resource.d`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::netns::Netns;
use crate::proc::{run_ok, wait_until};

/// The real daemon's binary.
pub const HEARTBEAT: &str = "/usr/libexec/heartbeat/heartbeat";

/// The namespace init: $1 = node name, $2 = state directory, $3 = binary.
const INIT: &str = r#"
set -e
hostname "$1"
mount --bind "$2/etc" /etc/ha.d
mount --bind "$2/run" /run
mount --bind "$2/lib" /var/lib/heartbeat
if [ -e /bin/systemctl ]; then mount --bind /bin/true /bin/systemctl; fi
echo "hbpeer: starting $3 -f as $(uname -n)" >&2
"$3" -f &
set +e
wait $!
echo "hbpeer: first heartbeat process exited (status $?); the instance stays up until stopped" >&2
while :; do sleep 3600; done
"#;

/// A running real heartbeat 3.0.6 instance. Dropping it kills the
/// instance (like [`HbPeer::kill`]).
#[derive(Debug)]
pub struct HbPeer {
    node: String,
    netns: String,
    statedir: PathBuf,
    logfile: PathBuf,
    launcher: Option<Child>,
    /// Host pid of the instance's PID-namespace init.
    init: i32,
}

impl HbPeer {
    /// Starts node `node` in `ns` with the files of `confdir` (which must
    /// hold `ha.cf`, `haresources` and `authkeys`), keeping its state in
    /// `statedir` (created if missing; emptied first if `fresh`). Waits
    /// until the master control process runs; panics with the instance's
    /// output otherwise.
    pub fn start(ns: &Netns, node: &str, confdir: &Path, statedir: &Path, fresh: bool) -> HbPeer {
        crate::require_root("running a real heartbeat 3.0.6 peer");
        crate::ensure_packages(&["heartbeat"]);
        assert!(
            Path::new(HEARTBEAT).is_file(),
            "{HEARTBEAT} missing although the heartbeat package is installed"
        );
        for f in ["ha.cf", "haresources", "authkeys"] {
            assert!(
                confdir.join(f).is_file(),
                "hbpeer: {} missing (the config directory needs ha.cf, haresources, authkeys)",
                confdir.join(f).display()
            );
        }
        if fresh && statedir.exists() {
            fs::remove_dir_all(statedir)
                .unwrap_or_else(|e| panic!("hbpeer: cannot empty {}: {e}", statedir.display()));
        }
        fs::create_dir_all(statedir).unwrap();
        let statedir = statedir.canonicalize().unwrap();

        // /etc/ha.d: package content + the test's files
        let etc = statedir.join("etc");
        remove_if_exists(&etc);
        fs::create_dir_all(&etc).unwrap();
        run_ok(Command::new("cp").arg("-a").arg("/etc/ha.d/.").arg(&etc));
        run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(confdir.join("."))
                .arg(&etc),
        );
        let mut ha_cf = fs::read_to_string(etc.join("ha.cf")).unwrap();
        let logfile = match directive_value(&ha_cf, "logfile") {
            Some(p) => host_path(&statedir, Path::new(&p)),
            None => {
                let p = statedir.join("ha-log");
                ha_cf.push_str(&format!("\nlogfile {}\n", p.display()));
                p
            }
        };
        if directive_value(&ha_cf, "debugfile").is_none() {
            ha_cf.push_str(&format!(
                "debugfile {}\n",
                statedir.join("ha-debug").display()
            ));
        }
        fs::write(etc.join("ha.cf"), ha_cf).unwrap();
        fs::set_permissions(etc.join("authkeys"), fs::Permissions::from_mode(0o600)).unwrap();

        // /run: fresh for every start, laid out like the package's tmpfiles.d
        let rundir = statedir.join("run");
        remove_if_exists(&rundir);
        let (uid, gid) = hacluster_ids();
        for d in [
            "heartbeat",
            "heartbeat/ccm",
            "heartbeat/crm",
            "heartbeat/dopd",
        ] {
            let p = rundir.join(d);
            fs::create_dir_all(&p).unwrap();
            nix::unistd::chown(&p, Some(uid), Some(gid)).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o750)).unwrap();
        }
        fs::create_dir_all(rundir.join("lock")).unwrap();
        fs::set_permissions(rundir.join("lock"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::create_dir_all(rundir.join("resource-agents")).unwrap();

        // /var/lib/heartbeat: kept across starts (generation, uuid, hostcache)
        let lib = statedir.join("lib");
        if !lib.exists() {
            mirror_dirs(Path::new("/var/lib/heartbeat"), &lib);
        }
        let _ = fs::remove_file(lib.join("fifo"));

        let console_path = statedir.join("console.log");
        let console = fs::File::create(&console_path).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns.name(), "unshare"])
            .args([
                "--uts",
                "--mount",
                "--ipc",
                "--pid",
                "--fork",
                "--kill-child",
            ])
            .args(["--mount-proc", "--propagation", "private"])
            .args(["/bin/sh", "-c", INIT, "hbpeer-init", node])
            .arg(&statedir)
            .arg(HEARTBEAT)
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .process_group(0);
        let mut launcher = cmd.spawn().expect("spawn ip netns exec unshare");
        let lpid = launcher.id() as i32;
        let init = wait_until(Duration::from_secs(10), || children(lpid).first().copied());
        let Some(init) = init else {
            let _ = launcher.kill();
            let _ = launcher.wait();
            panic!(
                "hbpeer {node}: the namespace init did not appear:\n{}",
                fs::read_to_string(&console_path).unwrap_or_default()
            );
        };
        let mut peer = HbPeer {
            node: node.to_owned(),
            netns: ns.name().to_owned(),
            statedir,
            logfile,
            launcher: Some(launcher),
            init,
        };
        if wait_until(Duration::from_secs(15), || peer.master_pid()).is_none() {
            let why = format!(
                "hbpeer {node}: heartbeat did not start\n--- console:\n{}\n--- log:\n{}",
                fs::read_to_string(&console_path).unwrap_or_default(),
                peer.log()
            );
            peer.kill();
            panic!("{why}");
        }
        peer
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    pub fn statedir(&self) -> &Path {
        &self.statedir
    }

    /// True while the instance's namespaces exist (its init lives).
    pub fn is_running(&self) -> bool {
        self.launcher.is_some() && alive(self.init)
    }

    /// Host pids of every process of the instance: its init first, then
    /// all descendants.
    pub fn pids(&self) -> Vec<i32> {
        if !self.is_running() {
            return Vec::new();
        }
        let mut all = vec![self.init];
        let mut i = 0;
        while i < all.len() {
            all.extend(children(all[i]));
            i += 1;
        }
        all
    }

    /// Host pid of heartbeat's master control process: the live heartbeat
    /// process whose parent is not heartbeat (after a daemonizing restart,
    /// the new one).
    pub fn master_pid(&self) -> Option<i32> {
        let pids = self.pids();
        pids.iter()
            .copied()
            .find(|&p| is_heartbeat(p) && alive(p) && !parent(p).is_some_and(is_heartbeat))
    }

    /// Graceful stop: SIGTERM to the master control process (what
    /// `heartbeat -k` does), waits up to `timeout` for it to exit (it
    /// releases its resources first), then removes the instance. If it is
    /// still running after `timeout` (3.0.6 can wait forever for a stuck
    /// resource transition), the instance is killed and `false` returned.
    pub fn stop(&mut self, timeout: Duration) -> bool {
        let graceful = match self.master_pid() {
            Some(m) => {
                let _ = kill(Pid::from_raw(m), Signal::SIGTERM);
                wait_until(timeout, || (!alive(m)).then_some(())).is_some()
            }
            None => true,
        };
        self.kill();
        graceful
    }

    /// Crash: SIGKILL to the instance's PID-namespace init, upon which the
    /// kernel kills every process of the instance at once.
    pub fn kill(&mut self) {
        if let Some(mut l) = self.launcher.take() {
            let _ = kill(Pid::from_raw(self.init), Signal::SIGKILL);
            let end = Instant::now() + Duration::from_secs(10);
            while alive(self.init) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = l.kill();
            let _ = l.wait();
        }
    }

    /// Runs `program args` inside the instance's namespaces (network,
    /// mount, UTS, IPC, PID), e.g. `cl_status hbstatus`.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        assert!(self.is_running(), "hbpeer {}: not running", self.node);
        Command::new("nsenter")
            .arg("-t")
            .arg(self.init.to_string())
            .args(["-n", "-m", "-u", "-i", "-p", "--", program])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run nsenter: {e}"))
    }

    /// `cl_status ARGS` inside the instance: its standard output, trimmed
    /// (whatever its exit status, e.g. `nodestatus` of a dead node).
    pub fn cl_status(&self, args: &[&str]) -> String {
        let out = self.exec("cl_status", args);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// heartbeat's log file so far (`logfile` of ha.cf).
    /// The log file so far (lossy: 3.0.6 dumps raw binary fields of bad
    /// packets into it).
    pub fn log(&self) -> String {
        fs::read(&self.logfile)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The generation number in the kept `hb_generation` file, if any.
    pub fn generation(&self) -> Option<u64> {
        fs::read_to_string(self.statedir.join("lib/hb_generation"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for HbPeer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The ha.cf the lab uses for fast real peers (as measured in the
/// reference): `bcast IFACE`, keepalive 200ms, warntime 600ms, deadtime 1,
/// initdead 2, auto_failback on, the given nodes.
pub fn default_ha_cf(iface: &str, nodes: &[&str]) -> String {
    let mut s = format!(
        "udpport 694\nbcast {iface}\nkeepalive 200ms\nwarntime 600ms\ndeadtime 1\n\
         initdead 2\nauto_failback on\n"
    );
    for n in nodes {
        s.push_str(&format!("node {n}\n"));
    }
    s
}

fn remove_if_exists(p: &Path) {
    match fs::remove_dir_all(p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("hbpeer: cannot remove {}: {e}", p.display()),
    }
}

/// The last value of `directive` in ha.cf text.
fn directive_value(ha_cf: &str, directive: &str) -> Option<String> {
    ha_cf.lines().rev().find_map(|l| {
        let l = l.split('#').next().unwrap_or("");
        let mut w = l.split_whitespace();
        (w.next() == Some(directive)).then(|| w.next().map(str::to_owned))?
    })
}

/// Where a path inside the instance is on the host (its private trees).
fn host_path(statedir: &Path, p: &Path) -> PathBuf {
    for (inside, outside) in [
        ("/run", "run"),
        ("/var/lib/heartbeat", "lib"),
        ("/etc/ha.d", "etc"),
    ] {
        if let Ok(rest) = p.strip_prefix(inside) {
            return statedir.join(outside).join(rest);
        }
    }
    p.to_path_buf()
}

fn hacluster_ids() -> (nix::unistd::Uid, nix::unistd::Gid) {
    let u = nix::unistd::User::from_name("hacluster")
        .ok()
        .flatten()
        .expect("user hacluster (created by the heartbeat package) is missing");
    let g = nix::unistd::Group::from_name("haclient")
        .ok()
        .flatten()
        .expect("group haclient (created by the heartbeat package) is missing");
    (u.uid, g.gid)
}

/// Recreates the directory tree of `from` (directories only, with owner and
/// mode) at `to`.
fn mirror_dirs(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    let meta = fs::metadata(from).unwrap();
    nix::unistd::chown(
        to,
        Some(nix::unistd::Uid::from_raw(meta.uid())),
        Some(nix::unistd::Gid::from_raw(meta.gid())),
    )
    .unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777)).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            mirror_dirs(&e.path(), &to.join(e.file_name()));
        }
    }
}

/// Child pids of `pid` (all its threads).
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(c) = fs::read_to_string(t.path().join("children")) {
            out.extend(c.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

/// The process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

fn parent(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn is_heartbeat(pid: i32) -> bool {
    fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == Path::new(HEARTBEAT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_values_and_paths() {
        let t =
            "logfile /var/log/ha-log # x\n#logfile /no\ndebugfile /run/hb/debug\nlogfile /x/y\n";
        assert_eq!(directive_value(t, "logfile").as_deref(), Some("/x/y"));
        assert_eq!(
            directive_value(t, "debugfile").as_deref(),
            Some("/run/hb/debug")
        );
        assert_eq!(directive_value(t, "keepalive"), None);
        let s = Path::new("/state");
        assert_eq!(
            host_path(s, Path::new("/run/hb/debug")),
            Path::new("/state/run/hb/debug")
        );
        assert_eq!(
            host_path(s, Path::new("/var/log/ha-log")),
            Path::new("/var/log/ha-log")
        );
        assert_eq!(
            host_path(s, Path::new("/var/lib/heartbeat/x")),
            Path::new("/state/lib/x")
        );
    }

    #[test]
    fn default_config() {
        let t = default_ha_cf("hb0", &["alpha", "beta"]);
        assert!(t.contains("bcast hb0\n") && t.contains("node alpha\nnode beta\n"));
        assert!(t.contains("deadtime 1\n") && t.contains("auto_failback on\n"));
    }

    #[test]
    fn process_helpers() {
        let me = std::process::id() as i32;
        assert!(alive(me));
        assert!(parent(me).is_some());
        assert!(!is_heartbeat(me));
        let mut c = Command::new("sleep").arg("5").spawn().unwrap();
        assert!(children(me).contains(&(c.id() as i32)));
        c.kill().unwrap();
        // a zombie is not alive
        std::thread::sleep(Duration::from_millis(100));
        assert!(!alive(c.id() as i32));
        c.wait().unwrap();
    }
}
