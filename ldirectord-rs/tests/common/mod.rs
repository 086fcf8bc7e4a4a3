//! Helpers shared by the integration tests: a private directory per test
//! (pid files, table file, logs, configs), the daemon's command line with
//! the test environment, and readers for the IPVS table the daemon keeps.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hanet::ipvs::{FileBackend, IpvsBackend, Table};

pub const BIN: &str = env!("CARGO_BIN_EXE_ldirectord");
pub const STANDIN: &str = env!("CARGO_BIN_EXE_ipvsadm-standin");

/// A test's private world.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new().prefix("ldrs-").tempdir().unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        Env { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn table_path(&self) -> PathBuf {
        self.path("ipvs.json")
    }

    /// Writes a file (configs, scripts) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `ldirectord ARGS` with the test's run dir, table file and an empty
    /// /etc/ha.d stand-in; inside `ns` if given.
    pub fn cmd(&self, ns: Option<&lab::Netns>, args: &[&str]) -> Command {
        let mut c = match ns {
            Some(ns) => {
                let mut c = ns.cmd(BIN);
                c.args(args);
                c
            }
            None => {
                let mut c = Command::new(BIN);
                c.args(args);
                c
            }
        };
        c.env("LDIRECTORD_RUNDIR", self.path("run"))
            .env("LDIRECTORD_HA_DIR", self.path("ha.d"))
            .env(
                "HANET_IPVS_BACKEND",
                format!("file:{}", self.table_path().display()),
            )
            .env_remove("HOSTNAME");
        c
    }

    pub fn run(&self, ns: Option<&lab::Netns>, args: &[&str]) -> Output {
        self.cmd(ns, args).output().unwrap()
    }

    pub fn table(&self) -> Table {
        FileBackend::new(self.table_path()).table().unwrap()
    }

    /// Destinations of every service: "TCP 10.0.0.1:80" -> {"10.0.0.2:80": weight}.
    pub fn dests(&self) -> BTreeMap<String, BTreeMap<String, u32>> {
        self.table()
            .entries()
            .map(|e| {
                (
                    e.service.key.to_string(),
                    e.dests
                        .values()
                        .map(|d| (d.key().to_string(), d.weight))
                        .collect(),
                )
            })
            .collect()
    }

    /// The destinations of one service (empty if it is absent).
    pub fn service(&self, key: &str) -> BTreeMap<String, u32> {
        self.dests().remove(key).unwrap_or_default()
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    pub fn pid_of(&self, cfgname: &str) -> Option<i32> {
        std::fs::read_to_string(self.path("run").join(format!("ldirectord.{cfgname}.pid")))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
}

/// Polls `f` every 20 ms for up to `limit`; returns how long it took.
pub fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    loop {
        if f() {
            return Some(t0.elapsed());
        }
        if t0.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub fn map(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// A CA and a server certificate for `cn` signed by it, made with
/// openssl (for https tests): (CA certificate, server certificate, key).
pub fn certificates(dir: &Path, cn: &str) -> (PathBuf, PathBuf, PathBuf) {
    lab::ensure_packages(&["openssl"]);
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    lab::run_ok(
        Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args(["-days", "2", "-subj", "/CN=lab test CA", "-keyout"])
            .args([p("ca.key"), "-out".into(), p("ca.pem")]),
    );
    lab::run_ok(
        Command::new("openssl")
            .args(["req"])
            .args(ec)
            .args(["-subj", &format!("/CN={cn}"), "-keyout"])
            .args([p("key.pem"), "-out".into(), p("req.pem")]),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        format!(
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:{cn}\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    lab::run_ok(Command::new("openssl").args([
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        &p("req.pem"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-extfile",
        &p("ext.cnf"),
        "-out",
        &p("cert.pem"),
    ]));
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}
