//! Process helpers: run a command and fail loudly, poll for a condition.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs `cmd`, returns its output whatever the exit status.
/// Panics only if the program cannot be started at all.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `cmd` and panics (with its stderr) unless it exits 0; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` every 20 ms until it returns `Some`, or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Builds the workspace's `--bins` of `packages` into the target directory
/// and profile that `lab_exe` (a test's `env!("CARGO_BIN_EXE_lab")`) was
/// built in, with the cargo that builds the tests, and returns that
/// binaries directory. Cargo builds a package's own binaries for its tests
/// but not other packages'; when they are up to date (e.g. `cargo test
/// --workspace` built them) this costs a fraction of a second. Panics with
/// cargo's output when the build fails.
pub fn build_workspace_bins(lab_exe: &Path, packages: &[&str]) -> PathBuf {
    let bindir = lab_exe
        .parent()
        .expect("the lab binary has a directory")
        .to_path_buf();
    let target = bindir
        .parent()
        .expect("the lab binary lives in <target>/<profile>/");
    let profile = bindir.file_name().unwrap().to_string_lossy().into_owned();
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(env!("CARGO_MANIFEST_DIR")).arg("build");
    for p in packages {
        c.args(["-p", p]);
    }
    c.arg("--bins").arg("--target-dir").arg(target);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            c.arg("--release");
        }
        other => {
            c.args(["--profile", other]);
        }
    }
    let t = Instant::now();
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("built {packages:?} with {c:?} in {:?}", t.elapsed());
    bindir
}
