//! `resource-agents`: the agents of the reference haresources chain
//! `lvs IPaddr::VIP/24/eth0 ipvsadm ldirectord`, one binary each:
//! `IPaddr`, `lvs`, `ipvsadm` (the IPVS rules loader that replaces RHEL's
//! `/etc/init.d/ipvsadm`; never install it over `/usr/sbin/ipvsadm`) and
//! `ldirectord-ocf` (the OCF wrapper around the ldirectord daemon,
//! installed as `ldirectord` in the OCF provider directory).
//!
//! This crate owns the agent side of the resource contract: every agent
//! answers as a heartbeat v1 resource script (`AGENT ARGS... VERB`,
//! `status` judged by its stdout text), as an LSB init script and as an OCF
//! resource agent (meta-data valid against `ra-api-1.dtd`, OCF exit codes,
//! `ocf-exit-reason:` lines, probes). The shared framework — mode detection
//! and dispatch ([`agent`]), the OCF model and meta-data ([`ocf`]), logging
//! ([`log`]), state files ([`state`]) and sysconfig files ([`sysconfig`]) —
//! keeps each agent module a thin layer over `hanet`, which does all the
//! kernel work (rtnetlink, ARP, sysctls, IPVS).

pub mod agent;
pub mod ipaddr;
pub mod ipvsadm;
pub mod ldirectord;
pub mod log;
pub mod lvs;
pub mod ocf;
pub mod state;
pub mod sysconfig;
pub mod v1ocf;
