//! `ldirectord` OCF wrapper (cargo binary `ldirectord-ocf`, installed as
//! `ldirectord` in the OCF provider directory): starts, stops, monitors
//! and reloads the ldirectord daemon through its CLI
//! (`ldirectord CONFIG start|stop|status|reload`), falling back to the pid
//! file (`/var/run/ldirectord.<config name>.pid`) when the CLI cannot stop
//! it.
//!
//! Status mapping (as ocf:heartbeat:ldirectord): CLI exit 0 → running;
//! 3, or 1 with "stale pid file" → stopped; 2 → "has configuration
//! errors", a generic error (1); anything else → generic error. A missing binary or configuration file
//! is `ERR_INSTALLED` (5).

use std::io::{Read, Seek};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::agent::{Agent, AgentError, Ctx, Params, State};
use crate::ocf::{ActionSpec, MetaData, ParamSpec, Rc};
use crate::state;

/// Default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/ha.d/ldirectord.cf";
/// Default daemon binary.
pub const DEFAULT_BINARY: &str = "/usr/sbin/ldirectord";

static PARAMS: [ParamSpec; 3] = [
    ParamSpec::new("configfile", "Configuration file (absolute path)")
        .unique()
        .default(DEFAULT_CONFIG)
        .long("The ldirectord configuration file; an absolute path (the daemon changes to /)."),
    ParamSpec::new("ldirectord", "The ldirectord binary").default(DEFAULT_BINARY),
    ParamSpec::new("pidfile", "The daemon's pid file").long(
        "Used only to stop a daemon that no longer answers its CLI. \
         Default: /var/run/ldirectord.<configfile name>.pid.",
    ),
];

static ACTIONS: [ActionSpec; 7] = [
    ActionSpec::new("start", "15s"),
    ActionSpec::new("stop", "15s"),
    ActionSpec::new("status", "10s"),
    ActionSpec::monitor("10s", "20s"),
    ActionSpec::new("reload", "15s"),
    ActionSpec::new("meta-data", "5s"),
    ActionSpec::new("validate-all", "10s"),
];

static META: MetaData = MetaData {
    name: "ldirectord",
    shortdesc: "Wrapper OCF resource agent for ldirectord (heartbeat-rs)",
    longdesc: "Starts, stops, monitors and reloads the ldirectord daemon, which monitors the \
               real servers of LVS virtual services and edits the IPVS table, through its \
               command line (ldirectord CONFIG start|stop|status|reload).",
    params: &PARAMS,
    actions: &ACTIONS,
};

/// The checked parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub configfile: PathBuf,
    pub binary: PathBuf,
    pub pidfile: PathBuf,
}

/// The `ldirectord` wrapper agent.
pub struct LdirectordAgent;

/// The pid file the daemon writes for `configfile`.
pub fn default_pidfile(configfile: &Path) -> PathBuf {
    let name = configfile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ldirectord.cf".into());
    PathBuf::from(format!("/var/run/ldirectord.{name}.pid"))
}

fn check(p: &Params) -> Result<Config, AgentError> {
    let configfile = PathBuf::from(p.get("configfile").unwrap_or(DEFAULT_CONFIG));
    let binary = PathBuf::from(p.get("ldirectord").unwrap_or(DEFAULT_BINARY));
    if !configfile.is_absolute() {
        return Err(AgentError::configured(format!(
            "configfile={} must be an absolute path",
            configfile.display()
        )));
    }
    let exec = std::fs::metadata(&binary)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if !exec {
        return Err(AgentError::installed(format!(
            "ldirectord binary {} is missing or not executable",
            binary.display()
        )));
    }
    if std::fs::File::open(&configfile).is_err() {
        return Err(AgentError::installed(format!(
            "configuration file {} is missing or unreadable",
            configfile.display()
        )));
    }
    let pidfile = p
        .get("pidfile")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_pidfile(&configfile));
    Ok(Config {
        configfile,
        binary,
        pidfile,
    })
}

/// Runs `BIN CONFIG verb` and returns (exit code, stdout+stderr). Output
/// goes through an unlinked temp file, not a pipe: a daemon that keeps the
/// descriptors cannot make us wait for EOF.
fn cli(cfg: &Config, verb: &str) -> Result<(i32, String), AgentError> {
    let mut out = tempfile_in_tmp()?;
    let err = out
        .try_clone()
        .map_err(|e| AgentError::generic(format!("dup temp file: {e}")))?;
    let so = out
        .try_clone()
        .map_err(|e| AgentError::generic(format!("dup temp file: {e}")))?;
    let status = Command::new(&cfg.binary)
        .arg(&cfg.configfile)
        .arg(verb)
        .stdin(Stdio::null())
        .stdout(Stdio::from(so))
        .stderr(Stdio::from(err))
        .status()
        .map_err(|e| AgentError::installed(format!("cannot run {}: {e}", cfg.binary.display())))?;
    let mut text = String::new();
    let _ = out.rewind();
    let _ = out.read_to_string(&mut text);
    let code = status.code().unwrap_or(1);
    Ok((code, text.trim().to_string()))
}

fn tempfile_in_tmp() -> Result<std::fs::File, AgentError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(&dir)
        .map_err(|e| AgentError::generic(format!("temp file in {}: {e}", dir.display())))
}

impl LdirectordAgent {
    fn status(&self, cfg: &Config) -> Result<State, AgentError> {
        let (code, text) = cli(cfg, "status")?;
        match code {
            0 => Ok(State::running(first_line(&text))),
            3 => Ok(State::stopped(first_line(&text))),
            1 if text.contains("stale pid file") => Ok(State::stopped(first_line(&text))),
            2 => Err(AgentError::generic(format!(
                "{} has configuration errors: {}",
                cfg.configfile.display(),
                first_line(&text)
            ))),
            c => Err(AgentError::generic(format!(
                "ldirectord status failed (exit {c}): {}",
                first_line(&text)
            ))),
        }
    }

    fn wait_for(&self, cfg: &Config, running: bool, deadline: Instant) -> Result<bool, AgentError> {
        loop {
            match self.status(cfg) {
                Ok(st) if st.running == running => return Ok(true),
                Ok(_) => {}
                Err(e) if e.reason.contains("configuration errors") => return Err(e),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

fn budget(ctx: &Ctx) -> Duration {
    // leave the caller a margin to see our answer before its own timeout
    ctx.timeout
        .saturating_sub(Duration::from_secs(2))
        .max(Duration::from_secs(1))
}

impl Agent for LdirectordAgent {
    type Config = Config;

    fn meta(&self) -> &'static MetaData {
        &META
    }

    fn v1_usage(&self) -> &'static str {
        "[CONFIGFILE]"
    }

    fn v1_args(&self, args: &[String], params: &mut Params) -> Result<(), AgentError> {
        match args {
            [] => Ok(()),
            [cf] => {
                params.set("configfile", cf);
                Ok(())
            }
            _ => Err(AgentError::args(format!(
                "ldirectord takes at most a configuration file before the action, got {args:?}"
            ))),
        }
    }

    fn needs_root(&self) -> bool {
        false
    }

    fn validate(&self, params: &Params, _ctx: &Ctx) -> Result<Config, AgentError> {
        check(params)
    }

    fn start(&self, cfg: &Config, ctx: &Ctx) -> Result<(), AgentError> {
        if self.status(cfg)?.running {
            ctx.log.info("ldirectord is already running");
            return Ok(());
        }
        let (code, text) = cli(cfg, "start")?;
        if !text.is_empty() {
            ctx.log
                .info(&format!("ldirectord start: {}", text.replace('\n', " | ")));
        }
        if code != 0 {
            return Err(AgentError::generic(format!(
                "ldirectord {} start failed (exit {code}): {}",
                cfg.configfile.display(),
                first_line(&text)
            )));
        }
        if self.wait_for(cfg, true, Instant::now() + budget(ctx))? {
            Ok(())
        } else {
            Err(AgentError::generic(
                "ldirectord started but its status does not say running".to_string(),
            ))
        }
    }

    fn stop(&self, cfg: &Config, ctx: &Ctx) -> Result<(), AgentError> {
        let sane = match self.status(cfg) {
            Ok(st) if !st.running => return Ok(()),
            Ok(_) => true,
            Err(e) => {
                ctx.log.warn(&format!("status before stop: {}", e.reason));
                false
            }
        };
        let deadline = Instant::now() + budget(ctx);
        if sane {
            let (code, text) = cli(cfg, "stop")?;
            if code != 0 {
                ctx.log.warn(&format!(
                    "ldirectord stop exited {code}: {}",
                    first_line(&text)
                ));
            }
            let half = Instant::now() + budget(ctx) / 2;
            if self.wait_for(cfg, false, half).unwrap_or(false) {
                return Ok(());
            }
        }
        // The CLI did not do it: signal the daemon named in its pid file.
        let Some(pid) = state::live_pid(&cfg.pidfile) else {
            return if sane {
                Err(AgentError::generic("ldirectord did not stop".to_string()))
            } else {
                Ok(())
            };
        };
        ctx.log
            .warn(&format!("sending TERM to ldirectord pid {pid}"));
        state::signal(pid, Signal::SIGTERM);
        while Instant::now() < deadline {
            if state::live_pid(&cfg.pidfile) != Some(pid) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        ctx.log
            .warn(&format!("sending KILL to ldirectord pid {pid}"));
        state::signal(pid, Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(100));
        if state::live_pid(&cfg.pidfile) == Some(pid) {
            return Err(AgentError::generic(format!(
                "ldirectord pid {pid} survived KILL"
            )));
        }
        Ok(())
    }

    fn monitor(&self, cfg: &Config, _ctx: &Ctx) -> Result<State, AgentError> {
        self.status(cfg)
    }

    fn reload(&self, cfg: &Config, _ctx: &Ctx) -> Option<Result<(), AgentError>> {
        Some((|| {
            if !self.status(cfg)?.running {
                return Err(AgentError::new(Rc::NotRunning, "ldirectord is not running"));
            }
            let (code, text) = cli(cfg, "reload")?;
            if code != 0 {
                return Err(AgentError::generic(format!(
                    "ldirectord reload failed (exit {code}): {}",
                    first_line(&text)
                )));
            }
            Ok(())
        })())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfile_name_follows_the_config_name() {
        assert_eq!(
            default_pidfile(Path::new("/etc/ha.d/ldirectord.cf")),
            PathBuf::from("/var/run/ldirectord.ldirectord.cf.pid")
        );
        assert_eq!(
            default_pidfile(Path::new("/tmp/x/web.cf")),
            PathBuf::from("/var/run/ldirectord.web.cf.pid")
        );
    }

    #[test]
    fn missing_binary_or_config_is_not_installed() {
        let p = |pairs: &[(&str, &str)]| check(&Params::from_pairs(&META, pairs));
        let e = p(&[
            ("configfile", "/etc/hostname"),
            ("ldirectord", "/nonexistent/ld"),
        ])
        .unwrap_err();
        assert_eq!(e.rc, Rc::ErrInstalled);
        let e = p(&[
            ("configfile", "/nonexistent.cf"),
            ("ldirectord", "/bin/true"),
        ])
        .unwrap_err();
        assert_eq!(e.rc, Rc::ErrInstalled);
        let e = p(&[("configfile", "rel.cf"), ("ldirectord", "/bin/true")]).unwrap_err();
        assert_eq!(e.rc, Rc::ErrConfigured);
        let c = p(&[("configfile", "/etc/hostname"), ("ldirectord", "/bin/true")]).unwrap();
        assert_eq!(c.pidfile, PathBuf::from("/var/run/ldirectord.hostname.pid"));
    }
}
