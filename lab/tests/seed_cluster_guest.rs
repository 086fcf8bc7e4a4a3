//! The reference cluster end to end on a kernel with real IPVS: one boot of
//! Debian's kernel as user-mode Linux (`lab::ipvs_vm`; this machine's kernel
//! has no IPVS). Inside, the payload below builds the seed topology in
//! network namespaces on one bridge (each namespace has its own IPVS table):
//!
//! | namespace | address | runs |
//! | --- | --- | --- |
//! | `loadbalancer` | 192.168.136.11 | our `heartbeatd`, the agents, `ldirectord` |
//! | `backup` | 192.168.136.12 | the same |
//! | `rs1`..`rs3` | 192.168.136.101..103 | busybox httpd, `/test.html` = `Test Page rsN` |
//! | `client` | 192.168.136.50 | busybox `nc` asking the VIP 192.168.136.10 |
//!
//! Both directors run `heartbeatd` (daemon mode, `-c`/`--state-dir`/
//! `--run-dir` under the guest's /tmp, node name from `nodeinfo`) with the
//! seed's ha.cf shortened (keepalive 200ms, warntime 600ms, deadtime 1,
//! initdead 2, bcast eth0, auto_failback on) and the seed's haresources chain
//! in LVS-DR form:
//! `loadbalancer lvs::192.168.136.10::dr IPaddr::192.168.136.10/24/eth0 ipvsadm ldirectord`
//! (`resource.d/` holds our `lvs`, `IPaddr`, `ipvsadm` agents and the
//! `ldirectord` daemon itself, called `ldirectord start|stop|status` with
//! `/etc/ha.d/ldirectord.cf`). The rules file has the VIP's service with the
//! three reals as `-g` (gate); ldirectord checks them with negotiate http
//! (`test.html` / `Test Page`, checkinterval 1, quiescent=no). The real
//! servers are made LVS-DR real servers by our `lvs` agent's `stop` (VIP /32
//! on lo, arp_ignore=1, arp_announce=2). Per-node state that would be
//! per-box on real directors is kept apart: the agents' state directory
//! (`env RSCTMP=` in ha.cf → `HA_RSCTMP`) and ldirectord's pid file
//! directory (`LDIRECTORD_RUNDIR` in heartbeatd's environment, which agents
//! inherit).
//!
//! The payload checks, with the real `ipvsadm -Ln` in each director's
//! namespace and `cl_status` on each node's control socket:
//! 1. both nodes see each other `active`; loadbalancer holds the group: VIP
//!    on its eth0, its IPVS table has the service with the three reals; the
//!    backup has no VIP and an empty table;
//! 2. the client's requests to the VIP are answered by several real servers
//!    (round robin through the real kernel IPVS, LVS-DR);
//! 3. a real server's httpd killed → ldirectord removes it from the table;
//!    restarted → it comes back;
//! 4. loadbalancer loses power (heartbeatd and ldirectord SIGKILLed, eth0
//!    down) → backup runs the whole chain (VIP, table, answers); timed;
//! 5. loadbalancer comes back as a rebooted box (no VIP, empty table, empty
//!    run/state-of-agents directories, eth0 up, heartbeatd started) →
//!    failback: group back on loadbalancer, backup's VIP gone from eth0 and
//!    its table empty, client answered; timed;
//! 6. `heartbeatd -k` on loadbalancer → graceful handover to backup; timed.
//!
//! The binaries are built with `lab::build_workspace_bins` (`cargo build -p
//! heartbeatd -p resource-agents -p ldirectord-rs --bins` into the target
//! directory of the `lab` binary) and copied into the guest with their libraries; iproute2's
//! `ip` (for `ip netns` and veth pairs) is copied from the host. Runs as root
//! (CI does). On the 2-core development VM the guest runs 70-90 s, up to
//! about 140 s while other builds load the host: processes are slow to
//! start under user-mode Linux (an agent call takes about 0.3-1 s, so a move
//! of the four-agent group, with a `status` before each `start`, takes
//! several seconds there). The payload prints each measured time, the moves
//! as both nodes logged them and ldirectord's log; the deadlines of its
//! polling loops are generous, the timings are reported, not judged.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const SCRIPT: &str = r#"#!/bin/sh
set -u
BIN=/root/bin
AG=/root/agents
IP=$BIN/ip
VIP=192.168.136.10
T0=0

now_ms() {
    _ns=$(date +%s%N)
    case "$_ns" in
    *N | "") awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime ;;
    *) echo $((_ns / 1000000)) ;;
    esac
}
say() { echo "[$(( $(now_ms) - T0 )) ms] $*"; }
ns() { n=$1; shift; $IP netns exec "$n" "$@"; }
sock() { echo "/tmp/$1/run/heartbeat/heartbeatd.sock"; }
cl() { n=$1; shift; HEARTBEATD_SOCKET=$(sock "$n") $BIN/cl_status "$@" 2>&1; }
table() { ns "$1" ipvsadm -Ln 2>&1; }

diag() {
    for n in loadbalancer backup; do
        echo "===== $n"
        echo "--- cl_status rscstatus: $(cl $n rscstatus)"
        echo "--- nodestatus loadbalancer: $(cl $n nodestatus loadbalancer) backup: $(cl $n nodestatus backup)"
        echo "--- ip addr"; ns $n $IP -o addr 2>&1
        echo "--- ipvsadm -Ln"; table $n
        echo "--- ha-log (tail)"; tail -n 40 /tmp/$n/ha-log 2>&1
        echo "--- ha-debug (tail)"; tail -n 40 /tmp/$n/ha-debug 2>&1
    done
    echo "===== ldirectord.log (tail)"; tail -n 40 /tmp/ldirectord.log 2>&1
    echo "===== processes"; ps 2>&1 | grep -v ' \[' | tail -n 40
}
fail() { echo "FAIL: $*"; diag; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls every 100 ms until COMMAND succeeds
wait_for() {
    desc=$1 lim=$2; shift 2
    end=$(( $(now_ms) + lim * 1000 ))
    until "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -gt "$end" ] && fail "after ${lim} s: $desc"
        usleep 100000
    done
}

# --- judges
vip_on() { ns "$1" $IP -o addr show dev eth0 | grep -q "inet $VIP/24"; }
no_vip() { ! vip_on "$1"; }
# table_is NODE "101 102 103": the service with exactly these reals (gate)
table_is() {
    _tab=$(table "$1")
    echo "$_tab" | grep -q "^TCP  $VIP:80 rr" || return 1
    [ "$(echo "$_tab" | grep -c -- '->.*Route')" = "$(echo $2 | wc -w)" ] || return 1
    for r in $2; do
        echo "$_tab" | grep -q -- "-> 192.168.136.$r:80 *Route" || return 1
    done
}
# sees NODE PEER STATE: cl_status nodestatus on NODE says STATE for PEER
sees() { [ "$(cl "$1" nodestatus "$2")" = "$3" ]; }
# real_server NODE: the lvs agent's stop ran there (VIP /32 on lo, LVS-DR real server)
real_server() { ns "$1" $IP -o addr show dev lo | grep -q "inet $VIP/32"; }
table_empty() { ! table "$1" | grep -q '^TCP\|^UDP\|^FWM'; }
fetch() {
    printf 'GET /test.html HTTP/1.0\r\n\r\n' | ns client nc -w 2 $VIP 80 2>/dev/null | tail -n 1
}
answers() { case "$(fetch)" in "Test Page rs"[123]) return 0 ;; esac; return 1; }
# holds NODE REALS: runs the group (settled), VIP on eth0, the table with REALS
holds() {
    case "$(cl "$1" rscstatus)" in local | foreign | all) ;; *) return 1 ;; esac
    vip_on "$1" && table_is "$1" "$2"
}
# released NODE: settled without the group (it has no resources of its own)
released() {
    case "$(cl "$1" rscstatus)" in none | local) ;; *) return 1 ;; esac
    no_vip "$1" && table_empty "$1"
}
# several requests: answered every time, by at least two real servers
serve_check() {
    : >/tmp/answers
    slowest=0
    for i in 1 2 3 4 5 6; do
        t_req=$(now_ms)
        a=$(fetch)
        t_req=$(( $(now_ms) - t_req ))
        [ "$t_req" -gt "$slowest" ] && slowest=$t_req
        case "$a" in "Test Page rs"[123]) echo "$a" >>/tmp/answers ;; *) fail "$1: request $i got '$a'" ;; esac
    done
    n=$(sort -u /tmp/answers | wc -l)
    say "$1: 6 requests (slowest $slowest ms) answered by $n real servers: $(sort /tmp/answers | uniq -c | tr -s ' \n' ' ')"
    [ "$n" -ge 2 ] || fail "$1: only one real server answered"
}

# --- the network: one bridge, a veth per host
T0=$(now_ms)
mkdir -p /var && ln -s /run /var/run
$IP link add br0 type bridge || fail "no bridge"
$IP link set br0 up
host() { # NAME ADDRESS
    $IP netns add "$1" || fail "ip netns add $1"
    $IP link add "v-$1" type veth peer name eth0 netns "$1" || fail "veth for $1"
    $IP link set "v-$1" master br0 up
    ns "$1" $IP link set lo up
    ns "$1" $IP addr add "$2/24" brd + dev eth0
    ns "$1" $IP link set eth0 up
}
host loadbalancer 192.168.136.11
host backup 192.168.136.12
host client 192.168.136.50
for r in 1 2 3; do host rs$r 192.168.136.10$r; done

# --- real servers: LVS-DR real-server role by our lvs agent's stop, then httpd
start_httpd() { # rsN (ip netns exec execs httpd: $! is httpd's pid)
    $IP netns exec "$1" busybox httpd -f -p 80 -h "/tmp/$1/www" &
    echo $! >"/tmp/$1/httpd.pid"
}
for r in 1 2 3; do
    mkdir -p /tmp/rs$r/www
    echo "Test Page rs$r" >/tmp/rs$r/www/test.html
    HA_RSCTMP=/tmp/rs$r/rsc ns rs$r $AG/lvs $VIP dr stop >/tmp/rs$r/lvs.out 2>&1 ||
        { cat /tmp/rs$r/lvs.out; fail "lvs $VIP dr stop on rs$r"; }
    ns rs$r $IP -o addr show dev lo | grep -q "inet $VIP/32" || fail "rs$r: VIP not on lo"
    [ "$(ns rs$r cat /proc/sys/net/ipv4/conf/all/arp_ignore)" = 1 ] || fail "rs$r: arp_ignore"
    start_httpd rs$r
done
say "network and real servers up"
for r in 1 2 3; do
    wait_for "rs$r's httpd answers" 10 sh -c "printf 'GET /test.html HTTP/1.0\r\n\r\n' | $IP netns exec client nc -w 2 192.168.136.10$r 80 | grep -q 'Test Page rs$r'"
done

# --- the cluster configuration (shared files as on both real directors)
mkdir -p /etc/ha.d /etc/sysconfig
cat >/etc/sysconfig/ipvsadm <<EOF
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r 192.168.136.101:80 -g -w 1
-a -t $VIP:80 -r 192.168.136.102:80 -g -w 1
-a -t $VIP:80 -r 192.168.136.103:80 -g -w 1
EOF
cat >/etc/ha.d/ldirectord.cf <<EOF
checktimeout=2
checkinterval=1
quiescent=no
logfile="/tmp/ldirectord.log"
virtual=$VIP:80
        real=192.168.136.101:80 gate
        real=192.168.136.102:80 gate
        real=192.168.136.103:80 gate
        service=http
        checktype=negotiate
        request="test.html"
        receive="Test Page"
        scheduler=rr
        protocol=tcp
EOF
$AG/ldirectord -t /etc/ha.d/ldirectord.cf >/tmp/ld-check 2>&1 || { cat /tmp/ld-check; fail "ldirectord -t"; }
for n in loadbalancer backup; do
    e=/tmp/$n/etc
    mkdir -p $e/resource.d /tmp/$n/state /tmp/$n/run /tmp/$n/rsc
    cat >$e/ha.cf <<EOF
logfile /tmp/$n/ha-log
debugfile /tmp/$n/ha-debug
keepalive 200ms
warntime 600ms
deadtime 1
initdead 2
udpport 694
bcast eth0
auto_failback on
node loadbalancer
node backup
env RSCTMP=/tmp/$n/rsc
EOF
    printf 'auth 1\n1 sha1 seed-cluster-guest\n' >$e/authkeys
    chmod 600 $e/authkeys
    echo "loadbalancer lvs::$VIP::dr IPaddr::$VIP/24/eth0 ipvsadm ldirectord" >$e/haresources
    echo $n >$e/nodeinfo
    for a in lvs IPaddr ipvsadm ldirectord; do ln -s $AG/$a $e/resource.d/$a; done
done
hb() { # NODE ARGS...: heartbeatd of NODE in its namespace
    n=$1; shift
    LDIRECTORD_RUNDIR=/tmp/$n/run ns $n $BIN/heartbeatd -c /tmp/$n/etc \
        --state-dir /tmp/$n/state --run-dir /tmp/$n/run "$@"
}
hb loadbalancer --check >/tmp/check.out 2>&1 || { cat /tmp/check.out; fail "heartbeatd --check"; }

# --- 1. start both directors: loadbalancer takes the group
hb loadbalancer >/tmp/loadbalancer/start.out 2>&1 || { cat /tmp/loadbalancer/start.out; fail "start loadbalancer"; }
hb backup >/tmp/backup/start.out 2>&1 || { cat /tmp/backup/start.out; fail "start backup"; }
say "both heartbeatd started"
wait_for "loadbalancer sees backup active" 20 sees loadbalancer backup active
wait_for "backup sees loadbalancer active" 20 sees backup loadbalancer active
wait_for "loadbalancer holds the group (VIP, table with 3 reals)" 60 holds loadbalancer "101 102 103"
wait_for "backup settled without the group" 15 released backup
say "1. both active; loadbalancer holds the group"
table loadbalancer
echo "backup: rscstatus $(cl backup rscstatus), table: $(table backup | grep -c '^TCP') services"

# --- 2. the client through the VIP
serve_check "2. client via loadbalancer"

# --- 3. a real server's httpd dies and comes back
kill "$(cat /tmp/rs2/httpd.pid)"
ts=$(now_ms)
wait_for "ldirectord removes rs2 (192.168.136.102)" 15 table_is loadbalancer "101 103"
say "3. rs2's httpd killed: out of the table after $(( $(now_ms) - ts )) ms"
grep -q "Deleted real server: 192.168.136.102:80 ($VIP:80)" /tmp/ldirectord.log ||
    fail "ldirectord did not log the deletion of rs2"
for i in 1 2 3 4; do
    a=$(fetch)
    case "$a" in "Test Page rs1" | "Test Page rs3") ;; *) fail "with rs2 down, request $i got '$a'" ;; esac
done
start_httpd rs2
ts=$(now_ms)
wait_for "ldirectord puts rs2 back" 15 table_is loadbalancer "101 102 103"
say "3. rs2's httpd restarted: back in the table after $(( $(now_ms) - ts )) ms"
grep -q "Added real server: 192.168.136.102:80 ($VIP:80)" /tmp/ldirectord.log ||
    fail "ldirectord did not log the return of rs2"

# --- 4. power loss of loadbalancer
ts=$(now_ms)
kill -9 "$(cat /tmp/loadbalancer/run/heartbeat.pid)" || fail "no heartbeatd pid on loadbalancer"
kill -9 "$(cat /tmp/loadbalancer/run/ldirectord.*.pid)" || fail "no ldirectord pid on loadbalancer"
ns loadbalancer $IP link set eth0 down
wait_for "backup takes over (VIP, table with 3 reals)" 45 holds backup "101 102 103"
ts2=$(now_ms)
wait_for "client answered via backup" 10 answers
say "4. loadbalancer crashed: backup holds the group after $(( ts2 - ts )) ms, client answered after $(( $(now_ms) - ts )) ms"
sees backup loadbalancer dead || fail "backup does not see loadbalancer dead"
serve_check "4. client via backup"

# --- 5. loadbalancer comes back (a rebooted box: no VIP, no IPVS table, empty /run)
ns loadbalancer $IP addr del $VIP/24 dev eth0
ns loadbalancer ipvsadm -C
rm -rf /tmp/loadbalancer/run/* /tmp/loadbalancer/rsc/*
ns loadbalancer $IP link set eth0 up
ts=$(now_ms)
hb loadbalancer >/tmp/loadbalancer/start.out 2>&1 || { cat /tmp/loadbalancer/start.out; fail "restart loadbalancer"; }
wait_for "failback: loadbalancer holds the group again" 60 holds loadbalancer "101 102 103"
ts2=$(now_ms)
wait_for "failback: backup released (no VIP on eth0, empty table)" 15 released backup
wait_for "client answered after failback" 10 answers
say "5. loadbalancer back: group on loadbalancer after $(( ts2 - ts )) ms (from its start)"
sees backup loadbalancer active || fail "backup does not see loadbalancer active"
real_server backup || fail "backup released the group but its lvs stop did not run (no VIP on lo)"
serve_check "5. client via loadbalancer"

# --- 6. graceful stop of loadbalancer
ts=$(now_ms)
hb loadbalancer -k >/tmp/loadbalancer/stop.out 2>&1 || { cat /tmp/loadbalancer/stop.out; fail "heartbeatd -k"; }
say "6. heartbeatd -k returned after $(( $(now_ms) - ts )) ms"
wait_for "handover: backup holds the group" 45 holds backup "101 102 103"
ts2=$(now_ms)
no_vip loadbalancer || fail "loadbalancer kept the VIP after its stop"
table_empty loadbalancer || fail "loadbalancer kept its IPVS table after its stop"
real_server loadbalancer || fail "loadbalancer's lvs stop did not run (no VIP on lo)"
sees backup loadbalancer dead || fail "backup does not see the stopped loadbalancer dead"
[ -e /tmp/loadbalancer/run/heartbeat.pid ] && fail "heartbeatd -k left its pid file"
wait_for "client answered after the handover" 10 answers
say "6. graceful stop: backup holds the group $(( ts2 - ts )) ms after heartbeatd -k"
serve_check "6. client via backup"
hb backup -k >/dev/null 2>&1
echo "--- what the nodes logged about the moves"
for n in loadbalancer backup; do
    grep -E 'is dead|Acquiring|acquisition completed|Releasing|shutdown|Shutdown|failback|takeover' /tmp/$n/ha-log | sed "s/^/$n: /"
done
echo "--- what ldirectord logged about real servers and its own life"
grep -E 'real server|Starting|terminated|[Ee]rror|failed' /tmp/ldirectord.log
say "SEED CLUSTER OK"
"#;

fn need(p: &Path) -> &Path {
    assert!(p.is_file(), "{} missing", p.display());
    p
}

#[test]
fn seed_cluster_fails_over_and_back_with_real_ipvs() {
    lab::require_root("the IPVS guest");
    lab::ensure_packages(&["iproute2"]);
    let bins = lab::build_workspace_bins(
        Path::new(env!("CARGO_BIN_EXE_lab")),
        &["heartbeatd", "resource-agents", "ldirectord-rs"],
    );
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("payload.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut g = lab::ipvs_vm::Guest::new(&script)
        .file(need(Path::new("/usr/sbin/ip")), "/root/bin/ip")
        .mem_mb(512)
        .timeout(Duration::from_secs(420));
    for b in ["heartbeatd", "cl_status"] {
        g = g.file(need(&bins.join(b)), format!("/root/bin/{b}"));
    }
    for b in ["lvs", "IPaddr", "ipvsadm", "ldirectord"] {
        g = g.file(need(&bins.join(b)), format!("/root/agents/{b}"));
    }
    let t = Instant::now();
    let out = g
        .run()
        .unwrap_or_else(|e| panic!("IPVS guest harness: {e}"));
    println!("{}", out.output);
    eprintln!(
        "guest: boot {:?}, total {:?} (test {:?})",
        out.boot,
        out.total,
        t.elapsed()
    );
    out.assert_success();
    assert!(out.output.contains("SEED CLUSTER OK"), "{}", out.output);
}
