//! The Xen device files a user-space frontend needs, and the only module of this crate
//! with `unsafe` code (`tests/check-unsafe` allows this file and no other of the crate).
//!
//! * `/dev/xen/gntalloc`: grant pages of this domain to another one
//!   (`IOCTL_GNTALLOC_ALLOC_GREF`, then `mmap` at the returned index) and revoke them
//!   (`IOCTL_GNTALLOC_DEALLOC_GREF`);
//! * `/dev/xen/evtchn`: an unbound event channel for the backend's domain
//!   (`IOCTL_EVTCHN_BIND_UNBOUND_PORT`), notify it (`IOCTL_EVTCHN_NOTIFY`) and wait for it
//!   (`poll`, then `read` the fired ports and `write` them back to unmask).
//!
//! Numbers and layouts come from Linux's `include/uapi/xen/gntalloc.h` and `evtchn.h`.
//! Shared memory is only ever touched through volatile accesses of [`SharedPages`], because
//! the other domain reads and writes it concurrently; nothing here hands out references to
//! it. xenstore (`/dev/xen/xenbus`) needs no `unsafe` and lives in `xenstore.rs`.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::ptr::NonNull;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Size of a Xen page, the unit of every grant.
pub(crate) const PAGE_SIZE: usize = 4096;

/// `_IOC(_IOC_NONE, ty, nr, size)`: direction bits 0.
const fn ioc_none(ty: u8, nr: u8, size: usize) -> u64 {
    ((size as u64) << 16) | ((ty as u64) << 8) | nr as u64
}

/// Most pages one [`Gntalloc::alloc`] call grants (the size of its ioctl buffer).
pub(crate) const MAX_ALLOC_PAGES: usize = 64;

/// `struct ioctl_gntalloc_alloc_gref` with room for [`MAX_ALLOC_PAGES`] grant ids; the
/// ioctl number encodes the size of the declared struct (one id: 24 bytes).
#[repr(C)]
struct AllocGref {
    domid: u16,
    flags: u16,
    count: u32,
    index: u64,
    gref_ids: [u32; MAX_ALLOC_PAGES],
}

/// `struct ioctl_gntalloc_dealloc_gref` (16 bytes with its tail padding).
#[repr(C)]
struct DeallocGref {
    index: u64,
    count: u32,
}

/// The size `IOCTL_GNTALLOC_ALLOC_GREF` encodes: the header and one grant id, padded.
const ALLOC_GREF_DECLARED_SIZE: usize = 24;
const _: () = assert!(std::mem::offset_of!(AllocGref, gref_ids) == 16);
const _: () = assert!(std::mem::size_of::<DeallocGref>() == 16);

/// `IOCTL_GNTALLOC_ALLOC_GREF`.
pub(crate) const IOCTL_GNTALLOC_ALLOC_GREF: u64 = ioc_none(b'G', 5, ALLOC_GREF_DECLARED_SIZE);
/// `IOCTL_GNTALLOC_DEALLOC_GREF`.
pub(crate) const IOCTL_GNTALLOC_DEALLOC_GREF: u64 =
    ioc_none(b'G', 6, std::mem::size_of::<DeallocGref>());
/// `GNTALLOC_FLAG_WRITABLE`: the other domain may map the pages writable.
const GNTALLOC_FLAG_WRITABLE: u16 = 1;
/// `IOCTL_EVTCHN_BIND_UNBOUND_PORT` (argument: `unsigned int remote_domain`).
pub(crate) const IOCTL_EVTCHN_BIND_UNBOUND_PORT: u64 = ioc_none(b'E', 2, 4);
/// `IOCTL_EVTCHN_UNBIND` (argument: `unsigned int port`).
pub(crate) const IOCTL_EVTCHN_UNBIND: u64 = ioc_none(b'E', 3, 4);
/// `IOCTL_EVTCHN_NOTIFY` (argument: `unsigned int port`).
pub(crate) const IOCTL_EVTCHN_NOTIFY: u64 = ioc_none(b'E', 4, 4);

/// `ioctl(fd, request, arg)`; the kernel's return value, or the errno as an error.
///
/// # Safety
///
/// `arg` must point to memory laid out as the kernel expects for `request`, valid for the
/// reads and writes the ioctl does.
unsafe fn ioctl(file: &File, request: u64, arg: *mut libc::c_void) -> io::Result<i32> {
    // SAFETY: the fd is open for the duration of the call (borrowed from `file`); the
    // caller vouches for `arg`.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request as _, arg) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Pages shared with another domain, mapped into this process. Every access is volatile
/// and bounds-checked; offsets of 32-bit accesses must be 4-byte aligned.
pub(crate) struct SharedPages {
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedPages {
    /// Maps `pages` pages of `file` at offset `index` (gntalloc's mmap protocol).
    fn map(file: &File, index: u64, pages: usize) -> io::Result<SharedPages> {
        let len = pages * PAGE_SIZE;
        // SAFETY: a fresh shared mapping chosen by the kernel (no address hint), of a
        // length and offset gntalloc just handed out; it aliases nothing in this process.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                index as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(SharedPages { ptr, len })
    }

    fn check(&self, offset: usize, size: usize, align: usize) -> usize {
        assert!(
            offset % align == 0 && offset.checked_add(size).is_some_and(|end| end <= self.len),
            "shared page access at {offset}+{size} outside {} bytes",
            self.len
        );
        offset
    }

    /// Reads the native-endian (little-endian: x86) `u32` at `offset`.
    pub(crate) fn read_u32(&self, offset: usize) -> u32 {
        let offset = self.check(offset, 4, 4);
        // SAFETY: in bounds and aligned (checked above); the mapping lives as long as
        // `self`; a volatile read of shared memory creates no reference.
        unsafe { self.ptr.as_ptr().add(offset).cast::<u32>().read_volatile() }
    }

    /// Writes `value` at `offset`.
    pub(crate) fn write_u32(&self, offset: usize, value: u32) {
        let offset = self.check(offset, 4, 4);
        // SAFETY: as in `read_u32`.
        unsafe {
            self.ptr
                .as_ptr()
                .add(offset)
                .cast::<u32>()
                .write_volatile(value)
        }
    }

    /// Copies `bytes` to `offset`.
    pub(crate) fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        let offset = self.check(offset, bytes.len(), 1);
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: `offset + i` is in bounds (checked above for the whole range).
            unsafe { self.ptr.as_ptr().add(offset + i).write_volatile(*b) }
        }
    }

    /// Copies `out.len()` bytes from `offset` into `out`.
    pub(crate) fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        let offset = self.check(offset, out.len(), 1);
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: `offset + i` is in bounds (checked above for the whole range).
            *b = unsafe { self.ptr.as_ptr().add(offset + i).read_volatile() };
        }
    }

    /// Sets every byte of the mapping to `value`.
    pub(crate) fn fill(&self, value: u8) {
        for i in 0..self.len {
            // SAFETY: `i < len`.
            unsafe { self.ptr.as_ptr().add(i).write_volatile(value) }
        }
    }
}

impl Drop for SharedPages {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `map` created; no pointer into it survives
        // `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// `wmb()`: earlier stores to shared memory become visible before later ones.
pub(crate) fn write_barrier() {
    fence(Ordering::Release);
}

/// `rmb()`: later loads from shared memory are not satisfied before earlier ones.
pub(crate) fn read_barrier() {
    fence(Ordering::Acquire);
}

/// `mb()`: a full barrier between stores and later loads.
pub(crate) fn full_barrier() {
    fence(Ordering::SeqCst);
}

/// `/dev/xen/gntalloc`, shared by every [`GrantPages`] it allocated.
#[derive(Clone)]
pub(crate) struct Gntalloc {
    file: Arc<File>,
}

impl Gntalloc {
    /// Opens the device.
    pub(crate) fn open() -> io::Result<Gntalloc> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/xen/gntalloc")?;
        Ok(Gntalloc {
            file: Arc::new(file),
        })
    }

    /// Grants `pages` fresh zeroed pages (at most [`MAX_ALLOC_PAGES`]) to `domid` and maps
    /// them here.
    pub(crate) fn alloc(&self, domid: u16, pages: usize, writable: bool) -> io::Result<GrantPages> {
        if pages == 0 || pages > MAX_ALLOC_PAGES {
            return Err(io::Error::other(format!(
                "cannot grant {pages} pages at once"
            )));
        }
        let mut op = AllocGref {
            domid,
            flags: if writable { GNTALLOC_FLAG_WRITABLE } else { 0 },
            count: pages as u32,
            index: 0,
            gref_ids: [0; MAX_ALLOC_PAGES],
        };
        // SAFETY: `op` is laid out as `struct ioctl_gntalloc_alloc_gref` followed by room
        // for `MAX_ALLOC_PAGES >= count` grant ids, which is what the kernel writes.
        unsafe {
            ioctl(
                &self.file,
                IOCTL_GNTALLOC_ALLOC_GREF,
                (&mut op as *mut AllocGref).cast(),
            )?
        };
        let grefs = op.gref_ids[..pages].to_vec();
        let map = match SharedPages::map(&self.file, op.index, pages) {
            Ok(m) => m,
            Err(e) => {
                let _ = self.dealloc(op.index, pages);
                return Err(e);
            }
        };
        Ok(GrantPages {
            gnt: self.clone(),
            index: op.index,
            grefs,
            map: Some(map),
            allocated: true,
        })
    }

    fn dealloc(&self, index: u64, pages: usize) -> io::Result<()> {
        let mut op = DeallocGref {
            index,
            count: pages as u32,
        };
        // SAFETY: `op` is a `struct ioctl_gntalloc_dealloc_gref`, only read by the kernel.
        unsafe {
            ioctl(
                &self.file,
                IOCTL_GNTALLOC_DEALLOC_GREF,
                (&mut op as *mut DeallocGref).cast(),
            )?
        };
        Ok(())
    }
}

/// Pages granted to another domain and mapped here. Dropping them revokes the grants
/// (gntalloc ends foreign access once neither this process nor the other domain maps them;
/// while the other domain still maps a page, the guest kernel keeps it until it is
/// unmapped).
pub(crate) struct GrantPages {
    gnt: Gntalloc,
    index: u64,
    grefs: Vec<u32>,
    map: Option<SharedPages>,
    allocated: bool,
}

impl GrantPages {
    /// The grant reference of each page.
    pub(crate) fn grefs(&self) -> &[u32] {
        &self.grefs
    }

    /// The mapping. Panics after [`GrantPages::revoke`].
    pub(crate) fn mem(&self) -> &SharedPages {
        self.map.as_ref().expect("grant pages used after revoke")
    }

    /// Unmaps the pages and revokes their grants now (the grant references become invalid
    /// for the other domain, unless it still maps them).
    pub(crate) fn revoke(&mut self) -> io::Result<()> {
        self.map = None;
        if std::mem::take(&mut self.allocated) {
            self.gnt.dealloc(self.index, self.grefs.len())?;
        }
        Ok(())
    }
}

impl Drop for GrantPages {
    fn drop(&mut self) {
        let _ = self.revoke();
    }
}

/// `/dev/xen/evtchn`: event channels bound by this process.
pub(crate) struct Evtchn {
    file: File,
}

impl Evtchn {
    /// Opens the device (non-blocking reads).
    pub(crate) fn open() -> io::Result<Evtchn> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/xen/evtchn")?;
        Ok(Evtchn { file })
    }

    /// Allocates a port that `remote` may bind to; returns the local port.
    pub(crate) fn bind_unbound(&self, remote: u16) -> io::Result<u32> {
        let mut arg: libc::c_uint = remote.into();
        // SAFETY: `struct ioctl_evtchn_bind_unbound_port` is one `unsigned int`.
        let port = unsafe {
            ioctl(
                &self.file,
                IOCTL_EVTCHN_BIND_UNBOUND_PORT,
                (&mut arg as *mut libc::c_uint).cast(),
            )?
        };
        Ok(port as u32)
    }

    /// Closes `port`.
    pub(crate) fn unbind(&self, port: u32) -> io::Result<()> {
        let mut arg: libc::c_uint = port;
        // SAFETY: `struct ioctl_evtchn_unbind` is one `unsigned int`.
        unsafe {
            ioctl(
                &self.file,
                IOCTL_EVTCHN_UNBIND,
                (&mut arg as *mut libc::c_uint).cast(),
            )?
        };
        Ok(())
    }

    /// Sends an event on `port`.
    pub(crate) fn notify(&self, port: u32) -> io::Result<()> {
        let mut arg: libc::c_uint = port;
        // SAFETY: `struct ioctl_evtchn_notify` is one `unsigned int`.
        unsafe {
            ioctl(
                &self.file,
                IOCTL_EVTCHN_NOTIFY,
                (&mut arg as *mut libc::c_uint).cast(),
            )?
        };
        Ok(())
    }

    /// Waits up to `timeout` for an event; returns the ports that fired (unmasked again).
    pub(crate) fn wait(&self, timeout: Duration) -> io::Result<Vec<u32>> {
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid `pollfd`, count 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(Vec::new())
            } else {
                Err(e)
            };
        }
        if rc == 0 {
            return Ok(Vec::new());
        }
        let mut buf = [0u8; 4 * 64];
        let n = match (&self.file).read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let ports: Vec<u32> = buf[..n - n % 4]
            .chunks_exact(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // Writing a port back unmasks it.
        (&self.file).write_all(&buf[..n - n % 4])?;
        Ok(ports)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers `_IOC(_IOC_NONE, ...)` gives for the uapi headers' structs.
    #[test]
    fn ioctl_numbers_match_the_uapi_headers() {
        assert_eq!(IOCTL_GNTALLOC_ALLOC_GREF, 0x0018_4705);
        assert_eq!(IOCTL_GNTALLOC_DEALLOC_GREF, 0x0010_4706);
        assert_eq!(IOCTL_EVTCHN_BIND_UNBOUND_PORT, 0x0004_4502);
        assert_eq!(IOCTL_EVTCHN_UNBIND, 0x0004_4503);
        assert_eq!(IOCTL_EVTCHN_NOTIFY, 0x0004_4504);
    }
}
