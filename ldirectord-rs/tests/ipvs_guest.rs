//! The daemon against a real kernel IPVS table, read back with the real
//! `ipvsadm -Ln`, inside Debian's user-mode Linux kernel (this machine's
//! kernel has no IPVS).
//!
//! One binary, two roles (`harness = false`): on the host it boots the guest
//! (`lab::ipvs_vm`) with itself as the payload and our `ldirectord` as a
//! file; in the guest (argument `guest`) it starts real servers on loopback
//! aliases (our Rust HTTP server and busybox httpd), runs `ldirectord start`
//! against the kernel through generic netlink and walks the scenarios of
//! `netns.rs`: a server dies and comes back, a hung server, the fallback,
//! quiescent after a reload, clean stop. All in one boot.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use lab::servers::{self, Page, Proto};

const BIN: &str = env!("CARGO_BIN_EXE_ldirectord");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("guest") {
        if std::env::var_os("IPVS_GUEST").is_none() {
            eprintln!("ipvs_guest: the guest role runs only inside the IPVS guest");
            std::process::exit(2);
        }
        let r = std::panic::catch_unwind(guest);
        std::process::exit(if r.is_ok() { 0 } else { 1 });
    }
    host();
}

fn host() {
    lab::require_root("the ldirectord real-IPVS guest test");
    let exe = std::env::current_exe().expect("current_exe");
    let out = lab::ipvs_vm::Guest::new(&exe)
        .arg("guest")
        .env("RUST_BACKTRACE", "1")
        .file(BIN, "/usr/sbin/ldirectord")
        .timeout(Duration::from_secs(180))
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    print!("{}", out.output);
    println!(
        "ipvs_guest: guest boot {:.2} s, whole run {:.2} s, exit {}",
        out.boot.as_secs_f64(),
        out.total.as_secs_f64(),
        out.status
    );
    if out.status != 0 {
        eprintln!("ipvs_guest: FAILED inside the guest (exit {})", out.status);
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------- guest side

fn sh(cmd: &str) -> String {
    lab::run_ok(Command::new("sh").args(["-c", cmd]))
}

/// The real `ipvsadm -Ln`, as service → destination → weight.
fn ipvsadm() -> BTreeMap<String, BTreeMap<String, u32>> {
    let out = lab::run_ok(Command::new("ipvsadm").args(["-L", "-n"]));
    let mut t: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    let mut cur = None;
    for l in out.lines().skip(3) {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.first() == Some(&"->") && w.len() >= 4 {
            if let Some(s) = &cur {
                t.get_mut(s)
                    .unwrap()
                    .insert(w[1].to_string(), w[3].parse().unwrap());
            }
        } else if w.len() >= 2 {
            let k = format!("{} {}", w[0], w[1]);
            t.insert(k.clone(), BTreeMap::new());
            cur = Some(k);
        }
    }
    t
}

fn m(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn wait(what: &str, key: &str, want: BTreeMap<String, u32>, limit: Duration) {
    let t0 = Instant::now();
    loop {
        let now = ipvsadm().remove(key).unwrap_or_default();
        if now == want {
            println!("ok: {what} ({:.2} s)", t0.elapsed().as_secs_f64());
            return;
        }
        if t0.elapsed() > limit {
            println!("--- ipvsadm -Ln\n{}", sh("ipvsadm -L -n"));
            println!(
                "--- log\n{}",
                std::fs::read_to_string("/tmp/ld.log").unwrap_or_default()
            );
            panic!("{what}: {key} is {now:?}, wanted {want:?} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http(ip: &str) -> servers::Server {
    servers::tcp(
        None,
        &[format!("{ip}:80").parse().unwrap()],
        Proto::Http(vec![Page::ok("/test.html", "Test Page")]),
        2,
    )
    .unwrap()
}

fn ld(args: &[&str]) -> std::process::Output {
    Command::new("/usr/sbin/ldirectord")
        .args(args)
        .env("LDIRECTORD_RUNDIR", "/tmp")
        .env_remove("HANET_IPVS_BACKEND")
        .output()
        .unwrap()
}

const VS: &str = "TCP 10.99.0.100:80";
/// checkinterval + checktimeout + 2 s of slack for a loaded machine
const LIMIT: Duration = Duration::from_secs(5);

fn config(quiescent: bool) -> String {
    format!(
        "logfile=\"/tmp/ld.log\"\nchecktimeout=2\ncheckinterval=1\nquiescent={}\n\
         virtual=10.99.0.100:80\n\treal=10.99.1.2:80 gate 1\n\treal=10.99.1.3:80 gate 2\n\treal=10.99.1.4:80 gate 3\n\
         \treal=10.99.1.5:80 gate 4\n\tfallback=127.0.0.1:80\n\trequest=\"test.html\"\n\treceive=\"Test Page\"\n\tscheduler=rr\n\
         virtual=10.99.0.100:8080\n\treal=10.99.1.2:80 masq 2 l:5 u:10\n\tservice=http\n\trequest=\"test.html\"\n\
         \tscheduler=wlc\n\tpersistent=300\n\tnetmask=255.255.255.0\n\
         virtual=5\n\treal=10.99.1.2 gate 7\n\tservice=http\n\tcheckport=80\n\trequest=\"test.html\"\n\tscheduler=sh\n",
        if quiescent { "yes" } else { "no" }
    )
}

fn guest() {
    for a in ["10.99.1.2", "10.99.1.3", "10.99.1.4", "10.99.1.5"] {
        sh(&format!("ip addr add {a}/32 dev lo"));
    }
    std::fs::create_dir_all("/root/www").unwrap();
    std::fs::write("/root/www/test.html", "Test Page\n").unwrap();
    let s2 = http("10.99.1.2");
    let mut s3 = http("10.99.1.3");
    // busybox httpd: an independent server implementation
    let mut httpd = Command::new("busybox")
        .args(["httpd", "-f", "-p", "10.99.1.4:80", "-h", "/root/www"])
        .spawn()
        .unwrap();
    // a server that accepts and never answers (hung daemon)
    let hung = servers::tcp(None, &["10.99.1.5:80".parse().unwrap()], Proto::Silent, 1).unwrap();
    std::fs::write("/tmp/ld.cf", config(false)).unwrap();
    let o = ld(&["/tmp/ld.cf", "start"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    wait(
        "reals up (the hung one never)",
        VS,
        m(&[
            ("10.99.1.2:80", 1),
            ("10.99.1.3:80", 2),
            ("10.99.1.4:80", 3),
        ]),
        Duration::from_secs(5),
    );
    wait(
        "masq service with thresholds",
        "TCP 10.99.0.100:8080",
        m(&[("10.99.1.2:80", 2)]),
        Duration::from_secs(5),
    );
    wait(
        "fwmark service",
        "FWM 5",
        m(&[("10.99.1.2:0", 7)]),
        Duration::from_secs(5),
    );
    let listing = sh("ipvsadm -L -n");
    assert!(
        listing.contains("TCP  10.99.0.100:8080 wlc persistent 300 mask 255.255.255.0"),
        "{listing}"
    );
    assert!(listing.contains("TCP  10.99.0.100:80 rr\n"), "{listing}");
    assert!(listing.contains("FWM  5 sh\n"), "{listing}");
    let thr = sh("ipvsadm -L -n --thresholds");
    assert!(
        thr.lines().any(|l| l.contains("10.99.1.2:80")
            && l.split_whitespace().nth(2) == Some("10")
            && l.split_whitespace().nth(3) == Some("5")),
        "thresholds u:10 l:5 in the kernel:\n{thr}"
    );
    let masq = listing
        .lines()
        .skip_while(|l| !l.contains("10.99.0.100:8080"))
        .nth(1)
        .unwrap_or("");
    assert!(masq.contains("Masq"), "{masq}");

    // a server dies and comes back
    s3.stop();
    wait(
        "dead server removed",
        VS,
        m(&[("10.99.1.2:80", 1), ("10.99.1.4:80", 3)]),
        LIMIT,
    );
    s3 = http("10.99.1.3");
    wait(
        "server back with its weight",
        VS,
        m(&[
            ("10.99.1.2:80", 1),
            ("10.99.1.3:80", 2),
            ("10.99.1.4:80", 3),
        ]),
        LIMIT,
    );
    // busybox httpd killed: removed; every real gone: the fallback
    httpd.kill().unwrap();
    let _ = httpd.wait();
    s3.stop();
    drop(s2);
    wait(
        "fallback when no real is up",
        VS,
        m(&[("127.0.0.1:80", 1)]),
        LIMIT,
    );
    let s2 = http("10.99.1.2");
    wait("fallback leaves", VS, m(&[("10.99.1.2:80", 1)]), LIMIT);

    // reload with quiescent=yes: a dead server keeps weight 0
    std::fs::write("/tmp/ld.cf", config(true)).unwrap();
    assert_eq!(ld(&["/tmp/ld.cf", "reload"]).status.code(), Some(0));
    wait(
        "quiescent after reload",
        VS,
        m(&[
            ("10.99.1.2:80", 1),
            ("10.99.1.3:80", 0),
            ("10.99.1.4:80", 0),
            ("10.99.1.5:80", 0),
        ]),
        Duration::from_secs(5),
    );
    s2.stop();
    wait(
        "quiesced, not deleted",
        VS,
        m(&[
            ("10.99.1.2:80", 0),
            ("10.99.1.3:80", 0),
            ("10.99.1.4:80", 0),
            ("10.99.1.5:80", 0),
            ("127.0.0.1:80", 1),
        ]),
        LIMIT,
    );
    // stop: clean stop removes our services only
    sh("ipvsadm -A -t 10.99.9.9:25 -s rr");
    assert_eq!(ld(&["/tmp/ld.cf", "stop"]).status.code(), Some(0));
    let t0 = Instant::now();
    while std::path::Path::new("/tmp/ldirectord.ld.cf.pid").exists() && t0.elapsed() < LIMIT {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = ipvsadm();
    assert_eq!(
        left.keys().cloned().collect::<Vec<_>>(),
        ["TCP 10.99.9.9:25"],
        "our services purged, the foreign one left alone"
    );
    drop(hung);
    let log = std::fs::read_to_string("/tmp/ld.log").unwrap();
    for want in [
        "Added virtual server: 10.99.0.100:80",
        "Deleted real server: 10.99.1.3:80 (10.99.0.100:80)",
        "Added fallback server: 127.0.0.1:80 (10.99.0.100:80) (Weight set to 1)",
        "Quiescent real server: 10.99.1.2:80 (10.99.0.100:80) (Weight set to 0)",
        "Purged virtual server (stop): 5",
    ] {
        assert!(log.contains(want), "missing {want:?} in\n{log}");
    }
    assert!(!log.contains("failed"), "an IPVS operation failed:\n{log}");
    println!("ok: all ldirectord guest scenarios passed against the kernel's IPVS");
}
