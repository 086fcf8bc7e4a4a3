//! A mixed pair: one node runs the REAL heartbeat 3.0.6 (Debian package
//! `heartbeat`, installed by the test if missing), the other heartbeatd, in
//! separate network, mount, UTS and PID namespaces. Both must see each other
//! active, and the group must fail over and back in both directions, with
//! sha1, md5, crc and mixed key indexes.

mod common;

use std::time::Duration;

use common::{bin, World};
use lab::hbnode::HbNode;
use lab::hbpeer::HbPeer;

/// Waits until the real peer reports `want` for `node`.
fn real_sees(p: &HbPeer, node: &str, want: &str) -> bool {
    lab::wait_until(Duration::from_secs(20), || {
        (p.cl_status(&["nodestatus", node]).trim() == want).then_some(())
    })
    .is_some()
}

fn ours_sees(n: &HbNode, node: &str, want: &str) -> bool {
    lab::wait_until(Duration::from_secs(20), || {
        (n.cl_status(&["nodestatus", node]) == want).then_some(())
    })
    .is_some()
}

/// The real node is alpha (home of the group), ours is beta.
fn real_primary(w: &World, keys_real: &str, keys_ours: &str) {
    let res = w.res_dir();
    let line = format!("alpha logres::{}", res.display());
    let conf_real = w.conf("real", keys_real, &line, "");
    let conf_ours = w.conf("ours", keys_ours, &line, "");
    let alpha_state = w.path().join("alpha");
    let mut real = HbPeer::start(&w.a, "alpha", &conf_real, &alpha_state, true);
    let ours = HbNode::start(
        &w.b,
        "beta",
        &conf_ours,
        &w.path().join("beta"),
        true,
        &bin(),
    );
    let logs = |real: &HbPeer, ours: &HbNode| {
        format!(
            "--- real alpha\n{}\n--- heartbeatd beta\n{}",
            real.log(),
            ours.log()
        )
    };
    assert!(real_sees(&real, "beta", "active"), "{}", logs(&real, &ours));
    assert!(
        ours_sees(&ours, "alpha", "active"),
        "{}",
        logs(&real, &ours)
    );
    w.wait_owners(&["alpha"], 40, || logs(&real, &ours));

    // The real node crashes: heartbeatd takes the group.
    real.kill();
    w.lose_resources("alpha");
    w.wait_owners(&["beta"], 15, || logs(&real, &ours));

    // It comes back: the group fails back to it.
    let mut real = HbPeer::start(&w.a, "alpha", &conf_real, &alpha_state, false);
    assert!(real_sees(&real, "beta", "active"), "{}", logs(&real, &ours));
    w.wait_owners(&["alpha"], 40, || logs(&real, &ours));
    assert!(
        ours.log().contains("Heartbeat restart on node alpha")
            || ours.log().contains("Status update for node alpha")
    );
    real.kill();
}

/// Ours is alpha (home of the group), the real node is beta.
fn ours_primary(w: &World, keys_real: &str, keys_ours: &str) {
    let res = w.res_dir();
    let line = format!("alpha logres::{}", res.display());
    let conf_real = w.conf("real", keys_real, &line, "");
    let conf_ours = w.conf("ours", keys_ours, &line, "");
    let mut ours = HbNode::start(
        &w.a,
        "alpha",
        &conf_ours,
        &w.path().join("alpha"),
        true,
        &bin(),
    );
    let real = HbPeer::start(&w.b, "beta", &conf_real, &w.path().join("beta"), true);
    let logs = |real: &HbPeer, ours: &HbNode| {
        format!(
            "--- heartbeatd alpha\n{}\n--- real beta\n{}",
            ours.log(),
            real.log()
        )
    };
    assert!(
        real_sees(&real, "alpha", "active"),
        "{}",
        logs(&real, &ours)
    );
    assert!(ours_sees(&ours, "beta", "active"), "{}", logs(&real, &ours));
    w.wait_owners(&["alpha"], 40, || logs(&real, &ours));

    // Let both settle (3.0.6 must not be mid-handshake), then stop ours
    // gracefully: the real node takes over on our shutdone.
    lab::wait_until(Duration::from_secs(20), || {
        // a node without groups of its own reports "local" in 3.0.6
        matches!(real.cl_status(&["rscstatus"]).trim(), "none" | "local").then_some(())
    })
    .unwrap_or_else(|| panic!("real beta never settled\n{}", logs(&real, &ours)));
    assert!(ours.stop(Duration::from_secs(20)));
    w.wait_owners(&["beta"], 10, || logs(&real, &ours));
    assert!(
        real.log()
            .contains("Received shutdown notice from 'alpha'."),
        "{}",
        logs(&real, &ours)
    );

    // Ours comes back: failback to ours through the standby handshake.
    ours.restart();
    w.wait_owners(&["alpha"], 40, || logs(&real, &ours));
    assert!(
        real.log().contains("wants to go standby [foreign]"),
        "{}",
        logs(&real, &ours)
    );

    // Ours crashes: the real node takes over.
    ours.kill();
    w.lose_resources("alpha");
    w.wait_owners(&["beta"], 15, || logs(&real, &ours));
    assert!(real.log().contains("node alpha: is dead"));
}

#[test]
fn real_3_0_6_primary_with_heartbeatd_backup_sha1() {
    let keys = "auth 2\n2 sha1 somesecret\n";
    real_primary(&World::new(), keys, keys);
}

#[test]
fn heartbeatd_primary_with_real_3_0_6_backup_sha1() {
    let keys = "auth 2\n2 sha1 somesecret\n";
    ours_primary(&World::new(), keys, keys);
}

#[test]
fn mixed_pair_with_md5() {
    let keys = "auth 3\n3 md5 somesecret\n";
    real_primary(&World::new(), keys, keys);
}

#[test]
fn mixed_pair_with_crc() {
    let keys = "auth 1\n1 crc\n";
    ours_primary(&World::new(), keys, keys);
}

#[test]
fn mixed_pair_with_different_sending_indexes() {
    // The real node sends with index 3 (md5), ours with 2 (sha1); both know
    // all keys (one secret: see auth.rs on 3.0.6's cross-index limitation).
    let all = "1 crc\n2 sha1 somesecret\n3 md5 somesecret\n";
    real_primary(
        &World::new(),
        &format!("auth 3\n{all}"),
        &format!("auth 2\n{all}"),
    );
}

#[test]
fn a_wrong_key_keeps_the_nodes_apart_and_is_logged() {
    let w = World::new();
    let line = "alpha logres::/nonexistent";
    let conf_real = w.conf("real", "auth 2\n2 sha1 somesecret\n", line, "");
    let conf_ours = w.conf("ours", "auth 2\n2 sha1 othersecret\n", line, "");
    let real = HbPeer::start(&w.a, "alpha", &conf_real, &w.path().join("alpha"), true);
    let ours = HbNode::start(
        &w.b,
        "beta",
        &conf_ours,
        &w.path().join("beta"),
        true,
        &bin(),
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        ours.cl_status(&["nodestatus", "alpha"]),
        "dead",
        "{}",
        ours.log()
    );
    assert!(
        ours.log().contains("authtoken does not match"),
        "{}",
        ours.log()
    );
    assert!(
        real.log().contains("authtoken does not match"),
        "{}",
        real.log()
    );
}

/// Link cut between a real 3.0.6 node and heartbeatd: both run the group;
/// link back: 3.0.6 restarts itself (its way of healing) and gives up its
/// copy, heartbeatd keeps its copy running the whole time, and the group
/// ends on its home node with exactly one owner.
fn split_brain_with_real_peer(real_is_home: bool) {
    let w = World::new();
    let res = w.res_dir();
    let line = format!("alpha logres::{}", res.display());
    let keys = "auth 2\n2 sha1 somesecret\n";
    let conf_real = w.conf("real", keys, &line, "");
    let conf_ours = w.conf("ours", keys, &line, "");
    let (real_node, ours_node) = if real_is_home {
        ("alpha", "beta")
    } else {
        ("beta", "alpha")
    };
    let (real_ns, ours_ns) = if real_is_home {
        (&w.a, &w.b)
    } else {
        (&w.b, &w.a)
    };
    let real = HbPeer::start(
        real_ns,
        real_node,
        &conf_real,
        &w.path().join(real_node),
        true,
    );
    let ours = HbNode::start(
        ours_ns,
        ours_node,
        &conf_ours,
        &w.path().join(ours_node),
        true,
        &bin(),
    );
    let logs = |real: &HbPeer, ours: &HbNode| {
        format!(
            "--- real {real_node}\n{}\n--- heartbeatd {ours_node}\n{}",
            real.log(),
            ours.log()
        )
    };
    w.wait_owners(&["alpha"], 40, || logs(&real, &ours));
    lab::wait_until(Duration::from_secs(20), || {
        matches!(real.cl_status(&["rscstatus"]).trim(), "none" | "local").then_some(())
    })
    .unwrap_or_else(|| panic!("not settled\n{}", logs(&real, &ours)));

    w.a.ip(&["link", "set", "hb0", "down"]);
    w.wait_owners(&["alpha", "beta"], 15, || logs(&real, &ours));
    w.a.ip(&["link", "set", "hb0", "up"]);
    // From the heal until 3.0.6 has restarted, somebody runs the group:
    // heartbeatd keeps its copy while 3.0.6 gives its own up. (After the
    // restart, failing back to the home node is the usual stop-then-start.)
    let restarted = format!("Heartbeat restart on node {real_node}");
    let end = std::time::Instant::now() + Duration::from_secs(45);
    let mut settled = None;
    while std::time::Instant::now() < end {
        if !ours.log().contains(&restarted) {
            assert!(
                w.runs(ours_node) || w.runs(real_node),
                "nobody runs the group after the heal\n{}",
                logs(&real, &ours)
            );
        }
        if w.runs("alpha") && !w.runs("beta") {
            settled.get_or_insert(std::time::Instant::now());
            if settled.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
                break;
            }
        } else {
            settled = None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    w.wait_owners(&["alpha"], 1, || logs(&real, &ours));
    assert!(
        ours.log().contains("returning after partition"),
        "{}",
        logs(&real, &ours)
    );
    assert!(ours
        .log()
        .contains("runs heartbeat 3.0.6 and will restart itself"));
}

#[test]
fn split_brain_heals_with_a_real_3_0_6_home_node() {
    split_brain_with_real_peer(true);
}

#[test]
fn split_brain_heals_with_a_real_3_0_6_backup_node() {
    split_brain_with_real_peer(false);
}
