//! `ldirectord`: the ldirectord daemon (see the crate documentation and
//! README for the command line, files and exit codes).
fn main() -> std::process::ExitCode {
    ldirectord::daemon::main(std::env::args_os().collect())
}
