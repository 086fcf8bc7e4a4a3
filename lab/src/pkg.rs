//! Installing the Debian packages a test needs, or failing loudly.
//!
//! Tests call [`ensure_packages`] with the packages whose programs they run
//! (`heartbeat`, `resource-agents`, `ipvsadm`, ...). Missing ones are installed
//! with apt-get under a machine-wide lock, so parallel tests do not race
//! each other for the dpkg lock. If that fails the test panics: nothing skips.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::process::Command;

/// True if dpkg says `pkg` is installed.
pub fn is_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("ok installed"))
        .unwrap_or(false)
}

/// Makes sure every package in `pkgs` is installed; installs the missing ones.
/// Panics with apt's output if that is not possible.
pub fn ensure_packages(pkgs: &[&str]) {
    if pkgs.iter().all(|p| is_installed(p)) {
        return;
    }
    crate::require_root("installing Debian packages");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/heartbeat-rs-lab-apt.lock")
        .expect("open /run/heartbeat-rs-lab-apt.lock");
    // SAFETY: flock on a file descriptor we own; released when `lock` drops.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock apt lock");
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !is_installed(p)).collect();
    if missing.is_empty() {
        return;
    }
    eprintln!("lab: installing Debian packages {missing:?}");
    let install = |update: bool| {
        if update {
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        }
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args([
                "-o",
                "DPkg::Lock::Timeout=600",
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
            ])
            .args(&missing)
            .output()
            .expect("run apt-get")
    };
    let mut out = install(false);
    if !out.status.success() {
        out = install(true);
    }
    if !out.status.success() || missing.iter().any(|p| !is_installed(p)) {
        panic!(
            "lab: could not install {missing:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
