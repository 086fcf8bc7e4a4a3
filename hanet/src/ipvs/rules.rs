//! The `ipvsadm-save` / `ipvsadm-restore` rule format: parsing into the model
//! and printing back exactly as `ipvsadm-save -n` (ipvsadm 1.31) does.
//!
//! A rules file has one ipvsadm command per line (`-A -t VIP:80 -s rr`,
//! `-a -t VIP:80 -r RIP:80 -i -w 1`, ...). Like `ipvsadm -R`, a leading
//! `ipvsadm` word is ignored, `#` starts a comment, blank lines are skipped;
//! short options may be grouped (`-At`), long spellings are accepted
//! (`--add-service --tcp-service VIP:80 --scheduler rr`, also `--opt=value`).
//! Values get ipvsadm's defaults and checks (scheduler `wlc`, `-g`, weight 1,
//! `-p` = 360 s, a dest port defaults to the service port and is forced to it
//! for `-g`/`-i`). Errors name the line.
//!
//! [`save`] prints a table as `ipvsadm-save -n` would: services and
//! destinations in ipvsadm's own sort order (including its unsigned-subtraction
//! comparator and glibc's merge sort), no thresholds (ipvsadm does not save them).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use super::error::errno_text;
use super::model::{
    AddrPort, Dest, DestKey, Family, Forward, Netmask, Protocol, SchedFlags, Scheduler, Service,
    ServiceKey, Tunnel, TunnelType, DEFAULT_PERSISTENT_TIMEOUT,
};
use super::table::{Entry, Op, Table};

/// One ipvsadm command of a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-A`
    AddService(Service),
    /// `-E`
    EditService(Service),
    /// `-D`
    DelService(ServiceKey),
    /// `-a`
    AddDest(ServiceKey, Dest),
    /// `-e`
    EditDest(ServiceKey, Dest),
    /// `-d`
    DelDest(ServiceKey, DestKey),
    /// `-C`
    Flush,
    /// `-Z [service]`
    Zero(Option<ServiceKey>),
}

impl Command {
    /// The table operation, for the commands that are one.
    pub fn to_op(&self) -> Option<Op> {
        Some(match self {
            Command::AddService(s) => Op::AddService(s.clone()),
            Command::EditService(s) => Op::EditService(s.clone()),
            Command::DelService(k) => Op::DelService(*k),
            Command::AddDest(k, d) => Op::AddDest(*k, d.clone()),
            Command::EditDest(k, d) => Op::EditDest(*k, d.clone()),
            Command::DelDest(k, d) => Op::DelDest(*k, *d),
            Command::Flush | Command::Zero(_) => return None,
        })
    }
}

/// A command with the line it came from (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// line number in the file
    pub line: usize,
    /// the command
    pub command: Command,
}

/// A rules file problem, naming the file (if known) and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    /// the file, if the text came from one
    pub path: Option<String>,
    /// 1-based line number (0: the file as a whole)
    pub line: usize,
    /// what is wrong
    pub msg: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.line) {
            (Some(p), 0) => write!(f, "{p}: {}", self.msg),
            (Some(p), l) => write!(f, "{p}:{l}: {}", self.msg),
            (None, 0) => f.write_str(&self.msg),
            (None, l) => write!(f, "line {l}: {}", self.msg),
        }
    }
}

impl std::error::Error for RulesError {}

/// Splits a line like ipvsadm's config_stream: whitespace-separated words,
/// `#` starts a comment, the word `ipvsadm` is dropped.
fn words(line: &str) -> Vec<&str> {
    let line = match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    };
    line.split_whitespace()
        .filter(|w| *w != "ipvsadm")
        .collect()
}

/// Parses rules text (the format of `/etc/sysconfig/ipvsadm`).
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, RulesError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let w = words(line);
        if w.is_empty() {
            continue;
        }
        let command = parse_command(&w).map_err(|msg| RulesError {
            path: None,
            line: i + 1,
            msg: format!("{msg} (in `{}`)", line.trim()),
        })?;
        out.push(Rule {
            line: i + 1,
            command,
        });
    }
    Ok(out)
}

/// Runs rules on an empty table with the kernel's checks, as
/// `ipvsadm-restore` would on an empty kernel table.
pub fn rules_to_table(rules: &[Rule]) -> Result<Table, RulesError> {
    let mut t = Table::new();
    for r in rules {
        let res = match &r.command {
            Command::Flush => {
                t.flush();
                Ok(())
            }
            Command::Zero(k) => t.zero(k.as_ref()).map_err(|e| e.to_string()),
            c => {
                let op = c.to_op().expect("table command");
                t.apply_one(&op).map_err(|errno| errno_text(&op, errno))
            }
        };
        res.map_err(|msg| RulesError {
            path: None,
            line: r.line,
            msg,
        })?;
    }
    Ok(t)
}

/// Parses rules text into the table it describes.
pub fn parse_table(text: &str) -> Result<Table, RulesError> {
    rules_to_table(&parse_rules(text)?)
}

/// Reads a rules file into a table; errors name the file and line.
pub fn read_rules_file(path: &Path) -> Result<Table, RulesError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| RulesError {
        path: Some(p.clone()),
        line: 0,
        msg: format!("cannot read: {e}"),
    })?;
    parse_table(&text).map_err(|e| RulesError { path: Some(p), ..e })
}

// ------------------------------------------------------------------ parsing

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    AddDest,
    DelDest,
    EditDest,
    Zero,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Zero => "zero",
        }
    }
}

/// Option names as ipvsadm reports them in errors.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Opt {
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Ops,
    Pe,
    SchedFlags,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
}

impl Opt {
    fn name(self) -> &'static str {
        match self {
            Opt::Service => "service-address",
            Opt::Scheduler => "scheduler",
            Opt::Persistent => "persistent",
            Opt::Netmask => "netmask",
            Opt::Server => "real-server",
            Opt::Forward => "forwarding-method",
            Opt::Weight => "weight",
            Opt::UThreshold => "u-threshold",
            Opt::LThreshold => "l-threshold",
            Opt::Ops => "ops",
            Opt::Pe => "pe",
            Opt::SchedFlags => "sched-flags",
            Opt::TunType => "tun-type",
            Opt::TunPort => "tun-port",
            Opt::TunNoCsum => "tun-nocsum",
            Opt::TunCsum => "tun-csum",
            Opt::TunRemCsum => "tun-remcsum",
        }
    }

    /// ipvsadm's command/option table: '+' required, 'x' illegal, ' ' optional.
    fn rule(self, cmd: Cmd) -> char {
        use Cmd::*;
        use Opt::*;
        match (cmd, self) {
            (Add | Edit | Del | AddDest | EditDest | DelDest, Service) => '+',
            (Zero, Service) => ' ',
            (Add | Edit, Scheduler | Persistent | Netmask | Ops | Pe | SchedFlags) => ' ',
            (AddDest | EditDest | DelDest, Server) => '+',
            (AddDest | EditDest, Forward | Weight | UThreshold | LThreshold) => ' ',
            (AddDest | EditDest, TunType | TunPort | TunNoCsum | TunCsum | TunRemCsum) => ' ',
            _ => 'x',
        }
    }
}

#[derive(Default)]
struct Parsed<'a> {
    cmd: Option<Cmd>,
    seen: HashMap<Opt, ()>,
    service: Option<(Option<Protocol>, &'a str)>, // None protocol = fwmark
    ipv6_fwmark: bool,
    scheduler: Option<&'a str>,
    persistent: Option<Option<&'a str>>,
    netmask: Option<&'a str>,
    server: Option<&'a str>,
    forward: Option<Forward>,
    weight: Option<&'a str>,
    uthr: Option<&'a str>,
    lthr: Option<&'a str>,
    ops: bool,
    pe: Option<&'a str>,
    sched_flags: Option<&'a str>,
    tun_type: Option<&'a str>,
    tun_port: Option<&'a str>,
    tun_flags: u16,
}

impl<'a> Parsed<'a> {
    fn set_cmd(&mut self, c: Cmd) -> Result<(), String> {
        if self.cmd.is_some() {
            return Err("multiple commands specified".into());
        }
        self.cmd = Some(c);
        Ok(())
    }

    fn set_opt(&mut self, o: Opt) -> Result<(), String> {
        if self.seen.insert(o, ()).is_some() {
            return Err(format!("multiple '{}' options specified", o.name()));
        }
        Ok(())
    }
}

/// What an option letter/name means.
enum Kind {
    Cmd(Cmd),
    /// takes a value
    Arg(&'static str),
    /// takes an optional value (`-p`)
    OptArg(&'static str),
    /// no value
    Flag(&'static str),
    /// not something a rules file may contain
    NotARule(&'static str),
}

fn short(c: char) -> Option<Kind> {
    Some(match c {
        'A' => Kind::Cmd(Cmd::Add),
        'E' => Kind::Cmd(Cmd::Edit),
        'D' => Kind::Cmd(Cmd::Del),
        'C' => Kind::Cmd(Cmd::Flush),
        'a' => Kind::Cmd(Cmd::AddDest),
        'e' => Kind::Cmd(Cmd::EditDest),
        'd' => Kind::Cmd(Cmd::DelDest),
        'Z' => Kind::Cmd(Cmd::Zero),
        't' => Kind::Arg("tcp-service"),
        'u' => Kind::Arg("udp-service"),
        'f' => Kind::Arg("fwmark-service"),
        's' => Kind::Arg("scheduler"),
        'p' => Kind::OptArg("persistent"),
        'M' => Kind::Arg("netmask"),
        'r' => Kind::Arg("real-server"),
        'w' => Kind::Arg("weight"),
        'x' => Kind::Arg("u-threshold"),
        'y' => Kind::Arg("l-threshold"),
        'b' => Kind::Arg("sched-flags"),
        'm' => Kind::Flag("masquerading"),
        'i' => Kind::Flag("ipip"),
        'g' => Kind::Flag("gatewaying"),
        '6' => Kind::Flag("ipv6"),
        'o' => Kind::Flag("ops"),
        'n' => Kind::Flag("numeric"),
        'L' | 'l' => Kind::NotARule("list"),
        'S' => Kind::NotARule("save"),
        'R' => Kind::NotARule("restore"),
        'h' => Kind::NotARule("help"),
        'v' => Kind::NotARule("version"),
        'c' => Kind::NotARule("connection"),
        _ => return None,
    })
}

fn long(name: &str) -> Option<Kind> {
    Some(match name {
        "add-service" => Kind::Cmd(Cmd::Add),
        "edit-service" => Kind::Cmd(Cmd::Edit),
        "delete-service" => Kind::Cmd(Cmd::Del),
        "clear" => Kind::Cmd(Cmd::Flush),
        "add-server" => Kind::Cmd(Cmd::AddDest),
        "edit-server" => Kind::Cmd(Cmd::EditDest),
        "delete-server" => Kind::Cmd(Cmd::DelDest),
        "zero" => Kind::Cmd(Cmd::Zero),
        "tcp-service" | "udp-service" | "sctp-service" | "fwmark-service" | "scheduler"
        | "netmask" | "real-server" | "weight" | "u-threshold" | "l-threshold" | "pe"
        | "sched-flags" | "tun-type" | "tun-port" => Kind::Arg(static_name(name)),
        "persistent" => Kind::OptArg("persistent"),
        "masquerading" | "ipip" | "gatewaying" | "ipv6" | "ops" | "numeric" | "tun-nocsum"
        | "tun-csum" | "tun-remcsum" => Kind::Flag(static_name(name)),
        "list" | "save" | "restore" | "help" | "version" | "set" | "start-daemon"
        | "stop-daemon" | "connection" | "timeout" | "daemon" | "stats" | "rate" | "thresholds"
        | "persistent-conn" | "nosort" | "sort" | "exact" | "tun-info" | "syncid"
        | "mcast-interface" | "mcast-group" | "mcast-port" | "mcast-ttl" | "sync-maxlen" => {
            Kind::NotARule(static_name(name))
        }
        _ => return None,
    })
}

fn static_name(name: &str) -> &'static str {
    const NAMES: &[&str] = &[
        "tcp-service",
        "udp-service",
        "sctp-service",
        "fwmark-service",
        "scheduler",
        "netmask",
        "real-server",
        "weight",
        "u-threshold",
        "l-threshold",
        "pe",
        "sched-flags",
        "tun-type",
        "tun-port",
        "masquerading",
        "ipip",
        "gatewaying",
        "ipv6",
        "ops",
        "numeric",
        "tun-nocsum",
        "tun-csum",
        "tun-remcsum",
        "list",
        "save",
        "restore",
        "help",
        "version",
        "set",
        "start-daemon",
        "stop-daemon",
        "connection",
        "timeout",
        "daemon",
        "stats",
        "rate",
        "thresholds",
        "persistent-conn",
        "nosort",
        "sort",
        "exact",
        "tun-info",
        "syncid",
        "mcast-interface",
        "mcast-group",
        "mcast-port",
        "mcast-ttl",
        "sync-maxlen",
    ];
    NAMES.iter().find(|n| **n == name).copied().unwrap_or("?")
}

fn apply_value<'a>(p: &mut Parsed<'a>, name: &str, v: &'a str) -> Result<(), String> {
    match name {
        "tcp-service" | "udp-service" | "sctp-service" | "fwmark-service" => {
            p.set_opt(Opt::Service)?;
            let proto = match name {
                "tcp-service" => Some(Protocol::Tcp),
                "udp-service" => Some(Protocol::Udp),
                "sctp-service" => Some(Protocol::Sctp),
                _ => None,
            };
            p.service = Some((proto, v));
        }
        "scheduler" => {
            p.set_opt(Opt::Scheduler)?;
            p.scheduler = Some(v);
        }
        "persistent" => {
            p.set_opt(Opt::Persistent)?;
            p.persistent = Some(Some(v));
        }
        "netmask" => {
            p.set_opt(Opt::Netmask)?;
            p.netmask = Some(v);
        }
        "real-server" => {
            p.set_opt(Opt::Server)?;
            p.server = Some(v);
        }
        "weight" => {
            p.set_opt(Opt::Weight)?;
            p.weight = Some(v);
        }
        "u-threshold" => {
            p.set_opt(Opt::UThreshold)?;
            p.uthr = Some(v);
        }
        "l-threshold" => {
            p.set_opt(Opt::LThreshold)?;
            p.lthr = Some(v);
        }
        "pe" => {
            p.set_opt(Opt::Pe)?;
            p.pe = Some(v);
        }
        "sched-flags" => {
            p.set_opt(Opt::SchedFlags)?;
            p.sched_flags = Some(v);
        }
        "tun-type" => {
            p.set_opt(Opt::TunType)?;
            p.tun_type = Some(v);
        }
        "tun-port" => {
            p.set_opt(Opt::TunPort)?;
            p.tun_port = Some(v);
        }
        _ => unreachable!("option {name} takes no value"),
    }
    Ok(())
}

fn apply_flag(p: &mut Parsed<'_>, name: &str) -> Result<(), String> {
    match name {
        "masquerading" | "ipip" | "gatewaying" => {
            p.set_opt(Opt::Forward)?;
            p.forward = Some(match name {
                "masquerading" => Forward::Masq,
                "ipip" => Forward::Tunnel,
                _ => Forward::Gate,
            });
        }
        "ipv6" => {
            if !matches!(p.service, Some((None, _))) {
                return Err("-6 used before -f".into());
            }
            p.ipv6_fwmark = true;
        }
        "ops" => {
            p.set_opt(Opt::Ops)?;
            p.ops = true;
        }
        "numeric" => {}
        "tun-nocsum" => {
            p.set_opt(Opt::TunNoCsum)?;
            p.tun_flags = Tunnel::NOCSUM;
        }
        "tun-csum" => {
            p.set_opt(Opt::TunCsum)?;
            p.tun_flags = Tunnel::CSUM;
        }
        "tun-remcsum" => {
            p.set_opt(Opt::TunRemCsum)?;
            p.tun_flags = Tunnel::REMCSUM;
        }
        _ => unreachable!("flag {name}"),
    }
    Ok(())
}

/// Parses one command line (already split into words).
pub fn parse_command(args: &[&str]) -> Result<Command, String> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        i += 1;
        if let Some(l) = a.strip_prefix("--") {
            let (name, inline) = match l.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (l, None),
            };
            match long(name) {
                None => return Err(format!("invalid option `{a}'")),
                Some(Kind::NotARule(n)) => return Err(format!("`--{n}' is not a rule")),
                Some(Kind::Cmd(c)) => p.set_cmd(c)?,
                Some(Kind::Flag(n)) => {
                    if inline.is_some() {
                        return Err(format!("option `--{n}' takes no value"));
                    }
                    apply_flag(&mut p, n)?
                }
                Some(Kind::Arg(n)) => {
                    let v = match inline {
                        Some(v) => v,
                        None => {
                            let v = args.get(i).ok_or(format!("option `--{n}' needs a value"))?;
                            i += 1;
                            v
                        }
                    };
                    apply_value(&mut p, n, v)?
                }
                Some(Kind::OptArg(n)) => {
                    let v = match inline {
                        Some(v) => Some(v),
                        None if args.get(i).is_some_and(|v| !v.starts_with('-')) => {
                            i += 1;
                            Some(args[i - 1])
                        }
                        None => None,
                    };
                    p.set_opt(Opt::Persistent)?;
                    debug_assert_eq!(n, "persistent");
                    p.persistent = Some(v);
                }
            }
        } else if let Some(group) = a.strip_prefix('-').filter(|g| !g.is_empty()) {
            for (pos, c) in group.char_indices() {
                let rest = &group[pos + c.len_utf8()..];
                match short(c) {
                    None => return Err(format!("invalid option `-{c}'")),
                    Some(Kind::NotARule(n)) => return Err(format!("`-{c}' ({n}) is not a rule")),
                    Some(Kind::Cmd(cmd)) => p.set_cmd(cmd)?,
                    Some(Kind::Flag(n)) => apply_flag(&mut p, n)?,
                    Some(Kind::Arg(n)) => {
                        let v = if !rest.is_empty() {
                            rest
                        } else {
                            let v = args.get(i).ok_or(format!("option `-{c}' needs a value"))?;
                            i += 1;
                            v
                        };
                        apply_value(&mut p, n, v)?;
                        break;
                    }
                    Some(Kind::OptArg(_)) => {
                        let v = if !rest.is_empty() {
                            Some(rest)
                        } else if args.get(i).is_some_and(|v| !v.starts_with('-')) {
                            i += 1;
                            Some(args[i - 1])
                        } else {
                            None
                        };
                        p.set_opt(Opt::Persistent)?;
                        p.persistent = Some(v);
                        break;
                    }
                }
            }
        } else {
            return Err(format!("unexpected argument {a}"));
        }
    }
    build(p)
}

fn number(s: &str, min: i64, max: i64) -> Option<i64> {
    let n: i64 = s.parse().ok()?;
    (min..=max).contains(&n).then_some(n)
}

/// Port numbers for service names, from /etc/services (what ipvsadm's
/// getservbyname sees), read once.
fn service_port(name: &str, proto: Option<Protocol>) -> Option<u16> {
    use std::sync::OnceLock;
    static SERVICES: OnceLock<Vec<(String, String, u16)>> = OnceLock::new();
    let table = SERVICES.get_or_init(|| {
        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
        let mut v = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut w = line.split_whitespace();
            let (Some(name), Some(pp)) = (w.next(), w.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for n in std::iter::once(name).chain(w) {
                v.push((n.to_string(), proto.to_string(), port));
            }
        }
        v
    });
    let proto = match proto? {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    };
    table
        .iter()
        .find(|(n, p, _)| n == name && p == proto)
        .map(|(_, _, port)| *port)
}

/// ipvsadm's parse_service: `addr`, `addr:port`, `[v6]:port`, bare v6.
/// Returns the address and the port if one was given.
fn parse_addr_port(s: &str, proto: Option<Protocol>) -> Option<(IpAddr, Option<u16>)> {
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port_of = |p: &str| -> Option<u16> {
        number(p, 0, 65535)
            .map(|n| n as u16)
            .or_else(|| service_port(p, proto))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        let a: Ipv6Addr = addr.parse().ok()?;
        return Some((IpAddr::V6(a), Some(port_of(port)?)));
    }
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Some((IpAddr::V6(a), None));
    }
    match s.rsplit_once(':') {
        Some((addr, port)) => Some((IpAddr::V4(addr.parse().ok()?), Some(port_of(port)?))),
        None => Some((IpAddr::V4(s.parse::<Ipv4Addr>().ok()?), None)),
    }
}

fn build(p: Parsed<'_>) -> Result<Command, String> {
    let cmd = p
        .cmd
        .ok_or("no command (-A, -E, -D, -a, -e, -d, -C or -Z) given")?;
    for o in [
        Opt::Service,
        Opt::Scheduler,
        Opt::Persistent,
        Opt::Netmask,
        Opt::Server,
        Opt::Forward,
        Opt::Weight,
        Opt::UThreshold,
        Opt::LThreshold,
        Opt::Ops,
        Opt::Pe,
        Opt::SchedFlags,
        Opt::TunType,
        Opt::TunPort,
        Opt::TunNoCsum,
        Opt::TunCsum,
        Opt::TunRemCsum,
    ] {
        let given = p.seen.contains_key(&o);
        match o.rule(cmd) {
            '+' if !given => {
                return Err(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    o.name(),
                    cmd.name()
                ))
            }
            'x' if given => {
                return Err(format!(
                    "Illegal '{}' option with the '{}' command",
                    o.name(),
                    cmd.name()
                ))
            }
            _ => {}
        }
    }
    if cmd == Cmd::Flush {
        return Ok(Command::Flush);
    }
    let key = match p.service {
        None => None,
        Some((None, mark)) => {
            let m = number(mark, 1, u32::MAX as i64)
                .ok_or(format!("invalid fwmark value `{mark}' specified"))?;
            Some(ServiceKey::Fwmark {
                family: if p.ipv6_fwmark {
                    Family::Inet6
                } else {
                    Family::Inet
                },
                mark: m as u32,
            })
        }
        Some((Some(protocol), s)) => {
            let (addr, port) = parse_addr_port(s, Some(protocol))
                .ok_or("illegal virtual server address[:port] specified")?;
            Some(ServiceKey::Inet {
                protocol,
                addr,
                port: port.unwrap_or(0),
            })
        }
    };
    let Some(key) = key else {
        return Ok(Command::Zero(None)); // -Z without a service (the only command where it is optional)
    };
    match cmd {
        Cmd::Zero => Ok(Command::Zero(Some(key))),
        Cmd::Del => Ok(Command::DelService(key)),
        Cmd::Add | Cmd::Edit => {
            let s = build_service(&p, key)?;
            Ok(if cmd == Cmd::Add {
                Command::AddService(s)
            } else {
                Command::EditService(s)
            })
        }
        Cmd::AddDest | Cmd::EditDest | Cmd::DelDest => {
            let d = build_dest(&p, &key)?;
            Ok(match cmd {
                Cmd::AddDest => Command::AddDest(key, d),
                Cmd::EditDest => Command::EditDest(key, d),
                _ => Command::DelDest(key, d.key()),
            })
        }
        Cmd::Flush => unreachable!(),
    }
}

fn build_service(p: &Parsed<'_>, key: ServiceKey) -> Result<Service, String> {
    let mut s = Service::new(key);
    if let Some(name) = p.scheduler {
        s.scheduler = Scheduler::new(name).map_err(|e| e.to_string())?;
    }
    if let Some(t) = p.persistent {
        s.persistent = Some(match t {
            None => DEFAULT_PERSISTENT_TIMEOUT,
            Some(v) => number(v, 1, 86400 * 31)
                .ok_or(format!("invalid timeout value `{v}' specified"))?
                as u32,
        });
    }
    if let Some(m) = p.netmask {
        s.netmask = match key.family() {
            Family::Inet => Netmask::V4(
                m.parse()
                    .map_err(|_| "illegal virtual server persistent mask specified")?,
            ),
            Family::Inet6 => {
                Netmask::V6(number(m, 1, 128).ok_or("illegal ipv6 netmask specified")? as u8)
            }
        };
    }
    s.one_packet = p.ops;
    if let Some(pe) = p.pe {
        s.pe_name = Some(pe.to_string());
    }
    if let Some(f) = p.sched_flags {
        s.sched_flags = SchedFlags::parse(s.scheduler.as_str(), f).map_err(|e| e.to_string())?;
    }
    if !key.is_fwmark() && key.port() == 0 && s.persistent.is_none() {
        return Err("Zero port specified for non-persistent service".into());
    }
    if s.one_packet
        && !matches!(
            key,
            ServiceKey::Fwmark { .. }
                | ServiceKey::Inet {
                    protocol: Protocol::Udp,
                    ..
                }
        )
    {
        return Err("One-Packet Scheduling is only for UDP virtual services".into());
    }
    Ok(s)
}

fn build_dest(p: &Parsed<'_>, key: &ServiceKey) -> Result<Dest, String> {
    let server = p.server.expect("checked: -r given");
    let proto = match key {
        ServiceKey::Inet { protocol, .. } => Some(*protocol),
        ServiceKey::Fwmark { .. } => Some(Protocol::Tcp),
    };
    let (addr, port) =
        parse_addr_port(server, proto).ok_or("illegal real server address[:port] specified")?;
    let forward = p.forward.unwrap_or(Forward::Gate);
    let mut d = Dest::new(addr, port.unwrap_or(key.port()), forward, 1);
    if !key.is_fwmark() && matches!(forward, Forward::Tunnel | Forward::Gate) {
        d.port = key.port();
    }
    if let Some(w) = p.weight {
        d.weight = number(w, 0, 65535).ok_or("illegal weight specified")? as u32;
    }
    if let Some(x) = p.uthr {
        d.upper_threshold =
            number(x, 0, i32::MAX as i64).ok_or("illegal u_threshold specified")? as u32;
    }
    if let Some(y) = p.lthr {
        d.lower_threshold =
            number(y, 0, i32::MAX as i64).ok_or("illegal l_threshold specified")? as u32;
    }
    if Family::of(&addr) != key.family() && forward != Forward::Tunnel {
        return Err("Different address family is allowed only for tunneling servers".into());
    }
    let tun_opts = [
        Opt::TunType,
        Opt::TunPort,
        Opt::TunNoCsum,
        Opt::TunCsum,
        Opt::TunRemCsum,
    ];
    if forward != Forward::Tunnel && tun_opts.iter().any(|o| p.seen.contains_key(o)) {
        return Err("Tunnel options conflict with forward method".into());
    }
    if let Some(t) = p.tun_type {
        d.tunnel.kind = match t {
            "ipip" => TunnelType::Ipip,
            "gue" => TunnelType::Gue,
            "gre" => TunnelType::Gre,
            _ => return Err("illegal tunnel type specified".into()),
        };
    }
    if let Some(tp) = p.tun_port {
        d.tunnel.port = number(tp, 1, 65535).ok_or("illegal tunnel port specified")? as u16;
    }
    d.tunnel.flags = p.tun_flags;
    // ipvsadm's tunnel-type/option table: ipip takes none; gue needs a port
    // and at most one checksum option; gre takes no port, no remcsum.
    let tname = d.tunnel.kind.name();
    let csum_opts: Vec<Opt> = [Opt::TunNoCsum, Opt::TunCsum, Opt::TunRemCsum]
        .into_iter()
        .filter(|o| p.seen.contains_key(o))
        .collect();
    let illegal = |o: Opt| {
        Err(format!(
            "Illegal '{}' option with the '{tname}' tunnel type",
            o.name()
        ))
    };
    match d.tunnel.kind {
        TunnelType::Ipip => {
            for o in [Opt::TunPort, Opt::TunNoCsum, Opt::TunCsum, Opt::TunRemCsum] {
                if p.seen.contains_key(&o) {
                    return illegal(o);
                }
            }
        }
        TunnelType::Gue => {
            if !p.seen.contains_key(&Opt::TunPort) {
                return Err(
                    "You need to supply the 'tun-port' option for the 'gue' tunnel type".into(),
                );
            }
        }
        TunnelType::Gre => {
            for o in [Opt::TunPort, Opt::TunRemCsum] {
                if p.seen.contains_key(&o) {
                    return illegal(o);
                }
            }
        }
    }
    if csum_opts.len() > 1 {
        return Err(format!(
            "The option '{}' conflicts with the '{}' option in the '{tname}' tunnel type",
            csum_opts[1].name(),
            csum_opts[0].name()
        ));
    }
    Ok(d)
}

// ----------------------------------------------------------------- printing

/// The service as ipvsadm names it in rules: `-t 1.2.3.4:80`, `-f 5 -6`.
pub fn service_switch(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Fwmark {
            family: Family::Inet,
            mark,
        } => format!("-f {}", *mark as i32),
        ServiceKey::Fwmark {
            family: Family::Inet6,
            mark,
        } => format!("-f {} -6", *mark as i32),
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => {
            let sw = match protocol {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
            };
            format!("{sw} {}", AddrPort(*addr, *port))
        }
    }
}

fn service_options(s: &Service) -> String {
    let mut o = format!(" -s {}", s.scheduler);
    if let Some(t) = s.persistent {
        o.push_str(&format!(" -p {t}"));
        match s.netmask {
            Netmask::V4(m) if m != Ipv4Addr::BROADCAST => o.push_str(&format!(" -M {m}")),
            Netmask::V6(p) if p != 128 => o.push_str(&format!(" -M {p}")),
            _ => {}
        }
    }
    if let Some(pe) = &s.pe_name {
        o.push_str(&format!(" --pe {pe}"));
    }
    if s.one_packet {
        o.push_str(" -o");
    }
    if !s.sched_flags.is_empty() {
        o.push_str(" -b ");
        o.push_str(&s.sched_flags.names(s.scheduler.as_str()).join(","));
    }
    o
}

const TUN_FLAG_OPTS: [&str; 3] = ["--tun-nocsum", "--tun-csum", "--tun-remcsum"];

fn tun_flag_opt(flags: u16) -> &'static str {
    TUN_FLAG_OPTS
        .get(flags as usize)
        .copied()
        .unwrap_or("--tun-nocsum")
}

fn dest_options(d: &Dest) -> String {
    let mut o = format!(" {} -w {}", d.forward.switch(), d.weight as i32);
    if d.forward == Forward::Tunnel {
        match d.tunnel.kind {
            TunnelType::Ipip => o.push_str(" --tun-type ipip"),
            TunnelType::Gue => o.push_str(&format!(
                " --tun-type gue --tun-port {} {}",
                d.tunnel.port,
                tun_flag_opt(d.tunnel.flags)
            )),
            TunnelType::Gre => {
                o.push_str(&format!(" --tun-type gre {}", tun_flag_opt(d.tunnel.flags)))
            }
        }
    }
    o
}

/// The `ipvsadm` command line equivalent to `op` (what [`Op`]'s Display shows);
/// destinations include `-x/-y` when a threshold is set.
pub fn op_command(op: &Op) -> String {
    match op {
        Op::AddService(s) => format!("-A {}{}", service_switch(&s.key), service_options(s)),
        Op::EditService(s) => format!("-E {}{}", service_switch(&s.key), service_options(s)),
        Op::DelService(k) => format!("-D {}", service_switch(k)),
        Op::AddDest(k, d) | Op::EditDest(k, d) => {
            let c = if matches!(op, Op::AddDest(..)) {
                "-a"
            } else {
                "-e"
            };
            let mut s = format!(
                "{c} {} -r {}{}",
                service_switch(k),
                AddrPort(d.addr, d.port),
                dest_options(d)
            );
            if d.upper_threshold != 0 || d.lower_threshold != 0 {
                s.push_str(&format!(
                    " -x {} -y {}",
                    d.upper_threshold, d.lower_threshold
                ));
            }
            s
        }
        Op::DelDest(k, d) => format!("-d {} -r {}", service_switch(k), d),
    }
}

/// The table as `ipvsadm-save -n` prints it.
pub fn save(table: &Table) -> String {
    let mut out = String::new();
    for e in ipvsadm_service_order(table) {
        let sw = service_switch(&e.service.key);
        out.push_str(&format!("-A {sw}{}\n", service_options(&e.service)));
        for d in ipvsadm_dest_order(e) {
            out.push_str(&format!(
                "-a {sw} -r {}{}\n",
                AddrPort(d.addr, d.port),
                dest_options(d)
            ));
        }
    }
    out
}

// ------------------------------------------------- ipvsadm's listing order

/// The address as libipvs's `union nf_inet_addr`, in host-order words.
fn addr_words(a: &IpAddr) -> [u32; 4] {
    match a {
        IpAddr::V4(v4) => [u32::from(*v4), 0, 0, 0],
        IpAddr::V6(v6) => {
            let o = v6.octets();
            std::array::from_fn(|i| {
                u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

/// libipvs's ipvs_cmp_services, including its `int r = u32 - u32` wrap.
fn cmp_services(a: &Service, b: &Service) -> i32 {
    let parts = |s: &Service| -> (u32, i32, i32, [u32; 4], i32, Family) {
        match s.key {
            ServiceKey::Fwmark { family, mark } => (mark, family.af() as i32, 0, [0; 4], 0, family),
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            } => {
                let f = Family::of(&addr);
                (
                    0,
                    f.af() as i32,
                    protocol.number() as i32,
                    addr_words(&addr),
                    port as i32,
                    f,
                )
            }
        }
    };
    let (fa, afa, pa, wa, porta, fam) = parts(a);
    let (fb, afb, pb, wb, portb, _) = parts(b);
    let r = fa.wrapping_sub(fb) as i32;
    if r != 0 {
        return r;
    }
    let r = afa - afb;
    if r != 0 {
        return r;
    }
    let r = pa - pb;
    if r != 0 {
        return r;
    }
    let r = addr_cmp(fam, &wa, &wb);
    if r != 0 {
        return r;
    }
    porta - portb
}

fn addr_cmp(family: Family, a: &[u32; 4], b: &[u32; 4]) -> i32 {
    match family {
        Family::Inet6 => {
            for i in 0..4 {
                let r = a[i].wrapping_sub(b[i]) as i32;
                if r != 0 {
                    return r;
                }
            }
            0
        }
        Family::Inet => a[0].wrapping_sub(b[0]) as i32,
    }
}

/// libipvs's ipvs_cmp_dests.
fn cmp_dests(a: &Dest, b: &Dest) -> i32 {
    let r = addr_cmp(
        Family::of(&a.addr),
        &addr_words(&a.addr),
        &addr_words(&b.addr),
    );
    if r != 0 {
        return r;
    }
    a.port as i32 - b.port as i32
}

/// glibc's qsort for element arrays (msort_with_tmp: top-down merge sort,
/// left half first, ties to the left), so that a comparator that is not a
/// total order gives the same result as in ipvsadm.
fn glibc_msort<T: Copy>(v: &mut [T], cmp: &impl Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    glibc_msort(&mut v[..n1], cmp);
    glibc_msort(&mut v[n1..], cmp);
    let mut tmp = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            tmp.push(v[i]);
            i += 1;
        } else {
            tmp.push(v[j]);
            j += 1;
        }
    }
    tmp.extend_from_slice(&v[i..n1]);
    let k = tmp.len();
    v[..k].copy_from_slice(&tmp);
}

/// Services in the order `ipvsadm -L` and `ipvsadm -S` print them.
pub fn ipvsadm_service_order(table: &Table) -> Vec<&Entry> {
    let mut v: Vec<&Entry> = table.entries().collect();
    glibc_msort(&mut v, &|a: &&Entry, b: &&Entry| {
        cmp_services(&a.service, &b.service)
    });
    v
}

/// A service's destinations in the order ipvsadm prints them.
pub fn ipvsadm_dest_order(e: &Entry) -> Vec<&Dest> {
    let mut v: Vec<&Dest> = e.dests.values().collect();
    glibc_msort(&mut v, &|a: &&Dest, b: &&Dest| cmp_dests(a, b));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed cluster's /etc/sysconfig/ipvsadm, as shipped in etc/.
    const SEED: &str = include_str!("../../tests/ipvs_data/sysconfig-ipvsadm");

    #[test]
    fn seed_file_round_trips() {
        let t = parse_table(SEED).unwrap();
        assert_eq!(t.len(), 1);
        let e = t.entries().next().unwrap();
        assert_eq!(
            e.service.key,
            ServiceKey::tcp(Ipv4Addr::new(192, 168, 136, 10), 80)
        );
        assert_eq!(e.service.scheduler.as_str(), "rr");
        assert_eq!(e.dests.len(), 5);
        assert!(e
            .dests
            .values()
            .all(|d| d.forward == Forward::Tunnel && d.weight == 1));
        // ipvsadm-save -n of that table (ipvsadm 1.31 adds --tun-type ipip)
        let saved = save(&t);
        assert_eq!(
            saved.lines().next().unwrap(),
            "-A -t 192.168.136.10:80 -s rr",
        );
        assert!(saved
            .contains("-a -t 192.168.136.10:80 -r 192.168.136.101:80 -i -w 1 --tun-type ipip\n"));
        assert!(parse_table(&saved).unwrap().same_config(&t));
    }

    #[test]
    fn long_options_grouping_and_defaults() {
        let c = parse_command(&words(
            "ipvsadm --add-service --tcp-service=10.0.0.1:80 --scheduler wrr --persistent",
        ))
        .unwrap();
        let Command::AddService(s) = c else { panic!() };
        assert_eq!(s.scheduler.as_str(), "wrr");
        assert_eq!(s.persistent, Some(360));
        let c = parse_command(&words("-At 10.0.0.1:443 -p300 -M 255.255.255.0")).unwrap();
        let Command::AddService(s) = c else { panic!() };
        assert_eq!(
            (s.persistent, s.netmask.to_string()),
            (Some(300), "255.255.255.0".into())
        );
        assert_eq!(s.scheduler.as_str(), "wlc");
        let c = parse_command(&words("-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -i -w 5")).unwrap();
        let Command::AddDest(_, d) = c else { panic!() };
        assert_eq!(
            (d.port, d.forward, d.weight),
            (80, Forward::Tunnel, 5),
            "tunnel forces the service port"
        );
        let c = parse_command(&words("-a -t 10.0.0.1:80 -r 10.0.0.2 -m")).unwrap();
        let Command::AddDest(_, d) = c else { panic!() };
        assert_eq!(d.port, 80, "port defaults to the service port");
        let c = parse_command(&words("-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -x 10 -y 2")).unwrap();
        let Command::AddDest(_, d) = c else { panic!() };
        assert_eq!(
            (d.port, d.upper_threshold, d.lower_threshold),
            (8080, 10, 2)
        );
        let c = parse_command(&words("-A -f 6 -6 -s lc -p 100 -M 64 -o")).unwrap();
        let Command::AddService(s) = c else { panic!() };
        assert_eq!(s.key, ServiceKey::fwmark6(6));
        assert_eq!(s.netmask, Netmask::V6(64));
        assert!(s.one_packet);
        let c =
            parse_command(&words("--sctp-service [2001:db8::1]:9 -A -s sh -b sh-port")).unwrap();
        let Command::AddService(s) = c else { panic!() };
        assert_eq!(
            s.key,
            ServiceKey::sctp("2001:db8::1".parse::<Ipv6Addr>().unwrap(), 9)
        );
        assert_eq!(s.sched_flags, SchedFlags::SH_PORT);
        assert_eq!(parse_command(&["-C"]).unwrap(), Command::Flush);
        assert_eq!(parse_command(&["-Z"]).unwrap(), Command::Zero(None));
        let c = parse_command(&words(
            "-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type gue --tun-port 6080 --tun-csum",
        ))
        .unwrap();
        let Command::AddDest(_, d) = c else { panic!() };
        assert_eq!(
            d.tunnel,
            Tunnel {
                kind: TunnelType::Gue,
                port: 6080,
                flags: Tunnel::CSUM
            }
        );
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let cases = [
            ("-A -t 10.0.0.1:80 -s bogus", "unknown scheduler `bogus`"),
            (
                "-A -t 10.0.0.1 -s rr",
                "Zero port specified for non-persistent service",
            ),
            (
                "-A -t 10.0.0.1:80 -o",
                "One-Packet Scheduling is only for UDP virtual services",
            ),
            (
                "-a -t 10.0.0.1:80",
                "You need to supply the 'real-server' option for the 'add-server' command",
            ),
            (
                "-A -t 10.0.0.1:80 -w 3",
                "Illegal 'weight' option with the 'add-service' command",
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -w 70000",
                "illegal weight specified",
            ),
            (
                "-A -t 10.0.0.300:80",
                "illegal virtual server address[:port] specified",
            ),
            ("-A -t 10.0.0.1:80 -A", "multiple commands specified"),
            (
                "-A -t 10.0.0.1:80 -s rr -s wrr",
                "multiple 'scheduler' options specified",
            ),
            ("-A -t 10.0.0.1:80 -6", "-6 used before -f"),
            ("-A -f 0", "invalid fwmark value `0' specified"),
            (
                "-a -t 10.0.0.1:80 -r [::1]:80 -g",
                "Different address family is allowed only for tunneling servers",
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-type gue",
                "Tunnel options conflict with forward method",
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue",
                "You need to supply the 'tun-port' option for the 'gue' tunnel type",
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-remcsum",
                "Illegal 'tun-remcsum' option with the 'gre' tunnel type",
            ),
            ("-L -n", "is not a rule"),
            ("-A -t 10.0.0.1:80 --bogus", "invalid option `--bogus'"),
            ("-t 10.0.0.1:80", "no command"),
            (
                "-A -t 10.0.0.1:80 -s sh -b mh-port",
                "incompatible scheduler flag `mh-port'",
            ),
        ];
        for (line, want) in cases {
            let text = format!("# comment\n\n{line}\n");
            let e = parse_rules(&text).unwrap_err();
            assert_eq!(e.line, 3, "{line}");
            let s = e.to_string();
            assert!(
                s.starts_with("line 3: ") && s.contains(want),
                "{line}: got {s}"
            );
        }
        // kernel-like refusals while building the table also name the line
        let e = parse_table("-A -t 10.0.0.1:80\n-a -t 10.0.0.9:80 -r 10.0.0.2\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: Service not defined");
        let e = parse_table("-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80 -s rr\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: Service already exists");
    }

    #[test]
    fn read_rules_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ipvsadm");
        std::fs::write(&p, "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r nohost\n").unwrap();
        let e = read_rules_file(&p).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:2: illegal real server", p.display())),
            "{e}"
        );
        let e = read_rules_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing: cannot read"), "{e}");
    }

    #[test]
    fn save_matches_ipvsadm_order_and_layout() {
        // observed from ipvsadm 1.31 -S -n on Linux 6.1 (user-mode Linux guest)
        let rules = "\
-A -t 10.99.0.10:80 -s rr
-a -t 10.99.0.10:80 -r 10.99.1.1:80 -i
-a -t 10.99.0.10:80 -r 10.99.1.2:80 -g -w 3 -x 10 -y 2
-a -t 10.99.0.10:80 -r 10.99.1.3:8080 -m -w 0
-a -t 10.99.0.10:80 -r 127.0.0.1:80 -g
-A -u 10.99.0.10:53 -s sh -b sh-fallback,sh-port -p -o
-A -f 5 -s wlc -p 100 -M 255.255.255.0
-A -f 6 -6 -s lc -p 100 -M 64
-a -f 5 -r 10.99.1.1
-A -t [2001:db8::1]:443 -s mh -b mh-port
-a -t [2001:db8::1]:443 -r [2001:db8::2]:443 -m
-A --sctp-service 10.0.0.1:9 -s sed --pe sip -p 10
-A -t 192.168.1.1:80 -s nq
-a -t 192.168.1.1:80 -r 10.1.1.1:80 -i --tun-type gue --tun-port 6080 --tun-csum
";
        let want = "\
-A -t 192.168.1.1:80 -s nq
-a -t 192.168.1.1:80 -r 10.1.1.1:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-A -t 10.99.0.10:80 -s rr
-a -t 10.99.0.10:80 -r 10.99.1.1:80 -i -w 1 --tun-type ipip
-a -t 10.99.0.10:80 -r 10.99.1.2:80 -g -w 3
-a -t 10.99.0.10:80 -r 10.99.1.3:8080 -m -w 0
-a -t 10.99.0.10:80 -r 127.0.0.1:80 -g -w 1
-A -u 10.99.0.10:53 -s sh -p 360 -o -b sh-fallback,sh-port
-A --sctp-service 10.0.0.1:9 -s sed -p 10 --pe sip
-A -t [2001:db8::1]:443 -s mh -b mh-port
-a -t [2001:db8::1]:443 -r [2001:db8::2]:443 -m -w 1
-A -f 5 -s wlc -p 100 -M 255.255.255.0
-a -f 5 -r 10.99.1.1:0 -g -w 1
-A -f 6 -6 -s lc -p 100 -M 64
";
        let t = parse_table(rules).unwrap();
        assert_eq!(save(&t), want);
        assert!(parse_table(want).unwrap().same_config(&{
            // thresholds are not saved by ipvsadm
            let mut t2 = t.clone();
            let k = ServiceKey::tcp(Ipv4Addr::new(10, 99, 0, 10), 80);
            let mut d = t2
                .dest(
                    &k,
                    &DestKey {
                        addr: "10.99.1.2".parse().unwrap(),
                        port: 80,
                    },
                )
                .unwrap()
                .clone();
            d.upper_threshold = 0;
            d.lower_threshold = 0;
            t2.insert_dest(&k, d).unwrap();
            t2
        }));
    }

    #[test]
    fn op_display_is_an_ipvsadm_command() {
        let k = ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80);
        let d = Dest::new(Ipv4Addr::new(10, 0, 0, 2), 80, Forward::Gate, 0).with_thresholds(5, 1);
        assert_eq!(
            Op::EditDest(k, d.clone()).to_string(),
            "-e -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 0 -x 5 -y 1"
        );
        assert_eq!(
            Op::DelDest(k, d.key()).to_string(),
            "-d -t 10.0.0.1:80 -r 10.0.0.2:80"
        );
        assert_eq!(
            Op::DelService(ServiceKey::fwmark6(3)).to_string(),
            "-D -f 3 -6"
        );
        // every printed op parses back to itself
        for op in [
            Op::EditDest(k, d.clone()),
            Op::AddDest(k, d),
            Op::DelService(k),
        ] {
            let line = op.to_string();
            assert_eq!(
                parse_command(&words(&line)).unwrap().to_op(),
                Some(op),
                "{line}"
            );
        }
    }

    #[test]
    fn glibc_msort_keeps_ipvsadm_quirks() {
        // 192.168.1.1 sorts before 10.99.0.10: the comparator's u32 difference wraps
        let t =
            parse_table("-A -t 10.99.0.10:80\n-A -t 192.168.1.1:80\n-A -t 10.0.0.1:80\n").unwrap();
        let order: Vec<String> = ipvsadm_service_order(&t)
            .iter()
            .map(|e| e.service.key.to_string())
            .collect();
        assert_eq!(
            order,
            ["TCP 192.168.1.1:80", "TCP 10.0.0.1:80", "TCP 10.99.0.10:80"]
        );
    }
}
