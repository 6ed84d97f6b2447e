//! The command line, declared with clap's derive API: the subcommands, their options and
//! help texts, and the shell completion scripts generated from them (`clap_complete`).
//!
//! `--sysfs-root` (global), `--help` and `--version` may come before or after the
//! subcommand, a subcommand's own options after it. Only what belongs to the command line
//! is checked here (an interval, a count); domain ids and limits stay text for
//! `limits_line`, which checks them with the kernel's parser and names the token at fault.
//! Operands that look like negative numbers (`-7`) are operands, so that
//! `rblkctl set -7 iops=1` is refused by that check, naming the domain id, rather than as
//! an unknown option.
//!
//! Help and version are clap's "errors" that go to stdout with exit status 0; every other
//! error clap finds is a usage error, exit status 2 ([`Error::Usage`]), as clap itself
//! would exit.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::error::Error;

/// Where sysfs is mounted unless told otherwise.
const DEFAULT_SYSFS_ROOT: &str = "/sys";
/// Environment variable naming another sysfs root (for tests and chroots).
const SYSFS_ROOT_ENV: &str = "RBLKCTL_SYSFS_ROOT";
/// Longest sampling interval accepted: longer is almost certainly a typo.
const MAX_INTERVAL_S: f64 = 3600.0;
/// The program name in help, usage and completion scripts, whatever argv[0] is.
const NAME: &str = "rblkctl";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub(crate) enum Invocation {
    /// Help or the version: print this text on stdout, exit status 0.
    Print(String),
    /// Run `command` against the sysfs tree mounted at `sysfs_root` (`/sys` on a real
    /// host).
    Run {
        sysfs_root: PathBuf,
        command: Command,
    },
}

const ROOT_TEMPLATE: &str = "\
{name} {version}: {about}

{usage-heading} {usage}

{all-args}{after-help}";

const ROOT_AFTER_HELP: &str = "\
Limit keys: iops, bps, read_iops, write_iops, read_bps, write_bps (per second, 0 = unlimited)
Scheduler keys: weight (1..10000), reservation_iops, reservation_bps (per second, 0 = none),
latency_target_us (µs, 0 = none)

--sysfs-root, --help and --version may come before or after the command, a command's own
options after it. 'rblkctl <command> --help' (or 'rblkctl help <command>') shows them.

Exit status: 0 done; 1 the system failed (rblkback not loaded, a read or write refused);
2 bad usage or an invalid limit or setting (nothing was written).";

/// The command line as clap reads it.
#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    propagate_version = true,
    about = "show and set rblkback's per-domain disk I/O limits and scheduler settings",
    help_template = ROOT_TEMPLATE,
    after_help = ROOT_AFTER_HELP,
    // A bare `rblkctl` is a usage error like any other, not the help on stderr.
    arg_required_else_help = false,
)]
struct Cli {
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        // Last in every command's options: it is the one they all share.
        display_order = 100,
        help = "Where sysfs is mounted [default: $RBLKCTL_SYSFS_ROOT if set, else /sys]"
    )]
    sysfs_root: Option<String>,

    #[command(subcommand)]
    command: Command,
}

const STATUS_ABOUT: &str = "\
Shows the module parameters and, for every domain under /sys/module/rblkback/domains/, its six
limits (- = unlimited), its scheduler settings (weight, reservations; - = none), its counters
and its live rates, measured over two samples S seconds apart: requests, operations and bytes
per second, the share of time its rings were held by its limit, its share of the requests
admitted to all domains, and how often its rings were held by its limit and by the scheduler.
Scheduler files an older rblkback lacks show as - (null in JSON). 'rblkctl groups' shows the
scheduling groups.";

const TOP_ABOUT: &str = "\
Shows the status table with rates, refreshed every S seconds, until interrupted or N times. On
a terminal the screen is cleared before each table; otherwise the tables follow each other,
separated by a blank line.";

const GROUPS_ABOUT: &str = "\
Shows the scheduling groups under /sys/module/rblkback/groups/: per group its window (the most
work, in op_size units, in flight on the device while two or more of its vbds have work), the
units in flight now, the requests dispatched, the times a ring was held because the window was
full, and the number of vbds. An rblkback without the scheduler has no groups.";

const GET_ABOUT: &str = "\
Shows one domain as 'status' does. With --json, prints the domain's object alone (the same
shape as one element of status's \"domains\").";

const SET_ABOUT: &str = "\
Sets limits and scheduler settings of domain DOMID with one write of '<domid> key=value ...'
to /sys/module/rblkback/domains/limits. Keys not given keep their value. The domain need not
exist yet. New limits apply from the next timeslice.

Every token is checked as the kernel checks it before anything is written; an invalid one is
named and nothing is written (exit status 2).";

const SET_AFTER_HELP: &str = "\
Limit keys (per second, 0 = unlimited):
  iops, read_iops, write_iops    operations, at most 10000000
  bps, read_bps, write_bps       bytes, at most 1099511627776 (1TiB)

Scheduler keys (how a contended device is divided among the domains with work on it):
  weight                         share against the other domains, 1..10000
                                 (default: the module parameter default_weight, 100)
  reservation_iops               operations per second guaranteed while the domain has work,
                                 at most 10000000 (0 = none)
  reservation_bps                bytes per second guaranteed while the domain has work,
                                 at most 1099511627776 (1TiB) (0 = none)
  latency_target_us              protects the domain: while more than 1 % of its requests
                                 take longer (µs), the domains without a target on its
                                 devices are held back; at most 1099511627776 (0 = none)

Values are unsigned decimal numbers (the module's number format); 'unlimited' (= 0) for a
limit, 'none' (= 0) for a reservation or a latency target. Byte values (the bps keys and reservation_bps) may
carry a binary unit: K, M, G, T or KiB, MiB, GiB, TiB (20M = 20MiB = 20971520); rblkctl
writes the plain number.

Examples:
  rblkctl set 7 iops=500 bps=20M
  rblkctl set 7 weight=200 reservation_iops=50 reservation_bps=10M iops=300";

const CLEAR_ABOUT: &str = "\
Drops every limit and scheduler setting set for domain DOMID (writes '<domid> clear' to
/sys/module/rblkback/domains/limits): the domain goes back to the module defaults
default_iops, default_bps and default_weight, with no reservation.";

const GROUP_ABOUT: &str = "\
Sets a scheduling group's window, its latency target or its pool's limits: each KEY=VALUE is written to its file in
/sys/module/rblkback/groups/NAME/. The window is the most work in flight on the group's device
while two or more of its vbds have work, in op_size units (a request counts ceil(bytes/op_size),
at least 1). The pool's limits are shared by all the group's vbds, beside each domain's own.
The group must exist ('rblkctl groups' lists them).

The value is checked as the kernel checks it before anything is written; an invalid one is
named and nothing is written (exit status 2).";

const GROUP_AFTER_HELP: &str = "\
Keys:
  window                         1..4096 op_size units
  iops_limit, bps_limit          the group's pool, per second, shared by its vbds
                                 (0 or 'unlimited' = none; byte units for bps_limit)
  latency_target_us              the device latency to hold, in microseconds: the window
                                 then adapts (PARDA's law) up to 'window'; 0 = fixed

Examples:
  rblkctl group vdb window=16
  rblkctl group vdb latency_target_us=20000
  rblkctl group tenants iops_limit=300";

const VBD_ABOUT: &str = "\
Sets a vbd's scheduler settings: each KEY=VALUE is written to its file in
/sys/bus/xen-backend/devices/vbd-DOMID-DEVID/sched/, in the order given, one write each. The
vbd must exist.

Every value is checked as the kernel checks it before anything is written; an invalid one is
named and nothing is written (exit status 2).";

const VBD_AFTER_HELP: &str = "\
Keys:
  weight                         1..10000 (default 100): splits the domain's share among its
                                 vbds on one device
  group                          the scheduling group to move the vbd to: 1 to 31 of
                                 A-Z a-z 0-9 _ . - ; empty (group=) goes back to the default
                                 group, named after the backing disk (vdb for /dev/vdb3)
  iops_limit, bps_limit          the vbd's own limits, per second, inside its domain's
                                 (0 or 'unlimited' = none; byte units for bps_limit)

Examples:
  rblkctl vbd 7 51712 weight=300
  rblkctl vbd 7 51728 group=tenants
  rblkctl vbd 7 51728 group=
  rblkctl vbd 7 51712 iops_limit=100";

const COMPLETIONS_ABOUT: &str = "\
Prints the completion script for SHELL on stdout, for example:
  rblkctl completions bash > /etc/bash_completion.d/rblkctl
  rblkctl completions zsh > \"${fpath[1]}/_rblkctl\"
  rblkctl completions fish > ~/.config/fish/completions/rblkctl.fish";

const DOMID_HELP: &str = "The domain id (0..32751)";
const SAMPLE_INTERVAL_HELP: &str = "Seconds between the two samples (0 = no rates, no wait)";
const DRY_RUN_HELP: &str = "Print the line instead of writing it";
const DRY_RUN_FILES_HELP: &str = "Print what would be written where (as echo commands) instead";

/// One subcommand with its arguments, still as text where the limit validation (which
/// names bad tokens) wants to see what the operator typed.
#[derive(Debug, PartialEq, Subcommand)]
pub(crate) enum Command {
    /// Every domain once; rates over `interval` unless it is zero.
    #[command(
        about = "Every domain's limits, scheduler settings, counters and rates",
        long_about = STATUS_ABOUT
    )]
    Status {
        #[arg(
            long,
            help = "Print JSON instead of a table (rates are null when not measured)"
        )]
        json: bool,
        #[arg(
            long,
            value_name = "S",
            default_value = "1",
            value_parser = parse_interval,
            allow_negative_numbers = true,
            help = SAMPLE_INTERVAL_HELP
        )]
        interval: Duration,
    },
    /// The status table every `interval`, `count` times or forever.
    #[command(about = "The status table, refreshed every S seconds", long_about = TOP_ABOUT)]
    Top {
        #[arg(
            long,
            value_name = "S",
            default_value = "1",
            value_parser = parse_refresh_interval,
            allow_negative_numbers = true,
            help = "Seconds between refreshes (above 0)"
        )]
        interval: Duration,
        #[arg(
            long,
            value_name = "N",
            value_parser = parse_count,
            allow_negative_numbers = true,
            help = "Stop after N tables [default: until interrupted]"
        )]
        count: Option<u64>,
    },
    /// The scheduling groups once.
    #[command(about = "The scheduling groups: windows and their use", long_about = GROUPS_ABOUT)]
    Groups {
        #[arg(long, help = "Print JSON instead of a table")]
        json: bool,
    },
    /// One domain.
    #[command(about = "One domain", long_about = GET_ABOUT)]
    Get {
        #[arg(allow_negative_numbers = true, help = DOMID_HELP)]
        domid: String,
        #[arg(long, help = "Print JSON instead of a table")]
        json: bool,
        #[arg(
            long,
            value_name = "S",
            default_value = "1",
            value_parser = parse_interval,
            allow_negative_numbers = true,
            help = SAMPLE_INTERVAL_HELP
        )]
        interval: Duration,
    },
    /// Set some of a domain's limits and scheduler settings.
    #[command(
        about = "Set limits and scheduler settings of a domain",
        long_about = SET_ABOUT,
        after_help = SET_AFTER_HELP
    )]
    Set {
        #[arg(allow_negative_numbers = true, help = DOMID_HELP)]
        domid: String,
        #[arg(
            value_name = "KEY=VALUE",
            required = true,
            allow_negative_numbers = true,
            help = "Limits and scheduler settings to set, as key=value (keys and values below)"
        )]
        settings: Vec<String>,
        #[arg(long, help = DRY_RUN_HELP)]
        dry_run: bool,
    },
    /// Drop all of a domain's limits and scheduler settings.
    #[command(
        about = "Drop a domain's limits and scheduler settings (back to the defaults)",
        long_about = CLEAR_ABOUT
    )]
    Clear {
        #[arg(allow_negative_numbers = true, help = DOMID_HELP)]
        domid: String,
        #[arg(long, help = DRY_RUN_HELP)]
        dry_run: bool,
    },
    /// Set a scheduling group's window or pool limits.
    #[command(
        about = "Set a scheduling group's window or pool limits",
        long_about = GROUP_ABOUT,
        after_help = GROUP_AFTER_HELP
    )]
    Group {
        #[arg(help = "The group's name, as 'rblkctl groups' shows it")]
        name: String,
        #[arg(
            value_name = "KEY=VALUE",
            required = true,
            allow_negative_numbers = true,
            help = "Settings, as key=value (keys below)"
        )]
        settings: Vec<String>,
        #[arg(long, help = DRY_RUN_FILES_HELP)]
        dry_run: bool,
    },
    /// Set a vbd's weight, group or limits.
    #[command(
        about = "Set a vbd's scheduler weight, group or own limits",
        long_about = VBD_ABOUT,
        after_help = VBD_AFTER_HELP
    )]
    Vbd {
        #[arg(allow_negative_numbers = true, help = DOMID_HELP)]
        domid: String,
        #[arg(
            allow_negative_numbers = true,
            help = "The vbd's device id, as in its name vbd-<domid>-<devid> (e.g. 51712)"
        )]
        devid: String,
        #[arg(
            value_name = "KEY=VALUE",
            required = true,
            allow_negative_numbers = true,
            help = "Settings, as key=value (keys below)"
        )]
        settings: Vec<String>,
        #[arg(long, help = DRY_RUN_FILES_HELP)]
        dry_run: bool,
    },
    /// Print a completion script.
    #[command(about = "Print a shell completion script", long_about = COMPLETIONS_ABOUT)]
    Completions {
        #[arg(value_enum, help = "The shell to complete rblkctl in")]
        shell: Shell,
    },
}

/// The shells `rblkctl completions` writes scripts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Parses the arguments after the program name. The sysfs root comes from
/// `--sysfs-root`, else `$RBLKCTL_SYSFS_ROOT` (if not empty), else `/sys`.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, Error> {
    let environment_root = std::env::var_os(SYSFS_ROOT_ENV).filter(|root| !root.is_empty());
    parse_with_default_root(args, environment_root)
}

fn parse_with_default_root(
    args: impl IntoIterator<Item = OsString>,
    environment_root: Option<OsString>,
) -> Result<Invocation, Error> {
    let argv = std::iter::once(OsString::from(NAME)).chain(args);
    match Cli::try_parse_from(argv) {
        Ok(cli) => {
            let sysfs_root = match (cli.sysfs_root, environment_root) {
                (Some(root), _) => PathBuf::from(root),
                (None, Some(root)) => PathBuf::from(root),
                (None, None) => PathBuf::from(DEFAULT_SYSFS_ROOT),
            };
            Ok(Invocation::Run {
                sysfs_root,
                command: cli.command,
            })
        }
        // `--version` anywhere: the program's version (clap would name a subcommand's
        // display name, `rblkctl-status`).
        Err(error) if error.kind() == ErrorKind::DisplayVersion => Ok(Invocation::Print(format!(
            "{NAME} {}\n",
            env!("CARGO_PKG_VERSION")
        ))),
        // Help (clap exits 0 for it and prints it on stdout).
        Err(error) if !error.use_stderr() => Ok(Invocation::Print(error.render().to_string())),
        Err(error) => Err(Error::Usage(error.render().to_string())),
    }
}

/// The completion script for `shell`.
pub(crate) fn completion_script(shell: Shell) -> String {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(generator, &mut Cli::command(), NAME, &mut script);
    // The generators write text they build from our (UTF-8) names and help.
    String::from_utf8_lossy(&script).into_owned()
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let refuse = || format!("expected seconds between 0 and {MAX_INTERVAL_S}, e.g. 1 or 0.5");
    let seconds: f64 = text.trim().parse().map_err(|_| refuse())?;
    if !(0.0..=MAX_INTERVAL_S).contains(&seconds) {
        return Err(refuse());
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| refuse())
}

/// `top`'s interval: as [`parse_interval`], and above 0 (it waits before every table).
fn parse_refresh_interval(text: &str) -> Result<Duration, String> {
    match parse_interval(text) {
        Ok(interval) if interval.is_zero() => Err(format!(
            "top needs an interval above 0 (seconds up to {MAX_INTERVAL_S}, e.g. 1 or 0.5)"
        )),
        other => other,
    }
}

fn parse_count(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err("expected a whole number of refreshes, at least 1".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use throttle::control::{ShareKey, DEFAULT_WEIGHT, MAX_WEIGHT, MIN_WEIGHT};
    use throttle::params::{MAX_BPS, MAX_IOPS};

    fn parse_args(args: &[&str]) -> Result<Invocation, Error> {
        parse_with_default_root(args.iter().map(OsString::from), None)
    }

    fn command(args: &[&str]) -> Command {
        match parse_args(args) {
            Ok(Invocation::Run { command, .. }) => command,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn printed(args: &[&str]) -> String {
        match parse_args(args) {
            Ok(Invocation::Print(text)) => text,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn usage_message(args: &[&str]) -> String {
        match parse_args(args) {
            Err(Error::Usage(message)) => message,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    /// Help for `subcommand` (`None`: the general help), as `--help` prints it (`help`
    /// is clap's own subcommand, which takes no options: `help help`).
    fn help_of(subcommand: Option<&str>) -> String {
        match subcommand {
            Some("help") => printed(&["help", "help"]),
            Some(name) => printed(&[name, "--help"]),
            None => printed(&["--help"]),
        }
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn status_defaults_to_a_one_second_table() {
        assert_eq!(
            command(&["status"]),
            Command::Status {
                json: false,
                interval: Duration::from_secs(1)
            }
        );
        assert_eq!(
            command(&["status", "--json", "--interval=0"]),
            Command::Status {
                json: true,
                interval: Duration::ZERO
            }
        );
        assert_eq!(
            command(&["status", "--interval", "0.25"]),
            Command::Status {
                json: false,
                interval: Duration::from_millis(250)
            }
        );
        assert_eq!(
            command(&["get", "7", "--interval", " 2 "]),
            Command::Get {
                domid: "7".into(),
                json: false,
                interval: Duration::from_secs(2)
            }
        );
        assert_eq!(
            command(&["top"]),
            Command::Top {
                interval: Duration::from_secs(1),
                count: None
            }
        );
        assert_eq!(
            command(&["top", "--count", "3", "--interval", "0.1"]),
            Command::Top {
                interval: Duration::from_millis(100),
                count: Some(3)
            }
        );
    }

    #[test]
    fn the_sysfs_root_comes_from_the_option_else_the_environment_else_sys() {
        let root = |args: &[&str], env: Option<&str>| match parse_with_default_root(
            args.iter().map(OsString::from),
            env.map(OsString::from),
        ) {
            Ok(Invocation::Run { sysfs_root, .. }) => sysfs_root,
            other => panic!("{args:?} gave {other:?}"),
        };
        assert_eq!(root(&["status"], None), PathBuf::from("/sys"));
        assert_eq!(
            root(&["status"], Some("/tmp/fake")),
            PathBuf::from("/tmp/fake")
        );
        assert_eq!(
            root(&["status", "--sysfs-root", "/x"], Some("/tmp/fake")),
            PathBuf::from("/x")
        );
        assert_eq!(
            root(&["--sysfs-root=/y", "status"], None),
            PathBuf::from("/y")
        );
    }

    #[test]
    fn set_keeps_its_tokens_for_validation() {
        assert_eq!(
            command(&["set", "7", "iops=500", "bps=20M"]),
            Command::Set {
                domid: "7".into(),
                settings: vec!["iops=500".into(), "bps=20M".into()],
                dry_run: false
            }
        );
        // A negative domain id is an operand for the validation to refuse, not an option;
        // so is a setting that looks like a negative number.
        assert!(
            matches!(command(&["set", "-7", "iops=1"]), Command::Set { domid, .. } if domid == "-7")
        );
        assert!(
            matches!(command(&["set", "7", "-5"]), Command::Set { settings, .. } if settings == ["-5"])
        );
        assert!(matches!(command(&["clear", "-7"]), Command::Clear { domid, .. } if domid == "-7"));
        assert!(matches!(
            command(&["clear", "3", "--dry-run"]),
            Command::Clear { dry_run: true, .. }
        ));
        assert!(matches!(
            command(&["set", "--dry-run", "3", "iops=1"]),
            Command::Set { dry_run: true, .. }
        ));
        assert!(
            matches!(command(&["set", "--", "7", "--iops=1"]), Command::Set { settings, .. } if settings == ["--iops=1"])
        );
        assert_eq!(
            command(&["completions", "zsh"]),
            Command::Completions { shell: Shell::Zsh }
        );
        assert_eq!(command(&["groups"]), Command::Groups { json: false });
        assert_eq!(
            command(&["group", "vdb", "window=16", "--dry-run"]),
            Command::Group {
                name: "vdb".into(),
                settings: vec!["window=16".into()],
                dry_run: true
            }
        );
        assert_eq!(
            command(&["vbd", "7", "51712", "weight=300", "group="]),
            Command::Vbd {
                domid: "7".into(),
                devid: "51712".into(),
                settings: vec!["weight=300".into(), "group=".into()],
                dry_run: false
            }
        );
        assert!(
            matches!(command(&["vbd", "7", "-1", "weight=1"]), Command::Vbd { devid, .. } if devid == "-1")
        );
        assert_eq!(
            command(&["groups", "--json"]),
            Command::Groups { json: true }
        );
    }

    #[test]
    fn help_and_version_are_printed() {
        let general = help_of(None);
        assert!(general.starts_with("rblkctl "), "{general}");
        assert!(printed(&["-h"]).starts_with("rblkctl "));
        // Before the subcommand, help is the general one (clap acts on it where it is).
        assert_eq!(printed(&["-h", "set"]), printed(&["-h"]));
        assert_eq!(printed(&["help"]), general);
        assert!(printed(&["top", "--help"]).contains("Usage: rblkctl top"));
        assert_eq!(printed(&["help", "clear"]), help_of(Some("clear")));
        // Help is acted on where it appears: before a wrong option it wins.
        assert_eq!(
            printed(&["status", "--help", "--dry-run"]),
            help_of(Some("status"))
        );
        assert!(printed(&["set", "-h"]).contains("Usage: rblkctl set"));
        let version = format!("rblkctl {}\n", env!("CARGO_PKG_VERSION"));
        assert_eq!(printed(&["--version"]), version);
        assert_eq!(printed(&["-V"]), version);
        assert_eq!(printed(&["status", "--version"]), version);
        assert_eq!(printed(&["set", "7", "-V"]), version);
    }

    #[test]
    fn bad_command_lines_are_usage_errors_that_say_what_is_wrong() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "requires a subcommand"),
            (&["stats"], "unrecognized subcommand 'stats'"),
            (&["status", "--verbose"], "unexpected argument '--verbose'"),
            (
                &["set", "7", "iops=1", "--json"],
                "unexpected argument '--json'",
            ),
            (&["status", "--count", "2"], "unexpected argument '--count'"),
            (&["status", "extra"], "unexpected argument 'extra'"),
            (&["get"], "<DOMID>"),
            (&["get", "1", "2"], "unexpected argument '2'"),
            (&["set", "7"], "<KEY=VALUE>"),
            (&["top", "--interval", "0"], "top needs an interval above 0"),
            (
                &["status", "--interval"],
                "a value is required for '--interval <S>'",
            ),
            (
                &["status", "--json=yes"],
                "unexpected value 'yes' for '--json'",
            ),
            (&["help", "nope"], "unrecognized subcommand 'nope'"),
            (&["completions", "tcsh"], "invalid value 'tcsh'"),
            (&["group", "vdb"], "<KEY=VALUE>"),
            (&["vbd", "7", "51712"], "<KEY=VALUE>"),
        ];
        for (args, expected) in cases {
            let message = usage_message(args);
            assert!(message.contains(expected), "{args:?}: {message}");
            // Every usage error points at the help.
            assert!(message.contains("--help"), "{args:?}: {message}");
        }
        // The subcommand's usage, where one was recognised.
        assert!(usage_message(&["set", "7"]).contains("Usage: rblkctl set <DOMID> <KEY=VALUE>..."));
        for bad in ["-1", "abc", "nan", "inf", "3601", ""] {
            let message = usage_message(&["status", "--interval", bad]);
            assert!(
                message.contains(&format!(
                    "invalid value '{bad}' for '--interval <S>': expected seconds between 0 and 3600"
                )),
                "{bad}: {message}"
            );
        }
        for bad in ["0", "-2", "x"] {
            let message = usage_message(&["top", "--count", bad]);
            assert!(
                message.contains(&format!(
                    "invalid value '{bad}' for '--count <N>': expected a whole number of refreshes"
                )),
                "{bad}: {message}"
            );
        }
    }

    #[test]
    fn arguments_that_are_not_utf8_are_refused() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'7', 0xff]);
        let args = [OsString::from("get"), bad];
        let outcome = parse_with_default_root(args, None);
        assert!(
            matches!(&outcome, Err(Error::Usage(message)) if message.contains("invalid UTF-8")),
            "{outcome:?}"
        );
    }

    #[test]
    fn usage_errors_exit_as_clap_would() {
        for args in [&["stats"][..], &["get"], &["top", "--count", "0"]] {
            let argv = std::iter::once(NAME).chain(args.iter().copied());
            let clap_error = Cli::try_parse_from(argv).unwrap_err();
            let ours = parse_args(args).unwrap_err();
            assert_eq!(
                i32::from(ours.exit_status()),
                clap_error.exit_code(),
                "{args:?}"
            );
        }
    }

    #[test]
    fn every_subcommand_has_help_and_the_general_help_names_them_all() {
        let general = help_of(None);
        for subcommand in [
            "status",
            "top",
            "groups",
            "get",
            "set",
            "clear",
            "group",
            "vbd",
            "completions",
            "help",
        ] {
            assert!(
                general.contains(&format!("  {subcommand} ")),
                "{subcommand}: {general}"
            );
            let own = help_of(Some(subcommand));
            assert!(
                own.contains(&format!("Usage: rblkctl {subcommand}")),
                "{own}"
            );
        }
        assert!(general.contains(env!("CARGO_PKG_VERSION")));
        for word in [
            "--sysfs-root",
            "RBLKCTL_SYSFS_ROOT",
            "--version",
            "Exit status",
        ] {
            assert!(general.contains(word), "{word}: {general}");
        }
        // Each option is documented in its subcommand's help.
        let options: &[(&str, &[&str])] = &[
            (
                "status",
                &["--json", "--interval <S>", "[default: 1]", "--sysfs-root"],
            ),
            ("top", &["--interval <S>", "--count <N>"]),
            ("groups", &["--json", "/sys/module/rblkback/groups/"]),
            ("get", &["<DOMID>", "--json", "--interval <S>"]),
            (
                "set",
                &[
                    "<DOMID>",
                    "<KEY=VALUE>...",
                    "--dry-run",
                    "20M = 20MiB = 20971520",
                ],
            ),
            ("clear", &["<DOMID>", "--dry-run"]),
            (
                "group",
                &["<NAME>", "<KEY=VALUE>...", "--dry-run", "window", "1..4096"],
            ),
            (
                "vbd",
                &[
                    "<DOMID>",
                    "<DEVID>",
                    "<KEY=VALUE>...",
                    "--dry-run",
                    "weight",
                    "group=",
                ],
            ),
            ("completions", &["<SHELL>", "bash", "zsh", "fish"]),
        ];
        for (subcommand, words) in options {
            let own = help_of(Some(subcommand));
            for word in *words {
                assert!(own.contains(word), "{subcommand} lacks {word}: {own}");
            }
        }
    }

    #[test]
    fn set_help_states_the_ranges_the_parser_enforces() {
        let set = help_of(Some("set"));
        assert!(set.contains(&format!("at most {MAX_IOPS}")), "{set}");
        assert!(set.contains(&format!("at most {MAX_BPS} (1TiB)")), "{set}");
        for key in ShareKey::ALL {
            let (_, max) = key.range();
            assert!(set.contains(&format!("  {}  ", key.key())), "{set}");
            assert!(set.contains(&max.to_string()), "{key:?}: {set}");
        }
        assert!(
            set.contains(&format!("{MIN_WEIGHT}..{MAX_WEIGHT}\n"))
                && set.contains(&format!("default_weight, {DEFAULT_WEIGHT})")),
            "{set}"
        );
    }

    #[test]
    fn group_and_vbd_help_state_the_ranges_that_are_checked() {
        let group = help_of(Some("group"));
        let max_window = sched::FixedWindow::MAX;
        assert!(
            group.contains(&format!("1..{max_window} op_size units")),
            "{group}"
        );
        let vbd = help_of(Some("vbd"));
        assert!(
            vbd.contains(&format!(
                "{MIN_WEIGHT}..{MAX_WEIGHT} (default {DEFAULT_WEIGHT})"
            )),
            "{vbd}"
        );
        let max_name = crate::sched_files::MAX_GROUP_NAME_LEN;
        assert!(vbd.contains(&format!("1 to {max_name} of")), "{vbd}");
    }

    #[test]
    fn completion_scripts_name_every_subcommand() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = completion_script(shell);
            for word in [
                "rblkctl",
                "status",
                "top",
                "groups",
                "get",
                "set",
                "clear",
                "vbd",
                "sysfs-root",
            ] {
                assert!(script.contains(word), "{shell:?} lacks {word}");
            }
        }
    }
}
