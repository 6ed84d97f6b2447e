//! PARDA's setting in simulation (issue 22, item 4), with the real `sched` crate: several
//! hosts share one array; each host's window follows the latency-target law with its own β
//! (`sched::TargetWindow`), and within a host the two-level scheduler (`sched::Group`)
//! divides that window among its VMs by their shares. The array serves its requests in
//! order on 4 lanes of 10 ms ±10 % (400 IOPS, as the rig's data disk); every VM is always
//! backlogged. Run with `--nocapture` for the tables.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use sched::{
    Charge, FairQueue, Flow, FlowConfig, Group, GroupWindow, TargetParams, TargetWindow, Window,
    NONE,
};

type Queue = FairQueue<Vec<Flow>, Vec<u32>>;
type Host = Group<Vec<Flow>, Vec<u32>, Vec<Queue>, GroupWindow>;

const LANES: usize = 4;
const SERVICE_US: u64 = 10_000;
/// Service times vary by up to ±10 % (as the sim's disk model's jitter): with one fixed
/// time, lanes finish together and the order in which ties are popped would decide whose
/// requests queue first, favouring one host in every round.
const JITTER_US: u64 = 1_000;

fn queue(slots: usize) -> Queue {
    FairQueue::new(vec![Flow::default(); slots], vec![NONE; 4 * slots]).unwrap()
}

/// A host with VMs of `shares`, its window under the law with `beta_milli` (or a fixed one
/// of `fixed` requests when `beta_milli` is `None`).
fn host(shares: &[u32], target_us: u64, beta_milli: Option<u64>, fixed: u64) -> Host {
    let mut top = queue(shares.len());
    let mut vbds = Vec::new();
    for (slot, &weight) in shares.iter().enumerate() {
        assert!(top.configure(
            slot,
            FlowConfig {
                weight,
                ..FlowConfig::default()
            }
        ));
        let mut q = queue(1);
        assert!(q.configure(0, FlowConfig::default()));
        vbds.push(q);
    }
    let window = match beta_milli {
        Some(beta_milli) => GroupWindow::Target(
            TargetWindow::new(
                TargetParams {
                    beta_milli,
                    ..TargetParams::with_target(target_us)
                },
                fixed,
            )
            .unwrap(),
        ),
        None => GroupWindow::Fixed(sched::FixedWindow::new(fixed).unwrap()),
    };
    let mut g = Group::new(top, vbds, window).unwrap();
    for slot in 0..shares.len() {
        g.set_backlogged(slot, 0, true, 0);
    }
    g
}

/// Runs the hosts on one array for `seconds`; each VM's requests served in the last
/// `measure` seconds, per host, and each host's window at the end.
fn run(hosts: &mut [Host], seconds: u64, measure: u64) -> (Vec<Vec<u64>>, Vec<u64>) {
    let mut served: Vec<Vec<u64>> = hosts
        .iter()
        .map(|h| vec![0; h.domains().capacity()])
        .collect();
    // Requests waiting for a lane: (host, vm, submitted at); lanes busy until (µs, host, vm,
    // submitted).
    let mut queue: VecDeque<(usize, usize, u64)> = VecDeque::new();
    let mut lanes: BinaryHeap<Reverse<(u64, usize, usize, u64)>> = BinaryHeap::new();
    let mut now = 0u64;
    let mut rng = 0x5eed_u64;
    let end = seconds * 1_000_000;
    let from = (seconds - measure) * 1_000_000;
    while now < end {
        for (h, host) in hosts.iter_mut().enumerate() {
            while host.has_room() {
                let pick = host.pick(now * 1000).unwrap();
                let _ = host.dispatch(pick.domain, pick.vbd, 1, 4096, now * 1000);
                queue.push_back((h, pick.domain, now));
            }
        }
        while lanes.len() < LANES {
            let Some((h, vm, submitted)) = queue.pop_front() else {
                break;
            };
            // xorshift: deterministic, uniform enough for ±10 %.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let service = SERVICE_US - JITTER_US + rng % (2 * JITTER_US + 1);
            lanes.push(Reverse((now + service, h, vm, submitted)));
        }
        let Reverse((done, h, vm, submitted)) = lanes.pop().unwrap();
        now = done;
        hosts[h].complete(
            Charge::unprotected(1),
            now - submitted,
            now - submitted,
            now,
        );
        if now >= from {
            served[h][vm] += 1;
        }
    }
    let windows = hosts.iter().map(|h| h.window().limit()).collect();
    (served, windows)
}

fn iops(served: &[Vec<u64>], measure: u64) -> Vec<Vec<f64>> {
    served
        .iter()
        .map(|h| h.iter().map(|&n| n as f64 / measure as f64).collect())
        .collect()
}

/// PARDA's end-to-end table scaled to this array: four hosts with β 6:4:4:2 (in proportion
/// to their VMs' shares: 20+10, 10+10, 20, 10), VM shares 20/10, 10/10, 20 and 10. Each VM's
/// IOPS is proportional to its share across all hosts (20 → 100, 10 → 50 of 400) within
/// ±5 %, and the host totals go 6:4:4:2. The target is 50 ms, so that the array's L·X (20
/// requests) is large against Σβ (4): the fixed point's latency is L·(L·X + Σβ)/(L·X), 20 %
/// above the target, and the hosts' windows divide in proportion to β at a rate of γ·Σβ/w
/// per period (a few percent: minutes of simulated time, as in PARDA's own runs).
#[test]
fn four_hosts_divide_the_array_by_beta_and_their_vms_by_shares() {
    let shares: [&[u32]; 4] = [&[20, 10], &[10, 10], &[20], &[10]];
    let betas = [1500, 1000, 1000, 500];
    let mut hosts: Vec<Host> = shares
        .iter()
        .zip(betas)
        .map(|(s, beta)| host(s, 50_000, Some(beta), 32))
        .collect();
    let (served, windows) = run(&mut hosts, 600, 200);
    let got = iops(&served, 200);
    let total: f64 = got.iter().flatten().sum();
    eprintln!("four hosts, beta 6:4:4:2: VM IOPS {got:?} of {total:.1}; windows {windows:?}");
    for (vms, host_shares) in got.iter().zip(shares) {
        for (&vm, &share) in vms.iter().zip(host_shares) {
            let want = total * f64::from(share) / 80.0;
            assert!(
                (vm - want).abs() <= want * 0.05,
                "{vm:.1} vs {want:.1}: {got:?}"
            );
        }
    }
    let host_totals: Vec<f64> = got.iter().map(|vms| vms.iter().sum()).collect();
    for (t, beta) in host_totals.iter().zip([6.0, 4.0, 4.0, 2.0]) {
        let want = total * beta / 16.0;
        assert!((t - want).abs() <= want * 0.05, "{host_totals:?}");
    }
    assert!(total >= 390.0, "the array stays busy: {total:.1}");
}

/// The two-host run of the rig, in simulation: host weights 3:2, VM shares 2:1 on host 1 and
/// 1:1 on host 2: each VM's IOPS in proportion to its share of the whole (40 / 20 / 20 / 20
/// %) within ±5 %, host totals 3:2. Without control (both hosts keep a fixed window of 32)
/// the hosts get equal halves.
#[test]
fn two_hosts_divide_three_to_two_and_without_control_equally() {
    let shares: [&[u32]; 2] = [&[20, 10], &[10, 10]];
    let mut controlled = vec![
        host(shares[0], 50_000, Some(1500), 32),
        host(shares[1], 50_000, Some(1000), 32),
    ];
    let (served, windows) = run(&mut controlled, 600, 200);
    let got = iops(&served, 200);
    let total: f64 = got.iter().flatten().sum();
    let mut uncontrolled = vec![host(shares[0], 0, None, 32), host(shares[1], 0, None, 32)];
    let (plain, _) = run(&mut uncontrolled, 60, 40);
    let plain = iops(&plain, 40);
    let plain_hosts: Vec<f64> = plain.iter().map(|vms| vms.iter().sum()).collect();
    eprintln!(
        "two hosts, beta 3:2: VM IOPS {got:?} of {total:.1}, windows {windows:?}; \
         fixed windows: hosts {plain_hosts:?}"
    );
    for (vm, want_pct) in got.iter().flatten().zip([40.0, 20.0, 20.0, 20.0]) {
        let want = total * want_pct / 100.0;
        assert!((vm - want).abs() <= want * 0.05, "{got:?}");
    }
    let host1: f64 = got[0].iter().sum();
    assert!((host1 / total - 0.6).abs() <= 0.03, "{got:?}");
    assert!(
        (plain_hosts[0] / (plain_hosts[0] + plain_hosts[1]) - 0.5).abs() <= 0.02,
        "{plain_hosts:?}"
    );
}
