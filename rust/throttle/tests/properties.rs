//! Property tests of the budget's contract over random request streams and limit changes.
//!
//! * (a) window bound: over every window `[s, e)` of whole slices in which a meter was
//!   limited throughout, the credits admitted on it are at most
//!   `cap(s) + grant(s+1) + … + grant(e-1) + max(0, c_last - 1)`, where `cap(s)` is the
//!   bank in force in slice `s` (`(1 + burst) × grant(s)`) and `c_last` the credits of the
//!   last request charged to the meter in the window. With constant limits that is
//!   `(n + burst) × grant + c_last - 1`: more than `(n + burst + 1) × grant` only through
//!   a last request larger than one slice's grant, and by less than its size.
//! * (b) long-run rate: a backlogged domain, idle for its first `i` slices, has been
//!   charged `C_k` credits by the end of slice `k >= i`, with
//!   `S_k <= C_k < S_k + c_last` and `S_k = min(i + 1, burst + 1) × grant + (k - i) × grant`.
//! * (c) limit changes apply at the next boundary: backlogged under changing limits,
//!   `S_k <= C_k < S_k + c_last` with `S_k` the sum of the grants of the limits set before
//!   each slice began.
//! * (d) lifting all limits kicks held rings at once and they drain at that instant.
//! * (e) `op_size`: the operations counted equal `Σ max(1, ceil(bytes / op_size))`.
//! * (f) nothing is lost or reordered: each ring's requests are admitted in arrival order,
//!   all of them, with a timer armed whenever a ring is held and no ring polled.

mod common;

use common::{model_credits, model_ops, slice_limits, Admitted, Domain, SliceLimit};
use proptest::prelude::*;
use throttle::{Cost, Direction, HeldRings, Limits, Meter, SliceConfig, CREDITS_PER_UNIT};

/// Slices beyond this are not checked (a few rare cases run for very long).
const MAX_CHECKED_SLICES: usize = 50_000;

/// Limits expressed per slice, turned into per-second limits once the timeslice is known.
#[derive(Clone, Copy, Debug)]
struct PerSlice {
    /// Hundredths of an operation per slice for the three operation meters, bytes per
    /// slice for the three byte meters; `None` = unlimited.
    amounts: [Option<u64>; 6],
}

impl PerSlice {
    fn limits(&self, timeslice_us: u64) -> Limits {
        let mut limits = Limits::UNLIMITED;
        for (meter, amount) in Meter::ALL.into_iter().zip(self.amounts) {
            let Some(amount) = amount else { continue };
            let per_second = if meter.counts_bytes() {
                amount * 1_000_000 / timeslice_us
            } else {
                amount * 10_000 / timeslice_us
            };
            limits.set(meter, per_second.max(1));
        }
        limits
    }
}

fn op_amount() -> std::ops::Range<u64> {
    5..500
}

fn byte_amount() -> std::ops::Range<u64> {
    256..65_536
}

fn per_slice() -> impl Strategy<Value = PerSlice> {
    let ops = proptest::option::weighted(0.6, op_amount());
    let bytes = proptest::option::weighted(0.6, byte_amount());
    (
        ops.clone(),
        bytes.clone(),
        ops.clone(),
        ops,
        bytes.clone(),
        bytes,
    )
        .prop_map(|(a, b, c, d, e, f)| PerSlice {
            amounts: [a, b, c, d, e, f],
        })
}

fn config() -> impl Strategy<Value = SliceConfig> {
    (
        prop_oneof![Just(100u64), Just(1_000), Just(4_999), Just(10_000)],
        prop_oneof![Just(0u64), 0u64..5],
        prop_oneof![Just(0u64), Just(512), Just(4096), Just(65_536)],
    )
        .prop_map(|(timeslice_us, burst, op_size)| SliceConfig {
            timeslice_us,
            burst,
            op_size,
        })
}

fn cost() -> impl Strategy<Value = Cost> {
    let bytes = prop_oneof![
        1 => Just(0u64),
        8 => (1u64..=128).prop_map(|sectors| sectors * 512),
        1 => (512u64..=2048).prop_map(|sectors| sectors * 512),
    ];
    (any::<bool>(), bytes).prop_map(|(read, bytes)| Cost {
        direction: if read {
            Direction::Read
        } else {
            Direction::Write
        },
        bytes,
    })
}

#[derive(Clone, Debug)]
enum Action {
    Arrive { ring: usize, cost: Cost },
    SetLimits(PerSlice),
    LiftAll,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        12 => (0usize..3, cost()).prop_map(|(ring, cost)| Action::Arrive { ring, cost }),
        2 => per_slice().prop_map(Action::SetLimits),
        1 => Just(Action::LiftAll),
    ]
}

/// Per-slice credits admitted on `meter` and the credits of the last such request in
/// each slice, for the first `slices` slices.
fn per_slice_admissions(
    meter: Meter,
    log: &[Admitted],
    config: SliceConfig,
    slices: usize,
) -> (Vec<u64>, Vec<u64>) {
    let mut admitted = vec![0; slices];
    let mut last = vec![0; slices];
    for entry in log {
        let slice = (entry.time_us / config.timeslice_us) as usize;
        let credits = model_credits(meter, entry.cost, config.op_size);
        if slice < slices && credits > 0 {
            admitted[slice] += credits;
            last[slice] = credits;
        }
    }
    (admitted, last)
}

/// Property (a) for one meter, over every window of whole slices limited throughout.
fn check_window_bound(
    meter: Meter,
    log: &[Admitted],
    limits: &[SliceLimit],
    config: SliceConfig,
) -> Result<(), TestCaseError> {
    let slices = limits.len();
    let (admitted, last) = per_slice_admissions(meter, log, config, slices);
    // With P(k) the credits admitted before slice k and Q(k) the grants of slices before
    // k, the bound for [s, e) reads P(e) - Q(e) - overdraft <= P(s) - Q(s + 1) + cap(s);
    // keep the minimum right-hand side over the window starts of the current limited run.
    let (mut p, mut q) = (0i128, 0i128);
    let mut best_start = i128::MAX;
    let mut last_credits = 0u64;
    for slice in 0..slices {
        let limit = limits[slice];
        let p_start = p;
        p += i128::from(admitted[slice]);
        q += i128::from(limit.grant);
        if limit.unlimited {
            best_start = i128::MAX;
            continue;
        }
        best_start = best_start.min(p_start - q + i128::from(limit.cap));
        if admitted[slice] > 0 {
            last_credits = last[slice];
        }
        let overdraft = i128::from(last_credits.saturating_sub(1));
        prop_assert!(
            p - q - overdraft <= best_start,
            "{meter:?}: window ending with slice {slice} admitted too much"
        );
    }
    // Cross-check the running minimum by brute force on short runs.
    if slices <= 300 {
        for start in 0..slices {
            let mut sum = 0u64;
            let mut bound = limits[start].cap;
            let mut last_credits = 0;
            for end in start..slices {
                if limits[end].unlimited {
                    break;
                }
                if end > start {
                    bound += limits[end].grant;
                }
                sum += admitted[end];
                if admitted[end] > 0 {
                    last_credits = last[end];
                }
                prop_assert!(sum <= bound + last_credits.saturating_sub(1));
            }
        }
    }
    Ok(())
}

/// Properties (b) and (c): the cumulative credits through every slice of a backlogged run.
fn check_backlogged_totals(
    meter: Meter,
    log: &[Admitted],
    config: SliceConfig,
    expected_through: impl Fn(usize) -> u64,
    slices: std::ops::Range<usize>,
) -> Result<(), TestCaseError> {
    let (admitted, last) = per_slice_admissions(meter, log, config, slices.end);
    let mut charged = 0;
    let mut last_credits = 0;
    for slice in 0..slices.end {
        charged += admitted[slice];
        if admitted[slice] > 0 {
            last_credits = last[slice];
        }
        if slices.contains(&slice) {
            let expected = expected_through(slice);
            prop_assert!(
                expected <= charged && charged < expected + last_credits,
                "{meter:?} slice {slice}: charged {charged}, granted {expected}, last request {last_credits}"
            );
        }
    }
    Ok(())
}

/// Runs a backlogged ring from `start_us` until the end of slice `end_slice`, applying
/// `changes` on the way.
fn run_backlogged(domain: &mut Domain, start_us: u64, end_us: u64, changes: &[(u64, Limits)]) {
    domain.run_timer_until(start_us);
    // A notification gets the backlogged ring going.
    domain.arrive(0, Cost::no_data(), start_us);
    for &(time_us, limits) in changes {
        domain.set_limits(limits, time_us);
    }
    domain.run_timer_until(end_us);
}

fn single_meter(meter: Meter, amount: u64, timeslice_us: u64) -> Limits {
    let mut amounts = [None; 6];
    for (slot, candidate) in amounts.iter_mut().zip(Meter::ALL) {
        if candidate == meter {
            *slot = Some(amount);
        }
    }
    PerSlice { amounts }.limits(timeslice_us)
}

/// `costs` with its first request made one that `meter` is charged for, so that a
/// backlog cycling through them is held by that meter's budget.
fn charged_to(meter: Meter, mut costs: Vec<Cost>) -> Vec<Cost> {
    if let Some(first) = costs.first_mut() {
        if !meter.applies_to(first.direction) {
            first.direction = match first.direction {
                Direction::Read => Direction::Write,
                Direction::Write => Direction::Read,
            };
        }
        if meter.counts_bytes() && first.bytes == 0 {
            first.bytes = 4096;
        }
    }
    costs
}

fn meter() -> impl Strategy<Value = Meter> {
    prop_oneof![
        Just(Meter::Ops),
        Just(Meter::Bytes),
        Just(Meter::ReadOps),
        Just(Meter::WriteBytes)
    ]
}

fn amount_for(meter: Meter) -> BoxedStrategy<u64> {
    if meter.counts_bytes() {
        byte_amount().boxed()
    } else {
        op_amount().boxed()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// (a), (d), (e), (f) over random streams on up to three rings with random limit changes.
    #[test]
    fn random_streams_keep_the_contract(
        config in config(),
        initial in per_slice(),
        rings in 1usize..=3,
        steps in prop::collection::vec((0u64..=200, action()), 1..120),
    ) {
        let initial = initial.limits(config.timeslice_us);
        let mut domain = Domain::new(initial, config, rings);
        let mut changes = Vec::new();
        let mut now_us = 0;
        for (gap_percent, action) in steps {
            now_us += gap_percent * config.timeslice_us / 100;
            match action {
                Action::Arrive { ring, cost } => domain.arrive(ring % rings, cost, now_us),
                Action::SetLimits(per_slice) => {
                    let limits = per_slice.limits(config.timeslice_us);
                    domain.set_limits(limits, now_us);
                    changes.push((now_us, limits));
                }
                Action::LiftAll => {
                    domain.run_timer_until(now_us);
                    let was_held = domain.any_held();
                    let answer = domain.set_limits(Limits::UNLIMITED, now_us);
                    changes.push((now_us, Limits::UNLIMITED));
                    // (d) released at once, and everything waiting goes through now.
                    prop_assert_eq!(answer == HeldRings::Kick, was_held);
                    prop_assert!(!domain.any_held());
                    prop_assert_eq!(domain.queued(), 0);
                }
            }
        }
        domain.drain();

        // (f) every request admitted, in arrival order per ring.
        for ring in 0..rings {
            let ids: Vec<u64> =
                domain.log.iter().filter(|a| a.ring == ring).map(|a| a.id).collect();
            let expected: Vec<u64> = (0..domain.arrivals(ring)).collect();
            prop_assert_eq!(ids, expected);
        }
        // A held ring never retries: at most one hold per ring between kicks.
        for holds in domain.holds_per_ring() {
            prop_assert!(holds <= domain.kicks + 1);
        }
        // (e) counters agree with an independent count.
        let end_us = domain.log.last().map_or(0, |a| a.time_us);
        let stats = domain.budget.stats(end_us);
        prop_assert_eq!(stats.admitted_requests, domain.log.len() as u64);
        let ops: u64 = domain.log.iter().map(|a| model_ops(a.cost, config.op_size)).sum();
        prop_assert_eq!(stats.admitted_ops, ops);
        let bytes: u64 = domain.log.iter().map(|a| a.cost.bytes).sum();
        prop_assert_eq!(stats.admitted_bytes, bytes);
        prop_assert_eq!(stats.kicks, domain.kicks);
        prop_assert!(stats.throttled_slices <= end_us / config.timeslice_us + 1);

        // (a) the window bound on every meter.
        let slices = ((end_us / config.timeslice_us) as usize + 1).min(MAX_CHECKED_SLICES);
        for meter in Meter::ALL {
            let limits = slice_limits(meter, initial, &changes, config, slices);
            check_window_bound(meter, &domain.log, &limits, config)?;
        }
    }

    /// (b) and (e): exact long-run rate of a backlogged domain after an idle start.
    #[test]
    fn backlogged_rate_is_exact(
        config in config(),
        (meter, amount) in meter().prop_flat_map(|m| (Just(m), amount_for(m))),
        idle_slices in 0usize..30,
        offset_percent in 0u64..100,
        costs in prop::collection::vec(cost(), 1..6),
        slices in 20usize..200,
    ) {
        let limits = single_meter(meter, amount, config.timeslice_us);
        let mut domain = Domain::new(limits, config, 1);
        domain.backlog(0, charged_to(meter, costs));
        let start_us = idle_slices as u64 * config.timeslice_us
            + offset_percent * config.timeslice_us / 100;
        let end_slice = idle_slices + slices;
        let end_us = end_slice as u64 * config.timeslice_us - 1;
        run_backlogged(&mut domain, start_us, end_us, &[]);

        // With one ring and fixed limits the timer is never early: every expiry kicks.
        prop_assert_eq!(domain.idle_timer_fires, 0);
        let grant = limits.get(meter) * config.timeslice_us;
        let banked = (idle_slices as u64 + 1).min(config.burst + 1) * grant;
        let expected = |slice: usize| banked + (slice - idle_slices) as u64 * grant;
        check_backlogged_totals(meter, &domain.log, config, expected, idle_slices..end_slice)?;
        // One-operation requests: exactly ceil(limit × elapsed) of them.
        if meter == Meter::Ops && config.op_size == 0 && config.burst == 0 && idle_slices == 0 {
            let count = domain.log.iter().filter(|a| a.time_us < end_us).count() as u64;
            let granted = slices as u64 * grant;
            prop_assert_eq!(count, granted.div_ceil(CREDITS_PER_UNIT));
        }
    }

    /// (c): limit changes, while running or held, apply exactly from the next boundary.
    #[test]
    fn limit_changes_apply_at_the_next_boundary(
        config in config(),
        (meter, amount, new_amounts) in meter().prop_flat_map(|m| {
            (Just(m), amount_for(m), prop::collection::vec((0u64..=500, amount_for(m)), 1..8))
        }),
        costs in prop::collection::vec(cost(), 1..6),
        slices in 20usize..200,
    ) {
        let timeslice_us = config.timeslice_us;
        let initial = single_meter(meter, amount, timeslice_us);
        let mut changes = Vec::new();
        let mut now_us = 0;
        for (gap_percent, amount) in new_amounts {
            now_us += gap_percent * timeslice_us / 100;
            changes.push((now_us, single_meter(meter, amount, timeslice_us)));
        }
        let mut domain = Domain::new(initial, config, 1);
        domain.backlog(0, charged_to(meter, costs));
        let end_us = slices as u64 * timeslice_us - 1;
        changes.retain(|&(time_us, _)| time_us < end_us);
        run_backlogged(&mut domain, 0, end_us, &changes);

        let limits = slice_limits(meter, initial, &changes, config, slices);
        let granted: Vec<u64> = limits
            .iter()
            .scan(0, |sum, limit| {
                *sum += limit.grant;
                Some(*sum)
            })
            .collect();
        check_backlogged_totals(meter, &domain.log, config, |slice| granted[slice], 0..slices)?;
    }
}
