//! Where an IPVS table lives: the [`IpvsBackend`] trait and its in-memory
//! implementation; [`open_from_env`] picks the backend for a process.

use std::path::PathBuf;

use super::error::IpvsError;
use super::file::FileBackend;
use super::kernel::KernelIpvs;
use super::model::{Dest, DestKey, Info, Service, ServiceKey};
use super::table::{diff, Entry, Op, Scope, Table};

/// The environment variable that selects a non-kernel backend:
/// `file:/path/table.json` (a JSON table shared by processes, locked with
/// flock) or `memory` (a private empty table). Unset or `kernel` means the
/// kernel's IPVS over generic netlink.
pub const BACKEND_ENV: &str = "HANET_IPVS_BACKEND";

/// An IPVS table that can be read and changed: the kernel, or a stand-in
/// with the kernel's semantics (same checks, same errno values).
pub trait IpvsBackend {
    /// Version and connection table size (`ipvsadm`'s first listing line).
    fn info(&mut self) -> Result<Info, IpvsError>;

    /// The whole table with destinations and counters.
    fn table(&mut self) -> Result<Table, IpvsError>;

    /// One service with its destinations; `None` if it does not exist.
    fn service(&mut self, key: &ServiceKey) -> Result<Option<Entry>, IpvsError>;

    /// Applies `ops` in order, stopping at the first refusal
    /// ([`IpvsError::Refused`] tells which; earlier ones stay applied).
    fn apply(&mut self, ops: &[Op]) -> Result<(), IpvsError>;

    /// Deletes every service (`ipvsadm -C`).
    fn flush(&mut self) -> Result<(), IpvsError>;

    /// Zeroes counters of one service or of all (`ipvsadm -Z`).
    fn zero(&mut self, service: Option<&ServiceKey>) -> Result<(), IpvsError>;

    /// A short name for messages: `kernel`, `memory`, `file:/path`.
    fn describe(&self) -> String;

    /// `ipvsadm -A`
    fn add_service(&mut self, s: &Service) -> Result<(), IpvsError> {
        self.apply(&[Op::AddService(s.clone())])
    }

    /// `ipvsadm -E`
    fn edit_service(&mut self, s: &Service) -> Result<(), IpvsError> {
        self.apply(&[Op::EditService(s.clone())])
    }

    /// `ipvsadm -D`
    fn del_service(&mut self, key: &ServiceKey) -> Result<(), IpvsError> {
        self.apply(&[Op::DelService(*key)])
    }

    /// `ipvsadm -a`
    fn add_dest(&mut self, key: &ServiceKey, d: &Dest) -> Result<(), IpvsError> {
        self.apply(&[Op::AddDest(*key, d.clone())])
    }

    /// `ipvsadm -e`
    fn edit_dest(&mut self, key: &ServiceKey, d: &Dest) -> Result<(), IpvsError> {
        self.apply(&[Op::EditDest(*key, d.clone())])
    }

    /// `ipvsadm -d`
    fn del_dest(&mut self, key: &ServiceKey, d: &DestKey) -> Result<(), IpvsError> {
        self.apply(&[Op::DelDest(*key, *d)])
    }

    /// Makes the table look like `desired` within `scope`, touching only
    /// what differs; returns the operations it applied.
    fn sync(&mut self, desired: &Table, scope: &Scope) -> Result<Vec<Op>, IpvsError> {
        let current = self.table()?;
        let ops = diff(&current, desired, scope);
        self.apply(&ops)?;
        Ok(ops)
    }
}

/// A private in-memory table with the kernel's semantics (tests, dry runs).
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    /// the table
    pub table: Table,
    /// what [`IpvsBackend::info`] reports
    pub info: Info,
}

impl MemoryBackend {
    /// An empty table.
    pub fn new() -> Self {
        MemoryBackend::default()
    }
}

impl IpvsBackend for MemoryBackend {
    fn info(&mut self) -> Result<Info, IpvsError> {
        Ok(self.info)
    }
    fn table(&mut self) -> Result<Table, IpvsError> {
        Ok(self.table.clone())
    }
    fn service(&mut self, key: &ServiceKey) -> Result<Option<Entry>, IpvsError> {
        Ok(self.table.get(key).cloned())
    }
    fn apply(&mut self, ops: &[Op]) -> Result<(), IpvsError> {
        self.table.apply(ops)
    }
    fn flush(&mut self) -> Result<(), IpvsError> {
        self.table.flush();
        Ok(())
    }
    fn zero(&mut self, service: Option<&ServiceKey>) -> Result<(), IpvsError> {
        self.table.zero(service)
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

/// Which backend a `HANET_IPVS_BACKEND` value selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSpec {
    /// the kernel (generic netlink)
    Kernel,
    /// a private in-memory table
    Memory,
    /// a shared JSON table file
    File(PathBuf),
}

impl BackendSpec {
    /// Parses a `HANET_IPVS_BACKEND` value.
    pub fn parse(v: &str) -> Result<Self, IpvsError> {
        match v {
            "" | "kernel" => Ok(BackendSpec::Kernel),
            "memory" => Ok(BackendSpec::Memory),
            _ => match v.strip_prefix("file:") {
                Some(p) if !p.is_empty() => Ok(BackendSpec::File(PathBuf::from(p))),
                _ => Err(IpvsError::Invalid(format!(
                    "{BACKEND_ENV}={v}: expected `kernel`, `memory` or `file:/path/table.json`"
                ))),
            },
        }
    }

    /// The spec in the environment (kernel if unset).
    pub fn from_env() -> Result<Self, IpvsError> {
        match std::env::var(BACKEND_ENV) {
            Ok(v) => BackendSpec::parse(&v),
            Err(std::env::VarError::NotPresent) => Ok(BackendSpec::Kernel),
            Err(e) => Err(IpvsError::Invalid(format!("{BACKEND_ENV}: {e}"))),
        }
    }

    /// Opens the backend.
    pub fn open(&self) -> Result<Box<dyn IpvsBackend + Send>, IpvsError> {
        Ok(match self {
            BackendSpec::Kernel => Box::new(KernelIpvs::open()?),
            BackendSpec::Memory => Box::new(MemoryBackend::new()),
            BackendSpec::File(p) => Box::new(FileBackend::new(p)),
        })
    }
}

/// The backend this process should use: the kernel's IPVS, unless
/// `HANET_IPVS_BACKEND` says `file:/path` or `memory`.
pub fn open_from_env() -> Result<Box<dyn IpvsBackend + Send>, IpvsError> {
    BackendSpec::from_env()?.open()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing() {
        assert_eq!(BackendSpec::parse("kernel").unwrap(), BackendSpec::Kernel);
        assert_eq!(BackendSpec::parse("memory").unwrap(), BackendSpec::Memory);
        assert_eq!(
            BackendSpec::parse("file:/tmp/t.json").unwrap(),
            BackendSpec::File("/tmp/t.json".into())
        );
        let e = BackendSpec::parse("file:").unwrap_err().to_string();
        assert!(e.contains("HANET_IPVS_BACKEND"), "{e}");
        assert!(BackendSpec::parse("nope").is_err());
    }
}
