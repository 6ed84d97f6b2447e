//! The built `rblkctl` binary against a fake sysfs tree in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

const LIMIT_FILES: [&str; 6] = [
    "iops_limit",
    "bps_limit",
    "read_iops_limit",
    "write_iops_limit",
    "read_bps_limit",
    "write_bps_limit",
];
const COUNTER_FILES: [&str; 6] = [
    "admitted_requests",
    "admitted_ops",
    "admitted_bytes",
    "holds",
    "throttled_slices",
    "throttled_us",
];
const SHARE_FILES: [&str; 3] = ["weight", "reservation_iops", "reservation_bps"];
const SCHED_COUNTER_FILES: [&str; 2] = ["sched_dispatched", "sched_holds"];
/// What the fake `limits` file holds until rblkctl writes it; the kernel's file reads
/// as nothing, but this makes "not even opened for writing" visible.
const UNWRITTEN: &str = "(not written)\n";

/// `/sys` as rblkback lays it out, in a temporary directory.
struct FakeSysfs {
    root: tempfile::TempDir,
}

impl FakeSysfs {
    /// The module loaded with these parameters and no domain yet.
    fn loaded() -> FakeSysfs {
        let fake = FakeSysfs {
            root: tempfile::tempdir().expect("temporary directory"),
        };
        let params = fake.module_dir().join("parameters");
        fs::create_dir_all(&params).unwrap();
        for (name, value) in [
            ("timeslice_us", 10000),
            ("default_iops", 100),
            ("default_bps", 0),
            ("burst", 2),
            ("op_size", 4096),
            ("max_indirect_segments", 256),
            ("max_ring_page_order", 4),
        ] {
            fs::write(params.join(name), format!("{value}\n")).unwrap();
        }
        fs::create_dir_all(fake.domains_dir()).unwrap();
        fs::write(fake.limits_file(), UNWRITTEN).unwrap();
        fake
    }

    /// No module at all.
    fn empty() -> FakeSysfs {
        FakeSysfs {
            root: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    fn module_dir(&self) -> PathBuf {
        self.root().join("module/rblkback")
    }

    fn domains_dir(&self) -> PathBuf {
        self.module_dir().join("domains")
    }

    fn limits_file(&self) -> PathBuf {
        self.domains_dir().join("limits")
    }

    /// Creates domain `domid`'s entry with these limits and counters (sysfs order).
    fn add_domain(&self, domid: u16, limits: [u64; 6], counters: [u64; 6]) {
        let dir = self.domains_dir().join(domid.to_string());
        fs::create_dir_all(&dir).unwrap();
        for (name, value) in LIMIT_FILES.iter().zip(limits) {
            fs::write(dir.join(name), format!("{value}\n")).unwrap();
        }
        write_counters(self.root(), domid, counters);
    }

    /// Creates scheduling group `name` with these files (`window`, `in_flight`, ...).
    fn add_group(&self, name: &str, files: &[(&str, u64)]) {
        let dir = self.module_dir().join("groups").join(name);
        fs::create_dir_all(&dir).unwrap();
        for (file, value) in files {
            fs::write(dir.join(file), format!("{value}\n")).unwrap();
        }
    }

    fn limits_written(&self) -> String {
        fs::read_to_string(self.limits_file()).unwrap()
    }

    /// Runs rblkctl on this tree.
    fn run(&self, args: &[&str]) -> Output {
        let mut command = rblkctl();
        command.arg("--sysfs-root").arg(self.root()).args(args);
        command.output().expect("rblkctl runs")
    }
}

/// Replaces domain `domid`'s counters under `root`, each file atomically so that a reader
/// never sees half of one.
fn write_counters(root: &Path, domid: u16, counters: [u64; 6]) {
    let files: Vec<(&str, u64)> = COUNTER_FILES.into_iter().zip(counters).collect();
    write_domain_files(root, domid, &files);
}

/// Writes files of domain `domid`'s entry under `root`, each atomically.
fn write_domain_files(root: &Path, domid: u16, files: &[(&str, u64)]) {
    let dir = root.join("module/rblkback/domains").join(domid.to_string());
    for (name, value) in files {
        let staging = root.join(format!("staging-{domid}-{name}"));
        fs::write(&staging, format!("{value}\n")).unwrap();
        fs::rename(&staging, dir.join(name)).unwrap();
    }
}

/// Domain `domid`'s scheduler files as rblkback with the scheduler has them: `weight`,
/// `reservation_iops`, `reservation_bps`, then `sched_dispatched` and `sched_holds`.
fn write_scheduler_files(root: &Path, domid: u16, shares: [u64; 3], counters: [u64; 2]) {
    let names = SHARE_FILES.into_iter().chain(SCHED_COUNTER_FILES);
    let values = shares.into_iter().chain(counters);
    let files: Vec<(&str, u64)> = names.zip(values).collect();
    write_domain_files(root, domid, &files);
}

/// The binary under test, with no sysfs root from our own environment.
fn rblkctl() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rblkctl"));
    command.env_remove("RBLKCTL_SYSFS_ROOT");
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 stderr")
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn json_of(output: &Output) -> Value {
    assert_eq!(status(output), 0, "stderr: {}", stderr(output));
    serde_json::from_str(&stdout(output)).expect("stdout is JSON")
}

#[test]
fn help_names_every_subcommand_and_each_has_its_own() {
    let output = rblkctl().arg("--help").output().unwrap();
    assert_eq!(status(&output), 0);
    let help = stdout(&output);
    for word in [
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
        "--sysfs-root",
        "RBLKCTL_SYSFS_ROOT",
        "--version",
        "iops, bps, read_iops, write_iops, read_bps, write_bps",
        "Exit status",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    // Each subcommand's own help, as `<command> --help` and as `help <command>`, with its
    // usage and its options.
    let own_options: [(&str, &[&str]); 9] = [
        ("status", &["--json", "--interval <S>"]),
        ("top", &["--interval <S>", "--count <N>"]),
        ("groups", &["--json"]),
        ("get", &["<DOMID>", "--json", "--interval <S>"]),
        ("set", &["<DOMID>", "<KEY=VALUE>", "--dry-run"]),
        ("clear", &["<DOMID>", "--dry-run"]),
        ("group", &["<NAME>", "<KEY=VALUE>", "--dry-run", "window"]),
        (
            "vbd",
            &[
                "<DOMID>",
                "<DEVID>",
                "<KEY=VALUE>",
                "--dry-run",
                "weight",
                "group",
            ],
        ),
        ("completions", &["<SHELL>", "bash, zsh, fish"]),
    ];
    for (subcommand, options) in own_options {
        for args in [vec![subcommand, "--help"], vec!["help", subcommand]] {
            let output = rblkctl().args(&args).output().unwrap();
            assert_eq!(status(&output), 0, "{args:?}");
            let own = stdout(&output);
            assert!(
                own.contains(&format!("Usage: rblkctl {subcommand}")),
                "{args:?}: {own}"
            );
            for option in options {
                assert!(own.contains(option), "{args:?} lacks {option}: {own}");
            }
        }
    }
    let output = rblkctl().args(["help", "help"]).output().unwrap();
    assert_eq!(status(&output), 0);
    assert!(stdout(&output).contains("Usage: rblkctl help"));
    let set_help = stdout(&rblkctl().args(["set", "-h"]).output().unwrap());
    assert!(set_help.contains("20M = 20MiB = 20971520"), "{set_help}");
}

#[test]
fn version_is_the_crate_version() {
    for args in [&["--version"][..], &["-V"], &["status", "--version"]] {
        let output = rblkctl().args(args).output().unwrap();
        assert_eq!(status(&output), 0, "{args:?}");
        assert_eq!(
            stdout(&output),
            format!("rblkctl {}\n", env!("CARGO_PKG_VERSION")),
            "{args:?}"
        );
    }
}

#[test]
fn usage_errors_exit_2_and_point_at_help() {
    // The wording is clap's; what matters is that each names what is wrong, points at the
    // help and prints nothing on stdout.
    let cases: [(&[&str], &str); 7] = [
        (&[], "requires a subcommand"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["status", "--bogus"], "unexpected argument '--bogus'"),
        (&["set", "7"], "required arguments were not provided:\n  <KEY=VALUE>..."),
        (
            &["top", "--interval", "0"],
            "invalid value '0' for '--interval <S>': top needs an interval above 0",
        ),
        (
            &["status", "--interval", "-1"],
            "invalid value '-1' for '--interval <S>': expected seconds between 0 and 3600, e.g. 1 or 0.5",
        ),
        (&["completions", "csh"], "invalid value 'csh' for '<SHELL>'"),
    ];
    for (args, message) in cases {
        let output = rblkctl().args(args).output().unwrap();
        assert_eq!(status(&output), 2, "{args:?}");
        let text = stderr(&output);
        assert!(text.starts_with("error: "), "{args:?}: {text}");
        assert!(text.contains(message), "{args:?}: {text}");
        assert!(
            text.ends_with("For more information, try '--help'.\n"),
            "{args:?}: {text}"
        );
        assert_eq!(stdout(&output), "", "{args:?}");
    }
}

#[test]
fn completions_are_scripts_for_the_shell_asked_for() {
    for (shell, marker) in [
        ("bash", "complete -F _rblkctl"),
        ("zsh", "#compdef rblkctl"),
        ("fish", "complete -c rblkctl"),
    ] {
        let output = rblkctl().args(["completions", shell]).output().unwrap();
        assert_eq!(status(&output), 0, "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("clear"), "{shell}");
    }
    // The bash script is valid bash, whatever the sysfs root.
    let fake = FakeSysfs::empty();
    let output = fake.run(&["completions", "bash"]);
    let check = Command::new("bash")
        .args(["-n", "-c", &stdout(&output)])
        .status()
        .expect("bash runs");
    assert!(check.success());
}

#[test]
fn set_writes_exactly_the_kernel_line() {
    let fake = FakeSysfs::loaded();
    let output = fake.run(&["set", "7", "iops=500", "bps=20M"]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(
        (stdout(&output), stderr(&output)),
        (String::new(), String::new())
    );
    assert_eq!(fake.limits_written(), "7 iops=500 bps=20971520\n");

    let output = fake.run(&[
        "set",
        "12",
        "read_iops=0100",
        "write_bps=4KiB",
        "read_bps=unlimited",
    ]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(
        fake.limits_written(),
        "12 read_iops=100 write_bps=4096 read_bps=0\n"
    );
}

#[test]
fn set_writes_scheduler_keys_in_the_same_line_as_limits() {
    let fake = FakeSysfs::loaded();
    let output = fake.run(&[
        "set",
        "4",
        "weight=200",
        "reservation_iops=50",
        "reservation_bps=10M",
        "iops=300",
    ]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(
        (stdout(&output), stderr(&output)),
        (String::new(), String::new())
    );
    assert_eq!(
        fake.limits_written(),
        "4 weight=200 reservation_iops=50 reservation_bps=10485760 iops=300\n"
    );

    let output = fake.run(&["set", "4", "reservation_iops=none", "--dry-run"]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "4 reservation_iops=0\n");
    assert_eq!(
        fake.limits_written(),
        "4 weight=200 reservation_iops=50 reservation_bps=10485760 iops=300\n",
        "--dry-run wrote"
    );
}

#[test]
fn invalid_scheduler_values_are_refused_and_nothing_is_written() {
    let fake = FakeSysfs::loaded();
    let cases: &[(&[&str], &str)] = &[
        (
            &["set", "4", "iops=300", "weight=0"],
            "'weight=0': a weight of 0 is refused: a weight is 1..10000; the smallest share is \
             weight=1\n",
        ),
        (
            &["set", "4", "weight=10001"],
            "'weight=10001': too large: the most weight accepts is 10000\n",
        ),
        (
            &["set", "4", "reservation_iops=-1"],
            "'reservation_iops=-1': the value must be an unsigned decimal number (no sign) or \
             'none'\n",
        ),
        (
            &["set", "4", "reservation_iops=unlimited"],
            "'reservation_iops=unlimited': a reservation is a guaranteed minimum, not a limit: \
             it has no 'unlimited'; 0 or 'none' means no reservation\n",
        ),
        (
            &["set", "4", "weight=none", "--dry-run"],
            "'weight=none': a weight is a share of a contended device, 1..10000, not a limit: \
             it has no 'none'\n",
        ),
        (
            &["set", "4", "reservation_bps=2T"],
            "'reservation_bps=2T': too large: the most reservation_bps accepts is \
             1099511627776 (1TiB)\n",
        ),
    ];
    for (args, expected) in cases {
        let output = fake.run(args);
        assert_eq!(status(&output), 2, "{args:?}: {}", stderr(&output));
        assert_eq!(stderr(&output), format!("rblkctl: {expected}"), "{args:?}");
        assert_eq!(stdout(&output), "", "{args:?}");
        assert_eq!(
            fake.limits_written(),
            UNWRITTEN,
            "{args:?} wrote the limits file"
        );
    }
}

#[test]
fn clear_writes_the_clear_line() {
    let fake = FakeSysfs::loaded();
    let output = fake.run(&["clear", "7"]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(fake.limits_written(), "7 clear\n");
}

#[test]
fn dry_run_prints_the_line_and_writes_nothing() {
    let fake = FakeSysfs::loaded();
    let output = fake.run(&["set", "7", "bps=1G", "--dry-run"]);
    assert_eq!(status(&output), 0);
    assert_eq!(stdout(&output), "7 bps=1073741824\n");
    let output = fake.run(&["clear", "--dry-run", "9"]);
    assert_eq!(stdout(&output), "9 clear\n");
    assert_eq!(fake.limits_written(), UNWRITTEN);
}

#[test]
fn invalid_limits_are_refused_naming_the_token_and_nothing_is_written() {
    let fake = FakeSysfs::loaded();
    let cases: &[(&[&str], &str)] = &[
        (&["set", "7", "iop=500"], "'iop=500': unknown key 'iop'"),
        (
            &["set", "7", "iops=fast"],
            "'iops=fast': the value must be an unsigned decimal number",
        ),
        (
            &["set", "7", "iops=-5"],
            "'iops=-5': the value must be an unsigned decimal number (no sign)",
        ),
        (
            &["set", "7", "iops=10000001"],
            "'iops=10000001': too large: the most iops accepts is 10000000",
        ),
        (
            &["set", "7", "bps=18446744073709551616"],
            "'bps=18446744073709551616': too large: the most bps accepts is 1099511627776 (1TiB)",
        ),
        (&["set", "7", "bps=2T"], "'bps=2T': too large"),
        (&["set", "7", "iops500"], "'iops500': expected key=value"),
        (
            &["set", "7", "iops=1", "iops=2"],
            "'iops=2': 'iops' is given more than once",
        ),
        (&["set", "7", "iops=1", "clear"], "'clear': not a key=value"),
        (
            &["set", "32752", "iops=1"],
            "'32752': a domain id must be below 32752",
        ),
        (
            &["set", "-1", "iops=1"],
            "'-1': a domain id is an unsigned decimal number (no sign)",
        ),
        (
            &["set", "dom7", "iops=1"],
            "'dom7': a domain id is an unsigned decimal number",
        ),
        (
            &["set", "7", "iops=1 bps=2"],
            "'iops=1 bps=2': contains a space",
        ),
        (
            &["clear", "40000"],
            "'40000': a domain id must be below 32752",
        ),
    ];
    for (args, expected) in cases {
        let output = fake.run(args);
        assert_eq!(status(&output), 2, "{args:?}: {}", stderr(&output));
        let message = stderr(&output);
        assert!(
            message.starts_with(&format!("rblkctl: {expected}")),
            "{args:?}: {message}"
        );
        assert_eq!(
            fake.limits_written(),
            UNWRITTEN,
            "{args:?} wrote the limits file"
        );
    }
}

#[test]
fn module_not_loaded_is_an_io_error_naming_the_missing_path() {
    let fake = FakeSysfs::empty();
    let domains = fake.root().join("module/rblkback/domains");
    for args in [&["status"][..], &["top", "--count", "1"], &["get", "7"]] {
        let output = fake.run(args);
        assert_eq!(status(&output), 1, "{args:?}");
        assert_eq!(
            stderr(&output),
            format!(
                "rblkctl: rblkback is not loaded (no {})\n",
                domains.display()
            ),
            "{args:?}"
        );
    }
    let output = fake.run(&["set", "7", "iops=1"]);
    assert_eq!(status(&output), 1);
    assert_eq!(
        stderr(&output),
        format!(
            "rblkctl: rblkback is not loaded (no {})\n",
            domains.join("limits").display()
        )
    );
}

#[test]
fn a_failing_write_is_an_io_error() {
    let fake = FakeSysfs::loaded();
    // A directory where the control file should be: open(2) fails with EISDIR.
    fs::remove_file(fake.limits_file()).unwrap();
    fs::create_dir(fake.limits_file()).unwrap();
    let output = fake.run(&["clear", "7"]);
    assert_eq!(status(&output), 1);
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!(
            "rblkctl: cannot open {}: ",
            fake.limits_file().display()
        )),
        "{message}"
    );
}

fn two_domains() -> FakeSysfs {
    let fake = FakeSysfs::loaded();
    fake.add_domain(12, [0, 0, 50, 0, 0, 10 << 20], [9, 10, 40960, 0, 0, 0]);
    fake.add_domain(
        7,
        [500, 20 << 20, 0, 0, 0, 0],
        [1000, 1200, 4 << 20, 30, 25, 250_000],
    );
    // Not domains: the control file, a stray file with a number for a name, a
    // non-canonical name.
    fs::write(fake.domains_dir().join("99"), "x").unwrap();
    fs::create_dir(fake.domains_dir().join("007")).unwrap();
    fake
}

/// An rblkback without the scheduler: its files are missing, its values are null.
#[test]
fn status_json_has_every_domain_with_exact_values() {
    let fake = two_domains();
    let json = json_of(&fake.run(&["status", "--json", "--interval", "0"]));
    assert_eq!(
        json,
        json!({
            "params": {
                "timeslice_us": 10000, "default_iops": 100, "default_bps": 0, "burst": 2,
                "op_size": 4096
            },
            "interval_s": null,
            "domains": [
                {
                    "domid": 7,
                    "limits": {"iops": 500, "bps": 20971520, "read_iops": 0, "write_iops": 0, "read_bps": 0, "write_bps": 0},
                    "shares": {"weight": null, "reservation_iops": null, "reservation_bps": null, "latency_target_us": null},
                    "counters": {"admitted_requests": 1000, "admitted_ops": 1200, "admitted_bytes": 4194304, "holds": 30, "throttled_slices": 25, "throttled_us": 250000, "sched_dispatched": null, "sched_holds": null},
                    "latency": null,
                    "rates": null
                },
                {
                    "domid": 12,
                    "limits": {"iops": 0, "bps": 0, "read_iops": 50, "write_iops": 0, "read_bps": 0, "write_bps": 10485760},
                    "shares": {"weight": null, "reservation_iops": null, "reservation_bps": null, "latency_target_us": null},
                    "counters": {"admitted_requests": 9, "admitted_ops": 10, "admitted_bytes": 40960, "holds": 0, "throttled_slices": 0, "throttled_us": 0, "sched_dispatched": null, "sched_holds": null},
                    "latency": null,
                    "rates": null
                }
            ]
        })
    );
}

/// A domain's latency is its vbds' `statistics/latency` files added up bucket by bucket;
/// another domain's vbds (even one whose id starts with the same digits) are not in it.
#[test]
fn status_adds_up_the_latency_of_a_domains_vbds() {
    let fake = two_domains();
    let latency = |service: &str, wait: &str| {
        format!(
            "service count 0 sum_us 0 max_us 0 p50_us 0 p99_us 0\n\
             wait count 0 sum_us 0 max_us 0 p50_us 0 p99_us 0\n\
             service_buckets {service}\nwait_buckets {wait}\n"
        )
    };
    for (domid, devid, text) in [
        (7, 51712, latency("960:60", "0:60")),
        (7, 51728, latency("960:39 40960:1", "0:39 5120:1")),
        (71, 51712, latency("1:1000", "1:1000")),
    ] {
        let vbd = add_vbd(&fake, domid, devid, &[]);
        let statistics = vbd.parent().unwrap().join("statistics");
        fs::create_dir_all(&statistics).unwrap();
        fs::write(statistics.join("latency"), text).unwrap();
    }
    let json = json_of(&fake.run(&["status", "--json", "--interval", "0"]));
    assert_eq!(
        json["domains"][0]["latency"],
        json!({
            "service": {"count": 100, "p50_us": 992, "p99_us": 992, "max_us": 45055},
            "wait": {"count": 100, "p50_us": 0, "p99_us": 0, "max_us": 5631}
        })
    );
    assert_eq!(json["domains"][1]["latency"], Value::Null);
    // A file rblkctl cannot read is an error naming it.
    let bad = fake
        .root()
        .join("bus/xen-backend/devices/vbd-7-51712/statistics/latency");
    fs::write(&bad, "service_buckets 17:1\nwait_buckets\n").unwrap();
    let output = fake.run(&["status", "--interval", "0"]);
    assert_eq!(status(&output), 1);
    assert_eq!(
        stderr(&output),
        format!("rblkctl: {}: no bucket starts at 17 µs\n", bad.display())
    );
}

#[test]
fn a_missing_parameter_is_null() {
    let fake = FakeSysfs::loaded();
    fs::remove_file(fake.module_dir().join("parameters/op_size")).unwrap();
    let json = json_of(&fake.run(&["status", "--json", "--interval=0"]));
    assert_eq!(json["params"]["op_size"], Value::Null);
    assert_eq!(json["params"]["timeslice_us"], 10000);
    assert_eq!(json["domains"], json!([]));
}

#[test]
fn status_table_shows_limits_with_dashes_for_unlimited() {
    let fake = two_domains();
    let output = fake.run(&["status", "--interval", "0"]);
    assert_eq!(status(&output), 0);
    let table = stdout(&output);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0][..3],
        ["rblkback", "timeslice_us=10000", "default_iops=100"]
    );
    assert_eq!(
        lines[1][..7],
        ["DOMID", "IOPS", "BPS", "RD_IOPS", "WR_IOPS", "RD_BPS", "WR_BPS"]
    );
    assert_eq!(lines[2][..7], ["7", "500", "20MiB", "-", "-", "-", "-"]);
    assert_eq!(lines[3][..7], ["12", "-", "-", "50", "-", "-", "10MiB"]);
    assert_eq!(lines.len(), 4, "{table}");
}

#[test]
fn get_shows_one_domain_and_fails_for_an_absent_one() {
    let fake = two_domains();
    let json = json_of(&fake.run(&["get", "12", "--json", "--interval", "0"]));
    assert_eq!(json["domid"], 12);
    assert_eq!(json["limits"]["write_bps"], 10 << 20);
    assert_eq!(json["counters"]["admitted_ops"], 10);
    assert_eq!(json["rates"], Value::Null);

    let output = fake.run(&["get", "12", "--interval", "0"]);
    assert_eq!(stdout(&output).lines().count(), 3, "{}", stdout(&output));

    // Refused before any waiting, even with the default one-second interval.
    let output = fake.run(&["get", "5"]);
    assert_eq!(status(&output), 1);
    let expected = fake.domains_dir().join("5");
    assert_eq!(
        stderr(&output),
        format!(
            "rblkctl: domain 5 has no entry (no {})\n",
            expected.display()
        )
    );
    assert_eq!(status(&fake.run(&["get", "99999"])), 2);
}

/// Makes `path` a named pipe: a reader's open(2) blocks until we write, which tells this
/// test exactly when rblkctl starts a sample.
fn make_fifo(path: &Path) {
    fs::remove_file(path).unwrap();
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
}

/// Runs rblkctl with `args` (a command taking two samples) on `fake`, with `change`
/// applied to the tree between the samples. Each sample reads the parameters before the
/// domains; `burst` as a pipe makes the start of each sample visible.
fn run_changing_between_samples(
    fake: &FakeSysfs,
    args: &[&str],
    change: impl FnOnce(&Path) + Send + 'static,
) -> Output {
    let burst = fake.module_dir().join("parameters/burst");
    make_fifo(&burst);
    let root = fake.root().to_path_buf();
    let changer = thread::spawn(move || {
        fs::write(&burst, "2\n").unwrap(); // first sample has started
                                           // It reads a few dozen small files; then the tree changes.
        thread::sleep(Duration::from_millis(300));
        change(&root);
        fs::write(&burst, "2\n").unwrap(); // second sample
    });
    let output = fake.run(args);
    changer.join().unwrap();
    output
}

#[test]
fn rates_come_from_two_samples() {
    let fake = two_domains();
    let output =
        run_changing_between_samples(&fake, &["status", "--json", "--interval", "1"], |root| {
            write_counters(
                root,
                7,
                [1500, 1700, (4 << 20) + (1 << 20), 35, 40, 500_000],
            );
            write_counters(root, 12, [5, 5, 0, 0, 0, 0]); // went backwards: recreated
        });
    let json = json_of(&output);

    let interval = json["interval_s"].as_f64().unwrap();
    assert!((1.0..1.5).contains(&interval), "interval {interval}");
    let rates = &json["domains"][0]["rates"];
    let close = |key: &str, over_one_second: f64| {
        let value = rates[key].as_f64().unwrap();
        let expected = over_one_second / interval;
        assert!(
            (value - expected).abs() < 0.02 * expected + 0.01,
            "{key}: {value}, expected {expected}"
        );
    };
    close("requests_per_s", 500.0);
    close("ops_per_s", 500.0);
    close("bytes_per_s", 1048576.0);
    close("held_pct", 25.0);
    // Counts over the interval are exact, whatever its length; the only domain with
    // rates got all of the requests.
    assert_eq!(json["domains"][0]["rates"]["holds_delta"], 5);
    assert_eq!(
        json["domains"][0]["rates"]["sched_holds_delta"],
        Value::Null
    );
    assert_eq!(json["domains"][0]["rates"]["share_pct"], 100.0);
    assert_eq!(json["domains"][0]["counters"]["admitted_ops"], 1700);
    assert_eq!(json["domains"][1]["rates"], Value::Null);
}

/// Three domains with the scheduler's files, weights 1:2:4, one with a reservation of
/// operations and one of bytes.
fn three_scheduled_domains() -> FakeSysfs {
    let fake = FakeSysfs::loaded();
    for (domid, shares, requests, holds, sched) in [
        (1, [100, 0, 0], 1000, 4, [1000, 40]),
        (2, [200, 50, 0], 2000, 0, [2000, 30]),
        (3, [400, 0, 10 << 20], 4000, 9, [4000, 20]),
    ] {
        fake.add_domain(
            domid,
            [0; 6],
            [requests, requests, requests * 4096, holds, holds, 0],
        );
        write_scheduler_files(fake.root(), domid, shares, sched);
    }
    fake
}

/// The cells of `table`'s domain rows (after the header line and the column names)
/// under the columns named `names`.
fn table_columns(table: &str, names: &[&str]) -> Vec<Vec<String>> {
    let mut lines = table.lines().skip(1);
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let positions: Vec<usize> = names
        .iter()
        .map(|name| {
            header
                .iter()
                .position(|column| column == name)
                .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
        })
        .collect();
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cells.len(), header.len(), "{table}");
            positions.iter().map(|&i| cells[i].to_string()).collect()
        })
        .collect()
}

#[test]
fn status_shows_the_scheduler_settings_and_counters() {
    let fake = three_scheduled_domains();
    let json = json_of(&fake.run(&["status", "--json", "--interval", "0"]));
    let domains = json["domains"].as_array().unwrap();
    assert_eq!(
        domains.iter().map(|d| &d["shares"]).collect::<Vec<_>>(),
        [
            &json!({"weight": 100, "reservation_iops": 0, "reservation_bps": 0, "latency_target_us": null}),
            &json!({"weight": 200, "reservation_iops": 50, "reservation_bps": 0, "latency_target_us": null}),
            &json!({"weight": 400, "reservation_iops": 0, "reservation_bps": 10485760, "latency_target_us": null}),
        ]
    );
    assert_eq!(
        domains[2]["counters"],
        json!({
            "admitted_requests": 4000, "admitted_ops": 4000, "admitted_bytes": 16384000,
            "holds": 9, "throttled_slices": 9, "throttled_us": 0,
            "sched_dispatched": 4000, "sched_holds": 20
        })
    );

    let output = fake.run(&["status", "--interval", "0"]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    let table = stdout(&output);
    assert_eq!(
        table_columns(&table, &["DOMID", "WEIGHT", "RES_IOPS", "RES_BPS"]),
        [
            ["1", "100", "-", "-"],
            ["2", "200", "50", "-"],
            ["3", "400", "-", "10MiB"],
        ]
    );
    // Without rates there is nothing to share.
    assert!(!table.contains("SHARE%"), "{table}");
}

#[test]
fn top_shows_each_domains_share_of_the_requests_admitted_in_the_interval() {
    let fake = three_scheduled_domains();
    // Admitted 100, 200 and 400 requests; held by their limit 0, 2, 1 times and by the
    // scheduler 8, 5, 0 times.
    let output = run_changing_between_samples(
        &fake,
        &["top", "--interval", "0.5", "--count", "1"],
        |root| {
            write_counters(root, 1, [1100, 1100, 1100 * 4096, 4, 4, 0]);
            write_counters(root, 2, [2200, 2200, 2200 * 4096, 2, 2, 0]);
            write_counters(root, 3, [4400, 4400, 4400 * 4096, 10, 10, 0]);
            write_domain_files(root, 1, &[("sched_holds", 48)]);
            write_domain_files(root, 2, &[("sched_holds", 35)]);
        },
    );
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    let table = stdout(&output);
    assert_eq!(
        table_columns(
            &table,
            &[
                "DOMID",
                "WEIGHT",
                "SHARE%",
                "LIM_HELD",
                "SCHED_HELD",
                "HOLDS"
            ]
        ),
        [
            ["1", "100", "14.3", "0", "8", "4"],
            ["2", "200", "28.6", "2", "5", "2"],
            ["3", "400", "57.1", "1", "0", "10"],
        ]
    );
}

#[test]
fn status_json_has_the_shares_and_the_holds_of_the_interval() {
    let fake = three_scheduled_domains();
    let output =
        run_changing_between_samples(&fake, &["status", "--json", "--interval", "0.5"], |root| {
            write_counters(root, 1, [1100, 1100, 1100 * 4096, 4, 4, 0]);
            write_counters(root, 2, [2200, 2200, 2200 * 4096, 2, 2, 0]);
            write_counters(root, 3, [4400, 4400, 4400 * 4096, 10, 10, 0]);
            write_domain_files(root, 1, &[("sched_holds", 48)]);
        });
    let json = json_of(&output);
    let interval_counts: Vec<Value> = json["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|domain| {
            let rates = &domain["rates"];
            json!([
                rates["share_pct"],
                rates["holds_delta"],
                rates["sched_holds_delta"]
            ])
        })
        .collect();
    assert_eq!(
        interval_counts,
        [
            json!([14.29, 0, 8]),
            json!([28.57, 2, 0]),
            json!([57.14, 1, 0])
        ]
    );
}

#[test]
fn missing_scheduler_files_show_as_dashes_and_nulls() {
    // Domain 7 has every scheduler file, domain 12 only its weight (not a layout any
    // rblkback has, but each file is read on its own).
    let fake = two_domains();
    write_scheduler_files(fake.root(), 7, [300, 20, 1 << 20], [77, 3]);
    write_domain_files(fake.root(), 12, &[("weight", 50)]);
    let json = json_of(&fake.run(&["status", "--json", "--interval", "0"]));
    assert_eq!(
        json["domains"][1]["shares"],
        json!({"weight": 50, "reservation_iops": null, "reservation_bps": null, "latency_target_us": null})
    );
    assert_eq!(json["domains"][1]["counters"]["sched_holds"], Value::Null);
    assert_eq!(json["domains"][0]["counters"]["sched_dispatched"], 77);
    let output = fake.run(&["top", "--interval", "0.1", "--count", "1"]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(
        table_columns(
            &stdout(&output),
            &["DOMID", "WEIGHT", "RES_IOPS", "RES_BPS", "SCHED_HELD"]
        ),
        [["7", "300", "20", "1MiB", "0"], ["12", "50", "-", "-", "-"]]
    );
}

#[test]
fn top_prints_plain_tables_when_not_on_a_terminal() {
    let fake = two_domains();
    let output = fake.run(&["top", "--interval", "0.1", "--count", "3"]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(!text.contains('\x1b'), "escape codes in {text:?}");
    let tables: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(tables.len(), 3, "{text}");
    for table in tables {
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("rblkback  timeslice_us=10000")
                && lines[0].contains("(rates over"),
            "{table}"
        );
        assert!(
            lines[1].contains("OPS/S") && lines[1].contains("HELD%"),
            "{table}"
        );
        assert_eq!(lines.len(), 4, "{table}");
    }
}

#[test]
fn the_sysfs_root_may_come_from_the_environment() {
    let fake = two_domains();
    let output = rblkctl()
        .env("RBLKCTL_SYSFS_ROOT", fake.root())
        .args(["status", "--json", "--interval", "0"])
        .output()
        .unwrap();
    assert_eq!(json_of(&output)["domains"][1]["domid"], 12);
    let output = rblkctl()
        .env("RBLKCTL_SYSFS_ROOT", fake.root())
        .args(["set", "3", "write_iops=7"])
        .output()
        .unwrap();
    assert_eq!(status(&output), 0);
    assert_eq!(fake.limits_written(), "3 write_iops=7\n");
}

fn group_files(values: [u64; 5]) -> Vec<(&'static str, u64)> {
    ["window", "in_flight", "dispatched", "held", "vbds"]
        .into_iter()
        .zip(values)
        .collect()
}

#[test]
fn groups_show_each_groups_window_and_its_use() {
    let fake = FakeSysfs::loaded();
    let mut adaptive = group_files([32, 3, 123456, 17, 2]);
    adaptive.extend([("latency_target_us", 20_000), ("window_now", 9)]);
    fake.add_group("vdb", &adaptive);
    fake.add_group("nvme0n1", &group_files([64, 0, 0, 0, 1]));
    // A group of an rblkback that lacks a file, and a stray file that is no group.
    fake.add_group("tenants", &group_files([8, 1, 5, 0, 3])[..4]);
    fs::write(fake.module_dir().join("groups/README"), "x").unwrap();

    let output = fake.run(&["groups"]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        [
            "  GROUP  WINDOW  IN_FLIGHT  DISPATCHED  HELD  VBDS  WINDOW_NOW  TARGET\n",
            "nvme0n1      64          0           0     0     1           -       -\n",
            "tenants       8          1           5     0     -           -       -\n",
            "    vdb      32          3      123456    17     2           9  20.0ms\n",
        ]
        .concat()
    );
    let json = json_of(&fake.run(&["groups", "--json"]));
    assert_eq!(
        json,
        json!({"groups": [
            {"name": "nvme0n1", "window": 64, "in_flight": 0, "dispatched": 0, "held": 0, "vbds": 1,
             "latency_target_us": null, "window_now": null},
            {"name": "tenants", "window": 8, "in_flight": 1, "dispatched": 5, "held": 0, "vbds": null,
             "latency_target_us": null, "window_now": null},
            {"name": "vdb", "window": 32, "in_flight": 3, "dispatched": 123456, "held": 17, "vbds": 2,
             "latency_target_us": 20000, "window_now": 9}
        ]})
    );
}

#[test]
fn no_groups_directory_is_no_groups_and_no_module_is_an_error() {
    let fake = FakeSysfs::loaded();
    let output = fake.run(&["groups"]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "(no groups)\n");
    assert_eq!(
        json_of(&fake.run(&["groups", "--json"])),
        json!({"groups": []})
    );

    let absent = FakeSysfs::empty();
    let output = absent.run(&["groups", "--json"]);
    assert_eq!(status(&output), 1);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        format!(
            "rblkctl: rblkback is not loaded (no {})\n",
            absent.root().join("module/rblkback").display()
        )
    );
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

#[test]
fn group_sets_the_window_of_an_existing_group() {
    let fake = FakeSysfs::loaded();
    fake.add_group("vdb", &group_files([32, 0, 0, 0, 2]));
    let window = fake.module_dir().join("groups/vdb/window");

    let output = fake.run(&["group", "vdb", "window=16", "--dry-run"]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("echo 16 > {}\n", window.display()));
    assert_eq!(read(&window), "32\n", "--dry-run wrote");

    let output = fake.run(&["group", "vdb", "window=016"]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(
        (stdout(&output), stderr(&output)),
        (String::new(), String::new())
    );
    assert_eq!(read(&window), "16\n");
}

#[test]
fn invalid_group_settings_are_refused_and_nothing_is_written() {
    let fake = FakeSysfs::loaded();
    fake.add_group("vdb", &group_files([32, 0, 0, 0, 2]));
    let window = fake.module_dir().join("groups/vdb/window");
    let cases: &[(&[&str], &str)] = &[
        (
            &["group", "vdb", "window=0"],
            "'window=0': a window of 0 is refused: a window is 1..4096 op_size units in flight\n",
        ),
        (
            &["group", "vdb", "window=4097"],
            "'window=4097': too large: the most window accepts is 4096\n",
        ),
        (
            &["group", "vdb", "window=-1"],
            "'window=-1': the value must be an unsigned decimal number (no sign) from 1 to 4096\n",
        ),
        (
            &["group", "vdb", "weight=5"],
            "'weight=5': unknown key 'weight'; the keys are window, iops_limit, bps_limit, latency_target_us\n",
        ),
        (
            &["group", "../groups/vdb", "window=8"],
            "'../groups/vdb': a group name is 1 to 31 of A-Z a-z 0-9 _ . - (not '/')\n",
        ),
        (
            &["group", "..", "window=8"],
            "'..': a group name is 1 to 31 of A-Z a-z 0-9 _ . -, other than . and ..\n",
        ),
    ];
    for (args, expected) in cases {
        let output = fake.run(args);
        assert_eq!(status(&output), 2, "{args:?}: {}", stderr(&output));
        assert_eq!(stderr(&output), format!("rblkctl: {expected}"), "{args:?}");
        assert_eq!(read(&window), "32\n", "{args:?} wrote the window");
    }
}

#[test]
fn a_group_that_is_not_there_is_an_io_error() {
    let fake = FakeSysfs::loaded();
    let groups = fake.module_dir().join("groups");
    let output = fake.run(&["group", "vdb", "window=8"]);
    assert_eq!(status(&output), 1);
    assert_eq!(
        stderr(&output),
        format!(
            "rblkctl: the loaded rblkback has no scheduling groups (no {})\n",
            groups.display()
        )
    );
    fake.add_group("vdb", &group_files([32, 0, 0, 0, 2]));
    let output = fake.run(&["group", "sdz", "window=8"]);
    assert_eq!(status(&output), 1);
    assert_eq!(
        stderr(&output),
        format!(
            "rblkctl: no scheduling group 'sdz' (no {}); 'rblkctl groups' lists them\n",
            groups.join("sdz").display()
        )
    );
    assert!(!groups.join("sdz").exists());
    let absent = FakeSysfs::empty();
    let output = absent.run(&["group", "vdb", "window=8"]);
    assert_eq!(status(&output), 1);
    assert!(
        stderr(&output).starts_with("rblkctl: rblkback is not loaded (no "),
        "{}",
        stderr(&output)
    );
}

/// Creates `vbd-<domid>-<devid>` with a `sched` directory holding `files` (name, content).
fn add_vbd(fake: &FakeSysfs, domid: u16, devid: u32, files: &[(&str, &str)]) -> PathBuf {
    let vbd = fake
        .root()
        .join("bus/xen-backend/devices")
        .join(format!("vbd-{domid}-{devid}"));
    let sched = vbd.join("sched");
    fs::create_dir_all(&sched).unwrap();
    for (name, content) in files {
        fs::write(sched.join(name), content).unwrap();
    }
    sched
}

#[test]
fn vbd_sets_its_weight_and_group() {
    let fake = FakeSysfs::loaded();
    let sched = add_vbd(&fake, 7, 51712, &[("weight", "100\n"), ("group", "vdb\n")]);

    let output = fake.run(&["vbd", "7", "51712", "weight=300", "group=tenants"]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(
        (stdout(&output), stderr(&output)),
        (String::new(), String::new())
    );
    assert_eq!(
        (read(&sched.join("weight")), read(&sched.join("group"))),
        ("300\n".to_string(), "tenants\n".to_string())
    );

    // An empty name goes back to the default group: the kernel reads an empty line.
    let output = fake.run(&["vbd", "7", "51712", "group=", "--dry-run"]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!("echo > {}\n", sched.join("group").display())
    );
    assert_eq!(read(&sched.join("group")), "tenants\n", "--dry-run wrote");
    let output = fake.run(&["vbd", "7", "51712", "group="]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    assert_eq!(read(&sched.join("group")), "\n");
}

#[test]
fn invalid_vbd_settings_are_refused_and_nothing_is_written() {
    let fake = FakeSysfs::loaded();
    let sched = add_vbd(&fake, 7, 51712, &[("weight", "100\n"), ("group", "vdb\n")]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["vbd", "7", "51712", "group=tenants", "weight=0"],
            "'weight=0': a weight of 0 is refused: a weight is 1..10000; the smallest share is \
             weight=1\n",
        ),
        (
            &["vbd", "7", "51712", "weight=10001"],
            "'weight=10001': too large: the most weight accepts is 10000\n",
        ),
        (
            &["vbd", "7", "51712", "group=a:b"],
            "'group=a:b': a group name is 1 to 31 of A-Z a-z 0-9 _ . - (not ':'); an empty \
             group= goes back to the default group (the disk's)\n",
        ),
        (
            &["vbd", "7", "51712", "window=8"],
            "'window=8': unknown key 'window'; the keys are weight, group, iops_limit, bps_limit\n",
        ),
        (
            &["vbd", "7", "xvda", "weight=1"],
            "'xvda': a device id is an unsigned decimal number below 2^32, as in the vbd's \
             name (vbd-<domid>-<devid>, e.g. 51712 for xvda)\n",
        ),
        (
            &["vbd", "32752", "51712", "weight=1"],
            "'32752': a domain id must be below 32752 (DOMID_FIRST_RESERVED)\n",
        ),
    ];
    for (args, expected) in cases {
        let output = fake.run(args);
        assert_eq!(status(&output), 2, "{args:?}: {}", stderr(&output));
        assert_eq!(stderr(&output), format!("rblkctl: {expected}"), "{args:?}");
        assert_eq!(
            (read(&sched.join("weight")), read(&sched.join("group"))),
            ("100\n".to_string(), "vdb\n".to_string()),
            "{args:?} wrote"
        );
    }
}

#[test]
fn a_vbd_without_the_scheduler_or_not_there_is_an_io_error() {
    let fake = FakeSysfs::loaded();
    let devices = fake.root().join("bus/xen-backend/devices");
    let output = fake.run(&["vbd", "7", "51712", "weight=300"]);
    assert_eq!(status(&output), 1);
    assert_eq!(
        stderr(&output),
        format!(
            "rblkctl: no vbd-7-51712 (no {})\n",
            devices.join("vbd-7-51712").display()
        )
    );
    // A vbd of an rblkback without the scheduler.
    fs::create_dir_all(devices.join("vbd-7-51712/statistics")).unwrap();
    let output = fake.run(&["vbd", "7", "51712", "weight=300"]);
    assert_eq!(status(&output), 1);
    assert_eq!(
        stderr(&output),
        format!(
            "rblkctl: vbd-7-51712 has no scheduler settings (no {}): the loaded rblkback has \
             no scheduler\n",
            devices.join("vbd-7-51712/sched").display()
        )
    );
    assert!(!devices.join("vbd-7-51712/sched").exists());

    // The first file written, the second missing: the message says what was written.
    let sched = add_vbd(&fake, 7, 51712, &[("weight", "100\n")]);
    let output = fake.run(&["vbd", "7", "51712", "weight=300", "group=tenants"]);
    assert_eq!(status(&output), 1);
    assert_eq!(
        stderr(&output),
        format!(
            "rblkctl: {} is missing: the loaded rblkback may be a different version than \
             rblkctl; already written: weight=300\n",
            sched.join("group").display()
        )
    );
    assert_eq!(read(&sched.join("weight")), "300\n");
    assert!(!sched.join("group").exists(), "created the group file");
}
