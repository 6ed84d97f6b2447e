//! Reading and writing rblkback's sysfs files (`/sys/module/rblkback/...`).
//!
//! Domains come and go while we read: an entry is removed with the domain's last vbd. A
//! domain whose directory disappears halfway through a snapshot is left out of it, as if
//! it had gone a moment earlier. The scheduler's files (a domain's `weight`,
//! `reservation_*`, `sched_*`) are missing in an rblkback built before the scheduler, so
//! each of them reads as `None` when absent; any other missing or unreadable file is an
//! error.

use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use throttle::control::{meter_key, ShareKey, DOMID_FIRST_RESERVED};
use throttle::number::{parse_decimal, parse_number};
use throttle::params::Param;
use throttle::{Limits, Meter};

use crate::error::Error;
use crate::latency::Latency;
use crate::limits_line::LimitsLine;
use crate::sched_files::FileSetting;

/// A domain's counters, named as their sysfs files; all count up from the entry's
/// creation. The scheduler's are `None` when their files are missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Counters {
    pub(crate) admitted_requests: u64,
    pub(crate) admitted_ops: u64,
    pub(crate) admitted_bytes: u64,
    /// Times one of the domain's rings was held by its limit.
    pub(crate) holds: u64,
    pub(crate) throttled_slices: u64,
    pub(crate) throttled_us: u64,
    /// Requests of the domain the scheduler dispatched.
    pub(crate) sched_dispatched: Option<u64>,
    /// Times one of the domain's rings was held by the scheduler (its group's window full,
    /// another vbd chosen).
    pub(crate) sched_holds: Option<u64>,
}

impl Counters {
    /// The counter files every rblkback has, in the order of the struct's fields.
    const FILES: [&'static str; 6] = [
        "admitted_requests",
        "admitted_ops",
        "admitted_bytes",
        "holds",
        "throttled_slices",
        "throttled_us",
    ];

    fn from_values(values: [u64; 6]) -> Counters {
        let [admitted_requests, admitted_ops, admitted_bytes, holds, throttled_slices, throttled_us] =
            values;
        Counters {
            admitted_requests,
            admitted_ops,
            admitted_bytes,
            holds,
            throttled_slices,
            throttled_us,
            sched_dispatched: None,
            sched_holds: None,
        }
    }
}

/// A domain's scheduler settings as their files read, named as the files (and the keys of
/// a `limits` line); `None` where a file is missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ShareSettings {
    pub(crate) weight: Option<u64>,
    pub(crate) reservation_iops: Option<u64>,
    pub(crate) reservation_bps: Option<u64>,
    pub(crate) latency_target_us: Option<u64>,
}

impl ShareSettings {
    fn set(&mut self, key: ShareKey, value: Option<u64>) {
        let slot = match key {
            ShareKey::Weight => &mut self.weight,
            ShareKey::ReservationIops => &mut self.reservation_iops,
            ShareKey::ReservationBps => &mut self.reservation_bps,
            ShareKey::LatencyTargetUs => &mut self.latency_target_us,
        };
        *slot = value;
    }
}

/// The module parameters that shape the limits, in the module's order: what rblkctl
/// shows. The protocol maxima (indirect segments, ring order and the like) are not limits,
/// and a fixed list keeps the JSON shape fixed as the module gains parameters.
pub(crate) const LIMIT_PARAMS: [Param; 5] = [
    Param::TimesliceUs,
    Param::DefaultIops,
    Param::DefaultBps,
    Param::Burst,
    Param::OpSize,
];

/// One domain as read at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DomainSample {
    pub(crate) domid: u16,
    /// The limits in force or pending (0 = unlimited), from the `<key>_limit` files.
    pub(crate) limits: Limits,
    /// The scheduler's settings, from the files named as their keys.
    pub(crate) shares: ShareSettings,
    pub(crate) counters: Counters,
    /// The `statistics/latency` files of the domain's vbds added up; `None` when none has
    /// one (no vbd connected, or an rblkback without them).
    pub(crate) latency: Option<Latency>,
}

/// Everything rblkctl shows, read at one moment.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Snapshot {
    /// The parameters in [`LIMIT_PARAMS`], `None` if its file is missing.
    pub(crate) params: Vec<(Param, Option<u64>)>,
    /// Sorted by domain id.
    pub(crate) domains: Vec<DomainSample>,
    /// When the reading started.
    pub(crate) taken_at: Instant,
}

impl Snapshot {
    /// The domain `domid`, if it has an entry.
    pub(crate) fn domain(&self, domid: u16) -> Option<&DomainSample> {
        self.domains.iter().find(|d| d.domid == domid)
    }
}

/// One scheduling group (the vbds on one device, or named by the operator) as read at one
/// moment, named as its files; `None` for a file that is missing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct GroupSample {
    /// The group's directory name under `groups/`.
    pub(crate) name: String,
    /// The most work (op_size units) in flight while two or more of its vbds have work.
    pub(crate) window: Option<u64>,
    /// Units in flight now.
    pub(crate) in_flight: Option<u64>,
    /// Requests dispatched.
    pub(crate) dispatched: Option<u64>,
    /// Times a ring was held because the window was full.
    pub(crate) held: Option<u64>,
    /// Number of vbds in the group.
    pub(crate) vbds: Option<u64>,
    /// The latency its window holds (µs; 0: the fixed window).
    pub(crate) latency_target_us: Option<u64>,
    /// The window in force now (the adaptive one's, with a target).
    pub(crate) window_now: Option<u64>,
}

/// Whose scheduler settings a [`FileSetting`] is written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SettingsOwner {
    /// A scheduling group, by name (checked by `sched_files::check_group_name`).
    Group(String),
    /// The vbd `vbd-<domid>-<devid>`.
    Vbd { domid: u16, devid: u32 },
}

impl SettingsOwner {
    /// How messages name it.
    fn describe(&self) -> String {
        match self {
            SettingsOwner::Group(name) => format!("group '{name}'"),
            SettingsOwner::Vbd { domid, devid } => format!("vbd-{domid}-{devid}"),
        }
    }
}

/// The sysfs tree under a root directory (`/sys`, or a fake one in tests).
pub(crate) struct Sysfs {
    root: PathBuf,
}

impl Sysfs {
    pub(crate) fn new(root: PathBuf) -> Sysfs {
        Sysfs { root }
    }

    fn module_dir(&self) -> PathBuf {
        self.root.join("module").join("rblkback")
    }

    fn domains_dir(&self) -> PathBuf {
        self.module_dir().join("domains")
    }

    fn limits_file(&self) -> PathBuf {
        self.domains_dir().join("limits")
    }

    fn groups_dir(&self) -> PathBuf {
        self.module_dir().join("groups")
    }

    /// The directory of scheduling group `name`.
    pub(crate) fn group_dir(&self, name: &str) -> PathBuf {
        self.groups_dir().join(name)
    }

    /// The directory of domain `domid`'s entry.
    pub(crate) fn domain_dir(&self, domid: u16) -> PathBuf {
        self.domains_dir().join(domid.to_string())
    }

    fn vbd_dir(&self, domid: u16, devid: u32) -> PathBuf {
        self.root
            .join("bus/xen-backend/devices")
            .join(format!("vbd-{domid}-{devid}"))
    }

    /// The directory holding `owner`'s scheduler settings.
    pub(crate) fn settings_dir(&self, owner: &SettingsOwner) -> PathBuf {
        match owner {
            SettingsOwner::Group(name) => self.group_dir(name),
            SettingsOwner::Vbd { domid, devid } => self.vbd_dir(*domid, *devid).join("sched"),
        }
    }

    /// Writes each setting to its file in `owner`'s directory, in order, each in one
    /// `write(2)`. The directory must exist: that is checked first, so that nothing is
    /// written for a group or vbd that is not there.
    pub(crate) fn write_settings(
        &self,
        owner: &SettingsOwner,
        settings: &[FileSetting],
    ) -> Result<(), Error> {
        self.check_settings_dir(owner)?;
        let dir = self.settings_dir(owner);
        for (done, setting) in settings.iter().enumerate() {
            let path = dir.join(setting.file);
            let text = format!("{}\n", setting.value);
            let failure = match write_in_one_call(&path, text.as_bytes()) {
                Ok(()) => continue,
                Err(failure) => failure,
            };
            let mut message = setting_refused(owner, setting, &path, failure);
            // Each file is its own write: what went before stays written.
            if done > 0 {
                let written: Vec<String> = settings[..done]
                    .iter()
                    .map(FileSetting::as_setting)
                    .collect();
                message.push_str(&format!("; already written: {}", written.join(" ")));
            }
            return Err(Error::Failed(message));
        }
        Ok(())
    }

    fn check_settings_dir(&self, owner: &SettingsOwner) -> Result<(), Error> {
        let dir = self.settings_dir(owner);
        if dir.is_dir() {
            return Ok(());
        }
        let message = match owner {
            SettingsOwner::Group(name) => {
                let module_dir = self.module_dir();
                let groups_dir = self.groups_dir();
                if !module_dir.is_dir() {
                    return Err(not_loaded(&module_dir));
                }
                if !groups_dir.is_dir() {
                    format!(
                        "the loaded rblkback has no scheduling groups (no {})",
                        groups_dir.display()
                    )
                } else {
                    format!(
                        "no scheduling group '{name}' (no {}); 'rblkctl groups' lists them",
                        dir.display()
                    )
                }
            }
            SettingsOwner::Vbd { domid, devid } => {
                let vbd_dir = self.vbd_dir(*domid, *devid);
                if vbd_dir.is_dir() {
                    format!(
                        "{} has no scheduler settings (no {}): the loaded rblkback has no \
                         scheduler",
                        owner.describe(),
                        dir.display()
                    )
                } else {
                    format!("no {} (no {})", owner.describe(), vbd_dir.display())
                }
            }
        };
        Err(Error::Failed(message))
    }

    /// Reads the parameters and every domain.
    pub(crate) fn snapshot(&self) -> Result<Snapshot, Error> {
        let taken_at = Instant::now();
        let domains_dir = self.domains_dir();
        let entries = fs::read_dir(&domains_dir).map_err(|error| match error.kind() {
            ErrorKind::NotFound => not_loaded(&domains_dir),
            _ => cannot("read", &domains_dir, &error),
        })?;
        let params = self.read_params()?;
        let mut domains = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| cannot("read", &domains_dir, &error))?;
            // Entries are named by domid; `limits` and anything else is not a domain.
            let Some(domid) = entry.file_name().to_str().and_then(domid_from_name) else {
                continue;
            };
            if !entry.path().is_dir() {
                continue;
            }
            if let Some(domain) = self.read_domain(domid)? {
                domains.push(domain);
            }
        }
        domains.sort_by_key(|d| d.domid);
        Ok(Snapshot {
            params,
            domains,
            taken_at,
        })
    }

    /// Every scheduling group, sorted by name. An rblkback without the scheduler has no
    /// `groups` directory: no groups, not an error. A group whose directory disappears
    /// while we read is left out.
    pub(crate) fn groups(&self) -> Result<Vec<GroupSample>, Error> {
        let module_dir = self.module_dir();
        if !module_dir.is_dir() {
            return Err(not_loaded(&module_dir));
        }
        let groups_dir = self.groups_dir();
        let entries = match fs::read_dir(&groups_dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(cannot("read", &groups_dir, &error)),
        };
        let mut groups = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| cannot("read", &groups_dir, &error))?;
            if !entry.path().is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(group) = self.read_group(name)? {
                groups.push(group);
            }
        }
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    /// One group, or `None` if it went away while we read it.
    fn read_group(&self, name: String) -> Result<Option<GroupSample>, Error> {
        let dir = self.group_dir(&name);
        let read_if_present = |file: &str| read_number_if_present(&dir.join(file));
        let group = GroupSample {
            window: read_if_present("window")?,
            in_flight: read_if_present("in_flight")?,
            dispatched: read_if_present("dispatched")?,
            held: read_if_present("held")?,
            vbds: read_if_present("vbds")?,
            latency_target_us: read_if_present("latency_target_us")?,
            window_now: read_if_present("window_now")?,
            name,
        };
        let values = [
            group.window,
            group.in_flight,
            group.dispatched,
            group.held,
            group.vbds,
        ];
        if values.contains(&None) && !dir.exists() {
            return Ok(None);
        }
        Ok(Some(group))
    }

    fn read_params(&self) -> Result<Vec<(Param, Option<u64>)>, Error> {
        let dir = self.module_dir().join("parameters");
        LIMIT_PARAMS
            .into_iter()
            .map(|param| {
                let value = match read_number(&dir.join(param.name())) {
                    Ok(value) => Some(value),
                    Err(ReadError::Missing) => None,
                    Err(ReadError::Failed(error)) => return Err(error),
                };
                Ok((param, value))
            })
            .collect()
    }

    /// One domain, or `None` if its entry went away while we read it.
    fn read_domain(&self, domid: u16) -> Result<Option<DomainSample>, Error> {
        let dir = self.domain_dir(domid);
        let read = |name: &str| {
            let path = dir.join(name);
            match read_number(&path) {
                Ok(value) => Ok(Some(value)),
                Err(ReadError::Missing) if !dir.exists() => Ok(None),
                Err(ReadError::Missing) => Err(Error::Failed(format!(
                    "{} is missing (is this rblkback's sysfs tree?)",
                    path.display()
                ))),
                Err(ReadError::Failed(error)) => Err(error),
            }
        };
        let mut limits = Limits::UNLIMITED;
        for meter in Meter::ALL {
            let Some(value) = read(&format!("{}_limit", meter_key(meter)))? else {
                return Ok(None);
            };
            limits.set(meter, value);
        }
        let mut values = [0; 6];
        for (value, name) in values.iter_mut().zip(Counters::FILES) {
            let Some(read_value) = read(name)? else {
                return Ok(None);
            };
            *value = read_value;
        }
        let mut counters = Counters::from_values(values);
        let read_if_present = |name: &str| read_number_if_present(&dir.join(name));
        let mut shares = ShareSettings::default();
        for key in ShareKey::ALL {
            shares.set(key, read_if_present(key.key())?);
        }
        counters.sched_dispatched = read_if_present("sched_dispatched")?;
        counters.sched_holds = read_if_present("sched_holds")?;
        // A file missing because the whole entry went away since the files above were
        // read: the domain is gone, not an older module.
        let any_missing = [
            shares.weight,
            shares.reservation_iops,
            shares.reservation_bps,
            counters.sched_dispatched,
            counters.sched_holds,
        ]
        .contains(&None);
        if any_missing && !dir.exists() {
            return Ok(None);
        }
        let latency = self.read_latency(domid)?;
        Ok(Some(DomainSample {
            domid,
            limits,
            shares,
            counters,
            latency,
        }))
    }

    /// The latency files of domain `domid`'s vbds, added up. A vbd that goes away while
    /// we read, or has no such file, is left out.
    fn read_latency(&self, domid: u16) -> Result<Option<Latency>, Error> {
        let devices = self.root.join("bus/xen-backend/devices");
        let Ok(entries) = fs::read_dir(&devices) else {
            return Ok(None);
        };
        let prefix = format!("vbd-{domid}-");
        let mut total: Option<Latency> = None;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(devid) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            if devid.is_empty() || !devid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let path = entry.path().join("statistics/latency");
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(error) if error.kind() == ErrorKind::NotFound => continue,
                Err(error) => return Err(cannot("read", &path, &error)),
            };
            let latency = Latency::parse(&text)
                .map_err(|error| Error::Failed(format!("{}: {error}", path.display())))?;
            match total.as_mut() {
                Some(total) => total.add(&latency),
                None => total = Some(latency),
            }
        }
        Ok(total)
    }

    /// Writes `line` to `domains/limits` in one `write(2)`, as the kernel takes one
    /// command per write.
    pub(crate) fn write_limits(&self, line: &LimitsLine) -> Result<(), Error> {
        let path = self.limits_file();
        let bytes = line.text().as_bytes();
        write_in_one_call(&path, bytes).map_err(|failure| match failure {
            WriteFailure::Open(error) if error.kind() == ErrorKind::NotFound => not_loaded(&path),
            WriteFailure::Open(error) => cannot("open", &path, &error),
            WriteFailure::Write(error) => write_refused(&path, line, &error),
            WriteFailure::Short { written } => Error::Failed(format!(
                "{}: only {written} of {} bytes of \"{}\" were written",
                path.display(),
                bytes.len(),
                line.command()
            )),
        })
    }
}

/// How writing a sysfs file failed.
enum WriteFailure {
    Open(io::Error),
    Write(io::Error),
    /// The kernel took only part of it.
    Short {
        written: usize,
    },
}

/// Writes `bytes` to the existing file `path` in one `write(2)`: a sysfs store gets what
/// one call brings, so a value must not be split. The file is never created.
fn write_in_one_call(path: &Path, bytes: &[u8]) -> Result<(), WriteFailure> {
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(WriteFailure::Open)?;
    match file.write(bytes) {
        Ok(written) if written == bytes.len() => Ok(()),
        Ok(written) => Err(WriteFailure::Short { written }),
        Err(error) => Err(WriteFailure::Write(error)),
    }
}

/// Why writing `setting` to its file at `path` failed, in the operator's terms.
fn setting_refused(
    owner: &SettingsOwner,
    setting: &FileSetting,
    path: &Path,
    failure: WriteFailure,
) -> String {
    match failure {
        WriteFailure::Open(error) if error.kind() == ErrorKind::NotFound => format!(
            "{} is missing: the loaded rblkback may be a different version than rblkctl",
            path.display()
        ),
        // EINVAL: rblkctl checked the value as the kernel does, so the module must follow
        // other rules than this rblkctl.
        WriteFailure::Write(error) if error.kind() == ErrorKind::InvalidInput => format!(
            "the kernel refused {} for {} ({error}); rblkctl accepts it, so the loaded \
             rblkback may be a different version than rblkctl",
            setting.as_setting(),
            owner.describe()
        ),
        WriteFailure::Open(error) | WriteFailure::Write(error) => cannot_change(path, &error),
        WriteFailure::Short { written } => format!(
            "{}: only {written} of {} bytes were written",
            path.display(),
            setting.value.len() + 1
        ),
    }
}

/// A scheduler setting's file that could not be opened or written.
fn cannot_change(path: &Path, error: &io::Error) -> String {
    let hint = match error.kind() {
        ErrorKind::PermissionDenied => " (changing scheduler settings needs root)",
        _ => "",
    };
    format!("cannot write {}: {error}{hint}", path.display())
}

/// Why a write of `line` failed, in the operator's terms.
fn write_refused(path: &Path, line: &LimitsLine, error: &io::Error) -> Error {
    match error.kind() {
        // EINVAL: the kernel's parser said no. rblkctl checked the line with the same
        // parser, so the module must follow other rules than this rblkctl.
        ErrorKind::InvalidInput => Error::Failed(format!(
            "the kernel refused \"{}\" ({error}); rblkctl accepts it, so the loaded rblkback \
             may be a different version than rblkctl",
            line.command()
        )),
        _ => cannot("write", path, error),
    }
}

fn not_loaded(missing: &Path) -> Error {
    Error::Failed(format!("rblkback is not loaded (no {})", missing.display()))
}

fn cannot(what: &str, path: &Path, error: &io::Error) -> Error {
    let hint = match error.kind() {
        ErrorKind::PermissionDenied => " (changing limits needs root)",
        _ => "",
    };
    Error::Failed(format!("cannot {what} {}: {error}{hint}", path.display()))
}

/// The domain id a directory name stands for, as the kernel names them (`%u`).
fn domid_from_name(name: &str) -> Option<u16> {
    let domid = parse_decimal(name.as_bytes()).ok()?;
    if domid >= u64::from(DOMID_FIRST_RESERVED) || name != domid.to_string() {
        return None;
    }
    u16::try_from(domid).ok()
}

enum ReadError {
    /// The file does not exist.
    Missing,
    /// It exists but could not be read or holds no number.
    Failed(Error),
}

/// Reads a sysfs number (`%llu\n`), in the format the module reads its own files
/// (`throttle::number`).
fn read_number(path: &Path) -> Result<u64, ReadError> {
    let text = fs::read_to_string(path).map_err(|error| match error.kind() {
        ErrorKind::NotFound => ReadError::Missing,
        _ => ReadError::Failed(cannot("read", path, &error)),
    })?;
    parse_number(text.as_bytes()).map_err(|_| {
        ReadError::Failed(Error::Failed(format!(
            "{}: expected a number, found {text:?}",
            path.display()
        )))
    })
}

/// A number from a file that an older rblkback does not have: `None` if it is missing.
fn read_number_if_present(path: &Path) -> Result<Option<u64>, Error> {
    match read_number(path) {
        Ok(value) => Ok(Some(value)),
        Err(ReadError::Missing) => Ok(None),
        Err(ReadError::Failed(error)) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_domain_ids_name_domain_directories() {
        assert_eq!(domid_from_name("0"), Some(0));
        assert_eq!(domid_from_name("7"), Some(7));
        assert_eq!(domid_from_name("32751"), Some(32751));
        assert_eq!(domid_from_name("32752"), None);
        assert_eq!(domid_from_name("007"), None);
        assert_eq!(domid_from_name("limits"), None);
        assert_eq!(domid_from_name(""), None);
    }

    #[test]
    fn a_refused_write_says_whether_the_kernel_or_the_system_refused() {
        let line = crate::limits_line::clear_line("7").unwrap();
        let path = Path::new("/sys/module/rblkback/domains/limits");
        let einval = write_refused(path, &line, &io::Error::from_raw_os_error(22));
        let Error::Failed(message) = einval else {
            panic!("{einval:?}")
        };
        assert!(
            message.starts_with("the kernel refused \"7 clear\""),
            "{message}"
        );
        let eacces = write_refused(path, &line, &io::Error::from_raw_os_error(13));
        assert_eq!(
            eacces,
            Error::Failed(format!(
                "cannot write {}: {} (changing limits needs root)",
                path.display(),
                io::Error::from_raw_os_error(13)
            ))
        );
    }

    #[test]
    fn a_refused_setting_says_whether_the_kernel_or_the_system_refused() {
        let owner = SettingsOwner::Vbd {
            domid: 7,
            devid: 51712,
        };
        let setting = FileSetting {
            file: "weight",
            value: "300".into(),
        };
        let path = Path::new("/sys/bus/xen-backend/devices/vbd-7-51712/sched/weight");
        let einval = io::Error::from_raw_os_error(22);
        assert_eq!(
            setting_refused(&owner, &setting, path, WriteFailure::Write(einval)),
            format!(
                "the kernel refused weight=300 for vbd-7-51712 ({}); rblkctl accepts it, so \
                 the loaded rblkback may be a different version than rblkctl",
                io::Error::from_raw_os_error(22)
            )
        );
        let eacces = io::Error::from_raw_os_error(13);
        assert_eq!(
            setting_refused(&owner, &setting, path, WriteFailure::Open(eacces)),
            format!(
                "cannot write {}: {} (changing scheduler settings needs root)",
                path.display(),
                io::Error::from_raw_os_error(13)
            )
        );
        let window = FileSetting {
            file: "window",
            value: "16".into(),
        };
        let group = SettingsOwner::Group("vdb".into());
        let einval = io::Error::from_raw_os_error(22);
        let message = setting_refused(&group, &window, path, WriteFailure::Write(einval));
        assert!(
            message.starts_with("the kernel refused window=16 for group 'vdb' ("),
            "{message}"
        );
        let short = setting_refused(&group, &window, path, WriteFailure::Short { written: 1 });
        assert!(
            short.ends_with(": only 1 of 3 bytes were written"),
            "{short}"
        );
    }

    #[test]
    fn share_settings_are_named_as_their_files() {
        let json = serde_json::to_value(ShareSettings::default()).unwrap();
        let mut names: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        let mut keys = ShareKey::ALL.map(ShareKey::key);
        keys.sort_unstable();
        assert_eq!(names, keys);
    }

    #[test]
    fn a_missing_tree_means_the_module_is_not_loaded() {
        let sysfs = Sysfs::new(PathBuf::from("/nonexistent-rblkctl-root"));
        let expected =
            "rblkback is not loaded (no /nonexistent-rblkctl-root/module/rblkback/domains)";
        assert_eq!(
            sysfs.snapshot().unwrap_err(),
            Error::Failed(expected.into())
        );
    }
}
