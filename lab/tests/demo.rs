//! `lab demo` end to end: the debug `lab` binary runs the whole demo (two
//! heartbeatd directors, the IPaddr agent, a client, crash/failback/
//! handover) and must succeed with every step and measurement printed and
//! nothing left behind; an interrupted demo must clean up too; bad use
//! (not root, missing binaries, stray arguments) gets a clear message.
//!
//! The demo runs `heartbeatd`, `cl_status` and `IPaddr` from the directory
//! of the `lab` binary. Cargo builds a package's own binaries for its tests
//! but not other packages' binaries, so the test builds them itself:
//! `$CARGO build -p heartbeatd -p resource-agents --bins --target-dir T`
//! with the cargo that builds this test and T = the target directory the
//! `lab` binary lives in (two levels up from `target/debug/lab`). When they
//! are up to date (e.g. `cargo test --workspace` built them) this costs a
//! fraction of a second. Anything missing afterwards fails the test.
//!
//! Runs as root (CI does); fails loudly otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::time::Duration;

fn lab_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lab"))
}

/// Builds the binaries the demo runs next to the `lab` binary (once).
fn build_demo_bins() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bindir = lab::build_workspace_bins(&lab_exe(), &["heartbeatd", "resource-agents"]);
        for b in ["heartbeatd", "cl_status", "IPaddr"] {
            assert!(
                bindir.join(b).is_file(),
                "{} missing after the build",
                bindir.join(b).display()
            );
        }
    });
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The namespace names the demo printed in step 1.
fn namespaces(stdout: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Namespaces: "))
        .unwrap_or_else(|| panic!("no namespace line in:\n{stdout}"));
    let names: Vec<String> = line
        .trim_start_matches("Namespaces: ")
        .split(", ")
        .filter_map(|p| p.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert_eq!(names.len(), 4, "{line}");
    names
}

/// Panics if any of `names` is still a namespace, or if a process still
/// runs from the demo's state directory.
fn assert_nothing_left(names: &[String], demo_pid: u32) {
    let list = lab::run_ok(Command::new("ip").args(["netns", "list"]));
    for n in names {
        assert!(
            !list.split_whitespace().any(|w| w == n),
            "namespace {n} left behind:\n{list}"
        );
    }
    let dir = format!("/tmp/lab-demo.{demo_pid}");
    assert!(!Path::new(&dir).exists(), "{dir} left behind");
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(p.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            assert!(!cmd.contains(&dir), "process left behind: {cmd}");
        }
    }
}

/// A "MEASURED ..." figure: the number before " ms" after `key`.
fn measured_ms(stdout: &str, key: &str) -> u64 {
    let at = stdout
        .find(key)
        .unwrap_or_else(|| panic!("{key:?} not in:\n{stdout}"));
    let rest = &stdout[at + key.len()..];
    let num: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    num.parse()
        .unwrap_or_else(|_| panic!("no number after {key:?}: {rest:.60}"))
}

#[test]
fn the_demo_runs_end_to_end_and_leaves_nothing_behind() {
    lab::require_root("the demo test");
    lab::ensure_packages(&["iproute2", "curl", "tcpdump"]);
    build_demo_bins();
    let child = Command::new(lab_exe())
        .arg("demo")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lab demo");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "lab demo failed ({}):\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    for key in [
        "=== 1. Topology",
        "=== 2. heartbeatd started on both directors",
        "=== 3. The VIP 192.168.136.10 is on loadbalancer",
        "=== 4. Crash",
        "=== 5. cl_status on backup",
        "=== 6. loadbalancer comes back",
        "=== 7. Graceful stop",
        "=== 8. Cleanup",
        // the topology of the reference cluster
        "192.168.136.11/24",
        "192.168.136.12/24",
        "192.168.136.200/24",
        // both nodes see both, loadbalancer holds the group
        "[loadbalancer]# cl_status listnodes -v",
        "[backup]# cl_status listnodes -v",
        "loadbalancer\tactive",
        "backup\tactive",
        "[loadbalancer]# cl_status rscstatus\n    local",
        // the VIP and who answers on it, before and after
        "192.168.136.11/24 192.168.136.10/24",
        "192.168.136.12/24 192.168.136.10/24",
        "[client]# curl -sS -m 2 http://192.168.136.10/\n    loadbalancer",
        "[client]# curl -sS -m 2 http://192.168.136.10/\n    backup",
        // the takeover as heartbeatd and IPaddr log it
        "node loadbalancer: is dead",
        "Running IPaddr 192.168.136.10/24/eth0 start",
        "Adding inet address 192.168.136.10/24",
        // the gratuitous ARP, as the client captured it
        "Request who-has 192.168.136.10 tell 192.168.136.10",
        // after the crash
        "[backup]# cl_status nodestatus loadbalancer\n    dead",
        "loadbalancer\tdead",
        "[backup]# cl_status rscstatus\n    all",
        // failback and handover
        "Initial resource acquisition complete (auto_failback)",
        "All HA resources relinquished.",
        "Received shutdown notice from 'loadbalancer'.",
        "MEASURED graceful handover",
        "Summary of this run",
        "The VIP is on nobody",
        "Demo complete in",
    ] {
        assert!(
            stdout.contains(key),
            "{key:?} not in the demo's output:\n{stdout}"
        );
    }
    assert_eq!(
        measured_ms(&stdout, "(deadtime in force:"),
        1000,
        "{stdout}"
    );
    let crash = measured_ms(&stdout, "VIP up on backup");
    let crash_client = measured_ms(&stdout, "client answered by backup after");
    assert!(crash_client >= crash, "{stdout}");
    measured_ms(&stdout, "loadbalancer had it");
    measured_ms(&stdout, "its heartbeatd exited");
    assert_nothing_left(&namespaces(&stdout), pid);
}

#[test]
fn an_interrupted_demo_removes_what_it_made() {
    lab::require_root("the demo test");
    lab::ensure_packages(&["iproute2", "curl", "tcpdump"]);
    build_demo_bins();
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("stdout");
    let mut child = Command::new(lab_exe())
        .arg("demo")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .expect("run lab demo");
    let pid = child.id();
    // Interrupt it once both heartbeatd run (processes, namespaces,
    // addresses, files all exist then).
    let started = lab::wait_until(Duration::from_secs(60), || {
        std::fs::read_to_string(&out_path)
            .ok()
            .filter(|s| s.contains("running in both namespaces"))
    });
    let Some(stdout) = started else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the demo did not start its nodes:\n{}\n{}",
            std::fs::read_to_string(&out_path).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
        );
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = lab::wait_until(Duration::from_secs(30), || child.try_wait().unwrap())
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!("the interrupted demo did not exit in 30 s");
        });
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert_eq!(status.code(), Some(130), "{status}\n{stderr}");
    assert!(stderr.contains("interrupted (SIGINT)"), "{stderr}");
    assert!(stderr.contains("cleaned up"), "{stderr}");
    assert_nothing_left(&namespaces(&stdout), pid);
}

#[test]
fn bad_use_gets_a_clear_message() {
    lab::require_root("the demo test");
    // Stray arguments.
    let out = lab::run(Command::new(lab_exe()).args(["demo", "now"]));
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("demo takes no arguments"), "{err}");

    // Not root: said clearly, nothing created.
    let out = lab::run(
        std::os::unix::process::CommandExt::uid(&mut Command::new(lab_exe()), 65534).arg("demo"),
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("must run as root") && err.contains("sudo ./lab/demo"),
        "{err}"
    );

    // The binaries it runs are missing: says which and how to build them.
    let dir = tempfile::tempdir().unwrap();
    let lone = dir.path().join("lab");
    std::fs::copy(lab_exe(), &lone).unwrap();
    let out = lab::run(Command::new(&lone).arg("demo"));
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("heartbeatd")
            && err.contains("IPaddr")
            && err.contains("cargo build -p heartbeatd -p resource-agents --bins"),
        "{err}"
    );
}
