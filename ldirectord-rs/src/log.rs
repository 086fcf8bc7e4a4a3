//! Log lines where the Perl daemon writes them, in its formats:
//! * log file: `[Sun Nov 22 01:46:27 2026|CFGNAME|PID] MESSAGE`, the file
//!   opened, appended and closed for every line (logrotate needs nothing);
//! * syslog (`logfile="local0"`): ident `ldirectord`, with pid, priority info,
//!   sent to `/dev/log`;
//! * supervised: stdout `[Sun Nov 22 01:46:27 2026] MESSAGE`;
//! * debug (`-d`): stderr, the message alone.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::config::LogTarget;

/// `localtime()` in Perl's scalar form: `Sun Nov 22 01:46:27 2026`.
pub fn perl_localtime(epoch: i64) -> String {
    let t: libc::time_t = epoch as libc::time_t;
    // SAFETY: localtime_r writes into the zeroed `tm` we own; `t` lives for
    // the duration of the call.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return epoch.to_string();
        }
        tm
    };
    fmt_tm(&tm)
}

fn fmt_tm(tm: &libc::tm) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[tm.tm_wday.rem_euclid(7) as usize],
        MONTHS[tm.tm_mon.rem_euclid(12) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tm.tm_year + 1900
    )
}

/// Seconds since the epoch.
pub fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    File(PathBuf),
    Syslog(String),
    Stdout,
    Stderr,
}

/// The logger of a running daemon (shareable between threads).
#[derive(Debug)]
pub struct Logger {
    sink: Mutex<Sink>,
    cfgname: String,
    syslog: Mutex<Option<UnixDatagram>>,
    /// `/dev/log` (tests point it elsewhere)
    syslog_path: PathBuf,
}

fn facility_code(f: &str) -> u8 {
    match f {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        l if l.starts_with("local") => 16 + l[5..].parse::<u8>().unwrap_or(0).min(7),
        _ => 3,
    }
}

impl Logger {
    pub fn new(sink: Sink, cfgname: &str) -> Logger {
        Logger {
            sink: Mutex::new(sink),
            cfgname: cfgname.to_string(),
            syslog: Mutex::new(None),
            syslog_path: std::env::var_os("LDIRECTORD_SYSLOG_SOCKET")
                .map(PathBuf::from)
                .unwrap_or_else(|| "/dev/log".into()),
        }
    }

    /// The sink for a configuration in a mode (debug / supervised win).
    pub fn sink_for(target: &LogTarget, debug: bool, supervised: bool) -> Sink {
        if debug {
            Sink::Stderr
        } else if supervised {
            Sink::Stdout
        } else {
            match target {
                LogTarget::File(p) => Sink::File(p.clone()),
                LogTarget::Syslog(f) => Sink::Syslog(f.clone()),
            }
        }
    }

    pub fn set_sink(&self, sink: Sink) {
        *self.sink.lock().unwrap_or_else(|e| e.into_inner()) = sink;
    }

    pub fn sink(&self) -> Sink {
        self.sink.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Writes one line (`ld_log`).
    pub fn log(&self, msg: &str) {
        let msg = msg.trim_end_matches('\n');
        let sink = self.sink();
        match sink {
            Sink::Stderr => {
                let _ = writeln!(std::io::stderr(), "{msg}");
            }
            Sink::Stdout => {
                let _ = writeln!(std::io::stdout(), "[{}] {msg}", perl_localtime(now_epoch()));
            }
            Sink::File(p) => {
                let line = format!(
                    "[{}|{}|{}] {msg}\n",
                    perl_localtime(now_epoch()),
                    self.cfgname,
                    std::process::id()
                );
                let ok = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .and_then(|mut f| f.write_all(line.as_bytes()));
                if ok.is_err() {
                    let _ = writeln!(std::io::stderr(), "{msg}");
                }
            }
            Sink::Syslog(fac) => self.syslog(&fac, msg),
        }
    }

    fn syslog(&self, facility: &str, msg: &str) {
        let pri = facility_code(facility) as u32 * 8 + 6;
        let now = perl_localtime(now_epoch());
        // "Sun Nov 22 01:46:27 2026" -> "Nov 22 01:46:27"
        let stamp = now.get(4..19).unwrap_or("");
        let line = format!("<{pri}>{stamp} ldirectord[{}]: {msg}", std::process::id());
        let mut g = self.syslog.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..2 {
            if g.is_none() {
                *g = UnixDatagram::unbound()
                    .and_then(|s| s.connect(&self.syslog_path).map(|_| s))
                    .ok();
            }
            match g.as_ref().map(|s| s.send(line.as_bytes())) {
                Some(Ok(_)) => return,
                Some(Err(_)) => *g = None,
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_time_format() {
        // SAFETY: zeroed tm is a valid value
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        tm.tm_wday = 0;
        tm.tm_mon = 10;
        tm.tm_mday = 2;
        tm.tm_hour = 1;
        tm.tm_min = 46;
        tm.tm_sec = 7;
        tm.tm_year = 126;
        assert_eq!(fmt_tm(&tm), "Sun Nov  2 01:46:07 2026");
    }

    #[test]
    fn file_lines_and_syslog_datagrams() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ld.log");
        let l = Logger::new(Sink::File(p.clone()), "t3.cf");
        l.log("Added virtual server: 10.0.0.1:80");
        let text = std::fs::read_to_string(&p).unwrap();
        let pid = std::process::id();
        assert!(text.starts_with('['), "{text}");
        assert!(
            text.ends_with(&format!(
                "|t3.cf|{pid}] Added virtual server: 10.0.0.1:80\n"
            )),
            "{text}"
        );
        let sock = dir.path().join("log.sock");
        let rx = UnixDatagram::bind(&sock).unwrap();
        let mut l = Logger::new(Sink::Syslog("local0".into()), "x");
        l.syslog_path = sock;
        l.log("hello");
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(got.starts_with("<134>"), "{got}");
        assert!(
            got.ends_with(&format!(" ldirectord[{pid}]: hello")),
            "{got}"
        );
    }
}
