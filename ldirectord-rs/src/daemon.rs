//! The command line and the daemon's life: the Perl ldirectord's options,
//! commands, configuration lookup, pid file, exit codes and daemonizing.
//!
//! ```text
//! ldirectord [-d|--debug] [--] [CONFIG] start|stop|restart|try-restart|reload|force-reload|status
//! ldirectord -t|--check [CONFIG]      parse, print the effective configuration, exit 0 or 2
//! ldirectord -h|--help|-?  |  -v|--version
//! ```
//!
//! Exit codes: 0 ok / running, 1 error (config file not found, stale pid
//! file on status, reload of a stopped daemon), 2 configuration error,
//! 3 stopped (status), 255 usage.
//!
//! Environment (for tests and unusual layouts):
//! * `LDIRECTORD_RUNDIR` — directory of the pid file (default `/var/run`):
//!   `$LDIRECTORD_RUNDIR/ldirectord.CFGNAME.pid`;
//! * `LDIRECTORD_HA_DIR` — the directory searched first for CONFIG
//!   (default `/etc/ha.d`, then `/etc/ha.d/conf`);
//! * `HANET_IPVS_BACKEND` — `file:/path` or `memory` instead of the kernel.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Config, LogTarget, SystemResolver};
use crate::log::Logger;
use crate::runner::{Options, Runner};

/// The Perl daemon's version string (kept: scripts grep for it).
pub const VERSION_STR: &str = "Linux Director v1.186-ha";

const USAGE: &str = "Usage:
    ldirectord [-d|--debug] [--] [configfile] start | stop | restart |
    try-restart | reload | force-reload | status

    ldirectord -t|--check [configfile]

    ldirectord [-h|-?|--help|-v|--version]

Options:
    configuration: This is the name for the configuration as specified in
    the file /etc/ha.d/conf/configuration

    -d|--debug Don't start as daemon and log verbosely.

    -t|--check Read the configuration, print it with every default applied
    and exit: 0 if it is valid, 2 if not.

    -h|--help Print user manual and exit.

    -v|--version Print version and exit.

    start the daemon for the specified configuration.

    stop the daemon for the specified configuration. This is the same as
    sending a TERM signal to the running daemon.

    restart the daemon for the specified configuration. The same as stopping
    and starting.

    reload the configuration file. This is the same as sending a HUP
    signal to the running daemon.

    status of the running daemon for the specified configuration.

";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    pub debug: bool,
    pub check: bool,
    pub help: bool,
    pub version: bool,
    /// CONFIG as given (None: `ldirectord.cf`)
    pub config: Option<String>,
    pub command: Option<String>,
}

/// A command-line error: message for stderr (may be empty) then usage, 255.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage(pub String);

const COMMANDS: &[&str] = &[
    "start",
    "stop",
    "restart",
    "try-restart",
    "reload",
    "force-reload",
    "status",
];

/// Parses arguments like Getopt::Long with bundling and require_order.
pub fn parse_args(args: &[String]) -> Result<Cli, Usage> {
    let mut cli = Cli {
        debug: false,
        check: false,
        help: false,
        version: false,
        config: None,
        command: None,
    };
    let mut pos = Vec::new();
    let mut it = args.iter();
    let mut opts_done = false;
    for a in it.by_ref() {
        if opts_done || !a.starts_with('-') || a == "-" {
            pos.push(a.clone());
            opts_done = true;
            continue;
        }
        if a == "--" {
            opts_done = true;
            continue;
        }
        if let Some(long) = a.strip_prefix("--") {
            match long {
                "debug" => cli.debug = true,
                "help" => cli.help = true,
                "version" => cli.version = true,
                "check" => cli.check = true,
                _ => return Err(Usage(format!("Unknown option: {long}"))),
            }
            continue;
        }
        for c in a[1..].chars() {
            match c {
                'd' => cli.debug = true,
                'h' | '?' => cli.help = true,
                'v' => cli.version = true,
                't' => cli.check = true,
                _ => return Err(Usage(format!("Unknown option: {c}"))),
            }
        }
    }
    if cli.help || cli.version {
        return Ok(cli);
    }
    if cli.check {
        match pos.as_slice() {
            [] => {}
            [one] if COMMANDS.contains(&one.as_str()) => {}
            [one] => cli.config = Some(one.clone()),
            [c, cmd, ..] if COMMANDS.contains(&cmd.as_str()) => cli.config = Some(c.clone()),
            _ => return Err(Usage(String::new())),
        }
        return Ok(cli);
    }
    match pos.as_slice() {
        [] => return Err(Usage(String::new())),
        [cmd] => cli.command = Some(cmd.clone()),
        [c, cmd, ..] => {
            cli.config = Some(c.clone());
            cli.command = Some(cmd.clone());
        }
    }
    if !COMMANDS.contains(&cli.command.as_deref().unwrap_or("")) {
        return Err(Usage(String::new()));
    }
    Ok(cli)
}

/// CFGNAME: the basename of CONFIG as given, or `ldirectord`.
pub fn cfgname(config: Option<&str>) -> String {
    match config {
        Some(c) => c.rsplit('/').next().unwrap_or(c).to_string(),
        None => "ldirectord".into(),
    }
}

/// Finds CONFIG: `HA/CONFIG`, `HA/conf/CONFIG`, then CONFIG itself.
pub fn find_config(config: &str, ha_dir: &Path) -> Option<PathBuf> {
    let a = ha_dir.join(config);
    if a.is_file() {
        return Some(a);
    }
    let b = ha_dir.join("conf").join(config);
    if b.is_file() {
        return Some(b);
    }
    let c = PathBuf::from(config);
    c.is_file().then_some(c)
}

/// The pid file of a configuration name.
pub fn pid_file(cfgname: &str) -> PathBuf {
    let dir = std::env::var_os("LDIRECTORD_RUNDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/run"));
    dir.join(format!("ldirectord.{cfgname}.pid"))
}

/// The pid in the pid file and whether that process is an ldirectord.
pub fn read_pid(path: &Path) -> (Option<i32>, bool) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (None, false);
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
    else {
        return (Some(0), false);
    };
    let alive = pid > 0
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("ldirectord"))
            .unwrap_or(false);
    (Some(pid), alive)
}

/// The log target named by `logfile=` lines up to line `upto` (where the
/// Perl daemon would log a configuration error).
fn logfile_before(text: &str, upto: usize) -> LogTarget {
    let mut t = LogTarget::File(Config::DEFAULT_LOGFILE.into());
    for (i, l) in text.lines().enumerate() {
        if upto > 0 && i + 1 >= upto {
            break;
        }
        if let Some(v) = l.strip_prefix("logfile") {
            let v = v.trim_start();
            if let Some(v) = v.strip_prefix('=') {
                let v = v.trim();
                if let Some(inner) = v.strip_prefix('"').and_then(|x| x.rsplit_once('"')) {
                    let p = inner.0;
                    t = if p.starts_with('/') {
                        LogTarget::File(p.into())
                    } else {
                        LogTarget::Syslog(p.into())
                    };
                }
            }
        }
    }
    t
}

/// Reads and checks a configuration file; `Err` is the message to print.
pub fn load(path: &Path, check_logfile: bool) -> Result<Config, (config::ConfigError, String)> {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) => {
            return Err((
                config::ConfigError {
                    file: name.clone(),
                    line: 0,
                    msg: format!("can not open file {name}"),
                },
                String::new(),
            ))
        }
    };
    let mut cfg =
        config::parse(&text, &name, &SystemResolver::new()).map_err(|e| (e, text.clone()))?;
    let w = config::check_files(&cfg, check_logfile).map_err(|e| (e, text.clone()))?;
    cfg.warnings.extend(w);
    Ok(cfg)
}

fn version_text() -> String {
    format!(
        "{VERSION_STR}\n1999-2006 Jacob Rief, Horms and others\n<http://www.vergenet.net/linux/ldirectord/>\n\n\
         ldirectord comes with ABSOLUTELY NO WARRANTY.\nThis is free software, and you are welcome to redistribute it\n\
         under certain conditions. See the GNU General Public Licence for details.\n\
         (heartbeat-rs ldirectord {})\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Exits with a log line like `ld_exit` (non-zero, or always in debug).
fn exit(logger: &Logger, code: u8, reason: &str, debug: bool) -> ExitCode {
    if code != 0 || debug {
        logger.log(&format!("Exiting with exit_status {code}: {reason}"));
    }
    ExitCode::from(code)
}

/// The program.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let argv: Vec<String> = argv
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let argv0 = argv.first().cloned().unwrap_or_else(|| "ldirectord".into());
    let args = &argv[1.min(argv.len())..];
    let cli = match parse_args(args) {
        Ok(c) => c,
        Err(Usage(msg)) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            print!("{USAGE}");
            return ExitCode::from(255);
        }
    };
    if cli.version {
        print!("{}", version_text());
        return ExitCode::SUCCESS;
    }
    if cli.help {
        print!("{USAGE}");
        println!("The full manual is ldirectord(8); this implementation's differences are in its README.");
        return ExitCode::SUCCESS;
    }
    let pid = std::process::id();
    let cfg_arg = cli.config.clone().unwrap_or_else(|| "ldirectord.cf".into());
    let name = cfgname(cli.config.as_deref());
    let ha_dir = std::env::var_os("LDIRECTORD_HA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/ha.d"));
    let Some(path) = find_config(&cfg_arg, &ha_dir) else {
        eprintln!("Config file {cfg_arg} not found");
        return ExitCode::from(1);
    };
    // absolute, so reload works after chdir("/") (the Perl daemon's
    // relative paths broke there)
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    let cfg_display = path.display().to_string();
    let foreground_hint = cli.debug;
    let cfg = match load(&path, !cli.debug && !cli.check) {
        Ok(c) => c,
        Err((e, text)) => {
            eprintln!("{}", e.perl_format(pid));
            if !cli.check {
                let target = logfile_before(&text, e.line);
                let l = Logger::new(Logger::sink_for(&target, cli.debug, false), &name);
                l.log("Exiting with exit_status 2: config_error: Configuration Error");
            }
            return ExitCode::from(2);
        }
    };
    for w in &cfg.warnings {
        eprintln!("{}", w.perl_format(&cfg_display, pid));
    }
    if cli.check {
        print!("{}", config::print::effective(&cfg));
        return ExitCode::SUCCESS;
    }
    let logger = Arc::new(Logger::new(
        Logger::sink_for(&cfg.logfile, cli.debug, cfg.supervised),
        &name,
    ));
    let mut invoked = format!("Invoking ldirectord invoked as: {argv0} ");
    for a in args {
        invoked.push_str(a);
        invoked.push(' ');
    }
    logger.log(&invoked);
    let cmd = cli.command.clone().unwrap_or_default();
    let pidfile = pid_file(&name);
    let (filepid, alive) = read_pid(&pidfile);
    if alive {
        let oldpid = nix::unistd::Pid::from_raw(filepid.unwrap_or(0));
        let done = |l: &Logger| {
            exit(
                l,
                0,
                &format!("Exiting from ldirectord {cmd}"),
                foreground_hint,
            )
        };
        match cmd.as_str() {
            "start" => return done(&logger),
            "stop" => {
                let _ = nix::sys::signal::kill(oldpid, nix::sys::signal::Signal::SIGTERM);
                return done(&logger);
            }
            "restart" | "try-restart" => {
                let _ = nix::sys::signal::kill(oldpid, nix::sys::signal::Signal::SIGTERM);
                while pidfile.exists() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            "reload" | "force-reload" => {
                let _ = nix::sys::signal::kill(oldpid, nix::sys::signal::Signal::SIGHUP);
                return done(&logger);
            }
            _ => {
                let msg = format!(
                    "ldirectord for {cfg_display} is running with pid: {}",
                    oldpid.as_raw()
                );
                println!("{msg}");
                logger.log(&msg);
                logger.log("Exiting from ldirectord status");
                return done(&logger);
            }
        }
    } else {
        match cmd.as_str() {
            "start" | "restart" => {}
            "stop" | "try-restart" => {
                return exit(
                    &logger,
                    0,
                    &format!("Exiting from ldirectord {cmd}"),
                    cli.debug,
                )
            }
            "status" => {
                let mut code = 3;
                if filepid.is_some() {
                    let msg = format!(
                        "ldirectord stale pid file {} for {cfg_display}",
                        pidfile.display()
                    );
                    eprintln!("{msg}");
                    logger.log(&msg);
                    code = 1;
                }
                println!("ldirectord is stopped for {cfg_display}");
                return exit(&logger, code, "Exiting from ldirectord status", cli.debug);
            }
            _ => {
                logger.log(&format!("ldirectord is stopped for {cfg_display}"));
                return exit(
                    &logger,
                    1,
                    &format!("Exiting from ldirectord {cmd}"),
                    cli.debug,
                );
            }
        }
    }
    start(cli, cfg, path, name, pidfile, logger)
}

/// Runs `ldirectord NAME CMD` for each `execute=` instance (`ld_cmd_children`).
pub fn cmd_children(execute: &[String], cmd: &str, logger: &Logger) {
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    for child in execute {
        let run = |c: &str| {
            std::process::Command::new(&me)
                .args([child.as_str(), c])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        let ok = if cmd == "reload_or_start" {
            run("reload") || run("start")
        } else {
            run(cmd)
        };
        if !ok {
            logger.log(&format!("system({} {child} {cmd}) failed", me.display()));
        }
    }
}

fn start(
    cli: Cli,
    cfg: Config,
    path: PathBuf,
    name: String,
    pidfile: PathBuf,
    logger: Arc<Logger>,
) -> ExitCode {
    let foreground = cfg.supervised || cli.debug;
    let mut ready: Option<std::fs::File> = None;
    if foreground {
        logger.log(&format!(
            "Starting {VERSION_STR} with pid: {}",
            std::process::id()
        ));
    } else {
        logger.log(&format!("Starting {VERSION_STR} as daemon"));
        if let Err(e) = std::fs::File::create(&pidfile) {
            let msg = format!("Can not open {}", pidfile.display());
            logger.log(&msg);
            eprintln!("{msg}: {e}");
            return exit(&logger, 1, "Initialisation Error", cli.debug);
        }
        match daemonize() {
            Ok(w) => ready = Some(w),
            Err(code) => return ExitCode::from(code),
        }
        if let Err(e) = std::fs::write(&pidfile, format!("{}\n", std::process::id())) {
            logger.log(&format!("Can not write {}: {e}", pidfile.display()));
            return ExitCode::from(1);
        }
    }
    cmd_children(&cfg.execute, "start", &logger);
    let debug = cli.debug;
    let loader_path = path.clone();
    let loader_logger = logger.clone();
    let loader: crate::runner::Loader = Box::new(move || match load(&loader_path, !debug) {
        Ok(c) => {
            for w in &c.warnings {
                loader_logger
                    .log(&w.perl_format(&loader_path.display().to_string(), std::process::id()));
            }
            Ok(c)
        }
        Err((e, _)) => Err(e.perl_format(std::process::id())),
    });
    let opts = Options {
        config_path: path,
        cfgname: name,
        debug: cli.debug,
    };
    let mut runner = match Runner::new(cfg, opts, logger.clone(), loader) {
        Ok(r) => r,
        Err(e) => {
            logger.log(&format!("cannot start: {e}"));
            let _ = std::fs::remove_file(&pidfile);
            return exit(&logger, 1, "Initialisation Error", cli.debug);
        }
    };
    runner.start();
    if let Some(mut w) = ready.take() {
        let _ = w.write_all(b"R");
    }
    let _exit = runner.run();
    cmd_children(&runner.execute(), "stop", &logger);
    if !foreground {
        let _ = std::fs::remove_file(&pidfile);
    }
    if cli.debug {
        logger.log("Exiting with exit_status 0: Linux Director Daemon terminated");
    }
    ExitCode::SUCCESS
}

/// fork, setsid, fork, chdir /, stdio to /dev/null. The original process
/// waits until the daemon says it is ready (pid file written, IPVS set up)
/// and exits 0, or 1 if the daemon died first. Returns the daemon's end of
/// the readiness pipe.
fn daemonize() -> Result<std::fs::File, u8> {
    use nix::unistd::{fork, pipe2, setsid, ForkResult};
    // (close-on-exec: the `execute` children started before the daemon is
    // ready must not keep the pipe open if the daemon dies)
    let (r, w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|_| 1u8)?;
    // SAFETY: single-threaded at this point (no threads are started before
    // daemonizing), so the child may run arbitrary code after fork.
    match unsafe { fork() } {
        Err(_) => return Err(1),
        Ok(ForkResult::Parent { .. }) => {
            drop(w);
            let mut f = std::fs::File::from(r);
            let mut b = [0u8; 1];
            let ok = matches!(f.read(&mut b), Ok(1) if b[0] == b'R');
            return Err(if ok { 0 } else { 1 });
        }
        Ok(ForkResult::Child) => {}
    }
    drop(r);
    let _ = setsid();
    // SAFETY: still single-threaded.
    match unsafe { fork() } {
        Err(_) => std::process::exit(1),
        // SAFETY: _exit ends the intermediate process without running
        // destructors that belong to the daemon.
        Ok(ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
        Ok(ForkResult::Child) => {}
    }
    let _ = std::env::set_current_dir("/");
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    Ok(std::fs::File::from(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_lines() {
        let c = parse_args(&args(&["-d", "t.cf", "start"])).unwrap();
        assert!(c.debug);
        assert_eq!(
            (c.config.as_deref(), c.command.as_deref()),
            (Some("t.cf"), Some("start"))
        );
        let c = parse_args(&args(&["status"])).unwrap();
        assert_eq!((c.config, c.command.as_deref()), (None, Some("status")));
        let c = parse_args(&args(&["--", "-weird.cf", "stop"])).unwrap();
        assert_eq!(c.config.as_deref(), Some("-weird.cf"));
        let c = parse_args(&args(&["-dv"])).unwrap();
        assert!(c.debug && c.version);
        let c = parse_args(&args(&["-t", "/etc/x.cf"])).unwrap();
        assert!(c.check);
        assert_eq!(c.config.as_deref(), Some("/etc/x.cf"));
        assert!(parse_args(&args(&["--check"])).unwrap().config.is_none());
        assert_eq!(
            parse_args(&args(&["-x"])),
            Err(Usage("Unknown option: x".into()))
        );
        assert_eq!(parse_args(&args(&[])), Err(Usage(String::new())));
        assert_eq!(
            parse_args(&args(&["t.cf", "bogus"])),
            Err(Usage(String::new()))
        );
        // require_order: options after the first argument are arguments
        let c = parse_args(&args(&["t.cf", "-d"]));
        assert!(c.is_err());
    }

    #[test]
    fn names_and_lookup() {
        assert_eq!(cfgname(Some("/etc/ha.d/www.cf")), "www.cf");
        assert_eq!(cfgname(None), "ldirectord");
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("conf")).unwrap();
        std::fs::write(d.path().join("conf/b.cf"), "").unwrap();
        std::fs::write(d.path().join("a.cf"), "").unwrap();
        assert_eq!(find_config("a.cf", d.path()), Some(d.path().join("a.cf")));
        assert_eq!(
            find_config("b.cf", d.path()),
            Some(d.path().join("conf/b.cf"))
        );
        assert_eq!(find_config("nope.cf", d.path()), None);
    }

    #[test]
    fn logfile_of_a_broken_file() {
        let t = "logfile=\"/tmp/x.log\"\nfoo=bar\nlogfile=\"/tmp/y.log\"\n";
        assert_eq!(logfile_before(t, 2), LogTarget::File("/tmp/x.log".into()));
        assert_eq!(
            logfile_before("foo\n", 1),
            LogTarget::File(Config::DEFAULT_LOGFILE.into())
        );
    }
}
