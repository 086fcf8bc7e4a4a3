//! `lab bench agents`: our `IPaddr` against resource-agents' `IPaddr2`, same
//! parameters, same namespace, one run: `meta-data`, `monitor` with the
//! address absent and present, and a `start`+`stop` pair.
//!
//! The bench process enters a fresh network namespace itself (a veth pair to
//! a peer namespace, 10.98.0.1/24 on `pfo0`), so every agent call is a plain
//! fork+exec from here with no `ip netns exec` in the measurement. Wall time
//! runs from spawn to wait; CPU is the children's user+sys (getrusage)
//! over the same span. 3 warm-up calls, then N timed calls (default 50;
//! `lab bench agents RUNS`).
//!
//! Our agents are taken from the directory of this `lab` binary (build with
//! `cargo build --release -p resource-agents -p lab`) or `$HBRS_AGENT_DIR`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const IPADDR2: &str = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2";
const VIP: &str = "10.98.0.50";

fn agent_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("HBRS_AGENT_DIR") {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe().context("locate the lab binary")?;
    Ok(exe.parent().unwrap_or(Path::new(".")).to_path_buf())
}

fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// One agent call: program, action, environment.
struct Call<'a> {
    program: &'a Path,
    action: &'a str,
    env: &'a [(String, String)],
}

impl Call<'_> {
    fn run(&self) -> Result<i32> {
        let status = Command::new(self.program)
            .arg(self.action)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("run {}", self.program.display()))?;
        Ok(status.code().unwrap_or(-1))
    }
}

struct Sample {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
    rc: Vec<i32>,
}

/// Runs `calls` in sequence per sample (e.g. start then stop), `prep` untimed
/// before each sample.
fn measure(runs: usize, calls: &[Call], prep: &dyn Fn() -> Result<()>) -> Result<Sample> {
    let mut s = Sample {
        wall: Vec::new(),
        cpu: Vec::new(),
        rc: Vec::new(),
    };
    for i in 0..runs + 3 {
        prep()?;
        let c0 = children_cpu();
        let t0 = Instant::now();
        let mut rc = 0;
        for c in calls {
            rc = rc.max(c.run()?);
        }
        let wall = t0.elapsed();
        let cpu = children_cpu().saturating_sub(c0);
        if i >= 3 {
            s.wall.push(wall);
            s.cpu.push(cpu);
            s.rc.push(rc);
        }
    }
    Ok(s)
}

fn pct(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("run ip")?;
    if !out.status.success() {
        bail!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn vip_present() -> Result<bool> {
    let out = Command::new("ip")
        .args(["-o", "addr", "show", "dev", "pfo0"])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).contains(&format!("inet {VIP}/")))
}

fn ensure_vip(present: bool) -> Result<()> {
    match (present, vip_present()?) {
        (true, false) => ip(&[
            "addr",
            "add",
            &format!("{VIP}/24"),
            "brd",
            "+",
            "dev",
            "pfo0",
        ]),
        (false, true) => ip(&["addr", "del", &format!("{VIP}/24"), "dev", "pfo0"]),
        _ => Ok(()),
    }
}

/// `lab bench agents [RUNS]`
pub fn run(args: &[String]) -> Result<()> {
    let runs: usize = match args.first() {
        Some(n) => n.parse().context("RUNS must be a number")?,
        None => 50,
    };
    if runs == 0 {
        bail!("RUNS must be at least 1");
    }
    lab::require_root("lab bench agents");
    lab::ensure_packages(&["resource-agents", "iproute2"]);
    let ours = agent_dir()?.join("IPaddr");
    if !ours.is_file() {
        bail!(
            "{} not found: build it first (cargo build --release -p resource-agents -p lab) or set HBRS_AGENT_DIR",
            ours.display()
        );
    }

    let a = lab::Netns::new("bag");
    let b = lab::Netns::new("bagp");
    lab::veth(&a, "pfo0", "10.98.0.1/24", &b, "pfo1", "10.98.0.2/24");
    let home = std::fs::File::open("/proc/self/ns/net")?;
    let ns = std::fs::File::open(format!("/run/netns/{}", a.name()))?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).context("enter namespace")?;
    let result = bench(runs, &ours, state_dir()?);
    // back home before the namespaces go: their Drop kills what is inside
    nix::sched::setns(&home, nix::sched::CloneFlags::CLONE_NEWNET).context("leave namespace")?;
    drop((a, b));
    result
}

fn state_dir() -> Result<PathBuf> {
    let state = std::env::temp_dir().join(format!("hbrs-bench-agents-{}", std::process::id()));
    std::fs::create_dir_all(&state)?;
    Ok(state)
}

fn bench(runs: usize, ours: &Path, state: PathBuf) -> Result<()> {
    let theirs = PathBuf::from(IPADDR2);
    let env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("OCF_ROOT".into(), "/usr/lib/ocf".into()),
        ("OCF_RESOURCE_INSTANCE".into(), "bench".into()),
        ("HA_RSCTMP".into(), state.display().to_string()),
        ("OCF_RESKEY_ip".into(), VIP.into()),
        ("OCF_RESKEY_cidr_netmask".into(), "24".into()),
        ("OCF_RESKEY_nic".into(), "pfo0".into()),
    ];
    let md_env: Vec<(String, String)> = env[..2].to_vec();

    type Case<'a> = (&'a str, &'a [&'a str], Option<bool>, bool);
    let cases: &[Case] = &[
        ("meta-data", &["meta-data"], None, true),
        (
            "monitor, IP absent (rc 7)",
            &["monitor"],
            Some(false),
            false,
        ),
        (
            "monitor, IP present (rc 0)",
            &["monitor"],
            Some(true),
            false,
        ),
        ("start + stop pair", &["start", "stop"], Some(false), false),
    ];
    println!(
        "lab bench agents: IPaddr2 ({IPADDR2}) vs ours ({}), {runs} runs + 3 warm-up, in a netns",
        ours.display()
    );
    println!("params: ip={VIP} cidr_netmask=24 nic=pfo0; times in ms");
    println!();
    println!(
        "| {:28} | {:>9} | {:>15} | {:>7} | {:>9} | {:>15} | {:>7} | {:>8} |",
        "action", "IPaddr2", "p10–p90", "CPU", "ours", "p10–p90", "CPU", "speedup"
    );
    println!(
        "|{:-<30}|{:->11}|{:->17}|{:->9}|{:->11}|{:->17}|{:->9}|{:->10}|",
        "", "", "", "", "", "", "", ""
    );
    let mut monitor_speedups = Vec::new();
    for (name, actions, present, is_md) in cases {
        let e = if *is_md { &md_env } else { &env };
        let prep = || -> Result<()> {
            if let Some(p) = present {
                ensure_vip(*p)?;
            }
            Ok(())
        };
        let mut results = Vec::new();
        for prog in [theirs.as_path(), ours] {
            let calls: Vec<Call> = actions
                .iter()
                .map(|a| Call {
                    program: prog,
                    action: a,
                    env: e,
                })
                .collect();
            let s = measure(runs, &calls, &prep)?;
            results.push(s);
        }
        let (t, o) = (&results[0], &results[1]);
        if t.rc != o.rc {
            bail!(
                "{name}: exit codes differ: IPaddr2 {:?} vs ours {:?}",
                &t.rc[..t.rc.len().min(5)],
                &o.rc[..o.rc.len().min(5)]
            );
        }
        let speedup = ms(pct(&t.wall, 0.5)) / ms(pct(&o.wall, 0.5));
        if name.starts_with("monitor") {
            monitor_speedups.push(speedup);
        }
        println!(
            "| {:28} | {:>9.2} | {:>6.2} – {:>6.2} | {:>7.2} | {:>9.3} | {:>6.3} – {:>6.3} | {:>7.3} | {:>7.1}× |",
            name,
            ms(pct(&t.wall, 0.5)),
            ms(pct(&t.wall, 0.1)),
            ms(pct(&t.wall, 0.9)),
            ms(pct(&t.cpu, 0.5)),
            ms(pct(&o.wall, 0.5)),
            ms(pct(&o.wall, 0.1)),
            ms(pct(&o.wall, 0.9)),
            ms(pct(&o.cpu, 0.5)),
            speedup
        );
    }
    ensure_vip(false)?;
    // IPaddr2 leaves its send_arp running detached for ~1 s after start
    std::thread::sleep(Duration::from_millis(1200));
    let _ = std::fs::remove_dir_all(&state);
    let worst = monitor_speedups
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min);
    println!();
    println!(
        "monitor speedup (median wall): {worst:.1}× at worst — target ≥ 20×: {}",
        if worst >= 20.0 { "met" } else { "NOT met" }
    );
    Ok(())
}
