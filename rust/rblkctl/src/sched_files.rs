//! Settings of the scheduler that have a file each rather than a `limits` line: a
//! scheduling group's `window` (`/sys/module/rblkback/groups/<name>/window`) and a vbd's
//! `weight` and `group` (`/sys/bus/xen-backend/devices/vbd-<domid>-<devid>/sched/`).
//!
//! As with limits, the kernel answers a bad value with a bare `EINVAL`; every value is
//! checked here first, by the code the module checks it with where that is shared (the
//! weight by `throttle::control`, the window by `sched::FixedWindow`), and nothing is
//! written unless all of them pass. A group's name becomes part of a path, so it is held
//! to the module's rules for names before it is used for anything.

use throttle::control::{meter_key, parse_limit_value, parse_share_value, ShareKey};
use throttle::number::parse_decimal;
use throttle::Meter;

use crate::limits_line::{check_single_field, weight_reason, InvalidToken};

/// The longest group name the module takes.
pub(crate) const MAX_GROUP_NAME_LEN: usize = sched::MAX_GROUP_NAME;

/// One file of a group's or vbd's directory and the value to write to it, as the kernel
/// reads it (written with one newline, as `echo` would).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileSetting {
    /// The file's name in the directory.
    pub(crate) file: &'static str,
    /// The value, without the newline.
    pub(crate) value: String,
}

impl FileSetting {
    /// `file=value`, as the operator wrote it, for messages.
    pub(crate) fn as_setting(&self) -> String {
        format!("{}={}", self.file, self.value)
    }
}

/// Checks a group's name as the module does: 1 to 31 of `A-Z a-z 0-9 _ . -`. `.` and
/// `..` are refused too: a group is a directory, and those two name other ones.
pub(crate) fn check_group_name(name: &str) -> Result<(), String> {
    check_single_field(name)?;
    match group_name_problem(name) {
        Some(reason) => Err(InvalidToken::new(name, reason).into()),
        None => Ok(()),
    }
}

/// What is wrong with `name` as a group's name, if anything (the rule is the module's,
/// `sched::valid_group_name`; this says which part of it fails).
fn group_name_problem(name: &str) -> Option<String> {
    if sched::valid_group_name(name.as_bytes()) {
        return None;
    }
    let rule = format!("a group name is 1 to {MAX_GROUP_NAME_LEN} of A-Z a-z 0-9 _ . -");
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Some(format!("{rule} (not '{bad}')"));
    }
    if name.is_empty() || name.len() > MAX_GROUP_NAME_LEN {
        return Some(format!("{rule} (this one has {})", name.len()));
    }
    Some(format!("{rule}, other than . and .."))
}

/// Checks a vbd's device id: the unsigned decimal number in its name (`vbd-7-51712`).
pub(crate) fn parse_devid(text: &str) -> Result<u32, String> {
    check_single_field(text)?;
    parse_decimal(text.as_bytes())
        .ok()
        .and_then(|devid| u32::try_from(devid).ok())
        .ok_or_else(|| {
            InvalidToken::new(
                text,
                "a device id is an unsigned decimal number below 2^32, as in the vbd's name \
                 (vbd-<domid>-<devid>, e.g. 51712 for xvda)",
            )
            .into()
        })
}

/// A key of a group's or vbd's settings: its file's name, and the check of its value
/// (giving the text to write, or why not).
type SettingKey = (&'static str, fn(&str) -> Result<String, String>);

/// The settings of `rblkctl group <name> key=value...`: `window` (1..4096), the pool's
/// `iops_limit` and `bps_limit` (shared by the group's vbds; 0 = none) and
/// `latency_target_us` (the latency an adaptive window holds; 0 = the fixed window).
pub(crate) fn group_settings(settings: &[String]) -> Result<Vec<FileSetting>, String> {
    parse_settings(
        settings,
        &[
            ("window", window_value),
            ("iops_limit", iops_limit_value),
            ("bps_limit", bps_limit_value),
            ("latency_target_us", latency_target_value),
        ],
    )
}

/// A latency target: microseconds, 0 (none) to the most the module takes.
fn latency_target_value(value: &str) -> Result<String, String> {
    let max = sched::MAX_TARGET_US;
    match parse_decimal(value.as_bytes()) {
        Ok(us) if us <= max => Ok(us.to_string()),
        Ok(_) => Err(format!(
            "too large: the most latency_target_us accepts is {max}"
        )),
        Err(_) if value.is_empty() => Err("no value after 'latency_target_us='".to_string()),
        Err(_) if value.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "too large: the most latency_target_us accepts is {max}"
        )),
        Err(_) => Err(format!(
            "the value must be an unsigned decimal number of microseconds from 0 to {max}"
        )),
    }
}

/// The settings of `rblkctl vbd <domid> <devid> key=value...`: `weight` (1..10000),
/// `group` (a name, or nothing for the default group) and the vbd's own `iops_limit` and
/// `bps_limit` (inside its domain's; 0 = none).
pub(crate) fn vbd_settings(settings: &[String]) -> Result<Vec<FileSetting>, String> {
    parse_settings(
        settings,
        &[
            ("weight", vbd_weight_value),
            ("group", vbd_group_value),
            ("iops_limit", iops_limit_value),
            ("bps_limit", bps_limit_value),
        ],
    )
}

fn iops_limit_value(value: &str) -> Result<String, String> {
    limit_value(Meter::Ops, value)
}

fn bps_limit_value(value: &str) -> Result<String, String> {
    limit_value(Meter::Bytes, value)
}

/// A limit as the module's limit files take it: the limits line's value syntax
/// (`unlimited`, byte units for bps), checked with the kernel's parser.
fn limit_value(meter: Meter, value: &str) -> Result<String, String> {
    let number = crate::limits_line::limit_number(meter, value)?;
    parse_limit_value(meter, number.as_bytes())
        .map(|v| v.to_string())
        .map_err(|_| format!("out of range for {}_limit", meter_key(meter)))
}

/// Splits each `key=value`, refuses unknown and repeated keys, and checks each value.
/// Every setting is checked before the result is returned, so that nothing is written
/// unless all are good.
fn parse_settings(settings: &[String], keys: &[SettingKey]) -> Result<Vec<FileSetting>, String> {
    let names: Vec<&str> = keys.iter().map(|&(name, _)| name).collect();
    if settings.is_empty() {
        return Err("no key=value given".to_string());
    }
    let mut accepted: Vec<FileSetting> = Vec::with_capacity(settings.len());
    for setting in settings {
        check_single_field(setting)?;
        let refuse = |reason: String| -> String { InvalidToken::new(setting, reason).into() };
        let Some((key, value)) = setting.split_once('=') else {
            let example = names.first().copied().unwrap_or("key");
            return Err(refuse(format!("expected key=value, e.g. {example}=8")));
        };
        let Some(&(file, check_value)) = keys.iter().find(|&&(name, _)| name == key) else {
            return Err(refuse(format!(
                "unknown key '{key}'; the keys are {}",
                names.join(", ")
            )));
        };
        if accepted.iter().any(|earlier| earlier.file == file) {
            return Err(refuse(format!("'{key}' is given more than once")));
        }
        let value = check_value(value).map_err(refuse)?;
        accepted.push(FileSetting { file, value });
    }
    Ok(accepted)
}

fn vbd_weight_value(value: &str) -> Result<String, String> {
    parse_share_value(ShareKey::Weight, value.as_bytes())
        .map(|weight| weight.to_string())
        .map_err(|error| weight_reason(error, value))
}

fn vbd_group_value(value: &str) -> Result<String, String> {
    // An empty name is the kernel's word for "back to the default group".
    if value.is_empty() {
        return Ok(String::new());
    }
    match group_name_problem(value) {
        None => Ok(value.to_string()),
        Some(reason) => Err(format!(
            "{reason}; an empty group= goes back to the default group (the disk's)"
        )),
    }
}

fn window_value(value: &str) -> Result<String, String> {
    let max = sched::FixedWindow::MAX;
    let range = format!("a window is 1..{max} op_size units in flight");
    match parse_decimal(value.as_bytes()) {
        Ok(units) if sched::FixedWindow::new(units).is_some() => Ok(units.to_string()),
        Ok(0) => Err(format!("a window of 0 is refused: {range}")),
        Ok(_) => Err(format!("too large: the most window accepts is {max}")),
        Err(_) if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("too large: the most window accepts is {max}"))
        }
        Err(_) if value.is_empty() => Err("no value after 'window='".to_string()),
        Err(_) => Err(format!(
            "the value must be an unsigned decimal number{} from 1 to {max}",
            if value.starts_with(['-', '+']) {
                " (no sign)"
            } else {
                ""
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(settings: &[&str]) -> Vec<String> {
        settings.iter().map(|s| s.to_string()).collect()
    }

    fn setting(file: &'static str, value: &str) -> FileSetting {
        FileSetting {
            file,
            value: value.to_string(),
        }
    }

    #[test]
    fn group_names_follow_the_modules_rules() {
        for good in [
            "vdb",
            "nvme0n1",
            "dm-0",
            "a",
            "tenant_a.slow",
            &"x".repeat(31),
        ] {
            assert_eq!(check_group_name(good), Ok(()), "{good}");
        }
        let cases = [
            ("", "'': empty"),
            (
                "a/b",
                "'a/b': a group name is 1 to 31 of A-Z a-z 0-9 _ . - (not '/')",
            ),
            (
                "é",
                "'é': a group name is 1 to 31 of A-Z a-z 0-9 _ . - (not 'é')",
            ),
            (
                &"x".repeat(32),
                "a group name is 1 to 31 of A-Z a-z 0-9 _ . - (this one has 32)",
            ),
            (
                "..",
                "'..': a group name is 1 to 31 of A-Z a-z 0-9 _ . -, other than . and ..",
            ),
            (".", "other than . and .."),
            ("a b", "'a b': contains a space"),
        ];
        for (name, expected) in cases {
            let message = check_group_name(name).unwrap_err();
            assert!(message.contains(expected), "{name:?}: {message}");
        }
    }

    #[test]
    fn device_ids_are_unsigned_32_bit_numbers() {
        assert_eq!(parse_devid("51712"), Ok(51712));
        assert_eq!(parse_devid("0"), Ok(0));
        assert_eq!(parse_devid("4294967295"), Ok(u32::MAX));
        for bad in ["4294967296", "-1", "xvda", "0x10", "5 1"] {
            let message = parse_devid(bad).unwrap_err();
            assert!(message.starts_with(&format!("'{bad}': ")), "{message}");
        }
        assert!(parse_devid("xvda")
            .unwrap_err()
            .contains("a device id is an unsigned decimal number below 2^32"));
    }

    #[test]
    fn a_groups_latency_target_is_microseconds_up_to_the_modules_most() {
        assert_eq!(
            group_settings(&strings(&["latency_target_us=20000", "window=64"])),
            Ok(vec![
                setting("latency_target_us", "20000"),
                setting("window", "64")
            ])
        );
        assert_eq!(
            group_settings(&strings(&["latency_target_us=0"])),
            Ok(vec![setting("latency_target_us", "0")])
        );
        let max = sched::MAX_TARGET_US;
        for (input, error) in [
            (
                format!("latency_target_us={}", max + 1),
                format!("too large: the most latency_target_us accepts is {max}"),
            ),
            (
                "latency_target_us=99999999999999999999999".to_string(),
                format!("too large: the most latency_target_us accepts is {max}"),
            ),
            (
                "latency_target_us=20ms".to_string(),
                format!(
                    "the value must be an unsigned decimal number of microseconds from 0 to {max}"
                ),
            ),
            (
                "latency_target_us=".to_string(),
                "no value after 'latency_target_us='".to_string(),
            ),
        ] {
            assert_eq!(
                group_settings(&strings(&[input.as_str()])),
                Err(format!("'{input}': {error}"))
            );
        }
    }

    #[test]
    fn a_groups_window_is_one_to_4096() {
        assert_eq!(
            group_settings(&strings(&["window=8"])),
            Ok(vec![setting("window", "8")])
        );
        assert_eq!(
            group_settings(&strings(&["window=04096"])),
            Ok(vec![setting("window", "4096")])
        );
        assert_eq!(
            group_settings(&strings(&["window=1"])),
            Ok(vec![setting("window", "1")])
        );
        let cases: &[(&[&str], &str)] = &[
            (
                &["window=0"],
                "'window=0': a window of 0 is refused: a window is 1..4096 op_size units in flight",
            ),
            (&["window=4097"], "'window=4097': too large: the most window accepts is 4096"),
            (
                &["window=99999999999999999999999"],
                "'window=99999999999999999999999': too large: the most window accepts is 4096",
            ),
            (
                &["window=-1"],
                "'window=-1': the value must be an unsigned decimal number (no sign) from 1 to 4096",
            ),
            (
                &["window=8k"],
                "'window=8k': the value must be an unsigned decimal number from 1 to 4096",
            ),
            (&["window="], "'window=': no value after 'window='"),
            (&["window"], "'window': expected key=value, e.g. window=8"),
            (&["weight=5"], "'weight=5': unknown key 'weight'; the keys are window, iops_limit, bps_limit, latency_target_us"),
            (&["window=8", "window=9"], "'window=9': 'window' is given more than once"),
            (&[], "no key=value given"),
        ];
        for (settings, expected) in cases {
            assert_eq!(
                group_settings(&strings(settings)),
                Err(expected.to_string()),
                "{settings:?}"
            );
        }
    }

    #[test]
    fn a_vbds_weight_and_group() {
        assert_eq!(
            vbd_settings(&strings(&["weight=0300", "group=tenants"])),
            Ok(vec![setting("weight", "300"), setting("group", "tenants")])
        );
        assert_eq!(
            vbd_settings(&strings(&["group="])),
            Ok(vec![setting("group", "")])
        );
        let cases: &[(&[&str], &str)] = &[
            (
                &["weight=0"],
                "'weight=0': a weight of 0 is refused: a weight is 1..10000; the smallest share \
                 is weight=1",
            ),
            (
                &["weight=10001"],
                "'weight=10001': too large: the most weight accepts is 10000",
            ),
            (
                &["weight=-1"],
                "'weight=-1': the value must be an unsigned decimal number (no sign) from 1 to \
                 10000",
            ),
            (
                &["group=a/b"],
                "'group=a/b': a group name is 1 to 31 of A-Z a-z 0-9 _ . - (not '/'); an empty \
                 group= goes back to the default group (the disk's)",
            ),
            (
                &["group=.."],
                "'group=..': a group name is 1 to 31 of A-Z a-z 0-9 _ . -, other than . and ..; \
                 an empty group= goes back to the default group (the disk's)",
            ),
            (
                &["window=8"],
                "'window=8': unknown key 'window'; the keys are weight, group, iops_limit, bps_limit",
            ),
            (
                &["weight=5", "group=a", "weight=6"],
                "'weight=6': 'weight' is given more than once",
            ),
            (
                &["weight=5 group=a"],
                "'weight=5 group=a': contains a space",
            ),
        ];
        for (settings, expected) in cases {
            let refusal = vbd_settings(&strings(settings)).unwrap_err();
            assert!(refusal.starts_with(expected), "{settings:?}: {refusal}");
        }
    }

    #[test]
    fn limit_keys_take_the_limits_line_syntax() {
        assert_eq!(
            vbd_settings(&strings(&["iops_limit=100", "bps_limit=20M"])),
            Ok(vec![
                setting("iops_limit", "100"),
                setting("bps_limit", "20971520")
            ])
        );
        assert_eq!(
            group_settings(&strings(&["iops_limit=unlimited", "window=4"])),
            Ok(vec![setting("iops_limit", "0"), setting("window", "4")])
        );
        assert!(vbd_settings(&strings(&["iops_limit=10000001"])).is_err());
        assert!(group_settings(&strings(&["bps_limit=-1"])).is_err());
    }
}
