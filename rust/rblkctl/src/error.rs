//! What can go wrong, and the exit status each kind of failure gets.

use std::io;
use std::process::ExitCode;

/// A reason to stop. The variant decides the exit status, the text is for the operator.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Error {
    /// The command line itself is wrong: clap's message, with the usage of the
    /// subcommand it got to and a pointer to the help. Exit status 2, as clap's own.
    Usage(String),
    /// A limit or domain id that the kernel would refuse; nothing was written. Exit 2.
    Invalid(String),
    /// The system failed: module not loaded, sysfs unreadable, a write refused. Exit 1.
    Failed(String),
    /// stdout was closed under us; nobody is left to tell, so exit 0 in silence.
    StdoutClosed,
}

impl Error {
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
            Error::Usage(_) | Error::Invalid(_) => 2,
            Error::Failed(_) => 1,
            Error::StdoutClosed => 0,
        }
    }

    /// The text printed on stderr (empty for [`Error::StdoutClosed`]).
    pub(crate) fn message(&self) -> String {
        match self {
            Error::Usage(message) => message.clone(),
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
        assert_eq!(Error::Usage("x".into()).exit_status(), 2);
        assert_eq!(Error::Invalid("x".into()).exit_status(), 2);
        assert_eq!(Error::Failed("x".into()).exit_status(), 1);
        assert_eq!(Error::StdoutClosed.exit_status(), 0);
    }

    #[test]
    fn usage_errors_are_printed_as_given_and_others_are_prefixed() {
        let usage = "error: unexpected argument 'x' found\n\nFor more information, try '--help'.\n";
        assert_eq!(Error::Usage(usage.into()).message(), usage);
        assert_eq!(
            Error::Invalid("'x': bad".into()).message(),
            "rblkctl: 'x': bad\n"
        );
        assert_eq!(Error::Failed("no".into()).message(), "rblkctl: no\n");
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
