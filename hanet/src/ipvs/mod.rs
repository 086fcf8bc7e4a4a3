//! IPVS (the kernel's layer-4 load balancer) as a typed table, over generic
//! netlink — what `ipvsadm` does, without a process per change.
//!
//! # Model
//! - [`ServiceKey`]: protocol ([`Protocol`] TCP/UDP/SCTP) + address + port, or a
//!   firewall mark with its [`Family`].
//! - [`Service`]: key + [`Scheduler`] (validated: rr wrr lc wlc lblc lblcr dh
//!   sh sed nq fo ovf mh twos), persistence (`persistent: Option<seconds>`),
//!   [`Netmask`] (v4 mask or v6 prefix), one-packet scheduling, [`SchedFlags`]
//!   (`sh-fallback`, `sh-port`, ...), persistence engine name (`sip`).
//! - [`Dest`]: address + port + [`Forward`] (Gate `-g` / Masq `-m` / Tunnel
//!   `-i`), weight, upper/lower thresholds, [`Tunnel`] options; when listed
//!   also connection counts and [`Stats`].
//! - [`Table`]: services with their destinations in key order
//!   ([`Entry`]); [`diff`] gives the fewest [`Op`]s (add/edit/del service or
//!   destination) that make one table look like another within a [`Scope`]
//!   (all services, only the desired ones, or the desired ones plus an
//!   explicit list), leaving the rest alone. `Op` displays as the equivalent
//!   ipvsadm command line.
//!
//! # Backends
//! [`IpvsBackend`] reads and changes a table: `info`, `table`, `service`,
//! `apply(&[Op])` (in order, stops at the first refusal), `flush`, `zero`, and
//! the helpers `add_service` ... `del_dest` and `sync(desired, scope)`.
//! - [`KernelIpvs`]: the kernel, over generic netlink (family "IPVS", v1).
//! - [`MemoryBackend`]: a private table.
//! - [`FileBackend`]: a JSON table shared by processes (flock), for tests of
//!   daemons and agents on machines whose kernel has no IPVS.
//!
//! [`open_from_env`] returns the kernel client unless
//! `HANET_IPVS_BACKEND=file:/path/table.json` (or `memory`) is set. The
//! stand-ins refuse what the kernel refuses, with the same errno:
//! add existing → EEXIST ([`IpvsError::is_exists`]), missing service → ESRCH,
//! missing destination → ENOENT ([`IpvsError::is_not_found`]), lower threshold
//! above upper → ERANGE, unknown persistence engine → ENOENT.
//!
//! # Text formats
//! [`rules`] parses the `ipvsadm-save`/`ipvsadm-restore` format
//! (`/etc/sysconfig/ipvsadm`) with errors naming the line, and prints a table
//! back exactly as `ipvsadm-save -n`; [`listing`] prints `ipvsadm -Ln`
//! (and `--stats`, `--rate`, `--thresholds`, `--persistent-conn`,
//! `--tun-info`) exactly as ipvsadm 1.31 does.
//!
//! # Example
//! ```no_run
//! use hanet::ipvs::{self, Dest, Forward, IpvsBackend, Scope, Service, ServiceKey, Table};
//! use std::net::Ipv4Addr;
//!
//! let mut backend = ipvs::open_from_env()?;
//! let key = ServiceKey::tcp(Ipv4Addr::new(192, 168, 136, 10), 80);
//! let mut want = Table::new();
//! want.insert_service(Service::new(key).with_scheduler("rr")?);
//! want.insert_dest(&key, Dest::new(Ipv4Addr::new(192, 168, 136, 101), 80, Forward::Tunnel, 1))?;
//! for op in backend.sync(&want, &Scope::Desired)? {
//!     println!("ipvsadm {op}");
//! }
//! # Ok::<(), hanet::ipvs::IpvsError>(())
//! ```
//!
//! The code is split so that the wire format is testable without a kernel:
//! [`codec`] encodes requests and decodes replies (sans IO); the `kernel`
//! module is the socket loop around it.

mod backend;
pub mod codec;
mod error;
mod file;
mod kernel;
pub mod listing;
mod model;
pub mod rules;
mod table;

pub use backend::{open_from_env, BackendSpec, IpvsBackend, MemoryBackend, BACKEND_ENV};
pub use error::{errno_text, ErrorKind, IpvsError};
pub use file::FileBackend;
pub use kernel::KernelIpvs;
pub use listing::{list, ListFormat, ListOptions};
pub use model::{
    inet_ntop6, AddrPort, Dest, DestKey, Family, Forward, Info, Netmask, Protocol, SchedFlags,
    Scheduler, Service, ServiceKey, Stats, Tunnel, TunnelType, DEFAULT_PERSISTENT_TIMEOUT,
    KNOWN_PERSISTENCE_ENGINES, KNOWN_SCHEDULERS,
};
pub use rules::{parse_rules, parse_table, read_rules_file, save, Command, Rule, RulesError};
pub use table::{diff, Entry, Op, Scope, Table};
