//! `lab bench ipvs`: destination edits on a real kernel IPVS table (inside
//! the user-mode Linux guest of [`lab::ipvs_vm`]), hanet against ipvsadm.
//!
//! The same workload three ways, in one guest boot: a service with
//! `--dests` destinations, then `--edits` weight changes cycling over them
//! (each edit really changes the weight):
//! 1. `ipvsadm -e ...`, one process per edit (what ldirectord and scripts do),
//! 2. `ipvsadm -R` with all edits on stdin (one process),
//! 3. hanet's `KernelIpvs::edit_dest`, one netlink request+ACK per edit.
//!
//! After each method the kernel table is read back and must hold the
//! expected weights. Usage:
//! `lab bench ipvs [--edits N] [--ipvsadm-edits M] [--dests D]`
//! (`--ipvsadm-edits` lets a quick run do fewer one-process-per-edit calls;
//! per-edit times and the speedup are computed from what actually ran).
//!
//! The host side boots the guest with this `lab` binary as the payload and
//! the hidden argument `--in-guest`.

use anyhow::{bail, Context};
use hanet::ipvs::{Dest, DestKey, Forward, IpvsBackend, KernelIpvs, Op, Service, ServiceKey};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Params {
    edits: usize,
    ipvsadm_edits: usize,
    dests: usize,
}

fn parse(args: &[String]) -> anyhow::Result<(Params, bool)> {
    let mut p = Params {
        edits: 10_000,
        ipvsadm_edits: 10_000,
        dests: 100,
    };
    let mut in_guest = false;
    let mut ipvsadm_given = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> anyhow::Result<usize> {
            let v = it
                .next()
                .with_context(|| format!("{what} needs a number"))?;
            v.parse()
                .with_context(|| format!("{what} {v}: not a number"))
        };
        match a.as_str() {
            "--edits" => p.edits = num("--edits")?,
            "--ipvsadm-edits" => {
                p.ipvsadm_edits = num("--ipvsadm-edits")?;
                ipvsadm_given = true;
            }
            "--dests" => p.dests = num("--dests")?,
            "--in-guest" => in_guest = true,
            other => bail!("lab bench ipvs: unknown argument {other} (usage: [--edits N] [--ipvsadm-edits M] [--dests D])"),
        }
    }
    if !ipvsadm_given {
        p.ipvsadm_edits = p.edits;
    }
    if p.dests == 0 || p.dests > 60_000 || p.edits == 0 {
        bail!("lab bench ipvs: need 1..60000 destinations and at least one edit");
    }
    Ok((p, in_guest))
}

/// Entry point of `lab bench ipvs`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (p, in_guest) = parse(args)?;
    if in_guest {
        return guest(&p);
    }
    let t0 = Instant::now();
    let image = lab::ipvs_vm::image().map_err(|e| anyhow::anyhow!("{e}"))?;
    let prepared = t0.elapsed();
    let exe = std::env::current_exe().context("current_exe")?;
    let out = lab::ipvs_vm::Guest::new(&exe)
        .args(["bench", "ipvs", "--in-guest"])
        .args(["--edits".to_string(), p.edits.to_string()])
        .args(["--ipvsadm-edits".to_string(), p.ipvsadm_edits.to_string()])
        .args(["--dests".to_string(), p.dests.to_string()])
        .timeout(Duration::from_secs(3600))
        .run()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if out.status != 0 {
        bail!(
            "the guest part failed (exit {}):\n{}",
            out.status,
            out.output
        );
    }
    let mut rows = Vec::new();
    for line in out.output.lines() {
        if let Some(r) = line.strip_prefix("RESULT ") {
            let f: Vec<&str> = r.splitn(3, ' ').collect();
            if let [edits, secs, name] = f[..] {
                rows.push((
                    name.to_string(),
                    edits.parse::<usize>()?,
                    secs.parse::<f64>()?,
                ));
            }
        } else {
            println!("{line}");
        }
    }
    if rows.len() != 3 {
        bail!("unexpected guest output:\n{}", out.output);
    }
    let per = |r: &(String, usize, f64)| r.2 / r.1 as f64;
    let base = per(&rows[0]);
    println!();
    println!(
        "{:<48} {:>7} {:>10} {:>12} {:>9}",
        "method", "edits", "total s", "per edit", "speedup"
    );
    for r in &rows {
        let pe = per(r);
        let pes = if pe >= 1e-3 {
            format!("{:.2} ms", pe * 1e3)
        } else {
            format!("{:.1} µs", pe * 1e6)
        };
        println!(
            "{:<48} {:>7} {:>10.3} {:>12} {:>8.0}x",
            r.0,
            r.1,
            r.2,
            pes,
            base / pe
        );
    }
    let speedup = base / per(&rows[2]);
    println!();
    println!(
        "hanet vs one ipvsadm process per edit: {speedup:.0}x (target >= 100x: {})",
        if speedup >= 100.0 { "met" } else { "NOT met" }
    );
    println!(
        "guest: image ready in {:.2} s, boot {:.2} s, whole run {:.2} s ({} {})",
        prepared.as_secs_f64(),
        out.boot.as_secs_f64(),
        out.total.as_secs_f64(),
        image.package_version,
        image.kernel_release
    );
    Ok(())
}

fn dest(i: usize) -> Dest {
    Dest::new(
        Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250) as u8 + 1),
        80,
        Forward::Gate,
        1,
    )
}

/// The weight of edit `i` for method `m`: never the weight the destination has.
fn weight(i: usize, m: usize) -> u32 {
    (((i * 7 + m * 13) % 97) + 2) as u32
}

fn verify(
    k: &mut KernelIpvs,
    key: &ServiceKey,
    p: &Params,
    edits: usize,
    m: usize,
) -> anyhow::Result<()> {
    let t = k.table().map_err(|e| anyhow::anyhow!("{e}"))?;
    let e = t.get(key).context("service gone")?;
    for i in 0..p.dests.min(edits) {
        // the last edit of destination i
        let last = i + ((edits - 1 - i) / p.dests) * p.dests;
        let want = weight(last, m);
        let d = &e.dests[&DestKey {
            addr: dest(i).addr,
            port: 80,
        }];
        if d.weight != want {
            bail!(
                "method {m}: destination {} has weight {}, expected {want}",
                d.addr,
                d.weight
            );
        }
    }
    Ok(())
}

fn reset(k: &mut KernelIpvs, key: &ServiceKey, p: &Params) -> anyhow::Result<()> {
    let mut ops = vec![Op::AddService(Service::new(*key).with_scheduler("wrr")?)];
    ops.extend((0..p.dests).map(|i| Op::AddDest(*key, dest(i))));
    k.flush().map_err(|e| anyhow::anyhow!("{e}"))?;
    k.apply(&ops).map_err(|e| anyhow::anyhow!("{e}"))
}

fn guest(p: &Params) -> anyhow::Result<()> {
    let mut k = KernelIpvs::open().map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80);
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "IPVS destination edits in the guest (Linux {} user-mode, ipvsadm 1.31): 1 service, {} destinations",
        release.trim(),
        p.dests
    );
    let args = |i: usize, m: usize| -> [String; 8] {
        [
            "-e".into(),
            "-t".into(),
            "10.0.0.1:80".into(),
            "-r".into(),
            format!("{}:80", dest(i % p.dests).addr),
            "-g".into(),
            "-w".into(),
            weight(i, m).to_string(),
        ]
    };

    // 1. one ipvsadm process per edit
    reset(&mut k, &key, p)?;
    let n = p.ipvsadm_edits.max(1);
    let t0 = Instant::now();
    for i in 0..n {
        let st = Command::new("ipvsadm")
            .args(args(i, 0))
            .status()
            .context("run ipvsadm")?;
        if !st.success() {
            bail!("ipvsadm {} failed: {st}", args(i, 0).join(" "));
        }
    }
    let d1 = t0.elapsed();
    verify(&mut k, &key, p, n, 0)?;
    println!(
        "RESULT {n} {:.6} ipvsadm -e, one process per edit",
        d1.as_secs_f64()
    );

    // 2. ipvsadm -R: all edits in one process
    reset(&mut k, &key, p)?;
    let mut script = String::new();
    for i in 0..p.edits {
        script.push_str(&args(i, 1).join(" "));
        script.push('\n');
    }
    let t0 = Instant::now();
    let mut child = Command::new("ipvsadm")
        .arg("-R")
        .stdin(Stdio::piped())
        .spawn()
        .context("ipvsadm -R")?;
    child.stdin.take().unwrap().write_all(script.as_bytes())?;
    let st = child.wait()?;
    let d2 = t0.elapsed();
    if !st.success() {
        bail!("ipvsadm -R failed: {st}");
    }
    verify(&mut k, &key, p, p.edits, 1)?;
    println!(
        "RESULT {} {:.6} ipvsadm -R, all edits in one process",
        p.edits,
        d2.as_secs_f64()
    );

    // 3. hanet
    reset(&mut k, &key, p)?;
    let dests: Vec<Dest> = (0..p.dests).map(dest).collect();
    let t0 = Instant::now();
    for i in 0..p.edits {
        let d = Dest {
            weight: weight(i, 2),
            ..dests[i % p.dests].clone()
        };
        k.edit_dest(&key, &d).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let d3 = t0.elapsed();
    verify(&mut k, &key, p, p.edits, 2)?;
    println!(
        "RESULT {} {:.6} hanet KernelIpvs::edit_dest, one call per edit",
        p.edits,
        d3.as_secs_f64()
    );
    k.flush().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
