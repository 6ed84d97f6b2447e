//! `rblk-hostile`: a hostile Xen block frontend in user space, for the rig.
//!
//! Run in a PV domU whose vbd no kernel blkfront claimed (boot it with
//! `initcall_blacklist=xlblk_init`), it does the frontend handshake itself through
//! `/dev/xen/xenbus` (xenstore), `/dev/xen/gntalloc` (ring and data pages granted to the
//! backend's domain) and `/dev/xen/evtchn`, proves the ring with one valid READ, and then
//! runs the hostile cases (see `cases.rs` and `Documentation/hostile.md`), printing one
//! JSON line per case.
//!
//! ```text
//! rblk-hostile [--devid N] --case NAME|all [--count K] [--json] [--timeout-ms MS]
//!              [--seed S] [--loop-until-xs KEY] [--status-xs KEY]
//! ```
//!
//! `--loop-until-xs KEY` repeats `--case all` until the xenstore key KEY (relative to this
//! domain's home) exists, checked between cases; `--status-xs KEY` writes progress there.
#![deny(unsafe_code)]

mod blkreq;
mod cases;
mod frontend;
mod xen;
mod xenstore;

use frontend::Frontend;
use serde_json::json;
use std::time::{Duration, Instant};

/// An error that ends the program, with what failed.
#[derive(Debug)]
pub(crate) struct Error(pub(crate) String);

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error(e.to_string())
    }
}

impl From<xenstore::XsError> for Error {
    fn from(e: xenstore::XsError) -> Self {
        Error(e.to_string())
    }
}

struct Args {
    devid: Option<u32>,
    case: String,
    count: Option<u64>,
    json: bool,
    timeout: Duration,
    seed: u64,
    loop_until: Option<String>,
    status_key: Option<String>,
}

const USAGE: &str = "usage: rblk-hostile [--devid N] --case NAME|all [--count K] [--json] \
[--timeout-ms MS] [--seed S] [--loop-until-xs KEY] [--status-xs KEY] | --list";

fn parse_args() -> Result<Args, Error> {
    let mut a = Args {
        devid: None,
        case: String::new(),
        count: None,
        json: false,
        timeout: Duration::from_secs(5),
        seed: 0x5eed_1234_abcd_0001,
        loop_until: None,
        status_key: None,
    };
    let mut it = std::env::args().skip(1);
    let bad = |what: &str| Error(format!("{what}\n{USAGE}"));
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| bad(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--devid" => a.devid = Some(value()?.parse().map_err(|_| bad("bad --devid"))?),
            "--case" => a.case = value()?,
            "--count" => a.count = Some(value()?.parse().map_err(|_| bad("bad --count"))?),
            "--json" => a.json = true,
            "--timeout-ms" => {
                a.timeout =
                    Duration::from_millis(value()?.parse().map_err(|_| bad("bad --timeout-ms"))?)
            }
            "--seed" => a.seed = value()?.parse().map_err(|_| bad("bad --seed"))?,
            "--loop-until-xs" => a.loop_until = Some(value()?),
            "--status-xs" => a.status_key = Some(value()?),
            "--list" => {
                for (name, count) in cases::CASES {
                    println!("{name} {count}");
                }
                for (name, count) in cases::CHECKS {
                    println!("{name} {count} (check: not in --case all)");
                }
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(bad(&format!("unknown argument {other}"))),
        }
    }
    if a.case.is_empty() {
        return Err(bad("--case is required"));
    }
    if a.case != "all" && cases::default_count(&a.case).is_none() {
        return Err(bad(&format!("unknown case {} (--list shows them)", a.case)));
    }
    Ok(a)
}

fn state_name(s: u32) -> &'static str {
    match s {
        1 => "Initialising",
        2 => "InitWait",
        3 => "Initialised",
        4 => "Connected",
        5 => "Closing",
        6 => "Closed",
        _ => "Unknown",
    }
}

fn emit(a: &Args, v: serde_json::Value) {
    if a.json {
        println!("{v}");
    } else {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
}

fn case_json(r: &cases::CaseResult, pass: u32, connections: u32) -> serde_json::Value {
    let t = &r.tally;
    json!({
        "case": r.case,
        "pass": pass,
        "count": r.count,
        "sent": t.sent,
        "responses": {"okay": t.okay, "error": t.error, "eopnotsupp": t.eopnotsupp, "other": t.other_status},
        "no_response": t.no_response,
        "unexpected_responses": t.unexpected,
        "answered_status_lost": t.status_lost,
        "bogus_rsp_prod": t.bogus_rsp_prod,
        "ring_halted": r.ring_halted,
        "backend_state": r.backend_state,
        "backend_state_name": state_name(r.backend_state),
        "elapsed_s": (r.elapsed.as_secs_f64() * 100.0).round() / 100.0,
        "connections": connections,
        "notes": r.notes,
    })
}

fn run(a: &Args) -> Result<(), Error> {
    let started = Instant::now();
    let mut f = Frontend::open(a.devid, a.timeout)?;
    let mut rng = cases::Rng::new(a.seed);
    if let Some(k) = &a.status_key {
        f.xs.write(k, "connecting")?;
    }
    match f.connect(0, false)? {
        Ok(()) => {}
        Err(s) => {
            return Err(Error(format!(
                "backend {} refused the first connection (state {s})",
                f.be
            )))
        }
    }
    let first_read = f.probe()?;
    let info = f.c().info;
    emit(
        a,
        json!({
            "case": "handshake", "domid": f.domid, "devid": f.devid, "backend": f.be,
            "backend_id": f.backend_id, "sectors": info.sectors, "sector_size": info.sector_size,
            "max_indirect_segments": info.max_indirect, "max_ring_page_order": info.max_order,
            "first_read": if first_read { "okay" } else { "FAILED" },
        }),
    );
    if !first_read {
        return Err(Error(
            "the first well-formed READ was not answered OKAY".into(),
        ));
    }
    let names: Vec<&str> = if a.case == "all" {
        cases::CASES.iter().map(|(n, _)| *n).collect()
    } else {
        vec![a.case.as_str()]
    };
    let mut pass = 0u32;
    let mut done_cases = 0u32;
    'passes: loop {
        pass += 1;
        for name in &names {
            if let Some(key) = &a.loop_until {
                if pass > 1 && f.xs.try_read(key).is_some() {
                    break 'passes;
                }
            }
            let default = cases::default_count(name).unwrap_or(1);
            let r = cases::run(&mut f, name, a.count.unwrap_or(default), &mut rng)?;
            done_cases += 1;
            emit(a, case_json(&r, pass, f.connections));
            if let Some(k) = &a.status_key {
                f.xs.write(
                    k,
                    &format!(
                        "running pass={pass} cases={done_cases} connections={}",
                        f.connections
                    ),
                )?;
            }
        }
        let stop = match &a.loop_until {
            None => true,
            Some(key) => f.xs.try_read(key).is_some(),
        };
        if stop {
            break;
        }
    }
    let complete_passes = if a.loop_until.is_some() && done_cases % names.len() as u32 != 0 {
        pass - 1
    } else {
        pass
    };
    let final_state = f.close()?;
    emit(
        a,
        json!({
            "case": "summary", "passes": complete_passes, "cases_run": done_cases,
            "connections": f.connections, "final_backend_state": final_state,
            "elapsed_s": started.elapsed().as_secs(),
        }),
    );
    if let Some(k) = &a.status_key {
        f.xs.write(
            k,
            &format!(
                "done passes={complete_passes} cases={done_cases} connections={}",
                f.connections
            ),
        )?;
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rblk-hostile: {}", e.0);
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        emit(&args, json!({"case": "error", "error": e.0}));
        eprintln!("rblk-hostile: {}", e.0);
        std::process::exit(1);
    }
}
