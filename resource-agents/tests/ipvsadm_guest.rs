//! The ipvsadm agent against a real kernel IPVS table: Debian's kernel as
//! user-mode Linux (`lab::ipvs_vm`), one boot. Inside, a shell script drives
//! the agent binary and judges with the real `ipvsadm` (`-S -n`, what
//! ipvsadm-save runs): the seed's rules file round-trips (start/monitor/stop), services and
//! destinations that were there before are left alone, drift is seen at
//! check level 10, and the heartbeat v1 call works.

mod common;

use std::path::Path;

const SCRIPT: &str = r#"
A=/root/agents/ipvsadm
R=/etc/sysconfig/ipvsadm
export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=ipvs OCF_RESKEY_rules=$R HA_RSCTMP=/tmp/rsc
diag() { echo "--- ipvsadm -S -n:"; ipvsadm -S -n; }
saved() { ipvsadm -S -n | sort; }

# somebody else's service, and the seed service already there with one real server
ipvsadm -A -t 10.0.0.1:443 -s wlc || fail "setup"
ipvsadm -A -t 192.168.136.10:80 -s rr || fail "setup"
ipvsadm -a -t 192.168.136.10:80 -r 192.168.136.101:80 -i -w 1 || fail "setup"
saved > /tmp/before

expect 7 $A monitor
expect 0 $A start
{ grep -v 192.168.136.10: /tmp/before; cat /root/expected; } | sort > /tmp/want
saved > /tmp/now
cmp -s /tmp/want /tmp/now || { diff /tmp/want /tmp/now; fail "table after start"; }
expect 0 $A monitor
expect 0 $A start
saved > /tmp/again
cmp -s /tmp/now /tmp/again || fail "second start changed the table"

# ldirectord quiesces a real server: still running at level 0, drift at level 10
ipvsadm -e -t 192.168.136.10:80 -r 192.168.136.102:80 -i -w 0 || fail "quiesce"
expect 0 $A monitor
OCF_CHECK_LEVEL=10 expect 7 $A monitor

expect 0 $A stop
saved > /tmp/after
cmp -s /tmp/before /tmp/after || { diff /tmp/before /tmp/after; fail "stop must restore the previous table"; }
expect 7 $A monitor
expect 0 $A stop

# a service of the file deleted behind the agent's back
expect 0 $A start
ipvsadm -D -t 192.168.136.10:80 || fail "delete"
expect 7 $A monitor
expect 0 $A stop

# heartbeat v1: rules file as argument, status text on stdout
unset OCF_RESOURCE_INSTANCE OCF_RESKEY_rules
ipvsadm -C
expect 0 $A $R start
out=$($A $R status)
case "$out" in running*) ;; *) fail "v1 status said: $out" ;; esac
[ "$(ipvsadm -S -n | sort)" = "$(sort /root/expected)" ] || fail "v1 start table"
expect 0 $A $R stop
[ -z "$(ipvsadm -S -n)" ] || fail "v1 stop left services"
out=$($A $R status)
case "$out" in stopped*) ;; *) fail "v1 status after stop said: $out" ;; esac
echo "GUEST OK"
"#;

#[test]
fn seed_rules_round_trip_on_a_real_ipvs_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("ipvsadm");
    std::fs::write(&rules, common::SEED_RULES).unwrap();
    // what ipvsadm -S -n must print for the seed's service, from our printer
    let expected = dir.path().join("expected");
    let table = hanet::ipvs::parse_table(common::SEED_RULES).unwrap();
    std::fs::write(&expected, hanet::ipvs::save(&table)).unwrap();
    common::run_in_guest(
        SCRIPT,
        &[
            (
                Path::new(env!("CARGO_BIN_EXE_ipvsadm")),
                "/root/agents/ipvsadm",
            ),
            (&rules, "/etc/sysconfig/ipvsadm"),
            (&expected, "/root/expected"),
        ],
    );
}
