//! Running resource agents for the core: `<path> args... verb`, looked up in
//! `resource.d` then `init.d` (a regular executable file), with the HA_*
//! environment 3.0.6 exports, stdout captured (status is judged by it),
//! stderr appended to the debug file, in its own process group, at normal
//! (not realtime) scheduling, and killed when its time limit passes.
//!
//! Completion is reported when the agent process exits; its stdout is read
//! as it comes and once more at exit (daemons an agent starts may keep the
//! pipe open, so EOF is not waited for).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::cluster::{AgentResult, CallId};

/// Grace between SIGTERM and SIGKILL for an agent past its time limit.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Most stdout kept from one agent call.
const MAX_STDOUT: usize = 64 * 1024;

struct Running {
    call: CallId,
    child: Child,
    out: Vec<u8>,
    deadline: Instant,
    term_sent: Option<Instant>,
    token: Token,
}

/// Where agents are looked up and what they are given.
pub struct AgentEnv {
    pub resource_d: PathBuf,
    pub init_d: PathBuf,
    pub env: Vec<(String, String)>,
    pub debugfile: Option<PathBuf>,
}

/// The agent processes in flight.
pub struct Agents {
    cfg: AgentEnv,
    running: Vec<Running>,
    next_token: usize,
    token_base: usize,
}

fn is_exec_file(p: &Path) -> bool {
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

impl Agents {
    pub fn new(cfg: AgentEnv, token_base: usize) -> Agents {
        Agents {
            cfg,
            running: Vec::new(),
            next_token: 0,
            token_base,
        }
    }

    /// True if `t` is one of ours.
    pub fn owns(&self, t: Token) -> bool {
        t.0 >= self.token_base
    }

    /// The path of `script`: resource.d first, then init.d.
    pub fn locate(&self, script: &str) -> Option<PathBuf> {
        if script.is_empty() || script.contains('/') {
            return None;
        }
        [&self.cfg.resource_d, &self.cfg.init_d]
            .into_iter()
            .map(|d| d.join(script))
            .find(|p| is_exec_file(p))
    }

    fn stderr_sink(&self) -> Stdio {
        self.cfg
            .debugfile
            .as_ref()
            .and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok())
            .map(Stdio::from)
            .unwrap_or_else(Stdio::null)
    }

    /// Starts `program args...`. On failure to start, the result is
    /// returned at once (with `error` set).
    pub fn spawn(
        &mut self,
        registry: &Registry,
        call: CallId,
        program: &Path,
        args: &[String],
        timeout: Duration,
    ) -> Option<AgentResult> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(self.cfg.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(self.stderr_sink())
            .process_group(0);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // Agents run at normal priority even if we are realtime.
                let p = libc::sched_param { sched_priority: 0 };
                libc::sched_setscheduler(0, libc::SCHED_OTHER, &p);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Some(AgentResult {
                    exit: None,
                    stdout: String::new(),
                    timed_out: false,
                    error: Some(format!("cannot run {}: {e}", program.display())),
                })
            }
        };
        let token = Token(self.token_base + self.next_token);
        self.next_token += 1;
        if let Some(out) = child.stdout.as_ref() {
            let fd = out.as_raw_fd();
            // SAFETY: fcntl on a descriptor we own.
            unsafe {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
            let _ = registry.register(&mut SourceFd(&fd), token, Interest::READABLE);
        }
        self.running.push(Running {
            call,
            child,
            out: Vec::new(),
            deadline: Instant::now() + timeout,
            term_sent: None,
            token,
        });
        None
    }

    fn drain(r: &mut Running) {
        if let Some(out) = r.child.stdout.as_mut() {
            let mut buf = [0u8; 4096];
            loop {
                match out.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let room = MAX_STDOUT.saturating_sub(r.out.len());
                        r.out.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }
    }

    /// Stdout of the agent behind `token` is readable.
    pub fn readable(&mut self, token: Token) {
        if let Some(r) = self.running.iter_mut().find(|r| r.token == token) {
            Agents::drain(r);
        }
    }

    /// Reaps exited agents and enforces time limits; returns finished calls.
    pub fn poll(&mut self, registry: &Registry) -> Vec<(CallId, AgentResult)> {
        let now = Instant::now();
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.running.len() {
            let r = &mut self.running[i];
            match r.child.try_wait() {
                Ok(Some(status)) => {
                    Agents::drain(r);
                    let mut r = self.running.remove(i);
                    if let Some(out) = r.child.stdout.take() {
                        let fd = out.as_raw_fd();
                        let _ = registry.deregister(&mut SourceFd(&fd));
                    }
                    done.push((
                        r.call,
                        AgentResult {
                            exit: status.code(),
                            stdout: String::from_utf8_lossy(&r.out).into_owned(),
                            timed_out: r.term_sent.is_some(),
                            error: None,
                        },
                    ));
                    let _ = status.signal();
                    continue;
                }
                Ok(None) => {
                    let pgid = r.child.id() as i32;
                    if r.term_sent.is_none() && now >= r.deadline {
                        // SAFETY: signalling the agent's own process group.
                        unsafe { libc::kill(-pgid, libc::SIGTERM) };
                        r.term_sent = Some(now);
                    } else if r.term_sent.is_some_and(|t| now >= t + KILL_GRACE) {
                        // SAFETY: as above.
                        unsafe { libc::kill(-pgid, libc::SIGKILL) };
                    }
                }
                Err(_) => {}
            }
            i += 1;
        }
        done
    }

    /// When `poll` must run next for a time limit, at the latest.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.running
            .iter()
            .map(|r| match r.term_sent {
                None => r.deadline,
                Some(t) => t + KILL_GRACE,
            })
            .min()
    }

    pub fn busy(&self) -> bool {
        !self.running.is_empty()
    }

    /// Kills every agent still running (on exit).
    pub fn kill_all(&mut self) {
        for r in &mut self.running {
            // SAFETY: the agent's own process group.
            unsafe { libc::kill(-(r.child.id() as i32), libc::SIGKILL) };
            let _ = r.child.wait();
        }
        self.running.clear();
    }
}

/// The environment heartbeat gives its agents and scripts.
pub fn ha_env(
    confdir: &Path,
    node: &str,
    ha: &crate::config::HaCf,
    debug: u32,
) -> Vec<(String, String)> {
    let mut v: BTreeMap<String, String> = BTreeMap::new();
    let d = confdir.display().to_string();
    v.insert("HA_CURHOST".into(), node.into());
    v.insert("HA_DIR".into(), d.clone());
    v.insert("HA_FUNCS".into(), format!("{d}/shellfuncs"));
    v.insert("HA_RESOURCEDIR".into(), format!("{d}/resource.d"));
    v.insert("HA_DATEFMT".into(), "%Y/%m/%d_%T ".into());
    v.insert("HA_LOGD".into(), "no".into());
    v.insert("HA_debug".into(), debug.to_string());
    v.insert("OCF_ROOT".into(), "/usr/lib/ocf".into());
    if ha.auto_failback != crate::config::AutoFailback::Legacy {
        v.insert("HA_NICEFAILBACK".into(), "yes".into());
    }
    if let Some(p) = &ha.logfile {
        v.insert("HA_LOGFILE".into(), p.display().to_string());
    }
    if let Some(p) = &ha.debugfile {
        v.insert("HA_DEBUGLOG".into(), p.display().to_string());
    }
    if let Some(f) = &ha.logfacility {
        v.insert("HA_LOGFACILITY".into(), f.clone());
    }
    for (k, val) in &ha.env {
        v.insert(format!("HA_{k}"), val.clone());
    }
    v.into_iter().collect()
}
