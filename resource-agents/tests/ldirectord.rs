//! The ldirectord OCF wrapper against a stand-in that honours the daemon's
//! CLI (start/stop/status/reload, exit codes, pid file): status mapping,
//! stale pid files, configuration errors, a daemon that ignores `stop`,
//! reload, missing binary/config, and v1 status text on stdout.

mod common;

use std::time::Duration;

use common::{ldirectord_standin, Agents};

struct World {
    ag: Agents,
    ns: lab::Netns,
    cf: String,
    pidfile: String,
    bin: String,
}

impl World {
    fn new() -> World {
        let ag = Agents::new();
        let ns = lab::Netns::new("rald");
        let bin = ldirectord_standin(ag.dir.path());
        let cf = ag.dir.path().join("ldirectord.cf");
        std::fs::write(
            &cf,
            "checktimeout=3\nvirtual=10.99.0.10:80\n\treal=10.99.0.101:80 ipip\n",
        )
        .unwrap();
        let pidfile = ag.dir.path().join("ld.pid");
        World {
            cf: cf.to_str().unwrap().into(),
            pidfile: pidfile.to_str().unwrap().into(),
            bin: bin.to_str().unwrap().into(),
            ag,
            ns,
        }
    }

    fn ocf(&self, action: &str) -> common::Run {
        let mut c = self.ag.cmd(&self.ns, "ldirectord", &[action]);
        c.env("OCF_ROOT", "/usr/lib/ocf")
            .env("OCF_RESOURCE_INSTANCE", "ld")
            .env("OCF_RESKEY_configfile", &self.cf)
            .env("OCF_RESKEY_ldirectord", &self.bin)
            .env("OCF_RESKEY_pidfile", &self.pidfile)
            .env("OCF_RESKEY_CRM_meta_timeout", "4000")
            .env("LDSTANDIN_PIDFILE", &self.pidfile);
        common::Run::from(lab::run(&mut c))
    }

    fn daemon_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(&self.pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        std::path::Path::new(&format!("/proc/{pid}"))
            .exists()
            .then_some(pid)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[test]
fn start_monitor_reload_stop() {
    let w = World::new();
    w.ocf("monitor").rc(7);
    w.ocf("reload").rc(7);
    w.ocf("start").rc(0);
    let pid = w.daemon_pid().expect("daemon running");
    w.ocf("monitor").rc(0);
    w.ocf("start").rc(0);
    assert_eq!(
        w.daemon_pid(),
        Some(pid),
        "second start must not start another"
    );
    w.ocf("reload").rc(0);
    assert_eq!(
        std::fs::read_to_string(format!("{}.reloads", w.cf)).unwrap(),
        "reloaded\n"
    );
    let st = w.ocf("status");
    st.rc(0);
    assert!(st.stdout.starts_with("running (ldirectord for"), "{st:?}");
    w.ocf("stop").rc(0);
    w.ocf("stop").rc(0);
    w.ocf("monitor").rc(7);
    assert!(w.daemon_pid().is_none());
}

#[test]
fn stale_pid_file_is_stopped() {
    let w = World::new();
    std::fs::write(&w.pidfile, "999999\n").unwrap();
    w.ocf("monitor").rc(7);
    w.ocf("stop").rc(0);
    w.ocf("start").rc(0);
    w.ocf("monitor").rc(0);
    w.ocf("stop").rc(0);
}

#[test]
fn daemon_ignoring_stop_is_terminated_by_pid() {
    let w = World::new();
    w.ocf("start").rc(0);
    let pid = w.daemon_pid().unwrap();
    std::fs::write(format!("{}.stubborn", w.cf), "").unwrap();
    let r = w.ocf("stop");
    r.rc(0);
    assert!(
        r.stderr
            .contains(&format!("sending TERM to ldirectord pid {pid}")),
        "{r:?}"
    );
    let gone = lab::wait_until(Duration::from_secs(2), || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.contains(") Z ")).then_some(())
    });
    assert!(gone.is_some());
}

#[test]
fn configuration_errors_and_missing_parts() {
    let w = World::new();
    std::fs::write(&w.cf, "BROKEN\n").unwrap();
    let r = w.ocf("monitor");
    r.rc(1);
    assert!(r.stderr.contains("has configuration errors"), "{r:?}");
    let r = w.ocf("start");
    r.rc(1);
    assert!(w.daemon_pid().is_none());
    // missing binary or configuration: not installed (5), for every action
    let mut c = w.ag.cmd(&w.ns, "ldirectord", &["monitor"]);
    c.env("OCF_RESOURCE_INSTANCE", "ld")
        .env("OCF_RESKEY_configfile", &w.cf)
        .env("OCF_RESKEY_ldirectord", "/nonexistent/ldirectord");
    let r = common::Run::from(lab::run(&mut c));
    r.rc(5);
    assert_eq!(
        r.stderr.trim(),
        "ocf-exit-reason:ldirectord binary /nonexistent/ldirectord is missing or not executable"
    );
    let mut c = w.ag.cmd(&w.ns, "ldirectord", &["start"]);
    c.env("OCF_RESOURCE_INSTANCE", "ld")
        .env("OCF_RESKEY_configfile", "/nonexistent/ld.cf")
        .env("OCF_RESKEY_ldirectord", &w.bin);
    common::Run::from(lab::run(&mut c)).rc(5);
    w.ocf("meta-data").rc(0);
}

#[test]
fn heartbeat_v1_status_text_on_stdout() {
    let w = World::new();
    let v1 = |verb: &str| {
        w.ag.run(
            &w.ns,
            "ldirectord",
            &[&w.cf, verb],
            &[
                ("OCF_RESKEY_ldirectord", &w.bin),
                ("OCF_RESKEY_pidfile", &w.pidfile),
                ("LDSTANDIN_PIDFILE", &w.pidfile),
            ],
        )
    };
    let st = v1("status");
    assert!(st.stdout.starts_with("stopped"), "{st:?}");
    v1("start").rc(0);
    let st = v1("status");
    st.rc(0);
    assert!(
        st.stdout.starts_with("running") && !st.stdout.contains("not running"),
        "{st:?}"
    );
    v1("stop").rc(0);
    assert!(v1("status").stdout.starts_with("stopped"));
}
