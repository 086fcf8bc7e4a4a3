//! The ldirectord OCF wrapper, installed as `ldirectord` in the OCF provider
//! directory (see `resource_agents::ldirectord`).
fn main() -> std::process::ExitCode {
    resource_agents::agent::main(resource_agents::ldirectord::LdirectordAgent)
}
