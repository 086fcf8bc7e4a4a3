//! `lab::hbnode`: run OUR `heartbeatd` as a cluster node inside a test's
//! network namespace, with the same shape of API as [`crate::hbpeer`]
//! (the real 3.0.6), so tests and benchmarks can mix the two.
//!
//! Each node gets a state directory with its own copy of the configuration
//! (`etc/`, with `nodeinfo` naming the node, `authkeys` mode 600, and
//! `logfile`/`debugfile` added when missing), its generation and uuid
//! (`state/`) and its pid file and control socket (`run/`). The daemon runs
//! in the foreground (`-f`) as a child of the test, so a crash is a SIGKILL
//! and a graceful stop is `heartbeatd -k`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::netns::Netns;
use crate::proc::{run, run_ok, wait_until};

/// A running heartbeatd node.
#[derive(Debug)]
pub struct HbNode {
    node: String,
    netns: String,
    statedir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
}

fn copy_dir(from: &Path, to: &Path) {
    run_ok(Command::new("cp").arg("-a").arg(from.join(".")).arg(to));
}

impl HbNode {
    /// Starts node `node` in `ns` with the files of `confdir` (ha.cf,
    /// haresources, authkeys, resource.d/), state in `statedir` (emptied
    /// first if `fresh`), using the `heartbeatd` binary `bin` (its
    /// siblings `cl_status`, `hb_standby`, `hb_takeover` are used too).
    /// Waits until the control socket answers.
    pub fn start(
        ns: &Netns,
        node: &str,
        confdir: &Path,
        statedir: &Path,
        fresh: bool,
        bin: &Path,
    ) -> HbNode {
        crate::require_root("running heartbeatd in a namespace");
        assert!(bin.is_file(), "heartbeatd binary {} missing", bin.display());
        if fresh && statedir.exists() {
            fs::remove_dir_all(statedir).unwrap();
        }
        fs::create_dir_all(statedir).unwrap();
        let statedir = statedir.canonicalize().unwrap();
        let etc = statedir.join("etc");
        if etc.exists() {
            fs::remove_dir_all(&etc).unwrap();
        }
        fs::create_dir_all(&etc).unwrap();
        copy_dir(confdir, &etc);
        fs::write(etc.join("nodeinfo"), format!("{node}\n")).unwrap();
        let mut ha_cf = fs::read_to_string(etc.join("ha.cf")).expect("confdir has ha.cf");
        let has = |d: &str| {
            ha_cf
                .lines()
                .any(|l| l.split_whitespace().next() == Some(d))
        };
        let mut extra = String::new();
        if !has("logfile") {
            extra.push_str(&format!("logfile {}\n", statedir.join("ha-log").display()));
        }
        if !has("debugfile") {
            extra.push_str(&format!(
                "debugfile {}\n",
                statedir.join("ha-debug").display()
            ));
        }
        ha_cf.push('\n');
        ha_cf.push_str(&extra);
        fs::write(etc.join("ha.cf"), ha_cf).unwrap();
        fs::set_permissions(etc.join("authkeys"), fs::Permissions::from_mode(0o600)).unwrap();
        for d in ["state", "run"] {
            fs::create_dir_all(statedir.join(d)).unwrap();
        }
        let mut n = HbNode {
            node: node.to_owned(),
            netns: ns.name().to_owned(),
            statedir,
            bin: bin.to_owned(),
            child: None,
        };
        n.spawn();
        n
    }

    fn args(&self) -> Vec<String> {
        let s = &self.statedir;
        vec![
            "-c".into(),
            s.join("etc").display().to_string(),
            "--state-dir".into(),
            s.join("state").display().to_string(),
            "--run-dir".into(),
            s.join("run").display().to_string(),
        ]
    }

    fn spawn(&mut self) {
        let console = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.statedir.join("console.log"))
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(&self.bin)
            .arg("-f")
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .process_group(0)
            .spawn()
            .expect("spawn heartbeatd");
        self.child = Some(child);
        let ok = wait_until(Duration::from_secs(10), || {
            self.cl(&["hbstatus"]).status.success().then_some(())
        });
        if ok.is_none() {
            let why = format!(
                "heartbeatd {} did not start:\n{}",
                self.node,
                fs::read_to_string(self.statedir.join("console.log")).unwrap_or_default()
            );
            self.kill();
            panic!("{why}");
        }
    }

    /// Starts the same node again (its state directory keeps the
    /// generation and uuid).
    pub fn restart(&mut self) {
        assert!(!self.is_running(), "restart of a running node");
        self.spawn();
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn statedir(&self) -> &Path {
        &self.statedir
    }

    /// The control socket.
    pub fn socket(&self) -> PathBuf {
        self.statedir.join("run/heartbeat/heartbeatd.sock")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// Runs a sibling tool (`cl_status`, `hb_standby`, `hb_takeover`)
    /// against this node.
    pub fn tool(&self, tool: &str, args: &[&str]) -> Output {
        let bin = self.bin.with_file_name(tool);
        run(Command::new(bin)
            .args(args)
            .env("HEARTBEATD_SOCKET", self.socket()))
    }

    /// `cl_status ARGS`.
    pub fn cl(&self, args: &[&str]) -> Output {
        self.tool("cl_status", args)
    }

    /// `cl_status ARGS` stdout, trimmed.
    pub fn cl_status(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.cl(args).stdout)
            .trim()
            .to_owned()
    }

    /// Graceful stop (`heartbeatd -k`); true if it exited within `timeout`.
    pub fn stop(&mut self, timeout: Duration) -> bool {
        let mut k = Command::new(&self.bin);
        k.arg("-k").args(self.args());
        let mut killer = k.spawn().expect("spawn heartbeatd -k");
        let done = wait_until(timeout, || killer.try_wait().ok().flatten());
        if done.is_none() {
            let _ = killer.kill();
            let _ = killer.wait();
            self.kill();
            return false;
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        true
    }

    /// Crash: SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our child's process group.
            unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            let _ = c.wait();
        }
    }

    /// The log file so far.
    pub fn log(&self) -> String {
        fs::read(self.statedir.join("ha-log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for HbNode {
    fn drop(&mut self) {
        self.kill();
    }
}
