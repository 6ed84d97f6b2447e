//! What can go wrong, and the exit status each kind of failure gets.

use std::io;
use std::process::ExitCode;

/// A reason to stop. The variant decides the exit status, the text is for the operator.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Error {
    /// The command line itself is wrong; `command` is the subcommand whose help to point
    /// at, if one was recognised. Exit status 2.
    Usage {
        message: String,
        command: Option<&'static str>,
    },
    /// A limit or domain id that the kernel would refuse; nothing was written. Exit 2.
    Invalid(String),
    /// The system failed: module not loaded, sysfs unreadable, a write refused. Exit 1.
    Failed(String),
    /// stdout was closed under us; nobody is left to tell, so exit 0 in silence.
    StdoutClosed,
}

impl Error {
    /// A usage error, pointing at `command`'s help when known.
    pub(crate) fn usage(message: impl Into<String>, command: Option<&'static str>) -> Error {
        Error::Usage {
            message: message.into(),
            command,
        }
    }

    /// A failed write to stdout.
    pub(crate) fn from_stdout(error: io::Error) -> Error {
        if error.kind() == io::ErrorKind::BrokenPipe {
            Error::StdoutClosed
        } else {
            Error::Failed(format!("cannot write to stdout: {error}"))
        }
    }

    /// The exit status for this error.
    pub(crate) fn exit_status(&self) -> u8 {
        match self {
            Error::Usage { .. } | Error::Invalid(_) => 2,
            Error::Failed(_) => 1,
            Error::StdoutClosed => 0,
        }
    }

    /// The text printed on stderr (empty for [`Error::StdoutClosed`]).
    pub(crate) fn message(&self) -> String {
        match self {
            Error::Usage { message, command } => {
                let help = match command {
                    Some(command) => format!("rblkctl {command} --help"),
                    None => "rblkctl --help".to_string(),
                };
                format!("rblkctl: {message}\nTry '{help}' for more information.\n")
            }
            Error::Invalid(message) | Error::Failed(message) => format!("rblkctl: {message}\n"),
            Error::StdoutClosed => String::new(),
        }
    }

    /// Prints the message on stderr and gives the exit status.
    pub(crate) fn report(&self) -> ExitCode {
        eprint!("{}", self.message());
        ExitCode::from(self.exit_status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_separate_usage_from_system_failures() {
        assert_eq!(Error::usage("x", None).exit_status(), 2);
        assert_eq!(Error::Invalid("x".into()).exit_status(), 2);
        assert_eq!(Error::Failed("x".into()).exit_status(), 1);
        assert_eq!(Error::StdoutClosed.exit_status(), 0);
    }

    #[test]
    fn usage_errors_point_at_the_right_help() {
        let general = Error::usage("no command given", None).message();
        assert_eq!(
            general,
            "rblkctl: no command given\nTry 'rblkctl --help' for more information.\n"
        );
        let set = Error::usage("missing <domid>", Some("set")).message();
        assert!(set.contains("'rblkctl set --help'"), "{set}");
    }

    #[test]
    fn a_closed_stdout_is_silent_and_other_stdout_errors_are_not() {
        let closed = Error::from_stdout(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(closed, Error::StdoutClosed);
        assert_eq!(closed.message(), "");
        let full = Error::from_stdout(io::Error::from_raw_os_error(28));
        assert_eq!(full.exit_status(), 1);
    }
}
