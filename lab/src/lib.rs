//! `lab`: the test, demo and benchmark harness of heartbeat-rs.
//!
//! It owns everything that builds a throw-away world on this machine: network
//! namespaces and veth pairs (created by the test, removed on drop), installing
//! the Debian packages a test needs (the real heartbeat 3.0.6, resource-agents,
//! ipvsadm, ...) or failing loudly, and small process helpers. Tests of the
//! other crates use it as a dev-dependency; the `lab` binary uses it for the
//! demo and the benchmarks. Nothing here skips silently: a missing capability
//! is a panic with a message that says what to do.

pub mod hbnode;
pub mod hbpeer;
pub mod ipvs_vm;
pub mod netns;
pub mod pkg;
pub mod proc;
pub mod serialwire;
pub mod servers;

pub use netns::{veth, Netns};
pub use pkg::ensure_packages;
pub use proc::{build_workspace_bins, run, run_ok, wait_until};

/// Panics with a clear message unless the process runs as root: namespace
/// tests need CAP_NET_ADMIN and CAP_SYS_ADMIN.
pub fn require_root(what: &str) {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "{what} needs root (network namespaces, veth, packet sockets); \
             run the suite as root: sudo ./lab/test"
        );
    }
}

/// A name unique to this process and call, short enough for an interface
/// name (15 bytes max) when `prefix` is at most 5 bytes.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() % 100_000;
    format!("{prefix}{pid:x}{n:x}")
}
