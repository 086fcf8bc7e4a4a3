//! `ipvsadm-standin`: an `ipvsadm` look-alike over hanet's IPVS backends,
//! for driving the Perl ldirectord in tests and benchmarks on a kernel
//! without IPVS (the Perl daemon runs `./ipvsadm` from its working
//! directory with `-d`; link this program there).
//!
//! It keeps the table where `HANET_IPVS_BACKEND` says (`file:/path` for a
//! table shared with our daemon and the tests), applies `-A/-E/-D/-a/-e/-d`
//! with the kernel's checks, prints `-L -n [--thresholds]` exactly as
//! ipvsadm 1.31 does, and appends each command line to
//! `$IPVSADM_STANDIN_LOG` if set. Not installed: a test tool.

use std::io::Write;
use std::process::ExitCode;

use hanet::ipvs::{self, ListFormat, ListOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(log) = std::env::var_os("IPVSADM_STANDIN_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{}", args.join(" "));
        }
    }
    let mut backend = match ipvs::open_from_env() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("Can't initialize ipvs: {e}");
            return ExitCode::from(2);
        }
    };
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.is_empty())
        .collect();
    let listing = words
        .first()
        .is_some_and(|a| a.starts_with("-L") || a.starts_with("-l") || *a == "--list");
    if listing {
        let format = if words.contains(&"--thresholds") {
            ListFormat::Thresholds
        } else if words.contains(&"--stats") {
            ListFormat::Stats
        } else {
            ListFormat::Plain
        };
        let (table, info) = match (backend.table(), backend.info()) {
            (Ok(t), Ok(i)) => (t, i),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        };
        print!(
            "{}",
            ipvs::list(
                &table,
                &info,
                ListOptions {
                    format,
                    exact: false
                }
            )
        );
        return ExitCode::SUCCESS;
    }
    let cmd = match ipvs::rules::parse_command(&words) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ipvsadm: {e}");
            return ExitCode::from(2);
        }
    };
    let r = match cmd.to_op() {
        Some(op) => backend.apply(&[op]),
        None => backend.flush(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
