//! The `lvs` resource agent (see `resource_agents::lvs`).
fn main() -> std::process::ExitCode {
    resource_agents::agent::main(resource_agents::lvs::LvsAgent)
}
