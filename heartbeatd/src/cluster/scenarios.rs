//! Scenario tests of the core on the simulated cluster: start, join, crash,
//! graceful handover, failback, standby, split brain and heal, loss and
//! retransmission, agent failures — in virtual time.

use std::time::Duration;

use super::sim::{Behaviour, Sim};
use super::{Command, Hold};
use crate::config::{AutoFailback, StopFailure};

const A: usize = 0;
const B: usize = 1;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// alpha is home of the VIP group; beta of a second group.
fn pair(af: AutoFailback) -> Sim {
    Sim::new(
        &["alpha", "beta"],
        &[
            ("alpha", &["IPaddr::10.0.0.1/24/hb0", "svc"]),
            ("beta", &["web"]),
        ],
        af,
    )
}

const VIP: &str = "IPaddr:10.0.0.1/24/hb0";

/// `node` has exited and runs none of [`pair`]'s resources; `when` says
/// at which moment of the scenario it was stopped.
fn assert_exited_holding_nothing(sim: &Sim, node: usize, when: &str) {
    assert!(
        sim.exited(node),
        "{when}: still running\n{}",
        sim.dump(node)
    );
    for r in [VIP, "svc", "web"] {
        assert!(
            !sim.running(node, r),
            "{r} left running, {when}\n{}",
            sim.dump(node)
        );
    }
}

fn settle(sim: &mut Sim) {
    sim.start(A);
    sim.start(B);
    sim.run(secs(15.0));
    assert_eq!(sim.owners(VIP), vec![A], "{}", sim.dump(A));
    assert_eq!(sim.owners("svc"), vec![A]);
    assert_eq!(sim.owners("web"), vec![B], "{}", sim.dump(B));
}

#[test]
fn both_start_and_each_runs_its_home_group() {
    let mut sim = pair(AutoFailback::On);
    settle(&mut sim);
    for i in [A, B] {
        let n = sim.node(i);
        assert!(
            n.nodes().iter().all(|v| v.status == "active"),
            "{:?}",
            n.nodes()
        );
        assert_eq!(n.rsc_status(), "local", "{}", sim.dump(i));
        assert!(n.nodes().iter().all(|v| v.links[0].status == "up"));
    }
    assert!(
        sim.logged(A, "Initial resource acquisition complete"),
        "{}",
        sim.dump(A)
    );
    assert!(
        sim.logged(B, "Initial resource acquisition complete"),
        "{}",
        sim.dump(B)
    );
    // Started left to right.
    let ip = sim.first(A, "start IPaddr", Duration::ZERO).unwrap();
    let svc = sim.first(A, "start svc", Duration::ZERO).unwrap();
    assert!(ip < svc);
}

#[test]
fn a_lone_node_takes_everything_after_initdead() {
    let mut sim = pair(AutoFailback::On);
    sim.start(A);
    let t0 = sim.now;
    sim.run(secs(1.9));
    assert!(sim.owners(VIP).is_empty(), "nothing before initdead");
    sim.run(secs(3.0));
    assert_eq!(sim.owners(VIP), vec![A]);
    assert_eq!(sim.owners("web"), vec![A], "{}", sim.dump(A));
    let first = sim.first(A, "start", t0 + secs(0.1)).unwrap();
    assert!(
        first - t0 >= secs(2.0) && first - t0 < secs(2.2),
        "{first:?}"
    );
    assert!(sim.logged(A, "node beta: is dead"));
    assert!(sim.logged(A, "No STONITH device configured."));
    sim.run(secs(12.0));
    assert_eq!(sim.node(A).rsc_status(), "all", "{}", sim.dump(A));
}

#[test]
fn crash_of_the_owner_is_taken_over_within_deadtime_plus_a_little() {
    let mut sim = pair(AutoFailback::On);
    settle(&mut sim);
    sim.power_off(A);
    let t0 = sim.now;
    sim.run(secs(3.0));
    assert_eq!(sim.owners(VIP), vec![B], "{}", sim.dump(B));
    assert_eq!(sim.owners("svc"), vec![B]);
    let took = sim.first(B, "start IPaddr", t0).unwrap() - t0;
    // deadtime 1 s after the last heartbeat (at most a keepalive before the
    // crash), plus one status call of the simulated agent.
    assert!(took <= secs(1.0 + 0.03), "took {took:?}\n{}", sim.dump(B));
    assert!(took >= secs(0.8), "took {took:?}");
    assert!(sim.logged(B, "node alpha: is dead"));
    assert!(sim.logged(B, "Link alpha:hb0 dead."));
    assert_eq!(sim.node(B).nodes()[A].status, "dead");
}

#[test]
fn graceful_stop_hands_over_at_once_and_exits() {
    let mut sim = pair(AutoFailback::On);
    settle(&mut sim);
    let t0 = sim.now;
    sim.command(A, Command::Shutdown);
    sim.run(secs(3.0));
    assert!(sim.exited(A), "{}", sim.dump(A));
    assert_eq!(sim.owners(VIP), vec![B]);
    assert_eq!(sim.owners("svc"), vec![B]);
    // Stopped right to left on alpha before beta started it.
    let stop_svc = sim.first(A, "stop svc", t0).unwrap();
    let stop_ip = sim.first(A, "stop IPaddr", t0).unwrap();
    let start_b = sim.first(B, "start IPaddr", t0).unwrap();
    assert!(stop_svc < stop_ip && stop_ip < start_b);
    // Handover = alpha's stops + one status call + a millisecond of wire.
    assert!(start_b - t0 < secs(0.1), "{:?}", start_b - t0);
    assert!(sim.logged(B, "Received shutdown notice from 'alpha'."));
    assert!(sim.logged(A, "All HA resources relinquished."));
    // A handover in progress is not an ownerless cluster.
    for i in [A, B] {
        assert!(!sim.logged(i, "No one owns"), "{}", sim.dump(i));
    }
}

#[test]
fn returning_owner_gets_its_group_back_with_auto_failback_on() {
    let mut sim = pair(AutoFailback::On);
    settle(&mut sim);
    sim.power_off(A);
    sim.run(secs(3.0));
    assert_eq!(sim.owners(VIP), vec![B]);
    let t0 = sim.now;
    sim.start(A);
    sim.run(secs(20.0));
    assert_eq!(sim.owners(VIP), vec![A], "{}\n{}", sim.dump(A), sim.dump(B));
    assert_eq!(sim.owners("web"), vec![B]);
    // Never both at once.
    let stop_b = sim.first(B, "stop IPaddr", t0).unwrap();
    let start_a = sim.first(A, "start IPaddr", t0).unwrap();
    assert!(stop_b < start_a);
    assert!(
        sim.logged(A, "Standby resource acquisition done [foreign]."),
        "{}",
        sim.dump(A)
    );
    assert!(
        sim.logged(B, "alpha wants to go standby [foreign]")
            || sim.logged(B, "beta wants to go standby [foreign]")
    );
    for i in [A, B] {
        assert_eq!(sim.node(i).rsc_status(), "local", "{}", sim.dump(i));
    }
}

#[test]
fn returning_owner_stays_backup_with_auto_failback_off() {
    let mut sim = pair(AutoFailback::Off);
    settle(&mut sim);
    sim.power_off(A);
    sim.run(secs(3.0));
    sim.start(A);
    sim.run(secs(20.0));
    assert_eq!(sim.owners(VIP), vec![B], "{}", sim.dump(A));
    assert_eq!(sim.owners("web"), vec![B]);
    assert_eq!(sim.node(B).rsc_status(), "all", "{}", sim.dump(B));
    assert_eq!(sim.node(A).rsc_status(), "none", "{}", sim.dump(A));
}

#[test]
fn legacy_mode_fails_back_with_ip_request() {
    let mut sim = pair(AutoFailback::Legacy);
    sim.start(A);
    sim.start(B);
    sim.run(secs(5.0));
    assert_eq!(sim.owners(VIP), vec![A], "{}", sim.dump(A));
    assert_eq!(sim.owners("web"), vec![B], "{}", sim.dump(B));
    sim.power_off(A);
    sim.run(secs(3.0));
    assert_eq!(sim.owners(VIP), vec![B]);
    sim.start(A);
    sim.run(secs(5.0));
    assert_eq!(sim.owners(VIP), vec![A], "{}\n{}", sim.dump(A), sim.dump(B));
    assert!(sim.logged(A, "received ip-request-resp IPaddr::10.0.0.1/24/hb0 OK yes"));
}

#[test]
fn standby_and_takeover_move_groups_through_the_handshake() {
    let mut sim = pair(AutoFailback::On);
    settle(&mut sim);
    sim.command(A, Command::Standby(Hold::All));
    sim.run(secs(5.0));
    assert_eq!(sim.owners(VIP), vec![B], "{}\n{}", sim.dump(A), sim.dump(B));
    assert_eq!(sim.owners("web"), vec![B]);
    assert_eq!(sim.node(A).rsc_status(), "none");
    assert_eq!(sim.node(B).rsc_status(), "all", "{}", sim.dump(B));
    // Now alpha takes its own group back.
    sim.command(A, Command::Takeover(Hold::Local));
    sim.run(secs(5.0));
    assert_eq!(sim.owners(VIP), vec![A], "{}\n{}", sim.dump(A), sim.dump(B));
    assert_eq!(sim.owners("web"), vec![B]);
}

#[test]
fn split_brain_both_run_then_heal_to_one_owner_without_restart() {
    let mut sim = pair(AutoFailback::On);
    settle(&mut sim);
    sim.partition(A, B, true);
    sim.run(secs(3.0));
    assert_eq!(sim.owners(VIP), vec![A, B], "both own during the split");
    assert_eq!(sim.owners("web"), vec![A, B]);
    let t0 = sim.now;
    sim.partition(A, B, false);
    sim.run(secs(3.0));
    assert_eq!(sim.owners(VIP), vec![A], "{}\n{}", sim.dump(A), sim.dump(B));
    assert_eq!(sim.owners("web"), vec![B]);
    assert!(sim.logged(A, "Cluster node beta returning after partition."));
    // Resolved within a second, and no restart on either side.
    let stop = sim.first(B, "stop IPaddr", t0).unwrap();
    assert!(stop - t0 < secs(1.0), "{:?}", stop - t0);
    assert!(!sim.events.iter().any(|e| e.at > t0 && e.what == "start"));
    assert!(sim.is_up(A) && sim.is_up(B));
    sim.run(secs(15.0));
    for i in [A, B] {
        assert_eq!(sim.node(i).rsc_status(), "local", "{}", sim.dump(i));
    }
}

#[test]
fn lossy_network_is_repaired_by_retransmission() {
    let mut sim = pair(AutoFailback::On);
    sim.set_loss(10);
    sim.start(A);
    sim.start(B);
    sim.run(secs(30.0));
    assert_eq!(sim.owners(VIP), vec![A], "{}\n{}", sim.dump(A), sim.dump(B));
    assert_eq!(
        sim.owners("web"),
        vec![B],
        "{}\n{}",
        sim.dump(A),
        sim.dump(B)
    );
    assert!(sim.logged(B, "lost packet(s) for [alpha]"));
    assert!(sim.logged(B, "No pkts missing from alpha!"));
    // The standby handshake messages got through despite the losses.
    assert!(!sim.logged(A, "No reply to standby request"));
}

#[test]
fn a_failed_start_releases_the_group_and_the_peer_takes_it() {
    let mut sim = pair(AutoFailback::On);
    sim.set_behaviour(A, "svc:", Behaviour::FailStart);
    sim.start(A);
    sim.start(B);
    sim.run(secs(60.0));
    assert!(
        sim.logged(A, "Giving up resources due to failure of svc"),
        "{}",
        sim.dump(A)
    );
    assert!(!sim.running(A, VIP), "alpha released the whole group");
    assert_eq!(
        sim.owners("svc"),
        vec![B],
        "{}\n{}",
        sim.dump(A),
        sim.dump(B)
    );
    assert_eq!(sim.owners(VIP), vec![B]);
}

#[test]
fn a_stop_that_keeps_failing_holds_the_group_and_never_hands_it_over() {
    let mut sim = pair(AutoFailback::On);
    settle(&mut sim);
    sim.set_behaviour(A, "svc:", Behaviour::FailStop);
    sim.command(A, Command::Shutdown);
    sim.run(secs(10.0));
    assert!(!sim.exited(A));
    assert!(
        sim.logged(A, "Resource STOP failure: svc"),
        "{}",
        sim.dump(A)
    );
    assert!(sim.logged(A, "Retrying failed stop operation [svc]"));
    assert!(sim.logged(A, "Holding resource group IPaddr::10.0.0.1/24/hb0"));
    // beta did not take the group: alpha never said it was released.
    assert!(!sim.running(B, VIP), "{}", sim.dump(B));
    assert!(!sim.logged(B, "Received shutdown notice"));
}

#[test]
fn stop_failure_exec_policy_runs_the_command() {
    let mut sim = pair(AutoFailback::On);
    sim.configure(A, |s| {
        s.stop_failure = StopFailure::Exec {
            command: vec!["/usr/local/sbin/fence-me".into()],
        }
    });
    settle(&mut sim);
    sim.set_behaviour(A, "svc:", Behaviour::FailStop);
    sim.command(A, Command::Shutdown);
    sim.run(secs(10.0));
    assert!(sim
        .first(A, "stop_failure command", Duration::ZERO)
        .is_some());
    // The command "failed" (exit 1 in the simulation): the group is held.
    assert!(sim.logged(A, "Holding resource group"));
}

#[test]
fn status_is_judged_before_each_start() {
    let mut sim = pair(AutoFailback::On);
    settle(&mut sim);
    // The VIP was left running on beta by hand: beta's takeover skips its
    // start but starts the rest.
    sim.power_off(A);
    sim.run(secs(3.0));
    let starts = sim
        .events
        .iter()
        .filter(|e| e.node == B && e.what.starts_with("start IPaddr"))
        .count();
    assert_eq!(starts, 1);
    sim.run(secs(1.0));
    assert_eq!(sim.owners("svc"), vec![B]);
}

#[test]
fn an_hour_of_steady_state_stays_quiet() {
    let mut sim = pair(AutoFailback::On);
    settle(&mut sim);
    let before = sim.events.len();
    sim.run(Duration::from_secs(3600));
    assert_eq!(sim.events.len(), before, "nothing happens in a steady hour");
    for i in [A, B] {
        assert!(
            !sim.logs(i)
                .any(|(t, l, _)| *t > secs(30.0) && *l <= super::Level::Warn),
            "{}",
            sim.dump(i)
        );
    }
}

#[test]
fn heavy_loss_with_false_deaths_still_converges_to_one_owner_per_group() {
    // 25 % loss: heartbeats go missing long enough for false deaths and
    // one-sided "returning after partition", and retransmissions arrive out
    // of order. The cluster must still end with exactly one owner each.
    for seed in 0..8 {
        let mut sim = pair(AutoFailback::On);
        sim.reseed(seed);
        sim.set_loss(25);
        sim.start(A);
        sim.start(B);
        sim.run(secs(60.0));
        sim.set_loss(0);
        sim.run(secs(30.0));
        assert_eq!(
            sim.owners(VIP),
            vec![A],
            "seed {seed}\n{}\n{}",
            sim.dump(A),
            sim.dump(B)
        );
        assert_eq!(sim.owners("svc"), vec![A], "seed {seed}");
        assert_eq!(
            sim.owners("web"),
            vec![B],
            "seed {seed}\n{}\n{}",
            sim.dump(A),
            sim.dump(B)
        );
    }
}

/// alpha crashed, beta took everything, alpha is back since `step` × 100 ms:
/// the failback handshake is under way (it takes about 6 s).
fn failback_under_way(step: u32) -> Sim {
    let mut sim = pair(AutoFailback::On);
    settle(&mut sim);
    sim.power_off(A);
    sim.run(secs(3.0));
    sim.start(A);
    sim.run(secs(0.1 * f64::from(step)));
    sim
}

/// `heartbeatd -k` at any moment of the failback handshake, then the peer
/// dies: nothing is left to wait for, so the node gives up what it holds
/// and exits at once (not after the 30 s cap on a delayed shutdown).
#[test]
fn stop_during_failback_then_peer_death_still_exits_promptly() {
    for step in 0..60u32 {
        let mut sim = failback_under_way(step);
        sim.command(A, Command::Shutdown);
        sim.run(secs(0.2));
        sim.power_off(B);
        sim.run(secs(5.0));
        let when = format!("shutdown {:.1} s after the restart", 0.1 * f64::from(step));
        assert_exited_holding_nothing(&sim, A, &when);
    }
}

/// The returning owner dies at any moment of the failback handshake: the
/// other node takes everything back, and a later stop still hands over and
/// exits at once.
#[test]
fn owner_death_during_failback_then_stop_exits_promptly() {
    for step in 0..60u32 {
        let mut sim = failback_under_way(step);
        sim.power_off(A);
        sim.run(secs(3.0));
        let at = 0.1 * f64::from(step);
        for r in [VIP, "svc", "web"] {
            assert_eq!(
                sim.owners(r),
                vec![B],
                "{r}, death {at:.1} s after the restart\n{}",
                sim.dump(B)
            );
        }
        sim.command(B, Command::Shutdown);
        sim.run(secs(5.0));
        assert!(
            sim.exited(B),
            "death {at:.1} s after the restart: beta still running\n{}",
            sim.dump(B)
        );
    }
}

/// The node giving a group back is stopped at any moment of the failback
/// handshake: it finishes the handshake, hands over the rest and exits; the
/// returning owner ends up with everything.
#[test]
fn stop_of_the_giver_during_failback_hands_everything_over() {
    for step in 0..60u32 {
        let mut sim = failback_under_way(step);
        sim.command(B, Command::Shutdown);
        sim.run(secs(8.0));
        let at = 0.1 * f64::from(step);
        assert!(
            sim.exited(B),
            "stop {at:.1} s after the restart: beta still running\n{}",
            sim.dump(B)
        );
        for r in [VIP, "svc", "web"] {
            assert_eq!(
                sim.owners(r),
                vec![A],
                "{r}, stop {at:.1} s after the restart\n{}\n{}",
                sim.dump(A),
                sim.dump(B)
            );
        }
    }
}

/// The giver is stopped during the failback handshake and the returning
/// owner dies right after: the giver does not wait for a dead peer.
#[test]
fn stop_of_the_giver_then_death_of_the_owner_exits_promptly() {
    for step in 0..60u32 {
        for gap in [0.05, 0.2, 0.5] {
            let mut sim = failback_under_way(step);
            sim.command(B, Command::Shutdown);
            sim.run(secs(gap));
            sim.power_off(A);
            sim.run(secs(5.0));
            let at = 0.1 * f64::from(step);
            let when = format!("beta stopped {at:.1} s after the restart, death {gap} s later");
            assert_exited_holding_nothing(&sim, B, &when);
        }
    }
}

/// A lone node (its peer never seen, declared dead at initdead) runs
/// everything; its stop releases everything and exits at once.
#[test]
fn a_lone_node_stops_at_once() {
    let mut sim = pair(AutoFailback::On);
    sim.start(A);
    sim.run(secs(20.0));
    assert_eq!(sim.node(A).rsc_status(), "all", "{}", sim.dump(A));
    sim.command(A, Command::Shutdown);
    sim.run(secs(3.0));
    assert_exited_holding_nothing(&sim, A, "lone node stopped");
}

/// Stopped before initdead has passed, with the peer never heard from: no
/// one can be in a transition we would wait for, so it stops at once.
#[test]
fn a_node_whose_peer_was_never_heard_stops_at_once() {
    for before in [0.3, 1.0, 5.0, 20.0] {
        let mut sim = pair(AutoFailback::On);
        sim.configure(A, |s| s.initdead = secs(60.0));
        sim.start(A);
        sim.run(secs(before));
        sim.command(A, Command::Shutdown);
        sim.run(secs(3.0));
        assert_exited_holding_nothing(&sim, A, &format!("stopped {before} s after start"));
    }
}

/// The reference cluster's shape: one group, homed on the loadbalancer,
/// whose peer is never heard. After initdead it runs the group; its stop
/// releases it and exits at once.
#[test]
fn the_seed_primary_alone_stops_at_once() {
    for af in [AutoFailback::On, AutoFailback::Off, AutoFailback::Legacy] {
        let mut sim = Sim::new(
            &["alpha", "beta"],
            &[("alpha", &["IPaddr::10.0.0.1/24/hb0", "svc"])],
            af,
        );
        sim.start(A);
        sim.run(secs(10.0));
        assert_eq!(sim.owners(VIP), vec![A], "{af:?}\n{}", sim.dump(A));
        sim.command(A, Command::Shutdown);
        sim.run(secs(3.0));
        assert!(sim.exited(A), "{af:?}\n{}", sim.dump(A));
        assert!(sim.owners(VIP).is_empty());
    }
}
