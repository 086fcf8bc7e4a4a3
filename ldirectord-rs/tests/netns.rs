//! The daemon against real servers in network namespaces: a director
//! namespace (`lb`, 10.99.0.1) where ldirectord runs, a real-server
//! namespace (`rs`, 10.99.0.2-4) with the servers, a veth between them. The
//! IPVS table is hanet's file backend (this kernel has no IPVS); the same
//! scenarios run against the real kernel table in `ipvs_guest.rs`.

mod common;

use common::*;
use lab::servers::{self, Page, Proto};
use lab::Netns;
use std::collections::BTreeMap;
use std::time::Duration;

const VS: &str = "TCP 10.99.0.100:80";

struct World {
    lb: Netns,
    rs: Netns,
}

fn world(extra_rs_addrs: &[&str]) -> World {
    lab::require_root("the ldirectord namespace tests");
    let lb = Netns::new("ldlb");
    let rs = Netns::new("ldrs");
    lab::veth(&lb, "lbv", "10.99.0.1/24", &rs, "rsv", "10.99.0.2/24");
    for a in extra_rs_addrs {
        rs.ip(&["addr", "add", a, "dev", "rsv"]);
    }
    World { lb, rs }
}

fn http(ns: &Netns, ip: &str) -> servers::Server {
    servers::tcp(
        Some(ns.name()),
        &[format!("{ip}:80").parse().unwrap()],
        Proto::Http(vec![
            Page::ok("/test.html", "<html>Test Page</html>"),
            Page::ok("/other.html", "Other"),
        ]),
        2,
    )
    .unwrap()
}

/// Kills the daemon if the test fails half-way (the namespaces' drop does
/// too, this is for clarity).
struct Stopper<'a> {
    e: &'a Env,
    ns: &'a Netns,
    cfg: String,
}

impl Drop for Stopper<'_> {
    fn drop(&mut self) {
        let _ = self.e.run(Some(self.ns), &[&self.cfg, "stop"]);
    }
}

fn wait_table(e: &Env, key: &str, want: &BTreeMap<String, u32>, limit: Duration) -> Duration {
    within(limit, || &e.service(key) == want).unwrap_or_else(|| {
        panic!(
            "{key} did not become {want:?} within {limit:?}: {:?}\nlog:\n{}",
            e.service(key),
            e.read("ld.log")
        )
    })
}

/// Removal within checkinterval + checktimeout (+2 s for the test's own
/// polling and a loaded 2-core CI machine running other tests).
const LIMIT: Duration = Duration::from_secs(1 + 2 + 2);

#[test]
fn http_reals_go_and_come_back_blackhole_fallback_and_reload() {
    lab::ensure_packages(&["nftables"]);
    let w = world(&["10.99.0.3/24", "10.99.0.4/24"]);
    let e = Env::new();
    let s2 = http(&w.rs, "10.99.0.2");
    let mut s3 = http(&w.rs, "10.99.0.3");
    let s4 = http(&w.rs, "10.99.0.4");
    let sink = servers::smtp_sink(Some(w.lb.name()), "127.0.0.1:25".parse().unwrap()).unwrap();
    let cfg_text = |w2: u32, extra: &str| {
        format!(
            "logfile=\"{}\"\nchecktimeout=2\ncheckinterval=1\nemailalert=\"ops@example.com\"\nsmtp=127.0.0.1\n\
             virtual=10.99.0.100:80\n\treal=10.99.0.2:80 gate {w2}\n\treal=10.99.0.3:80 gate 2\n\treal=10.99.0.4:80 gate 3\n\
             \tfallback=127.0.0.1:80\n\trequest=\"test.html\"\n\treceive=\"Test Page\"\n\tvirtualhost=www.funbsd.net\n\
             \tscheduler=rr\n\tmonitorfile=\"{}\"\n{extra}",
            e.path("ld.log").display(),
            e.path("mon.log").display()
        )
    };
    let cfg = e.write("www.cf", &cfg_text(1, ""));
    let c = cfg.to_str().unwrap().to_string();
    let o = e.run(Some(&w.lb), &[&c, "start"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let _stop = Stopper {
        e: &e,
        ns: &w.lb,
        cfg: c.clone(),
    };
    let all = map(&[
        ("10.99.0.2:80", 1),
        ("10.99.0.3:80", 2),
        ("10.99.0.4:80", 3),
    ]);
    wait_table(&e, VS, &all, Duration::from_secs(5));

    // a server dies: it leaves the table within checkinterval + checktimeout
    s3.stop();
    let took = wait_table(
        &e,
        VS,
        &map(&[("10.99.0.2:80", 1), ("10.99.0.4:80", 3)]),
        LIMIT,
    );
    eprintln!("refused server removed after {took:?}");
    within(Duration::from_secs(5), || {
        sink.mails
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("Subject: Deleted real server: 10.99.0.3:80 (10.99.0.100:80)"))
    })
    .unwrap_or_else(|| panic!("no alert mail: {:?}", sink.mails.lock().unwrap()));
    // ... and comes back with its weight
    s3 = http(&w.rs, "10.99.0.3");
    wait_table(&e, VS, &all, LIMIT);

    // a black-holed server: removed after its timeout, and nobody else waits
    w.rs.sh("nft add table inet ldbh && \
         nft add chain inet ldbh in '{ type filter hook input priority 0; }' && \
         nft add rule inet ldbh in ip daddr 10.99.0.4 tcp dport 80 drop");
    let before = s2.hits_for("10.99.0.2".parse().unwrap());
    let took = wait_table(
        &e,
        VS,
        &map(&[("10.99.0.2:80", 1), ("10.99.0.3:80", 2)]),
        LIMIT,
    );
    eprintln!("black-holed server removed after {took:?}");
    std::thread::sleep(Duration::from_secs(4));
    let checks = s2.hits_for("10.99.0.2".parse().unwrap()) - before;
    let elapsed = took + Duration::from_secs(4);
    assert!(
        checks as f64 >= elapsed.as_secs_f64() - 2.5,
        "10.99.0.2 was checked {checks} times in {elapsed:?} while 10.99.0.4 hung: \
         the black hole delayed the other checks"
    );
    assert!(e.read("mon.log").contains("10.99.0.4 80 www.funbsd.net 3 gate /test.html Test Page [down] 500 Can't connect to 10.99.0.4:80 (connect timeout after 2s)"),
        "{}", e.read("mon.log"));
    drop(s4);

    // every real down: the fallback server takes over, and leaves again
    s2.stop();
    s3.stop();
    wait_table(&e, VS, &map(&[("127.0.0.1:80", 1)]), LIMIT);
    let _s2 = http(&w.rs, "10.99.0.2");
    wait_table(&e, VS, &map(&[("10.99.0.2:80", 1)]), LIMIT);

    // reload with a broken file keeps the old configuration running
    let pid = e.pid_of("www.cf").unwrap();
    std::fs::write(&cfg, cfg_text(5, "\tfrobnicate=1\n")).unwrap();
    // the reload command parses the file first (as Perl's does): exit 2,
    // no signal sent
    assert_eq!(e.run(Some(&w.lb), &[&c, "reload"]).status.code(), Some(2));
    // a HUP (kill -HUP, or autoreload) makes the daemon read the bad file
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    within(Duration::from_secs(5), || {
        e.read("ld.log").contains(&format!(
            "reading file {c} at line 16: Unknown command \"frobnicate=1\""
        ))
    })
    .unwrap_or_else(|| panic!("reload error not logged:\n{}", e.read("ld.log")));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(e.service(VS), map(&[("10.99.0.2:80", 1)]), "old state kept");
    // still running (status itself would say 2: it parses the bad file)
    assert_eq!(e.run(Some(&w.lb), &[&c, "status"]).status.code(), Some(2));
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok(),
        "daemon died on a bad reload"
    );
    assert_eq!(e.pid_of("www.cf"), Some(pid));
    // a good file is taken
    std::fs::write(&cfg, cfg_text(5, "")).unwrap();
    assert_eq!(e.run(Some(&w.lb), &[&c, "reload"]).status.code(), Some(0));
    wait_table(&e, VS, &map(&[("10.99.0.2:80", 5)]), Duration::from_secs(5));

    // stop: the service is purged
    assert_eq!(e.run(Some(&w.lb), &[&c, "stop"]).status.code(), Some(0));
    within(Duration::from_secs(5), || e.pid_of("www.cf").is_none()).expect("stopped");
    assert!(!e.dests().contains_key(VS));
    let l = e.read("ld.log");
    for want in [
        "Deleted real server: 10.99.0.3:80 (10.99.0.100:80)",
        "Added real server: 10.99.0.3:80 (10.99.0.100:80) (Weight set to 2)",
        "Added fallback server: 127.0.0.1:80 (10.99.0.100:80) (Weight set to 1)",
        "Deleted fallback server: 127.0.0.1:80 (10.99.0.100:80)",
        "Restored real server: 10.99.0.2:80 (10.99.0.100:80) (Weight set to 5)",
        "emailalert: Deleted real server: 10.99.0.3:80 (10.99.0.100:80)",
    ] {
        assert!(l.contains(want), "missing {want:?} in\n{l}");
    }
}

#[test]
fn quiescent_maintenance_fallbackcommand_and_failurecount() {
    let w = world(&["10.99.0.3/24"]);
    let e = Env::new();
    let mut s2 = http(&w.rs, "10.99.0.2");
    let mut s3 = http(&w.rs, "10.99.0.3");
    std::fs::create_dir(e.path("maint")).unwrap();
    let fb = e.write(
        "fb.sh",
        &format!("#!/bin/sh\necho \"$@\" >> {}\n", e.path("fb.out").display()),
    );
    lab::run_ok(std::process::Command::new("chmod").args(["755", fb.to_str().unwrap()]));
    let cfg = e.write(
        "q.cf",
        &format!(
            "logfile=\"{}\"\nchecktimeout=2\ncheckinterval=1\nquiescent=yes\nmaintenancedir={}\n\
             fallbackcommand=\"{}\"\nvirtual=10.99.0.100:80\n\treal=10.99.0.2:80 gate 4\n\treal=10.99.0.3:80 gate 2\n\
             \trequest=\"/test.html\"\n\treceive=\"Test Page\"\n\
             virtual=10.99.0.100:8080\n\treal=10.99.0.2:80 masq 1\n\treal=10.99.0.3:80 masq 1\n\tservice=http\n\
             \trequest=\"/test.html\"\n\tfailurecount=3\n\tquiescent=no\n",
            e.path("ld.log").display(),
            e.path("maint").display(),
            fb.display()
        ),
    );
    let c = cfg.to_str().unwrap().to_string();
    assert_eq!(e.run(Some(&w.lb), &[&c, "start"]).status.code(), Some(0));
    let _stop = Stopper {
        e: &e,
        ns: &w.lb,
        cfg: c.clone(),
    };
    const VS8080: &str = "TCP 10.99.0.100:8080";
    wait_table(
        &e,
        VS,
        &map(&[("10.99.0.2:80", 4), ("10.99.0.3:80", 2)]),
        Duration::from_secs(5),
    );
    wait_table(
        &e,
        VS8080,
        &map(&[("10.99.0.2:80", 1), ("10.99.0.3:80", 1)]),
        Duration::from_secs(5),
    );
    // quiescent: a dead server stays with weight 0 ...
    s3.stop();
    wait_table(
        &e,
        VS,
        &map(&[("10.99.0.2:80", 4), ("10.99.0.3:80", 0)]),
        LIMIT,
    );
    // ... while failurecount=3 keeps it in the other service for 3 checks
    let t = within(Duration::from_secs(6), || {
        e.service(VS8080) == map(&[("10.99.0.2:80", 1)])
    })
    .expect("removed after 3 failures");
    assert!(
        t >= Duration::from_millis(1500),
        "removed after {t:?}: soft failures not counted"
    );
    let l = e.read("ld.log");
    assert!(
        l.contains("Soft failure real server: 10.99.0.3:80 (tcp:10.99.0.100:8080) failure 1/3"),
        "{l}"
    );
    assert!(
        l.contains("Soft failure real server: 10.99.0.3:80 (tcp:10.99.0.100:8080) failure 2/3"),
        "{l}"
    );
    // ... and gets its weight back
    s3 = http(&w.rs, "10.99.0.3");
    wait_table(
        &e,
        VS,
        &map(&[("10.99.0.2:80", 4), ("10.99.0.3:80", 2)]),
        LIMIT,
    );
    assert!(e
        .read("ld.log")
        .contains("Restored real server: 10.99.0.3:80 (10.99.0.100:80) (Weight set to 2)"));
    // maintenance: a file named IP:PORT takes the real down without a check
    std::fs::write(e.path("maint/10.99.0.2:80"), "").unwrap();
    wait_table(
        &e,
        VS,
        &map(&[("10.99.0.2:80", 0), ("10.99.0.3:80", 2)]),
        LIMIT,
    );
    std::fs::remove_file(e.path("maint/10.99.0.2:80")).unwrap();
    wait_table(
        &e,
        VS,
        &map(&[("10.99.0.2:80", 4), ("10.99.0.3:80", 2)]),
        LIMIT,
    );
    // the fallback command runs when the last real goes and when one comes back
    s2.stop();
    s3.stop();
    wait_table(
        &e,
        VS,
        &map(&[("10.99.0.2:80", 0), ("10.99.0.3:80", 0)]),
        LIMIT,
    );
    s2 = http(&w.rs, "10.99.0.2");
    wait_table(
        &e,
        VS,
        &map(&[("10.99.0.2:80", 4), ("10.99.0.3:80", 0)]),
        LIMIT,
    );
    within(Duration::from_secs(3), || {
        e.read("fb.out").lines().count() >= 6
    })
    .unwrap_or_else(|| panic!("fallbackcommand runs: {:?}", e.read("fb.out")));
    let runs: Vec<String> = e
        .read("fb.out")
        .lines()
        .filter(|l| l.ends_with("10.99.0.100:80 tcp"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        runs,
        [
            "start 10.99.0.100:80 tcp",
            "stop 10.99.0.100:80 tcp",
            "start 10.99.0.100:80 tcp",
            "stop 10.99.0.100:80 tcp"
        ],
        "at start (no real up yet), first real up, last real gone, first real back"
    );
    drop(s2);
}

#[test]
fn http_keepalive_reuses_connections_and_still_sees_deaths() {
    let w = world(&["10.99.0.3/24"]);
    let e = Env::new();
    let fast = |ip: &str| {
        servers::http_fast(
            Some(w.rs.name()),
            format!("{ip}:80").parse().unwrap(),
            vec![Page::ok("/test.html", "Test Page")],
            1,
        )
        .unwrap()
    };
    let s2 = fast("10.99.0.2");
    let s3 = fast("10.99.0.3");
    let cfg = e.write(
        "ka.cf",
        &format!(
            "logfile=\"{}\"\nchecktimeout=2\ncheckinterval=1\n\
             virtual=10.99.0.100:80\n\treal=10.99.0.2:80 gate\n\trequest=\"test.html\"\n\treceive=\"Test Page\"\n\
             virtual=10.99.0.100:81\n\treal=10.99.0.3:80 gate\n\tservice=http\n\trequest=\"test.html\"\n\
             \treceive=\"Test Page\"\n\tkeepalive=no\n",
            e.path("ld.log").display()
        ),
    );
    let c = cfg.to_str().unwrap().to_string();
    assert_eq!(e.run(Some(&w.lb), &[&c, "start"]).status.code(), Some(0));
    let _stop = Stopper {
        e: &e,
        ns: &w.lb,
        cfg: c.clone(),
    };
    wait_table(&e, VS, &map(&[("10.99.0.2:80", 1)]), Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(4));
    let (req2, acc2) = (
        s2.total_hits(),
        s2.accepts.load(std::sync::atomic::Ordering::SeqCst),
    );
    let (req3, acc3) = (
        s3.total_hits(),
        s3.accepts.load(std::sync::atomic::Ordering::SeqCst),
    );
    assert!(
        req2 >= 4 && acc2 == 1,
        "keepalive: {req2} checks over {acc2} connections"
    );
    assert!(
        req3 >= 4 && acc3 == req3,
        "keepalive=no: {req3} checks over {acc3} connections"
    );
    // the server dies: its connections close, the real leaves in time
    s2.stop();
    let took = wait_table(&e, VS, &BTreeMap::new(), LIMIT);
    eprintln!("kept-alive server removed after {took:?}");
    let s2 = fast("10.99.0.2");
    wait_table(&e, VS, &map(&[("10.99.0.2:80", 1)]), LIMIT);
    drop((s2, s3));
}
