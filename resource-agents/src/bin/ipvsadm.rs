//! The `ipvsadm` rules-loader agent (see `resource_agents::ipvsadm`). It
//! replaces /etc/init.d/ipvsadm; never install it over /usr/sbin/ipvsadm.
fn main() -> std::process::ExitCode {
    resource_agents::agent::main(resource_agents::ipvsadm::IpvsadmAgent)
}
