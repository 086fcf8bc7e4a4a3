//! The real-IPVS guest: run a host binary inside Debian's user-mode Linux
//! kernel, whose IPVS modules give it a real kernel IPVS table (this
//! machine's own kernel has no IPVS and cannot load modules).
//!
//! # Use
//! ```no_run
//! use lab::ipvs_vm::{run_in_guest, Guest};
//! use std::path::Path;
//! use std::time::Duration;
//!
//! // simplest form: binary, arguments, extra files (host path, guest path)
//! let out = run_in_guest(Path::new("/usr/bin/true"), &[], &[]);
//! out.assert_success();
//!
//! // builder form
//! let out = Guest::new(std::env::current_exe().unwrap())
//!     .arg("guest")
//!     .env("RUST_BACKTRACE", "1")
//!     .file("/etc/ha.d/ldirectord.cf", "/etc/ha.d/ldirectord.cf")
//!     .timeout(Duration::from_secs(60))
//!     .run()
//!     .expect("guest harness");
//! println!("exit {} after {:?}:\n{}", out.status, out.total, out.output);
//! ```
//! The payload runs as root (PID 1's child) with `IPVS_GUEST=1` in its
//! environment, in `/root`, with the IPVS core and the `rr`/`wlc` schedulers
//! loaded; every other scheduler (`wrr lc lblc lblcr dh sh sed nq fo ovf mh`),
//! the `sip` persistence engine, `ip_vs_ftp`, `dummy`, `nlmon`, `ipip`,
//! `veth` and `bridge` are shipped and load on demand (the kernel's autoload
//! runs busybox `modprobe`; network namespaces are built in). The guest has
//! `ipvsadm` (the host's, 1.31, with its libraries), a static busybox
//! with all its applets (`sh ip nc httpd wget modprobe ...`), glibc, and the
//! shared libraries of the payload and of every ELF file passed with
//! [`Guest::file`] (found with `ldd`), so host-built Rust binaries run as-is.
//! `lo` is up; there is no other network device.
//!
//! # Placing files and servers
//! - Files: [`Guest::file`]`(host_path, guest_path)` copies a host file into
//!   the guest at an absolute path (parents are created; executables keep their
//!   mode). `/tmp` and `/root` are writable (tmpfs/rootfs); the guest sees a
//!   snapshot, writes stay in the guest (report results on stdout).
//! - Servers: the payload starts them itself, e.g. add an address and run
//!   busybox httpd on it:
//!   `ip addr add 10.99.1.1/32 dev lo` then
//!   `busybox httpd -p 10.99.1.1:80 -h /root/www` (httpd daemonizes; give it a
//!   docroot with [`Guest::file`] or write one first). busybox `nc -l -p PORT`
//!   serves a single TCP connection. (busybox-static's `wget` is known to
//!   crash; use `nc` or a Rust client.)
//! - Real servers behind a virtual IP, all inside the one guest: put the VIP
//!   and one address per real server on `lo`, run an httpd per real-server
//!   address, and use NAT (`-m`, `Forward::Masq`) destinations. Connections
//!   the guest itself opens to the VIP go through IPVS (its LOCAL_OUT hook)
//!   and are balanced over the real servers (the lab self-test fetches two
//!   pages round robin this way). With `-g`/`-i` to a local address the
//!   packet is delivered to the VIP itself, so only a listener on the VIP
//!   would answer.
//!
//! # How it works
//! The first call (per cache key) downloads Debian's `user-mode-linux`
//! package with `apt-get download`, unpacks it with `dpkg-deb -x` (nothing is
//! installed), and writes a base initramfs (newc cpio, uncompressed): busybox,
//! ipvsadm and glibc, the IPVS modules with their dependencies and a
//! `modules.dep` for them, and [`INIT`] as `/init`. It is cached under
//! `/var/cache/heartbeat-rs-lab/ipvs-vm/` (override: `HEARTBEAT_RS_LAB_CACHE`),
//! keyed by the package versions and this harness's inputs, built under an
//! exclusive lock so parallel tests share one build. Each run appends a small
//! archive (payload, its libraries, files, `run.conf`) and boots
//! `linux mem=... initrd=...` as an ordinary process in its own process group;
//! the payload's output comes back through the second console between
//! markers carrying a random nonce, followed by its exit status. A run that
//! passes its timeout is killed (the whole process group) and reported as
//! [`GuestError::Timeout`] with the output so far and the kernel log tail.
//! One boot costs about 2 s, so tests batch all their cases into one run.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The guest's `/init` (busybox ash).
pub const INIT: &str = include_str!("../ipvs-vm/init");

/// Bumped when the image layout changes (part of the cache key).
const IMAGE_FORMAT: u32 = 2;

/// Host packages the harness needs.
pub const HOST_PACKAGES: &[&str] = &["busybox-static", "ipvsadm"];

/// Modules loaded at boot (with their dependencies), in this order.
const BOOT_MODULES: &[&str] = &["ip_vs", "ip_vs_rr", "ip_vs_wlc"];

/// Modules shipped for on-demand loading (with their dependencies).
const SHIPPED_MODULES: &[&str] = &[
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_lblc",
    "ip_vs_lblcr",
    "ip_vs_dh",
    "ip_vs_sh",
    "ip_vs_sed",
    "ip_vs_nq",
    "ip_vs_fo",
    "ip_vs_ovf",
    "ip_vs_mh",
    "ip_vs_twos",
    "ip_vs_ftp",
    "ip_vs_pe_sip",
    "dummy",
    "nlmon",
    "ipip",
    "veth",
    "bridge",
];

/// Why a guest run did not produce an exit status.
#[derive(Debug)]
pub enum GuestError {
    /// The image could not be built (download, unpack, missing tool ...).
    Build(String),
    /// The kernel could not be started.
    Spawn(String),
    /// The guest's init failed before running the payload.
    Setup {
        /// what failed
        reason: String,
        /// tail of the kernel log
        console: String,
    },
    /// The run passed its time limit and was killed.
    Timeout {
        /// the limit
        after: Duration,
        /// payload output so far
        output: String,
        /// tail of the kernel log
        console: String,
    },
    /// The kernel ended without the exit marker (panic, crash).
    NoExit {
        /// payload output so far
        output: String,
        /// tail of the kernel log
        console: String,
    },
}

impl std::fmt::Display for GuestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestError::Build(m) => write!(f, "IPVS guest: cannot build the image: {m}"),
            GuestError::Spawn(m) => write!(f, "IPVS guest: cannot start the kernel: {m}"),
            GuestError::Setup { reason, console } => {
                write!(f, "IPVS guest: setup failed in the guest: {reason}\n--- kernel log ---\n{console}")
            }
            GuestError::Timeout { after, output, console } => write!(
                f,
                "IPVS guest: killed after {after:?}\n--- output ---\n{output}\n--- kernel log ---\n{console}"
            ),
            GuestError::NoExit { output, console } => write!(
                f,
                "IPVS guest: the kernel stopped without an exit status\n--- output ---\n{output}\n--- kernel log ---\n{console}"
            ),
        }
    }
}

impl std::error::Error for GuestError {}

/// The result of a guest run.
#[derive(Debug, Clone)]
pub struct GuestOutput {
    /// the payload's exit status
    pub status: i32,
    /// its stdout and stderr, interleaved (CRs removed)
    pub output: String,
    /// from starting the kernel to the payload's start
    pub boot: Duration,
    /// from starting the kernel to its end
    pub total: Duration,
}

impl GuestOutput {
    /// Panics with the output unless the payload exited 0.
    pub fn assert_success(&self) {
        if self.status != 0 {
            panic!("guest payload exited {}:\n{}", self.status, self.output);
        }
    }
}

/// A prepared image: the kernel binary and the base initramfs.
#[derive(Debug, Clone)]
pub struct Image {
    /// `linux` (user-mode Linux kernel executable)
    pub kernel: PathBuf,
    /// the base initramfs (uncompressed newc cpio)
    pub initramfs: PathBuf,
    /// the guest kernel release (e.g. 6.1.176)
    pub kernel_release: String,
    /// the user-mode-linux package version
    pub package_version: String,
}

/// A guest run, configured builder-style; see the module documentation.
#[derive(Debug, Clone)]
pub struct Guest {
    binary: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    files: Vec<(PathBuf, String)>,
    timeout: Duration,
    mem_mb: u32,
}

impl Guest {
    /// Runs `binary` (an ELF or a `#!/bin/sh` script) in the guest.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Guest {
            binary: binary.into(),
            args: Vec::new(),
            env: Vec::new(),
            files: Vec::new(),
            timeout: Duration::from_secs(120),
            mem_mb: 384,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Self {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the payload.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Copies host file `host` into the guest at absolute path `guest`.
    pub fn file(mut self, host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        self.files.push((host.into(), guest.into()));
        self
    }

    /// Wall-clock limit for the whole run (default 120 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Guest memory in MiB (default 384).
    pub fn mem_mb(mut self, m: u32) -> Self {
        self.mem_mb = m;
        self
    }

    /// Boots the guest and runs the payload.
    pub fn run(&self) -> Result<GuestOutput, GuestError> {
        let image = image()?;
        run_image(&image, self)
    }
}

/// Runs `binary args...` in the guest with `extra_files` (host path, guest
/// path); panics if the harness fails (not if the payload exits non-zero:
/// check [`GuestOutput::status`] or call [`GuestOutput::assert_success`]).
pub fn run_in_guest(binary: &Path, args: &[&str], extra_files: &[(&Path, &str)]) -> GuestOutput {
    let mut g = Guest::new(binary).args(args.iter().copied());
    for (h, p) in extra_files {
        g = g.file(*h, *p);
    }
    g.run().unwrap_or_else(|e| panic!("{e}"))
}

// ------------------------------------------------------------------ the image

fn cache_root() -> PathBuf {
    std::env::var_os("HEARTBEAT_RS_LAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/heartbeat-rs-lab"))
        .join("ipvs-vm")
}

fn berr(m: impl Into<String>) -> GuestError {
    GuestError::Build(m.into())
}

fn run_cmd(cmd: &mut Command) -> Result<String, GuestError> {
    let out = cmd
        .output()
        .map_err(|e| berr(format!("cannot run {cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(berr(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dpkg_version(pkg: &str) -> Result<String, GuestError> {
    Ok(
        run_cmd(Command::new("dpkg-query").args(["-W", "-f=${Version}", pkg]))?
            .trim()
            .to_string(),
    )
}

/// The candidate version of user-mode-linux (runs apt-get update if apt has no lists).
fn uml_candidate() -> Result<String, GuestError> {
    let candidate = || -> Option<String> {
        let out = Command::new("apt-cache")
            .args(["policy", "user-mode-linux"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let v = text.lines().find_map(|l| {
            l.trim()
                .strip_prefix("Candidate:")
                .map(|v| v.trim().to_string())
        })?;
        (v != "(none)" && !v.is_empty()).then_some(v)
    };
    if let Some(v) = candidate() {
        return Ok(v);
    }
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    candidate().ok_or_else(|| {
        berr("apt knows no candidate for package user-mode-linux (apt-get update failed?)")
    })
}

fn fnv(data: &[u8], mut h: u64) -> u64 {
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The prepared image, built on first use (cached on disk and per process).
pub fn image() -> Result<Image, GuestError> {
    static IMAGE: OnceLock<Result<Image, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| build_image().map_err(|e| e.to_string()))
        .clone()
        .map_err(GuestError::Build)
}

fn build_image() -> Result<Image, GuestError> {
    crate::ensure_packages(HOST_PACKAGES);
    match build_image_with(uml_candidate()?) {
        // apt's package lists can be older than the mirror (the version they
        // name is gone from the pool: 404): refresh them and try once more.
        Err(GuestError::Build(e)) if e.contains("apt-get") && e.contains("download") => {
            eprintln!("lab::ipvs_vm: download failed, refreshing apt's lists: {e}");
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
            build_image_with(uml_candidate()?)
        }
        r => r,
    }
}

fn build_image_with(version: String) -> Result<Image, GuestError> {
    let mut key = fnv(INIT.as_bytes(), 0xcbf29ce484222325);
    key = fnv(
        format!("{IMAGE_FORMAT} {BOOT_MODULES:?} {SHIPPED_MODULES:?}").as_bytes(),
        key,
    );
    key = fnv(dpkg_version("busybox-static")?.as_bytes(), key);
    key = fnv(dpkg_version("ipvsadm")?.as_bytes(), key);
    let root = cache_root();
    fs::create_dir_all(&root).map_err(|e| berr(format!("{}: {e}", root.display())))?;
    let dir = root.join(format!(
        "uml-{}-{key:016x}",
        version.replace([':', '/'], "_")
    ));
    let image = Image {
        kernel: dir.join("linux"),
        initramfs: dir.join("initramfs.cpio"),
        kernel_release: String::new(),
        package_version: version.clone(),
    };
    let ready = dir.join("ready");
    let read_ready = || -> Option<Image> {
        let release = fs::read_to_string(&ready).ok()?;
        Some(Image {
            kernel_release: release.trim().to_string(),
            ..image.clone()
        })
    };
    if let Some(i) = read_ready() {
        return Ok(i);
    }
    // one builder at a time, machine-wide
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(".lock"))
        .map_err(|e| berr(format!("lock: {e}")))?;
    // SAFETY: flock on a descriptor we own; released when `lock` is dropped.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(berr(format!("flock: {}", std::io::Error::last_os_error())));
    }
    if let Some(i) = read_ready() {
        return Ok(i);
    }
    let t0 = Instant::now();
    let _ = fs::remove_dir_all(&dir);
    let work = dir.join("work");
    fs::create_dir_all(&work).map_err(|e| berr(format!("{}: {e}", work.display())))?;
    eprintln!(
        "lab::ipvs_vm: building the IPVS guest image (user-mode-linux {version}) in {}",
        dir.display()
    );
    run_cmd(
        Command::new("apt-get")
            .current_dir(&work)
            .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
            .arg(format!("user-mode-linux={version}")),
    )?;
    let deb = fs::read_dir(&work)
        .map_err(|e| berr(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| berr("apt-get download produced no .deb"))?;
    let kroot = work.join("root");
    run_cmd(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&kroot))?;
    let moddir_base = kroot.join("usr/lib/uml/modules");
    let release = fs::read_dir(&moddir_base)
        .map_err(|e| berr(format!("{}: {e}", moddir_base.display())))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .ok_or_else(|| berr("no module directory in the user-mode-linux package"))?;
    let moddir = moddir_base.join(&release);
    let mut cpio = Cpio::default();
    base_tree(&mut cpio)?;
    modules(&mut cpio, &moddir, &release)?;
    cpio.file("init", INIT.as_bytes(), 0o755);
    let mut bytes = cpio.finish();
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    fs::write(dir.join("initramfs.cpio"), &bytes).map_err(|e| berr(e.to_string()))?;
    fs::copy(kroot.join("usr/bin/linux.uml"), dir.join("linux"))
        .map_err(|e| berr(format!("copy linux.uml: {e}")))?;
    fs::remove_dir_all(&work).map_err(|e| berr(e.to_string()))?;
    fs::write(&ready, format!("{release}\n")).map_err(|e| berr(e.to_string()))?;
    // older images of this harness are dead weight
    for e in fs::read_dir(&root).into_iter().flatten().flatten() {
        if e.path() != dir && e.file_name().to_string_lossy().starts_with("uml-") {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    eprintln!(
        "lab::ipvs_vm: image ready in {:.1} s (kernel {release}, initramfs {} KiB)",
        t0.elapsed().as_secs_f64(),
        bytes.len() / 1024
    );
    Ok(Image {
        kernel_release: release,
        ..image
    })
}

/// Maps a path to where it lives in the merged-/usr guest (`/lib/x` →
/// `usr/lib/x`), without the leading slash.
fn guest_path(p: &str) -> String {
    let p = p.trim_start_matches('/');
    for top in ["bin", "sbin", "lib", "lib64"] {
        if p == top {
            return format!("usr/{top}");
        }
        if let Some(rest) = p.strip_prefix(&format!("{top}/")) {
            return format!("usr/{top}/{rest}");
        }
    }
    p.to_string()
}

/// Shared libraries of an ELF file as `ldd` prints them (empty for static
/// binaries and scripts).
fn libraries(file: &Path) -> Vec<PathBuf> {
    let Ok(out) = Command::new("ldd").arg(file).output() else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=> ") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            v.push(PathBuf::from(p));
        }
    }
    v
}

fn read(p: &Path) -> Result<Vec<u8>, GuestError> {
    fs::read(p).map_err(|e| berr(format!("{}: {e}", p.display())))
}

fn base_tree(c: &mut Cpio) -> Result<(), GuestError> {
    for d in [
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "etc",
        "root",
        "mnt",
        "ipvs-vm",
        "usr",
        "usr/bin",
        "usr/sbin",
        "usr/lib",
        "usr/lib64",
    ] {
        c.dir(d);
    }
    for top in ["bin", "sbin", "lib", "lib64"] {
        c.symlink(top, &format!("usr/{top}"));
    }
    let busybox = Path::new("/bin/busybox");
    if !libraries(busybox).is_empty() {
        return Err(berr(
            "/bin/busybox is not the static busybox (install busybox-static)",
        ));
    }
    c.file("usr/bin/busybox", &read(busybox)?, 0o755);
    let applets = run_cmd(Command::new(busybox).arg("--list-full"))?;
    for a in applets.lines() {
        let p = guest_path(a);
        if p != "usr/bin/busybox" {
            c.symlink(&p, "/bin/busybox");
        }
    }
    let ipvsadm =
        fs::canonicalize("/usr/sbin/ipvsadm").map_err(|e| berr(format!("ipvsadm: {e}")))?;
    c.file("usr/sbin/ipvsadm", &read(&ipvsadm)?, 0o755);
    let mut libs = libraries(&ipvsadm);
    for l in ["libc.so.6", "libm.so.6", "libgcc_s.so.1"] {
        libs.push(Path::new("/lib/x86_64-linux-gnu").join(l));
    }
    let mut seen = BTreeSet::new();
    for l in libs {
        add_file(c, &l, &mut seen)?;
    }
    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644);
    c.file("etc/group", b"root:x:0:\n", 0o644);
    c.file("etc/hosts", b"127.0.0.1 localhost\n::1 localhost\n", 0o644);
    if let Ok(s) = fs::read("/etc/services") {
        c.file("etc/services", &s, 0o644);
    }
    if let Ok(s) = fs::read("/etc/protocols") {
        c.file("etc/protocols", &s, 0o644);
    }
    Ok(())
}

fn add_file(c: &mut Cpio, host: &Path, seen: &mut BTreeSet<String>) -> Result<(), GuestError> {
    let gp = guest_path(&host.to_string_lossy());
    if !seen.insert(gp.clone()) {
        return Ok(());
    }
    let data = read(host)?; // follows symlinks
    let mode = fs::metadata(host)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    c.parents(&gp);
    c.file(&gp, &data, mode);
    Ok(())
}

/// A module's name as modprobe compares them: the file name without
/// `.ko[.xz]`, `-` read as `_` (`kernel/net/ipv4/ip_tunnel.ko` →
/// `ip_tunnel`; also for a bare name such as `ip-vs`).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or("").replace('-', "_")
}

fn modules(c: &mut Cpio, moddir: &Path, release: &str) -> Result<(), GuestError> {
    let dep_text = fs::read_to_string(moddir.join("modules.dep"))
        .map_err(|e| berr(format!("modules.dep: {e}")))?;
    // name -> (path, deps)
    let mut deps = std::collections::HashMap::new();
    for line in dep_text.lines() {
        let Some((path, rest)) = line.split_once(':') else {
            continue;
        };
        let name = module_name(path);
        deps.insert(
            name,
            (
                path.to_string(),
                rest.split_whitespace()
                    .map(String::from)
                    .collect::<Vec<_>>(),
            ),
        );
    }
    let by_path: std::collections::HashMap<&str, &Vec<String>> =
        deps.values().map(|(p, d)| (p.as_str(), d)).collect();
    // load order: each module's dependencies (deepest first, as modprobe), then itself
    let mut order: Vec<String> = Vec::new();
    let add = |name: &str, order: &mut Vec<String>| -> Result<(), GuestError> {
        let (path, d) = deps.get(name).ok_or_else(|| {
            berr(format!(
                "module {name} is not in the user-mode-linux package"
            ))
        })?;
        for p in d.iter().rev() {
            if !order.contains(p) {
                order.push(p.clone());
            }
        }
        if !order.contains(path) {
            order.push(path.clone());
        }
        Ok(())
    };
    for m in BOOT_MODULES {
        add(m, &mut order)?;
    }
    let boot = order.clone();
    for m in SHIPPED_MODULES {
        if deps.contains_key(*m) {
            add(m, &mut order)?;
        }
    }
    let base = format!("usr/lib/modules/{release}");
    let mut dep_out = String::new();
    for p in &order {
        let gp = format!("{base}/{p}");
        c.parents(&gp);
        c.file(&gp, &read(&moddir.join(p))?, 0o644);
        let d = by_path
            .get(p.as_str())
            .map(|d| d.join(" "))
            .unwrap_or_default();
        dep_out.push_str(&format!("{p}: {d}\n"));
    }
    c.file(&format!("{base}/modules.dep"), dep_out.as_bytes(), 0o644);
    // The aliases of the shipped modules (e.g. `rtnl-link-ipip` for ipip),
    // so the kernel's autoload finds them as on a real system: in
    // modules.alias and, for busybox modprobe, in modprobe.d.
    let names: BTreeSet<String> = order.iter().map(|p| module_name(p)).collect();
    let alias_text = fs::read_to_string(moddir.join("modules.alias")).unwrap_or_default();
    let aliases: String = alias_text
        .lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some("alias") && w.nth(1).is_some_and(|m| names.contains(&module_name(m)))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    c.file(&format!("{base}/modules.alias"), aliases.as_bytes(), 0o644);
    c.parents("etc/modprobe.d/ipvs-vm.conf");
    c.file("etc/modprobe.d/ipvs-vm.conf", aliases.as_bytes(), 0o644);
    for extra in ["modules.builtin", "modules.order"] {
        if let Ok(b) = fs::read(moddir.join(extra)) {
            c.file(&format!("{base}/{extra}"), &b, 0o644);
        }
    }
    c.file(
        "ipvs-vm/modules.load",
        (boot.join("\n") + "\n").as_bytes(),
        0o644,
    );
    Ok(())
}

// ------------------------------------------------------------------- running

/// `'...'` quoting for busybox ash.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn nonce() -> String {
    let mut b = [0u8; 12];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b[..8].copy_from_slice(&(t as u64 ^ std::process::id() as u64).to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn run_image(image: &Image, g: &Guest) -> Result<GuestOutput, GuestError> {
    let serr = |m: String| GuestError::Spawn(m);
    let nonce = nonce();
    let mut c = Cpio::default();
    let mut conf = format!("NONCE={nonce} OUT=/dev/tty1\nexport IPVS_GUEST=1\n");
    for (k, v) in &g.env {
        if k.is_empty() || !k.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            return Err(serr(format!("bad environment variable name {k:?}")));
        }
        conf.push_str(&format!("export {k}={}\n", sh_quote(v)));
    }
    conf.push_str("set --");
    for a in &g.args {
        conf.push(' ');
        conf.push_str(&sh_quote(a));
    }
    conf.push('\n');
    c.file("ipvs-vm/run.conf", conf.as_bytes(), 0o644);
    let payload = fs::read(&g.binary).map_err(|e| serr(format!("{}: {e}", g.binary.display())))?;
    c.file("ipvs-vm/cmd", &payload, 0o755);
    let mut seen = BTreeSet::new();
    let mut elves = vec![g.binary.clone()];
    for (host, guest) in &g.files {
        if !guest.starts_with('/') {
            return Err(serr(format!("guest path {guest} is not absolute")));
        }
        let data = fs::read(host).map_err(|e| serr(format!("{}: {e}", host.display())))?;
        let mode = fs::metadata(host)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        let gp = guest_path(guest);
        c.parents(&gp);
        c.file(&gp, &data, mode);
        if data.starts_with(b"\x7fELF") {
            elves.push(host.clone());
        }
    }
    for e in &elves {
        for lib in libraries(e) {
            add_file(&mut c, &lib, &mut seen).map_err(|e| serr(e.to_string()))?;
        }
    }
    let extra = c.finish();

    let tmp = std::env::temp_dir().join(format!("ipvs-vm-{}-{nonce}", std::process::id()));
    fs::create_dir_all(&tmp).map_err(|e| serr(format!("{}: {e}", tmp.display())))?;
    let _cleanup = RemoveDir(tmp.clone());
    let initrd = tmp.join("initrd");
    {
        let mut f = File::create(&initrd).map_err(|e| serr(e.to_string()))?;
        let mut base = File::open(&image.initramfs).map_err(|e| serr(e.to_string()))?;
        std::io::copy(&mut base, &mut f).map_err(|e| serr(e.to_string()))?;
        f.write_all(&extra).map_err(|e| serr(e.to_string()))?;
    }
    let console_path = tmp.join("console.log");
    let console = File::create(&console_path).map_err(|e| serr(e.to_string()))?;

    let t0 = Instant::now();
    let mut child = Command::new(&image.kernel)
        .arg(format!("mem={}M", g.mem_mb))
        .arg(format!("initrd={}", initrd.display()))
        .args([
            "con0=null,fd:2",
            "con1=null,fd:1",
            "con=null",
            "ssl=null",
            "quiet",
        ])
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(console))
        .process_group(0)
        .spawn()
        .map_err(|e| serr(format!("{}: {e}", image.kernel.display())))?;
    let pgid = child.id() as i32;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let start_marker = format!("@@IPVS-VM-START {nonce}@@");
    let shared = Arc::new(Mutex::new((Vec::<u8>::new(), None::<Instant>)));
    let reader = {
        let shared = Arc::clone(&shared);
        let marker = start_marker.clone().into_bytes();
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut s = shared.lock().unwrap();
                        s.0.extend_from_slice(&buf[..n]);
                        if s.1.is_none()
                            && s.0.windows(marker.len()).any(|w| w == marker.as_slice())
                        {
                            s.1 = Some(Instant::now());
                        }
                    }
                }
            }
        })
    };
    let mut timed_out = false;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(e) => return Err(serr(format!("wait: {e}"))),
        }
        if t0.elapsed() > g.timeout {
            timed_out = true;
            // SAFETY: signalling the process group of the kernel we started.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // helpers of the kernel may hold the pipe: end the whole group
    // SAFETY: as above; the group is ours (process_group(0) at spawn).
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = reader.join();
    let total = t0.elapsed();
    let (raw, started) = {
        let s = shared.lock().unwrap();
        (String::from_utf8_lossy(&s.0).replace('\r', ""), s.1)
    };
    let console = tail(
        &fs::read_to_string(&console_path)
            .unwrap_or_default()
            .replace('\r', ""),
        60,
    );
    let after_start = raw
        .split_once(&start_marker)
        .map(|(_, r)| r.strip_prefix('\n').unwrap_or(r));
    let exit_marker = format!("@@IPVS-VM-EXIT {nonce} ");
    let setup_marker = format!("@@IPVS-VM-SETUP-FAILED {nonce} ");
    if let Some(i) = raw.find(&setup_marker) {
        let reason = raw[i + setup_marker.len()..]
            .split("@@")
            .next()
            .unwrap_or("")
            .to_string();
        return Err(GuestError::Setup { reason, console });
    }
    let output_so_far = after_start.unwrap_or("").to_string();
    if timed_out {
        return Err(GuestError::Timeout {
            after: g.timeout,
            output: output_so_far,
            console,
        });
    }
    let Some(body) = after_start else {
        return Err(GuestError::NoExit {
            output: raw,
            console,
        });
    };
    let Some(i) = body.find(&exit_marker) else {
        return Err(GuestError::NoExit {
            output: output_so_far,
            console,
        });
    };
    let status: i32 = body[i + exit_marker.len()..]
        .split("@@")
        .next()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| GuestError::NoExit {
            output: output_so_far.clone(),
            console: console.clone(),
        })?;
    let output = body[..i].to_string();
    Ok(GuestOutput {
        status,
        output,
        boot: started.map(|s| s - t0).unwrap_or_default(),
        total,
    })
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ----------------------------------------------------------------- newc cpio

/// A minimal writer of the "newc" cpio format the kernel unpacks initramfs from.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
    dirs: BTreeSet<String>,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        if self.dirs.insert(name.to_string()) {
            self.entry(name, 0o040755, b"");
        }
    }

    /// Directory entries for every parent of `path` (never the top-level
    /// symlinks bin, sbin, lib, lib64: paths are mapped below usr/ first).
    fn parents(&mut self, path: &str) {
        let mut acc = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for p in &parts[..parts.len().saturating_sub(1)] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(p);
            let a = acc.clone();
            self.dir(&a);
        }
    }

    fn file(&mut self, name: &str, data: &[u8], perm: u32) {
        self.entry(name, 0o100000 | (perm & 0o7777), data);
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120777, target.as_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, b"");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_live_below_usr() {
        assert_eq!(
            guest_path("/lib/x86_64-linux-gnu/libc.so.6"),
            "usr/lib/x86_64-linux-gnu/libc.so.6"
        );
        assert_eq!(
            guest_path("/lib64/ld-linux-x86-64.so.2"),
            "usr/lib64/ld-linux-x86-64.so.2"
        );
        assert_eq!(guest_path("sbin/ip"), "usr/sbin/ip");
        assert_eq!(guest_path("/etc/ha.d/x"), "etc/ha.d/x");
        assert_eq!(guest_path("/library/x"), "library/x");
    }

    #[test]
    fn cpio_newc_layout() {
        let mut c = Cpio::default();
        c.file("a", b"xyz", 0o644);
        let b = c.finish();
        assert_eq!(&b[..6], b"070701");
        assert_eq!(&b[6..14], b"00000001"); // ino
        assert_eq!(&b[14..22], b"000081a4"); // regular file 0644
        assert_eq!(&b[54..62], b"00000003"); // size
        assert_eq!(&b[94..102], b"00000002"); // name size with NUL
        assert_eq!(&b[110..112], b"a\0");
        assert_eq!(&b[112..115], b"xyz"); // header+name = 112, 4-aligned
        assert_eq!(b.len() % 4, 0);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}
