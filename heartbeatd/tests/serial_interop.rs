//! A REAL heartbeat 3.0.6 node (Debian package `heartbeat`, installed by
//! the test if missing) and heartbeatd, joined ONLY by the lab's null-modem
//! cable (two ptys relayed at 19200 baud; the namespaces have no network
//! but `lo`): they form a cluster (both `active`), set their ports up the
//! same way, understand every frame of each other, and fail the group over
//! and back with either of them as the primary.

mod common;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{bin, World, SHA1};
use lab::hbnode::HbNode;
use lab::hbpeer::HbPeer;
use lab::serialwire::{SerialCable, Side};
use lab::Netns;

fn world_without_lan() -> World {
    lab::require_root("serial interop tests");
    World {
        a: Netns::new("hiA"),
        b: Netns::new("hiB"),
        dir: tempfile::tempdir().unwrap(),
    }
}

/// The configuration of the node on `side` of the cable: `baud 19200`,
/// `serial <its end>`, group `alpha logres`.
fn conf(w: &World, name: &str, cable: &SerialCable, side: Side) -> PathBuf {
    let line = format!("alpha logres::{}", w.res_dir().display());
    let media = format!("baud 19200\nserial {}\n", cable.path(side).display());
    w.conf_media(name, SHA1, &line, &media, "")
}

fn real_sees(p: &HbPeer, node: &str, want: &str) -> bool {
    lab::wait_until(Duration::from_secs(30), || {
        (p.cl_status(&["nodestatus", node]).trim() == want).then_some(())
    })
    .is_some()
}

fn ours_sees(n: &HbNode, node: &str, want: &str) -> bool {
    lab::wait_until(Duration::from_secs(30), || {
        (n.cl_status(&["nodestatus", node]) == want).then_some(())
    })
    .is_some()
}

/// The port settings as `stty -g` shows its first fields (iflag, oflag,
/// cflag, lflag), VMIN, VTIME.
fn port_settings(dev: &Path) -> String {
    let fd = nix::fcntl::open(
        dev,
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_NONBLOCK,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let t = nix::sys::termios::tcgetattr(fd.as_fd()).unwrap();
    use nix::sys::termios::SpecialCharacterIndices::{VMIN, VTIME};
    format!(
        "{:x}:{:x}:{:x}:{:x} min {} time {}",
        t.input_flags.bits(),
        t.output_flags.bits(),
        t.control_flags.bits(),
        t.local_flags.bits(),
        t.control_chars[VMIN as usize],
        t.control_chars[VTIME as usize]
    )
}

fn bad_packets(n: &HbNode) -> u64 {
    let j: serde_json::Value =
        serde_json::from_slice(&n.cl(&["hbstatus", "--json"]).stdout).unwrap();
    j["media"][0]["bad"].as_u64().unwrap()
}

/// What the real node says about frames it could not take.
fn real_complaints(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("failed authentication")
                || l.contains("NV failure")
                || l.contains("illegal field")
                || l.contains("EOF in ttygets")
                || l.contains("TTY write")
        })
        .collect()
}

#[test]
fn real_3_0_6_primary_with_heartbeatd_backup_over_serial_only() {
    let w = world_without_lan();
    let cable = SerialCable::new(&w.path().join("wire"), Some(19200));
    let conf_real = conf(&w, "real", &cable, Side::A);
    let conf_ours = conf(&w, "ours", &cable, Side::B);
    let alpha_state = w.path().join("alpha");
    let mut real = HbPeer::start(&w.a, "alpha", &conf_real, &alpha_state, true);
    let mut ours = HbNode::start(
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
    let (pa, pb) = (
        cable.path(Side::A).display().to_string(),
        cable.path(Side::B).display().to_string(),
    );

    // They form a cluster over the cable alone.
    assert!(real_sees(&real, "beta", "active"), "{}", logs(&real, &ours));
    assert!(
        ours_sees(&ours, "alpha", "active"),
        "{}",
        logs(&real, &ours)
    );
    w.wait_owners(&["alpha"], 40, || logs(&real, &ours));
    assert_eq!(real.cl_status(&["hblinkstatus", "beta", &pa]), "up");
    assert_eq!(ours.cl_status(&["hblinkstatus", "alpha", &pb]), "up");
    assert!(real.log().contains(&format!("Link beta:{pa} up.")));
    // Both ends of the cable set up alike (3.0.6 did ttyA, we did ttyB).
    assert_eq!(
        port_settings(cable.device(Side::B)),
        port_settings(cable.device(Side::A))
    );
    assert_eq!(
        port_settings(cable.device(Side::A)),
        "b2:4:800008be:a30 min 1 time 1"
    );
    // Every frame understood on both sides.
    assert_eq!(bad_packets(&ours), 0, "{}", logs(&real, &ours));
    let log = real.log();
    assert!(real_complaints(&log).is_empty(), "{}", logs(&real, &ours));

    // The real node crashes: heartbeatd takes the group.
    real.kill();
    w.lose_resources("alpha");
    w.wait_owners(&["beta"], 15, || logs(&real, &ours));
    assert!(ours.log().contains("node alpha: is dead"));

    // It comes back over the cable: the group fails back to it.
    let real = HbPeer::start(&w.a, "alpha", &conf_real, &alpha_state, false);
    assert!(real_sees(&real, "beta", "active"), "{}", logs(&real, &ours));
    w.wait_owners(&["alpha"], 40, || logs(&real, &ours));
    // (the standby handshake of the failback ends with the real node's word)
    lab::wait_until(Duration::from_secs(20), || {
        ours.log()
            .contains("Other node completed standby takeover")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("failback handshake not completed\n{}", logs(&real, &ours)));
    let log = real.log();
    assert!(real_complaints(&log).is_empty(), "{}", logs(&real, &ours));
    // Ours stops while the real node still runs; the real node goes before
    // the cable does (a pty hang-up makes 3.0.6 spin on EOF).
    assert!(ours.stop(Duration::from_secs(20)), "{}", logs(&real, &ours));
    let mut real = real;
    real.kill();
}

#[test]
fn heartbeatd_primary_with_real_3_0_6_backup_over_serial_only() {
    let w = world_without_lan();
    let cable = SerialCable::new(&w.path().join("wire"), Some(19200));
    let conf_ours = conf(&w, "ours", &cable, Side::A);
    let conf_real = conf(&w, "real", &cable, Side::B);
    let mut ours = HbNode::start(
        &w.a,
        "alpha",
        &conf_ours,
        &w.path().join("alpha"),
        true,
        &bin(),
    );
    let mut real = HbPeer::start(&w.b, "beta", &conf_real, &w.path().join("beta"), true);
    let logs = |real: &HbPeer, ours: &HbNode| {
        format!(
            "--- heartbeatd alpha\n{}\n--- real beta\n{}",
            ours.log(),
            real.log()
        )
    };
    let pb = cable.path(Side::B).display().to_string();

    assert!(
        real_sees(&real, "alpha", "active"),
        "{}",
        logs(&real, &ours)
    );
    assert!(ours_sees(&ours, "beta", "active"), "{}", logs(&real, &ours));
    w.wait_owners(&["alpha"], 40, || logs(&real, &ours));
    assert_eq!(real.cl_status(&["hblinkstatus", "alpha", &pb]), "up");
    lab::wait_until(Duration::from_secs(20), || {
        // a node without groups of its own reports "local" in 3.0.6
        matches!(real.cl_status(&["rscstatus"]).trim(), "none" | "local").then_some(())
    })
    .unwrap_or_else(|| panic!("real beta never settled\n{}", logs(&real, &ours)));
    let log = real.log();
    assert!(real_complaints(&log).is_empty(), "{}", logs(&real, &ours));

    // Ours crashes: the real node takes over.
    ours.kill();
    w.lose_resources("alpha");
    w.wait_owners(&["beta"], 15, || logs(&real, &ours));
    assert!(real.log().contains("node alpha: is dead"));
    // (3.0.6 may log the link's death a moment after the node's)
    lab::wait_until(Duration::from_secs(5), || {
        real.log()
            .contains(&format!("Link alpha:{pb} dead."))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("link not declared dead\n{}", logs(&real, &ours)));

    // Ours comes back: the group fails back to it over the cable.
    ours.restart();
    assert!(
        real_sees(&real, "alpha", "active"),
        "{}",
        logs(&real, &ours)
    );
    w.wait_owners(&["alpha"], 40, || logs(&real, &ours));

    // And a graceful stop of ours hands the group to the real node.
    lab::wait_until(Duration::from_secs(20), || {
        matches!(real.cl_status(&["rscstatus"]).trim(), "none" | "local").then_some(())
    })
    .unwrap_or_else(|| panic!("real beta never settled\n{}", logs(&real, &ours)));
    assert!(ours.stop(Duration::from_secs(20)), "{}", logs(&real, &ours));
    w.wait_owners(&["beta"], 15, || logs(&real, &ours));
    assert!(
        real.log()
            .contains("Received shutdown notice from 'alpha'."),
        "{}",
        logs(&real, &ours)
    );
    real.kill();
}
