//! Two REAL heartbeat 3.0.6 nodes, `alpha` and `beta`, on a veth pair in two
//! network namespaces: they see each other active, alpha runs its group,
//! a crash of alpha moves the group to beta, a restart keeps the state
//! directory (the generation goes up by one), failback and graceful
//! handover work, the daemonizing restart after a healed partition is
//! followed, and nothing is left behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lab::hbpeer::{default_ha_cf, HbPeer};
use lab::{veth, wait_until, Netns};

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let p = std::env::temp_dir().join(lab::unique_name("hbpeer-test-"));
        fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A resource script that logs its calls with a timestamp to `log` and
/// keeps its state in the instance's private /run.
fn resource_script(log: &Path) -> String {
    format!(
        r#"#!/bin/sh
# hbtest ARG... VERB: heartbeat passes the arguments, then the verb
for verb; do :; done
state=/run/hbtest.$1
case "$verb" in
start)  touch "$state"; echo "$(date +%s.%N) $(uname -n) start $1" >> {log} ;;
stop)   rm -f "$state"; echo "$(date +%s.%N) $(uname -n) stop $1" >> {log} ;;
status) if [ -e "$state" ]; then echo running; else echo stopped; fi ;;
esac
exit 0
"#,
        log = log.display()
    )
}

/// How often `node` ran `verb` on the resource.
fn count(log: &Path, node: &str, verb: &str) -> usize {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!(" {node} {verb} ")))
        .count()
}

/// The config directory both nodes use (alpha prefers group `grp1`) and
/// the resource log.
fn config(tmp: &Scratch) -> (PathBuf, PathBuf) {
    let rsc_log = tmp.path().join("rsc.log");
    let conf = tmp.path().join("conf");
    fs::create_dir_all(conf.join("resource.d")).unwrap();
    fs::write(conf.join("ha.cf"), default_ha_cf("hb0", &["alpha", "beta"])).unwrap();
    fs::write(conf.join("haresources"), "alpha hbtest::grp1\n").unwrap();
    fs::write(conf.join("authkeys"), "auth 2\n2 sha1 somesecret\n").unwrap();
    let script = conf.join("resource.d/hbtest");
    fs::write(&script, resource_script(&rsc_log)).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    (conf, rsc_log)
}

fn both_active(a: &HbPeer, b: &HbPeer) -> bool {
    a.cl_status(&["nodestatus", b.node()]) == "active"
        && b.cl_status(&["nodestatus", a.node()]) == "active"
}

fn netns_exists(name: &str) -> bool {
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&list.stdout)
        .split_whitespace()
        .any(|w| w == name)
}

#[test]
fn two_real_nodes_see_each_other_and_run_the_group() {
    lab::require_root("the real heartbeat 3.0.6 peer test");
    lab::ensure_packages(&["heartbeat"]);
    let tmp = Scratch::new();
    let (conf, rsc_log) = config(&tmp);

    let (ns_names, all_pids) = {
        let na = Netns::new("hba");
        let nb = Netns::new("hbb");
        veth(&na, "hb0", "10.99.0.1/24", &nb, "hb0", "10.99.0.2/24");
        let mut alpha = HbPeer::start(&na, "alpha", &conf, &tmp.path().join("alpha"), true);
        let mut beta = HbPeer::start(&nb, "beta", &conf, &tmp.path().join("beta"), true);

        assert!(
            wait_until(Duration::from_secs(20), || both_active(&alpha, &beta)
                .then_some(()))
            .is_some(),
            "the nodes did not see each other active\n--- alpha:\n{}\n--- beta:\n{}",
            alpha.log(),
            beta.log()
        );
        assert_eq!(
            alpha.cl_status(&["hbstatus"]),
            "Heartbeat is running on this machine."
        );
        let nodes = alpha.cl_status(&["listnodes"]);
        assert!(nodes.contains("alpha") && nodes.contains("beta"), "{nodes}");
        assert_eq!(alpha.cl_status(&["nodestatus", "alpha"]), "active");

        // alpha runs its own group
        assert!(
            wait_until(Duration::from_secs(30), || (count(
                &rsc_log, "alpha", "start"
            ) == 1)
                .then_some(()))
            .is_some(),
            "alpha did not start its group\n--- log:\n{}",
            alpha.log()
        );
        assert_eq!(count(&rsc_log, "beta", "start"), 0);
        assert!(
            wait_until(Duration::from_secs(20), || {
                (alpha.cl_status(&["rscstatus"]) == "local"
                    || alpha.cl_status(&["rscstatus"]) == "all")
                    .then_some(())
            })
            .is_some(),
            "rscstatus on alpha: {}",
            alpha.cl_status(&["rscstatus"])
        );

        // crash alpha: beta declares it dead and takes the group
        let alpha_gen = alpha
            .generation()
            .expect("hb_generation kept in the state dir");
        let mut pids = Vec::new();
        let alpha_pids = alpha.pids();
        assert!(alpha_pids.len() > 3, "{alpha_pids:?}");
        alpha.kill();
        assert!(!alpha.is_running());
        assert!(alpha_pids
            .iter()
            .all(|p| !Path::new(&format!("/proc/{p}")).exists()));
        assert!(
            wait_until(Duration::from_secs(10), || {
                (beta.cl_status(&["nodestatus", "alpha"]) == "dead"
                    && count(&rsc_log, "beta", "start") == 1)
                    .then_some(())
            })
            .is_some(),
            "beta did not take over\n--- beta:\n{}",
            beta.log()
        );

        // restart alpha on its kept state: the generation goes up by one,
        // it rejoins and gets its group back (auto_failback on)
        pids.extend(alpha_pids);
        alpha = HbPeer::start(&na, "alpha", &conf, &tmp.path().join("alpha"), false);
        assert!(
            wait_until(Duration::from_secs(10), || {
                (alpha.generation() == Some(alpha_gen + 1)).then_some(())
            })
            .is_some(),
            "generation after restart: {:?}, before: {alpha_gen}",
            alpha.generation()
        );
        assert!(
            wait_until(Duration::from_secs(20), || both_active(&alpha, &beta)
                .then_some(()))
            .is_some(),
            "alpha did not rejoin\n--- alpha:\n{}",
            alpha.log()
        );
        let settled = |holder: &HbPeer, other: &HbPeer| {
            matches!(holder.cl_status(&["rscstatus"]).as_str(), "local" | "all")
                // "local" for a node whose own (here: no) groups it holds
                && matches!(other.cl_status(&["rscstatus"]).as_str(), "none" | "local")
        };
        assert!(
            wait_until(Duration::from_secs(30), || {
                (count(&rsc_log, "alpha", "start") == 2
                    && count(&rsc_log, "beta", "stop") == 1
                    && settled(&alpha, &beta))
                .then_some(())
            })
            .is_some(),
            "no failback to alpha (rscstatus alpha {:?}, beta {:?}; resource log:\n{})\n\
             --- alpha:\n{}\n--- beta:\n{}",
            alpha.cl_status(&["rscstatus"]),
            beta.cl_status(&["rscstatus"]),
            fs::read_to_string(&rsc_log).unwrap_or_default(),
            alpha.log(),
            beta.log()
        );

        // graceful stop of the holder: beta takes the group over at once
        pids.extend(alpha.pids());
        assert!(
            alpha.stop(Duration::from_secs(30)),
            "alpha did not stop gracefully\n{}",
            alpha.log()
        );
        assert_eq!(count(&rsc_log, "alpha", "stop"), 1);
        assert!(
            wait_until(Duration::from_secs(10), || {
                (count(&rsc_log, "beta", "start") == 2 && beta.cl_status(&["rscstatus"]) == "all")
                    .then_some(())
            })
            .is_some(),
            "beta did not take over after alpha's shutdown\n--- beta:\n{}",
            beta.log()
        );
        pids.extend(beta.pids());
        assert!(
            beta.stop(Duration::from_secs(30)),
            "beta did not stop gracefully\n{}",
            beta.log()
        );
        assert_eq!(
            count(&rsc_log, "beta", "stop"),
            2,
            "beta released the group"
        );

        // a fresh state dir: 3.0.6 starts a new generation from the clock
        alpha = HbPeer::start(&na, "alpha", &conf, &tmp.path().join("alpha"), true);
        assert!(
            wait_until(Duration::from_secs(10), || alpha
                .log()
                .contains("No Previous generation - starting at")
                .then_some(()))
            .is_some(),
            "{}",
            alpha.log()
        );
        pids.extend(alpha.pids());
        alpha.kill();
        ((na.name().to_owned(), nb.name().to_owned()), pids)
    };

    // nothing left: no processes of the instances, no namespaces
    for p in all_pids {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists(),
            "process {p} survived"
        );
    }
    for n in [ns_names.0, ns_names.1] {
        assert!(!netns_exists(&n), "netns {n} left behind");
    }
}

/// A link cut while both run makes both hold the group; when it heals,
/// 3.0.6 gives everything up and restarts itself by re-executing heartbeat
/// without -f (it daemonizes, the first pid exits). HbPeer must follow the
/// new master control process. Which node restarts depends on timing (the
/// one that logs the other "returning after partition"; sometimes both),
/// so the test follows whichever does.
#[test]
fn partition_heal_restart_is_followed() {
    lab::require_root("the real heartbeat 3.0.6 peer test");
    lab::ensure_packages(&["heartbeat"]);
    let tmp = Scratch::new();
    let (conf, rsc_log) = config(&tmp);
    let na = Netns::new("hbc");
    let nb = Netns::new("hbd");
    veth(&na, "hb0", "10.99.0.1/24", &nb, "hb0", "10.99.0.2/24");
    let mut alpha = HbPeer::start(&na, "alpha", &conf, &tmp.path().join("alpha"), true);
    let mut beta = HbPeer::start(&nb, "beta", &conf, &tmp.path().join("beta"), true);
    assert!(
        wait_until(Duration::from_secs(30), || {
            (both_active(&alpha, &beta) && count(&rsc_log, "alpha", "start") == 1).then_some(())
        })
        .is_some(),
        "no cluster\n--- alpha:\n{}",
        alpha.log()
    );
    let first_masters = [alpha.master_pid().unwrap(), beta.master_pid().unwrap()];

    // cut: both own the group
    na.ip(&["link", "set", "hb0", "down"]);
    assert!(
        wait_until(Duration::from_secs(10), || (count(
            &rsc_log, "beta", "start"
        ) == 1)
            .then_some(()))
        .is_some(),
        "beta did not take the group during the partition\n{}",
        beta.log()
    );
    // heal: both restart themselves (a new master pid)
    na.ip(&["link", "set", "hb0", "up"]);
    let restarted = wait_until(Duration::from_secs(30), || {
        [&alpha, &beta]
            .into_iter()
            .zip(first_masters)
            .position(|(n, first)| n.master_pid().is_some_and(|m| m != first))
    });
    let Some(restarted) = restarted else {
        panic!(
            "neither node restarted after the partition\n--- alpha:\n{}\n--- beta:\n{}",
            alpha.log(),
            beta.log()
        );
    };
    let node = [&alpha, &beta][restarted];
    assert!(
        node.log().contains("returning after partition"),
        "{}",
        node.log()
    );
    assert!(alpha.is_running() && beta.is_running());
    assert!(
        wait_until(Duration::from_secs(30), || both_active(&alpha, &beta)
            .then_some(()))
        .is_some(),
        "no cluster after the restart\n--- alpha:\n{}\n--- beta:\n{}",
        alpha.log(),
        beta.log()
    );
    let pids: Vec<i32> = alpha.pids().into_iter().chain(beta.pids()).collect();
    alpha.kill();
    beta.kill();
    let names = (na.name().to_owned(), nb.name().to_owned());
    drop((na, nb));
    for p in pids {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists(),
            "process {p} survived"
        );
    }
    assert!(!netns_exists(&names.0) && !netns_exists(&names.1));
}
