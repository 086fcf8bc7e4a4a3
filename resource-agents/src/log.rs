//! Agent logging: one line per event on stderr, and appended to
//! `HA_LOGFILE` when heartbeat or the cluster sets it. Failure reasons go
//! out as one line too: `ocf-exit-reason:<text>` in OCF mode (the prefix is
//! taken from `OCF_EXIT_REASON_PREFIX`), `NAME: ERROR: <text>` otherwise.

use std::io::Write as _;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// Where an agent's messages go.
#[derive(Debug, Clone)]
pub struct Logger {
    /// `IPaddr(vip)` style tag.
    tag: String,
    logfile: Option<String>,
    debug: bool,
    /// OCF mode: failure reasons use the exit-reason prefix.
    ocf: bool,
    reason_prefix: String,
}

/// `Mon dd HH:MM:SS` in local time, like syslog and the shell agents.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r and strftime write into the buffers we give them.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return String::new();
        }
        let mut buf = [0u8; 32];
        let n = libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%b %d %H:%M:%S".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

impl Logger {
    /// A logger for agent `name`, resource instance `instance` (if known),
    /// configured from the environment (`HA_LOGFILE`, `HA_debug`,
    /// `OCF_EXIT_REASON_PREFIX`).
    pub fn new(name: &str, instance: Option<&str>, ocf: bool) -> Logger {
        let tag = match instance {
            Some(i) if !i.is_empty() => format!("{name}({i})"),
            _ => name.to_string(),
        };
        Logger {
            tag,
            logfile: std::env::var("HA_LOGFILE").ok().filter(|s| !s.is_empty()),
            debug: std::env::var("HA_debug").is_ok_and(|v| v != "0" && !v.is_empty()),
            ocf,
            reason_prefix: std::env::var("OCF_EXIT_REASON_PREFIX")
                .unwrap_or_else(|_| "ocf-exit-reason:".to_string()),
        }
    }

    fn to_file(&self, line: &str) {
        if let Some(path) = &self.logfile {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{} {line}", timestamp());
            }
        }
    }

    /// Logs one line at `level`.
    pub fn log(&self, level: Level, msg: &str) {
        if level == Level::Debug && !self.debug {
            return;
        }
        let line = format!(
            "{}[{}]: {}: {msg}",
            self.tag,
            std::process::id(),
            level.name()
        );
        let _ = writeln!(std::io::stderr(), "{line}");
        self.to_file(&line);
    }

    pub fn debug(&self, msg: &str) {
        self.log(Level::Debug, msg)
    }
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg)
    }
    pub fn warn(&self, msg: &str) {
        self.log(Level::Warn, msg)
    }

    /// Reports why the action failed: exactly one line on stderr.
    pub fn exit_reason(&self, msg: &str) {
        let msg = msg.replace('\n', " ");
        if self.ocf {
            let _ = writeln!(std::io::stderr(), "{}{msg}", self.reason_prefix);
        } else {
            let _ = writeln!(std::io::stderr(), "{}: ERROR: {msg}", self.tag);
        }
        self.to_file(&format!(
            "{}[{}]: ERROR: {msg}",
            self.tag,
            std::process::id()
        ));
    }
}
