//! Membership and the reliable-broadcast protocol: status messages and
//! liveness, per-sender sequence and generation tracking, duplicate and
//! replay suppression, retransmission requests and replies, acks, the
//! `reqnodes`/`repnodes` exchange and "communication is up".
//!
//! Semantics follow heartbeat 3.0.6's `process_clustermsg`,
//! `should_drop_message`, `HBDoMsg_T_STATUS`, `check_for_timeouts` and
//! `check_comm_isup`, with exact deadlines instead of a 250 ms poll.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{Level, Node, Settings};
use crate::wire::{f, Message};

/// Highest number of missing sequence numbers remembered per sender.
const MAX_MISSING: usize = 50;
/// A gap larger than this resets sequence tracking (half the history).
const FLOWCONTROL_LIMIT: u64 = 250;
/// Acks are sent for one message in ten.
const ACK_DIV: u64 = 10;
/// At most this many messages are retransmitted per request.
const MAX_REXMIT_BATCH: u64 = 50;
/// reqnodes is repeated this often until repnodes arrives.
const REQNODES_RETRY: Duration = Duration::from_secs(1);

/// The capability field heartbeatd adds to its status messages, so that two
/// heartbeatd nodes can heal a split brain without restarting (3.0.6 ignores
/// unknown fields).
pub(super) const F_HBRS: &str = "hbrs";

#[derive(Debug)]
pub(super) struct Membership {
    pub(super) peers: Vec<Peer>,
    pub(super) me: usize,
    /// COMM_LINKSUP: every node heard from or declared dead.
    pub(super) links_up: bool,
    /// comm_now_up() has run: our status is active and the resource
    /// message handlers are in place.
    pub(super) comm_up: bool,
    got_repnodes: bool,
    reqnodes_retry: Option<(Duration, usize)>,
    pub(super) flow_control: bool,
    next_status: Duration,
    unknown_node_logged: BTreeMap<String, Duration>,
}

#[derive(Debug)]
pub(super) struct Peer {
    pub(super) name: String,
    pub(super) uuid: Option<[u8; 16]>,
    pub(super) status: String,
    /// The peer's advertised deadtime (`dt`).
    dead_after: Duration,
    /// When we last had a status from it (3.0.6's local_lastupdate); the
    /// liveness deadline counts from here.
    last_heard: Duration,
    /// False right after a restart was detected, until its first status:
    /// no "late heartbeat" judgement across a restart.
    last_heard_valid: bool,
    rmt_lastupdate: u64,
    status_seqno: u64,
    pub(super) anypacketsyet: bool,
    pub(super) has_resources: bool,
    /// The peer is a heartbeatd (its status carries `hbrs`).
    pub(super) hbrs: bool,
    links: Vec<Link>,
    track: Track,
}

#[derive(Debug, Clone)]
struct Link {
    up: bool,
    last: Option<Duration>,
}

#[derive(Debug, Default)]
struct Track {
    generation: u64,
    last_seq: Option<u64>,
    /// Missing sequence numbers → when to (re)request them.
    missing: BTreeMap<u64, Duration>,
    first_missing: u64,
    ack_trigger: u64,
    ackseq: u64,
}

impl Track {
    fn reset(&mut self) {
        self.missing.clear();
        self.first_missing = 0;
        self.last_seq = None;
        self.ackseq = 0;
    }
}

/// A node as `cl_status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeView {
    pub name: String,
    pub status: String,
    #[serde(rename = "type")]
    pub node_type: &'static str,
    pub links: Vec<LinkView>,
    /// Milliseconds since we last heard from it (None: never).
    pub last_heard_ms: Option<u64>,
    pub deadtime_ms: u64,
    pub generation: u64,
    pub heartbeatd: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkView {
    pub name: String,
    pub status: &'static str,
}

/// What to do with an incoming message (3.0.6's KEEPIT/DROPIT/DUPLICATE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Keep,
    Drop,
    Duplicate,
}

impl Membership {
    pub(super) fn new(s: &Settings) -> Membership {
        let me = s
            .nodes
            .iter()
            .position(|n| *n == s.me)
            .expect("the local node is one of the cluster nodes");
        let peers = s
            .nodes
            .iter()
            .map(|n| Peer {
                name: n.clone(),
                uuid: (*n == s.me).then_some(s.uuid),
                status: "init".to_owned(),
                dead_after: s.deadtime,
                last_heard: Duration::ZERO,
                last_heard_valid: true,
                rmt_lastupdate: 0,
                status_seqno: 0,
                anypacketsyet: false,
                has_resources: false,
                hbrs: *n == s.me,
                links: vec![
                    Link {
                        up: false,
                        last: None
                    };
                    s.links.len()
                ],
                track: Track::default(),
            })
            .collect();
        Membership {
            peers,
            me,
            links_up: false,
            comm_up: false,
            got_repnodes: false,
            reqnodes_retry: None,
            flow_control: true,
            next_status: Duration::ZERO,
            unknown_node_logged: BTreeMap::new(),
        }
    }

    pub(super) fn index(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.peers.iter().position(|p| p.name == lower)
    }

    pub(super) fn uuid_of(&self, name: &str) -> Option<[u8; 16]> {
        self.index(name).and_then(|i| self.peers[i].uuid)
    }

    pub(super) fn local_status<'a>(&'a self, _s: &Settings) -> &'a str {
        &self.peers[self.me].status
    }

    /// The deadtime in force for `p` (initdead until communication is up).
    fn dead_ticks(&self, s: &Settings, p: &Peer) -> Duration {
        if self.links_up {
            p.dead_after
        } else {
            s.initdead
        }
    }

    pub(super) fn next_deadline(&self, s: &Settings) -> Option<Duration> {
        let mut next = vec![self.next_status];
        let tick = Duration::from_millis(1);
        for (i, p) in self.peers.iter().enumerate() {
            let dt = self.dead_ticks(s, p);
            if p.status != "dead" {
                next.push(p.last_heard + dt + tick);
            }
            if i != self.me {
                for l in &p.links {
                    if let (true, Some(last)) = (l.up, l.last) {
                        next.push(last + dt + tick);
                    }
                }
            }
            next.extend(p.track.missing.values().copied());
        }
        if let Some((t, _)) = self.reqnodes_retry {
            next.push(t);
        }
        next.into_iter().min()
    }

    pub(super) fn views(&self, s: &Settings, now: Duration) -> Vec<NodeView> {
        self.peers
            .iter()
            .map(|p| NodeView {
                name: p.name.clone(),
                status: p.status.clone(),
                node_type: "normal",
                links: p
                    .links
                    .iter()
                    .zip(&s.links)
                    .map(|(l, name)| LinkView {
                        name: name.clone(),
                        status: if l.up { "up" } else { "dead" },
                    })
                    .collect(),
                last_heard_ms: p
                    .anypacketsyet
                    .then(|| now.saturating_sub(p.last_heard).as_millis() as u64),
                deadtime_ms: p.dead_after.as_millis() as u64,
                generation: p.track.generation,
                heartbeatd: p.hbrs,
            })
            .collect()
    }
}

fn hex(v: &str) -> Option<u64> {
    u64::from_str_radix(v, 16).ok()
}

impl Node {
    pub(super) fn mem_start(&mut self) {
        let now = self.now.mono;
        for p in &mut self.mem.peers {
            p.last_heard = now;
            p.track.ack_trigger = self.rng.range(0, ACK_DIV - 1);
        }
        let me = self.mem.me;
        self.mem.peers[me].status = "init".to_owned();
        self.send_local_status();
        self.set_local_status("up");
        self.mem.next_status = now + self.s.keepalive;
    }

    pub(super) fn mem_tick(&mut self) {
        let now = self.now.mono;
        if now >= self.mem.next_status {
            self.send_local_status();
            self.mem.next_status += self.s.keepalive;
            if self.mem.next_status <= now {
                // We were stalled for more than a keepalive: do not burst.
                self.mem.next_status = now + self.s.keepalive;
            }
        }
        self.check_for_timeouts();
        self.send_due_rexmit_requests();
        if let Some((t, start)) = self.mem.reqnodes_retry {
            if now >= t {
                self.mem.reqnodes_retry = None;
                self.send_reqnodes(start);
            }
        }
    }

    pub(super) fn send_local_status(&mut self) {
        let me = self.mem.me;
        let mut m = Message::new("status");
        m.add(f::STATUS, &self.mem.peers[me].status.clone())
            .add(f::DEADTIME, &format!("{:x}", self.s.deadtime.as_millis()));
        if self.mem.flow_control {
            m.add(f::PROTOCOL, "1");
        }
        m.add(F_HBRS, "1");
        self.send(m);
    }

    pub(super) fn set_local_status(&mut self, status: &str) {
        let me = self.mem.me;
        if self.mem.peers[me].status != status {
            self.mem.peers[me].status = status.to_owned();
            self.send_local_status();
            self.log(Level::Info, format!("Local status now set to: '{status}'"));
        }
    }

    /// Handles one message: from a medium (`link`), or our own (`None`).
    pub(super) fn receive(&mut self, msg: Message, link: Option<usize>) {
        let (Some(t), Some(from), Some(ts)) = (
            msg.msg_type().map(str::to_owned),
            msg.get(f::SRC).map(str::to_owned),
            msg.get(f::TIME),
        ) else {
            self.log(
                Level::Err,
                "process_clustermsg: missing from/ts/type".to_owned(),
            );
            return;
        };
        let seq = match msg.get(f::SEQ) {
            Some(s) => match hex(s) {
                Some(v) => v,
                None => {
                    self.log(
                        Level::Err,
                        format!("process_clustermsg: from {from}: has bad cseq"),
                    );
                    return;
                }
            },
            None if t.starts_with("NS_") => 0,
            None => {
                self.log(
                    Level::Err,
                    format!("process_clustermsg: from {from}: missing seqno"),
                );
                return;
            }
        };
        let Some(msgtime) = hex(ts).filter(|v| *v != 0) else {
            return;
        };
        let Some(idx) = self.mem.index(&from) else {
            self.unknown_node(&from);
            return;
        };
        if let Some(u) = msg.get_bytes(f::SRCUUID) {
            if let Ok(u) = <[u8; 16]>::try_from(u) {
                self.mem.peers[idx].uuid = Some(u);
            }
        }
        self.mem.peers[idx].anypacketsyet = true;
        let verdict = self.should_drop(idx, &msg, &t, seq);
        if verdict != Verdict::Drop {
            if let Some(l) = link {
                self.link_heard(idx, l);
            }
        }
        if verdict != Verdict::Keep {
            return;
        }
        self.dispatch(&t, idx, msgtime, seq, &msg);
        if !self.mem.links_up {
            self.check_comm_isup();
        }
    }

    fn unknown_node(&mut self, from: &str) {
        // Rate-limited: one line per node per minute.
        let now = self.now.mono;
        let due = self
            .mem
            .unknown_node_logged
            .get(from)
            .is_none_or(|t| now >= *t + Duration::from_secs(60));
        if due {
            self.mem.unknown_node_logged.insert(from.to_owned(), now);
            self.log(
                Level::Err,
                format!("process_status_message: bad node [{from}] in message"),
            );
        }
    }

    fn link_heard(&mut self, idx: usize, l: usize) {
        let now = self.now.mono;
        let Some(link) = self.mem.peers[idx].links.get_mut(l) else {
            return;
        };
        link.last = Some(now);
        if !link.up {
            link.up = true;
            let text = format!("Link {}:{} up.", self.mem.peers[idx].name, self.s.links[l]);
            self.log(Level::Info, text);
        }
    }

    fn dispatch(&mut self, t: &str, idx: usize, msgtime: u64, seq: u64, msg: &Message) {
        match t {
            "status" | "NS_st" => self.on_status(idx, msgtime, seq, msg),
            "NS_rexmit" => {
                if idx != self.mem.me {
                    self.on_rexmit_request(idx, msg);
                }
            }
            "NS_ackmsg" => self.on_ack(idx, msg),
            "reqnodes" => self.on_reqnodes(idx),
            "repnodes" => self.on_repnodes(idx, msg),
            "shutdone" => self.on_shutdone(idx, msg),
            "addnode" | "delnode" | "setweight" | "setsite" => {
                let text = format!(
                    "ignoring {t} from {}: heartbeatd uses the node list of ha.cf",
                    self.mem.peers[idx].name
                );
                self.log(Level::Warn, text);
            }
            _ => {
                if self.mem.comm_up {
                    self.rsc_message(t, idx, msg);
                }
            }
        }
    }

    /// 3.0.6's should_drop_message: sequence, generation, destination.
    fn should_drop(&mut self, idx: usize, msg: &Message, t: &str, seq: u64) -> Verdict {
        let me = self.mem.me;
        let dest = msg.get(f::DEST);
        let to_us_by_name = dest.is_none_or(|d| d.eq_ignore_ascii_case(&self.s.me));
        if t.starts_with("NS_") {
            if t == "NS_nak_rexmit" {
                let Some(nseq) = msg.get("firstseq").and_then(hex).filter(|v| *v > 0) else {
                    self.log(
                        Level::Err,
                        "should_drop_message: bad nak seq number".to_owned(),
                    );
                    return Verdict::Drop;
                };
                if to_us_by_name {
                    let text = format!(
                        "Irretrievably lost packet: node {} seq {nseq}",
                        self.mem.peers[idx].name
                    );
                    self.log(Level::Err, text);
                }
                self.is_lost_packet(idx, nseq);
                return Verdict::Drop;
            }
            return if to_us_by_name {
                Verdict::Keep
            } else {
                Verdict::Drop
            };
        }
        if seq == 0 {
            self.log(
                Level::Err,
                "should_drop_message: bad sequence number".to_owned(),
            );
            return Verdict::Drop;
        }
        let gen = match msg.get(f::GEN) {
            None => 0,
            Some(g) => match hex(g) {
                Some(v) => v,
                None => {
                    self.log(
                        Level::Err,
                        "should_drop_message: bad generation number".to_owned(),
                    );
                    return Verdict::Drop;
                }
            },
        };
        let to_us = match msg.get_bytes(f::DESTUUID) {
            Some(u) if u.len() == 16 => u == self.s.uuid,
            _ => to_us_by_name,
        };
        let keep = if to_us { Verdict::Keep } else { Verdict::Drop };
        let is_status = t == "status";
        let mut restart = false;
        let mut healed = false;
        let cur_gen = self.mem.peers[idx].track.generation;
        if gen < cur_gen {
            let text = format!(
                "should_drop_message: attempted replay attack [{}]? [gen = {gen}, curgen = {cur_gen}]",
                self.mem.peers[idx].name
            );
            self.log(Level::Err, text);
            return Verdict::Drop;
        } else if is_status {
            if gen == cur_gen && gen > 0 {
                if self.mem.peers[idx].status == "dead" && idx != me {
                    if seq <= self.mem.peers[idx].status_seqno {
                        return Verdict::Drop;
                    }
                    healed = true;
                    self.partition_healed(idx, msg.get(F_HBRS).is_some());
                }
            } else if gen > cur_gen {
                restart = true;
                let p = &mut self.mem.peers[idx];
                p.track.reset();
                p.rmt_lastupdate = 0;
                p.last_heard_valid = false;
                p.status_seqno = 0;
                p.has_resources = true;
                if cur_gen > 0 {
                    let text = format!("Heartbeat restart on node {}", p.name);
                    self.log(Level::Info, text);
                }
                self.rsc_peer_restarted();
            }
            self.mem.peers[idx].track.generation = gen;
        }
        let last = self.mem.peers[idx].track.last_seq;
        match last {
            None => {
                self.mem.peers[idx].track.last_seq = Some(seq);
                self.send_ack_if_needed(idx, seq);
                return keep;
            }
            Some(l) if seq == l + 1 => {
                self.mem.peers[idx].track.last_seq = Some(seq);
                self.send_ack_if_needed(idx, seq);
                return keep;
            }
            Some(l) if seq == l => return Verdict::Duplicate,
            Some(l) if seq > l => {
                let nlost = seq - (l + 1);
                let text = format!(
                    "{nlost} lost packet(s) for [{}] [{l}:{seq}]",
                    self.mem.peers[idx].name
                );
                self.log(Level::Warn, text);
                if nlost > FLOWCONTROL_LIMIT {
                    self.mem.peers[idx].track.reset();
                    self.mem.peers[idx].track.last_seq = Some(seq);
                    self.log(Level::Err, "lost a lot of packets!".to_owned());
                    return keep;
                }
                self.record_missing(idx, l + 1, seq - 1);
                self.mem.peers[idx].track.last_seq = Some(seq);
                return keep;
            }
            Some(_) => {}
        }
        // Older than the last one: a missing one filled?
        if self.is_lost_packet(idx, seq) {
            return keep;
        }
        if healed || restart {
            self.send_ack_if_needed(idx, seq);
            let p = &mut self.mem.peers[idx];
            p.rmt_lastupdate = msg.get(f::TIME).and_then(hex).unwrap_or(0);
            p.track.reset();
            p.track.last_seq = Some(seq);
            return keep;
        }
        Verdict::Drop
    }

    /// Records `lo..=hi` as missing from `idx` and schedules the requests.
    fn record_missing(&mut self, idx: usize, lo: u64, hi: u64) {
        let max = self.s.max_rexmit_delay.as_millis() as u64;
        for k in lo..=hi {
            let delay = Duration::from_millis(self.rng.range(50.min(max), max));
            let t = self.now.mono + delay;
            let track = &mut self.mem.peers[idx].track;
            if track.missing.len() >= MAX_MISSING {
                // Forget the oldest missing one.
                track.missing.pop_first();
            }
            track.missing.insert(k, t);
        }
        let track = &mut self.mem.peers[idx].track;
        if track.first_missing == 0 || track.first_missing > lo {
            track.first_missing = lo;
        }
    }

    /// If `seq` was missing from `idx`, forget it (it arrived) and return true.
    fn is_lost_packet(&mut self, idx: usize, seq: u64) -> bool {
        let track = &mut self.mem.peers[idx].track;
        if track.missing.remove(&seq).is_none() {
            return false;
        }
        let was_first = seq == track.first_missing;
        track.first_missing = track.missing.keys().next().copied().unwrap_or(0);
        if track.missing.is_empty() {
            let text = format!("No pkts missing from {}!", self.mem.peers[idx].name);
            self.log(Level::Info, text);
        }
        if was_first && self.mem.flow_control {
            // Ack what is now contiguous, on this node's trigger.
            let track = &self.mem.peers[idx].track;
            let upto = if track.first_missing == 0 {
                track.last_seq.unwrap_or(0)
            } else {
                track.first_missing - 1
            };
            let trigger = track.ack_trigger;
            let x = upto % ACK_DIV;
            let ack = if x >= trigger {
                Some(upto / ACK_DIV * ACK_DIV + trigger)
            } else {
                (upto / ACK_DIV)
                    .checked_sub(1)
                    .map(|q| q * ACK_DIV + trigger)
            };
            if let Some(ack) = ack.filter(|a| *a >= seq) {
                self.send_ack_if_needed(idx, ack);
            }
        }
        true
    }

    fn send_ack_if_needed(&mut self, idx: usize, seq: u64) {
        if !self.mem.flow_control {
            return;
        }
        let track = &self.mem.peers[idx].track;
        if (track.first_missing != 0 && seq > track.first_missing)
            || seq % ACK_DIV != track.ack_trigger
        {
            return;
        }
        let mut m = Message::new("NS_ackmsg");
        m.add(f::DEST, &self.mem.peers[idx].name.clone())
            .add("ackseq", &format!("{seq:x}"));
        self.send(m);
    }

    fn on_ack(&mut self, idx: usize, msg: &Message) {
        if !msg
            .get(f::DEST)
            .is_some_and(|d| d.eq_ignore_ascii_case(&self.s.me))
        {
            return;
        }
        if let Some(a) = msg.get("ackseq").and_then(hex) {
            let t = &mut self.mem.peers[idx].track;
            if a > t.ackseq && a < self.next_seq {
                t.ackseq = a;
            }
        }
    }

    fn send_due_rexmit_requests(&mut self) {
        let now = self.now.mono;
        let again = self.s.max_rexmit_delay;
        for idx in 0..self.mem.peers.len() {
            let due: Vec<u64> = self.mem.peers[idx]
                .track
                .missing
                .iter()
                .filter(|(_, t)| **t <= now)
                .map(|(s, _)| *s)
                .collect();
            if due.is_empty() {
                continue;
            }
            let alive = matches!(self.mem.peers[idx].status.as_str(), "up" | "active");
            for s in due {
                self.mem.peers[idx].track.missing.insert(s, now + again);
                if !alive {
                    continue;
                }
                let mut m = Message::new("NS_rexmit");
                // firstseq/lastseq are decimal on the wire (3.0.6 quirk).
                m.add(f::DEST, &self.mem.peers[idx].name.clone())
                    .add("firstseq", &s.to_string())
                    .add("lastseq", &s.to_string());
                self.send(m);
            }
        }
    }

    fn on_rexmit_request(&mut self, idx: usize, msg: &Message) {
        let (Some(first), Some(last)) = (msg.get_dec("firstseq"), msg.get_dec("lastseq")) else {
            self.log(
                Level::Err,
                "rexmit request without firstseq/lastseq".to_owned(),
            );
            return;
        };
        if first == 0 || last < first {
            return;
        }
        let requester = self.mem.peers[idx].name.clone();
        let now = self.now.mono;
        let min_gap = self
            .s
            .max_rexmit_delay
            .saturating_sub(Duration::from_millis(10));
        for seq in first..=last.min(first + MAX_REXMIT_BATCH - 1) {
            if seq >= self.next_seq {
                break;
            }
            match self.history.get_mut(&seq) {
                Some(sent) => {
                    if now.saturating_sub(sent.last_sent) >= min_gap {
                        sent.last_sent = now;
                        let m = sent.msg.clone();
                        self.actions.push_back(super::Action::Send(m));
                    }
                }
                None => {
                    let mut m = Message::new("NS_nak_rexmit");
                    m.add("firstseq", &format!("{seq:x}"))
                        .add(f::DEST, &requester)
                        .add("info", "not in history");
                    self.send(m);
                }
            }
        }
    }

    fn on_status(&mut self, idx: usize, msgtime: u64, seq: u64, msg: &Message) {
        let me = self.mem.me;
        let Some(status) = msg.get(f::STATUS).map(str::to_owned) else {
            self.log(
                Level::Err,
                "HBDoMsg_T_STATUS: status update without st field".to_owned(),
            );
            return;
        };
        let now = self.now.mono;
        {
            // 3.0.6 drops a status only if both its time and its sequence
            // number are older; a retransmitted status from the same second
            // would then move the node's status backwards. Sequence numbers
            // are enough (they restart with a new generation, which resets
            // status_seqno).
            let p = &self.mem.peers[idx];
            if seq < p.status_seqno {
                return;
            }
        }
        if idx != me && self.mem.flow_control && msg.get(f::PROTOCOL).is_none() {
            self.log(
                Level::Info,
                "flow control disabled due to different version heartbeat".to_owned(),
            );
            self.mem.flow_control = false;
        }
        self.mem.peers[idx].hbrs = idx == me || msg.get(F_HBRS).is_some();
        if self.mem.peers[idx].last_heard_valid {
            let interval = now.saturating_sub(self.mem.peers[idx].last_heard);
            let name = self.mem.peers[idx].name.clone();
            let ms = interval.as_millis();
            if interval > self.s.deadtime {
                self.log(
                    Level::Crit,
                    format!("Late heartbeat: Node {name}: interval {ms} ms (> deadtime)"),
                );
                if idx != me && self.mem.peers[idx].status != "dead" {
                    self.mark_node_dead(idx);
                }
            } else if interval > self.s.warntime {
                self.log(
                    Level::Warn,
                    format!("Late heartbeat: Node {name}: interval {ms} ms"),
                );
            }
        }
        if !self.mem.peers[idx].status.eq_ignore_ascii_case(&status) && idx != me {
            let name = self.mem.peers[idx].name.clone();
            self.log(
                Level::Info,
                format!("Status update for node {name}: status {status}"),
            );
            self.mem.peers[idx].status = status;
        }
        let p = &mut self.mem.peers[idx];
        if let Some(dt) = msg.get(f::DEADTIME).and_then(hex) {
            p.dead_after = Duration::from_millis(dt);
        }
        p.rmt_lastupdate = msgtime;
        p.last_heard = now;
        p.last_heard_valid = true;
        p.status_seqno = seq;
    }

    fn check_for_timeouts(&mut self) {
        let now = self.now.mono;
        for idx in 0..self.mem.peers.len() {
            let p = &self.mem.peers[idx];
            let dt = self.mem.dead_ticks(&self.s, p);
            if p.status != "dead" && now > p.last_heard + dt {
                self.mark_node_dead(idx);
            }
        }
        for idx in 0..self.mem.peers.len() {
            if idx == self.mem.me {
                continue;
            }
            let dt = self.mem.dead_ticks(&self.s, &self.mem.peers[idx]);
            for l in 0..self.mem.peers[idx].links.len() {
                let link = &mut self.mem.peers[idx].links[l];
                if let (true, Some(last)) = (link.up, link.last) {
                    if now > last + dt {
                        link.up = false;
                        let text = format!(
                            "Link {}:{} dead.",
                            self.mem.peers[idx].name, self.s.links[l]
                        );
                        self.log(Level::Info, text);
                    }
                }
            }
        }
    }

    pub(super) fn mark_node_dead(&mut self, idx: usize) {
        let name = self.mem.peers[idx].name.clone();
        self.log(Level::Warn, format!("node {name}: is dead"));
        if idx == self.mem.me {
            // 3.0.6 restarts itself here; our own status is delivered
            // locally on every send, so this only means the loop stalled.
            self.log(
                Level::Err,
                "No local heartbeat: this node's main loop stalled for longer than deadtime."
                    .to_owned(),
            );
            self.mem.peers[idx].last_heard = self.now.mono;
            return;
        }
        self.mem.peers[idx].status = "dead".to_owned();
        self.rsc_recover_dead_resources(idx);
        let p = &mut self.mem.peers[idx];
        p.rmt_lastupdate = 0;
        p.anypacketsyet = false;
        p.track.reset();
    }

    fn check_comm_isup(&mut self) {
        if self.mem.links_up {
            return;
        }
        let heard = self
            .mem
            .peers
            .iter()
            .filter(|p| p.anypacketsyet || p.status == "dead")
            .count();
        if heard >= self.mem.peers.len() {
            self.mem.links_up = true;
            if self.mem.flow_control {
                self.send_reqnodes(0);
            } else {
                self.comm_now_up();
            }
        }
    }

    fn send_reqnodes(&mut self, start: usize) {
        if self.mem.got_repnodes {
            return;
        }
        let me = self.mem.me;
        let start = if start >= self.mem.peers.len() {
            0
        } else {
            start
        };
        let dest =
            (start..self.mem.peers.len()).find(|i| *i != me && self.mem.peers[*i].status != "dead");
        let Some(i) = dest else {
            self.mem.got_repnodes = true;
            self.comm_now_up();
            return;
        };
        let mut m = Message::new("reqnodes");
        m.add(f::DEST, &self.mem.peers[i].name.clone());
        self.send(m);
        self.mem.reqnodes_retry = Some((self.now.mono + REQNODES_RETRY, i));
    }

    fn on_reqnodes(&mut self, idx: usize) {
        if idx == self.mem.me {
            self.log(
                Level::Err,
                "HBDoMsg_T_REQNODES: get reqnodes msg from myself!".to_owned(),
            );
            return;
        }
        let nodelist: String = self.s.nodes.iter().map(|n| format!("{n} ")).collect();
        // 3.0.6 puts dest first in repnodes.
        let mut m = Message::default();
        m.add(f::DEST, &self.mem.peers[idx].name.clone())
            .add(f::TYPE, "repnodes")
            .add("nodelist", &nodelist)
            .add("delnodelist", " ");
        self.send(m);
    }

    fn on_repnodes(&mut self, idx: usize, msg: &Message) {
        if idx == self.mem.me {
            return;
        }
        if let Some(list) = msg.get("nodelist") {
            let theirs: Vec<&str> = list.split_whitespace().collect();
            let ours: Vec<&str> = self.s.nodes.iter().map(String::as_str).collect();
            let mut a = theirs.clone();
            let mut b = ours.clone();
            a.sort_unstable();
            b.sort_unstable();
            if a != b {
                let text = format!(
                    "node {} has nodes [{}], ha.cf here has [{}]; heartbeatd keeps its configured nodes",
                    self.mem.peers[idx].name,
                    theirs.join(" "),
                    ours.join(" ")
                );
                self.log(Level::Warn, text);
            }
        }
        self.mem.got_repnodes = true;
        self.mem.reqnodes_retry = None;
        self.comm_now_up();
    }

    fn comm_now_up(&mut self) {
        if self.mem.comm_up {
            return;
        }
        self.mem.comm_up = true;
        self.log(
            Level::Info,
            "Comm_now_up(): updating status to active".to_owned(),
        );
        self.set_local_status("active");
        self.rsc_comm_up();
    }

    fn on_shutdone(&mut self, idx: usize, msg: &Message) {
        if self.mem.links_up {
            self.rsc_message("shutdone", idx, msg);
        }
        if idx == self.mem.me {
            // Keep answering retransmission requests for a moment, then go.
            self.exit_at = Some(self.now.mono + Duration::from_secs(1));
        } else {
            self.rsc_shutdown_notice(idx);
        }
    }
}
