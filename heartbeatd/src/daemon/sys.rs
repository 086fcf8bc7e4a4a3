//! Operating-system chores of the daemon: daemonizing, realtime scheduling
//! and memory locking, core dumps, the watchdog device, the control socket's
//! file and credentials, reboot.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use crate::cluster::Level;
use crate::control;
use crate::daemon::log::Logger;

/// The daemon's end of the start-up pipe. The command that was run waits on
/// it and exits with the daemon's verdict, so an init script or systemd
/// (`Type=forking`) learns of errors met after the fork (the pid file, the
/// state directory), and finds the pid file written when the command
/// returns. In the foreground there is nobody to tell.
pub struct Startup(Option<File>);

impl Startup {
    pub fn foreground() -> Startup {
        Startup(None)
    }

    /// The daemon is up: the command exits 0.
    pub fn ready(&mut self) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(b"ok\n");
        }
    }

    /// Start-up failed: the command prints `msg` on its stderr and exits
    /// with `code`. (The daemon's own stderr is /dev/null by now.)
    pub fn failed(&mut self, code: i32, msg: &str) {
        if let Some(mut f) = self.0.take() {
            let _ = write!(f, "{code} {msg}");
        }
    }
}

/// What the waiting command makes of what the daemon wrote before closing
/// its end: (exit status, message for stderr).
fn startup_verdict(said: &str) -> (i32, Option<&str>) {
    if said == "ok\n" {
        return (0, None);
    }
    let failure = said
        .split_once(' ')
        .and_then(|(code, msg)| Some((code.parse::<i32>().ok().filter(|&c| c > 0)?, msg)));
    match failure {
        Some((code, msg)) => (code, Some(msg)),
        None => (
            1,
            Some("heartbeatd: the daemon exited during start-up (see its log)"),
        ),
    }
}

/// Fork, new session, fork again (no controlling terminal ever), stdio on
/// /dev/null, cwd /. The first process waits for the daemon's verdict on
/// the start-up pipe and exits with it; only the daemon returns.
pub fn daemonize() -> io::Result<Startup> {
    use nix::fcntl::OFlag;
    use nix::unistd::{fork, pipe2, setsid, ForkResult};
    use std::io::Read;
    // (close-on-exec: agents and respawned clients never hold it open)
    let (rx, tx) = pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    // SAFETY: single-threaded at this point (no threads started yet).
    match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { .. } => {
            drop(tx);
            let mut said = String::new();
            let _ = File::from(rx).read_to_string(&mut said);
            let (code, msg) = startup_verdict(&said);
            if let Some(m) = msg {
                eprintln!("{m}");
            }
            std::process::exit(code)
        }
        ForkResult::Child => drop(rx),
    }
    setsid().map_err(io::Error::from)?;
    // SAFETY: as above.
    match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { .. } => std::process::exit(0),
        ForkResult::Child => {}
    }
    std::env::set_current_dir("/")?;
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors.
        unsafe { libc::dup2(null.as_raw_fd(), fd) };
    }
    // SAFETY: umask never fails.
    unsafe { libc::umask(0o022) };
    Ok(Startup(Some(File::from(tx))))
}

/// SCHED_FIFO at `prio` (default: the middle of the range) and mlockall.
/// Failures are warnings: heartbeat works without them, just less
/// punctually under load.
pub fn make_realtime(prio: Option<i32>, log: &Logger) {
    // SAFETY: plain syscalls with values we own.
    unsafe {
        let min = libc::sched_get_priority_min(libc::SCHED_FIFO);
        let max = libc::sched_get_priority_max(libc::SCHED_FIFO);
        let p = prio.unwrap_or((min + max) / 2).clamp(min, max);
        let param = libc::sched_param { sched_priority: p };
        if libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) < 0 {
            let e = io::Error::last_os_error();
            log.log(
                Level::Warn,
                &format!("Cannot set realtime scheduling (SCHED_FIFO {p}): {e}"),
            );
        } else {
            log.log(
                Level::Info,
                &format!("Realtime scheduling: SCHED_FIFO priority {p}"),
            );
        }
        // MCL_ONFAULT (Linux 4.4+): lock every page we touch, as it is
        // touched, instead of faulting in the whole of libc and the binary
        // up front (that alone is megabytes of RSS nobody runs). Pages of the
        // paths heartbeat walks every keepalive are touched in the first
        // seconds and stay locked. Older kernels refuse the flag: lock it all.
        if libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT) < 0
            && libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) < 0
        {
            let e = io::Error::last_os_error();
            log.log(
                Level::Warn,
                &format!("Cannot lock ourselves into memory: {e}"),
            );
        }
    }
}

/// `coredumps on`: allow core files; `coreroot`: write them there.
pub fn enable_coredumps(coreroot: Option<&Path>, log: &Logger) {
    let lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &lim) } < 0 {
        let e = io::Error::last_os_error();
        log.log(Level::Warn, &format!("Cannot enable core dumps: {e}"));
    }
    if let Some(dir) = coreroot {
        if let Err(e) = std::env::set_current_dir(dir) {
            log.log(
                Level::Warn,
                &format!("Cannot change to core directory {}: {e}", dir.display()),
            );
        }
    }
}

/// The `watchdog` device: written on every own heartbeat, closed with the
/// magic 'V' on a clean exit.
pub struct Watchdog {
    f: File,
}

impl Watchdog {
    pub fn open(path: &Path, deadtime: Duration, log: &Logger) -> Option<Watchdog> {
        match OpenOptions::new().write(true).open(path) {
            Ok(f) => {
                // WDIOC_SETTIMEOUT = _IOWR('W', 6, int)
                const WDIOC_SETTIMEOUT: libc::c_ulong = 0xc004_5706;
                let mut secs: libc::c_int = (deadtime.as_millis() as libc::c_int + 10 + 999) / 1000;
                // SAFETY: ioctl with a pointer to an int we own.
                unsafe { libc::ioctl(f.as_raw_fd(), WDIOC_SETTIMEOUT, &mut secs) };
                log.log(
                    Level::Info,
                    &format!("Using watchdog device: {}", path.display()),
                );
                Some(Watchdog { f })
            }
            Err(e) => {
                log.log(
                    Level::Err,
                    &format!("Cannot open watchdog device: {}: {e}", path.display()),
                );
                None
            }
        }
    }

    pub fn tickle(&mut self) {
        let _ = self.f.write_all(b"\0");
    }

    pub fn close(mut self) {
        let _ = self.f.write_all(b"V");
    }
}

/// Reboots this node now (`stop_failure reboot`).
pub fn reboot() {
    // SAFETY: sync and reboot(2); in a pid namespace this ends the namespace.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
}

/// The gid of a group, from /etc/group.
pub fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut it = l.split(':');
        (it.next()? == name).then(|| it.nth(1)?.parse().ok())?
    })
}

/// Creates the control socket: RUN/heartbeat/heartbeatd.sock, mode 0660,
/// group haclient; a stale socket file (no daemon behind it) is replaced.
pub fn control_listener(run_dir: &Path) -> io::Result<UnixListener> {
    let path = control::socket_path(run_dir);
    let dir = path.parent().expect("socket path has a parent");
    std::fs::create_dir_all(dir)
        .map_err(|e| io::Error::other(format!("cannot create {}: {e}", dir.display())))?;
    let gid = group_id("haclient");
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(io::Error::other(format!(
                "another heartbeatd answers on {}",
                path.display()
            )));
        }
        std::fs::remove_file(&path)?;
    }
    let l = UnixListener::bind(&path)
        .map_err(|e| io::Error::other(format!("cannot bind {}: {e}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(g) = gid {
        let _ = std::os::unix::fs::chown(&path, Some(0), Some(g));
    }
    Ok(l)
}

/// (uid, gid, pid) of the process at the other end of a Unix socket.
pub fn peer_cred(fd: std::os::fd::RawFd) -> Option<(u32, u32, i32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt into a ucred we own.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some((cred.uid, cred.gid, cred.pid))
}

/// Is `gid` among the supplementary groups of process `pid`?
pub fn process_in_group(pid: i32, gid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Groups:"))
                .map(|l| l[7..].split_whitespace().any(|g| g.parse() == Ok(gid)))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::startup_verdict;

    #[test]
    fn the_waiting_command_exits_with_the_daemons_verdict() {
        assert_eq!(startup_verdict("ok\n"), (0, None));
        assert_eq!(
            startup_verdict("1 heartbeatd: /run/heartbeat.pid: cannot write"),
            (1, Some("heartbeatd: /run/heartbeat.pid: cannot write"))
        );
        // The daemon died without a word (killed, or a panic).
        let (code, msg) = startup_verdict("");
        assert_eq!(code, 1);
        assert!(msg.unwrap().contains("exited during start-up"));
        assert_eq!(startup_verdict("ok").0, 1);
        assert_eq!(startup_verdict("0 not an error").0, 1);
    }
}
