//! `ldirectord`: the ldirectord daemon.
