//! `respawn USER /path args`: programs started once communication is up,
//! as USER, restarted when they exit (unless with status 100, or more than
//! ten times within 30 s each), stopped with SIGTERM on shutdown — as 3.0.6
//! does for its client children.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::Level;
use crate::config::Client;
use crate::daemon::log::Logger;

struct Managed {
    spec: Client,
    child: Option<Child>,
    started: Instant,
    short_restarts: u32,
    /// Exit 100 or respawning too fast: stay down.
    given_up: bool,
    restart_at: Option<Instant>,
}

pub struct Clients {
    list: Vec<Managed>,
    env: Vec<(String, String)>,
    started: bool,
}

fn user_ids(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    // SAFETY: getpwnam returns a pointer into static storage or NULL; we
    // copy the two fields out at once, single-threaded.
    unsafe {
        let pw = libc::getpwnam(c.as_ptr());
        if pw.is_null() {
            return None;
        }
        Some(((*pw).pw_uid, (*pw).pw_gid))
    }
}

impl Clients {
    pub fn new(specs: Vec<Client>, env: Vec<(String, String)>) -> Clients {
        Clients {
            list: specs
                .into_iter()
                .map(|spec| Managed {
                    spec,
                    child: None,
                    started: Instant::now(),
                    short_restarts: 0,
                    given_up: false,
                    restart_at: None,
                })
                .collect(),
            env,
            started: false,
        }
    }

    pub fn busy(&self) -> bool {
        self.list.iter().any(|m| m.child.is_some())
    }

    fn spawn(env: &[(String, String)], m: &mut Managed, log: &Logger) {
        let s = &m.spec;
        let Some((uid, gid)) = user_ids(&s.user) else {
            log.log(
                Level::Err,
                &format!(
                    "Cannot start client {}: no user {}",
                    s.path.display(),
                    s.user
                ),
            );
            m.given_up = true;
            return;
        };
        log.log(
            Level::Info,
            &format!(
                "Starting child client \"{}\" ({uid},{gid})",
                s.path.display()
            ),
        );
        let mut cmd = Command::new(&s.path);
        cmd.args(&s.args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .uid(uid)
            .gid(gid);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let p = libc::sched_param { sched_priority: 0 };
                libc::sched_setscheduler(0, libc::SCHED_OTHER, &p);
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(c) => {
                m.child = Some(c);
                m.started = Instant::now();
            }
            Err(e) => {
                log.log(
                    Level::Err,
                    &format!("Cannot exec {}: {e}", s.path.display()),
                );
                m.given_up = true;
            }
        }
    }

    /// Communication is up: start every client.
    pub fn start_all(&mut self, log: &Logger) {
        self.started = true;
        for m in &mut self.list {
            Clients::spawn(&self.env, m, log);
        }
    }

    /// Reaps and respawns.
    pub fn poll(&mut self, log: &Logger, shutting_down: bool) {
        if !self.started {
            return;
        }
        let now = Instant::now();
        for m in &mut self.list {
            if let Some(c) = m.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    m.child = None;
                    let code = st.code();
                    if !shutting_down {
                        log.log(
                            Level::Err,
                            &format!(
                                "Client {} exited with return code {}.",
                                m.spec.path.display(),
                                code.map(|c| c.to_string())
                                    .unwrap_or_else(|| "(signal)".into())
                            ),
                        );
                    }
                    if code == Some(100) || shutting_down {
                        m.given_up = true;
                        continue;
                    }
                    if now.duration_since(m.started) < Duration::from_secs(30) {
                        m.short_restarts += 1;
                    } else {
                        m.short_restarts = 0;
                    }
                    if m.short_restarts > 10 {
                        log.log(
                            Level::Err,
                            &format!("Client {} \"respawning too fast\"", m.spec.path.display()),
                        );
                        m.given_up = true;
                    } else {
                        log.log(
                            Level::Err,
                            &format!("Respawning client \"{}\":", m.spec.path.display()),
                        );
                        m.restart_at = Some(
                            now + if m.short_restarts > 0 {
                                Duration::from_secs(1)
                            } else {
                                Duration::ZERO
                            },
                        );
                    }
                }
            }
            if m.child.is_none() && !m.given_up && m.restart_at.is_some_and(|t| now >= t) {
                m.restart_at = None;
                Clients::spawn(&self.env, m, log);
            }
        }
    }

    /// SIGTERM to every client, in reverse start order; then SIGKILL.
    pub fn stop_all(&mut self) {
        for m in self.list.iter_mut().rev() {
            if let Some(c) = m.child.as_mut() {
                // SAFETY: signalling the client's own process group.
                unsafe { libc::kill(-(c.id() as i32), libc::SIGTERM) };
                let end = Instant::now() + Duration::from_secs(5);
                while Instant::now() < end {
                    if let Ok(Some(_)) = c.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                // SAFETY: as above.
                unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
                let _ = c.wait();
            }
            m.child = None;
        }
    }
}
