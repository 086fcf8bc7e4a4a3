//! `heartbeatd`: a heartbeat 3.0.6 compatible cluster node.
pub mod auth;
pub mod cluster;
pub mod config;
pub mod control;
pub mod daemon;
pub mod wire;
