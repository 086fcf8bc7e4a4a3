//! Logging as 3.0.6 does it: `logfile` (events at info and above),
//! `debugfile` (everything), `logfacility` (syslog), and stderr while the
//! daemon runs in the foreground without any of them.
//!
//! Lines use the format admins grep for:
//! `Nov 22 05:19:01 alpha heartbeat: [8]: info: Link beta:hb0 up.`
//! (`syslogmsgfmt on`, the default), or
//! `heartbeat[8]: 2026/11/22_05:19:01 info: ...` with `syslogmsgfmt off`.
//! Files are opened in append mode for every line, so logrotate needs no
//! signal.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use crate::cluster::Level;

/// The program name in log lines and the syslog ident.
pub const IDENT: &str = "heartbeat";

/// Where log lines go.
pub struct Logger {
    pub logfile: Option<PathBuf>,
    pub debugfile: Option<PathBuf>,
    facility: Option<libc::c_int>,
    pub syslogmsgfmt: bool,
    pub stderr: bool,
    /// 0 = no debug lines; `debug N` / `-d` / SIGUSR1 raise it.
    pub debug: u32,
    node: String,
    pid: u32,
}

/// syslog facility by name.
pub fn facility(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "auth" => libc::LOG_AUTH,
        "authpriv" => libc::LOG_AUTHPRIV,
        "cron" => libc::LOG_CRON,
        "daemon" => libc::LOG_DAEMON,
        "ftp" => libc::LOG_FTP,
        "kern" => libc::LOG_KERN,
        "lpr" => libc::LOG_LPR,
        "mail" => libc::LOG_MAIL,
        "news" => libc::LOG_NEWS,
        "syslog" => libc::LOG_SYSLOG,
        "user" => libc::LOG_USER,
        "uucp" => libc::LOG_UUCP,
        "local0" => libc::LOG_LOCAL0,
        "local1" => libc::LOG_LOCAL1,
        "local2" => libc::LOG_LOCAL2,
        "local3" => libc::LOG_LOCAL3,
        "local4" => libc::LOG_LOCAL4,
        "local5" => libc::LOG_LOCAL5,
        "local6" => libc::LOG_LOCAL6,
        "local7" => libc::LOG_LOCAL7,
        _ => return None,
    })
}

fn priority(level: Level) -> libc::c_int {
    match level {
        Level::Crit => libc::LOG_CRIT,
        Level::Err => libc::LOG_ERR,
        Level::Warn => libc::LOG_WARNING,
        Level::Info => libc::LOG_INFO,
        Level::Debug => libc::LOG_DEBUG,
    }
}

/// Local time as (`Nov 22 05:19:01`, `2026/11/22_05:19:01`).
fn timestamps() -> (String, String) {
    // SAFETY: time/localtime_r/strftime with buffers we own.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        let fmt = |f: &str| {
            let mut buf = [0u8; 64];
            let cf = CString::new(f).expect("format has no NUL");
            let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), cf.as_ptr(), &tm);
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        (fmt("%b %d %H:%M:%S"), fmt("%Y/%m/%d_%H:%M:%S"))
    }
}

impl Logger {
    pub fn new(node: &str) -> Logger {
        Logger {
            logfile: None,
            debugfile: None,
            facility: None,
            syslogmsgfmt: true,
            stderr: true,
            debug: 0,
            node: node.to_owned(),
            pid: std::process::id(),
        }
    }

    /// Applies the ha.cf logging directives.
    pub fn configure(&mut self, ha: &crate::config::HaCf) {
        self.logfile = ha.logfile.clone();
        self.debugfile = ha.debugfile.clone();
        self.syslogmsgfmt = ha.syslogmsgfmt;
        self.debug = self.debug.max(ha.debug);
        self.facility = ha.logfacility.as_deref().and_then(facility);
        if self.facility.is_some() {
            static IDENT_C: &[u8] = b"heartbeat\0";
            // SAFETY: openlog keeps the pointer: a static NUL-terminated string.
            unsafe {
                libc::openlog(
                    IDENT_C.as_ptr().cast(),
                    libc::LOG_PID | libc::LOG_NDELAY,
                    self.facility.unwrap_or(libc::LOG_DAEMON),
                )
            };
        }
    }

    /// After daemonizing the pid changes.
    pub fn set_pid(&mut self, pid: u32) {
        self.pid = pid;
    }

    pub fn has_sink(&self) -> bool {
        self.logfile.is_some() || self.debugfile.is_some() || self.facility.is_some()
    }

    fn line(&self, level: Level, msg: &str) -> String {
        let (syslog_ts, ha_ts) = timestamps();
        if self.syslogmsgfmt {
            format!(
                "{syslog_ts} {} {IDENT}: [{}]: {}: {msg}\n",
                self.node,
                self.pid,
                level.word()
            )
        } else {
            format!("{IDENT}[{}]: {ha_ts} {}: {msg}\n", self.pid, level.word())
        }
    }

    pub fn log(&self, level: Level, msg: &str) {
        if level == Level::Debug && self.debug == 0 {
            return;
        }
        let line = self.line(level, msg);
        let append = |p: &PathBuf| {
            if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(p) {
                let _ = f.write_all(line.as_bytes());
            }
        };
        if level != Level::Debug {
            if let Some(p) = &self.logfile {
                append(p);
            }
        }
        if let Some(p) = &self.debugfile {
            append(p);
        }
        if let Some(_fac) = self.facility {
            if let Ok(c) = CString::new(format!("{}: {msg}", level.word())) {
                // SAFETY: "%s" with a NUL-terminated string we own.
                unsafe { libc::syslog(priority(level), c"%s".as_ptr(), c.as_ptr()) };
            }
        }
        if self.stderr {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}
