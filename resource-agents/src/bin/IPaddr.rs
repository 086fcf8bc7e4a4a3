//! The `IPaddr` resource agent (see `resource_agents::ipaddr`).
fn main() -> std::process::ExitCode {
    resource_agents::agent::main(resource_agents::ipaddr::IpAddrAgent)
}
