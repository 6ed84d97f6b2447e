//! Property tests of the guarantees `Documentation/design/scheduler.md` states.

extern crate std;

use super::protect::Charge;
use super::queue::{FairQueue, Flow, FlowConfig, Phase};
use super::tag::SHARE_SCALE;
use super::tree::NONE;
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

type Queue = FairQueue<Vec<Flow>, Vec<u32>>;

fn queue(n: usize) -> Queue {
    FairQueue::new(vec![Flow::default(); n], vec![NONE; 4 * n]).unwrap()
}

fn weighted(weight: u32) -> FlowConfig {
    FlowConfig {
        weight,
        ..FlowConfig::default()
    }
}

/// `|a/wa - b/wb|` against `bound_a/wa + bound_b/wb`, cross-multiplied and with one
/// virtual-time unit of rounding per flow (the exact division carries remainders).
fn within_share_bound(a: u64, wa: u32, ca: u64, b: u64, wb: u32, cb: u64) -> bool {
    let (a, wa, ca, b, wb, cb) = (
        i128::from(a),
        i128::from(wa),
        i128::from(ca),
        i128::from(b),
        i128::from(wb),
        i128::from(cb),
    );
    let s = i128::from(SHARE_SCALE);
    ((a * wb - b * wa) * s).abs() <= (ca * s + wa) * wb + (cb * s + wb) * wa
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any two flows backlogged over an interval receive share-phase service in the ratio of
    /// their weights, within one maximum request of each (the SFQ bound).
    #[test]
    fn backlogged_flows_share_by_weight(
        weights in proptest::collection::vec(1u32..=10_000, 2..40),
        costs in proptest::collection::vec(1u32..=64, 1..64),
        start_at in 0u64..u64::MAX,
        steps in 200usize..3000,
        from in 0usize..200,
    ) {
        let n = weights.len();
        let mut q = queue(n);
        q.force_virtual_time(start_at);
        for (i, &w) in weights.iter().enumerate() {
            prop_assert!(q.configure(i, weighted(w)));
            q.set_backlogged(i, true, 0);
        }
        let cost_of = |slot: usize, k: usize| costs[(slot * 7 + k) % costs.len()];
        let cmax = u64::from(*costs.iter().max().unwrap());
        let mut snapshot = vec![0u64; n];
        for k in 0..steps {
            if k == from.min(steps - 1) {
                snapshot = (0..n).map(|i| q.served(i).1).collect();
            }
            let pick = q.pick(0).unwrap();
            prop_assert_eq!(pick.phase, Phase::Share);
            q.dispatch(pick.slot, cost_of(pick.slot, k), 4096, 0);
        }
        let got: Vec<u64> = (0..n).map(|i| q.served(i).1 - snapshot[i]).collect();
        for i in 0..n {
            for j in i + 1..n {
                prop_assert!(
                    within_share_bound(got[i], weights[i], cmax, got[j], weights[j], cmax),
                    "flows {} (w {}) and {} (w {}) got {} and {}", i, weights[i], j, weights[j], got[i], got[j]
                );
            }
        }
    }

    /// A flow that was idle gets no credit for it: after it returns, it and a flow that was
    /// backlogged all along share by weight within the same bound, from that moment on.
    #[test]
    fn idleness_earns_no_credit(
        wa in 1u32..=10_000, wb in 1u32..=10_000,
        idle_steps in 0usize..2000, steps in 100usize..2000, cost in 1u32..=64,
    ) {
        let mut q = queue(2);
        q.configure(0, weighted(wa));
        q.configure(1, weighted(wb));
        q.set_backlogged(0, true, 0);
        // Flow 1 has a short burst, then sleeps while flow 0 is served alone.
        q.set_backlogged(1, true, 0);
        q.dispatch(1, cost, 4096, 0);
        q.set_backlogged(1, false, 0);
        for _ in 0..idle_steps {
            let p = q.pick(0).unwrap();
            prop_assert_eq!(p.slot, 0);
            q.dispatch(0, cost, 4096, 0);
        }
        q.set_backlogged(1, true, 0);
        let before = [q.served(0).1, q.served(1).1];
        for _ in 0..steps {
            let p = q.pick(0).unwrap();
            q.dispatch(p.slot, cost, 4096, 0);
        }
        let a = q.served(0).1 - before[0];
        let b = q.served(1).1 - before[1];
        let c = u64::from(cost);
        prop_assert!(within_share_bound(a, wa, c, b, wb, c), "a {} b {}", a, b);
    }

    /// Reservations are met whenever their sum fits the device: on a device serving `C`
    /// requests per second one at a time, a backlogged flow reserving `r` gets at least
    /// `r * T` requests in `T`, less one per reserving flow, whatever the weights.
    #[test]
    fn reservations_are_met_when_they_fit(
        capacity in 100u64..2000,
        flows in proptest::collection::vec((1u32..=10_000, 0u64..100), 1..12),
        seconds in 2u64..6,
    ) {
        let total: u64 = flows.iter().map(|f| f.1).sum();
        prop_assume!(total * 100 <= capacity * 95);
        let n = flows.len();
        let mut q = queue(n);
        for (i, &(w, r)) in flows.iter().enumerate() {
            q.configure(i, FlowConfig { weight: w, reservation_iops: r, reservation_bps: 0, latency_target_us: 0 });
            q.set_backlogged(i, true, 0);
        }
        let per_request_ns = 1_000_000_000 / capacity;
        let mut now = 0;
        let mut served = vec![0u64; n];
        while now < seconds * 1_000_000_000 {
            let p = q.pick(now).unwrap();
            q.dispatch(p.slot, 1, 4096, now);
            served[p.slot] += 1;
            now += per_request_ns;
        }
        let reserving = flows.iter().filter(|f| f.1 > 0).count() as u64;
        for (i, &(_, r)) in flows.iter().enumerate() {
            prop_assert!(served[i] + reserving >= r * seconds,
                "flow {} reserving {}/s got {} in {} s", i, r, served[i], seconds);
        }
    }

    /// A flow that is not backlogged (its ring is empty, or a limit holds it) is never
    /// chosen, and some backlogged flow always is.
    #[test]
    fn only_backlogged_flows_are_chosen(
        ops in proptest::collection::vec((0usize..50, any::<bool>(), 1u32..=64), 1..400),
    ) {
        let n = 50;
        let mut q = queue(n);
        for i in 0..n {
            q.configure(i, FlowConfig { weight: 1 + (i as u32 * 37) % 10_000, reservation_iops: (i as u64 % 3) * 10, reservation_bps: 0, latency_target_us: 0 });
        }
        let mut now = 0;
        for (slot, on, cost) in ops {
            q.set_backlogged(slot, on, now);
            match q.pick(now) {
                Some(p) => {
                    prop_assert!(q.is_backlogged(p.slot));
                    q.dispatch(p.slot, cost, 4096, now);
                }
                None => prop_assert!((0..n).all(|i| !q.is_backlogged(i))),
            }
            now += 1_000_000;
        }
    }
}

#[test]
fn a_thousand_flows_at_extreme_weights_share_exactly() {
    let n = 1000;
    let mut q = queue(n);
    for i in 0..n {
        let w = if i % 2 == 0 { 1 } else { 10_000 };
        assert!(q.configure(i, weighted(w)));
        q.set_backlogged(i, true, 0);
    }
    // 500 flows at 1 and 500 at 10000: over 5,001,000 dispatches of one unit each, every
    // heavy flow gets 10000 per light flow's 1.
    for _ in 0..5_001_000 {
        let p = q.pick(0).unwrap();
        q.dispatch(p.slot, 1, 4096, 0);
    }
    for i in 0..n {
        let got = q.served(i).1;
        let expect = if i % 2 == 0 { 1 } else { 10_000 };
        assert!(
            got.abs_diff(expect) <= 1,
            "flow {i}: {got} (expected {expect} ±1)"
        );
    }
}

#[test]
fn bad_configurations_change_nothing() {
    let mut q = queue(2);
    assert!(q.configure(0, weighted(300)));
    assert!(!q.configure(0, weighted(0)));
    assert!(!q.configure(0, weighted(10_001)));
    assert!(!q.configure(5, weighted(1)));
    assert_eq!(q.config(0).unwrap().weight, 300);
    assert_eq!(q.config(1), None);
}

/// Two backlogged flows on a device of 400 requests/s served one at a time for 10 s; flow 0
/// reserves `r0`. Returns each flow's requests and flow 0's (reserved, shared) split.
fn reservation_run(w0: u32, r0: u64, w1: u32) -> ([u64; 2], (u64, u64)) {
    let mut q = queue(2);
    q.configure(
        0,
        FlowConfig {
            weight: w0,
            reservation_iops: r0,
            reservation_bps: 0,
            latency_target_us: 0,
        },
    );
    q.configure(1, weighted(w1));
    q.set_backlogged(0, true, 0);
    q.set_backlogged(1, true, 0);
    let mut got = [0u64; 2];
    let mut now = 0;
    for _ in 0..4000 {
        let p = q.pick(now).unwrap();
        q.dispatch(p.slot, 1, 4096, now);
        got[p.slot] += 1;
        now += 2_500_000;
    }
    (got, q.served(0))
}

#[test]
fn a_reservation_is_a_floor_under_the_weighted_share() {
    // Weight 1 against 100 would give flow 0 about 40 of 4000; its reservation lifts it to
    // 150/s, mostly served in the reservation phase.
    let (got, (reserved, shared)) = reservation_run(1, 150, 100);
    assert!((1499..=1501).contains(&got[0]), "{got:?}");
    assert_eq!(reserved + shared, got[0]);
    assert!(reserved > 1400, "reserved {reserved} shared {shared}");
    // Weight 300 against 100 gives it 3000 of 4000, above the floor: the reservation
    // phase is then hardly needed and the weights decide.
    let (got, (reserved, _)) = reservation_run(300, 150, 100);
    assert!((2995..=3005).contains(&got[0]), "{got:?}");
    assert!(reserved <= 2, "reserved {reserved}");
}

/// Domain A (weight 100) with two vbds at vbd weights 1:3, domain B (weight 100) with one:
/// A's half splits 1:3; when A's heavy vbd idles, its part goes to A's other vbd, not to B.
#[test]
fn a_group_splits_a_domain_share_among_its_vbds() {
    use super::{FixedWindow, Group};
    let mut top = queue(2);
    top.configure(0, weighted(100));
    top.configure(1, weighted(100));
    let mut a = queue(2);
    a.configure(0, weighted(1));
    a.configure(1, weighted(3));
    let mut b = queue(1);
    b.configure(0, weighted(100));
    let mut group = Group::new(top, vec![a, b], FixedWindow::new(1).unwrap()).unwrap();
    for (domain, vbd) in [(0, 0), (0, 1), (1, 0)] {
        group.set_backlogged(domain, vbd, true, 0);
    }
    let mut served = [[0u64; 2]; 2];
    let run = |group: &mut Group<_, _, _, _>, served: &mut [[u64; 2]; 2], n: usize| {
        for _ in 0..n {
            assert!(group.has_room());
            let p = group.pick(0).unwrap();
            group.dispatch(p.domain, p.vbd, 1, 4096, 0);
            assert!(!group.has_room(), "window of one");
            group.complete(Charge::unprotected(1), 100, 100, 0);
            served[p.domain][p.vbd] += 1;
        }
    };
    run(&mut group, &mut served, 8000);
    assert_eq!(served, [[1000, 3000], [4000, 0]]);
    group.set_backlogged(0, 1, false, 0);
    served = [[0; 2]; 2];
    run(&mut group, &mut served, 8000);
    assert_eq!(served, [[4000, 0], [4000, 0]]);
    assert_eq!(group.in_flight(), 0);
}

#[test]
fn a_withdrawn_request_frees_its_window_space_and_carried_work_counts() {
    use super::{FixedWindow, Group, Window};
    let mut top = queue(1);
    top.configure(0, weighted(100));
    let mut vbds = queue(1);
    vbds.configure(0, weighted(100));
    let mut group = Group::new(top, vec![vbds], FixedWindow::new(2).unwrap()).unwrap();
    group.dispatch(0, 0, 1, 4096, 0);
    group.dispatch(0, 0, 1, 4096, 0);
    assert!(!group.has_room());
    group.withdraw(Charge::unprotected(1), 0);
    assert!(group.has_room());
    assert_eq!(group.in_flight(), 1);
    // A rebuilt group takes over what its predecessor had in flight.
    let mut top = queue(1);
    top.configure(0, weighted(100));
    let mut next = Group::new(top, vec![queue(1)], FixedWindow::new(2).unwrap()).unwrap();
    next.carry_in_flight(group.in_flight());
    assert_eq!(next.in_flight(), 1);
    next.complete(Charge::unprotected(1), 10, 10, 0);
    assert_eq!(next.in_flight(), 0);
    assert_eq!(next.window().limit(), 2);
    assert_eq!(next.domains().config(0).map(|c| c.weight), Some(100));
}
