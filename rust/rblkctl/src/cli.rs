//! The command line: a small hand-written parser (no argument-parsing dependency) and the
//! help texts.
//!
//! Options may come before or after the subcommand. Operands that look like negative
//! numbers (`-7`) are operands, so that `rblkctl set -7 iops=1` is refused by the limit
//! validation, naming the domain id, rather than as an unknown option.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// Where sysfs is mounted unless told otherwise.
const DEFAULT_SYSFS_ROOT: &str = "/sys";
/// Environment variable naming another sysfs root (for tests and chroots).
const SYSFS_ROOT_ENV: &str = "RBLKCTL_SYSFS_ROOT";
/// Longest sampling interval accepted: longer is almost certainly a typo.
const MAX_INTERVAL_S: f64 = 3600.0;
/// The rates' sampling interval when none is given.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// What to do, and against which sysfs tree.
#[derive(Debug, PartialEq)]
pub(crate) struct Invocation {
    /// The directory where sysfs is mounted (`/sys` on a real host).
    pub(crate) sysfs_root: PathBuf,
    /// The subcommand with its arguments.
    pub(crate) command: Command,
}

/// One subcommand with its arguments, still as text where the limit validation (which
/// names bad tokens) wants to see what the operator typed.
#[derive(Debug, PartialEq)]
pub(crate) enum Command {
    /// Print the help text, general (`None`) or of one subcommand.
    Help(Option<Subcommand>),
    /// Print the version.
    Version,
    /// Every domain once; rates over `interval` unless it is zero.
    Status { json: bool, interval: Duration },
    /// One domain.
    Get {
        domid: String,
        json: bool,
        interval: Duration,
    },
    /// The status table every `interval`, `count` times or forever.
    Top {
        interval: Duration,
        count: Option<u64>,
    },
    /// Set some of a domain's limits.
    Set {
        domid: String,
        settings: Vec<String>,
        dry_run: bool,
    },
    /// Drop all of a domain's limits.
    Clear { domid: String, dry_run: bool },
}

/// The subcommands, for help and for checking which options each one takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Subcommand {
    Status,
    Top,
    Get,
    Set,
    Clear,
    Help,
}

impl Subcommand {
    const ALL: [Subcommand; 6] = [
        Subcommand::Status,
        Subcommand::Top,
        Subcommand::Get,
        Subcommand::Set,
        Subcommand::Clear,
        Subcommand::Help,
    ];

    fn name(self) -> &'static str {
        match self {
            Subcommand::Status => "status",
            Subcommand::Top => "top",
            Subcommand::Get => "get",
            Subcommand::Set => "set",
            Subcommand::Clear => "clear",
            Subcommand::Help => "help",
        }
    }

    fn from_name(name: &str) -> Option<Subcommand> {
        Subcommand::ALL.into_iter().find(|s| s.name() == name)
    }

    fn takes(self, option: ValueOption) -> bool {
        match option {
            ValueOption::Interval => {
                matches!(self, Subcommand::Status | Subcommand::Get | Subcommand::Top)
            }
            ValueOption::Count => self == Subcommand::Top,
            ValueOption::SysfsRoot => true,
        }
    }

    fn takes_flag(self, flag: Flag) -> bool {
        match flag {
            Flag::Json => matches!(self, Subcommand::Status | Subcommand::Get),
            Flag::DryRun => matches!(self, Subcommand::Set | Subcommand::Clear),
        }
    }
}

/// Options followed by a value (`--interval 0.5` or `--interval=0.5`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueOption {
    Interval,
    Count,
    SysfsRoot,
}

impl ValueOption {
    fn from_name(name: &str) -> Option<ValueOption> {
        match name {
            "--interval" => Some(ValueOption::Interval),
            "--count" => Some(ValueOption::Count),
            "--sysfs-root" => Some(ValueOption::SysfsRoot),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ValueOption::Interval => "--interval",
            ValueOption::Count => "--count",
            ValueOption::SysfsRoot => "--sysfs-root",
        }
    }
}

/// Options without a value that only some subcommands take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flag {
    Json,
    DryRun,
}

impl Flag {
    fn from_name(name: &str) -> Option<Flag> {
        match name {
            "--json" => Some(Flag::Json),
            "--dry-run" => Some(Flag::DryRun),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Flag::Json => "--json",
            Flag::DryRun => "--dry-run",
        }
    }
}

/// Everything seen on the command line, before it is checked against the subcommand.
#[derive(Default)]
struct Seen {
    help: bool,
    version: bool,
    flags: Vec<Flag>,
    values: Vec<(ValueOption, String)>,
    /// The subcommand's name (first operand) and the operands after it.
    operands: Vec<String>,
}

/// Parses the arguments after the program name. The sysfs root comes from
/// `--sysfs-root`, else `$RBLKCTL_SYSFS_ROOT`, else `/sys`.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, Error> {
    let environment_root = std::env::var_os(SYSFS_ROOT_ENV).filter(|root| !root.is_empty());
    parse_with_default_root(args, environment_root)
}

fn parse_with_default_root(
    args: impl IntoIterator<Item = OsString>,
    environment_root: Option<OsString>,
) -> Result<Invocation, Error> {
    let seen = scan(args)?;
    let mut operands = seen.operands.into_iter();
    let subcommand = match operands.next() {
        Some(name) => Some(
            Subcommand::from_name(&name)
                .ok_or_else(|| Error::usage(format!("unknown command '{name}'"), None))?,
        ),
        None => None,
    };
    let operands: Vec<String> = operands.collect();
    let mut sysfs_root =
        environment_root.map_or_else(|| PathBuf::from(DEFAULT_SYSFS_ROOT), PathBuf::from);
    // Help and version need nothing else to be right, as `--help` is how one finds out.
    if seen.help {
        let topic = match subcommand {
            // `help --help` is about `help`; `help set --help` about `set`.
            Some(Subcommand::Help) => help_topic(operands.first())?.or(subcommand),
            other => other,
        };
        return Ok(Invocation {
            sysfs_root,
            command: Command::Help(topic),
        });
    }
    if seen.version {
        return Ok(Invocation {
            sysfs_root,
            command: Command::Version,
        });
    }
    let Some(subcommand) = subcommand else {
        return Err(Error::usage("no command given", None));
    };
    let help_of = Some(subcommand.name());

    let mut interval = None;
    let mut count = None;
    for (option, value) in &seen.values {
        if !subcommand.takes(*option) {
            return Err(Error::usage(
                format!("'{}' does not take {}", subcommand.name(), option.name()),
                help_of,
            ));
        }
        match option {
            ValueOption::SysfsRoot => sysfs_root = PathBuf::from(value),
            ValueOption::Interval => interval = Some(parse_interval(value, help_of)?),
            ValueOption::Count => count = Some(parse_count(value, help_of)?),
        }
    }
    for flag in &seen.flags {
        if !subcommand.takes_flag(*flag) {
            return Err(Error::usage(
                format!("'{}' does not take {}", subcommand.name(), flag.name()),
                help_of,
            ));
        }
    }
    let json = seen.flags.contains(&Flag::Json);
    let dry_run = seen.flags.contains(&Flag::DryRun);
    let command = command_for(subcommand, operands, json, dry_run, interval, count)?;
    Ok(Invocation {
        sysfs_root,
        command,
    })
}

/// Sorts the raw arguments into options and operands.
fn scan(args: impl IntoIterator<Item = OsString>) -> Result<Seen, Error> {
    let mut seen = Seen::default();
    let mut args = args.into_iter();
    let mut only_operands = false;
    while let Some(arg) = args.next() {
        let arg = utf8(arg)?;
        if only_operands || !looks_like_option(&arg) {
            seen.operands.push(arg);
            continue;
        }
        let (name, inline_value) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        match name {
            "--" => only_operands = true,
            "-h" | "--help" => seen.help = true,
            "-V" | "--version" => seen.version = true,
            _ => {
                if let Some(flag) = Flag::from_name(name) {
                    if inline_value.is_some() {
                        return Err(Error::usage(format!("{name} takes no value"), None));
                    }
                    seen.flags.push(flag);
                } else if let Some(option) = ValueOption::from_name(name) {
                    let value = match inline_value {
                        Some(value) => value,
                        None => {
                            let value = args.next().ok_or_else(|| {
                                Error::usage(format!("{name} needs a value"), None)
                            })?;
                            utf8(value)?
                        }
                    };
                    seen.values.push((option, value));
                } else {
                    return Err(Error::usage(format!("unknown option '{arg}'"), None));
                }
            }
        }
    }
    Ok(seen)
}

/// Arguments are names, numbers and paths that rblkctl prints back in messages; one that
/// is not UTF-8 is refused rather than shown mangled.
fn utf8(arg: OsString) -> Result<String, Error> {
    arg.into_string()
        .map_err(|arg| Error::usage(format!("argument {arg:?} is not valid UTF-8"), None))
}

/// Whether `arg` is meant as an option: it starts with `-` but is not a lone `-` or a
/// negative number, both of which are (invalid) operands.
fn looks_like_option(arg: &str) -> bool {
    let mut chars = arg.chars();
    chars.next() == Some('-') && chars.next().is_some_and(|c| !c.is_ascii_digit())
}

fn command_for(
    subcommand: Subcommand,
    operands: Vec<String>,
    json: bool,
    dry_run: bool,
    interval: Option<Duration>,
    count: Option<u64>,
) -> Result<Command, Error> {
    let help_of = Some(subcommand.name());
    let interval_or_default = interval.unwrap_or(DEFAULT_INTERVAL);
    let mut operands = operands.into_iter();
    let mut next_domid = || {
        operands
            .next()
            .ok_or_else(|| Error::usage("missing <domid>", help_of))
    };
    let command = match subcommand {
        Subcommand::Help => Command::Help(help_topic(next_domid().ok().as_ref())?),
        Subcommand::Status => Command::Status {
            json,
            interval: interval_or_default,
        },
        Subcommand::Top => {
            if interval_or_default.is_zero() {
                return Err(Error::usage("top needs an --interval above 0", help_of));
            }
            Command::Top {
                interval: interval_or_default,
                count,
            }
        }
        Subcommand::Get => Command::Get {
            domid: next_domid()?,
            json,
            interval: interval_or_default,
        },
        Subcommand::Set => {
            let domid = next_domid()?;
            let settings: Vec<String> = operands.by_ref().collect();
            if settings.is_empty() {
                return Err(Error::usage(
                    "set needs at least one key=value after the domain id",
                    help_of,
                ));
            }
            Command::Set {
                domid,
                settings,
                dry_run,
            }
        }
        Subcommand::Clear => Command::Clear {
            domid: next_domid()?,
            dry_run,
        },
    };
    if let Some(extra) = operands.next() {
        return Err(Error::usage(
            format!("unexpected argument '{extra}'"),
            help_of,
        ));
    }
    Ok(command)
}

/// The subcommand whose help `rblkctl help <name>` asks for (`None`: the general help).
fn help_topic(name: Option<&String>) -> Result<Option<Subcommand>, Error> {
    let Some(name) = name else {
        return Ok(None);
    };
    Subcommand::from_name(name)
        .map(Some)
        .ok_or_else(|| Error::usage(format!("unknown command '{name}'"), None))
}

fn parse_interval(text: &str, help_of: Option<&'static str>) -> Result<Duration, Error> {
    let refuse = || {
        Error::usage(
            format!("--interval '{text}': expected seconds between 0 and {MAX_INTERVAL_S}, e.g. 1 or 0.5"),
            help_of,
        )
    };
    let seconds: f64 = text.trim().parse().map_err(|_| refuse())?;
    if !(0.0..=MAX_INTERVAL_S).contains(&seconds) {
        return Err(refuse());
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| refuse())
}

fn parse_count(text: &str, help_of: Option<&'static str>) -> Result<u64, Error> {
    match text.parse::<u64>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(Error::usage(
            format!("--count '{text}': expected a whole number of refreshes, at least 1"),
            help_of,
        )),
    }
}

/// The help text: the general one, or one subcommand's.
pub(crate) fn help_text(topic: Option<Subcommand>) -> String {
    let text = match topic {
        None => GENERAL_HELP,
        Some(Subcommand::Status) => STATUS_HELP,
        Some(Subcommand::Top) => TOP_HELP,
        Some(Subcommand::Get) => GET_HELP,
        Some(Subcommand::Set) => SET_HELP,
        Some(Subcommand::Clear) => CLEAR_HELP,
        Some(Subcommand::Help) => HELP_HELP,
    };
    text.replace("{version}", env!("CARGO_PKG_VERSION"))
}

const GENERAL_HELP: &str = "\
rblkctl {version}: show and set rblkback's per-domain disk I/O limits

Usage: rblkctl [--sysfs-root DIR] <command> [options]

Commands:
  status [--json] [--interval S]          every domain's limits, counters and rates
  top [--interval S] [--count N]          the status table, refreshed every S seconds
  get <domid> [--json] [--interval S]     one domain
  set <domid> key=value [key=value ...]   set limits of a domain
  clear <domid>                           drop a domain's limits (back to the defaults)
  help [command]                          this text, or a command's

Limit keys: iops, bps, read_iops, write_iops, read_bps, write_bps (per second, 0 = unlimited)

Options:
  --sysfs-root DIR   where sysfs is mounted (default /sys, or $RBLKCTL_SYSFS_ROOT)
  -h, --help         print help (also after a command: rblkctl set --help)
  -V, --version      print the version

Exit status: 0 done; 1 the system failed (rblkback not loaded, a read or write refused);
2 bad usage or an invalid limit (nothing was written).
";

const STATUS_HELP: &str = "\
Usage: rblkctl status [--json] [--interval S]

Shows the module parameters and, for every domain under
/sys/module/rblkback/domains/, its six limits (- = unlimited), its counters and its
live rates: requests, operations and bytes per second and the share of time its rings
were held, measured over two samples S seconds apart.

Options:
  --json          print JSON instead of a table (rates are null when not measured)
  --interval S    seconds between the two samples (default 1; 0 = no rates, no wait)
";

const TOP_HELP: &str = "\
Usage: rblkctl top [--interval S] [--count N]

Shows the status table with rates, refreshed every S seconds, until interrupted or N
times. On a terminal the screen is cleared before each table; otherwise the tables
follow each other, separated by a blank line.

Options:
  --interval S    seconds between refreshes (default 1, above 0)
  --count N       stop after N tables
";

const GET_HELP: &str = "\
Usage: rblkctl get <domid> [--json] [--interval S]

Shows one domain as 'status' does. With --json, prints the domain's object alone
(the same shape as one element of status's \"domains\").

Options:
  --json          print JSON instead of a table
  --interval S    seconds between the two samples (default 1; 0 = no rates, no wait)
";

const SET_HELP: &str = "\
Usage: rblkctl set <domid> key=value [key=value ...] [--dry-run]

Sets limits of domain <domid> (0..32751) with one write of
'<domid> key=value ...' to /sys/module/rblkback/domains/limits. Keys not given keep
their value. The domain need not exist yet. New limits apply from the next timeslice.

Keys (per second, 0 = unlimited):
  iops, read_iops, write_iops    operations, at most 10000000
  bps, read_bps, write_bps       bytes, at most 1099511627776 (1TiB)

Values are unsigned decimal numbers, or 'unlimited' (= 0). Byte values may carry a
binary unit: K, M, G, T or KiB, MiB, GiB, TiB (20M = 20MiB = 20971520); rblkctl writes
the plain number. Every token is checked as the kernel checks it before anything is
written; an invalid one is named and nothing is written (exit status 2).

Options:
  --dry-run       print the line instead of writing it

Example:
  rblkctl set 7 iops=500 bps=20M
";

const CLEAR_HELP: &str = "\
Usage: rblkctl clear <domid> [--dry-run]

Drops every limit set for domain <domid> (writes '<domid> clear' to
/sys/module/rblkback/domains/limits): the domain goes back to the module defaults
default_iops and default_bps.

Options:
  --dry-run       print the line instead of writing it
";

const HELP_HELP: &str = "\
Usage: rblkctl help [command]

Prints the general help, or the help of one command (as 'rblkctl <command> --help').
";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Invocation, Error> {
        parse_with_default_root(args.iter().map(OsString::from), None)
    }

    fn command(args: &[&str]) -> Command {
        parse_args(args).expect("valid command line").command
    }

    fn usage_message(args: &[&str]) -> String {
        match parse_args(args) {
            Err(Error::Usage { message, .. }) => message,
            other => panic!("{args:?} gave {other:?}"),
        }
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
            command(&["--json", "status", "--interval=0"]),
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
    }

    #[test]
    fn the_sysfs_root_comes_from_the_option_else_the_environment_else_sys() {
        let root = |args: &[&str], env: Option<&str>| {
            parse_with_default_root(args.iter().map(OsString::from), env.map(OsString::from))
                .unwrap()
                .sysfs_root
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
        // A negative domain id is an operand for the validation to refuse, not an option.
        assert!(
            matches!(command(&["set", "-7", "iops=1"]), Command::Set { domid, .. } if domid == "-7")
        );
        assert!(matches!(
            command(&["clear", "3", "--dry-run"]),
            Command::Clear { dry_run: true, .. }
        ));
        assert!(
            matches!(command(&["set", "--", "7", "--iops=1"]), Command::Set { settings, .. } if settings == ["--iops=1"])
        );
    }

    #[test]
    fn help_and_version_win_over_everything_else() {
        assert_eq!(command(&["--help"]), Command::Help(None));
        assert_eq!(
            command(&["-h", "set"]),
            Command::Help(Some(Subcommand::Set))
        );
        assert_eq!(
            command(&["top", "--help"]),
            Command::Help(Some(Subcommand::Top))
        );
        assert_eq!(command(&["help"]), Command::Help(None));
        assert_eq!(
            command(&["help", "clear"]),
            Command::Help(Some(Subcommand::Clear))
        );
        assert_eq!(
            command(&["status", "--help", "--dry-run"]),
            Command::Help(Some(Subcommand::Status))
        );
        assert_eq!(command(&["--version"]), Command::Version);
        assert_eq!(command(&["-V"]), Command::Version);
    }

    #[test]
    fn bad_command_lines_are_usage_errors_that_say_what_is_wrong() {
        assert_eq!(usage_message(&[]), "no command given");
        assert_eq!(usage_message(&["stats"]), "unknown command 'stats'");
        assert_eq!(
            usage_message(&["status", "--verbose"]),
            "unknown option '--verbose'"
        );
        assert_eq!(
            usage_message(&["set", "7", "iops=1", "--json"]),
            "'set' does not take --json"
        );
        assert_eq!(
            usage_message(&["status", "--count", "2"]),
            "'status' does not take --count"
        );
        assert_eq!(
            usage_message(&["status", "extra"]),
            "unexpected argument 'extra'"
        );
        assert_eq!(usage_message(&["get"]), "missing <domid>");
        assert_eq!(usage_message(&["get", "1", "2"]), "unexpected argument '2'");
        assert_eq!(
            usage_message(&["set", "7"]),
            "set needs at least one key=value after the domain id"
        );
        assert_eq!(
            usage_message(&["top", "--interval", "0"]),
            "top needs an --interval above 0"
        );
        assert_eq!(
            usage_message(&["status", "--interval"]),
            "--interval needs a value"
        );
        assert_eq!(
            usage_message(&["status", "--json=yes"]),
            "--json takes no value"
        );
        assert_eq!(usage_message(&["help", "nope"]), "unknown command 'nope'");
        for bad in ["-1", "abc", "nan", "inf", "3601", ""] {
            assert!(
                usage_message(&["status", "--interval", bad]).starts_with("--interval '"),
                "{bad}"
            );
        }
        for bad in ["0", "-2", "x"] {
            assert!(
                usage_message(&["top", "--count", bad]).starts_with("--count '"),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_subcommand_has_help_and_the_general_help_names_them_all() {
        let general = help_text(None);
        for subcommand in Subcommand::ALL {
            assert!(
                general.contains(&format!("  {} ", subcommand.name())),
                "{}",
                subcommand.name()
            );
            let own = help_text(Some(subcommand));
            assert!(
                own.starts_with(&format!("Usage: rblkctl {}", subcommand.name())),
                "{own}"
            );
        }
        assert!(general.contains(env!("CARGO_PKG_VERSION")));
    }
}
