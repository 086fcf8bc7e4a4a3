//! Operating the daemon like an admin does: start as a daemon, `-s`, `-k`,
//! the watchdog device, respawned clients, SIGHUP re-reading authkeys, `-M`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{bin, World, SHA1};

fn hb(conf: &Path, state: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args)
        .arg("-c")
        .arg(conf)
        .arg("--state-dir")
        .arg(state.join("state"))
        .arg("--run-dir")
        .arg(state.join("run"));
    c
}

fn single_node(w: &World, extra: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let conf = w.conf("conf", SHA1, "alpha logres::/nonexistent", extra);
    std::fs::write(conf.join("nodeinfo"), "alpha\n").unwrap();
    let st = w.path().join("alpha");
    std::fs::create_dir_all(st.join("run")).unwrap();
    (conf, st)
}

fn log_of(st: &Path) -> String {
    std::fs::read(st.join("ha-log"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// `heartbeatd` without `-f`, in alpha's namespace, as an init script runs it.
fn daemon_start(w: &World, conf: &Path, st: &Path) -> Command {
    let mut c = w.a.cmd(bin().to_str().unwrap());
    c.arg("-c")
        .arg(conf)
        .arg("--state-dir")
        .arg(st.join("state"))
        .arg("--run-dir")
        .arg(st.join("run"));
    c
}

#[test]
fn an_error_after_the_fork_reaches_the_starting_command() {
    let w = World::new();
    let (conf, st) = single_node(&w, "");
    // The pid file cannot be written: its path is a directory.
    std::fs::create_dir_all(st.join("run/heartbeat.pid")).unwrap();
    let out = daemon_start(&w, &conf, &st).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "heartbeatd: {}: cannot write the pid file: ",
            st.join("run/heartbeat.pid").display()
        )),
        "{err}"
    );
    // Nothing left running: the control socket is gone, -s says stopped.
    assert!(!st.join("run/heartbeat/heartbeatd.sock").exists());
    let out = hb(&conf, &st, &["-s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn daemon_mode_status_and_stop() {
    let w = World::new();
    let (conf, st) = single_node(&w, "");
    let extra = format!("logfile {}\n", st.join("ha-log").display());
    std::fs::write(
        conf.join("ha.cf"),
        std::fs::read_to_string(conf.join("ha.cf")).unwrap() + &extra,
    )
    .unwrap();
    // Started like an init script does: returns once the daemon, detached,
    // has written its pid file.
    let out = daemon_start(&w, &conf, &st).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let pid: i32 = std::fs::read_to_string(st.join("run/heartbeat.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .expect("pid file written before the command returns");
    let out = hb(&conf, &st, &["-s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "heartbeat OK [pid {pid} et al] is running on alpha"
        )),
        "{text}"
    );
    // A second start is a no-op with status 0, like 3.0.6.
    let out = daemon_start(&w, &conf, &st).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    // -k stops it and waits.
    let out = hb(&conf, &st, &["-k"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    // Gone (an orphaned daemon may linger as a zombie until init reaps it).
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next();
    assert!(
        matches!(state, None | Some("Z")),
        "still running after -k: {state:?}"
    );
    assert!(!st.join("run/heartbeat.pid").exists());
    let out = hb(&conf, &st, &["-s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = hb(&conf, &st, &["-k"]).output().unwrap();
    assert!(out.status.success(), "stopping a stopped daemon is fine");
    assert!(log_of(&st).contains("alpha Heartbeat shutdown complete."));
}

#[test]
fn watchdog_is_tickled_by_heartbeats_and_closed_with_the_magic_v() {
    let w = World::new();
    let wd = w.path().join("watchdog");
    std::fs::write(&wd, b"").unwrap();
    let (conf, st) = single_node(&w, &format!("watchdog {}\n", wd.display()));
    let mut child =
        w.a.cmd(bin().to_str().unwrap())
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("--state-dir")
            .arg(st.join("state"))
            .arg("--run-dir")
            .arg(st.join("run"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let n = std::fs::metadata(&wd).unwrap().len();
    assert!(n >= 5, "about one tickle per keepalive, got {n} bytes");
    assert!(hb(&conf, &st, &["-k"]).status().unwrap().success());
    let _ = child.wait();
    let bytes = std::fs::read(&wd).unwrap();
    assert_eq!(bytes.last(), Some(&b'V'), "closed with the magic character");
}

#[test]
fn respawned_clients_come_back_unless_they_exit_100() {
    let w = World::new();
    let dir = w.path().join("clients");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("client.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ >> {d}/runs\nn=$(wc -l < {d}/runs)\n[ $n -ge 3 ] && exit 100\nexit 1\n",
            d = dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (conf, st) = single_node(&w, &format!("respawn root {}\n", script.display()));
    let mut node = lab::hbnode::HbNode::start(&w.a, "alpha", &conf, &st, true, &bin());
    // Clients start when communication is up (after initdead here).
    let runs = lab::wait_until(Duration::from_secs(15), || {
        let n = std::fs::read_to_string(dir.join("runs"))
            .map(|s| s.lines().count())
            .unwrap_or(0);
        (n >= 3).then_some(n)
    })
    .unwrap_or_else(|| panic!("client not respawned\n{}", node.log()));
    std::thread::sleep(Duration::from_secs(2));
    let after = std::fs::read_to_string(dir.join("runs"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(runs, after, "exit 100 means: do not respawn");
    assert!(node.log().contains("Respawning client"), "{}", node.log());
    node.stop(Duration::from_secs(10));
}

#[test]
fn sighup_rereads_authkeys_and_a_bad_file_keeps_the_old_keys() {
    let w = World::new();
    let (conf, _) = single_node(&w, "");
    let node = lab::hbnode::HbNode::start(&w.a, "alpha", &conf, &w.path().join("n"), true, &bin());
    let etc = node.statedir().join("etc");
    let pid = node.pid().unwrap() as i32;
    std::fs::write(etc.join("authkeys"), "auth 7\n").unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let ok = lab::wait_until(Duration::from_secs(5), || {
        node.log().contains("keeping the keys in use").then_some(())
    });
    assert!(ok.is_some(), "{}", node.log());
    std::fs::write(etc.join("authkeys"), "auth 3\n3 md5 other\n").unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let ok = lab::wait_until(Duration::from_secs(5), || {
        node.log()
            .contains("authkeys re-read on SIGHUP")
            .then_some(())
    });
    assert!(ok.is_some(), "{}", node.log());
    assert_eq!(
        node.cl_status(&["hbstatus"]),
        "Heartbeat is running on this machine."
    );
}

#[test]
fn membership_only_mode_runs_no_agents() {
    let w = World::new();
    let res = w.res_dir();
    let conf = w.conf(
        "conf",
        SHA1,
        &format!("alpha logres::{}", res.display()),
        "",
    );
    std::fs::write(conf.join("nodeinfo"), "alpha\n").unwrap();
    let st = w.path().join("alpha");
    std::fs::create_dir_all(st.join("run")).unwrap();
    let mut child =
        w.a.cmd(bin().to_str().unwrap())
            .arg("-f")
            .arg("-M")
            .arg("-c")
            .arg(&conf)
            .arg("--state-dir")
            .arg(st.join("state"))
            .arg("--run-dir")
            .arg(st.join("run"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(!w.runs("alpha"), "no resources with -M");
    assert!(hb(&conf, &st, &["-k"]).status().unwrap().success());
    let _ = child.wait();
}

#[test]
fn the_shipped_sample_configuration_passes_the_check() {
    let d = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/ha.d");
    for f in ["ha.cf", "haresources", "authkeys"] {
        std::fs::copy(src.join(f), d.path().join(f)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        d.path().join("authkeys"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    for node in ["loadbalancer", "backup"] {
        std::fs::write(d.path().join("nodeinfo"), format!("{node}\n")).unwrap();
        let out = Command::new(bin())
            .arg("--check")
            .arg("-c")
            .arg(d.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let y = String::from_utf8_lossy(&out.stdout);
        assert!(y.contains(&format!("# node: {node}")), "{y}");
        assert!(y.contains("lvs") && y.contains("ldirectord"), "{y}");
    }
}
