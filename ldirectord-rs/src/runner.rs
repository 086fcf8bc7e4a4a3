//! The event loop: one mio `Poll` runs every check concurrently, each
//! bounded by its own deadline, and carries the engine's decisions out
//! (IPVS through hanet, log and monitor lines, commands, mails). Signals
//! (TERM/INT/QUIT stop, HUP reloads) arrive through the same poll.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hanet::ipvs::{IpvsBackend, Table};
use mio::net::{TcpStream, UdpSocket};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rustls::ClientConfig;
use signal_hook::consts::signal::*;
use signal_hook_mio::v1_0::Signals;

use crate::config::{Config, Service};
use crate::engine::{Engine, Output, Run, Status};
use crate::icmp::IcmpSocket;
use crate::log::{now_epoch, perl_localtime, Logger};
use crate::lvs::{self, Change, Mode};
use crate::plan::{CheckSpec, Kind as PlanKind, Negotiate};
use crate::proto::{self, Dialog, Outcome};
use crate::task::{
    abort_on_close, err_text, pidfd_open, DataConn, ExtTask, Kind, PingTask, Progress, Ready,
    StreamTask, Task, UdpTask, Wording, SUB_DATA, SUB_MAIN,
};

const SIGNALS: Token = Token(usize::MAX);
const ICMP4: Token = Token(usize::MAX - 1);
const ICMP6: Token = Token(usize::MAX - 2);
const TICK: Duration = Duration::from_secs(1);
/// Tokens of idle kept-alive connections: this bit plus the check index.
const POOL: usize = 1 << 62;
/// A kept-alive connection is used for at most this long, then the next
/// check opens a fresh one (so the server's accept path is tested too).
const KEEPALIVE_MAX_AGE: Duration = Duration::from_secs(30);
/// An external check killed with TERM gets KILL this much later.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// How the daemon was asked to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Signal(&'static str),
}

/// Reloads: reads and parses the configuration file again.
pub type Loader = Box<dyn FnMut() -> Result<Config, String>>;

fn sig_name(s: i32) -> &'static str {
    match s {
        SIGTERM => "TERM",
        SIGINT => "INT",
        SIGQUIT => "QUIT",
        SIGXCPU => "XCPU",
        SIGXFSZ => "XFSZ",
        SIGHUP => "HUP",
        _ => "UNKNOWN",
    }
}

/// The maintenance directory: its file names, read at most once a second.
#[derive(Default)]
struct Maintenance {
    names: HashSet<String>,
    read_at: Option<Instant>,
    /// reverse names of addresses, looked up once, only if a file name is
    /// not an address
    rdns: HashMap<IpAddr, Option<String>>,
}

fn reverse_name(ip: IpAddr) -> Option<String> {
    let sa: nix::sys::socket::SockaddrStorage = SocketAddr::new(ip, 0).into();
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: sa points to a valid sockaddr of the given length; host is a
    // writable buffer of the given size; no service buffer is requested.
    let rc = unsafe {
        libc::getnameinfo(
            nix::sys::socket::SockaddrLike::as_ptr(&sa),
            nix::sys::socket::SockaddrLike::len(&sa),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated string into host.
    let s = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    s.to_str().ok().map(str::to_string)
}

impl Maintenance {
    fn hit(&mut self, dir: &Path, addr: IpAddr, port: u16, now: Instant) -> bool {
        if self.read_at.is_none_or(|t| now.duration_since(t) >= TICK) {
            self.read_at = Some(now);
            self.names = std::fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter_map(|e| e.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default();
        }
        if self.names.is_empty() {
            return false;
        }
        let server = match addr {
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        if self.names.contains(&format!("{server}:{port}")) || self.names.contains(&server) {
            return true;
        }
        // names other than addresses: compare with the reverse name
        let needs_names = self.names.iter().any(|n| {
            let h = n.rsplit_once(':').map(|(h, _)| h).unwrap_or(n);
            h.trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
                .is_err()
        });
        if !needs_names {
            return false;
        }
        let name = self
            .rdns
            .entry(addr)
            .or_insert_with(|| reverse_name(addr))
            .clone();
        let Some(name) = name else { return false };
        let short = name.split('.').next().unwrap_or("").to_string();
        [
            format!("{name}:{port}"),
            name.clone(),
            format!("{short}:{port}"),
            short,
        ]
        .iter()
        .any(|n| !n.is_empty() && self.names.contains(n))
    }
}

/// Watches the configuration file for `autoreload` / `callback`.
struct FileWatch {
    path: PathBuf,
    mtime: Option<std::time::SystemTime>,
    digest: Option<u64>,
}

fn digest(b: &[u8]) -> u64 {
    // FNV-1a: change detection only
    let mut h: u64 = 0xcbf29ce484222325;
    for x in b {
        h ^= *x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl FileWatch {
    fn new(path: &Path) -> FileWatch {
        let mut w = FileWatch {
            path: path.to_path_buf(),
            mtime: None,
            digest: None,
        };
        w.changed();
        w
    }

    /// True if the content changed since the last look.
    fn changed(&mut self) -> bool {
        let m = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if m == self.mtime {
            return false;
        }
        self.mtime = m;
        let Ok(b) = std::fs::read(&self.path) else {
            return false;
        };
        let d = digest(&b);
        let changed = self.digest.is_some_and(|old| old != d);
        self.digest = Some(d);
        changed
    }
}

/// Runtime options from the command line.
pub struct Options {
    pub config_path: PathBuf,
    pub cfgname: String,
    pub debug: bool,
}

/// The running daemon.
pub struct Runner {
    poll: Poll,
    events: Events,
    engine: Engine,
    backend: Option<Box<dyn IpvsBackend + Send>>,
    backend_error: Option<String>,
    tasks: Vec<Option<Task>>,
    gens: Vec<u32>,
    free: Vec<usize>,
    deadlines: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    icmp4: Option<IcmpSocket>,
    icmp6: Option<IcmpSocket>,
    pings: HashMap<(IpAddr, u16), usize>,
    ping_seq: u16,
    tls_insecure: Arc<ClientConfig>,
    tls_verify: HashMap<Option<PathBuf>, Result<Arc<ClientConfig>, String>>,
    logger: Arc<Logger>,
    buf: Vec<u8>,
    rng: u64,
    maint: Maintenance,
    commands: Vec<(Child, String)>,
    killed: Vec<(Child, Instant)>,
    polled_children: Vec<usize>,
    signals: Signals,
    watch: FileWatch,
    next_tick: Instant,
    opts: Options,
    loader: Loader,
    running_tasks: usize,
    /// idle kept-alive connections, by check
    pool: Vec<Option<Idle>>,
    pooled: usize,
    pool_cap: usize,
    ticks: u64,
    /// the events of one poll (reused)
    ready: Vec<(Token, Ready)>,
}

fn io_err(e: io::Error) -> String {
    err_text(&e)
}

impl Runner {
    /// Sets up the loop for `cfg` (nothing runs until [`Runner::run`]).
    pub fn new(
        cfg: Config,
        opts: Options,
        logger: Arc<Logger>,
        loader: Loader,
    ) -> Result<Runner, String> {
        raise_nofile();
        let poll = Poll::new().map_err(io_err)?;
        let mut signals =
            Signals::new([SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGXCPU, SIGXFSZ]).map_err(io_err)?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(io_err)?;
        let hostname = crate::config::Resolve::hostname(&crate::config::SystemResolver::default());
        let now = Instant::now();
        let cfg = Arc::new(cfg);
        let engine = Engine::new(cfg, &Table::new(), now, &hostname);
        let rng = (now_epoch() as u64) ^ ((std::process::id() as u64) << 32) | 1;
        let watch = FileWatch::new(&opts.config_path);
        Ok(Runner {
            poll,
            events: Events::with_capacity(1024),
            engine,
            backend: None,
            backend_error: None,
            tasks: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            deadlines: BinaryHeap::new(),
            icmp4: None,
            icmp6: None,
            pings: HashMap::new(),
            ping_seq: 0,
            tls_insecure: crate::tls::insecure(),
            tls_verify: HashMap::new(),
            logger,
            buf: vec![0u8; 64 * 1024],
            rng,
            maint: Maintenance::default(),
            commands: Vec::new(),
            killed: Vec::new(),
            polled_children: Vec::new(),
            signals,
            watch,
            next_tick: now + TICK,
            opts,
            loader,
            running_tasks: 0,
            ready: Vec::with_capacity(1024),
            pool: Vec::new(),
            pooled: 0,
            pool_cap: nofile_limit().saturating_sub(1024) / 2,
            ticks: 0,
        })
    }

    fn log(&self, msg: &str) {
        self.logger.log(msg);
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545F4914F6CDD1D)
    }

    /// Opens the IPVS backend (`HANET_IPVS_BACKEND` or the kernel).
    fn open_backend(&mut self) -> bool {
        if self.backend.is_some() {
            return true;
        }
        match hanet::ipvs::open_from_env() {
            Ok(b) => {
                if self.backend_error.take().is_some() {
                    self.log(&format!("IPVS available again ({})", b.describe()));
                }
                self.backend = Some(b);
                true
            }
            Err(e) => {
                let msg = format!("Can't initialize ipvs: {e}");
                if self.backend_error.as_deref() != Some(&msg) {
                    self.log(&msg);
                }
                self.backend_error = Some(msg);
                false
            }
        }
    }

    fn read_table(&mut self) -> Table {
        if !self.open_backend() {
            return Table::new();
        }
        match self.backend.as_mut().map(|b| b.table()) {
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                self.log(&format!("reading the IPVS table failed: {e}"));
                self.backend = None;
                Table::new()
            }
            None => Table::new(),
        }
    }

    /// Applies changes one by one (a refused one is logged, the others
    /// still run, as with the Perl daemon's separate ipvsadm calls).
    fn apply_changes(&mut self, vi: Option<usize>, changes: &[Change]) {
        let ops: Vec<hanet::ipvs::Op> = changes.iter().filter_map(|c| c.op.clone()).collect();
        let mut from = 0;
        while from < ops.len() {
            let r = match self.backend.as_mut() {
                Some(b) => b.apply(&ops[from..]),
                None => Err(hanet::ipvs::IpvsError::NotAvailable),
            };
            match r {
                Ok(()) => break,
                Err(e @ hanet::ipvs::IpvsError::Refused { .. }) => {
                    // the ones before it are applied; go on after it
                    let hanet::ipvs::IpvsError::Refused { index, .. } = e else {
                        unreachable!()
                    };
                    self.log(&format!("IPVS operation failed: ipvsadm {e}"));
                    from += index + 1;
                }
                Err(e) => {
                    self.log(&format!("IPVS operation failed: {e}"));
                    if !matches!(e, hanet::ipvs::IpvsError::NotAvailable) {
                        self.backend = None;
                        self.backend_error = Some(e.to_string());
                    }
                    break;
                }
            }
        }
        match vi {
            Some(vi) => self.engine.applied(vi, changes, now_epoch() as u64),
            None => {
                for c in changes {
                    self.log(&c.log);
                }
            }
        }
    }

    /// Start / reload: bring every managed service in line with the
    /// configuration (purging unknown reals), purge services of `old`
    /// virtuals that are gone.
    fn reconcile_all(&mut self, old: Option<&[crate::config::Virtual]>) {
        let table = self.read_table();
        if let Some(old) = old {
            let purge = lvs::purge_removed(old, &self.engine.cfg, &table);
            self.apply_changes(None, &purge);
        }
        for vi in 0..self.engine.cfg.virtuals.len() {
            let ch = self.engine.changes(vi, &table, Mode::Start);
            self.apply_changes(Some(vi), &ch);
        }
        self.engine.take_dirty();
        self.flush_outputs();
        drop(table);
        trim_heap();
    }

    /// A state change: recompute the dirty virtual services only.
    fn reconcile_dirty(&mut self) {
        let dirty = self.engine.take_dirty();
        if dirty.is_empty() {
            return;
        }
        if !self.open_backend() {
            return;
        }
        for vi in dirty {
            let key = lvs::service_key(&self.engine.cfg.virtuals[vi]);
            let cur = match self.backend.as_mut().map(|b| b.service(&key)) {
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    self.log(&format!("reading IPVS service {key} failed: {e}"));
                    None
                }
                None => None,
            };
            let ch = self.engine.changes_for(vi, cur.as_ref(), Mode::Change);
            self.apply_changes(Some(vi), &ch);
        }
    }

    /// The first table at start: the engine's initial states come from it.
    pub fn start(&mut self) {
        let table = self.read_table();
        let now = Instant::now();
        let cfg = self.engine.cfg.clone();
        let host = self.engine.hostname.clone();
        self.engine = Engine::new(cfg, &table, now, &host);
        self.engine.status = Status::Starting;
        self.reconcile_all(None);
    }

    fn flush_outputs(&mut self) {
        for o in self.engine.drain() {
            match o {
                Output::Log(l) => self.log(&l),
                Output::Monitor { path, line } => {
                    let l = format!(
                        "[{}] [{}] {line}\n",
                        perl_localtime(now_epoch()),
                        std::process::id()
                    );
                    let r = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .and_then(|mut f| f.write_all(l.as_bytes()));
                    if let Err(e) = r {
                        self.log(&format!(
                            "Error writing to monitorfile '{}': {}",
                            path.display(),
                            err_text(&e)
                        ));
                    }
                }
                Output::Command(c) => self.spawn_command(c),
                Output::Mail(m) => crate::mailer::send_async(m, self.logger.clone()),
            }
        }
    }

    fn spawn_command(&mut self, c: String) {
        match Command::new("/bin/sh")
            .arg("-c")
            .arg(&c)
            .stdin(Stdio::null())
            .spawn()
        {
            Ok(ch) => self.commands.push((ch, c)),
            Err(e) => self.log(&format!("system({c}) failed: {}", err_text(&e))),
        }
    }

    fn reap(&mut self) {
        let mut failed = Vec::new();
        self.commands.retain_mut(|(ch, c)| match ch.try_wait() {
            Ok(Some(st)) => {
                if !st.success() {
                    failed.push(format!("system({c}) failed: {st}"));
                }
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
        for f in failed {
            self.log(&f);
        }
        let now = Instant::now();
        self.killed.retain_mut(|(ch, at)| match ch.try_wait() {
            Ok(Some(_)) | Err(_) => false,
            Ok(None) => {
                if now >= *at {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(ch.id() as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    let _ = ch.kill();
                    *at = now + KILL_GRACE;
                }
                true
            }
        });
    }

    // ---- tasks -------------------------------------------------------

    fn alloc(&mut self) -> (usize, u32) {
        match self.free.pop() {
            Some(s) => {
                self.gens[s] = self.gens[s].wrapping_add(1);
                (s, self.gens[s])
            }
            None => {
                self.tasks.push(None);
                self.gens.push(1);
                (self.tasks.len() - 1, 1)
            }
        }
    }

    /// Task tokens: generation (29 bits) | slot | sub-socket; bit 62 is
    /// the pool's, the top values the signals' and ICMP's.
    fn token(slot: usize, gen: u32, sub: usize) -> Token {
        Token((((gen & 0x1fff_ffff) as usize) << 32) | (slot << 1) | sub)
    }

    fn untoken(t: Token) -> (usize, u32, usize) {
        let v = t.0;
        (
            (v & 0xffff_ffff) >> 1,
            ((v >> 32) & 0x1fff_ffff) as u32,
            v & 1,
        )
    }

    fn tls_config(&mut self, n: &Negotiate) -> Result<Arc<ClientConfig>, String> {
        if !n.sslverify {
            return Ok(self.tls_insecure.clone());
        }
        self.tls_verify
            .entry(n.sslcafile.clone())
            .or_insert_with(|| crate::tls::verifying(n.sslcafile.as_deref()))
            .clone()
    }

    fn dialog(&mut self, spec: &CheckSpec, n: &Negotiate) -> Result<Dialog, Outcome> {
        let hostname = self.engine.hostname.clone();
        Ok(match n.service {
            Service::Http | Service::Https => Dialog::Http(proto::http::Http::new(
                n.httpmethod,
                spec.addr,
                spec.port,
                n.tls,
                n.virtualhost.clone(),
                n.request.clone(),
                n.receive.clone(),
                n.keepalive,
            )),
            Service::Smtp | Service::Submission => Dialog::Mail(proto::mail::Mail::new(
                proto::mail::Kind::Smtp,
                "",
                "",
                &hostname,
            )),
            Service::Pop | Service::Pops => Dialog::Mail(proto::mail::Mail::new(
                proto::mail::Kind::Pop,
                &n.login,
                &n.passwd,
                &hostname,
            )),
            Service::Imap | Service::Imaps => Dialog::Mail(proto::mail::Mail::new(
                proto::mail::Kind::Imap,
                &n.login,
                &n.passwd,
                &hostname,
            )),
            Service::Nntp => Dialog::Mail(proto::mail::Mail::new(
                proto::mail::Kind::Nntp,
                "",
                "",
                &hostname,
            )),
            Service::Ftp => Dialog::Ftp(proto::ftp::Ftp::new(
                &n.login,
                &n.passwd,
                &n.request,
                n.receive.clone(),
                spec.addr.is_ipv6(),
            )),
            Service::Dns => {
                let id = self.rand() as u16;
                match proto::dns::Dns::new(&n.request, spec.udp, n.receive.clone(), id) {
                    Some(d) => Dialog::Dns(d),
                    None => {
                        return Err(Outcome::down(format!(
                            "invalid DNS name in request {}",
                            n.request
                        )))
                    }
                }
            }
            Service::Sip => {
                let nonce = self.rand();
                Dialog::Sip(proto::sip::Sip::new(&n.login, spec.udp, nonce))
            }
            Service::Simpletcp => Dialog::Simpletcp(proto::simpletcp::SimpleTcp::new(
                &n.request,
                n.receive.clone(),
                spec.udp,
            )),
            Service::None => return Err(Outcome::up("-")),
            other => {
                // refused at configuration time; never up
                return Err(Outcome::down(format!("service {other} is not built in")));
            }
        })
    }

    /// Starts check `ci`; returns an immediate outcome for checks without IO.
    fn start_check(&mut self, ci: usize, run: Run, now: Instant) {
        let spec = self.engine.plan.checks[ci].clone();
        if let Some(dir) = self.engine.cfg.maintenancedir.clone() {
            if self.maint.hit(&dir, spec.addr, spec.real_port, now) {
                self.engine.finished(
                    ci,
                    run,
                    &Outcome::down("Server in maintenance"),
                    true,
                    now,
                    now,
                );
                return;
            }
        }
        let negotiate = match (&spec.kind, run) {
            (PlanKind::Negotiate(n), _)
            | (PlanKind::Combined { negotiate: n, .. }, Run::Negotiate) => Some(n.clone()),
            _ => None,
        };
        let timeout = if negotiate.is_some() {
            spec.negotiatetimeout
        } else {
            spec.checktimeout
        };
        let r: Result<Kind, Outcome> = match (&spec.kind, negotiate) {
            (PlanKind::On, _) => Err(Outcome::up("-")),
            (PlanKind::Off, _) => return,
            (PlanKind::Ping { count }, _) => self.start_ping(spec.addr, *count),
            (PlanKind::External { command, args }, _) => self.start_external(command, args),
            (_, Some(n)) => match self.dialog(&spec, &n) {
                Err(o) => Err(o),
                Ok(d) if d.is_datagram() => self.start_udp(&spec, d),
                Ok(d) => {
                    let wording = if matches!(n.service, Service::Http | Service::Https) {
                        Wording::Http
                    } else {
                        Wording::Plain
                    };
                    match self.take_idle(ci, now).filter(|_| n.keepalive) {
                        Some(idle) => Ok(Kind::Stream(Box::new(StreamTask {
                            addr: SocketAddr::new(spec.addr, spec.port),
                            sock: idle.sock,
                            connected: true,
                            want_tls: false,
                            tls_cfg: None,
                            sni: None,
                            tls: None,
                            dialog: Some(d),
                            out: Vec::new(),
                            shutdown_after: false,
                            data: None,
                            wording,
                            reused: true,
                            got_bytes: false,
                            conn_since: idle.since,
                        }))),
                        None => match n.tls.then(|| self.tls_config(&n)).transpose() {
                            Ok(tls) => self.start_stream(&spec, Some(d), tls, &n, wording),
                            Err(e) => Err(Outcome::down(format!("TLS: {e}"))),
                        },
                    }
                }
            },
            // connect (and the connect step of combined checks)
            (_, None) => {
                let n = Negotiate {
                    service: Service::None,
                    request: String::new(),
                    receive: None,
                    httpmethod: crate::config::HttpMethod::Get,
                    virtualhost: None,
                    login: String::new(),
                    passwd: String::new(),
                    tls: false,
                    sslverify: false,
                    sslcafile: None,
                    keepalive: false,
                };
                self.start_stream(&spec, None, None, &n, Wording::Plain)
            }
        };
        match r {
            Err(o) => self.engine.finished(ci, run, &o, false, now, now),
            Ok(kind) => self.add_task(ci, run, now, timeout, kind),
        }
    }

    fn start_stream(
        &mut self,
        spec: &CheckSpec,
        dialog: Option<Dialog>,
        tls: Option<Arc<ClientConfig>>,
        n: &Negotiate,
        wording: Wording,
    ) -> Result<Kind, Outcome> {
        let addr = SocketAddr::new(spec.addr, spec.port);
        let sock = TcpStream::connect(addr).map_err(|e| match wording {
            Wording::Http => {
                Outcome::down(format!("500 Can't connect to {addr} ({})", err_text(&e)))
            }
            Wording::Plain => Outcome::down(format!("Can't connect to {addr}: {}", err_text(&e))),
        })?;
        Ok(Kind::Stream(Box::new(StreamTask {
            addr,
            sock,
            connected: false,
            want_tls: tls.is_some(),
            tls_cfg: tls,
            sni: Some(crate::tls::server_name(n.virtualhost.as_deref(), spec.addr)),
            tls: None,
            dialog,
            out: Vec::new(),
            shutdown_after: false,
            data: None,
            wording,
            reused: false,
            got_bytes: false,
            conn_since: Instant::now(),
        })))
    }

    fn start_udp(&mut self, spec: &CheckSpec, dialog: Dialog) -> Result<Kind, Outcome> {
        let bind: SocketAddr = if spec.addr.is_ipv6() {
            "[::]:0".parse().expect("literal")
        } else {
            "0.0.0.0:0".parse().expect("literal")
        };
        let target = SocketAddr::new(spec.addr, spec.port);
        let sock = UdpSocket::bind(bind)
            .and_then(|s| s.connect(target).map(|_| s))
            .map_err(|e| Outcome::down(format!("Can't connect to {target}: {}", err_text(&e))))?;
        Ok(Kind::Udp(Box::new(UdpTask { sock, dialog })))
    }

    fn icmp(&mut self, v6: bool) -> Result<(), String> {
        let slot = if v6 { &mut self.icmp6 } else { &mut self.icmp4 };
        if slot.is_some() {
            return Ok(());
        }
        let s = IcmpSocket::open(v6).map_err(io_err)?;
        let token = if v6 { ICMP6 } else { ICMP4 };
        self.poll
            .registry()
            .register(&mut SourceFd(&s.fd.as_raw_fd()), token, Interest::READABLE)
            .map_err(io_err)?;
        if v6 {
            self.icmp6 = Some(s);
        } else {
            self.icmp4 = Some(s);
        }
        Ok(())
    }

    fn start_ping(&mut self, dst: IpAddr, count: u32) -> Result<Kind, Outcome> {
        self.icmp(dst.is_ipv6()).map_err(Outcome::down)?;
        Ok(Kind::Ping(PingTask {
            dst,
            seq: 0,
            attempt: 0,
            count: count.max(1),
        }))
    }

    fn send_ping(&mut self, slot: usize) -> Result<(), Outcome> {
        self.ping_seq = self.ping_seq.wrapping_add(1);
        let seq = self.ping_seq;
        let Some(Task {
            kind: Kind::Ping(p),
            ..
        }) = self.tasks[slot].as_mut()
        else {
            return Ok(());
        };
        self.pings.remove(&(p.dst, p.seq));
        p.seq = seq;
        let dst = p.dst;
        self.pings.insert((dst, seq), slot);
        let sock = if dst.is_ipv6() {
            self.icmp6.as_ref()
        } else {
            self.icmp4.as_ref()
        };
        match sock.map(|s| s.send(dst, seq)) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(Outcome::down(format!("ping {dst}: {}", err_text(&e)))),
            None => Err(Outcome::down("no ICMP socket")),
        }
    }

    fn start_external(&mut self, command: &str, args: &[String; 4]) -> Result<Kind, Outcome> {
        use std::os::unix::process::CommandExt;
        let child = Command::new(command)
            .args(args)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| Outcome::down(format!("exec({command}) failed: {}", err_text(&e))))?;
        let pidfd = pidfd_open(child.id());
        Ok(Kind::External(ExtTask {
            child,
            pidfd,
            command: command.to_string(),
        }))
    }

    fn add_task(&mut self, ci: usize, run: Run, now: Instant, timeout: Duration, kind: Kind) {
        let (slot, gen) = self.alloc();
        let deadline = now + timeout;
        let mut task = Task {
            check: ci,
            run,
            started: now,
            deadline,
            timeout_secs: timeout.as_secs(),
            gen,
            kind,
        };
        let reg = self.poll.registry();
        let r: Result<(), Outcome> = match &mut task.kind {
            Kind::Stream(s) => s
                .register(reg, Self::token(slot, gen, SUB_MAIN))
                .map_err(|e| Outcome::down(err_text(&e))),
            Kind::Udp(u) => reg
                .register(
                    &mut u.sock,
                    Self::token(slot, gen, SUB_MAIN),
                    Interest::READABLE,
                )
                .map_err(|e| Outcome::down(err_text(&e))),
            Kind::External(x) => match &x.pidfd {
                Some(fd) => reg
                    .register(
                        &mut SourceFd(&fd.as_raw_fd()),
                        Self::token(slot, gen, SUB_MAIN),
                        Interest::READABLE,
                    )
                    .map_err(|e| Outcome::down(err_text(&e))),
                None => {
                    self.polled_children.push(slot);
                    Ok(())
                }
            },
            Kind::Ping(_) => Ok(()),
        };
        let is_ping = matches!(task.kind, Kind::Ping(_));
        let is_udp = matches!(task.kind, Kind::Udp(_));
        let is_reused = matches!(&task.kind, Kind::Stream(s) if s.reused);
        self.tasks[slot] = Some(task);
        self.running_tasks += 1;
        self.deadlines.push(Reverse((deadline, slot, gen)));
        if let Err(o) = r {
            self.finish(slot, o, now);
            return;
        }
        if is_ping {
            if let Err(o) = self.send_ping(slot) {
                self.finish(slot, o, now);
            }
        } else if is_reused {
            // connected already: send the request now
            let mut buf = std::mem::take(&mut self.buf);
            let p = match self.tasks[slot].as_mut().map(|t| &mut t.kind) {
                Some(Kind::Stream(s)) => s.start_reused(&mut buf),
                _ => Progress::Pending,
            };
            self.buf = buf;
            self.progress(slot, gen, p, now);
        } else if is_udp {
            let p = match self.tasks[slot].as_mut().map(|t| &mut t.kind) {
                Some(Kind::Udp(u)) => u.start(),
                _ => Progress::Pending,
            };
            if let Progress::Done(o) = p {
                self.finish(slot, o, now);
            }
        }
    }

    /// Ends a task: its sockets close, the engine gets the outcome.
    fn finish(&mut self, slot: usize, o: Outcome, now: Instant) {
        let Some(task) = self.tasks[slot].take() else {
            return;
        };
        self.running_tasks -= 1;
        self.free.push(slot);
        match task.kind {
            Kind::Ping(p) => {
                self.pings.remove(&(p.dst, p.seq));
            }
            Kind::External(mut x) => {
                if let Some(fd) = &x.pidfd {
                    let _ = self
                        .poll
                        .registry()
                        .deregister(&mut SourceFd(&fd.as_raw_fd()));
                }
                if !matches!(x.child.try_wait(), Ok(Some(_))) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(x.child.id() as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                    self.killed.push((x.child, now + KILL_GRACE));
                }
            }
            // closing a socket removes it from the epoll set: no deregister
            Kind::Stream(s) => {
                if s.reusable() && self.pooled < self.pool_cap {
                    self.keep(task.check, s.sock, s.conn_since);
                } else if s.connected && s.dialog.is_some() && s.data.is_none() {
                    abort_on_close(&s.sock);
                }
            }
            Kind::Udp(_) => {}
        }
        if self.opts.debug {
            let spec = &self.engine.plan.checks[task.check];
            self.log(&format!(
                "DEBUG2: check {}:{} is {}: {}",
                spec.addr,
                spec.port,
                if o.up { "up" } else { "down" },
                o.msg
            ));
        }
        self.engine
            .finished(task.check, task.run, &o, false, task.started, now);
    }

    fn on_timeout(&mut self, slot: usize, now: Instant) {
        let Some(t) = self.tasks[slot].as_mut() else {
            return;
        };
        let secs = t.timeout_secs;
        let o = match &mut t.kind {
            Kind::Stream(s) => s.timeout_msg(secs),
            Kind::Udp(_) => Outcome::down(format!("timeout after {secs}s")),
            Kind::External(x) => Outcome::down(format!(
                "system_timeout({secs}, {}) timed out, kill -TERM child",
                x.command
            )),
            Kind::Ping(p) => {
                p.attempt += 1;
                if p.attempt < p.count {
                    let deadline = now + Duration::from_secs(secs);
                    t.deadline = deadline;
                    let gen = t.gen;
                    self.deadlines.push(Reverse((deadline, slot, gen)));
                    if let Err(o) = self.send_ping(slot) {
                        self.finish(slot, o, now);
                    }
                    return;
                }
                Outcome::down(format!(
                    "ping to {} timed out ({} attempts of {secs}s)",
                    p.dst, p.count
                ))
            }
        };
        if matches!(t.kind, Kind::External(_)) {
            self.log(&o.msg);
        }
        self.finish(slot, o, now);
    }

    fn on_task_event(&mut self, token: Token, ready: Ready, now: Instant) {
        let (slot, gen, sub) = Self::untoken(token);
        if slot >= self.tasks.len() || self.gens[slot] != gen {
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        let progress = match self.tasks[slot].as_mut().map(|t| &mut t.kind) {
            None => Progress::Pending,
            Some(Kind::Stream(s)) => {
                if sub == SUB_DATA {
                    s.on_data(&mut buf, ready)
                } else {
                    s.on_main(&mut buf, ready)
                }
            }
            Some(Kind::Udp(u)) => u.on_ready(&mut buf),
            Some(Kind::External(x)) => match x.child.try_wait() {
                Ok(Some(st)) if st.success() => Progress::Done(Outcome::up("exit 0")),
                Ok(Some(st)) => Progress::Done(Outcome::down(format!("{} {st}", x.command))),
                Ok(None) => Progress::Pending,
                Err(e) => Progress::Done(Outcome::down(err_text(&e))),
            },
            Some(Kind::Ping(_)) => Progress::Pending,
        };
        self.buf = buf;
        self.progress(slot, gen, progress, now);
    }

    fn progress(&mut self, slot: usize, gen: u32, p: Progress, now: Instant) {
        match p {
            Progress::Pending => {}
            Progress::Done(o) => self.finish(slot, o, now),
            Progress::OpenData(port) => {
                let Some(Kind::Stream(s)) = self.tasks[slot].as_mut().map(|t| &mut t.kind) else {
                    return;
                };
                let addr = SocketAddr::new(s.addr.ip(), port);
                match TcpStream::connect(addr) {
                    Ok(mut sock) => {
                        let r = self.poll.registry().register(
                            &mut sock,
                            Self::token(slot, gen, SUB_DATA),
                            Interest::READABLE | Interest::WRITABLE,
                        );
                        s.data = Some(DataConn {
                            sock,
                            connected: false,
                        });
                        if let Err(e) = r {
                            self.finish(slot, Outcome::down(err_text(&e)), now);
                        }
                    }
                    Err(e) => self.finish(
                        slot,
                        Outcome::down(format!("data connection to {addr}: {}", err_text(&e))),
                        now,
                    ),
                }
            }
            Progress::Retry | Progress::Reconnect(..) => {
                let Some(Kind::Stream(s)) = self.tasks[slot].as_mut().map(|t| &mut t.kind) else {
                    return;
                };
                let (port, tls) = match p {
                    Progress::Reconnect(port, tls) => (port, tls),
                    _ => (s.addr.port(), s.want_tls),
                };
                let _ = self.poll.registry().deregister(&mut s.sock);
                s.reused = false;
                s.got_bytes = false;
                s.conn_since = now;
                let addr = SocketAddr::new(s.addr.ip(), port);
                if tls && s.tls_cfg.is_none() {
                    s.tls_cfg = Some(self.tls_insecure.clone());
                }
                match TcpStream::connect(addr) {
                    Ok(sock) => {
                        s.sock = sock;
                        s.addr = addr;
                        s.connected = false;
                        s.want_tls = tls;
                        s.tls = None;
                        s.out.clear();
                        if let Err(e) =
                            s.register(self.poll.registry(), Self::token(slot, gen, SUB_MAIN))
                        {
                            self.finish(slot, Outcome::down(err_text(&e)), now);
                        }
                    }
                    Err(e) => self.finish(
                        slot,
                        Outcome::down(format!("500 Can't connect to {addr} ({})", err_text(&e))),
                        now,
                    ),
                }
            }
        }
    }

    fn on_icmp(&mut self, v6: bool, now: Instant) {
        let mut buf = std::mem::take(&mut self.buf);
        loop {
            let sock = if v6 { &self.icmp6 } else { &self.icmp4 };
            let Some(sock) = sock else { break };
            match sock.recv(&mut buf) {
                Ok(Some((src, seq))) => {
                    if let Some(slot) = self.pings.remove(&(src, seq)) {
                        self.finish(slot, Outcome::up(format!("pong from {src}")), now);
                    }
                }
                Ok(None) => break,
                Err(_) => break,
            }
        }
        self.buf = buf;
    }

    /// Cancels every running check (reload, stop): no outcome is recorded.
    /// Parks a kept-alive connection for the next run of check `ci`.
    fn keep(&mut self, ci: usize, mut sock: TcpStream, since: Instant) {
        if self.pool.len() <= ci {
            self.pool
                .resize_with(self.engine.plan.checks.len().max(ci + 1), || None);
        }
        if self.pool[ci].is_some() {
            return; // one per check is enough; this one closes
        }
        if self
            .poll
            .registry()
            .reregister(&mut sock, Token(POOL | ci), Interest::READABLE)
            .is_ok()
        {
            self.pool[ci] = Some(Idle { sock, since });
            self.pooled += 1;
        }
    }

    /// Takes check `ci`'s kept-alive connection if it is young enough.
    fn take_idle(&mut self, ci: usize, now: Instant) -> Option<Idle> {
        let idle = self.pool.get_mut(ci)?.take()?;
        self.pooled -= 1;
        (now.duration_since(idle.since) < KEEPALIVE_MAX_AGE).then_some(idle)
    }

    /// An idle connection became readable: the server closed it (or spoke
    /// out of turn); drop it.
    fn on_idle_event(&mut self, ci: usize) {
        if let Some(Some(_)) = self.pool.get(ci) {
            self.pool[ci] = None;
            self.pooled -= 1;
        }
    }

    fn cancel_all(&mut self) {
        let now = Instant::now();
        for slot in 0..self.tasks.len() {
            if self.tasks[slot].is_some() {
                // finish() would report to the engine; drop quietly instead
                let t = self.tasks[slot].take().expect("checked");
                self.running_tasks -= 1;
                self.free.push(slot);
                self.gens[slot] = self.gens[slot].wrapping_add(1);
                match t.kind {
                    Kind::External(x) => {
                        let _ = nix::sys::signal::killpg(
                            nix::unistd::Pid::from_raw(x.child.id() as i32),
                            nix::sys::signal::Signal::SIGTERM,
                        );
                        self.killed.push((x.child, now + KILL_GRACE));
                    }
                    Kind::Stream(_) | Kind::Udp(_) | Kind::Ping(_) => {}
                }
            }
        }
        self.pings.clear();
        self.pool.clear();
        self.pooled = 0;
        self.deadlines.clear();
        self.polled_children.clear();
    }

    // ---- lifecycle ---------------------------------------------------

    fn reload(&mut self) {
        let cfg = match (self.loader)() {
            Ok(c) => c,
            Err(e) => {
                // the old configuration keeps running
                self.log(&e);
                return;
            }
        };
        self.engine.status = Status::Reloading;
        // other instances (execute=): stop the removed ones, reload the kept
        // ones, start the new ones (ld_cmd_children)
        let old_exec = &self.engine.cfg.execute;
        let gone: Vec<String> = old_exec
            .iter()
            .filter(|c| !cfg.execute.contains(c))
            .cloned()
            .collect();
        let kept: Vec<String> = cfg
            .execute
            .iter()
            .filter(|c| old_exec.contains(c))
            .cloned()
            .collect();
        let new: Vec<String> = cfg
            .execute
            .iter()
            .filter(|c| !old_exec.contains(c))
            .cloned()
            .collect();
        crate::daemon::cmd_children(&gone, "stop", &self.logger);
        crate::daemon::cmd_children(&kept, "reload_or_start", &self.logger);
        crate::daemon::cmd_children(&new, "start", &self.logger);
        self.cancel_all();
        let old: Vec<crate::config::Virtual> = self.engine.cfg.virtuals.clone();
        let sink = Logger::sink_for(&cfg.logfile, self.opts.debug, cfg.supervised);
        self.logger.set_sink(sink);
        let table = self.read_table();
        let host = self.engine.hostname.clone();
        self.engine = Engine::new(Arc::new(cfg), &table, Instant::now(), &host);
        self.engine.status = Status::Reloading;
        self.maint = Maintenance::default();
        // the file just read is the new baseline for autoreload/callback
        self.watch = FileWatch::new(&self.opts.config_path);
        self.reconcile_all(Some(&old));
        self.engine.status = Status::Running;
    }

    fn stop(&mut self, sig: &str) {
        self.engine.status = Status::Stopping;
        self.cancel_all();
        let table = self.read_table();
        for vi in 0..self.engine.cfg.virtuals.len() {
            let ch = self.engine.changes(vi, &table, Mode::Stop);
            self.apply_changes(Some(vi), &ch);
        }
        self.flush_outputs();
        self.log(&format!(
            "Linux Director Daemon terminated on signal: {sig}"
        ));
    }

    /// Housekeeping once a second: reap, config file, alerts, IPVS retry.
    fn tick(&mut self) -> bool {
        self.reap();
        let cfg = self.engine.cfg.clone();
        let mut reload = false;
        if self.watch.changed() {
            let p = self.opts.config_path.display().to_string();
            self.log(&format!("Configuration file '{p}' has changed on disk"));
            if cfg.autoreload {
                self.log(" - reread new configuration");
                reload = true;
            } else {
                self.log(" - ignore new configuration");
            }
            if let Some(cb) = &cfg.callback {
                if is_executable(Path::new(cb)) {
                    self.spawn_command(format!("{cb} {p}"));
                }
            }
        }
        self.engine.resend_alerts(now_epoch() as u64);
        // give back what bursts of checks left free in the heap
        self.ticks += 1;
        if self.ticks % 10 == 0 {
            trim_heap();
        }
        if self.backend.is_none() && self.backend_error.is_some() && self.open_backend() {
            // IPVS came back: bring everything in line
            self.reconcile_all(None);
        }
        reload
    }

    /// Runs until a stop signal; returns which.
    pub fn run(&mut self) -> Exit {
        self.engine.status = Status::Running;
        loop {
            let now = Instant::now();
            while let Some((ci, run)) = self.engine.pop_due(now) {
                self.start_check(ci, run, now);
            }
            self.reconcile_dirty();
            self.flush_outputs();
            // when to wake up
            let mut wake = self.next_tick;
            if let Some(t) = self.engine.next_wakeup() {
                wake = wake.min(t);
            }
            while let Some(Reverse((t, slot, gen))) = self.deadlines.peek().copied() {
                let live = self
                    .tasks
                    .get(slot)
                    .and_then(|t| t.as_ref())
                    .is_some_and(|task| task.gen == gen && task.deadline == t);
                if !live {
                    self.deadlines.pop();
                    continue;
                }
                wake = wake.min(t);
                break;
            }
            let mut timeout = wake.saturating_duration_since(Instant::now());
            if !self.polled_children.is_empty() {
                timeout = timeout.min(Duration::from_millis(50));
            }
            if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.log(&format!("poll: {e}"));
                }
            }
            let now = Instant::now();
            let mut signals = Vec::new();
            let mut events = std::mem::take(&mut self.ready);
            events.clear();
            events.extend(self.events.iter().map(|e| {
                (
                    e.token(),
                    Ready {
                        readable: e.is_readable() || e.is_read_closed() || e.is_error(),
                        writable: e.is_writable() || e.is_write_closed() || e.is_error(),
                    },
                )
            }));
            for &(t, ready) in &events {
                match t {
                    SIGNALS => signals.extend(self.signals.pending()),
                    ICMP4 => self.on_icmp(false, now),
                    ICMP6 => self.on_icmp(true, now),
                    t if t.0 & POOL != 0 && t.0 >> 63 == 0 => self.on_idle_event(t.0 & !POOL),
                    t => self.on_task_event(t, ready, now),
                }
            }
            self.ready = events;
            // polled children (no pidfd)
            if !self.polled_children.is_empty() {
                let slots = std::mem::take(&mut self.polled_children);
                for slot in slots {
                    let gen = self.gens[slot];
                    if self.tasks[slot].is_some() {
                        self.on_task_event(Self::token(slot, gen, SUB_MAIN), Ready::ALL, now);
                        if self.tasks[slot].is_some() {
                            self.polled_children.push(slot);
                        }
                    }
                }
            }
            // deadlines
            while let Some(Reverse((t, slot, gen))) = self.deadlines.peek().copied() {
                if t > now {
                    break;
                }
                self.deadlines.pop();
                let live = self
                    .tasks
                    .get(slot)
                    .and_then(|t| t.as_ref())
                    .is_some_and(|task| task.gen == gen && task.deadline == t);
                if live {
                    self.on_timeout(slot, now);
                }
            }
            let mut reload = false;
            for s in signals {
                if s == SIGHUP {
                    self.log("Reloading Linux Director Daemon config on signal");
                    reload = true;
                } else {
                    let name = sig_name(s);
                    self.reconcile_dirty();
                    self.flush_outputs();
                    self.stop(name);
                    return Exit::Signal(name);
                }
            }
            if now >= self.next_tick {
                self.next_tick = now + TICK;
                reload |= self.tick();
            }
            if reload {
                self.reconcile_dirty();
                self.flush_outputs();
                self.reload();
            }
        }
    }

    /// The other instances this configuration runs (`execute=`).
    pub fn execute(&self) -> Vec<String> {
        self.engine.cfg.execute.clone()
    }

    /// Number of checks running right now (benchmarks, tests).
    pub fn running(&self) -> usize {
        self.running_tasks
    }
}

/// An idle kept-alive HTTP connection.
struct Idle {
    sock: TcpStream,
    /// when it was opened
    since: Instant,
}

/// The soft open-files limit (after [`raise_nofile`]).
fn nofile_limit() -> usize {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft as usize)
        .unwrap_or(1024)
}

/// Gives memory freed after a big transient job (reading a whole table,
/// parsing a configuration) back to the system.
fn trim_heap() {
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Raises the open-files limit to the hard limit: every running check holds
/// a socket.
fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
