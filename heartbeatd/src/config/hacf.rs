//! `ha.cf`: the cluster's membership, media, timing and logging settings.
//!
//! # Grammar (heartbeat 3.0.6's `parse_config`)
//!
//! * `#` starts a comment anywhere on a line; a carriage return ends it;
//!   blank lines are skipped;
//! * a line is `DIRECTIVE VALUES...`; directive names are case-sensitive;
//! * for most directives the values are split on blanks **and commas** and
//!   each value is applied in turn (`node a,b` = `node a b`;
//!   `keepalive 1 2` = `keepalive 2`);
//! * `ucast`, `ucast6`, `mcast`, `mcast6`, `ping_group`, `apiauth`,
//!   `respawn`, `failfast`, `stonith`, `stonith_host` (and heartbeatd's
//!   `stop_failure` and `agent_timeout`) take the rest of the line, split on
//!   blanks only;
//! * order matters for `udpport` and `baud`: like 3.0.6, every medium type
//!   fixes its port when its **first** line is read (`bcast`, `ucast` and
//!   `ucast6` each on their own), and `serial` fixes the baud rate at the
//!   first `serial` line; a later `udpport`/`baud` does not change them
//!   (a [`Notice`](super::Notice) says so). `mcast`/`mcast6` carry their
//!   own port.
//!
//! heartbeatd extension: a line ending in `\` continues on the next line
//! (3.0.6 has no continuation in ha.cf; a notice says so).
//!
//! # Differences from 3.0.6, all deliberate
//!
//! Refused here, accepted by 3.0.6 (they are mistakes that 3.0.6 ignores or
//! misreads): a directive without a value (`keepalive` alone); `bcast` with
//! no interface; a medium or node given twice; numbers with trailing junk
//! (`udpport 694x`, `rtprio 50x`: 3.0.6 uses `atoi`), ports above 65535;
//! time values `3.0.6` reads leniently (see [`parse_time`]); host names
//! instead of addresses in `ucast`/`ping` (3.0.6 resolves them once, at
//! start); `quorum_server`, `use_apphbd on`, `stonith`, `stonith_host`,
//! `failfast`, and `respawn` of heartbeat API clients (heartbeatd has no
//! client API). `env NAME` without `=VALUE` (undefined behaviour in 3.0.6).
//!
//! Accepted here, refused by 3.0.6: `crm_daemon_dir` (3.0.6 refuses it
//! before a `pacemaker` line because of an inverted check); `\`
//! continuations; heartbeatd's own directives (`stop_failure`,
//! `stop_retries`, `agent_timeout`); `apiauth` naming users that do not
//! exist (it has no effect here, so it is not checked).
//!
//! Checked by [`load`](super::load) rather than here because they depend
//! on the machine: `respawn` users and programs. Interfaces and serial
//! devices are checked when the media are opened.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::time::fmt_ms;
use super::{
    parse_time, AgentTimeouts, AutoFailback, Client, ConfigError, GenMethod, HaCf, Medium,
    MediumKind, Notice, PingNode, ScriptTimeout, StopFailure, UuidFrom, Verb,
};

/// What the parse needs from the machine: the default UDP port
/// (`ha-cluster` in `/etc/services`, else 694, as 3.0.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseEnv {
    pub default_udpport: u16,
}

/// heartbeat's registered port, used when neither `udpport` nor
/// `/etc/services` says otherwise.
pub const DEFAULT_UDPPORT: u16 = 694;

impl ParseEnv {
    /// Looks `ha-cluster/udp` up in `/etc/services` (3.0.6 uses
    /// `getservbyname`), 694 if it is not there.
    pub fn from_system() -> ParseEnv {
        let port = std::fs::read_to_string("/etc/services")
            .ok()
            .and_then(|t| services_udp_port(&t, "ha-cluster"));
        ParseEnv {
            default_udpport: port.unwrap_or(DEFAULT_UDPPORT),
        }
    }
}

impl Default for ParseEnv {
    fn default() -> Self {
        ParseEnv {
            default_udpport: DEFAULT_UDPPORT,
        }
    }
}

/// The UDP port of service `name` (or an alias) in `/etc/services` text.
pub fn services_udp_port(services: &str, name: &str) -> Option<u16> {
    services.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut w = line.split_whitespace();
        let svc = w.next()?;
        let (port, proto) = w.next()?.split_once('/')?;
        let aliases: Vec<&str> = w.collect();
        (proto == "udp" && (svc == name || aliases.contains(&name)))
            .then(|| port.parse().ok())
            .flatten()
    })
}

/// Parses `ha.cf` text with the machine's default UDP port; `path` is used
/// in messages. All errors are collected, each with its line.
pub fn parse_ha_cf(path: &Path, text: &str) -> Result<HaCf, Vec<ConfigError>> {
    parse_ha_cf_with(path, text, &ParseEnv::from_system())
}

/// [`parse_ha_cf`] with an explicit environment (tests).
pub fn parse_ha_cf_with(path: &Path, text: &str, env: &ParseEnv) -> Result<HaCf, Vec<ConfigError>> {
    let mut p = Parser::new(path, env);
    for (line, text) in logical_lines(text, &mut p) {
        p.line(line, &text);
    }
    p.finish()
}

const WHITESPACE: &[char] = &[' ', '\t', '\n', '\r', '\x0c'];
const DELIMS: &[char] = &[',', ' ', '\t', '\n', '\r', '\x0c'];

/// Physical lines into (first line number, text without comment), joining
/// `\` continuations.
fn logical_lines(text: &str, p: &mut Parser) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let lineno = i + 1;
        let mut line = raw;
        if let Some(c) = line.find('#') {
            line = &line[..c];
        }
        if let Some(c) = line.find(['\r', '\n']) {
            line = &line[..c];
        }
        let trimmed = line.trim_end_matches(WHITESPACE);
        let (start, mut acc) = pending.take().unwrap_or((lineno, String::new()));
        if let Some(body) = trimmed.strip_suffix('\\') {
            acc.push_str(body);
            acc.push(' ');
            if !p.continuation_noticed {
                p.continuation_noticed = true;
                p.notice(
                    Some(lineno),
                    "a line ending in \"\\\" continues on the next line: a heartbeatd \
                     extension (heartbeat 3.0.6 reads each line on its own and would \
                     refuse this file)",
                );
            }
            pending = Some((start, acc));
        } else {
            acc.push_str(line);
            out.push((start, acc));
        }
    }
    if let Some((start, acc)) = pending {
        p.error(
            Some(start),
            "the last line ends with \"\\\" (a continuation) but the file ends there",
        );
        out.push((start, acc));
    }
    out
}

/// Heartbeat API clients: programs that need heartbeat's client API
/// (`/run/heartbeat/register`), which heartbeatd does not provide.
const API_CLIENTS: &[&str] = &[
    "ipfail",
    "ccm",
    "cib",
    "crmd",
    "attrd",
    "stonithd",
    "mgmtd",
    "cibmon",
    "lha-snmpagent",
    "hbagent",
    "dopd",
    "drbd-peer-outdater",
    "pingd",
    "api_test",
    "ccm_testclient",
    "clmtest",
    "quorumd",
];

const PACEMAKER_HINT: &str = "use Pacemaker with our OCF agents \
     (/usr/lib/ocf/resource.d/heartbeat-rs) for clusters managed by Pacemaker; \
     heartbeatd runs haresources (v1) clusters only";

const BAUD_RATES: &[u32] = &[9600, 19200, 38400, 57600, 115200, 230400, 460800];

const FACILITIES: &[&str] = &[
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "mark", "news", "security",
    "syslog", "user", "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
    "local7",
];

/// Every directive name heartbeatd knows (3.0.6's and its own).
const KNOWN: &[&str] = &[
    "node",
    "bcast",
    "udp",
    "ucast",
    "ucast6",
    "mcast",
    "mcast6",
    "serial",
    "ping",
    "ping6",
    "ping_group",
    "udpport",
    "keepalive",
    "deadtime",
    "warntime",
    "initdead",
    "deadping",
    "auto_failback",
    "nice_failback",
    "hopfudge",
    "baud",
    "cluster",
    "hbgenmethod",
    "realtime",
    "rtprio",
    "debug",
    "logfile",
    "debugfile",
    "logfacility",
    "use_logd",
    "conn_logd_time",
    "syslogmsgfmt",
    "log_badpack",
    "msgfmt",
    "compression",
    "compression_threshold",
    "traditional_compression",
    "max_rexmit_delay",
    "coredumps",
    "coreroot",
    "watchdog",
    "stonith",
    "stonith_host",
    "respawn",
    "failfast",
    "apiauth",
    "autojoin",
    "uuidfrom",
    "env",
    "memreserve",
    "use_apphbd",
    "crm",
    "pacemaker",
    "crm_daemon_dir",
    "crmd_spawns_pengine",
    "record_config_changes",
    "record_pengine_inputs",
    "enable_config_writes",
    "quorum_server",
    "normalpoll",
    "stop_failure",
    "stop_retries",
    "agent_timeout",
];

/// Directives that take one value (several on a line: each applied, the
/// last wins).
const SINGLE: &[&str] = &[
    "udpport",
    "keepalive",
    "deadtime",
    "warntime",
    "initdead",
    "deadping",
    "auto_failback",
    "nice_failback",
    "hopfudge",
    "baud",
    "cluster",
    "hbgenmethod",
    "realtime",
    "rtprio",
    "debug",
    "logfile",
    "debugfile",
    "logfacility",
    "use_logd",
    "conn_logd_time",
    "syslogmsgfmt",
    "log_badpack",
    "msgfmt",
    "compression",
    "compression_threshold",
    "traditional_compression",
    "max_rexmit_delay",
    "coredumps",
    "coreroot",
    "watchdog",
    "autojoin",
    "uuidfrom",
    "memreserve",
    "use_apphbd",
    "crm",
    "pacemaker",
    "crm_daemon_dir",
    "crmd_spawns_pengine",
    "record_config_changes",
    "record_pengine_inputs",
    "enable_config_writes",
    "stop_retries",
];

/// A value and the line that set it.
type At<T> = Option<(T, usize)>;

struct Parser<'a> {
    path: &'a Path,
    errors: Vec<ConfigError>,
    notices: Vec<Notice>,
    continuation_noticed: bool,

    nodes: Vec<(String, usize)>,
    media: Vec<Medium>,
    ping: Vec<PingNode>,
    udpport: u16,
    udpport_line: Option<usize>,
    /// medium type → (port, first line) fixed at its first line
    port_latch: HashMap<&'static str, (u16, usize)>,
    baud: At<u32>,
    serial_latch: At<u32>,

    keepalive: At<Duration>,
    deadtime: At<Duration>,
    warntime: At<Duration>,
    initdead: At<Duration>,
    deadping: At<Duration>,
    auto_failback: At<AutoFailback>,
    hopfudge: u32,
    cluster: String,
    hbgenmethod: GenMethod,
    realtime: bool,
    rtprio: Option<i32>,
    debug: u32,
    logfile: Option<PathBuf>,
    debugfile: Option<PathBuf>,
    logfacility: At<Option<String>>,
    use_logd: At<bool>,
    syslogmsgfmt: bool,
    log_badpack: bool,
    max_rexmit_delay: Duration,
    coredumps: bool,
    coreroot: Option<PathBuf>,
    watchdog: At<PathBuf>,
    respawn: Vec<Client>,
    env: Vec<(String, String)>,
    uuidfrom: UuidFrom,
    pacemaker: At<()>,
    stop_failure: StopFailure,
    stop_retries: u32,
    agent_timeouts: AgentTimeouts,
}

impl<'a> Parser<'a> {
    fn new(path: &'a Path, env: &ParseEnv) -> Parser<'a> {
        Parser {
            path,
            errors: Vec::new(),
            notices: Vec::new(),
            continuation_noticed: false,
            nodes: Vec::new(),
            media: Vec::new(),
            ping: Vec::new(),
            udpport: env.default_udpport,
            udpport_line: None,
            port_latch: HashMap::new(),
            baud: None,
            serial_latch: None,
            keepalive: None,
            deadtime: None,
            warntime: None,
            initdead: None,
            deadping: None,
            auto_failback: None,
            hopfudge: 1,
            cluster: "linux-ha".into(),
            hbgenmethod: GenMethod::File,
            realtime: true,
            rtprio: None,
            debug: 0,
            logfile: None,
            debugfile: None,
            logfacility: None,
            use_logd: None,
            syslogmsgfmt: true,
            log_badpack: true,
            max_rexmit_delay: Duration::from_millis(250),
            coredumps: true,
            coreroot: None,
            watchdog: None,
            respawn: Vec::new(),
            env: Vec::new(),
            uuidfrom: UuidFrom::File,
            pacemaker: None,
            stop_failure: StopFailure::Hold,
            stop_retries: 10,
            agent_timeouts: AgentTimeouts::default(),
        }
    }

    fn error(&mut self, line: Option<usize>, msg: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.path.to_path_buf(),
            line,
            msg: msg.into(),
        });
    }

    fn notice(&mut self, line: Option<usize>, msg: impl Into<String>) {
        self.notices.push(Notice {
            file: self.path.to_path_buf(),
            line,
            msg: msg.into(),
        });
    }

    /// One logical line.
    fn line(&mut self, n: usize, text: &str) {
        let text = text.trim_start_matches(WHITESPACE);
        if text.is_empty() {
            return;
        }
        let dlen = text.find(WHITESPACE).unwrap_or(text.len());
        let (directive, rest) = text.split_at(dlen);
        let rest = rest.trim_start_matches(DELIMS).trim_end_matches(WHITESPACE);
        if !KNOWN.contains(&directive) {
            let hint = if KNOWN.contains(&directive.to_ascii_lowercase().as_str()) {
                format!(
                    " (directive names are case-sensitive: did you mean \"{}\"?)",
                    directive.to_ascii_lowercase()
                )
            } else {
                String::new()
            };
            self.error(Some(n), format!("unknown directive \"{directive}\"{hint}"));
            return;
        }
        match directive {
            "ucast" | "ucast6" | "mcast" | "mcast6" | "ping_group" | "stonith" | "stonith_host"
            | "apiauth" | "respawn" | "failfast" | "stop_failure" | "agent_timeout" => {
                self.whole_line(n, directive, rest)
            }
            "normalpoll" => self.error(
                Some(n),
                "normalpoll is compiled out of heartbeat 3.0.6 (\"Illegal directive\" there \
                 too) and means nothing to heartbeatd: remove the line",
            ),
            _ => {
                let values: Vec<&str> = rest.split(DELIMS).filter(|v| !v.is_empty()).collect();
                if values.is_empty() {
                    self.error(Some(n), format!("{directive} needs a value"));
                    return;
                }
                if values.len() > 1 && SINGLE.contains(&directive) {
                    self.notice(
                        Some(n),
                        format!(
                            "{directive} has {} values ({}); like heartbeat 3.0.6, each is \
                             applied in turn and the last one ({}) stays",
                            values.len(),
                            values.join(" "),
                            values[values.len() - 1]
                        ),
                    );
                }
                for v in values {
                    self.option(n, directive, v);
                }
            }
        }
    }

    fn boolean(&mut self, n: usize, directive: &str, v: &str) -> Option<bool> {
        let r = parse_bool(v);
        if r.is_none() {
            self.error(
                Some(n),
                format!(
                    "{directive} {v}: not a boolean (use on/off, yes/no, true/false, y/n or 1/0)"
                ),
            );
        }
        r
    }

    fn time(&mut self, n: usize, directive: &str, v: &str) -> Option<Duration> {
        match parse_time(v) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(Some(n), format!("{directive}: {e}"));
                None
            }
        }
    }

    fn int<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        n: usize,
        directive: &str,
        v: &str,
        lo: T,
        hi: T,
    ) -> Option<T> {
        match v.parse::<T>() {
            Ok(x) if x >= lo && x <= hi => Some(x),
            _ => {
                self.error(
                    Some(n),
                    format!("{directive} {v}: expected a whole number from {lo} to {hi}"),
                );
                None
            }
        }
    }

    fn no_effect(&mut self, n: usize, directive: &str, v: &str, why: &str) {
        self.notice(
            Some(n),
            format!("{directive} {v}: accepted, no effect: {why}"),
        );
    }

    /// One value of a blank/comma-separated directive.
    fn option(&mut self, n: usize, directive: &str, v: &str) {
        match directive {
            "node" => {
                let name = v.to_ascii_lowercase();
                if name.len() >= 100 {
                    self.error(
                        Some(n),
                        format!("node name {v:?} is too long (max 99 bytes)"),
                    );
                } else if let Some((_, first)) = self.nodes.iter().find(|(x, _)| *x == name) {
                    let first = *first;
                    self.error(
                        Some(n),
                        format!("node {name} is already listed on line {first}"),
                    );
                } else {
                    self.nodes.push((name, n));
                }
            }
            "bcast" | "udp" => {
                if directive == "udp" {
                    self.notice(
                        Some(n),
                        format!("\"udp {v}\" is the old name of \"bcast {v}\"; write bcast"),
                    );
                }
                let port = self.latch_port("bcast", n);
                self.add_medium(
                    n,
                    MediumKind::Bcast {
                        iface: v.to_owned(),
                        port,
                    },
                );
            }
            "serial" => {
                if !v.starts_with('/') {
                    self.error(
                        Some(n),
                        format!("serial port {v:?} is not a full path name (e.g. /dev/ttyS0)"),
                    );
                    return;
                }
                let baud = match self.serial_latch {
                    Some((b, _)) => b,
                    None => {
                        let b = self.baud.map(|(b, _)| b).unwrap_or(19200);
                        self.serial_latch = Some((b, n));
                        b
                    }
                };
                self.add_medium(
                    n,
                    MediumKind::Serial {
                        device: PathBuf::from(v),
                        baud,
                    },
                );
            }
            "ping" | "ping6" => {
                let ip = if directive == "ping" {
                    v.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
                } else {
                    v.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
                };
                let Some(ip) = ip else {
                    let fam = if directive == "ping" { "IPv4" } else { "IPv6" };
                    self.error(
                        Some(n),
                        format!(
                            "{directive} {v}: not an {fam} address (heartbeatd does not \
                             resolve host names in ha.cf)"
                        ),
                    );
                    return;
                };
                self.add_ping(n, v.to_owned(), vec![ip], false);
            }
            "udpport" => {
                let Some(port) = self.int::<u16>(n, directive, v, 1, u16::MAX) else {
                    return;
                };
                let mut kinds: Vec<_> = self
                    .port_latch
                    .iter()
                    .filter(|(_, (p, _))| *p != port)
                    .map(|(k, (p, l))| format!("{k} keeps port {p} (fixed on line {l})"))
                    .collect();
                kinds.sort();
                if !kinds.is_empty() {
                    self.notice(
                        Some(n),
                        format!(
                            "udpport {port} comes after media lines that already fixed \
                             their port, as in heartbeat 3.0.6: {}; put udpport before \
                             the media lines",
                            kinds.join(", ")
                        ),
                    );
                }
                self.udpport = port;
                self.udpport_line = Some(n);
            }
            "baud" => {
                let Some(b) = v.parse::<u32>().ok().filter(|b| BAUD_RATES.contains(b)) else {
                    self.error(
                        Some(n),
                        format!(
                            "baud {v}: not a supported rate (9600, 19200, 38400, 57600, \
                             115200, 230400 or 460800)"
                        ),
                    );
                    return;
                };
                if let Some((_, first)) = self.baud {
                    self.error(
                        Some(n),
                        format!("baud is already set on line {first} (heartbeat allows it once)"),
                    );
                    return;
                }
                if let Some((used, l)) = self.serial_latch {
                    if used != b {
                        self.notice(
                            Some(n),
                            format!(
                                "baud {b} comes after the first serial line (line {l}), which \
                                 already fixed {used} baud, as in heartbeat 3.0.6; put baud \
                                 before the serial lines"
                            ),
                        );
                    }
                }
                self.baud = Some((b, n));
            }
            "keepalive" => {
                if let Some(d) = self.time(n, directive, v) {
                    if d.is_zero() {
                        self.error(Some(n), format!("keepalive {v}: must be at least 1ms"));
                    } else {
                        self.keepalive = Some((d, n));
                    }
                }
            }
            "deadtime" => {
                if let Some(d) = self.time(n, directive, v) {
                    self.deadtime = Some((d, n));
                }
            }
            "warntime" => {
                if let Some(d) = self.time(n, directive, v) {
                    if d.is_zero() {
                        self.error(Some(n), format!("warntime {v}: must be at least 1ms"));
                    } else {
                        self.warntime = Some((d, n));
                    }
                }
            }
            "initdead" => {
                if let Some(d) = self.time(n, directive, v) {
                    self.initdead = Some((d, n));
                }
            }
            "deadping" => {
                if let Some(d) = self.time(n, directive, v) {
                    self.deadping = Some((d, n));
                }
            }
            "conn_logd_time" => {
                if let Some(d) = self.time(n, directive, v) {
                    if d.is_zero() {
                        self.error(Some(n), format!("conn_logd_time {v}: must be at least 1ms"));
                    } else {
                        self.no_effect(n, directive, v, "heartbeatd does not use logd");
                    }
                }
            }
            "auto_failback" => {
                let af = if v.eq_ignore_ascii_case("legacy") {
                    Some(AutoFailback::Legacy)
                } else {
                    match parse_bool(v) {
                        Some(true) => Some(AutoFailback::On),
                        Some(false) => Some(AutoFailback::Off),
                        None => None,
                    }
                };
                match af {
                    Some(af) => self.auto_failback = Some((af, n)),
                    None => {
                        self.error(Some(n), format!("auto_failback {v}: use on, off or legacy"))
                    }
                }
            }
            "nice_failback" => {
                if self.boolean(n, directive, v).is_none() {
                    return;
                }
                // 3.0.6 ignores the value: it becomes "off" if an
                // auto_failback on|off came before, else "legacy".
                let af = match self.auto_failback {
                    Some((AutoFailback::On | AutoFailback::Off, _)) => AutoFailback::Off,
                    _ => AutoFailback::Legacy,
                };
                let name = if af == AutoFailback::Off {
                    "off"
                } else {
                    "legacy"
                };
                self.notice(
                    Some(n),
                    format!(
                        "nice_failback is obsolete; like heartbeat 3.0.6 (which ignores its \
                         value), \"nice_failback {v}\" here means auto_failback {name}; \
                         write \"auto_failback on|off|legacy\" instead"
                    ),
                );
                self.auto_failback = Some((af, n));
            }
            "hopfudge" => {
                if let Some(h) = self.int::<u32>(n, directive, v, 0, 255) {
                    self.hopfudge = h;
                }
            }
            "cluster" => self.cluster = v.to_owned(),
            "hbgenmethod" => match v {
                "file" => self.hbgenmethod = GenMethod::File,
                "time" => self.hbgenmethod = GenMethod::Time,
                _ => self.error(Some(n), format!("hbgenmethod {v}: use file or time")),
            },
            "realtime" => {
                if let Some(b) = self.boolean(n, directive, v) {
                    self.realtime = b;
                }
            }
            "rtprio" => {
                if let Some(p) = self.int::<i32>(n, directive, v, 1, 99) {
                    self.rtprio = Some(p);
                }
            }
            "debug" => {
                if let Some(d) = self.int::<u32>(n, directive, v, 0, 255) {
                    self.debug = d;
                }
            }
            "logfile" => self.logfile = Some(PathBuf::from(v)),
            "debugfile" => self.debugfile = Some(PathBuf::from(v)),
            "logfacility" => {
                if v == "none" {
                    self.logfacility = Some((None, n));
                } else if FACILITIES.contains(&v) {
                    self.logfacility = Some((Some(v.to_owned()), n));
                } else {
                    self.error(
                        Some(n),
                        format!(
                            "logfacility {v}: not a syslog facility (e.g. daemon, local0 .. \
                             local7, or none; names are lower case)"
                        ),
                    );
                }
            }
            "use_logd" => {
                if let Some(b) = self.boolean(n, directive, v) {
                    self.use_logd = Some((b, n));
                }
            }
            "syslogmsgfmt" => {
                if let Some(b) = self.boolean(n, directive, v) {
                    self.syslogmsgfmt = b;
                }
            }
            "log_badpack" => {
                if let Some(b) = self.boolean(n, directive, v) {
                    self.log_badpack = b;
                }
            }
            "coredumps" => {
                if let Some(b) = self.boolean(n, directive, v) {
                    self.coredumps = b;
                }
            }
            "coreroot" => self.coreroot = Some(PathBuf::from(v)),
            "msgfmt" => {
                if v != "classic" && v != "netstring" {
                    self.error(Some(n), format!("msgfmt {v}: use classic or netstring"));
                }
                // Either way heartbeat sends netstring packets on the media.
            }
            "max_rexmit_delay" => {
                let ms = v.strip_suffix("ms").unwrap_or(v);
                match ms.parse::<u64>() {
                    Ok(ms) if ms > 0 => self.max_rexmit_delay = Duration::from_millis(ms),
                    _ => self.error(
                        Some(n),
                        format!(
                            "max_rexmit_delay {v}: expected a number of milliseconds above 0 \
                             (e.g. 250)"
                        ),
                    ),
                }
            }
            "watchdog" => {
                if let Some((_, first)) = self.watchdog {
                    self.error(
                        Some(n),
                        format!("watchdog is already set on line {first} (one device only)"),
                    );
                } else {
                    self.watchdog = Some((PathBuf::from(v), n));
                }
            }
            "autojoin" => {
                if v.eq_ignore_ascii_case("none") {
                } else if v.eq_ignore_ascii_case("other") || v.eq_ignore_ascii_case("any") {
                    self.error(
                        Some(n),
                        format!(
                            "autojoin {v}: nodes joining at run time conflict with \
                             haresources resource management (3.0.6 refuses it too unless \
                             Pacemaker runs); list every node with \"node\" and use \
                             \"autojoin none\""
                        ),
                    );
                } else {
                    self.error(Some(n), format!("autojoin {v}: use none, other or any"));
                }
            }
            "uuidfrom" => match v {
                "file" => self.uuidfrom = UuidFrom::File,
                "nodename" => self.uuidfrom = UuidFrom::Nodename,
                _ => self.error(Some(n), format!("uuidfrom {v}: use file or nodename")),
            },
            "env" => match v.split_once('=') {
                Some((name, value)) if !name.is_empty() => {
                    self.env.push((name.to_owned(), value.to_owned()))
                }
                _ => self.error(
                    Some(n),
                    format!("env {v}: expected NAME=VALUE (exported as HA_NAME)"),
                ),
            },
            "memreserve" => {
                if self
                    .int::<u32>(n, directive, v, 1, i32::MAX as u32)
                    .is_some()
                {
                    self.no_effect(
                        n,
                        directive,
                        v,
                        "heartbeatd needs no preallocated memory (it locks itself in memory \
                         with realtime on)",
                    );
                }
            }
            "compression" => {
                if v == "zlib" || v == "bz2" {
                    self.no_effect(
                        n,
                        directive,
                        v,
                        "heartbeatd's messages stay far below the compression threshold",
                    );
                } else {
                    self.error(Some(n), format!("compression {v}: use zlib or bz2"));
                }
            }
            "compression_threshold" => {
                if self
                    .int::<u32>(n, directive, v, 1, i32::MAX as u32)
                    .is_some()
                {
                    self.no_effect(
                        n,
                        directive,
                        v,
                        "heartbeatd's messages stay far below the compression threshold",
                    );
                }
            }
            "traditional_compression" => {
                if self.boolean(n, directive, v).is_some() {
                    self.no_effect(
                        n,
                        directive,
                        v,
                        "heartbeatd's messages stay far below the compression threshold",
                    );
                }
            }
            "use_apphbd" => match self.boolean(n, directive, v) {
                Some(false) => self.no_effect(n, directive, v, "apphbd is not used anyway"),
                Some(true) => self.error(
                    Some(n),
                    "use_apphbd on: apphbd is not supported by heartbeatd; supervise it \
                     with systemd or init instead, and remove the line",
                ),
                None => {}
            },
            "crm" | "pacemaker" => {
                if let Some((_, first)) = self.pacemaker {
                    self.error(
                        Some(n),
                        format!("crm/pacemaker is already given on line {first} (once only)"),
                    );
                    return;
                }
                self.pacemaker = Some(((), n));
                let enabling = ["minimal", "manual", "respawn", "ccm-only", "valgrind"]
                    .iter()
                    .any(|m| v.eq_ignore_ascii_case(m));
                match (enabling, parse_bool(v)) {
                    (false, Some(false)) => {
                        self.no_effect(n, directive, v, "this is the default (haresources mode)")
                    }
                    (true, _) | (_, Some(true)) => self.error(
                        Some(n),
                        format!(
                            "{directive} {v}: heartbeatd does not run Pacemaker: {PACEMAKER_HINT}"
                        ),
                    ),
                    (false, None) => self.error(
                        Some(n),
                        format!("{directive} {v}: use off (on/respawn/minimal are not supported)"),
                    ),
                }
            }
            "crm_daemon_dir" => {
                self.no_effect(n, directive, v, "Pacemaker-only setting");
            }
            "crmd_spawns_pengine"
            | "record_config_changes"
            | "record_pengine_inputs"
            | "enable_config_writes" => {
                if self.boolean(n, directive, v).is_some() {
                    self.no_effect(n, directive, v, "Pacemaker-only setting");
                }
            }
            "quorum_server" => self.error(
                Some(n),
                format!(
                    "quorum_server {v}: quorum servers are a Pacemaker (CRM) feature, not \
                     supported by heartbeatd: {PACEMAKER_HINT}"
                ),
            ),
            "stop_retries" => {
                if let Some(r) = self.int::<u32>(n, directive, v, 0, 10_000) {
                    self.stop_retries = r;
                    self.extension_notice(n, directive);
                }
            }
            other => unreachable!("directive {other} has no handler"),
        }
    }

    fn extension_notice(&mut self, n: usize, directive: &str) {
        self.notice(
            Some(n),
            format!(
                "{directive} is a heartbeatd extension; heartbeat 3.0.6 refuses it \
                 (\"Illegal directive\"), so keep it out of ha.cf files shared with 3.0.6 nodes"
            ),
        );
    }

    /// Port of the first line of medium type `kind`, fixed at that line.
    fn latch_port(&mut self, kind: &'static str, n: usize) -> u16 {
        let current = self.udpport;
        let (port, first) = *self.port_latch.entry(kind).or_insert((current, n));
        if port != current {
            let from = self
                .udpport_line
                .map(|l| format!(" (set on line {l})"))
                .unwrap_or_default();
            self.notice(
                Some(n),
                format!(
                    "this {kind} line uses port {port}, fixed by the first {kind} line \
                     (line {first}), not udpport {current}{from}: heartbeat 3.0.6 does the same"
                ),
            );
        }
        port
    }

    fn add_medium(&mut self, n: usize, kind: MediumKind) {
        let same = |a: &MediumKind, b: &MediumKind| match (a, b) {
            (MediumKind::Bcast { iface: x, .. }, MediumKind::Bcast { iface: y, .. }) => x == y,
            (
                MediumKind::Ucast {
                    iface: x, peer: p, ..
                },
                MediumKind::Ucast {
                    iface: y, peer: q, ..
                },
            ) => x == y && p == q,
            (
                MediumKind::Ucast6 {
                    iface: x, peer: p, ..
                },
                MediumKind::Ucast6 {
                    iface: y, peer: q, ..
                },
            ) => x == y && p == q,
            (
                MediumKind::Mcast {
                    iface: x,
                    group: g,
                    port: p,
                    ..
                },
                MediumKind::Mcast {
                    iface: y,
                    group: h,
                    port: q,
                    ..
                },
            ) => x == y && g == h && p == q,
            (
                MediumKind::Mcast6 {
                    iface: x,
                    group: g,
                    port: p,
                    ..
                },
                MediumKind::Mcast6 {
                    iface: y,
                    group: h,
                    port: q,
                    ..
                },
            ) => x == y && g == h && p == q,
            (MediumKind::Serial { device: x, .. }, MediumKind::Serial { device: y, .. }) => x == y,
            _ => false,
        };
        if let Some(m) = self.media.iter().find(|m| same(&m.kind, &kind)) {
            let first = m.line;
            self.error(
                Some(n),
                format!(
                    "this medium ({}) is already defined on line {first}",
                    describe(&kind)
                ),
            );
            return;
        }
        self.media.push(Medium { line: n, kind });
    }

    fn add_ping(&mut self, n: usize, name: String, targets: Vec<IpAddr>, group: bool) {
        if let Some(p) = self.ping.iter().find(|p| p.name == name) {
            let first = p.line;
            self.error(
                Some(n),
                format!("ping node {name} is already defined on line {first}"),
            );
            return;
        }
        self.ping.push(PingNode {
            line: n,
            name,
            targets,
            group,
        });
    }

    /// Directives that take the rest of the line.
    fn whole_line(&mut self, n: usize, directive: &str, rest: &str) {
        let w: Vec<&str> = rest.split(WHITESPACE).filter(|s| !s.is_empty()).collect();
        match directive {
            "ucast" | "ucast6" => {
                let (Some(iface), Some(peer)) = (w.first(), w.get(1)) else {
                    self.error(
                        Some(n),
                        format!("{directive} needs an interface and the peer's address: \"{directive} IF ADDRESS\""),
                    );
                    return;
                };
                self.extra_words(n, directive, &w, 2);
                let port = self.latch_port(
                    if directive == "ucast" {
                        "ucast"
                    } else {
                        "ucast6"
                    },
                    n,
                );
                let iface = (*iface).to_owned();
                let kind = if directive == "ucast" {
                    match peer.parse::<Ipv4Addr>() {
                        Ok(peer) => MediumKind::Ucast { iface, peer, port },
                        Err(_) => {
                            self.error(
                                Some(n),
                                format!(
                                    "ucast {iface} {peer}: not an IPv4 address (heartbeatd does \
                                     not resolve host names in ha.cf; write the address)"
                                ),
                            );
                            return;
                        }
                    }
                } else {
                    match peer.parse::<Ipv6Addr>() {
                        Ok(peer) => MediumKind::Ucast6 { iface, peer, port },
                        Err(_) => {
                            self.error(
                                Some(n),
                                format!("ucast6 {iface} {peer}: not an IPv6 address"),
                            );
                            return;
                        }
                    }
                };
                self.add_medium(n, kind);
            }
            "mcast" | "mcast6" => self.mcast(n, directive, &w),
            "ping_group" => {
                let Some(name) = w.first() else {
                    self.error(
                        Some(n),
                        "ping_group needs a name and addresses: \"ping_group NAME IP...\"",
                    );
                    return;
                };
                let mut targets = Vec::new();
                for a in &w[1..] {
                    match a.parse::<Ipv4Addr>() {
                        Ok(ip) => targets.push(IpAddr::V4(ip)),
                        Err(_) => {
                            self.error(
                                Some(n),
                                format!(
                                    "ping_group {name}: {a} is not an IPv4 address \
                                     (heartbeatd does not resolve host names in ha.cf)"
                                ),
                            );
                            return;
                        }
                    }
                }
                if targets.is_empty() {
                    self.error(Some(n), format!("ping_group {name} has no addresses"));
                    return;
                }
                self.add_ping(n, (*name).to_owned(), targets, true);
            }
            "stonith" | "stonith_host" => self.error(
                Some(n),
                format!(
                    "{directive}: STONITH plugins are not supported by heartbeatd; to fence \
                     a node whose resources cannot be stopped use \"stop_failure exec \
                     /path/to/fence-script ARGS\" (or \"stop_failure reboot\"), or run \
                     Pacemaker with fencing: {PACEMAKER_HINT}"
                ),
            ),
            "failfast" => self.error(
                Some(n),
                "failfast (reboot the node when a client dies) is not supported by \
                 heartbeatd, which has no client API; run the program as a systemd \
                 service with FailureAction=reboot if you need that",
            ),
            "apiauth" => self.apiauth(n, &w),
            "respawn" => self.respawn(n, &w),
            "stop_failure" => self.stop_failure(n, &w),
            "agent_timeout" => self.agent_timeout(n, &w),
            other => unreachable!("directive {other} is not whole-line"),
        }
    }

    fn extra_words(&mut self, n: usize, directive: &str, w: &[&str], used: usize) {
        if w.len() > used {
            self.notice(
                Some(n),
                format!(
                    "{directive}: the extra words \"{}\" are ignored (as by heartbeat 3.0.6)",
                    w[used..].join(" ")
                ),
            );
        }
    }

    fn mcast(&mut self, n: usize, directive: &str, w: &[&str]) {
        let v6 = directive == "mcast6";
        let usage = if v6 {
            "mcast6 IF GROUP PORT HOPS LOOP (e.g. mcast6 eth0 ff12::1:2:3:4 694 1 0)"
        } else {
            "mcast IF GROUP PORT TTL LOOP (e.g. mcast eth0 225.0.0.1 694 1 0)"
        };
        if w.len() < 5 {
            let missing = [
                "an interface",
                "a group",
                "a port",
                if v6 { "hops" } else { "a ttl" },
                "loop",
            ][w.len()];
            self.error(
                Some(n),
                format!("{directive}: missing {missing}; the line is {usage}"),
            );
            return;
        }
        self.extra_words(n, directive, w, 5);
        let iface = w[0].to_owned();
        let port = match w[2].parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => {
                self.error(Some(n), format!("{directive} {iface}: bad port {}", w[2]));
                return;
            }
        };
        let ttl = match w[3].parse::<u8>() {
            Ok(t) if t <= 4 => t,
            _ => {
                let what = if v6 { "hops" } else { "ttl" };
                self.error(
                    Some(n),
                    format!(
                        "{directive} {iface}: bad {what} {}: heartbeat 3.0.6 allows 0 to 4",
                        w[3]
                    ),
                );
                return;
            }
        };
        let loopback = match w[4] {
            "0" => false,
            "1" => true,
            other => {
                self.error(
                    Some(n),
                    format!("{directive} {iface}: bad loop {other}: use 0 or 1"),
                );
                return;
            }
        };
        if ttl == 0 {
            self.notice(
                Some(n),
                format!("{directive} {iface}: a ttl/hops of 0 keeps the packets on this host"),
            );
        }
        let kind = if v6 {
            match w[1].parse::<Ipv6Addr>() {
                Ok(g) if g.is_multicast() => MediumKind::Mcast6 {
                    iface,
                    group: g,
                    port,
                    hops: ttl,
                    loopback,
                },
                _ => {
                    self.error(
                        Some(n),
                        format!("mcast6 {iface}: bad group {}: not an IPv6 multicast address (ff00::/8)", w[1]),
                    );
                    return;
                }
            }
        } else {
            match w[1].parse::<Ipv4Addr>() {
                Ok(g) if g.is_multicast() => MediumKind::Mcast {
                    iface,
                    group: g,
                    port,
                    ttl,
                    loopback,
                },
                _ => {
                    self.error(
                        Some(n),
                        format!(
                            "mcast {iface}: bad group {}: not an IPv4 multicast address \
                             (224.0.0.0 to 239.255.255.255)",
                            w[1]
                        ),
                    );
                    return;
                }
            }
        };
        self.add_medium(n, kind);
    }

    fn apiauth(&mut self, n: usize, w: &[&str]) {
        let syntax = "the line is \"apiauth CLIENT [uid=USER,...] [gid=GROUP,...]\"";
        let Some(client) = w.first() else {
            self.error(Some(n), format!("apiauth: no client name; {syntax}"));
            return;
        };
        let (mut uid, mut gid) = (false, false);
        for word in &w[1..] {
            let (seen, what) = if word.starts_with("uid=") {
                (&mut uid, "uid")
            } else if word.starts_with("gid=") {
                (&mut gid, "gid")
            } else {
                self.error(
                    Some(n),
                    format!("apiauth {client}: {word:?} is not uid=... or gid=...; {syntax}"),
                );
                return;
            };
            if *seen {
                self.error(Some(n), format!("apiauth {client}: {what}= given twice"));
                return;
            }
            *seen = true;
        }
        if !uid && !gid {
            self.error(
                Some(n),
                format!("apiauth {client}: needs uid= or gid=; {syntax}"),
            );
            return;
        }
        self.notice(
            Some(n),
            format!(
                "apiauth {client}: accepted, no effect: heartbeatd has no client API \
                 (cl_status, hb_standby and hb_takeover use a control socket open to root \
                 and group haclient)"
            ),
        );
    }

    fn respawn(&mut self, n: usize, w: &[&str]) {
        let (Some(user), Some(prog)) = (w.first(), w.get(1)) else {
            self.error(
                Some(n),
                "respawn needs a user and a program: \"respawn USER /path/to/program [ARGS]\"",
            );
            return;
        };
        if !prog.starts_with('/') {
            self.error(
                Some(n),
                format!("respawn {user} {prog}: the program must be a full path name"),
            );
            return;
        }
        let path = PathBuf::from(prog);
        let base = path
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_default();
        if API_CLIENTS.contains(&base.as_str()) {
            let extra = if base == "ipfail" {
                "; for ipfail's job (fail over when the uplink is lost) use ping nodes \
                 with a resource agent that checks them, or Pacemaker"
            } else {
                ""
            };
            self.error(
                Some(n),
                format!(
                    "respawn {user} {prog}: {base} is a heartbeat API client, and heartbeatd \
                     has no client API, so it cannot run; remove the line{extra}"
                ),
            );
            return;
        }
        self.respawn.push(Client {
            line: n,
            user: (*user).to_owned(),
            path,
            args: w[2..].iter().map(|s| (*s).to_owned()).collect(),
        });
    }

    fn stop_failure(&mut self, n: usize, w: &[&str]) {
        let usage = "the line is \"stop_failure hold\", \"stop_failure reboot\" or \
                     \"stop_failure exec /path/to/command [ARGS]\"";
        match w.first().copied() {
            Some("hold") if w.len() == 1 => self.stop_failure = StopFailure::Hold,
            Some("reboot") if w.len() == 1 => self.stop_failure = StopFailure::Reboot,
            Some("exec") => match w.get(1) {
                Some(cmd) if cmd.starts_with('/') => {
                    self.stop_failure = StopFailure::Exec {
                        command: w[1..].iter().map(|s| (*s).to_owned()).collect(),
                    }
                }
                Some(cmd) => {
                    self.error(
                        Some(n),
                        format!("stop_failure exec {cmd}: the command must be a full path name"),
                    );
                    return;
                }
                None => {
                    self.error(Some(n), format!("stop_failure exec: no command; {usage}"));
                    return;
                }
            },
            _ => {
                self.error(Some(n), format!("stop_failure {}: {usage}", w.join(" ")));
                return;
            }
        }
        self.extension_notice(n, "stop_failure");
    }

    fn agent_timeout(&mut self, n: usize, w: &[&str]) {
        let usage = "the line is \"agent_timeout start|stop|status|all TIME [SCRIPT]\"";
        if w.len() < 2 || w.len() > 3 {
            self.error(Some(n), format!("agent_timeout {}: {usage}", w.join(" ")));
            return;
        }
        let verbs: &[Verb] = match w[0] {
            "start" => &[Verb::Start],
            "stop" => &[Verb::Stop],
            "status" => &[Verb::Status],
            "all" => &[Verb::Start, Verb::Stop, Verb::Status],
            other => {
                self.error(
                    Some(n),
                    format!("agent_timeout {other}: unknown verb; {usage}"),
                );
                return;
            }
        };
        let Some(limit) = self.time(n, "agent_timeout", w[1]) else {
            return;
        };
        if limit.is_zero() {
            self.error(
                Some(n),
                format!("agent_timeout {} {}: must be at least 1ms", w[0], w[1]),
            );
            return;
        }
        for verb in verbs {
            match w.get(2) {
                Some(script) => self.agent_timeouts.per_script.push(ScriptTimeout {
                    script: (*script).to_owned(),
                    verb: *verb,
                    limit,
                }),
                None => match verb {
                    Verb::Start => self.agent_timeouts.start = limit,
                    Verb::Stop => self.agent_timeouts.stop = limit,
                    Verb::Status => self.agent_timeouts.status = limit,
                },
            }
        }
        self.extension_notice(n, "agent_timeout");
    }

    /// Defaults, cross checks, result.
    fn finish(mut self) -> Result<HaCf, Vec<ConfigError>> {
        if self.nodes.is_empty() {
            self.error(
                None,
                "no nodes defined: add a \"node NAME\" line for every cluster node \
                 (the name `uname -n` prints there)",
            );
        }
        if self.media.is_empty() {
            self.error(
                None,
                "No heartbeat media defined: add e.g. \"bcast eth1\", \"ucast eth1 PEER-IP\", \
                 \"mcast eth1 225.0.0.1 694 1 0\" or \"serial /dev/ttyS0\"",
            );
        }
        let (keepalive, ka_line) = self
            .keepalive
            .map_or((Duration::from_secs(1), None), |(d, l)| (d, Some(l)));
        let (deadtime, dt_line) = self
            .deadtime
            .map_or((Duration::from_secs(30), None), |(d, l)| (d, Some(l)));
        if deadtime <= 2 * keepalive {
            self.error(
                dt_line.or(ka_line),
                format!(
                    "deadtime ({}) must be more than twice keepalive ({})",
                    fmt_ms(deadtime),
                    fmt_ms(keepalive)
                ),
            );
        }
        let warntime = match self.warntime {
            Some((w, l)) => {
                if w >= deadtime {
                    self.notice(
                        Some(l),
                        format!(
                            "warntime ({}) is not below deadtime ({}): no late-heartbeat \
                             warning will come before a node is declared dead",
                            fmt_ms(w),
                            fmt_ms(deadtime)
                        ),
                    );
                }
                w
            }
            None => Duration::from_millis(deadtime.as_millis() as u64 / 2),
        };
        let (initdead, id_line) = match self.initdead {
            Some((d, l)) => (d, Some(l)),
            None => {
                let d = if deadtime > Duration::from_secs(10) {
                    deadtime
                } else if deadtime < Duration::from_secs(6) {
                    Duration::from_secs(12)
                } else {
                    2 * deadtime
                };
                (d, None)
            }
        };
        if initdead < deadtime {
            self.error(
                id_line,
                format!(
                    "initdead ({}) is smaller than deadtime ({})",
                    fmt_ms(initdead),
                    fmt_ms(deadtime)
                ),
            );
        } else if initdead < Duration::from_secs(10) {
            self.notice(
                id_line,
                format!(
                    "initdead ({}) may be too small: it should be at least 10 seconds \
                     (and >= deadtime) to allow for slow network start-up",
                    fmt_ms(initdead)
                ),
            );
        }
        let deadping = match self.deadping {
            Some((d, l)) => {
                if d <= 2 * keepalive {
                    self.error(
                        Some(l),
                        format!(
                            "deadping ({}) must be more than twice keepalive ({})",
                            fmt_ms(d),
                            fmt_ms(keepalive)
                        ),
                    );
                }
                d
            }
            None => deadtime,
        };
        let (auto_failback, af_line) = self
            .auto_failback
            .map_or((AutoFailback::Legacy, None), |(a, l)| (a, Some(l)));
        if auto_failback == AutoFailback::Legacy {
            self.notice(
                af_line,
                "auto_failback legacy (the default) is deprecated, as heartbeat 3.0.6 warns: \
                 consider \"auto_failback on\" (or off)",
            );
        }

        // Logging: 3.0.6 sends everything to logd when ha.cf names no log
        // destination; heartbeatd has no logd and logs to syslog instead.
        let facility_given = self.logfacility.as_ref().and_then(|(f, _)| f.clone());
        let mut logfacility = facility_given.clone();
        let no_destination =
            self.logfile.is_none() && self.debugfile.is_none() && facility_given.is_none();
        match self.use_logd {
            Some((false, l)) if no_destination => self.error(
                Some(l),
                "use_logd off, and no logfile, debugfile or logfacility: nowhere to log; \
                 add e.g. \"logfacility daemon\" or \"logfile /var/log/ha-log\"",
            ),
            Some((false, l)) => self.notice(
                Some(l),
                "use_logd off: accepted, no effect: heartbeatd never uses logd",
            ),
            Some((true, l)) => {
                if facility_given.is_none() {
                    logfacility = Some("daemon".into());
                }
                self.notice(
                    Some(l),
                    format!(
                        "use_logd on: heartbeatd has no logd; it logs to {}",
                        log_targets(&self.logfile, &self.debugfile, logfacility.as_deref())
                    ),
                );
            }
            None if no_destination => {
                logfacility = Some("daemon".into());
                self.notice(
                    None,
                    "no logfile, debugfile or logfacility: heartbeat 3.0.6 would log through \
                     logd; heartbeatd logs to syslog, facility daemon",
                );
            }
            None => {}
        }

        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        Ok(HaCf {
            nodes: self.nodes.into_iter().map(|(n, _)| n).collect(),
            media: self.media,
            ping: self.ping,
            udpport: self.udpport,
            keepalive,
            deadtime,
            warntime,
            initdead,
            deadping,
            auto_failback,
            hopfudge: self.hopfudge,
            baud: self.baud.map(|(b, _)| b).unwrap_or(19200),
            cluster: self.cluster,
            hbgenmethod: self.hbgenmethod,
            realtime: self.realtime,
            rtprio: self.rtprio,
            debug: self.debug,
            logfile: self.logfile,
            debugfile: self.debugfile,
            logfacility,
            syslogmsgfmt: self.syslogmsgfmt,
            log_badpack: self.log_badpack,
            max_rexmit_delay: self.max_rexmit_delay,
            coredumps: self.coredumps,
            coreroot: self.coreroot,
            watchdog: self.watchdog.map(|(w, _)| w),
            respawn: self.respawn,
            env: self.env,
            uuidfrom: self.uuidfrom,
            stop_failure: self.stop_failure,
            stop_retries: self.stop_retries,
            agent_timeouts: self.agent_timeouts,
            notices: self.notices,
        })
    }
}

fn log_targets(
    logfile: &Option<PathBuf>,
    debugfile: &Option<PathBuf>,
    facility: Option<&str>,
) -> String {
    let mut t = Vec::new();
    if let Some(f) = logfile {
        t.push(format!("logfile {}", f.display()));
    }
    if let Some(f) = debugfile {
        t.push(format!("debugfile {}", f.display()));
    }
    if let Some(f) = facility {
        t.push(format!("syslog facility {f}"));
    }
    t.join(", ")
}

fn describe(k: &MediumKind) -> String {
    match k {
        MediumKind::Bcast { iface, .. } => format!("bcast {iface}"),
        MediumKind::Ucast { iface, peer, .. } => format!("ucast {iface} {peer}"),
        MediumKind::Ucast6 { iface, peer, .. } => format!("ucast6 {iface} {peer}"),
        MediumKind::Mcast {
            iface, group, port, ..
        } => format!("mcast {iface} {group} {port}"),
        MediumKind::Mcast6 {
            iface, group, port, ..
        } => format!("mcast6 {iface} {group} {port}"),
        MediumKind::Serial { device, .. } => format!("serial {}", device.display()),
    }
}

/// heartbeat's booleans (cluster-glue `cl_str_to_boolean`), any case:
/// true/on/yes/y/1 and false/off/no/n/0.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    const T: &[&str] = &["true", "on", "yes", "y", "1"];
    const F: &[&str] = &["false", "off", "no", "n", "0"];
    if T.iter().any(|t| v.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if F.iter().any(|f| v.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> HaCf {
        parse_ha_cf_with(Path::new("ha.cf"), t, &ParseEnv::default())
            .unwrap_or_else(|e| panic!("{e:#?}"))
    }

    const MIN: &str = "node alpha beta\nbcast eth0\nlogfacility local0\n";

    #[test]
    fn defaults_are_3_0_6s() {
        let h = parse(MIN);
        assert_eq!(h.nodes, ["alpha", "beta"]);
        assert_eq!(h.keepalive, Duration::from_millis(1000));
        assert_eq!(h.deadtime, Duration::from_secs(30));
        assert_eq!(h.warntime, Duration::from_secs(15));
        assert_eq!(h.initdead, Duration::from_secs(30));
        assert_eq!(h.deadping, Duration::from_secs(30));
        assert_eq!(h.auto_failback, AutoFailback::Legacy);
        assert_eq!(h.hopfudge, 1);
        assert_eq!(h.baud, 19200);
        assert_eq!(h.cluster, "linux-ha");
        assert_eq!(h.hbgenmethod, GenMethod::File);
        assert!(h.realtime && h.log_badpack && h.syslogmsgfmt && h.coredumps);
        assert_eq!(h.rtprio, None);
        assert_eq!(h.debug, 0);
        assert_eq!(h.max_rexmit_delay, Duration::from_millis(250));
        assert_eq!(h.udpport, 694);
        assert_eq!(h.uuidfrom, UuidFrom::File);
        assert_eq!(h.stop_failure, StopFailure::Hold);
        assert_eq!(h.stop_retries, 10);
        assert_eq!(h.agent_timeouts, AgentTimeouts::default());
        assert_eq!(h.logfacility.as_deref(), Some("local0"));
        assert_eq!(
            h.media,
            [Medium {
                line: 2,
                kind: MediumKind::Bcast {
                    iface: "eth0".into(),
                    port: 694
                }
            }]
        );
        // the one notice: legacy is deprecated
        assert_eq!(h.notices.len(), 1, "{:?}", h.notices);
        assert!(h.notices[0].msg.contains("legacy"));
        assert_eq!(h.notices[0].line, None);
    }

    #[test]
    fn initdead_default_follows_deadtime() {
        for (dead, init) in [
            ("3", 12_000),
            ("5.9", 12_000),
            ("6", 12_000),
            ("8", 16_000),
            ("10", 20_000),
            ("10.001", 10_001),
            ("60", 60_000),
        ] {
            let h = parse(&format!("{MIN}keepalive 1\ndeadtime {dead}\n"));
            assert_eq!(h.initdead.as_millis(), init, "deadtime {dead}");
            assert_eq!(h.warntime.as_millis(), h.deadtime.as_millis() / 2);
        }
    }

    #[test]
    fn environment_default_port() {
        let env = ParseEnv {
            default_udpport: 1694,
        };
        let h = parse_ha_cf_with(Path::new("ha.cf"), MIN, &env).unwrap();
        assert_eq!(h.udpport, 1694);
        assert!(matches!(
            h.media[0].kind,
            MediumKind::Bcast { port: 1694, .. }
        ));
    }

    #[test]
    fn etc_services_lookup() {
        let t = "# comment\nssh 22/tcp\nha-cluster\t694/tcp\nha-cluster\t695/udp   # HA\nfoo 1/udp ha-alias\n";
        assert_eq!(services_udp_port(t, "ha-cluster"), Some(695));
        assert_eq!(services_udp_port(t, "ha-alias"), Some(1));
        assert_eq!(services_udp_port(t, "nope"), None);
        assert_eq!(services_udp_port("ha-cluster x/udp\n", "ha-cluster"), None);
    }

    #[test]
    fn booleans_like_cluster_glue() {
        for t in ["true", "TRUE", "on", "On", "yes", "Y", "y", "1"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "off", "OFF", "no", "N", "n", "0"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for x in ["2", "", "nein", "yess", "o"] {
            assert_eq!(parse_bool(x), None, "{x}");
        }
    }

    #[test]
    fn comments_commas_tabs_crlf() {
        let h = parse("node Alpha,BETA\t# the nodes\r\n\tbcast eth0,eth1 # two\r\nlogfacility local0\r\nkeepalive 200ms#x\n");
        assert_eq!(h.nodes, ["alpha", "beta"]);
        assert_eq!(h.media.len(), 2);
        assert_eq!(h.keepalive, Duration::from_millis(200));
    }

    #[test]
    fn continuation_is_an_extension_with_a_notice() {
        let h = parse("node alpha \\\n  beta\nbcast eth0\nlogfacility local0\n");
        assert_eq!(h.nodes, ["alpha", "beta"]);
        assert_eq!(h.media[0].line, 3);
        let n = h
            .notices
            .iter()
            .find(|n| n.msg.contains("continues"))
            .unwrap();
        assert_eq!(n.line, Some(1));
    }
}
