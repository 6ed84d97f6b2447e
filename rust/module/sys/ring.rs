// SPDX-License-Identifier: GPL-2.0

//! The shared request/response ring: mapping the frontend's granted ring pages and
//! accessing them.
//!
//! The pages are shared with a guest that may write them at any moment, so every access
//! is volatile and bounds-checked against the mapped size, and the backend only ever
//! parses private copies (see `blkif::ring`). Index arithmetic lives in `blkif::ring`.

use super::bindings;
use super::xenbus::XenbusDevice;
use kernel::error::Error;
use kernel::prelude::*;
use kernel::types::ARef;

/// Size of one Xen page.
pub const XEN_PAGE_SIZE: usize = 4096;

/// The frontend's ring pages mapped into our address space; unmapped on drop.
///
/// # Invariants
///
/// `addr` is the start of a mapping of `len` bytes, made for `dev`, that stays valid until
/// drop, which unmaps it. `dev` is a counted reference, so the device stays valid for that
/// unmap even after its `remove` (a ring whose I/O is in flight is freed by its last
/// completion).
pub struct SharedRing {
    dev: ARef<XenbusDevice>,
    addr: *mut u8,
    len: usize,
}

// SAFETY: the mapping may be accessed and unmapped from any thread.
unsafe impl Send for SharedRing {}
// SAFETY: all accesses through `&SharedRing` are volatile reads/writes of shared memory.
unsafe impl Sync for SharedRing {}

impl SharedRing {
    /// Maps the ring pages `grefs` granted by the device's frontend.
    pub fn map(dev: &XenbusDevice, grefs: &[u32]) -> Result<Self> {
        let nr = u32::try_from(grefs.len()).map_err(|_| EINVAL)?;
        let mut err = 0;
        // SAFETY: the device is alive (its type invariant) and stays so until the unmap in
        // `drop` through the reference taken below; `grefs` is readable for `nr` entries;
        // C checks `nr`.
        let addr = unsafe { bindings::rblk_ring_map(dev.as_ptr(), grefs.as_ptr(), nr, &mut err) };
        if err != 0 || addr.is_null() {
            return Err(if err != 0 {
                Error::from_errno(err)
            } else {
                ENOMEM
            });
        }
        // INVARIANT: `rblk_ring_map` succeeded, so `addr` maps one page per grant for `dev`,
        // of which the value keeps a reference until it unmaps.
        Ok(Self {
            dev: dev.into(),
            addr: addr as *mut u8,
            len: grefs.len() * XEN_PAGE_SIZE,
        })
    }

    /// The device whose frontend granted the ring (held as long as the mapping).
    pub fn device(&self) -> &XenbusDevice {
        &self.dev
    }

    /// Size of the mapping in bytes.
    pub fn size_bytes(&self) -> usize {
        self.len
    }

    fn check(&self, offset: usize, size: usize) -> Result {
        match offset.checked_add(size) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(EINVAL),
        }
    }

    /// Reads the 32-bit index at `offset` (4-byte aligned).
    pub fn read_u32(&self, offset: usize) -> Result<u32> {
        self.check(offset, 4)?;
        if offset % 4 != 0 {
            return Err(EINVAL);
        }
        // SAFETY: `offset..offset+4` lies inside the mapping (checked) and is aligned; the
        // read is volatile because the guest may write concurrently.
        Ok(unsafe { core::ptr::read_volatile(self.addr.add(offset) as *const u32) })
    }

    /// Reads the other side's producer index at `offset`, then a read barrier, so that the
    /// entries it covers are read after it.
    pub fn read_producer(&self, offset: usize) -> Result<u32> {
        let index = self.read_u32(offset)?;
        read_barrier();
        Ok(index)
    }

    /// Writes the 32-bit index at `offset` (4-byte aligned).
    pub fn write_u32(&self, offset: usize, value: u32) -> Result {
        self.check(offset, 4)?;
        if offset % 4 != 0 {
            return Err(EINVAL);
        }
        // SAFETY: inside the mapping (checked) and aligned; volatile for shared memory.
        unsafe { core::ptr::write_volatile(self.addr.add(offset) as *mut u32, value) };
        Ok(())
    }

    /// Copies `out.len()` bytes at `offset` into private memory.
    pub fn copy_out(&self, offset: usize, out: &mut [u8]) -> Result {
        self.check(offset, out.len())?;
        // Whole 8-byte words where the ring is aligned (every ring entry is): a request is
        // copied on every consume, and a volatile load per byte is what it would cost.
        let words = if offset % 8 == 0 { out.len() / 8 } else { 0 };
        let (head, tail) = out.split_at_mut(words * 8);
        for (i, chunk) in head.chunks_exact_mut(8).enumerate() {
            // SAFETY: `offset + 8 * i .. + 8` is inside the mapping (range checked above)
            // and 8-byte aligned (`offset` is, and the mapping is page aligned); a volatile
            // load tolerates concurrent guest writes, and the copy is private afterwards.
            let word =
                unsafe { core::ptr::read_volatile(self.addr.add(offset + 8 * i) as *const u64) };
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        let base = offset + head.len();
        for (i, b) in tail.iter_mut().enumerate() {
            // SAFETY: `base + i` is inside the mapping (range checked above); a volatile
            // byte read never tears and tolerates concurrent guest writes.
            *b = unsafe { core::ptr::read_volatile(self.addr.add(base + i)) };
        }
        Ok(())
    }

    /// Copies `data` into the ring at `offset`.
    pub fn copy_in(&self, offset: usize, data: &[u8]) -> Result {
        self.check(offset, data.len())?;
        let words = if offset % 8 == 0 { data.len() / 8 } else { 0 };
        let (head, tail) = data.split_at(words * 8);
        for (i, chunk) in head.chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            // SAFETY: inside the mapping (range checked above) and 8-byte aligned (as in
            // `copy_out`); volatile for shared memory.
            unsafe {
                core::ptr::write_volatile(
                    self.addr.add(offset + 8 * i) as *mut u64,
                    u64::from_ne_bytes(word),
                )
            };
        }
        let base = offset + head.len();
        for (i, b) in tail.iter().enumerate() {
            // SAFETY: inside the mapping (range checked above); volatile for shared memory.
            unsafe { core::ptr::write_volatile(self.addr.add(base + i), *b) };
        }
        Ok(())
    }
}

impl Drop for SharedRing {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `addr` is mapped for `dev`, which is still valid; it
        // is unmapped only here, once.
        unsafe { bindings::rblk_ring_unmap(self.dev.as_ptr(), self.addr as *mut _) };
    }
}

/// Read barrier between reading the producer index and the entries it covers.
///
/// On x86-64 loads are not reordered with other loads, so the kernel's `virt_rmb()` is a
/// compiler barrier only: the same here, without a call into C on every ring read.
pub fn read_barrier() {
    #[cfg(target_arch = "x86_64")]
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: a memory barrier has no preconditions.
    unsafe {
        bindings::rblk_virt_rmb()
    }
}

/// Write barrier between writing entries and publishing the producer index.
///
/// On x86-64 stores are not reordered with other stores: a compiler barrier, as the
/// kernel's `virt_wmb()` there.
pub fn write_barrier() {
    #[cfg(target_arch = "x86_64")]
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: a memory barrier has no preconditions.
    unsafe {
        bindings::rblk_virt_wmb()
    }
}

/// Full barrier (publish an index, then read the other side's event index).
pub fn full_barrier() {
    // SAFETY: a memory barrier has no preconditions.
    unsafe { bindings::rblk_virt_mb() }
}
