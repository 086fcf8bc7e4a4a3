//! The real judges of the OCF contract: Debian's `ocf-tester`
//! (resource-agents) runs its full sequence against each agent inside a
//! network namespace (ldirectord: against a CLI stand-in and against the
//! real ldirectord-rs daemon), and pacemaker's `crm_resource --force-*` drives
//! IPaddr installed under /usr/lib/ocf/resource.d/heartbeat-rs/.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{addrs, ldirectord_standin, pair, Agents};

fn ocf_tester(
    ns: &lab::Netns,
    ag: &Agents,
    name: &str,
    agent: &Path,
    opts: &[&str],
    env: &[(&str, &str)],
) {
    lab::ensure_packages(&["resource-agents", "libxml2-utils"]);
    let mut c = ns.cmd("ocf-tester");
    c.args(["-n", name]);
    for o in opts {
        c.args(["-o", o]);
    }
    c.arg(agent).env("HA_RSCTMP", &ag.state);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = lab::run(&mut c);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("{} passed all tests", agent.display())),
        "ocf-tester {name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(!stdout.contains("* rc="), "{stdout}");
}

#[test]
fn ipaddr_passes_ocf_tester() {
    let (a, _b) = pair();
    let ag = Agents::new();
    let before = addrs(&a);
    ocf_tester(
        &a,
        &ag,
        "vip",
        &ag.path("IPaddr"),
        &["ip=10.99.0.50", "cidr_netmask=24", "nic=va"],
        &[],
    );
    // interface and prefix chosen from the routes
    ocf_tester(&a, &ag, "vip2", &ag.path("IPaddr"), &["ip=10.99.0.52"], &[]);
    assert_eq!(addrs(&a), before);
    assert_eq!(ag.state_files(), Vec::<String>::new());
}

#[test]
fn lvs_passes_ocf_tester() {
    let (a, _b) = pair();
    let ag = Agents::new();
    ocf_tester(
        &a,
        &ag,
        "lvs",
        &ag.path("lvs"),
        &["vip=10.99.0.10", "mode=dr"],
        &[],
    );
}

#[test]
fn ldirectord_wrapper_passes_ocf_tester() {
    let ns = lab::Netns::new("raot");
    let ag = Agents::new();
    let bin = ldirectord_standin(ag.dir.path());
    let cf = ag.dir.path().join("ldirectord.cf");
    std::fs::write(&cf, "virtual=10.99.0.10:80\n\treal=10.99.0.101:80 ipip\n").unwrap();
    let pidfile = ag.dir.path().join("ld.pid");
    let o1 = format!("configfile={}", cf.display());
    let o2 = format!("ldirectord={}", bin.display());
    let o3 = format!("pidfile={}", pidfile.display());
    ocf_tester(
        &ns,
        &ag,
        "ld",
        &ag.path("ldirectord"),
        &[&o1, &o2, &o3],
        &[("LDSTANDIN_PIDFILE", pidfile.to_str().unwrap())],
    );
    assert!(!pidfile.exists());
}

/// Holds the machine-wide lock for our OCF provider directory while an
/// agent is installed there, and removes what it installed on drop.
struct Installed {
    path: std::path::PathBuf,
    _lock: std::fs::File,
}

const PROVIDER_DIR: &str = "/usr/lib/ocf/resource.d/heartbeat-rs";

impl Installed {
    fn new(name: &str, src: &Path) -> Installed {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/lock/heartbeat-rs-ocf-provider.lock")
            .expect("open provider lock");
        // SAFETY: flock on a descriptor we own; released when it closes.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        std::fs::create_dir_all(PROVIDER_DIR).unwrap();
        let path = Path::new(PROVIDER_DIR).join(name);
        std::fs::copy(src, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Installed { path, _lock: lock }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        // only if no other agent is installed there
        let _ = std::fs::remove_dir(PROVIDER_DIR);
    }
}

#[test]
fn crm_resource_drives_ipaddr() {
    lab::ensure_packages(&["pacemaker-cli-utils"]);
    let (a, _b) = pair();
    let ag = Agents::new();
    let _inst = Installed::new("IPaddr", &ag.path("IPaddr"));
    let crm = |op: &str, opts: &[&str]| {
        let mut c = a.cmd("crm_resource");
        c.args([
            op,
            "--class",
            "ocf",
            "--provider",
            "heartbeat-rs",
            "--agent",
            "IPaddr",
        ]);
        for o in opts {
            c.args(["--option", o]);
        }
        c.env("HA_RSCTMP", &ag.state);
        common::Run::from(lab::run(&mut c))
    };
    let p = ["ip=10.99.0.60", "cidr_netmask=24", "nic=va"];
    let r = crm("--validate", &p);
    r.rc(0);
    assert!(
        r.stdout
            .contains("Operation validate (ocf:heartbeat-rs:IPaddr) returned 0 (ok)"),
        "{r:?}"
    );
    let r = crm("--force-check", &p);
    r.rc(7);
    assert!(r.stdout.contains("returned 7 (not running)"), "{r:?}");
    let r = crm("--force-start", &p);
    r.rc(0);
    assert!(
        r.stdout
            .contains("Operation force-start (ocf:heartbeat-rs:IPaddr) returned 0 (ok)"),
        "{r:?}"
    );
    assert!(
        addrs(&a).contains("inet 10.99.0.60/24 brd 10.99.0.255"),
        "{}",
        addrs(&a)
    );
    crm("--force-check", &p).rc(0);
    crm("--force-start", &p).rc(0);
    crm("--force-stop", &p).rc(0);
    assert!(!addrs(&a).contains("10.99.0.60"), "{}", addrs(&a));
    crm("--force-check", &p).rc(7);
    crm("--force-stop", &p).rc(0);
    // the exit reason reaches crm_resource's verdict
    let r = crm("--validate", &["cidr_netmask=24"]);
    r.rc(6);
    assert!(
        r.stdout
            .contains("returned 6 (not configured: the ip parameter is mandatory)")
            || r.stderr
                .contains("returned 6 (not configured: the ip parameter is mandatory)"),
        "{r:?}"
    );
    let r = crm("--force-start", &["ip=10.99.0.61", "nic=nosuch0"]);
    r.rc(6);
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("Invalid interface name [nosuch0]"),
        "{r:?}"
    );
}

#[test]
fn ipvsadm_passes_ocf_tester_on_the_file_backend() {
    let ns = lab::Netns::new("raoi");
    let ag = Agents::new();
    let rules = ag.dir.path().join("ipvsadm.rules");
    std::fs::write(&rules, common::SEED_RULES).unwrap();
    let table = ag.dir.path().join("ipvs.json");
    let backend = format!("file:{}", table.display());
    let o = format!("rules={}", rules.display());
    ocf_tester(
        &ns,
        &ag,
        "ipvs",
        &ag.path("ipvsadm"),
        &[&o],
        &[("HANET_IPVS_BACKEND", &backend)],
    );
    use hanet::ipvs::IpvsBackend as _;
    let left = hanet::ipvs::FileBackend::new(&table).table().unwrap();
    assert!(left.is_empty(), "ocf-tester left services behind: {left:?}");
}

/// The real ldirectord-rs daemon binary, built (or found up to date) in this
/// test's target directory.
fn real_ldirectord() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap(); // target/<profile>
    let target_dir = profile_dir.parent().unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut c = std::process::Command::new(env!("CARGO"));
    c.args([
        "build",
        "-q",
        "-p",
        "ldirectord-rs",
        "--bin",
        "ldirectord",
        "--manifest-path",
    ])
    .arg(&manifest)
    .arg("--target-dir")
    .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        c.arg("--release");
    }
    lab::run_ok(&mut c);
    let bin = profile_dir.join("ldirectord");
    assert!(bin.is_file(), "{} not built", bin.display());
    bin
}

#[test]
fn ldirectord_wrapper_passes_ocf_tester_with_the_real_daemon() {
    let ns = lab::Netns::new("raor");
    let ag = Agents::new();
    let bin = real_ldirectord();
    // a unique configuration name: the daemon's pid file is /var/run/ldirectord.<name>.pid
    let cf = ag.dir.path().join(format!("ld-{}.cf", std::process::id()));
    std::fs::write(
        &cf,
        "checktimeout=3\ncheckinterval=1\nvirtual=10.99.0.10:80\n\treal=10.99.0.101:80 ipip\n\tservice=http\n\trequest=\"test.html\"\n\treceive=\"Test Page\"\n\tscheduler=rr\n\tprotocol=tcp\n",
    )
    .unwrap();
    let table = ag.dir.path().join("ipvs.json");
    let backend = format!("file:{}", table.display());
    let o1 = format!("configfile={}", cf.display());
    let o2 = format!("ldirectord={}", bin.display());
    ocf_tester(
        &ns,
        &ag,
        "ld",
        &ag.path("ldirectord"),
        &[&o1, &o2],
        &[("HANET_IPVS_BACKEND", &backend)],
    );
    let pidfile = format!("/var/run/ldirectord.ld-{}.cf.pid", std::process::id());
    assert!(!Path::new(&pidfile).exists(), "{pidfile} left behind");
    // heartbeat v1 through the wrapper: the daemon's status verdict reaches stdout
    let v1 = |verb: &str| {
        ag.run(
            &ns,
            "ldirectord",
            &[cf.to_str().unwrap(), verb],
            &[
                ("OCF_RESKEY_ldirectord", bin.to_str().unwrap()),
                ("HANET_IPVS_BACKEND", &backend),
            ],
        )
    };
    v1("start").rc(0);
    let st = v1("status");
    st.rc(0);
    assert!(st.stdout.starts_with("running (ldirectord for"), "{st:?}");
    v1("stop").rc(0);
    assert!(v1("status").stdout.starts_with("stopped"));
}
