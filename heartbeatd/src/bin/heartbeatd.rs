//! `heartbeatd`: the heartbeat daemon. Flags as heartbeat 3.0.6 has them,
//! plus path overrides and a configuration check.

use std::path::PathBuf;
use std::process::ExitCode;

use heartbeatd::daemon::{self, exit, Options};

const USAGE: &str = "\
usage: heartbeatd [-f] [-d]... [-l] [-M] [PATH OPTIONS]     start the daemon
       heartbeatd -k [PATH OPTIONS]                         stop the running daemon (waits)
       heartbeatd -s [PATH OPTIONS]                         report whether it runs
       heartbeatd -r [PATH OPTIONS]                         check config, re-read authkeys (SIGHUP)
       heartbeatd --check [PATH OPTIONS]                    print the parsed configuration
       heartbeatd -V | -h
  -f   stay in the foreground (log to stderr too)
  -d   more debug output (repeatable)
  -l   do not use realtime scheduling
  -M   membership only: do not manage resources
PATH OPTIONS:
  -c DIR, --config-dir DIR   configuration directory (default /etc/ha.d)
  --state-dir DIR            generation and uuid (default /var/lib/heartbeat)
  --run-dir DIR              pid file and control socket (default /run)
  --init-dir DIR             second place to look for agents (default /etc/init.d)
exit status: 0 ok, 1 error, 2 usage, 3 not running (-s), 4 permission, 6 bad configuration";

enum Mode {
    Run,
    Kill,
    Status,
    Reload,
    Check,
}

fn main() -> ExitCode {
    let mut opts = Options::default();
    let mut mode = Mode::Run;
    let mut args = std::env::args().skip(1);
    let usage_err = |m: String| -> ExitCode {
        eprintln!("heartbeatd: {m}\n{USAGE}");
        ExitCode::from(exit::USAGE as u8)
    };
    while let Some(a) = args.next() {
        let mut path_arg = |name: &str| -> Result<PathBuf, ExitCode> {
            args.next()
                .map(PathBuf::from)
                .ok_or_else(|| usage_err(format!("{name} needs a directory")))
        };
        match a.as_str() {
            "-c" | "--config-dir" => match path_arg(&a) {
                Ok(p) => opts.confdir = p,
                Err(e) => return e,
            },
            "--state-dir" => match path_arg(&a) {
                Ok(p) => opts.state_dir = p,
                Err(e) => return e,
            },
            "--run-dir" => match path_arg(&a) {
                Ok(p) => opts.run_dir = p,
                Err(e) => return e,
            },
            "--init-dir" => match path_arg(&a) {
                Ok(p) => opts.init_dir = p,
                Err(e) => return e,
            },
            "--check" | "-t" => mode = Mode::Check,
            "-V" | "--version" => {
                println!("{} (heartbeatd)", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            s if s.starts_with('-') && s.len() > 1 && !s.starts_with("--") => {
                for c in s[1..].chars() {
                    match c {
                        'f' => opts.foreground = true,
                        'd' => opts.debug += 1,
                        'l' => opts.no_realtime = true,
                        'M' => opts.no_resources = true,
                        'k' => mode = Mode::Kill,
                        's' => mode = Mode::Status,
                        'r' => mode = Mode::Reload,
                        other => return usage_err(format!("unknown option -{other}")),
                    }
                }
            }
            other => return usage_err(format!("unexpected argument {other:?}")),
        }
    }
    let code = match mode {
        Mode::Run => daemon::run(opts),
        Mode::Kill => daemon::stop_running(&opts),
        Mode::Status => daemon::report_status(&opts),
        Mode::Reload => daemon::reload_running(&opts),
        Mode::Check => match daemon::load_config(&opts) {
            Ok((cfg, me)) => {
                println!("# node: {me}");
                print!("{}", cfg.to_yaml());
                exit::OK
            }
            Err(c) => c,
        },
    };
    ExitCode::from(code as u8)
}
