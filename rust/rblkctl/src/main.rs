#![forbid(unsafe_code)]
//! `rblkctl`: the operator's view of rblkback's per-domain disk I/O limits and of its
//! work-conserving scheduler (weights, reservations, scheduling groups).
//!
//! It reads and writes only the sysfs files documented in
//! `Documentation/ABI/testing/sysfs-module-rblkback` and the scheduler's interface; limit
//! and scheduler commands are checked with the code the kernel module checks them with
//! (the `throttle` and `sched` crates) before anything is written.
//! Exit status: 0 success, 1 the system failed us (module not loaded, a refused or failed
//! read or write), 2 bad usage or an invalid value (nothing was written).

mod cli;
mod error;
mod latency;
mod limits_line;
mod rates;
mod report;
mod sched_files;
mod sysfs;
mod units;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use cli::{Command, Invocation};
use error::Error;
use sysfs::{SettingsOwner, Snapshot, Sysfs};

fn main() -> ExitCode {
    let outcome = cli::parse(std::env::args_os().skip(1)).and_then(run);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.report(),
    }
}

fn run(invocation: Invocation) -> Result<(), Error> {
    let (sysfs_root, command) = match invocation {
        Invocation::Print(text) => return print(&text),
        Invocation::Run {
            sysfs_root,
            command,
        } => (sysfs_root, command),
    };
    let sysfs = Sysfs::new(sysfs_root);
    match command {
        Command::Completions { shell } => print(&cli::completion_script(shell)),
        Command::Status { json, interval } => {
            let (before, after) = two_samples(&sysfs, interval, |_| Ok(()))?;
            let status = report::Status::new(&after, before.as_ref());
            if json {
                print(&status.to_json())
            } else {
                print(&status.to_table())
            }
        }
        Command::Get {
            domid,
            json,
            interval,
        } => {
            let domid = limits_line::parse_domid(&domid).map_err(Error::Invalid)?;
            let need_domain = |snapshot: &Snapshot| {
                if snapshot.domain(domid).is_some() {
                    Ok(())
                } else {
                    Err(Error::Failed(format!(
                        "domain {domid} has no entry (no {})",
                        sysfs.domain_dir(domid).display()
                    )))
                }
            };
            let (before, after) = two_samples(&sysfs, interval, need_domain)?;
            need_domain(&after)?;
            let status = report::Status::new(&after, before.as_ref()).only_domain(domid);
            if json {
                print(&status.domain_json())
            } else {
                print(&status.to_table())
            }
        }
        Command::Top { interval, count } => top(&sysfs, interval, count),
        Command::Groups { json } => {
            let groups = report::Groups::new(sysfs.groups()?);
            if json {
                print(&groups.to_json())
            } else {
                print(&groups.to_table())
            }
        }
        Command::Set {
            domid,
            settings,
            dry_run,
        } => {
            let line = limits_line::set_line(&domid, &settings).map_err(Error::Invalid)?;
            write_line(&sysfs, &line, dry_run)
        }
        Command::Clear { domid, dry_run } => {
            let line = limits_line::clear_line(&domid).map_err(Error::Invalid)?;
            write_line(&sysfs, &line, dry_run)
        }
        Command::Group {
            name,
            settings,
            dry_run,
        } => {
            sched_files::check_group_name(&name).map_err(Error::Invalid)?;
            let settings = sched_files::group_settings(&settings).map_err(Error::Invalid)?;
            write_settings(&sysfs, &SettingsOwner::Group(name), &settings, dry_run)
        }
        Command::Vbd {
            domid,
            devid,
            settings,
            dry_run,
        } => {
            let domid = limits_line::parse_domid(&domid).map_err(Error::Invalid)?;
            let devid = sched_files::parse_devid(&devid).map_err(Error::Invalid)?;
            let settings = sched_files::vbd_settings(&settings).map_err(Error::Invalid)?;
            write_settings(
                &sysfs,
                &SettingsOwner::Vbd { domid, devid },
                &settings,
                dry_run,
            )
        }
    }
}

/// One snapshot, or with a non-zero interval two of them that far apart (for rates).
/// `check_first` runs on the first so that a hopeless request fails before the wait.
fn two_samples(
    sysfs: &Sysfs,
    interval: Duration,
    check_first: impl Fn(&Snapshot) -> Result<(), Error>,
) -> Result<(Option<Snapshot>, Snapshot), Error> {
    let first = sysfs.snapshot()?;
    check_first(&first)?;
    if interval.is_zero() {
        return Ok((None, first));
    }
    thread::sleep(interval);
    let second = sysfs.snapshot()?;
    Ok((Some(first), second))
}

fn top(sysfs: &Sysfs, interval: Duration, count: Option<u64>) -> Result<(), Error> {
    // Escape codes only for a person watching; a pipe or file gets plain tables.
    let clear_screen = io::stdout().is_terminal();
    let mut previous = sysfs.snapshot()?;
    let mut shown: u64 = 0;
    while count.map_or(true, |count| shown < count) {
        thread::sleep(interval);
        let current = sysfs.snapshot()?;
        let table = report::Status::new(&current, Some(&previous)).to_table();
        let frame = if clear_screen {
            format!("\x1b[H\x1b[2J{table}")
        } else if shown == 0 {
            table
        } else {
            format!("\n{table}")
        };
        print(&frame)?;
        previous = current;
        shown += 1;
    }
    Ok(())
}

fn write_line(sysfs: &Sysfs, line: &limits_line::LimitsLine, dry_run: bool) -> Result<(), Error> {
    if dry_run {
        return print(line.text());
    }
    sysfs.write_limits(line)
}

fn write_settings(
    sysfs: &Sysfs,
    owner: &SettingsOwner,
    settings: &[sched_files::FileSetting],
    dry_run: bool,
) -> Result<(), Error> {
    if !dry_run {
        return sysfs.write_settings(owner, settings);
    }
    // What a shell would run to do the same: `echo` adds the newline the write carries.
    let dir = sysfs.settings_dir(owner);
    let commands: String = settings
        .iter()
        .map(|setting| {
            let path = dir.join(setting.file);
            match setting.value.as_str() {
                "" => format!("echo > {}\n", path.display()),
                value => format!("echo {value} > {}\n", path.display()),
            }
        })
        .collect();
    print(&commands)
}

/// Writes to stdout; a reader that went away (`rblkctl top | head`) ends us quietly.
fn print(text: &str) -> Result<(), Error> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(Error::from_stdout)
}
