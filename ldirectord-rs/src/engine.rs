//! The daemon's brain, without IO: when each check is due, what a check
//! result does to the state of its real servers (soft failures, resets),
//! which virtual services need their IPVS entries recomputed, the monitor
//! file lines, the e-mail alerts (with `emailalertfreq` repeats) and the
//! `fallbackcommand` runs. Time is passed in (`now`), never read.
//!
//! Scheduling: every check runs once per `checkinterval`, measured from the
//! start of its previous run; a check still running when it is due again
//! (a timeout longer than the interval) starts as soon as it ends. The first
//! round starts at once, spread evenly over the first second. Checks are
//! independent: the event loop runs them all concurrently, so a slow or
//! black-holed server delays nobody.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hanet::ipvs::{Entry, Table};

use crate::config::{alert_status, Config};
use crate::lvs::{self, Change, Mode};
use crate::plan::{Kind, Plan};
use crate::proto::Outcome;

/// State of one (virtual, real) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberState {
    pub up: bool,
    /// the Perl daemon's `failcount`: failures since the last success
    pub failcount: u32,
}

/// What to run for a check this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// the check's own kind
    Normal,
    /// combined check: the connect step
    Connect,
    /// combined check: the negotiate step
    Negotiate,
}

#[derive(Debug, Clone, Copy)]
struct CheckState {
    next: Option<Instant>,
    running: bool,
    /// combined: successful connects since the last negotiate
    connects: u32,
}

/// The daemon's state (`ld_main`'s DAEMON_STATUS) for alert filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Starting,
    Running,
    Stopping,
    Reloading,
}

impl Status {
    fn bit(self) -> u8 {
        match self {
            Status::Starting => alert_status::STARTING,
            Status::Running => alert_status::RUNNING,
            Status::Stopping => alert_status::STOPPING,
            Status::Reloading => alert_status::RELOADING,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Stopping => "stopping",
            Status::Reloading => "reloading",
        }
    }
}

/// An e-mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub smtp: Option<String>,
    pub from: Option<String>,
}

/// Side effects for the IO layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// a log line
    Log(String),
    /// a monitor file line (the IO layer adds `[time] [pid] `)
    Monitor { path: PathBuf, line: String },
    /// a shell command line to run (`fallbackcommand`)
    Command(String),
    /// an e-mail alert
    Mail(Mail),
}

#[derive(Debug, Clone)]
struct AlertRecord {
    v: usize,
    rserver: String,
    /// seconds since the epoch of the last alert
    at: u64,
}

/// The engine of one configuration.
pub struct Engine {
    pub cfg: Arc<Config>,
    pub plan: Plan,
    pub members: Vec<MemberState>,
    checks: Vec<CheckState>,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    dirty: Vec<bool>,
    fb_cmd: Vec<Option<bool>>,
    alerts: HashMap<String, AlertRecord>,
    pub status: Status,
    pub hostname: String,
    out: Vec<Output>,
}

impl Engine {
    /// A new engine; real servers already in `table` with a weight above 0
    /// start up, the others down. Every check is due at `now`.
    pub fn new(cfg: Arc<Config>, table: &Table, now: Instant, hostname: &str) -> Engine {
        let plan = Plan::new(&cfg);
        let mut members = vec![
            MemberState {
                up: false,
                failcount: 0
            };
            plan.members.len()
        ];
        for (vi, v) in cfg.virtuals.iter().enumerate() {
            let up = lvs::initial_up(v, table.get(&lvs::service_key(v)));
            for (&mi, u) in plan.by_virtual[vi].iter().zip(up) {
                // the Perl daemon forces absent reals down at start, which
                // counts one failure
                members[mi] = MemberState {
                    up: u,
                    failcount: if u { 0 } else { 1 },
                };
            }
        }
        let mut checks = Vec::with_capacity(plan.checks.len());
        let mut heap = BinaryHeap::with_capacity(plan.checks.len());
        // The first round is spread evenly over the first second (or the
        // shortest interval, if shorter), at the rate the checks will run
        // at anyway, instead of opening every connection at once.
        let n = plan.checks.len().max(1) as u32;
        let spread = plan
            .checks
            .iter()
            .map(|c| c.interval)
            .min()
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(1));
        for (ci, c) in plan.checks.iter().enumerate() {
            let next = match c.kind {
                Kind::Off => None,
                _ => Some(now + spread * ci as u32 / n),
            };
            if let Some(t) = next {
                heap.push(Reverse((t, ci)));
            }
            checks.push(CheckState {
                next,
                running: false,
                connects: u32::MAX,
            });
        }
        let nv = cfg.virtuals.len();
        Engine {
            cfg,
            plan,
            members,
            checks,
            heap,
            dirty: vec![false; nv],
            fb_cmd: vec![None; nv],
            alerts: HashMap::new(),
            status: Status::Starting,
            hostname: hostname.to_string(),
            out: Vec::new(),
        }
    }

    /// When the next check is due.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// The next check due at `now` (marked running), with what to run.
    pub fn pop_due(&mut self, now: Instant) -> Option<(usize, Run)> {
        while let Some(Reverse((t, ci))) = self.heap.peek().copied() {
            if t > now {
                return None;
            }
            self.heap.pop();
            let c = &mut self.checks[ci];
            if c.running || c.next != Some(t) {
                continue; // stale entry
            }
            c.running = true;
            c.next = None;
            let run = match self.plan.checks[ci].kind {
                Kind::Combined { n, .. } => {
                    if c.connects >= n {
                        Run::Negotiate
                    } else {
                        Run::Connect
                    }
                }
                _ => Run::Normal,
            };
            return Some((ci, run));
        }
        None
    }

    /// A check started at `started` ended at `now` with `outcome`.
    /// `forced` (maintenance) takes its reals down at once.
    pub fn finished(
        &mut self,
        ci: usize,
        run: Run,
        outcome: &Outcome,
        forced: bool,
        started: Instant,
        now: Instant,
    ) {
        let c = &mut self.checks[ci];
        c.running = false;
        match run {
            Run::Connect if outcome.up => c.connects = c.connects.saturating_add(1),
            Run::Connect => c.connects = u32::MAX,
            Run::Negotiate if outcome.up => c.connects = 0,
            _ => {}
        }
        let spec = &self.plan.checks[ci];
        let next = (started + spec.interval).max(now);
        c.next = Some(next);
        self.heap.push(Reverse((next, ci)));
        let log_monitor = !matches!(spec.kind, Kind::On);
        for k in 0..spec.members.len() {
            let mi = self.plan.checks[ci].members.get(k);
            self.member_result(mi, outcome, forced, log_monitor);
        }
    }

    fn member_result(&mut self, mi: usize, o: &Outcome, forced: bool, log_monitor: bool) {
        let m = self.plan.members[mi];
        let (vi, ri) = (m.v as usize, m.r as usize);
        let v = &self.cfg.virtuals[vi];
        let r = &v.reals[ri];
        let st = &mut self.members[mi];
        if o.up {
            if st.failcount > 0 {
                self.out.push(Output::Log(format!(
                    "Resetting soft failure count: {} ({})",
                    r.id(),
                    v.id()
                )));
            }
            st.failcount = 0;
            if !st.up {
                st.up = true;
                self.dirty[vi] = true;
            }
        } else if forced {
            st.failcount = st.failcount.saturating_add(1);
            if st.up {
                st.up = false;
                self.dirty[vi] = true;
            }
        } else if st.up {
            st.failcount += 1;
            if st.failcount < v.failurecount {
                self.out.push(Output::Log(format!(
                    "Soft failure real server: {} ({}) failure {}/{}",
                    r.id(),
                    v.id(),
                    st.failcount,
                    v.failurecount
                )));
            } else {
                st.up = false;
                self.dirty[vi] = true;
            }
        }
        if log_monitor {
            if let Some(p) = &v.monitorfile {
                self.out.push(Output::Monitor {
                    path: p.clone(),
                    line: format!(
                        "{} [{}] {}",
                        crate::plan::monitor_id(v, r),
                        if o.up { "up" } else { "down" },
                        crate::proto::escape_log(if o.msg.is_empty() { "-" } else { &o.msg })
                    ),
                });
            }
        }
    }

    /// Virtual services whose reals changed state since the last call.
    pub fn take_dirty(&mut self) -> Vec<usize> {
        let mut v = Vec::new();
        for (i, d) in self.dirty.iter_mut().enumerate() {
            if *d {
                v.push(i);
                *d = false;
            }
        }
        v
    }

    /// The up/down state of each real of virtual `vi`.
    pub fn up_vector(&self, vi: usize) -> Vec<bool> {
        self.plan.by_virtual[vi]
            .iter()
            .map(|&mi| self.members[mi].up)
            .collect()
    }

    /// The operations that bring virtual `vi` in `table` in line.
    pub fn changes(&self, vi: usize, table: &Table, mode: Mode) -> Vec<Change> {
        let v = &self.cfg.virtuals[vi];
        self.changes_for(vi, table.get(&lvs::service_key(v)), mode)
    }

    /// Same, given only the service's current entry (`None`: absent).
    pub fn changes_for(&self, vi: usize, current: Option<&Entry>, mode: Mode) -> Vec<Change> {
        let v = &self.cfg.virtuals[vi];
        lvs::plan_virtual(&self.cfg, v, &self.up_vector(vi), current, mode)
    }

    /// Records the log lines and alerts of applied changes of virtual `vi`,
    /// then runs `fallbackcommand` if the fallback state flipped.
    pub fn applied(&mut self, vi: usize, changes: &[Change], now_epoch: u64) {
        for c in changes {
            self.out.push(Output::Log(c.log.clone()));
            if let Some(a) = &c.alert {
                let at = if a.record { now_epoch } else { 0 };
                self.alert(vi, &a.subject, &a.rserver, at);
            }
        }
        self.fallback_command(vi);
    }

    fn fallback_command(&mut self, vi: usize) {
        let v = &self.cfg.virtuals[vi];
        let Some(cmd) = &v.fallbackcommand else {
            return;
        };
        let want_on = !self.up_vector(vi).iter().any(|u| *u);
        if self.fb_cmd[vi] == Some(want_on) {
            return;
        }
        self.fb_cmd[vi] = Some(want_on);
        self.out.push(Output::Command(format!(
            "{cmd} {} {} {}",
            if want_on { "start" } else { "stop" },
            v.name(),
            v.protocol.as_str()
        )));
    }

    /// `ld_emailalert_send`: record for repeats, filter, queue the mail.
    fn alert(&mut self, vi: usize, subject: &str, rserver: &str, at: u64) {
        let v = &self.cfg.virtuals[vi];
        let id = format!("{rserver} ({})", v.name());
        if at == 0 || v.emailalertfreq == 0 {
            self.alerts.remove(&id);
        } else {
            self.alerts.insert(
                id,
                AlertRecord {
                    v: vi,
                    rserver: rserver.to_string(),
                    at,
                },
            );
        }
        if v.emailalertstatus & self.status.bit() == 0 {
            return;
        }
        let Some(to) = v.emailalert.clone() else {
            return;
        };
        self.out.push(Output::Log(format!("emailalert: {subject}")));
        let subject = match &v.servicename {
            Some(s) if !s.is_empty() => format!("[{s}] {subject}"),
            _ => subject.to_string(),
        };
        let mut body = format!(
            "ldirectord host: {}\nLog-Message: {subject}\nDaemon-Status: {}\n",
            self.hostname,
            self.status.as_str()
        );
        let mut extra = String::new();
        if let Some(s) = v.servicename.as_deref().filter(|s| !s.is_empty()) {
            extra.push_str(&format!("Service name: {s}\n"));
        }
        if let Some(c) = v.comment.as_deref().filter(|s| !s.is_empty()) {
            extra.push_str(&format!("Comment: {c}\n"));
        }
        if !extra.is_empty() {
            body.push_str(&format!("\n{extra}\n"));
        }
        self.out.push(Output::Mail(Mail {
            to,
            subject,
            body,
            smtp: v.smtp.clone(),
            from: self.cfg.emailalertfrom.clone(),
        }));
    }

    /// `ld_emailalert_resend`: repeats "Inaccessible real server" alerts of
    /// reals still down, every `emailalertfreq` seconds.
    pub fn resend_alerts(&mut self, now_epoch: u64) {
        let due: Vec<(String, usize, String)> = self
            .alerts
            .iter()
            .filter(|(_, a)| {
                let freq = self.cfg.virtuals[a.v].emailalertfreq;
                now_epoch.saturating_sub(a.at) >= freq
            })
            .map(|(id, a)| (id.clone(), a.v, a.rserver.clone()))
            .collect();
        for (id, vi, rserver) in due {
            self.alert(
                vi,
                &format!("Inaccessible real server: {id}"),
                &rserver,
                now_epoch,
            );
        }
    }

    /// Side effects produced so far.
    pub fn drain(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// Number of checks (distinct) and of those currently running.
    pub fn check_count(&self) -> usize {
        self.checks.len()
    }

    /// The interval of check `ci`.
    pub fn interval(&self, ci: usize) -> Duration {
        self.plan.checks[ci].interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, tests::FakeResolver};
    use hanet::ipvs::Op;

    fn engine(text: &str, t0: Instant) -> Engine {
        let cfg = Arc::new(parse(text, "t.cf", &FakeResolver).unwrap());
        Engine::new(cfg, &Table::new(), t0, "director")
    }

    fn up() -> Outcome {
        Outcome::up("200 OK")
    }
    fn down() -> Outcome {
        Outcome::down("500 Can't connect to 10.0.0.2:80 (Connection refused)")
    }

    fn logs(e: &mut Engine) -> Vec<String> {
        e.drain()
            .into_iter()
            .filter_map(|o| match o {
                Output::Log(l) => Some(l),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_check_runs_once_per_interval_from_its_start() {
        let t0 = Instant::now();
        let mut e = engine(
            "checkinterval=2\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.3:80 gate\n",
            t0,
        );
        assert_eq!(e.next_wakeup(), Some(t0));
        let (a, _) = e.pop_due(t0).unwrap();
        assert_eq!(
            e.pop_due(t0),
            None,
            "the first round is spread over a second"
        );
        let half = t0 + Duration::from_millis(500);
        let (b, _) = e.pop_due(half).unwrap();
        assert_eq!(e.pop_due(half), None, "both running, nothing else due");
        assert_eq!(e.next_wakeup(), None);
        let t1 = t0 + Duration::from_millis(30);
        e.finished(a, Run::Normal, &up(), false, t0, t1);
        assert_eq!(e.next_wakeup(), Some(t0 + Duration::from_secs(2)));
        // a check that outlives its interval runs again right after it ends
        let t5 = t0 + Duration::from_secs(5);
        e.finished(b, Run::Normal, &down(), false, half, t5);
        assert_eq!(e.pop_due(t5), Some((a, Run::Normal)));
        assert_eq!(e.pop_due(t5), Some((b, Run::Normal)));
    }

    #[test]
    fn failurecount_soft_failures_and_reset() {
        let t = Instant::now();
        let mut e = engine(
            "failurecount=3\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n",
            t,
        );
        // starts down (absent from the table): the first success resets the
        // failure count the forced start-down left, as in Perl
        e.finished(0, Run::Normal, &up(), false, t, t);
        assert_eq!(
            logs(&mut e),
            ["Resetting soft failure count: 10.0.0.2:80 (tcp:10.0.0.1:80)"]
        );
        assert_eq!(e.take_dirty(), [0]);
        assert!(e.members[0].up);
        e.finished(0, Run::Normal, &down(), false, t, t);
        e.finished(0, Run::Normal, &down(), false, t, t);
        assert_eq!(
            logs(&mut e),
            [
                "Soft failure real server: 10.0.0.2:80 (tcp:10.0.0.1:80) failure 1/3",
                "Soft failure real server: 10.0.0.2:80 (tcp:10.0.0.1:80) failure 2/3"
            ]
        );
        assert!(e.take_dirty().is_empty() && e.members[0].up);
        e.finished(0, Run::Normal, &down(), false, t, t);
        assert!(logs(&mut e).is_empty());
        assert_eq!(e.take_dirty(), [0]);
        assert!(!e.members[0].up);
        // further failures of a down real change nothing
        e.finished(0, Run::Normal, &down(), false, t, t);
        assert!(logs(&mut e).is_empty() && e.take_dirty().is_empty());
        // maintenance forces down at once
        e.finished(0, Run::Normal, &up(), false, t, t);
        e.drain();
        e.take_dirty();
        e.finished(
            0,
            Run::Normal,
            &Outcome::down("Server in maintenance"),
            true,
            t,
            t,
        );
        assert_eq!(e.take_dirty(), [0]);
    }

    #[test]
    fn combined_checks_alternate_connects_and_negotiate() {
        let t = Instant::now();
        let mut e = engine(
            "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktype=2\n",
            t,
        );
        let mut seen = Vec::new();
        let mut now = t;
        for ok in [true, true, true, true, false, true, true] {
            let (c, run) = e.pop_due(now).unwrap();
            seen.push(run);
            let o = if ok { up() } else { down() };
            e.finished(c, run, &o, false, now, now);
            now += Duration::from_secs(10);
        }
        use Run::*;
        assert_eq!(
            seen,
            [Negotiate, Connect, Connect, Negotiate, Connect, Negotiate, Connect]
        );
    }

    #[test]
    fn shared_check_updates_every_virtual() {
        let t = Instant::now();
        let mut e = engine(
            concat!(
                "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tmonitorfile=/tmp/m\n",
                "virtual=10.0.0.9:80\n\treal=10.0.0.2:80 gate\n"
            ),
            t,
        );
        assert_eq!(e.check_count(), 1);
        let (c, r) = e.pop_due(t).unwrap();
        e.finished(c, r, &up(), false, t, t);
        assert_eq!(e.take_dirty(), [0, 1]);
        let out = e.drain();
        assert!(out.contains(&Output::Monitor {
            path: "/tmp/m".into(),
            line: "negotiate http tcp 10.0.0.2 80 1 gate /  [up] 200 OK".into()
        }));
    }

    #[test]
    fn alerts_and_repeats() {
        let t = Instant::now();
        let mut e = engine(
            "emailalert=\"ops@x\"\nemailalertfreq=60\nsmtp=127.0.0.1\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tservicename=Shop\n\tquiescent=no\n",
            t,
        );
        e.status = Status::Running;
        e.finished(0, Run::Normal, &up(), false, t, t);
        let table = {
            let mut tb = Table::new();
            let ch = e.changes(0, &tb, Mode::Start);
            tb.apply(&ch.iter().filter_map(|c| c.op.clone()).collect::<Vec<Op>>())
                .unwrap();
            e.applied(0, &ch, 1000);
            tb
        };
        let out = e.drain();
        let mails: Vec<&Mail> = out
            .iter()
            .filter_map(|o| match o {
                Output::Mail(m) => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(mails.len(), 1);
        assert_eq!(
            mails[0].subject,
            "[Shop] Added real server: 10.0.0.2:80 (10.0.0.1:80) (Weight set to 1)"
        );
        assert!(mails[0]
            .body
            .starts_with("ldirectord host: director\nLog-Message: [Shop] Added"));
        assert!(mails[0]
            .body
            .contains("Daemon-Status: running\n\nService name: Shop\n"));
        assert!(out.contains(&Output::Log(
            "emailalert: Added real server: 10.0.0.2:80 (10.0.0.1:80) (Weight set to 1)".into()
        )));
        // goes down: alert recorded for repeats every 60 s
        e.finished(0, Run::Normal, &down(), false, t, t);
        let ch = e.changes(0, &table, Mode::Change);
        e.applied(0, &ch, 2000);
        e.drain();
        e.resend_alerts(2030);
        assert!(e.drain().is_empty());
        e.resend_alerts(2060);
        let out = e.drain();
        assert!(out.contains(&Output::Log(
            "emailalert: Inaccessible real server: 10.0.0.2:80 (10.0.0.1:80)".into()
        )));
        e.resend_alerts(2100);
        assert!(e.drain().is_empty(), "next repeat 60 s after the last");
    }

    #[test]
    fn fallback_command_runs_on_flips_only() {
        let t = Instant::now();
        let mut e = engine(
            "fallbackcommand=\"/usr/local/bin/fb\"\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.3:80 gate\n",
            t,
        );
        let tb = Table::new();
        let cmds = |e: &mut Engine| -> Vec<String> {
            e.drain()
                .into_iter()
                .filter_map(|o| match o {
                    Output::Command(c) => Some(c),
                    _ => None,
                })
                .collect()
        };
        e.applied(0, &e.changes(0, &tb, Mode::Start), 0);
        assert_eq!(cmds(&mut e), ["/usr/local/bin/fb start 10.0.0.1:80 tcp"]);
        e.finished(0, Run::Normal, &up(), false, t, t);
        e.applied(0, &[], 0);
        assert_eq!(cmds(&mut e), ["/usr/local/bin/fb stop 10.0.0.1:80 tcp"]);
        e.finished(1, Run::Normal, &up(), false, t, t);
        e.applied(0, &[], 0);
        assert!(cmds(&mut e).is_empty());
    }
}
