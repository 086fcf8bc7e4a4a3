//! Network namespaces created by a test and removed when it ends.

use std::process::Command;

use crate::proc::{run, run_ok};

/// A named network namespace (`ip netns add`), with `lo` up.
/// Dropping it kills every process still inside and deletes it.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace whose name starts with `prefix` (unique per call).
    pub fn new(prefix: &str) -> Netns {
        crate::require_root("creating a network namespace");
        let name = crate::unique_name(prefix);
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        run_ok(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]));
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `Command` that runs `program` inside this namespace
    /// (`ip netns exec NAME program`).
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `ip ARGS` in the namespace, panicking on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Runs a shell snippet inside the namespace, panicking on failure.
    pub fn sh(&self, script: &str) -> String {
        run_ok(self.cmd("sh").args(["-c", script]))
    }

    /// PIDs of the processes whose network namespace is this one.
    pub fn pids(&self) -> Vec<i32> {
        let out = run(Command::new("ip").args(["netns", "pids", &self.name]));
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Creates a veth pair `ifa` (in `a`, address `ipa`, e.g. "10.99.0.1/24")
/// and `ifb` (in `b`, address `ipb`), both up, broadcast addresses set.
pub fn veth(a: &Netns, ifa: &str, ipa: &str, b: &Netns, ifb: &str, ipb: &str) {
    run_ok(Command::new("ip").args([
        "link", "add", ifa, "netns", &a.name, "type", "veth", "peer", "name", ifb, "netns", &b.name,
    ]));
    for (ns, ifn, ip) in [(a, ifa, ipa), (b, ifb, ipb)] {
        if !ip.is_empty() {
            ns.ip(&["addr", "add", ip, "brd", "+", "dev", ifn]);
        }
        ns.ip(&["link", "set", ifn, "up"]);
    }
}
