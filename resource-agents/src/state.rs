//! Small state files of the agents (what they added, background helper
//! pids) under the resource-agents state directory: `$HA_RSCTMP`, default
//! `/run/resource-agents` (the directory resource-agents' shell agents use;
//! it is on tmpfs, so it empties on reboot together with the addresses).

use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::agent::AgentError;

/// Default state directory.
pub const DEFAULT_DIR: &str = "/run/resource-agents";

/// The state directory: `$HA_RSCTMP` or [`DEFAULT_DIR`].
pub fn dir() -> PathBuf {
    std::env::var_os("HA_RSCTMP")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// Makes `name` safe as a file name component (IPv6 colons are fine,
/// slashes are not).
pub fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect()
}

/// Path of state file `name` in the state directory.
pub fn path(name: &str) -> PathBuf {
    dir().join(file_name(name))
}

/// Writes a state file atomically (temp file + rename), creating the
/// directory if needed.
pub fn write(name: &str, content: &str) -> Result<(), AgentError> {
    let d = dir();
    std::fs::create_dir_all(&d)
        .map_err(|e| AgentError::generic(format!("cannot create {}: {e}", d.display())))?;
    let p = path(name);
    let tmp = d.join(format!(".{}.{}", file_name(name), std::process::id()));
    std::fs::write(&tmp, content)
        .and_then(|_| std::fs::rename(&tmp, &p))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            AgentError::generic(format!("cannot write {}: {e}", p.display()))
        })
}

/// Reads a state file; `None` if it does not exist.
pub fn read(name: &str) -> Result<Option<String>, AgentError> {
    let p = path(name);
    match std::fs::read_to_string(&p) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AgentError::generic(format!(
            "cannot read {}: {e}",
            p.display()
        ))),
    }
}

/// Removes a state file (missing is fine).
pub fn remove(name: &str) -> Result<(), AgentError> {
    let p = path(name);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AgentError::generic(format!(
            "cannot remove {}: {e}",
            p.display()
        ))),
    }
}

/// `key=value` lines of a state file.
pub fn parse_kv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The pid in a pid file, if the file exists, parses, and the process is
/// alive (exists and is not a zombie).
pub fn live_pid(pidfile: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pidfile).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    if pid <= 1 {
        return None;
    }
    kill(Pid::from_raw(pid), None).ok()?;
    // a zombie (exited, not yet reaped by its parent) is not alive
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X")) {
        return None;
    }
    Some(pid)
}

/// Sends `sig` to `pid` (errors ignored: it may just have exited).
pub fn signal(pid: i32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid), sig);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kv() {
        assert_eq!(file_name("IPaddr-10.0.0.1"), "IPaddr-10.0.0.1");
        assert_eq!(file_name("a/b"), "a_b");
        assert_eq!(
            parse_kv("nic=eth0\nprefix = 24\nbogus\n"),
            vec![
                ("nic".to_string(), "eth0".to_string()),
                ("prefix".to_string(), "24".to_string())
            ]
        );
        assert_eq!(live_pid(Path::new("/nonexistent/pid")), None);
    }
}
