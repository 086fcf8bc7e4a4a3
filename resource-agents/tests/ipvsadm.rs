//! The ipvsadm agent on this IPVS-less kernel, through hanet's file
//! backend (`HANET_IPVS_BACKEND=file:...`, the kernel's semantics): load,
//! monitor, stop removing only what it added, reload, bad rules files,
//! v1/LSB calls. The same round trip against a real kernel IPVS table runs
//! in the guest (tests/ipvsadm_guest.rs).

mod common;

use hanet::ipvs::{self, Dest, FileBackend, Forward, IpvsBackend, Service, ServiceKey};
use std::net::Ipv4Addr;

use common::{Agents, SEED_RULES};

struct World {
    ag: Agents,
    ns: lab::Netns,
    rules: String,
    table: std::path::PathBuf,
    backend_env: String,
}

impl World {
    fn new(rules_text: &str) -> World {
        let ag = Agents::new();
        let ns = lab::Netns::new("raip");
        let rules = ag.dir.path().join("ipvsadm.rules");
        std::fs::write(&rules, rules_text).unwrap();
        let table = ag.dir.path().join("ipvs.json");
        World {
            rules: rules.to_str().unwrap().into(),
            backend_env: format!("file:{}", table.display()),
            table,
            ag,
            ns,
        }
    }

    fn ocf(&self, action: &str, extra: &[(&str, &str)]) -> common::Run {
        let mut env = vec![
            ("OCF_RESOURCE_INSTANCE", "ipvs"),
            ("OCF_RESKEY_rules", self.rules.as_str()),
            ("HANET_IPVS_BACKEND", self.backend_env.as_str()),
        ];
        env.extend_from_slice(extra);
        self.ag.run(&self.ns, "ipvsadm", &[action], &env)
    }

    fn backend(&self) -> FileBackend {
        FileBackend::new(&self.table)
    }

    fn saved(&self) -> String {
        ipvs::save(&self.backend().table().unwrap())
    }
}

fn seed_key() -> ServiceKey {
    ServiceKey::tcp(Ipv4Addr::new(192, 168, 136, 10), 80)
}

#[test]
fn load_monitor_and_remove_only_what_was_added() {
    let w = World::new(SEED_RULES);
    // somebody else's service, and the seed service already there with one real
    let other = ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 443);
    let mut be = w.backend();
    be.add_service(&Service::new(other).with_scheduler("wlc").unwrap())
        .unwrap();
    be.add_service(&Service::new(seed_key()).with_scheduler("rr").unwrap())
        .unwrap();
    be.add_dest(
        &seed_key(),
        &Dest::new(Ipv4Addr::new(192, 168, 136, 101), 80, Forward::Tunnel, 1),
    )
    .unwrap();
    let before = w.saved();
    w.ocf("monitor", &[]).rc(7);
    w.ocf("start", &[]).rc(0);
    let want = ipvs::save(&ipvs::parse_table(SEED_RULES).unwrap());
    let now = w.saved();
    assert!(now.contains(&want), "table:\n{now}\nmissing:\n{want}");
    assert!(now.contains("-A -t 10.0.0.1:443 -s wlc"), "{now}");
    w.ocf("monitor", &[]).rc(0);
    w.ocf("start", &[]).rc(0);
    assert_eq!(w.saved(), now);
    // ldirectord quiesces a real server: level 0 still fine, level 10 sees the drift
    be.edit_dest(
        &seed_key(),
        &Dest::new(Ipv4Addr::new(192, 168, 136, 102), 80, Forward::Tunnel, 0),
    )
    .unwrap();
    w.ocf("monitor", &[]).rc(0);
    w.ocf("monitor", &[("OCF_CHECK_LEVEL", "10")]).rc(7);
    w.ocf("stop", &[]).rc(0);
    assert_eq!(
        w.saved(),
        before,
        "stop must leave exactly what was there before"
    );
    w.ocf("monitor", &[]).rc(7);
    w.ocf("stop", &[]).rc(0);
    assert_eq!(w.ag.state_files(), Vec::<String>::new());
}

#[test]
fn monitor_notices_a_vanished_service_and_reload_applies_changes() {
    let w = World::new(SEED_RULES);
    w.ocf("start", &[]).rc(0);
    w.backend().del_service(&seed_key()).unwrap();
    let st = w.ocf("status", &[]);
    st.rc(7);
    assert!(st.stdout.contains("missing from the IPVS table"), "{st:?}");
    w.ocf("start", &[]).rc(0);
    w.ocf("monitor", &[]).rc(0);
    // a new file: the seed service goes, a UDP service comes
    std::fs::write(
        &w.rules,
        "-A -u 192.168.136.10:53 -s wrr\n-a -u 192.168.136.10:53 -r 192.168.136.101:53 -m -w 3\n",
    )
    .unwrap();
    w.ocf("reload", &[]).rc(0);
    let now = w.saved();
    assert_eq!(
        now,
        "-A -u 192.168.136.10:53 -s wrr\n-a -u 192.168.136.10:53 -r 192.168.136.101:53 -m -w 3\n"
    );
    w.ocf("monitor", &[]).rc(0);
    w.ocf("stop", &[]).rc(0);
    assert_eq!(w.saved(), "");
}

#[test]
fn bad_rules_files_change_nothing() {
    let w = World::new(SEED_RULES);
    w.ocf("start", &[]).rc(0);
    let before = w.saved();
    std::fs::write(
        &w.rules,
        "-A -t 192.168.136.10:80 -s rr\n-a -t 192.168.136.10:80 -r 192.168.136.11:80 -q\n",
    )
    .unwrap();
    for action in ["start", "monitor", "validate-all", "reload"] {
        let r = w.ocf(action, &[]);
        r.rc(6);
        assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
        assert!(
            r.stderr
                .starts_with(&format!("ocf-exit-reason:{}:2: ", w.rules)),
            "{r:?}"
        );
    }
    let r = w.ocf("start", &[("OCF_RESKEY_rules", "/nonexistent/ipvsadm")]);
    r.rc(6);
    assert!(
        r.stderr.contains("/nonexistent/ipvsadm: cannot read"),
        "{r:?}"
    );
    assert_eq!(w.saved(), before);
    // an unusable backend setting is a configuration error too
    let r = w.ocf("monitor", &[("HANET_IPVS_BACKEND", "bogus")]);
    std::fs::write(&w.rules, SEED_RULES).unwrap();
    let r2 = w.ocf("monitor", &[("HANET_IPVS_BACKEND", "bogus")]);
    assert_eq!((r.rc, r2.rc), (6, 6), "{r:?} {r2:?}");
    // stop needs only the agent's record: a file broken while the resource
    // runs must not block the stop (and so the failover)
    std::fs::write(&w.rules, "-A -t garbage\n").unwrap();
    let r = w.ocf("stop", &[]);
    r.rc(0);
    assert!(
        r.stderr.contains("stopping from the agent's own record"),
        "{r:?}"
    );
    assert_eq!(w.saved(), "", "stop left the file's services");
    w.ocf("stop", &[]).rc(0);
}

#[test]
fn v1_and_lsb_calls() {
    let w = World::new(SEED_RULES);
    let env = [("HANET_IPVS_BACKEND", w.backend_env.as_str())];
    let st = w.ag.run(&w.ns, "ipvsadm", &[&w.rules, "status"], &env);
    assert!(st.stdout.starts_with("stopped"), "{st:?}");
    w.ag.run(&w.ns, "ipvsadm", &[&w.rules, "start"], &env).rc(0);
    let st = w.ag.run(&w.ns, "ipvsadm", &[&w.rules, "status"], &env);
    st.rc(0);
    assert!(st.stdout.starts_with("running (1 service(s) of"), "{st:?}");
    // LSB: verb only, the file from the environment
    let lsb = [
        ("HANET_IPVS_BACKEND", w.backend_env.as_str()),
        ("OCF_RESKEY_rules", w.rules.as_str()),
    ];
    w.ag.run(&w.ns, "ipvsadm", &["status"], &lsb).rc(0);
    w.ag.run(&w.ns, "ipvsadm", &["stop"], &lsb).rc(0);
    w.ag.run(&w.ns, "ipvsadm", &["status"], &lsb).rc(3);
    assert_eq!(w.saved(), "");
}

#[test]
fn kernel_without_ipvs_is_not_installed() {
    let w = World::new(SEED_RULES);
    let mut c = w.ag.cmd(&w.ns, "ipvsadm", &["start"]);
    c.env("OCF_RESOURCE_INSTANCE", "ipvs")
        .env("OCF_RESKEY_rules", &w.rules)
        .env_remove("HANET_IPVS_BACKEND");
    let r = common::Run::from(lab::run(&mut c));
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        r.rc(0);
    } else {
        r.rc(5);
        assert!(r.stderr.contains("IPVS not available"), "{r:?}");
    }
}
