//! `lab demo`: the README's "run it" command.
//!
//! It builds a small copy of the reference cluster on this machine: the two
//! directors `loadbalancer` (192.168.136.11) and `backup` (192.168.136.12)
//! and a `client` (192.168.136.200), each in its own network namespace with
//! an `eth0`, all three plugged into one bridge (`br0`, in a fourth
//! namespace `lan`). Both directors run OUR `heartbeatd` with the haresources
//! line `loadbalancer IPaddr::192.168.136.10/24/eth0` (the real `IPaddr`
//! agent of the resource-agents crate, heartbeat v1 style, from each node's
//! `resource.d`), and a tiny web server that answers with the host's name,
//! so the client sees who holds the VIP. The demo then crashes the owner,
//! brings it back (failback) and stops it gracefully (handover), measuring
//! each move of the VIP, and removes everything it made.
//!
//! Times are measured by watchers on threads: one polls the addresses of
//! both directors over rtnetlink every 2 ms, one asks the VIP's web server
//! from inside the client namespace every few ms. The clock starts at the
//! `kill -9` / restart / `heartbeatd -k`.
//!
//! Cleanup: the namespaces, the processes in them (heartbeatd, the agents'
//! ARP senders, tcpdump) and the state directory are removed by Drop guards
//! on every return path. Because release builds abort on panic and Ctrl-C
//! would skip destructors, everything created is also listed in a registry
//! that a panic hook (abort builds) and a cleanup thread woken by the
//! SIGINT/SIGTERM/SIGHUP handler empty before the process ends.

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hanet::Rtnl;

use lab::hbnode::HbNode;
use lab::netns::{veth, Netns};
use lab::servers::{self, Page, Proto, Server};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 136, 10);
const LB: &str = "loadbalancer";
const BK: &str = "backup";
const CLIENT: &str = "client";
const LB_IP: &str = "192.168.136.11/24";
const BK_IP: &str = "192.168.136.12/24";
const CLIENT_IP: &str = "192.168.136.200/24";
const HARESOURCES: &str = "loadbalancer IPaddr::192.168.136.10/24/eth0";
/// The demo's timers (the reference uses keepalive 2, deadtime 30).
const TIMERS: &str = "keepalive 200ms\nwarntime 600ms\ndeadtime 1\ninitdead 2\n";
/// How long any one step may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// `lab demo`.
pub fn run(args: &[String]) -> Result<()> {
    if let Some(a) = args.first() {
        bail!("demo takes no arguments (got {a:?}); usage: lab demo");
    }
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "the demo must run as root: it creates network namespaces, veth pairs and a \
             bridge. Run: sudo ./lab/demo"
        );
    }
    let bins = Bins::find()?;
    for tool in ["ip", "curl", "tcpdump"] {
        if !in_path(tool) {
            bail!(
                "the demo needs `{tool}` in PATH; install the lab's packages with: sudo ./lab/deps"
            );
        }
    }
    guard::install();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| demo(&bins)));
    guard::wait_if_interrupted();
    match result {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(anyhow!("{msg}"))
        }
    }
    .context("demo failed (everything it created has been removed)")
}

fn in_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// The binaries the demo runs, found next to the `lab` executable.
struct Bins {
    heartbeatd: PathBuf,
    ipaddr: PathBuf,
}

impl Bins {
    fn find() -> Result<Bins> {
        let exe = std::env::current_exe().context("cannot locate the lab executable")?;
        let dir = exe
            .parent()
            .ok_or_else(|| anyhow!("{} has no directory", exe.display()))?
            .to_owned();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut missing = Vec::new();
        for b in ["heartbeatd", "cl_status", "IPaddr"] {
            if !dir.join(b).is_file() {
                missing.push(dir.join(b).display().to_string());
            }
        }
        if !missing.is_empty() {
            bail!(
                "missing {} (the demo runs the binaries next to {}); build them with: \
                 cargo build{} -p heartbeatd -p resource-agents --bins",
                missing.join(", "),
                exe.display(),
                if release { " --release" } else { "" }
            );
        }
        Ok(Bins {
            heartbeatd: dir.join("heartbeatd"),
            ipaddr: dir.join("IPaddr"),
        })
    }
}

// ---------------------------------------------------------------------------
// Output

fn step(n: u32, title: &str) {
    println!();
    println!("=== {n}. {title}");
}

fn say(text: &str) {
    println!("{text}");
}

/// Prints a command as typed on `host` and its output, indented.
fn show_output(host: &str, cmdline: &str, out: &str) {
    println!("[{host}]# {cmdline}");
    for l in out.trim_end().lines() {
        println!("    {l}");
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Runs `ip ARGS` in `ns` and shows it as run on `host`.
fn show_ip(host: &str, ns: &Netns, args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .arg("-n")
        .arg(ns.name())
        .args(args)
        .output()
        .context("run ip")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    show_output(host, &format!("ip {}", args.join(" ")), &text);
    if !out.status.success() {
        bail!("ip {} in {host} failed: {}", args.join(" "), text.trim());
    }
    Ok(text)
}

/// `cl_status ARGS` on a node, shown.
fn show_cl(n: &HbNode, args: &[&str]) -> String {
    let out = n.cl(args);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    show_output(n.node(), &format!("cl_status {}", args.join(" ")), &text);
    text
}

/// `curl http://VIP/` from the client, shown; returns the answer.
fn show_curl(client: &Netns) -> Result<String> {
    let out = client
        .cmd("curl")
        .args(["-sS", "-m", "2", &format!("http://{VIP}/")])
        .output()
        .context("run curl")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    show_output(CLIENT, &format!("curl -sS -m 2 http://{VIP}/"), &text);
    Ok(text.trim().to_owned())
}

/// New lines of a node's log since `from` (a byte offset), shown, at most
/// `max` of them (the last ones).
fn show_log(n: &HbNode, from: usize, max: usize) {
    let log = n.log();
    let new = log.get(from..).unwrap_or("");
    let lines: Vec<&str> = new.lines().collect();
    println!("[{}]# tail {}/ha-log", n.node(), n.statedir().display());
    let skip = lines.len().saturating_sub(max);
    if skip > 0 {
        println!("    ... ({skip} earlier lines)");
    }
    for l in &lines[skip..] {
        println!("    {l}");
    }
}

// ---------------------------------------------------------------------------
// Cleanup registry, panic hook, signals

mod guard {
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::sync::{Mutex, Once};
    use std::time::Duration;

    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

    #[derive(Default)]
    struct Registry {
        netns: Vec<String>,
        dirs: Vec<PathBuf>,
    }

    static REG: Mutex<Registry> = Mutex::new(Registry {
        netns: Vec::new(),
        dirs: Vec::new(),
    });
    /// Held while a namespace is created and registered, so an interrupt
    /// never sees one half made.
    pub static CREATE: Mutex<()> = Mutex::new(());

    fn reg() -> std::sync::MutexGuard<'static, Registry> {
        REG.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_netns(name: &str) {
        reg().netns.push(name.to_owned());
    }

    pub fn add_dir(d: PathBuf) {
        reg().dirs.push(d);
    }

    pub fn forget_netns(name: &str) {
        reg().netns.retain(|n| n != name);
    }

    pub fn forget_dir(d: &std::path::Path) {
        reg().dirs.retain(|x| x != d);
    }

    /// Kills every process in the registered namespaces, deletes them and
    /// the registered directories. Idempotent.
    pub fn cleanup() {
        let r = std::mem::take(&mut *reg());
        for ns in &r.netns {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            Signal::SIGKILL,
                        );
                    }
                }
            }
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(std::process::Stdio::null())
                .status();
        }
        for d in &r.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    /// The signal that interrupted the demo (0: none). Set by the handler.
    static SIGNAL: AtomicI32 = AtomicI32::new(0);

    extern "C" fn on_signal(sig: libc::c_int) {
        // async-signal-safe: one atomic store
        SIGNAL.store(sig, Ordering::SeqCst);
    }

    /// Installs the panic hook, the handlers of SIGINT/SIGTERM/SIGHUP and
    /// the thread that cleans up after them (once).
    ///
    /// The signals get a handler rather than a blocked mask and `sigwait`:
    /// a blocked mask would be inherited by every child (std does not reset
    /// it at spawn), and a heartbeatd started with SIGTERM blocked never
    /// hears `heartbeatd -k`. Handlers are reset to the default at exec.
    pub fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let default = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                default(info);
                if interrupted() {
                    // the cleanup thread is at work and will end the process
                    park();
                }
                if cfg!(panic = "abort") {
                    eprintln!(
                        "lab demo: failed; removing the namespaces, processes and files it made"
                    );
                    cleanup();
                    eprintln!("lab demo: cleaned up");
                }
            }));
            let action = SigAction::new(
                SigHandler::Handler(on_signal),
                SaFlags::SA_RESTART,
                SigSet::empty(),
            );
            for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
                // SAFETY: the handler only stores to an atomic.
                let _ = unsafe { sigaction(sig, &action) };
            }
            std::thread::spawn(|| loop {
                let sig = SIGNAL.load(Ordering::SeqCst);
                if sig != 0 {
                    let name = Signal::try_from(sig)
                        .map(|s| s.as_str())
                        .unwrap_or("signal");
                    eprintln!(
                        "\nlab demo: interrupted ({name}): removing the namespaces, processes \
                         and files it made"
                    );
                    let _creating = CREATE.lock().unwrap_or_else(|e| e.into_inner());
                    cleanup();
                    eprintln!("lab demo: cleaned up");
                    std::process::exit(128 + sig);
                }
                std::thread::sleep(Duration::from_millis(20));
            });
        });
    }

    pub fn park() -> ! {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// If the demo was interrupted, waits for the cleanup thread to finish
    /// and end the process.
    pub fn wait_if_interrupted() {
        if interrupted() {
            park();
        }
    }

    pub fn interrupted() -> bool {
        SIGNAL.load(Ordering::SeqCst) != 0
    }
}

/// A namespace made by the demo: registered for the interrupt/abort
/// cleanup, deleted (with its processes) on drop.
struct DemoNs {
    ns: Netns,
}

impl DemoNs {
    fn new(prefix: &str) -> DemoNs {
        let _creating = guard::CREATE.lock().unwrap_or_else(|e| e.into_inner());
        let ns = Netns::new(prefix);
        guard::add_netns(ns.name());
        DemoNs { ns }
    }
}

impl std::ops::Deref for DemoNs {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.ns
    }
}

impl Drop for DemoNs {
    fn drop(&mut self) {
        if guard::interrupted() {
            // the cleanup thread removes it and ends the process; racing it
            // here would only print errors
            guard::park();
        }
        // Netns's own Drop (right after this) kills and deletes; the
        // registry entry is no longer needed then.
        guard::forget_netns(self.ns.name());
    }
}

/// The demo's state directory, removed on drop.
struct StateDir(PathBuf);

impl StateDir {
    fn new() -> Result<StateDir> {
        let d = std::env::temp_dir().join(format!("lab-demo.{}", std::process::id()));
        if d.exists() {
            fs::remove_dir_all(&d).with_context(|| format!("remove stale {}", d.display()))?;
        }
        fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
        guard::add_dir(d.clone());
        Ok(StateDir(d))
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
        guard::forget_dir(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Watchers

/// A thread sampling some state every `every`, keeping the changes with
/// the time they were first seen.
struct Watch<T> {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<(Instant, T)>>>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Clone + PartialEq + Send + 'static> Watch<T> {
    /// `setup` runs first on the watcher's thread (e.g. entering a
    /// namespace) and makes the sampler.
    fn start<S, F>(every: Duration, setup: S) -> Result<Watch<T>>
    where
        S: FnOnce() -> Result<F> + Send + 'static,
        F: FnMut() -> T + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let log: Arc<Mutex<Vec<(Instant, T)>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel::<Result<()>>();
        let thread = {
            let stop = stop.clone();
            let log = log.clone();
            std::thread::spawn(move || {
                let mut sample = match setup() {
                    Ok(f) => {
                        let _ = tx.send(Ok(()));
                        f
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                while !stop.load(Ordering::SeqCst) {
                    let v = sample();
                    let now = Instant::now();
                    {
                        let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                        if l.last().is_none_or(|(_, last)| *last != v) {
                            l.push((now, v));
                        }
                    }
                    std::thread::sleep(every);
                }
            })
        };
        rx.recv()
            .map_err(|_| anyhow!("watcher thread died while starting"))??;
        // wait for the first sample
        let w = Watch {
            stop,
            log,
            thread: Some(thread),
        };
        let t = Instant::now();
        while w.log.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            if t.elapsed() > Duration::from_secs(5) {
                bail!("watcher took no sample in 5 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(w)
    }

    fn changes(&self) -> Vec<(Instant, T)> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn current(&self) -> T {
        self.changes().last().expect("a first sample").1.clone()
    }

    /// The first moment at or after `since` at which `pred` held (`since`
    /// itself if it held already then), waiting up to `timeout`.
    fn wait(
        &self,
        since: Instant,
        timeout: Duration,
        pred: impl Fn(&T) -> bool,
    ) -> Option<Instant> {
        let end = Instant::now() + timeout;
        loop {
            let l = self.changes();
            let before = l.iter().rev().find(|(t, _)| *t <= since);
            if before.is_some_and(|(_, v)| pred(v)) {
                return Some(since);
            }
            if let Some((t, _)) = l.iter().find(|(t, v)| *t > since && pred(v)) {
                return Some(*t);
            }
            if Instant::now() >= end || guard::interrupted() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl<T> Drop for Watch<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where the VIP is: (on loadbalancer, on backup).
type Holders = (bool, bool);

fn holders_text(h: Holders) -> &'static str {
    match h {
        (true, false) => "loadbalancer",
        (false, true) => "backup",
        (true, true) => "BOTH (split brain)",
        (false, false) => "nobody",
    }
}

/// Watches which director has the VIP on its eth0, over rtnetlink, every 2 ms.
fn watch_vip(lb: &Netns, bk: &Netns) -> Result<Watch<Holders>> {
    let open = |ns: &Netns| {
        servers::in_netns(Some(ns.name()), || {
            Rtnl::open().map_err(|e| std::io::Error::other(e.to_string()))
        })
        .with_context(|| format!("rtnetlink socket in {}", ns.name()))
    };
    let mut a = open(lb)?;
    let mut b = open(bk)?;
    Watch::start(Duration::from_millis(2), move || {
        Ok(move || {
            let has = |r: &mut Rtnl| {
                r.find_address(IpAddr::V4(VIP))
                    .map(|a| a.is_some())
                    .unwrap_or(false)
            };
            (has(&mut a), has(&mut b))
        })
    })
}

/// One HTTP GET of the VIP from the calling thread's namespace: the name of
/// the director that answered, or None (no answer in time).
fn ask_vip() -> Option<String> {
    let addr = SocketAddr::from((VIP, 80));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(20)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    s.set_write_timeout(Some(Duration::from_millis(300))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: 192.168.136.10\r\n\r\n")
        .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let body = resp.split_once("\r\n\r\n")?.1.trim();
    (!body.is_empty()).then(|| body.to_owned())
}

/// Watches, from inside the client namespace, who answers on the VIP.
fn watch_client(client: &Netns) -> Result<Watch<Option<String>>> {
    let ns = client.name().to_owned();
    Watch::start(Duration::from_millis(3), move || {
        servers::enter_netns(&ns).with_context(|| format!("enter namespace {ns}"))?;
        Ok(ask_vip)
    })
}

/// The web server of a director: answers every GET / with the host name.
fn web(ns: &Netns, name: &str) -> Result<Server> {
    servers::tcp(
        Some(ns.name()),
        &[SocketAddr::from(([0, 0, 0, 0], 80))],
        Proto::Http(vec![Page::ok("/", &format!("{name}\n"))]),
        1,
    )
    .with_context(|| format!("web server on {name}"))
}

/// tcpdump of ARP on the client's eth0, running until dropped.
struct ArpCapture {
    child: Child,
    out: PathBuf,
}

impl ArpCapture {
    fn start(client: &Netns, dir: &Path) -> Result<ArpCapture> {
        let out = dir.join("client-arp.txt");
        let err = dir.join("client-arp.err");
        let child = client
            .cmd("tcpdump")
            .args(["-l", "-n", "-e", "-i", "eth0", "arp"])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out)?)
            .stderr(fs::File::create(&err)?)
            .process_group(0)
            .spawn()
            .context("start tcpdump in the client namespace")?;
        let mut cap = ArpCapture { child, out };
        let ok = lab::wait_until(Duration::from_secs(10), || {
            fs::read_to_string(&err)
                .ok()
                .filter(|s| s.contains("listening on"))
        });
        if ok.is_none() {
            cap.stop();
            bail!(
                "tcpdump did not start: {}",
                fs::read_to_string(&err).unwrap_or_default()
            );
        }
        Ok(cap)
    }

    /// Stops the capture and returns its lines.
    fn finish(mut self) -> String {
        // SIGINT: tcpdump flushes and exits
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let _ = lab::wait_until(Duration::from_secs(3), || {
            self.child.try_wait().ok().flatten()
        });
        self.stop();
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ArpCapture {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// The demo

/// Writes a node's configuration directory.
fn write_conf(dir: &Path, node: &str, ipaddr: &Path, rsctmp: &Path) -> Result<PathBuf> {
    let d = dir.join(format!("conf-{node}"));
    fs::create_dir_all(d.join("resource.d"))?;
    fs::write(
        d.join("ha.cf"),
        format!(
            "# lab demo: the reference cluster's ha.cf with short timers\n\
             {TIMERS}udpport 694\nbcast eth0\nauto_failback on\n\
             node loadbalancer\nnode backup\n\
             # the IPaddr agent's state files (normally /run/resource-agents)\n\
             env RSCTMP={}\n",
            rsctmp.display()
        ),
    )?;
    fs::write(d.join("authkeys"), "auth 2\n2 sha1 lab-demo-secret\n")?;
    fs::set_permissions(d.join("authkeys"), fs::Permissions::from_mode(0o600))?;
    fs::write(d.join("haresources"), format!("{HARESOURCES}\n"))?;
    std::os::unix::fs::symlink(ipaddr, d.join("resource.d/IPaddr"))?;
    Ok(d)
}

/// Waits until `lb` and `bk` report settled resource states: the owner of
/// the group "local"/"all" and the other "none"/"local" (not "transition").
fn wait_settled(owner: &HbNode, other: Option<&HbNode>, owner_word: &str) -> Result<()> {
    let ok = lab::wait_until(STEP_TIMEOUT, || {
        let o = owner.cl_status(&["rscstatus"]);
        let p = other.map(|n| n.cl_status(&["rscstatus"]));
        (o == owner_word && p.as_deref().is_none_or(|p| matches!(p, "none" | "local")))
            .then_some(())
    });
    if ok.is_none() {
        bail!(
            "resources did not settle in {STEP_TIMEOUT:?}: {} says {:?}{}\n--- {} log\n{}",
            owner.node(),
            owner.cl_status(&["rscstatus"]),
            other
                .map(|n| format!(", {} says {:?}", n.node(), n.cl_status(&["rscstatus"])))
                .unwrap_or_default(),
            owner.node(),
            owner.log()
        );
    }
    Ok(())
}

fn need<T>(v: Option<T>, what: &str, logs: impl Fn() -> String) -> Result<T> {
    v.ok_or_else(|| anyhow!("{what} (waited {STEP_TIMEOUT:?})\n{}", logs()))
}

fn demo(bins: &Bins) -> Result<()> {
    let t_demo = Instant::now();
    say("lab demo: a two-director heartbeat-rs cluster in network namespaces on this machine.");
    say("Every command below really ran; its output follows it.");

    // 1. Topology --------------------------------------------------------
    step(
        1,
        "Topology: three hosts on one Ethernet segment (a bridge), as in the reference cluster",
    );
    let state = StateDir::new()?;
    let lan = DemoNs::new("lan-");
    let lb_ns = DemoNs::new("loadbalancer-");
    let bk_ns = DemoNs::new("backup-");
    let client = DemoNs::new("client-");
    lan.ip(&["link", "add", "br0", "type", "bridge"]);
    lan.ip(&["link", "set", "br0", "up"]);
    for (ns, port, ip) in [
        (&lb_ns, LB, LB_IP),
        (&bk_ns, BK, BK_IP),
        (&client, CLIENT, CLIENT_IP),
    ] {
        veth(ns, "eth0", ip, &lan, port, "");
        lan.ip(&["link", "set", port, "master", "br0"]);
    }
    say(&format!(
        "Namespaces: {} (loadbalancer), {} (backup), {} (client), {} (the switch: bridge br0).",
        lb_ns.name(),
        bk_ns.name(),
        client.name(),
        lan.name()
    ));
    for (host, ns) in [(LB, &lb_ns), (BK, &bk_ns), (CLIENT, &client)] {
        show_ip(host, ns, &["-br", "link", "show", "dev", "eth0"])?;
        show_ip(host, ns, &["-br", "-4", "addr", "show", "dev", "eth0"])?;
    }
    show_ip("lan", &lan, &["-br", "link", "show", "master", "br0"])?;

    // 2. heartbeatd on both ------------------------------------------------
    step(2, "heartbeatd started on both directors");
    let rsctmp_lb = state.0.join("rsctmp-loadbalancer");
    let rsctmp_bk = state.0.join("rsctmp-backup");
    let conf_lb = write_conf(&state.0, LB, &bins.ipaddr, &rsctmp_lb)?;
    let conf_bk = write_conf(&state.0, BK, &bins.ipaddr, &rsctmp_bk)?;
    show_output(
        LB,
        "cat /etc/ha.d/ha.cf /etc/ha.d/haresources   (this node's copy)",
        &(fs::read_to_string(conf_lb.join("ha.cf"))?
            + &fs::read_to_string(conf_lb.join("haresources"))?),
    );
    say("(The reference chain is `lvs IPaddr ipvsadm ldirectord`; this kernel has no IPVS, so the");
    say(" demo runs the IPaddr part: the VIP on eth0, announced by gratuitous ARP.)");
    let vip = watch_vip(&lb_ns, &bk_ns)?;
    let client_view = watch_client(&client)?;
    let mut web_lb = Some(web(&lb_ns, LB)?);
    let _web_bk = web(&bk_ns, BK)?;
    let t_start = Instant::now();
    let mut lb = HbNode::start(
        &lb_ns,
        LB,
        &conf_lb,
        &state.0.join(LB),
        true,
        &bins.heartbeatd,
    );
    let mut bk = HbNode::start(
        &bk_ns,
        BK,
        &conf_bk,
        &state.0.join(BK),
        true,
        &bins.heartbeatd,
    );
    say(&format!(
        "heartbeatd -f -c <conf> running in both namespaces (pids {} and {}).",
        lb.pid().unwrap_or(0),
        bk.pid().unwrap_or(0)
    ));
    let logs = |lb: &HbNode, bk: &HbNode| {
        format!(
            "--- loadbalancer ha-log\n{}\n--- backup ha-log\n{}",
            lb.log(),
            bk.log()
        )
    };
    let t_vip = need(
        vip.wait(t_start, STEP_TIMEOUT, |h| *h == (true, false)),
        "the VIP never came up on loadbalancer",
        || logs(&lb, &bk),
    )?;
    wait_settled(&lb, Some(&bk), "local")?;
    // both see both
    let both = lab::wait_until(STEP_TIMEOUT, || {
        [&lb, &bk]
            .iter()
            .all(|n| {
                [LB, BK]
                    .iter()
                    .all(|p| n.cl_status(&["nodestatus", p]) == "active")
            })
            .then_some(())
    });
    need(both, "the nodes did not see each other active", || {
        logs(&lb, &bk)
    })?;
    for n in [&lb, &bk] {
        show_cl(n, &["listnodes", "-v"]);
        show_cl(n, &["rscstatus"]);
    }
    say("(rscstatus \"local\": each node holds its own groups; backup has none, like 3.0.6 it says local)");
    say(&format!(
        "loadbalancer, the home node of the group, brought the VIP up {} after both daemons were \
         started: both started together, so (like heartbeat 3.0.6) it first waited RQSTDELAY \
         (10 s) for its peer to settle.",
        ms(t_vip - t_start)
    ));

    // 3. VIP on loadbalancer ------------------------------------------------
    step(
        3,
        "The VIP 192.168.136.10 is on loadbalancer; the client reaches loadbalancer through it",
    );
    for (host, ns) in [(LB, &lb_ns), (BK, &bk_ns)] {
        show_ip(host, ns, &["-br", "-4", "addr", "show", "dev", "eth0"])?;
    }
    need(
        client_view.wait(Instant::now(), STEP_TIMEOUT, |a| a.as_deref() == Some(LB)),
        "the client never got an answer from loadbalancer through the VIP",
        || logs(&lb, &bk),
    )?;
    let answer = show_curl(&client)?;
    if answer != LB {
        bail!("expected loadbalancer to answer on the VIP, got {answer:?}");
    }
    show_ip(CLIENT, &client, &["neigh", "show", &VIP.to_string()])?;
    say("The client's ARP entry for the VIP holds loadbalancer's MAC (see step 1).");

    // 4. Crash -------------------------------------------------------------
    step(
        4,
        "Crash: kill -9 of loadbalancer's heartbeatd, and its VIP vanishes (a dead machine)",
    );
    let deadtime = bk.cl_status(&["hbparameter", "-p", "deadtime"]);
    show_output(BK, "cl_status hbparameter -p deadtime", &deadtime);
    let arp = ArpCapture::start(&client, &state.0)?;
    let bk_log_mark = bk.log().len();
    let lb_pid = lb.pid().unwrap_or(0);
    let t_kill = Instant::now();
    lb.kill();
    // the rest of the machine dies with it: its VIP, agents' helpers, web server
    for pid in lb_ns.pids() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = Command::new("ip")
        .args([
            "-n",
            lb_ns.name(),
            "addr",
            "del",
            "192.168.136.10/24",
            "dev",
            "eth0",
        ])
        .status();
    web_lb.take();
    say(&format!(
        "[host]# kill -9 {lb_pid}; ip -n {} addr del 192.168.136.10/24 dev eth0   (at t=0)",
        lb_ns.name()
    ));
    let t_bk_vip = need(
        vip.wait(t_kill, STEP_TIMEOUT, |h| *h == (false, true)),
        "backup never took the VIP over",
        || logs(&lb, &bk),
    )?;
    let t_bk_client = need(
        client_view.wait(t_kill, STEP_TIMEOUT, |a| a.as_deref() == Some(BK)),
        "the client never reached backup through the VIP",
        || logs(&lb, &bk),
    )?;
    // IPaddr announces 5 times, 200 ms apart (in the background)
    std::thread::sleep(Duration::from_millis(1200).saturating_sub(t_bk_vip.elapsed()));
    let captured = arp.finish();
    show_log(&bk, bk_log_mark, 14);
    show_ip(BK, &bk_ns, &["-br", "-4", "addr", "show", "dev", "eth0"])?;
    show_ip(LB, &lb_ns, &["-br", "-4", "addr", "show", "dev", "eth0"])?;
    let garps: Vec<&str> = captured
        .lines()
        .filter(|l| {
            l.contains("Request who-has 192.168.136.10 tell 192.168.136.10")
                || l.contains("Reply 192.168.136.10 is-at")
        })
        .collect();
    show_output(
        CLIENT,
        "tcpdump -l -n -e -i eth0 arp   (the gratuitous ARPs it captured)",
        &garps.join("\n"),
    );
    if garps.is_empty() {
        bail!("no gratuitous ARP for the VIP was seen by the client:\n{captured}");
    }
    show_ip(CLIENT, &client, &["neigh", "show", &VIP.to_string()])?;
    say("The gratuitous ARP moved the client's ARP entry for the VIP to backup's MAC.");
    let answer = show_curl(&client)?;
    if answer != BK {
        bail!("expected backup to answer on the VIP after the takeover, got {answer:?}");
    }
    println!(
        "MEASURED crash takeover: VIP up on backup {} after the kill; client answered by backup after {} \
         (deadtime in force: {} ms)",
        ms(t_bk_vip - t_kill),
        ms(t_bk_client - t_kill),
        deadtime.trim()
    );
    say("(deadtime runs from the last heartbeat heard, which left loadbalancer up to one keepalive,");
    say(" 200 ms, before the kill; the IPaddr start adds a few ms.)");

    // 5. cl_status on backup ---------------------------------------------
    step(
        5,
        "cl_status on backup: loadbalancer is dead, backup holds all resources",
    );
    let ok = lab::wait_until(STEP_TIMEOUT, || {
        (bk.cl_status(&["rscstatus"]) == "all").then_some(())
    });
    need(ok, "backup did not report rscstatus all", || logs(&lb, &bk))?;
    let st = show_cl(&bk, &["nodestatus", LB]);
    if st.trim() != "dead" {
        bail!("backup says loadbalancer is {:?}, expected dead", st.trim());
    }
    show_cl(&bk, &["listnodes", "-v"]);
    show_cl(&bk, &["rscstatus"]);
    say("(backup has no group of its own; \"all\" means it now runs loadbalancer's too)");

    // 6. Failback ----------------------------------------------------------
    step(
        6,
        "loadbalancer comes back: the VIP fails back to it (auto_failback on)",
    );
    // a rebooted machine: /run is empty again, its web server is back
    let _ = fs::remove_dir_all(&rsctmp_lb);
    web_lb = Some(web(&lb_ns, LB)?);
    let bk_log_mark = bk.log().len();
    let lb_log_mark = lb.log().len();
    let t_restart = Instant::now();
    lb.restart();
    say(&format!(
        "[loadbalancer]# heartbeatd -f -c <conf>   (at t=0; pid {})",
        lb.pid().unwrap_or(0)
    ));
    let t_back = need(
        vip.wait(t_restart, STEP_TIMEOUT, |h| *h == (true, false)),
        "the VIP never failed back to loadbalancer",
        || logs(&lb, &bk),
    )?;
    let t_back_client = need(
        client_view.wait(t_restart, STEP_TIMEOUT, |a| a.as_deref() == Some(LB)),
        "the client never reached loadbalancer again",
        || logs(&lb, &bk),
    )?;
    let released = vip
        .changes()
        .into_iter()
        .find(|(t, h)| *t > t_restart && !h.1)
        .map(|(t, _)| t);
    wait_settled(&lb, Some(&bk), "local")?;
    show_log(&bk, bk_log_mark, 8);
    show_log(&lb, lb_log_mark, 10);
    for (host, ns) in [(LB, &lb_ns), (BK, &bk_ns)] {
        show_ip(host, ns, &["-br", "-4", "addr", "show", "dev", "eth0"])?;
    }
    let answer = show_curl(&client)?;
    if answer != LB {
        bail!("expected loadbalancer to answer on the VIP after failback, got {answer:?}");
    }
    println!(
        "MEASURED failback: backup released the VIP {} and loadbalancer had it {} after the restart; \
         client answered by loadbalancer after {}",
        released.map(|t| ms(t - t_restart)).unwrap_or_else(|| "?".into()),
        ms(t_back - t_restart),
        ms(t_back_client - t_restart)
    );

    // 7. Graceful stop -----------------------------------------------------
    step(
        7,
        "Graceful stop of loadbalancer (heartbeatd -k): backup takes over at once",
    );
    let bk_log_mark = bk.log().len();
    let lb_log_mark = lb.log().len();
    let t_stop = Instant::now();
    say("[loadbalancer]# heartbeatd -k   (at t=0)");
    if !lb.stop(STEP_TIMEOUT) {
        bail!(
            "heartbeatd -k on loadbalancer did not finish in {STEP_TIMEOUT:?}\n{}",
            logs(&lb, &bk)
        );
    }
    let t_stopped = Instant::now();
    let t_hand = need(
        vip.wait(t_stop, STEP_TIMEOUT, |h| *h == (false, true)),
        "backup never took the VIP over after the graceful stop",
        || logs(&lb, &bk),
    )?;
    let t_hand_client = need(
        client_view.wait(t_stop, STEP_TIMEOUT, |a| a.as_deref() == Some(BK)),
        "the client never reached backup after the graceful stop",
        || logs(&lb, &bk),
    )?;
    let lb_released = vip
        .changes()
        .into_iter()
        .find(|(t, h)| *t > t_stop && !h.0)
        .map(|(t, _)| t);
    show_log(&lb, lb_log_mark, 8);
    show_log(&bk, bk_log_mark, 12);
    for (host, ns) in [(LB, &lb_ns), (BK, &bk_ns)] {
        show_ip(host, ns, &["-br", "-4", "addr", "show", "dev", "eth0"])?;
    }
    let answer = show_curl(&client)?;
    if answer != BK {
        bail!("expected backup to answer on the VIP after the handover, got {answer:?}");
    }
    println!(
        "MEASURED graceful handover: loadbalancer released the VIP {}, its heartbeatd exited {}, \
         VIP up on backup {}; client answered by backup after {}",
        lb_released
            .map(|t| ms(t - t_stop))
            .unwrap_or_else(|| "?".into()),
        ms(t_stopped - t_stop),
        ms(t_hand - t_stop),
        ms(t_hand_client - t_stop)
    );

    // 8. Cleanup -----------------------------------------------------------
    step(
        8,
        "Cleanup: stop backup, remove the namespaces, processes and files",
    );
    if !bk.stop(STEP_TIMEOUT) {
        bail!("heartbeatd -k on backup did not finish in {STEP_TIMEOUT:?}");
    }
    say("[backup]# heartbeatd -k");
    let left = vip.current();
    if left != (false, false) {
        bail!(
            "after both stops the VIP is still on {}",
            holders_text(left)
        );
    }
    say("The VIP is on nobody: backup released it when it stopped.");
    let names: Vec<String> = [&lan, &lb_ns, &bk_ns, &client]
        .iter()
        .map(|n| n.name().to_owned())
        .collect();
    let statedir = state.0.clone();
    drop(client_view);
    drop(vip);
    drop(web_lb);
    drop(_web_bk);
    drop(lb);
    drop(bk);
    drop(client);
    drop(bk_ns);
    drop(lb_ns);
    drop(lan);
    drop(state);
    let list = lab::run_ok(Command::new("ip").args(["netns", "list"]));
    let remaining: Vec<&String> = names
        .iter()
        .filter(|n| list.split_whitespace().any(|w| w == n.as_str()))
        .collect();
    if !remaining.is_empty() {
        bail!("namespaces left behind: {remaining:?}");
    }
    if statedir.exists() {
        bail!("{} left behind", statedir.display());
    }
    say(&format!(
        "Removed namespaces {} (their veths, bridge, addresses and processes went with them) and {}.",
        names.join(", "),
        statedir.display()
    ));
    println!();
    println!(
        "Summary of this run (keepalive 200 ms, deadtime {} ms):",
        deadtime.trim()
    );
    for (what, d) in [
        ("crash (kill -9) -> VIP up on backup", t_bk_vip - t_kill),
        (
            "crash (kill -9) -> client answered by backup",
            t_bk_client - t_kill,
        ),
        ("restart -> VIP back on loadbalancer", t_back - t_restart),
        (
            "restart -> client answered by loadbalancer",
            t_back_client - t_restart,
        ),
        ("heartbeatd -k -> VIP up on backup", t_hand - t_stop),
        (
            "heartbeatd -k -> client answered by backup",
            t_hand_client - t_stop,
        ),
    ] {
        println!("  {what:46} {:>8}", ms(d));
    }
    say(&format!(
        "\nDemo complete in {:.1} s.",
        t_demo.elapsed().as_secs_f64()
    ));
    Ok(())
}
