//! What the IPVS table should hold for a configuration and the state of its
//! real servers, and the operations (with the Perl daemon's log lines and
//! alert subjects) that get it there from the current table. Pure: hanet's
//! table model in, hanet operations out; the caller applies them.
//!
//! Semantics (ldirectord.md §5):
//! * a real that is up is present with its weight, forwarding method and
//!   thresholds (`Added real server` / `Restored real server`);
//! * a real that is down is deleted (`Deleted real server`), or with
//!   `quiescent=yes` kept with weight 0 (`Quiescent real server`); a
//!   quiescent real that is absent is re-added with weight 0 only with
//!   `readdquiescent=yes` (`Readd Quiescent`) and at start;
//! * the fallback server is present (weight 1) exactly while no real is up,
//!   and is always deleted, never quiesced;
//! * at start and reload ([`Mode::Start`]) the service is added or updated and
//!   destinations of a managed service that are not in the configuration are
//!   purged (`Purged real server (start)`); on a state change
//!   ([`Mode::Change`]) only the configured reals and the fallback are
//!   touched; services that are not in the configuration are never touched.

use std::collections::HashSet;

use hanet::ipvs::{
    self as hv, Dest, DestKey, Entry, Family, Netmask as HvNetmask, Op, SchedFlags, ServiceKey,
    Table,
};

use crate::config::{
    kernel_dest_port, Config, Forward, Netmask, Protocol, Real, Virtual, VirtualAddr,
};

/// Start/reload, a state change, or a clean stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Start,
    Change,
    Stop,
}

/// An e-mail alert caused by a change (`ld_emailalert_send`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub subject: String,
    /// `IP:PORT` of the real or fallback server
    pub rserver: String,
    /// keep repeating "Inaccessible real server" while it stays down
    pub record: bool,
}

/// One operation with what to log about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `None` for log-only entries (stop: the service deletion removes the reals)
    pub op: Option<Op>,
    pub log: String,
    pub alert: Option<Alert>,
}

/// The hanet service key of a virtual service.
pub fn service_key(v: &Virtual) -> ServiceKey {
    match v.addr {
        VirtualAddr::Inet(sa) => match v.protocol {
            Protocol::Udp => ServiceKey::udp(sa.ip(), sa.port()),
            _ => ServiceKey::tcp(sa.ip(), sa.port()),
        },
        VirtualAddr::Fwmark(m) if v.v6 => ServiceKey::fwmark6(m),
        VirtualAddr::Fwmark(m) => ServiceKey::fwmark(m),
    }
}

/// The service with its attributes (`ipvsadm -A -t VIP:PORT -s SCHED ...`).
pub fn service_of(v: &Virtual) -> hv::Service {
    let key = service_key(v);
    let mut s = hv::Service::new(key);
    // the parser accepted only known schedulers and valid flags
    if let Ok(sched) = hv::Scheduler::new(&v.scheduler) {
        s.scheduler = sched;
    }
    s.persistent = v.persistent;
    if v.persistent.is_some() {
        if let Some(n) = v.netmask {
            s.netmask = match n {
                Netmask::V4(a) => HvNetmask::V4(a),
                Netmask::V6(p) => HvNetmask::V6(p),
            };
        }
    } else {
        s.netmask = HvNetmask::full(key.family());
    }
    s.one_packet = v.ops;
    if let Some(f) = &v.schedflags {
        s.sched_flags = SchedFlags::parse(&v.scheduler, f).unwrap_or_default();
    }
    s
}

fn hv_forward(f: Forward) -> hv::Forward {
    match f {
        Forward::Gate => hv::Forward::Gate,
        Forward::Masq => hv::Forward::Masq,
        Forward::Ipip => hv::Forward::Tunnel,
    }
}

/// The kernel destination of a real server at `weight`.
pub fn real_dest(v: &Virtual, r: &Real, weight: u32) -> Dest {
    Dest::new(
        r.addr,
        kernel_dest_port(v, r.port, r.forward),
        hv_forward(r.forward),
        weight,
    )
    .with_thresholds(r.upper.unwrap_or(0), r.lower.unwrap_or(0))
}

fn fallback_dest(v: &Virtual) -> Option<(Dest, String)> {
    let f = v.fallback?;
    let d = Dest::new(
        f.addr,
        kernel_dest_port(v, f.port, f.forward),
        hv_forward(f.forward),
        1,
    );
    Some((d, crate::config::fmt_hostport(f.addr, f.port)))
}

/// Same forwarding as wanted (old kernels report local servers as `Local`).
fn same_forward(have: hv::Forward, want: hv::Forward) -> bool {
    have == want || have == hv::Forward::Local
}

fn same_dest(have: &Dest, want: &Dest) -> bool {
    have.weight == want.weight
        && have.upper_threshold == want.upper_threshold
        && have.lower_threshold == want.lower_threshold
        && same_forward(have.forward, want.forward)
}

/// The operations for one virtual service. `up[i]` is the state of
/// `v.reals[i]`; `current` is the service in the kernel table, if any.
pub fn plan_virtual(
    cfg: &Config,
    v: &Virtual,
    up: &[bool],
    current: Option<&Entry>,
    mode: Mode,
) -> Vec<Change> {
    let name = v.name();
    let mut out = Vec::new();
    let key = service_key(v);
    if mode == Mode::Stop {
        if current.is_some() && v.cleanstop {
            for (r, _) in v.reals.iter().zip(up).filter(|(_, u)| **u) {
                let log = format!("Purged real server (stop): {} ({name})", r.id());
                out.push(Change {
                    op: None,
                    alert: Some(Alert {
                        subject: log.clone(),
                        rserver: r.id(),
                        record: false,
                    }),
                    log,
                });
            }
            out.push(Change {
                op: Some(Op::DelService(key)),
                log: format!("Purged virtual server (stop): {name}"),
                alert: None,
            });
        }
        return out;
    }
    let want_service = service_of(v);
    match current {
        None => out.push(Change {
            op: Some(Op::AddService(want_service)),
            log: format!("Added virtual server: {name}"),
            alert: None,
        }),
        Some(e) if mode == Mode::Start && !e.service.same_config(&want_service) => {
            out.push(Change {
                op: Some(Op::EditService(want_service)),
                log: format!("Changed virtual server: {name}"),
                alert: None,
            })
        }
        Some(_) => {}
    }
    let cur = |k: &DestKey| current.and_then(|e| e.dests.get(k));
    let mut known: HashSet<DestKey> = HashSet::new();
    for (r, &is_up) in v.reals.iter().zip(up) {
        let want = real_dest(v, r, r.weight);
        let dk = want.key();
        known.insert(dk);
        let have = cur(&dk);
        let id = r.id();
        let alert = |subject: &str, record: bool| {
            Some(Alert {
                subject: subject.to_string(),
                rserver: id.clone(),
                record,
            })
        };
        if is_up {
            match have {
                None => {
                    let log = format!(
                        "Added real server: {id} ({name}) (Weight set to {})",
                        r.weight
                    );
                    out.push(Change {
                        op: Some(Op::AddDest(key, want)),
                        alert: alert(&log, false),
                        log,
                    });
                }
                Some(h) if !same_dest(h, &want) => {
                    let log = format!(
                        "Restored real server: {id} ({name}) (Weight set to {})",
                        r.weight
                    );
                    out.push(Change {
                        op: Some(Op::EditDest(key, want)),
                        alert: alert(&log, false),
                        log,
                    });
                }
                Some(_) => {}
            }
        } else if v.quiescent {
            let q = real_dest(v, r, 0);
            match have {
                Some(h) if h.weight == 0 && same_forward(h.forward, q.forward) => {}
                Some(_) => {
                    let log = format!("Quiescent real server: {id} ({name}) (Weight set to 0)");
                    out.push(Change {
                        op: Some(Op::EditDest(key, q)),
                        alert: alert(&log, true),
                        log,
                    });
                }
                None if mode == Mode::Start && !cfg.readdquiescent => {
                    let log = format!("Quiescent real server: {id} ({name}) (Weight set to 0)");
                    out.push(Change {
                        op: Some(Op::AddDest(key, q)),
                        alert: alert(&log, true),
                        log,
                    });
                }
                None if cfg.readdquiescent => {
                    let subject = format!("Quiescent real server: {id} ({name}) (Weight set to 0)");
                    out.push(Change {
                        op: Some(Op::AddDest(key, q)),
                        log: format!("Readd {subject}"),
                        alert: alert(&subject, true),
                    });
                }
                None => {}
            }
        } else if have.is_some() {
            let log = format!("Deleted real server: {id} ({name})");
            out.push(Change {
                op: Some(Op::DelDest(key, dk)),
                alert: alert(&log, true),
                log,
            });
        }
    }
    let fallback = fallback_dest(v);
    if let Some((f, _)) = &fallback {
        known.insert(f.key());
    }
    if mode == Mode::Start {
        if let Some(e) = current {
            for dk in e.dests.keys().filter(|k| !known.contains(k)) {
                let log = format!("Purged real server (start): {dk} ({name})");
                out.push(Change {
                    op: Some(Op::DelDest(key, *dk)),
                    alert: Some(Alert {
                        subject: log.clone(),
                        rserver: dk.to_string(),
                        record: false,
                    }),
                    log,
                });
            }
        }
    }
    if let Some((f, id)) = fallback {
        let any_up = up.iter().any(|u| *u);
        let have = cur(&f.key());
        let alert = |s: &str| {
            Some(Alert {
                subject: s.to_string(),
                rserver: id.clone(),
                record: false,
            })
        };
        match (any_up, have) {
            (false, None) => {
                let log = format!("Added fallback server: {id} ({name}) (Weight set to 1)");
                out.push(Change {
                    op: Some(Op::AddDest(key, f)),
                    alert: alert(&log),
                    log,
                });
            }
            (false, Some(h)) if !same_dest(h, &f) => {
                let log = format!("Restored fallback server: {id} ({name}) (Weight set to 1)");
                out.push(Change {
                    op: Some(Op::EditDest(key, f)),
                    alert: alert(&log),
                    log,
                });
            }
            (true, Some(_)) => {
                let log = format!("Deleted fallback server: {id} ({name})");
                out.push(Change {
                    op: Some(Op::DelDest(key, f.key())),
                    alert: alert(&log),
                    log,
                });
            }
            _ => {}
        }
    }
    out
}

/// Services of an old configuration that the new one no longer has and that
/// are still in the table: purged on reload.
pub fn purge_removed(old: &[Virtual], new: &Config, table: &Table) -> Vec<Change> {
    let keep: HashSet<ServiceKey> = new.virtuals.iter().map(service_key).collect();
    old.iter()
        .filter(|v| {
            let k = service_key(v);
            !keep.contains(&k) && table.get(&k).is_some()
        })
        .map(|v| Change {
            op: Some(Op::DelService(service_key(v))),
            log: format!("Purged virtual server (start): {}", v.name()),
            alert: None,
        })
        .collect()
}

/// The state of every real at start: up if the table already holds it with
/// a weight above 0 (a restart does not take working servers out).
pub fn initial_up(v: &Virtual, current: Option<&Entry>) -> Vec<bool> {
    v.reals
        .iter()
        .map(|r| {
            let k = real_dest(v, r, r.weight).key();
            current
                .and_then(|e| e.dests.get(&k))
                .is_some_and(|d| d.weight > 0)
        })
        .collect()
}

/// The address family of a virtual service (for messages).
pub fn family(v: &Virtual) -> Family {
    service_key(v).family()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, tests::FakeResolver};

    fn cfg(text: &str) -> Config {
        parse(text, "t.cf", &FakeResolver).unwrap()
    }

    /// Applies the planned ops to `t` and returns the log lines.
    fn run(c: &Config, up: &[bool], t: &mut Table, mode: Mode) -> Vec<String> {
        let v = &c.virtuals[0];
        let ch = plan_virtual(c, v, up, t.get(&service_key(v)), mode);
        let ops: Vec<Op> = ch.iter().filter_map(|c| c.op.clone()).collect();
        t.apply(&ops).unwrap();
        ch.into_iter().map(|c| c.log).collect()
    }

    fn weights(t: &Table) -> Vec<String> {
        t.entries()
            .flat_map(|e| {
                e.dests
                    .values()
                    .map(|d| format!("{}={}", d.key(), d.weight))
            })
            .collect()
    }

    const BASE: &str = "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate 2\n\treal=10.0.0.3:80 gate\n\tfallback=127.0.0.1:80\n\tscheduler=rr\n";

    #[test]
    fn start_change_and_fallback() {
        let c = cfg(BASE);
        let mut t = Table::new();
        let logs = run(&c, &[false, false], &mut t, Mode::Start);
        assert_eq!(
            logs,
            [
                "Added virtual server: 10.0.0.1:80",
                "Added fallback server: 127.0.0.1:80 (10.0.0.1:80) (Weight set to 1)"
            ]
        );
        assert_eq!(weights(&t), ["127.0.0.1:80=1"]);
        let logs = run(&c, &[true, false], &mut t, Mode::Change);
        assert_eq!(
            logs,
            [
                "Added real server: 10.0.0.2:80 (10.0.0.1:80) (Weight set to 2)",
                "Deleted fallback server: 127.0.0.1:80 (10.0.0.1:80)"
            ]
        );
        assert_eq!(weights(&t), ["10.0.0.2:80=2"]);
        // nothing changes: nothing to do
        assert!(run(&c, &[true, false], &mut t, Mode::Change).is_empty());
        let logs = run(&c, &[false, false], &mut t, Mode::Change);
        assert_eq!(
            logs,
            [
                "Deleted real server: 10.0.0.2:80 (10.0.0.1:80)",
                "Added fallback server: 127.0.0.1:80 (10.0.0.1:80) (Weight set to 1)"
            ]
        );
    }

    #[test]
    fn quiescent_and_readd() {
        let c = cfg(&format!("quiescent=yes\n{BASE}"));
        let mut t = Table::new();
        let logs = run(&c, &[true, false], &mut t, Mode::Start);
        assert_eq!(
            logs,
            [
                "Added virtual server: 10.0.0.1:80",
                "Added real server: 10.0.0.2:80 (10.0.0.1:80) (Weight set to 2)",
                "Quiescent real server: 10.0.0.3:80 (10.0.0.1:80) (Weight set to 0)"
            ]
        );
        let logs = run(&c, &[false, false], &mut t, Mode::Change);
        assert_eq!(
            logs,
            [
                "Quiescent real server: 10.0.0.2:80 (10.0.0.1:80) (Weight set to 0)",
                "Added fallback server: 127.0.0.1:80 (10.0.0.1:80) (Weight set to 1)"
            ]
        );
        assert_eq!(
            weights(&t),
            ["10.0.0.2:80=0", "10.0.0.3:80=0", "127.0.0.1:80=1"]
        );
        // an admin deletes the quiescent real: with readdquiescent=no it stays away
        let k = service_key(&c.virtuals[0]);
        t.apply(&[Op::DelDest(
            k,
            "10.0.0.3:80"
                .parse::<std::net::SocketAddr>()
                .map(|s| DestKey {
                    addr: s.ip(),
                    port: s.port(),
                })
                .unwrap(),
        )])
        .unwrap();
        assert!(run(&c, &[false, false], &mut t, Mode::Change).is_empty());
        let logs = run(&c, &[true, false], &mut t, Mode::Change);
        assert_eq!(
            logs,
            [
                "Restored real server: 10.0.0.2:80 (10.0.0.1:80) (Weight set to 2)",
                "Deleted fallback server: 127.0.0.1:80 (10.0.0.1:80)"
            ]
        );
        // with readdquiescent=yes it comes back with weight 0
        let c2 = cfg(&format!("quiescent=yes\nreaddquiescent=yes\n{BASE}"));
        let logs = run(&c2, &[true, false], &mut t, Mode::Change);
        assert_eq!(
            logs,
            ["Readd Quiescent real server: 10.0.0.3:80 (10.0.0.1:80) (Weight set to 0)"]
        );
    }

    #[test]
    fn start_purges_unknown_reals_and_keeps_working_ones() {
        let c = cfg(BASE);
        let mut t = Table::new();
        let k = service_key(&c.virtuals[0]);
        t.apply(&[
            Op::AddService(hv::Service::new(k)),
            Op::AddDest(k, Dest::new([10, 0, 0, 2], 80, hv::Forward::Gate, 2)),
            Op::AddDest(k, Dest::new([10, 0, 0, 9], 80, hv::Forward::Gate, 1)),
            Op::AddDest(k, Dest::new([127, 0, 0, 1], 80, hv::Forward::Gate, 1)),
        ])
        .unwrap();
        let up = initial_up(&c.virtuals[0], t.get(&k));
        assert_eq!(up, [true, false]);
        let logs = run(&c, &up, &mut t, Mode::Start);
        assert_eq!(
            logs,
            [
                "Changed virtual server: 10.0.0.1:80",
                "Purged real server (start): 10.0.0.9:80 (10.0.0.1:80)",
                "Deleted fallback server: 127.0.0.1:80 (10.0.0.1:80)"
            ]
        );
        assert_eq!(weights(&t), ["10.0.0.2:80=2"]);
        assert_eq!(t.service(&k).unwrap().scheduler.as_str(), "rr");
        // another service in the table is never touched
        let other = ServiceKey::tcp([10, 0, 0, 50], 443);
        t.apply(&[Op::AddService(hv::Service::new(other))]).unwrap();
        run(&c, &[false, false], &mut t, Mode::Start);
        assert!(t.get(&other).is_some());
    }

    #[test]
    fn gate_reals_take_the_virtual_port_and_thresholds_count() {
        let c = cfg(
            "virtual=10.0.0.1:80\n\treal=10.0.0.2 gate 1 l:5 u:10\n\treal=10.0.0.3:8080 masq\n",
        );
        let mut t = Table::new();
        run(&c, &[true, true], &mut t, Mode::Start);
        let e = t.entries().next().unwrap();
        let d: Vec<String> = e
            .dests
            .values()
            .map(|d| {
                format!(
                    "{} {} x{} y{}",
                    d.key(),
                    d.forward,
                    d.upper_threshold,
                    d.lower_threshold
                )
            })
            .collect();
        assert_eq!(d, ["10.0.0.2:80 Route x10 y5", "10.0.0.3:8080 Masq x0 y0"]);
        assert!(run(&c, &[true, true], &mut t, Mode::Change).is_empty());
    }

    #[test]
    fn stop_and_reload_purges() {
        let c = cfg(BASE);
        let mut t = Table::new();
        run(&c, &[true, true], &mut t, Mode::Start);
        let logs = run(&c, &[true, false], &mut t, Mode::Stop);
        assert_eq!(
            logs,
            [
                "Purged real server (stop): 10.0.0.2:80 (10.0.0.1:80)",
                "Purged virtual server (stop): 10.0.0.1:80"
            ]
        );
        assert!(t.is_empty());
        let nc = cfg("virtual=10.0.0.1:81\n\treal=10.0.0.2:81 gate\n");
        run(&c, &[true, true], &mut t, Mode::Start);
        let p = purge_removed(&c.virtuals, &nc, &t);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].log, "Purged virtual server (start): 10.0.0.1:80");
        let keep = cfg("cleanstop=no\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n");
        assert!(run(&keep, &[true], &mut t, Mode::Stop).is_empty());
    }
}
