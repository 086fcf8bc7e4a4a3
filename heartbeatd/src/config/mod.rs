//! Configuration: `ha.cf`, `haresources` and `authkeys` with heartbeat
//! 3.0.6's grammar, into one typed [`Config`].
//!
//! Parsing is pure (text in, values or errors out); reading files and the
//! permission check of `authkeys` are done by [`load`]. Every error names the
//! file and the line. Every ha.cf directive of 3.0.6 is either implemented,
//! accepted with a [`Notice`] saying why it has no effect here (logged at
//! start and shown by `--check`), or refused with an error that says what to
//! do instead — none is silently ignored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::auth::Keyring;

mod authkeys;
mod hacf;
mod haresources;
mod time;

pub use authkeys::{check_permissions, parse_authkeys};
pub use hacf::{parse_ha_cf, parse_ha_cf_with, services_udp_port, ParseEnv, DEFAULT_UDPPORT};
pub use haresources::parse_haresources;
pub use time::parse_time;

/// Exit status of the daemon and of `--check` when the configuration is bad
/// (3.0.6 uses LSB's "not configured", 6, too).
pub const EXIT_CONFIG: i32 = 6;

/// A configuration error: file, line (when one line is at fault), message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {msg}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub msg: String,
}

/// Something accepted that has no effect in heartbeatd, or a warning about
/// a value (e.g. `initdead` under 10 s), with the line it comes from
/// (`None` when it is about the file as a whole, e.g. a default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub msg: String,
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": {}", self.msg)
    }
}

/// The whole configuration of a node.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// The configuration directory (`/etc/ha.d` by default).
    pub dir: PathBuf,
    pub ha: HaCf,
    pub resources: Vec<ResourceGroup>,
    #[serde(serialize_with = "ser_keyring")]
    pub keys: Keyring,
}

/// `ha.cf`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HaCf {
    /// Cluster members, lower-cased, in file order, no duplicates.
    pub nodes: Vec<String>,
    pub media: Vec<Medium>,
    /// Ping nodes (`ping`, `ping6`, `ping_group`). Note: 3.0.6 counts them
    /// as nodes, e.g. in the `ttl` field (hopfudge + nodes + ping nodes).
    pub ping: Vec<PingNode>,
    /// The last `udpport` value (default: `ha-cluster` in /etc/services,
    /// else 694). Media lines carry the port they use: like 3.0.6, each
    /// medium type (`bcast`, `ucast`, `ucast6`) takes the `udpport` in
    /// effect at its first line, for all its lines.
    pub udpport: u16,
    #[serde(serialize_with = "ser_dur")]
    pub keepalive: Duration,
    #[serde(serialize_with = "ser_dur")]
    pub deadtime: Duration,
    #[serde(serialize_with = "ser_dur")]
    pub warntime: Duration,
    #[serde(serialize_with = "ser_dur")]
    pub initdead: Duration,
    #[serde(serialize_with = "ser_dur")]
    pub deadping: Duration,
    pub auto_failback: AutoFailback,
    pub hopfudge: u32,
    pub baud: u32,
    pub cluster: String,
    pub hbgenmethod: GenMethod,
    pub realtime: bool,
    pub rtprio: Option<i32>,
    pub debug: u32,
    pub logfile: Option<PathBuf>,
    pub debugfile: Option<PathBuf>,
    /// syslog facility name (`local0`, `daemon`, ...); `None` for `none` or
    /// when not given. Where 3.0.6 would log through logd (no logfile,
    /// debugfile or logfacility, or `use_logd on` without a facility) this
    /// is `daemon`: heartbeatd has no logd and logs to syslog instead.
    pub logfacility: Option<String>,
    pub syslogmsgfmt: bool,
    pub log_badpack: bool,
    #[serde(serialize_with = "ser_dur")]
    pub max_rexmit_delay: Duration,
    pub coredumps: bool,
    pub coreroot: Option<PathBuf>,
    pub watchdog: Option<PathBuf>,
    /// `respawn USER /path args`.
    pub respawn: Vec<Client>,
    /// `env NAME=VALUE`, exported to children as `HA_NAME=VALUE`.
    pub env: Vec<(String, String)>,
    pub uuidfrom: UuidFrom,
    /// heartbeatd extension: what to do when a resource cannot be stopped.
    pub stop_failure: StopFailure,
    /// heartbeatd extension: how often a failing stop is retried (1 s apart).
    pub stop_retries: u32,
    /// heartbeatd extension: per-verb, per-script agent time limits.
    pub agent_timeouts: AgentTimeouts,
    /// Directives accepted without effect, and warnings.
    pub notices: Vec<Notice>,
}

/// One heartbeat medium, with the ha.cf line it comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Medium {
    pub line: usize,
    pub kind: MediumKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MediumKind {
    /// `bcast IF` (one per interface).
    Bcast { iface: String, port: u16 },
    /// `ucast IF PEER`.
    Ucast {
        iface: String,
        peer: Ipv4Addr,
        port: u16,
    },
    /// `ucast6 IF PEER6`.
    Ucast6 {
        iface: String,
        peer: Ipv6Addr,
        port: u16,
    },
    /// `mcast IF GROUP PORT TTL LOOP` (udpport does not apply).
    Mcast {
        iface: String,
        group: Ipv4Addr,
        port: u16,
        ttl: u8,
        loopback: bool,
    },
    /// `mcast6 IF GROUP PORT HOPS LOOP`.
    Mcast6 {
        iface: String,
        group: Ipv6Addr,
        port: u16,
        hops: u8,
        loopback: bool,
    },
    /// `serial DEV` (one per device), with the `baud` fixed at the first
    /// `serial` line (3.0.6 reads it once, when the serial plugin loads).
    Serial { device: PathBuf, baud: u32 },
}

impl MediumKind {
    /// The link name heartbeat uses in logs and `cl_status` (`hb0`,
    /// `/dev/ttyS0`).
    pub fn link_name(&self) -> String {
        match self {
            MediumKind::Bcast { iface, .. }
            | MediumKind::Ucast { iface, .. }
            | MediumKind::Ucast6 { iface, .. }
            | MediumKind::Mcast { iface, .. }
            | MediumKind::Mcast6 { iface, .. } => iface.clone(),
            MediumKind::Serial { device, .. } => device.display().to_string(),
        }
    }
}

/// A ping node: a pseudo-node that is "up" while it answers ICMP echo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PingNode {
    pub line: usize,
    /// The node name shown by `cl_status` (the address, or the group name).
    pub name: String,
    pub targets: Vec<IpAddr>,
    /// `ping_group`: up while any target answers.
    pub group: bool,
}

/// A `respawn` client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Client {
    pub line: usize,
    pub user: String,
    pub path: PathBuf,
    pub args: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoFailback {
    On,
    Off,
    Legacy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GenMethod {
    File,
    Time,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UuidFrom {
    File,
    Nodename,
}

/// What heartbeatd does when a resource's `stop` still fails after the
/// retries (3.0.6 kills heartbeat and runs `reboot -nf` unconditionally).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopFailure {
    /// Keep holding the group (never hand it to the peer, which could then
    /// run it twice); log CRIT and wait for the admin. The default.
    Hold,
    /// Reboot this node (sync, then reboot(2)): the peer takes over after
    /// deadtime. 3.0.6's behaviour, without the blind pkill.
    Reboot,
    /// Run this command (e.g. a fencing script); if it exits 0 the group is
    /// considered released, otherwise `Hold`.
    Exec { command: Vec<String> },
}

/// Time limits for agent calls: a default per verb, overridable per script.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentTimeouts {
    #[serde(serialize_with = "ser_dur")]
    pub start: Duration,
    #[serde(serialize_with = "ser_dur")]
    pub stop: Duration,
    #[serde(serialize_with = "ser_dur")]
    pub status: Duration,
    /// Overrides for one script and verb; later entries win.
    pub per_script: Vec<ScriptTimeout>,
}

/// `agent_timeout VERB TIME SCRIPT`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScriptTimeout {
    pub script: String,
    pub verb: Verb,
    #[serde(serialize_with = "ser_dur")]
    pub limit: Duration,
}

impl Default for AgentTimeouts {
    fn default() -> Self {
        AgentTimeouts {
            start: Duration::from_secs(120),
            stop: Duration::from_secs(120),
            status: Duration::from_secs(30),
            per_script: Vec::new(),
        }
    }
}

impl AgentTimeouts {
    /// The limit for `verb` of `script`.
    pub fn get(&self, script: &str, verb: Verb) -> Duration {
        self.per_script
            .iter()
            .rev()
            .find(|t| t.script == script && t.verb == verb)
            .map(|t| t.limit)
            .unwrap_or(match verb {
                Verb::Start => self.start,
                Verb::Stop => self.stop,
                Verb::Status => self.status,
            })
    }
}

/// The verbs heartbeat v1 calls an agent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    Start,
    Stop,
    Status,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Status => "status",
        }
    }
}

/// One `haresources` line: the preferred node and its resources in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceGroup {
    /// The line the group starts on.
    pub line: usize,
    /// Preferred ("local" for that node) owner, lower-cased.
    pub node: String,
    pub resources: Vec<Resource>,
}

impl ResourceGroup {
    /// The group key: the first resource exactly as written (a bare
    /// `10.0.0.1` stays `10.0.0.1`), which 3.0.6 uses to name the group
    /// (`ResourceManager listkeys` prints it; `takegroup KEY`,
    /// `ip-request-resp ipaddr=KEY`).
    pub fn key(&self) -> &str {
        &self.resources[0].raw
    }
}

/// One resource: `script::arg1::arg2`, a bare IP being `IPaddr::IP...`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// The word as written in haresources (`10.0.0.1/24/eth0`).
    pub raw: String,
    /// Canonical text (`IPaddr::10.0.0.1/24/eth0` for a bare `10.0.0.1/24/eth0`).
    pub spec: String,
    pub script: String,
    pub args: Vec<String>,
}

/// Reads and parses `DIR/ha.cf`, `DIR/haresources` and `DIR/authkeys`,
/// checks `authkeys`' permissions (group/other readable → refused, as 3.0.6)
/// and cross-checks the files (haresources nodes must be cluster nodes,
/// group keys unique) and the machine (`respawn` users exist, programs are
/// executable, as 3.0.6 checks). `haresources` may be missing (no
/// resources). Whether the local node is listed is checked separately:
/// [`local_node_name`] and [`Config::check_local_node`].
pub fn load(dir: &Path) -> Result<Config, Vec<ConfigError>> {
    let read = |name: &str| -> Result<String, ConfigError> {
        let p = dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| ConfigError {
            file: p.clone(),
            line: None,
            msg: format!("cannot read: {e}"),
        })
    };
    let mut errors = Vec::new();
    let ha_path = dir.join("ha.cf");
    let ha = read("ha.cf")
        .map_err(|e| vec![e])
        .and_then(|t| parse_ha_cf(&ha_path, &t));
    let hr_path = dir.join("haresources");
    let resources = match std::fs::read_to_string(&hr_path) {
        Ok(t) => parse_haresources(&hr_path, &t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(vec![ConfigError {
            file: hr_path.clone(),
            line: None,
            msg: format!("cannot read: {e}"),
        }]),
    };
    let ak_path = dir.join("authkeys");
    let keys = authkeys::check_permissions(&ak_path)
        .and_then(|()| read("authkeys"))
        .map_err(|e| vec![e])
        .and_then(|t| parse_authkeys(&ak_path, &t));
    let (ha, resources, keys) = match (ha, resources, keys) {
        (Ok(h), Ok(r), Ok(k)) => (h, r, k),
        (h, r, k) => {
            for e in [h.err(), r.err(), k.err()].into_iter().flatten() {
                errors.extend(e);
            }
            return Err(errors);
        }
    };
    for g in &resources {
        if !ha.nodes.contains(&g.node) {
            errors.push(ConfigError {
                file: hr_path.clone(),
                line: Some(g.line),
                msg: format!(
                    "node {} is not a cluster node (ha.cf has: {})",
                    g.node,
                    ha.nodes.join(" ")
                ),
            });
        }
    }
    for (i, g) in resources.iter().enumerate() {
        if let Some(first) = resources[..i].iter().find(|o| o.key() == g.key()) {
            errors.push(ConfigError {
                file: hr_path.clone(),
                line: Some(g.line),
                msg: format!(
                    "resource group {} is already defined on line {}",
                    g.key(),
                    first.line
                ),
            });
        }
    }
    errors.extend(check_machine(&ha_path, &ha));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Config {
        dir: dir.to_path_buf(),
        ha,
        resources,
        keys,
    })
}

/// The checks of ha.cf that depend on this machine, as 3.0.6 does them at
/// start: every `respawn` user exists and every program is executable.
pub fn check_machine(ha_path: &Path, ha: &HaCf) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for c in &ha.respawn {
        let err = |msg: String| ConfigError {
            file: ha_path.to_path_buf(),
            line: Some(c.line),
            msg,
        };
        match nix::unistd::User::from_name(&c.user) {
            Ok(Some(_)) => {}
            _ => errors.push(err(format!("respawn: no such user {:?}", c.user))),
        }
        if nix::unistd::access(&c.path, nix::unistd::AccessFlags::X_OK).is_err()
            || !c.path.is_file()
        {
            errors.push(err(format!(
                "respawn: {} is not an executable file",
                c.path.display()
            )));
        }
    }
    errors
}

/// The name this node has in the cluster, as 3.0.6 determines it: the first
/// line of `DIR/nodeinfo` if that file exists and the line is not empty,
/// else `uname -n`; lower-cased.
///
/// Differences from 3.0.6, deliberate: 3.0.6 ignores a `nodeinfo` whose
/// first line has no line break and keeps blanks around the name; here the
/// line is used either way and trimmed.
pub fn local_node_name(dir: &Path) -> Result<String, ConfigError> {
    let path = dir.join("nodeinfo");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let first = text.lines().next().unwrap_or("").trim();
            if !first.is_empty() {
                return Ok(first.to_ascii_lowercase());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(ConfigError {
                file: path,
                line: None,
                msg: format!("cannot read: {e}"),
            })
        }
    }
    let u = nix::sys::utsname::uname().map_err(|e| ConfigError {
        file: path.clone(),
        line: None,
        msg: format!("uname(2) failed: {e}"),
    })?;
    Ok(u.nodename().to_string_lossy().to_ascii_lowercase())
}

impl Config {
    /// Refuses to run as `node` unless ha.cf lists it (3.0.6: "Current
    /// node [x] not in configuration!").
    pub fn check_local_node(&self, node: &str) -> Result<(), ConfigError> {
        if self.ha.nodes.iter().any(|n| n == node) {
            return Ok(());
        }
        Err(ConfigError {
            file: self.dir.join("ha.cf"),
            line: None,
            msg: format!(
                "Current node [{node}] not in configuration! The node lines list: {}. \
                 The local name is the first line of {} if it exists, else `uname -n`; \
                 add \"node {node}\" or fix the name",
                self.ha.nodes.join(" "),
                self.dir.join("nodeinfo").display()
            ),
        })
    }

    /// The `--check` rendering: the parsed configuration as YAML (secrets
    /// are never printed).
    pub fn to_yaml(&self) -> String {
        yaml_serde::to_string(self).expect("config serializes")
    }
}

fn ser_dur<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}ms", d.as_millis()))
}

fn ser_keyring<S: serde::Serializer>(k: &Keyring, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("send_index", &k.send_index())?;
    let keys: Vec<(u8, &str)> = k.keys().iter().map(|(i, m)| (*i, m.name())).collect();
    m.serialize_entry("keys", &keys)?;
    m.end()
}
