//! `lab`: demo and benchmarks of heartbeat-rs.
//!
//! `lab demo` runs the demo cluster; `lab bench WHAT` runs one benchmark and
//! prints a table (the real tool vs ours, side by side, in one run).

use std::process::ExitCode;

mod bench_agents;
mod bench_heartbeat;
mod bench_ipvs;
mod bench_ldirectord;
mod demo;

type Bench = fn(&[String]) -> anyhow::Result<()>;

/// The benchmarks, by name. Each entry lives in its own module.
const BENCHES: &[(&str, &str, Bench)] = &[(
    "agents",
    "IPaddr monitor/meta-data/start+stop: ours vs resource-agents' IPaddr2",
    bench_agents::run,
), (
    "heartbeat",
    "crash takeover, graceful handover, idle footprint: heartbeatd vs the real heartbeat 3.0.6",
    bench_heartbeat::run,
), (
    "ipvs",
    "10 000 IPVS destination edits in the real-IPVS guest: hanet vs one ipvsadm process per edit",
    bench_ipvs::run,
), (
    "ldirectord",
    "health checks of 100/1 000/10 000 reals: ldirectord-rs vs the Perl ldirectord",
    bench_ldirectord::run,
)];

fn usage() -> ExitCode {
    eprintln!("usage: lab demo | lab bench NAME [ARGS]");
    eprintln!("benchmarks:");
    for (name, what, _) in BENCHES {
        eprintln!("  {name:12} {what}");
    }
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo::run(&args[1..]),
        Some("bench") => match args.get(1) {
            Some(name) => match BENCHES.iter().find(|(n, _, _)| n == name) {
                Some((_, _, f)) => f(&args[2..]),
                None => return usage(),
            },
            None => return usage(),
        },
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}
