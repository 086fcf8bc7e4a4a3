//! `heartbeatd`: a heartbeat 3.0.6 compatible cluster node.
pub mod auth;
pub mod config;
pub mod wire;
