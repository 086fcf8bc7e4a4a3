//! `lab bench heartbeat [--runs N] [--window S] [--json] [--only heartbeatd|3.0.6]`:
//! crash → takeover and graceful handover, heartbeatd against the real
//! heartbeat 3.0.6, same topology, same timers, one run; then the idle
//! footprint of both.
//!
//! Topology (one pair per implementation, never mixed): two network
//! namespaces joined by a veth `hb0` (10.93.0.1/24, 10.93.0.2/24), ha.cf
//! `udpport 694`, `bcast hb0`, keepalive 200ms, warntime 600ms, deadtime 1,
//! initdead 2, auto_failback on, sha1 authkeys; haresources
//! `alpha benchres::DIR`. The real daemon runs through [`lab::hbpeer`] (own
//! network, mount, UTS, IPC and PID namespaces), ours through
//! [`lab::hbnode`].
//!
//! The resource agent is one bash script for both (no forks): it appends
//! `$EPOCHREALTIME NODE VERB begin|end` to `DIR/events` at entry and exit and
//! keeps its state in `DIR/NODE.state`. Every latency is taken from those
//! agent timestamps against T0, the host's realtime clock read just before
//! the kill or the stop command, so polling by the bench adds nothing.
//!
//! * **Crash**: with the pair settled (alpha holds the group, both report
//!   it in `cl_status rscstatus`, alpha up for at least 6 s — 3.0.6
//!   advertises deadtime + 2 s in its first 5 s), a random phase of
//!   0–keepalive, then SIGKILL of alpha's whole instance at T0; alpha's
//!   resource state vanishes with it. Measured: T0 → beta's first agent call
//!   and T0 → beta's first `start`. Then alpha is started again and the pair
//!   settles (failback) before the next run.
//! * **Graceful handover**: with the pair settled, T0, then the stop
//!   command: `heartbeatd -k` for ours, the package's `heartbeat -k` inside
//!   the instance for 3.0.6 (it sends SIGTERM to the master control
//!   process). Measured: T0 → beta's first `start`; the agent time on that
//!   path (alpha's calls and beta's calls before its start, as the agent
//!   saw them) and the handover minus it (the daemons' own share, the
//!   figure the target is about); T0 → alpha's first agent call; T0 → the
//!   daemon exited; T0 → the stop command returned.
//! * **Footprint**: after the runs, with the pair settled and alpha up for
//!   at least 25 s, a window (default 20 s) of idle steady state per node:
//!   processes of the daemon (heartbeatd: 1; 3.0.6: its heartbeat
//!   processes), VmRSS and PSS summed over them at the end, CPU from
//!   `/proc/PID/task/*/schedstat`, wakeups from `voluntary_ctxt_switches`
//!   (as in the reference's peer-performance measurement).
//!
//! Binaries: `heartbeatd` and `cl_status` next to this `lab` binary
//! (`cargo build --release --workspace`) or in `$HBRS_BIN_DIR`. Root only.
//! Namespaces, daemons and the work directory are removed on every exit:
//! by Drop on success and errors, by a panic hook (release builds abort on
//! panic) and on SIGINT/SIGTERM/SIGHUP. `HBRS_BENCH_KEEP=1` keeps the work
//! directory (logs, agent events) for a look afterwards. Progress and
//! per-run figures go to stderr, the table (or `--json`) to stdout.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde_json::json;

use lab::hbnode::HbNode;
use lab::hbpeer::{HbPeer, HEARTBEAT};
use lab::Netns;

const KEEPALIVE_MS: u64 = 200;
const DEADTIME_MS: f64 = 1000.0;
/// Crash target: deadtime + 30 ms.
const CRASH_TARGET_MS: f64 = DEADTIME_MS + 30.0;
/// Graceful handover target: 100 ms + agent time.
const HANDOVER_TARGET_MS: f64 = 100.0;
/// heartbeatd's memory target: 4 MiB.
const RSS_TARGET_KIB: f64 = 4096.0;
/// alpha must be up this long before a crash (3.0.6 advertises
/// deadtime + 2 s during its first 5 s).
const MIN_AGE_CRASH: Duration = Duration::from_secs(6);
/// alpha must be up this long before the footprint window (as in the
/// reference measurement, which started 25 s after the start).
const MIN_AGE_FOOTPRINT: Duration = Duration::from_secs(25);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

const SHA1_KEYS: &str = "auth 2\n2 sha1 benchsecret\n";

/// The resource agent: `benchres DIR start|stop|status`, bash builtins only.
const AGENT: &str = r#"#!/bin/bash
# benchres DIR start|stop|status: records "$EPOCHREALTIME NODE VERB begin|end"
# in DIR/events; state in DIR/NODE.state. No forks.
d=$1; v=$2; n=${HA_CURHOST:-$HOSTNAME}
echo "$EPOCHREALTIME $n $v begin" >> "$d/events"
r=0
case $v in
start) echo running > "$d/$n.state";;
stop) echo stopped > "$d/$n.state";;
status) s=stopped; [[ -r $d/$n.state ]] && read -r s < "$d/$n.state"; echo "$s";;
*) r=1;;
esac
echo "$EPOCHREALTIME $n $v end" >> "$d/events"
exit $r
"#;

// ---------------------------------------------------------------------------
// Clean-up on abnormal exits

/// What a panic or a signal must remove: namespaces (every process inside
/// is killed first, which takes the daemons and their agents with it) and
/// the work directory.
static EMERGENCY: Mutex<(Vec<String>, Option<PathBuf>)> = Mutex::new((Vec::new(), None));

fn emergency_cleanup() {
    let (names, dir) = match EMERGENCY.try_lock() {
        Ok(mut g) => (std::mem::take(&mut g.0), g.1.take()),
        Err(_) => return,
    };
    for ns in &names {
        if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(p) = pid.parse::<i32>() {
                    // SAFETY: kill(2) on a process of our own namespace.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
        }
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
    }
    if let Some(d) = dir {
        let _ = fs::remove_dir_all(d);
    }
}

fn register_ns(ns: &Netns) {
    if let Ok(mut g) = EMERGENCY.lock() {
        g.0.push(ns.name().to_owned());
    }
}

fn unregister_ns(name: &str) {
    if let Ok(mut g) = EMERGENCY.lock() {
        g.0.retain(|n| n != name);
    }
}

static SIGNALLED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNALLED.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// Panic hook, and handlers for SIGINT/SIGTERM/SIGHUP whose flag a watcher
/// thread turns into [`emergency_cleanup`]. (Handlers, not a blocked mask:
/// children would inherit the mask, and heartbeatd would then never see
/// the SIGTERM of `heartbeatd -k`; caught signals are reset by exec.)
fn install_emergency_handlers() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        prev(info);
        eprintln!("lab bench heartbeat: cleaning up after the panic");
        emergency_cleanup();
    }));
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores into an atomic.
        unsafe { sigaction(s, &act) }.with_context(|| format!("install a {s} handler"))?;
    }
    std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_millis(50));
        let sig = SIGNALLED.load(std::sync::atomic::Ordering::SeqCst);
        if sig != 0 {
            eprintln!("lab bench heartbeat: signal {sig}, cleaning up");
            emergency_cleanup();
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

/// The work directory, removed on drop.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::env::var_os("HBRS_BENCH_KEEP").is_some() {
            eprintln!("lab bench heartbeat: kept {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

// ---------------------------------------------------------------------------
// Small helpers

fn bin_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("HBRS_BIN_DIR") {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe().context("locate the lab binary")?;
    Ok(exe.parent().unwrap_or(Path::new(".")).to_path_buf())
}

fn realtime() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// xorshift64*, seeded from the clock: only for the crash phase.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ u64::from(std::process::id()) << 32;
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn proc_alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z') && !r.starts_with('X'))
    })
}

fn exe_name(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// A field (first number) of `/proc/PID/status`, e.g. `VmRSS`.
fn status_field(pid: i32, key: &str) -> u64 {
    status_field_of(&format!("/proc/{pid}/status"), key)
}

fn status_field_of(path: &str, key: &str) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.split(':').next() == Some(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn pss_kib(pid: i32) -> u64 {
    status_field_of(&format!("/proc/{pid}/smaps_rollup"), "Pss")
}

/// CPU ns (schedstat) and voluntary context switches, summed over threads.
fn cpu_and_wakeups(pid: i32) -> (u64, u64) {
    let (mut cpu, mut vol) = (0, 0);
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let p = t.path();
            cpu += fs::read_to_string(p.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
            vol += status_field_of(
                &p.join("status").display().to_string(),
                "voluntary_ctxt_switches",
            );
        }
    }
    (cpu, vol)
}

fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------
// Agent events

#[derive(Debug, Clone)]
struct Event {
    t: f64,
    node: String,
    verb: String,
    end: bool,
}

/// The events file, read from a byte offset on.
struct Events {
    path: PathBuf,
}

impl Events {
    fn len(&self) -> u64 {
        fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    fn since(&self, offset: u64) -> Vec<Event> {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.path) {
            if f.seek(SeekFrom::Start(offset)).is_ok() {
                let _ = f.read_to_string(&mut s);
            }
        }
        // only complete lines
        let complete = match s.rfind('\n') {
            Some(i) => &s[..=i],
            None => "",
        };
        complete
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let t = w.next()?.parse().ok()?;
                let node = w.next()?.to_owned();
                let verb = w.next()?.to_owned();
                let end = w.next()? == "end";
                Some(Event { t, node, verb, end })
            })
            .collect()
    }

    /// Polls (every 2 ms) until `f` finds something in the events since
    /// `offset`, or `timeout` passes.
    fn wait_for<T>(
        &self,
        offset: u64,
        timeout: Duration,
        mut f: impl FnMut(&[Event]) -> Option<T>,
    ) -> Option<T> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(v) = f(&self.since(offset)) {
                return Some(v);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

// ---------------------------------------------------------------------------
// One node of either implementation

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Real,
    Ours,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Real => "heartbeat 3.0.6",
            Kind::Ours => "heartbeatd",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Kind::Real => "heartbeat-3.0.6",
            Kind::Ours => "heartbeatd",
        }
    }
}

enum Daemon {
    Real(HbPeer),
    Ours(HbNode),
    Down,
}

struct Node {
    name: &'static str,
    conf: PathBuf,
    state: PathBuf,
    bin: PathBuf,
    daemon: Daemon,
    started: Instant,
}

/// Times of one graceful stop, from T0.
struct StopTimes {
    t0: f64,
    daemon_exit: Option<Duration>,
    command: Option<Duration>,
}

impl Node {
    fn start(
        kind: Kind,
        ns: &Netns,
        name: &'static str,
        conf: &Path,
        state: &Path,
        bin: &Path,
    ) -> Node {
        let mut n = Node {
            name,
            conf: conf.to_owned(),
            state: state.to_owned(),
            bin: bin.to_owned(),
            daemon: Daemon::Down,
            started: Instant::now(),
        };
        n.daemon = match kind {
            Kind::Real => Daemon::Real(HbPeer::start(ns, name, conf, state, true)),
            Kind::Ours => Daemon::Ours(HbNode::start(ns, name, conf, state, true, bin)),
        };
        n.started = Instant::now();
        n
    }

    /// Starts it again after a crash or a stop (state kept).
    fn restart(&mut self, ns: &Netns) {
        match std::mem::replace(&mut self.daemon, Daemon::Down) {
            Daemon::Real(mut p) => {
                p.kill();
                drop(p);
                self.daemon =
                    Daemon::Real(HbPeer::start(ns, self.name, &self.conf, &self.state, false));
            }
            Daemon::Ours(mut n) => {
                if n.is_running() {
                    n.kill();
                }
                n.restart();
                self.daemon = Daemon::Ours(n);
            }
            Daemon::Down => unreachable!("restart of a node that never ran"),
        }
        self.started = Instant::now();
    }

    /// SIGKILL of the whole instance; returns T0 (realtime, read just
    /// before the signal).
    fn crash(&mut self) -> f64 {
        match &mut self.daemon {
            Daemon::Real(p) => {
                let t0 = realtime();
                p.kill();
                t0
            }
            Daemon::Ours(n) => {
                let t0 = realtime();
                n.kill();
                t0
            }
            Daemon::Down => realtime(),
        }
    }

    /// The stop command, timed: `heartbeatd -k` / `heartbeat -k` inside the
    /// 3.0.6 instance. Leaves the node down.
    fn graceful_stop(&mut self) -> Result<StopTimes> {
        match &mut self.daemon {
            Daemon::Ours(n) => {
                let s = n.statedir().to_owned();
                let mut cmd = Command::new(&self.bin);
                cmd.arg("-k")
                    .arg("-c")
                    .arg(s.join("etc"))
                    .arg("--state-dir")
                    .arg(s.join("state"))
                    .arg("--run-dir")
                    .arg(s.join("run"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let t0 = realtime();
                let i0 = Instant::now();
                let mut k = cmd.spawn().context("spawn heartbeatd -k")?;
                let (mut exit, mut command) = (None, None);
                while i0.elapsed() < STOP_TIMEOUT && (exit.is_none() || command.is_none()) {
                    if exit.is_none() && !n.is_running() {
                        exit = Some(i0.elapsed());
                    }
                    if command.is_none() && k.try_wait()?.is_some() {
                        command = Some(i0.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                if command.is_none() {
                    let _ = k.kill();
                    let _ = k.wait();
                }
                if exit.is_none() {
                    n.kill();
                }
                Ok(StopTimes {
                    t0,
                    daemon_exit: exit,
                    command,
                })
            }
            Daemon::Real(p) => {
                let pids = p.pids();
                let (Some(&init), Some(master)) = (pids.first(), p.master_pid()) else {
                    bail!("3.0.6 {}: no master control process to stop", self.name);
                };
                let mut cmd = Command::new("nsenter");
                cmd.arg("-t")
                    .arg(init.to_string())
                    .args(["-n", "-m", "-u", "-i", "-p", "--", HEARTBEAT, "-k"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let t0 = realtime();
                let i0 = Instant::now();
                let mut k = cmd.spawn().context("spawn nsenter … heartbeat -k")?;
                let (mut exit, mut command) = (None, None);
                while i0.elapsed() < STOP_TIMEOUT && (exit.is_none() || command.is_none()) {
                    if exit.is_none() && !proc_alive(master) {
                        exit = Some(i0.elapsed());
                    }
                    if command.is_none() && k.try_wait()?.is_some() {
                        command = Some(i0.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                if command.is_none() {
                    let _ = k.kill();
                    let _ = k.wait();
                }
                p.kill();
                Ok(StopTimes {
                    t0,
                    daemon_exit: exit,
                    command,
                })
            }
            Daemon::Down => bail!("{} is not running", self.name),
        }
    }

    fn rscstatus(&self) -> String {
        match &self.daemon {
            Daemon::Real(p) if p.is_running() => p.cl_status(&["rscstatus"]),
            Daemon::Ours(n) => n.cl_status(&["rscstatus"]),
            _ => String::new(),
        }
    }

    fn log(&self) -> String {
        match &self.daemon {
            Daemon::Real(p) => p.log(),
            Daemon::Ours(n) => n.log(),
            Daemon::Down => String::new(),
        }
    }

    /// Host pids of the daemon's own processes.
    fn daemon_pids(&self) -> Vec<i32> {
        match &self.daemon {
            Daemon::Real(p) => p
                .pids()
                .into_iter()
                .filter(|&pid| exe_name(pid).is_some_and(|e| e == Path::new(HEARTBEAT)))
                .collect(),
            Daemon::Ours(n) => {
                let Some(pid) = n.pid() else {
                    return Vec::new();
                };
                let pid = pid as i32;
                let ok = exe_name(pid)
                    .is_some_and(|e| e.file_name() == Some(std::ffi::OsStr::new("heartbeatd")));
                if ok {
                    vec![pid]
                } else {
                    Vec::new()
                }
            }
            Daemon::Down => Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------
// A pair

struct Pair {
    kind: Kind,
    // nodes first: they go before the namespaces
    alpha: Node,
    beta: Node,
    res: PathBuf,
    events: Events,
    b: Netns,
    a: Netns,
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.alpha.daemon = Daemon::Down;
        self.beta.daemon = Daemon::Down;
        unregister_ns(self.a.name());
        unregister_ns(self.b.name());
    }
}

fn write_conf(dir: &Path, res: &Path) -> Result<()> {
    fs::create_dir_all(dir.join("resource.d"))?;
    fs::write(
        dir.join("ha.cf"),
        "udpport 694\nbcast hb0\nkeepalive 200ms\nwarntime 600ms\ndeadtime 1\n\
         initdead 2\nauto_failback on\nnode alpha\nnode beta\n",
    )?;
    fs::write(dir.join("authkeys"), SHA1_KEYS)?;
    fs::set_permissions(dir.join("authkeys"), fs::Permissions::from_mode(0o600))?;
    fs::write(
        dir.join("haresources"),
        format!("alpha benchres::{}\n", res.display()),
    )?;
    fs::write(dir.join("resource.d/benchres"), AGENT)?;
    fs::set_permissions(
        dir.join("resource.d/benchres"),
        fs::Permissions::from_mode(0o755),
    )?;
    Ok(())
}

impl Pair {
    fn new(kind: Kind, work: &Path, bin: &Path) -> Result<Pair> {
        let base = work.join(kind.key());
        let res = base.join("res");
        fs::create_dir_all(&res)?;
        let conf = base.join("conf");
        write_conf(&conf, &res)?;
        let a = Netns::new("hbbA");
        register_ns(&a);
        let b = Netns::new("hbbB");
        register_ns(&b);
        lab::veth(&a, "hb0", "10.93.0.1/24", &b, "hb0", "10.93.0.2/24");
        let alpha = Node::start(kind, &a, "alpha", &conf, &base.join("alpha"), bin);
        let beta = Node::start(kind, &b, "beta", &conf, &base.join("beta"), bin);
        Ok(Pair {
            kind,
            alpha,
            beta,
            events: Events {
                path: res.join("events"),
            },
            res,
            a,
            b,
        })
    }

    fn runs(&self, node: &str) -> bool {
        fs::read_to_string(self.res.join(format!("{node}.state")))
            .is_ok_and(|s| s.trim() == "running")
    }

    /// A crash takes the node's resources with it.
    fn vanish(&self, node: &str) {
        let _ = fs::remove_file(self.res.join(format!("{node}.state")));
    }

    fn logs(&self) -> String {
        format!(
            "--- {} alpha (last 40 lines):\n{}\n--- {} beta (last 40 lines):\n{}\n--- agent events (last 20):\n{}",
            self.kind.label(),
            tail(&self.alpha.log(), 40),
            self.kind.label(),
            tail(&self.beta.log(), 40),
            tail(&fs::read_to_string(&self.events.path).unwrap_or_default(), 20),
        )
    }

    fn is_settled(&self) -> bool {
        self.runs("alpha")
            && !self.runs("beta")
            && matches!(self.alpha.rscstatus().as_str(), "local" | "all")
            && matches!(self.beta.rscstatus().as_str(), "local" | "none")
    }

    /// Waits until alpha holds the group and both agree, stable for 0.5 s,
    /// and alpha has been up at least `min_age`.
    fn settle(&self, min_age: Duration) -> Result<()> {
        let end = Instant::now() + SETTLE_TIMEOUT + min_age;
        let mut good_since: Option<Instant> = None;
        loop {
            if self.is_settled() {
                let since = *good_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_millis(500)
                    && self.alpha.started.elapsed() >= min_age
                {
                    return Ok(());
                }
            } else {
                good_since = None;
            }
            if Instant::now() >= end {
                bail!(
                    "{}: the pair did not settle (alpha holding the group) within {} s: \
                     alpha rscstatus {:?} runs {}, beta rscstatus {:?} runs {}\n{}",
                    self.kind.label(),
                    SETTLE_TIMEOUT.as_secs(),
                    self.alpha.rscstatus(),
                    self.runs("alpha"),
                    self.beta.rscstatus(),
                    self.runs("beta"),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

// ---------------------------------------------------------------------------
// Measurements

#[derive(Default)]
struct CrashRuns {
    first_call: Vec<f64>,
    first_start: Vec<f64>,
    failed: usize,
}

#[derive(Default)]
struct GracefulRuns {
    handover: Vec<f64>,
    agent_path: Vec<f64>,
    overhead: Vec<f64>,
    release_begins: Vec<f64>,
    stop_agent: Vec<f64>,
    daemon_exit: Vec<f64>,
    command: Vec<f64>,
    failed: usize,
}

#[derive(Default)]
struct NodeFootprint {
    processes: usize,
    /// VmRSS when the pair first settled, before the runs.
    rss_first_kib: u64,
    rss_kib: u64,
    anon_kib: u64,
    pss_kib: u64,
    hwm_kib: u64,
    cpu_ms_per_min: f64,
    wakeups_per_s: f64,
}

struct Results {
    kind: Kind,
    crash: CrashRuns,
    graceful: GracefulRuns,
    footprint: [NodeFootprint; 2],
}

fn first_begin<'a>(ev: &'a [Event], node: &str, verb: Option<&str>, t0: f64) -> Option<&'a Event> {
    ev.iter()
        .find(|e| !e.end && e.t >= t0 && e.node == node && verb.is_none_or(|v| e.verb == v))
}

/// Agent time (end − begin) of `node`'s calls that began in [from, to).
fn agent_time(ev: &[Event], node: &str, from: f64, to: f64) -> f64 {
    let mut total = 0.0;
    for (i, b) in ev.iter().enumerate() {
        if b.end || b.node != node || b.t < from || b.t >= to {
            continue;
        }
        if let Some(e) = ev[i + 1..]
            .iter()
            .find(|e| e.end && e.node == node && e.verb == b.verb)
        {
            total += e.t - b.t;
        }
    }
    total
}

fn crash_run(
    p: &mut Pair,
    rng: &mut Rng,
    out: &mut CrashRuns,
    i: usize,
    runs: usize,
) -> Result<()> {
    p.settle(MIN_AGE_CRASH)?;
    std::thread::sleep(Duration::from_millis(rng.below(KEEPALIVE_MS)));
    let offset = p.events.len();
    let t0 = p.alpha.crash();
    p.vanish("alpha");
    let got = p.events.wait_for(offset, TAKEOVER_TIMEOUT, |ev| {
        let start = first_begin(ev, "beta", Some("start"), t0)?;
        let call = first_begin(ev, "beta", None, t0)?;
        Some(((call.t - t0) * 1e3, (start.t - t0) * 1e3))
    });
    match got {
        Some((call, start)) => {
            eprintln!(
                "  {} crash {}/{runs}: beta's first call {call:.1} ms, first start {start:.1} ms",
                p.kind.label(),
                i + 1
            );
            out.first_call.push(call);
            out.first_start.push(start);
        }
        None => {
            out.failed += 1;
            eprintln!(
                "  {} crash {}/{runs}: beta did not start the group within {} s\n{}",
                p.kind.label(),
                i + 1,
                TAKEOVER_TIMEOUT.as_secs(),
                p.logs()
            );
        }
    }
    p.alpha.restart(&p.a);
    Ok(())
}

fn graceful_run(
    p: &mut Pair,
    rng: &mut Rng,
    out: &mut GracefulRuns,
    i: usize,
    runs: usize,
) -> Result<()> {
    p.settle(MIN_AGE_CRASH)?;
    std::thread::sleep(Duration::from_millis(rng.below(KEEPALIVE_MS)));
    let offset = p.events.len();
    let st = p.alpha.graceful_stop()?;
    let t0 = st.t0;
    let got = p.events.wait_for(offset, TAKEOVER_TIMEOUT, |ev| {
        let start = first_begin(ev, "beta", Some("start"), t0)?;
        let stop_b = first_begin(ev, "alpha", Some("stop"), t0)?;
        let stop_e = ev
            .iter()
            .find(|e| e.end && e.node == "alpha" && e.verb == "stop" && e.t >= stop_b.t)?;
        let release = first_begin(ev, "alpha", None, t0)?;
        let path = agent_time(ev, "alpha", t0, start.t) + agent_time(ev, "beta", t0, start.t);
        Some((
            (start.t - t0) * 1e3,
            path * 1e3,
            (release.t - t0) * 1e3,
            (stop_e.t - stop_b.t) * 1e3,
        ))
    });
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
    match (got, ms(st.daemon_exit), ms(st.command)) {
        (Some((handover, path, release, stop_agent)), Some(exit), Some(cmd)) => {
            eprintln!(
                "  {} graceful {}/{runs}: beta's first start {handover:.1} ms (agents {path:.1} ms), \
                 alpha's stop agent {stop_agent:.2} ms, daemon exited {exit:.1} ms, command returned {cmd:.1} ms",
                p.kind.label(),
                i + 1
            );
            out.handover.push(handover);
            out.agent_path.push(path);
            out.overhead.push(handover - path);
            out.release_begins.push(release);
            out.stop_agent.push(stop_agent);
            out.daemon_exit.push(exit);
            out.command.push(cmd);
        }
        (got, exit, cmd) => {
            out.failed += 1;
            eprintln!(
                "  {} graceful {}/{runs}: failed (handover seen: {}, daemon exited: {exit:?} ms, \
                 command returned: {cmd:?} ms)\n{}",
                p.kind.label(),
                i + 1,
                got.is_some(),
                p.logs()
            );
        }
    }
    p.alpha.restart(&p.a);
    Ok(())
}

/// VmRSS of alpha's and beta's daemon processes now.
fn rss_now(p: &Pair) -> [u64; 2] {
    [&p.alpha, &p.beta].map(|n| {
        n.daemon_pids()
            .iter()
            .map(|&pid| status_field(pid, "VmRSS"))
            .sum()
    })
}

fn footprint(p: &Pair, window: Duration, first: [u64; 2]) -> Result<[NodeFootprint; 2]> {
    p.settle(MIN_AGE_FOOTPRINT)?;
    let nodes = [&p.alpha, &p.beta];
    let pids: Vec<Vec<i32>> = nodes.iter().map(|n| n.daemon_pids()).collect();
    for (n, v) in nodes.iter().zip(&pids) {
        if v.is_empty() {
            bail!("{} {}: no daemon process found", p.kind.label(), n.name);
        }
    }
    let sample = |v: &[i32]| {
        v.iter().fold((0u64, 0u64), |acc, &pid| {
            let (c, w) = cpu_and_wakeups(pid);
            (acc.0 + c, acc.1 + w)
        })
    };
    let before: Vec<(u64, u64)> = pids.iter().map(|v| sample(v)).collect();
    let i0 = Instant::now();
    std::thread::sleep(window);
    let after: Vec<(u64, u64)> = pids.iter().map(|v| sample(v)).collect();
    let secs = i0.elapsed().as_secs_f64();
    if !p.is_settled() {
        bail!(
            "{}: the pair changed state during the footprint window\n{}",
            p.kind.label(),
            p.logs()
        );
    }
    let mut out: [NodeFootprint; 2] = Default::default();
    for (k, v) in pids.iter().enumerate() {
        if v.iter().any(|&pid| !proc_alive(pid)) {
            bail!(
                "{}: a daemon process went away during the window",
                p.kind.label()
            );
        }
        out[k] = NodeFootprint {
            processes: v.len(),
            rss_first_kib: first[k],
            anon_kib: v.iter().map(|&pid| status_field(pid, "RssAnon")).sum(),
            rss_kib: v.iter().map(|&pid| status_field(pid, "VmRSS")).sum(),
            pss_kib: v.iter().map(|&pid| pss_kib(pid)).sum(),
            hwm_kib: v.iter().map(|&pid| status_field(pid, "VmHWM")).sum(),
            cpu_ms_per_min: (after[k].0 - before[k].0) as f64 / 1e6 / secs * 60.0,
            wakeups_per_s: (after[k].1 - before[k].1) as f64 / secs,
        };
    }
    Ok(out)
}

fn bench_one(
    kind: Kind,
    work: &Path,
    bin: &Path,
    runs: usize,
    window: Duration,
) -> Result<Results> {
    eprintln!("{}: starting the pair", kind.label());
    let mut p = Pair::new(kind, work, bin)?;
    let mut rng = Rng::new();
    p.settle(MIN_AGE_CRASH)?;
    let first = rss_now(&p);
    let mut crash = CrashRuns::default();
    for i in 0..runs {
        crash_run(&mut p, &mut rng, &mut crash, i, runs)?;
    }
    let mut graceful = GracefulRuns::default();
    for i in 0..runs {
        graceful_run(&mut p, &mut rng, &mut graceful, i, runs)?;
    }
    eprintln!(
        "{}: footprint over {} s of idle steady state",
        kind.label(),
        window.as_secs_f64()
    );
    let footprint = footprint(&p, window, first)?;
    Ok(Results {
        kind,
        crash,
        graceful,
        footprint,
    })
}

// ---------------------------------------------------------------------------
// Statistics and the table

struct Stats {
    n: usize,
    median: f64,
    min: f64,
    p10: f64,
    p90: f64,
    max: f64,
}

fn stats(v: &[f64]) -> Option<Stats> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |p: f64| {
        // linear interpolation between closest ranks
        let x = p * (s.len() - 1) as f64;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        s[lo] + (s[hi] - s[lo]) * (x - lo as f64)
    };
    Some(Stats {
        n: s.len(),
        median: q(0.5),
        min: s[0],
        p10: q(0.1),
        p90: q(0.9),
        max: s[s.len() - 1],
    })
}

struct Row {
    measure: String,
    who: String,
    n: String,
    median: String,
    min: String,
    p10: String,
    p90: String,
    max: String,
    target: String,
    verdict: String,
    json: serde_json::Value,
}

fn f1(x: f64) -> String {
    format!("{x:.1}")
}

fn series_row(measure: &str, kind: Kind, v: &[f64], failed: usize, target: Option<f64>) -> Row {
    let s = stats(v);
    let n = if failed > 0 {
        format!("{}+{failed}✗", v.len())
    } else {
        v.len().to_string()
    };
    let (target_s, verdict) = match (target, &s) {
        (Some(t), Some(s)) => {
            let mut verdict = if s.median <= t { "met" } else { "MISSED" }.to_owned();
            if s.median <= t && s.max > t {
                verdict.push_str(" (max over)");
            }
            if failed > 0 {
                verdict = format!("FAILED RUNS; {verdict}");
            }
            (format!("≤ {t:.0}"), verdict)
        }
        (Some(t), None) => (format!("≤ {t:.0}"), "NO DATA".to_owned()),
        (None, _) => (String::new(), String::new()),
    };
    let cell = |f: fn(&Stats) -> f64| s.as_ref().map(|s| f1(f(s))).unwrap_or_else(|| "–".into());
    Row {
        measure: measure.to_owned(),
        who: kind.label().to_owned(),
        n,
        median: cell(|s| s.median),
        min: cell(|s| s.min),
        p10: cell(|s| s.p10),
        p90: cell(|s| s.p90),
        max: cell(|s| s.max),
        target: target_s,
        verdict: verdict.clone(),
        json: json!({
            "measure": measure,
            "implementation": kind.key(),
            "unit": "ms",
            "samples": v,
            "failed": failed,
            "n": s.as_ref().map(|s| s.n),
            "median": s.as_ref().map(|s| s.median),
            "min": s.as_ref().map(|s| s.min),
            "p10": s.as_ref().map(|s| s.p10),
            "p90": s.as_ref().map(|s| s.p90),
            "max": s.as_ref().map(|s| s.max),
            "target_max": target,
            "verdict": verdict,
        }),
    }
}

fn value_row(measure: &str, kind: Kind, unit: &str, v: f64, target: Option<f64>) -> Row {
    let (target_s, verdict) = match target {
        Some(t) => (
            format!("≤ {t:.0}"),
            if v <= t { "met" } else { "MISSED" }.to_owned(),
        ),
        None => (String::new(), String::new()),
    };
    let shown = if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        f1(v)
    };
    Row {
        measure: measure.to_owned(),
        who: kind.label().to_owned(),
        n: String::new(),
        median: shown,
        min: String::new(),
        p10: String::new(),
        p90: String::new(),
        max: String::new(),
        target: target_s,
        verdict: verdict.clone(),
        json: json!({
            "measure": measure,
            "implementation": kind.key(),
            "unit": unit,
            "value": v,
            "target_max": target,
            "verdict": verdict,
        }),
    }
}

fn rows(results: &[Results]) -> Vec<Row> {
    let mut out = Vec::new();
    let target = |k: Kind, t: f64| (k == Kind::Ours).then_some(t);
    type Pick = fn(&Results) -> (&Vec<f64>, usize);
    let latency: &[(&str, Pick, Option<f64>)] = &[
        (
            "crash → beta's first agent call (ms)",
            |r| (&r.crash.first_call, r.crash.failed),
            None,
        ),
        (
            "crash → beta's first start (ms)",
            |r| (&r.crash.first_start, r.crash.failed),
            Some(CRASH_TARGET_MS),
        ),
        (
            "graceful: stop → beta's first start (ms)",
            |r| (&r.graceful.handover, r.graceful.failed),
            None,
        ),
        (
            "  agent time on that path (ms)",
            |r| (&r.graceful.agent_path, r.graceful.failed),
            None,
        ),
        (
            "  handover minus agent time (ms)",
            |r| (&r.graceful.overhead, r.graceful.failed),
            Some(HANDOVER_TARGET_MS),
        ),
        (
            "  stop → alpha's first agent call (ms)",
            |r| (&r.graceful.release_begins, r.graceful.failed),
            None,
        ),
        (
            "  alpha's stop agent, in-agent (ms)",
            |r| (&r.graceful.stop_agent, r.graceful.failed),
            None,
        ),
        (
            "  stop → daemon exited (ms)",
            |r| (&r.graceful.daemon_exit, r.graceful.failed),
            None,
        ),
        (
            "  stop → stop command returned (ms)",
            |r| (&r.graceful.command, r.graceful.failed),
            None,
        ),
    ];
    for (measure, pick, t) in latency {
        for r in results {
            let (v, failed) = pick(r);
            out.push(series_row(
                measure,
                r.kind,
                v,
                failed,
                t.and_then(|t| target(r.kind, t)),
            ));
        }
    }
    type FPick = fn(&NodeFootprint) -> f64;
    let fp: &[(&str, &str, FPick, Option<f64>)] = &[
        ("processes", "count", |f| f.processes as f64, None),
        (
            "VmRSS before the runs (kB)",
            "kB",
            |f| f.rss_first_kib as f64,
            None,
        ),
        (
            "VmRSS after the runs (kB)",
            "kB",
            |f| f.rss_kib as f64,
            Some(RSS_TARGET_KIB),
        ),
        ("RssAnon (kB)", "kB", |f| f.anon_kib as f64, None),
        ("PSS (kB)", "kB", |f| f.pss_kib as f64, None),
        ("VmHWM, peak RSS (kB)", "kB", |f| f.hwm_kib as f64, None),
        (
            "CPU, idle (ms per 60 s)",
            "ms/60s",
            |f| f.cpu_ms_per_min,
            None,
        ),
        ("wakeups, idle (per s)", "1/s", |f| f.wakeups_per_s, None),
    ];
    for (measure, unit, pick, t) in fp {
        for (k, node) in ["alpha (holder)", "beta"].iter().enumerate() {
            for r in results {
                let name = format!("{node}: {measure}");
                out.push(value_row(
                    &name,
                    r.kind,
                    unit,
                    (pick)(&r.footprint[k]),
                    t.and_then(|t| target(r.kind, t)),
                ));
            }
        }
    }
    out
}

fn print_table(rows: &[Row]) {
    let header = [
        "measure",
        "implementation",
        "n",
        "median",
        "min",
        "p10",
        "p90",
        "max",
        "target",
        "verdict",
    ];
    let cells: Vec<[&str; 10]> = rows
        .iter()
        .map(|r| {
            [
                r.measure.as_str(),
                r.who.as_str(),
                r.n.as_str(),
                r.median.as_str(),
                r.min.as_str(),
                r.p10.as_str(),
                r.p90.as_str(),
                r.max.as_str(),
                r.target.as_str(),
                r.verdict.as_str(),
            ]
        })
        .collect();
    let mut w = header.map(|h| h.chars().count());
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            w[i] = w[i].max(s.chars().count());
        }
    }
    let line = |c: &[&str; 10]| {
        let mut s = String::new();
        for (i, v) in c.iter().enumerate() {
            let pad = w[i] - v.chars().count();
            let right = (2..=7).contains(&i);
            if i > 0 {
                s.push_str("  ");
            }
            if right {
                s.push_str(&" ".repeat(pad));
                s.push_str(v);
            } else {
                s.push_str(v);
                if i < 9 {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        s.trim_end().to_owned()
    };
    println!("{}", line(&header));
    println!(
        "{}",
        w.iter()
            .map(|n| "-".repeat(*n))
            .collect::<Vec<_>>()
            .join("  ")
    );
    let mut last = "";
    for (r, c) in rows.iter().zip(&cells) {
        let section = if r.measure.starts_with("crash") {
            "crash"
        } else if r.measure.starts_with("alpha") || r.measure.starts_with("beta") {
            "footprint"
        } else {
            "graceful"
        };
        if !last.is_empty() && section != last {
            println!();
        }
        last = section;
        println!("{}", line(c));
    }
}

// ---------------------------------------------------------------------------
// Entry point

struct Args {
    runs: usize,
    window: Duration,
    json: bool,
    only: Option<Kind>,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut a = Args {
        runs: 10,
        window: Duration::from_secs(20),
        json: false,
        only: None,
    };
    let mut it = args.iter();
    while let Some(x) = it.next() {
        match x.as_str() {
            "--runs" => {
                let v = it.next().context("--runs needs a number")?;
                a.runs = v
                    .parse()
                    .with_context(|| format!("--runs {v}: not a number"))?;
                if a.runs == 0 {
                    bail!("--runs must be at least 1");
                }
            }
            "--window" => {
                let v = it.next().context("--window needs seconds")?;
                let s: f64 = v
                    .parse()
                    .with_context(|| format!("--window {v}: not a number of seconds"))?;
                if !(1.0..=3600.0).contains(&s) {
                    bail!("--window {v}: between 1 and 3600 seconds");
                }
                a.window = Duration::from_secs_f64(s);
            }
            "--json" => a.json = true,
            "--only" => {
                a.only = Some(match it.next().map(String::as_str) {
                    Some("heartbeatd") => Kind::Ours,
                    Some("3.0.6") => Kind::Real,
                    other => bail!("--only heartbeatd|3.0.6, not {other:?}"),
                })
            }
            "-h" | "--help" => {
                println!(
                    "usage: lab bench heartbeat [--runs N] [--window S] [--json] [--only heartbeatd|3.0.6]\n\
                     crash → takeover and graceful handover of heartbeatd vs the real heartbeat 3.0.6\n\
                     (keepalive 200ms, deadtime 1), N runs each (default 10), then the idle footprint\n\
                     over S seconds (default 20). Root only; heartbeatd and cl_status next to lab."
                );
                std::process::exit(0);
            }
            other => bail!(
                "unknown argument {other:?} (usage: lab bench heartbeat [--runs N] [--window S] \
                 [--json] [--only heartbeatd|3.0.6])"
            ),
        }
    }
    Ok(a)
}

/// `lab bench heartbeat [--runs N] [--window S] [--json] [--only heartbeatd|3.0.6]`
pub fn run(args: &[String]) -> Result<()> {
    let a = parse_args(args)?;
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "lab bench heartbeat needs root (network, mount and PID namespaces, veth); \
             run it as root: sudo target/release/lab bench heartbeat"
        );
    }
    let dir = bin_dir()?;
    let bin = dir.join("heartbeatd");
    for b in [&bin, &dir.join("cl_status")] {
        if !b.is_file() {
            bail!(
                "{} not found: build the release binaries first (cargo build --release --workspace) \
                 and run target/release/lab, or set HBRS_BIN_DIR",
                b.display()
            );
        }
    }
    let bin = bin.canonicalize()?;
    lab::ensure_packages(&["heartbeat"]);
    if !Path::new(HEARTBEAT).is_file() {
        bail!("{HEARTBEAT} missing although the heartbeat package is installed");
    }
    let work = std::env::temp_dir().join(format!("hbrs-bench-heartbeat-{}", std::process::id()));
    fs::create_dir_all(&work).with_context(|| format!("create {}", work.display()))?;
    let work = WorkDir(work);
    EMERGENCY
        .lock()
        .map(|mut g| g.1 = Some(work.0.clone()))
        .ok();
    install_emergency_handlers()?;

    let command = std::iter::once("lab".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let load_before = loadavg();
    let started = Instant::now();
    let kinds: Vec<Kind> = [Kind::Real, Kind::Ours]
        .into_iter()
        .filter(|k| a.only.is_none_or(|o| o == *k))
        .collect();
    let mut results = Vec::new();
    for k in kinds {
        results.push(bench_one(k, &work.0, &bin, a.runs, a.window)?);
    }
    let load_after = loadavg();
    let rows = rows(&results);

    if a.json {
        let v = json!({
            "command": command,
            "runs": a.runs,
            "window_s": a.window.as_secs_f64(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "elapsed_s": started.elapsed().as_secs_f64(),
            "timers": {"keepalive_ms": KEEPALIVE_MS, "warntime_ms": 600, "deadtime_ms": DEADTIME_MS, "initdead_ms": 2000},
            "heartbeatd": bin.display().to_string(),
            "rows": rows.iter().map(|r| r.json.clone()).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!();
    println!(
        "lab bench heartbeat: heartbeat 3.0.6 ({HEARTBEAT}) vs heartbeatd ({}), two nodes in network \
         namespaces, bcast hb0, keepalive 200ms, warntime 600ms, deadtime 1, initdead 2, \
         auto_failback on, sha1; one group homed on alpha, agent = bash script, no forks",
        bin.display()
    );
    println!(
        "crash = SIGKILL of alpha's whole instance at a random phase; graceful = `heartbeatd -k` / \
         `heartbeat -k`; times from the agent's $EPOCHREALTIME stamps against T0 (host clock just \
         before the kill / stop command)"
    );
    println!();
    print_table(&rows);
    println!();
    println!(
        "targets (issue 2) apply to heartbeatd, judged on the median: crash → first start ≤ deadtime \
         + 30 ms; graceful handover ≤ 100 ms + agent time; VmRSS ≤ 4 MiB. n = runs (+ failed ✗)."
    );
    println!(
        "footprint: sums over the daemon's processes; alpha was restarted by every run, beta lived \
         through all of them; CPU and wakeups over the idle window, memory at its end."
    );
    println!(
        "3.0.6 reference (heartbeat-3.0.6.md §8, peer-performance.md §3): crash → first call \
         1.07–1.23 s; graceful → first start 0.61 s, stop command ≈ 3.5 s; per node 26 884 kB \
         VmRSS / 8 689 kB PSS, 208.6 ms CPU per 60 s, 28.7 wakeups/s."
    );
    println!(
        "command: {command} | runs: {} per implementation and scenario | footprint window: {} s | \
         loadavg before: {load_before}, after: {load_after} | took {:.0} s",
        a.runs,
        a.window.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_interpolate() {
        let s = stats(&[5.0, 1.0, 4.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.n, s.min, s.max, s.median), (5, 1.0, 5.0, 3.0));
        assert!((s.p10 - 1.4).abs() < 1e-9 && (s.p90 - 4.6).abs() < 1e-9);
        assert!(stats(&[]).is_none());
    }

    #[test]
    fn events_and_agent_time() {
        let dir = std::env::temp_dir().join(format!("hbrs-bh-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events");
        fs::write(
            &path,
            "10.000 alpha status begin\n10.001 alpha status end\n11.000 alpha stop begin\n\
             11.002 alpha stop end\n11.100 beta status begin\n11.101 beta status end\n\
             11.102 beta start begin\n11.103 beta start end\n11.2 beta sta",
        )
        .unwrap();
        let ev = Events { path }.since(0);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(ev.len(), 8, "the incomplete last line is left out");
        let start = first_begin(&ev, "beta", Some("start"), 10.5).unwrap();
        assert_eq!(start.t, 11.102);
        assert_eq!(first_begin(&ev, "alpha", None, 10.5).unwrap().verb, "stop");
        let path = agent_time(&ev, "alpha", 10.5, start.t) + agent_time(&ev, "beta", 10.5, start.t);
        assert!((path - 0.003).abs() < 1e-9, "{path}");
    }

    #[test]
    fn args() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let a = parse_args(&s(&["--runs", "12", "--window", "5", "--json"])).unwrap();
        assert_eq!(
            (a.runs, a.window, a.json),
            (12, Duration::from_secs(5), true)
        );
        assert!(parse_args(&s(&["--runs", "0"])).is_err());
        assert!(parse_args(&s(&["--runs", "x"])).is_err());
        assert!(parse_args(&s(&["--bogus"])).is_err());
        assert!(parse_args(&s(&["--only", "2.1"])).is_err());
    }
}
