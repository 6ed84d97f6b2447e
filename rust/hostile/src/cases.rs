//! The hostile cases: each sends one kind of bad input `count` times and reports what the
//! backend did with it.

use crate::blkreq::{self, Layout, Segment, ENTRY_SIZE, OP_READ, OP_WRITE};
use crate::frontend::{state, Frontend, Tally, DATA_PAGES, PROTOCOL_X86_32, PROTOCOL_X86_64};
use crate::xen::PAGE_SIZE;
use crate::Error;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Every case, in the order `--case all` runs them, with its default count.
pub(crate) const CASES: &[(&str, u64)] = &[
    ("prod-overrun", 6),
    ("bad-op", 254),
    ("too-many-segments", 56),
    ("first-after-last", 48),
    ("past-end", 54),
    ("ungranted-gref", 48),
    ("revoked-gref", 48),
    ("indirect-garbage", 60),
    ("double-fetch", 40),
    ("notify-storm", 100_000),
    ("disconnect-mid-request", 6),
    ("reconnect-order", 6),
];

/// Conformance checks: well-formed traffic the backend must serve correctly, run by name
/// (`--case NAME`), not by `--case all`; a failed check fails the program.
pub(crate) const CHECKS: &[(&str, u64)] = &[
    ("abi-layouts", 3),
    ("bad-connect", 1000),
    ("page-flood", 1024),
];

/// The case or check called `name`: its static name and default count.
fn lookup(name: &str) -> Option<(&'static str, u64)> {
    CASES
        .iter()
        .chain(CHECKS)
        .find(|(n, _)| *n == name)
        .copied()
}

/// The default count of a case or check.
pub(crate) fn default_count(name: &str) -> Option<u64> {
    lookup(name).map(|(_, count)| count)
}

/// Marks a request in `Tally::status_of` that was answered but whose response we
/// overwrote before reading it.
const STATUS_LOST: i16 = i16::MIN;

/// A small xorshift generator: garbage needs no quality, only reproducibility.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced).
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Fills `out` with random bytes.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The outcome of one case.
pub(crate) struct CaseResult {
    /// Case name.
    pub(crate) case: &'static str,
    /// Bad inputs tried.
    pub(crate) count: u64,
    /// Responses to them.
    pub(crate) tally: Tally,
    /// The ring no longer answered a valid READ afterwards.
    pub(crate) ring_halted: bool,
    /// The backend's xenbus state at the end.
    pub(crate) backend_state: u32,
    /// What happened, in words.
    pub(crate) notes: Vec<String>,
    /// Wall time of the case.
    pub(crate) elapsed: Duration,
}

impl CaseResult {
    fn new(case: &'static str, count: u64) -> CaseResult {
        CaseResult {
            case,
            count,
            tally: Tally::default(),
            ring_halted: false,
            backend_state: 0,
            notes: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }
}

/// Connects with a one-page ring (if not connected) and checks that a READ works.
pub(crate) fn ensure_connected(f: &mut Frontend) -> Result<(), Error> {
    if f.conn.is_none() {
        if let Err(s) = f.connect(0, false)? {
            return Err(Error(format!(
                "backend refused a plain one-page ring (state {s})"
            )));
        }
    }
    if !f.probe()? {
        // Try once more from scratch: the previous case may have broken the ring.
        f.close()?;
        if let Err(s) = f.connect(0, false)? {
            return Err(Error(format!(
                "backend refused a plain one-page ring (state {s})"
            )));
        }
        if !f.probe()? {
            return Err(Error("a fresh ring does not answer a valid READ".into()));
        }
    }
    Ok(())
}

/// Runs case `name` with `count` bad inputs.
pub(crate) fn run(
    f: &mut Frontend,
    name: &str,
    count: u64,
    rng: &mut Rng,
) -> Result<CaseResult, Error> {
    let start = Instant::now();
    ensure_connected(f)?;
    let (case, _) = lookup(name).ok_or_else(|| Error(format!("unknown case {name}")))?;
    let mut r = CaseResult::new(case, count);
    match case {
        "prod-overrun" => prod_overrun(f, &mut r)?,
        "bad-op" => bad_op(f, &mut r, rng)?,
        "too-many-segments" => too_many_segments(f, &mut r)?,
        "first-after-last" => first_after_last(f, &mut r)?,
        "past-end" => past_end(f, &mut r)?,
        "ungranted-gref" => ungranted_gref(f, &mut r)?,
        "revoked-gref" => revoked_gref(f, &mut r)?,
        "indirect-garbage" => indirect_garbage(f, &mut r, rng)?,
        "double-fetch" => double_fetch(f, &mut r)?,
        "notify-storm" => notify_storm(f, &mut r)?,
        "disconnect-mid-request" => disconnect_mid_request(f, &mut r)?,
        "reconnect-order" => reconnect_order(f, &mut r)?,
        "abi-layouts" => abi_layouts(f, &mut r, rng)?,
        "bad-connect" => bad_connect(f, &mut r)?,
        "page-flood" => page_flood(f, &mut r)?,
        _ => unreachable!("every case in CASES and CHECKS has a function"),
    }
    if f.conn.is_some() && !matches!(case, "prod-overrun" | "notify-storm" | "reconnect-order") {
        r.ring_halted = !f.probe()?;
    }
    r.backend_state = f.backend_state();
    r.elapsed = start.elapsed();
    Ok(r)
}

/// Groups request ids' statuses by a key (e.g. the variant) into "key: okay N, error M".
fn summarize<K: Ord + Clone + std::fmt::Display>(
    tally: &Tally,
    key_of: &HashMap<u64, K>,
) -> Vec<String> {
    let mut by: BTreeMap<K, [u64; 6]> = BTreeMap::new();
    for (id, k) in key_of {
        let e = by.entry(k.clone()).or_default();
        match tally.status_of.get(id) {
            Some(0) => e[0] += 1,
            Some(-1) => e[1] += 1,
            Some(-2) => e[2] += 1,
            Some(&STATUS_LOST) => e[5] += 1,
            Some(_) => e[3] += 1,
            None => e[4] += 1,
        }
    }
    by.into_iter()
        .map(|(k, c)| {
            let mut parts = Vec::new();
            for (n, label) in c.iter().zip([
                "okay",
                "error",
                "eopnotsupp",
                "other",
                "no response",
                "answered, status lost",
            ]) {
                if *n > 0 {
                    parts.push(format!("{label} {n}"));
                }
            }
            format!("{k}: {}", parts.join(", "))
        })
        .collect()
}

/// Runs `count` requests built by `build(f, i, id, ring_index)`, labelling each by the
/// variant `label(i)`; adds the per-variant summary to the notes.
fn variants(
    f: &mut Frontend,
    r: &mut CaseResult,
    label: impl Fn(u64) -> String,
    mut build: impl FnMut(&mut Frontend, u64, u64, u32) -> [u8; ENTRY_SIZE],
) -> Result<(), Error> {
    let mut key_of = HashMap::new();
    let mut i = 0u64;
    let t = f.run_batch(r.count, |f, id, index| {
        key_of.insert(id, label(i));
        let e = build(f, i, id, index);
        i += 1;
        e
    })?;
    r.notes.extend(summarize(&t, &key_of));
    r.tally.add(&t);
    Ok(())
}

fn sectors(f: &mut Frontend) -> u64 {
    f.c().info.sectors
}

/// req_prod far ahead of the ring (or backwards): the backend must stop consuming that
/// ring and nothing else. Reconnects for every try.
fn prod_overrun(f: &mut Frontend, r: &mut CaseResult) -> Result<(), Error> {
    let mut halted = 0;
    for i in 0..r.count {
        if i > 0 {
            f.close()?;
            ensure_connected(f)?;
        }
        let timeout = f.timeout.min(Duration::from_secs(2));
        let base = f.c().ring.req_prod_pvt;
        let entries = f.c().ring.entries;
        // Fill every slot with a valid READ, then publish a producer index that lies.
        let mut pending = HashMap::new();
        for _ in 0..entries {
            let id = f.id();
            let index = f.c().ring.req_prod_pvt;
            let e = f.valid_read(id, index);
            f.c().ring.put(&e);
            pending.insert(id, ());
        }
        let (what, value) = match i % 3 {
            0 => (
                "req_prod one past a full ring",
                base.wrapping_add(entries + 1),
            ),
            1 => ("req_prod 2^31 ahead", base.wrapping_add(0x8000_0000)),
            _ => ("req_prod moved backwards by 1", base.wrapping_sub(1)),
        };
        f.c().ring.set_req_prod(value);
        f.notify()?;
        let mut t = Tally {
            sent: 1,
            ..Tally::default()
        };
        f.collect(&mut pending, &mut t, timeout / 2)?;
        let filler_answers = t.okay + t.error + t.eopnotsupp + t.other_status;
        // A probe with a sane producer: does the ring still work?
        f.c().ring.req_prod_pvt = base;
        let id = f.id();
        let e = f.valid_read(id, base);
        f.c().ring.put(&e);
        f.c().ring.push();
        f.notify()?;
        let mut probe = Tally::default();
        let mut p = HashMap::from([(id, ())]);
        f.collect(&mut p, &mut probe, timeout)?;
        let ring_halted = probe.okay == 0;
        halted += u64::from(ring_halted);
        r.notes.push(format!(
            "{what}: {filler_answers} of {entries} filler requests answered, ring {}",
            if ring_halted {
                "halted"
            } else {
                "still answering"
            }
        ));
        // The lie counts as one bad input; filler answers are not responses to it.
        r.tally.sent += 1;
        r.tally.no_response += u64::from(ring_halted);
        r.tally.okay += u64::from(!ring_halted);
        r.tally.bogus_rsp_prod |= t.bogus_rsp_prod || probe.bogus_rsp_prod;
    }
    r.ring_halted = halted > 0;
    r.notes
        .push(format!("ring halted after {halted} of {} lies", r.count));
    f.close()?;
    Ok(())
}

/// Operation codes other than READ and WRITE (2..=255), the rest of the entry random;
/// DISCARD (5) as a well-formed discard of 8 sectors, which neither backend advertises
/// here unless the disk supports it.
fn bad_op(f: &mut Frontend, r: &mut CaseResult, rng: &mut Rng) -> Result<(), Error> {
    let mut op_of: HashMap<u64, u8> = HashMap::new();
    let mut i = 0u64;
    let t = f.run_batch(r.count, |_f, id, _index| {
        let op = 2 + (i % 254) as u8;
        i += 1;
        op_of.insert(id, op);
        if op == 5 {
            return blkreq::discard(0, id, 0, 8);
        }
        let mut e = [0u8; ENTRY_SIZE];
        rng.fill(&mut e);
        e[0] = op;
        e
    })?;
    // Group the codes by outcome: "eopnotsupp: 4, 7-255".
    let mut by_status: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (id, op) in &op_of {
        let s = match t.status_of.get(id) {
            Some(0) => "okay",
            Some(-1) => "error",
            Some(-2) => "eopnotsupp",
            Some(_) => "other status",
            None => "no response",
        };
        by_status.entry(s.to_string()).or_default().push(*op);
    }
    for (s, mut ops) in by_status {
        ops.sort_unstable();
        ops.dedup();
        r.notes.push(format!("{s}: op {}", ranges(&ops)));
    }
    r.tally.add(&t);
    Ok(())
}

/// "2, 4-9, 11" for a sorted list.
fn ranges(v: &[u8]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

/// Fills indirect page `page` with `n` valid whole-page segments over the data pool.
fn valid_indirect_page(f: &Frontend, page: u32, n: usize) {
    let segs: Vec<Segment> = (0..n.min(blkreq::SEGMENTS_PER_PAGE))
        .map(|k| Segment::page(f.data_gref(k as u32)))
        .collect();
    f.fill_indirect(page, &segs);
}

/// More segments than the protocol or the backend allows, or none.
fn too_many_segments(f: &mut Frontend, r: &mut CaseResult) -> Result<(), Error> {
    let max_ind = f.c().info.max_indirect;
    let labels = [
        "direct nr_segments 12-255".to_string(),
        "direct nr_segments 255".into(),
        "direct READ nr_segments 0".into(),
        format!("indirect nr_segments {} (max+1)", max_ind + 1),
        "indirect nr_segments 4097 (9 pages)".into(),
        "indirect nr_segments 65535".into(),
        "indirect nr_segments 0".into(),
    ];
    let n_variants = labels.len() as u64;
    variants(
        f,
        r,
        |i| labels[(i % n_variants) as usize].clone(),
        |f, i, id, index| {
            let segs: Vec<Segment> = (0..11)
                .map(|k| Segment::page(f.data_gref(index + k)))
                .collect();
            let page = index % crate::frontend::INDIRECT_PAGES as u32;
            let (gref, _) = f.indirect_page(page);
            let grefs = [gref; 8];
            match i % n_variants {
                0 => blkreq::rw(
                    OP_READ,
                    (12 + (i / n_variants) % 244) as u8,
                    0,
                    id,
                    0,
                    &segs,
                ),
                1 => blkreq::rw(OP_READ, 255, 0, id, 0, &segs),
                2 => blkreq::rw(OP_READ, 0, 0, id, 0, &segs),
                v => {
                    valid_indirect_page(f, page, blkreq::SEGMENTS_PER_PAGE);
                    let n = match v {
                        3 => (max_ind + 1).min(u16::MAX.into()) as u16,
                        4 => 4097,
                        5 => u16::MAX,
                        _ => 0,
                    };
                    blkreq::indirect(OP_READ, n, 0, id, 0, &grefs)
                }
            }
        },
    )
}

/// Segments whose sector range is empty, reversed or outside the page.
fn first_after_last(f: &mut Frontend, r: &mut CaseResult) -> Result<(), Error> {
    const BAD: [(u8, u8); 7] = [(7, 0), (1, 0), (4, 3), (0, 8), (8, 8), (0, 255), (255, 0)];
    let n_variants = BAD.len() as u64 + 1;
    variants(
        f,
        r,
        |i| match (i % n_variants) as usize {
            v if v < BAD.len() => format!("first_sect {} last_sect {}", BAD[v].0, BAD[v].1),
            _ => "segment 4 of 6 with first_sect 5 last_sect 2".into(),
        },
        |f, i, id, index| {
            let v = (i % n_variants) as usize;
            if v < BAD.len() {
                let seg = Segment {
                    gref: f.data_gref(index),
                    first_sect: BAD[v].0,
                    last_sect: BAD[v].1,
                };
                blkreq::rw(OP_READ, 1, 0, id, 0, &[seg])
            } else {
                let mut segs: Vec<Segment> = (0..6)
                    .map(|k| Segment::page(f.data_gref(index + k)))
                    .collect();
                segs[3] = Segment {
                    gref: f.data_gref(index + 3),
                    first_sect: 5,
                    last_sect: 2,
                };
                blkreq::rw(OP_READ, 6, 0, id, 0, &segs)
            }
        },
    )
}

/// Sector ranges that end past the disk or wrap around.
fn past_end(f: &mut Frontend, r: &mut CaseResult) -> Result<(), Error> {
    let n = sectors(f);
    let starts: [(&str, u64); 7] = [
        ("start = size (8 sectors)", n),
        ("start = size - 4 (8 sectors, straddles the end)", n - 4),
        ("start = size - 1", n - 1),
        ("start = size + 2^32", n + (1 << 32)),
        ("start = 2^64 - 8 (end wraps to 0)", u64::MAX - 7),
        ("start = 2^63", 1 << 63),
        ("start = 2^64 - 1", u64::MAX),
    ];
    let n_variants = starts.len() as u64 + 2;
    variants(
        f,
        r,
        |i| match (i % n_variants) as usize {
            v if v < starts.len() => starts[v].0.to_string(),
            v if v == starts.len() => "indirect 8 pages at size - 32 (straddles)".into(),
            _ => "DISCARD of 8 sectors at size - 4 (straddles)".into(),
        },
        |f, i, id, index| {
            let v = (i % n_variants) as usize;
            if v < starts.len() {
                blkreq::rw(
                    OP_READ,
                    1,
                    0,
                    id,
                    starts[v].1,
                    &[Segment::page(f.data_gref(index))],
                )
            } else if v > starts.len() {
                blkreq::discard(0, id, n - 4, 8)
            } else {
                let page = index % crate::frontend::INDIRECT_PAGES as u32;
                valid_indirect_page(f, page, 8);
                let (gref, _) = f.indirect_page(page);
                blkreq::indirect(OP_READ, 8, 0, id, n - 32, &[gref])
            }
        },
    )?;
    // Control: the last 8 sectors are readable.
    let t = f.run_batch(1, |f, id, index| {
        blkreq::rw(
            OP_READ,
            1,
            0,
            id,
            n - 8,
            &[Segment::page(f.data_gref(index))],
        )
    })?;
    r.notes.push(format!(
        "control READ of the last 8 sectors ({}..{}): {}",
        n - 8,
        n,
        if t.okay == 1 { "okay" } else { "FAILED" }
    ));
    Ok(())
}

/// Grant references that were never granted to the backend (or only read-only).
fn ungranted_gref(f: &mut Frontend, r: &mut CaseResult) -> Result<(), Error> {
    let highest = f
        .data
        .grefs()
        .iter()
        .chain(f.indirect.grefs())
        .copied()
        .max()
        .unwrap_or(0);
    let free_in_table = highest + 1000;
    let ro = f.gnt.alloc(f.backend_id, 1, false)?;
    let ro_gref = ro.grefs()[0];
    let labels = [
        "READ into gref 0xffffffff".to_string(),
        "READ into gref 0x7fffffff".into(),
        "READ into gref 0x100000".into(),
        format!("READ into unused in-table gref {free_in_table}"),
        "WRITE from unused in-table gref".into(),
        "READ into a read-only grant".into(),
        "6-segment READ, segment 3 ungranted".into(),
        "WRITE from gref 0xffffffff".into(),
    ];
    let n_variants = labels.len() as u64;
    variants(
        f,
        r,
        |i| labels[(i % n_variants) as usize].clone(),
        |f, i, id, index| {
            let one = |op, g| blkreq::rw(op, 1, 0, id, 0, &[Segment::page(g)]);
            match i % n_variants {
                0 => one(OP_READ, u32::MAX),
                1 => one(OP_READ, 0x7fff_ffff),
                2 => one(OP_READ, 0x10_0000),
                3 => one(OP_READ, free_in_table + (i / n_variants) as u32),
                4 => one(OP_WRITE, free_in_table + 500 + (i / n_variants) as u32),
                5 => one(OP_READ, ro_gref),
                6 => {
                    let mut segs: Vec<Segment> = (0..6)
                        .map(|k| Segment::page(f.data_gref(index + k)))
                        .collect();
                    segs[2].gref = free_in_table + 900;
                    blkreq::rw(OP_READ, 6, 0, id, 0, &segs)
                }
                _ => one(OP_WRITE, u32::MAX),
            }
        },
    )?;
    drop(ro);
    Ok(())
}

/// Grant references revoked before the request (READ and WRITE), and right after the
/// notification (a race the backend may win or lose).
fn revoked_gref(f: &mut Frontend, r: &mut CaseResult) -> Result<(), Error> {
    let labels = [
        "READ, revoked before",
        "WRITE, revoked before",
        "READ, revoked right after notify",
    ];
    let mut key_of = HashMap::new();
    let mut total = Tally::default();
    for i in 0..r.count {
        let v = (i % 3) as usize;
        let mut page = f.gnt.alloc(f.backend_id, 1, true)?;
        let gref = page.grefs()[0];
        if v < 2 {
            page.revoke()?;
        }
        let op = if v == 1 { OP_WRITE } else { OP_READ };
        let id = f.id();
        key_of.insert(id, labels[v].to_string());
        let e = blkreq::rw(op, 1, 0, id, 0, &[Segment::page(gref)]);
        f.c().ring.put(&e);
        f.c().ring.push();
        f.notify()?;
        if v == 2 {
            page.revoke()?;
        }
        let mut t = Tally {
            sent: 1,
            ..Tally::default()
        };
        let mut p = HashMap::from([(id, ())]);
        let timeout = f.timeout;
        f.collect(&mut p, &mut t, timeout)?;
        total.add(&t);
    }
    r.notes.extend(summarize(&total, &key_of));
    r.tally.add(&total);
    Ok(())
}

/// Indirect requests whose indirect pages are not granted, or are granted but hold
/// garbage.
fn indirect_garbage(f: &mut Frontend, r: &mut CaseResult, rng: &mut Rng) -> Result<(), Error> {
    let max_ind = f.c().info.max_indirect.clamp(1, 4096) as u64;
    let highest = f
        .data
        .grefs()
        .iter()
        .chain(f.indirect.grefs())
        .copied()
        .max()
        .unwrap_or(0);
    let labels = [
        "indirect gref 0xffffffff (never granted)",
        "indirect gref unused in-table",
        "granted page of random bytes",
        "granted page, random grefs, valid sectors",
        "valid segments, indirect_op garbage",
        "valid segments but the last first>last",
    ];
    let n_variants = labels.len() as u64;
    variants(
        f,
        r,
        |i| labels[(i % n_variants) as usize].to_string(),
        |f, i, id, index| {
            let page = index % crate::frontend::INDIRECT_PAGES as u32;
            let (gref, _) = f.indirect_page(page);
            match i % n_variants {
                0 => blkreq::indirect(OP_READ, 8, 0, id, 0, &[u32::MAX]),
                1 => blkreq::indirect(OP_READ, 8, 0, id, 0, &[highest + 2000 + i as u32]),
                2 => {
                    let mut bytes = vec![0u8; 4096];
                    rng.fill(&mut bytes);
                    f.fill_indirect_raw(page, &bytes);
                    let n = 1 + rng.next() % max_ind;
                    blkreq::indirect(OP_READ, n as u16, 0, id, 0, &[gref])
                }
                3 => {
                    let segs: Vec<Segment> = (0..64)
                        .map(|_| Segment::page((rng.next() as u32) | 0x1000_0000))
                        .collect();
                    f.fill_indirect(page, &segs);
                    blkreq::indirect(OP_READ, 64, 0, id, 0, &[gref])
                }
                4 => {
                    valid_indirect_page(f, page, 8);
                    let ops = [2u8, 3, 5, 6, 7, 200];
                    blkreq::indirect(ops[((i / n_variants) % 6) as usize], 8, 0, id, 0, &[gref])
                }
                _ => {
                    let mut segs: Vec<Segment> =
                        (0..16).map(|k| Segment::page(f.data_gref(k))).collect();
                    segs[15] = Segment {
                        gref: f.data_gref(15),
                        first_sect: 6,
                        last_sect: 1,
                    };
                    f.fill_indirect(page, &segs);
                    blkreq::indirect(OP_READ, 16, 0, id, 0, &[gref])
                }
            }
        },
    )
}

/// A valid request, notified, then rewritten with garbage and back (in the ring entry, or
/// in its indirect page) as fast as we can until the backend answers, for at most
/// `REWRITE_FOR`.
fn double_fetch(f: &mut Frontend, r: &mut CaseResult) -> Result<(), Error> {
    const REWRITE_FOR: Duration = Duration::from_secs(2);
    let mut rewrites = 0u64;
    let mut shields_failed = 0u64;
    let mut shields_lost = 0u64;
    let mut foreign_example: Option<String> = None;
    let mut key_of = HashMap::new();
    let mut total = Tally::default();
    for i in 0..r.count {
        // A valid READ just before the rewritten request: the first response then goes into
        // its slot, not into the one we are rewriting (responses reuse request slots in
        // order), and the rewriting stops at that first response.
        let shield = f.id();
        let shield_index = f.c().ring.req_prod_pvt;
        let e = f.valid_read(shield, shield_index);
        let answered = f.c().ring.rsp_prod();
        f.c().ring.put(&e);
        let id = f.id();
        let index = f.c().ring.req_prod_pvt;
        let sector = (i * 8) % (sectors(f) - 64);
        let gref = f.data_gref(index);
        let valid = blkreq::rw(OP_READ, 1, 0, id, sector, &[Segment::page(gref)]);
        let mut t = Tally {
            sent: 1,
            ..Tally::default()
        };
        if i % 2 == 0 {
            key_of.insert(id, "ring entry rewritten".to_string());
            // The same id in every version, so whichever copy the backend took is answered.
            let garbage = [
                blkreq::rw(OP_READ, 200, 0, id, sector, &[Segment::page(gref)]),
                blkreq::rw(77, 1, 0, id, sector, &[Segment::page(gref)]),
                blkreq::rw(OP_READ, 1, 0, id, sector, &[Segment::page(u32::MAX)]),
                blkreq::rw(OP_READ, 1, 0, id, u64::MAX - 3, &[Segment::page(gref)]),
                blkreq::rw(
                    OP_READ,
                    1,
                    0,
                    id,
                    sector,
                    &[Segment {
                        gref,
                        first_sect: 7,
                        last_sect: 0,
                    }],
                ),
                blkreq::indirect(OP_READ, 4000, 0, id, sector, &[u32::MAX; 8]),
            ];
            f.c().ring.put(&valid);
            f.c().ring.push();
            f.notify()?;
            let t0 = Instant::now();
            let mut k = 0usize;
            while f.c().ring.rsp_prod() == answered && t0.elapsed() < REWRITE_FOR {
                let e = if k % 2 == 0 {
                    &garbage[(k / 2) % garbage.len()]
                } else {
                    &valid
                };
                f.c().ring.rewrite(index, e);
                k += 1;
            }
            rewrites += k as u64;
        } else {
            key_of.insert(id, "indirect page rewritten".to_string());
            let page = index % crate::frontend::INDIRECT_PAGES as u32;
            valid_indirect_page(f, page, 8);
            let (igref, _) = f.indirect_page(page);
            let e = blkreq::indirect(OP_READ, 8, 0, id, sector, &[igref]);
            f.c().ring.put(&e);
            f.c().ring.push();
            f.notify()?;
            let bad_gref: Vec<Segment> = (0..8).map(|_| Segment::page(u32::MAX)).collect();
            let bad_sect: Vec<Segment> = (0..8)
                .map(|k| Segment {
                    gref: f.data_gref(k),
                    first_sect: 7,
                    last_sect: 0,
                })
                .collect();
            let t0 = Instant::now();
            let mut k = 0u64;
            while f.c().ring.rsp_prod() == answered && t0.elapsed() < REWRITE_FOR {
                match k % 3 {
                    0 => f.fill_indirect(page, &bad_gref),
                    1 => f.fill_indirect(page, &bad_sect),
                    _ => valid_indirect_page(f, page, 8),
                }
                k += 1;
            }
            rewrites += k;
        }
        // Both requests are answered when two responses are published. A response can
        // still land in the slot we were rewriting (our vCPU, capped, may be descheduled in
        // the middle of a rewrite); then its id is garbage and only the count tells.
        let deadline = Instant::now() + f.timeout;
        while f.c().ring.rsp_prod().wrapping_sub(answered) < 2 && Instant::now() < deadline {
            f.evt.wait(Duration::from_millis(50))?;
        }
        let got = f.c().ring.take_responses().unwrap_or_default();
        let (mut mine, mut shield_status, mut foreign) = (None, None, 0u64);
        for resp in &got {
            if resp.id == id {
                mine = Some(resp.status);
            } else if resp.id == shield {
                shield_status = Some(resp.status);
            } else {
                foreign += 1;
                if foreign_example.is_none() {
                    foreign_example = Some(format!(
                        "id {:#x} op {} status {} (rewritten request id {id:#x}, slots {shield_index}/{index}, {} responses)",
                        resp.id, resp.operation, resp.status, got.len()
                    ));
                }
            }
        }
        match mine {
            Some(s) => {
                t.status_of.insert(id, s);
                match s {
                    0 => t.okay += 1,
                    -1 => t.error += 1,
                    -2 => t.eopnotsupp += 1,
                    _ => t.other_status += 1,
                }
            }
            None if got.len() >= 2 => {
                t.status_lost += 1;
                t.status_of.insert(id, STATUS_LOST);
                foreign = foreign.saturating_sub(1);
            }
            None => t.no_response += 1,
        }
        match shield_status {
            Some(0) => {}
            None if got.len() >= 2 && foreign > 0 => {
                shields_lost += 1;
                foreign -= 1;
            }
            _ => shields_failed += 1,
        }
        t.unexpected += foreign;
        total.add(&t);
    }
    r.notes.extend(summarize(&total, &key_of));
    if shields_failed > 0 {
        r.notes.push(format!(
            "{shields_failed} of the valid READs before them not answered OKAY"
        ));
    }
    if let Some(e) = foreign_example {
        r.notes
            .push(format!("a response read with a foreign id: {e}"));
    }
    if total.status_lost + shields_lost > 0 {
        r.notes.push(format!(
            "{} rewritten and {shields_lost} valid requests answered, but the response landed in the slot being rewritten (status unknown)",
            total.status_lost
        ));
    }
    r.notes.push(format!(
        "{rewrites} rewrites in all ({:.0} per request) between the notification and the response; okay = the backend used a valid copy, error = a garbage copy",
        rewrites as f64 / r.count.max(1) as f64
    ));
    r.tally.add(&total);
    Ok(())
}

/// Notifications in a tight loop with nothing on the ring.
fn notify_storm(f: &mut Frontend, r: &mut CaseResult) -> Result<(), Error> {
    let t0 = Instant::now();
    let before = f.probe()?;
    let probe_before = t0.elapsed();
    let port = f.c().port;
    let start = Instant::now();
    let mut failed = 0u64;
    for _ in 0..r.count {
        if f.evt.notify(port).is_err() {
            failed += 1;
        }
    }
    let storm = start.elapsed();
    let t1 = Instant::now();
    let after = f.probe()?;
    let probe_after = t1.elapsed();
    r.ring_halted = !after;
    r.notes.push(format!(
        "{} notifications in {:.2} s ({:.0}/s), {failed} failed",
        r.count,
        storm.as_secs_f64(),
        r.count as f64 / storm.as_secs_f64().max(1e-9)
    ));
    r.notes.push(format!(
        "READ before the storm {} in {} ms, after it {} in {} ms",
        if before { "okay" } else { "FAILED" },
        probe_before.as_millis(),
        if after { "okay" } else { "FAILED" },
        probe_after.as_millis()
    ));
    Ok(())
}

/// A full ring of requests, then Closing/Closed (or a bogus Initialising) at once, the
/// ring and data pages revoked without waiting for a single response, as if the frontend
/// exited.
fn disconnect_mid_request(f: &mut Frontend, r: &mut CaseResult) -> Result<(), Error> {
    let mut total = Tally::default();
    for i in 0..r.count {
        if f.conn.is_none() {
            ensure_connected(f)?;
        }
        let data = f.gnt.alloc(f.backend_id, 32, true)?;
        let sectors = sectors(f);
        let entries = f.c().ring.entries;
        for k in 0..entries {
            let id = f.id();
            let segs: Vec<Segment> = (0..8)
                .map(|s| Segment::page(data.grefs()[((k * 8 + s) % 32) as usize]))
                .collect();
            let op = if k % 2 == 0 { OP_READ } else { OP_WRITE };
            let sector = (u64::from(k) * 64 + i * 4096) % (sectors - 64);
            f.c().ring.put(&blkreq::rw(op, 8, 0, id, sector, &segs));
        }
        f.c().ring.push();
        f.notify()?;
        let what = match i % 3 {
            0 => {
                f.set_state(state::CLOSING)?;
                f.set_state(state::CLOSED)?;
                "Closing+Closed"
            }
            1 => {
                f.set_state(state::CLOSED)?;
                "Closed"
            }
            _ => {
                f.set_state(state::INITIALISING)?;
                f.set_state(state::CLOSED)?;
                "Initialising then Closed"
            }
        };
        // Gone without waiting: ring, port and data pages revoked now.
        f.drop_connection();
        drop(data);
        total.sent += u64::from(entries);
        total.no_response += u64::from(entries);
        let t0 = Instant::now();
        let s = f.wait_backend(&[state::CLOSED], Duration::from_secs(30));
        r.notes.push(format!(
            "{entries} requests (8 x 4 KiB, reads and writes) then {what}: backend {} after {} ms",
            match s {
                Ok(_) => "Closed".to_string(),
                Err(s) => format!("still in state {s}"),
            },
            t0.elapsed().as_millis()
        ));
    }
    r.tally.add(&total);
    ensure_connected(f)?;
    Ok(())
}

/// Reconnects with ring page orders 2, above the backend's maximum, 0 (as an order key),
/// 4, 1 and 32, filling each ring with READs where the backend accepts it.
fn reconnect_order(f: &mut Frontend, r: &mut CaseResult) -> Result<(), Error> {
    let max = f.c().info.max_order;
    let orders = [2, max + 1, 0, 4, 1, 32];
    for i in 0..r.count {
        let order = orders[(i % orders.len() as u64) as usize];
        f.close()?;
        let t0 = Instant::now();
        match f.connect(order, true)? {
            Ok(()) => {
                let entries = f.c().ring.entries;
                let t = f.run_batch(u64::from(entries) * 2, |f, id, index| {
                    f.valid_read(id, index % DATA_PAGES as u32)
                })?;
                r.notes.push(format!(
                    "order {order}: connected ({} pages, {entries} entries) in {} ms; {} of {} READs okay",
                    1u32 << order.min(5),
                    t0.elapsed().as_millis(),
                    t.okay,
                    t.sent
                ));
                r.tally.add(&t);
            }
            Err(s) => {
                r.notes.push(format!(
                    "order {order}: refused by the backend (state {s}){}",
                    if order > max {
                        " as it must"
                    } else {
                        " BUT IT IS WITHIN max-ring-page-order"
                    }
                ));
            }
        }
    }
    f.close()?;
    ensure_connected(f)?;
    r.ring_halted = !f.probe()?;
    r.notes.push(format!("backend max-ring-page-order {max}"));
    Ok(())
}

/// The request layouts a frontend may name, on fresh one-page connections: `protocol =
/// x86_32-abi`, no `protocol` key (which the backend must take as x86_32, as the stock
/// backend does on x86), and `x86_64-abi`. Per layout: a direct WRITE of two pages and an
/// indirect WRITE of two pages of random data (at different sectors of the disk's middle),
/// then READs of both into zeroed pages; every response must be OKAY and the data read back
/// equal. A backend reading a layout wrong would take the wrong id, sector, segment or
/// indirect page, which shows as an error, a missing response or other data.
fn abi_layouts(f: &mut Frontend, r: &mut CaseResult, rng: &mut Rng) -> Result<(), Error> {
    const VARIANTS: [(Option<&str>, Layout, &str); 3] = [
        (Some(PROTOCOL_X86_32), Layout::X86_32, "protocol=x86_32-abi"),
        (None, Layout::X86_32, "no protocol key (x86_32)"),
        (Some(PROTOCOL_X86_64), Layout::X86_64, "protocol=x86_64-abi"),
    ];
    let middle = sectors(f) / 2 / 8 * 8;
    let mut failures = Vec::new();
    for (n, &(key, layout, label)) in VARIANTS.iter().take(r.count as usize).enumerate() {
        f.protocol = (key, layout);
        if let Err(s) = f.connect(0, false)? {
            failures.push(format!(
                "{label}: the backend refused the connection (state {s})"
            ));
            continue;
        }
        let indirect = f.c().info.max_indirect >= 2;
        let sector = middle + n as u64 * 64;
        // Data pages 0-3 are written (0-1 direct, 2-3 indirect), 4-7 read into.
        let mut data = vec![0u8; 4 * PAGE_SIZE];
        rng.fill(&mut data);
        f.data.mem().write_bytes(0, &data);
        f.data
            .mem()
            .write_bytes(4 * PAGE_SIZE, &vec![0u8; 4 * PAGE_SIZE]);
        let pages = |f: &Frontend, first: u32| {
            [
                Segment::page(f.data_gref(first)),
                Segment::page(f.data_gref(first + 1)),
            ]
        };
        let mut tally = Tally::default();
        for (op, first) in [(OP_WRITE, 0u32), (OP_READ, 4)] {
            let direct = pages(f, first);
            let via_indirect = pages(f, first + 2);
            // Indirect page 0 for the write, 1 for the read.
            let ipage = u32::from(op == OP_READ);
            f.fill_indirect(ipage, &via_indirect);
            let mut i = 0;
            let t = f.run_batch(if indirect { 2 } else { 1 }, |f, id, _| {
                i += 1;
                if i == 1 {
                    blkreq::rw(op, 2, 0, id, sector, &direct)
                } else {
                    blkreq::indirect(op, 2, 0, id, sector + 16, &[f.indirect_page(ipage).0])
                }
            })?;
            tally.add(&t);
        }
        let mut back = vec![0u8; 4 * PAGE_SIZE];
        f.data.mem().read_bytes(4 * PAGE_SIZE, &mut back);
        let compared = if indirect { 4 } else { 2 } * PAGE_SIZE;
        let equal = back[..compared] == data[..compared];
        let what = if indirect {
            "2 direct + 2 indirect requests"
        } else {
            "2 direct requests (no indirect offered)"
        };
        let note = format!(
            "{label}: {what}: okay {}, error {}, no response {}; {} KiB read back {}",
            tally.okay,
            tally.error + tally.eopnotsupp + tally.other_status,
            tally.no_response,
            compared / 1024,
            if equal { "equal" } else { "DIFFERENT" }
        );
        if !equal || tally.okay != tally.sent || tally.no_response > 0 || tally.unexpected > 0 {
            failures.push(note.clone());
        }
        r.notes.push(note);
        r.tally.add(&tally);
    }
    // Later cases use the native layout.
    f.protocol = (Some(PROTOCOL_X86_64), Layout::X86_64);
    if let Err(s) = f.connect(0, false)? {
        failures.push(format!("reconnecting with x86_64-abi: refused (state {s})"));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error(format!(
            "abi-layouts failed: {}",
            failures.join("; ")
        )))
    }
}

/// Handshakes with one bad key each, in turn: a ring whose request producer is already far
/// ahead of its responses, a frontend state no frontend may write (7, Reconfiguring; 42)
/// instead of Initialised, an event channel that does not exist or is no number, a ring
/// reference never granted or no number, and a queue count of 0, one beyond any
/// backend's (2^32 - 1), no number, or 2 with no `queue-N` directories. Each
/// of the `count` attempts must be refused (the backend goes to Closing or Closed, never
/// Connected); dom0 meanwhile counts the domain's rings and its own memory before and after
/// (a refused connection must leave nothing behind). Ends with a good connection that
/// answers a READ.
fn bad_connect(f: &mut Frontend, r: &mut CaseResult) -> Result<(), Error> {
    const BAD: [(&str, &str); 12] = [
        (crate::frontend::BAD_REQ_PROD, "4000000000"),
        (crate::frontend::BAD_STATE, "7"),
        (crate::frontend::BAD_STATE, "42"),
        ("event-channel", "65535"),
        ("event-channel", "0"),
        ("event-channel", "port"),
        ("ring-ref", "2147483632"),
        ("ring-ref", "ring"),
        ("multi-queue-num-queues", "0"),
        ("multi-queue-num-queues", "4294967295"),
        ("multi-queue-num-queues", "many"),
        ("multi-queue-num-queues", "2"),
    ];
    let mut refused = [0u64; BAD.len()];
    let mut accepted = [0u64; BAD.len()];
    let t0 = Instant::now();
    for i in 0..r.count {
        let k = (i % BAD.len() as u64) as usize;
        if f.conn.is_some() {
            f.close()?;
        }
        match f.connect_with(0, false, Some(BAD[k]))? {
            Ok(()) => accepted[k] += 1,
            Err(_) => refused[k] += 1,
        }
        // Closing and Closed from this side too, so the next handshake starts afresh.
        f.close()?;
    }
    let mut failures = Vec::new();
    for (k, (key, value)) in BAD.iter().enumerate() {
        let note = format!(
            "{key}={value}: refused {} of {}",
            refused[k],
            refused[k] + accepted[k]
        );
        if accepted[k] > 0 {
            failures.push(note.clone());
        }
        r.notes.push(note);
    }
    r.notes.push(format!(
        "{} handshakes in {} ms",
        r.count,
        t0.elapsed().as_millis()
    ));
    ensure_connected(f)?;
    r.ring_halted = !f.probe()?;
    if r.ring_halted {
        failures.push("the good connection after them does not answer a READ".into());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error(format!(
            "bad-connect: connected with a bad key: {}",
            failures.join("; ")
        )))
    }
}

/// Segments of the largest request (1 MiB), what `page-flood` sends.
const FLOOD_SEGMENTS: u16 = 256;

/// Sends `count` 1 MiB indirect READs (256 segments) on a ring of the largest order the
/// backend offers, keeping every slot of the ring busy, as a guest that wants to pin as much
/// of dom0's memory as it can: a backend without a bound maps 256 pages per slot (512 MiB
/// for a 512-slot ring). The segments cycle over the data pages (one guest page granted many
/// times over costs the guest nothing more). Every request must be answered OKAY: a bounded
/// backend holds the rest on the ring, it does not refuse them. dom0 measures the memory
/// (scripts/rig.d/dom0/hostile). Ends on a fresh one-page ring.
fn page_flood(f: &mut Frontend, r: &mut CaseResult) -> Result<(), Error> {
    const ORDER: u32 = 4;
    f.close()?;
    if let Err(s) = f.connect(ORDER, true)? {
        return Err(Error(format!(
            "page-flood: backend refused a ring of order {ORDER} (state {s})"
        )));
    }
    let info = f.c().info;
    if info.max_indirect < u32::from(FLOOD_SEGMENTS) {
        return Err(Error(format!(
            "page-flood: the backend offers {} segments per request, {FLOOD_SEGMENTS} needed",
            info.max_indirect
        )));
    }
    let entries = f.c().ring.entries;
    let request_sectors = u64::from(FLOOD_SEGMENTS) * 8;
    if info.sectors < 2 * request_sectors {
        return Err(Error(format!(
            "page-flood: the disk has {} sectors, too small",
            info.sectors
        )));
    }
    // One segment table for every request: the backend copies it when it takes a request.
    let segments: Vec<Segment> = (0..u32::from(FLOOD_SEGMENTS))
        .map(|k| Segment::page(f.data_gref(k)))
        .collect();
    f.fill_indirect(0, &segments);
    let indirect_gref = f.indirect_page(0).0;
    let slots = info.sectors / request_sectors;
    let t0 = Instant::now();
    let tally = f.run_batch(r.count, |_, id, _| {
        blkreq::indirect(
            OP_READ,
            FLOOD_SEGMENTS,
            0,
            id,
            id % slots * request_sectors,
            &[indirect_gref],
        )
    })?;
    let ms = t0.elapsed().as_millis().max(1);
    r.notes.push(format!(
        "{} requests of 1 MiB on a ring of order {ORDER} ({entries} slots, all kept busy): okay {}, error {}, no response {} in {ms} ms ({} MiB/s)",
        tally.sent,
        tally.okay,
        tally.error,
        tally.no_response,
        tally.okay as u128 * 1000 / ms
    ));
    let served = tally.okay == r.count && tally.sent == r.count;
    r.tally.add(&tally);
    f.close()?;
    ensure_connected(f)?;
    if served {
        Ok(())
    } else {
        Err(Error(format!(
            "page-flood: {} of {} requests answered OKAY ({} errors, {} without response)",
            tally.okay, r.count, tally.error, tally.no_response
        )))
    }
}
