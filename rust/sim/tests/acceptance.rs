//! The rig's acceptance criteria, reproduced in simulation with the real budget code.
//!
//! Run with `--nocapture` to see the measured numbers.

use rblk_sim::rig::{self, ALPHA, BETA, GAMMA, SECOND_US, TIMER_LATENESS_US};
use rblk_sim::{run, DiskModel, DomainReport, Job, Report, Scenario};
use throttle::{Limits, SliceConfig};

/// Length of every run, in seconds.
const SECONDS: usize = 30;
/// Accuracy windows, in seconds.
const WINDOW: usize = 5;

/// Every window of `WINDOW` whole seconds after the first, sliding by one second, within
/// the time the job issues requests.
fn windows() -> impl Iterator<Item = std::ops::Range<usize>> {
    (1..=SECONDS - WINDOW).map(|start| start..start + WINDOW)
}

/// Largest relative deviation of `rate(window)` from `target` over all windows.
fn worst_deviation(target: f64, rate: impl Fn(std::ops::Range<usize>) -> f64) -> f64 {
    windows()
        .map(|window| (rate(window) - target).abs() / target)
        .fold(0.0, f64::max)
}

fn intact(report: &Report) -> &Report {
    assert!(
        report.all_rings_intact(),
        "requests lost or reordered: {:?}",
        report.rings
    );
    report
}

/// The unthrottled rate of `request_bytes` QD32 random reads, in requests per second.
fn unthrottled_iops(request_bytes: u64) -> f64 {
    let report = run(&rig::random_reads(request_bytes, Limits::UNLIMITED, 10));
    intact(&report).domain(ALPHA).iops(1..10)
}

#[test]
fn iops_limits_hold_within_two_percent_over_every_five_second_window() {
    let unthrottled = unthrottled_iops(4096);
    let limits = [20, (unthrottled / 4.0) as u64, (unthrottled / 2.0) as u64];
    for iops in limits {
        let report = run(&rig::random_reads(4096, Limits::iops(iops), SECONDS as u64));
        let alpha = intact(&report).domain(ALPHA);
        let worst = worst_deviation(iops as f64, |window| alpha.iops(window));
        eprintln!(
            "iops limit {iops} ({:.1} % of unthrottled {unthrottled:.0}): worst 5 s window off by {:.3} %",
            100.0 * iops as f64 / unthrottled,
            100.0 * worst
        );
        assert!(worst <= 0.02, "limit {iops}: off by {:.2} %", 100.0 * worst);
    }
}

#[test]
fn bps_limits_hold_within_two_percent_over_every_five_second_window() {
    const REQUEST: u64 = 64 << 10;
    let unthrottled = unthrottled_iops(REQUEST) * REQUEST as f64;
    let limits = [
        20 * REQUEST,
        (unthrottled / 4.0) as u64,
        (unthrottled / 2.0) as u64,
    ];
    for bps in limits {
        let report = run(&rig::random_reads(
            REQUEST,
            Limits::bps(bps),
            SECONDS as u64,
        ));
        let alpha = intact(&report).domain(ALPHA);
        let worst = worst_deviation(bps as f64, |window| alpha.bps(window));
        eprintln!(
            "bps limit {bps} ({:.1} % of unthrottled {unthrottled:.0}): worst 5 s window off by {:.3} %",
            100.0 * bps as f64 / unthrottled,
            100.0 * worst
        );
        assert!(worst <= 0.02, "limit {bps}: off by {:.2} %", 100.0 * worst);
    }
}

#[test]
fn a_limited_backup_no_longer_hurts_the_databases() {
    let seconds = 20;
    let measured = 1..seconds;
    let iops = |report: &Report, domid| intact(report).domain(domid).iops(measured.clone());
    let idle = run(&rig::database_and_backup(None, seconds as u64));
    let open = run(&rig::database_and_backup(
        Some(Limits::UNLIMITED),
        seconds as u64,
    ));
    // The backup limited to 20 MiB/s, about 4 % of the disk's bandwidth.
    let backup_limit = Limits::bps(20 << 20);
    let limited = run(&rig::database_and_backup(
        Some(backup_limit),
        seconds as u64,
    ));
    for domid in [ALPHA, BETA] {
        let (alone, hurt, protected) = (
            iops(&idle, domid),
            iops(&open, domid),
            iops(&limited, domid),
        );
        let latency = |report: &Report| report.domain(domid).mean_latency_us();
        eprintln!(
            "dom{domid}: {alone:.0} IOPS with gamma idle ({:.0} us), {hurt:.0} ({:+.1} %, {:.0} us) \
             with gamma's backup unlimited, {protected:.0} ({:+.1} %, {:.0} us) with it limited",
            latency(&idle),
            100.0 * (hurt / alone - 1.0),
            latency(&open),
            100.0 * (protected / alone - 1.0),
            latency(&limited),
        );
        assert!(protected >= 0.85 * alone && protected <= 1.15 * alone);
        // Without the limit the backup takes most of the disk: the limit is what helps.
        assert!(hurt < 0.5 * alone);
    }
    let gamma = limited.domain(GAMMA);
    eprintln!(
        "gamma: {:.0} B/s limited (limit {} B/s), {:.0} B/s unlimited",
        gamma.bps(measured.clone()),
        20 << 20,
        open.domain(GAMMA).bps(measured.clone())
    );
}

#[test]
fn a_new_limit_holds_from_the_first_full_second_after_the_change() {
    let up_us = 10 * SECOND_US + 300_000;
    let down_us = 20 * SECOND_US + 600_000;
    let steps = [(0, 20), (up_us, 60), (down_us, 20)];
    let report = run(&rig::stepped_iops(&steps, SECONDS as u64));
    let alpha: &DomainReport = intact(&report).domain(ALPHA);
    eprintln!(
        "20 -> 60 -> 20 IOPS, per second: {:?}",
        &alpha.ops_per_second[..SECONDS]
    );
    // Each whole second under one limit delivers that limit to within one request
    // (a second's count can straddle one admission either way).
    let full_seconds = [(1..10, 20), (11..20, 60), (21..SECONDS, 20)];
    for (seconds, iops) in full_seconds {
        for second in seconds {
            let delivered = alpha.ops_in(second..second + 1);
            assert!(
                delivered.abs_diff(iops) <= 1,
                "second {second}: {delivered} vs {iops}"
            );
        }
    }
    // The seconds of the changes deliver the time-weighted mix of the two limits.
    assert!(alpha.ops_in(10..11).abs_diff(20 * 3 / 10 + 60 * 7 / 10) <= 1);
    assert!(alpha.ops_in(20..21).abs_diff(60 * 6 / 10 + 20 * 4 / 10) <= 1);
}

#[test]
fn two_vbds_of_one_domain_share_its_budget() {
    let iops = (unthrottled_iops(4096) / 4.0) as u64;
    let report = run(&rig::two_vbds(Limits::iops(iops), SECONDS as u64));
    let alpha = intact(&report).domain(ALPHA);
    let worst = worst_deviation(iops as f64, |window| alpha.iops(window));
    let per_ring: Vec<u64> = report.rings.iter().map(|ring| ring.completed).collect();
    eprintln!(
        "two vbds under {iops} IOPS: worst 5 s window off by {:.3} %, requests per ring {per_ring:?}",
        100.0 * worst
    );
    assert!(worst <= 0.02);
    // Neither vbd starves: woken together, their workers interleave.
    let total: u64 = per_ring.iter().sum();
    assert!(per_ring
        .iter()
        .all(|&completed| completed * 10 >= total * 4));
}

#[test]
fn requests_larger_than_a_slice_are_paid_back_exactly() {
    // 3 MB/s over 10 ms slices grants 30 kB per slice; each 1 MiB read overdraws it by
    // about 34 slices, repaid before the next is admitted.
    const REQUEST: u64 = 1 << 20;
    let bps = 3_000_000;
    let job = Job::reads(ALPHA, 4, REQUEST, SECONDS as u64 * SECOND_US);
    let scenario = Scenario::new(DiskModel::FLASH, vec![job])
        .late_timers(TIMER_LATENESS_US)
        .limit(ALPHA, Limits::bps(bps));
    let report = run(&scenario);
    let alpha = intact(&report).domain(ALPHA);
    // Whole requests complete, so a window can be off by at most one request's bytes.
    let worst = windows()
        .map(|window| {
            let expected = bps * window.len() as u64;
            alpha.bytes_in(window).abs_diff(expected)
        })
        .max()
        .unwrap_or(0);
    let whole_run = alpha.bytes_in(0..SECONDS).abs_diff(bps * SECONDS as u64);
    eprintln!(
        "1 MiB reads under {bps} B/s: worst 5 s window off by {worst} bytes, whole run by {whole_run}"
    );
    assert!(worst <= REQUEST);
    assert!(whole_run <= REQUEST);
}

#[test]
fn nothing_is_lost_or_reordered_under_changing_limits() {
    let seconds = 10;
    let run_us = seconds * SECOND_US;
    let job = |domid, queue_depth, request_bytes, read_percent, seed| Job {
        domid,
        queue_depth,
        request_bytes,
        read_percent,
        start_us: seed * 100_000,
        duration_us: run_us - seed * 100_000,
        seed,
        pace_us: 0,
    };
    // Queue depths above the ring's 32 slots, sizes from a sector to beyond a slice's
    // byte budget, both directions, two vbds on one domain.
    let jobs = vec![
        job(1, 48, 4096, 50, 1),
        job(1, 16, 64 << 10, 0, 2),
        job(2, 64, 512, 90, 3),
        job(3, 8, 1 << 20, 60, 4),
        job(4, 32, 16 << 10, 30, 5),
        job(5, 32, 8 << 10, 70, 6),
    ];
    let mut scenario = Scenario::new(DiskModel::FLASH, jobs).late_timers(TIMER_LATENESS_US);
    scenario.slice = SliceConfig {
        timeslice_us: 5_000,
        burst: 3,
        op_size: 4096,
    };
    let split = Limits {
        read_iops: 300,
        write_bps: 2 << 20,
        ..Limits::iops(500)
    };
    let scenario = scenario
        .limit(1, Limits::iops(800))
        .limit(2, Limits::bps(1 << 20))
        .limit(3, Limits::bps(5 << 20))
        .limit(4, split)
        .change(2_500_000, 1, Limits::iops(100))
        .change(3_000_000, 2, Limits::UNLIMITED)
        .change(4_000_000, 2, Limits::iops(50))
        .change(5_000_001, 3, Limits::iops(3))
        .change(6_123_456, 4, Limits::UNLIMITED)
        .change(7_000_000, 1, Limits::UNLIMITED)
        .change(7_000_000, 4, split)
        .change(8_000_000, 5, Limits::bps(100_000));
    let report = run(&scenario);
    for ring in &report.rings {
        eprintln!("{ring:?}");
    }
    assert!(report.all_rings_intact());
    for domid in 1..=5 {
        let stats = report.domain(domid).stats;
        eprintln!("dom{domid}: {stats:?}");
        assert!(
            stats.holds > 0 && stats.kicks > 0,
            "dom{domid} was never throttled"
        );
    }
}
