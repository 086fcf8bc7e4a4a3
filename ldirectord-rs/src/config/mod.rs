//! `ldirectord.cf`: the configuration model, its parser and its printer.
//!
//! The parser ([`parse`]) is pure: it turns the text of a configuration file
//! into a [`Config`] with every default of the Perl ldirectord 4.12 resolved
//! (the "effective" configuration), or a [`ConfigError`] naming the line.
//! Host names and service names are looked up through the [`Resolve`] trait so
//! tests can inject answers; [`SystemResolver`] asks the C library and
//! `/etc/services`. Checks that need the file system (can the log file and
//! monitor files be opened, does the maintenance directory exist) are a
//! separate step, [`check_files`], so parsing itself never touches the disk.
//!
//! [`print::effective`] writes a [`Config`] back in `ldirectord.cf` syntax
//! with every effective value spelled out (`ldirectord -t`); the output parses
//! to the same configuration.

mod parse;
pub mod print;
pub mod resolve;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

pub use parse::{kernel_dest_port, parse};
pub use resolve::{Resolve, SystemResolver};

/// A configuration error: the file, the line (0 when not tied to a line) and
/// the message, worded like the Perl daemon's where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub msg: String,
}

impl ConfigError {
    /// The Perl daemon's format: `Error [PID] reading file X at line N: MSG`.
    pub fn perl_format(&self, pid: u32) -> String {
        if self.line > 0 {
            format!(
                "Error [{pid}] reading file {} at line {}: {}",
                self.file, self.line, self.msg
            )
        } else {
            format!("Error [{pid}]: {}", self.msg)
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "Error reading file {} at line {}: {}",
                self.file, self.line, self.msg
            )
        } else {
            write!(f, "Error reading file {}: {}", self.file, self.msg)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A warning found while parsing (processing continues).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub msg: String,
}

impl Warning {
    /// `Warning [PID] reading file X at line N: MSG` (or without the file part).
    pub fn perl_format(&self, file: &str, pid: u32) -> String {
        if self.line > 0 {
            format!(
                "Warning [{pid}] reading file {file} at line {}: {}",
                self.line, self.msg
            )
        } else {
            format!("Warning [{pid}]: {}", self.msg)
        }
    }
}

/// Where log lines go (`logfile=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// An absolute path: opened, appended to and closed for every line.
    File(PathBuf),
    /// A syslog facility name (`local0`, `daemon`, ...).
    Syslog(String),
}

/// The daemon states `emailalertstatus=` filters on (bit mask).
pub mod alert_status {
    pub const STARTING: u8 = 0x1;
    pub const RUNNING: u8 = 0x2;
    pub const STOPPING: u8 = 0x4;
    pub const RELOADING: u8 = 0x8;
    pub const ALL: u8 = STARTING | RUNNING | STOPPING | RELOADING;
}

/// IPVS forwarding method of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Forward {
    /// `gate`: direct routing (ipvsadm `-g`).
    Gate,
    /// `masq`: NAT (`-m`).
    Masq,
    /// `ipip`: tunnelling (`-i`).
    Ipip,
}

impl Forward {
    pub fn parse(s: &str) -> Option<Forward> {
        match s {
            "gate" => Some(Forward::Gate),
            "masq" => Some(Forward::Masq),
            "ipip" => Some(Forward::Ipip),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Forward::Gate => "gate",
            Forward::Masq => "masq",
            Forward::Ipip => "ipip",
        }
    }
}

/// Protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    /// A firewall-mark service (`virtual=N`).
    Fwm,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Fwm => "fwm",
        }
    }
}

/// The negotiate protocol of a virtual service (`service=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Dns,
    Ftp,
    Http,
    Https,
    HttpProxy,
    Imap,
    Imaps,
    Ldap,
    Ldaps,
    Mysql,
    Nntp,
    None,
    Oracle,
    Pop,
    Pops,
    Radius,
    Pgsql,
    Simpletcp,
    Sip,
    Smtp,
    Submission,
}

impl Service {
    pub const ALL: [Service; 21] = [
        Service::Dns,
        Service::Ftp,
        Service::Http,
        Service::Https,
        Service::HttpProxy,
        Service::Imap,
        Service::Imaps,
        Service::Ldap,
        Service::Ldaps,
        Service::Mysql,
        Service::Nntp,
        Service::None,
        Service::Oracle,
        Service::Pop,
        Service::Pops,
        Service::Radius,
        Service::Pgsql,
        Service::Simpletcp,
        Service::Sip,
        Service::Smtp,
        Service::Submission,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Dns => "dns",
            Service::Ftp => "ftp",
            Service::Http => "http",
            Service::Https => "https",
            Service::HttpProxy => "http_proxy",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
            Service::Ldap => "ldap",
            Service::Ldaps => "ldaps",
            Service::Mysql => "mysql",
            Service::Nntp => "nntp",
            Service::None => "none",
            Service::Oracle => "oracle",
            Service::Pop => "pop",
            Service::Pops => "pops",
            Service::Radius => "radius",
            Service::Pgsql => "pgsql",
            Service::Simpletcp => "simpletcp",
            Service::Sip => "sip",
            Service::Smtp => "smtp",
            Service::Submission => "submission",
        }
    }

    pub fn parse(s: &str) -> Option<Service> {
        Service::ALL.iter().copied().find(|x| x.as_str() == s)
    }

    /// The service ldirectord assumes for a virtual port (`ld_port_to_service`).
    pub fn for_port(port: u16) -> Service {
        match port {
            21 => Service::Ftp,
            25 => Service::Smtp,
            53 => Service::Dns,
            80 => Service::Http,
            110 => Service::Pop,
            119 => Service::Nntp,
            143 => Service::Imap,
            389 => Service::Ldap,
            443 => Service::Https,
            587 => Service::Submission,
            636 => Service::Ldaps,
            993 => Service::Imaps,
            995 => Service::Pops,
            1521 => Service::Oracle,
            1812 => Service::Radius,
            3128 => Service::HttpProxy,
            3306 => Service::Mysql,
            5060 => Service::Sip,
            5432 => Service::Pgsql,
            _ => Service::None,
        }
    }

    /// The port checked when neither `checkport` nor the real's port is set
    /// (`ld_service_to_port`).
    pub fn default_port(self) -> Option<u16> {
        Some(match self {
            Service::Ftp => 21,
            Service::Smtp => 25,
            Service::Dns => 53,
            Service::Http => 80,
            Service::Pop => 110,
            Service::Nntp => 119,
            Service::Imap => 143,
            Service::Ldap => 389,
            Service::Https => 443,
            Service::Submission => 587,
            Service::Ldaps => 636,
            Service::Imaps => 993,
            Service::Pops => 995,
            Service::Oracle => 1521,
            Service::Radius => 1812,
            Service::HttpProxy => 3128,
            Service::Mysql => 3306,
            Service::Sip => 5060,
            Service::Pgsql => 5432,
            Service::None | Service::Simpletcp => return None,
        })
    }

    /// Whether this daemon implements the negotiate check of the service.
    /// The others are refused at configuration time (never treated as up).
    pub fn is_built(self) -> bool {
        !matches!(
            self,
            Service::HttpProxy
                | Service::Ldap
                | Service::Ldaps
                | Service::Mysql
                | Service::Oracle
                | Service::Pgsql
                | Service::Radius
        )
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How reals of a virtual service are checked (`checktype=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckType {
    Connect,
    Negotiate,
    Ping,
    External,
    On,
    Off,
    /// `checktype=N`: N connect checks, then one negotiate check.
    Combined(u32),
}

impl fmt::Display for CheckType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckType::Connect => f.write_str("connect"),
            CheckType::Negotiate => f.write_str("negotiate"),
            CheckType::Ping => f.write_str("ping"),
            CheckType::External => f.write_str("external"),
            CheckType::On => f.write_str("on"),
            CheckType::Off => f.write_str("off"),
            CheckType::Combined(n) => write!(f, "{n}"),
        }
    }
}

/// `httpmethod=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HttpMethod {
    Get,
    Head,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
        }
    }
}

/// The address of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VirtualAddr {
    /// `virtual=IP:PORT` / `virtual6=[IP]:PORT`.
    Inet(SocketAddr),
    /// `virtual=MARK` (firewall mark).
    Fwmark(u32),
}

/// `netmask=` (persistence granularity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netmask {
    /// dotted quad, IPv4 services.
    V4(std::net::Ipv4Addr),
    /// prefix length 1..128, IPv6 services.
    V6(u8),
}

impl fmt::Display for Netmask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netmask::V4(a) => write!(f, "{a}"),
            Netmask::V6(p) => write!(f, "{p}"),
        }
    }
}

/// A fallback server (added with weight 1 when no real server is up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fallback {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: Forward,
}

/// A global `fallback=` / `fallback6=`: the port is per protocol, and absent
/// when the line had none (the virtual's port is used then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalFallback {
    pub addr: IpAddr,
    pub tcp_port: Option<u16>,
    pub udp_port: Option<u16>,
    pub forward: Forward,
    pub line: usize,
}

/// One real server of a virtual service (ranges are expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Real {
    pub line: usize,
    pub addr: IpAddr,
    /// As configured; 0 when omitted (fwmark services).
    pub port: u16,
    pub forward: Forward,
    pub weight: u32,
    /// Per-real `"request", "receive"` pair (overrides the virtual's).
    pub request: Option<String>,
    pub receive: Option<String>,
    /// `l:N` (IPVS lower connection threshold).
    pub lower: Option<u32>,
    /// `u:N` (IPVS upper connection threshold).
    pub upper: Option<u32>,
}

impl Real {
    /// `IP:PORT` as the Perl daemon writes it in log lines.
    pub fn id(&self) -> String {
        fmt_hostport(self.addr, self.port)
    }
}

/// `IP:PORT`, IPv6 in brackets.
pub fn fmt_hostport(addr: IpAddr, port: u16) -> String {
    SocketAddr::new(addr, port).to_string()
}

/// One virtual service block, every value effective (defaults applied).
#[derive(Debug, Clone, PartialEq)]
pub struct Virtual {
    pub line: usize,
    /// `virtual6=`.
    pub v6: bool,
    pub addr: VirtualAddr,
    pub protocol: Protocol,
    pub service: Service,
    pub checktype: CheckType,
    pub checkcommand: String,
    pub checktimeout: u32,
    pub negotiatetimeout: u32,
    pub checkinterval: u32,
    /// Whether `checkinterval` was set in this block.
    pub checkinterval_set: bool,
    pub checkcount: u32,
    pub failurecount: u32,
    pub checkport: Option<u16>,
    pub request: String,
    pub receive: String,
    pub httpmethod: HttpMethod,
    pub virtualhost: Option<String>,
    pub login: String,
    pub passwd: String,
    pub database: String,
    pub secret: String,
    pub scheduler: String,
    pub persistent: Option<u32>,
    pub netmask: Option<Netmask>,
    pub ops: bool,
    pub schedflags: Option<String>,
    pub fallback: Option<Fallback>,
    pub fallbackcommand: Option<String>,
    pub quiescent: bool,
    pub cleanstop: bool,
    pub emailalert: Option<String>,
    pub emailalertfreq: u64,
    pub emailalertstatus: u8,
    pub smtp: Option<String>,
    pub monitorfile: Option<PathBuf>,
    pub monitorfile_line: usize,
    pub servicename: Option<String>,
    pub comment: Option<String>,
    pub load: Option<String>,
    pub sslverify: bool,
    pub sslcafile: Option<PathBuf>,
    /// Reuse one HTTP connection per real server between checks (extension).
    pub keepalive: bool,
    pub reals: Vec<Real>,
}

impl Virtual {
    /// `VIP:PORT` or the mark, as the Perl daemon writes it (`get_virtual`).
    pub fn name(&self) -> String {
        match self.addr {
            VirtualAddr::Inet(sa) => sa.to_string(),
            VirtualAddr::Fwmark(m) => m.to_string(),
        }
    }

    /// `tcp:VIP:PORT`, `udp:...`, `fwm:MARK`, `fwm6:MARK` (`get_virtual_id_str`).
    pub fn id(&self) -> String {
        match self.addr {
            VirtualAddr::Inet(sa) => format!("{}:{}", self.protocol.as_str(), sa),
            VirtualAddr::Fwmark(m) => format!("fwm{}:{}", if self.v6 { "6" } else { "" }, m),
        }
    }

    /// The virtual port (0 for firewall marks).
    pub fn port(&self) -> u16 {
        match self.addr {
            VirtualAddr::Inet(sa) => sa.port(),
            VirtualAddr::Fwmark(_) => 0,
        }
    }

    /// The port a check of `real` connects to: `checkport`, else the real's
    /// port, else the service's default port (`ld_checkport`).
    pub fn check_port(&self, real: &Real) -> Option<u16> {
        if let Some(p) = self.checkport {
            return Some(p);
        }
        if real.port > 0 {
            return Some(real.port);
        }
        self.service.default_port()
    }

    /// The request a check of `real` uses (per-real pair or the virtual's).
    pub fn request_for<'a>(&'a self, real: &'a Real) -> &'a str {
        real.request.as_deref().unwrap_or(&self.request)
    }

    /// The receive pattern a check of `real` uses.
    pub fn receive_for<'a>(&'a self, real: &'a Real) -> &'a str {
        real.receive.as_deref().unwrap_or(&self.receive)
    }

    /// Whether checks of this virtual negotiate a protocol at all.
    pub fn negotiates(&self) -> bool {
        matches!(
            self.checktype,
            CheckType::Negotiate | CheckType::Combined(_)
        )
    }
}

/// The whole effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    pub checktimeout: Option<u32>,
    pub negotiatetimeout: Option<u32>,
    pub checkinterval: u32,
    pub checkcount: u32,
    pub failurecount: u32,
    pub autoreload: bool,
    pub callback: Option<String>,
    pub fallback: Option<GlobalFallback>,
    pub fallback6: Option<GlobalFallback>,
    pub fallbackcommand: Option<String>,
    pub logfile: LogTarget,
    pub logfile_line: usize,
    pub emailalert: Option<String>,
    pub emailalertfreq: u64,
    pub emailalertstatus: u8,
    pub emailalertfrom: Option<String>,
    pub smtp: Option<String>,
    pub execute: Vec<String>,
    pub supervised: bool,
    pub fork: bool,
    pub quiescent: bool,
    pub readdquiescent: bool,
    pub cleanstop: bool,
    pub maintenancedir: Option<PathBuf>,
    pub maintenancedir_line: usize,
    pub sslverify: bool,
    pub sslcafile: Option<PathBuf>,
    pub keepalive: bool,
    pub virtuals: Vec<Virtual>,
    pub warnings: Vec<Warning>,
}

impl Config {
    /// The log target in effect while the file is parsed: the default.
    pub const DEFAULT_LOGFILE: &'static str = "/var/log/ldirectord.log";

    /// Total number of (virtual, real) pairs.
    pub fn real_count(&self) -> usize {
        self.virtuals.iter().map(|v| v.reals.len()).sum()
    }
}

/// Checks that need the file system, run after [`parse`]: the log file can
/// be opened for appending (unless `log_checked` is false, as in debug or
/// supervised mode), every monitor file can be opened for appending (it is
/// created, as the Perl daemon does), and the maintenance directory exists
/// (a warning). Returns the warnings to add.
pub fn check_files(cfg: &Config, check_logfile: bool) -> Result<Vec<Warning>, ConfigError> {
    let err = |line: usize, msg: String| ConfigError {
        file: cfg.file.display().to_string(),
        line,
        msg,
    };
    let mut warnings = Vec::new();
    if check_logfile {
        if let LogTarget::File(p) = &cfg.logfile {
            if cfg.logfile_line > 0 && open_append(p).is_err() {
                return Err(err(
                    cfg.logfile_line,
                    format!("unable to open logfile: {}", p.display()),
                ));
            }
        }
    }
    for v in &cfg.virtuals {
        if let Some(m) = &v.monitorfile {
            if let Err(e) = open_append(m) {
                return Err(err(
                    v.monitorfile_line,
                    format!("unable to open monitorfile {}: {e}", m.display()),
                ));
            }
        }
    }
    if let Some(d) = &cfg.maintenancedir {
        if !d.is_dir() {
            warnings.push(Warning {
                line: cfg.maintenancedir_line,
                msg: "maintenance directory does not exist".into(),
            });
        }
    }
    Ok(warnings)
}

fn open_append(p: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map(drop)
}

#[cfg(test)]
pub(crate) mod tests;
