//! `ldirectord`: the ldirectord daemon of heartbeat-rs, a drop-in for the Perl
//! ldirectord 4.12 (Linux Director v1.186-ha).
//!
//! It reads the same `ldirectord.cf`, takes the same command line, writes the
//! same pid file and log lines and exits with the same codes; it checks every
//! real server of every virtual service concurrently from one event loop and
//! keeps the kernel IPVS table in line through `hanet` (generic netlink, no
//! `ipvsadm` process).
//!
//! Layout (pure logic first, the IO around it thin):
//! * [`config`]: the configuration model, parser and printer (pure).
//! * [`proto`]: the negotiate checks as byte-level dialogs (pure).

pub mod config;
pub mod daemon;
pub mod engine;
pub mod icmp;
pub mod log;
pub mod lvs;
pub mod mailer;
pub mod plan;
pub mod proto;
pub mod runner;
pub mod task;
pub mod tls;
