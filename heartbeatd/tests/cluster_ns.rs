//! Two heartbeatd nodes in network namespaces: join, crash, failback,
//! graceful handover, link cut (both own) and heal (one owner), standby and
//! takeover, cl_status, bad packets. Runs as root; creates and removes its
//! namespaces.

mod common;

use std::time::Duration;

use common::{bin, World, SHA1};
use lab::hbnode::HbNode;

#[test]
fn two_heartbeatd_nodes_through_crash_failback_handover_and_split_brain() {
    let w = World::new();
    let res = w.res_dir();
    let conf = w.conf(
        "conf",
        SHA1,
        &format!("alpha logres::{}", res.display()),
        "",
    );
    let mut a = HbNode::start(&w.a, "alpha", &conf, &w.path().join("alpha"), true, &bin());
    let mut b = HbNode::start(&w.b, "beta", &conf, &w.path().join("beta"), true, &bin());
    let logs = |a: &HbNode, b: &HbNode| format!("--- alpha\n{}\n--- beta\n{}", a.log(), b.log());

    // Join: alpha runs its group, both see both active.
    w.wait_owners(&["alpha"], 30, || logs(&a, &b));
    for n in [&a, &b] {
        assert_eq!(n.cl_status(&["nodestatus", "alpha"]), "active");
        assert_eq!(n.cl_status(&["nodestatus", "beta"]), "active");
        assert_eq!(n.cl_status(&["hblinkstatus", "alpha", "hb0"]), "up");
    }
    assert_eq!(a.cl_status(&["rscstatus"]), "local");

    // Crash of alpha (process and resources gone): beta takes over.
    a.kill();
    w.lose_resources("alpha");
    w.wait_owners(&["beta"], 10, || logs(&a, &b));
    assert!(b.log().contains("node alpha: is dead"), "{}", b.log());
    assert_eq!(b.cl_status(&["nodestatus", "alpha"]), "dead");
    assert!(!b.cl(&["nodestatus", "alpha"]).status.success());

    // alpha returns: the group fails back (auto_failback on).
    a.restart();
    w.wait_owners(&["alpha"], 30, || logs(&a, &b));
    let ev = w.events();
    let stop_b = ev.find("beta stop").expect("beta stopped the group");
    let start_a = ev.rfind("alpha start").expect("alpha started it");
    assert!(stop_b < start_a, "beta stops before alpha starts:\n{ev}");

    // Graceful stop of alpha: beta takes over at once.
    lab::wait_until(Duration::from_secs(15), || {
        // (like 3.0.6, a node without groups of its own reports "local")
        (matches!(b.cl_status(&["rscstatus"]).as_str(), "none" | "local")
            && a.cl_status(&["rscstatus"]) == "local")
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "not settled: alpha {} beta {}\n{}",
            a.cl_status(&["rscstatus"]),
            b.cl_status(&["rscstatus"]),
            logs(&a, &b)
        )
    });
    assert!(a.stop(Duration::from_secs(20)), "heartbeatd -k timed out");
    w.wait_owners(&["beta"], 5, || logs(&a, &b));
    assert!(b.log().contains("Received shutdown notice from 'alpha'."));
    assert!(a.log().contains("All HA resources relinquished."));

    // alpha back; then the link is cut: both run the group.
    a.restart();
    w.wait_owners(&["alpha"], 30, || logs(&a, &b));
    w.a.ip(&["link", "set", "hb0", "down"]);
    w.wait_owners(&["alpha", "beta"], 10, || logs(&a, &b));
    // Link back: one owner again, the home node, without restarts.
    let pid_a = a.pid();
    w.a.ip(&["link", "set", "hb0", "up"]);
    w.wait_owners(&["alpha"], 15, || logs(&a, &b));
    assert!(
        b.log().contains("returning after partition")
            || a.log().contains("returning after partition"),
        "{}",
        logs(&a, &b)
    );
    assert!(a.is_running() && b.is_running());
    assert_eq!(a.pid(), pid_a, "no restart");
    a.stop(Duration::from_secs(20));
    b.stop(Duration::from_secs(20));
}

#[test]
fn standby_and_takeover_from_the_command_line() {
    let w = World::new();
    let res = w.res_dir();
    let conf = w.conf(
        "conf",
        SHA1,
        &format!("alpha logres::{}", res.display()),
        "",
    );
    let a = HbNode::start(&w.a, "alpha", &conf, &w.path().join("alpha"), true, &bin());
    let b = HbNode::start(&w.b, "beta", &conf, &w.path().join("beta"), true, &bin());
    let logs = || format!("--- alpha\n{}\n--- beta\n{}", a.log(), b.log());
    w.wait_owners(&["alpha"], 30, logs);
    lab::wait_until(Duration::from_secs(15), || {
        matches!(b.cl_status(&["rscstatus"]).as_str(), "none" | "local").then_some(())
    });
    let out = a.tool("hb_standby", &[]);
    assert!(out.status.success(), "{out:?}");
    w.wait_owners(&["beta"], 15, logs);
    lab::wait_until(Duration::from_secs(15), || {
        (b.cl_status(&["rscstatus"]) == "all").then_some(())
    })
    .unwrap_or_else(|| panic!("{}", logs()));
    let out = a.tool("hb_takeover", &["local"]);
    assert!(out.status.success(), "{out:?}");
    w.wait_owners(&["alpha"], 15, logs);
    // Bad arguments are refused with the scripts' exit status 1.
    let out = a.tool("hb_standby", &["everything"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong resources(everything)"));
}

#[test]
fn cl_status_speaks_like_3_0_6_and_json() {
    let w = World::new();
    let conf = w.conf("conf", SHA1, "alpha logres::/nonexistent", "");
    let a = HbNode::start(&w.a, "alpha", &conf, &w.path().join("alpha"), true, &bin());
    assert_eq!(
        a.cl_status(&["hbstatus"]),
        "Heartbeat is running on this machine."
    );
    assert_eq!(a.cl_status(&["listnodes"]), "alpha\nbeta");
    assert_eq!(a.cl_status(&["nodetype", "beta"]), "normal");
    assert_eq!(a.cl_status(&["listhblinks", "beta"]), "hb0");
    assert_eq!(a.cl_status(&["hbparameter", "-p", "deadtime"]), "1000");
    let bad = a.cl(&["nodestatus", "gamma"]);
    assert_eq!(bad.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("incorrect node name"));
    assert_eq!(a.cl(&["frobnicate"]).status.code(), Some(11));
    let j: serde_json::Value =
        serde_json::from_slice(&a.cl(&["hbstatus", "--json"]).stdout).unwrap();
    assert_eq!(j["node"], "alpha");
    assert_eq!(j["nodes"][1]["name"], "beta");
    // Not running: the classic answer and status 1.
    let out = std::process::Command::new(bin().with_file_name("cl_status"))
        .arg("hbstatus")
        .env("HEARTBEATD_SOCKET", w.path().join("nothing.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Heartbeat is stopped on this machine."
    );
}

#[test]
fn forged_and_garbage_packets_are_dropped_counted_and_logged_without_harm() {
    let w = World::new();
    let conf = w.conf("conf", SHA1, "alpha logres::/nonexistent", "");
    let a = HbNode::start(&w.a, "alpha", &conf, &w.path().join("alpha"), true, &bin());
    lab::wait_until(Duration::from_secs(10), || {
        (a.cl_status(&["nodestatus", "alpha"]) == "active").then_some(())
    })
    .expect("alpha becomes active alone after initdead");
    // From beta's namespace: garbage, a packet signed with the wrong key,
    // a truncated netstring, an oversized datagram.
    let forged = {
        let mut m = heartbeatd::wire::Message::new("status");
        m.add("st", "active")
            .add("src", "beta")
            .add("seq", "1")
            .add("hg", "1")
            .add("ts", "6b0249a1");
        m.encode_netstring(&heartbeatd::auth::Keyring::single(
            2,
            heartbeatd::auth::AuthMethod::Sha1(b"wrong".to_vec()),
        ))
    };
    let script = format!(
        "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1)\n\
         for p in [b'hello', bytes.fromhex('{}'), b'###\\n5:(0)t=x', b'x'*60000]:\n\
         \x20   s.sendto(p,('10.91.0.255',694))\n",
        forged
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let out = w.b.cmd("python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(Duration::from_millis(500));
    let j: serde_json::Value =
        serde_json::from_slice(&a.cl(&["hbstatus", "--json"]).stdout).unwrap();
    assert_eq!(j["media"][0]["bad"], 4, "{j}");
    let log = a.log();
    assert!(
        log.contains("authtoken does not match") || log.contains("authentication failed"),
        "{log}"
    );
    // Still healthy, beta never counted as alive.
    assert_eq!(a.cl_status(&["nodestatus", "alpha"]), "active");
    assert_ne!(a.cl_status(&["nodestatus", "beta"]), "active");
}

/// One pass of join + crash takeover over the given media lines.
fn media_pair(media: &str) {
    let w = World::new();
    let res = w.res_dir();
    let conf = w.conf_media(
        "conf",
        SHA1,
        &format!("alpha logres::{}", res.display()),
        media,
        "",
    );
    let mut a = HbNode::start(&w.a, "alpha", &conf, &w.path().join("alpha"), true, &bin());
    let b = HbNode::start(&w.b, "beta", &conf, &w.path().join("beta"), true, &bin());
    let logs = |a: &HbNode, b: &HbNode| format!("--- alpha\n{}\n--- beta\n{}", a.log(), b.log());
    w.wait_owners(&["alpha"], 30, || logs(&a, &b));
    assert_eq!(
        b.cl_status(&["nodestatus", "alpha"]),
        "active",
        "{}",
        logs(&a, &b)
    );
    assert_eq!(b.cl_status(&["hblinkstatus", "alpha", "hb0"]), "up");
    a.kill();
    w.lose_resources("alpha");
    w.wait_owners(&["beta"], 10, || logs(&a, &b));
}

#[test]
fn ucast_medium_with_one_line_per_node_in_a_shared_ha_cf() {
    // The line naming this node's own address is a no-op, as in 3.0.6.
    media_pair("ucast hb0 10.91.0.1\nucast hb0 10.91.0.2\n");
}

#[test]
fn mcast_medium() {
    media_pair("mcast hb0 239.0.0.94 694 1 0\n");
}

#[test]
fn a_missing_interface_is_refused_before_anything_starts() {
    let w = World::new();
    let conf = w.conf_media(
        "conf",
        SHA1,
        "alpha logres::/nonexistent",
        "bcast nosuch0\n",
        "",
    );
    let st = w.path().join("alpha");
    std::fs::create_dir_all(st.join("run")).unwrap();
    std::fs::write(conf.join("nodeinfo"), "alpha\n").unwrap();
    let out =
        w.a.cmd(bin().to_str().unwrap())
            .args(["-f", "-c"])
            .arg(&conf)
            .arg("--state-dir")
            .arg(st.join("state"))
            .arg("--run-dir")
            .arg(st.join("run"))
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ha.cf:6: bcast nosuch0"), "{err}");
    // Nothing left behind: no pid file, no socket, no state.
    assert!(!st.join("run/heartbeat.pid").exists());
    assert!(!st.join("run/heartbeat/heartbeatd.sock").exists());
    assert!(!st.join("state").exists());
}

#[test]
fn a_bad_configuration_is_refused_with_file_line_and_status_6() {
    let w = World::new();
    let conf = w.conf(
        "conf",
        SHA1,
        "alpha logres::/nonexistent",
        "crm on\nkeepalive 2s\n",
    );
    std::fs::write(conf.join("nodeinfo"), "alpha\n").unwrap();
    let out = std::process::Command::new(bin())
        .args(["--check", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ha.cf:10:") && err.contains("Pacemaker"),
        "{err}"
    );
    assert!(err.contains("ha.cf:11:"), "{err}");
    // A readable authkeys is refused like 3.0.6 does.
    let conf2 = w.conf("conf2", SHA1, "alpha logres::/nonexistent", "");
    std::fs::write(conf2.join("nodeinfo"), "alpha\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        conf2.join("authkeys"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["--check", "-c"])
        .arg(&conf2)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Bad permissions on keyfile"));
    // And a good one prints the parsed configuration.
    std::fs::set_permissions(
        conf2.join("authkeys"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["--check", "-c"])
        .arg(&conf2)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(
        yaml.contains("keepalive: 200ms") && !yaml.contains("somesecret"),
        "{yaml}"
    );
}
