//! A table kept in a JSON file, shared by processes: the stand-in for the
//! kernel's IPVS on machines without it (selected with
//! `HANET_IPVS_BACKEND=file:/path/table.json`).
//!
//! Every call takes an exclusive `flock` on `<path>.lock`, reads the table
//! (a missing file is an empty table), applies the change with the kernel's
//! checks and errno values ([`Table::apply`]) and replaces the file
//! atomically (write to a temporary file, then rename). A test can read the
//! file at any time and see a complete table.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::backend::IpvsBackend;
use super::error::IpvsError;
use super::model::{Info, ServiceKey};
use super::table::{Entry, Op, Table};

/// A table in a JSON file (see the module documentation).
#[derive(Debug, Clone)]
pub struct FileBackend {
    path: PathBuf,
}

struct Lock(File);

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: unlocking a descriptor we own.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl FileBackend {
    /// A backend on `path` (created on the first change).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileBackend { path: path.into() }
    }

    /// The table file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, msg: impl Into<String>) -> IpvsError {
        IpvsError::File {
            path: self.path.display().to_string(),
            msg: msg.into(),
        }
    }

    fn lock(&self) -> Result<Lock, IpvsError> {
        let mut lp = self.path.clone().into_os_string();
        lp.push(".lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lp)
            .map_err(|e| self.err(format!("cannot open lock file: {e}")))?;
        loop {
            // SAFETY: flock on a descriptor we own; released by Lock::drop.
            let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(Lock(f));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(self.err(format!("cannot lock: {e}")));
            }
        }
    }

    /// Reads the table (without locking; a reader sees complete files only
    /// because writers rename into place).
    pub fn load(&self) -> Result<Table, IpvsError> {
        match fs::read_to_string(&self.path) {
            Ok(s) if s.trim().is_empty() => Ok(Table::new()),
            Ok(s) => serde_json::from_str(&s).map_err(|e| self.err(format!("corrupt table: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Table::new()),
            Err(e) => Err(self.err(format!("cannot read: {e}"))),
        }
    }

    /// Replaces the table (without locking).
    pub fn store(&self, t: &Table) -> Result<(), IpvsError> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let text = serde_json::to_string_pretty(t).map_err(|e| self.err(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_data()?;
            fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.err(format!("cannot write: {e}"))
        })
    }

    /// Runs `f` on the table under the lock; stores it if `f` says it changed.
    fn update<T>(
        &self,
        f: impl FnOnce(&mut Table) -> (bool, Result<T, IpvsError>),
    ) -> Result<T, IpvsError> {
        let _lock = self.lock()?;
        let mut t = self.load()?;
        let (changed, r) = f(&mut t);
        if changed {
            self.store(&t)?;
        }
        r
    }
}

impl IpvsBackend for FileBackend {
    fn info(&mut self) -> Result<Info, IpvsError> {
        Ok(Info::default())
    }

    fn table(&mut self) -> Result<Table, IpvsError> {
        let _lock = self.lock()?;
        self.load()
    }

    fn service(&mut self, key: &ServiceKey) -> Result<Option<Entry>, IpvsError> {
        Ok(self.table()?.get(key).cloned())
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), IpvsError> {
        self.update(|t| {
            let r = t.apply(ops);
            let changed = match &r {
                Ok(()) => !ops.is_empty(),
                Err(IpvsError::Refused { index, .. }) => *index > 0,
                Err(_) => false,
            };
            (changed, r)
        })
    }

    fn flush(&mut self) -> Result<(), IpvsError> {
        self.update(|t| {
            t.flush();
            (true, Ok(()))
        })
    }

    fn zero(&mut self, service: Option<&ServiceKey>) -> Result<(), IpvsError> {
        self.update(|t| {
            let r = t.zero(service);
            (r.is_ok(), r)
        })
    }

    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::model::{Dest, Forward, Service};
    use std::net::Ipv4Addr;

    #[test]
    fn behaves_like_the_kernel_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let mut b = FileBackend::new(&path);
        assert!(b.table().unwrap().is_empty());
        let k = ServiceKey::tcp(Ipv4Addr::new(192, 168, 136, 10), 80);
        b.add_service(&Service::new(k).with_scheduler("rr").unwrap())
            .unwrap();
        let e = b.add_service(&Service::new(k)).unwrap_err();
        assert!(e.is_exists(), "{e}");
        let d = Dest::new(Ipv4Addr::new(192, 168, 136, 101), 80, Forward::Tunnel, 1);
        b.add_dest(&k, &d).unwrap();
        let e = b.del_dest(
            &k,
            &Dest::new(Ipv4Addr::new(1, 1, 1, 1), 80, Forward::Gate, 1).key(),
        );
        assert_eq!(e.unwrap_err().errno(), Some(libc::ENOENT));
        // another handle (another process) sees the same table
        let mut other = FileBackend::new(&path);
        let t = other.table().unwrap();
        assert_eq!(t.dest(&k, &d.key()), Some(&d));
        assert_eq!(t.service(&k).unwrap().scheduler.as_str(), "rr");
        other.flush().unwrap();
        assert!(b.table().unwrap().is_empty());
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let k = ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80);
        FileBackend::new(&path)
            .add_service(&Service::new(k))
            .unwrap();
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    // one handle per writer, as separate processes would have
                    let mut b = FileBackend::new(&path);
                    for i in 0..25u8 {
                        let d = Dest::new(Ipv4Addr::new(10, 1, t, i), 80, Forward::Gate, 1);
                        b.add_dest(&k, &d).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let t = FileBackend::new(&path).table().unwrap();
        assert_eq!(t.get(&k).unwrap().dests.len(), 100);
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        fs::write(&path, "{not json").unwrap();
        let e = FileBackend::new(&path).table().unwrap_err().to_string();
        assert!(
            e.starts_with(&path.display().to_string()) && e.contains("corrupt"),
            "{e}"
        );
    }
}
