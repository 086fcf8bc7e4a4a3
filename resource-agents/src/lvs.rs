//! `lvs`: the reference cluster's director ⇄ real-server switch.
//!
//! Every node, directors included, boots as an LVS real server: the VIP as
//! a /32 on `tunl0` (LVS-TUN) or `lo` (LVS-DR) with ARP hidden. `start`
//! makes this node the director: `ip_forward=1`, the VIP copies off the
//! device, ARP hiding undone (IPaddr then puts the VIP on the public
//! interface). `stop` makes it a real server again. `status`/`monitor`
//! report the role: running = director.
//!
//! Parameters: `vip` (one or more IPv4 addresses, comma or space
//! separated), `mode` (`tun` or `dr`), `device` (default `tunl0`/`lo`).
//! heartbeat v1: `lvs::VIP[,VIP]::MODE` or, with no arguments, the file
//! `config` (default `/etc/sysconfig/lvs`: `VIP=`, `MODE=`, `DEVICE=`).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use hanet::realserver::{RealServer, Role, RsMode};
use hanet::{NetError, Rtnl};

use crate::agent::{Agent, AgentError, Ctx, Mode, Params, State};
use crate::ocf::{ActionSpec, MetaData, ParamSpec};
use crate::sysconfig;

/// Default configuration file for v1/LSB calls without parameters.
pub const DEFAULT_CONFIG: &str = "/etc/sysconfig/lvs";

static PARAMS: [ParamSpec; 4] = [
    ParamSpec::new("vip", "Virtual IP address(es)").required().long(
        "The LVS virtual IPv4 address(es), comma or space separated, e.g. 192.168.136.10.",
    ),
    ParamSpec::new("mode", "Real-server forwarding mode")
        .default("tun")
        .long("tun: the VIP sits on the ipip device tunl0 when this node is a real server (LVS-TUN); dr: on lo (LVS-DR)."),
    ParamSpec::new("device", "Device holding the VIP on a real server")
        .long("Overrides the mode's device (tunl0 for tun, lo for dr)."),
    ParamSpec::new("config", "Configuration file")
        .default(DEFAULT_CONFIG)
        .long("KEY=value file read for parameters not given otherwise (VIP=, MODE=, DEVICE=). Always read in heartbeat v1 and LSB mode; in OCF mode only when this parameter is set."),
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
    name: "lvs",
    shortdesc: "LVS director / real-server role switch (heartbeat-rs)",
    longdesc: "start makes this node the LVS director (ip_forward=1, VIP off tunl0/lo, ARP hiding \
               undone); stop makes it a real server again (VIP /32 on tunl0 or lo, \
               arp_ignore=1, arp_announce=2). monitor: running when the node is the director.",
    params: &PARAMS,
    actions: &ACTIONS,
};

/// The `lvs` agent.
pub struct LvsAgent;

/// Parses a VIP list: comma and/or space separated IPv4 addresses.
pub fn parse_vips(s: &str) -> Result<Vec<Ipv4Addr>, AgentError> {
    let mut out = Vec::new();
    for item in s
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let v: Ipv4Addr = item
            .parse()
            .map_err(|_| AgentError::configured(format!("vip: {item:?} is not an IPv4 address")))?;
        if v.is_unspecified() || v.is_multicast() || v.is_broadcast() || v.is_loopback() {
            return Err(AgentError::configured(format!(
                "vip: {v} cannot be a virtual service address"
            )));
        }
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(AgentError::configured(
            "the vip parameter is mandatory".to_string(),
        ));
    }
    Ok(out)
}

fn read_config(params: &mut Params) -> Result<(), AgentError> {
    let path = PathBuf::from(params.get("config").unwrap_or(DEFAULT_CONFIG));
    let Some(entries) = sysconfig::read(&path).map_err(AgentError::configured)? else {
        if params.given("config") {
            return Err(AgentError::configured(format!(
                "config file {} does not exist",
                path.display()
            )));
        }
        return Ok(());
    };
    for e in entries {
        let name = match e.key.to_ascii_uppercase().as_str() {
            "VIP" | "VIPS" | "LVS_VIP" => "vip",
            "MODE" | "LVS_MODE" => "mode",
            "DEVICE" | "LVS_DEVICE" => "device",
            _ => {
                return Err(AgentError::configured(format!(
                    "{}:{}: unknown setting {:?} (expected VIP, MODE or DEVICE)",
                    path.display(),
                    e.line,
                    e.key
                )))
            }
        };
        if !params.given(name) {
            params.set(name, &e.value);
        }
    }
    Ok(())
}

/// Checks the parameters and builds the real-server setup.
pub fn config(params: &Params) -> Result<RealServer, AgentError> {
    let vips = parse_vips(params.get("vip").ok_or_else(|| {
        AgentError::configured(format!(
            "the vip parameter is mandatory (OCF_RESKEY_vip, lvs::VIP::MODE in haresources, or VIP= in {})",
            params.get("config").unwrap_or(DEFAULT_CONFIG)
        ))
    })?)?;
    let mode_s = params.get("mode").unwrap_or("tun");
    let mode = RsMode::parse(mode_s)
        .ok_or_else(|| AgentError::configured(format!("mode={mode_s:?}: expected tun or dr")))?;
    let mut rs = RealServer::new(mode, vips);
    if let Some(d) = params.get("device") {
        hanet::link::valid_ifname(d)
            .map_err(|e| AgentError::configured(format!("device={d:?}: {e}")))?;
        rs.device = d.to_string();
    }
    Ok(rs)
}

impl Agent for LvsAgent {
    type Config = RealServer;

    fn meta(&self) -> &'static MetaData {
        &META
    }

    fn v1_usage(&self) -> &'static str {
        "[VIP[,VIP...] [tun|dr]]"
    }

    fn v1_args(&self, args: &[String], params: &mut Params) -> Result<(), AgentError> {
        match args {
            [] => Ok(()),
            [vip] => {
                params.set("vip", vip);
                Ok(())
            }
            [vip, mode] => {
                params.set("vip", vip);
                params.set("mode", mode);
                Ok(())
            }
            _ => Err(AgentError::args(format!(
                "lvs takes at most VIP[,VIP...] and MODE before the action, got {args:?}"
            ))),
        }
    }

    fn validate(&self, params: &Params, ctx: &Ctx) -> Result<RealServer, AgentError> {
        let mut params = params.clone();
        if ctx.mode != Mode::Ocf || params.given("config") {
            read_config(&mut params)?;
        }
        config(&params)
    }

    fn start(&self, rs: &RealServer, ctx: &Ctx) -> Result<(), AgentError> {
        let mut rt = Rtnl::open()?;
        rs.become_director(&mut rt)?;
        ctx.log.info(&format!(
            "director: ip_forward=1, {} off {}, ARP hiding undone",
            list(&rs.vips),
            rs.device
        ));
        Ok(())
    }

    fn stop(&self, rs: &RealServer, ctx: &Ctx) -> Result<(), AgentError> {
        let mut rt = Rtnl::open()?;
        match rs.become_real_server(&mut rt) {
            Ok(()) => {}
            Err(e @ NetError::NotFound(_)) => return Err(AgentError::installed(e.to_string())),
            Err(e) => return Err(e.into()),
        }
        ctx.log.info(&format!(
            "real server ({}): {} /32 on {}, arp_ignore=1 arp_announce=2",
            rs.mode,
            list(&rs.vips),
            rs.device
        ));
        Ok(())
    }

    fn monitor(&self, rs: &RealServer, _ctx: &Ctx) -> Result<State, AgentError> {
        let mut rt = Rtnl::open()?;
        let role = rs.role(&mut rt)?;
        Ok(match role {
            Role::Director => State::running("director"),
            other => State::stopped(other.to_string()),
        })
    }
}

fn list(v: &[Ipv4Addr]) -> String {
    v.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::Rc;

    #[test]
    fn vip_lists() {
        assert_eq!(
            parse_vips("192.168.136.10, 192.168.136.20 192.168.136.10").unwrap(),
            vec![
                "192.168.136.10".parse::<Ipv4Addr>().unwrap(),
                "192.168.136.20".parse().unwrap()
            ]
        );
        assert_eq!(parse_vips("").unwrap_err().rc, Rc::ErrConfigured);
        assert_eq!(parse_vips("10.0.0.300").unwrap_err().rc, Rc::ErrConfigured);
        assert_eq!(parse_vips("127.0.0.1").unwrap_err().rc, Rc::ErrConfigured);
        assert_eq!(parse_vips("fd00::1").unwrap_err().rc, Rc::ErrConfigured);
    }

    #[test]
    fn config_checks() {
        let p = |pairs: &[(&str, &str)]| config(&Params::from_pairs(&META, pairs));
        let rs = p(&[("vip", "192.168.136.10")]).unwrap();
        assert_eq!((rs.mode, rs.device.as_str()), (RsMode::Tun, "tunl0"));
        let rs = p(&[("vip", "192.168.136.10"), ("mode", "dr")]).unwrap();
        assert_eq!(rs.device, "lo");
        let rs = p(&[("vip", "192.168.136.10"), ("device", "tun9")]).unwrap();
        assert_eq!(rs.device, "tun9");
        assert_eq!(
            p(&[("vip", "1.2.3.4"), ("mode", "nat")]).unwrap_err().rc,
            Rc::ErrConfigured
        );
        assert_eq!(
            p(&[("vip", "1.2.3.4"), ("device", "a/b")]).unwrap_err().rc,
            Rc::ErrConfigured
        );
        let e = p(&[]).unwrap_err();
        assert!(e.reason.contains("/etc/sysconfig/lvs"), "{}", e.reason);
    }
}
