//! The lvs agent in LVS-TUN mode on a kernel that has ipip: Debian's kernel
//! as user-mode Linux (`lab::ipvs_vm`; this machine's kernel has no ipip),
//! one boot. Inside, a shell script drives the agent binary through the
//! seed's real-server ⇄ director switch and judges with `ip` and /proc:
//! stop creates `tunl0` (the ipip module is loaded on demand), puts the VIP
//! on it as a /32 with rp_filter off and ARP hidden; start takes it off and
//! turns forwarding on; both are idempotent; the heartbeat v1 call works.

mod common;

use std::path::Path;

const SCRIPT: &str = r#"
A=/root/agents/lvs
export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=lvs HA_RSCTMP=/tmp/rsc
export OCF_RESKEY_vip=192.168.136.10 OCF_RESKEY_mode=tun
diag() { ip -o addr; }
sc() { cat "/proc/sys/net/ipv4/$1"; }
is() { [ "$(sc "$1")" = "$2" ] || fail "$1 is $(sc "$1"), want $2"; }
ip link set lo up
[ -e /sys/class/net/tunl0 ] && fail "tunl0 exists before the agent ran"

expect 7 $A monitor
# real server (the seed's tunl script): VIP on tunl0, ARP for it hidden
expect 0 $A stop
[ -d /sys/module/ipip ] || fail "ipip not loaded"
ip -o addr show dev tunl0 | grep -q "inet 192.168.136.10/32 brd 192.168.136.10" || fail "VIP not on tunl0"
ip -o link show dev tunl0 | grep -q "UP" || fail "tunl0 not up"
is conf/tunl0/rp_filter 0
is conf/all/arp_ignore 1
is conf/all/arp_announce 2
is conf/tunl0/arp_ignore 1
is conf/tunl0/arp_announce 2
expect 0 $A stop
[ "$(ip -o addr show dev tunl0 | grep -c 192.168.136.10)" = 1 ] || fail "second stop added the VIP again"
expect 7 $A monitor
out=$($A status); case "$out" in "stopped (real server)"*) ;; *) fail "status said: $out" ;; esac

# director: VIP off tunl0, forwarding on, ARP hiding undone
expect 0 $A start
ip -o addr show dev tunl0 | grep -q 192.168.136.10 && fail "VIP still on tunl0"
is ip_forward 1
is conf/all/arp_ignore 0
is conf/all/arp_announce 0
expect 0 $A monitor
expect 0 $A start
out=$($A status); case "$out" in "running (director)"*) ;; *) fail "status said: $out" ;; esac

# heartbeat v1: lvs::VIP::tun
unset OCF_RESOURCE_INSTANCE OCF_RESKEY_vip OCF_RESKEY_mode
expect 0 $A 192.168.136.10 tun stop
ip -o addr show dev tunl0 | grep -q "inet 192.168.136.10/32" || fail "v1 stop: VIP not on tunl0"
out=$($A 192.168.136.10 tun status); case "$out" in stopped*) ;; *) fail "v1 status said: $out" ;; esac
expect 0 $A 192.168.136.10 tun start
out=$($A 192.168.136.10 tun status); case "$out" in running*) ;; *) fail "v1 status said: $out" ;; esac
ip -o addr show dev tunl0 | grep -q 192.168.136.10 && fail "v1 start: VIP still on tunl0"
echo "GUEST OK"
"#;

#[test]
fn tun_mode_switch_on_a_kernel_with_ipip() {
    common::run_in_guest(
        SCRIPT,
        &[(Path::new(env!("CARGO_BIN_EXE_lvs")), "/root/agents/lvs")],
    );
}
