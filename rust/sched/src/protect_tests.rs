//! Tests of latency protection: the cap's law, and a group that keeps unprotected domains
//! out of its choice while the cap is reached.

extern crate std;

use super::group::Group;
use super::protect::{Charge, Protection, PROBE_AFTER_PERIODS, PROTECTION_PERIOD_US};
use super::queue::{FairQueue, Flow, FlowConfig};
use super::tree::NONE;
use super::window::FixedWindow;
use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

const TARGET_US: u64 = 20_000;

fn protected(units: u32) -> Charge {
    Charge {
        units,
        latency_target_us: TARGET_US,
    }
}

/// `n` unprotected units in flight, then one period in which protected requests finish
/// with `latencies`; the period ends with the last of them.
fn period(p: &mut Protection, start_us: u64, latencies: &[u64], window: u64) -> bool {
    let mut changed = false;
    for (i, &lat) in latencies.iter().enumerate() {
        p.dispatched(protected(1), 0);
        let now = if i + 1 == latencies.len() {
            start_us + PROTECTION_PERIOD_US
        } else {
            start_us + i as u64
        };
        changed |= p.finished(protected(1), lat, now, window);
    }
    changed
}

#[test]
fn a_late_period_halves_the_unprotected_work_and_comfortable_ones_add_one_unit() {
    let mut p = Protection::default();
    for _ in 0..12 {
        p.dispatched(Charge::unprotected(1), 0);
    }
    assert_eq!(p.cap(), None);
    // The first completion opens the period; 2 of 100 late (p99 above the target).
    let mut late = vec![5_000u64; 100];
    late[10] = 30_000;
    late[20] = 30_000;
    assert!(period(&mut p, 0, &late, 64));
    assert_eq!(p.cap(), Some(6), "half of the 12 units in flight");
    assert!(p.holds_unprotected(0));
    assert_eq!(p.cuts(), 1);
    // Exactly 1 % late is the p99 at the target: the cap holds (one is near it too).
    let mut one = vec![5_000u64; 100];
    one[3] = 25_000;
    let t = PROTECTION_PERIOD_US;
    assert!(!period(&mut p, t, &one, 64));
    assert_eq!(p.cap(), Some(6));
    // Late again: half of the cap, which is below the 12 in flight.
    assert!(period(&mut p, 2 * t, &late, 64));
    assert_eq!(p.cap(), Some(3));
    // Then 1, then the last step, 0 (only into the protected domains' gaps), and no lower.
    for (k, expected) in [(3, Some(1)), (4, Some(0)), (5, Some(0))] {
        assert_eq!(period(&mut p, k * t, &late, 64), k != 5);
        assert_eq!(p.cap(), expected);
    }
    assert_eq!(p.cuts(), 4);
    // Near the target (above half of it) but none late: holds.
    assert!(!period(&mut p, 6 * t, &[11_000, 5_000], 64));
    assert_eq!(p.cap(), Some(0));
    // Well within: one unit per PROBE_AFTER_PERIODS periods in a row, lifted at the window;
    // a period near the target in between starts the count again.
    let mut k = 7;
    let mut periods = |p: &mut Protection, n: u32, latency_us: u64| {
        let mut changed = false;
        for _ in 0..n {
            changed = period(p, k * t, &[latency_us, latency_us], 3);
            k += 1;
        }
        changed
    };
    assert!(!periods(&mut p, PROBE_AFTER_PERIODS - 1, 5_000));
    assert!(!periods(&mut p, 1, 11_000));
    assert!(!periods(&mut p, PROBE_AFTER_PERIODS - 1, 5_000));
    assert_eq!(p.cap(), Some(0));
    assert!(periods(&mut p, 1, 5_000), "the fourth in a row");
    assert_eq!(p.cap(), Some(1));
    for expected in [Some(2), None] {
        assert!(!periods(&mut p, PROBE_AFTER_PERIODS - 1, 5_000));
        assert!(periods(&mut p, 1, 5_000));
        assert_eq!(p.cap(), expected, "lifted at the window of 3");
    }
    assert_eq!(p.unprotected_in_flight(), 12);
    assert_eq!(p.protected_in_flight(), 0);
}

#[test]
fn an_idle_period_lifts_the_cap_and_one_with_protected_work_in_flight_does_not() {
    let mut p = Protection::default();
    p.dispatched(Charge::unprotected(4), 0);
    // (The first completion opens the first period.)
    assert!(period(&mut p, 0, &[50_000, 50_000], 64));
    assert_eq!(p.cap(), Some(2));
    // A protected request in flight the whole period, none finished: nothing learnt.
    p.dispatched(protected(1), 0);
    p.dispatched(Charge::unprotected(1), 0);
    p.finished(Charge::unprotected(1), 1_000, 2 * PROTECTION_PERIOD_US, 64);
    assert_eq!(p.cap(), Some(2));
    // It finishes (late): the cap halves; then a period with no protected request lifts it.
    p.finished(protected(1), 400_000, 2 * PROTECTION_PERIOD_US + 1, 64);
    p.dispatched(Charge::unprotected(1), 0);
    assert!(p.finished(
        Charge::unprotected(1),
        1_000,
        3 * PROTECTION_PERIOD_US + 1,
        64
    ));
    assert_eq!(p.cap(), Some(1));
    p.dispatched(Charge::unprotected(1), 0);
    assert!(p.finished(
        Charge::unprotected(1),
        1_000,
        4 * PROTECTION_PERIOD_US + 2,
        64
    ));
    assert_eq!(p.cap(), None);
    // Withdrawn work is no longer counted.
    p.withdrawn(Charge::unprotected(4));
    assert_eq!(p.unprotected_in_flight(), 0);
}

type Queue = FairQueue<Vec<Flow>, Vec<u32>>;

fn queue(n: usize) -> Queue {
    FairQueue::new(vec![Flow::default(); n], vec![NONE; 4 * n]).unwrap()
}

/// Domains with one vbd each at weight 100 and `targets` (0: unprotected).
fn group(targets: &[u64], window: u64) -> Group<Vec<Flow>, Vec<u32>, Vec<Queue>, FixedWindow> {
    let mut top = queue(targets.len());
    let mut levels = Vec::new();
    for (d, &t) in targets.iter().enumerate() {
        top.configure(
            d,
            FlowConfig {
                latency_target_us: t,
                ..FlowConfig::default()
            },
        );
        let mut level = queue(1);
        level.configure(0, FlowConfig::default());
        levels.push(level);
    }
    Group::new(top, levels, FixedWindow::new(window).unwrap()).unwrap()
}

#[test]
fn a_capped_group_chooses_only_protected_domains_until_the_unprotected_work_drops() {
    let mut g = group(&[TARGET_US, 0, 0], 16);
    for d in 0..3 {
        g.set_backlogged(d, 0, true, 0);
    }
    // Unprotected work in flight: 4 units of domain 1, then a late protected period.
    let mut charges = VecDeque::new();
    for _ in 0..4 {
        charges.push_back(g.dispatch(1, 0, 1, 4096, 0));
    }
    let c = g.dispatch(0, 0, 1, 4096, 0);
    assert_eq!(c, protected(1));
    g.complete(c, 40_000, 40_000, 1);
    let c = g.dispatch(0, 0, 1, 4096, 0);
    g.complete(c, 40_000, 40_000, 1 + PROTECTION_PERIOD_US);
    assert_eq!(g.protection().cap(), Some(2));
    assert!(g.protection().holds_unprotected(0));
    // The window has room, but only the protected domain may go, and it is the only pick.
    assert!(g.has_room());
    assert!(g.may_dispatch(0, 0) && !g.may_dispatch(1, 0) && !g.may_dispatch(2, 0));
    for _ in 0..10 {
        let p = g.pick(0).unwrap();
        assert_eq!(p.domain, 0);
        let c = g.dispatch(p.domain, p.vbd, 1, 4096, 0);
        g.complete(c, 1_000, 1_000, 2 + PROTECTION_PERIOD_US);
    }
    // Three unprotected units complete: below the cap (1 of 2), both unprotected domains
    // are back in the choice, in their own order, and the cap lets one more unit in.
    for _ in 0..3 {
        let c = charges.pop_front().unwrap();
        g.complete(c, 1_000, 1_000, 3 + PROTECTION_PERIOD_US);
    }
    assert!(!g.protection().holds_unprotected(0));
    g.set_backlogged(0, 0, false, 0);
    let p = g.pick(0).unwrap();
    assert_eq!(p.domain, 2, "domain 1 went four times, domain 2 not yet");
    charges.push_back(g.dispatch(p.domain, p.vbd, 1, 4096, 0));
    assert!(g.protection().holds_unprotected(0));
    assert_eq!(
        g.pick(0),
        None,
        "the protected domain is idle, the others held"
    );
    // Unprotected alone with the cap reached: a completion lets the next in.
    let c = charges.pop_front().unwrap();
    g.complete(c, 1_000, 1_000, 4 + PROTECTION_PERIOD_US);
    assert!(g.pick(0).is_some());
}

/// A device that serves one unit every `unit_us`, first come first served, and a protected
/// domain issuing one request every `gap_us` next to an unprotected one that always has
/// work: the protected requests' latencies over `periods` control periods, and the units
/// each domain got.
fn contended(protect: bool, gap_us: u64, periods: u64) -> (Vec<u64>, [u64; 2]) {
    let target = if protect { TARGET_US } else { 0 };
    let mut g = group(&[target, 0], 32);
    let unit_us = 2_500;
    let mut device: VecDeque<(usize, Charge, u64)> = VecDeque::new();
    let mut busy_until = 0u64;
    let mut next_protected = 0u64;
    let mut waiting_protected: VecDeque<u64> = VecDeque::new();
    let mut latencies = Vec::new();
    let mut served = [0u64; 2];
    g.set_backlogged(1, 0, true, 0);
    let end = periods * PROTECTION_PERIOD_US;
    let mut now = 0;
    while now < end {
        // Arrivals of the protected domain.
        while next_protected <= now {
            waiting_protected.push_back(next_protected);
            next_protected += gap_us;
        }
        g.set_backlogged(0, 0, !waiting_protected.is_empty(), now * 1000);
        // Fill the window by the scheduler's picks.
        while let Some(p) = g.pick(now * 1000) {
            if !g.may_dispatch(p.domain, now * 1000) {
                break;
            }
            let arrived = if p.domain == 0 {
                waiting_protected.pop_front().unwrap()
            } else {
                now
            };
            let c = g.dispatch(p.domain, p.vbd, 1, 4096, now * 1000);
            device.push_back((p.domain, c, arrived));
            if p.domain == 0 {
                g.set_backlogged(0, 0, !waiting_protected.is_empty(), now * 1000);
            }
        }
        // The device finishes its oldest request.
        let Some((d, c, arrived)) = device.pop_front() else {
            now = next_protected;
            continue;
        };
        busy_until = busy_until.max(now) + unit_us;
        now = busy_until;
        served[d] += 1;
        if d == 0 {
            latencies.push(now - arrived);
        }
        g.complete(c, unit_us, now - arrived, now);
    }
    (latencies, served)
}

fn p99(latencies: &[u64]) -> u64 {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    sorted[(sorted.len() * 99).div_ceil(100) - 1]
}

#[test]
fn protection_holds_a_light_domains_p99_at_its_target_and_keeps_the_device_busy() {
    // 100 protected requests per second on a 400-unit device next to a domain that keeps
    // the window full: without protection each waits behind ~32 units (80 ms).
    let (free, served_free) = contended(false, 10_000, 40);
    assert!(p99(&free) > 70_000, "unprotected p99 {}", p99(&free));
    let (held, served) = contended(true, 10_000, 40);
    // Settled: after the first 2 s (8 periods of halving from 32).
    let settled = &held[held.len() / 5..];
    assert!(
        p99(settled) <= TARGET_US,
        "protected p99 {} µs",
        p99(settled)
    );
    // The device stays busy: the unprotected domain takes what the protected one leaves.
    let total = served[0] + served[1];
    let total_free = served_free[0] + served_free[1];
    assert!(
        total * 100 >= total_free * 98,
        "{served:?} vs {served_free:?}"
    );
    assert!(
        served[0] * 100 >= total * 20,
        "protected got its 100/s: {served:?}"
    );
}

#[test]
fn at_a_cap_of_zero_unprotected_requests_fill_the_protected_gaps_and_never_starve() {
    let mut p = Protection::default();
    p.dispatched(Charge::unprotected(4), 0);
    for k in 0..3 {
        assert!(period(
            &mut p,
            k * PROTECTION_PERIOD_US,
            &[50_000, 50_000],
            64
        ));
    }
    assert_eq!(p.cap(), Some(0));
    let now = 3 * PROTECTION_PERIOD_US;
    p.finished(Charge::unprotected(4), 1_000, now, 64);
    // No protected request in flight: one unprotected request may go, not two.
    assert!(!p.holds_unprotected(now));
    p.dispatched(Charge::unprotected(2), now);
    assert!(p.holds_unprotected(now));
    p.finished(Charge::unprotected(2), 1_000, now + 10, 64);
    // A protected request in flight holds them back...
    p.dispatched(protected(1), now + 10);
    assert!(p.holds_unprotected(now + 20));
    // ...until none went for a whole period: then one goes all the same.
    assert!(p.holds_unprotected(now + PROTECTION_PERIOD_US - 1));
    assert!(!p.holds_unprotected(now + PROTECTION_PERIOD_US));
}

#[test]
fn an_unprotected_vbd_alone_is_still_held_while_its_domain_is_capped() {
    use super::dispatch::{Dispatcher, VbdWork, Verdict};
    let g = group(&[TARGET_US, 0], 16);
    let mut gate = Dispatcher::new(g, vec![VbdWork::default(); 2], vec![0, 1]).unwrap();
    // The protected domain's requests are late while the other has 4 units in flight: the
    // cap goes 4 -> 2 -> 1 -> 0.
    let mut theirs = VecDeque::new();
    for _ in 0..4 {
        match gate.admit(1, 0, false, true, 1, 4096, 0) {
            Verdict::Go(c) => theirs.push_back(c),
            v => panic!("{v:?}"),
        }
    }
    for k in 0..4u64 {
        let now = k * PROTECTION_PERIOD_US;
        // Its ring asks, waits for its turn (domain 1 is backlogged too), is woken and goes.
        let c = match gate.admit(0, 0, false, false, 1, 4096, now * 1000) {
            Verdict::Go(c) => c,
            _ => {
                assert_eq!(gate.next_to_wake(now * 1000), Some((0, 0)));
                let Verdict::Go(c) = gate.admit(0, 0, true, false, 1, 4096, now * 1000) else {
                    panic!("woken and held");
                };
                c
            }
        };
        gate.finish(Some((0, 0)), c, Some(50_000), 50_000, now * 1000 + 1);
    }
    // Within the period after the last cut (a whole period without protected work would
    // lift the cap).
    let now_ns = (3 * PROTECTION_PERIOD_US + 1_000) * 1000;
    assert_eq!(gate.group().protection().cap(), Some(0));
    // The protected domain is idle now; the other, alone with work, waits for its units in
    // flight all the same (alone, it would have gone).
    assert_eq!(gate.admit(1, 0, true, true, 1, 4096, now_ns), Verdict::Wait);
    assert_eq!(gate.next_to_wake(now_ns), None);
    for _ in 0..4 {
        gate.finish(
            Some((1, 0)),
            theirs.pop_front().unwrap(),
            Some(1_000),
            1_000,
            now_ns + 2,
        );
    }
    // Nothing in flight: one request may go, not a second.
    assert_eq!(gate.next_to_wake(now_ns + 3), Some((1, 0)));
    assert!(matches!(
        gate.admit(1, 0, true, true, 1, 4096, now_ns + 3),
        Verdict::Go(_)
    ));
    assert_eq!(
        gate.admit(1, 0, true, true, 1, 4096, now_ns + 4),
        Verdict::Wait
    );
}
