//! Packaging (packaging/README.md): the tree `packaging/install-tree` lays
//! out, the RPM `packaging/heartbeat-rs.spec` builds from it, the systemd
//! units and the SysV init script.
//!
//! * the staged tree holds exactly the documented paths with their modes
//!   and contents, its symlinks are relative and resolve inside the tree,
//!   `authkeys` is 0600, `ipvsadm-standin` is not there and nothing is at
//!   `usr/sbin/ipvsadm`; the staged OCF agents print meta-data valid
//!   against the OCF DTD; the shipped samples pass `heartbeatd --check` and
//!   `ldirectord --check`, and every agent `haresources` names is found in
//!   the staged `resource.d`;
//! * `rpmbuild -bb` in prebuilt mode, with and without systemd: the RPM
//!   holds the staged tree's files (links, modes, `%config(noreplace)`,
//!   docs), creates `haclient`/`hacluster` in `%pre`, has no unexpanded
//!   macro in its scriptlets, conflicts with heartbeat and ldirectord and
//!   carries the workspace version;
//! * `systemd-analyze verify` accepts both units once the staged binaries are
//!   overlaid on /usr/sbin (private mount namespace), and refuses them
//!   without;
//! * the SysV script drives the staged heartbeatd in a network namespace:
//!   LSB exit codes of every verb, the VIP of `haresources` brought up
//!   through the staged `resource.d/IPaddr` and released on stop.
//!
//! The binaries are built like lab/tests/demo.rs builds the demo's: `$CARGO
//! build -p heartbeatd -p resource-agents -p ldirectord-rs --bins` into the
//! target directory of the `lab` binary (a no-op after `cargo test
//! --workspace`). Runs as root; installs rpm, libxml2-utils,
//! resource-agents (the OCF DTD) and systemd if they are missing, and fails
//! loudly if it cannot.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lab::{run, run_ok};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("lab lives in the workspace")
        .to_path_buf()
}

/// The directory with the packaged binaries, built once.
fn bindir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let bindir = lab::build_workspace_bins(
            Path::new(env!("CARGO_BIN_EXE_lab")),
            &["heartbeatd", "resource-agents", "ldirectord-rs"],
        );
        for b in BINARIES.iter().chain(["ipvsadm-standin"].iter()) {
            assert!(bindir.join(b).is_file(), "{b} missing after the build");
        }
        bindir
    })
}

/// The binaries install-tree takes from BINDIR.
const BINARIES: [&str; 10] = [
    "heartbeatd",
    "cl_status",
    "hb_standby",
    "hb_takeover",
    "IPaddr",
    "lvs",
    "ipvsadm",
    "ldirectord-ocf",
    "v1-ocf",
    "ldirectord",
];

/// heartbeat 3.0.6's v1 wrappers of resource-agents' OCF agents, served by
/// `v1-ocf` (resource-agents/src/v1ocf.rs); never its `hto-mapfuncs`.
const V1OCF_NAMES: [&str; 20] = [
    "AudibleAlarm",
    "Delay",
    "Filesystem",
    "ICP",
    "IPaddr2",
    "IPsrcaddr",
    "IPv6addr",
    "LVM",
    "LinuxSCSI",
    "MailTo",
    "Raid1",
    "SendArp",
    "ServeRAID",
    "WAS",
    "WinPopup",
    "Xinetd",
    "apache",
    "db2",
    "ids",
    "portblock",
];

/// What one path of the tree is.
#[derive(Debug)]
enum Entry {
    /// A binary of BINDIR, 0755.
    Bin(&'static str),
    /// A file of the source tree with its mode.
    Src(&'static str, u32),
    /// A symlink to this absolute path.
    Link(&'static str),
    /// A directory of its own (not only a parent).
    Dir,
}
use Entry::{Bin, Dir, Link, Src};

/// The documented layout (packaging/README.md), relative to DESTDIR.
const LAYOUT: &[(&str, Entry)] = &[
    ("usr/sbin/heartbeatd", Bin("heartbeatd")),
    (
        "usr/lib64/heartbeat/heartbeat",
        Link("/usr/sbin/heartbeatd"),
    ),
    (
        "usr/libexec/heartbeat/heartbeat",
        Link("/usr/sbin/heartbeatd"),
    ),
    ("usr/bin/cl_status", Bin("cl_status")),
    ("usr/share/heartbeat/hb_standby", Bin("hb_standby")),
    ("usr/share/heartbeat/hb_takeover", Bin("hb_takeover")),
    (
        "usr/bin/hb_standby",
        Link("/usr/share/heartbeat/hb_standby"),
    ),
    (
        "usr/bin/hb_takeover",
        Link("/usr/share/heartbeat/hb_takeover"),
    ),
    ("usr/sbin/ldirectord", Bin("ldirectord")),
    ("usr/libexec/heartbeat-rs/IPaddr", Bin("IPaddr")),
    ("usr/libexec/heartbeat-rs/lvs", Bin("lvs")),
    ("usr/libexec/heartbeat-rs/ipvsadm", Bin("ipvsadm")),
    (
        "usr/libexec/heartbeat-rs/ldirectord-ocf",
        Bin("ldirectord-ocf"),
    ),
    (
        "etc/ha.d/resource.d/IPaddr",
        Link("/usr/libexec/heartbeat-rs/IPaddr"),
    ),
    (
        "etc/ha.d/resource.d/lvs",
        Link("/usr/libexec/heartbeat-rs/lvs"),
    ),
    (
        "etc/ha.d/resource.d/ipvsadm",
        Link("/usr/libexec/heartbeat-rs/ipvsadm"),
    ),
    (
        "etc/ha.d/resource.d/ldirectord",
        Link("/usr/sbin/ldirectord"),
    ),
    ("usr/libexec/heartbeat-rs/v1-ocf", Bin("v1-ocf")),
    (
        "etc/ha.d/resource.d/AudibleAlarm",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/Delay",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/Filesystem",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/ICP",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/IPaddr2",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/IPsrcaddr",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/IPv6addr",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/LVM",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/LinuxSCSI",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/MailTo",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/Raid1",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/SendArp",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/ServeRAID",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/WAS",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/WinPopup",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/Xinetd",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/apache",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/db2",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/ids",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "etc/ha.d/resource.d/portblock",
        Link("/usr/libexec/heartbeat-rs/v1-ocf"),
    ),
    (
        "usr/lib/ocf/resource.d/heartbeat-rs/IPaddr",
        Link("/usr/libexec/heartbeat-rs/IPaddr"),
    ),
    (
        "usr/lib/ocf/resource.d/heartbeat-rs/lvs",
        Link("/usr/libexec/heartbeat-rs/lvs"),
    ),
    (
        "usr/lib/ocf/resource.d/heartbeat-rs/ipvsadm",
        Link("/usr/libexec/heartbeat-rs/ipvsadm"),
    ),
    (
        "usr/lib/ocf/resource.d/heartbeat-rs/ldirectord",
        Link("/usr/libexec/heartbeat-rs/ldirectord-ocf"),
    ),
    ("etc/ha.d/ha.cf", Src("etc/ha.d/ha.cf", 0o644)),
    ("etc/ha.d/haresources", Src("etc/ha.d/haresources", 0o644)),
    ("etc/ha.d/authkeys", Src("etc/ha.d/authkeys", 0o600)),
    (
        "etc/ha.d/ldirectord.cf",
        Src("etc/ha.d/ldirectord.cf", 0o644),
    ),
    ("etc/ha.d/shellfuncs", Src("etc/ha.d/shellfuncs", 0o644)),
    ("etc/sysconfig/ipvsadm", Src("etc/sysconfig/ipvsadm", 0o644)),
    ("etc/sysconfig/lvs", Src("etc/sysconfig/lvs", 0o644)),
    ("var/lib/heartbeat", Dir),
    (
        "usr/lib/systemd/system/heartbeat.service",
        Src("packaging/heartbeat.service", 0o644),
    ),
    (
        "usr/lib/systemd/system/ldirectord.service",
        Src("packaging/ldirectord.service", 0o644),
    ),
    (
        "etc/rc.d/init.d/heartbeat",
        Src("packaging/heartbeat.init", 0o755),
    ),
    (
        "etc/rc.d/init.d/ldirectord",
        Src("packaging/ldirectord.init", 0o755),
    ),
    (
        "etc/logrotate.d/heartbeat",
        Src("packaging/heartbeat.logrotate", 0o644),
    ),
    (
        "etc/logrotate.d/ldirectord",
        Src("packaging/ldirectord.logrotate", 0o644),
    ),
    (
        "usr/share/doc/heartbeat-rs/README.md",
        Src("README.md", 0o644),
    ),
    (
        "usr/share/doc/heartbeat-rs/README.heartbeatd.md",
        Src("heartbeatd/README.md", 0o644),
    ),
    (
        "usr/share/doc/heartbeat-rs/README.ldirectord.md",
        Src("ldirectord-rs/README.md", 0o644),
    ),
    (
        "usr/share/doc/heartbeat-rs/README.resource-agents.md",
        Src("resource-agents/README.md", 0o644),
    ),
    (
        "usr/share/doc/heartbeat-rs/README.packaging.md",
        Src("packaging/README.md", 0o644),
    ),
];

/// The configuration files (%config(noreplace) in the RPM).
const CONFIG: [&str; 8] = [
    "etc/ha.d/ha.cf",
    "etc/ha.d/haresources",
    "etc/ha.d/authkeys",
    "etc/ha.d/ldirectord.cf",
    "etc/sysconfig/ipvsadm",
    "etc/sysconfig/lvs",
    "etc/logrotate.d/heartbeat",
    "etc/logrotate.d/ldirectord",
];

/// A tree laid out by install-tree in a temporary directory.
struct Staged {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn stage() -> Staged {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    run_ok(
        Command::new("sh")
            .arg(repo().join("packaging/install-tree"))
            .arg(&root)
            .arg(bindir()),
    );
    Staged { _dir: dir, root }
}

/// Every path under `root` (relative), directories included.
fn walk(root: &Path) -> BTreeMap<PathBuf, std::fs::Metadata> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                todo.push(p.clone());
            }
            out.insert(p.strip_prefix(root).unwrap().to_path_buf(), m);
        }
    }
    out
}

/// `base.join(rel)` with `..` and `.` resolved lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                assert!(out.pop(), "{} climbs above /", p.display());
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

fn mode(m: &std::fs::Metadata) -> u32 {
    m.permissions().mode() & 0o7777
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn staged_tree_has_the_documented_layout() {
    let s = stage();
    let tree = walk(&s.root);
    let mut expected_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for (rel, entry) in LAYOUT {
        let p = s.root.join(rel);
        let m = std::fs::symlink_metadata(&p)
            .unwrap_or_else(|e| panic!("{rel} is missing from the tree: {e}"));
        match entry {
            Bin(name) => {
                assert!(m.is_file(), "{rel}: not a regular file");
                assert_eq!(mode(&m), 0o755, "{rel}");
                assert!(
                    std::fs::read(&p).unwrap() == std::fs::read(bindir().join(name)).unwrap(),
                    "{rel} is not the binary {name}"
                );
            }
            Src(src, want) => {
                assert!(m.is_file(), "{rel}: not a regular file");
                assert_eq!(mode(&m), *want, "{rel}: mode {:o}", mode(&m));
                assert_eq!(
                    std::fs::read(&p).unwrap(),
                    std::fs::read(repo().join(src)).unwrap(),
                    "{rel} differs from {src}"
                );
            }
            Link(target) => {
                assert!(m.file_type().is_symlink(), "{rel}: not a symlink");
                let to = std::fs::read_link(&p).unwrap();
                assert!(to.is_relative(), "{rel} -> {}: not relative", to.display());
                let resolved = normalize(&Path::new("/").join(rel).parent().unwrap().join(&to));
                assert_eq!(resolved, Path::new(target), "{rel} -> {}", to.display());
                let t = std::fs::metadata(&p)
                    .unwrap_or_else(|e| panic!("{rel} -> {}: dangling: {e}", to.display()));
                assert!(
                    t.is_file() && mode(&t) & 0o111 != 0,
                    "{rel} -> {}: not an executable file",
                    to.display()
                );
            }
            Dir => {
                assert!(m.is_dir(), "{rel}: not a directory");
                assert_eq!(mode(&m), 0o755, "{rel}");
                expected_dirs.insert(PathBuf::from(rel));
            }
        }
        let mut a = Path::new(rel).parent();
        while let Some(d) = a.filter(|d| !d.as_os_str().is_empty()) {
            expected_dirs.insert(d.to_path_buf());
            a = d.parent();
        }
    }
    // nothing else: no stray file or empty directory
    let listed: BTreeSet<PathBuf> = LAYOUT.iter().map(|(r, _)| PathBuf::from(r)).collect();
    for (rel, m) in &tree {
        if m.is_dir() {
            assert!(expected_dirs.contains(rel), "unexpected directory {rel:?}");
        } else {
            assert!(listed.contains(rel), "unexpected file {rel:?}");
        }
    }
    // the explicit promises
    assert_eq!(
        mode(&std::fs::metadata(s.root.join("etc/ha.d/authkeys")).unwrap()),
        0o600
    );
    assert!(
        std::fs::symlink_metadata(s.root.join("usr/sbin/ipvsadm")).is_err(),
        "something was installed at /usr/sbin/ipvsadm"
    );
    assert!(bindir().join("ipvsadm-standin").is_file());
    for rel in tree.keys() {
        assert!(
            !rel.to_string_lossy().contains("ipvsadm-standin"),
            "the test tool was installed: {rel:?}"
        );
    }
    // heartbeat finds every agent of the sample haresources in resource.d
    let hr = std::fs::read_to_string(s.root.join("etc/ha.d/haresources")).unwrap();
    let mut scripts = BTreeSet::new();
    for line in hr.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for res in line.split_whitespace().skip(1) {
            let script = res.split("::").next().unwrap();
            scripts.insert(script.to_owned());
        }
    }
    assert_eq!(
        scripts,
        ["IPaddr", "ipvsadm", "ldirectord", "lvs"]
            .map(String::from)
            .into(),
        "{hr}"
    );
    for sc in &scripts {
        let m = std::fs::metadata(s.root.join("etc/ha.d/resource.d").join(sc)).unwrap();
        assert!(m.is_file() && mode(&m) & 0o111 != 0, "resource.d/{sc}");
    }
    // the v1 wrappers of OCF agents: every name of 3.0.6's resource.d that
    // goes through hto-mapfuncs (but IPaddr, ours), and no hto-mapfuncs
    let rd = s.root.join("etc/ha.d/resource.d");
    let mut listed: Vec<String> = std::fs::read_dir(&rd)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    let mut want: Vec<String> = ["IPaddr", "ipvsadm", "ldirectord", "lvs"]
        .iter()
        .chain(V1OCF_NAMES.iter())
        .map(|n| n.to_string())
        .collect();
    want.sort();
    assert_eq!(listed, want);
    // called by those names, the staged binary answers as the wrapper:
    // no arguments is the usage, exit 1
    for n in V1OCF_NAMES {
        let p = rd.join(n);
        let o = run(&mut Command::new(&p));
        assert_eq!(o.status.code(), Some(1), "{n}: {}", text(&o));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            all.contains(&format!("{} ", p.display()))
                && all.contains("(start|stop|status|usage|meta-data)"),
            "{n}: {all}"
        );
    }
}

#[test]
fn install_tree_refuses_bad_use() {
    let d = tempfile::tempdir().unwrap();
    let script = repo().join("packaging/install-tree");
    let o = run(Command::new("sh").arg(&script).arg(d.path().join("x")));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // a BINDIR without the binaries: nothing is installed
    let o = run(Command::new("sh")
        .arg(&script)
        .arg(d.path().join("x"))
        .arg(d.path()));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("heartbeatd: no such executable"),
        "{}",
        text(&o)
    );
    assert!(!d.path().join("x").exists());
}

#[test]
fn staged_agents_print_valid_ocf_meta_data() {
    lab::ensure_packages(&["libxml2-utils", "resource-agents"]);
    let dtd_dir = Path::new("/usr/share/resource-agents");
    assert!(
        dtd_dir.join("ra-api-1.dtd").is_file(),
        "resource-agents has no ra-api-1.dtd"
    );
    let s = stage();
    let ocf = s.root.join("usr/lib/ocf/resource.d/heartbeat-rs");
    let mut names: Vec<String> = std::fs::read_dir(&ocf)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["IPaddr", "ipvsadm", "ldirectord", "lvs"]);
    let mut agents: Vec<PathBuf> = names.iter().map(|n| ocf.join(n)).collect();
    // the heartbeat v1 entries that are agents (resource.d/ldirectord is the daemon)
    for n in ["IPaddr", "lvs", "ipvsadm"] {
        agents.push(s.root.join("etc/ha.d/resource.d").join(n));
    }
    for a in agents {
        let o = run(Command::new(&a).arg("meta-data"));
        assert_eq!(o.status.code(), Some(0), "{}: {}", a.display(), text(&o));
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        let xml = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            xml.contains(&format!("<resource-agent name=\"{name}\"")),
            "{}: {xml}",
            a.display()
        );
        // valid against the OCF DTD (the DOCTYPE names ra-api-1.dtd, found
        // relative to the working directory)
        let mut c = Command::new("xmllint");
        c.current_dir(dtd_dir)
            .args(["--noout", "--nonet", "--dtdvalid", "ra-api-1.dtd", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("run xmllint");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(xml.as_bytes())
            .unwrap();
        let v = child.wait_with_output().unwrap();
        assert!(
            v.status.success() && v.stderr.is_empty(),
            "{}: xmllint: {}\n{xml}",
            a.display(),
            text(&v)
        );
    }
    // and xmllint does refuse what is not OCF meta-data
    let mut c = Command::new("xmllint");
    c.current_dir(dtd_dir)
        .args(["--noout", "--nonet", "--dtdvalid", "ra-api-1.dtd", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"<?xml version=\"1.0\"?>\n<resource-agent name=\"x\"><bogus/></resource-agent>\n",
        )
        .unwrap();
    assert!(!child.wait_with_output().unwrap().status.success());
}

#[test]
fn staged_samples_pass_the_daemons_checks() {
    let s = stage();
    let ha = s.root.join("etc/ha.d");
    for node in ["loadbalancer", "backup"] {
        std::fs::write(ha.join("nodeinfo"), format!("{node}\n")).unwrap();
        let o = run(Command::new(s.root.join("usr/sbin/heartbeatd"))
            .arg("--check")
            .arg("-c")
            .arg(&ha));
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let y = String::from_utf8_lossy(&o.stdout);
        assert!(y.contains(&format!("# node: {node}")), "{y}");
        assert!(
            y.contains("ldirectord") && y.contains("192.168.136.10"),
            "{y}"
        );
    }
    // the check is real: authkeys readable by others is refused (exit 6)
    std::fs::set_permissions(ha.join("authkeys"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(Command::new(s.root.join("usr/sbin/heartbeatd"))
        .arg("--check")
        .arg("-c")
        .arg(&ha));
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    // ldirectord's sample, through the 3.0.6 compatibility path of the tree
    let o = run(Command::new(s.root.join("usr/sbin/ldirectord"))
        .arg("--check")
        .arg(ha.join("ldirectord.cf")));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("virtual=192.168.136.10:80"),
        "{}",
        text(&o)
    );
    // the agents' samples: the lvs agent (named without arguments in
    // haresources) and the ipvsadm agent validate with the staged files
    for (agent, param, file) in [
        ("lvs", "OCF_RESKEY_config", "etc/sysconfig/lvs"),
        ("ipvsadm", "OCF_RESKEY_rules", "etc/sysconfig/ipvsadm"),
    ] {
        let o = run(Command::new(s.root.join("etc/ha.d/resource.d").join(agent))
            .arg("validate-all")
            .env("OCF_ROOT", "/usr/lib/ocf")
            .env("OCF_RESOURCE_INSTANCE", "sample")
            .env(param, s.root.join(file)));
        assert_eq!(o.status.code(), Some(0), "{agent}: {}", text(&o));
    }
    // scripts written for 3.0.6 source $HA_FUNCS (set by heartbeatd)
    let o = run(Command::new("sh")
        .arg("-c")
        .arg(". \"$HA_FUNCS\" && ha_parameter keepalive && ha_parameter deadtime && type ha_log >/dev/null")
        .env("HA_DIR", &ha)
        .env("HA_FUNCS", ha.join("shellfuncs")));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "2\n30\n",
        "{}",
        text(&o)
    );
    // the compatibility paths run the same daemon
    for p in [
        "usr/lib64/heartbeat/heartbeat",
        "usr/libexec/heartbeat/heartbeat",
    ] {
        let o = run(Command::new(s.root.join(p)).arg("-V"));
        assert_eq!(o.status.code(), Some(0), "{p}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("(heartbeatd)"),
            "{p}: {}",
            text(&o)
        );
    }
}

/// Builds the RPM in prebuilt mode; returns the .rpm (inside `top`).
fn rpmbuild(top: &Path, extra: &[&str]) -> PathBuf {
    let t = Instant::now();
    let mut c = Command::new("rpmbuild");
    c.arg("-bb")
        // Debian's rpm has no RPM database of the build host's packages
        .arg("--nodeps")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("prebuilt_dir {}", bindir().display()))
        .arg("--define")
        .arg(format!("source_dir {}", repo().display()))
        .args(extra)
        .arg(repo().join("packaging/heartbeat-rs.spec"));
    run_ok(&mut c);
    eprintln!("{c:?}: {:?}", t.elapsed());
    let dir = top.join("RPMS/x86_64");
    let rpms: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(rpms.len(), 1, "{rpms:?}");
    rpms[0].clone()
}

fn rpm_q(rpm: &Path, args: &[&str]) -> String {
    run_ok(Command::new("rpm").arg("-qp").args(args).arg(rpm))
}

/// (path, mode, link target, flags) of every file of the package.
fn rpm_files(rpm: &Path) -> BTreeMap<String, (u32, String, String)> {
    rpm_q(
        rpm,
        &[
            "--qf",
            "[%{FILENAMES}\\t%{FILEMODES:octal}\\t%{FILELINKTOS}\\t%{FILEFLAGS:fflags}\\n]",
        ],
    )
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f.len(), 4, "{l:?}");
        (
            f[0].to_owned(),
            (
                u32::from_str_radix(f[1], 8).unwrap(),
                f[2].to_owned(),
                f[3].to_owned(),
            ),
        )
    })
    .collect()
}

#[test]
fn rpm_from_prebuilt_binaries() {
    lab::require_root("building an RPM (installs the rpm package)");
    lab::ensure_packages(&["rpm"]);
    let s = stage();
    let staged = walk(&s.root);
    let top = tempfile::tempdir().unwrap();
    let rpm = rpmbuild(top.path(), &[]);

    assert_eq!(
        rpm_q(&rpm, &["--qf", "%{NAME} %{VERSION}"]),
        format!("heartbeat-rs {}", env!("CARGO_PKG_VERSION"))
    );
    let files = rpm_files(&rpm);
    // the files and links of the staged tree, without the SysV scripts
    let want: BTreeSet<String> = staged
        .iter()
        .filter(|(rel, m)| !m.is_dir() && !rel.starts_with("etc/rc.d"))
        .map(|(rel, _)| format!("/{}", rel.display()))
        .collect();
    let have: BTreeSet<String> = files
        .iter()
        .filter(|(_, (mode, _, _))| mode & 0o170000 != 0o040000)
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(have, want);
    for (p, (fmode, link, _)) in &files {
        let rel = p.trim_start_matches('/');
        let m = staged
            .get(Path::new(rel))
            .unwrap_or_else(|| panic!("{p} is not in the staged tree"));
        if m.file_type().is_symlink() {
            assert_eq!(fmode & 0o170000, 0o120000, "{p}");
            assert_eq!(
                Path::new(link),
                std::fs::read_link(s.root.join(rel)).unwrap(),
                "{p}"
            );
        } else {
            assert_eq!(fmode & 0o7777, mode(m), "{p}");
        }
    }
    assert_eq!(files["/etc/ha.d/authkeys"].0, 0o100600);
    assert_eq!(files["/var/lib/heartbeat"].0, 0o040755);
    let dump = rpm_q(&rpm, &["--dump"]);
    let authkeys = dump
        .lines()
        .find(|l| l.starts_with("/etc/ha.d/authkeys "))
        .expect("authkeys in --dump");
    assert!(
        authkeys.contains(" 0100600 root root 1 "),
        "authkeys must be root:root 0600 and config: {authkeys}"
    );
    // configuration files: exactly these, all noreplace
    let config: BTreeSet<String> = files
        .iter()
        .filter(|(_, (_, _, f))| f.contains('c'))
        .map(|(p, (_, _, f))| {
            assert!(f.contains('n'), "{p} is %config without noreplace");
            p.clone()
        })
        .collect();
    assert_eq!(
        config,
        CONFIG
            .iter()
            .map(|c| format!("/{c}"))
            .collect::<BTreeSet<_>>()
    );
    assert!(files["/usr/share/doc/heartbeat-rs/README.md"]
        .2
        .contains('d'));
    assert!(!files.keys().any(|p| p.contains(".build-id")));

    let scripts = rpm_q(&rpm, &["--scripts"]);
    for want in [
        "getent group haclient >/dev/null || groupadd -r haclient",
        "getent passwd hacluster >/dev/null ||",
        "useradd -r -g haclient -d /var/lib/heartbeat -s /sbin/nologin",
        "systemctl --no-reload preset heartbeat.service ldirectord.service",
        "disable --now heartbeat.service ldirectord.service",
        "daemon-reload",
    ] {
        assert!(scripts.contains(want), "{want:?} not in:\n{scripts}");
    }
    assert!(!scripts.contains('%'), "unexpanded macro:\n{scripts}");
    assert!(
        !scripts.contains("try-restart") && !scripts.contains("mark-restart"),
        "an update must not restart heartbeat:\n{scripts}"
    );
    let conflicts: BTreeSet<String> = rpm_q(&rpm, &["--conflicts"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        conflicts,
        ["heartbeat", "heartbeat-ldirectord", "ldirectord"]
            .map(String::from)
            .into()
    );
    // the v1 wrappers run resource-agents' OCF agents: a weak dependency
    assert_eq!(rpm_q(&rpm, &["--recommends"]).trim(), "resource-agents");
    let provides = rpm_q(&rpm, &["--provides"]);
    assert!(
        !provides.lines().any(|l| l.starts_with("heartbeat ")),
        "{provides}"
    );

    // --without systemd: the SysV scripts instead of the units
    let top2 = tempfile::tempdir().unwrap();
    let rpm2 = rpmbuild(top2.path(), &["--without", "systemd"]);
    let initddir = run_ok(Command::new("rpm").args(["--eval", "%{_initddir}"]));
    let initddir = initddir.trim();
    let files2 = rpm_files(&rpm2);
    for n in ["heartbeat", "ldirectord"] {
        let p = format!("{initddir}/{n}");
        assert_eq!(files2.get(&p).map(|f| f.0), Some(0o100755), "{p}");
    }
    assert!(!files2.keys().any(|p| p.contains("systemd")), "{files2:?}");
    let scripts2 = rpm_q(&rpm2, &["--scripts"]);
    assert!(
        scripts2.contains("/sbin/chkconfig --add heartbeat")
            && !scripts2.contains("chkconfig --add ldirectord")
            && scripts2.contains("groupadd -r haclient")
            && !scripts2.contains("systemctl")
            && !scripts2.contains('%'),
        "{scripts2}"
    );
}

#[test]
fn systemd_units_verify() {
    lab::require_root("mount namespaces");
    lab::ensure_packages(&["systemd"]);
    let s = stage();
    let units = s.root.join("usr/lib/systemd/system");
    // Without the binaries installed the verifier must complain (it checks
    // the Exec paths), so the passing run below means something.
    let o = run(Command::new("systemd-analyze")
        .current_dir("/")
        .arg("verify")
        .arg(units.join("heartbeat.service")));
    if !Path::new("/usr/sbin/heartbeatd").exists() {
        assert!(
            !o.status.success()
                && String::from_utf8_lossy(&o.stderr).contains("/usr/sbin/heartbeatd"),
            "{}",
            text(&o)
        );
    }
    // The staged /usr/sbin over the real one, in a private mount namespace.
    let script = format!(
        "mount -t overlay overlay -o lowerdir={}:/usr/sbin /usr/sbin && cd / && \
         systemd-analyze verify {} {}",
        s.root.join("usr/sbin").display(),
        units.join("heartbeat.service").display(),
        units.join("ldirectord.service").display()
    );
    let o = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(&script));
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "systemd-analyze verify: {}",
        text(&o)
    );
    // the decisions of packaging/README.md
    let unit = std::fs::read_to_string(units.join("heartbeat.service")).unwrap();
    let keys: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for want in [
        "Type=forking",
        "PIDFile=/run/heartbeat.pid",
        "ExecStartPre=/bin/sh -c 'exec /usr/sbin/heartbeatd --check $$HEARTBEATD_OPTS >/dev/null'",
        "ExecStart=/usr/sbin/heartbeatd $HEARTBEATD_OPTS",
        "ExecReload=/usr/sbin/heartbeatd -r $HEARTBEATD_OPTS",
        "KillMode=process",
        "TimeoutStopSec=30min",
        "SendSIGKILL=no",
        "After=network-online.target",
        "Wants=network-online.target",
        "WantedBy=multi-user.target",
    ] {
        assert!(keys.contains(&want), "heartbeat.service lacks {want:?}");
    }
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with("ExecStart=") && k.contains(" -f")),
        "Type=forking needs the daemonizing start"
    );
}

/// Is `pid` a live process (a zombie left for PID 1 to reap is not)?
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()?
                .split_whitespace()
                .next()
                .map(|st| st != "Z")
        })
        .unwrap_or(false)
}

/// Waits until `f` holds, or panics with `why()`.
fn wait(secs: u64, what: &str, mut f: impl FnMut() -> bool, why: impl Fn() -> String) {
    if lab::wait_until(Duration::from_secs(secs), || f().then_some(())).is_none() {
        panic!("{what} within {secs} s\n{}", why());
    }
}

#[test]
fn init_script_drives_the_staged_heartbeatd() {
    lab::require_root("network namespaces");
    let s = stage();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let ns = lab::Netns::new("hbpk");
    // hb0 = one end of a veth pair whose other end stays in the namespace
    ns.ip(&["link", "add", "hb0", "type", "veth", "peer", "name", "hb1"]);
    ns.ip(&["addr", "add", "10.77.0.1/24", "brd", "+", "dev", "hb0"]);
    ns.ip(&["link", "set", "hb0", "up"]);
    ns.ip(&["link", "set", "hb1", "up"]);

    // a one-node cluster on hb0 whose group is a VIP through the staged
    // resource.d/IPaddr
    let ha = s.root.join("etc/ha.d");
    std::fs::write(
        ha.join("ha.cf"),
        format!(
            "logfile {}\ndebugfile {}\nkeepalive 200ms\nwarntime 600ms\ndeadtime 1\n\
             initdead 2\nudpport 694\nbcast hb0\nauto_failback on\nnode alpha\nnode beta\n",
            w.join("ha-log").display(),
            w.join("ha-debug").display()
        ),
    )
    .unwrap();
    std::fs::write(ha.join("haresources"), "alpha IPaddr::10.77.0.100/24/hb0\n").unwrap();
    std::fs::write(ha.join("nodeinfo"), "alpha\n").unwrap();
    let run_dir = w.join("run");
    let pidfile = run_dir.join("heartbeat.pid");
    let lockfile = w.join("subsys/heartbeat");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::create_dir_all(lockfile.parent().unwrap()).unwrap();
    std::fs::create_dir_all(w.join("rsctmp")).unwrap();
    // the settings come from the defaults file, as /etc/sysconfig/heartbeat
    let defaults = w.join("sysconfig-heartbeat");
    std::fs::write(
        &defaults,
        format!(
            "HA_DIR={}\nHEARTBEAT_STATE_DIR={}\nHEARTBEAT_RUN_DIR={}\nHEARTBEAT_LOCKFILE={}\n\
             HEARTBEATD_OPTS=-l\n",
            ha.display(),
            s.root.join("var/lib/heartbeat").display(),
            run_dir.display(),
            lockfile.display()
        ),
    )
    .unwrap();
    let script = s.root.join("etc/rc.d/init.d/heartbeat");
    let heartbeatd = s.root.join("usr/sbin/heartbeatd");
    let init_with = |bin: &Path, args: &[&str]| -> Output {
        run(ns
            .cmd("sh")
            .arg(&script)
            .args(args)
            .env("HEARTBEATD", bin)
            .env("HEARTBEAT_DEFAULTS", &defaults)
            .env("HA_RSCTMP", w.join("rsctmp")))
    };
    let t0 = Instant::now();
    let init = |args: &[&str]| {
        let o = init_with(&heartbeatd, args);
        eprintln!(
            "{:>7.2?} init {args:?}: {:?}",
            t0.elapsed(),
            o.status.code()
        );
        o
    };
    let log = || {
        format!(
            "ha-log:\n{}\nha-debug:\n{}",
            std::fs::read_to_string(w.join("ha-log")).unwrap_or_default(),
            std::fs::read_to_string(w.join("ha-debug")).unwrap_or_default()
        )
    };
    let vip = || {
        ns.ip(&["-4", "addr", "show", "dev", "hb0"])
            .contains("10.77.0.100/24")
    };
    let pid = || -> Option<i32> { std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok() };
    let stdout = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();

    assert_eq!(
        run(Command::new("sh").arg("-n").arg(&script)).status.code(),
        Some(0)
    );
    let o = init(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = init(&["bogus"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Usage:"),
        "{}",
        text(&o)
    );
    let o = init(&["status"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(stdout(&o), "heartbeat is stopped. No process\n");
    assert_eq!(init(&["reload"]).status.code(), Some(7));
    assert_eq!(init(&["try-restart"]).status.code(), Some(0));
    assert_eq!(
        init(&["status"]).status.code(),
        Some(3),
        "try-restart started it"
    );
    let o = init(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stdout(&o).contains("# node: alpha"), "{}", text(&o));
    // not installed
    let missing = w.join("no-such-heartbeatd");
    assert_eq!(init_with(&missing, &["start"]).status.code(), Some(5));
    assert_eq!(init_with(&missing, &["stop"]).status.code(), Some(0));
    assert_eq!(init_with(&missing, &["status"]).status.code(), Some(4));

    // start: returns once the daemon runs
    let o = init(&["start"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), log());
    let first = pid().expect("pid file after start");
    assert!(lockfile.exists(), "no subsys lock");
    let cmdline = std::fs::read(format!("/proc/{first}/cmdline")).unwrap();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    assert!(
        args.contains(&&b"-l"[..]),
        "HEARTBEATD_OPTS not passed: {args:?}"
    );
    let o = init(&["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stdout(&o).contains("is running on alpha"), "{}", text(&o));
    wait(20, "the VIP through resource.d/IPaddr", vip, log);
    let o = init(&["start"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stdout(&o).contains("already running"), "{}", text(&o));
    assert_eq!(pid(), Some(first));
    let o = init(&["reload"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    wait(
        5,
        "authkeys re-read",
        || log().contains("authkeys re-read on SIGHUP"),
        log,
    );

    // heartbeatd delays a stop until the start-up transition has ended (and,
    // as long as the peer has never been seen, for its 30 s cap on a
    // delayed shutdown: each stop below takes about 30 s)
    wait(
        20,
        "the end of the local resource transition",
        || log().contains("local resource transition completed."),
        log,
    );
    // restart: a new daemon, the group released and taken again
    let o = init(&["restart"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), log());
    let second = pid().expect("pid file after restart");
    assert_ne!(second, first);
    assert!(!alive(first), "the first daemon still runs");
    wait(20, "the VIP after restart", vip, log);

    // stop: the group is released, nothing is left running
    let o = init(&["stop"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), log());
    assert!(!vip(), "the VIP is still up after stop\n{}", log());
    assert!(!pidfile.exists() && !lockfile.exists());
    let left: Vec<i32> = ns.pids().into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "left running: {left:?}");
    assert_eq!(init(&["status"]).status.code(), Some(3));
    assert_eq!(init(&["stop"]).status.code(), Some(0), "stop when stopped");

    // dead daemons: a stale pid file, a stale subsys lock
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(&pidfile, format!("{gone_pid}\n")).unwrap();
    let o = init(&["status"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    std::fs::remove_file(&pidfile).unwrap();
    std::fs::write(&lockfile, "").unwrap();
    let o = init(&["status"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
