//! The IPVS table as a value, the operations that change it, and the diff
//! between two tables.
//!
//! [`Table`] holds services with their destinations in a deterministic
//! (key) order. [`Op`] is one kernel operation (`ipvsadm -A/-E/-D/-a/-e/-d`).
//! [`diff`] computes the fewest operations that turn a current table into a
//! desired one within a [`Scope`]; [`Table::apply`] performs operations on a
//! table value with the kernel's own checks and errno values, which is what
//! the in-memory and file backends use and what the tests check the diff with.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::error::IpvsError;
use super::model::{Dest, DestKey, Family, Service, ServiceKey, Stats, KNOWN_PERSISTENCE_ENGINES};

/// One change to the kernel table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `ipvsadm -A`: add a service (fails with EEXIST if it exists)
    AddService(Service),
    /// `ipvsadm -E`: change a service's attributes (ESRCH if missing)
    EditService(Service),
    /// `ipvsadm -D`: delete a service and its destinations (ESRCH if missing)
    DelService(ServiceKey),
    /// `ipvsadm -a`: add a destination (ESRCH no service, EEXIST exists)
    AddDest(ServiceKey, Dest),
    /// `ipvsadm -e`: change a destination (ESRCH no service, ENOENT no dest)
    EditDest(ServiceKey, Dest),
    /// `ipvsadm -d`: delete a destination (ESRCH no service, ENOENT no dest)
    DelDest(ServiceKey, DestKey),
}

impl Op {
    /// The service the operation is about.
    pub fn service_key(&self) -> &ServiceKey {
        match self {
            Op::AddService(s) | Op::EditService(s) => &s.key,
            Op::DelService(k) | Op::AddDest(k, _) | Op::EditDest(k, _) | Op::DelDest(k, _) => k,
        }
    }
}

/// The operation as the equivalent `ipvsadm` command line
/// (`-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 1 -x 0 -y 0`).
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::rules::op_command(self))
    }
}

/// A service with its destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// the service's attributes
    pub service: Service,
    /// its destinations, by key
    pub dests: BTreeMap<DestKey, Dest>,
}

/// A whole IPVS table: services by key, each with its destinations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TableRepr", into = "TableRepr")]
pub struct Table {
    entries: BTreeMap<ServiceKey, Entry>,
}

#[derive(Serialize, Deserialize)]
struct TableRepr {
    services: Vec<EntryRepr>,
}

#[derive(Serialize, Deserialize)]
struct EntryRepr {
    #[serde(flatten)]
    service: Service,
    #[serde(default)]
    dests: Vec<Dest>,
}

impl From<Table> for TableRepr {
    fn from(t: Table) -> Self {
        TableRepr {
            services: t
                .entries
                .into_values()
                .map(|e| EntryRepr {
                    service: e.service,
                    dests: e.dests.into_values().collect(),
                })
                .collect(),
        }
    }
}

impl TryFrom<TableRepr> for Table {
    type Error = String;
    fn try_from(r: TableRepr) -> Result<Self, String> {
        let mut t = Table::new();
        for e in r.services {
            let key = e.service.key;
            if t.insert_service(e.service).is_some() {
                return Err(format!("service {key} listed twice"));
            }
            for d in e.dests {
                let dk = d.key();
                if t.entries
                    .get_mut(&key)
                    .unwrap()
                    .dests
                    .insert(dk, d)
                    .is_some()
                {
                    return Err(format!("destination {dk} of {key} listed twice"));
                }
            }
        }
        Ok(t)
    }
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Table::default()
    }

    /// True if there is no service.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Services with their destinations, in key order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Service keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &ServiceKey> {
        self.entries.keys()
    }

    /// One service with its destinations.
    pub fn get(&self, key: &ServiceKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// One service's attributes.
    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.entries.get(key).map(|e| &e.service)
    }

    /// One destination.
    pub fn dest(&self, key: &ServiceKey, dest: &DestKey) -> Option<&Dest> {
        self.entries.get(key).and_then(|e| e.dests.get(dest))
    }

    /// Inserts (or replaces the attributes of) a service, keeping the
    /// destinations it already has. Returns the previous attributes.
    /// A builder: no kernel-like checks (use [`Table::apply`] for those).
    pub fn insert_service(&mut self, service: Service) -> Option<Service> {
        match self.entries.get_mut(&service.key) {
            Some(e) => Some(std::mem::replace(&mut e.service, service)),
            None => {
                self.entries.insert(
                    service.key,
                    Entry {
                        service,
                        dests: BTreeMap::new(),
                    },
                );
                None
            }
        }
    }

    /// Inserts (or replaces) a destination of an existing service.
    pub fn insert_dest(&mut self, key: &ServiceKey, dest: Dest) -> Result<Option<Dest>, IpvsError> {
        let e = self.entries.get_mut(key).ok_or_else(|| {
            IpvsError::Invalid(format!("no service {key} to add {} to", dest.key()))
        })?;
        Ok(e.dests.insert(dest.key(), dest))
    }

    /// Removes a service with its destinations.
    pub fn remove_service(&mut self, key: &ServiceKey) -> Option<Entry> {
        self.entries.remove(key)
    }

    /// Removes every service.
    pub fn flush(&mut self) {
        self.entries.clear();
    }

    /// Zeroes the counters of one service (and its destinations) or of all;
    /// ESRCH if the service does not exist.
    pub fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), IpvsError> {
        let zero_entry = |e: &mut Entry| {
            e.service.stats = Stats::default();
            for d in e.dests.values_mut() {
                d.stats = Stats::default();
            }
        };
        match key {
            None => self.entries.values_mut().for_each(zero_entry),
            Some(k) => match self.entries.get_mut(k) {
                Some(e) => zero_entry(e),
                None => {
                    return Err(IpvsError::Errno {
                        what: format!("zero {k}"),
                        errno: libc::ESRCH,
                    })
                }
            },
        }
        Ok(())
    }

    /// True if both tables hold the same services and destinations with the
    /// same attributes (counters are ignored).
    pub fn same_config(&self, other: &Table) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(other.entries.iter())
                .all(|((ka, a), (kb, b))| {
                    ka == kb
                        && a.service.same_config(&b.service)
                        && a.dests.len() == b.dests.len()
                        && a.dests
                            .values()
                            .zip(b.dests.values())
                            .all(|(x, y)| x.same_config(y))
                })
    }

    /// The services of `keys` only (those that exist), with their destinations.
    pub fn subset<'a>(&self, keys: impl IntoIterator<Item = &'a ServiceKey>) -> Table {
        let mut t = Table::new();
        for k in keys {
            if let Some(e) = self.entries.get(k) {
                t.entries.insert(*k, e.clone());
            }
        }
        t
    }

    /// Applies `ops` in order with the kernel's checks and errno values,
    /// stopping at the first refusal ([`IpvsError::Refused`] names it; the
    /// operations before it stay applied, like in the kernel).
    pub fn apply(&mut self, ops: &[Op]) -> Result<(), IpvsError> {
        for (i, op) in ops.iter().enumerate() {
            self.apply_one(op)
                .map_err(|errno| IpvsError::refused(i, op, errno))?;
        }
        Ok(())
    }

    /// Applies one operation; `Err(errno)` as the kernel would answer.
    pub fn apply_one(&mut self, op: &Op) -> Result<(), i32> {
        match op {
            Op::AddService(s) => {
                if self.entries.contains_key(&s.key) {
                    return Err(libc::EEXIST);
                }
                check_service(s)?;
                let mut s = s.clone();
                s.stats = Stats::default();
                self.insert_service(s);
            }
            Op::EditService(s) => {
                check_service(s)?;
                let e = self.entries.get_mut(&s.key).ok_or(libc::ESRCH)?;
                let stats = e.service.stats;
                e.service = Service { stats, ..s.clone() };
            }
            Op::DelService(k) => {
                self.entries.remove(k).ok_or(libc::ESRCH)?;
            }
            Op::AddDest(k, d) => {
                let e = self.entries.get_mut(k).ok_or(libc::ESRCH)?;
                check_dest(d, k.family())?;
                if e.dests.contains_key(&d.key()) {
                    return Err(libc::EEXIST);
                }
                e.dests.insert(d.key(), fresh_dest(d));
            }
            Op::EditDest(k, d) => {
                let e = self.entries.get_mut(k).ok_or(libc::ESRCH)?;
                check_dest(d, k.family())?;
                let old = e.dests.get_mut(&d.key()).ok_or(libc::ENOENT)?;
                *old = Dest {
                    active_conns: old.active_conns,
                    inact_conns: old.inact_conns,
                    persist_conns: old.persist_conns,
                    stats: old.stats,
                    ..d.clone()
                };
            }
            Op::DelDest(k, dk) => {
                let e = self.entries.get_mut(k).ok_or(libc::ESRCH)?;
                e.dests.remove(dk).ok_or(libc::ENOENT)?;
            }
        }
        Ok(())
    }
}

fn fresh_dest(d: &Dest) -> Dest {
    Dest {
        active_conns: 0,
        inact_conns: 0,
        persist_conns: 0,
        stats: Stats::default(),
        ..d.clone()
    }
}

/// The kernel's checks on a service (ip_vs_add_service / ip_vs_edit_service).
fn check_service(s: &Service) -> Result<(), i32> {
    s.validate().map_err(|_| libc::EINVAL)?;
    if let Some(pe) = &s.pe_name {
        if !KNOWN_PERSISTENCE_ENGINES.contains(&pe.as_str()) {
            return Err(libc::ENOENT);
        }
    }
    Ok(())
}

/// The kernel's checks on a destination (ip_vs_add_dest / ip_vs_edit_dest).
/// (The family check comes first, as in ip_vs_genl_set_cmd.)
fn check_dest(d: &Dest, family: Family) -> Result<(), i32> {
    if Family::of(&d.addr) != family && d.forward != super::model::Forward::Tunnel {
        return Err(libc::EINVAL);
    }
    if d.weight > i32::MAX as u32 || d.lower_threshold > d.upper_threshold {
        return Err(libc::ERANGE);
    }
    Ok(())
}

/// Which services of the current table a [`diff`] may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The whole table: services not in the desired table are deleted.
    All,
    /// Only the services present in the desired table; nothing else is deleted.
    Desired,
    /// The desired services plus these: listed services absent from the
    /// desired table are deleted; services outside the list are left alone
    /// (e.g. ldirectord passes the virtual services of its previous config).
    Services(BTreeSet<ServiceKey>),
}

impl Scope {
    fn manages(&self, key: &ServiceKey) -> bool {
        match self {
            Scope::All => true,
            Scope::Desired => false,
            Scope::Services(s) => s.contains(key),
        }
    }
}

/// The fewest operations that make `current` look like `desired` within
/// `scope`: services to delete first, then per desired service (in key
/// order) an add or edit of the service, then its destination deletions,
/// edits and additions. Counters are ignored. Applying the result to
/// `current` (with [`Table::apply`]) yields a table whose managed part has the
/// same configuration as `desired`; services outside the scope are untouched.
pub fn diff(current: &Table, desired: &Table, scope: &Scope) -> Vec<Op> {
    let mut ops = Vec::new();
    for key in current.entries.keys() {
        if scope.manages(key) && !desired.entries.contains_key(key) {
            ops.push(Op::DelService(*key));
        }
    }
    for (key, want) in &desired.entries {
        match current.entries.get(key) {
            None => {
                ops.push(Op::AddService(want.service.clone()));
                ops.extend(want.dests.values().map(|d| Op::AddDest(*key, d.clone())));
            }
            Some(have) => {
                if !have.service.same_config(&want.service) {
                    ops.push(Op::EditService(want.service.clone()));
                }
                for dk in have.dests.keys() {
                    if !want.dests.contains_key(dk) {
                        ops.push(Op::DelDest(*key, *dk));
                    }
                }
                for (dk, d) in &want.dests {
                    match have.dests.get(dk) {
                        None => ops.push(Op::AddDest(*key, d.clone())),
                        Some(h) if !h.same_config(d) => ops.push(Op::EditDest(*key, d.clone())),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::model::{Forward, Netmask, Protocol, SchedFlags};
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn v4(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, d))
    }

    fn sample() -> Table {
        let mut t = Table::new();
        let k = ServiceKey::tcp(v4(1), 80);
        t.insert_service(Service::new(k).with_scheduler("rr").unwrap());
        t.insert_dest(&k, Dest::new(v4(11), 80, Forward::Tunnel, 1))
            .unwrap();
        t.insert_dest(&k, Dest::new(v4(12), 80, Forward::Tunnel, 1))
            .unwrap();
        t
    }

    #[test]
    fn kernel_errno_semantics() {
        let mut t = sample();
        let k = ServiceKey::tcp(v4(1), 80);
        assert_eq!(
            t.apply_one(&Op::AddService(Service::new(k))),
            Err(libc::EEXIST)
        );
        let missing = ServiceKey::tcp(v4(2), 80);
        assert_eq!(t.apply_one(&Op::DelService(missing)), Err(libc::ESRCH));
        assert_eq!(
            t.apply_one(&Op::EditService(Service::new(missing))),
            Err(libc::ESRCH)
        );
        let d = Dest::new(v4(11), 80, Forward::Gate, 1);
        assert_eq!(t.apply_one(&Op::AddDest(k, d.clone())), Err(libc::EEXIST));
        assert_eq!(
            t.apply_one(&Op::AddDest(missing, d.clone())),
            Err(libc::ESRCH)
        );
        let gone = Dest::new(v4(99), 80, Forward::Gate, 1);
        assert_eq!(
            t.apply_one(&Op::EditDest(k, gone.clone())),
            Err(libc::ENOENT)
        );
        assert_eq!(t.apply_one(&Op::DelDest(k, gone.key())), Err(libc::ENOENT));
        let bad = Dest::new(v4(13), 80, Forward::Gate, 1).with_thresholds(1, 5);
        assert_eq!(t.apply_one(&Op::AddDest(k, bad)), Err(libc::ERANGE));
        let v6 = Dest::new(
            "2001:db8::1".parse::<IpAddr>().unwrap(),
            80,
            Forward::Gate,
            1,
        );
        assert_eq!(t.apply_one(&Op::AddDest(k, v6.clone())), Err(libc::EINVAL));
        let v6t = Dest {
            forward: Forward::Tunnel,
            ..v6
        };
        assert_eq!(t.apply_one(&Op::AddDest(k, v6t)), Ok(()));
        let mut pe = Service::new(missing);
        pe.pe_name = Some("nope".into());
        assert_eq!(t.apply_one(&Op::AddService(pe)), Err(libc::ENOENT));
    }

    #[test]
    fn apply_stops_at_first_refusal() {
        let mut t = Table::new();
        let k = ServiceKey::udp(v4(1), 53);
        let ops = vec![
            Op::AddService(Service::new(k)),
            Op::AddService(Service::new(k)),
            Op::DelService(k),
        ];
        let e = t.apply(&ops).unwrap_err();
        assert!(
            matches!(
                e,
                IpvsError::Refused {
                    index: 1,
                    errno: libc::EEXIST,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.is_exists());
        assert_eq!(
            e.to_string(),
            "-A -u 10.0.0.1:53 -s wlc: Service already exists"
        );
        assert_eq!(
            t.len(),
            1,
            "the first op stays applied, the third is not attempted"
        );
    }

    #[test]
    fn noop_diff_is_empty_and_counters_do_not_matter() {
        let t = sample();
        let mut with_stats = t.clone();
        let k = *t.keys().next().unwrap();
        with_stats.entries.get_mut(&k).unwrap().service.stats.conns = 7;
        assert!(diff(&t, &with_stats, &Scope::All).is_empty());
        assert!(diff(&with_stats, &t, &Scope::Desired).is_empty());
    }

    #[test]
    fn diff_touches_only_what_differs() {
        let cur = sample();
        let k = ServiceKey::tcp(v4(1), 80);
        let mut want = cur.clone();
        want.insert_dest(&k, Dest::new(v4(12), 80, Forward::Tunnel, 0))
            .unwrap();
        want.insert_dest(&k, Dest::new(v4(13), 80, Forward::Tunnel, 1))
            .unwrap();
        let ops = diff(&cur, &want, &Scope::All);
        assert_eq!(
            ops,
            vec![
                Op::EditDest(k, Dest::new(v4(12), 80, Forward::Tunnel, 0)),
                Op::AddDest(k, Dest::new(v4(13), 80, Forward::Tunnel, 1)),
            ]
        );
    }

    #[test]
    fn scope_leaves_foreign_services_alone() {
        let mut cur = sample();
        let foreign = ServiceKey::udp(v4(5), 53);
        cur.insert_service(Service::new(foreign));
        let old = ServiceKey::tcp(v4(6), 443);
        cur.insert_service(Service::new(old));
        let want = sample();
        assert!(diff(&cur, &want, &Scope::Desired).is_empty());
        let scope = Scope::Services([old].into_iter().collect());
        assert_eq!(diff(&cur, &want, &scope), vec![Op::DelService(old)]);
        let all = diff(&cur, &want, &Scope::All);
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn json_round_trip() {
        let t = sample();
        let s = serde_json::to_string(&t).unwrap();
        let back: Table = serde_json::from_str(&s).unwrap();
        assert_eq!(back, t);
        let dup = r#"{"services":[{"key":{"fwmark":{"family":"inet","mark":1}},"netmask":{"v4":"255.255.255.255"}},
                                  {"key":{"fwmark":{"family":"inet","mark":1}},"netmask":{"v4":"255.255.255.255"}}]}"#;
        assert!(serde_json::from_str::<Table>(dup)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }

    // ---- property tests: diff + apply reach the desired configuration ----

    fn arb_key() -> impl Strategy<Value = ServiceKey> {
        prop_oneof![
            (0u8..3, 1u8..4, prop_oneof![Just(80u16), Just(443)]).prop_map(|(p, a, port)| {
                let protocol = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp][p as usize];
                ServiceKey::Inet {
                    protocol,
                    addr: v4(a),
                    port,
                }
            }),
            (1u32..3).prop_map(ServiceKey::fwmark),
        ]
    }

    fn arb_service(key: ServiceKey) -> impl Strategy<Value = Service> {
        (
            prop_oneof![Just("rr"), Just("wlc"), Just("sh")],
            proptest::option::of(prop_oneof![Just(60u32), Just(300)]),
            any::<bool>(),
            0u8..8,
            prop_oneof![Just(32u8), Just(24)],
        )
            .prop_map(move |(sched, persistent, ops, flags, bits)| {
                let mut s = Service::new(key).with_scheduler(sched).unwrap();
                s.persistent = persistent;
                s.one_packet = ops;
                s.sched_flags = SchedFlags(flags);
                s.netmask = Netmask::V4(Ipv4Addr::from(u32::MAX << (32 - bits as u32)));
                s
            })
    }

    fn arb_dest() -> impl Strategy<Value = Dest> {
        (
            10u8..14,
            prop_oneof![Just(80u16), Just(8080)],
            prop_oneof![
                Just(Forward::Gate),
                Just(Forward::Masq),
                Just(Forward::Tunnel)
            ],
            0u32..4,
            0u32..3,
        )
            .prop_map(|(a, port, fwd, w, x)| {
                Dest::new(v4(a), port, fwd, w).with_thresholds(x * 10, x)
            })
    }

    fn arb_table() -> impl Strategy<Value = Table> {
        proptest::collection::vec(
            arb_key()
                .prop_flat_map(|k| (arb_service(k), proptest::collection::vec(arb_dest(), 0..4))),
            0..5,
        )
        .prop_map(|entries| {
            let mut t = Table::new();
            for (s, dests) in entries {
                let k = s.key;
                t.insert_service(s);
                for d in dests {
                    t.insert_dest(&k, d).unwrap();
                }
            }
            t
        })
    }

    proptest! {
        #[test]
        fn diff_then_apply_yields_desired(cur in arb_table(), want in arb_table()) {
            let ops = diff(&cur, &want, &Scope::All);
            let mut t = cur.clone();
            t.apply(&ops).unwrap();
            prop_assert!(t.same_config(&want), "ops {ops:?}");
            prop_assert!(diff(&t, &want, &Scope::All).is_empty());
            prop_assert!(diff(&want, &want, &Scope::All).is_empty());
        }

        #[test]
        fn scoped_diff_keeps_the_rest(cur in arb_table(), want in arb_table(), pick in any::<u8>()) {
            // manage the desired services plus every other current one whose bit is set
            let managed: BTreeSet<ServiceKey> = cur.keys().enumerate()
                .filter(|(i, _)| pick & (1 << (i % 8)) != 0).map(|(_, k)| *k).collect();
            let ops = diff(&cur, &want, &Scope::Services(managed.clone()));
            let mut t = cur.clone();
            t.apply(&ops).unwrap();
            for k in want.keys() {
                prop_assert!(t.subset([k]).same_config(&want.subset([k])));
            }
            for (k, e) in &cur.entries {
                if want.get(k).is_none() {
                    if managed.contains(k) {
                        prop_assert!(t.get(k).is_none());
                    } else {
                        prop_assert_eq!(t.get(k), Some(e));
                    }
                }
            }
        }
    }
}
