//! From a [`Config`] to the checks to run: one [`CheckSpec`] per distinct
//! check (a real server appearing in several virtual services with the same
//! check is checked once, as the Perl daemon does), and the memberships
//! ((virtual, real) pairs) each check's result applies to.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use regex::bytes::Regex;

use crate::config::{CheckType, Config, HttpMethod, Protocol, Real, Service, Virtual, VirtualAddr};

/// What a negotiate check speaks.
#[derive(Debug, Clone)]
pub struct Negotiate {
    pub service: Service,
    pub request: String,
    pub receive: Option<Arc<Regex>>,
    pub httpmethod: HttpMethod,
    pub virtualhost: Option<String>,
    pub login: String,
    pub passwd: String,
    /// https, pops, imaps
    pub tls: bool,
    pub sslverify: bool,
    pub sslcafile: Option<PathBuf>,
    /// http: keep the connection for the next check
    pub keepalive: bool,
}

/// How a check is done.
#[derive(Debug, Clone)]
pub enum Kind {
    /// TCP connect (open + close) within checktimeout.
    Connect,
    /// ICMP echo, `count` attempts of checktimeout each.
    Ping { count: u32 },
    /// `checkcommand VIP VPORT RIP RPORT`, exit 0 = up, killed at checktimeout.
    External { command: String, args: [String; 4] },
    /// Always up, no traffic.
    On,
    /// Never checked.
    Off,
    /// The protocol dialog, within negotiatetimeout.
    Negotiate(Arc<Negotiate>),
    /// `n` connect checks, then one negotiate check.
    Combined { n: u32, negotiate: Arc<Negotiate> },
}

/// One distinct check.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub kind: Kind,
    /// the real server's address
    pub addr: IpAddr,
    /// the port checked (checkport / real port / service default; 0 = none)
    pub port: u16,
    /// the real server's configured port (maintenance files `IP:PORT`)
    pub real_port: u16,
    /// tcp or udp socket for the dialog
    pub udp: bool,
    pub checktimeout: Duration,
    pub negotiatetimeout: Duration,
    /// the shortest checkinterval of the virtual services sharing it
    pub interval: Duration,
    /// the memberships its result applies to
    pub members: Members,
}

/// The memberships of a check: almost always one (no allocation then).
#[derive(Debug, Clone)]
pub enum Members {
    One(u32),
    Many(Vec<u32>),
}

impl Members {
    pub fn push(&mut self, m: usize) {
        let m = m as u32;
        match self {
            Members::One(a) => *self = Members::Many(vec![*a, m]),
            Members::Many(v) => v.push(m),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Members::One(_) => 1,
            Members::Many(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> usize {
        match self {
            Members::One(a) => *a as usize,
            Members::Many(v) => v[i] as usize,
        }
    }

    pub fn to_vec(&self) -> Vec<usize> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

/// A (virtual, real) pair with its check.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub v: u32,
    pub r: u32,
    pub check: u32,
}

/// All checks of a configuration.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub checks: Vec<Arc<CheckSpec>>,
    pub members: Vec<Member>,
    /// members of virtual `v`, in configuration order: `by_virtual[v]`
    pub by_virtual: Vec<Vec<usize>>,
}

fn server_str(a: IpAddr) -> String {
    match a {
        IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    }
}

/// The Perl daemon's `get_real_id_str` turned into a monitor-file id:
/// colons squeezed into one space, backslashes removed.
pub fn monitor_id(v: &Virtual, r: &Real) -> String {
    let check = match v.checktype {
        CheckType::Negotiate => format!("negotiate:{}", v.service),
        CheckType::Combined(_) => format!("combined:{}", v.service),
        CheckType::External => format!("external:{}", v.checkcommand),
        other => other.to_string(),
    };
    let raw = format!(
        "{check}:{}:{}:{}:{}:{}:{}:{}:{}:{}",
        v.protocol.as_str(),
        server_str(r.addr),
        r.port,
        v.virtualhost.as_deref().unwrap_or(""),
        v.checkport.map(|p| p.to_string()).unwrap_or_default(),
        r.weight,
        r.forward.as_str(),
        v.request_for(r),
        v.receive_for(r),
    );
    let mut out = String::with_capacity(raw.len());
    let mut prev_colon = false;
    for c in raw.chars() {
        match c {
            ':' if prev_colon => {}
            ':' => {
                out.push(' ');
                prev_colon = true;
            }
            '\\' => {}
            c => {
                out.push(c);
                prev_colon = false;
            }
        }
    }
    out
}

/// Compiles each distinct receive pattern once.
#[derive(Default)]
struct Patterns(HashMap<String, Arc<Regex>>);

impl Patterns {
    fn get(&mut self, p: &str) -> Option<Arc<Regex>> {
        if p.is_empty() {
            return None;
        }
        if let Some(r) = self.0.get(p) {
            return Some(r.clone());
        }
        // the parser has compiled it once already, so this cannot fail
        let r = Arc::new(Regex::new(p).ok()?);
        self.0.insert(p.to_string(), r.clone());
        Some(r)
    }
}

fn negotiate(v: &Virtual, r: &Real, pats: &mut Patterns) -> Negotiate {
    Negotiate {
        service: v.service,
        request: v.request_for(r).to_string(),
        receive: pats.get(v.receive_for(r)),
        httpmethod: v.httpmethod,
        virtualhost: v.virtualhost.clone(),
        login: v.login.clone(),
        passwd: v.passwd.clone(),
        tls: matches!(v.service, Service::Https | Service::Pops | Service::Imaps),
        sslverify: v.sslverify,
        sslcafile: v.sslcafile.clone(),
        keepalive: v.keepalive && v.service == Service::Http,
    }
}

/// What a check of a virtual service does, apart from the real server:
/// the parts of the sharing key common to all reals of the virtual with the
/// same request and receive (a few per configuration, interned).
fn group_key(v: &Virtual, r: &Real) -> String {
    let proto = v.protocol.as_str();
    let (t1, t2) = (v.checktimeout, v.negotiatetimeout);
    match v.checktype {
        CheckType::Negotiate | CheckType::Combined(_) => format!(
            "{} {} {} {:?} {:?} {} {:?} {:?} {:?} {} {proto} {t1} {t2} {:?} {}",
            v.checktype,
            v.service,
            v.httpmethod.as_str(),
            v.request_for(r),
            v.receive_for(r),
            v.virtualhost.as_deref().unwrap_or(""),
            v.login,
            v.passwd,
            v.sslcafile,
            v.sslverify,
            v.checkport,
            v.keepalive
        ),
        CheckType::External => format!(
            "external {:?} {} {} {proto} {t1}",
            v.checkcommand,
            v.name(),
            v.port()
        ),
        CheckType::Ping | CheckType::Connect => {
            format!(
                "{} {} {proto} {t1} {:?}",
                v.checktype, v.checkcount, v.checkport
            )
        }
        CheckType::On | CheckType::Off => format!("{}", v.checktype),
    }
}

impl Plan {
    pub fn new(cfg: &Config) -> Plan {
        let mut plan = Plan::default();
        // (group, address, check port, real port) -> check
        let mut index: HashMap<(u32, IpAddr, u16, u16), usize> = HashMap::new();
        let mut groups: HashMap<String, (u32, Option<Arc<Negotiate>>)> = HashMap::new();
        let mut pats = Patterns::default();
        for (vi, v) in cfg.virtuals.iter().enumerate() {
            let mut vm = Vec::with_capacity(v.reals.len());
            for (ri, r) in v.reals.iter().enumerate() {
                let port = v.check_port(r).unwrap_or(0);
                let next_id = groups.len() as u32;
                let (gid, neg) = groups
                    .entry(group_key(v, r))
                    .or_insert_with(|| {
                        let n =
                            matches!(v.checktype, CheckType::Negotiate | CheckType::Combined(_))
                                .then(|| Arc::new(negotiate(v, r, &mut pats)));
                        (next_id, n)
                    })
                    .clone();
                let kind = match v.checktype {
                    CheckType::Connect if v.protocol == Protocol::Udp => Kind::Ping {
                        count: v.checkcount,
                    },
                    CheckType::Connect => Kind::Connect,
                    CheckType::Ping => Kind::Ping {
                        count: v.checkcount,
                    },
                    CheckType::On => Kind::On,
                    CheckType::Off => Kind::Off,
                    CheckType::External => {
                        let vip = match v.addr {
                            VirtualAddr::Inet(sa) => server_str(sa.ip()),
                            VirtualAddr::Fwmark(m) => m.to_string(),
                        };
                        Kind::External {
                            command: v.checkcommand.clone(),
                            args: [
                                vip,
                                v.port().to_string(),
                                server_str(r.addr),
                                r.port.to_string(),
                            ],
                        }
                    }
                    CheckType::Negotiate => Kind::Negotiate(neg.expect("negotiate group")),
                    CheckType::Combined(n) => Kind::Combined {
                        n,
                        negotiate: neg.expect("negotiate group"),
                    },
                };
                let interval = Duration::from_secs(v.checkinterval as u64);
                let mi = plan.members.len();
                let key = (gid, r.addr, port, r.port);
                let ci = match index.get(&key) {
                    Some(&ci) => {
                        let c = Arc::make_mut(&mut plan.checks[ci]);
                        c.interval = c.interval.min(interval);
                        c.members.push(mi);
                        ci
                    }
                    None => {
                        plan.checks.push(Arc::new(CheckSpec {
                            kind,
                            addr: r.addr,
                            port,
                            real_port: r.port,
                            udp: v.protocol == Protocol::Udp,
                            checktimeout: Duration::from_secs(v.checktimeout as u64),
                            negotiatetimeout: Duration::from_secs(v.negotiatetimeout as u64),
                            interval,
                            members: Members::One(mi as u32),
                        }));
                        index.insert(key, plan.checks.len() - 1);
                        plan.checks.len() - 1
                    }
                };
                plan.members.push(Member {
                    v: vi as u32,
                    r: ri as u32,
                    check: ci as u32,
                });
                vm.push(mi);
            }
            plan.by_virtual.push(vm);
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, tests::FakeResolver};

    #[test]
    fn identical_checks_are_shared_across_virtuals() {
        let cfg = parse(
            concat!(
                "checkinterval=5\n",
                "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.3:80 gate\n\trequest=\"x\"\n",
                "virtual=10.0.0.9:80\n\treal=10.0.0.2:80 gate 5\n\trequest=\"x\"\n\tcheckinterval=2\n",
                "virtual=10.0.0.9:81\n\treal=10.0.0.2:80 masq\n\trequest=\"y\"\n\tservice=http\n",
            ),
            "t.cf",
            &FakeResolver,
        )
        .unwrap();
        let p = Plan::new(&cfg);
        assert_eq!(p.members.len(), 4);
        assert_eq!(
            p.checks.len(),
            3,
            "10.0.0.2 /x is one check for two virtuals"
        );
        let shared = &p.checks[p.members[0].check as usize];
        assert_eq!(shared.members.to_vec(), vec![0, 2]);
        assert_eq!(
            shared.interval,
            Duration::from_secs(2),
            "the shorter interval wins"
        );
        assert_eq!(p.by_virtual, vec![vec![0, 1], vec![2], vec![3]]);
        assert_eq!(
            monitor_id(&cfg.virtuals[0], &cfg.virtuals[0].reals[0]),
            "negotiate http tcp 10.0.0.2 80 1 gate /x ",
            "an empty receive leaves a trailing space, as in Perl"
        );
    }

    #[test]
    fn monitor_ids_like_the_perl_daemon() {
        let cfg = parse(
            "virtual=10.99.0.100:80\n\treal=10.99.0.4:80 gate\n\trequest=\"index.html\"\n\treceive=\"Other\"\n",
            "t.cf",
            &FakeResolver,
        )
        .unwrap();
        // observed in a Perl monitorfile:
        // negotiate http tcp 10.99.0.4 80 1 gate /index.html Other
        assert_eq!(
            monitor_id(&cfg.virtuals[0], &cfg.virtuals[0].reals[0]),
            "negotiate http tcp 10.99.0.4 80 1 gate /index.html Other"
        );
    }

    #[test]
    fn check_kinds() {
        let cfg = parse(
            concat!(
                "virtual=10.0.0.1:53\n\treal=10.0.0.2:53 gate\n\tchecktype=connect\n",
                "virtual=10.0.0.1:22\n\treal=10.0.0.2:22 gate\n\tchecktype=external\n\tcheckcommand=\"/bin/chk\"\n",
                "virtual=7\n\treal=10.0.0.2 gate\n\tchecktype=2\n\tservice=https\n",
            ),
            "t.cf",
            &FakeResolver,
        )
        .unwrap();
        let p = Plan::new(&cfg);
        assert!(
            matches!(p.checks[0].kind, Kind::Ping { count: 1 }),
            "connect on udp pings"
        );
        match &p.checks[1].kind {
            Kind::External { command, args } => {
                assert_eq!(command, "/bin/chk");
                assert_eq!(args, &["10.0.0.1", "22", "10.0.0.2", "22"]);
            }
            k => panic!("{k:?}"),
        }
        match &p.checks[2].kind {
            Kind::Combined { n: 2, negotiate } => assert!(negotiate.tls),
            k => panic!("{k:?}"),
        }
        assert_eq!(
            p.checks[2].port, 443,
            "fwmark real without port: the service's port"
        );
    }
}
