//! A deterministic simulated cluster for scenario tests of the core:
//! virtual time, a network that can lose, delay and partition, messages
//! really encoded and verified with the wire codec, and agents whose
//! resources are in-memory flags.
//!
//! It drives [`Node`]s exactly as the daemon does (inputs in, actions out)
//! and records what happened, so tests can assert on timing and ownership
//! without sleeping: an hour of cluster time runs in milliseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Action, AgentResult, Clock, Command, GroupSpec, Level, Node, ResourceSpec, Settings};
use crate::auth::{AuthMethod, Keyring};
use crate::config::{AgentTimeouts, AutoFailback, StopFailure, Verb};
use crate::wire;

/// Something that happened, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at: Duration,
    pub node: usize,
    pub what: String,
}

/// How a simulated agent behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Behaviour {
    #[default]
    Normal,
    FailStart,
    FailStop,
}

struct SimNode {
    node: Node,
    up: bool,
    exited: bool,
    generation: u64,
    /// Resource "script:args" → running.
    running: BTreeMap<String, bool>,
    behaviour: BTreeMap<String, Behaviour>,
    logs: Vec<(Duration, Level, String)>,
}

struct Delivery {
    at: Duration,
    order: u64,
    to: usize,
    bytes: Vec<u8>,
    link: usize,
}

/// The simulated cluster.
pub struct Sim {
    pub now: Duration,
    nodes: Vec<SimNode>,
    settings: Vec<Settings>,
    net: Vec<Delivery>,
    agents: Vec<(Duration, usize, u64, AgentResult)>,
    order: u64,
    pub latency: Duration,
    pub agent_time: Duration,
    /// Links cut: (from, to).
    cut: BTreeSet<(usize, usize)>,
    /// Loss probability in percent, with a deterministic generator.
    loss_pct: u64,
    rng: super::Rng,
    keys: Keyring,
    pub events: Vec<Event>,
    wall0: u64,
}

impl Sim {
    /// A cluster of `names`, each with the given groups (`(home, resources)`),
    /// keepalive 200 ms, deadtime 1 s, warntime 600 ms, initdead 2 s.
    pub fn new(names: &[&str], groups: &[(&str, &[&str])], auto_failback: AutoFailback) -> Sim {
        let groups: Vec<GroupSpec> = groups
            .iter()
            .map(|(home, rs)| GroupSpec {
                key: rs[0].to_owned(),
                home: (*home).to_owned(),
                resources: rs
                    .iter()
                    .map(|r| {
                        let mut it = r.split("::");
                        ResourceSpec {
                            script: it.next().unwrap().to_owned(),
                            args: it.map(str::to_owned).collect(),
                        }
                    })
                    .collect(),
            })
            .collect();
        let settings: Vec<Settings> = names
            .iter()
            .enumerate()
            .map(|(i, n)| Settings {
                me: (*n).to_owned(),
                nodes: names.iter().map(|s| (*s).to_owned()).collect(),
                links: vec!["hb0".to_owned()],
                uuid: [i as u8 + 1; 16],
                generation: 1000,
                keepalive: Duration::from_millis(200),
                deadtime: Duration::from_millis(1000),
                warntime: Duration::from_millis(600),
                initdead: Duration::from_millis(2000),
                max_rexmit_delay: Duration::from_millis(250),
                hopfudge: 1,
                auto_failback,
                groups: groups.clone(),
                timeouts: AgentTimeouts::default(),
                stop_retries: 2,
                stop_failure: StopFailure::Hold,
                manage_resources: true,
                seed: 17 + i as u64,
            })
            .collect();
        let nodes = settings
            .iter()
            .map(|s| SimNode {
                node: Node::new(s.clone()),
                up: false,
                exited: false,
                generation: s.generation,
                running: BTreeMap::new(),
                behaviour: BTreeMap::new(),
                logs: Vec::new(),
            })
            .collect();
        Sim {
            now: Duration::from_secs(1),
            nodes,
            settings,
            net: Vec::new(),
            agents: Vec::new(),
            order: 0,
            latency: Duration::from_millis(1),
            agent_time: Duration::from_millis(10),
            cut: BTreeSet::new(),
            loss_pct: 0,
            rng: super::Rng::new(99),
            keys: Keyring::single(2, AuthMethod::Sha1(b"somesecret".to_vec())),
            events: Vec::new(),
            wall0: 1_795_312_033,
        }
    }

    /// Changes a node's settings before it starts.
    pub fn configure(&mut self, i: usize, f: impl FnOnce(&mut Settings)) {
        f(&mut self.settings[i]);
        self.nodes[i].node = Node::new(self.settings[i].clone());
    }

    fn clock(&self) -> Clock {
        Clock {
            mono: self.now,
            wall: self.wall0 + self.now.as_secs(),
        }
    }

    fn note(&mut self, node: usize, what: String) {
        self.events.push(Event {
            at: self.now,
            node,
            what,
        });
    }

    /// Starts node `i` (a new process: next generation, sequence from 1).
    pub fn start(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.generation += 1;
        let mut s = self.settings[i].clone();
        s.generation = n.generation;
        n.node = Node::new(s);
        n.up = true;
        n.exited = false;
        let c = self.clock();
        self.nodes[i].node.start(c);
        self.note(i, "start".to_owned());
        self.drain(i);
    }

    /// Kills the heartbeat process of node `i` (its resources keep running).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].up = false;
        self.agents.retain(|a| a.1 != i);
        self.note(i, "killed".to_owned());
    }

    /// Powers node `i` off: the process and its resources are gone.
    pub fn power_off(&mut self, i: usize) {
        self.kill(i);
        self.nodes[i].running.clear();
    }

    pub fn command(&mut self, i: usize, cmd: Command) {
        let c = self.clock();
        self.nodes[i].node.command(c, cmd);
        self.drain(i);
    }

    pub fn set_behaviour(&mut self, i: usize, resource: &str, b: Behaviour) {
        self.nodes[i].behaviour.insert(resource.to_owned(), b);
    }

    /// Cuts (or heals) the network between `a` and `b`, both directions.
    pub fn partition(&mut self, a: usize, b: usize, cut: bool) {
        for (x, y) in [(a, b), (b, a)] {
            if cut {
                self.cut.insert((x, y));
            } else {
                self.cut.remove(&(x, y));
            }
        }
    }

    /// Changes the loss generator's seed.
    pub fn reseed(&mut self, seed: u64) {
        self.rng = super::Rng::new(seed);
    }

    pub fn set_loss(&mut self, pct: u64) {
        self.loss_pct = pct;
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i].node
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].up
    }

    pub fn exited(&self, i: usize) -> bool {
        self.nodes[i].exited
    }

    /// Is resource `r` ("script:args" or a script with no args) running on `i`?
    pub fn running(&self, i: usize, r: &str) -> bool {
        let key = if r.contains(':') {
            r.to_owned()
        } else {
            format!("{r}:")
        };
        self.nodes[i].running.get(&key).copied().unwrap_or(false)
    }

    pub fn logs(&self, i: usize) -> impl Iterator<Item = &(Duration, Level, String)> {
        self.nodes[i].logs.iter()
    }

    pub fn logged(&self, i: usize, needle: &str) -> bool {
        self.nodes[i]
            .logs
            .iter()
            .any(|(_, _, l)| l.contains(needle))
    }

    /// First time `what` (a substring) was recorded for node `i` at or
    /// after `since`.
    pub fn first(&self, i: usize, what: &str, since: Duration) -> Option<Duration> {
        self.events
            .iter()
            .find(|e| e.node == i && e.at >= since && e.what.contains(what))
            .map(|e| e.at)
    }

    fn drain(&mut self, i: usize) {
        while let Some(a) = self.nodes[i].node.poll_action() {
            match a {
                Action::Send(msg) => {
                    let bytes = msg.encode_netstring(&self.keys);
                    for to in 0..self.nodes.len() {
                        if to != i && self.cut.contains(&(i, to)) {
                            continue;
                        }
                        if to != i && self.loss_pct > 0 && self.rng.range(0, 99) < self.loss_pct {
                            continue;
                        }
                        self.order += 1;
                        self.net.push(Delivery {
                            at: self.now + self.latency,
                            order: self.order,
                            to,
                            bytes: bytes.clone(),
                            link: 0,
                        });
                    }
                }
                Action::RunAgent {
                    call,
                    script,
                    args,
                    verb,
                    ..
                } => {
                    let key = format!("{script}:{}", args.join(":"));
                    let b = self.nodes[i]
                        .behaviour
                        .get(&key)
                        .copied()
                        .unwrap_or_default();
                    let running = self.nodes[i].running.get(&key).copied().unwrap_or(false);
                    let (exit, stdout) = match verb {
                        Verb::Status => (
                            if running { 0 } else { 3 },
                            if running { "running" } else { "stopped" },
                        ),
                        Verb::Start => {
                            if b == Behaviour::FailStart {
                                (1, "")
                            } else {
                                self.nodes[i].running.insert(key.clone(), true);
                                self.note(i, format!("start {key}"));
                                (0, "")
                            }
                        }
                        Verb::Stop => {
                            if b == Behaviour::FailStop {
                                (1, "")
                            } else {
                                if running {
                                    self.note(i, format!("stop {key}"));
                                }
                                self.nodes[i].running.insert(key.clone(), false);
                                (0, "")
                            }
                        }
                    };
                    self.agents.push((
                        self.now + self.agent_time,
                        i,
                        call,
                        AgentResult {
                            exit: Some(exit),
                            stdout: stdout.to_owned(),
                            timed_out: false,
                            error: None,
                        },
                    ));
                }
                Action::RunStopFailureCommand { call, .. } => {
                    self.note(i, "stop_failure command".to_owned());
                    self.agents.push((
                        self.now + self.agent_time,
                        i,
                        call,
                        AgentResult {
                            exit: Some(1),
                            stdout: String::new(),
                            timed_out: false,
                            error: None,
                        },
                    ));
                }
                Action::Reboot { reason } => self.note(i, format!("reboot: {reason}")),
                Action::Log(level, text) => {
                    self.nodes[i].logs.push((self.now, level, text));
                }
                Action::Exit(code) => {
                    self.nodes[i].up = false;
                    self.nodes[i].exited = true;
                    self.note(i, format!("exit {code}"));
                }
            }
        }
    }

    /// Runs the cluster for `d` of virtual time.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        let mut stuck = 0u32;
        loop {
            let mut next = end;
            if let Some(t) = self.net.iter().map(|x| x.at).min() {
                next = next.min(t);
            }
            if let Some(t) = self.agents.iter().map(|x| x.0).min() {
                next = next.min(t);
            }
            for n in &self.nodes {
                if n.up {
                    if let Some(t) = n.node.next_deadline() {
                        next = next.min(t.max(self.now));
                    }
                }
            }
            if next > end {
                break;
            }
            // A deadline that is due but never handled would spin here.
            stuck = if next == self.now { stuck + 1 } else { 0 };
            assert!(stuck < 10_000, "livelock at {:?}", self.now);
            self.now = next;
            // Deliveries due now, in send order.
            let mut due: Vec<Delivery> = Vec::new();
            let mut rest = Vec::new();
            for d in self.net.drain(..) {
                if d.at <= self.now {
                    due.push(d);
                } else {
                    rest.push(d);
                }
            }
            self.net = rest;
            due.sort_by_key(|d| (d.at, d.order));
            for d in due {
                if !self.nodes[d.to].up {
                    continue;
                }
                let msg = wire::decode_verified(&d.bytes, &self.keys).expect("sim packets verify");
                let c = self.clock();
                self.nodes[d.to].node.packet(c, msg, d.link);
                self.drain(d.to);
            }
            let (due, rest): (Vec<_>, Vec<_>) =
                self.agents.drain(..).partition(|a| a.0 <= self.now);
            self.agents = rest;
            for (_, i, call, res) in due {
                if self.nodes[i].up {
                    let c = self.clock();
                    self.nodes[i].node.agent_done(c, call, res);
                    self.drain(i);
                }
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].up {
                    let c = self.clock();
                    self.nodes[i].node.tick(c);
                    self.drain(i);
                }
            }
            if self.now == end {
                break;
            }
        }
        self.now = end;
    }

    /// The nodes on which resource `r` runs.
    pub fn owners(&self, r: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.running(*i, r))
            .collect()
    }

    /// Every log line of node `i`, for failure messages.
    pub fn dump(&self, i: usize) -> String {
        self.nodes[i]
            .logs
            .iter()
            .map(|(t, l, s)| format!("{:>8.3} {} {s}\n", t.as_secs_f64(), l.word()))
            .collect()
    }
}
