//! Two heartbeatd nodes over the serial medium, in network namespaces,
//! joined by the lab's null-modem cable (two ptys, throttled to 19200
//! baud): serial only (join, line noise, crash takeover, failback), and
//! bcast + serial (the serial link alone keeps the pair together when the
//! LAN fails; cutting it too makes the backup take over; healing it joins
//! them again). Also: what heartbeatd refuses as a serial port. Runs as
//! root; creates and removes its namespaces, ptys and processes.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{bin, World, SHA1};
use heartbeatd::auth::{AuthMethod, Keyring};
use heartbeatd::daemon::serial::{decode_frame, Framer};
use heartbeatd::wire::Message;
use lab::hbnode::HbNode;
use lab::serialwire::{SerialCable, Side};
use lab::Netns;

/// Two namespaces with nothing but `lo`: the cable is the only path.
fn world_without_lan() -> World {
    lab::require_root("serial cluster tests");
    World {
        a: Netns::new("hsA"),
        b: Netns::new("hsB"),
        dir: tempfile::tempdir().unwrap(),
    }
}

/// Configuration directories for alpha (on `ttyA`) and beta (on `ttyB`)
/// with the group `alpha logres`, `baud 19200` before the serial line.
fn confs(
    w: &World,
    cable: &SerialCable,
    other_media: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let line = format!("alpha logres::{}", w.res_dir().display());
    let media = |side| {
        format!(
            "baud 19200\nserial {}\n{other_media}",
            cable.path(side).display()
        )
    };
    (
        w.conf_media("conf_alpha", SHA1, &line, &media(Side::A), ""),
        w.conf_media("conf_beta", SHA1, &line, &media(Side::B), ""),
    )
}

fn logs(a: &HbNode, b: &HbNode) -> String {
    format!("--- alpha\n{}\n--- beta\n{}", a.log(), b.log())
}

fn status_json(n: &HbNode) -> serde_json::Value {
    serde_json::from_slice(&n.cl(&["hbstatus", "--json"]).stdout).unwrap()
}

fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool, why: impl Fn() -> String) {
    if lab::wait_until(Duration::from_secs(secs), || f().then_some(())).is_none() {
        panic!("{what}\n{}", why());
    }
}

fn keys() -> Keyring {
    Keyring::single(2, AuthMethod::Sha1(b"somesecret".to_vec()))
}

/// Frames of a captured direction: (verified ok and from `src`, others).
fn frames_on_the_wire(bytes: &[u8], src: &str) -> (usize, usize) {
    let mut f = Framer::new();
    let mut out = Vec::new();
    f.push(bytes, &mut out);
    let mut ok = 0;
    let mut bad = 0;
    for fr in out {
        match fr.map(|fr| decode_frame(&fr, &keys())) {
            Ok(Ok(m)) if m.get("src") == Some(src) => ok += 1,
            _ => bad += 1,
        }
    }
    (ok, bad)
}

#[test]
fn serial_only_pair_joins_shrugs_off_noise_fails_over_and_back() {
    let w = world_without_lan();
    let cable = SerialCable::new(&w.path().join("wire"), Some(19200));
    let (ca, cb) = confs(&w, &cable, "");
    let mut a = HbNode::start(&w.a, "alpha", &ca, &w.path().join("alpha"), true, &bin());
    let mut b = HbNode::start(&w.b, "beta", &cb, &w.path().join("beta"), true, &bin());
    let (pa, pb) = (
        cable.path(Side::A).display().to_string(),
        cable.path(Side::B).display().to_string(),
    );

    // Join: alpha runs its group; each sees the other over its own port.
    w.wait_owners(&["alpha"], 40, || logs(&a, &b));
    for n in [&a, &b] {
        for peer in ["alpha", "beta"] {
            assert_eq!(
                n.cl_status(&["nodestatus", peer]),
                "active",
                "{}",
                logs(&a, &b)
            );
        }
    }
    assert_eq!(a.cl_status(&["listhblinks", "beta"]), pa);
    assert_eq!(a.cl_status(&["hblinkstatus", "beta", &pa]), "up");
    assert_eq!(b.cl_status(&["hblinkstatus", "alpha", &pb]), "up");
    assert!(
        b.log().contains(&format!("Link alpha:{pb} up.")),
        "{}",
        b.log()
    );
    let j = status_json(&a);
    assert_eq!(j["media"][0]["description"], format!("serial {pa}"));

    // Line noise towards alpha: a garbage line, a valid frame of a node that
    // is not in the cluster, one signed with another key, a truncated frame.
    let mut gamma = Message::new("status");
    gamma
        .add("st", "active")
        .add("dt", "3e8")
        .add("protocol", "1")
        .add("src", "gamma")
        .add("seq", "1")
        .add("hg", "6b025c9c")
        .add("ts", "6b025c9c")
        .add("ttl", "3");
    let forged = gamma.encode_classic(&Keyring::single(
        2,
        AuthMethod::Sha1(b"othersecret".to_vec()),
    ));
    let bad_before = status_json(&a)["media"][0]["bad"].as_u64().unwrap();
    cable.inject(Side::A, b"this is line noise\n");
    cable.inject(Side::A, &gamma.encode_classic(&keys()));
    cable.inject(Side::A, &forged);
    cable.inject(Side::A, b">>>\nt=partial\n");
    wait_for(
        15,
        "alpha did not report the noise",
        || {
            let l = a.log();
            l.contains("bad node [gamma]")
                && status_json(&a)["media"][0]["bad"].as_u64().unwrap() >= bad_before + 2
        },
        || logs(&a, &b),
    );
    assert!(a.log().contains("authentication failed"), "{}", a.log());
    // No harm done.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(a.cl_status(&["nodestatus", "beta"]), "active");
    assert_eq!(b.cl_status(&["nodestatus", "alpha"]), "active");
    w.wait_owners(&["alpha"], 1, || logs(&a, &b));

    // Crash of alpha: beta takes over.
    a.kill();
    w.lose_resources("alpha");
    w.wait_owners(&["beta"], 15, || logs(&a, &b));
    assert!(b.log().contains("node alpha: is dead"), "{}", b.log());
    wait_for(
        5,
        "the serial link not declared dead",
        || b.log().contains(&format!("Link alpha:{pb} dead.")),
        || logs(&a, &b),
    );

    // alpha returns over the cable: the group fails back.
    a.restart();
    w.wait_owners(&["alpha"], 40, || logs(&a, &b));
    let ev = w.events();
    let stop_b = ev.rfind("beta stop").expect("beta stopped the group");
    let start_a = ev.rfind("alpha start").expect("alpha started it");
    assert!(stop_b < start_a, "beta stops before alpha starts:\n{ev}");

    // What crossed the cable: classic frames, each with a valid auth line
    // (at most one cut by the crash), never a netstring packet.
    let from_alpha = cable.captured(Side::A);
    let (ok, bad) = frames_on_the_wire(&from_alpha, "alpha");
    assert!(
        ok > 50 && bad <= 1,
        "{ok} good, {bad} bad frames from alpha"
    );
    assert!(!from_alpha.windows(4).any(|w| w == b"###\n"));
    // (towards alpha: beta's frames and the noise injected above)
    let (ok, others) = frames_on_the_wire(&cable.captured(Side::B), "beta");
    assert!(
        ok > 50 && others >= 3,
        "{ok} good, {others} others from beta's side"
    );

    assert!(a.stop(Duration::from_secs(20)), "{}", logs(&a, &b));
    assert!(b.stop(Duration::from_secs(20)), "{}", logs(&a, &b));
}

#[test]
fn bcast_plus_serial_the_cable_alone_prevents_split_brain() {
    let w = World::new();
    let cable = SerialCable::new(&w.path().join("wire"), Some(19200));
    let (ca, cb) = confs(&w, &cable, "bcast hb0\n");
    let mut a = HbNode::start(&w.a, "alpha", &ca, &w.path().join("alpha"), true, &bin());
    let mut b = HbNode::start(&w.b, "beta", &cb, &w.path().join("beta"), true, &bin());
    let pb = cable.path(Side::B).display().to_string();
    w.wait_owners(&["alpha"], 40, || logs(&a, &b));
    wait_for(
        15,
        "both links up",
        || {
            b.cl_status(&["hblinkstatus", "alpha", "hb0"]) == "up"
                && b.cl_status(&["hblinkstatus", "alpha", &pb]) == "up"
        },
        || logs(&a, &b),
    );
    let links: Vec<String> = b
        .cl_status(&["listhblinks", "alpha"])
        .lines()
        .map(|l| l.trim().to_owned())
        .collect();
    assert_eq!(links, [pb.clone(), "hb0".to_owned()]);

    // The LAN fails: hb0 dies, the serial link carries on, nobody fails over.
    w.a.ip(&["link", "set", "hb0", "down"]);
    wait_for(
        15,
        "hb0 not declared dead",
        || {
            b.cl_status(&["hblinkstatus", "alpha", "hb0"]) == "dead"
                && a.cl_status(&["hblinkstatus", "beta", "hb0"]) == "dead"
        },
        || logs(&a, &b),
    );
    // Five deadtimes with the LAN down: still one owner, both active.
    for _ in 0..25 {
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            w.runs("alpha") && !w.runs("beta"),
            "failover with the serial link up\n{}",
            logs(&a, &b)
        );
    }
    assert_eq!(b.cl_status(&["hblinkstatus", "alpha", &pb]), "up");
    assert_eq!(b.cl_status(&["nodestatus", "alpha"]), "active");
    assert_eq!(a.cl_status(&["nodestatus", "beta"]), "active");
    assert!(!b.log().contains("node alpha: is dead"), "{}", b.log());
    assert!(b.log().contains("Link alpha:hb0 dead."));

    // The cable is pulled too: beta takes over (alpha keeps its group).
    cable.cut();
    w.wait_owners(&["alpha", "beta"], 15, || logs(&a, &b));
    assert!(b.log().contains("node alpha: is dead"), "{}", b.log());
    wait_for(
        5,
        "the serial link not declared dead",
        || b.log().contains(&format!("Link alpha:{pb} dead.")),
        || logs(&a, &b),
    );

    // Plugged in again (the LAN still down): they find each other over the
    // cable and the group goes back to one owner, its home.
    cable.heal();
    w.wait_owners(&["alpha"], 40, || logs(&a, &b));
    wait_for(
        15,
        "alpha back over the serial link",
        || b.cl_status(&["nodestatus", "alpha"]) == "active",
        || logs(&a, &b),
    );
    assert_eq!(b.cl_status(&["hblinkstatus", "alpha", "hb0"]), "dead");

    // And the LAN comes back.
    w.a.ip(&["link", "set", "hb0", "up"]);
    wait_for(
        15,
        "hb0 up again",
        || b.cl_status(&["hblinkstatus", "alpha", "hb0"]) == "up",
        || logs(&a, &b),
    );
    assert!(a.stop(Duration::from_secs(20)), "{}", logs(&a, &b));
    assert!(b.stop(Duration::from_secs(20)), "{}", logs(&a, &b));
}

/// Runs `heartbeatd -f` with `serial DEV` as its only medium; returns
/// (exit status, stderr).
fn start_with_serial(w: &World, dev: &str) -> (Option<i32>, String) {
    let conf = w.conf_media(
        &format!("conf{}", lab::unique_name("c")),
        SHA1,
        "alpha logres::/nonexistent",
        &format!("serial {dev}\n"),
        "",
    );
    std::fs::write(conf.join("nodeinfo"), "alpha\n").unwrap();
    let st = w.path().join(lab::unique_name("st"));
    std::fs::create_dir_all(st.join("run")).unwrap();
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
    // Nothing left behind.
    assert!(!st.join("run/heartbeat.pid").exists());
    assert!(!st.join("run/heartbeat/heartbeatd.sock").exists());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn what_is_not_a_serial_port_is_refused_with_the_ha_cf_line() {
    let w = world_without_lan();
    let plain = w.path().join("plainfile");
    std::fs::write(&plain, "").unwrap();
    // The serial line is line 6 of the ha.cf conf_media writes.
    for (dev, status, want) in [
        (
            "/nonexistent/tty",
            6,
            "ha.cf:6: serial /nonexistent/tty: Nonexistent serial port",
        ),
        (
            plain.to_str().unwrap(),
            6,
            "not a char device (it is a regular file",
        ),
        (
            "/dev/null",
            1,
            "ha.cf:6: serial /dev/null: cannot get tty attributes",
        ),
        ("ttyS0rel", 6, "ha.cf:6:"),
    ] {
        let (code, err) = start_with_serial(&w, dev);
        assert_eq!(code, Some(status), "{dev}: {err}");
        assert!(err.contains(want), "{dev}: {err}");
    }
    assert!(Path::new("/dev/null").exists());
}
