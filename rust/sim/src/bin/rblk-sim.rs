//! Runs one of the rig-like scenarios and prints per-domain per-second IOPS as CSV on
//! standard output, with each domain's totals and budget counters on standard error.
//!
//! Usage: `rblk-sim SCENARIO [ARG]`, SCENARIO being one of
//! `reads [IOPS]` (4 KiB QD32 random reads, unlimited if IOPS is absent or 0),
//! `isolation-idle`, `isolation-open`, `isolation-limited [BPS]`,
//! `reaction` (20 → 60 → 20 IOPS at 10.3 s and 20.6 s) and `two-vbds [IOPS]`.

use rblk_sim::rig::{self, SECOND_US};
use rblk_sim::run;
use throttle::Limits;

const SECONDS: u64 = 30;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("reads", String::as_str);
    let number = args.get(1).and_then(|arg| arg.parse::<u64>().ok());
    let scenario = match name {
        "reads" => rig::random_reads(4096, Limits::iops(number.unwrap_or(0)), SECONDS),
        "isolation-idle" => rig::database_and_backup(None, SECONDS),
        "isolation-open" => rig::database_and_backup(Some(Limits::UNLIMITED), SECONDS),
        "isolation-limited" => {
            let limits = Limits::bps(number.unwrap_or(20 << 20));
            rig::database_and_backup(Some(limits), SECONDS)
        }
        "reaction" => rig::stepped_iops(
            &[
                (0, 20),
                (10 * SECOND_US + 300_000, 60),
                (20 * SECOND_US + 600_000, 20),
            ],
            SECONDS,
        ),
        "two-vbds" => rig::two_vbds(Limits::iops(number.unwrap_or(2_000)), SECONDS),
        other => {
            eprintln!("unknown scenario {other}");
            std::process::exit(2);
        }
    };
    let report = run(&scenario);
    print!("{}", report.iops_csv());
    for domain in &report.domains {
        eprintln!(
            "dom{}: {} completed, mean latency {:.0} us, {:?}",
            domain.domid,
            domain.completed,
            domain.mean_latency_us(),
            domain.stats
        );
    }
    if !report.all_rings_intact() {
        eprintln!("rings lost or reordered requests: {:?}", report.rings);
        std::process::exit(1);
    }
}
