//! Shared set-up of the cluster tests: two network namespaces joined by a
//! veth pair, a configuration directory, and a resource script that records
//! what it does.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::Netns;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_heartbeatd"))
}

/// The resource agent of the tests: `logres DIR start|stop|status`. Its
/// state is the file DIR/$HA_CURHOST.running; every start and stop is
/// appended to DIR/events with a timestamp and the node name, before the
/// state file changes: whoever sees the state change also finds the event.
pub const LOGRES: &str = r#"#!/bin/sh
dir=$1; node=${HA_CURHOST:-$(uname -n)}
f=$dir/$node.running
case $2 in
start) echo "$(date +%s.%N) $node start" >> "$dir/events"; touch "$f";;
stop)  if [ -e "$f" ]; then echo "$(date +%s.%N) $node stop" >> "$dir/events"; rm -f "$f"; fi;;
status) if [ -e "$f" ]; then echo running; else echo stopped; fi;;
*) exit 1;;
esac
exit 0
"#;

pub struct World {
    pub a: Netns,
    pub b: Netns,
    pub dir: tempfile::TempDir,
}

impl World {
    /// Two namespaces with `hb0` 10.91.0.1/24 and 10.91.0.2/24.
    pub fn new() -> World {
        lab::require_root("cluster tests");
        let a = Netns::new("hbA");
        let b = Netns::new("hbB");
        lab::veth(&a, "hb0", "10.91.0.1/24", &b, "hb0", "10.91.0.2/24");
        World {
            a,
            b,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where the resource records its state.
    pub fn res_dir(&self) -> PathBuf {
        self.path().join("res")
    }

    /// Writes a configuration directory `name` with the given authkeys and
    /// haresources line, keepalive 200ms, deadtime 1, initdead 2.
    pub fn conf(&self, name: &str, authkeys: &str, haresources: &str, extra: &str) -> PathBuf {
        self.conf_media(name, authkeys, haresources, "bcast hb0\n", extra)
    }

    /// Like [`World::conf`] with other medium lines than `bcast hb0`.
    pub fn conf_media(
        &self,
        name: &str,
        authkeys: &str,
        haresources: &str,
        media: &str,
        extra: &str,
    ) -> PathBuf {
        let d = self.path().join(name);
        fs::create_dir_all(d.join("resource.d")).unwrap();
        fs::create_dir_all(self.res_dir()).unwrap();
        fs::write(
            d.join("ha.cf"),
            format!(
                "keepalive 200ms\nwarntime 600ms\ndeadtime 1\ninitdead 2\nudpport 694\n\
                 {media}auto_failback on\nnode alpha\nnode beta\n{extra}"
            ),
        )
        .unwrap();
        fs::write(d.join("authkeys"), authkeys).unwrap();
        fs::set_permissions(d.join("authkeys"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(d.join("haresources"), format!("{haresources}\n")).unwrap();
        fs::write(d.join("resource.d/logres"), LOGRES).unwrap();
        fs::set_permissions(
            d.join("resource.d/logres"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        d
    }

    /// Does `node` run the logres resource now?
    pub fn runs(&self, node: &str) -> bool {
        self.res_dir().join(format!("{node}.running")).exists()
    }

    /// Waits until exactly the nodes in `owners` run it; panics with `why`
    /// (a closure giving the logs) otherwise.
    pub fn wait_owners(&self, owners: &[&str], secs: u64, why: impl Fn() -> String) {
        let ok = lab::wait_until(Duration::from_secs(secs), || {
            let now: Vec<&str> = ["alpha", "beta"]
                .into_iter()
                .filter(|n| self.runs(n))
                .collect();
            (now == owners).then_some(())
        });
        if ok.is_none() {
            let now: Vec<&str> = ["alpha", "beta"]
                .into_iter()
                .filter(|n| self.runs(n))
                .collect();
            panic!(
                "expected owners {owners:?}, have {now:?}\nevents:\n{}\n{}",
                fs::read_to_string(self.res_dir().join("events")).unwrap_or_default(),
                why()
            );
        }
    }

    /// A node crash: its resources vanish with it.
    pub fn lose_resources(&self, node: &str) {
        let _ = fs::remove_file(self.res_dir().join(format!("{node}.running")));
    }

    pub fn events(&self) -> String {
        fs::read_to_string(self.res_dir().join("events")).unwrap_or_default()
    }
}

pub const SHA1: &str = "auth 2\n2 sha1 somesecret\n";
