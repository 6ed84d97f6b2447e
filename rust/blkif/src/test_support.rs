//! Helpers for the unit tests.

use core::fmt::Debug;

/// Unwraps a value a test expects to be present, naming the caller's line otherwise.
pub(super) trait Must<T> {
    /// The contained value; panics (failing the test) if there is none.
    fn must(self) -> T;
}

impl<T, E: Debug> Must<T> for Result<T, E> {
    #[track_caller]
    fn must(self) -> T {
        match self {
            Ok(value) => value,
            Err(error) => panic!("unexpected error: {error:?}"),
        }
    }
}

impl<T> Must<T> for Option<T> {
    #[track_caller]
    fn must(self) -> T {
        match self {
            Some(value) => value,
            None => panic!("unexpected None"),
        }
    }
}
