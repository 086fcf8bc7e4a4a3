//! The `ldirectord.cf` parser (pure: text in, [`Config`] or [`ConfigError`] out).
//!
//! It follows `read_config` / `ld_setup` of the Perl ldirectord 4.12 line by
//! line; where that code is silently wrong this parser either refuses the
//! input with a clear message or does what the manual says. Every such
//! decision is listed in the crate README ("Parser quirks").

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::*;

/// Schedulers the Linux IPVS code knows (ipvsadm -s).
pub const SCHEDULERS: &[&str] = hanet::ipvs::KNOWN_SCHEDULERS;

/// Scheduler flags ipvsadm -b accepts.
pub const SCHED_FLAGS: &[&str] = &[
    "flag-1",
    "flag-2",
    "flag-3",
    "sh-fallback",
    "sh-port",
    "mh-fallback",
    "mh-port",
];

const SYSLOG_FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// Largest `A->B` range expanded (one real per address).
const MAX_RANGE: u32 = 65_536;

type R<T> = Result<T, ConfigError>;

/// Parses the text of a configuration file. `file` is used in messages.
pub fn parse(text: &str, file: &str, res: &dyn Resolve) -> R<Config> {
    let mut p = Parser {
        file: file.to_string(),
        res,
        g: Globals::default(),
        vraw: Vec::new(),
        warnings: Vec::new(),
    };
    p.run(text)?;
    p.finish()
}

/// Global values as read (before defaults are applied to virtuals).
struct Globals {
    checktimeout: Option<u32>,
    negotiatetimeout: Option<u32>,
    checkinterval: u32,
    checkcount: u32,
    failurecount: u32,
    autoreload: bool,
    callback: Option<String>,
    fallback: Option<GlobalFallback>,
    fallback6: Option<GlobalFallback>,
    fallbackcommand: Option<String>,
    logfile: LogTarget,
    logfile_line: usize,
    emailalert: Option<String>,
    emailalertfreq: u64,
    emailalertstatus: u8,
    emailalertfrom: Option<String>,
    smtp: Option<String>,
    execute: Vec<String>,
    supervised: bool,
    fork: bool,
    quiescent: bool,
    readdquiescent: bool,
    cleanstop: bool,
    maintenancedir: Option<PathBuf>,
    maintenancedir_line: usize,
    sslverify: bool,
    sslcafile: Option<PathBuf>,
    keepalive: bool,
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            checktimeout: None,
            negotiatetimeout: None,
            checkinterval: 10,
            checkcount: 1,
            failurecount: 1,
            autoreload: false,
            callback: None,
            fallback: None,
            fallback6: None,
            fallbackcommand: None,
            logfile: LogTarget::File(Config::DEFAULT_LOGFILE.into()),
            logfile_line: 0,
            emailalert: None,
            emailalertfreq: 0,
            emailalertstatus: alert_status::ALL,
            emailalertfrom: None,
            smtp: None,
            execute: Vec::new(),
            supervised: false,
            fork: false,
            quiescent: false,
            readdquiescent: false,
            cleanstop: true,
            maintenancedir: None,
            maintenancedir_line: 0,
            sslverify: false,
            sslcafile: None,
            keepalive: true,
        }
    }
}

/// A `fallback=` value before its host is resolved.
struct FallbackRaw {
    host: String,
    port: Option<String>,
    forward: Forward,
    line: usize,
}

/// A virtual block as read, before defaults and resolution.
struct VRaw {
    line: usize,
    v6: bool,
    /// host and port text, or a firewall mark.
    host: Option<String>,
    port_str: String,
    fwmark: Option<u32>,
    protocol: Protocol,
    service: Option<(Service, usize)>,
    checktype: CheckType,
    checktype_line: usize,
    checkcommand: String,
    checktimeout: Option<u32>,
    negotiatetimeout: Option<u32>,
    checkinterval: Option<u32>,
    checkcount: Option<u32>,
    failurecount: Option<u32>,
    checkport: Option<u16>,
    request: String,
    receive: String,
    receive_line: usize,
    httpmethod: HttpMethod,
    virtualhost: Option<String>,
    login: String,
    passwd: String,
    database: String,
    secret: String,
    scheduler: String,
    persistent: Option<u32>,
    netmask: Option<(Netmask, usize)>,
    ops: Option<(bool, usize)>,
    schedflags: Option<String>,
    fallback: Option<FallbackRaw>,
    fallbackcommand: Option<String>,
    quiescent: Option<bool>,
    cleanstop: Option<bool>,
    emailalert: Option<String>,
    emailalertfreq: Option<u64>,
    emailalertstatus: Option<u8>,
    smtp: Option<String>,
    monitorfile: Option<(PathBuf, usize)>,
    servicename: Option<String>,
    comment: Option<String>,
    load: Option<String>,
    sslverify: Option<bool>,
    sslcafile: Option<PathBuf>,
    keepalive: Option<bool>,
    reals: Vec<Real>,
    /// per-real receive patterns to validate: (pattern, line)
    real_receives: Vec<(String, usize)>,
}

struct Parser<'a> {
    file: String,
    res: &'a dyn Resolve,
    g: Globals,
    vraw: Vec<VRaw>,
    warnings: Vec<Warning>,
}

/// Strips a `#` comment that is outside double quotes, and trailing blanks.
fn strip_comment(s: &str) -> &str {
    let mut inq = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => inq = !inq,
            '#' if !inq => return s[..i].trim_end(),
            _ => {}
        }
    }
    s.trim_end()
}

/// Indentation width with tabs counted as 4 spaces (as the Perl daemon does).
fn indent_width(s: &str) -> usize {
    let mut w = 0;
    for c in s.chars() {
        match c {
            ' ' => w += 1,
            '\t' => w += 4,
            _ => break,
        }
    }
    w
}

/// Splits `name = value` (spaces allowed around `=`). `None` without `=`.
fn split_directive(s: &str) -> Option<(&str, &str)> {
    let (n, v) = s.split_once('=')?;
    let n = n.trim_end();
    if n.is_empty()
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '6')
    {
        return None;
    }
    Some((n, v.trim()))
}

/// The first run of ASCII digits in `s` (how the Perl daemon reads numbers).
fn first_number(s: &str) -> Option<u64> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let digits: String = s[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// A value in double quotes: the text between the first and the last quote.
/// Returns `None` unless the value starts with a quote and has a closing one.
fn quoted(v: &str) -> Option<(&str, &str)> {
    let rest = v.strip_prefix('"')?;
    let end = rest.rfind('"')?;
    Some((&rest[..end], rest[end + 1..].trim()))
}

/// A value that may be quoted or bare.
fn maybe_quoted(v: &str) -> &str {
    match quoted(v) {
        Some((inner, "")) => inner,
        _ => v,
    }
}

impl Parser<'_> {
    fn err<T>(&self, line: usize, msg: impl Into<String>) -> R<T> {
        Err(ConfigError {
            file: self.file.clone(),
            line,
            msg: msg.into(),
        })
    }

    fn warn(&mut self, line: usize, msg: impl Into<String>) {
        self.warnings.push(Warning {
            line,
            msg: msg.into(),
        });
    }

    fn run(&mut self, text: &str) -> R<()> {
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let lineno = i + 1;
            let raw = lines[i].trim_end_matches('\r');
            i += 1;
            if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
                continue;
            }
            let is_virtual = raw.starts_with("virtual")
                && split_directive(raw)
                    .map(|(n, _)| n == "virtual" || n == "virtual6")
                    .unwrap_or(false);
            if is_virtual {
                let (name, value) = split_directive(strip_comment(raw)).unwrap_or(("virtual", ""));
                let mut v = self.virtual_header(lineno, name == "virtual6", value)?;
                // The block: lines indented by >= 4 columns (tab = 4).
                // Comment and blank lines inside do not end it.
                while i < lines.len() {
                    let l = lines[i].trim_end_matches('\r');
                    if l.trim().is_empty() || l.trim_start().starts_with('#') {
                        // a blank line ends the block only if no indented
                        // directive follows
                        let mut j = i;
                        while j < lines.len() {
                            let lj = lines[j].trim_end_matches('\r');
                            if lj.trim().is_empty() || lj.trim_start().starts_with('#') {
                                j += 1;
                            } else {
                                break;
                            }
                        }
                        if j < lines.len() && indent_width(lines[j]) >= 4 {
                            i = j;
                            continue;
                        }
                        break;
                    }
                    if indent_width(l) < 4 {
                        break;
                    }
                    i += 1;
                    let cmd = strip_comment(l.trim_start());
                    if cmd.is_empty() {
                        continue;
                    }
                    self.virtual_line(&mut v, i, cmd)?;
                }
                self.virtual_end(v)?;
                continue;
            }
            self.global_line(lineno, raw)?;
        }
        Ok(())
    }

    fn yes_no(&self, line: usize, name: &str, v: &str) -> R<bool> {
        match v {
            "yes" => Ok(true),
            "no" => Ok(false),
            _ => self.err(line, format!("{name} must be 'yes' or 'no'")),
        }
    }

    fn positive(&self, line: usize, v: &str, msg: &str) -> R<u32> {
        match first_number(v) {
            Some(n) if n > 0 && n <= u32::MAX as u64 => Ok(n as u32),
            _ => self.err(line, msg),
        }
    }

    fn global_line(&mut self, line: usize, raw: &str) -> R<()> {
        let unknown = |p: &Self| -> R<()> {
            if raw.starts_with([' ', '\t']) {
                p.err(
                    line,
                    format!(
                        "Unknown command {} (lines of a virtual service must follow its \
                         virtual= line and be indented by at least 4 spaces or a tab)",
                        raw.trim()
                    ),
                )
            } else {
                p.err(line, format!("Unknown command {}", raw.trim()))
            }
        };
        let s = strip_comment(raw);
        if s.trim() == "supervised" {
            self.g.supervised = true;
            self.warn(
                line,
                "please update your config not to use a bare supervised directive",
            );
            return Ok(());
        }
        let Some((name, v)) = split_directive(s) else {
            return unknown(self);
        };
        if raw.starts_with([' ', '\t']) {
            return unknown(self);
        }
        match name {
            "checktimeout" => {
                self.g.checktimeout = Some(self.positive(line, v, "invalid check timeout value")?)
            }
            "negotiatetimeout" => {
                self.g.negotiatetimeout =
                    Some(self.positive(line, v, "invalid negotiate timeout value")?)
            }
            "connecttimeout" => {
                return self.err(
                    line,
                    "connecttimeout directive deprecated in favour of negotiatetimeout",
                )
            }
            "timeout" => {
                return self.err(
                    line,
                    "timeout directive deprecated in favour of checktimeout and negotiatetimeout",
                )
            }
            "checkinterval" => {
                self.g.checkinterval = self.positive(line, v, "invalid check interval value")?
            }
            "checkcount" => {
                self.g.checkcount = self.positive(line, v, "invalid check count value")?;
                self.warn(
                    line,
                    "checkcount option is deprecated and slated for removal.  please see 'failurecount'",
                );
            }
            "failurecount" => {
                self.g.failurecount = self.positive(line, v, "invalid failure count value")?
            }
            "fallback" | "fallback6" => {
                let v6 = name == "fallback6";
                let raw = self.parse_fallback(line, v)?;
                let addr = self.resolve_fallback_host(&raw, v6)?;
                let (tcp_port, udp_port) = match &raw.port {
                    None => (None, None),
                    Some(p) => (
                        Some(self.fallback_port(line, p, "tcp")?),
                        Some(self.fallback_port(line, p, "udp")?),
                    ),
                };
                let gf = GlobalFallback {
                    addr,
                    tcp_port,
                    udp_port,
                    forward: raw.forward,
                    line,
                };
                if v6 {
                    self.g.fallback6 = Some(gf);
                } else {
                    self.g.fallback = Some(gf);
                }
            }
            "fallbackcommand" => {
                let c = maybe_quoted(v);
                if c.is_empty() {
                    return self.err(line, "invalid fallback command");
                }
                self.g.fallbackcommand = Some(c.to_string());
            }
            "autoreload" => self.g.autoreload = self.yes_no(line, "autoreload", v)?,
            "callback" => match quoted(v) {
                Some((c, rest)) => {
                    self.trailing(line, rest);
                    self.g.callback = Some(c.to_string());
                }
                None => {
                    return self.err(
                        line,
                        format!(
                            "Unknown command {} (the value of callback must be in double quotes)",
                            s.trim()
                        ),
                    )
                }
            },
            "logfile" => match quoted(v) {
                Some((l, rest)) => {
                    self.trailing(line, rest);
                    if l.starts_with('/') {
                        self.g.logfile = LogTarget::File(l.into());
                    } else if SYSLOG_FACILITIES.contains(&l) {
                        self.g.logfile = LogTarget::Syslog(l.into());
                    } else {
                        return self.err(
                            line,
                            format!(
                                "unable to open logfile: {l} (not an absolute path nor a \
                                 syslog facility: {})",
                                SYSLOG_FACILITIES.join(", ")
                            ),
                        );
                    }
                    self.g.logfile_line = line;
                }
                None => {
                    return self.err(
                        line,
                        format!(
                            "Unknown command {} (the value of logfile must be in double quotes)",
                            s.trim()
                        ),
                    )
                }
            },
            "execute" => {
                if v.is_empty() {
                    return self.err(line, "execute needs a configuration name");
                }
                self.g.execute.push(v.to_string())
            }
            "fork" => self.g.fork = self.yes_no(line, "fork", v)?,
            "supervised" => self.g.supervised = self.yes_no(line, "supervised", v)?,
            "quiescent" => self.g.quiescent = self.yes_no(line, "quiescent", v)?,
            "readdquiescent" => self.g.readdquiescent = self.yes_no(line, "readdquiescent", v)?,
            "emailalert" => self.g.emailalert = Some(self.emailalert(line, v)?),
            "emailalertfreq" => self.g.emailalertfreq = self.emailalertfreq(line, v)?,
            "emailalertstatus" => self.g.emailalertstatus = self.emailalertstatus(line, v)?,
            "emailalertfrom" => {
                if v.is_empty() {
                    return self.err(line, "no email from address specified");
                }
                self.g.emailalertfrom = Some(maybe_quoted(v).to_string());
            }
            "cleanstop" => self.g.cleanstop = self.yes_no(line, "cleanstop", v)?,
            "smtp" => self.g.smtp = Some(self.smtp(line, v)?),
            "maintenancedir" => {
                let d = maybe_quoted(v);
                if d.is_empty() {
                    return self.err(line, "maintenance directory not specified");
                }
                self.g.maintenancedir = Some(d.into());
                self.g.maintenancedir_line = line;
            }
            "sslverify" => self.g.sslverify = self.yes_no(line, "sslverify", v)?,
            "keepalive" => self.g.keepalive = self.yes_no(line, "keepalive", v)?,
            "sslcafile" => {
                let f = maybe_quoted(v);
                if !f.starts_with('/') {
                    return self.err(line, "sslcafile must be an absolute path");
                }
                self.g.sslcafile = Some(f.into());
            }
            _ => return unknown(self),
        }
        Ok(())
    }

    fn trailing(&mut self, line: usize, rest: &str) {
        if !rest.is_empty() {
            self.warn(
                line,
                format!("text after the closing quote ignored: {rest}"),
            );
        }
    }

    fn emailalert(&self, line: usize, v: &str) -> R<String> {
        let a = maybe_quoted(v).trim();
        if a.is_empty() {
            return self.err(line, "no email address specified");
        }
        Ok(a.to_string())
    }

    fn emailalertfreq(&self, line: usize, v: &str) -> R<u64> {
        if !v.starts_with(|c: char| c.is_ascii_digit()) {
            return self.err(line, "invalid email alert frequency");
        }
        first_number(v)
            .ok_or(())
            .or_else(|_| self.err(line, "invalid email alert frequency"))
    }

    fn emailalertstatus(&self, line: usize, v: &str) -> R<u8> {
        let items: Vec<&str> = v.split(',').map(str::trim).collect();
        let none = items.contains(&"none");
        let mut status = 0u8;
        for i in &items {
            match *i {
                "none" => continue,
                "all" => status = alert_status::ALL,
                "starting" => status |= alert_status::STARTING,
                "stopping" => status |= alert_status::STOPPING,
                "running" => status |= alert_status::RUNNING,
                "reloading" => status |= alert_status::RELOADING,
                _ => return self.err(line, format!("invalid email alert status at: \"{i}\"")),
            }
            if none {
                return self.err(
                    line,
                    format!("invalid email alert status: \"{i}\" specified with \"none\""),
                );
            }
        }
        Ok(status)
    }

    fn smtp(&self, line: usize, v: &str) -> R<String> {
        let v = maybe_quoted(v);
        let (host, port) = match v.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (v, None),
        };
        let ok_host = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
        let ok_port = port
            .map(|p| p.parse::<u16>().is_ok_and(|n| n > 0))
            .unwrap_or(true);
        if !ok_host || !ok_port {
            return self.err(line, "invalid SMTP server address");
        }
        Ok(v.to_string())
    }

    /// `host[:port] [gate|masq|ipip]`
    fn parse_fallback(&self, line: usize, v: &str) -> R<FallbackRaw> {
        let toks: Vec<&str> = v.split_whitespace().collect();
        if toks.is_empty() || toks.len() > 2 {
            return self.err(line, format!("invalid fallback server: {v}"));
        }
        let forward = match toks.get(1) {
            None => Forward::Gate,
            Some(f) => Forward::parse(f)
                .ok_or(())
                .or_else(|_| self.err(line, "forward method must be gate, masq or ipip"))?,
        };
        let hp = toks[0];
        let (host, port) = if let Some(rest) = hp.strip_prefix('[') {
            match rest.split_once(']') {
                Some((h, "")) => (h.to_string(), None),
                Some((h, p)) if p.starts_with(':') && p.len() > 1 => {
                    (h.to_string(), Some(p[1..].to_string()))
                }
                _ => return self.err(line, format!("invalid fallback server: {v}")),
            }
        } else {
            match hp.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p.to_string())),
                _ => (hp.to_string(), None),
            }
        };
        if host.is_empty() {
            return self.err(line, format!("invalid fallback server: {v}"));
        }
        Ok(FallbackRaw {
            host,
            port,
            forward,
            line,
        })
    }

    fn resolve_fallback_host(&self, f: &FallbackRaw, v6: bool) -> R<IpAddr> {
        self.res.host(&f.host, v6).ok_or(()).or_else(|_| {
            self.err(
                f.line,
                format!(
                    "invalid {} address or could not resolve for fallback server: {}",
                    if v6 { "IPv6" } else { "IPv4" },
                    f.host
                ),
            )
        })
    }

    fn fallback_port(&self, line: usize, p: &str, proto: &str) -> R<u16> {
        self.port(p, Some(proto))
            .ok_or(())
            .or_else(|_| self.err(line, "invalid port for fallback server"))
    }

    /// A port number (0..65535) or a service name.
    fn port(&self, p: &str, proto: Option<&str>) -> Option<u16> {
        if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) {
            return p.parse::<u16>().ok();
        }
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return None;
        }
        self.res.service(p, proto)
    }

    fn virtual_header(&mut self, line: usize, v6: bool, value: &str) -> R<VRaw> {
        let value = value.trim();
        // the address part ends at the first blank
        let (spec, rest) = match value.split_once(char::is_whitespace) {
            Some((a, r)) => (a, r.trim()),
            None => (value, ""),
        };
        if !rest.is_empty() {
            self.warn(
                line,
                format!("text after the virtual service address ignored: {rest}"),
            );
        }
        let mut host = None;
        let mut port_str = String::new();
        let mut fwmark = None;
        if let Some(inner) = spec.strip_prefix('[') {
            if !v6 {
                return self.err(
                    line,
                    "cannot specify an IPv6 address here. please use \"virtual6\" instead.",
                );
            }
            let Some((a, p)) = inner.split_once("]:") else {
                return self.err(line, "invalid address for virtual server");
            };
            if a.parse::<std::net::Ipv6Addr>().is_err() {
                return self.err(line, "invalid ipv6 address for virtual server");
            }
            host = Some(a.to_string());
            port_str = p.to_string();
        } else if !spec.is_empty() && spec.chars().all(|c| c.is_ascii_digit()) {
            match spec.parse::<u32>() {
                Ok(m) if m > 0 => fwmark = Some(m),
                _ => {
                    return self.err(
                        line,
                        format!("invalid firewall mark {spec} (must be 1..4294967295)"),
                    )
                }
            }
        } else if let Some((h, p)) = spec.rsplit_once(':') {
            if h.contains(':') {
                return self.err(
                    line,
                    if v6 {
                        "invalid address for virtual server (IPv6 addresses must be written [addr]:port)"
                    } else {
                        "cannot specify an IPv6 address here. please use \"virtual6\" instead."
                    },
                );
            }
            if h.is_empty()
                || !h
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
            {
                return self.err(line, "invalid address for virtual server");
            }
            host = Some(h.to_string());
            port_str = p.to_string();
        } else if spec.parse::<Ipv4Addr>().is_ok() || spec.starts_with(|c: char| c.is_ascii_digit())
        {
            // Perl reads `virtual=10.0.0.100` as firewall mark 10 (the
            // leading digits): refuse it instead.
            return self.err(
                line,
                format!(
                    "invalid address for virtual server: {spec} has no port \
                     (write {spec}:PORT; a firewall mark is a plain number)"
                ),
            );
        } else {
            return self.err(line, "invalid address for virtual server");
        }
        let protocol = if fwmark.is_some() {
            Protocol::Fwm
        } else if port_str == "53" || port_str == "domain" {
            Protocol::Udp
        } else {
            Protocol::Tcp
        };
        Ok(VRaw {
            line,
            v6,
            host,
            port_str,
            fwmark,
            protocol,
            service: None,
            checktype: CheckType::Negotiate,
            checktype_line: line,
            checkcommand: "/bin/true".into(),
            checktimeout: None,
            negotiatetimeout: None,
            checkinterval: None,
            checkcount: None,
            failurecount: None,
            checkport: None,
            request: "/".into(),
            receive: String::new(),
            receive_line: line,
            httpmethod: HttpMethod::Get,
            virtualhost: None,
            login: String::new(),
            passwd: String::new(),
            database: String::new(),
            secret: String::new(),
            scheduler: "wrr".into(),
            persistent: None,
            netmask: None,
            ops: None,
            schedflags: None,
            fallback: None,
            fallbackcommand: None,
            quiescent: None,
            cleanstop: None,
            emailalert: None,
            emailalertfreq: None,
            emailalertstatus: None,
            smtp: None,
            monitorfile: None,
            servicename: None,
            comment: None,
            load: None,
            sslverify: None,
            sslcafile: None,
            keepalive: None,
            reals: Vec::new(),
            real_receives: Vec::new(),
        })
    }

    fn need_quotes<'v>(&mut self, line: usize, name: &str, v: &'v str) -> R<&'v str> {
        match quoted(v) {
            Some((inner, rest)) => {
                self.trailing(line, rest);
                Ok(inner)
            }
            None => self.err(
                line,
                format!(
                    "Unknown command \"{name}={v}\" (the value of {name} must be in double quotes)"
                ),
            ),
        }
    }

    fn virtual_line(&mut self, v: &mut VRaw, line: usize, cmd: &str) -> R<()> {
        let Some((name, val)) = split_directive(cmd) else {
            return self.err(line, format!("Unknown command \"{cmd}\""));
        };
        match name {
            "real" | "real6" => {
                let is6 = name == "real6";
                if is6 != v.v6 {
                    return self.err(
                        line,
                        format!(
                            "cannot specify \"{name}\" here.  please use \"real{}\" instead",
                            if v.v6 { "6" } else { "" }
                        ),
                    );
                }
                self.real_line(v, line, val)?;
            }
            "request" => {
                let r = self.need_quotes(line, name, val)?;
                if r.is_empty() {
                    return self.err(line, "no request string specified");
                }
                v.request = if r.starts_with('/') {
                    r.to_string()
                } else {
                    format!("/{r}")
                };
            }
            "receive" => {
                let r = self.need_quotes(line, name, val)?;
                if r.is_empty() {
                    return self.err(line, "invalid receive string");
                }
                v.receive = r.to_string();
                v.receive_line = line;
            }
            "checktype" => {
                v.checktype_line = line;
                v.checktype =
                    if !val.is_empty() && val.chars().all(|c| c.is_ascii_digit()) {
                        CheckType::Combined(val.parse().or_else(|_| {
                            self.err(line, "checktype must be a positive number below 2^32")
                        })?)
                    } else {
                        match val {
                            "connect" => CheckType::Connect,
                            "negotiate" => CheckType::Negotiate,
                            "ping" => CheckType::Ping,
                            "external" => CheckType::External,
                            "on" => CheckType::On,
                            "off" => CheckType::Off,
                            "external-perl" => {
                                return self.err(
                                    line,
                                    "checktype external-perl is not supported by this ldirectord \
                                 (it does not embed Perl); use checktype=external, which runs \
                                 checkcommand as a program with the same four arguments",
                                )
                            }
                            _ => return self.err(
                                line,
                                "checktype must be \"connect\", \"negotiate\", \"on\", \"off\", \
                                 \"ping\", \"external\", \"external-perl\" or a positive number",
                            ),
                        }
                    };
            }
            "checkcommand" => {
                let c = maybe_quoted(val);
                if c.is_empty() {
                    return self.err(line, "invalid check command");
                }
                v.checkcommand = c.to_string();
            }
            "checktimeout" => {
                v.checktimeout = Some(self.positive(line, val, "invalid check timeout")?)
            }
            "connecttimeout" => {
                return self.err(
                    line,
                    "connecttimeout directive deprecated in favour of negotiatetimeout",
                )
            }
            "negotiatetimeout" => {
                v.negotiatetimeout = Some(self.positive(line, val, "invalid negotiate timeout")?)
            }
            "checkcount" => {
                v.checkcount = Some(self.positive(line, val, "invalid check count")?);
                self.warn(
                    line,
                    "checkcount option is deprecated and slated for removal.  please see 'failurecount'",
                );
            }
            "failurecount" => {
                v.failurecount = Some(self.positive(line, val, "invalid failure count")?)
            }
            "checkinterval" => {
                v.checkinterval = Some(self.positive(line, val, "invalid checkinterval")?)
            }
            "checkport" => match first_number(val) {
                None => return self.err(line, "invalid port"),
                Some(p) if (1..=65535).contains(&p) => v.checkport = Some(p as u16),
                Some(_) => return self.err(line, "checkport must be in range 1..65535"),
            },
            "login" => {
                let s = self.need_quotes(line, name, val)?;
                if s.is_empty() {
                    return self.err(line, "invalid login string");
                }
                v.login = s.to_string();
            }
            "passwd" => {
                let s = self.need_quotes(line, name, val)?;
                if s.is_empty() {
                    return self.err(line, "invalid password");
                }
                v.passwd = s.to_string();
            }
            "database" => {
                let s = self.need_quotes(line, name, val)?;
                if s.is_empty() {
                    return self.err(line, "invalid database");
                }
                v.database = s.to_string();
            }
            "secret" => {
                let s = self.need_quotes(line, name, val)?;
                if s.is_empty() {
                    return self.err(line, "invalid secret");
                }
                v.secret = s.to_string();
            }
            "load" => {
                let s = self.need_quotes(line, name, val)?;
                if !s.chars().any(|c| c.is_alphanumeric() || c == '_') {
                    return self.err(line, "invalid string for load testing");
                }
                v.load = Some(s.to_string());
            }
            "scheduler" => {
                if val.is_empty() || !val.chars().all(|c| c.is_ascii_lowercase()) {
                    return self.err(
                        line,
                        "invalid scheduler, should be only lowercase letters (a-z)",
                    );
                }
                if !SCHEDULERS.contains(&val) {
                    return self.err(
                        line,
                        format!(
                            "unknown scheduler {val} (IPVS schedulers: {})",
                            SCHEDULERS.join(", ")
                        ),
                    );
                }
                v.scheduler = val.to_string();
            }
            "persistent" => match first_number(val) {
                Some(n) if n > 0 && n <= u32::MAX as u64 => v.persistent = Some(n as u32),
                _ => return self.err(line, "invalid persistent timeout"),
            },
            "schedflags" => {
                let f = val.split_whitespace().next().unwrap_or("");
                if f.is_empty() {
                    return self.err(line, "invalid sched-flags");
                }
                for flag in f.split(',') {
                    if !SCHED_FLAGS.contains(&flag) {
                        return self.err(
                            line,
                            format!(
                                "invalid sched-flags: unknown flag {flag} (known: {})",
                                SCHED_FLAGS.join(", ")
                            ),
                        );
                    }
                }
                v.schedflags = Some(f.to_string());
            }
            "netmask" => {
                let nm =
                    if v.v6 {
                        match val.parse::<u8>() {
                            Ok(p) if (1..=128).contains(&p) => Netmask::V6(p),
                            _ => return self.err(
                                line,
                                "invalid netmask: a prefix length between 1 and 128 is required",
                            ),
                        }
                    } else {
                        match val.parse::<Ipv4Addr>() {
                            Ok(a) => Netmask::V4(a),
                            Err(_) => {
                                return self
                                    .err(line, "invalid netmask: dotted quad notation is required")
                            }
                        }
                    };
                v.netmask = Some((nm, line));
            }
            "protocol" => {
                let p = val
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("");
                if p.is_empty() {
                    return self.err(line, "invalid protocol");
                }
                if v.protocol == Protocol::Fwm {
                    if p != "fwm" {
                        return self.err(
                            line,
                            "protocol must be fwm if the virtual service is a fwmark (a number)",
                        );
                    }
                } else {
                    v.protocol = match p {
                        "tcp" => Protocol::Tcp,
                        "udp" => Protocol::Udp,
                        _ => {
                            return self.err(
                                line,
                                "protocol must be tcp or udp if the virtual service is an address and port",
                            )
                        }
                    };
                }
            }
            "ops" => v.ops = Some((self.yes_no(line, "ops", val)?, line)),
            "service" => {
                let s = val
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("");
                let Some(svc) = Service::parse(s) else {
                    return self.err(
                        line,
                        "service must be dns, ftp, http, https, http_proxy, imap, imaps, ldap, \
                         ldaps, mysql, nntp, none, oracle, pop, pops, radius, pgsql, simpletcp, \
                         sip, smtp or submission",
                    );
                };
                v.service = Some((svc, line));
                let host = self.res.hostname();
                if svc == Service::Ftp && v.login.is_empty() {
                    v.login = "anonymous".into();
                } else if svc == Service::Sip && v.login.is_empty() {
                    v.login = format!("ldirectord@{host}");
                }
                if svc == Service::Ftp && v.passwd.is_empty() {
                    v.passwd = format!("ldirectord@{host}");
                }
            }
            "httpmethod" => {
                v.httpmethod = match val.to_ascii_uppercase().as_str() {
                    "GET" => HttpMethod::Get,
                    "HEAD" => HttpMethod::Head,
                    _ => return self.err(line, "httpmethod must be GET or HEAD"),
                }
            }
            "virtualhost" => {
                let h = val.trim_matches('"');
                if h.is_empty() || h.contains(char::is_whitespace) {
                    return self.err(line, "invalid virtualhost");
                }
                v.virtualhost = Some(h.to_string());
            }
            "fallback" | "fallback6" => {
                let is6 = name == "fallback6";
                if is6 != v.v6 {
                    return self.err(
                        line,
                        format!(
                            "cannot specify \"{name}\" here.  please use \"fallback{}\" instead",
                            if v.v6 { "6" } else { "" }
                        ),
                    );
                }
                v.fallback = Some(self.parse_fallback(line, val)?);
            }
            "fallbackcommand" => {
                let c = maybe_quoted(val);
                if c.is_empty() {
                    return self.err(line, "invalid fallback command");
                }
                v.fallbackcommand = Some(c.to_string());
            }
            "quiescent" => v.quiescent = Some(self.yes_no(line, "quiescent", val)?),
            "emailalert" => v.emailalert = Some(self.emailalert(line, val)?),
            "emailalertfreq" => v.emailalertfreq = Some(self.emailalertfreq(line, val)?),
            "emailalertstatus" => v.emailalertstatus = Some(self.emailalertstatus(line, val)?),
            "monitorfile" => {
                let m = maybe_quoted(val);
                if m.is_empty() {
                    return self.err(line, "unable to open monitorfile : no file name");
                }
                v.monitorfile = Some((m.into(), line));
            }
            "cleanstop" => v.cleanstop = Some(self.yes_no(line, "cleanstop", val)?),
            "smtp" => v.smtp = Some(self.smtp(line, val)?),
            "servicename" => v.servicename = Some(val.to_string()),
            "comment" => v.comment = Some(val.to_string()),
            "sslverify" => v.sslverify = Some(self.yes_no(line, "sslverify", val)?),
            "keepalive" => v.keepalive = Some(self.yes_no(line, "keepalive", val)?),
            "sslcafile" => {
                let f = maybe_quoted(val);
                if !f.starts_with('/') {
                    return self.err(line, "sslcafile must be an absolute path");
                }
                v.sslcafile = Some(f.into());
            }
            _ => return self.err(line, format!("Unknown command \"{cmd}\"")),
        }
        Ok(())
    }

    /// `HOST[->HOST2][:PORT] gate|masq|ipip [WEIGHT] ["REQ"[,| ]"RECV"] [l:N] [u:N]`
    fn real_line(&mut self, v: &mut VRaw, line: usize, s: &str) -> R<()> {
        let wrong = |p: &Self| p.err(line, "invalid address for real server (wrong format)");
        let s = s.trim();
        let (hostpart, flags) = match s.split_once(char::is_whitespace) {
            Some((h, f)) => (h, f.trim_start()),
            None => return wrong(self),
        };
        // split HOST[->HOST2][:PORT]
        let (hosts, port) = if hostpart.ends_with(']') {
            (hostpart, None)
        } else if let Some(i) = hostpart.rfind(':') {
            let before = &hostpart[..i];
            if before.ends_with(']') || !before.contains(':') {
                (before, Some(&hostpart[i + 1..]))
            } else {
                return wrong(self);
            }
        } else {
            (hostpart, None)
        };
        let (h1, h2) = match hosts.split_once("->") {
            Some((a, b)) => (a, Some(b)),
            None => (hosts, None),
        };
        let valid_host = |h: &str| -> bool {
            if let Some(inner) = h.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                !inner.is_empty()
                    && inner
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            } else {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            }
        };
        if !valid_host(h1) || !h2.map(valid_host).unwrap_or(true) {
            return wrong(self);
        }
        let port = match port {
            None => 0,
            Some(p) => self.port(p, None).ok_or(()).or_else(|_| {
                self.err(
                    line,
                    format!("invalid port ({p}) for real server (could not resolve port)"),
                )
            })?,
        };
        let strip = |h: &str| h.trim_start_matches('[').trim_end_matches(']').to_string();
        let a1 = self.res.host(&strip(h1), v.v6).ok_or(()).or_else(|_| {
            self.err(
                line,
                format!("invalid address ({h1}) for real server (could not resolve host)"),
            )
        })?;
        let proto = self.parse_real_flags(line, flags)?;
        let mut addrs = vec![a1];
        if let Some(h2) = h2 {
            if v.v6 {
                return self.err(line, "Address range for IPv6 is not supported yet");
            }
            let a2 = self.res.host(&strip(h2), false).ok_or(()).or_else(|_| {
                self.err(
                    line,
                    format!("invalid address ({h2}) for real server (could not resolve end host)"),
                )
            })?;
            let (IpAddr::V4(x), IpAddr::V4(y)) = (a1, a2) else {
                return wrong(self);
            };
            let (x, y) = (u32::from(x), u32::from(y));
            if x > y {
                return self.err(
                    line,
                    format!(
                        "Invalid Range: {a1}-{a2}: the first address must not be greater than the second"
                    ),
                );
            }
            if y - x >= MAX_RANGE {
                return self.err(
                    line,
                    format!("Invalid Range: {a1}-{a2}: more than {MAX_RANGE} addresses"),
                );
            }
            addrs = (x..=y).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect();
        }
        if let Some(rcv) = &proto.receive {
            v.real_receives.push((rcv.clone(), line));
        }
        for addr in addrs {
            v.reals.push(Real {
                line,
                addr,
                port,
                ..proto.clone()
            });
        }
        Ok(())
    }

    /// The part after the address: forwarding, weight, request/receive,
    /// thresholds. Returns a prototype `Real` (address fields unset).
    fn parse_real_flags(&self, line: usize, flags: &str) -> R<Real> {
        let (fwd, mut rest) = match flags.split_once(char::is_whitespace) {
            Some((f, r)) => (f, r.trim_start()),
            None => (flags, ""),
        };
        let forward = Forward::parse(fwd)
            .ok_or(())
            .or_else(|_| self.err(line, "forward method must be gate, masq or ipip"))?;
        let mut weight = 1u32;
        let tok = rest.split_whitespace().next().unwrap_or("");
        if !tok.is_empty() && tok.chars().all(|c| c.is_ascii_digit()) {
            weight = match tok.parse::<u32>() {
                Ok(w) if w <= 65535 => w,
                _ => return self.err(line, format!("invalid weight {tok} (must be 0..65535)")),
            };
            rest = rest[tok.len()..].trim_start();
        }
        let mut request = None;
        let mut receive = None;
        if rest.starts_with('"') {
            // "REQUEST"[, ]"RECEIVE" -- greedy like the Perl regex: the
            // receive ends at the last quote of the line, the request at the
            // last `"<sep>"` before it.
            let last = rest.rfind('"').unwrap_or(0);
            let body = &rest[1..last.max(1)];
            let mut split = None;
            let bytes = body.as_bytes();
            for i in (0..bytes.len()).rev() {
                if bytes[i] == b'"'
                    && i + 1 < bytes.len()
                    && (bytes[i + 1] == b',' || bytes[i + 1] == b' ')
                {
                    let after = body[i + 2..].trim_start();
                    if after.starts_with('"') {
                        let q = body.len() - after.len();
                        split = Some((i, q));
                        break;
                    }
                }
            }
            let Some((rq_end, rc_start)) = split else {
                return self.err(
                    line,
                    format!(
                        "Invalid real server line, around \"{rest}\" (expected \"request\", \"receive\")"
                    ),
                );
            };
            let rq = &body[..rq_end];
            let rc = &body[rc_start + 1..];
            request = Some(if rq.starts_with('/') {
                rq.to_string()
            } else {
                format!("/{rq}")
            });
            receive = Some(rc.to_string());
            rest = rest[last + 1..].trim_start();
        }
        let mut lower = None;
        let mut upper = None;
        for tok in rest.split_whitespace() {
            let (slot, n) = if let Some(n) = tok.strip_prefix("l:") {
                (&mut lower, n)
            } else if let Some(n) = tok.strip_prefix("u:") {
                (&mut upper, n)
            } else {
                return self.err(line, format!("Invalid real server line, around \"{rest}\""));
            };
            match n.parse::<u32>() {
                Ok(x) if slot.is_none() => *slot = Some(x),
                _ => return self.err(line, format!("Invalid real server line, around \"{rest}\"")),
            }
        }
        Ok(Real {
            line,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            forward,
            weight,
            request,
            receive,
            lower,
            upper,
        })
    }

    fn virtual_end(&mut self, v: VRaw) -> R<()> {
        // resolve the address (protocol is final now)
        if let Some(h) = &v.host {
            let proto = match v.protocol {
                Protocol::Udp => "udp",
                _ => "tcp",
            };
            if self.res.host(h, v.v6).is_none() || self.port(&v.port_str, Some(proto)).is_none() {
                return self.err(v.line, "invalid address for virtual service");
            }
        }
        // duplicates
        let id = |x: &VRaw, p: &Self| -> (bool, Protocol, Option<SocketAddr>, Option<u32>) {
            let sa = x.host.as_ref().map(|h| {
                let proto = if x.protocol == Protocol::Udp {
                    "udp"
                } else {
                    "tcp"
                };
                SocketAddr::new(
                    p.res.host(h, x.v6).unwrap(),
                    p.port(&x.port_str, Some(proto)).unwrap(),
                )
            });
            (x.v6, x.protocol, sa, x.fwmark)
        };
        let my = id(&v, self);
        if self.vraw.iter().any(|o| id(o, self) == my) {
            let last = v.reals.iter().map(|r| r.line).max().unwrap_or(v.line);
            return self.err(last, "duplicate virtual server");
        }
        self.vraw.push(v);
        Ok(())
    }

    fn finish(mut self) -> R<Config> {
        let vraw = std::mem::take(&mut self.vraw);
        let mut virtuals = Vec::with_capacity(vraw.len());
        let mut warnings = self.warnings.clone();
        for v in vraw {
            virtuals.push(self.effective(v, &mut warnings)?);
        }
        let g = self.g;
        Ok(Config {
            file: PathBuf::from(&self.file),
            checktimeout: g.checktimeout,
            negotiatetimeout: g.negotiatetimeout,
            checkinterval: g.checkinterval,
            checkcount: g.checkcount,
            failurecount: g.failurecount,
            autoreload: g.autoreload,
            callback: g.callback,
            fallback: g.fallback,
            fallback6: g.fallback6,
            fallbackcommand: g.fallbackcommand,
            logfile: g.logfile,
            logfile_line: g.logfile_line,
            emailalert: g.emailalert,
            emailalertfreq: g.emailalertfreq,
            emailalertstatus: g.emailalertstatus,
            emailalertfrom: g.emailalertfrom,
            smtp: g.smtp,
            execute: g.execute,
            supervised: g.supervised,
            fork: g.fork,
            quiescent: g.quiescent,
            readdquiescent: g.readdquiescent,
            cleanstop: g.cleanstop,
            maintenancedir: g.maintenancedir,
            maintenancedir_line: g.maintenancedir_line,
            sslverify: g.sslverify,
            sslcafile: g.sslcafile,
            keepalive: g.keepalive,
            virtuals,
            warnings,
        })
    }

    /// Applies defaults (`ld_setup`) and validates one virtual service.
    fn effective(&self, mut v: VRaw, warnings: &mut Vec<Warning>) -> R<Virtual> {
        let g = &self.g;
        let proto_name = if v.protocol == Protocol::Udp {
            "udp"
        } else {
            "tcp"
        };
        let addr = match (&v.host, v.fwmark) {
            (Some(h), _) => VirtualAddr::Inet(SocketAddr::new(
                self.res.host(h, v.v6).expect("checked in virtual_end"),
                self.port(&v.port_str, Some(proto_name))
                    .expect("checked in virtual_end"),
            )),
            (None, Some(m)) => VirtualAddr::Fwmark(m),
            (None, None) => unreachable!("a virtual has an address or a mark"),
        };
        let vport = match addr {
            VirtualAddr::Inet(sa) => sa.port(),
            VirtualAddr::Fwmark(_) => 0,
        };
        if vport == 0 && v.fwmark.is_none() && v.persistent.is_none() {
            return self.err(
                v.line,
                "invalid port 0 for virtual service (port 0 is only allowed with persistent=)",
            );
        }
        let (service, service_line, explicit) = match v.service {
            Some((s, l)) => (s, l, true),
            None if v.fwmark.is_some() => (Service::None, v.line, false),
            None => (Service::for_port(vport), v.line, false),
        };
        let negotiates = matches!(v.checktype, CheckType::Negotiate | CheckType::Combined(_));
        if negotiates && !service.is_built() {
            let why = if explicit {
                String::new()
            } else {
                format!(" (the default for port {vport}; set service= to choose another)")
            };
            return self.err(
                service_line,
                format!(
                    "service {service}{why} is not supported by this ldirectord: it has no \
                     {service} check built in; use checktype=connect, checktype=external or \
                     another service"
                ),
            );
        }
        // login defaults of ftp / sip also apply when the service came from the port
        let mut login = v.login.clone();
        let mut passwd = v.passwd.clone();
        if service == Service::Ftp {
            if login.is_empty() {
                login = "anonymous".into();
            }
            if passwd.is_empty() {
                passwd = format!("ldirectord@{}", self.res.hostname());
            }
        }
        if service == Service::Sip && login.is_empty() {
            login = format!("ldirectord@{}", self.res.hostname());
        }
        // receive patterns must compile
        let mut pats: Vec<(&str, usize)> = vec![(&v.receive, v.receive_line)];
        pats.extend(v.real_receives.iter().map(|(p, l)| (p.as_str(), *l)));
        for (p, l) in pats {
            if !p.is_empty() {
                if let Err(e) = regex::bytes::Regex::new(p) {
                    return self.err(
                        l,
                        format!("invalid receive string: not a supported regular expression: {e}"),
                    );
                }
            }
        }
        let checktimeout = v
            .checktimeout
            .or(v.negotiatetimeout)
            .or(g.checktimeout)
            .or(g.negotiatetimeout)
            .unwrap_or(5);
        let negotiatetimeout = v
            .negotiatetimeout
            .or(v.checktimeout)
            .or(g.negotiatetimeout)
            .or(g.checktimeout)
            .unwrap_or(30);
        // fallback
        let fallback = if let Some(f) = &v.fallback {
            let addr = self.resolve_fallback_host(f, v.v6)?;
            let port = match &f.port {
                Some(p) => self.fallback_port(f.line, p, proto_name)?,
                None => vport,
            };
            Some(Fallback {
                addr,
                port,
                forward: f.forward,
            })
        } else {
            let gf = if v.v6 { g.fallback6 } else { g.fallback };
            gf.map(|gf| Fallback {
                addr: gf.addr,
                port: match v.protocol {
                    Protocol::Udp => gf.udp_port,
                    _ => gf.tcp_port,
                }
                .unwrap_or(vport),
                forward: gf.forward,
            })
        };
        if let Some(nm) = &v.netmask {
            if v.persistent.is_none() {
                warnings.push(Warning {
                    line: nm.1,
                    msg: "netmask is ignored without persistent".into(),
                });
            }
        }
        if let Some((true, l)) = v.ops {
            if v.protocol != Protocol::Udp {
                warnings.push(Warning {
                    line: l,
                    msg: "ops is ignored: one-packet scheduling is for protocol=udp only".into(),
                });
            }
        }
        if let Some(f) = &v.schedflags {
            if let Err(e) = hanet::ipvs::SchedFlags::parse(&v.scheduler, f) {
                return self.err(
                    v.line,
                    format!("invalid sched-flags {f} for scheduler {}: {e}", v.scheduler),
                );
            }
        }
        let vd = Virtual {
            line: v.line,
            v6: v.v6,
            addr,
            protocol: v.protocol,
            service,
            checktype: v.checktype,
            checkcommand: v.checkcommand.clone(),
            checktimeout,
            negotiatetimeout,
            checkinterval: v.checkinterval.unwrap_or(g.checkinterval),
            checkinterval_set: v.checkinterval.is_some(),
            checkcount: v.checkcount.unwrap_or(g.checkcount),
            failurecount: v.failurecount.unwrap_or(g.failurecount),
            checkport: v.checkport,
            request: v.request.clone(),
            receive: v.receive.clone(),
            httpmethod: v.httpmethod,
            virtualhost: v.virtualhost.clone(),
            login,
            passwd,
            database: v.database.clone(),
            secret: v.secret.clone(),
            scheduler: v.scheduler.clone(),
            persistent: v.persistent,
            netmask: v.netmask.map(|n| n.0),
            ops: v.ops.map(|o| o.0).unwrap_or(false) && v.protocol == Protocol::Udp,
            schedflags: v.schedflags.clone(),
            fallback,
            fallbackcommand: v
                .fallbackcommand
                .clone()
                .or_else(|| g.fallbackcommand.clone()),
            quiescent: v.quiescent.unwrap_or(g.quiescent),
            cleanstop: v.cleanstop.unwrap_or(g.cleanstop),
            emailalert: v.emailalert.clone().or_else(|| g.emailalert.clone()),
            emailalertfreq: v.emailalertfreq.unwrap_or(g.emailalertfreq),
            emailalertstatus: v.emailalertstatus.unwrap_or(g.emailalertstatus),
            smtp: v.smtp.clone().or_else(|| g.smtp.clone()),
            monitorfile: v.monitorfile.as_ref().map(|m| m.0.clone()),
            monitorfile_line: v.monitorfile.as_ref().map(|m| m.1).unwrap_or(0),
            servicename: v.servicename.clone(),
            comment: v.comment.clone(),
            load: v.load.clone(),
            sslverify: v.sslverify.unwrap_or(g.sslverify),
            keepalive: v.keepalive.unwrap_or(g.keepalive),
            sslcafile: v.sslcafile.clone().or_else(|| g.sslcafile.clone()),
            reals: std::mem::take(&mut v.reals),
        };
        self.check_destinations(&vd)?;
        if negotiates && vd.service == Service::Dns {
            // the Perl daemon treats every answer as down without a receive
            // pattern, and queries the root without a request
            for r in &vd.reals {
                if vd.receive_for(r).is_empty() {
                    return self.err(
                        vd.line,
                        "service dns needs receive= (the address or name the answer must \
                         contain); without it every real server would be down",
                    );
                }
                if vd.request_for(r) == "/" {
                    return self.err(vd.line, "service dns needs request= (the name to query)");
                }
            }
        }
        let connects = match vd.checktype {
            CheckType::Connect => vd.protocol != Protocol::Udp,
            CheckType::Combined(_) => true,
            CheckType::Negotiate => vd.service != Service::None,
            _ => false,
        };
        if connects {
            if let Some(r) = vd.reals.iter().find(|r| vd.check_port(r).is_none()) {
                return self.err(
                    r.line,
                    format!(
                        "real server {} has no port and service {} has no default port: set checkport=",
                        r.addr, vd.service
                    ),
                );
            }
        }
        Ok(vd)
    }

    /// Two reals (or a real and the fallback) must not be the same IPVS
    /// destination: the kernel would hold one entry for both.
    fn check_destinations(&self, v: &Virtual) -> R<()> {
        let mut seen: std::collections::HashMap<SocketAddr, &Real> = Default::default();
        for r in &v.reals {
            let d = SocketAddr::new(r.addr, kernel_dest_port(v, r.port, r.forward));
            if let Some(o) = seen.insert(d, r) {
                let msg = if o.port == r.port {
                    format!("duplicate real server {} (also on line {})", r.id(), o.line)
                } else {
                    format!(
                        "real server {} is the same IPVS destination as {} on line {} \
                         (with {} forwarding the port is that of the virtual service)",
                        r.id(),
                        o.id(),
                        o.line,
                        r.forward.as_str()
                    )
                };
                return self.err(r.line, msg);
            }
        }
        if let Some(f) = &v.fallback {
            let d = SocketAddr::new(f.addr, kernel_dest_port(v, f.port, f.forward));
            if let Some(r) = seen.get(&d) {
                return self.err(
                    r.line,
                    format!(
                        "real server {} is also the fallback server of virtual service {}",
                        r.id(),
                        v.name()
                    ),
                );
            }
        }
        Ok(())
    }
}

/// The port the kernel stores for a destination: for address services,
/// port 0 means the virtual port (ipvsadm), and gate/ipip destinations always
/// get the virtual port (no port translation without NAT). Firewall-mark
/// services keep the port as given.
pub fn kernel_dest_port(v: &Virtual, port: u16, fwd: Forward) -> u16 {
    match v.addr {
        VirtualAddr::Fwmark(_) => port,
        VirtualAddr::Inet(sa) => {
            if port == 0 || fwd != Forward::Masq {
                sa.port()
            } else {
                port
            }
        }
    }
}
