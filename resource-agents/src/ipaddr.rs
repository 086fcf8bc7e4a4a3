//! `IPaddr`: a virtual IP address (IPv4 or IPv6) on an interface, announced
//! with gratuitous ARP (IPv4) or unsolicited neighbour advertisements (IPv6).
//!
//! Parameters follow ocf:heartbeat:IPaddr2 (`ip`, `cidr_netmask`, `nic`,
//! `broadcast`, `iflabel`, `arp_count`, `arp_interval`, `arp_bg`, `nodad`);
//! heartbeat v1 passes `ip[/bits[/nic[:label]][/broadcast]]`. Without `nic`
//! (or without a prefix) the interface, prefix and broadcast come from the
//! longest-prefix link-scope route (IPaddr2's findif rule).
//!
//! It never removes an address it did not add: `start` records what it
//! added in the state directory (`IPaddr-<ip>`), `stop` removes only that.
//! Start and stop are idempotent.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use hanet::addr::{netmask_to_prefix, network_broadcast, AddrSpec};
use hanet::arp::{self, Announce};
use hanet::link::{valid_ifname, IFNAME_MAX};
use hanet::route::IfChoice;
use hanet::Rtnl;

use crate::agent::{Agent, AgentError, Ctx, Params, State};
use crate::ocf::{ActionSpec, MetaData, ParamSpec, ParamType};
use crate::state;

static PARAMS: [ParamSpec; 9] = [
    ParamSpec::new("ip", "IPv4 or IPv6 address")
        .required()
        .unique()
        .long("The IPv4 (dotted quad) or IPv6 address to add, e.g. 192.168.136.10."),
    ParamSpec::new("cidr_netmask", "Prefix length").long(
        "The prefix length (24) or, for IPv4, a dotted netmask (255.255.255.0). \
         Default: the prefix of the longest link-scope route that contains the address.",
    ),
    ParamSpec::new("nic", "Network interface").long(
        "The interface to add the address to (eth0; eth0:label sets the label too). \
         Default: the interface of the longest link-scope route that contains the address.",
    ),
    ParamSpec::new("broadcast", "IPv4 broadcast address").long(
        "Broadcast address for IPv4: an address, '+' (network broadcast) or '-' (none). \
         Default: that of the interface's own address in the network.",
    ),
    ParamSpec::new("iflabel", "Interface label")
        .long("IPv4 label suffix: the address gets label NIC:IFLABEL (15 bytes at most)."),
    ParamSpec::new("arp_count", "Number of announcements")
        .kind(ParamType::Integer)
        .default("5")
        .long("IPv4: gratuitous ARP request/reply pairs to send; IPv6: neighbour advertisements. 0 = none."),
    ParamSpec::new("arp_interval", "Milliseconds between announcements")
        .kind(ParamType::Integer)
        .default("200"),
    ParamSpec::new("arp_bg", "Announce in the background").kind(ParamType::Boolean).long(
        "Send the announcements from a background process so start returns at once. \
         Default: yes for IPv4, no for IPv6.",
    ),
    ParamSpec::new("nodad", "IPv6: skip duplicate address detection")
        .kind(ParamType::Boolean)
        .default("false"),
];

static ACTIONS: [ActionSpec; 6] = [
    ActionSpec::new("start", "20s"),
    ActionSpec::new("stop", "20s"),
    ActionSpec::new("status", "20s"),
    ActionSpec::monitor("20s", "10s"),
    ActionSpec::new("meta-data", "5s"),
    ActionSpec::new("validate-all", "20s"),
];

static META: MetaData = MetaData {
    name: "IPaddr",
    shortdesc: "Manages a virtual IPv4/IPv6 address (heartbeat-rs)",
    longdesc: "Adds a virtual IP address to an interface and announces it with gratuitous \
               ARP (IPv4) or unsolicited neighbour advertisements (IPv6); removes it on stop. \
               Only an address this agent added is ever removed. Works as a heartbeat v1 \
               resource (IPaddr::ip/bits/nic/broadcast), an LSB script and an OCF agent.",
    params: &PARAMS,
    actions: &ACTIONS,
};

/// How the broadcast address is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcast {
    /// From the interface's own address in that network (or computed).
    Auto,
    /// The network broadcast (`+`).
    Network,
    /// None (`-`).
    Off,
    Addr(Ipv4Addr),
}

/// The checked parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub ip: IpAddr,
    pub prefix: Option<u8>,
    pub nic: Option<String>,
    /// Full label (`eth0:vip`), IPv4 only.
    pub label_suffix: Option<String>,
    pub broadcast: Broadcast,
    pub announce: Announce,
    pub arp_bg: bool,
    pub nodad: bool,
}

/// Where the address goes (after interface selection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub index: u32,
    pub nic: String,
    pub prefix: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
}

/// Parses the address; refuses what cannot be a service address.
pub fn parse_ip(s: &str) -> Result<IpAddr, AgentError> {
    let ip: IpAddr = s.trim().parse().map_err(|_| {
        AgentError::configured(format!("ip={s:?} is not a valid IPv4 or IPv6 address"))
    })?;
    let bad = ip.is_unspecified()
        || ip.is_multicast()
        || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if bad {
        return Err(AgentError::configured(format!(
            "ip={ip} cannot be a service address (unspecified, multicast or broadcast)"
        )));
    }
    Ok(ip)
}

/// Parses `cidr_netmask`: a prefix length or (IPv4) a dotted netmask.
pub fn parse_prefix(ip: IpAddr, s: &str) -> Result<u8, AgentError> {
    let s = s.trim();
    let max = hanet::addr::max_prefix(ip);
    if let Ok(p) = s.parse::<u8>() {
        if p >= 1 && p <= max {
            return Ok(p);
        }
    } else if let (IpAddr::V4(_), Ok(mask)) = (ip, s.parse::<Ipv4Addr>()) {
        if let Some(p) = netmask_to_prefix(mask).filter(|p| *p >= 1) {
            return Ok(p);
        }
    }
    Err(AgentError::configured(format!(
        "cidr_netmask={s:?} is not a prefix length 1-{max}{}",
        if ip.is_ipv4() {
            " or a contiguous dotted netmask"
        } else {
            ""
        }
    )))
}

/// Splits heartbeat v1's `ip[/bits[/nic[:label]][/broadcast]]` like the
/// resource.d/IPaddr wrapper: after the prefix a field starting with a
/// digit is the broadcast, anything else the nic (then the broadcast).
pub fn split_v1(arg: &str) -> Result<Vec<(&'static str, String)>, AgentError> {
    let f: Vec<&str> = arg.split('/').collect();
    if f.len() > 4 || f[0].is_empty() {
        return Err(AgentError::args(format!(
            "bad argument {arg:?}: expected ip[/bits[/nic[:label]][/broadcast]]"
        )));
    }
    let mut out = vec![("ip", f[0].to_string())];
    if let Some(bits) = f.get(1).filter(|s| !s.is_empty()) {
        out.push(("cidr_netmask", bits.to_string()));
    }
    let mut rest = f.iter().skip(2).filter(|s| !s.is_empty());
    if let Some(third) = rest.next() {
        if third.starts_with(|c: char| c.is_ascii_digit()) {
            out.push(("broadcast", third.to_string()));
            if rest.next().is_some() {
                return Err(AgentError::args(format!(
                    "bad argument {arg:?}: nothing may follow the broadcast address"
                )));
            }
        } else {
            match third.split_once(':') {
                Some((nic, label)) => {
                    out.push(("nic", nic.to_string()));
                    out.push(("iflabel", label.to_string()));
                }
                None => out.push(("nic", third.to_string())),
            }
            if let Some(b) = rest.next() {
                out.push(("broadcast", b.to_string()));
            }
        }
    }
    Ok(out)
}

/// Checks the parameters without touching the system (except that a given
/// `nic` must exist).
pub fn config(p: &Params) -> Result<Config, AgentError> {
    let ip = parse_ip(p.require("ip")?)?;
    let prefix = p
        .get("cidr_netmask")
        .map(|s| parse_prefix(ip, s))
        .transpose()?;
    let (nic, mut label_suffix) = match p.get("nic") {
        None => (None, None),
        Some(n) => match n.split_once(':') {
            Some((base, l)) => (Some(base.to_string()), Some(l.to_string())),
            None => (Some(n.to_string()), None),
        },
    };
    if let Some(l) = p.get("iflabel") {
        label_suffix = Some(l.to_string());
    }
    if let Some(n) = &nic {
        valid_ifname(n).map_err(|e| AgentError::configured(format!("nic={n:?}: {e}")))?;
    }
    if let Some(l) = &label_suffix {
        if ip.is_ipv6() {
            return Err(AgentError::configured(
                "iflabel applies to IPv4 addresses only".to_string(),
            ));
        }
        let base = nic.as_deref().unwrap_or("");
        let full_len = base.len().max(1) + 1 + l.len();
        if l.is_empty()
            || l.contains(char::is_whitespace)
            || (!base.is_empty() && full_len > IFNAME_MAX)
        {
            return Err(AgentError::configured(format!(
                "iflabel={l:?}: the label NIC:IFLABEL must be at most {IFNAME_MAX} bytes, no spaces"
            )));
        }
    }
    let broadcast = match p.get("broadcast") {
        None => Broadcast::Auto,
        Some("+") => Broadcast::Network,
        Some("-") => Broadcast::Off,
        Some(b) => {
            if ip.is_ipv6() {
                return Err(AgentError::configured(
                    "broadcast applies to IPv4 addresses only".to_string(),
                ));
            }
            Broadcast::Addr(b.parse().map_err(|_| {
                AgentError::configured(format!(
                    "broadcast={b:?} is not an IPv4 address, '+' or '-'"
                ))
            })?)
        }
    };
    let count = p.u32("arp_count")?.unwrap_or(5);
    let interval = p.u32("arp_interval")?.unwrap_or(200);
    if count > 0 && interval == 0 {
        return Err(AgentError::configured(
            "arp_interval must be at least 1 ms".to_string(),
        ));
    }
    let arp_bg = if p.get("arp_bg").is_some() {
        p.bool("arp_bg")?
    } else {
        ip.is_ipv4()
    };
    if let Some(n) = &nic {
        if nix::net::if_::if_nametoindex(n.as_str()).is_err() {
            return Err(AgentError::configured(format!(
                "Invalid interface name [{n}]: no such interface"
            )));
        }
    }
    Ok(Config {
        ip,
        prefix,
        nic,
        label_suffix,
        broadcast,
        announce: Announce {
            count,
            interval: Duration::from_millis(interval as u64),
        },
        arp_bg,
        nodad: p.bool("nodad")?,
    })
}

fn state_name(ip: IpAddr) -> String {
    format!("IPaddr-{ip}")
}

fn arp_pid_name(ip: IpAddr) -> String {
    format!("IPaddr-arp-{ip}")
}

/// Removes the address `start` recorded adding (if it is still there) and
/// the record.
fn release(
    rt: &mut Rtnl,
    ip: IpAddr,
    (nic, prefix): (String, u8),
    ctx: &Ctx,
) -> Result<(), AgentError> {
    if let Some(link) = rt.link_by_name(&nic)? {
        let here = rt
            .addresses(Some(link.index))?
            .into_iter()
            .any(|a| a.addr == ip && a.prefix == prefix);
        if here {
            ctx.log.info(&format!("Removing {ip}/{prefix} from {nic}"));
            match rt.del_address(link.index, ip, prefix) {
                Err(e) if e.errno() != Some(libc::EADDRNOTAVAIL) => return Err(e.into()),
                _ => {}
            }
        }
    }
    state::remove(&state_name(ip))
}

/// What `start` recorded: the interface name and prefix it added.
fn owned(ip: IpAddr) -> Result<Option<(String, u8)>, AgentError> {
    let Some(text) = state::read(&state_name(ip))? else {
        return Ok(None);
    };
    let kv = state::parse_kv(&text);
    let get = |k: &str| kv.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
    match (get("nic"), get("prefix").and_then(|p| p.parse().ok())) {
        (Some(n), Some(p)) => Ok(Some((n, p))),
        _ => Err(AgentError::generic(format!(
            "corrupt state file {}",
            state::path(&state_name(ip)).display()
        ))),
    }
}

impl Config {
    /// Picks interface, prefix and broadcast. `None` when no interface can
    /// be found (no nic and no matching link-scope route).
    pub fn place(&self, rt: &mut Rtnl) -> Result<Option<Placement>, AgentError> {
        let choice: Option<IfChoice> = match (&self.nic, self.prefix) {
            (Some(nic), Some(prefix)) => {
                let link = rt.link_by_name(nic)?.ok_or_else(|| {
                    AgentError::configured(format!(
                        "Invalid interface name [{nic}]: no such interface"
                    ))
                })?;
                let routed = rt.find_interface(self.ip, Some(nic))?;
                Some(IfChoice {
                    index: link.index,
                    name: link.name,
                    prefix,
                    broadcast: routed
                        .filter(|r| r.prefix == prefix)
                        .and_then(|r| r.broadcast),
                })
            }
            (nic, _) => rt.find_interface(self.ip, nic.as_deref())?,
        };
        let Some(c) = choice else { return Ok(None) };
        let prefix = self.prefix.unwrap_or(c.prefix);
        let broadcast = match (self.ip, self.broadcast) {
            (IpAddr::V6(_), _) | (_, Broadcast::Off) => None,
            (IpAddr::V4(v4), Broadcast::Auto) => {
                c.broadcast.or_else(|| network_broadcast(v4, prefix))
            }
            (IpAddr::V4(v4), Broadcast::Network) => network_broadcast(v4, prefix),
            (_, Broadcast::Addr(b)) => Some(b),
        };
        let label = self
            .label_suffix
            .as_ref()
            .map(|l| format!("{}:{l}", c.name));
        if let Some(l) = &label {
            if l.len() > IFNAME_MAX {
                return Err(AgentError::configured(format!(
                    "label {l:?} is longer than {IFNAME_MAX} bytes"
                )));
            }
        }
        Ok(Some(Placement {
            index: c.index,
            nic: c.name,
            prefix,
            broadcast,
            label,
        }))
    }

    /// Index of the interface the address is expected on, without a route
    /// lookup when possible (explicit nic, or the one start recorded).
    fn expected_index(&self, rt: &mut Rtnl) -> Result<Option<(u32, String)>, AgentError> {
        let name = match (&self.nic, owned(self.ip)?) {
            (Some(n), _) => Some(n.clone()),
            (None, Some((n, _))) => Some(n),
            (None, None) => None,
        };
        if let Some(n) = name {
            return Ok(nix::net::if_::if_nametoindex(n.as_str())
                .ok()
                .map(|i| (i, n)));
        }
        Ok(self.place(rt)?.map(|p| (p.index, p.nic)))
    }
}

/// The `IPaddr` agent.
pub struct IpAddrAgent;

impl IpAddrAgent {
    fn announce(&self, cfg: &Config, pl: &Placement, ctx: &Ctx) -> Result<(), AgentError> {
        if cfg.announce.count == 0 {
            return Ok(());
        }
        let mut rt = Rtnl::open()?;
        let link = rt
            .link_by_index(pl.index)?
            .ok_or_else(|| AgentError::generic(format!("interface {} vanished", pl.nic)))?;
        let Some(mac) = link.mac.filter(|_| !link.noarp && !link.loopback) else {
            ctx.log.debug(&format!(
                "{}: no ARP on this device, not announcing",
                pl.nic
            ));
            return Ok(());
        };
        let what = if cfg.ip.is_ipv4() {
            "gratuitous ARPs"
        } else {
            "unsolicited neighbour advertisements"
        };
        if !cfg.arp_bg {
            ctx.log.info(&format!(
                "sending {} {what} for {} on {}",
                cfg.announce.count, cfg.ip, pl.nic
            ));
            return arp::announce(pl.index, mac, cfg.ip, &cfg.announce).map_err(Into::into);
        }
        // Background sender, like IPaddr2 running send_arp detached: the
        // child leaves our stdio (callers wait for EOF on it) and records
        // its pid so stop can end it early.
        use nix::unistd::{fork, ForkResult};
        // SAFETY: the agent is single-threaded; the child only sends frames
        // and exits.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let _ = nix::unistd::setsid();
                if let Ok(null) = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")
                {
                    use std::os::fd::AsRawFd;
                    for fd in 0..3 {
                        // SAFETY: dup2 onto our own standard descriptors.
                        unsafe { libc::dup2(null.as_raw_fd(), fd) };
                    }
                }
                let _ = arp::announce(pl.index, mac, cfg.ip, &cfg.announce);
                let me = std::process::id().to_string();
                if state::read(&arp_pid_name(cfg.ip))
                    .ok()
                    .flatten()
                    .as_deref()
                    .map(str::trim)
                    == Some(me.as_str())
                {
                    let _ = state::remove(&arp_pid_name(cfg.ip));
                }
                // SAFETY: leave without running the parent's exit handlers.
                unsafe { libc::_exit(0) }
            }
            Ok(ForkResult::Parent { child }) => {
                state::write(&arp_pid_name(cfg.ip), &format!("{child}\n"))?;
                ctx.log.info(&format!(
                    "sending {} {what} for {} on {} in the background (pid {child})",
                    cfg.announce.count, cfg.ip, pl.nic
                ));
                Ok(())
            }
            Err(e) => Err(AgentError::generic(format!("fork for {what}: {e}"))),
        }
    }

    /// Ends `ip`'s ARP announcer and removes the address `start` recorded
    /// adding, with the record. `false`: there was no record.
    fn release_recorded(&self, ip: IpAddr, ctx: &Ctx) -> Result<bool, AgentError> {
        self.stop_announcer(ip, ctx)?;
        match owned(ip)? {
            Some(rec) => release(&mut Rtnl::open()?, ip, rec, ctx).map(|()| true),
            None => Ok(false),
        }
    }

    fn stop_announcer(&self, ip: IpAddr, ctx: &Ctx) -> Result<(), AgentError> {
        let pidfile = state::path(&arp_pid_name(ip));
        if let Some(pid) = state::live_pid(&pidfile) {
            state::signal(pid, nix::sys::signal::Signal::SIGTERM);
            ctx.log.info(&format!(
                "killed previously running ARP sender for {ip} (pid {pid})"
            ));
        }
        state::remove(&arp_pid_name(ip))
    }

    fn wait_dad(&self, rt: &mut Rtnl, cfg: &Config, pl: &Placement) -> Result<(), AgentError> {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let a = rt
                .addresses(Some(pl.index))?
                .into_iter()
                .find(|a| a.addr == cfg.ip);
            match a {
                None => {
                    return Err(AgentError::generic(format!(
                        "{} vanished during DAD",
                        cfg.ip
                    )))
                }
                Some(a) if a.dad_failed() => {
                    let _ = rt.del_address(pl.index, cfg.ip, pl.prefix);
                    let _ = state::remove(&state_name(cfg.ip));
                    return Err(AgentError::generic(format!(
                        "{} is already in use on the link (duplicate address detection failed)",
                        cfg.ip
                    )));
                }
                Some(a) if !a.tentative() => return Ok(()),
                Some(_) if Instant::now() >= end => {
                    return Err(AgentError::generic(format!(
                        "{}: duplicate address detection did not finish in 10 s",
                        cfg.ip
                    )))
                }
                Some(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Agent for IpAddrAgent {
    type Config = Config;

    fn meta(&self) -> &'static MetaData {
        &META
    }

    fn v1_usage(&self) -> &'static str {
        "ip[/bits[/nic[:label]][/broadcast]]"
    }

    fn v1_args(&self, args: &[String], params: &mut Params) -> Result<(), AgentError> {
        match args {
            [] => Ok(()),
            [one] => {
                for (k, v) in split_v1(one)? {
                    params.set(k, &v);
                }
                Ok(())
            }
            _ => Err(AgentError::args(format!(
                "IPaddr takes one argument ip[/bits[/nic[:label]][/broadcast]] before the action, got {args:?}"
            ))),
        }
    }

    fn validate(&self, params: &Params, ctx: &Ctx) -> Result<Config, AgentError> {
        let mut params = params.clone();
        // legacy alias, as IPaddr2 accepts it
        if !params.given("cidr_netmask") {
            if let Ok(m) = std::env::var("OCF_RESKEY_netmask") {
                params.set("cidr_netmask", &m);
            }
        }
        let cfg = config(&params)?;
        if ctx.action == crate::ocf::Action::ValidateAll {
            let mut rt = Rtnl::open()?;
            if cfg.place(&mut rt)?.is_none() {
                return Err(AgentError::configured(format!(
                    "Unable to find nic or netmask for {}: no link-scope route contains it (set nic and cidr_netmask)",
                    cfg.ip
                )));
            }
        }
        Ok(cfg)
    }

    fn start(&self, cfg: &Config, ctx: &Ctx) -> Result<(), AgentError> {
        let mut rt = Rtnl::open()?;
        let Some(pl) = cfg.place(&mut rt)? else {
            return Err(AgentError::generic(format!(
                "[findif] failed: unable to find nic or netmask for {} (no link-scope route contains it; set nic and cidr_netmask)",
                cfg.ip
            )));
        };
        let present = rt
            .addresses(Some(pl.index))?
            .into_iter()
            .any(|a| a.addr == cfg.ip);
        if present {
            // Starting a started VIP succeeds and announces it again: after
            // a split brain the node that keeps the address must win the
            // neighbours' ARP caches back (heartbeatd re-runs start for it).
            ctx.log.info(&format!(
                "{} is already on {}: announcing it again",
                cfg.ip, pl.nic
            ));
            self.stop_announcer(cfg.ip, ctx)?;
            return self.announce(cfg, &pl, ctx);
        }
        let link = rt
            .link_by_index(pl.index)?
            .ok_or_else(|| AgentError::generic(format!("interface {} vanished", pl.nic)))?;
        // Record the intent first: an interrupted start leaves a state file
        // whose address is absent, which stop handles; never the reverse.
        state::write(
            &state_name(cfg.ip),
            &format!("nic={}\nprefix={}\n", pl.nic, pl.prefix),
        )?;
        let spec = AddrSpec {
            addr: cfg.ip,
            prefix: pl.prefix,
            broadcast: pl.broadcast,
            label: pl.label.clone(),
            nodad: cfg.nodad,
        };
        let fam = if cfg.ip.is_ipv4() { "inet" } else { "inet6" };
        ctx.log.info(&format!(
            "Adding {fam} address {}/{}{}{} to device {}",
            cfg.ip,
            pl.prefix,
            pl.broadcast
                .map(|b| format!(" brd {b}"))
                .unwrap_or_default(),
            pl.label
                .as_ref()
                .map(|l| format!(" label {l}"))
                .unwrap_or_default(),
            pl.nic,
        ));
        match rt.add_address(pl.index, &spec) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                let _ = state::remove(&state_name(cfg.ip));
                ctx.log
                    .info(&format!("{} appeared on {} meanwhile", cfg.ip, pl.nic));
                return Ok(());
            }
            Err(e) => {
                let _ = state::remove(&state_name(cfg.ip));
                return Err(e.into());
            }
        }
        if !link.up {
            ctx.log.info(&format!("Bringing device {} up", pl.nic));
            rt.set_link_up(pl.index, true)?;
        }
        if cfg.ip.is_ipv6() && !cfg.nodad {
            self.wait_dad(&mut rt, cfg, &pl)?;
        }
        self.stop_announcer(cfg.ip, ctx)?;
        self.announce(cfg, &pl, ctx)
    }

    fn stop(&self, cfg: &Config, ctx: &Ctx) -> Result<(), AgentError> {
        if self.release_recorded(cfg.ip, ctx)? {
            return Ok(());
        }
        let mut rt = Rtnl::open()?;
        if let Some((index, nic)) = cfg.expected_index(&mut rt)? {
            let here = rt
                .addresses(Some(index))?
                .into_iter()
                .any(|a| a.addr == cfg.ip);
            if here {
                ctx.log.warn(&format!(
                    "{} on {nic} was not added by this agent: leaving it in place",
                    cfg.ip
                ));
            }
        }
        Ok(())
    }

    fn stop_unvalidated(&self, params: &Params, ctx: &Ctx) -> Option<Result<(), AgentError>> {
        // the address alone names the record (e.g. the nic is gone)
        let ip = parse_ip(params.get("ip")?).ok()?;
        Some(self.release_recorded(ip, ctx).map(|_| ()))
    }

    fn monitor(&self, cfg: &Config, _ctx: &Ctx) -> Result<State, AgentError> {
        let mut rt = Rtnl::open()?;
        let Some((index, nic)) = cfg.expected_index(&mut rt)? else {
            return Ok(State::stopped(format!("no interface for {}", cfg.ip)));
        };
        let found = rt
            .addresses(Some(index))?
            .into_iter()
            .find(|a| a.addr == cfg.ip && cfg.prefix.is_none_or(|p| p == a.prefix));
        Ok(match found {
            Some(a) => State::running(format!("{}/{} on {nic}", a.addr, a.prefix)),
            None => State::stopped(format!("{} not on {nic}", cfg.ip)),
        })
    }
}

/// The agent's meta-data (for tests and benchmarks).
pub fn meta() -> &'static MetaData {
    &META
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::Rc;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(&META, pairs)
    }

    #[test]
    fn v1_argument_forms() {
        let kv = |s: &str| {
            split_v1(s)
                .unwrap()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(kv("192.168.136.10"), "ip=192.168.136.10");
        assert_eq!(
            kv("192.168.136.10/24/eth0"),
            "ip=192.168.136.10 cidr_netmask=24 nic=eth0"
        );
        assert_eq!(
            kv("10.0.0.5/24/10.0.0.255"),
            "ip=10.0.0.5 cidr_netmask=24 broadcast=10.0.0.255"
        );
        assert_eq!(
            kv("10.0.0.5/24/eth1:web/10.0.0.255"),
            "ip=10.0.0.5 cidr_netmask=24 nic=eth1 iflabel=web broadcast=10.0.0.255"
        );
        assert_eq!(kv("10.0.0.5//eth1"), "ip=10.0.0.5 nic=eth1");
        assert_eq!(split_v1("a/b/c/d/e").unwrap_err().rc, Rc::ErrArgs);
        assert_eq!(split_v1("/24").unwrap_err().rc, Rc::ErrArgs);
        assert_eq!(
            split_v1("10.0.0.5/24/10.0.0.255/x").unwrap_err().rc,
            Rc::ErrArgs
        );
    }

    #[test]
    fn parameter_checks() {
        let c = config(&p(&[("ip", "10.0.0.5"), ("cidr_netmask", "255.255.255.0")])).unwrap();
        assert_eq!(c.prefix, Some(24));
        assert!(c.arp_bg);
        assert_eq!(c.announce, Announce::default());
        let c6 = config(&p(&[("ip", "fd00::5"), ("cidr_netmask", "64")])).unwrap();
        assert!(!c6.arp_bg);
        let rc = |pairs: &[(&str, &str)]| config(&p(pairs)).err().map(|e| e.rc);
        assert_eq!(rc(&[]), Some(Rc::ErrConfigured));
        assert_eq!(rc(&[("ip", "10.0.0.300")]), Some(Rc::ErrConfigured));
        assert_eq!(rc(&[("ip", "0.0.0.0")]), Some(Rc::ErrConfigured));
        assert_eq!(rc(&[("ip", "224.0.0.1")]), Some(Rc::ErrConfigured));
        assert_eq!(
            rc(&[("ip", "10.0.0.5"), ("cidr_netmask", "33")]),
            Some(Rc::ErrConfigured)
        );
        assert_eq!(
            rc(&[("ip", "10.0.0.5"), ("cidr_netmask", "0")]),
            Some(Rc::ErrConfigured)
        );
        assert_eq!(
            rc(&[("ip", "10.0.0.5"), ("cidr_netmask", "255.0.255.0")]),
            Some(Rc::ErrConfigured)
        );
        assert_eq!(
            rc(&[("ip", "fd00::5"), ("cidr_netmask", "129")]),
            Some(Rc::ErrConfigured)
        );
        assert_eq!(
            rc(&[("ip", "10.0.0.5"), ("broadcast", "x")]),
            Some(Rc::ErrConfigured)
        );
        assert_eq!(
            rc(&[("ip", "fd00::5"), ("broadcast", "1.2.3.4")]),
            Some(Rc::ErrConfigured)
        );
        assert_eq!(
            rc(&[("ip", "10.0.0.5"), ("arp_count", "-1")]),
            Some(Rc::ErrConfigured)
        );
        assert_eq!(
            rc(&[("ip", "10.0.0.5"), ("arp_bg", "maybe")]),
            Some(Rc::ErrConfigured)
        );
        assert_eq!(
            rc(&[("ip", "10.0.0.5"), ("nic", "no/such")]),
            Some(Rc::ErrConfigured)
        );
        assert_eq!(
            rc(&[("ip", "10.0.0.5"), ("nic", "nosuchnic0")]),
            Some(Rc::ErrConfigured)
        );
        assert_eq!(
            rc(&[
                ("ip", "10.0.0.5"),
                ("nic", "lo"),
                ("iflabel", "waytoolonglabel")
            ]),
            Some(Rc::ErrConfigured)
        );
        assert_eq!(
            rc(&[("ip", "10.0.0.5"), ("nic", "lo"), ("iflabel", "vip")]),
            None
        );
        let c = config(&p(&[("ip", "10.0.0.5"), ("nic", "lo:web")])).unwrap();
        assert_eq!(
            (c.nic.as_deref(), c.label_suffix.as_deref()),
            (Some("lo"), Some("web"))
        );
    }
}
