//! The sans-IO heart of heartbeatd: membership, the reliable-broadcast
//! protocol and v1 resource management, as one state machine.
//!
//! [`Node`] is fed with inputs — verified messages from a medium, agent
//! exits, admin commands, the passage of time — through its methods, each
//! called with a [`Clock`] reading, and it answers with [`Action`]s drained by
//! the caller: send this message, run this agent, log this line, exit. It
//! never reads a clock, a socket or a file itself, so tests can drive hours of
//! cluster time in milliseconds (see `tests/scenarios.rs`).
//!
//! The behaviour follows heartbeat 3.0.6 message for message, so that a
//! heartbeatd node and a real 3.0.6 node form one cluster: the same status
//! lifecycle (init → up → active), the same sequence/generation tracking,
//! retransmission requests and acks, the same `starting` / `resource` /
//! `ask_resources` / `shutdone` handshakes for `auto_failback on|off`, and the
//! `ip-request` handshake for `legacy`. Where 3.0.6 is slow or unsafe
//! heartbeatd differs, and says so where it does: timeouts are exact
//! deadlines instead of a 250 ms poll, resource groups are taken and given
//! up by an in-process executor instead of chains of shell scripts, a healed
//! split brain is resolved in place instead of restarting, and a failing
//! `stop` is handled by a configurable policy.

mod membership;
mod rsc;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod sim;
mod util;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::config::{AgentTimeouts, AutoFailback, Config, StopFailure, Verb};
use crate::wire::{f, Message};

pub use membership::{LinkView, NodeView};
pub use rsc::{status_says_running, Hold, JobView};
pub use util::Rng;

/// A reading of the clocks, given with every input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Monotonic time since an arbitrary origin.
    pub mono: Duration,
    /// Wall-clock seconds since the epoch (the `ts` field).
    pub wall: u64,
}

/// Log levels, with heartbeat's words for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Crit,
    Err,
    Warn,
    Info,
    Debug,
}

impl Level {
    /// The word 3.0.6 prints before the message (`ERROR: ...`).
    pub fn word(self) -> &'static str {
        match self {
            Level::Crit => "CRIT",
            Level::Err => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// Identifies one agent call, so its exit can be matched.
pub type CallId = u64;

/// How an agent call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentResult {
    /// The exit status, `None` if it was killed (timeout or signal).
    pub exit: Option<i32>,
    /// Its standard output (what `status` is judged by).
    pub stdout: String,
    pub timed_out: bool,
    /// Set when the agent could not be run at all (not found, not
    /// executable): the message says why.
    pub error: Option<String>,
}

impl AgentResult {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.exit == Some(0)
    }
}

/// What the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this message on every medium (encode, sign, transmit).
    Send(Message),
    /// Run `script args... verb` (looked up in resource.d, then init.d) and
    /// report with [`Node::agent_done`]; kill it after `timeout`.
    RunAgent {
        call: CallId,
        script: String,
        args: Vec<String>,
        verb: Verb,
        timeout: Duration,
    },
    /// Run the `stop_failure exec` command for a group whose stop failed;
    /// report with [`Node::agent_done`] (exit 0 = released).
    RunStopFailureCommand {
        call: CallId,
        command: Vec<String>,
        group: String,
        timeout: Duration,
    },
    /// Reboot the node now (`stop_failure reboot`).
    Reboot {
        reason: String,
    },
    Log(Level, String),
    /// The graceful shutdown is complete: exit with this status.
    Exit(i32),
}

/// Commands from the administrator (control socket, signals).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `hb_standby [all|foreign|local|failback]`.
    Standby(Hold),
    /// `hb_takeover [all|foreign|local|failback]`.
    Takeover(Hold),
    /// Graceful shutdown (SIGTERM, `heartbeatd -k`).
    Shutdown,
}

/// One resource of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSpec {
    pub script: String,
    pub args: Vec<String>,
}

/// A resource group as the core sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    /// The group key (its first resource as written in haresources).
    pub key: String,
    /// Its preferred node.
    pub home: String,
    pub resources: Vec<ResourceSpec>,
}

/// Everything the core needs to know, derived from the configuration plus
/// the node's identity (name, uuid, generation).
#[derive(Clone, Debug)]
pub struct Settings {
    /// This node's name (lower case).
    pub me: String,
    /// All cluster nodes, `me` included, in ha.cf order.
    pub nodes: Vec<String>,
    /// Link (medium) names, indexed like the `link` of [`Node::packet`].
    pub links: Vec<String>,
    pub uuid: [u8; 16],
    pub generation: u64,
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub warntime: Duration,
    pub initdead: Duration,
    pub max_rexmit_delay: Duration,
    pub hopfudge: u32,
    pub auto_failback: AutoFailback,
    pub groups: Vec<GroupSpec>,
    pub timeouts: AgentTimeouts,
    pub stop_retries: u32,
    pub stop_failure: StopFailure,
    /// `false` with `-M`: membership only, no resources.
    pub manage_resources: bool,
    /// Seed of the random choices (ack trigger, retransmit-request delays).
    pub seed: u64,
}

impl Settings {
    /// Settings from a loaded configuration.
    pub fn from_config(
        cfg: &Config,
        me: &str,
        uuid: [u8; 16],
        generation: u64,
        seed: u64,
    ) -> Settings {
        let h = &cfg.ha;
        Settings {
            me: me.to_owned(),
            nodes: h.nodes.clone(),
            links: h.media.iter().map(|m| m.kind.link_name()).collect(),
            uuid,
            generation,
            keepalive: h.keepalive,
            deadtime: h.deadtime,
            warntime: h.warntime,
            initdead: h.initdead,
            max_rexmit_delay: h.max_rexmit_delay,
            hopfudge: h.hopfudge,
            auto_failback: h.auto_failback,
            groups: cfg
                .resources
                .iter()
                .map(|g| GroupSpec {
                    key: g.key().to_owned(),
                    home: g.node.clone(),
                    resources: g
                        .resources
                        .iter()
                        .map(|r| ResourceSpec {
                            script: r.script.clone(),
                            args: r.args.clone(),
                        })
                        .collect(),
                })
                .collect(),
            timeouts: h.agent_timeouts.clone(),
            stop_retries: h.stop_retries,
            stop_failure: h.stop_failure.clone(),
            manage_resources: true,
            seed,
        }
    }

    fn nice_failback(&self) -> bool {
        self.auto_failback != AutoFailback::Legacy
    }
}

/// The node state machine. See the module documentation.
pub struct Node {
    s: Settings,
    now: Clock,
    rng: Rng,
    loadavg: String,
    actions: VecDeque<Action>,
    /// Next sequence number to send.
    next_seq: u64,
    /// Messages sent, by sequence number, for retransmission (500 kept).
    history: BTreeMap<u64, Sent>,
    mem: membership::Membership,
    rsc: rsc::Resources,
    started: bool,
    /// Set when the graceful shutdown has sent `shutdone`: when to exit.
    exit_at: Option<Duration>,
    exited: bool,
}

struct Sent {
    msg: Message,
    last_sent: Duration,
}

/// How many sent messages are kept for retransmission (MAXMSGHIST).
const HISTORY: u64 = 500;

impl Node {
    pub fn new(settings: Settings) -> Node {
        let rng = Rng::new(settings.seed);
        let mem = membership::Membership::new(&settings);
        let rsc = rsc::Resources::new(&settings);
        Node {
            s: settings,
            now: Clock {
                mono: Duration::ZERO,
                wall: 0,
            },
            rng,
            loadavg: "0.00 0.00 0.00 1/1 1".to_owned(),
            actions: VecDeque::new(),
            next_seq: 1,
            history: BTreeMap::new(),
            mem,
            rsc,
            started: false,
            exit_at: None,
            exited: false,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.s
    }

    /// The first line of /proc/loadavg, sent in the `ld` field.
    pub fn set_loadavg(&mut self, ld: &str) {
        self.loadavg = ld.trim_end().to_owned();
    }

    /// The next action to carry out, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Node::tick`] must be called next, at the latest.
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.exited {
            return None;
        }
        [
            self.mem.next_deadline(&self.s),
            self.rsc.next_deadline(),
            self.exit_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn at(&mut self, now: Clock) {
        // Time never goes backwards for the core, even if the caller's clock
        // readings arrive out of order.
        if now.mono > self.now.mono {
            self.now.mono = now.mono;
        }
        self.now.wall = now.wall;
    }

    /// Starts the node: status `init`, then `up`, and the timers.
    pub fn start(&mut self, now: Clock) {
        self.at(now);
        if self.started {
            return;
        }
        self.started = true;
        self.log(
            Level::Info,
            format!(
                "Configuration validated. Starting heartbeat {}",
                env!("CARGO_PKG_VERSION")
            ),
        );
        self.log(
            Level::Info,
            format!("Heartbeat generation: {}", self.s.generation),
        );
        self.mem_start();
    }

    /// Time passes: fire whatever is due.
    pub fn tick(&mut self, now: Clock) {
        self.at(now);
        if !self.started || self.exited {
            return;
        }
        self.mem_tick();
        self.rsc_tick();
        if let Some(t) = self.exit_at {
            if self.now.mono >= t {
                self.exit_at = None;
                self.exited = true;
                self.log(
                    Level::Info,
                    format!("{} Heartbeat shutdown complete.", self.s.me),
                );
                self.actions.push_back(Action::Exit(0));
            }
        }
    }

    /// A verified message arrived on link `link`.
    pub fn packet(&mut self, now: Clock, msg: Message, link: usize) {
        self.at(now);
        if !self.started || self.exited {
            return;
        }
        self.receive(msg, Some(link));
    }

    /// An agent call (or stop-failure command) ended.
    pub fn agent_done(&mut self, now: Clock, call: CallId, result: AgentResult) {
        self.at(now);
        self.rsc_agent_done(call, result);
    }

    /// An administrator's command.
    pub fn command(&mut self, now: Clock, cmd: Command) {
        self.at(now);
        match cmd {
            Command::Shutdown => self.initiate_shutdown(),
            Command::Standby(which) => self.cmd_standby(which),
            Command::Takeover(which) => self.cmd_takeover(which),
        }
    }

    fn log(&mut self, level: Level, text: String) {
        self.actions.push_back(Action::Log(level, text));
    }

    /// Adds the control fields and sends `msg` to the cluster, delivering it
    /// to ourselves too (as 3.0.6 does).
    fn send(&mut self, mut msg: Message) {
        let t = msg.msg_type().unwrap_or("").to_owned();
        let sequenced = !t.starts_with("NS_");
        if let Some(dest) = msg.get(f::DEST).map(str::to_owned) {
            if let Some(uuid) = self.mem.uuid_of(&dest) {
                msg.add_binary(f::DESTUUID, &uuid);
            }
        }
        msg.add(f::SRC, &self.s.me);
        msg.add_binary(f::SRCUUID, &self.s.uuid);
        let seq = self.next_seq;
        if sequenced {
            msg.add(f::SEQ, &format!("{seq:x}"));
            self.next_seq += 1;
        }
        msg.add(f::GEN, &format!("{:x}", self.s.generation));
        msg.add(f::TIME, &format!("{:x}", self.now.wall));
        if sequenced {
            msg.add(f::LOAD, &self.loadavg.clone());
        }
        msg.add(
            f::TTL,
            &(self.s.hopfudge as usize + self.s.nodes.len()).to_string(),
        );
        if sequenced {
            self.history.insert(
                seq,
                Sent {
                    msg: msg.clone(),
                    last_sent: self.now.mono,
                },
            );
            while self.history.len() as u64 > HISTORY {
                self.history.pop_first();
            }
        }
        self.actions.push_back(Action::Send(msg.clone()));
        self.receive(msg, None);
    }

    /// A snapshot of every node, for `cl_status` and the tests.
    pub fn nodes(&self) -> Vec<NodeView> {
        self.mem.views(&self.s, self.now.mono)
    }

    /// This node's own status word (`init`, `up`, `active`).
    pub fn local_status(&self) -> &str {
        self.mem.local_status(&self.s)
    }

    /// What `cl_status rscstatus` prints: `all`, `local`, `foreign`, `none`
    /// or `transition`.
    pub fn rsc_status(&self) -> &'static str {
        self.rsc_state_word()
    }

    /// Resource groups and whether this node runs each.
    pub fn groups(&self) -> Vec<(String, String, bool)> {
        self.rsc_group_views()
    }

    /// Resource jobs in progress.
    pub fn jobs(&self) -> Vec<JobView> {
        self.rsc.job_views()
    }

    /// True once a graceful shutdown has started.
    pub fn shutting_down(&self) -> bool {
        self.rsc.shutdown_in_progress
    }
}
