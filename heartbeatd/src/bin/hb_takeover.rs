//! `hb_takeover [all|foreign|local|failback]`: ask the other node to give
//! this node resources (it goes standby for the matching set). Without an
//! argument: all.

use std::process::ExitCode;

use heartbeatd::control::Request;

fn main() -> ExitCode {
    heartbeatd::daemon::cli_ask("hb_takeover", |which| Request::Takeover { which })
}
