//! Tables the caller owns: the scheduler never allocates.

use core::ops::DerefMut;

/// A table of `T` owned by the caller: a `Vec`/`KVec`, a boxed slice, an array or a
/// borrowed slice. Its length is fixed while a [`super::FairQueue`] uses it.
pub trait Storage<T> {
    /// The table.
    fn slots(&self) -> &[T];
    /// The table, writable.
    fn slots_mut(&mut self) -> &mut [T];
}

impl<T, D: DerefMut<Target = [T]>> Storage<T> for D {
    fn slots(&self) -> &[T] {
        self
    }
    fn slots_mut(&mut self) -> &mut [T] {
        self
    }
}
