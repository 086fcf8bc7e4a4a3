//! `hanet`: the kernel plumbing of heartbeat-rs.
//!
//! This crate owns every conversation with the Linux kernel that the agents and
//! daemons need: IPVS over generic netlink, addresses/links/routes over
//! rtnetlink, gratuitous ARP on packet sockets and the sysctls an LVS director
//! or real server touches. It is synchronous (no async runtime) so that it fits
//! a mio loop or a one-shot agent process.

// Addresses, links, routes, ARP, sysctls, real-server VIP setup ("net").
pub mod addr;
pub mod arp;
pub mod link;
pub mod realserver;
pub mod route;
pub mod rtnl;
pub mod sysctl;
pub use rtnl::{NetError, Rtnl};

// IPVS over generic netlink, table model and ipvsadm formats ("ipvs").
pub mod ipvs;
