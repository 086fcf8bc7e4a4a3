//! `v1-ocf`: heartbeat 3.0.6's v1 wrappers of OCF agents (`resource.d/Filesystem`,
//! `IPaddr2`, `MailTo`, ...) in one binary, dispatched on the name it is
//! called by (see `resource_agents::v1ocf`).
//!
//!     resource.d/NAME ARG... ACTION       ACTION: start, stop, status, monitor, usage
//!
//! Runs `$OCF_ROOT/resource.d/heartbeat/TYPE` (OCF_ROOT default
//! `/usr/lib/ocf`) with the arguments as `OCF_RESKEY_*`, prints the verdict
//! line of `hto-mapfuncs` on stdout, logs it and exits with the agent's code.
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, ExitCode};

use resource_agents::log::{Level, Logger};
use resource_agents::v1ocf::{self, Locale, UsageFn, Wrapper};

/// Prints the usage where the wrapper prints it.
fn print_usage(w: &Wrapper, argv0: &str, to_stderr: bool) {
    for l in w.usage_lines(argv0) {
        if to_stderr || w.usage_stderr {
            let _ = writeln!(std::io::stderr(), "{l}");
        } else {
            println!("{l}");
        }
    }
}

/// `log_and_print` of hto-mapfuncs: the line on stdout, and logged.
fn log_and_print(log: &Logger, line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
    let (level, text) = match line.split_once(':') {
        Some(("ERROR", t)) => (Level::Error, t.trim_start()),
        Some(("INFO", t)) => (Level::Info, t.trim_start()),
        _ => (Level::Info, line),
    };
    log.log(level, text);
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn main() -> ExitCode {
    let mut argv = std::env::args();
    let argv0 = argv.next().unwrap_or_default();
    let args: Vec<String> = argv.collect();
    let name = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(w) = v1ocf::find(&name) else {
        let names: Vec<&str> = v1ocf::WRAPPERS.iter().map(|w| w.name).collect();
        eprintln!(
            "v1-ocf: called as {name:?}; link it as one of {} in /etc/ha.d/resource.d",
            names.join(" ")
        );
        return ExitCode::from(1);
    };

    let call = match v1ocf::map(w, &args, &|k| std::env::var(k).ok(), &|p| {
        Path::new(p).is_file()
    }) {
        Ok(c) => c,
        Err(refusal) => {
            if let Some(m) = refusal.message {
                println!("{m}");
            }
            print_usage(w, &argv0, false);
            return ExitCode::from(1);
        }
    };
    let log = Logger::new(w.name, Some(&call.instance), false);
    if call.usage_first {
        print_usage(w, &argv0, false);
    }
    if call.action.is_empty() {
        log_and_print(&log, "ERROR: No action specfied.");
        print_usage(w, &argv0, w.usage_fn == UsageFn::Missing);
        return ExitCode::from(1);
    }

    let ocf_root = std::env::var("OCF_ROOT")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/usr/lib/ocf".to_string());
    let agent = Path::new(&ocf_root)
        .join("resource.d/heartbeat")
        .join(w.ocf_type);
    if !is_executable(&agent) {
        log_and_print(
            &log,
            &format!(
                "ERROR: {} is not an executable file (the OCF agent {} comes with the resource-agents package)",
                agent.display(),
                w.ocf_type
            ),
        );
        return ExitCode::from(1);
    }

    let action = call.action.as_str();
    let rc = match Wrapper::ocf_action(action) {
        Some(op) => {
            let mut cmd = Command::new(&agent);
            cmd.arg(op)
                .env("OCF_ROOT", &ocf_root)
                .env("OCF_RA_VERSION_MAJOR", "1")
                .env("OCF_RA_VERSION_MINOR", "0")
                .env("OCF_TYPE", w.ocf_type)
                .env("OCF_RESOURCE_INSTANCE", &call.instance);
            for (k, v) in &call.params {
                cmd.env(format!("OCF_RESKEY_{k}"), v);
            }
            match w.locale {
                Locale::Keep => {}
                Locale::C => {
                    cmd.env_remove("LANG").env("LC_ALL", "C");
                }
                Locale::Unset => {
                    cmd.env_remove("LC_ALL").env_remove("LANGUAGE");
                }
            }
            match cmd.status() {
                Ok(st) => st.code().unwrap_or_else(|| {
                    128 + std::os::unix::process::ExitStatusExt::signal(&st).unwrap_or(0)
                }),
                Err(e) => {
                    log_and_print(&log, &format!("ERROR: cannot run {}: {e}", agent.display()));
                    return ExitCode::from(1);
                }
            }
        }
        None if action == "usage" || action == "help" => match w.usage_fn {
            UsageFn::Returns => {
                print_usage(w, &argv0, false);
                0
            }
            // Exits; Missing: 3.0.6's Xinetd has no usage function (an
            // "Unknown error: 127"): we print its xup_usage text, exit 1
            UsageFn::Exits | UsageFn::Missing => {
                print_usage(w, &argv0, false);
                return ExitCode::from(1);
            }
        },
        None => {
            log_and_print(&log, &format!("ERROR: Unknown operation: {action}"));
            print_usage(w, &argv0, w.usage_fn == UsageFn::Missing);
            return ExitCode::from(1);
        }
    };
    if w.errexit && rc != 0 {
        // SendArp runs under `set -e`: the agent's failure ends it silently
        return ExitCode::from(rc.clamp(0, 255) as u8);
    }
    let (line, _) = v1ocf::verdict(action, rc);
    log_and_print(&log, &line);
    if (0..=7).contains(&rc) {
        ExitCode::from(rc as u8)
    } else {
        ExitCode::from(1)
    }
}
