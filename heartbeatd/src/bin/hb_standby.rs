//! `hb_standby [all|foreign|local|failback]`: ask heartbeatd to give up
//! resources to the other node (the standby handshake). Without an argument:
//! all. `failback` means foreign (our node's copies of the other's groups).

use std::process::ExitCode;

use heartbeatd::control::Request;

fn main() -> ExitCode {
    heartbeatd::daemon::cli_ask("hb_standby", |which| Request::Standby { which })
}
