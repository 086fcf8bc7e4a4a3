//! The daemon: the thin IO shell around [`crate::cluster::Node`].
//!
//! One thread, one mio loop: media sockets, agent stdout pipes, the control
//! socket and signals are event sources; the core's next deadline is the
//! poll timeout. Everything the core asks for (send, run an agent, log,
//! exit) is carried out here, and everything that happens is fed back to it.
//!
//! Start-up order matters for "bad input changes nothing": the
//! configuration is read and checked, the media sockets and the control
//! socket are opened, and only then does the process daemonize, write its
//! pid file and start heartbeating. Any error before that is printed on
//! stderr with a documented exit status and nothing is left behind.

pub mod agents;
mod clients;
pub mod log;
pub mod media;
pub mod serial;
pub mod state;
mod sys;

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::signal::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook_mio::v1_0::Signals;

use crate::auth::Keyring;
use crate::cluster::{Action, Clock, Command, Hold, Level, Node, Settings};
use crate::config::{self, Config, EXIT_CONFIG};
use crate::control::{
    self, GroupInfo, LinkInfo, MediumInfo, NodeInfo, Request, Response, Snapshot,
};
use crate::wire::{f, WireError};

/// Exit statuses (LSB-style, as 3.0.6 uses them).
pub mod exit {
    pub const OK: i32 = 0;
    pub const GENERIC: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NOT_RUNNING: i32 = 3;
    pub const PERMISSION: i32 = 4;
    pub const CONFIG: i32 = super::EXIT_CONFIG;
}

/// Where things are, and how to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub confdir: PathBuf,
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    pub init_dir: PathBuf,
    pub foreground: bool,
    pub debug: u32,
    /// `-l`: never try realtime scheduling.
    pub no_realtime: bool,
    /// `-M`: membership only, no resource management.
    pub no_resources: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            confdir: PathBuf::from("/etc/ha.d"),
            state_dir: PathBuf::from("/var/lib/heartbeat"),
            run_dir: PathBuf::from("/run"),
            init_dir: PathBuf::from("/etc/init.d"),
            foreground: false,
            debug: 0,
            no_realtime: false,
            no_resources: false,
        }
    }
}

impl Options {
    pub fn pidfile(&self) -> PathBuf {
        self.run_dir.join("heartbeat.pid")
    }
}

const SIGNALS: Token = Token(0);
const CONTROL: Token = Token(1);
const MEDIA_BASE: usize = 16;
const CONN_BASE: usize = 1024;
const AGENT_BASE: usize = 1 << 20;

/// Loads and checks the configuration; prints errors. The node name comes
/// with it.
pub fn load_config(opts: &Options) -> Result<(Config, String), i32> {
    let cfg = match config::load(&opts.confdir) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("heartbeatd: {e}");
            }
            eprintln!("heartbeatd: Configuration error, heartbeat not started.");
            return Err(exit::CONFIG);
        }
    };
    let me = match config::local_node_name(&opts.confdir)
        .and_then(|n| cfg.check_local_node(&n).map(|()| n))
    {
        Ok(n) => n,
        Err(e) => {
            eprintln!("heartbeatd: {e}");
            eprintln!("heartbeatd: Configuration error, heartbeat not started.");
            return Err(exit::CONFIG);
        }
    };
    let mut errors = Vec::new();
    for p in &cfg.ha.ping {
        errors.push(format!(
            "{}:{}: ping node {}: ping nodes are not supported by heartbeatd yet (they only \
             served ipfail, which needs the client API heartbeatd does not have); remove the line",
            opts.confdir.join("ha.cf").display(),
            p.line,
            p.name
        ));
    }
    for m in &cfg.ha.media {
        if let config::MediumKind::Serial { device, .. } = &m.kind {
            if let Err(e) = serial::check_port_path(device) {
                errors.push(format!(
                    "{}:{}: serial {}: {e}",
                    opts.confdir.join("ha.cf").display(),
                    m.line,
                    device.display()
                ));
            }
        }
    }
    if !errors.is_empty() {
        for e in errors {
            eprintln!("heartbeatd: {e}");
        }
        eprintln!("heartbeatd: Configuration error, heartbeat not started.");
        return Err(exit::CONFIG);
    }
    Ok((cfg, me))
}

/// Counters of one medium.
#[derive(Default, Clone, Copy)]
struct Counters {
    sent: u64,
    received: u64,
    bad: u64,
    send_errors: u64,
}

struct OpenMedium {
    medium: Box<dyn media::Medium>,
    /// Index in ha.cf's media (the core's link index).
    link: usize,
    counters: Counters,
}

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
}

/// Runs the daemon; returns its exit status.
pub fn run(opts: Options) -> i32 {
    let (cfg, me) = match load_config(&opts) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let pidfile = opts.pidfile();
    if let Some(pid) = state::running_pid(&pidfile) {
        eprintln!("heartbeat: already running [pid {pid}].");
        return exit::OK;
    }
    // Media and the control socket before anything else: errors here leave
    // nothing behind.
    let mut open = Vec::new();
    for (i, m) in cfg.ha.media.iter().enumerate() {
        match media::open(&m.kind) {
            Ok(Some(medium)) => open.push(OpenMedium {
                medium,
                link: i,
                counters: Counters::default(),
            }),
            Ok(None) => {}
            Err(e) => {
                eprintln!(
                    "heartbeatd: {}:{}: {e}",
                    opts.confdir.join("ha.cf").display(),
                    m.line
                );
                return exit::GENERIC;
            }
        }
    }
    if open.is_empty() {
        eprintln!("heartbeatd: no usable heartbeat medium (every ucast line names this node)");
        return exit::CONFIG;
    }
    let listener = match sys::control_listener(&opts.run_dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("heartbeatd: {e}");
            return exit::GENERIC;
        }
    };
    for d in [&opts.state_dir] {
        if let Err(e) = std::fs::create_dir_all(d) {
            eprintln!("heartbeatd: cannot create {}: {e}", d.display());
            return exit::GENERIC;
        }
    }
    let mut startup = if opts.foreground {
        sys::Startup::foreground()
    } else {
        match sys::daemonize() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("heartbeatd: cannot daemonize: {e}");
                return exit::GENERIC;
            }
        }
    };
    let code = Daemon::new(opts.clone(), cfg, me, open, listener).map(|mut d| {
        startup.ready();
        d.run()
    });
    let _ = std::fs::remove_file(control::socket_path(&opts.run_dir));
    let _ = std::fs::remove_file(&pidfile);
    code.unwrap_or_else(|e| {
        let msg = format!("heartbeatd: {e}");
        eprintln!("{msg}");
        startup.failed(exit::GENERIC, &msg);
        exit::GENERIC
    })
}

struct Daemon {
    opts: Options,
    cfg: Config,
    keys: Keyring,
    node: Node,
    log: log::Logger,
    media: Vec<OpenMedium>,
    listener: UnixListener,
    conns: HashMap<Token, Conn>,
    next_conn: usize,
    agents: agents::Agents,
    clients: clients::Clients,
    poll: Poll,
    signals: Signals,
    origin: Instant,
    bad_logged: HashMap<String, (Instant, u64)>,
    send_err_logged: Option<Instant>,
    watchdog: Option<sys::Watchdog>,
    haclient_gid: Option<u32>,
    loadavg_at: Instant,
    comm_up_seen: bool,
}

/// An IO error naming the file and what was being done.
fn in_file(what: &str, path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {what}: {e}", path.display()))
}

impl Daemon {
    fn new(
        opts: Options,
        cfg: Config,
        me: String,
        media: Vec<OpenMedium>,
        listener: std::os::unix::net::UnixListener,
    ) -> std::io::Result<Daemon> {
        let pid = std::process::id();
        let pidfile = opts.pidfile();
        state::write_pidfile(&pidfile, pid)
            .map_err(|e| in_file("cannot write the pid file", &pidfile, e))?;
        let mut log = log::Logger::new(&me);
        log.debug = opts.debug;
        log.configure(&cfg.ha);
        log.stderr = opts.foreground;
        log.set_pid(pid);
        log.log(Level::Info, "**************************");
        for n in &cfg.ha.notices {
            log.log(Level::Info, &n.to_string());
        }
        let (generation, gen_note) = state::next_generation(&opts.state_dir, cfg.ha.hbgenmethod)
            .map_err(|e| {
                in_file(
                    "cannot keep the generation (hb_generation)",
                    &opts.state_dir,
                    e,
                )
            })?;
        if let Some(n) = gen_note {
            log.log(Level::Warn, &n);
        }
        let (uuid, uuid_note) = state::uuid(&opts.state_dir, cfg.ha.uuidfrom, &me)
            .map_err(|e| in_file("cannot keep the node uuid (hb_uuid)", &opts.state_dir, e))?;
        if let Some(n) = uuid_note {
            log.log(Level::Info, &n);
        }
        if cfg.ha.coredumps {
            sys::enable_coredumps(cfg.ha.coreroot.as_deref(), &log);
        }
        if cfg.ha.realtime && !opts.no_realtime {
            sys::make_realtime(cfg.ha.rtprio, &log);
        }
        let watchdog = cfg
            .ha
            .watchdog
            .as_deref()
            .and_then(|p| sys::Watchdog::open(p, cfg.ha.deadtime, &log));
        let mut settings = Settings::from_config(&cfg, &me, uuid, generation, state::seed());
        settings.manage_resources = !opts.no_resources;
        let node = Node::new(settings);
        let agent_env = agents::ha_env(&opts.confdir, &me, &cfg.ha, log.debug);
        let agents = agents::Agents::new(
            agents::AgentEnv {
                resource_d: opts.confdir.join("resource.d"),
                init_d: opts.init_dir.clone(),
                env: agent_env.clone(),
                debugfile: cfg.ha.debugfile.clone(),
            },
            AGENT_BASE,
        );
        let clients = clients::Clients::new(cfg.ha.respawn.clone(), agent_env);
        let poll = Poll::new()?;
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        listener.set_nonblocking(true)?;
        let mut listener = UnixListener::from_std(listener);
        poll.registry()
            .register(&mut listener, CONTROL, Interest::READABLE)?;
        let mut media = media;
        for (i, m) in media.iter_mut().enumerate() {
            m.medium.register(poll.registry(), Token(MEDIA_BASE + i))?;
        }
        let keys = cfg.keys.clone();
        Ok(Daemon {
            opts,
            cfg,
            keys,
            node,
            log,
            media,
            listener,
            conns: HashMap::new(),
            next_conn: 0,
            agents,
            clients,
            poll,
            signals,
            origin: Instant::now(),
            bad_logged: HashMap::new(),
            send_err_logged: None,
            watchdog,
            haclient_gid: sys::group_id("haclient"),
            loadavg_at: Instant::now(),
            comm_up_seen: false,
        })
    }

    fn clock(&self) -> Clock {
        Clock {
            mono: self.origin.elapsed(),
            wall: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    fn run(&mut self) -> i32 {
        for m in &self.media {
            let text = format!(
                "glib: {} heartbeat started on {}",
                m.medium.describe(),
                m.medium.link_name()
            );
            self.log.log(Level::Info, &text);
        }
        self.node.set_loadavg(&state::loadavg());
        let c = self.clock();
        self.node.start(c);
        if let Some(code) = self.execute() {
            return self.finish(code);
        }
        let mut events = Events::with_capacity(64);
        loop {
            let timeout = self.timeout();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    self.log.log(Level::Err, &format!("poll: {e}"));
                    return self.finish(exit::GENERIC);
                }
            }
            let tokens: Vec<Token> = events.iter().map(|e| e.token()).collect();
            for t in tokens {
                match t {
                    SIGNALS => self.on_signals(),
                    CONTROL => self.accept(),
                    t if t.0 >= AGENT_BASE => self.agents.readable(t),
                    t if t.0 >= CONN_BASE => self.on_conn(t),
                    t => self.on_medium(t.0 - MEDIA_BASE),
                }
                if let Some(code) = self.execute() {
                    return self.finish(code);
                }
            }
            for (call, res) in self.agents.poll(self.poll.registry()) {
                let c = self.clock();
                self.node.agent_done(c, call, res);
            }
            if self.loadavg_at.elapsed() >= Duration::from_secs(1) {
                self.loadavg_at = Instant::now();
                self.node.set_loadavg(&state::loadavg());
            }
            let c = self.clock();
            self.node.tick(c);
            if let Some(code) = self.execute() {
                return self.finish(code);
            }
            if !self.comm_up_seen && self.node.local_status() == "active" {
                self.comm_up_seen = true;
                self.clients.start_all(&self.log);
            }
            self.clients.poll(&self.log, self.node.shutting_down());
        }
    }

    fn timeout(&self) -> Duration {
        let now = self.origin.elapsed();
        let mut t = Duration::from_secs(1);
        if let Some(d) = self.node.next_deadline() {
            t = t.min(d.saturating_sub(now));
        }
        if let Some(d) = self.agents.next_deadline() {
            t = t.min(d.saturating_duration_since(Instant::now()));
        }
        if self.agents.busy() || self.clients.busy() {
            // SIGCHLD wakes us, but an exit racing the registration would
            // otherwise wait for the next event.
            t = t.min(Duration::from_millis(50));
        }
        t
    }

    fn finish(&mut self, code: i32) -> i32 {
        self.agents.kill_all();
        self.clients.stop_all();
        if let Some(w) = self.watchdog.take() {
            w.close();
        }
        code
    }

    /// Carries out the core's actions. Returns an exit status when the core
    /// says the shutdown is complete.
    fn execute(&mut self) -> Option<i32> {
        while let Some(a) = self.node.poll_action() {
            match a {
                Action::Send(msg) => {
                    let is_status = msg.msg_type() == Some("status")
                        && msg.get(f::SRC) == Some(self.node.settings().me.as_str());
                    for m in &mut self.media {
                        match m.medium.send(&msg, &self.keys) {
                            Ok(()) => m.counters.sent += 1,
                            Err(e) => {
                                m.counters.send_errors += 1;
                                let due = self
                                    .send_err_logged
                                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
                                if due {
                                    self.send_err_logged = Some(Instant::now());
                                    self.log.log(
                                        Level::Err,
                                        &format!("cannot send on {}: {e}", m.medium.describe()),
                                    );
                                }
                            }
                        }
                    }
                    if is_status {
                        if let Some(w) = self.watchdog.as_mut() {
                            w.tickle();
                        }
                    }
                }
                Action::RunAgent {
                    call,
                    script,
                    args,
                    verb,
                    timeout,
                } => {
                    let immediate = match self.agents.locate(&script) {
                        None => Some(crate::cluster::AgentResult {
                            exit: None,
                            stdout: String::new(),
                            timed_out: false,
                            error: Some(format!("Cannot locate resource script {script}")),
                        }),
                        Some(path) => {
                            let mut a = args.clone();
                            a.push(verb.as_str().to_owned());
                            self.log.log(
                                Level::Debug,
                                &format!("Running {} {}", path.display(), a.join(" ")),
                            );
                            self.agents
                                .spawn(self.poll.registry(), call, &path, &a, timeout)
                        }
                    };
                    if let Some(res) = immediate {
                        let c = self.clock();
                        self.node.agent_done(c, call, res);
                    }
                }
                Action::RunStopFailureCommand {
                    call,
                    command,
                    timeout,
                    ..
                } => {
                    let res = self.agents.spawn(
                        self.poll.registry(),
                        call,
                        Path::new(&command[0]),
                        &command[1..],
                        timeout,
                    );
                    if let Some(res) = res {
                        let c = self.clock();
                        self.node.agent_done(c, call, res);
                    }
                }
                Action::Reboot { reason } => {
                    self.log
                        .log(Level::Crit, &format!("Rebooting this node: {reason}"));
                    sys::reboot();
                }
                Action::Log(level, text) => self.log.log(level, &text),
                Action::Exit(code) => return Some(code),
            }
        }
        None
    }

    fn on_medium(&mut self, i: usize) {
        let Some(m) = self.media.get_mut(i) else {
            return;
        };
        let mut got = Vec::new();
        m.medium.recv(&self.keys, &mut got);
        let link = m.link;
        let name = m.medium.link_name().to_owned();
        for r in got {
            match r.result {
                Ok(msg) => {
                    self.media[i].counters.received += 1;
                    let c = self.clock();
                    self.node.packet(c, msg, link);
                }
                Err(e) => {
                    self.media[i].counters.bad += 1;
                    self.bad_packet(&name, &r.from, &e);
                }
            }
        }
    }

    /// Bad packets are counted always and logged at most once per sender
    /// and reason every 10 s (with how many were not logged).
    fn bad_packet(&mut self, link: &str, from: &str, e: &WireError) {
        if !self.cfg.ha.log_badpack {
            return;
        }
        let kind = match e {
            WireError::Auth(_) => "auth",
            WireError::TooLarge(_) => "size",
            WireError::NotHeartbeat => "foreign",
            WireError::Malformed(_) => "malformed",
        };
        let key = format!("{from}/{kind}");
        let now = Instant::now();
        let entry = self
            .bad_logged
            .entry(key)
            .or_insert((now - Duration::from_secs(3600), 0));
        if now.duration_since(entry.0) >= Duration::from_secs(10) {
            let suppressed = entry.1;
            *entry = (now, 0);
            let more = if suppressed > 0 {
                format!(" ({suppressed} more since the last report)")
            } else {
                String::new()
            };
            let text = match e {
                WireError::Auth(a) => format!(
                    "netstring authentication failed: packet from {from} on {link}: {a}{more}"
                ),
                other => format!("dropped packet from {from} on {link}: {other}{more}"),
            };
            self.log.log(Level::Err, &text);
        } else {
            entry.1 += 1;
        }
    }

    fn on_signals(&mut self) {
        let sigs: Vec<i32> = self.signals.pending().collect();
        for s in sigs {
            match s {
                SIGTERM | SIGINT => {
                    let c = self.clock();
                    self.node.command(c, Command::Shutdown);
                }
                SIGHUP => self.reload_keys(),
                SIGUSR1 => {
                    self.log.debug += 1;
                    let t = format!("debug level now {}", self.log.debug);
                    self.log.log(Level::Info, &t);
                }
                SIGUSR2 => {
                    self.log.debug = self.log.debug.saturating_sub(1);
                    let t = format!("debug level now {}", self.log.debug);
                    self.log.log(Level::Info, &t);
                }
                _ => {}
            }
        }
    }

    /// SIGHUP: re-read authkeys (3.0.6 does the same); a bad file keeps the
    /// keys in use.
    fn reload_keys(&mut self) {
        let p = self.opts.confdir.join("authkeys");
        let res = config::check_permissions(&p)
            .map_err(|e| vec![e])
            .and_then(|()| {
                std::fs::read_to_string(&p).map_err(|e| {
                    vec![config::ConfigError {
                        file: p.clone(),
                        line: None,
                        msg: format!("cannot read: {e}"),
                    }]
                })
            })
            .and_then(|t| config::parse_authkeys(&p, &t));
        match res {
            Ok(k) => {
                self.keys = k;
                self.log.log(Level::Info, "authkeys re-read on SIGHUP");
            }
            Err(errs) => {
                for e in errs {
                    self.log
                        .log(Level::Err, &format!("{e} (keeping the keys in use)"));
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    if !self.authorized(&stream) {
                        self.log.log(
                            Level::Warn,
                            "control socket: refused a caller that is neither root nor in group haclient",
                        );
                        continue;
                    }
                    let t = Token(CONN_BASE + self.next_conn % (AGENT_BASE - CONN_BASE));
                    self.next_conn += 1;
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, t, Interest::READABLE)
                        .is_ok()
                    {
                        self.conns.insert(
                            t,
                            Conn {
                                stream,
                                buf: Vec::new(),
                            },
                        );
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
    }

    fn authorized(&self, s: &UnixStream) -> bool {
        match sys::peer_cred(s.as_raw_fd()) {
            Some((uid, gid, pid)) => {
                uid == 0
                    || self
                        .haclient_gid
                        .is_some_and(|g| g == gid || sys::process_in_group(pid, g))
            }
            None => false,
        }
    }

    fn on_conn(&mut self, t: Token) {
        let Some(conn) = self.conns.get_mut(&t) else {
            return;
        };
        let mut buf = [0u8; 4096];
        let mut closed = false;
        loop {
            match std::io::Read::read(&mut conn.stream, &mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => conn.buf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let line_end = conn.buf.iter().position(|b| *b == b'\n');
        if line_end.is_none() && !closed && conn.buf.len() < 65536 {
            return;
        }
        let mut conn = self.conns.remove(&t).expect("present");
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let text =
            String::from_utf8_lossy(&conn.buf[..line_end.unwrap_or(conn.buf.len())]).into_owned();
        let resp = match serde_json::from_str::<Request>(&text) {
            Ok(r) => self.handle(r),
            Err(e) => Response {
                ok: false,
                error: Some(format!("bad request: {e}")),
                status: None,
            },
        };
        let mut out = serde_json::to_string(&resp).expect("response serializes");
        out.push('\n');
        // The answer is small: write it blocking, with a time limit.
        // SAFETY: dup of a descriptor we own, handed to a std stream.
        let fd = unsafe { libc::dup(conn.stream.as_raw_fd()) };
        if fd >= 0 {
            // SAFETY: fd is a fresh duplicate we own.
            let s: StdUnixStream = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
            let _ = s.set_nonblocking(false);
            let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = (&s).write_all(out.as_bytes());
        }
    }

    fn handle(&mut self, r: Request) -> Response {
        let (which, standby) = match r {
            Request::Status => {
                return Response {
                    ok: true,
                    error: None,
                    status: Some(self.snapshot()),
                }
            }
            Request::Standby { which } => (which, true),
            Request::Takeover { which } => (which, false),
        };
        let Some(h) = parse_which(&which) else {
            return Response {
                ok: false,
                error: Some(format!(
                    "wrong resources({which}): use all, foreign, local or failback"
                )),
                status: None,
            };
        };
        let c = self.clock();
        let cmd = if standby {
            Command::Standby(h)
        } else {
            Command::Takeover(h)
        };
        self.node.command(c, cmd);
        Response {
            ok: true,
            error: None,
            status: None,
        }
    }

    fn snapshot(&self) -> Snapshot {
        let s = self.node.settings();
        Snapshot {
            node: s.me.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            generation: s.generation,
            uuid: s.uuid.iter().map(|b| format!("{b:02x}")).collect(),
            local_status: self.node.local_status().to_owned(),
            rscstatus: self.node.rsc_status().to_owned(),
            shutting_down: self.node.shutting_down(),
            nodes: self
                .node
                .nodes()
                .into_iter()
                .map(|n| NodeInfo {
                    name: n.name,
                    status: n.status,
                    node_type: n.node_type.to_owned(),
                    links: n
                        .links
                        .into_iter()
                        .map(|l| LinkInfo {
                            name: l.name,
                            status: l.status.to_owned(),
                        })
                        .collect(),
                    last_heard_ms: n.last_heard_ms,
                    deadtime_ms: n.deadtime_ms,
                    generation: n.generation,
                    heartbeatd: n.heartbeatd,
                })
                .collect(),
            groups: self
                .node
                .groups()
                .into_iter()
                .map(|(key, home, running_here)| GroupInfo {
                    key,
                    home,
                    running_here,
                })
                .collect(),
            jobs: self
                .node
                .jobs()
                .into_iter()
                .map(|j| j.kind.to_owned())
                .collect(),
            media: self
                .media
                .iter()
                .map(|m| MediumInfo {
                    name: m.medium.link_name().to_owned(),
                    description: m.medium.describe(),
                    sent: m.counters.sent,
                    received: m.counters.received,
                    bad: m.counters.bad,
                    send_errors: m.counters.send_errors,
                })
                .collect(),
            parameters: self.parameters(),
        }
    }

    /// The values `cl_status hbparameter` knows (times in ms, as 3.0.6).
    fn parameters(&self) -> std::collections::BTreeMap<String, String> {
        let h = &self.cfg.ha;
        let ms = |d: Duration| d.as_millis().to_string();
        let af = match h.auto_failback {
            config::AutoFailback::On => "on",
            config::AutoFailback::Off => "off",
            config::AutoFailback::Legacy => "legacy",
        };
        [
            ("hbversion", env!("CARGO_PKG_VERSION").to_owned()),
            ("keepalive", ms(h.keepalive)),
            ("deadtime", ms(h.deadtime)),
            ("warntime", ms(h.warntime)),
            ("initdead", ms(h.initdead)),
            ("deadping", ms(h.deadping)),
            ("udpport", h.udpport.to_string()),
            ("auto_failback", af.to_owned()),
            ("hopfudge", h.hopfudge.to_string()),
            ("baud", h.baud.to_string()),
            ("cluster", h.cluster.clone()),
            (
                "realtime",
                if h.realtime { "true" } else { "false" }.to_owned(),
            ),
            ("debug", self.log.debug.to_string()),
            ("pacemaker", "false".to_owned()),
            ("crm", "false".to_owned()),
            ("max_rexmit_delay", ms(h.max_rexmit_delay)),
            (
                "logfacility",
                h.logfacility.clone().unwrap_or_else(|| "none".into()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// `all|foreign|local|failback` (failback means foreign, as hb_standby).
pub fn parse_which(s: &str) -> Option<Hold> {
    match s {
        "all" => Some(Hold::All),
        "local" => Some(Hold::Local),
        "foreign" | "failback" => Some(Hold::Foreign),
        _ => None,
    }
}

/// `heartbeatd -k`: SIGTERM to the running instance, wait until it is gone.
pub fn stop_running(opts: &Options) -> i32 {
    let Some(pid) = state::running_pid(&opts.pidfile()) else {
        eprintln!("INFO: Heartbeat already stopped.");
        return exit::OK;
    };
    // SAFETY: kill(2) on the pid from our pid file.
    if unsafe { libc::kill(pid, libc::SIGTERM) } < 0 {
        let e = std::io::Error::last_os_error();
        eprintln!("ERROR: Could not kill pid {pid}: {e}");
        return if e.kind() == std::io::ErrorKind::PermissionDenied {
            exit::PERMISSION
        } else {
            exit::GENERIC
        };
    }
    // Wait for the process itself, whatever happens to its pid file.
    while state::pid_alive(pid) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Gone: a pid file still naming it is stale (it could not remove it).
    let pidfile = opts.pidfile();
    if std::fs::read_to_string(&pidfile).is_ok_and(|s| s.trim() == pid.to_string()) {
        let _ = std::fs::remove_file(&pidfile);
    }
    exit::OK
}

/// `heartbeatd -s`.
pub fn report_status(opts: &Options) -> i32 {
    match state::running_pid(&opts.pidfile()) {
        Some(pid) => {
            let node = config::local_node_name(&opts.confdir).unwrap_or_default();
            println!("heartbeat OK [pid {pid} et al] is running on {node} [{node}]...");
            exit::OK
        }
        None => {
            println!("heartbeat is stopped. No process");
            exit::NOT_RUNNING
        }
    }
}

/// `heartbeatd -r`: check the configuration, then ask the running daemon
/// to re-read authkeys.
pub fn reload_running(opts: &Options) -> i32 {
    if let Err(code) = load_config(opts) {
        return code;
    }
    match state::running_pid(&opts.pidfile()) {
        // SAFETY: kill(2) on the pid from our pid file.
        Some(pid) if unsafe { libc::kill(pid, libc::SIGHUP) } == 0 => exit::OK,
        Some(_) => exit::GENERIC,
        None => {
            eprintln!("heartbeatd: not running");
            exit::NOT_RUNNING
        }
    }
}

/// The common part of `hb_standby` and `hb_takeover`: one optional
/// argument (all, foreign, local, failback), exit 0 when heartbeatd took the
/// request, 1 otherwise (as the 3.0.6 scripts).
pub fn cli_ask(prog: &str, make: impl Fn(String) -> Request) -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        eprintln!("usage:\n{prog} [all|foreign|local|failback]");
        std::process::ExitCode::from(1)
    };
    if args.len() > 1 {
        eprintln!("{prog}: too many arguments");
        return usage();
    }
    let which = args.first().cloned().unwrap_or_else(|| "all".to_owned());
    if which == "--help" || which == "-h" {
        return usage();
    }
    if parse_which(&which).is_none() {
        eprintln!("{prog}: wrong resources({which}).");
        return usage();
    }
    match control::request(&control::default_socket(), &make(which.clone())) {
        Ok(r) if r.ok => {
            let what = if prog == "hb_standby" {
                "Going standby"
            } else {
                "Taking over"
            };
            println!("{what} [{which}].");
            std::process::ExitCode::SUCCESS
        }
        Ok(r) => {
            eprintln!("{prog}: {}", r.error.unwrap_or_default());
            std::process::ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{prog}: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
