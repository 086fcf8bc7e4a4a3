//! `lab bench ldirectord [N ...] [--perl-max N] [--window S] [--trials K]`:
//! health checking at scale, our ldirectord against the Perl ldirectord
//! 4.12 on the same servers, same configuration, same table.
//!
//! Setup per run: a fresh network namespace with `lo` up; N real servers are
//! the loopback aliases 127.0.(1+i/250).(1+i%250):80 (all of 127/8 is local),
//! served by one HTTP/1.1 server with keep-alive (`lab::servers::http_fast`,
//! epoll, 2 threads, bound to 0.0.0.0:80) that counts requests per address.
//! The Perl daemon asks for `Connection: close` (LWP), ours keeps one
//! connection per real (`keepalive=yes`, the default) and is run a second
//! time with `keepalive=no` (one connection per check, like Perl). One virtual service,
//! `checkinterval=1`, `checktimeout=3`, negotiate http (`request="test.html"`,
//! `receive="Test Page"`), `quiescent=no`. The IPVS table is hanet's file
//! backend, pre-populated with the service and every real at weight 1 (so
//! both daemons start from a working table); the Perl daemon reaches it
//! through our `ipvsadm-standin` linked as `./ipvsadm` (it runs with `-d`),
//! ours directly (`supervised=yes`, foreground).
//!
//! Measured:
//! * startup: spawn → every real answered once;
//! * over a steady window (default 10 s): checks per second and the fraction
//!   of reals checked in every interval (from the server's per-address
//!   counts), CPU % of one core (`/proc/PID/schedstat`), VmRSS;
//! * server death → removal: an nft rule makes one real refuse connections
//!   (`reject with tcp reset`, as a dead daemon) at a random phase; the time
//!   until the daemon logs `Deleted real server: IP:80`, and after the rule
//!   is gone until `Added real server`. K trials (default 5).
//!
//! The Perl daemon runs for N ≤ `--perl-max` (default 1000): at 10 000 reals
//! it needs many minutes to start (ldirectord.md / peer-performance.md §2).
//! Binaries: `ldirectord` and `ipvsadm-standin` next to this `lab` binary
//! (`cargo build --release -p ldirectord-rs -p lab`) or in `$HBRS_BIN_DIR`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use lab::servers::{self, Page};
use lab::Netns;

const PERL: &str = "/usr/sbin/ldirectord";

fn bin_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("HBRS_BIN_DIR") {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe().context("locate the lab binary")?;
    Ok(exe.parent().unwrap_or(Path::new(".")).to_path_buf())
}

fn real(i: usize) -> String {
    format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Impl {
    /// ours with its defaults (HTTP keep-alive)
    Ours,
    /// ours with `keepalive=no`: a connection per check, like Perl
    OursFresh,
    Perl,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Ours => "ldirectord-rs",
            Impl::OursFresh => "ldirectord-rs keepalive=no",
            Impl::Perl => "Perl ldirectord 4.12",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Row {
    n: usize,
    startup: Option<Duration>,
    checks_per_s: f64,
    fraction: f64,
    min_per_real: u64,
    cpu_pct: f64,
    rss_kib: u64,
    removal: Vec<Duration>,
    restore: Vec<Duration>,
    note: String,
}

/// Log lines of interest with their arrival time.
type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

fn schedstat_ns(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

struct Daemon {
    child: Child,
    lines: Lines,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the table file in hanet's file-backend format (the service and
/// every real at weight 1); lab does not depend on hanet, the JSON shape is
/// that of `hanet::ipvs::FileBackend`.
fn prepopulate(table: &Path, n: usize) -> Result<()> {
    let dests: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "addr": real(i), "port": 80, "forward": "gate", "weight": 1,
                "upper_threshold": 0, "lower_threshold": 0
            })
        })
        .collect();
    let t = serde_json::json!({ "services": [{
        "key": {"inet": {"protocol": "tcp", "addr": "10.0.0.1", "port": 80}},
        "scheduler": "wrr",
        "netmask": {"v4": "255.255.255.255"},
        "dests": dests
    }]});
    std::fs::write(table, serde_json::to_vec(&t)?)?;
    Ok(())
}

fn start(imp: Impl, ns: &Netns, dir: &Path, n: usize) -> Result<Daemon> {
    let bins = bin_dir()?;
    let mut cfg = String::new();
    match imp {
        Impl::Ours => cfg.push_str("supervised=yes\n"),
        Impl::OursFresh => cfg.push_str("supervised=yes\nkeepalive=no\n"),
        Impl::Perl => {}
    }
    cfg.push_str(
        "checktimeout=3\ncheckinterval=1\nquiescent=no\nvirtual=10.0.0.1:80\n\tservice=http\n\
         \trequest=\"test.html\"\n\treceive=\"Test Page\"\n\tscheduler=wrr\n",
    );
    for i in 0..n {
        cfg.push_str(&format!("\treal={}:80 gate\n", real(i)));
    }
    let cfgp = dir.join("ld.cf");
    std::fs::write(&cfgp, cfg)?;
    let table = dir.join("table.json");
    prepopulate(&table, n)?;
    let mut cmd = match imp {
        Impl::Ours | Impl::OursFresh => {
            let b = bins.join("ldirectord");
            if !b.exists() {
                bail!(
                    "{} missing: build with `cargo build --release -p ldirectord-rs -p lab`",
                    b.display()
                );
            }
            let mut c = ns.cmd(b.to_str().unwrap());
            c.arg(&cfgp)
                .arg("start")
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            c
        }
        Impl::Perl => {
            let s = bins.join("ipvsadm-standin");
            if !s.exists() {
                bail!(
                    "{} missing: build with `cargo build --release -p ldirectord-rs`",
                    s.display()
                );
            }
            std::os::unix::fs::symlink(&s, dir.join("ipvsadm"))?;
            let mut c = ns.cmd(PERL);
            c.args(["-d"])
                .arg(&cfgp)
                .arg("start")
                .current_dir(dir)
                .env(
                    "PATH",
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                )
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c
        }
    };
    cmd.env("HANET_IPVS_BACKEND", format!("file:{}", table.display()))
        .env("LDIRECTORD_RUNDIR", dir)
        .stdin(Stdio::null());
    let mut child = cmd.spawn().context("start the daemon")?;
    let lines: Lines = Arc::default();
    let out: Box<dyn std::io::Read + Send> = match imp {
        Impl::Ours | Impl::OursFresh => Box::new(child.stdout.take().unwrap()),
        Impl::Perl => Box::new(child.stderr.take().unwrap()),
    };
    let l2 = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
            if line.contains("real server:") && !line.starts_with("DEBUG") {
                l2.lock().unwrap().push((Instant::now(), line));
            }
        }
    });
    Ok(Daemon { child, lines })
}

fn wait_line(lines: &Lines, after: Instant, needle: &str, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    loop {
        if let Some((t, _)) = lines
            .lock()
            .unwrap()
            .iter()
            .find(|(t, l)| *t >= after && l.contains(needle))
        {
            return Some(t.duration_since(after));
        }
        if t0.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn measure(imp: Impl, n: usize, window: Duration, trials: usize) -> Result<Row> {
    let ns = Netns::new("ldbn");
    ns.sh("nft add table inet ldb && \
         nft add set inet ldb dead '{ type ipv4_addr; }' && \
         nft add chain inet ldb out '{ type filter hook output priority 0; }' && \
         nft add rule inet ldb out ip daddr @dead tcp dport 80 reject with tcp reset");
    let server = servers::http_fast(
        Some(ns.name()),
        "0.0.0.0:80".parse().unwrap(),
        vec![Page::ok("/test.html", "<html>Test Page</html>")],
        2,
    )?;
    let dir = tempdir()?;
    let t_spawn = Instant::now();
    let d = start(imp, &ns, &dir, n)?;
    let pid = d.child.id();
    let mut row = Row {
        n,
        ..Row::default()
    };
    // startup: every real answered once
    let limit = if imp == Impl::Perl {
        Duration::from_secs(120 + n as u64 / 5)
    } else {
        Duration::from_secs(60)
    };
    let all_hit = |s: &servers::Server| s.hits.lock().unwrap().len() >= n;
    while !all_hit(&server) {
        if t_spawn.elapsed() > limit {
            row.note = format!(
                "only {} of {n} reals checked after {limit:?}",
                server.hits.lock().unwrap().len()
            );
            return Ok(row);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    row.startup = Some(t_spawn.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    // steady window
    let snap = |s: &servers::Server| -> HashMap<IpAddr, u64> { s.hits.lock().unwrap().clone() };
    let h0 = snap(&server);
    let c0 = schedstat_ns(pid).unwrap_or(0);
    let t0 = Instant::now();
    std::thread::sleep(window);
    let h1 = snap(&server);
    let c1 = schedstat_ns(pid).unwrap_or(0);
    let wall = t0.elapsed();
    row.rss_kib = rss_kib(pid);
    row.cpu_pct = (c1 - c0) as f64 / wall.as_nanos() as f64 * 100.0;
    let secs = wall.as_secs_f64();
    let intervals = window.as_secs().max(1);
    let mut total = 0u64;
    let mut credited = 0u64;
    let mut min = u64::MAX;
    for i in 0..n {
        let ip: IpAddr = real(i).parse().unwrap();
        let d = h1.get(&ip).copied().unwrap_or(0) - h0.get(&ip).copied().unwrap_or(0);
        total += d;
        credited += d.min(intervals);
        min = min.min(d);
    }
    row.checks_per_s = total as f64 / secs;
    row.fraction = credited as f64 / (n as u64 * intervals) as f64;
    row.min_per_real = min;
    // death → removal, back → re-add
    let mut seed = (t0.elapsed().as_nanos() as u64) ^ 0x9e3779b97f4a7c15;
    let mut rnd = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let removal_limit = if imp == Impl::Perl {
        Duration::from_secs(30 + n as u64 / 50)
    } else {
        Duration::from_secs(10)
    };
    for k in 0..trials {
        let ip = real((k * 7919 + 13) % n);
        std::thread::sleep(Duration::from_millis(500 + rnd(1000)));
        ns.sh(&format!("nft add element inet ldb dead '{{ {ip} }}'"));
        let t_kill = Instant::now();
        match wait_line(
            &d.lines,
            t_kill,
            &format!("Deleted real server: {ip}:80 "),
            removal_limit,
        ) {
            Some(t) => row.removal.push(t),
            None => row.note = format!("{ip} not removed within {removal_limit:?}"),
        }
        // revive at a random phase too
        std::thread::sleep(Duration::from_millis(rnd(1000)));
        ns.sh(&format!("nft delete element inet ldb dead '{{ {ip} }}'"));
        let t_back = Instant::now();
        match wait_line(
            &d.lines,
            t_back,
            &format!("Added real server: {ip}:80 "),
            removal_limit,
        ) {
            Some(t) => row.restore.push(t),
            None => row.note = format!("{ip} not re-added within {removal_limit:?}"),
        }
    }
    drop(d);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(row)
}

fn tempdir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(lab::unique_name("ldbench"));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn stats(v: &[Duration]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let mut s: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let med = s[s.len() / 2];
    format!("{med:.0} ({:.0}–{:.0})", s[0], s[s.len() - 1])
}

/// The benchmark entry point.
pub fn run(args: &[String]) -> Result<()> {
    lab::require_root("lab bench ldirectord");
    let mut sizes = Vec::new();
    let mut perl_max = 1000usize;
    let mut window = Duration::from_secs(10);
    let mut trials = 5usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--perl-max" => perl_max = it.next().context("--perl-max N")?.parse()?,
            "--window" => window = Duration::from_secs(it.next().context("--window S")?.parse()?),
            "--trials" => trials = it.next().context("--trials K")?.parse()?,
            n => sizes.push(
                n.parse::<usize>()
                    .with_context(|| format!("bad size {n}"))?,
            ),
        }
    }
    if sizes.is_empty() {
        sizes = vec![100, 1000, 10_000];
    }
    lab::ensure_packages(&["nftables", "ldirectord"]);
    let mut rows: Vec<(Impl, Row)> = Vec::new();
    for &n in &sizes {
        for imp in [Impl::Ours, Impl::OursFresh, Impl::Perl] {
            if imp == Impl::Perl && n > perl_max {
                continue;
            }
            eprintln!("lab bench ldirectord: {} with {n} reals ...", imp.name());
            let r = measure(imp, n, window, trials)?;
            eprintln!("  {r:?}");
            rows.push((imp, r));
        }
    }
    println!(
        "\nldirectord health checking: N reals (loopback aliases, one HTTP server), checkinterval 1 s, \
         negotiate http, window {} s, {trials} death/revival trials",
        window.as_secs()
    );
    println!(
        "| daemon | N | startup → all checked | checks/s | reals checked per interval | min checks/real in window | CPU % (1 core) | VmRSS MiB | death → removal ms median (min–max) | back → re-added ms | note |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (imp, r) in &rows {
        println!(
            "| {} | {} | {} | {:.0} | {:.1} % | {} | {:.1} | {:.1} | {} | {} | {} |",
            imp.name(),
            r.n,
            r.startup
                .map(|d| format!("{:.1} s", d.as_secs_f64()))
                .unwrap_or_else(|| "-".into()),
            r.checks_per_s,
            r.fraction * 100.0,
            if r.min_per_real == u64::MAX {
                0
            } else {
                r.min_per_real
            },
            r.cpu_pct,
            r.rss_kib as f64 / 1024.0,
            stats(&r.removal),
            stats(&r.restore),
            r.note
        );
    }
    for &n in &sizes {
        if n > perl_max {
            println!(
                "(Perl ldirectord not run at N={n}: its start alone takes many minutes there — \
                 peer-performance.md §2.1: 456 s to the first check at N=5000)"
            );
        }
    }
    Ok(())
}
