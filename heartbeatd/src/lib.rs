//! `heartbeatd`: a heartbeat 3.0.6 compatible cluster node — membership over
//! authenticated keepalives and v1 (haresources) resource management — that
//! can replace the heartbeat daemon on one node of a pair while the other
//! still runs the real 3.0.6.
//!
//! What this crate owns, module by module:
//!
//! * [`config`] — `ha.cf`, `haresources`, `authkeys` with 3.0.6's grammar;
//!   every directive implemented, accepted with a notice, or refused with a
//!   message naming file and line.
//! * [`auth`] — the `crc`, `md5` and `sha1` authentication methods and the
//!   keyring (verify by the key index the packet names).
//! * [`wire`] — the message codec: netstring (UDP) and classic (serial)
//!   encodings with their inner and outer authentication, tested on every
//!   captured packet of a real 3.0.6 cluster.
//! * [`cluster`] — the sans-IO core: membership, sequence/generation
//!   tracking, retransmission and acks, the v1 resource handshakes
//!   (`auto_failback on|off|legacy`), takeover, standby, failback, graceful
//!   shutdown, split-brain healing, and the executor that runs agents. Fed
//!   with events and an injected clock; emits actions. Scenario tests drive
//!   it through hours of cluster time in milliseconds.
//! * [`daemon`] — the thin IO shell: one mio loop over the media (UDP
//!   bcast/ucast/mcast), agent processes, the control socket and signals;
//!   logging, state files, pid file, realtime scheduling, watchdog,
//!   respawned clients.
//! * [`control`] — the control-socket protocol shared by the daemon and the
//!   `cl_status`, `hb_standby` and `hb_takeover` tools.
//!
//! Binaries: `heartbeatd` (the daemon, 3.0.6's flags), `cl_status`,
//! `hb_standby`, `hb_takeover`. See README.md in this crate for operating it.
pub mod auth;
pub mod cluster;
pub mod config;
pub mod control;
pub mod daemon;
pub mod wire;
