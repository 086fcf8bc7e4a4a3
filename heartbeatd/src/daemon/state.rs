//! The node's persistent identity and its pid file, in 3.0.6's formats so
//! that a node switched from heartbeat to heartbeatd (or back) keeps its
//! uuid and a rising generation:
//!
//! * `STATE/hb_generation`: the generation in decimal, right-aligned in 15
//!   characters plus a newline (16 bytes), incremented and fsync'ed at
//!   every start; missing → `time()+1`, like 3.0.6; `hbgenmethod time`
//!   uses `time()`.
//! * `STATE/hb_uuid`: 16 raw bytes, random, created at first start
//!   (`uuidfrom nodename`: derived from the node name instead).
//! * `RUN/heartbeat.pid`: the daemon's pid.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use crate::config::{GenMethod, UuidFrom};

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads, increments and stores the generation. Returns (generation, note
/// for the log if the file was missing).
pub fn next_generation(state: &Path, method: GenMethod) -> io::Result<(u64, Option<String>)> {
    if method == GenMethod::Time {
        return Ok((now_secs(), None));
    }
    let path = state.join("hb_generation");
    let (gen, note) = match fs::read_to_string(&path) {
        Ok(t) => match t.trim().parse::<u64>() {
            Ok(g) => (g + 1, None),
            Err(_) => {
                let g = now_secs() + 1;
                (
                    g,
                    Some(format!(
                        "Bad generation file {} - starting at {g}",
                        path.display()
                    )),
                )
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let g = now_secs() + 1;
            (g, Some(format!("No Previous generation - starting at {g}")))
        }
        Err(e) => return Err(e),
    };
    let tmp = state.join("hb_generation.tmp");
    {
        let mut f = File::create(&tmp)?;
        writeln!(f, "{gen:>15}")?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    if let Ok(d) = File::open(state) {
        let _ = d.sync_all();
    }
    Ok((gen, note))
}

/// The node uuid: read, or created (random, or from the node name).
pub fn uuid(state: &Path, from: UuidFrom, node: &str) -> io::Result<([u8; 16], Option<String>)> {
    if from == UuidFrom::Nodename {
        // A stable uuid derived from the name (FNV-1a spread over 16 bytes).
        let mut out = [0u8; 16];
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (i, o) in out.iter_mut().enumerate() {
            for b in node.bytes().chain([i as u8]) {
                h ^= b as u64;
                h = h.wrapping_mul(0x100_0000_01b3);
            }
            *o = (h >> 24) as u8;
        }
        return Ok((out, None));
    }
    let path = state.join("hb_uuid");
    let mut buf = Vec::new();
    match File::open(&path) {
        Ok(mut f) => {
            f.read_to_end(&mut buf)?;
            if let Ok(u) = <[u8; 16]>::try_from(buf.as_slice()) {
                return Ok((u, None));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut u = [0u8; 16];
    File::open("/dev/urandom")?.read_exact(&mut u)?;
    // RFC 4122 version 4.
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    f.write_all(&u)?;
    f.sync_all()?;
    Ok((
        u,
        Some("No uuid found for current node - generating a new uuid.".to_owned()),
    ))
}

/// A random seed for the core's random choices.
pub fn seed() -> u64 {
    let mut b = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        return now_secs() ^ u64::from(std::process::id());
    }
    u64::from_ne_bytes(b)
}

/// The pid in the pid file, if that process is alive.
pub fn running_pid(pidfile: &Path) -> Option<i32> {
    let pid: i32 = fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    (pid > 0 && pid_alive(pid)).then_some(pid)
}

/// Is process `pid` alive (and not a zombie)?
pub fn pid_alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    state.is_some_and(|s| s != "Z")
}

pub fn write_pidfile(pidfile: &Path, pid: u32) -> io::Result<()> {
    let tmp = pidfile.with_extension("pid.tmp");
    fs::write(&tmp, format!("{pid}\n"))?;
    fs::rename(&tmp, pidfile)
}

/// First line of /proc/loadavg (the `ld` field).
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "0.00 0.00 0.00 1/1 1".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_file_is_3_0_6s_format_and_rises() {
        let d = tempfile::tempdir().unwrap();
        let (g1, note) = next_generation(d.path(), GenMethod::File).unwrap();
        assert!(note.unwrap().starts_with("No Previous generation"));
        let text = fs::read(d.path().join("hb_generation")).unwrap();
        assert_eq!(text.len(), 16);
        assert_eq!(text, format!("{g1:>15}\n").into_bytes());
        fs::write(d.path().join("hb_generation"), "     1795312056\n").unwrap();
        let (g2, note) = next_generation(d.path(), GenMethod::File).unwrap();
        assert_eq!((g2, note), (1795312057, None));
    }

    #[test]
    fn uuid_is_created_once_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let (u1, note) = uuid(d.path(), UuidFrom::File, "alpha").unwrap();
        assert!(note.is_some());
        let (u2, note) = uuid(d.path(), UuidFrom::File, "alpha").unwrap();
        assert_eq!((u1, note), (u2, None));
        assert_eq!(fs::read(d.path().join("hb_uuid")).unwrap(), u1);
        let (a, _) = uuid(d.path(), UuidFrom::Nodename, "alpha").unwrap();
        let (b, _) = uuid(d.path(), UuidFrom::Nodename, "beta").unwrap();
        assert_ne!(a, b);
        assert_eq!(a, uuid(d.path(), UuidFrom::Nodename, "alpha").unwrap().0);
    }
}
