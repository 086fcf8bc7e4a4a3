//! v1 resource management: who holds which haresources groups, the
//! `starting` / `resource` / `ask_resources` / `shutdone` handshakes of
//! `auto_failback on|off` (3.0.6's "nice_failback"), the `ip-request`
//! handshake of `legacy`, takeover on death, standby, failback, graceful
//! shutdown — and the executor that runs the agents.
//!
//! The state variables and their transitions mirror 3.0.6's `hb_resource.c`
//! (resourcestate, i_hold_resources, other_holds_resources, other_is_stable,
//! going_standby, ...), because a real 3.0.6 peer reacts to exactly the
//! messages they produce. What 3.0.6 does with shell scripts
//! (ResourceManager, mach_down, req_resource, rc.d/*) is done here by jobs:
//! each job is a list of group operations run by one executor, one agent call
//! at a time, and sends the message its script would have sent when it ends.
//!
//! Differences from 3.0.6, on purpose:
//! * a group is taken over as soon as the peer's `shutdone` arrives (3.0.6
//!   goes through mach_down scripts, ~0.6 s);
//! * `req_our_resources()` reports its holding after the groups are running,
//!   not before;
//! * a healed split brain does not restart the node: with a heartbeatd peer
//!   each node gives up the groups whose home is the other node and
//!   re-announces the ones it keeps; with a 3.0.6 peer (which restarts
//!   itself and gives up everything) we keep ours and re-announce them once
//!   it has let go, so the groups never stop running anywhere;
//! * a `stop` that keeps failing triggers the `stop_failure` policy instead
//!   of `pkill -9 heartbeat; reboot -nf`;
//! * a graceful shutdown waits for a peer stuck in transition for at most
//!   30 s, not forever.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

use super::{Action, AgentResult, CallId, Level, Node, Settings};
use crate::config::{StopFailure, Verb};
use crate::wire::{f, Message};

/// RQSTDELAY: how long a starting node waits for the other to settle.
const RQSTDELAY: Duration = Duration::from_secs(10);
/// Standby: how long to wait for the other's first reply.
const STANDBY_INIT_TO: Duration = Duration::from_secs(10);
/// Standby: how long the whole resource handover may take.
const STANDBY_RSC_TO: Duration = Duration::from_secs(3600);
/// After a failed start, go standby for that group this much later.
const STANDBY_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// A graceful shutdown waits at most this long for the peer to settle.
const SHUTDOWN_MAX_DELAY: Duration = Duration::from_secs(30);
/// Delay between retries of a failing stop.
const STOP_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Which resources: the `rsc_hold` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hold {
    None,
    Local,
    Foreign,
    All,
}

const LOCAL: u8 = 1;
const FOREIGN: u8 = 2;
const ALL: u8 = 3;

impl Hold {
    pub fn bits(self) -> u8 {
        match self {
            Hold::None => 0,
            Hold::Local => LOCAL,
            Hold::Foreign => FOREIGN,
            Hold::All => ALL,
        }
    }

    pub fn from_bits(b: u8) -> Hold {
        match b & ALL {
            0 => Hold::None,
            LOCAL => Hold::Local,
            FOREIGN => Hold::Foreign,
            _ => Hold::All,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Hold::None => "none",
            Hold::Local => "local",
            Hold::Foreign => "foreign",
            Hold::All => "all",
        }
    }

    /// Parses `none|local|foreign|all`.
    pub fn parse(s: &str) -> Option<Hold> {
        match s {
            "none" => Some(Hold::None),
            "local" => Some(Hold::Local),
            "foreign" => Some(Hold::Foreign),
            "all" => Some(Hold::All),
            _ => None,
        }
    }
}

fn word(bits: u8) -> &'static str {
    Hold::from_bits(bits).word()
}

/// 3.0.6's HB_UPD_RSC: a full update replaces, a partial one adds (and
/// "none" clears).
fn upd(full: bool, cur: u8, up: u8) -> u8 {
    if full || up == 0 {
        up
    } else {
        up | cur
    }
}

/// resourcestate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RState {
    Init,
    BothStarting,
    Starting,
    RscRcvd,
    Stable,
    Shutdown,
}

impl RState {
    /// 3.0.6's numbering, for log lines that print it.
    fn num(self) -> u8 {
        match self {
            RState::Init => 0,
            RState::BothStarting => 1,
            RState::Starting => 2,
            RState::RscRcvd => 3,
            RState::Stable => 4,
            RState::Shutdown => 5,
        }
    }
}

/// going_standby.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Standby {
    Not,
    Me,
    Other,
    Done,
}

impl Standby {
    fn word(self) -> &'static str {
        match self {
            Standby::Not => "not",
            Standby::Me => "me",
            Standby::Other => "other",
            Standby::Done => "done",
        }
    }

    fn num(self) -> u8 {
        match self {
            Standby::Not => 0,
            Standby::Me => 1,
            Standby::Other => 2,
            Standby::Done => 3,
        }
    }
}

/// What a job is for, and what it does when its operations are done.
#[derive(Clone, Debug, PartialEq, Eq)]
enum JobKind {
    /// req_our_resources(): acquire our own groups.
    ReqOurResources,
    /// mach_down NODE: acquire a dead node's groups.
    MachDown(String),
    /// go_standby(): give up or acquire a set of groups, then send `done`.
    GoStandby { acquire: bool, set: u8, rsctype: u8 },
    /// hb_giveup_resources(): release everything, then send `shutdone`.
    GiveupAll,
    /// rc.d/ip-request: give a group to the node that asked, and answer.
    IpRequest { from: String, key: String },
    /// rc.d/ip-request-resp: take the group we asked for.
    IpRequestResp,
    /// After a healed split brain: release the groups homed on the peer.
    HealRelease,
    /// After a healed split brain: re-announce the groups we keep.
    Reassert,
}

impl JobKind {
    fn name(&self) -> &'static str {
        match self {
            JobKind::ReqOurResources => "req_our_resources",
            JobKind::MachDown(_) => "mach_down",
            JobKind::GoStandby { .. } => "go_standby",
            JobKind::GiveupAll => "hb_giveup_resources",
            JobKind::IpRequest { .. } => "ip-request",
            JobKind::IpRequestResp => "ip-request-resp",
            JobKind::HealRelease => "heal_release",
            JobKind::Reassert => "reassert",
        }
    }
}

/// One operation on a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Start the group (status first for each resource, left to right).
    Take(usize),
    /// Stop the group (right to left, with retries).
    Give(usize),
    /// req_resource: if the key resource is not ours, take the group (or,
    /// in legacy mode with the peer up, ask for it with ip-request).
    Request(usize),
    /// ip-request: give the group up if we own it; remember if we did.
    GiveIfOwned(usize),
    /// Start every resource again without a status check, so that agents
    /// re-announce (gratuitous ARP).
    Reassert(usize),
}

#[derive(Debug)]
struct Job {
    id: u64,
    kind: JobKind,
    ops: VecDeque<Op>,
    /// Queued remote requests only start when no other job runs.
    remote: bool,
    started: bool,
    /// Groups this job found running / acquired (for messages and logs).
    count: usize,
    weown: bool,
    /// Set when an operation of the job gave up (stop failure hold).
    aborted: bool,
}

/// A job as `cl_status`/`--json` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobView {
    pub kind: &'static str,
    pub pending_ops: usize,
    pub running: bool,
}

/// The executor's current group operation.
#[derive(Debug)]
struct Running {
    job: u64,
    op: Op,
    /// Index of the resource being worked on.
    pos: usize,
    phase: Phase,
    call: Option<CallId>,
    retries: u32,
    /// For Take: set when a start failed; we are now stopping the group.
    failed_at: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for `status` of resource `pos` (before a start).
    StatusBeforeStart,
    Start,
    Stop,
    /// Waiting to retry a failed stop.
    StopRetryWait(Duration),
    /// After the stop retries: is it still running?
    StatusAfterFailedStop,
    /// Waiting for the stop_failure command.
    StopFailureCommand,
}

/// What we know about a group on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GroupState {
    /// Not touched since start: may be running (a previous run).
    Unknown,
    Running,
    Stopped,
    /// Could not be stopped; held by policy.
    StopFailed,
}

#[derive(Debug)]
pub(super) struct Resources {
    state: RState,
    i_hold: u8,
    other_holds: u8,
    other_is_stable: bool,
    takeover_in_progress: bool,
    going_standby: Standby,
    standby_deadline: Option<Duration>,
    standby_rsctype: u8,
    rsc_needs_failback: bool,
    rsc_needs_shutdown: bool,
    /// The other node announced it is giving everything up (its
    /// `resource` message with `info=shutdown`), its `shutdone` not yet in:
    /// a handover, not an ownerless cluster.
    other_shutting_down: bool,
    pub(super) shutdown_in_progress: bool,
    resource_shutdown_started: bool,
    shutdown_requested_at: Option<Duration>,
    local_takeover_work_done: bool,
    foreign_takeover_work_done: bool,
    init_takeover_announced: bool,
    local_takeover_time: Option<Duration>,
    resources_requested_yet: bool,
    failback_retry_at: Option<Duration>,
    standby_later: Vec<(Duration, u8)>,
    /// The peer whose return after a partition we are handling.
    healed_from: Option<usize>,
    /// Sequence number of the last `resource` message from the other node:
    /// an older one (retransmitted late) must not override newer news.
    last_rsc_seq: u64,
    groups: Vec<GroupState>,
    jobs: Vec<Job>,
    next_job: u64,
    next_call: CallId,
    running: Option<Running>,
}

impl Resources {
    pub(super) fn new(s: &Settings) -> Resources {
        Resources {
            state: RState::Init,
            i_hold: 0,
            other_holds: 0,
            other_is_stable: false,
            takeover_in_progress: false,
            going_standby: Standby::Not,
            standby_deadline: None,
            standby_rsctype: ALL,
            rsc_needs_failback: false,
            rsc_needs_shutdown: false,
            other_shutting_down: false,
            shutdown_in_progress: false,
            resource_shutdown_started: false,
            shutdown_requested_at: None,
            local_takeover_work_done: false,
            foreign_takeover_work_done: false,
            init_takeover_announced: false,
            local_takeover_time: None,
            resources_requested_yet: false,
            failback_retry_at: None,
            standby_later: Vec::new(),
            healed_from: None,
            last_rsc_seq: 0,
            groups: vec![GroupState::Unknown; s.groups.len()],
            jobs: Vec::new(),
            next_job: 1,
            next_call: 1,
            running: None,
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Duration> {
        let mut v = Vec::new();
        if self.state == RState::RscRcvd {
            v.extend(self.local_takeover_time);
        }
        v.extend(self.standby_deadline);
        v.extend(self.failback_retry_at);
        v.extend(self.standby_later.iter().map(|(t, _)| *t));
        if self.rsc_needs_shutdown {
            v.extend(self.shutdown_requested_at.map(|t| t + SHUTDOWN_MAX_DELAY));
        }
        if let Some(Running {
            phase: Phase::StopRetryWait(t),
            ..
        }) = self.running
        {
            v.push(t);
        }
        v.into_iter().min()
    }

    pub(super) fn job_views(&self) -> Vec<JobView> {
        self.jobs
            .iter()
            .map(|j| JobView {
                kind: j.kind.name(),
                pending_ops: j.ops.len(),
                running: j.started,
            })
            .collect()
    }

    /// ResourceMgmt_child_count: jobs started and not finished.
    fn running_jobs(&self) -> usize {
        self.jobs.iter().filter(|j| j.started).count()
    }
}

/// `status` output judged like ResourceManager's we_own_resource: "not
/// running" → no; "running" or "OK" → yes; anything else → no.
pub fn status_says_running(stdout: &str) -> bool {
    let lower = stdout.to_ascii_lowercase();
    if let Some(i) = lower.find("not ") {
        // *[Nn][Oo][Tt]\ *[Rr]unning*
        if stdout[i + 4..].contains("running") || stdout[i + 4..].contains("Running") {
            return false;
        }
    }
    stdout.contains("running") || stdout.contains("Running") || stdout.contains("OK")
}

impl Node {
    fn nice(&self) -> bool {
        self.s.nice_failback()
    }

    fn auto_failback(&self) -> bool {
        self.s.auto_failback == crate::config::AutoFailback::On
    }

    fn group_is_local(&self, g: usize) -> bool {
        self.s.groups[g].home == self.s.me
    }

    /// Group indexes for a resource set, in haresources order.
    fn groups_of(&self, set: u8) -> Vec<usize> {
        (0..self.s.groups.len())
            .filter(|g| {
                let bit = if self.group_is_local(*g) {
                    LOCAL
                } else {
                    FOREIGN
                };
                set & bit != 0
            })
            .collect()
    }

    fn group_by_key(&self, key: &str) -> Option<usize> {
        self.s.groups.iter().position(|g| g.key == key)
    }

    pub(super) fn rsc_state_word(&self) -> &'static str {
        if self.rsc_isstable() {
            word(self.rsc.i_hold)
        } else {
            "transition"
        }
    }

    pub(super) fn rsc_group_views(&self) -> Vec<(String, String, bool)> {
        self.s
            .groups
            .iter()
            .zip(&self.rsc.groups)
            .map(|(g, st)| {
                (
                    g.key.clone(),
                    g.home.clone(),
                    matches!(st, GroupState::Running | GroupState::StopFailed),
                )
            })
            .collect()
    }

    fn rsc_isstable(&self) -> bool {
        let r = &self.rsc;
        if !self.nice() {
            return r.running_jobs() == 0;
        }
        if r.shutdown_in_progress && r.state == RState::Init {
            return true;
        }
        // Waiting out RQSTDELAY for a peer's word (RscRcvd) is pointless
        // for a shutdown when no peer is up.
        let waiting_for_nobody =
            r.state == RState::RscRcvd && r.shutdown_in_progress && self.alone();
        r.other_is_stable
            && !r.takeover_in_progress
            && r.going_standby == Standby::Not
            && r.standby_deadline.is_none()
            && r.running_jobs() == 0
            && (matches!(r.state, RState::Stable | RState::Shutdown | RState::Init)
                || waiting_for_nobody)
    }

    fn announce_takeover(&mut self, reason: &str) {
        let r = &mut self.rsc;
        if r.init_takeover_announced || !r.local_takeover_work_done || !r.foreign_takeover_work_done
        {
            return;
        }
        r.init_takeover_announced = true;
        self.log(
            Level::Info,
            format!("Initial resource acquisition complete ({reason})"),
        );
    }

    // ---------------------------------------------------------------- messages

    fn send_resources_held(&mut self, stable: bool, comment: Option<&str>) {
        if !self.nice() {
            return;
        }
        let mut m = Message::new("resource");
        m.add("rsc_hold", word(self.rsc.i_hold))
            .add("rtype", "full")
            .add("isstable", if stable { "1" } else { "0" });
        if let Some(c) = comment {
            m.add("info", c);
        }
        self.send(m);
    }

    fn send_standby_msg(&mut self, state: Standby, rsctype: u8) {
        let mut m = Message::new("ask_resources");
        m.add("rsc_hold", word(rsctype)).add("info", state.word());
        self.send(m);
    }

    fn send_stonith_msg(&mut self, node: &str, result: &str) {
        let mut m = Message::new("stonith");
        m.add("node", node).add("result", result);
        self.send(m);
    }

    /// Messages of the resource protocol (after communication is up).
    pub(super) fn rsc_message(&mut self, t: &str, idx: usize, msg: &Message) {
        if !self.s.manage_resources {
            return;
        }
        match t {
            "starting" | "resource" | "shutdone" => self.process_resources(t, idx, msg),
            "ask_resources" => self.ask_for_resources(idx, msg),
            "ip-request" => self.on_ip_request(idx, msg),
            "ip-request-resp" => self.on_ip_request_resp(msg),
            "hb_takeover" => self.on_hb_takeover(idx, msg),
            _ => {}
        }
    }

    /// comm_up_resource_action().
    pub(super) fn rsc_comm_up(&mut self) {
        if self.rsc.resource_shutdown_started {
            // Stopped before communication came up (holding nothing): the
            // release is under way or done; acquire nothing now.
            return;
        }
        if self.s.manage_resources {
            self.rsc_comm_up_resources();
        }
        if self.rsc.shutdown_in_progress && !self.rsc.resource_shutdown_started {
            // A shutdown was requested before communication came up.
            self.rsc.shutdown_in_progress = false;
            self.initiate_shutdown();
        }
    }

    fn rsc_comm_up_resources(&mut self) {
        let dead = self.mem.peers.iter().filter(|p| p.status == "dead").count();
        if dead == 0 {
            self.rsc.foreign_takeover_work_done = true;
        }
        if self.nice() {
            self.send(Message::new("starting"));
            self.rsc.state = RState::Starting;
        } else if !self.rsc.resources_requested_yet {
            self.rsc.resources_requested_yet = true;
            self.req_our_resources(false);
        }
    }

    /// process_resources(): `starting`, `resource`, `shutdone`.
    fn process_resources(&mut self, t: &str, idx: usize, msg: &Message) {
        self.shutdown_if_needed();
        if !self.nice() {
            return;
        }
        let me = self.mem.me;
        let from_me = idx == me;
        let mut new = self.rsc.state;
        if t == "starting" && !from_me {
            match self.rsc.state {
                RState::RscRcvd | RState::Stable | RState::Shutdown => {}
                RState::Starting => {
                    new = RState::BothStarting;
                    self.rsc.foreign_takeover_work_done = true;
                    self.announce_takeover("HB_R_BOTHSTARTING");
                }
                s => {
                    self.log(
                        Level::Err,
                        format!("Received 'starting' message in state {}", s.num()),
                    );
                    return;
                }
            }
            self.rsc.other_is_stable = false;
            if self.rsc.takeover_in_progress {
                self.log(
                    Level::Warn,
                    "T_STARTING received during takeover.".to_owned(),
                );
            }
            let stable = self.rsc.state == RState::Stable;
            self.send_resources_held(stable, None);
        }
        if t == "resource" {
            let Some(p) = msg.get("rsc_hold") else {
                self.log(
                    Level::Err,
                    "resource message without rsc_hold field.".to_owned(),
                );
                return;
            };
            let n = match Hold::parse(p) {
                Some(h) => h.bits(),
                None => {
                    self.log(
                        Level::Err,
                        format!("encode_resources: bad resource type [{p}]"),
                    );
                    0
                }
            };
            let full = msg.get("rtype") == Some("full");
            match self.rsc.state {
                RState::BothStarting | RState::Starting => {
                    new = RState::RscRcvd;
                    if !self.auto_failback() {
                        self.rsc.foreign_takeover_work_done = true;
                        self.announce_takeover("T_RESOURCES");
                    }
                }
                RState::RscRcvd | RState::Stable | RState::Shutdown => {}
                s => {
                    self.log(
                        Level::Err,
                        format!("resource message received in state {}", s.num()),
                    );
                    return;
                }
            }
            if !from_me {
                let seq = msg.get_hex(f::SEQ).unwrap_or(0);
                if seq < self.rsc.last_rsc_seq {
                    // Stale news delivered late by a retransmission.
                    return;
                }
                self.rsc.last_rsc_seq = seq;
                if msg.get("info") == Some("shutdown") {
                    self.rsc.other_shutting_down = true;
                }
                self.rsc.other_holds = upd(full, self.rsc.other_holds, n);
                if let Some(st) = msg.get("isstable") {
                    if st == "1" {
                        if !self.rsc.other_is_stable {
                            self.log(
                                Level::Info,
                                "remote resource transition completed.".to_owned(),
                            );
                            self.rsc.other_is_stable = true;
                            let stable = self.rsc.state == RState::Stable;
                            self.send_resources_held(stable, None);
                            self.perform_auto_failback();
                        }
                    } else {
                        self.rsc.other_is_stable = false;
                    }
                }
                if !matches!(self.rsc.state, RState::Stable | RState::Shutdown)
                    && self.rsc.other_is_stable
                {
                    self.log(
                        Level::Info,
                        "remote resource transition completed.".to_owned(),
                    );
                    self.req_our_resources(false);
                    new = RState::Stable;
                    self.send_resources_held(true, None);
                    self.perform_auto_failback();
                    self.rsc.foreign_takeover_work_done = true;
                    if !self.auto_failback() && self.rsc.other_holds & FOREIGN != 0 {
                        self.rsc.local_takeover_work_done = true;
                    }
                    self.announce_takeover("T_RESOURCES(them)");
                }
            } else {
                self.rsc.i_hold = upd(full, self.rsc.i_hold, n);
                if self.rsc.i_hold & LOCAL != 0 {
                    self.rsc.local_takeover_work_done = true;
                    self.announce_takeover("T_RESOURCES(us)");
                }
                match msg.get("info") {
                    Some("mach_down") => {
                        self.log(Level::Info, "mach_down takeover complete.".to_owned());
                        self.rsc.takeover_in_progress = false;
                        self.rsc.i_hold |= FOREIGN;
                        self.rsc.rsc_needs_failback = true;
                        self.rsc.other_is_stable = true;
                        self.rsc.foreign_takeover_work_done = true;
                        self.announce_takeover("mach_down");
                    }
                    Some("shutdown") => {
                        self.rsc.state = RState::Shutdown;
                        new = RState::Shutdown;
                    }
                    _ => {}
                }
            }
        }
        if t == "shutdone" {
            if !from_me {
                // (other_shutting_down ends with the takeover the shutdown
                // notice starts right after this)
                self.rsc.other_is_stable = true;
                self.rsc.other_holds = 0;
            } else {
                self.rsc.state = RState::Shutdown;
                new = RState::Shutdown;
                self.rsc.i_hold = 0;
            }
        }
        self.rsc.state = new;
        if self.rsc.state == RState::RscRcvd && self.rsc.local_takeover_time.is_none() {
            self.rsc.local_takeover_time = Some(self.now.mono + RQSTDELAY);
        }
        self.audit_resources();
        if !from_me {
            self.claim_orphaned_local_groups();
        }
        self.shutdown_if_needed();
    }

    /// 3.0.6 only logs "No one owns our local resources!" when both nodes
    /// are stable and neither runs our groups (possible after a one-sided
    /// split-brain heal or reordered messages). We take them.
    fn claim_orphaned_local_groups(&mut self) {
        let r = &self.rsc;
        if r.shutdown_in_progress
            || r.state != RState::Stable
            || r.going_standby != Standby::Not
            || r.standby_deadline.is_some()
            || r.running_jobs() > 0
            || !r.other_is_stable
            || r.takeover_in_progress
            || r.other_holds & FOREIGN != 0
            || r.i_hold & LOCAL != 0
            || self.groups_of(LOCAL).is_empty()
        {
            return;
        }
        self.log(
            Level::Warn,
            "No one owns our local resources: acquiring them.".to_owned(),
        );
        self.req_our_resources(true);
    }

    fn audit_resources(&mut self) {
        if !self.nice() {
            return;
        }
        let (i, o) = (self.rsc.i_hold, self.rsc.other_holds);
        if i & LOCAL != 0 && o & FOREIGN != 0 {
            self.log(Level::Err, "Both machines own our resources!".to_owned());
        }
        if o & LOCAL != 0 && i & FOREIGN != 0 {
            self.log(
                Level::Err,
                "Both machines own foreign resources!".to_owned(),
            );
        }
        if self.rsc_isstable()
            && !self.rsc.shutdown_in_progress
            && !self.rsc.other_shutting_down
            && self.rsc.state != RState::Shutdown
        {
            if i & LOCAL == 0 && o & FOREIGN == 0 {
                self.log(Level::Err, "No one owns our local resources!".to_owned());
            }
            if o & LOCAL == 0 && i & FOREIGN == 0 {
                self.log(Level::Err, "No one owns foreign resources!".to_owned());
            }
        }
    }

    fn perform_auto_failback(&mut self) {
        let r = &self.rsc;
        if r.shutdown_in_progress
            || r.i_hold & FOREIGN == 0
            || !r.rsc_needs_failback
            || !self.auto_failback()
        {
            self.rsc.rsc_needs_failback = false;
            self.shutdown_if_needed();
            return;
        }
        if r.going_standby != Standby::Not || !r.other_is_stable || r.state != RState::Stable {
            self.log(Level::Debug, "Auto failback delayed.".to_owned());
            self.rsc.failback_retry_at = Some(self.now.mono + Duration::from_secs(1));
            return;
        }
        self.rsc.standby_rsctype = FOREIGN;
        self.send_standby_msg(Standby::Me, FOREIGN);
        self.rsc.rsc_needs_failback = false;
    }

    /// ask_for_resources(): the standby handshake.
    fn ask_for_resources(&mut self, idx: usize, msg: &Message) {
        if !self.nice() {
            self.log(
                Level::Info,
                "Standby mode only implemented when nice_failback on".to_owned(),
            );
            return;
        }
        if self.rsc.state == RState::Shutdown {
            return;
        }
        let from_me = idx == self.mem.me;
        let from = self.mem.peers[idx].name.clone();
        let rtype = msg
            .get("rsc_hold")
            .map(|p| Hold::parse(p).map(Hold::bits).unwrap_or(0))
            .unwrap_or(ALL);
        let Some(info) = msg.get("info").map(str::to_owned) else {
            self.log(
                Level::Err,
                "Received standby message without info/from".to_owned(),
            );
            return;
        };
        let now = self.now.mono;
        let orig = self.rsc.going_standby;
        if let Some(d) = self.rsc.standby_deadline {
            if now < d && info.eq_ignore_ascii_case("me") {
                let left = (d - now).as_millis().div_ceil(1000);
                self.log(
                    Level::Warn,
                    format!(
                        "Standby in progress- new request from {from} ignored [{left} seconds left]"
                    ),
                );
                return;
            }
        }
        let mut ignored = false;
        match self.rsc.going_standby {
            Standby::Not => {
                if !self.rsc.other_is_stable {
                    self.log(
                        Level::Warn,
                        format!(
                            "standby message [{info}] from {from} ignored.  Other side is in flux."
                        ),
                    );
                    return;
                }
                if self.rsc.state != RState::Stable {
                    self.log(
                        Level::Warn,
                        format!(
                            "standby message [{info}] from {from} ignored.  local resources in flux."
                        ),
                    );
                    return;
                }
                self.rsc.standby_rsctype = rtype;
                if info.eq_ignore_ascii_case("me") {
                    self.rsc.other_is_stable = false;
                    self.log(
                        Level::Info,
                        format!("{from} wants to go standby [{}]", word(rtype)),
                    );
                    if from_me {
                        self.rsc.standby_deadline = Some(now + STANDBY_INIT_TO);
                        self.rsc.going_standby = Standby::Me;
                    } else {
                        self.rsc.going_standby = Standby::Other;
                        self.send_standby_msg(Standby::Other, rtype);
                        self.rsc.standby_deadline = Some(now + STANDBY_RSC_TO);
                    }
                } else {
                    ignored = true;
                }
            }
            Standby::Me => {
                if !from_me {
                    self.rsc.standby_rsctype = rtype;
                    self.rsc.standby_deadline = Some(now + STANDBY_RSC_TO);
                    if info.eq_ignore_ascii_case("other") {
                        self.log(
                            Level::Info,
                            format!("standby: {from} can take our {} resources", word(rtype)),
                        );
                        self.go_standby(true, rtype);
                    } else {
                        ignored = true;
                    }
                } else if info.eq_ignore_ascii_case("done") {
                    self.log(
                        Level::Info,
                        format!("Local standby process completed [{}].", word(rtype)),
                    );
                    self.rsc.going_standby = Standby::Done;
                    self.rsc.i_hold &= !self.rsc.standby_rsctype;
                    self.rsc.standby_deadline = Some(now + STANDBY_RSC_TO);
                } else {
                    ignored = true;
                }
            }
            Standby::Other => {
                self.rsc.standby_rsctype = rtype;
                if info.eq_ignore_ascii_case("done") {
                    self.rsc.standby_deadline = Some(now + STANDBY_RSC_TO);
                    if !from_me {
                        self.log(
                            Level::Info,
                            format!("standby: acquire [{}] resources from {from}", word(rtype)),
                        );
                        self.go_standby(false, rtype);
                        self.rsc.going_standby = Standby::Done;
                    } else {
                        ignored = true;
                    }
                } else if !from_me || !info.eq_ignore_ascii_case("other") {
                    ignored = true;
                }
            }
            Standby::Done => {
                self.rsc.standby_rsctype = rtype;
                if info == "done" {
                    self.rsc.standby_deadline = None;
                    self.rsc.going_standby = Standby::Not;
                    if from_me {
                        self.log(
                            Level::Info,
                            format!("Standby resource acquisition done [{}].", word(rtype)),
                        );
                        if self.auto_failback() {
                            self.rsc.local_takeover_work_done = true;
                            self.announce_takeover("auto_failback");
                        }
                        let rup = match rtype {
                            LOCAL => FOREIGN,
                            FOREIGN => LOCAL,
                            ALL => ALL,
                            _ => 0,
                        };
                        self.rsc.i_hold |= rup;
                    } else {
                        self.log(
                            Level::Info,
                            format!(
                                "Other node completed standby takeover of {} resources.",
                                word(rtype)
                            ),
                        );
                    }
                    self.send_resources_held(true, None);
                    self.rsc.going_standby = Standby::Not;
                } else {
                    ignored = true;
                }
            }
        }
        if ignored {
            self.log(
                Level::Err,
                format!(
                    "Ignored standby message '{info}' from {from} in state {}",
                    orig.num()
                ),
            );
        }
        self.shutdown_if_needed();
    }

    /// go_standby(): `give_up` = who is ME.
    fn go_standby(&mut self, give_up: bool, set: u8) {
        if give_up {
            self.rsc.other_is_stable = false;
            self.rsc.i_hold &= !set;
            self.send_resources_held(false, Some("standby"));
        }
        let act = match set {
            FOREIGN => {
                if give_up {
                    FOREIGN
                } else {
                    LOCAL
                }
            }
            LOCAL => {
                if give_up {
                    LOCAL
                } else {
                    FOREIGN
                }
            }
            ALL => ALL,
            _ => {
                let what = if give_up { "give up" } else { "acquire" };
                self.log(Level::Err, format!("no resources to {what}"));
                return;
            }
        };
        let what = if give_up { "give up" } else { "acquire" };
        self.log(
            Level::Info,
            format!("{what} {} HA resources (standby).", word(act)),
        );
        let ops = self
            .groups_of(act)
            .into_iter()
            .map(|g| if give_up { Op::Give(g) } else { Op::Take(g) })
            .collect();
        let rsctype = self.rsc.standby_rsctype;
        self.add_job(
            JobKind::GoStandby {
                acquire: !give_up,
                set: act,
                rsctype,
            },
            ops,
            false,
        );
    }

    /// Standby timeouts, delayed failback, RQSTDELAY, standby after a failed
    /// start, stop retries, a shutdown waiting too long.
    pub(super) fn rsc_tick(&mut self) {
        let now = self.now.mono;
        if let Some(d) = self.rsc.standby_deadline {
            if now >= d {
                self.rsc.standby_deadline = None;
                self.rsc.other_is_stable = true;
                self.rsc.going_standby = Standby::Not;
                self.log(
                    Level::Warn,
                    "No reply to standby request.  Standby request cancelled.".to_owned(),
                );
                self.shutdown_if_needed();
            }
        }
        if self.rsc.failback_retry_at.is_some_and(|t| now >= t) {
            self.rsc.failback_retry_at = None;
            self.perform_auto_failback();
        }
        if self.nice()
            && self.rsc.state == RState::RscRcvd
            && self.rsc.local_takeover_time.is_some_and(|t| now >= t)
        {
            self.rsc.state = RState::Stable;
            self.req_our_resources(false);
            self.log(
                Level::Info,
                "local resource transition completed.".to_owned(),
            );
            self.send_resources_held(true, None);
            self.audit_resources();
            self.shutdown_if_needed();
        }
        let due: Vec<u8> = self
            .rsc
            .standby_later
            .iter()
            .filter(|(t, _)| now >= *t)
            .map(|(_, w)| *w)
            .collect();
        self.rsc.standby_later.retain(|(t, _)| now < *t);
        for w in due {
            self.go_standby_cmd(w);
        }
        if self.rsc.rsc_needs_shutdown
            && self.rsc.running_jobs() == 0
            && self
                .rsc
                .shutdown_requested_at
                .is_some_and(|t| now >= t + SHUTDOWN_MAX_DELAY)
        {
            self.log(
                Level::Warn,
                "Shutdown no longer delayed: the peer is still in transition after 30 s."
                    .to_owned(),
            );
            self.rsc.other_is_stable = true;
            self.rsc.going_standby = Standby::Not;
            self.rsc.standby_deadline = None;
            self.rsc.takeover_in_progress = false;
            if !matches!(self.rsc.state, RState::Stable | RState::Shutdown) {
                self.rsc.state = RState::Stable;
            }
            self.giveup_resources();
        }
        if let Some(Running {
            phase: Phase::StopRetryWait(t),
            ..
        }) = self.rsc.running
        {
            if now >= t {
                self.step_stop_again();
            }
        }
    }

    // ------------------------------------------------------------- membership hooks

    /// hb_rsc_recover_dead_resources(): a node was declared dead.
    pub(super) fn rsc_recover_dead_resources(&mut self, idx: usize) {
        self.rsc.other_shutting_down = false;
        if self.rsc.going_standby != Standby::Not {
            self.log(
                Level::Info,
                "Cancelling pending standby operation".to_owned(),
            );
            self.rsc.going_standby = Standby::Not;
            self.rsc.standby_deadline = None;
            if !self.rsc.other_is_stable && self.rsc.i_hold & ALL == ALL {
                self.rsc.other_is_stable = true;
            }
            self.shutdown_if_needed();
        }
        if !self.s.manage_resources {
            return;
        }
        if self.rsc.shutdown_in_progress {
            // A dead peer is in no transition we could wait for: a release
            // delayed for it goes ahead now (not after the 30 s cap).
            self.rsc.other_is_stable = true;
            self.rsc.other_holds = 0;
            self.rsc.takeover_in_progress = false;
            if self.rsc.state != RState::Shutdown {
                self.giveup_resources();
            }
            return;
        }
        self.rsc.rsc_needs_failback = true;
        let name = self.mem.peers[idx].name.clone();
        let mut need_stonith = true;
        if self.mem.peers[idx].anypacketsyet {
            if self.nice() {
                if self.rsc.other_holds == 0 {
                    need_stonith = false;
                }
            } else if !self.mem.peers[idx].has_resources {
                need_stonith = false;
            }
        }
        if need_stonith {
            self.send_stonith_msg(&name, "n_stnth");
            self.log(Level::Warn, "No STONITH device configured.".to_owned());
            self.log(Level::Warn, "Shared disks are not protected.".to_owned());
            self.takeover_from_node(idx);
        } else {
            self.log(Level::Info, format!("Dead node {name} gave up resources."));
            self.send_stonith_msg(&name, "unneeded");
            if self.nice() {
                if self.rsc.i_hold & ALL == ALL {
                    self.rsc.other_is_stable = true;
                    return;
                }
                if self.rsc.i_hold & LOCAL == 0 {
                    self.req_our_resources(true);
                }
                if self.rsc.i_hold & FOREIGN == 0 {
                    self.takeover_from_node(idx);
                }
            } else {
                self.takeover_from_node(idx);
            }
        }
    }

    /// The other node restarted: its sequence numbers start again.
    pub(super) fn rsc_peer_restarted(&mut self) {
        self.rsc.last_rsc_seq = 0;
        self.rsc.other_shutting_down = false;
    }

    /// HBDoMsg_T_SHUTDONE from another node.
    pub(super) fn rsc_shutdown_notice(&mut self, idx: usize) {
        if !self.s.manage_resources {
            return;
        }
        self.mem.peers[idx].has_resources = false;
        self.rsc.other_shutting_down = false;
        self.rsc.other_is_stable = false;
        self.rsc.other_holds = 0;
        let name = self.mem.peers[idx].name.clone();
        self.log(
            Level::Info,
            format!("Received shutdown notice from '{name}'."),
        );
        if self.rsc.healed_from == Some(idx) {
            // The 3.0.6 peer restarted itself after a split brain and has
            // let go of everything: make the groups we kept announce again.
            self.rsc.healed_from = None;
            let held: Vec<usize> = (0..self.s.groups.len())
                .filter(|g| self.rsc.groups[*g] == GroupState::Running)
                .collect();
            if !held.is_empty() {
                let ops = held.into_iter().map(Op::Reassert).collect();
                self.add_job(JobKind::Reassert, ops, true);
            }
        }
        self.takeover_from_node(idx);
    }

    /// A node we had declared dead is back with the same generation.
    pub(super) fn partition_healed(&mut self, idx: usize, peer_is_heartbeatd: bool) {
        let name = self.mem.peers[idx].name.clone();
        self.log(
            Level::Crit,
            format!("Cluster node {name} returning after partition."),
        );
        self.log(
            Level::Info,
            "For information on cluster partitions, See URL: http://linux-ha.org/wiki/Split_Brain"
                .to_owned(),
        );
        self.log(Level::Warn, "Deadtime value may be too small.".to_owned());
        self.log(
            Level::Info,
            "See FAQ for information on tuning deadtime.".to_owned(),
        );
        self.send_local_status();
        if !self.s.manage_resources || self.rsc.shutdown_in_progress {
            return;
        }
        if peer_is_heartbeatd {
            // Both sides apply the same rule: the home node keeps a group.
            self.log(
                Level::Info,
                format!(
                    "split brain healed: {name} runs heartbeatd; giving back the groups homed there, keeping ours"
                ),
            );
            let give: Vec<usize> = (0..self.s.groups.len())
                .filter(|g| self.s.groups[*g].home == name)
                .filter(|g| self.rsc.groups[*g] != GroupState::Stopped)
                .collect();
            let keep: Vec<usize> = (0..self.s.groups.len())
                .filter(|g| self.group_is_local(*g))
                .filter(|g| self.rsc.groups[*g] == GroupState::Running)
                .collect();
            let mut ops: VecDeque<Op> = give.into_iter().map(Op::Give).collect();
            ops.extend(keep.into_iter().map(Op::Reassert));
            self.add_job(JobKind::HealRelease, ops, false);
        } else {
            self.log(
                Level::Info,
                format!(
                    "split brain healed: {name} runs heartbeat 3.0.6 and will restart itself, giving up its resources; keeping ours running"
                ),
            );
            self.rsc.healed_from = Some(idx);
        }
    }

    fn takeover_from_node(&mut self, idx: usize) {
        if self.rsc.shutdown_in_progress {
            self.log(
                Level::Info,
                "Resource takeover cancelled - shutdown in progress.".to_owned(),
            );
            self.shutdown_if_needed();
            return;
        }
        let name = self.mem.peers[idx].name.clone();
        self.log(
            Level::Info,
            format!("Resources being acquired from {name}."),
        );
        let ops = (0..self.s.groups.len())
            .filter(|g| self.s.groups[*g].home == name)
            .map(Op::Take)
            .collect();
        // (before the job: with nothing to take it completes at once, and
        // its mach_down message ends the takeover)
        if self.nice() {
            self.rsc.i_hold |= FOREIGN;
            self.rsc.other_holds = 0;
            self.rsc.other_is_stable = true;
            self.rsc.takeover_in_progress = true;
        }
        self.add_job(JobKind::MachDown(name), ops, true);
        self.req_our_resources(true);
        self.mem.peers[idx].anypacketsyet = true;
    }

    fn req_our_resources(&mut self, getthemanyway: bool) {
        if !self.s.manage_resources || self.rsc.shutdown_in_progress {
            return;
        }
        if self.nice() {
            if (self.rsc.other_holds & FOREIGN != 0 || self.rsc.i_hold & LOCAL != 0)
                && !getthemanyway
                && self.rsc.going_standby == Standby::Not
            {
                self.log(
                    Level::Info,
                    "Local Resource acquisition completed. (none)".to_owned(),
                );
                return;
            }
            self.rsc.i_hold |= LOCAL;
        }
        let ops = self.groups_of(LOCAL).into_iter().map(Op::Request).collect();
        self.add_job(JobKind::ReqOurResources, ops, false);
    }

    // ------------------------------------------------------------- remote requests

    fn on_ip_request(&mut self, idx: usize, msg: &Message) {
        if idx == self.mem.me {
            return;
        }
        let Some(key) = msg.get("ipaddr").map(str::to_owned) else {
            self.log(Level::Err, "ip-request without ipaddr".to_owned());
            return;
        };
        let from = self.mem.peers[idx].name.clone();
        let ops = self
            .group_by_key(&key)
            .map(Op::GiveIfOwned)
            .into_iter()
            .collect();
        self.add_job(JobKind::IpRequest { from, key }, ops, true);
    }

    fn on_ip_request_resp(&mut self, msg: &Message) {
        if !msg
            .get(f::DEST)
            .is_some_and(|d| d.eq_ignore_ascii_case(&self.s.me))
        {
            return;
        }
        let key = msg.get("ipaddr").unwrap_or("").to_owned();
        let ok = msg.get("ok").unwrap_or("").to_owned();
        let weown = msg.get("weown").unwrap_or("").to_owned();
        self.log(
            Level::Info,
            format!("received ip-request-resp {key} {ok} {weown}"),
        );
        if ok != "OK" {
            return;
        }
        match self.group_by_key(&key) {
            Some(g) => self.add_job(JobKind::IpRequestResp, VecDeque::from([Op::Take(g)]), true),
            None => self.log(
                Level::Err,
                format!("ip-request-resp for unknown resource group {key}"),
            ),
        }
    }

    fn on_hb_takeover(&mut self, idx: usize, msg: &Message) {
        if idx == self.mem.me {
            return;
        }
        // rc.d/hb_takeover: the other node wants these; we go standby for
        // the matching set.
        let standby = match msg.get("rsc_hold") {
            Some("local") => FOREIGN,
            Some("foreign") => LOCAL,
            _ => ALL,
        };
        self.go_standby_cmd(standby);
    }

    /// hb_standby: ask to go standby for `which`.
    fn go_standby_cmd(&mut self, which: u8) {
        self.log(Level::Info, format!("Going standby [{}].", word(which)));
        self.send_standby_msg(Standby::Me, which);
    }

    pub(super) fn cmd_standby(&mut self, which: Hold) {
        self.go_standby_cmd(which.bits());
    }

    pub(super) fn cmd_takeover(&mut self, which: Hold) {
        let mut m = Message::new("hb_takeover");
        m.add("rsc_hold", which.word());
        self.send(m);
    }

    // ------------------------------------------------------------- shutdown

    /// hb_initiate_shutdown(FALSE).
    pub(super) fn initiate_shutdown(&mut self) {
        if self.rsc.resource_shutdown_started && !self.rsc.rsc_needs_shutdown {
            if self
                .rsc
                .jobs
                .iter()
                .any(|j| j.kind == JobKind::GiveupAll && j.aborted)
                || self.rsc.groups.contains(&GroupState::StopFailed)
            {
                // A stop failed and the group is held: try once more.
                self.log(
                    Level::Info,
                    "Retrying the release of all resources.".to_owned(),
                );
                self.rsc
                    .jobs
                    .retain(|j| !(j.kind == JobKind::GiveupAll && j.aborted));
                self.start_giveup_job();
            } else {
                self.log(
                    Level::Info,
                    "Heartbeat shutdown already underway.".to_owned(),
                );
            }
            return;
        }
        self.rsc.shutdown_in_progress = true;
        if self.rsc.shutdown_requested_at.is_none() {
            self.rsc.shutdown_requested_at = Some(self.now.mono);
        }
        // Before communication is up (initdead) a node that has acquired
        // nothing has nothing to hand over: it releases what a previous run
        // may have left (stop is idempotent) and stops at once (3.0.6 waits
        // for initdead, up to minutes).
        let holds_nothing = self.rsc.running_jobs() == 0
            && self
                .rsc
                .groups
                .iter()
                .all(|g| matches!(g, GroupState::Stopped | GroupState::Unknown));
        if !self.mem.comm_up && !holds_nothing {
            self.log(
                Level::Warn,
                "Shutdown delayed until Communication is up.".to_owned(),
            );
            return;
        }
        self.send_local_status();
        if self.s.manage_resources {
            self.giveup_resources();
        } else {
            self.exit_at = Some(self.now.mono + Duration::from_secs(1));
        }
    }

    fn shutdown_if_needed(&mut self) {
        if self.rsc.rsc_needs_shutdown {
            self.giveup_resources();
        }
    }

    /// hb_giveup_resources().
    fn giveup_resources(&mut self) {
        if !self.s.manage_resources {
            return;
        }
        if !self.rsc_isstable() {
            if !self.rsc.rsc_needs_shutdown {
                self.log(
                    Level::Warn,
                    "Shutdown delayed until current resource activity finishes.".to_owned(),
                );
                self.rsc.rsc_needs_shutdown = true;
            }
            return;
        }
        self.rsc.rsc_needs_shutdown = false;
        self.rsc.shutdown_in_progress = true;
        if self.rsc.resource_shutdown_started {
            self.log(
                Level::Info,
                "Heartbeat shutdown already underway.".to_owned(),
            );
            return;
        }
        self.rsc.resource_shutdown_started = true;
        self.rsc.i_hold = 0;
        self.rsc.state = RState::Shutdown;
        self.send_resources_held(false, Some("shutdown"));
        self.log(Level::Info, "Heartbeat shutdown in progress.".to_owned());
        self.start_giveup_job();
    }

    fn start_giveup_job(&mut self) {
        self.log(Level::Info, "Giving up all HA resources.".to_owned());
        let ops = (0..self.s.groups.len())
            .filter(|g| self.rsc.groups[*g] != GroupState::Stopped)
            .map(Op::Give)
            .collect();
        self.add_job(JobKind::GiveupAll, ops, false);
    }

    // ------------------------------------------------------------- jobs & executor

    fn add_job(&mut self, kind: JobKind, ops: VecDeque<Op>, remote: bool) {
        let id = self.rsc.next_job;
        self.rsc.next_job += 1;
        self.rsc.jobs.push(Job {
            id,
            kind,
            ops,
            remote,
            started: false,
            count: 0,
            weown: false,
            aborted: false,
        });
        self.pump();
    }

    /// Starts jobs that may start, finishes empty ones, and keeps the
    /// executor busy.
    fn pump(&mut self) {
        loop {
            // Start jobs: local ones at once, remote ones when nothing runs.
            let busy = self.rsc.running_jobs() > 0;
            let mut any_remote_started = false;
            for j in self.rsc.jobs.iter_mut() {
                if j.started {
                    continue;
                }
                if j.remote {
                    if busy || any_remote_started {
                        continue;
                    }
                    any_remote_started = true;
                }
                j.started = true;
            }
            // Finish started jobs with nothing left to do.
            let done = self.rsc.jobs.iter().position(|j| {
                j.started
                    && j.ops.is_empty()
                    && !j.aborted
                    && self.rsc.running.as_ref().is_none_or(|r| r.job != j.id)
            });
            if let Some(i) = done {
                let job = self.rsc.jobs.remove(i);
                self.finish_job(job);
                continue;
            }
            if self.rsc.running.is_none() {
                let next = self
                    .rsc
                    .jobs
                    .iter_mut()
                    .find(|j| j.started && !j.aborted && !j.ops.is_empty());
                if let Some(j) = next {
                    let op = j.ops.pop_front().expect("ops not empty");
                    let id = j.id;
                    self.begin_op(id, op);
                    continue;
                }
            }
            break;
        }
    }

    fn finish_job(&mut self, job: Job) {
        match job.kind {
            JobKind::ReqOurResources => {
                if self.groups_of(LOCAL).is_empty() {
                    let me = self.s.me.clone();
                    self.log(
                        Level::Info,
                        format!("No local resources [ResourceManager listkeys {me}] to acquire."),
                    );
                } else {
                    self.log(
                        Level::Info,
                        "Local Resource acquisition completed.".to_owned(),
                    );
                }
                self.send_resources_held(true, Some("req_our_resources()"));
                self.rsc.local_takeover_work_done = true;
                self.announce_takeover("req_our_resources");
            }
            JobKind::IpRequestResp => {
                self.rsc.local_takeover_work_done = true;
                self.announce_takeover("ip-request-resp");
            }
            JobKind::MachDown(node) => {
                if self.nice() {
                    let mut m = Message::new("resource");
                    m.add("rsc_hold", "foreign").add("info", "mach_down");
                    self.send(m);
                }
                self.log(
                    Level::Info,
                    format!("mach_down takeover complete for node {node}."),
                );
            }
            JobKind::GoStandby {
                acquire,
                set,
                rsctype,
            } => {
                let what = if acquire { "acquisition" } else { "release" };
                self.log(
                    Level::Info,
                    format!("{} HA resource {what} completed (standby).", word(set)),
                );
                self.send_standby_msg(Standby::Done, rsctype);
            }
            JobKind::GiveupAll => {
                self.log(Level::Info, "All HA resources relinquished.".to_owned());
                let mut m = Message::new("shutdone");
                m.add(f::STATUS, "dead");
                self.send(m);
            }
            JobKind::IpRequest { from, key } => {
                let mut m = Message::new("ip-request-resp");
                m.add(f::DEST, &from)
                    .add("ipaddr", &key)
                    .add("weown", if job.weown { "yes" } else { "no" })
                    .add("ok", "OK");
                self.send(m);
            }
            JobKind::HealRelease => {
                self.rsc.i_hold &= !FOREIGN;
                self.rsc.i_hold |= LOCAL;
                self.rsc.rsc_needs_failback = false;
                self.rsc.other_is_stable = true;
                self.rsc.takeover_in_progress = false;
                let stable = self.rsc.state == RState::Stable;
                self.send_resources_held(stable, None);
                self.log(
                    Level::Info,
                    "split brain resolved: holding our own resource groups".to_owned(),
                );
            }
            JobKind::Reassert => {}
        }
        self.shutdown_if_needed();
    }

    fn call_agent(&mut self, g: usize, pos: usize, verb: Verb) -> CallId {
        let call = self.rsc.next_call;
        self.rsc.next_call += 1;
        let r = self.s.groups[g].resources[pos].clone();
        let timeout = self.s.timeouts.get(&r.script, verb);
        let mut shown = r.script.clone();
        for a in &r.args {
            shown.push(' ');
            shown.push_str(a);
        }
        if verb != Verb::Status {
            self.log(Level::Info, format!("Running {shown} {}", verb.as_str()));
        }
        self.actions.push_back(Action::RunAgent {
            call,
            script: r.script,
            args: r.args,
            verb,
            timeout,
        });
        call
    }

    fn group_line(&self, g: usize) -> String {
        let gs = &self.s.groups[g];
        let mut s = gs.home.clone();
        for r in &gs.resources {
            s.push(' ');
            s.push_str(&r.script);
            for a in &r.args {
                s.push_str("::");
                s.push_str(a);
            }
        }
        s
    }

    fn begin_op(&mut self, job: u64, op: Op) {
        match op {
            Op::Take(g) => {
                let line = self.group_line(g);
                self.log(Level::Info, format!("Acquiring resource group: {line}"));
                self.run_status(job, op, g, 0);
            }
            Op::Request(g) | Op::GiveIfOwned(g) => self.run_status(job, op, g, 0),
            Op::Give(g) => {
                let line = self.group_line(g);
                self.log(Level::Info, format!("Releasing resource group: {line}"));
                let last = self.s.groups[g].resources.len() - 1;
                self.run_stop(job, op, g, last, 0);
            }
            Op::Reassert(g) => {
                let call = self.call_agent(g, 0, Verb::Start);
                self.rsc.running = Some(Running {
                    job,
                    op,
                    pos: 0,
                    phase: Phase::Start,
                    call: Some(call),
                    retries: 0,
                    failed_at: None,
                });
            }
        }
    }

    fn run_status(&mut self, job: u64, op: Op, g: usize, pos: usize) {
        let call = self.call_agent(g, pos, Verb::Status);
        self.rsc.running = Some(Running {
            job,
            op,
            pos,
            phase: Phase::StatusBeforeStart,
            call: Some(call),
            retries: 0,
            failed_at: None,
        });
    }

    fn run_stop(&mut self, job: u64, op: Op, g: usize, pos: usize, retries: u32) {
        let call = self.call_agent(g, pos, Verb::Stop);
        let failed_at = self.rsc.running.as_ref().and_then(|r| r.failed_at);
        self.rsc.running = Some(Running {
            job,
            op,
            pos,
            phase: Phase::Stop,
            call: Some(call),
            retries,
            failed_at,
        });
    }

    fn job_mut(&mut self, id: u64) -> Option<&mut Job> {
        self.rsc.jobs.iter_mut().find(|j| j.id == id)
    }

    /// The current operation is over.
    fn op_done(&mut self) {
        self.rsc.running = None;
        self.pump();
    }

    pub(super) fn rsc_agent_done(&mut self, call: CallId, res: AgentResult) {
        let Some(run) = self.rsc.running.as_ref() else {
            return;
        };
        if run.call != Some(call) {
            return;
        }
        let (job, op, pos, phase) = (run.job, run.op, run.pos, run.phase);
        let g = match op {
            Op::Take(g) | Op::Give(g) | Op::Request(g) | Op::GiveIfOwned(g) | Op::Reassert(g) => g,
        };
        let rname = self.s.groups[g].resources[pos].script.clone();
        if let Some(e) = &res.error {
            self.log(Level::Err, e.clone());
        } else if res.timed_out {
            self.log(Level::Err, format!("{rname}: timed out, killed"));
        } else if res.exit != Some(0)
            && phase != Phase::StatusBeforeStart
            && phase != Phase::StatusAfterFailedStop
        {
            let rc = res
                .exit
                .map(|c| c.to_string())
                .unwrap_or_else(|| "(killed)".to_owned());
            self.log(Level::Err, format!("Return code {rc} from {rname}"));
        }
        let nres = self.s.groups[g].resources.len();
        match phase {
            Phase::StatusBeforeStart => {
                let owned = res.error.is_none() && status_says_running(&res.stdout);
                match op {
                    Op::Request(_) => {
                        if owned {
                            self.op_done();
                        } else if self.nice() || self.alone() {
                            // req_resource → (ip-request-resp to self) → takegroup
                            if let Some(j) = self.job_mut(job) {
                                j.ops.push_front(Op::Take(g));
                            }
                            self.op_done();
                        } else {
                            let mut m = Message::new("ip-request");
                            m.add("ipaddr", &self.s.groups[g].key.clone());
                            self.send(m);
                            self.op_done();
                        }
                    }
                    Op::GiveIfOwned(_) => {
                        if owned {
                            if let Some(j) = self.job_mut(job) {
                                j.weown = true;
                                j.ops.push_front(Op::Give(g));
                            }
                        }
                        self.op_done();
                    }
                    Op::Take(_) => {
                        if owned {
                            self.take_next(job, op, g, pos + 1);
                        } else {
                            let call = self.call_agent(g, pos, Verb::Start);
                            let run = self.rsc.running.as_mut().expect("running");
                            run.phase = Phase::Start;
                            run.call = Some(call);
                        }
                    }
                    Op::Give(_) | Op::Reassert(_) => unreachable!("no status before {op:?}"),
                }
            }
            Phase::Start => {
                if res.ok() {
                    if matches!(op, Op::Reassert(_)) {
                        if pos + 1 < nres {
                            let call = self.call_agent(g, pos + 1, Verb::Start);
                            let run = self.rsc.running.as_mut().expect("running");
                            run.pos = pos + 1;
                            run.call = Some(call);
                        } else {
                            self.rsc.groups[g] = GroupState::Running;
                            self.op_done();
                        }
                    } else {
                        self.take_next(job, op, g, pos + 1);
                    }
                } else {
                    self.log(
                        Level::Crit,
                        format!("Giving up resources due to failure of {rname}"),
                    );
                    let standby = if self.group_is_local(g) {
                        LOCAL
                    } else {
                        FOREIGN
                    };
                    self.rsc
                        .standby_later
                        .push((self.now.mono + STANDBY_AFTER_FAILURE, standby));
                    if let Some(r) = self.rsc.running.as_mut() {
                        r.failed_at = Some(pos);
                    }
                    let line = self.group_line(g);
                    self.log(Level::Info, format!("Releasing resource group: {line}"));
                    self.run_stop(job, op, g, nres - 1, 0);
                }
            }
            Phase::Stop => {
                if res.ok() {
                    self.stop_next(job, op, g, pos);
                } else if self.rsc.running.as_ref().expect("running").retries < self.s.stop_retries
                {
                    let run = self.rsc.running.as_mut().expect("running");
                    run.phase = Phase::StopRetryWait(self.now.mono + STOP_RETRY_DELAY);
                    run.call = None;
                } else {
                    let call = self.call_agent(g, pos, Verb::Status);
                    let run = self.rsc.running.as_mut().expect("running");
                    run.phase = Phase::StatusAfterFailedStop;
                    run.call = Some(call);
                }
            }
            Phase::StatusAfterFailedStop => {
                if res.error.is_none() && status_says_running(&res.stdout) {
                    self.stop_failed(job, g, pos);
                } else {
                    self.log(
                        Level::Err,
                        format!("Resource script for {rname} probably not LSB-compliant."),
                    );
                    self.log(
                        Level::Warn,
                        format!("it ({rname}) MUST succeed on a stop when already stopped"),
                    );
                    self.log(Level::Warn, "Machine reboot narrowly avoided!".to_owned());
                    self.stop_next(job, op, g, pos);
                }
            }
            Phase::StopFailureCommand => {
                if res.ok() {
                    self.log(
                        Level::Info,
                        format!(
                            "stop_failure command released {}: continuing",
                            self.s.groups[g].key
                        ),
                    );
                    self.stop_next(job, op, g, pos);
                } else {
                    self.hold_failed_group(job, g);
                }
            }
            Phase::StopRetryWait(_) => {}
        }
    }

    fn alone(&self) -> bool {
        let me = self.mem.me;
        let mut up = self
            .mem
            .peers
            .iter()
            .filter(|p| p.status == "active")
            .count();
        if self.mem.peers[me].status != "active" {
            up += 1;
        }
        up < 2
    }

    /// Take: continue with resource `pos` (status first), or finish.
    fn take_next(&mut self, job: u64, op: Op, g: usize, pos: usize) {
        if pos < self.s.groups[g].resources.len() {
            let call = self.call_agent(g, pos, Verb::Status);
            let run = self.rsc.running.as_mut().expect("running");
            run.pos = pos;
            run.phase = Phase::StatusBeforeStart;
            run.call = Some(call);
        } else {
            self.rsc.groups[g] = GroupState::Running;
            if let Some(j) = self.job_mut(job) {
                j.count += 1;
            }
            let _ = op;
            self.op_done();
        }
    }

    /// Give: resource `pos` is stopped; continue leftwards, or finish.
    fn stop_next(&mut self, job: u64, op: Op, g: usize, pos: usize) {
        if pos > 0 {
            self.run_stop(job, op, g, pos - 1, 0);
        } else {
            self.rsc.groups[g] = GroupState::Stopped;
            let failed = self.rsc.running.as_ref().and_then(|r| r.failed_at);
            self.op_done();
            if failed.is_some() {
                // A failed start released the group: nothing else to undo.
            }
        }
    }

    fn step_stop_again(&mut self) {
        let Some(run) = self.rsc.running.as_ref() else {
            return;
        };
        let (job, op, pos, retries) = (run.job, run.op, run.pos, run.retries);
        let g = match op {
            Op::Take(g) | Op::Give(g) | Op::Request(g) | Op::GiveIfOwned(g) | Op::Reassert(g) => g,
        };
        let rname = self.s.groups[g].resources[pos].script.clone();
        self.log(
            Level::Info,
            format!("Retrying failed stop operation [{rname}]"),
        );
        self.run_stop(job, op, g, pos, retries + 1);
    }

    /// A resource still runs after every stop retry: apply stop_failure.
    fn stop_failed(&mut self, job: u64, g: usize, pos: usize) {
        let rname = self.s.groups[g].resources[pos].script.clone();
        let key = self.s.groups[g].key.clone();
        self.log(
            Level::Crit,
            format!("Resource STOP failure: {rname} of group {key} is still running."),
        );
        match self.s.stop_failure.clone() {
            StopFailure::Hold => self.hold_failed_group(job, g),
            StopFailure::Reboot => {
                self.log(
                    Level::Crit,
                    "Resource STOP failure. Reboot required!".to_owned(),
                );
                self.actions.push_back(Action::Reboot {
                    reason: format!("stop of {rname} ({key}) failed"),
                });
                self.hold_failed_group(job, g);
            }
            StopFailure::Exec { command } => {
                let call = self.rsc.next_call;
                self.rsc.next_call += 1;
                self.log(
                    Level::Crit,
                    format!("running stop_failure command: {}", command.join(" ")),
                );
                self.actions.push_back(Action::RunStopFailureCommand {
                    call,
                    command,
                    group: key,
                    timeout: self.s.timeouts.stop,
                });
                let run = self.rsc.running.as_mut().expect("running");
                run.phase = Phase::StopFailureCommand;
                run.call = Some(call);
            }
        }
    }

    /// Keep the group: it is still running here, so the peer must not be
    /// told it was released. The job stops where it is.
    fn hold_failed_group(&mut self, job: u64, g: usize) {
        let key = self.s.groups[g].key.clone();
        self.rsc.groups[g] = GroupState::StopFailed;
        let bit = if self.group_is_local(g) {
            LOCAL
        } else {
            FOREIGN
        };
        self.rsc.i_hold |= bit;
        self.log(
            Level::Crit,
            format!(
                "Holding resource group {key}: it could not be stopped. Fix it by hand, then stop heartbeatd again (heartbeatd -k) to retry."
            ),
        );
        if let Some(j) = self.job_mut(job) {
            j.aborted = true;
            j.ops.clear();
        }
        self.rsc.running = None;
        // The aborted job no longer counts as running.
        self.rsc
            .jobs
            .retain(|j| !(j.id == job && j.kind != JobKind::GiveupAll));
        if let Some(j) = self.job_mut(job) {
            j.started = false;
        }
        self.pump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_is_judged_like_resourcemanager() {
        for (out, yes) in [
            ("running", true),
            ("INFO:  Running OK", true),
            ("OK", true),
            ("ok", false),
            ("stopped", false),
            ("not running", false),
            ("Not running", false),
            ("NOT  Running at all", false),
            ("ldirectord is not running for x", false),
            ("INFO:  Resource is stopped", false),
            ("", false),
            ("RUNNING", false),
        ] {
            assert_eq!(status_says_running(out), yes, "{out:?}");
        }
    }

    #[test]
    fn hold_bits_and_partial_updates() {
        assert_eq!(upd(true, ALL, LOCAL), LOCAL);
        assert_eq!(upd(false, LOCAL, FOREIGN), ALL);
        assert_eq!(upd(false, ALL, 0), 0);
        for h in [Hold::None, Hold::Local, Hold::Foreign, Hold::All] {
            assert_eq!(Hold::from_bits(h.bits()), h);
            assert_eq!(Hold::parse(h.word()), Some(h));
        }
    }
}
