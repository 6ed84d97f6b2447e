//! Cost of one scheduling decision (pick + dispatch) at 1, 10, 100 and 1000 backlogged
//! flows. `cargo bench -p rblk-sched`; prints ns per decision and the growth per tenfold.

use sched::{FairQueue, Flow, FlowConfig, NONE};
use std::hint::black_box;
use std::time::Instant;

fn ns_per_decision(n: usize, decisions: u64) -> f64 {
    let mut q = FairQueue::new(vec![Flow::default(); n], vec![NONE; 4 * n]).unwrap();
    for i in 0..n {
        let config = FlowConfig {
            weight: 1 + (i as u32 * 7919) % 10_000,
            // Every tenth flow reserves, so both trees are exercised.
            reservation_iops: if i % 10 == 0 { 5 } else { 0 },
            ..FlowConfig::default()
        };
        q.configure(i, config);
        q.set_backlogged(i, true, 0);
    }
    let mut now = 0u64;
    let start = Instant::now();
    for k in 0..decisions {
        let pick = q.pick(now).unwrap();
        q.dispatch(pick.slot, 1 + (k % 64) as u32, 4096, now);
        now += 2_500;
    }
    black_box(&q);
    start.elapsed().as_nanos() as f64 / decisions as f64
}

fn main() {
    let mut previous: Option<f64> = None;
    println!("sched decision (pick + dispatch), backlogged flows:");
    for n in [1usize, 10, 100, 1000] {
        // Best of three runs: the host may be busy.
        let ns = (0..3)
            .map(|_| ns_per_decision(n, 2_000_000))
            .fold(f64::INFINITY, f64::min);
        let growth = previous.map_or(String::new(), |p| format!("  x{:.2} per 10x flows", ns / p));
        println!("  {n:>5} flows: {ns:7.1} ns per decision{growth}");
        previous = Some(ns);
    }
}
